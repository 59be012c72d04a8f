"""``align_pair``: probe, summarize and align two files (the entry point of ``datakit align``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from datakit.errors import AlignmentError
from datakit.pairs.align.confidence import MIN_CONFIDENCE
from datakit.pairs.align.dense import align_thumbnails
from datakit.pairs.align.registration import refine as refine_geometry
from datakit.pairs.align.results import Alignment
from datakit.pairs.align.timeline import hdr_windows_for, sparse_windows

if TYPE_CHECKING:
    from datakit.io.probe import VideoInfo
    from datakit.pairs.analysis import Thumbnails


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

        alignment = refine_geometry(alignment, matches, read_lumas, count=refine_frames)
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
