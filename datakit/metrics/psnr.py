"""PSNR on SMPTE ST 2084 PQ code values, the convention of HDR TV papers (HDRTVNet, HDCFM, KPN-MFI, DSLNet).

Both images are ``rgb_pq`` (PQ BT.2020 R'G'B' code values, ITU-R BT.2100) shaped ``(H, W, 3)``. Each is first
brought to the 16-bit storage grid of the HDRTV1K test set: uint16 arrays are divided by 65535, float arrays are
clipped to [0, 1] and rounded to ``round(x * 65535) / 65535`` (the "uint16 round trip" a model output goes through
when it is saved as a 16-bit PNG before scoring). Then ``PSNR = 10 log10(1 / MSE)`` with the MSE taken over all
pixels of all three channels, no border crop. A data set score is the mean of the per-image PSNRs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from datakit.errors import InputError

__all__ = ["as_pq_image", "check_pair", "mean_psnr", "mse", "psnr"]

_U16 = 65535.0


def as_pq_image(image: np.ndarray, *, round_trip: bool = True) -> np.ndarray:
    """``rgb_pq`` float64 in [0, 1] on the uint16 grid.

    ``image``: uint16 PQ codes (``round(rgb_pq * 65535)``), or float ``rgb_pq`` which is clipped to [0, 1] and, with
    ``round_trip`` (the default), quantized to ``round(x * 65535) / 65535``. Other integer types are rejected: an
    8-bit image is not a PQ signal.
    """
    a = np.asarray(image)
    if a.dtype == np.uint16:
        return a.astype(np.float64) / _U16
    if not np.issubdtype(a.dtype, np.floating):
        raise InputError(f"PQ image must be uint16 or float in [0, 1], got dtype {a.dtype}")
    x = np.clip(a.astype(np.float64), 0.0, 1.0)
    if round_trip:
        x = np.round(x * _U16) / _U16
    return x


def check_pair(pred: np.ndarray, target: np.ndarray, name: str) -> None:
    """Raise :class:`InputError` unless both images have the same ``(H, W, 3)`` shape."""
    ps, ts = np.shape(pred), np.shape(target)
    if ps != ts:
        raise InputError(f"{name}: image shapes differ: {ps} vs {ts}")
    if len(ps) != 3 or ps[-1] != 3:
        raise InputError(f"{name}: expected (H, W, 3) channels-last images, got {ps}")
    if ps[0] == 0 or ps[1] == 0:
        raise InputError(f"{name}: empty images {ps}")


def mse(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean squared error of two ``rgb_pq`` images (after :func:`as_pq_image`), over all pixels and channels."""
    check_pair(pred, target, "mse")
    d = as_pq_image(pred) - as_pq_image(target)
    return float(np.mean(d * d))


def psnr(pred: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB of a predicted ``rgb_pq`` image against the ground truth (peak 1.0; ``inf`` when identical)."""
    error = mse(pred, target)
    return math.inf if error == 0.0 else 10.0 * math.log10(1.0 / error)


def mean_psnr(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean of the per-image PSNRs of ``(pred, target)`` pairs (the papers' data set figure)."""
    values = [psnr(p, t) for p, t in pairs]
    if not values:
        raise InputError("mean_psnr: no images")
    return float(np.mean(values))
