"""The dead-letter queue of the actions stream.

Two kinds of message arrive on the actions stream's queue, and `gamebackend dlq` understands both:
- `poison`: sent by the processor for a record that can never succeed (undecodable, unknown schema
  version); carries the record itself, so a fixed consumer can take it back;
- Lambda's own on-failure record (`KinesisBatchInfo`) after the event source mapping gave up on a
  batch: metadata only (shard and sequence range); the records are read back from the stream.

The leaderboard projector's queue gets the same two shapes for the matches table's stream:
`unprojectable` (a stream record it cannot read, with the record) and Lambda's on-failure record
(`DDBStreamBatchInfo`).
"""

from __future__ import annotations

import json
from typing import Any

from streams.decode import Poison

# SQS takes 256 KiB a message (and a batch), Kinesis 1 MiB a record: a larger record travels without its
# data, which `gamebackend dlq redrive` then reads back from the stream by sequence number.
MAX_BODY = 200 * 1024


def _body(p: Poison, source_arn: str | None) -> str:
    body: dict[str, Any] = {
        "kind": "poison",
        "reason": p.reason,
        "eventSourceARN": source_arn,
        "record": p.record,
    }
    text = json.dumps(body)
    if len(text) > MAX_BODY:
        kinesis = {k: v for k, v in p.record["kinesis"].items() if k != "data"}
        body["record"] = {**p.record, "kinesis": {**kinesis, "dataOmitted": True}}
        text = json.dumps(body)
    return text


def _batches(entries: list[dict[str, str]]) -> list[list[dict[str, str]]]:
    """SendMessageBatch takes 10 messages and 256 KiB in all."""
    batches: list[list[dict[str, str]]] = [[]]
    size = 0
    for entry in entries:
        length = len(entry["MessageBody"].encode())
        if len(batches[-1]) == 10 or (batches[-1] and size + length > 250 * 1024):
            batches.append([])
            size = 0
        batches[-1].append(entry)
        size += length
    return [b for b in batches if b]


class DeadLetters:
    def __init__(self, client: Any, queue_name: str) -> None:
        self._sqs = client
        self._queue = queue_name
        self._url: str | None = None

    def url(self) -> str:
        if self._url is None:
            self._url = str(self._sqs.get_queue_url(QueueName=self._queue)["QueueUrl"])
        return self._url

    def send_poison(self, poison: list[Poison], source_arn: str | None) -> None:
        self._send([_body(p, source_arn) for p in poison])

    def send_records(
        self, kind: str, records: list[tuple[str, dict[str, Any]]], source_arn: str | None
    ) -> None:
        """Stream records that can never be processed, each with its reason (at most 200 KiB of it)."""
        bodies = []
        for reason, record in records:
            body = {"kind": kind, "reason": reason, "eventSourceARN": source_arn, "record": record}
            text = json.dumps(body)
            if len(text) > MAX_BODY:
                text = json.dumps({**body, "record": {"eventID": record.get("eventID"), "dataOmitted": True}})
            bodies.append(text)
        self._send(bodies)

    def _send(self, bodies: list[str]) -> None:
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)]
        for batch in _batches(entries):
            out = self._sqs.send_message_batch(QueueUrl=self.url(), Entries=batch)
            if out.get("Failed"):
                raise RuntimeError(f"could not dead-letter {len(out['Failed'])} records: {out['Failed']}")
