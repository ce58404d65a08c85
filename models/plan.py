"""Requests, recipes and plans: what a person asked for, resolved into every number a pipeline call needs.

This half of generation is pure and imports no torch, so the bot core, the cogs and the Ray backend's planner use it
cheaply: ``resolve_plan`` turns a request plus the model's defaults and the styles into a ``Plan`` with every number
decided (size, steps, seeds, prompts). A failed validation costs nothing, and a plan made on the bot runs the same
on any replica. ``models/engine.py`` is the other half: the only code that touches the GPU.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any
from uuid import uuid4

from PIL import Image

from models.edits import EDIT_STRENGTH, Edit, prepare
from models.images import fit_image
from models.styles import StyleBook

ASPECTS: dict[str, tuple[int, int]] = {
    "square": (1, 1),
    "portrait": (2, 3),
    "landscape": (3, 2),
    "wide": (16, 9),
    "tall": (9, 16),
}
MAX_SEED = 2**32
MAX_STEPS = 150
MAX_GUIDANCE = 30.0
MAX_SIDE = 2048
class StartupError(RuntimeError):
    """A problem at start that one line explains to the operator (the model, the Ray cluster): no traceback needed."""


class ModelLoadError(StartupError):
    """A model that cannot be loaded; the message is one line naming the model and the reason."""


class JobCancelled(Exception):
    """The plan was cancelled before it finished; stands in for its result."""


# --------------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Recipe:
    """Everything that reproduces one image: the person's own prompt and negative, plus every resolved number."""

    prompt: str
    negative: str
    style: str
    seed: int
    steps: int
    guidance: float
    width: int
    height: int
    strength: float | None
    model: str
    upscaler: str | None = None  # set when the image is the GAN upscale of the image this recipe otherwise describes
    edit: dict[str, Any] | None = None  # Edit.to_dict() when the image is an edit (zoom, pan, region) of a source

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        # Fields with defaults came later: images stored before them lack them.
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def request(self, init_image: Image.Image | None = None) -> GenerationRequest:
        """A request that plans back to exactly this recipe (img2img, edits and upscales need the same source image)."""
        return GenerationRequest(
            prompt=self.prompt, style=self.style, negative=self.negative, seed=self.seed, count=1,
            steps=self.steps, guidance=self.guidance, width=self.width, height=self.height,
            init_image=init_image, strength=self.strength, upscale=self.upscaler is not None, model=self.model,
            edit=None if self.edit is None else Edit.from_dict(self.edit),
        )


@dataclass
class GenerationRequest:
    """What a person asked for. JSON-serialisable through to_dict/from_dict, except the source image."""

    prompt: str
    style: str = ""
    negative: str = ""
    aspect: str = "square"
    seed: int | None = None
    count: int = 1
    steps: int | None = None
    guidance: float | None = None
    width: int | None = None
    height: int | None = None
    init_image: Image.Image | None = None
    strength: float | None = None
    upscale: bool = False
    """Upscale ``init_image`` with the GAN upscaler instead of generating; the other fields are its recipe."""
    model: str = ""
    """The configured name of the model to use (bot.yaml's ``models``); empty: the style's model, else the default."""
    id: str = field(default_factory=lambda: uuid4().hex)
    edit: Edit | None = None
    """Edit ``init_image`` (zoom out, pan, repaint regions or its transparent parts) instead of restyling it all."""

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "init_image"}
        data["edit"] = None if self.edit is None else self.edit.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], init_image: Image.Image | None = None) -> GenerationRequest:
        known = {f.name for f in fields(cls)} - {"init_image", "edit"}
        edit = data.get("edit")  # requests stored before edits existed have none
        return cls(**{k: v for k, v in data.items() if k in known}, init_image=init_image,
                   edit=None if edit is None else Edit.from_dict(edit))


@dataclass(frozen=True)
class Plan:
    """A request resolved against the model and styles; plans with equal batch_key can share one pipeline call."""

    request_id: str
    recipes: tuple[Recipe, ...]
    prompt: str  # after the style template
    negative: str  # style negative, the person's negative and the default negative
    init_image: Image.Image | None
    batch_key: tuple
    lora: tuple[str, float] | None = None
    upscale: bool = False  # init_image goes through the GAN upscaler to each recipe's size: no pipeline call
    mask_image: Image.Image | None = None
    """Set for edits (inpainting): white where ``init_image``, the prepared canvas, is repainted; the engine keeps
    the rest pixel for pixel (``models.edits.keep_outside``)."""

    @property
    def model(self) -> str:
        """The configured name of the model it runs on: every recipe of a plan names the same one."""
        return self.recipes[0].model


@dataclass(frozen=True)
class Progress:
    step: int
    total: int
    preview: Image.Image | None
    loading: str | None = None
    """Set (to the model's name) while the model the plan needs is being loaded, before any step."""


@dataclass(frozen=True)
class GeneratedImage:
    image: Image.Image
    recipe: Recipe


@dataclass(frozen=True)
class ModelDefaults:
    """The model family's numbers after config overrides; styles and requests override these per image."""

    family: str  # a family's name (models/families)
    steps: int
    guidance: float
    width: int
    height: int
    strength: float  # img2img default
    multiple: int  # width and height are snapped to multiples of this
    max_steps: int = MAX_STEPS
    negative_prompt: bool = True  # the family takes a negative prompt
    img2img: bool = True  # the family can restyle a picture
    inpaint: bool = False  # the family can repaint part of a picture: zoom out, pan, vary a region (models/edits.py)
    upscaler: str | None = None  # the GAN upscaler loaded beside the model (upscaler.model), recorded in recipes
    upscale_factor: int = 1  # what that upscaler multiplies each side by


def snap(value: float, multiple: int) -> int:
    """Nearest multiple of ``multiple`` (at least one multiple)."""
    return max(multiple, round(value / multiple) * multiple)


def aspect_size(aspect: str, defaults: ModelDefaults) -> tuple[int, int]:
    """Width and height for an aspect ratio with about the native pixel area, snapped to the size multiple."""
    try:
        ratio_w, ratio_h = ASPECTS[aspect]
    except KeyError:
        raise ValueError(f"Unknown aspect '{aspect}'; choose one of {', '.join(ASPECTS)}.") from None
    area = defaults.width * defaults.height
    width = math.sqrt(area * ratio_w / ratio_h)
    return snap(width, defaults.multiple), snap(area / width, defaults.multiple)


# --------------------------------------------------------------------------------------------------- planning


def resolve_plan(request: GenerationRequest, defaults: ModelDefaults, styles: StyleBook, default_negative: str,
                 model: str, *, max_count: int = 4) -> Plan:
    """Turn a request into a Plan, or raise UnknownStyle/ValueError with a message for the person. Pure, cheap.

    ``model`` is the name recipes record: the configured name, never where the weights lie on the server. It is part
    of the batch key, so one pipeline call never mixes models.
    """
    if request.upscale:
        return _upscale_plan(request, defaults, model)
    style = styles.get(request.style)
    raw_prompt = request.prompt.strip()
    if not raw_prompt:
        raise ValueError("Your prompt is empty; describe the image you want.")
    if not 1 <= request.count <= max_count:
        raise ValueError(f"You can ask for 1 to {max_count} images at a time.")
    edit = request.edit
    if edit is not None:
        if request.init_image is None:
            raise ValueError("An edit needs the picture to edit.")
        if not defaults.inpaint:
            raise ValueError(f"This model ({defaults.family}) can't repaint part of a picture (zoom out, pan, vary a "
                             "region); ask for a model that can.")
    img2img = request.init_image is not None and edit is None
    if img2img and not defaults.img2img:
        raise ValueError(f"This model ({defaults.family}) can't restyle a picture; leave the image out, or ask for "
                         "a model that can.")
    if request.negative.strip() and not defaults.negative_prompt:
        raise ValueError(f"This model ({defaults.family}) doesn't take a negative prompt; leave it out and describe "
                         "what you want instead.")

    steps = _first(request.steps, style.steps, defaults.steps)
    if not 1 <= steps <= defaults.max_steps:
        raise ValueError(f"Steps must be between 1 and {defaults.max_steps} for this model.")
    guidance = float(_first(request.guidance, style.guidance, defaults.guidance))
    if not 0 <= guidance <= MAX_GUIDANCE:
        raise ValueError(f"Guidance must be between 0 and {MAX_GUIDANCE:g}.")
    strength: float | None = None
    if img2img:
        strength = float(_first(request.strength, style.strength, defaults.strength))
    elif edit is not None:  # the style's strength is tuned for restyling a whole picture, not for filling a hole
        strength = float(_first(request.strength, EDIT_STRENGTH))
    if strength is not None:
        if not 0 < strength <= 1:
            raise ValueError("Strength must be more than 0 and at most 1.")
        # img2img runs int(steps * strength) denoising steps; zero would be a silent no-op (or a diffusers error).
        if int(steps * strength) < 1:
            steps = math.ceil(1 / strength - 1e-9)

    canvas = None
    if edit is not None:  # the edit's size follows its source picture (models/edits.py says how)
        assert request.init_image is not None
        canvas = prepare(edit, request.init_image, multiple=defaults.multiple, max_side=MAX_SIDE,
                         max_area=defaults.width * defaults.height)
        width, height = canvas.image.size
    elif request.width is not None or request.height is not None:
        width = snap(request.width or defaults.width, defaults.multiple)
        height = snap(request.height or defaults.height, defaults.multiple)
    else:
        width, height = aspect_size(request.aspect, defaults)
    if max(width, height) > MAX_SIDE:
        raise ValueError(f"Images can be at most {MAX_SIDE} pixels on a side.")

    seed = request.seed if request.seed is not None else random.randrange(MAX_SEED - max_count)
    if seed < 0 or seed + request.count > MAX_SEED:
        raise ValueError(f"The seed must be between 0 and {MAX_SEED - request.count}.")

    prompt, negative = style.apply(raw_prompt, request.negative.strip())
    # The style's and the operator's negatives are ours, not the person's: dropped where the family has no use.
    negative = ", ".join(part for part in (negative, default_negative) if part) if defaults.negative_prompt else ""
    recipes = tuple(
        Recipe(prompt=raw_prompt, negative=request.negative.strip(), style=style.name, seed=seed + index,
               steps=steps, guidance=guidance, width=width, height=height, strength=strength, model=model,
               edit=None if edit is None else edit.to_dict())
        for index in range(request.count)
    )
    lora = (style.lora, style.lora_scale) if style.lora else None
    if canvas is not None:
        # Any edits of one size batch together: each image brings its own canvas and mask.
        return Plan(request_id=request.id, recipes=recipes, prompt=prompt, negative=negative, init_image=canvas.image,
                    batch_key=("inpaint", width, height, steps, guidance, strength, lora, model), lora=lora,
                    mask_image=canvas.mask)
    init_image = fit_image(request.init_image, width, height) if img2img else None
    batch_key = ("img2img" if img2img else "txt2img", width, height, steps, guidance, strength, lora, model)
    return Plan(request_id=request.id, recipes=recipes, prompt=prompt, negative=negative, init_image=init_image,
                batch_key=batch_key, lora=lora)


def resolve_model(request: GenerationRequest, styles: StyleBook, names: list[str]) -> str:
    """The configured model a request runs on: its own choice, else its style's, else the default (``names[0]``).

    Raises ValueError for the person. A style made for one model pins it: asking for another with that style is
    refused rather than silently changed, since the style's prompt and numbers were tuned for its model.
    """
    pinned = styles.get(request.style).model if request.style else None
    name = request.model or pinned or names[0]
    if name not in names:
        raise ValueError(f"Unknown model '{name}'; choose one of {', '.join(names)} (see /models).")
    if pinned and name != pinned:
        raise ValueError(f"The style '{request.style}' is made for the model '{pinned}'; leave the model out or pick "
                         "another style.")
    return name


def upscaled_size(width: int, height: int, factor: int) -> tuple[int, int]:
    """The size an upscale by ``factor`` ends at: as much of the factor as ``MAX_SIDE`` allows, aspect kept.

    Raises ValueError (for the person) when the picture cannot get any larger.
    """
    scale = min(factor, MAX_SIDE / max(width, height))
    if scale <= 1:
        raise ValueError(f"This image is already {width}×{height}; images can be at most {MAX_SIDE} pixels on a side.")
    return max(1, round(width * scale)), max(1, round(height * scale))


def _upscale_plan(request: GenerationRequest, defaults: ModelDefaults, model: str) -> Plan:
    """A GAN upscale of ``request.init_image``: its recipe is the source's recipe (the request carries it, see
    ``Recipe.request``) at the new size, with the upscaler named."""
    if defaults.upscaler is None:
        raise ValueError("No upscaler is configured (upscaler.model), so images can't be upscaled with it.")
    if request.init_image is None or request.seed is None or request.steps is None or request.guidance is None:
        raise ValueError("An upscale needs its source image and that image's recipe (seed, steps, guidance).")
    width, height = upscaled_size(request.init_image.width, request.init_image.height, defaults.upscale_factor)
    recipe = Recipe(prompt=request.prompt, negative=request.negative, style=request.style, seed=request.seed,
                    steps=request.steps, guidance=request.guidance, width=width, height=height,
                    strength=request.strength, model=model, upscaler=defaults.upscaler,
                    edit=None if request.edit is None else request.edit.to_dict())
    # Its own batch: upscales run one tile at a time, so batching them would only make each wait for the others.
    return Plan(request_id=request.id, recipes=(recipe,), prompt=request.prompt, negative=request.negative,
                init_image=request.init_image, batch_key=("upscale", width, height, request.id), upscale=True)


def _first(*values):
    return next(value for value in values if value is not None)


ProgressCallback = Callable[[str, Progress], None]
"""Called with a plan's request id and its progress (on the engine's thread, or the event loop: see the caller)."""
CancelCheck = Callable[[str], bool]
"""Asked between steps whether a request id was cancelled."""
Results = list[list[GeneratedImage] | BaseException]
"""One entry per plan, in order: its images, or the exception that stands in for them."""
