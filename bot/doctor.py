"""``python -m bot doctor``: check a setup end to end before the first start, one ✅/❌ line per check.

``check`` only validates the file; the doctor also tries what the bot will do at start — log in to Discord's REST API
with the token, write to the storage folder, bind the ops port, load each model and the helpers — so a newcomer sees
every problem at once, each with its fix, instead of the first one as a traceback in the bot's log.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp

from bot import database
from bot.config import Config, ConfigError, load_config
from bot.exit_codes import ExitCode

TOKEN_STEPS = """\
  1. Create an application at https://discord.com/developers/applications, open "Bot" and press "Reset Token".
  2. Give the token to the bot:  export DISCORD_TOKEN=...   (or set discord.token in {config})
  3. Invite the bot with the "bot" and "applications.commands" scopes (OAuth2 -> URL Generator)."""
PRIVILEGED_INTENTS = ("members", "presences", "message_content")
MEMORY_SHARE = 0.8
"""The share of the device's memory the weights may take: activations, the VAE decode and CUDA's own context need
the rest."""
GIB = 1024**3


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def __str__(self) -> str:
        line = f"{'✅' if self.ok else '❌'} {self.name}: {self.detail}"
        return line if self.ok else f"{line}\n   fix: {self.fix}"


def passed(name: str, detail: str) -> Check:
    return Check(name, True, detail)


def failed(name: str, detail: str, fix: str) -> Check:
    return Check(name, False, detail, fix)


def doctor(config_path: Path) -> int:
    """Print every check's line as it finishes; the exit code says whether all passed."""
    try:
        config = load_config(config_path)
    except ConfigError as error:
        problems = "\n".join(f"   - {problem}" for problem in error.problems)
        print(failed("config", f"{config_path} has problems:\n{problems}",
                     f"edit {config_path} (README, 'Configuration'); the rest is checked once it loads"))
        return ExitCode.USAGE
    print(passed("config", f"{config_path} is valid"))
    ok = True
    for check in checks(config, config_path):
        print(check, flush=True)
        ok = ok and check.ok
    return ExitCode.OK if ok else ExitCode.FAILURE


def checks(config: Config, config_path: Path) -> Iterator[Check]:
    """The checks after the config, cheapest first (models load last)."""
    yield token_check(config, config_path)
    yield intents_check()
    yield storage_check(config.storage.dir)
    yield database_check(config)
    yield ops_port_check(config)
    yield from model_checks(config)


def token_check(config: Config, config_path: Path) -> Check:
    """A real ``GET /users/@me`` with the token: the one request that says whether Discord accepts it."""
    if not config.token:
        return failed("token", "no Discord bot token is set, so the bot cannot log in",
                      "get one in three steps (README, 'Discord setup'):\n" + TOKEN_STEPS.format(config=config_path))
    api_base = config.discord.api_base
    try:
        status, me = asyncio.run(_get_me(api_base, config.token))
    except (aiohttp.ClientError, TimeoutError) as error:
        return failed("token", f"could not reach {api_base}: {error or type(error).__name__}",
                      "check the network connection (and discord.api_base, if you set it)")
    if status == 401:
        return failed("token", f"{api_base} rejected the token (401 Unauthorized)",
                      "the token is wrong or was reset: press \"Reset Token\" on the application's Bot page and set "
                      "DISCORD_TOKEN to the new one")
    if status != 200:
        return failed("token", f"{api_base}/users/@me answered {status}",
                      "try again later; if it persists, check discord.api_base")
    return passed("token", f"valid: logs in as {me.get('username', '?')} (id {me.get('id', '?')})")


async def _get_me(api_base: str, token: str) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bot {token}"}
    async with (aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http,
                http.get(f"{api_base}/users/@me", headers=headers) as response):
        return response.status, (await response.json() if response.status == 200 else {})


def intents_check() -> Check:
    """Privileged intents must be switched on in the Developer Portal, or Discord closes the gateway (4014)."""
    from bot.client import gateway_intents

    intents = gateway_intents()
    asked = sorted(name for name, value in intents if value)
    privileged = [name for name in PRIVILEGED_INTENTS if getattr(intents, name)]
    if privileged:
        return failed("intents", f"the bot asks for the privileged intents {', '.join(privileged)}",
                      "switch them on under Bot -> Privileged Gateway Intents in the Developer Portal")
    return passed("intents", f"{', '.join(asked)} only: none is privileged, so nothing to switch on in the "
                             "Developer Portal")


def storage_check(directory: Path) -> Check:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".doctor-"):
            pass
    except OSError as error:
        return failed("storage", f"storage.dir {directory} is not writable: {error.strerror or error}",
                      "create the folder and give the bot's user write access to it, or point storage.dir at one "
                      "that it can write")
    return passed("storage", f"{directory.resolve()} is writable")


def database_check(config: Config) -> Check:
    """Open the database the bot will use (``storage.url``) and read its schema version, changing nothing: a
    PostgreSQL server that is down, refuses the login or has no such database is found here, not at the first start
    (a SQLite file not there yet is created empty, as the bot would)."""
    from bot.storage import Storage

    url = Storage.from_config(config.storage).url
    try:
        where, version = asyncio.run(_schema_version(url))
    except (*database.ERRORS, OSError) as error:
        return failed("database", f"storage.url cannot be opened: {type(error).__name__}: {error}",
                      "start the database server, create the database and its user, and check the host, port, user "
                      "and password in storage.url" if url.startswith("postgres") else
                      "check that the SQLite file in storage.url (or storage.dir) is one the bot can open and write")
    found = f"schema version {version}" if version else "empty: the bot creates its tables at start"
    return passed("database", f"{where} opens ({found})")


async def _schema_version(url: str) -> tuple[str, int]:
    db = await asyncio.wait_for(database.connect(url), timeout=15)
    try:
        await db.one("SELECT 1")
        try:
            row = await db.one("SELECT version FROM schema_version")
        except database.ERRORS:  # no such table: a database the bot has not used yet
            row = None
        return db.where, row[0] if row else 0
    finally:
        await db.close()


def ops_port_check(config: Config) -> Check:
    server = config.server
    if not server.enabled:
        return passed("ops port", "the ops server is off (server.enabled: false), so /healthz and /metrics are too")
    if server.port == 0:
        return passed("ops port", "port 0: a free port is picked at start (written to storage.dir/server.port)")
    try:
        socket.create_server((server.host, server.port)).close()
    except OSError as error:
        return failed("ops port", f"{server.host}:{server.port} is not free: {error.strerror or error}",
                      "stop what listens there (another bot?), or set server.port to a free port (0 picks one)")
    return passed("ops port", f"{server.host}:{server.port} is free")


def model_checks(config: Config) -> Iterator[Check]:
    """Load each configured model the way the bot does (without the warm-up), then the upscaler, captioner and safety
    classifiers beside the default model, and weigh the largest against the device's memory."""
    from bot.backends import engine_settings
    from models.engine import load_engine
    from models.plan import ModelLoadError
    from models.styles import StyleBook

    styles = StyleBook(config.styles, config.loras)
    largest: tuple[int, str, Any] | None = None  # weights in bytes, whose, the device
    families: set[str] = set()  # of the models that loaded
    for index, entry in enumerate(config.catalogue):
        settings = replace(engine_settings(config, entry.name), upscaler=None, captioner=None, safety=None,
                           warmup=False)
        try:
            engine = load_engine(settings, styles)
        except ModelLoadError as error:
            yield failed(f"model {entry.name}", str(error),
                         "set the model's id to a diffusers pipeline: a Hugging Face id (downloaded on first use) or "
                         "a folder with model_index.json; `python -m bot tiny-model DIR` writes a tiny one to try")
            continue
        weights = engine.weight_bytes()
        families.add(engine.defaults.family)
        dtype = str(engine.dtype).removeprefix("torch.")
        yield passed(f"model {entry.name}", f"loads: {engine.model.label} ({engine.model.name}), "
                                            f"{gib(weights)} of weights as {dtype} on {engine.device}")
        if index == 0:
            for check, helper_bytes in helper_checks(config, engine.device, engine.dtype):
                yield check
                weights += helper_bytes
        if largest is None or weights > largest[0]:
            largest = (weights, entry.name, engine.device)
        del engine
        gc.collect()
    if largest is not None:
        yield memory_check(*largest)
    yield from lora_checks(config, families)


def lora_checks(config: Config, families: set[str]) -> Iterator[Check]:
    """Each LoRA against the families of the models that loaded: one that fits none of them can never be used."""
    for lora in config.loras:
        fits = sorted(families.intersection(lora.families))
        if fits:
            yield passed(f"lora {lora.name}", f"fits the {', '.join(fits)} model(s)")
        elif families:
            yield failed(f"lora {lora.name}", f"made for {', '.join(lora.families)}; the models are "
                                              f"{', '.join(sorted(families))}",
                         "list the family of a configured model under the LoRA's families (if it was trained for "
                         "one), or remove it")


def helper_checks(config: Config, device: Any, dtype: Any) -> Iterator[tuple[Check, int]]:
    """The upscaler and the captioner where configured, each with the bytes of its weights (0 when it failed)."""
    from models.plan import ModelLoadError

    if config.upscaler.model:
        from models.upscaler import Upscaler

        try:
            upscaler = Upscaler.load(config.upscaler.model, device, dtype, tile=config.upscaler.tile)
        except ModelLoadError as error:
            yield failed("upscaler", str(error), "set upscaler.model to a Real-ESRGAN-class .pth or .safetensors file "
                                                 "that spandrel knows, or remove it"), 0
        else:
            yield passed("upscaler", f"loads: {upscaler.name}, x{upscaler.scale}"), upscaler.weight_bytes()
    if config.describe.model:
        from models.captioner import Captioner

        try:
            captioner = Captioner.load(config.describe.model, device, dtype, cache_dir=config.storage.dir,
                                       prompt=config.describe.prompt)
        except ModelLoadError as error:
            yield failed("captioner", str(error), "set describe.model to an image-to-text model (a BLIP or "
                                                  "Florence-2 Hub id or folder), or remove it"), 0
        else:
            yield passed("captioner", f"loads: {captioner.name}"), captioner.weight_bytes()
    yield from safety_checks(config, device, dtype)


def safety_checks(config: Config, device: Any, dtype: Any) -> Iterator[tuple[Check, int]]:
    """The safety classifiers where configured: each must load and have the unsafe label (``models.safety``)."""
    from models.plan import ModelLoadError
    from models.safety import IMAGE_KEY, PROMPT_KEY, Classifier, ImageChecker, PromptChecker

    safety = config.safety
    wanted: list[tuple[str, str, type[Classifier]]] = []
    if safety.model:
        wanted.append((IMAGE_KEY, safety.model, ImageChecker))
    if safety.prompt_model:
        wanted.append((PROMPT_KEY, safety.prompt_model, PromptChecker))
    for key, model, kind in wanted:
        try:
            classifier = kind.load(model, key, safety.unsafe_label, device, dtype, cache_dir=config.storage.dir)
        except ModelLoadError as error:
            yield failed(key, str(error), f"set {key} to a classifier (a Hub id or folder) whose labels include "
                                          f"'{safety.unsafe_label}', or set safety.unsafe_label to its unsafe label"), 0
            continue
        label = classifier.model.config.id2label[classifier.unsafe]
        threshold = safety.threshold if key == IMAGE_KEY else safety.prompt_threshold
        yield passed(key, f"loads: {classifier.name}, flags '{label}' at {threshold:g}"), classifier.weight_bytes()


def memory_check(weights: int, name: str, device: Any) -> Check:
    total, where = device_memory(device)
    detail = f"{name} with its helpers: {gib(weights)} of weights, {gib(total)} on {where}"
    if weights > MEMORY_SHARE * total:
        return failed("memory", detail + f" (over {MEMORY_SHARE:.0%}, which leaves too little to run it)",
                      "use model.dtype float16 or bfloat16, a smaller model, or a device with more memory")
    return passed("memory", detail)


def gib(size: int) -> str:
    return f"{size / GIB:.2f} GiB" if size < 10 * GIB else f"{size / GIB:.0f} GiB"


def device_memory(device: Any) -> tuple[int, str]:
    """The memory the model runs in, and what it is: the GPU's own, or the host's (CPU, and MPS's shared memory)."""
    if device.type == "cuda":
        import torch

        properties = torch.cuda.get_device_properties(device)
        return properties.total_memory, f"{device} ({properties.name})"
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), f"{device.type} (host memory)"
