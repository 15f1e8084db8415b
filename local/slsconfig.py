"""Reads serverless.yml the way the Serverless Framework does, for the local runtime.

serverless.yml is the one source of truth: the routes, functions, tables, stream and event-source
settings the local runtime wires all come from here, never from a second list in Python.

Supported: `${self:...}`, `${sls:stage}`, `${opt:stage|region}`, `${env:NAME}`, `${ssm:...}` (local runs
take the default after the comma), nested references, and the CloudFormation intrinsics that appear in
the file (`Ref`, `Fn::GetAtt`, `Fn::Sub`, `Fn::Join`, `Fn::ToJsonString`), which resolve to local names,
ARNs and endpoints.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ACCOUNT_ID = "000000000000"


class ConfigError(Exception):
    """serverless.yml cannot be understood; the message says where."""


# --- YAML with CloudFormation short tags ---------------------------------------------------------


class _CfnLoader(yaml.SafeLoader):
    pass


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if name == "Fn::GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


# --- ${...} variables ----------------------------------------------------------------------------

_INNERMOST = re.compile(r"\$\{([^${}]+)\}")


def _split_default(expr: str) -> tuple[str, str | None]:
    m = re.match(r"^(.*?),\s*(?:'([^']*)'|\"([^\"]*)\"|([^,]+?))\s*$", expr)
    if not m:
        return expr.strip(), None
    default = next(g for g in m.groups()[1:] if g is not None)
    return m.group(1).strip(), default


def _lookup(root: dict[str, Any], dotted: str) -> Any:
    node: Any = root
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


class _Resolver:
    def __init__(self, raw: dict[str, Any], stage: str, region: str) -> None:
        self.raw = raw
        self.stage = stage
        self.region = region

    def value(self, expr: str, depth: int = 0) -> Any:
        source, default = _split_default(expr)
        try:
            if source.startswith("self:"):
                return self.resolve(_lookup(self.raw, source[5:]), depth + 1)
            if source in {"sls:stage", "opt:stage"}:
                return self.stage
            if source == "opt:region":
                return self.region
            if source.startswith("env:"):
                return os.environ[source[4:]]
            if source.startswith("ssm:"):
                # No SSM offline: a deployed stage reads it; locally the declared default stands in.
                raise KeyError(source)
        except KeyError:
            if default is not None:
                return default
            raise ConfigError(f"serverless.yml: cannot resolve ${{{expr}}}") from None
        if default is not None and source == "":
            return default
        raise ConfigError(f"serverless.yml: unsupported variable source ${{{expr}}}")

    def resolve(self, node: Any, depth: int = 0) -> Any:
        if depth > 20:
            raise ConfigError("serverless.yml: variable references nest too deeply (a cycle?)")
        if isinstance(node, dict):
            return {k: self.resolve(v, depth) for k, v in node.items()}
        if isinstance(node, list):
            return [self.resolve(v, depth) for v in node]
        if not isinstance(node, str) or "${" not in node:
            return node
        text = node
        while True:
            m = _INNERMOST.search(text)
            if m is None:
                return text
            # Fn::Sub placeholders such as ${AWS::Region} are CloudFormation's, not the framework's.
            if "::" in m.group(1) or re.fullmatch(r"[A-Za-z0-9]+(\.[A-Za-z]+)?", m.group(1)):
                marker = "\x00" + m.group(1) + "\x01"
                text = text[: m.start()] + marker + text[m.end() :]
                continue
            value = self.value(m.group(1), depth)
            if m.group(0) == text:
                return value
            text = text[: m.start()] + str(value) + text[m.end() :]
        # unreachable

    def restore_markers(self, node: Any) -> Any:
        if isinstance(node, dict):
            return {k: self.restore_markers(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.restore_markers(v) for v in node]
        if isinstance(node, str):
            return node.replace("\x00", "${").replace("\x01", "}")
        return node


# --- the typed view the local runtime uses --------------------------------------------------------


@dataclass(frozen=True)
class StreamEvent:
    stream_resource: str  # the Kinesis stream, or the DynamoDB table whose stream it is
    batch_size: int
    batch_window: int
    parallelization_factor: int
    bisect_on_error: bool
    maximum_retry_attempts: int
    maximum_record_age: int
    report_batch_item_failures: bool
    starting_position: str
    on_failure_resource: str | None
    source: str = "kinesis"  # or "dynamodb" (a table's stream)
    consumer: bool = False  # an enhanced fan-out consumer (Kinesis): records pushed as they arrive
    tumbling_window: int = 0  # seconds; 0 = no window


@dataclass(frozen=True)
class QueueEvent:
    """An SQS event source: Lambda polls the queue and invokes the function with batches of messages."""

    queue_resource: str
    batch_size: int = 10
    batch_window: int = 0  # maximumBatchingWindow, seconds
    report_batch_item_failures: bool = False
    maximum_concurrency: int = 5  # Lambda's pollers invoke at most this many batches at once


@dataclass(frozen=True)
class Function:
    name: str
    handler: str  # module.path:function
    timeout: float
    memory: int
    environment: dict[str, Any]
    reserved_concurrency: int | None
    routes: tuple[str, ...] = ()
    two_way_routes: tuple[str, ...] = ()
    authorizer: str | None = None
    identity_source: tuple[str, ...] = ()
    streams: tuple[StreamEvent, ...] = ()
    queues: tuple[QueueEvent, ...] = ()
    http_routes: tuple[tuple[str, str], ...] = ()  # (METHOD, /path/{param})
    snap_start: bool = False  # `snapStart`: environments resume from a snapshot of the init phase


@dataclass
class Service:
    name: str
    stage: str
    region: str
    route_selection: str
    functions: dict[str, Function]
    resources: dict[str, dict[str, Any]]
    custom: dict[str, Any] = field(default_factory=dict)
    # resources.extensions: properties merged into resources the framework generates (the WebSocket stage).
    extensions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def ws_route_table(self) -> dict[str, str]:
        """route key -> function name"""
        table: dict[str, str] = {}
        for fn in self.functions.values():
            for route in fn.routes:
                if route in table:
                    raise ConfigError(f"route {route} is bound to both {table[route]} and {fn.name}")
                table[route] = fn.name
        return table

    def resources_of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {
            name: res.get("Properties", {})
            for name, res in self.resources.items()
            if res.get("Type") == cfn_type
        }

    def websocket_throttles(self) -> tuple[tuple[float, float] | None, dict[str, tuple[float, float]]]:
        """The WebSocket stage's throttling, (rate, burst): every route's default, and per route."""
        props = (self.extensions.get("WebsocketsDeploymentStage") or {}).get("Properties") or {}

        def limits(settings: dict[str, Any] | None) -> tuple[float, float] | None:
            if not settings or "ThrottlingRateLimit" not in settings:
                return None
            return float(settings["ThrottlingRateLimit"]), float(settings.get("ThrottlingBurstLimit", 0))

        routes = {route: limits(v) for route, v in (props.get("RouteSettings") or {}).items()}
        return limits(props.get("DefaultRouteSettings")), {k: v for k, v in routes.items() if v}

    def stage_settings(self) -> dict[str, Any]:
        stages: dict[str, Any] = self.custom.get("stages", {})
        return dict(stages.get(self.stage, {}))


def _handler_path(spec: str) -> str:
    module, _, func = spec.rpartition(".")
    return module.replace("/", ".") + ":" + func


def _with_leaderboards(provider: dict[str, Any], custom: dict[str, Any]) -> dict[str, Any]:
    """custom.leaderboards as every function's LEADERBOARDS (JSON), as tools/leaderboards.cjs does for a
    deploy: the boards are data, declared once."""
    if "leaderboards" not in custom:
        return provider
    encoded = json.dumps(custom["leaderboards"], separators=(",", ":"))
    return {**provider, "environment": {**(provider.get("environment") or {}), "LEADERBOARDS": encoded}}


def load(path: str | Path = "serverless.yml", stage: str = "local", region: str = "us-east-1") -> Service:
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(), Loader=_CfnLoader)
    except FileNotFoundError:
        raise ConfigError(f"{path} not found (run from the repository root)") from None
    resolver = _Resolver(raw, stage, region)
    doc = resolver.restore_markers(resolver.resolve(raw))
    provider = _with_leaderboards(doc.get("provider", {}), doc.get("custom") or {})
    functions: dict[str, Function] = {}
    for name, spec in (doc.get("functions") or {}).items():
        functions[name] = _function(name, spec, provider)
    return Service(
        name=doc["service"],
        stage=stage,
        region=region,
        route_selection=provider.get("websocketsApiRouteSelectionExpression", "$request.body.action"),
        functions=functions,
        resources=(doc.get("resources") or {}).get("Resources", {}),
        custom=doc.get("custom") or {},
        extensions=(doc.get("resources") or {}).get("extensions") or {},
    )


def _function(name: str, spec: dict[str, Any], provider: dict[str, Any]) -> Function:
    routes: list[str] = []
    two_way: list[str] = []
    authorizer: str | None = None
    identity: tuple[str, ...] = ()
    streams: list[StreamEvent] = []
    queues: list[QueueEvent] = []
    http: list[tuple[str, str]] = []
    for event in spec.get("events") or []:
        if "websocket" in event:
            ws = event["websocket"]
            ws = {"route": ws} if isinstance(ws, str) else ws
            routes.append(ws["route"])
            if ws.get("routeResponseSelectionExpression"):
                two_way.append(ws["route"])
            if ws.get("authorizer"):
                auth = ws["authorizer"]
                authorizer = auth if isinstance(auth, str) else auth["name"]
                identity = tuple(auth.get("identitySource", ())) if isinstance(auth, dict) else ()
        elif "stream" in event:
            streams.append(_stream_event(event["stream"]))
        elif "sqs" in event:
            queues.append(_queue_event(event["sqs"]))
        elif "httpApi" in event:
            h = event["httpApi"]
            method, _, route_path = (h if isinstance(h, str) else f"{h['method']} {h['path']}").partition(" ")
            http.append((method.upper(), route_path))
    env = {**(provider.get("environment") or {}), **(spec.get("environment") or {})}
    reserved = spec.get("reservedConcurrency")
    return Function(
        name=name,
        handler=_handler_path(spec["handler"]),
        timeout=float(spec.get("timeout", provider.get("timeout", 6))),
        memory=int(spec.get("memorySize", provider.get("memorySize", 1024))),
        environment=env,
        reserved_concurrency=int(reserved) if reserved is not None else None,
        routes=tuple(routes),
        two_way_routes=tuple(two_way),
        authorizer=authorizer,
        identity_source=identity,
        streams=tuple(streams),
        queues=tuple(queues),
        http_routes=tuple(http),
        snap_start=str(spec.get("snapStart", False)).lower() == "true",
    )


def _resource_name(arn_ref: Any) -> str:
    if isinstance(arn_ref, dict) and "Fn::GetAtt" in arn_ref:
        return str(arn_ref["Fn::GetAtt"][0])
    raise ConfigError(f"stream/destination arn must be Fn::GetAtt of a resource in this file: {arn_ref!r}")


def _queue_event(q: dict[str, Any] | Any) -> QueueEvent:
    if not isinstance(q, dict):
        raise ConfigError("an sqs event must name its queue as `arn: Fn::GetAtt [Queue, Arn]`")
    return QueueEvent(
        queue_resource=_resource_name(q.get("arn")),
        batch_size=int(q.get("batchSize", 10)),
        batch_window=int(q.get("maximumBatchingWindow", 0)),
        report_batch_item_failures=q.get("functionResponseType") == "ReportBatchItemFailures",
        maximum_concurrency=int(q.get("maximumConcurrency", 5)),
    )


def _stream_event(s: dict[str, Any]) -> StreamEvent:
    source = s.get("type")
    if source not in ("kinesis", "dynamodb"):
        raise ConfigError(f"only kinesis and dynamodb stream events are supported, got {source!r}")
    arn = s["arn"]
    if source == "dynamodb" and not (
        isinstance(arn, dict) and list(arn.get("Fn::GetAtt", []))[1:] == ["StreamArn"]
    ):
        raise ConfigError(f"a dynamodb stream event's arn must be Fn::GetAtt [Table, StreamArn]: {arn!r}")
    if source == "kinesis" and s.get("tumblingWindowInSeconds"):
        raise ConfigError("tumbling windows on a Kinesis event are not emulated locally (only on dynamodb)")
    on_failure = ((s.get("destinations") or {}).get("onFailure") or {}).get("arn")
    return StreamEvent(
        source=str(source),
        consumer=bool(s.get("consumer")),
        tumbling_window=int(s.get("tumblingWindowInSeconds") or 0),
        stream_resource=_resource_name(arn),
        batch_size=int(s.get("batchSize", 10)),
        batch_window=int(s.get("batchWindow", 0)),
        parallelization_factor=int(s.get("parallelizationFactor", 1)),
        bisect_on_error=bool(s.get("bisectBatchOnFunctionError", False)),
        maximum_retry_attempts=int(s.get("maximumRetryAttempts", -1)),
        maximum_record_age=int(s.get("maximumRecordAgeInSeconds", -1)),
        report_batch_item_failures=s.get("functionResponseType") == "ReportBatchItemFailures",
        starting_position=str(s.get("startingPosition", "TRIM_HORIZON")),
        on_failure_resource=_resource_name(on_failure) if on_failure else None,
    )


# --- CloudFormation intrinsics, resolved against the local runtime ---------------------------------


@dataclass(frozen=True)
class LocalEndpoints:
    region: str
    websocket_api: str  # what ${WebsocketsApi}-based URLs become: the gateway's Management API URL
    http_api: str


def physical_name(service: Service, logical: str) -> str:
    res = service.resources.get(logical)
    if res is None:
        raise ConfigError(f"unknown resource {logical}")
    props = res.get("Properties", {})
    for key in ("TableName", "Name", "QueueName", "TopicName", "StateMachineName"):
        if key in props:
            return str(props[key])
    raise ConfigError(f"resource {logical} has no name property")


def arn_of(service: Service, logical: str) -> str:
    res = service.resources[logical]
    name = physical_name(service, logical)
    region = service.region
    kind = res["Type"]
    if kind == "AWS::DynamoDB::Table":
        return f"arn:aws:dynamodb:{region}:{ACCOUNT_ID}:table/{name}"
    if kind == "AWS::Kinesis::Stream":
        return f"arn:aws:kinesis:{region}:{ACCOUNT_ID}:stream/{name}"
    if kind == "AWS::SQS::Queue":
        return f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{name}"
    if kind == "AWS::StepFunctions::StateMachine":
        return f"arn:aws:states:{region}:{ACCOUNT_ID}:stateMachine:{name}"
    raise ConfigError(f"no local ARN for {kind}")


GAME_VARIABLES = ("GAME_SETTINGS", "LEADERBOARDS")


def game_environment(service: Service, function: str = "processor") -> dict[str, str]:
    """The modes and the boards (GAME_SETTINGS, LEADERBOARDS) exactly as `function` gets them: what a
    command or a test that runs game code outside a Lambda puts in its own environment."""
    env = service.functions[function].environment
    endpoints = LocalEndpoints(service.region, "", "")  # neither variable names an endpoint
    return {name: resolve_intrinsic(service, env[name], endpoints) for name in GAME_VARIABLES}


def resolve_intrinsic(service: Service, value: Any, endpoints: LocalEndpoints) -> str:
    """Turns an environment value of serverless.yml into the string a local Lambda sees."""
    if isinstance(value, (str, int, float, bool)):
        return str(value)
    if not isinstance(value, dict) or len(value) != 1:
        raise ConfigError(f"unsupported environment value {value!r}")
    ((fn, arg),) = value.items()
    if fn == "Ref":
        # CloudFormation's Ref of a state machine is its ARN; of a table, queue or stream, its name.
        if service.resources.get(arg, {}).get("Type") == "AWS::StepFunctions::StateMachine":
            return arn_of(service, arg)
        return physical_name(service, arg)
    if fn == "Fn::GetAtt":
        return arn_of(service, arg[0])
    if fn == "Fn::ToJsonString":
        # AWS::LanguageExtensions' function: the object as JSON (numbers stay numbers; the local resolver
        # leaves a `${..., 30}` default as the string "30", which the functions read as a number).
        return json.dumps(arg, separators=(",", ":"), sort_keys=True)
    if fn == "Fn::Join":
        sep, parts = arg
        return str(sep).join(resolve_intrinsic(service, p, endpoints) for p in parts)
    if fn == "Fn::Sub":
        template = arg if isinstance(arg, str) else arg[0]
        # An API Gateway URL (https://${WebsocketsApi}.execute-api...) is the local gateway's URL.
        if "${WebsocketsApi}" in template:
            return endpoints.websocket_api
        if "${HttpApi}" in template:
            return endpoints.http_api

        def sub(m: re.Match[str]) -> str:
            key = m.group(1)
            fixed = {
                "AWS::Region": service.region,
                "AWS::AccountId": ACCOUNT_ID,
                "AWS::URLSuffix": "amazonaws.com",
            }
            if key in fixed:
                return fixed[key]
            if key.endswith(".Arn"):
                return arn_of(service, key[:-4])
            return physical_name(service, key)

        return re.sub(r"\$\{([^}]+)\}", sub, template)
    raise ConfigError(f"unsupported intrinsic {fn}")
