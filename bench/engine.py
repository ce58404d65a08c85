"""Benchmark: does the engine's batching pay, and does img2img really share the txt2img weights?

On one model and the same N concurrent requests it measures images/second of
  (a) naive: one direct pipeline call per request, one after another;
  (b) engine: the N requests submitted at once to a LocalBackend, which batches up to max_batch per call
      (by default N, the batch (c) uses, so the two differ only by what the engine adds);
  (c) ideal: one direct batched pipeline call with all N prompts and generators.
A direct call is the family's own pipeline call (``Family.call``: the pipeline's ``__call__`` with the prompts,
seeds, steps and size, for Kandinsky its prior too, for IF both stages), without the engine's planning, grouping,
progress or cancellation.
and prints b/a (target >= 1.3) and b/c (target >= 0.9). Each is warmed up and repeated, median taken.
Then resident memory of txt2img alone vs. with img2img attached (target < 5% more), and of the model (as the
engine loads it) without vs. with its inpainting pipeline attached through ``from_pipe`` (target < 5% more), each
variant in a fresh process side by side, so the process RSS compares like with like.
With ``--memory`` it measures only the two memory comparisons (quick: no generation).
With ``--moves`` it measures instead what the model pool (models/pool.py) pays to switch models: loading from disk,
moving the weights to host memory (offload) and back to the device (reload from host), and loading from disk again
after an unload. On a CPU the device is host memory, so there is nothing to move: only the loads are measured.
With ``--speed`` it measures instead each speed setting (models/speed.py) against exact, on flux, pixart and sd3
(or ``--family``; ``--wide`` adds a deeper, wider FLUX): images/s, PSNR and SSIM (bench/speed.py).
With ``--arch sd-turbo|sdxl|flux-schnell|all`` it builds instead that model at its real size with random weights from
its published config and prints images/s and seconds per step for exact, each cache kind, regional compile, int8 and
fp8 (bench/archs.py; for a GPU: ``--device cuda``); ``--toy`` shrinks them so the path runs on a CPU.
With ``--backend ray`` it measures instead the same N requests through RayBackend on one replica, then two, and
prints both images/s and their ratio (on a CPU-only machine the replicas share its cores, so no doubling).

    python bench/engine.py                      # tiny model on the CPU
    python bench/engine.py --family kandinsky   # the tiny model of another family (models/tiny)
    python bench/engine.py --family chroma --size 64   # a family whose tiny pipeline defaults to 256²
    python bench/engine.py --family hidream   # its Llama, a separate tiny model, is passed as components:
    python bench/engine.py --family flux-kontext -n 4 --repeats 2   # an instruction-editing family: it edits
    python bench/engine.py --arch sd15 --device cuda --steps 20
    python bench/engine.py --backend ray -n 16   # Ray Serve, 1 vs 2 replicas (a local Ray instance)
    python bench/engine.py --arch sd15 --moves    # load, offload to host, reload of an SD 1.5-shaped model
    python bench/engine.py --family if --memory   # what inpainting (edits) adds to a model's resident memory
    python bench/engine.py --speed --wide         # cache kinds, int8 (and --compile) vs exact: bench/speed.py
    python bench/engine.py --arch all --device cuda   # real-size SD-Turbo, SDXL, FLUX.1 [schnell]: bench/archs.py
    python bench/engine.py --arch all --toy           # the same path at toy size, on the CPU
    python bench/engine.py --draft --family flux      # a draft against a full image: bench/speed.py
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# Run as a script, Python puts bench/ first on sys.path, where bench/queue.py would shadow the stdlib's queue.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from concurrent.futures import ThreadPoolExecutor  # noqa: E402

import psutil  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from models.engine import Engine, load_engine  # noqa: E402
from models.families import BY_NAME, CallSpec  # noqa: E402
from models.loading import pick_device, pick_dtype  # noqa: E402
from models.plan import GenerationRequest  # noqa: E402
from models.settings import EngineSettings  # noqa: E402
from models.styles import StyleBook  # noqa: E402
from models.tiny import BUILDERS, SUPPLIED_BY, write_tiny_pipeline  # noqa: E402

REAL_ARCHS = ("sd-turbo", "sdxl", "flux-schnell")
"""The real-size models ``--arch`` builds (bench/archs.py, which imports the engine's heavy parts only when asked)."""


def write_sd15(directory: Path) -> Path:
    """SD 1.5's real UNet, VAE and CLIP text shapes with random weights (no download): realistic cost."""
    from diffusers import (
        AutoencoderKL,
        EulerAncestralDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    from models.tiny.tokenizers import byte_clip_tokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768)  # the defaults are SD 1.5's
    vae = AutoencoderKL(
        block_out_channels=[128, 256, 512, 512], latent_channels=4, sample_size=512,
        down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4, layers_per_block=2,
    )
    tokenizer = byte_clip_tokenizer()
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
        num_attention_heads=12, max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    ))
    scheduler = EulerAncestralDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                                steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(directory)
    return directory


def rss() -> int:
    return psutil.Process().memory_info().rss


async def timed(functions: list, repeats: int) -> list[float]:
    """Median seconds of each function after a warm-up; the functions take turns, so a noisy machine (other
    processes on the same cores) slows all of them alike instead of whichever happened to run during the noise."""
    for function in functions:
        await function()
    times: list[list[float]] = [[] for _ in functions]
    for _ in range(repeats):
        for index, function in enumerate(functions):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            started = time.perf_counter()
            await function()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times[index].append(time.perf_counter() - started)
    return [statistics.median(column) for column in times]


def weight_bytes(*pipes) -> int:
    """Bytes of distinct tensor storage behind the pipelines' modules: shared weights count once."""
    seen, total = set(), 0
    for pipe in pipes:
        for component in pipe.components.values():
            if isinstance(component, torch.nn.Module):
                for tensor in (*component.parameters(), *component.buffers()):
                    storage = tensor.untyped_storage()
                    if storage.data_ptr() not in seen:
                        seen.add(storage.data_ptr())
                        total += storage.nbytes()
    return total


def measure_memory(model: str, device: torch.device, dtype: torch.dtype, components: dict[str, str] | None) -> None:
    """RSS of txt2img alone, then with the family's img2img attached through from_pipe (on CUDA also allocated VRAM).
    """
    from models import families
    from models.engine import load_text_to_image

    gc.collect()
    before, vram_before = rss(), torch.cuda.memory_allocated() if device.type == "cuda" else 0
    pipe = load_text_to_image(model, dtype, components=components).to(device)
    gc.collect()
    alone, vram_alone = rss() - before, (torch.cuda.memory_allocated() - vram_before if device.type == "cuda" else 0)
    family = families.detect(pipe, model)
    if not family.img2img:
        print(f"weights in memory: txt2img {weight_bytes(pipe) / 2**20:.0f} MiB (the family has no img2img)")
        return
    img2img = family.from_pipeline(pipe, model_id=model, device=device, dtype=dtype).img2img_pipe
    gc.collect()
    both, vram_both = rss() - before, (torch.cuda.memory_allocated() - vram_before if device.type == "cuda" else 0)
    weights_alone, weights_both = weight_bytes(pipe), weight_bytes(pipe, img2img)
    print(f"weights in memory: txt2img {weights_alone / 2**20:.0f} MiB; with img2img {weights_both / 2**20:.0f} MiB: "
          f"+{(weights_both - weights_alone) / max(weights_alone, 1):.1%} (target < 5%)")
    # safetensors maps weight files lazily, so RSS can stay far below the weights until they are first used.
    print(f"process RSS: txt2img +{alone / 2**20:.0f} MiB; with img2img +{both / 2**20:.0f} MiB: "
          f"+{(both - alone) / max(alone, 1):.1%}")
    if device.type == "cuda":
        print(f"vram: txt2img {vram_alone / 2**20:.0f} MiB; with img2img {vram_both / 2**20:.0f} MiB")
    del pipe, img2img
    gc.collect()


INPAINT_VARIANTS = ("without", "with")


def measure_inpaint_memory(model: str, device: str, components: dict[str, str] | None) -> bool:
    """The model as the engine attaches it (txt2img, img2img, any stages), without and then with the inpainting
    pipeline, each in a fresh process: weights (distinct tensor storage) and the RSS the model added to the process
    (after the libraries' own); True when within 5%."""
    found = {}
    for variant in INPAINT_VARIANTS:
        done = subprocess.run([sys.executable, __file__, "--inpaint-probe", variant, "--model", model,
                               "--device", device, "--components", json.dumps(components)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"inpaint memory: the {variant} probe failed:\n{done.stderr[-2000:]}")
            return False
        found[variant] = json.loads(done.stdout.strip().splitlines()[-1])
    without, with_ = found["without"], found["with"]
    if not with_["inpaint"]:
        print(f"inpainting: {with_['family']} has none (edits are refused), nothing to compare")
        return True
    weights = with_["weights"] / max(without["weights"], 1)
    rss_ratio = with_["rss"] / max(without["rss"], 1)
    print(f"inpainting ({with_['family']}, through from_pipe): weights {without['weights'] / 2**20:.1f} -> "
          f"{with_['weights'] / 2**20:.1f} MiB = {weights:.3f}x; the model's RSS {without['rss'] / 2**20:.0f} -> "
          f"{with_['rss'] / 2**20:.0f} MiB = {rss_ratio:.3f}x (target < 1.05) "
          f"{'ok' if max(weights, rss_ratio) < 1.05 else 'MISSED'}")
    if without.get("vram"):
        print(f"vram: {without['vram'] / 2**20:.0f} -> {with_['vram'] / 2**20:.0f} MiB = "
              f"{with_['vram'] / max(without['vram'], 1):.3f}x")
    return max(weights, rss_ratio) < 1.05


def inpaint_probe(variant: str, model: str, device_name: str, components: dict[str, str] | None) -> int:
    """One side of ``measure_inpaint_memory``, in its own process: prints one JSON line."""
    from models import families
    from models.engine import load_text_to_image

    device = pick_device(device_name)
    dtype = pick_dtype(device)
    gc.collect()
    before = rss()  # after torch and diffusers are imported: what follows is the model's own
    pipe = load_text_to_image(model, dtype, components=components)
    family = families.detect(pipe, model)
    if variant == "without":  # the same family, told it has no inpainting: nothing else differs
        family = type(family.__name__, (family,), {"inpaint": False})
    loaded = family.from_pipeline(pipe, model_id=model, device=device, dtype=dtype)
    loaded.to(device)
    gc.collect()
    print(json.dumps({"family": family.name, "inpaint": loaded.inpaint_pipe is not None,
                      "weights": weight_bytes(*loaded.pipelines()), "rss": rss() - before,
                      "vram": torch.cuda.memory_allocated() if device.type == "cuda" else 0}))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=["tiny", "sd15", *REAL_ARCHS, "all"], default="tiny",
                        help="tiny, SD 1.5-shaped, or a real-size model with random weights (all: the three)")
    parser.add_argument("--toy", action="store_true", help="--arch sd-turbo|sdxl|flux-schnell|all at toy size")
    parser.add_argument("--draft", action="store_true", help="a draft against a full image, seconds and ratio")
    parser.add_argument("--family", choices=sorted(BUILDERS), help="which tiny model (--arch tiny; default sd)")
    parser.add_argument("--model", help="an existing model id or directory instead of building one")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backend", choices=["local", "ray"], default="local")
    parser.add_argument("-n", "--requests", type=int, default=None,
                        help="requests (images) per run: default 8, 1 with --arch of a real-size model")
    parser.add_argument("--max-batch", type=int, default=None,
                        help="images per pipeline call (default: N locally, so (b) and (c) batch alike; 4 on Ray)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=None, help="runs per setting, median taken (default 5; 3 "
                                                                    "with --arch of a real-size model)")
    parser.add_argument("--moves", action="store_true", help="time load / offload to host / reload (the pool's costs)")
    parser.add_argument("--memory", action="store_true", help="only the resident memory comparisons")
    parser.add_argument("--speed", action="store_true", help="each speed setting against exact (bench/speed.py)")
    parser.add_argument("--wide", action="store_true", help="--speed: also a deeper, wider FLUX transformer")
    parser.add_argument("--compile", action="store_true", help="--speed: also regional compile (minutes on a CPU)")
    parser.add_argument("--size", type=int, default=None,
                        help="image side (default: the model's; e.g. 64 for tiny qwen-image and chroma)")
    parser.add_argument("--components", type=json.loads, default=None,
                        help="bot.yaml's components of --model, as JSON (the tiny model's own are built)")
    parser.add_argument("--inpaint-probe", choices=INPAINT_VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    real = args.arch in (*REAL_ARCHS, "all")
    args.requests = args.requests or (1 if real else 8)
    args.repeats = args.repeats or (3 if real else 5)
    if real:
        from bench.archs import run_archs

        args.archs = list(REAL_ARCHS) if args.arch == "all" else [args.arch]
        return run_archs(args)
    if args.draft:
        from bench.speed import run_draft

        args.families = [args.family] if args.family else ["sd", "flux"]
        with tempfile.TemporaryDirectory() as scratch:
            return run_draft(args, Path(scratch))
    if args.speed:
        from bench.speed import run_speed

        args.families = [args.family] if args.family else ["flux", "pixart", "sd3"]
        args.families += ["flux-wide"] if args.wide else []
        with tempfile.TemporaryDirectory() as scratch:
            return run_speed(args, Path(scratch))
    args.family = args.family or "sd"
    if args.inpaint_probe:
        return inpaint_probe(args.inpaint_probe, args.model, args.device, args.components)
    if args.max_batch is None:
        args.max_batch = 4 if args.backend == "ray" else args.requests

    with tempfile.TemporaryDirectory() as scratch:
        model = args.model
        if model is None:
            if args.arch == "sd15":
                model = str(write_sd15(Path(scratch) / "sd15"))
            else:
                model = str(write_tiny_pipeline(Path(scratch) / "tiny", args.family))
                if args.family in SUPPLIED_BY and args.components is None:
                    source = str(write_tiny_pipeline(Path(scratch) / "supplier", SUPPLIED_BY[args.family]))
                    args.components = dict.fromkeys(BY_NAME[args.family].supplied_components, source)
        if args.moves:
            return measure_moves(args, model)
        if args.memory:
            device = pick_device(args.device)
            measure_memory(model, device, pick_dtype(device), args.components)
            return 0 if measure_inpaint_memory(model, args.device, args.components) else 1
        if args.backend == "ray":
            return run_ray(args, model, Path(scratch))
        return run(args, model)


def measure_moves(args: argparse.Namespace, model: str) -> int:
    """The model pool's costs, median of ``--repeats``: a load from disk, an offload to host memory, a reload from
    host memory, and a load from disk again after an unload (the reference the offload must beat)."""
    settings = EngineSettings(model_id=model, device=args.device, warmup=False)
    device = pick_device(args.device)
    host = torch.device("cpu")

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def clock(action) -> float:
        started = time.perf_counter()
        action()
        sync()
        return time.perf_counter() - started

    times: dict[str, list[float]] = {"load from disk": [], "offload to host": [], "reload from host": []}
    size = 0
    loaded: list[Engine] = []
    for _ in range(args.repeats):
        times["load from disk"].append(clock(lambda: loaded.append(load_engine(settings, StyleBook([])))))
        engine = loaded.pop()
        size = engine.weight_bytes()
        if device != host:
            times["offload to host"].append(clock(lambda engine=engine: engine.to(host)))
            times["reload from host"].append(clock(lambda engine=engine: engine.to(device)))
        del engine
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print(f"model moves: {Path(model).name} ({size / 2**20:.0f} MiB of weights) on {device}, median of "
          f"{args.repeats}")
    for name, samples in times.items():
        value = f"{statistics.median(samples):.3f} s" if samples else "- (the device is host memory)"
        print(f"  {name:<18} {value}")
    return 0


def run_ray(args: argparse.Namespace, model: str, scratch: Path) -> int:
    """Images/s of the same N requests on one replica, then on two (each replica on its own GPU, or one CPU core)."""
    import ray
    from ray import serve

    from bot.backends import engine_settings, ray_settings
    from bot.config import Config
    from models.ray_backend import RayBackend, _init_ray

    device = pick_device(args.device)

    def config(replicas: int) -> Config:
        return Config.model_validate({
            "model": {"id": model, "device": device.type, "steps": args.steps, "guidance": 7.0},
            "storage": {"dir": str(scratch)},
            "engine": {"backend": "ray", "ray": {
                "num_gpus": 1 if device.type == "cuda" else 0, "min_replicas": replicas, "max_replicas": replicas,
                "target_ongoing_requests": 1, "batch_size": args.max_batch}},
        })

    prompts = [f"request {index}: a lighthouse in a storm, number {index}" for index in range(args.requests)]

    async def measure(replicas: int) -> float:
        parsed = config(replicas)
        backend = await RayBackend.connect(engine_settings(parsed), ray_settings(parsed), StyleBook([]))
        await backend.start()
        assert await backend.capacity() == replicas * args.max_batch

        async def round_() -> None:
            # What the queue does: batches of max_batch, as many in flight as capacity() allows.
            plans = [backend.plan(GenerationRequest(p, seed=i)) for i, p in enumerate(prompts)]
            room = asyncio.Semaphore(await backend.capacity() // backend.max_batch)

            async def one(batch) -> None:
                async with room:
                    results = await backend.run(batch, lambda _rid, _p: None)
                assert all(isinstance(r, list) for r in results), results

            await asyncio.gather(*(one(plans[i:i + backend.max_batch])
                                   for i in range(0, len(plans), backend.max_batch)))

        try:
            [seconds] = await timed([round_], args.repeats)
        finally:
            await backend.close()
        print(f"ray, {replicas} replica{'s' if replicas > 1 else ''}: {len(prompts) / seconds:7.2f} images/s "
              f"(replicas used: {len(backend.replica_batches)})")
        return len(prompts) / seconds

    print(f"model {args.arch if not args.model else model} on Ray, {device}, N={args.requests}, "
          f"batch_size={args.max_batch}, steps={args.steps}")
    # sized for two replicas (on CPU: one logical CPU, one torch thread, per replica)
    _init_ray(ray_settings(config(2)))
    async def both() -> tuple[float, float]:
        return await measure(1), await measure(2)

    try:
        one, two = asyncio.run(both())
    finally:
        serve.shutdown()
        ray.shutdown()
    print(f"2 replicas / 1 replica: {two / one:.2f}x")
    if device.type != "cuda":
        print(f"note: on this CPU-only machine the replicas share {os.cpu_count()} cores (and the bot's process),"
              " so two replicas do not double the throughput; on two GPUs they should come close.")
    return 0


def run(args: argparse.Namespace, model: str) -> int:
    device = pick_device(args.device)
    dtype = pick_dtype(device)
    name = args.model or (f"tiny {args.family}" if args.arch == "tiny" else args.arch)
    print(f"model {name} on {device} ({dtype}), torch threads "
          f"{torch.get_num_threads()}, N={args.requests}, max_batch={args.max_batch}, steps={args.steps}")

    measure_memory(model, device, dtype, args.components)
    inpaint_ok = measure_inpaint_memory(model, args.device, args.components)
    engine = Engine.load(EngineSettings(model, device=args.device, max_batch=args.max_batch, steps=args.steps,
                                        guidance=7.0, size=args.size, components=args.components), StyleBook([]))
    family = engine.model  # (a) and (c) run the very same modules as the engine
    prompts = [f"request {index}: a lighthouse in a storm, number {index}" for index in range(args.requests)]
    # An instruction-editing family is measured editing (every request the same picture, as one call can batch).
    pictures = [Image.new("RGB", (engine.defaults.width, engine.defaults.height), "teal")] \
        if engine.defaults.instruct_edit else None
    sample = engine.plan(GenerationRequest(prompts[0], seed=0, input_images=pictures))
    width, height = sample.recipes[0].width, sample.recipes[0].height
    if pictures:
        print(f"instruction edits of one {width}x{height} picture")

    def direct(indices: list[int]) -> None:
        spec = CallSpec(prompts=[prompts[i] for i in indices], negatives=[""] * len(indices), seeds=indices,
                        steps=args.steps, guidance=7.0, width=width, height=height,
                        input_images=sample.input_images or None)
        with torch.inference_mode():
            family.run(spec, lambda _done, _total, _latents: False, lambda pipe, kwargs: pipe(**kwargs).images)

    def naive() -> None:
        for index in range(len(prompts)):
            direct([index])

    def ideal() -> None:
        direct(list(range(len(prompts))))


    from models.local_backend import LocalBackend

    async def measure() -> list[float]:
        # Everything torch does runs on worker threads, as in the bot: (a) and (c) on one, the engine on its own.
        loop = asyncio.get_running_loop()
        plain = ThreadPoolExecutor(max_workers=1)
        backend = LocalBackend(engine)
        await backend.start()

        async def engine_round() -> None:
            # The queue hands the backend compatible plans together, up to its capacity per run().
            plans = [backend.plan(GenerationRequest(p, seed=i, input_images=pictures))
                     for i, p in enumerate(prompts)]
            capacity = await backend.capacity()
            runs = [backend.run(plans[i:i + capacity], lambda _rid, _p: None) for i in range(0, len(plans), capacity)]
            for results in await asyncio.gather(*runs):
                assert all(isinstance(r, list) for r in results), results

        async def on_plain(function) -> None:
            await loop.run_in_executor(plain, function)

        try:
            return await timed([lambda: on_plain(naive), engine_round, lambda: on_plain(ideal)], args.repeats)
        finally:
            await backend.close()
            plain.shutdown()

    naive_s, engine_s, ideal_s = asyncio.run(measure())
    n = len(prompts)
    a, b, c = n / naive_s, n / engine_s, n / ideal_s
    print(f"(a) naive sequential : {a:7.2f} images/s")
    print(f"(b) engine (batched) : {b:7.2f} images/s")
    print(f"(c) one batched call : {c:7.2f} images/s")
    ok_bc = b / c >= 0.9
    if family.generator_lists:
        ok_ba = b / a >= 1.3
        print(f"b/a = {b / a:.2f} (target >= 1.3) {'ok' if ok_ba else 'MISSED'}")
    else:  # the family's pipeline takes one generator: every image is its own call, batched or not
        ok_ba = True
        print(f"b/a = {b / a:.2f} (no target: {family.name} makes its images one by one)")
    print(f"b/c = {b / c:.2f} (target >= 0.9) {'ok' if ok_bc else 'MISSED'}")
    return 0 if ok_ba and ok_bc and inpaint_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
