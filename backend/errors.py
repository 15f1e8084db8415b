"""Every error the backend reports, in one tree.

    GameError                     code                 HTTP
    ├── BadRequest                bad_request          400
    │   ├── MalformedFrame        malformed_frame      400  (not JSON, not an object)
    │   ├── UnknownAction         unknown_action       400
    │   ├── InvalidMessage        invalid_message      422  (a frame's fields fail validation)
    │   ├── InvalidRequest        invalid_request      422  (an HTTP request's parameters or body do)
    │   ├── MethodNotAllowed      method_not_allowed   405
    │   └── UnsupportedMediaType  unsupported_media_type 415
    ├── Unauthorized              unauthorized         401  (no token, bad signature, expired, ...)
    ├── Forbidden                 forbidden            403
    │   └── NotInMatch            not_in_match         403
    ├── NotFound                  not_found            404
    │   └── MatchNotFound         match_not_found      404
    ├── Conflict                  conflict             409
    │   ├── MatchFull             match_full           409
    │   ├── MatchNotRunning       match_not_running    409
    │   └── StaleState            stale_state          409  (a conditional write lost a race)
    ├── ConnectionGone            connection_gone      410  (the Management API's GoneException)
    ├── RateLimited               rate_limited         429  (too many frames or actions, too fast)
    │   └── TooManyConnections    too_many_connections 429  (a player's newer connections closed this one)
    └── Unavailable               unavailable          503

`code` is the stable, documented wire value (the `code` of an error frame or of an HTTP error body);
clients switch on it, never on `message`. AWS errors are translated into this tree where they are
caught (the stores), so game code never inspects botocore error codes.
"""

from __future__ import annotations

from typing import ClassVar


class GameError(Exception):
    code: ClassVar[str] = "internal"
    status: ClassVar[int] = 500

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.__class__.__doc__ or self.code
        super().__init__(self.message)


class BadRequest(GameError):
    """The request is not understood."""

    code = "bad_request"
    status = 400


class MalformedFrame(BadRequest):
    """The frame is not a JSON object."""

    code = "malformed_frame"


class UnknownAction(BadRequest):
    """The frame's action is not one of the protocol's actions."""

    code = "unknown_action"


class InvalidMessage(BadRequest):
    """A field of the message is missing or has the wrong type or value."""

    code = "invalid_message"
    status = 422


class InvalidRequest(BadRequest):
    """A parameter or the body of an HTTP request fails validation."""

    code = "invalid_request"
    status = 422


class MethodNotAllowed(BadRequest):
    """The resource exists but does not take this method."""

    code = "method_not_allowed"
    status = 405


class UnsupportedMediaType(BadRequest):
    """The body must be application/json."""

    code = "unsupported_media_type"
    status = 415


class Unauthorized(GameError):
    """Missing or invalid credentials."""

    code = "unauthorized"
    status = 401


class Forbidden(GameError):
    """The caller may not do this."""

    code = "forbidden"
    status = 403


class NotInMatch(Forbidden):
    """The player is not in that match."""

    code = "not_in_match"


class NotFound(GameError):
    """No such resource."""

    code = "not_found"
    status = 404


class MatchNotFound(NotFound):
    """No such match."""

    code = "match_not_found"


class Conflict(GameError):
    """The resource is not in a state that allows this."""

    code = "conflict"
    status = 409


class MatchFull(Conflict):
    """The match has no free seat."""

    code = "match_full"


class MatchNotRunning(Conflict):
    """The match is not running."""

    code = "match_not_running"


class IllegalMove(Conflict):
    """The game's rules do not allow this action now (not the player's turn, a cell already taken)."""

    code = "illegal_move"


class Implausible(Conflict):
    """A reported score beyond the mode's plausibility bounds (points per action, per second of the match,
    actions per second): refused by the rules, the same way on every replay."""

    code = "implausible"


class StaleState(Conflict):
    """Someone else changed the item first; read it again and retry."""

    code = "stale_state"


class ConnectionGone(GameError):
    """The WebSocket connection no longer exists."""

    code = "connection_gone"
    status = 410


class RateLimited(GameError):
    """Too many frames or actions in too short a time; slow down."""

    code = "rate_limited"
    status = 429


class TooManyConnections(RateLimited):
    """The player opened more connections than allowed; the oldest ones are closed."""

    code = "too_many_connections"


class Unavailable(GameError):
    """A dependency is unavailable; retry later."""

    code = "unavailable"
    status = 503


__all__ = [
    "BadRequest",
    "Conflict",
    "ConnectionGone",
    "Forbidden",
    "GameError",
    "InvalidMessage",
    "InvalidRequest",
    "MalformedFrame",
    "MatchFull",
    "MatchNotFound",
    "MatchNotRunning",
    "MethodNotAllowed",
    "NotFound",
    "NotInMatch",
    "RateLimited",
    "StaleState",
    "TooManyConnections",
    "Unauthorized",
    "Unavailable",
    "UnknownAction",
    "UnsupportedMediaType",
]
