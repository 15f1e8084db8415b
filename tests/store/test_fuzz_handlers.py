"""Fuzzing the handlers in process (tests/fuzz.py strategies, moto underneath): the message function, the
admin function and the stream processor.

Properties, for every generated input:
- an answer comes back (nothing raises out of a handler) and it is well-formed: a protocol frame for the
  message function, a JSON body for the admin function, a partial-batch response for the processor;
- no 5xx, and no `internal` or `unavailable` error: nothing here is a dependency failure;
- a refused input changes nothing: every table, the stream and the dead-letter queue are as before.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.protocol import server_frame_adapter
from tests import fuzz
from tests.conftest import token_for
from tests.store.harness import ADMIN_TOKEN, Backend, context, http_event
from tests.store.kinesis_events import record

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")
TOKENS = {
    "admin": ADMIN_TOKEN,
    "player": token_for("alice"),
    "expired": token_for("ops", admin=True, ttl=1, now=0),
}
DIRECT_ANSWERS = {"pong", "joined", "ack", "left", "leaderboard", "error"}


@given(text=fuzz.frame_texts())
@fuzz.examples(150)
def test_any_text_frame_gets_one_well_formed_answer(backend: Backend, text: str) -> None:
    before = backend.snapshot()
    answer = backend.frame(text)
    server_frame_adapter.validate_python(answer)
    assert answer["type"] in DIRECT_ANSWERS, answer
    if answer["type"] == "error":
        assert answer["code"] not in ("internal", "unavailable"), answer
        assert backend.snapshot() == before, answer


@given(data=fuzz.frame_bytes)
@fuzz.examples(40)
def test_any_binary_frame_gets_one_well_formed_answer(backend: Backend, data: bytes) -> None:
    before = backend.snapshot()
    answer = backend.frame(base64.b64encode(data).decode(), is_base64=True)
    assert (answer["type"], answer["code"]) == ("error", "malformed_frame"), answer
    assert backend.snapshot() == before


@given(req=fuzz.admin_requests(TOKENS))
@fuzz.examples(150)
def test_any_admin_request_gets_a_json_answer_and_no_5xx(backend: Backend, req: dict[str, Any]) -> None:
    event = http_event(
        req["method"], req["path"], query=req["query"], body=req["body"], headers=req["headers"]
    )
    before = backend.snapshot()
    status, body, headers = backend.admin(event)
    assert status < 500, (status, body)
    assert headers.get("Content-Type", "").startswith("application/json"), headers
    if status >= 400:
        assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"], body
        assert backend.snapshot() == before, (status, body)


@pytest.fixture
def processor(backend: Backend) -> Iterator[Any]:
    """The stream processor's handler; its pushes go to the harness's Management API, where every
    connection is gone."""
    from streams import processor as module

    module.root.reset()  # built from the harness's environment by the handler's first call
    yield module.handler
    module.root.reset()


@given(
    batch=st.lists(st.tuples(fuzz.record_data, fuzz.partition_keys), min_size=1, max_size=8),
)
@fuzz.examples(60)
def test_records_that_cannot_apply_never_fail_a_batch_nor_write(
    backend: Backend, processor: Any, batch: list[tuple[bytes, str]]
) -> None:
    """No match exists in these tests' tables, so no record can apply: each is poison (dead-lettered)
    or rejected (match_not_found). Either way the batch succeeds (a failure would make Lambda retry
    the shard forever) and no table changes."""
    records = [
        record(base64.b64encode(data).decode(), key, 1_000_000 + i) for i, (data, key) in enumerate(batch)
    ]
    before = backend.snapshot()
    answer = processor({"Records": records}, context("processor"))
    assert answer == {"batchItemFailures": []}, answer
    after = backend.snapshot()
    assert {k: v for k, v in after.items() if "dlq" not in k} == {
        k: v for k, v in before.items() if "dlq" not in k
    }
    assert int(after["gamebackend-local-actions-dlq"]) <= int(before["gamebackend-local-actions-dlq"]) + len(
        batch
    )
