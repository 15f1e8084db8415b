"""The leaderboards table on each engine: exactly-once credits, the rank tree, and pages in rank order
through the sharded indexes, for the declared boards and for boards with other operators, orders and
tie-breaks. (Random sequences, replays and crashes: test_leaderboard_properties.py.)"""

from __future__ import annotations

import random
from typing import Any

import pytest

from backend.game import ranktree as tree
from backend.game.boards import Board, Boards
from backend.store.leaderboards import SHARDS, Contribution, LeaderboardStore, Row, shard_of
from tests.leaderboard_fill import fill as fill_board

TABLE = "gamebackend-local-leaderboards"
BOARD = "duel#daily#2026-11-23"
OTHER = "duel#daily#2026-11-24"
M1 = "m-" + "1" * 32
M2 = "m-" + "2" * 32
KINDS = Boards.parse(
    {
        "periods": {"alltime": {}, "daily": {"reset": "0 0 * * *", "id": "%Y-%m-%d"}},
        "boards": {
            "duel": {"modes": ["duel"], "periods": ["alltime", "daily"]},
            "first": {"operator": "best", "tieBreak": "first", "periods": ["alltime"]},
            "fewest": {"operator": "set", "order": "asc", "periods": ["alltime"]},
            "wins": {"tieBreak": "subscore", "subscore": "wins", "periods": ["alltime"]},
        },
    }
)
DUEL = KINDS["duel"]


@pytest.fixture
def store(ddb: Any) -> LeaderboardStore:
    return LeaderboardStore(ddb, TABLE, KINDS)


def raw(ddb: Any, board: str, player: str) -> dict[str, Any]:
    item: dict[str, Any] = ddb.get_item(TableName=TABLE, Key={"entryId": {"S": f"{board}#{player}"}})["Item"]
    return item


# --- exactly-once credits --------------------------------------------------------------------------


def test_a_credit_creates_the_row_of_its_board_and_player(store: LeaderboardStore, ddb: Any) -> None:
    assert store.credit(BOARD, "alice", M1, believed=0, total=30, expires=1_800_000_000) == 30
    assert store.score_of(BOARD, "alice") == 30
    item = raw(ddb, BOARD, "alice")
    assert item["boardKey"] == {"S": BOARD}
    assert item["playerId"] == {"S": "alice"}
    assert item["shardKey"] == {"S": f"{BOARD}#{shard_of('alice')}"}
    assert item["ttl"] == {"N": "1800000000"}
    # Boards and players are separate rows.
    store.credit(OTHER, "alice", M1, believed=0, total=12, expires=None)
    store.credit(BOARD, "bob", M1, believed=0, total=5, expires=None)
    assert store.score_of(BOARD, "alice") == 30
    assert store.score_of(OTHER, "alice") == 12
    assert store.score_of(BOARD, "bob") == 5
    assert store.score_of(OTHER, "bob") is None
    assert "ttl" not in raw(ddb, OTHER, "alice")


def test_crediting_the_same_total_twice_adds_once(store: LeaderboardStore) -> None:
    assert store.credit(BOARD, "alice", M1, believed=0, total=30, expires=None) == 30
    assert store.credit(BOARD, "alice", M1, believed=0, total=30, expires=None) is None
    assert store.credit(BOARD, "alice", M1, believed=30, total=30, expires=None) is None
    assert store.score_of(BOARD, "alice") == 30


def test_a_retry_with_a_stale_belief_adds_only_what_is_missing(store: LeaderboardStore) -> None:
    store.credit(BOARD, "alice", M1, believed=0, total=30, expires=None)
    # The match item was never updated (a crash after the credit), so it still believes 0; the match
    # total has since grown to 50: only the 20 not yet in the row are added.
    assert store.credit(BOARD, "alice", M1, believed=0, total=50, expires=None) == 50
    assert store.credit(BOARD, "alice", M1, believed=0, total=50, expires=None) is None
    # The normal path: the belief is right.
    assert store.credit(BOARD, "alice", M1, believed=50, total=70, expires=None) == 70
    # A belief that is stale in the other direction is corrected from the row too.
    assert store.credit(BOARD, "alice", M1, believed=30, total=70, expires=None) is None
    assert store.score_of(BOARD, "alice") == 70


def test_a_total_below_what_the_row_holds_moves_nothing_back(store: LeaderboardStore) -> None:
    store.credit(BOARD, "alice", M1, believed=0, total=50, expires=None)
    # An old write of the match, delivered again: its total is below the row's.
    assert store.credit(BOARD, "alice", M1, believed=0, total=30, expires=None) is None
    assert store.credit(BOARD, "alice", M1, believed=10, total=30, expires=None) is None
    assert store.score_of(BOARD, "alice") == 50


def test_several_matches_credit_a_row_in_one_write_and_a_stale_belief_falls_back(
    store: LeaderboardStore, ddb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[str] = []
    original = ddb.update_item

    def counted(**kwargs: Any) -> Any:
        writes.append(kwargs["Key"]["entryId"]["S"])
        return original(**kwargs)

    monkeypatch.setattr(ddb, "update_item", counted)
    m3 = "m-" + "3" * 32
    credits = {M1: (0, 30), M2: (0, 12), m3: (5, 5)}  # m3 did not move: left out
    assert store.credit_matches(BOARD, "alice", credits, expires=None) == 42
    assert writes == [f"{BOARD}#alice"]
    item = raw(ddb, BOARD, "alice")
    assert (item["c_" + M1.replace("-", "_")], item["c_" + M2.replace("-", "_")]) == (
        {"N": "30"},
        {"N": "12"},
    )
    assert "c_" + m3.replace("-", "_") not in item
    # The same window again (a retry): every belief fails, each match finds its total there.
    assert store.credit_matches(BOARD, "alice", credits, expires=None) is None
    # A later window where one belief is stale (M1's credit of 40 was written, M2's was not): the one
    # write fails, and each match on its own adds only what is missing.
    store.credit(BOARD, "alice", M1, believed=30, total=40, expires=None)
    assert store.credit_matches(BOARD, "alice", {M1: (30, 40), M2: (12, 20)}, expires=None) == 60
    assert store.score_of(BOARD, "alice") == 40 + 20


def test_two_matches_crediting_one_row_add_up(store: LeaderboardStore) -> None:
    store.credit(BOARD, "alice", M1, believed=0, total=30, expires=None)
    assert store.credit(BOARD, "alice", M2, believed=0, total=45, expires=None) == 75
    assert store.credit(BOARD, "alice", M1, believed=30, total=40, expires=None) == 85
    # Retries of either match change nothing.
    assert store.credit(BOARD, "alice", M2, believed=0, total=45, expires=None) is None
    assert store.credit(BOARD, "alice", M1, believed=0, total=40, expires=None) is None
    assert store.score_of(BOARD, "alice") == 85


# --- ranking ---------------------------------------------------------------------------------------

# 40 players with distinct scores, spread over every index shard.
SCORES = dict(
    zip([f"player{i:02d}" for i in range(40)], random.Random(1).sample(range(10, 5000), 40), strict=True)
)


def fill(store: LeaderboardStore, scores: dict[str, int], board: str = BOARD) -> None:
    fill_board(store, DUEL, board, scores)


def test_the_players_cover_every_shard_unevenly() -> None:
    assert len(set(SCORES.values())) == len(SCORES)
    in_rank_order = [shard_of(p) for p, _ in sorted(SCORES.items(), key=lambda kv: -kv[1])]
    assert set(in_rank_order) == set(range(SHARDS))
    # Neighbours in rank order often share a shard (the best four do), so a per-shard read that
    # fetches too few rows shows up in top() and around().
    assert len(set(in_rank_order[:4])) == 1
    assert sum(1 for i in range(38) if len(set(in_rank_order[i : i + 3])) == 1) >= 3


def expected_top(scores: dict[str, int], limit: int) -> list[Row]:
    ordered = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return [Row(p, s) for p, s in ordered[:limit]]


def rows(page: Any) -> list[Row]:
    return [row for _, row in page.entries]


def test_top_merges_every_shard_in_rank_order(store: LeaderboardStore) -> None:
    fill(store, SCORES)
    fill(store, {"intruder": 10_000}, board=OTHER)
    # Fewer than one shard holds, more than one shard holds, more than the board holds.
    for limit in (1, 7, 15, 100):
        page = store.top(DUEL, BOARD, limit)
        assert rows(page) == expected_top(SCORES, limit), limit
        assert page.more_after == (limit < len(SCORES)) and not page.more_before
    # The rank a player sees next to its row is its position in the top list.
    for position, (rank, row) in enumerate(store.top(DUEL, BOARD, 6).entries, start=1):
        assert rank == position
        assert store.rank_of(DUEL, BOARD, row.player_id) == (position, row)


def test_ties_are_ordered_by_player_id_and_share_a_rank(store: LeaderboardStore) -> None:
    tied = {"dave": 50, "bob": 50, "carol": 50, "alice": 90, "erin": 10}
    fill(store, tied)
    assert store.top(DUEL, BOARD, 10).entries == [
        (1, Row("alice", 90)),
        (2, Row("bob", 50)),
        (2, Row("carol", 50)),
        (2, Row("dave", 50)),
        (5, Row("erin", 10)),
    ]
    assert store.rank_of(DUEL, BOARD, "carol") == (2, Row("carol", 50))
    assert store.rank_of(DUEL, BOARD, "erin") == (5, Row("erin", 10))


def test_rank_counts_strictly_higher_scores_from_the_tree(store: LeaderboardStore, ddb: Any) -> None:
    fill(store, SCORES)
    calls: list[str] = []
    original = ddb._make_api_call

    def counted(operation: str, params: Any) -> Any:
        calls.append(operation)
        return original(operation, params)

    ddb._make_api_call = counted
    try:
        for player, score in SCORES.items():
            higher = sum(1 for s in SCORES.values() if s > score)
            calls.clear()
            assert store.rank_of(DUEL, BOARD, player) == (higher + 1, Row(player, score))
            # A row read and the tree's nodes on its score's path: no index query, whatever the rank.
            assert calls == ["GetItem", "BatchGetItem"]
    finally:
        ddb._make_api_call = original
    assert store.rank_of(DUEL, BOARD, "nobody") is None
    assert store.rank_of(DUEL, OTHER, "player00") is None


def test_the_tree_counts_every_row_once_at_its_score(store: LeaderboardStore) -> None:
    fill(store, SCORES)
    positions = store.positions(DUEL, BOARD, [0, 10, 2500, 4999, 10**9])
    for s, p in positions.items():
        assert (p.better, p.equal, p.total) == (
            sum(1 for x in SCORES.values() if x > s),
            sum(1 for x in SCORES.values() if x == s),
            len(SCORES),
        )
    # Moved rows move in the tree; a sync of rows already counted where they are writes nothing.
    moved = {"player00": 6000, "player01": 7}
    held = {}
    for p, total in moved.items():
        done = store.credit_row(DUEL, BOARD, p, [Contribution(M2, 0, total, 2000)], expires=None)
        assert done.held is not None
        held[p] = done.held
    assert store.sync(BOARD, held, expires=None) == 2
    assert store.sync(BOARD, store.rows(BOARD, SCORES), expires=None) == 0
    now = {p: s + moved.get(p, 0) for p, s in SCORES.items()}
    for p, s in now.items():
        assert store.rank_of(DUEL, BOARD, p) == (1 + sum(1 for x in now.values() if x > s), Row(p, s))


def test_a_sync_from_a_stale_read_reads_again(store: LeaderboardStore) -> None:
    fill(store, {"alice": 10, "bob": 20})
    stale = store.rows(BOARD, ["alice"])
    done = store.credit_row(DUEL, BOARD, "alice", [Contribution(M2, 0, 15, 2000)], expires=None)
    assert done.held is not None
    assert store.sync(BOARD, {"alice": done.held}, expires=None) == 1
    # A writer that read alice before that sync, with her row not yet moved: its condition fails, it
    # reads her again, and finds nothing to move.
    moved_again = {"alice": stale["alice"].__class__(**{**stale["alice"].__dict__, "score": 99})}
    assert store.sync(BOARD, moved_again, expires=None) == 0
    assert store.rank_of(DUEL, BOARD, "alice") == (1, Row("alice", 25))
    assert store.positions(DUEL, BOARD, [25])[25].equal == 1


def test_pages_in_both_directions_cover_the_board_exactly(store: LeaderboardStore) -> None:
    scores = {**SCORES, **{f"tie{i}": 2500 for i in range(7)}}
    fill(store, scores)
    expected = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    ranks = {p: 1 + sum(1 for x in scores.values() if x > s) for p, s in scores.items()}
    seen, page = [], store.top(DUEL, BOARD, 6)
    while True:
        seen += page.entries
        if not page.more_after:
            break
        page = store.page(DUEL, BOARD, 6, anchor=page.entries[-1][1], direction="after")
    assert [(r.player_id, r.score) for _, r in seen] == expected
    assert all(rank == ranks[r.player_id] for rank, r in seen)
    back: list[tuple[int, Row]] = []
    page = store.page(DUEL, BOARD, 5, anchor=seen[-1][1], direction="before")
    back = page.entries + seen[-1:]
    while page.more_before:
        page = store.page(DUEL, BOARD, 5, anchor=page.entries[0][1], direction="before")
        back = page.entries + back
    assert back == seen


def test_around_returns_the_neighbours_with_their_ranks(store: LeaderboardStore) -> None:
    fill(store, SCORES)
    ordered = [r.player_id for r in expected_top(SCORES, len(SCORES))]
    # The best four share a shard, and so do some others: enough to catch a per-shard read too short.
    for at in [*range(8), 19, 20, 21, 36, 37, 38, 39]:
        player = ordered[at]
        found = store.around(DUEL, BOARD, player, before=2, after=2)
        assert found is not None
        first = max(0, at - 2)
        assert [(rank, r.player_id) for rank, r in found.entries] == [
            (i + 1, p) for i, p in enumerate(ordered[first : at + 3], start=first)
        ], at
        assert found.me == (at + 1, Row(player, SCORES[player]))
        assert found.more_before == (at > 2) and found.more_after == (at < len(ordered) - 3)
    middle = ordered[20]
    found = store.around(DUEL, BOARD, middle, before=4, after=4)
    assert found is not None and [r.player_id for _, r in found.entries] == ordered[16:25]
    assert store.around(DUEL, BOARD, "nobody") is None


def test_remove_deletes_the_row_from_every_view_and_from_the_tree(store: LeaderboardStore) -> None:
    fill(store, SCORES)
    best = expected_top(SCORES, 1)[0]
    assert store.remove(BOARD, best.player_id) is True
    assert store.score_of(BOARD, best.player_id) is None
    assert store.rank_of(DUEL, BOARD, best.player_id) is None
    remaining = {p: s for p, s in SCORES.items() if p != best.player_id}
    assert rows(store.top(DUEL, BOARD, 5)) == expected_top(remaining, 5)
    second = expected_top(remaining, 1)[0]
    assert store.rank_of(DUEL, BOARD, second.player_id) == (1, second)
    assert store.positions(DUEL, BOARD, [best.score])[best.score].total == len(remaining)
    assert store.remove(BOARD, best.player_id) is False


# --- ties beyond one shard read ----------------------------------------------------------------------

# Eight players on one index shard, inserted in both orders on two boards, so that the result cannot
# depend on the order the index happens to return equal scores in.
TIED = sorted(p for p in (f"t{i}" for i in range(60)) if shard_of(p) == 0)[:8]


def fill_tied(store: LeaderboardStore, score: int = 50) -> None:
    assert len(TIED) == 8
    for board, order in ((BOARD, TIED), (OTHER, TIED[::-1])):
        fill(store, {p: score for p in order}, board)
        fill(store, {"leader": score + 40}, board)


def test_top_breaks_ties_by_player_id_even_at_the_cut_off(store: LeaderboardStore) -> None:
    fill_tied(store)
    for board in (BOARD, OTHER):
        for limit in range(1, 11):
            expected = [Row("leader", 90)] + [Row(p, 50) for p in TIED[: limit - 1]]
            assert rows(store.top(DUEL, board, limit)) == expected, (board, limit)


def test_around_places_the_player_among_many_equal_scores(store: LeaderboardStore) -> None:
    fill_tied(store)
    ordered = ["leader", *TIED]
    for board in (BOARD, OTHER):
        assert store.rank_of(DUEL, board, TIED[3]) == (2, Row(TIED[3], 50))  # ties share a rank
        for at, player in enumerate(ordered[1:], start=1):
            found = store.around(DUEL, board, player, before=1, after=1)
            assert found is not None
            assert [r.player_id for _, r in found.entries] == ordered[at - 1 : at + 2], (board, player)
            assert [rank for rank, _ in found.entries] == [
                1 if p == "leader" else 2 for p in ordered[at - 1 : at + 2]
            ]


# --- other operators, orders and tie-breaks ------------------------------------------------------


def credit(store: LeaderboardStore, board: Board, player: str, *contributions: Contribution) -> None:
    done = store.credit_row(board, board.key("alltime", _AT), player, list(contributions), expires=None)
    if done.held is not None:
        store.sync(board.key("alltime", _AT), {player: done.held}, expires=None)


_AT = __import__("datetime").datetime(2026, 11, 23, tzinfo=__import__("datetime").UTC)


def test_best_keeps_the_best_finished_match_and_first_to_reach_breaks_ties(store: LeaderboardStore) -> None:
    board = KINDS["first"]
    key = board.key("alltime", _AT)
    credit(store, board, "late", Contribution(M1, 0, 80, at=5_000, finished=True))
    credit(store, board, "early", Contribution(M1, 0, 60, at=1_000, finished=True))
    credit(store, board, "early", Contribution(M2, 0, 80, at=3_000, finished=True))  # 80, before "late"
    credit(store, board, "early", Contribution(M2, 0, 40, at=9_000, finished=True))  # worse: kept 80
    credit(store, board, "running", Contribution(M1, 0, 500, at=1_000))  # not finished: no result
    credit(store, board, "low", Contribution(M1, 0, 10, at=0, finished=True))
    page = store.top(board, key, 10)
    assert [(rank, r.player_id, r.score) for rank, r in page.entries] == [
        (1, "early", 80),
        (2, "late", 80),
        (3, "low", 10),
    ]
    assert store.rank_of(board, key, "late") == (2, page.entries[1][1])
    assert [r.player_id for _, r in store.page(board, key, 5, anchor=page.entries[0][1]).entries] == [
        "late",
        "low",
    ]


def test_set_keeps_the_latest_and_an_ascending_board_ranks_the_lowest_first(store: LeaderboardStore) -> None:
    board = KINDS["fewest"]
    key = board.key("alltime", _AT)
    credit(store, board, "a", Contribution(M1, 0, 30, at=1_000))
    credit(store, board, "a", Contribution(M2, 0, 12, at=2_000))  # later: replaces 30
    credit(store, board, "a", Contribution(M1, 0, 99, at=1_500))  # earlier than the last: ignored
    credit(store, board, "b", Contribution(M1, 0, 20, at=1_000))
    credit(store, board, "c", Contribution(M1, 0, 12, at=1_000))
    assert [(rank, r.player_id, r.score) for rank, r in store.top(board, key, 10).entries] == [
        (1, "a", 12),
        (1, "c", 12),
        (3, "b", 20),
    ]


def test_a_subscore_breaks_ties_and_is_shown(store: LeaderboardStore) -> None:
    board = KINDS["wins"]
    key = board.key("alltime", _AT)
    credit(store, board, "winner", Contribution(M1, 0, 200, at=1_000, won=True, finished=True))
    credit(store, board, "loser", Contribution(M2, 0, 200, at=1_000, finished=True))
    credit(store, board, "other", Contribution(M2, 0, 150, at=1_000, won=True, finished=True))
    assert [(rank, r.player_id, r.score, r.subscore) for rank, r in store.top(board, key, 10).entries] == [
        (1, "winner", 200, 1),
        (2, "loser", 200, 0),
        (3, "other", 150, 1),
    ]
    found = store.around(board, key, "loser", before=1, after=1)
    assert found is not None and found.me[0] == 2
    assert tree.MAX_SCORE > 200
