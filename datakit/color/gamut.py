"""Colour primaries, RGB <-> XYZ matrices and gamut conversion (BT.709, BT.2020, P3).

Primaries and white points are CIE 1931 (x, y) chromaticities from ITU-R BT.709, ITU-R BT.2020
(= BT.2100) and SMPTE RP 431-2 / EG 432-1 (P3). Matrices are derived, not copied, with the
SMPTE RP 177 method, so BT.709 -> BT.2020 agrees with the matrix published in ITU-R BT.2087.

All conversions here act on **linear light** (``rgb_linear`` or ``rgb_nits``): apply the EOTF of
:mod:`datakit.color.transfer` first and the inverse EOTF afterwards.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from datakit.color._backend import (
    apply_matrix,
    check_last_axis,
    finish,
    is_tensor,
    ns,
    prepare,
    to_python_float,
    weighted_sum_last,
)
from datakit.errors import InputError, UnsupportedFormatError

if TYPE_CHECKING:
    from datakit.color._backend import ArrayIn, ArrayOut

__all__ = [
    "BT709_TO_BT2020",
    "BT2020_TO_BT709",
    "PRIMARIES",
    "Primaries",
    "apply_rgb_matrix",
    "bradford_adaptation_matrix",
    "convert_gamut",
    "fraction_outside_gamut",
    "get_primaries",
    "luminance_weights",
    "rgb_to_rgb_matrix",
    "rgb_to_xyz_matrix",
    "xyz_to_rgb_matrix",
]

XY = tuple[float, float]


@dataclass(frozen=True)
class Primaries:
    """Red, green, blue primaries and white point as CIE 1931 (x, y) chromaticities."""

    red: XY
    green: XY
    blue: XY
    white: XY
    name: str = "custom"

    def __post_init__(self) -> None:
        for label, (x, y) in (("red", self.red), ("green", self.green), ("blue", self.blue), ("white", self.white)):
            if not (math.isfinite(x) and math.isfinite(y) and 0.0 <= x <= 1.0 and 0.0 < y <= 1.0 and x + y <= 1.0):
                raise InputError(f"primaries {self.name!r}: {label} chromaticity ({x}, {y}) is not a valid (x, y)")


_D65: XY = (0.3127, 0.3290)
_DCI_WHITE: XY = (0.314, 0.351)

PRIMARIES: dict[str, Primaries] = {
    # ITU-R BT.709-6, item 1.3 / 1.4.
    "bt709": Primaries((0.640, 0.330), (0.300, 0.600), (0.150, 0.060), _D65, "bt709"),
    # ITU-R BT.2020-2, Table 3 (also BT.2100).
    "bt2020": Primaries((0.708, 0.292), (0.170, 0.797), (0.131, 0.046), _D65, "bt2020"),
    # SMPTE EG 432-1 (Display P3: P3 primaries with D65 white).
    "p3d65": Primaries((0.680, 0.320), (0.265, 0.690), (0.150, 0.060), _D65, "p3d65"),
    # SMPTE RP 431-2 (DCI-P3 theatrical white).
    "p3dci": Primaries((0.680, 0.320), (0.265, 0.690), (0.150, 0.060), _DCI_WHITE, "p3dci"),
}

_ALIASES = {
    "rec709": "bt709",
    "srgb": "bt709",
    "rec2020": "bt2020",
    "bt2100": "bt2020",
    "displayp3": "p3d65",
    "p3": "p3d65",
    "dcip3": "p3dci",
}


def get_primaries(name_or_obj: str | Primaries) -> Primaries:
    """Look up primaries by name ("bt709", "bt2020", "p3d65", "p3dci"; case, dots, dashes and
    underscores ignored, a few aliases such as "rec2020" or "srgb") or pass a :class:`Primaries`
    through. Unknown names raise :class:`UnsupportedFormatError`."""
    if isinstance(name_or_obj, Primaries):
        return name_or_obj
    if not isinstance(name_or_obj, str):
        raise UnsupportedFormatError(f"primaries must be a name or Primaries, got {type(name_or_obj).__name__}")
    key = "".join(ch for ch in name_or_obj.lower() if ch.isalnum())
    key = key.removeprefix("itur")
    key = _ALIASES.get(key, key)
    if key not in PRIMARIES:
        raise UnsupportedFormatError(
            f"unknown colour primaries {name_or_obj!r} (known: {', '.join(sorted(PRIMARIES))})"
        )
    return PRIMARIES[key]


def _xy_to_xyz(xy: XY) -> np.ndarray:
    """XYZ with Y = 1 of a chromaticity (x, y)."""
    x, y = xy
    return np.array([x / y, 1.0, (1.0 - x - y) / y], dtype=np.float64)


@functools.lru_cache(maxsize=64)
def _rgb_to_xyz_cached(p: Primaries) -> np.ndarray:
    cols = np.stack([_xy_to_xyz(p.red), _xy_to_xyz(p.green), _xy_to_xyz(p.blue)], axis=1)
    if abs(np.linalg.det(cols)) < 1e-12:
        raise InputError(f"primaries {p.name!r} are collinear: no RGB <-> XYZ matrix exists")
    # SMPTE RP 177: scale each primary so that R = G = B = 1 reproduces the white point (Y = 1).
    s = np.linalg.solve(cols, _xy_to_xyz(p.white))
    m = cols * s[None, :]
    m.setflags(write=False)
    return m


def rgb_to_xyz_matrix(primaries: str | Primaries) -> np.ndarray:
    """Normalized primary matrix (SMPTE RP 177): linear RGB -> CIE XYZ, white (1,1,1) -> Y = 1.

    Returns a fresh (3, 3) float64 array ``M`` with ``XYZ = M @ RGB``.
    """
    return _rgb_to_xyz_cached(get_primaries(primaries)).copy()


def xyz_to_rgb_matrix(primaries: str | Primaries) -> np.ndarray:
    """Inverse of :func:`rgb_to_xyz_matrix`: CIE XYZ -> linear RGB, (3, 3) float64."""
    return np.linalg.inv(_rgb_to_xyz_cached(get_primaries(primaries)))


# Bradford cone response matrix (Lam 1985, as used in ICC v4 and ISO 22028).
_BRADFORD = np.array(
    [
        [0.8951, 0.2664, -0.1614],
        [-0.7502, 1.7135, 0.0367],
        [0.0389, -0.0685, 1.0296],
    ],
    dtype=np.float64,
)


def bradford_adaptation_matrix(src_white: XY, dst_white: XY) -> np.ndarray:
    """Bradford (von Kries in the Bradford cone space) chromatic adaptation, XYZ -> XYZ, (3, 3)
    float64: maps the XYZ of ``src_white`` (Y = 1) onto that of ``dst_white``."""
    rho_src = _BRADFORD @ _xy_to_xyz(src_white)
    rho_dst = _BRADFORD @ _xy_to_xyz(dst_white)
    return np.linalg.inv(_BRADFORD) @ np.diag(rho_dst / rho_src) @ _BRADFORD


def rgb_to_rgb_matrix(src: str | Primaries, dst: str | Primaries) -> np.ndarray:
    """Linear RGB in ``src`` primaries -> linear RGB in ``dst`` primaries, (3, 3) float64.

    ``XYZ_to_RGB(dst) @ RGB_to_XYZ(src)``; white (1, 1, 1) maps to white. When the white points
    differ (e.g. P3-DCI -> BT.709) a Bradford chromatic adaptation between them is inserted, so
    source white still maps to destination white (1, 1, 1).
    """
    ps, pd = get_primaries(src), get_primaries(dst)
    m = _rgb_to_xyz_cached(ps)
    if not np.allclose(ps.white, pd.white, rtol=0.0, atol=1e-12):
        m = bradford_adaptation_matrix(ps.white, pd.white) @ m
    return np.linalg.inv(_rgb_to_xyz_cached(pd)) @ m


def convert_gamut(rgb_linear: ArrayIn, src: str | Primaries, dst: str | Primaries) -> ArrayOut:
    """Convert **linear** RGB (relative or absolute, shape (..., 3)) from ``src`` to ``dst``
    primaries with :func:`rgb_to_rgb_matrix`. Non-linear signals (PQ, sRGB...) must be decoded
    first. No clipping: colours outside ``dst`` come out with negative components. numpy
    (float32 preserved) or torch (differentiable) input."""
    x, work = prepare(rgb_linear)
    check_last_axis(x, "convert_gamut")
    return finish(apply_matrix(x, rgb_to_rgb_matrix(src, dst)), work)


def apply_rgb_matrix(rgb: ArrayIn, matrix: np.ndarray) -> ArrayOut:
    """Apply a 3x3 ``matrix`` to RGB vectors on the last axis (``out = matrix @ rgb``), e.g. a white-balance or
    saturation matrix on linear light. numpy (float32 preserved) or torch input."""
    x, work = prepare(rgb)
    check_last_axis(x, "apply_rgb_matrix")
    return finish(apply_matrix(x, np.asarray(matrix, dtype=np.float64)), work)


def luminance_weights(primaries: str | Primaries) -> np.ndarray:
    """Relative luminance weights (the Y row of :func:`rgb_to_xyz_matrix`), (3,) float64, summing
    to 1 (e.g. BT.709: 0.2126, 0.7152, 0.0722; BT.2020: 0.2627, 0.6780, 0.0593)."""
    return _rgb_to_xyz_cached(get_primaries(primaries))[1].copy()


def fraction_outside_gamut(
    rgb_linear_2020: ArrayIn,
    dst: str | Primaries = "bt709",
    tolerance: float = 1e-4,
    *,
    src: str | Primaries = "bt2020",
    min_luminance: float = 1e-3,
) -> float:
    """Share of pixels whose chromaticity lies outside the ``dst`` gamut, in [0, 1].

    Input: linear RGB in ``src`` primaries (BT.2020 by default), shape (..., 3); each vector on
    the last axis is a pixel. Relative (``rgb_linear``) or absolute (``rgb_nits``) both work, but
    ``min_luminance`` is in the same unit as the input.

    Definition: convert the pixel to ``dst`` primaries (:func:`convert_gamut`); the pixel is
    outside when its smallest component is below ``-tolerance * Y``, where ``Y`` is the pixel's
    luminance (:func:`luminance_weights` of ``src``). The test is scale invariant, so it measures
    chromaticity (gamut), not range: components above 1 are not counted. Pixels with
    ``Y < min_luminance`` (near black, where noise decides the sign) and NaN pixels are ignored
    and excluded from the denominator. Returns 0.0 when no pixel is counted.
    """
    x, _ = prepare(rgb_linear_2020)
    check_last_axis(x, "fraction_outside_gamut")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise InputError(f"fraction_outside_gamut: tolerance must be >= 0, got {tolerance!r}")
    if not is_tensor(x):
        x = x.astype(np.float64, copy=False)
    xp = ns(x)
    y = weighted_sum_last(x, luminance_weights(src))
    out = apply_matrix(x, rgb_to_rgb_matrix(src, dst))
    lowest = out.amin(dim=-1) if is_tensor(out) else out.min(axis=-1)
    valid = y >= min_luminance
    outside = valid & (lowest < -tolerance * y)
    n_valid = to_python_float(xp.sum(valid))
    if n_valid == 0:
        return 0.0
    return to_python_float(xp.sum(outside)) / n_valid


def _readonly(m: np.ndarray) -> np.ndarray:
    m.setflags(write=False)
    return m


BT709_TO_BT2020: np.ndarray = _readonly(rgb_to_rgb_matrix("bt709", "bt2020"))
"""Linear BT.709 RGB -> linear BT.2020 RGB (ITU-R BT.2087 matrix, derived), read-only (3, 3)."""
BT2020_TO_BT709: np.ndarray = _readonly(rgb_to_rgb_matrix("bt2020", "bt709"))
"""Linear BT.2020 RGB -> linear BT.709 RGB (ITU-R BT.2087 inverse), read-only (3, 3)."""
