"""Scale-out: the engine on a Ray Serve deployment, one application per model, replicas wherever the GPUs are.

The bot's queue stays the single place for fairness and rate limits; this backend only carries its batches to the
replicas and the answers back:

- Each replica (``EngineReplica``) loads the model with ``models.engine.load_engine`` from the ``EngineSettings`` the
  bot made (so ``model.*`` means what it means locally; the bot's config, and its token, never travel) and runs
  ``Engine.generate`` on one worker thread, exactly like ``LocalBackend``: same batching, styles, seeds, images.
- ``run()`` is one streaming call: the replica yields ``ProgressEvent``s (with previews) while the engine works, then
  one ``ResultsEvent``. Cancellation flows the other way through a tiny ``_CancelBoard`` actor that the bot writes
  and the replica polls, because a streaming call has no way back in.
- ``plan()`` is local and pure (``resolve_plan`` with the defaults a replica reported at connect): a bad request costs
  no round trip.
- ``capacity()`` is learned from Serve: enough batches in flight to keep each live replica at
  ``target_ongoing_requests`` (one running, the rest waiting on the replica), plus one more while the deployment may
  still grow, so Serve's autoscaler — which only sees what is sent — sees the demand. With ``target_ongoing_requests:
  1`` and ``min_replicas == max_replicas`` that is exactly replicas x ``batch_size``.
- Faults: a replica that dies mid-batch -> the batch is retried once (Serve routes it to a live replica), then each
  plan fails with ``ServerLost``. A cluster that cannot be reached -> ``BackendUnavailable``; the queue keeps the jobs
  and polls ``capacity()``, which reconnects (and redeploys if the cluster came back empty).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import pickle
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, replace
from typing import Any

import ray
from ray import serve
from ray.exceptions import RayActorError, RaySystemError

from models.backend import BackendUnavailable, ModelStatus, ServerLost
from models.engine import load_engine
from models.families import BY_NAME
from models.plan import (
    CancelCheck,
    GenerationRequest,
    ModelDefaults,
    Plan,
    Progress,
    ProgressCallback,
    Results,
    StartupError,
    resolve_model,
    resolve_plan,
)
from models.settings import EngineSettings, RaySettings
from models.styles import Style, StyleBook
from models.worker_thread import engine_executor

__all__ = ["RayBackend", "RayRouter", "RayStartupError", "app_name"]

log = logging.getLogger(__name__)

NAMESPACE = "imagebot"
DEPLOYMENT = "EngineReplica"
CAPACITY_TTL_S = 1.5
"""How long capacity() trusts its last look at Serve: the queue asks before every batch."""
CONNECT_TIMEOUT_S = 5.0
"""How long connect() waits for the cluster's port to answer."""
CANCEL_POLL_S = 0.25
"""How often a replica asks the cancel board about its plans (a job stops within this plus one step)."""
DEPLOY_TIMEOUT_S = 600.0
"""How long connect() waits for the replicas to load the model (a large model on a cold node takes minutes)."""


class RayStartupError(StartupError):
    """The cluster or the deployment cannot be used at start; one line saying which address and why."""


def app_name(model_id: str) -> str:
    """The Serve application for a model: readable, and unique per id (a slug alone could collide)."""
    slug = re.sub(r"[^a-z0-9]+", "-", model_id.lower()).strip("-")[-40:] or "model"
    return f"imagebot-{slug}-{hashlib.sha1(model_id.encode()).hexdigest()[:8]}"


def fingerprint(settings: EngineSettings, ray_settings: RaySettings) -> str:
    """Everything a replica's behaviour depends on; a running app with another fingerprint is redeployed.

    Styles are not in it: plans are made on the bot and carry their prompts and LoRA, so editing a style needs no
    model reload. Nor is the default negative: plans carry it too.
    """
    relevant = {"model": asdict(replace(settings, default_negative="")), "ray": asdict(ray_settings)}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ModelInfo:
    """What a replica tells the bot at connect: enough to plan locally."""

    model_id: str
    defaults: ModelDefaults
    max_count: int
    fingerprint: str


@dataclass(frozen=True)
class ProgressEvent:
    """A replica's progress on one plan, streamed while the engine works."""

    request_id: str
    progress: Progress


@dataclass(frozen=True)
class ResultsEvent:
    """The last event of a stream: every plan's result, and which replica made them."""

    replica: str
    results: Results


# --------------------------------------------------------------------------------------------------- cluster side


@ray.remote(num_cpus=0)
class _CancelBoard:
    """Request ids the bot has cancelled; replicas poll it for the plans they are running."""

    def __init__(self) -> None:
        self._ids: set[str] = set()

    def cancel(self, ids: list[str]) -> None:
        self._ids.update(ids)

    def which(self, ids: list[str]) -> list[str]:
        return [request_id for request_id in ids if request_id in self._ids]

    def forget(self, ids: list[str]) -> None:
        self._ids.difference_update(ids)


class EngineReplica:
    """One replica: the engine on one worker thread, streaming progress and results back to the bot."""

    def __init__(self, settings: EngineSettings, batch_size: int, styles: list[Style], fingerprint: str) -> None:
        # the images one replica puts in one pipeline call
        self.engine = load_engine(replace(settings, max_batch=batch_size), StyleBook(styles))
        self.fingerprint = fingerprint
        self.replica = serve.get_replica_context().replica_id.to_full_id_str()  # also its actor's name
        self._executor = engine_executor()

    def info(self) -> ModelInfo:
        engine = self.engine
        return ModelInfo(engine.model_id, engine.defaults, engine.max_count, self.fingerprint)

    async def generate(self, plans: list[Plan], board: Any) -> AsyncIterator[ProgressEvent | ResultsEvent]:
        """Yield a ProgressEvent for each step report while the engine runs, then one ResultsEvent.

        If the bot cancels this stream (its batch was abandoned), every plan is cancelled at the engine's next step.
        """
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[ProgressEvent] = asyncio.Queue()
        cancelled: set[str] = set()
        abandon = threading.Event()

        def on_progress(request_id: str, progress: Progress) -> None:
            loop.call_soon_threadsafe(events.put_nowait, ProgressEvent(request_id, progress))

        def is_cancelled(request_id: str) -> bool:
            return abandon.is_set() or request_id in cancelled

        work = loop.run_in_executor(self._executor, self.engine.generate, plans, on_progress, is_cancelled)
        poller = asyncio.create_task(self._poll(board, [plan.request_id for plan in plans], cancelled))
        try:
            while True:
                if not events.empty():
                    yield events.get_nowait()
                    continue
                if work.done():
                    break
                waiter = asyncio.ensure_future(events.get())
                done, _ = await asyncio.wait({waiter, work}, return_when=asyncio.FIRST_COMPLETED)
                if waiter in done:
                    yield waiter.result()
                else:
                    waiter.cancel()
            yield ResultsEvent(self.replica, [_portable(result) for result in work.result()])
        finally:
            abandon.set()
            poller.cancel()

    @staticmethod
    async def _poll(board: Any, ids: list[str], cancelled: set[str]) -> None:
        while True:
            await asyncio.sleep(CANCEL_POLL_S)
            try:
                cancelled.update(await board.which.remote(ids))
            except Exception:  # the bot went away: its board with it; the stream is cancelled next
                log.debug("cancel board unreachable", exc_info=True)


def _portable(result: Any) -> Any:
    """An exception that will not unpickle on the bot (a library's own type) travels as a RuntimeError."""
    if isinstance(result, BaseException):
        try:
            pickle.loads(pickle.dumps(result))
        except Exception:
            return RuntimeError(f"{type(result).__name__}: {result}")
    return result


# --------------------------------------------------------------------------------------------------- bot side


class RayBackend:
    """The Backend protocol over a Serve application; build it with ``await RayBackend.connect(...)``."""

    def __init__(self, settings: EngineSettings, ray_settings: RaySettings, styles: StyleBook, handle: Any,
                 info: ModelInfo) -> None:
        self.settings = settings
        self.ray = ray_settings
        self.styles = styles
        self.app = app_name(settings.model_id)
        self.max_batch = ray_settings.batch_size
        self.default_negative = settings.default_negative
        self.replica_batches: Counter[str] = Counter()
        """Batches finished per replica (its actor name): which replicas did the work."""
        self.replicas_lost = 0
        """Batches whose replica stopped under them (each retried once)."""
        self._handle = handle
        self._info = info
        self._board: Any = None
        self._capacity = (0.0, self.max_batch)  # (when learned, images)
        self._lock = asyncio.Lock()

    # --- start and stop -------------------------------------------------------------------------------------------

    @classmethod
    async def connect(cls, settings: EngineSettings, ray_settings: RaySettings, styles: StyleBook) -> RayBackend:
        """Connect to ``engine.ray.address`` (or start Ray here), deploy or reuse the model's app, learn its defaults.

        Raises RayStartupError (one line: the address and why) when the cluster cannot be reached or the replicas
        do not come up.
        """
        await asyncio.to_thread(_init_ray, ray_settings)
        handle, info = await asyncio.to_thread(_deploy, settings, ray_settings, list(styles))
        return cls(settings, ray_settings, styles, handle, info)

    async def start(self) -> None:
        if self._board is None:
            self._board = _CancelBoard.remote()

    async def close(self) -> None:
        """Forget this process's board; the deployment keeps running for the next start (or other bots)."""
        board, self._board = self._board, None
        if board is not None:
            try:
                ray.kill(board)
            except Exception:
                log.debug("cancel board already gone", exc_info=True)

    # --- the Backend protocol ---------------------------------------------------------------------------------------

    @property
    def defaults(self) -> ModelDefaults:
        """The replicas' (as reported at connect, or at the last redeploy)."""
        return self._info.defaults

    def plan(self, request: GenerationRequest) -> Plan:
        info, name = self._info, self.settings.label
        resolve_model(request, self.styles, [name])
        return resolve_plan(request, info.defaults, self.styles, self.default_negative, name, max_count=info.max_count)

    def set_default_negative(self, negative: str) -> None:
        """Plans are made here, on the bot, so the replicas need no word of it."""
        self.default_negative = negative

    def models(self) -> list[ModelStatus]:
        family = BY_NAME[self._info.defaults.family]
        return [ModelStatus(self.settings.label, family.label, family.design, "replicas", 0, 0, 0.0,
                            references=self._info.defaults.references,
                            inpaint=self._info.defaults.inpaint, img2img=self._info.defaults.img2img,
                            instruct_edit=self._info.defaults.instruct_edit,
                            max_input_images=self._info.defaults.max_input_images,
                            video=self._info.defaults.video, loop=self._info.defaults.loop,
                            unloaded=self._info.defaults.unloaded, speed=self.settings.speed.describe(),
                            controls=tuple(kind for kind, _ in self._info.defaults.controls),
                            family_name=self._info.defaults.family)]

    def warm_model(self) -> str | None:
        """None: the model has replicas of its own, so no batch waits for a load."""
        return None

    def switch_cost(self, model: str) -> float:
        return 0.0

    async def capacity(self) -> int:
        """Images that may be in flight: see the module docstring. Raises BackendUnavailable if Ray is gone."""
        learned, images = self._capacity
        if time.monotonic() - learned < CAPACITY_TTL_S:
            return images
        async with self._lock:
            try:
                running = await asyncio.to_thread(self._running_replicas)
            except Exception as error:
                raise BackendUnavailable(f"Ray at {_address(self.ray)} does not answer: {_reason(error)}") from None
            batches = math.ceil(running * self.ray.target_ongoing_requests)
            if running < self.ray.max_replicas:
                batches += 1
            images = max(1, batches) * self.max_batch
            self._capacity = (time.monotonic(), images)
            return images

    async def run(self, plans: list[Plan], on_progress: ProgressCallback | None = None,
                  is_cancelled: CancelCheck | None = None) -> Results:
        """Run plans on a replica; a replica dying mid-batch is retried once on another, then fails as ServerLost."""
        check = is_cancelled or (lambda _id: False)
        if self._board is None:
            await self.start()
        for attempt in (1, 2):
            try:
                return await self._run_once(plans, on_progress, check)
            except RayActorError as error:
                if not await asyncio.to_thread(_cluster_alive):
                    raise BackendUnavailable(f"Ray at {_address(self.ray)} went away: {_reason(error)}") from None
                self._capacity = (0.0, self._capacity[1])  # look again: a replica is gone
                self.replicas_lost += 1
                log.warning("a replica stopped during a batch of %d plans (attempt %d): %s", len(plans), attempt,
                            _reason(error))
            except (ConnectionError, RaySystemError) as error:
                raise BackendUnavailable(f"Ray at {_address(self.ray)} went away: {_reason(error)}") from None
        return [ServerLost() for _ in plans]

    async def _run_once(self, plans: list[Plan], on_progress: ProgressCallback | None, check: CancelCheck) -> Results:
        ids = [plan.request_id for plan in plans]
        stream = self._handle.options(stream=True).generate.remote(plans, self._board)
        watcher = asyncio.create_task(self._watch_cancels(ids, check))
        try:
            async for event in stream:
                if isinstance(event, ProgressEvent):
                    if on_progress is not None:
                        on_progress(event.request_id, event.progress)
                else:
                    self.replica_batches[event.replica] += 1
                    return event.results
            raise RuntimeError("the replica ended the stream without results")
        except asyncio.CancelledError:
            stream.cancel()  # raises in the replica, which stops the engine at its next step
            raise
        finally:
            watcher.cancel()
            try:
                self._board.forget.remote(ids)
            except Exception:  # Ray is gone: the error that matters is already on its way up
                log.debug("cannot clear the cancel board", exc_info=True)

    async def _watch_cancels(self, ids: list[str], check: CancelCheck) -> None:
        """Copy the queue's cancellations (cancel button, timeouts) to the board the replica polls."""
        sent: set[str] = set()
        while len(sent) < len(ids):
            new = [request_id for request_id in ids if request_id not in sent and check(request_id)]
            if new:
                sent.update(new)
                self._board.cancel.remote(new)
            await asyncio.sleep(CANCEL_POLL_S)

    def _running_replicas(self) -> int:
        """Live replicas of this model's deployment; reconnects and redeploys after an outage."""
        if not ray.is_initialized():
            _init_ray(self.ray)
        status = serve.status().applications.get(self.app)
        if status is None:  # the cluster came back without our app
            self._handle, self._info = _deploy(self.settings, self.ray, list(self.styles))
            status = serve.status().applications[self.app]
        deployment = status.deployments.get(DEPLOYMENT)
        return 0 if deployment is None else int(deployment.replica_states.get("RUNNING", 0))


class RayRouter:
    """Several models on Ray: one Serve application per model (each a ``RayBackend`` with its own replicas and
    autoscaling), and plans routed to their model's application.

    Each replica holds one model, so the memory budget has nothing to move there; the bot's queue still orders the
    work fairly across people, and ``warm_model`` is None so it never holds a model's batches back for another.
    """

    def __init__(self, backends: dict[str, RayBackend], styles: StyleBook) -> None:
        self.backends = backends  # the default first
        self.styles = styles
        self.max_batch = next(iter(backends.values())).max_batch

    @classmethod
    async def connect(cls, settings: list[EngineSettings], ray_settings: RaySettings, styles: StyleBook) -> RayRouter:
        """Deploy or reuse each model's app (``settings[0]`` is the default), one after another."""
        backends = {entry.label: await RayBackend.connect(entry, ray_settings, styles) for entry in settings}
        return cls(backends, styles)

    async def start(self) -> None:
        for backend in self.backends.values():
            await backend.start()

    async def close(self) -> None:
        for backend in self.backends.values():
            await backend.close()

    @property
    def defaults(self) -> ModelDefaults:
        return next(iter(self.backends.values())).defaults

    def plan(self, request: GenerationRequest) -> Plan:
        name = resolve_model(request, self.styles, list(self.backends))
        return self.backends[name].plan(replace(request, model=name))

    def set_default_negative(self, negative: str) -> None:
        for backend in self.backends.values():
            backend.set_default_negative(negative)

    def models(self) -> list[ModelStatus]:
        return [status for backend in self.backends.values() for status in backend.models()]

    def warm_model(self) -> str | None:
        return None

    def switch_cost(self, model: str) -> float:
        return 0.0

    async def capacity(self) -> int:
        """The sum over the models' apps: the queue keeps that many images in flight, each batch on its own app."""
        return sum(await asyncio.gather(*(backend.capacity() for backend in self.backends.values())))

    async def run(self, plans: list[Plan], on_progress: ProgressCallback | None = None,
                  is_cancelled: CancelCheck | None = None) -> Results:
        """The queue's batches never mix models (the model is in the batch key): the batch goes to its model's app."""
        return await self.backends[plans[0].model].run(plans, on_progress, is_cancelled)


# --------------------------------------------------------------------------------------------------- helpers


def _address(ray_settings: RaySettings) -> str:
    return ray_settings.address or "a local Ray instance"


def _reason(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:300]}" if lines else type(error).__name__


def _cluster_alive() -> bool:
    try:
        return ray.is_initialized() and bool(ray.nodes())
    except Exception:
        return False


def _init_ray(ray_settings: RaySettings) -> None:
    """Connect (``ray://host:10001``, ``host:6379``, ``auto``) or, with no address, start a small local instance."""
    address = ray_settings.address
    if address is not None and address != "auto":
        _check_reachable(address)
    if ray.is_initialized():
        return
    options: dict[str, Any] = dict(namespace=NAMESPACE, ignore_reinit_error=True, log_to_driver=False)
    if address is None:
        # Logical CPUs: one per replica (Serve's default) plus one for Serve's controller and the cancel board.
        options.update(num_cpus=ray_settings.max_replicas + 1, include_dashboard=False)
    try:
        ray.init(address=address, **options)
    except Exception as error:
        raise RayStartupError(f"Cannot connect to Ray at {_address(ray_settings)}: {_reason(error)}") from None


def _check_reachable(address: str) -> None:
    """Fail in seconds, not minutes: ray.init waits 30 s (ray://) or forever (GCS) for an address nobody answers."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise RayStartupError(f"Cannot connect to Ray at {address}: expected ray://HOST:PORT, HOST:PORT or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise RayStartupError(f"Cannot connect to Ray at {address}: {error.strerror or error}") from None


def _deploy(settings: EngineSettings, ray_settings: RaySettings, styles: list[Style]) -> tuple[Any, ModelInfo]:
    """Reuse the model's app when it runs with the same fingerprint; otherwise (re)deploy it and wait for it."""
    name, wanted = app_name(settings.model_id), fingerprint(settings, ray_settings)
    try:
        serve.start(proxy_location="Disabled")  # the bot talks through handles; no HTTP proxy
        if name in serve.status().applications:
            handle = serve.get_app_handle(name)
            info = handle.info.remote().result(timeout_s=DEPLOY_TIMEOUT_S)
            if info.fingerprint == wanted:
                log.info("reusing Ray Serve app %s", name)
                return handle, info
            log.info("redeploying Ray Serve app %s: model or settings changed", name)
        deployment = serve.deployment(EngineReplica).options(
            name=DEPLOYMENT,
            ray_actor_options={"num_gpus": ray_settings.num_gpus},
            autoscaling_config={
                "min_replicas": ray_settings.min_replicas,
                "initial_replicas": max(1, ray_settings.min_replicas),  # one loads now, so the defaults are known
                "max_replicas": ray_settings.max_replicas,
                "target_ongoing_requests": ray_settings.target_ongoing_requests,
            },
            max_ongoing_requests=max(1, math.ceil(ray_settings.target_ongoing_requests)),
        )
        replica = deployment.bind(settings, ray_settings.batch_size, styles, wanted)
        handle = serve.run(replica, name=name, route_prefix=None)
        info = handle.info.remote().result(timeout_s=DEPLOY_TIMEOUT_S)
    except Exception as error:
        raise RayStartupError(f"Cannot start the model on Ray at {_address(ray_settings)}: {_reason(error)}") from None
    log.info("deployed Ray Serve app %s (%s replicas)", name,
             f"{ray_settings.min_replicas}-{ray_settings.max_replicas}")
    return handle, info
