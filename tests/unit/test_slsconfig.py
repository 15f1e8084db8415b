"""The local runtime reads everything from serverless.yml: check what it reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from local import slsconfig


def test_routes_functions_and_resources_come_from_serverless_yml(service: Any) -> None:
    assert service.ws_route_table() == {
        "$connect": "connect",
        "$disconnect": "disconnect",
        "$default": "message",
        "ping": "message",
        "join": "message",
        "act": "message",
        "leave": "message",
        "leaderboard": "message",
    }
    assert service.route_selection == "$request.body.action"
    assert service.functions["connect"].authorizer == "authorizer"
    assert service.functions["connect"].identity_source == ("route.request.querystring.token",)
    assert service.functions["message"].handler == "backend.handlers.message:handler"
    assert set(service.resources_of_type("AWS::DynamoDB::Table")) >= {"ConnectionsTable"}


def test_stage_variables_resolve(service: Any) -> None:
    env = service.functions["connect"].environment
    assert env["CONNECTIONS_TABLE"] == "gamebackend-local-connections"
    assert env["STAGE"] == "local"
    assert service.functions["authorizer"].environment["JWT_SECRET"].startswith("local-")


def test_deployed_stages_carry_no_secret_only_its_parameter_name() -> None:
    dev = slsconfig.load(Path(__file__).parents[2] / "serverless.yml", "dev")
    env = dev.functions["authorizer"].environment
    assert env["JWT_SECRET"] == ""
    assert env["JWT_SECRET_PARAM"] == "/gamebackend/dev/jwt-secret"


def test_ssm_references_fall_back_to_their_default_offline(tmp_path: Path) -> None:
    doc = tmp_path / "serverless.yml"
    doc.write_text(
        "service: x\nprovider: {name: aws}\nfunctions:\n"
        "  f: {handler: a.h, environment: {A: \"${ssm:/x/y, 'fallback'}\"}}\n"
    )
    assert slsconfig.load(doc).functions["f"].environment["A"] == "fallback"


def test_intrinsics_resolve_to_local_endpoints(service: Any) -> None:
    ep = slsconfig.LocalEndpoints("us-east-1", "http://127.0.0.1:9", "http://127.0.0.1:8")
    env = service.functions["message"].environment
    assert slsconfig.resolve_intrinsic(service, env["WS_API_ENDPOINT"], ep) == "http://127.0.0.1:9"
    assert (
        slsconfig.resolve_intrinsic(service, {"Ref": "ConnectionsTable"}, ep)
        == "gamebackend-local-connections"
    )
    assert slsconfig.resolve_intrinsic(service, {"Fn::GetAtt": ["ActionStream", "Arn"]}, ep).endswith(
        ":stream/gamebackend-local-actions"
    )


def test_unresolvable_variables_are_reported(tmp_path: Path) -> None:
    bad = tmp_path / "serverless.yml"
    bad.write_text("service: x\nprovider:\n  name: aws\n  environment:\n    A: ${self:custom.nothing}\n")
    with pytest.raises(slsconfig.ConfigError, match=r"custom\.nothing"):
        slsconfig.load(bad)


def test_a_route_bound_twice_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "serverless.yml"
    bad.write_text(
        "service: x\nprovider: {name: aws}\nfunctions:\n"
        "  a: {handler: a.h, events: [{websocket: {route: ping}}]}\n"
        "  b: {handler: b.h, events: [{websocket: {route: ping}}]}\n"
    )
    with pytest.raises(slsconfig.ConfigError, match="ping"):
        slsconfig.load(bad).ws_route_table()


def test_a_local_stack_can_take_a_deployed_stages_windows() -> None:
    """`gamebackend local --windows-of dev` (load runs, benchmarks): the projector's window as dev has
    it in serverless.yml, everything else the local stage's."""
    from local.runtime import LocalRuntime, RuntimeConfig

    root = Path(__file__).resolve().parents[2] / "serverless.yml"
    dev = slsconfig.load(root, "dev").stage_settings()["leaderboardWindow"]
    local = slsconfig.load(root, "local").stage_settings()["leaderboardWindow"]
    assert dev != local  # else this test proves nothing
    plain = LocalRuntime(RuntimeConfig(config_path=root)).service
    taken = LocalRuntime(RuntimeConfig(config_path=root, windows_of="dev")).service
    assert [ev.tumbling_window for ev in plain.functions["projector"].streams] == [int(local)]
    assert [ev.tumbling_window for ev in taken.functions["projector"].streams] == [int(dev)]
    assert taken.stage == "local"
    for name, fn in taken.functions.items():
        assert [(ev.source, ev.batch_size) for ev in fn.streams] == [
            (ev.source, ev.batch_size) for ev in plain.functions[name].streams
        ]
