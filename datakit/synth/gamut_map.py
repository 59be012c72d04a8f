"""BT.2020 -> BT.709 gamut mapping on linear light: hard clip and soft compression.

Both functions take linear BT.2020 RGB (``rgb_linear`` or display-relative light, any scale,
shape ``(..., 3)``) and return linear BT.709 RGB (float32), with the matrix of ITU-R BT.2087
(:data:`datakit.color.gamut.BT2020_TO_BT709`).

* ``clip``: convert, then clip negative components to 0 (what most simple converters do: colours
  outside BT.709 lose hue and saturation abruptly).
* ``soft``: convert, then compress only the colours near or beyond the BT.709 boundary towards
  the achromatic axis. With ``a = max(R, G, B)``, each channel's distance from the axis is
  ``d = (a - c) / a`` (``d > 1`` means a negative, out-of-gamut component). Distances below
  ``threshold`` are untouched; above it they follow a smooth monotonic power compression chosen
  so that the largest distance any BT.2020 colour can reach (computed from the matrix, per
  channel) lands exactly on the boundary ``d = 1``. Colours well inside BT.709 are unchanged and
  the whole BT.2020 gamut ends up inside BT.709 (same idea as the ACES reference gamut
  compression, implemented here from the description above).
"""

from __future__ import annotations

import functools

import numpy as np

from datakit.color.gamut import BT2020_TO_BT709, convert_gamut

__all__ = ["GAMUT_METHODS", "bt2020_limits_in_bt709", "gamut_clip", "gamut_compress", "gamut_map"]

GAMUT_METHODS = ("clip", "soft")


def gamut_clip(rgb_linear_2020: np.ndarray) -> np.ndarray:
    """Linear BT.2020 -> linear BT.709, negative components clipped to 0 (float32)."""
    out = np.asarray(convert_gamut(np.asarray(rgb_linear_2020, dtype=np.float32), "bt2020", "bt709"))
    return np.maximum(out, 0.0).astype(np.float32, copy=False)


@functools.cache
def bt2020_limits_in_bt709() -> tuple[float, float, float]:
    """Largest distance ``(a - c) / a`` per BT.709 channel over all BT.2020 colours.

    The distance is scale invariant and, over the BT.2020 cube, is maximal at its corners (the
    primaries and secondaries), so the 7 non-black corners suffice.
    """
    corners = np.array([[r, g, b] for r in (0, 1) for g in (0, 1) for b in (0, 1)][1:], dtype=np.float64)
    rgb = corners @ BT2020_TO_BT709.T
    ach = rgb.max(axis=1, keepdims=True)
    d = (ach - rgb) / ach
    lim = d.max(axis=0)
    return (float(lim[0]), float(lim[1]), float(lim[2]))


def _compress(d: np.ndarray, threshold: float, limit: float, power: float) -> np.ndarray:
    """Power compression of distances above ``threshold`` so that ``limit`` maps to 1."""
    if limit <= 1.0 or threshold >= 1.0:
        return d
    scale = (limit - threshold) / (((limit - threshold) / (1.0 - threshold)) ** power - 1.0) ** (1.0 / power)
    excess = np.maximum(d - threshold, 0.0) / np.float32(scale)
    compressed = threshold + scale * excess / (1.0 + excess**power) ** (1.0 / power)
    return np.where(d > threshold, compressed, d).astype(np.float32)


def gamut_compress(rgb_linear_2020: np.ndarray, threshold: float = 0.8, power: float = 1.2) -> np.ndarray:
    """Soft gamut mapping: linear BT.2020 -> linear BT.709 with colours near the boundary compressed.

    ``threshold`` in (0, 1): distance from the achromatic axis where compression starts (0.8 =
    only the outer 20 % of BT.709 saturation is touched). ``power`` sets how fast the curve bends.
    The maximum ``max(R, G, B)`` of each pixel is preserved; output float32, non-negative.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"gamut_compress: threshold must be in (0, 1), got {threshold}")
    rgb = np.asarray(convert_gamut(np.asarray(rgb_linear_2020, dtype=np.float32), "bt2020", "bt709"))
    ach = rgb.max(axis=-1, keepdims=True)
    safe = np.where(ach > 0, ach, 1.0).astype(np.float32)
    dist = (ach - rgb) / safe
    limits = bt2020_limits_in_bt709()
    comp = np.stack([_compress(dist[..., i], threshold, limits[i], power) for i in range(3)], axis=-1)
    out = np.where(ach > 0, ach - comp * ach, 0.0)
    return np.maximum(out, 0.0).astype(np.float32)


def gamut_map(rgb_linear_2020: np.ndarray, method: str = "clip", threshold: float = 0.8) -> np.ndarray:
    """Dispatch to :func:`gamut_clip` (``"clip"``) or :func:`gamut_compress` (``"soft"``)."""
    if method == "clip":
        return gamut_clip(rgb_linear_2020)
    if method == "soft":
        return gamut_compress(rgb_linear_2020, threshold=threshold)
    raise ValueError(f"unknown gamut mapping {method!r} (known: {', '.join(GAMUT_METHODS)})")
