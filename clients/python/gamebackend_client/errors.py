"""Everything the SDK raises, and one class per `code` the server puts in an `error` frame or a `rejected`
push, in the server's tree (the same names, codes and parents as its error classes; the repository's
tests hold the two trees equal):

    GameClientError
    ├── AuthError                     the upgrade was refused with 401/403; never retried
    ├── ConnectionLost                closed, or reconnection gave up
    ├── RequestTimeout                no answer in time (also a TimeoutError)
    └── ServerError                   internal      an `error` frame; `.code`, `.message`, `.ref`
        ├── ActionRejected                          a `rejected` push, raised by `applied()`
        ├── BadRequest                bad_request
        │   ├── MalformedFrame        malformed_frame
        │   ├── UnknownAction         unknown_action
        │   ├── InvalidMessage        invalid_message
        │   ├── InvalidRequest        invalid_request
        │   ├── MethodNotAllowed      method_not_allowed
        │   └── UnsupportedMediaType  unsupported_media_type
        ├── Unauthorized              unauthorized
        ├── Forbidden                 forbidden
        │   └── NotInMatch            not_in_match
        ├── NotFound                  not_found
        │   └── MatchNotFound         match_not_found
        ├── Conflict                  conflict
        │   ├── MatchFull             match_full
        │   ├── MatchNotRunning       match_not_running
        │   └── StaleState            stale_state
        ├── ConnectionGone            connection_gone
        └── Unavailable               unavailable

A rejection is an ActionRejected *and* the class of its code: `except MatchNotRunning` catches both the
error frame and the rejected push of that code, `except ActionRejected` only rejections. A code this SDK
does not know yet (from a newer server) is a plain ServerError (or ActionRejected) carrying it.
"""

from __future__ import annotations

from typing import ClassVar, cast


class GameClientError(Exception):
    """Base class of everything the SDK raises."""


class AuthError(GameClientError):
    """The server refused the WebSocket upgrade (401/403). Never retried: get a new token."""

    def __init__(self, status: int, body: str = "") -> None:
        self.status = status
        self.body = body
        what = "unauthorized (missing, invalid or expired token)" if status == 401 else "forbidden"
        super().__init__(f"the server refused the connection with HTTP {status}: {what}; not retrying")


class ConnectionLost(GameClientError):
    """The connection is gone and will not come back (closed, or reconnection gave up)."""


class RequestTimeout(GameClientError, TimeoutError):
    """No answer within the request's timeout."""


class ServerError(GameClientError):
    """An `error` frame answering a request. `code` is its stable wire value; switch on it (or on the
    class), never on `message`. `status` is the HTTP status the server gives the same code."""

    code: str = "internal"  # the class's code; an instance carries the code it was raised with
    status: ClassVar[int] = 500

    def __init__(self, code: str, message: str, ref: str | None = None) -> None:
        self.code = code
        self.message = message
        self.ref = ref
        Exception.__init__(self, f"{code}: {message}")


class ActionRejected(ServerError):
    """The stream processor refused an acknowledged action (a `rejected` push); `ref` is the action id."""


class BadRequest(ServerError):
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


class Unauthorized(ServerError):
    """Missing or invalid credentials."""

    code = "unauthorized"
    status = 401


class Forbidden(ServerError):
    """The caller may not do this."""

    code = "forbidden"
    status = 403


class NotInMatch(Forbidden):
    """The player is not in that match."""

    code = "not_in_match"


class NotFound(ServerError):
    """No such resource."""

    code = "not_found"
    status = 404


class MatchNotFound(NotFound):
    """No such match."""

    code = "match_not_found"


class Conflict(ServerError):
    """The resource is not in a state that allows this."""

    code = "conflict"
    status = 409


class MatchFull(Conflict):
    """The match has no free seat."""

    code = "match_full"


class MatchNotRunning(Conflict):
    """The match is not running."""

    code = "match_not_running"


class StaleState(Conflict):
    """Someone else changed the item first; read it again and retry."""

    code = "stale_state"


class ConnectionGone(ServerError):
    """The WebSocket connection no longer exists."""

    code = "connection_gone"
    status = 410


class RateLimited(ServerError):
    """Too many frames or actions in too short a time; slow down."""

    code = "rate_limited"
    status = 429


class TooManyConnections(RateLimited):
    """The player opened more connections than allowed; the oldest ones are closed."""

    code = "too_many_connections"


class Unavailable(ServerError):
    """A dependency is unavailable; retry later."""

    code = "unavailable"
    status = 503


def _tree(root: type[ServerError]) -> list[type[ServerError]]:
    return [root, *(c for sub in root.__subclasses__() if sub is not ActionRejected for c in _tree(sub))]


# code -> class, for every class of the tree (the root included: "internal").
SERVER_ERRORS: dict[str, type[ServerError]] = {cls.code: cls for cls in _tree(ServerError)}
# code -> the class of a rejection of that code: both an ActionRejected and the code's class.
_REJECTIONS: dict[str, type[ServerError]] = {
    code: cast("type[ServerError]", type(f"Rejected{cls.__name__}", (ActionRejected, cls), {}))
    for code, cls in SERVER_ERRORS.items()
    if cls is not ServerError
}


def server_error(code: str, message: str, ref: str | None = None) -> ServerError:
    """The exception for an `error` frame: an instance of the class of `code` (ServerError if unknown)."""
    return SERVER_ERRORS.get(code, ServerError)(code, message, ref)


def rejection(code: str, message: str, action_id: str | None = None) -> ServerError:
    """The exception for a `rejected` push: an ActionRejected that is also the class of `code`."""
    return _REJECTIONS.get(code, ActionRejected)(code, message, action_id)


__all__ = [
    "SERVER_ERRORS",
    "ActionRejected",
    "AuthError",
    "BadRequest",
    "Conflict",
    "ConnectionGone",
    "ConnectionLost",
    "Forbidden",
    "GameClientError",
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
    "RequestTimeout",
    "ServerError",
    "StaleState",
    "TooManyConnections",
    "Unauthorized",
    "Unavailable",
    "UnknownAction",
    "UnsupportedMediaType",
    "rejection",
    "server_error",
]
