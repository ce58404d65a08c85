"""The Discord emulator, driven by a real discord.py AutoShardedBot running in this process.

If these pass, the end-to-end tests can trust that what the emulator accepts, real Discord accepts, and that what
the bot sees (gateway events, interaction payloads, REST answers) is shaped like Discord's.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands
from PIL import Image

from fakediscord import GUILD_ANNOUNCEMENT, GUILD_FORUM, FakeDiscord, Interaction, Message

ACK_TIMEOUT = 1.0
SIZE_LIMIT = 256 * 1024
STYLES = ["anime", "analog film", "watercolor", "pixel art"]


def png(width: int = 8, height: int = 6, color: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


class Bump(discord.ui.DynamicItem[discord.ui.Button], template=r"bump:(?P<n>[0-9]+)"):
    """A restart-proof button: its state lives in the custom_id, like the bot's U1/V1 buttons."""

    def __init__(self, n: int) -> None:
        super().__init__(discord.ui.Button(label=f"Bump {n}", custom_id=f"bump:{n}", emoji="🔄"))
        self.n = n

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: Any
    ) -> Bump:
        return cls(int(match["n"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        view = discord.ui.View(timeout=None).add_item(Bump(self.n + 1))
        await interaction.response.edit_message(content=f"bumped to {self.n + 1}", view=view)


class DemoBot(commands.AutoShardedBot):
    """A minimal bot with the same moves as imagebot: defer, followup with a file and a button, autocomplete."""

    def __init__(self) -> None:
        super().__init__(command_prefix=commands.when_mentioned, intents=discord.Intents.default())
        self.errors: list[discord.HTTPException] = []
        self.release = asyncio.Event()
        self.inputs: list[bytes] = []

    async def setup_hook(self) -> None:
        self.add_dynamic_items(Bump)
        self.tree.add_command(draw)
        self.tree.add_command(misbehave)
        self.tree.add_command(admin)
        self.tree.add_command(feedback)
        self.tree.add_command(pick)
        self.tree.add_command(app_commands.ContextMenu(name="Count pictures", callback=count_pictures))
        await self.tree.sync()


@app_commands.command(description="Draw something")
@app_commands.describe(prompt="What to draw", style="A style", image="Start from this", private="Only you see it")
async def draw(
    interaction: discord.Interaction[DemoBot],
    prompt: str,
    style: str | None = None,
    image: discord.Attachment | None = None,
    count: app_commands.Range[int, 1, 4] = 1,
    private: bool = False,
) -> None:
    await interaction.response.defer(ephemeral=private, thinking=True)
    note = ""
    if image is not None:
        data = await image.read()
        interaction.client.inputs.append(data)
        note = f" from {image.filename} ({len(data)} bytes, {image.width}x{image.height})"
    view = discord.ui.View(timeout=None).add_item(Bump(1))
    # ephemeral=True on purpose: after a public defer Discord keeps the message public.
    await interaction.followup.send(
        f"{prompt} in {style or 'no style'} x{count}{note}",
        file=discord.File(io.BytesIO(png(64, 48, "blue")), "result.png"),
        view=view,
        ephemeral=True,
    )


@draw.autocomplete("style")
async def draw_style(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=s.title(), value=s) for s in STYLES if s.startswith(current.lower())]


@app_commands.command(description="Break a Discord rule on purpose")
async def misbehave(interaction: discord.Interaction[DemoBot], case: str) -> None:
    bot = interaction.client
    try:
        if case == "silent":
            return
        if case == "late":
            await asyncio.sleep(ACK_TIMEOUT + 0.3)
            await interaction.response.send_message("too late")
        elif case == "twice":
            await interaction.response.send_message("once")
            interaction.response._response_type = None  # get past discord.py's own guard to reach Discord's
            await interaction.response.send_message("twice")
        elif case == "long_content":
            await interaction.response.send_message("x" * 2001)
        elif case == "long_custom_id":
            view = discord.ui.View().add_item(discord.ui.Button(label="x", custom_id="c" * 101))
            await interaction.response.send_message("button", view=view)
        elif case == "big_file":
            await interaction.response.send_message(file=discord.File(io.BytesIO(b"\0" * (SIZE_LIMIT + 1)), "big.bin"))
        elif case == "expired":
            await interaction.response.defer()
            await bot.release.wait()
            await interaction.followup.send("hours later")
    except discord.HTTPException as exc:
        bot.errors.append(exc)


class FeedbackModal(discord.ui.Modal, title="Feedback"):
    text = discord.ui.TextInput(label="What do you think?", custom_id="feedback_text")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"thanks: {self.text.value}", ephemeral=True)


@app_commands.command(description="Tell us what you think")
async def feedback(interaction: discord.Interaction) -> None:
    await interaction.response.send_modal(FeedbackModal())


class Renamer(discord.ui.Modal, title="Rename"):
    """A modal in today's layout (label components, type 18) with a prefilled input, opened from a button."""

    name = discord.ui.Label(text="New name",
                            component=discord.ui.TextInput(custom_id="name", default="old", max_length=8))
    note = discord.ui.Label(text="Note",
                            component=discord.ui.TextInput(custom_id="note", required=False, min_length=2))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        name, note = self.name.component.value, self.note.component.value  # type: ignore[attr-defined]
        await interaction.response.edit_message(content=f"renamed to {name} ({note or 'no note'})", view=None)


class Pick(discord.ui.View):
    """A multi-select of up to two colours and a button that opens a modal: both update the message."""

    @discord.ui.select(custom_id="colours", min_values=1, max_values=2,
                       options=[discord.SelectOption(label=c, value=c) for c in ("red", "green", "blue")])
    async def colours(self, interaction: discord.Interaction, select: discord.ui.Select) -> None:
        await interaction.response.edit_message(content=f"picked {'+'.join(select.values)}")

    @discord.ui.button(label="Rename", custom_id="rename")
    async def rename(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.send_modal(Renamer())


@app_commands.command(description="Pick colours, rename")
async def pick(interaction: discord.Interaction) -> None:
    await interaction.response.send_message("pick", view=Pick(timeout=None))


admin = app_commands.Group(name="admin", description="Owner tools")
models_group = app_commands.Group(name="models", description="Models", parent=admin)


@models_group.command(name="reload", description="Reload a model")
async def admin_models_reload(interaction: discord.Interaction, name: str, force: bool = False) -> None:
    await interaction.response.send_message(f"reloading {name}...", ephemeral=True)
    await interaction.edit_original_response(content=f"reloaded {name} force={force}")


@pytest.fixture(scope="module")
async def emu() -> AsyncIterator[FakeDiscord]:
    emulator = await FakeDiscord(attachment_size_limit=SIZE_LIMIT, ack_timeout=ACK_TIMEOUT).start()
    yield emulator
    await emulator.stop()


@pytest.fixture(scope="module")
async def bot(emu: FakeDiscord) -> AsyncIterator[DemoBot]:
    old_base = discord.http.Route.BASE
    discord.http.Route.BASE = emu.api_base
    client = DemoBot()
    task = asyncio.create_task(client.start(emu.token))
    try:
        await emu.wait_until_ready(timeout=10)
        yield client
    finally:
        await client.close()
        await asyncio.wait_for(task, 5)
        discord.http.Route.BASE = old_base


@pytest.fixture(autouse=True)
def clean(emu: FakeDiscord) -> Any:
    """Every test must leave no unexpected violations; tests that provoke some take them first."""
    yield
    emu.assert_no_violations()


@pytest.fixture
def ada(emu: FakeDiscord) -> Any:
    return emu.add_user("ada", roles=[emu.add_role("artists")])


async def test_login_ready_and_command_sync(emu: FakeDiscord, bot: DemoBot) -> None:
    assert bot.user is not None and bot.user.id == emu.application_id
    assert bot.application_id == emu.application_id
    assert bot.shard_count == 1
    identify = next(e for e in emu.gateway_log if e["op"] == "identify")
    assert identify["ok"] and identify["shard"] == [0, 1]
    await emu.wait_until(lambda: bot.get_guild(emu.guild_id) is not None, 5, "GUILD_CREATE not processed")
    guild = bot.get_guild(emu.guild_id)
    assert guild is not None and guild.get_channel(emu.nsfw_channel_id).is_nsfw()
    assert (await bot.application_info()).owner.id == emu.owner.id

    draw_def = emu.commands["draw"]
    assert draw_def["application_id"] == str(emu.application_id) and draw_def["id"] and draw_def["version"]
    types = {o["name"]: o["type"] for o in draw_def["options"]}
    assert types == {"prompt": 3, "style": 3, "image": 11, "count": 4, "private": 5}
    assert next(o for o in draw_def["options"] if o["name"] == "style")["autocomplete"] is True
    async with aiohttp.ClientSession(headers={"Authorization": f"Bot {emu.token}"}) as http:
        async with http.get(f"{emu.api_base}/applications/{emu.application_id}/commands") as resp:
            assert resp.headers["Content-Type"] == "application/json"
            assert {c["name"] for c in await resp.json()} == {"draw", "misbehave", "admin", "feedback", "pick",
                                                          "Count pictures"}
        async with http.get(f"{emu.api_base}/channels/{emu.channel_id}/messages/1") as resp:
            assert resp.status == 404 and await resp.json() == {"message": "Unknown Message", "code": 10008}


async def test_bad_token_is_refused(emu: FakeDiscord) -> None:
    client = discord.Client(intents=discord.Intents.none())
    old_base = discord.http.Route.BASE
    discord.http.Route.BASE = emu.api_base
    try:
        with pytest.raises(discord.LoginFailure):
            await client.login("not-the-token")
    finally:
        discord.http.Route.BASE = old_base
        await client.close()


async def test_defer_then_followup_edits_original_and_keeps_visibility(emu: FakeDiscord, bot: DemoBot, ada) -> None:
    cat = png(10, 7, "white")
    inter = await emu.invoke(
        ada, "draw", {"prompt": "a cat", "style": "anime", "count": 2}, attachments={"image": ("cat.png", cat)}
    )
    await inter.wait_acked(5)
    assert inter.response_type == 5 and inter.acked_after is not None and inter.acked_after < ACK_TIMEOUT
    message = await inter.wait_for_message(timeout=5)
    assert message is inter.original and inter.followups == []  # the followup edited the thinking message
    assert not message.ephemeral  # the defer was public, so the "ephemeral" followup is public too
    assert message.history[0]["flags"] & 128  # it started as "thinking..."
    assert message.content == f"a cat in anime x2 from cat.png ({len(cat)} bytes, 10x7)"
    assert bot.inputs[-1] == cat

    [att] = message.attachments
    assert (att.filename, att.content_type, att.width, att.height) == ("result.png", "image/png", 64, 48)
    async with aiohttp.ClientSession() as http, http.get(att.url) as resp:
        served = await resp.read()
    assert served == emu.file_bytes(att) == emu.file_bytes(att.to_dict()) and served.startswith(b"\x89PNG")
    assert [b["custom_id"] for b in message.buttons()] == ["bump:1"]
    assert message in emu.channel_messages()
    event = await emu.wait_for(lambda e: e["type"] == "message_update" and e["message"]["id"] == str(message.id))
    assert event["message"]["attachments"][0]["size"] == len(served)


async def test_private_defer_keeps_followup_ephemeral(emu: FakeDiscord, bot: DemoBot, ada) -> None:
    inter = await emu.invoke(ada, "draw", {"prompt": "secret", "private": True})
    message = await inter.wait_for_message(timeout=5)
    assert message.ephemeral and message.attachments[0].ephemeral
    assert message not in emu.channel_messages(ephemeral=False)


async def test_autocomplete(emu: FakeDiscord, bot: DemoBot, ada) -> None:
    choices = await emu.autocomplete(ada, "draw", {"prompt": "x", "style": "an"}, focused="style")
    assert choices == [{"name": "Anime", "value": "anime"}, {"name": "Analog Film", "value": "analog film"}]


async def test_button_click_updates_message(emu: FakeDiscord, bot: DemoBot, ada) -> None:
    inter = await emu.invoke(ada, "draw", {"prompt": "dog"})
    message = await inter.wait_for_message(timeout=5)
    click = await emu.click(ada, message, "bump:1")
    await click.wait_acked(5)
    assert click.response_type == 7 and click.original is message
    assert message.content == "bumped to 2" and message.buttons()[0]["custom_id"] == "bump:2"
    assert message.history[-1]["content"].startswith("dog")
    with pytest.raises(ValueError, match="no component"):
        await emu.click(ada, message, "bump:1")


async def test_subcommand_group(emu: FakeDiscord, bot: DemoBot) -> None:
    inter = await emu.invoke(emu.owner, "admin models reload", {"name": "sd15", "force": True})
    message = await inter.wait_for_message(timeout=5)
    await emu.wait_until(lambda: message.edited_at is not None, 5, "no edit of @original")
    assert inter.response_type == 4 and message.ephemeral and message.content == "reloaded sd15 force=True"
    assert [h["content"] for h in message.history] == ["reloading sd15..."]
    with pytest.raises(ValueError, match="needs options"):
        await emu.invoke(emu.owner, "admin models reload", {})


async def test_429_with_via_is_retried_once(emu: FakeDiscord, bot: DemoBot, ada) -> None:
    fault = emu.fail_next("POST /webhooks/{app_id}/{token}", 1, status=429, retry_after=0.2)
    inter = await emu.invoke(ada, "draw", {"prompt": "rate limited"})
    message = await inter.wait_for_message(timeout=5)
    assert fault.served == 1 and fault.remaining == 0
    await asyncio.sleep(0.3)
    assert inter.messages == [message] and message.content.startswith("rate limited")
    posts = [r for r in emu.requests if r.method == "POST" and r.route == "/webhooks/{app_id}/{token}"]
    assert [r.status for r in posts[-2:]] == [429, 200]


async def test_gateway_close_4000_resumes_and_replays(emu: FakeDiscord, bot: DemoBot, ada) -> None:
    await emu.close_gateway(4000, reconnect_delay=0.3)
    inter = await emu.invoke(ada, "draw", {"prompt": "while away"})  # dispatched while the bot is disconnected
    await inter.wait_for_message(timeout=5)
    resume = next(e for e in reversed(emu.gateway_log) if e["op"] == "resume")
    assert resume["ok"] and resume["replayed"] >= 1
    assert sum(1 for e in emu.gateway_log if e["op"] == "identify") == 1  # resumed, not re-identified


async def test_server_error_is_retried(emu: FakeDiscord, bot: DemoBot, ada) -> None:
    fault = emu.fail_next("POST /webhooks/*", 1, status=500)
    inter = await emu.invoke(ada, "draw", {"prompt": "flaky"})
    message = await inter.wait_for_message(timeout=6)
    assert fault.served == 1 and inter.messages == [message]


async def test_reconnect_op7_resumes(emu: FakeDiscord, bot: DemoBot, ada) -> None:
    resumes = sum(1 for e in emu.gateway_log if e["op"] == "resume")
    await emu.reconnect_gateway()
    inter = await emu.invoke(ada, "draw", {"prompt": "after reconnect"})
    await inter.wait_for_message(timeout=5)
    assert sum(1 for e in emu.gateway_log if e["op"] == "resume" and e["ok"]) == resumes + 1


async def test_modal(emu: FakeDiscord, bot: DemoBot, ada) -> None:
    opened = await (await emu.invoke(ada, "feedback")).wait_acked(5)
    assert opened.response_type == 9 and opened.modal is not None and opened.modal["title"] == "Feedback"
    submitted = await emu.submit_modal(ada, opened, {"feedback_text": "lovely"})
    message = await submitted.wait_for_message(timeout=5)
    assert message.content == "thanks: lovely" and message.ephemeral


async def test_selects_and_a_modal_opened_from_a_button(emu: FakeDiscord, bot: DemoBot, ada) -> None:
    message = await (await emu.invoke(ada, "pick")).wait_for_message(timeout=5)
    chosen = await emu.click(ada, message, "colours", values=["red", "blue"])
    await chosen.wait_acked(5)
    assert message.content == "picked red+blue"
    # What Discord's client would not let a person send is a mistake in the test, not something to dispatch.
    for values, reason in ((["pink"], "no option"), (["red", "green", "blue"], "1-2 choices"), ([], "1-2 choices")):
        with pytest.raises(ValueError, match=reason):
            await emu.click(ada, message, "colours", values=values)

    opened = await (await emu.click(ada, message, "rename")).wait_acked(5)
    assert opened.response_type == 9 and [c["type"] for c in opened.modal["components"]] == [18, 18]
    for values, reason in (({"nick": "x"}, "no input"), ({"name": ""}, "required"), ({"name": "far too long"},
                           "0-8 characters"), ({"note": "x"}, "2-4000 characters")):
        with pytest.raises(ValueError, match=reason):
            await emu.submit_modal(ada, opened, values)
    submitted = await emu.submit_modal(ada, opened, {"note": "hi"})  # "name" keeps the text the bot prefilled
    await submitted.wait_acked(5)
    assert submitted.payload["message"]["id"] == str(message.id)  # a modal from a button carries its message
    assert submitted.payload["data"]["components"][0] == {"type": 18, "component": {"type": 4, "custom_id": "name",
                                                                                     "value": "old"}}
    assert message.content == "renamed to old (hi)" and not message.components


@pytest.mark.parametrize(
    ("modal", "kind"),
    [
        ({"title": "t" * 46}, "modal_title"),
        ({"components": []}, "modal_components"),
        ({"components": [{"type": 1, "components": [{"type": 4, "custom_id": "a", "style": 1, "label": "l" * 46}]}]},
         "input_label_too_long"),
        ({"components": [{"type": 18, "label": "l", "component": {"type": 4, "custom_id": "a" * 101, "style": 1}}]},
         "custom_id_too_long"),
        ({"components": [{"type": 18, "label": "l", "component": {"type": 4, "custom_id": "a", "style": 1,
                                                                  "max_length": 3, "value": "four"}}]},
         "input_value_length"),
        ({"components": [{"type": 18, "label": "l", "component": {"type": 4, "custom_id": "a", "style": 1,
                                                                  "min_length": 5, "max_length": 3}}]},
         "input_lengths"),
        ({"components": [{"type": 18, "label": "l", "component": {"type": 3, "custom_id": "s", "options": []}}]},
         "select_options"),
    ],
)
def test_modal_rules(modal: dict[str, Any], kind: str) -> None:
    from fakediscord import rules

    body = {"title": "Form", "custom_id": "form",
            "components": [{"type": 18, "label": "l", "component": {"type": 4, "custom_id": "a", "style": 1}}],
            **modal}
    assert [problem.kind for problem in rules.check_modal(body)] == [kind]


async def test_slow_attachments(emu: FakeDiscord, bot: DemoBot, ada) -> None:
    emu.slow_attachments(0.4)
    try:
        inter = await emu.invoke(ada, "draw", {"prompt": "slow"}, attachments={"image": ("in.png", png())})
        await inter.wait_acked(ACK_TIMEOUT)  # the bot defers before downloading
        loop = asyncio.get_running_loop()
        started = loop.time()
        await inter.wait_for_message(timeout=5)
        assert loop.time() - started >= 0.3
    finally:
        emu.slow_attachments(0)


async def test_no_response_within_window(emu: FakeDiscord, bot: DemoBot, ada) -> None:
    await emu.invoke(ada, "misbehave", {"case": "silent"})
    await emu.wait_for(lambda e: e["type"] == "violation", timeout=ACK_TIMEOUT + 2)
    assert [v.kind for v in emu.take_violations()] == ["no_initial_response"]


async def test_late_response_is_unknown_interaction(emu: FakeDiscord, bot: DemoBot, ada) -> None:
    await emu.invoke(ada, "misbehave", {"case": "late"})
    await emu.wait_until(lambda: bot.errors, ACK_TIMEOUT + 3, "no error")
    assert bot.errors.pop().code == 10062
    assert [v.kind for v in emu.take_violations()] == ["no_initial_response"]


@pytest.mark.parametrize(
    ("case", "kind", "code"),
    [
        ("twice", "already_acknowledged", 40060),
        ("long_content", "content_too_long", 50035),
        ("long_custom_id", "custom_id_too_long", 50035),
        ("big_file", "file_too_large", 40005),
    ],
)
async def test_bot_side_rules(emu: FakeDiscord, bot: DemoBot, ada, case: str, kind: str, code: int) -> None:
    await emu.invoke(ada, "misbehave", {"case": case})
    await emu.wait_until(lambda: bot.errors, 5, f"{case}: the bot got no error")
    assert bot.errors.pop().code == code
    # A refused initial response is no response: its ack timer fires too (taken here, not in a later test).
    expected = [kind] if case == "twice" else [kind, "no_initial_response"]
    await emu.wait_until(lambda: len(emu.violations) >= len(expected), ACK_TIMEOUT + 2, "the ack timer")
    assert [v.kind for v in emu.take_violations()] == expected


async def test_expired_token(emu: FakeDiscord, bot: DemoBot, ada) -> None:
    inter = await emu.invoke(ada, "misbehave", {"case": "expired"})
    await inter.wait_acked(5)
    emu.age_interaction(inter, minutes=16)
    bot.release.set()
    await emu.wait_until(lambda: bot.errors, 5, "no error")
    assert bot.errors.pop().code == 50027
    assert [v.kind for v in emu.take_violations()] == ["token_expired"]


def _rows(rows: int, per_row: int) -> list[dict[str, Any]]:
    return [
        {"type": 1, "components": [{"type": 2, "style": 1, "custom_id": f"{r}:{i}"} for i in range(per_row)]}
        for r in range(rows)
    ]


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"components": _rows(6, 1)}, "too_many_action_rows"),
        ({"components": _rows(1, 6)}, "too_many_buttons"),
        ({"embeds": [{"title": "e"}] * 11}, "too_many_embeds"),
        ({"embeds": [{"fields": [{"name": "n", "value": "v"}] * 26}]}, "too_many_fields"),
        ({"content": "x" * 2001}, "content_too_long"),
        ({"components": [{"type": 1, "components": [{"type": 3, "custom_id": "s", "options": [
            {"label": str(i), "value": str(i)} for i in range(26)]}]}]}, "select_options"),
        ({"components": [{"type": 1, "components": [{"type": 3, "custom_id": "s", "max_values": 3, "options": [
            {"label": "a", "value": "a"}, {"label": "b", "value": "b"}]}]}]}, "select_values_range"),
        ({"components": [{"type": 1, "components": [{"type": 3, "custom_id": "s", "options": [
            {"label": "a", "value": "a", "default": True}, {"label": "b", "value": "b", "default": True}]}]}]},
         "select_too_many_defaults"),
        ({"embeds": [{"title": 5}]}, "schema"),
        ({}, "empty_message"),
    ],
)
async def test_channel_message_rules(emu: FakeDiscord, body: dict[str, Any], kind: str) -> None:
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bot {emu.token}"}) as http,
        http.post(f"{emu.api_base}/channels/{emu.channel_id}/messages", json=body) as resp,
    ):
        data = await resp.json()
    assert resp.status == 400 and data["code"] in (50035, 50006) and data["message"]
    assert [v.kind for v in emu.take_violations()] == [kind]


async def count_pictures(interaction: discord.Interaction, message: discord.Message) -> None:
    """A message command: answers privately with what it was run on."""
    await interaction.response.send_message(
        f"{message.id} by {message.author.id}: {len(message.attachments)} attachment(s)", ephemeral=True)


async def test_message_commands_carry_their_target_message(emu: FakeDiscord, bot: DemoBot, ada) -> None:
    assert emu.commands["Count pictures"]["type"] == 3 and not emu.commands["Count pictures"].get("description")
    posted = emu.post(ada, "two pictures", attachments=[("a.png", b"\x89PNG a"), ("b.png", b"\x89PNG b")])
    assert posted in emu.channel_messages() and posted.author is ada
    inter = await emu.invoke_message_command(ada, "Count pictures", posted)
    reply = await inter.wait_for_message(timeout=5)
    assert reply.ephemeral and reply.content == f"{posted.id} by {ada.id}: 2 attachment(s)"
    assert inter.payload["data"]["target_id"] == str(posted.id)
    with pytest.raises(ValueError, match="not a message command"):
        await emu.invoke_message_command(ada, "draw", posted)
    with pytest.raises(ValueError, match="not a slash command"):
        await emu.invoke(ada, "Count pictures")
    emu.delete_message(posted)
    with pytest.raises(ValueError, match="was deleted"):
        await emu.invoke_message_command(ada, "Count pictures", posted)
    emu.assert_no_violations()


def _command(**changes: Any) -> dict[str, Any]:
    option = {"type": 3, "name": "prompt", "description": "What to draw"}
    return {"name": "paint", "description": "Paint something", "options": [option], **changes}


@pytest.mark.parametrize(
    ("command", "kind"),
    [
        (_command(name="Paint"), "command_name_invalid"),
        ({"type": 3, "name": "Describe image", "description": "Describe it"}, "description_invalid"),
        ({"type": 3, "name": "A message command with a name over 32"}, "command_name_invalid"),
        (_command(name_localizations={"it": "dipingi qualcosa"}), "localization_invalid"),
        (_command(description_localizations={"it": "d" * 101}), "localization_invalid"),
        (_command(description_localizations={"it-IT": "Dipingi"}), "localization_locale_invalid"),
        (_command(description=""), "description_invalid"),
        (_command(options=[{"type": 3, "name": "prompt", "description": "x",
                            "description_localizations": {"it": ""}}]), "localization_invalid"),
        (_command(options=[{"type": 3, "name": "aspect", "description": "Shape",
                            "choices": [{"name": "Wide", "value": "wide", "name_localizations": {"xx": "Largo"}}]}]),
         "localization_locale_invalid"),
    ],
    ids=["uppercase-name", "menu-with-description", "long-menu-name",
         "name-with-space", "long-description", "unknown-locale", "empty-description",
         "empty-option-description", "choice-locale"],
)
async def test_command_sync_follows_discords_naming_and_localization_rules(emu: FakeDiscord, bot: DemoBot,
                                                                           command: dict[str, Any],
                                                                           kind: str) -> None:
    before = dict(emu.commands)
    url = f"{emu.api_base}/applications/{emu.application_id}/commands"
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bot {emu.token}"}) as http,
        http.put(url, json=[command]) as resp,
    ):
        data = await resp.json()
    assert resp.status == 400 and data["code"] == 50035
    assert [v.kind for v in emu.take_violations()] == [kind]
    assert emu.commands == before  # a refused sync changes nothing


async def test_wrong_content_type_and_message_routes(emu: FakeDiscord) -> None:
    url = f"{emu.api_base}/channels/{emu.channel_id}/messages"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bot {emu.token}"}) as http:
        async with http.post(url, data=b'{"content": "hi"}', headers={"Content-Type": "text/plain"}) as resp:
            assert resp.status == 400
        assert [v.kind for v in emu.take_violations()] == ["content_type"]
        async with http.post(url, json={"content": "hello"}) as resp:
            created = await resp.json()
        async with http.patch(f"{url}/{created['id']}", json={"content": "edited"}) as resp:
            assert (await resp.json())["edited_timestamp"]
        message = emu.message(created["id"])
        assert message.content == "edited" and message.history[0]["content"] == "hello"
        async with http.delete(f"{url}/{created['id']}") as resp:
            assert resp.status == 204
        async with http.get(f"{url}/{created['id']}") as resp:
            assert resp.status == 404 and (await resp.json())["code"] == 10008
    assert message.deleted and message not in emu.channel_messages()


async def test_event_feed(emu: FakeDiscord, bot: DemoBot, ada) -> None:
    feed = emu.subscribe()
    try:
        inter = await emu.invoke(ada, "draw", {"prompt": "feed"})
        await inter.wait_for_message(timeout=5)
        kinds = []
        while not feed.empty():
            kinds.append(feed.get_nowait()["type"])
        # the defer creates the "thinking" message, then the followup fills it in
        assert kinds[:4] == ["interaction_create", "message_create", "interaction_ack", "message_update"]
    finally:
        emu.unsubscribe(feed)


async def test_message_handles(emu: FakeDiscord, bot: DemoBot, ada) -> None:
    inter: Interaction = await emu.invoke(ada, "draw", {"prompt": "handles"})
    message: Message = await inter.wait_for_message(lambda m: bool(m.attachments), timeout=5)
    assert message.to_dict()["interaction_metadata"]["user"]["id"] == str(ada.id)
    assert inter.payload["attachment_size_limit"] == SIZE_LIMIT and inter.payload["member"]["roles"]


async def test_an_applied_request_whose_answer_is_lost(emu: FakeDiscord, bot: DemoBot) -> None:
    """lose_answer_next: the channel post is made, then the answer is a 500 (discord.py retries, and the nonce makes
    Discord return the first post) or no answer at all (the connection closes)."""
    channel = bot.get_partial_messageable(emu.channel_id)
    fault = emu.lose_answer_next(f"POST /channels/{emu.channel_id}/messages", status=500,
                                 when=lambda message: message["content"] == "once, with a nonce")
    sent = await channel.send("once, with a nonce", nonce="nonce-1")
    assert fault.served == 1
    assert [m.id for m in emu.channel_messages(emu.channel_id) if m.content == "once, with a nonce"] == [sent.id]

    dropped = emu.lose_answer_next(f"POST /channels/{emu.channel_id}/messages")
    with pytest.raises(aiohttp.ClientConnectionError):
        await channel.send("made, never answered")
    assert dropped.served == 1
    assert [m.content for m in emu.channel_messages(emu.channel_id)][-1] == "made, never answered"


async def test_components_v2_gallery_resolves_its_attachments_and_keeps_the_flag(emu: FakeDiscord,
                                                                                  bot: DemoBot) -> None:
    """A LayoutView from discord.py: the flag is set, attachment:// media become the files' own URLs, an edit keeps
    the message v2, and content on it is refused like Discord refuses it."""
    channel = bot.get_partial_messageable(emu.channel_id)
    layout = discord.ui.LayoutView()
    layout.add_item(discord.ui.Container(
        discord.ui.TextDisplay("two pictures"),
        discord.ui.MediaGallery(discord.MediaGalleryItem("attachment://a.png"),
                                discord.MediaGalleryItem("attachment://b.png")),
    ))
    layout.add_item(discord.ui.ActionRow(Bump(1)))
    sent = await channel.send(view=layout, files=[discord.File(io.BytesIO(png()), "a.png"),
                                                  discord.File(io.BytesIO(png(color="blue")), "b.png")])
    message = emu.message(sent.id)
    assert message.flags & (1 << 15) and not message.content
    [gallery] = [c for c in message.components[0]["components"] if c["type"] == 12]
    urls = [item["media"]["url"] for item in gallery["items"]]
    assert urls == [a.url for a in message.attachments] and emu.file_bytes(urls[1]) == png(color="blue")
    assert [b["custom_id"] for b in message.buttons()] == ["bump:1"]
    with pytest.raises(discord.HTTPException):
        await sent.edit(content="words on a v2 message")
    assert [v.kind for v in emu.take_violations()] == ["components_v2_content"]


async def test_places_the_bot_is_not_in(emu: FakeDiscord, bot: DemoBot, ada) -> None:
    """A user install reaches another server and group DMs, where the bot can't use channel routes; its DM works."""
    with pytest.raises(ValueError, match="not offered"):  # the demo bot's /draw is for guild installs only
        await emu.invoke(ada, "draw", {"prompt": "x"}, channel_id=emu.foreign_channel_id)
    with pytest.raises(discord.Forbidden):
        await bot.get_partial_messageable(emu.foreign_channel_id).send("hello from nowhere")
    group = emu.add_group_dm(ada, emu.add_user("bo"))
    with pytest.raises(discord.Forbidden):
        await bot.get_partial_messageable(group.id).send("hello, group")
    assert [v.kind for v in emu.take_violations()] == ["not_a_member", "not_a_member"]
    dm = emu.open_dm(ada)  # ada writes to the bot first: the DM exists without the bot opening it
    assert dm is emu.open_dm(ada) is emu.dm_channel(ada) and dm.to_dict()["recipients"][0]["id"] == str(ada.id)
    sent = await bot.get_partial_messageable(dm.id).send("hello, ada")
    assert emu.message(sent.id).guild_id is None and emu.channel_messages(dm.id)[0].content == "hello, ada"
async def test_direct_messages(emu: FakeDiscord, bot: DemoBot) -> None:
    """The bot opens a DM channel (POST /users/@me/channels), posts and reads there; a click inside the DM comes
    without a guild; a person with DMs closed refuses the post with 403/50007, and the emulator records it."""
    grace = emu.add_user("grace")
    dm = await bot.create_dm(discord.Object(grace.id))
    assert emu.dm_channel(grace) is not None and emu.dm_channel(grace).id == dm.id
    again = await bot.http.start_private_message(grace.id)
    assert int(again["id"]) == dm.id  # the same channel every time
    sent = await dm.send("just for you", view=discord.ui.View(timeout=None).add_item(Bump(1)))
    assert (await dm.fetch_message(sent.id)).content == "just for you"
    [message] = emu.dm_messages(grace)
    assert message.guild_id is None and "guild_id" not in message.to_dict()

    click = await emu.click(grace, message, "bump:1")
    await click.wait_acked(2)
    assert "guild_id" not in click.payload and "member" not in click.payload
    assert click.payload["user"]["id"] == str(grace.id) and click.payload["context"] == 1
    assert message.content == "bumped to 2"

    emu.close_dms(grace)
    with pytest.raises(discord.Forbidden) as refused:
        await dm.send("not delivered")
    assert refused.value.code == 50007 and emu.refused_dms == [grace.id]
    emu.close_dms(grace, closed=False)
    await dm.send("open again")
    assert [m.content for m in emu.dm_messages(grace)] == ["bumped to 2", "open again"]


async def test_threads_and_forum_posts(emu: FakeDiscord, bot: DemoBot, ada) -> None:
    """People open threads under a text channel (public or private), an announcement channel and in a forum (a post
    with its first message). THREAD_CREATE tells the bot of those it may see; an interaction in any of them carries
    the thread as its channel, with its type and parent_id, so the bot sees a Thread of that parent even where it
    was never told of the thread (a private one nobody added it to, whose channel routes it can't use)."""
    seen: dict[int, discord.Interaction] = {}

    async def on_interaction(interaction: discord.Interaction) -> None:
        seen[interaction.id] = interaction

    bot.add_listener(on_interaction)
    try:
        general = emu.channels[emu.channel_id]
        forum = await emu.create_channel("ideas", type=GUILD_FORUM, nsfw=True)
        news = await emu.create_channel("news", type=GUILD_ANNOUNCEMENT)
        public = await emu.create_thread(ada, general, "chat")
        private = await emu.create_thread(ada, general, "secret", private=True)
        post = await emu.create_thread(ada, forum, "my idea", content="what do you think?")
        announced = await emu.create_thread(ada, news, "launch")
        assert [t.type for t in (public, private, post, announced)] == [11, 12, 11, 10]
        assert [m.content for m in emu.channel_messages(post.id)] == ["what do you think?"]
        for bad in (lambda: emu.create_thread(ada, forum, "hidden", private=True),
                    lambda: emu.create_thread(ada, public, "a thread in a thread")):
            with pytest.raises(ValueError):
                await bad()

        await emu.wait_until(lambda: all(bot.get_channel(t.id) for t in (public, post, announced)), 5,
                             "THREAD_CREATE not processed")
        assert bot.get_channel(private.id) is None  # the bot may not see a private thread nobody added it to
        known_post = bot.get_channel(post.id)
        assert isinstance(known_post, discord.Thread) and isinstance(known_post.parent, discord.ForumChannel)
        assert known_post.is_nsfw()  # a thread is its parent's: Discord's thread JSON has no nsfw of its own

        for thread in (public, private, post, announced):
            inter = await emu.invoke(ada, "draw", {"prompt": "in a thread"}, channel_id=thread.id)
            await inter.wait_for_message(timeout=5)
            assert inter.payload["channel"]["type"] == thread.type
            assert inter.payload["channel"]["parent_id"] == str(thread.parent_id)
            channel = seen[inter.id].channel
            assert isinstance(channel, discord.Thread) and channel.parent_id == thread.parent_id, channel
            assert channel.parent is not None and channel.parent.id == thread.parent_id

        sent = await bot.get_partial_messageable(public.id).send("hello, thread")
        assert emu.message(sent.id).channel_id == public.id
        with pytest.raises(discord.Forbidden):
            await bot.get_partial_messageable(private.id).send("hello, secret")
        assert [v.kind for v in emu.take_violations()] == ["not_a_member"]
        listed = {int(c.id) for c in await bot.get_guild(emu.guild_id).fetch_channels()}
        assert forum.id in listed and not listed & {public.id, private.id, post.id, announced.id}
    finally:
        bot.remove_listener(on_interaction)
