"""Extract frames of a video as HDRTV1K-style PNGs.

HDR10 input -> 16-bit PNG of PQ BT.2020 R'G'B' (``round(rgb_pq * 65535)``); SDR input -> 8-bit PNG
of BT.709 R'G'B'. Files are named ``frame_{index:06d}.png`` after the frame index. Only the frames
kept are converted.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from datakit.errors import UnsupportedFormatError
from datakit.io.images import write_png8, write_png16_pq
from datakit.io.reader import Frame, VideoReader


def frame_name(index: int) -> str:
    """File name of frame ``index``: ``frame_000123.png``."""
    return f"frame_{index:06d}.png"


def _selected(
    reader: VideoReader, start: float, every: float | None, frames: Sequence[int] | None
) -> tuple[Iterator[Frame], int | None]:
    """The frames to keep and how many there will be (None if unknown)."""
    info = reader.info
    fps = float(info.fps)
    tol = min(1e-3, 0.25 / fps)
    if frames is not None:
        indices = sorted({int(i) for i in frames if int(i) / fps >= start - tol})

        def by_index() -> Iterator[Frame]:
            for i in indices:
                yield reader.read_index(i)

        return by_index(), len(indices)
    if every is not None:
        remaining = max(0.0, info.duration_seconds - start)
        expected = math.floor(remaining / every + 1e-9) + 1 if remaining > 0 else 0

        def by_time() -> Iterator[Frame]:
            k = 0
            while True:
                frame = reader.read_from(start + k * every)
                if frame is None:
                    return
                yield frame
                # next multiple strictly after this frame (one file per frame even if every < 1/fps)
                k = max(k + 1, math.floor((frame.time - start + tol) / every) + 1)

        return by_time(), expected
    total = max(0, info.frame_count - math.ceil(start * fps - 1e-9)) if info.frame_count else None
    return reader.frames(start), total


def extract_frames(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    start: float = 0.0,
    every: float | None = None,
    frames: Sequence[int] | None = None,
    progress: bool = True,
) -> list[Path]:
    """Write frames of ``path`` to ``out_dir`` as PNG; returns the files written in frame order.

    - ``every``: one frame per ``every`` seconds: the first frame at or after ``start + k * every``.
    - ``frames``: explicit frame indices (0-based; those before ``start`` are skipped).
    - neither: every frame from ``start``.

    HDR10 input gives 16-bit PQ PNGs, SDR input 8-bit PNGs; anything else raises
    :class:`UnsupportedFormatError`.
    """
    if every is not None and frames is not None:
        raise ValueError("give either every or frames, not both")
    if every is not None and not every > 0:
        raise ValueError(f"every must be a positive number of seconds, got {every}")
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    from tqdm import tqdm

    out = Path(out_dir)
    with VideoReader(path, encoding="auto") as reader:
        kind = reader.info.kind
        if kind not in ("hdr10", "sdr"):
            raise UnsupportedFormatError(
                f"{path}: extract supports HDR10 and SDR video; this is {reader.info.describe()}"
            )
        if kind == "sdr":  # BT.709 SDR only (refuses wide-gamut SDR)
            from datakit.io.probe import require_sdr

            require_sdr(reader.info)
        out.mkdir(parents=True, exist_ok=True)
        selected, total = _selected(reader, float(start), every, frames)
        written: list[Path] = []
        with tqdm(total=total, unit="frame", desc="extract", disable=not progress) as bar:
            for frame in selected:
                target = out / frame_name(frame.index)
                if kind == "hdr10":
                    write_png16_pq(target, frame.rgb("uint16"))
                else:
                    write_png8(target, frame.rgb("uint8"))
                written.append(target)
                bar.update(1)
    return written
