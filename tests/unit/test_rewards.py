"""The settlement's rules (backend/game/rewards.py): placements, wins and coins."""

from __future__ import annotations

from backend.game import rewards


def test_placements_share_the_better_place_on_a_tie() -> None:
    assert rewards.placements({"a": 30, "b": 50, "c": 30, "d": 10}) == {"b": 1, "a": 2, "c": 2, "d": 4}


def test_a_win_needs_an_opponent_and_ties_for_first_are_all_wins() -> None:
    assert rewards.winners({"solo": 100}) == set()
    assert rewards.winners({"a": 200, "b": 50}) == {"a"}
    assert rewards.winners({"a": 7, "b": 7}) == {"a", "b"}


def test_coins_by_mode_and_place_and_none_past_the_table() -> None:
    assert rewards.coins("duel", {"a": 200, "b": 50}) == {"a": 20, "b": 5}
    scores = {f"p{i}": 100 - i for i in range(6)}
    assert rewards.coins("arena", scores) == {"p0": 50, "p1": 25, "p2": 10, "p3": 5}
    assert rewards.coins("practice", {"solo": 100}) == {}


def test_a_mode_without_a_table_earns_no_coins_and_is_settled() -> None:
    assert "connect-four" not in rewards.REWARDS
    assert rewards.coins("connect-four", {"a": 3, "b": 0}) == {}
    assert rewards.placements({"a": 3, "b": 0}) == {"a": 1, "b": 2}
