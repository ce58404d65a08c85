"""Real-size SD-Turbo, SDXL and FLUX.1 [schnell] with random weights (``bench/engine.py --arch NAME``), for a GPU.

Each is built in memory from its published config (the numbers below are those of the Hub's ``config.json`` files:
stabilityai/sd-turbo, stabilityai/stable-diffusion-xl-base-1.0, black-forest-labs/FLUX.1-schnell), with random
weights and the offline byte tokenizers, so nothing downloads; on CUDA straight on the device in bfloat16, so a
12-billion-parameter transformer is made in seconds. The engine runs it as it would the real model (the family is
recognised from the pipeline, the speed setting applied by ``models.speed.apply_speed``), and each row of the table
is one speed setting: exact, each cache kind, regional compile, int8 and fp8 weights. A setting the model refuses
(a UNet takes no diffusers cache; fp8 needs compute capability 8.9) is printed with its reason, not skipped silently.

``--toy`` shrinks every width and depth (same block layout, same families) so the whole path runs on a CPU in
seconds: what the tests run (at 2 steps). Its figures are not the real model's, and it leaves regional compile out
(inductor compiles C++ for minutes on a CPU) unless ``--compile`` asks for it.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from bench.speed import psnr
from models import families
from models.engine import Engine
from models.loading import pick_device, pick_dtype
from models.plan import GenerationRequest, ModelLoadError
from models.speed import CACHE_KINDS, Speed, apply_speed
from models.styles import StyleBook
from models.tiny.tokenizers import byte_clip_tokenizer, t5_tokenizer

SETTINGS = [Speed(), *(Speed(cache=kind) for kind in CACHE_KINDS), Speed(compile="regional"),
            Speed(quantize="int8"), Speed(quantize="fp8")]
STEPS = {"sd-turbo": 4, "sdxl": 20, "flux-schnell": 4}
"""Steps each is timed at: SD-Turbo and FLUX.1 [schnell] at their most (4), SDXL at a usual 20."""
MODEL_IDS = {"sd-turbo": "stabilityai/sd-turbo", "sdxl": "stabilityai/stable-diffusion-xl-base-1.0",
             "flux-schnell": "black-forest-labs/FLUX.1-schnell"}
"""What each stands in for: the family is recognised from the pipeline and this name, as for the real model."""


def on_cpu(scheduler: type, **config: Any) -> Any:
    """A scheduler made on the CPU, as a loaded pipeline's is (its tables go to the device with each call), whatever
    device the modules are built on."""
    with torch.device("cpu"):
        return scheduler(**config)


def clip(tokenizer: Any, toy: bool, *, hidden: int, layers: int, heads: int, act: str, projection: int | None = None):
    """A CLIP text encoder of the published width and depth (``toy``: 32 wide, 2 deep)."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    if toy:
        hidden, layers, heads, projection = 32, 2, 4, projection and 32
    config = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=4 * hidden,
                            num_hidden_layers=layers, num_attention_heads=heads, max_position_embeddings=77,
                            hidden_act=act, projection_dim=projection or hidden, bos_token_id=tokenizer.bos_token_id,
                            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)


def vae(toy: bool, *, latent_channels: int = 4, sample_size: int = 512, **extra: Any):
    """The SD-family KL autoencoder: four blocks (a factor of 8), 128-512 wide (``toy``: 32 wide, one layer)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(32,) * 4 if toy else (128, 256, 512, 512), layers_per_block=1 if toy else 2,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=latent_channels, sample_size=64 if toy else sample_size, **extra)


def sd_turbo(toy: bool) -> Any:
    """SD-Turbo: SD 2.1's UNet (320-1280 wide, linear projections, 1024-wide cross-attention) and OpenCLIP-H text."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel

    tokenizer = byte_clip_tokenizer()
    text_width = 32 if toy else 1024
    unet = UNet2DConditionModel(
        sample_size=8 if toy else 64, block_out_channels=(32, 64, 64, 64) if toy else (320, 640, 1280, 1280),
        layers_per_block=1 if toy else 2, attention_head_dim=(2, 4, 4, 4) if toy else (5, 10, 20, 20),
        cross_attention_dim=text_width, use_linear_projection=True)
    return StableDiffusionPipeline(
        vae=vae(toy), unet=unet, tokenizer=tokenizer,
        text_encoder=clip(tokenizer, toy, hidden=1024, layers=23, heads=16, act="gelu"),
        scheduler=on_cpu(EulerDiscreteScheduler, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                         steps_offset=1, timestep_spacing="trailing"),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def sdxl(toy: bool) -> Any:
    """SDXL base: its UNet (320-1280 wide, 1/2/10 transformer layers, 2048-wide cross-attention, size and crop
    conditioning) and both text encoders (CLIP-L, OpenCLIP-bigG with its projection)."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel

    tokenizer, tokenizer_2 = byte_clip_tokenizer(), byte_clip_tokenizer()
    text_encoder = clip(tokenizer, toy, hidden=768, layers=12, heads=12, act="quick_gelu")
    text_encoder_2 = clip(tokenizer_2, toy, hidden=1280, layers=32, heads=20, act="gelu", projection=1280)
    time_embed = 8 if toy else 256
    unet = UNet2DConditionModel(
        sample_size=8 if toy else 128, block_out_channels=(32, 64, 64) if toy else (320, 640, 1280),
        layers_per_block=1 if toy else 2, transformer_layers_per_block=(1, 1, 2) if toy else (1, 2, 10),
        attention_head_dim=(2, 4, 4) if toy else (5, 10, 20),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=text_encoder.config.hidden_size + text_encoder_2.config.hidden_size,
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=time_embed,
        projection_class_embeddings_input_dim=6 * time_embed + text_encoder_2.config.projection_dim)
    return StableDiffusionXLPipeline(
        vae=vae(toy, sample_size=1024, scaling_factor=0.13025), unet=unet, tokenizer=tokenizer,
        tokenizer_2=tokenizer_2, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
        scheduler=on_cpu(EulerDiscreteScheduler, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                         steps_offset=1, timestep_spacing="leading"))


def flux_schnell(toy: bool) -> Any:
    """FLUX.1 [schnell]: 19 double and 38 single MMDiT blocks of 24 heads x 128 (no guidance input), T5-XXL's
    encoder (4096 wide, 24 layers) and CLIP-L, a 16-channel latent VAE."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import T5Config, T5EncoderModel

    tokenizer, tokenizer_2 = byte_clip_tokenizer(), t5_tokenizer(model_max_length=256)
    text_encoder = clip(tokenizer, toy, hidden=768, layers=12, heads=12, act="quick_gelu")
    t5 = (dict(d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4) if toy else
          dict(d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64))
    text_encoder_2 = T5EncoderModel(T5Config(vocab_size=len(tokenizer_2), feed_forward_proj="gated-gelu",
                                             decoder_start_token_id=0, **t5))
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=1 if toy else 19, num_single_layers=2 if toy else 38,
        attention_head_dim=16 if toy else 128, num_attention_heads=2 if toy else 24,
        joint_attention_dim=t5["d_model"], pooled_projection_dim=text_encoder.config.hidden_size,
        guidance_embeds=False, axes_dims_rope=(4, 4, 8) if toy else (16, 56, 56))
    return FluxPipeline(
        vae=vae(toy, latent_channels=16, sample_size=1024, scaling_factor=0.3611, shift_factor=0.1159,
                use_quant_conv=False, use_post_quant_conv=False),
        transformer=transformer, tokenizer=tokenizer, tokenizer_2=tokenizer_2, text_encoder=text_encoder,
        text_encoder_2=text_encoder_2, scheduler=on_cpu(FlowMatchEulerDiscreteScheduler, shift=1.0))


BUILDERS: dict[str, Callable[[bool], Any]] = {"sd-turbo": sd_turbo, "sdxl": sdxl, "flux-schnell": flux_schnell}


def build_engine(arch: str, speed: Speed, device: torch.device, *, toy: bool, requests: int) -> Engine:
    """``arch`` as the engine would serve it (its family recognised, ``speed`` applied): built on ``device`` in its
    dtype (bfloat16 on CUDA), seeded so every setting gets the same random weights."""
    dtype = pick_dtype(device)
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with device:
            pipe = BUILDERS[arch](toy)
    finally:
        torch.set_default_dtype(previous)
    pipe.set_progress_bar_config(disable=True)
    family = families.detect(pipe, MODEL_IDS[arch])
    model = family.from_pipeline(pipe, model_id=MODEL_IDS[arch], device=device, dtype=dtype)
    model.to(device)
    steps = 2 if toy else STEPS[arch]
    # FluxPipeline's native side is fixed (128 latent pixels): a toy runs at 64 px like the others.
    defaults = model.defaults(model.native_size(), model.size_multiple(), steps=steps, size=64 if toy else None)
    apply_speed(model, speed, device, label=arch, steps=steps)
    return Engine(model, model_id=MODEL_IDS[arch], device=device, dtype=dtype, defaults=defaults,
                  styles=StyleBook([]), max_batch=requests, max_count=requests, name=arch)


def run_archs(args: argparse.Namespace) -> int:
    """The table: per arch and setting, images/s, seconds per step, × exact and PSNR against exact (same seeds)."""
    device = pick_device(args.device)
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
          f"{args.requests} image(s) per call, median of {args.repeats}{', toy sizes' if args.toy else ''}")
    print(f"{'arch':<14}{'setting':<24}{'size':>10}{'steps':>6}{'images/s':>10}{'s/step':>9}{'× exact':>9}"
          f"{'PSNR dB':>9}")
    settings = [speed for speed in SETTINGS if speed.compile == "none" or not args.toy or args.compile]
    for arch in args.archs:
        exact: tuple[float, list[np.ndarray]] | None = None
        for speed in settings:
            try:
                engine = build_engine(arch, speed, device, toy=args.toy, requests=args.requests)
            except ModelLoadError as error:
                print(f"{arch:<14}{speed.describe():<24}  refused: {str(error).split(': ', 1)[1][:120]}")
                continue
            seconds, images = timed(engine, args.requests, args.repeats)
            if exact is None:
                exact = seconds, images
            steps, side = engine.defaults.steps, engine.defaults.width
            decibels = min(psnr(a, b) for a, b in zip(images, exact[1], strict=True))
            print(f"{arch:<14}{speed.describe():<24}{f'{side}²':>10}{steps:>6}{args.requests / seconds:10.3f}"
                  f"{seconds / steps:9.4f}{exact[0] / seconds:9.2f}{decibels:9.1f}")
            del engine
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
    print("(s/step: a whole call's seconds over its steps, text encoding and decoding included; random weights, so "
          "PSNR only says how far a setting moves the same computation)")
    return 0


def timed(engine: Engine, requests: int, repeats: int) -> tuple[float, list[np.ndarray]]:
    """Median seconds of one call making ``requests`` images (after one untimed call: lazy initialisation and
    compilation are not the steady speed), and its images."""
    plans = [engine.plan(GenerationRequest("a lighthouse in a storm", seed=seed)) for seed in range(requests)]
    engine.generate(plans[:1])
    times, images = [], []
    for _ in range(repeats):
        if engine.device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        results = engine.generate(plans)
        if engine.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
        images = [np.asarray(result[0].image.convert("RGB")) for result in results]  # type: ignore[index]
    return statistics.median(times), images
