"""The bot behind the playground: ``python -m bot run`` as a child process against the emulator, kept running.

- Its config is derived from the person's own (``playground_config``): the same model, styles, queue and
  moderation, with ``discord.api_base`` pointed at the emulator and its own storage folder
  ``<storage.dir>/playground`` so history survives restarts.
- A bot that stops after it had connected is started again, after 1, 2, 5, then 10 s while it keeps dying (back to
  1 s once it has stayed up for a minute).
- A bot that stops with an error before it ever connected hit a start-up error (a model that cannot load, a Ray
  cluster out of reach): starting it again would fail the same way, every few seconds, forever. So the supervisor
  stops, says why once (terminal and page, with the fix) and waits for the person: ``retry()`` (the page's Retry
  button) or a change to their config file starts it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bot.config import Config, ConfigError, load_config

if TYPE_CHECKING:
    from fakediscord import FakeDiscord

RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0)  # between restarts of a bot that keeps dying; reset after STABLE_AFTER
STABLE_AFTER = 60.0
STOP_TIMEOUT = 30.0
WATCH_INTERVAL = 1.0  # how often a stopped supervisor looks at the config file
START_MARK = "=== playground: starting the bot"
CANNOT_START = re.compile(r"Cannot start: (.+)")
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")  # discord.py colours its log lines when it thinks it may


def playground_config(config: Config, emu: FakeDiscord) -> dict[str, Any]:
    """The bot's config for the playground: the user's model, styles, queue and moderation against ``emu``."""
    data = config.model_dump(mode="json")
    data["discord"].update(
        token="",
        api_base=emu.api_base,
        gateway_url=None,
        guild_ids=[emu.guild_id],
        attachment_hosts=["127.0.0.1"],
        shard_count=None,
    )
    data["storage"]["dir"] = str(Path(config.storage.dir) / "playground")
    data["storage"]["url"] = None  # its own SQLite file there, never the real bot's database (storage.url)
    data["server"]["enabled"] = False  # a second /metrics server would clash with a real bot's
    return data


@dataclass(frozen=True)
class StartupFailure:
    """Why the bot could not start, worded for the person who can fix it."""

    message: str  # one line: what went wrong
    fix: str  # one line: what to do about it
    log: str  # the end of that start's log ("" when it never ran)


class BotProcess:
    """The bot child process and its restarts; ``status`` is starting, online, restarting or failed."""

    def __init__(
        self,
        config: Config,
        emu: FakeDiscord,
        on_status: Callable[[str], None],
        *,
        config_path: Path | None = None,
    ) -> None:
        self.config = config
        self.emu = emu
        self.on_status = on_status
        self.user_config_path = config_path  # the person's file: watched while the bot cannot start
        self.status = "starting"
        self.failure: StartupFailure | None = None
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self._connected = False
        self._retry = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def directory(self) -> Path:
        return Path(self.config.storage.dir) / "playground"

    @property
    def config_path(self) -> Path:
        return self.directory / "bot.yaml"

    @property
    def log_path(self) -> Path:
        return self.directory / "bot.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.returncode is None else None

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise())

    def connected(self) -> None:
        """The bot logged in to the gateway: it is up, and a later exit is a crash, not a start-up error."""
        self._connected = True
        self._set_status("online")

    def retry(self) -> bool:
        """Start a bot that could not start again (the page's Retry button); False when it was not stopped."""
        if self.status != "failed":
            return False
        self._retry.set()
        return True

    def _set_status(self, status: str) -> None:
        if status != self.status:
            self.status = status
            self.on_status(status)

    def _write_config(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            "# Written by `python -m bot playground` at every start; edit your own config instead.\n"
            + yaml.safe_dump(playground_config(self.config, self.emu), sort_keys=False),
            encoding="utf-8",
        )

    async def _spawn(self) -> asyncio.subprocess.Process:
        env = {**os.environ, "DISCORD_TOKEN": self.emu.token, "PYTHONUNBUFFERED": "1"}
        env.pop("IMAGEBOT__SERVER__ENABLED", None)
        with self.log_path.open("ab") as log_file:
            log_file.write(f"\n{START_MARK} ({time.strftime('%Y-%m-%d %H:%M:%S')}) ===\n".encode())
            log_file.flush()
            return await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "run",
                "--config",
                str(self.config_path),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the playground only; it stops the bot itself
            )

    async def _supervise(self) -> None:
        failures = 0
        while not self._stopping:
            self.starts += 1
            self._connected = False
            self.failure = None
            self._set_status("starting")
            self._write_config()
            self.process = await self._spawn()
            started = time.monotonic()
            code = await self.process.wait()
            if self._stopping:
                break
            if code != 0 and not self._connected:
                self._fail(self._diagnose(code))
                await self._wait_for_fix()
                failures = 0
                continue
            failures = 0 if time.monotonic() - started > STABLE_AFTER else failures + 1
            delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS)) - 1] if failures else RESTART_DELAYS[0]
            print(
                f"playground: the bot exited with code {code}; restarting it in {delay:g} s. "
                f"The end of its log ({self.log_path}):\n{self.tail(8)}",
                flush=True,
            )
            self._set_status("restarting")
            await asyncio.sleep(delay)

    # -- start-up errors -----------------------------------------------------------------------------------------

    def _diagnose(self, code: int) -> StartupFailure:
        """The failed start's own words from its log: the bot logs ``Cannot start: ...`` for what people can fix."""
        log = self.tail(12, this_start=True)
        found = [m.group(1).strip() for m in map(CANNOT_START.search, log.splitlines()) if m]
        where = self.user_config_path or "your config file"
        if found and found[-1].startswith("Cannot load model"):
            fix = (
                f"Set model.id: tiny in {where} (an offline test model whose images are noise), "
                "or another model that can be loaded here."
            )
        else:
            fix = f"Fix it in {where}, then save the file or press Retry."
        if found:
            return StartupFailure(found[-1], fix, log)
        return StartupFailure(f"The bot exited with code {code} before it connected.", fix, log)

    def _fail(self, failure: StartupFailure) -> None:
        self.failure = failure
        saving = f"save {self.user_config_path} or " if self.user_config_path else ""
        detail = "" if CANNOT_START.search(failure.log) else f"\nThe end of its log ({self.log_path}):\n{failure.log}"
        print(
            f"playground: the bot could not start: {failure.message}\n"
            f"playground: to fix it: {failure.fix}\n"
            f"playground: it is not started again until you {saving}press Retry on the page.{detail}",
            flush=True,
        )
        self.status = "failed"
        self.on_status(self.status)  # also when it was failed already: the page shows the new reason

    def _config_stamp(self) -> tuple[int, int] | None:
        if self.user_config_path is None:
            return None
        try:
            stat = self.user_config_path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    async def _wait_for_fix(self) -> None:
        """Until Retry is pressed or the config file changes and still loads."""
        self._retry.clear()
        seen = self._config_stamp()
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._retry.wait(), WATCH_INTERVAL)
            stamp = self._config_stamp()
            if not self._retry.is_set() and stamp == seen:
                continue
            reason = "Retry was pressed" if self._retry.is_set() else f"{self.user_config_path} changed"
            self._retry.clear()
            seen = stamp
            if self._reload():
                print(f"playground: {reason}; starting the bot again.", flush=True)
                return

    def _reload(self) -> bool:
        """Read the person's config file again; a file with problems is a failure of its own."""
        if self.user_config_path is None:
            return True
        try:
            self.config = load_config(self.user_config_path)
        except ConfigError as error:
            fix = f"Correct {self.user_config_path} and save it (python -m bot check --config FILE lists the same)."
            self._fail(StartupFailure("The config file has problems: " + "; ".join(error.problems), fix, ""))
            return False
        return True

    # -- the log and stopping ------------------------------------------------------------------------------------

    def tail(self, lines: int = 20, *, this_start: bool = False) -> str:
        """The end of the bot's log; with ``this_start``, none of the earlier starts' lines."""
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
            if this_start:
                text = text.rpartition(START_MARK)[2].partition("\n")[2]
            return ANSI_COLOUR.sub("", "\n".join(text.splitlines()[-lines:]))
        return ""

    async def stop(self) -> None:
        self._stopping = True
        process = self.process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGTERM)  # the bot finishes or persists its batch, then exits 0
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
