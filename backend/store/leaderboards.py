"""The leaderboards table: one row per (board, period, player), the rank tree of every board, seasons
and settlement markers.

Row: entryId = "{boardKey}#{playerId}", boardKey = "{board}[@s{season}]#{period}#{periodId}" (e.g.
"duel#daily#2026-11-23"). A board without a tie-break is read in rank order through the write-sharded
index `byScore` (shardKey = "{boardKey}#{n}", n = crc32(playerId) % SHARDS; score); a board with one
through `byRank` (rankShard, the same shards; rankKey = score and tie-break packed in one number, see
backend.game.scoring.rank_key). A page reads every shard's next rows and merges them.

Credits (what a window of matches makes of a row) are exactly once: see backend.game.scoring for each
operator. Settlement: once a finished match's final totals are on every row, `settled#{matchId}` records
it and the match's per-match attributes are dropped from the all-time rows; a settled match credits
nothing again.

Ranks come from the board's rank tree (backend.game.ranktree): counters of rows per score, maintained by
`sync` in the same DynamoDB transactions as each row's `ranked` (the score the tree counts it at). A
transaction moves a set of rows and adds exactly their moves to the counters, on the condition that each
row is still counted where the transaction read it: the counters are the histogram of `ranked` after
every transaction, whatever crashes, retries and replays come between two of them. A row whose `ranked`
is behind its score (its window's sync had not run yet) is counted at its old score until the next sync.
"""

from __future__ import annotations

import random
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from backend.game import ranktree as tree
from backend.game.boards import Board, Boards, configured
from backend.game.ordering import Direction, Row, order, precedes, ranked
from backend.game.scoring import KEY_SPAN, Contribution, Held, apply, match_key, rank_key, unpack
from backend.store import ConditionFailed, conditional, pages

__all__ = [
    "SHARDS",
    "Around",
    "Contribution",
    "Credited",
    "Held",
    "LeaderboardStore",
    "Page",
    "Row",
    "Seasons",
    "Standing",
    "counts_of",
    "held_of",
    "node_id",
    "node_ids",
    "shard_of",
]

SHARDS = 4
SEASON_CACHE_SECONDS = 5.0
SETTLED_TTL = 8 * 24 * 3600  # past the stream's 24 h retention and the match's own 7-day expiry
# Matches credited to a row in one write at most (each is an attribute and a condition of it).
MAX_MATCHES_PER_CREDIT = 25
MAX_TRANSACTION_ITEMS = 100  # DynamoDB's limit
SYNC_ATTEMPTS = 12
CREDIT_ATTEMPTS = 5


def shard_of(player_id: str) -> int:
    return zlib.crc32(player_id.encode()) % SHARDS


def credit_attr(match_id: str) -> str:
    return "c_" + match_key(match_id)


def win_attr(match_id: str) -> str:
    return "w_" + match_key(match_id)


def held_of(item: Mapping[str, Any] | None) -> Held:
    """What a row's item holds (an absent item, or a settlement marker, holds nothing)."""
    if not item or "score" not in item:
        return Held()

    def num(name: str, default: int = 0) -> int:
        return int(item[name]["N"]) if name in item else default

    return Held(
        exists=True,
        score=num("score"),
        sub=num("sub"),
        reached=num("reachedAt"),
        set_at=item["setAt"]["S"] if "setAt" in item else "",
        version=num("v"),
        ranked=num("ranked") if "ranked" in item else None,
        told=num("toldRank") if "toldRank" in item else None,
        credits={k[2:]: int(v["N"]) for k, v in item.items() if k.startswith("c_")},
        wins={k[2:]: int(v["N"]) for k, v in item.items() if k.startswith("w_")},
    )


# --- the rank tree's items: entryId "rank#{boardKey}#{node}[#{copy}]", a count per child `n{child}` --


def node_id(board_key: str, node: tree.Node, copy: int | None = None) -> str:
    """entryId of a node's item (of one copy, for a hot node)."""
    return f"rank#{board_key}#{node}" if copy is None else f"rank#{board_key}#{node}#{copy}"


def node_ids(board_key: str, node: tree.Node) -> list[str]:
    """Every item a node is kept in."""
    if tree.is_hot(node):
        return [node_id(board_key, node, c) for c in range(tree.COPIES)]
    return [node_id(board_key, node)]


def count_attr(child: tree.Child) -> str:
    return f"n{child}"


def counts_of(item: Mapping[str, Any]) -> dict[tree.Child, int]:
    """A node item's child counts, from its DynamoDB attributes."""
    out: dict[tree.Child, int] = {}
    for name, value in item.items():
        if name.startswith("n") and name[1:].isdigit() and isinstance(value, dict) and "N" in value:
            out[int(name[1:])] = int(value["N"])
    return out


@dataclass(frozen=True)
class Credited:
    """A credit's outcome: the row after it (None when unknown without reading it), and whether it moved."""

    held: Held | None
    moved: bool


@dataclass(frozen=True)
class Standing:
    rank: int
    score: int
    told: int | None  # the rank last pushed to the player, if any
    subscore: int | None = None


@dataclass(frozen=True)
class Page:
    entries: list[tuple[int, Row]]  # (rank, row), in rank order
    more_before: bool
    more_after: bool


@dataclass(frozen=True)
class Around:
    me: tuple[int, Row]
    entries: list[tuple[int, Row]]  # the neighbours and the player, in rank order
    more_before: bool
    more_after: bool


@dataclass(frozen=True)
class Seasons:
    """A board's seasons: the current one, and when each reset happened (epoch ms, oldest first; resets
    made before these were recorded have none and count as long past)."""

    current: int
    starts: tuple[int, ...] = ()

    def at(self, ms: int) -> int:
        """The season a write received at `ms` counts in: points count in the season they were scored in,
        so a retried or replayed window lands on the same rows whenever it runs."""
        return self.current - sum(1 for s in self.starts if s > ms)


@dataclass(frozen=True)
class _Index:
    name: str
    shard_attr: str
    key_attr: str


BY_SCORE = _Index("byScore", "shardKey", "score")
BY_RANK = _Index("byRank", "rankShard", "rankKey")


def _index(board: Board) -> _Index:
    return BY_RANK if board.ranked_by_key else BY_SCORE


def _num(n: int) -> dict[str, str]:
    return {"N": str(n)}


class LeaderboardStore:
    def __init__(self, client: Any, table: str, boards: Boards | None = None) -> None:
        self._ddb = client
        self._table = table
        self._boards = boards
        self._seasons: dict[str, tuple[float, Seasons]] = {}

    @property
    def boards(self) -> Boards:
        """The boards of this stage (serverless.yml custom.leaderboards)."""
        if self._boards is None:
            self._boards = configured()
        return self._boards

    # --- seasons: one item per board, `season#{board}` -------------------------------------------

    def seasons(self, boards: list[str], max_age: float = SEASON_CACHE_SECONDS) -> dict[str, int]:
        """Current season of each board. Cached for a few seconds per execution environment: a reset
        takes effect for readers everywhere within that time, and a request pays no read for it."""
        return {b: s.current for b, s in self.season_history(boards, max_age).items()}

    def season_history(self, boards: list[str], max_age: float = SEASON_CACHE_SECONDS) -> dict[str, Seasons]:
        now = time.monotonic()
        missing = [b for b in boards if b not in self._seasons or now - self._seasons[b][0] > max_age]
        if missing:
            keys = [{"entryId": {"S": f"season#{b}"}} for b in missing]
            out = self._ddb.batch_get_item(RequestItems={self._table: {"Keys": keys, "ConsistentRead": True}})
            found = {i["entryId"]["S"][7:]: i for i in out["Responses"].get(self._table, [])}
            for b in missing:
                item = found.get(b)
                seasons = Seasons(
                    int(item["season"]["N"]) if item else 0,
                    tuple(int(s["N"]) for s in item["starts"]["L"]) if item and "starts" in item else (),
                )
                self._seasons[b] = (now, seasons)
        return {b: self._seasons[b][1] for b in boards}

    def start_season(self, board: str, now_ms: int | None = None) -> int:
        """A new season of the board, from now on: one write, which also records when it started."""
        at = int(time.time() * 1000) if now_ms is None else now_ms
        out = self._ddb.update_item(
            TableName=self._table,
            Key={"entryId": {"S": f"season#{board}"}},
            UpdateExpression="ADD season :one SET starts = list_append(if_not_exists(starts, :none), :at)",
            ExpressionAttributeValues={":one": _num(1), ":none": {"L": []}, ":at": {"L": [_num(at)]}},
            ReturnValues="ALL_NEW",
        )
        item = out["Attributes"]
        seasons = Seasons(int(item["season"]["N"]), tuple(int(s["N"]) for s in item["starts"]["L"]))
        self._seasons[board] = (time.monotonic(), seasons)
        return seasons.current

    # --- credits -----------------------------------------------------------------------------------

    def credit_row(
        self,
        board: Board,
        board_key: str,
        player_id: str,
        contributions: list[Contribution],
        *,
        expires: int | None,
    ) -> Credited:
        """What the window's matches make of one row (rows.apply), written exactly once."""
        if board.operator == "incr" and not board.ranked_by_key:
            credits = {c.match_id: (c.believed, c.total) for c in contributions}
            return self._credit_matches(board_key, player_id, credits, expires)
        return self._rewrite(board, board_key, player_id, contributions, expires)

    def credit(
        self, board_key: str, player_id: str, match_id: str, *, believed: int, total: int, expires: int | None
    ) -> int | None:
        """Brings a plain `incr` row up to `total` for this match. Returns the row's new score, or None if
        it already included the total (nothing written)."""
        done = self._credit_one(board_key, player_id, match_id, believed, total, expires)
        return done.held.score if done.moved and done.held else None

    def credit_matches(
        self, board_key: str, player_id: str, credits: dict[str, tuple[int, int]], *, expires: int | None
    ) -> int | None:
        """Brings a plain `incr` row up to each match's total at once: match -> (believed, total). Returns
        the row's new score, or None if nothing moved."""
        done = self._credit_matches(board_key, player_id, credits, expires)
        return done.held.score if done.moved and done.held else None

    def _credit_matches(
        self, board_key: str, player_id: str, credits: dict[str, tuple[int, int]], expires: int | None
    ) -> Credited:
        """One UpdateItem when every match's belief holds (the usual case); when one does not (a retry, a
        replay), each match goes on its own."""
        moving = {m: bt for m, bt in credits.items() if bt[1] > bt[0]}
        if len(moving) <= 1 or len(moving) > MAX_MATCHES_PER_CREDIT:
            return self._credit_each(board_key, player_id, moving, expires)
        names: dict[str, str] = {}
        values: dict[str, Any] = {":d": _num(sum(t - b for b, t in moving.values()))}
        sets, conditions = [], []
        for i, (match_id, (believed, total)) in enumerate(sorted(moving.items())):
            names[f"#c{i}"] = credit_attr(match_id)
            values[f":t{i}"] = _num(total)
            values[f":b{i}"] = _num(believed)
            sets.append(f"#c{i} = :t{i}")
            conditions.append(f"(attribute_not_exists(#c{i}) OR #c{i} = :b{i})")
        out = conditional(
            self._ddb.update_item,
            **self._plain_update(board_key, player_id, sets, names, values, expires),
            ConditionExpression=" AND ".join(conditions),
            ReturnValues="ALL_NEW",
        )
        if isinstance(out, ConditionFailed):
            return self._credit_each(board_key, player_id, moving, expires)
        return Credited(held_of(out["Attributes"]), True)

    def _credit_each(
        self, board_key: str, player_id: str, moving: dict[str, tuple[int, int]], expires: int | None
    ) -> Credited:
        held: Held | None = None
        moved = False
        for match_id, (believed, total) in sorted(moving.items()):
            done = self._credit_one(board_key, player_id, match_id, believed, total, expires)
            held = done.held or held
            moved = moved or done.moved
        return Credited(held, moved)

    def _plain_update(
        self,
        board_key: str,
        player_id: str,
        sets: list[str],
        names: dict[str, str],
        values: dict[str, Any],
        expires: int | None,
    ) -> dict[str, Any]:
        values = {
            **values,
            ":board": {"S": board_key},
            ":pl": {"S": player_id},
            ":sh": {"S": f"{board_key}#{shard_of(player_id)}"},
        }
        expr = "ADD score :d SET " + ", ".join(
            [*sets, "boardKey = :board", "playerId = :pl", "shardKey = :sh"]
        )
        if expires is not None:
            expr += ", #ttl = :ttl"
            names = {**names, "#ttl": "ttl"}
            values[":ttl"] = _num(expires)
        return {
            "TableName": self._table,
            "Key": {"entryId": {"S": f"{board_key}#{player_id}"}},
            "UpdateExpression": expr,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }

    def _credit_one(
        self, board_key: str, player_id: str, match_id: str, believed: int, total: int, expires: int | None
    ) -> Credited:
        """One match's credit of a plain `incr` row: from what the projector believes the row holds from
        the match to `total`; when the belief is stale, from what the row itself says it holds."""
        attr = credit_attr(match_id)
        seen: Held | None = None
        for _ in range(CREDIT_ATTEMPTS):
            delta = total - believed
            if delta <= 0:
                return Credited(seen, False)
            request = self._plain_update(
                board_key,
                player_id,
                ["#c = :t"],
                {"#c": attr},
                {":d": _num(delta), ":t": _num(total)},
                expires,
            )
            request["ExpressionAttributeValues"][":b"] = _num(believed)
            out = conditional(
                self._ddb.update_item,
                **request,
                ConditionExpression="attribute_not_exists(#c) OR #c = :b",
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            if not isinstance(out, ConditionFailed):
                return Credited(held_of(out["Attributes"]), True)
            old = out.old or self._get_raw(board_key, player_id) or {}
            seen = held_of(old)
            believed = int(old[attr]["N"]) if attr in old else 0
        raise RuntimeError(f"could not credit {player_id} on {board_key} for {match_id}")

    def _rewrite(
        self,
        board: Board,
        board_key: str,
        player_id: str,
        contributions: list[Contribution],
        expires: int | None,
    ) -> Credited:
        """A row of any other board: read it, apply the operator, write it back on the condition that it
        is still the version read (optimistic; a concurrent credit of the row makes it read again)."""
        for _ in range(CREDIT_ATTEMPTS):
            item = self._get_raw(board_key, player_id)
            held = held_of(item)
            new = apply(board, held, contributions)
            if new is None:
                return Credited(held, False)
            if self._write_row(board, board_key, player_id, held, new, expires):
                return Credited(new, True)
        raise RuntimeError(f"could not credit {player_id} on {board_key}: the row kept changing")

    def _write_row(
        self, board: Board, board_key: str, player_id: str, held: Held, new: Held, expires: int | None
    ) -> bool:
        shard = f"{board_key}#{shard_of(player_id)}"
        index = _index(board)
        values: dict[str, Any] = {
            ":score": _num(new.score),
            ":sub": _num(new.sub),
            ":at": _num(new.reached),
            ":v": _num(new.version + 1),
            ":board": {"S": board_key},
            ":pl": {"S": player_id},
            ":sh": {"S": shard},
        }
        names: dict[str, str] = {"#sh": index.shard_attr}
        sets = [
            "score = :score",
            "#sub = :sub",
            "reachedAt = :at",
            "v = :v",
            "boardKey = :board",
            "playerId = :pl",
        ]
        names["#sub"] = "sub"
        sets.append("#sh = :sh")
        if board.ranked_by_key:
            values[":rk"] = _num(rank_key(board, new.score, new.sub, new.reached))
            sets.append("rankKey = :rk")
        if new.set_at:
            values[":set"] = {"S": new.set_at}
            sets.append("setAt = :set")
        for i, (attr, total) in enumerate(sorted(new.credits.items())):
            if held.credits.get(attr) != total:
                names[f"#c{i}"] = "c_" + attr
                values[f":c{i}"] = _num(total)
                sets.append(f"#c{i} = :c{i}")
        for i, attr in enumerate(sorted(set(new.wins) - set(held.wins))):
            names[f"#w{i}"] = "w_" + attr
            values[f":w{i}"] = _num(1)
            sets.append(f"#w{i} = :w{i}")
        if expires is not None:
            names["#ttl"] = "ttl"
            values[":ttl"] = _num(expires)
            sets.append("#ttl = :ttl")
        if held.exists:
            condition = "v = :held" if held.version else "attribute_not_exists(v) AND score = :was"
            values[":held" if held.version else ":was"] = _num(held.version if held.version else held.score)
        else:
            condition = "attribute_not_exists(score)"
        out = conditional(
            self._ddb.update_item,
            TableName=self._table,
            Key={"entryId": {"S": f"{board_key}#{player_id}"}},
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        return not isinstance(out, ConditionFailed)

    def forget(self, board_key: str, player_id: str, match_id: str, total: int) -> None:
        """Drops a finished match's per-match attributes from a row, once the match itself records that
        the row holds its final total (nothing can credit it again): rows stay small however many
        matches a player plays. A row that no longer holds exactly that total is left alone."""
        conditional(
            self._ddb.update_item,
            TableName=self._table,
            Key={"entryId": {"S": f"{board_key}#{player_id}"}},
            UpdateExpression="REMOVE #c, #w",
            ConditionExpression="#c = :t",
            ExpressionAttributeNames={"#c": credit_attr(match_id), "#w": win_attr(match_id)},
            ExpressionAttributeValues={":t": _num(total)},
        )

    # --- settlement of finished matches: `settled#{matchId}` ---------------------------------------

    def settled(self, match_ids: list[str]) -> set[str]:
        """Which of these matches are settled: one BatchGetItem per 100."""
        found: set[str] = set()
        for start in range(0, len(match_ids), 100):
            keys = [{"entryId": {"S": f"settled#{m}"}} for m in match_ids[start : start + 100]]
            for item in self._batch_get(keys, projection="entryId"):
                found.add(item["entryId"]["S"][8:])
        return found

    def settle(self, match_id: str, last_at: int) -> None:
        """Marks a finished match settled; `last_at` (epoch ms of its last record) sets the expiry, so a
        settlement written again is the same item."""
        self._ddb.put_item(
            TableName=self._table,
            Item={"entryId": {"S": f"settled#{match_id}"}, "ttl": _num(last_at // 1000 + SETTLED_TTL)},
        )

    # --- the rank tree ----------------------------------------------------------------------------

    def rows(self, board_key: str, players: Iterable[str]) -> dict[str, Held]:
        """Rows as they stand (strongly consistent), by player; an absent row holds nothing."""
        keys = [{"entryId": {"S": f"{board_key}#{p}"}} for p in sorted(set(players))]
        found: dict[str, Held] = {p["entryId"]["S"][len(board_key) + 1 :]: Held() for p in keys}
        for start in range(0, len(keys), 100):
            for item in self._batch_get(keys[start : start + 100]):
                found[item["entryId"]["S"][len(board_key) + 1 :]] = held_of(item)
        return found

    def sync(self, board_key: str, rows: dict[str, Held], *, expires: int | None) -> int:
        """Brings the rank tree to the rows: every row whose `ranked` is not its score moves, in as few
        transactions as DynamoDB takes (100 items: the rows and the counters they change). A row another
        writer moved in between is read again and moved from where it is. Returns the moves written."""
        pending = {p: h for p, h in rows.items() if _target(h) != h.ranked}
        written = 0
        for attempt in range(SYNC_ATTEMPTS):
            if not pending:
                return written
            for chunk in _chunks(sorted(pending.items())):
                stale = self._move(
                    board_key, chunk, expires, copy=zlib.crc32(chunk[0][0].encode()) % tree.COPIES
                )
                for player, _ in chunk:
                    if player not in stale:
                        pending.pop(player, None)
                        written += 1
            if pending:
                time.sleep(min(0.5, 0.01 * 2**attempt) * random.random())
                fresh = self.rows(board_key, pending)
                pending = {p: h for p, h in fresh.items() if _target(h) != h.ranked}
        raise RuntimeError(f"could not bring the rank tree of {board_key} to its rows")

    def _move(
        self, board_key: str, chunk: list[tuple[str, Held]], expires: int | None, *, copy: int
    ) -> set[str]:
        """One transaction: the chunk's rows' `ranked`, and the counters of their moves. Returns the
        players whose rows were not as read (nothing was written then), or whose transaction lost a race."""
        from botocore.exceptions import ClientError

        items: list[dict[str, Any]] = []
        for player, held in chunk:
            key = {"entryId": {"S": f"{board_key}#{player}"}}
            condition = "attribute_not_exists(ranked)" if held.ranked is None else "ranked = :from"
            values: dict[str, Any] = {":to": _num(held.score)}
            if held.ranked is not None:
                values[":from"] = _num(held.ranked)
            items.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": key,
                        "UpdateExpression": "SET ranked = :to",
                        "ConditionExpression": f"attribute_exists(score) AND {condition}",
                        "ExpressionAttributeValues": values,
                    }
                }
            )
        for node, counts in sorted(tree.deltas((h.ranked, h.score) for _, h in chunk).items()):
            entry = node_id(board_key, node, copy if tree.is_hot(node) else None)
            adds = ", ".join(f"{count_attr(c)} :d{c}" for c in sorted(counts))
            update: dict[str, Any] = {
                "TableName": self._table,
                "Key": {"entryId": {"S": entry}},
                "UpdateExpression": f"ADD {adds}",
                "ExpressionAttributeValues": {f":d{c}": _num(d) for c, d in counts.items()},
            }
            if expires is not None:
                update["UpdateExpression"] += " SET #ttl = :ttl"
                update["ExpressionAttributeNames"] = {"#ttl": "ttl"}
                update["ExpressionAttributeValues"][":ttl"] = _num(expires)
            items.append({"Update": update})
        try:
            self._ddb.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = exc.response.get("CancellationReasons") or []
            failed = {
                chunk[i][0]
                for i, r in enumerate(reasons[: len(chunk)])
                if r.get("Code") == "ConditionalCheckFailed"
            }
            return failed or {p for p, _ in chunk}  # a conflict or throttling: all of them again
        return set()

    def positions(
        self, board: Board, board_key: str, scores: Iterable[int], *, consistent: bool = False
    ) -> dict[int, tree.Position]:
        """Where each score stands on the board's tree: one BatchGetItem for all of them (per 100 items)."""
        wanted = sorted(set(scores))
        counts = self._tree_counts(board_key, tree.nodes_of(wanted), consistent)
        return {s: tree.stand(counts, s, board.descending) for s in wanted}

    def _tree_counts(self, board_key: str, nodes: set[str], consistent: bool) -> dict[str, dict[int, int]]:
        ids = {i: n for n in nodes for i in node_ids(board_key, n)}
        keys = [{"entryId": {"S": i}} for i in sorted(ids)]
        counts: dict[str, dict[int, int]] = {}
        for start in range(0, len(keys), 100):
            for item in self._batch_get(keys[start : start + 100], consistent=consistent):
                node = ids[item["entryId"]["S"]]
                into = counts.setdefault(node, {})
                for child, n in counts_of(item).items():
                    into[child] = into.get(child, 0) + n
        return counts

    # --- ranks and pages ---------------------------------------------------------------------------

    def standing(
        self, board: Board, board_key: str, player_id: str, held: Held | None = None
    ) -> Standing | None:
        """The player's rank (1 + the rows strictly better), score, subscore and the rank last told to
        them, read consistently (the projector, right after its writes); `held` is the row when the
        caller has it already."""
        if held is None:
            held = self.rows(board_key, [player_id])[player_id]
        if not held.exists:
            return None
        row = self._row_of(board, player_id, held)
        better, _ = self._before(board, board_key, row, consistent=True)
        return Standing(better + 1, held.score, held.told, row.subscore)

    def rank_of(self, board: Board, board_key: str, player_id: str) -> tuple[int, Row] | None:
        """(rank, row) of a player, or None when they have no row."""
        held = self._held(board_key, player_id)
        if not held.exists:
            return None
        row = self._row_of(board, player_id, held)
        better, _ = self._before(board, board_key, row)
        return better + 1, row

    def _before(self, board: Board, board_key: str, row: Row, *, consistent: bool = False) -> tuple[int, int]:
        """(rows strictly better than the row's key, rows sharing it) on the board: the tree; on a board
        with a tie-break, plus the rows of the same score ahead of it, read in the index (their cost)."""
        position = self.positions(board, board_key, [row.score], consistent=consistent)[row.score]
        if not board.ranked_by_key:
            return position.better, position.equal
        k = row.sort
        low, high = (k, (row.score + 1) * KEY_SPAN - 1) if board.descending else (row.score * KEY_SPAN, k)
        keys = self._keys_between(board_key, low, high)
        ahead = sum(1 for x in keys if (x > k if board.descending else x < k))
        return position.better + ahead, sum(1 for x in keys if x == k)

    def _keys_between(self, board_key: str, low: int, high: int) -> list[int]:
        """The rank keys of the rows in [low, high], from every shard of `byRank` (keys only)."""
        found: list[int] = []
        for shard in range(SHARDS):
            for out in pages(
                self._ddb.query,
                TableName=self._table,
                IndexName=BY_RANK.name,
                KeyConditionExpression="rankShard = :s AND rankKey BETWEEN :lo AND :hi",
                ExpressionAttributeValues={
                    ":s": {"S": f"{board_key}#{shard}"},
                    ":lo": _num(low),
                    ":hi": _num(high),
                },
                ProjectionExpression="rankKey",
            ):
                found += [int(i["rankKey"]["N"]) for i in out["Items"]]
        return found

    def top(self, board: Board, board_key: str, limit: int) -> Page:
        return self.page(board, board_key, limit)

    def page(
        self,
        board: Board,
        board_key: str,
        limit: int,
        *,
        anchor: Row | None = None,
        direction: Direction = "after",
    ) -> Page:
        """`limit` rows in rank order: the best ones, or those strictly after (or before) `anchor`."""
        if anchor is None:
            rows = self._after(board, board_key, None, limit + 1)
            return self._ranked(
                board, board_key, rows[:limit], more_before=False, more_after=len(rows) > limit
            )
        if direction == "after":
            rows = self._after(board, board_key, anchor, limit + 1)
            return self._ranked(
                board, board_key, rows[:limit], more_before=True, more_after=len(rows) > limit
            )
        rows = self._before_rows(board, board_key, anchor, limit + 1)
        return self._ranked(board, board_key, rows[-limit:], more_before=len(rows) > limit, more_after=True)

    def around(
        self, board: Board, board_key: str, player_id: str, *, before: int = 2, after: int = 2
    ) -> Around | None:
        """The player, up to `before` rows above and `after` below, each with its rank."""
        held = self._held(board_key, player_id)
        if not held.exists:
            return None
        me = self._row_of(board, player_id, held)
        above = self._before_rows(board, board_key, me, before + 1)
        below = self._after(board, board_key, me, after + 1)
        rows = [*above[max(0, len(above) - before) :], me, *below[:after]]
        page = self._ranked(
            board, board_key, rows, more_before=len(above) > before, more_after=len(below) > after
        )
        mine = next(e for e in page.entries if e[1].player_id == player_id)
        return Around(mine, page.entries, page.more_before, page.more_after)

    def _ranked(
        self, board: Board, board_key: str, rows: list[Row], *, more_before: bool, more_after: bool
    ) -> Page:
        if not rows:
            return Page([], more_before, False)
        better, group = self._before(board, board_key, rows[0])
        return Page(ranked(rows, better, group), more_before, more_after)

    def _row_of(self, board: Board, player_id: str, held: Held) -> Row:
        if board.ranked_by_key:
            key = rank_key(board, held.score, held.sub, held.reached)
            return Row(player_id, held.score, unpack(board, key)[1], key)
        return Row(player_id, held.score)

    def _held(self, board_key: str, player_id: str) -> Held:
        out = self._ddb.get_item(TableName=self._table, Key={"entryId": {"S": f"{board_key}#{player_id}"}})
        return held_of(out.get("Item"))

    def _after(self, board: Board, board_key: str, anchor: Row | None, limit: int) -> list[Row]:
        """Up to `limit` rows strictly after `anchor` (or from the top), in rank order.

        Exact with ties: every shard's rows tied at the anchor's key, and then at the page's last key,
        are read in full, since an index returns equal keys in no particular order."""
        worse = "<" if board.descending else ">"
        candidates: list[Row] = []
        for shard in range(SHARDS):
            if anchor is not None:
                candidates += [
                    r
                    for r in self._query_all(board, board_key, shard, ("=", anchor.sort))
                    if r.player_id > anchor.player_id
                ]
            bound = (worse, anchor.sort) if anchor is not None else None
            candidates += self._query(board, board_key, shard, limit, best_first=True, bound=bound)
        return self._cut(board, board_key, order(candidates, board.descending), limit, anchor, after=True)

    def _before_rows(self, board: Board, board_key: str, anchor: Row, limit: int) -> list[Row]:
        """Up to `limit` rows strictly before `anchor`, in rank order (the nearest ones)."""
        better = ">" if board.descending else "<"
        candidates: list[Row] = []
        for shard in range(SHARDS):
            candidates += [
                r
                for r in self._query_all(board, board_key, shard, ("=", anchor.sort))
                if r.player_id < anchor.player_id
            ]
            candidates += self._query(
                board, board_key, shard, limit, best_first=False, bound=(better, anchor.sort)
            )
        nearest = order(candidates, board.descending)[::-1]  # nearest the anchor first
        return self._cut(board, board_key, nearest, limit, anchor, after=False)[::-1]

    def _cut(
        self, board: Board, board_key: str, rows: list[Row], limit: int, anchor: Row | None, *, after: bool
    ) -> list[Row]:
        """The first `limit` of rows (in reading order), with every row tied at the cut-off read in full."""
        if len(rows) < limit or (anchor is not None and rows[limit - 1].sort == anchor.sort):
            return rows[:limit]
        cutoff = rows[limit - 1].sort
        ties = [r for shard in range(SHARDS) for r in self._query_all(board, board_key, shard, ("=", cutoff))]

        def inside(r: Row) -> bool:
            if anchor is None:
                return True
            return precedes(anchor, r, board.descending) if after else precedes(r, anchor, board.descending)

        merged = order([r for r in rows + ties if inside(r)], board.descending)
        return (merged if after else merged[::-1])[:limit]

    def _decode_row(self, board: Board, item: dict[str, Any]) -> Row:
        index = _index(board)
        value = int(item[index.key_attr]["N"])
        if board.ranked_by_key:
            score, sub = unpack(board, value)
            return Row(item["playerId"]["S"], score, sub, value)
        return Row(item["playerId"]["S"], value)

    def _query_all(self, board: Board, board_key: str, shard: int, bound: tuple[str, int]) -> list[Row]:
        index = _index(board)
        rows: list[Row] = []
        for out in pages(
            self._ddb.query,
            TableName=self._table,
            IndexName=index.name,
            KeyConditionExpression=f"#sh = :s AND #k {bound[0]} :v",
            ExpressionAttributeNames={"#sh": index.shard_attr, "#k": index.key_attr},
            ExpressionAttributeValues={":s": {"S": f"{board_key}#{shard}"}, ":v": _num(bound[1])},
        ):
            rows += [self._decode_row(board, i) for i in out["Items"]]
        return rows

    def _query(
        self,
        board: Board,
        board_key: str,
        shard: int,
        limit: int,
        *,
        best_first: bool,
        bound: tuple[str, int] | None = None,
    ) -> list[Row]:
        index = _index(board)
        cond = "#sh = :s"
        values: dict[str, Any] = {":s": {"S": f"{board_key}#{shard}"}}
        if bound is not None:
            cond += f" AND #k {bound[0]} :v"
            values[":v"] = _num(bound[1])
        names = {"#sh": index.shard_attr, **({"#k": index.key_attr} if bound is not None else {})}
        out = self._ddb.query(
            TableName=self._table,
            IndexName=index.name,
            KeyConditionExpression=cond,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            # Best first is descending on a desc board, ascending on an asc one.
            ScanIndexForward=best_first != board.descending,
            Limit=limit,
        )
        return [self._decode_row(board, i) for i in out["Items"]]

    # --- the told rank, removal ------------------------------------------------------------------

    def tell_rank(self, board_key: str, player_id: str, rank: int) -> None:
        conditional(
            self._ddb.update_item,
            TableName=self._table,
            Key={"entryId": {"S": f"{board_key}#{player_id}"}},
            UpdateExpression="SET toldRank = :r",
            ConditionExpression="attribute_exists(entryId)",  # never recreate a removed row
            ExpressionAttributeValues={":r": _num(rank)},
        )

    def score_of(self, board_key: str, player_id: str) -> int | None:
        held = self._held(board_key, player_id)
        return held.score if held.exists else None

    def remove(self, board_key: str, player_id: str) -> bool:
        """Deletes a row and takes it out of the rank tree, in one transaction (on the condition that the
        tree counts it where it was read: a concurrent sync makes it read again)."""
        from botocore.exceptions import ClientError

        for attempt in range(SYNC_ATTEMPTS):
            held = self.rows(board_key, [player_id])[player_id]
            if not held.exists:
                return False
            key = {"entryId": {"S": f"{board_key}#{player_id}"}}
            delete: dict[str, Any] = {"TableName": self._table, "Key": key}
            if held.ranked is None:
                delete["ConditionExpression"] = "attribute_exists(score) AND attribute_not_exists(ranked)"
            else:
                delete["ConditionExpression"] = "ranked = :r"
                delete["ExpressionAttributeValues"] = {":r": _num(held.ranked)}
            items: list[dict[str, Any]] = [{"Delete": delete}]
            copy = zlib.crc32(player_id.encode()) % tree.COPIES
            for node, counts in sorted(tree.deltas([(held.ranked, None)]).items()):
                entry = node_id(board_key, node, copy if tree.is_hot(node) else None)
                items.append(
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": {"entryId": {"S": entry}},
                            "UpdateExpression": "ADD " + ", ".join(f"{count_attr(c)} :d{c}" for c in counts),
                            "ExpressionAttributeValues": {f":d{c}": _num(d) for c, d in counts.items()},
                        }
                    }
                )
            try:
                self._ddb.transact_write_items(TransactItems=items)
                return True
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                time.sleep(min(0.5, 0.01 * 2**attempt) * random.random())
        raise RuntimeError(f"could not remove {player_id} from {board_key}")

    # --- reads -------------------------------------------------------------------------------------

    def _get_raw(self, board_key: str, player_id: str) -> dict[str, Any] | None:
        out = self._ddb.get_item(
            TableName=self._table, Key={"entryId": {"S": f"{board_key}#{player_id}"}}, ConsistentRead=True
        )
        item: dict[str, Any] | None = out.get("Item")
        return item

    def _batch_get(
        self, keys: list[dict[str, Any]], *, consistent: bool = True, projection: str | None = None
    ) -> list[dict[str, Any]]:
        """Every item of up to 100 keys, following UnprocessedKeys."""
        found: list[dict[str, Any]] = []
        if not keys:
            return found
        spec: dict[str, Any] = {"Keys": keys, "ConsistentRead": consistent}
        if projection is not None:
            spec["ProjectionExpression"] = projection
        request: dict[str, Any] = {self._table: spec}
        while request:
            out = self._ddb.batch_get_item(RequestItems=request)
            found += out["Responses"].get(self._table, [])
            request = out.get("UnprocessedKeys") or {}
        return found


def _target(held: Held) -> int | None:
    return held.score if held.exists else None


def _chunks(moves: list[tuple[str, Held]]) -> Iterable[list[tuple[str, Held]]]:
    """Moves cut into transactions: a chunk takes moves while its rows and the counters they change fit
    in one TransactWriteItems."""
    chunk: list[tuple[str, Held]] = []
    nodes: set[str] = set()
    for move in moves:
        _, held = move
        touched = tree.nodes_of([s for s in (held.ranked, held.score) if s is not None])
        if chunk and len(chunk) + 1 + len(nodes | touched) > MAX_TRANSACTION_ITEMS:
            yield chunk
            chunk, nodes = [], set()
        chunk.append(move)
        nodes |= touched
    if chunk:
        yield chunk
