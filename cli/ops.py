"""Operational commands: rebuild a match from its event log, inspect and redrive the dead-letter queue.

They use the same stores as the Lambdas, against the endpoint in AWS_ENDPOINT_URL (the embedded one by
default for the local stage) or the account's default endpoints. The tables are read where
AWS_ENDPOINT_URL_DYNAMODB says, or, for the local stack, on the tables' own port (8000, on either engine).
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import asdict
from typing import Any

from backend.game import modes, rules
from backend.store.events import EventLog
from backend.store.matches import MatchStore
from local import slsconfig

LOCAL_ENDPOINT = "http://127.0.0.1:4566"
LOCAL_TABLES = "http://127.0.0.1:8000"  # the local stack's tables, on either engine


class Ops:
    def __init__(
        self, service: slsconfig.Service, endpoint: str | None, dynamodb_endpoint: str | None = None
    ) -> None:
        import boto3

        self.service = service
        kw: dict[str, Any] = {"region_name": service.region}
        if endpoint:
            kw["endpoint_url"] = endpoint
        if endpoint and service.stage == "local":
            kw.update(aws_access_key_id="testing", aws_secret_access_key="testing")
        ddb_kw = {**kw, "endpoint_url": dynamodb_endpoint} if dynamodb_endpoint else kw
        self._ddb = boto3.client("dynamodb", **ddb_kw)
        self._kinesis = boto3.client("kinesis", **kw)
        self._sqs = boto3.client("sqs", **kw)
        names = service.custom["names"]
        self.matches = MatchStore(self._ddb, names["matches"])
        self.events = EventLog(self._ddb, names["events"])
        self.stream = names["stream"]
        self.dlq = names["dlq"]

    @classmethod
    def from_env(cls, config: str = "serverless.yml", stage: str = "local") -> Ops:
        service = slsconfig.load(config, stage)
        local = stage == "local"
        endpoint = os.environ.get("AWS_ENDPOINT_URL") or (LOCAL_ENDPOINT if local else None)
        # The local stack serves its tables on a port of their own, whichever the engine; an endpoint
        # set in AWS_ENDPOINT_URL (LocalStack) serves them with the rest.
        embedded = local and not os.environ.get("AWS_ENDPOINT_URL")
        dynamodb = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or (LOCAL_TABLES if embedded else None)
        return cls(service, endpoint, dynamodb)

    # --- replay -------------------------------------------------------------------------------------

    def replay(self, match_id: str) -> tuple[bool, dict[str, Any], dict[str, Any]]:
        """Rebuilds the match from its event log with the same rules; returns (equal, rebuilt, stored)."""
        stored = self.matches.load(match_id)
        state = rules.new_match(match_id, stored.match.mode)
        for version, event in self.events.read(match_id):
            state, outcome = rules.apply(state, event)
            if not isinstance(outcome, rules.Applied) or state.version != version:
                raise RuntimeError(f"event log of {match_id} does not replay at version {version}: {outcome}")
        rebuilt, current = asdict(state), asdict(stored.match)
        return rebuilt == current, rebuilt, current

    def replay_many(
        self, using: modes.Modes, *, status: str = "finished", mode: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Re-runs the newest `limit` stored matches of `status` (from the byStatus index, never a scan)
        through the modes `using` (this stage's, or with a mode's plug-in replaced: a rules change
        checked against last week's matches before it ships). One report per match; `differs` when
        the result (status, winner, what each player is credited) is not the stored one."""
        reports: list[dict[str, Any]] = []
        cursor = None
        while len(reports) < limit:
            found, cursor = self.matches.by_status(status, mode=mode, limit=min(100, limit), cursor=cursor)
            for summary in found[: limit - len(reports)]:
                reports.append(self.replay_one(summary["matchId"], using))
            if cursor is None:
                break
        return reports

    def replay_one(self, match_id: str, using: modes.Modes) -> dict[str, Any]:
        stored = self.matches.load(match_id).match
        rules_of = using[stored.mode]
        state = rules_of.initial(match_id)
        refused: list[dict[str, Any]] = []
        for _, event in self.events.read(match_id):
            state, outcome = rules_of.apply(state, event)
            if isinstance(outcome, rules.Refused):
                refused.append({"eventId": event.eventId, "actionId": event.actionId, "code": outcome.code})
        before, after = _result(rules_of, stored), _result(rules_of, state)
        return {
            "matchId": match_id,
            "mode": stored.mode,
            "differs": before != after,
            "stored": before,
            "replayed": after,
            # Events the stored match applied that these rules refuse (a stricter bound, a new rule).
            "refused": refused,
        }

    # --- dead-letter queue -------------------------------------------------------------------------

    def _queue_url(self) -> str:
        return str(self._sqs.get_queue_url(QueueName=self.dlq)["QueueUrl"])

    def dlq_messages(self, limit: int = 100) -> list[dict[str, Any]]:
        """Peeks at the queue: messages become visible again at once."""
        url = self._queue_url()
        seen: dict[str, dict[str, Any]] = {}
        for _ in range(max(1, limit // 10) + 2):
            out = self._sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0
            )
            for m in out.get("Messages", []):
                seen.setdefault(m["MessageId"], m)
            if not out.get("Messages") or len(seen) >= limit:
                break
        return list(seen.values())[:limit]

    @staticmethod
    def describe(message: dict[str, Any]) -> dict[str, Any]:
        body = json.loads(message["Body"])
        if body.get("kind") == "poison":
            k = body["record"]["kinesis"]
            return {
                "kind": "poison",
                "reason": body["reason"],
                "partitionKey": k["partitionKey"],
                "sequenceNumber": k["sequenceNumber"],
            }
        info = body.get("KinesisBatchInfo", {})
        return {
            "kind": "batch",
            "reason": body.get("requestContext", {}).get("condition"),
            "shardId": info.get("shardId"),
            "startSequenceNumber": info.get("startSequenceNumber"),
            "endSequenceNumber": info.get("endSequenceNumber"),
            "batchSize": info.get("batchSize"),
        }

    def _records_of_batch(self, info: dict[str, Any]) -> list[tuple[str, bytes]]:
        it = self._kinesis.get_shard_iterator(
            StreamName=self.stream,
            ShardId=info["shardId"],
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            StartingSequenceNumber=info["startSequenceNumber"],
        )["ShardIterator"]
        end = int(info["endSequenceNumber"])
        found: list[tuple[str, bytes]] = []
        while it:
            out = self._kinesis.get_records(ShardIterator=it, Limit=1000)
            for r in out["Records"]:
                if int(r["SequenceNumber"]) > end:
                    return found
                found.append((r["PartitionKey"], r["Data"]))
            if not out["Records"]:
                return found
            it = out.get("NextShardIterator")
        return found

    def redrive(self, limit: int = 100) -> int:
        """Puts dead-lettered records back on the stream, then deletes their messages. Safe to repeat:
        the processor drops an action id it has already applied."""
        url = self._queue_url()
        moved = 0
        for message in self.dlq_messages(limit):
            body = json.loads(message["Body"])
            if body.get("kind") == "poison" and "data" in body["record"]["kinesis"]:
                k = body["record"]["kinesis"]
                records = [(k["partitionKey"], base64.b64decode(k["data"]))]
            elif body.get("kind") == "poison":  # too large for SQS: read it back from the stream
                k = body["record"]["kinesis"]
                shard = body["record"]["eventID"].split(":", 1)[0]
                info = {
                    "shardId": shard,
                    "startSequenceNumber": k["sequenceNumber"],
                    "endSequenceNumber": k["sequenceNumber"],
                }
                records = self._records_of_batch(info)
            else:
                records = self._records_of_batch(body["KinesisBatchInfo"])
            for key, data in records:
                self._kinesis.put_record(StreamName=self.stream, PartitionKey=key, Data=data)
            self._sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            moved += len(records)
        return moved


def _result(mode: rules.GameMode, match: rules.Match) -> dict[str, Any]:
    """What a match's result is, as players and boards see it."""
    return {"status": match.status, "winner": match.winner, "credits": mode.credits(match)}
