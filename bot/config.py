"""Load and validate bot.yaml.

Every key is declared here with its default, and unknown keys are errors: a typo in a config file
must be reported, not silently ignored. Problems come back as one line each, naming the file, the
key path and what is allowed, so `python -m bot check` can print them all at once.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.database import sqlite_path
from bot.image_store import images_location
from models.loras import Lora, LoraBook
from models.safety import labels_at, missing_label
from models.settings import INSTRUCT_PIPELINES, UPSCALER_SUFFIXES, DraftSettings, hub_file, pipeline_class, public_name
from models.speed import THRESHOLD_KINDS, Speed
from models.styles import Style

DEFAULT_CONFIG_PATH = Path("bot.yaml")
Snowflake = Annotated[int, Field(gt=0)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ShardsConfig(Section):
    """``discord.shards``: which of Discord's gateway shards this process runs, so that N processes on N machines
    split the gateway (each guild's events come on shard ``(guild_id >> 22) % total``; DMs on shard 0)."""

    ids: list[int] | None = None
    """The shard ids this process runs; left out: all of ``0..total-1``."""
    total: int = Field(ge=1)
    """How many shards the whole deployment runs: the same on every process."""

    @model_validator(mode="after")
    def _ids_are_shards_of_total(self) -> ShardsConfig:
        if self.ids is None:
            return self
        if not self.ids:
            raise ValueError("ids is empty: list the shard ids this process runs, or leave ids out to run all")
        outside = sorted({shard for shard in self.ids if not 0 <= shard < self.total})
        if outside:
            raise ValueError(f"ids {', '.join(map(str, outside))}: not a shard of total {self.total} (ids run from 0 "
                             f"to {self.total - 1})")
        if len(set(self.ids)) != len(self.ids):
            raise ValueError(f"ids lists a shard twice ({sorted(self.ids)})")
        return self

    @property
    def shard_ids(self) -> list[int]:
        """The ids this process runs, in order."""
        return sorted(self.ids) if self.ids is not None else list(range(self.total))


class DiscordConfig(Section):
    token: str = Field(default="", repr=False)
    api_base: str = "https://discord.com/api/v10"
    gateway_url: str | None = None
    """The gateway's address; None: the one ``GET /gateway/bot`` names (Discord's, a proxy's, the emulator's)."""
    guild_ids: list[Snowflake] = []
    attachment_hosts: list[str] = ["cdn.discordapp.com", "media.discordapp.net"]
    max_attachment_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    shards: ShardsConfig | None = None
    """Which gateway shards this process runs, of how many; None: discord.py's automatic sharding, every shard
    Discord recommends in this one process."""
    shard_count: None = Field(default=None, exclude=True, repr=False)
    """Gone (``shards`` replaced it): present, it is refused with a line saying so."""
    layout: Literal["grid", "gallery"] = "grid"
    """How a result looks: ``grid`` (one image of the n, an embed with the recipe) or ``gallery`` (components v2: the
    n images at full size in a media gallery, the recipe as text)."""

    @field_validator("shard_count", mode="before")
    @classmethod
    def _shard_count_is_gone(cls, value: object) -> None:
        raise ValueError("shard_count is gone: use discord.shards, e.g. shards: {total: 4} (or {ids: [0, 1], "
                         "total: 4} for this process to run shards 0 and 1 of 4); leave both out for automatic "
                         "sharding")

    @field_validator("api_base", "gateway_url")
    @classmethod
    def _is_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://", "ws://", "wss://")):
            raise ValueError("must be a URL starting with http(s):// or ws(s)://")
        return value.rstrip("/") if value else value


class IPAdapterConfig(Section):
    """An IP-Adapter for a Stable Diffusion / SDXL model: what lets /blend and /imagine's reference steer it."""

    id: str = Field(min_length=1)
    weight_name: str = ""
    subfolder: str = "models"
    image_encoder: str = "image_encoder"

    @model_validator(mode="after")
    def _weights_named(self) -> IPAdapterConfig:
        if self.id != "tiny" and not self.weight_name:
            raise ValueError("weight_name is required: the adapter's weights file (e.g. ip-adapter_sd15.safetensors)")
        return self


DEFAULT_PREPROCESSORS = {"depth": "depth-anything/Depth-Anything-V2-Small-hf",
                         "pose": "usyd-community/vitpose-base-simple"}
"""The model a depth or pose ControlNet's pictures go through when its entry names no ``preprocessor``."""


class ControlNetConfig(Section):
    """One entry of ``controlnets``: a ControlNet loaded beside every model of ``family`` (``/imagine control:``)."""

    kind: Literal["edges", "depth", "pose"]
    """What structure it keeps: Canny edges (OpenCV), a depth model's map or a pose model's skeleton
    (``models/control.py``)."""
    id: str = Field(min_length=1)
    """A Hub id or a local directory (e.g. lllyasviel/sd-controlnet-canny); ``tiny``: a tiny random one (tests)."""
    family: Literal["sd", "sdxl", "sd3", "flux"]
    """The families diffusers has ControlNet pipelines for (``Family.controlnet_family``)."""
    scale: float = Field(default=1.0, gt=0, le=100)
    """How strongly the structure holds by default (diffusers' ``controlnet_conditioning_scale``)."""
    preprocessor: str | None = Field(default=None, min_length=1)
    """``depth`` and ``pose`` only: the depth or pose model (Hub id, local directory or ``tiny``); default Depth
    Anything V2 Small, or ViTPose base (a transformers ``VitPoseForPoseEstimation``)."""

    @model_validator(mode="after")
    def _preprocessor_of_a_model_kind(self) -> ControlNetConfig:
        if self.preprocessor is not None and self.kind not in DEFAULT_PREPROCESSORS:
            raise ValueError("preprocessor is the depth or pose model of a depth or pose ControlNet; edges are found "
                             "with OpenCV, leave it out")
        return self

    @property
    def preprocessor_model(self) -> str:
        """The model a depth or pose ControlNet's pictures go through (empty for edges)."""
        return self.preprocessor or DEFAULT_PREPROCESSORS.get(self.kind, "")


class CacheConfig(Section):
    """A model's step cache (diffusers' cache hooks): skips transformer work that barely changes between steps."""

    kind: Literal["first_block", "faster", "pab", "taylorseer", "magcache"]
    threshold: float | None = Field(default=None, gt=0, le=1)
    """``first_block``, ``magcache``: the relative change below which a step reuses the cached blocks."""
    every: int | None = Field(default=None, ge=2, le=20)
    """``faster``, ``pab``, ``taylorseer``: recompute every this many steps, reuse (or extrapolate) between."""

    @model_validator(mode="after")
    def _knob_of_its_kind(self) -> CacheConfig:
        if self.threshold is not None and self.kind not in THRESHOLD_KINDS:
            raise ValueError(f"threshold is for {' and '.join(THRESHOLD_KINDS)}; {self.kind} takes every "
                             "(recompute every N steps)")
        if self.every is not None and self.kind in THRESHOLD_KINDS:
            raise ValueError(f"every is for faster, pab and taylorseer; {self.kind} takes threshold")
        return self


Compile = Literal["none", "regional", "full"] | bool
"""``regional``: compile each repeated transformer block once; ``full`` (or ``true``): the whole denoiser."""
Quantize = Literal["none", "int8", "fp8", "nf4", "gguf"]


class DraftConfig(Section):
    """A model's draft settings (/imagine ``draft``), where they differ from its family's (models/families)."""

    steps: int | None = Field(default=None, ge=1, le=150)
    scale: float | None = Field(default=None, gt=0, le=1)
    """Each side of a draft as a share of the full size (0.5: a quarter of the pixels)."""
    cache: CacheConfig | Literal[False] | None = None
    """The cache drafts run with; false: none; left out: the family's (FLUX: first_block)."""

    def settings(self) -> DraftSettings:
        cache = self.cache or None
        return DraftSettings(steps=self.steps, scale=self.scale, exact=self.cache is False, cache=cache and Speed(
            cache=cache.kind, threshold=cache.threshold, every=cache.every))


class SpeedKeys(Section):
    """A model's speed settings (``models/speed.py``) and its draft settings; left out, the model runs exact and
    drafts at its family's draft settings."""

    cache: CacheConfig | None = None
    quantize: Quantize = "none"
    draft: DraftConfig = DraftConfig()

    def speed(self, compile: Compile) -> Speed:
        """These settings with ``compile`` (the entry's own, else ``model.compile``) as the engine applies them."""
        mode = {True: "full", False: "none"}.get(compile, compile) if isinstance(compile, bool) else compile
        cache = self.cache
        return Speed(cache=cache and cache.kind, threshold=cache and cache.threshold, every=cache and cache.every,
                     compile=mode, quantize=self.quantize)


MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9 ._/-]*$"
MODEL_KEYS = ("id", "steps", "guidance", "size", "frames", "ip_adapter", "cache", "quantize", "trust_remote_code",
              "components", "draft")
"""The keys of ``model:`` that describe one model; the rest (device, dtype, max_batch, ...) apply to every model."""
DEFAULT_MODEL_ID = "stabilityai/sd-turbo"
Components = dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], Annotated[str, Field(min_length=1)]]
"""Pipeline parts a model's repository leaves out (``text_encoder_4: meta-llama/...``): part name -> Hub id or path."""


class ModelConfig(SpeedKeys):
    id: str = Field(default=DEFAULT_MODEL_ID, min_length=1)
    device: Literal["auto", "cuda", "mps", "cpu"] = "auto"
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = "auto"
    compile: Compile = False
    """Every model's, unless its ``models:`` entry says otherwise."""
    warmup: bool = True
    max_batch: int = Field(default=4, ge=1, le=64)
    steps: int | None = Field(default=None, ge=1, le=150)
    guidance: float | None = Field(default=None, ge=0, le=30)
    size: int | None = Field(default=None, ge=64, le=2048, multiple_of=8)
    frames: int | None = Field(default=None, ge=2, le=481)
    """A video model's default clip, in frames (None: its model card's, e.g. 121 for Wan 2.2 and LTX-Video)."""
    max_count: int = Field(default=4, ge=1, le=4)
    max_input_pixels: int = Field(default=4096 * 4096, ge=64 * 64)
    max_upload_pixels_per_person: int = Field(default=16 * 1024 * 1024, ge=64 * 64)
    """Decoded pixels of one person's pictures held at once, from reading them until their jobs are planned."""
    max_upload_pixels: int = Field(default=64 * 1024 * 1024, ge=64 * 64)
    """The same for everyone together."""
    preview_every: int = Field(default=2, ge=1)
    cpu_threads: int | None = Field(default=None, ge=1)
    ip_adapter: IPAdapterConfig | None = None
    trust_remote_code: bool = False
    """Run the pipeline code a model ships with it (a custom pipeline: its own ``.py`` beside model_index.json)."""
    components: Components | None = None
    """Parts the model's repository leaves out, each loaded from another (HiDream-I1's Llama 3.1)."""

    @model_validator(mode="before")
    @classmethod
    def _null_is_left_out(cls, data: object) -> object:
        """A model key left at null (as the shipped bot.yaml has them) is the key left out: it takes its default and
        describes no model, so adding ``models:`` to the shipped file needs no other edit."""
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if not (key in MODEL_KEYS and value is None)}
        return data


class NamedModel(SpeedKeys):
    """One entry of bot.yaml's ``models`` list: a model people pick by name with /imagine's ``model`` option."""

    name: str = Field(min_length=1, max_length=100, pattern=MODEL_NAME)
    id: str = Field(min_length=1)
    steps: int | None = Field(default=None, ge=1, le=150)
    guidance: float | None = Field(default=None, ge=0, le=30)
    size: int | None = Field(default=None, ge=64, le=2048, multiple_of=8)
    frames: int | None = Field(default=None, ge=2, le=481)
    description: str = Field(default="", max_length=100)
    nsfw: bool = False
    default: bool = False
    ip_adapter: IPAdapterConfig | None = None
    compile: Compile | None = None
    """None: ``model.compile``."""
    trust_remote_code: bool = False
    """Run the pipeline code the model ships with it (a custom pipeline); off, such a model is refused."""
    components: Components | None = None
    """Parts the model's repository leaves out, each loaded from another (HiDream-I1's Llama 3.1)."""


class UpscalerConfig(Section):
    model: str | None = None
    name: str | None = Field(default=None, min_length=1, max_length=100)
    """What recipes call it; None: the Hub file as given, a local file by its name only."""
    tile: int = Field(default=256, ge=32, le=4096)

    @field_validator("model")
    @classmethod
    def _is_weights_file(cls, value: str | None) -> str | None:
        """A missing local file or one that holds no weights shows in ``check``, not first at start."""
        if value is None:
            return value
        if not value.lower().endswith(UPSCALER_SUFFIXES):
            raise ValueError(f"must be a {' or '.join(UPSCALER_SUFFIXES)} file (a path, or a Hub file "
                             "'owner/repo/name.pth')")
        if hub_file(value) is None and not Path(value).expanduser().is_file():
            raise ValueError("no such file (and not a Hub file 'owner/repo/name.pth')")
        return value


class DescribeConfig(Section):
    model: str | None = Field(default=None, min_length=1)
    name: str | None = Field(default=None, min_length=1, max_length=100)
    """What /describe's footer calls it; None: the Hub id as given, a local directory by its name only."""
    prompt: str | None = Field(default=None, min_length=1, max_length=200)


class SafetyConfig(Section):
    """The safety check every picture passes before anyone sees it (``models/safety.py``, ``bot/safety.py``)."""

    model: str | None = Field(default=None, min_length=1)
    """An image classifier (Hub id or local directory); ``tiny``: a tiny random one; None: no check."""
    name: str | None = Field(default=None, min_length=1, max_length=100)
    """What recipes and the private notices call it; None: the Hub id, a local directory by its name only."""
    unsafe_label: str = Field(default="nsfw", min_length=1)
    threshold: float = Field(default=0.5, ge=0, le=1)
    action: Literal["block", "spoiler", "allow"] = "block"
    """What a flagged picture gets in an age-restricted channel; everywhere else it is always withheld."""
    check_uploads: bool = False
    prompt_model: str | None = Field(default=None, min_length=1)
    """A text classifier refusing prompts before they are queued; ``tiny``: a tiny random one; None: none."""
    prompt_threshold: float = Field(default=0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _labels(self) -> SafetyConfig:
        """A classifier without the unsafe label would flag nothing: refused here where its labels can be read
        (``tiny``, a local directory), at load otherwise."""
        for key, model in (("safety.model", self.model), ("safety.prompt_model", self.prompt_model)):
            labels = None if model is None else labels_at(model)
            problem = None if labels is None else missing_label(labels, self.unsafe_label, key)
            if problem is not None:
                raise ValueError(f"{key.removeprefix('safety.')}: {problem}")
        if self.check_uploads and self.model is None:
            raise ValueError("safety.check_uploads needs safety.model (the classifier that checks them)")
        return self


class RayConfig(Section):
    address: str | None = None
    num_gpus: float = Field(default=1, ge=0)
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=1, ge=1)
    target_ongoing_requests: float = Field(default=2, gt=0)
    batch_size: int = Field(default=4, ge=1, le=64)

    @model_validator(mode="after")
    def _replica_bounds(self) -> RayConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must not exceed max_replicas")
        return self


UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
         "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


class EngineConfig(Section):
    backend: Literal["local", "ray"] = "local"
    ray: RayConfig = RayConfig()
    memory_budget: int | None = Field(default=None, gt=0)
    """Bytes of model weights kept on the GPU (host RAM on a CPU) at once; None: every model stays once loaded."""

    @field_validator("memory_budget", mode="before")
    @classmethod
    def _bytes(cls, value: object) -> object:
        """Operators write sizes as they think of them: ``24GiB``, ``500 MB`` or a plain number of bytes."""
        if not isinstance(value, str):
            return value
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", value)
        if match is None or match.group(2).lower() not in UNITS:
            raise ValueError("must be a size like 24GiB, 500MB or a number of bytes")
        return int(float(match.group(1)) * UNITS[match.group(2).lower()])


class StorageConfig(Section):
    dir: Path = Path("data")
    url: str | None = None
    """The database: ``sqlite:///PATH`` (relative to the config file) or ``postgresql://USER@HOST/DATABASE``; unset,
    the SQLite file ``imagebot.sqlite3`` in ``dir``, as before there was a choice."""
    image_ttl_hours: float = Field(default=24 * 30, gt=0)
    housekeeping_minutes: float = Field(default=60, gt=0)
    images: str | None = None
    """Where pictures and videos are kept (``bot.image_store``): unset, under ``dir``; a folder; or an S3-compatible
    bucket, ``s3://bucket/prefix``, which bot processes on several machines can share."""
    s3_endpoint: str | None = None
    """The S3 server's URL where it is not AWS itself (e.g. http://minio:9000)."""
    s3_region: str | None = None

    @field_validator("images")
    @classmethod
    def _is_location(cls, value: str | None) -> str | None:
        images_location(value, Path("."))
        return value

    @field_validator("s3_endpoint")
    @classmethod
    def _is_endpoint(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be a URL starting with http:// or https://")
        return value

    @field_validator("url")
    @classmethod
    def _is_database_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if value.startswith("sqlite:///") and value != "sqlite:///":
            return value
        if value.startswith(("postgresql://", "postgres://")):
            return value
        raise ValueError("must be sqlite:///PATH or postgresql://USER@HOST/DATABASE")


class RoleOverride(Section):
    role_id: Snowflake
    name: str | None = Field(default=None, min_length=1, max_length=40)
    """The class of person this role makes, on the queue-wait metric (``imagebot_queue_wait_seconds{person_class}``);
    ``role-<role_id>`` when not named."""
    rate_per_minute: float | None = Field(default=None, gt=0)
    burst: int | None = Field(default=None, ge=1)
    max_pending_per_user: int | None = Field(default=None, ge=1)


class QueueConfig(Section):
    rate_per_minute: float = Field(default=6, gt=0)
    burst: int = Field(default=3, ge=1)
    max_pending_per_user: int = Field(default=3, ge=1)
    max_queue: int = Field(default=200, ge=1)
    batch_window_ms: float = Field(default=50, ge=0)
    model_switch_delay_s: float = Field(default=30, ge=0)
    """How much longer than under pure round-robin a job may wait while batches of the loaded model go first."""
    job_timeout_s: float = Field(default=600, gt=0)
    stop_grace_s: float = Field(default=60, ge=0)
    undeliverable_after_h: float = Field(default=6, gt=0)
    draft_cost: float = Field(default=0.25, gt=0, le=1)
    """What a draft costs against a full image: the share of a rate-limit token it takes, and of a full image's
    time the ETAs count for it (README: a draft measured at about a fifth to a quarter of a full image's time)."""
    role_overrides: list[RoleOverride] = []
    video_per_user: int = Field(default=1, ge=0)
    """Videos one person may have pending at once (they count against max_pending_per_user too); 0: none."""
    lease_s: float = Field(default=30, gt=0)
    """Several processes on one queue (``storage.url`` on PostgreSQL): how long a process's claim on a job lasts
    without being renewed (it renews every third of it); a process gone this long has its jobs taken over."""
    sync_ms: float = Field(default=250, gt=0)
    """Several processes on one queue: how often each looks at the shared queue (new jobs, jobs taken
    elsewhere, cancels clicked on another process, leases that ran out)."""
    video_units: dict[str, float] = {}
    """Per video model (its configured name): what a second of its video costs in the rate limit and the ETA, in
    pictures. Unset: measured from the model's last runs (seconds of work per second of video over seconds per
    picture), 10 before its first run."""

    @field_validator("video_units")
    @classmethod
    def _positive_units(cls, units: dict[str, float]) -> dict[str, float]:
        bad = [name for name, value in units.items() if not value > 0]
        if bad:
            raise ValueError(f"must be more than 0 (pictures per second of video): {', '.join(bad)}")
        return units


class ChannelRules(Section):
    allow: list[Snowflake] = []
    deny: list[Snowflake] = []


class ModerationConfig(Section):
    banned_terms: list[str] = []
    default_negative: str = "lowres, blurry, watermark, text, signature, jpeg artifacts"
    channels: dict[Snowflake, ChannelRules] = {}


class ServerConfig(Section):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=9090, ge=0, le=65535)


class PlaygroundConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    file: Path | None = None


class Config(Section):
    discord: DiscordConfig = DiscordConfig()
    admins: list[Snowflake] = []
    model: ModelConfig = ModelConfig()
    models: list[NamedModel] = []
    upscaler: UpscalerConfig = UpscalerConfig()
    describe: DescribeConfig = DescribeConfig()
    engine: EngineConfig = EngineConfig()
    storage: StorageConfig = StorageConfig()
    queue: QueueConfig = QueueConfig()
    moderation: ModerationConfig = ModerationConfig()
    safety: SafetyConfig = SafetyConfig()
    server: ServerConfig = ServerConfig()
    playground: PlaygroundConfig = PlaygroundConfig()
    logging: LoggingConfig = LoggingConfig()
    styles: list[Style] = []
    controlnets: list[ControlNetConfig] = []

    @field_validator("controlnets")
    @classmethod
    def _one_per_kind(cls, controlnets: list[ControlNetConfig]) -> list[ControlNetConfig]:
        seen: set[tuple[str, str]] = set()
        for entry in controlnets:
            if (entry.family, entry.kind) in seen:
                raise ValueError(f"the {entry.kind} ControlNet of family {entry.family} is defined twice")
            seen.add((entry.family, entry.kind))
        return controlnets
    edit_model: str | None = None
    """The configured model (by name) that serves ✏️ Edit, the "Edit image…" menu and /edit without a mask or
    ``model`` when the person's own model can't edit by instruction; none: only such a model of theirs does."""
    loras: list[Lora] = []

    @field_validator("loras")
    @classmethod
    def _unique_loras(cls, loras: list[Lora]) -> list[Lora]:
        names = [lora.name.lower() for lora in loras]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} defined twice")
        return loras

    @model_validator(mode="after")
    def _style_loras(self) -> Config:
        """A style's ``loras`` must read as /imagine's ``lora`` option would (names from ``loras:``, weights)."""
        book = LoraBook(self.loras)
        for style in self.styles:
            try:
                book.parse(style.loras)
            except ValueError as error:
                raise ValueError(f"styles: '{style.name}': loras: {error}") from None
        return self

    @field_validator("styles")
    @classmethod
    def _unique_names(cls, styles: list[Style]) -> list[Style]:
        seen: set[str] = set()
        for style in styles:
            if style.name.lower() in seen:
                raise ValueError(f"style '{style.name}' is defined twice")
            seen.add(style.name.lower())
        return styles

    @model_validator(mode="after")
    def _one_catalogue(self) -> Config:
        """``models:`` names every model; ``model:`` then keeps only the settings shared by all of them."""
        if self.models:
            both = [key for key in MODEL_KEYS if key in self.model.model_fields_set]
            if both:
                raise ValueError(f"model.{', model.'.join(both)} and models: both describe a model; with models:, "
                                 "give each entry its own id (and steps, guidance, size, cache, quantize), leave those "
                                 "keys of model: out or null, and keep in it only what all share (device, dtype, "
                                 "max_batch, ...)")
            names = [entry.name for entry in self.models]
            twice = sorted({name for name in names if names.count(name) > 1})
            if twice:
                raise ValueError(f"models: {', '.join(twice)} defined twice")
            if sum(entry.default for entry in self.models) > 1:
                raise ValueError("models: only one entry may say default: true")
        names = [entry.name for entry in self.catalogue]
        for style in self.styles:
            if style.model is not None and style.model not in names:
                raise ValueError(f"style '{style.name}' names the model '{style.model}', which is not configured "
                                 f"(models: {', '.join(names)})")
        if self.edit_model is not None:
            self._check_edit_model(names)
        return self

    def _check_edit_model(self, names: list[str]) -> None:
        """``edit_model`` names a configured model that edits by instruction, as far as can be told before it loads
        (its ``model_index.json``, where it is on this machine: ``models.settings.pipeline_class``)."""
        if self.edit_model not in names:
            raise ValueError(f"edit_model: '{self.edit_model}' is not a configured model (models: {', '.join(names)})")
        entry = next(entry for entry in self.catalogue if entry.name == self.edit_model)
        pipeline = pipeline_class(entry.id)
        if pipeline is not None and pipeline not in INSTRUCT_PIPELINES:
            raise ValueError(f"edit_model: the model '{self.edit_model}' ({pipeline}) can't edit a picture by "
                             "instruction; name one that can (Qwen-Image-Edit, FLUX.1 Kontext or FLUX.2)")

    @property
    def catalogue(self) -> list[NamedModel]:
        """Every model the bot serves, the default first: ``models:``, or the lone ``model:`` section as one."""
        if not self.models:
            model = self.model
            return [NamedModel(name=public_name(model.id), id=model.id, steps=model.steps, guidance=model.guidance,
                               size=model.size, frames=model.frames, default=True, ip_adapter=model.ip_adapter,
                               cache=model.cache, quantize=model.quantize, trust_remote_code=model.trust_remote_code,
                               components=model.components, draft=model.draft)]
        default = next((entry for entry in self.models if entry.default), self.models[0])
        return [default, *(entry for entry in self.models if entry is not default)]

    @property
    def token(self) -> str:
        """The bot token: the DISCORD_TOKEN environment variable wins over the file."""
        return os.environ.get("DISCORD_TOKEN") or self.discord.token


class ConfigError(Exception):
    """A config file that cannot be used; ``problems`` holds one printable line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _describe(path: Path, error: dict, sources: dict[str, str]) -> str:
    keys = ".".join(str(part) for part in error["loc"]) or "(top level)"
    origin = next((f"${name}" for key, name in sources.items() if keys == key or keys.startswith(key + ".")), None)
    if origin:
        path = Path(f"{origin} (overriding {path})")
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{path}: {keys}: unknown key (check the spelling; bot.yaml documents every key)"
    message = error["msg"].removeprefix("Value error, ")
    if kind == "missing":
        return f"{path}: {keys}: is required"
    if not error["loc"]:  # a rule across sections: the whole file as "got" would bury the message
        return f"{path}: {message}"
    return f"{path}: {keys}: {message} (got {error['input']!r})"


def parse_config(data: object, path: Path, sources: dict[str, str] | None = None) -> Config:
    """Validate already-parsed YAML; ``path`` is only used to name the file in messages."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: the file must hold a mapping of keys (like 'discord:' and 'model:')"])
    try:
        return Config.model_validate(data)
    except ValidationError as error:
        raise ConfigError([_describe(path, e, sources or {}) for e in error.errors()]) from None


ENV_PREFIX = "IMAGEBOT__"


def apply_env_overrides(data: dict, environ: dict[str, str]) -> dict[str, str]:
    """Override keys from ``IMAGEBOT__SECTION__KEY=value`` variables (values parsed as YAML scalars).

    Containers configure a deployment this way (the Dockerfile turns the health server on) without
    editing the mounted bot.yaml. Returns the overridden key paths and the variables that set them,
    so that a bad value is reported under the variable's name.
    """
    sources = {}
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [key.lower() for key in name.removeprefix(ENV_PREFIX).split("__")]
        target = data
        for key in keys[:-1]:
            if not isinstance(target.get(key, {}), dict):
                target = None
                break
            target = target.setdefault(key, {})
        if target is None:
            raise ConfigError([f"${name}: {'.'.join(keys[:-1])} is a value, not a section"])
        try:
            target[keys[-1]] = yaml.safe_load(raw) if raw else raw
        except yaml.YAMLError:
            target[keys[-1]] = raw
        sources[".".join(keys)] = name
    return sources


def load_config(path: str | Path = DEFAULT_CONFIG_PATH, environ: dict[str, str] | None = None) -> Config:
    """Read and validate a config file plus IMAGEBOT__ overrides; raises ConfigError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        hint = "copy bot.yaml from the repository, or pass --config FILE"
        raise ConfigError([f"{path}: no such file ({hint})"]) from None
    except OSError as error:
        raise ConfigError([f"{path}: cannot be read: {error.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(error, "problem", None) or str(error)
        raise ConfigError([f"{path}: is not valid YAML{where}: {reason}"]) from None
    if data is None:
        data = {}
    environ = dict(os.environ) if environ is None else environ
    sources = apply_env_overrides(data, environ) if isinstance(data, dict) else {}
    config = parse_config(data, path, sources)
    if not config.storage.dir.is_absolute():
        config.storage.dir = (path.parent / config.storage.dir).resolve()
    images = images_location(config.storage.images, config.storage.dir)
    if isinstance(images, Path) and not images.is_absolute():  # a folder, relative to the file as storage.dir is
        config.storage.images = str((path.parent / images).resolve())
    if config.storage.url is not None and config.storage.url.startswith("sqlite:///"):
        config.storage.url = f"sqlite:///{sqlite_path(config.storage.url, path.parent).resolve()}"
    return config
