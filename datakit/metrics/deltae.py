"""Mean Delta E_ITP (ITU-R BT.2124) between two PQ images, as HDR TV papers report colour fidelity.

Both images are ``rgb_pq`` ``(H, W, 3)`` (SMPTE ST 2084 BT.2020 R'G'B', uint16 / 65535 or float in [0, 1] with the
uint16 round trip of :func:`datakit.metrics.psnr.as_pq_image`). Each is decoded with the PQ EOTF to absolute
cd/m^2, converted to ICtCp with the ITU-R BT.2100 PQ method and compared per pixel with
``720 * sqrt(dI^2 + (0.5 dCt)^2 + dCp^2)``; the result is the mean over pixels. The colour maths is
:mod:`datakit.color.ictcp`.
"""

from __future__ import annotations

import numpy as np

from datakit.color.ictcp import delta_e_itp_from_pq
from datakit.metrics.psnr import as_pq_image, check_pair

__all__ = ["delta_e_itp"]


def delta_e_itp(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean ITU-R BT.2124 Delta E_ITP of a predicted ``rgb_pq`` image against the ground truth (0 when identical)."""
    check_pair(pred, target, "delta_e_itp")
    return float(delta_e_itp_from_pq(as_pq_image(pred), as_pq_image(target)))
