"""The matches table: one item per match, written by two parties on disjoint attributes.

- matchmaking (the message Lambda) owns the roster: `roster`, `rosterCount`, `openMode` (sparse GSI
  `open`, present while seats are free). Seats are claimed with a conditional update on
  `rosterCount`, so concurrent joins can never overfill a match.
- the stream processor owns the game state: `status`, `version`, `players`, `winner`, `seen`,
  `credited` and `seq` (the highest Kinesis sequence number applied). It writes them with a condition
  on `version`, after every leaderboard credit of the batch.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from backend.errors import Conflict, MatchFull, MatchNotFound, StaleState
from backend.game.modes import MODES
from backend.game.rules import Match, Player
from backend.store import condition_failed, start_key

MATCH_TTL = 7 * 24 * 3600


@dataclass(frozen=True)
class Roster:
    match_id: str
    mode: str
    players: tuple[str, ...]
    created_at: int
    status: str | None = None  # the processor's status, once it has applied the first join

    @property
    def full(self) -> bool:
        return len(self.players) >= MODES[self.mode].seats


@dataclass(frozen=True)
class Stored:
    """A match as the processor reads it: the state plus its bookkeeping."""

    match: Match
    seq: int  # highest applied sequence number, 0 for none
    credited: dict[str, int]  # per player, the match score already added to the leaderboards
    exists: bool = True


def _roster(item: dict[str, Any]) -> Roster:
    return Roster(
        match_id=item["matchId"]["S"],
        mode=item["mode"]["S"],
        players=tuple(v["S"] for v in item.get("roster", {}).get("L", [])),
        created_at=int(item["createdAt"]["N"]),
        status=item["status"]["S"] if "status" in item else None,
    )


class MatchStore:
    def __init__(self, client: Any, table: str) -> None:
        self._ddb = client
        self._table = table

    # --- matchmaking ---------------------------------------------------------------------------

    def open_matches(self, mode: str, limit: int = 5) -> list[Roster]:
        """Oldest matches of a mode with a free seat (the `open` index is sparse, so this is cheap)."""
        out = self._ddb.query(
            TableName=self._table,
            IndexName="open",
            KeyConditionExpression="openMode = :m",
            ExpressionAttributeValues={":m": {"S": mode}},
            Limit=limit,
        )
        return [_roster(i) for i in out["Items"]]

    def create(self, match_id: str, mode: str, player: str, now_ms: int | None = None) -> Roster:
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        seats = MODES[mode].seats
        item: dict[str, Any] = {
            "matchId": {"S": match_id},
            "mode": {"S": mode},
            "createdAt": {"N": str(now_ms)},
            "roster": {"L": [{"S": player}]},
            "rosterCount": {"N": "1"},
            "ttl": {"N": str(now_ms // 1000 + MATCH_TTL)},
            # The processor owns status from its first write on; this makes the match listable before.
            "status": {"S": "waiting"},
        }
        if seats > 1:
            item["openMode"] = {"S": mode}
        from botocore.exceptions import ClientError

        try:
            self._ddb.put_item(
                TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(matchId)"
            )
        except ClientError as exc:
            if condition_failed(exc):
                raise Conflict(f"match {match_id} already exists") from exc
            raise
        return Roster(match_id, mode, (player,), now_ms, status="waiting")

    def claim_seat(self, roster: Roster, player: str) -> Roster:
        """Adds the player if the roster is still as read; raises StaleState or MatchFull otherwise."""
        from botocore.exceptions import ClientError

        seats = MODES[roster.mode].seats
        count = len(roster.players)
        if count >= seats:
            raise MatchFull()
        expr = "SET roster = list_append(roster, :p), rosterCount = :next"
        if count + 1 >= seats:
            expr += " REMOVE openMode"
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"matchId": {"S": roster.match_id}},
                UpdateExpression=expr,
                ConditionExpression="rosterCount = :count AND attribute_exists(openMode)",
                ExpressionAttributeValues={
                    ":p": {"L": [{"S": player}]},
                    ":next": {"N": str(count + 1)},
                    ":count": {"N": str(count)},
                },
            )
        except ClientError as exc:
            if condition_failed(exc):
                raise StaleState("the match changed while joining") from exc
            raise
        return Roster(roster.match_id, roster.mode, (*roster.players, player), roster.created_at)

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
        from botocore.exceptions import ClientError

        condition = "attribute_not_exists(openMatch)" if current is None else "openMatch = :current"
        values: dict[str, Any] = {":new": {"S": new}}
        if current is not None:
            values[":current"] = {"S": current}
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"matchId": {"S": f"lobby#{mode}"}},
                UpdateExpression="SET openMatch = :new",
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def roster(self, match_id: str, *, consistent: bool = False) -> Roster:
        out = self._ddb.get_item(
            TableName=self._table,
            Key={"matchId": {"S": match_id}},
            ProjectionExpression="matchId, #m, createdAt, roster, #s",
            ExpressionAttributeNames={"#m": "mode", "#s": "status"},
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

    def save(self, stored: Stored, expected_version: int) -> None:
        from botocore.exceptions import ClientError

        m = stored.match
        names = {
            "#st": "status",
            "#v": "version",
            "#p": "players",
            "#seen": "seen",
            "#c": "credited",
            "#seq": "seq",
        }
        values: dict[str, Any] = {
            ":st": {"S": m.status},
            ":v": {"N": str(m.version)},
            ":p": {"S": json.dumps({k: [p.score, p.x, p.y, p.left] for k, p in m.players.items()})},
            ":seen": {"S": json.dumps({k: list(v) for k, v in m.seen.items()})},
            ":c": {"S": json.dumps(stored.credited)},
            ":seq": {"S": str(stored.seq)},
            ":old": {"N": str(expected_version)},
        }
        # Every state write pushes the expiry out again: a long match is not deleted while it is played.
        values[":ttl"] = {"N": str(int(time.time()) + MATCH_TTL)}
        names["#ttl"] = "ttl"
        expr = "SET #st = :st, #v = :v, #p = :p, #seen = :seen, #c = :c, #seq = :seq, #ttl = :ttl"
        if m.winner:
            expr += ", winner = :w"
            values[":w"] = {"S": m.winner}
        if m.status == "finished":
            expr += " REMOVE openMode"
        condition = "attribute_not_exists(#v) OR #v = :old" if expected_version == 0 else "#v = :old"
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"matchId": {"S": m.match_id}},
                UpdateExpression=expr,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if condition_failed(exc):
                raise StaleState(f"match {m.match_id} moved past version {expected_version}") from exc
            raise

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
        total = 0
        while True:
            out = self._ddb.query(**kwargs)
            total += int(out["Count"])
            if "LastEvaluatedKey" not in out:
                return total
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

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


def _stored(item: dict[str, Any]) -> Stored:
    match_id = item["matchId"]["S"]
    mode = item["mode"]["S"]
    if "version" not in item:  # matchmaking created it; the processor has not applied anything yet
        return Stored(Match(match_id, mode), seq=0, credited={}, exists=True)
    players = {k: Player(*v) for k, v in json.loads(item["players"]["S"]).items()}
    seen = {k: tuple(v) for k, v in json.loads(item.get("seen", {"S": "{}"})["S"]).items()}
    match = Match(
        match_id=match_id,
        mode=mode,
        status=item["status"]["S"],
        version=int(item["version"]["N"]),
        players=players,
        winner=item["winner"]["S"] if "winner" in item else None,
        seen=seen,
    )
    credited = {k: int(v) for k, v in json.loads(item.get("credited", {"S": "{}"})["S"]).items()}
    return Stored(match, seq=int(item.get("seq", {"S": "0"})["S"]), credited=credited)
