"""A gevent-friendly WebSocket client of the game protocol, for Locust users.

Locust runs users as greenlets under gevent's monkey patching, where the asyncio SDK (gamebackend_client)
cannot run; `websockets.sync.client` can (its reader thread becomes a greenlet). One `GameSocket` is
one connection: a reader greenlet hands every frame to `on_frame`, and `request()` sends one frame and
waits for its direct answer. A user has at most one request in flight, so API Gateway's own error
frames (`{"message": "Internal server error", ...}`, which carry no `ref`) answer that request.

Failures are exceptions whose class names the cause, so that Locust's failure table groups them:
ConnectRefused, ErrorFrame, RequestTimeout, Rejected, ConnectionLost.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import gevent
from gevent.event import AsyncResult
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.sync.client import ClientConnection, connect

from backend.vocabulary import PROTOCOL_VERSION

Frame = dict[str, Any]
ANSWERS = ("ack", "pong", "joined", "left", "leaderboard", "error")


class LoadTestFailure(Exception):
    """Base class: the cause is the class, the detail its message."""


class ConnectRefused(LoadTestFailure):
    """The upgrade was refused (an HTTP status) or the TCP connection failed."""


class ErrorFrame(LoadTestFailure):
    """An `error` frame (by code), or API Gateway's own error message."""


class RequestTimeout(LoadTestFailure):
    """No answer (or no push) within the time allowed."""


class Rejected(LoadTestFailure):
    """The stream processor refused an acknowledged action (by code)."""


class ConnectionLost(LoadTestFailure):
    """The socket closed under the user."""


def socket_url(host: str, token: str) -> str:
    """`ws://127.0.0.1:3001` -> `ws://127.0.0.1:3001/?token=…`; a stage URL keeps its path
    (`wss://id.execute-api.region.amazonaws.com/dev?token=…`)."""
    parts = urlsplit(host)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"the host must be a ws:// or wss:// URL, not {host!r}")
    query = f"token={quote(token)}&protocol={PROTOCOL_VERSION}"  # another version refuses the upgrade
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, ""))


def error_text(frame: Frame) -> str | None:
    """The failure an answer stands for, or None when it is not an error."""
    if frame.get("type") == "error":
        return str(frame.get("code"))
    if "type" not in frame and "message" in frame:  # API Gateway's own answer
        return f"gateway: {frame['message']}"
    return None


class GameSocket:
    def __init__(self, host: str, token: str, on_frame: Callable[[Frame], None]) -> None:
        self.url = socket_url(host, token)
        self.on_frame = on_frame
        self.ws: ClientConnection | None = None
        self.closed = True
        self.close_reason = ""
        self._waiting: tuple[str | None, AsyncResult[Frame]] | None = None
        self._reader: gevent.Greenlet[[], None] | None = None

    def connect(self, timeout: float) -> float:
        """Opens the socket; returns the time it took in ms."""
        began = time.perf_counter()
        try:
            self.ws = connect(
                self.url,
                open_timeout=timeout,
                close_timeout=2,
                ping_interval=None,  # API Gateway never pings; neither does a game client here
                compression=None,
                proxy=None,
                max_size=128 * 1024,
            )
        except InvalidStatus as exc:
            raise ConnectRefused(f"HTTP {exc.response.status_code}") from None
        except TimeoutError:
            raise RequestTimeout(f"no upgrade within {timeout:g} s") from None
        except OSError as exc:
            raise ConnectRefused(type(exc).__name__) from None
        except WebSocketException as exc:
            raise ConnectRefused(type(exc).__name__) from None
        self.closed = False
        self._reader = gevent.spawn(self._read)
        return (time.perf_counter() - began) * 1000

    def _read(self) -> None:
        assert self.ws is not None
        try:
            for raw in self.ws:
                try:
                    frame = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(frame, dict):
                    self._dispatch(frame)
            self.close_reason = f"closed ({self.ws.close_code})"
        except ConnectionClosed as exc:
            self.close_reason = f"closed ({exc.rcvd.code if exc.rcvd else 1006})"
        except Exception as exc:
            self.close_reason = type(exc).__name__
        finally:
            self.closed = True
            waiting = self._waiting
            if waiting is not None and not waiting[1].ready():
                waiting[1].set_exception(ConnectionLost(self.close_reason))

    def _dispatch(self, frame: Frame) -> None:
        waiting = self._waiting
        if waiting is not None:
            ref, result = waiting
            kind = frame.get("type")
            answers = (
                (kind == "ack" and frame.get("id") == ref)
                or (kind in ANSWERS and kind != "ack" and frame.get("ref") == ref)
                or ("type" not in frame and "message" in frame)
            )
            if answers and not result.ready():
                self._waiting = None
                result.set(frame)
        self.on_frame(frame)

    def request(self, frame: Frame, timeout: float) -> tuple[Frame, float]:
        """Sends a frame and waits for its direct answer: (answer, ms). Raises RequestTimeout or
        ConnectionLost. An error answer is returned, not raised: the caller decides."""
        if self.ws is None or self.closed:
            raise ConnectionLost(self.close_reason or "not connected")
        result: AsyncResult[Frame] = AsyncResult()
        self._waiting = (frame.get("id"), result)
        began = time.perf_counter()
        try:
            self.ws.send(json.dumps(frame))
            answer = result.get(timeout=timeout)
        except gevent.Timeout:
            raise RequestTimeout(f"no answer to {frame.get('action')} within {timeout:g} s") from None
        except ConnectionClosed:
            raise ConnectionLost(self.close_reason or "closed") from None
        finally:
            if self._waiting is not None and self._waiting[1] is result:
                self._waiting = None
        # get() raises gevent.Timeout rather than return nothing; None would be a set() without a frame,
        # which _dispatch never does.
        assert answer is not None
        return answer, (time.perf_counter() - began) * 1000

    def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):  # closing is best effort
                self.ws.close()
        if self._reader is not None:
            self._reader.join(timeout=3)
        self.closed = True
