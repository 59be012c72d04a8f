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
- :func:`row_bands`, :func:`rows_with_halo`, :func:`bilinear_rows`, :func:`pointwise`,
  :func:`matmul_band`, :func:`conv3x3_products`: the pieces of band-wise inference (a frame processed a few rows
  at a time, so that the intermediate maps of a full-resolution layer stay in the CPU's caches instead of making
  one pass over memory per operation); their elementwise chains run as compiled loops
  (:mod:`datakit.nn.band_kernels`).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from datakit.nn import band_kernels

T = TypeVar("T")

__all__ = [
    "ColorBlock",
    "DecoupledDynamicFilter",
    "DynamicContextBlock",
    "DynamicDepthwiseConv",
    "LargeKernelResBlock",
    "SelfAttention2d",
    "apply_pixel_kernels",
    "bilinear_rows",
    "conv3x3_products",
    "crop_to",
    "dynamic_filter",
    "kaiming_scale_",
    "map_bands",
    "matmul_band",
    "modulate",
    "pad_to_multiple",
    "pointwise",
    "row_bands",
    "rows_with_halo",
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

    def pooled_first(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` (``norm_first=False``) with the pooling before the 1x1 convolution: the same function
        (each pooled value is a mean, whose weights sum to one, and the convolution is per pixel), with the
        convolution at a quarter of the positions and the pooling over the input's channels (inference)."""
        if self.norm_first:
            return self.forward(x)
        return self.norm(self.act(self.conv(self.pool(x))))


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
    which needs no ``(B, C*K*K, H*W)`` unfold buffer in the forward pass. Inference a band at a time:
    :meth:`forward_band`, :meth:`spatial_rows`, :meth:`projected_rows` (compiled loops, CPU, ``K = 3`` for the
    spatial predictor's products).
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

    @property
    def halo(self) -> int:
        """Rows of context above and below that a band of :meth:`forward_band` reads (``K // 2``)."""
        return self.k // 2

    def channel_kernel(self, mean: torch.Tensor) -> torch.Tensor:
        """Channel kernel ``(B, C, K*K)`` from the input's global average ``(B, C)`` (what CKP's GAP gives)."""
        b, c = mean.shape
        return self.channel_norm(self.ckp(mean[:, :, None, None]).view(b, c, self.k * self.k), tap_dim=2)

    def forward_band(
        self, x: torch.Tensor, r0: int, r1: int, channel: torch.Tensor, out: torch.Tensor
    ) -> torch.Tensor:
        """Rows ``r0 .. r1`` of :meth:`forward` of the frame ``x`` ``(B, C, H, W)``, written into the same rows of
        ``out`` (a C-contiguous ``(B, C, H, W)`` frame; inference on CPU). ``channel``: :meth:`channel_kernel` of
        the whole frame's mean. Returns the band's per-channel sums ``(B, C)`` (float64)."""
        if not (x.is_contiguous() and out.is_contiguous()):
            raise ValueError("forward_band reads and writes C-contiguous frames")
        spatial = self.spatial_rows(rows_with_halo(x, r0, r1, self.halo))
        sums = band_kernels.ddf_band(x.numpy(), r0, spatial.numpy(), _np(channel), _np(self.bias), out.numpy())
        return torch.from_numpy(sums)

    def spatial_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """The spatial kernel ``(B, K*K, R, W)`` of a band ``rows`` ``(B, C, R + 2 * halo, W)`` (the band with
        :attr:`halo` rows of context above and below, zeros beyond the frame, as :func:`rows_with_halo` cuts it).

        SKP's 3x3 convolution as three matrix products (:func:`conv3x3_products`); its shifted sums, ReLU, 1x1
        convolution and the filter normalization in one compiled loop (:func:`band_kernels.spatial_taps`)."""
        r = self.halo
        inner = rows[:, :, r - 1 : rows.shape[2] - r + 1]  # the 3x3 SKP convolution needs one row each side
        products = conv3x3_products(inner, self.skp[0].weight)
        b, _, height, width = products[0].shape
        out = rows.new_empty((b, self.k * self.k, height, width))
        band_kernels.spatial_taps(
            *(p.numpy() for p in products),
            _np(self.skp[0].bias),
            _np(self.skp[2].weight[:, :, 0, 0]),
            _np(self.skp[2].bias),
            _np(self.spatial_norm.gain),
            _np(self.spatial_norm.offset),
            out.numpy(),
        )
        return out

    def projected_rows(
        self, rows: torch.Tensor, channel: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
    ) -> torch.Tensor:
        """``conv1x1(DDF(x))`` of a band (``weight`` ``(O, C, 1, 1)``, ``bias`` ``(O,)``) without the DDF's output.

        The projection is linear and the channel kernel acts per channel, so
        ``sum_c w[o, c] (b[c] + sum_t S_t K[c, t] x_c(p + t)) = w b + sum_t S_t (sum_c w[o, c] K[c, t] x_c)(p + t)``:
        one matrix product gives the ``O * K*K`` projected maps, and the taps run over ``O`` maps instead of ``C``
        (the context block's logits: one map instead of 40). ``rows`` as for :meth:`spatial_rows`, ``channel`` as
        for :meth:`forward_band`.
        """
        b, c, _, w = rows.shape
        o, taps = weight.shape[0], self.k * self.k
        spatial = self.spatial_rows(rows)
        mix = (weight[None, :, :, 0, 0, None] * channel[:, None]).permute(0, 1, 3, 2).reshape(b, o * taps, c)
        projected = torch.stack([torch.mm(mix[i], rows[i].reshape(c, -1)) for i in range(b)])
        base = (bias + weight[:, :, 0, 0] @ self.bias).expand(b, o)
        out = rows.new_empty((b, o, *spatial.shape[-2:]))
        band_kernels.projected_taps(
            projected.view(b, o, taps, rows.shape[2], w).numpy(), spatial.numpy(), _np(base), out.numpy()
        )
        return out


def _np(t: torch.Tensor):  # -> numpy.ndarray
    """A C-contiguous numpy view (or copy, when ``t`` is not contiguous) of a CPU tensor, for the compiled loops."""
    return t.detach().contiguous().numpy()


def dynamic_filter(x: torch.Tensor, spatial: torch.Tensor, channel: torch.Tensor, k: int) -> torch.Tensor:
    """Apply decoupled kernels: ``sum_t spatial[:, t] * channel[:, :, t] * shift_t(x)`` (zero padding).

    The whole-frame form (training and the reference inference path); :meth:`DecoupledDynamicFilter.forward_band`
    computes the same a band at a time.
    """
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
        return x + self.transform(context).view(b, c, 1, 1)

    def transform(self, context: torch.Tensor) -> torch.Tensor:
        """ChannelConv: the context vector ``(B, C)`` to what is added to every position ``(B, C)``."""
        context = context * (2.0 * torch.sigmoid(self.gate(context)))
        return self.up(F.relu(self.norm(self.down(context))))


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


def matmul_band(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``weight`` ``(C_out, C_in)`` times every position of ``x`` ``(B, C_in, R, W)``: ``(B, C_out, R, W)``, new and
    contiguous. ``x``'s ``R x W`` positions must form one stride (a band of rows of a whole frame does): each sample
    is one BLAS product read in place, no copy."""
    b, c, h, w = x.shape
    out = x.new_empty((b, weight.shape[0], h, w))
    for i in range(b):
        torch.mm(weight, x[i].reshape(c, h * w), out=out[i].view(weight.shape[0], h * w))
    return out


def pointwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """A 1x1 convolution (``weight`` ``(C_out, C_in, 1, 1)``) as one matrix product over the positions.

    ``x``: ``(B, C_in, R, W)`` whose ``R x W`` positions form one stride (a band of rows of a whole frame is);
    ``bias``: ``(C_out,)`` or per sample ``(B, C_out)``. Faster than ``conv2d`` on CPU for these few channels.
    """
    y = matmul_band(weight[:, :, 0, 0], x)
    if bias is not None:
        y.add_(bias[None, :, None, None] if bias.dim() == 1 else bias[:, :, None, None])
    return y


def conv3x3_products(rows: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The three matrix products of a 3x3 convolution of a band, one per kernel row (all three kernel columns at
    once): ``rows`` ``(B, C, R + 2, W)`` (one row of context above and below) -> three ``(B, 3 * C_out, R, W)``,
    product ``dy`` holding kernel row ``dy`` times input rows ``r + dy``, channel ``dx * C_out + o`` for kernel
    column ``dx``. ``conv2d(rows, weight, padding=(0, 1))[o, r, w]`` is the sum over ``dy, dx`` of product ``dy``'s
    channel ``dx * C_out + o`` at column ``w + dx - 1`` (zero outside), which :func:`band_kernels.spatial_taps`
    adds up."""
    c, c_out, h = rows.shape[1], weight.shape[0], rows.shape[2] - 2
    per_row = weight.permute(2, 3, 0, 1).reshape(3, 3 * c_out, c)  # [kernel row, (kernel column, out), in]
    first, middle, last = (matmul_band(per_row[dy], rows[:, :, dy : dy + h]) for dy in range(3))
    return first, middle, last


def map_bands(fn: Callable[[int, int], T], bands: list[tuple[int, int]], workers: int = 1) -> list[T]:
    """``[fn(r0, r1) for r0, r1 in bands]`` run by ``workers`` threads, each on a contiguous run of bands.

    Meanwhile torch's own operations run single-threaded (``torch.set_num_threads(1)``, restored afterwards):
    the bands are small, and on a CPU a few thousand small operations each split over OpenMP threads spend
    their time at the threads' barriers (on a shared machine, where one thread may wait for a core, a
    frame took 9x longer than whole-frame operations). The threads inherit the caller's inference or no-grad
    mode. ``workers=1`` runs ``fn`` in the calling thread.
    """
    workers = max(1, min(workers, len(bands)))
    if workers == 1:
        return [fn(r0, r1) for r0, r1 in bands]
    inference = torch.is_inference_mode_enabled()
    runs = [bands[i * len(bands) // workers : (i + 1) * len(bands) // workers] for i in range(workers)]

    def run(part: list[tuple[int, int]]) -> list[T]:
        with torch.inference_mode() if inference else torch.no_grad():
            return [fn(r0, r1) for r0, r1 in part]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="datakit-bands") as pool:
            return [result for part in pool.map(run, runs) for result in part]
    finally:
        torch.set_num_threads(threads)


def row_bands(height: int, rows: int) -> list[tuple[int, int]]:
    """``[r0, r1)`` bands of at most ``rows`` rows covering ``[0, height)``."""
    return [(r0, min(r0 + rows, height)) for r0 in range(0, height, max(1, rows))]


def rows_with_halo(x: torch.Tensor, r0: int, r1: int, halo: int) -> torch.Tensor:
    """Rows ``r0 - halo .. r1 + halo`` of ``x`` ``(..., H, W)``, zero rows where they fall outside the frame
    (the zero padding a ``padding=halo`` convolution of the whole frame sees). A view when none is outside."""
    height = x.shape[-2]
    lo, hi = max(r0 - halo, 0), min(r1 + halo, height)
    band = x[..., lo:hi, :]
    top, bottom = halo - (r0 - lo), halo - (hi - r1)
    return F.pad(band, (0, 0, top, bottom)) if top or bottom else band


def _linear_weights(n_in: int, n_out: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source indices and weights of 1-D linear resampling ``n_in -> n_out`` with ``align_corners=False``
    (half-pixel centres, the source coordinate clamped at 0: the convention of ``F.interpolate``)."""
    src = ((torch.arange(n_out, dtype=torch.float64, device=device) + 0.5) * (n_in / n_out) - 0.5).clamp_(min=0.0)
    i0 = src.floor().long().clamp_(max=n_in - 1)
    i1 = (i0 + 1).clamp_(max=n_in - 1)
    return i0, i1, (src - i0).float()


def bilinear_rows(
    low: torch.Tensor, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``F.interpolate(low, size, mode="bilinear", align_corners=False)`` in two parts: the rows interpolated at the
    low width, ``(B, C, H, w)`` contiguous, and the column weights (source columns ``col0``, ``col1`` ``(W,)`` and
    the weight ``frac`` ``(W,)`` of ``col1``) that :func:`band_kernels.modulate_band` applies band by band."""
    i0, i1, frac = _linear_weights(low.shape[-2], size[0], low.device)
    rows = torch.lerp(low[:, :, i0], low[:, :, i1], frac[:, None].to(low.dtype)).contiguous()
    col0, col1, col_frac = _linear_weights(low.shape[-1], size[1], low.device)
    return rows, col0.int(), col1.int(), col_frac.to(low.dtype)
