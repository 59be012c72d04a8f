"""SDR files (8-bit BT.709 R'G'B'): signal range, and the matrix when the SDR was decoded from video.

Range: values kept within 16..235 are limited-range codes that were never expanded (BT.709 item 6.10). Matrix:
Y' of an 8-bit R'G'B' picture decoded from limited-range 8-bit video lies, up to the R'G'B' rounding (about 0.2
of a Y' code), on the 219-step lattice of its Y'CbCr codes when computed with the matrix used; a full-range
(JPEG) source puts it on the 255-step lattice. With the wrong weights Y' spreads evenly.
"""

from __future__ import annotations

import numpy as np

from datakit.audit.findings import Finding
from datakit.audit.lattice import FAMILIES, FULL, MATRICES, luma_weights, strength
from datakit.audit.matrix import NAMES

SDR_LATTICE = 0.2  # R of Y' against the lattice: the rounding of 8-bit R'G'B' alone gives about 0.5
LIMITED_LOW, LIMITED_HIGH = 16, 235


def sdr_range_finding(rgb8: np.ndarray) -> Finding:
    flat = np.asarray(rgb8).reshape(-1)
    low, high = (float(v) for v in np.percentile(flat, [0.01, 99.99]))
    evidence = {"p0_01": low, "p99_99": high, "min": int(flat.min()), "max": int(flat.max())}
    if flat.min() >= LIMITED_LOW - 1 and flat.max() <= LIMITED_HIGH + 1 and high - low > 100:
        return Finding("sdr_range", "limited-range leftovers",
                       f"limited-range leftovers: values stay within {flat.min()}..{flat.max()} (16..235 never "
                       "expanded to full range)", 0.8, evidence, problem=True)  # fmt: skip
    return Finding("sdr_range", "full range", f"full range: values span {flat.min()}..{flat.max()}", 0.8, evidence)


def sdr_matrix_finding(rgb8: np.ndarray) -> Finding:
    """Which matrix (and source range) puts the SDR's Y' on a Y'CbCr lattice; ``undetermined`` when none does."""
    flat = np.asarray(rgb8).reshape(-1, 3).astype(np.float64) * 257.0
    flat = flat[(flat.max(axis=1) - flat.min(axis=1)) > 1500]  # coloured pixels: the matrices differ there
    flat = flat[:: max(1, len(flat) // 50_000)]
    if len(flat) < 500:
        return Finding("sdr_matrix", "undetermined", "matrix undetermined: too few coloured pixels", 0.0)
    scores = {}
    for family in ("8-bit limited", "8-bit full"):
        for matrix in MATRICES:
            scores[(family, matrix)] = strength(flat @ luma_weights(matrix), FULL / FAMILIES[family][0])[0]
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    (family, matrix), top = ranked[0]
    runner = next(v for (f, m), v in ranked[1:] if m != matrix)
    evidence = {f"{f} {m}": round(v, 3) for (f, m), v in ranked}
    if top < SDR_LATTICE or top < 2 * runner:
        return Finding("sdr_matrix", "undetermined",
                       "matrix undetermined: Y' is on no 8-bit Y'CbCr lattice (not decoded from 8-bit video, or "
                       "processed after decoding)", 1.0 - top, evidence)  # fmt: skip
    source = "limited-range" if family == "8-bit limited" else "full-range"
    return Finding("sdr_matrix", matrix,
                   f"decoded from {source} 8-bit Y'CbCr with the {NAMES[matrix]} matrix"
                   + ("" if matrix == "bt709" else " (BT.709 SDR should use BT.709)"),
                   1.0 - runner / top, evidence, problem=matrix != "bt709")  # fmt: skip
