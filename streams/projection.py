"""What a window of the matches table's stream adds up to (pure: no I/O, no clock).

Each hot-path write of a match is one stream record, with the item before and after. A record becomes
a `Change` (the players' totals before and after, the events the write applied, when its last record
was received, where the players' pushes go), and the changes of a tumbling window fold into a
`Window`: per match, per UTC day, per player, the total the boards are believed to hold and the total
they must hold. The projector (streams.projector) then writes that once per window, however many
actions it sums up.

The Window travels between the invocations of one window as Lambda's `state` (a JSON object of at most
1 MB per shard, or Lambda ends the window early), so it is plain JSON, kept small.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backend.game import modes
from backend.game.plugin import Match
from backend.protocol import GameEvent
from backend.store.matches import connections_of, match_of, tail_of

STATE_VERSION = 1
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Change:
    """One state write of the hot path, as the table's stream reports it."""

    match_id: str
    mode: str
    seq: int  # the highest Kinesis sequence number the write applied: orders a match's writes
    last_at: int  # receive time (epoch ms) of the write's last record: the day its points count on
    before: dict[str, int]  # each player's match total before the write
    after: dict[str, int]
    status: str
    connections: dict[str, str]
    events: list[tuple[int, GameEvent]]
    winner: str | None = None  # after the write
    winner_before: str | None = None


def _seq(item: dict[str, Any] | None) -> int:
    return int(item["seq"]["S"]) if item and "seq" in item else 0


def _totals(match: Match | None) -> dict[str, int]:
    """What the match credits each player so far: its mode's plug-in says (GameMode.credits)."""
    return modes.mode(match.mode).credits(match) if match else {}


def change_of(record: dict[str, Any]) -> Change | None:
    """The Change in a DynamoDB stream record, or None for writes that are not the processor's (a match
    created or a seat claimed by matchmaking, the lobby item, an expiry)."""
    ddb = record.get("dynamodb") or {}
    new = ddb.get("NewImage")
    old = ddb.get("OldImage")
    if record.get("eventName") == "REMOVE" or not new or _seq(new) == _seq(old):
        return None
    after = match_of(new)
    if after is None:
        return None
    before = match_of(old) if old else None
    return Change(
        match_id=after.match_id,
        mode=after.mode,
        seq=_seq(new),
        last_at=int(new["lastAt"]["N"]),
        before=_totals(before),
        after=_totals(after),
        status=after.status,
        connections=connections_of(new),
        events=tail_of(new),
        winner=after.winner,
        winner_before=before.winner if before else None,
    )


@dataclass
class Day:
    """The points one match's players scored on one UTC day of the window."""

    last_at: int  # the latest receive time seen for the day: picks the day's and week's rows
    # player -> (total the boards held before the window's first change of it, total after the last)
    totals: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass
class MatchWindow:
    mode: str
    seq: int = 0
    last_at: int = 0  # receive time of the latest event applied (what a settlement's expiry counts from)
    status: str = "waiting"
    connections: dict[str, str] = field(default_factory=dict)
    days: list[Day] = field(default_factory=list)
    # The events of each write, by the write's first version (a write delivered twice counts once).
    writes: dict[int, list[tuple[int, GameEvent]]] = field(default_factory=dict)
    winner: str | None = None  # after the window's last change
    winner_before: str | None = None  # before its first: a win the boards are believed to hold already
    # Every player's match total after the latest write: what a finished match is settled on.
    scores: dict[str, int] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    def events(self) -> list[tuple[int, GameEvent]]:
        """Every event the window's writes applied, in version order, each once."""
        return sorted({v: e for events in self.writes.values() for v, e in events}.items())


@dataclass
class Window:
    matches: dict[str, MatchWindow] = field(default_factory=dict)

    def fold(self, change: Change) -> bool:
        """Adds a change; False for one this window already holds, or an older write of a match seen
        later (a redelivery), which must not move anything back."""
        entry = self.matches.get(change.match_id)
        if entry is None:
            entry = self.matches[change.match_id] = MatchWindow(
                change.mode, winner_before=change.winner_before
            )
        if change.seq <= entry.seq:
            return False
        entry.seq = change.seq
        entry.winner = change.winner
        # From the events, not the write: a write's last record may be a refused one, which a batch cut
        # elsewhere leaves out.
        entry.last_at = max([entry.last_at, *(e.receivedAt for _, e in change.events)])
        entry.status = change.status
        entry.scores = dict(change.after)
        # Merged, not replaced: a player who left the match in this window is still told their rank.
        entry.connections = {**entry.connections, **change.connections}
        if change.events:
            entry.writes[change.events[0][0]] = change.events
        moved = {
            p: (change.before.get(p, 0), t) for p, t in change.after.items() if t != change.before.get(p, 0)
        }
        if not moved:
            return True
        if entry.days and entry.days[-1].last_at // DAY_MS == change.last_at // DAY_MS:
            day = entry.days[-1]
            day.last_at = max(day.last_at, change.last_at)
        else:
            day = Day(change.last_at)
            entry.days.append(day)
        for player, (before, after) in moved.items():
            first = day.totals.get(player, (before, after))[0]
            day.totals[player] = (first, after)
        return True

    # --- Lambda's `state`: plain JSON ------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "m": {
                match_id: {
                    "mode": w.mode,
                    "seq": str(w.seq),  # more digits than a JSON number keeps exactly everywhere
                    "at": w.last_at,
                    "st": w.status,
                    "c": w.connections,
                    "d": [[d.last_at, {p: list(t) for p, t in d.totals.items()}] for d in w.days],
                    "s": w.scores,
                    "w": [
                        [[v, e.model_dump(exclude_none=True)] for v, e in events]
                        for events in w.writes.values()
                    ],
                    # Optional (a window begun by an older version has none): who won, before and after.
                    **({"wb": w.winner_before} if w.winner_before else {}),
                    **({"wn": w.winner} if w.winner else {}),
                }
                for match_id, w in self.matches.items()
            },
        }

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> Window:
        if not state:
            return cls()
        if state.get("v") != STATE_VERSION:
            raise ValueError(f"unknown window state version {state.get('v')!r}")
        window = cls()
        for match_id, w in state["m"].items():
            window.matches[match_id] = MatchWindow(
                mode=w["mode"],
                seq=int(w["seq"]),
                last_at=int(w["at"]),
                status=w["st"],
                connections=dict(w["c"]),
                days=[
                    Day(int(at), {p: (int(t[0]), int(t[1])) for p, t in totals.items()})
                    for at, totals in w["d"]
                ],
                writes={
                    int(events[0][0]): [(int(v), GameEvent.model_validate(e)) for v, e in events]
                    for events in w["w"]
                },
                winner=w.get("wn"),
                winner_before=w.get("wb"),
                # Absent from a state written before settlement took the scores: nothing to settle on.
                scores={p: int(t) for p, t in (w.get("s") or {}).items()},
            )
        return window
