"""The one check a command from the page passes before the emulator sends it to the bot.

Discord's own client never sends a slash command that breaks its definition: it offers only the registered commands
and subcommands, converts each option to its type, insists on the required ones and keeps values within their
choices, minimum and maximum values and lengths. The emulator takes whatever a test hands it, so the playground does
the client's part here, from the definitions the bot registered (as the emulator holds them), with a sentence that
tells the person what to fix. An option the command does not have is handed on as it is: the emulator refuses it in
its own words.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

Upload = tuple[str, bytes, str]
"""A file as the emulator takes it: its name, its bytes and its content type."""

CHAT_INPUT = 1
"""An application command's type for a slash command (message commands are 3)."""

TRUE = frozenset({"true", "yes", "on", "1"})
FALSE = frozenset({"false", "no", "off", "0"})
MAX_STRING = 6000
"""Discord's longest string option value."""


class OptionType(IntEnum):
    """Discord's application command option types."""

    SUB_COMMAND = 1
    SUB_COMMAND_GROUP = 2
    STRING = 3
    INTEGER = 4
    BOOLEAN = 5
    USER = 6
    CHANNEL = 7
    ROLE = 8
    MENTIONABLE = 9
    NUMBER = 10
    ATTACHMENT = 11


SUBCOMMANDS = (OptionType.SUB_COMMAND, OptionType.SUB_COMMAND_GROUP)


class Refused(ValueError):
    """Why a command was not sent, in words for the person who typed it."""


@dataclass(frozen=True)
class Checked:
    """A command as Discord's client would send it: its path ("settings me"), typed option values and files."""

    path: str
    options: dict[str, Any]
    attachments: dict[str, Upload]


def check(
    commands: Mapping[str, dict[str, Any]],
    command: str,
    values: Mapping[str, Any],
    files: Mapping[str, Sequence[Upload]] | None = None,
    pictures: Sequence[Upload] = (),
) -> Checked:
    """``command`` ("/settings me") with the option ``values`` and ``files`` a person gave, checked against its
    definition in ``commands`` (name -> registered definition). A blank value is an option left out.

    ``pictures`` are several files picked at once (the page's one multi-file field): they fill the command's picture
    options that ``files`` left empty, in order (/blend's image1..image5). Raises Refused saying what to fix.
    """
    path = " ".join(command.strip().removeprefix("/").split())
    name, *subcommands = path.split(" ")
    definition = commands.get(name)
    if definition is None or definition.get("type", CHAT_INPUT) != CHAT_INPUT:
        raise Refused(f"There is no /{path} command.")
    defined = _leaf_options(name, definition, subcommands)
    files = files or {}
    given = {key: value for key, value in values.items() if not _blank(value)}
    # What the command does not have goes on untouched, for the emulator to refuse in its own words.
    options = {key: value for key, value in given.items() if key not in {o["name"] for o in defined}}
    attachments = {key: uploads[0] for key, uploads in files.items() if uploads}
    if pictures:
        attachments |= _spread(path, [o for o in defined if o["type"] == OptionType.ATTACHMENT
                                      and not files.get(o["name"])], pictures)
    for option in defined:
        key = option["name"]
        if option["type"] == OptionType.ATTACHMENT:
            if len(files.get(key) or ()) > 1:
                raise Refused(f"{key} takes one file.")
            if key in given:
                raise Refused(f"{key} takes a file: attach one rather than typing it.")
            if option.get("required") and key not in attachments:
                raise Refused(f"Attach the {key} first.")
        elif key in given:
            options[key] = _value(option, given[key])
        elif option.get("required"):
            raise Refused(f"/{path} needs {key}: fill it in first.")
    return Checked(path, options, attachments)


def _leaf_options(name: str, definition: dict[str, Any], subcommands: list[str]) -> list[dict[str, Any]]:
    """The options of the (sub)command that ``subcommands`` lead to from ``definition``."""
    options: list[dict[str, Any]] = definition.get("options") or []
    where = f"/{name}"
    for sub in subcommands:
        found = next((o for o in options if o["name"] == sub and o["type"] in SUBCOMMANDS), None)
        if found is None:
            raise Refused(f"{where} has no subcommand {sub!r}{_offered(options)}")
        options = found.get("options") or []
        where = f"{where} {sub}"
    if any(o["type"] in SUBCOMMANDS for o in options):
        raise Refused(f"{where} needs a subcommand{_offered(options)}")
    return options


def _offered(options: list[dict[str, Any]]) -> str:
    names = [o["name"] for o in options if o["type"] in SUBCOMMANDS]
    return f"; it has: {', '.join(names)}." if names else "."


def _spread(path: str, slots: list[dict[str, Any]], pictures: Sequence[Upload]) -> dict[str, Upload]:
    """``pictures`` in the picture options ``slots``, in order: at least as many as are required, at most one each."""
    low = sum(1 for slot in slots if slot.get("required"))
    if not low <= len(pictures) <= len(slots):
        raise Refused(f"/{path} takes {low} to {len(slots)} pictures; you picked {len(pictures)}.")
    return {slot["name"]: picture for slot, picture in zip(slots, pictures, strict=False)}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _value(option: dict[str, Any], raw: Any) -> Any:
    """``raw`` (typed by a person, or a JSON value) as ``option``'s type, within its choices, range and lengths."""
    key, kind = option["name"], option["type"]
    if isinstance(raw, list | dict):
        raise Refused(f"{key} takes one value, not a list.")
    value: Any
    if kind == OptionType.STRING:
        value = str(raw).strip()
        low, high = option.get("min_length") or 0, option.get("max_length") or MAX_STRING
        if not low <= len(value) <= high:
            raise Refused(f"{key} takes {low} to {high} characters; yours has {len(value)}.")
    elif kind == OptionType.INTEGER:
        value = _number(raw, int, f"{key} must be a whole number.")
    elif kind == OptionType.NUMBER:
        value = _number(raw, float, f"{key} must be a number, like 0.5.")
    elif kind == OptionType.BOOLEAN:
        value = _boolean(raw, f"{key} must be true or false.")
    else:  # people, channels and roles: the emulator resolves them
        return raw
    _check_range(key, value, option.get("min_value"), option.get("max_value"))
    choices = option.get("choices") or []
    if choices and value not in [choice["value"] for choice in choices]:
        raise Refused(f"{key} must be one of: {', '.join(str(choice['value']) for choice in choices)}.")
    return value


def _check_range(key: str, value: float, low: float | None, high: float | None) -> None:
    if (low is None or value >= low) and (high is None or value <= high):
        return
    if low is not None and high is not None:
        bounds = f"from {_shown(low)} to {_shown(high)}"
    else:
        bounds = f"at least {_shown(low)}" if low is not None else f"at most {_shown(high)}"
    raise Refused(f"{key} must be {bounds}; you gave {_shown(value)}.")


def _number(raw: Any, kind: type[int] | type[float], refusal: str) -> int | float:
    if isinstance(raw, bool):
        raise Refused(refusal)
    try:
        value = kind(raw.strip() if isinstance(raw, str) else raw)
    except (TypeError, ValueError):
        raise Refused(refusal) from None
    if kind is int and isinstance(raw, float) and raw != value:
        raise Refused(refusal)  # 2.5 is no whole number, though int() would make it 2
    if not math.isfinite(value):
        raise Refused(refusal)
    return value


def _boolean(raw: Any, refusal: str) -> bool:
    if isinstance(raw, bool):
        return raw
    word = str(raw).strip().lower()
    if word in TRUE | FALSE:
        return word in TRUE
    raise Refused(refusal)


def _shown(value: Any) -> str:
    """A bound or value as a person reads it: 1 rather than 1.0."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
