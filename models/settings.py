"""What a model needs to load and run, and nothing else: the engine's side of bot.yaml.

The bot maps its config onto these (``bot/backends.py``); the engine and the Ray replicas receive only them. So
``models/`` never imports the bot's config, and no Discord token can travel to a Ray cluster with a replica's
arguments.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from models.speed import Speed


def public_name(source: str) -> str:
    """What people are shown for a model or helper configured as ``source``: a Hub id (or Hub file) as it is, a local
    path by its last part only (the server's paths are nobody's business in Discord)."""
    if source.startswith(("/", ".", "~")) or Path(source).expanduser().exists():
        source = Path(source).expanduser().name or "model"
    return re.sub(r"[^A-Za-z0-9 ._/-]", "-", source).lstrip(" ._/-") or "model"


INSTRUCT_PIPELINES = frozenset({"FluxKontextPipeline", "Flux2Pipeline", "Flux2KleinPipeline", "QwenImageEditPipeline",
                                "QwenImageEditPlusPipeline"})
"""The pipelines of the families that edit by instruction (``Family.instruct_edit``; tests/test_families.py holds the
two together): what lets bot.yaml's ``edit_model`` be checked when the config loads, before any weights do."""


def pipeline_class(model: str) -> str | None:
    """The pipeline class a model's ``model_index.json`` names, where it can be read without a download (a local
    folder, or a Hub id already in the Hub's cache); None where it can't, or the file names none."""
    local = Path(model).expanduser()
    if local.is_dir():
        index = str(local / "model_index.json")
    else:
        from huggingface_hub import try_to_load_from_cache

        try:
            found = try_to_load_from_cache(model, "model_index.json")
        except ValueError:  # not a Hub id either
            return None
        if not isinstance(found, str):
            return None
        index = found
    try:
        with open(index, encoding="utf-8") as file:
            name = json.load(file).get("_class_name")
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) else None


UPSCALER_SUFFIXES = (".pth", ".safetensors")
"""The files an upscaler comes in: PyTorch pickles (loaded with spandrel's restricted unpickler) and safetensors."""


@dataclass(frozen=True)
class IPAdapterSettings:
    """An IP-Adapter for a Stable Diffusion / SDXL model (bot.yaml's ``ip_adapter`` of a model): image prompts, the
    way /blend and /imagine's ``reference`` steer those models. The fields are ``load_ip_adapter``'s arguments."""

    id: str
    """A Hub repository or a local directory (e.g. ``h94/IP-Adapter``); ``tiny``: a tiny random one, built offline
    under the cache directory to match the model (for tests and the playground)."""
    weight_name: str = ""
    """The weights file in ``subfolder`` (e.g. ``ip-adapter_sd15.safetensors``); empty only for ``tiny``."""
    subfolder: str = "models"
    image_encoder: str = "image_encoder"
    """The CLIP image encoder's folder: inside ``subfolder`` when it is one name, else a path in the repository."""


@dataclass(frozen=True)
class SafetySettings:
    """bot.yaml's ``safety`` section as the engine needs it: the image classifier every result passes."""

    model: str
    """A Hub id, a local directory, or ``tiny`` (a tiny random classifier built under the cache directory)."""
    unsafe_label: str = "nsfw"
    threshold: float = 0.5
    """A picture is flagged when its unsafe score is at or above this."""
    name: str | None = None
    """What recipes call the classifier; None: ``public_name`` of ``model``."""


@dataclass(frozen=True)
class DraftSettings:
    """bot.yaml's ``draft`` of a model: its draft settings where they differ from its family's."""

    steps: int | None = None
    scale: float | None = None
    """Each side of a draft as a share of the full size."""
    cache: Speed | None = None
    """The cache a draft runs with (only its cache fields are read); None: the family's (``Family.draft_cache``)."""
    exact: bool = False
    """No cache for drafts, whatever the family's (bot.yaml's ``cache: false``)."""


@dataclass(frozen=True)
class EngineSettings:
    """One model and how to run it (bot.yaml's ``model``, ``upscaler`` and ``describe`` sections plus the
    moderation's default negative)."""

    model_id: str
    """A Hugging Face id, a local directory, or ``tiny`` (built under ``cache_dir`` on first use)."""
    name: str = ""
    """The configured name recipes, embeds and /models show (never a server path); empty: ``model_id``."""
    cache_dir: str = "data"
    device: str = "auto"
    dtype: str = "auto"
    speed: Speed = field(default_factory=Speed)
    """The model's ``cache``, ``compile`` and ``quantize`` (``models/speed.py``); the default is exact."""
    draft: DraftSettings = field(default_factory=DraftSettings)
    warmup: bool = True
    max_batch: int = 4
    steps: int | None = None
    guidance: float | None = None
    size: int | None = None
    frames: int | None = None
    """A video model's default clip, in frames (None: its model card's)."""
    preview_every: int = 2
    max_count: int = 4
    cpu_threads: int | None = None
    default_negative: str = ""
    upscaler: str | None = None
    """bot.yaml's ``upscaler.model``: a Real-ESRGAN-class file (a path, or a Hub file ``owner/repo/name.pth``)."""
    upscaler_name: str | None = None
    """What recipes call the upscaler (``upscaler.name``); None: ``public_name`` of ``upscaler``."""
    upscaler_tile: int = 256
    ip_adapter: IPAdapterSettings | None = None
    trust_remote_code: bool = False
    """Load a custom pipeline's own code shipped with the model (bot.yaml's ``trust_remote_code`` of a model)."""
    components: dict[str, str] | None = None
    """Pipeline parts the model's repository leaves out, each from another repository or directory (bot.yaml's
    ``components`` of a model: HiDream's Llama)."""
    captioner: str | None = None
    """bot.yaml's ``describe.model``: an image-to-text model for /describe (set for the default model only)."""
    captioner_name: str | None = None
    """What /describe's footer calls the captioner (``describe.name``); None: ``public_name`` of ``captioner``."""
    captioner_prompt: str | None = None
    """bot.yaml's ``describe.prompt``: text given to the captioner with the picture (Florence-2's task token)."""
    safety: SafetySettings | None = None
    """bot.yaml's ``safety``: the image classifier every result of this model passes (None: no check)."""
    controlnets: tuple[ControlNetSettings, ...] = ()
    """bot.yaml's ``controlnets``: those of this model's family are loaded beside it."""

    @property
    def label(self) -> str:
        return self.name or self.model_id


def hub_file(model: str) -> tuple[str, str] | None:
    """``(repo id, file name)`` when ``model`` names a file in a Hub repository (``owner/repo/path/name.pth``).

    A path that exists, or that is written as one (``/``, ``.``, ``~``), is a local file, never a Hub file: a typo in
    a local path must say "no such file" rather than try a download.
    """
    if model.startswith(("/", ".", "~")) or Path(model).expanduser().exists():
        return None
    owner, _, rest = model.partition("/")
    repo, _, filename = rest.partition("/")
    return (f"{owner}/{repo}", filename) if owner and repo and filename else None


@dataclass(frozen=True)
class RaySettings:
    """bot.yaml's ``engine.ray`` section: where the cluster is and how each model's Serve app scales."""

    address: str | None = None
    num_gpus: float = 1
    min_replicas: int = 1
    max_replicas: int = 1
    target_ongoing_requests: float = 2
    batch_size: int = 4


@dataclass(frozen=True)
class ControlNetSettings:
    """One entry of bot.yaml's ``controlnets``: a ControlNet for every model of ``family``, used by ``/imagine
    control:`` and 🧱 Retexture to keep a picture's structure."""

    kind: str
    """What structure it keeps: ``edges`` (Canny, OpenCV), ``depth`` (a depth model's map) or ``pose`` (a pose
    model's skeleton, drawn as OpenPose does)."""
    id: str
    """A Hub repository or a local directory; ``tiny``: a tiny random one built to fit the model (tests)."""
    family: str
    """The family it is made for (``sd``, ``sdxl``, ``sd3``, ``flux``): loaded beside every model of it."""
    scale: float = 1.0
    """``controlnet_conditioning_scale``: how strongly the structure holds."""
    preprocessor: str = ""
    """``depth``, ``pose``: the depth or pose model (Hub id, local directory, or ``tiny``); unused for ``edges``."""
