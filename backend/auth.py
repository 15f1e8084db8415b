"""Player and admin tokens: JWTs with issuer, audience and expiry checked; HS256 with a shared secret
(local, dev) or RS256/ES256 against an identity provider's JWKS (prod).

The token policy (docs/operations.md, "Tokens"):
- `sub`, `iss`, `aud`, `iat` and `exp` are required; `iat`, `exp` and `nbf` are JSON numbers (a string
  such as "1700000000" is refused, and so are true/false and non-finite values);
- LEEWAY (30 s) of clock skew is allowed either way: a token issued up to 30 s in the future is
  accepted, and so is one that expired less than 30 s ago;
- a token may live at most MAX_LIFETIME (24 h) from `iat` to `exp`, whoever minted it: a leaked token
  with `exp` years ahead is refused, not honoured;
- the subject is a player id (backend.ids), matched whole.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import jwt

from backend.errors import Unauthorized
from backend.ids import PLAYER_ID_PATTERN, PlayerId, is_player_id

Role = Literal["player", "admin"]
ALGORITHMS = ["HS256"]  # fixed lists: `alg: none` and algorithm-confusion tokens are refused
ASYMMETRIC = ["RS256", "ES256"]
DEFAULT_TTL = 12 * 3600
MAX_LIFETIME = 24 * 3600
LEEWAY = 30


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
    if not is_player_id(player_id):
        raise ValueError(f"player id must match {PLAYER_ID_PATTERN}")
    if not 0 < ttl <= MAX_LIFETIME:
        raise ValueError(f"ttl must be between 1 and {MAX_LIFETIME} seconds")
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
    now: float | None = None,
) -> Claims:
    """Returns the token's claims or raises Unauthorized with a reason safe to show the client.

    Either an HS256 shared `secret` (the local and dev stages), or the `jwks_url` of an identity provider
    (prod: e.g. a Cognito user pool's ID tokens, RS256/ES256, whose `cognito:groups` may hold "admin")."""
    if not token:
        raise Unauthorized("missing token")
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
            # The times are checked below, by this module's rules; PyJWT would take "exp": "1700000000".
            options={
                "require": ["sub", "exp", "iat", "iss", "aud"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.PyJWKClientConnectionError:
        raise Unauthorized("the identity provider's keys cannot be fetched") from None
    except (jwt.InvalidTokenError, jwt.PyJWKClientError) as exc:
        raise Unauthorized(f"invalid token: {exc}") from None
    _check_times(claims, time.time() if now is None else now)
    sub = claims["sub"]
    if not is_player_id(sub):
        raise Unauthorized("invalid token: bad subject")
    groups = claims.get("cognito:groups") or []
    role_claim = claims.get("role") or (
        "admin" if isinstance(groups, list) and "admin" in groups else "player"
    )
    if role_claim not in ("player", "admin"):
        raise Unauthorized("invalid token: bad role")
    role: Role = "admin" if role_claim == "admin" else "player"
    return Claims(player_id=PlayerId(sub), role=role, expires_at=int(claims["exp"]))


def _number(claims: dict[str, Any], name: str) -> int | float | None:
    if name not in claims:
        return None
    value = claims[name]
    # bool is an int in Python, and a string is what PyJWT would quietly convert: neither is a NumericDate.
    # (An int needs no finiteness check, and int-float comparisons are exact, however large the int.)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unauthorized(f"invalid token: {name} must be a number of seconds")
    if isinstance(value, float) and not math.isfinite(value):
        raise Unauthorized(f"invalid token: {name} must be a number of seconds")
    return value


def _check_times(claims: dict[str, Any], now: float) -> None:
    issued, expires, not_before = _number(claims, "iat"), _number(claims, "exp"), _number(claims, "nbf")
    assert issued is not None and expires is not None  # required above
    if expires <= now - LEEWAY:
        raise Unauthorized("token expired")
    if issued > now + LEEWAY:
        raise Unauthorized("invalid token: issued in the future (iat)")
    if not_before is not None and not_before > now + LEEWAY:
        raise Unauthorized("invalid token: not valid yet (nbf)")
    if expires - issued > MAX_LIFETIME:
        raise Unauthorized(f"invalid token: lifetime over {MAX_LIFETIME // 3600} h (exp - iat)")


@cache
def _jwks(url: str) -> jwt.PyJWKClient:
    # Kept for the life of the execution environment: keys are fetched once, refreshed on an unknown kid.
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=3600, timeout=5)


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
