"""The Y'CbCr matrix a frame was converted with: the matrix whose luma weights put Y' back on the code lattice.

Only the matrix used undoes the luma exactly (``Y' = Kr R' + Kg G' + Kb B'`` with its own ``Kr, Kb``: ITU-R
BT.2020 / BT.2100 NCL 0.2627, 0.0593; BT.709 0.2126, 0.0722; BT.601 0.299, 0.114); the others mix chroma into
Y' and scatter it off the lattice. The test uses coloured pixels, where the matrices disagree.
"""

from __future__ import annotations

from datakit.audit.bitdepth import ON_LATTICE
from datakit.audit.findings import Finding
from datakit.audit.lattice import LatticeFit

NAMES = {"bt2020nc": "BT.2020 NCL", "bt709": "BT.709", "bt601": "BT.601"}


def matrix_finding(
    fits: dict[str, dict[str, LatticeFit]], *, expected: str = "bt2020nc", threshold: float = ON_LATTICE
) -> Finding | None:
    """The matrix of the family with the strongest lattice; ``None`` when no lattice is strong enough."""
    candidates = [by for by in fits.values() if by]
    if not candidates:
        return None
    by_matrix = max(candidates, key=lambda by: max(f.strength for f in by.values()))
    ranked = sorted(by_matrix.values(), key=lambda f: f.strength, reverse=True)
    top, runner = ranked[0], ranked[1]
    if top.strength <= threshold:
        return None
    evidence = {
        "family": top.family,
        "lattice_strength": {f.matrix: round(f.strength, 4) for f in ranked},
        "coloured_pixels": top.pixels,
    }
    # misfit 1 - R: about 0 on the lattice (16-bit rounding only); the runner-up's misfit measures how far the
    # pixels' chroma pushed its Y' off the lattice (0.2 and more: clearly off)
    confidence = min(1.0, max(0.0, (top.strength - runner.strength) / 0.2))
    if confidence < 0.25:
        return Finding("matrix", "undetermined", "matrix undetermined: too few coloured pixels tell them apart",
                       confidence, evidence)  # fmt: skip
    name = NAMES[top.matrix]
    if top.matrix == expected:
        return Finding("matrix", top.matrix, f"Y'CbCr matrix {name} (as expected)", confidence, evidence)
    return Finding(
        "matrix", top.matrix, f"wrong Y'CbCr matrix: converted with {name}, not {NAMES[expected]}", confidence,
        evidence, problem=True,
    )  # fmt: skip
