"""What the message route does with a frame: validate, dispatch to the use case, shape the answer.

Every failure becomes an error frame with a stable `code`; nothing raised here escapes to API Gateway
(which would answer the client with an opaque "Internal server error").

`ping` is answered here; every other frame goes to the game's routes (`backend.actions.GameRoutes`),
which the caller passes as a function that builds them on first use, so that a `ping` never pays for
the game modules and their clients.

The game's routes sit behind a circuit breaker on the data plane (DynamoDB and Kinesis): once they
have failed `FAILURE_THRESHOLD` frames in a row on a failing dependency (after the SDK's retries),
frames are answered `unavailable` at once for the cool-down, without a call, instead of each waiting
seconds for its retries to run out. Shedding happens before anything is written: a shed action was
never put on the stream and never acknowledged, and the client re-sends it (same id) later. An action
that was acknowledged is on the stream already, and nothing here can take it back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from pydantic import BaseModel

from backend import frames
from backend.aws import downstream_failing, failed_dependency
from backend.breaker import CircuitBreaker, CircuitOpen
from backend.caller import Caller
from backend.errors import GameError, MalformedFrame, Unavailable
from backend.protocol import Ack, ErrorFrame, Ping, Pong, dump
from backend.telemetry import MetricUnit, logger, metrics


class Routes(Protocol):
    def handle(self, caller: Caller, frame: BaseModel) -> BaseModel: ...


def handle_frame(
    routes: Callable[[], Routes],
    caller: Caller,
    body: str | None,
    *,
    is_base64: bool = False,
    breaker: CircuitBreaker | None = None,
) -> str:
    ref = None
    try:
        if is_base64:
            raise MalformedFrame("binary frames are not supported; send JSON text")
        raw = frames.decode(body)
        ref = frames.request_ref(raw)
        frame = frames.parse(raw)
        if isinstance(frame, Ping):
            answer: BaseModel = Pong(ref=frame.id)
        else:
            answer = _guarded(routes, caller, frame, breaker)
        if isinstance(answer, Ack):
            metrics.add_metric(name="ActionsAccepted", unit=MetricUnit.Count, value=1)
        return dump(answer)
    except CircuitOpen as exc:
        metrics.add_metric(name="FramesShed", unit=MetricUnit.Count, value=1)
        logger.info("frame shed", extra={"downstream": exc.downstream, "ref": ref})
        shed = Unavailable(f"the game's data store is failing; retry in {max(1, round(exc.retry_after))} s")
        return dump(ErrorFrame(code=shed.code, message=shed.message, ref=ref))
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


def _guarded(
    routes: Callable[[], Routes], caller: Caller, frame: BaseModel, breaker: CircuitBreaker | None
) -> BaseModel:
    """The frame's use case, through the breaker: shed when it is open; its outcome reported to it."""
    if breaker is None:
        return routes().handle(caller, frame)
    breaker.check()
    try:
        answer = routes().handle(caller, frame)
    except Exception as exc:
        if downstream_failing(exc):
            breaker.failure()
        else:
            breaker.success()  # a refusal (a GameError) or a bug: the data plane answered
        raise
    breaker.success()
    return answer


def refuse(body: str | None, error: GameError) -> str:
    """An error frame for a frame that is not handled at all (the flood guard), with its `ref` when the
    frame is readable enough to have one."""
    try:
        ref = frames.request_ref(frames.decode(body))
    except GameError:
        ref = None
    metrics.add_metric(name="FramesRefused", unit=MetricUnit.Count, value=1)
    return dump(ErrorFrame(code=error.code, message=error.message, ref=ref))
