"""The hot path and the cold path, in-process against moto: Kinesis batches into the processor (state
and pushes), then the matches table's stream into the leaderboard projector (boards, ranks, the event
log), as Lambda's event-source mappings hand them over.

Matches are created the way matchmaking creates them (MatchStore.create / claim_seat); records are
built by tests.store.kinesis_events.Feed; the projector gets the records moto's table stream holds, in
tumbling windows (World.project); pushes go to a fake Pusher that records what it was asked to send.
Every expectation of state is computed by folding the same pure rules over the feed, and the important
ones are also written out by hand.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from backend.game import modes, rules
from backend.game import ranktree as tree
from backend.game.boards import Boards, configured
from backend.ids import ConnectionId, MatchId, PlayerId
from backend.protocol import GameEvent
from backend.push import PushReport
from backend.sessions import Sessions
from backend.store.connections import Connection, ConnectionStore
from backend.store.events import EventLog
from backend.store.leaderboards import LeaderboardStore, counts_of
from backend.store.matches import MatchStore
from backend.store.stream import ActionStream
from backend.store.timers import TimerQueue
from local.tablestream import _jsonable
from streams import processor, projector
from streams.deadletter import DeadLetters
from streams.decode import Staged, decode
from streams.pipeline import step
from tests.store.kinesis_events import (
    START,
    STREAM_ARN,
    Feed,
    batch,
    event_of,
    from_sequence,
    sequence_of,
)

PREFIX = "gamebackend-local"
CONNECTIONS = f"{PREFIX}-connections"
MATCHES = f"{PREFIX}-matches"
LEADERBOARDS = f"{PREFIX}-leaderboards"
EVENTS = f"{PREFIX}-events"
DLQ = f"{PREFIX}-actions-dlq"
ENV = {
    "STAGE": "local",
    "CONNECTIONS_TABLE": CONNECTIONS,
    "MATCHES_TABLE": MATCHES,
    "LEADERBOARDS_TABLE": LEADERBOARDS,
    "EVENTS_TABLE": EVENTS,
    "GAME_STREAM": f"{PREFIX}-actions",
    "ACTION_DLQ": DLQ,
    "PROJECTOR_DLQ": f"{PREFIX}-projector-dlq",
    "WS_API_ENDPOINT": "http://127.0.0.1:9/local",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "gamebackend",
    "POWERTOOLS_METRICS_NAMESPACE": "GameBackend",
}
CREATED_MS = int(START.timestamp() * 1000) - 60_000
DAY = "2026-11-23"
WEEK = "2026-W48"


def keys(mode: str) -> list[str]:
    """Every board key a score of a match of `mode` on START's day counts towards."""
    return [b.key(p.name, START) for b in configured().for_mode(mode) for p in b.periods]


def board_key(board: str, period: str, at: datetime, season: int = 0) -> str:
    return configured()[board].key(period, at, season)


def mid(n: int) -> str:
    return f"m-{n:032x}"


class FakePusher:
    def __init__(self) -> None:
        from backend.breaker import CircuitBreaker

        self.sent: list[tuple[str, str]] = []
        self.gone: set[str] = set()
        self.breaker = CircuitBreaker("ManagementApi")  # as Pusher has: its state is logged

    def send(self, messages: list[tuple[str, str]]) -> PushReport:
        self.sent.extend(messages)
        report = PushReport()
        for cid, _ in messages:
            if cid in self.gone:
                report.gone.append(cid)
            else:
                report.sent += 1
        return report

    async def post_all(self, messages: list[tuple[str, str]]) -> PushReport:
        return self.send(messages)

    def run(self, work: Any) -> Any:
        return asyncio.run(work)

    def frames(self, connection_id: str) -> list[dict[str, Any]]:
        return [json.loads(data) for cid, data in self.sent if cid == connection_id]

    def of_type(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        return [(cid, f) for cid, data in self.sent if (f := json.loads(data))["type"] == kind]


class World:
    def __init__(self, ddb: Any, pusher: FakePusher) -> None:
        self.ddb = ddb
        self.pusher = pusher
        self.matches = MatchStore(ddb, MATCHES)
        self.boards = LeaderboardStore(ddb, LEADERBOARDS)
        self.log = EventLog(ddb, EVENTS)
        self.connections = ConnectionStore(ddb, CONNECTIONS)
        import boto3

        kinesis, sqs = (boto3.client(name, region_name="us-east-1") for name in ("kinesis", "sqs"))
        # The two functions, built as their handler modules build them, from these stores and the fake.
        self.timers = TimerQueue(sqs, f"{PREFIX}-timers")
        self.processor = processor.Processor(
            matches=self.matches,
            sessions=Sessions(self.connections, ActionStream(kinesis, ENV["GAME_STREAM"]), self.matches),
            pusher=pusher,  # type: ignore[arg-type]
            dead_letters=DeadLetters(sqs, DLQ),
            timers=self.timers,
        )
        self.projector = projector.Projector(
            leaderboards=self.boards,
            events=self.log,
            connections=self.connections,
            pusher=pusher,  # type: ignore[arg-type]
            dead_letters=DeadLetters(sqs, ENV["PROJECTOR_DLQ"]),
        )
        self.feed = Feed()
        self.modes: dict[str, str] = {}
        self._requests = 0
        self._stream = _TableStream(ddb)

    # --- setting up, as matchmaking and $connect do -------------------------------------------------

    def seat(self, match_id: str, mode: str, players: list[str]) -> str:
        roster = self.matches.create(match_id, mode, players[0], now_ms=CREATED_MS)
        for p in players[1:]:
            roster = self.matches.claim_seat(roster, p)
        self.modes[match_id] = mode
        return match_id

    def start(self, match_id: str, mode: str, players: list[str]) -> str:
        """Seats the players and publishes their joins."""
        self.seat(match_id, mode, players)
        for p in players:
            self.feed.join(match_id, p, mode)
        return match_id

    def connect(self, player: str, match_id: str | None, cid: str | None = None) -> str:
        cid = cid or f"c-{player}"
        self.connections.put(Connection(ConnectionId(cid), PlayerId(player), CREATED_MS))
        if match_id:
            self.connections.attach_match(ConnectionId(cid), MatchId(match_id))
        return cid

    # --- the Lambda --------------------------------------------------------------------------------

    def _context(self, function: str) -> Any:
        self._requests += 1
        return SimpleNamespace(
            function_name=f"{PREFIX}-{function}",
            memory_limit_in_mb=512,
            invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{PREFIX}-{function}",
            aws_request_id=f"req-{self._requests}",
        )

    def deliver(self, records: list[dict[str, Any]], *, project: bool = True) -> dict[str, Any]:
        """One processor invocation with these Kinesis records; then (unless project=False, or it
        raised) the projector's window over what that wrote to the table's stream."""
        response: dict[str, Any] = self.processor.process(batch(records), self._context("processor"))
        if project:
            self.project()
        return response

    def published(self) -> list[GameEvent]:
        """What the functions put on the (moto) Kinesis stream themselves, since the last call."""
        import boto3

        kinesis = boto3.client("kinesis", region_name="us-east-1")
        found: list[GameEvent] = []
        for shard in kinesis.list_shards(StreamName=ENV["GAME_STREAM"])["Shards"]:
            it = kinesis.get_shard_iterator(
                StreamName=ENV["GAME_STREAM"], ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            found += [
                GameEvent.model_validate_json(r["Data"])
                for r in kinesis.get_records(ShardIterator=it)["Records"]
            ]
        return found

    def changes(self) -> list[dict[str, Any]]:
        """The matches table's stream records written since the last call, as Lambda hands them over."""
        return self._stream.read()

    def project(self, records: list[dict[str, Any]] | None = None, *, invocations: int = 2) -> None:
        """One tumbling window of the projector: the records (by default the table stream's new ones)
        in `invocations` invocations that pass the state along, then the final one."""
        records = self.changes() if records is None else records
        state = self.window(records, invocations=invocations)
        self.finish(state)

    def window(
        self, records: list[dict[str, Any]], *, invocations: int = 2, state: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The non-final invocations of a window (going on from `state`); returns the state they hand to
        the final one."""
        state = dict(state or {})
        size = max(1, -(-len(records) // invocations))
        for start in range(0, len(records), size):
            answer = self.projector.project(
                {**WINDOW, "Records": records[start : start + size], "state": state}
            )
            assert answer["batchItemFailures"] == []
            state = answer["state"]
        return state

    def finish(self, state: dict[str, Any]) -> None:
        answer = self.projector.project(
            {**WINDOW, "Records": [], "state": state, "isFinalInvokeForWindow": True}
        )
        assert answer == {"state": {}, "batchItemFailures": []}

    @staticmethod
    def failed(response: dict[str, Any]) -> list[int]:
        return [int(f["itemIdentifier"]) for f in response["batchItemFailures"]]

    # --- reading the outcome -----------------------------------------------------------------------

    def scan(self, table: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
        while True:
            out = self.ddb.scan(**kwargs)
            items += out["Items"]
            if "LastEvaluatedKey" not in out:
                return items
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def snapshot(self, *, chunks: bool = True) -> dict[str, Any]:
        """Everything the processor and projector persist, item for item. With chunks=False, what a
        different batching of the same records may not change: the state, the boards, and the event log
        as read (how the log is cut into chunks depends on the batches)."""
        if chunks:
            return {
                t: sorted(self.scan(t), key=lambda i: json.dumps(i, sort_keys=True, default=bytes.hex))
                for t in (MATCHES, LEADERBOARDS, EVENTS)
            }
        stored = self.matches.load_many(list(self.modes))
        return {
            # The state and where it pushes; not `seq`, which only says how far the records were read.
            MATCHES: {m: (s.match, s.connections) for m, s in stored.items()},
            # Not `toldRank`: whom the boards told of a rank, and when, depends on the windows. The rank
            # trees as the counts they hold: which copy of a hot node a transaction wrote depends on
            # how the windows cut the moves.
            LEADERBOARDS: sorted(
                (
                    {k: v for k, v in i.items() if k != "toldRank"}
                    for i in self.scan(LEADERBOARDS)
                    if not i["entryId"]["S"].startswith("rank#")
                ),
                key=lambda i: json.dumps(i, sort_keys=True, default=bytes.hex),
            ),
            "trees": self.trees(),
            EVENTS: {m: self.log.read(m) for m in self.modes},
        }

    def wipe(self) -> None:
        key_of = {MATCHES: ("matchId",), LEADERBOARDS: ("entryId",), EVENTS: ("matchId", "version")}
        for table, names in key_of.items():
            for item in self.scan(table):
                self.ddb.delete_item(TableName=table, Key={k: item[k] for k in names})

    def scores(self) -> dict[str, int]:
        """Every leaderboard row: entryId -> score (not the settlement markers, which have none)."""
        return {i["entryId"]["S"]: int(i["score"]["N"]) for i in self.scan(LEADERBOARDS) if "score" in i}

    def trees(self) -> dict[str, dict[str, dict[int, int]]]:
        """Every board's rank tree: board key -> node -> child -> count, the copies of hot nodes summed."""
        out: dict[str, dict[str, dict[int, int]]] = {}
        for item in self.scan(LEADERBOARDS):
            entry = item["entryId"]["S"]
            if not entry.startswith("rank#"):
                continue
            # rank#<boardKey>#<node>[#<copy>], the board key holding two '#' itself
            parts = entry[5:].split("#")
            key, node = "#".join(parts[:3]), parts[3]
            counts = out.setdefault(key, {}).setdefault(node, {})
            for child, n in counts_of(item).items():
                counts[child] = counts.get(child, 0) + n
        return {
            k: {n: {c: x for c, x in cs.items() if x} for n, cs in nodes.items() if any(cs.values())}
            for k, nodes in out.items()
        }

    def assert_trees_count_the_rows(self) -> None:
        """Every board's tree is the histogram of its rows' scores, and every row is counted at its score."""
        rows = [i for i in self.scan(LEADERBOARDS) if "score" in i]
        assert all(int(i["ranked"]["N"]) == int(i["score"]["N"]) for i in rows if "ranked" in i)
        assert all("ranked" in i for i in rows), [i["entryId"] for i in rows if "ranked" not in i]
        by_key: dict[str, list[int]] = {}
        for i in rows:
            by_key.setdefault(i["boardKey"]["S"], []).append(int(i["score"]["N"]))
        expected = {k: tree.deltas((None, s) for s in scores) for k, scores in by_key.items()}
        assert self.trees() == {k: v for k, v in expected.items() if v}

    def expected_match(self, match_id: str) -> rules.Match:
        """The match as one in-order application of every decodable record of the feed gives it."""
        return self._expected(match_id)[0]

    def expected_connections(self, match_id: str) -> dict[str, str]:
        return self._expected(match_id)[1]

    def _expected(self, match_id: str) -> tuple[rules.Match, dict[str, str]]:
        state = rules.new_match(match_id, self.modes[match_id])
        connections: dict[str, str] = {}
        for rec in self.feed.records:
            staged = decode(rec)
            if isinstance(staged, Staged) and staged.event.matchId == match_id:
                state, connections, _ = step(state, connections, staged.event)
        return state, connections

    def expected_scores(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for match_id, mode in self.modes.items():
            for player, p in self.expected_match(match_id).players.items():
                if p.score:
                    for key in keys(mode):
                        totals[f"{key}#{player}"] = totals.get(f"{key}#{player}", 0) + p.score
        return totals

    def replayed(self, match_id: str) -> rules.Match:
        """The match rebuilt from its event log alone."""
        state = rules.new_match(match_id, self.modes[match_id])
        for version, event in self.log.read(match_id):
            state, outcome = rules.apply(state, event)
            assert isinstance(outcome, rules.Applied), (version, outcome)
            assert state.version == version
        return state

    def assert_exact(self) -> None:
        """Every match, board row and event log is what applying each record exactly once gives."""
        for match_id in self.modes:
            expected = self.expected_match(match_id)
            stored = self.matches.load(match_id)
            assert stored.match == expected, match_id
            assert stored.connections == self.expected_connections(match_id), match_id
            assert self.replayed(match_id) == expected
        assert self.scores() == self.expected_scores()
        self.assert_trees_count_the_rows()

    def dead_letters(self, queue: str = DLQ) -> list[dict[str, Any]]:
        import boto3

        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        bodies: list[dict[str, Any]] = []
        while True:
            out = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            if not out.get("Messages"):
                return bodies
            for m in out["Messages"]:
                bodies.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


# What Lambda adds to a windowed invocation (the records and state are filled in per call).
WINDOW: dict[str, Any] = {
    "window": {"start": "2026-11-23T10:00:00Z", "end": "2026-11-23T10:00:10Z"},
    "shardId": "shardId-00000001",
    "eventSourceARN": f"arn:aws:dynamodb:us-east-1:123456789012:table/{MATCHES}/stream/label",
    "isFinalInvokeForWindow": False,
    "isWindowTerminatedEarly": False,
}


class _TableStream:
    """The matches table's stream in moto, read from where the last read stopped."""

    def __init__(self, ddb: Any) -> None:
        import boto3

        self._streams = boto3.client("dynamodbstreams", region_name="us-east-1")
        arn = ddb.describe_table(TableName=MATCHES)["Table"]["LatestStreamArn"]
        shard = self._streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        self._arn = arn
        self._iterator = self._streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST"
        )["ShardIterator"]

    def read(self) -> list[dict[str, Any]]:
        out = self._streams.get_records(ShardIterator=self._iterator)
        self._iterator = out["NextShardIterator"]
        return [{**_jsonable(r), "eventSourceARN": self._arn} for r in out["Records"]]


@pytest.fixture
def world(ddb: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    # Powertools' Metrics read their namespace when the module was imported, before this fixture ran.
    for module in (processor, projector):
        metrics = getattr(module, "metrics", None)
        if metrics is not None:
            monkeypatch.setattr(metrics.provider, "namespace", ENV["POWERTOOLS_METRICS_NAMESPACE"])
    yield World(ddb, FakePusher())


def fail_once(monkeypatch: pytest.MonkeyPatch, cls: type, name: str, when: Any) -> list[Any]:
    """Makes cls.name raise once, on the first call for which when(*args) is true."""
    original = getattr(cls, name)
    fired: list[Any] = []

    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not fired and when(*args, **kwargs):
            fired.append(args)
            raise RuntimeError(f"injected crash in {cls.__name__}.{name}")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, patched)
    return fired


def play_duel(w: World, match_id: str, a: str = "alice", b: str = "bob") -> None:
    """A whole duel: a reaches exactly 200 and wins; b's late score is refused."""
    f = w.feed
    w.start(match_id, "duel", [a, b])
    f.score(match_id, a, "a1", 80)
    f.score(match_id, b, "b1", 50)
    f.move(match_id, a, "a2", 10, 20)
    f.score(match_id, a, "a3", 100)
    f.score(match_id, b, "b2", 70)
    f.score(match_id, a, "a4", 20)
    f.score(match_id, b, "b3", 10)  # after the end


# --- a match from start to finish ------------------------------------------------------------------


def test_a_duel_played_to_the_end(world: World) -> None:
    m = mid(1)
    play_duel(world, m)
    response = world.deliver(world.feed.records)
    assert response == {"batchItemFailures": []}

    stored = world.matches.load(m)
    assert stored.match.status == "finished"
    assert stored.match.winner == "alice"
    # (Each player's action bucket is the rate limit's: tests/unit/test_presence_rules.py.)
    assert {p: (s.score, s.x, s.y, s.presence) for p, s in stored.match.players.items()} == {
        "alice": (200, 10, 20, "here"),
        "bob": (120, 0, 0, "here"),
    }
    assert stored.match.version == 2 + 6  # two joins, six applied actions; the late score is not
    assert stored.connections == {"alice": "c-alice", "bob": "c-bob"}  # the joins' connections
    assert stored.seq == sequence_of(world.feed.records[-1])
    item = world.ddb.get_item(TableName=MATCHES, Key={"matchId": {"S": m}})["Item"]
    assert "openMode" not in item  # takes no more players
    assert world.matches.roster(m).status == "finished"

    expected_keys = [
        "global#alltime#all",
        f"global#daily#{DAY}",
        f"global#weekly#{WEEK}",
        "duel#alltime#all",
        f"duel#daily#{DAY}",
        f"duel#weekly#{WEEK}",
    ]
    assert sorted(keys("duel")) == sorted(expected_keys)
    assert world.scores() == {
        **{f"{k}#alice": 200 for k in expected_keys},
        **{f"{k}#bob": 120 for k in expected_keys},
    }
    top = world.boards.top(configured()["duel"], "duel#alltime#all", 10)
    assert [(rank, r.player_id, r.score) for rank, r in top.entries] == [(1, "alice", 200), (2, "bob", 120)]
    world.assert_exact()
    # The late score is refused to its sender.
    assert [f for f in world.pusher.frames("c-bob") if f["type"] == "rejected"] == [
        {
            "type": "rejected",
            "id": "b3",
            "code": "match_not_running",
            "message": "the match is finished",
            "matchId": m,
        }
    ]


def test_scores_of_several_matches_add_up_on_the_global_board(world: World) -> None:
    f = world.feed
    duel = world.start(mid(1), "duel", ["alice", "bob"])
    practice = world.start(mid(2), "practice", ["alice"])
    f.score(duel, "alice", "a1", 30)
    f.score(practice, "alice", "a1", 40)  # action ids are per match too
    f.score(duel, "bob", "b1", 5)
    f.score(practice, "alice", "a2", 2)
    assert world.deliver(f.records) == {"batchItemFailures": []}
    scores = world.scores()
    assert scores["global#alltime#all#alice"] == 72
    assert scores[f"global#daily#{DAY}#alice"] == 72
    assert scores["duel#alltime#all#alice"] == 30
    assert scores[f"practice#weekly#{WEEK}#alice"] == 42
    assert "practice#alltime#all#bob" not in scores
    world.assert_exact()


# --- redelivery ------------------------------------------------------------------------------------


def test_the_same_batch_delivered_twice_changes_nothing(world: World) -> None:
    play_duel(world, mid(1))
    play_duel(world, mid(2), "carol", "dave")
    world.connect("alice", mid(1))
    world.connect("carol", mid(2))
    first = world.deliver(world.feed.records)
    assert first == {"batchItemFailures": []}
    assert {cid for cid, _ in world.pusher.of_type("state")} == {"c-alice", "c-bob", "c-carol", "c-dave"}
    once = world.snapshot()
    world.pusher.sent.clear()
    again = world.deliver(world.feed.records)
    assert again == {"batchItemFailures": []}
    assert world.snapshot() == once
    assert world.pusher.sent == []  # nothing new: no state frame, no repeated rejection
    world.assert_exact()


def test_every_prefix_then_the_full_batch_is_the_same_as_one_delivery(world: World) -> None:
    f = world.feed
    a, b = mid(1), mid(2)
    world.start(a, "duel", ["alice", "bob"])
    world.start(b, "practice", ["carol"])
    f.score(a, "alice", "a1", 60)
    f.score(b, "carol", "c1", 100)  # carol wins the practice
    f.move(a, "bob", "b1", 3, 4)
    f.score(a, "alice", "a2", 70)
    f.score(a, "alice", "a3", 70)  # alice wins
    f.score(a, "bob", "b2", 1)  # refused
    records = list(f.records)

    world.deliver(records)
    once = world.snapshot(chunks=False)
    world.assert_exact()
    for k in range(1, len(records)):
        world.wipe()
        world.seat(a, "duel", ["alice", "bob"])
        world.seat(b, "practice", ["carol"])
        assert world.deliver(records[:k]) == {"batchItemFailures": []}
        assert world.deliver(records) == {"batchItemFailures": []}
        assert world.snapshot(chunks=False) == once, f"prefix of {k} records"


def test_a_duplicated_action_id_is_applied_once(world: World) -> None:
    f = world.feed
    m = world.start(mid(1), "duel", ["alice", "bob"])
    world.connect("bob", m)
    score = f.score(m, "alice", "a1", 10)
    f.retry(score)  # in the same batch
    move = f.move(m, "alice", "a2", 7, 8)
    f.retry(move)
    first = world.deliver(f.records)
    assert first == {"batchItemFailures": []}
    states = world.pusher.of_type("state")
    assert [s["applied"] for cid, s in states if cid == "c-bob"] == [["a1", "a2"]]
    # The retries' sender gets the match's push like everyone, and a `confirmed` of the retried ids (its
    # first sends may have been answered while it was away): never a second `state` of one version.
    assert [s["applied"] for cid, s in states if cid == "c-alice"] == [["a1", "a2"]]
    assert [c for cid, c in world.pusher.of_type("confirmed") if cid == "c-alice"] == [
        {"type": "confirmed", "matchId": m, "ids": ["a1", "a2"], "version": 4}
    ]

    world.pusher.sent.clear()
    later = [f.retry(score), f.retry(move), f.score(m, "alice", "a3", 5)]  # in a later batch
    assert world.deliver(later) == {"batchItemFailures": []}
    stored = world.matches.load(m)
    alice = stored.match.players["alice"]
    assert (alice.score, alice.x, alice.y) == (15, 7, 8)
    assert stored.match.version == 2 + 3
    assert [e.actionId for _, e in world.log.read(m)] == [None, None, "a1", "a2", "a3"]
    assert world.scores()["global#alltime#all#alice"] == 15
    states = world.pusher.of_type("state")
    assert [s["applied"] for cid, s in states if cid == "c-bob"] == [["a3"]]
    assert [s["applied"] for cid, s in states if cid == "c-alice"] == [["a3"]]
    assert all(s["version"] == 5 for _, s in states)
    assert [c for cid, c in world.pusher.of_type("confirmed") if cid == "c-alice"] == [
        {"type": "confirmed", "matchId": m, "ids": ["a1", "a2"], "version": 5}
    ]
    world.assert_exact()


# --- records that can never succeed ----------------------------------------------------------------


def test_poison_records_are_dead_lettered_and_the_rest_of_the_batch_is_applied(world: World) -> None:
    f = world.feed
    m = world.start(mid(1), "practice", ["alice"])
    good = event_of(f.score(m, "alice", "a1", 10)).model_dump(exclude_none=True)
    poison = [
        ("undecodable", f.raw(m, "!!!not base64!!!")),
        ("undecodable", f.raw(m, b"{not json")),
        ("not a JSON object", f.raw(m, b"[1, 2]")),
        ("unknown schema version 4", f.raw(m, {**good, "v": 4, "eventId": "e-v4", "actionId": "v4"})),
        ("invalid event", f.raw(m, {**good, "receivedAt": "soon", "actionId": "bad"})),
        (
            "partition key is not the event's match",
            f.raw(mid(2), {**good, "eventId": "e-k", "actionId": "k"}),
        ),
    ]
    f.score(m, "alice", "a2", 5)

    response = world.deliver(f.records)
    assert response == {"batchItemFailures": []}
    letters = world.dead_letters()
    assert len(letters) == len(poison)
    by_sequence = {sequence_of(letter["record"]): letter for letter in letters}
    for reason, rec in poison:
        letter = by_sequence[sequence_of(rec)]
        assert letter["kind"] == "poison"
        assert letter["reason"].startswith(reason), letter["reason"]
        assert letter["eventSourceARN"] == STREAM_ARN
        assert letter["record"] == rec  # the data travels with it, for a later redrive
    stored = world.matches.load(m)
    assert stored.match.players["alice"].score == 15
    assert stored.seq == sequence_of(f.records[-1])
    assert world.scores()["global#alltime#all#alice"] == 15


def test_an_event_of_an_unknown_match_is_refused_to_its_sender(world: World) -> None:
    f = world.feed
    known = world.start(mid(1), "practice", ["alice"])
    f.score(known, "alice", "a1", 10)
    ghost = mid(9)
    f.score(ghost, "mallory", "x1", 50)
    assert world.deliver(f.records) == {"batchItemFailures": []}
    assert world.matches.load_many([ghost]) == {}  # never invented
    assert world.log.read(ghost) == []
    assert world.pusher.frames("c-mallory") == [
        {
            "type": "rejected",
            "id": "x1",
            "code": "match_not_found",
            "message": "no such match",
            "matchId": ghost,
        }
    ]
    assert not any(k.endswith("#mallory") for k in world.scores())
    world.assert_exact()


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_an_event_the_rules_cannot_apply_fails_at_most_its_own_match(world: World) -> None:
    f = world.feed
    a = world.start(mid(1), "practice", ["alice"])
    b = world.start(mid(2), "practice", ["bob"])
    good = event_of(f.score(a, "alice", "a1", 10)).model_dump(exclude_none=True)
    # A score of nothing: refused at decoding (dead-lettered as poison), never handed to the rules.
    f.raw(b, {**good, "eventId": "e-b1", "matchId": b, "playerId": "bob", "actionId": "b1", "points": None})
    f.score(a, "alice", "a2", 5)
    response = world.deliver(f.records)
    b_sequences = {sequence_of(r) for r in f.records if r["kinesis"]["partitionKey"] == b}
    assert set(world.failed(response)) <= b_sequences
    assert world.matches.load(a).match.players["alice"].score == 15
    assert world.scores()["global#alltime#all#alice"] == 15


# --- crashes ---------------------------------------------------------------------------------------


def test_a_crash_between_two_matches_fails_only_the_second_and_redelivery_completes_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = world.feed
    a, b = mid(1), mid(2)
    world.start(a, "duel", ["alice", "bob"])
    world.start(b, "duel", ["carol", "bob"])  # bob plays both: his global rows take both
    world.connect("alice", a)
    world.connect("carol", b)
    for i in range(3):
        f.score(a, "alice", f"a{i}", 30 + i)
        f.score(b, "bob", f"b{i}", 20 + i)
        f.score(a, "bob", f"x{i}", 7)
        f.move(b, "carol", f"c{i}", i, i)
    records = list(f.records)
    b_sequences = [sequence_of(r) for r in records if r["kinesis"]["partitionKey"] == b]
    fired = fail_once(monkeypatch, MatchStore, "save", lambda stored, **_: stored.match.match_id == b)

    response = world.deliver(records)
    assert fired, "the crash was not injected"
    assert sorted(world.failed(response)) == b_sequences
    # The first match is done and pushed; the second is not saved (and nothing is pushed for it), so the
    # boards, projected from what was saved, have only the first match's points.
    assert world.matches.load(a).match == world.expected_match(a)
    assert world.matches.load(b).match == rules.new_match(b, "duel")
    assert {(cid, s["matchId"]) for cid, s in world.pusher.of_type("state")} == {("c-alice", a), ("c-bob", a)}
    assert world.scores()["global#alltime#all#bob"] == 21

    world.pusher.sent.clear()
    response = world.deliver(from_sequence(records, min(world.failed(response))))
    assert response == {"batchItemFailures": []}
    world.assert_exact()
    assert {(cid, s["matchId"]) for cid, s in world.pusher.of_type("state")} == {
        ("c-carol", b),
        ("c-bob", b),
    }
    assert world.scores()["global#alltime#all#bob"] == 21 + 63
    assert world.scores()["duel#alltime#all#alice"] == 93


def test_a_failed_state_write_credits_nothing_and_its_redelivery_credits_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = world.feed
    m = world.start(mid(1), "duel", ["alice", "bob"])
    f.score(m, "alice", "a1", 40)
    f.score(m, "bob", "b1", 25)
    world.changes()  # matchmaking's writes
    fail_once(monkeypatch, MatchStore, "save", lambda stored, **_: True)

    # The only match of the batch fails, so every record fails: powertools raises, and Lambda retries
    # the whole batch. Nothing was written, so the table's stream has nothing for the boards.
    with pytest.raises(BatchProcessingError):
        world.deliver(f.records, project=False)
    assert world.matches.load(m).seq == 0
    assert world.changes() == []
    assert world.pusher.sent == []
    # The retry carries records that arrived since.
    f.score(m, "alice", "a2", 15)
    assert world.deliver(f.records) == {"batchItemFailures": []}
    assert world.scores() == {
        **{f"{k}#alice": 55 for k in keys("duel")},
        **{f"{k}#bob": 25 for k in keys("duel")},
    }
    world.assert_exact()


def test_a_crash_in_the_middle_of_a_windows_credits_is_repaired_by_its_retry(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = world.feed
    a, b = mid(1), mid(2)
    world.start(a, "practice", ["erin"])
    world.start(b, "duel", ["alice", "bob"])
    f.score(a, "erin", "e1", 9)
    f.score(b, "alice", "a1", 40)
    f.score(b, "bob", "b1", 25)
    assert world.deliver(f.records, project=False) == {"batchItemFailures": []}
    state = world.window(world.changes())

    def when(board: Any, key: str, player: str, *_: Any, **__: Any) -> bool:
        return key.startswith("duel#") and player == "bob"

    fired = fail_once(monkeypatch, LeaderboardStore, "credit_row", when)
    # The window's final invocation fails part-way: Lambda retries it with the same state.
    with pytest.raises(RuntimeError, match="injected crash"):
        world.finish(state)
    assert fired
    partial = world.scores()
    assert partial.get("global#alltime#all#bob") == 25
    assert "duel#alltime#all#bob" not in partial
    world.finish(state)
    world.assert_exact()
    # A window delivered yet again (at least once) changes nothing either.
    once = world.snapshot()
    world.finish(state)
    assert world.snapshot() == once


def test_a_window_of_changes_delivered_again_changes_nothing(world: World) -> None:
    play_duel(world, mid(1))
    f = world.feed
    p = world.start(mid(2), "practice", ["carol"])
    f.score(p, "carol", "c1", 30)
    assert world.deliver(f.records, project=False) == {"batchItemFailures": []}
    records = world.changes()
    world.project(records)
    once = world.snapshot()
    sent = list(world.pusher.sent)
    for invocations in (1, 3):  # in one invocation, or cut differently
        world.project(records, invocations=invocations)
        assert world.snapshot() == once
    assert world.pusher.sent == sent  # no rank frame either: the ranks did not change
    world.assert_exact()


def test_an_old_write_delivered_again_after_newer_ones_moves_nothing_back(world: World) -> None:
    f = world.feed
    m = world.start(mid(1), "duel", ["alice", "bob"])
    f.score(m, "alice", "a1", 30)
    world.deliver(f.records[:3], project=False)
    first = world.changes()
    f.score(m, "alice", "a2", 40)
    world.deliver(f.records, project=False)
    second = world.changes()
    world.project(first + second)
    once = world.snapshot(chunks=False)
    # Lambda redelivers rarely, and then maybe out of order: the older write alone, in a later window ...
    world.project(first)
    assert world.snapshot(chunks=False) == once
    # ... or behind the newer one in one window. (The log may get a chunk that overlaps; it reads the
    # same.)
    world.project(second + first)
    assert world.snapshot(chunks=False) == once
    world.assert_exact()


def test_points_count_on_the_day_they_were_scored_across_a_crash_and_a_redelivery(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between the credits and the state write, then a redelivery whose newest record is
    after midnight (and, here, in the next ISO week): every point counts once, on its own day."""
    f = world.feed
    a, b = mid(1), mid(2)
    sunday, monday = (
        datetime(2026, 11, 29, 23, 59, 0, tzinfo=UTC),
        datetime(2026, 11, 30, 0, 0, 5, tzinfo=UTC),
    )
    f.at(sunday)
    world.start(a, "practice", ["erin"])
    world.start(b, "duel", ["alice", "bob"])
    f.score(a, "erin", "e1", 9)
    f.score(b, "alice", "a1", 30)
    f.score(b, "bob", "b1", 20)
    fail_once(monkeypatch, MatchStore, "save", lambda stored, **_: stored.match.match_id == b)
    response = world.deliver(f.records)
    assert world.failed(response)
    # Lambda retries from the lowest failed record; by then, a record of after midnight is on the shard.
    f.at(monday)
    f.score(b, "alice", "a2", 10)
    assert world.deliver(from_sequence(f.records, min(world.failed(response)))) == {"batchItemFailures": []}

    def rows(board: str, period: str, when: datetime) -> dict[str, int]:
        prefix = board_key(board, period, when) + "#"
        return {k[len(prefix) :]: v for k, v in world.scores().items() if k.startswith(prefix)}

    for board in ("global", "duel"):
        erin = {"erin": 9} if board == "global" else {}  # her practice match counts on global only
        assert rows(board, "alltime", sunday) == {"alice": 40, "bob": 20, **erin}
        assert rows(board, "daily", sunday) == {"alice": 30, "bob": 20, **erin}
        assert rows(board, "daily", monday) == {"alice": 10}
        assert rows(board, "weekly", sunday) == {"alice": 30, "bob": 20, **erin}
        assert rows(board, "weekly", monday) == {"alice": 10}
    assert rows("global", "daily", sunday)["alice"] + rows("global", "daily", monday)["alice"] == 40
    stored = world.matches.load(b)
    assert stored.match == world.expected_match(b)
    assert world.replayed(b) == stored.match


# --- the event log ---------------------------------------------------------------------------------


def test_the_event_log_replays_to_the_stored_state(world: World) -> None:
    """Two messy arenas: strangers, retries, leaves, batches of random sizes, records delivered again."""
    rnd = random.Random(7)
    f = world.feed
    seated = [f"p{i}" for i in range(modes.mode("arena").seats)]
    arenas = [world.seat(mid(n), "arena", seated) for n in (1, 2)]
    for m in arenas:
        for p in seated[:-1]:  # the last seat goes to whoever joins first, a stranger perhaps
            f.join(m, p, "arena")
    sent: list[dict[str, Any]] = []
    for i in range(150):
        roll = rnd.random()
        m = rnd.choice(arenas)
        player = rnd.choice([*seated, "stranger"])
        if roll < 0.1 and sent:
            f.retry(rnd.choice(sent))
        elif roll < 0.25:
            f.join(m, player, "arena", f"j{i}")
        elif roll < 0.3:
            f.leave(m, player, f"l{i}")
        elif roll < 0.75:
            sent.append(f.score(m, player, f"s{i}", rnd.randint(1, 12)))
        else:
            sent.append(f.move(m, player, f"m{i}", rnd.randint(0, 1000), rnd.randint(0, 1000)))
    records = f.records
    at = 0
    while at < len(records):
        end = min(len(records), at + rnd.randint(1, 25))
        start = max(0, at - rnd.randint(0, 5))  # some records arrive again
        assert world.deliver(records[start:end]) == {"batchItemFailures": []}
        at = end
    for m in arenas:
        stored = world.matches.load(m)
        assert stored.match.version > 10
        assert world.replayed(m) == stored.match
    world.assert_exact()


# --- pushes ----------------------------------------------------------------------------------------


def test_state_goes_to_the_match_and_a_rejection_to_its_sender(world: World) -> None:
    f = world.feed
    m, other = mid(1), mid(2)
    world.start(m, "duel", ["alice", "bob"])
    world.start(other, "duel", ["carol"])
    f.score(m, "alice", "a1", 10)
    f.publish(m, "mallory", "score", "x1", points=50)  # not a member

    assert world.deliver(f.records) == {"batchItemFailures": []}
    state = {
        "type": "state",
        "matchId": m,
        "mode": "duel",
        "version": 3,
        "status": "running",
        "players": {
            "alice": {"score": 10, "x": 0, "y": 0, "left": False, "presence": "here"},
            "bob": {"score": 0, "x": 0, "y": 0, "left": False, "presence": "here"},
        },
        "applied": ["a1"],
    }
    rank = {
        "type": "rank",
        "board": "global",
        "period": "alltime",
        "playerId": "alice",
        "score": 10,
        "rank": 1,
    }
    assert world.pusher.frames("c-alice") == [state, rank]  # the rank comes from the projector's window
    assert world.pusher.frames("c-bob") == [state]
    assert [f["matchId"] for f in world.pusher.frames("c-carol")] == [other]
    assert world.pusher.frames("c-mallory") == [
        {
            "type": "rejected",
            "id": "x1",
            "code": "not_in_match",
            "message": "the player is not in this match",
            "matchId": m,
        }
    ]
    assert len(world.pusher.sent) == 5


def test_the_latest_connection_a_player_joined_from_gets_the_pushes(world: World) -> None:
    f = world.feed
    m = world.start(mid(1), "duel", ["alice", "bob"])
    f.score(m, "alice", "a1", 10)
    assert world.deliver(f.records) == {"batchItemFailures": []}
    world.pusher.sent.clear()
    # alice joins again from a second device: it takes her pushes over (the batch's own `state` tells it
    # where the match is: a re-join gets a copy of the last one only when no newer one reaches it).
    f.publish(m, "alice", "join", "j2", connection="c-alice-2", mode="duel")
    f.score(m, "bob", "b1", 5)
    assert world.deliver(f.records) == {"batchItemFailures": []}
    assert world.matches.load(m).connections == {"alice": "c-alice-2", "bob": "c-bob"}
    assert [s["applied"] for s in world.pusher.frames("c-alice-2") if s["type"] == "state"] == [["b1"]]
    assert world.pusher.frames("c-alice") == []
    # A close of her first connection, reported late, takes nothing from the second.
    f.publish(m, "alice", "disconnect", connection="c-alice", reason="closed")
    assert world.deliver(f.records) == {"batchItemFailures": []}
    assert world.matches.load(m).connections == {"alice": "c-alice-2", "bob": "c-bob"}
    world.assert_exact()


def test_a_gone_connection_is_forgotten_and_its_match_stops_pushing_there(world: World) -> None:
    f = world.feed
    m = world.start(mid(1), "duel", ["alice", "bob"])
    world.connect("alice", m)
    world.connect("bob", m)
    world.pusher.gone.add("c-bob")
    f.score(m, "alice", "a1", 10)
    assert world.deliver(f.records) == {"batchItemFailures": []}
    assert world.connections.get(ConnectionId("c-bob")) is None
    assert world.connections.get(ConnectionId("c-alice")) is not None
    # The 410 went onto the stream as a `disconnect` for the match, which the processor applies in turn.
    (published,) = world.published()
    assert (published.type, published.matchId, published.playerId, published.connectionId) == (
        "disconnect",
        m,
        "bob",
        "c-bob",
    )
    f.publish(
        m, "bob", "disconnect", connection="c-bob", reason="gone"
    )  # that record, as the shard delivers it
    world.pusher.sent.clear()
    f.score(m, "alice", "a2", 3)
    assert world.deliver(f.records) == {"batchItemFailures": []}
    assert {cid for cid, _ in world.pusher.sent} == {"c-alice"}
    assert world.matches.load(m).connections == {"alice": "c-alice"}


# --- leaderboard rows stay small ------------------------------------------------------------------


def test_a_finished_match_is_settled_and_leaves_no_credit_attribute_on_all_time_rows(world: World) -> None:
    m = mid(1)
    play_duel(world, m)
    assert world.deliver(world.feed.records, project=False) == {"batchItemFailures": []}
    records = world.changes()
    world.project(records)
    rows = {
        i["entryId"]["S"]: i for i in world.scan(LEADERBOARDS) if not i["entryId"]["S"].startswith("rank#")
    }
    assert f"settled#{m}" in rows
    credit = "c_" + m.replace("-", "_")
    alltime = [k for k in rows if "#alltime#" in k]
    assert len(alltime) == 4  # global and duel, alice and bob
    assert all(credit not in rows[k] for k in alltime)
    assert all(
        credit in rows[k] for k in rows if "#daily#" in k or "#weekly#" in k
    )  # expire with their period
    world.assert_exact()
    once = world.snapshot()
    # Replays credit nothing again: the Kinesis batch (nothing new is written), and the window, whole or
    # in part, although the all-time rows no longer hold the match's credits.
    assert world.deliver(world.feed.records) == {"batchItemFailures": []}
    world.project(records)
    world.project(records[: len(records) // 2])
    assert world.snapshot() == once


def test_a_match_still_running_keeps_its_credit_attributes(world: World) -> None:
    f = world.feed
    m = world.start(mid(1), "duel", ["alice", "bob"])
    f.score(m, "alice", "a1", 30)
    world.deliver(f.records)
    row = {i["entryId"]["S"]: i for i in world.scan(LEADERBOARDS)}["global#alltime#all#alice"]
    assert row["c_" + m.replace("-", "_")] == {"N": "30"}


# --- rank trees -------------------------------------------------------------------------------------


def test_a_crash_between_two_transactions_of_the_rank_tree_is_repaired_by_the_retry(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = world.feed
    matches = [
        world.start(mid(n), "arena", [f"p{n}{i}" for i in range(modes.mode("arena").seats)]) for n in (1, 2)
    ]
    for n, m in enumerate(matches, start=1):
        for i in range(modes.mode("arena").seats):
            f.score(m, f"p{n}{i}", f"s{i}", 5 + i * 7)
    assert world.deliver(f.records, project=False) == {"batchItemFailures": []}
    state = world.window(world.changes())
    # The second transaction of the global all-time tree fails: the first one's rows are moved and
    # counted, the others are credited but not yet counted.
    calls: list[str] = []

    def when(key: str, *_: Any, **__: Any) -> bool:
        calls.append(key)
        return key == "global#alltime#all" and calls.count(key) == 2

    monkeypatch.setattr("backend.store.leaderboards.MAX_TRANSACTION_ITEMS", 12)  # several per board
    fired = fail_once(monkeypatch, LeaderboardStore, "_move", when)
    with pytest.raises(RuntimeError, match="injected crash"):
        world.finish(state)
    assert fired
    rows = [i for i in world.scan(LEADERBOARDS) if i.get("boardKey", {}).get("S") == "global#alltime#all"]
    assert 0 < sum(1 for i in rows if "ranked" in i) < len(rows) == 16
    world.finish(state)  # Lambda's retry: the same state
    world.assert_exact()
    ranks = world.boards.top(configured()["global"], "global#alltime#all", 16).entries
    expected = sorted(world.scores()[f"global#alltime#all#{r.player_id}"] for _, r in ranks)[::-1]
    assert [r.score for _, r in ranks] == expected
    assert [rank for rank, _ in ranks] == [1 + sum(1 for x in expected if x > s) for s in expected]


def test_a_season_reset_in_the_middle_of_a_window(world: World) -> None:
    """Points count in the season they were scored in: a reset between two matches' writes of one window
    puts the first match's points on the old season's rows and the second's on the new, and a retry of
    the window, after the reset, lands them on the same rows."""
    f = world.feed
    before, after = START, START + timedelta(seconds=30)
    f.at(before)
    a = world.start(mid(1), "duel", ["alice", "bob"])
    f.score(a, "alice", "a1", 40)
    assert world.deliver(f.records, project=False) == {"batchItemFailures": []}
    state = world.window(world.changes())  # the window is open: its first writes are folded
    world.boards.start_season("duel", now_ms=int((before + timedelta(seconds=10)).timestamp() * 1000))
    f.at(after)
    b = world.start(mid(2), "duel", ["carol", "dave"])
    f.score(b, "carol", "c1", 70)
    assert world.deliver(f.records, project=False) == {"batchItemFailures": []}
    state = world.window(world.changes(), state=state)
    world.finish(state)
    scores = world.scores()
    assert scores["duel#alltime#all#alice"] == 40 and "duel#alltime#all#carol" not in scores
    assert scores["duel@s1#alltime#all#carol"] == 70 and "duel@s1#alltime#all#alice" not in scores
    assert scores["global#alltime#all#carol"] == 70  # the global board has not been reset
    once = world.snapshot()
    world.finish(state)  # delivered again, after the reset
    assert world.snapshot() == once
    world.assert_trees_count_the_rows()
    duel = configured()["duel"]
    assert [r.player_id for _, r in world.boards.top(duel, "duel@s1#alltime#all", 5).entries] == ["carol"]
    assert [r.player_id for _, r in world.boards.top(duel, "duel#alltime#all", 5).entries] == ["alice"]


BOARD_KINDS = Boards.parse(
    {
        "periods": {"alltime": {}, "daily": {"reset": "0 0 * * *", "id": "%Y-%m-%d", "keepDays": 35}},
        "boards": {
            "global": {"periods": ["alltime"], "rankFrames": ["alltime"]},
            "duel-best": {"modes": ["duel"], "operator": "best", "tieBreak": "first", "periods": ["alltime"]},
            "duel-wins": {
                "modes": ["duel"],
                "tieBreak": "subscore",
                "subscore": "wins",
                "periods": ["alltime", "daily"],
                "rankFrames": ["daily"],
            },
            "duel-last": {"modes": ["duel"], "operator": "set", "order": "asc", "periods": ["daily"]},
        },
    }
)


def test_boards_with_other_operators_orders_and_tie_breaks(world: World) -> None:
    world.boards = LeaderboardStore(world.ddb, LEADERBOARDS, BOARD_KINDS)
    world.projector = replace(world.projector, leaderboards=world.boards)
    play_duel(world, mid(1))  # alice 200 (wins), bob 120
    world.connect("alice", mid(1))
    f = world.feed
    f.at(START + timedelta(minutes=5))
    world.start(mid(2), "duel", ["carol", "dave"])
    f.score(mid(2), "carol", "c1", 60)
    f.score(mid(2), "carol", "c2", 60)  # 120, still running: no result yet on the `best` board
    assert world.deliver(f.records) == {"batchItemFailures": []}

    def board(name: str, period: str = "alltime") -> list[tuple[int, str, int, int | None]]:
        key = BOARD_KINDS[name].key(period, START)
        page = world.boards.top(BOARD_KINDS[name], key, 10)
        return [(rank, r.player_id, r.score, r.subscore) for rank, r in page.entries]

    assert board("duel-best") == [(1, "alice", 200, None), (2, "bob", 120, None)]
    wins = board("duel-wins")
    assert wins[0] == (1, "alice", 200, 1)
    # bob and carol both have 120 and no win: a tie on score and subscore, sharing a rank.
    assert sorted(wins[1:]) == [(2, "bob", 120, 0), (2, "carol", 120, 0)]
    assert board("duel-last", "daily") == [
        (1, "bob", 120, None),
        (1, "carol", 120, None),
        (3, "alice", 200, None),
    ]
    ranks = [f for cid, f in world.pusher.of_type("rank") if cid == "c-alice"]
    assert {(r["board"], r["period"]) for r in ranks} == {("global", "alltime"), ("duel-wins", "daily")}
    world.assert_trees_count_the_rows()
    once = world.snapshot()
    world.project(world.changes())  # nothing new
    assert world.snapshot() == once


class RecordingSaga:
    """The match-end saga's starter, as Step Functions answers it: a second start of a name is refused."""

    def __init__(self) -> None:
        self.requests: list[Any] = []

    def start(self, request: Any) -> bool:
        self.requests.append(request)
        return len([r for r in self.requests if r.match_id == request.match_id]) == 1


def test_a_finished_match_starts_its_settlement_saga_with_every_players_final_score(world: World) -> None:
    import dataclasses

    saga = RecordingSaga()
    world.projector = dataclasses.replace(world.projector, saga=saga)  # type: ignore[arg-type]
    m, running = mid(1), mid(2)
    play_duel(world, m)
    world.start(running, "duel", ["carol", "dave"])
    world.feed.score(running, "carol", "c1", 10)
    assert world.deliver(world.feed.records, project=False) == {"batchItemFailures": []}
    records = world.changes()
    world.project(records)
    (request,) = saga.requests  # the finished match only
    assert (request.match_id, request.mode) == (m, "duel")
    assert request.scores == {"alice": 200, "bob": 120}  # b3 came after the end
    assert request.season == str(world.boards.seasons(["global"])["global"])
    # A window written again starts it again; the execution's name makes that a no-op.
    world.project(records)
    assert [r.match_id for r in saga.requests] == [m, m]
