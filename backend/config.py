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
        )


@cache
def settings() -> Settings:
    return Settings.from_env()


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
