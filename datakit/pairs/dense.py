"""The analysis of a dense build: each stream decoded once, the frames the clips need kept on the way.

1. SDR pass: luma and BGR thumbnails (:class:`datakit.pairs.analysis.ThumbnailCollector`), streaming scene
   detection, and, each time a scene ends, the clips the recipe would take from it: their frames are kept
   (:class:`datakit.pairs.retain.FrameStore`). Clips of the scene-based strategies depend on their scene only,
   so this equals the plan made from all cuts at the end (which is the one used).
2. HDR pass: luma thumbnails; once a few seconds are in, a provisional alignment of what has been decoded
   against the SDR predicts which HDR frames the clips need, and those are kept as the pass reaches them
   (recent frames wait in a ring meanwhile). The prediction is refreshed every :data:`REFRESH_SECONDS`.
3. The final alignment uses both whole streams; the geometry is refined on kept frame pairs.

Frames that were not kept (memory budget, or a wrong provisional guess) are decoded again when the clip
stage asks for them: the result never depends on the guesses, only the time does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from datakit.errors import AlignmentError
from datakit.pairs import analysis
from datakit.pairs.align import Alignment, align_thumbnails, refine_alignment
from datakit.pairs.clips import Clip, frames_needed, plan_clips
from datakit.pairs.retain import FrameStore
from datakit.pairs.scenes import StreamingCuts

__all__ = ["DenseAnalysis", "analyse_dense"]

FIRST_GUESS_SECONDS = 3.0  # HDR decoded before the first provisional alignment
RETRY_SECONDS = 3.0  # ... and between attempts until one is confident
REFRESH_SECONDS = 20.0  # ... and between refreshes once one is


@dataclass
class DenseAnalysis:
    """What the dense analysis hands to the clip stage."""

    thumbs_sdr: analysis.Thumbnails
    thumbs_hdr: analysis.Thumbnails
    cuts: list[int]
    clips: list[Clip]
    alignment: Alignment
    sdr_store: FrameStore
    hdr_store: FrameStore


def _scene_clips(strategy: str, params: dict[str, Any], fps: Any, start: int, end: int) -> list[int]:
    """SDR frames of the clips the strategy takes from the one scene ``[start, end)``."""
    clips = plan_clips(strategy, params, n_frames=end - start, fps=fps, cuts=())
    return [start + f for f in frames_needed(clips)]


def _provisional(
    collector: analysis.ThumbnailCollector, thumbs_sdr: analysis.Thumbnails, until: float, max_offset: float
) -> Alignment | None:
    """Alignment of the HDR decoded so far (``[0, until)`` seconds) with the SDR, or None if not distinct."""
    from datakit.pairs.align import _similarity_confidence, _smoothstep

    partial = collector.snapshot(windows=((0.0, until),))
    reach = until * 1.05 + max_offset + 1.0  # SDR times that can show the decoded HDR, any ratio candidate
    keep = np.flatnonzero(thumbs_sdr.times <= reach)
    if keep.size < 8 or partial.count < 8:
        return None
    try:
        alignment, _ = align_thumbnails(partial, thumbs_sdr.select(keep), max_offset_seconds=max_offset)
    except AlignmentError:
        return None
    temporal = alignment.temporal
    distinct = temporal.peak_z is None or _smoothstep(temporal.peak_z, 3.0, 6.0) >= 0.5
    return alignment if distinct and _similarity_confidence(temporal.similarity) >= 0.5 else None


def analyse_dense(recipe: dict[str, Any], sdr_reader: Any, hdr_reader: Any, *, memory_bytes: int) -> DenseAnalysis:
    """Run both passes (see the module doc). ``memory_bytes``: budget for kept and waiting frames (both
    streams). Raises :class:`AlignmentError` when the pair cannot be aligned at all."""
    align_cfg, scenes_cfg, clips_cfg = recipe["align"], recipe["scenes"], recipe["clips"]
    strategy = clips_cfg["strategy"]
    info_sdr, info_hdr = sdr_reader.info, hdr_reader.info
    quarter = memory_bytes // 4

    # ---- SDR pass: thumbnails, cuts, and the frames of each scene's clips as soon as the scene ends
    sdr_store = FrameStore(sdr_reader, ring_bytes=quarter, keep_bytes=quarter)
    cut_stream = StreamingCuts(
        info_sdr.fps, detector=scenes_cfg["detector"], threshold=scenes_cfg["threshold"],
        min_scene_len=scenes_cfg["min_scene_len"],
    )  # fmt: skip
    collector_sdr = analysis.ThumbnailCollector(
        sdr_reader, luma_width=align_cfg["thumb_width"], on_bgr=cut_stream, keep_bgr=False,
        bgr_width=analysis.whole_factor_width(info_sdr.width, scenes_cfg["thumb_width"]),
        profile_step=analysis.profile_step(info_sdr.fps, info_sdr.frame_count),
    )  # fmt: skip
    scene_start, known = 0, 0
    for frame in sdr_reader.frames():
        if not collector_sdr.add(frame):
            continue
        sdr_store.offer(frame)
        found = cut_stream.found()
        for cut in found[known:]:
            sdr_store.want(_scene_clips(strategy, clips_cfg, info_sdr.fps, scene_start, cut))
            scene_start = cut
        known = len(found)
    if not collector_sdr.count:
        raise AlignmentError(f"{sdr_reader.path}: no frame could be decoded")
    thumbs_sdr = collector_sdr.snapshot()
    cuts = cut_stream.cuts()
    clips = plan_clips(strategy, clips_cfg, n_frames=thumbs_sdr.count, fps=info_sdr.fps, cuts=cuts)
    sdr_needed = frames_needed(clips)
    sdr_store.want(sdr_needed)
    sdr_store.end_pass()

    # ---- HDR pass: thumbnails, and the frames a provisional alignment says the clips need
    hdr_store = FrameStore(hdr_reader, ring_bytes=quarter, keep_bytes=quarter)
    collector_hdr = analysis.ThumbnailCollector(
        hdr_reader, luma_width=align_cfg["thumb_width"],
        profile_step=analysis.profile_step(info_hdr.fps, info_hdr.frame_count),
    )  # fmt: skip
    max_offset = align_cfg["max_offset_seconds"]
    next_guess = FIRST_GUESS_SECONDS
    half_frame = 0.5 / float(info_hdr.fps)
    for frame in hdr_reader.frames():
        if not collector_hdr.add(frame):
            continue
        hdr_store.offer(frame)
        if sdr_needed and frame.time >= next_guess:
            guess = _provisional(collector_hdr, thumbs_sdr, frame.time + half_frame, max_offset)
            if guess is not None:
                hdr_store.want(h for h in guess.temporal.hdr_indices_for(sdr_needed) if h is not None)
            next_guess = frame.time + (REFRESH_SECONDS if guess is not None else RETRY_SECONDS)
    if not collector_hdr.count:
        raise AlignmentError(f"{hdr_reader.path}: no frame could be decoded")
    thumbs_hdr = collector_hdr.snapshot()

    # ---- final alignment from both whole streams; geometry refined on kept frame pairs
    alignment, matches = align_thumbnails(thumbs_hdr, thumbs_sdr, max_offset_seconds=max_offset)
    hdr_store.want(h for h in alignment.temporal.hdr_indices_for(sdr_needed) if h is not None)
    hdr_store.end_pass()
    if alignment.temporal.confidence >= 0.25:

        def kept_lumas(picks: list[tuple[int, int]]) -> list[tuple[np.ndarray, np.ndarray]]:
            sdr = sdr_store.get([s for s, _ in picks])
            hdr = hdr_store.get([h for _, h in picks])
            return [(h.luma(), s.luma()) for h, s in zip(hdr, sdr, strict=True)]

        alignment = refine_alignment(alignment, matches, kept_lumas, allowed_sdr=sdr_needed or None)
    return DenseAnalysis(thumbs_sdr, thumbs_hdr, cuts, clips, alignment, sdr_store, hdr_store)
