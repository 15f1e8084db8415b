"""The JavaScript SDK outside a browser: its types checked by TypeScript (the module's JSDoc, and a game's
use of gamebackend.d.ts), and what it holds of the backend (the error tree, the protocol version) equal to
the backend's. Its behaviour against the stack is tested in Chromium: tests/e2e/test_browser_sdk.py."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from backend import errors
from backend.protocol import PROTOCOL_VERSION

ROOT = Path(__file__).resolve().parents[2]
TSC = ROOT / "node_modules" / ".bin" / "tsc"
TSCONFIG = ROOT / "tests" / "js" / "tsconfig.json"


def tsc(project: Path) -> subprocess.CompletedProcess[str]:
    if not TSC.exists():  # `make test` runs `npm ci` first (the deploy check), which installs it
        pytest.skip("node_modules/.bin/tsc is missing: run `npm ci`")
    return subprocess.run(
        [str(TSC), "-p", str(project)], capture_output=True, text=True, timeout=120, check=False
    )


def node(script: str) -> object:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    out = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_module_and_a_games_use_of_its_declarations_type_check() -> None:
    out = tsc(TSCONFIG)
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_wrong_use_is_a_type_error(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.ts"
    sdk = (ROOT / "clients" / "js" / "gamebackend.js").as_posix()
    wrong.write_text(
        f'import {{ GameClient }} from "{sdk}";\n'
        'const c = new GameClient("ws://x", { token: "t" });\n'
        'c.score("ten");\n'
        'c.on("state", (s) => s.nope);\n'
    )
    config = json.loads(
        "\n".join(line for line in TSCONFIG.read_text().splitlines() if not line.strip().startswith("//"))
    )
    config["files"] = [str(wrong)]
    (tmp_path / "tsconfig.json").write_text(json.dumps(config))
    out = tsc(tmp_path / "tsconfig.json")
    assert out.returncode != 0
    assert "wrong.ts(3," in out.stdout and "wrong.ts(4," in out.stdout, out.stdout


def test_the_error_tree_and_protocol_version_are_the_backends() -> None:
    found = node(
        'const m = await import("./clients/js/gamebackend.js");'
        "console.log(JSON.stringify({tree: m.ERROR_PARENTS, protocol: m.PROTOCOL_VERSION}));"
    )
    assert isinstance(found, dict)
    tree: dict[str, str | None] = {}
    for name in errors.__all__:
        cls = getattr(errors, name)
        parent = cls.__mro__[1]
        tree[cls.code] = parent.code if issubclass(parent, errors.GameError) else None
    tree["internal"] = None
    assert found["tree"] == tree
    assert found["protocol"] == PROTOCOL_VERSION


def test_backoff_is_full_jitter_under_the_cap() -> None:
    found = node(
        'const { backoffDelay } = await import("./clients/js/gamebackend.js");'
        "const o = { base: 200, cap: 10000 };"
        "console.log(JSON.stringify({"
        " top: [0, 1, 2, 5, 6, 40].map((n) => backoffDelay(n, { ...o, random: () => 1 })),"
        " bottom: backoffDelay(3, { ...o, random: () => 0 }),"
        " spread: new Set(Array.from({ length: 50 }, () => backoffDelay(4, o))).size,"
        " bad: (() => { try { backoffDelay(-1, o); return 'accepted'; } catch (e) { return e.name; } })(),"
        "}));"
    )
    top = [200, 400, 800, 6400, 10000, 10000]
    assert found == {"top": top, "bottom": 0, "spread": 50, "bad": "RangeError"}


def test_the_package_would_publish_the_module_and_its_types_with_no_dependencies() -> None:
    folder = ROOT / "clients" / "js"
    package = json.loads((folder / "package.json").read_text())
    assert package["type"] == "module" and not package.get("private")
    assert not package.get("dependencies") and not package.get("peerDependencies")
    exported = package["exports"]["."]
    assert (exported["default"], exported["types"]) == ("./gamebackend.js", "./gamebackend.d.ts")
    assert (package["main"], package["types"]) == ("./gamebackend.js", "./gamebackend.d.ts")
    for name in package["files"]:
        assert (folder / name).is_file(), name
    # No import of anything but itself: usable from a page as it is.
    source = (folder / "gamebackend.js").read_text()
    assert not re.search(r"^\s*import\s.*from\s", source, re.M)


# A WebSocket that answers the n-th frame sent with answers[n] (`{id}`: the frame's id; null: a pong), and
# that the server closes after a `closing` frame.
SCRIPTED = """
const m = await import("./clients/js/gamebackend.js");
function scripted(answers) {
  const world = { sent: [], urls: [] };
  class FakeWS {
    constructor(url) {
      this.readyState = 0;
      world.urls.push(url);
      setTimeout(() => { this.readyState = 1; this.onopen?.(); });
    }
    send(text) {
      const f = JSON.parse(text);
      world.sent.push(f.action);
      const a = answers[world.sent.length - 1];
      setTimeout(() => {
        const pong = JSON.stringify({ type: "pong", ref: f.id, protocol: 2 });
        this.onmessage?.({ data: a == null ? pong : a.replaceAll("{id}", f.id) });
        if (a == null) return;
        if (a.includes('"closing"')) this.close();
      });
    }
    close() {
      if (this.readyState === 3) return;
      this.readyState = 3;
      setTimeout(() => this.onclose?.({ code: 1000 }));
    }
  }
  const options = { token: "t", WebSocket: FakeWS, backoffBase: 1, heartbeatInterval: null };
  world.client = new m.GameClient("ws://gw.invalid", { ...options, maxThrottleRetries: 2 });
  return world;
}
const outcome = (p) => p.then((f) => f.type, (e) => `${e.name}: ${e.code ?? e.message}`);
"""


def test_the_js_sdk_resends_after_a_gateway_frame_and_after_rate_limited_then_gives_up() -> None:
    found = node(
        SCRIPTED
        + """
const gateway = '{"message": "Internal server error", "connectionId": "c", "requestId": "r"}';
const limited = '{"type": "error", "code": "rate_limited", "message": "slow down", "ref": "{id}"}';
const w = scripted([gateway, null, limited, null, limited, limited, limited]);
const seen = [];
w.client.on("gatewaymessage", (f) => seen.push(["gateway", f.message, typeof f.retryIn]));
w.client.on("throttled", (t) => seen.push(["throttled", t.attempt]));
await w.client.connect();
const answers = [];
for (let i = 0; i < 3; i += 1) answers.push(await outcome(w.client.ping()));
console.log(JSON.stringify({ answers, seen, sent: w.sent, url: w.urls[0],
  counts: [w.client.gatewayMessages, w.client.throttled] }));
w.client.close();
"""
    )
    assert found == {
        "answers": ["pong", "pong", "ServerError: rate_limited"],
        "seen": [
            ["gateway", "Internal server error", "number"],
            ["throttled", 1],
            ["throttled", 1],
            ["throttled", 2],
        ],
        "sent": ["ping"] * 7,
        "url": "ws://gw.invalid/?token=t&protocol=2",
        "counts": [1, 3],
    }


def test_the_js_sdk_stops_on_a_closing_for_too_many_connections() -> None:
    found = node(
        SCRIPTED
        + """
const w = scripted(['{"type": "closing", "code": "too_many_connections", "message": "newer tabs"}']);
const closing = [];
w.client.on("closing", (c) => closing.push(c.code));
await w.client.connect();
const answer = await outcome(w.client.ping());
await new Promise((r) => setTimeout(r, 50));
console.log(JSON.stringify({ answer, closing, status: w.client.status, upgrades: w.urls.length }));
"""
    )
    assert found == {
        "answer": "ConnectionLost: closed by the server: newer tabs",
        "closing": ["too_many_connections"],
        "status": "closed",
        "upgrades": 1,
    }
