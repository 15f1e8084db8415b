"""The stream processor Lambda: a Kinesis batch in, match state, leaderboards and pushes out.

Thin: decode, run the pipeline (streams.pipeline), push, and report per-record failures with powertools'
batch processor (a failed match fails only its own records; Lambda retries from the lowest of them).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from backend import bootstrap, protocol, snapstart
from backend.aws import client
from backend.config import settings
from backend.ids import ConnectionId, MatchId
from backend.telemetry import MetricUnit, logger, metrics, tracer
from streams.deadletter import DeadLetters
from streams.decode import Poison, Staged, decode
from streams.pipeline import BatchOutcome, Pipeline, rank_frame, rejected_frame, state_frame
from streams.push import Pusher

batch = BatchProcessor(event_type=EventType.KinesisDataStreams)
snapstart.warm("aiobotocore.session", "aiobotocore.config", models=protocol.models)


@cache
def pipeline() -> Pipeline:
    return Pipeline(bootstrap.matches(), bootstrap.leaderboards(), bootstrap.events())


@cache
def pusher() -> Pusher:
    return Pusher(settings().ws_api_endpoint, os.environ.get("AWS_REGION"))


@cache
def dead_letters() -> DeadLetters:
    return DeadLetters(client("sqs"), os.environ["ACTION_DLQ"])


@snapstart.on_restore
def _forget_clients() -> None:
    for cached in (pipeline, pusher, dead_letters):
        cached.cache_clear()


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = event.get("Records") or []
    decoded = [decode(r) for r in records]
    poison = [d for d in decoded if isinstance(d, Poison)]
    staged = [d for d in decoded if isinstance(d, Staged)]
    outcome = pipeline().run(staged, poison)
    dead_letter(poison, outcome.failed_sequences, records[0].get("eventSourceARN") if records else None)
    for r in outcome.matches.values():
        if r.error is not None:
            logger.exception(
                "match failed; its records will be retried", exc_info=r.error, extra={"matchId": r.match_id}
            )
    push(outcome)
    failed = outcome.failed_sequences
    counts = {
        "BatchSize": len(records),
        "ActionsApplied": sum(len(r.applied) for r in outcome.matches.values()),
        "ActionsRejected": sum(len(r.rejected) for r in outcome.matches.values()),
        "PoisonRecords": len(poison),
        "FailedRecords": len(failed),
    }
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    logger.info("batch done", extra={"matches": len(outcome.matches), **counts})

    def report(record: KinesisStreamRecord) -> None:
        if int(record.kinesis.sequence_number) in failed:
            raise RuntimeError(f"match {record.kinesis.partition_key} could not be written")

    return dict(
        process_partial_response(event=event, record_handler=report, processor=batch, context=context)
    )


def dead_letter(poison: list[Poison], failed: set[int], source_arn: str | None) -> None:
    """Sends the records that can never succeed to the DLQ, with their data. Only those before the first
    failed record: Lambda redelivers from there, and would bring the rest back to be sent again."""
    first_failure = min(failed, default=None)
    now = [p for p in poison if first_failure is None or p.sequence < first_failure]
    if now:
        logger.error(
            "dead-lettering records that can never succeed",
            extra={"records": [(p.sequence, p.reason) for p in now]},
        )
        dead_letters().send_poison(now, source_arn)


@tracer.capture_method
def push(outcome: BatchOutcome) -> None:
    connections = bootstrap.connections()
    messages: list[tuple[str, str]] = []
    for r in outcome.matches.values():
        if r.error is not None:
            continue
        for event, refusal in r.rejected:
            if event.connectionId:
                messages.append(
                    (event.connectionId, rejected_frame(event, refusal).model_dump_json(exclude_none=True))
                )
        if r.before.exists:
            for connection_id, confirmed in r.resync.items():
                resync = state_frame(r, applied=confirmed).model_dump_json(exclude_none=True)
                messages.append((connection_id, resync))
        if not r.changed:
            continue
        state = state_frame(r).model_dump_json(exclude_none=True)
        members = connections.in_match(MatchId(r.match_id))  # one Query on the byMatch index
        for member in members:
            messages.append((member.connection_id, state))
            if member.player_id in r.ranks:
                score, rank = r.ranks[member.player_id]
                messages.append(
                    (member.connection_id, rank_frame(member.player_id, score, rank).model_dump_json())
                )
    report = pusher().send(messages)
    metrics.add_metric(name="PushesSent", unit=MetricUnit.Count, value=report.sent)
    metrics.add_metric(name="PushFailures", unit=MetricUnit.Count, value=len(report.failed))
    metrics.add_metric(name="GoneConnections", unit=MetricUnit.Count, value=len(report.gone))
    for gone in report.gone:
        connections.delete(ConnectionId(gone))
    if report.gone or report.failed:
        logger.warning(
            "push incomplete",
            extra={"sent": report.sent, "gone": len(report.gone), "failed": report.failed[:10]},
        )
