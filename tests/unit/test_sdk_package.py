"""The Python SDK (clients/python, distribution `gamebackend-client`) ships without the backend and cannot
drift from it:

- its frames are exactly the protocol's JSON Schema (`docs/protocol.schema.json`, which test_docs keeps
  equal to what the backend's models generate), its constants are the backend's;
- its error classes are the backend's tree: the same names, codes, HTTP statuses and parents;
- `pip install` of its folder works offline, and the installed package imports and plays in a Python
  where none of the repository's packages can be imported.

This test imports both sides; the SDK imports nothing of the repository (tests/unit/test_layout.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import TypeAdapter

import gamebackend_client
from backend import errors as backend_errors
from backend import ids, vocabulary
from backend.protocol import PROTOCOL_VERSION
from gamebackend_client import errors, protocol

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "clients" / "python"
SCHEMA = ROOT / "docs" / "protocol.schema.json"
REPOSITORY_PACKAGES = ("backend", "streams", "local", "clients", "cli", "loadtest", "bench", "tests")


def test_the_sdks_frames_are_the_protocol_schema() -> None:
    written = json.loads(SCHEMA.read_text())
    sdk = {
        "client": TypeAdapter(protocol.ClientFrame).json_schema(),
        "server": protocol.server_frame_adapter.json_schema(),
    }
    for side in ("client", "server"):
        assert sdk[side] == written[side], (
            f"gamebackend_client.protocol's {side} frames differ from docs/protocol.schema.json: change "
            "clients/python/gamebackend_client/protocol.py with backend/protocol.py"
        )
    # The race modes' actions, which the SDK has typed helpers for, are those modes' plug-in's.
    for model in (protocol.Score, protocol.Move):
        kind = model.model_fields["kind"].annotation.__args__[0]  # type: ignore[union-attr]
        assert model.model_json_schema() == written["actions"][kind], (
            f"gamebackend_client.protocol.{model.__name__} differs from the `{kind}` action of games/race.py"
        )
    # The stream is the backend's business alone; the modes' actions are the stage's (`act` sends any).
    assert set(written) - set(sdk) == {
        "streamRecord",
        "actions",
        "modes",
    }  # the stream is the backend's business alone


def test_the_sdks_constants_are_the_backends() -> None:
    assert protocol.PROTOCOL_VERSION == gamebackend_client.PROTOCOL_VERSION == PROTOCOL_VERSION
    assert (protocol.ACTION_ID_PATTERN, protocol.MATCH_ID_PATTERN) == (
        ids.ACTION_ID_PATTERN,
        ids.MATCH_ID_PATTERN,
    )
    assert protocol.MODE_NAME_PATTERN == vocabulary.MODE_NAME_PATTERN
    # Boards and periods are the server's data: the SDK shares their grammar, not a list of them.
    assert (protocol.BOARD_NAME_PATTERN, protocol.PERIOD_NAME_PATTERN) == (
        vocabulary.BOARD_NAME_PATTERN,
        vocabulary.PERIOD_NAME_PATTERN,
    )
    assert get_args(protocol.MatchStatus) == vocabulary.MATCH_STATUSES


def _backend_tree() -> dict[str, tuple[str, int, str | None]]:
    """class name -> (code, status, parent's code), the root GameError under the SDK's name."""
    tree = {}
    for name in ["GameError", *backend_errors.__all__]:
        cls = getattr(backend_errors, name)
        parent = cls.__bases__[0]
        parent_code = parent.code if issubclass(parent, backend_errors.GameError) else None
        tree["ServerError" if cls is backend_errors.GameError else name] = (cls.code, cls.status, parent_code)
    return tree


def _sdk_tree() -> dict[str, tuple[str, int, str | None]]:
    tree = {}
    for cls in errors.SERVER_ERRORS.values():
        parent = cls.__bases__[0]
        parent_code = parent.code if issubclass(parent, errors.ServerError) else None
        tree[cls.__name__] = (cls.code, cls.status, parent_code)
    return tree


def test_the_sdks_error_classes_are_the_backends_tree() -> None:
    backend, sdk = _backend_tree(), _sdk_tree()
    assert len(backend) >= 19 and backend["NotInMatch"] == ("not_in_match", 403, "forbidden")
    assert sdk == backend
    for name in backend:
        cls = getattr(errors, name)
        assert name in errors.__all__ and getattr(gamebackend_client, name) is cls
        assert type(errors.server_error(cls.code, "m")) is cls
        rejected = errors.rejection(cls.code, "m", "a-1")
        assert isinstance(rejected, cls) and isinstance(rejected, errors.ActionRejected)


# The installed SDK, in a Python that sees its dependencies but none of the repository's packages: a
# fake gateway answers ping, refuses a join with an error frame, and acknowledges, applies and pushes.
STANDALONE = textwrap.dedent(
    """
    import asyncio, importlib.metadata, importlib.util, json, sys

    target, repository, *deps = sys.argv[1:]
    sys.path[:0] = [target, *deps]
    repository = repository.split(",")
    findable = [name for name in repository if importlib.util.find_spec(name) is not None]

    import gamebackend_client
    from gamebackend_client import GameClient, NotInMatch, ServerError
    from gamebackend_client.protocol import Pong, State
    from websockets.asyncio.server import serve

    MID = "m-" + "0" * 32

    async def gateway(ws):
        async for raw in ws:
            frame = json.loads(raw)
            if frame["action"] == "ping":
                pong = {"type": "pong", "ref": frame["id"], "protocol": gamebackend_client.PROTOCOL_VERSION}
                await ws.send(json.dumps(pong))
            elif frame["action"] == "join":
                error = {"type": "error", "code": "not_in_match", "message": "no", "ref": frame["id"]}
                await ws.send(json.dumps(error))
            elif frame["action"] == "act":
                await ws.send(json.dumps({"type": "ack", "id": frame["id"]}))
                state = {"type": "state", "matchId": MID, "mode": "practice", "version": 2,
                         "status": "running", "players": {"p": {"score": frame["points"]}},
                         "applied": [frame["id"]]}
                await ws.send(json.dumps(state))

    async def main():
        async with serve(gateway, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            async with GameClient(f"ws://127.0.0.1:{port}", "token", heartbeat_interval=None) as client:
                pong = await client.ping()
                try:
                    await client.join("practice", match_id=MID)
                    refused = None
                except ServerError as exc:
                    refused = [type(exc).__name__, exc.code, isinstance(exc, NotInMatch)]
                ack = await client.score(7, match_id=MID)
                state = await client.applied(ack.id)
        meta = importlib.metadata.distribution("gamebackend-client")
        print(json.dumps({
            "findable": findable,
            "file": gamebackend_client.__file__,
            "loaded": sorted(m.split(".")[0] for m in sys.modules if m.split(".")[0] in repository),
            "pong": [type(pong) is Pong, pong.protocol],
            "refused": refused,
            "state": [type(state) is State, state.players["p"].score],
            "version": [meta.version, gamebackend_client.__version__],
            "metadata_at": str(meta.locate_file("")),
            "requires": sorted(meta.requires or []),
        }))

    asyncio.run(main())
    """
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip install clients/python` into a fresh folder: offline, with the venv's setuptools. From a copy
    of the folder, as a game team gets it, since pip builds in the source tree."""
    work = tmp_path_factory.mktemp("sdk-install")
    source, target = work / "gamebackend-client", work / "site"
    shutil.copytree(SDK, source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-index",
            "--no-deps",
            "--no-build-isolation",
            "--check-build-dependencies",  # the venv's setuptools must satisfy the SDK's build-system
            "--no-compile",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=180,
        env={**os.environ, "PIP_NO_INPUT": "1"},
    )
    return target


def test_pip_installs_the_sdk_alone(installed: Path) -> None:
    package = {p.name for p in (installed / "gamebackend_client").iterdir() if p.name != "__pycache__"}
    assert package == {"__init__.py", "client.py", "errors.py", "protocol.py", "py.typed"}
    top = {p.name for p in installed.iterdir() if not p.name.endswith(".dist-info")}
    assert top == {"gamebackend_client"}, "only the SDK's package is installed"


def test_the_installed_sdk_plays_where_the_repository_cannot_be_imported(
    installed: Path, tmp_path: Path
) -> None:
    paths = sysconfig.get_paths()
    deps = sorted({paths["purelib"], paths["platlib"]})  # pydantic, websockets; no .pth is run (-S)
    script = tmp_path / "standalone.py"
    script.write_text(STANDALONE)
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(script), str(installed), ",".join(REPOSITORY_PACKAGES), *deps],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    assert out["findable"] == [] and out["loaded"] == []
    assert Path(out["file"]).is_relative_to(installed)
    assert out["pong"] == [True, PROTOCOL_VERSION]
    assert out["refused"] == ["NotInMatch", "not_in_match", True]
    assert out["state"] == [True, 7]
    assert out["version"] == [gamebackend_client.__version__] * 2
    assert Path(out["metadata_at"]) == installed
    assert [r.split(">")[0] for r in out["requires"]] == ["pydantic", "websockets"]
