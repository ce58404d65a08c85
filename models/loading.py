"""What every model loader shares: where a model runs, in which dtype, and the one line said when it cannot load.

The engine, the captioner and the upscaler each load a different kind of model, but a person and an operator should
read one wording for the same failure (a gated repository, an offline Hub, a directory that is no saved model, out
of memory) whichever of them hit it. Loaders import this module; it imports none of them.
"""

from __future__ import annotations

from pathlib import Path

import torch

MAX_REASON = 300
"""Characters of a library's own error message worth showing: enough to name the problem, short enough for Discord."""


def pick_device(device: str = "auto") -> torch.device:
    """``auto``: the best accelerator present (CUDA, then Apple's MPS), else the CPU; any other name as given."""
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(device: torch.device, dtype: str = "auto") -> torch.dtype:
    """``auto``: bfloat16 on a CUDA card that has it (float16 otherwise, and on MPS), float32 on the CPU."""
    if dtype != "auto":
        return getattr(torch, dtype)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def first_line(error: BaseException) -> str:
    """The first line of ``error``'s message, capped: libraries append tracebacks and advice that fit no reply."""
    return (str(error).strip().splitlines() or [""])[0][:MAX_REASON]


def error_line(error: BaseException) -> str:
    """``error`` as one line that names its type, for failures no better wording is known for."""
    line = first_line(error)
    return f"{type(error).__name__}: {line}" if line else type(error).__name__


def load_reason(model_id: str, error: BaseException, *,
                saved: tuple[str, str] = ("model_index.json", "a diffusers pipeline")) -> str:
    """One human line for why ``from_pretrained`` (or a Hub download) of ``model_id`` failed; ``saved`` names the
    file a local directory of that kind of model holds and what it is (a transformers model has a config.json)."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    chain = []
    while error is not None and len(chain) < 10:
        chain.append(error)
        error = error.__cause__ or error.__context__
    error = next((e for e in chain if isinstance(e, (torch.OutOfMemoryError, GatedRepoError,
                                                        RepositoryNotFoundError, LocalEntryNotFoundError))), chain[0])
    local = Path(model_id).expanduser()
    index, kind = saved
    if local.is_dir() and not (local / index).exists() and not isinstance(error, torch.OutOfMemoryError):
        return f"the directory has no {index} (is it {kind} saved with save_pretrained?)"
    if isinstance(error, torch.OutOfMemoryError):
        return "out of memory while loading (try dtype float16, a smaller model or another device)"
    if isinstance(error, GatedRepoError):
        return (f"the repository is gated: accept its licence at https://huggingface.co/{model_id} while logged in, "
                "then put an access token of that account in the HF_TOKEN environment variable")
    if isinstance(error, RepositoryNotFoundError):
        return "not found on the Hugging Face Hub"
    if (model_id.startswith(("/", ".", "~")) and not local.exists()) or isinstance(error, HFValidationError):
        return "no such local directory, and not a valid Hugging Face id"
    if not local.exists() and (isinstance(error, LocalEntryNotFoundError) or constants.HF_HUB_OFFLINE
                               or "offline" in str(error).lower()):
        return "not in the local cache and the Hub is offline (HF_HUB_OFFLINE is set or no network)"
    if "trust_remote_code" in str(error):  # diffusers' refusal to run a custom pipeline's own code
        return ("the model ships its own pipeline code; read it, then set trust_remote_code: true on the model in "
                "bot.yaml to run it")
    return error_line(error)


__all__ = ["error_line", "first_line", "load_reason", "pick_device", "pick_dtype"]
