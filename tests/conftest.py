"""Shared fixtures: everything runs offline against the tiny random pipeline the project builds itself."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.postgres import Cluster

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Each family's tiny random model (or the tiny upscaler file), written once per test session on first use and
    loaded by tests through from_pretrained (spandrel) like a real one. Tests read them, never change them."""
    from models.tiny import write_tiny_pipeline

    written: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in written:
            written[family] = write_tiny_pipeline(tmp_path_factory.mktemp(f"tiny-{family}"), family)
        return written[family]

    return get


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_model: Callable[[str], Path]) -> Path:
    """The tiny Stable Diffusion pipeline, the model most tests run on."""
    return tiny_model("sd")


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3 server (moto's, ``tests.s3``) for the session, with dummy credentials in the environment."""
    from tests.s3 import moto_server

    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """A throwaway PostgreSQL server for this test process (one per xdist worker); skips where none can start."""
    from tests.postgres import Cluster, missing

    if reason := missing():
        pytest.skip(reason)
    with Cluster.started() as cluster:
        yield cluster


DATABASES = ("sqlite", "postgresql")
"""The engines a test parametrized with ``database_url`` runs on."""


def _database(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest) -> str | None:
    """The database a test's Storage (or bot) uses, once per engine: None is the default SQLite file in its folder,
    else a fresh database of its own on the session's PostgreSQL server."""
    return _database(request)


@pytest.fixture(scope="module", params=DATABASES)
def module_database_url(request: pytest.FixtureRequest) -> str | None:
    """``database_url`` for an end-to-end module whose one bot serves all its tests: the module runs once per
    engine, each time with a bot of its own (on the module's emulator)."""
    return _database(request)


@pytest.fixture
async def emulator():
    """A fresh local Discord for one test."""
    from fakediscord import FakeDiscord

    async with FakeDiscord() as emu:
        yield emu


@pytest.fixture
async def running_bot(emulator, tiny_model_dir, tmp_path, database_url):
    """The real bot process connected to ``emulator``, on the tiny model; stopped after the test. On each database
    engine (``database_url``): a test that takes it runs twice.

    Tests that need other settings build their own ``BotUnderTest`` with ``bot_config(..., **overrides)``.
    """
    from tests.harness import started_bot

    async with started_bot(emulator, tiny_model_dir, tmp_path, database_url=database_url) as bot:
        yield bot
    if bot.process is not None and bot.process.returncode not in (0, None):
        print(bot.log())


@pytest.fixture(scope="module")
async def emu():
    """One local Discord for a whole end-to-end module, whose ``bot`` fixture starts one bot process against it
    (starting one takes seconds); a module that needs channels or roles in it overrides this fixture."""
    from fakediscord import FakeDiscord

    async with FakeDiscord() as emulator:
        yield emulator


@pytest.fixture(scope="module")
async def database_emu(module_database_url):
    """``emu`` for an end-to-end module that runs on each engine (its ``bot`` takes ``module_database_url``): a local
    Discord of its own for each engine's run, so what one run leaves there is its own."""
    from fakediscord import FakeDiscord

    async with FakeDiscord() as emulator:
        yield emulator


@pytest.fixture
def fresh(emu, bot) -> None:
    """Violations of earlier tests on a module's shared bot are theirs; each test asserts its own at the end.

    Modules with a shared ``emu`` and ``bot`` use it for every test (``pytest.mark.usefixtures("fresh")``).
    """
    emu.take_violations()
