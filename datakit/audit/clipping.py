"""Clipping and legal-range leftovers in 16-bit R'G'B' codes.

Clipping: pixels with a channel at 0 or 65535, or piled up on a lower maximum (white clipped after a gain, e.g.
at 65282). Legal-range leftovers: limited-range codes kept as if full range (ITU-R BT.2100 Table 9): black near
64/1023 (4100 in 16-bit codes) and white near 940/1023 (60223).
"""

from __future__ import annotations

import numpy as np

from datakit.audit.findings import Finding

LEGAL_BLACK_10 = 64 / 1023 * 65535  # 4100: 10-bit black code read as full range
LEGAL_WHITE_10 = 940 / 1023 * 65535  # 60223
CLIP_SHARE = 0.001  # share of pixels on one extreme value above which it is reported as clipping


def clipping_finding(codes16: np.ndarray) -> Finding:
    flat = np.asarray(codes16).reshape(-1, 3)
    top = int(flat.max())
    at_full = float(np.mean(flat.max(axis=1) == 65535))
    at_zero = float(np.mean(flat.min(axis=1) == 0))
    at_top = float(np.mean(flat.max(axis=1) == top))
    evidence = {"share_at_65535": round(at_full, 5), "share_at_0": round(at_zero, 5), "max_code": top,
                "share_at_max_code": round(at_top, 5)}  # fmt: skip
    if at_full > CLIP_SHARE or at_zero > CLIP_SHARE:
        return Finding("clipping", "clipped", f"clipped: {at_full:.2%} of pixels at 65535, {at_zero:.2%} at 0",
                       min(1.0, (at_full + at_zero) / (10 * CLIP_SHARE)), evidence, problem=True)  # fmt: skip
    if top < 65535 and at_top > CLIP_SHARE:
        return Finding("clipping", "clipped below 65535",
                       f"clipped below full scale: {at_top:.2%} of pixels pile up at {top} (a white level scaled "
                       "before clipping)", min(1.0, at_top / (10 * CLIP_SHARE)), evidence, problem=True)  # fmt: skip
    return Finding("clipping", "not clipped", "not clipped", 1.0 - min(1.0, (at_full + at_zero) / CLIP_SHARE), evidence)


def legal_range_finding(codes16: np.ndarray, lattice_says_full: bool) -> Finding | None:
    """Limited-range leftovers: 10-bit codes kept as full range. Evidence: the 1023-step lattice, or black
    piled up at 64/1023 (4100, all three channels within 2 codes, at least 0.2 % of the pixels) with nothing
    darker than 300 codes below it."""
    flat = np.asarray(codes16).reshape(-1, 3)
    sub = flat[:: max(1, len(flat) // 300_000)]
    low, high = (float(v) for v in np.percentile(sub, [0.01, 99.99]))
    at_legal_black = float(np.mean(np.abs(sub.astype(np.int64) - round(LEGAL_BLACK_10)).max(axis=1) <= 2))
    evidence = {"p0_01": round(low, 1), "p99_99": round(high, 1), "legal_black": round(LEGAL_BLACK_10, 1),
                "legal_white": round(LEGAL_WHITE_10, 1), "share_at_legal_black": round(at_legal_black, 5)}  # fmt: skip
    piled = at_legal_black >= 0.002 and int(flat.min()) >= LEGAL_BLACK_10 - 300
    if lattice_says_full or piled:
        return Finding("legal_range", "limited-range leftovers",
                       f"limited-range leftovers: black at {low:.0f} ({at_legal_black:.2%} of pixels at 64/1023 = "
                       f"{LEGAL_BLACK_10:.0f}), brightest near {high:.0f}: 10-bit codes were kept as full range",
                       0.9 if lattice_says_full else 0.7, evidence, problem=True)  # fmt: skip
    return None
