"""Replays one deterministic workload (bench.workload) through a processor handler, in batches of a
chosen size, in this process: the AWS calls it makes (counted as the Lambda workers count them), and its
CPU time per record. For the current processor, the leaderboard projector then takes the matches
table's stream that the replay wrote, in tumbling windows of the deployed stages' length by the
records' receive times (the workload's 200 records a second), and its calls are counted apart
(`cold_calls`): the hot path and the cold path of the same records.

CPU is `time.process_time()` around the handler: the handler's own work, botocore's serialisation and
parsing included (Lambda bills those too), waits on the network excluded. The AWS endpoint (bench.meter)
and the Management API stand-in (bench.standin) are other processes, so their work is not counted.

Run by bench/run.py in a fresh interpreter (environment, cached clients and log handlers all start
clean): `python -m bench.replay SPEC.json OUT.json`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.workload import START_MS, Workload, generate

HANDLERS = {
    "current": "streams.processor",
    "baseline": "bench.baseline",
    "message": "backend.handlers.message",
    "projector": "streams.projector",
}


class TableStream:
    """The matches table's stream at the metered endpoint, read from where the last read stopped."""

    def __init__(self, aws_url: str, table: str) -> None:
        import boto3

        self._streams = boto3.session.Session().client(
            "dynamodbstreams", endpoint_url=aws_url, region_name="us-east-1"
        )
        ddb = boto3.session.Session().client("dynamodb", endpoint_url=aws_url, region_name="us-east-1")
        self._arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        shard = self._streams.describe_stream(StreamArn=self._arn)["StreamDescription"]["Shards"][0][
            "ShardId"
        ]
        self._it = self._streams.get_shard_iterator(
            StreamArn=self._arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]

    def read(self) -> list[dict[str, Any]]:
        from local.tablestream import _jsonable

        out: list[dict[str, Any]] = []
        while True:
            page = self._streams.get_records(ShardIterator=self._it, Limit=1000)
            self._it = page["NextShardIterator"]
            if not page["Records"]:
                return out
            out += [{**_jsonable(r), "eventSourceARN": self._arn} for r in page["Records"]]


def windows(records: list[dict[str, Any]], seconds: int) -> list[list[dict[str, Any]]]:
    """The records cut into tumbling windows by the receive time of each write's last record."""
    cut: dict[int, list[dict[str, Any]]] = {}
    for r in records:
        image = r.get("dynamodb", {}).get("NewImage") or {}
        at = int(image["lastAt"]["N"]) if "lastAt" in image else START_MS
        cut.setdefault(at // (seconds * 1000), []).append(r)
    return [cut[k] for k in sorted(cut)]


def project(handler: Any, records: list[dict[str, Any]], seconds: int, batch: int = 1000) -> int:
    """Runs the projector over the records as Lambda would: per window, its batches passing the state
    along, then the final invocation. Returns the number of invocations."""
    invocations = 0
    for window in windows(records, seconds):
        state: dict[str, Any] = {}
        for start in range(0, len(window), batch):
            out = handler({"Records": window[start : start + batch], "state": state}, _context(invocations))
            state = out["state"]
            invocations += 1
        handler({"Records": [], "state": state, "isFinalInvokeForWindow": True}, _context(invocations))
        invocations += 1
    return invocations


class LogTap:
    """stdout, counted: what a function writes there is what CloudWatch Logs ingests."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, text: str) -> int:
        self.bytes += len(text.encode())
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def environment(aws_url: str, management_url: str) -> dict[str, str]:
    """The processor's and the projector's environment as serverless.yml declares them (stage `local`),
    log level INFO."""
    from local import aws, slsconfig
    from local.runtime import ROOT

    service = slsconfig.load(ROOT / "serverless.yml", "local")
    fn = service.functions["processor"]
    endpoints = slsconfig.LocalEndpoints(service.region, management_url, "http://127.0.0.1:9")
    env = {
        k: slsconfig.resolve_intrinsic(service, v, endpoints)
        for name in ("processor", "projector")
        for k, v in service.functions[name].environment.items()
    }
    env.update(
        {
            "AWS_REGION": service.region,
            "AWS_DEFAULT_REGION": service.region,
            "AWS_ENDPOINT_URL": aws_url,
            "AWS_LAMBDA_FUNCTION_NAME": f"{service.name}-{service.stage}-processor",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory),
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            # No state machine in the replay's endpoint: the settlement saga (one StartExecution per
            # finished match, then its own function) is not part of what the replay measures.
            "MATCH_END_SAGA": "",
            **aws.FAKE_CREDENTIALS,
        }
    )
    return env


def _deployed_settings() -> dict[str, Any]:
    from local import slsconfig
    from local.runtime import ROOT

    return slsconfig.load(ROOT / "serverless.yml", "dev").stage_settings()


def reset_tables(aws_url: str) -> None:
    import boto3

    from local import aws, slsconfig
    from local.runtime import ROOT

    service = slsconfig.load(ROOT / "serverless.yml", "local")
    ddb = boto3.session.Session().client("dynamodb", endpoint_url=aws_url, region_name=service.region)
    for props in service.resources_of_type("AWS::DynamoDB::Table").values():
        if props["TableName"] in ddb.list_tables()["TableNames"]:
            ddb.delete_table(TableName=props["TableName"])
    aws.create_resources(service, aws_url)


def seed(work: Workload, upto: int) -> None:
    """What matchmaking and `$connect` would have written for the matches of the first `upto` records."""
    from backend import bootstrap
    from backend.ids import ConnectionId, MatchId, PlayerId
    from backend.store.connections import Connection

    named = {e["matchId"] for e in work.events[:upto]}
    matches, connections = bootstrap.matches(), bootstrap.connections()
    for planned in work.matches:
        if planned.match_id not in named:
            continue
        first, *others = planned.seats
        roster = matches.create(planned.match_id, planned.mode, first.player_id, now_ms=START_MS)
        for seat in others:
            roster = matches.claim_seat(roster, seat.player_id)
        for seat in planned.seats:
            cid = ConnectionId(seat.connection_id)
            connections.put(Connection(cid, PlayerId(seat.player_id), START_MS))
            connections.attach_match(cid, MatchId(planned.match_id))


def _frame_event(event: dict[str, Any]) -> dict[str, Any]:
    """The API Gateway event of the frame a client sent to produce this record (an `act`)."""
    frame: dict[str, Any] = {
        "action": "act",
        "kind": event["kind"],
        "matchId": event["matchId"],
        "id": event["actionId"],
        **event["args"],
    }
    return {
        "requestContext": {
            "routeKey": "act",
            "eventType": "MESSAGE",
            "connectionId": event["connectionId"],
            "connectedAt": START_MS,
            "requestTimeEpoch": event["receivedAt"],
            "requestId": event["eventId"],
            "messageId": event["eventId"],
            "stage": "local",
            "apiId": "localws",
            "authorizer": {"playerId": event["playerId"], "role": "player", "principalId": event["playerId"]},
        },
        "body": json.dumps(frame),
        "isBase64Encoded": False,
    }


def _context(start: int) -> Any:
    from local.worker import LambdaContext

    name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    return LambdaContext(name, 512, f"bench-{start}", time.time() * 1000 + 60_000, "us-east-1")


def run(spec: dict[str, Any]) -> dict[str, Any]:
    import importlib

    from local.worker import AwsCallCounter

    counter = AwsCallCounter()
    counter.install()
    tap = LogTap()
    sys.stdout = tap  # before the handlers create their loggers
    handlers = {name: importlib.import_module(module).handler for name, module in HANDLERS.items()}
    window_s = int(_deployed_settings()["leaderboardWindow"])
    results = []
    for case in spec["cases"]:
        skip, count, batch = case.get("skip", 0), case["records"], case["batch"]
        work = generate(case["mode"], case["concurrent"], skip + count, seed=case.get("seed", 1))
        reset_tables(spec["aws"])
        seed(work, skip + count)
        changes = TableStream(spec["aws"], os.environ["MATCHES_TABLE"])
        handler = handlers[case["variant"]]
        if case["variant"] == "message":  # one invocation per act the clients sent
            events = [_frame_event(e) for e in work.events[skip : skip + count] if e["type"] == "act"]
        else:
            # The first `skip` records (the opening joins) bring the matches into play, uncounted.
            for start in range(0, skip, 100):
                handler({"Records": work.records(start, min(start + 100, skip))}, _context(start))
            if case["variant"] == "current":
                project(handlers["projector"], changes.read(), window_s)
            events = [
                {"Records": work.records(start, min(start + batch, skip + count))}
                for start in range(skip, skip + count, batch)
            ]
        counter.drain()
        cpu: list[float] = []
        wall: list[float] = []
        logged = tap.bytes
        for i, event in enumerate(events):
            context = _context(i)
            c0, w0 = time.process_time(), time.perf_counter()
            out = handler(event, context)
            cpu.append((time.process_time() - c0) * 1000)
            wall.append((time.perf_counter() - w0) * 1000)
            if out.get("batchItemFailures") or '"type":"error"' in str(out.get("body", "")):
                raise RuntimeError(f"{case}: invocation {i} failed: {out}")
        calls = counter.drain()
        cold: dict[str, float] = {}
        cold_cpu = 0.0
        projected = 0
        if case["variant"] == "current":
            c0 = time.process_time()
            projected = project(handlers["projector"], changes.read(), window_s)
            cold_cpu = (time.process_time() - c0) * 1000
            cold = counter.drain()
        measured = work.events[skip : skip + count]
        kinds: dict[str, int] = {}
        for e in measured:
            kinds[e["type"]] = kinds.get(e["type"], 0) + 1
        results.append(
            {
                **case,
                "kinds": kinds,
                "matches": len({e["matchId"] for e in measured}),
                "record_bytes": sum(len(json.dumps(e)) for e in measured) / max(1, len(measured)),
                "invocations": len(cpu),
                "cpu_ms": [round(c, 3) for c in cpu],
                "wall_ms": [round(w, 3) for w in wall],
                "log_bytes": tap.bytes - logged,
                "calls": {k: round(v, 3) for k, v in calls.items()},
                "cold_calls": {k: round(v, 3) for k, v in cold.items()},
                "cold_invocations": projected,
                "cold_cpu_ms": round(cold_cpu, 3),
                "window_s": window_s,
            }
        )
    for module in ("streams.processor", "streams.projector"):
        sys.modules[module].root().pusher.close()  # each handler module's composition root
    return {"cases": results}


def main(argv: list[str]) -> None:
    spec = json.loads(Path(argv[0]).read_text())
    os.environ.update(environment(spec["aws"], spec["management"]))
    out = run(spec)
    Path(argv[1]).write_text(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
