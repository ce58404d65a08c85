"""/settings' stored values: a person's defaults and a channel's defaults and limits.

These are plain values with the shape checks any caller needs (a count is a positive whole number, remix is a
yes/no); whether a style, aspect or model *exists* depends on the running configuration and is checked by the
/settings command before it stores anything. ``None`` always means "not set": the next level decides (the person's
value, then the channel's, then bot.yaml's) where a request is built.

Every command and button reads them (``Storage.user_settings``, ``Storage.channel_settings``), so storage keeps the
newest ones in memory (``Remembered``), and every write replaces what it keeps.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields, replace
from typing import Any, Generic, TypeVar


class UnknownSetting(ValueError):
    """A change names a setting that does not exist, or gives it a value of the wrong kind."""


@dataclass(frozen=True)
class UserSettings:
    """A person's defaults for /imagine and the buttons under its results."""

    style: str | None = None
    aspect: str | None = None
    count: int | None = None
    model: str | None = None
    remix: bool = False
    """Buttons that make a new job first open a form to edit the prompt."""
    private: bool = False
    """Results go to the person alone: by direct message, or as an ephemeral reply when their DMs are closed."""
    draft: bool = False
    """/imagine renders at the model's draft settings unless its ``draft`` option says otherwise."""


@dataclass(frozen=True)
class ChannelSettings:
    """A channel's defaults (below a person's own) and its limits (above everyone's): set by server admins."""

    style: str | None = None
    aspect: str | None = None
    count: int | None = None
    max_count: int | None = None
    allowed_models: tuple[str, ...] = ()
    """Model names that may be used here; empty: every model the bot serves."""
    safety: str | None = None
    """What a picture the safety check flags gets here (``allow``, ``spoiler``, ``block``: ``bot.safety.Treatment``),
    when stricter than bot.yaml's ``safety.action``; None: bot.yaml's."""

    def allows_model(self, name: str) -> bool:
        return not self.allowed_models or name in self.allowed_models


Settings = TypeVar("Settings", UserSettings, ChannelSettings)
Key = TypeVar("Key")

_TEXT = ("style", "aspect", "model")
_COUNTS = ("count", "max_count")
_FLAGS = ("remix", "private", "draft")
_TREATMENTS = ("allow", "spoiler", "block")


def changed(current: Settings, changes: dict[str, Any]) -> Settings:
    """``current`` with ``changes`` applied; ``None`` clears a value (flags go back to off, the model list to empty).

    Raises ``UnknownSetting`` for a name the settings do not have or a value of the wrong kind.
    """
    names = {field.name for field in fields(current)}
    unknown = sorted(set(changes) - names)
    if unknown:
        raise UnknownSetting(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    cleaned: dict[str, Any] = {}
    for name, value in changes.items():
        if value is None:
            cleaned[name] = False if name in _FLAGS else () if name == "allowed_models" else None
        elif name in _FLAGS:
            if not isinstance(value, bool):
                raise UnknownSetting(f"{name} must be true or false, not {value!r}")
            cleaned[name] = value
        elif name in _COUNTS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UnknownSetting(f"{name} must be a whole number of at least 1, not {value!r}")
            cleaned[name] = value
        elif name == "allowed_models":
            if isinstance(value, str) or not all(isinstance(item, str) and item for item in value):
                raise UnknownSetting(f"allowed_models must be a list of model names, not {value!r}")
            cleaned[name] = tuple(dict.fromkeys(value))
        elif name == "safety":
            if value not in _TREATMENTS:
                raise UnknownSetting(f"safety must be one of {', '.join(_TREATMENTS)}, not {value!r}")
            cleaned[name] = value
        else:
            assert name in _TEXT, name
            if not isinstance(value, str) or not value:
                raise UnknownSetting(f"{name} must be a name, not {value!r}")
            cleaned[name] = value
    return replace(current, **cleaned)


def user_settings_from_row(row: Any) -> UserSettings:
    if row is None:
        return UserSettings()
    return UserSettings(style=row["style"], aspect=row["aspect"], count=row["count"], model=row["model"],
                        remix=bool(row["remix"]), private=bool(row["private"]), draft=bool(row["draft"]))


def channel_settings_from_row(row: Any) -> ChannelSettings:
    if row is None:
        return ChannelSettings()
    return ChannelSettings(style=row["style"], aspect=row["aspect"], count=row["count"], max_count=row["max_count"],
                           allowed_models=tuple(json.loads(row["allowed_models"])), safety=row["safety"])


class Remembered(Generic[Key, Settings]):
    """The settings of the ``size`` people (or channels) who used the bot last, so that a request reads them without
    a trip to the database; the least recently used are dropped first.

    Storage, the only writer of the settings, tells it each change it committed (``changed``), so what is kept is
    never stale: a read that was on its way while a change was made is returned but not kept.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._kept: OrderedDict[Key, Settings] = OrderedDict()
        self._changes = 0

    async def get(self, key: Key, read: Callable[[], Awaitable[Settings]]) -> Settings:
        """The kept settings, else ``read()``'s (then kept)."""
        settings = self._kept.get(key)
        if settings is not None:
            self._kept.move_to_end(key)
            return settings
        changes = self._changes
        settings = await read()
        if changes == self._changes:
            self._keep(key, settings)
        return settings

    def changed(self, key: Key, settings: Settings | None) -> None:
        """``key``'s settings are now ``settings`` in the database (None: deleted)."""
        self._changes += 1
        if settings is None:
            self._kept.pop(key, None)
        else:
            self._keep(key, settings)

    def _keep(self, key: Key, settings: Settings) -> None:
        self._kept[key] = settings
        self._kept.move_to_end(key)
        if len(self._kept) > self.size:
            self._kept.popitem(last=False)
