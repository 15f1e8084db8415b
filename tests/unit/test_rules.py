"""The pure game rules: `apply(state, event) -> (state, outcome)`."""

from __future__ import annotations

import copy
import itertools
import random

import pytest

from backend.game import modes, rules
from backend.game.rules import Applied, Ignored, Match, Refused, apply, new_match
from backend.protocol import GameEvent

MID = "m-" + "a" * 32
T0 = 1_700_000_000_000
_ids = itertools.count(1)


def ev(
    kind: str,
    player: str,
    action: str | None = None,
    *,
    points: int | None = None,
    x: int | None = None,
    y: int | None = None,
    match_id: str = MID,
    at: int | None = None,
    **more: object,
) -> GameEvent:
    n = next(_ids)
    if kind == "disconnect":
        more = {"connectionId": f"c-{player}", "reason": "closed", **more}
    return GameEvent.model_validate(
        {
            "eventId": f"e{n}",
            "matchId": match_id,
            "playerId": player,
            # 200 ms apart: five actions a second, under every mode's rate limit
            "receivedAt": T0 + n * 200 if at is None else at,
            "type": kind,
            "actionId": action,
            "points": points,
            "x": x,
            "y": y,
            **more,
        }
    )


def play(state: Match, *events: GameEvent) -> Match:
    """Applies events that must all be Applied."""
    for e in events:
        state, outcome = apply(state, e)
        assert isinstance(outcome, Applied), (e, outcome)
    return state


def running(mode: str = "duel", players: tuple[str, ...] = ("alice", "bob")) -> Match:
    return play(new_match(MID, mode), *(ev("join", p) for p in players))


# --- joining ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "seats"), [("practice", 1), ("duel", 2), ("arena", 8)])
def test_a_match_waits_until_every_seat_is_taken(mode: str, seats: int) -> None:
    assert modes.mode(mode).seats == seats
    state = new_match(MID, mode)
    assert state.status == "waiting"
    for i in range(seats):
        state, outcome = apply(state, ev("join", f"p{i}"))
        assert outcome == Applied(None)
        assert state.status == ("running" if i == seats - 1 else "waiting")
    assert list(state.players) == [f"p{i}" for i in range(seats)]
    assert all(p == rules.Player() for p in state.players.values())


@pytest.mark.parametrize("mode", ["practice", "duel", "arena"])
def test_a_join_of_a_full_match_is_refused(mode: str) -> None:
    state = running(mode, tuple(f"p{i}" for i in range(modes.mode(mode).seats)))
    after, outcome = apply(state, ev("join", "late", "j1"))
    assert isinstance(outcome, Refused)
    assert (outcome.action_id, outcome.code) == ("j1", "match_full")
    assert after is state
    assert "late" not in after.players


def test_a_join_of_a_finished_match_is_refused() -> None:
    state = play(new_match(MID, "duel"), ev("join", "alice"), ev("end", "alice"))
    assert state.status == "finished"
    after, outcome = apply(state, ev("join", "bob", "j1"))
    assert isinstance(outcome, Refused)
    assert outcome.code == "match_not_running"
    assert outcome.action_id == "j1"
    assert after is state


@pytest.mark.parametrize("status", ["waiting", "running", "finished"])
def test_a_re_join_is_ignored(status: str) -> None:
    state = play(new_match(MID, "duel"), ev("join", "alice"))
    if status != "waiting":
        state = play(state, ev("join", "bob"))
    if status == "finished":
        state = play(state, ev("end", "bob"))
    assert state.status == status
    after, outcome = apply(state, ev("join", "alice", "again"))
    assert isinstance(outcome, Ignored)
    assert after is state


# --- scoring and moving ----------------------------------------------------------------------------


def test_score_adds_points_to_the_scorer_only() -> None:
    state = play(running(), ev("score", "alice", "a1", points=30), ev("score", "alice", "a2", points=12))
    assert state.players["alice"].score == 42
    assert state.players["bob"].score == 0
    assert state.status == "running"
    assert state.winner is None


@pytest.mark.parametrize(("mode", "overshoot"), [("practice", 0), ("duel", 0), ("duel", 37), ("arena", 1)])
def test_reaching_the_target_finishes_the_match_with_a_winner(mode: str, overshoot: int) -> None:
    target = int(modes.mode(mode).options["targetScore"])
    players = tuple(f"p{i}" for i in range(modes.mode(mode).seats))
    state = running(mode, players)
    winner = players[-1]
    n = 0
    while state.players[winner].score + 50 < target:
        n += 1
        state = play(state, ev("score", winner, f"s{n}", points=50))
    # One point short of the target: still running.
    last = target - state.players[winner].score
    if last > 1:
        state = play(state, ev("score", winner, "short", points=last - 1))
        assert state.status == "running"
        assert state.winner is None
        last = 1
    state = play(state, ev("score", winner, "final", points=last + overshoot))
    assert state.players[winner].score == target + overshoot
    assert state.status == "finished"
    assert state.winner == winner


def test_the_first_to_reach_the_target_wins() -> None:
    state = play(
        running(),
        ev("score", "alice", "a1", points=50),
        *(ev("score", "bob", f"b{n}", points=50) for n in range(4)),  # duel: the target is 200
    )
    assert state.winner == "bob"
    after, outcome = apply(state, ev("score", "alice", "a2", points=50))
    assert isinstance(outcome, Refused)
    assert outcome.code == "match_not_running"
    assert after is state


def test_move_sets_the_position() -> None:
    state = play(running(), ev("move", "bob", "m1", x=3, y=999))
    assert (state.players["bob"].x, state.players["bob"].y) == (3, 999)
    assert (state.players["alice"].x, state.players["alice"].y) == (0, 0)


def _waiting() -> Match:
    return play(new_match(MID, "duel"), ev("join", "alice"))


def _finished() -> Match:
    # duel: the target is 200
    return play(
        running(),
        *(ev("score", "alice", f"s{n}", points=50) for n in range(3)),
        ev("score", "alice", "win", points=50),
    )


@pytest.mark.parametrize("make", [_waiting, _finished], ids=["waiting", "finished"])
@pytest.mark.parametrize("kind", ["score", "move"])
def test_playing_outside_a_running_match_is_refused(make: object, kind: str) -> None:
    state = make()  # type: ignore[operator]
    event = ev(kind, "alice", "late", points=5, x=1, y=1)
    after, outcome = apply(state, event)
    assert isinstance(outcome, Refused)
    assert (outcome.action_id, outcome.code) == ("late", "match_not_running")
    assert after is state


@pytest.mark.parametrize("kind", ["score", "move"])
def test_a_non_member_is_refused(kind: str) -> None:
    state = running()
    after, outcome = apply(state, ev(kind, "mallory", "x1", points=5, x=1, y=1))
    assert isinstance(outcome, Refused)
    assert outcome.code == "not_in_match"
    assert after is state


@pytest.mark.parametrize("kind", ["score", "move"])
def test_a_player_who_left_can_no_longer_play(kind: str) -> None:
    state = play(running("arena", tuple(f"p{i}" for i in range(8))), ev("leave", "p0"))
    after, outcome = apply(state, ev(kind, "p0", "x1", points=5, x=1, y=1))
    assert isinstance(outcome, Refused)
    assert outcome.code == "not_in_match"
    assert after is state


@pytest.mark.parametrize("kind", ["score", "move"])
def test_a_duplicate_action_id_is_ignored_and_changes_nothing(kind: str) -> None:
    state = play(running(), ev(kind, "alice", "a1", points=7, x=5, y=5))
    retry = ev(kind, "alice", "a1", points=7, x=9, y=9)
    after, outcome = apply(state, retry)
    assert isinstance(outcome, Ignored)
    assert after is state
    alice = after.players["alice"]
    assert (alice.score, alice.x, alice.y) == ((7, 0, 0) if kind == "score" else (0, 5, 5))


def test_action_ids_are_per_player() -> None:
    state = play(running(), ev("score", "alice", "same", points=5), ev("score", "bob", "same", points=6))
    assert (state.players["alice"].score, state.players["bob"].score) == (5, 6)


def test_a_retry_of_a_score_that_finished_the_match_is_ignored_not_refused() -> None:
    state = _finished()
    after, outcome = apply(state, ev("score", "alice", "win", points=100))
    assert isinstance(outcome, Ignored)
    assert after is state


def test_remembered_action_ids_are_bounded_per_player() -> None:
    state = running()
    for i in range(rules.SEEN_PER_PLAYER + 10):
        state = play(state, ev("move", "alice", f"a{i}", x=1, y=1))
    assert len(state.seen["alice"]) == rules.SEEN_PER_PLAYER
    # The most recent ones are still dropped as duplicates.
    _, outcome = apply(state, ev("move", "alice", f"a{rules.SEEN_PER_PLAYER + 9}", x=2, y=2))
    assert isinstance(outcome, Ignored)


# --- leaving and ending ----------------------------------------------------------------------------


def test_leave_marks_the_player_left_and_the_last_leave_finishes() -> None:
    players = ("alice", "bob", "carol")
    state = running("arena", (*players, "p3", "p4", "p5", "p6", "p7"))
    state = play(state, ev("score", "alice", "a1", points=10), ev("leave", "alice"))
    assert (state.players["alice"].score, state.players["alice"].left) == (10, True)
    assert state.players["alice"].presence == "left"
    assert state.status == "running"
    for p in ("bob", "carol", "p3", "p4", "p5", "p6"):
        state = play(state, ev("leave", p))
    # Only one player left in: the match ends and they win.
    assert state.status == "finished"
    assert state.winner == "p7"


def test_a_duel_left_by_one_player_is_won_by_the_other() -> None:
    state = play(running(), ev("score", "alice", "a1", points=50), ev("leave", "alice"))
    assert state.status == "finished"
    assert state.winner == "bob"


def test_the_only_player_of_a_waiting_match_leaving_finishes_it() -> None:
    state = play(_waiting(), ev("leave", "alice"))
    assert state.status == "finished"


@pytest.mark.parametrize("who", ["alice", "mallory"])
def test_leave_of_a_player_not_in_the_match_is_ignored(who: str) -> None:
    state = running()
    if who == "alice":
        state = play(state, ev("leave", "alice"))
    after, outcome = apply(state, ev("leave", who))
    assert isinstance(outcome, Ignored)
    assert after is state


@pytest.mark.parametrize("make", [_waiting, running], ids=["waiting", "running"])
def test_end_finishes_the_match(make: object) -> None:
    state = make()  # type: ignore[operator]
    after, outcome = apply(state, ev("end", "alice"))
    assert isinstance(outcome, Applied)
    assert after.status == "finished"
    assert after.version == state.version + 1
    again, outcome = apply(after, ev("end", "alice"))
    assert isinstance(outcome, Ignored)
    assert again is after


# --- invariants ------------------------------------------------------------------------------------


def test_an_event_of_another_match_is_an_error() -> None:
    with pytest.raises(ValueError, match="applied to"):
        apply(running(), ev("score", "alice", "a1", points=1, match_id="m-" + "b" * 32))


def test_an_unknown_mode_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown mode"):
        new_match(MID, "chess")


PLAYERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")


def random_events(seed: int, n: int = 150) -> tuple[str, list[GameEvent]]:
    """A seeded, messy sequence: strangers, retries, leaves, ends, all event types."""
    rnd = random.Random(seed)
    mode = rnd.choice(["practice", "duel", "arena"])
    pool = PLAYERS[: modes.mode(mode).seats + 2]
    events: list[GameEvent] = []
    sent: list[GameEvent] = []
    for i in range(n):
        roll = rnd.random()
        player = rnd.choice(pool)
        if sent and roll < 0.15:
            old = rnd.choice(sent)  # a client retry: same player, same action id
            events.append(old.model_copy(update={"eventId": f"retry{i}"}))
            continue
        if roll < 0.35:
            e = ev("join", player, f"j{i}")
        elif roll < 0.40:
            e = ev("leave", player, f"l{i}")
        elif roll < 0.41:
            e = ev("end", player)
        elif roll < 0.75:
            e = ev("score", player, f"s{i}", points=rnd.randint(1, 100))
        else:
            e = ev("move", player, f"m{i}", x=rnd.randint(0, 1000), y=rnd.randint(0, 1000))
        events.append(e)
        sent.append(e)
    return mode, events


@pytest.mark.parametrize("seed", range(25))
def test_version_moves_exactly_once_per_applied_event(seed: int) -> None:
    mode, events = random_events(seed)
    state = new_match(MID, mode)
    counts = {Applied: 0, Ignored: 0, Refused: 0}
    for e in events:
        before = state
        snapshot = copy.deepcopy(before)
        state, outcome = apply(before, e)
        counts[type(outcome)] += 1
        # Pure: the input state is never modified, whatever the outcome.
        assert before == snapshot
        if isinstance(outcome, Applied):
            assert state.version == before.version + 1
            assert outcome.action_id == e.actionId
        else:
            assert state is before
    assert state.version == counts[Applied]
    # The generator must exercise every outcome, or this test proves little.
    assert all(counts.values()), counts


@pytest.mark.parametrize("seed", range(25))
def test_replaying_the_applied_events_reproduces_the_state(seed: int) -> None:
    mode, events = random_events(seed)
    state = new_match(MID, mode)
    applied: list[GameEvent] = []
    for e in events:
        state, outcome = apply(state, e)
        if isinstance(outcome, Applied):
            applied.append(e)
    replayed = play(new_match(MID, mode), *applied)
    assert replayed == state


def test_apply_does_not_modify_the_nested_dicts_of_its_input() -> None:
    state = play(running(), ev("score", "alice", "a1", points=5))
    players, seen = dict(state.players), {k: tuple(v) for k, v in state.seen.items()}
    play(state, ev("score", "alice", "a2", points=5), ev("move", "bob", "b1", x=1, y=2), ev("leave", "bob"))
    assert state.players == players
    assert state.seen == seen
    assert state.version == 3


def test_a_player_who_left_a_running_match_can_come_back() -> None:
    arena = running("arena", ("alice", "bob", "carol", "p3", "p4", "p5", "p6", "p7"))
    state = play(arena, ev("score", "alice", "s1", points=10), ev("leave", "alice"))
    assert state.players["alice"].left
    back, outcome = apply(state, ev("join", "alice"))
    assert isinstance(outcome, Applied)
    assert not back.players["alice"].left and back.players["alice"].score == 10
    assert back.version == state.version + 1
    after, scored = apply(back, ev("score", "alice", "s2", points=5))
    assert isinstance(scored, Applied) and after.players["alice"].score == 15


def test_no_coming_back_to_a_finished_match() -> None:
    state = play(running(), ev("leave", "alice"), ev("leave", "bob"))
    assert state.status == "finished"
    after, outcome = apply(state, ev("join", "alice"))
    assert isinstance(outcome, Ignored) and after is state


def test_a_repeated_action_id_is_ignored_and_marked_as_a_duplicate() -> None:
    state = play(running(), ev("score", "alice", "once", points=5))
    after, outcome = apply(state, ev("score", "alice", "once", points=5))
    assert isinstance(outcome, Ignored) and outcome.duplicate
    assert after is state
    _, rejoin = apply(state, ev("join", "alice"))
    assert isinstance(rejoin, Ignored) and not rejoin.duplicate


# --- reported scores: plausibility (custom.plausibility) -------------------------------------------


@pytest.fixture(scope="module")
def deployed() -> modes.Modes:
    """The modes as a deployed stage has them: the local stage's bounds are loose (serverless.yml)."""
    from backend.config import GameSettings
    from tests.conftest import declared_game_settings

    return modes.Modes.load(GameSettings.parse(declared_game_settings("dev")))


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_every_deployed_stage_bounds_the_race_modes_reported_scores(stage: str) -> None:
    from backend.config import GameSettings
    from local import slsconfig
    from tests.conftest import ROOT, declared_game_settings

    declared = slsconfig.load(ROOT / "serverless.yml", stage).custom["plausibility"]
    settings = GameSettings.parse(declared_game_settings(stage))
    for name in ("practice", "duel", "arena"):
        assert settings.mode(name).options["plausibility"] == declared, (stage, name)


def test_the_instant_win_of_a_cheating_client_is_refused_as_implausible(deployed: modes.Modes) -> None:
    # The cheat of the issue: join a practice match and claim its 100 points at once.
    state = play_with(deployed, new_match(MID, "practice"), ev("join", "alice", at=T0))
    after, outcome = apply(state, ev("score", "alice", "cheat", points=100, at=T0 + 60), using=deployed)
    assert isinstance(outcome, Refused) and outcome.code == "implausible"
    assert after is state
    # The same claim a second into the match is within the bounds (50 + 250 a second).
    later, fine = apply(state, ev("score", "alice", "honest", points=100, at=T0 + 1000), using=deployed)
    assert isinstance(fine, Applied) and later.status == "finished" and later.winner == "alice"


def play_with(using: modes.Modes, state: Match, *events: GameEvent) -> Match:
    for e in events:
        state, outcome = apply(state, e, using=using)
        assert isinstance(outcome, Applied), (e, outcome)
    return state


def test_a_total_that_grows_faster_than_the_bound_is_refused_and_the_refusal_replays(
    deployed: modes.Modes,
) -> None:
    events = [
        ev("join", "alice", at=T0),
        ev("score", "alice", "a1", points=50, at=T0 + 10),  # the allowance at the start
        ev("score", "alice", "a2", points=40, at=T0 + 100),  # 90 > 50 + 25: implausible
        ev("score", "alice", "a3", points=20, at=T0 + 100),  # 70 <= 75: applied
    ]
    outcomes = []
    state = new_match(MID, "practice")
    for e in events:
        state, outcome = apply(state, e, using=deployed)
        outcomes.append(type(outcome).__name__)
    assert outcomes == ["Applied", "Applied", "Refused", "Applied"]
    assert state.players["alice"].score == 70
    again = new_match(MID, "practice")
    for e in events:
        again, _ = apply(again, e, using=deployed)
    assert again == state  # the receive times decide: a replay refuses the same action


def test_a_mode_that_takes_reported_scores_must_declare_bounds() -> None:
    from backend.config import ModeSettings
    from games.race import Race

    with pytest.raises(ValueError, match="plausibility"):
        Race("loose", 1, ModeSettings(), {"targetScore": 10})


# --- time in the rules: the match's duration (custom.modes.<mode>.matchSeconds) ----------------------


def _timed() -> modes.Modes:
    from backend.config import ModeSettings
    from games.race import Race

    options = modes.mode("duel").options
    timed = Race("duel", 2, ModeSettings(seats=2, matchSeconds=90), options)
    return modes.Modes({"duel": timed})


def test_a_match_with_a_duration_ends_when_its_timer_is_due_once() -> None:
    using = _timed()
    state = new_match(MID, "duel", using=using)
    state, _ = apply(state, ev("join", "alice", at=T0), using=using)
    state, started = apply(state, ev("join", "bob", at=T0 + 500), using=using)
    assert isinstance(started, Applied) and state.status == "running"
    (timer,) = started.timers
    assert (timer.kind, timer.ref, timer.delay_ms) == ("duration", T0 + 500, 90_000)
    state, _ = apply(state, ev("score", "bob", "b1", points=30, at=T0 + 1000), using=using)

    stale, ignored = apply(state, ev("timer", "alice", timer="duration", ref=T0), using=using)
    assert isinstance(ignored, Ignored) and stale is state  # not this match's start
    due = ev("timer", timer.player, timer="duration", ref=timer.ref)
    ended, applied = apply(state, due, using=using)
    assert isinstance(applied, Applied)
    assert (ended.status, ended.winner, ended.version) == ("finished", "bob", state.version + 1)
    twice, again = apply(ended, due, using=using)
    assert isinstance(again, Ignored) and twice is ended  # delivered twice: applied once


def test_time_running_out_on_a_shared_lead_is_a_draw() -> None:
    using = _timed()
    state = new_match(MID, "duel", using=using)
    state, _ = apply(state, ev("join", "alice", at=T0), using=using)
    state, started = apply(state, ev("join", "bob", at=T0), using=using)
    (timer,) = started.timers
    ended, _ = apply(state, ev("timer", "alice", timer="duration", ref=timer.ref), using=using)
    assert (ended.status, ended.winner) == ("finished", None)
