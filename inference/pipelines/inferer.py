"""Apply a segmentation network to a volume or to one z-slab with MONAI's sliding-window inferer.

Windows span the whole (padded) slice in-plane and ``roi_depth`` slices in z: on a CPU one large window
costs less than several overlapping small ones, and a batch-normalised, fully convolutional net gives the
same answer on a window larger than its training patch.
"""

from __future__ import annotations

import torch
from monai.inferers import SlidingWindowInferer
from torch import nn

from inference.pipelines.transforms import pad_to_multiple

__all__ = ["VolumeInferer"]


class VolumeInferer:
    """Softmax probabilities of ``network`` over a (1, C, Z, Y, X) input.

    Args:
        roi_depth: window depth in z (model voxels), a multiple of ``divisor``.
        overlap: z overlap of neighbouring windows, as MONAI's ``overlap``.
        divisor: the product of the network strides; Y and X are zero-padded up to a multiple of it.
    """

    def __init__(self, roi_depth: int = 80, overlap: float = 0.25, divisor: int = 16) -> None:
        if roi_depth <= 0 or roi_depth % divisor:
            raise ValueError(
                f"roi_depth must be a positive multiple of divisor={divisor}, got {roi_depth!r}."
            )
        if not 0 <= overlap < 1:
            raise ValueError(f"overlap must be in [0, 1), got {overlap!r}.")
        self.roi_depth = int(roi_depth)
        self.overlap = float(overlap)
        self.divisor = int(divisor)

    def __call__(self, x: torch.Tensor, network: nn.Module) -> torch.Tensor:
        if x.ndim != 5 or x.shape[0] != 1:
            raise ValueError(f"x must be (1, C, Z, Y, X), got shape {tuple(x.shape)!r}.")
        padded, pads = pad_to_multiple(x, self.divisor, dims=(3, 4))
        depth = (
            self.roi_depth if x.shape[2] > self.roi_depth else -(-x.shape[2] // self.divisor) * self.divisor
        )
        inferer = SlidingWindowInferer(
            roi_size=(depth, padded.shape[3], padded.shape[4]),
            sw_batch_size=1,
            overlap=self.overlap,
            mode="gaussian",
            padding_mode="constant",
            cval=0.0,
        )
        logits = inferer(padded, network)
        probs = torch.softmax(logits, dim=1)
        (y0, y1), (x0, x1) = pads[3], pads[4]
        return probs[:, :, :, y0 : padded.shape[3] - y1, x0 : padded.shape[4] - x1]
