"""The scale benchmark's own smoke run (bench/scale.py --quick, in a child process: its billing patches
moto for the whole process): every rank it reads was checked against a sort of the seeded scores in the
run, and here the rank tree's figures are the same on a board ten times the size, where the COUNT's
grow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_rank_trees_cost_is_flat_in_board_size_and_the_counts_is_not(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "bench.scale", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=600,
    )
    results = json.loads((tmp_path / "scale-quick.json").read_text())
    small, large = results["sizes"]
    assert (small["players"], large["players"]) == (200, 2000)
    for op in ("rank_lookup", "top10", "around5"):
        assert small[op]["requests"] == large[op]["requests"], op
    for op in ("rank_lookup", "top10", "around5", "update", "projector_per_update"):
        # Which counters a move changes, and how full a node item is, depend on the scores, not on
        # the board's size: the same units within a tenth or so, where the COUNT's grow tenfold.
        for units in ("read_units", "write_units"):
            assert small[op][units] * 0.75 <= large[op][units] <= small[op][units] * 1.25 + 0.5, (op, units)
    assert small["rank_lookup"]["requests"] == 2  # the row, and one BatchGetItem of the tree
    assert large["rank_lookup"]["read_units_max"] <= 1 + results["extrapolated"]["tree_items_bound"]
    bottom_small, bottom_large = small["count_by_position"][-1], large["count_by_position"][-1]
    assert bottom_large["count"]["read_units"] > 5 * bottom_small["count"]["read_units"]
    assert "| rank lookup, rank tree" in (tmp_path / "scale-quick.md").read_text()
