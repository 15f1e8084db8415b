"""The matches table against moto: matchmaking's roster and the processor's state, on one item."""

from __future__ import annotations

from typing import Any

import pytest

from backend.errors import BadRequest, Conflict, MatchFull, MatchNotFound, StaleState
from backend.game import modes
from backend.game.rules import Match, Player
from backend.store.matches import MATCH_TTL, MatchStore, Roster, Stored

TABLE = "gamebackend-local-matches"
T0 = 1_700_000_000_000


def mid(n: int) -> str:
    return f"m-{n:032x}"


@pytest.fixture
def store(ddb: Any) -> MatchStore:
    return MatchStore(ddb, TABLE)


def open_ids(store: MatchStore, mode: str) -> list[str]:
    """The matches of a mode that still take players: those carrying `openMode` (a seat is claimed only
    while it is there)."""
    items = store._ddb.scan(TableName=TABLE, ConsistentRead=True)["Items"]
    return sorted(i["matchId"]["S"] for i in items if i.get("openMode") == {"S": mode})


# --- matchmaking -----------------------------------------------------------------------------------


def test_create_writes_the_roster_and_opens_a_multi_seat_match(store: MatchStore, ddb: Any) -> None:
    roster = store.create(mid(1), "duel", "alice", now_ms=T0)
    assert (roster.match_id, roster.mode, roster.players, roster.created_at) == (
        mid(1),
        "duel",
        ("alice",),
        T0,
    )
    read = store.roster(mid(1))
    assert (read.match_id, read.mode, read.players, read.created_at) == (mid(1), "duel", ("alice",), T0)
    assert read.status in (None, "waiting")
    assert open_ids(store, "duel") == [mid(1)]
    assert open_ids(store, "arena") == []
    item = ddb.get_item(TableName=TABLE, Key={"matchId": {"S": mid(1)}})["Item"]
    assert item["rosterCount"] == {"N": "1"}
    assert int(item["ttl"]["N"]) == T0 // 1000 + MATCH_TTL
    # The processor has not applied anything yet: no game state on the item.
    assert "version" not in item
    assert store.load(mid(1)) == Stored(Match(mid(1), "duel"), seq=0)
    # An id is never reused: a second create fails (in the project's own terms) and leaves the first alone.
    with pytest.raises(Conflict):
        store.create(mid(1), "duel", "mallory", now_ms=T0 + 1)
    assert store.roster(mid(1)).players == ("alice",)
    with pytest.raises(MatchNotFound):
        store.roster(mid(9))
    with pytest.raises(MatchNotFound):
        store.load(mid(9))


def test_a_practice_match_is_full_at_creation_and_never_open(store: MatchStore) -> None:
    roster = store.create(mid(1), "practice", "alice", now_ms=T0)
    assert roster.full
    assert open_ids(store, "practice") == []
    with pytest.raises(MatchFull):
        store.claim_seat(roster, "bob")
    assert store.roster(mid(1)).players == ("alice",)


def test_claim_seat_fills_the_match_then_closes_it(store: MatchStore) -> None:
    for n, (mode, seats) in enumerate([("duel", 2), ("arena", 8)], start=1):
        roster = store.create(mid(n), mode, "p0", now_ms=T0)
        for i in range(1, seats):
            assert open_ids(store, mode) == [mid(n)]
            roster = store.claim_seat(roster, f"p{i}")
            assert roster.players == tuple(f"p{j}" for j in range(i + 1))
            assert store.roster(mid(n)).players == roster.players
        assert roster.full
        assert open_ids(store, mode) == []
        with pytest.raises(MatchFull):
            store.claim_seat(roster, "late")
        # A roster read before the match filled up gets a refusal, not a seat.
        with pytest.raises(StaleState):
            store.claim_seat(Roster(mid(n), mode, roster.players[:-1], T0), "late")
        assert store.roster(mid(n)).players == roster.players


def test_a_stale_roster_cannot_claim_a_seat(store: MatchStore) -> None:
    first = store.create(mid(1), "arena", "alice", now_ms=T0)
    store.claim_seat(first, "bob")
    with pytest.raises(StaleState):
        store.claim_seat(first, "carol")  # still believes the roster is [alice]
    assert store.roster(mid(1)).players == ("alice", "bob")
    # Read again, then it works.
    store.claim_seat(store.roster(mid(1)), "carol")
    assert store.roster(mid(1)).players == ("alice", "bob", "carol")


def test_concurrent_claims_of_the_last_seat_exactly_one_wins(store: MatchStore) -> None:
    for n, (mode, contenders) in enumerate([("duel", 5), ("arena", 3)], start=1):
        roster = store.create(mid(n), mode, "p0", now_ms=T0)
        while len(roster.players) < modes.mode(mode).seats - 1:
            roster = store.claim_seat(roster, f"p{len(roster.players)}")
        # Every contender reads the same roster (one seat left) before any of them writes: a
        # conditional write serializes them, so this is the interleaving that matters.
        seen = [store.roster(mid(n)) for _ in range(contenders)]
        winners, losers = [], []
        for i, r in enumerate(seen):
            try:
                store.claim_seat(r, f"c{i}")
                winners.append(f"c{i}")
            except StaleState:
                losers.append(f"c{i}")
        assert len(winners) == 1, mode
        assert len(losers) == contenders - 1
        final = store.roster(mid(n))
        assert final.players == (*roster.players, winners[0])
        assert final.full
        assert open_ids(store, mode) == []


# --- game state ------------------------------------------------------------------------------------


def game(match_id: str, **changes: Any) -> Match:
    base: dict[str, Any] = {
        "match_id": match_id,
        "mode": "duel",
        "status": "running",
        "version": 2,
        "players": {"alice": Player(), "bob": Player()},
    }
    return Match(**{**base, **changes})


def test_save_and_load_many_round_trip_state_seq_and_connections(store: MatchStore) -> None:
    store.create(mid(1), "duel", "alice", now_ms=T0)
    store.create(mid(2), "arena", "carol", now_ms=T0)
    finished = game(
        mid(1),
        status="finished",
        version=7,
        players={"alice": Player(200, 3, 4, False), "bob": Player(15, 1000, 0, True)},
        winner="alice",
        seen={"alice": ("a1", "a2:x"), "bob": ("b1",)},
    )
    # A real Kinesis sequence number: far beyond 64 bits.
    seq = 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898
    stored = Stored(finished, seq=seq, connections={"alice": "c-alice", "bob": "c-bob-2"})
    store.save(stored, expected_version=0, events=[], last_at=T0)
    got = store.load_many([mid(1), mid(2), mid(3)])
    assert set(got) == {mid(1), mid(2)}  # an unknown match is simply absent
    assert got[mid(1)] == stored
    assert store.load(mid(1)) == stored
    # Not processed yet: an empty waiting match, nothing applied.
    assert got[mid(2)] == Stored(Match(mid(2), "arena"), seq=0)


def test_load_many_reads_more_than_one_batch(store: MatchStore) -> None:
    ids = [mid(i) for i in range(1, 131)]
    for n, m in enumerate(ids):
        store.create(m, "duel", f"p{n}", now_ms=T0 + n)
    store.save(Stored(game(mid(130), version=1), seq=5), expected_version=0, events=[], last_at=T0)
    got = store.load_many(ids)
    assert set(got) == set(ids)
    assert got[mid(130)].seq == 5
    assert got[mid(1)].match == Match(mid(1), "duel")


def test_save_with_a_wrong_expected_version_is_stale(store: MatchStore) -> None:
    store.create(mid(1), "duel", "alice", now_ms=T0)
    v1 = Stored(game(mid(1), version=1, status="waiting", players={"alice": Player()}), seq=10)
    store.save(v1, expected_version=0, events=[], last_at=T0)
    v2 = Stored(game(mid(1), version=2), seq=11)
    for wrong in (0, 2, 5):
        with pytest.raises(StaleState):
            store.save(v2, expected_version=wrong, events=[], last_at=T0)
    assert store.load(mid(1)) == v1
    store.save(v2, expected_version=1, events=[], last_at=T0)
    assert store.load(mid(1)) == v2


def test_the_processor_state_leaves_the_roster_alone(store: MatchStore) -> None:
    roster = store.create(mid(1), "duel", "alice", now_ms=T0)
    waiting = game(mid(1), status="waiting", version=1, players={"alice": Player()})
    store.save(Stored(waiting, seq=1), expected_version=0, events=[], last_at=T0)
    assert store.roster(mid(1)) == Roster(mid(1), "duel", ("alice",), T0, status="waiting", gen=1, open=True)
    # Still open while waiting: a second player can take the seat.
    assert open_ids(store, "duel") == [mid(1)]
    store.claim_seat(roster, "bob")
    assert store.roster(mid(1)).players == ("alice", "bob")
    assert store.load(mid(1)).match == waiting


def test_a_finished_match_takes_no_more_players(store: MatchStore) -> None:
    roster = store.create(mid(1), "arena", "alice", now_ms=T0)
    left = game(mid(1), mode="arena", status="finished", version=2, players={"alice": Player(left=True)})
    store.save(Stored(left, seq=2), expected_version=0, events=[], last_at=T0)
    assert open_ids(store, "arena") == []
    with pytest.raises(StaleState):
        store.claim_seat(roster, "bob")
    assert store.roster(mid(1)).status == "finished"


def test_the_status_listing_pages_newest_first_and_refuses_a_forged_cursor(store: MatchStore) -> None:
    for i in range(1, 4):
        store.create(mid(i), "duel", "alice", now_ms=T0 + i)
    first, cursor = store.by_status("waiting", limit=2)
    assert [m["matchId"] for m in first] == [mid(3), mid(2)]
    assert cursor is not None
    rest, _ = store.by_status("waiting", limit=2, cursor=cursor)
    assert [m["matchId"] for m in rest] == [mid(1)]
    # A cursor of another listing, or not a key of the index at all: DynamoDB answers a
    # ValidationException ("does not match the range key predicate"), where moto lists from it anyway.
    other = {**cursor, "status": {"S": "running"}}
    for forged in (other, {"matchId": cursor["matchId"]}, {**cursor, "createdAt": {"N": "soon"}}):
        with pytest.raises(BadRequest):
            store.by_status("waiting", limit=2, cursor=forged)
