"""The bot token never reaches a log line, whoever logs it and however."""

from __future__ import annotations

import logging

from bot.logs import REDACTED, setup_logging

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.secret-part-of-the-token"


def test_token_is_scrubbed_from_messages_and_arguments(tmp_path, capsys):
    log_file = tmp_path / "bot.log"
    setup_logging("DEBUG", file=log_file, secrets=[TOKEN])
    try:
        library = logging.getLogger("discord.http")
        library.info("POST https://discord.com/api/v10/webhooks/1/%s/messages", TOKEN)
        library.warning(f"Authorization: Bot {TOKEN}")
        logging.getLogger("bot").error("failed: %r", {"token": TOKEN})
    finally:
        logging.getLogger().handlers.clear()
    written = log_file.read_text() + capsys.readouterr().err
    assert TOKEN not in written
    assert written.count(REDACTED) == 6  # three records, each on stderr and in the file
