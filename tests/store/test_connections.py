"""The connections table against moto, with the table created from serverless.yml."""

from __future__ import annotations

from typing import Any

import pytest

from backend.errors import BadRequest, ConnectionGone
from backend.ids import ConnectionId, MatchId, PlayerId
from backend.store.connections import MAX_CONNECTION_AGE, Connection, ConnectionStore

TABLE = "gamebackend-local-connections"


@pytest.fixture
def store(ddb: Any) -> ConnectionStore:
    return ConnectionStore(ddb, TABLE)


def conn(cid: str, player: str = "alice", at: int = 1_700_000_000_000) -> Connection:
    return Connection(ConnectionId(cid), PlayerId(player), at)


def test_put_get_delete(store: ConnectionStore, ddb: Any) -> None:
    store.put(conn("c1"))
    got = store.get(ConnectionId("c1"))
    assert got == conn("c1")
    item = ddb.get_item(TableName=TABLE, Key={"connectionId": {"S": "c1"}})["Item"]
    # Expires after API Gateway's own 2-hour limit, plus a margin.
    assert int(item["ttl"]["N"]) > 1_700_000_000 + MAX_CONNECTION_AGE
    assert store.delete(ConnectionId("c1")) == conn("c1")
    assert store.get(ConnectionId("c1")) is None


def test_delete_is_idempotent(store: ConnectionStore) -> None:
    assert store.delete(ConnectionId("never-existed")) is None


def test_fan_out_queries_the_match_index(store: ConnectionStore) -> None:
    store.put(conn("c1", "alice"))
    store.put(conn("c2", "bob"))
    store.put(conn("c3", "carol"))
    m = MatchId("m-" + "1" * 32)
    store.attach_match(ConnectionId("c1"), m)
    store.attach_match(ConnectionId("c2"), m)

    def members() -> list[tuple[str, str, int]]:
        return sorted((c.connection_id, c.player_id, c.connected_at) for c in store.in_match(m))

    assert members() == [("c1", "alice", 1_700_000_000_000), ("c2", "bob", 1_700_000_000_000)]
    store.detach_match(ConnectionId("c2"), m)
    assert members() == [("c1", "alice", 1_700_000_000_000)]
    # Detaching from a match the connection is not in changes nothing.
    store.detach_match(ConnectionId("c1"), MatchId("m-" + "2" * 32))
    assert members() == [("c1", "alice", 1_700_000_000_000)]


def test_attaching_a_closed_connection_fails_cleanly(store: ConnectionStore) -> None:
    with pytest.raises(ConnectionGone):
        store.attach_match(ConnectionId("gone"), MatchId("m-" + "1" * 32))
    assert store.get(ConnectionId("gone")) is None


def test_connections_of_a_player(store: ConnectionStore) -> None:
    store.put(conn("c1", "alice"))
    store.put(conn("c2", "alice"))
    store.put(conn("c3", "bob"))
    assert {c.connection_id for c in store.of_player(PlayerId("alice"))} == {"c1", "c2"}


def test_pages_follow_their_cursor_and_a_forged_cursor_is_a_bad_request(store: ConnectionStore) -> None:
    for i in range(3):
        store.put(conn(f"c{i}"))
    first, cursor = store.all(limit=2)
    assert cursor is not None
    rest, _ = store.all(limit=2, cursor=cursor)
    assert sorted(c.connection_id for c in first + rest) == ["c0", "c1", "c2"]
    # The admin API hands cursors to clients. DynamoDB refuses a start key that is not the table's key
    # (ValidationException, a 500 if it got through); moto even crashes on some. The store refuses first.
    for forged in ({"foo": {"S": "x"}}, {"connectionId": {"N": "1"}}, {"connectionId": "c1"}, ["c1"]):
        with pytest.raises(BadRequest):
            store.all(limit=2, cursor=forged)  # type: ignore[arg-type]
