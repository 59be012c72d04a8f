"""SR-SIM: the spectral-residual-based similarity index of Zhang and Li (ICIP 2012), on PQ code values.

HDR TV papers (HDCFM, DSLNet) report SR-SIM computed by the authors' MATLAB code on the luma
``Y = 0.299 R' + 0.587 G' + 0.114 B'`` of the PQ BT.2020 R'G'B' images. This is an independent numpy/OpenCV
implementation of the published algorithm. In words:

1. Luma: both ``rgb_pq`` images are taken to the uint16 grid (see :func:`datakit.metrics.psnr.as_pq_image`),
   scaled to [0, 255] and reduced to ``Y`` with the weights above.
2. Scale: with ``F = max(1, round(min(H, W) / 256))``, ``Y`` is averaged over F x F boxes (zero outside the image,
   box placed as MATLAB's ``conv2(..., 'same')`` places it) and every F-th sample is kept in both directions.
3. Visual saliency (spectral residual, Hou and Zhang 2007) of each reduced luma: shrink it to a quarter of its size,
   take the 2-D FFT, subtract from the log amplitude its 3 x 3 local mean (edge values repeated) to keep only the
   "residual", go back to the image domain with the original phase, square the magnitude, smooth it with a 10 x 10
   Gaussian (sigma 3.8, zero outside), rescale it to [0, 1] by its minimum and maximum and enlarge it back to the
   reduced luma's size.
4. Gradient magnitude of each reduced luma from the Scharr kernels ``[3 0 -3; 10 0 -10; 3 0 -3] / 16`` and its
   transpose (zero outside the image).
5. Similarity maps ``S_V = (2 V1 V2 + C1) / (V1^2 + V2^2 + C1)`` of the saliencies and
   ``S_G = (2 G1 G2 + C2) / (G1^2 + G2^2 + C2)`` of the gradients, with ``C1 = 0.40``, ``C2 = 225``; local score
   ``S_V * S_G^alpha`` with ``alpha = 0.50``.
6. Pooling: the local scores are averaged with weights ``max(V1, V2)``, so salient regions count more.

Resampling differences from MATLAB, stated: the quarter-size shrink uses OpenCV's area interpolation (box
anti-aliasing) instead of MATLAB's anti-aliased bicubic ``imresize``, and the enlargement uses OpenCV's bicubic
(a = -0.75; MATLAB a = -0.5). FFT amplitudes are floored at 1e-12 of their maximum so that flat images stay finite,
and a saliency map with no contrast is taken as uniform (all ones). ``sr_sim(x, x) == 1`` exactly.
"""

from __future__ import annotations

import math

import numpy as np

from datakit.metrics.psnr import as_pq_image, check_pair

__all__ = ["ALPHA", "C1", "C2", "gradient_magnitude", "luma_255", "spectral_residual_saliency", "sr_sim"]

C1 = 0.40
C2 = 225.0
ALPHA = 0.50
_SALIENCY_SCALE = 0.25
_RESIDUAL_BOX = 3
_GAUSS_SIZE = 10
_GAUSS_SIGMA = 3.8
_SCHARR_X = np.array([[3.0, 0.0, -3.0], [10.0, 0.0, -10.0], [3.0, 0.0, -3.0]]) / 16.0
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])


def luma_255(rgb_pq: np.ndarray) -> np.ndarray:
    """``Y = 0.299 R' + 0.587 G' + 0.114 B'`` of an ``rgb_pq`` image ``(H, W, 3)``, scaled to [0, 255] (float64)."""
    return (as_pq_image(rgb_pq) * 255.0) @ _LUMA_WEIGHTS


def _filter(plane: np.ndarray, kernel: np.ndarray, anchor: tuple[int, int], border: int) -> np.ndarray:
    import cv2

    return cv2.filter2D(plane, cv2.CV_64F, kernel, anchor=anchor, borderType=border)


def _conv_same(plane: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """MATLAB ``conv2(plane, kernel, 'same')`` (true convolution, zeros outside)."""
    import cv2

    flipped = np.ascontiguousarray(kernel[::-1, ::-1])
    kh, kw = kernel.shape
    anchor = (kw - 1 - kw // 2, kh - 1 - kh // 2)  # (x, y) so that the output matches conv2's central part
    return _filter(plane, flipped, anchor, cv2.BORDER_CONSTANT)


def _downsample(y: np.ndarray) -> np.ndarray:
    f = max(1, round(min(y.shape) / 256))
    if f == 1:
        return y
    box = np.full((f, f), 1.0 / (f * f))
    return _conv_same(y, box)[::f, ::f]


def _gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2.0 * sigma * sigma))
    return g / g.sum()


def spectral_residual_saliency(y: np.ndarray) -> np.ndarray:
    """Spectral-residual saliency map in [0, 1] of a luma plane (float64), same shape as ``y`` (step 3 above)."""
    import cv2

    h, w = y.shape
    small_size = (max(1, math.ceil(w * _SALIENCY_SCALE)), max(1, math.ceil(h * _SALIENCY_SCALE)))
    small = cv2.resize(np.ascontiguousarray(y), small_size, interpolation=cv2.INTER_AREA)
    spectrum = np.fft.fft2(small)
    amplitude = np.abs(spectrum)
    floor = max(float(amplitude.max()), 1.0) * 1e-12
    log_amp = np.log(np.maximum(amplitude, floor))
    box = np.full((_RESIDUAL_BOX, _RESIDUAL_BOX), 1.0 / _RESIDUAL_BOX**2)
    residual = log_amp - _filter(log_amp, box, (1, 1), cv2.BORDER_REPLICATE)
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    # MATLAB imfilter centres an even kernel on element size // 2 - 1 (0-based); zeros outside.
    c = (_GAUSS_SIZE - 1) // 2
    saliency = _filter(saliency, _gaussian_kernel(_GAUSS_SIZE, _GAUSS_SIGMA), (c, c), cv2.BORDER_CONSTANT)
    lo, hi = float(saliency.min()), float(saliency.max())
    saliency = (saliency - lo) / (hi - lo) if hi > lo else np.ones_like(saliency)
    return cv2.resize(saliency, (w, h), interpolation=cv2.INTER_CUBIC)


def gradient_magnitude(y: np.ndarray) -> np.ndarray:
    """Scharr gradient magnitude (kernels / 16, zeros outside) of a luma plane (step 4 above)."""
    gx = _conv_same(y, _SCHARR_X)
    gy = _conv_same(y, np.ascontiguousarray(_SCHARR_X.T))
    return np.sqrt(gx * gx + gy * gy)


def sr_sim(pred: np.ndarray, target: np.ndarray) -> float:
    """SR-SIM of two ``rgb_pq`` images ``(H, W, 3)`` (uint16 or float [0, 1]); 1.0 for identical images."""
    check_pair(pred, target, "sr_sim")
    y1, y2 = _downsample(luma_255(pred)), _downsample(luma_255(target))
    v1, v2 = spectral_residual_saliency(y1), spectral_residual_saliency(y2)
    g1, g2 = gradient_magnitude(y1), gradient_magnitude(y2)
    s_v = (2.0 * v1 * v2 + C1) / (v1 * v1 + v2 * v2 + C1)
    s_g = (2.0 * g1 * g2 + C2) / (g1 * g1 + g2 * g2 + C2)
    weight = np.maximum(v1, v2)
    return float(np.sum(s_v * s_g**ALPHA * weight) / np.sum(weight))
