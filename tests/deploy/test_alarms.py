"""The alarms of the generated template: what is watched, and that every alarm reaches someone."""

from __future__ import annotations

from typing import Any

from tests.deploy.conftest import ROOT

FUNCTIONS = ("authorizer", "connect", "disconnect", "message", "processor", "projector", "admin")


def _alarms(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in resources.items() if v["Type"] == "AWS::CloudWatch::Alarm"}


def _watched(alarms: dict[str, dict[str, Any]]) -> set[tuple[str, str, str]]:
    out = set()
    for props in alarms.values():
        dims = {d["Name"]: d["Value"] for d in props.get("Dimensions", [])}
        target = dims.get("FunctionName") or dims.get("QueueName") or dims.get("Downstream") or "api"
        out.add((props["Namespace"], props["MetricName"], target if isinstance(target, str) else "api"))
    return out


def test_every_alarm_notifies_the_encrypted_topic(resources: dict[str, Any]) -> None:
    alarms = _alarms(resources)
    assert alarms
    topics = {k for k, v in resources.items() if v["Type"] == "AWS::SNS::Topic"}
    assert topics == {"AlarmTopic"}
    assert resources["AlarmTopic"]["Properties"]["KmsMasterKeyId"]
    for name, props in alarms.items():
        assert props.get("AlarmActions") == [{"Ref": "AlarmTopic"}], name
        assert props.get("OKActions") == [{"Ref": "AlarmTopic"}], name
        assert "docs/operations.md#" in props["AlarmDescription"], name  # each points at its runbook entry


def test_the_runbook_covers_every_alarm(resources: dict[str, Any]) -> None:
    runbook = (ROOT / "docs" / "operations.md").read_text()
    for props in _alarms(resources).values():
        anchor = props["AlarmDescription"].split("docs/operations.md#", 1)[1].rstrip(")")
        assert (
            f"{{#{anchor}}}" in runbook
            or f'id="{anchor}"' in runbook
            or f"## {anchor}" in runbook.lower()
            or f'<a name="{anchor}">' in runbook
        ), anchor


def test_what_is_watched(resources: dict[str, Any]) -> None:
    watched = _watched(_alarms(resources))
    stage = "dev"
    assert ("AWS/Lambda", "IteratorAge", f"gamebackend-{stage}-processor") in watched
    assert ("AWS/Lambda", "IteratorAge", f"gamebackend-{stage}-projector") in watched
    assert (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        f"gamebackend-{stage}-projector-dlq",
    ) in watched
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", f"gamebackend-{stage}-actions-dlq") in watched
    assert ("AWS/ApiGateway", "5xx", "api") in watched
    assert ("AWS/ApiGateway", "IntegrationError", "api") in watched
    for fn in FUNCTIONS:
        for metric in ("Errors", "Throttles"):
            assert ("AWS/Lambda", metric, f"gamebackend-{stage}-{fn}") in watched, (fn, metric)


def test_every_circuit_breaker_has_an_alarm_on_the_metric_it_emits(resources: dict[str, Any]) -> None:
    """backend/breaker.py emits CircuitOpened with the dimensions Stage, Downstream and service (powertools
    adds the last): an alarm on any other set would never see it (tests/unit/test_breaker.py)."""
    alarms = [p for p in _alarms(resources).values() if p["MetricName"] == "CircuitOpened"]
    downstreams = set()
    for props in alarms:
        dims = {d["Name"]: d["Value"] for d in props["Dimensions"]}
        assert set(dims) == {"Stage", "Downstream", "service"}, dims
        assert (props["Namespace"], dims["Stage"], dims["service"]) == ("GameBackend", "dev", "gamebackend")
        assert (props["Statistic"], props["Threshold"], props["Period"]) == ("Sum", 1, 60)
        downstreams.add(dims["Downstream"])
    # The breakers' names: backend/push.py's and backend/handlers/message.py's.
    from backend.handlers import message
    from backend.push import Pusher

    assert downstreams == {Pusher("http://unused").breaker.name, message.data_plane.name}
