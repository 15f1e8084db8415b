"""The stream processor Lambda (the hot path): a Kinesis batch in, match state written and pushed out.

Thin: decode, plan the batch (streams.pipeline: one read, the pure rules), then for every match at
once: write its state, and as soon as that write has succeeded, push it to the match's players. No
leaderboard, rank or event-log work happens here (streams.projector does it from the table's stream).
Per-record failures are reported with powertools' batch processor: a failed match fails only its own
records, and Lambda retries from the lowest of them.

`Processor` holds exactly what it uses; the module builds one per execution environment (`root`).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from backend import bootstrap, protocol, snapstart
from backend.aws import Deferred
from backend.push import Pusher, PushReport
from backend.sessions import Sessions
from backend.store.matches import MatchStore
from backend.store.timers import Due, TimerQueue
from backend.telemetry import MetricUnit, logger, metrics, tracer
from streams.deadletter import DeadLetters
from streams.decode import Poison, Staged, decode
from streams.pipeline import BatchPlan, MatchResult, commit, messages, plan

batch = BatchProcessor(event_type=EventType.KinesisDataStreams)


@dataclass(frozen=True)
class Processor:
    matches: MatchStore
    sessions: Sessions
    pusher: Pusher
    dead_letters: DeadLetters
    timers: TimerQueue

    def process(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """One Kinesis batch; the answer is Lambda's partial batch response."""
        records = event.get("Records") or []
        decoded = [decode(r) for r in records]
        poison = [d for d in decoded if isinstance(d, Poison)]
        staged = [d for d in decoded if isinstance(d, Staged)]
        work = plan(self.matches, staged, poison)
        pushed = self.pusher.run(self.commit_and_push(work))
        failed = work.failed_sequences()
        self.dead_letter(poison, failed, records[0].get("eventSourceARN") if records else None)
        for r in work.matches.values():
            if r.error is not None:
                logger.exception(
                    "match failed; its records will be retried",
                    exc_info=r.error,
                    extra={"matchId": r.match_id},
                )
        counts = {
            "BatchSize": len(records),
            "ActionsApplied": sum(len(r.applied) for r in work.matches.values()),
            "ActionsRejected": sum(len(r.rejected) for r in work.matches.values()),
            "TimersScheduled": sum(len(r.timers) for r in work.matches.values() if r.error is None),
            "PoisonRecords": len(poison),
            "FailedRecords": len(failed),
            "PushesSent": pushed.sent,
            "PushFailures": len(pushed.failed),
            "PushesShed": len(pushed.shed),
            "GoneConnections": len(pushed.gone),
        }
        for name, value in counts.items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        if pushed.gone or pushed.failed or pushed.shed:
            # Shed pushes lose nothing: the matches are written, and the next push carries the state.
            logger.warning(
                "push incomplete",
                extra={
                    "sent": pushed.sent,
                    "gone": len(pushed.gone),
                    "failed": pushed.failed[:10],
                    "shed": len(pushed.shed),
                    "circuit": self.pusher.breaker.state,
                },
            )
        logger.info("batch done", extra={"matches": len(work.matches), **counts})

        def report(record: KinesisStreamRecord) -> None:
            if int(record.kinesis.sequence_number) in failed:
                raise RuntimeError(f"match {record.kinesis.partition_key} could not be written")

        return dict(
            process_partial_response(event=event, record_handler=report, processor=batch, context=context)
        )

    async def commit_and_push(self, work: BatchPlan) -> PushReport:
        """Every match at once: its writes, then at once its pushes. A match never waits for another."""
        reports = await asyncio.gather(*(self._commit_and_push(r) for r in work.matches.values()))
        total = PushReport()
        for report in reports:
            total.add(report)
        return total

    async def _commit_and_push(self, result: MatchResult) -> PushReport:
        if result.error is not None:
            return PushReport()
        if result.steps:
            try:
                if result.timers:
                    # Before the write that expects them: a failure here fails the match's records, and
                    # their retry schedules them again (the rules apply a timer once, by what it names).
                    due = [Due(result.match_id, t.player, t.kind, t.ref, t.delay_ms) for t in result.timers]
                    await asyncio.to_thread(self.timers.schedule, due)
                # boto3 clients are thread-safe; the write runs beside the other matches' writes and pushes.
                await asyncio.to_thread(commit, self.matches, result)
            except Exception as exc:  # this match's records fail and are retried; nothing is pushed for them
                result.error = exc
                return PushReport()
        report = await self.pusher.post_all(messages(result))
        if report.gone:
            # A 410 is authoritative: the connection is deleted, and a `disconnect` record for each tells
            # the match (in order, through the stream) to stop pushing there.
            now = result.after or result.before
            owners = {c: p for p, c in now.connections.items()}
            gone = [(c, owners[c]) for c in report.gone if c in owners]
            waiting = now.match.status == "waiting"
            await asyncio.to_thread(self.sessions.gone, result.match_id, gone, waiting=waiting)
        return report

    def dead_letter(self, poison: list[Poison], failed: set[int], source_arn: str | None) -> None:
        """Sends the records that can never succeed to the DLQ, with their data. Only those before the first
        failed record: Lambda redelivers from there, and would bring the rest back to be sent again."""
        first_failure = min(failed, default=None)
        now = [p for p in poison if first_failure is None or p.sequence < first_failure]
        if now:
            logger.error(
                "dead-lettering records that can never succeed",
                extra={"records": [(p.sequence, p.reason) for p in now]},
            )
            self.dead_letters.send_poison(now, source_arn)


def _build() -> Processor:
    matches = bootstrap.matches()
    return Processor(
        matches=matches,
        sessions=Sessions(bootstrap.connections(), bootstrap.stream(), matches),
        pusher=bootstrap.pusher(),
        dead_letters=DeadLetters(Deferred("sqs"), os.environ["ACTION_DLQ"]),
        timers=bootstrap.timers(),
    )


root = bootstrap.Root(_build)
snapstart.warm("aiobotocore.session", "aiobotocore.config", models=protocol.models)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return root().process(event, context)
