"""Black bars and the geometry they imply: the active picture of each stream and the initial SDR -> HDR mapping."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from datakit.pairs.align.confidence import smoothstep
from datakit.pairs.align.results import SpatialAlignment

if TYPE_CHECKING:
    from datakit.pairs.analysis import Thumbnails

MAX_BAR_LEVEL = 0.06  # Y' (normalized) above which a line is picture, never a black bar


def detect_active_area(
    row_profile: np.ndarray, col_profile: np.ndarray, quantile: float = 0.9
) -> tuple[tuple[int, int, int, int], float]:
    """Active picture ``(x, y, w, h)`` inside a frame from per-frame row/column mean Y' profiles.

    ``row_profile`` (P, H) and ``col_profile`` (P, W): mean Y' of every full-resolution row / column on P
    frames. Each line is summarized by a high quantile over the frames (a dark scene is dark only for a
    while; bars are black in every frame), then lines brighter than the bar level plus 10 % of the picture
    level (at least 0.01) are picture. Returns the box and a score in [0, 1] (how clearly the picture
    stands out of the bars; 1 when there are no bars and the picture is not black). Lines brighter than
    ``MAX_BAR_LEVEL`` are never bars.
    """

    def extent(profile: np.ndarray) -> tuple[int, int, float]:
        stat = np.quantile(profile.astype(np.float64), quantile, axis=0)
        bar = float(stat.min())
        ref = float(np.quantile(stat, 0.75))
        if bar > MAX_BAR_LEVEL:  # no line is dark enough to be a bar
            return 0, stat.size, smoothstep(ref, 0.01, 0.05)
        threshold = bar + max(0.01, 0.1 * (ref - bar))
        active = np.flatnonzero(stat > threshold)
        if active.size == 0:
            return 0, stat.size, 0.0
        first, last = int(active[0]), int(active[-1])
        clarity = smoothstep(ref - bar, 0.01, 0.05)
        return first, last + 1 - first, clarity

    y, h, cy = extent(row_profile)
    x, w, cx = extent(col_profile)
    return (x, y, w, h), min(cx, cy)


def picture_areas(
    thumbs_hdr: Thumbnails, thumbs_sdr: Thumbnails
) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int], float]:
    hdr_area, hdr_clear = detect_active_area(thumbs_hdr.row_profile, thumbs_hdr.col_profile)
    sdr_area, sdr_clear = detect_active_area(thumbs_sdr.row_profile, thumbs_sdr.col_profile)
    return hdr_area, sdr_area, min(hdr_clear, sdr_clear)


def initial_spatial(
    thumbs_hdr: Thumbnails, thumbs_sdr: Thumbnails, hdr_area: tuple, sdr_area: tuple, clarity: float
) -> SpatialAlignment:
    """Geometry from the black bars alone: the SDR active picture covers the HDR active picture."""
    reasons = []
    sx, sy = hdr_area[2] / sdr_area[2], hdr_area[3] / sdr_area[3]
    if abs(sx / sy - 1.0) > 0.02:
        reasons.append(
            f"SDR picture {sdr_area[2]}x{sdr_area[3]} and HDR picture {hdr_area[2]}x{hdr_area[3]} have different "
            f"aspect ratios (cropped version, or subtitles in the bars?)"
        )
    if clarity < 0.5:
        reasons.append("the frames are too dark to find black bars reliably")
    return SpatialAlignment(
        sdr_size=thumbs_sdr.frame_size,
        hdr_size=thumbs_hdr.frame_size,
        sdr_picture=tuple(int(v) for v in sdr_area),  # type: ignore[arg-type]
        hdr_picture=tuple(int(v) for v in hdr_area),  # type: ignore[arg-type]
        scale_x=sx,
        scale_y=sy,
        tx=float(hdr_area[0]),
        ty=float(hdr_area[1]),
        confidence=clarity,
        reasons=tuple(reasons),
    )
