"""The embedded AWS endpoint: moto's server as a child process, with the resources of serverless.yml.

When `AWS_ENDPOINT_URL` is set (e.g. LocalStack, which serves every service on one endpoint), nothing is
embedded: the same resources are created there if missing, and the same code runs against it. (A real
account has one endpoint per service: deploy to it with serverless.yml instead, docs/deploy.md.)

The tables can live on a second engine, DynamoDB Local (local.dynamodb_local): `Endpoints` says which
endpoint serves which service, and every client of the stack is built from it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.slsconfig import Service

log = logging.getLogger("local.aws")

# moto accepts any credentials; these keep botocore from looking for real ones.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def wait_for_port(host: str, port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"embedded AWS endpoint exited with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


class EmbeddedMoto:
    """moto in a child process (local.awsserver: one request at a time, with change feeds), so its work
    does not share the gateway's interpreter."""

    def __init__(self, host: str = "127.0.0.1", port: int = 4566, background: tuple[str, ...] = ()) -> None:
        self.host = host
        self.port = port
        self.background = background  # app ids whose requests give way (local.awsserver)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        with socket.socket() as s:
            if s.connect_ex((self.host, self.port)) == 0:
                raise RuntimeError(
                    f"port {self.port} is already in use: another local stack or LocalStack is running. "
                    "Stop it, or set AWS_ENDPOINT_URL to use it instead of the embedded endpoint."
                )
        env = {**os.environ, **FAKE_CREDENTIALS, "MOTO_ALLOW_NONEXISTENT_REGION": "true"}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local.awsserver",
                "-H",
                self.host,
                "-p",
                str(self.port),
                "--background",
                ",".join(self.background),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=Path(__file__).resolve().parent.parent,
        )
        wait_for_port(self.host, self.port, 30, self.proc)
        log.info("embedded AWS endpoint (moto) on %s", self.url)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


DYNAMODB_SERVICES = frozenset({"dynamodb", "dynamodbstreams"})


@dataclass(frozen=True)
class Endpoints:
    """Where the stack's AWS services are served. `default` serves everything (the embedded moto,
    LocalStack; None: the account's own endpoints) except DynamoDB and DynamoDB Streams when `dynamodb`
    is set (DynamoDB Local, which serves both on its one port)."""

    default: str | None
    dynamodb: str | None = None
    # The embedded moto processes (local.awsserver), whose /_local/changes feeds exist for what each
    # serves only.
    change_feeds: tuple[str, ...] = ()

    def of(self, service: str) -> str | None:
        """The endpoint of a boto3 service name ("dynamodb", "dynamodbstreams", "kinesis", ...)."""
        if service in DYNAMODB_SERVICES and self.dynamodb:
            return self.dynamodb
        return self.default

    def feeds_of(self, service: str) -> str | None:
        """The change-feed server that sees the writes of `service`, or None: then poll."""
        url = self.of(service)
        return url if url is not None and url in self.change_feeds else None

    def env(self) -> dict[str, str]:
        """The standard variables that point every AWS SDK client at these endpoints. The per-service
        ones are always set, so a value left in the shell cannot send DynamoDB elsewhere."""
        out: dict[str, str] = {}
        for name, service in (
            ("AWS_ENDPOINT_URL", "kinesis"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "dynamodb"),
            ("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", "dynamodbstreams"),
        ):
            url = self.of(service)
            if url:
                out[name] = url
        return out


def _boto(service: str, endpoint: str | None, region: str) -> Any:
    import boto3

    return boto3.session.Session().client(service, endpoint_url=endpoint, region_name=region)


_TABLE_KEYS = (
    "TableName",
    "AttributeDefinitions",
    "KeySchema",
    "BillingMode",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "ProvisionedThroughput",
    "StreamSpecification",
)


def create_resources(service: Service, endpoint: str | Endpoints | None, *, ttl: bool = True) -> None:
    """Creates every table, stream and queue of serverless.yml's resources, skipping existing ones.
    ttl=False leaves the tables' TTL off (for tests with fixed dates: DynamoDB Local deletes an expired
    item within seconds, where AWS takes up to days)."""
    endpoints = endpoint if isinstance(endpoint, Endpoints) else Endpoints(endpoint)
    region = service.region
    ddb = _boto("dynamodb", endpoints.of("dynamodb"), region)
    existing = set(ddb.list_tables()["TableNames"])
    for props in service.resources_of_type("AWS::DynamoDB::Table").values():
        name = props["TableName"]
        if name in existing:
            continue
        spec = {k: props[k] for k in _TABLE_KEYS if k in props}
        if "StreamSpecification" in spec:  # CloudFormation's has only the view type; the API's says so
            spec["StreamSpecification"] = {"StreamEnabled": True, **spec["StreamSpecification"]}
        ddb.create_table(**spec)
        ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2})
        expiry = props.get("TimeToLiveSpecification")
        if ttl and expiry and expiry.get("Enabled"):
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=expiry)
        log.info("table %s", name)

    kinesis = _boto("kinesis", endpoints.of("kinesis"), region)
    streams = set(kinesis.list_streams()["StreamNames"])
    for props in service.resources_of_type("AWS::Kinesis::Stream").values():
        name = props["Name"]
        if name in streams:
            continue
        mode = (props.get("StreamModeDetails") or {}).get("StreamMode", "PROVISIONED")
        if mode == "ON_DEMAND":
            kinesis.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
        else:
            kinesis.create_stream(StreamName=name, ShardCount=int(props.get("ShardCount", 1)))
        kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.2})
        log.info("stream %s", name)

    sqs = _boto("sqs", endpoints.of("sqs"), region)
    queues = service.resources_of_type("AWS::SQS::Queue").values()
    # A queue's dead-letter queue first: SQS refuses a redrive policy naming a queue that does not exist.
    for props in sorted(queues, key=lambda p: "RedrivePolicy" in p):
        sqs.create_queue(QueueName=props["QueueName"], Attributes=_queue_attributes(service, sqs, props))
        log.info("queue %s", props["QueueName"])


def _queue_attributes(service: Service, sqs: Any, props: dict[str, Any]) -> dict[str, str]:
    """The attributes of an AWS::SQS::Queue that change how its messages are delivered (the others, such
    as encryption, are not emulated). create_queue is idempotent for identical attributes."""
    from local.slsconfig import physical_name

    out: dict[str, str] = {}
    for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds"):
        if key in props:
            out[key] = str(props[key])
    redrive = props.get("RedrivePolicy")
    if redrive:
        target = redrive["deadLetterTargetArn"]
        # The endpoint's own ARN of the dead-letter queue (its account is the endpoint's, not ours).
        url = sqs.get_queue_url(QueueName=physical_name(service, target["Fn::GetAtt"][0]))["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        policy = {"deadLetterTargetArn": arn, "maxReceiveCount": int(redrive["maxReceiveCount"])}
        out["RedrivePolicy"] = json.dumps(policy)
    return out
