"""One logging setup for every entry point, in the spirit of discord.utils.setup_logging.

No token may reach a log line: not the bot token (configured, so it is replaced wherever it appears) and not the
interaction tokens the bot is handed with every command, which discord.py's DEBUG lines print inside webhook URLs
(``/webhooks/<application id>/<token>``, ``/interactions/<id>/<token>/callback``) and gateway events
(``'token': ...``). Those are recognised by shape. Scrubbing happens twice on every handler: on the record, whose
message and arguments logging itself prints when a handler cannot write (a full disk, a closed stream), and on the
handler's finished text, so the exception traceback and the stack info are covered too, whichever formatter made them.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
from collections.abc import Sequence
from pathlib import Path

import discord.utils

REDACTED = "[token redacted]"
# What holds a token, up to the token itself (kept), and the token (replaced).
TOKEN_SHAPES = (
    # The path segment after a webhook's or an interaction's id is always its token.
    re.compile(r"(/(?:webhooks|interactions)/\d+/)[^/?#\s'\"]+"),
    # Authorization header values.
    re.compile(r"(\b(?:Bot|Bearer) )[\w.-]{20,}"),
    # A token field in JSON or in a dict's repr (gateway events, interaction payloads).
    re.compile(r"""(['"](?:token|access_token|refresh_token)['"]\s*:\s*['"])[^'"]+"""),
    # A bot token on its own: user id in base64, timestamp, HMAC.
    re.compile(r"()\b[\w-]{23,28}\.[\w-]{6,7}\.[\w-]{27,}"),
)


class Redactor:
    """Replaces the configured secrets and anything shaped like a Discord token in a piece of text."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self.secrets = [secret for secret in secrets if secret]

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        for shape in TOKEN_SHAPES:
            text = shape.sub(rf"\1{REDACTED}", text)
        return text


class RedactRecord(logging.Filter):
    """Replaces a record's message and arguments with the scrubbed message."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit the format: keep both, as logging would show them
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = self.redact(message), None
        return True


class RedactingFormatter(logging.Formatter):
    """A handler's own formatter, whose finished text (message, traceback, stack) is scrubbed before it is written."""

    def __init__(self, inner: logging.Formatter, redact: Redactor) -> None:
        super().__init__()
        self.inner = inner
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(self.inner.format(record))


def setup_logging(level: str | int = "INFO", *, file: Path | None = None, secrets: Sequence[str] = ()) -> None:
    """Log to stderr (coloured when it is a terminal, as discord.py does) and optionally to a rotating file."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    redact = Redactor(secrets)
    discord.utils.setup_logging(level=level, root=True)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(file, maxBytes=8 * 1024 * 1024, backupCount=3, encoding="utf-8")
        handler.setFormatter(
            logging.Formatter("[{asctime}] [{levelname:<8}] {name}: {message}", "%Y-%m-%d %H:%M:%S", style="{")
        )
        root.addHandler(handler)
    for handler in root.handlers:
        handler.addFilter(RedactRecord(redact))
        handler.setFormatter(RedactingFormatter(handler.formatter or logging.Formatter(), redact))
    # Libraries that chatter at INFO drown the bot's own lines.
    for noisy in ("httpx", "urllib3", "filelock", "huggingface_hub", "diffusers", "transformers"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
