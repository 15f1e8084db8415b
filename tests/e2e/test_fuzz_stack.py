"""Fuzzing the running local stack over real sockets (tests/fuzz.py strategies): WebSocket frames, admin
HTTP requests and Kinesis records, each through every layer a client's input crosses (the gateway or the
HTTP API, a Lambda worker, the embedded AWS endpoint).

Properties:
- every frame gets exactly one answer, a protocol frame, never `internal`, `unavailable` or API
  Gateway's "Internal server error"; the socket stays open;
- no admin request gets a 5xx, and every answer is JSON;
- refused inputs change nothing: the fuzzing player is never seated nor ranked; the admin fuzz leaves
  the matches, leaderboards and connections tables as they were; records no match can apply never make
  the processor fail, retry or dead-letter a batch, and a real action still goes through afterwards.

Hypothesis runs in a worker thread with blocking clients: the stack serves from this test's event loop.
(tests/e2e/test_admin_schemathesis.py covers the admin API against its OpenAPI document as well.)
"""

from __future__ import annotations

import asyncio
import http.client
import json
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.sync.client import connect

from backend.protocol import server_frame_adapter
from local.runtime import LocalRuntime
from tests import fuzz
from tests.conftest import token_for
from tests.e2e.conftest import eventually
from tests.e2e.test_admin import call
from tests.e2e.test_game import join, name, score, state_where

pytestmark = pytest.mark.e2e
DIRECT_ANSWERS = {"pong", "joined", "ack", "left", "leaderboard", "error"}
SEATING = {"joined", "ack", "left"}


def _fuzz_frames(ws_url: str, token: str) -> set[str]:
    """Returns the answer types seen."""
    seen: set[str] = set()
    with connect(f"{ws_url}/?token={token}", open_timeout=30, max_size=None) as ws:

        def answer_to(frame: str | bytes) -> dict[str, Any]:
            for _ in range(100):
                ws.send(frame)
                answer: dict[str, Any] = json.loads(ws.recv(timeout=30))  # TimeoutError: unanswered
                # Frames this fast trip the message function's flood guard: sent again, as a client
                # would, so that every fuzzed frame reaches the handler.
                if answer.get("code") != "rate_limited":
                    break
                time.sleep(0.1)
            server_frame_adapter.validate_python(
                answer
            )  # API Gateway's {"message": "Internal server error"} fails
            assert answer["type"] in DIRECT_ANSWERS, answer
            if answer["type"] == "error":
                assert answer["code"] not in ("internal", "unavailable"), answer
            seen.add(answer["type"])
            return answer

        @given(frame=fuzz.frame_texts() | fuzz.frame_bytes)
        @fuzz.examples(80)
        def one(frame: str | bytes) -> None:
            answer_to(frame)

        one()
        assert answer_to('{"action":"ping","id":"last"}')["type"] == "pong"  # the socket survived it all
    return seen


async def test_fuzzed_frames_each_get_one_answer_and_seat_nobody(stack: LocalRuntime) -> None:
    player = name("fuzz")
    seen = await asyncio.to_thread(_fuzz_frames, stack.ws_url, token_for(player))
    if not seen & SEATING:  # every frame was refused or read-only: the player must be nowhere
        status, listing = await call(stack, "GET", f"/admin/connections?playerId={player}")
        assert status == 200 and all(c.get("matchId") is None for c in listing["connections"]), listing
        for board in ("global", "practice", "duel", "arena"):
            status, _ = await call(stack, "GET", f"/admin/leaderboards/{board}/players/{player}")
            assert status == 404, board


def _counts(endpoint: str) -> dict[str, int]:
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    tables = ("matches", "leaderboards", "connections")
    return {t: ddb.scan(TableName=f"gamebackend-local-{t}", Select="COUNT")["Count"] for t in tables}


def _fuzz_admin(http_url: str) -> None:
    netloc = urlsplit(http_url).netloc
    tokens = {"admin": token_for("fuzz-ops", admin=True), "player": token_for("fuzz-player")}

    @given(req=fuzz.admin_requests(tokens).filter(lambda r: not r["path"].endswith("/reset")))
    @fuzz.examples(80)
    def one(req: dict[str, Any]) -> None:
        query = urlencode(req["query"])
        target = fuzz.wire_path(req["path"]) + (f"?{query}" if query else "")
        body = req["body"].encode("utf-8", "surrogatepass") if isinstance(req["body"], str) else req["body"]
        conn = http.client.HTTPConnection(netloc, timeout=30)
        try:
            conn.request(req["method"], target, body=body, headers=req["headers"])
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        assert response.status < 500, (response.status, raw[:300])
        if req["method"] != "HEAD":
            assert response.getheader("Content-Type", "").startswith("application/json"), (
                response.getheaders()
            )
            answer = json.loads(raw) if raw else None
            if response.status >= 400:
                assert answer and (answer.get("error", {}).get("code") or answer.get("message")), answer

    one()


async def test_fuzzed_admin_requests_get_json_and_no_5xx(stack: LocalRuntime) -> None:
    before = await asyncio.to_thread(_counts, stack.dynamodb_endpoint)
    await asyncio.to_thread(_fuzz_admin, stack.http_url)
    assert await asyncio.to_thread(_counts, stack.dynamodb_endpoint) == before


def _put_fuzzed_records(endpoint: str) -> int:
    kinesis = boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1")
    put = 0

    @given(batch=st.lists(st.tuples(fuzz.record_data, fuzz.partition_keys), min_size=1, max_size=8))
    @fuzz.examples(8)
    def one(batch: list[tuple[bytes, str]]) -> None:
        nonlocal put
        records = [{"Data": data or b"\x00", "PartitionKey": key} for data, key in batch]
        out = kinesis.put_records(StreamName="gamebackend-local-actions", Records=records)
        assert out["FailedRecordCount"] == 0, out
        put += len(records)

    one()
    return put


async def test_fuzzed_stream_records_never_fail_a_batch(stack: LocalRuntime, connect_player: Any) -> None:
    (poller,) = [p for p in stack.pollers if p.snapshot()["source"] == "kinesis"]
    processor = stack.pools["processor"].stats
    before = poller.snapshot()
    errors = processor.errors
    put = await asyncio.to_thread(_put_fuzzed_records, stack.aws_endpoint)

    async def delivered() -> bool:
        now = poller.snapshot()
        return bool(now["records"] >= before["records"] + put and now["recordsBehind"] == 0)

    await eventually(delivered, timeout=60)
    after = poller.snapshot()
    assert processor.errors == errors
    for key in ("retries", "bisections", "deadLetteredBatches"):
        assert after[key] == before[key], (key, before, after)
    # And the stream still carries a real game.
    solo = await connect_player(name("after-fuzz"))
    mid = (await join(solo, "practice"))["matchId"]
    await score(solo, mid, "f1", 5)
    await state_where(solo, lambda s: "f1" in s["applied"])
