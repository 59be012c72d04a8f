"""The aligner's result types: the frame mapping (:class:`TemporalAlignment` and its :class:`Segment`), the
picture geometry (:class:`SpatialAlignment`), both together (:class:`Alignment`) and the per-frame matches a
refinement picks frames from (:class:`FrameMatches`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from datakit.pairs.align.features import PairFeatures

import numpy as np

RATIO_TOLERANCE = 1e-6


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
        if self.fps_hdr != self.fps_sdr or abs(self.ratio - 1.0) > RATIO_TOLERANCE:
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

        from datakit.pairs.align.confidence import similarity_confidence
        from datakit.pairs.align.features import luma_of, pair_similarity

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

        sims = pair_similarity(
            luma_of(small(np.asarray(hdr_clip)), "bt2020"), luma_of(small(np.asarray(sdr_clip)), "bt709"), width=160
        )
        return similarity_confidence(float(np.min(sims)))


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
            int(a),
            int(b),
            float(c),
            float(d.get("confidence", 1.0)),
            d.get("margin"),
            str(d.get("evidence", "texture")),
        )
        for (a, b, c), d in zip(data["segments"], details, strict=True)
    )


@dataclass
class FrameMatches:
    """Per summarized SDR frame: its HDR frame (-1: none), the structure similarity of the two, and the SDR
    texture (high-pass Y' standard deviation); :func:`align_pair` picks frames to register from these."""

    sdr_index: np.ndarray
    hdr_index: np.ndarray
    similarity: np.ndarray
    texture: np.ndarray  # SDR high-pass Y' standard deviation on the feature grid


class Score(NamedTuple):
    """One named confidence of a temporal match, in [0, 1], and the reason shown when it is low."""

    name: str
    value: float
    reason: str


@dataclass(frozen=True)
class TemporalMatch:
    """What a temporal matcher returns: the frame mapping (``temporal``; its ``confidence`` and ``reasons`` are
    filled by :func:`datakit.pairs.align.confidence.assemble`), the matched frame pairs a refinement picks from,
    the scores the confidence is made of, and notes shown whatever the scores (offset changes, a cut used)."""

    temporal: TemporalAlignment
    matches: FrameMatches
    scores: tuple[Score, ...]
    notes: tuple[str, ...] = ()

    def score(self, name: str) -> float:
        """The value of the score called ``name`` (1.0 when the matcher has none of that name)."""
        return next((s.value for s in self.scores if s.name == name), 1.0)


class TemporalMatcher(Protocol):
    """A way of finding which HDR frame each SDR frame shows (dense: every frame; keyframes: HDR keyframes
    against SDR windows). ``match`` returns None when it has too little to go on (the caller may try another
    matcher) and raises :class:`datakit.errors.AlignmentError` when the pair cannot be aligned at all."""

    def match(self, features: PairFeatures) -> TemporalMatch | None: ...
