"""Bit depth behind a 16-bit file: an 8-bit source written as 16-bit, an 8-bit Y'CbCr source, or 10-bit.

8-bit R'G'B' scaled to 16 bits (``v * 257``) puts every channel on a 256-step lattice; an 8-bit limited-range
Y'CbCr source converted to 16-bit R'G'B' puts Y' on ``round((D'Y - 16) / 219 * 65535)`` (BT.709 / BT.2100 8-bit
narrow range); a 10-bit source on ``round((D'Y - 64) / 876 * 65535)`` (see :mod:`datakit.audit.lattice`).
"""

from __future__ import annotations

from datakit.audit.findings import Finding
from datakit.audit.lattice import LatticeFit

ON_LATTICE = 0.9  # R above this: the values lie on the lattice (noise alone gives about 1 / sqrt(N))


def best(fits: dict[str, dict[str, LatticeFit]], family: str) -> LatticeFit | None:
    by_matrix = fits.get(family, {})
    return max(by_matrix.values(), key=lambda f: f.strength) if by_matrix else None


def bit_depth_finding(fits: dict[str, dict[str, LatticeFit]], channel_257: float) -> Finding:
    """What the lattices say about the source's bit depth and range."""
    ten, eight = best(fits, "10-bit limited"), best(fits, "8-bit limited")
    ten_full = best(fits, "10-bit full")
    evidence = {
        "channel_lattice_257": round(channel_257, 3),
        "y_lattice_10bit_limited": round(ten.strength, 3) if ten else None,
        "y_lattice_8bit_limited": round(eight.strength, 3) if eight else None,
        "y_lattice_10bit_full": round(ten_full.strength, 3) if ten_full else None,
    }
    if channel_257 > ON_LATTICE:
        return Finding(
            "bit_depth", "8-bit source upconverted",
            "8-bit source upconverted: every R'G'B' value is a multiple of 257 (a 256-step lattice), so the "
            "16-bit file holds 8-bit precision", channel_257, evidence, problem=True,
        )  # fmt: skip
    if eight and eight.strength > ON_LATTICE:
        return Finding(
            "bit_depth", "8-bit source upconverted",
            f"8-bit source upconverted: Y' ({eight.matrix} weights) lies on the 219-step lattice of 8-bit "
            "limited-range video", eight.strength, evidence, problem=True,
        )  # fmt: skip
    if ten and ten.strength > ON_LATTICE:
        return Finding(
            "bit_depth", "10-bit limited-range source",
            "10-bit limited-range source: Y' lies on the 876-step lattice of 10-bit video", ten.strength, evidence,
        )  # fmt: skip
    if ten_full and ten_full.strength > ON_LATTICE:
        return Finding(
            "bit_depth", "10-bit codes read as full range",
            "10-bit codes read as full range: Y' lies on a 1023-step lattice (legal-range leftovers: black near "
            "64/1023, white near 940/1023)", ten_full.strength, evidence, problem=True,
        )  # fmt: skip
    strongest = max((f.strength for f in (ten, eight, ten_full) if f), default=0.0)
    return Finding(
        "bit_depth", "no code lattice",
        "no code lattice: the values are not a direct conversion of 8- or 10-bit video (rendered, resampled or "
        "graded after conversion); gain and matrix cannot be read from them", 1.0 - strongest, evidence,
    )  # fmt: skip
