"""/imagine's options turned into a GenerationRequest, with a clear message for anything out of range, and the
suggestions its ``style`` and ``model`` options (and /settings') offer while people type.

Discord's client enforces the ranges it was told about, but other clients and the API itself need not, so the
bot checks again and says what to change instead of failing later in the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from discord import app_commands

from bot.jobs import Need
from bot.messages import Rejected
from bot.reach import age_restricted
from models.plan import ASPECTS, MAX_SEED, GenerationRequest
from models.styles import Style
from models.text import Text

if TYPE_CHECKING:
    import discord

    from bot.service import GenerationService

ASPECT_CHOICES = [
    app_commands.Choice(name="Square (1:1)", value="square"),
    app_commands.Choice(name="Portrait (2:3)", value="portrait"),
    app_commands.Choice(name="Landscape (3:2)", value="landscape"),
    app_commands.Choice(name="Wide (16:9)", value="wide"),
    app_commands.Choice(name="Tall (9:16)", value="tall"),
]
assert {choice.value for choice in ASPECT_CHOICES} == set(ASPECTS)


def imagine_request(
    *,
    prompt: str,
    style: Style,
    negative: str | None,
    aspect: str | None,
    seed: int | None,
    count: int | None,
    max_count: int,
) -> GenerationRequest:
    """The request /imagine's options ask for; ``count`` defaults to ``max_count`` (a grid, as people expect)."""
    prompt = prompt.strip()
    if not prompt:
        raise Rejected(Text("Tell me what to draw: the `prompt` is empty."))
    wanted = max_count if count is None else count
    if not 1 <= wanted <= max_count:
        raise Rejected(Text("You can ask for 1 to {max_count} images at a time.", max_count=max_count))
    if aspect is not None and aspect not in ASPECTS:
        raise Rejected(Text("Unknown aspect '{aspect}'; choose one of {aspects}.", aspect=aspect,
                            aspects=", ".join(ASPECTS)))
    if seed is not None and not 0 <= seed < MAX_SEED:
        raise Rejected(Text("The seed must be a whole number from 0 to {max_seed}.", max_seed=MAX_SEED - 1))
    return GenerationRequest(
        prompt=prompt,
        style=style.name,
        negative=(negative or "").strip(),
        aspect=aspect or "square",
        seed=seed,
        count=wanted,
    )


def style_choices(generation: GenerationService | None, interaction: discord.Interaction,
                  current: str) -> list[app_commands.Choice[str]]:
    """Styles matching what was typed (age-restricted ones only in age-restricted channels and their threads)."""
    if generation is None:  # reloading: no suggestions rather than an error
        return []
    adult = age_restricted(interaction)
    return [
        app_commands.Choice(name=f"{style.name} — {style.description}"[:100], value=style.name)
        for style in generation.styles.search(current)
        if adult or not style.nsfw
    ]


def lora_choices(generation: GenerationService, interaction: discord.Interaction, current: str,
                 model: str) -> list[app_commands.Choice[str]]:
    """``current`` with its last name completed to each configured LoRA that fits ``model`` (unknown or not
    configured: the default model), the NSFW ones only in age-restricted channels and their threads."""
    entry = generation.model_entry(model) or generation.catalogue[0]
    family = generation.family_of(entry.name)
    done, _, typing = current.rpartition(",")
    head = f"{done.strip()}, " if done.strip() else ""
    taken = {part.partition(":")[0].strip().lower() for part in done.split(",")}
    return [
        app_commands.Choice(name=(f"{head}{lora.name}:{lora.weight:g}"
                                  + (f" — {lora.description}" if lora.description else ""))[:100],
                            value=f"{head}{lora.name}:{lora.weight:g}"[:100])
        for lora in generation.styles.loras.search(typing.partition(":")[0], family,
                                                   adult=age_restricted(interaction))
        if lora.name not in taken
    ][:25]


def edit_models(generation: GenerationService, *, masked: bool, several: bool) -> list[str]:
    """The models /edit can run on as asked: with a mask, those that repaint a marked part; with more than one
    picture, those that edit by instruction; else those that can do either (the default first)."""
    inpaint, instruct = generation.able(Need.INPAINT), generation.able(Need.INSTRUCT_EDIT)
    if masked:
        return inpaint
    if several:
        return instruct
    return [entry.name for entry in generation.catalogue if entry.name in inpaint or entry.name in instruct]


def model_choices(generation: GenerationService | None, interaction: discord.Interaction,
                  current: str, only: list[str] | None = None) -> list[app_commands.Choice[str]]:
    """Configured models matching what was typed in their name or description (of ``only``, if given); the NSFW
    ones only in age-restricted channels."""
    if generation is None:
        return []
    adult = age_restricted(interaction)
    wanted = current.strip().lower()
    return [
        app_commands.Choice(name=f"{entry.name} — {entry.description}"[:100] if entry.description else entry.name,
                            value=entry.name)
        for entry in generation.catalogue
        if (adult or not entry.nsfw) and (only is None or entry.name in only)
        and (wanted in entry.name.lower() or wanted in entry.description.lower())
    ][:25]
