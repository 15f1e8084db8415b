"""The local runtime and the deployed template describe the same system.

The local runtime wires itself from serverless.yml (stage `local`); AWS gets the template osls makes of
the same file (stage `dev`). Names differ by stage; everything else must not: functions, handlers and
timeouts, WebSocket and HTTP routes, tables with their keys and indexes, the stream, the queue, and
the event-source mappings (checked in test_template.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from local import slsconfig
from tests.deploy.conftest import SERVERLESS_YML, Resources


@pytest.fixture(scope="module")
def local_service() -> slsconfig.Service:
    return slsconfig.load(SERVERLESS_YML, "local")


def _of_type(resources: Resources, kind: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in resources.values() if r["Type"] == kind]


def test_same_functions_handlers_timeouts_and_memory(resources: Resources, local_service: Any) -> None:
    deployed = {
        p["FunctionName"].removeprefix("gamebackend-dev-"): (p["Handler"], p["Timeout"], p["MemorySize"])
        for p in _of_type(resources, "AWS::Lambda::Function")
    }
    wired = {
        name: (fn.handler.replace(".", "/").replace(":", "."), int(fn.timeout), fn.memory)
        for name, fn in local_service.functions.items()
    }
    assert wired == deployed


def test_same_routes(resources: Resources, local_service: Any) -> None:
    routes = {(p["ApiId"]["Ref"], p["RouteKey"]) for p in _of_type(resources, "AWS::ApiGatewayV2::Route")}
    deployed_ws = {key for api, key in routes if api == "WebsocketsApi"}
    deployed_http = {key for api, key in routes if api == "HttpApi"}
    assert deployed_ws == set(local_service.ws_route_table())
    wired_http = {f"{m} {p}" for fn in local_service.functions.values() for m, p in fn.http_routes}
    assert deployed_http == wired_http


def test_same_tables_stream_and_queue(resources: Resources, local_service: Any) -> None:
    def shape(props: dict[str, Any]) -> tuple[Any, ...]:
        gsis = sorted(
            (g["IndexName"], str(g["KeySchema"]), str(g["Projection"]))
            for g in props.get("GlobalSecondaryIndexes", [])
        )
        return (
            props["TableName"].split("-", 2)[2],  # gamebackend-<stage>-<table>
            sorted((a["AttributeName"], a["AttributeType"]) for a in props["AttributeDefinitions"]),
            str(props["KeySchema"]),
            gsis,
            props.get("BillingMode"),
            str(props.get("TimeToLiveSpecification")),
        )

    deployed = sorted(shape(p) for p in _of_type(resources, "AWS::DynamoDB::Table"))
    wired = sorted(shape(p) for p in local_service.resources_of_type("AWS::DynamoDB::Table").values())
    assert wired == deployed
    (stream,) = _of_type(resources, "AWS::Kinesis::Stream")
    (local_stream,) = local_service.resources_of_type("AWS::Kinesis::Stream").values()
    assert stream["StreamModeDetails"] == local_stream["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    queues = [p["QueueName"].split("-", 2)[2] for p in _of_type(resources, "AWS::SQS::Queue")]
    local_queues = [
        p["QueueName"].split("-", 2)[2] for p in local_service.resources_of_type("AWS::SQS::Queue").values()
    ]
    assert queues == local_queues == ["actions-dlq", "timers", "timers-dlq", "projector-dlq"]
