"""The documentation cannot drift from the code: each check here fails when one of them changes alone.

- docs/protocol.schema.json is exactly what `gamebackend schema` prints (regenerate it with
  `.venv/bin/gamebackend schema > docs/protocol.schema.json`);
- docs/protocol.md names every error code, client action, server frame type and stream-record field;
- README.md shows the two commands a newcomer needs;
- every relative link in README.md and docs/*.md points at a file that exists.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from backend import errors
from backend.protocol import (
    CLIENT_ACTIONS,
    EVENT_SCHEMA_VERSION,
    PROTOCOL_VERSION,
    GameEvent,
    server_frame_adapter,
)
from cli.main import main as cli

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PROTOCOL_MD = DOCS / "protocol.md"


def _error_codes() -> set[str]:
    tree = [getattr(errors, name) for name in errors.__all__]
    return {cls.code for cls in tree if isinstance(cls, type) and issubclass(cls, errors.GameError)}


def _server_types() -> set[str]:
    schema = server_frame_adapter.json_schema()
    return set(schema["discriminator"]["mapping"])


def test_protocol_schema_file_is_the_current_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["schema"]) == 0
    printed = capsys.readouterr().out
    written = (DOCS / "protocol.schema.json").read_text()
    assert written == printed, (
        "docs/protocol.schema.json is stale: `.venv/bin/gamebackend schema > docs/protocol.schema.json`, "
        "then describe the change in docs/protocol.md and CHANGELOG.md"
    )


def test_every_error_code_is_documented() -> None:
    text = PROTOCOL_MD.read_text()
    codes = _error_codes()
    assert "internal" in codes and "stale_state" in codes  # the root and the leaves are both collected
    missing = sorted(code for code in codes if f"`{code}`" not in text)
    assert not missing, f"error codes missing from docs/protocol.md: {missing}"


def test_every_frame_and_stream_field_is_documented() -> None:
    text = PROTOCOL_MD.read_text()
    missing = [f"action {a}" for a in CLIENT_ACTIONS if f'"action":"{a}"' not in text]
    missing += [f"type {t}" for t in sorted(_server_types()) if f'"type":"{t}"' not in text]
    missing += [f"GameEvent.{f}" for f in GameEvent.model_fields if f"`{f}`" not in text]
    assert not missing, f"undocumented in docs/protocol.md: {missing}"
    assert f"protocol version {PROTOCOL_VERSION}" in text.lower()
    assert f"`v` = {EVENT_SCHEMA_VERSION}" in text


def test_readme_shows_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert "make run" in text
    assert "make test" in text


@pytest.mark.parametrize("doc", ["README.md", *sorted(str(p.relative_to(ROOT)) for p in DOCS.glob("*.md"))])
def test_relative_links_resolve(doc: str) -> None:
    path = ROOT / doc
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue  # a URL or an anchor in the same page
        if not (path.parent / target.split("#", 1)[0]).exists():
            broken.append(target)
    assert not broken, f"{doc}: links to missing files: {broken}"


def test_operations_states_the_token_policy_the_code_enforces() -> None:
    from backend import auth

    section = (DOCS / "operations.md").read_text().split("\n## Tokens\n", 1)[1].split("\n## ", 1)[0]
    assert f"{auth.LEEWAY} s either way" in section
    assert f"{auth.MAX_LIFETIME // 3600} h from `iat` to `exp`" in section
    assert f"refuses more than {auth.MAX_LIFETIME}" in section
