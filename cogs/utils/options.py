"""/imagine's options turned into a GenerationRequest, with a clear message for anything out of range.

Discord's client enforces the ranges it was told about, but other clients and the API itself need not, so the
bot checks again and says what to change instead of failing later in the engine.
"""

from __future__ import annotations

from models.plan import ASPECTS, MAX_SEED, GenerationRequest
from models.styles import Style
from models.text import Text


class Rejected(Exception):
    """A request that will not be queued; the message (a ``Text``) is shown to the person, in their language."""


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
