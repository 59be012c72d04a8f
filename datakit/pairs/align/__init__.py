"""Temporal and spatial alignment of an HDR10 video and its SDR version (same title, different grade).

The two versions rarely match frame for frame: one starts later, frame rates differ (23.976 / 24 / 25),
sizes differ, one is letterboxed or pillarboxed, frames are missing. The SDR is a tone-mapped, regraded
version of the same pictures, so nothing here compares intensities directly. Every comparison uses

- **ordinal luma**: each frame's luma thumbnail (cropped to its active picture and resampled to a common
  grid) is replaced by its ranks (ties averaged). Ranks do not change under any increasing tone curve, so a
  PQ (SMPTE ST 2084) Y' and a tone-mapped BT.709 / BT.1886 Y' of the same picture give nearly the same ranks;
- **structure**: the rank image minus its Gaussian blur (band-pass), zero mean, unit norm. The dot product of
  two such vectors (a frame similarity in [-1, 1]) is high only for the same picture at the same position,
  falls quickly with motion, and ignores the slow composition that different titles share (sky on top...).

Temporal model. SDR frame ``i`` is shown at SDR time ``i / fps_sdr`` and HDR frame ``j`` at ``j / fps_hdr``
(constant frame rates, times from each stream's first frame). SDR time ``t`` shows HDR time
``ratio * t + offset_seconds``; ``ratio`` is 1 when both play at the same speed (25 fps "PAL speed-up"
versions have ``ratio = 25/24``). Dropped or missing frames make the offset change by a frame: the mapping
is stored as segments of SDR frames with their own offset, plus ranges of SDR frames with no HDR frame.

1. Global search: for each candidate ratio (1, fps_sdr / fps_hdr, 1001/1000, 1000/1001) the SDR feature
   sequence is resampled onto the HDR frame grid and cross-correlated with the HDR sequence over all offsets
   within ``max_offset_seconds`` (FFT over time of 64 random projections of the features, normalized by the
   overlap energies). Cost O(T log T) for T frames.
   When the peak is not distinct (little texture) and hard cuts seen in both streams land on each other at
   one offset, that offset is used (``evidence: "cut"``).
2. Local tracking: every SDR frame is compared with the HDR frames within half a second of each candidate
   line whose peak is close to the best, and a Viterbi path with a fixed cost per offset change follows
   dropped frames (O(T K) for K states). Scores are in evidence units: one unit is how much the frame's own
   similarity drops one HDR frame away, so slow pans vote as clearly as fast ones, and frames whose
   similarity barely changes nearby (no motion, no texture) do not vote. A few dropped frames make the offset
   creep like a slightly wrong ratio, so the ratio whose path scores best wins; a non-unit ratio must save at
   least one offset change.
3. Segments of constant offset: with the same rate (or one SDR frame per HDR frame) the offset is the whole
   frame of the path; otherwise the sub-frame offset whose rounded mapping matches best (the middle of the
   best plateau; a cut bounds it).
4. Verification: an SDR frame with structure whose similarity to its HDR frame is below 0.3 times the median
   (at least 0.15) is reported unmatched. Every stretch of about half a second is rated by how clearly its HDR
   frames beat their neighbours 1-3 frames away (a z-score of the similarity gains); stretches that do not,
   frames around an offset change whose exact position the pictures do not pin, and sub-frame mappings that
   score alike are listed as ``uncertain``. The confidence (:func:`assemble`) is the weakest of the median
   similarity, the distinctness of the correlation peak (or a cut), the share of matched frames and the
   share of certain ones.

Spatial model (pixel-edge coordinates: pixel ``(i, j)`` covers ``[i, i + 1) x [j, j + 1)``)::

    x_hdr = scale_x * (x_sdr - px) + tx        y_hdr = scale_y * (y_sdr - py) + ty

where ``(px, py, pw, ph) = sdr_picture`` is the SDR active picture (black bars excluded) and ``(tx, ty)``
the HDR position of its top-left corner. Black bars are found on full-resolution row/column mean profiles
over many frames (a dark scene is not a bar); the result is checked and refined by registering band-passed
rank images of the full-resolution luma of a few matched frame pairs (phase correlation of patches, scale and
shift per axis fitted to their shifts).
"""

from datakit.pairs.align.clipcheck import CLIP_REACH, ClipTiming, check_clip_timing, frames_to_check
from datakit.pairs.align.confidence import (
    MIN_CONFIDENCE,
    assemble,
    margin_confidence,
    overall_confidence,
    peak_confidence,
    similarity_confidence,
)
from datakit.pairs.align.dense import DenseMatcher, align_thumbnails
from datakit.pairs.align.features import (
    PairFeatures,
    StreamFeatures,
    frame_features,
    pair_features,
    rank_rows,
    shot_changes,
)
from datakit.pairs.align.geometry import detect_active_area
from datakit.pairs.align.keyframes import KeyframeMatcher
from datakit.pairs.align.pair import align_pair
from datakit.pairs.align.registration import refine, refine_alignment, refine_spatial
from datakit.pairs.align.results import (
    Alignment,
    FrameMatches,
    Score,
    Segment,
    SpatialAlignment,
    TemporalAlignment,
    TemporalMatch,
    TemporalMatcher,
)
from datakit.pairs.align.timeline import CutMatch, hdr_windows_for, match_cuts, sparse_windows
from datakit.pairs.align.tracking import frame_evidence, stretch_margin, viterbi

__all__ = [
    "CLIP_REACH",
    "MIN_CONFIDENCE",
    "Alignment",
    "ClipTiming",
    "CutMatch",
    "DenseMatcher",
    "FrameMatches",
    "KeyframeMatcher",
    "PairFeatures",
    "Score",
    "Segment",
    "SpatialAlignment",
    "StreamFeatures",
    "TemporalAlignment",
    "TemporalMatch",
    "TemporalMatcher",
    "align_pair",
    "align_thumbnails",
    "assemble",
    "check_clip_timing",
    "detect_active_area",
    "frame_evidence",
    "frame_features",
    "frames_to_check",
    "hdr_windows_for",
    "margin_confidence",
    "match_cuts",
    "overall_confidence",
    "pair_features",
    "peak_confidence",
    "rank_rows",
    "refine",
    "refine_alignment",
    "refine_spatial",
    "shot_changes",
    "similarity_confidence",
    "sparse_windows",
    "stretch_margin",
    "viterbi",
]
