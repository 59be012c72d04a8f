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
The output is the last modulated convolution (no output activation).

Our addition (not in HDRTVNet): ``residual=True`` adds that output, as a correction in PQ code values, to the
classical BT.2408 mapping (:class:`datakit.nn.models.classical.ResidualBase`); the last convolution and its shift start
at zero, so the untrained model equals ``--model classical``. Off by default (``residual=False`` is the paper's
network, and checkpoints without the option keep loading as trained); the training configs in ``models/`` set it.
"""

from __future__ import annotations

import torch
from torch import nn

from datakit.nn.layers import ColorBlock, map_bands, modulate, row_bands
from datakit.nn.models.classical import ResidualBase, zero_init_
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
    description="HDRTVNet adaptive global colour mapping (ICCV 2021): 1x1-conv base net + condition net; residual=True "
    "(our addition, off by default) learns a correction of the classical mapping",
)
class AGCM(nn.Module):
    """HDRTVNet AGCM: ``rgb_sdr (B,3,H,W) -> rgb_pq (B,3,H,W)``."""

    frames = 1
    output_frames = 1

    def __init__(self, nf: int = 64, cond: int = 6, residual: bool = False) -> None:
        super().__init__()
        self.condition = ConditionNet(cond)
        self.conv1 = nn.Conv2d(3, nf, 1)
        self.conv2 = nn.Conv2d(nf, nf, 1)
        self.conv3 = nn.Conv2d(nf, 3, 1)
        self.scale1, self.shift1 = nn.Linear(cond, nf), nn.Linear(cond, nf)
        self.scale2, self.shift2 = nn.Linear(cond, nf), nn.Linear(cond, nf)
        self.scale3, self.shift3 = nn.Linear(cond, 3), nn.Linear(cond, 3)
        self.act = nn.ReLU(inplace=True)
        self.base = ResidualBase() if residual else None
        if residual:
            zero_init_(self.conv3, self.shift3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or torch.is_grad_enabled() or x.device.type != "cpu":
            y = self.reference_forward(x)
        else:
            y = self.banded_forward(x)
        return y if self.base is None else self.base(x, y)

    def reference_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The network as described above (training, CUDA, and the baseline of :meth:`banded_forward`); without
        the residual base, which :meth:`forward` adds."""
        c = self.condition(x)

        def gfm(y: torch.Tensor, scale: nn.Linear, shift: nn.Linear) -> torch.Tensor:
            return modulate(y, scale(c)[:, :, None, None], shift(c)[:, :, None, None])

        y = self.act(gfm(self.conv1(x), self.scale1, self.shift1))
        y = self.act(gfm(self.conv2(y), self.scale2, self.shift2))
        return gfm(self.conv3(y), self.scale3, self.shift3)

    def banded_forward(self, x: torch.Tensor, rows: int = 8, workers: int | None = None) -> torch.Tensor:
        """:meth:`reference_forward`'s values for CPU inference, without its full-resolution 64-channel maps.

        Each GFM is folded into its convolution, per sample: ``(W x + b) * s + t = (s W) x + (s b + t)``, so the
        base network is three matrix products with a bias and a ReLU, run on bands of ``rows`` rows whose
        intermediate maps stay in cache (:func:`datakit.nn.layers.map_bands`; the reference makes eight
        whole-frame passes, ``conv2d``'s 1x1 path copying its input each time). The condition network pools
        before each colour block's 1x1 convolution (:meth:`ColorBlock.pooled_first`, the same function).
        """
        feats = x
        for block in self.condition.features:
            feats = block.pooled_first(feats)
        c = self.condition.head(feats).flatten(1)
        folded = []
        for conv, scale, shift in ((self.conv1, self.scale1, self.shift1), (self.conv2, self.scale2, self.shift2),
                                   (self.conv3, self.scale3, self.shift3)):  # fmt: skip
            s, t = scale(c), shift(c)  # (B, C_out)
            folded.append((conv.weight[None, :, :, 0, 0] * s[:, :, None], conv.bias * s + t))
        b, _, h, w = x.shape
        out = x.new_empty((b, 3, h, w))

        def band(r0: int, r1: int) -> None:
            y = x[:, :, r0:r1].reshape(b, 3, -1)
            for i, (weight, bias) in enumerate(folded):
                y = torch.baddbmm(bias[:, :, None], weight, y)
                if i < len(folded) - 1:
                    y.clamp_min_(0.0)  # ReLU
            out[:, :, r0:r1] = y.view(b, 3, r1 - r0, w)

        map_bands(band, row_bands(h, rows), workers or torch.get_num_threads())
        return out
