"""The playground: `python -m bot playground` (emulator + the real bot process + the page) in a real browser, driven
by headless Chromium through Playwright like a person would use it, and through its API when the bot cannot start."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import shutil
import signal
import sys
from pathlib import Path

import pytest
import yaml
from aiohttp import ClientSession, FormData, WSServerHandshakeError
from PIL import Image, ImageStat

from tests.harness import REPO, TEST_STYLES

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "artifacts"
README_IMAGES = REPO / "docs" / "images"
SCREENSHOTS = README_IMAGES if os.environ.get("IMAGEBOT_SCREENSHOTS") == "1" else ARTIFACTS / "screenshots"
"""The README's pictures, taken by these tests from a real session: into docs/images/ with IMAGEBOT_SCREENSHOTS=1
(``make screenshots``), else into artifacts/ so that a test run leaves the working tree as it was."""


async def save_screenshot(target, name: str) -> None:
    """Save ``target`` (a page or a locator) as ``NAME.png`` and check the picture shows something."""
    path = SCREENSHOTS / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    await target.screenshot(path=str(path), animations="disabled")
    with Image.open(path) as image:
        spread = ImageStat.Stat(image.convert("L")).stddev[0]
        assert image.width >= 200 and image.height >= 60 and spread > 8, f"{path}: blank ({image.size}, {spread})"


class Playground:
    """`python -m bot playground --port 0` as a child process on ``config`` (written to ``directory/bot.yaml``);
    `url` once it has printed it."""

    def __init__(self, config: dict, directory: Path) -> None:
        self.config = config
        self.config_path = directory / "bot.yaml"
        self.write_config()
        self.process: asyncio.subprocess.Process | None = None
        self.output: list[str] = []
        self.url = ""
        self._reader: asyncio.Task[None] | None = None

    def write_config(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.config), encoding="utf-8")

    async def start(self, timeout: float = 30) -> str:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        env.pop("DISCORD_TOKEN", None)
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "playground", "--config", str(self.config_path), "--port", "0",
            cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())
        async with asyncio.timeout(timeout):
            while not self.url:
                if self.process.returncode is not None:
                    raise RuntimeError("the playground exited:\n" + "\n".join(self.output))
                await asyncio.sleep(0.05)
        return self.url

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.output.append(line)
            found = re.search(r"http://\S+/", line)
            if found and not self.url:
                self.url = found.group(0)

    async def stop(self, timeout: float = 40) -> int:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)  # what Ctrl-C does
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        finally:
            if self.process.returncode is None:
                self.process.kill()
            if self._reader is not None:
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(self._reader, 5)


def png_bytes(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), colour).save(buffer, format="PNG")
    return buffer.getvalue()


async def state(session: ClientSession, url: str) -> dict:
    async with session.get(f"{url}api/state") as response:
        return await response.json()


async def wait_state(session: ClientSession, url: str, condition, timeout: float = 60) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            data = await state(session, url)
            if condition(data):
                return data
            await asyncio.sleep(0.2)


async def wait_online(session: ClientSession, url: str, timeout: float = 60, *, other_than: int | None = None) -> dict:
    return await wait_state(
        session, url, lambda s: s["status"] == "online" and s["bot_pid"] and s["bot_pid"] != other_than, timeout
    )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.timeout(180)  # ~40 s on an idle 2-core machine
async def test_playground_in_a_browser(tiny_model_dir, tmp_path):
    if not HAVE_CHROMIUM:
        pytest.skip(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
    from playwright.async_api import async_playwright, expect

    config = {
        # Enough steps that the generation lasts past the bot's 1 s edit interval, so progress is shown.
        "model": {"id": str(tiny_model_dir), "steps": 12, "warmup": False, "max_batch": 4, "preview_every": 2,
                  "ip_adapter": {"id": "tiny"}},
        "storage": {"dir": str(tmp_path / "data")},
        "queue": {"rate_per_minute": 600, "burst": 50, "max_pending_per_user": 50, "max_queue": 500},
        "describe": {"model": "tiny-blip"},  # built under storage.dir, as an operator trying it offline would
        "styles": TEST_STYLES,
    }
    playground = Playground(config, tmp_path)
    url = await playground.start()
    try:
        async with ClientSession() as session, async_playwright() as p:
            first = await wait_online(session, url)
            assert (tmp_path / "data" / "playground" / "bot.yaml").exists()  # its own storage under storage.dir
            browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            ada_context = await browser.new_context(viewport={"width": 1400, "height": 1300})
            await ada_context.add_init_script("localStorage.setItem('playground.name', 'ada')")
            page = await ada_context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(url)
            await expect(page.locator("#status")).to_have_text("bot online")
            await expect(page.locator("#name")).to_have_value("ada")

            # /imagine with a style picked from the bot's own autocomplete
            await page.fill("#prompt", "a lighthouse at dusk")
            await page.click("#style")
            await page.keyboard.type("wat")
            choice = page.locator(".ac-item", has_text="watercolor")
            await expect(choice).to_be_visible()
            await expect(page.locator(".ac-item")).to_have_count(1)
            await choice.click()
            await expect(page.locator("#style")).to_have_value("watercolor")
            await page.select_option("#count", "4")
            await page.click("#send")
            # every animation frame, so the picture catches the live progress however short it is under load
            await page.wait_for_function(
                "() => [...document.querySelectorAll('article.msg .content')].some(e => e.textContent.includes("
                "'Generating'))", polling="raf", timeout=40_000)
            await save_screenshot(page.locator("#messages"), "imagine-progress")

            grid = page.locator("article.msg", has=page.locator("button[data-custom-id^='ib:v:']")).first
            await expect(grid).to_be_visible(timeout=40_000)
            await expect(grid.locator(".reply")).to_contain_text("ada used /imagine")
            await expect(grid.locator(".content")).to_contain_text("a lighthouse at dusk")
            await expect(grid.locator(".embed-field-name", has_text="Seeds")).to_be_visible()
            await expect(grid.locator("img.attachment-image")).to_have_count(1)
            assert await grid.locator("img.attachment-image").evaluate("img => img.complete && img.naturalWidth > 0")
            labels = await grid.locator("button.button").evaluate_all("bs => bs.map(b => b.textContent.trim())")
            assert labels[:8] == ["U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4"]
            seen = await page.evaluate("window.playgroundSeen")
            grid_id = await grid.get_attribute("data-id")
            states = [s for s in seen if s["id"] == grid_id]
            assert any("Generating" in s["content"] and "preview.jpg" in s["attachments"] for s in states), states
            assert states[-1]["kind"] == "update"  # the queued message was edited in place into the result
            await save_screenshot(grid, "imagine-grid")

            # V1: a variation of the first image, as a new message
            await grid.locator("button", has_text="V1").click()
            variation = page.locator("article.msg", has_text="Variation of").filter(
                has=page.locator("button[data-custom-id^='ib:v:']")
            )
            await expect(variation).to_have_count(1, timeout=40_000)
            await expect(variation.locator("img.attachment-image")).to_have_count(1)

            # the brush mask editor: paint over part of the grid, say what to paint, and it is an /edit of it
            await grid.locator(".attachment-frame").hover()
            await grid.locator("button.edit-picture").click()
            editor = page.locator("#mask-editor")
            await expect(editor).to_be_visible()
            box = await editor.locator("canvas.editor-mask").bounding_box()
            assert box is not None
            await page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.3)
            await page.mouse.down()
            await page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.4, steps=5)
            await page.mouse.up()
            painted = await editor.locator("canvas.editor-mask").evaluate(
                "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                " let n = 0; for (let i = 0; i < d.length; i += 4) n += d[i] > 127; return n / (d.length / 4); }")
            assert 0 < painted < 0.5, painted
            await editor.locator("button.editor-submit").click()
            await expect(editor.locator(".editor-error")).to_have_text("Type what to paint first.")
            await editor.locator("input.editor-prompt").fill("a kite")
            await editor.locator("button.editor-submit").click()
            await expect(editor).to_have_count(0)
            edited = page.locator("article.msg", has=page.locator(".reply", has_text="ada used /edit")).filter(
                has=page.locator("button[data-custom-id^='ib:v:']"))
            await expect(edited).to_have_count(1, timeout=40_000)
            await expect(edited.locator("img.attachment-image")).to_have_count(1)

            # a corrupt upload: the error is ephemeral, shown only to ada
            await page.fill("#prompt", "restyle this")
            await page.set_input_files(
                "#image", {"name": "broken.png", "mimeType": "image/png", "buffer": b"\x89PNG\r\n\x1a\nnot really"}
            )
            await expect(page.locator("#image-name")).to_have_text("broken.png")
            await page.click("#send")
            error = page.locator("article.msg.ephemeral", has_text="Only you can see this").last
            await expect(error).to_be_visible(timeout=20_000)
            error_text = await error.locator(".content").inner_text()
            assert "image" in error_text.lower(), error_text

            # /styles from the shortcut: an ephemeral embed with one field per style
            await page.click("button[data-command=styles]")
            styles = page.locator("article.msg.ephemeral", has=page.locator(".embed-title", has_text="Styles"))
            await expect(styles.locator(".embed-field")).to_have_count(3)  # the age-restricted style is left out

            # any command from the command line: the words before the first "name:" are the command
            parsed = await page.evaluate(
                "import('/static/composer.js').then(m => m.parseCommandLine('/settings me private:true count:2'))")
            assert parsed == {"command": "settings me", "options": {"private": "true", "count": "2"}}
            await page.fill("#command-line", "/history")
            await page.press("#command-line", "Enter")
            history = page.locator("article.msg.ephemeral", has_text="Your jobs")
            await expect(history.locator("button", has_text="Next")).to_be_visible(timeout=20_000)
            # /blend: the command chip switches the composer, one file field takes several pictures
            await page.click("#command")
            await expect(page.locator("#command")).to_have_text("/blend")
            await expect(page.locator("#style")).to_be_hidden()
            await page.set_input_files("#images", [
                {"name": name, "mimeType": "image/png", "buffer": png_bytes(colour)}
                for name, colour in (("red.png", (200, 20, 20)), ("blue.png", (20, 20, 200)))])
            await expect(page.locator("#images + .file-name")).to_have_text("red.png, blue.png")
            await page.fill("#weights", "1,3")
            await page.click("#send")
            blended = page.locator("article.msg", has_text="Blend of").filter(
                has=page.locator("button[data-custom-id^='ib:v:']"))
            await expect(blended).to_have_count(1, timeout=40_000)
            await expect(blended.locator(".reply")).to_contain_text("ada used /blend")
            await page.click("#command")  # back to /imagine
            # /describe the picture in the image chip: four suggestions, each with its Imagine button
            await page.set_input_files("#image", {"name": "sky.png", "mimeType": "image/png",
                                                  "buffer": png_bytes((30, 120, 200))})
            await page.click("#describe")
            described = page.locator("article.msg", has=page.locator("button[data-custom-id^='ib:t:']"))
            await expect(described).to_have_count(1, timeout=40_000)
            await expect(described.locator(".reply")).to_contain_text("ada used /describe")
            await expect(described.locator("button[data-custom-id^='ib:t:']")).to_have_count(4)
            await save_screenshot(described, "describe")
            await expect(page.locator("#image-name")).to_have_text("attach…")
            # the grid's Apps menu (on hover, as in Discord): "Describe image" describes the bot's own result
            await grid.hover()
            await grid.locator(".msg-app", has_text="Describe image").click()
            await expect(described).to_have_count(2, timeout=40_000)

            ARTIFACTS.mkdir(exist_ok=True)
            shot = tmp_path / "playground.png"
            await page.screenshot(path=str(shot))
            shutil.copy(shot, ARTIFACTS / "playground.png")

            # another tab, another person: public messages yes, ada's ephemeral ones no
            bob_context = await browser.new_context(viewport={"width": 1200, "height": 800})
            await bob_context.add_init_script("localStorage.setItem('playground.name', 'bob')")
            bob = await bob_context.new_page()
            await bob.goto(url)
            await expect(bob.locator("article.msg", has_text="Variation of")).to_have_count(1)
            await expect(bob.locator("article.msg.ephemeral")).to_have_count(0)
            await expect(bob.locator(".member-name", has_text="ada")).to_be_visible()

            # a browser in Italian: the bot answers gianna in Italian (the page sends navigator.language)
            gianna_context = await browser.new_context(viewport={"width": 1200, "height": 900}, locale="it-IT")
            await gianna_context.add_init_script("localStorage.setItem('playground.name', 'gianna')")
            gianna = await gianna_context.new_page()
            await gianna.goto(url)
            await gianna.fill("#prompt", "un faro al tramonto")
            await gianna.select_option("#count", "2")
            await gianna.click("#send")
            italian = gianna.locator("article.msg", has=gianna.locator(".reply", has_text="gianna used /imagine"))
            italian = italian.filter(has=gianna.locator("button[data-custom-id^='ib:v:']"))
            await expect(italian.locator(".embed-field-name", has_text="Passi")).to_be_visible(timeout=40_000)
            await save_screenshot(italian, "italian")
            await gianna_context.close()

            # the bot process dies: it is restarted, the page keeps its history and the buttons still work
            os.kill(first["bot_pid"], signal.SIGKILL)
            await expect(page.locator("#status")).not_to_have_text("bot online")
            second = await wait_online(session, url, other_than=first["bot_pid"])
            await expect(page.locator("#status")).to_have_text("bot online")
            assert second["bot_starts"] == 2
            await expect(page.locator("article.msg", has_text="Variation of")).to_have_count(1)
            await grid.locator("button", has_text="U2").click()
            upscale = page.locator("article.msg", has=page.locator(".reply", has_text="ada clicked a button")).filter(
                has=page.locator("img.attachment-image")
            )
            await expect(upscale).to_have_count(2, timeout=40_000)  # the variation and the single image
            # 🗑️ on the variation: deleted live, for everyone
            await variation.locator("button[data-custom-id^='ib:d:']").click()
            await expect(page.locator("article.msg", has_text="Variation of")).to_have_count(0, timeout=20_000)
            await expect(bob.locator("article.msg", has_text="Variation of")).to_have_count(0)

            # 🖌️ Remix: the bot's form opens over ada's page only, prefilled; submitting it makes the remix
            await grid.locator("button", has_text="Remix").click()
            form = page.locator("#modal-backdrop .modal")
            await expect(form.locator("h2")).to_have_text("Remix")
            await expect(bob.locator("#modal-backdrop")).to_have_count(0)
            prompt = form.locator("textarea.modal-input[data-custom-id=prompt]")
            await expect(prompt).to_have_value("a lighthouse at dusk")
            opened = await page.evaluate("window.playgroundModal.interactionId")
            for who, values, error in (("bob", {"prompt": "mine now"}, "That form is gone."),
                                       ("ada", {"colour": "red"}, "the modal has no input ['colour']")):
                status, body = await post_json(session, url, "api/modal",
                                               {"name": who, "interaction_id": opened, "values": values})
                assert status == 400 and error in body["error"], body
            await prompt.fill("a lighthouse at dawn")
            await form.locator("button", has_text="Submit").click()
            await expect(page.locator("#modal-backdrop")).to_have_count(0)
            remix = page.locator("article.msg", has_text="Remix of").filter(has=page.locator("img.attachment-image"))
            await expect(remix.locator(".content")).to_contain_text("a lighthouse at dawn", timeout=40_000)

            # Vary (Region): a private multi-select under the single image, then "Redo these parts"
            single = page.locator("article.msg", has=page.locator("button[data-custom-id^='ib:q:']")).first
            await single.locator("button", has_text="Vary (Region)").click()
            chooser = page.locator("article.msg.ephemeral", has=page.locator(".multi-select")).last
            await chooser.locator(".multi-select select").select_option(["1", "5"])
            await chooser.locator(".multi-select button", has_text="Choose").click()
            await expect(chooser).to_contain_text("Top left, Middle", timeout=10_000)
            await save_screenshot(single, "single-image")
            await save_screenshot(chooser, "vary-region")
            await chooser.locator("button", has_text="Redo these parts").click()
            region = page.locator("article.msg", has_text="Vary (region 1, 5)").filter(
                has=page.locator("img.attachment-image"))
            await expect(region).to_have_count(1, timeout=40_000)

            # the deferred "thinking" state (the bot's commands rarely use it, so render one directly)
            thinking = await page.evaluate(
                """async () => (await import("/static/chat.js")).renderMessage({id: "1",
                    author: {id: "2", username: "imagebot", bot: true}, content: "",
                    timestamp: new Date().toISOString(), flags: 128, attachments: [], embeds: [], components: [],
                    interaction_metadata: {name: "imagine", user: {id: "3", username: "ada"}}}).innerText"""
            )
            assert "imagebot is thinking" in thinking and "ada used /imagine" in thinking
            assert errors == []
            await browser.close()
    finally:
        code = await playground.stop()
        log = "\n".join(playground.output)
    assert code == 0, log
    assert not pid_alive(second["bot_pid"]), "Ctrl-C must stop the bot process too"


@pytest.mark.parametrize(("language", "locale"), [
    ("it-IT", "it"), ("it", "it"), ("pt-BR", "pt-BR"), ("en-GB", "en-GB"), ("de-AT", "de"), ("xx-YY", "en-US"),
    (None, "en-US"),
])
def test_the_pages_language_becomes_the_nearest_discord_locale(language, locale):
    from playground.server import discord_locale

    assert discord_locale(language) == locale


def test_playground_config_points_the_users_bot_at_the_emulator(tmp_path):
    from bot.config import parse_config
    from fakediscord import FakeDiscord
    from playground import playground_config

    user = parse_config(
        {
            "discord": {"token": "secret", "guild_ids": [1], "gateway_url": "wss://gateway.discord.gg",
                        "layout": "gallery"},
            "model": {"id": "tiny", "steps": 3},
            "storage": {"dir": str(tmp_path / "data"), "url": "postgresql://imagebot@db/imagebot"},
            "queue": {"rate_per_minute": 2, "burst": 1},
            "moderation": {"banned_terms": ["forbidden"]},
            "server": {"enabled": True},
            "styles": TEST_STYLES,
        },
        tmp_path / "bot.yaml",
    )
    emu = FakeDiscord()
    emu.port = 4321
    data = playground_config(user, emu)
    derived = parse_config(yaml.safe_load(yaml.safe_dump(data)), tmp_path / "derived.yaml")
    assert derived.discord.api_base == "http://127.0.0.1:4321/api/v10"
    assert derived.discord.token == "" and derived.discord.gateway_url is None
    assert derived.discord.guild_ids == [emu.guild_id]
    assert derived.discord.attachment_hosts == ["127.0.0.1"]
    assert derived.discord.layout == "gallery"  # the page shows results the way the user's bot would
    assert derived.storage.dir == tmp_path / "data" / "playground"
    assert derived.storage.url is None  # the playground's jobs stay in its own SQLite file, out of the bot's database
    assert not derived.server.enabled
    assert (derived.model, derived.queue, derived.moderation, derived.styles) == (
        user.model,
        user.queue,
        user.moderation,
        user.styles,
    )


async def post_json(session: ClientSession, url: str, path: str, body: dict) -> tuple[int, dict]:
    async with session.post(f"{url}{path}", json=body) as response:
        return response.status, await response.json()


def labels_of(message: dict) -> list[str]:
    return [c.get("label") or "" for row in message["components"] for c in row["components"]]


@pytest.mark.timeout(180)
async def test_settings_private_results_history_and_show_through_the_playground_api(tiny_model_dir, tmp_path):
    """/settings me, a private result delivered by direct message (shown to its recipient alone, its buttons working
    there), /history with its buttons and /show's refusals, through the page's API."""
    config = {
        "model": {"id": str(tiny_model_dir), "steps": 2, "warmup": False, "max_batch": 4},
        "storage": {"dir": str(tmp_path / "data")},
        "queue": {"rate_per_minute": 600, "burst": 50, "max_pending_per_user": 50, "max_queue": 500},
        "styles": TEST_STYLES,
    }
    playground = Playground(config, tmp_path)
    url = await playground.start()
    try:
        async with ClientSession() as session:
            await wait_online(session, url)

            async def ada_sees(condition) -> dict:
                """The first message in ada's view of the page that satisfies ``condition``, once there is one."""
                async with asyncio.timeout(60):
                    while True:
                        async with session.get(f"{url}api/state", params={"name": "ada"}) as response:
                            messages = (await response.json())["messages"]
                        found = next((m for m in messages if condition(m)), None)
                        if found is not None:
                            return found
                        await asyncio.sleep(0.2)

            status, _ = await post_json(session, url, "api/command", {
                "name": "ada", "command": "/settings me", "options": {"private": "true", "count": "1"}})
            assert status == 200
            assert "Private results: on" in (await ada_sees(lambda m: "Your settings" in m["content"]))["content"]

            # every command is checked against the bot's own definition before the bot sees it, as Discord's client
            # would: types, required options, choices, ranges, subcommands; the emulator's words for unknown options
            for command, options, error in (
                ("imagine", {"prompt": "a cat", "count": "9"}, "count must be from 1 to 4; you gave 9."),
                ("imagine", {"prompt": "a cat", "seed": "soon"}, "seed must be a whole number."),
                ("imagine", {"prompt": "a cat", "aspect": "round"}, "aspect must be one of: square, portrait,"),
                ("imagine", {"prompt": "  "}, "/imagine needs prompt: fill it in first."),
                ("imagine", {"prompt": "a cat", "image": "cat.png"}, "image takes a file"),
                ("imagine", {"prompt": "a cat", "colour": "red"}, "/imagine has no option 'colour'"),
                ("settings", {}, "/settings needs a subcommand; it has: me, channel"),
                ("settings me", {"private": "maybe"}, "private must be true or false."),
                ("paint", {}, "There is no /paint command."),
            ):
                status, body = await post_json(session, url, "api/command",
                                               {"name": "ada", "command": command, "options": options})
                assert status == 400 and error in body["error"], (command, options, body)

            form = FormData(default_to_multipart=True)  # as the page sends it
            form.add_field("name", "ada")
            form.add_field("command", "imagine")
            form.add_field("prompt", "a paper boat")
            async with session.post(f"{url}api/command", data=form, headers={"X-Imagebot": "1"}) as response:
                assert response.status == 200
            result = await ada_sees(lambda m: m.get("dm") and "V1" in labels_of(m))
            assert "a paper boat" in result["content"] and result["attachments"]
            async with session.get(f"{url}api/state", params={"name": "bob"}) as response:
                assert not [m for m in (await response.json())["messages"] if m.get("dm")]  # ada's alone
            v1 = next(c["custom_id"] for row in result["components"] for c in row["components"] if c["label"] == "V1")
            status, body = await post_json(session, url, "api/click",
                                           {"name": "bob", "message_id": result["id"], "custom_id": v1})
            assert status == 400 and body["error"] == "That message is gone."
            status, _ = await post_json(session, url, "api/click",
                                        {"name": "ada", "message_id": result["id"], "custom_id": v1})
            assert status == 200
            await ada_sees(lambda m: m.get("dm") and "Variation of" in m["content"] and m["attachments"])

            await post_json(session, url, "api/command", {"name": "ada", "command": "history"})
            history = await ada_sees(lambda m: "Your jobs" in m["content"])
            assert "page 1 of 1 (2 in all)" in history["content"] and labels_of(history)[:2] == ["1", "2"]
            show = next(c["custom_id"] for row in history["components"] for c in row["components"] if c["label"] == "2")
            await post_json(session, url, "api/click", {"name": "ada", "message_id": history["id"], "custom_id": show})
            shown = await ada_sees(lambda m: m["interaction_id"] and "a paper boat" in m["content"]
                                   and not m.get("dm") and m["attachments"])
            assert shown["flags"] & 64  # a private job is shown privately

            await post_json(session, url, "api/command", {"name": "ada", "command": "show",
                                                          "options": {"job": "nonsense"}})
            assert (await ada_sees(lambda m: "That isn't a job id" in m["content"]))["flags"] & 64
    finally:
        code = await playground.stop()
    assert code == 0, "\n".join(playground.output)


def gallery_items(message: dict) -> list[dict]:
    def walk(components: list[dict]) -> list[dict]:
        return [c for component in components for c in (component, *walk(component.get("components") or []))]

    return [item for c in walk(message["components"]) if c["type"] == 12 for item in c["items"]]


@pytest.mark.timeout(180)  # ~30 s on an idle 2-core machine
async def test_the_playground_shows_the_gallery_layout_when_configured(tiny_model_dir, tmp_path):
    """discord.layout: gallery — the state API carries the components v2 result with its media at this server's own
    URLs, and the page shows the gallery: four images that load, no loose attachments, the recipe, the buttons."""
    config = {
        "discord": {"layout": "gallery"},
        "model": {"id": str(tiny_model_dir), "steps": 2, "warmup": False, "max_batch": 4},
        "storage": {"dir": str(tmp_path / "data")},
        "styles": TEST_STYLES,
    }
    playground = Playground(config, tmp_path)
    url = await playground.start()
    try:
        async with ClientSession() as session:
            await wait_online(session, url)
            options = {"prompt": "a lighthouse in a gallery", "count": 4}
            async with session.post(f"{url}api/command", json={"name": "ada", "command": "imagine",
                                                               "options": options}) as response:
                assert response.status == 200, await response.text()
            done = await wait_state(session, url, lambda s: any(gallery_items(m) for m in s["messages"]))
            [result] = [m for m in done["messages"] if gallery_items(m)]
            assert result["flags"] & (1 << 15) and not result["content"] and not result["embeds"]
            items = gallery_items(result)
            assert len(items) == 4 and all(item["media"]["url"].startswith("/attachments/") for item in items)
            async with session.get(f"{url}{items[0]['media']['url'].lstrip('/')}") as response:
                assert response.status == 200 and response.content_type == "image/png"
            if not HAVE_CHROMIUM:
                return
            from playwright.async_api import async_playwright, expect

            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                page = await browser.new_page(viewport={"width": 1200, "height": 1000})
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                await page.goto(url)
                message = page.locator(f"article.msg[data-id='{result['id']}']")
                images = message.locator(".media-gallery img")
                await expect(images).to_have_count(4)
                for number in range(4):
                    assert await images.nth(number).evaluate("img => img.complete && img.naturalWidth > 0")
                await expect(message.locator(".attachments")).to_have_count(0)  # files show only in the gallery
                await expect(message.locator(".container")).to_contain_text("a lighthouse in a gallery")
                await expect(message.locator(".container")).to_contain_text("Seeds")
                labels = await message.locator("button.button").evaluate_all("bs => bs.map(b => b.textContent.trim())")
                assert labels[:8] == ["U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4"]
                ARTIFACTS.mkdir(exist_ok=True)
                await page.screenshot(path=str(ARTIFACTS / "playground-gallery.png"))
                await save_screenshot(message, "gallery")
                assert errors == []
                await browser.close()
    finally:
        code = await playground.stop()
    assert code == 0, "\n".join(playground.output)


def unloadable_model_config(tmp_path: Path) -> dict:
    """A config whose model cannot load, so the bot stops at once and the page's server runs without it."""
    return {
        "model": {"id": str(tmp_path / "no-such-model"), "warmup": False},
        "storage": {"dir": str(tmp_path / "data")},
        "styles": TEST_STYLES,
    }


async def press_retry_on_the_page(url: str) -> None:
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = await browser.new_page()
        await page.goto(url)
        await expect(page.locator("#status")).to_have_text("bot stopped")
        banner = page.locator("#banner")
        await expect(banner).to_contain_text("The bot could not start: Cannot load model")
        await expect(banner).to_contain_text("model.id: tiny")
        await page.click("#retry")
        await expect(page.locator("#status")).to_have_text("bot starting…")
        await expect(page.locator("#retry")).to_be_enabled(timeout=60_000)  # failed again: a fresh banner
        await browser.close()


@pytest.mark.timeout(180)  # ~40 s on an idle 2-core machine: four bot starts
async def test_a_bot_that_cannot_start_waits_for_a_fix(tiny_model_dir, tmp_path):
    """A model that cannot load: the error and its fix on the page and in the terminal, once; no restarts until
    Retry is pressed or the config file is saved. A bot that dies after it had connected is still restarted."""
    playground = Playground(unloadable_model_config(tmp_path), tmp_path)
    url = await playground.start()
    try:
        async with ClientSession() as session:
            failed = await wait_state(session, url, lambda s: s["status"] == "failed")
            assert failed["bot_starts"] == 1 and failed["bot_pid"] is None
            assert failed["failure"]["message"].startswith("Cannot load model"), failed["failure"]
            assert "model.id: tiny" in failed["failure"]["fix"]
            assert str(playground.config_path) in failed["failure"]["fix"]
            async with session.post(f"{url}api/command", json={"name": "ada", "command": "help"}) as response:
                assert response.status == 503 and "model.id: tiny" in (await response.json())["error"]
            await asyncio.sleep(3.5)  # the old crash loop restarted it after 1 s, then 2 s
            assert (await state(session, url))["bot_starts"] == 1

            # Retry (the page's button, or its endpoint): one more start, which fails the same way and stops again
            if HAVE_CHROMIUM:
                await press_retry_on_the_page(url)
            else:
                async with session.post(f"{url}api/retry", json={}) as response:
                    assert response.status == 200, await response.text()
            again = await wait_state(session, url, lambda s: s["bot_starts"] == 2 and s["status"] == "failed")
            assert again["failure"]["message"] == failed["failure"]["message"]

            # saving the config file with a model that loads starts it again
            playground.config["model"]["id"] = str(tiny_model_dir)
            playground.write_config()
            online = await wait_online(session, url)
            assert online["bot_starts"] == 3 and online["failure"] is None
            async with session.post(f"{url}api/retry", json={}) as response:
                assert response.status == 409  # nothing to retry

            # a bot that had connected and then dies is a crash, not a start-up error: restarted at once
            os.kill(online["bot_pid"], signal.SIGKILL)
            restarted = await wait_online(session, url, other_than=online["bot_pid"])
            assert restarted["bot_starts"] == 4
    finally:
        code = await playground.stop()
    output = "\n".join(playground.output)
    assert code == 0, output
    assert output.count("playground: the bot could not start: Cannot load model") == 2, output  # once per start
    assert "starting the bot again" in output and "restarting it in 1 s" in output, output


@pytest.mark.timeout(180)
async def test_the_brush_editors_picture_and_mask_go_to_edit(tiny_model_dir, tmp_path):
    """What the page's brush editor sends (the picture and the painted mask, white = repaint) becomes an /edit with
    both attachments; the result keeps the unpainted part of the picture and records the edit in its recipe."""
    import io
    import json

    import numpy as np
    from PIL import Image

    from models.edits import seam_width
    from models.images import read_metadata

    config = {"model": {"id": str(tiny_model_dir), "steps": 3, "warmup": False},
              "storage": {"dir": str(tmp_path / "data")}, "styles": TEST_STYLES}
    playground = Playground(config, tmp_path)
    url = await playground.start()
    picture = Image.fromarray(np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (32, 0, 64, 32))  # the top right quarter, painted

    def png(image: Image.Image) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    def form(*files: str) -> FormData:
        data = FormData()
        data.add_field("name", "ada")
        data.add_field("command", "edit")
        data.add_field("prompt", "a red balloon")
        for name, image in (("image", picture), ("mask", mask)):
            if name in files:
                data.add_field(name, png(image), filename=f"{name}.png", content_type="image/png")
        return data

    try:
        async with ClientSession() as session:
            await wait_online(session, url)
            page = {"X-Imagebot": "1"}
            async with session.post(f"{url}api/command", data=form("mask"), headers=page) as response:
                assert response.status == 400 and (await response.json())["error"] == "Attach the image first."
            async with session.post(f"{url}api/command", data=form("image", "mask"), headers=page) as response:
                assert response.status == 200, await response.text()
            def finished(message: dict) -> bool:  # the result, with its V1 button (not a progress preview)
                return "ib:v:" in json.dumps(message["components"]) and bool(message["attachments"])

            done = await wait_state(session, url, lambda s: any(finished(m) for m in s["messages"]))
            [result] = [m for m in done["messages"] if finished(m)]
            assert result["interaction_metadata"]["name"] == "edit"
            async with session.get(f"{url}{result['attachments'][0]['url'].lstrip('/')}") as response:
                data = await response.read()
            assert json.loads(read_metadata(data)["imagebot"])["edit"] == {"kind": "mask"}
            made = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            keep = 32 - seam_width(64, 64)
            assert np.array_equal(made[:, :keep], np.asarray(picture)[:, :keep])  # the unpainted left half
    finally:
        code = await playground.stop()
    assert code == 0, "\n".join(playground.output)


@pytest.mark.timeout(120)
async def test_the_playground_refuses_cross_site_requests(tmp_path):
    """A page on another site open in the same browser, or one reached through DNS rebinding, cannot drive the
    playground: 403 for a foreign Origin or Host, for a POST that is neither JSON nor the page's own upload, and
    for the websocket from another origin. The page's own requests still get through (here: 503, no bot yet)."""
    playground = Playground(unloadable_model_config(tmp_path), tmp_path)
    url = await playground.start()
    own = url.rstrip("/")
    evil = "http://evil.example"
    command = {"name": "mallory", "command": "help"}
    try:
        async with ClientSession() as session:

            async def status(method: str, path: str, **kwargs) -> int:
                async with session.request(method, f"{url}{path}", **kwargs) as response:
                    if response.status == 403:
                        assert "error" in await response.json()
                    return response.status

            def upload(name: str) -> FormData:
                form = FormData()
                form.add_field("name", name)
                form.add_field("command", "imagine")
                form.add_field("prompt", "a cat")
                form.add_field("image", b"\x89PNG", filename="cat.png", content_type="image/png")
                return form

            # what another site's page can send without asking (no CORS preflight): refused
            assert await status("POST", "api/command", json=command, headers={"Origin": evil}) == 403
            assert await status("POST", "api/command", data="{}", headers={"Content-Type": "text/plain"}) == 403
            assert await status("POST", "api/click", data={"message_id": "1"}) == 403  # a form post
            assert await status("POST", "api/retry") == 403
            assert await status("POST", "api/command", data=upload("mallory")) == 403  # no X-Imagebot header
            assert await status("POST", "api/command", data=upload("mallory"), headers={"Origin": evil, "X-Imagebot": "1"}) == 403  # noqa: E501
            assert await status("POST", "api/command", json=command, headers={"Origin": "null"}) == 403
            # DNS rebinding: a name that resolves to this machine, but is not this playground
            port = url.rsplit(":", 1)[1].strip("/")
            assert await status("GET", "api/state", headers={"Host": f"evil.example:{port}"}) == 403
            assert await status("POST", "api/command", json=command, headers={"Host": f"evil.example:{port}"}) == 403
            with pytest.raises(WSServerHandshakeError) as refused:
                await session.ws_connect(f"{url}ws?name=mallory", origin=evil)
            assert refused.value.status == 403

            # the page itself: same origin, JSON or its own upload header
            assert await status("POST", "api/command", json=command, headers={"Origin": own}) == 503
            assert await status("POST", "api/command", json=command) == 503  # scripts and curl send no Origin
            assert await status("POST", "api/command", data=upload("ada"), headers={"Origin": own, "X-Imagebot": "1"}) == 503  # noqa: E501
            assert await status("GET", "api/state", headers={"Host": f"localhost:{port}"}) == 200
            ws = await session.ws_connect(f"{url}ws?name=ada", origin=own)
            assert (await ws.receive_json(timeout=10))["type"] == "status"
            await ws.close()
    finally:
        code = await playground.stop()
    assert code == 0, "\n".join(playground.output)


@pytest.mark.timeout(120)
async def test_the_page_is_native_es_modules_served_as_javascript(tmp_path):
    """No bundler and no build step: index.html loads one module script, and every module it imports (and they
    import) is served with a JavaScript MIME type, which a browser requires of a module script; none is left out."""
    playground = Playground(unloadable_model_config(tmp_path), tmp_path)
    url = await playground.start()
    try:
        async with ClientSession() as session:
            async with session.get(url) as response:
                page = await response.text()
            entry = re.search(r'<script type="module" src="/static/([\w-]+\.js)"></script>', page)
            assert entry is not None, page
            pending, served = [entry.group(1)], {}
            while pending:
                name = pending.pop()
                if name in served:
                    continue
                async with session.get(f"{url}static/{name}") as response:
                    assert response.status == 200, name
                    assert response.content_type in ("text/javascript", "application/javascript"), name
                    served[name] = await response.text()
                pending += re.findall(r'^import \{[^}]*\} from "\./([\w-]+\.js)";$', served[name], re.MULTILINE)
            assert set(served) == {path.name for path in (REPO / "playground" / "static").glob("*.js")}
    finally:
        code = await playground.stop()
    assert code == 0, "\n".join(playground.output)


@pytest.mark.timeout(180)
async def test_blend_through_the_playground_api(tiny_model_dir, tmp_path):
    """The page's /blend: several files in one field become image1, image2, ...; a wrong number of pictures is
    refused before the bot sees it, and a file that is no picture gets the bot's private answer."""
    config = {
        "model": {"id": str(tiny_model_dir), "steps": 3, "warmup": False, "max_count": 1,
                  "ip_adapter": {"id": "tiny"}},
        "storage": {"dir": str(tmp_path / "data")},
        "styles": TEST_STYLES,
    }
    playground = Playground(config, tmp_path)
    url = await playground.start()
    red, blue = png_bytes((200, 20, 20)), png_bytes((20, 20, 200))
    try:
        async with ClientSession() as session:
            await wait_online(session, url)

            async def blend(*files: tuple[str, bytes, str], **fields: str) -> tuple[int, dict]:
                form = FormData()
                form.add_field("name", "ada")
                form.add_field("command", "blend")
                for key, value in fields.items():
                    form.add_field(key, value)
                for filename, data, content_type in files:
                    form.add_field("images", data, filename=filename, content_type=content_type)
                async with session.post(f"{url}api/command", data=form, headers={"X-Imagebot": "1"}) as response:
                    return response.status, await response.json()

            status, body = await blend(("a.png", red, "image/png"), ("b.png", blue, "image/png"), prompt="fruit",
                                       weights="1,1,2")
            assert status == 200 and "interaction_id" in body
            await wait_state(session, url, lambda s: any(  # the result, with its buttons
                m["content"].startswith("Blend of **fruit + 2 pictures**") and "ib:v:" in json.dumps(m["components"])
                and any(a["filename"].endswith(".png") for a in m["attachments"]) for m in s["messages"]), timeout=90)

            status, body = await blend(*[(f"{n}.png", red, "image/png") for n in range(6)])
            assert (status, body["error"]) == (400, "/blend takes 2 to 5 pictures; you picked 6.")
            status, body = await blend(("a.png", red, "image/png"))
            assert (status, body["error"]) == (400, "/blend takes 2 to 5 pictures; you picked 1.")

            assert (await blend(("a.png", red, "image/png"), ("notes.txt", b"words", "text/plain")))[0] == 200
            async with asyncio.timeout(30):
                while True:  # ada's own view: her ephemeral messages are in it, nobody else's view has them
                    async with session.get(f"{url}api/state", params={"name": "ada"}) as response:
                        mine = (await response.json())["messages"]
                    if any("`notes.txt` is not an image" in m["content"] for m in mine):
                        break
                    await asyncio.sleep(0.2)
            assert not any("notes.txt" in m["content"] for m in (await state(session, url))["messages"])
    finally:
        code = await playground.stop()
    assert code == 0, "\n".join(playground.output)


def test_the_readme_shows_every_screenshot_with_alt_text():
    """The pictures the browser tests take (``save_screenshot``) are the ones the README shows, each described."""
    shown = dict((name, alt) for alt, name in
                 re.findall(r"!\[([^\]]*)\]\(docs/images/([\w-]+)\.png\)", (REPO / "README.md").read_text()))
    taken = set(re.findall(r'save_screenshot\(.+, "([\w-]+)"\)', Path(__file__).read_text()))
    assert len(taken) >= 6 and set(shown) == taken, (sorted(shown), sorted(taken))
    assert all(len(alt.split()) >= 4 for alt in shown.values()), shown
    assert {path.stem for path in README_IMAGES.glob("*.png")} == taken


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed: the page's modules are not parsed")
def test_every_module_of_the_page_parses_as_an_es_module(tmp_path: Path) -> None:
    """The page loads its scripts as ES modules, whose rules are stricter than a plain script's (a name declared
    twice is a SyntaxError that stops the whole page); `node --check` applies them to a ``.mjs`` copy. Without
    Chromium the browser tests skip, and this is what still catches a page that would not start."""
    import subprocess

    scripts = sorted((REPO / "playground" / "static").glob("*.js"))
    assert scripts
    for script in scripts:
        copy = tmp_path / f"{script.stem}.mjs"
        shutil.copy(script, copy)
        checked = subprocess.run(["node", "--check", str(copy)], capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, f"{script.name}: {checked.stderr}"
