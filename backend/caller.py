"""Who sent a frame: the connection and the player the authorizer verified, never what the frame says."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from backend.ids import ConnectionId, PlayerId


@dataclass(frozen=True)
class Caller:
    connection_id: ConnectionId
    player_id: PlayerId
    role: str
    received_at: int  # epoch ms, the server's clock

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Caller:
        ctx = event["requestContext"]
        auth = ctx.get("authorizer") or {}
        return cls(
            connection_id=ConnectionId(ctx["connectionId"]),
            player_id=PlayerId(auth.get("playerId", "")),
            role=str(auth.get("role", "player")),
            received_at=int(ctx.get("requestTimeEpoch") or time.time() * 1000),
        )
