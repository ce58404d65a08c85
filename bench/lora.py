"""What switching LoRA sets between batches costs, against the batch itself, on the tiny Stable Diffusion model.

The engine loads each LoRA once (a PEFT adapter beside the base weights) and switches per batch with
``set_adapters`` / ``disable_lora`` (``models/engine.py``). Side by side, batch by batch on one loaded engine (as the
bot loads it: ``load_engine``), the sets run in pairs — A A, B B, none none, A A, ... — so every other batch switches
(its set differs from the one before) and the batch after it runs the same set again without a switch: the same
sets, sizes and seeds, the switch the only difference, and the machine's drift shared by both halves of each pair.
Printed: the median batch of each kind and the switch as a share of a batch (target < 10 %); the switch alone
(the pipeline calls the engine makes, timed many times: a figure the machine's noise does not drown); and the first
use of a LoRA (its load, paid once per LoRA per process).

    python bench/lora.py [--rounds 4] [--count 4] [--steps 4]
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

from models.engine import load_engine  # noqa: E402
from models.loras import Lora  # noqa: E402
from models.plan import GenerationRequest  # noqa: E402
from models.settings import EngineSettings  # noqa: E402
from models.styles import Style, StyleBook  # noqa: E402
from models.tiny import lora as tiny_lora  # noqa: E402
from models.tiny import write_tiny_pipeline  # noqa: E402

SETS = (("a", 0.8), ("b", 0.8), None)
"""The sets the batches cycle through (None: no LoRA)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4, help="rounds of the three sets, each set twice in a row")
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
        engine = load_engine(EngineSettings(str(model), max_batch=args.count, warmup=False),
                             StyleBook([Style(name="none")], loras))

        def batch(chosen: tuple[str, float] | None) -> float:
            request = GenerationRequest("a lighthouse", seed=1, steps=args.steps, count=args.count,
                                        loras=[chosen] if chosen else [])
            started = time.perf_counter()
            [result] = engine.generate([engine.plan(request)])
            assert not isinstance(result, BaseException), result
            return time.perf_counter() - started

        first = (batch(SETS[0]) + batch(SETS[1])) / 2  # each loads its LoRA
        batch(None)
        switched, same = [], []
        for round_ in range(args.rounds):
            for chosen in SETS:
                switched.append(batch(chosen))  # after another set
                same.append(batch(chosen))  # the same set again
            print(f"  round {round_ + 1}: switching {statistics.median(switched[-3:]) * 1000:.1f} ms, "
                  f"same set {statistics.median(same[-3:]) * 1000:.1f} ms a batch", flush=True)
        with_switch, without = statistics.median(switched), statistics.median(same)
        # The switch alone, as the engine makes it between two batches: the pipeline calls, timed many times.
        pipe = engine.txt2img
        names = sorted({name for adapters in pipe.get_list_adapters().values() for name in adapters})
        alone = []
        for _ in range(20):
            for chosen in ([names[0]], [names[1]], None):
                started = time.perf_counter()
                if chosen is None:
                    pipe.disable_lora()
                else:
                    pipe.enable_lora()
                    pipe.set_adapters(chosen, adapter_weights=[0.8])
                alone.append(time.perf_counter() - started)
        switch = statistics.median(alone)
        print(f"tiny SD, {args.count} images × {args.steps} steps a batch, {len(same)} batches of each kind, medians")
        print(f"  same set as the batch before: {without * 1000:8.1f} ms a batch")
        print(f"  another set (a switch):       {with_switch * 1000:8.1f} ms a batch")
        print(f"  switch / batch, side by side: {(with_switch - without) / without * 100:+.1f} % (target < 10 %)")
        print(f"  the switch alone (set_adapters / disable_lora, median of {len(alone)}): {switch * 1000:.2f} ms = "
              f"{switch / without * 100:.2f} % of a batch")
        print(f"  first use of a LoRA (its load + a batch): {first * 1000:.1f} ms")


if __name__ == "__main__":
    main()
