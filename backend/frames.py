"""Turns a raw client frame into a validated protocol model, or into the GameError that explains why not."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from backend import wirejson
from backend.errors import InvalidMessage, MalformedFrame, UnknownAction
from backend.protocol import CLIENT_ACTIONS, client_frame_adapter


def request_ref(raw: Any) -> str | None:
    """The client's `id`, echoed as `ref` in an error, when it sent a usable one: a short string that can
    be written back as JSON text (a lone surrogate such as "\\ud800" parses, but cannot be encoded)."""
    if isinstance(raw, dict):
        ref = raw.get("id")
        if isinstance(ref, str) and 0 < len(ref) <= 64 and _encodable(ref):
            return ref
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def decode(body: str | None) -> Any:
    if body is None or body == "":
        raise MalformedFrame("empty frame; send a JSON object with an `action`")
    try:
        raw = wirejson.loads(body)
    except wirejson.NotJson as exc:
        raise MalformedFrame(f"frame is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise MalformedFrame("frame must be a JSON object with an `action`")
    return raw


def parse(raw: dict[str, Any]) -> BaseModel:
    action = raw.get("action")
    if action is None:
        raise UnknownAction("missing `action`; expected one of " + ", ".join(CLIENT_ACTIONS))
    if not isinstance(action, str) or action not in CLIENT_ACTIONS:
        raise UnknownAction(
            f"unknown action {str(action)[:40]!r}; expected one of " + ", ".join(CLIENT_ACTIONS)
        )
    try:
        frame: BaseModel = client_frame_adapter.validate_python(raw)
    except ValidationError as exc:
        raise InvalidMessage(_explain(exc)) from None
    return frame


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        # Drop the discriminator tag pydantic puts first in the location (e.g. "act", "score").
        loc = [str(p) for p in err["loc"] if p not in CLIENT_ACTIONS and p not in ("score", "move")]
        where = ".".join(loc) or "frame"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
