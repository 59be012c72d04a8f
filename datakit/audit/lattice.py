"""Which code-value lattice an image's Y' lands on: the gain, black offset, bit depth and Y'CbCr matrix behind it.

A 10-bit limited-range Y'CbCr frame converted correctly to 16-bit full-range R'G'B' (ITU-R BT.2100 Table 9:
``E'Y = (D'Y - 64) / 876``, then the inverse matrix) gives pixels whose luma ``Y' = Kr R' + Kg G' + Kb B'``
(the matrix's own weights) sits on ``round((D'Y - 64) / 876 * 65535)``: a lattice of step ``65535 / 876``
(74.8 codes) starting at 0, whatever the chroma did, because the matrix's first row undoes the luma exactly.
Through another matrix's weights the same pixels scatter off the lattice (chroma leaks into Y'), except grey
pixels, which is why the matrix test uses coloured pixels only. A gain ``g`` on R'G'B' (swscale's ``rgb48le``
output: ``g`` about 0.9961) scales the lattice step by ``g``; an 8-bit source scales it by 4 (``65535 / 219``);
10-bit limited codes written as if full range give a step of ``65535 / 1023`` and black at 64 / 1023.

The fit is a periodogram: for a candidate step ``s``, ``R(s) = |mean(exp(2 pi i Y' / s))|`` is 1 when every
value lies on a lattice of step ``s`` (any origin: the phase gives the black offset) and about ``1 / sqrt(N)``
for values spread evenly. Inputs are 16-bit code values ``round(rgb * 65535)`` (``rgb_pq`` for HDR, or 8-bit
``rgb_sdr * 257`` for SDR), shaped ``(..., 3)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datakit.color.ycbcr import MATRIX_COEFFICIENTS

FULL = 65535.0
# (name, Y' steps from black to white, black code) of the code lattices a source can leave (BT.2100 Table 9)
FAMILIES = {
    "10-bit limited": (876.0, 64.0),
    "8-bit limited": (219.0, 16.0),
    "10-bit full": (1023.0, 0.0),
    "8-bit full": (255.0, 0.0),
}
GAIN_SEARCH = (0.985, 1.015)  # gains searched around 1 for each family
SWSCALE_RGB48_GAIN = 0.99614  # measured here: swscale's rgb48le of limited-range 10-bit BT.2020 (FIELD-NOTES)
MATRICES = tuple(MATRIX_COEFFICIENTS)  # bt709, bt2020nc, bt601
MIN_CHROMA = 1500.0  # 16-bit codes of max - min over R'G'B' for a pixel to count as coloured (matrix test)
MAX_PIXELS = 20_000


@dataclass(frozen=True)
class LatticeFit:
    """The best lattice for one set of Y' values: ``R`` in [0, 1] (1 = every value on it)."""

    family: str
    matrix: str
    gain: float
    offset: float  # 16-bit codes: where black (the lattice origin) sits
    strength: float
    pixels: int

    @property
    def step(self) -> float:
        return FULL * self.gain / FAMILIES[self.family][0]


def luma_weights(matrix: str) -> np.ndarray:
    kr, kb = MATRIX_COEFFICIENTS[matrix]
    return np.array([kr, 1.0 - kr - kb, kb])


def sample_pixels(codes16: np.ndarray, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Unclipped pixels (no channel at 0 or 65535) as float64 ``(N, 3)``, an evenly strided subset."""
    flat = np.asarray(codes16).reshape(-1, 3)
    inside = (flat.min(axis=1) > 0) & (flat.max(axis=1) < 65535)
    chosen = flat[inside]
    step = max(1, -(-len(chosen) // max_pixels))
    return chosen[::step].astype(np.float64)


def strength(values: np.ndarray, step: float) -> tuple[float, float]:
    """``(R, phase)`` of ``values`` against a lattice of ``step``: phase in codes, in (-step/2, step/2]."""
    z = np.exp(2j * np.pi * values / step).mean()
    return float(abs(z)), float(np.angle(z) / (2 * np.pi) * step)


def strengths(values: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """R of ``values`` against each lattice step in ``steps`` (vectorized :func:`strength`)."""
    out = np.empty(len(steps))
    for start in range(0, len(steps), 32):  # bounded memory: 32 x N complex values at a time
        block = np.asarray(steps[start : start + 32], np.float64)
        out[start : start + 32] = np.abs(np.exp(2j * np.pi * values[None, :] / block[:, None]).mean(axis=1))
    return out


def best_gain(values: np.ndarray, steps: float) -> tuple[float, float, float]:
    """``(R, gain, phase)`` maximising R over :data:`GAIN_SEARCH` (coarse grid, then refined twice)."""
    lo, hi = GAIN_SEARCH
    grid = np.arange(lo, hi + 1e-12, 2e-4)
    for width in (2e-4, 1e-5, 0.0):
        best = float(grid[int(np.argmax(strengths(values, FULL * grid / steps)))])
        grid = np.linspace(best - width, best + width, 41)
    r, phase = strength(values, FULL * best / steps)
    return r, best, phase


def fit_lattices(codes16: np.ndarray, families: tuple[str, ...] = tuple(FAMILIES)) -> dict[str, dict[str, LatticeFit]]:
    """Best fit per family and matrix: ``{family: {matrix: LatticeFit}}``.

    The matrix is tested on coloured pixels (max - min of R'G'B' above :data:`MIN_CHROMA`) when there are at
    least 200 of them; otherwise on every unclipped pixel (the matrices then agree and the test says nothing).
    """
    pixels = sample_pixels(codes16)
    if len(pixels) == 0:
        return {}
    chroma = pixels.max(axis=1) - pixels.min(axis=1)
    # the most coloured pixels tell the matrices apart best: at least MIN_CHROMA, and the top half when there
    # are enough of them
    limit = max(MIN_CHROMA, float(np.percentile(chroma, 50))) if np.sum(chroma > MIN_CHROMA) > 400 else MIN_CHROMA
    coloured = pixels[chroma > limit]
    chosen = coloured if len(coloured) >= 200 else pixels
    out: dict[str, dict[str, LatticeFit]] = {family: {} for family in families}
    for matrix in MATRICES:
        y = chosen @ luma_weights(matrix)
        # the gain is searched on the 10-bit limited lattice; the 8-bit limited lattice is 4 of its steps, so
        # it is tested at the same gain; the full-range lattices at gain 1 (their steps lie outside the search)
        r, gain, phase = best_gain(y, FAMILIES["10-bit limited"][0])
        for family in families:
            steps = FAMILIES[family][0]
            if family == "10-bit limited":
                fit = LatticeFit(family, matrix, gain, phase, r, len(chosen))
            else:
                g = gain if family == "8-bit limited" else 1.0
                rf, pf = strength(y, FULL * g / steps)
                fit = LatticeFit(family, matrix, g, pf, rf, len(chosen))
            out[family][matrix] = fit
    return out


def channel_lattice(codes16: np.ndarray, step: float = 257.0) -> float:
    """R of every R'G'B' channel value against a lattice of ``step`` (257: 8-bit values written as 16-bit)."""
    flat = np.asarray(codes16).reshape(-1, 3)
    values = flat[:: max(1, -(-len(flat) // MAX_PIXELS))].astype(np.float64).reshape(-1)
    values = values[(values > 0) & (values < 65535)]
    if len(values) == 0:
        return 0.0
    return strength(values, step)[0]
