"""The message function's flood guard: per connection, per execution environment, in memory.

A token bucket per connection (custom.sessions: framesPerSecond, frameBurst). A frame beyond it is not
handled: it gets the error `rate_limited`, at the cost of a dictionary lookup, so that a flood neither
reaches the stream nor holds the function's concurrency for long. A connection that goes on after
`floodClose` more refusals (without letting its bucket fill up again) is closed.

The bucket is refilled by API Gateway's receive times (`requestTimeEpoch`), not by when the function
gets to a frame: frames that queue up in front of a busy function still count as the flood they were.

Cheap, not exact: API Gateway spreads one connection's frames over every environment the function runs
in, and each counts only its own share, so a connection gets up to `frameBurst` frames through per
environment. The exact limit is the rules' (actions per second per player and mode, by the actions'
receive times, refused as `rate_limited` in the stream's order): this one protects the function and the
stream, that one the game.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Verdict = Literal["ok", "refused", "close"]
MAX_TRACKED = 10_000  # connections an environment remembers (least recently seen forgotten first)


@dataclass
class _Bucket:
    tokens: float
    at: float
    refused: int = 0
    closed: bool = False


class FrameGuard:
    def __init__(
        self,
        rate: float,
        burst: int,
        flood_close: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.flood_close = flood_close
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def admit(self, connection_id: str, received_at: float | None = None) -> Verdict:
        """ok: handle the frame; refused: answer `rate_limited`; close: that, and close the connection
        (once: its later frames are only refused). `received_at`: when API Gateway received the frame,
        in seconds (the guard's clock when not given)."""
        now = self._clock() if received_at is None else received_at
        bucket = self._buckets.pop(connection_id, None) or _Bucket(float(self.burst), now)
        self._buckets[connection_id] = bucket
        if len(self._buckets) > MAX_TRACKED:
            self._buckets.popitem(last=False)
        # Concurrent frames reach an environment slightly out of order: time never runs backwards here.
        bucket.tokens = min(float(self.burst), bucket.tokens + max(0.0, now - bucket.at) * self.rate)
        bucket.at = max(bucket.at, now)
        if bucket.tokens >= self.burst:
            bucket.refused = 0  # calm again: a later burst starts afresh
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return "ok"
        bucket.refused += 1
        if bucket.refused > self.flood_close and not bucket.closed:
            bucket.closed = True
            return "close"
        return "refused"
