"""Grad-CAM (Selvaraju et al., 2017) with forward and backward hooks on one named layer.

Written here rather than taken from ``monai.visualize`` so the layer's resolution, the ReLU and the
normalisation are explicit and tested; the result is a map in [0, 1] at the input's size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GradCAM"]


class GradCAM:
    """``GradCAM(model, "features.context")(x)`` returns (logits, cam) with cam shaped (B, H, W) like ``x``.

    The class score is the single logit (binary models) or ``class_index``. Works under ``torch.no_grad``
    callers: gradients are enabled locally.
    """

    def __init__(self, model: nn.Module, target_layer: str) -> None:
        modules = dict(model.named_modules())
        if target_layer not in modules:
            raise ValueError(f"target_layer {target_layer!r} is not a module of {type(model).__name__}.")
        self.model = model
        self.target_layer = target_layer
        self._layer = modules[target_layer]

    def __call__(self, x: torch.Tensor, class_index: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        store: dict[str, torch.Tensor] = {}

        def fwd_hook(_module, _inputs, output):
            store["act"] = output
            output.register_hook(lambda grad: store.__setitem__("grad", grad))

        handle = self._layer.register_forward_hook(fwd_hook)
        try:
            with torch.enable_grad(), torch.inference_mode(False):
                x = x.detach().clone().requires_grad_(True)
                logits = self.model(x)
                score = logits[:, class_index].sum()
                self.model.zero_grad(set_to_none=True)
                score.backward()
        finally:
            handle.remove()
        act, grad = store["act"].detach(), store["grad"].detach()
        weights = grad.mean(dim=(2, 3), keepdim=True)
        cam = F.relu((weights * act).sum(dim=1, keepdim=True))
        cam = F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)[:, 0]
        flat = cam.flatten(1)
        lo, hi = flat.min(dim=1).values, flat.max(dim=1).values
        cam = (cam - lo[:, None, None]) / (hi - lo).clamp_min(1e-8)[:, None, None]
        return logits.detach(), cam
