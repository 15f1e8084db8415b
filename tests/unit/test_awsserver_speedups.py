"""The embedded AWS endpoint's shortcuts change no answer: its constant-cost Kinesis read answers exactly
what moto's own walk over the shard answers, for every position and limit
(local.awsserver.shard_records_after), its header parser what the email package parses, and its request
line is still logged when the log asks for it."""

from __future__ import annotations

import logging
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from moto.kinesis.models import Shard

from local import awsserver


def shard_with(count: int) -> Shard:
    shard = Shard(0, 0, 2**128)
    for n in range(count):
        shard.put_record(f"m-{n % 3}", f"data-{n}", str(n))
    return shard


def moto_walk(shard: Shard, after: str, limit: int | None) -> tuple[list[int], int, int]:
    found, last, behind = awsserver._MOTO_GET_RECORDS.get("walk", Shard.get_records)(shard, after, limit)
    return [r.sequence_number for r in found], last, behind


def by_key(shard: Shard, after: str, limit: int | None) -> tuple[list[int], int, int]:
    found, last, behind = awsserver.shard_records_after(shard, after, limit)
    return [r.sequence_number for r in found], last, behind


@given(
    count=st.integers(0, 40),
    after=st.integers(0, 45),
    limit=st.none() | st.integers(1, 50),
)
def test_the_same_records_as_moto_finds(count: int, after: int, limit: int | None) -> None:
    shard = shard_with(count)
    assert by_key(shard, str(after), limit) == moto_walk(shard, str(after), limit)


def test_a_shard_with_a_gap_takes_motos_walk() -> None:
    shard = shard_with(6)
    del shard.records[3]
    assert by_key(shard, "1", None) == moto_walk(shard, "1", None) == ([2, 4, 5, 6], 6, 0)


def test_what_survives_a_full_collection_is_not_walked_again() -> None:
    """In a process of its own: the collector's state is the whole interpreter's."""
    import subprocess
    import sys

    code = """
import gc
from local.awsserver import keep_only_young_collected
keep_only_young_collected()
stored = [[n] for n in range(100_000)]  # what moto keeps: it survives the next full collection
gc.collect()
print(gc.get_freeze_count() >= 100_000, len(gc.get_objects()) < 20_000)
cycle: list[object] = []
cycle.append(cycle)  # garbage made after the freeze is still found
del cycle
print(gc.collect() > 0)
frozen = gc.get_freeze_count()
del stored[:50_000]  # frozen objects are still freed by their reference counts
print(gc.get_freeze_count() <= frozen - 50_000)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True", "True", "True"]


BLOCKS = [
    b"Host: 127.0.0.1:8000\r\nAccept-Encoding: identity\r\nX-Amz-Target: DynamoDB_20120810.GetItem\r\n"
    b"Content-Type: application/x-amz-json-1.0\r\nUser-Agent: Boto3/1.40 md/Botocore#1.40 app/message\r\n"
    b"Authorization: AWS4-HMAC-SHA256 Credential=t/20261203/us-east-1/dynamodb/aws4_request, "
    b"SignedHeaders=host;x-amz-date, Signature=ab\r\nContent-Length: 2\r\n\r\n",
    b"A: b: c\r\nA:  d  \r\nE:\r\nx-lower: 1\n\n",
    b"Folded: one\r\n two\r\n\r\n",  # obsolete line folding: the parser's
    b"No colon here\r\nB: c\r\n\r\n",
    b"Bad Name: v\r\n\r\n",
    b": no name\r\n\r\n",
    b"From x: y\r\n\r\n",
    b"Unterminated: yes\r\n",
    b"\r\n",
    b"",
    b"Latin: caf\xe9\r\n\r\n",
]


def both(block: bytes) -> tuple[dict[str, object], dict[str, object]]:
    import http.client
    import io

    fast = awsserver.parse_headers(io.BytesIO(block + b"body that follows"))
    email = http.client.parse_headers(io.BytesIO(block + b"body that follows"))
    return vars(fast), vars(email)


def test_a_header_block_parses_as_the_email_parser_parses_it() -> None:
    """The fast parse builds the message the email package builds: names, values, defects, payload."""
    for block in BLOCKS:
        fast, email = both(block)
        assert repr(fast) == repr(email), block


LINE = st.characters(min_codepoint=0x09, max_codepoint=0xFF, exclude_characters="\r\n")  # within a line


@given(
    st.lists(
        st.one_of(
            st.tuples(st.from_regex(r"[A-Za-z0-9-]{1,12}", fullmatch=True), st.text(LINE)),
            st.tuples(st.text(LINE, max_size=12), st.text(LINE)),  # names the parser may refuse
        ),
        max_size=8,
    )
)
def test_any_header_block_parses_as_the_email_parser_parses_it(fields: list[tuple[str, str]]) -> None:
    block = b"".join(f"{name}:{value}\r\n".encode("latin-1") for name, value in fields) + b"\r\n"
    fast, email = both(block)
    assert repr(fast) == repr(email)


def test_the_request_line_is_formatted_only_when_it_is_logged(caplog: Any) -> None:
    handler = awsserver.keep_alive_handler()
    request = object.__new__(handler)  # no socket: only what log_request reads
    request.path, request.command, request.request_version = "/", "POST", "HTTP/1.1"
    request.client_address = ("127.0.0.1", 1)
    request.requestline = "POST / HTTP/1.1"
    stamps: list[int] = []
    request.log_date_time_string = lambda: stamps.append(1) or "now"
    logger = logging.getLogger("werkzeug")
    level = logger.level
    try:
        logger.setLevel(logging.ERROR)
        request.log_request(200, 12)
        assert stamps == []
        logger.setLevel(logging.INFO)
        with caplog.at_level(logging.INFO, logger="werkzeug"):
            request.log_request(200, 12)
        assert stamps == [1] and '"POST / HTTP/1.1" 200 12' in caplog.text
    finally:
        logger.setLevel(level)
