"""The admin HTTP API over real HTTP against the local stack, auth failures included."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from backend.game.boards import configured
from backend.store.events import EventLog
from backend.store.leaderboards import LeaderboardStore
from local.runtime import LocalRuntime
from tests.conftest import token_for
from tests.e2e.conftest import eventually
from tests.e2e.test_game import join, name, score, state_where
from tests.leaderboard_fill import fill

pytestmark = pytest.mark.e2e
ADMIN = token_for("ops-admin", admin=True)


async def call(
    stack: LocalRuntime, method: str, path: str, body: Any = None, token: str | None = ADMIN
) -> tuple[int, Any]:
    def _do() -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(stack.http_url + path, data=data, method=method)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            raw = err.read()
            return err.code, json.loads(raw) if raw else None

    return await asyncio.to_thread(_do)


async def test_health_needs_no_token(stack: LocalRuntime) -> None:
    status, body = await call(stack, "GET", "/admin/health", token=None)
    assert status == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"].values()) == {"active"}


@pytest.mark.parametrize(
    ("token", "status", "code"),
    [
        (None, 401, "unauthorized"),
        ("garbage", 401, "unauthorized"),
        (token_for("ops", admin=True, secret="another-secret-long-enough-for-hs256!!"), 401, "unauthorized"),
        (token_for("just-a-player"), 403, "forbidden"),
    ],
    ids=["none", "garbage", "wrong-signature", "player"],
)
async def test_auth_failures(stack: LocalRuntime, token: str | None, status: int, code: str) -> None:
    for method, path in (("GET", "/admin/stats"), ("GET", "/admin/matches"), ("POST", "/admin/broadcast")):
        got, body = await call(
            stack, method, path, {"message": "x"} if method == "POST" else None, token=token
        )
        assert got == status, (path, body)
        assert body["error"]["code"] == code
        assert body["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/admin/leaderboards/Chess", 422),  # not a board name
        ("GET", "/admin/leaderboards/chess", 404),  # a board name, of no board serverless.yml declares
        ("GET", "/admin/leaderboards/global?limit=0", 422),
        ("GET", "/admin/leaderboards/global?period=yearly", 404),
        ("GET", "/admin/leaderboards/global/players/p1?period=yearly", 404),
        ("GET", "/admin/leaderboards/global/players/p1?width=51", 422),
        ("DELETE", "/admin/leaderboards/chess/players/p1", 404),
        ("POST", "/admin/leaderboards/chess/reset", 404),
        ("GET", "/admin/leaderboards/global?cursor=%%%", 422),
        ("GET", "/admin/leaderboards/global?cursor=bm90LWEtY3Vyc29y", 400),  # well-formed, never issued
        ("GET", "/admin/matches/not-a-match", 422),
        ("GET", "/admin/matches/m-00000000000000000000000000000000", 404),
        ("GET", "/admin/matches?status=paused", 422),
        # Cursors that decode to a key, but not one of the listing's: DynamoDB refuses them as start keys.
        ("GET", "/admin/connections?cursor=eyJmb28iOnsiUyI6IngifX0=", 400),
        (
            "GET",
            "/admin/matches?status=running&cursor=eyJtYXRjaElkIjp7IlMiOiJtLTEifSwic3RhdHVzIjp7IlMiOiJmaW5pc2hlZCJ9"
            "LCJjcmVhdGVkQXQiOnsiTiI6IjEifX0=",
            400,
        ),
        ("GET", "/admin/nothing-here", 404),
        ("DELETE", "/admin/connections/nope", 404),
    ],
)
async def test_bad_requests_get_json_errors(stack: LocalRuntime, method: str, path: str, status: int) -> None:
    got, body = await call(stack, method, path)
    assert got == status, body
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}


async def test_invalid_bodies(stack: LocalRuntime) -> None:
    for body in ({}, {"message": ""}, {"message": "hi", "matchId": "bad"}, {"message": "hi", "extra": 1}):
        got, answer = await call(stack, "POST", "/admin/broadcast", body)
        assert got == 422, (body, answer)
        assert answer["error"]["code"] == "invalid_request"


async def test_leaderboards_matches_and_events(stack: LocalRuntime, connect_player: Any) -> None:
    solo = await connect_player(name("adm"))
    mid = (await join(solo, "practice"))["matchId"]
    for i, points in enumerate((60, 40)):
        await score(solo, mid, f"p{i}", points)
    await state_where(solo, lambda s: s["status"] == "finished")

    async def settled() -> dict[str, Any] | None:
        # The boards and the event log are written off the players' path, within a window.
        status, page = await call(stack, "GET", f"/admin/leaderboards/practice/players/{solo.player}")
        assert status in (200, 404), page
        return page if status == 200 and page["score"] == 100 else None

    page = await eventually(settled, timeout=20, interval=0.25)
    assert page["rank"] >= 1
    assert any(e["playerId"] == solo.player for e in page["neighbours"])

    status, detail = await call(stack, "GET", f"/admin/matches/{mid}")
    assert status == 200
    assert (detail["status"], detail["winner"], detail["roster"]) == ("finished", solo.player, [solo.player])
    assert [(e["type"], e.get("kind")) for e in detail["lastEvents"]] == [
        ("join", None),
        ("act", "score"),
        ("act", "score"),
    ]
    assert [e["args"] for e in detail["lastEvents"][1:]] == [{"points": 60}, {"points": 40}]

    status, first = await call(stack, "GET", f"/admin/matches/{mid}/events?limit=2")
    assert status == 200 and [e["version"] for e in first["events"]] == [1, 2]
    status, rest = await call(
        stack, "GET", f"/admin/matches/{mid}/events?limit=2&cursor={first['nextCursor']}"
    )
    assert [e["version"] for e in rest["events"]] == [3] and rest["nextCursor"] is None

    status, listing = await call(stack, "GET", "/admin/matches?status=finished&mode=practice&limit=100")
    assert status == 200 and mid in [x["matchId"] for x in listing["matches"]]


async def test_leaderboard_pages_are_exact_in_rank_order(stack: LocalRuntime) -> None:
    """Rows written as the projector leaves them, then read a page at a time with ties across pages, in
    both directions, and around a player."""
    store = LeaderboardStore(
        boto3.client("dynamodb", endpoint_url=stack.dynamodb_endpoint, region_name="us-east-1"),
        "gamebackend-local-leaderboards",
    )
    board = "arena"
    key = configured()[board].key("weekly", datetime.now(UTC))
    tag = uuid.uuid4().hex[:6]
    scores = {f"pg{tag}-{i:02d}": s for i, s in enumerate([50, 40, 40, 40, 40, 30, 20, 20, 10, 5, 5])}
    await asyncio.to_thread(fill, store, configured()[board], key, scores)
    pages: list[dict[str, Any]] = []
    cursor = ""
    while True:
        status, page = await call(stack, "GET", f"/admin/leaderboards/{board}?period=weekly&limit=3{cursor}")
        assert status == 200, page
        pages.append(page)
        if not page["nextCursor"]:
            break
        cursor = f"&cursor={page['nextCursor']}"
    seen = [e for page in pages for e in page["entries"] if e["playerId"].startswith(f"pg{tag}")]
    expected = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    assert [(e["playerId"], e["score"]) for e in seen] == expected
    # Among these rows, ties share a rank and the next score skips ahead ("1224"), across pages too.
    ranks = [e["rank"] for e in seen]
    offset = ranks[0] - 1  # rows of other tests may rank above them on this shared board
    expected_ranks = [1 + sum(1 for _, other in expected if other > s) for _, s in expected]
    assert [r - offset for r in ranks] == expected_ranks
    # Backwards from the last page: the same pages, the same ranks.
    back = [pages[-1]]
    while back[-1]["prevCursor"]:
        status, page = await call(
            stack, "GET", f"/admin/leaderboards/{board}?period=weekly&limit=3&cursor={back[-1]['prevCursor']}"
        )
        assert status == 200, page
        back.append(page)
    assert [p["entries"] for p in back[::-1]] == [p["entries"] for p in pages]
    assert pages[0]["prevCursor"] is None
    # Around a player tied with three others: their neighbours, each with its rank.
    me = expected[2][0]
    status, standing = await call(
        stack, "GET", f"/admin/leaderboards/{board}/players/{me}?period=weekly&width=3"
    )
    assert status == 200, standing
    assert standing["rank"] - offset == 2 and standing["score"] == 40
    around = [(e["playerId"], e["rank"] - offset) for e in standing["neighbours"]]
    at = [p for p, _ in expected].index(me)
    assert (
        around
        == [(p, r) for (p, _), r in zip(expected, expected_ranks, strict=True)][max(0, at - 3) : at + 4]
    )


async def test_remove_a_cheater_is_audited_and_reset_keeps_the_old_season(stack: LocalRuntime) -> None:
    ddb = boto3.client("dynamodb", endpoint_url=stack.dynamodb_endpoint, region_name="us-east-1")
    store = LeaderboardStore(ddb, "gamebackend-local-leaderboards")
    cheater, honest = name("cheat"), name("honest")
    key = configured()["arena"].key(
        "alltime", datetime.now(UTC), (await call(stack, "GET", "/admin/leaderboards/arena"))[1]["season"]
    )
    await asyncio.to_thread(fill, store, configured()["arena"], key, {cheater: 999, honest: 10})
    status, removed = await call(stack, "DELETE", f"/admin/leaderboards/arena/players/{cheater}")
    assert status == 200 and removed["removed"], removed
    status, _ = await call(stack, "GET", f"/admin/leaderboards/arena/players/{cheater}")
    assert status == 404
    assert (await call(stack, "DELETE", f"/admin/leaderboards/arena/players/{cheater}"))[0] == 404
    audit = await asyncio.to_thread(
        EventLog(ddb, "gamebackend-local-events").audit_log, datetime.now(UTC).strftime("%Y-%m-%d")
    )
    assert any(
        a["action"] == "leaderboard.remove"
        and a["details"]["playerId"] == cheater
        and a["actor"] == "ops-admin"
        for a in audit
    )
    # The same record through the admin API, newest first: the removal was the last admin action.
    status, listed = await call(stack, "GET", "/admin/audit?limit=1")
    assert status == 200, listed
    (newest,) = listed["entries"]
    assert newest["action"] == "leaderboard.remove" and newest["details"]["playerId"] == cheater

    old = (await call(stack, "GET", "/admin/leaderboards/arena"))[1]["season"]
    status, season = await call(stack, "POST", "/admin/leaderboards/arena/reset")
    assert status == 201 and season == {"board": "arena", "season": old + 1}
    status, current = await call(stack, "GET", "/admin/leaderboards/arena?limit=100")
    assert current["season"] == old + 1 and honest not in [e["playerId"] for e in current["entries"]]
    status, previous = await call(stack, "GET", f"/admin/leaderboards/arena?limit=100&season={old}")
    assert status == 200 and honest in [e["playerId"] for e in previous["entries"]]
    assert (await call(stack, "GET", f"/admin/leaderboards/arena?season={old + 5}"))[0] == 404


async def test_end_a_match_through_the_stream_notifies_players(
    stack: LocalRuntime, connect_player: Any
) -> None:
    a, b = await connect_player(name("e1")), await connect_player(name("e2"))
    mid = (await join(a, "duel"))["matchId"]
    assert (await join(b, "duel"))["matchId"] == mid
    await state_where(a, lambda s: s["status"] == "running")
    status, accepted = await call(stack, "POST", f"/admin/matches/{mid}/end")
    assert status == 202 and accepted["matchId"] == mid
    for client in (a, b):
        end = await state_where(client, lambda s: s["status"] == "finished")
        assert end.get("winner") is None
    status, _ = await call(stack, "POST", f"/admin/matches/{mid}/end")  # idempotent: already finished
    assert status == 202

    async def logged() -> list[str] | None:
        # The event log is written off the players' path, within a window.
        status, detail = await call(stack, "GET", f"/admin/matches/{mid}")
        assert status == 200, detail
        types = [e["type"] for e in detail["lastEvents"]]
        return types if "end" in types else None

    assert (await eventually(logged, timeout=20, interval=0.25)).count("end") == 1


async def test_connections_kick_and_broadcast(stack: LocalRuntime, connect_player: Any) -> None:
    a, b = await connect_player(name("c1")), await connect_player(name("c2"))
    mid = (await join(a, "duel"))["matchId"]
    assert (await join(b, "duel"))["matchId"] == mid
    status, by_match = await call(stack, "GET", f"/admin/connections?matchId={mid}")
    assert status == 200 and {c["playerId"] for c in by_match["connections"]} == {a.player, b.player}
    status, by_player = await call(stack, "GET", f"/admin/connections?playerId={a.player}")
    (conn,) = by_player["connections"]
    assert conn["matchId"] == mid and conn["connectedAt"] > 0

    status, result = await call(
        stack, "POST", "/admin/broadcast", {"message": "server restart", "matchId": mid}
    )
    assert status == 200 and result == {"sent": 2, "gone": 0, "failed": 0}
    for client in (a, b):
        notice = await client.wait_for(lambda f: f.get("type") == "notice")
        assert notice["message"] == "server restart"

    status, _ = await call(stack, "DELETE", f"/admin/connections/{conn['connectionId']}")
    assert status == 204
    with pytest.raises(Exception):  # noqa: B017 - any close reason: the socket is gone
        await asyncio.wait_for(a.ws.recv(), 10)

    async def gone() -> bool:
        return not (await call(stack, "GET", f"/admin/connections?playerId={a.player}"))[1]["connections"]

    await eventually(gone)


async def test_stats_and_openapi(stack: LocalRuntime, connect_player: Any) -> None:
    solo = await connect_player(name("st"))
    mid = (await join(solo, "practice"))["matchId"]
    await score(solo, mid, "x", 1)
    await state_where(solo, lambda s: "x" in s["applied"])

    async def published() -> dict[str, Any] | None:
        # The local runtime publishes the stream's metrics once a second, as CloudWatch gets them.
        status, stats = await call(stack, "GET", "/admin/stats")
        assert status == 200, stats
        return stats if stats["actionsLastMinute"] >= 2 and stats["streamLagMs"] is not None else None

    stats = await eventually(published, timeout=10, interval=0.25)
    assert stats["connections"] >= 1 and stats["runningMatches"] >= 1
    assert stats["streamLagMs"] >= 0
    # The dead-letter depths are the queues' own (test_dead_letters puts poison on the actions queue).
    sqs = boto3.client("sqs", endpoint_url=stack.aws_endpoint, region_name="us-east-1")
    for field, queue in (
        ("deadLetters", "gamebackend-local-actions-dlq"),
        ("projectorDeadLetters", "gamebackend-local-projector-dlq"),
    ):
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        depth = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        assert stats[field] == int(depth["Attributes"]["ApproximateNumberOfMessages"]), field

    status, doc = await call(stack, "GET", "/admin/openapi.json", token=None)
    assert status == 200 and doc["openapi"].startswith("3.")
    assert "/admin/leaderboards/{board}" in doc["paths"]


async def test_metrics_lines_are_counted_locally(stack: LocalRuntime, connect_player: Any) -> None:
    solo = await connect_player(name("met"))
    mid = (await join(solo, "practice"))["matchId"]
    await score(solo, mid, "m1", 3)
    await state_where(solo, lambda s: "m1" in s["applied"])
    metrics = stack.metrics()["functions"]
    assert metrics["message"]["metrics"]["ActionsAccepted"] >= 1
    assert metrics["connect"]["metrics"]["Connections"] >= 1

    async def applied() -> bool:
        return stack.metrics()["functions"]["processor"]["metrics"].get("ActionsApplied", 0) >= 2

    await eventually(applied)


async def test_the_audit_log_pages_newest_first(stack: LocalRuntime, connect_player: Any) -> None:
    mid = (await join(await connect_player(name("aud")), "practice"))["matchId"]
    ends = []
    for _ in range(
        5
    ):  # each end leaves an audit record (the first finishes the match, the rest change nothing)
        status, body = await call(stack, "POST", f"/admin/matches/{mid}/end")
        assert status == 202, body
        ends.append(body["eventId"])
    seen: list[dict[str, Any]] = []
    cursor = ""
    while len(seen) < 5:
        status, page = await call(stack, "GET", f"/admin/audit?limit=2{cursor}")
        assert status == 200, page
        assert page["day"] == datetime.now(UTC).strftime("%Y-%m-%d")
        assert len(page["entries"]) <= 2
        seen += page["entries"]
        if not page["nextCursor"]:
            break
        cursor = f"&cursor={page['nextCursor']}"
    ats = [e["at"] for e in seen]
    assert ats == sorted(ats, reverse=True)
    assert [e["details"] for e in seen[:5]] == [{"matchId": mid, "eventId": e} for e in reversed(ends)]
    assert all(e["actor"] == "ops-admin" and e["action"] == "match.end" for e in seen[:5])
    assert len({e["at"] for e in seen}) == len(seen)  # no record twice across pages

    assert (await call(stack, "GET", "/admin/audit?day=2020-01-01"))[1] == {
        "day": "2020-01-01",
        "entries": [],
        "nextCursor": None,
    }
    for query, status in (("day=2026-02-30", 422), ("day=yesterday", 422), ("cursor=bm90IGFuIGludA", 400)):
        got, body = await call(stack, "GET", f"/admin/audit?{query}")
        assert got == status, (query, body)
        assert body["error"]["message"]
    assert (await call(stack, "GET", "/admin/audit", token=token_for("player")))[0] == 403
