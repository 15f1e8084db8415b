"""Starting the match-end saga (the state machine MatchEndSaga; its steps: streams.settlement).

One execution per finished match, named after the match: Step Functions refuses a second execution
of a name (ExecutionAlreadyExists) for 90 days after the first, so a window written again (a retried
invocation, a redelivered write of the finished match) starts nothing twice. The projector calls this
after its window's writes: settlement is cold-path work, never the hot path's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SettleRequest:
    match_id: str
    mode: str
    season: str
    scores: dict[str, int]

    def to_input(self) -> str:
        match = {"matchId": self.match_id, "mode": self.mode, "season": self.season, "scores": self.scores}
        return json.dumps({"match": match}, separators=(",", ":"), sort_keys=True)


class MatchEndSaga:
    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self._sfn = client
        self._arn = state_machine_arn

    def start(self, request: SettleRequest) -> bool:
        """Starts the settlement of a match; False when it was started before."""
        try:
            self._sfn.start_execution(
                stateMachineArn=self._arn, name=f"settle-{request.match_id}", input=request.to_input()
            )
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code == "ExecutionAlreadyExists":
                return False
            raise
        return True
