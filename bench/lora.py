"""What switching LoRA sets between batches costs, against the batch itself, on the tiny Stable Diffusion model.

The engine loads each LoRA once (a PEFT adapter beside the base weights) and switches per batch with
``set_adapters`` / ``disable_lora`` (``models/engine.py``). Side by side, in interleaved rounds on one loaded engine:

- *same set*: the batches run in blocks of one set each (A A A, B B B, none none none: a switch per block);
- *switching*: each batch runs with another set than the one before (A, B, none, A, ...: a switch per batch).

Both make the same batches with the same LoRAs at work (each set for the same share of batches, so the per-step
cost of the adapters' layers is equal): the difference is the extra switches. Printed: milliseconds per batch of
each, one switch's cost as a share of a batch (target < 10 %), and the first use of a LoRA (its load, paid once per
LoRA per process).

    python bench/lora.py [--rounds 3] [--batches 9] [--count 4] [--steps 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path (and bench/queue.py would shadow the standard `queue`).
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from models.engine import Engine  # noqa: E402
from models.loras import Lora  # noqa: E402
from models.plan import GenerationRequest  # noqa: E402
from models.settings import EngineSettings  # noqa: E402
from models.styles import Style, StyleBook  # noqa: E402
from models.tiny import lora as tiny_lora  # noqa: E402
from models.tiny import write_tiny_pipeline  # noqa: E402

SETS = (("a", 0.8), ("b", 0.8), None)
"""The sets the switching run cycles through (None: no LoRA); the same-set runs use each for a whole run."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median reported)")
    parser.add_argument("--batches", type=int, default=9, help="batches per run (a multiple of 3)")
    parser.add_argument("--count", type=int, default=4, help="images per batch")
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        model = write_tiny_pipeline(root / "model", "sd")
        loras = []
        for seed, name in enumerate(("a", "b"), start=1):
            tiny_lora.write(root / name, seed)
            loras.append(Lora(name=name, id=str(root / name), families=["sd"]))
        engine = Engine.load(EngineSettings(str(model), max_batch=args.count, warmup=False),
                             StyleBook([Style(name="none")], loras))

        def batch(chosen: tuple[str, float] | None, seed: int) -> None:
            request = GenerationRequest("a lighthouse", seed=seed, steps=args.steps, count=args.count,
                                        loras=[chosen] if chosen else [])
            [result] = engine.generate([engine.plan(request)])
            assert not isinstance(result, BaseException), result

        started = time.perf_counter()
        batch(SETS[0], 0)
        batch(SETS[1], 0)
        first = time.perf_counter() - started  # two batches, each loading its LoRA
        batch(None, 0)  # warm

        def run(order: list) -> float:
            started = time.perf_counter()
            for index, chosen in enumerate(order):
                batch(chosen, index)
            return (time.perf_counter() - started) / len(order)

        per = args.batches // len(SETS)
        same_times, switch_times = [], []
        for _ in range(args.rounds):
            # The same set: each set for a run of its batches in a row (one switch per set, amortised).
            same_times.append(run([chosen for chosen in SETS for _ in range(per)]))
            switch_times.append(run([chosen for _ in range(per) for chosen in SETS]))
            print(f"  round {len(same_times)}: same set {same_times[-1] * 1000:.1f} ms, switching "
                  f"{switch_times[-1] * 1000:.1f} ms a batch", flush=True)
        same, switching = statistics.median(same_times), statistics.median(switch_times)
        per_switch = (switching - same) * args.batches / (args.batches - len(SETS))
        print(f"tiny SD, {args.count} images × {args.steps} steps a batch, {args.batches} batches a run, "
              f"median of {args.rounds} rounds")
        print(f"  same set:   {same * 1000:8.1f} ms a batch")
        print(f"  switching:  {switching * 1000:8.1f} ms a batch (another set every batch)")
        print(f"  one switch: {per_switch * 1000:+.1f} ms = {per_switch / same * 100:+.1f} % of a batch "
              "(target < 10 %)")
        print(f"  first use of a LoRA (load + batch, each of 2): {first / 2 * 1000:.1f} ms")


if __name__ == "__main__":
    main()
