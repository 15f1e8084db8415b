"""One Lambda execution environment: a process that imports one handler once and serves invocations.

Started by `local.lambdas.FunctionPool`. It talks to its parent over length-prefixed JSON frames on
stdin and on the original stdout; the handler's own prints and logs go to stderr, as a Lambda's go to
CloudWatch. Importing the handler is the cold start, timed and reported in the first frame.
"""

from __future__ import annotations

import importlib
import json
import os
import struct
import sys
import time
import traceback
from typing import Any, BinaryIO

_HEADER = struct.Struct(">I")


def read_frame(stream: BinaryIO) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    return json.loads(stream.read(size))


def write_frame(stream: BinaryIO, payload: Any) -> None:
    data = json.dumps(payload).encode()
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


class MetricTap:
    """The handler's stdout: written through to stderr, and CloudWatch EMF lines (what powertools'
    Metrics prints) are summed per metric, so the local runtime can show them (/local/metrics)."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.pending = ""
        self.totals: dict[str, float] = {}

    def write(self, text: str) -> int:
        self.target.write(text)
        self.pending += text
        while "\n" in self.pending:
            line, self.pending = self.pending.split("\n", 1)
            if '"_aws"' in line:
                self._count(line)
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return False

    def _count(self, line: str) -> None:
        try:
            doc = json.loads(line)
            for directive in doc["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    name = metric["Name"]
                    value = doc.get(name, 0)
                    total = sum(value) if isinstance(value, list) else value
                    self.totals[name] = self.totals.get(name, 0) + float(total)
        except (ValueError, KeyError, TypeError):
            return

    def drain(self) -> dict[str, float]:
        totals, self.totals = self.totals, {}
        return totals


class LambdaContext:
    """The context object Lambda passes to a handler (the attributes powertools reads)."""

    def __init__(self, function_name: str, memory: int, request_id: str, deadline_ms: float, region: str):
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:000000000000:function:{function_name}"
        self.memory_limit_in_mb = memory
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"local/{os.getpid()}"
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))


def main() -> None:
    handler_spec, function_name, memory = sys.argv[1], sys.argv[2], int(sys.argv[3])
    # Keep the real stdout for frames; everything the handler prints goes to stderr.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    tap = MetricTap(sys.stderr)
    sys.stdout = tap
    inp = sys.stdin.buffer
    region = os.environ.get("AWS_REGION", "us-east-1")

    started = time.perf_counter()
    try:
        module_name, func_name = handler_spec.split(":")
        handler = getattr(importlib.import_module(module_name), func_name)
    except Exception as exc:
        write_frame(
            out,
            {
                "ready": False,
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_exc().splitlines(),
            },
        )
        return
    write_frame(out, {"ready": True, "initMs": (time.perf_counter() - started) * 1000})

    while True:
        request = read_frame(inp)
        if request is None:
            return
        context = LambdaContext(function_name, memory, request["requestId"], request["deadlineMs"], region)
        began = time.perf_counter()
        try:
            result = handler(request["event"], context)
            reply = {"ok": True, "result": result}
        except Exception as exc:
            traceback.print_exc()
            reply = {
                "ok": False,
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_exc().splitlines(),
            }
        reply["durationMs"] = (time.perf_counter() - began) * 1000
        reply["metrics"] = tap.drain()
        try:
            write_frame(out, reply)
        except (TypeError, ValueError) as exc:  # a result json cannot encode is a Runtime.MarshalError on AWS
            write_frame(
                out,
                {
                    "ok": False,
                    "errorType": "Runtime.MarshalError",
                    "errorMessage": str(exc),
                    "durationMs": reply["durationMs"],
                },
            )


if __name__ == "__main__":
    main()
