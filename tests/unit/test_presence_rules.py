"""The rules of presence, reconnect seats, forfeits and rate limits (backend.game.rules), pure."""

from __future__ import annotations

import random

import pytest

from backend.game import modes, rules
from backend.game.rules import Applied, Ignored, Match, Refused, Timer, apply, new_match
from backend.protocol import GameEvent
from tests.unit.test_rules import MID, T0, ev, play, running


def away(state: Match, player: str) -> tuple[Match, Applied]:
    after, outcome = apply(state, ev("disconnect", player))
    assert isinstance(outcome, Applied), outcome
    return after, outcome


def timer_for(player: str, ref: int) -> GameEvent:
    return ev("timer", player, timer="grace", ref=ref)


# --- a running match holds a dropped player's seat ------------------------------------------------


def test_a_drop_in_a_running_match_holds_the_seat_and_asks_for_the_grace_timer() -> None:
    state = play(running(), ev("score", "alice", "a1", points=30))
    after, outcome = away(state, "alice")
    assert after.version == state.version + 1
    assert after.players["alice"].presence == "away"
    assert after.players["alice"].score == 30  # the seat, and what it holds, are kept
    assert after.status == "running"
    assert outcome.presence == "away"
    grace = modes.mode(state.mode).settings.grace_ms
    assert outcome.timers == (Timer("grace", "alice", after.version, grace),)


def test_a_rejoin_within_the_grace_takes_the_seat_back_and_the_old_timer_does_nothing() -> None:
    state, gone = away(running(), "alice")
    back, outcome = apply(state, ev("join", "alice", "j2"))
    assert isinstance(outcome, Applied) and outcome.presence == "back"
    assert back.players["alice"].presence == "here"
    (timer,) = gone.timers
    late, fired = apply(back, timer_for("alice", timer.ref))
    assert isinstance(fired, Ignored) and late is back


def test_after_the_grace_the_player_forfeits_and_the_other_wins() -> None:
    state = play(running(), ev("score", "alice", "a1", points=50), ev("score", "bob", "b1", points=10))
    state, gone = away(state, "alice")
    (timer,) = gone.timers
    after, outcome = apply(state, timer_for("alice", timer.ref))
    assert isinstance(outcome, Applied) and outcome.presence == "forfeited"
    assert after.players["alice"].presence == "forfeited" and after.players["alice"].left
    assert after.status == "finished"
    assert after.winner == "bob"  # a match left with too few players ends with a winner
    again, twice = apply(after, timer_for("alice", timer.ref))
    assert isinstance(twice, Ignored) and again is after  # delivered twice: applied once


def test_a_forfeited_player_cannot_come_back() -> None:
    players = ("alice", "bob", "carol", "p3", "p4", "p5", "p6", "p7")
    state, gone = away(running("arena", players), "alice")
    state = play(state, timer_for("alice", gone.timers[0].ref))
    assert state.status == "running"  # seven players are still in
    after, outcome = apply(state, ev("join", "alice", "j9"))
    assert isinstance(outcome, Refused) and outcome.code == "not_in_match"
    assert after is state


def test_an_old_timer_does_not_forfeit_a_later_absence() -> None:
    state, first = away(running(), "alice")
    state = play(state, ev("join", "alice", "back"))
    state, second = away(state, "alice")
    assert first.timers[0].ref != second.timers[0].ref
    after, outcome = apply(state, timer_for("alice", first.timers[0].ref))
    assert isinstance(outcome, Ignored) and after is state
    after = play(state, timer_for("alice", second.timers[0].ref))
    assert after.players["alice"].forfeited


def test_when_both_drop_the_first_grace_to_end_decides() -> None:
    state, a = away(running(), "alice")
    state, _ = away(state, "bob")
    after = play(state, timer_for("alice", a.timers[0].ref))
    assert after.status == "finished" and after.winner == "bob"


def test_a_practice_match_whose_player_forfeits_ends_without_a_winner() -> None:
    state, gone = away(running("practice", ("solo",)), "solo")
    after = play(state, timer_for("solo", gone.timers[0].ref))
    assert after.status == "finished" and after.winner is None


def test_a_drop_in_a_finished_match_changes_nothing() -> None:
    state = play(running(), ev("end", "alice"))
    after, outcome = apply(state, ev("disconnect", "alice"))
    assert isinstance(outcome, Ignored) and after is state


def test_a_second_drop_of_an_away_player_changes_nothing() -> None:
    state, _ = away(running(), "alice")
    after, outcome = apply(state, ev("disconnect", "alice"))
    assert isinstance(outcome, Ignored) and after is state


def test_an_away_players_actions_in_flight_still_count() -> None:
    state, _ = away(running(), "alice")
    after = play(state, ev("score", "alice", "in-flight", points=5))
    assert after.players["alice"].score == 5 and after.players["alice"].presence == "away"


# --- a waiting match gives the seat back ----------------------------------------------------------


def test_a_drop_whose_seat_was_released_takes_the_player_out_of_the_waiting_match() -> None:
    state = play(new_match(MID, "arena"), ev("join", "alice"), ev("join", "bob"))
    after, outcome = apply(state, ev("disconnect", "alice", released=True))
    assert isinstance(outcome, Applied) and outcome.presence == "left" and not outcome.timers
    assert list(after.players) == ["bob"]
    assert after.status == "waiting"


def test_a_drop_whose_seat_could_not_be_released_waits_and_the_grace_starts_with_the_match() -> None:
    state = play(new_match(MID, "duel"), ev("join", "alice"))
    state, outcome = away(state, "alice")
    assert not outcome.timers  # nothing runs yet
    assert state.players["alice"].presence == "away"
    after, joined = apply(state, ev("join", "bob", "jb"))
    assert isinstance(joined, Applied) and after.status == "running"
    assert joined.timers == (
        Timer("grace", "alice", state.players["alice"].away, modes.mode(state.mode).settings.grace_ms),
    )


def test_a_join_with_a_newer_roster_drops_the_released_players_it_does_not_hold() -> None:
    state = play(
        new_match(MID, "arena"),
        ev("join", "alice", roster=["alice"], rosterGen=1),
        ev("join", "bob", roster=["alice", "bob"], rosterGen=2),
    )
    # alice's seat was released (gen 3) and carol took it (gen 4) before alice's `disconnect` arrived.
    after = play(state, ev("join", "carol", roster=["bob", "carol"], rosterGen=4))
    assert list(after.players) == ["bob", "carol"]
    assert after.roster_gen == 4
    late, outcome = apply(after, ev("disconnect", "alice", released=True))
    assert isinstance(outcome, Ignored) and late is after


def test_a_join_with_an_older_roster_drops_nobody() -> None:
    state = play(
        new_match(MID, "arena"),
        ev("join", "alice", roster=["alice"], rosterGen=1),
        ev("join", "carol", roster=["alice", "bob", "carol"], rosterGen=3),
    )
    # bob claimed at gen 2, but his join reached the stream after carol's.
    after = play(state, ev("join", "bob", roster=["alice", "bob"], rosterGen=2))
    assert list(after.players) == ["alice", "carol", "bob"]


def test_a_released_leave_takes_the_player_out_of_the_waiting_match() -> None:
    state = play(new_match(MID, "arena"), ev("join", "alice"), ev("join", "bob"))
    after = play(state, ev("leave", "alice", released=True))
    assert list(after.players) == ["bob"] and after.status == "waiting"


# --- rate limits, by the actions' receive times ---------------------------------------------------


def test_actions_beyond_the_burst_are_refused_and_refill_with_time() -> None:
    state = running()
    limits = modes.mode(state.mode).settings
    refused = []
    for i in range(limits.actionBurst + 5):
        state, outcome = apply(state, ev("move", "alice", f"m{i}", x=1, y=1, at=T0))
        if isinstance(outcome, Refused):
            refused.append(outcome.code)
    assert refused == ["rate_limited"] * 5
    # One second later, actionsPerSecond more are accepted.
    later = T0 + 1000
    accepted = 0
    for i in range(int(limits.actionsPerSecond) + 3):
        state, outcome = apply(state, ev("move", "alice", f"n{i}", x=1, y=1, at=later))
        accepted += isinstance(outcome, Applied)
    assert accepted == int(limits.actionsPerSecond)
    # Another player's bucket is their own.
    _, outcome = apply(state, ev("move", "bob", "b1", x=1, y=1, at=later))
    assert isinstance(outcome, Applied)


def test_a_receive_time_earlier_than_the_last_refills_nothing() -> None:
    state = running()
    burst = modes.mode(state.mode).settings.actionBurst
    for i in range(burst):
        state = play(state, ev("score", "alice", f"s{i}", points=1, at=T0 + 5000))
    _, outcome = apply(state, ev("score", "alice", "early", points=1, at=T0))
    assert isinstance(outcome, Refused) and outcome.code == "rate_limited"


def test_a_refused_action_id_can_be_sent_again_later() -> None:
    state = running()
    start = state.started_at  # the rules count from the match's start (plausibility) too
    for i in range(modes.mode(state.mode).settings.actionBurst):
        state = play(state, ev("score", "alice", f"s{i}", points=1, at=start))
    _, outcome = apply(state, ev("score", "alice", "again", points=1, at=start))
    assert isinstance(outcome, Refused)
    after = play(state, ev("score", "alice", "again", points=1, at=start + 1000))
    assert after.players["alice"].score == modes.mode(state.mode).settings.actionBurst + 1


# --- replay ---------------------------------------------------------------------------------------


def presence_events(seed: int, n: int = 200) -> list[GameEvent]:
    """Joins, drops, re-joins, grace timers (due, stale or repeated), actions alone and in bursts: a
    messy duel. Timers mostly name the absence the player is in (so some forfeit), else an old one."""
    rnd = random.Random(seed)
    events: list[GameEvent] = []
    state = new_match(MID, "duel")
    at = T0
    for i in range(n):
        at += rnd.choice([0, 0, 50, 400, 2000])
        player = rnd.choice(["alice", "bob", "carol"])
        roll = rnd.random()
        if roll < 0.2:
            batch = [ev("join", player, f"j{i}", at=at)]
        elif roll < 0.3:
            batch = [ev("disconnect", player, at=at, released=rnd.random() < 0.3)]
        elif roll < 0.4:
            current = state.players.get(player)
            ref = current.away if current and current.away and rnd.random() < 0.7 else rnd.randint(1, i + 1)
            batch = [ev("timer", player, at=at, timer="grace", ref=ref)]
        elif roll < 0.43:
            batch = [ev("score", player, f"b{i}-{k}", points=1, at=at) for k in range(25)]
        else:
            batch = [ev("score", player, f"s{i}", points=rnd.randint(1, 15), at=at)]
        for e in batch:
            state, _ = apply(state, e)
        events += batch
    return events


SEEN_KINDS: set[str] = set()


@pytest.mark.parametrize("seed", range(20))
def test_replaying_the_applied_events_reproduces_presence_and_buckets(seed: int) -> None:
    state = new_match(MID, "duel")
    applied: list[GameEvent] = []
    for e in presence_events(seed):
        state, outcome = apply(state, e)
        if isinstance(outcome, Applied):
            applied.append(e)
            SEEN_KINDS.add(outcome.presence or e.type)
        elif isinstance(outcome, Refused):
            SEEN_KINDS.add(outcome.code)
    assert play(new_match(MID, "duel"), *applied) == state


def test_the_replayed_events_exercise_every_presence_change_and_the_rate_limit() -> None:
    for seed in range(20):
        test_replaying_the_applied_events_reproduces_presence_and_buckets(seed)
    assert {"join", "away", "back", "forfeited", "left", "rate_limited"} <= SEEN_KINDS, SEEN_KINDS


def test_only_applied_events_change_the_match() -> None:
    for seed in range(10):
        state = new_match(MID, "arena")
        for e in presence_events(seed):
            before = state
            state, outcome = apply(state, e)
            assert isinstance(outcome, Applied) or state is before
            if isinstance(outcome, Applied):
                assert state.version == before.version + 1


def test_the_player_dataclass_defaults_are_a_connected_player() -> None:
    assert rules.Player().presence == "here"
