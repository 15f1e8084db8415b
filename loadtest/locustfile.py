"""Locust players of the game: connect with a token, join matches of a mix of modes, act at a think-time.

Run it through `python -m loadtest.run` (or `make loadtest SHAPE=spike`), which also polls the stack's
metrics, checks conservation and writes the report. By hand:

    .venv/bin/locust -f loadtest/locustfile.py --headless --host ws://127.0.0.1:3001 --shape spike

Request entries (type `WS`) in Locust's statistics:
    connect   the WebSocket upgrade ($connect: authorizer + connect Lambda)
    join      join -> joined
    ack       act -> ack (every attempt; a retry re-sends the same action id)
    push      act -> the first `state` whose `applied` lists the action (or its `rejected` push)
Failures are named by cause: ConnectRefused, ErrorFrame (code, or API Gateway's "gateway: ..." message,
which is also what a throttled Lambda gets), RequestTimeout, Rejected (code), ConnectionLost.

Every player is `lt-<run id>-<n>`, unique to the run, so the conservation check can compare each
player's acknowledged points with that player's leaderboard row. Ledger and per-second timeline are
written when the test stops (`--ledger`, `--timeline`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import shlex
import subprocess
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import gevent
from locust import LoadTestShape, User, events, task
from locust.env import Environment

from loadtest import ledger as ledger_mod
from loadtest import shapes
from loadtest.client import (
    ConnectionLost,
    ErrorFrame,
    Frame,
    GameSocket,
    LoadTestFailure,
    Rejected,
    RequestTimeout,
    error_text,
)
from loadtest.ledger import Action, PlayerLedger

ROOT = Path(__file__).resolve().parent.parent
ACT_ATTEMPTS = 4
MAX_WAITING = 15.0  # seconds in a match that never fills before going to practice instead

LEDGERS: list[PlayerLedger] = []
FAILURES: Counter[str] = Counter()
# epoch second -> {"users": n, "ok": {name: [ms...]}, "fail": {name: {cause: n}}}
TIMELINE: dict[int, dict[str, Any]] = {}
DRAINERS: list[gevent.Greenlet[[float], None]] = []  # stopped players waiting for their last outcomes
STARTED: dict[str, float] = {}  # "at": when the test (and the shape's clock) started, epoch seconds
_numbers = itertools.count(1)
_TOKENS: dict[str, Any] = {}  # "source": player -> token, made once


# Locust ships py.typed, but its event hooks and LoadTestShape.get_run_time have no annotations: the
# `type: ignore`s of this file are those calls, and nothing else.
@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]  # locust: unannotated
def _options(parser: Any) -> None:
    group = parser.add_argument_group("game load test")
    group.add_argument("--shape", default="spike", help=f"one of {', '.join(shapes.SHAPES)}")
    group.add_argument("--peak", type=int, default=0, help="scale the shape to this many users at its peak")
    group.add_argument("--run-id", default="", help="players are lt-<run id>-<n> (default: random)")
    group.add_argument("--modes", default="practice:4,duel:4,arena:2", help="mode:weight,...")
    group.add_argument("--think", default="0.5,1.5", help="seconds between a player's actions: min,max")
    group.add_argument("--request-timeout", type=float, default=10.0)
    group.add_argument("--outcome-grace", type=float, default=30.0, help="a stopping player waits this long")
    group.add_argument("--stage", default="local", help="stage whose settings mint tokens")
    group.add_argument("--sls-config", default=str(ROOT / "serverless.yml"), help="serverless.yml")
    group.add_argument("--token-cmd", default="", help="shell command printing a token; {player} is replaced")
    group.add_argument("--ledger", default="", help="write the players' ledger (JSON) here at the end")
    group.add_argument("--timeline", default="", help="write the per-second timeline (JSON) here at the end")


def _opts(env: Environment) -> Any:
    return env.parsed_options


def _run_id(env: Environment) -> str:
    opts = _opts(env)
    if opts is not None and not opts.run_id:
        opts.run_id = uuid.uuid4().hex[:8]
    return str(opts.run_id) if opts is not None else "manual"


def _token_source(env: Environment) -> Any:
    """player -> token: `--token-cmd`, or minted with the stage's settings (JWT_SECRET overrides)."""
    if "source" in _TOKENS:
        return _TOKENS["source"]
    opts = _opts(env)
    if opts is not None and opts.token_cmd:
        command = str(opts.token_cmd)

        def from_command(player: str) -> str:
            out = subprocess.run(
                command.replace("{player}", shlex.quote(player)),
                shell=True,
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            )
            return out.stdout.strip()

        _TOKENS["source"] = from_command
        return from_command
    from local.tokens import NoSecret, StageTokens

    stage = opts.stage if opts is not None else "local"
    try:
        tokens = StageTokens.of(opts.sls_config if opts is not None else ROOT / "serverless.yml", stage)
    except NoSecret as exc:
        raise SystemExit(f"{exc}; or pass --token-cmd") from None

    def minted(player: str) -> str:
        return tokens.mint(player, ttl=4 * 3600)

    _TOKENS["source"] = minted
    return minted


def _bucket() -> dict[str, Any]:
    sec = int(time.time())
    bucket = TIMELINE.get(sec)
    if bucket is None:
        bucket = TIMELINE[sec] = {"users": None, "ok": defaultdict(list), "fail": defaultdict(Counter)}
    return bucket


def fire(env: Environment, name: str, ms: float, exc: Exception | None = None) -> None:
    env.events.request.fire(  # type: ignore[no-untyped-call]  # locust: unannotated
        request_type="WS", name=name, response_time=ms, response_length=0, exception=exc, context={}
    )
    bucket = _bucket()
    if exc is None:
        bucket["ok"][name].append(round(ms, 2))
    else:
        cause = type(exc).__name__
        bucket["fail"][name][cause] += 1
        FAILURES[f"{name}: {cause}: {exc}"] += 1


class Player(User):
    """One player on one connection (reconnecting if it drops)."""

    host = "ws://127.0.0.1:3001"

    def wait_time(self) -> float:
        low, high = (float(x) for x in str(_opts(self.environment).think).split(","))
        return random.uniform(low, high)

    def on_start(self) -> None:
        opts = _opts(self.environment)
        self.player = f"lt-{_run_id(self.environment)}-{next(_numbers)}"
        self.ledger = PlayerLedger(self.player)
        LEDGERS.append(self.ledger)
        self.timeout = float(opts.request_timeout)
        self.modes: list[tuple[str, float]] = []
        for item in str(opts.modes).split(","):
            mode, _, weight = item.partition(":")
            self.modes.append((mode.strip(), float(weight or 1)))
        self.sock: GameSocket | None = None
        self.match_id: str | None = None
        self.mode: str | None = None
        self.joined_at = 0.0
        self.join_id: str | None = None
        self.join_refused = False
        self.states: dict[str, Frame] = {}  # matchId -> the newest state pushed
        self.sent_at: dict[str, float] = {}  # action id -> first send (perf_counter)
        self.versions: dict[str, int] = {}  # action id -> version of the state that listed it
        self.resend: list[tuple[Action, Frame]] = []  # unsettled actions to re-send after a reconnect
        self.numbers = itertools.count(1)
        self.token = _token_source(self.environment)(self.player)

    # --- frames from the reader greenlet ------------------------------------------------------------

    def on_frame(self, frame: Frame) -> None:
        kind = frame.get("type")
        if kind == "ack":
            action = self.ledger.actions.get(str(frame.get("id")))
            if action is not None:
                action.acked = True
        elif kind == "state":
            self._on_state(frame)
        elif kind == "rejected":
            self._on_rejected(frame)
        elif kind == "confirmed":
            self._on_confirmed(frame)
        elif kind is None and "message" not in frame:
            self.ledger.stray_frames += 1

    def _on_state(self, frame: Frame) -> None:
        match_id = str(frame.get("matchId"))
        version = int(frame.get("version", 0))
        current = self.states.get(match_id)
        if current is None or int(current.get("version", 0)) <= version:
            self.states[match_id] = frame
        applied = [str(a) for a in frame.get("applied", [])]
        if len(set(applied)) != len(applied):
            self.ledger.duplicates.append({"ids": applied, "version": version, "matchId": match_id})
        for action_id in applied:
            seen = self.versions.get(action_id)
            if seen is not None:
                if seen == version:
                    self.ledger.repeated_pushes += 1
                else:
                    self.ledger.duplicates.append(
                        {"id": action_id, "versions": [seen, version], "matchId": match_id}
                    )
                continue
            self.versions[action_id] = version
            action = self.ledger.actions.get(action_id)
            if action is not None and action.outcome is None:
                action.outcome, action.version = "applied", version
                fire(self.environment, "push", self._since(action_id))

    def _on_confirmed(self, frame: Frame) -> None:
        """Re-sent ids applied before (protocol v2: their own frame, never a second `state`)."""
        for action_id in [str(a) for a in frame.get("ids", [])]:
            action = self.ledger.actions.get(action_id)
            if action is not None and action.outcome is None:
                action.outcome = "applied"
                action.version = self.versions.get(action_id)
                fire(self.environment, "push", self._since(action_id))

    def _on_rejected(self, frame: Frame) -> None:
        action_id = str(frame.get("id"))
        code = str(frame.get("code"))
        if action_id == self.join_id:
            self.join_refused = True
            fire(self.environment, "join", 0.0, Rejected(code))
            return
        action = self.ledger.actions.get(action_id)
        if action is not None and action.outcome is None:
            action.outcome, action.code = "rejected", code
            fire(self.environment, "push", self._since(action_id), Rejected(code))

    def _since(self, action_id: str) -> float:
        sent = self.sent_at.get(action_id)
        return (time.perf_counter() - sent) * 1000 if sent is not None else 0.0

    # --- the player's loop ---------------------------------------------------------------------------

    @task
    def play(self) -> None:
        if self.sock is None or self.sock.closed:
            self._connect()
            return
        if self.match_id is None or self.join_refused:
            self._join(self._pick_mode())
            return
        state = self.states.get(self.match_id)
        status = state.get("status") if state else None
        seated = state is not None and self.player in state.get("players", {})
        if status == "finished" or (seated and state and state["players"][self.player].get("left")):
            self.match_id = None
            self._join(self._pick_mode())
        elif status == "running" and seated:
            self._act()
        elif time.monotonic() - self.joined_at > MAX_WAITING:
            self._leave()  # nobody came (or the seat was never confirmed): play practice instead
            self._join("practice")

    def _pick_mode(self) -> str:
        modes, weights = zip(*self.modes, strict=True)
        return str(random.choices(modes, weights)[0])

    def _connect(self) -> None:
        if self.sock is not None:
            fire(self.environment, "connection", 0.0, ConnectionLost(self.sock.close_reason))
            self.sock.close()
            self.sock = None
        sock = GameSocket(self.host or "", self.token, self.on_frame)
        began = time.perf_counter()
        try:
            ms = sock.connect(self.timeout)
        except LoadTestFailure as exc:
            fire(self.environment, "connect", (time.perf_counter() - began) * 1000, exc)
            return
        fire(self.environment, "connect", ms)
        self.sock = sock
        if self.match_id is not None:  # re-attach to the match, then settle what was in flight
            self._join(self.mode or "practice", self.match_id)
            pending, self.resend = self.resend, []
            for action, frame in pending:
                self._send_action(action, frame)

    def _join(self, mode: str, match_id: str | None = None) -> None:
        assert self.sock is not None
        join_id = f"{self.player}:j{next(self.numbers)}"
        frame: Frame = {"action": "join", "mode": mode, "id": join_id}
        if match_id is not None:
            frame["matchId"] = match_id
        try:
            answer, ms = self.sock.request(frame, self.timeout)
        except LoadTestFailure as exc:
            fire(self.environment, "join", self.timeout * 1000 if isinstance(exc, RequestTimeout) else 0, exc)
            return
        error = error_text(answer)
        if error is not None:
            fire(self.environment, "join", ms, ErrorFrame(error))
            if match_id is not None and error in ("not_in_match", "match_not_found"):
                self.match_id = None
            return
        fire(self.environment, "join", ms)
        if answer.get("matchId") != self.match_id:
            self.ledger.matches.append(str(answer.get("matchId")))
            self.joined_at = time.monotonic()
        self.match_id, self.mode = str(answer.get("matchId")), mode
        self.join_id, self.join_refused = join_id, False

    def _leave(self) -> None:
        if self.sock is None or self.match_id is None:
            return
        frame = {"action": "leave", "matchId": self.match_id, "id": f"{self.player}:l{next(self.numbers)}"}
        with contextlib.suppress(LoadTestFailure):
            self.sock.request(frame, self.timeout)
        self.match_id = None

    def _act(self) -> None:
        assert self.match_id is not None
        action_id = f"{self.player}:{next(self.numbers)}"
        frame: Frame = {"action": "act", "matchId": self.match_id, "id": action_id}
        if random.random() < 0.75:
            action = Action(action_id, "score", points=random.randint(1, 5))
            frame.update(kind="score", points=action.points)
        else:
            action = Action(action_id, "move")
            frame.update(kind="move", x=random.randint(0, 1000), y=random.randint(0, 1000))
        self.ledger.actions[action_id] = action
        self.sent_at[action_id] = time.perf_counter()
        self._send_action(action, frame)

    def _send_action(self, action: Action, frame: Frame) -> None:
        """Sends until acknowledged: a timeout or API Gateway's error (a throttle, say) may or may not
        have put the action on the stream, so it is re-sent with the same id, which is applied once; the
        message function's `rate_limited` (its flood guard) put nothing there, and is re-sent too. Each
        re-send waits an exponential backoff with jitter, and every failed attempt is reported."""
        for attempt in range(ACT_ATTEMPTS):
            if action.acked:
                return
            if self.sock is None or self.sock.closed:
                self.resend.append((action, frame))
                return
            action.attempts += 1
            # In flight, it may be on the stream: if the player is stopped before the answer, the
            # drain waits for its outcome, and the check reads it from the event log.
            settled_before, action.maybe = action.maybe, True
            try:
                answer, ms = self.sock.request(frame, self.timeout)
            except RequestTimeout as exc:
                action.maybe = True
                fire(self.environment, "ack", self.timeout * 1000, exc)
            except ConnectionLost as exc:
                action.maybe = True
                fire(self.environment, "ack", 0.0, exc)
                self.resend.append((action, frame))
                return
            else:
                error = error_text(answer)
                if error is None:
                    action.acked = True
                    fire(self.environment, "ack", ms)
                    return
                fire(self.environment, "ack", ms, ErrorFrame(error))
                if not (error.startswith("gateway:") or error in ("unavailable", "rate_limited")):
                    action.maybe = settled_before  # refused by the message route: not on the stream
                    return
            gevent.sleep(min(2.0, 0.1 * 2**attempt) * random.uniform(0.5, 1.5))

    def on_stop(self) -> None:
        """Hands the connection to a greenlet that waits (bounded) for the outcome of every action in
        flight, so that no rejection is missed, then closes it. Locust counts the user as gone at once."""
        DRAINERS.append(
            gevent.spawn(self._drain, time.monotonic() + float(_opts(self.environment).outcome_grace))
        )

    def _drain(self, deadline: float) -> None:
        try:
            if self.resend and self.sock is not None and not self.sock.closed:
                pending, self.resend = self.resend, []
                for action, frame in pending:
                    self._send_action(action, frame)
            while time.monotonic() < deadline and self.sock is not None and not self.sock.closed:
                if not any(a.outcome is None and (a.acked or a.maybe) for a in self.ledger.actions.values()):
                    break
                gevent.sleep(0.2)
        finally:
            if self.sock is not None:
                self.sock.close()


class ConfiguredShape(LoadTestShape):
    """The shape named by --shape (loadtest.shapes), scaled by --peak."""

    _shape: shapes.Shape | None = None

    def tick(self) -> tuple[int, float] | None:
        if self._shape is None:
            assert self.runner is not None
            opts = _opts(self.runner.environment)
            self._shape = shapes.get(opts.shape if opts else "spike", (opts.peak or None) if opts else None)
        stage = self._shape.at(self.get_run_time())  # type: ignore[no-untyped-call]  # locust: unannotated
        return None if stage is None else (stage.users, stage.rate)


# --- the timeline of the run, and the files written at the end ----------------------------------------


def _sample_users(env: Environment) -> None:
    while True:
        runner = env.runner
        if runner is not None:
            _bucket()["users"] = runner.user_count
        gevent.sleep(1.0 - time.time() % 1.0 + 0.01)


@events.test_start.add_listener  # type: ignore[untyped-decorator]  # locust: unannotated
def _started(environment: Environment, **_: Any) -> None:
    STARTED["at"] = time.time()
    _run_id(environment)
    gevent.spawn(_sample_users, environment)


@events.test_stop.add_listener  # type: ignore[untyped-decorator]  # locust: unannotated
def _stopped(environment: Environment, **_: Any) -> None:
    opts = _opts(environment)
    if opts is None:
        return
    gevent.joinall(DRAINERS, timeout=float(opts.outcome_grace) + 10)
    if opts.ledger:
        ledger_mod.write(
            Path(opts.ledger),
            _run_id(environment),
            LEDGERS,
            {"shape": opts.shape, "host": environment.host, "failures": dict(FAILURES)},
        )
    if opts.timeline:
        seconds = [
            {
                "t": sec,
                "users": b["users"],
                "ok": {k: v for k, v in b["ok"].items()},
                "fail": {k: dict(v) for k, v in b["fail"].items()},
            }
            for sec, b in sorted(TIMELINE.items())
        ]
        doc = {"runId": _run_id(environment), "start": STARTED.get("at"), "seconds": seconds}
        Path(opts.timeline).write_text(json.dumps(doc))
