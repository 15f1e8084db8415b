"""The client: one WebSocket, typed requests, pushed events, reconnection.

    async with GameClient("ws://127.0.0.1:3001", token) as client:
        joined = await client.join("practice")
        ack = await client.score(40)                 # answered by the message route
        state = await client.applied(ack.id)         # pushed later by the stream processor
        async for event in client.events():          # State, Rank, Rejected, Notice (and stray errors)
            ...

What it does for the caller:
- request/answer correlation: every request carries a generated `id`; the answer (`ack` by `id`,
  `pong`/`joined`/`left`/`leaderboard`/`error` by `ref`) resolves it, or the per-request timeout fires;
- an `error` frame raises the `ServerError` subclass of its `code` (gamebackend_client.errors: the
  server's tree of codes), so `except NotInMatch` or `except Forbidden` work on the client too;
- heartbeats: a `ping` frame whenever nothing was sent for `heartbeat_interval` seconds, so API
  Gateway's 10-minute idle timeout never closes a client that is merely quiet; a ping left unanswered
  closes the socket, which triggers a reconnection;
- reconnection: when the socket drops, it reconnects with exponential backoff and full jitter, joins
  the current match again (`join` with `matchId`), then re-sends every request not yet answered, acts
  included: the processor drops an action id it has already applied, so a re-sent action is applied
  once. A refused upgrade with 401/403 is never retried: it raises `AuthError`;
- throttling and API Gateway's untyped frames: an `error` answer `rate_limited` is not raised but the
  request is sent again after a backoff with full jitter (up to `max_throttle_retries` times); a frame
  with a string `message` and no `type` (`GatewayMessage`: an integration failed, or API Gateway
  throttled the route) answers no request it names, so every request still unanswered is sent again
  after a backoff with full jitter (the server applies an action id once). Both are logged, counted
  (`throttled`, `gateway_messages`) and yielded by `events()`, never swallowed;
- `closing` (the server is about to close this socket): `too_many_connections` ends the client
  (reconnecting would close the player's newer connection in turn); `rate_limited` reconnects as
  after any drop.

A re-sent action that was applied before is answered by a `confirmed` frame (protocol v2), which
settles `applied()` with the newest state of the match.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.protocol import State as SocketState

from gamebackend_client.errors import (
    AuthError,
    ConnectionLost,
    GameClientError,
    RateLimited,
    RequestTimeout,
    ServerError,
    TooManyConnections,
    rejection,
    server_error,
)
from gamebackend_client.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Action,
    Board,
    Closing,
    Confirmed,
    ErrorFrame,
    Join,
    Joined,
    Leaderboard,
    LeaderboardQuery,
    Leave,
    Left,
    Mode,
    Move,
    Notice,
    Period,
    Ping,
    Pong,
    PresenceChange,
    Rank,
    Rejected,
    Score,
    State,
    dump,
    server_frame_adapter,
)

log = logging.getLogger("gamebackend_client")


class GatewayMessage(BaseModel):
    """API Gateway's own frame, which has no `type`: {"message": "Internal server error", ...} when the
    integration failed, or a throttled route's answer. It says nothing of which frame it answers."""

    model_config = ConfigDict(extra="allow", frozen=True)

    message: str
    connectionId: str | None = None
    requestId: str | None = None


# What `events()` yields: everything the server pushes without being asked, an `error` frame that
# answers no request of this client (for instance one with no `ref`), and API Gateway's own frames.
Event = State | Confirmed | PresenceChange | Closing | Rank | Rejected | Notice | ErrorFrame | GatewayMessage
TokenSource = str | Callable[[], str] | Callable[[], Awaitable[str]]
T = TypeVar("T", bound=BaseModel)

API_GATEWAY_IDLE_TIMEOUT = 600.0
DEFAULT_HEARTBEAT = 60.0
OUTCOMES_KEPT = 10_000
EVENTS_KEPT = 10_000
MATCHES_KEPT = 16
STABLE_AFTER = 10.0  # seconds a socket must stay up before the backoff starts from zero again


# --- backoff --------------------------------------------------------------------------------------


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)].

    Full jitter spreads a crowd of clients that lost their sockets at the same moment (a deploy, a
    gateway restart) instead of having them all come back in lockstep."""
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    ceiling = min(cap, base * (2 ** min(attempt, 62)))
    return (rng or random).uniform(0, ceiling)


# --- the client -----------------------------------------------------------------------------------


@dataclass
class _Pending:
    id: str
    text: str
    answer: asyncio.Future[BaseModel]
    kind: str  # the frame's action
    sent_on: int = -1  # generation of the connection it was last sent on
    throttled: int = 0  # `rate_limited` answers so far


@dataclass
class _Outcome:
    """What became of an action: applied (the first state listing it) or rejected."""

    done: asyncio.Event = field(default_factory=asyncio.Event)
    state: State | None = None
    rejected: Rejected | None = None
    at: float | None = None  # time.monotonic() when it was known


class _End:
    pass


class GameClient:
    """An asyncio client of the WebSocket API. Use as `async with GameClient(url, token) as c:`."""

    def __init__(
        self,
        url: str,
        token: TokenSource,
        *,
        request_timeout: float = 10.0,
        open_timeout: float = 10.0,
        heartbeat_interval: float | None = DEFAULT_HEARTBEAT,
        reconnect: bool = True,
        max_reconnect_attempts: int | None = 12,
        backoff_base: float = 0.2,
        backoff_cap: float = 10.0,
        rng: random.Random | None = None,
        max_throttle_retries: int = 6,
    ) -> None:
        if heartbeat_interval is not None and not 0 < heartbeat_interval < API_GATEWAY_IDLE_TIMEOUT:
            raise ValueError("heartbeat_interval must be in (0, 600) s: API Gateway's idle timeout is 600 s")
        self.url = url
        self._token = token
        self.request_timeout = request_timeout
        self.open_timeout = open_timeout
        self.heartbeat_interval = heartbeat_interval
        self.reconnect = reconnect
        self.max_reconnect_attempts = max_reconnect_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._rng = rng or random.Random()
        self.max_throttle_retries = max_throttle_retries

        self.match_id: str | None = None  # the match joined last (re-joined after a reconnection)
        self.mode: Mode | None = None
        self.state: State | None = None  # the newest state of the current match
        self.reconnects = 0  # successful reconnections
        self.connects = 0  # successful upgrades, the first included
        self.resent = 0  # requests sent again on a new socket after a reconnection
        self.throttled = 0  # `rate_limited` answers, each followed by a re-send after a backoff
        self.gateway_messages = 0  # API Gateway's untyped frames, each followed by re-sends
        self.closing: Closing | None = None  # why the server said it closes this socket, if it did

        self._prefix = uuid.uuid4().hex[:10]
        self._counter = itertools.count(1)
        self._ws: ClientConnection | None = None
        self._generation = 0
        self._ready = asyncio.Event()
        self._pending: dict[str, _Pending] = {}
        self._outcomes: OrderedDict[str, _Outcome] = OrderedDict()
        self._latest: OrderedDict[str, State] = OrderedDict()  # newest state of recent matches
        self._events: asyncio.Queue[Event | _End] = asyncio.Queue()
        self._dropped_events = 0
        self._state_changed = asyncio.Event()  # replaced by a fresh one on every new state
        self._closed_cleanly = False
        self._closing = False
        self._error: BaseException | None = None
        self._reader: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._last_sent = time.monotonic()
        self._gateway_failures = 0  # untyped frames in a row (reset by any answer)
        self._retries: set[asyncio.Task[None]] = set()

    # --- lifecycle --------------------------------------------------------------------------------

    async def __aenter__(self) -> GameClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    @property
    def connection(self) -> ClientConnection | None:
        """The current socket (None while reconnecting). Exposed for tests and diagnostics."""
        return self._ws

    def new_id(self) -> str:
        """A request/action id unique to this client (action ids must be unique per player; a match's
        `applied` list mixes every player's ids, so they are made globally unique)."""
        return f"{self._prefix}-{next(self._counter)}"

    async def connect(self) -> None:
        """Opens the socket. The first attempt is not retried: a wrong URL or token fails at once."""
        if self._supervisor is not None:
            raise RuntimeError("already connected")
        try:
            self._ws = await self._open()
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise ConnectionLost(f"could not connect to {self.url}: {exc}") from exc
        self._generation += 1
        self._reader = asyncio.create_task(self._read(self._ws), name="gameclient-reader")
        self._ready.set()
        self._supervisor = asyncio.create_task(self._supervise(), name="gameclient-supervisor")
        if self.heartbeat_interval is not None:
            beat = self._beat(self.heartbeat_interval)
            self._heartbeat = asyncio.create_task(beat, name="gameclient-heartbeat")

    async def close(self) -> None:
        """Closes the socket for good. The player stays in its match (join it again with its id)."""
        if self._closing:
            return
        self._closing = True
        self._ready.clear()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 5)
        for task in (self._heartbeat, self._supervisor, self._reader, *self._retries):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._error is None:
            self._closed_cleanly = True
        self._finish(self._error or ConnectionLost("the client was closed"))

    async def _token_value(self) -> str:
        source = self._token
        if isinstance(source, str):
            return source
        value = source()
        if inspect.isawaitable(value):
            value = await value
        return str(value).strip()

    async def _open(self) -> ClientConnection:
        token = await self._token_value()
        parts = urlsplit(self.url)
        # `protocol`: a server of another protocol version refuses the upgrade instead of misleading us.
        own = f"token={quote(token, safe='')}&protocol={PROTOCOL_VERSION}"
        query = "&".join(q for q in (parts.query, own) if q)
        uri = urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, ""))
        try:
            ws = await connect(
                uri,
                open_timeout=self.open_timeout,
                ping_interval=None,  # API Gateway: heartbeats are application frames (see _beat)
                compression=None,
                max_size=128 * 1024,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                body = exc.response.body.decode(errors="replace") if exc.response.body else ""
                raise AuthError(status, body) from None
            raise
        self.connects += 1
        self._last_sent = time.monotonic()
        return ws

    # --- requests ---------------------------------------------------------------------------------

    async def ping(self, *, timeout: float | None = None) -> Pong:
        return await self._request(Ping(action="ping", id=self.new_id()), Pong, timeout)

    async def join(self, mode: Mode, *, match_id: str | None = None, timeout: float | None = None) -> Joined:
        """Joins a match of `mode` (matchmaking), or re-attaches to `match_id`."""
        frame = Join(action="join", mode=mode, id=self.new_id(), matchId=match_id)
        joined = await self._request(frame, Joined, timeout)
        if joined.matchId != self.match_id:
            # The processor may have pushed the match's first state before this answer arrived.
            self.state = self._latest.get(joined.matchId)
        self.match_id, self.mode = joined.matchId, joined.mode
        return joined

    async def act(
        self,
        kind: str,
        fields: Mapping[str, Any] | None = None,
        *,
        points: int | None = None,
        x: int | None = None,
        y: int | None = None,
        match_id: str | None = None,
        id: str | None = None,
        timeout: float | None = None,
    ) -> Ack:
        """Sends one action of the current match (or `match_id`); returns the `ack`. Whether it was
        applied is known later: `await applied(ack.id)`. `kind` and `fields` are the match's mode's:
        `act("drop", {"column": 3})` in connect-four; the race modes' `score` and `move` also take
        `points`, `x` and `y` as keywords (and have their own methods)."""
        mid = match_id or self.match_id
        if mid is None:
            raise GameClientError("join a match first (or pass match_id)")
        action_id = id or self.new_id()
        args = {
            **(fields or {}),
            **{k: v for k, v in (("points", points), ("x", x), ("y", y)) if v is not None},
        }
        clash = sorted(set(args) & {"action", "kind", "matchId", "id"})
        if clash:
            raise GameClientError(f"{', '.join(clash)}: the envelope's, not an action's field")
        envelope = {"action": "act", "kind": kind, "matchId": mid, "id": action_id}
        frame: BaseModel
        try:
            if kind == "score":
                frame = Score.model_validate({**envelope, **args})
            elif kind == "move":
                frame = Move.model_validate({**envelope, **args})
            else:
                frame = Action.model_validate({**envelope, **args})
        except ValidationError as exc:
            raise GameClientError(f"{kind}: {exc.errors()[0]['msg']}") from None
        self._outcome(action_id)  # created before sending: the state may arrive before the ack
        return await self._request(frame, Ack, timeout)

    async def score(self, points: int, **kwargs: Any) -> Ack:
        return await self.act("score", points=points, **kwargs)

    async def move(self, x: int, y: int, **kwargs: Any) -> Ack:
        return await self.act("move", x=x, y=y, **kwargs)

    async def drop(self, column: int, **kwargs: Any) -> Ack:
        """connect-four: a piece into `column` (0-6)."""
        return await self.act("drop", {"column": column}, **kwargs)

    async def leave(self, *, match_id: str | None = None, timeout: float | None = None) -> Left:
        mid = match_id or self.match_id
        if mid is None:
            raise GameClientError("not in a match")
        left = await self._request(Leave(action="leave", matchId=mid, id=self.new_id()), Left, timeout)
        if left.matchId == self.match_id:
            self.match_id = None
        return left

    async def leaderboard(
        self,
        board: Board = "global",
        period: Period = "alltime",
        *,
        limit: int = 10,
        season: int | None = None,
        cursor: str | None = None,
        start: Literal["top", "me"] = "top",
        around: bool = False,
        timeout: float | None = None,
    ) -> Leaderboard:
        """A page of a board: the top, the page a cursor (`next` or `prev` of an earlier page) names, or
        (start="me") the page centred on this player."""
        query = LeaderboardQuery(
            action="leaderboard",
            board=board,
            period=period,
            season=season,
            limit=limit,
            cursor=cursor,
            start=start,
            around=around,
            id=self.new_id(),
        )
        return await self._request(query, Leaderboard, timeout)

    async def _request(self, frame: BaseModel, answer: type[T], timeout: float | None) -> T:
        if self._error is not None:
            raise self._error
        if self._closing:
            raise ConnectionLost("the client is closed")
        rid, kind = getattr(frame, "id", None), getattr(frame, "action", "?")
        assert isinstance(rid, str)
        pending = _Pending(rid, dump(frame), asyncio.get_running_loop().create_future(), str(kind))
        self._pending[rid] = pending
        try:
            if self._ready.is_set():
                await self._send_pending(pending)
            # else: the reconnection sends it once the socket is back
            async with asyncio.timeout(self.request_timeout if timeout is None else timeout):
                result = await pending.answer
        except TimeoutError:
            raise RequestTimeout(f"no answer to {pending.kind} {rid!r}") from None
        finally:
            if self._pending.get(rid) is pending:
                del self._pending[rid]
        if not isinstance(result, answer):
            raise GameClientError(f"unexpected answer to {pending.kind}: {result!r}")
        return result

    async def _send_pending(self, pending: _Pending) -> None:
        ws, generation = self._ws, self._generation
        if ws is None:
            return
        pending.sent_on = generation
        try:
            await ws.send(pending.text)
            self._last_sent = time.monotonic()
        except ConnectionClosed:
            pass  # the reader notices; the reconnection re-sends it

    # --- outcomes of actions ------------------------------------------------------------------------

    def _outcome(self, action_id: str) -> _Outcome:
        outcome = self._outcomes.get(action_id)
        if outcome is None:
            outcome = self._outcomes[action_id] = _Outcome()
            while len(self._outcomes) > OUTCOMES_KEPT:
                self._outcomes.popitem(last=False)
        return outcome

    async def applied(self, action_id: str, *, timeout: float | None = None) -> State:
        """The first `state` listing the action as applied. Raises ActionRejected if the processor
        refused it, RequestTimeout if neither arrives in time."""
        outcome = self._outcome(action_id)
        try:
            async with asyncio.timeout(self.request_timeout if timeout is None else timeout):
                await outcome.done.wait()
        except TimeoutError:
            raise RequestTimeout(f"action {action_id!r} not applied in time") from None
        if outcome.rejected is not None:
            r = outcome.rejected
            raise rejection(r.code, r.message, r.id)
        assert outcome.state is not None
        return outcome.state

    async def wait_state(self, predicate: Callable[[State], bool], *, timeout: float | None = None) -> State:
        """The current match's state once `predicate` holds for it (checked on every new state)."""
        try:
            async with asyncio.timeout(self.request_timeout if timeout is None else timeout):
                while self.state is None or not predicate(self.state):
                    await self._state_changed.wait()
        except TimeoutError:
            raise RequestTimeout("the state never matched") from None
        assert self.state is not None
        return self.state

    # --- events -------------------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[Event]:
        """Pushed events, in arrival order, until the client closes (or fails: then that error is raised)."""
        while True:
            item = await self._events.get()
            if isinstance(item, _End):
                self._events.put_nowait(item)  # for any other consumer
                if self._error is not None and not self._closed_cleanly:
                    raise self._error
                return
            yield item

    def __aiter__(self) -> AsyncIterator[Event]:
        return self.events()

    def _emit(self, event: Event) -> None:
        if self._events.qsize() >= EVENTS_KEPT:  # nobody is reading: keep the newest
            with contextlib.suppress(asyncio.QueueEmpty):
                self._events.get_nowait()
                self._dropped_events += 1
        self._events.put_nowait(event)

    # --- the socket ---------------------------------------------------------------------------------

    async def _read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                self._on_frame(raw)

    def _on_frame(self, raw: str | bytes) -> None:
        try:
            frame = server_frame_adapter.validate_json(raw)
        except ValidationError:
            self._on_untyped(raw)
            return
        if isinstance(frame, Ack):
            self._answer(frame.id, frame)
        elif isinstance(frame, ErrorFrame):
            if frame.code == RateLimited.code and frame.ref and self._throttle(frame.ref, frame):
                return
            if not (frame.ref and self._answer(frame.ref, frame)):
                self._emit(frame)
        elif isinstance(frame, Pong | Joined | Left | Leaderboard):
            if frame.ref:
                self._answer(frame.ref, frame)
        elif isinstance(frame, State):
            self._on_state(frame)
        elif isinstance(frame, Rejected):
            outcome = self._outcomes.get(frame.id)
            if outcome is not None and not outcome.done.is_set():
                outcome.rejected, outcome.at = frame, time.monotonic()
                outcome.done.set()
            self._emit(frame)
        elif isinstance(frame, Confirmed):
            self._on_confirmed(frame)
        elif isinstance(frame, Closing):
            log.warning("the server closes this connection: %s (%s)", frame.code, frame.message)
            self.closing = frame
            self._emit(frame)
        else:
            self._emit(frame)

    def _on_untyped(self, raw: str | bytes) -> None:
        """API Gateway's own frame (no `type`), or something that is not this protocol at all."""
        try:
            frame = GatewayMessage.model_validate_json(raw)
        except ValidationError:
            log.warning("unexpected frame from the server: %.200r", raw)
            return
        self.gateway_messages += 1
        self._gateway_failures += 1
        delay = self._backoff(self._gateway_failures - 1)
        log.warning("API Gateway answered %r; re-sending unanswered requests in %.2f s", frame.message, delay)
        self._emit(frame)
        generation = self._generation
        todo = [p for p in self._pending.values() if p.sent_on == generation and not p.answer.done()]
        self._later(delay, todo)

    def _throttle(self, rid: str, frame: ErrorFrame) -> bool:
        """A `rate_limited` answer: True when the request is sent again later instead of failing."""
        pending = self._pending.get(rid)
        if pending is None or pending.answer.done() or pending.throttled >= self.max_throttle_retries:
            return False
        pending.throttled += 1
        self.throttled += 1
        delay = self._backoff(pending.throttled - 1)
        log.info("%s %r throttled (%s); again in %.2f s", pending.kind, rid, frame.message, delay)
        self._later(delay, [pending])
        return True

    def _backoff(self, attempt: int) -> float:
        return backoff_delay(attempt, base=self.backoff_base, cap=self.backoff_cap, rng=self._rng)

    def _later(self, delay: float, todo: list[_Pending]) -> None:
        async def resend() -> None:
            await asyncio.sleep(delay)
            for p in todo:
                if self._ready.is_set() and self._pending.get(p.id) is p and not p.answer.done():
                    await self._send_pending(p)

        task = asyncio.create_task(resend(), name="gameclient-resend")
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)

    def _on_confirmed(self, frame: Confirmed) -> None:
        """Retried ids that were applied before: `applied()` gets the match's newest state."""
        latest = self._latest.get(frame.matchId)
        for action_id in frame.ids:
            outcome = self._outcomes.get(action_id)
            if latest is not None and outcome is not None and not outcome.done.is_set():
                outcome.state, outcome.at = latest, time.monotonic()
                outcome.done.set()
        self._emit(frame)

    def _answer(self, rid: str, frame: BaseModel) -> bool:
        pending = self._pending.get(rid)
        if pending is None or pending.answer.done():
            return pending is not None  # a late duplicate (an ack of a re-sent action): ignored
        self._gateway_failures = 0
        if isinstance(frame, ErrorFrame):
            pending.answer.set_exception(server_error(frame.code, frame.message, frame.ref))
        else:
            pending.answer.set_result(frame)
        return True

    def _on_state(self, state: State) -> None:
        now = time.monotonic()
        for action_id in state.applied:
            outcome = self._outcomes.get(action_id)
            if outcome is not None and not outcome.done.is_set():
                outcome.state, outcome.at = state, now
                outcome.done.set()
        newest = self._latest.get(state.matchId)
        if newest is None or state.version >= newest.version:
            self._latest[state.matchId] = newest = state
            self._latest.move_to_end(state.matchId)
            while len(self._latest) > MATCHES_KEPT:
                self._latest.popitem(last=False)
        if state.matchId == self.match_id and self.state is not newest:
            self.state = newest
            self._state_changed.set()
            self._state_changed = asyncio.Event()
        self._emit(state)

    async def _beat(self, interval: float) -> None:
        while True:
            await asyncio.sleep(max(0.05, interval - (time.monotonic() - self._last_sent)))
            if self._closing or self._error is not None:
                return
            if not self._ready.is_set() or time.monotonic() - self._last_sent < interval:
                continue
            ws = self._ws
            try:
                await self.ping()
            except RequestTimeout:
                log.warning("heartbeat unanswered; dropping the socket to reconnect")
                if ws is not None and ws is self._ws:
                    ws.transport.abort()
            except GameClientError:
                return

    async def _supervise(self) -> None:
        failures = 0  # consecutive: a socket that drops soon after opening does not reset the backoff
        try:
            while True:
                assert self._reader is not None
                up_since = time.monotonic()
                await self._reader
                if self._closing:
                    return
                self._ready.clear()
                self._ws = None
                if not self.reconnect:
                    raise ConnectionLost("the connection dropped (reconnection disabled)")
                if self.closing is not None and self.closing.code == TooManyConnections.code:
                    # Reconnecting would close the player's newest connection in turn.
                    raise ConnectionLost(f"closed by the server: {self.closing.message}")
                self.closing = None
                if time.monotonic() - up_since >= STABLE_AFTER:
                    failures = 0
                failures = await self._reconnect(failures)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._finish(exc)

    async def _reconnect(self, attempt: int) -> int:
        """Reconnects and resumes; returns the number of attempts made in a row."""
        while True:
            if self.max_reconnect_attempts is not None and attempt >= self.max_reconnect_attempts:
                raise ConnectionLost(f"could not reconnect after {attempt} attempts")
            delay = backoff_delay(attempt, base=self.backoff_base, cap=self.backoff_cap, rng=self._rng)
            attempt += 1
            await asyncio.sleep(delay)
            try:
                ws = await self._open()  # AuthError propagates: never retried
            except (OSError, TimeoutError, WebSocketException) as exc:
                log.info("reconnection attempt %d failed: %s", attempt, exc)
                continue
            self._ws = ws
            self._generation += 1
            self._reader = asyncio.create_task(self._read(ws), name="gameclient-reader")
            try:
                await self._resume(ws)
            except (ConnectionClosed, RequestTimeout, OSError) as exc:
                log.info("the socket dropped again while resuming: %s", exc)
                ws.transport.abort()
                await self._reader
                continue
            self.reconnects += 1
            log.info("reconnected (attempt %d); match %s", attempt, self.match_id)
            return attempt

    async def _resume(self, ws: ClientConnection) -> None:
        """Re-joins the current match, then re-sends what was never answered, then opens the gate."""
        if self.match_id is not None and self.mode is not None:
            rid = self.new_id()
            frame = Join(action="join", mode=self.mode, id=rid, matchId=self.match_id)
            pending = _Pending(rid, dump(frame), asyncio.get_running_loop().create_future(), "join")
            self._pending[rid] = pending
            try:
                await self._send_pending(pending)
                async with asyncio.timeout(self.request_timeout):
                    await pending.answer
            except ServerError as exc:
                log.warning("could not re-join %s: %s", self.match_id, exc)
                self.match_id = None
            except TimeoutError:
                raise RequestTimeout("no answer to the re-join") from None
            finally:
                self._pending.pop(rid, None)
        # Requests made while the socket was down (or sent on the old one) go out now, in order. No
        # await between "nothing left to send" and opening the gate, so nothing slips between the two.
        while True:
            if ws.state is not SocketState.OPEN:
                raise ConnectionClosed(None, None)
            todo = [p for p in list(self._pending.values()) if p.sent_on != self._generation]
            if not todo:
                self._ready.set()
                return
            for p in todo:
                if not p.answer.done():
                    self.resent += p.sent_on >= 0
                    await self._send_pending(p)
                else:
                    p.sent_on = self._generation

    def _finish(self, exc: BaseException) -> None:
        """No more connection: fail whatever waits, end the event stream."""
        if self._error is None:
            self._error = exc
        self._ready.clear()
        if isinstance(exc, AuthError):
            log.error("%s", exc)
        for pending in list(self._pending.values()):
            if not pending.answer.done():
                pending.answer.set_exception(self._error)
                # Retrieved by the awaiting request; mark it so an abandoned one logs nothing.
                pending.answer.exception()
        self._pending.clear()
        if self._heartbeat is not None and self._heartbeat is not asyncio.current_task():
            self._heartbeat.cancel()
        self._events.put_nowait(_End())

    @property
    def error(self) -> BaseException | None:
        """Why the client stopped, if it did (AuthError, ConnectionLost)."""
        return self._error


__all__ = ["Event", "GameClient", "GatewayMessage", "TokenSource", "backoff_delay"]
