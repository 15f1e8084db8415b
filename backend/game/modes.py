"""The game modes of this stage: `custom.modes` of serverless.yml (GAME_SETTINGS), each a plug-in.

`custom.modes.<name>.plugin` names a module exposing `MODE`, a subclass of backend.game.plugin.GameMode;
the mode's seats, limits and options come from the same entry. Loaded once per execution environment,
on first use (a function that never applies rules never imports a game).
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from backend.config import GameSettings, game_settings
from backend.game.plugin import ActFrame, GameMode


class ModeConfigError(ValueError):
    """custom.modes names a plug-in that cannot be loaded, or declares it wrongly."""


class Modes:
    def __init__(self, modes: dict[str, GameMode]) -> None:
        if not modes:
            raise ModeConfigError("custom.modes declares no mode (GAME_SETTINGS holds none)")
        self._modes = modes
        # Every `kind` of every mode, to one model: a kind two modes declare must be the same action.
        self.actions: dict[str, type[ActFrame]] = {}
        for mode in modes.values():
            for kind, model in mode.kinds.items():
                known = self.actions.setdefault(kind, model)
                if known is not model:
                    raise ModeConfigError(
                        f"action kind {kind!r} is declared by {known.__module__}.{known.__name__} and "
                        f"{model.__module__}.{model.__name__}: a kind names one action across modes"
                    )

    def __contains__(self, name: object) -> bool:
        return name in self._modes

    def __getitem__(self, name: str) -> GameMode:
        try:
            return self._modes[name]
        except KeyError:
            raise KeyError(f"unknown mode {name!r}; expected one of {', '.join(self._modes)}") from None

    def names(self) -> tuple[str, ...]:
        return tuple(self._modes)

    @classmethod
    def load(cls, settings: GameSettings, *, plugins: dict[str, str] | None = None) -> Modes:
        """The modes of these settings; `plugins` replaces a mode's module (a replay against another
        version of the rules)."""
        modes: dict[str, GameMode] = {}
        for name, mode_settings in settings.modes.items():
            module_name = (plugins or {}).get(name) or mode_settings.plugin
            if not module_name:
                raise ModeConfigError(f"custom.modes.{name} names no `plugin` module")
            modes[name] = instantiate(name, module_name, mode_settings)
        return cls(modes)


def instantiate(name: str, module_name: str, mode_settings: Any) -> GameMode:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModeConfigError(f"custom.modes.{name}: cannot import plugin {module_name!r}: {exc}") from None
    kind = getattr(module, "MODE", None)
    if not (isinstance(kind, type) and issubclass(kind, GameMode)):
        raise ModeConfigError(f"{module_name}.MODE must be a subclass of backend.game.plugin.GameMode")
    try:
        return kind(name, mode_settings.seats, mode_settings, mode_settings.options)
    except (ValueError, TypeError) as exc:
        raise ModeConfigError(f"custom.modes.{name}: {exc}") from None


@cache
def configured() -> Modes:
    """This stage's modes (GAME_SETTINGS' `modes`)."""
    return Modes.load(game_settings())


def mode(name: str) -> GameMode:
    return configured()[name]
