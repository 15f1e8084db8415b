"""The message route with fakes: what each frame makes the use cases read, publish and answer, without
AWS. (tests/e2e covers the same routes through the local gateway and moto.)"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, get_args

import pytest

from backend.actions import ROUTES, GameRoutes
from backend.caller import Caller
from backend.errors import MatchFull, MatchNotFound, StaleState
from backend.game import modes
from backend.game.plugin import ActFrame
from backend.ids import ConnectionId, MatchId, PlayerId
from backend.protocol import ClientFrame, GameEvent, Ping
from backend.service import handle_frame
from backend.store.connections import Connection
from backend.store.matches import Roster
from backend.vocabulary import PROTOCOL_VERSION


@dataclass
class FakeMatches:
    rosters: dict[str, Roster] = field(default_factory=dict)
    lobbies: dict[str, str] = field(default_factory=dict)
    seats: dict[tuple[str, str], str] = field(default_factory=dict)

    def create(self, match_id: str, mode: str, player: str, now_ms: int | None = None) -> Roster:
        roster = Roster(match_id, mode, (player,), 0, gen=1, open=modes.mode(mode).seats > 1)
        self.rosters[match_id] = roster
        return roster

    def seat_of(self, player: str, mode: str) -> str | None:
        return self.seats.get((player, mode))

    def take_seat(self, player: str, mode: str, match_id: str) -> None:
        self.seats[(player, mode)] = match_id

    def release_seat(self, match_id: str, player: str) -> int | None:
        roster = self.rosters[match_id]
        if player not in roster.players or not roster.open:
            return None
        players = tuple(p for p in roster.players if p != player)
        self.rosters[match_id] = replace(roster, players=players, gen=roster.gen + 1)
        return roster.gen + 1

    def lobby(self, mode: str) -> str | None:
        return self.lobbies.get(mode)

    def replace_lobby(self, mode: str, current: str | None, new: str) -> bool:
        if self.lobbies.get(mode) != current:
            return False
        self.lobbies[mode] = new
        return True

    def roster(self, match_id: str, *, consistent: bool = False) -> Roster:
        if match_id not in self.rosters:
            raise MatchNotFound(f"no match {match_id}")
        return self.rosters[match_id]

    def claim_seat(self, roster: Roster, player: str) -> Roster:
        if self.rosters[roster.match_id] != roster:
            raise StaleState("the roster changed")
        if roster.full:
            raise MatchFull("full")
        players = (*roster.players, player)
        claimed = replace(
            roster, players=players, gen=roster.gen + 1, open=len(players) < modes.mode(roster.mode).seats
        )
        self.rosters[roster.match_id] = claimed
        return claimed


@dataclass
class FakeConnections:
    items: dict[str, Connection] = field(default_factory=dict)

    def get(self, connection_id: ConnectionId) -> Connection | None:
        return self.items.get(connection_id)

    def attach_match(self, connection_id: ConnectionId, match_id: MatchId, mode: str | None = None) -> bool:
        changed = self.items[connection_id].match_id != match_id
        self.items[connection_id] = replace(self.items[connection_id], match_id=match_id, mode=mode)
        return changed

    def detach_match(self, connection_id: ConnectionId, match_id: MatchId) -> None:
        if self.items[connection_id].match_id == match_id:
            self.items[connection_id] = replace(self.items[connection_id], match_id=None, mode=None)


@dataclass
class FakeStream:
    published: list[GameEvent] = field(default_factory=list)

    def publish(self, event: GameEvent) -> str:
        self.published.append(event)
        return str(len(self.published))


@dataclass
class FakeTimers:
    probes: list[tuple[str, str, str, float]] = field(default_factory=list)

    def probe(self, connection_id: str, match_id: str, player: str, after_s: float) -> None:
        self.probes.append((connection_id, match_id, player, after_s))


@dataclass
class Route:
    matches: FakeMatches = field(default_factory=FakeMatches)
    connections: FakeConnections = field(default_factory=FakeConnections)
    stream: FakeStream = field(default_factory=FakeStream)
    timers: FakeTimers = field(default_factory=FakeTimers)
    built: int = 0

    def routes(self) -> GameRoutes:
        self.built += 1
        return GameRoutes(
            matches=self.matches,  # type: ignore[arg-type]
            connections=self.connections,  # type: ignore[arg-type]
            stream=self.stream,  # type: ignore[arg-type]
            leaderboards=None,  # type: ignore[arg-type]  # not used by these frames
            timers=self.timers,  # type: ignore[arg-type]
            probe_every=5.0,
        )

    def connect(self, player: str) -> Caller:
        cid = ConnectionId(f"c-{player}")
        self.connections.items[cid] = Connection(cid, PlayerId(player), 0)
        return Caller(connection_id=cid, player_id=PlayerId(player), role="player", received_at=1_000)

    def send(self, caller: Caller, frame: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = json.loads(handle_frame(self.routes, caller, json.dumps(frame)))
        return answer


@pytest.fixture
def route() -> Route:
    return Route()


def test_every_client_frame_but_ping_has_a_route() -> None:
    (union, _) = get_args(ClientFrame)
    models: set[type] = set()
    for member in get_args(union):
        inner = get_args(member)
        models |= set(get_args(inner[0])) if inner else {member}
    # Every mode's actions are subclasses of ActFrame: one route for all of them.
    assert models - {Ping} == set(ROUTES) - {ActFrame}
    assert all(issubclass(model, ActFrame) for model in modes.configured().actions.values())


def test_a_ping_never_builds_the_game_routes(route: Route) -> None:
    assert route.send(route.connect("alice"), {"action": "ping", "id": "p"}) == {
        "type": "pong",
        "ref": "p",
        "protocol": PROTOCOL_VERSION,
    }
    assert route.built == 0


def test_two_joiners_of_a_duel_share_one_match_and_each_join_goes_on_the_stream(route: Route) -> None:
    alice, bob = route.connect("alice"), route.connect("bob")
    first = route.send(alice, {"action": "join", "mode": "duel", "id": "j1"})
    second = route.send(bob, {"action": "join", "mode": "duel", "id": "j2"})
    assert (first["type"], first["status"], first["players"]) == ("joined", "waiting", ["alice"])
    assert (second["matchId"], second["status"], second["players"]) == (
        first["matchId"],
        "running",
        ["alice", "bob"],
    )
    assert [(e.type, e.playerId, e.connectionId, e.actionId) for e in route.stream.published] == [
        ("join", "alice", "c-alice", "j1"),
        ("join", "bob", "c-bob", "j2"),
    ]
    assert route.connections.items[ConnectionId("c-bob")].match_id == first["matchId"]


def test_an_act_publishes_the_authorizers_player_not_the_frames(route: Route) -> None:
    alice = route.connect("alice")
    match_id = route.send(alice, {"action": "join", "mode": "practice", "id": "j"})["matchId"]
    ack = route.send(alice, {"action": "act", "kind": "score", "matchId": match_id, "id": "a1", "points": 7})
    assert ack == {"type": "ack", "id": "a1"}
    event = route.stream.published[-1]
    assert (event.type, event.kind, event.args, event.playerId, event.receivedAt) == (
        "act",
        "score",
        {"points": 7},
        "alice",
        1_000,
    )


def test_an_act_of_a_kind_the_matchs_mode_does_not_play_is_refused_and_publishes_nothing(
    route: Route,
) -> None:
    alice = route.connect("alice")
    match_id = route.send(alice, {"action": "join", "mode": "practice", "id": "j"})["matchId"]
    before = list(route.stream.published)
    for frame in (
        {"action": "act", "kind": "teleport", "matchId": match_id, "id": "t1"},
        {"action": "act", "kind": "score", "matchId": match_id, "id": "t2", "points": 7, "x": 1},
    ):
        answer = route.send(alice, frame)
        assert (answer["type"], answer["code"], answer["ref"]) == ("error", "invalid_message", frame["id"])
    assert route.stream.published == before


def test_a_join_of_a_mode_the_stage_does_not_have_is_refused(route: Route) -> None:
    alice = route.connect("alice")
    answer = route.send(alice, {"action": "join", "mode": "chess", "id": "j"})
    assert (answer["type"], answer["code"]) == ("error", "invalid_message")
    assert "practice" in answer["message"] and not route.stream.published


def test_an_act_in_someone_elses_match_is_refused_and_publishes_nothing(route: Route) -> None:
    alice, mallory = route.connect("alice"), route.connect("mallory")
    match_id = route.send(alice, {"action": "join", "mode": "practice", "id": "j"})["matchId"]
    before = list(route.stream.published)
    answer = route.send(
        mallory, {"action": "act", "kind": "score", "matchId": match_id, "id": "x", "points": 100}
    )
    assert (answer["type"], answer["code"], answer["ref"]) == ("error", "not_in_match", "x")
    assert route.stream.published == before


def test_a_rejoin_by_id_needs_a_seat_in_that_match(route: Route) -> None:
    alice, mallory = route.connect("alice"), route.connect("mallory")
    match_id = route.send(alice, {"action": "join", "mode": "duel", "id": "j"})["matchId"]
    answer = route.send(mallory, {"action": "join", "mode": "duel", "matchId": match_id, "id": "j2"})
    assert (answer["type"], answer["code"]) == ("error", "not_in_match")
    again = route.send(alice, {"action": "join", "mode": "duel", "matchId": match_id, "id": "j3"})
    assert (again["type"], again["matchId"]) == ("joined", match_id)


def test_leave_publishes_and_detaches_the_connection(route: Route) -> None:
    alice = route.connect("alice")
    match_id = route.send(alice, {"action": "join", "mode": "practice", "id": "j"})["matchId"]
    left = route.send(alice, {"action": "leave", "matchId": match_id, "id": "l"})
    assert (left["type"], left["matchId"]) == ("left", match_id)
    assert route.stream.published[-1].type == "leave"
    assert route.connections.items[ConnectionId("c-alice")].match_id is None
    # Detached: a later act in that match is refused.
    answer = route.send(
        alice, {"action": "act", "kind": "score", "matchId": match_id, "id": "a", "points": 1}
    )
    assert answer["code"] == "not_in_match"
