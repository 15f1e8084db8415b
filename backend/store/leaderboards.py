"""The leaderboards table: one row per (board, period, player), ranked through a write-sharded index.

Row: entryId = "{boardKey}#{playerId}", boardKey = "{board}#{period}#{periodId}" (e.g.
"duel#daily#2026-11-23"), score, shardKey = "{boardKey}#{n}" with n = crc32(playerId) % SHARDS.
The GSI `byScore` (shardKey, score) spreads one hot board over SHARDS index partitions; top-N reads
every shard's top N and merges them.

Exactly-once credits: a row carries, per match that ever credited it, `c_{matchId}` = the match total
it already includes. A credit moves the row from what the projector believes is credited (the match's
total before the window) to the match's total after it, on the condition that the row still holds that
belief; if it does not (a retry after a crash, a replayed window), the row's own value says what is
missing, and only that is added. A credit never moves a row back: a total at or below what the row
already holds from that match (an old write delivered again) is a no-op.

Settlement: once a finished match's final totals are on every row, `settled#{matchId}` records it and
the match's credit attributes are dropped from the all-time rows; a settled match credits nothing
again, even when an old window of it is delivered again.

`toldRank` on a global row is the rank its player was last pushed, so a `rank` frame is pushed only
when the rank changed.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from typing import Any

from backend.store import condition_failed

SHARDS = 4
SEASON_CACHE_SECONDS = 5.0


SETTLED_TTL = 8 * 24 * 3600  # past the stream's 24 h retention and the match's own 7-day expiry
# Matches credited to a row in one write at most (each is an attribute and a condition of it).
MAX_MATCHES_PER_CREDIT = 25


@dataclass(frozen=True)
class Row:
    player_id: str
    score: int


@dataclass(frozen=True)
class Standing:
    rank: int
    score: int
    told: int | None  # the rank last pushed to the player, if any


def ranked(
    rows: list[Row], position: int = 0, previous: tuple[int, int] | None = None
) -> list[tuple[int, Row]]:
    """Standard competition ranks ("1224") for rows in rank order that follow `position` rows, the last
    of which had (score, rank) `previous`."""
    out: list[tuple[int, Row]] = []
    for i, row in enumerate(rows):
        rank = previous[1] if previous is not None and row.score == previous[0] else position + i + 1
        out.append((rank, row))
        previous = (row.score, rank)
    return out


def _after(row: Row, cursor: Row) -> bool:
    return (-row.score, row.player_id) > (-cursor.score, cursor.player_id)


def shard_of(player_id: str) -> int:
    return zlib.crc32(player_id.encode()) % SHARDS


def _credit_attr(match_id: str) -> str:
    return "c_" + match_id.replace("-", "_")


class LeaderboardStore:
    def __init__(self, client: Any, table: str) -> None:
        self._ddb = client
        self._table = table
        self._seasons: dict[str, tuple[float, int]] = {}

    # --- seasons: one item per board, `season#{board}` -------------------------------------------

    def seasons(self, boards: list[str], max_age: float = SEASON_CACHE_SECONDS) -> dict[str, int]:
        """Current season of each board. Cached for a few seconds per execution environment: a reset
        takes effect everywhere within that time, and a batch pays no read for it."""
        now = time.monotonic()
        missing = [b for b in boards if b not in self._seasons or now - self._seasons[b][0] > max_age]
        if missing:
            keys = [{"entryId": {"S": f"season#{b}"}} for b in missing]
            out = self._ddb.batch_get_item(RequestItems={self._table: {"Keys": keys, "ConsistentRead": True}})
            found = {
                i["entryId"]["S"][7:]: int(i["season"]["N"]) for i in out["Responses"].get(self._table, [])
            }
            for b in missing:
                self._seasons[b] = (now, found.get(b, 0))
        return {b: self._seasons[b][1] for b in boards}

    def start_season(self, board: str) -> int:
        out = self._ddb.update_item(
            TableName=self._table,
            Key={"entryId": {"S": f"season#{board}"}},
            UpdateExpression="ADD season :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        season = int(out["Attributes"]["season"]["N"])
        self._seasons[board] = (time.monotonic(), season)
        return season

    def credit(
        self, board_key: str, player_id: str, match_id: str, *, believed: int, total: int, expires: int | None
    ) -> int | None:
        """Brings the row up to `total` for this match. Returns the row's new score, or None if it
        already included the total (nothing written)."""
        from botocore.exceptions import ClientError

        attr = _credit_attr(match_id)
        for _ in range(5):
            delta = total - believed
            if delta <= 0:
                return None
            values: dict[str, Any] = {
                ":d": {"N": str(delta)},
                ":t": {"N": str(total)},
                ":b": {"N": str(believed)},
                ":board": {"S": board_key},
                ":pl": {"S": player_id},
                ":sh": {"S": f"{board_key}#{shard_of(player_id)}"},
            }
            expr = "ADD score :d SET #c = :t, boardKey = :board, playerId = :pl, shardKey = :sh"
            if expires is not None:
                expr += ", #ttl = :ttl"
                values[":ttl"] = {"N": str(expires)}
            try:
                out = self._ddb.update_item(
                    TableName=self._table,
                    Key={"entryId": {"S": f"{board_key}#{player_id}"}},
                    UpdateExpression=expr,
                    ConditionExpression="attribute_not_exists(#c) OR #c = :b",
                    ExpressionAttributeNames={"#c": attr, **({"#ttl": "ttl"} if expires is not None else {})},
                    ExpressionAttributeValues=values,
                    ReturnValues="UPDATED_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return int(out["Attributes"]["score"]["N"])
            except ClientError as exc:
                if not condition_failed(exc):
                    raise
                old = exc.response.get("Item") or self._get_raw(board_key, player_id) or {}
                believed = int(old[attr]["N"]) if attr in old else 0
        raise RuntimeError(f"could not credit {player_id} on {board_key} for {match_id}")

    def credit_matches(
        self, board_key: str, player_id: str, credits: dict[str, tuple[int, int]], *, expires: int | None
    ) -> int | None:
        """Brings the row up to each match's total at once: match -> (believed, total). One UpdateItem
        when every match's belief holds (the usual case); when one does not (a retry, a replay), each
        match goes on its own, as `credit` does. Returns the row's new score, or None if nothing moved."""
        from botocore.exceptions import ClientError

        moving = {m: bt for m, bt in credits.items() if bt[1] > bt[0]}
        if len(moving) <= 1 or len(moving) > MAX_MATCHES_PER_CREDIT:
            score = None
            for match_id, (believed, total) in moving.items():
                score = (
                    self.credit(
                        board_key, player_id, match_id, believed=believed, total=total, expires=expires
                    )
                    or score
                )
            return score
        names: dict[str, str] = {}
        values: dict[str, Any] = {
            ":d": {"N": str(sum(t - b for b, t in moving.values()))},
            ":board": {"S": board_key},
            ":pl": {"S": player_id},
            ":sh": {"S": f"{board_key}#{shard_of(player_id)}"},
        }
        sets, conditions = [], []
        for i, (match_id, (believed, total)) in enumerate(sorted(moving.items())):
            names[f"#c{i}"] = _credit_attr(match_id)
            values[f":t{i}"] = {"N": str(total)}
            values[f":b{i}"] = {"N": str(believed)}
            sets.append(f"#c{i} = :t{i}")
            conditions.append(f"(attribute_not_exists(#c{i}) OR #c{i} = :b{i})")
        expr = "ADD score :d SET " + ", ".join(sets) + ", boardKey = :board, playerId = :pl, shardKey = :sh"
        if expires is not None:
            expr += ", #ttl = :ttl"
            names["#ttl"] = "ttl"
            values[":ttl"] = {"N": str(expires)}
        try:
            out = self._ddb.update_item(
                TableName=self._table,
                Key={"entryId": {"S": f"{board_key}#{player_id}"}},
                UpdateExpression=expr,
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as exc:
            if not condition_failed(exc):
                raise
            score = None
            for match_id, (believed, total) in sorted(moving.items()):
                score = (
                    self.credit(
                        board_key, player_id, match_id, believed=believed, total=total, expires=expires
                    )
                    or score
                )
            return score
        return int(out["Attributes"]["score"]["N"])

    def forget(self, board_key: str, player_id: str, match_id: str, total: int) -> None:
        """Drops a finished match's credit attribute from a row, once the match itself records that
        the row holds its final total (nothing can credit it again): rows stay small however many
        matches a player plays. A row that no longer holds exactly that total is left alone."""
        from botocore.exceptions import ClientError

        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"entryId": {"S": f"{board_key}#{player_id}"}},
                UpdateExpression="REMOVE #c",
                ConditionExpression="#c = :t",
                ExpressionAttributeNames={"#c": _credit_attr(match_id)},
                ExpressionAttributeValues={":t": {"N": str(total)}},
            )
        except ClientError as exc:
            if not condition_failed(exc):
                raise

    # --- settlement of finished matches: `settled#{matchId}` ---------------------------------------

    def settled(self, match_ids: list[str]) -> set[str]:
        """Which of these matches are settled: one BatchGetItem per 100."""
        found: set[str] = set()
        for start in range(0, len(match_ids), 100):
            keys = [{"entryId": {"S": f"settled#{m}"}} for m in match_ids[start : start + 100]]
            request: dict[str, Any] = {
                self._table: {"Keys": keys, "ConsistentRead": True, "ProjectionExpression": "entryId"}
            }
            while request:
                out = self._ddb.batch_get_item(RequestItems=request)
                found |= {i["entryId"]["S"][8:] for i in out["Responses"].get(self._table, [])}
                request = out.get("UnprocessedKeys") or {}
        return found

    def settle(self, match_id: str, last_at: int) -> None:
        """Marks a finished match settled; `last_at` (epoch ms of its last record) sets the expiry, so a
        settlement written again is the same item."""
        self._ddb.put_item(
            TableName=self._table,
            Item={"entryId": {"S": f"settled#{match_id}"}, "ttl": {"N": str(last_at // 1000 + SETTLED_TTL)}},
        )

    # --- ranks --------------------------------------------------------------------------------------

    def standing(self, board_key: str, player_id: str) -> Standing | None:
        """The player's rank (1 + rows scoring strictly higher, counted per shard), score, and the rank
        last told to them."""
        out = self._ddb.get_item(
            TableName=self._table,
            Key={"entryId": {"S": f"{board_key}#{player_id}"}},
            ProjectionExpression="score, toldRank",
            ConsistentRead=True,
        )
        item = out.get("Item")
        if not item or "score" not in item:
            return None
        score = int(item["score"]["N"])
        told = int(item["toldRank"]["N"]) if "toldRank" in item else None
        return Standing(self._higher(board_key, score) + 1, score, told)

    def tell_rank(self, board_key: str, player_id: str, rank: int) -> None:
        from botocore.exceptions import ClientError

        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"entryId": {"S": f"{board_key}#{player_id}"}},
                UpdateExpression="SET toldRank = :r",
                ConditionExpression="attribute_exists(entryId)",  # never recreate a removed row
                ExpressionAttributeValues={":r": {"N": str(rank)}},
            )
        except ClientError as exc:
            if not condition_failed(exc):
                raise

    def _get_raw(self, board_key: str, player_id: str) -> dict[str, Any] | None:
        out = self._ddb.get_item(
            TableName=self._table, Key={"entryId": {"S": f"{board_key}#{player_id}"}}, ConsistentRead=True
        )
        item: dict[str, Any] | None = out.get("Item")
        return item

    def score_of(self, board_key: str, player_id: str) -> int | None:
        out = self._ddb.get_item(
            TableName=self._table,
            Key={"entryId": {"S": f"{board_key}#{player_id}"}},
            ProjectionExpression="score",
        )
        item = out.get("Item")
        return int(item["score"]["N"]) if item else None

    def top(self, board_key: str, limit: int) -> list[Row]:
        """The best `limit` rows, best first, ties by player id."""
        return self.page(board_key, limit)

    def rank_of(self, board_key: str, player_id: str) -> tuple[int, int] | None:
        """(rank, score) of a player: 1 + how many rows score strictly higher, counted per shard."""
        score = self.score_of(board_key, player_id)
        if score is None:
            return None
        return self._higher(board_key, score) + 1, score

    def _higher(self, board_key: str, score: int) -> int:
        """How many rows of the board score strictly higher: one COUNT Query per shard."""
        higher = 0
        for shard in range(SHARDS):
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": "byScore",
                "KeyConditionExpression": "shardKey = :s AND score > :v",
                "ExpressionAttributeValues": {":s": {"S": f"{board_key}#{shard}"}, ":v": {"N": str(score)}},
                "Select": "COUNT",
            }
            while True:
                out = self._ddb.query(**kwargs)
                higher += int(out["Count"])
                if "LastEvaluatedKey" not in out:
                    break
                kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]
        return higher

    def around(
        self, board_key: str, player_id: str, score: int, rank: int, width: int = 2
    ) -> list[tuple[int, Row]]:
        """The player and the `width` rows on either side, each with its rank (ties share a rank), given
        the player's own rank. Every row tied with the player is read, to place it exactly among them."""
        rows: list[Row] = []
        for shard in range(SHARDS):
            rows += self._query(board_key, shard, width, descending=False, bound=(">", score))
            rows += self._query_all(board_key, shard, ("=", score))
            rows += self._query(board_key, shard, width, descending=True, bound=("<", score))
        ordered = sorted({r.player_id: r for r in rows}.values(), key=lambda r: (-r.score, r.player_id))
        at = next((i for i, r in enumerate(ordered) if r.player_id == player_id), None)
        if at is None:
            return []

        def rank_of_row(row: Row) -> int:
            # 1 + rows scoring higher, counted from the player's rank and the rows read in between.
            if row.score >= score:
                return rank - sum(1 for r in ordered if score < r.score <= row.score)
            return rank + sum(1 for r in ordered if row.score < r.score <= score)

        return [(rank_of_row(r), r) for r in ordered[max(0, at - width) : at + width + 1]]

    def page(self, board_key: str, limit: int, after: Row | None = None) -> list[Row]:
        """Rows in rank order (score descending, then player id), strictly after `after`.

        Exact with ties: every shard's rows tied at the cursor's score, and then at the page's last
        score, are read in full, since an index returns equal scores in no particular order."""
        candidates: list[Row] = []
        for shard in range(SHARDS):
            if after is not None:
                candidates += [
                    r
                    for r in self._query_all(board_key, shard, ("=", after.score))
                    if r.player_id > after.player_id
                ]
            bound = ("<", after.score) if after is not None else None
            candidates += self._query(board_key, shard, limit, descending=True, bound=bound)
        candidates.sort(key=lambda r: (-r.score, r.player_id))
        if len(candidates) >= limit and (after is None or candidates[limit - 1].score != after.score):
            cutoff = candidates[limit - 1].score
            ties = [r for shard in range(SHARDS) for r in self._query_all(board_key, shard, ("=", cutoff))]
            merged = {r.player_id: r for r in candidates + ties if after is None or _after(r, after)}
            candidates = sorted(merged.values(), key=lambda r: (-r.score, r.player_id))
        return candidates[:limit]

    def _query_all(self, board_key: str, shard: int, bound: tuple[str, int]) -> list[Row]:
        rows: list[Row] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "byScore",
            "KeyConditionExpression": f"shardKey = :s AND score {bound[0]} :v",
            "ExpressionAttributeValues": {":s": {"S": f"{board_key}#{shard}"}, ":v": {"N": str(bound[1])}},
        }
        while True:
            out = self._ddb.query(**kwargs)
            rows += [Row(i["playerId"]["S"], int(i["score"]["N"])) for i in out["Items"]]
            if "LastEvaluatedKey" not in out:
                return rows
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def remove(self, board_key: str, player_id: str) -> bool:
        out = self._ddb.delete_item(
            TableName=self._table, Key={"entryId": {"S": f"{board_key}#{player_id}"}}, ReturnValues="ALL_OLD"
        )
        return "Attributes" in out

    def _query(
        self,
        board_key: str,
        shard: int,
        limit: int,
        *,
        descending: bool,
        bound: tuple[str, int] | None = None,
    ) -> list[Row]:
        cond = "shardKey = :s"
        values: dict[str, Any] = {":s": {"S": f"{board_key}#{shard}"}}
        if bound is not None:
            cond += f" AND score {bound[0]} :v"
            values[":v"] = {"N": str(bound[1])}
        out = self._ddb.query(
            TableName=self._table,
            IndexName="byScore",
            KeyConditionExpression=cond,
            ExpressionAttributeValues=values,
            ScanIndexForward=not descending,
            Limit=limit,
        )
        return [Row(i["playerId"]["S"], int(i["score"]["N"])) for i in out["Items"]]
