"""Compiled loops (numba) for the band-wise CPU inference of :mod:`datakit.nn.layers` and HDCFM.

Each kernel fuses a chain of elementwise PyTorch operations that would otherwise make one pass over a band's
memory per operation (a decoupled dynamic filter is eighteen of them): one loop reads each input once and keeps
its partial sums in registers. The matrix products stay in PyTorch (BLAS is faster at them). Inputs are numpy
views of float32 tensors (``Tensor.numpy()``, no copy); maps are ``(B, C, H, W)`` and C-contiguous, the innermost
loop runs along a row so that it vectorizes. The kernels release the GIL, so :func:`datakit.nn.layers.map_bands`'s
threads run them side by side. Compiled on first use and cached beside this file (``cache=True``).

Inference only: nothing here is differentiable. Each kernel's docstring names the PyTorch computation it equals
(within float32 rounding); the tests compare them.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["context_band", "ddf_band", "modulate_band", "projected_taps", "spatial_taps"]

# Multiply-adds may be fused; nothing else is reordered (the sums of rows are split into _LANES partial sums
# explicitly, which vectorizes without letting LLVM reassociate anything else).
_FAST = {"contract"}
_LANES = 16
_ZERO, _ONE, _EPS = np.float32(0.0), np.float32(1.0), np.float32(1e-5)  # float32 constants: no float64 promotion
_jit = numba.njit(nogil=True, cache=True, boundscheck=False, error_model="numpy", fastmath=_FAST)


@_jit
def _tap(out_row: np.ndarray, weight_row: np.ndarray, src_row: np.ndarray, scale: float, shift: int) -> None:
    """``out_row[w] += scale * weight_row[w] * src_row[w + shift]`` where ``0 <= w + shift < width``."""
    width = out_row.shape[0]
    lo = max(0, -shift)
    n = width - abs(shift)
    o = out_row[lo : lo + n]
    s = weight_row[lo : lo + n]
    x = src_row[lo + shift : lo + shift + n]
    for i in range(n):
        o[i] += scale * s[i] * x[i]


@_jit
def _row_dot(row: np.ndarray, weights: np.ndarray) -> float:
    """``sum_i row[i] * weights[i]`` over a float32 row, in :data:`_LANES` float32 partial sums (vectorized)."""
    n = row.shape[0]
    lanes = np.zeros(_LANES, dtype=np.float32)
    full = n - n % _LANES
    for j in range(0, full, _LANES):
        for lane in range(_LANES):
            lanes[lane] += row[j + lane] * weights[j + lane]
    total = 0.0
    for i in range(full, n):
        total += row[i] * weights[i]
    for lane in range(_LANES):
        total += lanes[lane]
    return total


@_jit
def _row_sum(row: np.ndarray) -> float:
    """Sum of a float32 row (:func:`_row_dot` with weights 1)."""
    n = row.shape[0]
    lanes = np.zeros(_LANES, dtype=np.float32)
    full = n - n % _LANES
    for j in range(0, full, _LANES):
        for lane in range(_LANES):
            lanes[lane] += row[j + lane]
    total = 0.0
    for i in range(full, n):
        total += row[i]
    for lane in range(_LANES):
        total += lanes[lane]
    return total


@_jit
def _shift_add(out_row: np.ndarray, src_row: np.ndarray, shift: int) -> None:
    """``out_row[w] += src_row[w + shift]`` where ``0 <= w + shift < width``."""
    width = out_row.shape[0]
    lo = max(0, -shift)
    n = width - abs(shift)
    o = out_row[lo : lo + n]
    x = src_row[lo + shift : lo + shift + n]
    for i in range(n):
        o[i] += x[i]


@_jit
def ddf_band(
    x: np.ndarray, r0: int, spatial: np.ndarray, channel: np.ndarray, bias: np.ndarray, out: np.ndarray
) -> np.ndarray:
    """Decoupled dynamic filter of rows ``r0 .. r0 + R`` of the frame ``x`` ``(B, C, H, W)``, written to the same
    rows of ``out`` ``(B, C, H, W)``: ``out[c, p] = bias[c] + sum_t spatial[t, p] * channel[c, t] * x[c, p + t]``,
    zeros outside the frame. ``spatial`` ``(B, k*k, R, W)``, ``channel`` ``(B, C, k*k)``, ``bias`` ``(C,)``
    (:func:`datakit.nn.layers.dynamic_filter` plus the bias, on those rows). Returns the band's per-channel sums
    ``(B, C)`` (float64)."""
    n_b, n_c, height, _ = x.shape
    n_rows = spatial.shape[2]
    k = int(np.sqrt(spatial.shape[1]) + 0.5)
    half = k // 2
    sums = np.zeros((n_b, n_c), dtype=np.float64)
    for b in range(n_b):
        for c in range(n_c):
            for r in range(n_rows):
                row = out[b, c, r0 + r]
                row[:] = bias[c]
                for dy in range(k):
                    src = r0 + r + dy - half
                    if src < 0 or src >= height:
                        continue
                    for dx in range(k):
                        t = dy * k + dx
                        _tap(row, spatial[b, t, r], x[b, c, src], channel[b, c, t], dx - half)
                sums[b, c] += _row_sum(row)
    return sums


@_jit
def spatial_taps(
    y0: np.ndarray,
    y1: np.ndarray,
    y2: np.ndarray,
    bias1: np.ndarray,
    weight2: np.ndarray,
    bias2: np.ndarray,
    gain: np.ndarray,
    offset: np.ndarray,
    out: np.ndarray,
) -> None:
    """DDF's spatial kernel predictor after its three matrix products: ``out`` ``(B, T, R, W)``.

    ``y0, y1, y2`` ``(B, 3 * O, R, W)``: kernel row ``dy``'s weights times the input rows ``r + dy - 1``, channel
    ``dx * O + o`` for kernel column ``dx`` (:func:`datakit.nn.layers.conv3x3_products`). Computes
    ``h = ReLU(bias1 + sum_dy,dx y_dy[dx, o, w + dx - 1])`` (the 3x3 convolution, zero columns outside),
    ``s = weight2 @ h + bias2`` (the 1x1 convolution, ``weight2`` ``(T, O)``) and the filter normalization over the
    ``T`` taps, ``offset + gain * (s - mean) / (std + 1e-5)`` (the filter normalization of
    :class:`datakit.nn.layers.DecoupledDynamicFilter`, population deviation).
    """
    n_b, n_t, n_rows, width = out.shape
    n_o = bias1.shape[0]
    hidden = np.empty((n_o, width), dtype=out.dtype)
    mean = np.empty(width, dtype=out.dtype)
    std = np.empty(width, dtype=out.dtype)
    for b in range(n_b):
        for r in range(n_rows):
            for o in range(n_o):
                h = hidden[o]
                h[:] = bias1[o]
                for y in (y0, y1, y2):
                    for dx in range(3):
                        _shift_add(h, y[b, dx * n_o + o, r], dx - 1)
                for i in range(width):
                    h[i] = max(h[i], _ZERO)
            mean[:] = 0.0
            for t in range(n_t):
                s = out[b, t, r]
                s[:] = bias2[t]
                for o in range(n_o):
                    w2 = weight2[t, o]
                    h = hidden[o]
                    for i in range(width):
                        s[i] += w2 * h[i]
                for i in range(width):
                    mean[i] += s[i]
            inv_taps = np.float32(1.0 / n_t)
            for i in range(width):
                mean[i] *= inv_taps
            std[:] = 0.0
            for t in range(n_t):
                s = out[b, t, r]
                for i in range(width):
                    d = s[i] - mean[i]
                    s[i] = d
                    std[i] += d * d
            for i in range(width):
                std[i] = _ONE / (np.sqrt(std[i] * inv_taps) + _EPS)
            for t in range(n_t):
                s = out[b, t, r]
                g, f = gain[t], offset[t]
                for i in range(width):
                    s[i] = f + g * (s[i] * std[i])


@_jit
def modulate_band(
    z: np.ndarray,
    bias: np.ndarray,
    scale_rows: np.ndarray,
    shift_rows: np.ndarray,
    col0: np.ndarray,
    col1: np.ndarray,
    frac: np.ndarray,
    r0: int,
    out: np.ndarray,
) -> np.ndarray:
    """``out[rows r0 ..] = ReLU((z + bias) * scale + shift)``, returning the band's per-channel sums ``(B, C)``.

    ``z`` ``(B, C, R, W)`` (a 1x1 convolution without its bias), ``bias`` ``(B, C)``; ``scale``/``shift`` are
    bilinear upsamplings (``align_corners=False``) of low-resolution maps whose rows are already interpolated,
    ``scale_rows``/``shift_rows`` ``(B, C, H, w)``: the columns are interpolated here, output column ``j`` from
    low columns ``col0[j]``, ``col1[j]`` with weight ``frac[j]`` on the second
    (:func:`datakit.nn.layers.bilinear_rows`)."""
    n_b, n_c, n_rows, width = z.shape
    sums = np.zeros((n_b, n_c), dtype=np.float64)
    for b in range(n_b):
        for c in range(n_c):
            bc = bias[b, c]
            for r in range(n_rows):
                zr = z[b, c, r]
                row = out[b, c, r0 + r]
                sc = scale_rows[b, c, r0 + r]
                sh = shift_rows[b, c, r0 + r]
                for i in range(width):
                    f = frac[i]
                    a0, a1 = col0[i], col1[i]
                    s = sc[a0] + f * (sc[a1] - sc[a0])
                    t = sh[a0] + f * (sh[a1] - sh[a0])
                    row[i] = max((zr[i] + bc) * s + t, _ZERO)
                sums[b, c] += _row_sum(row)
    return sums


@_jit
def projected_taps(projected: np.ndarray, spatial: np.ndarray, base: np.ndarray, out: np.ndarray) -> None:
    """``out[o, p] = base[o] + sum_t spatial[t, p] * projected[o, t, p + t]``: the taps of
    :meth:`DecoupledDynamicFilter.projected_rows`. ``projected`` ``(B, O, k*k, R + k - 1, W)`` (the band with its
    halo rows), ``spatial`` ``(B, k*k, R, W)``, ``base`` ``(B, O)``, ``out`` ``(B, O, R, W)``."""
    n_b, n_o, n_rows, _ = out.shape
    k = int(np.sqrt(spatial.shape[1]) + 0.5)
    half = k // 2
    for b in range(n_b):
        for o in range(n_o):
            for r in range(n_rows):
                row = out[b, o, r]
                row[:] = base[b, o]
                for dy in range(k):
                    for dx in range(k):
                        t = dy * k + dx
                        _tap(row, spatial[b, t, r], projected[b, o, t, r + dy], 1.0, dx - half)


@_jit
def context_band(logits: np.ndarray, y: np.ndarray, r0: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A band's share of a softmax-weighted sum over the frame: ``logits`` ``(B, R, W)`` of rows ``r0 ..`` of
    ``y`` ``(B, C, H, W)``. Returns the band's maximum logit ``m`` ``(B,)``, ``sum exp(l - m)`` ``(B,)`` and
    ``sum_p exp(l_p - m) y[:, p]`` ``(B, C)`` (float64), which the caller rescales to the frame's maximum and
    adds up."""
    n_b, n_rows, width = logits.shape
    n_c = y.shape[1]
    peak = np.empty(n_b, dtype=np.float64)
    total = np.zeros(n_b, dtype=np.float64)
    parts = np.zeros((n_b, n_c), dtype=np.float64)
    weights = np.empty((n_rows, width), dtype=np.float32)
    for b in range(n_b):
        m = -np.inf
        for r in range(n_rows):
            for i in range(width):
                m = max(m, logits[b, r, i])
        peak[b] = m
        s = 0.0
        for r in range(n_rows):
            lr = logits[b, r]
            er = weights[r]
            for i in range(width):
                er[i] = np.exp(lr[i] - m)
            s += _row_sum(er)
        total[b] = s
        for c in range(n_c):
            acc = 0.0
            for r in range(n_rows):
                acc += _row_dot(y[b, c, r0 + r], weights[r])
            parts[b, c] = acc
    return peak, total, parts
