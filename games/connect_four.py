"""Connect four: the `connect-four` mode, a turn-based game the server decides entirely.

Two seats; the first to join moves first. A move is `drop` (`column`, 0-6): the piece falls to the
lowest free cell of the column. Four of one player's pieces in a row (horizontal, vertical or diagonal)
win; a full board is a draw. A drop out of turn or into a full column is refused as `illegal_move` and
changes nothing. Each turn has `turnSeconds` (custom.modes.connect-four.options): a player who lets it
run out loses.

The client reports no score: the rules credit 3 points to the winner, 1 to each player of a draw and 0
to a loser, when the match ends (the boards take `Player.score`, GameMode.credits' default).

`Match.game`, which every player receives as the `state` frame's `game` (never mutated in place):
- `seats`: the two players, in turn order;
- `board`: seven columns, each the seat numbers (0, 1) of its pieces from the bottom up;
- `turn`: whose turn it is (None once the match is over); `ply`: the turn's number (drops so far + 1),
  which the turn timer names; `deadline`: when the turn runs out (epoch ms, the receive time of the
  event that began it plus turnSeconds; 0 without a turn timer);
- `last`: the last drop's [column, row]; `line`: the winning four cells' [column, row], or None;
- `result`: None while it runs, then how it ended: `four`, `draw`, `timeout` (the player to move let
  the turn run out), `walkover` (the other player left or forfeited), `stopped` (ended with no winner).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Annotated, Any, Literal

from pydantic import Field

from backend.errors import GameError, IllegalMove
from backend.game.plugin import ActFrame, Applied, GameMode, Match, Outcome, Timer
from backend.protocol import GameEvent

COLUMNS = 7
ROWS = 6
TURN = "turn"  # the turn timer's kind
WIN, DRAW, LOSS = 3, 1, 0
# The four directions a line can run in (one half of each: the other is the same line walked back).
DIRECTIONS = ((1, 0), (0, 1), (1, 1), (1, -1))


class Drop(ActFrame):
    kind: Literal["drop"]
    column: Annotated[int, Field(ge=0, le=COLUMNS - 1, description="0 (left) to 6 (right)")]


Board = list[list[int]]
Cell = tuple[int, int]


def empty_board() -> Board:
    return [[] for _ in range(COLUMNS)]


def line_through(board: Board, column: int, row: int) -> list[Cell] | None:
    """Four or more cells in a row of the piece at (column, row), through it: the first such line found
    (the newest piece is the only one that can have completed a line)."""
    seat = board[column][row]

    def owned(c: int, r: int) -> bool:
        return 0 <= c < COLUMNS and 0 <= r < len(board[c]) and board[c][r] == seat

    for dc, dr in DIRECTIONS:
        cells = [(column, row)]
        for sign in (1, -1):
            c, r = column + sign * dc, row + sign * dr
            while owned(c, r):
                cells.append((c, r))
                c, r = c + sign * dc, r + sign * dr
        if len(cells) >= 4:
            return sorted(cells)
    return None


def full(board: Board) -> bool:
    return all(len(column) == ROWS for column in board)


def _seconds(raw: Any) -> float:
    # A serverless.yml default (`${..., 30}`) can arrive as a string; bool is an int, but `true` is a
    # typo, not one second.
    try:
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise TypeError
        seconds = float(raw)
    except (TypeError, ValueError):
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ValueError(
            f"options.turnSeconds must be a number of seconds >= 0 (0: no turn timer), not {raw!r}"
        )
    return seconds


class ConnectFour(GameMode):
    actions = (Drop,)

    def configure(self, options: Mapping[str, Any]) -> None:
        if self.seats != 2:
            raise ValueError("connect four is a game of two: seats must be 2")
        unknown = set(options) - {"turnSeconds"}
        if unknown:
            raise ValueError(f"unknown options {sorted(unknown)} (connect four reads turnSeconds)")
        self.turn_ms = int(_seconds(options.get("turnSeconds", 0)) * 1000)

    # --- the game --------------------------------------------------------------------------------

    def start(self, state: Match) -> Match:
        seats = list(state.players)
        game = {
            "seats": seats,
            "board": empty_board(),
            "turn": seats[0],
            "ply": 1,
            "deadline": 0,
            "last": None,
            "line": None,
            "result": None,
        }
        return replace(state, game=game)

    def play(self, state: Match, player: str, action: ActFrame, at: int) -> Match | GameError:
        assert isinstance(action, Drop)  # the only action this mode declares (parse checked it)
        game = state.game
        if game["turn"] != player:
            return IllegalMove("it is not your turn")
        column = action.column
        if len(game["board"][column]) >= ROWS:
            return IllegalMove(f"column {column} is full")
        seat = game["seats"].index(player)
        # A new board: the old one belongs to the state before this move (and to its replay).
        board = [list(c) for c in game["board"]]
        board[column].append(seat)
        row = len(board[column]) - 1
        line = line_through(board, column, row)
        over = line is not None or full(board)
        result = ("four" if line is not None else "draw") if over else None
        after = {
            **game,
            "board": board,
            "turn": None if over else game["seats"][1 - seat],
            "ply": game["ply"] + 1,
            "last": [column, row],
            "line": [list(cell) for cell in line] if line is not None else None,
            "result": result,
        }
        return replace(state, game=after)

    def ended(self, state: Match) -> tuple[bool, str | None]:
        result = state.game.get("result")
        if result == "four":
            # The player who just dropped: the seat of the last piece.
            column, row = state.game["last"]
            return True, state.game["seats"][state.game["board"][column][row]]
        return (True, None) if result == "draw" else (False, None)

    # --- the turn timer --------------------------------------------------------------------------

    def schedule(self, before: Match, after: Match) -> tuple[Timer, ...]:
        turn = after.game.get("turn")
        if not self.turn_ms or turn is None or before.game.get("ply") == after.game.get("ply"):
            return ()
        return (Timer(TURN, turn, after.game["ply"], self.turn_ms),)

    def timeout(self, state: Match, kind: str, player: str, ref: int) -> Match | None:
        game = state.game
        # Only the turn it was started for: a turn played in time, or a timer delivered again, is stale.
        if kind != TURN or game.get("turn") != player or game.get("ply") != ref:
            return None
        other = next(p for p in game["seats"] if p != player)
        return replace(
            state, status="finished", winner=other, game={**game, "turn": None, "result": "timeout"}
        )

    # --- the end: scores the server decides --------------------------------------------------------

    def apply(self, state: Match, event: GameEvent) -> tuple[Match, Outcome]:
        after, outcome = super().apply(state, event)
        if not isinstance(outcome, Applied):
            return after, outcome
        if after.game.get("turn") is not None and after.game.get("ply") != state.game.get("ply"):
            # The turn began with this event: when it runs out (the timer is scheduled from about now).
            deadline = event.receivedAt + self.turn_ms if self.turn_ms else 0
            after = replace(after, game={**after.game, "deadline": deadline})
        if after.status == "finished" and state.status != "finished":
            after = self._scored(after)
        return after, outcome

    def _scored(self, state: Match) -> Match:
        """The finished match with its scores, however it ended: by the game, a turn timer, or the
        lifecycle (the other player left or forfeited: the base names them the winner; an admin's end)."""
        game = dict(state.game)
        if game and game.get("result") is None:
            game["result"] = "walkover" if state.winner is not None else "stopped"
        if game:
            game["turn"] = None
        drawn = game.get("result") == "draw"

        def score(player: str) -> int:
            if drawn:
                return DRAW
            return WIN if player == state.winner else LOSS

        players = {p: replace(s, score=score(p)) for p, s in state.players.items()}
        return replace(state, players=players, game=game)


MODE = ConnectFour
