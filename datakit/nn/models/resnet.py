"""Plain residual CNN baseline (SRResNet-like), the "ResNet" row of the SDRTV-to-HDRTV tables.

Input ``rgb_sdr`` (BT.709 R'G'B', [0, 1]) ``(B, 3, H, W)``; output ``rgb_pq`` (ST 2084 PQ BT.2020
R'G'B') ``(B, 3, H, W)``.

Structure (our design, in the spirit of SRResNet / He et al. 2016 identity-mapping blocks):
``conv3x3(3 -> nf)``, ``down`` stride-2 3x3 convolutions, ``blocks`` residual blocks
(conv-ReLU-conv + skip, no batch norm), a trunk convolution with a long skip, ``down`` stages of
(x2 bilinear upsampling + conv3x3 + ReLU), a full-resolution skip and ``conv3x3(nf -> 3)``.

With the default ``nf=64, blocks=16, down=2`` the network has 1,369,859 parameters, the count of
HDRTVNet's local-enhancement network and the "1.37M" of the papers' tables: 37 3x3 convolutions
64 -> 64 plus the input and output convolutions add up to exactly that number. The arrangement of
those convolutions is our own. The two stride-2 stages keep 4K inference affordable (the residual
blocks run at quarter resolution); ``down=0`` gives a plain full-resolution SRResNet without the
up/down convolutions (1,222,147 parameters at the defaults).
Frames of any size are accepted (reflection padding to a multiple of ``2**down``, cropped back).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from datakit.nn.layers import crop_to, kaiming_scale_, pad_to_multiple
from datakit.nn.registry import register_model

__all__ = ["ResNet", "ResidualBlock"]


class ResidualBlock(nn.Module):
    """``x + conv3x3(ReLU(conv3x3(x)))`` without normalization."""

    def __init__(self, nf: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(nf, nf, 3, padding=1)
        self.conv2 = nn.Conv2d(nf, nf, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


@register_model(
    "resnet",
    paper_params=1_370_000,
    frames=1,
    description="plain residual CNN baseline (SRResNet-like, nf 64, 16 blocks, 2 stride-2 stages)",
)
class ResNet(nn.Module):
    """Residual CNN baseline: ``rgb_sdr (B,3,H,W) -> rgb_pq (B,3,H,W)``."""

    frames = 1
    output_frames = 1

    def __init__(self, nf: int = 64, blocks: int = 16, down: int = 2) -> None:
        super().__init__()
        self.down_levels = down
        self.head = nn.Conv2d(3, nf, 3, padding=1)
        self.down = nn.ModuleList(nn.Conv2d(nf, nf, 3, stride=2, padding=1) for _ in range(down))
        self.body = nn.Sequential(*(ResidualBlock(nf) for _ in range(blocks)))
        self.trunk = nn.Conv2d(nf, nf, 3, padding=1)
        self.up = nn.ModuleList(nn.Conv2d(nf, nf, 3, padding=1) for _ in range(down))
        self.tail = nn.Conv2d(nf, 3, 3, padding=1)
        kaiming_scale_(self.body, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, size = pad_to_multiple(x, 2**self.down_levels)
        f0 = F.relu(self.head(x))
        f = f0
        for conv in self.down:
            f = F.relu(conv(f))
        f = f + self.trunk(self.body(f))
        for conv in self.up:
            f = F.relu(conv(F.interpolate(f, scale_factor=2.0, mode="bilinear", align_corners=False)))
        out = self.tail(f + f0)
        return crop_to(out, size)
