"""Hypothesis strategies for what peers send the backend: WebSocket frames, admin HTTP requests and Kinesis
records, each mostly malformed, in the ways that break parsers and validators (nesting, sizes, unicode,
number edge cases, forged cursors, odd headers).

The budget is bounded: every fuzz test runs `examples(n)` examples, `n` scaled by FUZZ_SCALE (default 1;
`FUZZ_SCALE=20 make test` for a long hunt). Under CI (`CI` set) the examples are derandomized, so a run is
reproducible; elsewhere they are random, and hypothesis keeps failing examples in .hypothesis/.
"""

from __future__ import annotations

import base64
import json
import os
import string
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from backend.protocol import CLIENT_ACTIONS

SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
MATCH = "m-" + "0" * 32


def examples(n: int) -> Any:
    """The settings of a fuzz test: n examples (scaled), no deadline (the machine is shared), and a
    pytest timeout that grows with the scale."""
    hypothesis_settings = settings(
        max_examples=max(1, int(n * SCALE)),
        deadline=None,
        derandomize=bool(os.environ.get("CI")),
        # The explain phase traces every line (sys.settrace before Python 3.12): minutes, not seconds.
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
        # Fixtures set up once per test are intended: each example compares snapshots of its own.
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.function_scoped_fixture,
        ],
    )
    timeout = pytest.mark.timeout(int(300 * max(1.0, SCALE)))

    def apply(test: Any) -> Any:
        return timeout(hypothesis_settings(test))

    return apply


# --- JSON values and raw JSON text -----------------------------------------------------------------

# Text that stresses encoders: control characters, quotes and backslashes, astral planes, RTL, NUL.
TRICKY = st.sampled_from(
    ["", " ", "\n", "a\n", "\x00", '"', "\\", "..", ".", "/", "%0a", "é", "💥", "\u202e", "\ufeff", "a" * 65]
)
texts = st.text(max_size=40) | TRICKY
numbers = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([0, -1, 1, 100, 101, 1000, 1001, 2**31, 2**53 + 1, 2**63, -(2**63) - 1])
    | st.floats(allow_nan=False, allow_infinity=False)
)
scalars = st.none() | st.booleans() | numbers | texts
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)

# Literal JSON number spellings that Python's json module treats specially or that overflow.
NUMBER_TEXT = st.sampled_from(
    [
        "NaN",
        "Infinity",
        "-Infinity",
        "1e400",
        "-1e400",
        "1e-400",
        "-0",
        "-0.0",
        "1.7976931348623157e308",
        "9007199254740993",
        "-9223372036854775809",
        "1" * 4301,
        "0x10",
        "01",
        "1.",
        ".5",
        "+1",
    ]
)
UNICODE_ESCAPES = st.sampled_from(['"\\ud800"', '"\\udfff"', '"\\u0000"', '"\\ud83d\\udca5"', '"\\uffff"'])


def nested(depth: int, opener: str) -> str:
    closer = {"[": "]", "{": "}"}[opener]
    if opener == "[":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + closer * depth


deep_text = st.builds(
    nested, st.sampled_from([31, 32, 33, 100, 999, 1000, 1001, 5000, 50_000]), st.sampled_from("[{")
)
unclosed = st.builds(lambda n, c: c * n, st.integers(1, 20_000), st.sampled_from("[{"))


# --- WebSocket frames -------------------------------------------------------------------------------

FIELDS = ("action", "id", "mode", "matchId", "kind", "points", "x", "y", "board", "period", "limit", "around")
field_values: dict[str, Any] = {
    "action": st.sampled_from([*CLIENT_ACTIONS, "$default", "$connect", "PING", "fly", ""]) | json_values,
    "id": st.sampled_from(["r1", "a" * 64, "a" * 65, "x:y.z-_", "", "a b"]) | json_values,
    "mode": st.sampled_from(["practice", "duel", "arena", "solo", "PRACTICE"]) | json_values,
    "matchId": st.sampled_from([MATCH, MATCH + "\n", MATCH.upper(), "m-", "nope"]) | json_values,
    "kind": st.sampled_from(["score", "move", "jump"]) | json_values,
    "points": st.sampled_from([0, 1, 100, 101, -1, 1.0, "5", True]) | json_values,
    "x": st.sampled_from([0, 1000, 1001, -1, 0.5]) | json_values,
    "y": st.sampled_from([0, 1000, 1001, -1, 0.5]) | json_values,
    "board": st.sampled_from(["global", "duel", "chess"]) | json_values,
    "period": st.sampled_from(["alltime", "daily", "yearly"]) | json_values,
    "limit": st.sampled_from([1, 100, 0, 101, 10**20]) | json_values,
    "around": st.booleans() | json_values,
}


@st.composite
def frame_objects(draw: st.DrawFn) -> dict[str, Any]:
    """A frame-shaped object: known fields with edge values, sometimes an unknown field."""
    chosen = draw(st.sets(st.sampled_from(FIELDS), max_size=len(FIELDS)))
    frame = {name: draw(field_values[name]) for name in sorted(chosen)}
    if draw(st.booleans()):
        frame["action"] = draw(st.sampled_from(CLIENT_ACTIONS))
    if draw(st.integers(0, 9)) == 0:
        frame[draw(texts)] = draw(json_values)
    return frame


@st.composite
def spliced_frames(draw: st.DrawFn) -> str:
    """A valid-looking frame whose one field is raw text: a number spelling, an escape, deep nesting."""
    action = draw(
        st.sampled_from(
            [
                '{"action":"act","kind":"score","matchId":"' + MATCH + '","id":"a1","points":%s}',
                '{"action":"act","kind":"move","matchId":"' + MATCH + '","id":"a1","x":%s,"y":1}',
                '{"action":"leaderboard","limit":%s}',
                '{"action":"ping","id":%s}',
                '{"action":"join","mode":%s}',
            ]
        )
    )
    fragment = draw(
        NUMBER_TEXT | UNICODE_ESCAPES | deep_text | st.sampled_from(["", "[", "}", "null", "true"])
    )
    return action.replace("%s", fragment)


def padded_ping(size: int) -> str:
    return '{"action":"ping","id":"' + "x" * size + '"}'


def frame_texts(max_size: int = 120_000) -> st.SearchStrategy[str]:
    """Frame bodies as text, below max_size (the gateway closes a socket on a frame over 128 KB)."""
    return (
        st.builds(json.dumps, frame_objects())
        | st.builds(json.dumps, json_values)
        | spliced_frames()
        | deep_text
        | unclosed.filter(lambda t: len(t) < max_size)
        | st.text(max_size=200)
        | st.builds(padded_ping, st.integers(0, max_size - 40))
    ).filter(lambda t: len(t.encode("utf-8", "surrogatepass")) < max_size)


frame_bytes = st.binary(max_size=300)  # binary frames: valid UTF-8 or not


# --- admin HTTP requests ----------------------------------------------------------------------------

ROUTES = [
    ("GET", "/admin/leaderboards/{board}"),
    ("GET", "/admin/leaderboards/{board}/players/{player}"),
    ("DELETE", "/admin/leaderboards/{board}/players/{player}"),
    ("GET", "/admin/matches"),
    ("GET", "/admin/matches/{match}"),
    ("GET", "/admin/matches/{match}/events"),
    ("POST", "/admin/matches/{match}/end"),
    ("GET", "/admin/connections"),
    ("DELETE", "/admin/connections/{connection}"),
    ("POST", "/admin/broadcast"),
    ("GET", "/admin/stats"),
    ("GET", "/admin/health"),
    ("GET", "/admin/openapi.json"),
    ("GET", "/admin/{junk}"),
    ("GET", "/{junk}"),
]
segment = (
    st.sampled_from(["global", "duel", "chess", "alice", MATCH, "abc=", "..", ".", "", "%2e%2e", "a" * 300])
    | TRICKY
    | st.text(max_size=20)
)


def cursor_of(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


cursors = (
    st.builds(cursor_of, json_values)
    | st.builds(lambda b: base64.urlsafe_b64encode(b).decode(), st.binary(max_size=60))
    | st.builds(
        lambda t: base64.urlsafe_b64encode(t.encode()).decode(), spliced_frames() | NUMBER_TEXT | deep_text
    )
    | st.builds(cursor_of, st.tuples(numbers, texts, numbers, numbers).map(list))
    | st.builds(
        cursor_of,
        st.fixed_dictionaries(
            {"matchId": st.just({"S": MATCH}) | json_values, "status": json_values, "createdAt": json_values}
        ),
    )
    | st.builds(cursor_of, st.fixed_dictionaries({"connectionId": json_values}))
    | st.text(max_size=30)
)
QUERY_KEYS = ("period", "limit", "cursor", "season", "status", "mode", "playerId", "matchId")
query_values: dict[str, Any] = {
    "period": st.sampled_from(["alltime", "daily", "weekly", "yearly"]) | texts,
    "limit": st.sampled_from(["1", "100", "0", "101", "-1", "1e3", "99999999999999999999"]) | texts,
    "cursor": cursors,
    "season": st.sampled_from(["0", "1", "-1", "10**9", "9" * 30]) | texts,
    "status": st.sampled_from(["waiting", "running", "finished", "paused"]) | texts,
    "mode": st.sampled_from(["practice", "duel", "arena", "solo"]) | texts,
    "playerId": st.sampled_from(["alice", "..", "alice\n"]) | texts,
    "matchId": st.sampled_from([MATCH, "nope"]) | texts,
}


@st.composite
def admin_queries(draw: st.DrawFn) -> dict[str, str]:
    chosen = draw(st.sets(st.sampled_from(QUERY_KEYS), max_size=4))
    if draw(st.booleans()):
        chosen.add("cursor")
    query = {k: draw(query_values[k]) for k in sorted(chosen)}
    if draw(st.integers(0, 5)) == 0:
        query[draw(texts)] = draw(texts)
    return query


CONTENT_TYPES = st.sampled_from(
    [
        None,
        "application/json",
        "Application/JSON",
        "application/json; charset=utf-8",
        "application/json; charset=latin-1",
        "application/json;charset=UTF-8",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "multipart/form-data; boundary=x",
        "application/jsonp",
        "",
        ";",
    ]
)
bodies = (
    st.none()
    | st.builds(json.dumps, json_values)
    | st.builds(
        json.dumps, st.fixed_dictionaries({"message": json_values}, optional={"matchId": json_values})
    )
    | st.builds(lambda t: '{"message":' + t + "}", NUMBER_TEXT | UNICODE_ESCAPES | deep_text)
    | deep_text
    | st.text(max_size=100)
    | st.binary(max_size=100)
)
header_text = st.text(alphabet=string.printable.strip() + " ", max_size=60)


@st.composite
def admin_requests(draw: st.DrawFn, tokens: dict[str, str]) -> dict[str, Any]:
    """One request: method, path (segments already decoded, as API Gateway hands them over), query,
    headers and body. `tokens` names the bearer tokens to draw from (admin, player, ...)."""
    # Mostly a route's own method with an admin's token: what gets past authentication is what parses
    # cursors and bodies.
    method, path = draw(st.sampled_from(ROUTES))
    for name in ("board", "player", "match", "connection", "junk"):
        if "{" + name + "}" in path:
            path = path.replace("{" + name + "}", draw(segment))
    if draw(st.integers(0, 4)) == 0:
        method = draw(st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS", "HEAD"]))
    headers: dict[str, str] = {}
    auth = draw(st.sampled_from(["admin"] * 6 + [*tokens, "none", "garbage", "basic"]))
    if auth in tokens:
        headers["authorization"] = f"Bearer {tokens[auth]}"
    elif auth == "garbage":
        headers["authorization"] = draw(header_text)
    elif auth == "basic":
        headers["authorization"] = "Basic YWxpY2U6cHc="
    content_type = draw(CONTENT_TYPES)
    if content_type is not None:
        headers["content-type"] = content_type
    if draw(st.integers(0, 4)) == 0:
        headers[draw(st.sampled_from(["accept", "x-forwarded-for", "cookie", "x-junk"]))] = draw(header_text)
    body = draw(bodies) if method in ("POST", "PUT", "PATCH") or draw(st.integers(0, 5)) == 0 else None
    return {"method": method, "path": path, "query": draw(admin_queries()), "headers": headers, "body": body}


def wire_path(path: str) -> str:
    """The path as a client puts it on the wire: each segment percent-encoded."""
    return "/".join(quote(s, safe="") for s in path.split("/"))


# --- Kinesis records --------------------------------------------------------------------------------

EVENT_TYPES = st.sampled_from(["join", "score", "move", "leave", "end", "fly"]) | json_values


@st.composite
def event_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """A GameEvent-shaped record body with edge values (most refused by the schema, some valid)."""
    event = {
        "v": draw(st.sampled_from([1, 1, 2, 0, "1"]) | json_values),
        "eventId": draw(st.sampled_from(["e1"]) | texts),
        "matchId": draw(st.sampled_from(["m-" + "f" * 32, MATCH]) | texts),
        "playerId": draw(st.sampled_from(["alice", "..", "alice\n"]) | texts),
        "receivedAt": draw(st.sampled_from([1_700_000_000_000, 0, -1, 2**63]) | numbers),
        "type": draw(EVENT_TYPES),
    }
    for name in ("actionId", "points", "x", "y", "mode", "connectionId"):
        if draw(st.booleans()):
            event[name] = draw(json_values | st.sampled_from([1, 100, 101, "duel", "a1"]))
    return event


record_data = (
    st.binary(max_size=500)
    | st.builds(lambda v: json.dumps(v).encode(), json_values)
    | st.builds(lambda e: json.dumps(e).encode(), event_dicts())
    | st.builds(lambda t: t.encode("utf-8", "surrogatepass"), spliced_frames() | deep_text | NUMBER_TEXT)
)
partition_keys = st.text(min_size=1, max_size=256).filter(
    lambda k: len(k.encode("utf-8", "surrogatepass")) <= 1024
)
