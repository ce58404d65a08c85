"""One logging setup for every entry point, in the spirit of discord.utils.setup_logging.

The bot token must never reach a log line, even when a library logs a URL or a header that holds it,
so a filter scrubs it from every record before any handler formats it.
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

import discord.utils

REDACTED = "[token redacted]"


class RedactSecrets(logging.Filter):
    """Replaces each secret in a record's message and arguments."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [secret for secret in secrets if secret]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        if any(secret in message for secret in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, REDACTED)
            record.msg, record.args = message, None
        return True


def setup_logging(level: str | int = "INFO", *, file: Path | None = None, secrets: list[str] = ()) -> None:
    """Log to stderr (coloured when it is a terminal, as discord.py does) and optionally to a rotating file."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    redact = RedactSecrets(list(secrets))
    discord.utils.setup_logging(level=level, root=True)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(file, maxBytes=8 * 1024 * 1024, backupCount=3, encoding="utf-8")
        handler.setFormatter(
            logging.Formatter("[{asctime}] [{levelname:<8}] {name}: {message}", "%Y-%m-%d %H:%M:%S", style="{")
        )
        root.addHandler(handler)
    for handler in root.handlers:
        handler.addFilter(redact)
    # Libraries that chatter at INFO drown the bot's own lines.
    for noisy in ("httpx", "urllib3", "filelock", "huggingface_hub", "diffusers", "transformers"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
