"""Comparing generated pictures the way the README's reproducibility guarantee is worded ("Reproducibility").

Two kinds of "the same picture", and a test must say which one it means:

- ``assert_identical``: the same computation (the same request, alone both times or in the same batch, in this
  process) gives the same bytes. Copies are identical too: the kept part of an edit, a stored and re-read file.
- ``assert_same_picture``: the same recipe computed differently (alone vs in a batch, another batch size, another
  thread count, another CPU's or GPU's kernels) gives the same picture within rounding: CPU and GPU kernels pick their
  reduction order by the shape of the work, so a float sum can end one bit apart and a pixel one level apart
  (``bench/reproducibility.py`` measures it per family: at most 1 level, PSNR over 75 dB on these machines).

``other_kernels`` renders a reference the way another machine would (one thread, oneDNN off), so a test that crosses
a batch boundary compares against a computation that differs in its last bits on this project's machines too (for
6 of the 8 tiny families, measured): an exact comparison there fails here, not only on the CPUs (AVX-512) whose
kernels happen to differ by batch shape.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from PIL import Image

MAX_LEVELS = 2
"""The most one channel of one pixel may differ between two computations of the same recipe (of 255)."""
MIN_PSNR_DB = 45.0
"""The least peak signal-to-noise ratio between them: the picture as a whole is the same to the eye and far beyond."""


def as_array(picture: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(picture, Image.Image):
        picture = np.asarray(picture.convert("RGB"))
    return picture.astype(np.int16)


def psnr(a: Image.Image | np.ndarray, b: Image.Image | np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two 8-bit pictures of the same size; infinite when they are equal."""
    difference = as_array(a) - as_array(b)
    mse = float(np.mean(difference.astype(np.float64) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def assert_identical(a: Image.Image | np.ndarray, b: Image.Image | np.ndarray) -> None:
    """The same computation, or a copy: the same pixels to the bit."""
    a, b = as_array(a), as_array(b)
    assert a.shape == b.shape, f"sizes differ: {a.shape} vs {b.shape}"
    assert np.array_equal(a, b), f"{int((a != b).any(axis=-1).sum())} pixels differ, by up to {np.abs(a - b).max()}"


def assert_same_picture(a: Image.Image | np.ndarray, b: Image.Image | np.ndarray) -> None:
    """The same recipe computed another way (batch, threads, kernels): the same picture within rounding."""
    a, b = as_array(a), as_array(b)
    assert a.shape == b.shape, f"sizes differ: {a.shape} vs {b.shape}"
    worst, ratio = int(np.abs(a - b).max()), psnr(a, b)
    assert worst <= MAX_LEVELS and ratio >= MIN_PSNR_DB, (
        f"not the same picture: up to {worst} levels apart (≤ {MAX_LEVELS}), PSNR {ratio:.1f} dB (≥ {MIN_PSNR_DB})")


def assert_same_pictures(got: Sequence[Image.Image], want: Sequence[Image.Image]) -> None:
    """``assert_same_picture`` for each of two results' images, in order."""
    assert len(got) == len(want), f"{len(got)} images, expected {len(want)}"
    for index, (a, b) in enumerate(zip(got, want, strict=True)):
        try:
            assert_same_picture(a, b)
        except AssertionError as error:
            raise AssertionError(f"image {index + 1}: {error}") from None


def assert_different_pictures(a: Image.Image | np.ndarray, b: Image.Image | np.ndarray) -> None:
    """Another seed, prompt or picture made another image: more than rounding apart."""
    a, b = as_array(a), as_array(b)
    assert a.shape != b.shape or int(np.abs(a - b).max()) > MAX_LEVELS, "the pictures are the same within rounding"


@contextmanager
def other_kernels() -> Iterator[None]:
    """Compute as another machine would: one thread and PyTorch's own kernels instead of oneDNN's, which sum in
    another order (the reduction split and the blocking differ), so results differ in their last bits."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.backends.mkldnn.flags(enabled=False):
            yield
    finally:
        torch.set_num_threads(threads)
