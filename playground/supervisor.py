"""The bot behind the playground: ``python -m bot run`` as a child process against the emulator, kept running.

Its config is derived from the person's own (``playground_config``): the same model, styles, queue and moderation,
with ``discord.api_base`` pointed at the emulator and its own storage folder ``<storage.dir>/playground`` so history
survives restarts. If the bot process dies it is started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bot.config import Config

if TYPE_CHECKING:
    from fakediscord import FakeDiscord

RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0)  # between restarts of a bot that keeps dying; reset after STABLE_AFTER
STABLE_AFTER = 60.0
STOP_TIMEOUT = 30.0


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
    data["server"]["enabled"] = False  # a second /metrics server would clash with a real bot's
    return data


class BotProcess:
    """``python -m bot run`` against the emulator, started again whenever it exits (until ``stop``)."""

    def __init__(self, config: dict[str, Any], token: str, on_status) -> None:
        self.config = config
        self.token = token
        self.on_status = on_status
        self.directory = Path(config["storage"]["dir"])
        self.config_path = self.directory / "bot.yaml"
        self.log_path = self.directory / "bot.log"
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.returncode is None else None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            "# Written by `python -m bot playground` at every start; edit your own config instead.\n"
            + yaml.safe_dump(self.config, sort_keys=False),
            encoding="utf-8",
        )
        self._task = asyncio.create_task(self._supervise())

    async def _spawn(self) -> asyncio.subprocess.Process:
        env = {**os.environ, "DISCORD_TOKEN": self.token, "PYTHONUNBUFFERED": "1"}
        env.pop("IMAGEBOT__SERVER__ENABLED", None)
        with self.log_path.open("ab") as log_file:
            log_file.write(f"\n=== playground: starting the bot ({time.strftime('%Y-%m-%d %H:%M:%S')}) ===\n".encode())
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
            self.on_status("starting")
            self.process = await self._spawn()
            started = time.monotonic()
            code = await self.process.wait()
            if self._stopping:
                break
            failures = 0 if time.monotonic() - started > STABLE_AFTER else failures + 1
            delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS)) - 1] if failures else RESTART_DELAYS[0]
            print(
                f"playground: the bot exited with code {code}; restarting it in {delay:g} s. "
                f"The end of its log ({self.log_path}):\n{self.tail(8)}",
                flush=True,
            )
            self.on_status("restarting")
            await asyncio.sleep(delay)

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
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
