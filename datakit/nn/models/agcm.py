"""AGCM: adaptive global colour mapping, the first step of HDRTVNet (Chen et al., ICCV 2021).

Input ``rgb_sdr`` (BT.709 R'G'B', [0, 1]) ``(B, 3, H, W)``; output ``rgb_pq`` (ST 2084 PQ BT.2020
R'G'B' code values) ``(B, 3, H, W)``. Exactly 35,251 parameters, the count of the public checkpoint.
Any frame size; in training mode frames must be larger than 16 x 16 (instance norm at 1/16 resolution).

Structure (HDRTVNet, "adaptive global colour mapping"; the paper itself is not in our seeds):

- Base network: three 1x1 convolutions (3 -> 64 -> 64 -> 3) with ReLU between them, so every
  pixel is mapped by the same (image-adaptive) colour function and no spatial detail is invented.
- Condition network: five colour blocks (1x1 conv, 3x3 average pooling with stride 2, LeakyReLU,
  instance norm on the first four), widths 16-32-64-128-128, dropout, a 1x1 convolution to a
  6-dimensional condition vector and global average pooling. It sees the whole image (the public
  release optionally feeds it a downsampled copy; any size works here).
- Global feature modulation (GFM): for each base convolution, two fully connected layers map the
  condition vector to a per-channel scale and shift: ``y = conv(x) * scale + shift``.

The condition width (6), the block widths and the dropout (p = 0.5) are our recollection of the
public model's published architecture, confirmed by reproducing its 35,251 parameters exactly; the
code is written from that description, not copied. Initialisation is PyTorch's default.
The output is the last modulated convolution (no residual, no output activation).
"""

from __future__ import annotations

import torch
from torch import nn

from datakit.nn.layers import ColorBlock, modulate
from datakit.nn.registry import register_model

__all__ = ["AGCM", "ConditionNet"]


class ConditionNet(nn.Module):
    """HDRTVNet-style condition network: image ``(B, 3, H, W)`` -> condition vector ``(B, cond)``."""

    def __init__(self, cond: int = 6, widths: tuple[int, ...] = (16, 32, 64, 128, 128)) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        in_ch = 3
        for i, width in enumerate(widths):
            blocks.append(ColorBlock(in_ch, width, norm=i < len(widths) - 1))
            in_ch = width
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(in_ch, cond, 1), nn.AdaptiveAvgPool2d(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).flatten(1)


@register_model(
    "agcm",
    paper_params=35_251,
    frames=1,
    description="HDRTVNet adaptive global colour mapping (ICCV 2021): 1x1-conv base net + condition net",
)
class AGCM(nn.Module):
    """HDRTVNet AGCM: ``rgb_sdr (B,3,H,W) -> rgb_pq (B,3,H,W)``."""

    frames = 1
    output_frames = 1

    def __init__(self, nf: int = 64, cond: int = 6) -> None:
        super().__init__()
        self.condition = ConditionNet(cond)
        self.conv1 = nn.Conv2d(3, nf, 1)
        self.conv2 = nn.Conv2d(nf, nf, 1)
        self.conv3 = nn.Conv2d(nf, 3, 1)
        self.scale1, self.shift1 = nn.Linear(cond, nf), nn.Linear(cond, nf)
        self.scale2, self.shift2 = nn.Linear(cond, nf), nn.Linear(cond, nf)
        self.scale3, self.shift3 = nn.Linear(cond, 3), nn.Linear(cond, 3)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.condition(x)

        def gfm(y: torch.Tensor, scale: nn.Linear, shift: nn.Linear) -> torch.Tensor:
            return modulate(y, scale(c)[:, :, None, None], shift(c)[:, :, None, None])

        y = self.act(gfm(self.conv1(x), self.scale1, self.shift1))
        y = self.act(gfm(self.conv2(y), self.scale2, self.shift2))
        return gfm(self.conv3(y), self.scale3, self.shift3)
