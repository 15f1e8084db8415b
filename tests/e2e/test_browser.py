"""The browser client (clients/web, served at /play) in a real, headless Chromium.

Chromium is Debian's (`apt-get install chromium`, done here when missing and possible, and by .ci/run),
driven over the Chrome DevTools Protocol with the `websockets` library: no WebDriver, no Playwright
browser download. The match is played with the keyboard only, with the socket dropped halfway, and the
leaderboard the page shows is compared with the backend's (WebSocket API and admin API).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from gamebackend_client import GameClient
from gamebackend_client.protocol import Joined
from local.runtime import LocalRuntime
from tests.conftest import token_for
from tests.e2e.conftest import management_api

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
README_IMAGE = ROOT / "docs" / "img" / "play.png"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
]


# --- the page's own endpoints (no browser needed) ---------------------------------------------------


def _http(
    url: str, data: bytes | None = None, method: str = "GET", token: str | None = None
) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, data=data, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return int(r.status), r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return int(e.code), e.headers.get("Content-Type", ""), e.read()


async def test_the_page_and_its_assets_are_served(stack: LocalRuntime) -> None:
    for path, kind in [
        ("/play", "text/html"),
        ("/play/app.js", "javascript"),
        ("/play/style.css", "text/css"),
    ]:
        status, content_type, body = await asyncio.to_thread(_http, stack.http_url + path)
        assert status == 200 and kind in content_type and body, path
    status, _, _ = await asyncio.to_thread(_http, stack.http_url + "/play/nothing.js")
    assert status == 404


async def test_the_dev_token_endpoint_mints_tokens_the_gateway_accepts(stack: LocalRuntime) -> None:
    player = f"dev-{uuid.uuid4().hex[:6]}"
    body = json.dumps({"player": player}).encode()
    status, _, raw = await asyncio.to_thread(_http, stack.http_url + "/local/token", body, "POST")
    assert status == 200
    token = json.loads(raw)["token"]
    async with GameClient(stack.ws_url, token) as client:
        assert (await client.join("practice")).players == [player]
    bad = json.dumps({"player": "no spaces allowed"}).encode()
    assert (await asyncio.to_thread(_http, stack.http_url + "/local/token", bad, "POST"))[0] == 400
    assert (await asyncio.to_thread(_http, stack.http_url + "/local/token"))[0] == 405


# --- Chromium over the DevTools Protocol ------------------------------------------------------------


def chromium_executable() -> str:
    """Debian's chromium; installed with apt-get when missing (root only), else the test is skipped."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("chromium is not installed and cannot be installed here (needs root and apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True, timeout=300, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium"],
            check=True,
            capture_output=True,
            timeout=900,
            env=env,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        pytest.skip(f"chromium could not be installed with apt-get: {exc} {detail.decode()[-300:]}")
    found = shutil.which("chromium")
    if not found:
        pytest.skip("apt-get installed chromium but no `chromium` is on PATH")
    return found


KEYS: dict[str, tuple[str, int, str]] = {  # key -> (code, windowsVirtualKeyCode, text)
    "Enter": ("Enter", 13, "\r"),
    "Tab": ("Tab", 9, ""),
    "ArrowLeft": ("ArrowLeft", 37, ""),
    "ArrowUp": ("ArrowUp", 38, ""),
    "ArrowRight": ("ArrowRight", 39, ""),
    "ArrowDown": ("ArrowDown", 40, ""),
    "-": ("Minus", 189, "-"),
    "Escape": ("Escape", 27, ""),
}


class Page:
    """One tab, over its DevTools WebSocket."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.errors: list[str] = []  # uncaught exceptions and console errors of the page
        self.network: list[dict[str, Any]] = []  # Network.* events, once `Network.enable` was sent
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            if "id" in message:
                future = self.waiting.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result(message)
            elif message.get("method") == "Runtime.exceptionThrown":
                self.errors.append(json.dumps(message["params"]["exceptionDetails"])[:500])
            elif message.get("method") == "Runtime.consoleAPICalled" and message["params"]["type"] == "error":
                self.errors.append(json.dumps(message["params"]["args"])[:500])
            elif str(message.get("method", "")).startswith("Network."):
                self.network.append(message)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[call_id] = future
        await self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        answer = await asyncio.wait_for(future, 30)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer["result"]
        return result

    async def eval(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait(self, expression: str, timeout: float = 20.0) -> Any:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    value = await self.eval(expression)
                    if value:
                        return value
                    await asyncio.sleep(0.05)
        except TimeoutError:
            seen = await self.eval(
                "[document.querySelector('#players')?.outerHTML, document.querySelector('#log')?.innerText]"
            )
            raise AssertionError(f"never true: {expression}\npage: {seen}\nerrors: {self.errors}") from None

    async def key(self, key: str) -> None:
        """A real key press: keyDown (with its text, so it types) then keyUp."""
        if key in KEYS:
            code, vk, text = KEYS[key]
        else:  # a letter or a digit
            code = f"Digit{key}" if key.isdigit() else f"Key{key.upper()}"
            vk, text = ord(key.upper()), key
        down: dict[str, Any] = {"type": "keyDown", "key": key, "code": code, "windowsVirtualKeyCode": vk}
        if text:
            down["text"] = text
        await self.send("Input.dispatchKeyEvent", **down)
        await self.send("Input.dispatchKeyEvent", type="keyUp", key=key, code=code, windowsVirtualKeyCode=vk)

    async def type(self, text: str) -> None:
        for ch in text:
            await self.key(ch)

    async def focused(self) -> str:
        return str(await self.eval("document.activeElement && document.activeElement.id"))

    async def close(self) -> None:
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.reader
        await self.ws.close()


@contextlib.asynccontextmanager
async def chromium(executable: str, profile: Path) -> AsyncIterator[Page]:
    await asyncio.to_thread(profile.mkdir, parents=True, exist_ok=True)
    log = await asyncio.to_thread((profile.parent / "chromium.log").open, "wb")
    proc = await asyncio.create_subprocess_exec(
        executable,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
        "about:blank",
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    page: Page | None = None
    try:
        port_file = profile / "DevToolsActivePort"
        async with asyncio.timeout(30):
            while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
                if proc.returncode is not None:
                    raise RuntimeError(f"chromium exited with {proc.returncode}; see {log.name}")
                await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = json.loads((await asyncio.to_thread(_http, f"http://127.0.0.1:{port}/json/list"))[2])
        target = next(t for t in targets if t["type"] == "page")
        page = Page(await connect(target["webSocketDebuggerUrl"], max_size=None))
        await page.send("Page.enable")
        await page.send("Runtime.enable")
        await page.send(
            "Emulation.setDeviceMetricsOverride", width=1280, height=860, deviceScaleFactor=1, mobile=False
        )
        yield page
    finally:
        if page is not None:
            await page.close()
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()


# --- the test ---------------------------------------------------------------------------------------


def connection_ids(stack: LocalRuntime, player: str) -> list[str]:
    assert stack.gateway is not None
    return [
        c.connection_id for c in stack.gateway.connections.values() if c.authorizer.get("playerId") == player
    ]


def delete_connection(stack: LocalRuntime, connection_id: str) -> int:
    answer = management_api(stack).delete_connection(ConnectionId=connection_id)
    return int(answer["ResponseMetadata"]["HTTPStatusCode"])


MY_ROW = "document.querySelector('#players tr[data-player=\"{player}\"]')"
STATUS = "document.querySelector('#status').textContent"
BOARD_ROWS = (
    "[...document.querySelectorAll('#leaderboard tbody tr')]"
    ".map(r => [Number(r.dataset.rank), r.dataset.player, Number(r.dataset.score)])"
)


async def test_play_a_practice_match_with_the_keyboard_in_chromium(
    stack: LocalRuntime, tmp_path: Path
) -> None:
    executable = await asyncio.to_thread(chromium_executable)
    player = f"web-{uuid.uuid4().hex[:6]}"
    row = MY_ROW.format(player=player)
    async with chromium(executable, tmp_path / "profile") as page:
        await page.send("Page.navigate", url=f"{stack.http_url}/play?ws={stack.ws_url}")
        await page.wait("document.readyState === 'complete' && !!document.querySelector('#player')")
        region = "document.querySelector('#status')"
        live = await page.eval(f"{region}.getAttribute('role') + '/' + {region}.getAttribute('aria-live')")
        assert live == "status/polite"

        # Keyboard only: the name field has the focus; Tab reaches the mode, then the Join button.
        assert await page.focused() == "player"
        await page.type(player)
        await page.key("Tab")
        assert await page.focused() == "mode"  # practice is the default
        await page.key("Tab")
        assert await page.focused() == "join"
        await page.key("Enter")
        await page.wait("document.querySelector('#match-info').dataset.status === 'running'")
        assert "Joined a practice match" in await page.eval("document.querySelector('#log').textContent")
        assert "running" in await page.eval(STATUS)  # said in words, too
        assert await page.focused() == "field"  # the playing field takes the focus

        await page.wait(f"{row} && {row}.dataset.x === '0' && {row}.dataset.y === '0'")  # where one starts
        await page.key("ArrowRight")
        await page.key("ArrowDown")
        await page.key("ArrowRight")
        await page.wait(f"{row}.dataset.x === '100' && {row}.dataset.y === '50'")
        await page.key("3")
        await page.key("3")
        await page.wait(f"{row}.dataset.score === '50'")
        assert "Your score: 50 of 100" in await page.eval(STATUS)

        # The socket drops mid-match (the backend kicks the connection); the player keeps playing.
        (first,) = connection_ids(stack, player)
        assert await asyncio.to_thread(delete_connection, stack, first) == 204
        await page.key("3")  # sent while reconnecting: queued, then sent on the new socket
        # The log, not the status line: the queued action's score can replace the status in the same
        # tick as "Reconnected" is said, and a poll may miss the short-lived text.
        await page.wait("document.querySelector('#log').textContent.includes('Reconnected')")
        assert await page.eval("document.querySelector('#connection').dataset.state") == "online"
        assert connection_ids(stack, player) not in ([], [first])
        await page.wait(f"{row}.dataset.score === '75'")
        await page.key("3")
        await page.wait("document.querySelector('#match-info').dataset.status === 'finished'")
        assert await page.eval(f"{row}.dataset.score") == "100", "an action was lost or counted twice"
        assert "you win with 100 points" in await page.eval(STATUS)

        # The leaderboard on the page is the backend's: as a player sees it over the WebSocket API, and
        # as the admin API serves it.
        await page.wait(f"{BOARD_ROWS}.some(r => r[1] === '{player}' && r[2] === 100)")
        assert await page.eval("document.querySelector('#leaderboard').dataset.board") == "practice"
        admin_url = f"{stack.http_url}/admin/leaderboards/practice?period=alltime&limit=10"
        admin = token_for("ops", admin=True)
        async with GameClient(stack.ws_url, token_for(f"referee-{uuid.uuid4().hex[:6]}")) as referee:
            for _ in range(50):
                over_ws = [
                    [e.rank, e.playerId, e.score] for e in (await referee.leaderboard("practice")).entries
                ]
                status, _, body = await asyncio.to_thread(_http, admin_url, None, "GET", admin)
                assert status == 200, body
                over_admin = [[e["rank"], e["playerId"], e["score"]] for e in json.loads(body)["entries"]]
                shown = await page.eval(BOARD_ROWS)
                if shown == over_ws == over_admin:
                    break
                await page.key("b")  # refresh, and look again
                await asyncio.sleep(0.2)
            assert shown == over_ws == over_admin

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = base64.b64decode((await page.send("Page.captureScreenshot", format="png"))["data"])
        assert shot.startswith(b"\x89PNG")
        (ARTIFACTS / "play.png").write_bytes(shot)
        # The picture in the docs is refreshed on demand only, so that `make test` leaves the tree clean.
        if not README_IMAGE.exists() or os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
            README_IMAGE.parent.mkdir(parents=True, exist_ok=True)
            README_IMAGE.write_bytes(shot)
        assert not page.errors, page.errors


async def rival_waiting(stack: LocalRuntime, rival: str, mode: str) -> tuple[GameClient, Joined]:
    """A rival, over the Python SDK, alone in a new waiting match of `mode`: a waiting match another test
    left would pair them with a stranger, so it is left and looked for again."""
    opponent = GameClient(stack.ws_url, token_for(rival), heartbeat_interval=None)
    await opponent.connect()
    joined = await opponent.join(mode)
    while joined.status != "waiting":
        await opponent.leave()
        joined = await opponent.join(mode)
    return opponent, joined


async def join_the_rival(page: Page, stack: LocalRuntime, player: str, joined: Joined) -> None:
    """Opens /play for `player` in the rival's mode and joins from the keyboard (the name and the mode
    come from the URL: Tab, Tab to the Join button, Enter), into the rival's waiting match."""
    await page.send(
        "Page.navigate",
        url=f"{stack.http_url}/play?ws={stack.ws_url}&player={player}&mode={joined.mode}",
    )
    await page.wait("document.readyState === 'complete' && !!document.querySelector('#player')")
    await page.key("Tab")
    await page.key("Tab")
    assert await page.focused() == "join"
    await page.key("Enter")
    await page.wait("document.querySelector('#match-info').dataset.status === 'running'")
    assert await page.eval("document.querySelector('#match-info').dataset.matchId") == joined.matchId


async def test_the_page_shows_an_opponent_away_then_forfeited(stack: LocalRuntime, tmp_path: Path) -> None:

    executable = await asyncio.to_thread(chromium_executable)
    player, rival = f"web-{uuid.uuid4().hex[:6]}", f"rival-{uuid.uuid4().hex[:6]}"
    # The rival opens a duel first.
    opponent, joined = await rival_waiting(stack, rival, "duel")
    row = MY_ROW.format(player=rival)
    async with chromium(executable, tmp_path / "profile") as page:
        await join_the_rival(page, stack, player, joined)
        await page.wait(f"{row} && {row}.dataset.presence === 'here'")
        await opponent.close()  # the rival's tab closes: their seat is held for the grace
        await page.wait(f"{row}.dataset.presence === 'away'", timeout=30)
        assert "— away" in await page.eval(f"{row}.textContent")
        await page.wait(
            f"document.querySelector('#log').textContent.includes('{rival} lost their connection')"
        )
        await page.wait(f"{row}.dataset.presence === 'forfeited'", timeout=30)
        await page.wait("document.querySelector('#match-info').dataset.status === 'finished'")
        assert "did not come back in time" in await page.eval("document.querySelector('#log').textContent")
        assert not page.errors, page.errors


C4_COLUMN = "document.querySelector('#c4-board [data-column=\"{column}\"]')"


async def click(page: Page, selector: str) -> None:
    """A real pointer click in the middle of the element."""
    box = await page.eval(
        f"(() => {{ const r = document.querySelector('{selector}').getBoundingClientRect();"
        " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
    )
    for kind in ("mousePressed", "mouseReleased"):
        await page.send(
            "Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1
        )


async def test_play_connect_four_with_keys_and_pointer_in_chromium(
    stack: LocalRuntime, tmp_path: Path
) -> None:
    executable = await asyncio.to_thread(chromium_executable)
    player, rival = f"web-{uuid.uuid4().hex[:6]}", f"rival-{uuid.uuid4().hex[:6]}"
    # The rival opens the match (so moves first), over the Python SDK.
    opponent, joined = await rival_waiting(stack, rival, "connect-four")

    async def rival_drops(column: int) -> None:
        await opponent.wait_state(lambda s: s.game is not None and s.game["turn"] == rival, timeout=20)
        await opponent.applied((await opponent.act("drop", {"column": column})).id, timeout=20)

    def column_count(column: int, count: int) -> str:
        return f"{C4_COLUMN.format(column=column)}.dataset.count === '{count}'"

    try:
        async with chromium(executable, tmp_path / "profile") as page:
            await join_the_rival(page, stack, player, joined)
            # The board replaces the race's field and buttons; it is a labelled group of column buttons,
            # and the first column has the focus.
            assert await page.eval(
                "document.querySelector('#field').hidden && !document.querySelector('#c4').hidden"
            )
            assert await page.eval("document.querySelector('#c4-board').getAttribute('role')") == "group"
            assert "keys 1 to 7" in await page.eval(
                "document.querySelector('#c4-board').getAttribute('aria-label')"
            )
            await page.wait("document.activeElement?.dataset?.column === '0'")  # join() gives it the focus
            await page.wait(f"document.querySelector('#c4-board').dataset.turn === '{rival}'")
            assert f"{rival}'s turn" in await page.eval(STATUS)  # said in words, too

            # Not the page's turn: a key press is explained, and nothing is sent.
            await page.key("5")
            await page.wait("document.querySelector('#status').textContent.includes('not yours')")

            await rival_drops(0)
            await page.wait(column_count(0, 1))
            assert (
                await page.eval(
                    f"{C4_COLUMN.format(column=0)}.querySelector('[data-row=\"0\"]').dataset.seat"
                )
                == "0"
            )
            await page.wait("document.querySelector('#status').textContent.includes('Your turn')")
            assert f"{rival} dropped in column 1" in await page.eval(STATUS)
            await page.key("5")  # column 5 (index 4), by key
            await page.wait(column_count(4, 1))
            # The rival builds in columns 1 and 2; the page stacks column 5, by pointer and by key.
            for mine, (rival_column, how) in enumerate(((0, "pointer"), (1, "key"), (1, "pointer")), start=2):
                await rival_drops(rival_column)
                await page.wait(f"document.querySelector('#c4-board').dataset.turn === '{player}'")
                if how == "key":
                    await page.key("5")
                else:
                    await click(page, '#c4-board [data-column="4"]')
                await page.wait(column_count(4, mine))
            await page.wait("document.querySelector('#match-info').dataset.status === 'finished'")
            label = await page.eval(f"{C4_COLUMN.format(column=4)}.getAttribute('aria-label')")
            assert label == "Column 5: from the bottom: yours, yours, yours, yours", label
            assert await page.eval("document.querySelectorAll('#c4-board [data-line]').length") == 4
            assert "You win with four in a row. 3 points for you." in await page.eval(STATUS)
            assert await page.eval("document.querySelector('#c4-board').dataset.result") == "four"

            # The 3 points the server decided are on the page's board, the mode's.
            await page.wait(f"{BOARD_ROWS}.some(r => r[1] === '{player}' && r[2] === 3)", timeout=30)
            assert await page.eval("document.querySelector('#leaderboard').dataset.board") == "connect-four"
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = base64.b64decode((await page.send("Page.captureScreenshot", format="png"))["data"])
            (ARTIFACTS / "play-connect-four.png").write_bytes(shot)
            assert not page.errors, page.errors
    finally:
        await opponent.close()
