"""Banned terms survive disguises; channel rules allow and deny as documented."""

from __future__ import annotations

import pytest

from bot.config import ChannelRules
from cogs.utils.moderation import BannedTerms, channel_allowed, fold


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
