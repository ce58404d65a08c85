"""The GAN upscaler: a Real-ESRGAN-class generator loaded by file with spandrel and run in tiles.

spandrel's ``ModelLoader`` reads the file, recognises the architecture from the state dict's keys and describes the
model (``ImageModelDescriptor``: scale, channels, dtypes, whether tiling suits it), so the project has no
architecture code of its own and takes any super-resolution file spandrel knows. Images are upscaled in tiles with
an overlap, so memory stays flat however large the picture: only one tile and its output are on the device at once.

Used by the engine (``upscale`` plans, see ``models/plan.py``) and by ``python -m bot upscale``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from spandrel import ImageModelDescriptor, ModelLoader, ModelTiling, UnsupportedModelError

from models.loading import error_line, load_reason
from models.plan import ModelLoadError
from models.settings import UPSCALER_SUFFIXES, hub_file, public_name

log = logging.getLogger(__name__)

CONFIG_KEY = "upscaler.model"
"""Named in every load error, so the operator knows which setting to fix."""
TILE_OVERLAP = 16
"""Input pixels of context around each tile, cropped from its output: seams stay invisible."""

TileCallback = Callable[[int, int], None]
"""Called with (tiles done, tiles in all) after each tile; raising from it stops the upscale (cancellation)."""


class Upscaler:
    """One loaded super-resolution model and how to run it on a picture."""

    def __init__(self, descriptor: ImageModelDescriptor, *, name: str, tile: int) -> None:
        self.descriptor = descriptor
        self.name = name
        # A model that tiles internally must see the whole picture (spandrel's advice); others get our tiles.
        self.tile = None if descriptor.tiling is ModelTiling.INTERNAL else tile

    @property
    def scale(self) -> int:
        return self.descriptor.scale

    def to(self, device: torch.device) -> None:
        """Follow the diffusion model it is loaded beside when the pool parks that on the host and back."""
        self.descriptor.to(device=device)

    def weight_bytes(self) -> int:
        model = self.descriptor.model
        return sum(tensor.numel() * tensor.element_size() for tensor in (*model.parameters(), *model.buffers()))

    @classmethod
    def load(cls, model: str, device: torch.device, dtype: torch.dtype, *, tile: int = 256,
             name: str | None = None) -> Upscaler:
        """Load ``model`` (a file, or a Hub file ``owner/repo/name.pth``), shown in recipes as ``name`` (default: its
        ``public_name``, never a server path); raises ModelLoadError with one line."""
        path = _locate(model)
        try:
            descriptor = ModelLoader().load_from_file(path)
        except UnsupportedModelError:
            raise ModelLoadError(f"Cannot load the upscaler '{model}' ({CONFIG_KEY}): spandrel recognises no model "
                                 "architecture in it") from None
        except Exception as error:  # a damaged file, a pickle spandrel refuses: one line, not a traceback
            raise ModelLoadError(f"Cannot load the upscaler '{model}' ({CONFIG_KEY}): {error_line(error)}") from None
        if not (isinstance(descriptor, ImageModelDescriptor) and descriptor.purpose == "SR" and descriptor.scale > 1
                and descriptor.input_channels == descriptor.output_channels == 3):
            raise ModelLoadError(
                f"Cannot use '{model}' as the upscaler ({CONFIG_KEY}): it is a {descriptor.architecture.name} "
                f"{descriptor.purpose} model at {descriptor.scale}×, not an RGB super-resolution model (2× or more) "
                "like Real-ESRGAN")
        descriptor.to(device=device, dtype=_supported_dtype(descriptor, dtype)).eval()
        log.info("loaded the upscaler %s (%s, %d×) on %s as %s", model, descriptor.architecture.name,
                 descriptor.scale, device, descriptor.dtype)
        return cls(descriptor, name=name or public_name(model), tile=tile)

    def upscale(self, image: Image.Image, *, size: tuple[int, int] | None = None,
                on_tile: TileCallback | None = None) -> Image.Image:
        """``image`` times ``scale``, tile by tile; resized to ``size`` when given (the plan caps the sides)."""
        pixels = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1).unsqueeze(0)
        height, width = pixels.shape[2:]
        scale, tile = self.scale, self.tile or max(width, height)
        output = torch.empty((height * scale, width * scale, 3), dtype=torch.uint8)  # on the CPU, 3 bytes a pixel
        tiles = [(top, left) for top in range(0, height, tile) for left in range(0, width, tile)]
        for done, (top, left) in enumerate(tiles, start=1):
            bottom, right = min(height, top + tile), min(width, left + tile)
            # The tile with TILE_OVERLAP of context on each side (clipped to the picture); only the tile's own
            # part of the output is kept.
            top_in, left_in = max(0, top - TILE_OVERLAP), max(0, left - TILE_OVERLAP)
            bottom_in, right_in = min(height, bottom + TILE_OVERLAP), min(width, right + TILE_OVERLAP)
            piece = pixels[..., top_in:bottom_in, left_in:right_in]
            result = self.descriptor(piece.to(self.descriptor.device, self.descriptor.dtype) / 255)
            kept = result[0, :, (top - top_in) * scale:(bottom - top_in) * scale,
                          (left - left_in) * scale:(right - left_in) * scale]
            output[top * scale:bottom * scale, left * scale:right * scale] = (
                (kept.float() * 255).round().to(torch.uint8).permute(1, 2, 0).cpu())
            if on_tile is not None:
                on_tile(done, len(tiles))
        upscaled = Image.fromarray(output.numpy())
        if size is not None and upscaled.size != size:
            upscaled = upscaled.resize(size, Image.Resampling.LANCZOS)
        return upscaled


def _locate(model: str) -> Path:
    """The local file ``model`` names, downloaded first when it is a Hub file."""
    hub = hub_file(model)
    if hub is None:
        path = Path(model).expanduser()
        if not path.is_file():
            raise ModelLoadError(f"Cannot load the upscaler '{model}' ({CONFIG_KEY}): no such file (give a "
                                 f"{' or '.join(UPSCALER_SUFFIXES)} file, or a Hub file 'owner/repo/name.pth')")
        return path
    from huggingface_hub import hf_hub_download

    repo_id, filename = hub
    try:
        return Path(hf_hub_download(repo_id, filename))
    except Exception as error:
        raise ModelLoadError(f"Cannot load the upscaler '{model}' ({CONFIG_KEY}): "
                             f"{load_reason(repo_id, error)}") from None


def _supported_dtype(descriptor: ImageModelDescriptor, dtype: torch.dtype) -> torch.dtype:
    """The engine's dtype when the architecture supports it, else float32 (spandrel says which halves work)."""
    if (dtype == torch.float16 and not descriptor.supports_half) or (
            dtype == torch.bfloat16 and not descriptor.supports_bfloat16):
        return torch.float32
    return dtype


__all__ = ["CONFIG_KEY", "Upscaler"]
