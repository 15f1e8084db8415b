"""Settings read from the Lambda environment (set by serverless.yml, locally by the local runtime)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any


@dataclass(frozen=True)
class Settings:
    stage: str
    connections_table: str
    matches_table: str
    leaderboards_table: str
    events_table: str
    progress_table: str
    match_end_saga: str  # the state machine's ARN; "" where no function starts it
    stream_name: str
    ws_api_endpoint: str
    jwt_issuer: str
    jwt_audience: str
    jwt_secret: str | None
    jwt_secret_param: str | None
    jwt_jwks_url: str | None
    processor_function: str
    projector_function: str
    action_dlq: str
    projector_dlq: str
    timer_queue: str

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        return cls(
            stage=e.get("STAGE", "local"),
            connections_table=e.get("CONNECTIONS_TABLE", "gamebackend-local-connections"),
            matches_table=e.get("MATCHES_TABLE", "gamebackend-local-matches"),
            leaderboards_table=e.get("LEADERBOARDS_TABLE", "gamebackend-local-leaderboards"),
            events_table=e.get("EVENTS_TABLE", "gamebackend-local-events"),
            progress_table=e.get("PROGRESS_TABLE", "gamebackend-local-progress"),
            match_end_saga=e.get("MATCH_END_SAGA", ""),
            stream_name=e.get("GAME_STREAM", "gamebackend-local-actions"),
            ws_api_endpoint=e.get("WS_API_ENDPOINT", "http://127.0.0.1:3001"),
            jwt_issuer=e.get("JWT_ISSUER", "gamebackend-local"),
            jwt_audience=e.get("JWT_AUDIENCE", "gamebackend"),
            jwt_secret=e.get("JWT_SECRET") or None,
            jwt_secret_param=e.get("JWT_SECRET_PARAM") or None,
            jwt_jwks_url=e.get("JWT_JWKS_URL") or None,
            processor_function=e.get("PROCESSOR_FUNCTION", "gamebackend-local-processor"),
            projector_function=e.get("PROJECTOR_FUNCTION", "gamebackend-local-projector"),
            action_dlq=e.get("ACTION_DLQ", "gamebackend-local-actions-dlq"),
            projector_dlq=e.get("PROJECTOR_DLQ", "gamebackend-local-projector-dlq"),
            timer_queue=e.get("TIMER_QUEUE", "gamebackend-local-timers"),
        )


@cache
def settings() -> Settings:
    return Settings.from_env()


# --- the game's settings: custom.modes and custom.sessions of serverless.yml (GAME_SETTINGS) ---------


@dataclass(frozen=True)
class ModeSettings:
    """A mode's tunables (custom.modes.<mode>). The defaults are what code run outside the stack gets (a
    unit test, a tool without GAME_SETTINGS); every function of the stack gets serverless.yml's values."""

    plugin: str = ""  # the module whose MODE implements the mode (backend.game.plugin)
    seats: int = 1  # a match is `waiting` until it has this many players, then `running`
    reconnectGrace: float = 30.0  # seconds a dropped player's seat is held in a running match
    actionsPerSecond: float = 10.0  # each player's action rate, refused above it as rate_limited
    actionBurst: int = 20  # ... and the burst allowed above that rate
    matchSeconds: float = 0.0  # a running match ends after this long (0: when its game says)
    options: dict[str, Any] = field(default_factory=dict)  # the mode's own (its plug-in reads them)

    @property
    def grace_ms(self) -> int:
        return int(self.reconnectGrace * 1000)


@dataclass(frozen=True)
class SessionSettings:
    """Connections' limits (custom.sessions)."""

    maxConnectionsPerPlayer: int = 3  # a new connection beyond it closes the player's oldest
    framesPerSecond: float = 20.0  # the message function's per-connection guard (per environment)
    frameBurst: int = 40
    floodClose: int = 40  # refused frames past the burst after which the connection is closed
    presenceProbe: float = 60.0  # seconds between checks of a connection in a match


@dataclass(frozen=True)
class GameSettings:
    modes: dict[str, ModeSettings] = field(default_factory=dict)
    sessions: SessionSettings = field(default_factory=SessionSettings)

    def mode(self, name: str) -> ModeSettings:
        return self.modes.get(name) or ModeSettings()

    @classmethod
    def parse(cls, text: str | None) -> GameSettings:
        """GAME_SETTINGS' JSON. An unknown setting is an error (a typo must not be silently ignored)."""
        if not text:
            return cls()
        doc = json.loads(text)
        if not isinstance(doc, dict) or set(doc) - {"modes", "sessions"}:
            raise ValueError("GAME_SETTINGS holds `modes` and `sessions` only")
        modes = {
            name: _settings(ModeSettings, f"modes.{name}", raw)
            for name, raw in (doc.get("modes") or {}).items()
        }
        return cls(modes=modes, sessions=_settings(SessionSettings, "sessions", doc.get("sessions") or {}))


def _settings(kind: Any, where: str, raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise ValueError(f"GAME_SETTINGS {where} must be an object")
    known = {f.name: f for f in fields(kind)}
    unknown = set(raw) - set(known)
    if unknown:
        raise ValueError(f"GAME_SETTINGS {where}: unknown settings {sorted(unknown)}")
    # serverless.yml's defaults (`${..., 30}`) can arrive as strings locally: numbers are numbers here.
    values = {name: _typed(known[name].type, f"{where}.{name}", value) for name, value in raw.items()}
    return kind(**values)


def _typed(declared: Any, where: str, value: Any) -> Any:
    if declared in ("str", str):
        if not isinstance(value, str):
            raise ValueError(f"GAME_SETTINGS {where} must be a string")
        return value
    if str(declared).startswith("dict"):
        if not isinstance(value, dict):
            raise ValueError(f"GAME_SETTINGS {where} must be an object")
        return value
    return (int if declared in ("int", int) else float)(value)


@cache
def game_settings() -> GameSettings:
    return GameSettings.parse(os.environ.get("GAME_SETTINGS"))


def jwt_secret() -> str | None:
    """The token secret: JWT_SECRET where set (the local stage), else the SecureString parameter named
    by JWT_SECRET_PARAM, fetched at most every five minutes (powertools caches it)."""
    s = settings()
    if s.jwt_secret:
        return s.jwt_secret
    if s.jwt_secret_param:
        from aws_lambda_powertools.utilities import parameters

        return str(parameters.get_parameter(s.jwt_secret_param, decrypt=True, max_age=300))
    return None
