"""Requests, recipes and plans: what a person asked for, resolved into every number a pipeline call needs.

This half of generation is pure and imports no torch, so the bot core, the cogs and the Ray backend's planner use it
cheaply: ``resolve_plan`` turns a request plus the model's defaults and the styles into a ``Plan`` with every number
decided (size, steps, seeds, prompts). A failed validation costs nothing, and a plan made on the bot runs the same
on any replica. ``models/engine.py`` is the other half: the only code that touches the GPU.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any
from uuid import uuid4

from PIL import Image

from models.edits import EDIT_STRENGTH, Edit, prepare
from models.images import fit_image
from models.loras import LoraWeights, with_triggers
from models.styles import Style, StyleBook
from models.text import Text

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
MAX_REFERENCES = 5
"""Most reference pictures one request may carry (/blend's five attachments)."""
WEIGHT_TOLERANCE = 1e-3
"""Shares are stored rounded, so "together at most 1" allows this much over."""
REFERENCE_SIDE = 512
"""Reference pictures are kept as their square centre at this side: what the CLIP image encoders look at (they
centre-crop to a square of 224 px or so), with room to spare, and a bounded size to store and send to replicas."""
REFERENCE_READ_SIDE = 2 * REFERENCE_SIDE
"""A reference picture is decoded at most this long a side: the centre square the plan keeps stays REFERENCE_SIDE
sharp for any shape up to 2:1 (longer strips give a softer square, still far above what the image encoders see)."""
DESCRIBE_SIDE = 768
"""A picture to describe is kept (and stored with its job) at most this large: captioners read 384-pixel inputs."""
MAX_INPUT_IMAGES = 3
"""Most pictures one instruction edit may carry (Qwen-Image-Edit-2509 takes three); each family's
``max_input_images`` says how many its models take."""
MIN_INPUT_SIDE = 64
"""An instruction edit's pictures are enlarged to at least this a side: FLUX.2's pipelines refuse anything smaller."""
MAX_INPUT_ASPECT = 8
"""The longest shape (long side over short side) of a picture to edit by instruction, as FLUX.2's pipelines allow."""
MAX_SECONDS = 10.0
"""The longest clip one video request asks for (Wan and LTX are trained on about 5 s; an extend adds another)."""
MOTIONS: dict[str, str] = {
    "": "",
    "low": "subtle motion, slow gentle movement, steady camera",
    "high": "dynamic motion, fast movement, moving camera",
}
"""/animate's ``motion``: words added to the prompt. Neither Wan nor LTX-Video has a motion input, and both follow
what the prompt says of movement; the recipe keeps the person's own prompt and the motion apart."""


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
    reference_weights: tuple[float, ...] | None = None
    """Set when reference pictures (/blend, /imagine's ``reference``) steered the image: each picture's share of the
    conditioning, in the order they were given; the prompt had the rest. The pictures themselves are the job's."""
    edit: dict[str, Any] | None = None  # Edit.to_dict() when the image is an edit (zoom, pan, region) of a source
    inputs: tuple[str, ...] | None = None
    """Set when the image is an instruction edit: its input pictures' digests (``picture_digest``) in the order the
    prompt calls them image 1, image 2, ...; the pictures themselves are the job's."""
    control: dict[str, Any] | None = None
    """Set when a ControlNet kept a picture's structure: its ``kind``, conditioning ``scale`` and the ``source``
    picture's digest (``picture_digest``); the picture itself is the job's."""
    safety: dict[str, Any] | None = None
    """The safety check's verdict on the image (``models.safety.SafetyCheck.to_dict()``: classifier, score, whether it
    was flagged and what was done with it); None where no check is configured."""
    loras: tuple[tuple[str, float], ...] | None = None
    """The LoRAs the image was made with (its style's and the person's), by configured name, at their weights."""
    triggers: tuple[str, ...] | None = None
    """The LoRAs' trigger words that were appended to the prompt (the recipe's prompt is the person's own)."""
    draft: bool = False
    """Made at the model's draft settings (``Draft``: fewer steps, smaller, its draft cache on): a quick look, which
    ✨ Enhance redraws at full settings."""
    frames: int | None = None
    """Set when the result is a video: how many frames the model made (``fps`` of them a second)."""
    fps: int | None = None
    motion: str | None = None  # a video's motion (``MOTIONS``), when one was asked for
    loop: bool = False  # a video whose last frame is its first

    @property
    def video(self) -> bool:
        return self.frames is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON's shapes (what the PNG and the database hold): the weights and inputs as lists."""
        data = asdict(self)
        for name in TUPLE_FIELDS:
            if data[name] is not None:
                data[name] = list(data[name])
        if data["loras"] is not None:
            data["loras"] = [list(pair) for pair in data["loras"]]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        # Fields with defaults came later: images stored before them lack them.
        known = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        for name in TUPLE_FIELDS:  # JSON has no tuples
            if known.get(name) is not None:
                known[name] = tuple(known[name])
        if known.get("loras") is not None:
            known["loras"] = tuple((name, weight) for name, weight in known["loras"])
        return cls(**known)

    def request(self, init_image: Image.Image | None = None,
                input_images: list[Image.Image] | None = None) -> GenerationRequest:
        """A request that plans back to exactly this recipe (img2img, edits and upscales need the same source image,
        an instruction edit its input pictures in order; a recipe with reference weights needs its reference
        pictures too, set on the request, and one with a kept structure its ``control`` kind, with the source
        picture as ``init_image``: left to the caller, as a GAN upscale of such an image needs no ControlNet)."""
        return GenerationRequest(
            prompt=self.prompt, style=self.style, negative=self.negative, seed=self.seed, count=1,
            steps=self.steps, guidance=self.guidance, width=self.width, height=self.height,
            init_image=init_image, strength=self.strength, upscale=self.upscaler is not None, model=self.model,
            reference_weights=None if self.reference_weights is None else list(self.reference_weights),
            edit=None if self.edit is None else Edit.from_dict(self.edit), input_images=input_images,
            loras=[(name, weight) for name, weight in self.loras or ()],
            draft=self.draft,
            video=self.video, seconds=None if self.frames is None else self.frames / (self.fps or 1),
            motion=self.motion or "", loop=self.loop,
        )


TUPLE_FIELDS = ("reference_weights", "inputs", "loras", "triggers")
"""The recipe's tuple fields, lists in JSON."""


@dataclass
class GenerationRequest:
    """What a person asked for. JSON-serialisable through to_dict/from_dict, except the pictures (the img2img source
    and the references), which storage keeps as files beside the job."""

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
    describe: bool = False
    """Write prompt suggestions for ``init_image`` with the captioning model instead of generating (/describe)."""
    model: str = ""
    """The configured name of the model to use (bot.yaml's ``models``); empty: the style's model, else the default."""
    references: list[Image.Image] | None = None
    """Reference pictures (/blend's, /imagine's ``reference``): the image is steered towards what they show."""
    reference_weights: list[float] | None = None
    """Each reference picture's share of the conditioning (more than 0, together at most 1); the prompt has the
    rest, so a blend without a prompt has shares summing to 1. Set with the pictures, and kept (JSON) when they are
    stored apart."""
    id: str = field(default_factory=lambda: uuid4().hex)
    edit: Edit | None = None
    """Edit ``init_image`` (zoom out, pan, repaint regions or its transparent parts) instead of restyling it all."""
    input_images: list[Image.Image] | None = None
    """Edit by instruction (the prompt says what to change) on a family that can (``ModelDefaults.instruct_edit``):
    the pictures, in the order the prompt calls them image 1, image 2, ...; at most the model's
    ``max_input_images``. The first sets the result's shape unless width/height are given."""
    control: str = ""
    """Keep ``init_image``'s structure with the model's ControlNet of this kind (``edges``, ``depth``) and paint the
    rest from the prompt, instead of restyling the picture; empty: no ControlNet."""
    safety: str = ""
    """What a picture the safety check flags gets where this request was asked (``allow``, ``spoiler`` or ``block``:
    the request desk decides it by the place, ``bot/safety.py``); empty: ``block``."""
    loras: list[tuple[str, float]] = field(default_factory=list)
    """LoRAs the person picked (/imagine's ``lora``: ``models.loras.LoraBook.parse``), by configured name, at their
    weights; the style's own come on top (``LoraBook.resolve``). Kept (JSON) with the job, so buttons reuse them."""
    draft: bool | None = False
    """Render at the model's draft settings (``ModelDefaults.draft``); None: the person's default, which the request
    desk reads (/settings me draft) before anything is planned."""
    video: bool = False
    """Make a video (on a video family): from the words, or from ``init_image`` as its first frame."""
    seconds: float | None = None
    """A video's length; None: the model's default clip."""
    motion: str = ""  # a video's motion: one of MOTIONS
    loop: bool = False  # a video that ends on its first frame (where the model can: ``ModelDefaults.loop``)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in PICTURE_FIELDS}
        data["edit"] = None if self.edit is None else self.edit.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], init_image: Image.Image | None = None,
                  references: list[Image.Image] | None = None,
                  input_images: list[Image.Image] | None = None) -> GenerationRequest:
        known = {f.name for f in fields(cls)} - PICTURE_FIELDS - {"edit"}
        edit = data.get("edit")  # requests stored before edits existed have none
        return cls(**{k: v for k, v in data.items() if k in known}, init_image=init_image, references=references,
                   edit=None if edit is None else Edit.from_dict(edit), input_images=input_images)


PICTURE_FIELDS = frozenset({"init_image", "references", "input_images"})
"""The request's fields that hold pictures: not JSON, stored as files."""


@dataclass(frozen=True)
class Plan:
    """A request resolved against the model and styles; plans with equal batch_key can share one pipeline call."""

    request_id: str
    recipes: tuple[Recipe, ...]
    prompt: str  # after the style template
    negative: str  # style negative, the person's negative and the default negative
    init_image: Image.Image | None
    batch_key: tuple
    loras: tuple[LoraWeights, ...] = ()
    """The LoRA set the call runs with (none: the bare model); part of the batch key, so a call has one set."""
    upscale: bool = False  # init_image goes through the GAN upscaler to each recipe's size: no pipeline call
    references: tuple[Image.Image, ...] = ()  # reference pictures, each REFERENCE_SIDE square
    reference_weights: tuple[float, ...] = ()  # their shares (the recipes record them too)
    mask_image: Image.Image | None = None
    """Set for edits (inpainting): white where ``init_image``, the prepared canvas, is repainted; the engine keeps
    the rest pixel for pixel (``models.edits.keep_outside``)."""
    describe: bool = False  # init_image goes through the captioning model: the result is a ``Described``
    input_images: tuple[Image.Image, ...] = ()
    """An instruction edit's pictures in order (each fitted within the model's native area); the batch key holds
    their digests, so every image of a call edits the same pictures."""
    flagged_action: str = "block"  # what the safety check's flagged pictures get (the request's ``safety``)
    control: str | None = None
    """The kind of structure ``init_image`` gives (a ControlNet's picture, not one to restyle); its scale is
    ``control_scale`` and the batch key holds the picture's digest, so a call keeps one picture's structure."""
    control_scale: float = 1.0
    fps: int = 0  # a video plan's frame rate (its recipes' ``frames`` say how many); 0 for pictures

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
class Clip:
    """A video as a family makes it: its frames in order, played ``fps`` a second."""

    frames: tuple[Image.Image, ...]
    fps: int


@dataclass(frozen=True)
class GeneratedImage:
    """One result: a picture, or a video (``frames``; ``image`` is then its first frame, the poster)."""

    image: Image.Image
    recipe: Recipe
    frames: tuple[Image.Image, ...] = ()


@dataclass(frozen=True)
class Described:
    """A describe plan's result (its one "image"): prompts written from the picture, and the shape to draw them in.

    ``prompts`` are all different, the most different first (``models/suggestions.py``); there are a few more than
    /describe shows, so those the server's banned terms rule out can be replaced.
    """

    prompts: tuple[str, ...]
    aspect: str  # one of ASPECTS: the picture's own shape
    captioner: str  # the model that wrote the captions
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Described:
        return cls(prompts=tuple(data["prompts"]), aspect=data["aspect"], captioner=data["captioner"],
                   seed=data["seed"])


@dataclass(frozen=True)
class Draft:
    """A model's draft settings: how much cheaper a draft is drawn (its cache is the engine's business)."""

    steps: int
    """Steps of a draft (at most the model's own)."""
    scale: float
    """Each side of a draft is this fraction of the full size (snapped to the model's multiple)."""

    def applied(self, defaults: ModelDefaults) -> ModelDefaults:
        """``defaults`` as a draft sees them: its steps, and its sides scaled (so every shape keeps its ratio)."""
        return replace(defaults, steps=min(self.steps, defaults.steps),
                       width=snap(defaults.width * self.scale, defaults.multiple),
                       height=snap(defaults.height * self.scale, defaults.multiple))


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
    references: bool = False  # the model can be steered by reference pictures (/blend, /imagine's reference)
    captioner: str | None = None  # the captioning model loaded beside the model (describe.model), for /describe
    unloaded: tuple[str, ...] = ()  # optional helpers configured but not loaded (their bot.yaml keys): see the log
    instruct_edit: bool = False  # it edits pictures by instruction: GenerationRequest.input_images
    max_input_images: int = 0  # most pictures one instruction edit takes (0 where it edits none)
    text_to_image: bool = True  # it draws from words alone (an edit-only model needs a picture)
    controls: tuple[tuple[str, float], ...] = ()  # its loaded ControlNets: (kind, conditioning scale)
    draft: Draft | None = None  # its draft settings (None: drafts are drawn at full settings)
    video: bool = False  # it makes videos (GenerationRequest.video), not pictures
    frames: int = 0  # a video model's default clip, in frames
    fps: int = 0  # and its frame rate
    frame_multiple: int = 1  # a clip has frame_multiple * k + 1 frames (the VAE's temporal compression)
    loop: bool = False  # it can end a clip on its first frame


def snap(value: float, multiple: int) -> int:
    """Nearest multiple of ``multiple`` (at least one multiple)."""
    return max(multiple, round(value / multiple) * multiple)


def aspect_size(aspect: str, defaults: ModelDefaults) -> tuple[int, int]:
    """Width and height for an aspect ratio with about the native pixel area, snapped to the size multiple."""
    try:
        ratio_w, ratio_h = ASPECTS[aspect]
    except KeyError:
        raise ValueError(Text("Unknown aspect '{aspect}'; choose one of {aspects}.", aspect=aspect,
                              aspects=", ".join(ASPECTS))) from None
    return ratio_size(ratio_w / ratio_h, defaults)


def ratio_size(ratio: float, defaults: ModelDefaults) -> tuple[int, int]:
    """Width and height of shape ``ratio`` (width / height) with about the native pixel area, snapped."""
    area = defaults.width * defaults.height
    width = math.sqrt(area * ratio)
    return snap(width, defaults.multiple), snap(area / width, defaults.multiple)


# --------------------------------------------------------------------------------------------------- planning


def resolve_plan(request: GenerationRequest, defaults: ModelDefaults, styles: StyleBook, default_negative: str,
                 model: str, *, max_count: int = 4) -> Plan:
    """Turn a request into a Plan, or raise UnknownStyle/ValueError with a message for the person. Pure, cheap.

    ``model`` is the name recipes record: the configured name, never where the weights lie on the server. It is part
    of the batch key, so one pipeline call never mixes models.
    """
    plan = _resolve(request, defaults, styles, default_negative, model, max_count=max_count)
    return replace(plan, flagged_action=request.safety or "block")


def _resolve(request: GenerationRequest, defaults: ModelDefaults, styles: StyleBook, default_negative: str,
             model: str, *, max_count: int) -> Plan:
    if request.upscale:
        return _upscale_plan(request, defaults, model)
    if request.describe:
        return _describe_plan(request, defaults, model, max_count)
    if request.video != defaults.video:
        if defaults.video:
            raise ValueError(Text("This model ({family}) makes videos: ask for one with /animate, or pick a picture "
                                  "model (see /models).", family=defaults.family))
        raise ValueError(Text("This model ({family}) makes pictures, not videos; pick a video model (see /models).",
                              family=defaults.family))
    if request.video:
        return _video_plan(request, defaults, styles, default_negative, model, max_count)
    style = styles.get(request.style)
    draft = bool(request.draft)
    if draft and defaults.draft is not None:  # the draft's steps and size stand in for the family's and the style's
        defaults = defaults.draft.applied(defaults)
        style = style.model_copy(update={"steps": None})
    raw_prompt = request.prompt.strip()
    edit = request.edit
    # An edit repaints its canvas from the picture around it and the words alone: reference pictures play no part.
    references, reference_weights = _references(request, defaults) if edit is None else ((), ())
    if not raw_prompt and not references and request.init_image is None:  # a picture to redraw needs no words
        raise ValueError(Text("Your prompt is empty; describe the image you want."))
    if not raw_prompt and references and sum(reference_weights) < 1 - WEIGHT_TOLERANCE:
        raise ValueError(Text("Without a prompt the pictures' weights are the whole mix; give a prompt, or leave "
                              "the weights as they are."))
    if not 1 <= request.count <= max_count:
        raise ValueError(Text("You can ask for 1 to {max_count} images at a time.", max_count=max_count))
    inputs = _input_pictures(request, defaults)
    if edit is not None:
        if request.init_image is None:
            raise ValueError(Text("An edit needs the picture to edit."))
        if not defaults.inpaint:
            raise ValueError(Text("This model ({family}) can't repaint part of a picture (zoom out, pan, vary a "
                                  "region); ask for a model that can.", family=defaults.family))
    control = _control(request, defaults)
    img2img = request.init_image is not None and edit is None and control is None
    if img2img and not defaults.img2img:
        raise ValueError(Text("This model ({family}) can't restyle a picture; leave the image out, or ask for a "
                              "model that can.", family=defaults.family))
    steps, guidance = _steps_and_guidance(request, style, defaults)
    strength: float | None = None
    if img2img:
        strength = float(_first(request.strength, style.strength, defaults.strength))
    elif edit is not None:  # the style's strength is tuned for restyling a whole picture, not for filling a hole
        strength = float(_first(request.strength, EDIT_STRENGTH))
    if strength is not None:
        if not 0 < strength <= 1:
            raise ValueError(Text("Strength must be more than 0 and at most 1."))
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
    elif inputs:  # an instruction edit keeps its first picture's shape, at the model's own area
        width, height = ratio_size(inputs[0].width / inputs[0].height, defaults)
    elif control is not None:  # the structure kept is the picture's: so is its shape
        assert request.init_image is not None
        width, height = ratio_size(request.init_image.width / request.init_image.height, defaults)
    else:
        width, height = aspect_size(request.aspect, defaults)
    if max(width, height) > MAX_SIDE:
        raise ValueError(Text("Images can be at most {max_side} pixels on a side.", max_side=MAX_SIDE))

    seed = request.seed if request.seed is not None else random.randrange(MAX_SEED - max_count)
    if seed < 0 or seed + request.count > MAX_SEED:
        raise ValueError(Text("The seed must be between 0 and {max_seed}.", max_seed=MAX_SEED - request.count))

    source = None if control is None else fit_image(request.init_image, width, height)  # type: ignore[arg-type]
    control_record = None if source is None else {"kind": control[0], "scale": control[1],
                                                  "source": picture_digest(source)}
    loras = styles.loras.resolve(style.loras, request.loras, defaults.family, style=style.name)
    triggers = tuple(word for lora, _ in loras for word in lora.triggers)
    prompt, negative = style.apply(raw_prompt, request.negative.strip())
    prompt = with_triggers(prompt, triggers)
    # The style's and the operator's negatives are ours, not the person's: dropped where the family has no use.
    negative = ", ".join(part for part in (negative, default_negative) if part) if defaults.negative_prompt else ""
    recipes = tuple(
        Recipe(prompt=raw_prompt, negative=request.negative.strip(), style=style.name, seed=seed + index,
               steps=steps, guidance=guidance, width=width, height=height, strength=strength, model=model,
               reference_weights=reference_weights or None,
               edit=None if edit is None else edit.to_dict(),
               inputs=tuple(map(picture_digest, inputs)) or None, control=control_record,
               loras=tuple((lora.name, weight) for lora, weight in loras) or None, triggers=triggers or None,
               draft=draft)
        for index in range(request.count)
    )
    adapters = tuple(LoraWeights(entry.id, entry.weight_name, weight) for entry, weight in loras)
    if canvas is not None:
        # Any edits of one size batch together: each image brings its own canvas and mask.
        return Plan(request_id=request.id, recipes=recipes, prompt=prompt, negative=negative, init_image=canvas.image,
                    batch_key=("inpaint", width, height, steps, guidance, strength, adapters, model, draft),
                    loras=adapters,
                    mask_image=canvas.mask)
    if inputs:
        # Every image of an instruction-edit call edits the same pictures (FLUX.2 takes one list for the call).
        return Plan(request_id=request.id, recipes=recipes, prompt=prompt, negative=negative, init_image=None,
                    batch_key=("instruct", width, height, steps, guidance, adapters, model, draft, recipes[0].inputs),
                    loras=adapters, input_images=inputs)
    if control is not None and control_record is not None:
        # Images keeping the same picture's structure batch together: one control map per call.
        return Plan(request_id=request.id, recipes=recipes, prompt=prompt, negative=negative, init_image=source,
                    batch_key=("control", width, height, steps, guidance, adapters, model, draft, control,
                               control_record["source"]), loras=adapters, control=control[0], control_scale=control[1])
    init_image = fit_image(request.init_image, width, height) if img2img else None
    # An IP-Adapter call gives every image the same image prompt: one call, one set of pictures and weights.
    reference_key = (tuple(map(picture_digest, references)), reference_weights) if references else None
    # A draft runs with its cache on: never in one call with full images, even of the same numbers.
    batch_key = ("img2img" if img2img else "txt2img", width, height, steps, guidance, strength, adapters, model,
                 reference_key, draft)
    return Plan(request_id=request.id, recipes=recipes, prompt=prompt, negative=negative, init_image=init_image,
                batch_key=batch_key, loras=adapters, references=references, reference_weights=reference_weights)


def _steps_and_guidance(request: GenerationRequest, style: Style, defaults: ModelDefaults) -> tuple[int, float]:
    """The steps and guidance asked (the request's, else the style's, else the model's), each checked against the
    model; a negative prompt is refused here too where the model takes none (pictures and videos alike)."""
    if request.negative.strip() and not defaults.negative_prompt:
        raise ValueError(Text("This model ({family}) doesn't take a negative prompt; leave it out and describe what "
                              "you want instead.", family=defaults.family))
    steps = _first(request.steps, style.steps, defaults.steps)
    if not 1 <= steps <= defaults.max_steps:
        raise ValueError(Text("Steps must be between 1 and {max_steps} for this model.", max_steps=defaults.max_steps))
    guidance = float(_first(request.guidance, style.guidance, defaults.guidance))
    if not 0 <= guidance <= MAX_GUIDANCE:
        raise ValueError(Text("Guidance must be between 0 and {max_guidance:g}.", max_guidance=MAX_GUIDANCE))
    return steps, guidance


def clip_frames(seconds: float, fps: int, multiple: int) -> int:
    """The frame count nearest ``seconds`` at ``fps`` that the model makes: ``multiple * k + 1``, at least one step
    of its temporal compression past the first frame."""
    steps = max(1, round((seconds * fps - 1) / multiple))
    return steps * multiple + 1


def _video_plan(request: GenerationRequest, defaults: ModelDefaults, styles: StyleBook, default_negative: str,
                model: str, max_count: int) -> Plan:
    """A video: from the words, or from ``init_image`` as its first frame (image-to-video), one clip a request.

    Its size is the model's own shape, or the picture's shape at the model's area; its length the model's clip or
    ``seconds``, in the frame counts the model makes. The motion's words join the prompt (``MOTIONS`` says why).
    """
    if request.edit is not None or request.references or request.reference_weights or request.input_images:
        raise ValueError(Text("A video starts from words and at most one picture: leave out regions, reference "
                              "pictures and pictures to edit."))
    if request.count != 1:
        raise ValueError(Text("A video request makes one video at a time."))
    if request.motion not in MOTIONS:
        raise ValueError(Text("Unknown motion '{motion}'; choose low or high.", motion=request.motion))
    if request.loop and not defaults.loop:
        raise ValueError(Text("This model ({family}) can't make a loop; leave loop out, or pick a model that can "
                              "(see /models).", family=defaults.family))
    if request.loop and request.init_image is None:
        raise ValueError(Text("A loop starts and ends on a picture: attach an image, or press 🔁 under a video."))
    seconds = defaults.frames / defaults.fps if request.seconds is None else request.seconds
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(Text("A video can be more than 0 and at most {max:g} seconds long.", max=MAX_SECONDS))
    frames = clip_frames(seconds, defaults.fps, defaults.frame_multiple)
    style = styles.get(request.style)
    raw_prompt = request.prompt.strip()
    if not raw_prompt and request.init_image is None:
        raise ValueError(Text("Your prompt is empty; describe the video you want."))
    steps, guidance = _steps_and_guidance(request, style, defaults)
    if request.width is not None or request.height is not None:
        width = snap(request.width or defaults.width, defaults.multiple)
        height = snap(request.height or defaults.height, defaults.multiple)
    elif request.init_image is not None:
        width, height = ratio_size(request.init_image.width / request.init_image.height, defaults)
    else:
        width, height = defaults.width, defaults.height
    if max(width, height) > MAX_SIDE:
        raise ValueError(Text("Images can be at most {max_side} pixels on a side.", max_side=MAX_SIDE))
    seed = request.seed if request.seed is not None else random.randrange(MAX_SEED - max_count)
    if not 0 <= seed < MAX_SEED:
        raise ValueError(Text("The seed must be between 0 and {max_seed}.", max_seed=MAX_SEED - 1))
    loras = styles.loras.resolve(style.loras, request.loras, defaults.family, style=style.name)
    triggers = tuple(word for lora, _ in loras for word in lora.triggers)
    prompt, negative = style.apply(raw_prompt, request.negative.strip())
    prompt = ", ".join(part for part in (with_triggers(prompt, triggers), MOTIONS[request.motion]) if part)
    negative = ", ".join(part for part in (negative, default_negative) if part) if defaults.negative_prompt else ""
    recipe = Recipe(prompt=raw_prompt, negative=request.negative.strip(), style=style.name, seed=seed, steps=steps,
                    guidance=guidance, width=width, height=height, strength=None, model=model, frames=frames,
                    fps=defaults.fps, motion=request.motion or None, loop=request.loop,
                    loras=tuple((lora.name, weight) for lora, weight in loras) or None, triggers=triggers or None)
    first = None if request.init_image is None else fit_image(request.init_image, width, height)
    adapters = tuple(LoraWeights(entry.id, entry.weight_name, weight) for entry, weight in loras)
    # Its own batch, like an upscale: clips are made one at a time (a first frame a call), so a batch of several
    # would only make each wait for the others, and the fair lines count one batch per video.
    batch_key = ("video", width, height, frames, steps, guidance, adapters, model, request.id)
    return Plan(request_id=request.id, recipes=(recipe,), prompt=prompt, negative=negative, init_image=first,
                batch_key=batch_key, loras=adapters, fps=defaults.fps)


def _references(request: GenerationRequest,
                defaults: ModelDefaults) -> tuple[tuple[Image.Image, ...], tuple[float, ...]]:
    """The request's reference pictures (each as the square the image encoders see) and their shares, checked."""
    pictures = request.references or []
    weights = request.reference_weights or []
    if not pictures and not weights:
        return (), ()
    if not defaults.references:
        raise ValueError(Text("This model ({family}) can't take reference pictures; leave them out, or ask for a "
                              "model that can (see /models).", family=defaults.family))
    if not 1 <= len(pictures) <= MAX_REFERENCES:
        raise ValueError(Text("You can give 1 to {max} reference pictures.", max=MAX_REFERENCES))
    if len(weights) != len(pictures):
        raise ValueError(Text("Give one weight per picture: {pictures} pictures, {weights} weights.",
                              pictures=len(pictures), weights=len(weights)))
    if any(not 0 < weight <= 1 for weight in weights) or sum(weights) > 1 + WEIGHT_TOLERANCE:
        raise ValueError(Text("Each picture's share must be more than 0, and together at most 1."))
    return (tuple(fit_image(picture, REFERENCE_SIDE, REFERENCE_SIDE) for picture in pictures),
            tuple(round(weight, 4) for weight in weights))


def _control(request: GenerationRequest, defaults: ModelDefaults) -> tuple[str, float] | None:
    """The ControlNet a request asks for, as (kind, conditioning scale), checked against the model's; None for
    none. Raises ValueError for the person."""
    if not request.control:
        return None
    if request.init_image is None:
        raise ValueError(Text("Keeping a picture's structure (`control`) needs the picture: attach it with `image`."))
    if request.edit is not None or request.input_images or request.references or request.reference_weights:
        raise ValueError(Text("Keeping a picture's structure (`control`) takes that picture and words alone: leave "
                              "out the region, the pictures to edit and the reference pictures."))
    scales = dict(defaults.controls)
    if request.control not in scales:
        if not scales:
            raise ValueError(Text("This model ({family}) has no ControlNet set up, so it can't keep a picture's "
                                  "structure; ask for a model that can (see /models).", family=defaults.family))
        raise ValueError(Text("This model ({family}) can keep a picture's {kinds}, not its {kind}.",
                              family=defaults.family, kinds=" / ".join(scales), kind=request.control))
    return request.control, scales[request.control]


def _input_pictures(request: GenerationRequest, defaults: ModelDefaults) -> tuple[Image.Image, ...]:
    """An instruction edit's pictures, checked against what the model takes, each in RGB and at most the model's
    native area (the pipelines resize them to about that anyway; a bounded size is cheap to store and send)."""
    pictures = request.input_images or []
    if not pictures:
        if not defaults.text_to_image and request.init_image is None:
            raise ValueError(Text("This model ({family}) edits pictures by instruction and can't draw from words "
                                  "alone; attach the picture to change.", family=defaults.family))
        return ()
    if not defaults.instruct_edit:
        raise ValueError(Text("This model ({family}) can't edit a picture by instruction; ask for a model that can "
                              "(see /models).", family=defaults.family))
    if len(pictures) > defaults.max_input_images:
        raise ValueError(Text("This model ({family}) takes at most {max} picture(s) to edit by instruction; you gave "
                              "{count}.", family=defaults.family, max=defaults.max_input_images,
                              count=len(pictures)))
    if request.init_image is not None or request.edit is not None or request.references or request.reference_weights:
        raise ValueError(Text("An edit by instruction takes its pictures and words alone: leave out the picture to "
                              "restyle, the region and the reference pictures."))
    if any(max(p.width / p.height, p.height / p.width) > MAX_INPUT_ASPECT for p in pictures):
        raise ValueError(Text("A picture to edit can be at most {ratio} times longer than it is wide; crop the long "
                              "one.", ratio=MAX_INPUT_ASPECT))
    return _fitted(pictures, defaults)


def _fitted(pictures: Sequence[Image.Image], defaults: ModelDefaults) -> tuple[Image.Image, ...]:
    """An instruction edit's pictures as the model gets them (and their recipe's digests name them): in RGB, within
    the model's native area, at least ``MIN_INPUT_SIDE`` a side."""
    area = defaults.width * defaults.height
    return tuple(_at_least(_within_area(picture.convert("RGB"), area), MIN_INPUT_SIDE) for picture in pictures)


def _at_least(picture: Image.Image, side: int) -> Image.Image:
    """The picture enlarged (keeping its shape) until its short side is ``side``: a small picture is still a fine
    thing to edit, and the pipelines read nothing smaller."""
    scale = side / min(picture.width, picture.height)
    if scale <= 1:
        return picture
    return picture.resize((math.ceil(picture.width * scale), math.ceil(picture.height * scale)),
                          Image.Resampling.LANCZOS)


def _within_area(picture: Image.Image, area: int) -> Image.Image:
    scale = math.sqrt(area / (picture.width * picture.height))
    if scale >= 1:
        return picture
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    return picture.resize(size, Image.Resampling.LANCZOS)


def picture_digest(picture: Image.Image) -> str:
    """A short fingerprint of a picture's pixels: equal pictures, equal digests (batch keys compare pictures so)."""
    return hashlib.sha1(picture.tobytes()).hexdigest()[:16]


def reference_shares(weights: list[float], prompt_weight: float) -> list[float]:
    """Relative weights of the pictures and of the prompt (0: no prompt) as the pictures' shares of the mix.

    Raises ValueError for the person when a weight is negative or nothing is left to mix.
    """
    if any(weight < 0 for weight in [*weights, prompt_weight]):
        raise ValueError(Text("Weights can't be negative."))
    total = sum(weights) + prompt_weight
    if total <= 0 or not all(weights):
        raise ValueError(Text("Every picture needs a weight above 0."))
    return [weight / total for weight in weights]


def resolve_model(request: GenerationRequest, styles: StyleBook, names: list[str]) -> str:
    """The configured model a request runs on: its own choice, else its style's, else the default (``names[0]``).

    The bot's request desk (``bot.desk.resolve_model``) decides a job's model once, with the person's and channel's
    settings, and stores it in the request; here the planner checks it again, and fills it for requests that come
    without one (the command line, jobs stored before jobs kept their model). Raises ValueError for the person.
    A style made for one model pins it: asking for another with that style is refused rather than silently
    changed, since the style's prompt and numbers were tuned for its model.
    """
    pinned = styles.get(request.style).model if request.style else None
    return checked_model(request.model or pinned or names[0], request.style, pinned, names)


def checked_model(name: str, style: str, pinned: str | None, names: list[str]) -> str:
    """``name`` when it is one of the configured ``names`` and the style (``pinned`` to a model, or not) allows it;
    ValueError for the person otherwise."""
    if name not in names:
        raise ValueError(Text("Unknown model '{name}'; choose one of {names} (see /models).", name=name,
                              names=", ".join(names)))
    if pinned and name != pinned:
        raise ValueError(Text("The style '{style}' is made for the model '{model}'; leave the model out or pick "
                              "another style.", style=style, model=pinned))
    return name


def upscaled_size(width: int, height: int, factor: int) -> tuple[int, int]:
    """The size an upscale by ``factor`` ends at: as much of the factor as ``MAX_SIDE`` allows, aspect kept.

    Raises ValueError (for the person) when the picture cannot get any larger.
    """
    scale = min(factor, MAX_SIDE / max(width, height))
    if scale <= 1:
        raise ValueError(Text("This image is already {width}×{height}; images can be at most {max_side} pixels on "
                              "a side.", width=width, height=height, max_side=MAX_SIDE))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _upscale_plan(request: GenerationRequest, defaults: ModelDefaults, model: str) -> Plan:
    """A GAN upscale of ``request.init_image``: its recipe is the source's recipe (the request carries it, see
    ``Recipe.request``) at the new size, with the upscaler named; an instruction edit's keeps the digests of the
    pictures it was edited from (the request carries those pictures, as the source job stored them)."""
    if defaults.upscaler is None:
        raise ValueError(Text("No upscaler is configured (upscaler.model), so images can't be upscaled with it."))
    if request.init_image is None or request.seed is None or request.steps is None or request.guidance is None:
        raise ValueError(Text("An upscale needs its source image and that image's recipe (seed, steps, guidance)."))
    width, height = upscaled_size(request.init_image.width, request.init_image.height, defaults.upscale_factor)
    recipe = Recipe(prompt=request.prompt, negative=request.negative, style=request.style, seed=request.seed,
                    steps=request.steps, guidance=request.guidance, width=width, height=height,
                    strength=request.strength, model=model, upscaler=defaults.upscaler,
                    reference_weights=tuple(request.reference_weights) if request.reference_weights else None,
                    edit=None if request.edit is None else request.edit.to_dict(),
                    inputs=tuple(map(picture_digest, _fitted(request.input_images or (), defaults))) or None,
                    loras=tuple((name, weight) for name, weight in request.loras) or None)
    # Its own batch: upscales run one tile at a time, so batching them would only make each wait for the others.
    return Plan(request_id=request.id, recipes=(recipe,), prompt=request.prompt, negative=request.negative,
                init_image=request.init_image, batch_key=("upscale", width, height, request.id), upscale=True)


def _describe_plan(request: GenerationRequest, defaults: ModelDefaults, model: str, max_count: int) -> Plan:
    """Prompt suggestions for ``request.init_image``: one unit of work whose recipe records the seed and the
    picture's size (nothing is drawn). Its own batch, like an upscale: the captioner takes one picture at a time."""
    if defaults.captioner is None:
        raise ValueError(Text("Describing pictures is not set up on this bot: its operators can turn it on with "
                              "describe.model in bot.yaml."))
    if request.init_image is None:
        raise ValueError(Text("Attach the picture to describe."))
    seed = request.seed if request.seed is not None else random.randrange(MAX_SEED - max_count)
    picture = request.init_image
    if max(picture.size) > DESCRIBE_SIDE:
        picture = picture.copy()
        picture.thumbnail((DESCRIBE_SIDE, DESCRIBE_SIDE), Image.Resampling.LANCZOS)
    recipe = Recipe(prompt=request.prompt, negative="", style="", seed=seed, steps=0, guidance=0.0,
                    width=picture.width, height=picture.height, strength=None, model=model)
    return Plan(request_id=request.id, recipes=(recipe,), prompt=request.prompt, negative="", init_image=picture,
                batch_key=("describe", request.id), describe=True)


def _first(*values):
    return next(value for value in values if value is not None)


ProgressCallback = Callable[[str, Progress], None]
"""Called with a plan's request id and its progress (on the engine's thread, or the event loop: see the caller)."""
CancelCheck = Callable[[str], bool]
"""Asked between steps whether a request id was cancelled."""
PlanResult = list[GeneratedImage] | list[Described] | BaseException
"""A plan's result: its images (a describe plan's one ``Described``), or the exception that stands in for them."""
Results = list[PlanResult]
"""One result per plan, in order."""
