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
2. Local tracking: every SDR frame is compared with the HDR frames within half a second of each candidate
   line whose peak is close to the best, and a Viterbi path with a fixed cost per offset change follows
   dropped frames (O(T K) for K states). A few dropped frames make the offset creep like a slightly wrong
   ratio, so the ratio whose path scores best wins; a non-unit ratio must save at least one offset change.
3. Segments of constant offset: with the same rate (or one SDR frame per HDR frame) the offset is the whole
   frame of the path; otherwise each SDR structure vector is fitted as a blend of two consecutive HDR ones
   (sub-frame position) and the median over the segment rounds every SDR frame to the right HDR frame.
4. Verification: an SDR frame with structure whose similarity to its HDR frame is below 0.3 times the median
   (at least 0.15) is reported unmatched; the confidence combines that median similarity, the distinctness
   of the correlation peak (a robust z-score against the other offsets) and the share of matched frames.

Spatial model (pixel-edge coordinates: pixel ``(i, j)`` covers ``[i, i + 1) x [j, j + 1)``)::

    x_hdr = scale_x * (x_sdr - px) + tx        y_hdr = scale_y * (y_sdr - py) + ty

where ``(px, py, pw, ph) = sdr_picture`` is the SDR active picture (black bars excluded) and ``(tx, ty)``
the HDR position of its top-left corner. Black bars are found on full-resolution row/column mean profiles
over many frames (a dark scene is not a bar); the result is checked and refined by registering band-passed
rank images of the full-resolution luma of a few matched frame pairs (phase correlation of patches, scale and
shift per axis fitted to their shifts).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from datakit.errors import AlignmentError

if TYPE_CHECKING:
    from datakit.io.probe import VideoInfo
    from datakit.pairs.analysis import Thumbnails

__all__ = [
    "MIN_CONFIDENCE",
    "Alignment",
    "Segment",
    "SpatialAlignment",
    "TemporalAlignment",
    "align_pair",
    "align_thumbnails",
    "check_clip_timing",
    "detect_active_area",
    "frame_features",
    "hdr_windows_for",
    "pair_features",
    "refine_alignment",
    "refine_spatial",
    "sparse_windows",
]

MIN_CONFIDENCE = 0.5
"""Below this overall confidence :func:`align_pair` raises :class:`AlignmentError` (by default)."""

GRID_WIDTH = 64  # feature grid width (height from the HDR picture aspect ratio)
HIGHPASS_SIGMA = 1.5  # Gaussian removed from the rank image, in grid pixels
GLOBAL_DIMS = 64  # the global offset search correlates random projections of the structure vectors
SWITCH_COST = 12.0  # Viterbi cost of an offset change, in evidence units (see frame_evidence)
EVIDENCE_FLOOR = 0.006  # similarity differences below this are coding noise (one evidence unit at least this)
EVIDENCE_CLIP = 20.0  # one frame's evidence against an HDR frame counts at most this many units
MIN_CONTRAST = 0.004  # a frame whose thumbnail Y' standard deviation is below this carries no structure
MAX_BAR_LEVEL = 0.06  # Y' (normalized) above which a line is picture, never a black bar
CLOSE_PEAK = 0.1  # ratios whose correlation peak is within this of the best are all tracked
_RATIO_TOLERANCE = 1e-6


# ============================================================================================ small helpers


def _smoothstep(x: float, lo: float, hi: float) -> float:
    """0 below ``lo``, 1 above ``hi``, a smooth cubic ramp in between."""
    t = min(max((x - lo) / (hi - lo), 0.0), 1.0)
    return float(t * t * (3.0 - 2.0 * t))


def _area_matrix(src_len: int, start: float, length: float, dst_len: int) -> np.ndarray:
    """(dst_len, src_len) float32 weights averaging source pixels over ``[start, start + length)`` into
    ``dst_len`` equal bins (pixel-edge coordinates; an area / box resampling, like ``cv2.INTER_AREA``)."""
    edges = start + length * np.arange(dst_len + 1, dtype=np.float64) / dst_len
    lo, hi = edges[:-1, None], edges[1:, None]
    pix = np.arange(src_len, dtype=np.float64)[None, :]
    overlap = np.clip(np.minimum(hi, pix + 1.0) - np.maximum(lo, pix), 0.0, None)
    return (overlap / np.maximum(overlap.sum(axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _blur_stack(images: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of every image of a float32 stack (N, h, w), edges renormalized (normalized convolution:
    pixels outside the image do not count). Two OpenCV separable passes over the whole stack laid out so that
    no pass crosses from one image into the next."""
    import cv2

    n, h, w = images.shape
    radius = max(1, math.ceil(3 * sigma))
    kernel = cv2.getGaussianKernel(2 * radius + 1, sigma).astype(np.float32)
    one = np.ones((1, 1), np.float32)
    border = cv2.BORDER_CONSTANT

    def passes(stack: np.ndarray) -> np.ndarray:
        m = stack.shape[0]
        rows = cv2.sepFilter2D(stack.reshape(m * h, w), -1, kernel, one, borderType=border)  # along x
        cols = np.ascontiguousarray(rows.reshape(m, h, w).transpose(1, 0, 2)).reshape(h, m * w)
        cols = cv2.sepFilter2D(cols, -1, one, kernel, borderType=border)  # along y, image by image
        return cols.reshape(h, m, w).transpose(1, 0, 2)

    weight = passes(np.ones((1, h, w), np.float32))[0]
    out = np.empty_like(images, dtype=np.float32)
    for start in range(0, n, 8192):  # bounded temporary memory
        out[start : start + 8192] = passes(np.ascontiguousarray(images[start : start + 8192], np.float32))
    return out / weight


def _separable(images: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``rows @ image @ cols.T`` for every image of a stack (N, h, w) -> (N, rows.shape[0], cols.shape[0]),
    as two large matrix products (a batched matmul of small matrices is much slower)."""
    n, h, w = images.shape
    out = (images.reshape(n * h, w) @ cols.T).reshape(n, h, cols.shape[0])
    out = (out.transpose(0, 2, 1).reshape(-1, h) @ rows.T).reshape(n, cols.shape[0], rows.shape[0])
    return np.ascontiguousarray(out.transpose(0, 2, 1))


def _rank_rows(x: np.ndarray) -> np.ndarray:
    """Row-wise ranks of ``x`` (N, D) scaled to (0, 1), ties sharing their average rank; float32."""
    n, d = x.shape
    order = np.argsort(x, axis=1)  # any order: tied values get their average rank below
    s = np.take_along_axis(x, order, axis=1)
    pos = np.broadcast_to(np.arange(d), (n, d))
    new = np.ones((n, d), bool)
    new[:, 1:] = s[:, 1:] != s[:, :-1]
    first = np.maximum.accumulate(np.where(new, pos, 0), axis=1)
    last_flag = np.ones((n, d), bool)
    last_flag[:, :-1] = new[:, 1:]
    last = np.minimum.accumulate(np.where(last_flag, pos, d - 1)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty((n, d), np.float32)
    np.put_along_axis(ranks, order, ((first + last) * 0.5 + 0.5) / d, axis=1)
    return ranks


def frame_features(grid: np.ndarray, sigma: float = HIGHPASS_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """Tone-curve-invariant structure vectors of small luma images.

    ``grid``: (N, h, w) float32 Y' (any monotonic encoding: PQ, BT.709, linear...). Each image is rank
    transformed, its Gaussian blur (``sigma`` pixels) is subtracted, and the result is scaled to zero mean
    and unit norm. Returns ``(features (N, h*w) float32, valid (N,) bool)``; images without structure (flat:
    Y' standard deviation below ``MIN_CONTRAST``) get a zero vector and ``valid = False``. The dot product
    of two features is a similarity in [-1, 1].
    """
    n, h, w = grid.shape
    flat = grid.reshape(n, h * w).astype(np.float32, copy=False)
    valid = flat.std(axis=1) >= MIN_CONTRAST
    ranks = _rank_rows(flat).reshape(n, h, w)
    band = (ranks - _blur_stack(ranks, sigma)).reshape(n, h * w)
    band -= band.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(band, axis=1)
    valid &= norm > 1e-6
    band /= np.where(valid, norm, 1.0)[:, None]
    band[~valid] = 0.0
    return band.astype(np.float32, copy=False), valid


# ============================================================================================ black bars


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
            return 0, stat.size, _smoothstep(ref, 0.01, 0.05)
        threshold = bar + max(0.01, 0.1 * (ref - bar))
        active = np.flatnonzero(stat > threshold)
        if active.size == 0:
            return 0, stat.size, 0.0
        first, last = int(active[0]), int(active[-1])
        clarity = _smoothstep(ref - bar, 0.01, 0.05)
        return first, last + 1 - first, clarity

    y, h, cy = extent(row_profile)
    x, w, cx = extent(col_profile)
    return (x, y, w, h), min(cx, cy)


# ============================================================================================ results


@dataclass(frozen=True)
class Segment:
    """SDR frames ``first..last`` (inclusive) whose HDR time is ``ratio * t + offset_seconds``."""

    first: int
    last: int
    offset_seconds: float
    confidence: float = 1.0  # how clearly the pictures (or a cut) pin this offset, in its weakest stretch
    margin: float | None = None  # the weakest z-score of the chosen HDR frames against neighbouring ones
    evidence: str = "texture"  # what pins the offset: "texture" (picture structure) or "cut" (a hard cut)


@dataclass(frozen=True)
class TemporalAlignment:
    """Which HDR frame each SDR frame shows (see the module doc for the model).

    ``offset_seconds`` is the offset of the longest segment; ``segments`` hold every offset change (dropped or
    missing frames); ``unmatched`` lists inclusive ranges of SDR frames that have no HDR frame (content missing
    from the HDR, or outside it). ``similarity`` is the median similarity of matched frame pairs (structure
    vectors, in [-1, 1]).
    """

    offset_seconds: float
    ratio: float
    fps_hdr: Fraction
    fps_sdr: Fraction
    confidence: float
    segments: tuple[Segment, ...] = ()
    unmatched: tuple[tuple[int, int], ...] = ()
    hdr_frame_count: int | None = None
    sdr_frame_count: int | None = None
    similarity: float = 0.0
    peak_z: float | None = None
    reasons: tuple[str, ...] = ()
    uncertain: tuple[tuple[int, int], ...] = ()

    def is_uncertain(self, sdr_index: int) -> bool:
        """Whether SDR frame ``sdr_index`` lies in a stretch where neighbouring HDR frames could not be told apart
        (its mapping is the best guess; a build checks such clips on their own, or rejects them)."""
        return any(first <= sdr_index <= last for first, last in self.uncertain)

    @property
    def offset_frames(self) -> int | None:
        """SDR frame ``i`` shows HDR frame ``i + offset_frames``; ``None`` unless both play at the same rate."""
        if self.fps_hdr != self.fps_sdr or abs(self.ratio - 1.0) > _RATIO_TOLERANCE:
            return None
        return round(self.offset_seconds * float(self.fps_hdr))

    def _segment_for(self, sdr_index: int) -> Segment | None:
        if not self.segments:
            return None
        firsts = [s.first for s in self.segments]
        k = int(np.searchsorted(firsts, sdr_index, side="right")) - 1
        return self.segments[max(k, 0)]

    def hdr_time_for(self, sdr_index: int) -> float:
        """HDR time in seconds (fractional) shown by SDR frame ``sdr_index``."""
        segment = self._segment_for(sdr_index)
        offset = segment.offset_seconds if segment is not None else self.offset_seconds
        return self.ratio * sdr_index / float(self.fps_sdr) + offset

    def hdr_index_for(self, sdr_index: int) -> int | None:
        """The HDR frame nearest to what SDR frame ``sdr_index`` shows, or ``None``: no HDR frame within half a
        frame (the SDR frame is unmatched, or its time falls outside the HDR stream)."""
        sdr_index = int(sdr_index)
        if sdr_index < 0 or (self.sdr_frame_count is not None and sdr_index >= self.sdr_frame_count):
            return None
        for first, last in self.unmatched:
            if first <= sdr_index <= last:
                return None
        j = math.floor(self.hdr_time_for(sdr_index) * float(self.fps_hdr) + 0.5)
        if j < 0 or (self.hdr_frame_count is not None and j >= self.hdr_frame_count):
            return None
        return j

    def hdr_indices_for(self, sdr_indices: Sequence[int]) -> list[int | None]:
        """:meth:`hdr_index_for` of several SDR frames."""
        return [self.hdr_index_for(i) for i in sdr_indices]


@dataclass(frozen=True)
class SpatialAlignment:
    """Where the SDR picture lands on the HDR frame (pixel-edge coordinates, see the module doc).

    ``sdr_picture`` / ``hdr_picture``: active areas ``[x, y, w, h]`` (black bars excluded) of the SDR and HDR
    frames; ``scale_x``/``scale_y``: HDR pixels per SDR pixel; ``tx``/``ty``: HDR position of the SDR picture's
    top-left corner. ``refined``: checked by registration of full-resolution frames (``residual`` = largest
    corner disagreement between the black-bar geometry and the registration, in HDR pixels).
    """

    sdr_size: tuple[int, int]
    hdr_size: tuple[int, int]
    sdr_picture: tuple[int, int, int, int]
    hdr_picture: tuple[int, int, int, int]
    scale_x: float
    scale_y: float
    tx: float
    ty: float
    confidence: float
    refined: bool = False
    residual: float | None = None
    correlation: float | None = None
    reasons: tuple[str, ...] = ()

    @property
    def scale(self) -> float:
        """HDR pixels per SDR pixel (mean of the two axes)."""
        return 0.5 * (self.scale_x + self.scale_y)

    @property
    def translation(self) -> tuple[float, float]:
        return (self.tx, self.ty)

    def sdr_to_hdr(self, x: np.ndarray | float, y: np.ndarray | float) -> tuple[Any, Any]:
        """SDR frame coordinates -> HDR frame coordinates (pixel edges)."""
        px, py = self.sdr_picture[:2]
        return self.scale_x * (np.asarray(x) - px) + self.tx, self.scale_y * (np.asarray(y) - py) + self.ty

    def hdr_to_sdr(self, x: np.ndarray | float, y: np.ndarray | float) -> tuple[Any, Any]:
        """HDR frame coordinates -> SDR frame coordinates (pixel edges)."""
        px, py = self.sdr_picture[:2]
        return (np.asarray(x) - self.tx) / self.scale_x + px, (np.asarray(y) - self.ty) / self.scale_y + py

    def matrix_sdr_to_hdr(self) -> np.ndarray:
        """2x3 float64 affine taking SDR pixel centres to HDR pixel centres (OpenCV convention)."""
        px, py = self.sdr_picture[:2]
        sx, sy = self.scale_x, self.scale_y
        return np.array(
            [[sx, 0.0, sx * (0.5 - px) + self.tx - 0.5], [0.0, sy, sy * (0.5 - py) + self.ty - 0.5]], np.float64
        )

    def matrix_hdr_to_sdr(self) -> np.ndarray:
        """2x3 float64 affine taking HDR pixel centres to SDR pixel centres (OpenCV convention)."""
        px, py = self.sdr_picture[:2]
        sx, sy = self.scale_x, self.scale_y
        return np.array(
            [[1 / sx, 0.0, (0.5 - self.tx) / sx + px - 0.5], [0.0, 1 / sy, (0.5 - self.ty) / sy + py - 0.5]],
            np.float64,
        )

    def is_identity(self, tolerance: float = 0.01) -> bool:
        """Same size and geometry: SDR pixel (i, j) is HDR pixel (i, j) (within ``tolerance`` pixels)."""
        m = self.matrix_sdr_to_hdr()
        w, h = self.hdr_size
        return self.sdr_size == self.hdr_size and bool(
            np.all(np.abs(m - np.eye(2, 3)) * np.array([w, h, 1.0]) < tolerance)
        )

    def valid_hdr_box(self, hdr_w: int | None = None, hdr_h: int | None = None) -> list[int]:
        """``[x, y, w, h]``: the HDR pixels covered by both the HDR active picture and the mapped SDR picture."""
        hdr_w = hdr_w or self.hdr_size[0]
        hdr_h = hdr_h or self.hdr_size[1]
        px, py, pw, ph = self.sdr_picture
        x0, y0 = self.sdr_to_hdr(px, py)
        x1, y1 = self.sdr_to_hdr(px + pw, py + ph)
        hx, hy, hw, hh = self.hdr_picture
        eps = 1e-3
        left = max(math.ceil(float(x0) - eps), hx, 0)
        top = max(math.ceil(float(y0) - eps), hy, 0)
        right = min(math.floor(float(x1) + eps), hx + hw, hdr_w)
        bottom = min(math.floor(float(y1) + eps), hy + hh, hdr_h)
        return [int(left), int(top), int(max(right - left, 0)), int(max(bottom - top, 0))]

    def sdr_to_hdr_grid(self, sdr: np.ndarray, hdr_w: int | None = None, hdr_h: int | None = None) -> np.ndarray:
        """Resample an SDR frame ``(Hs, Ws[, C])`` (any dtype OpenCV warps: uint8 BT.709 R'G'B', float32...)
        onto the HDR pixel grid ``(hdr_h, hdr_w[, C])``, same dtype.

        Resampling is bicubic on the stored (non-linear) signal, after an area pre-filter when the SDR is
        larger than the HDR; pixels outside the SDR picture replicate its edge (use :meth:`valid_hdr_box`).
        An identity geometry returns the frame unchanged.
        """
        import cv2

        hdr_w = hdr_w or self.hdr_size[0]
        hdr_h = hdr_h or self.hdr_size[1]
        if self.is_identity() and sdr.shape[:2] == (hdr_h, hdr_w):
            return sdr
        m = np.vstack([self.matrix_hdr_to_sdr(), [0.0, 0.0, 1.0]])
        src = sdr
        if self.shrinks:  # area pre-filter, then warp
            fx, fy = min(self.scale_x, 1.0), min(self.scale_y, 1.0)
            size = (max(1, round(sdr.shape[1] * fx)), max(1, round(sdr.shape[0] * fy)))
            src = cv2.resize(sdr, size, interpolation=cv2.INTER_AREA)
            kx, ky = size[0] / sdr.shape[1], size[1] / sdr.shape[0]
            to_small = np.array([[kx, 0, 0.5 * kx - 0.5], [0, ky, 0.5 * ky - 0.5], [0, 0, 1.0]])
            m = to_small @ m
        return cv2.warpAffine(
            src, m[:2], (hdr_w, hdr_h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
        )

    @property
    def shrinks(self) -> bool:
        """Whether the SDR picture is larger than its place on the HDR grid (resampling needs an area
        pre-filter of the whole frame)."""
        return self.scale_x < 0.999 or self.scale_y < 0.999

    def sdr_region_for(self, box: Sequence[int], margin: int = 3) -> tuple[int, int, int, int] | None:
        """``(x, y, w, h)`` of the SDR frame that resampling the HDR-grid ``box`` reads (bicubic reach
        ``margin`` px included, clipped to the frame); ``None`` when the SDR is larger than the HDR (the
        area pre-filter then needs the whole frame)."""
        if self.shrinks:
            return None
        bx, by, bw, bh = (int(v) for v in box)
        x0, y0 = self.hdr_to_sdr(bx, by)
        x1, y1 = self.hdr_to_sdr(bx + bw, by + bh)
        sw, sh = self.sdr_size
        left, top = max(0, math.floor(float(x0)) - margin), max(0, math.floor(float(y0)) - margin)
        right, bottom = min(sw, math.ceil(float(x1)) + margin), min(sh, math.ceil(float(y1)) + margin)
        if right <= left or bottom <= top:
            return None
        return left, top, right - left, bottom - top

    def sdr_region_to_hdr_box(self, sdr_region: np.ndarray, origin: Sequence[int], box: Sequence[int]) -> np.ndarray:
        """Resample an SDR region (``(h, w[, C])`` cut at ``origin`` = (x, y) of the SDR frame, as given by
        :meth:`sdr_region_for`) onto the HDR-grid ``box``; the same pixels as :meth:`sdr_to_hdr_grid` of the
        whole frame, cropped (bicubic on the stored signal, edges replicated at the frame's edges)."""
        import cv2

        bx, by, bw, bh = (int(v) for v in box)
        ox, oy = (int(v) for v in origin)
        m = np.vstack([self.matrix_hdr_to_sdr(), [0.0, 0.0, 1.0]])
        shift = (
            np.array([[1.0, 0.0, -ox], [0.0, 1.0, -oy], [0.0, 0.0, 1.0]])
            @ m
            @ np.array([[1.0, 0.0, bx], [0.0, 1.0, by], [0.0, 0.0, 1.0]])
        )
        return cv2.warpAffine(
            sdr_region, shift[:2], (bw, bh), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )  # fmt: skip

    def clip_confidence(self, hdr_clip: np.ndarray, sdr_clip: np.ndarray, valid: Sequence[int] | None = None) -> float:
        """How well aligned SDR frames match their HDR frames, in [0, 1] (the worst frame counts).

        ``hdr_clip``: (T, H, W, 3) HDR R'G'B' (uint16 = round(rgb_pq * 65535), or float32 rgb_pq);
        ``sdr_clip``: (T, H, W, 3) SDR R'G'B' already on the HDR grid (uint8 = round(rgb_sdr * 255), or float32);
        ``valid``: ``[x, y, w, h]`` region compared (default: :meth:`valid_hdr_box`). Luma is Y' with the
        BT.2020 (HDR) and BT.709 (SDR) weights; similarity = structure-vector dot product at about 160 px wide.
        """
        x, y, w, h = valid if valid is not None else self.valid_hdr_box()
        if w < 8 or h < 8:
            return 0.0
        import cv2

        # Area-reduce first, then take luma: both are linear in R'G'B', so the order does not matter, and the
        # full-resolution clip is touched once by OpenCV instead of by a float matrix product.
        factor = max(1, w // 320)
        size = (max(8, w // factor), max(4, h // factor))

        def small(clip: np.ndarray) -> np.ndarray:
            return np.stack(
                [
                    cv2.resize(np.ascontiguousarray(f[y : y + h, x : x + w]), size, interpolation=cv2.INTER_AREA)
                    for f in clip
                ]
            )

        sims = _pair_similarity(
            _luma_of(small(np.asarray(hdr_clip)), "bt2020"), _luma_of(small(np.asarray(sdr_clip)), "bt709"), width=160
        )
        return _similarity_confidence(float(np.min(sims)))


@dataclass(frozen=True)
class Alignment:
    """Temporal + spatial alignment of one HDR10/SDR pair; ``confidence`` in [0, 1] (the weaker of the two)."""

    temporal: TemporalAlignment
    spatial: SpatialAlignment
    confidence: float
    reasons: tuple[str, ...] = field(default=())

    @property
    def offset_frames(self) -> int | None:
        return self.temporal.offset_frames

    @property
    def offset_seconds(self) -> float:
        return self.temporal.offset_seconds

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (ints, floats, lists); :meth:`from_dict` rebuilds the alignment from it."""
        t, s = self.temporal, self.spatial
        return {
            "offset_frames": t.offset_frames,
            "offset_seconds": round(t.offset_seconds, 6),
            "ratio": t.ratio,
            "fps_hdr": float(t.fps_hdr),
            "fps_sdr": float(t.fps_sdr),
            "fps_hdr_fraction": [t.fps_hdr.numerator, t.fps_hdr.denominator],
            "fps_sdr_fraction": [t.fps_sdr.numerator, t.fps_sdr.denominator],
            "sdr_picture": list(s.sdr_picture),
            "hdr_picture": list(s.hdr_picture),
            "sdr_size": list(s.sdr_size),
            "hdr_size": list(s.hdr_size),
            "scale": round(s.scale, 6),
            "scale_xy": [round(s.scale_x, 6), round(s.scale_y, 6)],
            "translation": [round(s.tx, 4), round(s.ty, 4)],
            "valid_hdr_box": s.valid_hdr_box(),
            "confidence": round(self.confidence, 4),
            "temporal_confidence": round(t.confidence, 4),
            "spatial_confidence": round(s.confidence, 4),
            "similarity": round(t.similarity, 4),
            "peak_z": None if t.peak_z is None else round(t.peak_z, 2),
            "spatial_refined": s.refined,
            "spatial_residual": None if s.residual is None else round(s.residual, 3),
            "segments": [[g.first, g.last, round(g.offset_seconds, 6)] for g in t.segments],
            "segment_evidence": [
                {
                    "confidence": round(g.confidence, 4),
                    "margin": None if g.margin is None else round(g.margin, 2),
                    "evidence": g.evidence,
                    "uncertain": [
                        [max(a, g.first), min(b, g.last)] for a, b in t.uncertain if a <= g.last and b >= g.first
                    ],
                }
                for g in t.segments
            ],
            "uncertain": [list(r) for r in t.uncertain],
            "unmatched": [list(r) for r in t.unmatched],
            "hdr_frame_count": t.hdr_frame_count,
            "sdr_frame_count": t.sdr_frame_count,
            "reasons": list(self.reasons),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alignment:
        """Inverse of :meth:`to_dict` (the mapping is rebuilt from ``segments`` and ``unmatched``)."""
        temporal = TemporalAlignment(
            offset_seconds=float(data["offset_seconds"]),
            ratio=float(data["ratio"]),
            fps_hdr=Fraction(*data["fps_hdr_fraction"]),
            fps_sdr=Fraction(*data["fps_sdr_fraction"]),
            confidence=float(data["temporal_confidence"]),
            segments=_segments_from(data),
            unmatched=tuple((int(a), int(b)) for a, b in data["unmatched"]),
            uncertain=tuple((int(a), int(b)) for a, b in data.get("uncertain", ())),
            hdr_frame_count=data.get("hdr_frame_count"),
            sdr_frame_count=data.get("sdr_frame_count"),
            similarity=float(data.get("similarity", 0.0)),
            peak_z=data.get("peak_z"),
        )
        sx, sy = data["scale_xy"]
        spatial = SpatialAlignment(
            sdr_size=tuple(data["sdr_size"]),  # type: ignore[arg-type]
            hdr_size=tuple(data["hdr_size"]),  # type: ignore[arg-type]
            sdr_picture=tuple(data["sdr_picture"]),  # type: ignore[arg-type]
            hdr_picture=tuple(data["hdr_picture"]),  # type: ignore[arg-type]
            scale_x=float(sx),
            scale_y=float(sy),
            tx=float(data["translation"][0]),
            ty=float(data["translation"][1]),
            confidence=float(data["spatial_confidence"]),
            refined=bool(data.get("spatial_refined", False)),
            residual=data.get("spatial_residual"),
        )
        return cls(temporal, spatial, float(data["confidence"]), tuple(data.get("reasons", ())))


def _segments_from(data: dict[str, Any]) -> tuple[Segment, ...]:
    """Segments of a :meth:`Alignment.to_dict` summary (``segment_evidence`` optional: older summaries)."""
    details = data.get("segment_evidence") or [{}] * len(data["segments"])
    return tuple(
        Segment(
            int(a), int(b), float(c), float(d.get("confidence", 1.0)), d.get("margin"),
            str(d.get("evidence", "texture")),
        )
        for (a, b, c), d in zip(data["segments"], details, strict=True)
    )


# ============================================================================================ features


def _similarity_confidence(similarity: float) -> float:
    """Map a median structure similarity to [0, 1]: same pictures score about 0.7-0.95 whatever the grade,
    different pictures about 0-0.25."""
    return _smoothstep(similarity, 0.3, 0.55)


def peak_confidence(z: float | None) -> float:
    """Map the robust z-score of a correlation peak against the other offsets to [0, 1] (``None``: nothing to
    compare with, 1): below 3 the best offset is not distinct, above 6 it is."""
    return 1.0 if z is None else _smoothstep(z, 3.0, 6.0)


def _luma_of(rgb: np.ndarray, primaries: str) -> np.ndarray:
    """Y' (non-constant luminance, weights of ``primaries``) of R'G'B' ``(..., 3)`` as float32 in [0, 1]."""
    from datakit.color.gamut import luminance_weights

    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(rgb.dtype, 1.0)
    weights = (luminance_weights(primaries) / scale).astype(np.float32)
    return rgb.astype(np.float32, copy=False) @ weights


def _pair_similarity(a: np.ndarray, b: np.ndarray, width: int) -> np.ndarray:
    """Per-frame structure similarity of two aligned luma stacks ``(T, H, W)`` compared at ``width`` pixels."""
    _, h, w = a.shape
    gw = max(8, min(width, w))
    gh = max(4, round(h * gw / w))
    ry, rx = _area_matrix(h, 0.0, h, gh), _area_matrix(w, 0.0, w, gw)
    fa, va = frame_features(_separable(a.astype(np.float32), ry, rx))
    fb, vb = frame_features(_separable(b.astype(np.float32), ry, rx))
    return np.where(va & vb, np.sum(fa * fb, axis=1), 0.0)


def _thumb_grid(thumbs: Thumbnails, area: tuple[int, int, int, int], gw: int, gh: int) -> np.ndarray:
    """Crop the full-resolution ``area`` out of the luma thumbnails and area-resample it to (N, gh, gw)."""
    tw, th = thumbs.thumb_size
    fw, fh = thumbs.frame_size
    x, y, w, h = area
    ry = _area_matrix(th, y * th / fh, h * th / fh, gh)
    rx = _area_matrix(tw, x * tw / fw, w * tw / fw, gw)
    out = np.empty((thumbs.count, gh, gw), np.float32)
    for start in range(0, thumbs.count, 4096):
        out[start : start + 4096] = _separable(thumbs.luma[start : start + 4096], ry, rx)
    return out


def _grid_size(hdr_area: tuple[int, int, int, int], thumbs: Sequence[tuple[Thumbnails, tuple]]) -> tuple[int, int]:
    """Feature grid (width, height): at most GRID_WIDTH wide, no finer than any thumbnail's picture area."""
    widths = [GRID_WIDTH]
    for t, area in thumbs:
        widths.append(int(area[2] * t.thumb_size[0] / t.frame_size[0]))
        heights = area[3] * t.thumb_size[1] / t.frame_size[1]
        widths.append(int(heights * hdr_area[2] / max(hdr_area[3], 1)))
    gw = max(8, min(widths))
    gh = max(4, round(gw * hdr_area[3] / max(hdr_area[2], 1)))
    return gw, gh


# ============================================================================================ temporal search


def _next_pow2(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


def _resample_to_grid(
    positions: np.ndarray, feats: np.ndarray, valid: np.ndarray, max_gap: float
) -> tuple[int, np.ndarray, np.ndarray]:
    """Linear interpolation of per-frame features at increasing fractional ``positions`` onto the integer grid.

    Returns ``(origin, values (L, D), mask (L,))``: grid point ``origin + k`` holds ``values[k]``; points
    between frames further apart than ``max_gap`` or next to an invalid frame are masked out.
    """
    g0, g1 = math.ceil(positions[0] - 1e-9), math.floor(positions[-1] + 1e-9)
    grid = np.arange(g0, g1 + 1, dtype=np.float64)
    if len(positions) == 1 or grid.size == 0:
        values = np.zeros((max(grid.size, 1), feats.shape[1]), np.float32)
        mask = np.zeros(max(grid.size, 1), np.float32)
        if grid.size:
            values[0], mask[0] = feats[0], float(valid[0])
        return g0, values, mask
    right = np.clip(np.searchsorted(positions, grid - 1e-9, side="left"), 1, len(positions) - 1)
    left = right - 1
    span = positions[right] - positions[left]
    weight = np.clip((grid - positions[left]) / np.maximum(span, 1e-12), 0.0, 1.0).astype(np.float32)
    ok = (span <= max_gap) & valid[left] & valid[right]
    values = (1.0 - weight)[:, None] * feats[left] + weight[:, None] * feats[right]
    values[~ok] = 0.0
    return g0, values.astype(np.float32, copy=False), ok.astype(np.float32)


def _xcorr(a: np.ndarray | _Spectrum, b: np.ndarray, n: int, chunk: int = 64) -> np.ndarray:
    """``c[lag] = sum_g <a[g + lag], b[g]>`` for all lags (circular, length ``n``); a (La, D), b (Lb, D)."""
    spectrum = a if isinstance(a, _Spectrum) else _Spectrum(a)
    acc = np.zeros(n // 2 + 1, np.complex128)
    for d in range(0, b.shape[1], chunk):
        fb = np.fft.rfft(b[:, d : d + chunk], n=n, axis=0)
        acc += np.sum(spectrum.get(n)[:, d : d + chunk] * np.conj(fb), axis=1)
    return np.fft.irfft(acc, n=n)


class _Spectrum:
    """Real FFT of a (L, D) sequence along time, computed once per transform length."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values
        self._cache: dict[int, np.ndarray] = {}

    def get(self, n: int) -> np.ndarray:
        if n not in self._cache:
            self._cache = {n: np.fft.rfft(self.values, n=n, axis=0)}
        return self._cache[n]


def _projection(dims: int, out_dims: int) -> np.ndarray:
    """Fixed random Gaussian projection (dims -> out_dims) that keeps dot products on average
    (Johnson-Lindenstrauss; the global search only needs sums of them over many frames); identity when
    ``dims <= out_dims``."""
    if dims <= out_dims:
        return np.eye(dims, dtype=np.float32)
    rng = np.random.default_rng(20240229)
    return (rng.standard_normal((dims, out_dims)) / math.sqrt(out_dims)).astype(np.float32)


@dataclass
class _Peak:
    ratio: float
    offset_frames: float  # HDR frames (fractional)
    score: float
    z: float | None
    rank: int  # position in the candidate list (simplest ratio first)


def _global_search(
    hdr_pos: np.ndarray,
    hdr_feats: np.ndarray,
    hdr_valid: np.ndarray,
    sdr_times: np.ndarray,
    sdr_feats: np.ndarray,
    sdr_valid: np.ndarray,
    fps_hdr: float,
    fps_sdr: float,
    ratios: Sequence[float],
    max_offset_frames: float,
) -> list[_Peak]:
    """Best offset of each candidate ratio by normalized FFT cross-correlation of the feature sequences on the
    HDR frame grid; best score first."""
    a0 = int(hdr_pos[0])
    la = int(hdr_pos[-1]) - a0 + 1
    project = _projection(hdr_feats.shape[1], GLOBAL_DIMS)
    a = np.zeros((la, project.shape[1]), np.float32)
    ma = np.zeros(la, np.float32)
    a[hdr_pos - a0] = hdr_feats @ project
    ma[hdr_pos - a0] = hdr_valid
    spectra = _Spectrum(a), _Spectrum((a * a).sum(axis=1, keepdims=True)), _Spectrum(ma[:, None])
    peaks: list[_Peak] = []
    for rank, ratio in enumerate(ratios):
        u = ratio * sdr_times * fps_hdr
        spacing = ratio * fps_hdr / fps_sdr
        b0, b, mb = _resample_to_grid(u, sdr_feats @ project, sdr_valid, max_gap=1.6 * max(spacing, 1.0))
        nb = float(mb.sum())
        if nb < 4 or ma.sum() < 4:
            continue
        n = _next_pow2(la + b.shape[0] + 1)
        c = _xcorr(spectra[0], b, n)
        energy_a = _xcorr(spectra[1], mb[:, None], n)
        energy_b = _xcorr(spectra[2], (b * b).sum(axis=1, keepdims=True), n)
        overlap = _xcorr(spectra[2], mb[:, None], n)
        # lag L <-> HDR index = SDR grid position + off, off = L + a0 - b0
        lo = math.floor(-max_offset_frames) - 1
        hi = math.ceil(max_offset_frames) + 1
        offs = np.arange(lo, hi + 1)
        lags = (offs - a0 + b0) % n
        with np.errstate(invalid="ignore", divide="ignore"):
            score = c[lags] / np.sqrt(np.maximum(energy_a[lags] * energy_b[lags], 1e-12))
        min_overlap = max(6.0, 0.3 * min(nb, float(ma.sum())))
        score = np.where(overlap[lags] >= min_overlap - 0.5, score, np.nan)
        score = np.where(np.abs(offs) <= max_offset_frames + 0.5, score, np.nan)
        if not np.any(np.isfinite(score)):
            continue
        k = int(np.nanargmax(score))
        peak = float(score[k])
        frac = 0.0
        if 0 < k < len(score) - 1 and np.isfinite(score[k - 1]) and np.isfinite(score[k + 1]):
            den = score[k - 1] - 2 * peak + score[k + 1]
            if den < 0:
                frac = float(np.clip(0.5 * (score[k - 1] - score[k + 1]) / den, -0.5, 0.5))
        far = np.abs(offs - offs[k]) > max(3.0, 0.5 * fps_hdr)
        null = score[far & np.isfinite(score)]
        z = None
        if null.size >= 8:
            med = float(np.median(null))
            mad = float(np.median(np.abs(null - med))) * 1.4826
            z = (peak - med) / max(mad, 0.01)
        peaks.append(_Peak(float(ratio), float(offs[k]) + frac, peak, z, rank))
    if not peaks:
        raise AlignmentError("the HDR and SDR streams do not overlap enough to be aligned (too few frames)")
    return sorted(peaks, key=lambda p: -p.score)


def _viterbi(score: np.ndarray, reset: np.ndarray, penalty: float) -> np.ndarray:
    """Best state path maximizing ``sum score[m, k_m] - penalty * [k_m != k_{m-1}]``: any offset change (one
    dropped frame or several) costs the same, so each step is O(S). ``reset[m]``: no transition cost into
    frame m (a gap in the sequence). score (M, S) -> path (M,) int."""
    m_count, s_count = score.shape
    stay_or_jump = np.zeros((m_count, s_count), bool)  # True: came from the best state of the previous frame
    best_prev = np.zeros(m_count, np.int64)
    total = score[0].astype(np.float64)
    for m in range(1, m_count):
        k = int(np.argmax(total))
        best_prev[m] = k
        jump_value = total[k] - (0.0 if reset[m] else penalty)
        jump = total < jump_value
        stay_or_jump[m] = jump
        total = np.where(jump, jump_value, total) + score[m]
    path = np.empty(m_count, np.int64)
    path[-1] = int(np.argmax(total))
    for m in range(m_count - 1, 0, -1):
        path[m - 1] = best_prev[m] if stay_or_jump[m, path[m]] else path[m]
    return path


def _interpolated_positions(
    sdr_feats: np.ndarray, hdr_feats: np.ndarray, rows: np.ndarray, frames: np.ndarray
) -> np.ndarray:
    """Sub-frame HDR position of each SDR frame from its structure vector and those of three consecutive HDR
    frames ``frames - 1, frames, frames + 1`` (``rows`` (M, 3) into ``hdr_feats``, -1 = missing).

    Between two consecutive HDR frames a and b the SDR vector is modelled as ``(1 - alpha) a + alpha b`` (small
    motion); alpha in [0, 1] is solved in closed form for both pairs around the middle frame and the pair with
    the smaller residual wins. NaN where a frame is missing.
    """
    out = np.full(frames.shape, np.nan)
    for start in range(0, frames.size, 2048):
        sl = slice(start, start + 2048)
        r = rows[sl]
        f = hdr_feats[np.maximum(r, 0)]  # (n, 3, D)
        x = sdr_feats[sl][:, None, :]
        best_res = np.full(r.shape[0], np.inf)
        best_pos = np.full(r.shape[0], np.nan)
        for left, shift in ((0, -1.0), (1, 0.0)):
            fa, fb = f[:, left], f[:, left + 1]
            delta = fb - fa
            den = np.einsum("nd,nd->n", delta, delta)
            alpha = np.clip(np.einsum("nd,nd->n", x[:, 0] - fa, delta) / np.maximum(den, 1e-12), 0.0, 1.0)
            resid = np.linalg.norm(x[:, 0] - fa - alpha[:, None] * delta, axis=1)
            ok = (r[:, left] >= 0) & (r[:, left + 1] >= 0) & (resid < best_res)
            best_res = np.where(ok, resid, best_res)
            best_pos = np.where(ok, frames[sl] + shift + alpha, best_pos)
        out[sl] = best_pos
    return out


def _absorb_excursions(path: np.ndarray, reset: np.ndarray, shortest: int) -> np.ndarray:
    """Relabel runs of the path shorter than ``shortest`` frames that leave and come back to the same state
    (a frame at a cut whose nearest HDR frame belongs to the next shot, a flash...): one offset, not three."""
    path = path.copy()
    run_id = np.concatenate([[0], np.cumsum(reset[1:] | (np.diff(path) != 0))])
    starts = np.flatnonzero(np.concatenate([[True], run_id[1:] != run_id[:-1]]))
    ends = np.concatenate([starts[1:], [path.size]])
    for k in range(1, len(starts) - 1):
        a, b = starts[k], ends[k]
        if b - a < shortest and not reset[a] and not reset[b] and path[a - 1] == path[b]:
            path[a:b] = path[a - 1]
    return path


def _ranges(mask_indices: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive runs of consecutive integers."""
    if mask_indices.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(mask_indices) != 1)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [mask_indices.size - 1]])
    return [(int(mask_indices[s]), int(mask_indices[e])) for s, e in zip(starts, ends, strict=True)]


def _sims_at(
    sdr_feats: np.ndarray, hdr_feats: np.ndarray, lut: np.ndarray, hdr_count: int, frames: np.ndarray
) -> np.ndarray:
    """Similarity of every SDR frame (rows of ``sdr_feats``) with the HDR frames ``frames`` (M, C) (frame
    numbers; ``lut`` maps them to rows of ``hdr_feats``); NaN where an HDR frame was not summarized."""
    inside = (frames >= 0) & (frames < lut.size - 1) & (frames < hdr_count)
    rows = np.where(inside, lut[np.clip(frames, 0, lut.size - 1)], -1)
    out = np.full(frames.shape, np.nan, np.float32)
    for s in range(0, frames.shape[0], 2048):
        r = rows[s : s + 2048]
        sim = np.einsum("nd,nkd->nk", sdr_feats[s : s + 2048], hdr_feats[np.maximum(r, 0)])
        out[s : s + 2048] = np.where(r >= 0, sim, np.nan)
    return out


def frame_evidence(score: np.ndarray) -> np.ndarray:
    """Per SDR frame, how much each of K consecutive candidate HDR frames is worse than its best one, in units
    of temporal evidence: (M, K) float32 in ``[-EVIDENCE_CLIP, 0]``. ``score`` (M, K): similarities (-1:
    missing).

    Slow content changes little from frame to frame: its similarities differ by thousandths between
    neighbouring HDR frames, which an absolute offset-change cost would ignore (a stretch between two drops
    then takes the wrong offset at full confidence). One unit is how much the frame's similarity drops one
    HDR frame away from its best match (a parabola's drop two frames away, divided by 4), measured on the
    flatter side so that a cut on one side does not make the other side look sharp, and at least
    :data:`EVIDENCE_FLOOR`; frames whose similarity barely changes within three HDR frames of their best
    (no motion, no texture, no cut) do not vote, so that the grades' small differences cannot walk the path
    away on them.
    """
    m_count, k_count = score.shape
    idx = np.arange(m_count)
    best = np.argmax(score, axis=1)
    left = np.where(best >= 2, score[idx, np.maximum(best - 2, 0)], np.nan)
    right = np.where(best + 2 < k_count, score[idx, np.minimum(best + 2, k_count - 1)], np.nan)
    peak = score[idx, best]
    drops = np.stack([peak - left, peak - right], axis=1) / 4.0
    flat_side = np.nan_to_num(np.nanmin(np.where(np.isfinite(drops), drops, np.inf), axis=1), posinf=0.0)
    units = np.maximum(flat_side, EVIDENCE_FLOOR)
    near = np.abs(np.arange(k_count)[None, :] - best[:, None]) <= 3
    reach = np.max(np.where(near & (score > -1.0), peak[:, None] - score, 0.0), axis=1) / 9.0  # parabola: 9 units
    weight = np.clip((reach - 0.5 * EVIDENCE_FLOOR) / (0.5 * EVIDENCE_FLOOR), 0.0, 1.0)
    evidence = np.clip((score - peak[:, None]) / units[:, None], -EVIDENCE_CLIP, 0.0) * weight[:, None]
    return evidence.astype(np.float32)


@dataclass
class _Track:
    hdr_index: np.ndarray  # (M,) int64, -1 = unmatched
    offsets: np.ndarray  # (M,) float64 offset (HDR frames) of each SDR frame's segment, relative to the line
    similarity: np.ndarray  # (M,) similarity with the chosen HDR frame
    segment_id: np.ndarray  # (M,) int
    objective: float  # Viterbi path score, in evidence units, minus the offset-change costs
    gains: np.ndarray  # (M, 6) similarity with the chosen HDR frame minus with the one NEIGHBOURS away
    ambiguous: np.ndarray  # (M,) bool: the segment's sub-frame offset is not pinned (other mappings score alike)


NEIGHBOURS = np.array([-3, -2, -1, 1, 2, 3])  # HDR frames the chosen one is checked against


def _plateau_offset(
    sims: np.ndarray, base: np.ndarray, start: np.ndarray, centre: float, bounds: tuple[float, float] | None = None
) -> tuple[float, bool]:
    """The offset (HDR frames, multiples of 1/20 within one frame of ``centre``) whose rounded mapping
    ``floor(base + offset + 0.5)`` has the highest summed similarity; the middle of the best plateau (every
    offset there maps the same frames). ``sims`` (n, 5): similarities with HDR frames ``start - 2 .. start + 2``."""
    grid = centre + np.arange(-20, 21) * 0.05
    frames = np.floor(base[:, None] + grid[None, :] + 0.5).astype(np.int64)
    col = np.clip(frames - start[:, None] + 2, 0, 4)
    total = np.nansum(np.take_along_axis(sims, col, axis=1), axis=0)
    best = int(np.argmax(total))
    top = total >= total[best] - 1e-6
    lo = hi = best
    while lo > 0 and top[lo - 1]:
        lo -= 1
    while hi < grid.size - 1 and top[hi + 1]:
        hi += 1
    close = total >= total[best] - EVIDENCE_FLOOR * math.sqrt(max(1, base.size))
    ambiguous = bool(np.any(np.any(frames[:, close] != frames[:, [best]], axis=0)))
    return float(0.5 * (grid[lo] + grid[hi])), ambiguous


def _track(
    hdr_index: np.ndarray,
    hdr_feats: np.ndarray,
    sdr_index: np.ndarray,
    sdr_feats: np.ndarray,
    sdr_valid: np.ndarray,
    base: np.ndarray,
    hdr_count: int,
    radius: int,
    pin: tuple[int, float, float] | None = None,
) -> _Track:
    """Per-SDR-frame HDR frames around the line ``base`` (fractional HDR positions): Viterbi in evidence units
    (:func:`frame_evidence`), then each segment's offset: the path's whole offset when every SDR frame is one
    HDR frame, else the sub-frame offset whose mapping matches best (:func:`_plateau_offset`). ``pin``:
    ``(position, low, high)``: the segment holding that SDR position takes an offset (relative to ``base``) in
    ``[low, high)`` (a cut seen in both streams)."""
    m_count = sdr_index.size
    ks = np.arange(-radius, radius + 1)
    lut = np.full(int(hdr_index.max()) + 2, -1, np.int64)
    lut[hdr_index] = np.arange(hdr_index.size)
    cand = np.floor(base[:, None] + ks[None, :] + 0.5).astype(np.int64)
    score = np.nan_to_num(_sims_at(sdr_feats, hdr_feats, lut, hdr_count, cand), nan=-1.0)
    evidence = frame_evidence(score)
    reset = np.concatenate([[True], np.diff(sdr_index) != 1])
    path = _viterbi(evidence, reset, SWITCH_COST)

    path = _absorb_excursions(path, reset, 3)
    changes = int(np.sum((np.diff(path) != 0) & ~reset[1:]))
    objective = float(np.sum(evidence[np.arange(m_count), path])) - SWITCH_COST * changes

    # segments: runs of constant path state (the offset-change cost keeps noise from splitting them)
    segment_id = np.concatenate([[0], np.cumsum(reset[1:] | (np.diff(path) != 0))])
    frame_for_frame = bool(np.all(np.abs(base - np.round(base)) < 1e-4))
    offsets = np.empty(m_count)
    ambiguous = np.zeros(m_count, bool)
    for seg in range(int(segment_id[-1]) + 1):
        members = np.flatnonzero(segment_id == seg)
        whole = float(np.median(cand[members, path[members[0]]] - base[members]))
        usable = members[sdr_valid[members]]
        if frame_for_frame or usable.size == 0:
            offsets[members] = whole
            continue
        bounds = None
        if pin is not None and members[0] <= pin[0] <= members[-1]:
            bounds = (pin[1], pin[2])
            whole = float(np.clip(whole, pin[1], pin[2]))
        start = np.floor(base[usable] + whole + 0.5).astype(np.int64)
        sims = _sims_at(sdr_feats[usable], hdr_feats, lut, hdr_count, start[:, None] + np.arange(-2, 3)[None, :])
        offsets[members], ambiguous[members] = _plateau_offset(sims, base[usable], start, whole, bounds)
    chosen = np.floor(base + offsets + 0.5).astype(np.int64)
    ok = (chosen >= 0) & (chosen < hdr_count)
    around = _sims_at(sdr_feats, hdr_feats, lut, hdr_count, chosen[:, None] + np.concatenate([[0], NEIGHBOURS]))
    sim = around[:, 0].astype(np.float64)
    gains = around[:, :1] - around[:, 1:]
    hdr_chosen = np.where(ok, chosen, -1)
    return _Track(hdr_chosen, offsets, sim, segment_id, objective, gains, ambiguous)


def stretch_margin(gains: np.ndarray) -> float | None:
    """How clearly a stretch of SDR frames shows the HDR frames chosen for it rather than neighbouring ones: the
    smallest, over the neighbours, of the summed similarity gain in units of its noise (a z-score: the mean
    gain times sqrt(n) over the robust spread of the gains, at least :data:`EVIDENCE_FLOOR`). ``gains`` (n, 6):
    per frame, similarity with the chosen HDR frame minus with each neighbour (NaN: missing). A cut makes one
    frame's gain large and the spread small: it counts fully. None when nothing can be compared."""
    zs = []
    for d in range(gains.shape[1]):
        g = gains[:, d]
        g = g[np.isfinite(g)].astype(np.float64)
        if g.size < 2:
            continue
        sigma = max(EVIDENCE_FLOOR, 1.4826 * float(np.median(np.abs(g - np.median(g)))))
        zs.append(float(np.mean(g)) * math.sqrt(g.size) / sigma)
    return min(zs) if zs else None


def margin_confidence(z: float | None) -> float:
    """Map a stretch's temporal margin (:func:`stretch_margin`, a z-score against neighbouring offsets) to
    [0, 1]: below 2 neighbouring offsets are not told apart, above 4 they are (None: nothing to compare, 0)."""
    return 0.0 if z is None else _smoothstep(z, 2.0, 4.0)


BOUNDARY_REACH = 4  # SDR frames on either side of an offset change whose mapping the change's position decides


def boundary_doubt(
    runs: Sequence[tuple[np.ndarray, float]],
    line: np.ndarray,
    sims_for: Any,
    indices: np.ndarray,
) -> np.ndarray:
    """SDR positions whose mapping depends on where exactly an offset change lies, when the pictures do not
    say it: (M,) bool.

    ``runs``: consecutive ``(positions, offset)`` of constant offset (HDR frames relative to ``line``, the
    zero-offset HDR positions of the SDR frames); ``sims_for(positions, hdr_frames)``: similarities (NaN:
    missing). For each change between adjacent runs, every switch position within :data:`BOUNDARY_REACH`
    frames is scored (the frames before it mapped with the first offset, those after with the second); the
    frames between the earliest and the latest switch that score within ``2 * EVIDENCE_FLOOR`` of the best
    (and the one chosen) are in doubt.
    """
    doubt = np.zeros(line.size, bool)
    for (first, off_a), (second, off_b) in itertools.pairwise(runs):
        end, start = int(first[-1]), int(second[0])
        if start != end + 1 or indices[start] != indices[end] + 1:
            continue
        lo, hi = max(int(first[0]), end - BOUNDARY_REACH + 1), min(int(second[-1]), start + BOUNDARY_REACH - 1)
        span = np.arange(lo, hi + 1)
        sa = np.nan_to_num(sims_for(span, np.floor(line[span] + off_a + 0.5).astype(np.int64)), nan=-1.0)
        sb = np.nan_to_num(sims_for(span, np.floor(line[span] + off_b + 0.5).astype(np.int64)), nan=-1.0)
        ca, cb = np.concatenate([[0.0], np.cumsum(sa)]), np.concatenate([[0.0], np.cumsum(sb)])
        total = ca + (cb[-1] - cb)  # switch before span[q]
        chosen = int(np.searchsorted(span, start))
        plausible = [*np.flatnonzero(total >= total.max() - 2 * EVIDENCE_FLOOR).tolist(), chosen]
        doubt[span[min(plausible) : max(plausible)]] = True
    return doubt


def certainty_stretches(
    gains: np.ndarray, members: np.ndarray, window: int, doubt: np.ndarray
) -> list[tuple[np.ndarray, float, float | None]]:
    """Split a run of constant offset (``members``: positions) into stretches rated alike: the positions in
    ``doubt`` (confidence 0) and windows of about ``window`` frames between them, each rated by
    :func:`stretch_margin` and :func:`margin_confidence`. Returns ``(positions, confidence, margin)`` in order."""
    out = []
    flags = doubt[members]
    cuts = np.flatnonzero(np.diff(flags.astype(np.int8)) != 0) + 1
    for group in np.split(np.arange(members.size), cuts):
        part = members[group]
        if flags[group[0]]:
            out.append((part, 0.0, stretch_margin(gains[part])))
            continue
        for piece in np.array_split(part, max(1, round(part.size / window))):
            margin = stretch_margin(gains[piece])
            out.append((piece, margin_confidence(margin), margin))
    return out


def _one_to_one(ratio: float, fps_hdr: Fraction, fps_sdr: Fraction) -> bool:
    """Whether each SDR frame shows one HDR frame (HDR frame steps per SDR frame = 1): same rates at the same
    speed, or a sped-up version (25 fps showing every frame of a 24 fps master)."""
    return abs(ratio * float(fps_hdr) / float(fps_sdr) - 1.0) < 1e-6


CUT_MIN_CHANGE = 0.02  # 1 - rank correlation of consecutive thumbnails above which a frame may start a shot
CUT_CONTRAST = 20.0  # ... and this many times the median change of the frames around it


def shot_changes(thumbs: Thumbnails) -> np.ndarray:
    """Positions (into the summarized frames) of the frames that start a new shot (hard cuts).

    A frame starts a shot when its luma thumbnail's ranks correlate with the previous frame's much less than
    neighbouring frames do with theirs: ``1 - corr`` at least :data:`CUT_MIN_CHANGE` and
    :data:`CUT_CONTRAST` times the median over the 8 frames on either side. Ranks do not change under
    increasing tone curves, so the same cut is found in the HDR (PQ Y') and the SDR (BT.709 Y') version even
    when both shots have little texture. Only consecutive frame numbers are compared.
    """
    n = thumbs.count
    if n < 3:
        return np.zeros(0, np.int64)
    flat = thumbs.luma.reshape(n, -1).astype(np.float32, copy=False)
    ranks = _rank_rows(flat)
    ranks -= ranks.mean(axis=1, keepdims=True)
    ranks /= np.maximum(np.linalg.norm(ranks, axis=1, keepdims=True), 1e-9)
    change = np.full(n, np.nan)
    change[1:] = 1.0 - np.einsum("nd,nd->n", ranks[1:], ranks[:-1])
    change[1:][np.diff(thumbs.indices) != 1] = np.nan
    out = []
    for p in np.flatnonzero(np.nan_to_num(change, nan=0.0) >= CUT_MIN_CHANGE):
        around = np.concatenate([change[max(1, p - 8) : p], change[p + 1 : p + 9]])
        around = around[np.isfinite(around)]
        if around.size >= 4 and change[p] >= CUT_CONTRAST * max(float(np.median(around)), 1e-5):
            out.append(p)
    return np.asarray(out, np.int64)


@dataclass(frozen=True)
class CutMatch:
    """The offset range (HDR frames, relative to the line ``ratio * t * fps_hdr``) on which the most SDR cuts
    land on HDR cuts: ``low <= offset < high``; ``support``: how many cut pairs agree."""

    low: float
    high: float
    support: int
    position: int = 0  # the first SDR position (into the cut arrays' frames) of a supporting cut

    @property
    def centre(self) -> float:
        return 0.5 * (self.low + self.high)


def match_cuts(
    hdr_cuts: np.ndarray,
    sdr_cut_lines: np.ndarray,
    sdr_prev_lines: np.ndarray,
    max_offset_frames: float,
    sdr_cut_positions: np.ndarray | None = None,
) -> CutMatch | None:
    """The offsets that put SDR cuts onto HDR cuts (every pair within ``max_offset_frames``).

    ``hdr_cuts``: HDR frame numbers that start a shot; ``sdr_cut_lines`` / ``sdr_prev_lines``: line positions
    (HDR frames at zero offset) of each SDR frame that starts a shot and of the frame before it. SDR frame
    ``i`` shows HDR frame ``floor(line_i + offset + 0.5)``: the pair (SDR cut, HDR cut ``h``) holds for
    ``h - 0.5 - line_cut <= offset < h - 0.5 - line_prev`` (the cut frame shows the new shot, the one before
    it the old one). Returns the range covered by the most pairs, or None without any pair.
    """
    if hdr_cuts.size == 0 or sdr_cut_lines.size == 0:
        return None
    low = (hdr_cuts[None, :] - 0.5 - sdr_cut_lines[:, None]).ravel()
    high = (hdr_cuts[None, :] - 0.5 - sdr_prev_lines[:, None]).ravel()
    which = np.repeat(np.arange(sdr_cut_lines.size), hdr_cuts.size)
    keep = (np.abs(0.5 * (low + high)) <= max_offset_frames + 0.5) & (high > low)
    low, high, which = low[keep], high[keep], which[keep]
    if low.size == 0:
        return None
    edges = np.unique(np.concatenate([low, high]))
    best: CutMatch | None = None
    for a, b in itertools.pairwise(edges):
        mid = 0.5 * (a + b)
        covering = (low <= mid) & (mid < high)
        support = int(np.sum(covering))
        if support and (best is None or support > best.support):
            k = int(which[np.flatnonzero(covering)[0]])
            position = int(sdr_cut_positions[k]) if sdr_cut_positions is not None else k
            best = CutMatch(float(a), float(b), support, position)
    return best


def _ratio_candidates(fps_hdr: Fraction, fps_sdr: Fraction) -> list[float]:
    """Same speed, the frame-rate ratio (PAL speed-up / 1000/1001 re-timing), and 1000/1001 drifts."""
    out: list[float] = []
    for r in (1.0, float(fps_sdr / fps_hdr), 1001 / 1000, 1000 / 1001):
        if all(abs(r - o) > _RATIO_TOLERANCE for o in out):
            out.append(r)
    return out


# ============================================================================================ alignment


def _picture_areas(
    thumbs_hdr: Thumbnails, thumbs_sdr: Thumbnails
) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int], float]:
    hdr_area, hdr_clear = detect_active_area(thumbs_hdr.row_profile, thumbs_hdr.col_profile)
    sdr_area, sdr_clear = detect_active_area(thumbs_sdr.row_profile, thumbs_sdr.col_profile)
    return hdr_area, sdr_area, min(hdr_clear, sdr_clear)


def _initial_spatial(
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


@dataclass
class FrameMatches:
    """Per summarized SDR frame: its HDR frame (-1: none), the structure similarity of the two, and the SDR
    texture (high-pass Y' standard deviation); :func:`align_pair` picks frames to register from these."""

    sdr_index: np.ndarray
    hdr_index: np.ndarray
    similarity: np.ndarray
    texture: np.ndarray  # SDR high-pass Y' standard deviation on the feature grid


def pair_features(
    thumbs_hdr: Thumbnails, thumbs_sdr: Thumbnails
) -> tuple[SpatialAlignment, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What every temporal match compares: the black-bar geometry, then both streams' structure vectors on a
    common grid of their active pictures (:func:`frame_features`: vectors and validity per frame) and the SDR
    texture (high-pass Y' standard deviation per frame, for picking frames to register)."""
    hdr_area, sdr_area, clarity = _picture_areas(thumbs_hdr, thumbs_sdr)
    spatial = _initial_spatial(thumbs_hdr, thumbs_sdr, hdr_area, sdr_area, clarity)
    gw, gh = _grid_size(hdr_area, [(thumbs_hdr, hdr_area), (thumbs_sdr, sdr_area)])
    grid_s = _thumb_grid(thumbs_sdr, sdr_area, gw, gh)
    feat_h, valid_h = frame_features(_thumb_grid(thumbs_hdr, hdr_area, gw, gh))
    feat_s, valid_s = frame_features(grid_s)
    texture_s = (grid_s - _blur_stack(grid_s, HIGHPASS_SIGMA)).reshape(grid_s.shape[0], -1).std(axis=1)
    return spatial, feat_h, valid_h, feat_s, valid_s, texture_s


def align_thumbnails(
    thumbs_hdr: Thumbnails,
    thumbs_sdr: Thumbnails,
    *,
    max_offset_seconds: float = 10.0,
    hdr_frame_count: int | None = None,
    sdr_frame_count: int | None = None,
) -> tuple[Alignment, FrameMatches]:
    """Align two streams from their analysis-pass summaries (no decoding); the geometry is the black-bar one.

    ``thumbs_*`` may cover whole streams or time windows (see :func:`hdr_windows_for`). Frame counts bound the
    mapping (default: the last summarized frame when a whole stream was summarized). Returns the alignment and
    the per-frame matches (for :func:`align_pair`'s spatial refinement).
    """
    fps_h, fps_s = thumbs_hdr.fps, thumbs_sdr.fps
    if hdr_frame_count is None and thumbs_hdr.windows is None:
        hdr_frame_count = int(thumbs_hdr.indices[-1]) + 1
    if sdr_frame_count is None and thumbs_sdr.windows is None:
        sdr_frame_count = int(thumbs_sdr.indices[-1]) + 1

    spatial, feat_h, valid_h, feat_s, valid_s, texture_s = pair_features(thumbs_hdr, thumbs_sdr)

    reasons: list[str] = []
    if valid_h.sum() < 4 or valid_s.sum() < 4:
        raise AlignmentError("too few frames with picture content (black or flat video?) to align the pair")
    sdr_times = thumbs_sdr.indices / float(fps_s)
    peaks = _global_search(
        thumbs_hdr.indices,
        feat_h,
        valid_h,
        sdr_times,
        feat_s,
        valid_s,
        float(fps_h),
        float(fps_s),
        _ratio_candidates(fps_h, fps_s),
        max_offset_seconds * float(fps_h),
    )
    count_h = hdr_frame_count if hdr_frame_count is not None else int(thumbs_hdr.indices[-1]) + 1
    radius = max(4, math.ceil(0.5 * float(fps_h)))
    # track around the line of every ratio whose correlation is close to the best one; keep the best path
    # (a few dropped frames make the offset creep like a slightly wrong ratio: the path score decides)
    hdr_cuts = thumbs_hdr.indices[shot_changes(thumbs_hdr)]
    sdr_cuts = shot_changes(thumbs_sdr)
    best_track: tuple[_Peak, _Track, np.ndarray, CutMatch | None, str] | None = None
    for peak in sorted(peaks, key=lambda p: p.rank):  # simplest ratio first; others must save an offset change
        if peak.score < peaks[0].score - CLOSE_PEAK:
            continue
        line = peak.ratio * sdr_times * float(fps_h)  # HDR frame positions at zero offset
        offset, evidence = peak.offset_frames, "texture"
        cut = None
        if sdr_cuts.size and sdr_cuts[0] > 0:
            cut = match_cuts(
                hdr_cuts, line[sdr_cuts], line[sdr_cuts - 1], max_offset_seconds * float(fps_h), sdr_cuts
            )
        if cut is not None and peak_confidence(peak.z) < 0.9:  # texture alone does not pin the offset
            offset, evidence = cut.centre, "cut"
        base = line + offset
        if _one_to_one(peak.ratio, fps_h, fps_s):  # every SDR frame is one HDR frame: whole-frame offsets
            base = np.round(line) + round(offset)
        pin = None
        if evidence == "cut" and cut is not None:
            pin = (int(cut.position), cut.low - offset, cut.high - offset)
        track = _track(
            thumbs_hdr.indices, feat_h, thumbs_sdr.indices, feat_s, valid_s, base, count_h, radius, pin=pin
        )
        if best_track is None or track.objective > best_track[1].objective + SWITCH_COST:
            best_track = (peak, track, base + track.offsets - line, cut, evidence)
    assert best_track is not None
    peak, track, offsets, cut, evidence = best_track  # offsets: HDR frames, relative to ratio * t * fps_hdr

    # verification: a structured SDR frame must resemble its HDR frame
    matched_sim = track.similarity[valid_s & (track.hdr_index >= 0) & np.isfinite(track.similarity)]
    similarity = float(np.median(matched_sim)) if matched_sim.size else 0.0
    floor = max(0.15, 0.3 * similarity)
    bad = (track.hdr_index < 0) | (valid_s & np.isfinite(track.similarity) & (track.similarity < floor))
    hdr_index = np.where(bad, -1, track.hdr_index)
    checkable = valid_s & (track.hdr_index >= 0)
    coverage = float(np.mean(~bad[checkable])) if checkable.any() else 0.0

    # runs of constant offset (positions into the SDR summaries), then stretches of equal certainty
    one_to_one = _one_to_one(peak.ratio, fps_h, fps_s)
    runs: list[tuple[np.ndarray, float]] = []
    for seg in range(int(track.segment_id[-1]) + 1):
        members = np.flatnonzero((track.segment_id == seg) & ~bad)
        if members.size == 0:
            continue
        off = float(np.median(offsets[members]))
        off = float(round(off)) if one_to_one else off
        if runs and abs(runs[-1][1] - off) < 0.25:
            runs[-1] = (np.concatenate([runs[-1][0], members]), runs[-1][1])
        else:
            runs.append((members, off))
    cut_frames = set()  # SDR positions of cuts that land on HDR cuts with the chosen mapping
    hdr_cut_set = set(hdr_cuts.tolist())
    for p in sdr_cuts:
        if p > 0 and track.hdr_index[p] in hdr_cut_set and track.hdr_index[p - 1] == track.hdr_index[p] - 1:
            cut_frames.add(int(p))
    window = max(8, round(0.5 * float(fps_s)))
    lut = np.full(int(thumbs_hdr.indices.max()) + 2, -1, np.int64)
    lut[thumbs_hdr.indices] = np.arange(thumbs_hdr.count)

    def sims_for(positions: np.ndarray, frames: np.ndarray) -> np.ndarray:
        return _sims_at(feat_s[positions], feat_h, lut, count_h, frames[:, None])[:, 0]

    line = peak.ratio * sdr_times * float(fps_h)
    doubt = boundary_doubt(runs, line, sims_for, thumbs_sdr.indices) | track.ambiguous
    segments: list[Segment] = []
    seg_sizes: list[int] = []
    doubtful: list[int] = []  # SDR positions in stretches marked uncertain
    for members, off in runs:
        has_cut = any(int(p) in cut_frames for p in members)
        rated = certainty_stretches(track.gains, members, window, doubt)
        how = "cut" if has_cut and (evidence == "cut" or min(c for _, c, _ in rated) < 0.9) else "texture"
        confs = []
        for stretch, conf, _ in rated:
            if how == "cut" and not doubt[stretch].any():
                conf = 1.0  # a cut seen in both versions pins the offset of its whole run
            confs.append(conf)
            if conf < 0.5:
                doubtful.extend(int(p) for p in stretch)
        margins = [m for _, _, m in rated if m is not None]
        first, last = int(thumbs_sdr.indices[members[0]]), int(thumbs_sdr.indices[members[-1]])
        segments.append(
            Segment(first, last, off / float(fps_h), round(min(confs), 4), min(margins) if margins else None, how)
        )
        seg_sizes.append(members.size)
    headline = segments[int(np.argmax(seg_sizes))].offset_seconds if segments else peak.offset_frames / float(fps_h)
    unmatched = _ranges(thumbs_sdr.indices[bad])
    uncertain = _ranges(thumbs_sdr.indices[np.sort(np.asarray(doubtful, np.int64))])
    certain_share = 1.0 - len(doubtful) / max(1, sum(seg_sizes))

    c_sim = _similarity_confidence(similarity)
    c_z = 1.0 if evidence == "cut" else peak_confidence(peak.z)
    c_cov = _smoothstep(coverage, 0.3, 0.7)
    # stretches marked uncertain lower the pair's confidence only so far: their clips are checked one by one
    c_sure = 0.6 + 0.4 * _smoothstep(certain_share, 0.3, 0.9)
    confidence = min(c_sim, c_z, c_cov, c_sure)
    if c_sim < 0.9:
        reasons.append(
            f"matched frames look alike only weakly (structure similarity {similarity:.2f}): different titles, "
            "different cuts, or a very different grade?"
        )
    if c_z < 0.9:
        reasons.append(f"no distinct best offset (correlation peak {peak.score:.2f}, z = {peak.z:.1f})")
    if c_cov < 0.9:
        reasons.append(f"only {100 * coverage:.0f}% of the SDR frames were found in the HDR")
    if evidence == "cut":
        reasons.append(f"offset from {cut.support if cut else 0} hard cut(s) seen in both versions (little texture)")
    if certain_share < 1.0:
        reasons.append(
            f"{100 * (1 - certain_share):.0f}% of the matched SDR frames lie in stretches where neighbouring "
            "HDR frames look alike (slow or no motion): marked uncertain"
        )
    changes = sum(1 for a, b in itertools.pairwise(segments) if a.offset_seconds != b.offset_seconds)
    if changes:
        reasons.append(f"the offset changes {changes} time(s) (dropped or missing frames)")

    temporal = TemporalAlignment(
        offset_seconds=float(headline),
        ratio=peak.ratio,
        fps_hdr=fps_h,
        fps_sdr=fps_s,
        confidence=confidence,
        segments=tuple(segments),
        unmatched=tuple(unmatched),
        hdr_frame_count=hdr_frame_count,
        sdr_frame_count=sdr_frame_count,
        similarity=similarity,
        peak_z=peak.z,
        reasons=tuple(reasons),
        uncertain=tuple(uncertain),
    )
    overall = confidence if spatial.confidence >= 0.5 else min(confidence, spatial.confidence)
    alignment = Alignment(temporal, spatial, overall, tuple(reasons) + spatial.reasons)
    matches = FrameMatches(thumbs_sdr.indices, hdr_index, track.similarity, texture_s)
    return alignment, matches


# ============================================================================================ clip check


@dataclass(frozen=True)
class ClipTiming:
    """The temporal check of one clip: ``shift`` HDR frames to add to the predicted ones (0: as predicted),
    ``margin`` (z-score of that shift against the next best one, :func:`stretch_margin`; None: nothing to
    compare) and ``clear`` (the margin tells the shift from its neighbours: :func:`margin_confidence` >= 0.5)."""

    shift: int
    margin: float | None
    clear: bool


CLIP_REACH = 3  # HDR frames on either side of the predicted ones a clip is checked against


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
    gw, gh = _grid_size(hdr_area, [(thumbs_hdr, hdr_area), (thumbs_sdr, sdr_area)])
    feat_s, valid_s = frame_features(_thumb_grid(thumbs_sdr.select(pos_s), sdr_area, gw, gh))
    feat_h, valid_h = frame_features(_thumb_grid(thumbs_hdr.select(pos_h), hdr_area, gw, gh))
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


# ============================================================================================ spatial refinement


def _rank_image(img: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Global rank transform of an image (within ``mask``), float32 in (0, 1); outside the mask 0.5."""
    out = np.full(img.shape, 0.5, np.float32)
    values = img[mask] if mask is not None else img.ravel()
    if values.size == 0:
        return out
    ranks = _rank_rows(values[None, :].astype(np.float32))[0]
    if mask is not None:
        out[mask] = ranks
    else:
        out = ranks.reshape(img.shape)
    return out


def _band(rank: np.ndarray, mask: np.ndarray, *, fine: bool = False) -> np.ndarray:
    """Band-pass of a rank image for registration: light smoothing minus a blur (texture, not shading); zero
    outside ``mask``. The wide band (blur of about a tenth of the width) measures similarity; the ``fine`` one
    (blur sigma 8 px) keeps the edges that locate a picture to a fraction of a pixel."""
    import cv2

    sigma = 8.0 if fine else max(2.0, rank.shape[1] / 96) * 4
    out = cv2.GaussianBlur(rank, (0, 0), 1.0) - cv2.GaussianBlur(rank, (0, 0), sigma)
    out[~mask] = 0.0
    return out.astype(np.float32)


_PATCH_RESPONSE = 0.3  # phase-correlation peak below which a patch's shift is not trusted (flat or ambiguous)


def _patch_shifts(template: np.ndarray, moving: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Local shifts of ``moving`` against ``template`` on a 5 x 3 grid of overlapping patches (phase
    correlation with a Hann window, refined by ECC): rows ``(x, y, dx, dy)`` (patch centre, pixel-centre
    coords; ``moving(x + dx, y + dy)`` shows ``template(x, y)``) for the patches inside ``mask`` whose
    correlation peak is distinct."""
    import cv2

    height, width = template.shape
    size = max(16, min(width // 4, height // 2) // 2 * 2)
    window = cv2.createHanningWindow((size, size), cv2.CV_32F)
    rows = []
    for y0 in np.linspace(0, height - size, 3).round().astype(int):
        for x0 in np.linspace(0, width - size, 5).round().astype(int):
            if mask[y0 : y0 + size, x0 : x0 + size].mean() < 0.9:
                continue
            (dx, dy), response = cv2.phaseCorrelate(
                template[y0 : y0 + size, x0 : x0 + size], moving[y0 : y0 + size, x0 : x0 + size], window
            )
            if response < _PATCH_RESPONSE or max(abs(dx), abs(dy)) >= size / 4:
                continue
            # phase correlation is biased towards whole pixels: refine the shift by ECC (translation only,
            # well conditioned on a distinct patch), and drop the patch if the two disagree by a pixel
            warp = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]], np.float32)
            try:
                _, warp = cv2.findTransformECC(
                    template[y0 : y0 + size, x0 : x0 + size], moving[y0 : y0 + size, x0 : x0 + size], warp,
                    cv2.MOTION_TRANSLATION, (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-4), None, 1,
                )  # fmt: skip
            except cv2.error:
                continue
            ex, ey = float(warp[0, 2]), float(warp[1, 2])
            if max(abs(ex - dx), abs(ey - dy)) < 1.0:
                rows.append((x0 + (size - 1) / 2, y0 + (size - 1) / 2, ex, ey))
    return np.array(rows, np.float64).reshape(-1, 4)


def _fit_axis(position: np.ndarray, shift: np.ndarray, extent: float) -> tuple[float, float] | None:
    """``shift = a * position + b`` by least squares with one pass of outlier rejection (0.5 px); the slope is
    left at 0 when the positions span less than a third of ``extent`` (a scale would be a guess)."""
    keep = np.ones(position.size, bool)
    for _ in range(2):
        if keep.sum() < 2:
            return None
        if np.ptp(position[keep]) < extent / 3:
            a, b = 0.0, float(np.median(shift[keep]))
        else:
            a, b = (float(v) for v in np.polyfit(position[keep], shift[keep], 1))
        keep = np.abs(shift - (a * position + b)) <= 0.5
    if keep.sum() < 2:
        return None
    return a, b


def _register_patches(template: np.ndarray, moving: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    """Scale and shift per axis taking ``template`` onto ``moving`` (3x3, pixel-centre coords, template ->
    moving), from local phase-correlation shifts, in two rounds (the second on ``moving`` brought back by the
    first). ``None`` when fewer than four patches are distinct (smooth pictures locate nothing).

    Local shifts of distinct patches, fitted robustly, replace an affine ECC: on smooth pictures (skies,
    gradients) ECC converges to pixel-sized errors with almost no gain in correlation, while flat patches here
    simply do not vote.
    """
    import cv2

    height, width = template.shape
    total = np.eye(3)
    for round_ in range(2):
        current = moving
        if round_:
            current = cv2.warpAffine(
                moving, total[:2].astype(np.float32), (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
            )
        rows = _patch_shifts(template, current, mask)
        if len(rows) < 4:
            return None
        fx = _fit_axis(rows[:, 0], rows[:, 2], width)
        fy = _fit_axis(rows[:, 1], rows[:, 3], height)
        if fx is None or fy is None:
            return None
        step = np.array([[1.0 + fx[0], 0.0, fx[1]], [0.0, 1.0 + fy[0], fy[1]], [0.0, 0.0, 1.0]])
        total = total @ step
    return total


def refine_spatial(
    initial: SpatialAlignment,
    frame_pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    work_width: int = 960,
) -> SpatialAlignment:
    """Check and refine the black-bar geometry on full-resolution frame pairs of the same pictures.

    ``frame_pairs``: ``(hdr_luma (H, W), sdr_luma (Hs, Ws))`` float32 Y' (PQ BT.2020 Y' and BT.709 Y', any
    monotonic encoding works). The HDR active picture (reduced to at most ``work_width`` px) is registered
    against the SDR frame warped by the current geometry, by the local shifts of distinct patches of band-passed
    rank images (:func:`_register_patches`; the reported correlation is the ECC coefficient of Evangelidis &
    Psarakis 2008 after registration); pairs that disagree with the others are dropped and the rest combined by their
    median. When the registration agrees with the black-bar geometry at the picture corners within 0.75 work-grid
    pixels (at least 0.75 HDR px), the exact black-bar geometry is kept; otherwise the registered scale and
    shift are used and a reason is recorded when the two differ by more than two work-grid pixels.
    """
    import cv2

    hx, hy, hw, hh = initial.hdr_picture
    f = min(1.0, work_width / hw)
    ww, wh = max(16, round(hw * f)), max(16, round(hh * f))
    # edge-coordinate maps: work grid -> HDR frame, HDR frame -> SDR frame (initial geometry)
    work_to_hdr = np.array([[hw / ww, 0, hx], [0, hh / wh, hy], [0, 0, 1.0]])
    px, py = initial.sdr_picture[:2]
    hdr_to_sdr = np.array(
        [
            [1 / initial.scale_x, 0, px - initial.tx / initial.scale_x],
            [0, 1 / initial.scale_y, py - initial.ty / initial.scale_y],
            [0, 0, 1.0],
        ]
    )
    centre = np.array([[1.0, 0, 0.5], [0, 1.0, 0.5], [0, 0, 1.0]])  # centre coords -> edge coords

    def register(pair: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, float] | None:
        """Residual affine of one frame pair on the work grid, as an HDR -> SDR matrix, or None."""
        hdr_luma, sdr_luma = pair
        template = cv2.resize(
            np.ascontiguousarray(hdr_luma[hy : hy + hh, hx : hx + hw], np.float32),
            (ww, wh),
            interpolation=cv2.INTER_AREA,
        )
        sdr = np.asarray(sdr_luma, np.float32)
        pre = np.eye(3)
        shrink = min(1.0, initial.scale_x * f, initial.scale_y * f)
        if shrink < 0.999:  # area pre-filter before warping a larger SDR frame onto the work grid
            size = (max(1, round(sdr.shape[1] * shrink)), max(1, round(sdr.shape[0] * shrink)))
            sdr = cv2.resize(sdr, size, interpolation=cv2.INTER_AREA)
            pre = np.diag([size[0] / sdr_luma.shape[1], size[1] / sdr_luma.shape[0], 1.0])
        # work centre coords -> SDR (resized) centre coords
        m = np.linalg.inv(centre) @ pre @ hdr_to_sdr @ work_to_hdr @ centre
        warped = cv2.warpAffine(sdr, m[:2], (ww, wh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        ones = cv2.warpAffine(
            np.ones(sdr.shape, np.uint8), m[:2], (ww, wh), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
        )
        # compare only where the SDR is neither clipped nor crushed: clipping draws edges the HDR does not have
        usable = (ones > 0) & (warped > 0.02) & (warped < 0.97)
        mask = cv2.erode(usable.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
        if mask.sum() < 0.2 * mask.size or template.std() < MIN_CONTRAST or warped[mask].std() < MIN_CONTRAST:
            return None
        t_rank = _rank_image(template)
        w_rank = _rank_image(warped, mask)
        residual = _register_patches(_band(t_rank, mask, fine=True), _band(w_rank, mask, fine=True), mask)
        if residual is None:
            return None
        # the correlation after registration, on the wide band (the scale the confidence mapping expects)
        t_wide, w_wide = _band(t_rank, mask), _band(w_rank, mask)
        moved = cv2.warpAffine(
            w_wide, residual[:2].astype(np.float32), (ww, wh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        )
        cc = cv2.computeECC(t_wide, moved, mask.astype(np.uint8))
        # true HDR -> SDR (edge coords) = initial HDR->SDR after the residual warp found on the work grid
        residual = centre @ residual @ np.linalg.inv(centre)
        hdr_to_work = np.linalg.inv(work_to_hdr)
        return hdr_to_sdr @ work_to_hdr @ residual @ hdr_to_work, float(cc)

    # the pairs are independent and OpenCV / numpy release the GIL: two at a time
    with ThreadPoolExecutor(max_workers=2) as pool:
        registered = [r for r in pool.map(register, frame_pairs) if r is not None]
    results = [m for m, _ in registered]
    correlations = [c for _, c in registered]
    if not results:
        reasons = (*initial.reasons, "registration of full-resolution frames failed: geometry from black bars only")
        return SpatialAlignment(**{**initial.__dict__, "confidence": min(initial.confidence, 0.4), "reasons": reasons})

    # corners of the SDR picture (edge coords) mapped to HDR px by each registration; robust consensus
    px, py, pw, ph = initial.sdr_picture
    sdr_corners = np.array([[px, py, 1.0], [px + pw, py, 1.0], [px, py + ph, 1.0], [px + pw, py + ph, 1.0]]).T
    per_pair = np.stack([(np.linalg.inv(r) @ sdr_corners)[:2] for r in results])  # (P, 2, 4)
    consensus = np.median(per_pair, axis=0)
    deviation = np.max(np.abs(per_pair - consensus), axis=(1, 2))
    tolerance = max(1.0, 1.0 / f)  # one work-grid pixel, in HDR px
    inliers = deviation <= 2.0 * tolerance
    if inliers.sum() < max(1, (len(results) + 1) // 2):
        inliers = deviation <= np.median(deviation)
    spread = float(np.max(deviation[inliers]))
    h2s = np.median(np.stack([r for r, k in zip(results, inliers, strict=True) if k]), axis=0)
    s2h = np.linalg.inv(h2s)
    init_s2h = np.linalg.inv(hdr_to_sdr)
    disagreement = float(np.max(np.abs((s2h @ sdr_corners) - (init_s2h @ sdr_corners))[:2]))
    correlations = [c for c, k in zip(correlations, inliers, strict=True) if k]
    cc = float(np.median(correlations))
    reasons = list(initial.reasons)
    shear = abs(s2h[0, 1]) + abs(s2h[1, 0])
    confidence = _smoothstep(cc, 0.4, 0.7)
    if spread > 2.0 * tolerance or inliers.sum() < 2 <= len(results):
        confidence = min(confidence, 0.4)
        reasons.append(f"registrations of different frames disagree by {float(np.max(deviation)):.1f} HDR px")
    if cc < 0.6:
        reasons.append(f"full-resolution frames correlate weakly after registration ({cc:.2f})")
    if disagreement <= 0.75 * tolerance:  # the exact black-bar geometry is confirmed
        return SpatialAlignment(
            **{
                **initial.__dict__,
                "confidence": confidence,
                "refined": True,
                "residual": disagreement,
                "correlation": cc,
                "reasons": tuple(reasons),
            }
        )
    if disagreement > 2.0 * tolerance:
        reasons.append(
            f"the black-bar picture area and the registered geometry differ by {disagreement:.1f} HDR px; "
            "using the registered geometry"
        )
    if shear > 0.01:
        reasons.append(f"the registered geometry is rotated or sheared ({shear:.3f}); only scale and shift are used")
    sx, sy = float(s2h[0, 0]), float(s2h[1, 1])
    return SpatialAlignment(
        sdr_size=initial.sdr_size,
        hdr_size=initial.hdr_size,
        sdr_picture=initial.sdr_picture,
        hdr_picture=initial.hdr_picture,
        scale_x=sx,
        scale_y=sy,
        tx=float(s2h[0, 2] + sx * px),
        ty=float(s2h[1, 2] + sy * py),
        confidence=confidence,
        refined=True,
        residual=disagreement,
        correlation=cc,
        reasons=tuple(reasons),
    )


def refine_alignment(
    alignment: Alignment,
    matches: FrameMatches,
    read_lumas: Any,
    *,
    count: int = 3,
    allowed_sdr: Any = None,
) -> Alignment:
    """:func:`refine_spatial` on ``count`` well matched frame pairs; returns the alignment with the result.

    ``read_lumas(picks)``: for ``[(sdr_index, hdr_index), ...]`` returns ``[(hdr_luma, sdr_luma), ...]``
    full-resolution Y' (from a decoder, or from frames a pass kept). ``allowed_sdr``: only pick among these
    SDR frames (``None``: any matched frame).
    """
    picks = _pick_refinement_frames(matches, count, allowed_sdr)
    if not picks:
        return alignment
    spatial = refine_spatial(alignment.spatial, read_lumas(picks))
    reasons = alignment.temporal.reasons + spatial.reasons
    return Alignment(alignment.temporal, spatial, min(alignment.temporal.confidence, spatial.confidence), reasons)


def _pick_refinement_frames(matches: FrameMatches, count: int, allowed_sdr: Any = None) -> list[tuple[int, int]]:
    """Up to ``count`` matched (sdr, hdr) frame pairs, one per equal part of the sequence: the most textured
    among the well matched ones (texture conditions the registration)."""
    usable = (matches.hdr_index >= 0) & np.isfinite(matches.similarity)
    if allowed_sdr is not None:
        usable &= np.isin(matches.sdr_index, np.fromiter(allowed_sdr, np.int64))
    good = np.flatnonzero(usable)
    if good.size == 0:
        return []
    sims = matches.similarity[good]
    good = good[sims >= np.quantile(sims, 0.5)]
    picks = []
    for part in np.array_split(good, min(count, good.size)):
        if part.size:
            k = part[int(np.argmax(matches.texture[part]))]
            picks.append((int(matches.sdr_index[k]), int(matches.hdr_index[k])))
    return picks


# ============================================================================================ windows


def sparse_windows(duration: float, count: int = 3, length: float = 6.0) -> list[tuple[float, float]]:
    """``count`` SDR time windows of ``length`` seconds centred at (k + 0.5) / count of ``duration``."""
    if duration <= count * length:
        return [(0.0, float(duration))]
    out = []
    for k in range(count):
        centre = duration * (k + 0.5) / count
        start = min(max(0.0, centre - length / 2), duration - length)
        out.append((float(start), float(start + length)))
    return out


def hdr_windows_for(
    sdr_windows: Sequence[tuple[float, float]],
    fps_hdr: Fraction,
    fps_sdr: Fraction,
    max_offset_seconds: float,
    hdr_duration: float | None = None,
) -> list[tuple[float, float]]:
    """HDR time windows that contain what the given SDR windows show, for every candidate ratio and any offset
    up to ``max_offset_seconds`` (merged)."""
    from datakit.pairs.analysis import merge_windows

    out = []
    margin = max_offset_seconds + 1.0
    for ratio in _ratio_candidates(fps_hdr, fps_sdr):
        for start, end in sdr_windows:
            lo, hi = ratio * start - margin, ratio * end + margin
            if hdr_duration is not None:
                hi = min(hi, hdr_duration + 1.0)
            out.append((max(0.0, lo), hi))
    return merge_windows(out)


# ============================================================================================ entry point


def align_pair(
    hdr_path: str | os.PathLike[str],
    sdr_path: str | os.PathLike[str],
    *,
    thumbs_hdr: Thumbnails | None = None,
    thumbs_sdr: Thumbnails | None = None,
    max_offset_seconds: float = 10.0,
    sparse: bool = False,
    windows: Sequence[tuple[float, float]] | None = None,
    luma_width: int = 64,
    refine: bool = True,
    refine_frames: int = 3,
    min_confidence: float | None = MIN_CONFIDENCE,
    threads: int | str = "auto",
) -> Alignment:
    """Align an HDR10 video and its SDR version (see the module doc).

    ``thumbs_hdr`` / ``thumbs_sdr``: precomputed analysis-pass summaries (:func:`datakit.pairs.analysis.
    decode_thumbnails`) so that each stream is decoded once; missing ones are decoded here (whole streams).
    ``sparse=True`` or explicit SDR ``windows`` ``[(start, end), ...]`` in seconds decode only short windows
    (default :func:`sparse_windows`: three 6 s windows) and the HDR around them (:func:`hdr_windows_for`); the
    mapping of frames outside the windows follows the nearest preceding segment. ``refine``: check the
    geometry on ``refine_frames`` full-resolution frame pairs. Raises :class:`NotHDR10Error` if ``hdr_path``
    is not HDR10 (e.g. swapped files), :class:`UnsupportedFormatError` if ``sdr_path`` is not BT.709 SDR, and
    :class:`AlignmentError` when the confidence is below ``min_confidence`` (``None``: never; the result then
    carries ``reasons``).
    """
    from datakit.io.probe import probe, require_hdr10, require_sdr
    from datakit.pairs.analysis import decode_thumbnails

    info_hdr: VideoInfo = probe(hdr_path)
    require_hdr10(info_hdr)
    info_sdr: VideoInfo = probe(sdr_path)
    require_sdr(info_sdr)
    if sparse and windows is None:
        windows = sparse_windows(info_sdr.duration_seconds)
    if thumbs_sdr is None:
        thumbs_sdr = decode_thumbnails(sdr_path, luma_width=luma_width, windows=windows, threads=threads)
    if thumbs_hdr is None:
        hdr_windows = None
        if windows is not None:
            hdr_windows = hdr_windows_for(
                windows, info_hdr.fps, info_sdr.fps, max_offset_seconds, info_hdr.duration_seconds
            )
        thumbs_hdr = decode_thumbnails(hdr_path, luma_width=luma_width, windows=hdr_windows, threads=threads)
    alignment, matches = align_thumbnails(
        thumbs_hdr,
        thumbs_sdr,
        max_offset_seconds=max_offset_seconds,
        hdr_frame_count=info_hdr.frame_count if thumbs_hdr.windows is not None else None,
        sdr_frame_count=info_sdr.frame_count if thumbs_sdr.windows is not None else None,
    )
    if refine and alignment.temporal.confidence >= 0.25:
        from datakit.io.reader import VideoReader

        def read_lumas(picks: list[tuple[int, int]]) -> list[tuple[np.ndarray, np.ndarray]]:
            with VideoReader(sdr_path, encoding="sdr", threads=threads) as reader:
                sdr = [f.luma() for f in reader.read_at([s for s, _ in picks])]
            with VideoReader(hdr_path, encoding="pq", threads=threads) as reader:
                hdr = [f.luma() for f in reader.read_at([h for _, h in picks])]
            return list(zip(hdr, sdr, strict=True))

        alignment = refine_alignment(alignment, matches, read_lumas, count=refine_frames)
    elif not refine:
        alignment = Alignment(
            alignment.temporal,
            alignment.spatial,
            alignment.confidence,
            (*alignment.reasons, "geometry from black bars only (not checked on full-resolution frames)"),
        )
    if min_confidence is not None and alignment.confidence < min_confidence:
        why = "; ".join(alignment.reasons) or "not the same title?"
        raise AlignmentError(
            f"{os.fspath(hdr_path)} and {os.fspath(sdr_path)} could not be aligned "
            f"(confidence {alignment.confidence:.2f} < {min_confidence}): {why}"
        )
    return alignment
