"""Step Functions, locally: the state machines of serverless.yml run from their own definitions.

Each `AWS::StepFunctions::StateMachine` under resources.Resources is read as CloudFormation would
deploy it (`Definition`, with `DefinitionSubstitutions` put in for its `${...}`), and its executions are
interpreted here, invoking the local functions. The runtime serves the Step Functions JSON API on
its HTTP port at /local/states (the functions' AWS_ENDPOINT_URL_SFN points there): StartExecution,
DescribeExecution, GetExecutionHistory and ListExecutions; signed requests only, as AWS's.

The ASL this interpreter supports, which is what the definitions here use; any other state type or
field is refused when the runtime loads the definition (ConfigError), never ignored:

- states: Task (Resource: a Lambda function's ARN, invoked synchronously with the state's input as its
  event), Pass (Result, Parameters), Succeed, Fail (Error, Cause)
- Next / End, StartAt, Comment, TimeoutSeconds (of the machine: the execution fails States.Timeout)
- InputPath, Parameters (keys ending `.$` take a path of the input, or of the context: `$$.Execution.Name`,
  `$$.Execution.Id`, `$$.State.Name`), ResultPath (a path, or null to keep the input), OutputPath
- paths: `$` and dotted names (`$.a.b`); no brackets, filters or intrinsic functions
- Retry: ErrorEquals, IntervalSeconds, MaxAttempts, BackoffRate, MaxDelaySeconds
- Catch: ErrorEquals, Next, ResultPath (the error output is {"Error", "Cause"})
- errors: a Lambda error is its errorType (Cause: the error as JSON); Lambda's throttle is
  Lambda.TooManyRequestsException; States.ALL matches any, States.TaskFailed any error of a Task

Not supported: Choice, Wait, Parallel, Map, ResultSelector, intrinsic functions, service integrations
(arn:aws:states:::...), activities, callbacks, Express workflows' semantics. Executions live in memory
and end with the runtime.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from local.slsconfig import ACCOUNT_ID, ConfigError, Service

log = logging.getLogger("local.states")

STATE_FIELDS = {
    "Task": {
        "Type",
        "Resource",
        "Next",
        "End",
        "Comment",
        "InputPath",
        "Parameters",
        "ResultPath",
        "OutputPath",
        "Retry",
        "Catch",
        "TimeoutSeconds",
    },
    "Pass": {
        "Type",
        "Next",
        "End",
        "Comment",
        "InputPath",
        "Parameters",
        "Result",
        "ResultPath",
        "OutputPath",
    },
    "Succeed": {"Type", "Comment", "InputPath", "OutputPath"},
    "Fail": {"Type", "Comment", "Error", "Cause"},
}
RETRY_FIELDS = {"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds", "Comment"}
CATCH_FIELDS = {"ErrorEquals", "Next", "ResultPath", "Comment"}
PATH = re.compile(r"^\$(\.[A-Za-z0-9_-]+)*$")
CONTEXT_PATH = re.compile(r"^\$\$(\.[A-Za-z0-9_-]+)+$")
NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")

# (resource ARN, input) -> (ok, result or {"errorType", "errorMessage"})
Invoke = Callable[[str, Any], Awaitable[tuple[bool, Any]]]
Sleep = Callable[[float], Awaitable[None]]


class StatesError(Exception):
    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


# --- loading ------------------------------------------------------------------------------------------


def _check_path(where: str, path: Any, nullable: bool = False) -> None:
    if path is None and nullable:
        return
    if not isinstance(path, str) or not PATH.match(path):
        raise ConfigError(f"{where}: unsupported path {path!r} (only $ and dotted names, e.g. $.a.b)")


def _check_parameters(where: str, params: Any) -> None:
    if isinstance(params, dict):
        for key, value in params.items():
            if key.endswith(".$"):
                if not isinstance(value, str) or not (PATH.match(value) or CONTEXT_PATH.match(value)):
                    raise ConfigError(
                        f"{where}: unsupported path {value!r} for {key} (no intrinsic functions)"
                    )
            else:
                _check_parameters(where, value)
    elif isinstance(params, list):
        for value in params:
            _check_parameters(where, value)


def validate(definition: dict[str, Any]) -> None:
    """Refuses what this interpreter does not implement (see the module's docstring)."""
    states = definition.get("States")
    if not isinstance(states, dict) or definition.get("StartAt") not in states:
        raise ConfigError("a state machine needs States and a StartAt among them")
    extra = set(definition) - {"StartAt", "States", "Comment", "TimeoutSeconds", "Version"}
    if extra:
        raise ConfigError(f"unsupported state machine fields {sorted(extra)}")
    for name, state in states.items():
        where = f"state {name}"
        kind = state.get("Type")
        if kind not in STATE_FIELDS:
            raise ConfigError(
                f"{where}: the local runtime does not run {kind} states ({sorted(STATE_FIELDS)})"
            )
        extra = set(state) - STATE_FIELDS[kind]
        if extra:
            raise ConfigError(f"{where}: unsupported fields {sorted(extra)}")
        if kind in ("Task", "Pass"):
            if ("Next" in state) == bool(state.get("End")):
                raise ConfigError(f"{where}: exactly one of Next and End")
            if "Next" in state and state["Next"] not in states:
                raise ConfigError(f"{where}: Next {state['Next']!r} is no state")
        for key in ("InputPath", "OutputPath"):
            if key in state:
                _check_path(f"{where}.{key}", state[key])
        if "ResultPath" in state:
            _check_path(f"{where}.ResultPath", state["ResultPath"], nullable=True)
        _check_parameters(where, state.get("Parameters"))
        if kind == "Task":
            resource = state.get("Resource", "")
            if not isinstance(resource, str) or not resource.startswith("arn:aws:lambda:"):
                raise ConfigError(f"{where}: only Lambda function ARNs as Resource, not {resource!r}")
        for retrier in state.get("Retry", []):
            if set(retrier) - RETRY_FIELDS or not retrier.get("ErrorEquals"):
                raise ConfigError(f"{where}: unsupported Retry {retrier}")
        for catcher in state.get("Catch", []):
            if (
                set(catcher) - CATCH_FIELDS
                or not catcher.get("ErrorEquals")
                or catcher.get("Next") not in states
            ):
                raise ConfigError(f"{where}: unsupported Catch {catcher}")
            if "ResultPath" in catcher:
                _check_path(f"{where}.Catch.ResultPath", catcher["ResultPath"], nullable=True)


def _substitute(value: Any, subs: dict[str, str]) -> Any:
    if isinstance(value, str):
        return re.sub(r"\$\{([^}]+)\}", lambda m: subs.get(m.group(1), m.group(0)), value)
    if isinstance(value, dict):
        return {k: _substitute(v, subs) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, subs) for v in value]
    return value


def function_arn(service: Service, function: str) -> str:
    return f"arn:aws:lambda:{service.region}:{ACCOUNT_ID}:function:{service.name}-{service.stage}-{function}"


def state_machine_arn(service: Service, name: str) -> str:
    return f"arn:aws:states:{service.region}:{ACCOUNT_ID}:stateMachine:{name}"


def load(service: Service) -> dict[str, StateMachine]:
    """The state machines of serverless.yml, by ARN."""
    logical = {_logical_id(fn): fn for fn in service.functions}
    machines: dict[str, StateMachine] = {}
    for props in service.resources_of_type("AWS::StepFunctions::StateMachine").values():
        subs: dict[str, str] = {}
        for key, value in (props.get("DefinitionSubstitutions") or {}).items():
            subs[key] = _function_ref(service, logical, key, value)
        definition = props.get("Definition")
        if not isinstance(definition, dict):
            raise ConfigError("a state machine's Definition must be written in serverless.yml (not a string)")
        definition = _substitute(definition, subs)
        validate(definition)
        name = str(props["StateMachineName"])
        machines[state_machine_arn(service, name)] = StateMachine(name, definition)
    return machines


def _function_ref(service: Service, logical: dict[str, str], key: str, value: Any) -> str:
    """A DefinitionSubstitutions value: a function's ARN (Fn::GetAtt [<Function>LambdaFunction, Arn]), or
    that ARN with a qualifier (Fn::Join [":", [<that>, <alias>]]): the local functions have no versions,
    so a qualifier names the function itself."""
    qualifier = ""
    if isinstance(value, dict) and isinstance(value.get("Fn::Join"), list):
        sep, parts = value["Fn::Join"]
        if sep == ":" and len(parts) == 2 and isinstance(parts[1], str):
            value, qualifier = parts[0], f":{parts[1]}"
    target = value.get("Fn::GetAtt") if isinstance(value, dict) else None
    if not (isinstance(target, list) and target[1:] == ["Arn"] and target[0] in logical):
        raise ConfigError(
            f"DefinitionSubstitutions {key}: only Fn::GetAtt [<Function>LambdaFunction, Arn], "
            'optionally in Fn::Join [":", [..., <alias>]]'
        )
    return function_arn(service, logical[target[0]]) + qualifier


def function_name(arn: str) -> str:
    """The function name in a Lambda ARN, qualified or not."""
    parts = arn.split(":")
    return parts[6] if len(parts) > 6 else arn


def task_functions(service: Service, machines: dict[str, StateMachine]) -> set[str]:
    """The functions (serverless.yml names) that the machines' Task states invoke."""
    prefix = f"{service.name}-{service.stage}-"
    return {
        function_name(state["Resource"]).removeprefix(prefix)
        for m in machines.values()
        for state in m.definition["States"].values()
        if state["Type"] == "Task"
    }


def _logical_id(function: str) -> str:
    """The logical ID osls gives a function (`settlement` -> SettlementLambdaFunction)."""
    return (
        function[:1].upper() + function[1:].replace("-", "Dash").replace("_", "Underscore") + "LambdaFunction"
    )


@dataclass
class StateMachine:
    name: str
    definition: dict[str, Any]


# --- paths --------------------------------------------------------------------------------------------


def get_path(data: Any, path: str) -> Any:
    if path == "$":
        return data
    for part in path[2:].split("."):
        if not isinstance(data, dict) or part not in data:
            raise StatesError("States.Runtime", f"the path {path} matches nothing in the input")
        data = data[part]
    return data


def set_path(data: Any, path: str | None, value: Any) -> Any:
    """ResultPath: the result put into (a copy of) the input."""
    if path is None:
        return data
    if path == "$":
        return value
    out = copy.deepcopy(data) if isinstance(data, dict) else {}
    node = out
    parts = path[2:].split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value
    return out


def parameters(template: Any, data: Any, context: dict[str, Any]) -> Any:
    if isinstance(template, dict):
        out: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$"):
                source = context if value.startswith("$$") else data
                out[key[:-2]] = get_path(source, value[1:] if value.startswith("$$") else value)
            else:
                out[key] = parameters(value, data, context)
        return out
    if isinstance(template, list):
        return [parameters(v, data, context) for v in template]
    return template


def matches(patterns: list[str], error: str) -> bool:
    return (
        "States.ALL" in patterns
        or error in patterns
        or ("States.TaskFailed" in patterns and error != "States.Timeout")
    )


# --- executions ---------------------------------------------------------------------------------------


@dataclass
class Execution:
    arn: str
    name: str
    machine_arn: str
    input: Any
    status: str = "RUNNING"
    output: Any = None
    error: str | None = None
    cause: str | None = None
    started: float = field(default_factory=time.time)
    stopped: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    def event(self, kind: str, **details: Any) -> None:
        self.history.append({"id": len(self.history) + 1, "type": kind, "timestamp": time.time(), **details})

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "executionArn": self.arn,
            "stateMachineArn": self.machine_arn,
            "name": self.name,
            "status": self.status,
            "startDate": self.started,
            "input": json.dumps(self.input),
        }
        if self.stopped is not None:
            out["stopDate"] = self.stopped
        if self.status == "SUCCEEDED":
            out["output"] = json.dumps(self.output)
        if self.status == "FAILED":
            out.update({"error": self.error or "", "cause": self.cause or ""})
        return out


async def run(
    definition: dict[str, Any], execution: Execution, invoke: Invoke, sleep: Sleep = asyncio.sleep
) -> None:
    """Interprets one execution to its end: status, output or error, and its history."""
    execution.event("ExecutionStarted", input=execution.input)
    context = {"Execution": {"Id": execution.arn, "Name": execution.name, "Input": execution.input}}
    try:
        timeout = definition.get("TimeoutSeconds")
        walk = _walk(definition, execution, context, invoke, sleep)
        output = await (asyncio.wait_for(walk, timeout) if timeout else walk)
    except TimeoutError:
        _fail(execution, "States.Timeout", "the execution ran longer than the machine's TimeoutSeconds")
    except StatesError as exc:
        _fail(execution, exc.error, exc.cause)
    else:
        execution.status, execution.output = "SUCCEEDED", output
        execution.event("ExecutionSucceeded", output=output)
    execution.stopped = time.time()


def _fail(execution: Execution, error: str, cause: str) -> None:
    execution.status, execution.error, execution.cause = "FAILED", error, cause
    execution.event("ExecutionFailed", error=error, cause=cause)


async def _walk(
    definition: dict[str, Any], execution: Execution, context: dict[str, Any], invoke: Invoke, sleep: Sleep
) -> Any:
    states = definition["States"]
    name: str = definition["StartAt"]
    data = execution.input
    while True:
        state = states[name]
        kind = state["Type"]
        execution.event(f"{kind}StateEntered", name=name)
        context["State"] = {"Name": name}
        if kind == "Fail":
            raise StatesError(state.get("Error", "States.Fail"), state.get("Cause", ""))
        effective = get_path(data, state.get("InputPath", "$"))
        if kind == "Succeed":
            execution.event("SucceedStateExited", name=name)
            return get_path(effective, state.get("OutputPath", "$"))
        if "Parameters" in state:
            effective = parameters(state["Parameters"], effective, context)
        if kind == "Pass":
            result = state.get("Result", effective)
        else:
            try:
                result = await _task(state, effective, execution, invoke, sleep)
            except StatesError as exc:
                catcher = next(
                    (c for c in state.get("Catch", []) if matches(c["ErrorEquals"], exc.error)), None
                )
                if catcher is None:
                    raise
                execution.event("TaskStateExited", name=name, caught=exc.error)
                data = set_path(
                    data, catcher.get("ResultPath", "$"), {"Error": exc.error, "Cause": exc.cause}
                )
                name = catcher["Next"]
                continue
        data = get_path(set_path(data, state.get("ResultPath", "$"), result), state.get("OutputPath", "$"))
        execution.event(f"{kind}StateExited", name=name)
        if state.get("End"):
            return data
        name = state["Next"]


async def _task(
    state: dict[str, Any], payload: Any, execution: Execution, invoke: Invoke, sleep: Sleep
) -> Any:
    attempts: dict[int, int] = {}
    while True:
        execution.event("LambdaFunctionScheduled", resource=state["Resource"])
        try:
            call = invoke(state["Resource"], payload)
            ok, result = await (
                asyncio.wait_for(call, state["TimeoutSeconds"]) if "TimeoutSeconds" in state else call
            )
        except TimeoutError:
            ok, result = False, {"errorType": "States.Timeout", "errorMessage": "the task timed out"}
        if ok:
            execution.event("LambdaFunctionSucceeded", output=result)
            return result
        error = str(result.get("errorType") or "States.TaskFailed")
        cause = json.dumps(result)
        execution.event("LambdaFunctionFailed", error=error, cause=cause)
        index, retrier = next(
            ((i, r) for i, r in enumerate(state.get("Retry", [])) if matches(r["ErrorEquals"], error)),
            (-1, None),
        )
        if retrier is None:
            raise StatesError(error, cause)
        done = attempts.get(index, 0)
        if done >= int(retrier.get("MaxAttempts", 3)):
            raise StatesError(error, cause)
        attempts[index] = done + 1
        delay = float(retrier.get("IntervalSeconds", 1)) * float(retrier.get("BackoffRate", 2.0)) ** done
        if "MaxDelaySeconds" in retrier:
            delay = min(delay, float(retrier["MaxDelaySeconds"]))
        await sleep(delay)


# --- the API ------------------------------------------------------------------------------------------


class LocalStepFunctions:
    """The state machines and their executions, and the Step Functions JSON API over them."""

    def __init__(self, machines: dict[str, StateMachine], invoke: Invoke, region: str) -> None:
        self.machines = machines
        self.invoke = invoke
        self.region = region
        self.executions: dict[str, Execution] = {}

    def start(self, machine_arn: str, name: str | None, data: Any) -> Execution:
        machine = self.machines.get(machine_arn)
        if machine is None:
            raise StatesError("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{machine_arn}'")
        name = name or str(uuid.uuid4())
        if not NAME.match(name):
            raise StatesError("InvalidName", f"Invalid Name: '{name}'")
        arn = f"arn:aws:states:{self.region}:{ACCOUNT_ID}:execution:{machine.name}:{name}"
        existing = self.executions.get(arn)
        if existing is not None:
            # AWS: the same name and input while it runs is the same execution; otherwise refused.
            if existing.status == "RUNNING" and existing.input == data:
                return existing
            raise StatesError("ExecutionAlreadyExists", f"Execution Already Exists: '{arn}'")
        execution = Execution(arn, name, machine_arn, data)
        self.executions[arn] = execution
        execution.task = asyncio.create_task(run(machine.definition, execution, self.invoke))
        return execution

    def stats(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {m.name: {} for m in self.machines.values()}
        for e in self.executions.values():
            name = self.machines[e.machine_arn].name
            out[name][e.status.lower()] = out[name].get(e.status.lower(), 0) + 1
        return out

    async def drain(self) -> None:
        tasks = [e.task for e in self.executions.values() if e.task is not None and not e.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def handle(self, request: web.BaseRequest) -> web.Response:
        if request.method != "POST":
            return _error(400, "UnknownOperationException", "POST the Step Functions JSON protocol")
        if not request.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 "):
            return _error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        service, _, operation = request.headers.get("X-Amz-Target", "").partition(".")
        if service != "AWSStepFunctions":
            return _error(
                400, "UnknownOperationException", "X-Amz-Target must be AWSStepFunctions.<operation>"
            )
        try:
            body = json.loads(await request.read() or b"{}")
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            return _error(400, "SerializationException", "the body must be a JSON object")
        try:
            return web.json_response(
                self._operation(operation, body), content_type="application/x-amz-json-1.0"
            )
        except StatesError as exc:
            return _error(400, exc.error, exc.cause)

    def _operation(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        if operation == "StartExecution":
            try:
                data = json.loads(body.get("input") or "{}")
            except ValueError:
                raise StatesError("InvalidExecutionInput", "the input is not JSON") from None
            e = self.start(str(body.get("stateMachineArn", "")), body.get("name"), data)
            return {"executionArn": e.arn, "startDate": e.started}
        if operation in ("DescribeExecution", "GetExecutionHistory"):
            found = self.executions.get(str(body.get("executionArn", "")))
            if found is None:
                raise StatesError(
                    "ExecutionDoesNotExist", f"Execution Does Not Exist: '{body.get('executionArn')}'"
                )
            e = found
            if operation == "DescribeExecution":
                return e.describe()
            return {"events": [aws_event(ev) for ev in e.history]}
        if operation == "ListExecutions":
            arn = str(body.get("stateMachineArn", ""))
            if arn not in self.machines:
                raise StatesError("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{arn}'")
            status = body.get("statusFilter")
            listed = [
                {k: v for k, v in x.describe().items() if k not in ("input", "output", "error", "cause")}
                for x in self.executions.values()
                if x.machine_arn == arn and (status is None or x.status == status)
            ]
            return {"executions": listed}
        raise StatesError("UnknownOperationException", f"{operation} is not served locally")


def aws_event(event: dict[str, Any]) -> dict[str, Any]:
    """A history event as GetExecutionHistory answers it: its details under `<type>EventDetails`
    (botocore drops any other key), inputs and outputs as JSON text."""
    kind: str = event["type"]
    out = {"id": event["id"], "type": kind, "timestamp": event["timestamp"]}
    details = {k: v for k, v in event.items() if k not in out}
    for key in ("input", "output"):
        if key in details:
            details[key] = json.dumps(details[key])
    if kind.endswith("StateEntered"):
        field_name = "stateEnteredEventDetails"
    elif kind.endswith("StateExited"):
        field_name = "stateExitedEventDetails"
        details.pop("caught", None)
    else:
        field_name = kind[:1].lower() + kind[1:] + "EventDetails"
    return {**out, field_name: details}


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"__type": code, "message": message}, status=status, content_type="application/x-amz-json-1.0"
    )
