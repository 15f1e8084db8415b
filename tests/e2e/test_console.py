"""The live-ops console (clients/console, served at /console/) in a real, headless Chromium, against the
local stack under bot load: each view is checked against the admin API's own answers, the irreversible
actions against their confirmations, and the screenshots of the docs are taken here.

Chromium is driven as in test_browser.py. The live view is compared with the very `/admin/stats` answers
the page received (read back over the DevTools Protocol's Network domain), since under load a second call
would see other numbers; the other views are compared after the bots have stopped, with calls of the test's
own.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from backend.game.boards import configured
from backend.store.leaderboards import LeaderboardStore
from clients.bots import BotConfig, local_tokens, run_bots
from local.runtime import LocalRuntime
from tests.conftest import token_for
from tests.e2e.conftest import eventually
from tests.e2e.test_admin import call
from tests.e2e.test_bots import warm_up
from tests.e2e.test_browser import Page as Tab
from tests.e2e.test_browser import _http, chromium, chromium_executable
from tests.e2e.test_game import join, name
from tests.leaderboard_fill import fill

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
DOCS_IMG = ROOT / "docs" / "img"
ADMIN = token_for("ops-console", admin=True)


async def test_the_console_is_served_as_static_files(stack: LocalRuntime) -> None:
    # Its links are relative, so that it works under any path of any static host: /console redirects.
    status, _, _ = await asyncio.to_thread(_http, f"{stack.http_url}/console/")
    assert status == 200
    for asset, kind in (("console.js", "javascript"), ("chart.js", "javascript"), ("style.css", "text/css")):
        status, content_type, body = await asyncio.to_thread(_http, f"{stack.http_url}/console/{asset}")
        assert status == 200 and kind in content_type and body, asset
    html = (ROOT / "clients" / "console" / "index.html").read_text()
    assert 'src="console.js"' in html and 'href="style.css"' in html and "/admin" not in html
    status, _, body = await asyncio.to_thread(_http, f"{stack.http_url}/console/nothing.js")
    assert status == 404


# --- helpers -------------------------------------------------------------------------------------------


async def text(tab: Tab, selector: str) -> str:
    return str(await tab.eval(f"document.querySelector({json.dumps(selector)}).textContent"))


async def rows(tab: Tab, table: str, *fields: str) -> list[list[str]]:
    """The data of each row of a table (or item of a list), as the console wrote it on the row."""
    items = f"#{table} > li" if table == "timeline" else f"#{table} tbody tr"
    found: list[list[str]] = await tab.eval(
        f"[...document.querySelectorAll('{items}')]"
        f".map(r => {json.dumps(list(fields))}.map(f => r.dataset[f]))"
    )
    return found


async def show(tab: Tab, hash_: str, ready: str) -> None:
    """Navigates the console to a view (as a link would) and waits until it has drawn it."""
    await tab.eval(f"location.hash = {json.dumps(hash_)}; true")
    await tab.wait(f"document.querySelector('.view')?.dataset.ready === 'true' && ({ready})")


async def submit(tab: Tab, form: str, values: dict[str, str]) -> None:
    script = (
        "".join(f"document.querySelector('#{k}').value = {json.dumps(v)};" for k, v in values.items())
        + f"document.querySelector('#{form}').requestSubmit(); true"
    )
    await tab.eval(script)


async def press(tab: Tab, selector: str, key: str = "Enter") -> None:
    """The keyboard way: focus the control, press the key."""
    await tab.eval(f"document.querySelector({json.dumps(selector)}).focus(); true")
    await tab.key(key)


async def confirm(tab: Tab, button: str, *, accept: bool) -> str:
    """Presses an irreversible action's button, and answers its confirmation with the keyboard (Enter on
    the confirm button, or Escape); returns what the dialog said."""
    await press(tab, button)
    await tab.wait("document.querySelector('#confirm').open")
    said = await text(tab, "#confirm-text")
    if accept:
        await press(tab, "#confirm-ok")
    else:
        await tab.key("Escape")
    await tab.wait("!document.querySelector('#confirm').open")
    return said


async def screenshot(tab: Tab, name: str) -> None:
    shot = base64.b64decode((await tab.send("Page.captureScreenshot", format="png"))["data"])
    assert shot.startswith(b"\x89PNG")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / name).write_bytes(shot)
    # The pictures in the docs are refreshed on demand only, so that `make test` leaves the tree clean.
    target = DOCS_IMG / name
    if not target.exists() or os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(shot)


async def stats_answers(tab: Tab) -> list[dict[str, Any]]:
    """Every /admin/stats answer the page has received in full, oldest first, as the API sent it."""
    urls = {
        m["params"]["requestId"]: m["params"]["response"]["url"]
        for m in tab.network
        if m["method"] == "Network.responseReceived"
    }
    done = [
        m["params"]["requestId"]
        for m in tab.network
        if m["method"] == "Network.loadingFinished"
        and urls.get(m["params"]["requestId"], "").endswith("/admin/stats")
    ]
    bodies = []
    for request_id in done:
        body = await tab.send("Network.getResponseBody", requestId=request_id)
        bodies.append(json.loads(body["body"]))
    return bodies


LIVE = {  # card id -> the field of /admin/stats it shows (actions: per second)
    "connections": "connections",
    "waiting": "waitingMatches",
    "running": "runningMatches",
    "actions": "actionsLastMinute",
    "iterator-age": "streamLagMs",
    "projector-iterator-age": "projectorLagMs",
    "dlq-depth": "deadLetters",
    "projector-dlq-depth": "projectorDeadLetters",
}


# --- the test ----------------------------------------------------------------------------------------------


async def test_every_view_against_the_admin_api_under_bot_load(
    stack: LocalRuntime, tmp_path: Path, connect_player: Any
) -> None:
    executable = await asyncio.to_thread(chromium_executable)
    await warm_up(stack)  # the bots' seconds are for playing, not for cold starts
    config = BotConfig(
        url=stack.ws_url,
        players=4,
        mode="duel",
        duration=25.0,
        tokens=local_tokens(ROOT / "serverless.yml"),
        interval=0.05,
        grace=5.0,
        seed=19,
    )
    bots = asyncio.create_task(run_bots(config))
    async with chromium(executable, tmp_path / "profile") as tab:
        await tab.send("Network.enable")
        await tab.send("Page.navigate", url=f"{stack.http_url}/console?every=1000")
        await tab.wait("document.activeElement && document.activeElement.id === 'token'")

        # --- sign in: a player's token is refused in the API's own words, an admin's is taken
        player_token = token_for("not-an-admin")
        await tab.send("Input.insertText", text=player_token)
        await tab.key("Tab")  # to the Sign in button
        await tab.key("Enter")
        await tab.wait("!document.querySelector('#error').hidden")
        status, body = await call(stack, "GET", "/admin/stats", token=player_token)
        assert status == 403
        assert await text(tab, "#error") == f"Error: 403 forbidden: {body['error']['message']}"
        await tab.eval(
            "document.querySelector('#token').value = ''; document.querySelector('#token').focus()"
        )
        await tab.send("Input.insertText", text=ADMIN)
        await tab.key("Tab")
        await tab.key("Enter")

        # --- live: under load, each card shows the last answer the page got, and charts its history
        await tab.wait(
            "Number(document.querySelector('#actions')?.dataset.points) >= 10"
            " && Number(document.querySelector('#actions .value').dataset.value) > 0"
            " && Number(document.querySelector('#running .value').dataset.value) > 0"
            " && Number(document.querySelector('#connections .value').dataset.value) > 0",
            timeout=40,
        )
        await press(tab, "#pause")
        await tab.wait("consoleState.busy === 0 && consoleState.paused")
        assert await tab.eval("document.querySelector('#pause').getAttribute('aria-pressed')") == "true"
        # The first admin answer was the sign-in's check of the token; the live view drew each one after it.
        answers = [a for a in await stats_answers(tab) if "error" not in a][1:]
        last = answers[-1]
        assert await tab.eval("consoleState.lastStats") == last
        assert int(await tab.eval("document.querySelector('#live').dataset.refreshes")) == len(answers)
        for card, field in LIVE.items():
            shown = await tab.eval(f"document.querySelector('#{card} .value').dataset.value")
            expected = last[field]
            if expected is None:
                assert shown == "", card
            else:
                assert float(shown) == pytest.approx(expected / 60 if card == "actions" else expected), card
            # The chart holds every answer so far, and says the newest one in words.
            assert int(await tab.eval(f"document.querySelector('#{card}').dataset.points")) == len(answers)
        label = await tab.eval("document.querySelector('#connections svg').getAttribute('aria-label')")
        assert f"now {last['connections']}" in label
        states = await tab.eval("[...document.querySelectorAll('.card .state')].map(s => s.textContent)")
        assert {s.split(":")[0] for s in states if s} <= {"OK", "ALARM"}  # said in words, not in colour
        await screenshot(tab, "console-live.png")
        # The runbook's links go straight to a card.
        await show(tab, "#/live/iterator-age", "document.activeElement.id === 'iterator-age'")
        assert "Stream iterator age" in await text(tab, "#iterator-age h3")

        report = await bots
        assert report.lost == 0 and not report.failures, report.failures
        ddb = boto3.client("dynamodb", endpoint_url=stack.dynamodb_endpoint, region_name="us-east-1")

        # --- leaderboards: pages both ways, a player found, a cheater removed with its audit entry
        # The boards are stable once the projector has taken in every point the bots scored.
        totals: dict[str, int] = {}
        for match_id in report.joined:
            detail = (await call(stack, "GET", f"/admin/matches/{match_id}"))[1]
            for player, state in detail["players"].items():
                totals[player] = totals.get(player, 0) + state["score"]
        scorers = {p: t for p, t in totals.items() if t > 0}
        assert len(scorers) >= 3, f"the bots should fill more than one page of 2: {totals} {report}"

        async def settled() -> bool:
            for player, total in scorers.items():
                status, standing = await call(stack, "GET", f"/admin/leaderboards/duel/players/{player}")
                if status != 200 or standing["score"] != total:
                    return False
            return True

        await eventually(settled, timeout=30, interval=0.25)
        page1 = (await call(stack, "GET", "/admin/leaderboards/duel?limit=2"))[1]
        page2 = (await call(stack, "GET", f"/admin/leaderboards/duel?limit=2&cursor={page1['nextCursor']}"))[
            1
        ]

        def as_rows(page: dict[str, Any]) -> list[list[str]]:
            return [[str(e["rank"]), e["playerId"], str(e["score"])] for e in page["entries"]]

        await show(tab, "#/leaderboards", "!!document.querySelector('#board-table')")
        await submit(tab, "board-form", {"lb-board": "duel", "lb-limit": "2"})
        await tab.wait("document.querySelector('#board-table caption').textContent.startsWith('duel')")
        assert await rows(tab, "board-table", "rank", "player", "score") == as_rows(page1)
        await press(tab, "#board-results .next")
        await tab.wait("document.querySelector('.page-number').textContent === 'page 2'")
        assert await rows(tab, "board-table", "rank", "player", "score") == as_rows(page2)
        await press(tab, "#board-results .prev")
        await tab.wait("document.querySelector('.page-number').textContent === 'page 1'")
        assert await rows(tab, "board-table", "rank", "player", "score") == as_rows(page1)

        bot = page2["entries"][0]["playerId"]
        await submit(tab, "search-form", {"lb-player": bot})
        await tab.wait("!!document.querySelector('#standing-table')")
        standing = (await call(stack, "GET", f"/admin/leaderboards/duel/players/{bot}"))[1]
        assert await rows(tab, "standing-table", "rank", "player", "score") == [
            [str(e["rank"]), e["playerId"], str(e["score"])] for e in standing["neighbours"]
        ]
        nobody = name("nobody")
        await submit(tab, "search-form", {"lb-player": nobody})
        await tab.wait("!document.querySelector('#error').hidden")
        status, body = await call(stack, "GET", f"/admin/leaderboards/duel/players/{nobody}")
        assert status == 404
        assert await text(tab, "#error") == f"Error: 404 not_found: {body['error']['message']}"

        cheater = name("cheat")
        season = page1["season"]
        key = configured()["duel"].key("alltime", datetime.now(UTC), season)
        store = LeaderboardStore(ddb, "gamebackend-local-leaderboards")
        await asyncio.to_thread(fill, store, configured()["duel"], key, {cheater: 99_999})
        await submit(tab, "board-form", {"lb-board": "duel", "lb-limit": "2"})
        await tab.wait(f"document.querySelector('#board-table tbody tr')?.dataset.player === '{cheater}'")
        remove = f"#board-table button[data-remove='{cheater}']"
        said = await confirm(tab, remove, accept=False)  # Escape: nothing happens
        assert cheater in said
        assert (await call(stack, "GET", f"/admin/leaderboards/duel/players/{cheater}"))[0] == 200
        await confirm(tab, remove, accept=True)
        await tab.wait("!!document.querySelector('#removal-audit')")
        assert (await call(stack, "GET", f"/admin/leaderboards/duel/players/{cheater}"))[0] == 404
        newest = (await call(stack, "GET", "/admin/audit?limit=1"))[1]["entries"][0]
        assert newest["action"] == "leaderboard.remove" and newest["details"]["playerId"] == cheater
        assert await tab.eval("document.querySelector('#removal-audit').dataset.at") == str(newest["at"])
        assert json.dumps(newest["details"], separators=(",", ":")) in await text(tab, "#removal-audit")
        await tab.wait(f"document.querySelector('#board-table tbody tr')?.dataset.player !== '{cheater}'")
        await screenshot(tab, "console-leaderboards.png")

        # --- matches: the list by status, one match with its players and its event log
        listed = (await call(stack, "GET", "/admin/matches?status=finished&mode=duel&limit=5"))[1]
        await show(tab, "#/matches", "!!document.querySelector('#matches-table')")
        await submit(tab, "matches-form", {"m-status": "finished", "m-mode": "duel", "m-limit": "5"})
        await tab.wait("document.querySelector('#matches-table caption').textContent === 'Matches finished'")
        assert await rows(tab, "matches-table", "matchId", "status") == [
            [m["matchId"], m["status"]] for m in listed["matches"]
        ]
        played = listed["matches"][0]["matchId"]
        await press(tab, f"#matches-table a[href='#/matches/{played}']")  # Enter follows the link
        await tab.wait("!!document.querySelector('#timeline')")
        detail = (await call(stack, "GET", f"/admin/matches/{played}"))[1]
        assert await rows(tab, "match-players", "player", "score", "x", "y") == [
            [p, str(s["score"]), str(s["x"]), str(s["y"])] for p, s in detail["players"].items()
        ]
        events, cursor = [], ""
        while True:
            page = (await call(stack, "GET", f"/admin/matches/{played}/events?limit=100{cursor}"))[1]
            events += page["events"]
            if not page["nextCursor"]:
                break
            cursor = f"&cursor={page['nextCursor']}"
        assert await rows(tab, "timeline", "version", "type", "player") == [
            [str(e["version"]), e.get("kind") or e["type"], e["playerId"]] for e in events
        ]
        assert await tab.eval("document.querySelector('#end-match').disabled") is True  # finished already
        await screenshot(tab, "console-match.png")

        # A stuck match: one player alone in an arena, waiting for seven more. The console ends it.
        stuck = await connect_player(name("stuck"))
        mid = (await join(stuck, "arena"))["matchId"]
        await show(tab, f"#/matches/{mid}", "!!document.querySelector('#match-summary')")
        assert await tab.eval("document.querySelector('#match-summary').dataset.status") == "waiting"
        said = await confirm(tab, "#end-match", accept=True)
        assert mid in said
        await tab.wait("!!document.querySelector('#end-result').dataset.eventId")
        end_event = await tab.eval("document.querySelector('#end-result').dataset.eventId")
        await stuck.wait_for(lambda f: f.get("type") == "state" and f.get("status") == "finished", 20)
        audit = (await call(stack, "GET", "/admin/audit?limit=1"))[1]["entries"][0]
        assert audit["details"] == {"matchId": mid, "eventId": end_event}
        await press(tab, "#refresh-match")
        await tab.wait("document.querySelector('#match-summary')?.dataset.status === 'finished'")
        assert (await call(stack, "GET", f"/admin/matches/{mid}"))[1]["status"] == "finished"

        # --- players and connections: a notice, then a kick (refused once, then confirmed)
        await show(tab, "#/players", "!!document.querySelector('#conn-table')")
        await submit(tab, "conn-form", {"c-player": stuck.player, "c-match": ""})
        await tab.wait(f"document.querySelector('#conn-table tbody tr')?.dataset.player === '{stuck.player}'")
        of_stuck = f"/admin/connections?playerId={stuck.player}"
        connections = (await call(stack, "GET", of_stuck))[1]["connections"]
        assert await rows(tab, "conn-table", "connectionId", "player") == [
            [c["connectionId"], c["playerId"]] for c in connections
        ]
        (connection,) = connections
        notice = f"maintenance soon {uuid.uuid4().hex[:4]}"
        await tab.eval(f"document.querySelector('#b-message').value = {json.dumps(notice)};")
        await tab.eval(f"document.querySelector('#b-match').value = {json.dumps(mid)}; true")
        await press(tab, "#broadcast-form button[type=submit]")
        await tab.wait("document.querySelector('#confirm').open")
        assert notice in await text(tab, "#confirm-text")
        await press(tab, "#confirm-ok")
        await tab.wait("!!document.querySelector('#broadcast-result').dataset.sent")
        assert await tab.eval("document.querySelector('#broadcast-result').dataset.sent") == "1"
        assert (await stuck.wait_for(lambda f: f.get("type") == "notice", 10))["message"] == notice

        kick = f"#conn-table button[data-kick='{connection['connectionId']}']"
        await confirm(tab, kick, accept=False)
        assert (await call(stack, "GET", of_stuck))[1]["connections"]
        await confirm(tab, kick, accept=True)
        await tab.wait(f"document.querySelector('#status').textContent.startsWith('Kicked {stuck.player}')")
        await asyncio.wait_for(stuck.ws.wait_closed(), 20)

        async def gone() -> bool:
            return not (await call(stack, "GET", of_stuck))[1]["connections"]

        await eventually(gone)

        # --- the audit log: the console's own actions, newest first, as the API lists them
        await show(tab, "#/audit", "!!document.querySelector('#audit-table')")
        listed_audit = (await call(stack, "GET", "/admin/audit?limit=25"))[1]["entries"]
        assert await rows(tab, "audit-table", "action", "at") == [
            [a["action"], str(a["at"])] for a in listed_audit
        ]
        assert [a["action"] for a in listed_audit[:3]] == ["connection.kick", "broadcast", "match.end"]
        assert all(a["actor"] == "ops-console" for a in listed_audit[:4])

        # Every view is reachable from the keyboard: the navigation's links, in order.
        await tab.eval("document.activeElement.blur(); document.querySelector('.skip').focus(); true")
        reached = []
        for _ in range(5):
            await tab.key("Tab")
            reached.append(await tab.eval("document.activeElement.dataset.view || document.activeElement.id"))
        assert reached == ["live", "leaderboards", "matches", "players", "audit"]
        assert not tab.errors, tab.errors


def test_the_runbook_links_each_alarm_to_the_card_of_its_metric() -> None:
    runbook = (ROOT / "docs" / "operations.md").read_text()
    script = (ROOT / "clients" / "console" / "console.js").read_text()
    cards = set(re.findall(r'^\s+id: "([a-z-]+)",$', script, re.M))
    assert {"iterator-age", "dlq-depth", "projector-iterator-age", "projector-dlq-depth"} <= cards
    alarms = re.split(r'\n<a id="', runbook.split("## Alarms", 1)[1].split("\n## ", 1)[0])[1:]
    assert len(alarms) == 10
    for entry in alarms:
        anchor = entry.split('"', 1)[0]
        line = next((ln for ln in entry.splitlines() if ln.startswith("Console:")), None)
        assert line is not None, f"the runbook's {anchor} entry says nothing of the console"
        linked = re.findall(r"#/live/([a-z-]+)", entry.split("\n\n", 2)[1])
        # An alarm whose metric has a card links to that very card (named as the runbook's anchor).
        assert linked == ([anchor] * 2 if anchor in cards else linked), (anchor, linked)
        assert set(linked) <= cards, anchor
