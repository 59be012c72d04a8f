"""The analysis pass: decode a stream once (or only some time windows) into small per-frame summaries.

Alignment (:mod:`datakit.pairs.align`) and scene detection (:mod:`datakit.pairs.scenes`) never look at
full-resolution pictures; they work on what this pass keeps for every decoded frame:

- ``luma``: Y' thumbnails ``(N, h, w)`` float32, the stream's own normalized luma signal in [0, 1]
  (PQ Y' of BT.2020 NCL for HDR10, ITU-R BT.2100; BT.709 Y' for SDR), area-downscaled from the full
  frame (letterbox bars included) to ``luma_width`` pixels wide;
- ``bgr``: optional BGR uint8 thumbnails ``(N, hb, wb, 3)`` about 256 px wide for PySceneDetect, the
  stream's own R'G'B' signal times 255 (PQ BT.2020 R'G'B' for HDR10, BT.709 R'G'B' for SDR), channels in
  OpenCV order;
- ``row_profile`` / ``col_profile``: the mean Y' of every full-resolution row / column, sampled on a
  few frames per second: black-bar detection needs exact pixel positions that thumbnails lose.

Memory: a 64 x 36 luma thumbnail is 9.2 kB per frame (0.8 GB per hour at 24 fps) and a 256 x 144 BGR
thumbnail 110 kB per frame; for long titles pass ``on_bgr`` to consume BGR thumbnails as they are decoded
(e.g. feed a scene detector) instead of keeping them.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from datakit.pairs.align import Alignment
    from datakit.pairs.clips import Clip
    from datakit.pairs.retain import FrameStore

__all__ = [
    "FrameSummarizer",
    "PairAnalysis",
    "ThumbnailCollector",
    "Thumbnails",
    "decode_thumbnails",
    "merge_windows",
    "profile_step",
    "read_ahead",
    "thumbnails_of",
]

BgrCallback = Callable[[int, float, np.ndarray], None]
"""``on_bgr(index, time, bgr_uint8)``: called for every decoded frame with its BGR thumbnail."""


@dataclass
class Thumbnails:
    """Per-frame summaries of one stream (see the module doc for the encodings).

    ``indices``/``times``: frame numbers (0-based, presentation order) and presentation times in seconds
    from the stream start, both ``(N,)`` and increasing. ``profile_rows`` holds the positions (into the
    N frames) of the frames whose full-resolution row/column profiles were measured.
    """

    indices: np.ndarray  # (N,) int64
    times: np.ndarray  # (N,) float64 seconds
    luma: np.ndarray  # (N, h, w) float32 Y' in [0, 1]
    bgr: np.ndarray | None  # (N, hb, wb, 3) uint8, or None when not requested
    row_profile: np.ndarray  # (P, H) float32 mean Y' of each full-resolution row
    col_profile: np.ndarray  # (P, W) float32 mean Y' of each full-resolution column
    profile_rows: np.ndarray  # (P,) int64 positions into the N frames
    fps: Fraction
    frame_size: tuple[int, int]  # full-resolution (width, height)
    kind: str  # VideoInfo.kind of the stream: "hdr10" or "sdr"
    windows: tuple[tuple[float, float], ...] | None = None  # decoded time windows (None: whole stream)

    @property
    def count(self) -> int:
        """Number of frames summarized."""
        return int(self.indices.shape[0])

    @property
    def thumb_size(self) -> tuple[int, int]:
        """(width, height) of the luma thumbnails."""
        return int(self.luma.shape[2]), int(self.luma.shape[1])

    def select(self, positions: np.ndarray) -> Thumbnails:
        """A subset of the frames (``positions`` into the N frames, increasing); profiles follow."""
        positions = np.asarray(positions, np.int64)
        keep = np.isin(self.profile_rows, positions)
        remap = np.searchsorted(positions, self.profile_rows[keep])
        return Thumbnails(
            indices=self.indices[positions],
            times=self.times[positions],
            luma=self.luma[positions],
            bgr=None if self.bgr is None else self.bgr[positions],
            row_profile=self.row_profile[keep],
            col_profile=self.col_profile[keep],
            profile_rows=remap.astype(np.int64),
            fps=self.fps,
            frame_size=self.frame_size,
            kind=self.kind,
            windows=self.windows,
        )


@dataclass
class PairAnalysis:
    """What an analysis (:func:`datakit.pairs.dense.analyse_dense` or :func:`datakit.pairs.sparse.analyse_sparse`)
    hands to the clip stage: the alignment, the planned clips, the frames kept for them (or decoded again), how
    it aligned (``method``), and, from a dense analysis, the cuts and both streams' thumbnails (the clip stage
    gates and checks the clips' timing on them; a sparse analysis summarizes windows only: ``None``, and the
    clip stage summarizes the frames around each clip). ``hdr_stats``: the title's not-HDR statistics
    (:func:`datakit.pairs.gates.hdr_stats`) and how many frames they cover, taken on HDR frames the analysis
    decoded anyway (:mod:`datakit.audit.hdr_range`: the dense pass's spread frames, the sparse pass's keyframes);
    ``None``: the gate decodes its own."""

    alignment: Alignment
    clips: list[Clip]
    sdr_store: FrameStore
    hdr_store: FrameStore
    method: str
    cuts: list[int] | None = None
    thumbs_sdr: Thumbnails | None = None
    thumbs_hdr: Thumbnails | None = None
    hdr_stats: tuple[dict[str, Any], int] | None = None


READ_AHEAD = 4  # decoded frames a pass may hold before its summaries catch up (6 MB each at 1080p 10-bit)


def read_ahead(frames: Iterable[Any], depth: int = READ_AHEAD, name: str = "datakit-decode") -> Iterator[Any]:
    """The items of ``frames`` (a reader's decoded frames, or a sparse build's gated clips), produced by a thread
    of their own up to ``depth`` ahead: the decoder (PyAV decodes without the GIL) keeps going while the caller
    works on what it produced, instead of waiting for it. Errors of the producer are raised here, in order;
    stopping early (or closing the generator) stops the producer."""
    items: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in frames:
                while not stop.is_set():
                    try:
                        items.put((True, item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put((False, None))
        except BaseException as error:  # handed to the consumer
            items.put((False, error))

    producer = threading.Thread(target=produce, name=name, daemon=True)
    producer.start()
    try:
        while True:
            more, item = items.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()
        while producer.is_alive():  # unblock a producer waiting to put, then let it finish
            with contextlib.suppress(queue.Empty):
                items.get(timeout=0.1)
        producer.join()


def merge_windows(windows: Sequence[tuple[float, float]], gap: float = 0.0) -> list[tuple[float, float]]:
    """Sort time windows ``(start, end)`` in seconds and merge those overlapping or closer than ``gap``."""
    merged: list[list[float]] = []
    for start, end in sorted((max(0.0, float(s)), float(e)) for s, e in windows):
        if end <= start:
            continue
        if merged and start <= merged[-1][1] + gap:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def whole_factor_width(frame_width: int, target: int) -> int:
    """The width nearest ``target`` that divides ``frame_width`` by a whole number (1920 -> 256 gives 240).

    OpenCV's area filter has a fast path for whole reduction factors (about 4x faster at 1080p).
    """
    factor = max(1, round(frame_width / max(1, target)))
    return max(1, frame_width // factor)


class FrameSummarizer:
    """The per-frame work of the analysis pass, touching each full-resolution plane once.

    The Y' code plane is area-reduced by a whole factor to a base grid about 256 px wide (by halvings,
    :func:`datakit.io.reader.area_reduce`; integer codes, rounding averaged out by the next reduction);
    the luma thumbnail is an area reduction of that grid, the BGR thumbnail converts the base grid with the
    chroma planes reduced to the same size (the stream's own matrix and range; chroma siting does not
    matter at that scale). Profiles are exact full-resolution row/column sums of the Y' codes.
    """

    def __init__(self, reader: Any, luma_width: int, bgr_width: int | None) -> None:
        from datakit.io.reader import area_size

        info = reader.info
        self.width, self.height = info.width, info.height
        self.converter = reader.converter
        target = max(bgr_width or 0, 4 * luma_width, 128)
        self.base = area_size(self.width, self.height, whole_factor_width(self.width, target))
        self.luma_size = area_size(self.width, self.height, luma_width)
        self.bgr_size = None if bgr_width is None else area_size(self.width, self.height, bgr_width)

    def __call__(
        self, frame: Any, *, profile: bool
    ) -> tuple[np.ndarray, np.ndarray | None, tuple[np.ndarray, np.ndarray] | None]:
        import cv2

        from datakit.io.reader import area_reduce

        y, u, v = frame.planes()
        conv = self.converter
        base_y = area_reduce(y, self.base).astype(np.float32)
        luma = conv.luma(cv2.resize(base_y, self.luma_size, interpolation=cv2.INTER_AREA))
        profiles = None
        if profile:
            depth = cv2.CV_32S if y.dtype == np.uint8 else cv2.CV_32F  # OpenCV's fast sums (exact below 2^24)
            row_sums = cv2.reduce(y, 1, cv2.REDUCE_SUM, dtype=depth)[:, 0].astype(np.float64)
            col_sums = cv2.reduce(y, 0, cv2.REDUCE_SUM, dtype=depth)[0].astype(np.float64)
            profiles = (
                conv.luma((row_sums / y.shape[1]).astype(np.float32)[None])[0],
                conv.luma((col_sums / y.shape[0]).astype(np.float32)[None])[0],
            )
        bgr = None
        if self.bgr_size is not None:
            size = self.bgr_size
            small_y = base_y if size == self.base else cv2.resize(base_y, size, interpolation=cv2.INTER_AREA)
            if u is None or v is None:
                gray = np.rint(conv.luma(small_y) * np.float32(255)).astype(np.uint8)
                bgr = cv2.merge([gray, gray, gray])
            else:
                small_u = area_reduce(u, size).astype(np.float32)
                small_v = area_reduce(v, size).astype(np.float32)
                bgr = conv.thumbnail_bgr(small_y, small_u, small_v)
        return luma, bgr, profiles


def decode_thumbnails(
    path: str | os.PathLike[str],
    *,
    luma_width: int = 64,
    bgr_width: int | None = None,
    windows: Sequence[tuple[float, float]] | None = None,
    profiles_per_second: float = 2.0,
    on_bgr: BgrCallback | None = None,
    keep_bgr: bool = True,
    threads: int | str = "auto",
) -> Thumbnails:
    """Decode ``path`` once and summarize every frame (whole stream, or only ``windows`` in seconds).

    ``luma_width``: thumbnail width (area downscale of Y', the height keeps the frame aspect ratio).
    ``bgr_width``: keep BGR thumbnails this wide (``None``: keep none). ``on_bgr``: also compute BGR
    thumbnails (``bgr_width`` or 256 px) and hand each to this callback as it is decoded;
    ``keep_bgr=False`` then keeps none in memory (streaming scene detection on long titles).
    ``profiles_per_second``: how many frames per second get full-resolution row/column profiles (for
    black-bar detection; more when that would give fewer than 64). The stream may be HDR10 or SDR
    (``VideoReader(encoding="auto")``); other streams raise from the reader. Raises
    :class:`datakit.errors.InputError` if no frame decodes.
    """
    from datakit.errors import InputError
    from datakit.io.reader import VideoReader

    with VideoReader(path, encoding="auto", threads=threads) as reader:
        spans = merge_windows(windows) if windows is not None else [(0.0, None)]
        expected = reader.info.frame_count if windows is None else sum((e - s) for s, e in spans) * float(reader.fps)
        collector = ThumbnailCollector(
            reader, luma_width=luma_width, bgr_width=bgr_width, on_bgr=on_bgr, keep_bgr=keep_bgr,
            profile_step=profile_step(reader.fps, expected, profiles_per_second),
        )  # fmt: skip
        for start, end in spans:
            for frame in reader.frames(start, end):
                collector.add(frame)
    if not collector.count:
        where = "" if windows is None else f" in the windows {merge_windows(windows)}"
        raise InputError(f"{path}: no frame could be decoded{where}")
    return collector.snapshot(None if windows is None else tuple(merge_windows(windows)))


def thumbnails_of(reader: Any, frames: Sequence[Any], *, luma_width: int, bgr_width: int | None = None) -> Thumbnails:
    """The analysis-pass summaries of frames already decoded (increasing indices, at least one; a sparse
    clip's window and the HDR frames around it), as a dense pass makes them: one :class:`ThumbnailCollector`
    of ``reader``'s stream (full-resolution profiles of the first frame only)."""
    collector = ThumbnailCollector(reader, luma_width=luma_width, bgr_width=bgr_width, profile_step=1 << 30)
    for frame in frames:
        collector.add(frame)
    return collector.snapshot(((float(frames[0].time), float(frames[-1].time)),))


def profile_step(fps: Fraction, expected_frames: float, profiles_per_second: float = 2.0) -> int:
    """Every how many frames to measure full-resolution profiles: ``profiles_per_second``, but at least
    about 64 profiled frames on short inputs."""
    step = max(1, round(float(fps) / max(profiles_per_second, 1e-6)))
    return max(1, min(step, int(expected_frames) // 64))


class ThumbnailCollector:
    """Accumulates the analysis-pass summaries of one stream, frame by frame (see :func:`decode_thumbnails`).

    ``add(frame)`` summarizes a decoded :class:`datakit.io.reader.Frame` (frames must come in increasing
    index order; repeats are ignored and ``add`` returns False); ``snapshot()`` returns what was collected so
    far as :class:`Thumbnails` (usable mid-pass, e.g. for a provisional alignment, also from another thread
    than the one adding frames).
    """

    def __init__(
        self,
        reader: Any,
        *,
        luma_width: int = 64,
        bgr_width: int | None = None,
        on_bgr: BgrCallback | None = None,
        keep_bgr: bool = True,
        profile_step: int = 12,
    ) -> None:
        self.info = reader.info
        self.on_bgr = on_bgr
        self.keep_bgr = keep_bgr and bgr_width is not None
        self.profile_step = max(1, int(profile_step))
        bgr_w = bgr_width if bgr_width is not None else (256 if on_bgr is not None else None)
        self._summarize = FrameSummarizer(reader, luma_width, bgr_w)
        self.indices: list[int] = []
        self.times: list[float] = []
        self.lumas: list[np.ndarray] = []
        self.bgrs: list[np.ndarray] = []
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.profile_rows: list[int] = []
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        return len(self.indices)

    def add(self, frame: Any) -> bool:
        """Summarize one frame; False (and nothing kept) for a frame at or before the last one."""
        if self.indices and frame.index <= self.indices[-1]:
            return False  # merged windows never revisit frames; guard against decoder repeats
        position = len(self.indices)
        luma, bgr, profiles = self._summarize(frame, profile=frame.index % self.profile_step == 0 or position == 0)
        with self._lock:
            self.indices.append(frame.index)
            self.times.append(frame.time)
            if profiles is not None:
                self.rows.append(profiles[0])
                self.cols.append(profiles[1])
                self.profile_rows.append(position)
            self.lumas.append(luma)
        if bgr is not None:
            if self.on_bgr is not None:
                self.on_bgr(frame.index, frame.time, bgr)
            if self.keep_bgr:
                self.bgrs.append(bgr)
        return True

    def snapshot(
        self, windows: tuple[tuple[float, float], ...] | None = None, since: float | None = None
    ) -> Thumbnails:
        """The frames collected so far (at least one). ``windows``: the time windows they cover, for a
        partial pass (``None``: the whole stream). ``since``: only the frames from this time on (seconds), from
        the last profiled frame at or before it (a long pass's recent part, without stacking all of it)."""
        with self._lock:  # shallow copies: another thread may be adding frames
            first = 0
            if since is not None and self.profile_rows:
                first = bisect.bisect_left(self.times, since)
                first = self.profile_rows[max(0, bisect.bisect_right(self.profile_rows, first) - 1)]
            indices, times, lumas = self.indices[first:], self.times[first:], self.lumas[first:]
            bgrs = self.bgrs[first : len(self.indices)]
            keep = bisect.bisect_left(self.profile_rows, first)
            rows, cols = self.rows[keep:], self.cols[keep:]
            profile_rows = [p - first for p in self.profile_rows[keep:]]
        return Thumbnails(
            indices=np.asarray(indices, np.int64),
            times=np.asarray(times, np.float64),
            luma=np.stack(lumas).astype(np.float32, copy=False),
            bgr=np.stack(bgrs) if bgrs else None,
            row_profile=np.stack(rows),
            col_profile=np.stack(cols),
            profile_rows=np.asarray(profile_rows, np.int64),
            fps=self.info.fps,
            frame_size=(self.info.width, self.info.height),
            kind=self.info.kind,
            windows=windows,
        )
