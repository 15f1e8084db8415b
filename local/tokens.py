"""Tokens for a stage, minted the way its functions verify them: the one helper every tool uses (the
CLI's `gamebackend token`, the local runtime's `/local/token`, the bots, the load test).

The stage's issuer, audience and secret come from `custom.stages.<stage>` in serverless.yml; `JWT_SECRET`
in the environment overrides the secret (a deployed stage keeps its secret in SSM, not in the file).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from local import slsconfig


class NoSecret(Exception):
    """The stage's secret is not in serverless.yml (it is in SSM) and JWT_SECRET is not set."""


@dataclass(frozen=True)
class StageTokens:
    stage: str
    secret: str
    issuer: str
    audience: str

    @classmethod
    def of(cls, config: str | Path = "serverless.yml", stage: str = "local") -> StageTokens:
        settings = slsconfig.load(config, stage).stage_settings()
        return cls.from_settings(settings, stage)

    @classmethod
    def from_settings(cls, settings: dict[str, object], stage: str) -> StageTokens:
        secret = os.environ.get("JWT_SECRET") or settings.get("jwtSecret")
        if not isinstance(secret, str) or not secret:
            raise NoSecret(
                f"stage {stage!r} keeps its secret in SSM ({settings.get('jwtSecretParam')}); "
                "set JWT_SECRET to it (see docs/deploy.md)"
            )
        return cls(stage, secret, str(settings["jwtIssuer"]), str(settings["jwtAudience"]))

    def mint(self, player: str, *, admin: bool = False, ttl: int | None = None) -> str:
        """A token for `player`; ValueError for a player id outside the grammar or a lifetime over the
        maximum (backend.auth)."""
        from backend.auth import DEFAULT_TTL, mint

        return mint(
            player,
            secret=self.secret,
            issuer=self.issuer,
            audience=self.audience,
            admin=admin,
            ttl=DEFAULT_TTL if ttl is None else ttl,
        )
