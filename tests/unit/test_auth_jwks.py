"""Tokens of an identity provider (prod): RS256 verified against its JWKS, served here on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from backend.auth import verify
from backend.errors import Unauthorized

ISSUER = "https://idp.example.test/pool"
AUDIENCE = "game-client-id"


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    return {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048) for kid in ("k1", "rogue")}


@pytest.fixture(scope="module")
def jwks_url(keys: dict[str, Any]) -> Iterator[str]:
    public = keys["k1"].public_key()
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()


def token(key: Any, kid: str, **claims: Any) -> str:
    base = {
        "sub": "3f0c8a2e-0000-4000-8000-000000000001",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": int(time.time()),
        "exp": int(time.time()) + 600,
    }
    return jwt.encode({**base, **claims}, key, algorithm="RS256", headers={"kid": kid})


def check(jwks_url: str, raw: str) -> Any:
    return verify(raw, issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks_url)


def test_a_provider_token_verifies_and_groups_give_the_admin_role(
    keys: dict[str, Any], jwks_url: str
) -> None:
    player = check(jwks_url, token(keys["k1"], "k1"))
    assert (player.player_id, player.role) == ("3f0c8a2e-0000-4000-8000-000000000001", "player")
    admin = check(jwks_url, token(keys["k1"], "k1", **{"cognito:groups": ["ops", "admin"]}))
    assert admin.role == "admin"


@pytest.mark.parametrize(
    "case", ["unknown-kid", "wrong-key", "wrong-audience", "expired", "hs256-with-public-key"]
)
def test_bad_provider_tokens_are_refused(keys: dict[str, Any], jwks_url: str, case: str) -> None:
    if case == "unknown-kid":
        raw = token(keys["rogue"], "rogue")
    elif case == "wrong-key":
        raw = token(keys["rogue"], "k1")  # claims the provider's key id, signed with another key
    elif case == "wrong-audience":
        raw = token(keys["k1"], "k1", aud="someone-else")
    elif case == "expired":
        raw = token(keys["k1"], "k1", exp=int(time.time()) - 120)  # beyond the 30 s leeway
    else:
        raw = jwt.encode(
            {"sub": "x", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60},
            "not-the-key-but-long-enough-for-hs256-0123456789",
            algorithm="HS256",
            headers={"kid": "k1"},
        )
    with pytest.raises(Unauthorized):
        check(jwks_url, raw)


def test_an_unreachable_provider_refuses_rather_than_fails(keys: dict[str, Any]) -> None:
    with pytest.raises(Unauthorized, match="cannot be fetched"):
        check("http://127.0.0.1:9/jwks.json", token(keys["k1"], "k1"))


def test_no_configured_verifier_refuses() -> None:
    with pytest.raises(Unauthorized, match="no token verification"):
        verify("a.b.c", issuer=ISSUER, audience=AUDIENCE)
