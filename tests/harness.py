"""The real bot as a separate process against the local Discord emulator, for end-to-end tests and benchmarks.

``BotUnderTest`` writes a config pointing ``discord.api_base`` at a ``FakeDiscord``, starts
``python -m bot run`` exactly as an operator would (token in ``DISCORD_TOKEN``), and can stop it
gracefully (SIGTERM), kill it (SIGKILL) and start it again on the same storage folder.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from fakediscord import FakeDiscord

REPO = Path(__file__).resolve().parent.parent
TEST_STYLES = [
    {"name": "none", "description": "Your prompt exactly as written"},
    {"name": "anime", "description": "Clean anime key visual", "prompt": "anime key visual of {prompt}"},
    {"name": "watercolor", "description": "Soft watercolor painting", "prompt": "watercolor painting of {prompt}"},
    {"name": "spicy", "description": "Age-restricted test style", "prompt": "{prompt}, spicy", "nsfw": True},
]


def bot_config(emu: FakeDiscord, model_dir: Path, data_dir: Path, **overrides: Any) -> dict[str, Any]:
    """A config for the tiny model against ``emu``; ``overrides`` replace whole top-level sections."""
    config: dict[str, Any] = {
        "discord": {"api_base": emu.api_base, "attachment_hosts": ["127.0.0.1"], "guild_ids": [emu.guild_id]},
        "model": {"id": str(model_dir), "steps": 4, "warmup": False, "max_batch": 4},
        "storage": {"dir": str(data_dir)},
        "queue": {"rate_per_minute": 600, "burst": 50, "max_pending_per_user": 50, "max_queue": 500},
        "logging": {"level": "INFO"},
        "styles": TEST_STYLES,
    }
    config.update(overrides)
    return config


class BotUnderTest:
    """One bot process; ``start`` again after ``kill``/``stop`` reuses the same config and storage."""

    def __init__(self, emu: FakeDiscord, config: dict[str, Any], workdir: Path) -> None:
        self.emu = emu
        self.config = config
        self.workdir = workdir
        self.config_path = workdir / "bot.yaml"
        self.log_path = workdir / "bot.log"
        self.process: subprocess.Popen[bytes] | None = None

    def write_config(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False), encoding="utf-8")

    async def start(self, *, ready_timeout: float = 90.0) -> None:
        """Start the process and wait until it is connected (and its commands are synced)."""
        self.write_config()
        identified = self._identifies()
        env = {**os.environ, "DISCORD_TOKEN": self.emu.token, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        env.pop("IMAGEBOT__SERVER__ENABLED", None)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--config", str(self.config_path)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        # A restarted bot must IDENTIFY anew: the killed process's connection may not be noticed as closed yet.
        ready = asyncio.create_task(
            self.emu.wait_until(lambda: self._identifies() > identified, ready_timeout, "the bot did not connect")
        )
        while not ready.done():
            if self.process.poll() is not None:
                ready.cancel()
                raise RuntimeError(f"the bot exited with {self.process.returncode}:\n{self.log()}")
            await asyncio.sleep(0.05)
        ready.result()
        await self.emu.wait_until_ready(ready_timeout, commands=False)

    def _identifies(self) -> int:
        return sum(entry.get("op") == "identify" for entry in self.emu.gateway_log)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no chance to save anything, as in a crash or an OOM kill."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """A graceful stop; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return await asyncio.to_thread(self.process.wait, timeout)

    async def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                await self.stop(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
