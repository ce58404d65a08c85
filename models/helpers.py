"""What every transformers model loaded beside a diffusion model shares (the captioner, the safety classifiers):
it follows the model between the device and host memory, and its weights count in the model's.

No torch import here: the config reads the safety classifiers' labels without loading torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from models.plan import ModelLoadError

if TYPE_CHECKING:
    import torch


def load_pretrained(location: str, processor_class: Any, model_class: Any, dtype: torch.dtype,
                    what: str) -> tuple[Any, Any]:
    """The processor (or tokenizer) and the model saved at ``location``, through transformers' Auto classes; a
    ModelLoadError saying "Cannot load ``what``" and why in one line when they can't be loaded."""
    from models.loading import load_reason

    try:
        return processor_class.from_pretrained(location), model_class.from_pretrained(location, dtype=dtype)
    except Exception as error:
        reason = load_reason(location, error, saved=("config.json", "a transformers model"))
        raise ModelLoadError(f"Cannot load {what}: {reason}") from None


class Helper:
    """A loaded transformers model (``self.model``) beside a diffusion model."""

    model: Any

    @property
    def device(self) -> torch.device:
        return self.model.device

    def to(self, device: torch.device) -> None:
        """Follow the diffusion model it is loaded beside when the pool parks that on the host and back."""
        self.model.to(device)

    def weight_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.model.parameters(), *self.model.buffers()))
