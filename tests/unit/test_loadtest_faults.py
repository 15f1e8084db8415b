"""The load test's fault plan (loadtest/faults.py): what --faults accepts, and when each episode runs."""

from __future__ import annotations

import pytest

from loadtest import faults


def test_all_is_every_kind_and_counts_add_up() -> None:
    assert faults.parse("all") == {"kill": 3, "gone": 2, "5xx": 2, "throttle": 2}
    assert faults.parse("kill:2, kill ,throttle:3") == {"kill": 3, "throttle": 3}


@pytest.mark.parametrize("spec", ["", "explode:1", "kill:x", "kill:0", "gone:51", ","])
def test_a_bad_spec_is_refused_with_a_reason(spec: str) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        faults.parse(spec)


def test_episodes_are_interleaved_and_spread_over_the_middle_of_the_run() -> None:
    plan = faults.schedule({"kill": 2, "5xx": 1, "throttle": 1}, duration=100)
    assert [kind for _, kind in plan] == ["kill", "5xx", "throttle", "kill"]
    times = [t for t, _ in plan]
    assert times[0] == pytest.approx(15) and times[-1] == pytest.approx(80)
    assert times == sorted(times) and len(set(times)) == len(times)


def test_the_summary_counts_injected_and_survived_per_kind() -> None:
    runner = faults.FaultRunner("http://127.0.0.1:9", [(1.0, "kill"), (2.0, "kill"), (3.0, "gone")])
    first, second, third = runner.episodes
    first.injected, first.survived, first.recovery_s = 1, True, 0.5
    second.injected = 0  # no batch ran: not injected, so not survived either
    third.injected, third.survived, third.recovery_s = 5, True, 1.25
    summary = runner.summary("kill:2,gone:1")
    assert not summary["passed"]
    assert summary["byKind"]["kill"] == {
        "episodes": 2,
        "injected": 1,
        "hit": 1,
        "survived": 1,
        "maxRecoveryS": 0.5,
    }
    assert summary["byKind"]["gone"]["survived"] == 1
    assert any("| gone | 2 |" in line or "| kill | 2 |" in line for line in faults.markdown(summary))
