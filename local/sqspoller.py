"""The SQS event source mapping, as Lambda runs it, for one function and one queue.

Honoured from serverless.yml: batchSize, maximumBatchingWindow, functionResponseType
(ReportBatchItemFailures) and maximumConcurrency; and the queue's own VisibilityTimeout and RedrivePolicy
(local.aws creates the queue with them; moto applies them as SQS does).

Semantics (as documented for Lambda):
- the queue hands a message out only once its DelaySeconds have passed (moto honours it, in whole
  seconds), so a delayed message reaches the function when it is due, as on AWS;
- a batch the function answers without error has its messages deleted; with ReportBatchItemFailures,
  the messages named in `batchItemFailures` are kept (and an empty or unknown identifier keeps them all);
- a function error deletes nothing: SQS hands the messages out again once their visibility timeout has
  passed, and after the redrive policy's maxReceiveCount receives moves them to the dead-letter queue;
- at most maximumConcurrency batches are in the function at once.

Lambda long-polls (20 s) with several pollers; here one poller makes short polls (WaitTimeSeconds 0)
while the queue is empty, at least IDLE_POLL apart: the embedded endpoint serves every service of the
stack, and a long poll (or a tight loop of short ones) would hold the other requests back. SQS delays in
whole seconds and the timers are due to the second, so half a second between empty polls costs nothing
that matters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from local.lambdas import FunctionPool, Invocation
from local.slsconfig import QueueEvent, Service, arn_of, physical_name

log = logging.getLogger("local.sqspoller")

RECEIVE_MAX = 10  # SQS's ReceiveMessage limit
IDLE_POLL = 0.5  # seconds, at least, between two polls that found the queue empty


@dataclass
class QueueStats:
    batches: int = 0
    messages: int = 0
    deleted: int = 0
    failed: int = 0  # messages kept for a later receive (a function error or batchItemFailures)
    function_errors: int = 0


def to_record(message: dict[str, Any], region: str, queue_arn: str) -> dict[str, Any]:
    """A message as Lambda hands it to the function."""
    attributes = message.get("Attributes") or {}
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            k: attributes[k]
            for k in (
                "ApproximateReceiveCount",
                "SentTimestamp",
                "SenderId",
                "ApproximateFirstReceiveTimestamp",
            )
            if k in attributes
        },
        "messageAttributes": message.get("MessageAttributes") or {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def kept(batch: list[dict[str, Any]], result: Invocation, report_failures: bool) -> set[str]:
    """The message ids that stay on the queue after the function's answer."""
    every = {m["MessageId"] for m in batch}
    if not result.ok:
        return every
    if not report_failures or not isinstance(result.result, dict):
        return set()
    failures = result.result.get("batchItemFailures") or []
    ids: set[str] = set()
    for failure in failures:
        ident = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not ident or ident not in every:
            return every  # an empty or unknown identifier fails the whole batch
        ids.add(str(ident))
    return ids


class QueuePoller:
    def __init__(
        self,
        service: Service,
        function: str,
        event: QueueEvent,
        pool: FunctionPool,
        *,
        endpoint: str,
        poll_interval: float = 0.1,
    ) -> None:
        self.service = service
        self.function = function
        self.event = event
        self.pool = pool
        self.endpoint = endpoint
        self.poll_interval = max(poll_interval, IDLE_POLL)
        self.queue_name = physical_name(service, event.queue_resource)
        self.queue_arn = arn_of(service, event.queue_resource)
        self.stats = QueueStats()
        self._stack = contextlib.AsyncExitStack()
        self._sqs: Any = None
        self._url = ""
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(max(1, event.maximum_concurrency))

    async def start(self) -> None:
        from aiobotocore.session import get_session

        kw = {"endpoint_url": self.endpoint, "region_name": self.service.region}
        self._sqs = await self._stack.enter_async_context(get_session().create_client("sqs", **kw))
        self._url = (await self._sqs.get_queue_url(QueueName=self.queue_name))["QueueUrl"]
        self._task = asyncio.create_task(self._poll())
        log.info(
            "%s <- %s: batch %d, window %ss, concurrency %d",
            self.function,
            self.queue_name,
            self.event.batch_size,
            self.event.batch_window,
            self.event.maximum_concurrency,
        )

    async def stop(self) -> None:
        for task in [self._task, *self._inflight]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self._stack.aclose()

    def idle(self) -> bool:
        return not self._inflight

    def snapshot(self) -> dict[str, Any]:
        s = self.stats
        return {
            "function": self.function,
            "source": "sqs",
            "queue": self.queue_name,
            "batches": s.batches,
            "messages": s.messages,
            "deleted": s.deleted,
            "failed": s.failed,
            "functionErrors": s.function_errors,
            "inflight": len(self._inflight),
        }

    async def _receive(self, count: int) -> list[dict[str, Any]]:
        try:
            out = await self._sqs.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=min(RECEIVE_MAX, count),
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        except Exception:
            log.exception("ReceiveMessage failed on %s; retrying", self.queue_name)
            await asyncio.sleep(1.0)
            return []
        return list(out.get("Messages") or [])

    async def _poll(self) -> None:
        while True:
            await self._slots.acquire()
            batch = await self._receive(self.event.batch_size)
            if not batch:
                self._slots.release()
                await asyncio.sleep(self.poll_interval)
                continue
            deadline = time.monotonic() + self.event.batch_window
            while len(batch) < self.event.batch_size and time.monotonic() < deadline:
                more = await self._receive(self.event.batch_size - len(batch))
                if not more:
                    await asyncio.sleep(min(self.poll_interval, max(0.0, deadline - time.monotonic())))
                batch += more
            task = asyncio.create_task(self._deliver(batch))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _deliver(self, batch: list[dict[str, Any]]) -> None:
        try:
            self.stats.batches += 1
            self.stats.messages += len(batch)
            event = {"Records": [to_record(m, self.service.region, self.queue_arn) for m in batch]}
            result = await self.pool.invoke(event)
            if not result.ok:
                self.stats.function_errors += 1
                log.error("%s failed on a batch of %d: %s", self.function, len(batch), result.error_message)
            keep = kept(batch, result, self.event.report_batch_item_failures)
            self.stats.failed += len(keep)
            done = [m for m in batch if m["MessageId"] not in keep]
            if done:
                entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)]
                await self._sqs.delete_message_batch(QueueUrl=self._url, Entries=entries)
                self.stats.deleted += len(done)
        except Exception:
            log.exception(
                "delivering a batch of %s failed; its messages come back after their timeout", self.queue_name
            )
        finally:
            self._slots.release()
