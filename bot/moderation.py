"""Prompt moderation and channel rules.

Banned terms are matched on a folded form of the prompt, so that the usual disguises do not hide a term:

- case and compatibility forms (fullwidth, ligatures, mathematical letters) and accents are folded by Unicode
  normalization;
- letters of other scripts that look like Latin ones (Cyrillic "а", Armenian "ս", Greek "υ", small capitals) become
  the Latin letter they imitate, by Unicode's confusables data (TR39, as shipped by ``confusable-homoglyphs``),
  so the table is maintained upstream rather than here;
- zero-width characters vanish, as they do on screen; everything else that is not a letter — spaces, punctuation,
  digits, underscores, and the Hangul and Braille fillers that render as blanks — only separates letters.

A term matches when its letters appear in order with nothing but separators between them, starting and ending at a
word edge: "nude_statue", "nude1" and "n.u.d.e" match "nude", and "blood-bath" and "bloodbath" match "blood bath".
A term inside a longer word does not ("denude", "scunthorpe"), nor one whose letters straddle words without starting
and ending at their edges ("menu detail"). The price of joining across separators is that words which happen to
spell a term when run together ("the rapist" for "therapist") match it. Digits are separators, not letters:
"nude1" is caught, "n00d" is not, and a configured term's digits only split it into words.
"""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from collections.abc import Iterable

from confusable_homoglyphs.confusables import confusables_data

from bot.config import ChannelRules

# The Default_Ignorable_Code_Points that Unicode files as letters (category Lo): they render as nothing or a blank.
INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")
# How many look-alike steps to follow to a Latin letter: the data links e.g. small capital "ᴀ" to Cherokee "ꭺ",
# which links to "A".
LOOKALIKE_DEPTH = 3
SMALL_CAPITAL = re.compile(r"LATIN LETTER SMALL CAPITAL ([A-Z])")


def _plain(text: str) -> str:
    """Compatibility forms, case and combining marks folded away: what a reader sees, in the simplest code points."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    return "".join(ch for ch in decomposed if unicodedata.category(ch) not in ("Mn", "Me", "Cf"))


@functools.cache
def latin_lookalike(char: str) -> str | None:
    """The ASCII letter that ``char`` (a plain, non-ASCII letter) imitates, or None.

    The nearest ASCII letter in the confusables graph wins; small capitals that TR39 leaves out ("ɴ", "ꜰ", "ꞯ") are
    recognised by their Unicode names.
    """
    seen, frontier = {char}, [char]
    for _ in range(LOOKALIKE_DEPTH):
        found: list[str] = []
        for node in frontier:
            for glyph in confusables_data.get(node, ()):
                plain = _plain(glyph["c"])
                if len(plain) != 1 or plain in seen:
                    continue
                if plain in string.ascii_lowercase:
                    return plain
                seen.add(plain)
                found.append(plain)
        frontier = found
    named = SMALL_CAPITAL.fullmatch(unicodedata.name(char, ""))
    return named.group(1).lower() if named else None


def _letter(char: str) -> str:
    """``char`` as a Latin letter when it imitates one; itself when it is another letter; a space otherwise."""
    if char in string.ascii_lowercase:
        return char
    if not char.isalpha() or char in INVISIBLE_LETTERS:
        return " "
    return latin_lookalike(char) or char


def fold(text: str) -> str:
    """The form prompts and banned terms are compared in: words of plain letters, one space between them."""
    return " ".join("".join(_letter(ch) for ch in _plain(text)).split())


class BannedTerms:
    """Matching of folded banned terms whose letters may be split by separators but must start and end a word."""

    def __init__(self, terms: Iterable[str]) -> None:
        folded = {fold(term) for term in terms} - {""}
        self.terms = sorted(folded, key=lambda term: len(term.replace(" ", "")), reverse=True)
        self._spelled = {term.replace(" ", ""): term for term in self.terms}
        # In folded text (letters and single spaces) a term's letters may each be followed by a space.
        alternatives = "|".join(" ?".join(re.escape(ch) for ch in letters) for letters in self._spelled)
        self._pattern = re.compile(rf"(?<!\S)({alternatives})(?!\S)") if self.terms else None

    def find(self, text: str) -> str | None:
        """The first banned term in ``text`` (as configured, folded), or None."""
        if self._pattern is None:
            return None
        match = self._pattern.search(fold(text))
        return self._spelled[match.group(1).replace(" ", "")] if match else None


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
