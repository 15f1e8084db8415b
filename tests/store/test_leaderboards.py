"""The leaderboards table against moto: exactly-once credits and ranking through the sharded index."""

from __future__ import annotations

import random
from typing import Any

import pytest

from backend.store.leaderboards import SHARDS, LeaderboardStore, Row, shard_of

TABLE = "gamebackend-local-leaderboards"
BOARD = "duel#daily#2026-11-23"
OTHER = "duel#daily#2026-11-24"
M1 = "m-" + "1" * 32
M2 = "m-" + "2" * 32


@pytest.fixture
def store(ddb: Any) -> LeaderboardStore:
    return LeaderboardStore(ddb, TABLE)


def raw(ddb: Any, board: str, player: str) -> dict[str, Any]:
    item: dict[str, Any] = ddb.get_item(TableName=TABLE, Key={"entryId": {"S": f"{board}#{player}"}})["Item"]
    return item


def fill(store: LeaderboardStore, scores: dict[str, int], board: str = BOARD) -> None:
    for player, score in scores.items():
        store.credit(board, player, M1, believed=0, total=score, expires=None)


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


def test_top_merges_every_shard_in_rank_order(store: LeaderboardStore) -> None:
    fill(store, SCORES)
    fill(store, {"intruder": 10_000}, board=OTHER)
    # Fewer than one shard holds, more than one shard holds, more than the board holds.
    for limit in (1, 7, 15, 100):
        assert store.top(BOARD, limit) == expected_top(SCORES, limit), limit
    # The rank a player sees next to its row is its position in the top list.
    for position, row in enumerate(store.top(BOARD, 6), start=1):
        assert store.rank_of(BOARD, row.player_id) == (position, row.score)


def test_ties_are_ordered_by_player_id_and_share_a_rank(store: LeaderboardStore) -> None:
    tied = {"dave": 50, "bob": 50, "carol": 50, "alice": 90, "erin": 10}
    fill(store, tied)
    assert store.top(BOARD, 10) == [
        Row("alice", 90),
        Row("bob", 50),
        Row("carol", 50),
        Row("dave", 50),
        Row("erin", 10),
    ]
    assert store.rank_of(BOARD, "carol") == (2, 50)
    assert store.rank_of(BOARD, "dave") == (2, 50)
    assert store.rank_of(BOARD, "erin") == (5, 10)


def test_rank_counts_strictly_higher_scores_on_every_shard(store: LeaderboardStore) -> None:
    fill(store, SCORES)
    for player, score in SCORES.items():
        higher = sum(1 for s in SCORES.values() if s > score)
        assert store.rank_of(BOARD, player) == (higher + 1, score)
    assert store.rank_of(BOARD, "nobody") is None
    assert store.rank_of(OTHER, "player00") is None


def test_around_returns_the_neighbours_with_their_ranks(store: LeaderboardStore) -> None:
    fill(store, SCORES)
    ordered = [r.player_id for r in expected_top(SCORES, len(SCORES))]
    # The best four share a shard, and so do some others: enough to catch a per-shard read too short.
    for at in [*range(8), 19, 20, 21, 36, 37, 38, 39]:
        player = ordered[at]
        rows = store.around(BOARD, player, SCORES[player], at + 1, width=2)
        first = max(0, at - 2)
        assert [(rank, r.player_id) for rank, r in rows] == [
            (i + 1, p) for i, p in enumerate(ordered[first : at + 3], start=first)
        ], at
        assert all(r.score == SCORES[r.player_id] for _, r in rows)
    middle = ordered[20]
    rows = store.around(BOARD, middle, SCORES[middle], 21, width=4)
    assert [r.player_id for _, r in rows] == ordered[16:25]
    assert store.around(BOARD, "nobody", 123, 1) == []


def test_remove_deletes_the_row_from_every_view(store: LeaderboardStore) -> None:
    fill(store, SCORES)
    best = expected_top(SCORES, 1)[0]
    assert store.remove(BOARD, best.player_id) is True
    assert store.score_of(BOARD, best.player_id) is None
    assert store.rank_of(BOARD, best.player_id) is None
    remaining = {p: s for p, s in SCORES.items() if p != best.player_id}
    assert store.top(BOARD, 5) == expected_top(remaining, 5)
    second = expected_top(remaining, 1)[0]
    assert store.rank_of(BOARD, second.player_id) == (1, second.score)
    assert store.remove(BOARD, best.player_id) is False


# --- ties beyond one shard read ----------------------------------------------------------------------

# Eight players on one index shard, inserted in both orders on two boards, so that the result cannot
# depend on the order the index happens to return equal scores in.
TIED = sorted(p for p in (f"t{i}" for i in range(60)) if shard_of(p) == 0)[:8]


def fill_tied(store: LeaderboardStore, score: int = 50) -> None:
    assert len(TIED) == 8
    for board, order in ((BOARD, TIED), (OTHER, TIED[::-1])):
        for p in order:
            store.credit(board, p, M1, believed=0, total=score, expires=None)
        store.credit(board, "leader", M1, believed=0, total=score + 40, expires=None)


def test_top_breaks_ties_by_player_id_even_at_the_cut_off(store: LeaderboardStore) -> None:
    fill_tied(store)
    for board in (BOARD, OTHER):
        for limit in range(1, 11):
            expected = [Row("leader", 90)] + [Row(p, 50) for p in TIED[: limit - 1]]
            assert store.top(board, limit) == expected, (board, limit)


def test_around_places_the_player_among_many_equal_scores(store: LeaderboardStore) -> None:
    fill_tied(store)
    ordered = ["leader", *TIED]
    for board in (BOARD, OTHER):
        assert store.rank_of(board, TIED[3]) == (2, 50)  # ties share a rank
        for at, player in enumerate(ordered[1:], start=1):
            rows = store.around(board, player, 50, 2, width=1)
            assert [r.player_id for _, r in rows] == ordered[at - 1 : at + 2], (board, player)
            assert [rank for rank, _ in rows] == [1 if p == "leader" else 2 for p in ordered[at - 1 : at + 2]]
