"""The wire protocol: every frame a client sends or receives, and every event on the stream.

The models are the public API. `docs/protocol.md` and its JSON Schema are generated from them
(`gamebackend schema`); a change here is a protocol change and goes into the CHANGELOG.

Client frames are JSON objects with an `action`; server frames are JSON objects with a `type`.

Every model and adapter is built on first use (`defer_build`), not at import: each function validates a
few of them (the processor no client frame, `ping` only its own), and builds those once. SnapStart
builds them all before the snapshot (`models()`, backend.snapstart).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from backend.ids import ACTION_ID_PATTERN, MATCH_ID_PATTERN, PLAYER_ID_PATTERN
from backend.vocabulary import (
    ALLTIME,
    BOARD_NAME_PATTERN,
    GLOBAL_BOARD,
    MODE_NAME_PATTERN,
    PERIOD_NAME_PATTERN,
    PROTOCOL_VERSION,
    MatchStatus,
)

# The grammars of a mode's action kinds and timer kinds (backend.game.plugin declares them for the modes).
KIND_PATTERN = r"^[a-z][a-z0-9_]{0,23}$"
TIMER_KIND_PATTERN = r"^[a-z][a-z0-9-]{0,15}$"

# The stream record's schema (GameEvent.v). Records and event-log items of an earlier version are read
# through `upcast`, so the consumer reads every version it lists here.
EVENT_SCHEMA_VERSION = 3
EVENT_SCHEMA_VERSIONS: tuple[int, ...] = (1, 2, 3)

# The wire names of backend.vocabulary, under the names the frames use. Boards and periods are data
# (serverless.yml custom.leaderboards): the frames check their grammar, the use cases that they exist.
Mode = Annotated[str, Field(pattern=MODE_NAME_PATTERN, description="a mode of custom.modes")]
Board = Annotated[str, Field(pattern=BOARD_NAME_PATTERN, description="a board of custom.leaderboards")]
Period = Annotated[str, Field(pattern=PERIOD_NAME_PATTERN, description="one of the board's periods")]
# Opaque: a `next` or `prev` of an earlier `leaderboard` answer (base64url).
Cursor = Annotated[str, Field(max_length=256, pattern=r"^[A-Za-z0-9_-]+$")]

RequestId = Annotated[str, Field(pattern=ACTION_ID_PATTERN, description="client-chosen id, echoed back")]
MatchIdField = Annotated[str, Field(pattern=MATCH_ID_PATTERN)]
PlayerIdField = Annotated[str, Field(pattern=PLAYER_ID_PATTERN)]


class _Frame(BaseModel):
    # Unknown fields are refused so that a typo is an error, not silently ignored; strict so that
    # "5" is not quietly taken for 5.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)


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


# The `act` frame (action "act") is each mode's: its `kind`s and their fields are declared by the mode's
# plug-in (backend.game.plugin.ActFrame, validated by backend.frames through backend.game.modes).


class Leave(_Frame):
    action: Literal["leave"]
    matchId: MatchIdField
    id: RequestId | None = None


class LeaderboardQuery(_Frame):
    action: Literal["leaderboard"]
    board: Board = GLOBAL_BOARD
    period: Period = ALLTIME
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


ClientFrame = Annotated[Ping | Join | Leave | LeaderboardQuery, Field(discriminator="action")]
CLIENT_ACTIONS: tuple[str, ...] = ("ping", "join", "act", "leave", "leaderboard")
client_frame_adapter: TypeAdapter[Any] = TypeAdapter(ClientFrame, config=ConfigDict(defer_build=True))


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
server_frame_adapter: TypeAdapter[Any] = TypeAdapter(ServerFrame, config=ConfigDict(defer_build=True))


# --- the stream: one record per accepted client action, connection end and timer ------------------


class GameEvent(BaseModel):
    """A Kinesis record. Partition key = matchId, so one match's events stay in order."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    v: Literal[3] = 3
    eventId: str
    matchId: MatchIdField
    playerId: PlayerIdField = Field(description="from the authorizer context, never from the client")
    connectionId: str | None = None
    receivedAt: int = Field(description="server receive time, epoch milliseconds")
    type: Literal["join", "leave", "act", "end", "disconnect", "timer"] = Field(
        description="`act`: an action of the match's mode (`kind`, `args`); "
        "`disconnect`: the player's connection `connectionId` closed (`reason` says how); "
        "`timer`: a timer the rules scheduled is due (`timer`, `ref`)"
    )
    actionId: Annotated[str, Field(pattern=ACTION_ID_PATTERN)] | None = None
    kind: Annotated[str, Field(pattern=KIND_PATTERN)] | None = Field(
        default=None, description="act: the action's kind, one of the mode's (backend.game.plugin)"
    )
    args: dict[str, Any] | None = Field(
        default=None, description="act: the action's own fields, as the mode's model validated them"
    )
    mode: Mode | None = None
    roster: list[PlayerIdField] | None = Field(
        default=None, description="join: the match's roster as matchmaking left it (at rosterGen)"
    )
    rosterGen: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="join: the roster's generation (every seat claimed or released adds one)"
    )
    released: bool | None = Field(
        default=None, description="disconnect, leave: the player's waiting seat was released in the roster"
    )
    reason: Literal["closed", "gone", "probe"] | None = Field(
        default=None,
        description="disconnect: `$disconnect` (closed), a push answered 410 (gone), a presence probe did",
    )
    timer: Annotated[str, Field(pattern=TIMER_KIND_PATTERN)] | None = Field(
        default=None,
        description="timer: `grace` (a dropped player's reconnect grace ran out), `duration` (the match's "
        "time ran out), or a kind of the mode's own (a turn timer)",
    )
    ref: Annotated[int, Field(ge=1)] | None = Field(
        default=None,
        description="timer: what it is for (grace: the version at which the player went away; duration: "
        "the match's start time)",
    )

    @model_validator(mode="before")
    @classmethod
    def _upcast(cls, raw: Any) -> Any:
        return upcast(raw) if isinstance(raw, dict) else raw

    @model_validator(mode="after")
    def _fields_of_its_type(self) -> GameEvent:
        # A record the rules could not apply must fail here, at decoding, where it is dead-lettered alone.
        needed = {
            "act": ("actionId", "kind", "args"),
            "disconnect": ("connectionId", "reason"),
            "timer": ("timer", "ref"),
        }.get(self.type, ())
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.type} event needs {', '.join(missing)}")
        return self


def upcast(raw: dict[str, Any]) -> dict[str, Any]:
    """A stream record or logged event of any known schema version, as the current version reads it
    (EVENT_SCHEMA_VERSIONS). Unknown versions are left as they are, for the model to refuse.
    - v1 -> v2: a `disconnect` names its reason (v1's came from `$disconnect` or a 410, both "the
      connection closed"); everything else v2 adds is optional.
    - v2 -> v3: the race modes' `score` and `move` events are `act` events of those kinds, their fields
      in `args` (a mode's actions are its plug-in's, no longer the stream schema's)."""
    if raw.get("v") == 1:
        raw = {**raw, "v": 2}
        if raw.get("type") == "disconnect":
            raw.setdefault("reason", "closed")
    if raw.get("v", 2) == 2 and _V2_FIELDS & raw.keys():
        # Whatever the record holds (a malformed one must reach the model, which refuses it clearly).
        kind = raw.get("type")
        fields = {"score": ("points",), "move": ("x", "y")}.get(kind, ()) if isinstance(kind, str) else ()
        args = {f: raw[f] for f in fields if raw.get(f) is not None}
        rest = {k: v for k, v in raw.items() if k not in _V2_FIELDS}
        if fields:
            rest.update(type="act", kind=raw["type"], args=args)
        raw = {**rest, "v": 3} if "v" in raw else rest
    elif raw.get("v") == 2:
        raw = {**raw, "v": 3}
    return raw


_V2_FIELDS = frozenset({"points", "x", "y"})


def read_event(raw: dict[str, Any]) -> GameEvent:
    """A GameEvent from the JSON of any known schema version."""
    return GameEvent.model_validate(upcast(raw))


def models() -> list[Any]:
    """Every model and type adapter of this module (to build them ahead of need)."""
    found = [v for v in globals().values() if isinstance(v, type) and issubclass(v, BaseModel)]
    ours = [m for m in found if m.__module__ == __name__ and not m.__name__.startswith("_")]
    return [*ours, client_frame_adapter, server_frame_adapter]


def dump(frame: BaseModel) -> str:
    return frame.model_dump_json(exclude_none=True)
