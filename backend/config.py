"""Settings read from the Lambda environment (set by serverless.yml, locally by the local runtime)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Settings:
    stage: str
    connections_table: str
    matches_table: str
    leaderboards_table: str
    events_table: str
    stream_name: str
    ws_api_endpoint: str
    jwt_issuer: str
    jwt_audience: str
    jwt_secret: str | None
    processor_function: str

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        return cls(
            stage=e.get("STAGE", "local"),
            connections_table=e.get("CONNECTIONS_TABLE", "gamebackend-local-connections"),
            matches_table=e.get("MATCHES_TABLE", "gamebackend-local-matches"),
            leaderboards_table=e.get("LEADERBOARDS_TABLE", "gamebackend-local-leaderboards"),
            events_table=e.get("EVENTS_TABLE", "gamebackend-local-events"),
            stream_name=e.get("GAME_STREAM", "gamebackend-local-actions"),
            ws_api_endpoint=e.get("WS_API_ENDPOINT", "http://127.0.0.1:3001"),
            jwt_issuer=e.get("JWT_ISSUER", "gamebackend-local"),
            jwt_audience=e.get("JWT_AUDIENCE", "gamebackend"),
            jwt_secret=e.get("JWT_SECRET"),
            processor_function=e.get("PROCESSOR_FUNCTION", "gamebackend-local-processor"),
        )


@cache
def settings() -> Settings:
    return Settings.from_env()
