from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from backend.auth import LEEWAY, MAX_LIFETIME, mint, verify
from backend.errors import Unauthorized
from backend.handlers.authorizer import the_token
from backend.ids import is_player_id
from tests.conftest import LOCAL, token_for

NOW = 1_800_000_000


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


def signed(**claims: object) -> str:
    """A token with exactly these claims (over the local stage's issuer, audience and subject)."""
    base = {"sub": "alice", "iss": LOCAL["issuer"], "aud": LOCAL["audience"]}
    return jwt.encode({**base, **claims}, LOCAL["secret"], algorithm="HS256")


def check_at(token: str, now: float = NOW) -> object:
    return verify(token, secret=LOCAL["secret"], issuer=LOCAL["issuer"], audience=LOCAL["audience"], now=now)


@pytest.mark.parametrize(
    "claims",
    [
        {"iat": NOW + 2, "exp": NOW + 600},  # the minting host's clock is 2 s ahead
        {"iat": NOW + LEEWAY, "exp": NOW + 600},
        {"iat": NOW - 600, "exp": NOW - LEEWAY + 1},  # expired, but within the leeway
        {"iat": NOW, "exp": NOW + MAX_LIFETIME},
        {"iat": NOW, "exp": NOW + 60, "nbf": NOW + 10},
        {"iat": NOW + 0.5, "exp": NOW + 60.5},  # NumericDate may have a fraction
    ],
    ids=["iat-2s-ahead", "iat-at-leeway", "exp-within-leeway", "max-lifetime", "nbf-within-leeway", "float"],
)
def test_clock_skew_within_the_leeway_is_accepted(claims: dict[str, object]) -> None:
    assert check_at(signed(**claims)).player_id == "alice"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iat": NOW + LEEWAY + 1, "exp": NOW + 600}, "invalid token: issued in the future"),
        ({"iat": NOW - 600, "exp": NOW - LEEWAY}, "token expired"),
        ({"iat": NOW, "exp": NOW + 60, "nbf": NOW + LEEWAY + 1}, "invalid token: not valid yet"),
        ({"iat": NOW, "exp": 10**12}, "invalid token: lifetime over 24 h"),
        ({"iat": NOW, "exp": NOW + MAX_LIFETIME + 1}, "invalid token: lifetime over 24 h"),
        ({"iat": NOW - MAX_LIFETIME, "exp": NOW + 60}, "invalid token: lifetime over 24 h"),
        ({"iat": NOW, "exp": 10**400}, "invalid token: lifetime over 24 h"),
        ({"iat": NOW, "exp": str(NOW + 60)}, "invalid token: exp must be a number"),
        ({"iat": str(NOW), "exp": NOW + 60}, "invalid token: iat must be a number"),
        ({"iat": NOW, "exp": True}, "invalid token: exp must be a number"),
        ({"iat": NOW, "exp": NOW + 60, "nbf": None}, "invalid token: nbf must be a number"),
        ({"iat": NOW, "exp": float("inf")}, "invalid token: exp must be a number"),
        ({"exp": NOW + 60}, 'invalid token: Token is missing the "iat" claim'),
    ],
    ids=[
        "iat-31s-ahead",
        "expired-beyond-leeway",
        "nbf-ahead",
        "exp-1e12",
        "lifetime-24h-1s",
        "old-iat",
        "exp-huge-int",
        "exp-numeric-string",
        "iat-numeric-string",
        "exp-bool",
        "nbf-null",
        "exp-infinity",
        "no-iat",
    ],
)
def test_token_times_outside_the_policy_are_refused(claims: dict[str, object], reason: str) -> None:
    with pytest.raises(Unauthorized) as err:
        check_at(signed(**claims))
    assert err.value.message.startswith(reason)


def test_mint_stays_inside_the_policy() -> None:
    with pytest.raises(ValueError, match="ttl"):
        mint("alice", secret="s" * 32, issuer="i", audience="a", ttl=MAX_LIFETIME + 1)
    with pytest.raises(ValueError, match="ttl"):
        mint("alice", secret="s" * 32, issuer="i", audience="a", ttl=0)
    assert check(token_for("alice", ttl=MAX_LIFETIME)).player_id == "alice"  # type: ignore[attr-defined]


def test_exactly_one_token_query_parameter_is_taken() -> None:
    one = token_for("alice")
    assert the_token({"queryStringParameters": {"token": one}}) == one
    assert (
        the_token(
            {"queryStringParameters": {"token": one}, "multiValueQueryStringParameters": {"token": [one]}}
        )
        == one
    )
    assert the_token({"queryStringParameters": None, "multiValueQueryStringParameters": None}) is None
    twice = {
        "queryStringParameters": {"token": one},  # API Gateway keeps the last value here
        "multiValueQueryStringParameters": {"token": [token_for("mallory"), one]},
    }
    with pytest.raises(Unauthorized, match="more than one token"):
        the_token(twice)


@pytest.mark.parametrize(
    "player",
    ["a", "alice", "Bob_2", "x.y", "a-b", "_bot", "9lives", "a..", "a" * 64],
)
def test_the_player_id_grammar_accepts(player: str) -> None:
    assert is_player_id(player)
    assert check(token_for(player)).player_id == player  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "player",
    [
        "",
        ".",
        "..",
        "...",
        ".hidden",
        "-rf",
        "alice\n",
        "alice\r",
        "\nalice",
        "a b",
        "a/b",
        "a%2f",
        "é",
        "a" * 65,
    ],
)
def test_the_player_id_grammar_refuses(player: str) -> None:
    assert not is_player_id(player)
    with pytest.raises(ValueError):
        mint(player, secret="s" * 32, issuer="i", audience="a")
    with pytest.raises(Unauthorized, match="bad subject"):
        check(signed(sub=player, iat=int(time.time()), exp=int(time.time()) + 60))


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
