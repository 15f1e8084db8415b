"""What each function calls: the one list the deployed IAM roles are checked against.

serverless.yml gives every function its own execution role (`role: <Function>Role`, defined under
resources.Resources). test_template.py reads the CloudFormation template that osls generates and
requires each role to grant exactly what `granted(function)` returns here: no action more, no action
less, and each on exactly these resources. A new AWS call in a handler means a line here and a
statement in serverless.yml, in the same change.

Resource names, as test_template.render() writes a policy's Resource:
  "ConnectionsTable"            a logical ID of the template (its ARN: Fn::GetAtt [X, Arn])
  "ConnectionsTable/index/*"    that table's secondary indexes (Fn::Sub ${X.Arn}/index/*)
  "kms:key/*"                   arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*
                                (any key of the account and region; its statement must carry the
                                Kinesis conditions test_template.py checks, which scope it to the stream)
  "execute-api:WebsocketsApi/{stage}/POST/@connections/*"   likewise, with the stage filled in
  "*"                           only for the actions in STAR_RESOURCE_ACTIONS
"""

from __future__ import annotations

CONNECTIONS = "ConnectionsTable"
MATCHES = "MatchesTable"
LEADERBOARDS = "LeaderboardsTable"
EVENTS = "EventsTable"
PROGRESS = "ProgressTable"
SAGA = "MatchEndSaga"
STREAM = "ActionStream"
CONSUMER = "ActionStreamConsumer"
MATCH_CHANGES = "MatchesTable/stream"  # Fn::GetAtt [MatchesTable, StreamArn]
DLQ = "ActionDeadLetterQueue"
PROJECTOR_DLQ = "ProjectorDeadLetterQueue"
TIMERS = "TimerQueue"
STREAM_KEY = "kms:key/*"
PUSH = "execute-api:WebsocketsApi/{stage}/POST/@connections/*"
JWT_SECRET = "ssm:parameter/gamebackend/{stage}/jwt-secret"
DISCONNECT = "execute-api:WebsocketsApi/{stage}/DELETE/@connections/*"
PROBE = "execute-api:WebsocketsApi/{stage}/GET/@connections/*"


def index(table: str) -> str:
    return f"{table}/index/*"


# What ending a connection costs (backend/sessions.py): the record forgotten, the player's other
# connections looked up (byPlayer) before a waiting seat is given back (the roster read and updated), and
# a `disconnect` record for the match.
ENDING = {
    "dynamodb:DeleteItem": {CONNECTIONS},
    "dynamodb:Query": {index(CONNECTIONS)},
    "dynamodb:GetItem": {MATCHES},
    "dynamodb:UpdateItem": {MATCHES},
    "kinesis:PutRecord": {STREAM},
    "kms:GenerateDataKey": {STREAM_KEY},
}


# Actions that AWS authorizes only on Resource "*" (no resource-level permissions). Nothing else may
# use "*".
STAR_RESOURCE_ACTIONS = frozenset(
    {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "kinesis:ListStreams",
        "dynamodb:ListStreams",
        "cloudwatch:GetMetricStatistics",
    }
)

# function (serverless.yml key) -> IAM action -> the resources it is granted on.
# Logging and tracing, which every function has, are added by granted().
CALLS: dict[str, dict[str, set[str]]] = {
    "authorizer": {
        "ssm:GetParameter": {JWT_SECRET},  # backend/config.py jwt_secret(), once per cold start
    },
    "connect": {
        **ENDING,  # an old connection of the player found already gone
        "dynamodb:PutItem": {CONNECTIONS},
        # The limit of connections per player: theirs (byPlayer), the oldest told and closed.
        "execute-api:ManageConnections": {PUSH, DISCONNECT},
    },
    "disconnect": ENDING,
    "message": {
        "dynamodb:GetItem": {CONNECTIONS, MATCHES, LEADERBOARDS},
        "dynamodb:BatchGetItem": {LEADERBOARDS},  # the boards' current seasons, their rank trees
        "dynamodb:PutItem": {CONNECTIONS, MATCHES},
        "dynamodb:UpdateItem": {CONNECTIONS, MATCHES},
        "dynamodb:Query": {
            CONNECTIONS,
            index(CONNECTIONS),
            MATCHES,
            index(MATCHES),
            LEADERBOARDS,
            index(LEADERBOARDS),
        },
        "kinesis:PutRecord": {STREAM},
        "kms:GenerateDataKey": {STREAM_KEY},
        "sqs:GetQueueUrl": {TIMERS},  # a connection that joins a match: its first presence probe
        "sqs:SendMessage": {TIMERS},
        "execute-api:ManageConnections": {PUSH, DISCONNECT},  # a flooding connection told and closed
    },
    "processor": {
        # The Kinesis event-source mapping reads the stream with the function's role, through the
        # enhanced fan-out consumer.
        "kinesis:DescribeStream": {STREAM},
        "kinesis:DescribeStreamSummary": {STREAM},
        "kinesis:GetRecords": {STREAM},
        "kinesis:GetShardIterator": {STREAM},
        "kinesis:ListShards": {STREAM},
        "kinesis:SubscribeToShard": {CONSUMER},
        "kinesis:DescribeStreamConsumer": {CONSUMER},
        "kinesis:ListStreams": {"*"},
        "kms:Decrypt": {STREAM_KEY},
        # The hot path: one read of the batch's matches, one write per changed match.
        "dynamodb:BatchGetItem": {MATCHES},
        "dynamodb:UpdateItem": {MATCHES},
        # Connections found gone (410) while pushing: forgotten, a waiting seat given back (unless the
        # player is in the match on another connection), and a `disconnect` record for each.
        "dynamodb:DeleteItem": {CONNECTIONS},
        "dynamodb:Query": {index(CONNECTIONS)},
        "dynamodb:GetItem": {MATCHES},
        "kinesis:PutRecords": {STREAM},
        "kms:GenerateDataKey": {STREAM_KEY},
        "execute-api:ManageConnections": {PUSH},
        # The mapping's on-failure destination is written by Lambda with the function's role, and
        # streams/deadletter.py sends poison records itself (GetQueueUrl, then SendMessageBatch); the
        # timers the rules ask for go to the timers queue.
        "sqs:GetQueueUrl": {DLQ, TIMERS},
        "sqs:SendMessage": {DLQ, TIMERS},
    },
    # streams/timers.py: the timers queue's consumer.
    "timers": {
        **ENDING,  # a connection a probe found gone
        "sqs:ReceiveMessage": {TIMERS},  # the SQS event-source mapping, with the function's role
        "sqs:DeleteMessage": {TIMERS},
        "sqs:GetQueueAttributes": {TIMERS},
        "sqs:GetQueueUrl": {TIMERS},  # a timer not due yet sent back, a live connection's next probe
        "sqs:SendMessage": {TIMERS},
        "kinesis:PutRecords": {STREAM},  # due timers
        "dynamodb:GetItem": {MATCHES, CONNECTIONS},  # the probed connection's record
        "execute-api:ManageConnections": {PROBE},
    },
    # streams/projector.py: the cold path, from the matches table's stream.
    "projector": {
        "dynamodb:DescribeStream": {MATCH_CHANGES},
        "dynamodb:GetRecords": {MATCH_CHANGES},
        "dynamodb:GetShardIterator": {MATCH_CHANGES},
        "dynamodb:ListStreams": {"*"},
        "dynamodb:BatchGetItem": {LEADERBOARDS},  # settlement markers, seasons, rows, rank trees
        "dynamodb:GetItem": {LEADERBOARDS},  # a row before its credit, or after a lost condition
        "dynamodb:PutItem": {LEADERBOARDS},  # settlement markers
        # Credits, forgetting credits, the told rank; the rank trees and each row's `ranked` (in
        # TransactWriteItems, which IAM authorizes as the UpdateItems it holds).
        "dynamodb:UpdateItem": {LEADERBOARDS},
        "dynamodb:Query": {index(LEADERBOARDS)},  # ties on a board with a tie-break
        "dynamodb:BatchWriteItem": {EVENTS},  # the event log
        "dynamodb:DeleteItem": {CONNECTIONS},  # connections found gone (410) while pushing a rank
        "execute-api:ManageConnections": {PUSH},
        "sqs:GetQueueUrl": {PROJECTOR_DLQ},
        "sqs:SendMessage": {PROJECTOR_DLQ},
        "states:StartExecution": {SAGA},  # the match-end saga, once per finished match
    },
    # streams/settlement.py: the match-end saga's steps (backend/store/progress.py).
    "settlement": {
        # TransactWriteItems (season statistics and rewards with their markers) is authorized per item:
        # markers put and deleted, increments updated; and the settlement record is a PutItem.
        "dynamodb:PutItem": {PROGRESS},
        "dynamodb:UpdateItem": {PROGRESS},
        "dynamodb:DeleteItem": {PROGRESS},
    },
    # backend/admin/app.py, route by route.
    "admin": {
        "ssm:GetParameter": {JWT_SECRET},  # verifying admin tokens
        "dynamodb:DescribeTable": {CONNECTIONS, MATCHES, LEADERBOARDS, EVENTS},  # health
        "kinesis:DescribeStreamSummary": {STREAM},  # health
        "cloudwatch:GetMetricStatistics": {"*"},  # stats: stream throughput, processor iterator age
        "sqs:GetQueueUrl": {DLQ, PROJECTOR_DLQ},  # stats: dead letters
        "sqs:GetQueueAttributes": {DLQ, PROJECTOR_DLQ},
        "dynamodb:BatchGetItem": {LEADERBOARDS},  # seasons
        "dynamodb:GetItem": {LEADERBOARDS, MATCHES},
        "dynamodb:UpdateItem": {LEADERBOARDS},  # season reset; the rank tree, when a player is removed
        "dynamodb:DeleteItem": {LEADERBOARDS, CONNECTIONS},  # player removal (a transaction), kick
        "dynamodb:PutItem": {EVENTS},  # audit records
        "dynamodb:Scan": {CONNECTIONS},  # connection listing and count
        "dynamodb:Query": {EVENTS, index(CONNECTIONS), index(MATCHES), index(LEADERBOARDS)},
        "kinesis:PutRecord": {STREAM},  # ending a match
        "kms:GenerateDataKey": {STREAM_KEY},
        "execute-api:ManageConnections": {PUSH, DISCONNECT},  # broadcast, kick
    },
}


def function_logical_id(function: str) -> str:
    """The prefix osls gives a function's resources (`message` -> MessageLambdaFunction, MessageLogGroup)."""
    return function[:1].upper() + function[1:].replace("-", "Dash").replace("_", "Underscore")


def granted(function: str, stage: str) -> dict[str, set[str]]:
    """Everything `function`'s role must grant, and on what: its calls plus its own logs and X-Ray."""
    log_group = f"{function_logical_id(function)}LogGroup"
    out: dict[str, set[str]] = {
        "logs:CreateLogStream": {log_group},
        "logs:PutLogEvents": {log_group},
        "xray:PutTraceSegments": {"*"},
        "xray:PutTelemetryRecords": {"*"},
    }
    for action, resources in CALLS[function].items():
        out.setdefault(action, set()).update(r.format(stage=stage) for r in resources)
    return out
