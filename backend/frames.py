"""Turns a raw client frame into a validated protocol model, or into the GameError that explains why not."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from backend import wirejson
from backend.config import game_settings
from backend.errors import InvalidMessage, MalformedFrame, UnknownAction
from backend.protocol import CLIENT_ACTIONS, Join, client_frame_adapter


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
    if action == "act":
        # A mode's action: its kinds and fields are the modes' plug-ins' (backend.game.modes).
        from backend.game import modes

        kinds = modes.configured().actions
        kind = raw.get("kind")
        if not isinstance(kind, str) or kind not in kinds:
            raise InvalidMessage(
                f"act: unknown kind {str(kind)[:40]!r}; the modes' actions are " + ", ".join(kinds)
            )
        try:
            act: BaseModel = kinds[kind].model_validate(raw)
        except ValidationError as exc:
            raise InvalidMessage(_explain(exc)) from None
        return act
    try:
        frame: BaseModel = client_frame_adapter.validate_python(raw)
    except ValidationError as exc:
        raise InvalidMessage(_explain(exc)) from None
    if isinstance(frame, Join) and frame.mode not in game_settings().modes:
        # Modes are data (custom.modes): the frame checks the grammar, this the stage's list.
        names = ", ".join(game_settings().modes)
        raise InvalidMessage(f"mode: unknown mode {frame.mode!r}; this stage's modes are {names}")
    return frame


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        # Drop the discriminator tag pydantic puts first in the location (e.g. "join").
        loc = [str(p) for p in err["loc"] if p not in CLIENT_ACTIONS]
        where = ".".join(loc) or "frame"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
