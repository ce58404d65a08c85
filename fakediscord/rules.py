"""Discord's request rules: the explicit limits a bot trips over, then the official OpenAPI schemas.

Every check returns a list of `Problem`s instead of raising, so the emulator can both answer like Discord
(400 + code 50035 with a nested `errors` object) and record each problem as a violation for the tests.
The explicit checks come first because they name the rule (``custom_id_too_long``) where a schema error from
a ``oneOf`` of component types would only say "is not valid under any of the given schemas".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).with_name("discord-openapi-subset.json")
"""Discord's official OpenAPI schemas (discord/discord-api-spec, MIT licence) for the routes the bot calls, with one
change: attachment ``id`` in request bodies also accepts an integer, as discord.py sends it."""

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_FIELDS = 25
MAX_EMBED_CHARS = 6000
MAX_ACTION_ROWS = 5
MAX_ROW_ITEMS = 5
MAX_CUSTOM_ID = 100
IS_COMPONENTS_V2 = 1 << 15
LOCALES = frozenset({
    "id", "da", "de", "en-GB", "en-US", "es-ES", "es-419", "fr", "hr", "it", "lt", "hu", "nl", "no", "pl", "pt-BR",
    "ro", "fi", "sv-SE", "vi", "tr", "cs", "el", "bg", "ru", "uk", "hi", "th", "zh-CN", "ja", "zh-TW", "ko",
})
"""The locales Discord accepts as keys of ``name_localizations`` / ``description_localizations`` (its docs'
"Locales" table); anything else is refused with 50035."""
COMMAND_NAME = re.compile(r"^[-_'\w\u0900-\u097F\u0E00-\u0E7F]{1,32}$")
r"""Discord's CHAT_INPUT name rule (``^[-_'\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$``); letters must also be lowercase
where the script has case."""
MAX_DESCRIPTION = 100
MAX_CHOICE_NAME = 100
MAX_MODAL_TITLE = 45
MAX_MODAL_COMPONENTS = 5
MAX_INPUT_LABEL = 45
MAX_INPUT_VALUE = 4000
MAX_SELECT_OPTIONS = 25
TEXT_INPUT, STRING_SELECT, LABEL = 4, 3, 18
MAX_V2_COMPONENTS = 40
"""Components v2: every component counts, nested ones (in containers, sections, action rows) included."""
MAX_V2_TEXT = 4000
"""Components v2: the characters of all text displays of a message together."""
MAX_GALLERY_ITEMS = 10
ACTION_ROW, TEXT_DISPLAY, THUMBNAIL, MEDIA_GALLERY, FILE = 1, 10, 11, 12, 13
MENU_COMMAND_TYPES = (2, 3)
"""USER and MESSAGE application commands: entries of a person's or a message's "Apps" menu."""


@dataclass(frozen=True)
class Problem:
    """One broken rule: `kind` is stable (tests match on it), `path` is where in the body, `message` is Discord's."""

    kind: str
    path: tuple[str | int, ...]
    message: str
    code: str = "BASE_TYPE_INVALID"


def check_message(body: dict[str, Any], *, creating: bool, file_count: int = 0, was_v2: bool = False) -> list[Problem]:
    """The limits Discord enforces on a message body (create or edit) that discord.py does not check first.

    ``was_v2``: the edited message is a components v2 one already (its flag stays, whatever the body says), so the
    classic layout limits (5 rows of 5) don't apply to it; ``check_components_v2`` checks what does."""
    problems: list[Problem] = []
    content = body.get("content")
    if _len(content) > MAX_CONTENT:
        problems.append(
            Problem(
                "content_too_long", ("content",), f"Must be {MAX_CONTENT} or fewer in length.", "BASE_TYPE_MAX_LENGTH"
            )
        )
    embeds = _list(body.get("embeds"))
    if len(embeds) > MAX_EMBEDS:
        problems.append(
            Problem("too_many_embeds", ("embeds",), f"Must be {MAX_EMBEDS} or fewer in length.", "BASE_TYPE_MAX_LENGTH")
        )
    total_chars = 0
    for i, embed in enumerate(embeds):
        if not isinstance(embed, dict):
            continue
        fields = _list(embed.get("fields"))
        if len(fields) > MAX_FIELDS:
            problems.append(
                Problem(
                    "too_many_fields",
                    ("embeds", i, "fields"),
                    f"Must be {MAX_FIELDS} or fewer in length.",
                    "BASE_TYPE_MAX_LENGTH",
                )
            )
        total_chars += _embed_chars(embed)
    if total_chars > MAX_EMBED_CHARS:
        problems.append(
            Problem(
                "embeds_too_long",
                ("embeds",),
                f"Embed size exceeds maximum size of {MAX_EMBED_CHARS}",
                "MAX_EMBED_SIZE_EXCEEDED",
            )
        )
    components = _list(body.get("components"))
    flags = body.get("flags") if isinstance(body.get("flags"), int) else 0
    if not flags & IS_COMPONENTS_V2 and not was_v2:
        if len(components) > MAX_ACTION_ROWS:
            problems.append(
                Problem(
                    "too_many_action_rows",
                    ("components",),
                    f"Must be {MAX_ACTION_ROWS} or fewer in length.",
                    "BASE_TYPE_MAX_LENGTH",
                )
            )
        for r, row in enumerate(components):
            items = _list(row.get("components")) if isinstance(row, dict) else []
            if len(items) > MAX_ROW_ITEMS:
                problems.append(
                    Problem(
                        "too_many_buttons",
                        ("components", r, "components"),
                        f"Must be {MAX_ROW_ITEMS} or fewer in length.",
                        "BASE_TYPE_MAX_LENGTH",
                    )
                )
    for path, custom_id in _custom_ids(components, ("components",)):
        if not 1 <= len(custom_id) <= MAX_CUSTOM_ID:
            problems.append(
                Problem(
                    "custom_id_too_long" if len(custom_id) > MAX_CUSTOM_ID else "custom_id_empty",
                    (*path, "custom_id"),
                    f"Must be between 1 and {MAX_CUSTOM_ID} in length.",
                    "BASE_TYPE_BAD_LENGTH",
                )
            )
    problems.extend(_check_selects(components, ("components",)))
    if creating and not (content or embeds or components or file_count or body.get("sticker_ids") or body.get("poll")):
        problems.append(Problem("empty_message", (), "Cannot send an empty message", "EMPTY_MESSAGE"))
    return problems


def check_command(command: dict[str, Any]) -> list[Problem]:
    """The naming rules of a slash command (create/sync), its options and choices, localizations included: names
    and their translations lowercase 1-32, descriptions 1-100, choice names 1-100, localization keys Discord locales.
    A user or message command (an "Apps" menu entry) follows its own rules (``_check_menu``).
    """
    if command.get("type", 1) in MENU_COMMAND_TYPES:
        return _check_menu(command)
    return _check_named(command, (), is_command=True)


def _check_menu(command: dict[str, Any]) -> list[Problem]:
    """A USER or MESSAGE command: its name (and each translation of it) 1-32 characters, mixed case and spaces
    allowed; no description (Discord wants an empty one) and no options."""
    problems: list[Problem] = []

    def name_ok(name: Any) -> bool:
        return isinstance(name, str) and 1 <= len(name) <= 32 and name == name.strip()

    if not name_ok(command.get("name")):
        problems.append(Problem("command_name_invalid", ("name",), "Command name is invalid",
                                "APPLICATION_COMMAND_INVALID_NAME"))
    for locale, text in (command.get("name_localizations") or {}).items():
        if locale not in LOCALES:
            problems.append(Problem("localization_locale_invalid", ("name_localizations", locale),
                                    "Invalid Form Body", "LOCALE_INVALID"))
        elif not name_ok(text):
            problems.append(Problem("localization_invalid", ("name_localizations", locale),
                                    "Must be between 1 and 32 in length.", "BASE_TYPE_BAD_LENGTH"))
    if command.get("description"):
        problems.append(Problem("description_invalid", ("description",),
                                "Context menu commands cannot have description", "APPLICATION_COMMAND_INVALID"))
    if command.get("options"):
        problems.append(Problem("options_invalid", ("options",), "Context menu commands cannot have options",
                                "APPLICATION_COMMAND_INVALID"))
    return problems


def _check_named(item: dict[str, Any], path: tuple[str | int, ...], *, is_command: bool) -> list[Problem]:
    problems: list[Problem] = []

    def name_ok(name: Any) -> bool:
        return isinstance(name, str) and bool(COMMAND_NAME.match(name)) and name == name.lower()

    if not name_ok(item.get("name")):
        problems.append(Problem("command_name_invalid", (*path, "name"), "Command name is invalid",
                                "APPLICATION_COMMAND_INVALID_NAME"))
    for key, valid, limit in (("name_localizations", name_ok, 32),
                              ("description_localizations", None, MAX_DESCRIPTION)):
        localizations = item.get(key) or {}
        if not isinstance(localizations, dict):
            continue
        for locale, text in localizations.items():
            where = (*path, key, locale)
            if locale not in LOCALES:
                problems.append(Problem("localization_locale_invalid", where, "Invalid Form Body", "LOCALE_INVALID"))
            elif not isinstance(text, str) or not 1 <= len(text) <= limit or (valid is not None and not valid(text)):
                problems.append(Problem("localization_invalid", where, f"Must be between 1 and {limit} in length.",
                                        "BASE_TYPE_BAD_LENGTH"))
    description = item.get("description")
    if is_command and (not isinstance(description, str) or not 1 <= len(description) <= MAX_DESCRIPTION):
        problems.append(Problem("description_invalid", (*path, "description"),
                                f"Must be between 1 and {MAX_DESCRIPTION} in length.", "BASE_TYPE_BAD_LENGTH"))
    for i, option in enumerate(_list(item.get("options"))):
        if isinstance(option, dict):
            problems += _check_named(option, (*path, "options", i), is_command=True)
    for i, choice in enumerate(_list(item.get("choices"))):
        if not isinstance(choice, dict):
            continue
        where = (*path, "choices", i)
        if not 1 <= _len(choice.get("name")) <= MAX_CHOICE_NAME:
            problems.append(Problem("choice_name_invalid", (*where, "name"),
                                    f"Must be between 1 and {MAX_CHOICE_NAME} in length.", "BASE_TYPE_BAD_LENGTH"))
        for locale, text in (choice.get("name_localizations") or {}).items():
            if locale not in LOCALES:
                problems.append(Problem("localization_locale_invalid", (*where, "name_localizations", locale),
                                        "Invalid Form Body", "LOCALE_INVALID"))
            elif not 1 <= _len(text) <= MAX_CHOICE_NAME:
                problems.append(Problem("localization_invalid", (*where, "name_localizations", locale),
                                        f"Must be between 1 and {MAX_CHOICE_NAME} in length.", "BASE_TYPE_BAD_LENGTH"))
    return problems


def check_modal(data: Any) -> list[Problem]:
    """A modal's rules (type 9's ``data``): a title of 1-45 characters, 1-5 components, and for each text input a
    label of at most 45, a custom_id of 1-100, lengths of 0-4,000 with min ≤ max, and a prefilled value within them.

    Inputs come the legacy way (an action row holding a text input with its own ``label``) or the current one (a
    label component, type 18, holding the input); selects inside labels follow the message rules for selects.
    """
    if not isinstance(data, dict):
        return []
    problems: list[Problem] = []
    title = data.get("title")
    if not isinstance(title, str) or not 1 <= len(title) <= MAX_MODAL_TITLE:
        problems.append(Problem("modal_title", ("title",), f"Must be between 1 and {MAX_MODAL_TITLE} in length.",
                                "BASE_TYPE_BAD_LENGTH"))
    custom_id = data.get("custom_id")
    if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= MAX_CUSTOM_ID:
        problems.append(Problem("custom_id_too_long" if _len(custom_id) > MAX_CUSTOM_ID else "custom_id_empty",
                                ("custom_id",), f"Must be between 1 and {MAX_CUSTOM_ID} in length.",
                                "BASE_TYPE_BAD_LENGTH"))
    components = _list(data.get("components"))
    if not 1 <= len(components) <= MAX_MODAL_COMPONENTS:
        problems.append(Problem("modal_components", ("components",),
                                f"Must be between 1 and {MAX_MODAL_COMPONENTS} in length.", "BASE_TYPE_BAD_LENGTH"))
    for path, item, label in modal_inputs(components, ("components",)):
        if label is not None and len(label) > MAX_INPUT_LABEL:
            where = (*path[:-1], "label") if path[-1] == "component" else (*path, "label")
            problems.append(Problem("input_label_too_long", where, f"Must be {MAX_INPUT_LABEL} or fewer in length.",
                                    "BASE_TYPE_MAX_LENGTH"))
        if not 1 <= _len(item.get("custom_id")) <= MAX_CUSTOM_ID:
            problems.append(Problem("custom_id_too_long" if _len(item.get("custom_id")) > MAX_CUSTOM_ID
                                    else "custom_id_empty", (*path, "custom_id"),
                                    f"Must be between 1 and {MAX_CUSTOM_ID} in length.", "BASE_TYPE_BAD_LENGTH"))
        if item.get("type") == TEXT_INPUT:
            problems.extend(_check_text_input(item, path))
        elif item.get("type") == STRING_SELECT:
            problems.extend(_check_select(item, path))
    return problems


def modal_inputs(components: Any, path: tuple[str | int, ...]) -> list[tuple[tuple[str | int, ...], dict[str, Any],
                                                                           str | None]]:
    """Each input of a modal with its path and its label (the input's own, or its label component's)."""
    found: list[tuple[tuple[str | int, ...], dict[str, Any], str | None]] = []
    for i, component in enumerate(_list(components)):
        if not isinstance(component, dict):
            continue
        if component.get("type") == 1:
            for j, item in enumerate(_list(component.get("components"))):
                if isinstance(item, dict):
                    found.append(((*path, i, "components", j), item, item.get("label")))
        elif component.get("type") == LABEL and isinstance(component.get("component"), dict):
            found.append(((*path, i, "component"), component["component"], component.get("label")))
    return found


def _check_text_input(item: dict[str, Any], path: tuple[str | int, ...]) -> list[Problem]:
    problems = []
    low = item.get("min_length") if isinstance(item.get("min_length"), int) else 0
    high = item.get("max_length") if isinstance(item.get("max_length"), int) else MAX_INPUT_VALUE
    if not 0 <= low <= high <= MAX_INPUT_VALUE or high < 1:
        problems.append(Problem("input_lengths", (*path, "max_length"),
                                f"min_length and max_length must satisfy 0 ≤ min ≤ max ≤ {MAX_INPUT_VALUE}.",
                                "BASE_TYPE_BAD_LENGTH"))
    value = item.get("value")
    if isinstance(value, str) and value and not low <= len(value) <= high:
        problems.append(Problem("input_value_length", (*path, "value"),
                                f"Must be between {low} and {high} in length.", "BASE_TYPE_BAD_LENGTH"))
    return problems


def _check_selects(components: Any, path: tuple[str | int, ...]) -> list[Problem]:
    problems: list[Problem] = []
    for i, component in enumerate(_list(components)):
        if not isinstance(component, dict):
            continue
        if component.get("type") == STRING_SELECT:
            problems.extend(_check_select(component, (*path, i)))
        problems.extend(_check_selects(component.get("components"), (*path, i, "components")))
    return problems


def _check_select(select: dict[str, Any], path: tuple[str | int, ...]) -> list[Problem]:
    """A string select: 1-25 options with distinct values, 0 ≤ min_values ≤ max_values ≤ its options, and no more
    options marked default than it may have chosen."""
    problems = []
    options = [option for option in _list(select.get("options")) if isinstance(option, dict)]
    if not 1 <= len(options) <= MAX_SELECT_OPTIONS:
        problems.append(Problem("select_options", (*path, "options"),
                                f"Must be between 1 and {MAX_SELECT_OPTIONS} in length.", "BASE_TYPE_BAD_LENGTH"))
    values = [option.get("value") for option in options]
    if len(set(map(str, values))) != len(values):
        problems.append(Problem("select_duplicate_values", (*path, "options"), "Option values must be unique.",
                                "SELECT_COMPONENT_OPTION_VALUE_DUPLICATED"))
    low = select.get("min_values") if isinstance(select.get("min_values"), int) else 1
    high = select.get("max_values") if isinstance(select.get("max_values"), int) else 1
    if not 0 <= low <= high <= max(1, len(options)):
        problems.append(Problem("select_values_range", (*path, "max_values"),
                                f"min_values and max_values must satisfy 0 ≤ min ≤ max ≤ the {len(options)} options.",
                                "BASE_TYPE_BAD_VALUE"))
    if sum(bool(option.get("default")) for option in options) > high:
        problems.append(Problem("select_too_many_defaults", (*path, "options"),
                                f"At most {high} options may be default.", "BASE_TYPE_BAD_VALUE"))
    return problems


def check_components_v2(
    body: dict[str, Any], *, existing: dict[str, Any] | None, filenames: set[str]
) -> list[Problem]:
    """Discord's rules for a components v2 message (``IS_COMPONENTS_V2``), on the message as the request leaves it.

    ``existing`` is the message's JSON before an edit (None when creating); ``filenames`` the names of the files the
    message has once the request is applied, which ``attachment://NAME`` media must name. Nothing to check for a
    classic message; an edit may turn the flag on (clearing content and embeds) but never off.
    """
    flags = body.get("flags") if isinstance(body.get("flags"), int) else None
    was_v2 = existing is not None and bool(existing.get("flags", 0) & IS_COMPONENTS_V2)
    problems: list[Problem] = []
    if was_v2 and flags is not None and not flags & IS_COMPONENTS_V2:
        problems.append(Problem("components_v2_removed", ("flags",), "The IS_COMPONENTS_V2 flag of a message cannot "
                                "be removed", "MESSAGE_CANNOT_REMOVE_COMPONENTS_V2_FLAG"))
    if not was_v2 and not (flags or 0) & IS_COMPONENTS_V2:
        return problems

    def after(key: str) -> Any:
        return body.get(key) if key in body or existing is None else existing.get(key)

    for key in ("content", "embeds"):
        if after(key):
            problems.append(Problem("components_v2_content", (key,), f"The '{key}' field cannot be used when using "
                                    "MessageFlags.IS_COMPONENTS_V2", "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_V2"))
    components = _list(after("components"))
    every = list(_components(components, ("components",)))
    if len(every) > MAX_V2_COMPONENTS:
        problems.append(Problem("too_many_components", ("components",), f"Must be {MAX_V2_COMPONENTS} or fewer in "
                                f"total, nested components included ({len(every)})", "BASE_TYPE_MAX_LENGTH"))
    text = sum(_len(component.get("content")) for _, component in every if component.get("type") == TEXT_DISPLAY)
    if text > MAX_V2_TEXT:
        problems.append(Problem("components_v2_text_too_long", ("components",), f"The text displays hold {text} "
                                f"characters; at most {MAX_V2_TEXT} are allowed", "BASE_TYPE_MAX_LENGTH"))
    for path, component in every:
        kind = component.get("type")
        if kind == ACTION_ROW and len(_list(component.get("components"))) > MAX_ROW_ITEMS:
            problems.append(Problem("too_many_buttons", (*path, "components"),
                                    f"Must be {MAX_ROW_ITEMS} or fewer in length.", "BASE_TYPE_MAX_LENGTH"))
        media: list[tuple[tuple[str | int, ...], Any]] = []
        if kind == MEDIA_GALLERY:
            items = _list(component.get("items"))
            if not 1 <= len(items) <= MAX_GALLERY_ITEMS:
                problems.append(Problem("media_gallery_items", (*path, "items"), f"Must be between 1 and "
                                        f"{MAX_GALLERY_ITEMS} in length.", "BASE_TYPE_BAD_LENGTH"))
            media = [((*path, "items", i, "media"), item.get("media")) for i, item in enumerate(items)
                     if isinstance(item, dict)]
        elif kind in (THUMBNAIL, FILE):
            key = "media" if kind == THUMBNAIL else "file"
            media = [((*path, key), component.get(key))]
        for where, item in media:
            url = item.get("url") if isinstance(item, dict) else None
            if isinstance(url, str) and url.startswith("attachment://") and url[13:] not in filenames:
                problems.append(Problem("unknown_attachment", (*where, "url"), f"{url} names no file of the message "
                                        f"(its files: {sorted(filenames)})", "UNFURLED_MEDIA_ATTACHMENT_NOT_FOUND"))
    return problems


def _components(components: list[Any], path: tuple[str | int, ...]) -> list[tuple[tuple[str | int, ...], dict]]:
    """Every component with its path, nested ones (children, a section's accessory) after their parent."""
    found: list[tuple[tuple[str | int, ...], dict]] = []
    for i, component in enumerate(components):
        if not isinstance(component, dict):
            continue
        found.append(((*path, i), component))
        found += _components(_list(component.get("components")), (*path, i, "components"))
        if isinstance(component.get("accessory"), dict):
            found.append(((*path, i, "accessory"), component["accessory"]))
    return found


def _embed_chars(embed: dict[str, Any]) -> int:
    """Discord's 6,000-character budget counts titles, descriptions, field names/values, footer and author text."""
    total = _len(embed.get("title")) + _len(embed.get("description"))
    for field in _list(embed.get("fields")):
        if isinstance(field, dict):
            total += _len(field.get("name")) + _len(field.get("value"))
    for part, key in (("footer", "text"), ("author", "name")):
        if isinstance(embed.get(part), dict):
            total += _len(embed[part].get(key))
    return total


def _len(value: Any) -> int:
    """Length of a string field; wrong types are left to the schema check."""
    return len(value) if isinstance(value, str) else 0


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _custom_ids(components: Any, path: tuple[str | int, ...]) -> list[tuple[tuple[str | int, ...], str]]:
    found: list[tuple[tuple[str | int, ...], str]] = []
    if not isinstance(components, list):
        return found
    for i, component in enumerate(components):
        if not isinstance(component, dict):
            continue
        if isinstance(component.get("custom_id"), str):
            found.append(((*path, i), component["custom_id"]))
        found.extend(_custom_ids(component.get("components"), (*path, i, "components")))
        accessory = component.get("accessory")
        if isinstance(accessory, dict) and isinstance(accessory.get("custom_id"), str):
            found.append(((*path, i, "accessory"), accessory["custom_id"]))
    return found


@cache
def _schemas() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text())["schemas"]


@cache
def _validator(name: str) -> Any:
    """A Draft 2020-12 validator for one schema; `#/components/schemas/...` refs resolve in the same document."""
    from jsonschema import Draft202012Validator

    schema = {"$ref": f"#/components/schemas/{name}", "components": {"schemas": _schemas()}}
    return Draft202012Validator(schema)


def check_schema(name: str, body: Any) -> list[Problem]:
    """Validate against one schema of Discord's OpenAPI spec; one problem per failing location (best match first)."""
    from jsonschema.exceptions import best_match

    problems = []
    for error in _validator(name).iter_errors(body):
        best = best_match([error])  # descend into oneOf/anyOf to the most relevant cause
        message = best.message if len(best.message) <= 300 else best.message[:300] + "..."
        problems.append(Problem("schema", tuple(best.absolute_path), f"{name}: {message}"))
    return problems


CALLBACK_SCHEMAS = {
    1: "PongInteractionCallbackRequest",
    4: "CreateMessageInteractionCallbackRequest",
    5: "CreateMessageInteractionCallbackRequest",
    6: "UpdateMessageInteractionCallbackRequest",
    7: "UpdateMessageInteractionCallbackRequest",
    8: "ApplicationCommandAutocompleteCallbackRequest",
    9: "ModalInteractionCallbackRequest",
}


def form_errors(problems: list[Problem]) -> dict[str, Any]:
    """Discord's nested 50035 `errors` object: {"content": {"_errors": [{"code": ..., "message": ...}]}}."""
    errors: dict[str, Any] = {}
    for problem in problems:
        node = errors
        for key in problem.path:
            node = node.setdefault(str(key), {})
        node.setdefault("_errors", []).append({"code": problem.code, "message": problem.message})
    return errors
