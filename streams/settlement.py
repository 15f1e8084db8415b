"""The match-end saga's steps (the settlement Lambda): one step per invocation, as the state machine
`MatchEndSaga` of serverless.yml sequences them, started by the projector for each finished match.

    RecordStats -> GrantRewards -> PublishResult                      (forward)
    GrantRewards fails  -> UndoStats -> SettlementFailed               (compensations, in reverse)
    PublishResult fails -> RevokeRewards -> UndoStats -> SettlementFailed

Every step, forward or compensating, is idempotent (backend.store.progress: a marker per step and
match, in the same transaction as its increments), so a step that Step Functions or Lambda runs again
writes nothing twice, and a compensation of a step that never applied writes nothing. PublishResult is
the last step: no later step can fail after it, so it has no compensation; it is a conditional PutItem.

The input is the execution's: {"step": ..., "match": {"matchId", "mode", "season", "scores"}}. An input
that can never settle raises InvalidSettlement, which the state machine does not retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backend import bootstrap, snapstart
from backend.aws import Deferred
from backend.config import settings
from backend.game import rewards
from backend.store.progress import MAX_PLAYERS, ProgressStore, StatLine
from backend.telemetry import MetricUnit, logger, metrics
from backend.vocabulary import ModeName


class InvalidSettlement(Exception):
    """The saga's input cannot be settled, whatever the retries: the state machine fails at once."""


class FinishedMatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    matchId: str = Field(pattern=r"^m-[0-9a-f]{32}$")
    mode: ModeName
    season: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    scores: dict[str, int] = Field(min_length=1, max_length=MAX_PLAYERS)


# Before the SnapStart snapshot: the SDK (COMMON_IMPORTS) and the input's model, built.
snapstart.warm(models=lambda: [FinishedMatch])

STEPS = ("record_stats", "undo_stats", "grant_rewards", "revoke_rewards", "publish_result")


@dataclass(frozen=True)
class Settlement:
    progress: ProgressStore

    def run(self, event: dict[str, Any]) -> dict[str, Any]:
        step = event.get("step") if isinstance(event, dict) else None
        if step not in STEPS:
            raise InvalidSettlement(f"unknown step {step!r}: one of {', '.join(STEPS)}")
        try:
            match = FinishedMatch.model_validate(event.get("match"))
        except ValidationError as exc:
            raise InvalidSettlement(f"bad match: {exc.errors(include_url=False)[:3]}") from None
        written = getattr(self, step)(match)
        logger.info("settlement step", extra={"step": step, "matchId": match.matchId, "written": written})
        metrics.add_metric(name="SettlementSteps", unit=MetricUnit.Count, value=1)
        return {"step": step, "written": written}

    def _lines(self, match: FinishedMatch) -> list[StatLine]:
        won = rewards.winners(match.scores)
        return [StatLine(p, s, p in won) for p, s in sorted(match.scores.items())]

    def record_stats(self, match: FinishedMatch) -> bool:
        return self.progress.record_stats(match.matchId, match.season, self._lines(match))

    def undo_stats(self, match: FinishedMatch) -> bool:
        return self.progress.record_stats(match.matchId, match.season, self._lines(match), undo=True)

    def grant_rewards(self, match: FinishedMatch) -> bool:
        return self.progress.grant(match.matchId, rewards.coins(match.mode, match.scores))

    def revoke_rewards(self, match: FinishedMatch) -> bool:
        return self.progress.grant(match.matchId, rewards.coins(match.mode, match.scores), undo=True)

    def publish_result(self, match: FinishedMatch) -> bool:
        coins = rewards.coins(match.mode, match.scores)
        return self.progress.publish(match.matchId, rewards.placements(match.scores), coins)


def _build() -> Settlement:
    return Settlement(ProgressStore(Deferred("dynamodb"), settings().progress_table))


root = bootstrap.Root(_build)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return root().run(event)
