"""Replies in the person's language: gettext catalogues, one ``.po`` file per language in ``bot/locales/``.

English is the source language: the English sentences in the code are the msgids, and English is what anyone gets
whose Discord locale (``interaction.locale``: ``it``, ``en-US``, ``pt-BR``, ...) has no catalogue. A locale picks
the catalogue named by its full tag (``pt-BR.po``), else by its language (``pt.po``). Catalogues are read once, at
start (``load_catalogues``), with babel; lookups and plural rules are the standard library's ``gettext``.

Making a new message translatable — where a person will read it:

- In a cog, with the interaction at hand: ``t(interaction.locale, "You can ask for 1 to {max} images.", max=4)``.
  The msgid is a plain literal (never an f-string): values go in as keyword arguments and are formatted *after*
  translation, so a translation can move them. For counts use ``translate(locale, plural("{n} job", "{n} jobs",
  n=count))``.
- Deeper down, where nobody's locale is known (``models/``, ``bot/queue.py``, an exception for the person):
  word it as ``Text("The seed must be between 0 and {max}.", max=...)`` (``models.text``). A ``Text`` is a str,
  the English sentence, so logs and ``str()`` are unchanged; whoever answers the person passes it (or the
  exception carrying it as its first argument) through ``translate(locale, ...)`` — ``bot.client.reply_privately``
  and ``results``' texts do. ``Text`` arguments that are ``Text`` themselves are translated too.
- Messages about a job (queued, progress, result, failure) speak its requester's ``Job.locale``, which
  ``RequestDesk.ask`` takes from the interaction: a new kind of job built with it needs nothing more. A view whose
  labels are words takes the locale too (``cancel_view(job_id, locale)``); a persistent ``DynamicItem`` rebuilt
  from its custom_id needs no label.
- Command and group descriptions, option descriptions (``app_commands.describe``) and choice names need nothing:
  discord.py hands every one of them to ``CatalogueTranslator`` when the commands sync, and
  ``bot.i18n_catalogue`` reads them from the extensions' cogs. Command and option *names* stay English.
- Then run ``make messages``: it adds the new msgids to every catalogue (and drops the ones no longer used);
  fill in their ``msgstr`` in ``bot/locales/it.po``. ``tests/test_i18n.py`` fails while any msgid lacks an Italian
  translation, a catalogue keeps a stale one, or a translation's ``{placeholders}`` differ from its msgid's — and
  lists, file:line, every reply, label, embed title or refusal still written as a plain literal (a line that must
  read the same in every language says why with ``# not translated: ...``).

Adding a language: ``python -m bot.i18n_catalogue init fr`` writes ``bot/locales/fr.po`` with every msgid and the
language's plural rule; translate its ``msgstr``s. The file is found at the next start; nothing else changes.
Log lines stay English; style names, model names and people's prompts are never translated.
"""

from __future__ import annotations

import functools
import gettext
import io
import logging
import string
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from discord import Locale, app_commands

from models.text import Text, plural, text_of

__all__ = ["CatalogueTranslator", "Text", "catalogue_for", "load_catalogues", "plural", "t", "translate"]

log = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).with_name("locales")
UNTRANSLATED_LOCATIONS = frozenset({
    app_commands.TranslationContextLocation.command_name,
    app_commands.TranslationContextLocation.group_name,
    app_commands.TranslationContextLocation.parameter_name,
})
"""Names stay English: Discord wants them lowercase without spaces, and people share them ("try /imagine")."""


def load_catalogues(directory: Path = LOCALES_DIR) -> dict[str, gettext.GNUTranslations]:
    """Every ``<tag>.po`` in ``directory`` by its tag, compiled in memory (fuzzy entries left out, as gettext does).

    Compiled once per directory, however it is asked for (the bot does it at start, in a thread): the lookups of
    every reply after that are dictionary reads on the event loop."""
    return _compiled(directory)


@functools.cache
def _compiled(directory: Path) -> dict[str, gettext.GNUTranslations]:
    found: dict[str, gettext.GNUTranslations] = {}
    for path in sorted(directory.glob("*.po")):
        with path.open("rb") as source:
            catalogue = read_po(source, locale=None, domain="imagebot")
        compiled = io.BytesIO()
        write_mo(compiled, catalogue)
        compiled.seek(0)
        found[path.stem.lower()] = gettext.GNUTranslations(compiled)
    log.debug("catalogues: %s", ", ".join(found) or "none")
    return found


def catalogue_for(locale: Locale | str | None, directory: Path = LOCALES_DIR) -> gettext.GNUTranslations | None:
    """The catalogue for a Discord locale: by its full tag, else its language; None means English."""
    if locale is None:
        return None
    tag = (locale.value if isinstance(locale, Locale) else str(locale)).lower()
    catalogues = load_catalogues(directory)
    return catalogues.get(tag) or catalogues.get(tag.split("-")[0])


def translate(locale: Locale | str | None, message: str | BaseException) -> str:
    """``message`` in the language of ``locale``: a ``Text`` (or an exception whose first argument is one) from the
    catalogue, formatted after translation; any other text as it is. English when there is no translation."""
    if isinstance(message, BaseException):
        message = text_of(message)
    if not isinstance(message, Text):
        return str(message)
    args = {name: translate(locale, value) if isinstance(value, Text) else value
            for name, value in message.args.items()}
    catalogue = catalogue_for(locale)
    if catalogue is None:
        return str(message)
    if message.plural_msgid is None:
        wording = catalogue.gettext(message.msgid)
    else:
        wording = catalogue.ngettext(message.msgid, message.plural_msgid, args["n"])
    try:
        return wording.format(**args) if args else wording
    except (KeyError, IndexError, ValueError):
        log.error("the %s translation of %r does not format; answering in English", locale, message.msgid)
        return _english(message, args)


def _english(message: Text, args: dict[str, Any]) -> str:
    if message.plural_msgid is None:
        return message.msgid.format(**args) if args else message.msgid
    return (message.msgid if args["n"] == 1 else message.plural_msgid).format(**args)


def t(locale: Locale | str | None, msgid: str, /, **args: Any) -> str:
    """``msgid`` (an English literal with ``{placeholders}``) in the language of ``locale``, ``args`` filled in."""
    return translate(locale, Text(msgid, **args))


def placeholders(wording: str) -> set[str]:
    """The ``{names}`` a msgid or translation formats (for the catalogue checks)."""
    return {field for _, field, _, _ in string.Formatter().parse(wording) if field}


class CatalogueTranslator(app_commands.Translator):
    """Command and group descriptions, option descriptions and choice names from the same catalogues, when the
    commands sync: Discord stores each locale's text and shows it to people by their client's language."""

    async def load(self) -> None:
        load_catalogues()

    async def translate(self, string: app_commands.locale_str, locale: Locale,
                        context: app_commands.TranslationContextTypes) -> str | None:
        if context.location in UNTRANSLATED_LOCATIONS:
            return None
        catalogue = catalogue_for(locale)
        if catalogue is None:
            return None
        wording = catalogue.gettext(string.message)
        return wording if wording != string.message else None
