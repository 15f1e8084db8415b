"""Random score sequences through the store as the projector drives it (credit every row of a window,
then bring the board's rank tree to them), with crashes at any call and windows replayed, on each
engine: every row, rank, page (both ways) and around-me page is then compared with a brute-force sort
of the scores a clean, crash-free delivery gives.

A crash is an exception at the n-th DynamoDB call of a window, before the call reaches the table or
after it (a write that happened but whose answer was lost); Lambda then retries the window's final
invocation with the same state, which here is the same contributions.

Concurrency: the matches table's stream has several shards, each with its own projector invocation, and
two of them can credit the same rows and move the same rank tree at once. Here a rival window (other
matches) is flushed in full between two DynamoDB calls of a window, at any call: every interleaving of
two writers at call granularity, deterministically (moto's server is not thread-safe, so threads would
test moto). A season reset can fall in the middle of a window: points count in the season of their
receive time, so a window split by the reset lands on both seasons' rows, and a replay after it too.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from backend.game.boards import Board, Boards
from backend.game.scoring import apply, rank_key
from backend.store.leaderboards import Contribution, Credited, Held, LeaderboardStore, Row, Seasons
from tests.fuzz import examples

TABLE = "gamebackend-local-leaderboards"
KINDS = Boards.parse(
    {
        "periods": {"alltime": {}},
        "boards": {
            "plain": {"periods": ["alltime"]},
            "asc": {"order": "asc", "periods": ["alltime"]},
            "first": {"tieBreak": "first", "periods": ["alltime"]},
            "best": {"operator": "best", "tieBreak": "subscore", "subscore": "wins", "periods": ["alltime"]},
            "latest": {"operator": "set", "order": "asc", "tieBreak": "first", "periods": ["alltime"]},
        },
    }
)
PLAYERS = [f"p{i}" for i in range(12)]
MATCHES = [f"m-{i:032x}" for i in range(3)]
RIVAL_MATCHES = [f"m-{i:032x}" for i in range(3, 5)]  # another stream shard's


class Crash(RuntimeError):
    pass


class Racing:
    """A DynamoDB client that, at its n-th call, first lets a rival writer do all its work."""

    def __init__(self, client: Any, at: int, rival: Any) -> None:
        self._client, self.at, self._rival, self.calls = client, at, rival, 0

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._client, name)

        def counted(**kwargs: Any) -> Any:
            self.calls += 1
            if self.calls == self.at:
                self._rival()
            return call(**kwargs)

        return counted


class Crashing:
    """A DynamoDB client that fails its n-th call, before or after making it."""

    def __init__(self, client: Any, at: int, after: bool) -> None:
        self._client, self._at, self._after, self.calls = client, at, after, 0

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._client, name)

        def counted(**kwargs: Any) -> Any:
            self.calls += 1
            if self.calls == self._at and not self._after:
                raise Crash(f"before call {self.calls} ({name})")
            out = call(**kwargs)
            if self.calls == self._at:
                raise Crash(f"after call {self.calls} ({name})")
            return out

        return counted


def flush(store: LeaderboardStore, board: Board, key: str, rows: dict[str, list[Contribution]]) -> None:
    """What the projector's final invocation does for one board key (streams/projector.py)."""
    credited: dict[str, Credited] = {
        p: store.credit_row(board, key, p, cs, expires=None) for p, cs in sorted(rows.items())
    }
    known = {p: c.held for p, c in credited.items() if c.held is not None}
    unknown = [p for p, c in credited.items() if c.held is None]
    if unknown:
        known.update(store.rows(key, unknown))
    store.sync(key, known, expires=None)


@dataclass
class Model:
    """Match totals as the hot path would have them, window by window."""

    totals: dict[tuple[str, str], int] = field(default_factory=dict)  # (player, match) -> total
    clock: int = 1_000

    def window(
        self, rnd: random.Random, players: list[str], finishing: bool, matches: list[str] = MATCHES
    ) -> dict[str, list[Contribution]]:
        out: dict[str, list[Contribution]] = {}
        for player in rnd.sample(players, rnd.randint(1, len(players))):
            for match in rnd.sample(matches, rnd.randint(1, 2)):
                before = self.totals.get((player, match), 0)
                after = before + rnd.choice([1, 1, 2, 5, 10, 100, 150])
                self.totals[(player, match)] = after
                self.clock += rnd.randint(0, 3)  # equal times too: ties of first-to-reach
                won = finishing and rnd.random() < 0.3
                out.setdefault(player, []).append(
                    Contribution(match, before, after, self.clock, won=won, finished=finishing)
                )
        return out


def expected_rows(board: Board, windows: list[dict[str, list[Contribution]]]) -> dict[str, Held]:
    """Each window applied once, in order, with no crash: what the rows must hold."""
    held: dict[str, Held] = {}
    for w in windows:
        for player, cs in w.items():
            held[player] = apply(board, held.get(player, Held()), cs) or held.get(player, Held())
    return {p: h for p, h in held.items() if h.exists}


def sort_key(board: Board, h: Held) -> int:
    return rank_key(board, h.score, h.sub, h.reached) if board.ranked_by_key else h.score


def brute_force(board: Board, rows: dict[str, Held]) -> list[tuple[int, str, int]]:
    """(rank, player, score) in rank order: competition ranks over the board's sort key."""
    keys = {p: sort_key(board, h) for p, h in rows.items()}
    ordered = sorted(keys, key=lambda p: (-keys[p] if board.descending else keys[p], p))
    better = (lambda a, b: a > b) if board.descending else (lambda a, b: a < b)
    return [(1 + sum(1 for q in keys if better(keys[q], keys[p])), p, rows[p].score) for p in ordered]


def shown(entries: list[tuple[int, Row]]) -> list[tuple[int, str, int]]:
    return [(rank, r.player_id, r.score) for rank, r in entries]


def check(
    store: LeaderboardStore, board: Board, key: str, expected: dict[str, Held], *, raced: bool = False
) -> None:
    stored = {p: h for p, h in store.rows(key, PLAYERS).items() if h.exists}
    assert {p: (h.score, h.sub) for p, h in stored.items()} == {
        p: (h.score, h.sub) for p, h in expected.items()
    }
    if board.tie_break == "first" and not raced:
        # (Only these rows keep when they reached their score. Two writers racing to the same score may
        # be placed in either order; without a race, exactly as the crash-free delivery in order.)
        assert {p: h.reached for p, h in stored.items()} == {p: h.reached for p, h in expected.items()}
    # Every row counted once, where it is: the tree holds the histogram of the scores.
    assert all(h.ranked == h.score for h in stored.values())
    truth = brute_force(board, stored)
    if not truth:  # (a `best` board before any match finished)
        assert store.top(board, key, 5).entries == []
        return
    scores = sorted({h.score for h in expected.values()})
    for s, pos in store.positions(board, key, [*scores, 0, 10**6]).items():
        assert pos.total == len(expected)
        assert pos.equal == sum(1 for h in expected.values() if h.score == s)
    for rank, player, score in truth:
        found = store.rank_of(board, key, player)
        assert found is not None and (found[0], found[1].score) == (rank, score), player
    for limit in (1, 3, 5):
        # Forwards from the top with `next`, backwards from the last row with `prev`.
        page = store.top(board, key, limit)
        seen = list(page.entries)
        while page.more_after:
            page = store.page(board, key, limit, anchor=page.entries[-1][1], direction="after")
            seen += page.entries
        assert shown(seen) == truth, limit
        page = store.page(board, key, limit, anchor=seen[-1][1], direction="before")
        back = page.entries + seen[-1:]
        while page.more_before:
            page = store.page(board, key, limit, anchor=page.entries[0][1], direction="before")
            back = page.entries + back
        assert shown(back) == truth, limit
    # Around me: at both ends, and in the middle (ties included).
    order = [p for _, p, _ in truth]
    for at in {0, len(order) - 1, len(order) // 2}:
        found = store.around(board, key, order[at], before=2, after=2)
        assert found is not None
        assert shown(found.entries) == truth[max(0, at - 2) : at + 3]
        assert found.more_before == (at > 2) and found.more_after == (at < len(order) - 3)
    assert store.rank_of(board, key, "nobody") is None


def split(
    window: dict[str, list[Contribution]], seasons: Seasons
) -> dict[int, dict[str, list[Contribution]]]:
    """A window's contributions by the season of their receive time (the projector's plan)."""
    out: dict[int, dict[str, list[Contribution]]] = {}
    for player, cs in window.items():
        for c in cs:
            out.setdefault(seasons.at(c.at), {}).setdefault(player, []).append(c)
    return out


@examples(10)
@given(
    st.sampled_from(sorted(KINDS.names())),
    st.integers(2, 8),
    st.booleans(),
    st.randoms(use_true_random=False),
)
def test_every_rank_and_page_is_a_brute_force_sort_through_crashes_races_replays_and_resets(
    ddb: Any, kind: str, players: int, reset: bool, rnd: random.Random
) -> None:
    board = KINDS[kind]
    store = LeaderboardStore(ddb, TABLE, KINDS)
    base = f"{kind}#alltime#{uuid.uuid4().hex[:8]}"  # a board of its own for every example
    keys = {0: base, 1: f"{base}@s1"}
    model = Model()
    names = PLAYERS[:players]
    seasons = Seasons(0)
    windows = rnd.randint(2, 5)
    reset_in = rnd.randrange(windows) if reset else None
    delivered: list[dict[str, list[Contribution]]] = []
    raced = False

    def deliver(into: LeaderboardStore, window: dict[str, list[Contribution]]) -> None:
        for season, rows in sorted(split(window, seasons).items()):
            flush(into, board, keys[season], rows)

    for i in range(windows):
        window = model.window(rnd, names, finishing=rnd.random() < 0.5)
        if i == reset_in:
            # The reset falls between two of the window's writes (by receive time), after every write
            # projected before it (a write received after a reset but projected before it was recorded
            # would count in the old season: clocks are taken as agreeing to the millisecond).
            earlier = max((c.at for w in delivered for cs in w.values() for c in cs), default=0)
            times = sorted(c.at for cs in window.values() for c in cs if c.at > earlier) or [earlier + 1]
            seasons = Seasons(1, (times[len(times) // 2],))
        if rnd.random() < 0.5:
            # A crash somewhere in the window's writes; the retry is the same window again.
            store._ddb = Crashing(ddb, at=rnd.randint(1, 30), after=rnd.random() < 0.5)
            try:
                deliver(store, window)
            except Crash:
                pass
            finally:
                store._ddb = ddb
        if rnd.random() < 0.4:
            # Another shard's window, on other matches, runs to the end between two calls of this one.
            rival = model.window(rnd, names, finishing=rnd.random() < 0.5, matches=RIVAL_MATCHES)
            rival_store = LeaderboardStore(ddb, TABLE, KINDS)
            racing = Racing(ddb, at=rnd.randint(1, 20), rival=lambda r=rival, s=rival_store: deliver(s, r))
            store._ddb = racing
            try:
                deliver(store, window)
            finally:
                store._ddb = ddb
            if racing.calls < racing.at:  # the window made fewer calls: the rival comes after it
                deliver(rival_store, rival)
            delivered.append(rival)
            raced = True
        deliver(store, window)
        delivered.append(window)
        if rnd.random() < 0.4:
            deliver(store, rnd.choice(delivered))  # an old window again (after a reset: the same rows)
        if i % 2:
            verify(store, board, keys, delivered, seasons, raced)
    verify(store, board, keys, delivered, seasons, raced)


def verify(
    store: LeaderboardStore,
    board: Board,
    keys: dict[int, str],
    delivered: list[dict[str, list[Contribution]]],
    seasons: Seasons,
    raced: bool,
) -> None:
    for season, key in keys.items():
        windows = [split(w, seasons).get(season, {}) for w in delivered]
        check(store, board, key, expected_rows(board, windows), raced=raced)
