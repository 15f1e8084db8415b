"""The local stack: everything serverless.yml declares, on one machine, with no AWS account.

LocalRuntime
├── EmbeddedMoto        AWS endpoint (Kinesis, SQS, CloudWatch)     :4566  (unless AWS_ENDPOINT_URL)
├── EmbeddedMoto        DynamoDB + DynamoDB Streams, dynamodb="moto"   :8000  (a moto process of their own)
├── DynamoDBLocal       DynamoDB + DynamoDB Streams, dynamodb="local"  :8000  (local.dynamodb_local)
├── FunctionPool x N    one per function, worker processes          (local.lambdas)
├── Gateway             WebSocket API + Management API              :3001  (local.gateway)
├── HttpApi             httpApi routes + /local/* endpoints         :3000  (local.httpapi)
│                       + the JavaScript SDK at /sdk/ and the live-ops console at /console/;
│                       + the browser client at /play, POST /local/token and /local/faults
│                         (local stage only)
├── LocalStepFunctions  the state machines of serverless.yml, at /local/states  (local.stepfunctions)
├── StreamPoller x N    one per Kinesis event source mapping        (local.poller)
├── TableStreamPoller   one per DynamoDB stream event source mapping, tumbling windows (local.tablestream)
└── QueuePoller         one per SQS event source mapping (local.sqspoller): the timers queue
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aiohttp import web

from local import aws, slsconfig
from local.dynamodb_local import DEFAULT_PORT, DynamoDBLocal, engine_from_env
from local.gateway import Gateway, Limits
from local.httpapi import HttpApi
from local.lambdas import FunctionPool, forking
from local.stepfunctions import LocalStepFunctions

log = logging.getLogger("local")
ROOT = Path(__file__).resolve().parent.parent
WEB_CLIENT = ROOT / "clients" / "web"
# Static pages, each a folder served as it is (read on every request: edit and reload). /play needs the
# dev token endpoint, so it exists on the local stage only; the SDK and the console need nothing local.
STATIC = {"/sdk": ROOT / "clients" / "js", "/console": ROOT / "clients" / "console"}
WEB_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ts": "text/plain",
}


@dataclass
class RuntimeConfig:
    host: str = "127.0.0.1"
    ws_port: int = 3001
    http_port: int = 3000
    aws_port: int = 4566
    stage: str = "local"
    region: str = "us-east-1"
    config_path: Path = ROOT / "serverless.yml"
    limits: Limits = field(default_factory=Limits)
    poll_interval: float = 0.1
    # AWS_ENDPOINT_URL set -> use that endpoint and embed nothing
    endpoint_url: str | None = field(default_factory=lambda: os.environ.get("AWS_ENDPOINT_URL"))
    idle_seconds: float = 300.0
    # The tables' engine, on dynamodb_port: "moto" (a moto process of their own) or "local" (AWS's
    # DynamoDB Local). With endpoint_url set, the tables are there and nothing is embedded.
    dynamodb: str = field(default_factory=engine_from_env)
    dynamodb_port: int = DEFAULT_PORT
    # Another stage of serverless.yml whose tumbling windows the stream consumers take (None: the
    # local stage's, short so that tests see the boards settle in seconds). A load run or a benchmark
    # takes a deployed stage's: the cold path then writes as often as it would there, no more.
    windows_of: str | None = None


def with_windows_of(service: slsconfig.Service, other: slsconfig.Service) -> slsconfig.Service:
    """`service` with each stream event's tumbling window as the same function's event has it in
    `other` (the same serverless.yml, another stage)."""
    functions = dict(service.functions)
    for name, fn in functions.items():
        theirs = other.functions.get(name)
        if theirs is None or len(theirs.streams) != len(fn.streams):
            raise ValueError(f"function {name}: its stream events differ between the two stages")
        streams = tuple(
            replace(ev, tumbling_window=there.tumbling_window)
            for ev, there in zip(fn.streams, theirs.streams, strict=True)
        )
        functions[name] = replace(fn, streams=streams)
    return replace(service, functions=functions)


class LocalRuntime:
    def __init__(self, config: RuntimeConfig | None = None) -> None:
        self.config = config or RuntimeConfig()
        self.service = slsconfig.load(self.config.config_path, self.config.stage, self.config.region)
        if self.config.windows_of is not None:
            self.service = with_windows_of(
                self.service,
                slsconfig.load(self.config.config_path, self.config.windows_of, self.config.region),
            )
        self.moto: aws.EmbeddedMoto | None = None
        self.moto_dynamodb: aws.EmbeddedMoto | None = None
        self.dynamodb_local: DynamoDBLocal | None = None
        self.pools: dict[str, FunctionPool] = {}
        self.gateway: Gateway | None = None
        self.http: HttpApi | None = None
        self.pollers: list[Any] = []
        self.states: LocalStepFunctions | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://{self.config.host}:{self.config.ws_port}"

    @property
    def management_url(self) -> str:
        return f"http://{self.config.host}:{self.config.ws_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.config.host}:{self.config.http_port}"

    @property
    def aws_endpoint(self) -> str:
        if self.config.endpoint_url:
            return self.config.endpoint_url
        assert self.moto is not None
        return self.moto.url

    @property
    def endpoints(self) -> aws.Endpoints:
        """Which endpoint serves which service: every client of the stack (the Lambdas, the pollers, the
        tests) is pointed through this, so DynamoDB goes to DynamoDB Local when that is the engine. A
        DynamoDB stream poller reads `of("dynamodbstreams")`, and waits on the change feed at
        `feeds_of("dynamodb")` where there is one (moto's), else polls: DynamoDB Local has none."""
        tables = self.dynamodb_local or self.moto_dynamodb
        return aws.Endpoints(
            default=self.aws_endpoint,
            dynamodb=tables.url if tables else None,
            change_feeds=tuple(m.url for m in (self.moto, self.moto_dynamodb) if m is not None),
        )

    @property
    def dynamodb_endpoint(self) -> str:
        """Where the tables are (and their DynamoDB streams)."""
        url = self.endpoints.of("dynamodb")
        assert url is not None
        return url

    def function_env(self, fn: slsconfig.Function) -> dict[str, str]:
        endpoints = slsconfig.LocalEndpoints(self.config.region, self.management_url, self.http_url)
        env = {k: slsconfig.resolve_intrinsic(self.service, v, endpoints) for k, v in fn.environment.items()}
        env.update(
            {
                "AWS_REGION": self.config.region,
                "AWS_DEFAULT_REGION": self.config.region,
                "AWS_LAMBDA_FUNCTION_NAME": f"{self.service.name}-{self.service.stage}-{fn.name}",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory),
                **self.endpoints.env(),
                # In every AWS call's User-Agent (app/<function>): the embedded endpoint lets the cold
                # path's calls give way to the hot path's.
                "AWS_SDK_UA_APP_ID": fn.name,
                # No X-Ray daemon here: the tracer stays a no-op, as powertools does outside Lambda.
                "POWERTOOLS_TRACE_DISABLED": "true",
                "PYTHONPATH": str(ROOT),
                # Step Functions is the runtime's own (local.stepfunctions), wherever the rest is.
                "AWS_ENDPOINT_URL_SFN": f"{self.http_url}/local/states",
            }
        )
        if self.moto is not None or self.dynamodb_local is not None:
            env.update(aws.FAKE_CREDENTIALS)
        return env

    async def start(self) -> None:
        cfg = self.config
        if cfg.dynamodb == "local":
            # First, so that a missing Java or npm package is reported before anything else starts.
            self.dynamodb_local = DynamoDBLocal(cfg.host, cfg.dynamodb_port)
            await asyncio.to_thread(self.dynamodb_local.start)
            log.info("DynamoDB Local (AWS's engine) on %s", self.dynamodb_local.url)
        if cfg.endpoint_url is None:
            # The cold path: functions that take their events in tumbling windows, and the steps of
            # the state machines (settlement).
            from local.stepfunctions import load, task_functions

            steps = task_functions(self.service, load(self.service))
            background = tuple(
                fn.name
                for fn in self.service.functions.values()
                if any(e.tumbling_window for e in fn.streams) or fn.name in steps
            )
            self.moto = aws.EmbeddedMoto(cfg.host, cfg.aws_port, background)
            await asyncio.to_thread(self.moto.start)
            if cfg.dynamodb == "moto":
                # The tables on a process of their own: moto serves one request at a time, and the
                # actions' PutRecords would otherwise queue behind every table's reads and writes.
                self.moto_dynamodb = aws.EmbeddedMoto(cfg.host, cfg.dynamodb_port, background)
                await asyncio.to_thread(self.moto_dynamodb.start)
        else:
            log.info("using the AWS endpoint %s (nothing embedded)", cfg.endpoint_url)
        if self.moto is not None or self.dynamodb_local is not None:
            os.environ.update(aws.FAKE_CREDENTIALS)
        await asyncio.to_thread(aws.create_resources, self.service, self.endpoints)
        for fn in self.service.functions.values():
            self.pools[fn.name] = FunctionPool(
                fn.name,
                fn.handler,
                env=self.function_env(fn),
                timeout=fn.timeout,
                memory=fn.memory,
                max_concurrency=fn.reserved_concurrency,
                idle_seconds=cfg.idle_seconds,
                cwd=str(ROOT),
                snap_start=fn.snap_start,
            )
        if any(fn.snap_start for fn in self.service.functions.values()) and not forking():
            log.info("SnapStart: each environment imports its handler and runs the hooks itself (no fork)")
        self.gateway = Gateway(self.service, self.pools, host=cfg.host, port=cfg.ws_port, limits=cfg.limits)
        await self.gateway.start()
        self.http = HttpApi(self.service, self.pools, host=cfg.host, port=cfg.http_port)
        from local import stepfunctions

        machines = stepfunctions.load(self.service)
        if machines:
            self.states = LocalStepFunctions(machines, self._invoke_arn, self.service.region)
            for path in ("/local/states", "/local/states/"):  # boto3 appends the operation's "/"
                self.http.add_local_route(path, self.states.handle)
        self.http.add_local_route("/local/health", self._health)
        self.http.add_local_route("/local/metrics", self._metrics)
        mounts = dict(STATIC)
        if self.service.stage == "local":  # a dev token endpoint must never exist on a real stage
            self.http.add_local_route("/local/token", self._dev_token)
            # Nor a way to break the stack: fault injection for tests and load runs (local.faults).
            from local.faults import FaultInjector

            injector = FaultInjector(
                self.pools,
                self.gateway.management.faults,
                self.moto.url if self.moto else None,
                self.moto_dynamodb.url if self.moto_dynamodb else None,
            )
            self.http.add_local_route("/local/faults", injector.handle)
            mounts["/play"] = WEB_CLIENT
        for prefix, folder in mounts.items():
            for path in (prefix, f"{prefix}/"):
                self.http.add_local_route(path, self._static(folder, prefix))
            for asset in sorted(folder.glob("*")):
                if asset.suffix in WEB_TYPES:
                    self.http.add_local_route(f"{prefix}/{asset.name}", self._static(folder, prefix))
        await self.http.start()
        await self._start_pollers()
        log.info(
            "local stack ready: ws=%s http=%s aws=%s dynamodb=%s",
            self.ws_url,
            self.http_url,
            self.aws_endpoint,
            self.dynamodb_endpoint,
        )

    async def _start_pollers(self) -> None:
        # The streams' pollers first (in serverless.yml's order), then the queues'.
        await self._start_stream_pollers()
        from local.sqspoller import QueuePoller

        for fn in self.service.functions.values():
            for queue in fn.queues:
                sqs = QueuePoller(
                    self.service,
                    fn.name,
                    queue,
                    self.pools[fn.name],
                    endpoint=self.aws_endpoint,
                    poll_interval=self.config.poll_interval,
                )
                await sqs.start()
                self.pollers.append(sqs)

    async def _start_stream_pollers(self) -> None:
        streams = [(fn, ev) for fn in self.service.functions.values() for ev in fn.streams]
        if not streams:
            return
        from local.poller import StreamPoller
        from local.tablestream import TableStreamPoller

        for fn, ev in streams:
            poller: StreamPoller | TableStreamPoller
            if ev.source == "dynamodb":
                poller = TableStreamPoller(
                    self.service,
                    fn.name,
                    ev,
                    self.pools[fn.name],
                    endpoint=self.aws_endpoint,
                    poll_interval=self.config.poll_interval,
                    dynamodb_endpoint=self.dynamodb_endpoint,
                    feeds=self.endpoints.feeds_of("dynamodb"),  # none on DynamoDB Local
                )
            else:
                poller = StreamPoller(
                    self.service,
                    fn.name,
                    ev,
                    self.pools[fn.name],
                    endpoint=self.aws_endpoint,
                    poll_interval=self.config.poll_interval,
                )
            await poller.start()
            self.pollers.append(poller)

    async def _invoke_arn(self, arn: str, payload: Any) -> tuple[bool, Any]:
        """A Task state's Lambda invocation (RequestResponse), by the function's ARN."""
        prefix = f"{self.service.name}-{self.service.stage}-"
        from local.stepfunctions import function_name

        name = function_name(arn).removeprefix(prefix)
        pool = self.pools.get(name)
        if pool is None:
            return False, {
                "errorType": "Lambda.ResourceNotFoundException",
                "errorMessage": f"no function {arn}",
            }
        inv = await pool.invoke(payload, synchronous=True)
        if inv.ok:
            return True, inv.result
        error = inv.error_type or "Lambda.Unknown"
        if error == "TooManyRequestsException":
            error = "Lambda.TooManyRequestsException"
        return False, {"errorType": error, "errorMessage": inv.error_message or ""}

    async def stop(self) -> None:
        if self.states:
            await self.states.drain()
        for poller in self.pollers:
            await poller.stop()
        if self.gateway:
            await self.gateway.stop()
        if self.http:
            await self.http.stop()
        for pool in self.pools.values():
            await pool.close()
        for moto in (self.moto, self.moto_dynamodb):
            if moto:
                await asyncio.to_thread(moto.stop)
        if self.dynamodb_local:
            await asyncio.to_thread(self.dynamodb_local.stop)

    async def __aenter__(self) -> LocalRuntime:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def metrics(self) -> dict[str, Any]:
        return {
            "functions": {name: pool.stats.snapshot() for name, pool in self.pools.items()},
            "gateway": {
                **(self.gateway.stats if self.gateway else {}),
                "open": len(self.gateway.connections) if self.gateway else 0,
            },
            "streams": [p.snapshot() for p in self.pollers],
            "stateMachines": self.states.stats() if self.states else {},
        }

    async def _health(self, request: web.BaseRequest) -> web.Response:
        return web.json_response(
            {
                "status": "ok",
                "stage": self.service.stage,
                "aws": self.aws_endpoint,
                "dynamodb": self.dynamodb_endpoint,
                "dynamodbEngine": self.config.dynamodb,
                # Seconds of each stream consumer's tumbling window (what `--windows-of` chose).
                "windows": {
                    fn.name: ev.tumbling_window
                    for fn in self.service.functions.values()
                    for ev in fn.streams
                    if ev.tumbling_window
                },
            }
        )

    async def _metrics(self, request: web.BaseRequest) -> web.Response:
        return web.json_response(self.metrics())

    def _static(self, folder: Path, prefix: str) -> Any:
        async def serve(request: web.BaseRequest) -> web.StreamResponse:
            """A file of `folder` (the routes exist only for the files found at start), read on every
            request (edit and reload)."""
            if request.method not in ("GET", "HEAD"):
                return web.json_response({"message": "Method Not Allowed"}, status=405)
            if request.path == prefix and prefix != "/play":
                # The page links its assets relatively (it is deployable under any path): from "/console"
                # they would resolve against "/".
                query = f"?{request.query_string}" if request.query_string else ""
                return web.Response(status=301, headers={"Location": f"{prefix}/{query}"})
            name = request.path.removeprefix(prefix).strip("/") or "index.html"
            path = folder / name
            if not path.is_file():
                return web.json_response({"message": "Not Found"}, status=404)
            return web.Response(
                body=path.read_bytes(),
                content_type=WEB_TYPES[path.suffix],
                headers={"Cache-Control": "no-store"},
            )

        return serve

    async def _dev_token(self, request: web.BaseRequest) -> web.Response:
        """POST {"player": "alice"} -> {"token": ...}: what `gamebackend token` mints, for the page.

        Only the page may ask. The body must be JSON, which another site's page cannot send without a CORS
        preflight that this endpoint never grants; the request must name this runtime as its host, which a
        DNS-rebinding page cannot (it names its own); and an `Origin`, where a browser sends one, must be
        this runtime's. It mints player tokens only, never admin ones."""
        from backend import wirejson
        from local.tokens import NoSecret, StageTokens

        def refuse(status: int, code: str, message: str) -> web.Response:
            return web.json_response({"error": {"code": code, "message": message}}, status=status)

        if request.method != "POST":
            return refuse(405, "method_not_allowed", 'POST a JSON body: {"player": "alice"}')
        port = self.config.http_port
        hosts = {f"{h}:{port}" for h in (self.config.host, "127.0.0.1", "localhost", "[::1]")}
        if request.headers.get("Host", "") not in hosts:
            return refuse(403, "forbidden", "only this runtime's own page may mint tokens (Host)")
        origin = request.headers.get("Origin")
        if origin is not None and origin not in {f"http://{h}" for h in hosts}:
            return refuse(403, "forbidden", "only this runtime's own page may mint tokens (Origin)")
        if request.content_type != "application/json":
            return refuse(415, "unsupported_media_type", "send the body as application/json")
        try:
            body = wirejson.loads(await request.read())
            player = body["player"] if isinstance(body, dict) else None
            if not isinstance(player, str):
                raise ValueError("`player` must be a string")
            token = StageTokens.from_settings(self.service.stage_settings(), self.service.stage).mint(player)
        except (ValueError, KeyError, NoSecret) as exc:
            return refuse(400, "bad_request", f"bad request: {exc}")
        return web.json_response({"player": player, "token": token})
