"""Benchmark: what the image safety check costs next to generation.

On one model and the same N requests (each of ``--count`` images, with progress previews as the bot asks for them)
it times, side by side and in turns (each first every other time) so that both see the same machine:
  (a) the engine without a safety check;
  (b) the engine with ``safety.model: tiny`` (every result and every preview goes through the classifier, batched
      per pipeline call, as in the bot);
  (c) the classifier alone on the same number of images, in one call per batch.
It prints the median seconds of each, (b-a)/a (target < 5 %) and c/a (the classifier's own share).

    python bench/safety.py                             # the tiny SD pipeline on the CPU (the harshest ratio)
    python bench/safety.py --arch sd15 --size 256      # SD 1.5's real shapes, random weights (realistic cost)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, Python puts bench/ first on sys.path, where bench/queue.py would shadow the stdlib's queue: the
# repository goes there instead, and bench/engine.py sets up the environment as every benchmark does.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.engine import write_sd15  # noqa: E402, I001  (first: it sets the offline environment)
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from models.engine import Engine  # noqa: E402
from models.plan import GenerationRequest, Progress  # noqa: E402
from models.settings import EngineSettings, SafetySettings  # noqa: E402
from models.styles import StyleBook  # noqa: E402
from models.tiny import write_tiny_pipeline  # noqa: E402

TARGET = 0.05


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=["tiny", "sd15"], default="tiny")
    parser.add_argument("-n", "--requests", type=int, default=4)
    parser.add_argument("--count", type=int, default=2, help="images per request")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=None, help="image side (default: the model's)")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) - 1))
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch) / "model"
        model = str(write_sd15(directory) if args.arch == "sd15" else write_tiny_pipeline(directory, "sd"))
        settings = EngineSettings(model, cache_dir=scratch, device="cpu", dtype="float32", warmup=False,
                                  max_batch=args.requests * args.count, steps=args.steps, size=args.size,
                                  max_count=args.count)
        plain = Engine.load(settings, StyleBook([]))
        checked = Engine.load(EngineSettings(**{**settings.__dict__, "safety": SafetySettings("tiny")}),
                              StyleBook([]))
        assert checked.checker is not None
        requests = [GenerationRequest(f"a lighthouse, take {index}", seed=index, count=args.count)
                    for index in range(args.requests)]
        images = args.requests * args.count
        pictures = [Image.new("RGB", (plain.defaults.width, plain.defaults.height), (index * 40, 90, 160))
                    for index in range(images)]

        def generate(engine: Engine) -> float:
            started = time.perf_counter()
            results = engine.generate([engine.plan(request) for request in requests], on_progress=shown)
            assert all(not isinstance(result, BaseException) for result in results), results
            return time.perf_counter() - started

        def classify() -> float:
            started = time.perf_counter()
            checked.checker.scores(pictures)
            return time.perf_counter() - started

        generate(plain), generate(checked), classify()  # warm-up
        a, b, c = [], [], []
        for repeat in range(args.repeats):  # in turns, each first every other time: the machine's drift hits both
            if repeat % 2:
                b.append(generate(checked))
                a.append(generate(plain))
            else:
                a.append(generate(plain))
                b.append(generate(checked))
            c.append(classify())
    a_s, b_s, c_s = (statistics.median(times) for times in (a, b, c))
    overhead = (b_s - a_s) / a_s
    print(f"model {args.arch} on cpu, {args.requests} requests x {args.count} images, {args.steps} steps, "
          f"{plain.defaults.width}x{plain.defaults.height}, median of {args.repeats}")
    print(f"  (a) without the check   {a_s:8.3f} s")
    print(f"  (b) with the check      {b_s:8.3f} s")
    print(f"  (c) classifier alone    {c_s:8.3f} s  ({images} images in one call)")
    print(f"  (b-a)/a = {overhead:+.1%}   c/a = {c_s / a_s:.1%}   target (b-a)/a < {TARGET:.0%}: "
          f"{'PASS' if overhead < TARGET else 'FAIL'}")
    return 0 if overhead < TARGET else 1


def shown(request_id: str, progress: Progress) -> None:
    """Progress as the bot asks for it: previews are made (and checked), then dropped."""


if __name__ == "__main__":
    raise SystemExit(main())
