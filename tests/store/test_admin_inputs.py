"""The admin function in process: every input that used to answer 5xx, or to be quietly reinterpreted,
is refused with a 4xx and a code, and changes nothing (issue 16)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.conftest import token_for
from tests.store.harness import ADMIN_TOKEN, Backend, http_event

# The admin function publishes no metric of its own on most routes; powertools warns about that.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")
AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}
JSON = {**AUTH, "content-type": "application/json"}
MATCH = "m-" + "0" * 32


def cursor(value: Any) -> str:
    raw = value if isinstance(value, str) else json.dumps(value)
    return base64.urlsafe_b64encode(raw.encode()).decode()


def refused(backend: Backend, event: dict[str, Any], status: int, code: str) -> dict[str, Any]:
    before = backend.snapshot()
    got, body, headers = backend.admin(event)
    assert (got, body["error"]["code"]) == (status, code), body
    assert set(body) == {"error"} and body["error"]["message"]
    assert headers["Content-Type"] == "application/json"
    assert backend.snapshot() == before
    return body


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/admin/leaderboards/global", {"cursor": cursor({"a": 1})}),
        ("/admin/leaderboards/global", {"cursor": cursor('[Infinity,"alice",1,1]')}),
        ("/admin/leaderboards/global", {"cursor": cursor('[1e400,"alice",1,1]')}),
        ("/admin/leaderboards/global", {"cursor": cursor([10**30, "alice", 1, 1])}),
        ("/admin/leaderboards/global", {"cursor": cursor([5, "alice\n", 1, 1])}),
        ("/admin/leaderboards/global", {"cursor": cursor([5, "alice", True, 1])}),
        ("/admin/leaderboards/global", {"cursor": cursor([5, "alice", 1])}),
        ("/admin/matches", {"cursor": cursor({"matchId": "x"})}),  # untyped attributes
        ("/admin/matches", {"cursor": cursor({"matchId": {"S": MATCH}})}),  # not the index's key
        (
            "/admin/matches",
            {
                "cursor": cursor(
                    {"matchId": {"S": MATCH}, "status": {"S": "waiting"}, "createdAt": {"N": "1"}}
                )
            },
        ),  # another status's key
        (
            "/admin/matches",
            {"cursor": cursor({"matchId": {"N": "1"}, "status": {"S": "running"}, "createdAt": {"N": "1"}})},
        ),
        ("/admin/connections", {"cursor": cursor({"connectionId": "abc"})}),
        ("/admin/connections", {"cursor": cursor({"connectionId": {"S": "abc"}, "x": {"S": "y"}})}),
        ("/admin/connections", {"cursor": cursor({"connectionId": {"M": {}}})}),
        ("/admin/connections", {"cursor": cursor([1])}),
        (f"/admin/matches/{MATCH}/events", {"cursor": cursor("Infinity")}),
        (f"/admin/matches/{MATCH}/events", {"cursor": cursor(True)}),
        (f"/admin/matches/{MATCH}/events", {"cursor": cursor(-1)}),
        ("/admin/audit", {"cursor": cursor('"1"')}),
        ("/admin/audit", {"cursor": cursor(-1)}),
        ("/admin/audit", {"cursor": cursor(2**63)}),
        ("/admin/leaderboards/global", {"cursor": "bm90LWEtY3Vyc29y"}),  # base64 of "not-a-cursor"
        ("/admin/leaderboards/global", {"cursor": "_w"}),  # base64 of b"\xff": not UTF-8
    ],
)
def test_forged_cursors_are_bad_requests(backend: Backend, path: str, query: dict[str, str]) -> None:
    refused(backend, http_event("GET", path, query=query, headers=AUTH), 400, "bad_request")


def test_issued_cursors_are_still_taken(backend: Backend) -> None:
    from backend.store.connections import Connection, ConnectionStore

    store = ConnectionStore(backend.ddb, "gamebackend-local-connections")
    for i in range(3):
        store.put(Connection(f"c{i}=", "alice", i))  # type: ignore[arg-type]
    seen, query = [], {"limit": "1"}
    while True:
        status, page, _ = backend.admin(http_event("GET", "/admin/connections", query=query, headers=AUTH))
        assert status == 200, page
        seen += [c["connectionId"] for c in page["connections"]]
        if not page["nextCursor"]:
            break
        query = {"limit": "1", "cursor": page["nextCursor"]}
    assert sorted(seen) == ["c0=", "c1=", "c2="]


@pytest.mark.parametrize(
    "body",
    [
        "[" * 1000 + "]" * 1000,
        '{"message":' + "[" * 1000 + "]" * 1000 + "}",
        '{"message":' + "{" * 5000,
        '{"message":"hi","x":' + "[" * 33 + "]" * 33 + "}",
        '{"message":NaN}',
        '{"message":"hi","matchId":Infinity}',
        "not json",
        b"\xff\xfe",
    ],
    ids=["1000-deep", "1000-deep-member", "5000-unclosed", "33-deep", "nan", "infinity", "text", "binary"],
)
def test_bodies_that_are_not_strict_json_are_bad_requests(backend: Backend, body: str | bytes) -> None:
    refused(backend, http_event("POST", "/admin/broadcast", body=body, headers=JSON), 400, "bad_request")


@pytest.mark.parametrize(
    "content_type", ["Application/JSON", "APPLICATION/JSON; charset=UTF-8", "application/json;charset=utf-8"]
)
def test_media_types_are_case_insensitive(backend: Backend, content_type: str) -> None:
    event = http_event(
        "POST", "/admin/broadcast", body='{"message":"hi"}', headers={**AUTH, "Content-Type": content_type}
    )
    status, body, _ = backend.admin(event)
    assert status == 200, body
    assert set(body) == {"sent", "gone", "failed"}


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (None, '{"message":""}'),  # invalid too: the media type is refused first (415, not 422)
        ("text/plain", '{"message":""}'),
        ("application/json; charset=latin-1", '{"message":"hi"}'),
        ("application/x-www-form-urlencoded", "message=hi"),
        ("multipart/form-data", "--x\r\n"),  # no boundary: once a 400 from deep inside the resolver
        ("application/jsonp", '{"message":"hi"}'),
    ],
)
def test_a_body_that_is_not_json_is_refused_before_validation(
    backend: Backend, content_type: str | None, body: str
) -> None:
    headers = {**AUTH, **({"content-type": content_type} if content_type else {})}
    event = http_event("POST", "/admin/broadcast", body=body, headers=headers)
    refused(backend, event, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "content_type", ["multipart/form-data", "application/x-www-form-urlencoded", "text/plain"]
)
def test_a_missing_body_is_invalid_whatever_the_media_type(backend: Backend, content_type: str) -> None:
    # A form type with no body once reached the resolver's multipart parser, whose ValueError was a 500.
    event = http_event("POST", "/admin/broadcast", headers={**AUTH, "content-type": content_type})
    refused(backend, event, 422, "invalid_request")


def test_authentication_comes_before_validation(backend: Backend) -> None:
    invalid = [
        http_event("GET", "/admin/leaderboards/chess"),
        http_event("GET", "/admin/leaderboards/global", query={"limit": "0"}),
        http_event("POST", "/admin/broadcast", body="not json", headers={"content-type": "text/plain"}),
    ]
    for event in invalid:
        refused(backend, event, 401, "unauthorized")
        event["headers"]["authorization"] = f"Bearer {token_for('player')}"
        refused(backend, event, 403, "forbidden")


@pytest.mark.parametrize(
    "path",
    [
        "/admin/leaderboards/global\n",
        "/admin/leaderboards/global/players/mallory\n",
        "/admin/leaderboards/global/players/mal\rlory",
        "/admin/matches/" + MATCH + "\n",
        "/admin/stats\t",
        "/admin/leaderboards/glo bal",
        "/admin/health\n",
    ],
)
def test_a_control_character_in_the_path_is_refused_not_dropped(backend: Backend, path: str) -> None:
    refused(backend, http_event("GET", path, headers=AUTH), 400, "bad_request")


@pytest.mark.parametrize("player", ["..", ".", ".hidden", "-rf", "a" * 65])
def test_player_ids_outside_the_grammar_are_invalid_requests(backend: Backend, player: str) -> None:
    for method in ("GET", "DELETE"):
        event = http_event(method, f"/admin/leaderboards/global/players/{player}", headers=AUTH)
        event["pathParameters"] = {"board": "global", "playerId": player}
        refused(backend, event, 422, "invalid_request")
