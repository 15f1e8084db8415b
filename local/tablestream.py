"""The event source mapping of a DynamoDB table's stream, as Lambda runs it, with tumbling windows.

Honoured from serverless.yml: batchSize, batchWindow, tumblingWindowInSeconds, maximumRetryAttempts,
maximumRecordAgeInSeconds, destinations.onFailure (SQS) and startingPosition. Refused with a clear
error (not emulated): parallelizationFactor above 1, bisectBatchOnFunctionError and
ReportBatchItemFailures, none of which this project uses on a table stream.

Tumbling windows, as documented for Lambda:
- every record belongs to the window of its arrival time (ApproximateCreationDateTime); windows are
  aligned to multiples of their length;
- the records of a window come in one or more invocations, each given the `state` the previous one
  returned (the first gets {}); a response without `state` is a failed invocation;
- once the window's end has passed (or a record of a later window arrives), a final invocation with
  `isFinalInvokeForWindow: true` gets the state and whatever records of the window are left; the next
  window starts with a fresh state;
- a state of more than 1 MB ends the window early: the next invocation has
  `isWindowTerminatedEarly: true` (and `isFinalInvokeForWindow: true`: it is the last one with this
  state), and the window then goes on with a fresh state;
- a failed invocation is retried with the same state and the same records, up to maximumRetryAttempts
  times (or for as long as the records are younger than maximumRecordAgeInSeconds); then its records'
  range goes to the on-failure destination (`DDBStreamBatchInfo`) and is skipped. A window whose final
  invocation is given up on loses its state with it.

One shard per table here (moto has one), read as Lambda reads it, four times a second at most: after
each read the reader waits READ_INTERVAL, then (at the embedded endpoint) until the table's change
feed says there is something new (local.awsserver), or polls at another endpoint. Reading sooner would
buy nothing (a window waits for its end anyway) and would take the embedded endpoint from the hot
path, one request at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local.lambdas import FunctionPool, Invocation
from local.poller import ChangeFeeds, _iso
from local.slsconfig import ACCOUNT_ID, ConfigError, Service, StreamEvent, physical_name

log = logging.getLogger("local.tablestream")

MAX_STATE_BYTES = 1024 * 1024
RETRY_BACKOFF = (0.1, 2.0)
READ_INTERVAL = 0.25  # Lambda polls each shard of a DynamoDB stream four times a second
# A window closes this long after its end at the earliest: a write stamped before the end is on the
# stream, and its change feed bumped, well within it.
CLOSE_GRACE = 0.2


@dataclass
class TableStreamStats:
    batches: int = 0
    records: int = 0
    retries: int = 0
    windows: int = 0  # windows closed by a final invocation
    windows_terminated_early: int = 0
    dead_lettered_batches: int = 0
    dead_lettered_records: int = 0
    backlog: int = 0
    iterator_age_ms: float = 0.0


@dataclass
class _Window:
    start: float  # epoch seconds
    end: float
    state: dict[str, Any] = field(default_factory=dict)


def _jsonable(value: Any) -> Any:
    """A record as botocore parsed it, back to what Lambda sends (epoch seconds, base64 binaries)."""
    import base64

    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    return value


class TableStreamPoller:
    def __init__(
        self,
        service: Service,
        function: str,
        event: StreamEvent,
        pool: FunctionPool,
        *,
        endpoint: str,
        poll_interval: float = READ_INTERVAL,
        dynamodb_endpoint: str | None = None,
        feeds: str | None = None,
    ) -> None:
        """`endpoint` serves CloudWatch and SQS (and the tables, unless `dynamodb_endpoint`, DynamoDB
        Local for example, serves them and their streams). `feeds` is the embedded endpoint whose change
        feeds see the table's writes (by default `endpoint`, when it serves the tables too); without
        one the poller polls."""
        if event.parallelization_factor != 1 or event.bisect_on_error or event.report_batch_item_failures:
            raise ConfigError(
                f"{function}: parallelizationFactor > 1, bisectBatchOnFunctionError and "
                "ReportBatchItemFailures on a DynamoDB stream are not emulated by the local runtime"
            )
        self.service = service
        self.function = function
        self.event = event
        self.pool = pool
        self.endpoint = endpoint
        self.poll_interval = max(poll_interval, READ_INTERVAL)
        self.table = physical_name(service, event.stream_resource)
        self.function_name = f"{service.name}-{service.stage}-{function}"
        self.dlq_name = (
            physical_name(service, event.on_failure_resource) if event.on_failure_resource else None
        )
        self.stream_arn = ""
        self.stats = TableStreamStats()
        self._stack = contextlib.AsyncExitStack()
        self._tasks: list[asyncio.Task[None]] = []
        self.dynamodb_endpoint = dynamodb_endpoint or endpoint
        # The embedded endpoint's feeds see the writes to the tables it serves, and only those.
        feeds = feeds or (endpoint if self.dynamodb_endpoint == endpoint else None)
        self._feeds = ChangeFeeds(feeds or endpoint)
        self._feeds.available = feeds is not None
        self._streams: Any = None
        self._sqs: Any = None
        self._cloudwatch: Any = None
        self._dlq_url: str | None = None
        self._open: _Window | None = None
        self._inflight = 0
        self._read_up_to: dict[str, float] = {}
        self._waiting: dict[str, int] = {}  # shard -> the feed version its reader is waiting past

    async def start(self) -> None:
        from aiobotocore.session import get_session

        session = get_session()
        kw = {"endpoint_url": self.endpoint, "region_name": self.service.region}
        tables = {**kw, "endpoint_url": self.dynamodb_endpoint}
        ddb = await self._stack.enter_async_context(session.create_client("dynamodb", **tables))
        self._streams = await self._stack.enter_async_context(
            session.create_client("dynamodbstreams", **tables)
        )
        self._cloudwatch = await self._stack.enter_async_context(session.create_client("cloudwatch", **kw))
        if self.dlq_name:
            self._sqs = await self._stack.enter_async_context(session.create_client("sqs", **kw))
            self._dlq_url = (await self._sqs.get_queue_url(QueueName=self.dlq_name))["QueueUrl"]
        table = (await ddb.describe_table(TableName=self.table))["Table"]
        if "LatestStreamArn" not in table:
            raise ConfigError(f"{self.function}: table {self.table} has no stream (StreamSpecification)")
        self.stream_arn = table["LatestStreamArn"]
        shards = (await self._streams.describe_stream(StreamArn=self.stream_arn))["StreamDescription"][
            "Shards"
        ]
        for shard in shards:
            queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            self._tasks.append(asyncio.create_task(self._read_shard(shard["ShardId"], queue)))
            self._tasks.append(asyncio.create_task(self._run_windows(shard["ShardId"], queue)))
        log.info(
            "%s <- %s stream: %d shards, batch %d, window %ss, retries %d, dlq %s",
            self.function,
            self.table,
            len(shards),
            self.event.batch_size,
            self.event.tumbling_window,
            self.event.maximum_retry_attempts,
            self.dlq_name,
        )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._feeds.close()
        await self._stack.aclose()

    def idle(self) -> bool:
        """True when every record read so far has been handled and no window is open: the function has
        written everything it was given (for tests and the load report)."""
        return self.stats.backlog == 0 and self._inflight == 0 and self._open is None

    def snapshot(self) -> dict[str, Any]:
        s = self.stats
        return {
            "function": self.function,
            "source": "dynamodb",
            "stream": f"{self.table} (table stream)",
            "batches": s.batches,
            "records": s.records,
            "retries": s.retries,
            "windows": s.windows,
            "windowsTerminatedEarly": s.windows_terminated_early,
            "deadLetteredBatches": s.dead_lettered_batches,
            "deadLetteredRecords": s.dead_lettered_records,
            "recordsBehind": s.backlog,
            "iteratorAgeMs": round(s.iterator_age_ms, 1),
            "windowOpen": self._open is not None,
            "inflight": self._inflight,
        }

    # --- reading ------------------------------------------------------------------------------------

    async def _iterator(self, shard_id: str, after: str | None) -> str:
        where = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}
            if after
            else {"ShardIteratorType": self.event.starting_position}
        )
        out = await self._streams.get_shard_iterator(StreamArn=self.stream_arn, ShardId=shard_id, **where)
        return str(out["ShardIterator"])

    async def _read_shard(self, shard_id: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        last: str | None = None  # the sequence number of the last record queued
        it: str | None = await self._iterator(shard_id, None)
        seen = 0
        while it:
            began = time.time()
            try:
                out = await self._streams.get_records(ShardIterator=it, Limit=1000)
            except (
                self._streams.exceptions.ExpiredIteratorException,
                self._streams.exceptions.TrimmedDataAccessException,
            ) as exc:
                # An iterator lasts 15 minutes on AWS; DynamoDB Local also refuses one as trimmed long
                # before its records are 24 hours old. Lambda's mapping takes a new one after the last
                # record it read, and so does this reader.
                log.info("new iterator for %s of %s after %s (%s)", shard_id, self.table, last, exc)
                it = await self._iterator(shard_id, last)
                continue
            except Exception:
                log.exception("GetRecords failed on %s of %s; retrying", shard_id, self.table)
                await asyncio.sleep(1.0)
                continue
            it = out.get("NextShardIterator")
            for record in out["Records"]:
                await queue.put(record)
                self.stats.backlog += 1
                last = record["dynamodb"]["SequenceNumber"]
            self._read_up_to[shard_id] = began  # every record written before `began` is queued
            await asyncio.sleep(self.poll_interval)
            if out["Records"]:
                continue
            if self._feeds.available:
                self._waiting[shard_id] = seen  # nothing new since the read: caught up until woken
                try:
                    seen = await self._feeds.wait(f"dynamodb/{self.table}", seen)
                finally:
                    self._waiting.pop(shard_id, None)

    async def _caught_up(self, shard_id: str) -> float:
        """A time before which every record of the shard has been read into its queue."""
        now = time.time()
        since = self._waiting.get(shard_id)
        if since is not None:
            # Idle on the feed: caught up to now, unless a write has bumped it (or the reader has just
            # woken for one) since it began to wait.
            version = await self._feeds.wait(f"dynamodb/{self.table}", since, timeout=0)
            if version <= since and self._waiting.get(shard_id) == since:
                return now
        return self._read_up_to.get(shard_id, 0.0)

    # --- windows ------------------------------------------------------------------------------------

    def _window_of(self, arrival: float) -> _Window:
        length = self.event.tumbling_window or 0
        if length <= 0:  # no tumbling window: every batch stands alone
            return _Window(arrival, arrival)
        start = arrival // length * length
        return _Window(start, start + length)

    async def _run_windows(self, shard_id: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        held: dict[str, Any] | None = None  # a record of a later window, read before the current one closed
        while True:
            first = held if held is not None else await queue.get()
            held = None
            window = self._window_of(_arrival(first)) if self.event.tumbling_window else None
            self._open = window
            pending = [first]
            while True:
                if held is None:
                    held = await self._fill(queue, pending, window)
                if window is None:  # no tumbling window: each batch on its own
                    await self._deliver(shard_id, pending, None, final=False)
                    self.stats.backlog -= len(pending)
                    break
                # A window closes once its end has passed and every record that arrived before the end
                # has been read: a record of a later window, or the reader caught up past the end.
                # (Caught up first, then empty: the reader queues what it read before it says so.)
                closing = held is not None or (
                    time.time() >= window.end + CLOSE_GRACE
                    and await self._caught_up(shard_id) >= window.end
                    and queue.empty()
                )
                if pending or closing:
                    await self._deliver(shard_id, pending, window, final=closing)
                    self.stats.backlog -= len(pending)
                    pending = []
                if closing:
                    break
                if time.time() >= window.end:
                    await asyncio.sleep(0.02)  # the reader may still be bringing this window's last records
                    continue
                # More records of this window, or its end (then the final invocation has none).
                record = await self._next(queue, max(0.0, window.end - time.time()))
                if record is not None and _arrival(record) >= window.end:
                    held = record
                elif record is not None:
                    pending.append(record)
            self._open = None

    async def _fill(
        self, queue: asyncio.Queue[dict[str, Any]], pending: list[dict[str, Any]], window: _Window | None
    ) -> dict[str, Any] | None:
        """Adds to the batch what has arrived, up to batchSize, waiting at most batchWindow (and never
        past the window's end). Returns a record of a later window if one came up."""
        deadline = time.monotonic() + self.event.batch_window
        if window is not None:
            deadline = min(deadline, time.monotonic() + max(0.0, window.end - time.time()))
        while len(pending) < self.event.batch_size:
            record = await self._next(queue, deadline - time.monotonic())
            if record is None:
                return None
            if window is not None and _arrival(record) >= window.end:
                return record
            pending.append(record)
        return None

    async def _next(self, queue: asyncio.Queue[dict[str, Any]], wait: float | None) -> dict[str, Any] | None:
        if wait is None:
            return await queue.get()
        if not queue.empty():
            return queue.get_nowait()
        if wait <= 0:
            return None
        try:
            return await asyncio.wait_for(queue.get(), wait)
        except TimeoutError:
            return None

    # --- delivery -----------------------------------------------------------------------------------

    def _event(
        self,
        shard_id: str,
        records: list[dict[str, Any]],
        window: _Window | None,
        *,
        final: bool,
        early: bool,
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "Records": [
                {
                    "eventID": r.get("eventID") or uuid.uuid4().hex,
                    "eventName": r["eventName"],
                    "eventVersion": "1.1",
                    "eventSource": "aws:dynamodb",
                    "awsRegion": self.service.region,
                    "dynamodb": _jsonable(r["dynamodb"]),
                    "eventSourceARN": self.stream_arn,
                }
                for r in records
            ]
        }
        if window is not None:
            event.update(
                {
                    "window": {"start": _iso_seconds(window.start), "end": _iso_seconds(window.end)},
                    "state": window.state,
                    "shardId": shard_id,
                    "eventSourceARN": self.stream_arn,
                    "isFinalInvokeForWindow": final,
                    "isWindowTerminatedEarly": early,
                }
            )
        return event

    async def _deliver(
        self, shard_id: str, records: list[dict[str, Any]], window: _Window | None, *, final: bool
    ) -> None:
        self._inflight += 1
        try:
            result = await self._invoke_with_retries(shard_id, records, window, final=final, early=False)
            if window is None:
                return
            if final or result is None:  # closed, or given up on (its records were dead-lettered)
                if final:
                    self.stats.windows += 1
                window.state = {}
                return
            window.state = result
            if len(json.dumps(result)) > MAX_STATE_BYTES:
                # Past 1 MB: the window ends early, its state handed over in an invocation of its own,
                # and goes on with a fresh state.
                self.stats.windows_terminated_early += 1
                await self._invoke_with_retries(shard_id, [], window, final=True, early=True)
                window.state = {}
        finally:
            self._inflight -= 1

    async def _invoke_with_retries(
        self,
        shard_id: str,
        records: list[dict[str, Any]],
        window: _Window | None,
        *,
        final: bool,
        early: bool,
    ) -> dict[str, Any] | None:
        """The function's `state` (or {} without a window); None when the batch was given up on."""
        attempts = 0
        while True:
            result = await self._invoke(shard_id, records, window, final=final, early=early)
            state = _state_of(result, window is not None)
            if state is not None:
                return state
            attempts += 1
            max_age = self.event.maximum_record_age
            too_old = bool(records) and max_age > 0 and time.time() - _arrival(records[0]) > max_age
            limit = self.event.maximum_retry_attempts
            if too_old or (limit >= 0 and attempts > limit):
                await self._dead_letter(
                    shard_id, records, "RecordAgeExceeded" if too_old else "RetryAttemptsExhausted", attempts
                )
                return None
            self.stats.retries += 1
            log.info(
                "%s: invocation failed (%s); retrying with the same state", self.function, result.error_type
            )
            await asyncio.sleep(min(RETRY_BACKOFF[1], RETRY_BACKOFF[0] * 2 ** (attempts - 1)))

    async def _invoke(
        self,
        shard_id: str,
        records: list[dict[str, Any]],
        window: _Window | None,
        *,
        final: bool,
        early: bool,
    ) -> Invocation:
        self.stats.batches += 1
        self.stats.records += len(records)
        if records:
            age_ms = max(0.0, (time.time() - _arrival(records[-1])) * 1000)
            self.stats.iterator_age_ms = age_ms
            with contextlib.suppress(Exception):  # metrics must never stop the stream
                await self._cloudwatch.put_metric_data(
                    Namespace="AWS/Lambda",
                    MetricData=[
                        {
                            "MetricName": "IteratorAge",
                            "Dimensions": [{"Name": "FunctionName", "Value": self.function_name}],
                            "Value": age_ms,
                            "Unit": "Milliseconds",
                        }
                    ],
                )
        return await self.pool.invoke(self._event(shard_id, records, window, final=final, early=early))

    async def _dead_letter(
        self, shard_id: str, records: list[dict[str, Any]], condition: str, attempts: int
    ) -> None:
        self.stats.dead_lettered_batches += 1
        self.stats.dead_lettered_records += len(records)
        sequences = [r["dynamodb"]["SequenceNumber"] for r in records]
        message = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"arn:aws:lambda:{self.service.region}:{ACCOUNT_ID}:function:"
                f"{self.function_name}",
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": sequences[0] if sequences else None,
                "endSequenceNumber": sequences[-1] if sequences else None,
                "approximateArrivalOfFirstRecord": _iso(_arrival(records[0])) if records else None,
                "approximateArrivalOfLastRecord": _iso(_arrival(records[-1])) if records else None,
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
        }
        log.error(
            "%s: %d records of %s's stream sent to the on-failure destination: %s",
            self.function,
            len(records),
            self.table,
            condition,
        )
        if self._sqs is not None and self._dlq_url:
            await self._sqs.send_message(QueueUrl=self._dlq_url, MessageBody=json.dumps(message))


def _arrival(record: dict[str, Any]) -> float:
    created = record["dynamodb"].get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        return created.timestamp()
    return float(created) if created is not None else time.time()


def _state_of(result: Invocation, windowed: bool) -> dict[str, Any] | None:
    """The returned state of a successful invocation; None for a failed one (a function error, or with a
    window, a response without a `state` object, which Lambda counts as a failure too)."""
    if not result.ok:
        return None
    if not windowed:
        return {}
    body = result.result
    if not isinstance(body, dict) or not isinstance(body.get("state"), dict):
        return None
    state: dict[str, Any] = body["state"]
    return state


def _iso_seconds(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
