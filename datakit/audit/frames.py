"""Audit one frame's code values: every finding for an HDR (16-bit PQ) or SDR (8-bit) picture.

:func:`audit_hdr` runs the lattice fit once and asks each finding module its question; the ``conversion``
finding sums them up and says "consistent with a correct BT.2100 conversion" when the frame is 10-bit
limited-range video converted with the BT.2020 matrix, gain 1, unclipped levels and real HDR range.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from datakit.audit.bitdepth import bit_depth_finding
from datakit.audit.clipping import clipping_finding, legal_range_finding
from datakit.audit.findings import CORRECT_BT2100, Finding
from datakit.audit.gain import gain_finding, levels
from datakit.audit.hdr_range import not_hdr_finding
from datakit.audit.lattice import channel_lattice, fit_lattices
from datakit.audit.matrix import NAMES, matrix_finding
from datakit.audit.sdr import sdr_matrix_finding, sdr_range_finding
from datakit.pairs import gates


def audit_hdr(codes16: np.ndarray, limits: dict[str, float] | None = None) -> list[Finding]:
    """Findings for uint16 PQ BT.2020 R'G'B' codes ``(H, W, 3)`` (``round(rgb_pq * 65535)``)."""
    codes16 = np.asarray(codes16)
    fits = fit_lattices(codes16)
    depth = bit_depth_finding(fits, channel_lattice(codes16))
    found = [depth]
    if (gain := gain_finding(fits)) is not None:
        found.append(gain)
    if (matrix := matrix_finding(fits)) is not None:
        found.append(matrix)
    if (legal := legal_range_finding(codes16, depth.verdict == "10-bit codes read as full range")) is not None:
        found.append(legal)
    clipping = clipping_finding(codes16)
    clipping.evidence.update(levels(codes16))
    found.append(clipping)
    found.append(not_hdr_finding(gates.hdr_stats(codes16), limits))
    found.append(conversion_summary(found))
    return found


def conversion_summary(found: list[Finding]) -> Finding:
    by_kind = {f.kind: f for f in found}
    depth, gain, matrix = by_kind.get("bit_depth"), by_kind.get("gain"), by_kind.get("matrix")
    problems = [
        f"matrix {NAMES.get(f.verdict, f.verdict)}" if f.kind == "matrix" else f.message.split(":")[0]
        for f in found
        if f.problem and f.kind != "clipping"
    ]
    correct = (
        depth is not None and depth.verdict == "10-bit limited-range source"
        and gain is not None and not gain.problem
        and matrix is not None and not matrix.problem and matrix.verdict != "undetermined"
        and not problems
    )  # fmt: skip
    if correct:
        confidence = min(depth.confidence, gain.confidence, matrix.confidence)
        return Finding("conversion", "correct", f"{CORRECT_BT2100} (10-bit limited range, BT.2020 matrix, gain 1)",
                       confidence, {"checked": ["bit_depth", "gain", "matrix", "legal_range", "not_hdr"]})  # fmt: skip
    if problems:
        return Finding("conversion", "faulty", "not a correct BT.2100 conversion: " + "; ".join(problems),
                       max(f.confidence for f in found if f.problem), {"problems": problems}, problem=True)  # fmt: skip
    return Finding("conversion", "unknown", "cannot tell how it was converted (no code lattice to read)", 0.0)


def audit_sdr(rgb8: np.ndarray) -> list[Finding]:
    """Findings for uint8 BT.709 R'G'B' codes ``(H, W, 3)``."""
    return [sdr_range_finding(rgb8), sdr_matrix_finding(rgb8)]


def fix_of(found: list[Finding]) -> dict[str, Any] | None:
    """``{"gain", "offset"}`` to undo a detected gain error, or ``None``."""
    for f in found:
        if f.kind == "gain" and f.problem:
            return {"gain": f.evidence["gain"], "offset": f.evidence["black_offset_codes"]}
    return None
