"""Gain error: R'G'B' scaled away from ``round((D'Y - 64) / 876 * 65535)``, and the white and black levels.

A correct conversion of 10-bit limited-range video (ITU-R BT.2100 Table 9) puts Y' on the lattice of step
``65535 / 876`` starting at 0 (gain 1). swscale's ``rgb48le`` output lands on the same lattice scaled by about
0.99614 (:data:`datakit.audit.lattice.SWSCALE_RGB48_GAIN`): white near 65282 instead of 65535. The gain is
read from the lattice, not from the brightest pixel, so it is found in frames that never reach white.
"""

from __future__ import annotations

import numpy as np

from datakit.audit.bitdepth import ON_LATTICE, best
from datakit.audit.findings import Finding
from datakit.audit.lattice import SWSCALE_RGB48_GAIN, LatticeFit

GAIN_TOLERANCE = 3e-4  # |gain - 1| within this: no gain error (the fit resolves about 1e-5 on a 10-bit lattice)
SWSCALE_TOLERANCE = 5e-4


def gain_finding(fits: dict[str, dict[str, LatticeFit]]) -> Finding | None:
    """The gain of the 10-bit limited lattice, or ``None`` when the values are not on it."""
    fit = best(fits, "10-bit limited")
    if fit is None or fit.strength <= ON_LATTICE:
        return None
    evidence = {
        "gain": round(fit.gain, 6),
        "black_offset_codes": round(fit.offset, 2),
        "lattice_strength": round(fit.strength, 4),
        "lattice_step": round(fit.step, 3),
        "white_code": round(65535 * fit.gain + fit.offset, 1),
        "pixels": fit.pixels,
    }
    if abs(fit.gain - 1.0) <= GAIN_TOLERANCE:
        return Finding("gain", "no gain error", "no gain error: Y' on round((c - 64) / 876 * 65535)", fit.strength,
                       evidence)  # fmt: skip
    where = " (swscale's rgb48le path)" if abs(fit.gain - SWSCALE_RGB48_GAIN) <= SWSCALE_TOLERANCE else ""
    return Finding(
        "gain", "gain error",
        f"gain error: R'G'B' scaled by {fit.gain:.5f}{where}, white at {evidence['white_code']:.0f} instead of "
        "65535; `datakit import --fix` rescales it", fit.strength, evidence, problem=True,
    )  # fmt: skip


def levels(codes16: np.ndarray) -> dict[str, float]:
    """Black and white levels of 16-bit codes: extremes and the 0.01 % / 99.99 % points over all channels."""
    values = np.asarray(codes16).reshape(-1)
    sub = values[:: max(1, len(values) // 300_000)]
    low, high = np.percentile(sub, [0.01, 99.99])
    return {"min": int(values.min()), "max": int(values.max()), "p0_01": float(low), "p99_99": float(high)}


def fix_gain(codes16: np.ndarray, gain: float, offset: float) -> np.ndarray:
    """Undo a gain error: ``round((v - offset) / gain)`` clipped to [0, 65535] (uint16 PQ codes)."""
    out = (np.asarray(codes16, np.float64) - offset) / gain
    return np.clip(np.rint(out), 0, 65535).astype(np.uint16)
