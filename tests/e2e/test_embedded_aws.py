"""The embedded AWS endpoint under concurrency: nothing acknowledged is lost, doubled or passed twice.

moto's own server runs each request on a thread over models that are not thread-safe: 8 threads x 250
PutRecord to one shard once returned 2,000 acknowledgements for 1,999 records, and two writers could
both pass one condition. These tests hammer the endpoint the local stack embeds and count.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from local.aws import FAKE_CREDENTIALS, EmbeddedMoto
from local.awsserver import SerializedAws, changed_keys
from tests.e2e.conftest import free_port

THREADS = 8


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    moto = EmbeddedMoto("127.0.0.1", free_port())
    moto.start()
    try:
        yield moto.url
    finally:
        moto.stop()


def _client(service: str, url: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session(
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    ).client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        # No client retries: a retried request could hide a lost or doubled one.
        config=Config(
            max_pool_connections=THREADS * 2, retries={"total_max_attempts": 1, "mode": "standard"}
        ),
    )


def _read_all(kinesis: Any, stream: str) -> list[dict[str, Any]]:
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    records: list[dict[str, Any]] = []
    while True:
        out = kinesis.get_records(ShardIterator=iterator, Limit=10000)
        if not out["Records"]:
            return records
        records += out["Records"]
        iterator = out["NextShardIterator"]


def test_concurrent_put_record_keeps_every_acknowledged_record_once(endpoint: str) -> None:
    kinesis = _client("kinesis", endpoint)
    stream = f"hammer-{time.time_ns()}"
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    per_thread = 250

    def put(thread: int) -> list[str]:
        return [
            kinesis.put_record(StreamName=stream, PartitionKey="one-shard", Data=f"{thread}:{i}".encode())[
                "SequenceNumber"
            ]
            for i in range(per_thread)
        ]

    with ThreadPoolExecutor(THREADS) as pool:
        acknowledged = [seq for seqs in pool.map(put, range(THREADS)) for seq in seqs]
    records = _read_all(kinesis, stream)

    assert len(acknowledged) == THREADS * per_thread
    assert len(set(acknowledged)) == len(acknowledged), "two acknowledgements share a sequence number"
    assert sorted(r["SequenceNumber"] for r in records) == sorted(acknowledged)
    assert {r["Data"] for r in records} == {
        f"{t}:{i}".encode() for t in range(THREADS) for i in range(per_thread)
    }
    sequences = [int(r["SequenceNumber"]) for r in records]
    assert sequences == sorted(sequences), "a shard's records come back in sequence order"


def test_concurrent_conditional_writes_let_exactly_one_writer_pass(endpoint: str) -> None:
    ddb = _client("dynamodb", endpoint)
    table = f"hammer-{time.time_ns()}"
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    rounds = 100
    for r in range(rounds):
        key = {"k": {"S": f"round-{r}"}}
        ddb.put_item(TableName=table, Item={**key, "version": {"N": "0"}})
        winners: list[int] = []
        start = threading.Barrier(THREADS)

        def write(
            writer: int,
            key: dict[str, Any] = key,
            winners: list[int] = winners,
            start: threading.Barrier = start,
        ) -> None:
            start.wait()
            try:
                ddb.update_item(
                    TableName=table,
                    Key=key,
                    UpdateExpression="SET version = :next, writer = :w",
                    ConditionExpression="version = :read",
                    ExpressionAttributeValues={
                        ":next": {"N": "1"},
                        ":read": {"N": "0"},
                        ":w": {"N": str(writer)},
                    },
                )
                winners.append(writer)
            except ddb.exceptions.ConditionalCheckFailedException:
                pass

        threads = [threading.Thread(target=write, args=(w,)) for w in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        item = ddb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
        assert len(winners) == 1, f"round {r}: {len(winners)} writers passed one condition"
        assert item["writer"]["N"] == str(winners[0]), f"round {r}: the stored write is not the winner's"


def _changes(endpoint: str, key: str, since: int, wait: float) -> int:
    url = f"{endpoint}/_local/changes?key={key}&since={since}&wait={wait}"
    with urllib.request.urlopen(url, timeout=wait + 10) as answer:
        body = json.loads(answer.read())
    assert body["key"] == key
    return int(body["version"])


def test_change_feed_wakes_a_waiter_on_the_shard_that_was_written(endpoint: str) -> None:
    kinesis = _client("kinesis", endpoint)
    stream = f"feed-{time.time_ns()}"
    kinesis.create_stream(StreamName=stream, ShardCount=2)
    shards = [s["ShardId"] for s in kinesis.list_shards(StreamName=stream)["Shards"]]
    put = kinesis.put_record(StreamName=stream, PartitionKey="k", Data=b"x")
    written, other = put["ShardId"], next(s for s in shards if s != put["ShardId"])

    assert _changes(endpoint, f"kinesis/{stream}/{written}", since=0, wait=5) == 1
    assert _changes(endpoint, f"kinesis/{stream}/{other}", since=0, wait=0.2) == 0  # timed out unchanged

    woken: list[int] = []
    waiter = threading.Thread(
        target=lambda: woken.append(_changes(endpoint, f"kinesis/{stream}/{written}", since=1, wait=20))
    )
    waiter.start()
    kinesis.put_records(StreamName=stream, Records=[{"PartitionKey": "k", "Data": b"y"}])
    waiter.join(30)
    assert woken == [2]


def test_a_subscribed_shards_feed_pushes_the_records_after_a_sequence_number(endpoint: str) -> None:
    """With `after`, the answer carries the shard's records after that sequence number, as
    GetRecords would list them (enhanced fan-out's push): the consumer needs no read of its own."""
    kinesis = _client("kinesis", endpoint)
    stream = f"push-{time.time_ns()}"
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    sequences = [
        kinesis.put_record(StreamName=stream, PartitionKey="k", Data=f"r{n}".encode())["SequenceNumber"]
        for n in range(3)
    ]
    key = f"kinesis/{stream}/shardId-000000000000"
    # since=2: the third write's bump may lag its answer by a moment (it follows the answer out).
    url = f"{endpoint}/_local/changes?key={key}&since=2&wait=5&after={sequences[0]}"
    with urllib.request.urlopen(url, timeout=15) as answer:
        body = json.loads(answer.read())
    assert body["version"] == 3
    assert [(r["SequenceNumber"], base64.b64decode(r["Data"])) for r in body["records"]] == [
        (sequences[1], b"r1"),
        (sequences[2], b"r2"),
    ]
    listed = _read_all(kinesis, stream)
    assert [r["SequenceNumber"] for r in listed] == sequences  # the same records GetRecords lists
    # Unchanged since the caller's version: no records, whatever `after` says.
    with urllib.request.urlopen(
        f"{endpoint}/_local/changes?key={key}&since=3&wait=0.1&after=0", timeout=15
    ) as a:
        assert "records" not in json.loads(a.read())


def test_change_feed_counts_table_writes_but_not_reads_or_failures(endpoint: str) -> None:
    ddb = _client("dynamodb", endpoint)
    table = f"feed-{time.time_ns()}"
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    key = f"dynamodb/{table}"
    ddb.put_item(TableName=table, Item={"k": {"S": "a"}})
    ddb.get_item(TableName=table, Key={"k": {"S": "a"}})
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ddb.put_item(TableName=table, Item={"k": {"S": "a"}}, ConditionExpression="attribute_not_exists(k)")
    ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": {"k": {"S": "b"}}}}]})
    # A feed is bumped just after the writer's answer has gone out, so the last bump may lag the answer.
    assert _changes(endpoint, key, since=1, wait=5) == 2
    assert _changes(endpoint, key, since=2, wait=0.3) == 2  # and nothing else bumped it


def test_an_injected_fault_fails_the_matching_requests_as_aws_would(endpoint: str) -> None:
    from tests.e2e.conftest import faults

    ddb = _client("dynamodb", endpoint)
    table = f"faulty-{time.time_ns()}"
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    rule = {
        "operation": "PutItem",
        "resource": table,
        "code": "ProvisionedThroughputExceededException",
        "count": 2,
    }
    faults(endpoint, "POST", {**rule, "status": 400})
    for _ in range(2):
        with pytest.raises(ddb.exceptions.ProvisionedThroughputExceededException):
            ddb.put_item(TableName=table, Item={"k": {"S": "a"}})
    ddb.get_item(TableName=table, Key={"k": {"S": "a"}})  # another operation: untouched
    ddb.put_item(TableName=table, Item={"k": {"S": "a"}})  # the fault is used up
    assert ddb.get_item(TableName=table, Key={"k": {"S": "a"}})["Item"] == {"k": {"S": "a"}}
    assert faults(endpoint)["faults"] == []
    faults(endpoint, "POST", {"operation": "GetItem", "count": -1})
    with pytest.raises(ddb.exceptions.InternalServerError):
        ddb.get_item(TableName=table, Key={"k": {"S": "a"}})
    assert faults(endpoint, "DELETE")["faults"] == []
    assert ddb.get_item(TableName=table, Key={"k": {"S": "a"}})["Item"] == {"k": {"S": "a"}}


def test_the_stats_count_each_functions_requests_and_their_cpu(endpoint: str) -> None:
    import boto3
    from botocore.config import Config

    def calls() -> dict[tuple[str, str, str], dict[str, Any]]:
        with urllib.request.urlopen(f"{endpoint}/_local/stats", timeout=10) as answer:
            rows = json.loads(answer.read())["requests"]
        return {(r["service"], r["operation"], r["function"]): r for r in rows}

    before = calls()
    app = f"stats{time.time_ns()}"  # as the local runtime names each function: AWS_SDK_UA_APP_ID
    kinesis = boto3.session.Session(
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    ).client("kinesis", endpoint_url=endpoint, region_name="us-east-1", config=Config(user_agent_appid=app))
    for _ in range(3):
        kinesis.list_streams()
    after = calls()
    row = after[("Kinesis", "ListStreams", app)]
    assert row["count"] == 3 and row["cpuSeconds"] > 0
    assert 0 <= row["longestWait"] <= row["waitSeconds"]
    assert ("Kinesis", "ListStreams", app) not in before


def test_change_feed_refuses_a_request_without_a_key(endpoint: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{endpoint}/_local/changes?since=0", timeout=10)
    assert refused.value.code == 400


def test_the_middleware_never_lets_two_requests_into_moto_at_once() -> None:
    """The deterministic form of the tests above: moto's race needs luck to show, this does not."""
    inside = 0
    most = 0
    count = threading.Lock()

    def slow_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        nonlocal inside, most
        with count:
            inside += 1
            most = max(most, inside)
        time.sleep(0.002)
        with count:
            inside -= 1
        start_response("200 OK", [])
        return [b"{}"]

    app = SerializedAws(slow_app)

    def call(_: int) -> bytes:
        environ = {"PATH_INFO": "/", "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.GetItem"}
        return b"".join(app(environ, lambda *a: None))

    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(call, range(THREADS * 10)))
    assert answers == [b"{}"] * THREADS * 10
    assert most == 1


def test_the_cold_paths_requests_give_way_to_the_hot_paths() -> None:
    """A background request (its User-Agent names a cold-path function) waiting with a foreground one
    goes second; alone, it goes at once."""
    gate = threading.Event()
    served: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["X_NAME"] == "first":
            gate.wait(10)
        served.append(environ["X_NAME"])
        start_response("200 OK", [])
        return [b"{}"]

    middleware = SerializedAws(app, background=["projector"])

    def call(name: str, agent: str) -> None:
        environ = {"PATH_INFO": "/", "X_NAME": name, "HTTP_USER_AGENT": agent}
        b"".join(middleware(environ, lambda *a: None))

    hot, cold = "Boto3/1.43 app/message", "Boto3/1.43 app/projector"

    def until(waiting: tuple[int, int]) -> None:
        deadline = time.monotonic() + 10
        while middleware.lock.waiting() != waiting and time.monotonic() < deadline:
            time.sleep(0.001)
        assert middleware.lock.waiting() == waiting

    first = threading.Thread(target=call, args=("first", hot))
    first.start()
    while not middleware.lock._busy:  # it holds the lock
        time.sleep(0.001)
    background = threading.Thread(target=call, args=("background", cold))
    background.start()
    until((0, 1))
    foreground = threading.Thread(target=call, args=("foreground", hot))
    foreground.start()
    until((1, 1))
    gate.set()
    for t in (first, background, foreground):
        t.join(10)
    assert served == ["first", "foreground", "background"]
    call("alone", cold)
    assert served[-1] == "alone"


@pytest.mark.parametrize(
    ("service", "operation", "request_body", "response", "keys"),
    [
        ("Kinesis_20131202", "PutRecord", {"StreamName": "s"}, {"ShardId": "shard-1"}, {"kinesis/s/shard-1"}),
        (
            "Kinesis_20131202",
            "PutRecords",
            {"StreamARN": "arn:aws:kinesis:us-east-1:1:stream/s"},
            {"Records": [{"ShardId": "a"}, {"ShardId": "b"}, {"ShardId": "a"}, {"ErrorCode": "x"}]},
            {"kinesis/s/a", "kinesis/s/b"},
        ),
        ("Kinesis_20131202", "GetRecords", {"ShardIterator": "i"}, {"Records": []}, set()),
        ("DynamoDB_20120810", "UpdateItem", {"TableName": "t"}, {}, {"dynamodb/t"}),
        (
            "DynamoDB_20120810",
            "BatchWriteItem",
            {"RequestItems": {"t": [], "u": []}},
            {},
            {"dynamodb/t", "dynamodb/u"},
        ),
        (
            "DynamoDB_20120810",
            "TransactWriteItems",
            {"TransactItems": [{"Put": {"TableName": "t"}}, {"ConditionCheck": {"TableName": "u"}}]},
            {},
            {"dynamodb/t"},
        ),
        ("DynamoDB_20120810", "Query", {"TableName": "t"}, {}, set()),
    ],
)
def test_changed_keys(
    service: str, operation: str, request_body: dict[str, Any], response: dict[str, Any], keys: set[str]
) -> None:
    assert changed_keys(service, operation, request_body, response) == keys


def _raw_exchange(sock: Any, request: bytes) -> tuple[bytes, bytes]:
    """Sends one HTTP request on `sock` and reads exactly one answer: (head, body)."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    assert len(body) == length, (head, body)
    return head, body


def _dynamodb_request(target: str, payload: dict[str, Any], *, version: str = "HTTP/1.1") -> bytes:
    body = json.dumps(payload).encode()
    return (
        f"POST / {version}\r\nHost: localhost\r\nX-Amz-Target: DynamoDB_20120810.{target}\r\n"
        "Content-Type: application/x-amz-json-1.0\r\n"
        "Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, "
        f"SignedHeaders=host, Signature=0\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def test_one_connection_carries_many_requests_and_an_unread_body_never_leaks_into_the_next(
    endpoint: str,
) -> None:
    # werkzeug's development server closed every connection after one answer: a TCP connection and a
    # thread per AWS call. The endpoint keeps them alive, so it must consume each request body whole.
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(endpoint)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        for _ in range(3):
            head, body = _raw_exchange(sock, _dynamodb_request("ListTables", {}))
            assert head.startswith(b"HTTP/1.1 200"), head
            assert b"connection: close" not in head.lower()
            assert "TableNames" in json.loads(body)
        # A body moto never reads (the change feed's GET carries one here) is drained, not parsed as
        # the next request line.
        junk = b"x" * 5000
        sock.sendall(
            b"GET /_local/changes?key=nothing&since=0&wait=0 HTTP/1.1\r\nHost: localhost\r\n"
            + f"Content-Length: {len(junk)}\r\n\r\n".encode()
            + junk
        )
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, rest = data.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        while len(rest) < length:
            rest += sock.recv(65536)
        assert json.loads(rest[:length])["key"] == "nothing"
        head, body = _raw_exchange(sock, _dynamodb_request("ListTables", {}))
        assert head.startswith(b"HTTP/1.1 200") and "TableNames" in json.loads(body), (head, body)


def test_an_http_10_request_gets_its_answer_and_the_connection_closed(endpoint: str) -> None:
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(endpoint)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        head, body = _raw_exchange(sock, _dynamodb_request("ListTables", {}, version="HTTP/1.0"))
        assert b" 200 " in head.split(b"\r\n")[0] and "TableNames" in json.loads(body)
        assert sock.recv(1) == b""  # closed by the server
