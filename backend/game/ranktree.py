"""The rank tree of a board: how many rows hold each score, as counters in a tree over the score's
digits, so that a rank costs the same few reads on a board of a hundred players or of ten million.
Pure arithmetic; backend.store.leaderboards keeps the nodes as items, reads and writes them.

A score is written in base 100, most significant digit first, and prefixed by its number of digits:
1234 is (2 digits) 12, 34. The tree's nodes are the prefixes of that path, each an item counting its
children:

    node "^"     children: the number of digits (1..8)   how many rows have 1, 2, ... digits
    node "2"     children: the first digit (1..99)       rows with 2 digits, by their first
    node "2:12"  children: the last digit (0..99)        rows with 12xx, by their last: 1234 is child 34

The rows scoring strictly better than s are,
at every node on s's path, the children on the better side of s's own child, summed: at most 1 + 8
items, whatever the board's size, and one BatchGetItem. Ranks are exact: competition ranks, 1 + the rows
strictly better ("1224").

Hot nodes: the root and the digit-count nodes are on almost every move's path (every new row adds one
at the root), so each is kept as COPIES items, written by turns and summed when read; a copy can hold
a negative count (a row added through one copy and removed through another), never the sum.

A move of a row from score a to b adds -1 along a's path and +1 along b's: counters shared by both paths
cancel, so a move within the same hundred writes one node. Moves are summed per node before they are
written (`deltas`), so a window's many moves of one board write each node once per transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

BASE = 100
MAX_DIGITS = 8
MAX_SCORE = BASE**MAX_DIGITS - 1  # 10^16 - 1: above any score a match can give (and 2^53 for JSON)
COPIES = 4
HOT_LEVELS = 2  # the root and the digit-count nodes
ROOT = "^"

Node = str
Child = int


def digits(score: int) -> list[int]:
    if not 0 <= score <= MAX_SCORE:
        raise ValueError(f"a ranked score is 0 to {MAX_SCORE}, not {score}")
    out = [score % BASE]
    score //= BASE
    while score:
        out.append(score % BASE)
        score //= BASE
    return out[::-1]


def path(score: int) -> list[tuple[Node, Child]]:
    """(node, child) from the root down to the leaf that counts exactly this score."""
    ds = digits(score)
    out: list[tuple[Node, Child]] = [(ROOT, len(ds))]
    for level in range(len(ds)):
        node = str(len(ds)) if level == 0 else f"{len(ds)}:{'.'.join(str(d) for d in ds[:level])}"
        out.append((node, ds[level]))
    return out


def is_hot(node: Node) -> bool:
    return node == ROOT or ":" not in node


Deltas = dict[Node, dict[Child, int]]


def deltas(moves: Iterable[tuple[int | None, int | None]]) -> Deltas:
    """The counter changes of moves (from, to), None meaning "not on the board": summed per node and
    child, zeros left out."""
    out: Deltas = {}
    for before, after in moves:
        for score, sign in ((before, -1), (after, 1)):
            if score is None:
                continue
            for node, child in path(score):
                counts = out.setdefault(node, {})
                counts[child] = counts.get(child, 0) + sign
    return {n: {c: d for c, d in cs.items() if d} for n, cs in out.items() if any(cs.values())}


def nodes_of(scores: Iterable[int]) -> set[Node]:
    return {node for s in scores for node, _ in path(s)}


@dataclass(frozen=True)
class Position:
    """Where a score stands: `better` rows score strictly better, `equal` rows score the same."""

    better: int
    equal: int
    total: int

    @property
    def rank(self) -> int:
        return self.better + 1


def stand(counts: Mapping[Node, Mapping[Child, int]], score: int, descending: bool) -> Position:
    """A score's standing from the counts of the nodes on its path (copies of hot nodes summed; a node
    never written is absent)."""
    better = 0
    steps = path(score)
    for node, child in steps:
        for c, n in counts.get(node, {}).items():
            if (c > child) if descending else (c < child):
                better += n
    leaf, last = steps[-1]
    equal = counts.get(leaf, {}).get(last, 0)
    total = sum(counts.get(ROOT, {}).values())
    return Position(better, equal, total)
