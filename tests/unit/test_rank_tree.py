"""The rank tree, page ranks and the board operators, pure: each against a brute force of the same data."""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from backend.game import ranktree as tree
from backend.game.boards import Board, Boards
from backend.game.ordering import Row, decode, encode, order, ranked
from backend.game.scoring import Contribution, Held, apply, rank_key, unpack
from backend.store.leaderboards import node_id, node_ids
from tests.fuzz import examples

SCORES = st.one_of(
    st.integers(0, 250),
    st.sampled_from([99, 100, 101, 9_999, 10_000, 10_001, tree.MAX_SCORE, tree.MAX_SCORE - 1]),
    st.integers(0, tree.MAX_SCORE),
)


def counts_of(scores: list[int], copies: random.Random | None = None) -> dict[str, dict[int, int]]:
    """The counters as transactions leave them: every row added through some copy of the hot nodes."""
    items: dict[str, dict[int, int]] = {}
    for s in scores:
        for node, child in tree.path(s):
            copy = copies.randrange(tree.COPIES) if copies and tree.is_hot(node) else None
            item = items.setdefault(node_id("b", node, copy), {})
            item[child] = item.get(child, 0) + 1
    summed: dict[str, dict[int, int]] = {}
    for name, counts in items.items():
        node = name.split("#")[2]
        into = summed.setdefault(node, {})
        for child, n in counts.items():
            into[child] = into.get(child, 0) + n
    return summed


@examples(300)
@given(st.lists(SCORES, max_size=60), st.lists(SCORES, min_size=1, max_size=8), st.randoms())
def test_a_standing_is_the_count_of_better_and_equal_scores(
    scores: list[int], queries: list[int], rnd: random.Random
) -> None:
    counts = counts_of(scores, rnd)
    for s in [*queries, *scores[:5]]:
        for descending in (True, False):
            p = tree.stand(counts, s, descending)
            better = sum(1 for x in scores if (x > s if descending else x < s))
            assert (p.better, p.equal, p.total) == (better, scores.count(s), len(scores))
            assert p.rank == better + 1


@examples(300)
@given(
    st.lists(st.tuples(st.one_of(st.none(), SCORES), st.one_of(st.none(), SCORES)), max_size=40),
    st.lists(SCORES, max_size=20),
)
def test_the_deltas_of_moves_are_the_difference_of_the_histograms(
    moves: list[tuple[int | None, int | None]], start: list[int]
) -> None:
    before = counts_of(start)
    after = counts_of([*start, *(b for _, b in moves if b is not None)])
    removed = counts_of([a for a, _ in moves if a is not None])
    expected: dict[str, dict[int, int]] = {}
    for node in set(after) | set(before) | set(removed):
        for child in set(after.get(node, {})) | set(before.get(node, {})) | set(removed.get(node, {})):
            d = after.get(node, {}).get(child, 0) - before.get(node, {}).get(child, 0)
            d -= removed.get(node, {}).get(child, 0)
            if d:
                expected.setdefault(node, {})[child] = d
    assert tree.deltas(moves) == expected


@examples(100)
@given(SCORES)
def test_a_rank_reads_a_bounded_number_of_items_whatever_the_score(score: int) -> None:
    steps = tree.path(score)
    assert len(steps) <= 1 + tree.MAX_DIGITS
    items = [i for node, _ in steps for i in node_ids("b", node)]
    assert len(items) <= 2 * tree.COPIES + tree.MAX_DIGITS - 1
    assert all(item.startswith("rank#b#") for item in items)
    # The leaf counts exactly this score: its path differs from every other score's.
    assert tree.path(score) != tree.path(score + 1 if score < tree.MAX_SCORE else score - 1)


ROWS = st.lists(
    st.tuples(st.sampled_from([f"p{i}" for i in range(30)]), st.integers(0, 12)), min_size=1, max_size=30
)


@examples(300)
@given(ROWS, st.booleans(), st.data())
def test_the_ranks_of_any_page_are_competition_ranks(
    rows: list[tuple[str, int]], descending: bool, data: st.DataObject
) -> None:
    board = order([Row(p, s) for p, s in rows], descending)
    start = data.draw(st.integers(0, len(board) - 1))
    end = data.draw(st.integers(start + 1, len(board)))
    page = board[start:end]
    first = page[0].score
    better = sum(1 for r in board if (r.score > first if descending else r.score < first))
    group = sum(1 for r in board if r.score == first)
    expected = [
        1 + sum(1 for r in board if (r.score > x.score if descending else r.score < x.score)) for x in page
    ]
    assert [rank for rank, _ in ranked(page, better, group)] == expected
    assert [row for _, row in ranked(page, better, group)] == page


@examples(100)
@given(
    st.sampled_from(["after", "before"]),
    st.integers(0, 10**38 - 1),
    st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", fullmatch=True),
)
def test_a_cursor_comes_back_as_it_went_out(direction: str, key: int, player: str) -> None:
    row = Row(player, 0, None, key)
    assert decode(encode(direction, row)) == (direction, key, player)  # type: ignore[arg-type]


# --- operators -------------------------------------------------------------------------------------


def board(**spec: object) -> Board:
    return Boards.parse({"periods": {"alltime": {}}, "boards": {"b": {"periods": ["alltime"], **spec}}})["b"]


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, list[int]]]:
    """Per match, the totals a player had at the end of each window (they only rise)."""
    out = []
    for m in range(draw(st.integers(1, 4))):
        steps = draw(st.lists(st.integers(1, 30), min_size=1, max_size=5))
        totals = [sum(steps[: i + 1]) for i in range(len(steps))]
        out.append((f"m-{m:032x}", totals))
    return out


@examples(300)
@given(histories(), st.sampled_from(["incr", "best", "set"]), st.sampled_from(["desc", "asc"]), st.randoms())
def test_an_operator_makes_the_same_row_whatever_is_replayed(
    matches: list[tuple[str, list[int]]], operator: str, order_: str, rnd: random.Random
) -> None:
    """Each window's contribution of each match, delivered in order, with old ones again (a replay)
    and with stale beliefs (a retry after a crash): the row ends where one clean delivery leaves it."""
    spec = board(operator=operator, order=order_)
    windows: list[Contribution] = []
    for i, (m, totals) in enumerate(matches):
        for w, total in enumerate(totals):
            believed = totals[w - 1] if w else 0
            final = w == len(totals) - 1
            windows.append(Contribution(m, believed, total, at=1_000 + 10 * w + i, finished=final))
    clean = Held()
    for c in windows:
        clean = apply(spec, clean, [c]) or clean
    messy = Held()
    delivered: list[Contribution] = []
    for c in windows:
        batch = [c]
        if delivered and rnd.random() < 0.5:
            batch.append(rnd.choice(delivered))  # an old window again, in the same window
        if rnd.random() < 0.3:
            batch = [replace(c, believed=0) for c in batch]  # a stale belief
        messy = apply(spec, messy, batch) or messy
        delivered += batch
        if rnd.random() < 0.3:
            messy = apply(spec, messy, [rnd.choice(delivered)]) or messy  # a replay on its own
    finals = {m: totals[-1] for m, totals in matches}
    expected = {
        "incr": sum(finals.values()),
        "best": (max if order_ == "desc" else min)(finals.values()),  # of finished matches only
        "set": max(windows, key=lambda c: c.stamp).total,  # the latest write's total
    }[operator]
    assert clean.score == messy.score == expected


def test_wins_count_once_per_match_as_the_subscore() -> None:
    spec = board(tieBreak="subscore", subscore="wins")
    m1, m2 = "m-" + "1" * 32, "m-" + "2" * 32
    held = apply(spec, Held(), [Contribution(m1, 0, 50, 1, won=False)])
    assert held is not None and (held.score, held.sub) == (50, 0)
    held = apply(spec, held, [Contribution(m1, 50, 200, 2, won=True)])
    assert held is not None and (held.score, held.sub) == (200, 1)
    # The same win delivered again, or with the window before it: nothing.
    assert apply(spec, held, [Contribution(m1, 50, 200, 2, won=True)]) is None
    held = apply(spec, held, [Contribution(m2, 0, 200, 3, won=True)])
    assert held is not None and (held.score, held.sub) == (400, 2)


def test_a_rank_key_orders_rows_as_the_board_does() -> None:
    first = board(tieBreak="first")
    early, late = rank_key(first, 100, 0, reached=1_000), rank_key(first, 100, 0, reached=2_000)
    assert early > late > rank_key(first, 99, 0, reached=0)  # desc: higher is better; then earlier
    assert unpack(first, early) == (100, None)
    asc = board(tieBreak="first", order="asc")
    assert rank_key(asc, 100, 0, 1_000) < rank_key(asc, 100, 0, 2_000) < rank_key(asc, 101, 0, 0)
    wins = board(tieBreak="subscore", subscore="wins")
    assert rank_key(wins, 100, 3, 0) > rank_key(wins, 100, 2, 0)
    assert unpack(wins, rank_key(wins, 100, 3, 0)) == (100, 3)
