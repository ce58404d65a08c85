"""The bot: a small AutoShardedBot subclass that opens shared resources and loads the cogs.

Shaped like RoboDanny's bot.py: ``setup_hook`` opens storage, loads ``INITIAL_EXTENSIONS`` (the
generation cog first, because every other cog submits work to it) and syncs the slash commands
only when their definitions changed, so restarts don't burn Discord's daily command-creation limit.

With ``discord.shards`` the process runs those gateway shards of the total (several processes split the gateway);
without, discord.py's automatic sharding runs every shard Discord recommends here.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import discord
import discord.gateway
import discord.http
import yarl
from discord import app_commands
from discord.ext import commands

from bot import database
from bot.admission import person_classes
from bot.config import Config
from bot.exit_codes import ExitCode
from bot.i18n import CatalogueTranslator, load_catalogues
from bot.messages import loaded, reply_privately, something_went_wrong
from bot.metrics import Metrics
from bot.monitor import LoopLagMonitor, SlowCallbacks
from bot.server import OpsServer
from bot.service import GenerationService
from bot.storage import Storage
from models.plan import ModelLoadError, StartupError

if TYPE_CHECKING:
    from bot.desk import RequestDesk

log = logging.getLogger(__name__)


STOP_RUNNER_TIMEOUT_S = 10.0
INITIAL_EXTENSIONS = ("cogs.generation", "cogs.imagine", "cogs.describe", "cogs.editing", "cogs.blend", "cogs.info",
                      "cogs.admin", "cogs.library", "cogs.settings", "cogs.animate")


def use_endpoints(api_base: str, gateway_url: str | None) -> None:
    """Point discord.py at another REST base (a proxy, the emulator) and optionally another gateway.

    discord.py keeps both as class attributes; the webhook adapter used for interaction followups
    shares ``Route`` with the HTTP client, so one assignment covers both.
    """
    discord.http.Route.BASE = api_base
    if gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def gateway_intents() -> discord.Intents:
    """Guilds only: slash commands, buttons and forms arrive as interactions, so no privileged intent is needed
    (``python -m bot doctor`` says so)."""
    intents = discord.Intents.none()
    intents.guilds = True
    return intents


class ImageBot(commands.AutoShardedBot):
    def __init__(self, config: Config, *, config_path: Path | None = None) -> None:
        use_endpoints(config.discord.api_base, config.discord.gateway_url)
        metrics = Metrics(person_classes(config.queue))
        shards = config.discord.shards
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=gateway_intents(),
            help_command=None,
            shard_ids=None if shards is None else shards.shard_ids,
            shard_count=None if shards is None else shards.total,
            # Nothing pings by default: messages about a job allow its requester alone (results.requester_only).
            allowed_mentions=discord.AllowedMentions.none(),
            enable_debug_events=True,
            http_trace=metrics.http_trace(),
        )
        self.config = config
        self.config_path = config_path
        """The file ``config`` came from; /admin reload reads it again (None: reload is not possible)."""
        self.storage: Storage | None = None
        self.generation: GenerationService | None = None
        """Set by the generation cog while it is loaded (None while the model loads or reloads)."""
        self.request_desk: RequestDesk | None = None
        """Set by the generation cog beside the service: the one way every command and button asks for work."""
        self.metrics = metrics
        self.loop_lag = LoopLagMonitor(on_sample=metrics.loop_sample)
        self.slow_callbacks = SlowCallbacks()
        """Logs each callback that holds the event loop over 20 ms, naming it (bench/load.py lists the worst)."""
        self.ops_server: OpsServer | None = None
        self.stopping = asyncio.Event()
        """Set to stop the process gracefully: by SIGTERM/SIGINT, or by ``engine_hung``."""
        self.exit_code = ExitCode.OK

    def engine_hung(self) -> None:
        """A pipeline call hung (``bot.queue``): stop gracefully and exit with ``ExitCode.ENGINE_HUNG``, so the
        supervisor (Docker's restart policy, systemd, the playground) starts a process with a working engine."""
        log.critical("the engine hung; stopping so that the supervisor restarts the bot (exit code %d)",
                     ExitCode.ENGINE_HUNG)
        self.exit_code = ExitCode.ENGINE_HUNG
        self.stopping.set()

    @property
    def service(self) -> GenerationService:
        """The generation service, or GenerationUnavailable (shown to the person) while it is not loaded."""
        return loaded(self.generation)

    @property
    def desk(self) -> RequestDesk:
        """The request desk, or GenerationUnavailable (shown to the person) while generation (re)loads."""
        return loaded(self.request_desk)

    @property
    def syncs_commands(self) -> bool:
        """Whether this process syncs the slash commands: without ``discord.shards``, or where it runs shard 0.

        A sync replaces the whole set (Discord keeps each command's id), so two processes syncing the same set is
        harmless; one owner keeps processes of two versions, during a rolling update, from undoing each other."""
        return self.shard_ids is None or 0 in self.shard_ids

    async def setup_hook(self) -> None:
        self.tree.on_error = self.on_app_command_error
        self.loop_lag.start()
        self.slow_callbacks.start()
        if self.config.server.enabled:
            # First, so that /healthz answers (503, "model not loaded") while the model loads.
            server = self.config.server
            self.ops_server = OpsServer(self, self.metrics, server.host, server.port)
            await self.ops_server.start(port_file_dir=Path(self.config.storage.dir))
        try:
            self.storage = await Storage.from_config(self.config.storage).open()
        except (OSError, *database.ERRORS) as error:  # a database server that is down, a login it refuses
            raise StartupError(f"the database (storage.url) cannot be opened: {type(error).__name__}: {error}. "
                               "Check that its server runs and storage.url; python -m bot doctor checks it too"
                               ) from error
        # Read the catalogues now, so that a broken one stops the start instead of the first Italian reply.
        await asyncio.to_thread(load_catalogues)
        await self.tree.set_translator(CatalogueTranslator())
        for extension in INITIAL_EXTENSIONS:
            await self.load_extension(extension)
        if self.syncs_commands:
            await self.sync_commands()
        else:
            log.info("Slash commands are synced by the process running shard 0; not syncing here")
        if self.shard_ids is not None:
            log.info("Running gateway shards %s of %d", ", ".join(map(str, self.shard_ids)), self.shard_count or 0)
            if not self.config.discord.gateway_url:
                await self.find_gateway()
        # torch, diffusers and the model leave millions of long-lived objects; a full garbage collection that
        # walks them all stalls the event loop for hundreds of milliseconds. Freezing them at start keeps later
        # collections to the objects the bot makes while it serves.
        gc.collect()
        gc.freeze()

    async def find_gateway(self) -> None:
        """Manual shards (``discord.shards``) make discord.py connect to its built-in gateway address instead of
        asking Discord: ask as automatic sharding does (``GET /gateway/bot`` on ``discord.api_base``, so a proxy or
        the emulator is followed)."""
        recommended, url, _limits = await self.http.get_bot_gateway()
        use_endpoints(self.config.discord.api_base, url)
        if self.shard_count is not None and recommended > self.shard_count:
            log.warning("Discord recommends %d shards; discord.shards.total is %d (Discord refuses a shard with "
                        "too many guilds: raise total on every process)", recommended, self.shard_count)

    async def _command_payloads(self, guild: discord.abc.Snowflake | None) -> list[dict]:
        """What a sync sends, translations included (so a changed translation is synced too)."""
        translator = self.tree.translator
        assert translator is not None
        return [await command.get_translated_payload(self.tree, translator)
                for command in self.tree.get_commands(guild=guild)]

    async def sync_commands(self) -> None:
        """Sync to ``discord.guild_ids`` (instant) or globally, skipping targets whose definitions are unchanged."""
        marker_file = Path(self.config.storage.dir) / "synced-commands.json"
        try:
            synced: dict[str, str] = json.loads(marker_file.read_text())
        except (OSError, ValueError):
            synced = {}
        targets: list[discord.Object | None] = [discord.Object(id=g) for g in self.config.discord.guild_ids] or [None]
        for guild in targets:
            if guild is not None:
                self.tree.copy_global_to(guild=guild)
            payload = json.dumps(await self._command_payloads(guild), sort_keys=True, default=str)
            digest = hashlib.sha256(f"{self.application_id}:{payload}".encode()).hexdigest()
            key = str(guild.id) if guild else "global"
            if synced.get(key) == digest:
                log.info("Slash commands for %s are up to date; not syncing", key)
                continue
            try:
                commands_synced = await self.tree.sync(guild=guild)
            except discord.HTTPException as error:
                # The bot still works with the commands Discord already has; the next start tries again.
                log.error("Could not sync slash commands to %s (%s); keeping the registered ones", key, error)
                continue
            synced[key] = digest
            log.info("Synced %d slash commands to %s", len(commands_synced), key)
        marker_file.parent.mkdir(parents=True, exist_ok=True)
        marker_file.write_text(json.dumps(synced, indent=1))

    async def on_app_command_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        """The last resort: whatever went wrong, the person gets a private answer instead of "interaction failed"."""
        if isinstance(error, app_commands.TransformerError | app_commands.CheckFailure):
            message: str | BaseException = error
        else:
            log.error("/%s failed", getattr(interaction.command, "name", "?"), exc_info=error)
            message = something_went_wrong(interaction.id)
        await reply_privately(interaction, message)

    async def close(self) -> None:
        # Unloading the extensions first lets the generation cog finish or persist its batch while the
        # HTTP session can still deliver results; storage closes last.
        await super().close()
        if self.storage is not None:
            await self.storage.close()
            self.storage = None
        await self.loop_lag.stop()
        self.slow_callbacks.stop()
        if self.ops_server is not None:
            await self.ops_server.stop()
            self.ops_server = None


async def _serve(config: Config, config_path: Path | None = None) -> int:
    loop = asyncio.get_running_loop()
    async with ImageBot(config, config_path=config_path) as bot:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, bot.stopping.set)
        runner = asyncio.create_task(bot.start(config.token), name="discord")
        stopper = asyncio.create_task(bot.stopping.wait(), name="signals")
        done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if runner in done:
            stopper.cancel()
            runner.result()
            return ExitCode.OK
        log.info("Stopping: finishing the running batch, then saving the queue for the next start")
        if bot.generation is not None:  # from now on no batch starts: closing the cogs first takes a while
            bot.generation.queue.pause()
        await bot.close()
        # The queue is saved by now. If the stop came before discord.py got going (during login or setup_hook,
        # say while the model loads), its task may still be busy: don't let that keep the process alive.
        try:
            await asyncio.wait_for(runner, timeout=STOP_RUNNER_TIMEOUT_S)
        except TimeoutError:
            log.warning("discord.py did not finish within %.0f s of closing; exiting anyway", STOP_RUNNER_TIMEOUT_S)
        except Exception:
            log.warning("discord.py raised while stopping; the queue was saved, exiting normally", exc_info=True)
    return bot.exit_code


def run_bot(config: Config, config_path: Path | None = None) -> int:
    """Run until SIGTERM/SIGINT, a hung engine or a fatal error; the exit code for the command line."""
    try:
        code = asyncio.run(_serve(config, config_path))
        if code == ExitCode.ENGINE_HUNG:
            # The engine's worker thread is stuck in a call that never returns, and the interpreter would wait for
            # it at exit forever. Everything is saved and closed by now: leave without waiting.
            logging.shutdown()
            os._exit(code)
        return code
    except discord.LoginFailure:
        log.error("Discord refused the token. Reset it in the developer portal and set DISCORD_TOKEN again.")
        return ExitCode.USAGE
    except discord.PrivilegedIntentsRequired as error:
        log.error("%s", error)
        return ExitCode.USAGE
    except aiohttp.ClientConnectionError as error:
        log.error(
            "Cannot reach Discord at %s (%s). Check the network or discord.api_base.", discord.http.Route.BASE, error
        )
        return ExitCode.FAILURE
    except StartupError as error:  # from setup_hook itself (the database, the image store), not a cog
        log.error("Cannot start: %s", error)
        return ExitCode.FAILURE
    except commands.ExtensionFailed as error:
        # A model that cannot load or a Ray cluster that cannot be reached is the operator's to fix: say so in one
        # line (the engine and the Ray backend word these errors for people), with no traceback to dig through.
        if isinstance(error.original, StartupError):
            log.error("Cannot start: %s", error.original)
            if isinstance(error.original, ModelLoadError):
                log.error("To try the bot without downloading a model, set model.id: tiny (its images are noise).")
            return ExitCode.FAILURE
        raise
