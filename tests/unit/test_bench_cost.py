"""The bench's cost model (bench/cost.py) and the capacity the metered moto bills (bench/meter.py)."""

from __future__ import annotations

from typing import Any

import pytest

from bench import cost, meter


@pytest.fixture
def prices() -> dict[str, Any]:
    return cost.load_prices()


def test_the_price_list_is_dated_and_complete(prices: dict[str, Any]) -> None:
    assert prices["as_of"] and prices["region"] == "us-east-1"
    for service in ("lambda", "dynamodb", "kinesis", "apigateway", "sqs", "cloudwatch", "xray"):
        assert prices[service]["source"].startswith("https://aws.amazon.com/")


def test_one_unit_of_each_dimension_costs_its_price(prices: dict[str, Any]) -> None:
    usage = cost.Usage(
        lambda_requests=1,
        lambda_gb_seconds=1,
        dynamodb_rru=1,
        dynamodb_wru=1,
        kinesis_ingested_gb=1,
        kinesis_retrieved_gb=1,
        ws_messages=1,
        ws_connection_minutes=1,
        sqs_requests=1,
        log_gb=1,
        xray_traces=1,
    )
    c = cost.per_million(usage, prices)
    m = 1_000_000
    assert c["Lambda"] == pytest.approx(m * (0.20e-6 + 0.0000133334))
    assert c["DynamoDB"] == pytest.approx(m * (0.125e-6 + 0.625e-6))
    assert c["Kinesis"] == pytest.approx(m * (0.08 + 0.04))
    assert c["API Gateway"] == pytest.approx(m * (1e-6 + 0.25e-6))
    assert c["SQS"] == pytest.approx(0.40)
    assert c["CloudWatch Logs"] == pytest.approx(m * 0.5)
    assert c["X-Ray"] == pytest.approx(5.0)
    assert cost.per_million(cost.Usage(), prices) == dict.fromkeys(c, 0.0)


def test_lambda_rounds_each_invocation_up_to_the_millisecond() -> None:
    assert cost.gb_seconds([0.2, 1.0, 1.5], 1024) == pytest.approx(4 / 1000)
    assert cost.gb_seconds([10.0], 512) == pytest.approx(0.005)


def test_kinesis_rounds_each_record_up_to_a_kilobyte() -> None:
    assert cost.kinesis_gb(1024**2, 240) == pytest.approx(1.0)
    assert cost.kinesis_gb(1024**2, 1500) == pytest.approx(2.0)


def test_usage_divides_a_runs_totals_by_its_actions() -> None:
    totals = cost.RunTotals(
        actions=100,
        invocations={"message": 100, "processor": 10},
        gb_seconds=2.0,
        rru=50,
        wru=30,
        stream_records=100,
        record_bytes=250,
        inbound_frames=100,
        posts=40,
        connection_minutes=5,
        sqs_requests=0,
        log_bytes=1000,
        xray_sampling=0.05,
    )
    u = cost.usage_of(totals)
    assert u.lambda_requests == pytest.approx(1.1)
    assert u.lambda_gb_seconds == pytest.approx(0.02)
    assert (u.dynamodb_rru, u.dynamodb_wru) == (0.5, 0.3)
    assert u.ws_messages == pytest.approx(2.4)  # in, the route response out, and 0.4 pushes
    assert u.ws_connection_minutes == pytest.approx(0.05)
    assert u.kinesis_ingested_gb == pytest.approx(1024 / 1024**3)
    assert u.log_gb == pytest.approx((1000 + cost.PLATFORM_LOG_BYTES * 110) / 1024**3 / 100)
    assert u.xray_traces == pytest.approx(0.055)
    with pytest.raises(ValueError):
        cost.usage_of(cost.RunTotals(**{**totals.__dict__, "actions": 0}))


def test_dynamodb_capacity_rules() -> None:
    assert meter.write_units(0) == 1  # a delete of nothing still costs a unit
    assert meter.write_units(1024) == 1
    assert meter.write_units(1025) == 2
    assert meter.read_units(4096, consistent=True) == 1
    assert meter.read_units(4097, consistent=True) == 2
    assert meter.read_units(100, consistent=False) == 0.5
    assert meter.query_units([3000, 3000], consistent=False) == 1.0  # the sum is rounded, not each item


def test_index_entries_cost_a_write_per_change_and_two_for_a_new_key() -> None:
    assert meter.index_write_units(None, None) == 0
    assert meter.index_write_units(None, (("k", 1), 100)) == 1  # added
    assert meter.index_write_units((("k", 1), 100), None) == 1  # removed
    assert meter.index_write_units((("k", 1), 100), (("k", 1), 2000)) == 2  # same key, new content
    assert meter.index_write_units((("k", 1), 100), (("k", 2), 100)) == 2  # key moved: delete + put


class _Index:
    schema_key_attrs = ("shardKey", "score")


def test_a_score_update_bills_the_item_and_both_halves_of_the_index_move() -> None:
    table = type("T", (), {"global_indexes": [_Index()]})()
    before = (300, [(("s#1", "10"), 60, {"score": 10})])
    after = (310, [(("s#1", "25"), 60, {"score": 25})])
    assert meter._write_cost(table, before, after) == 1 + 2
    assert meter._write_cost(table, None, after) == 1 + 1  # a new row: one index put
    unchanged = (2500, [(("s#1", "10"), 60, {"score": 10})])
    assert meter._write_cost(table, before, unchanged) == 3  # billed on the larger image; index untouched
