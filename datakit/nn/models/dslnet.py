"""DSLNet: SDRTV-to-HDRTV conversion via spatial-temporal feature fusion (Xu et al., AAAI 2023).

Input ``rgb_sdr`` (BT.709 R'G'B', [0, 1]) frames ``(B, 2T+1, 3, H, W)``; output the centre frame
as ``rgb_pq`` (ST 2084 PQ BT.2020 R'G'B' code values) ``(B, 3, H, W)``. Frames of any size are
accepted (reflection padding to an even size, cropped back).

What follows the paper ("Methodology", Figs. 4-7, Eqs. 1-8):

- DMFA / LDOE: the stacked frames go through a 3x3 stride-2 convolution + ReLU, a 17x17 depthwise
  convolution, a 7x7 dynamic convolution (Han et al., ICLR 2022: per-sample depthwise kernels from
  global pooling, :class:`datakit.nn.layers.DynamicDepthwiseConv`), a 17x17 depthwise convolution,
  ReLU, a transposed convolution back to full resolution and ReLU (``X_offset``); a deformable
  convolution (Dai et al. 2017, :func:`torchvision.ops.deform_conv2d`) of the frames with those
  offsets gives ``F_Aligned``.
- STFM, branch 1 (ConditionNet, Fig. 6): four ColorBlocks ``Conv1x1(Pool(LeakyReLU(Norm(X))))``
  (Eq. 2) applied to every frame with shared weights give ``F``; SME (Eq. 3) gives the per-pixel
  ``V_SM`` from the centre frame, TME (Eq. 4) the vector ``V_TM`` from all frames, CME (Eq. 5) the
  vector ``V_CM`` from the centre frame.
- STFM, branch 2: 1x1 conv, TFM (Eq. 6), then three times [ReLU, 1x1 conv, CFM, SFM] (Eq. 7).
- STFM, branch 3: two (3x3 conv + LeakyReLU), four LKRBs, a 3x3 conv (Eq. 8); added to branch 2.
- LKQE: 3x3 conv + ReLU, four LKRBs (then a 3x3 conv to RGB).

Where we had to guess (the paper gives no widths, no T and no layer details beyond the above):

- ``frames=5`` (T = 2). The paper leaves T open; its multi-frame ResNet baseline (Table 3) has
  1.38M parameters against 1.37M for the single-frame one, which fits a 3x3 input convolution over
  5 stacked frames (+6,912) better than over 3 (+3,456, still 1.37M).
- Offsets: a 3x3 convolution (initialised to zero) from ``X_offset`` to ``2*9`` offsets per frame
  (one deformable group per frame); DCN v1 (no modulation mask), as in the cited Dai et al. 2017.
  The ReLU the paper puts after the transposed convolution is kept, on the features before this
  offset convolution (offsets themselves must be signed).
- LKRB is ``x + Conv3x3(ReLU(DW17(ReLU(x))))``: Eq. 8 plus the identity skip its name implies (the
  text lists the same layers in another order, Conv, ReLU, DW, ReLU; we follow the equation).
- The deformable convolution is 3x3, from the stacked RGB frames to ``nf`` channels.
- Modulation vectors: scale/shift pairs; TFM and each CFM/SFM repeat gets its own pair (the 1x1
  heads produce them together); scales are initialised at 1. V_SM is computed at 1/32 resolution
  and bilinearly upsampled ("Up" in Eq. 3). TME concatenates the frames' features on channels.
- The last LKQE step (a 3x3 convolution to three channels) is implied but not described.
- Widths: ``nf=64``, ConditionNet 16-32-64-64, TME/CME hidden width 64 give 926,515 parameters
  (paper 0.93M; the widths were chosen to match that figure).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from datakit.nn.layers import (
    ColorBlock,
    DynamicDepthwiseConv,
    LargeKernelResBlock,
    crop_to,
    modulate,
    pad_to_multiple,
)
from datakit.nn.registry import register_model

__all__ = ["DMFA", "LKQE", "STFM", "DSLNet"]


class DMFA(nn.Module):
    """Dynamic multi-frame alignment: frames ``(B, N, 3, H, W)`` -> aligned features ``(B, nf, H, W)``.

    ``H`` and ``W`` must be even (the LDOE works at half resolution).
    """

    def __init__(self, frames: int, nf: int, *, large: int = 17, dynamic: int = 7) -> None:
        super().__init__()
        in_ch = 3 * frames
        self.frames = frames
        self.ldoe = nn.Sequential(
            nn.Conv2d(in_ch, nf, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(nf, nf, large, padding=large // 2, groups=nf),
            DynamicDepthwiseConv(nf, dynamic),
            nn.Conv2d(nf, nf, large, padding=large // 2, groups=nf),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(nf, nf, 4, stride=2, padding=1),
            nn.ReLU(inplace=True),
        )
        self.offset = nn.Conv2d(nf, 2 * 9 * frames, 3, padding=1)
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)
        self.weight = nn.Parameter(torch.empty(nf, in_ch, 3, 3))
        self.bias = nn.Parameter(torch.zeros(nf))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        from torchvision.ops import deform_conv2d  # imported here: torchvision is slow to import

        b, n, c, h, w = frames.shape
        stacked = frames.reshape(b, n * c, h, w)
        offset = self.offset(self.ldoe(stacked))
        return deform_conv2d(stacked, offset, self.weight, self.bias, padding=1)


class ConditionNet(nn.Module):
    """Four DSLNet ColorBlocks (Eq. 2), shared over frames: ``(B*N, 3, H, W) -> (B*N, C, H/16, W/16)``."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 64)) -> None:
        super().__init__()
        blocks = []
        in_ch = 3
        for width in widths:
            blocks.append(ColorBlock(in_ch, width, norm_first=True))
            in_ch = width
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = in_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class STFM(nn.Module):
    """Spatial-temporal feature modulation: ``(F_Aligned, frames) -> F_Modulated`` (Fig. 7).

    ``repeats`` [ReLU, 1x1 conv, CFM, SFM] units follow the TFM in the modulation branch.
    """

    def __init__(
        self,
        frames: int,
        nf: int,
        *,
        cond_widths: tuple[int, ...] = (16, 32, 64, 64),
        head: int = 64,
        repeats: int = 3,
        lkrb: int = 4,
    ) -> None:
        super().__init__()
        self.frames = frames
        self.nf = nf
        self.repeats = repeats
        self.condition = ConditionNet(cond_widths)
        cw = self.condition.out_channels
        # SME (Eq. 3): LeakyReLU, average pooling, 1x1 conv, upsampling.
        self.sme = nn.Sequential(
            nn.LeakyReLU(0.2),
            nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
            nn.Conv2d(cw, 2 * nf * repeats, 1),
        )
        # TME (Eq. 4) and CME (Eq. 5): 1x1 conv, global pooling, 1x1 conv.
        self.tme = nn.Sequential(nn.Conv2d(cw * frames, head, 1), nn.AdaptiveAvgPool2d(1), nn.Conv2d(head, 2 * nf, 1))
        self.cme = nn.Sequential(nn.Conv2d(cw, head, 1), nn.AdaptiveAvgPool2d(1), nn.Conv2d(head, 2 * nf * repeats, 1))
        for conv in (self.sme[-1], self.tme[-1], self.cme[-1]):
            _init_scale_bias(conv, nf)
        # Branch 2.
        self.entry = nn.Conv2d(nf, nf, 1)
        self.mod_convs = nn.ModuleList(nn.Conv2d(nf, nf, 1) for _ in range(repeats))
        # Branch 3.
        self.skip = nn.Sequential(
            nn.Conv2d(nf, nf, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(nf, nf, 3, padding=1),
            nn.LeakyReLU(0.2),
            *(LargeKernelResBlock(nf) for _ in range(lkrb)),
            nn.Conv2d(nf, nf, 3, padding=1),
        )

    def forward(self, aligned: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        b, n, c, h, w = frames.shape
        feats = self.condition(frames.reshape(b * n, c, h, w))
        feats = feats.view(b, n, *feats.shape[1:])
        centre = feats[:, n // 2]
        v_tm = self.tme(feats.flatten(1, 2))  # (B, 2nf, 1, 1)
        v_cm = self.cme(centre)  # (B, 2nf*R, 1, 1)
        v_sm = F.interpolate(self.sme(centre), size=(h, w), mode="bilinear", align_corners=False)
        nf = self.nf
        f = modulate(self.entry(aligned), v_tm[:, :nf], v_tm[:, nf:])
        for r, conv in enumerate(self.mod_convs):
            cm = v_cm[:, 2 * nf * r : 2 * nf * (r + 1)]
            sm = v_sm[:, 2 * nf * r : 2 * nf * (r + 1)]
            f = conv(F.relu(f))
            f = modulate(f, cm[:, :nf], cm[:, nf:])
            f = modulate(f, sm[:, :nf], sm[:, nf:])
        return f + self.skip(aligned)


def _init_scale_bias(conv: nn.Conv2d, nf: int) -> None:
    """For a head producing interleaved ``[scale(nf), shift(nf)]`` groups, start the scales at 1."""
    with torch.no_grad():
        bias = conv.bias.view(-1, 2, nf)
        bias[:, 0].fill_(1.0)
        bias[:, 1].zero_()


class LKQE(nn.Module):
    """Large-kernel quality enhancement: 3x3 conv + ReLU, ``lkrb`` LKRBs, 3x3 conv to RGB."""

    def __init__(self, nf: int, lkrb: int = 4) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(nf, nf, 3, padding=1),
            nn.ReLU(inplace=True),
            *(LargeKernelResBlock(nf) for _ in range(lkrb)),
            nn.Conv2d(nf, 3, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@register_model(
    "dslnet",
    paper_params=930_000,
    frames=5,
    description="DSLNet (AAAI 2023): deformable multi-frame alignment, spatio-temporal modulation, LKQE",
)
class DSLNet(nn.Module):
    """DSLNet: ``rgb_sdr (B, frames, 3, H, W) -> rgb_pq (B, 3, H, W)`` (centre frame)."""

    output_frames = 1

    def __init__(self, frames: int = 5, nf: int = 64, head: int = 64) -> None:
        super().__init__()
        if frames < 1 or frames % 2 == 0:
            raise ValueError("frames must be odd (2T + 1)")
        self.frames = frames
        self.dmfa = DMFA(frames, nf)
        self.stfm = STFM(frames, nf, head=head)
        self.lkqe = LKQE(nf)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[1] != self.frames or x.shape[2] != 3:
            raise ValueError(f"expected (B, {self.frames}, 3, H, W), got {tuple(x.shape)}")
        x, size = pad_to_multiple(x, 2)
        aligned = self.dmfa(x)
        return crop_to(self.lkqe(self.stfm(aligned, x)), size)
