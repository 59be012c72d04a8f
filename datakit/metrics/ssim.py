"""SSIM (Wang, Bovik, Sheikh and Simoncelli, IEEE TIP 2004) on PQ code values.

Convention used here (papers differ; this one is stated so that numbers can be compared):

- inputs ``rgb_pq`` ``(H, W, 3)``: SMPTE ST 2084 BT.2020 R'G'B' code values, uint16 (/65535) or float in [0, 1]
  with the uint16 round trip of :func:`datakit.metrics.psnr.as_pq_image`;
- data range ``L = 1.0`` (so ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``);
- local statistics under an 11 x 11 Gaussian window with sigma 1.5 (normalized to sum 1), as in the paper;
- only windows that fit entirely inside the image count ("valid" region, as the authors' reference code);
- SSIM is computed on each of R', G', B' separately and the three mean SSIM values are averaged.
"""

from __future__ import annotations

import numpy as np

from datakit.errors import InputError
from datakit.metrics.psnr import as_pq_image, check_pair

__all__ = ["GAUSSIAN_SIGMA", "K1", "K2", "WINDOW", "gaussian_window", "ssim", "ssim_map"]

WINDOW = 11
GAUSSIAN_SIGMA = 1.5
K1 = 0.01
K2 = 0.03


def gaussian_window(size: int = WINDOW, sigma: float = GAUSSIAN_SIGMA) -> np.ndarray:
    """1-D Gaussian taps (float64, sum 1); the 2-D window is their outer product."""
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(r * r) / (2.0 * sigma * sigma))
    return g / g.sum()


def _filter_valid(plane: np.ndarray, taps: np.ndarray) -> np.ndarray:
    import cv2

    full = cv2.sepFilter2D(plane, cv2.CV_64F, taps, taps, borderType=cv2.BORDER_REFLECT)
    h = len(taps) // 2
    return full[h : plane.shape[0] - h, h : plane.shape[1] - h]


def ssim_map(x: np.ndarray, y: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """SSIM map of two single-channel float64 planes over the valid region ``(H - 10, W - 10)``."""
    if x.shape[0] < WINDOW or x.shape[1] < WINDOW:
        raise InputError(f"ssim: images must be at least {WINDOW}x{WINDOW}, got {x.shape[1]}x{x.shape[0]}")
    taps = gaussian_window()
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    mx, my = _filter_valid(x, taps), _filter_valid(y, taps)
    sxx = _filter_valid(x * x, taps) - mx * mx
    syy = _filter_valid(y * y, taps) - my * my
    sxy = _filter_valid(x * y, taps) - mx * my
    num = (2.0 * mx * my + c1) * (2.0 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    return num / den


def ssim(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean SSIM of two ``rgb_pq`` images ``(H, W, 3)``: per-channel mean SSIM, averaged over R', G', B'."""
    check_pair(pred, target, "ssim")
    a, b = as_pq_image(pred), as_pq_image(target)
    return float(np.mean([ssim_map(a[..., c], b[..., c]).mean() for c in range(3)]))
