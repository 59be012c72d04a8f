"""Shared building blocks of the reference models (pure PyTorch, CPU and CUDA).

Every block here works on feature maps shaped ``(B, C, H, W)``; none of them knows about colour
encodings (the model files state the encoding of their inputs and outputs).

Contents and their sources (all written from the papers' descriptions):

- :func:`pad_to_multiple` / :func:`crop_to`: reflection padding so that strided models accept any
  frame size, and the crop back.
- :func:`modulate`: feature modulation ``x * scale + shift`` (HDRTVNet's GFM, HDCFM's HM, DSLNet's
  TFM / CFM / SFM).
- :class:`ColorBlock`: the 1x1-convolution + pooling blocks of the HDRTVNet condition network and of
  DSLNet's ConditionNet (Eq. 2 of DSLNet); the order of the four operations is a parameter.
- :class:`DecoupledDynamicFilter`: a decoupled dynamic filter (DDF, Zhou et al., CVPR 2021): a
  per-pixel spatial kernel times a per-sample channel kernel, applied depthwise.
- :class:`DynamicDepthwiseConv`: a depthwise convolution whose per-sample kernels are predicted from
  globally pooled features (the "dynamic depth-wise convolution" of Han et al., ICLR 2022).
- :class:`DynamicContextBlock`: a global-context block (GCNet, Cao et al. 2019) whose convolutions are
  dynamic (HDCFM Sec. 3.2.6).
- :class:`LargeKernelResBlock`: DSLNet's LKRB, ``x + Conv3x3(ReLU(DW17x17(ReLU(x))))`` (DSLNet Eq. 8).
- :class:`SelfAttention2d`: SAGAN self-attention (Zhang et al., ICML 2019), used by KPN-MFI.
- :func:`apply_pixel_kernels`: per-pixel, per-channel k x k filtering of an image (KPN-MFI Eq. 3).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ColorBlock",
    "DecoupledDynamicFilter",
    "DynamicContextBlock",
    "DynamicDepthwiseConv",
    "LargeKernelResBlock",
    "SelfAttention2d",
    "apply_pixel_kernels",
    "crop_to",
    "dynamic_filter",
    "kaiming_scale_",
    "modulate",
    "pad_to_multiple",
]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the last two axes of ``x`` at the bottom/right up to a multiple of ``multiple``.

    Reflection padding is used when the frame is large enough (``pad < size``), replication
    otherwise. Returns the padded tensor and the original ``(H, W)`` for :func:`crop_to`.
    Works for any number of leading axes (``(B, C, H, W)`` or ``(B, T, C, H, W)``).
    """
    h, w = x.shape[-2:]
    ph = (-h) % multiple
    pw = (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    lead = x.shape[:-3]
    flat = x.reshape(-1, *x.shape[-3:])
    mode = "reflect" if ph < h and pw < w else "replicate"
    flat = F.pad(flat, (0, pw, 0, ph), mode=mode)
    return flat.reshape(*lead, *flat.shape[-3:]), (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Crop the last two axes of ``x`` to ``size = (H, W)`` (top-left corner kept)."""
    return x[..., : size[0], : size[1]]


def modulate(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Feature modulation ``x * scale + shift``; ``scale``/``shift`` broadcast (``(B,C,1,1)`` or ``(B,C,H,W)``)."""
    return x * scale + shift


class ColorBlock(nn.Module):
    """1x1 convolution, 3x3 average pooling (stride 2), LeakyReLU(0.2) and instance norm.

    ``norm_first=False`` gives conv -> pool -> act -> norm (the HDRTVNet condition-network order;
    the norm is optional). ``norm_first=True`` gives norm -> act -> pool -> conv, the order written in
    DSLNet Eq. 2 (``ColorBlock(X) = Conv1x1(Pool(LeakyReLU(Norm(X))))``); there the norm acts on the
    block's input channels. The pooling halves the resolution (ceil).
    """

    def __init__(self, in_ch: int, out_ch: int, *, norm: bool = True, norm_first: bool = False) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.conv = nn.Conv2d(in_ch, out_ch, 1)
        self.pool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.act = nn.LeakyReLU(0.2)
        norm_ch = in_ch if norm_first else out_ch
        self.norm: nn.Module = nn.InstanceNorm2d(norm_ch, affine=True) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm_first:
            return self.conv(self.pool(self.act(self.norm(x))))
        return self.norm(self.act(self.pool(self.conv(x))))


class _FilterNorm(nn.Module):
    """Filter normalization of DDF: standardize each predicted filter over its taps, then apply a
    learnable per-tap gain and offset (initialised to ``gain`` and 0)."""

    def __init__(self, taps: int, gain: float) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.full((taps,), gain))
        self.offset = nn.Parameter(torch.zeros(taps))

    def forward(self, f: torch.Tensor, tap_dim: int) -> torch.Tensor:
        mean = f.mean(dim=tap_dim, keepdim=True)
        std = f.std(dim=tap_dim, keepdim=True, unbiased=False)
        f = (f - mean) / (std + 1e-5)
        shape = [1] * f.dim()
        shape[tap_dim] = -1
        return f * self.gain.view(shape) + self.offset.view(shape)


class DecoupledDynamicFilter(nn.Module):
    """Decoupled dynamic filter (DDF): ``out[c, p] = sum_k S[k, p] * K[c, k] * x[c, p + k] + b[c]``.

    ``S`` (``K*K`` taps per pixel) comes from the spatial kernel predictor SKP = Conv . Conv (HDCFM
    Eq. 2: a 3x3 convolution to ``hidden`` channels, ReLU, 1x1 convolution to ``K*K``); ``K`` (``K*K`` taps
    per channel and sample) from the channel kernel predictor CKP = GAP . Conv (HDCFM Eq. 2; we use
    the DDF paper's squeeze: GAP, 1x1 conv to ``C*squeeze`` channels, ReLU, 1x1 conv to ``C*K*K``).
    Both are filter-normalized. The operation is depthwise: the output has the input's channels.

    The taps are accumulated in a loop over the ``K*K`` offsets (shifted views of one padded tensor),
    which needs no ``(B, C*K*K, H*W)`` unfold buffer in the forward pass.
    """

    def __init__(
        self, channels: int, kernel_size: int = 3, *, hidden: int | None = None, squeeze: float = 0.25
    ) -> None:
        super().__init__()
        if kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError("kernel_size must be odd and >= 3 (filter normalization needs several taps)")
        self.k = kernel_size
        taps = kernel_size * kernel_size
        hidden = hidden or max(4, channels // 4)
        mid = max(4, round(channels * squeeze))
        self.skp = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(hidden, taps, 1)
        )
        self.ckp = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, mid, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, channels * taps, 1),
        )
        self.spatial_norm = _FilterNorm(taps, 1.0 / kernel_size)
        self.channel_norm = _FilterNorm(taps, 1.0)
        self.bias = nn.Parameter(torch.zeros(channels))

    def kernels(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted kernels: spatial ``(B, K*K, H, W)`` and channel ``(B, C, K*K)``."""
        b, c = x.shape[:2]
        spatial = self.spatial_norm(self.skp(x), tap_dim=1)
        channel = self.channel_norm(self.ckp(x).view(b, c, self.k * self.k), tap_dim=2)
        return spatial, channel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial, channel = self.kernels(x)
        return dynamic_filter(x, spatial, channel, self.k) + self.bias.view(1, -1, 1, 1)


def dynamic_filter(x: torch.Tensor, spatial: torch.Tensor, channel: torch.Tensor, k: int) -> torch.Tensor:
    """Apply decoupled kernels: ``sum_t spatial[:, t] * channel[:, :, t] * shift_t(x)`` (zero padding)."""
    h, w = x.shape[-2:]
    r = k // 2
    xp = F.pad(x, (r, r, r, r))
    out = torch.zeros_like(x)
    for t in range(k * k):
        dy, dx = divmod(t, k)
        tap = xp[:, :, dy : dy + h, dx : dx + w]
        out.addcmul_(tap * channel[:, :, t, None, None], spatial[:, t : t + 1])
    return out


class DynamicDepthwiseConv(nn.Module):
    """Depthwise ``k x k`` convolution with per-sample kernels predicted from global average pooling.

    Kernel predictor: GAP, 1x1 conv to ``C/reduction``, ReLU, 1x1 conv to ``C*k*k`` (Han et al., ICLR
    2022, "dynamic depth-wise convolution"). The kernels are shared over positions, so one grouped
    convolution with ``groups = B*C`` applies them. Zero padding keeps the size.
    """

    def __init__(self, channels: int, kernel_size: int = 7, *, reduction: int = 4) -> None:
        super().__init__()
        self.channels = channels
        self.k = kernel_size
        mid = max(4, channels // reduction)
        self.predict = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, mid, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, channels * kernel_size * kernel_size, 1),
        )
        self.bias = nn.Parameter(torch.zeros(channels))
        # Start near a mean filter, whatever the (random) predicted part is.
        nn.init.normal_(self.predict[-1].weight, std=1e-3)
        nn.init.constant_(self.predict[-1].bias, 1.0 / (kernel_size * kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        weight = self.predict(x).view(b * c, 1, self.k, self.k)
        y = F.conv2d(x.reshape(1, b * c, h, w), weight, padding=self.k // 2, groups=b * c)
        return y.view(b, c, h, w) + self.bias.view(1, -1, 1, 1)


class DynamicContextBlock(nn.Module):
    """Global-context block (GCNet) with dynamic convolutions, the CB of HDCFM's DYCT (Sec. 3.2.6).

    CB = SpatialConv . ChannelConv (HDCFM Eq. 2):

    - SpatialConv (context modelling): a :class:`DecoupledDynamicFilter` then a 1x1 convolution to one
      channel give attention logits; softmax over all positions; the attention-weighted sum of the
      features is the context vector ``(B, C)``.
    - ChannelConv (transform): GCNet's bottleneck ``1x1 conv -> LayerNorm -> ReLU -> 1x1 conv``, whose
      input is first scaled by a dynamic per-channel kernel predicted from the context itself. (A DDF on
      a 1x1 context map reduces to such a per-channel kernel; the paper gives no more detail, so this
      reading is ours.)

    The transformed context is added to every position of the input (GCNet fusion by addition).
    """

    def __init__(self, channels: int, *, ratio: int = 4, kernel_size: int = 3, ddf_squeeze: float = 0.25) -> None:
        super().__init__()
        mid = max(4, channels // ratio)
        self.ddf = DecoupledDynamicFilter(channels, kernel_size, squeeze=ddf_squeeze)
        self.logits = nn.Conv2d(channels, 1, 1)
        self.gate = nn.Sequential(nn.Linear(channels, mid), nn.ReLU(inplace=True), nn.Linear(mid, channels))
        self.down = nn.Linear(channels, mid)
        self.norm = nn.LayerNorm(mid)
        self.up = nn.Linear(mid, channels)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        attn = self.logits(self.ddf(x)).view(b, 1, -1).softmax(dim=-1)  # (B, 1, HW)
        context = torch.bmm(x.view(b, c, -1), attn.transpose(1, 2)).view(b, c)  # (B, C)
        context = context * (2.0 * torch.sigmoid(self.gate(context)))
        t = self.up(F.relu(self.norm(self.down(context))))
        return x + t.view(b, c, 1, 1)


class LargeKernelResBlock(nn.Module):
    """DSLNet's LKRB (Eq. 8) with an identity skip: ``x + Conv3x3(ReLU(DW_k(ReLU(x))))``, ``k = 17``."""

    def __init__(self, channels: int, kernel_size: int = 17) -> None:
        super().__init__()
        self.dw = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(F.relu(self.dw(F.relu(x))))


class SelfAttention2d(nn.Module):
    """SAGAN self-attention: ``x + gamma * Attn(x)`` with query/key at ``C/8`` channels, gamma starting at 0.

    Attention is computed with :func:`torch.nn.functional.scaled_dot_product_attention` (scale 1, as in
    SAGAN), which uses memory-efficient kernels when available; cost is still quadratic in ``H*W``.
    """

    def __init__(self, channels: int, *, reduction: int = 8) -> None:
        super().__init__()
        qk = max(1, channels // reduction)
        self.query = nn.Conv2d(channels, qk, 1)
        self.key = nn.Conv2d(channels, qk, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2).unsqueeze(1)  # (B, 1, HW, qk)
        k = self.key(x).flatten(2).transpose(1, 2).unsqueeze(1)
        v = self.value(x).flatten(2).transpose(1, 2).unsqueeze(1)  # (B, 1, HW, C)
        y = F.scaled_dot_product_attention(q, k, v, scale=1.0)
        y = y.squeeze(1).transpose(1, 2).reshape(b, c, h, w)
        return x + self.gamma * y


def apply_pixel_kernels(image: torch.Tensor, kernels: torch.Tensor, k: int) -> torch.Tensor:
    """Per-pixel, per-channel filtering (KPN-MFI Eq. 3): ``out[c, i] = sum_j K[c, j, i] * image[c, i + j]``.

    ``image`` is ``(B, C, H, W)``; ``kernels`` is ``(B, C*k*k, H, W)`` (channel-major: the ``k*k`` taps of
    channel 0 first, taps in raster order). Zero padding at the borders.
    """
    b, c, h, w = image.shape
    if kernels.shape != (b, c * k * k, h, w):
        raise ValueError(f"kernels must be shaped {(b, c * k * k, h, w)}, got {tuple(kernels.shape)}")
    kern = kernels.view(b, c, k * k, h, w)
    r = k // 2
    xp = F.pad(image, (r, r, r, r))
    out = torch.zeros_like(image)
    for t in range(k * k):
        dy, dx = divmod(t, k)
        out.addcmul_(kern[:, :, t], xp[:, :, dy : dy + h, dx : dx + w])
    return out


def kaiming_scale_(module: nn.Module, scale: float) -> None:
    """Kaiming-normal initialisation of every convolution in ``module``, weights multiplied by ``scale``
    (the residual-block initialisation of EDSR/ESRGAN-style networks)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            m.weight.data.mul_(scale)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
