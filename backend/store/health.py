"""Whether the stack's tables and stream answer: what `/admin/health` reports, with AWS's errors
translated here into a status word."""

from __future__ import annotations

from typing import Any


class Health:
    def __init__(self, dynamodb: Any, kinesis: Any, tables: list[str], stream: str) -> None:
        self._ddb = dynamodb
        self._kinesis = kinesis
        self._tables = tables
        self._stream = stream

    def checks(self) -> dict[str, str]:
        """resource name -> its status in lower case (`active`, `updating`, ...) or `error: <kind>`."""
        checks: dict[str, str] = {}
        for name in self._tables:
            try:
                checks[name] = str(self._ddb.describe_table(TableName=name)["Table"]["TableStatus"]).lower()
            except Exception as exc:  # any failure is the check's answer, not the route's
                checks[name] = f"error: {type(exc).__name__}"
        try:
            summary = self._kinesis.describe_stream_summary(StreamName=self._stream)
            checks[self._stream] = str(summary["StreamDescriptionSummary"]["StreamStatus"]).lower()
        except Exception as exc:
            checks[self._stream] = f"error: {type(exc).__name__}"
        return checks

    @staticmethod
    def healthy(checks: dict[str, str]) -> bool:
        return all(v in ("active", "updating") for v in checks.values())
