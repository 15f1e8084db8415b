"""The Python SDK of the game backend: `async with GameClient(url, token) as client: ...`.

It depends on `websockets` and `pydantic` only, and ships without the backend: the frames are its own
models (`gamebackend_client.protocol`), checked against the backend's JSON Schema by the backend's
tests, and every error code is a class of its own (`gamebackend_client.errors`).
"""

from __future__ import annotations

from gamebackend_client import errors, protocol
from gamebackend_client.client import Event, GameClient, GatewayMessage, TokenSource, backoff_delay
from gamebackend_client.errors import (
    SERVER_ERRORS,
    ActionRejected,
    AuthError,
    BadRequest,
    Conflict,
    ConnectionGone,
    ConnectionLost,
    Forbidden,
    GameClientError,
    InvalidMessage,
    InvalidRequest,
    MalformedFrame,
    MatchFull,
    MatchNotFound,
    MatchNotRunning,
    MethodNotAllowed,
    NotFound,
    NotInMatch,
    RateLimited,
    RequestTimeout,
    ServerError,
    StaleState,
    TooManyConnections,
    Unauthorized,
    Unavailable,
    UnknownAction,
    UnsupportedMediaType,
    rejection,
    server_error,
)
from gamebackend_client.protocol import PROTOCOL_VERSION

__version__ = "0.1.0"

__all__ = [
    "PROTOCOL_VERSION",
    "SERVER_ERRORS",
    "ActionRejected",
    "AuthError",
    "BadRequest",
    "Conflict",
    "ConnectionGone",
    "ConnectionLost",
    "Event",
    "Forbidden",
    "GameClient",
    "GameClientError",
    "GatewayMessage",
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
    "TokenSource",
    "TooManyConnections",
    "Unauthorized",
    "Unavailable",
    "UnknownAction",
    "UnsupportedMediaType",
    "__version__",
    "backoff_delay",
    "errors",
    "protocol",
    "rejection",
    "server_error",
]
