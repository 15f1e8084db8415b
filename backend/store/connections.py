"""The connections table: one item per open WebSocket connection.

Key: connectionId. GSIs: byPlayer (playerId) and byMatch (matchId, sparse: only connections that
joined a match). Items expire through `ttl` after API Gateway's 2-hour connection limit, so a lost
`$disconnect` cannot leave a record behind for long.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backend.ids import ConnectionId, MatchId, PlayerId
from backend.store import ConditionFailed, conditional, pages, start_key

MAX_CONNECTION_AGE = 2 * 3600
TTL_MARGIN = 600


@dataclass(frozen=True)
class Connection:
    connection_id: ConnectionId
    player_id: PlayerId
    connected_at: int  # epoch ms
    match_id: MatchId | None = None
    mode: str | None = None  # the match's mode (what the message route checks an action's kind against)


def _item(conn: Connection) -> dict[str, Any]:
    item: dict[str, Any] = {
        "connectionId": {"S": conn.connection_id},
        "playerId": {"S": conn.player_id},
        "connectedAt": {"N": str(conn.connected_at)},
        "ttl": {"N": str(conn.connected_at // 1000 + MAX_CONNECTION_AGE + TTL_MARGIN)},
    }
    if conn.match_id:
        item["matchId"] = {"S": conn.match_id}
    if conn.mode:
        item["mode"] = {"S": conn.mode}
    return item


def _from_item(item: dict[str, Any]) -> Connection:
    return Connection(
        connection_id=ConnectionId(item["connectionId"]["S"]),
        player_id=PlayerId(item["playerId"]["S"]),
        connected_at=int(item["connectedAt"]["N"]) if "connectedAt" in item else 0,
        match_id=MatchId(item["matchId"]["S"]) if "matchId" in item else None,
        mode=item["mode"]["S"] if "mode" in item else None,
    )


class ConnectionStore:
    def __init__(self, client: Any, table: str) -> None:
        self._ddb = client
        self._table = table

    def put(self, conn: Connection) -> None:
        self._ddb.put_item(TableName=self._table, Item=_item(conn))

    def delete(self, connection_id: ConnectionId) -> Connection | None:
        """Idempotent: deleting a connection that is already gone is not an error."""
        out = self._ddb.delete_item(
            TableName=self._table, Key={"connectionId": {"S": connection_id}}, ReturnValues="ALL_OLD"
        )
        old = out.get("Attributes")
        return _from_item(old) if old else None

    def get(self, connection_id: ConnectionId) -> Connection | None:
        out = self._ddb.get_item(TableName=self._table, Key={"connectionId": {"S": connection_id}})
        item = out.get("Item")
        return _from_item(item) if item else None

    def attach_match(self, connection_id: ConnectionId, match_id: MatchId, mode: str | None = None) -> bool:
        """Attaches the connection to the match (of `mode`); True when it was not attached to it already."""
        # Conditional so that a join racing a disconnect cannot resurrect a deleted connection.
        out = conditional(
            self._ddb.update_item,
            TableName=self._table,
            Key={"connectionId": {"S": connection_id}},
            UpdateExpression="SET matchId = :m" + (", #mode = :mode" if mode else " REMOVE #mode"),
            ConditionExpression="attribute_exists(connectionId)",
            ExpressionAttributeNames={"#mode": "mode"},
            ExpressionAttributeValues={":m": {"S": match_id}, **({":mode": {"S": mode}} if mode else {})},
            ReturnValues="UPDATED_OLD",
        )
        if isinstance(out, ConditionFailed):
            from backend.errors import ConnectionGone

            raise ConnectionGone("connection closed while joining")
        old = (out.get("Attributes") or {}).get("matchId", {}).get("S")
        return bool(old != match_id)

    def detach_match(self, connection_id: ConnectionId, match_id: MatchId) -> None:
        # Only if still attached to that match: a later join elsewhere is not undone.
        conditional(
            self._ddb.update_item,
            TableName=self._table,
            Key={"connectionId": {"S": connection_id}},
            UpdateExpression="REMOVE matchId, #mode",
            ConditionExpression="matchId = :m",
            ExpressionAttributeNames={"#mode": "mode"},
            ExpressionAttributeValues={":m": {"S": match_id}},
        )

    def in_match(self, match_id: MatchId) -> list[Connection]:
        """Every connection attached to a match: one Query on the byMatch index, never a Scan."""
        query = pages(
            self._ddb.query,
            TableName=self._table,
            IndexName="byMatch",
            KeyConditionExpression="matchId = :m",
            ExpressionAttributeValues={":m": {"S": match_id}},
        )
        return [_from_item(i) for page in query for i in page["Items"]]

    def all(
        self, limit: int = 100, cursor: dict[str, Any] | None = None
    ) -> tuple[list[Connection], dict[str, Any] | None]:
        """Every connection, a page at a time: a Scan, so only for operators (listing, broadcast to
        all), never on a player's path."""
        kwargs: dict[str, Any] = {"TableName": self._table, "Limit": limit}
        if cursor:
            kwargs["ExclusiveStartKey"] = start_key(cursor, {"connectionId": "S"})
        out = self._ddb.scan(**kwargs)
        return [_from_item(i) for i in out["Items"]], out.get("LastEvaluatedKey")

    def count(self) -> int:
        return sum(
            int(page["Count"]) for page in pages(self._ddb.scan, TableName=self._table, Select="COUNT")
        )

    def of_player(self, player_id: PlayerId) -> list[Connection]:
        """Every connection of a player (the byPlayer index: eventually consistent on AWS)."""
        query = pages(
            self._ddb.query,
            TableName=self._table,
            IndexName="byPlayer",
            KeyConditionExpression="playerId = :p",
            ExpressionAttributeValues={":p": {"S": player_id}},
        )
        return [_from_item(i) for page in query for i in page["Items"]]
