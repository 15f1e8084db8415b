"""Which embedded process an AWS fault rule goes to (local.faults): the tables have a moto process of
their own, everything else is on the other."""

from __future__ import annotations

import pytest

from local.faults import endpoints_for

AWS, TABLES = "http://127.0.0.1:4566", "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    ("rule", "moto_engine", "dynamodb_local"),
    [
        ({"service": "dynamodb"}, [TABLES], []),
        ({"service": "DynamoDBStreams"}, [TABLES], []),
        ({"service": "kinesis"}, [AWS], [AWS]),
        ({"service": "sqs", "operation": "SendMessage"}, [AWS], [AWS]),
        ({"operation": "PutItem"}, [AWS, TABLES], [AWS]),  # no service: every process, each counting
    ],
)
def test_a_rule_goes_to_the_process_of_its_service(
    rule: dict[str, str], moto_engine: list[str], dynamodb_local: list[str]
) -> None:
    assert endpoints_for(rule, AWS, TABLES) == moto_engine
    # On DynamoDB Local no process of ours serves the tables: a table rule goes nowhere (refused).
    assert endpoints_for(rule, AWS, None) == dynamodb_local
    assert endpoints_for(rule, None, None) == []
