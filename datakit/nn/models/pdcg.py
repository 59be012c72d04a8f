"""PDCG: patch-discriminator dynamic context generation, HDCFM's second stage (ACM MM 2022, Sec. 3.3).

PDCG refines the over-exposed regions of the first stage's HDR frame. Unlike the other registered
models it does not take SDR: ``forward(x_hr, mask)`` takes

- ``x_hr``: the HDCFM output, ``rgb_pq`` (ST 2084 PQ BT.2020 R'G'B' code values) ``(B, 3, H, W)``;
- ``mask``: the over-exposure mask ``M_H`` in [0, 1], ``(B, 1, H, W)``, computed from the SDR input
  with :func:`overexposure_mask`,

and returns the generator output ``rgb_pq`` ``(B, 3, H, W)``. The final frame is
``X_HG = PDCG(X_HR, M_H) * M_H + X_HR * (1 - M_H)`` (Eq. 3): :meth:`PDCG.blend`.
:class:`PatchDiscriminator` is the discriminator of the adversarial term of
``L_HG = 1.0 L1 + 0.5 L_P + 0.005 L_GAN`` (Eq. 4).

What follows the paper (Sec. 3.3, Fig. 9): three stride-2 convolutions give ``F_d1, F_d2, F_d3``;
``F_d3`` goes through 16 blocks in series, each a DYCT, a plain convolution and a skip connection;
one upsampling gives ``F_u1``, which is added to ``F_d2``; two more upsamplings give the frame.

Where we had to guess: the widths (32, 64, 64), 3x3 kernels, ReLU activations, the upsampling
(bilinear x2 followed by a 3x3 convolution), the input (``x_hr`` and the mask concatenated: 4
channels), a final 3x3 convolution predicting a residual added to ``x_hr`` (so that an untrained
generator starts near its input), and the mask definition. The paper computes ``M_H`` "similarly as
[38]"; we use the soft highlight mask of Santos et al. (SIGGRAPH 2020) and Eilertsen et al.
(HDRCNN, 2017): ``M = clip((max(R', G', B') - t) / (1 - t), 0, 1)`` on the SDR signal with
``t = 0.95``. The discriminator is a pix2pix-style PatchGAN (Isola et al., CVPR 2017) with 4x4
kernels, instance norm and LeakyReLU(0.2), 32 base channels (the paper gives no details).
Parameter count at the defaults: 1,432,755 generator, 695,137 discriminator (no paper figure).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from datakit.nn.layers import crop_to, pad_to_multiple
from datakit.nn.models.hdcfm import DYCT
from datakit.nn.registry import register_model

__all__ = ["PDCG", "PatchDiscriminator", "overexposure_mask"]


def overexposure_mask(rgb_sdr: torch.Tensor, threshold: float = 0.95) -> torch.Tensor:
    """Soft over-exposure mask ``clip((max_c x - t) / (1 - t), 0, 1)``.

    ``rgb_sdr``: BT.709 R'G'B' signal in [0, 1], ``(B, 3, H, W)``. Returns ``(B, 1, H, W)`` in [0, 1]:
    0 below the threshold, rising linearly to 1 at full-scale white.
    """
    if not 0.0 <= threshold < 1.0:
        raise ValueError("threshold must be in [0, 1)")
    peak = rgb_sdr.amax(dim=1, keepdim=True)
    return ((peak - threshold) / (1.0 - threshold)).clamp(0.0, 1.0)


class _GenBlock(nn.Module):
    """``x + conv3x3(DYCT(x))``: one of the 16 blocks of Fig. 9."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.dyct = DYCT(channels)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(F.relu(self.dyct(x)))


class _Up(nn.Module):
    """Bilinear x2 upsampling, 3x3 convolution, ReLU."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)))


@register_model(
    "pdcg",
    paper_params=None,
    frames=1,
    description="HDCFM stage 2 (PDCG): GAN refinement of over-exposed regions; forward(x_hr, mask)",
)
class PDCG(nn.Module):
    """PDCG generator: ``(rgb_pq (B,3,H,W), mask (B,1,H,W)) -> rgb_pq (B,3,H,W)``."""

    frames = 1
    output_frames = 1

    def __init__(self, widths: tuple[int, int, int] = (32, 64, 64), blocks: int = 16) -> None:
        super().__init__()
        c1, c2, c3 = widths
        self.down1 = nn.Conv2d(4, c1, 3, stride=2, padding=1)
        self.down2 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.down3 = nn.Conv2d(c2, c3, 3, stride=2, padding=1)
        self.body = nn.Sequential(*(_GenBlock(c3) for _ in range(blocks)))
        self.up1 = _Up(c3, c2)
        self.up2 = _Up(c2, c1)
        self.up3 = _Up(c1, c1)
        self.tail = nn.Conv2d(c1, 3, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, x_hr: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[-2:] != x_hr.shape[-2:]:
            raise ValueError(f"mask must be (B, 1, H, W) matching x_hr, got {tuple(mask.shape)}")
        inp, size = pad_to_multiple(torch.cat([x_hr, mask.to(x_hr.dtype)], dim=1), 8)
        fd1 = F.relu(self.down1(inp))
        fd2 = F.relu(self.down2(fd1))
        fd3 = F.relu(self.down3(fd2))
        fu1 = self.up1(self.body(fd3))
        y = self.up3(self.up2(fu1 + fd2))
        residual = crop_to(self.tail(y), size)
        return x_hr + residual

    @staticmethod
    def blend(x_hr: torch.Tensor, out: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Eq. 3: ``out * M + x_hr * (1 - M)`` (generated content only where the SDR was clipped)."""
        return out * mask + x_hr * (1.0 - mask)


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator: ``rgb_pq (B, in_ch, H, W) -> logits (B, 1, H', W')`` (one per patch).

    A stride-2 4x4 convolution to ``nf`` channels, ``layers - 1`` more stride-2 and one stride-1 4x4
    convolutions doubling the width (capped at ``8 * nf``), and a 4x4 convolution to one logit map;
    with ``layers=3`` each logit sees a 70x70 patch of the input.
    """

    def __init__(self, in_ch: int = 3, nf: int = 32, layers: int = 3) -> None:
        super().__init__()
        seq: list[nn.Module] = [nn.Conv2d(in_ch, nf, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        ch = nf
        for i in range(1, layers + 1):
            out = nf * min(2**i, 8)
            stride = 2 if i < layers else 1
            seq += [
                nn.Conv2d(ch, out, 4, stride=stride, padding=1),
                nn.InstanceNorm2d(out, affine=True),
                nn.LeakyReLU(0.2),
            ]
            ch = out
        seq.append(nn.Conv2d(ch, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*seq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
