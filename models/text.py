"""Text for a person that can still be said in their language after it has travelled through the code.

A refusal is often worded far from the place that answers the person: ``models.plan`` raises ``ValueError`` for an
out-of-range count, ``bot.admission`` a ``Refused``, the queue a failure message. Those places don't know (and
``models`` must not learn, see ``tests/test_layout.py``) who is asking or in what language. So they word it as a
``Text``: a ``str`` that *is* the English sentence — logs, the database and every ``str()`` see plain English, as
before — and that also remembers its msgid and arguments, so ``bot.i18n.translate(locale, text)`` at the moment of
answering can say it again from the person's catalogue, formatting the arguments into the translation.

``Text`` and ``plural`` are also the names the catalogue extractor looks for (``bot.i18n.KEYWORDS``): the first
argument must be a plain string literal (never an f-string: its values go in as keyword arguments).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Text", "plural", "text_of"]


class Text(str):
    """``msgid.format(**args)`` in English, remembering ``msgid`` (and ``plural_msgid`` with the count ``n``)."""

    msgid: str
    plural_msgid: str | None
    args: dict[str, Any]

    def __new__(cls, msgid: str, /, **args: Any) -> Text:
        self = super().__new__(cls, msgid.format(**args) if args else msgid)
        self.msgid, self.plural_msgid, self.args = msgid, None, args
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        # Kept whole through pickling (the Ray backend pickles the errors its replicas raise).
        return (_rebuild, (self.msgid, self.plural_msgid, self.args))


def plural(singular: str, plural_form: str, /, n: int, **args: Any) -> Text:
    """A ``Text`` whose wording depends on the count ``n`` (available as ``{n}``): the English form is chosen by
    English's rule, a translation by its own language's plural rule (``Plural-Forms`` in its catalogue)."""
    text = Text(singular if n == 1 else plural_form, n=n, **args)
    text.msgid, text.plural_msgid = singular, plural_form
    return text


def _rebuild(msgid: str, plural_msgid: str | None, args: dict[str, Any]) -> Text:
    return Text(msgid, **args) if plural_msgid is None else plural(msgid, plural_msgid, **args)


def text_of(error: BaseException) -> str:
    """What an exception says to a person: its first argument when that is a ``Text`` (so it can still be
    translated), else ``str(error)`` (``str()`` of an exception would make a plain copy of a ``Text``)."""
    first = error.args[0] if error.args else None
    return first if isinstance(first, Text) else str(error)
