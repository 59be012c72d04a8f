"""The temporal check of one clip on the thumbnails an analysis kept: its HDR frames against their neighbours."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from datakit.pairs.align.confidence import margin_confidence
from datakit.pairs.align.features import frame_features, grid_size, thumb_grid
from datakit.pairs.align.results import SpatialAlignment
from datakit.pairs.align.tracking import stretch_margin

if TYPE_CHECKING:
    from datakit.pairs.analysis import Thumbnails


@dataclass(frozen=True)
class ClipTiming:
    """The temporal check of one clip: ``shift`` HDR frames to add to the predicted ones (0: as predicted),
    ``margin`` (z-score of that shift against the next best one, :func:`stretch_margin`; None: nothing to
    compare) and ``clear`` (the margin tells the shift from its neighbours: :func:`margin_confidence` >= 0.5)."""

    shift: int
    margin: float | None
    clear: bool


CLIP_REACH = 3  # HDR frames on either side of the predicted ones a clip is checked against
MIN_CHECK_FRAMES = 5  # SDR frames a clip's timing is checked on, at least (its own, widened)


def frames_to_check(frames: Sequence[int], frame_count: int, minimum: int = MIN_CHECK_FRAMES) -> list[int]:
    """The SDR frames a clip's timing is checked on: its own consecutive ``frames``, widened on both sides (within
    the ``frame_count`` frames of the stream) to at least ``minimum``. A clip of one frame gives
    :func:`stretch_margin` nothing to measure a spread on, and three frames little; the frames beside the clip
    are mapped by the same alignment, so a shift or a doubt there concerns the clip too."""
    first, last = int(frames[0]), int(frames[-1])
    while last - first + 1 < minimum and (first > 0 or last < frame_count - 1):
        first = max(0, first - 1)
        if last - first + 1 < minimum:
            last = min(frame_count - 1, last + 1)
    return list(range(first, last + 1))


def check_clip_timing(
    thumbs_hdr: Thumbnails,
    thumbs_sdr: Thumbnails,
    spatial: SpatialAlignment,
    sdr_frames: Sequence[int],
    hdr_frames: Sequence[int],
    reach: int = CLIP_REACH,
) -> ClipTiming | None:
    """Compare a clip's SDR frames with the HDR frames predicted for them and those ``-reach..reach`` frames
    away, on the luma thumbnails the analysis kept (nothing is decoded): structure vectors
    (:func:`frame_features`) of both active pictures on the finest common grid the thumbnails allow. None when
    a frame has no thumbnail (sparse analyses summarize windows only)."""

    def positions(thumbs: Thumbnails, frames: Sequence[int]) -> np.ndarray | None:
        frames = np.asarray(frames, np.int64)
        pos = np.searchsorted(thumbs.indices, frames)
        if np.any(pos >= thumbs.count) or np.any(thumbs.indices[np.minimum(pos, thumbs.count - 1)] != frames):
            return None
        return pos

    shifts = np.arange(-reach, reach + 1)
    wanted = np.asarray(hdr_frames, np.int64)[:, None] + shifts[None, :]
    pos_s = positions(thumbs_sdr, sdr_frames)
    inside = (wanted >= thumbs_hdr.indices[0]) & (wanted <= thumbs_hdr.indices[-1])
    pos_h = positions(thumbs_hdr, np.unique(wanted[inside]))
    if pos_s is None or pos_h is None:
        return None
    hdr_area, sdr_area = spatial.hdr_picture, spatial.sdr_picture
    gw, gh = grid_size(hdr_area, [(thumbs_hdr, hdr_area), (thumbs_sdr, sdr_area)])
    feat_s, valid_s = frame_features(thumb_grid(thumbs_sdr.select(pos_s), sdr_area, gw, gh))
    feat_h, valid_h = frame_features(thumb_grid(thumbs_hdr.select(pos_h), hdr_area, gw, gh))
    row = {int(f): k for k, f in enumerate(np.unique(wanted[inside]))}
    sims = np.full(wanted.shape, np.nan, np.float32)
    for (k, d), frame in np.ndenumerate(wanted):
        r = row.get(int(frame))
        if r is not None and valid_s[k] and valid_h[r]:
            sims[k, d] = float(feat_s[k] @ feat_h[r])
    if not np.isfinite(sims).any():
        return None
    best = int(np.nanargmax(np.nanmean(sims, axis=0)))
    gains = np.delete(sims[:, [best]] - sims, best, axis=1)
    margin = stretch_margin(gains)
    return ClipTiming(int(shifts[best]), margin, margin_confidence(margin) >= 0.5)
