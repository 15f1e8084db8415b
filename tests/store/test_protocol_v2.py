"""Protocol v2 and presence through the processor, in-process against moto (tests.store.test_processor's
World): one `state` content per (matchId, version), a retry's own confirmation, rejections sent once, a
drop's presence frame and grace timer, and schema evolution (v1 and v2 records in one batch, an event
log written before the change)."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3

from backend.game import modes, rules
from backend.protocol import EVENT_SCHEMA_VERSION
from backend.store.events import LOG_RETENTION
from tests.store.kinesis_events import b64, record
from tests.store.test_processor import EVENTS, PREFIX, World, mid, world

__all__ = ["world"]  # the fixture, imported for pytest


def timers_sent() -> list[dict[str, Any]]:
    """Every message on the timers queue now (delays ignored: moto hands out a delayed one only when
    due, so they are read from the queue's own store)."""
    from moto.backends import get_backend

    queues = get_backend("sqs")["123456789012"]["us-east-1"].queues
    queue = queues[f"{PREFIX}-timers"]
    return [json.loads(m.body) for m in queue._messages]


def test_a_batch_of_refusals_delivered_again_sends_its_rejections_once(world: World) -> None:
    f = world.feed
    m = world.start(mid(1), "duel", ["alice", "bob"])
    assert world.deliver(f.records) == {"batchItemFailures": []}
    world.pusher.sent.clear()
    refused = [f.publish(m, "mallory", "score", "x1", points=5)]
    assert world.deliver(refused) == {"batchItemFailures": []}
    assert [frame["id"] for _, frame in world.pusher.of_type("rejected")] == ["x1"]
    world.pusher.sent.clear()
    assert world.deliver(refused) == {"batchItemFailures": []}
    assert world.pusher.sent == []


def test_one_version_has_one_state_content_and_a_rejoin_gets_that_very_frame(world: World) -> None:
    f = world.feed
    m = world.start(mid(1), "duel", ["alice", "bob"])
    f.score(m, "alice", "a1", 10)
    assert world.deliver(f.records) == {"batchItemFailures": []}
    (first, *_) = [s for cid, s in world.pusher.of_type("state") if cid == "c-bob"]
    world.pusher.sent.clear()
    # bob comes back on a new connection; nothing else happens in that batch.
    rejoin = f.publish(m, "bob", "join", "j2", connection="c-bob-2", mode="duel")
    assert world.deliver([rejoin]) == {"batchItemFailures": []}
    assert [s for cid, s in world.pusher.of_type("state") if cid == "c-bob-2"] == [first]


def test_a_retry_is_confirmed_by_its_own_frame_never_a_second_state(world: World) -> None:
    f = world.feed
    m = world.start(mid(1), "duel", ["alice", "bob"])
    first = f.score(m, "alice", "a1", 10)
    assert world.deliver(f.records) == {"batchItemFailures": []}
    world.pusher.sent.clear()
    retry = f.retry(first)
    other = f.score(m, "bob", "b1", 5)
    assert world.deliver([retry, other]) == {"batchItemFailures": []}
    by_version: dict[int, set[str]] = {}
    for _, s in world.pusher.of_type("state"):
        by_version.setdefault(s["version"], set()).add(json.dumps(s, sort_keys=True))
    assert all(len(contents) == 1 for contents in by_version.values()), by_version
    assert [c for cid, c in world.pusher.of_type("confirmed") if cid == "c-alice"] == [
        {"type": "confirmed", "matchId": m, "ids": ["a1"], "version": 4}
    ]


def test_a_drop_is_told_to_the_others_and_its_grace_timer_forfeits(world: World) -> None:
    f = world.feed
    m = world.start(mid(1), "duel", ["alice", "bob"])
    f.score(m, "bob", "b1", 10)
    assert world.deliver(f.records) == {"batchItemFailures": []}
    world.pusher.sent.clear()
    f.publish(m, "alice", "disconnect", connection="c-alice", reason="closed")
    assert world.deliver(f.records) == {"batchItemFailures": []}
    stored = world.matches.load(m)
    assert stored.match.players["alice"].presence == "away"
    assert "alice" not in stored.connections
    grace = modes.mode(stored.match.mode).settings.grace_ms
    assert [p for cid, p in world.pusher.of_type("presence") if cid == "c-bob"] == [
        {
            "type": "presence",
            "matchId": m,
            "playerId": "alice",
            "presence": "away",
            "version": 4,
            "graceMs": grace,
        }
    ]
    (timer,) = timers_sent()
    assert (timer["kind"], timer["matchId"], timer["playerId"], timer["ref"]) == ("timer", m, "alice", 4)
    # Due: the timers function puts it on the stream as a `timer` record of the match.
    world.pusher.sent.clear()
    f.publish(m, "alice", "timer", connection=None, timer="grace", ref=timer["ref"])
    assert world.deliver(f.records) == {"batchItemFailures": []}
    stored = world.matches.load(m)
    assert (stored.match.status, stored.match.winner) == ("finished", "bob")
    assert stored.match.players["alice"].presence == "forfeited"
    assert [p["presence"] for cid, p in world.pusher.of_type("presence") if cid == "c-bob"] == ["forfeited"]
    world.assert_exact()


def v1(event: dict[str, Any]) -> dict[str, Any]:
    """A record as the producer wrote it before v2: `v` 1, a `disconnect` without `reason`."""
    return {k: v for k, v in {**event, "v": 1}.items() if k not in ("reason", "released")}


def test_v1_and_v2_records_in_one_batch_are_applied_alike(world: World) -> None:
    f = world.feed
    m = world.start(mid(1), "duel", ["alice", "bob"])
    f.score(m, "alice", "a1", 10)
    # Before the deploy: a score and alice's disconnect written by the old producer, in the same batch.
    old_score = {"eventId": "old-1", "matchId": m, "playerId": "bob", "connectionId": "c-bob"}
    old_score |= {"receivedAt": f.now_ms, "type": "score", "actionId": "b1", "points": 7}
    old_drop = {"eventId": "old-2", "matchId": m, "playerId": "alice", "connectionId": "c-alice"}
    old_drop |= {"receivedAt": f.now_ms + 1, "type": "disconnect"}
    f.raw(m, v1(old_score))
    f.raw(m, v1(old_drop))
    f.score(m, "bob", "b2", 3)
    assert world.deliver(f.records) == {"batchItemFailures": []}
    assert world.dead_letters() == []
    stored = world.matches.load(m)
    assert stored.match.players["bob"].score == 10
    assert stored.match.players["alice"].presence == "away"  # v1's disconnect: upcast as `closed`
    logged = [e for _, e in world.log.read(m)]
    assert [e.v for e in logged] == [EVENT_SCHEMA_VERSION] * len(logged)
    assert [e.reason for e in logged if e.type == "disconnect"] == ["closed"]
    world.assert_exact()


def test_an_event_log_written_before_the_change_replays(world: World) -> None:
    m = mid(1)
    at = 1_795_428_000_000
    v1_events = [
        {"v": 1, "eventId": "e1", "matchId": m, "playerId": "alice", "receivedAt": at, "type": "join"}
        | {"mode": "duel", "connectionId": "c-alice"},
        {"v": 1, "eventId": "e2", "matchId": m, "playerId": "bob", "receivedAt": at + 1, "type": "join"}
        | {"mode": "duel", "connectionId": "c-bob"},
        {"v": 1, "eventId": "e3", "matchId": m, "playerId": "alice", "receivedAt": at + 2, "type": "score"}
        | {"actionId": "a1", "points": 40, "connectionId": "c-alice"},
        {"v": 1, "eventId": "e4", "matchId": m, "playerId": "bob", "receivedAt": at + 3, "type": "disconnect"}
        | {"connectionId": "c-bob"},
    ]
    # The chunk exactly as the projector wrote it before v2: no `schema` attribute, v1 events.
    item = {
        "matchId": {"S": m},
        "version": {"N": "1"},
        "events": {"S": json.dumps([[i + 1, e] for i, e in enumerate(v1_events)], separators=(",", ":"))},
        "ttl": {"N": str(at // 1000 + LOG_RETENTION)},
    }
    boto3.client("dynamodb", region_name="us-east-1").put_item(TableName=EVENTS, Item=item)
    world.modes[m] = "duel"
    events = world.log.read(m)
    assert [v for v, _ in events] == [1, 2, 3, 4]
    assert events[-1][1].reason == "closed"
    state = world.replayed(m)
    assert state.players["alice"].score == 40
    assert state.players["bob"].presence == "away"
    assert state.status == "running"
    assert isinstance(rules.apply(state, events[-1][1])[1], rules.Ignored)  # an away player's second drop


def test_an_unknown_schema_version_is_still_poison(world: World) -> None:
    f = world.feed
    m = world.start(mid(1), "practice", ["alice"])
    data = {
        "v": 4,
        "eventId": "e9",
        "matchId": m,
        "playerId": "alice",
        "receivedAt": f.now_ms,
        "type": "join",
    }
    f.records.append(record(b64(json.dumps(data)), m, 10**60))
    assert world.deliver(f.records) == {"batchItemFailures": []}
    (letter,) = world.dead_letters()
    assert letter["reason"] == "unknown schema version 4"
    assert json.loads(base64.b64decode(letter["record"]["kinesis"]["data"]))["v"] == 4
