"""SnapStart in the packaged templates (dev and prod): on for every function, on published versions, and
every event source and route invoking the version's alias, never the unqualified function ($LATEST,
which SnapStart does not apply to). And what SnapStart rules out: provisioned concurrency, EFS,
ephemeral storage over 512 MB, a runtime older than python3.12.

A new function follows by setting `snapStart: ${self:custom.snapStart}` (serverless.yml): osls then makes
its version and alias and points its events at the alias; these tests fail for a function without it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.deploy.conftest import SNAPSTART_ALIAS, Resources

# Resources through which something invokes a function: each must name an alias.
INVOKERS = {
    "AWS::Lambda::Permission",
    "AWS::Lambda::EventSourceMapping",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::ApiGatewayV2::Integration",
    "AWS::ApiGatewayV2::Authorizer",
    "AWS::ApiGateway::Method",
    "AWS::SNS::Subscription",
    "AWS::Events::Rule",
    "AWS::Scheduler::Schedule",
    "AWS::StepFunctions::StateMachine",
}


@pytest.fixture(scope="module", params=["dev", "prod"])
def stage_resources(request: pytest.FixtureRequest) -> Resources:
    name = "resources" if request.param == "dev" else "prod_resources"
    res: Resources = request.getfixturevalue(name)
    return res


def functions(resources: Resources) -> dict[str, dict[str, Any]]:
    """Logical ID prefix (e.g. `Processor`) -> the function's properties."""
    return {
        name.removesuffix("LambdaFunction"): r["Properties"]
        for name, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function"
    }


def test_every_function_has_snapstart_on_published_versions(stage_resources: Resources) -> None:
    found = functions(stage_resources)
    assert found
    for fn, props in found.items():
        assert props.get("SnapStart") == {"ApplyOn": "PublishedVersions"}, fn


def test_every_function_runs_a_runtime_snapstart_supports(stage_resources: Resources) -> None:
    for fn, props in functions(stage_resources).items():
        m = re.fullmatch(r"python3\.(\d+)", props["Runtime"])
        assert m and int(m.group(1)) >= 12, (fn, props["Runtime"])
        assert props.get("EphemeralStorage", {"Size": 512})["Size"] <= 512, fn
        assert "FileSystemConfigs" not in props, fn


def test_each_function_has_an_alias_on_a_published_version(stage_resources: Resources) -> None:
    aliases = {n: r["Properties"] for n, r in stage_resources.items() if r["Type"] == "AWS::Lambda::Alias"}
    for fn in functions(stage_resources):
        alias = aliases.get(f"{fn}SnapStartLambdaAlias")
        assert alias is not None, f"{fn} has no SnapStart alias"
        assert alias["Name"] == SNAPSTART_ALIAS
        assert alias["FunctionName"] == {"Ref": f"{fn}LambdaFunction"}
        assert "ProvisionedConcurrencyConfig" not in alias, fn  # SnapStart rules it out
        version_id, attribute = alias["FunctionVersion"]["Fn::GetAtt"]
        assert attribute == "Version"
        version = stage_resources[version_id]
        assert version["Type"] == "AWS::Lambda::Version"
        assert version["Properties"]["FunctionName"] == {"Ref": f"{fn}LambdaFunction"}


def _references(node: Any, functions: set[str]) -> Iterator[tuple[str, bool]]:
    """(function, through its alias?) for every place `node` names one of `functions`."""
    if isinstance(node, dict):
        for fn in functions:
            arn = {"Fn::GetAtt": [f"{fn}LambdaFunction", "Arn"]}
            if node == {"Fn::Join": [":", [arn, SNAPSTART_ALIAS]]}:
                yield fn, True
                return
            if node in (arn, {"Ref": f"{fn}LambdaFunction"}):
                yield fn, False
                return
        for value in node.values():
            yield from _references(value, functions)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value, functions)


def test_every_event_source_and_route_invokes_the_alias(stage_resources: Resources) -> None:
    names = set(functions(stage_resources))
    invoked_functions: set[str] = set()
    for name, r in stage_resources.items():
        if r["Type"] not in INVOKERS:
            continue
        for fn, through_alias in _references(r["Properties"], names):
            assert through_alias, f"{name} invokes {fn} unqualified ($LATEST): not its SnapStart version"
            invoked_functions.add(fn)
    # Every function is invoked by something, so each was checked.
    assert invoked_functions == names


def test_downstream_tracing_is_what_docs_operations_says(stage_resources: Resources) -> None:
    """The X-Ray SDK loads only where TRACE_DOWNSTREAM is true: the projector (docs/operations.md)."""
    tracing = {
        fn: props["Environment"]["Variables"].get("TRACE_DOWNSTREAM")
        for fn, props in functions(stage_resources).items()
    }
    assert {fn for fn, v in tracing.items() if v == "true"} == {"Projector"}, tracing
    assert all(v in ("true", "false") for v in tracing.values()), tracing
    for fn, props in functions(stage_resources).items():
        assert props["TracingConfig"] == {"Mode": "Active"}, fn  # Lambda's own segments, everywhere
