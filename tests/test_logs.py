"""Neither the bot token nor any interaction token reaches a log line, whoever logs it, however, at any level."""

from __future__ import annotations

import logging
from collections.abc import Callable

import aiohttp
import discord
import pytest
from discord.webhook.async_ import async_context, interaction_response_params

from bot.logs import REDACTED, setup_logging
from fakediscord import FakeDiscord

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.secret-part-of-the-token"
# Discord's interaction tokens are opaque strings like this one; the bot is never told them as secrets.
INTERACTION_TOKEN = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc4OlNlY3JldFBhcnRPZlRoZVRva2Vu"
APPLICATION_ID = 123456789012345678


@pytest.fixture
def logged(tmp_path, capsys):
    """A function that sets logging up as the bot does at DEBUG and returns what is written from then on."""
    log_file = tmp_path / "bot.log"

    def written() -> str:
        return log_file.read_text() + capsys.readouterr().err

    def start() -> Callable[[], str]:
        setup_logging("DEBUG", file=log_file, secrets=[TOKEN])
        capsys.readouterr()
        return written

    yield start
    logging.getLogger().handlers.clear()


def test_token_is_scrubbed_from_messages_and_arguments(logged):
    written = logged()
    library = logging.getLogger("discord.http")
    library.info("POST https://discord.com/api/v10/channels/1/%s/messages", TOKEN)
    library.warning(f"Authorization: Bot {TOKEN}")
    logging.getLogger("bot").error("failed: %r", {"secret": TOKEN})
    output = written()
    assert TOKEN not in output
    assert output.count(REDACTED) == 6  # three records, each on stderr and in the file


async def test_discord_debug_lines_and_tracebacks_carry_no_token(logged, monkeypatch):
    """discord.py's own requests against the emulator, its gateway event line, and tracebacks."""
    written = logged()
    emu = FakeDiscord()
    await emu.start()
    monkeypatch.setattr(discord.http.Route, "BASE", emu.api_base)
    try:
        async with aiohttp.ClientSession() as session:
            webhook = discord.Webhook.partial(APPLICATION_ID, INTERACTION_TOKEN, session=session)
            with pytest.raises(discord.HTTPException):  # a followup to an interaction the emulator never saw
                await webhook.send("hello")
            with pytest.raises(discord.HTTPException):
                await async_context.get().create_interaction_response(
                    APPLICATION_ID, INTERACTION_TOKEN, session=session, params=interaction_response_params(type=5)
                )
    finally:
        await emu.stop()
    # discord.py's gateway line for an INTERACTION_CREATE event (gateway.py, DiscordWebSocket.received_message)
    event = {"t": "INTERACTION_CREATE", "op": 0, "d": {"id": "1", "token": INTERACTION_TOKEN, "type": 2}}
    logging.getLogger("discord.gateway").debug("For Shard ID %s: WebSocket Event: %s", 0, event)
    try:
        raise RuntimeError(f"{emu.api_base}/interactions/1/{INTERACTION_TOKEN}/callback: headers {{'Authorization': "
                           f"'Bot {TOKEN}'}}")  # fmt: skip
    except RuntimeError:
        logging.getLogger("cogs.imagine").exception("could not answer")
    # The stack shows this source line, and with it a webhook URL that holds INTERACTION_TOKEN.
    logging.getLogger("bot").debug("where", stack_info=True, extra={"url": "/webhooks/123456789012345678/aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc4OlNlY3JldFBhcnRPZlRoZVRva2Vu"})  # noqa: E501

    output = written()
    assert "/webhooks/123456789012345678/" in output and "/interactions/123456789012345678/" in output
    assert "Traceback" in output and "Stack (most recent call last)" in output
    assert TOKEN not in output
    assert INTERACTION_TOKEN not in output


def test_a_handler_that_cannot_write_reports_no_token(logged):
    """logging prints the record's message and arguments to stderr when a handler fails (e.g. a full disk)."""
    written = logged()
    file_handler = next(h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler))
    file_handler.stream.close()
    logging.getLogger("discord.webhook.async_").debug("POST %s", f"/webhooks/1/{INTERACTION_TOKEN}/messages/@original")
    output = written()
    assert "--- Logging error ---" in output
    assert INTERACTION_TOKEN not in output
