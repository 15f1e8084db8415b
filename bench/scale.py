"""`make bench-scale`: the leaderboards at 1,000, 10,000 and 100,000 players, and what 10,000,000 costs.

For each size, one board is seeded with BatchWriteItem as the projector leaves it (every row counted in
the board's rank tree), then the store answers, each several times over players spread along the board:

- a rank lookup (`rank_of`: the row, then the tree's nodes on its score's path, one BatchGetItem);
- the same rank counted the way this project did before the trees, in the same run: one `Select=COUNT`
  Query per index shard, which reads every index entry above the player (bench.baseline.count_rank);
- a top-10 page and an around-me page (5 rows);
- a score update: one row credited and moved in the tree (UpdateItem, then one TransactWriteItems);
- the projector's cost per update in a window of 50 updates on the board (the credits, the tree's
  transactions, and the consistent rank read of a board whose rank changes are pushed).

Every DynamoDB request is counted and priced by bench.meter (moto answering ReturnConsumedCapacity with
what DynamoDB bills, from the items it holds). The figures for 10,000,000 players are computed from the
structure's shape, not measured: the tree's per-operation items do not depend on the number of rows,
and a COUNT reads (rank - 1) index entries of the measured mean size, in 1 MB pages.

    .venv/bin/python -m bench.scale           # writes bench/results/scale.json and .md, and the table
                                              # in docs/performance.md
    .venv/bin/python -m bench.scale --quick   # 200 and 2,000 players: a smoke run (scale-quick.*)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.counting import DYNAMODB_WRITES

TABLE = "gamebackend-bench-leaderboards"
BOARD = "global"  # incr, descending, no tie-break: the default board, pushed rank frames included
SCORE_RANGE = 1_000_000  # the seeded scores: uniform in [0, 10^6), ties included
EXTRAPOLATED = 10_000_000
RESULTS = Path(__file__).with_name("results")
START, END = "<!-- bench:scale:start -->", "<!-- bench:scale:end -->"
PAGE_BYTES = 1024 * 1024  # a Query reads at most 1 MB of items per request
# Where along the board the sampled players stand (fraction of the board above them).
POSITIONS = (0.0, 0.1, 0.5, 0.9, 1.0)


@dataclass(frozen=True)
class Plan:
    sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
    updates: int = 5
    window: int = 50
    reads: int = 3


QUICK = Plan(sizes=(200, 2_000), updates=2, window=10, reads=1)


# --- counting requests and units ----------------------------------------------------------------------


@dataclass
class Tally:
    requests: int = 0
    read_units: float = 0.0
    write_units: float = 0.0
    by_call: dict[str, int] = field(default_factory=dict)


class Meter:
    """Counts every DynamoDB request of a client and the units DynamoDB would bill it (ConsumedCapacity,
    asked for on every request that takes it)."""

    def __init__(self, client: Any) -> None:
        self.tally = Tally()
        events = client.meta.events
        events.register("provide-client-params.dynamodb.*", self._ask_capacity)
        events.register("after-call.dynamodb.*", self._count)

    @staticmethod
    def _ask_capacity(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.input_shape is not None and "ReturnConsumedCapacity" in model.input_shape.members:
            params.setdefault("ReturnConsumedCapacity", "TOTAL")

    def _count(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        t = self.tally
        t.requests += 1
        t.by_call[model.name] = t.by_call.get(model.name, 0) + 1
        consumed = parsed.get("ConsumedCapacity")
        rows = consumed if isinstance(consumed, list) else [consumed] if consumed else []
        units = sum(float(r.get("CapacityUnits", 0)) for r in rows)
        if model.name in DYNAMODB_WRITES:
            t.write_units += units
        else:
            t.read_units += units

    @contextmanager
    def measure(self) -> Iterator[Tally]:
        """The requests and units of the block."""
        before = Tally(self.tally.requests, self.tally.read_units, self.tally.write_units)
        out = Tally()
        yield out
        out.requests = self.tally.requests - before.requests
        out.read_units = self.tally.read_units - before.read_units
        out.write_units = self.tally.write_units - before.write_units


def summary(samples: list[Tally], per: int = 1) -> dict[str, float]:
    """Mean and max per operation (`per` operations in each sample)."""
    return {
        "requests": round(statistics.fmean(s.requests for s in samples) / per, 2),
        "requests_max": round(max(s.requests for s in samples) / per, 2),
        "read_units": round(statistics.fmean(s.read_units for s in samples) / per, 2),
        "read_units_max": round(max(s.read_units for s in samples) / per, 2),
        "write_units": round(statistics.fmean(s.write_units for s in samples) / per, 2),
    }


# --- seeding ----------------------------------------------------------------------------------------


def create_table(ddb: Any) -> None:
    """The leaderboards table as serverless.yml declares it, under the bench's own name."""
    from local import slsconfig
    from local.runtime import ROOT

    service = slsconfig.load(ROOT / "serverless.yml")
    (props,) = [
        p
        for p in service.resources_of_type("AWS::DynamoDB::Table").values()
        if p["TableName"].endswith("-leaderboards")
    ]
    keys = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode")
    ddb.create_table(TableName=TABLE, **{k: props[k] for k in keys if k in props})


def seed(ddb: Any, key: str, scores: dict[str, int]) -> None:
    """Rows and the rank tree's nodes, as the projector leaves them, in BatchWriteItem requests of 25."""
    from backend.game import ranktree
    from backend.store.leaderboards import count_attr, node_id, shard_of

    items: list[dict[str, Any]] = [
        {
            "entryId": {"S": f"{key}#{player}"},
            "boardKey": {"S": key},
            "playerId": {"S": player},
            "shardKey": {"S": f"{key}#{shard_of(player)}"},
            "score": {"N": str(score)},
            "ranked": {"N": str(score)},
        }
        for player, score in scores.items()
    ]
    counts = ranktree.deltas((None, s) for s in scores.values())
    for node, children in counts.items():
        # A hot node's copies are summed when read: the whole count on copy 0 reads the same.
        item: dict[str, Any] = {"entryId": {"S": node_id(key, node, 0 if ranktree.is_hot(node) else None)}}
        item.update({count_attr(c): {"N": str(n)} for c, n in children.items()})
        items.append(item)
    for start in range(0, len(items), 25):
        request: dict[str, Any] = {TABLE: [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]}
        while request:
            request = ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}


# --- one board size -----------------------------------------------------------------------------------


def measure_size(ddb: Any, meter: Meter, size: int, plan: Plan, rnd: random.Random) -> dict[str, Any]:
    from backend.game.boards import configured
    from backend.store.leaderboards import Contribution, LeaderboardStore
    from bench.baseline import count_rank

    board = configured()[BOARD]
    key = f"{BOARD}#alltime#bench{size}"
    scores = {f"p{i:07d}": rnd.randrange(SCORE_RANGE) for i in range(size)}
    began = time.monotonic()
    seed(ddb, key, scores)
    seeded_s = time.monotonic() - began
    store = LeaderboardStore(ddb, TABLE)
    ordered = sorted(scores, key=lambda p: (-scores[p], p))
    sampled = [ordered[min(size - 1, int(f * size))] for f in POSITIONS]

    def rank(player: str) -> int:
        return 1 + sum(1 for s in scores.values() if s > scores[player])

    tree_ranks, count_ranks = [], []
    by_position: list[dict[str, Any]] = []
    for f, player in zip(POSITIONS, sampled, strict=True):
        with meter.measure() as t:
            found = store.rank_of(board, key, player)
        with meter.measure() as c:
            counted = count_rank(ddb, TABLE, key, scores[player])
        # The two ways agree with each other and with a sort of the seeded scores.
        assert found is not None and found[0] == counted == rank(player), (player, found, counted)
        tree_ranks.append(t)
        count_ranks.append(c)
        by_position.append(
            {
                "above": f,
                "rank": counted,
                "tree": {"requests": t.requests, "read_units": t.read_units},
                "count": {"requests": c.requests, "read_units": c.read_units},
            }
        )
    tops, arounds = [], []
    for _ in range(plan.reads):
        with meter.measure() as t:
            page = store.top(board, key, 10)
        assert [r.player_id for _, r in page.entries] == ordered[:10]
        tops.append(t)
        me = ordered[rnd.randrange(size)]
        with meter.measure() as a:
            near = store.around(board, key, me, before=2, after=2)
        assert near is not None and near.me[0] == rank(me)
        arounds.append(a)
    # Score updates: one row at a time, as a window holding one update does.
    updates = []
    for i in range(plan.updates):
        player = ordered[rnd.randrange(size)]
        with meter.measure() as u:
            done = store.credit_row(
                board, key, player, [Contribution(f"m-{i:032x}", 0, rnd.randrange(1, 500), 1)], expires=None
            )
            assert done.held is not None
            store.sync(key, {player: done.held}, expires=None)
        scores[player] = done.held.score
        updates.append(u)
    # A window of updates, as the projector writes it: every row credited, the tree moved in as few
    # transactions as fit, then the rank read of each moved row (the board pushes rank frames).
    players = rnd.sample(ordered, plan.window)
    with meter.measure() as w:
        held = {}
        for j, player in enumerate(players):
            credit = Contribution(f"m-{j + 1000:032x}", 0, rnd.randrange(1, 500), 2)
            done = store.credit_row(board, key, player, [credit], expires=None)
            assert done.held is not None
            held[player] = done.held
        store.sync(key, held, expires=None)
        for player, h in held.items():
            assert store.standing(board, key, player, h) is not None
    for player, h in held.items():
        scores[player] = h.score
    # Every rank still exact after the updates: the tree moved with the rows.
    for player in rnd.sample(ordered, 5):
        found = store.rank_of(board, key, player)
        assert found is not None and found[0] == rank(player)
    count_bytes = [
        (c.read_units * 2 * 4096, r["rank"] - 1) for c, r in zip(count_ranks, by_position, strict=True)
    ]
    entries = sum(n for _, n in count_bytes)
    return {
        "players": size,
        "seed_s": round(seeded_s, 1),
        "rank_lookup": summary(tree_ranks),
        "rank_lookup_count": summary(count_ranks),
        "count_by_position": by_position,
        # The measured index entry size a COUNT reads (its units are 4 KB of entries, halved: eventually
        # consistent), for the extrapolation.
        "count_entry_bytes": round(sum(b for b, _ in count_bytes) / entries, 1) if entries else None,
        "top10": summary(tops),
        "around5": summary(arounds),
        "update": summary(updates),
        "projector_per_update": summary([w], per=plan.window),
    }


def extrapolate(measured: list[dict[str, Any]]) -> dict[str, Any]:
    """10,000,000 players from the structure's shape: the tree's operations read and write the same items
    whatever the size (the largest measured board's figures), and a COUNT reads every entry above."""
    from backend.game import ranktree
    from backend.store.leaderboards import SHARDS

    big = measured[-1]
    entry = big["count_entry_bytes"] or 100.0
    median = EXTRAPOLATED // 2
    count_units = math.ceil(median * entry / 4096) / 2  # eventually consistent (a GSI)
    pages = SHARDS * math.ceil(median / SHARDS * entry / PAGE_BYTES)
    return {
        "players": EXTRAPOLATED,
        "rank_lookup": big["rank_lookup"],
        "top10": big["top10"],
        "around5": big["around5"],
        "update": big["update"],
        "projector_per_update": big["projector_per_update"],
        # The median player: 5,000,000 entries above, each a measured mean entry.
        "rank_lookup_count": {"requests": 1 + pages, "read_units": round(count_units + 0.5, 1)},
        "tree_items_bound": 1 + 2 * ranktree.COPIES + ranktree.MAX_DIGITS - 1,
    }


# --- the run ------------------------------------------------------------------------------------------


def run(plan: Plan) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from bench import meter as billing
    from local import motofixes

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(k, "testing")
    os.environ.pop("AWS_ENDPOINT_URL", None)
    if "LEADERBOARDS" not in os.environ:
        from local import slsconfig
        from local.runtime import ROOT

        functions = slsconfig.load(ROOT / "serverless.yml").functions
        os.environ["LEADERBOARDS"] = functions["projector"].environment["LEADERBOARDS"]
    billing.install()
    motofixes.install()
    rnd = random.Random(12)
    began = time.monotonic()
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        create_table(ddb)
        meter = Meter(ddb)
        sizes = []
        for size in plan.sizes:
            t = time.monotonic()
            sizes.append(measure_size(ddb, meter, size, plan, rnd))
            _log(f"{size} players: {time.monotonic() - t:.0f} s")
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "plan": {
            "sizes": list(plan.sizes),
            "updates": plan.updates,
            "window": plan.window,
            "reads": plan.reads,
        },
        "score_range": SCORE_RANGE,
        "sizes": sizes,
        "extrapolated": extrapolate(sizes),
        "elapsed_s": round(time.monotonic() - began, 1),
    }


def _log(message: str) -> None:
    print(f"[bench-scale {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _cell(figures: dict[str, Any]) -> str:
    return f"{figures['requests']:g} / {figures['read_units']:g}"


def render(results: dict[str, Any]) -> str:
    """The scale table: requests / read units per operation, one column per board size."""
    columns = [*results["sizes"], results["extrapolated"]]
    head = [
        "operation",
        *(f"{c['players']:,}" + (" (computed)" if c is columns[-1] else "") for c in columns),
    ]
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("rank lookup, rank tree: requests / RRU", lambda c: _cell(c["rank_lookup"])),
        ("rank lookup, COUNT (median player): requests / RRU", _median_count),
        ("top 10: requests / RRU", lambda c: _cell(c["top10"])),
        ("around me (5 rows): requests / RRU", lambda c: _cell(c["around5"])),
        (
            "score update (credit + tree move): requests / WRU",
            lambda c: f"{c['update']['requests']:g} / {c['update']['write_units']:g}",
        ),
        (
            "projector, per update in a window: requests / WRU / RRU",
            lambda c: (
                f"{c['projector_per_update']['requests']:g} / {c['projector_per_update']['write_units']:g}"
                f" / {c['projector_per_update']['read_units']:g}"
            ),
        ),
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, cell in rows:
        lines.append("| " + " | ".join([label, *(cell(c) for c in columns)]) + " |")
    ranks = results["sizes"][-1]["count_by_position"]
    lines += [
        "",
        f"COUNT by position on the {results['sizes'][-1]['players']:,}-player board (requests / RRU): "
        + ", ".join(
            f"rank {r['rank']:,}: {r['count']['requests']} / {r['count']['read_units']:g}"
            f" (tree {r['tree']['requests']} / {r['tree']['read_units']:g})"
            for r in ranks
        )
        + ".",
        "",
        f"Scores uniform in [0, {results['score_range']:,}); RRU/WRU are DynamoDB read/write request units "
        "as bench/meter.py prices them from the items moto holds; the last column is computed from the "
        f"structure's shape (at most {results['extrapolated']['tree_items_bound']} tree items per rank "
        "read, whatever the board's size), the COUNT from the measured mean index entry "
        f"({results['sizes'][-1]['count_entry_bytes']} bytes) in 1 MB pages. Run {results['date']}, "
        f"{results['elapsed_s']:g} s (`make bench-scale`).",
    ]
    return "\n".join(lines) + "\n"


def _median_count(c: dict[str, Any]) -> str:
    if "count_by_position" not in c:
        return _cell(c["rank_lookup_count"])
    (mid,) = [r for r in c["count_by_position"] if r["above"] == 0.5]
    return f"{mid['count']['requests']:g} / {mid['count']['read_units']:g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small boards: a smoke run of the bench itself")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the results")
    args = parser.parse_args(argv)
    results = run(QUICK if args.quick else Plan())
    name = "scale-quick" if args.quick else "scale"
    args.out.mkdir(exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(results, indent=1) + "\n")
    markdown = render(results)
    (args.out / f"{name}.md").write_text(markdown)
    from bench.run import DOC

    if not args.quick and args.out == RESULTS and DOC.exists():
        text = DOC.read_text()
        if START in text and END in text:
            head, rest = text.split(START, 1)
            _, tail = rest.split(END, 1)
            DOC.write_text(f"{head}{START}\n{markdown}{END}{tail}")
    _log(f"wrote {args.out}/{name}.json and {name}.md in {results['elapsed_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
