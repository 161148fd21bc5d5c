"""A small 2D CNN that answers "is there a nodule on this chest radiograph?".

It keeps a 1/4-resolution feature map (64 x 64 for a 256 x 256 input) down to the last convolution, growing
the receptive field with dilation instead of pooling, so a Grad-CAM taken there can point at a nodule of
8 mm rather than at a 40 mm cell. Global max and average pooling feed the logit: max pooling lets one
small focal finding decide, average pooling keeps the training stable.
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
        in_channels: image channels (1 for a radiograph).
        channels: widths of the four stages: stem (1/2), stage 2 (1/2), stage 3 (1/4), dilated stage (1/4).
        dropout: before the final linear layer.

    ``features`` is an ``nn.Sequential`` whose last item, ``features.context``, is the Grad-CAM layer.
    """

    def __init__(
        self,
        in_channels: int = 1,
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
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * c4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        pooled = torch.cat([f.amax(dim=(2, 3)), f.mean(dim=(2, 3))], dim=1)
        return self.fc(self.dropout(pooled))
