"""The progress table: what players keep across matches, written by the match-end saga (streams.settlement).

Key: ownerId (a player id, or `match#<id>` for a match's settlement record) + entry.
- `season#<season>`  a player's season statistics: matches, wins, points (ADD)
- `wallet`           a player's coins (ADD)
- `applied#<match>#<step>`  the marker of a saga step applied for that match (stats, rewards)
- `settlement` (ownerId `match#<id>`)  the settled match: placements, coins, when

Each step is one TransactWriteItems: its marker (put only if absent) with every player's increments,
so a step applied again (a retried Lambda, a retried task) finds its marker and writes nothing, and
a step is applied to every player or to none. Its compensation is the mirror transaction: the
markers deleted only if present, with the increments negated; undoing a step that never applied (or
was undone) writes nothing either. TransactWriteItems costs twice the write units of plain writes:
settlement is a few writes per finished match, off the players' path.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MARKER_RETENTION = 400 * 24 * 3600  # markers outlive any retry or re-drive of a saga
MAX_PLAYERS = 40  # two items per player, and a transaction holds 100 at most


@dataclass(frozen=True)
class StatLine:
    player: str
    points: int
    won: bool


def _canceled_by_condition(exc: Exception) -> bool:
    response: dict[str, Any] = getattr(exc, "response", {})
    if response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return False
    reasons = response.get("CancellationReasons")
    if reasons:
        return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons)
    return "ConditionalCheckFailed" in str(response.get("Error", {}).get("Message", ""))


class ProgressStore:
    def __init__(self, client: Any, table: str) -> None:
        self._ddb = client
        self._table = table

    def _key(self, owner: str, entry: str) -> dict[str, Any]:
        return {"ownerId": {"S": owner}, "entry": {"S": entry}}

    def _transact(self, items: list[dict[str, Any]]) -> bool:
        """True when written; False when a marker's condition said it was done already."""
        if not items:
            return True
        try:
            self._ddb.transact_write_items(TransactItems=items)
        except Exception as exc:
            if _canceled_by_condition(exc):
                return False
            raise
        return True

    def _marker(self, owner: str, match_id: str, step: str, apply: bool) -> dict[str, Any]:
        key = self._key(owner, f"applied#{match_id}#{step}")
        if apply:
            item = {**key, "ttl": {"N": str(int(time.time()) + MARKER_RETENTION)}}
            return {
                "Put": {
                    "TableName": self._table,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(ownerId)",
                }
            }
        return {
            "Delete": {
                "TableName": self._table,
                "Key": key,
                "ConditionExpression": "attribute_exists(ownerId)",
            }
        }

    def _add(self, owner: str, entry: str, amounts: Mapping[str, int]) -> dict[str, Any]:
        names = {f"#{k}": k for k in amounts}
        values = {f":{k}": {"N": str(v)} for k, v in amounts.items()}
        return {
            "Update": {
                "TableName": self._table,
                "Key": self._key(owner, entry),
                "UpdateExpression": "ADD " + ", ".join(f"#{k} :{k}" for k in amounts),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }

    # --- season statistics ----------------------------------------------------------------------------

    def record_stats(self, match_id: str, season: str, lines: list[StatLine], *, undo: bool = False) -> bool:
        """Adds (or, with undo, takes back) one match to each player's season row. True when it wrote."""
        if len(lines) > MAX_PLAYERS:
            raise ValueError(f"a settlement holds {MAX_PLAYERS} players at most")
        sign = -1 if undo else 1
        items: list[dict[str, Any]] = []
        for line in lines:
            items.append(self._marker(line.player, match_id, "stats", apply=not undo))
            amounts = {"matches": sign, "wins": sign * int(line.won), "points": sign * line.points}
            items.append(self._add(line.player, f"season#{season}", amounts))
        return self._transact(items)

    def stats(self, player: str, season: str) -> dict[str, int]:
        item = self._get(player, f"season#{season}")
        return {k: int(item[k]["N"]) if item and k in item else 0 for k in ("matches", "wins", "points")}

    # --- rewards --------------------------------------------------------------------------------------

    def grant(self, match_id: str, coins: Mapping[str, int], *, undo: bool = False) -> bool:
        """Credits (or, with undo, takes back) each player's coins for the match. True when it wrote."""
        if len(coins) > MAX_PLAYERS:
            raise ValueError(f"a settlement holds {MAX_PLAYERS} players at most")
        sign = -1 if undo else 1
        items: list[dict[str, Any]] = []
        for player, amount in sorted(coins.items()):
            items.append(self._marker(player, match_id, "rewards", apply=not undo))
            items.append(self._add(player, "wallet", {"coins": sign * amount}))
        return self._transact(items)

    def wallet(self, player: str) -> int:
        item = self._get(player, "wallet")
        return int(item["coins"]["N"]) if item and "coins" in item else 0

    def applied(self, player: str, match_id: str, step: str) -> bool:
        return self._get(player, f"applied#{match_id}#{step}") is not None

    # --- the settlement record --------------------------------------------------------------------------

    def publish(self, match_id: str, placements: Mapping[str, int], coins: Mapping[str, int]) -> bool:
        """The match's settlement record, written once. True when it wrote."""
        item = {
            **self._key(f"match#{match_id}", "settlement"),
            "placements": {"M": {p: {"N": str(n)} for p, n in placements.items()}},
            "coins": {"M": {p: {"N": str(n)} for p, n in coins.items()}},
            "settledAt": {"N": str(int(time.time() * 1000))},
        }
        try:
            self._ddb.put_item(
                TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(ownerId)"
            )
        except Exception as exc:
            from backend.store import condition_failed

            if condition_failed(exc):
                return False
            raise
        return True

    def settlement(self, match_id: str) -> dict[str, Any] | None:
        item = self._get(f"match#{match_id}", "settlement")
        if item is None:
            return None
        return {
            "placements": {p: int(v["N"]) for p, v in item["placements"]["M"].items()},
            "coins": {p: int(v["N"]) for p, v in item["coins"]["M"].items()},
            "settledAt": int(item["settledAt"]["N"]),
        }

    def _get(self, owner: str, entry: str) -> dict[str, Any] | None:
        out = self._ddb.get_item(TableName=self._table, Key=self._key(owner, entry), ConsistentRead=True)
        item: dict[str, Any] | None = out.get("Item")
        return item
