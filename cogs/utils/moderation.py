"""Prompt moderation and channel rules.

Banned terms are matched on a folded form of the prompt: case, compatibility forms (fullwidth,
ligatures), accents, zero-width and other invisible characters, and the common Cyrillic/Greek
look-alikes of Latin letters are all removed before matching, so "ｃаt" with a Cyrillic "а" or
"c\u200bat" still matches a banned "cat".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from bot.config import ChannelRules

# Letters that render like Latin ones but are other code points (NFKC leaves them alone).
LOOKALIKES = str.maketrans(
    {
        "а": "a",
        "в": "b",
        "е": "e",
        "ё": "e",
        "к": "k",
        "м": "m",
        "н": "h",
        "о": "o",
        "р": "p",
        "с": "c",
        "т": "t",
        "у": "y",
        "х": "x",
        "і": "i",
        "ї": "i",
        "ј": "j",
        "ѕ": "s",
        "ԁ": "d",
        "ԛ": "q",
        "ԝ": "w",
        "ɡ": "g",
        "ο": "o",
        "α": "a",
        "ε": "e",
        "ι": "i",
        "κ": "k",
        "ν": "v",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        "β": "b",
        "η": "n",
        "μ": "u",
        "ω": "w",
        "ℓ": "l",
        "ı": "i",
    }
)


def fold(text: str) -> str:
    """The form prompts and banned terms are compared in."""
    text = unicodedata.normalize("NFKC", text).casefold().translate(LOOKALIKES)
    decomposed = unicodedata.normalize("NFKD", text)
    kept = (ch for ch in decomposed if unicodedata.category(ch) not in ("Mn", "Me", "Cf", "Cc") or ch in "\n\t")
    return re.sub(r"\s+", " ", "".join(kept)).strip()


class BannedTerms:
    """Whole-word (or whole-phrase) matching of folded banned terms."""

    def __init__(self, terms: Iterable[str]) -> None:
        folded = sorted({fold(term) for term in terms if fold(term)}, key=len, reverse=True)
        self.terms = folded
        self._pattern = (
            re.compile(r"(?<!\w)(" + "|".join(re.escape(term) for term in folded) + r")(?!\w)") if folded else None
        )

    def find(self, text: str) -> str | None:
        """The first banned term in ``text``, or None."""
        if self._pattern is None:
            return None
        match = self._pattern.search(fold(text))
        return match.group(1) if match else None


def channel_allowed(rules: dict[int, ChannelRules], guild_id: int | None, channel_id: int | None) -> bool:
    """Per-guild allow/deny lists: deny wins; an empty allow list allows every channel not denied."""
    if guild_id is None or guild_id not in rules:
        return True
    rule = rules[guild_id]
    if channel_id in rule.deny:
        return False
    return not rule.allow or channel_id in rule.allow


def is_age_restricted(channel: object) -> bool:
    """Whether a channel is marked age-restricted (NSFW); DMs and unknown channel types are not."""
    is_nsfw = getattr(channel, "is_nsfw", None)
    return bool(is_nsfw()) if callable(is_nsfw) else False
