"""Prometheus metrics for the bot, in a registry of their own (never the process-global one).

Where each figure comes from:
- the queue reports batches and finished jobs through the small ``QueueObserver`` interface it is given
  (``batch_started``, ``batch_finished``, ``job_finished``): wait time queued→running by person class (the first of
  ``queue.role_overrides`` the person holds, by its ``name``; ``everyone`` else; ``resumed`` for a job resumed after
  a restart, whose roles were not stored), batch sizes, seconds per image, jobs by outcome;
- Discord API errors and rate limits are counted by an ``aiohttp.TraceConfig`` on discord.py's own HTTP session
  (``http_trace=`` of the client), which also carries every interaction webhook call: each answer with a status of
  400 or more counts under its status, each 429 also as a rate-limit hit, and a request that got no answer at all
  counts as status "connection";
- gauges (queue depth, running jobs, paused, gateway latency, GPU memory, event loop lag) are read when scraped;
  the gateway's also per shard this process runs (label ``shard``: ``discord.shards`` may give it several);
- per model (label ``model``, the configured name): seconds per image and images made from the queue's reports
  (images/s is the rate of the latter: the histogram counts batches), and queue depth,
  loads, switches and whether it is on the device, read from the queue and the backend when scraped.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bot.admission import EVERYONE

if TYPE_CHECKING:
    from discord import ShardInfo

    from bot.service import GenerationService
    from bot.storage import Storage

class Watched(Protocol):
    """The running bot as the metrics and the ops server read it (``bot.client.ImageBot``: typed apart from it, so
    that the bot, which starts them, and they import no loop)."""

    @property
    def generation(self) -> GenerationService | None: ...
    @property
    def storage(self) -> Storage | None: ...
    @property
    def latency(self) -> float: ...
    @property
    def shards(self) -> dict[int, ShardInfo]: ...
    def is_closed(self) -> bool: ...


OUTCOMES = ("done", "failed", "cancelled", "expired", "undeliverable")
"""``undeliverable``: a job counted 'done' when made whose delivery was given up (queue.undeliverable_after_h)."""
WAIT_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)
PER_IMAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class Metrics:
    """Every metric the bot exports; ``render(bot)`` refreshes the gauges and returns the text exposition."""

    def __init__(self, person_classes: Sequence[str] = (EVERYONE,)) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.queue_depth = Gauge("imagebot_queue_depth", "Jobs waiting for their turn", registry=registry)
        self.jobs_running = Gauge("imagebot_jobs_running", "Jobs being generated now", registry=registry)
        self.queue_paused = Gauge("imagebot_queue_paused", "1 while /admin pause holds the queue", registry=registry)
        self.queue_wait = Histogram(
            "imagebot_queue_wait_seconds", "Time from queued to running, per job, by person class",
            ["person_class"], buckets=WAIT_BUCKETS, registry=registry,
        )
        for person_class in person_classes:
            self.queue_wait.labels(person_class)
        self.jobs = Counter("imagebot_jobs", "Finished jobs by outcome", ["outcome"], registry=registry)
        for outcome in OUTCOMES:
            self.jobs.labels(outcome)
        self.seconds_per_image = Histogram(
            "imagebot_generation_seconds_per_image", "Pipeline time of a batch divided by its images",
            buckets=PER_IMAGE_BUCKETS, registry=registry,
        )
        self.batch_images = Histogram(
            "imagebot_batch_images", "Images per batch handed to the engine", buckets=BATCH_BUCKETS, registry=registry
        )
        self.discord_errors = Counter(
            "imagebot_discord_http_errors", "Discord API answers with status >= 400 (or 'connection': no answer)",
            ["status"], registry=registry,
        )
        self.rate_limits = Counter(
            "imagebot_discord_rate_limits", "429 answers from Discord (discord.py waits and retries)",
            registry=registry,
        )
        self.gateway_latency = Gauge(
            "imagebot_gateway_latency_seconds", "Gateway heartbeat round trip (NaN before the first)",
            registry=registry,
        )
        self.gateway_connected = Gauge(
            "imagebot_gateway_connected", "1 while every shard's gateway connection is open", registry=registry
        )
        self.shard_latency = Gauge(
            "imagebot_gateway_shard_latency_seconds", "Gateway heartbeat round trip of each shard this process runs",
            ["shard"], registry=registry,
        )
        self.shard_connected = Gauge(
            "imagebot_gateway_shard_connected", "1 while the shard's gateway connection is open", ["shard"],
            registry=registry,
        )
        self.loop_lag = Gauge(
            "imagebot_event_loop_lag_seconds", "Worst event loop lateness since the previous scrape",
            registry=registry,
        )
        self.loop_lag_samples = Histogram(
            "imagebot_event_loop_lag", "Lateness of a 10 ms sleep on the event loop, seconds", buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.model_seconds_per_image = Histogram(
            "imagebot_model_seconds_per_image", "Pipeline time of a batch divided by its images, per model", ["model"],
            buckets=PER_IMAGE_BUCKETS, registry=registry,
        )
        self.safety_checks = Counter("imagebot_safety_checks", "Pictures the safety check looked at before delivery",
                                     registry=registry)
        self.safety_flags = Counter("imagebot_safety_flags", "Pictures the safety check flagged, by what they got "
                                    "(allow, spoiler, block)", ["action"], registry=registry)
        for action in ("allow", "spoiler", "block"):  # exported at 0 from the start, so rates and shares exist
            self.safety_flags.labels(action=action)
        self.model_images = Counter("imagebot_model_images", "Images made, per model", ["model"], registry=registry)
        self.model_queue_depth = Gauge("imagebot_model_queue_depth", "Jobs waiting, per model", ["model"],
                                       registry=registry)
        self.model_loads = Gauge("imagebot_model_loads", "Times the model was put on the device since start",
                                 ["model"], registry=registry)
        self.model_switches = Gauge("imagebot_model_switches", "Batches on the model right after another model's",
                                    ["model"], registry=registry)
        self.model_on_device = Gauge("imagebot_model_on_device", "1 while the model's weights are on the device",
                                     ["model"], registry=registry)
        self.gpu_memory: Gauge | None = None  # registered on the first scrape that finds CUDA in use
        self._lag_since_scrape = 0.0

    # --- the queue's observer interface --------------------------------------------------------------------------

    def batch_started(self, waits: Sequence[tuple[str, float]], images: int) -> None:
        for person_class, seconds in waits:
            self.queue_wait.labels(person_class).observe(seconds)
        self.batch_images.observe(images)

    def batch_finished(self, made: int, seconds: float, model: str) -> None:
        if made:
            self.seconds_per_image.observe(seconds / made)
            self.model_seconds_per_image.labels(model).observe(seconds / made)
            self.model_images.labels(model).inc(made)

    def job_finished(self, outcome: str) -> None:
        self.jobs.labels(outcome).inc()

    # --- the event loop monitor --------------------------------------------------------------------------------

    def safety_checked(self, checked: int, flagged: Sequence[str]) -> None:
        """A delivered result's safety verdicts: how many pictures were checked, and what each flagged one got."""
        self.safety_checks.inc(checked)
        for action in flagged:
            self.safety_flags.labels(action=action).inc()

    def loop_sample(self, lateness: float) -> None:
        self.loop_lag_samples.observe(lateness)
        self._lag_since_scrape = max(self._lag_since_scrape, lateness)

    # --- Discord's HTTP traffic ----------------------------------------------------------------------------------

    def http_trace(self) -> aiohttp.TraceConfig:
        """A trace config for discord.py's HTTP session (``Client(http_trace=...)``)."""
        trace = aiohttp.TraceConfig()

        async def on_request_end(session: Any, context: Any, params: aiohttp.TraceRequestEndParams) -> None:
            status = params.response.status
            if status >= 400:
                self.discord_errors.labels(str(status)).inc()
            if status == 429:
                self.rate_limits.inc()

        async def on_request_exception(
            session: Any, context: Any, params: aiohttp.TraceRequestExceptionParams
        ) -> None:
            self.discord_errors.labels("connection").inc()

        trace.on_request_end.append(on_request_end)
        trace.on_request_exception.append(on_request_exception)
        return trace

    # --- scraping ------------------------------------------------------------------------------------------------

    def refresh(self, bot: Watched) -> None:
        """Read the gauges from the running bot."""
        if bot.generation is not None:
            queue = bot.generation.queue
            self.queue_depth.set(queue.depth)
            self.jobs_running.set(queue.running)
            self.queue_paused.set(1 if queue.paused else 0)
            depth = queue.depth_by_model()
            for status in bot.generation.backend.models():
                self.model_queue_depth.labels(status.name).set(depth.get(status.name, 0))
                self.model_loads.labels(status.name).set(status.loads)
                self.model_switches.labels(status.name).set(status.switches)
                self.model_on_device.labels(status.name).set(1 if status.where in ("device", "replicas") else 0)
        latency = bot.latency
        self.gateway_latency.set(latency if math.isfinite(latency) else math.nan)
        self.gateway_connected.set(1 if gateway_problem(bot) is None else 0)
        for shard_id, shard in bot.shards.items():
            self.shard_latency.labels(str(shard_id)).set(shard.latency if math.isfinite(shard.latency) else math.nan)
            self.shard_connected.labels(str(shard_id)).set(0 if shard.is_closed() else 1)
        self.loop_lag.set(self._lag_since_scrape)
        self._lag_since_scrape = 0.0
        self._refresh_gpu()

    def _refresh_gpu(self) -> None:
        torch = sys.modules.get("torch")  # never import torch just for this
        if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
            return
        if self.gpu_memory is None:
            self.gpu_memory = Gauge(
                "imagebot_gpu_memory_allocated_bytes", "torch.cuda.memory_allocated per device", ["device"],
                registry=self.registry,
            )
        for index in range(torch.cuda.device_count()):
            self.gpu_memory.labels(str(index)).set(torch.cuda.memory_allocated(index))

    def render(self, bot: Watched) -> bytes:
        self.refresh(bot)
        return generate_latest(self.registry)


def shard_states(bot: Watched) -> dict[str, dict[str, Any]]:
    """Each shard this process runs, by id: whether its connection is open and its heartbeat round trip (None before
    the first), for /healthz."""
    return {str(shard_id): {"connected": not shard.is_closed(),
                            "latency": shard.latency if math.isfinite(shard.latency) else None}
            for shard_id, shard in sorted(bot.shards.items())}


def gateway_problem(bot: Watched) -> str | None:
    """Why the bot is not connected to Discord's gateway, or None when every shard is connected."""
    if bot.is_closed():
        return "the bot is shutting down"
    shards = bot.shards
    if not shards:
        return "not connected to the Discord gateway yet"
    closed = [shard_id for shard_id, shard in shards.items() if shard.is_closed()]
    if closed:
        return f"gateway connection closed (shard {', '.join(map(str, closed))}); reconnecting"
    return None
