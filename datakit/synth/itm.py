"""Classical inverse tone mapping for the SDR-video branch: ``rgb_sdr`` (BT.709) -> ``rgb_nits`` (BT.2020).

* :func:`bt2446c_inverse` - Report ITU-R BT.2446-1 method C, SDR to HDR conversion (section 6.2):
  the inverse of the method C tone curve (section 6.1.4) applied to luminance with chromaticity
  kept, wrapped in the method's crosstalk matrix (section 6.1.2) and its inverse.
* :func:`bt2408_display_mapping` - Report ITU-R BT.2408 section 5.1.2 display-referred mapping of
  SDR into PQ: SDR display light scaled so that SDR peak white lands on the HDR reference white
  (203 cd/m^2); no highlight expansion.

Both decode the SDR signal with the ITU-R BT.1886 EOTF (white 100 cd/m^2, black 0) and convert
BT.709 -> BT.2020 primaries (ITU-R BT.2087) in linear light. Output float32 ``rgb_nits``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from datakit.color.gamut import convert_gamut, luminance_weights
from datakit.color.transfer import SDR_PEAK_NITS, SDR_REFERENCE_WHITE_NITS, bt1886_eotf

__all__ = [
    "ITM_OPERATORS",
    "bt2408_display_mapping",
    "bt2446c_crosstalk",
    "bt2446c_curve",
    "bt2446c_curve_constants",
    "bt2446c_inverse",
    "bt2446c_inverse_curve",
]

# Report ITU-R BT.2446-1 method C tone-curve parameters (section 6.1.4): k1, k3 and the SDR
# luminance at the inflection point; k2 and k4 follow from them (C1 continuity at the knee).
BT2446C_K1 = 0.83802
BT2446C_K3 = 0.74204
BT2446C_Y_SDR_IP = 58.5


def bt2446c_curve_constants(
    k1: float = BT2446C_K1, k3: float = BT2446C_K3, y_sdr_ip: float = BT2446C_Y_SDR_IP
) -> tuple[float, float, float]:
    """``(y_hdr_ip, k2, k4)`` of the method C curve: ``y_hdr_ip = y_sdr_ip / k1``,
    ``k2 = k1 (1 - k3) y_hdr_ip``, ``k4 = k1 y_hdr_ip - k2 ln(1 - k3)``, so the log segment meets
    the linear one with equal value and slope. With the defaults this gives k2 = 15.09, k4 = 78.96
    (the report prints the rounded 15.09968 and 78.99439)."""
    y_hdr_ip = y_sdr_ip / k1
    k2 = k1 * (1.0 - k3) * y_hdr_ip
    k4 = k1 * y_hdr_ip - k2 * float(np.log(1.0 - k3))
    return y_hdr_ip, k2, k4


def bt2446c_curve(
    y_hdr: np.ndarray, k1: float = BT2446C_K1, k3: float = BT2446C_K3, y_sdr_ip: float = BT2446C_Y_SDR_IP
) -> np.ndarray:
    """BT.2446-1 method C tone curve, HDR luminance -> SDR luminance (both cd/m^2):
    ``k1 Y`` below ``y_hdr_ip``, ``k2 ln(Y / y_hdr_ip - k3) + k4`` above."""
    y = np.maximum(np.asarray(y_hdr, dtype=np.float64), 0.0)
    y_ip, k2, k4 = bt2446c_curve_constants(k1, k3, y_sdr_ip)
    return np.where(y < y_ip, k1 * y, k2 * np.log(np.maximum(y / y_ip - k3, 1e-12)) + k4)


def bt2446c_inverse_curve(
    y_sdr: np.ndarray, k1: float = BT2446C_K1, k3: float = BT2446C_K3, y_sdr_ip: float = BT2446C_Y_SDR_IP
) -> np.ndarray:
    """Inverse of :func:`bt2446c_curve`, SDR luminance -> HDR luminance (cd/m^2):
    ``Y / k1`` below ``y_sdr_ip``, ``y_hdr_ip (exp((Y - k4) / k2) + k3)`` above."""
    y = np.maximum(np.asarray(y_sdr, dtype=np.float64), 0.0)
    y_ip, k2, k4 = bt2446c_curve_constants(k1, k3, y_sdr_ip)
    return np.where(y < y_sdr_ip, y / k1, y_ip * (np.exp((y - k4) / k2) + k3))


def bt2446c_crosstalk(alpha: float) -> np.ndarray:
    """BT.2446-1 method C crosstalk matrix (section 6.1.2): 1 - 2a on the diagonal, a elsewhere."""
    return np.full((3, 3), alpha) + np.eye(3) * (1.0 - 3.0 * alpha)


def bt2446c_inverse(
    rgb_sdr: np.ndarray,
    *,
    k1: float = BT2446C_K1,
    k3: float = BT2446C_K3,
    y_sdr_ip: float = BT2446C_Y_SDR_IP,
    alpha: float = 0.0,
    sdr_white_nits: float = SDR_PEAK_NITS,
) -> np.ndarray:
    """ITU-R BT.2446-1 method C SDR -> HDR: ``rgb_sdr`` (BT.709 R'G'B', [0, 1]) -> ``rgb_nits`` (BT.2020).

    BT.1886 EOTF to display light (white ``sdr_white_nits``), BT.709 -> BT.2020, crosstalk
    matrix with ``alpha`` (0 disables it; the report suggests small values such as 0.05), then
    the luminance ``Y`` (BT.2020 weights) is expanded with :func:`bt2446c_inverse_curve` keeping
    the chromaticity (all components scaled by ``Y_hdr / Y``), and the inverse crosstalk matrix
    is applied (with a pure luminance scaling the matrices only change which pixels reach the
    log segment of the curve, through the crosstalked luminance). With the default parameters
    SDR white (100 cd/m^2) lands near 333 cd/m^2 and the inflection point (58.5 cd/m^2) at
    69.8 cd/m^2. Non-negative float32 output.
    """
    lin = np.asarray(bt1886_eotf(np.asarray(rgb_sdr, dtype=np.float32), white_nits=sdr_white_nits))
    rgb = np.asarray(convert_gamut(lin.astype(np.float32), "bt709", "bt2020"), dtype=np.float64)
    if alpha:
        rgb = rgb @ bt2446c_crosstalk(alpha).T
    y = rgb @ luminance_weights("bt2020")
    y_hdr = bt2446c_inverse_curve(y, k1, k3, y_sdr_ip)
    rgb = rgb * np.where(y > 1e-9, y_hdr / np.maximum(y, 1e-9), 0.0)[..., None]
    if alpha:
        rgb = rgb @ np.linalg.inv(bt2446c_crosstalk(alpha)).T
    return np.maximum(rgb, 0.0).astype(np.float32)


def bt2408_display_mapping(
    rgb_sdr: np.ndarray, *, reference_white_nits: float = SDR_REFERENCE_WHITE_NITS
) -> np.ndarray:
    """ITU-R BT.2408 display-referred SDR -> HDR mapping: ``rgb_sdr`` (BT.709) -> ``rgb_nits`` (BT.2020).

    SDR display light (BT.1886 EOTF, relative) times ``reference_white_nits`` (BT.2408: SDR
    peak white at HDR reference white, 203 cd/m^2), converted to BT.2020 primaries.
    """
    lin = np.asarray(bt1886_eotf(np.asarray(rgb_sdr, dtype=np.float32), white_nits=1.0), dtype=np.float32)
    rgb = np.asarray(convert_gamut(lin * np.float32(reference_white_nits), "bt709", "bt2020"), dtype=np.float32)
    return np.maximum(rgb, 0.0)


ITM_OPERATORS: dict[str, Callable[..., np.ndarray]] = {
    "bt2446c": bt2446c_inverse,
    "bt2408": bt2408_display_mapping,
}
"""Name -> inverse tone mapping ``f(rgb_sdr, **params) -> rgb_nits``."""
