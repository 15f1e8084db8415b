"""The local Step Functions interpreter (local/stepfunctions.py): what ASL it runs, what it refuses, and
its API's idempotent StartExecution. The match-end saga's own paths: tests/store/test_settlement.py."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from local import stepfunctions
from local.slsconfig import ConfigError
from local.stepfunctions import Execution, LocalStepFunctions, StateMachine

FN = "arn:aws:lambda:us-east-1:000000000000:function:svc-local-fn"


class Calls:
    """A fake Lambda: answers from a script per call, and records each payload."""

    def __init__(self, *answers: tuple[bool, Any]) -> None:
        self.answers = list(answers)
        self.payloads: list[Any] = []

    async def __call__(self, resource: str, payload: Any) -> tuple[bool, Any]:
        assert resource == FN
        self.payloads.append(payload)
        return self.answers.pop(0)


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def failure(error: str) -> tuple[bool, Any]:
    return False, {"errorType": error, "errorMessage": f"{error} happened"}


async def execute(
    definition: dict[str, Any], data: Any, invoke: Calls, sleep: Sleeps | None = None
) -> Execution:
    stepfunctions.validate(definition)
    e = Execution("arn:exec:run-1", "run-1", "arn:machine", data)
    await stepfunctions.run(definition, e, invoke, sleep or Sleeps())
    return e


def entered(e: Execution) -> list[str]:
    return [ev["name"] for ev in e.history if ev["type"].endswith("StateEntered")]


async def test_paths_parameters_and_the_context_shape_what_a_task_gets_and_what_it_returns() -> None:
    definition = {
        "StartAt": "Tag",
        "States": {
            "Tag": {"Type": "Pass", "Result": {"by": "pass"}, "ResultPath": "$.tag", "Next": "Work"},
            "Work": {
                "Type": "Task",
                "Resource": FN,
                "InputPath": "$.job",
                "Parameters": {"n.$": "$.n", "run.$": "$$.Execution.Name", "fixed": {"k": 1}},
                "ResultPath": "$.out.work",
                "Next": "Done",
            },
            "Done": {"Type": "Succeed", "OutputPath": "$.out"},
        },
    }
    calls = Calls((True, {"doubled": 6}))
    e = await execute(definition, {"job": {"n": 3}}, calls)
    assert calls.payloads == [{"n": 3, "run": "run-1", "fixed": {"k": 1}}]
    assert (e.status, e.output) == ("SUCCEEDED", {"work": {"doubled": 6}})
    assert entered(e) == ["Tag", "Work", "Done"]


async def test_a_retrier_retries_with_backoff_then_the_task_succeeds() -> None:
    retry = [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2}]
    definition = {
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": FN, "Retry": retry, "End": True}},
    }
    sleeps = Sleeps()
    e = await execute(definition, {}, Calls(failure("Boom"), failure("Boom"), (True, "ok")), sleeps)
    assert (e.status, e.output) == ("SUCCEEDED", "ok")
    assert sleeps.delays == [1.0, 2.0]


async def test_retries_end_at_max_attempts_and_a_zero_attempt_retrier_stops_its_errors_at_once() -> None:
    retry = [
        {"ErrorEquals": ["Permanent"], "MaxAttempts": 0},
        {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "MaxAttempts": 1, "MaxDelaySeconds": 1},
    ]
    definition = {
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": FN, "Retry": retry, "End": True}},
    }
    sleeps = Sleeps()
    e = await execute(definition, {}, Calls(failure("Permanent")), sleeps)
    assert (e.status, e.error, sleeps.delays) == ("FAILED", "Permanent", [])
    e = await execute(definition, {}, Calls(failure("Flaky"), failure("Flaky")), sleeps)
    assert (e.status, e.error, sleeps.delays) == ("FAILED", "Flaky", [1.0])  # MaxDelaySeconds caps 2 s
    assert json.loads(e.cause or "")["errorMessage"] == "Flaky happened"


async def test_a_catcher_puts_the_error_at_its_result_path_and_goes_on() -> None:
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": FN,
                "Catch": [
                    {"ErrorEquals": ["Other"], "Next": "Never"},
                    {"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.failure", "Next": "Undo"},
                ],
                "Next": "Never",
            },
            "Undo": {"Type": "Pass", "End": True},
            "Never": {"Type": "Fail", "Error": "Wrong"},
        },
    }
    e = await execute(definition, {"keep": 1}, Calls(failure("Boom")))
    assert e.status == "SUCCEEDED"
    assert e.output["keep"] == 1 and e.output["failure"]["Error"] == "Boom"
    assert entered(e) == ["T", "Undo"]


async def test_a_fail_state_fails_the_execution_with_its_error_and_cause() -> None:
    definition = {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Nope", "Cause": "because"}}}
    e = await execute(definition, {}, Calls())
    assert (e.status, e.error, e.cause) == ("FAILED", "Nope", "because")


@pytest.mark.parametrize(
    "state",
    [
        {"Type": "Choice", "Choices": [], "Default": "X"},
        {"Type": "Map", "End": True},
        {"Type": "Wait", "Seconds": 1, "End": True},
        {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem", "End": True},
        {"Type": "Task", "Resource": FN, "ResultSelector": {"a.$": "$.b"}, "End": True},
        {"Type": "Task", "Resource": FN, "Parameters": {"a.$": "States.Format('{}', $.b)"}, "End": True},
        {"Type": "Task", "Resource": FN, "InputPath": "$.list[0]", "End": True},
        {"Type": "Task", "Resource": FN, "Next": "Nowhere"},
        {"Type": "Task", "Resource": FN},  # neither Next nor End
        {
            "Type": "Task",
            "Resource": FN,
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Nowhere"}],
            "End": True,
        },
    ],
)
def test_what_the_interpreter_does_not_implement_is_refused_when_loaded(state: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        stepfunctions.validate({"StartAt": "S", "States": {"S": state}})


def test_the_match_end_saga_of_serverless_yml_loads_with_its_steps_resolved(service: Any) -> None:
    machines = stepfunctions.load(service)
    (saga,) = [m for m in machines.values() if m.name.endswith("-match-end")]
    resources = {s.get("Resource") for s in saga.definition["States"].values() if s["Type"] == "Task"}
    assert resources == {stepfunctions.function_arn(service, "settlement") + ":snapstart"}
    assert {stepfunctions.function_name(r) for r in resources} == {"gamebackend-local-settlement"}
    assert stepfunctions.task_functions(service, machines) == {"settlement"}


async def test_start_execution_is_idempotent_for_a_running_one_and_refused_after_it_ended() -> None:
    gate = asyncio.Event()

    async def invoke(resource: str, payload: Any) -> tuple[bool, Any]:
        await gate.wait()
        return True, payload

    definition = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": FN, "End": True}}}
    arn = "arn:aws:states:us-east-1:000000000000:stateMachine:m"
    api = LocalStepFunctions({arn: StateMachine("m", definition)}, invoke, "us-east-1")
    first = api.start(arn, "settle-1", {"a": 1})
    assert api.start(arn, "settle-1", {"a": 1}) is first  # the same name and input while it runs
    with pytest.raises(stepfunctions.StatesError, match="ExecutionAlreadyExists"):
        api.start(arn, "settle-1", {"a": 2})
    gate.set()
    assert first.task is not None
    await first.task
    assert (first.status, first.output) == ("SUCCEEDED", {"a": 1})
    with pytest.raises(stepfunctions.StatesError, match="ExecutionAlreadyExists"):
        api.start(arn, "settle-1", {"a": 1})
    with pytest.raises(stepfunctions.StatesError, match="InvalidName"):
        api.start(arn, "no spaces", {})
    with pytest.raises(stepfunctions.StatesError, match="StateMachineDoesNotExist"):
        api.start(arn + "x", "n", {})
    assert api.stats() == {"m": {"succeeded": 1}}
