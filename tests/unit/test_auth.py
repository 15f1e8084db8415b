from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from backend.auth import mint, verify
from backend.errors import Unauthorized
from tests.conftest import LOCAL, token_for


def check(token: str | None) -> object:
    return verify(token, secret=LOCAL["secret"], issuer=LOCAL["issuer"], audience=LOCAL["audience"])


def test_a_minted_token_verifies_with_player_and_role() -> None:
    claims = check(token_for("alice"))
    assert claims.player_id == "alice"  # type: ignore[attr-defined]
    assert claims.role == "player"  # type: ignore[attr-defined]
    assert check(token_for("root", admin=True)).role == "admin"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "missing token"),
        ("", "missing token"),
        ("not-a-jwt", "invalid token"),
        (
            token_for("alice", secret="another-secret-that-is-long-enough-for-hs256"),
            "invalid token: Signature verification failed",
        ),
        (token_for("alice", issuer="someone-else"), "invalid token: Invalid issuer"),
        (token_for("alice", audience="other-app"), "invalid token: Audience doesn't match"),
        (token_for("alice", now=time.time() - 7200, ttl=60), "token expired"),
    ],
)
def test_bad_tokens_are_refused_with_a_reason(token: str | None, reason: str) -> None:
    with pytest.raises(Unauthorized) as err:
        check(token)
    assert err.value.message.startswith(reason)


def test_alg_none_is_refused() -> None:
    claims = {
        "sub": "mallory",
        "iss": LOCAL["issuer"],
        "aud": LOCAL["audience"],
        "exp": int(time.time()) + 60,
    }
    unsigned = jwt.encode(claims, key=None, algorithm="none")  # type: ignore[arg-type]
    with pytest.raises(Unauthorized):
        check(unsigned)


def test_a_forged_role_breaks_the_signature() -> None:
    header, payload, signature = token_for("alice").split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=="))
    body["role"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")
    with pytest.raises(Unauthorized):
        check(f"{header}.{forged}.{signature}")


def test_player_ids_are_restricted() -> None:
    with pytest.raises(ValueError):
        mint("a b/c", secret="s" * 32, issuer="i", audience="a")
    evil = jwt.encode(
        {"sub": "../x y", "iss": LOCAL["issuer"], "aud": LOCAL["audience"], "exp": int(time.time()) + 60},
        LOCAL["secret"],
        algorithm="HS256",
    )
    with pytest.raises(Unauthorized):
        check(evil)
