"""Tiny random pipelines, one builder per model family, for tests, benchmarks and the playground.

No weights can be downloaded where the tests run, so the project makes its own models: each family's real
architecture at a toy size, with random weights, written with ``save_pretrained`` so that everything else loads
them through ``from_pretrained`` exactly like a model from the Hub. Their images are noise; every code path that
touches them is the real one.

``model.id: tiny`` (Stable Diffusion) or ``tiny-NAME`` (any family in ``BUILDERS``) builds one under the cache
directory on first use; ``python -m bot tiny-model DIR --family NAME`` writes one anywhere. Upscalers
(``UPSCALERS``) are single weight files rather than pipelines: the same command writes one for ``upscaler.model``,
and captioners (``CAPTIONERS``) and safety classifiers (``CLASSIFIERS``) are transformers models:
``describe.model: tiny-blip`` or ``safety.model: tiny`` builds one like ``tiny-NAME``. ControlNets (``CONTROLNETS``)
fit a model: ``controlnets: - id: tiny`` builds one beside whatever model it is loaded with, and ``tiny-model DIR
--family controlnet-sd`` writes the one fitting the tiny SD (``DEPTH``: a depth or pose ControlNet's ``preprocessor:
tiny``).
LoRAs (``LORAS``) for a tiny model are written by the same command, for bot.yaml's ``loras``.

The registry is ``registry.py``, the builders one module per family; this file only re-exports what others use.
"""

from models.tiny.registry import (
    BUILDERS,
    CAPTIONERS,
    CLASSIFIERS,
    CONTROLNETS,
    DEPTH,
    LORAS,
    SUPPLIED_BY,
    UPSCALERS,
    model_location,
    tiny_families,
    tiny_settings,
    write_tiny_pipeline,
)

__all__ = ["BUILDERS", "CAPTIONERS", "CLASSIFIERS", "CONTROLNETS", "DEPTH", "LORAS", "SUPPLIED_BY", "UPSCALERS",
           "model_location", "tiny_families", "tiny_settings", "write_tiny_pipeline"]
