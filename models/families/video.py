"""Video families: Wan 2.1 / 2.2 and LTX-Video. Text-to-video, and image-to-video on the same modules.

A video family makes ``Clip``s where the others make pictures: the same ``CallSpec`` (prompts, seeds, steps,
guidance, size; ``init_images`` are first frames) plus a frame count and rate. The numbers are the model cards':

- Wan2.2-TI2V-5B: 1280x704, 121 frames at 24 fps (5 s), 50 steps, guidance 5.0; the Wan 2.1/2.2 VAE compresses
  time 4x, so clips have 4k+1 frames. Its image-to-video keeps the first frame's latents clean
  (``expand_timesteps``); the family holds the last latent frame the same way to end a clip on a given frame
  (``wan_loop``), which is how it loops.
- LTX-Video (0.9.x): 704x480, 121 frames at 24 fps, 50 steps (the distilled 0.9.8: set ``steps: 8`` and
  ``guidance: 1``), guidance 3.0; its VAE compresses time 8x, so clips have 8k+1 frames.

Previews show the middle latent frame of the first clip, a rough picture of the motion so far (the latent channels'
first three, normalised: no VAE decode, no published colour fit for these latent spaces).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, ClassVar

import torch
from PIL import Image

from models.families.base import CallSpec, Family, PipelineCall, StepHook, step_kwargs
from models.plan import Clip, ModelDefaults, clip_frames, snap


class VideoFamily(Family):
    """What Wan and LTX share: a 3D transformer, a video VAE, a T5 encoder, and an image-to-video twin."""

    video = True
    generator_lists = False  # clip by clip: image-to-video pipelines take one first frame a call
    img2img = False  # a picture given is a video's first frame (image-to-video), not a picture to restyle
    size: ClassVar[tuple[int, int]]
    """The model card's width and height."""
    frames: ClassVar[int]
    """The model card's clip, in frames."""
    fps: ClassVar[int]
    image_to_video_class: ClassVar[str]
    """The diffusers pipeline that starts from a first frame, built on the same modules with ``from_pipe``."""

    @classmethod
    def from_pipeline(cls, pipe: Any, *, model_id: str, device: torch.device, dtype: torch.dtype) -> Family:
        return cls(pipe, cls.image_to_video(pipe), model_id=model_id, device=device)

    @classmethod
    def image_to_video(cls, pipe: Any) -> Any:
        """The pipeline that starts from a first frame, on ``pipe``'s modules."""
        import diffusers

        return getattr(diffusers, cls.image_to_video_class).from_pipe(pipe)

    def loops(self) -> bool:
        """Whether the loaded model can end a clip on its first frame (🔁 Loop): ``call`` then passes a loop's first
        frame as ``last_image``."""
        return False

    def enable_memory_savers(self) -> None:
        """Video VAEs decode frame batches in tiles where they can: the decode, not the steps, is the peak."""
        vae = self.txt2img.vae
        if hasattr(vae, "enable_tiling"):
            vae.enable_tiling()

    def native_size(self) -> int:
        """The side of a square with the card's area (``defaults`` gives the card's own shape)."""
        width, height = self.size
        return snap(math.sqrt(width * height), self.size_multiple())

    def frame_multiple(self) -> int:
        """A clip has ``frame_multiple() * k + 1`` frames: the VAE's temporal compression."""
        raise NotImplementedError

    def numbers(self, *, steps: int | None = None, guidance: float | None = None, size: int | None = None,
                frames: int | None = None, draft_steps: int | None = None,
                draft_scale: float | None = None) -> ModelDefaults:
        """The card's shape at the card's area (or at ``size`` squared), and its clip (or ``frames``, made a count
        the VAE takes)."""
        base = super().numbers(steps=steps, guidance=guidance, size=size, draft_steps=draft_steps,
                               draft_scale=draft_scale)
        width, height = self.size
        scale = (size or math.sqrt(width * height)) / math.sqrt(width * height)
        multiple = self.frame_multiple()
        return replace(base, width=snap(width * scale, base.multiple), height=snap(height * scale, base.multiple),
                       video=True, frames=clip_frames(frames or self.frames, 1, multiple), fps=self.fps,
                       frame_multiple=multiple, loop=self.loops())

    def call(self, spec: CallSpec, on_step: StepHook, call: PipelineCall) -> list[Any]:
        """One clip: the pipeline's common arguments, the frame count and rate, and its first frame if given."""
        pipe = self.pipeline_for(spec)
        kwargs: dict[str, Any] = dict(
            prompt=spec.prompts, num_inference_steps=spec.steps, guidance_scale=spec.guidance,
            width=spec.width, height=spec.height, num_frames=spec.frames, output_type="pil",
            generator=self.generators(spec.seeds)[0],
        )
        if self.negative_prompt:
            kwargs["negative_prompt"] = spec.negatives
        if spec.init_images is not None:
            [kwargs["image"]] = spec.init_images
            if spec.loop:
                kwargs["last_image"] = kwargs["image"]
        kwargs.update(self.video_kwargs(spec))
        kwargs.update(step_kwargs(pipe, on_step))
        return [Clip(tuple(frames), spec.fps) for frames in call(pipe, kwargs)]

    def video_kwargs(self, spec: CallSpec) -> dict[str, Any]:
        """What this family's pipelines take beside the common arguments."""
        return {}

    def unpacked(self, latents: torch.Tensor, spec: CallSpec) -> torch.Tensor:
        """The step hook's latents as (batch, channels, frames, height, width)."""
        return latents

    def preview(self, latents: torch.Tensor, row: int, spec: CallSpec) -> Image.Image | None:
        video = self.unpacked(latents, spec)
        if video.dim() != 5:
            return None
        frame = video[row, :3, video.shape[2] // 2].float().cpu()
        if frame.shape[0] < 3:
            return None
        low = frame.amin(dim=(1, 2), keepdim=True)
        high = frame.amax(dim=(1, 2), keepdim=True)
        pixels = ((frame - low) / (high - low).clamp(min=1e-6) * 255).to(torch.uint8).permute(1, 2, 0).numpy()
        return Image.fromarray(pixels, "RGB")


class Wan(VideoFamily):
    name = "wan"
    label = "Wan 2.1 / 2.2"
    design = "flow-matching 3D transformer over the Wan VAE's video latents, with a umT5 text encoder"
    pipeline_classes = ("WanPipeline",)
    steps, guidance = 50, 5.0
    size, frames, fps = (1280, 704), 121, 24
    image_to_video_class = "WanImageToVideoPipeline"

    @classmethod
    def image_to_video(cls, pipe: Any) -> Any:
        """diffusers' image-to-video, taught to hold a last frame on the 5B model's path (``wan_loop``)."""
        from models.families.wan_loop import WanFirstLastPipeline

        return WanFirstLastPipeline.from_pipe(pipe)

    def loops(self) -> bool:
        """Wan 2.2 TI2V-5B's way to keep a frame clean (``expand_timesteps``) holds a last frame too."""
        return bool(self.img2img_pipe.config.expand_timesteps)

    def size_multiple(self) -> int:
        """The VAE's spatial compression times the transformer's 2x2 patches."""
        pipe = self.txt2img
        return int(pipe.vae_scale_factor_spatial) * int(self.denoiser().config.patch_size[1])

    def frame_multiple(self) -> int:
        return int(self.txt2img.vae_scale_factor_temporal)


class LTXVideo(VideoFamily):
    name = "ltx"
    label = "LTX-Video"
    design = "flow-matching 3D transformer over a 32x32x8-compressing video VAE, with a T5 text encoder"
    pipeline_classes = ("LTXPipeline",)
    steps, guidance = 50, 3.0
    size, frames, fps = (704, 480), 121, 24
    image_to_video_class = "LTXImageToVideoPipeline"

    def size_multiple(self) -> int:
        """The VAE's spatial compression times the patch size, and 32, which the pipeline insists on."""
        pipe = self.txt2img
        return math.lcm(int(pipe.vae_spatial_compression_ratio) * int(pipe.transformer_spatial_patch_size), 32)

    def frame_multiple(self) -> int:
        return int(self.txt2img.vae_temporal_compression_ratio)

    def video_kwargs(self, spec: CallSpec) -> dict[str, Any]:
        """LTX conditions on the frame rate (its RoPE spaces frames by it)."""
        return {"frame_rate": spec.fps}

    def unpacked(self, latents: torch.Tensor, spec: CallSpec) -> torch.Tensor:
        """The step hook sees packed tokens (batch, tokens, channels)."""
        pipe = self.txt2img
        spatial, temporal = pipe.vae_spatial_compression_ratio, pipe.vae_temporal_compression_ratio
        return pipe._unpack_latents(latents, (spec.frames - 1) // temporal + 1, spec.height // spatial,
                                    spec.width // spatial, pipe.transformer_spatial_patch_size,
                                    pipe.transformer_temporal_patch_size)
