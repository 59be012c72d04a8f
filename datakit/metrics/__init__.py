"""Image and clip quality metrics of SDR-to-HDR papers, on PQ code values (numpy, per image).

Every function takes ``rgb_pq`` images ``(H, W, 3)`` (SMPTE ST 2084 BT.2020 R'G'B'; uint16 = ``round(pq * 65535)``
or float in [0, 1], quantized to the uint16 grid first) and returns a float:

- :func:`psnr` (dB, peak 1.0, all pixels, no border crop; mean of per-image values for a data set),
- :func:`ssim` (Gaussian 11 x 11, sigma 1.5, per R'G'B' channel, data range 1.0),
- :func:`sr_sim` (Zhang and Li 2012, on ``0.299 R' + 0.587 G' + 0.114 B'`` scaled to [0, 255]),
- :func:`delta_e_itp` (ITU-R BT.2124 mean over pixels, via ICtCp of ITU-R BT.2100),
- :func:`temporal_consistency` for clips ``(T, H, W, 3)``.

:func:`image_metrics` computes the four image metrics of one pair at once.
"""

from __future__ import annotations

import numpy as np

from datakit.metrics.deltae import delta_e_itp
from datakit.metrics.psnr import as_pq_image, mean_psnr, mse, psnr
from datakit.metrics.srsim import sr_sim
from datakit.metrics.ssim import ssim
from datakit.metrics.temporal import (
    brightness_track,
    frame_brightness,
    temporal_consistency,
    temporal_consistency_from_tracks,
)

__all__ = [
    "IMAGE_METRICS",
    "as_pq_image",
    "brightness_track",
    "delta_e_itp",
    "frame_brightness",
    "image_metrics",
    "mean_psnr",
    "mse",
    "psnr",
    "sr_sim",
    "ssim",
    "temporal_consistency",
    "temporal_consistency_from_tracks",
]

IMAGE_METRICS = ("psnr", "ssim", "sr_sim", "delta_e_itp")
"""Names of the per-image metrics, in the order the papers' tables list them."""


def image_metrics(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """PSNR, SSIM, SR-SIM and mean Delta E_ITP of one ``rgb_pq`` pair ``(H, W, 3)``."""
    p, t = as_pq_image(pred), as_pq_image(target)  # quantize once; the metrics' own round trip is then exact
    return {"psnr": psnr(p, t), "ssim": ssim(p, t), "sr_sim": sr_sim(p, t), "delta_e_itp": delta_e_itp(p, t)}
