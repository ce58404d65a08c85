"""Benchmark: how far apart are two computations of the same recipe? The bound README's "Reproducibility" states.

For each family's tiny model it makes one recipe (prompt, seed, steps, size) several ways and compares the pixels:
  (a) again, alone, in this process: the same computation (expected: the same bytes);
  (b) inside a batch of three (another batch shape: the kernels may sum in another order);
  (c) alone in another process that computes as another machine would: ATEN_CPU_CAPABILITY=default (PyTorch's
      scalar kernels instead of this CPU's vector ones), one thread, oneDNN off.
It prints, per family, the most levels (of 255) one channel of one pixel differs and the PSNR, then the worst of each
against the bound the tests assert (tests/pictures.py: MAX_LEVELS, MIN_PSNR_DB), PASS or FAIL.

    python bench/reproducibility.py                   # every family
    python bench/reproducibility.py --family sd --family flux
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# Run as a script, Python puts bench/ first on sys.path, where bench/queue.py would shadow the stdlib's queue.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from models.engine import Engine  # noqa: E402
from models.plan import GenerationRequest  # noqa: E402
from models.settings import EngineSettings  # noqa: E402
from models.styles import StyleBook  # noqa: E402
from models.tiny import BUILDERS, write_tiny_pipeline  # noqa: E402
from tests.pictures import MAX_LEVELS, MIN_PSNR_DB, as_array, other_kernels, psnr  # noqa: E402

RECIPE = GenerationRequest("a lighthouse at dusk", seed=5)
OTHERS = [GenerationRequest("a dog", seed=1, count=2)]
"""What shares the batch in (b): another request of two images, before the recipe."""
STEPS = 3


def load(directory: Path) -> Engine:
    return Engine.load(EngineSettings(str(directory), device="cpu", dtype="float32", warmup=False, max_batch=4,
                                      steps=STEPS), StyleBook([]))


def alone(engine: Engine) -> np.ndarray:
    [result] = engine.generate([engine.plan(RECIPE)])
    assert not isinstance(result, BaseException), result
    return as_array(result[0].image)


def batched(engine: Engine) -> np.ndarray:
    results = engine.generate([engine.plan(request) for request in [*OTHERS, RECIPE]])
    mine = results[-1]
    assert not isinstance(mine, BaseException), mine
    return as_array(mine[0].image)


def levels(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a - b).max())


def child(models: Path, out: Path, names: list[str]) -> None:
    """(c): each family's recipe alone, computed as another machine would, saved for the parent to compare."""
    with other_kernels():
        for name in names:
            np.save(out / f"{name}.npy", alone(load(models / name)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", action="append", choices=sorted(BUILDERS), help="default: every family")
    parser.add_argument("--child", nargs=2, metavar=("MODELS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    names = args.family or sorted(BUILDERS)
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), names)
        return
    with tempfile.TemporaryDirectory() as temporary:
        models, elsewhere = Path(temporary, "models"), Path(temporary, "elsewhere")
        elsewhere.mkdir()
        for name in names:
            write_tiny_pipeline(models / name, name)
        env = {**os.environ, "ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "1"}
        subprocess.run([sys.executable, __file__, *[f"--family={n}" for n in names], "--child", str(models),
                        str(elsewhere)], env=env, check=True)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
              f"CPU capability here: {torch.backends.cpu.get_cpu_capability()}")
        print(f"{'family':<10} {'again':>8} {'batched: levels':>16} {'PSNR dB':>8} {'other kernels: levels':>22} "
              f"{'PSNR dB':>8}")
        worst_levels, worst_psnr, repeatable = 0, math.inf, True
        for name in names:
            engine = load(models / name)
            first = alone(engine)
            same = np.array_equal(first, alone(engine))
            repeatable &= same
            again = "same" if same else "DIFFERS"
            rows = []
            for other in (batched(engine), np.load(elsewhere / f"{name}.npy")):
                worst_levels, worst_psnr = max(worst_levels, levels(first, other)), min(worst_psnr, psnr(first, other))
                rows.append((levels(first, other), psnr(first, other)))
            (bl, bp), (ol, op) = rows
            print(f"{name:<10} {again:>8} {bl:>16} {bp:>8.1f} {ol:>22} {op:>8.1f}")
        verdict = "PASS" if repeatable and worst_levels <= MAX_LEVELS and worst_psnr >= MIN_PSNR_DB else "FAIL"
        print(f"worst: {worst_levels} levels (bound {MAX_LEVELS}), PSNR {worst_psnr:.1f} dB (bound {MIN_PSNR_DB}): "
              f"{verdict}")


if __name__ == "__main__":
    main()
