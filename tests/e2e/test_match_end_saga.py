"""The match-end saga on the running stack: a finished match is settled by the state machine of
serverless.yml (started by the projector, run by local.stepfunctions, steps in the settlement
function), and a step that keeps failing is compensated."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import boto3
import pytest

from local.runtime import LocalRuntime
from tests.e2e.conftest import eventually, faults
from tests.e2e.test_game import join, name, score, state_where


def states(stack: LocalRuntime) -> Any:
    return boto3.client(
        "stepfunctions", endpoint_url=f"{stack.http_url}/local/states", region_name="us-east-1"
    )


def saga_arn(stack: LocalRuntime) -> str:
    assert stack.states is not None
    (arn,) = stack.states.machines
    return arn


async def settled(stack: LocalRuntime, match_id: str, timeout: float = 45) -> dict[str, Any]:
    arn = saga_arn(stack).replace(":stateMachine:", ":execution:") + f":settle-{match_id}"
    client = states(stack)

    def done() -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = client.describe_execution(executionArn=arn)
        except client.exceptions.ExecutionDoesNotExist:
            return None
        return found if found["status"] != "RUNNING" else None

    async def check() -> dict[str, Any] | None:
        return await asyncio.to_thread(done)

    result: dict[str, Any] = await eventually(check, timeout=timeout, interval=0.25)
    return result


def progress(stack: LocalRuntime) -> Any:
    from backend.store.progress import ProgressStore

    table = stack.service.resources["ProgressTable"]["Properties"]["TableName"]
    return ProgressStore(
        boto3.client("dynamodb", endpoint_url=stack.dynamodb_endpoint, region_name="us-east-1"), table
    )


async def play_practice_to_the_end(connect_player: Any) -> tuple[str, str]:
    """A practice match, won: one seat, so no stranger's open match to fall into on the shared stack."""
    solo = await connect_player(name("ss"))
    mid = (await join(solo, "practice"))["matchId"]
    await state_where(solo, lambda s: s["status"] == "running")
    await score(solo, mid, "s1", 60)
    await score(solo, mid, "s2", 40)  # target 100
    await state_where(solo, lambda s: s["status"] == "finished")
    return mid, solo.player


async def test_a_finished_match_is_settled_by_the_saga(stack: LocalRuntime, connect_player: Any) -> None:
    # Coins by place are the store tests' (tests/store/test_settlement.py): practice earns none.
    mid, solo = await play_practice_to_the_end(connect_player)
    execution = await settled(stack, mid)
    assert execution["status"] == "SUCCEEDED", execution
    history = await asyncio.to_thread(
        states(stack).get_execution_history, executionArn=execution["executionArn"]
    )
    entered = [
        e["stateEnteredEventDetails"]["name"] for e in history["events"] if e["type"].endswith("StateEntered")
    ]
    assert entered == ["RecordStats", "GrantRewards", "PublishResult"]
    store = progress(stack)
    season = json.loads(execution["input"])["match"]["season"]
    assert await asyncio.to_thread(store.stats, solo, season) == {"matches": 1, "wins": 0, "points": 100}
    assert await asyncio.to_thread(store.wallet, solo) == 0
    result = await asyncio.to_thread(store.settlement, mid)
    assert result is not None and result["placements"] == {solo: 1} and result["coins"] == {}
    # Started once: a second start of the same settlement is refused, as Step Functions refuses it.
    client = states(stack)
    with pytest.raises(client.exceptions.ExecutionAlreadyExists):
        await asyncio.to_thread(
            client.start_execution,
            stateMachineArn=saga_arn(stack),
            name=f"settle-{mid}",
            input=execution["input"],
        )


async def test_a_result_that_cannot_be_written_is_compensated(
    stack: LocalRuntime, connect_player: Any
) -> None:
    if stack.config.dynamodb == "local":
        pytest.skip("the embedded endpoint's faults do not reach DynamoDB Local")
    table = stack.service.resources["ProgressTable"]["Properties"]["TableName"]
    # Every PutItem on the progress table fails (the settlement record is the only one): PublishResult
    # fails after its retries, and what was written before it is taken back (practice earns no coins:
    # revoking them writes nothing; the stats are undone).
    rule = {
        "operation": "PutItem",
        "resource": table,
        "code": "InternalServerError",
        "status": 500,
        "seconds": 60,
    }
    await asyncio.to_thread(faults, stack.dynamodb_endpoint, "POST", rule)
    try:
        mid, solo = await play_practice_to_the_end(connect_player)
        execution = await settled(stack, mid, timeout=90)
    finally:
        await asyncio.to_thread(faults, stack.dynamodb_endpoint, "DELETE")
    assert (execution["status"], execution["error"]) == ("FAILED", "SettlementFailed")
    history = await asyncio.to_thread(
        states(stack).get_execution_history, executionArn=execution["executionArn"]
    )
    entered = [
        e["stateEnteredEventDetails"]["name"] for e in history["events"] if e["type"].endswith("StateEntered")
    ]
    assert entered == [
        "RecordStats",
        "GrantRewards",
        "PublishResult",
        "RevokeRewards",
        "UndoStats",
        "SettlementFailed",
    ]
    store = progress(stack)
    season = json.loads(execution["input"])["match"]["season"]
    assert await asyncio.to_thread(store.stats, solo, season) == {"matches": 0, "wins": 0, "points": 0}
    assert await asyncio.to_thread(store.settlement, mid) is None


async def test_the_local_step_functions_api_refuses_unsigned_requests(stack: LocalRuntime) -> None:
    request = urllib.request.Request(
        f"{stack.http_url}/local/states/",
        data=b"{}",
        method="POST",
        headers={
            "X-Amz-Target": "AWSStepFunctions.ListExecutions",
            "Content-Type": "application/x-amz-json-1.0",
        },
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        await asyncio.to_thread(urllib.request.urlopen, request, timeout=10)
    assert refused.value.code == 403
    assert json.loads(refused.value.read())["__type"] == "MissingAuthenticationTokenException"
