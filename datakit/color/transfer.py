"""Transfer functions: SMPTE ST 2084 (PQ), BT.2100 HLG, BT.1886, BT.709, sRGB and pure gamma.

Every function is elementwise (HLG EOTF and its inverse work on RGB triplets on the last axis),
vectorized, and accepts numpy arrays or torch tensors (see :mod:`datakit.color._backend`:
float32 in -> float32 out, tensors keep dtype and device and stay differentiable).

Shared conventions:

- Negative inputs are clipped to 0 before the curve is applied: the standards define these
  curves on non-negative values only. NaN propagates unchanged.
- Inputs above the nominal maximum (signal 1, peak luminance) are not clipped; the formulas are
  extrapolated. The one exception is :func:`st2084_eotf`, which clips codes to [0, 1] because the
  PQ formula has a pole just below code 2.
- "code" / "signal" means a non-linear value in [0, 1] (full-range, no video-range offsets);
  "nits" means absolute luminance in cd/m^2; "relative linear" means linear light with 1.0 at
  nominal white.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from datakit.color._backend import (
    check_last_axis,
    clamp,
    clamp_min,
    finish,
    ns,
    prepare,
    safe_pow,
    safe_sqrt,
    weighted_sum_last,
)
from datakit.errors import InputError

if TYPE_CHECKING:
    from datakit.color._backend import ArrayIn, ArrayOut

__all__ = [
    "HLG_REFERENCE_PEAK_NITS",
    "PQ_PEAK_NITS",
    "SDR_PEAK_NITS",
    "SDR_REFERENCE_WHITE_NITS",
    "bt709_inverse_oetf",
    "bt709_oetf",
    "bt1886_eotf",
    "bt1886_inverse_eotf",
    "gamma_eotf",
    "gamma_inverse_eotf",
    "hlg_eotf",
    "hlg_inverse_eotf",
    "hlg_inverse_oetf",
    "hlg_oetf",
    "hlg_system_gamma",
    "srgb_eotf",
    "srgb_inverse_eotf",
    "st2084_eotf",
    "st2084_inverse_eotf",
]

PQ_PEAK_NITS = 10000.0
"""Luminance of PQ code value 1.0 (SMPTE ST 2084), cd/m^2."""
SDR_REFERENCE_WHITE_NITS = 203.0
"""HDR reference white / graphics white (ITU-R BT.2408), cd/m^2."""
SDR_PEAK_NITS = 100.0
"""Nominal peak white of an SDR reference display (ITU-R BT.1886 / BT.2035), cd/m^2."""
HLG_REFERENCE_PEAK_NITS = 1000.0
"""Nominal peak of the BT.2100 HLG reference display (system gamma 1.2), cd/m^2."""

# SMPTE ST 2084 constants, exact rationals as published.
_PQ_M1 = 2610.0 / 16384.0
_PQ_M2 = 2523.0 / 4096.0 * 128.0
_PQ_C1 = 3424.0 / 4096.0
_PQ_C2 = 2413.0 / 4096.0 * 32.0
_PQ_C3 = 2392.0 / 4096.0 * 32.0
# c2 - c3 == 1 - c1 == 0.1640625 exactly; the rewritten forms below rely on it.
_PQ_K = 1.0 - _PQ_C1

# ITU-R BT.2100 HLG constants: a as published, b and c from their defining formulas (b = 0.28466892,
# c = 0.55991073 when rounded), so that the two OETF segments meet exactly at E = 1/12.
_HLG_A = 0.17883277
_HLG_B = 1.0 - 4.0 * _HLG_A
_HLG_C = 0.5 - _HLG_A * math.log(4.0 * _HLG_A)
_HLG_Y_WEIGHTS = (0.2627, 0.6780, 0.0593)

_BT1886_GAMMA = 2.4
# Start of the power segment of the BT.709 OETF in signal units (the rounded BT.709 constants leave
# a 2.5e-4 step at L = 0.018; the inverse switches where the power segment starts).
_BT709_V_KNEE = 1.099 * 0.018**0.45 - 0.099


# --------------------------------------------------------------------------- SMPTE ST 2084 (PQ)


def st2084_eotf(code: ArrayIn) -> ArrayOut:
    """SMPTE ST 2084 (PQ) EOTF: code value -> absolute luminance.

    Input: PQ non-linear code values ``N`` in [0, 1] (any shape; ``rgb_pq`` or a single channel).
    Output: display luminance in cd/m^2, 0..10000 (``rgb_nits`` for RGB input).
    Codes are clipped to [0, 1] (negative -> 0 cd/m^2, above 1 -> 10000 cd/m^2); NaN propagates.

    Computed as ``10000 * ((N^(1/m2) - c1) / (c2 - c3 N^(1/m2)))^(1/m1)`` with ``N^(1/m2) - 1``
    evaluated by ``expm1`` to avoid cancellation (accurate in float32).
    """
    x, work = prepare(code)
    xp = ns(x)
    n = clamp(x, 0.0, 1.0)
    zero = n == 0
    e = xp.expm1(xp.log(xp.where(zero, 1.0, n)) / _PQ_M2)  # N^(1/m2) - 1, in [-1, 0] for N <= 1
    num = _PQ_K + e  # N^(1/m2) - c1
    den = _PQ_K - _PQ_C3 * e  # c2 - c3 N^(1/m2)
    dead = zero | (num <= 0)  # below c1: black (ST 2084 clamps the numerator at 0)
    ratio = xp.where(dead, 1.0, num) / den
    y = xp.where(dead, 0.0, PQ_PEAK_NITS * ratio ** (1.0 / _PQ_M1))
    return finish(y, work)


def st2084_inverse_eotf(nits: ArrayIn) -> ArrayOut:
    """SMPTE ST 2084 (PQ) inverse EOTF: absolute luminance -> code value.

    Input: luminance in cd/m^2 (``rgb_nits`` or a single channel), nominally 0..10000.
    Output: PQ code values in [0, 1] (``rgb_pq`` for RGB input); 0 cd/m^2 gives c1^m2 ~ 7.3e-7.
    Negative luminance is clipped to 0; above 10000 cd/m^2 the curve is extrapolated (code > 1,
    not clipped); NaN propagates.

    Computed as ``((c1 + c2 Y^m1) / (1 + c3 Y^m1))^m2`` rewritten as
    ``exp(m2 log1p(-(1 - c1)(1 - Y^m1) / (1 + c3 Y^m1)))`` (identical since c2 - c3 = 1 - c1),
    which keeps float32 results within about 2e-6 relative of a float64 evaluation (the textbook
    form loses about 2e-5 to the power of m2 = 78.84).
    """
    x, work = prepare(nits)
    xp = ns(x)
    t = safe_pow(clamp_min(x, 0.0) / PQ_PEAK_NITS, _PQ_M1)
    y = xp.exp(_PQ_M2 * xp.log1p(-_PQ_K * (1.0 - t) / (1.0 + _PQ_C3 * t)))
    return finish(y, work)


# --------------------------------------------------------------------------- BT.2100 HLG


def hlg_system_gamma(peak_nits: float = HLG_REFERENCE_PEAK_NITS) -> float:
    """System gamma of the BT.2100 HLG OOTF for a display of nominal peak ``peak_nits`` cd/m^2.

    ITU-R BT.2100 (Table 5, note): ``1.2 + 0.42 log10(Lw / 1000)`` for 400 <= Lw <= 2000; outside
    that range the extended formula of BT.2100-2 / BT.2390 ``1.2 * 1.111^log2(Lw / 1000)`` is used.
    Both give 1.2 at 1000 cd/m^2 (the two formulas differ slightly at the range ends).
    """
    if not (math.isfinite(peak_nits) and peak_nits > 0):
        raise InputError(f"HLG peak luminance must be a positive number of cd/m^2, got {peak_nits!r}")
    if 400.0 <= peak_nits <= 2000.0:
        return 1.2 + 0.42 * math.log10(peak_nits / 1000.0)
    return 1.2 * 1.111 ** math.log2(peak_nits / 1000.0)


def _hlg_oetf_work(e: Any) -> Any:
    xp = ns(e)
    e = clamp_min(e, 0.0)
    low = e <= 1.0 / 12.0
    high = _HLG_A * xp.log(xp.where(low, 1.0, 12.0 * e - _HLG_B)) + _HLG_C
    return xp.where(low, safe_sqrt(3.0 * e), high)


def _hlg_inverse_oetf_work(ep: Any) -> Any:
    xp = ns(ep)
    ep = clamp_min(ep, 0.0)
    low = ep <= 0.5
    high = (xp.exp((xp.where(low, 0.5, ep) - _HLG_C) / _HLG_A) + _HLG_B) / 12.0
    return xp.where(low, ep * ep / 3.0, high)


def hlg_oetf(e: ArrayIn) -> ArrayOut:
    """ITU-R BT.2100 HLG OETF: relative scene-linear light -> non-linear signal.

    Input: scene linear ``E`` in [0, 1] (per channel, relative to the camera's nominal peak).
    Output: HLG signal ``E'`` in [0, 1]: ``sqrt(3E)`` for ``E <= 1/12``, else ``a ln(12E - b) + c``.
    Negative input is clipped to 0; NaN propagates.
    """
    x, work = prepare(e)
    return finish(_hlg_oetf_work(x), work)


def hlg_inverse_oetf(e_prime: ArrayIn) -> ArrayOut:
    """ITU-R BT.2100 HLG inverse OETF: non-linear signal -> relative scene-linear light.

    Input: HLG signal ``E'`` in [0, 1]. Output: scene linear ``E`` in [0, 1]:
    ``E'^2 / 3`` for ``E' <= 1/2``, else ``(exp((E' - c) / a) + b) / 12``.
    Negative input is clipped to 0; NaN propagates.
    """
    x, work = prepare(e_prime)
    return finish(_hlg_inverse_oetf_work(x), work)


def _hlg_params(peak_nits: float, black_nits: float, gamma: float | None) -> tuple[float, float]:
    if not (math.isfinite(black_nits) and 0.0 <= black_nits < peak_nits):
        raise InputError(f"HLG display black must be in [0, peak) cd/m^2, got black={black_nits!r}, peak={peak_nits!r}")
    g = hlg_system_gamma(peak_nits) if gamma is None else float(gamma)
    if not (math.isfinite(g) and g > 0):
        raise InputError(f"HLG system gamma must be positive, got {gamma!r}")
    beta = math.sqrt(3.0 * (black_nits / peak_nits) ** (1.0 / g))
    return g, beta


def hlg_eotf(
    rgb_signal: ArrayIn,
    peak_nits: float = HLG_REFERENCE_PEAK_NITS,
    black_nits: float = 0.0,
    *,
    gamma: float | None = None,
) -> ArrayOut:
    """ITU-R BT.2100-2 HLG EOTF on RGB: signal -> display light in cd/m^2 (OOTF included).

    Input: HLG R'G'B' signal in [0, 1], shape (..., 3), BT.2020 primaries.
    Output: display linear RGB in absolute cd/m^2, shape (..., 3) (``rgb_nits``).

    ``E = OETF^-1(max(0, (1 - beta) E' + beta))`` with black lift
    ``beta = sqrt(3 (Lb / Lw)^(1 / gamma))``, then the OOTF ``F_D = Lw * Y_S^(gamma - 1) * E`` with
    ``Y_S = 0.2627 R + 0.6780 G + 0.0593 B`` (BT.2100 weights). ``gamma`` defaults to
    :func:`hlg_system_gamma` of ``peak_nits`` (1.2 at 1000 cd/m^2). NaN propagates.
    """
    x, work = prepare(rgb_signal)
    check_last_axis(x, "hlg_eotf")
    g, beta = _hlg_params(peak_nits, black_nits, gamma)
    xp = ns(x)
    e = _hlg_inverse_oetf_work((1.0 - beta) * x + beta)
    ys = weighted_sum_last(e, _HLG_Y_WEIGHTS)
    zero = ys == 0
    # Y_S^(gamma - 1) with a guard at 0 (gamma < 1 for dim displays would give 0 * inf there).
    scale = xp.where(zero, 0.0, peak_nits * xp.where(zero, 1.0, ys) ** (g - 1.0))
    return finish(e * scale[..., None], work)


def hlg_inverse_eotf(
    rgb_nits: ArrayIn,
    peak_nits: float = HLG_REFERENCE_PEAK_NITS,
    black_nits: float = 0.0,
    *,
    gamma: float | None = None,
) -> ArrayOut:
    """Inverse of :func:`hlg_eotf` (ITU-R BT.2100-2): display light in cd/m^2 -> HLG signal.

    Input: display linear RGB in absolute cd/m^2, shape (..., 3), BT.2020 primaries (``rgb_nits``).
    Output: HLG R'G'B' signal, shape (..., 3), in [0, 1] for displayable input.

    Inverse OOTF ``E = (Y_D / Lw)^((1 - gamma) / gamma) * F_D / Lw`` (``Y_D`` with the BT.2100
    weights), then ``E' = OETF(E)`` and ``signal = (E' - beta) / (1 - beta)``. Negative light is
    clipped to 0 first; NaN propagates.
    """
    x, work = prepare(rgb_nits)
    check_last_axis(x, "hlg_inverse_eotf")
    g, beta = _hlg_params(peak_nits, black_nits, gamma)
    xp = ns(x)
    f = clamp_min(x, 0.0) / peak_nits
    yd = weighted_sum_last(f, _HLG_Y_WEIGHTS)
    zero = yd == 0
    scale = xp.where(zero, 0.0, xp.where(zero, 1.0, yd) ** ((1.0 - g) / g))
    ep = _hlg_oetf_work(f * scale[..., None])
    return finish((ep - beta) / (1.0 - beta), work)


# --------------------------------------------------------------------------- BT.1886


def _bt1886_ab(white_nits: float, black_nits: float) -> tuple[float, float]:
    if not (math.isfinite(white_nits) and math.isfinite(black_nits) and 0.0 <= black_nits < white_nits):
        raise InputError(f"BT.1886 needs 0 <= black < white cd/m^2, got black={black_nits!r}, white={white_nits!r}")
    n = white_nits ** (1.0 / _BT1886_GAMMA) - black_nits ** (1.0 / _BT1886_GAMMA)
    return n**_BT1886_GAMMA, black_nits ** (1.0 / _BT1886_GAMMA) / n


def bt1886_eotf(v: ArrayIn, white_nits: float = SDR_PEAK_NITS, black_nits: float = 0.0) -> ArrayOut:
    """ITU-R BT.1886 reference EOTF: SDR signal -> display luminance in cd/m^2.

    Input: normalized video signal ``V`` in [0, 1] (``rgb_sdr``; black at 0, white at 1).
    Output: luminance ``L = a * max(V + b, 0)^2.4`` in cd/m^2 with
    ``a = (Lw^(1/2.4) - Lb^(1/2.4))^2.4`` and ``b = Lb^(1/2.4) / (Lw^(1/2.4) - Lb^(1/2.4))``.
    Negative signal is clipped to 0 (so it displays as ``black_nits``); NaN propagates.
    """
    a, b = _bt1886_ab(white_nits, black_nits)
    x, work = prepare(v)
    return finish(a * safe_pow(clamp_min(x, 0.0) + b, _BT1886_GAMMA), work)


def bt1886_inverse_eotf(nits: ArrayIn, white_nits: float = SDR_PEAK_NITS, black_nits: float = 0.0) -> ArrayOut:
    """Inverse ITU-R BT.1886 EOTF: luminance in cd/m^2 -> SDR signal ``V = (L / a)^(1/2.4) - b``.

    Input: luminance in cd/m^2 (negative clipped to 0). Output: signal in [0, 1] for
    ``black_nits <= L <= white_nits`` (``rgb_sdr``); light below black maps below 0. NaN propagates.
    """
    a, b = _bt1886_ab(white_nits, black_nits)
    x, work = prepare(nits)
    return finish(safe_pow(clamp_min(x, 0.0) / a, 1.0 / _BT1886_GAMMA) - b, work)


# --------------------------------------------------------------------------- BT.709 OETF


def bt709_oetf(l: ArrayIn) -> ArrayOut:  # noqa: E741 - the standard's symbol
    """ITU-R BT.709 (and BT.601/BT.2020 10-bit) camera OETF: relative linear -> signal.

    Input: relative scene linear ``L`` in [0, 1]. Output: ``V = 4.5 L`` for ``L < 0.018``, else
    ``1.099 L^0.45 - 0.099``. Negative input is clipped to 0; NaN propagates.
    Note: this is a camera curve; SDR display light follows BT.1886 instead.
    """
    x, work = prepare(l)
    xp = ns(x)
    x = clamp_min(x, 0.0)
    low = x < 0.018
    high = 1.099 * safe_pow(xp.where(low, 1.0, x), 0.45) - 0.099
    return finish(xp.where(low, 4.5 * x, high), work)


def bt709_inverse_oetf(v: ArrayIn) -> ArrayOut:
    """Inverse ITU-R BT.709 OETF: signal -> relative scene linear.

    Input: signal ``V`` in [0, 1]. Output: ``L = V / 4.5`` below the knee ``1.099 * 0.018^0.45 -
    0.099`` (~0.08125, the upper segment's value at ``L = 0.018``), else
    ``((V + 0.099) / 1.099)^(1 / 0.45)``. Negative input is clipped to 0; NaN propagates.
    """
    x, work = prepare(v)
    xp = ns(x)
    x = clamp_min(x, 0.0)
    low = x < _BT709_V_KNEE
    high = safe_pow((xp.where(low, 0.0, x) + 0.099) / 1.099, 1.0 / 0.45)
    return finish(xp.where(low, x / 4.5, high), work)


# --------------------------------------------------------------------------- sRGB


def srgb_eotf(v: ArrayIn) -> ArrayOut:
    """IEC 61966-2-1 sRGB EOTF (piecewise): signal -> relative linear light.

    Input: sRGB signal ``V`` in [0, 1]. Output: ``V / 12.92`` for ``V <= 0.04045``, else
    ``((V + 0.055) / 1.055)^2.4`` (relative, 1.0 = display white). Negative input is clipped to 0;
    NaN propagates.
    """
    x, work = prepare(v)
    xp = ns(x)
    x = clamp_min(x, 0.0)
    low = x <= 0.04045
    high = safe_pow((xp.where(low, 0.0, x) + 0.055) / 1.055, 2.4)
    return finish(xp.where(low, x / 12.92, high), work)


def srgb_inverse_eotf(l: ArrayIn) -> ArrayOut:  # noqa: E741 - the standard's symbol
    """IEC 61966-2-1 sRGB inverse EOTF (piecewise): relative linear light -> signal.

    Input: relative linear ``L`` in [0, 1]. Output: ``12.92 L`` for ``L <= 0.0031308``, else
    ``1.055 L^(1/2.4) - 0.055``. Negative input is clipped to 0; NaN propagates.
    """
    x, work = prepare(l)
    xp = ns(x)
    x = clamp_min(x, 0.0)
    low = x <= 0.0031308
    high = 1.055 * safe_pow(xp.where(low, 1.0, x), 1.0 / 2.4) - 0.055
    return finish(xp.where(low, 12.92 * x, high), work)


# --------------------------------------------------------------------------- pure power law


def _check_gamma(gamma: float) -> float:
    g = float(gamma)
    if not (math.isfinite(g) and g > 0):
        raise InputError(f"gamma must be a positive finite number, got {gamma!r}")
    return g


def gamma_eotf(v: ArrayIn, gamma: float) -> ArrayOut:
    """Pure power-law EOTF ``L = V^gamma`` (e.g. gamma 2.2 or 2.6 for DCI displays).

    Input: signal ``V`` in [0, 1]; output: relative linear light. Negative input is clipped to 0
    (no sign mirroring); NaN propagates.
    """
    g = _check_gamma(gamma)
    x, work = prepare(v)
    return finish(safe_pow(clamp_min(x, 0.0), g), work)


def gamma_inverse_eotf(l: ArrayIn, gamma: float) -> ArrayOut:  # noqa: E741 - the standard's symbol
    """Inverse pure power-law EOTF ``V = L^(1/gamma)``.

    Input: relative linear ``L`` in [0, 1]; output: signal. Negative input is clipped to 0;
    NaN propagates.
    """
    g = _check_gamma(gamma)
    x, work = prepare(l)
    return finish(safe_pow(clamp_min(x, 0.0), 1.0 / g), work)
