"""What the message route does with a frame: validate, dispatch to the use case, shape the answer.

Every failure becomes an error frame with a stable `code`; nothing raised here escapes to API Gateway
(which would answer the client with an opaque "Internal server error").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from backend import frames
from backend.errors import GameError, MalformedFrame, Unavailable
from backend.ids import ConnectionId, PlayerId
from backend.protocol import Ack, ErrorFrame, Ping, Pong, dump
from backend.telemetry import MetricUnit, logger, metrics


@dataclass(frozen=True)
class Caller:
    connection_id: ConnectionId
    player_id: PlayerId
    role: str
    received_at: int  # epoch ms, the server's clock

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Caller:
        ctx = event["requestContext"]
        auth = ctx.get("authorizer") or {}
        return cls(
            connection_id=ConnectionId(ctx["connectionId"]),
            player_id=PlayerId(auth.get("playerId", "")),
            role=str(auth.get("role", "player")),
            received_at=int(ctx.get("requestTimeEpoch") or time.time() * 1000),
        )


def _ping(caller: Caller, frame: Ping) -> BaseModel:
    return Pong(ref=frame.id)


Handler = Callable[[Caller, Any], BaseModel]
_HANDLERS: dict[type[BaseModel], Handler] = {Ping: _ping}


def register(model: type[BaseModel], fn: Handler) -> None:
    _HANDLERS[model] = fn


def handle_frame(caller: Caller, body: str | None, *, is_base64: bool = False) -> str:
    ref = None
    try:
        if is_base64:
            raise MalformedFrame("binary frames are not supported; send JSON text")
        raw = frames.decode(body)
        ref = frames.request_ref(raw)
        frame = frames.parse(raw)
        fn = _HANDLERS.get(type(frame))
        if fn is None:
            _load_game_routes()
            fn = _HANDLERS[type(frame)]
        answer = fn(caller, frame)
        if isinstance(answer, Ack):
            metrics.add_metric(name="ActionsAccepted", unit=MetricUnit.Count, value=1)
        return dump(answer)
    except GameError as exc:
        metrics.add_metric(name="FramesRefused", unit=MetricUnit.Count, value=1)
        logger.info("frame refused", extra={"code": exc.code, "error": exc.message, "ref": ref})
        return dump(ErrorFrame(code=exc.code, message=exc.message, ref=ref))
    except Exception as exc:
        # A dependency failed (throttling, a timeout, a bug): the client still gets a frame it can act
        # on, with its ref, instead of API Gateway's opaque "Internal server error".
        retryable = type(exc).__module__.startswith("botocore")
        logger.exception("frame failed", extra={"ref": ref, "retryable": retryable})
        error = (
            Unavailable("a backend dependency failed; retry") if retryable else GameError("internal error")
        )
        return dump(ErrorFrame(code=error.code, message=error.message, ref=ref))


def _load_game_routes() -> None:
    # Imported on first use so that a `ping` never pays for the game modules and their clients.
    import backend.actions  # noqa: F401
