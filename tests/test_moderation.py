"""Banned terms survive disguises; channel rules allow and deny as documented."""

from __future__ import annotations

import pytest

from bot.config import ChannelRules
from bot.moderation import BannedTerms, channel_allowed, fold


@pytest.mark.parametrize(
    "prompt",
    [
        "a cat",
        "A CAT",
        "a ｃａｔ",  # fullwidth
        "a cаt",  # Cyrillic а
        "a c\u200bat",  # zero-width space
        "a c\u00adat",  # soft hyphen
        "a cát",  # accent
        "cat, sleeping",
    ],
)
def test_disguised_terms_are_found(prompt):
    assert BannedTerms(["Cat"]).find(prompt) == "cat"


@pytest.mark.parametrize("prompt", ["concatenate", "a dog", "catalog", ""])
def test_innocent_prompts_pass(prompt):
    assert BannedTerms(["cat"]).find(prompt) is None


@pytest.mark.parametrize(
    "prompt",
    [
        "a nude_statue",
        "nude1",
        "NUDE!!!",
        "n.u.d.e",
        "n u d e",
        "ｎｕｄｅ",  # fullwidth
        "ɴᴜᴅᴇ",  # small capitals (ɴ is in no confusables list: its Unicode name says what it is)
        "nudе",  # Cyrillic е
        "nսde",  # Armenian ս
        "nυde",  # Greek υ
        "𝐧𝐮𝐝𝐞",  # mathematical bold
        "nu\u200bde",  # zero-width space
        "nu\u2060de",  # word joiner
        "nu\ufeffde",  # zero-width no-break space
        "nu\u3164de",  # Hangul filler
        "nu\uffa0de",  # halfwidth Hangul filler
        "nu\u2800de",  # Braille blank
        "nu\u115fde",  # Hangul choseong filler
        "nu\u1160de",  # Hangul jungseong filler
        "a\u3164nude\u3164statue",  # fillers used as spaces
    ],
)
def test_separators_and_lookalikes_do_not_hide_a_term(prompt):
    assert BannedTerms(["nude"]).find(prompt) == "nude"


@pytest.mark.parametrize(
    "prompt", ["blood bath", "blood-bath", "bloodbath", "Blood_Bath", "blood2bath", "a (blood) bath"]
)
def test_phrases_match_however_their_words_are_joined(prompt):
    assert BannedTerms(["Blood  Bath"]).find(prompt) == "blood bath"  # the term as configured, case and spaces folded


@pytest.mark.parametrize("prompt", ["scunthorpe", "a nudes pack", "denude", "prenuded", "bloodbathe", "menu detail"])
def test_terms_inside_longer_words_pass(prompt):
    assert BannedTerms(["cunt", "nude", "blood bath"]).find(prompt) is None


def test_phrases_and_empty_lists():
    assert BannedTerms(["red   dog"]).find("a Red dog running") == "red dog"
    assert BannedTerms([]).find("anything") is None
    assert fold("ＡＢＣ\u200d") == "abc"


def test_channel_rules():
    rules = {1: ChannelRules(allow=[10, 11], deny=[11]), 2: ChannelRules(deny=[20])}
    assert channel_allowed(rules, 1, 10)
    assert not channel_allowed(rules, 1, 11)  # deny wins
    assert not channel_allowed(rules, 1, 12)  # not in allow list
    assert channel_allowed(rules, 2, 21)
    assert not channel_allowed(rules, 2, 20)
    assert channel_allowed(rules, 3, 99)  # no rules for this guild
    assert channel_allowed(rules, None, 5)  # direct messages
