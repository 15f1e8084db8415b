"""The load test's plateau table (loadtest.report.plateaus): what it leaves out, and what it reports too."""

from __future__ import annotations

from typing import Any

from loadtest.report import plateaus
from loadtest.shapes import Shape, Stage

SPIKE = Shape("spike", "5, then 50", (Stage(10, 5, 5.0), Stage(40, 50, 10.0)))


def second(t: int, push_ms: float, acks: int, ack_failures: int) -> dict[str, Any]:
    return {
        "t": 1_000 + t,
        "ok": {"push": [push_ms] * 10, "ack": [5.0] * acks},
        "fail": {"ack": {"ErrorFrame": ack_failures}} if ack_failures else {},
    }


def test_the_plateau_leaves_the_jump_out_and_the_whole_stage_keeps_it() -> None:
    # 50 users from 10 s: four seconds of 2 s pushes and refused acks, then 50 ms and nothing refused.
    seconds = [second(t, 20, 10, 0) for t in range(10)]
    seconds += [second(t, 2_000 if t < 14 else 50, 10, 5 if t < 14 else 0) for t in range(10, 40)]
    spike = plateaus({"start": 1_000, "seconds": seconds}, SPIKE)[1]
    assert (spike.users, spike.start, spike.end) == (50, 20.0, 40)
    assert spike.push_p99 == 50 and spike.ack_failed_pct == 0.0
    assert spike.whole_push_p99 == 2_000
    assert spike.whole_ack_failed_pct == round(100 * 20 / (20 + 300), 1)
