"""Styles: named prompt templates that turn "a cat" into a finished look.

A style is data, not code, so operators define them in bot.yaml and reload them without a restart.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.loras import Lora, LoraBook
from models.text import Text


class Style(BaseModel):
    """One entry of bot.yaml's ``styles`` list."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9 _-]*$")
    description: str = Field(default="", max_length=100)
    prompt: str = "{prompt}"
    negative: str = ""
    steps: int | None = Field(default=None, ge=1, le=150)
    guidance: float | None = Field(default=None, ge=0, le=30)
    strength: float | None = Field(default=None, gt=0, le=1)
    loras: str = Field(default="", max_length=200)
    """LoRAs from bot.yaml's ``loras`` the style always uses, as people write them: ``name:weight, name``
    (``models/loras.py``); a person's own ``lora`` choices add to them."""
    nsfw: bool = False
    model: str | None = None
    """The configured model (bot.yaml's ``models``) this style is made for: it pins requests with it to that one."""

    @model_validator(mode="before")
    @classmethod
    def _no_lora_path(cls, data: object) -> object:
        """Styles named a LoRA file themselves before bot.yaml listed LoRAs: say what replaced those keys."""
        if isinstance(data, dict) and ("lora" in data or "lora_scale" in data):
            raise ValueError("lora and lora_scale are gone: list the LoRA under loras: (name, id, weight) and name "
                             "it here as loras: 'name:weight'")
        return data

    @field_validator("prompt")
    @classmethod
    def _has_placeholder(cls, template: str) -> str:
        if "{prompt}" not in template:
            raise ValueError("must contain {prompt}, where the person's prompt goes")
        try:
            template.format(prompt="")
        except (IndexError, KeyError, ValueError) as error:
            raise ValueError(f"is not a valid template ({error}); write literal braces as {{{{ and }}}}") from None
        return template

    def apply(self, prompt: str, negative: str = "") -> tuple[str, str]:
        """Return the (prompt, negative prompt) to send to the model."""
        negatives = [part for part in (self.negative, negative) if part]
        return self.template_prompt(prompt), ", ".join(negatives)

    def template_prompt(self, prompt: str) -> str:
        return self.prompt.format(prompt=prompt.strip())


NO_STYLE = Style(name="none", description="Your prompt exactly as written")


class UnknownStyle(ValueError):
    """Raised for a style name that is not configured; the message lists close matches."""


class StyleBook:
    """The configured styles, looked up by name (case-insensitive), and the LoRAs they and requests may name
    (``loras``): one book, since a style's LoRAs are read against it."""

    def __init__(self, styles: Iterable[Style], loras: Iterable[Lora] = ()) -> None:
        self.loras = LoraBook(loras)
        self._styles: dict[str, Style] = {}
        for style in styles:
            self._styles[style.name.lower()] = style
        if not self._styles:
            self._styles[NO_STYLE.name] = NO_STYLE

    def replace(self, styles: Iterable[Style], loras: Iterable[Lora] = ()) -> None:
        """Swap in new styles and LoRAs in place, so every holder of this book (engine, backend, cogs) sees them at
        once."""
        new = StyleBook(styles, loras)
        self._styles, self.loras = new._styles, new.loras

    def __iter__(self):
        return iter(self._styles.values())

    def __len__(self) -> int:
        return len(self._styles)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._styles

    @property
    def default(self) -> Style:
        """The style used when a request names none: the first one configured."""
        return next(iter(self._styles.values()))

    def get(self, name: str | None) -> Style:
        if not name:
            return self.default
        try:
            return self._styles[name.strip().lower()]
        except KeyError:
            close = difflib.get_close_matches(name.strip().lower(), list(self._styles), n=3, cutoff=0.5)
            if close:
                raise UnknownStyle(Text("There is no style called '{name}'. Did you mean {close}? Use /styles to see "
                                        "them all.", name=name, close=", ".join(close))) from None
            raise UnknownStyle(Text("There is no style called '{name}'. Use /styles to see them all.",
                                    name=name)) from None

    def search(self, text: str, limit: int = 25) -> list[Style]:
        """Styles for an autocomplete box: prefix matches first, then substring matches in name or description."""
        needle = text.strip().lower()
        if not needle:
            return list(self._styles.values())[:limit]
        prefix = [s for s in self._styles.values() if s.name.startswith(needle)]
        inside = [
            s for s in self._styles.values()
            if s not in prefix and (needle in s.name or needle in s.description.lower())
        ]
        return (prefix + inside)[:limit]
