"""For every mode this stage declares: a match played through the processor (random actions, legal or
not, retries, leaves, in batches) and stored, rebuilt from its event log by the same rules, is the
stored match exactly. A mode added to serverless.yml without a player here fails the first test."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from backend.game import modes, rules
from tests.store.test_processor import World, mid, world

__all__ = ["world"]  # the fixture, imported for pytest

Action = Callable[[random.Random], tuple[str, dict[str, Any]]]

# One random action of each mode's kinds: (kind, args). Illegal ones included (refused, not logged).
ACTIONS: dict[str, Action] = {
    "race": lambda rnd: (
        ("score", {"points": rnd.randint(1, 60)})
        if rnd.random() < 0.7
        else ("move", {"x": rnd.randint(0, 1000), "y": rnd.randint(0, 1000)})
    ),
    "connect-four": lambda rnd: ("drop", {"column": rnd.randint(0, 6)}),
}


def player_of(mode: str) -> Action:
    plugin = type(modes.mode(mode)).__module__
    return ACTIONS["race"] if plugin == "games.race" else ACTIONS[mode]


def test_every_declared_mode_has_a_player_here() -> None:
    for name in modes.configured().names():
        assert player_of(name) is not None, name


@pytest.mark.parametrize("name", modes.configured().names())
@pytest.mark.parametrize("seed", [1, 2])
def test_a_stored_match_replays_from_its_event_log_exactly(world: World, name: str, seed: int) -> None:
    rnd = random.Random(f"{name}-{seed}")
    mode = modes.mode(name)
    players = [f"p{i}" for i in range(mode.seats)]
    m = mid(seed)
    world.start(m, name, players)
    act = player_of(name)
    feed = world.feed
    sent: list[dict[str, Any]] = []
    for i in range(60):
        roll = rnd.random()
        if sent and roll < 0.1:
            feed.retry(rnd.choice(sent))  # a client retry of an action id
            continue
        if roll < 0.12:
            feed.leave(m, rnd.choice(players), f"l{i}")
            continue
        kind, args = act(rnd)
        sent.append(feed.publish(m, players[i % len(players)], "act", f"a{i}", kind=kind, args=args))
    # In batches of random sizes, each delivered twice (Kinesis redelivers): nothing changes twice.
    records = list(feed.records)
    start = 0
    while start < len(records):
        stop = start + rnd.randint(1, 12)
        for _ in range(2):
            assert world.deliver(records[start:stop]) == {"batchItemFailures": []}
        start = stop

    stored = world.matches.load(m).match
    assert stored.version > len(players), "the generator must get actions applied"
    state = rules.new_match(m, name)
    for version, event in world.log.read(m):
        state, outcome = rules.apply(state, event)
        assert isinstance(outcome, rules.Applied) and state.version == version, (event, outcome)
    assert state == stored
