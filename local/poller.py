"""The Kinesis event source mapping, as Lambda runs it, for one function and one stream.

Honoured from serverless.yml: batchSize, batchWindow, parallelizationFactor, bisectBatchOnFunctionError,
maximumRetryAttempts, maximumRecordAgeInSeconds, functionResponseType (ReportBatchItemFailures),
destinations.onFailure (SQS), startingPosition, and consumer (enhanced fan-out).

Delivery: a standard consumer reads each shard again `poll_interval` after an empty read. An enhanced
fan-out consumer (`consumer:`) is pushed its records as they arrive on AWS; here its shard reader waits
on the embedded AWS endpoint's change feed of the shard (local.awsserver) instead, so a record reaches
the function as soon as PutRecord has stored it. At another endpoint (no change feeds), it polls.

    shard reader ──► lane 0 ─► batches, in order ─► invoke ─► checkpoint | retry | bisect | DLQ
                └──► lane 1 ...        (parallelizationFactor lanes; a partition key always maps to
                                        the same lane, so each match stays in order)

Semantics (as documented for Lambda):
- a function error fails the whole batch; with bisection the batch is split in two and each half
  retried on its own (splitting does not count as a retry);
- a response with batchItemFailures checkpoints before the lowest failed sequence number and retries
  from there; an empty or unknown itemIdentifier fails the whole batch;
- after maximumRetryAttempts retries, or once a record is older than maximumRecordAgeInSeconds, the
  batch is skipped and its metadata (shard, sequence range) sent to the on-failure destination;
- checkpoints are AFTER_SEQUENCE_NUMBER of the last record handled; they live in memory, like the
  embedded stream itself.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local.lambdas import FunctionPool, Invocation
from local.slsconfig import ACCOUNT_ID, Service, StreamEvent, arn_of, physical_name

log = logging.getLogger("local.poller")

READ_LIMIT = 10_000  # records per GetRecords, Kinesis' maximum
MAX_LANE_BACKLOG = 5000  # records buffered per lane before the shard reader waits
METRICS_INTERVAL = 1.0
RETRY_BACKOFF = (0.1, 2.0)


@dataclass
class Record:
    shard_id: str
    sequence: str
    partition_key: str
    data: bytes
    arrival: float  # epoch seconds

    def to_event(self, region: str, stream_arn: str) -> dict[str, Any]:
        return {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": self.partition_key,
                "sequenceNumber": self.sequence,
                "data": base64.b64encode(self.data).decode(),
                "approximateArrivalTimestamp": self.arrival,
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"{self.shard_id}:{self.sequence}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT_ID}:role/local-lambda",
            "awsRegion": region,
            "eventSourceARN": stream_arn,
        }


@dataclass
class PollerStats:
    batches: int = 0
    records: int = 0
    retries: int = 0
    bisections: int = 0
    partial_failures: int = 0
    dead_lettered_batches: int = 0
    dead_lettered_records: int = 0
    last_batch_size: int = 0
    max_batch_size: int = 0
    backlog: int = 0
    iterator_age_ms: float = 0.0
    batch_sizes: list[int] = field(default_factory=list)


class StreamPoller:
    def __init__(
        self,
        service: Service,
        function: str,
        event: StreamEvent,
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
        self.poll_interval = poll_interval
        self.stream_name = physical_name(service, event.stream_resource)
        self.stream_arn = arn_of(service, event.stream_resource)
        self.dlq_name = (
            physical_name(service, event.on_failure_resource) if event.on_failure_resource else None
        )
        self.stats = PollerStats()
        self._tasks: list[asyncio.Task[None]] = []
        self._stack = contextlib.AsyncExitStack()
        self._kinesis: Any = None
        self._sqs: Any = None
        self._cloudwatch: Any = None
        self.function_name = f"{service.name}-{service.stage}-{function}"
        self._dlq_url: str | None = None
        self._inflight = 0
        self._feeds = ChangeFeeds(endpoint) if event.consumer else None
        self._incoming = 0
        self._max_age_ms: float | None = None

    # --- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        from aiobotocore.session import get_session

        session = get_session()
        kw = {"endpoint_url": self.endpoint, "region_name": self.service.region}
        self._kinesis = await self._stack.enter_async_context(session.create_client("kinesis", **kw))
        self._cloudwatch = await self._stack.enter_async_context(session.create_client("cloudwatch", **kw))
        if self.dlq_name:
            self._sqs = await self._stack.enter_async_context(session.create_client("sqs", **kw))
            self._dlq_url = (await self._sqs.get_queue_url(QueueName=self.dlq_name))["QueueUrl"]
        shards = (await self._kinesis.list_shards(StreamName=self.stream_name))["Shards"]
        for shard in shards:
            factor = self.event.parallelization_factor
            lanes = [asyncio.Queue[Record](MAX_LANE_BACKLOG) for _ in range(factor)]
            self._tasks.append(asyncio.create_task(self._read_shard(shard["ShardId"], lanes)))
            self._tasks.extend(asyncio.create_task(self._run_lane(q)) for q in lanes)
        self._tasks.append(asyncio.create_task(self._publish_metrics()))
        log.info(
            "%s <- %s: %d shards x %d lanes, batch %d, window %ss, retries %d, bisect %s, dlq %s",
            self.function,
            self.stream_name,
            len(shards),
            self.event.parallelization_factor,
            self.event.batch_size,
            self.event.batch_window,
            self.event.maximum_retry_attempts,
            self.event.bisect_on_error,
            self.dlq_name,
        )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._feeds is not None:
            await self._feeds.close()
        await self._stack.aclose()

    def idle(self) -> bool:
        """True when every record read so far has been handled (for tests and the load report)."""
        return self.stats.backlog == 0 and self._inflight == 0

    def snapshot(self) -> dict[str, Any]:
        s = self.stats
        return {
            "function": self.function,
            "source": "kinesis",
            "stream": self.stream_name,
            "batches": s.batches,
            "records": s.records,
            "retries": s.retries,
            "bisections": s.bisections,
            "partialFailures": s.partial_failures,
            "deadLetteredBatches": s.dead_lettered_batches,
            "deadLetteredRecords": s.dead_lettered_records,
            "lastBatchSize": s.last_batch_size,
            "maxBatchSize": s.max_batch_size,
            "recordsBehind": s.backlog,
            "iteratorAgeMs": round(s.iterator_age_ms, 1),
            "inflight": self._inflight,
        }

    # --- reading ------------------------------------------------------------------------------------

    async def _read_shard(self, shard_id: str, lanes: list[asyncio.Queue[Record]]) -> None:
        kind = self.event.starting_position
        if kind not in ("TRIM_HORIZON", "LATEST"):
            raise ValueError(f"unsupported startingPosition {kind}")
        it = (
            await self._kinesis.get_shard_iterator(
                StreamName=self.stream_name, ShardId=shard_id, ShardIteratorType=kind
            )
        )["ShardIterator"]
        feed = f"kinesis/{self.stream_name}/{shard_id}"
        seen = 0  # the feed's version before the read below: anything written since wakes the wait
        last: str | None = None  # the sequence number of the last record handed on
        while it:
            try:
                out = await self._kinesis.get_records(ShardIterator=it, Limit=READ_LIMIT)
            except Exception:
                log.exception("GetRecords failed on %s; retrying", shard_id)
                await asyncio.sleep(1.0)
                continue
            it = out.get("NextShardIterator")
            records = [
                Record(
                    shard_id,
                    r["SequenceNumber"],
                    r["PartitionKey"],
                    r["Data"],
                    _epoch(r["ApproximateArrivalTimestamp"]),
                )
                for r in out["Records"]
            ]
            last = await self._hand_on(records, lanes, last)
            if len(records) >= READ_LIMIT:
                continue  # more are waiting
            if self._feeds is None or not self._feeds.available:
                if not records:
                    await asyncio.sleep(self.poll_interval)
                continue
            # Every write up to version `seen` was visible to the read above, which began after the
            # wait that returned it. The feed then pushes each new write's records (enhanced fan-out),
            # until it cannot say (a gap, or no sequence number yet): then the iterator reads again.
            if last is None:  # nothing read yet: no position to push from
                seen = await self._feeds.wait(feed, seen)
                continue
            while self._feeds.available:
                seen, pushed = await self._feeds.subscribe(feed, seen, last)
                if pushed is None:
                    break
                last = await self._hand_on(
                    [
                        Record(
                            shard_id,
                            r["SequenceNumber"],
                            r["PartitionKey"],
                            base64.b64decode(r["Data"]),
                            float(r["ApproximateArrivalTimestamp"]),
                        )
                        for r in pushed
                    ],
                    lanes,
                    last,
                )
                if len(pushed) >= READ_LIMIT:
                    break
            it = (
                await self._kinesis.get_shard_iterator(
                    StreamName=self.stream_name,
                    ShardId=shard_id,
                    ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                    StartingSequenceNumber=last,
                )
            )["ShardIterator"]

    async def _hand_on(
        self, records: list[Record], lanes: list[asyncio.Queue[Record]], last: str | None
    ) -> str | None:
        """Puts each record on its partition key's lane; returns the last sequence number handed on."""
        for record in records:
            lane = lanes[zlib.crc32(record.partition_key.encode()) % len(lanes)]
            await lane.put(record)  # bounded: a slow lane holds the shard reader back
            self.stats.backlog += 1
            last = record.sequence
        self._incoming += len(records)
        return last

    async def _run_lane(self, queue: asyncio.Queue[Record]) -> None:
        while True:
            first = await queue.get()
            batch = [first]
            deadline = time.monotonic() + self.event.batch_window
            while len(batch) < self.event.batch_size:
                if queue.empty():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        batch.append(await asyncio.wait_for(queue.get(), remaining))
                    except TimeoutError:
                        break
                else:
                    batch.append(queue.get_nowait())
            self.stats.backlog -= len(batch)
            self._inflight += len(batch)
            self.stats.iterator_age_ms = (time.time() - first.arrival) * 1000
            try:
                await self._deliver(batch)
            except Exception:
                log.exception("delivering a batch failed; it is sent to the on-failure destination")
                await self._dead_letter(batch, "Unknown", 0)
            finally:
                self._inflight -= len(batch)

    # --- delivery -----------------------------------------------------------------------------------

    async def _invoke(self, batch: list[Record]) -> Invocation:
        self.stats.batches += 1
        self.stats.records += len(batch)
        self.stats.last_batch_size = len(batch)
        self.stats.max_batch_size = max(self.stats.max_batch_size, len(batch))
        event = {"Records": [r.to_event(self.service.region, self.stream_arn) for r in batch]}
        age_ms = max(0.0, (time.time() - batch[-1].arrival) * 1000)
        self._max_age_ms = max(self._max_age_ms or 0.0, age_ms)
        return await self.pool.invoke(event)

    async def _publish_metrics(self) -> None:
        """Once a second, what Kinesis and Lambda publish on AWS (the records put, the largest iterator
        age), so that operators read stream health the same way here. Off the batches' path: on AWS it
        costs the function nothing, and here a call to the embedded endpoint would queue behind them."""
        while True:
            await asyncio.sleep(METRICS_INTERVAL)
            incoming, self._incoming = self._incoming, 0
            age, self._max_age_ms = self._max_age_ms, None
            if incoming:
                await self._metric(
                    "AWS/Kinesis", "IncomingRecords", "StreamName", self.stream_name, incoming, "Count"
                )
            if age is not None:
                await self._metric(
                    "AWS/Lambda", "IteratorAge", "FunctionName", self.function_name, age, "Milliseconds"
                )

    async def _metric(
        self, namespace: str, name: str, dimension: str, value_of: str, value: float, unit: str
    ) -> None:
        """Publishes what Kinesis and Lambda publish on AWS, so operators read stream health the same way."""
        try:
            await self._cloudwatch.put_metric_data(
                Namespace=namespace,
                MetricData=[
                    {
                        "MetricName": name,
                        "Dimensions": [{"Name": dimension, "Value": value_of}],
                        "Value": value,
                        "Unit": unit,
                    }
                ],
            )
        except Exception as exc:  # metrics must never stop the stream
            log.debug("could not publish %s: %s", name, exc)

    def _failed_from(self, batch: list[Record], result: Invocation) -> int | None:
        """Index of the first record to retry, or None when the whole batch succeeded."""
        if not result.ok:
            return 0
        if not self.event.report_batch_item_failures or not isinstance(result.result, dict):
            return None
        failures = result.result.get("batchItemFailures") or []
        if not failures:
            return None
        by_seq = {r.sequence: i for i, r in enumerate(batch)}
        indexes = []
        for failure in failures:
            ident = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if not ident or ident not in by_seq:
                return 0  # an empty or unknown identifier fails the whole batch
            indexes.append(by_seq[ident])
        return min(indexes)

    async def _deliver(self, batch: list[Record], attempts: int = 0) -> None:
        pending = batch
        while pending:
            max_age = self.event.maximum_record_age
            if max_age > 0 and time.time() - pending[0].arrival > max_age:
                await self._dead_letter(pending, "RecordAgeExceeded", attempts)
                return
            result = await self._invoke(pending)
            index = self._failed_from(pending, result)
            if index is None:
                return
            if not result.ok and self.event.bisect_on_error and len(pending) > 1:
                self.stats.bisections += 1
                middle = len(pending) // 2
                log.info(
                    "%s: batch of %d failed (%s); bisecting", self.function, len(pending), result.error_type
                )
                await self._deliver(pending[:middle], attempts)
                await self._deliver(pending[middle:], attempts)
                return
            if result.ok:
                self.stats.partial_failures += 1
            pending = pending[index:]
            attempts += 1
            limit = self.event.maximum_retry_attempts
            if limit >= 0 and attempts > limit:
                await self._dead_letter(pending, "RetryAttemptsExhausted", attempts)
                return
            self.stats.retries += 1
            await asyncio.sleep(min(RETRY_BACKOFF[1], RETRY_BACKOFF[0] * 2 ** (attempts - 1)))

    async def _dead_letter(self, batch: list[Record], condition: str, attempts: int) -> None:
        self.stats.dead_lettered_batches += 1
        self.stats.dead_lettered_records += len(batch)
        first, last = batch[0], batch[-1]
        message = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"arn:aws:lambda:{self.service.region}:{ACCOUNT_ID}:function:"
                f"{self.service.name}-{self.service.stage}-{self.function}",
                "condition": condition,
                "approximateInvokeCount": attempts + 1,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "KinesisBatchInfo": {
                "shardId": first.shard_id,
                "startSequenceNumber": first.sequence,
                "endSequenceNumber": last.sequence,
                "approximateArrivalOfFirstRecord": _iso(first.arrival),
                "approximateArrivalOfLastRecord": _iso(last.arrival),
                "batchSize": len(batch),
                "streamArn": self.stream_arn,
            },
        }
        log.error(
            "%s: %d records (%s..%s on %s) sent to the on-failure destination: %s",
            self.function,
            len(batch),
            first.sequence,
            last.sequence,
            first.shard_id,
            condition,
        )
        if self._sqs is not None and self._dlq_url:
            await self._sqs.send_message(QueueUrl=self._dlq_url, MessageBody=json.dumps(message))


WAIT_SECONDS = 20.0


class ChangeFeeds:
    """The embedded AWS endpoint's change feeds (local.awsserver): wait until a shard or table has been
    written to. Unavailable at any other endpoint, where the pollers poll instead."""

    WAIT_SECONDS = WAIT_SECONDS

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.available = True
        self._session: Any = None

    async def wait(self, key: str, since: int, timeout: float = WAIT_SECONDS) -> int:
        """The key's version once it is above `since` (or after `timeout`, unchanged)."""
        body = await self._ask({"key": key, "since": str(since), "wait": str(timeout)})
        return since if body is None else int(body["version"])

    async def subscribe(
        self, key: str, since: int, after: str | None, timeout: float = WAIT_SECONDS
    ) -> tuple[int, list[dict[str, Any]] | None]:
        """As `wait` on a shard's key, with the shard's records after sequence number `after`: [] when
        the version did not move, None when the feed cannot list them (no `after` yet, no feed)."""
        if after is None:
            return since, None
        body = await self._ask({"key": key, "since": str(since), "wait": str(timeout), "after": after})
        if body is None:
            return since, None
        version = int(body["version"])
        records = body.get("records")
        if isinstance(records, list):
            return version, records
        return version, [] if version <= since else None

    async def _ask(self, params: dict[str, str]) -> dict[str, Any] | None:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.WAIT_SECONDS + 10))
        try:
            async with self._session.get(f"{self.endpoint}/_local/changes", params=params) as answer:
                if answer.status != 200:
                    raise RuntimeError(f"HTTP {answer.status}")
                body = await answer.json()
                int(body["version"])
        except (aiohttp.ClientError, RuntimeError, ValueError, KeyError, TypeError, TimeoutError) as exc:
            self.available = False
            log.info("no change feeds at %s (%s): polling instead", self.endpoint, exc)
            return None
        return dict(body)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _epoch(arrival: Any) -> float:
    return float(arrival.timestamp() if hasattr(arrival, "timestamp") else arrival)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
