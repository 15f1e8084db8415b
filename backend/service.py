"""What the message route does with a frame: validate, dispatch to the use case, shape the answer.

Every failure becomes an error frame with a stable `code`; nothing raised here escapes to API Gateway
(which would answer the client with an opaque "Internal server error").

`ping` is answered here; every other frame goes to the game's routes (`backend.actions.GameRoutes`),
which the caller passes as a function that builds them on first use, so that a `ping` never pays for
the game modules and their clients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from pydantic import BaseModel

from backend import frames
from backend.aws import failed_dependency
from backend.caller import Caller
from backend.errors import GameError, MalformedFrame, Unavailable
from backend.protocol import Ack, ErrorFrame, Ping, Pong, dump
from backend.telemetry import MetricUnit, logger, metrics


class Routes(Protocol):
    def handle(self, caller: Caller, frame: BaseModel) -> BaseModel: ...


def handle_frame(
    routes: Callable[[], Routes], caller: Caller, body: str | None, *, is_base64: bool = False
) -> str:
    ref = None
    try:
        if is_base64:
            raise MalformedFrame("binary frames are not supported; send JSON text")
        raw = frames.decode(body)
        ref = frames.request_ref(raw)
        frame = frames.parse(raw)
        answer = Pong(ref=frame.id) if isinstance(frame, Ping) else routes().handle(caller, frame)
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
        retryable = failed_dependency(exc)
        logger.exception("frame failed", extra={"ref": ref, "retryable": retryable})
        error = (
            Unavailable("a backend dependency failed; retry") if retryable else GameError("internal error")
        )
        return dump(ErrorFrame(code=error.code, message=error.message, ref=ref))


def refuse(body: str | None, error: GameError) -> str:
    """An error frame for a frame that is not handled at all (the flood guard), with its `ref` when the
    frame is readable enough to have one."""
    try:
        ref = frames.request_ref(frames.decode(body))
    except GameError:
        ref = None
    metrics.add_metric(name="FramesRefused", unit=MetricUnit.Count, value=1)
    return dump(ErrorFrame(code=error.code, message=error.message, ref=ref))
