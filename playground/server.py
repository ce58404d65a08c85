"""The playground's web server: the page (``static/``: HTML, CSS and native ES modules, no build step) and its API.

The page talks only to this server: ``/api/state`` (channel history as this user sees it, with what the bot sent
them by direct message, the bot's status and why it could not start), ``/api/command`` (any slash command,
subcommands included: "settings me", as JSON or, with its pictures, as the page's upload: /imagine, /blend, /describe,
and /edit with the mask painted in the page's brush editor; each checked against the command's definition as
Discord's client would, in ``playground.commands``), ``/api/message-command`` (an "Apps" menu entry
on a message, such as "Describe image"), ``/api/autocomplete``, ``/api/click`` (a button, or a select's choices),
``/api/modal`` (submit a form the bot opened), ``/api/retry`` (start a bot that could not start again),
``/attachments/...`` and ``/ws`` (live events from the emulator's feed, filtered so ephemeral messages, direct
messages and the forms the bot opens reach only the user they belong to). Each display name is one emulator user, so
several tabs with different names are different people to the bot's queue and rate limits. Each act also carries
the page's ``locale`` (``navigator.language``), sent to the bot as the nearest Discord locale (``discord_locale``).

The playground has no accounts, so a web page on another site open in the same browser must not be able to drive it
(``_guard``). Every request must name a host that is this playground: an IP address, ``localhost`` or the host it
listens on; a name that only resolves here (DNS rebinding) is refused. A state-changing request (any method but GET,
HEAD and OPTIONS, and the websocket) that carries an ``Origin`` must come from this playground's own origin, and a
POST must be JSON (``Content-Type: application/json``) or the page's picture upload, which is
``multipart/form-data`` with an ``X-Imagebot: 1`` header. A cross-site page can send neither without a CORS
preflight, which this server never grants. Refusals are 403 with a short JSON error.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import ipaddress
import json
import logging
import signal
import sys
from collections.abc import Awaitable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import discord
from aiohttp import WSMsgType, hdrs, web
from aiohttp.typedefs import Handler
from yarl import URL

from bot.config import Config
from bot.exit_codes import ExitCode
from fakediscord import FakeDiscord, Interaction, Message, User
from playground import commands
from playground.supervisor import BotProcess

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
MAX_NAME = 32
MAX_UPLOAD = 25 * 1024 * 1024
PICTURES = "images"
"""The page's field for several pictures picked at once: they fill a command's picture options in order."""


# Sent by the page with its multipart upload: a header a cross-site form cannot add.
PAGE_HEADER = "X-Imagebot"


class Client:
    """One open page: a websocket, the user it speaks for, and its outgoing events in order."""

    def __init__(self, ws: web.WebSocketResponse, user: User) -> None:
        self.ws = ws
        self.user = user
        self.outbox: asyncio.Queue[str] = asyncio.Queue()

    async def send_forever(self) -> None:
        while True:
            text = await self.outbox.get()
            await self.ws.send_str(text)


class Playground:
    """The emulator, the bot process and the page's server, started and stopped together."""

    def __init__(self, config: Config, config_path: Path | None = None) -> None:
        self.config = config
        self.config_path = config_path
        # Discord's OpenAPI schema checks need jsonschema, a dev dependency that `make run` does not install.
        validate = importlib.util.find_spec("jsonschema") is not None
        self.emu = FakeDiscord(bot_name="imagebot", guild_name="imagebot playground", validate_schemas=validate)
        self.bot: BotProcess | None = None
        self.clients: set[Client] = set()
        self._people: dict[str, User] = {}
        self._feed: asyncio.Queue[dict[str, Any]] | None = None
        self._feed_task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self._host = ""
        self.url = ""

    # -- lifecycle ------------------------------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> str:
        await self.emu.start()
        self._feed = self.emu.subscribe()
        self._feed_task = asyncio.create_task(self._pump())
        self._host = host
        app = web.Application(client_max_size=MAX_UPLOAD + 1024 * 1024, middlewares=[self._guard])
        self._routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound = self._runner.addresses[0][1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{bound}/"
        self.bot = BotProcess(self.config, self.emu, self._status_changed, config_path=self.config_path)
        self.bot.start()
        return self.url

    async def stop(self) -> None:
        if self.bot is not None:
            await self.bot.stop()
        for client in list(self.clients):
            with contextlib.suppress(Exception):
                await client.ws.close(code=1001, message=b"playground stopped")
        if self._runner is not None:
            await self._runner.cleanup()
        if self._feed_task is not None:
            self._feed_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feed_task
        await self.emu.stop()

    @property
    def status(self) -> str:
        return self.bot.status if self.bot is not None else "starting"

    def _status_event(self) -> dict[str, Any]:
        failure = self.bot.failure if self.bot is not None else None
        return {"type": "status", "status": self.status, "failure": asdict(failure) if failure else None}

    def _status_changed(self, status: str) -> None:
        self._broadcast(self._status_event())

    # -- people -----------------------------------------------------------------------------------------------------

    def person(self, name: str | None) -> User:
        name = " ".join((name or "").split())[:MAX_NAME] or "guest"
        user = self._people.get(name.lower())
        if user is None:
            user = self.emu.add_user(name)
            self._people[name.lower()] = user
            self._broadcast({"type": "users", "users": self._users()})
        return user

    def _users(self) -> dict[str, dict[str, Any]]:
        return {str(u.id): {"name": u.name, "bot": u.bot} for u in self.emu.users.values()}

    # -- the event feed -------------------------------------------------------------------------------------------

    def _message_json(self, data: dict[str, Any]) -> dict[str, Any]:
        """Discord's message JSON with attachment URLs made relative to this server (the emulator's port is private),
        those of components v2 media (galleries, thumbnails) included."""
        data = dict(data)
        data["attachments"] = [
            {**a, "url": a["url"].removeprefix(self.emu.http_base), "proxy_url": None} for a in data["attachments"]
        ]
        data["components"] = [self._relative_media(component) for component in data.get("components") or []]
        return data

    def _relative_media(self, component: dict[str, Any]) -> dict[str, Any]:
        def relative(media: Any) -> Any:
            if not isinstance(media, dict) or not isinstance(media.get("url"), str):
                return media
            return {**media, "url": media["url"].removeprefix(self.emu.http_base), "proxy_url": None}

        out = dict(component)
        if isinstance(out.get("items"), list):
            out["items"] = [{**item, "media": relative(item.get("media"))} for item in out["items"]]
        for key in ("media", "file"):
            if key in out:
                out[key] = relative(out[key])
        if isinstance(out.get("components"), list):
            out["components"] = [self._relative_media(child) for child in out["components"]]
        if isinstance(out.get("accessory"), dict):
            out["accessory"] = self._relative_media(out["accessory"])
        return out

    def _message_from(self, message) -> dict[str, Any]:
        data = message.to_dict()
        data["deleted"] = message.deleted
        inter = message.interaction
        data["interaction_id"] = str(inter.id) if inter else None
        data["visible_to"] = str(inter.user.id) if inter and message.ephemeral else None
        return self._with_dm(self._message_json(data))

    def _dm_recipient(self, channel_id: int | str) -> User | None:
        """The person a direct-message channel is with (None for the guild's channels)."""
        dm = self.emu.dm_channels.get(int(channel_id))
        return dm.recipient if dm is not None else None

    def _with_dm(self, data: dict[str, Any]) -> dict[str, Any]:
        """A message the bot sent by direct message is shown, marked as one, to its recipient alone."""
        recipient = self._dm_recipient(data["channel_id"])
        if recipient is not None:
            data["dm"] = True
            data["visible_to"] = str(recipient.id)
        return data

    async def _pump(self) -> None:
        assert self._feed is not None
        while True:
            event = await self._feed.get()
            try:
                self._forward(event)
            except Exception:
                log.exception("could not forward %s", event.get("type"))

    def _forward(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind in ("message_create", "message_update"):
            message = event["message"]
            if int(message["channel_id"]) != self.emu.channel_id and self._dm_recipient(message["channel_id"]) is None:
                return
            message = self._with_dm(self._message_json(message))
            out = {"type": kind, "message": message}
            visible_to = message.get("visible_to")
            self._broadcast(out, only=int(visible_to) if visible_to else None)
        elif kind == "message_delete":
            self._broadcast({"type": kind, "message_id": event["message_id"]})
        elif kind == "interaction_ack" and event.get("modal"):
            # The bot answered with a form: it opens over the page of the person who clicked, and no one else's.
            inter = self.emu.interactions.get(int(event["interaction_id"]))
            if inter is not None:
                self._broadcast({"type": "modal", "interaction_id": event["interaction_id"], "modal": event["modal"]},
                                only=inter.user.id)
        elif kind == "gateway" and event.get("action") in ("identify", "resume") and self.bot is not None:
            self.bot.connected()
        elif kind == "violation":
            # What Discord would have refused, or "The application did not respond": shown to whoever acted.
            violation = event["violation"]
            inter = self.emu.interactions.get(int(violation["interaction_id"] or 0))
            text = (
                "The application did not respond."
                if violation["kind"] == "no_initial_response"
                else f"Discord would refuse what the bot sent ({violation['kind']}): {violation['message']}"
            )
            self._broadcast({"type": "notice", "level": "error", "text": text}, only=inter.user.id if inter else None)

    def _broadcast(self, event: dict[str, Any], *, only: int | None = None) -> None:
        text = json.dumps(event)
        for client in self.clients:
            if only is None or client.user.id == only:
                client.outbox.put_nowait(text)

    # -- HTTP -------------------------------------------------------------------------------------------------------

    def _is_own_host(self, host: str) -> bool:
        """Whether a Host header names this playground: an IP address, ``localhost`` or the host it listens on.

        A name that resolves here only because someone pointed it here (DNS rebinding) is none of these.
        """
        try:
            name = (URL(f"http://{host}").host or "").rstrip(".").lower()
        except ValueError:
            return False
        if name in ("localhost", self._host.lower()):
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True

    def _refusal(self, request: web.Request) -> str | None:
        """Why ``request`` may have come from another site's page (see the module's docstring), or None."""
        host = request.headers.get(hdrs.HOST, "")
        if not self._is_own_host(host):
            return f"This playground does not answer to {host or 'no host'}: open {self.url}"
        websocket = request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"
        if request.method in ("GET", "HEAD", "OPTIONS") and not websocket:
            return None
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is not None and origin != f"http://{host}":
            return "Requests from other sites are refused."
        if websocket or request.content_type == "application/json":
            return None
        if request.content_type == "multipart/form-data" and request.headers.get(PAGE_HEADER) == "1":
            return None
        return "Send JSON (Content-Type: application/json)."

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        refusal = self._refusal(request)
        if refusal is not None:
            log.warning("refused %s %s from %s: %s", request.method, request.path, request.remote, refusal)
            return web.json_response({"error": refusal}, status=403)
        return await handler(request)

    def _routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/", self._index)
        r.add_static("/static", STATIC)
        r.add_get("/api/state", self._state)
        r.add_get("/api/autocomplete", self._autocomplete)
        r.add_post("/api/command", self._command)
        r.add_post("/api/message-command", self._message_command)
        r.add_post("/api/click", self._click)
        r.add_post("/api/modal", self._modal)
        r.add_post("/api/retry", self._retry)
        r.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self._attachment)
        r.add_get("/ws", self._ws)

    async def _index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    def _ready(self) -> None:
        if self.status == "failed" and self.bot is not None and self.bot.failure is not None:
            failure = self.bot.failure
            error = f"The bot could not start: {failure.message} {failure.fix}"
        elif self.status != "online":
            word = "is restarting" if self.status == "restarting" else "is still starting"
            error = f"The bot {word}; try again in a moment."
        else:
            return
        raise web.HTTPServiceUnavailable(text=json.dumps({"error": error}), content_type="application/json")

    async def _state(self, request: web.Request) -> web.Response:
        # Without a name: the public view (for scripts and health checks), which adds no one to the guild.
        user = self.person(request.query["name"]) if "name" in request.query else None
        messages = [
            self._message_from(m)
            for m in self.emu.channel_messages(self.emu.channel_id)
            if not m.ephemeral or (user and m.interaction is not None and m.interaction.user.id == user.id)
        ]
        if user is not None:
            messages += [self._message_from(m) for m in self.emu.dm_messages(user)]
            messages.sort(key=lambda m: int(m["id"]))
        channel = self.emu.channels[self.emu.channel_id]
        return web.json_response(
            {
                "me": {"id": str(user.id), "name": user.name} if user else None,
                "bot": {"id": str(self.emu.bot_user.id), "name": self.emu.bot_user.name},
                "guild": self.emu.guild_name,
                "channel": {"id": str(channel.id), "name": channel.name},
                "users": self._users(),
                "status": self.status,
                "failure": self._status_event()["failure"],
                "bot_pid": self.bot.pid if self.bot else None,
                "bot_starts": self.bot.starts if self.bot else 0,
                "commands": sorted(name for name, c in self.emu.commands.items() if c.get("type", 1) == 1),
                "message_commands": sorted(name for name, c in self.emu.commands.items() if c.get("type") == 3),
                "messages": messages,
            }
        )

    async def _autocomplete(self, request: web.Request) -> web.Response:
        self._ready()
        user = self.person(request.query.get("name"))
        focused = request.query.get("focused") if request.query.get("focused") in ("model", "lora") else "style"
        options = {"prompt": request.query.get("prompt") or "", focused: request.query.get(focused) or ""}
        if focused == "lora" and request.query.get("model"):  # the LoRAs offered are those that fit the model
            options["model"] = request.query["model"]
        try:
            choices = await self.emu.autocomplete(user, "imagine", options, focused=focused, timeout=5,
                                                  locale=discord_locale(request.query.get("locale")))
        except (TimeoutError, ValueError, RuntimeError) as error:
            log.debug("autocomplete failed: %s", error)
            choices = []
        return web.json_response({"choices": choices})

    async def _command(self, request: web.Request) -> web.Response:
        """Any slash command, subcommands included ("settings me"): JSON ``{name, command, options}``, or the page's
        multipart form with ``name``, ``command``, one field per option and its pictures (one file per picture option,
        or several in ``images``). Checked against the command's definition (``playground.commands``) first."""
        self._ready()
        if request.content_type == "multipart/form-data":
            name, command, values, files = await self._form(request)
            locale = values.pop("locale", None)
        else:
            body = await self._json(request)
            name, command, values, files = body.get("name"), str(body.get("command") or ""), body.get("options"), {}
            locale = body.get("locale")
            if values is None:
                values = {}
            elif not isinstance(values, dict):
                raise _bad("A command's options must map each option to its value.")
        user = self.person(name)
        pictures = files.pop(PICTURES, [])
        try:
            checked = commands.check(self.emu.commands, command, values, files, pictures)
        except commands.Refused as refusal:
            raise _bad(str(refusal)) from None
        return await self._interact(
            self.emu.invoke(user, checked.path, checked.options, attachments=checked.attachments or None,
                            locale=discord_locale(locale))
        )

    @staticmethod
    async def _form(request: web.Request) -> tuple[str, str, dict[str, str], dict[str, list[commands.Upload]]]:
        """The page's multipart command: who, which command, its text fields and its non-empty files by field."""
        values: dict[str, str] = {}
        files: dict[str, list[commands.Upload]] = {}
        for key, field in (await request.post()).items():
            if isinstance(field, web.FileField):
                data = field.file.read()
                if data:
                    files.setdefault(key, []).append((field.filename or key, data, field.content_type))
            else:
                values[key] = str(field)
        return values.pop("name", ""), values.pop("command", ""), values, files

    @staticmethod
    async def _json(request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise _bad("Send a JSON object.")
        return body

    async def _message_command(self, request: web.Request) -> web.Response:
        """A message's "Apps" menu entry (a message command) run on a message this person can see."""
        self._ready()
        body = await self._json(request)
        user = self.person(body.get("name"))
        message = self._visible_message(user, body.get("message_id"))
        return await self._interact(self.emu.invoke_message_command(user, str(body.get("command") or ""), message,
                                                                    locale=discord_locale(body.get("locale"))))

    def _visible_message(self, user: User, message_id: Any) -> Message:
        """The message with ``message_id`` if ``user`` can see it (someone else's ephemeral or direct message is
        "gone")."""
        try:
            message = self.emu.message(message_id)
        except (KeyError, TypeError, ValueError):
            raise _bad("That message is gone.") from None
        if message.ephemeral and (message.interaction is None or message.interaction.user.id != user.id):
            raise _bad("That message is gone.")
        recipient = self._dm_recipient(message.channel_id)
        if recipient is not None and recipient.id != user.id:
            raise _bad("That message is gone.")
        return message

    async def _interact(self, acting: Awaitable[Interaction]) -> web.Response:
        """Send a person's act (a command, a click, a form) to the bot and answer with its interaction's id: what the
        emulator refuses is a 400 saying why, and while no bot is connected (starting, restarting) a 503."""
        try:
            inter = await acting
        except ValueError as error:
            raise _bad(str(error)) from None
        except RuntimeError as error:  # no bot connected
            raise web.HTTPServiceUnavailable(
                text=json.dumps({"error": str(error)}), content_type="application/json"
            ) from None
        return web.json_response({"interaction_id": str(inter.id)})

    async def _click(self, request: web.Request) -> web.Response:
        self._ready()
        body = await self._json(request)
        user = self.person(body.get("name"))
        message = self._visible_message(user, body.get("message_id"))
        return await self._interact(self.emu.click(user, message, str(body.get("custom_id") or ""),
                                                   values=body.get("values"),
                                                   locale=discord_locale(body.get("locale"))))

    async def _modal(self, request: web.Request) -> web.Response:
        """Submit the form the bot opened for this person: ``values`` maps each input's custom_id to its text."""
        self._ready()
        body = await self._json(request)
        user = self.person(body.get("name"))
        inter = self.emu.interactions.get(_int(body.get("interaction_id")))
        if inter is None or inter.user.id != user.id or inter.modal is None:
            raise _bad("That form is gone.")
        values = body.get("values")
        if not isinstance(values, dict):
            raise _bad("A form's values must map each input to its text.")
        return await self._interact(self.emu.submit_modal(user, inter, values,
                                                          locale=discord_locale(body.get("locale"))))

    async def _retry(self, request: web.Request) -> web.Response:
        if self.bot is None or not self.bot.retry():
            return web.json_response(
                {"error": f"The bot is {self.status}: Retry is for a bot that could not start."}, status=409
            )
        return web.json_response({"status": self.status})

    async def _attachment(self, request: web.Request) -> web.Response:
        try:
            attachment = self.emu._files[int(request.match_info["attachment_id"])]
        except (KeyError, ValueError):
            raise web.HTTPNotFound() from None
        return web.Response(
            body=attachment.data,
            content_type=attachment.content_type.split(";")[0],
            headers={"Cache-Control": "private, max-age=86400"},
        )

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20)
        await ws.prepare(request)
        client = Client(ws, self.person(request.query.get("name")))
        client.outbox.put_nowait(json.dumps(self._status_event()))
        self.clients.add(client)
        sender = asyncio.create_task(client.send_forever())
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    break
        finally:
            self.clients.discard(client)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
                await sender
        return ws


DISCORD_LOCALES = frozenset(locale.value for locale in discord.Locale)


def discord_locale(tag: object) -> str:
    """The Discord locale nearest the page's language (``navigator.language``): its own tag where Discord has it
    ("pt-BR"), else its language ("it-IT" is "it"), else Discord's default, so the bot answers in the person's
    language as it would in Discord."""
    tag = str(tag or "")
    language = tag.split("-")[0]
    return tag if tag in DISCORD_LOCALES else language if language in DISCORD_LOCALES else "en-US"


def _bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


def _int(value: Any) -> int:
    """An id the page sent (a string of digits); -1 for anything else, which no interaction has."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


async def serve(config: Config, config_path: Path | None, host: str, port: int) -> int:
    playground = Playground(config, config_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            url = await playground.start(host, port)
        except OSError as error:
            print(f"playground: cannot listen on {host}:{port}: {error.strerror or error}", file=sys.stderr)
            return ExitCode.FAILURE
        print(f"Playground: open {url} in your browser (Ctrl-C stops it)", flush=True)
        await stop.wait()
        print("playground: stopping the bot…", flush=True)
        return ExitCode.OK
    finally:
        await playground.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def run_playground(config: Config, *, config_path: Path | None = None, port: int | None = None) -> int:
    """The ``playground`` command: emulator + bot + page until Ctrl-C. Returns the exit code.

    ``config_path`` is the file ``config`` came from: while the bot cannot start, saving it starts the bot again.
    """
    port = config.playground.port if port is None else port
    return asyncio.run(serve(config, config_path, config.playground.host, port))
