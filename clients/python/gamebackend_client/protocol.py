"""The wire protocol as a client sees it: the frames it sends (`action`) and the frames it receives (`type`).

These are the SDK's own models, so that the SDK ships without the backend. They are not a second
definition of the protocol: the backend's models are, and `docs/protocol.schema.json` is the JSON Schema
it generates from them (`gamebackend schema`). The repository's tests build the JSON Schema of the models
below and require it to be exactly that file's `client` and `server` parts, so a change on either side
alone fails the suite (tests/unit/test_sdk_package.py). Change this module together with the backend's.

Frames are strict and closed, as on the server: an unknown field, or "5" for 5, is a validation error.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

PROTOCOL_VERSION = 2  # the version this SDK speaks; `pong` and `joined` carry the server's

# Modes are the server's data (its serverless.yml declares them, each a plug-in): the SDK knows their
# grammar, and the server answers `invalid_message` for a mode it does not have.
MODE_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,31}$"
Mode = Annotated[str, Field(pattern=MODE_NAME_PATTERN, description="a mode of custom.modes")]
MatchStatus = Literal["waiting", "running", "finished"]

ACTION_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"  # also every request id
MATCH_ID_PATTERN = r"^m-[0-9a-f]{32}$"
# Boards and periods are the server's data (its serverless.yml declares them): the SDK knows their
# grammar, and the server answers `not_found` for a board or period it does not have.
BOARD_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,31}$"
PERIOD_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,15}$"
Board = Annotated[str, Field(pattern=BOARD_NAME_PATTERN, description="a board of custom.leaderboards")]
Period = Annotated[str, Field(pattern=PERIOD_NAME_PATTERN, description="one of the board's periods")]
# Opaque: a `next` or `prev` of an earlier `leaderboard` answer (base64url).
Cursor = Annotated[str, Field(max_length=256, pattern=r"^[A-Za-z0-9_-]+$")]

RequestId = Annotated[str, Field(pattern=ACTION_ID_PATTERN, description="client-chosen id, echoed back")]
MatchIdField = Annotated[str, Field(pattern=MATCH_ID_PATTERN)]
Coordinate = Annotated[int, Field(ge=0, le=1000)]


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# --- client -> server ------------------------------------------------------------------------------


class Ping(_Frame):
    action: Literal["ping"]
    id: RequestId | None = None


class Join(_Frame):
    action: Literal["join"]
    mode: Mode
    id: RequestId | None = None
    matchId: MatchIdField | None = Field(
        default=None, description="re-attach this connection to a match the player is already in"
    )


class Score(_Frame):
    action: Literal["act"]
    kind: Literal["score"]
    matchId: MatchIdField
    id: RequestId = Field(description="action id, unique per player; a repeated id is applied once")
    points: Annotated[int, Field(ge=1, le=100)]


class Move(_Frame):
    action: Literal["act"]
    kind: Literal["move"]
    matchId: MatchIdField
    id: RequestId = Field(description="action id, unique per player; a repeated id is applied once")
    x: Coordinate
    y: Coordinate


# The race modes' actions (practice, duel, arena). A mode's actions are its plug-in's on the server: the
# server's schema lists them per kind (docs/protocol.schema.json `actions`); `GameClient.act` sends any.
Act = Annotated[Score | Move, Field(discriminator="kind")]

# Any mode's action: `kind` and the action's own fields are the mode's (its plug-in on the server declares
# and validates them); the SDK checks the envelope only. Score and Move above are the race modes'.
KIND_PATTERN = r"^[a-z][a-z0-9_]{0,23}$"


class Action(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

    action: Literal["act"]
    kind: Annotated[str, Field(pattern=KIND_PATTERN)]
    matchId: MatchIdField
    id: RequestId


class Leave(_Frame):
    action: Literal["leave"]
    matchId: MatchIdField
    id: RequestId | None = None


class LeaderboardQuery(_Frame):
    action: Literal["leaderboard"]
    board: Board = "global"
    period: Period = "alltime"
    season: Annotated[int, Field(ge=0, description="a past season (default: the current one)")] | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 10
    cursor: Cursor | None = Field(default=None, description="the page after `next` or before `prev`")
    start: Literal["top", "me"] = Field(
        default="top", description="without a cursor: the top of the board, or a page centred on the caller"
    )
    around: bool = Field(default=False, description="also return the caller's rank and neighbours")
    id: RequestId | None = None

    @model_validator(mode="after")
    def _one_start(self) -> LeaderboardQuery:
        if self.cursor is not None and self.start != "top":
            raise ValueError("a cursor says where the page starts: leave `start` out")
        return self


# The frames every stage has (an `act` is the mode's: `Act` above, or the server's `actions`).
ClientFrame = Annotated[Ping | Join | Leave | LeaderboardQuery, Field(discriminator="action")]


# --- server -> client ------------------------------------------------------------------------------


class Pong(_Frame):
    type: Literal["pong"] = "pong"
    ref: str | None = None
    protocol: int = Field(default=PROTOCOL_VERSION, description="the server's protocol version")


class ErrorFrame(_Frame):
    type: Literal["error"] = "error"
    code: str
    message: str
    ref: str | None = Field(default=None, description="the `id` of the client frame this answers")


class Joined(_Frame):
    type: Literal["joined"] = "joined"
    matchId: str
    mode: Mode
    players: list[str]
    status: MatchStatus
    ref: str | None = None
    protocol: int = Field(default=PROTOCOL_VERSION, description="the server's protocol version")


class Ack(_Frame):
    type: Literal["ack"] = "ack"
    id: str


class Left(_Frame):
    type: Literal["left"] = "left"
    matchId: str
    ref: str | None = None


class Rejected(_Frame):
    type: Literal["rejected"] = "rejected"
    id: str
    code: str
    message: str
    matchId: str | None = None


# here: connected; away: dropped, the seat held for the mode's reconnect grace; left: left the match
# (or, in a waiting match, dropped and the seat released); forfeited: the grace ran out.
Presence = Literal["here", "away", "left", "forfeited"]


class PlayerState(_Frame):
    score: int = 0
    x: int = 0
    y: int = 0
    left: bool = Field(default=False, description="left the match or forfeited it: out of the game")
    presence: Presence = "here"


class State(_Frame):
    """The match at `version`: (matchId, version) names exactly one content, however often it is sent."""

    type: Literal["state"] = "state"
    matchId: str
    mode: Mode
    version: int
    status: MatchStatus
    players: dict[str, PlayerState]
    winner: str | None = None
    applied: list[str] = Field(
        default_factory=list, description="ids of the events the batch that reached this version applied"
    )
    game: dict[str, Any] | None = Field(
        default=None, description="the mode's own state (a board, whose turn it is), as its plug-in keeps it"
    )


class Confirmed(_Frame):
    """A retried action id that was applied before: confirmed, and changed nothing."""

    type: Literal["confirmed"] = "confirmed"
    matchId: str
    ids: list[str]
    version: int = Field(description="the match's version now (the ids were applied at or before it)")


class PresenceChange(_Frame):
    """Another player of the match dropped, came back, forfeited or left."""

    type: Literal["presence"] = "presence"
    matchId: str
    playerId: str
    presence: Literal["away", "back", "forfeited", "left"]
    version: int = Field(description="the match version this change produced")
    graceMs: int | None = Field(
        default=None, description="away in a running match: milliseconds until the player forfeits"
    )


class Closing(_Frame):
    """Sent just before the server closes this connection, with why (an error code)."""

    type: Literal["closing"] = "closing"
    code: str
    message: str


class Entry(_Frame):
    rank: int
    playerId: str
    score: int
    subscore: int | None = Field(default=None, description="on a board whose tie-break is a subscore")


class Leaderboard(_Frame):
    type: Literal["leaderboard"] = "leaderboard"
    board: Board
    period: Period
    season: int
    entries: list[Entry]
    next: str | None = Field(default=None, description="a cursor for the page after `entries`")
    prev: str | None = Field(default=None, description="a cursor for the page before `entries`")
    me: Entry | None = None
    around: list[Entry] | None = None
    ref: str | None = None


class Rank(_Frame):
    type: Literal["rank"] = "rank"
    board: Board
    period: Period
    playerId: str
    score: int
    rank: int


class Notice(_Frame):
    type: Literal["notice"] = "notice"
    message: str


ServerFrame = Annotated[
    Pong
    | ErrorFrame
    | Joined
    | Ack
    | Left
    | Rejected
    | State
    | Confirmed
    | PresenceChange
    | Closing
    | Leaderboard
    | Rank
    | Notice,
    Field(discriminator="type"),
]
server_frame_adapter: TypeAdapter[Any] = TypeAdapter(ServerFrame)


def dump(frame: BaseModel) -> str:
    """A frame as the JSON text sent on the socket (unset optional fields left out)."""
    return frame.model_dump_json(exclude_none=True)


__all__ = [
    "PROTOCOL_VERSION",
    "Ack",
    "Act",
    "Board",
    "ClientFrame",
    "Closing",
    "Confirmed",
    "Entry",
    "ErrorFrame",
    "Join",
    "Joined",
    "Leaderboard",
    "LeaderboardQuery",
    "Leave",
    "Left",
    "MatchStatus",
    "Mode",
    "Move",
    "Notice",
    "Period",
    "Ping",
    "PlayerState",
    "Pong",
    "Presence",
    "PresenceChange",
    "Rank",
    "Rejected",
    "Score",
    "ServerFrame",
    "State",
    "dump",
    "server_frame_adapter",
]
