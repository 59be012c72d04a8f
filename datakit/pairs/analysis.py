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

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

__all__ = ["Thumbnails", "decode_thumbnails", "merge_windows"]

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

    indices: list[int] = []
    times: list[float] = []
    lumas: list[np.ndarray] = []
    bgrs: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    profile_rows: list[int] = []
    bgr_w = bgr_width if bgr_width is not None else (256 if on_bgr is not None else None)
    with VideoReader(path, encoding="auto", threads=threads) as reader:
        info = reader.info
        fps = info.fps
        spans = merge_windows(windows) if windows is not None else [(0.0, None)]
        expected = info.frame_count if windows is None else sum((e - s) for s, e in spans) * float(fps)
        step = max(1, round(float(fps) / max(profiles_per_second, 1e-6)))
        step = max(1, min(step, int(expected) // 64))  # short inputs: still about 64 profiled frames
        for start, end in spans:
            for frame in reader.frames(start, end):
                if indices and frame.index <= indices[-1]:
                    continue  # merged windows never revisit frames; guard against decoder repeats
                position = len(indices)
                indices.append(frame.index)
                times.append(frame.time)
                if frame.index % step == 0 or position == 0:
                    full = frame.luma()
                    rows.append(full.mean(axis=1, dtype=np.float64).astype(np.float32))
                    cols.append(full.mean(axis=0, dtype=np.float64).astype(np.float32))
                    profile_rows.append(position)
                lumas.append(frame.luma(width=luma_width))
                if bgr_w is not None:
                    bgr = np.ascontiguousarray(frame.rgb("uint8", width=bgr_w)[..., ::-1])
                    if on_bgr is not None:
                        on_bgr(frame.index, frame.time, bgr)
                    if bgr_width is not None and keep_bgr:
                        bgrs.append(bgr)
        kind = info.kind
        size = (info.width, info.height)
    if not indices:
        where = "" if windows is None else f" in the windows {merge_windows(windows)}"
        raise InputError(f"{path}: no frame could be decoded{where}")
    return Thumbnails(
        indices=np.asarray(indices, np.int64),
        times=np.asarray(times, np.float64),
        luma=np.stack(lumas).astype(np.float32, copy=False),
        bgr=np.stack(bgrs) if bgrs else None,
        row_profile=np.stack(rows),
        col_profile=np.stack(cols),
        profile_rows=np.asarray(profile_rows, np.int64),
        fps=fps,
        frame_size=size,
        kind=kind,
        windows=None if windows is None else tuple(merge_windows(windows)),
    )
