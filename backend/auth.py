"""Player and admin tokens: HS256 JWTs with issuer, audience and expiry checked."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Literal

import jwt

from backend.errors import Unauthorized
from backend.ids import PLAYER_ID_PATTERN, PlayerId

Role = Literal["player", "admin"]
ALGORITHMS = ["HS256"]  # a fixed list: `alg: none` and algorithm-confusion tokens are refused
DEFAULT_TTL = 12 * 3600


@dataclass(frozen=True)
class Claims:
    player_id: PlayerId
    role: Role
    expires_at: int


def mint(
    player_id: str,
    *,
    secret: str,
    issuer: str,
    audience: str,
    admin: bool = False,
    ttl: int = DEFAULT_TTL,
    now: float | None = None,
) -> str:
    if not re.match(PLAYER_ID_PATTERN, player_id):
        raise ValueError(f"player id must match {PLAYER_ID_PATTERN}")
    issued = int(time.time() if now is None else now)
    claims = {
        "sub": player_id,
        "role": "admin" if admin else "player",
        "iss": issuer,
        "aud": audience,
        "iat": issued,
        "exp": issued + ttl,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def verify(token: str | None, *, secret: str, issuer: str, audience: str) -> Claims:
    """Returns the token's claims or raises Unauthorized with a reason safe to show the client."""
    if not token:
        raise Unauthorized("missing token")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=ALGORITHMS,
            audience=audience,
            issuer=issuer,
            options={"require": ["sub", "exp", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired") from None
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"invalid token: {exc}") from None
    sub = claims["sub"]
    if not isinstance(sub, str) or not re.match(PLAYER_ID_PATTERN, sub):
        raise Unauthorized("invalid token: bad subject")
    role = claims.get("role", "player")
    if role not in ("player", "admin"):
        raise Unauthorized("invalid token: bad role")
    return Claims(player_id=PlayerId(sub), role=role, expires_at=int(claims["exp"]))
