"""KPN-MFI: kernel prediction network with multi-frame interaction (Cao et al., IJCAI 2022).

Input ``rgb_sdr`` (BT.709 R'G'B', [0, 1]) frames ``(B, 3, 3, H, W)`` = ``(S_t-1, S_t, S_t+1)``;
output ``rgb_pq`` (ST 2084 PQ BT.2020 R'G'B' code values) ``(B, 3, 3, H, W)`` = ``(H_t-1, H_t, H_t+1)``.
The three frames share every weight (Sec. 3.1). Frames of any size are accepted (reflection padding
to a multiple of 8, cropped back).

What follows the paper (Sec. 3, Fig. 1, Eqs. 1-7):

- Eq. 1: an encoder gives low-level (full-resolution) ``X_l`` and high-level ``X_h`` features per frame.
- A SAGAN self-attention module (Zhang et al. 2019) re-calibrates ``X_h`` to ``Y``.
- MFI (Sec. 3.2): ``P`` = 1x1 conv of the neighbour's ``Y``, ``Q``, ``V`` = 1x1 convs of the current
  ``Y``; cosine correlation ``R = P^T Q`` (Eq. 4), ``Z = R V`` (Eq. 5) for each of the two other
  frames; the two ``Z`` are fused by a 1x1 conv; channel attention ``w = FC(GAP(Y_t))``,
  ``M = w * Z`` (Eq. 6); output ``(M + 1) * Y_t`` (Eq. 7). Every frame is the "current" one in turn,
  with the other two as its neighbours.
- The decoder turns the interacted features and ``X_l`` (long skip) into per-pixel kernels
  ``K in R^{3 x k^2 x H x W}``; the HDR frame is the pixel-wise convolution of the SDR frame (Eq. 3).

Where we had to guess (Fig. 1 is not legible in our copy; the text gives no widths):

- Encoder: two 3x3 convs at 64 channels (``X_l``), then three stages of [3x3 stride-2 conv, 3x3
  conv] at 128, 176, 256 channels (``X_h`` at 1/8 resolution). Decoder: three stages of [bilinear
  x2, 3x3 conv, 3x3 conv] back to 64 channels, concatenation with ``X_l``, a 3x3 conv and a 1x1 conv
  to ``3 * k^2`` kernel weights, ``k = 5``. ReLU activations. No kernel normalisation (the output
  must leave the SDR range), kernels initialised to the identity (centre tap 1).
- Eq. 5 is divided by the number of positions ``m`` (as in the non-local "dot product" variant),
  which keeps ``Z`` in the range of ``V``. Because Eq. 4 has no softmax, ``Z = P^T (Q V^T) / m`` is
  computed right-to-left in ``O(m c^2)`` memory instead of building the ``m x m`` matrix: same result,
  usable on 4K frames.
- Channel attention: FC -> ReLU -> FC -> sigmoid (reduction 16); the paper writes only ``FC(GAP)``.
- Self-attention is quadratic in the number of 1/8-resolution positions: for 4K frames use tiled
  inference.
- Widths chosen for the count: 3,381,788 parameters (paper 3.3735M, Table 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from datakit.nn.layers import SelfAttention2d, apply_pixel_kernels, crop_to, pad_to_multiple
from datakit.nn.registry import register_model

__all__ = ["KPNMFI", "MultiFrameInteraction"]


def _conv(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1), nn.ReLU(inplace=True))


class MultiFrameInteraction(nn.Module):
    """MFI module: three re-calibrated feature maps ``(B, 3, C, h, w)`` -> interacted maps, same shape."""

    def __init__(self, channels: int, *, reduction: int = 16) -> None:
        super().__init__()
        self.p = nn.Conv2d(channels, channels, 1)
        self.q = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.fuse = nn.Conv2d(2 * channels, channels, 1)
        mid = max(4, channels // reduction)
        self.fc = nn.Sequential(nn.Linear(channels, mid), nn.ReLU(inplace=True), nn.Linear(mid, channels), nn.Sigmoid())

    def interact(self, neighbour: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        """``Z_{neighbour -> current}`` of Eqs. 4-5, ``(B, C, h, w)``."""
        b, c, h, w = current.shape
        m = h * w
        p = F.normalize(self.p(neighbour).view(b, c, m), dim=1)
        q = F.normalize(self.q(current).view(b, c, m), dim=1)
        v = self.v(current).view(b, c, m)
        qv = torch.bmm(q, v.transpose(1, 2)) / m  # (B, C, C)
        z = torch.bmm(p.transpose(1, 2), qv)  # (B, m, C) = R V / m
        return z.transpose(1, 2).reshape(b, c, h, w)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        n = y.shape[1]
        out = []
        for i in range(n):
            current = y[:, i]
            zs = [self.interact(y[:, j], current) for j in range(n) if j != i]
            z = self.fuse(torch.cat(zs, dim=1))
            w = self.fc(current.mean(dim=(2, 3)))[:, :, None, None]
            out.append((w * z + 1.0) * current)
        return torch.stack(out, dim=1)


@register_model(
    "kpnmfi",
    paper_params=3_373_500,
    frames=3,
    description="KPN-MFI (IJCAI 2022): kernel prediction U-Net with self-attention and multi-frame interaction",
)
class KPNMFI(nn.Module):
    """KPN-MFI: ``rgb_sdr (B, 3, 3, H, W) -> rgb_pq (B, 3, 3, H, W)`` (three frames in and out)."""

    frames = 3
    output_frames = 3

    def __init__(self, widths: tuple[int, int, int, int] = (64, 128, 176, 256), kernel_size: int = 5) -> None:
        super().__init__()
        c0, c1, c2, c3 = widths
        self.k = kernel_size
        self.enc0 = nn.Sequential(_conv(3, c0), _conv(c0, c0))
        self.enc1 = nn.Sequential(_conv(c0, c1, 2), _conv(c1, c1))
        self.enc2 = nn.Sequential(_conv(c1, c2, 2), _conv(c2, c2))
        self.enc3 = nn.Sequential(_conv(c2, c3, 2), _conv(c3, c3))
        self.attention = SelfAttention2d(c3)
        self.mfi = MultiFrameInteraction(c3)
        self.dec3 = nn.Sequential(_conv(c3, c2), _conv(c2, c2))
        self.dec2 = nn.Sequential(_conv(c2, c1), _conv(c1, c1))
        self.dec1 = nn.Sequential(_conv(c1, c0), _conv(c0, c0))
        self.fuse = _conv(2 * c0, c0)
        self.kernels = nn.Conv2d(c0, 3 * kernel_size * kernel_size, 1)
        nn.init.normal_(self.kernels.weight, std=1e-3)
        with torch.no_grad():
            bias = self.kernels.bias.view(3, kernel_size * kernel_size)
            bias.zero_()
            bias[:, (kernel_size * kernel_size) // 2] = 1.0

    @staticmethod
    def _up(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[1] != self.frames or x.shape[2] != 3:
            raise ValueError(f"expected (B, {self.frames}, 3, H, W), got {tuple(x.shape)}")
        x, size = pad_to_multiple(x, 8)
        b, n, c, h, w = x.shape
        s = x.reshape(b * n, c, h, w)
        xl = self.enc0(s)
        xh = self.enc3(self.enc2(self.enc1(xl)))
        y = self.attention(xh)
        y = self.mfi(y.view(b, n, *y.shape[1:])).flatten(0, 1)
        d = self.dec1(self._up(self.dec2(self._up(self.dec3(self._up(y))))))
        kernels = self.kernels(self.fuse(torch.cat([d, xl], dim=1)))
        out = apply_pixel_kernels(s, kernels, self.k)
        return crop_to(out.view(b, n, c, h, w), size)
