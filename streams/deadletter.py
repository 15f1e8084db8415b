"""The dead-letter queue of the actions stream.

Two kinds of message arrive there, and `gamebackend dlq` understands both:
- `poison`: sent by the processor for a record that can never succeed (undecodable, unknown schema
  version); carries the record itself, so a fixed consumer can take it back;
- Lambda's own on-failure record (`KinesisBatchInfo`) after the event source mapping gave up on a
  batch: metadata only (shard and sequence range); the records are read back from the stream.
"""

from __future__ import annotations

import json
from typing import Any

from streams.decode import Poison


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
        entries = [
            {
                "Id": str(i),
                "MessageBody": json.dumps(
                    {
                        "kind": "poison",
                        "reason": p.reason,
                        "eventSourceARN": source_arn,
                        "record": p.record,
                    }
                ),
            }
            for i, p in enumerate(poison)
        ]
        for start in range(0, len(entries), 10):
            out = self._sqs.send_message_batch(QueueUrl=self.url(), Entries=entries[start : start + 10])
            if out.get("Failed"):
                raise RuntimeError(f"could not dead-letter {len(out['Failed'])} records: {out['Failed']}")
