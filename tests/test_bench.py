"""The benchmarks' own paths: ``bench/engine.py --arch`` builds the published shapes (counted on the meta device,
where nothing is allocated) and runs its whole table at toy size on the CPU; ``--draft`` prints its ratio rows;
``bench/queue.py --storage postgresql`` drains a shared queue with several processes. No timing is asserted: the
figures are the scripts' to print."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench.archs import BUILDERS

REPO = Path(__file__).resolve().parent.parent
PUBLISHED = {"sd-turbo": ("unet", 865.9), "sdxl": ("unet", 2567.5), "flux-schnell": ("transformer", 11891.2)}
"""Millions of parameters of each denoiser as published (the Hub's model cards and safetensors headers)."""


@pytest.mark.parametrize("arch", sorted(BUILDERS))
def test_each_arch_has_its_published_size(arch: str) -> None:
    with torch.device("meta"):
        pipe = BUILDERS[arch](False)
    name, millions = PUBLISHED[arch]
    assert sum(p.numel() for p in getattr(pipe, name).parameters()) / 1e6 == pytest.approx(millions, abs=0.1)


def bench(*args: str, script: str = "engine.py") -> str:
    done = subprocess.run([sys.executable, str(REPO / "bench" / script), *args], capture_output=True,
                          text=True, check=False, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def rows(output: str, first: str) -> dict[str, str]:
    """The table's rows for ``first`` (an arch or family), by setting."""
    found = {}
    for line in output.splitlines():
        if line.startswith(first + " "):
            setting = line[14:38].strip()
            found[setting] = line
    return found


def test_the_arch_table_runs_at_toy_size_on_the_cpu() -> None:
    output = bench("--arch", "all", "--toy", "-n", "1", "--repeats", "1", "--device", "cpu")
    for arch in ("sd-turbo", "sdxl"):
        table = rows(output, arch)
        assert "images/s" not in table["exact"] and table["exact"].split()[-1] == "inf"  # exact against itself
        assert "refused: cache first_block is not available for the" in table["cache first_block"]
        assert "refused: quantize fp8 needs a CUDA device" in table["fp8"]
        assert float(table["int8"].split()[-1]) > 20  # PSNR against exact
    flux = rows(output, "flux-schnell")
    for kind in ("first_block", "faster", "pab", "taylorseer", "magcache"):
        assert "refused" not in flux[f"cache {kind}"], flux[f"cache {kind}"]
    assert "compile regional" not in output  # minutes on a CPU: --toy leaves it out unless --compile


def test_the_draft_bench_prints_a_ratio_per_family() -> None:
    output = bench("--draft", "--family", "sd", "-n", "1", "--repeats", "1", "--steps", "8", "--device", "cpu")
    [row] = [line for line in output.splitlines() if line.startswith("sd ")]
    assert "×8 steps" in row and "×2 steps" in row  # a quarter of the steps (and half the side: the recipe's)
    assert float(row.split()[-1]) > 0  # draft/full


def test_the_queue_bench_drains_one_postgresql_queue_with_several_processes() -> None:
    """At toy size: both engines side by side, then 1 and 2 processes on one queue, each job run once (the script
    checks the counts and says PASS)."""
    from tests.postgres import missing

    if reason := missing():
        pytest.skip(reason)
    output = bench("--storage", "postgresql", "--jobs", "200", "--users", "20", "--flood", "40", "--singles", "4",
                   "--drain-jobs", "60", "--processes", "1,2", "--batch-ms", "5", script="queue.py")
    drains = [line for line in output.splitlines() if "jobs each ran" in line]
    assert len(drains) == 4 and all("every job once (60 of 60)" in line for line in drains), output
    assert "SQLite / PostgreSQL" in output and output.rstrip().endswith("PASS"), output
