"""What each load-test player sent and what became of it: the client side of the conservation check.

The locustfile keeps one `PlayerLedger` per simulated player and writes them all to `ledger.json` when
the test stops; `loadtest.conservation` compares them with the leaderboards.

An action's life, as the client sees it:
- `acked`: the message route answered `ack` (for this id, on any attempt): it is on the stream;
- `outcome`: `applied` (a `state` listed the id) or `rejected` (a `rejected` push), or None when
  neither arrived before the player stopped;
- `maybe`: an attempt ended without an answer that settles it (a timeout, or API Gateway's
  "Internal server error", which a Lambda throttle also gets), so the action may be on the stream
  although it was never acked. Each attempt re-sends the same id, which the processor applies once.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Action:
    id: str
    kind: str  # score | move
    points: int = 0
    attempts: int = 0
    acked: bool = False
    maybe: bool = False
    outcome: str | None = None  # applied | rejected
    code: str | None = None  # the rejection's code
    version: int | None = None  # the state version that listed it


def on_stream(action: Action) -> bool:
    return action.acked or action.outcome is not None


@dataclass
class PlayerLedger:
    player: str
    actions: dict[str, Action] = field(default_factory=dict)
    matches: list[str] = field(default_factory=list)
    # An action id listed by two state pushes of different versions (or twice in one): applied twice.
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    # A state pushed again with the same version (a redelivered batch): harmless, counted.
    repeated_pushes: int = 0
    stray_frames: int = 0

    def acked_points(self) -> int:
        """Points of the score actions known to be on the stream: acknowledged, or (the ack lost to a
        timeout) seen applied or rejected."""
        return sum(a.points for a in self.actions.values() if a.kind == "score" and on_stream(a))

    def rejected_points(self) -> int:
        return sum(a.points for a in self.actions.values() if a.kind == "score" and a.outcome == "rejected")

    def expected_points(self) -> int:
        """What the global all-time board must show: acknowledged scores that were not rejected."""
        return self.acked_points() - self.rejected_points()

    def unresolved(self) -> list[Action]:
        """Acknowledged score actions with no outcome seen (the player stopped first)."""
        return [a for a in self.actions.values() if a.kind == "score" and a.acked and a.outcome is None]

    def ambiguous(self) -> list[Action]:
        """Score actions never acknowledged nor seen settled that may nevertheless be on the stream."""
        return [a for a in self.actions.values() if a.kind == "score" and not on_stream(a) and a.maybe]

    def to_json(self) -> dict[str, Any]:
        return {
            "player": self.player,
            "matches": self.matches,
            "duplicates": self.duplicates,
            "repeatedPushes": self.repeated_pushes,
            "strayFrames": self.stray_frames,
            "actions": [asdict(a) for a in self.actions.values()],
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> PlayerLedger:
        ledger = cls(
            doc["player"],
            matches=list(doc.get("matches", [])),
            duplicates=list(doc.get("duplicates", [])),
            repeated_pushes=int(doc.get("repeatedPushes", 0)),
            stray_frames=int(doc.get("strayFrames", 0)),
        )
        for a in doc.get("actions", []):
            ledger.actions[a["id"]] = Action(**a)
        return ledger


def write(path: Path, run_id: str, players: list[PlayerLedger], extra: dict[str, Any]) -> None:
    doc = {"runId": run_id, **extra, "players": [p.to_json() for p in players]}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)


def read(path: Path) -> tuple[dict[str, Any], list[PlayerLedger]]:
    doc = json.loads(path.read_text())
    players = [PlayerLedger.from_json(p) for p in doc.pop("players")]
    return doc, players
