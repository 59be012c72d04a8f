"""HDCFM: hierarchical dynamic context feature mapping (He, Xu et al., ACM MM 2022), first stage.

Input ``rgb_sdr`` (BT.709 R'G'B', [0, 1]) ``(B, 3, H, W)``; output ``rgb_pq`` (ST 2084 PQ BT.2020
R'G'B' code values) ``(B, 3, H, W)``. Any frame size (no padding needed: the estimator pools with
ceil and the local vectors are resized to the frame); in training mode frames must be larger than
16 x 16 (instance norm needs more than one position at 1/16 resolution).

What follows the paper (section numbers of the ACM MM 2022 paper):

- Sec. 3.2.1: SDR features ``F_S`` from a convolution, mapped in feature space, back to an image.
- Sec. 3.2.3 / Fig. 6, HME: ``F_D5`` after five downsamplings of ``X_S``; a global branch (global
  pooling) gives ``V_Ga, V_Gb``; an upsampling branch gives the per-pixel ``V_La, V_Lb``.
- Sec. 3.2.3 / Fig. 5, HM: global modulation ``F * V_Ga + V_Gb`` in series with local modulation
  ``F * V_La + V_Lb``.
- Sec. 3.2.5-3.2.6 / Eq. 2 / Fig. 8, DYCT: ``K_S = SKP(F_S)`` (Conv . Conv), ``K_C = CKP(F_S)``
  (GAP . Conv), ``F_mid = DDF(F_S, K_S, K_C)`` (decoupled dynamic filter, Zhou et al. 2021),
  ``F_O = CB(F_mid)`` with CB a GCNet context block whose convolutions are DDF-based
  (:class:`datakit.nn.layers.DynamicContextBlock`).

Where we had to guess (the paper gives no widths, depths or layer order, and its code release was
not used):

- Layout: like HDRTVNet's AGCM, on which the public code is said to build: ``stages`` stages of
  [1x1 conv, HM, ReLU, DYCT] then a 1x1 conv to RGB whose output gets a last global modulation.
  The 1x1 convolutions keep the main path a per-pixel colour transform; spatial context enters
  only through DYCT and the local vectors.
- HME: five HDRTVNet colour blocks (16-32-64-128-128, as in AGCM) for ``F_D5``; global head
  dropout + 1x1 conv + global average pooling to a ``cond``-vector and one pair of linear layers per
  modulated layer; local head a 1x1 conv + LeakyReLU at 1/32 resolution and one pair of 1x1 convs per
  modulated layer, bilinearly upsampled to the frame ("F_D5 passes through the upsample"). The 1x1
  convs are applied before upsampling, which is the same function (both are linear per pixel and
  bilinear weights sum to one) at 1/1024 of the cost.
- Scales are initialised at 1 (bias 1) so that an untrained HM is close to the identity.
- DDF kernel 3x3; SKP = 3x3 conv to C/4, ReLU, 1x1 conv to 9 taps; CKP uses the DDF paper's
  squeeze (GAP, 1x1 to C/4, ReLU, 1x1 to 9C) instead of a single 1x1 conv to 9C (which would cost
  9C^2 parameters per block).
- Widths: ``nf=40, stages=3, cond=8, local=32`` give 101,102 parameters, within 0.5 % of the
  public checkpoint's 100,682 (paper: 100.63K). The widths were chosen for that count, not taken
  from the checkpoint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from datakit.nn.layers import ColorBlock, DecoupledDynamicFilter, DynamicContextBlock, modulate
from datakit.nn.registry import register_model

__all__ = ["DYCT", "HDCFM", "HME"]


class DYCT(nn.Module):
    """Dynamic context feature transformation: ``CB(DDF(F_S, SKP(F_S), CKP(F_S)))`` (HDCFM Eq. 2)."""

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.ddf = DecoupledDynamicFilter(channels, kernel_size)
        self.context = DynamicContextBlock(channels, kernel_size=kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.context(self.ddf(x))


class HME(nn.Module):
    """Hierarchical modulation estimation: global ``(B, C, 1, 1)`` and local ``(B, C, H, W)`` vectors.

    ``forward(x)`` returns the global condition vector ``(B, cond)`` and, for each of
    ``len(channels)`` modulated layers, a tuple ``(global_scale, global_shift, local_scale, local_shift)``.
    """

    def __init__(
        self,
        channels: tuple[int, ...],
        *,
        cond: int = 8,
        local: int = 32,
        widths: tuple[int, ...] = (16, 32, 64, 128, 128),
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        in_ch = 3
        for i, width in enumerate(widths):
            blocks.append(ColorBlock(in_ch, width, norm=i < len(widths) - 1))
            in_ch = width
        self.trunk = nn.Sequential(*blocks)
        self.global_head = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(in_ch, cond, 1), nn.AdaptiveAvgPool2d(1))
        self.local_head = nn.Sequential(nn.Conv2d(in_ch, local, 1), nn.LeakyReLU(0.2))
        self.global_scale = nn.ModuleList(nn.Linear(cond, c) for c in channels)
        self.global_shift = nn.ModuleList(nn.Linear(cond, c) for c in channels)
        self.local_scale = nn.ModuleList(nn.Conv2d(local, c, 1) for c in channels)
        self.local_shift = nn.ModuleList(nn.Conv2d(local, c, 1) for c in channels)
        for layer in (*self.global_scale, *self.local_scale):
            nn.init.constant_(layer.bias, 1.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[torch.Tensor, ...]]]:
        size = x.shape[-2:]
        fd5 = self.trunk(x)
        g = self.global_head(fd5).flatten(1)
        loc = self.local_head(fd5)

        def up(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, size=size, mode="bilinear", align_corners=False)

        out = []
        for gs, gb, ls, lb in zip(
            self.global_scale, self.global_shift, self.local_scale, self.local_shift, strict=True
        ):
            out.append((gs(g)[:, :, None, None], gb(g)[:, :, None, None], up(ls(loc)), up(lb(loc))))
        return g, out


def hierarchical_modulation(f: torch.Tensor, vectors: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """HM: global modulation then local modulation, ``(F * V_Ga + V_Gb) * V_La + V_Lb``."""
    ga, gb, la, lb = vectors
    return modulate(modulate(f, ga, gb), la, lb)


@register_model(
    "hdcfm",
    paper_params=100_630,
    frames=1,
    description="HDCFM (ACM MM 2022): hierarchical global+local modulation and dynamic context transform",
)
class HDCFM(nn.Module):
    """HDCFM first stage: ``rgb_sdr (B,3,H,W) -> rgb_pq (B,3,H,W)``."""

    frames = 1
    output_frames = 1

    def __init__(self, nf: int = 40, stages: int = 3, cond: int = 8, local: int = 32) -> None:
        super().__init__()
        self.hme = HME((nf,) * stages, cond=cond, local=local)
        self.convs = nn.ModuleList(nn.Conv2d(3 if i == 0 else nf, nf, 1) for i in range(stages))
        self.dyct = nn.ModuleList(DYCT(nf) for _ in range(stages))
        self.out = nn.Conv2d(nf, 3, 1)
        self.out_scale = nn.Linear(cond, 3)
        self.out_shift = nn.Linear(cond, 3)
        nn.init.constant_(self.out_scale.bias, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g, vectors = self.hme(x)
        f = x
        for conv, dyct, v in zip(self.convs, self.dyct, vectors, strict=True):
            f = dyct(F.relu(hierarchical_modulation(conv(f), v)))
        return modulate(self.out(f), self.out_scale(g)[:, :, None, None], self.out_shift(g)[:, :, None, None])
