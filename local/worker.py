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
    sys.stdout = sys.stderr
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
