"""The analysis of a sparse build (``interval``, ``single``): align without decoding most of either stream.

Sparse protocols keep a few frames every couple of seconds, so a build can be faster than decoding the streams
once. The alignment must then come from little decoding:

1. SDR: every frame of :data:`WINDOWS` short windows (:func:`datakit.pairs.align.sparse_windows`), summarized as
   in the dense pass; their frames wait in a :class:`datakit.pairs.retain.FrameStore` (clip frames inside a
   window are kept).
2. HDR: only the keyframes in the time ranges the SDR windows can show at any offset within
   ``max_offset_seconds`` and any candidate speed ratio (:func:`datakit.io.reader.VideoReader.keyframes`; a
   keyframe costs a few frames, a group of pictures costs one).
3. Every HDR keyframe is a picture of the title at a known HDR frame number. For each candidate ratio and
   whole-frame offset, the score of a window is the mean structure similarity (:func:`datakit.pairs.align.
   frame_features`, the same ordinal features as the dense alignment) of its keyframes with the SDR frames that
   offset says show them; each window takes its best offset, the ratio with the best total wins (the simplest
   one unless another is clearly better), and windows that disagree become segments (dropped frames). The
   confidence combines the matched similarity, the distinctness of each window's peak (robust z-score against
   the other offsets) and the agreement of the windows.
4. The geometry starts from the black bars (profiles of the SDR window frames and of the HDR keyframes) and is
   refined (:func:`datakit.pairs.align.refine_alignment`) on keyframe / SDR frame pairs already decoded.

When too few keyframes fall inside the windows (long groups of pictures), when the match is not confident, or
when SDR frames do not show one HDR frame each (different frame rates at the same speed: an isolated keyframe
then pins the offset only to about a frame, measured), :func:`analyse_sparse` falls back to the windowed dense
alignment of :func:`datakit.pairs.align.align_pair` (``sparse=True``), which fits sub-frame positions.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from datakit.errors import AlignmentError
from datakit.pairs import align as _align
from datakit.pairs import analysis
from datakit.pairs.align import Alignment, FrameMatches, Segment, TemporalAlignment
from datakit.pairs.align.confidence import similarity_confidence, smoothstep
from datakit.pairs.align.timeline import one_to_one, ratio_candidates
from datakit.pairs.clips import Clip, frames_needed, plan_clips
from datakit.pairs.retain import FrameStore

__all__ = ["SparseAnalysis", "analyse_sparse", "match_keyframes"]

WINDOWS = 2  # SDR windows decoded densely
WINDOW_SECONDS = 4.0
MIN_KEYFRAMES = 3  # keyframes that must land inside the windows at the chosen offset (all windows together)


@dataclass
class SparseAnalysis:
    """What the sparse analysis hands to the clip stage."""

    alignment: Alignment
    clips: list[Clip]
    sdr_store: FrameStore
    hdr_store: FrameStore
    method: str  # "keyframes" or "windows" (the fallback)


@dataclass
class _WindowMatch:
    offset_frames: float  # HDR frames at HDR rate: hdr = ratio * sdr_time * fps_hdr + offset
    score: float
    z: float | None
    support: int  # keyframes inside the window at that offset


def _window_match(
    sim: np.ndarray,
    next_sim: np.ndarray,
    hdr_idx: np.ndarray,
    sdr_idx: np.ndarray,
    scale: float,
    reach: float,
    step: float,
) -> _WindowMatch | None:
    """Best offset (HDR frames, multiples of ``step``) for one SDR window: the mean similarity of the keyframes
    landing in the window with the SDR picture at their position.

    ``sim`` (K, N): keyframe / SDR frame similarities; ``next_sim`` (N,): similarity of each SDR frame with the
    next one. SDR frame ``j`` shows HDR frame ``scale * j + offset``; between two SDR frames the picture is
    their blend (the structure vectors are unit vectors: the blend is renormalized), so offsets finer than a
    frame are resolved when the rates differ.
    """
    lo, hi = int(sdr_idx[0]), int(sdr_idx[-1])
    lookup = np.full(hi - lo + 2, -1, np.int64)
    lookup[sdr_idx - lo] = np.arange(sdr_idx.size)
    offsets = np.arange(-math.ceil(reach / step), math.ceil(reach / step) + 1) * step
    pos = (hdr_idx[None, :] - offsets[:, None]) / scale - lo  # (O, K) fractional SDR position in the window
    base = np.floor(pos + 1e-9).astype(np.int64)
    frac = np.clip(pos - base, 0.0, 1.0)
    frac = np.where(frac < 1e-6, 0.0, frac)
    inside = (base >= 0) & (base <= hi - lo) & ((frac == 0.0) | (base + 1 <= hi - lo))
    a = np.where(inside, lookup[np.clip(base, 0, hi - lo)], -1)
    b = np.where(inside & (frac > 0.0), lookup[np.clip(base + 1, 0, hi - lo + 1)], a)
    found = (a >= 0) & (b >= 0)
    keys = np.arange(hdr_idx.size)[None, :]
    sa, sb = sim[keys, np.maximum(a, 0)], sim[keys, np.maximum(b, 0)]
    pair_sim = next_sim[np.maximum(a, 0)]
    norm = np.sqrt(np.maximum((1 - frac) ** 2 + frac**2 + 2 * frac * (1 - frac) * pair_sim, 1e-6))
    values = np.where(found, ((1 - frac) * sa + frac * sb) / norm, 0.0)
    support = found.sum(axis=1)
    if not (support > 0).any():
        return None
    score = np.where(support > 0, values.sum(axis=1) / np.maximum(support, 1), -1.0)
    best = int(np.argmax(score))
    others = score[(support > 0) & (np.abs(offsets - offsets[best]) > 2)]
    z = None
    if others.size >= 8:
        mad = float(np.median(np.abs(others - np.median(others)))) * 1.4826 + 1e-6
        z = float((score[best] - np.median(others)) / mad)
    return _WindowMatch(float(offsets[best]), float(score[best]), z, int(support[best]))


def match_keyframes(
    thumbs_hdr: analysis.Thumbnails,
    thumbs_sdr: analysis.Thumbnails,
    sdr_windows: list[tuple[int, int]],
    *,
    max_offset_seconds: float,
    hdr_frame_count: int | None,
    sdr_frame_count: int | None,
) -> tuple[Alignment, FrameMatches] | None:
    """Temporal alignment from HDR keyframe thumbnails against dense SDR windows (see the module doc).

    ``sdr_windows``: ``(first, last)`` SDR frame numbers of each window (positions in ``thumbs_sdr`` follow
    them in order). Returns None when fewer than :data:`MIN_KEYFRAMES` keyframes can be matched."""
    spatial, feat_h, valid_h, feat_s, valid_s, texture = _align.pair_features(thumbs_hdr, thumbs_sdr)
    fps_h, fps_s = float(thumbs_hdr.fps), float(thumbs_sdr.fps)
    sim = feat_h @ feat_s.T
    sim[~valid_h] = 0.0
    sim[:, ~valid_s] = 0.0
    hdr_idx = thumbs_hdr.indices
    reach = max_offset_seconds * fps_h
    best: tuple[float, int, float, list[_WindowMatch]] | None = None
    for rank, ratio in enumerate(ratio_candidates(thumbs_hdr.fps, thumbs_sdr.fps)):
        matches: list[_WindowMatch] = []
        for first, last in sdr_windows:
            cols = np.flatnonzero((thumbs_sdr.indices >= first) & (thumbs_sdr.indices <= last))
            if cols.size < 2:
                continue
            sdr_idx = thumbs_sdr.indices[cols]
            feats = feat_s[cols]
            next_sim = np.append(np.einsum("nd,nd->n", feats[:-1], feats[1:]), 1.0)
            next_sim[np.append(np.diff(sdr_idx) != 1, True)] = 1.0  # no neighbour: no blend used
            scale = ratio * fps_h / fps_s  # HDR frames per SDR frame
            step = 1.0 if one_to_one(ratio, thumbs_hdr.fps, thumbs_sdr.fps) else 0.25
            m = _window_match(sim[:, cols], next_sim, hdr_idx, sdr_idx, scale, reach, step)
            if m is not None:
                matches.append(m)
        if not matches:
            continue
        total = sum(m.score * m.support for m in matches) / max(1, sum(m.support for m in matches))
        if best is None or total > best[0] + 0.05:  # a more complex ratio must be clearly better
            best = (total, rank, ratio, matches)
    if best is None or sum(m.support for m in best[3]) < MIN_KEYFRAMES:
        return None
    total, _, ratio, matches = best
    segments = []
    for (first, last), m in zip(sdr_windows, matches, strict=False):
        offset_s = m.offset_frames / fps_h
        if segments and abs(segments[-1].offset_seconds - offset_s) < 0.25 / fps_h:
            continue
        segments.append(Segment(first if segments else 0, last, offset_s))
    spread = max(m.offset_frames for m in matches) - min(m.offset_frames for m in matches)
    zs = [m.z for m in matches if m.z is not None]
    c_sim = similarity_confidence(total)
    c_z = _align.peak_confidence(min(zs)) if zs else 0.5
    c_support = smoothstep(sum(m.support for m in matches), 2.0, 6.0)
    confidence = min(c_sim, c_z, c_support)
    reasons = []
    if c_sim < 0.9:
        reasons.append(f"keyframes match their SDR frames only weakly (structure similarity {total:.2f})")
    if c_z < 0.9:
        reasons.append(f"no distinct best offset in every window (z = {min(zs) if zs else float('nan'):.1f})")
    if c_support < 0.9:
        reasons.append(f"only {sum(m.support for m in matches)} keyframes fell inside the SDR windows")
    if spread > 0:
        reasons.append(f"the windows disagree by {spread:.0f} HDR frames (dropped or missing frames)")
    temporal = TemporalAlignment(
        offset_seconds=max(matches, key=lambda m: m.support).offset_frames / fps_h,
        ratio=ratio,
        fps_hdr=thumbs_hdr.fps,
        fps_sdr=thumbs_sdr.fps,
        confidence=confidence,
        segments=tuple(segments),
        hdr_frame_count=hdr_frame_count,
        sdr_frame_count=sdr_frame_count,
        similarity=total,
        peak_z=min(zs) if zs else None,
        reasons=tuple(reasons),
    )
    overall = confidence if spatial.confidence >= 0.5 else min(confidence, spatial.confidence)
    alignment = Alignment(temporal, spatial, overall, tuple(reasons) + spatial.reasons)
    # matched pairs (SDR frame, HDR keyframe) for the geometry refinement
    hdr_for = [temporal.hdr_index_for(int(i)) for i in thumbs_sdr.indices]
    by_hdr = {h: k for k, h in enumerate(hdr_idx.tolist())}
    pairs = [(j, by_hdr[h]) for j, h in enumerate(hdr_for) if h is not None and h in by_hdr]
    cols = np.array([j for j, _ in pairs], np.int64)
    rows = np.array([k for _, k in pairs], np.int64)
    frame_matches = FrameMatches(
        thumbs_sdr.indices[cols], hdr_idx[rows], sim[rows, cols] if pairs else np.zeros(0), texture[cols]
    )
    return alignment, frame_matches


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


def analyse_sparse(recipe: dict[str, Any], sdr_reader: Any, hdr_reader: Any, *, memory_bytes: int) -> SparseAnalysis:
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

    windows = _align.sparse_windows(info_sdr.duration_seconds, count=WINDOWS, length=WINDOW_SECONDS)

    # 2. (in a thread, beside 1: the two streams decode at once) HDR keyframes in every range the windows can show
    hdr_ranges = _align.hdr_windows_for(windows, info_hdr.fps, info_sdr.fps, max_offset, info_hdr.duration_seconds)
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

    found = None
    if collector_h.count >= MIN_KEYFRAMES:
        found = match_keyframes(
            collector_h.snapshot(tuple(hdr_ranges)), thumbs_sdr, frame_windows, max_offset_seconds=max_offset,
            hdr_frame_count=info_hdr.frame_count, sdr_frame_count=info_sdr.frame_count,
        )  # fmt: skip
    matches = None
    if (
        found is None
        or found[0].temporal.confidence < align_cfg["min_confidence"]
        or not one_to_one(found[0].temporal.ratio, info_hdr.fps, info_sdr.fps)
    ):
        keyframes.clear()
        alignment = _align.align_pair(
            hdr_reader.path, sdr_reader.path, max_offset_seconds=max_offset, sparse=True, min_confidence=None
        )
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
    if matches is None:
        sdr_store.end_pass()
    else:
        # 3. geometry, refined on decoded keyframe / SDR frame pairs
        def kept_lumas(picks: list[tuple[int, int]]) -> list[tuple[np.ndarray, np.ndarray]]:
            sdr = sdr_store.get([s for s, _ in picks])
            return [(keyframes[h].luma(), f.luma()) for (_, h), f in zip(picks, sdr, strict=True)]

        sdr_store.want(int(i) for i in matches.sdr_index)
        sdr_store.end_pass()
        if alignment.temporal.confidence >= 0.25 and matches.sdr_index.size:
            alignment = _align.refine_alignment(alignment, matches, kept_lumas)
        done_with.update(int(i) for i in matches.sdr_index)
    sdr_store.release(done_with - context)
    wanted = {h for h in alignment.temporal.hdr_indices_for(frames_needed(clips)) if h is not None}
    for index, frame in keyframes.items():  # a keyframe a clip needs is already decoded
        if index in wanted:
            hdr_store.want([index])
            hdr_store.offer(frame)
    return SparseAnalysis(alignment, clips, sdr_store, hdr_store, method)
