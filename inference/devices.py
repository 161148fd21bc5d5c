"""Which torch device a pipeline runs on: the CPU unless asked for (``device=`` or ``LIGHTBOX_AI_DEVICE``).

``"auto"`` takes the first CUDA GPU when torch sees one, else the CPU; ``"cuda"`` without a usable GPU is
refused with a reason rather than silently run on the CPU, so a GPU figure is never a CPU figure.
"""

from __future__ import annotations

import os

import torch

from inference.errors import ModelRegistryError

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    name = str(device if device is not None else os.environ.get("LIGHTBOX_AI_DEVICE", "") or "cpu").strip()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ModelRegistryError(f"unknown torch device {name!r} (use cpu, cuda, cuda:N or auto).") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelRegistryError(
            f"device {name!r} was asked for, but torch {torch.__version__} sees no CUDA GPU on this machine."
        )
    return dev
