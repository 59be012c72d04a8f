"""Quality gates: reasons to reject a clip, recorded in the manifest. Thresholds come from the recipe.

Each gate returns a reason code (``"black"``, ``"static"``, ``"near_duplicate"``, ``"not_hdr"``) when the clip
fails, or ``None`` when it passes, so ``if reason := is_black(...)`` reads naturally.

Luma inputs (``luma_frames``) are non-linear luma Y' thumbnails of a clip, ``(T, h, w)`` or one frame
``(h, w)``: float Y' in [0, 1] (the ``ycbcr`` Y' of ARCHITECTURE.md, no range offsets), or uint8 / uint16 code
values (divided by 255 / 65535, full range). The SDR side's Y' (BT.709) is the intended input.

HDR statistics act on ``rgb_pq``: SMPTE ST 2084 PQ code values of BT.2020 R'G'B' (ITU-R BT.2100), float in
[0, 1] or uint16 storage codes ``round(rgb_pq * 65535)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from datakit.color.gamut import fraction_outside_gamut, luminance_weights
from datakit.color.transfer import SDR_REFERENCE_WHITE_NITS, st2084_eotf
from datakit.errors import InputError

__all__ = [
    "BLACK",
    "NEAR_DUPLICATE",
    "NOT_HDR",
    "STATIC",
    "clip_signature",
    "hdr_stats",
    "is_black",
    "is_not_hdr",
    "is_static",
    "motion_score",
    "near_duplicates",
]

BLACK = "black"
STATIC = "static"
NEAR_DUPLICATE = "near_duplicate"
NOT_HDR = "not_hdr"


def _luma01(luma_frames: np.ndarray) -> np.ndarray:
    """Y' as float32 (T, h, w) in [0, 1] from float, uint8 or uint16 input shaped (h, w) or (T, h, w)."""
    y = np.asarray(luma_frames)
    if y.ndim == 2:
        y = y[None]
    if y.ndim != 3 or 0 in y.shape:
        raise InputError(f"luma frames must be shaped (T, h, w) or (h, w), got {np.shape(luma_frames)}")
    if y.dtype == np.uint8:
        return y.astype(np.float32) / np.float32(255.0)
    if y.dtype == np.uint16:
        return y.astype(np.float32) / np.float32(65535.0)
    if not np.issubdtype(y.dtype, np.floating):
        raise InputError(f"luma frames must be float, uint8 or uint16, got {y.dtype}")
    return y.astype(np.float32, copy=False)


# ------------------------------------------------------------------------------------------- black, static


def is_black(luma_frames: np.ndarray, *, max_mean: float = 0.03, max_p99: float | None = None) -> str | None:
    """``"black"`` when any frame of the clip is black: its mean Y' is at most ``max_mean`` and, when
    ``max_p99`` is given, its 99th percentile Y' is at most ``max_p99`` too (a dark frame with a few bright
    details, e.g. a night sky with a lamp, then passes). Fades to or from black fail."""
    y = _luma01(luma_frames)
    dark = y.mean(axis=(1, 2)) <= max_mean
    if max_p99 is not None:
        dark &= np.percentile(y.reshape(len(y), -1), 99.0, axis=1) <= max_p99
    return BLACK if bool(dark.any()) else None


def motion_score(luma_frames: np.ndarray) -> float:
    """Mean absolute Y' change between consecutive frames, averaged over the clip (0.0 for one frame)."""
    y = _luma01(luma_frames)
    if len(y) < 2:
        return 0.0
    return float(np.abs(np.diff(y, axis=0)).mean())


def is_static(luma_frames: np.ndarray, *, min_motion: float = 0.002) -> str | None:
    """``"static"`` when :func:`motion_score` is below ``min_motion`` (a frozen or still picture, which teaches
    a temporal model nothing). A single frame cannot be judged and passes."""
    y = _luma01(luma_frames)
    if len(y) < 2:
        return None
    return STATIC if motion_score(y) < min_motion else None


# ------------------------------------------------------------------------------------------- near duplicates


def clip_signature(luma_frames: np.ndarray, size: int = 16) -> np.ndarray:
    """A small fingerprint of a clip for :func:`near_duplicates`: the clip's mean Y' frame shrunk to
    ``size x size`` by area averaging, float32 ``(size * size,)`` in [0, 1]."""
    y = _luma01(luma_frames).mean(axis=0)
    return cv2.resize(y, (size, size), interpolation=cv2.INTER_AREA).reshape(-1)


def near_duplicates(signatures: Sequence[np.ndarray] | np.ndarray, threshold: float) -> list[str | None]:
    """Reject clips too similar to an earlier kept clip of the same source.

    ``signatures``: one array per clip in source order (e.g. :func:`clip_signature`, all the same shape).
    Distance = mean absolute difference of two signatures. Clips are visited in order; a clip whose distance
    to any kept clip is below ``threshold`` gets ``"near_duplicate"``, otherwise it is kept (``None``). The
    first clip is always kept; ``threshold <= 0`` keeps every clip.
    """
    if len(signatures) == 0:
        return []
    sig = np.stack([np.asarray(s, np.float32).reshape(-1) for s in signatures])
    out: list[str | None] = [None] * len(sig)
    if threshold <= 0:
        return out
    kept = [0]
    for i in range(1, len(sig)):
        distance = np.abs(sig[kept] - sig[i]).mean(axis=1)
        if distance.min() < threshold:
            out[i] = NEAR_DUPLICATE
        else:
            kept.append(i)
    return out


# ------------------------------------------------------------------------------------------- really HDR?


def _pq01(rgb_pq: np.ndarray) -> np.ndarray:
    x = np.asarray(rgb_pq)
    if x.ndim < 2 or x.shape[-1] != 3:
        raise InputError(f"hdr_stats needs rgb_pq shaped (..., 3), got {x.shape}")
    if x.dtype == np.uint16:
        return x.reshape(-1, 3).astype(np.float32) / np.float32(65535.0)
    if not np.issubdtype(x.dtype, np.floating):
        raise InputError(f"hdr_stats needs float PQ codes in [0, 1] or uint16 codes, got {x.dtype}")
    return x.reshape(-1, 3).astype(np.float32, copy=False)


def hdr_stats(
    rgb_pq: np.ndarray,
    *,
    white_nits: float = SDR_REFERENCE_WHITE_NITS,
    white_tolerance: float = 0.02,
    gamut_tolerance: float = 0.01,
    min_gamut_nits: float = 1.0,
    max_pixels: int = 1 << 18,
) -> dict[str, Any]:
    """Statistics telling real HDR from SDR placed in a PQ container (one frame or a whole clip).

    ``rgb_pq``: PQ BT.2020 R'G'B' ``(..., 3)``, float in [0, 1] or uint16 codes. Pixels are decoded with the
    SMPTE ST 2084 EOTF to absolute cd/m^2. Keys (all floats except ``pixels``):

    - ``peak_nits``: the largest per-pixel max(R, G, B), the quantity of CTA-861.3 MaxCLL.
    - ``p999_nits``: the 99.9th percentile of per-pixel max(R, G, B).
    - ``p9999_nits``: the 99.99th percentile of per-pixel max(R, G, B): a peak that ignores a few stray pixels
      (4:2:0 and coding overshoots) but still sees a small sun or a specular highlight.
    - ``mean_nits``: mean luminance Y (BT.2020 weights).
    - ``share_above_white``: share of pixels whose luminance Y exceeds the ITU-R BT.2408 reference white
      (``white_nits``, 203) by more than ``white_tolerance`` (2 %, about two 10-bit PQ steps, so that white
      coded to the nearest code value is not counted as a highlight).
    - ``share_outside_bt709``: share of pixels at least ``min_gamut_nits`` bright whose colour lies outside
      the BT.709 gamut by more than ``gamut_tolerance`` of their luminance
      (:func:`datakit.color.gamut.fraction_outside_gamut`; the tolerance absorbs 10-bit quantization).
    - ``pixels``: pixels analysed.

    The peak uses every pixel; the other statistics use an evenly strided subset of at most ``max_pixels``.
    """
    raw = np.asarray(rgb_pq)
    if raw.ndim < 2 or raw.shape[-1] != 3:
        raise InputError(f"hdr_stats needs rgb_pq shaped (..., 3), got {raw.shape}")
    n = raw.size // 3
    if n == 0:
        raise InputError("hdr_stats: no pixels")
    # the peak over every pixel, in the input's own codes (no float copy of a whole clip)
    top = np.nanmax(raw)
    peak = float(st2084_eotf(np.float32(top / 65535.0 if raw.dtype == np.uint16 else top)))
    sub = _pq01(raw.reshape(-1, 3)[:: max(1, -(-n // max_pixels))])
    nits = st2084_eotf(sub)
    max_rgb = nits.max(axis=1)
    luminance = nits @ luminance_weights("bt2020").astype(np.float32)
    return {
        "peak_nits": peak,
        "p999_nits": float(np.percentile(max_rgb, 99.9)),
        "p9999_nits": float(np.percentile(max_rgb, 99.99)),
        "mean_nits": float(luminance.mean()),
        "share_above_white": float(np.mean(luminance > white_nits * (1.0 + white_tolerance))),
        "share_outside_bt709": float(
            fraction_outside_gamut(nits, "bt709", gamut_tolerance, src="bt2020", min_luminance=min_gamut_nits)
        ),
        "pixels": len(sub),
    }


def is_not_hdr(
    stats: dict[str, Any],
    *,
    min_peak_nits: float = 600.0,
    min_share_above_white: float = 0.0005,
    min_share_outside_bt709: float = 0.0,
) -> str | None:
    """``"not_hdr"`` when any enabled requirement on :func:`hdr_stats` fails; a requirement of 0 is disabled.

    - ``p9999_nits >= min_peak_nits``: the robust peak reaches well above SDR levels. An SDR picture mapped
      with BT.2408 white at 203 cd/m^2 peaks at 203; after 4:2:0 and HEVC coding its p99.99 measured 406 over
      eight frames of a test title, while a CC0 sunset whose sun is a few hundred pixels measured 1,919 (and
      its p99.9 only 317, which is why the gate does not use p99.9).
    - ``share_above_white >= min_share_above_white``: some of the picture is highlight, not a lone pixel.
    - ``share_outside_bt709 >= min_share_outside_bt709``: wide-gamut colour (off by default: much real HDR
      content stays inside BT.709).
    """
    checks = (
        (min_peak_nits, stats["p9999_nits"]),
        (min_share_above_white, stats["share_above_white"]),
        (min_share_outside_bt709, stats["share_outside_bt709"]),
    )
    return NOT_HDR if any(limit > 0 and value < limit for limit, value in checks) else None
