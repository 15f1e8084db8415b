"""Which poison records the processor dead-letters itself: only those Lambda will not bring back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streams import processor
from streams.deadletter import MAX_BODY, _body
from streams.decode import Poison


class Recorder:
    def __init__(self) -> None:
        self.sent: list[int] = []

    def send_poison(self, poison: list[Poison], source_arn: str | None) -> None:
        self.sent += [p.sequence for p in poison]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def with_dead_letters(recorder: Recorder) -> processor.Processor:
    # Only the dead letters are used by dead_letter(); the rest would fail loudly if touched.
    return processor.Processor(matches=None, sessions=None, pusher=None, dead_letters=recorder, timers=None)  # type: ignore[arg-type]


def poison(seq: int) -> Poison:
    return Poison(seq, "m-1", "undecodable", {"kinesis": {"sequenceNumber": str(seq), "data": "AA=="}})


def test_all_poison_goes_when_nothing_failed(recorder: Recorder) -> None:
    with_dead_letters(recorder).dead_letter([poison(3), poison(9)], set(), None)
    assert recorder.sent == [3, 9]


def test_poison_after_the_first_failure_waits_for_the_redelivery(recorder: Recorder) -> None:
    with_dead_letters(recorder).dead_letter([poison(3), poison(9)], {5, 7}, None)
    assert recorder.sent == [3]


def test_a_record_too_large_for_sqs_travels_without_its_data() -> None:
    big = Poison(
        1,
        "m-1",
        "undecodable",
        {"eventID": "shardId-0:1", "kinesis": {"sequenceNumber": "1", "data": "A" * (MAX_BODY + 1)}},
    )
    body: dict[str, Any] = json.loads(_body(big, None))
    assert body["record"]["kinesis"].get("dataOmitted") is True
    assert "data" not in body["record"]["kinesis"]
    assert len(_body(poison(2), None)) < MAX_BODY and "data" in _body(poison(2), None)


def test_a_record_nested_past_the_parsers_stack_is_poison_not_a_crash() -> None:
    """Found by tests/store/test_fuzz_handlers.py: json.loads raised RecursionError out of decode(), so
    the whole batch failed on every retry."""
    import base64

    from streams.decode import Poison, decode
    from tests.store.kinesis_events import record

    for data in (b"[" * 5000 + b"]" * 5000, b'{"v":1,"points":NaN}'):
        decoded = decode(record(base64.b64encode(data).decode(), "m-" + "0" * 32, 7))
        assert isinstance(decoded, Poison) and decoded.reason.startswith("undecodable"), decoded
