"""A small 2D CNN that answers "is there a nodule on this chest radiograph?", with a nodule map.

It keeps a 1/4-resolution feature map (64 x 64 for a 256 x 256 input) down to the last convolution, growing
the receptive field with dilation instead of pooling, and ends in a 1 x 1 convolution giving a nodule logit
per cell. The image logit is the maximum of that map: one small focal finding decides. Training supervises
both the image label and the map (the phantoms' nodule masks), which makes a small model learn in minutes and
keeps its Grad-CAM on the nodule rather than on anatomy that happens to correlate.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["NoduleClassifier2D"]


def _conv(cin: int, cout: int, *, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class NoduleClassifier2D(nn.Module):
    """Binary classifier returning one logit per image.

    Args:
        in_channels: input channels (2: the radiograph and its difference of Gaussians).
        channels: widths of the four stages: stem (1/2), stage 2 (1/2), stage 3 (1/4), dilated stage (1/4).
        dropout: channel dropout before the 1 x 1 head.

    ``features`` is an ``nn.Sequential`` whose last item, ``features.context``, is the Grad-CAM layer;
    :meth:`forward` returns the image logit, :meth:`forward_maps` also the per-cell logit map.
    """

    def __init__(
        self,
        in_channels: int = 2,
        channels: tuple[int, int, int, int] = (16, 24, 32, 48),
        dropout: float = 0.1,
    ):
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels!r}.")
        if len(channels) != 4 or min(channels) < 1:
            raise ValueError(f"channels must be 4 positive widths, got {channels!r}.")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")
        c1, c2, c3, c4 = (int(c) for c in channels)
        self.features = nn.Sequential()
        self.features.add_module("stem", _conv(in_channels, c1, stride=2))
        self.features.add_module("stage2", _conv(c1, c2))
        self.features.add_module("pool", nn.MaxPool2d(2))
        self.features.add_module("stage3", nn.Sequential(_conv(c2, c3), _conv(c3, c3)))
        self.features.add_module(
            "context", nn.Sequential(_conv(c3, c4, dilation=2), _conv(c4, c4, dilation=4))
        )
        self.dropout = nn.Dropout2d(dropout)
        self.head = nn.Conv2d(c4, 1, 1)

    def forward_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(image logits (B, 1), nodule logit map (B, 1, H/4, W/4))."""
        maps = self.head(self.dropout(self.features(x)))
        return maps.amax(dim=(2, 3)), maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_maps(x)[0]
