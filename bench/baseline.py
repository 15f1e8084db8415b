"""The naive baseline processor: the same features as streams/processor.py and streams/projector.py
together, written the obvious way, in one function.

Every record is handled on its own, in order, with no batching or windows anywhere:

    per record:  GetItem the match (strongly consistent)  ->  rules.apply (the same pure rules)
      applied:   PutItem one event-log item
                 the credits of every player whose total changed (the same rows as the projector's:
                 every board of the match's mode, every period of each)
                 UpdateItem the match (conditional on version): the one state write per record
                 the rank of a player whose all-time global row changed (GetItem + one COUNT query per
                 index shard, each reading every index entry above the player: `count_rank`)
      pushes:    Scan the connections table for the match's connections (as AWS's WebSocket chat
                 sample finds its recipients), then PostToConnection to each of them, one after the
                 other, with boto3: `state`, `rank` to the scorer, `rejected` to a refused sender

It writes the same items and pushes the same frames as the real hot and cold paths, so the two can be
compared call for call on one workload (bench/run.py swaps it in as the `processor` function's
handler; the projector then finds the boards already credited and credits nothing). It is
not exactly-once under retries (it does skip records at or below the match's `seq`): it is a yardstick,
not an alternative.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

from backend import bootstrap
from backend.aws import client
from backend.config import settings
from backend.errors import MatchNotFound
from backend.game import rules
from backend.game.boards import configured
from backend.ids import ConnectionId
from backend.protocol import GameEvent, Rank
from backend.store.matches import Stored
from backend.telemetry import MetricUnit, logger, metrics
from streams.decode import Staged, decode
from streams.pipeline import rejected_frame, state_frame

_connections = bootstrap.Root(bootstrap.connections)
_matches = bootstrap.Root(bootstrap.matches)
_leaderboards = bootstrap.Root(bootstrap.leaderboards)


@cache
def _management() -> Any:
    return client("apigatewaymanagementapi", settings().ws_api_endpoint)


def _post(connection_id: str, data: str) -> bool:
    api = _management()
    try:
        api.post_to_connection(ConnectionId=connection_id, Data=data.encode())
        return True
    except api.exceptions.GoneException:
        _connections().delete(ConnectionId(connection_id))
        return False


def _members(match_id: str) -> list[tuple[str, str]]:
    """(connection id, player id) of every connection attached to the match: a Scan with a filter."""
    s = settings()
    ddb = client("dynamodb")
    kwargs: dict[str, Any] = {
        "TableName": s.connections_table,
        "FilterExpression": "matchId = :m",
        "ExpressionAttributeValues": {":m": {"S": match_id}},
    }
    found: list[tuple[str, str]] = []
    while True:
        out = ddb.scan(**kwargs)
        found += [(i["connectionId"]["S"], i["playerId"]["S"]) for i in out["Items"]]
        if "LastEvaluatedKey" not in out:
            return found
        kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]


def _log_event(match_id: str, version: int, event: GameEvent) -> None:
    client("dynamodb").put_item(
        TableName=settings().events_table,
        Item={
            "matchId": {"S": match_id},
            "version": {"N": str(version)},
            "events": {"S": json.dumps([[version, event.model_dump(exclude_none=True)]])},
        },
    )


def process(staged: Staged) -> str:
    """Applies one record; returns what happened to it (applied, rejected, ignored, skipped)."""
    event = staged.event
    try:
        before = _matches().load(event.matchId)
    except MatchNotFound:
        refusal = rules.Refused(event.actionId, MatchNotFound("no such match"))
        if event.connectionId:
            _post(event.connectionId, rejected_frame(event, refusal).model_dump_json(exclude_none=True))
        return "rejected"
    if staged.sequence <= before.seq:
        return "skipped"
    state, outcome = rules.apply(before.match, event)
    if isinstance(outcome, rules.Refused):
        if event.connectionId:
            _post(event.connectionId, rejected_frame(event, outcome).model_dump_json(exclude_none=True))
        return "rejected"
    if not isinstance(outcome, rules.Applied):
        return "ignored"

    _log_event(event.matchId, state.version, event)
    ranks = _credit(event, before, state)
    after = Stored(state, seq=staged.sequence, connections=before.connections)
    _matches().save(
        after,
        expected_version=before.match.version,
        events=[(state.version, event)],
        last_at=event.receivedAt,
    )
    frame = state_frame(state, [event.actionId] if event.actionId else []).model_dump_json(exclude_none=True)
    for connection_id, player in _members(event.matchId):
        _post(connection_id, frame)
        if player in ranks:
            score, rank = ranks[player]
            rank_frame = Rank(board="global", period="alltime", playerId=player, score=score, rank=rank)
            _post(connection_id, rank_frame.model_dump_json())
    return "applied"


def _credit(event: GameEvent, before: Stored, state: rules.Match) -> dict[str, tuple[int, int]]:
    """Every leaderboard row of every player whose total this one record moved, at once (the same rows
    as the projector's, with the same exactly-once credit), then each such player's global all-time
    rank, counted. Returns player -> (score, rank)."""
    boards = _leaderboards()
    config = configured()
    at = datetime.fromtimestamp(event.receivedAt / 1000, UTC)
    mode_boards = config.for_mode(state.mode)
    season = boards.seasons([b.name for b in mode_boards])
    ranks: dict[str, tuple[int, int]] = {}
    for player, now in state.players.items():
        was = before.match.players[player].score if player in before.match.players else 0
        if now.score == was:
            continue
        for board in mode_boards:
            for period in board.periods:
                boards.credit(
                    board.key(period.name, at, season[board.name]),
                    player,
                    state.match_id,
                    believed=was,
                    total=now.score,
                    expires=period.expires(at),
                )
        key = config["global"].key("alltime", at, season["global"])
        score = boards.score_of(key, player)
        if score is not None:
            ranks[player] = (score, count_rank(client("dynamodb"), settings().leaderboards_table, key, score))
    return ranks


def count_rank(ddb: Any, table: str, board_key: str, score: int) -> int:
    """The rank the obvious way (and this project's until the rank trees): 1 + the rows scoring strictly
    higher, one `Select=COUNT` Query per index shard. DynamoDB reads, and bills, every index entry it
    counts, in pages of 1 MB: the cost grows with the rank."""
    from backend.store import pages
    from backend.store.leaderboards import SHARDS

    higher = 0
    for shard in range(SHARDS):
        for out in pages(
            ddb.query,
            TableName=table,
            IndexName="byScore",
            KeyConditionExpression="shardKey = :s AND score > :v",
            ExpressionAttributeValues={":s": {"S": f"{board_key}#{shard}"}, ":v": {"N": str(score)}},
            Select="COUNT",
        ):
            higher += int(out["Count"])
    return higher + 1


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = event.get("Records") or []
    outcomes: dict[str, int] = {}
    for record in records:
        decoded = decode(record)
        kind = process(decoded) if isinstance(decoded, Staged) else "poison"
        outcomes[kind] = outcomes.get(kind, 0) + 1
    metrics.add_metric(name="BatchSize", unit=MetricUnit.Count, value=len(records))
    logger.info("batch done (baseline)", extra=outcomes)
    return {"batchItemFailures": []}
