"""Languages: the catalogues are complete for the code as it is, and a locale gets its language or English.

The completeness check is what keeps "Italian is complete" true while the code changes: it extracts every msgid
the code words (``Text``, ``plural``, ``t`` in bot/, cogs/, models/, and the slash commands' descriptions and choice
names) and fails on a msgid without an Italian translation, a translation whose ``{placeholders}`` differ from its
msgid's, or a catalogue entry no code uses any more. ``make messages`` brings the catalogues up to date.
"""

from __future__ import annotations

import ast
import pickle
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from discord import Locale, app_commands

from bot.admission import Admission, Refused
from bot.config import QueueConfig
from bot.i18n import LOCALES_DIR, CatalogueTranslator, catalogue_for, load_catalogues, placeholders, t, translate
from bot.i18n_catalogue import KEYWORDS, REPO, SOURCE_PACKAGES, expected_msgids, init, read_catalogue, write_catalogue
from models.plan import GenerationRequest, resolve_model
from models.styles import StyleBook
from models.text import Text, plural, text_of

ITALIAN = LOCALES_DIR / "it.po"


def _forms(msgid: str | tuple[str, ...]) -> tuple[str, ...]:
    return msgid if isinstance(msgid, tuple) else (msgid,)


def test_every_message_the_code_words_has_an_italian_translation_and_none_is_stale() -> None:
    expected = expected_msgids()
    assert len(expected) > 150  # the extractor found the code's messages, not nothing
    catalogue = read_catalogue(ITALIAN)
    entries = {message.id: message for message in catalogue if message.id}
    untranslated = [
        f"{msgid!r} ({', '.join(sorted(where))})" for msgid, where in expected.items()
        if msgid not in entries or entries[msgid].fuzzy or not all(_forms(entries[msgid].string))
    ]
    assert untranslated == [], "run `make messages`, then translate these in bot/locales/it.po:\n" + "\n".join(
        untranslated)
    stale = [msgid for msgid in entries if msgid not in expected]
    assert stale == [], "no code uses these any more; `make messages` drops them"
    wrong = [
        (msgid, translation) for msgid, message in entries.items()
        for translation in _forms(message.string)
        if placeholders(translation) != placeholders(_forms(msgid)[-1])
    ]
    assert wrong == [], "a translation must use exactly its msgid's {placeholders}"
    assert catalogue.num_plurals == 2


def test_msgids_are_literals_not_formatted_strings() -> None:
    """``Text(f"...")`` or ``t(locale, "a " + b)`` would put values into the msgid: the extractor skips the first
    (silently English forever) and takes a fragment of the second. Values go in as keyword arguments."""
    positions = {name: [spec - 1 for spec in (specs or (1,))] for name, specs in KEYWORDS.items()}
    offences = []
    for package in SOURCE_PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
                for index in positions.get(name, ()):
                    if index < len(node.args) and isinstance(node.args[index], ast.JoinedStr | ast.BinOp):
                        offences.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offences == []


REPLY_ARGUMENT = {"send_message": 0, "send": 0, "reply_privately": 1, "reply": 1, "_fail": 1, "on_failure": 1,
                  "_refuse": 0}
"""Calls whose argument at this position is read by a person (a message's content, a job's failure)."""
PERSON_ERRORS = {"Rejected", "Refused", "AttachmentRefused", "ImageNotFound", "ImageExpired", "UnknownStyle",
                 "InvalidImage", "ModelUnavailable", "NotAdmin", "GenerationUnavailable"}
"""Exceptions whose message is shown to the person (their first argument); ``ValueError`` too in models/plan.py."""
WORDED_KEYWORDS = {"content", "label", "placeholder", "title", "text"}
"""Keyword arguments people read: message content, button/select/modal labels, embed titles and footers."""
TRANSLATING = {"t", "translate", "Text", "plural"}
WORD = re.compile(r"[^\W\d_]{2,}")
UNTRANSLATED_MARK = "# not translated:"
COMMAND_LINE = {"bot/__main__.py", "bot/imagine_cli.py", "bot/upscale_cli.py", "bot/i18n_catalogue.py"}
"""Read in a terminal by the operator: English."""


def _untranslated_words(node: ast.AST) -> bool:
    """Whether an expression has literal words outside a translating call (``t(...)``, ``Text(...)``, ...)."""
    if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in TRANSLATING:
        return False
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and bool(WORD.search(node.value))
    return any(_untranslated_words(child) for child in ast.iter_child_nodes(node))


def test_what_people_read_is_worded_for_translation() -> None:
    """A reply, button label, embed title or refusal written as a plain literal would stay English for everyone:
    this lists each one (file:line) so that wording it with ``t``/``Text`` is mechanical. A line that must stay
    the same in every language says why with ``# not translated: ...``."""
    offences = []
    for package in SOURCE_PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            if str(path.relative_to(REPO)) in COMMAND_LINE:
                continue
            source = path.read_text(encoding="utf-8")
            lines = source.splitlines()
            for node in ast.walk(ast.parse(source)):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "id", getattr(node.func, "attr", None))
                read: list[ast.AST] = [k.value for k in node.keywords if k.arg in WORDED_KEYWORDS]
                if name == "add_field":
                    read += [k.value for k in node.keywords if k.arg == "name"]
                index = REPLY_ARGUMENT.get(name)
                if name in PERSON_ERRORS or (name == "ValueError" and path.name == "plan.py" and package == "models"):
                    index = 0
                if index is not None and index < len(node.args):
                    read.append(node.args[index])
                if any(_untranslated_words(value) for value in read) and not any(
                    UNTRANSLATED_MARK in line for line in lines[node.lineno - 1 : node.end_lineno]
                ):
                    offences.append(f"{path.relative_to(REPO)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert offences == [], "word these with t(locale, ...) or Text(...) (bot/i18n.py):\n" + "\n".join(offences)


@pytest.mark.parametrize(
    ("locale", "language"),
    [("it", "it"), (Locale.italian, "it"), ("en-US", "en"), ("en-GB", "en"), ("pt-BR", "en"), (None, "en")],
)
def test_a_locale_gets_its_catalogue_else_english(locale, language) -> None:
    said = t(locale, "You can ask for 1 to {max_count} images at a time.", max_count=4)
    assert said == {"it": "Puoi chiedere da 1 a 4 immagini alla volta.",
                    "en": "You can ask for 1 to 4 images at a time."}[language]


def test_the_full_tag_wins_over_the_language(tmp_path: Path) -> None:
    for tag, wording in (("es", "Hola (es)"), ("es-419", "Hola (es-419)")):
        catalogue = Catalog(locale=tag.replace("-", "_"))
        catalogue.add("Hello", wording)
        write_catalogue(tmp_path / f"{tag}.po", catalogue)
    assert catalogue_for("es-419", tmp_path).gettext("Hello") == "Hola (es-419)"
    assert catalogue_for("es-ES", tmp_path).gettext("Hello") == "Hola (es)"
    assert catalogue_for("fr", tmp_path) is None


def test_the_catalogues_read_at_start_are_the_ones_every_reply_uses() -> None:
    """The bot compiles them in a thread at start (``load_catalogues()``); a reply's lookup must not compile them
    again on the event loop because it names the folder."""
    assert load_catalogues() is load_catalogues(LOCALES_DIR)
    assert catalogue_for("it") is load_catalogues()["it"]


def test_text_is_the_english_sentence_and_is_translated_with_its_arguments_after_translation() -> None:
    text = Text("The style '{style}' is made for the model '{model}'; leave the model out or pick another style.",
                style="anime", model="sdxl")
    assert text == "The style 'anime' is made for the model 'sdxl'; leave the model out or pick another style."
    assert translate("it", text) == ("Lo stile 'anime' è fatto per il modello 'sdxl'; non indicare il modello o "
                                     "scegli un altro stile.")
    assert translate("it", "not a Text: said as it is") == "not a Text: said as it is"
    assert t("it", "**Speed:** {seconds:.2f} s per image (moving average)", seconds=1.23456) == (
        "**Velocità:** 1.23 s per immagine (media mobile)")


def test_plurals_follow_the_languages_rule_and_nested_texts_are_translated_too() -> None:
    assert [translate("it", plural("{n} day", "{n} days", n=n)) for n in (1, 2)] == ["1 giorno", "2 giorni"]
    assert [str(plural("{n} day", "{n} days", n=n)) for n in (1, 2)] == ["1 day", "2 days"]
    expired = Text("This image has expired: images are kept for {kept}, then deleted. Run /imagine again (the "
                   "recipe is in the message) to make it anew.", kept=plural("{n} hour", "{n} hours", n=1))
    assert "kept for 1 hour," in expired
    assert "conservate per 1 ora," in translate("it", expired)


def test_refusals_raised_deep_in_the_code_reach_the_person_translated() -> None:
    """An exception's first argument carries the Text through ``raise``, ``str()`` and even pickling (Ray)."""
    with pytest.raises(ValueError) as unknown_model:
        resolve_model(GenerationRequest(prompt="a cat", model="nope"), StyleBook([]), ["tiny"])
    assert str(unknown_model.value) == "Unknown model 'nope'; choose one of tiny (see /models)."
    assert translate("it", unknown_model.value) == "Modello 'nope' sconosciuto; scegline uno tra tiny (vedi /models)."
    travelled = pickle.loads(pickle.dumps(unknown_model.value))
    assert isinstance(text_of(travelled), Text)
    assert translate("it", travelled) == translate("it", unknown_model.value)

    gate = Admission(QueueConfig(rate_per_minute=60, burst=5, max_pending_per_user=1))
    with gate.admit(1, (), now=0.0, queued=0):
        pass
    with pytest.raises(Refused) as refused:
        gate.admit(1, (), now=1.0, queued=0).__enter__()
    assert refused.value.reason == "You can queue 1 job at a time; wait for one to finish."
    assert translate("it", refused.value) == "Puoi avere in coda 1 richiesta alla volta; aspetta che finisca."
    assert translate("it", RuntimeError("a plain message")) == "a plain message"


def test_a_translation_that_does_not_format_falls_back_to_english(tmp_path: Path, monkeypatch) -> None:
    catalogue = Catalog(locale="fr")
    catalogue.add("Hello {name}", "Bonjour {nom}")
    write_catalogue(tmp_path / "fr.po", catalogue)
    french = catalogue_for("fr", tmp_path)
    monkeypatch.setattr("bot.i18n.catalogue_for", lambda locale: french)
    assert translate("fr", Text("Hello {name}", name="Ada")) == "Hello Ada"


async def test_commands_are_described_in_italian_and_keep_english_names() -> None:
    translator = CatalogueTranslator()
    await translator.load()

    def context(location):
        return app_commands.TranslationContext(location=location, data=None)

    description = app_commands.TranslationContextLocation.command_description
    name = app_commands.TranslationContextLocation.command_name
    made = app_commands.locale_str("Make images from a prompt")
    assert await translator.translate(made, Locale.italian, context(description)) == "Crea immagini da un prompt"
    assert await translator.translate(made, Locale.american_english, context(description)) is None
    assert await translator.translate(app_commands.locale_str("imagine"), Locale.italian, context(name)) is None


def test_init_starts_a_language_with_every_msgid_and_its_plural_rule(tmp_path: Path) -> None:
    path = init("pt-BR", tmp_path)
    catalogue = read_catalogue(path)
    assert path.name == "pt-BR.po" and str(catalogue.locale) == "pt_BR"
    assert {message.id for message in catalogue if message.id} == set(expected_msgids())
    assert catalogue_for("pt-BR", tmp_path) is not None  # found by its file name, nothing else to change
    with pytest.raises(SystemExit):
        init("pt-BR", tmp_path)
