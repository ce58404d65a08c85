"""Keeping the catalogues in step with the code: ``python -m bot.i18n_catalogue update|init LANG`` (``make messages``).

The msgids are everything a person can read: the literals given to ``Text``, ``plural`` and ``t`` in ``bot/``,
``cogs/`` and ``models/`` (babel's Python extractor, with ``KEYWORDS``), and the descriptions and choice names of
the slash commands the extensions register (read from discord.py's own objects, the way a sync reads them).
``update`` merges them into every ``bot/locales/*.po``: new msgids arrive untranslated, dropped ones are removed.
``init LANG`` writes a new catalogue with the language's plural rule. ``tests/test_i18n.py`` uses ``expected_msgids``
to check that the shipped catalogues are complete.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
from collections.abc import Iterator
from pathlib import Path

from babel import Locale as BabelLocale
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po
from discord import app_commands
from discord.ext import commands

from bot.client import INITIAL_EXTENSIONS
from bot.i18n import LOCALES_DIR

KEYWORDS = {"Text": None, "plural": (1, 2), "t": (2,)}
"""The callables whose literal arguments are msgids (babel's keyword specs: which arguments are the message)."""
SOURCE_PACKAGES = ("bot", "cogs", "models")
REPO = Path(__file__).resolve().parent.parent

Msgid = str | tuple[str, str]
"""A msgid, or a plural's (singular, plural) pair."""


def code_msgids() -> Iterator[tuple[Msgid, str]]:
    """Each msgid worded in the code, with the file it comes from."""
    for package in SOURCE_PACKAGES:
        for filename, _lineno, message, _comments, _context in extract_from_dir(
            REPO / package, method_map=[("**.py", "python")], keywords=KEYWORDS
        ):
            yield message, f"{package}/{filename}"


def _command_texts(command: app_commands.Command | app_commands.Group) -> Iterator[tuple[str, str]]:
    """(text, where) for the description and choice names of a command or group and its subcommands (discord.py
    hands each of them to the translator, whether or not it was written as a ``locale_str``)."""
    where = f"/{command.qualified_name}"
    yield str(command.description), where
    if isinstance(command, app_commands.Group):
        for child in command.commands:
            yield from _command_texts(child)
        return
    for parameter in command.parameters:
        if parameter.description:
            yield str(parameter.description), f"{where} {parameter.name}"
        for choice in parameter.choices:
            yield choice.name, f"{where} {parameter.name}"


def command_msgids() -> Iterator[tuple[str, str]]:
    """Each translatable text of the slash commands the bot's extensions define, with its command."""
    for extension in INITIAL_EXTENSIONS:
        module = importlib.import_module(extension)
        for _, cog in inspect.getmembers(module, lambda m: inspect.isclass(m) and issubclass(m, commands.Cog)):
            if cog.__module__ == module.__name__:
                for command in cog.__cog_app_commands__:
                    yield from _command_texts(command)


def expected_msgids() -> dict[Msgid, set[str]]:
    """Every msgid the catalogues must hold, with where each is used."""
    found: dict[Msgid, set[str]] = {}
    for message, where in [*code_msgids(), *command_msgids()]:
        found.setdefault(message, set()).add(where)
    return found


def template(locale: str | None = None) -> Catalog:
    catalogue = Catalog(locale=locale, domain="imagebot", project="imagebot", fuzzy=False)
    for message, where in sorted(expected_msgids().items(), key=lambda item: str(item[0])):
        catalogue.add(message, auto_comments=sorted(where))
    return catalogue


def read_catalogue(path: Path) -> Catalog:
    with path.open("rb") as source:
        return read_po(source, domain="imagebot")


def write_catalogue(path: Path, catalogue: Catalog) -> None:
    with path.open("wb") as target:
        write_po(target, catalogue, width=120, no_location=True, omit_header=False, sort_output=True,
                 ignore_obsolete=True)


def update(directory: Path = LOCALES_DIR) -> list[Path]:
    """Merge the code's msgids into each catalogue; returns the catalogues written."""
    written = []
    source = template()
    for path in sorted(directory.glob("*.po")):
        catalogue = read_catalogue(path)
        created = catalogue.creation_date  # kept, so that an update without new msgids changes nothing
        catalogue.update(source, no_fuzzy_matching=True)
        catalogue.creation_date = created
        write_catalogue(path, catalogue)
        written.append(path)
    return written


def init(language: str, directory: Path = LOCALES_DIR) -> Path:
    """A new catalogue for ``language`` (a Discord locale tag such as ``fr`` or ``pt-BR``), every msgid untranslated."""
    path = directory / f"{language}.po"
    if path.exists():
        raise SystemExit(f"{path} exists already; `update` brings it up to date")
    BabelLocale.parse(language, sep="-")  # an unknown language fails here, with babel's message
    write_catalogue(path, template(language.replace("-", "_")))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.i18n_catalogue", description=__doc__.splitlines()[0])
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("update", help="add new msgids to every catalogue and drop unused ones")
    new = actions.add_parser("init", help="start the catalogue of a new language")
    new.add_argument("language", help="a Discord locale tag: fr, de, pt-BR, ...")
    arguments = parser.parse_args()
    if arguments.action == "init":
        print(f"wrote {init(arguments.language)}")
    else:
        for path in update():
            print(f"updated {path}")


if __name__ == "__main__":
    main()
