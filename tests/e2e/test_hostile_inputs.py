"""Inputs that used to get a 5xx or no answer at all from the running local stack, each now refused
with a 4xx (or an error frame) that carries a code. One test per defect of issue 16."""

from __future__ import annotations

from typing import Any

import pytest

from local.runtime import LocalRuntime
from tests.e2e.test_game import name

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    "frame",
    [
        "[" * 1000 + "]" * 1000,
        '{"action":"ping","id":"p1","x":' + "[" * 1000 + "]" * 1000 + "}",
        '{"action":"act","kind":"score","id":"a1","points":' + "{" * 2000,
        '{"action":"ping","id":NaN}',
    ],
    ids=["1000-deep-array", "1000-deep-member", "unclosed-2000-deep", "nan"],
)
async def test_a_deeply_nested_frame_gets_malformed_frame(
    stack: LocalRuntime, connect_player: Any, frame: str
) -> None:
    client = await connect_player(name("deep"))
    await client.send(frame)
    answer = await client.recv()
    assert (answer["type"], answer["code"]) == ("error", "malformed_frame"), answer
    # and the socket still serves the next frame
    assert (await client.request({"action": "ping", "id": "after"}))["type"] == "pong"
