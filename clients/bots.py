"""Bots that play real matches through the SDK, and what they measured: `gamebackend bots`.

    gamebackend bots --players 4 --mode duel --duration 10
    gamebackend bots --players 8 --mode arena --duration 60 --url wss://... --token-cmd 'get-token {player}'

Each bot opens its own connection (its own player), joins a match of the mode, and once the match runs
plays it until it finishes; then it joins the next one, until the duration is over. In the race modes
(practice, duel, arena) a bot sends actions at a jittered pace, three in four scoring 1-20 points, the
others moves; in connect-four it waits for its turn (the `state` frame's `game`) and drops a piece into
a random column that has room. At the end it leaves any match that is
not over. The runner counts, over all bots:

    sent      acts sent                       acked     acts the message route acknowledged
    applied   acts listed in a `state` push   rejected  acts the processor refused (`rejected` push)
    lost      acked, but neither applied nor rejected within the grace period after the end

and the action->state latency: from sending an act to receiving the first `state` whose `applied` lists
it. The exit status is 1 if anything was lost, if a bot failed, or if nothing was applied at all.

Tokens: for the local stack they are minted here (backend.auth.mint with the stage's settings from
serverless.yml). For a deployed stage pass `--token-cmd CMD` (run through the shell for every
connection, `{player}` replaced by the bot's name; its output is the token) or `--token-file F` (one
token per line, one line per bot).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from gamebackend_client import GameClient, GameClientError, RequestTimeout, ServerError
from gamebackend_client.protocol import Confirmed, Mode, PresenceChange, Rejected, State

TokenFor = Callable[[str], Awaitable[str]]
# The mode whose bots play by turns (games/connect_four.py), and its board's height.
CONNECT_FOUR = "connect-four"
CONNECT_FOUR_ROWS = 6


@dataclass
class BotConfig:
    url: str
    players: int
    mode: Mode
    duration: float
    tokens: TokenFor
    interval: float = 0.1  # mean pause between two actions of one bot, seconds
    grace: float = 5.0  # after the end: how long acked actions may take to show up as applied
    prefix: str = field(default_factory=lambda: f"bot-{uuid.uuid4().hex[:6]}")
    seed: int | None = None


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class BotReport:
    players: int
    mode: str
    duration: float
    sent: int = 0
    acked: int = 0
    applied: int = 0
    rejected: int = 0
    lost: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # error frames and timeouts, by code
    rejections: Counter[str] = field(default_factory=Counter)  # rejected pushes, by code
    joined: set[str] = field(default_factory=set)  # every match a bot joined
    matches: set[str] = field(default_factory=set)  # those that ran (all seats taken)
    finished: set[str] = field(default_factory=set)
    wins: int = 0
    reconnects: int = 0
    # API Gateway's untyped frames and `rate_limited` answers: the SDK sent the requests again after a
    # backoff; counted here so that a throttled run is never mistaken for a clean one.
    gateway_messages: int = 0
    throttled: int = 0
    presence: Counter[str] = field(default_factory=Counter)  # other players' presence changes seen
    failures: list[str] = field(default_factory=list)  # bots that stopped with an exception
    latencies_ms: list[float] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.lost == 0 and not self.failures and self.applied > 0

    def latency(self) -> dict[str, float | None]:
        return {f"p{p}": percentile(self.latencies_ms, p) for p in (50, 90, 99)}

    def as_dict(self) -> dict[str, Any]:
        return {
            "players": self.players,
            "mode": self.mode,
            "duration": self.duration,
            "elapsed": round(self.elapsed, 3),
            "sent": self.sent,
            "acked": self.acked,
            "applied": self.applied,
            "rejected": self.rejected,
            "lost": self.lost,
            "errors": dict(self.errors),
            "rejections": dict(self.rejections),
            "matches": len(self.matches),
            "finished": len(self.finished),
            "wins": self.wins,
            "reconnects": self.reconnects,
            "gatewayMessages": self.gateway_messages,
            "throttled": self.throttled,
            "presence": dict(self.presence),
            "failures": self.failures,
            "latency_ms": {k: None if v is None else round(v, 1) for k, v in self.latency().items()},
            "samples": len(self.latencies_ms),
            "ok": self.ok,
        }

    def live_line(self, elapsed: float) -> str:
        p50 = percentile(self.latencies_ms, 50)
        return (
            f"[{elapsed:5.1f}s] {self.players} bots  "
            f"matches {len(self.matches)} ({len(self.finished)} done)  "
            f"sent {self.sent}  acked {self.acked}  applied {self.applied}  rejected {self.rejected}  "
            f"p50 {'-' if p50 is None else f'{p50:.0f}'} ms"
        )

    def summary(self) -> str:
        lat = {k: "-" if v is None else f"{v:.0f} ms" for k, v in self.latency().items()}
        lines = [
            f"bots      {self.players} x {self.mode}, {self.elapsed:.1f} s",
            f"matches   {len(self.matches)} played, {len(self.finished)} finished, {self.wins} won by bots",
            f"actions   sent {self.sent}  acked {self.acked}  applied {self.applied}  "
            f"rejected {self.rejected}  lost {self.lost}",
            f"latency   action->state p50 {lat['p50']}  p90 {lat['p90']}  p99 {lat['p99']}  "
            f"({len(self.latencies_ms)} samples)",
        ]
        if self.rejections:
            lines.append("rejected  " + "  ".join(f"{k} {v}" for k, v in sorted(self.rejections.items())))
        if self.errors:
            lines.append("errors    " + "  ".join(f"{k} {v}" for k, v in sorted(self.errors.items())))
        if self.reconnects:
            lines.append(
                f"reconnects {self.reconnects} (a state pushed while a socket was down is not delivered: "
                "an action applied then counts as lost)"
            )
        if self.gateway_messages or self.throttled:
            lines.append(
                f"throttled {self.throttled} rate_limited answers, {self.gateway_messages} API Gateway "
                "frames (each request sent again after a backoff)"
            )
        if self.presence:
            lines.append("presence  " + "  ".join(f"{k} {v}" for k, v in sorted(self.presence.items())))
        for failure in self.failures:
            lines.append(f"FAILED    {failure}")
        verdict = "ok" if self.ok else "FAILED" + (" (actions lost)" if self.lost else "")
        lines.append(f"result    {verdict}")
        return "\n".join(lines)


class _Bot:
    def __init__(
        self, name: str, index: int, config: BotConfig, report: BotReport, stop: asyncio.Event
    ) -> None:
        self.name = name
        self.index = index
        self.config = config
        self.report = report
        self.stop = stop
        self.rng = random.Random(None if config.seed is None else f"{config.seed}-{name}")
        self.sent_at: dict[str, float] = {}
        self.acked: set[str] = set()
        self.resolved: set[str] = set()  # applied or rejected
        self.progress = asyncio.Event()  # set whenever an action is resolved

    async def run(self) -> None:
        client = GameClient(
            self.config.url,
            lambda: self.config.tokens(self.name),
            heartbeat_interval=30.0,
            backoff_base=0.1,
        )
        try:
            async with client:
                listener = asyncio.create_task(self._listen(client))
                try:
                    await self._play(client)
                    await self._settle()
                    # Leave what is not over, a match still waiting for seats included: nobody should
                    # be matched with a bot that is gone.
                    state = client.state
                    if client.match_id is not None and (state is None or state.status != "finished"):
                        with contextlib.suppress(GameClientError):
                            await client.leave(timeout=5)
                finally:
                    listener.cancel()
                    with contextlib.suppress(asyncio.CancelledError, GameClientError):
                        await listener
                    self.report.reconnects += client.reconnects
                    self.report.gateway_messages += client.gateway_messages
                    self.report.throttled += client.throttled
        except Exception as exc:
            self.report.failures.append(f"{self.name}: {type(exc).__name__}: {exc}")
        finally:
            unresolved = self.acked - self.resolved
            self.report.lost += len(unresolved)

    async def _listen(self, client: GameClient) -> None:
        async for event in client.events():
            now = time.monotonic()
            if isinstance(event, State):
                for action_id in event.applied:
                    sent = self.sent_at.get(action_id)
                    if sent is not None and action_id not in self.resolved:
                        self.resolved.add(action_id)
                        self.progress.set()
                        self.report.applied += 1
                        self.report.latencies_ms.append((now - sent) * 1000)
                if event.status == "finished" and event.matchId not in self.report.finished:
                    self.report.finished.add(event.matchId)
                    if event.winner is not None and event.winner.startswith(self.config.prefix):
                        self.report.wins += 1
            elif isinstance(event, Confirmed):
                # Re-sent after a reconnection, and applied before: applied, once.
                for action_id in event.ids:
                    if action_id in self.sent_at and action_id not in self.resolved:
                        self.resolved.add(action_id)
                        self.progress.set()
                        self.report.applied += 1
            elif isinstance(event, PresenceChange):
                self.report.presence[event.presence] += 1
            elif isinstance(event, Rejected) and event.id in self.sent_at and event.id not in self.resolved:
                self.resolved.add(event.id)
                self.progress.set()
                self.report.rejected += 1
                self.report.rejections[event.code] += 1

    async def _play(self, client: GameClient) -> None:
        # Bots that all join at the same instant each find no open match and each open their own:
        # matchmaking seats a player in a match that exists, so the bots arrive one after the other.
        await self._pause(self.index * 0.15 + self.rng.uniform(0, 0.05))
        while not self.stop.is_set():
            joined = await client.join(self.config.mode)
            self.report.joined.add(joined.matchId)
            if not await self._until_running(client):
                # Nobody came (or the time is up). Leaving finishes the match, so nobody is seated later
                # with a bot that is gone; then look again, and find the matches opened meanwhile.
                if not self.stop.is_set():
                    with contextlib.suppress(GameClientError):
                        await client.leave()
                continue
            self.report.matches.add(joined.matchId)
            while not self.stop.is_set() and client.state is not None and client.state.status == "running":
                await self._act(client)
                await self._pause(self.rng.uniform(0.5, 1.5) * self.config.interval)

    async def _pause(self, seconds: float) -> None:
        """Sleeps, but wakes up when the run is over."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def _until_running(self, client: GameClient) -> bool:
        """Waits for the match's seats to fill: True once it runs, False after a few seconds alone."""
        patience = time.monotonic() + self.rng.uniform(1.5, 3.0)
        while not self.stop.is_set() and time.monotonic() < patience:
            with contextlib.suppress(RequestTimeout):
                await client.wait_state(lambda s: s.status != "waiting", timeout=0.25)
                return True
        return False

    async def _act(self, client: GameClient) -> None:
        if self.config.mode == CONNECT_FOUR:
            await self._drop(client)
        elif self.rng.random() < 0.75:
            await self._send(client, "score", {"points": self.rng.randint(1, 20)})
        else:
            await self._send(client, "move", {"x": self.rng.randint(0, 1000), "y": self.rng.randint(0, 1000)})

    async def _drop(self, client: GameClient) -> None:
        """Connect four: on the bot's turn, a piece into a random column with room; then the next state
        (so that a turn is played once). Off its turn, it waits for the state that gives it the turn."""

        def mine(s: State) -> bool:
            return s.status != "running" or (s.game or {}).get("turn") == self.name

        state = client.state
        game = state.game if state is not None else None
        if state is None or game is None or not mine(state) or state.status != "running":
            with contextlib.suppress(RequestTimeout):
                await client.wait_state(mine, timeout=0.5)
            return
        columns = [c for c, pieces in enumerate(game["board"]) if len(pieces) < CONNECT_FOUR_ROWS]
        ply = game["ply"]
        if not await self._send(client, "drop", {"column": self.rng.choice(columns)}):
            return
        with contextlib.suppress(RequestTimeout):
            await client.wait_state(
                lambda s: s.status != "running" or (s.game or {}).get("ply", 0) > ply, timeout=5
            )

    async def _send(self, client: GameClient, kind: str, fields: dict[str, Any]) -> bool:
        """One action, counted; True when the message route acknowledged it."""
        action_id = client.new_id()
        self.sent_at[action_id] = time.monotonic()
        self.report.sent += 1
        try:
            await client.act(kind, fields, id=action_id)
        except ServerError as exc:
            self.report.errors[exc.code] += 1
            self.resolved.add(action_id)
            return False
        except RequestTimeout:
            self.report.errors["timeout"] += 1
            return False
        self.acked.add(action_id)
        self.report.acked += 1
        return True

    async def _settle(self) -> None:
        deadline = time.monotonic() + self.config.grace
        while self.acked - self.resolved and (left := deadline - time.monotonic()) > 0:
            self.progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.progress.wait(), left)


def bot_names(prefix: str, players: int) -> list[str]:
    return [f"{prefix}-{i + 1}" for i in range(players)]


async def run_bots(config: BotConfig, *, live: Callable[[str], None] | None = None) -> BotReport:
    """Plays for `config.duration` seconds with `config.players` bots; returns what they measured."""
    report = BotReport(players=config.players, mode=config.mode, duration=config.duration)
    stop = asyncio.Event()
    names = bot_names(config.prefix, config.players)
    bots = [_Bot(name, i, config, report, stop) for i, name in enumerate(names)]
    started = time.monotonic()
    tasks = [asyncio.create_task(bot.run()) for bot in bots]

    async def ticker() -> None:
        while True:
            await asyncio.sleep(1.0)
            if live is not None:
                live(report.live_line(time.monotonic() - started))

    ticking = asyncio.create_task(ticker())
    try:
        await asyncio.wait(tasks, timeout=config.duration)  # a bot that fails early records why
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        stop.set()
        ticking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticking
        for task in tasks:
            task.cancel()
    report.elapsed = time.monotonic() - started
    return report


# --- tokens ---------------------------------------------------------------------------------------


def local_tokens(config: str | Path = "serverless.yml", stage: str = "local", ttl: int = 3600) -> TokenFor:
    """Mints tokens the way `gamebackend token` does, with the stage's settings from serverless.yml."""
    from local.tokens import NoSecret, StageTokens

    try:
        stage_tokens = StageTokens.of(config, stage)
    except NoSecret as exc:
        raise SystemExit(f"{exc}; or pass --token-cmd or --token-file") from None

    async def token(player: str) -> str:
        return stage_tokens.mint(player, ttl=ttl)

    return token


def command_tokens(command: str) -> TokenFor:
    async def token(player: str) -> str:
        proc = await asyncio.create_subprocess_shell(
            command.replace("{player}", player),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        if proc.returncode != 0 or not out.strip():
            raise GameClientError(f"--token-cmd failed ({proc.returncode}): {err.decode().strip()[:200]}")
        return out.decode().strip()

    return token


def file_tokens(path: str | Path, names: list[str]) -> TokenFor:
    """One token per line, given to the bots in order."""
    lines = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    if len(lines) < len(names):
        raise SystemExit(f"--token-file {path}: {len(lines)} token(s) for {len(names)} bots (one per line)")
    by_name = dict(zip(names, lines, strict=False))

    async def token(player: str) -> str:
        return by_name[player]

    return token


# --- the command line -----------------------------------------------------------------------------


def cli(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    if args.players < 1 or args.duration <= 0:
        print("gamebackend bots: --players must be >= 1 and --duration > 0", file=err)
        return 2
    prefix = f"bot-{uuid.uuid4().hex[:6]}"
    tokens: TokenFor
    if args.token_file:
        tokens = file_tokens(args.token_file, bot_names(prefix, args.players))
    elif args.token_cmd:
        tokens = command_tokens(args.token_cmd)
    else:
        tokens = local_tokens(args.config, args.stage)
    config = BotConfig(
        url=args.url,
        players=args.players,
        mode=args.mode,
        duration=args.duration,
        tokens=tokens,
        interval=args.interval,
        grace=args.grace,
        prefix=prefix,
        seed=args.seed,
    )
    human = err if args.json else out
    tty = human.isatty()

    def live(line: str) -> None:
        if tty:
            human.write("\r\x1b[2K" + line)
        else:
            human.write(line + "\n")
        human.flush()

    print(f"{args.players} bots playing {args.mode} on {args.url} for {args.duration:g} s", file=human)
    report = asyncio.run(run_bots(config, live=live))
    if tty:
        human.write("\n")
    print(report.summary(), file=human)
    if args.json:
        print(json.dumps(report.as_dict()), file=out)
    return 0 if report.ok else 1
