"""Property-based checks of the admin API against its own OpenAPI document (schemathesis).

Every operation is called with generated inputs, valid and invalid, with an admin token: no response
may be a 5xx, and every response must match the document (status code, content type, body schema).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from local.runtime import LocalRuntime
from tests.conftest import token_for

pytestmark = pytest.mark.e2e
ST = Path(sys.executable).parent / "st"
CONFIG = Path(__file__).with_name("schemathesis.toml")  # why some operations may answer 400 to valid data


async def test_the_admin_api_conforms_to_its_openapi_document(stack: LocalRuntime, tmp_path: Path) -> None:
    command = [
        str(ST),
        "--config-file",
        str(CONFIG),
        "run",
        f"{stack.http_url}/admin/openapi.json",
        "--url",
        stack.http_url,
        "--header",
        f"Authorization: Bearer {token_for('schemathesis', admin=True)}",
        "--checks",
        "all",
        # Starting a season on every generated call would reset the boards other tests read.
        "--exclude-path-regex",
        "/reset$",
        "--max-examples",
        "15",
        "--seed",
        "7",
        "--request-timeout",
        "20",
    ]
    # Asynchronously: the stack serves from this test's event loop.
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 600)
    report = tmp_path / "schemathesis.txt"
    report.write_bytes(out)
    assert proc.returncode == 0, f"full report: {report}\n" + out.decode()[-8000:]
