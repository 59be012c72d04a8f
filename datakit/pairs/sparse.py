"""The analysis of a sparse build (``interval``, ``single``): align without decoding most of either stream.

Sparse protocols keep a few frames every couple of seconds, so a build can be faster than decoding the streams
once. The alignment must then come from little decoding:

1. SDR: every frame of :data:`WINDOWS` short windows (:func:`datakit.pairs.align.sparse_windows`), summarized as
   in the dense pass; their frames wait in a :class:`datakit.pairs.retain.FrameStore` (clip frames inside a
   window are kept).
2. HDR: only the keyframes in the time ranges the SDR windows can show at any offset within
   ``max_offset_seconds`` and any candidate speed ratio (:func:`datakit.io.reader.VideoReader.keyframes`; a
   keyframe costs a few frames, a group of pictures costs one).
3. :class:`datakit.pairs.align.KeyframeMatcher` matches the HDR keyframes (pictures of the title at known HDR
   frame numbers) against the SDR windows, on the same ordinal features as the dense alignment
   (:func:`datakit.pairs.align.pair_features`); :func:`datakit.pairs.align.assemble` makes its confidence.
4. The geometry starts from the black bars (profiles of the SDR window frames and of the HDR keyframes) and is
   refined (:func:`datakit.pairs.align.refine`) on keyframe / SDR frame pairs already decoded.

When too few keyframes fall inside the windows (long groups of pictures), when the match is not confident, or
when SDR frames do not show one HDR frame each (different frame rates at the same speed: an isolated keyframe
then pins the offset only to about a frame, measured), :func:`analyse_sparse` falls back to
:class:`datakit.pairs.align.DenseMatcher` (sub-frame positions) on every HDR frame of the ranges the SDR
windows can show, decoded by the pair's own reader (its thread budget) at the recipe's ``thumb_width``; the
geometry is then refined on three picked pairs (the HDR ones sought).

Clips are checked in time one by one by the clip stage (:mod:`datakit.pairs.build`), which decodes the HDR
frames around each clip with it and summarizes them for :func:`datakit.pairs.align.check_clip_timing`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from datakit.audit.hdr_range import title_hdr_stats
from datakit.errors import AlignmentError
from datakit.pairs import analysis
from datakit.pairs.align import (
    Alignment,
    DenseMatcher,
    FrameMatches,
    KeyframeMatcher,
    TemporalAlignment,
    assemble,
    hdr_windows_for,
    pair_features,
    refine,
    sparse_windows,
)
from datakit.pairs.align.keyframes import MIN_KEYFRAMES
from datakit.pairs.align.registration import pick_refinement_frames
from datakit.pairs.align.timeline import one_to_one
from datakit.pairs.clips import Clip, frames_needed, plan_clips
from datakit.pairs.retain import FrameStore

__all__ = ["analyse_sparse", "snap_to_keyframes"]

WINDOWS = 2  # SDR windows decoded densely
WINDOW_SECONDS = 4.0
REFINE_FRAMES = 3  # frame pairs the geometry is refined on


def snap_to_keyframes(
    clips: list[Clip], keyframe_times: list[float], temporal: TemporalAlignment, sdr_frames: int, reach: float
) -> list[Clip]:
    """Move each clip so that its first frame shows an HDR keyframe (``keyframe_times``: presentation times in
    HDR seconds, :meth:`datakit.io.reader.VideoReader.keyframe_times`), when one lies within ``reach`` seconds of
    where the clip starts; other clips stay.

    Seeking to a keyframe decodes nothing before it, where an arbitrary frame costs on average half a group of
    pictures (12-125 frames): sampling one frame every 2 s then decodes a few frames instead of dozens. Clips
    keep their length and order, stay inside the SDR stream and never overlap the previous clip; the cut check
    and the gates run on the moved clips.
    """
    if not keyframe_times:
        return clips
    keys = np.asarray(keyframe_times, np.float64)
    fps_h, fps_s = float(temporal.fps_hdr), float(temporal.fps_sdr)
    out: list[Clip] = []
    previous_end = -1
    for clip in clips:
        n = len(clip.frames)
        start = temporal.hdr_time_for(clip.frames[0])
        offset = start - temporal.ratio * clip.frames[0] / fps_s  # the offset of the clip's segment
        near = keys[np.abs(keys - start) <= reach]
        moved = None
        for key in sorted(near, key=lambda k: abs(k - start)):
            key_index = round(key * fps_h)
            first = round((key_index / fps_h - offset) / temporal.ratio * fps_s)
            if first <= previous_end or first < 0 or first + n > sdr_frames:
                continue
            if temporal.hdr_index_for(first) == key_index:
                moved = first
                break
        if moved is None:
            out.append(clip)
            previous_end = clip.frames[-1]
            continue
        out.append(Clip(clip.scene, list(range(moved, moved + n))))
        previous_end = moved + n - 1
    return out


def _clip_context(clips: list[Clip], margin: int, frame_count: int) -> set[int]:
    """The SDR frames the clip stage reads: each clip with ``margin`` frames on either side (its cut check),
    and every frame it keeps."""
    context: set[int] = set()
    for clip in clips:
        context.update(range(max(0, clip.frames[0] - margin), min(frame_count, clip.frames[-1] + margin + 1)))
    context.update(frames_needed(clips))
    return context


def _decode_sdr_windows(
    sdr_reader: Any, sdr_store: FrameStore, windows: list[tuple[float, float]], context: set[int], align_cfg: Any
) -> tuple[list[tuple[int, int]], analysis.ThumbnailCollector]:
    """Step 1: every frame of the SDR windows, summarized; their frames wait in ``sdr_store`` (those of
    ``context`` are kept). Returns the ``(first, last)`` frame numbers of each window and the collector."""
    info_sdr = sdr_reader.info
    expected = sum(e - s for s, e in windows) * float(info_sdr.fps)
    collector_s = analysis.ThumbnailCollector(
        sdr_reader, luma_width=align_cfg["thumb_width"],
        profile_step=analysis.profile_step(info_sdr.fps, expected),
    )  # fmt: skip
    frame_windows: list[tuple[int, int]] = []
    for start, end in windows:
        first = None
        for frame in sdr_reader.frames(start, end):
            if collector_s.add(frame):
                first = frame.index if first is None else first
                sdr_store.offer(frame)
                if frame.index in context:
                    sdr_store.want([frame.index])
        if first is not None:
            frame_windows.append((first, collector_s.indices[-1]))
    if not collector_s.count:
        raise AlignmentError(f"{sdr_reader.path}: no frame could be decoded")
    return frame_windows, collector_s


def _align_windows(
    hdr_reader: Any,
    hdr_ranges: list[tuple[float, float]],
    thumbs_sdr: analysis.Thumbnails,
    align_cfg: Any,
    sdr_frame_count: int,
) -> tuple[Alignment, FrameMatches]:
    """The fallback: every HDR frame of the ranges the SDR windows can show, summarized at the recipe's
    ``thumb_width`` by this pair's reader (its thread budget), matched densely against the SDR windows
    already summarized (:class:`~datakit.pairs.align.DenseMatcher`: sub-frame positions when rates differ)."""
    info_hdr = hdr_reader.info
    expected = sum(e - s for s, e in hdr_ranges) * float(info_hdr.fps)
    collector = analysis.ThumbnailCollector(
        hdr_reader, luma_width=align_cfg["thumb_width"], profile_step=analysis.profile_step(info_hdr.fps, expected)
    )
    for start, end in hdr_ranges:
        for frame in hdr_reader.frames(start, end):
            collector.add(frame)
    if not collector.count:
        raise AlignmentError(f"{hdr_reader.path}: no frame could be decoded")
    features = pair_features(
        collector.snapshot(tuple(hdr_ranges)), thumbs_sdr, hdr_frame_count=info_hdr.frame_count,
        sdr_frame_count=sdr_frame_count,
    )  # fmt: skip
    match = DenseMatcher(align_cfg["max_offset_seconds"]).match(features)
    return assemble(features.spatial, match), match.matches


def analyse_sparse(
    recipe: dict[str, Any], sdr_reader: Any, hdr_reader: Any, *, memory_bytes: int
) -> analysis.PairAnalysis:
    """Plan the clips and align the pair from short windows (see the module doc)."""
    align_cfg, clips_cfg = recipe["align"], recipe["clips"]
    info_sdr, info_hdr = sdr_reader.info, hdr_reader.info
    clips = plan_clips(clips_cfg["strategy"], clips_cfg, n_frames=info_sdr.frame_count, fps=info_sdr.fps)
    margin = clips_cfg["margin"] + 1
    context = _clip_context(clips, margin, info_sdr.frame_count)
    quarter = memory_bytes // 4
    sdr_store = FrameStore(sdr_reader, ring_bytes=quarter, keep_bytes=quarter)
    hdr_store = FrameStore(hdr_reader, ring_bytes=0, keep_bytes=quarter)
    max_offset = align_cfg["max_offset_seconds"]

    windows = sparse_windows(info_sdr.duration_seconds, count=WINDOWS, length=WINDOW_SECONDS)

    # 2. (in a thread, beside 1: the two streams decode at once) HDR keyframes in every range the windows can show
    hdr_ranges = hdr_windows_for(windows, info_hdr.fps, info_sdr.fps, max_offset, info_hdr.duration_seconds)
    collector_h = analysis.ThumbnailCollector(hdr_reader, luma_width=align_cfg["thumb_width"], profile_step=1)
    keyframes: dict[int, Any] = {}

    def decode_keyframes() -> None:
        for start, end in hdr_ranges:
            for frame in hdr_reader.keyframes(start, end):
                if collector_h.add(frame):
                    keyframes[frame.index] = frame

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="datakit-keyframes") as pool:
        hdr_done = pool.submit(decode_keyframes)
        frame_windows, collector_s = _decode_sdr_windows(sdr_reader, sdr_store, windows, context, align_cfg)
        hdr_done.result()
    thumbs_sdr = collector_s.snapshot(tuple(windows))
    hdr_stats = title_hdr_stats([keyframes[i] for i in sorted(keyframes)])  # not-HDR statistics: spread keyframes

    found = None
    if collector_h.count >= MIN_KEYFRAMES:
        features = pair_features(
            collector_h.snapshot(tuple(hdr_ranges)), thumbs_sdr, hdr_frame_count=info_hdr.frame_count,
            sdr_frame_count=info_sdr.frame_count,
        )  # fmt: skip
        match = KeyframeMatcher(tuple(frame_windows), max_offset).match(features)
        if match is not None:
            found = assemble(features.spatial, match), match.matches
    if (
        found is None
        or found[0].temporal.confidence < align_cfg["min_confidence"]
        or not one_to_one(found[0].temporal.ratio, info_hdr.fps, info_sdr.fps)
    ):
        keyframes.clear()
        alignment, matches = _align_windows(hdr_reader, hdr_ranges, thumbs_sdr, align_cfg, info_sdr.frame_count)
        method = "windows"
    else:
        alignment, matches = found
        method = "keyframes"
    done_with: set[int] = set()  # kept SDR frames to drop once the geometry is refined
    if clips_cfg.get("snap_to_keyframes"):  # before the ring is forgotten: the moved clips' window frames stay
        reach = min(0.5 * float(clips_cfg["every_seconds"]), 1.0)
        clips = snap_to_keyframes(clips, hdr_reader.keyframe_times(), alignment.temporal, info_sdr.frame_count, reach)
        moved = _clip_context(clips, margin, info_sdr.frame_count)
        sdr_store.want(sorted(moved))
        done_with, context = context - moved, moved

    # 3. geometry, refined on decoded keyframe / SDR frame pairs (windows: the picked HDR frames are sought)
    def kept_lumas(picks: list[tuple[int, int]]) -> list[tuple[np.ndarray, np.ndarray]]:
        sdr = sdr_store.get([s for s, _ in picks])
        hdr = [keyframes[h] if h in keyframes else hdr_store.get([h])[0] for _, h in picks]
        return [(h.luma(), f.luma()) for h, f in zip(hdr, sdr, strict=True)]

    picks = pick_refinement_frames(matches, REFINE_FRAMES) if alignment.temporal.confidence >= 0.25 else []
    sdr_store.want(s for s, _ in picks)
    sdr_store.end_pass()
    if picks:
        alignment = refine(alignment, matches, kept_lumas, count=REFINE_FRAMES)
    done_with.update(s for s, _ in picks)
    sdr_store.release(done_with - context)
    wanted = {h for h in alignment.temporal.hdr_indices_for(frames_needed(clips)) if h is not None}
    for index, frame in keyframes.items():  # a keyframe a clip needs is already decoded
        if index in wanted:
            hdr_store.want([index])
            hdr_store.offer(frame)
    return analysis.PairAnalysis(alignment, clips, sdr_store, hdr_store, f"sparse ({method})", hdr_stats=hdr_stats)
