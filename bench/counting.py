"""Reading the AWS call counts the Lambda workers return (local.worker.AwsCallCounter's flat keys):

dynamodb.UpdateItem@gamebackend-local-matches   calls (DynamoDB: per table)
kinesis.PutRecord                               calls
error:<call>:<code>                             calls that failed with that code
rcu@<table>, wcu@<table>                        ConsumedCapacity summed per table
"""

from __future__ import annotations

from dataclasses import dataclass, field

DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
DYNAMODB_READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
# A failed conditional write carries no ConsumedCapacity, but DynamoDB bills it: at least 1 unit.
FAILED_WRITE_UNITS = 1.0


def short_table(name: str) -> str:
    """gamebackend-local-leaderboards -> leaderboards"""
    return name.rsplit("-", 1)[-1]


def merge(*counts: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for c in counts:
        for k, v in c.items():
            out[k] = out.get(k, 0) + v
    return out


def diff(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


@dataclass
class Calls:
    """Counts of one run, read back."""

    by_call: dict[str, float] = field(default_factory=dict)  # "dynamodb.UpdateItem" (all tables)
    by_table: dict[str, float] = field(default_factory=dict)  # "dynamodb.UpdateItem leaderboards"
    errors: dict[str, float] = field(
        default_factory=dict
    )  # "dynamodb.UpdateItem ConditionalCheckFailedException"
    rru: dict[str, float] = field(default_factory=dict)  # per table
    wru: dict[str, float] = field(default_factory=dict)

    def total(self, service: str, operations: frozenset[str] | None = None) -> float:
        return sum(
            n
            for call, n in self.by_call.items()
            if call.startswith(service + ".") and (operations is None or call.split(".", 1)[1] in operations)
        )

    @property
    def dynamodb_requests(self) -> float:
        return self.total("dynamodb")

    @property
    def dynamodb_writes(self) -> float:
        return self.total("dynamodb", DYNAMODB_WRITES)

    @property
    def dynamodb_reads(self) -> float:
        return self.total("dynamodb", DYNAMODB_READS)

    @property
    def failed_writes(self) -> float:
        return sum(
            n
            for key, n in self.errors.items()
            if key.startswith("dynamodb.") and key.split(" ")[0].split(".", 1)[1] in DYNAMODB_WRITES
        )

    @property
    def read_units(self) -> float:
        return sum(self.rru.values())

    @property
    def write_units(self) -> float:
        return sum(self.wru.values()) + self.failed_writes * FAILED_WRITE_UNITS


def parse(counts: dict[str, float]) -> Calls:
    out = Calls()

    def add(d: dict[str, float], key: str, n: float) -> None:
        d[key] = d.get(key, 0) + n

    for key, n in counts.items():
        if key.startswith("error:"):
            _, call, code = key.split(":", 2)
            add(out.errors, f"{call.split('@')[0]} {code}", n)
        elif key.startswith(("rcu@", "wcu@")):
            add(out.rru if key.startswith("rcu@") else out.wru, short_table(key[4:]), n)
        else:
            call, _, tables = key.partition("@")
            add(out.by_call, call, n)
            if tables:
                add(out.by_table, f"{call} {','.join(short_table(t) for t in tables.split(','))}", n)
    return out


def per_action(calls: Calls, actions: float) -> dict[str, float]:
    """The headline figures, per action."""
    if actions <= 0:
        raise ValueError("no actions")
    return {
        "dynamodb_requests": calls.dynamodb_requests / actions,
        "dynamodb_reads": calls.dynamodb_reads / actions,
        "dynamodb_writes": calls.dynamodb_writes / actions,
        "dynamodb_rru": calls.read_units / actions,
        "dynamodb_wru": calls.write_units / actions,
        "kinesis_puts": calls.total("kinesis", frozenset({"PutRecord", "PutRecords"})) / actions,
        "posts": calls.by_call.get("apigatewaymanagementapi.PostToConnection", 0) / actions,
        "sqs_requests": calls.total("sqs") / actions,
    }


def per_thousand(values: dict[str, float], actions: float) -> dict[str, float]:
    return {k: round(v * 1000 / actions, 2) for k, v in sorted(values.items())}
