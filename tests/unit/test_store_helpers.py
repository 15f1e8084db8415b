"""The stores' two DynamoDB helpers: every page of a Query or Scan, and a conditional write whose
failed condition is an answer, not an exception."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from backend.store import ConditionFailed, conditional, pages


def client_error(code: str, item: dict[str, Any] | None = None) -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": code}}
    if item is not None:
        response["Item"] = item
    return ClientError(response, "UpdateItem")  # type: ignore[arg-type]


def test_pages_follow_last_evaluated_key_to_the_end() -> None:
    seen: list[dict[str, Any]] = []
    answers = [
        {"Items": [1, 2], "LastEvaluatedKey": {"k": 2}},
        {"Items": [3], "LastEvaluatedKey": {"k": 3}},
        {"Items": []},
    ]

    def query(**request: Any) -> dict[str, Any]:
        seen.append(request)
        return answers[len(seen) - 1]

    items = [i for page in pages(query, TableName="t", Limit=2) for i in page["Items"]]
    assert items == [1, 2, 3]
    assert seen == [
        {"TableName": "t", "Limit": 2},
        {"TableName": "t", "Limit": 2, "ExclusiveStartKey": {"k": 2}},
        {"TableName": "t", "Limit": 2, "ExclusiveStartKey": {"k": 3}},
    ]


def test_a_failed_condition_is_an_answer_with_the_old_item() -> None:
    def update(**request: Any) -> dict[str, Any]:
        raise client_error("ConditionalCheckFailedException", {"score": {"N": "5"}})

    assert conditional(update, Key={}) == ConditionFailed({"score": {"N": "5"}})


def test_a_written_item_returns_the_answer() -> None:
    assert conditional(lambda **r: {"Attributes": r}, Key={"k": 1}) == {"Attributes": {"Key": {"k": 1}}}


def test_any_other_error_is_raised_as_it_came() -> None:
    def update(**request: Any) -> dict[str, Any]:
        raise client_error("ProvisionedThroughputExceededException")

    with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
        conditional(update, Key={})
