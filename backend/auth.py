"""Player and admin tokens: JWTs with issuer, audience and expiry checked; HS256 with a shared secret
(local, dev) or RS256/ES256 against an identity provider's JWKS (prod).

PyJWT (with `cryptography`, about 25 ms of imports) is imported by the first token to verify or mint, not
with this module: the admin function's public routes need none, and SnapStart's snapshot imports it
ahead of the first request (backend.snapstart).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from backend.errors import Unauthorized
from backend.ids import PLAYER_ID_PATTERN, PlayerId

if TYPE_CHECKING:
    import jwt

Role = Literal["player", "admin"]
ALGORITHMS = ["HS256"]  # fixed lists: `alg: none` and algorithm-confusion tokens are refused
ASYMMETRIC = ["RS256", "ES256"]
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
    import jwt

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


def verify(
    token: str | None,
    *,
    issuer: str,
    audience: str,
    secret: str | None = None,
    jwks_url: str | None = None,
) -> Claims:
    """Returns the token's claims or raises Unauthorized with a reason safe to show the client.

    Either an HS256 shared `secret` (the local and dev stages), or the `jwks_url` of an identity provider
    (prod: e.g. a Cognito user pool's ID tokens, RS256/ES256, whose `cognito:groups` may hold "admin")."""
    if not token:
        raise Unauthorized("missing token")
    import jwt

    try:
        if jwks_url:
            key: Any = _jwks(jwks_url).get_signing_key_from_jwt(token).key
            algorithms = ASYMMETRIC
        elif secret:
            key, algorithms = secret, ALGORITHMS
        else:
            raise Unauthorized("no token verification is configured")
        claims = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            audience=audience,
            issuer=issuer,
            options={"require": ["sub", "exp", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired") from None
    except jwt.PyJWKClientConnectionError:
        raise Unauthorized("the identity provider's keys cannot be fetched") from None
    except (jwt.InvalidTokenError, jwt.PyJWKClientError) as exc:
        raise Unauthorized(f"invalid token: {exc}") from None
    sub = claims["sub"]
    if not isinstance(sub, str) or not re.match(PLAYER_ID_PATTERN, sub):
        raise Unauthorized("invalid token: bad subject")
    groups = claims.get("cognito:groups") or []
    role_claim = claims.get("role") or (
        "admin" if isinstance(groups, list) and "admin" in groups else "player"
    )
    if role_claim not in ("player", "admin"):
        raise Unauthorized("invalid token: bad role")
    role: Role = "admin" if role_claim == "admin" else "player"
    return Claims(player_id=PlayerId(sub), role=role, expires_at=int(claims["exp"]))


@cache
def _jwks(url: str) -> jwt.PyJWKClient:
    # Kept for the life of the execution environment: keys are fetched once, refreshed on an unknown kid.
    import jwt

    return jwt.PyJWKClient(url, cache_keys=True, lifespan=3600, timeout=5)


def forget_keys() -> None:
    """Drops the identity providers' cached signing keys (after a SnapStart restore)."""
    _jwks.cache_clear()


def verify_from_settings(token: str | None) -> Claims:
    """verify() with this function's configuration (backend.config)."""
    from backend.config import jwt_secret, settings

    s = settings()
    return verify(
        token,
        issuer=s.jwt_issuer,
        audience=s.jwt_audience,
        secret=None if s.jwt_jwks_url else jwt_secret(),
        jwks_url=s.jwt_jwks_url,
    )
