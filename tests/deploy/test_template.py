"""Checks the CloudFormation template that `osls package` makes of serverless.yml, offline.

`make deploy-check` packages first (.serverless/cloudformation-template-update-stack.json), then runs
these. Run alone without a fresh template, they skip and say so.

What is checked: each function runs with its own role, which grants exactly what permissions.py says
that function calls (no wildcard action, "*" as a resource only where AWS requires it); the data at
rest is encrypted and the tables are point-in-time recoverable; the WebSocket routes and the Kinesis
event-source mapping in the template are those serverless.yml declares.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.deploy.conftest import SERVERLESS_YML, Resources, invoked
from tests.deploy.permissions import CALLS, STAR_RESOURCE_ACTIONS, STREAM, function_logical_id, granted


@pytest.fixture(scope="module")
def declared() -> Any:
    """serverless.yml as the project reads it (the dev stage, as packaged)."""
    from local import slsconfig

    return slsconfig.load(SERVERLESS_YML, "dev")


@pytest.fixture(scope="module")
def stage(resources: Resources) -> str:
    functions = of_type(resources, "AWS::Lambda::Function").values()
    stages = {str(f["Properties"]["Environment"]["Variables"]["STAGE"]) for f in functions}
    assert len(stages) == 1, stages
    return stages.pop()


def of_type(resources: Resources, cfn_type: str) -> Resources:
    return {name: r for name, r in resources.items() if r["Type"] == cfn_type}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


_ARN_PREFIX = re.compile(r"^arn:\$\{AWS::Partition\}:([a-z0-9-]+):\$\{AWS::Region\}:\$\{AWS::AccountId\}:")


def render(resource: Any) -> str:
    """A policy Resource as permissions.py names it: a logical ID, `X/index/*`, `kms:key/*`, or `*`."""
    if isinstance(resource, str):
        return resource
    if isinstance(resource, dict) and len(resource) == 1:
        ((fn, arg),) = resource.items()
        if fn == "Fn::GetAtt" and list(arg)[1:] == ["Arn"]:
            return str(arg[0])
        if fn == "Fn::GetAtt" and list(arg)[1:] == ["StreamArn"]:
            return f"{arg[0]}/stream"
        if fn == "Ref":
            return str(arg)
        if fn == "Fn::Sub" and isinstance(arg, str):
            text = _ARN_PREFIX.sub(r"\1:", arg)
            return re.sub(r"\$\{([A-Za-z0-9]+)(?:\.Arn)?\}", r"\1", text)
    raise AssertionError(f"a policy resource permissions.py cannot name: {resource!r}")


def policy_documents(resources: Resources) -> Iterator[tuple[str, dict[str, Any]]]:
    """(owner, policy document) for every identity policy in the template."""
    for name, res in resources.items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                yield f"{name}/{policy['PolicyName']}", policy["PolicyDocument"]
        elif res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            yield name, props["PolicyDocument"]


def statements(resources: Resources) -> Iterator[tuple[str, dict[str, Any]]]:
    for owner, doc in policy_documents(resources):
        for st in as_list(doc["Statement"]):
            yield owner, st


def role_of(function: str, resources: Resources) -> str:
    fn = resources[f"{function_logical_id(function)}LambdaFunction"]
    role = fn["Properties"]["Role"]
    assert isinstance(role, dict) and "Fn::GetAtt" in role, f"{function}: Role is not of this stack: {role}"
    name = str(role["Fn::GetAtt"][0])
    assert resources[name]["Type"] == "AWS::IAM::Role"
    return name


def grants_of(role: dict[str, Any]) -> dict[str, set[str]]:
    """action -> rendered resources, over every statement of the role's inline policies."""
    out: dict[str, set[str]] = {}
    for policy in role["Properties"].get("Policies", []):
        for st in as_list(policy["PolicyDocument"]["Statement"]):
            assert st["Effect"] == "Allow", st
            for action in as_list(st["Action"]):
                out.setdefault(action, set()).update(render(r) for r in as_list(st["Resource"]))
    return out


# --- IAM -------------------------------------------------------------------------------------------


def test_permissions_list_names_exactly_the_functions_of_serverless_yml(declared: Any) -> None:
    assert set(CALLS) == set(declared.functions), "tests/deploy/permissions.py CALLS vs serverless.yml"


def test_every_function_has_a_role_of_its_own(resources: Resources, declared: Any) -> None:
    roles = {fn: role_of(fn, resources) for fn in declared.functions}
    # osls gives a function without `role:` its shared default role, with osls' own grants.
    defaulted = sorted(fn for fn, role in roles.items() if role == "IamRoleLambdaExecution")
    assert not defaulted, f"no `role:` in serverless.yml for {defaulted} (osls' shared default role)"
    assert len(set(roles.values())) == len(roles), f"functions share a role: {roles}"
    assert "IamRoleLambdaExecution" not in resources


def test_each_role_grants_exactly_what_the_function_calls(
    resources: Resources, declared: Any, stage: str
) -> None:
    for fn in declared.functions:
        assert fn in CALLS, f"{fn}: no entry in tests/deploy/permissions.py CALLS"
        role = resources[role_of(fn, resources)]
        assert grants_of(role) == granted(fn, stage), f"{fn}: its role vs tests/deploy/permissions.py"


def test_roles_have_no_managed_policies_or_other_attached_grants(resources: Resources) -> None:
    for name, role in of_type(resources, "AWS::IAM::Role").items():
        assert "ManagedPolicyArns" not in role["Properties"], name
    # Every grant lives inline in a function's role, where the exact check above sees it.
    assert not of_type(resources, "AWS::IAM::Policy")
    assert not of_type(resources, "AWS::IAM::ManagedPolicy")


# The one role that is not a function's: Step Functions assumes it to invoke the saga's steps.
STATE_MACHINE_ROLES = {"MatchEndSagaRole": {"lambda:InvokeFunction": {"SettlementLambdaFunction:snapstart"}}}


def test_the_state_machine_role_is_assumed_by_step_functions_and_invokes_only_the_saga_steps(
    resources: Resources,
) -> None:
    machines = of_type(resources, "AWS::StepFunctions::StateMachine")
    assert {render(m["Properties"]["RoleArn"]) for m in machines.values()} == set(STATE_MACHINE_ROLES)
    for name, expected in STATE_MACHINE_ROLES.items():
        role = resources[name]["Properties"]
        (st,) = as_list(role["AssumeRolePolicyDocument"]["Statement"])
        assert as_list(st["Principal"]["Service"]) == ["states.amazonaws.com"], name
        assert grants_of(resources[name]) == expected, name


def test_roles_are_assumable_by_lambda_only(resources: Resources) -> None:
    for name, role in of_type(resources, "AWS::IAM::Role").items():
        if name in STATE_MACHINE_ROLES:
            continue
        trust = as_list(role["Properties"]["AssumeRolePolicyDocument"]["Statement"])
        assert len(trust) == 1, name
        (st,) = trust
        assert st["Effect"] == "Allow" and set(st) == {"Effect", "Principal", "Action"}, name
        assert st["Principal"] == {"Service": st["Principal"]["Service"]}, name
        assert as_list(st["Principal"]["Service"]) == ["lambda.amazonaws.com"], name
        assert as_list(st["Action"]) == ["sts:AssumeRole"], name


def test_no_wildcard_action_and_no_negated_elements(resources: Resources) -> None:
    for owner, st in statements(resources):
        assert "NotAction" not in st and "NotResource" not in st and "NotPrincipal" not in st, owner
        assert st["Effect"] == "Allow", owner
        for action in as_list(st["Action"]):
            assert "*" not in action and "?" not in action, f"{owner}: wildcard action {action}"


def test_star_resource_only_where_aws_requires_it(resources: Resources) -> None:
    for owner, st in statements(resources):
        if "*" in as_list(st["Resource"]):
            extra = set(as_list(st["Action"])) - STAR_RESOURCE_ACTIONS
            assert not extra, f"{owner} ({st.get('Sid')}): Resource '*' for {sorted(extra)}"


def test_stream_key_grants_are_bound_to_the_stream_through_kinesis(resources: Resources) -> None:
    seen = 0
    for owner, st in statements(resources):
        if not any(a.startswith("kms:") for a in as_list(st["Action"])):
            continue
        seen += 1
        cond = st.get("Condition", {}).get("StringEquals", {})
        assert cond.get("kms:ViaService") == {"Fn::Sub": "kinesis.${AWS::Region}.${AWS::URLSuffix}"}, owner
        assert cond.get("kms:EncryptionContext:aws:kinesis:arn") == {"Fn::GetAtt": [STREAM, "Arn"]}, owner
    # One such statement per function that calls KMS (through Kinesis).
    assert seen == sum(any(a.startswith("kms:") for a in calls) for calls in CALLS.values())


def test_query_grants_on_a_table_cover_its_indexes(resources: Resources, declared: Any) -> None:
    with_indexes = {
        name
        for name, props in declared.resources_of_type("AWS::DynamoDB::Table").items()
        if props.get("GlobalSecondaryIndexes") or props.get("LocalSecondaryIndexes")
    }
    for fn in declared.functions:
        queried = grants_of(resources[role_of(fn, resources)]).get("dynamodb:Query", set())
        for table in queried & with_indexes:
            assert f"{table}/index/*" in queried, f"{fn}: Query on {table} but not on its indexes"


# --- data at rest ----------------------------------------------------------------------------------


def test_tables_have_point_in_time_recovery_and_encryption(resources: Resources) -> None:
    tables = of_type(resources, "AWS::DynamoDB::Table")
    assert tables
    for name, table in tables.items():
        props = table["Properties"]
        pitr = props.get("PointInTimeRecoverySpecification", {})
        assert pitr.get("PointInTimeRecoveryEnabled") is True, f"{name}: no point-in-time recovery"
        assert props.get("SSESpecification", {}).get("SSEEnabled") is True, f"{name}: no SSESpecification"


def test_streams_are_kms_encrypted(resources: Resources) -> None:
    streams = of_type(resources, "AWS::Kinesis::Stream")
    assert streams
    for name, stream in streams.items():
        enc = stream["Properties"].get("StreamEncryption", {})
        assert enc.get("EncryptionType") == "KMS" and enc.get("KeyId"), f"{name}: not KMS-encrypted"


def test_queues_are_encrypted(resources: Resources) -> None:
    queues = of_type(resources, "AWS::SQS::Queue")
    assert queues
    for name, queue in queues.items():
        props = queue["Properties"]
        assert props.get("SqsManagedSseEnabled") is True or props.get("KmsMasterKeyId"), f"{name}: no SSE"


# --- wiring ----------------------------------------------------------------------------------------


def test_websocket_routes_are_those_of_serverless_yml(resources: Resources, declared: Any) -> None:
    # The WebSocket API's routes only (an HTTP API's routes are AWS::ApiGatewayV2::Route too).
    routes = {
        name: r
        for name, r in of_type(resources, "AWS::ApiGatewayV2::Route").items()
        if r["Properties"]["ApiId"] == {"Ref": "WebsocketsApi"}
    }
    integrations = of_type(resources, "AWS::ApiGatewayV2::Integration")
    in_template: dict[str, str] = {}
    for route in routes.values():
        props = route["Properties"]
        integration = props["Target"]["Fn::Join"][1][1]["Ref"]
        uri = integrations[integration]["Properties"]["IntegrationUri"]
        uri_text = json.dumps(uri)
        owners = [fn for fn in declared.functions if f'"{function_logical_id(fn)}LambdaFunction"' in uri_text]
        assert len(owners) == 1, (props["RouteKey"], owners)
        in_template[props["RouteKey"]] = owners[0]
    assert in_template == declared.ws_route_table()
    assert {"$connect", "$disconnect", "$default"} <= set(in_template)
    # Two-way routes (routeResponseSelectionExpression) answer through a route response.
    answered = {
        routes[r["Properties"]["RouteId"]["Ref"]]["Properties"]["RouteKey"]
        for r in of_type(resources, "AWS::ApiGatewayV2::RouteResponse").values()
    }
    assert answered == {route for f in declared.functions.values() for route in f.two_way_routes}


def test_connect_route_is_guarded_by_the_authorizer(resources: Resources) -> None:
    for route in of_type(resources, "AWS::ApiGatewayV2::Route").values():
        props = route["Properties"]
        if props["RouteKey"] == "$connect" and props["ApiId"] == {"Ref": "WebsocketsApi"}:
            assert props.get("AuthorizationType") == "CUSTOM"
            assert props.get("AuthorizerId") == {"Ref": "AuthorizerWebsocketsAuthorizer"}
            return
    raise AssertionError("no $connect route")


def _function_of(target: Any) -> str:
    """The function's logical ID in a mapping's FunctionName: its ARN, or its alias's (SnapStart)."""
    arn = target["Fn::Join"][1][0] if "Fn::Join" in target else target
    return str(arn["Fn::GetAtt"][0])


def test_stream_event_source_mappings_are_those_serverless_yml_declares(
    resources: Resources, declared: Any
) -> None:
    every = of_type(resources, "AWS::Lambda::EventSourceMapping").values()
    mappings = [m for m in every if "StartingPosition" in m["Properties"]]  # SQS's: the next test
    expected = {fn: s for fn, f in declared.functions.items() for s in f.streams}
    assert len(mappings) == len(expected) == 2
    by_function = {_function_of(m["Properties"]["FunctionName"]): m["Properties"] for m in mappings}
    for fn, s in expected.items():
        props = by_function[f"{function_logical_id(fn)}LambdaFunction"]
        assert props["FunctionName"] == invoked(function_logical_id(fn), resources)
        if s.source == "dynamodb":
            assert props["EventSourceArn"] == {"Fn::GetAtt": [s.stream_resource, "StreamArn"]}
        elif s.consumer:
            # Enhanced fan-out: the mapping reads through the stream's consumer, not the stream.
            assert props["EventSourceArn"] == {"Ref": "ActionStreamConsumer"}
            consumer = resources["ActionStreamConsumer"]
            assert consumer["Type"] == "AWS::Kinesis::StreamConsumer"
            assert consumer["Properties"]["StreamARN"] == {"Fn::GetAtt": [s.stream_resource, "Arn"]}
        else:
            assert props["EventSourceArn"] == {"Fn::GetAtt": [s.stream_resource, "Arn"]}
        assert props["StartingPosition"] == s.starting_position
        assert props["BatchSize"] == s.batch_size
        assert props.get("MaximumBatchingWindowInSeconds", 0) == s.batch_window
        assert props.get("ParallelizationFactor", 1) == s.parallelization_factor
        assert props.get("BisectBatchOnFunctionError", False) is s.bisect_on_error
        assert props.get("MaximumRetryAttempts", -1) == s.maximum_retry_attempts
        assert props.get("MaximumRecordAgeInSeconds", -1) == s.maximum_record_age
        assert props.get("TumblingWindowInSeconds", 0) == s.tumbling_window
        reports_failures = "ReportBatchItemFailures" in props.get("FunctionResponseTypes", [])
        assert reports_failures is s.report_batch_item_failures
        destination = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        assert destination == {"Fn::GetAtt": [s.on_failure_resource, "Arn"]}
        assert props.get("Enabled", True) is True
    # The hot path has no batching window; the cold path aggregates over a window of its own.
    assert expected["processor"].consumer and expected["processor"].batch_window == 0
    assert expected["projector"].tumbling_window > 0


def test_the_queue_event_source_mapping_is_the_one_serverless_yml_declares(
    resources: Resources, declared: Any
) -> None:
    every = of_type(resources, "AWS::Lambda::EventSourceMapping").values()
    mappings = [m["Properties"] for m in every if "StartingPosition" not in m["Properties"]]
    expected = {fn: q for fn, f in declared.functions.items() for q in f.queues}
    assert list(expected) == ["timers"] and len(mappings) == 1
    (props,) = mappings
    q = expected["timers"]
    assert props["FunctionName"] == invoked(function_logical_id("timers"), resources)
    assert props["EventSourceArn"] == {"Fn::GetAtt": [q.queue_resource, "Arn"]}
    assert props["BatchSize"] == q.batch_size
    assert props.get("MaximumBatchingWindowInSeconds", 0) == q.batch_window
    assert props["ScalingConfig"] == {"MaximumConcurrency": q.maximum_concurrency}
    reports_failures = "ReportBatchItemFailures" in props.get("FunctionResponseTypes", [])
    assert reports_failures is q.report_batch_item_failures
    # AWS: the queue's visibility timeout at least six times the function's timeout; failures redrive.
    queue = resources[q.queue_resource]["Properties"]
    timeout = resources[f"{function_logical_id('timers')}LambdaFunction"]["Properties"]["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["TimerDeadLetterQueue", "Arn"]}


def test_the_matches_table_streams_old_and_new_images(resources: Resources) -> None:
    table = resources["MatchesTable"]["Properties"]
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
