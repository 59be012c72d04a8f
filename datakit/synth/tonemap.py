"""A family of HDR -> SDR tone-mapping operators (the degradation models of synthetic pairs).

Convention shared by every operator:

* input ``rgb_nits``: linear light, absolute cd/m^2, **BT.2020** primaries, shape ``(..., 3)``
  (a frame ``(H, W, 3)`` or a clip ``(T, H, W, 3)``);
* output ``rgb_display``: linear **SDR display light**, BT.2020 primaries, relative to the SDR
  peak (1.0 = :data:`~datakit.color.transfer.SDR_PEAK_NITS` = 100 cd/m^2), float32. The tone curve
  lands in [0, 1]; individual channels of saturated highlights may leave it (they are handled by
  gamut mapping to BT.709 and the final clip of :mod:`datakit.synth.degrade`).

Operators (all pure, keyword parameters, registered in :data:`TONEMAP_OPERATORS`):

* :func:`reinhard` - global photographic operator (Reinhard et al. 2002, eq. 4) on luminance;
* :func:`hable` - filmic curve with exposure bias (J. Hable, "Uncharted 2" operator), per channel;
* :func:`bt2446a` - Report ITU-R BT.2446-1 method A (perceptual linearisation, knee curve, colour
  correction in Y'CbCr);
* :func:`bt2390_eetf` - Report ITU-R BT.2390-4 section 5.4 EETF (Hermite knee on PQ; moved to
  ITU-R BT.2408 Annex 5 in later revisions) targeting a 100 cd/m^2 SDR display;
* :func:`camera_scurve` - camera-like per-channel hard clip of highlights plus an S-curve;
* :func:`aces2_sdr_output` - the ACES 2.0 SDR output transform through OpenColorIO's built-in studio config;
* :func:`bt2446c_forward` - Report ITU-R BT.2446-1 method C (crosstalk, luminance curve, inverse crosstalk) with
  its gamut mapping;
* :func:`hue_preserving_display_mapping` - luminance-based BT.2390 mapping with highlight desaturation (players,
  streaming pipelines);
* :func:`film_print_look` - a colourist-style film look (per-channel characteristic curve, print balance);
* :func:`hard_clip` - exposure and a hard clip at SDR white.

When the input is a graded HDR master, :func:`bind_master_peak` sets each operator's input-peak parameter to the
mastering display's peak (:data:`MASTER_PEAK_PARAMETERS`).

Whole-clip statistics (Reinhard's log-average) are taken over the whole input array, so a clip
is tone mapped with one curve (no flicker).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from datakit.color.gamut import luminance_weights
from datakit.color.transfer import (
    SDR_PEAK_NITS,
    SDR_REFERENCE_WHITE_NITS,
    bt1886_eotf,
    bt1886_inverse_eotf,
    st2084_eotf,
    st2084_inverse_eotf,
)
from datakit.color.ycbcr import rgb_to_ycbcr, ycbcr_to_rgb
from datakit.errors import RecipeError
from datakit.synth.itm import BT2446C_K1, BT2446C_K3, BT2446C_Y_SDR_IP

__all__ = [
    "MASTER_PEAK_PARAMETERS",
    "TONEMAP_OPERATORS",
    "aces2_sdr_output",
    "bind_master_peak",
    "bt2390_eetf",
    "bt2390_eetf_pq",
    "bt2446a",
    "bt2446a_luma_curve",
    "bt2446c_forward",
    "camera_scurve",
    "film_print_look",
    "hable",
    "hard_clip",
    "hue_preserving_display_mapping",
    "operator_parameters",
    "reinhard",
    "sample_tonemap_params",
]

_EPS = 1e-6


def _as_rgb(rgb_nits: np.ndarray) -> np.ndarray:
    x = np.asarray(rgb_nits, dtype=np.float32)
    if x.ndim == 0 or x.shape[-1] != 3:
        raise ValueError(f"expected an array shaped (..., 3), got {x.shape}")
    return np.maximum(x, 0.0)


def _luminance_2020(rgb: np.ndarray) -> np.ndarray:
    return rgb @ luminance_weights("bt2020").astype(np.float32)


# --------------------------------------------------------------------------- Reinhard


def reinhard(
    rgb_nits: np.ndarray,
    *,
    key: float = 0.18,
    white: float | None = None,
    log_average_nits: float | None = None,
) -> np.ndarray:
    """Reinhard global operator: ``rgb_nits`` (BT.2020) -> ``rgb_display`` (1.0 = SDR peak).

    Scene luminance ``L`` (BT.2020 weights) is scaled so that the log-average ``L_avg`` (over the
    whole array, or ``log_average_nits``) lands on ``key``: ``Lm = key L / L_avg``; then
    ``Ld = Lm (1 + Lm / white^2) / (1 + Lm)`` (Reinhard et al. 2002, eq. 4), with ``white`` the
    smallest scaled luminance that maps to 1 (default: the largest ``Lm`` present). Colour ratios
    are kept: ``rgb_out = rgb * Ld / L``.
    """
    rgb = _as_rgb(rgb_nits)
    lum = _luminance_2020(rgb)
    if log_average_nits is None:
        log_average_nits = float(np.exp(np.mean(np.log(lum.astype(np.float64) + 1e-4))))
    lm = lum * np.float32(key / max(log_average_nits, _EPS))
    lw = float(lm.max()) if white is None else float(white)
    lw = max(lw, _EPS)
    ld = lm * (1.0 + lm / np.float32(lw * lw)) / (1.0 + lm)
    ratio = np.where(lum > _EPS, ld / np.maximum(lum, _EPS), 0.0).astype(np.float32)
    return rgb * ratio[..., None]


# --------------------------------------------------------------------------- Hable (filmic)


def _hable_curve(x: np.ndarray, a: float, b: float, c: float, d: float, e: float, f: float) -> np.ndarray:
    return (x * (a * x + c * b) + d * e) / (x * (a * x + b) + d * f) - e / f


def hable(
    rgb_nits: np.ndarray,
    *,
    exposure_bias: float = 2.0,
    white_point: float = 11.2,
    shoulder_strength: float = 0.15,
    linear_strength: float = 0.50,
    linear_angle: float = 0.10,
    toe_strength: float = 0.20,
    toe_numerator: float = 0.02,
    toe_denominator: float = 0.30,
) -> np.ndarray:
    """Hable filmic operator (the "Uncharted 2" curve), per channel: ``rgb_nits`` -> ``rgb_display``.

    ``x = exposure_bias * rgb_nits / 203`` (scene relative to the BT.2408 HDR reference white), then
    ``f(x) / f(white_point)`` with ``f(x) = (x(Ax + CB) + DE) / (x(Ax + B) + DF) - E/F`` and the
    curve constants A..F as keyword parameters (defaults: Hable's published values). Working per
    channel, bright saturated colours desaturate towards white as film does.
    """
    rgb = _as_rgb(rgb_nits)
    consts = (shoulder_strength, linear_strength, linear_angle, toe_strength, toe_numerator, toe_denominator)
    x = rgb * np.float32(exposure_bias / SDR_REFERENCE_WHITE_NITS)
    w = float(_hable_curve(np.float64(white_point), *consts))
    return (_hable_curve(x, *consts) / np.float32(w)).astype(np.float32)


# --------------------------------------------------------------------------- BT.2446 method A

_BT2446A_PERCEPTUAL_GAMMA = 2.4  # exponent inside rho = 1 + 32 (L / 10000)^(1/2.4), BT.2446-1 eq. (4.1)


def _bt2446a_rho(peak_nits: float) -> float:
    return 1.0 + 32.0 * (peak_nits / 10000.0) ** (1.0 / _BT2446A_PERCEPTUAL_GAMMA)


def bt2446a_luma_curve(y_hdr: np.ndarray, l_hdr: float = 1000.0, l_sdr: float = 100.0) -> np.ndarray:
    """BT.2446-1 method A luma tone curve: HDR ``Y'`` (gamma-2.4 luma of ``nits / l_hdr``) -> SDR ``Y'``.

    Steps (Report ITU-R BT.2446-1, section 4.1): perceptual linearisation
    ``Y'p = log(1 + (rho_HDR - 1) Y') / log(rho_HDR)``; knee
    ``Y'c = 1.077 Y'p`` (``Y'p <= 0.7399``), ``-1.1510 Y'p^2 + 2.7811 Y'p - 0.6302``
    (``<= 0.9909``), ``0.5 Y'p + 0.5`` above; back to gamma domain
    ``Y'sdr = (rho_SDR^Y'c - 1) / (rho_SDR - 1)`` with ``rho = 1 + 32 (L / 10000)^(1/2.4)``.
    """
    y = np.asarray(y_hdr, dtype=np.float32)
    rho_h, rho_s = _bt2446a_rho(l_hdr), _bt2446a_rho(l_sdr)
    yp = np.log1p(np.float32(rho_h - 1.0) * y) / np.float32(np.log(rho_h))
    yc = np.where(
        yp <= 0.7399,
        1.077 * yp,
        np.where(yp <= 0.9909, (-1.1510 * yp + 2.7811) * yp - 0.6302, 0.5 * yp + 0.5),
    )
    return ((np.power(np.float32(rho_s), yc) - 1.0) / np.float32(rho_s - 1.0)).astype(np.float32)


def bt2446a(rgb_nits: np.ndarray, *, l_hdr: float = 1000.0, l_sdr: float = SDR_PEAK_NITS) -> np.ndarray:
    """ITU-R BT.2446-1 method A HDR -> SDR conversion: ``rgb_nits`` (BT.2020) -> ``rgb_display``.

    The HDR display light is normalized to ``l_hdr`` (the content peak the converter assumes;
    brighter light is clipped) and gamma-encoded ``R' = (R / l_hdr)^(1/2.4)`` (BT.1886, black 0);
    luma ``Y'`` (BT.2020 NCL weights) follows :func:`bt2446a_luma_curve`; colour correction
    ``Cb,Cr *= Y'sdr / (1.1 Y')`` and ``Y'tmo = Y'sdr - max(0.1 Cr, 0)``; back to R'G'B' (still
    BT.2020) and decoded with the BT.1886 EOTF to SDR display light (1.0 = ``l_sdr``).
    A neutral ``l_hdr`` input maps to 1.0; 0 maps to 0.
    """
    rgb = _as_rgb(rgb_nits)
    rgb_p = bt1886_inverse_eotf(np.minimum(rgb / np.float32(l_hdr), 1.0), white_nits=1.0)
    ycc = rgb_to_ycbcr(rgb_p, "bt2020nc")
    y = ycc[..., 0]
    y_sdr = bt2446a_luma_curve(y, l_hdr, l_sdr)
    f = np.where(y > _EPS, y_sdr / (1.1 * np.maximum(y, _EPS)), 0.0).astype(np.float32)
    cb, cr = ycc[..., 1] * f, ycc[..., 2] * f
    y_tmo = y_sdr - np.maximum(0.1 * cr, 0.0)
    rgb_sdr = ycbcr_to_rgb(np.stack([y_tmo, cb, cr], axis=-1).astype(np.float32), "bt2020nc")
    return np.asarray(bt1886_eotf(np.maximum(rgb_sdr, 0.0), white_nits=1.0), dtype=np.float32)


# --------------------------------------------------------------------------- BT.2390 EETF


def bt2390_eetf_pq(
    pq: np.ndarray,
    *,
    source_min: float = 0.0,
    source_max: float = 1000.0,
    target_min: float = 0.0,
    target_max: float = SDR_PEAK_NITS,
) -> np.ndarray:
    """ITU-R BT.2390-4 section 5.4.1 EETF on PQ code values: mastering range -> target display range.

    ``E1 = (PQ - PQ(Lb)) / (PQ(Lw) - PQ(Lb))`` clipped to [0, 1] (``Lb, Lw`` = ``source_min``,
    ``source_max`` cd/m^2); ``maxLum``, ``minLum`` the same normalization of ``target_max``,
    ``target_min``; knee start ``KS = 1.5 maxLum - 0.5``; below ``KS`` identity, above the Hermite
    spline ``P(E1) = (2T^3 - 3T^2 + 1) KS + (T^3 - 2T^2 + T)(1 - KS) + (-2T^3 + 3T^2) maxLum`` with
    ``T = (E1 - KS) / (1 - KS)``; black lift ``E3 = E2 + minLum (1 - E2)^4``; back to PQ
    ``E4 = E3 (PQ(Lw) - PQ(Lb)) + PQ(Lb)``. Returns PQ code values (float32).
    """
    pq = np.asarray(pq, dtype=np.float32)
    pq_b, pq_w = (float(st2084_inverse_eotf(np.float64(v))) for v in (source_min, source_max))
    span = pq_w - pq_b
    if span <= 0:
        raise ValueError(f"bt2390_eetf: source_max ({source_max}) must exceed source_min ({source_min})")
    max_lum = (float(st2084_inverse_eotf(np.float64(target_max))) - pq_b) / span
    min_lum = (float(st2084_inverse_eotf(np.float64(target_min))) - pq_b) / span
    e1 = np.clip((pq - np.float32(pq_b)) / np.float32(span), 0.0, 1.0)
    ks = 1.5 * max_lum - 0.5
    e2 = e1
    if ks < 1.0:
        t = (e1 - np.float32(ks)) / np.float32(1.0 - ks)
        t2, t3 = t * t, t * t * t
        spline = (2 * t3 - 3 * t2 + 1) * ks + (t3 - 2 * t2 + t) * (1 - ks) + (-2 * t3 + 3 * t2) * max_lum
        e2 = np.where(e1 < ks, e1, spline)
    e3 = e2 + np.float32(max(min_lum, 0.0)) * (1.0 - e2) ** 4
    return (e3 * np.float32(span) + np.float32(pq_b)).astype(np.float32)


def bt2390_eetf(
    rgb_nits: np.ndarray,
    *,
    source_min: float = 0.0,
    source_max: float = 1000.0,
    target_min: float = 0.0,
    target_max: float = SDR_PEAK_NITS,
    mode: str = "maxrgb",
) -> np.ndarray:
    """BT.2390 EETF tone mapping to an SDR display: ``rgb_nits`` (BT.2020) -> ``rgb_display``.

    :func:`bt2390_eetf_pq` maps the mastering range [``source_min``, ``source_max``] onto the
    target display range [``target_min``, ``target_max``] in the PQ domain; the result in cd/m^2
    is divided by ``target_max`` (SDR display light, 1.0 = SDR peak). ``mode``: ``"rgb"`` applies
    the EETF to each PQ channel (BT.2390's simplest form, hue shifts in highlights), ``"maxrgb"``
    to ``max(R, G, B)`` and scales the pixel by the ratio (hue kept), ``"luminance"`` to the
    BT.2020 luminance. Content below the knee passes unchanged in cd/m^2.
    """
    rgb = _as_rgb(rgb_nits)
    kw = {"source_min": source_min, "source_max": source_max, "target_min": target_min, "target_max": target_max}

    def curve(nits: np.ndarray) -> np.ndarray:
        return np.asarray(st2084_eotf(bt2390_eetf_pq(st2084_inverse_eotf(nits), **kw)), dtype=np.float32)

    if mode == "rgb":
        out = curve(rgb)
    elif mode in ("maxrgb", "luminance"):
        m = rgb.max(axis=-1) if mode == "maxrgb" else _luminance_2020(rgb)
        ratio = np.where(m > _EPS, curve(m) / np.maximum(m, _EPS), 0.0).astype(np.float32)
        out = rgb * ratio[..., None]
    else:
        raise ValueError(f"bt2390_eetf: mode must be 'rgb', 'maxrgb' or 'luminance', got {mode!r}")
    return (out / np.float32(target_max)).astype(np.float32)


# --------------------------------------------------------------------------- camera S-curve


def camera_scurve(
    rgb_nits: np.ndarray, *, clip_nits: float = 200.0, contrast: float = 1.4, gamma: float = 2.4
) -> np.ndarray:
    """Camera-like rendering: per-channel hard clip at ``clip_nits``, then an S-curve.

    ``x = min(rgb_nits / clip_nits, 1)`` per channel (sensor saturation: highlights burn out and
    shift hue like a real camera), ``v = x^(1/gamma)``, S-curve
    ``s = v^c / (v^c + (1 - v)^c)`` (``c = contrast``; 1 is the identity, larger deepens shadows
    and lifts mid-highlights around v = 0.5), then ``rgb_display = s^gamma``.
    """
    rgb = _as_rgb(rgb_nits)
    x = np.minimum(rgb / np.float32(clip_nits), 1.0)
    v = np.power(x, np.float32(1.0 / gamma))
    vc = np.power(v, np.float32(contrast))
    s = vc / np.maximum(vc + np.power(1.0 - v, np.float32(contrast)), _EPS)
    return np.power(s, np.float32(gamma)).astype(np.float32)


# --------------------------------------------------------------------------- ACES 2.0 SDR (OpenColorIO)


def _nearest_aces_peak(peak_nits: float) -> int:
    from datakit.synth.aces import ACES_HDR_PEAKS

    return min(ACES_HDR_PEAKS, key=lambda p: abs(np.log(p / max(peak_nits, 1.0))))


def aces2_sdr_output(rgb_nits: np.ndarray, *, hdr_peak_nits: float = 0.0, hdr_primaries: str = "bt2020") -> np.ndarray:
    """ACES 2.0 SDR output transform (OpenColorIO's built-in studio config): ``rgb_nits`` -> ``rgb_display``.

    With ``hdr_peak_nits`` 0 the input is scene light (1.0 ACES scene-linear = 100 cd/m^2, see
    :mod:`datakit.synth.aces`); otherwise it is an HDR master, first taken back to scene light by OCIO's inverse
    of the ``ACES 2.0 - HDR <peak> nits (<primaries>)`` view (the ACES view nearest ``hdr_peak_nits``), as an
    HDR-to-SDR conversion through ACES does; an ACES 2.0 master of that view comes back as its own scene. Then
    the view ``ACES 2.0 - SDR 100 nits (Rec.709)`` on the ``Rec.1886 Rec.709 - Display``, decoded by the BT.1886
    EOTF and returned in BT.2020 primaries (1.0 = SDR peak).
    """
    from datakit.color.gamut import convert_gamut
    from datakit.synth.aces import aces2_hdr_to_scene, aces2_sdr_display

    rgb = _as_rgb(rgb_nits)
    if hdr_peak_nits > 0:
        rgb = aces2_hdr_to_scene(rgb, _nearest_aces_peak(hdr_peak_nits), hdr_primaries)
    return np.asarray(convert_gamut(aces2_sdr_display(rgb), "bt709", "bt2020"), dtype=np.float32)


# --------------------------------------------------------------------------- BT.2446 method C (forward)


def bt2446c_forward(
    rgb_nits: np.ndarray,
    *,
    k1: float = BT2446C_K1,
    k3: float = BT2446C_K3,
    y_sdr_ip: float = BT2446C_Y_SDR_IP,
    alpha: float = 0.05,
    sdr_white_nits: float = SDR_PEAK_NITS,
    gamut_mapping: str = "soft",
) -> np.ndarray:
    """Report ITU-R BT.2446-1 method C HDR -> SDR (section 6.1): ``rgb_nits`` (BT.2020) -> ``rgb_display``.

    Crosstalk matrix (6.1.2: ``1 - 2 alpha`` on the diagonal, ``alpha`` elsewhere), luminance ``Y`` (BT.2020
    weights; the method's conversion to Yxy keeps ``x, y``), the tone curve of 6.1.4 on ``Y`` in cd/m^2
    (:func:`datakit.synth.itm.bt2446c_curve`: ``k1 Y`` up to the inflection point, ``k2 ln(Y / Y_ip - k3) + k4``
    above) with the chromaticity kept (all components scaled by ``Y_sdr / Y``), the inverse crosstalk matrix
    (6.1.5), and display light relative to ``sdr_white_nits``. The curve reaches 100 cd/m^2 at about 333 cd/m^2
    and 118 at 1,000: brighter light leaves [0, 1] and is clipped by the chain's final clip. HDRTVDM pairs method C
    with a gamut mapping to BT.709: ``gamut_mapping`` ``soft`` applies the project's soft compression
    (:func:`datakit.synth.gamut_map.gamut_compress`) here, ``clip`` leaves it to the chain's drawn gamut step.
    Output in BT.2020 primaries.
    """
    from datakit.color.gamut import convert_gamut
    from datakit.synth.gamut_map import gamut_compress
    from datakit.synth.itm import bt2446c_crosstalk, bt2446c_curve

    rgb = _as_rgb(rgb_nits).astype(np.float64)
    if alpha:
        rgb = rgb @ bt2446c_crosstalk(alpha).T
    y = rgb @ luminance_weights("bt2020")
    y_sdr = bt2446c_curve(y, k1, k3, y_sdr_ip)
    rgb = rgb * np.where(y > 1e-9, y_sdr / np.maximum(y, 1e-9), 0.0)[..., None]
    if alpha:
        rgb = rgb @ np.linalg.inv(bt2446c_crosstalk(alpha)).T
    out = np.maximum(rgb / sdr_white_nits, 0.0).astype(np.float32)
    if gamut_mapping == "soft":
        out = np.asarray(convert_gamut(gamut_compress(out), "bt709", "bt2020"), dtype=np.float32)
    elif gamut_mapping != "clip":
        raise ValueError(f"bt2446c: gamut_mapping must be 'soft' or 'clip', got {gamut_mapping!r}")
    return out


# --------------------------------------------------------------------------- hue-preserving display mapping


def hue_preserving_display_mapping(
    rgb_nits: np.ndarray,
    *,
    source_peak: float = 1000.0,
    sdr_white_nits: float = SDR_REFERENCE_WHITE_NITS,
    desaturation: float = 0.75,
    knee: float = 0.6,
) -> np.ndarray:
    """Luminance-based display mapping with highlight desaturation (what players and streaming pipelines apply).

    The BT.2020 luminance goes through the BT.2390 EETF (:func:`bt2390_eetf_pq`, PQ domain) from
    [0, ``source_peak``] to [0, ``sdr_white_nits``], the light that becomes SDR white (default: the ITU-R BT.2408
    HDR reference white, 203 cd/m^2, as players that map HDR reference white to SDR white do), and the pixel is
    scaled by the ratio, so hue and saturation are kept; above ``knee`` of the output luminance the colour is
    pulled toward its grey by up to ``desaturation`` (a smoothstep from ``knee`` to 1), and colours that would
    still leave the display (``max(R, G, B) > 1``) are desaturated at constant luminance until they fit, instead
    of clipping channels (no hue shift). Written from this description; ``rgb_display`` in BT.2020.
    """
    rgb = _as_rgb(rgb_nits)
    lum = _luminance_2020(rgb)
    kw = {"source_min": 0.0, "source_max": max(source_peak, sdr_white_nits + 1.0), "target_max": sdr_white_nits}
    mapped = np.asarray(st2084_eotf(bt2390_eetf_pq(st2084_inverse_eotf(lum), **kw)), np.float32)
    mapped = mapped / np.float32(sdr_white_nits)
    ratio = np.where(lum > _EPS, mapped / np.maximum(lum, _EPS), 0.0).astype(np.float32)
    out = rgb * ratio[..., None]
    y = mapped[..., None]
    t = np.clip((y - np.float32(knee)) / np.float32(max(1.0 - knee, _EPS)), 0.0, 1.0)
    w = np.float32(desaturation) * t * t * (3.0 - 2.0 * t)
    out = out + w * (y - out)
    top = out.max(axis=-1, keepdims=True)
    fit = np.where(top > 1.0, (1.0 - y) / np.maximum(top - y, _EPS), 1.0)
    out = y + np.clip(fit, 0.0, 1.0) * (out - y)
    return np.maximum(out, 0.0).astype(np.float32)


# --------------------------------------------------------------------------- colourist-style film look


def film_print_look(
    rgb_nits: np.ndarray,
    *,
    exposure_stops: float = 0.0,
    contrast: float = 1.6,
    grey_nits: float = 20.0,
    grey_display: float = 0.15,
    warmth: float = 0.0,
) -> np.ndarray:
    """A colourist-style film look: a characteristic (Hurter-Driffield) curve per channel in log exposure.

    Per channel ``e = log2(c 2^exposure_stops / grey_nits) + (+warmth, 0, -warmth)`` (a print's colour balance:
    positive warms the picture), then the logistic ``1 / (1 + exp(-contrast (e - e0)))`` with ``e0`` placing
    scene grey (``grey_nits``) at ``grey_display`` of SDR display light. The toe crushes shadows, the shoulder
    approaches 1 without a hard clip, and since each channel is curved on its own, saturated highlights shift
    hue toward the secondaries and white (the film look that grading tools emulate). ``rgb_display`` in BT.2020.
    """
    rgb = _as_rgb(rgb_nits)
    bias = np.array([warmth, 0.0, -warmth], np.float32)
    e = np.log2(np.maximum(rgb, 1e-6) * np.float32(2.0**exposure_stops / grey_nits)) + bias
    e0 = -float(np.log(1.0 / grey_display - 1.0)) / contrast
    return (1.0 / (1.0 + np.exp(-np.float32(contrast) * (e + np.float32(e0))))).astype(np.float32)


# --------------------------------------------------------------------------- hard clip


def hard_clip(rgb_nits: np.ndarray, *, exposure_stops: float = 0.0, white_nits: float = SDR_PEAK_NITS) -> np.ndarray:
    """The cheapest conversion in the wild: exposure, then a hard clip of each channel at SDR white.

    ``rgb_display = min(rgb_nits 2^exposure_stops / white_nits, 1)`` per channel: everything above
    ``white_nits`` burns out (and shifts hue where only some channels clip). BT.2020 primaries.
    """
    rgb = _as_rgb(rgb_nits)
    return np.minimum(rgb * np.float32(2.0**exposure_stops / white_nits), 1.0).astype(np.float32)


# --------------------------------------------------------------------------- registry and sampling

TONEMAP_OPERATORS: dict[str, Callable[..., np.ndarray]] = {
    "reinhard": reinhard,
    "hable": hable,
    "bt2446a": bt2446a,
    "bt2390_eetf": bt2390_eetf,
    "camera_scurve": camera_scurve,
    "aces2_sdr": aces2_sdr_output,
    "bt2446c": bt2446c_forward,
    "display_mapping": hue_preserving_display_mapping,
    "film_look": film_print_look,
    "clip": hard_clip,
}
"""Operator name -> function ``f(rgb_nits, **params) -> rgb_display``."""

MASTER_PEAK_PARAMETERS: dict[str, str] = {
    "bt2446a": "l_hdr",
    "bt2390_eetf": "source_max",
    "aces2_sdr": "hdr_peak_nits",
    "display_mapping": "source_peak",
}
"""Operator -> its parameter for the peak of the HDR input: set to the mastering display's peak when the input is a
graded master (converters read it from the SMPTE ST 2086 metadata)."""


def bind_master_peak(name: str, params: Mapping[str, Any], peak_nits: float, primaries: str) -> dict[str, Any]:
    """``params`` of operator ``name`` with its input-peak parameter (and ACES's primaries) set from the master."""
    out = dict(params)
    if name in MASTER_PEAK_PARAMETERS:
        out[MASTER_PEAK_PARAMETERS[name]] = float(peak_nits)
    if name == "aces2_sdr":
        out["hdr_primaries"] = primaries
    return out


def operator_parameters(name: str) -> tuple[str, ...]:
    """Names of the keyword parameters of operator ``name`` (RecipeError if unknown)."""
    if name not in TONEMAP_OPERATORS:
        raise RecipeError(f"unknown tone-mapping operator {name!r} (known: {', '.join(TONEMAP_OPERATORS)})")
    sig = inspect.signature(TONEMAP_OPERATORS[name])
    return tuple(p.name for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY)


def sample_value(spec: Any, rng: np.random.Generator, where: str) -> Any:
    """Draw one value from a recipe range spec.

    ``[lo, hi]`` (two numbers) -> uniform float; a list of strings -> uniform choice; a number,
    string or ``None`` -> itself. Anything else raises :class:`RecipeError`.
    """
    if spec is None or isinstance(spec, (bool, int, float, str)):
        return spec
    if isinstance(spec, Sequence) and len(spec) > 0 and all(isinstance(v, str) for v in spec):
        return str(spec[int(rng.integers(len(spec)))])
    if isinstance(spec, Sequence) and len(spec) == 2 and all(isinstance(v, (int, float)) for v in spec):
        lo, hi = float(spec[0]), float(spec[1])
        if lo > hi:
            raise RecipeError(f"{where}: range [{lo}, {hi}] has min > max")
        return float(rng.uniform(lo, hi))
    raise RecipeError(f"{where}: expected [min, max], a list of names or a fixed value, got {spec!r}")


def sample_tonemap_params(
    name: str, rng: np.random.Generator, ranges: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Random keyword parameters for operator ``name`` within ``ranges`` (``{param: spec}``).

    Each spec is drawn by :func:`sample_value`; parameters not in ``ranges`` keep the operator's
    default. Unknown operators or parameter names raise :class:`RecipeError`. Keys are drawn in
    sorted order so the result depends only on ``rng`` and ``ranges``.
    """
    allowed = operator_parameters(name)
    out: dict[str, Any] = {}
    for key in sorted(ranges or {}):
        if key not in allowed:
            raise RecipeError(f"tone-mapping operator {name!r} has no parameter {key!r} (has: {', '.join(allowed)})")
        out[key] = sample_value((ranges or {})[key], rng, f"tonemap.{name}.{key}")
    return out
