"""The match-end saga end to end on a real table (moto and DynamoDB Local): the state machine of
serverless.yml, run by the local interpreter, invoking the settlement steps in process. Every
compensation path, a step retried after its write (idempotence), and a step that fails for good."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from backend.store.progress import ProgressStore
from local import stepfunctions
from local.stepfunctions import Execution
from streams.saga import SettleRequest
from streams.settlement import InvalidSettlement, Settlement

TABLE = "gamebackend-local-progress"
MATCH = "m-" + "a" * 32
OTHER = "m-" + "b" * 32
SEASON = "0"
# A duel: alice wins 200 to 50 (20 and 5 coins).
DUEL = SettleRequest(MATCH, "duel", SEASON, {"alice": 200, "bob": 50})


class StepFailed(Exception):
    """What an injected failure raises: the errorType the state machine sees."""


Fault = Callable[[str, int], bool]  # (step, attempt) -> fail it? (after the step ran, with after=True)


class Saga:
    """The serverless.yml definition, its Task states invoking Settlement.run in process."""

    def __init__(self, service: Any, progress: ProgressStore) -> None:
        (self.definition,) = [m.definition for m in stepfunctions.load(service).values()]
        self.settlement = Settlement(progress)
        self.attempts: dict[str, int] = {}

    async def run(
        self, request: SettleRequest = DUEL, fail_before: Fault | None = None, fail_after: Fault | None = None
    ) -> Execution:
        async def invoke(resource: str, payload: Any) -> tuple[bool, Any]:
            step = payload["step"]
            n = self.attempts[step] = self.attempts.get(step, 0) + 1
            try:
                if fail_before and fail_before(step, n):
                    raise StepFailed(f"{step} failed before writing (attempt {n})")
                result = self.settlement.run(payload)
                if fail_after and fail_after(step, n):  # written, but the invocation is lost
                    raise StepFailed(f"{step} failed after writing (attempt {n})")
            except Exception as exc:
                return False, {"errorType": type(exc).__name__, "errorMessage": str(exc)}
            return True, result

        async def no_wait(seconds: float) -> None:
            pass

        import json

        e = Execution("arn:exec", "settle", "arn:machine", json.loads(request.to_input()))
        await stepfunctions.run(self.definition, e, invoke, no_wait)
        return e


def entered(e: Execution) -> list[str]:
    return [ev["name"] for ev in e.history if ev["type"].endswith("StateEntered")]


def always(step: str) -> Fault:
    return lambda s, n: s == step


@pytest.fixture
def progress(ddb: Any) -> ProgressStore:
    return ProgressStore(ddb, TABLE)


@pytest.fixture
def saga(service: Any, progress: ProgressStore) -> Saga:
    return Saga(service, progress)


def snapshot(progress: ProgressStore) -> dict[str, Any]:
    return {
        "stats": {p: progress.stats(p, SEASON) for p in ("alice", "bob")},
        "wallet": {p: progress.wallet(p) for p in ("alice", "bob")},
        "settlement": progress.settlement(MATCH),
    }


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_settled_duel_records_stats_rewards_and_its_result(saga: Saga, progress: ProgressStore) -> None:
    e = run(saga.run())
    assert e.status == "SUCCEEDED", (e.error, e.cause)
    assert entered(e) == ["RecordStats", "GrantRewards", "PublishResult"]
    assert progress.stats("alice", SEASON) == {"matches": 1, "wins": 1, "points": 200}
    assert progress.stats("bob", SEASON) == {"matches": 1, "wins": 0, "points": 50}
    assert (progress.wallet("alice"), progress.wallet("bob")) == (20, 5)
    result = progress.settlement(MATCH)
    assert result is not None
    assert result["placements"] == {"alice": 1, "bob": 2} and result["coins"] == {"alice": 20, "bob": 5}


def test_every_step_run_again_writes_nothing(saga: Saga, progress: ProgressStore) -> None:
    run(saga.run())
    before = snapshot(progress)
    payload = {"match": {"matchId": MATCH, "mode": "duel", "season": SEASON, "scores": DUEL.scores}}
    for step in ("record_stats", "grant_rewards", "publish_result"):
        assert saga.settlement.run({"step": step, **payload}) == {"step": step, "written": False}
    assert snapshot(progress) == before


def test_a_step_retried_after_its_write_was_lost_applies_once(saga: Saga, progress: ProgressStore) -> None:
    # Each forward step's first invocation writes, then fails (a crash after the write): the retry
    # finds its marker.
    e = run(saga.run(fail_after=lambda step, n: n == 1))
    assert e.status == "SUCCEEDED", (e.error, e.cause)
    assert saga.attempts == {"record_stats": 2, "grant_rewards": 2, "publish_result": 2}
    assert progress.stats("alice", SEASON) == {"matches": 1, "wins": 1, "points": 200}
    assert progress.wallet("alice") == 20


def test_record_stats_failing_fails_the_saga_with_nothing_to_compensate(
    saga: Saga, progress: ProgressStore
) -> None:
    e = run(saga.run(fail_before=always("record_stats")))
    assert (e.status, e.error) == ("FAILED", "SettlementFailed")
    assert entered(e) == ["RecordStats", "SettlementFailed"]
    assert saga.attempts == {"record_stats": 3}  # the first attempt and two retries
    assert snapshot(progress) == {
        "stats": {p: {"matches": 0, "wins": 0, "points": 0} for p in ("alice", "bob")},
        "wallet": {"alice": 0, "bob": 0},
        "settlement": None,
    }


def test_grant_rewards_failing_undoes_the_stats(saga: Saga, progress: ProgressStore) -> None:
    run(saga.run(SettleRequest(OTHER, "duel", SEASON, {"alice": 10, "bob": 200})))  # an earlier match
    saga.attempts.clear()
    before = snapshot(progress)
    e = run(saga.run(fail_before=always("grant_rewards")))
    assert (e.status, e.error) == ("FAILED", "SettlementFailed")
    assert entered(e) == ["RecordStats", "GrantRewards", "UndoStats", "SettlementFailed"]
    assert snapshot(progress) == before  # the earlier match's stats and coins untouched
    assert progress.stats("bob", SEASON) == {"matches": 1, "wins": 1, "points": 200}
    assert not progress.applied("alice", MATCH, "stats")


def test_publish_result_failing_revokes_the_rewards_then_undoes_the_stats(
    saga: Saga, progress: ProgressStore
) -> None:
    e = run(saga.run(fail_before=always("publish_result")))
    assert (e.status, e.error) == ("FAILED", "SettlementFailed")
    assert entered(e) == [
        "RecordStats",
        "GrantRewards",
        "PublishResult",
        "RevokeRewards",
        "UndoStats",
        "SettlementFailed",
    ]
    assert snapshot(progress)["stats"] == {
        p: {"matches": 0, "wins": 0, "points": 0} for p in ("alice", "bob")
    }
    assert snapshot(progress)["wallet"] == {"alice": 0, "bob": 0}
    assert progress.settlement(MATCH) is None
    # Settled again later (a re-drive), it applies in full: the compensations removed their markers.
    saga.attempts.clear()
    assert run(saga.run()).status == "SUCCEEDED"
    assert progress.wallet("alice") == 20


def test_a_compensation_retried_after_its_write_was_lost_undoes_once(
    saga: Saga, progress: ProgressStore
) -> None:
    def lost(step: str, n: int) -> bool:
        return step in ("revoke_rewards", "undo_stats") and n == 1

    e = run(saga.run(fail_before=always("publish_result"), fail_after=lost))
    assert (e.status, e.error) == ("FAILED", "SettlementFailed")
    assert saga.attempts["revoke_rewards"] == 2 and saga.attempts["undo_stats"] == 2
    # Undone exactly once: not below zero.
    assert snapshot(progress)["wallet"] == {"alice": 0, "bob": 0}
    assert progress.stats("alice", SEASON) == {"matches": 0, "wins": 0, "points": 0}


def test_a_compensation_failing_for_good_is_its_own_failure(saga: Saga, progress: ProgressStore) -> None:
    e = run(saga.run(fail_before=lambda step, n: step in ("publish_result", "revoke_rewards")))
    assert (e.status, e.error) == ("FAILED", "CompensationFailed")
    assert entered(e) == [
        "RecordStats",
        "GrantRewards",
        "PublishResult",
        "RevokeRewards",
        "CompensationFailed",
    ]
    assert saga.attempts["revoke_rewards"] == 7  # the first attempt and six retries
    assert progress.wallet("alice") == 20  # left for the runbook (docs/operations.md#saga-failed)


def test_an_input_that_can_never_settle_is_not_retried(saga: Saga, progress: ProgressStore) -> None:
    bad = SettleRequest(MATCH, "duel", SEASON, {})  # no players
    e = run(saga.run(bad))
    assert (e.status, e.error) == ("FAILED", "SettlementFailed")
    assert saga.attempts == {"record_stats": 1}
    with pytest.raises(InvalidSettlement):
        saga.settlement.run({"step": "explode", "match": {}})


def test_undoing_what_never_applied_writes_nothing(progress: ProgressStore) -> None:
    settlement = Settlement(progress)
    payload = {
        "match": {"matchId": MATCH, "mode": "arena", "season": SEASON, "scores": {"alice": 3, "bob": 1}}
    }
    assert settlement.run({"step": "undo_stats", **payload})["written"] is False
    assert settlement.run({"step": "revoke_rewards", **payload})["written"] is False
    assert progress.stats("alice", SEASON) == {"matches": 0, "wins": 0, "points": 0}
    assert progress.wallet("alice") == 0


def test_practice_earns_no_coins_and_no_win(progress: ProgressStore) -> None:
    settlement = Settlement(progress)
    payload = {"match": {"matchId": MATCH, "mode": "practice", "season": SEASON, "scores": {"solo": 100}}}
    for step in ("record_stats", "grant_rewards", "publish_result"):
        settlement.run({"step": step, **payload})
    assert progress.stats("solo", SEASON) == {"matches": 1, "wins": 0, "points": 100}
    assert progress.wallet("solo") == 0
