"""The message function's flood guard (backend.guard), on a fake clock."""

from __future__ import annotations

from backend.guard import MAX_TRACKED, FrameGuard


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_frames_are_refused_until_the_bucket_refills() -> None:
    clock = Clock()
    guard = FrameGuard(rate=10, burst=5, flood_close=100, clock=clock)
    assert [guard.admit("c") for _ in range(6)] == ["ok"] * 5 + ["refused"]
    clock.now += 0.1  # one frame's worth at 10 a second
    assert [guard.admit("c") for _ in range(2)] == ["ok", "refused"]


def test_each_connection_has_its_own_bucket() -> None:
    guard = FrameGuard(rate=1, burst=2, flood_close=100, clock=Clock())
    assert [guard.admit("a") for _ in range(3)] == ["ok", "ok", "refused"]
    assert guard.admit("b") == "ok"


def test_a_connection_that_keeps_flooding_is_closed_once() -> None:
    guard = FrameGuard(rate=1, burst=2, flood_close=3, clock=Clock())
    verdicts = [guard.admit("c") for _ in range(2 + 3 + 3)]
    assert verdicts == ["ok", "ok", "refused", "refused", "refused", "close", "refused", "refused"]


def test_a_connection_calm_again_starts_its_flood_count_afresh() -> None:
    clock = Clock()
    guard = FrameGuard(rate=1, burst=2, flood_close=3, clock=clock)
    assert [guard.admit("c") for _ in range(5)] == ["ok", "ok", "refused", "refused", "refused"]
    clock.now += 10  # the bucket fills up again
    assert [guard.admit("c") for _ in range(5)] == ["ok", "ok", "refused", "refused", "refused"]


def test_memory_is_bounded_and_the_least_recently_seen_is_forgotten() -> None:
    guard = FrameGuard(rate=1, burst=1, flood_close=100, clock=Clock())
    assert guard.admit("first") == "ok"
    assert guard.admit("first") == "refused"
    for i in range(MAX_TRACKED):
        guard.admit(f"c{i}")
    assert guard.admit("first") == "ok"  # forgotten, so a new bucket


def test_the_receive_times_refill_the_bucket_and_never_run_backwards() -> None:
    guard = FrameGuard(rate=10, burst=2, flood_close=100, clock=Clock())
    # Frames received at once but handled later (a busy function) are still a burst.
    assert [guard.admit("c", 50.0) for _ in range(3)] == ["ok", "ok", "refused"]
    assert guard.admit("c", 49.0) == "refused"  # an earlier receive time adds nothing
    assert guard.admit("c", 50.1) == "ok"  # 0.1 s after the newest one: one frame's worth
