"""One Lambda execution environment: a process that imports one handler once and serves invocations.

Started by `local.lambdas.FunctionPool`. It talks to its parent over length-prefixed JSON frames on
stdin and on the original stdout; the handler's own prints and logs go to stderr, as a Lambda's go to
CloudWatch. Importing the handler is the cold start, timed and reported in the first frame.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
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


COUNT_AWS_CALLS_ENV = "GAMEBACKEND_COUNT_AWS_CALLS"
_DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


class AwsCallCounter:
    """Opt-in (GAMEBACKEND_COUNT_AWS_CALLS=1, for the benchmarks in bench/): counts every botocore call
    of the handler (boto3 and aiobotocore) as `service.Operation`, `@table` appended for DynamoDB, and
    `error:<call>:<code>` for the failed ones. Every DynamoDB request asks for ReturnConsumedCapacity,
    summed per table as `rcu@<table>` and `wcu@<table>`. Returned with each reply as `awsCalls`."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}

    def install(self) -> None:
        """Registers the handlers on every botocore session created from now on."""
        import botocore.session

        original = botocore.session.Session.__init__
        counter = self

        def init(session: Any, *args: Any, **kwargs: Any) -> None:
            original(session, *args, **kwargs)
            session.register("before-parameter-build.dynamodb", counter.ask_capacity)
            session.register("after-call", counter.record)

        botocore.session.Session.__init__ = init

    def ask_capacity(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        shape = model.input_shape
        if shape is not None and "ReturnConsumedCapacity" in shape.members:
            params.setdefault("ReturnConsumedCapacity", "TOTAL")
        tables = params.get("TableName") or ",".join(sorted(params.get("RequestItems") or ()))
        if tables:
            context["countedTables"] = tables

    def record(self, http_response: Any, parsed: dict[str, Any], model: Any, context: Any, **_: Any) -> None:
        call = f"{model.service_model.service_name}.{model.name}"
        if context and context.get("countedTables"):
            call += "@" + context["countedTables"]
        self._add(call, 1)
        if http_response is not None and http_response.status_code >= 300:
            self._add(f"error:{call}:{parsed.get('Error', {}).get('Code', http_response.status_code)}", 1)
        consumed = parsed.get("ConsumedCapacity")
        kind = "wcu" if model.name in _DYNAMODB_WRITES else "rcu"
        for c in consumed if isinstance(consumed, list) else [consumed] if consumed else []:
            self._add(f"{kind}@{c.get('TableName', '?')}", float(c.get("CapacityUnits") or 0))

    def _add(self, key: str, value: float) -> None:
        self.totals[key] = self.totals.get(key, 0) + value

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


def _load(handler_spec: str, out: BinaryIO, hooks: bool = False) -> Any:
    """The init phase: imports the handler (with `hooks`, then runs SnapStart's before-snapshot and
    after-restore hooks in this process). None (after telling the parent why) when it fails."""
    started = time.perf_counter()
    try:
        module_name, func_name = handler_spec.split(":")
        handler = getattr(importlib.import_module(module_name), func_name)
        if hooks:
            import snapshot_restore_py

            _run_hooks(snapshot_restore_py.get_before_snapshot())
            _run_hooks(snapshot_restore_py.get_after_restore())
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
        return None
    write_frame(out, {"ready": True, "initMs": (time.perf_counter() - started) * 1000})
    return handler


def _serve(
    handler: Any,
    function_name: str,
    memory: int,
    inp: BinaryIO,
    out: BinaryIO,
    tap: MetricTap,
    counter: AwsCallCounter | None,
) -> None:
    region = os.environ.get("AWS_REGION", "us-east-1")
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
        if counter is not None:
            reply["awsCalls"] = counter.drain()
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


def _run_hooks(hooks: list[Any]) -> None:
    for fn, args, kwargs in hooks:
        fn(*args, **kwargs)


def _snapshot(
    handler: Any,
    function_name: str,
    memory: int,
    control: socket.socket,
    tap: MetricTap,
    counter: AwsCallCounter | None,
) -> None:
    """SnapStart, as Lambda runs it: the init phase and the before-snapshot hooks have run once, here;
    each new environment is this process forked (the snapshot, resumed), which runs the after-restore
    hooks and then serves its own connection. The parent sends that connection's socket over `control`
    and is answered with the environment's pid."""
    import signal

    import snapshot_restore_py

    _run_hooks(snapshot_restore_py.get_before_snapshot())
    # An environment is reaped as soon as it ends (its parent notices by its connection closing).
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    while True:
        try:
            _, fds, _, _ = socket.recv_fds(control, 16, 1)
        except (ConnectionError, OSError):
            return
        if not fds:
            return  # the parent is gone
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                control.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                connection = socket.socket(fileno=fds[0])
                inp, out = connection.makefile("rb"), connection.makefile("wb")
                started = time.perf_counter()
                _run_hooks(snapshot_restore_py.get_after_restore())
                restored = {"ready": True, "initMs": (time.perf_counter() - started) * 1000, "restored": True}
                write_frame(out, restored)
                if counter is not None:
                    counter.drain()  # each environment counts its own calls, none of the snapshot's
                _serve(handler, function_name, memory, inp, out, tap, counter)
            except Exception:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(0)
        os.close(fds[0])
        control.sendall(_HEADER.pack(pid))


def main() -> None:
    handler_spec, function_name, memory = sys.argv[1], sys.argv[2], int(sys.argv[3])
    # A fourth argument: the control socket of a snapshot process, or "hooks" (SnapStart's hooks in an
    # environment of its own, where the runtime does not fork: local.lambdas.forking).
    hooks = sys.argv[4:5] == ["hooks"]
    snapshot_fd = int(sys.argv[4]) if len(sys.argv) > 4 and not hooks else None
    # Keep the real stdout for frames; everything the handler prints goes to stderr.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    tap = MetricTap(sys.stderr)
    sys.stdout = tap
    # Before the init: the sessions a handler builds then (or before a snapshot) count as well.
    counter = AwsCallCounter() if os.environ.get(COUNT_AWS_CALLS_ENV) == "1" else None
    if counter is not None:
        counter.install()
    handler = _load(handler_spec, out, hooks)
    if handler is None:
        return
    if snapshot_fd is None:
        _serve(handler, function_name, memory, sys.stdin.buffer, out, tap, counter)
    else:
        _snapshot(handler, function_name, memory, socket.socket(fileno=snapshot_fd), tap, counter)


if __name__ == "__main__":
    main()
