"""Shared fixtures: everything runs offline against the tiny random pipeline the project builds itself."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random pipeline, saved once per test session and loaded by tests through from_pretrained."""
    from models.tiny import write_tiny_pipeline

    return write_tiny_pipeline(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture
async def emulator():
    """A fresh local Discord for one test."""
    from fakediscord import FakeDiscord

    async with FakeDiscord() as emu:
        yield emu


@pytest.fixture
async def running_bot(emulator, tiny_model_dir, tmp_path):
    """The real bot process connected to ``emulator``, on the tiny model; stopped after the test.

    Tests that need other settings build their own ``BotUnderTest`` with ``bot_config(..., **overrides)``.
    """
    from tests.harness import BotUnderTest, bot_config

    bot = BotUnderTest(emulator, bot_config(emulator, tiny_model_dir, tmp_path / "data"), tmp_path)
    await bot.start()
    yield bot
    await bot.close()
    if bot.process is not None and bot.process.returncode not in (0, None):
        print(bot.log())
