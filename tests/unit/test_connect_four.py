"""The connect-four plug-in's pure rules (games/connect_four.py), through GameMode.apply only."""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.config import ModeSettings
from backend.game.plugin import GRACE, Applied, Ignored, Match, Refused, Timer
from backend.protocol import GameEvent
from games.connect_four import COLUMNS, ROWS, TURN, ConnectFour, line_through

MID = "m-" + "c" * 32
T0 = 1_700_000_000_000
TURN_S = 20
GRACE_S = 3.0
A, B = "alice", "bob"


def make_mode(turn_seconds: Any = TURN_S, **settings: Any) -> ConnectFour:
    mode_settings = ModeSettings(
        plugin="games.connect_four", seats=2, reconnectGrace=GRACE_S, options={"turnSeconds": turn_seconds}
    )
    mode_settings = ModeSettings(**{**mode_settings.__dict__, **settings})
    return ConnectFour("connect-four", 2, mode_settings, mode_settings.options)


MODE = make_mode()


class Events:
    """Builds events the way the message route and the processor would: ids unique, receive times
    half a second apart (under the mode's action rate)."""

    def __init__(self) -> None:
        self.n = itertools.count(1)

    def __call__(self, type_: str, player: str, **fields: Any) -> GameEvent:
        n = next(self.n)
        if type_ == "act":
            fields = {"actionId": f"a{n}", **fields}
        if type_ == "disconnect":
            fields = {"connectionId": f"c-{player}", "reason": "closed", **fields}
        return GameEvent.model_validate(
            {
                "eventId": f"e{n}",
                "matchId": MID,
                "playerId": player,
                "receivedAt": T0 + n * 500,
                "type": type_,
            }
            | fields
        )

    def drop(self, player: str, column: Any) -> GameEvent:
        return self("act", player, kind="drop", args={"column": column})

    def turn_over(self, player: str, ref: int) -> GameEvent:
        return self("timer", player, timer=TURN, ref=ref)


def applied(mode: ConnectFour, state: Match, *events: GameEvent) -> Match:
    for event in events:
        state, outcome = mode.apply(state, event)
        assert isinstance(outcome, Applied), (event, outcome)
    return state


def started(mode: ConnectFour = MODE) -> tuple[Match, Events]:
    ev = Events()
    return applied(mode, mode.initial(MID), ev("join", A), ev("join", B)), ev


def drops(state: Match, ev: Events, columns: list[int], mode: ConnectFour = MODE) -> Match:
    """Alternate drops into these columns, starting with whoever's turn it is."""
    for column in columns:
        state = applied(mode, state, ev.drop(state.game["turn"], column))
    return state


def cells(state: Match) -> dict[tuple[int, int], str]:
    seats = state.game["seats"]
    return {(c, r): seats[s] for c, column in enumerate(state.game["board"]) for r, s in enumerate(column)}


# --- the start and the turns ------------------------------------------------------------------------


def test_the_first_joiner_starts_on_an_empty_board_with_a_turn_timer() -> None:
    ev = Events()
    state = applied(MODE, MODE.initial(MID), ev("join", B))
    assert state.status == "waiting" and state.game == {}
    state, outcome = MODE.apply(state, ev("join", A))
    assert state.status == "running"
    assert state.game["seats"] == [B, A] and state.game["turn"] == B and state.game["ply"] == 1
    assert state.game["board"] == [[] for _ in range(COLUMNS)]
    assert state.game["result"] is None and state.game["line"] is None
    assert isinstance(outcome, Applied)
    assert outcome.timers == (Timer(TURN, B, 1, TURN_S * 1000),)
    assert state.game["deadline"] == T0 + 2 * 500 + TURN_S * 1000
    assert {p.score for p in state.players.values()} == {0}
    # What the `state` frame sends: JSON, unchanged by a round trip (a replay compares stored states).
    assert json.loads(json.dumps(state.game)) == state.game


def test_players_alternate_and_pieces_fall_to_the_lowest_free_cell() -> None:
    state, ev = started()
    state = applied(MODE, state, ev.drop(A, 3))
    assert state.game["turn"] == B and state.game["ply"] == 2 and state.game["last"] == [3, 0]
    state, outcome = MODE.apply(state, ev.drop(B, 3))
    assert isinstance(outcome, Applied)
    assert outcome.timers == (Timer(TURN, A, 3, TURN_S * 1000),)  # the next turn's, naming it
    assert state.game["board"][3] == [0, 1] and state.game["last"] == [3, 1] and state.game["turn"] == A


def test_a_drop_out_of_turn_is_refused_and_changes_nothing() -> None:
    state, ev = started()
    for early, turn in ((B, A), (A, B)):
        after, outcome = MODE.apply(state, ev.drop(early, 4))
        assert isinstance(outcome, Refused) and outcome.code == "illegal_move"
        assert "not your turn" in outcome.message
        assert after is state
        state = applied(MODE, state, ev.drop(turn, 0))
    assert state.game["board"][0] == [0, 1] and state.game["board"][4] == []


def test_a_drop_into_a_full_column_is_refused_and_changes_nothing() -> None:
    state, ev = started()
    state = drops(state, ev, [2] * ROWS)
    assert len(state.game["board"][2]) == ROWS and state.status == "running"
    after, outcome = MODE.apply(state, ev.drop(A, 2))
    assert isinstance(outcome, Refused) and outcome.code == "illegal_move"
    assert "column 2 is full" in outcome.message
    assert after is state
    # The refusal cost alice nothing: her turn, and a legal drop is applied.
    assert applied(MODE, after, ev.drop(A, 1)).game["turn"] == B


@pytest.mark.parametrize("column", [-1, 7, "3", 3.0, None, True])
def test_a_drop_outside_the_board_or_not_an_integer_is_refused(column: Any) -> None:
    state, ev = started()
    after, outcome = MODE.apply(state, ev.drop(A, column))
    assert isinstance(outcome, Refused) and outcome.code == "invalid_message"
    assert after is state


def test_an_action_of_another_mode_or_before_the_start_is_refused() -> None:
    ev = Events()
    waiting = applied(MODE, MODE.initial(MID), ev("join", A))
    after, outcome = MODE.apply(waiting, ev.drop(A, 0))
    assert isinstance(outcome, Refused) and outcome.code == "match_not_running" and after is waiting
    state, ev = started()
    after, outcome = MODE.apply(state, ev("act", A, kind="score", args={"points": 5}))
    assert isinstance(outcome, Refused) and outcome.code == "invalid_message" and after is state


def test_a_retried_drop_is_applied_once() -> None:
    state, ev = started()
    drop = ev.drop(A, 0)
    state = applied(MODE, state, drop)
    again, outcome = MODE.apply(state, drop)
    assert isinstance(outcome, Ignored) and outcome.duplicate and again is state


# --- wins and draws ---------------------------------------------------------------------------------


# Alice's and bob's alternating columns, alice first; alice's last drop completes the line.
WINS = {
    "horizontal": ([0, 0, 1, 1, 2, 2, 3], [(0, 0), (1, 0), (2, 0), (3, 0)]),
    "vertical": ([4, 5, 4, 5, 4, 5, 4], [(4, 0), (4, 1), (4, 2), (4, 3)]),
    "diagonal up": ([0, 1, 1, 2, 2, 3, 2, 3, 3, 6, 3], [(0, 0), (1, 1), (2, 2), (3, 3)]),
    "diagonal down": ([6, 5, 5, 4, 4, 3, 4, 3, 3, 0, 3], [(3, 3), (4, 2), (5, 1), (6, 0)]),
    # The last piece in the middle of its line, not at an end.
    "horizontal, filled in the middle": ([0, 0, 1, 1, 3, 3, 2], [(0, 0), (1, 0), (2, 0), (3, 0)]),
}


@pytest.mark.parametrize("name", list(WINS))
def test_four_in_a_row_wins_three_points(name: str) -> None:
    columns, line = WINS[name]
    state, ev = started()
    state = drops(state, ev, columns[:-1])
    assert state.status == "running" and state.game["result"] is None
    state, outcome = MODE.apply(state, ev.drop(A, columns[-1]))
    assert isinstance(outcome, Applied) and outcome.timers == ()  # no next turn to time
    assert state.status == "finished" and state.winner == A
    assert state.game["result"] == "four" and state.game["turn"] is None
    assert [tuple(cell) for cell in state.game["line"]] == line
    assert all(cells(state)[cell] == A for cell in line)
    assert {p: s.score for p, s in state.players.items()} == {A: 3, B: 0}
    assert MODE.credits(state) == {A: 3, B: 0}


def test_the_second_player_can_win_too() -> None:
    state, ev = started()
    state = drops(state, ev, [0, 1, 0, 1, 0, 1, 6, 1])
    assert state.winner == B and MODE.credits(state) == {A: 0, B: 3}


def test_no_score_before_the_end() -> None:
    state, ev = started()
    state = drops(state, ev, [0, 1, 2, 3])
    assert MODE.credits(state) == {A: 0, B: 0}


# Fills the board with no four in a row: columns 0-5 in pairs, with the pairs' order swapped every
# second pair of rows, then column 6 (pieces alternate so that no line forms).
def draw_columns() -> list[int]:
    order: list[int] = []
    for pair in ((0, 1), (2, 3), (4, 5)):
        for rows in range(3):  # three times two rows per pair of columns
            a, b = pair if rows % 2 == 0 else pair[::-1]
            order += [a, b, b, a]
    return order + [6] * ROWS


def test_a_full_board_without_four_in_a_row_is_a_draw_worth_one_point_each() -> None:
    columns = draw_columns()
    assert len(columns) == COLUMNS * ROWS
    state, ev = started()
    state = drops(state, ev, columns[:-1])
    assert state.status == "running"
    state = drops(state, ev, columns[-1:])
    assert state.status == "finished" and state.winner is None
    assert state.game["result"] == "draw" and state.game["line"] is None and state.game["turn"] is None
    assert all(len(column) == ROWS for column in state.game["board"])
    assert {p: s.score for p, s in state.players.items()} == {A: 1, B: 1}


def test_nothing_is_played_after_the_end() -> None:
    state, ev = started()
    state = drops(state, ev, WINS["vertical"][0])
    after, outcome = MODE.apply(state, ev.drop(B, 0))
    assert isinstance(outcome, Refused) and outcome.code == "match_not_running" and after is state


def test_line_through_sees_every_direction_and_nothing_shorter() -> None:
    board: list[list[int]] = [[0], [0], [0], [1], [], [], []]
    assert line_through(board, 2, 0) is None
    board[3] = [0]
    assert line_through(board, 3, 0) == [(0, 0), (1, 0), (2, 0), (3, 0)]
    five = [[0], [0], [0], [0], [0], [], []]
    assert line_through(five, 2, 0) == [(c, 0) for c in range(5)]


# --- the turn timer ---------------------------------------------------------------------------------


def test_a_turn_that_runs_out_loses_the_match_once() -> None:
    state, ev = started()
    state = drops(state, ev, [0])  # bob to move, turn 2
    timer = ev.turn_over(B, 2)
    state, outcome = MODE.apply(state, timer)
    assert isinstance(outcome, Applied)
    assert state.status == "finished" and state.winner == A
    assert state.game["result"] == "timeout" and state.game["turn"] is None
    assert {p: s.score for p, s in state.players.items()} == {A: 3, B: 0}
    again, outcome = MODE.apply(state, timer)  # SQS delivered it twice
    assert isinstance(outcome, Ignored) and again is state


@pytest.mark.parametrize(
    ("player", "ref", "why"),
    [
        (A, 1, "a turn played in time"),
        (B, 1, "the wrong player"),
        (B, 3, "a turn not begun"),
        (A, 2, "not alice's"),
    ],
)
def test_a_stale_turn_timer_changes_nothing(player: str, ref: int, why: str) -> None:
    state, ev = started()
    state = drops(state, ev, [0])  # alice played turn 1 in time; bob's turn 2 runs
    after, outcome = MODE.apply(state, ev.turn_over(player, ref))
    assert isinstance(outcome, Ignored), why
    assert after is state


def test_another_timer_kind_of_the_mode_is_ignored() -> None:
    state, ev = started()
    after, outcome = MODE.apply(state, ev("timer", A, timer="hurry", ref=1))
    assert isinstance(outcome, Ignored) and after is state


def test_no_turn_timer_when_turn_seconds_is_zero() -> None:
    mode = make_mode(0)
    ev = Events()
    state = applied(mode, mode.initial(MID), ev("join", A))
    state, outcome = mode.apply(state, ev("join", B))
    assert isinstance(outcome, Applied) and outcome.timers == () and state.game["deadline"] == 0
    state, outcome = mode.apply(state, ev.drop(A, 0))
    assert isinstance(outcome, Applied) and outcome.timers == ()


def test_events_that_do_not_move_the_turn_schedule_no_turn_timer() -> None:
    state, ev = started()
    state, outcome = MODE.apply(state, ev("disconnect", B))
    assert isinstance(outcome, Applied)
    assert [t.kind for t in outcome.timers] == [GRACE]  # the reconnect grace only
    state, outcome = MODE.apply(state, ev("join", B))  # back
    assert isinstance(outcome, Applied) and outcome.presence == "back" and outcome.timers == ()
    assert state.game["turn"] == A and state.game["ply"] == 1


@pytest.mark.parametrize("value", ["30", 1.5, 0])
def test_turn_seconds_reads_numbers_and_serverless_defaults(value: Any) -> None:
    assert make_mode(value).turn_ms == int(float(value) * 1000)


@pytest.mark.parametrize("value", [-1, "soon", True, None, float("nan"), [30]])
def test_a_bad_turn_seconds_is_refused_at_load(value: Any) -> None:
    with pytest.raises(ValueError, match="turnSeconds"):
        make_mode(value)


def test_unknown_options_and_other_seat_counts_are_refused_at_load() -> None:
    settings = ModeSettings(plugin="games.connect_four", seats=3)
    with pytest.raises(ValueError, match="seats must be 2"):
        ConnectFour("connect-four", 3, settings, {})
    with pytest.raises(ValueError, match="unknown options"):
        ConnectFour("connect-four", 2, settings, {"turnSecs": 5})


# --- the lifecycle the base class gives -------------------------------------------------------------


def test_leaving_a_running_match_hands_the_other_player_the_win() -> None:
    state, ev = started()
    state = drops(state, ev, [0, 1])
    state, outcome = MODE.apply(state, ev("leave", B))
    assert isinstance(outcome, Applied) and outcome.presence == "left"
    assert state.status == "finished" and state.winner == A
    assert state.game["result"] == "walkover" and state.game["turn"] is None
    assert {p: s.score for p, s in state.players.items()} == {A: 3, B: 0}


def test_a_player_whose_reconnect_grace_runs_out_forfeits() -> None:
    state, ev = started()
    state, outcome = MODE.apply(state, ev("disconnect", A))
    assert isinstance(outcome, Applied)
    (grace,) = outcome.timers
    state, outcome = MODE.apply(state, ev("timer", A, timer=GRACE, ref=grace.ref))
    assert isinstance(outcome, Applied) and outcome.presence == "forfeited"
    assert state.status == "finished" and state.winner == B and state.players[A].forfeited
    assert {p: s.score for p, s in state.players.items()} == {A: 0, B: 3}
    # Her turn timer, due later, finds the match over.
    after, outcome = MODE.apply(state, ev.turn_over(A, 1))
    assert isinstance(outcome, Ignored) and after is state


def test_a_player_back_within_the_grace_plays_on() -> None:
    state, ev = started()
    state, outcome = MODE.apply(state, ev("disconnect", A))
    assert isinstance(outcome, Applied)
    (grace,) = outcome.timers
    state = applied(MODE, state, ev("join", A))
    after, outcome = MODE.apply(state, ev("timer", A, timer=GRACE, ref=grace.ref))
    assert isinstance(outcome, Ignored) and after is state
    assert applied(MODE, state, ev.drop(A, 3)).game["board"][3] == [0]


def test_an_admin_end_scores_nobody() -> None:
    state, ev = started()
    state = applied(MODE, state, ev("end", A))
    assert state.status == "finished" and state.winner is None and state.game["result"] == "stopped"
    assert MODE.credits(state) == {A: 0, B: 0}


def test_a_third_player_finds_no_seat() -> None:
    state, ev = started()
    after, outcome = MODE.apply(state, ev("join", "carol"))
    assert isinstance(outcome, Refused) and outcome.code == "match_full" and after is state


# --- replay -----------------------------------------------------------------------------------------


def replayed(mode: ConnectFour, log: list[GameEvent]) -> Match:
    return applied(mode, mode.initial(MID), *log)


def run(mode: ConnectFour, events: list[GameEvent]) -> tuple[Match, list[GameEvent]]:
    """Applies every event as the processor would; the log keeps the applied ones (what it stores)."""
    state, log = mode.initial(MID), []
    for event in events:
        after, outcome = mode.apply(state, event)
        if isinstance(outcome, Applied):
            log.append(event)
        else:
            assert after is state, (event, outcome)
        state = after
    return state, log


def test_replaying_the_applied_events_reproduces_the_match() -> None:
    ev = Events()
    events = [ev("join", A), ev("join", B), ev.drop(B, 0), ev.drop(A, 3), ev.drop(B, 3), ev.drop(A, 9)]
    # Stale turn timers (turns 2 and 3 were played), then bob lets turn 4 run out, twice delivered.
    events += [ev.drop(A, 2), ev.turn_over(B, 2), ev.turn_over(A, 3), ev.turn_over(B, 4), ev.turn_over(B, 4)]
    events += [ev.drop(B, 4)]
    state, log = run(MODE, events)
    assert state.status == "finished" and state.winner == A and state.game["result"] == "timeout"
    assert len(log) == 6  # two joins, three drops, one timer
    assert replayed(MODE, log) == state
    assert replayed(make_mode(), log) == state  # another instance of the same rules


# Random sequences of moves, legal or not, each (what, player, n): mostly (what < 16) a drop by the
# player to move into column n % 7, so that games reach four in a row and full boards; else a drop by
# `player` into any column (some off the board), a turn timer for `player` (for turn n, or the current
# one), a disconnect, a return or a leave.
MOVES = st.integers(0, 120).flatmap(  # st.lists alone draws mostly short lists, too short to fill a board
    lambda size: st.lists(
        st.tuples(st.integers(0, 21), st.sampled_from([A, B]), st.integers(0, 44)),
        min_size=size,
        max_size=size,
    )
)
LIFECYCLE = ("disconnect", "join", "leave")


def played(mode: ConnectFour, moves: list[tuple[int, str, int]]) -> tuple[Match, list[GameEvent]]:
    """The match after these moves (checking the board after each), and every event sent."""
    ev = Events()
    sent = [ev("join", A), ev("join", B)]
    state = applied(mode, mode.initial(MID), *sent)
    for what, player, n in moves:
        if what < 16:
            event = ev.drop(state.game["turn"] or A, n % COLUMNS)
        elif what < 18:
            event = ev.drop(player, n % (COLUMNS + 2) - 1)
        elif what < 20:
            event = ev.turn_over(player, n + 1 if what == 18 else state.game["ply"])
        else:
            event = ev(LIFECYCLE[n % 3], player)
        sent.append(event)
        before = copy.deepcopy(state)
        after, outcome = mode.apply(state, event)
        assert state == before  # never mutated in place: the earlier state is still the earlier state
        if isinstance(outcome, Applied):
            assert after.version == state.version + 1
        else:
            assert after is state, (event, outcome)  # a refused or ignored event changes nothing
        state = after
        check_board(state)
    return state, sent


def check_board(state: Match) -> None:
    game = state.game
    board = game["board"]
    assert len(board) == COLUMNS and all(len(column) <= ROWS for column in board)
    assert all(seat in (0, 1) for column in board for seat in column)
    pieces = [seat for column in board for seat in column]
    # Turns alternated: alice (seat 0) has as many pieces as bob or one more, and the ply counts them.
    assert pieces.count(0) - pieces.count(1) in (0, 1)
    assert game["ply"] == len(pieces) + 1
    if state.status == "running":
        assert game["result"] is None and game["turn"] == game["seats"][len(pieces) % 2]
        assert not any(line_through(board, c, r) for c in range(COLUMNS) for r in range(len(board[c])))
    else:
        assert game["turn"] is None and game["result"] is not None
    scores = sorted(p.score for p in state.players.values())
    if state.status != "finished" or game["result"] == "stopped":
        assert scores == [0, 0]
    elif game["result"] == "draw":
        assert scores == [1, 1] and state.winner is None
    else:
        assert scores == [0, 3] and state.players[state.winner or ""].score == 3


@settings(max_examples=200, deadline=None)
@given(MOVES)
def test_random_moves_never_corrupt_the_board_and_replay_to_the_same_result(
    moves: list[tuple[int, str, int]],
) -> None:
    state, sent = played(MODE, moves)
    state_again, log = run(make_mode(), sent)
    assert state_again == state  # the same events, refusals included, give the same match
    assert replayed(MODE, log) == state  # and so do the applied ones alone, from initial()


def test_serverless_yml_declares_the_mode_with_its_local_turn_timer() -> None:
    from backend.config import game_settings
    from backend.game.modes import Modes

    mode = Modes.load(game_settings())["connect-four"]  # GAME_SETTINGS: the local stage's (tests/conftest.py)
    assert isinstance(mode, ConnectFour) and mode.seats == 2 and not mode.reports_scores
    assert 0 < mode.turn_ms <= 15_000, (
        "the local stage's turn timer is short (custom.stages.local.turnSeconds)"
    )
    assert mode.settings.grace_ms < mode.turn_ms  # a dropped player forfeits before their turn runs out
    assert set(mode.kinds) == {"drop"}
