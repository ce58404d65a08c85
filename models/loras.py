"""LoRAs: small weight patches (a look, a character, a detail) that operators list in bot.yaml and people pick per
request, alone or with a style that names them.

Pure and torch-free like ``models/plan.py``, which resolves a request's LoRAs here: a ``Lora`` is one configured
entry, ``LoraBook`` the configured set, and ``parse_choice`` the one reading of the ``name:weight, name`` syntax that
/imagine's ``lora`` option and a style's ``loras`` key share. The engine only sees ``LoraWeights`` (where the weights
lie, at what weight) and switches adapters per batch (``models/engine.py``).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from models.text import Text

MAX_LORAS = 3
"""Most LoRAs one image mixes (the style's and the person's together): past a few they mostly fight each other."""
MIN_WEIGHT, MAX_WEIGHT = -2.0, 2.0
"""A LoRA's weight: 1 as trained, 0 off, negative pushes away from its look (slider LoRAs are made for that)."""
NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
"""Lower-case, and no spaces, colons or commas: the names stand in ``name:weight, name`` lists."""

Choice = tuple[str, float]
"""A LoRA picked by name, at a weight."""


class Lora(BaseModel):
    """One entry of bot.yaml's ``loras`` list."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=40, pattern=NAME_PATTERN)
    id: str = Field(min_length=1)
    """Hugging Face id or local path (a weights file, or a folder holding one) of the LoRA."""
    weight_name: str | None = Field(default=None, min_length=1)
    """The weights file in a Hub repository or folder that holds several; None: diffusers' default name."""
    weight: float = Field(default=1.0, ge=MIN_WEIGHT, le=MAX_WEIGHT)
    """Used when a request names it without a weight."""
    triggers: list[str] = []
    """Words the LoRA was trained to answer to: appended to the prompt whenever it is used."""
    families: list[str] = Field(min_length=1)
    """The model families (``models/families`` names: sd, sdxl, flux, ...) whose models it was trained for."""
    description: str = Field(default="", max_length=100)
    nsfw: bool = False
    """Only in age-restricted channels (and their threads), like an NSFW style or model."""


class LoraWeights(NamedTuple):
    """What the engine needs of one LoRA in a plan: where its weights lie and how strongly they apply."""

    id: str
    weight_name: str | None
    weight: float


class UnknownLora(ValueError):
    """A LoRA name that is not configured; the message lists close matches."""


class LoraBook:
    """The configured LoRAs, looked up by name (case-insensitive)."""

    def __init__(self, loras: Iterable[Lora] = ()) -> None:
        self._loras = {lora.name.lower(): lora for lora in loras}

    def __iter__(self):
        return iter(self._loras.values())

    def __len__(self) -> int:
        return len(self._loras)

    def find(self, name: str) -> Lora | None:
        """The LoRA called ``name``, or None."""
        return self._loras.get(name.strip().lower())

    def get(self, name: str) -> Lora:
        try:
            return self._loras[name.strip().lower()]
        except KeyError:
            close = difflib.get_close_matches(name.strip().lower(), list(self._loras), n=3, cutoff=0.5)
            if close:
                raise UnknownLora(Text("There is no LoRA called '{name}'. Did you mean {close}?", name=name,
                                       close=", ".join(close))) from None
            if not self._loras:
                raise UnknownLora(Text("This bot has no LoRAs (its operators can add them: loras: in bot.yaml).")
                                  ) from None
            raise UnknownLora(Text("There is no LoRA called '{name}'; choose from {names}.", name=name,
                                   names=", ".join(self._loras))) from None

    def parse(self, text: str) -> tuple[Choice, ...]:
        """``name:weight, name`` (a name alone takes the LoRA's default weight) as checked choices: every name
        configured, every weight a number from MIN_WEIGHT to MAX_WEIGHT, no name twice, at most MAX_LORAS. Raises
        ValueError (UnknownLora for a name) with a message for the person."""
        choices: list[Choice] = []
        for part in (part.strip() for part in text.split(",")):
            if not part:
                continue
            name, colon, number = part.partition(":")
            lora = self.get(name)
            weight = lora.weight
            if colon:
                try:
                    weight = float(number)
                except ValueError:
                    weight = math.nan
                if not MIN_WEIGHT <= weight <= MAX_WEIGHT:  # NaN fails too
                    raise ValueError(Text("The LoRA weight in '{part}' must be a number from {min:g} to {max:g}, "
                                          "like {name}:0.8.", part=part, min=MIN_WEIGHT, max=MAX_WEIGHT,
                                          name=lora.name))
            if any(chosen == lora.name for chosen, _ in choices):
                raise ValueError(Text("The LoRA '{name}' is named twice; give it once, with one weight.",
                                      name=lora.name))
            choices.append((lora.name, weight))
        if len(choices) > MAX_LORAS:
            raise ValueError(Text("You can use at most {max} LoRAs at a time; you gave {count}.", max=MAX_LORAS,
                                  count=len(choices)))
        return tuple(choices)

    def resolve(self, style_loras: str, chosen: Sequence[Sequence], family: str, *,
                style: str = "") -> tuple[tuple[Lora, float], ...]:
        """The LoRAs an image uses: its style's (``Style.loras``), then the person's ``chosen`` ones (a weight of
        theirs for one the style names wins), each checked to fit the model's ``family``, at most MAX_LORAS in all.
        The one check of a request's LoRAs: the request desk asks it before queueing, the planner again. Raises
        ValueError with a message for the person."""
        merged = dict(self.parse(style_loras))
        for name, weight in chosen:
            merged[self.get(str(name)).name] = float(weight)
        if len(merged) > MAX_LORAS:
            raise ValueError(Text("You can use at most {max} LoRAs at a time, and the style '{style}' brings some "
                                  "of its own; leave one out.", max=MAX_LORAS, style=style))
        loras = tuple((self.get(name), weight) for name, weight in merged.items())
        for lora, _ in loras:
            if family not in lora.families:
                raise ValueError(Text("The LoRA '{name}' is made for {families} models, and this model is {family}; "
                                      "leave it out, or pick a model it fits (see /models).", name=lora.name,
                                      families=", ".join(lora.families), family=family))
        return loras

    def search(self, text: str, family: str | None, *, adult: bool, limit: int = 25) -> list[Lora]:
        """LoRAs for an autocomplete box: those fitting ``family`` (any, when None), NSFW ones only for ``adult``
        places, names starting with ``text`` first, then those holding it in name or description."""
        needle = text.strip().lower()
        fitting = [lora for lora in self._loras.values()
                   if (family is None or family in lora.families) and (adult or not lora.nsfw)]
        prefix = [lora for lora in fitting if lora.name.startswith(needle)]
        inside = [lora for lora in fitting
                  if lora not in prefix and (needle in lora.name or needle in lora.description.lower())]
        return (prefix + inside)[:limit]


def describe(choices: Iterable[Sequence]) -> str:
    """Choices as people write them (``ink:0.8, film:1``): what recipes show and autocomplete offers."""
    return ", ".join(f"{name}:{float(weight):g}" for name, weight in choices)


def with_triggers(prompt: str, triggers: Sequence[str]) -> str:
    """``prompt`` with the trigger words it does not already hold appended, comma-separated."""
    missing = [word for word in dict.fromkeys(triggers) if word.lower() not in prompt.lower()]
    return ", ".join([prompt, *missing]) if prompt and missing else prompt or ", ".join(missing)
