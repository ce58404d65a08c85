"""Kandinsky 2.2: DALL·E 2's unCLIP design. A CLIP text encoder and a diffusion *prior* turn the prompt into a CLIP
image embedding; a UNet *decoder* conditioned on that embedding draws MoVQ latents.

``AutoPipelineForText2Image`` on ``kandinsky-community/kandinsky-2-2-decoder`` loads the combined pipeline (its model
card names the prior repo, which is fetched alongside); a tiny model saves both halves in one directory. The family
runs the two halves itself instead of the combined ``__call__``: the prior once per image with that image's own
generator, then the decoder once for the batch with the list of generators. The combined call would hand one list
of generators to the prior, which cannot take it once a negative prompt doubles the prior's batch; running images one
by one instead would make a batch of four four decoder runs. For a single image this is the combined call exactly:
the same seed gives the same pixels as ``pipe(prompt, negative_prompt=..., generator=...)``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from PIL import Image

from models.families.base import CallSpec, Family, PipelineCall, StepHook, step_kwargs
from models.plan import snap

PRIOR_STEPS = 25
"""The prior's own step count (the combined pipeline's default): it denoises one embedding vector, cheap next to the
decoder, so it does not follow the decoder's 50; only a quicker draft (fewer decoder steps) shortens it too."""
MIN_PRIOR_STEPS = 2
"""The prior's UnCLIP scheduler spaces its timesteps by ``steps - 1``: one step would divide by zero."""
PRIOR_GUIDANCE = 4.0
"""The combined pipeline's ``prior_guidance_scale``: how strongly the embedding follows the prompt (and shuns the
negative prompt); the person's guidance sets the decoder's."""
TRAINED_OVER_CONFIG = 1.5
"""Kandinsky 2.x draws best at 768 px (its model card and diffusers' docs use 768 x 768), while the converted decoder
config's ``sample_size`` says 64 latents, i.e. 512 px through the 8x MoVQ (diffusers' call default). The family
scales the config's side by 3/2 rather than hard-coding 768, so a toy decoder keeps a toy side."""


class Kandinsky22(Family):
    name = "kandinsky"
    label = "Kandinsky 2.2"
    design = "unCLIP: CLIP text encoder, diffusion prior to a CLIP image embedding, UNet decoder over MoVQ latents"
    pipeline_classes = ("KandinskyV22CombinedPipeline",)
    steps, guidance, strength = 50, 4.0, 0.6
    reference_images = True  # the prior's image encoder puts pictures in the very space its prompts land in
    # strength: diffusers' Kandinsky img2img default is 0.3, but the decoder sees only the prompt's embedding, never
    # the source picture's, so at 0.3 a restyle barely shows; 0.6 is the bot's usual "visibly redrawn".
    # No ``preview``: MoVQ latents have no published latent-to-RGB projection (unlike SD's VAE).
    # No inpainting: KandinskyV22InpaintPipeline feeds the UNet the masked picture and the mask beside the latents,
    # which only the separate 9-channel inpainting decoder (kandinsky-2-2-decoder-inpaint) takes; the text-to-image
    # decoder the family loads has 4 input channels. (Its loop also blends every image with the first's latents.)

    def _movq_factor(self) -> int:
        return 2 ** (len(self.txt2img.movq.config.block_out_channels) - 1)

    def native_size(self) -> int:
        side = self.denoiser().config.sample_size * self._movq_factor() * TRAINED_OVER_CONFIG
        return snap(side, self.size_multiple())

    def size_multiple(self) -> int:
        """The decoder rounds its latent side up to a multiple of the MoVQ factor (a picture side to a multiple of
        its square), and the UNet halves the latents once per block after the first."""
        factor = self._movq_factor()
        halvings = 2 ** (len(self.denoiser().config.block_out_channels) - 1)
        return math.lcm(factor * factor, factor * halvings)

    def call(self, spec: CallSpec, on_step: StepHook, call: PipelineCall) -> list[Image.Image]:
        """Each image's embedding from the prior with its own generator, then one decoder run for the batch.

        The decoder reports its steps; the prior's few, fast ones are not shown. Its loop never reads diffusers'
        interrupt flag, so a cancelled call finishes its decoder steps (the engine drops the images).
        """
        combined = self.img2img_pipe if spec.img2img else self.txt2img
        generators = self.generators(spec.seeds)
        embeds: list[torch.Tensor] = []
        negative_embeds: list[torch.Tensor] = []
        for index, generator in enumerate(generators):
            image_embeds, negative_image_embeds = self.embed(combined.prior_pipe, spec, index, generator)
            embeds.append(image_embeds)
            negative_embeds.append(negative_image_embeds)
        decoder = combined.decoder_pipe
        kwargs: dict[str, Any] = dict(
            image_embeds=torch.cat(embeds), negative_image_embeds=torch.cat(negative_embeds),
            num_inference_steps=spec.steps, guidance_scale=spec.guidance, generator=generators,
            width=spec.width, height=spec.height,
        )
        if spec.img2img:
            kwargs.update(image=spec.init_images, strength=spec.strength)
        kwargs.update(step_kwargs(decoder, on_step))
        return call(decoder, kwargs)

    def embed(self, prior: Any, spec: CallSpec, index: int,
              generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Image ``index``'s CLIP image embedding and the decoder's negative one.

        From the prompt, the prior's job; with reference pictures, the unCLIP way of mixing: the prior's
        ``interpolate`` sums the pictures' CLIP image embeddings (its image encoder) and the prompt's (the prior),
        each times its share. No negative prompt: the prior's zero-image embedding, the decoder's unconditional one.
        """
        prompt, negative = spec.prompts[index], spec.negatives[index]
        steps = max(MIN_PRIOR_STEPS, min(PRIOR_STEPS, spec.steps))
        pictures = spec.references[index] if spec.references else ()
        if not pictures:
            return prior(prompt, negative_prompt=negative or None, num_inference_steps=steps,
                         guidance_scale=PRIOR_GUIDANCE, generator=generator, output_type="pt", return_dict=False)
        weights = list(spec.reference_weights[index]) if spec.reference_weights else []
        mix: list[str | Image.Image] = list(pictures)
        prompt_share = 1 - sum(weights)
        if prompt and prompt_share > 0:
            mix.append(prompt)
            weights.append(prompt_share)
        output = prior.interpolate(mix, weights, num_inference_steps=steps, generator=generator,
                                   negative_prior_prompt=negative or None, negative_prompt=negative,
                                   guidance_scale=PRIOR_GUIDANCE)
        return output.image_embeds, output.negative_image_embeds
