"""The matches table: one item per match, written by two parties on disjoint attributes.

- matchmaking (the message Lambda) owns the roster: `roster`, `rosterCount`, `rosterGen`, `openMode`
  (sparse GSI `open`, present while seats are free). Seats are claimed, and waiting seats released,
  with a conditional update on `rosterGen`, which every claim and release moves on by one: concurrent
  joins can never overfill a match, and a release never races a claim. The join records carry the
  roster and its generation, so that the rules drop a released player the stream has not told them of
  yet (backend.game.rules).
- the stream processor owns the game state: `status`, `version`, `winner`, `seq` (the highest Kinesis
  sequence number applied), `lastAt` (the receive time of the write's last record) and `state`, in one
  UpdateItem per batch with a condition on `version`. `state` holds, zlib-compressed JSON, the players
  (score, position, presence, action bucket), the ids `seen` per player, `conns` (where each player's
  pushes go), the roster generation the rules last saw, the `applied` of the last push and `tail`
  (the events this write applied): DynamoDB bills a write per KB of the whole item, and these are most
  of it. `out` lists the players who left or forfeited, for matchmaking to read with the roster (a
  player out of a running match is not handed it back). The table's stream (NEW_AND_OLD_IMAGES) hands
  each write to the leaderboard projector (streams.projector), which writes the event log and the
  boards from it, off the players' path.
- `seat#<player>` items name each player's latest match per mode (matchmaking's), so that a plain
  `join` of a player whose match is running hands that match back instead of opening another.
"""

from __future__ import annotations

import base64
import json
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backend.config import game_settings
from backend.errors import Conflict, MatchFull, MatchNotFound, StaleState
from backend.game.rules import Match, Player
from backend.protocol import GameEvent
from backend.store import ConditionFailed, conditional, pages, start_key
from backend.store.events import dump_events, load_events

MATCH_TTL = 7 * 24 * 3600
RELEASE_ATTEMPTS = 4


@dataclass(frozen=True)
class Roster:
    match_id: str
    mode: str
    players: tuple[str, ...]
    created_at: int
    status: str | None = None  # the processor's status, once it has applied the first join
    gen: int = 0  # rosterGen: 0 for an item written before generations existed
    out: tuple[str, ...] = ()  # players who left or forfeited (the processor's `out`)
    open: bool = False  # seats can still be claimed (openMode is set)

    @property
    def full(self) -> bool:
        return len(self.players) >= game_settings().mode(self.mode).seats


@dataclass(frozen=True)
class Stored:
    """A match as the processor reads it: the state plus its bookkeeping."""

    match: Match
    seq: int  # highest applied sequence number, 0 for none
    # Where each seated player's pushes go: the connection they last joined from (not game state, so
    # not in Match; kept by streams.pipeline.route).
    connections: dict[str, str] = field(default_factory=dict)
    exists: bool = True
    # The `applied` of the last `state` frame pushed at this version: a copy sent later (a re-join's) is
    # that same frame, so (matchId, version) names one content.
    pushed: tuple[str, ...] = ()


def _roster(item: dict[str, Any]) -> Roster:
    return Roster(
        match_id=item["matchId"]["S"],
        mode=item["mode"]["S"],
        players=tuple(v["S"] for v in item.get("roster", {}).get("L", [])),
        created_at=int(item["createdAt"]["N"]),
        status=item["status"]["S"] if "status" in item else None,
        gen=int(item["rosterGen"]["N"]) if "rosterGen" in item else 0,
        out=tuple(v["S"] for v in item.get("out", {}).get("L", [])),
        open="openMode" in item,
    )


class MatchStore:
    def __init__(self, client: Any, table: str) -> None:
        self._ddb = client
        self._table = table

    # --- matchmaking ---------------------------------------------------------------------------

    def create(self, match_id: str, mode: str, player: str, now_ms: int | None = None) -> Roster:
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        seats = game_settings().mode(mode).seats
        item: dict[str, Any] = {
            "matchId": {"S": match_id},
            "mode": {"S": mode},
            "createdAt": {"N": str(now_ms)},
            "roster": {"L": [{"S": player}]},
            "rosterCount": {"N": "1"},
            "rosterGen": {"N": "1"},
            "ttl": {"N": str(now_ms // 1000 + MATCH_TTL)},
            # The processor owns status from its first write on; this makes the match listable before.
            "status": {"S": "waiting"},
        }
        if seats > 1:
            item["openMode"] = {"S": mode}
        out = conditional(
            self._ddb.put_item,
            TableName=self._table,
            Item=item,
            ConditionExpression="attribute_not_exists(matchId)",
        )
        if isinstance(out, ConditionFailed):
            raise Conflict(f"match {match_id} already exists")
        return Roster(match_id, mode, (player,), now_ms, status="waiting", gen=1, open=seats > 1)

    @staticmethod
    def _as_read(roster: Roster, values: dict[str, Any]) -> str:
        """The condition that the roster is still at the generation it was read at (items from before
        generations: at its count, with no generation yet)."""
        if roster.gen:
            values[":gen"] = {"N": str(roster.gen)}
            return "rosterGen = :gen AND attribute_exists(openMode)"
        values[":count"] = {"N": str(len(roster.players))}
        return "attribute_not_exists(rosterGen) AND rosterCount = :count AND attribute_exists(openMode)"

    def claim_seat(self, roster: Roster, player: str) -> Roster:
        """Adds the player if the roster is still as read; raises StaleState or MatchFull otherwise."""
        seats = game_settings().mode(roster.mode).seats
        count = len(roster.players)
        if count >= seats:
            raise MatchFull()
        expr = "SET roster = list_append(roster, :p), rosterCount = :next, rosterGen = :nextgen"
        if count + 1 >= seats:
            expr += " REMOVE openMode"
        values: dict[str, Any] = {
            ":p": {"L": [{"S": player}]},
            ":next": {"N": str(count + 1)},
            ":nextgen": {"N": str(roster.gen + 1)},
        }
        condition = self._as_read(roster, values)
        out = conditional(
            self._ddb.update_item,
            TableName=self._table,
            Key={"matchId": {"S": roster.match_id}},
            UpdateExpression=expr,
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
        )
        if isinstance(out, ConditionFailed):
            raise StaleState("the match changed while joining")
        players = (*roster.players, player)
        return Roster(
            roster.match_id,
            roster.mode,
            players,
            roster.created_at,
            gen=roster.gen + 1,
            open=count + 1 < seats,
        )

    def release_seat(
        self, match_id: str, player: str, *, unless: Callable[[], bool] | None = None
    ) -> int | None:
        """Gives a waiting match's seat of `player` back to matchmaking: the roster's generation after the
        release, or None when there is nothing to release (the player holds no seat there, or the match
        is no longer open: its roster filled, so it is about to run, and the seat is held instead).

        A consistent read, then a write conditional on the generation read: a claim or another release in
        between moves the generation on, and this reads again. A claim that read the roster before the
        release fails its own condition the same way, so a seat is never both given and taken.

        `unless`, asked once the seat is found releasable, keeps it (the player is still there on
        another connection)."""
        for attempt in range(RELEASE_ATTEMPTS):
            try:
                roster = self.roster(match_id, consistent=True)
            except MatchNotFound:
                return None
            if player not in roster.players or not roster.gen or not roster.open:
                return None
            if attempt == 0 and unless is not None and unless():
                return None
            index = roster.players.index(player)
            out = conditional(
                self._ddb.update_item,
                TableName=self._table,
                Key={"matchId": {"S": match_id}},
                UpdateExpression=(f"REMOVE roster[{index}] SET rosterCount = :count, rosterGen = :next"),
                ConditionExpression="rosterGen = :gen AND attribute_exists(openMode)",
                ExpressionAttributeValues={
                    ":count": {"N": str(len(roster.players) - 1)},
                    ":next": {"N": str(roster.gen + 1)},
                    ":gen": {"N": str(roster.gen)},
                },
            )
            if not isinstance(out, ConditionFailed):
                return roster.gen + 1
        raise StaleState(f"the roster of {match_id} kept changing while releasing a seat")

    # --- where a player sits: one item per player naming their latest match of each mode ----------

    def seat_of(self, player: str, mode: str) -> str | None:
        """The match of `mode` the player last took a seat in (a consistent read), if any."""
        out = self._ddb.get_item(
            TableName=self._table,
            Key={"matchId": {"S": f"seat#{player}"}},
            ProjectionExpression="#m",
            ExpressionAttributeNames={"#m": mode},
            ConsistentRead=True,
        )
        item = out.get("Item") or {}
        return item[mode]["S"] if mode in item else None

    def take_seat(self, player: str, mode: str, match_id: str, now_ms: int | None = None) -> None:
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        self._ddb.update_item(
            TableName=self._table,
            Key={"matchId": {"S": f"seat#{player}"}},
            UpdateExpression="SET #m = :match, #ttl = :ttl",
            ExpressionAttributeNames={"#m": mode, "#ttl": "ttl"},
            ExpressionAttributeValues={
                ":match": {"S": match_id},
                ":ttl": {"N": str(now_ms // 1000 + MATCH_TTL)},
            },
        )

    # --- the lobby: one item per mode naming the match that is filling up -----------------------

    def lobby(self, mode: str) -> str | None:
        """The match of this mode that new players join, if any (a strongly consistent read)."""
        out = self._ddb.get_item(
            TableName=self._table, Key={"matchId": {"S": f"lobby#{mode}"}}, ConsistentRead=True
        )
        item = out.get("Item") or {}
        return item["openMatch"]["S"] if "openMatch" in item else None

    def replace_lobby(self, mode: str, current: str | None, new: str) -> bool:
        """Makes `new` the mode's filling match, if the lobby still names `current`. Concurrent joiners
        who all find the lobby full race here, and exactly one of them opens the next match."""
        condition = "attribute_not_exists(openMatch)" if current is None else "openMatch = :current"
        values: dict[str, Any] = {":new": {"S": new}}
        if current is not None:
            values[":current"] = {"S": current}
        out = conditional(
            self._ddb.update_item,
            TableName=self._table,
            Key={"matchId": {"S": f"lobby#{mode}"}},
            UpdateExpression="SET openMatch = :new",
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
        )
        return not isinstance(out, ConditionFailed)

    def roster(self, match_id: str, *, consistent: bool = False) -> Roster:
        out = self._ddb.get_item(
            TableName=self._table,
            Key={"matchId": {"S": match_id}},
            ProjectionExpression="matchId, #m, createdAt, roster, rosterGen, #s, #out, openMode",
            ExpressionAttributeNames={"#m": "mode", "#s": "status", "#out": "out"},
            ConsistentRead=consistent,
        )
        if "Item" not in out:
            raise MatchNotFound()
        return _roster(out["Item"])

    # --- game state (the processor) ------------------------------------------------------------

    def load_many(self, match_ids: list[str]) -> dict[str, Stored]:
        """One BatchGetItem per 100 matches; strongly consistent, since the processor writes them."""
        found: dict[str, Stored] = {}
        for start in range(0, len(match_ids), 100):
            keys: list[dict[str, Any]] = [{"matchId": {"S": m}} for m in match_ids[start : start + 100]]
            request: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}}
            while request:
                out = self._ddb.batch_get_item(RequestItems=request)
                for item in out["Responses"].get(self._table, []):
                    found[item["matchId"]["S"]] = _stored(item)
                request = out.get("UnprocessedKeys") or {}
        return found

    def save(
        self,
        stored: Stored,
        expected_version: int,
        *,
        events: list[tuple[int, GameEvent]],
        last_at: int,
    ) -> None:
        """Writes the state, if the stored version is still `expected_version` (else StaleState), with
        the events it applied and the receive time of its last record, for the table's stream."""
        m = stored.match
        names = {
            "#st": "status",
            "#v": "version",
            "#s": "state",
            "#seq": "seq",
            "#at": "lastAt",
            "#ttl": "ttl",
            "#out": "out",
        }
        values: dict[str, Any] = {
            ":st": {"S": m.status},
            ":v": {"N": str(m.version)},
            ":s": {"B": pack_state(m, stored.connections, events, stored.pushed)},
            ":out": {"L": [{"S": p} for p, s in m.players.items() if s.left]},
            ":seq": {"S": str(stored.seq)},
            ":at": {"N": str(last_at)},
            # Every state write pushes the expiry out again: a long match is not deleted while it is played.
            ":ttl": {"N": str(int(time.time()) + MATCH_TTL)},
            ":old": {"N": str(expected_version)},
        }
        expr = "SET #st = :st, #v = :v, #s = :s, #seq = :seq, #at = :at, #ttl = :ttl, #out = :out"
        if m.winner:
            expr += ", winner = :w"
            values[":w"] = {"S": m.winner}
        if m.status == "finished":
            expr += " REMOVE openMode"
        condition = "attribute_not_exists(#v) OR #v = :old" if expected_version == 0 else "#v = :old"
        out = conditional(
            self._ddb.update_item,
            TableName=self._table,
            Key={"matchId": {"S": m.match_id}},
            UpdateExpression=expr,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        if isinstance(out, ConditionFailed):
            raise StaleState(f"match {m.match_id} moved past version {expected_version}")

    def by_status(
        self, status: str, *, mode: str | None = None, limit: int = 50, cursor: dict[str, Any] | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Newest first, from the byStatus index (for the admin API). Returns (summaries, next key)."""
        kwargs = self._status_query(status)
        kwargs.update(ScanIndexForward=False, Limit=limit)
        if mode is not None:
            kwargs["FilterExpression"] = "#m = :m"
            kwargs["ExpressionAttributeNames"]["#m"] = "mode"
            kwargs["ExpressionAttributeValues"][":m"] = {"S": mode}
        if cursor:
            schema = {"matchId": "S", "status": "S", "createdAt": "N"}
            kwargs["ExclusiveStartKey"] = start_key(cursor, schema, status=status)
        out = self._ddb.query(**kwargs)
        summaries = [
            {
                "matchId": i["matchId"]["S"],
                "mode": i["mode"]["S"],
                "status": i["status"]["S"],
                "createdAt": int(i["createdAt"]["N"]),
                "winner": i["winner"]["S"] if "winner" in i else None,
            }
            for i in out["Items"]
        ]
        return summaries, out.get("LastEvaluatedKey")

    def count_by_status(self, status: str) -> int:
        kwargs = self._status_query(status)
        kwargs["Select"] = "COUNT"
        return sum(int(page["Count"]) for page in pages(self._ddb.query, **kwargs))

    def _status_query(self, status: str) -> dict[str, Any]:
        return {
            "TableName": self._table,
            "IndexName": "byStatus",
            "KeyConditionExpression": "#s = :s",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":s": {"S": status}},
        }

    def load(self, match_id: str) -> Stored:
        out = self._ddb.get_item(TableName=self._table, Key={"matchId": {"S": match_id}}, ConsistentRead=True)
        if "Item" not in out:
            raise MatchNotFound()
        return _stored(out["Item"])


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def pack_state(
    match: Match,
    connections: dict[str, str],
    events: list[tuple[int, GameEvent]],
    pushed: tuple[str, ...] = (),
) -> bytes:
    """The `state` attribute: the parts of a match that grow with its players and actions, compressed."""
    doc = {
        "p": {
            k: [p.score, p.x, p.y, p.left, p.away, p.forfeited, p.tokens, p.at, p.actions]
            for k, p in match.players.items()
        },
        "s": {k: list(v) for k, v in match.seen.items()},
        "c": connections,
        "t": dump_events(events),
        "g": match.roster_gen,
        "a": list(pushed),
        # The mode's own state and the match's start (absent from items written before plug-ins).
        **({"x": match.game} if match.game else {}),
        **({"st": match.started_at} if match.started_at else {}),
    }
    return zlib.compress(_compact(doc).encode(), 6)


def _unpack(item: dict[str, Any]) -> dict[str, Any] | None:
    """The `state` of an item read with boto3 (bytes) or of a stream image in a Lambda event (base64)."""
    raw = item.get("state", {}).get("B")
    if raw is None:
        return None
    data = base64.b64decode(raw) if isinstance(raw, str) else bytes(raw)
    doc: dict[str, Any] = json.loads(zlib.decompress(data))
    return doc


def match_of(item: dict[str, Any]) -> Match | None:
    """The game state in an item (or a stream image) of this table; None before the processor's first
    write (matchmaking created it) and for items that are not matches (the lobby)."""
    doc = _unpack(item)
    if "version" not in item or doc is None:
        return None
    return Match(
        match_id=item["matchId"]["S"],
        mode=item["mode"]["S"],
        status=item["status"]["S"],
        version=int(item["version"]["N"]),
        # Items written before presence, rate limits and plausibility hold fewer fields: the rest defaults.
        players={k: Player(*v) for k, v in doc["p"].items()},
        winner=item["winner"]["S"] if "winner" in item else None,
        seen={k: tuple(v) for k, v in doc["s"].items()},
        roster_gen=int(doc.get("g", 0)),
        game=doc.get("x") or {},
        started_at=int(doc.get("st", 0)),
    )


def connections_of(item: dict[str, Any]) -> dict[str, str]:
    """player -> connection id, of an item (or a stream image) of this table."""
    doc = _unpack(item)
    return dict(doc["c"]) if doc else {}


def tail_of(item: dict[str, Any]) -> list[tuple[int, GameEvent]]:
    """The events the write that left this item applied."""
    doc = _unpack(item)
    return load_events(doc["t"]) if doc else []


def _stored(item: dict[str, Any]) -> Stored:
    match = match_of(item)
    if match is None:  # matchmaking created it; the processor has not applied anything yet
        return Stored(Match(item["matchId"]["S"], item["mode"]["S"]), seq=0, exists=True)
    doc = _unpack(item) or {}
    return Stored(
        match,
        seq=int(item.get("seq", {"S": "0"})["S"]),
        connections=connections_of(item),
        pushed=tuple(doc.get("a", ())),
    )
