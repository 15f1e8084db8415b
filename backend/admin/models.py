"""Request and response bodies of the admin API; the OpenAPI document is generated from them.

Built on first use (`defer_build`): a request validates one or two of them, not all twenty.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.ids import MATCH_ID_PATTERN
from backend.protocol import Board, Mode, Period, PlayerState
from backend.vocabulary import MatchStatus


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class ErrorDetail(_Body):
    code: str
    message: str


class ErrorBody(_Body):
    error: ErrorDetail


class Entry(_Body):
    rank: int
    playerId: str
    score: int
    subscore: int | None = Field(default=None, description="on a board whose tie-break is a subscore")


class LeaderboardPage(_Body):
    board: Board
    period: Period
    season: int
    entries: list[Entry]
    nextCursor: str | None = Field(default=None, description="the page after this one")
    prevCursor: str | None = Field(default=None, description="the page before this one")


class PlayerStanding(_Body):
    board: Board
    period: Period
    season: int
    playerId: str
    rank: int
    score: int
    subscore: int | None = None
    neighbours: list[Entry] = Field(description="the player and their neighbours, in rank order")
    nextCursor: str | None = Field(default=None, description="the page after the neighbours")
    prevCursor: str | None = Field(default=None, description="the page before the neighbours")


class Removed(_Body):
    board: Board
    playerId: str
    removed: list[str] = Field(description="the board keys (periods) the player was removed from")


class Season(_Body):
    board: Board
    season: int


class MatchSummary(_Body):
    matchId: str
    mode: Mode
    status: MatchStatus
    createdAt: int
    winner: str | None = None


class MatchPage(_Body):
    matches: list[MatchSummary]
    nextCursor: str | None = None


class LoggedEvent(_Body):
    version: int
    eventId: str
    type: str
    playerId: str
    receivedAt: int
    actionId: str | None = None
    kind: str | None = Field(default=None, description="act: the action's kind (the mode's)")
    args: dict[str, Any] | None = Field(default=None, description="act: the action's fields")


class MatchDetail(_Body):
    matchId: str
    mode: Mode
    status: MatchStatus
    version: int
    players: dict[str, PlayerState]
    roster: list[str]
    winner: str | None = None
    game: dict[str, Any] | None = Field(default=None, description="the mode's own state")
    lastEvents: list[LoggedEvent]


class EventPage(_Body):
    matchId: str
    events: list[LoggedEvent]
    nextCursor: str | None = None


class Accepted(_Body):
    matchId: str
    eventId: str


class ConnectionInfo(_Body):
    connectionId: str
    playerId: str
    connectedAt: int
    matchId: str | None = None


class ConnectionPage(_Body):
    connections: list[ConnectionInfo]
    nextCursor: str | None = None


class Broadcast(_Body):
    message: Annotated[str, Field(min_length=1, max_length=1000)]
    matchId: Annotated[str, Field(pattern=MATCH_ID_PATTERN)] | None = None


class BroadcastResult(_Body):
    sent: int
    gone: int
    failed: int


class Health(_Body):
    status: Literal["ok", "degraded"]
    checks: dict[str, str]


class Stats(_Body):
    connections: int
    waitingMatches: int
    runningMatches: int
    actionsLastMinute: int | None = Field(description="records put on the stream in the last minute")
    streamLagMs: float | None = Field(
        description="the processor's iterator age on the actions stream: the largest of the last 5 minutes"
    )
    projectorLagMs: float | None = Field(
        default=None,
        description="the leaderboard projector's iterator age on the matches table's stream, the same way",
    )
    deadLetters: int = Field(default=0, description="messages in the actions stream's dead-letter queue")
    projectorDeadLetters: int = Field(default=0, description="messages in the projector's dead-letter queue")


class AuditEntry(_Body):
    at: int = Field(description="epoch milliseconds")
    actor: str = Field(description="the admin token's subject")
    action: str = Field(
        description="leaderboard.remove, leaderboard.reset, match.end, connection.kick or broadcast"
    )
    details: dict[str, Any]


class AuditPage(_Body):
    day: str = Field(description="the UTC day, YYYY-MM-DD")
    entries: list[AuditEntry] = Field(description="newest first")
    nextCursor: str | None = None


def models() -> list[Any]:
    """Every model of this module (to build them ahead of need)."""
    return [v for v in globals().values() if isinstance(v, type) and issubclass(v, _Body) and v is not _Body]
