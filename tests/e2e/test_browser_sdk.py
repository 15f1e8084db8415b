"""The JavaScript SDK (clients/js/gamebackend.js) in a real, headless Chromium against the local stack: a
match with the socket dropped halfway (nothing lost, nothing counted twice, checked against the event log),
typed errors and rejections, auth failures never retried, API Gateway's untyped frames and frame types the
SDK does not know, and the example of docs/clients.md.

The page is the SDK's own folder as the local runtime serves it (/sdk/), so the module is imported from the
same origin a game's page would import it from. Chromium is driven as in test_browser.py.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from backend.vocabulary import PROTOCOL_VERSION
from local.runtime import LocalRuntime
from tests.conftest import token_for
from tests.e2e.conftest import eventually, management_api
from tests.e2e.test_admin import call
from tests.e2e.test_browser import Page, chromium, chromium_executable, connection_ids, delete_connection

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@pytest_asyncio.fixture
async def page(stack: LocalRuntime, tmp_path: Path) -> AsyncIterator[Page]:
    """A tab on the runtime's origin with the SDK imported as `window.sdk`, and `window.out` collecting
    what the page's scripts log."""
    executable = await asyncio.to_thread(chromium_executable)
    async with chromium(executable, tmp_path / "profile") as tab:
        await tab.send("Page.navigate", url=f"{stack.http_url}/sdk/gamebackend.d.ts")
        await tab.wait("document.readyState === 'complete'")
        await tab.eval(
            "window.out = []; console.log = (...a) => out.push(a.join(' '));"
            "import('/sdk/gamebackend.js').then(m => { window.sdk = m; return true; })"
        )
        await tab.eval(f"window.WS = {json.dumps(stack.ws_url)}")
        yield tab
        assert not tab.errors, tab.errors


async def test_a_socket_dropped_mid_match_loses_and_doubles_nothing(stack: LocalRuntime, page: Page) -> None:
    player = name("jsdrop")
    points = [3, 5, 7, 2, 9, 4, 6, 8, 1, 5, 7, 3]  # 60 < 100: the match keeps running
    match_id = await page.eval(
        f"""(async () => {{
        const token = {json.dumps(token_for(player))};
        const c = window.c = new sdk.GameClient(WS, {{ token, backoffBase: 50 }});
        window.statuses = []; window.pushes = [];
        c.on("statuschange", (s) => statuses.push(s));
        c.on("push", (f) => pushes.push(f.type));
        await c.connect();
        const joined = await c.join("practice");
        await c.waitState((s) => s.status === "running");
        return joined.matchId;
        }})()"""
    )
    (first,) = connection_ids(stack, player)

    # Half the actions are sent, unanswered, when the socket goes; the other half while it is down.
    await page.eval(f"window.early = {json.dumps(points[:6])}.map((p) => c.score(p)); true")
    assert await asyncio.to_thread(delete_connection, stack, first) == 204
    await page.wait("c.status === 'reconnecting' || c.reconnects === 1")
    await page.eval(f"window.late = {json.dumps(points[6:])}.map((p) => c.score(p)); true")
    acks = await page.eval("Promise.all([...early, ...late]).then((acks) => acks.map((a) => a.id))")
    assert len(set(acks)) == len(points)
    assert await page.eval("[c.reconnects, c.matchId, c.status]") == [1, match_id, "online"]
    assert "reconnecting" in await page.eval("statuses")
    assert connection_ids(stack, player) not in ([], [first])

    # A last action after everything: its state has the final totals.
    final = await page.eval(
        "c.move(10, 20).then((ack) => c.applied(ack.id, { timeout: 20000 }))"
        f".then((s) => s.players[{json.dumps(player)}])"
    )
    expected = {"score": sum(points), "x": 10, "y": 20, "left": False, "presence": "here"}
    assert final == expected, "an action was lost or doubled"

    # The backend's own record agrees: each action applied once, by the event log of the match.
    async def logged() -> list[dict[str, Any]] | None:
        status, body = await call(stack, "GET", f"/admin/matches/{match_id}/events?limit=100")
        assert status == 200, body
        scores = [e for e in body["events"] if e.get("kind") == "score"]
        return scores if len(scores) >= len(points) else None

    scores = await eventually(logged, timeout=20, interval=0.25)
    assert sorted(e["actionId"] for e in scores) == sorted(acks)
    assert sum(e["args"]["points"] for e in scores) == sum(points)
    assert "state" in await page.eval("pushes")
    await page.eval("c.close(), c.status")


async def test_errors_are_typed_and_rejections_reach_applied(page: Page) -> None:
    owner, intruder = name("jsown"), name("jsintr")
    result = await page.eval(
        f"""(async () => {{
        const a = new sdk.GameClient(WS, {{ token: {json.dumps(token_for(owner))} }});
        const b = new sdk.GameClient(WS, {{ token: {json.dumps(token_for(intruder))} }});
        await a.connect(); await b.connect();
        const mid = (await a.join("practice")).matchId;
        const out = {{}};
        try {{ await b.score(100, {{ matchId: mid }}); }} catch (e) {{
          out.intruder = [e.constructor.name, e.code, e.is("forbidden"), e.is("conflict"),
                          e instanceof sdk.ServerError];
        }}
        await a.applied((await a.score(100)).id);  // wins the practice match
        const late = await a.score(1);              // acknowledged, then refused by the processor
        try {{ await a.applied(late.id); }} catch (e) {{
          out.late = [e.constructor.name, e.code, e.is("conflict"), e instanceof sdk.ServerError];
        }}
        try {{ await a.leaderboard("Chess"); }} catch (e) {{ out.invalid = [e.code, e.is("bad_request")]; }}
        try {{ await a.leaderboard("chess"); }} catch (e) {{ out.unknown = [e.code, e.is("bad_request")]; }}
        out.winner = a.state.winner === {json.dumps(owner)};
        a.close(); b.close();
        try {{ await a.ping(); }} catch (e) {{ out.closed = e.constructor.name; }}
        return out;
        }})()"""
    )
    assert result == {
        "intruder": ["ServerError", "not_in_match", True, False, True],
        "late": ["ActionRejected", "match_not_running", True, True],
        "invalid": ["invalid_message", True],  # not a board name
        "unknown": ["not_found", False],  # a board name, of no board the server has
        "winner": True,
        "closed": "ConnectionLost",
    }


async def test_auth_failures_are_never_retried(stack: LocalRuntime, page: Page) -> None:
    assert stack.gateway is not None
    player = name("jsauth")
    refused = stack.gateway.stats["refused"]
    expired = token_for(player, now=time.time() - 3600, ttl=60)
    forged = token_for(player, secret="not-the-secret-of-this-stack-at-all-0123456789")
    result = await page.eval(
        f"""(async () => {{
        const out = {{}};
        const expired = new sdk.GameClient(WS, {{ token: {json.dumps(expired)} }});
        try {{ await expired.connect(); }} catch (e) {{
          out.expired = [e.constructor.name, e.status, expired.connects];
        }}
        // A refused upgrade is code 1006 to a browser: the first attempt is never retried, whatever it was.
        const forged = new sdk.GameClient(WS, {{ token: {json.dumps(forged)} }});
        try {{ await forged.connect(); }} catch (e) {{ out.forged = [e.constructor.name, forged.status]; }}
        // A good token first, then an expired one for the reconnection: the client stops, and says why.
        const tokens = [{json.dumps(token_for(player))}, {json.dumps(expired)}];
        const c = window.c = new sdk.GameClient(WS, {{ token: () => tokens.shift(), backoffBase: 10 }});
        await c.connect();
        await c.join("practice");
        window.closedWith = new Promise((resolve) => {{
          c.on("close", (e) => resolve([e.constructor.name, e.status]));
        }});
        return out;
        }})()"""
    )
    assert result == {"expired": ["AuthError", 401, 0], "forged": ["ConnectionLost", "closed"]}
    await asyncio.sleep(0.3)
    assert stack.gateway.stats["refused"] == refused + 1  # the forged token's only attempt
    (conn_id,) = connection_ids(stack, player)
    await asyncio.to_thread(delete_connection, stack, conn_id)
    assert await page.eval("closedWith") == ["AuthError", 401]
    assert await page.eval("c.ping().then(() => 'answered', (e) => e.constructor.name)") == "AuthError"
    await asyncio.sleep(0.3)
    assert stack.gateway.stats["refused"] == refused + 1, "an expired token was sent to the gateway"


async def test_gateway_frames_and_unknown_pushes_are_events(stack: LocalRuntime, page: Page) -> None:
    player = name("jsgw")
    await page.eval(
        f"""(async () => {{
        const c = window.c = new sdk.GameClient(WS, {{ token: {json.dumps(token_for(player))} }});
        window.got = {{ gateway: [], away: [], push: [], notice: [] }};
        c.on("gatewaymessage", (f) => got.gateway.push(f.message));
        c.on("away", (f) => got.away.push(f.playerId));   // a frame type this SDK does not know
        c.on("push", (f) => got.push.push(f.type));
        c.on("notice", (f) => got.notice.push(f.message));
        await c.connect();
        return true;
        }})()"""
    )
    (conn_id,) = connection_ids(stack, player)
    mgmt = management_api(stack)
    frames = [
        {"message": "Internal server error", "connectionId": conn_id, "requestId": "r-1"},
        {"type": "away", "playerId": "bob", "matchId": "m-" + "0" * 32},
        {"type": "notice", "message": "maintenance in 10 minutes"},
        "not json at all",
    ]
    for frame in frames:
        data = frame if isinstance(frame, str) else json.dumps(frame)
        await asyncio.to_thread(mgmt.post_to_connection, ConnectionId=conn_id, Data=data.encode())
    await page.wait("got.notice.length === 1")
    assert await page.eval("got") == {
        "gateway": ["Internal server error"],
        "away": ["bob"],
        "push": ["away", "notice"],
        "notice": ["maintenance in 10 minutes"],
    }
    # None of it was taken for an answer: the client still works.
    assert await page.eval("c.ping().then((p) => [p.type, p.protocol])") == ["pong", PROTOCOL_VERSION]
    assert await page.eval("[c.gatewayMessages, sdk.PROTOCOL_VERSION]") == [1, PROTOCOL_VERSION]
    await page.eval("c.close(), true")


async def test_the_example_in_docs_clients_md_works(page: Page) -> None:
    doc = (ROOT / "docs" / "clients.md").read_text()
    code = re.search(r"<!-- js-sdk-example -->\n```js\n(.*?)```", doc, re.S)
    shown = re.search(r"It logs, the first time `alice` plays:\n\n```\n(.*?)```", doc, re.S)
    assert code and shown, "docs/clients.md lost its JavaScript example or its output"
    assert len(code.group(1).strip().splitlines()) <= 12
    player = name("alice")
    await page.eval(f"window.url = WS; window.token = {json.dumps(token_for(player))}; true")
    # As a page would run it: a module script.
    script = json.dumps(code.group(1) + "\nwindow.exampleDone = true;\n")
    await page.eval(
        f"(() => {{ const s = document.createElement('script'); s.type = 'module'; s.textContent = {script};"
        " document.head.append(s); return true; })()"
    )
    await page.wait("window.exampleDone === true", timeout=30)
    logged = [line.replace(player, "alice") for line in await page.eval("out")]
    expected = shown.group(1).splitlines()
    # States and ranks interleave with the loop's lines as they arrive: compare the loop's own lines,
    # and check that each kind of event was logged.
    own = [line for line in logged if "points, the match is" in line]
    assert own == [line for line in expected if "points, the match is" in line]
    assert any(line.startswith("state v") for line in logged), logged
