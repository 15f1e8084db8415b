"""The timers: SQS delays (backend.store.timers), the timers function (streams.timers), the local SQS
event source's delete-or-keep decision (local.sqspoller), and `$connect`'s limit of connections per
player (backend.sessions.Admission); all with fakes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from backend.ids import ConnectionId, MatchId, PlayerId
from backend.sessions import Admission
from backend.store.connections import Connection
from backend.store.timers import MAX_DELAY_SECONDS, Due, TimerQueue, delay_seconds
from local.lambdas import Invocation
from local.sqspoller import kept
from streams.timers import Timers

NOW = 1_795_428_000_000
M1 = "m-" + "1" * 32
M2 = "m-" + "2" * 32


class FakeSqs:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def get_queue_url(self, QueueName: str) -> dict[str, str]:
        return {"QueueUrl": f"https://sqs.local/{QueueName}"}

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.sent += Entries
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}


def test_a_delay_is_rounded_up_and_capped_at_sqs_maximum() -> None:
    assert delay_seconds(NOW + 2001, NOW) == 3  # never early
    assert delay_seconds(NOW - 5, NOW) == 0
    assert delay_seconds(NOW + 3600_000, NOW) == MAX_DELAY_SECONDS


def test_timers_are_sent_ten_a_call_with_when_they_are_due() -> None:
    sqs = FakeSqs()
    queue = TimerQueue(sqs, "timers")
    queue.schedule([Due(M1, f"p{i}", "grace", i + 1, 30_000) for i in range(12)], now_ms=NOW)
    assert len(sqs.sent) == 12
    body = json.loads(sqs.sent[0]["MessageBody"])
    assert body == {
        "kind": "timer",
        "matchId": M1,
        "playerId": "p0",
        "timer": "grace",
        "ref": 1,
        "dueAt": NOW + 30_000,
    }
    assert {e["DelaySeconds"] for e in sqs.sent} == {30}


@dataclass
class FakeStream:
    published: list[Any] = field(default_factory=list)

    def publish_many(self, events: list[Any]) -> None:
        self.published += events


@dataclass
class FakeConnections:
    items: dict[str, Connection] = field(default_factory=dict)

    def get(self, connection_id: ConnectionId) -> Connection | None:
        return self.items.get(connection_id)

    def put(self, conn: Connection) -> None:
        self.items[conn.connection_id] = conn

    def of_player(self, player: PlayerId) -> list[Connection]:
        return [c for c in self.items.values() if c.player_id == player]


@dataclass
class FakeGateway:
    gone: set[str] = field(default_factory=set)
    posted: list[tuple[str, str]] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)

    def alive(self, connection_id: str) -> bool:
        return connection_id not in self.gone

    def post(self, connection_id: str, data: str) -> bool:
        if connection_id in self.gone:
            return False
        self.posted.append((connection_id, data))
        return True

    def close(self, connection_id: str) -> bool:
        self.closed.append(connection_id)
        return connection_id not in self.gone


@dataclass
class FakeSessions:
    ended: list[str] = field(default_factory=list)

    def found_gone(self, conn: Connection) -> None:
        self.ended.append(conn.connection_id)


def message(body: dict[str, Any], mid: str = "1") -> dict[str, Any]:
    return {"messageId": mid, "body": json.dumps(body)}


def timers(conns: FakeConnections | None = None, gateway: FakeGateway | None = None) -> Any:
    sqs = FakeSqs()
    t = Timers(
        queue=TimerQueue(sqs, "timers"),
        stream=FakeStream(),  # type: ignore[arg-type]
        connections=conns or FakeConnections(),  # type: ignore[arg-type]
        sessions=FakeSessions(),  # type: ignore[arg-type]
        gateway=gateway or FakeGateway(),  # type: ignore[arg-type]
        probe_every=2.0,
    )
    return t, sqs


def test_a_due_timer_becomes_a_timer_record_of_its_match() -> None:
    t, _ = timers()
    body = {"kind": "timer", "matchId": M1, "playerId": "alice", "timer": "grace", "ref": 4, "dueAt": 0}
    assert t.handle({"Records": [message(body)]}) == {"batchItemFailures": []}
    (event,) = t.stream.published
    assert (event.type, event.matchId, event.playerId, event.timer, event.ref) == (
        "timer",
        M1,
        "alice",
        "grace",
        4,
    )


def test_a_timer_not_due_yet_goes_back_with_the_rest_of_its_delay() -> None:
    t, sqs = timers()
    body = {"kind": "timer", "matchId": M1, "playerId": "a", "timer": "grace", "ref": 1, "dueAt": 2**52}
    assert t.handle({"Records": [message(body)]}) == {"batchItemFailures": []}
    assert t.stream.published == []
    assert [e["DelaySeconds"] for e in sqs.sent] == [MAX_DELAY_SECONDS]


def test_a_probe_of_a_gone_connection_ends_it_and_a_live_one_is_probed_again() -> None:
    conns = FakeConnections()
    for cid in ("live", "dead"):
        conns.put(Connection(ConnectionId(cid), PlayerId("alice"), NOW, match_id=MatchId(M1)))
    t, sqs = timers(conns, FakeGateway(gone={"dead"}))
    probes = [
        message({"kind": "probe", "connectionId": c, "matchId": M1, "playerId": "alice", "dueAt": 0}, c)
        for c in ("live", "dead")
    ]
    assert t.handle({"Records": probes}) == {"batchItemFailures": []}
    assert t.sessions.ended == ["dead"]
    assert [json.loads(e["MessageBody"])["connectionId"] for e in sqs.sent] == ["live"]


def test_a_probe_of_a_connection_that_moved_on_stops() -> None:
    conns = FakeConnections()
    conns.put(Connection(ConnectionId("c"), PlayerId("alice"), NOW, match_id=MatchId(M2)))
    t, sqs = timers(conns, FakeGateway(gone={"c"}))
    body = {"kind": "probe", "connectionId": "c", "matchId": M1, "playerId": "alice", "dueAt": 0}
    assert t.handle({"Records": [message(body)]}) == {"batchItemFailures": []}
    assert t.sessions.ended == [] and sqs.sent == []


def test_an_unreadable_message_is_reported_failed_and_the_others_go_on() -> None:
    t, _ = timers()
    good = {"kind": "timer", "matchId": M1, "playerId": "a", "timer": "grace", "ref": 1, "dueAt": 0}
    records = [{"messageId": "bad", "body": "{"}, message(good, "good")]
    assert t.handle({"Records": records}) == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert len(t.stream.published) == 1


def test_the_local_event_source_keeps_what_the_function_reports_failed() -> None:
    batch = [{"MessageId": "a"}, {"MessageId": "b"}]
    ok = Invocation(ok=True, result={"batchItemFailures": [{"itemIdentifier": "b"}]})
    assert kept(batch, ok, report_failures=True) == {"b"}
    assert kept(batch, ok, report_failures=False) == set()
    unknown = Invocation(ok=True, result={"batchItemFailures": [{"itemIdentifier": "zzz"}]})
    assert kept(batch, unknown, report_failures=True) == {"a", "b"}
    failed = Invocation(ok=False, result=None)
    assert kept(batch, failed, report_failures=True) == {"a", "b"}


def test_a_connection_beyond_the_limit_closes_the_players_oldest() -> None:
    conns = FakeConnections()
    gateway = FakeGateway(gone={"c0"})  # c0 died unseen: its $disconnect never came
    sessions = FakeSessions()
    admission = Admission(conns, gateway, lambda: sessions, max_per_player=2)  # type: ignore[arg-type]
    for i in range(3):
        conns.put(Connection(ConnectionId(f"c{i}"), PlayerId("alice"), NOW + i))
    closed = admission.admit(Connection(ConnectionId("c3"), PlayerId("alice"), NOW + 3))
    assert closed == ["c0", "c1"]
    assert [c for c, _ in gateway.posted] == ["c1"]
    assert json.loads(gateway.posted[0][1])["code"] == "too_many_connections"
    assert gateway.closed == ["c1"]
    assert sessions.ended == ["c0"]  # gone already: ended as a probe ends it
    assert admission.admit(Connection(ConnectionId("x"), PlayerId("bob"), NOW)) == []
