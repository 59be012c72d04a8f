"""The dense temporal matcher: whole streams (or time windows) summarized frame by frame."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from datakit.errors import AlignmentError
from datakit.pairs.align.confidence import assemble, peak_confidence, similarity_confidence, smoothstep
from datakit.pairs.align.features import PairFeatures, pair_features
from datakit.pairs.align.results import Alignment, FrameMatches, Score, Segment, TemporalAlignment, TemporalMatch
from datakit.pairs.align.timeline import (
    CLOSE_PEAK,
    CutMatch,
    Peak,
    global_search,
    match_cuts,
    one_to_one,
    ratio_candidates,
)
from datakit.pairs.align.tracking import (
    SWITCH_COST,
    Track,
    boundary_doubt,
    certainty_stretches,
    ranges,
    sims_at,
    track_path,
)

if TYPE_CHECKING:
    from datakit.pairs.analysis import Thumbnails


@dataclass(frozen=True)
class DenseMatcher:
    """The temporal matcher of streams summarized frame by frame (whole streams or time windows): global search
    over speed ratios and offsets (:func:`~datakit.pairs.align.timeline.global_search`), hard cuts matched
    across the streams when texture does not pin the offset, local tracking around the best lines
    (:func:`~datakit.pairs.align.tracking.track_path`), verification, and how clearly every stretch is pinned.
    Scores: ``similarity``, ``distinct`` (the peak, or a cut), ``coverage``, ``certain`` (share of frames not
    in uncertain stretches)."""

    max_offset_seconds: float = 10.0

    def match(self, features: PairFeatures) -> TemporalMatch:
        """See the class doc; raises :class:`AlignmentError` when the streams have too little picture content or
        do not overlap."""
        return _match_dense(features, self.max_offset_seconds)


def align_thumbnails(
    thumbs_hdr: Thumbnails,
    thumbs_sdr: Thumbnails,
    *,
    max_offset_seconds: float = 10.0,
    hdr_frame_count: int | None = None,
    sdr_frame_count: int | None = None,
) -> tuple[Alignment, FrameMatches]:
    """Align two streams from their analysis-pass summaries (no decoding); the geometry is the black-bar one:
    :func:`pair_features`, :class:`DenseMatcher`, :func:`assemble`.

    ``thumbs_*`` may cover whole streams or time windows (see :func:`hdr_windows_for`). Frame counts bound the
    mapping (default: the last summarized frame when a whole stream was summarized). Returns the alignment and
    the per-frame matches (for a spatial refinement).
    """
    features = pair_features(thumbs_hdr, thumbs_sdr, hdr_frame_count=hdr_frame_count, sdr_frame_count=sdr_frame_count)
    match = DenseMatcher(max_offset_seconds).match(features)
    return assemble(features.spatial, match), match.matches


def _match_dense(features: PairFeatures, max_offset_seconds: float) -> TemporalMatch:
    hdr, sdr = features.hdr, features.sdr
    fps_h, fps_s = hdr.fps, sdr.fps
    hdr_frame_count, sdr_frame_count = hdr.frame_count, sdr.frame_count
    feat_h, valid_h, feat_s, valid_s = hdr.vectors, hdr.valid, sdr.vectors, sdr.valid
    if valid_h.sum() < 4 or valid_s.sum() < 4:
        raise AlignmentError("too few frames with picture content (black or flat video?) to align the pair")
    sdr_times = sdr.indices / float(fps_s)
    peaks = global_search(
        hdr.indices,
        feat_h,
        valid_h,
        sdr_times,
        feat_s,
        valid_s,
        float(fps_h),
        float(fps_s),
        ratio_candidates(fps_h, fps_s),
        max_offset_seconds * float(fps_h),
    )
    count_h = hdr_frame_count if hdr_frame_count is not None else int(hdr.indices[-1]) + 1
    radius = max(4, math.ceil(0.5 * float(fps_h)))
    # track around the line of every ratio whose correlation is close to the best one; keep the best path
    # (a few dropped frames make the offset creep like a slightly wrong ratio: the path score decides)
    hdr_cuts = hdr.indices[hdr.cuts]
    sdr_cuts = sdr.cuts
    best_track: tuple[Peak, Track, np.ndarray, CutMatch | None, str] | None = None
    for peak in sorted(peaks, key=lambda p: p.rank):  # simplest ratio first; others must save an offset change
        if peak.score < peaks[0].score - CLOSE_PEAK:
            continue
        line = peak.ratio * sdr_times * float(fps_h)  # HDR frame positions at zero offset
        offset, evidence = peak.offset_frames, "texture"
        cut = None
        if sdr_cuts.size and sdr_cuts[0] > 0:
            cut = match_cuts(hdr_cuts, line[sdr_cuts], line[sdr_cuts - 1], max_offset_seconds * float(fps_h), sdr_cuts)
        if cut is not None and peak_confidence(peak.z) < 0.9:  # texture alone does not pin the offset
            offset, evidence = cut.centre, "cut"
        base = line + offset
        if one_to_one(peak.ratio, fps_h, fps_s):  # every SDR frame is one HDR frame: whole-frame offsets
            base = np.round(line) + round(offset)
        pin = None
        if evidence == "cut" and cut is not None:
            pin = (int(cut.position), cut.low - offset, cut.high - offset)
        track = track_path(hdr.indices, feat_h, sdr.indices, feat_s, valid_s, base, count_h, radius, pin=pin)
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
    frame_for_frame = one_to_one(peak.ratio, fps_h, fps_s)
    runs: list[tuple[np.ndarray, float]] = []
    for seg in range(int(track.segment_id[-1]) + 1):
        members = np.flatnonzero((track.segment_id == seg) & ~bad)
        if members.size == 0:
            continue
        off = float(np.median(offsets[members]))
        off = float(round(off)) if frame_for_frame else off
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
    lut = np.full(int(hdr.indices.max()) + 2, -1, np.int64)
    lut[hdr.indices] = np.arange(hdr.count)

    def sims_for(positions: np.ndarray, frames: np.ndarray) -> np.ndarray:
        return sims_at(feat_s[positions], feat_h, lut, count_h, frames[:, None])[:, 0]

    line = peak.ratio * sdr_times * float(fps_h)
    doubt = boundary_doubt(runs, line, sims_for, sdr.indices) | track.ambiguous
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
        first, last = int(sdr.indices[members[0]]), int(sdr.indices[members[-1]])
        segments.append(
            Segment(first, last, off / float(fps_h), round(min(confs), 4), min(margins) if margins else None, how)
        )
        seg_sizes.append(members.size)
    headline = segments[int(np.argmax(seg_sizes))].offset_seconds if segments else peak.offset_frames / float(fps_h)
    unmatched = ranges(sdr.indices[bad])
    uncertain = ranges(sdr.indices[np.sort(np.asarray(doubtful, np.int64))])
    certain_share = 1.0 - len(doubtful) / max(1, sum(seg_sizes))

    scores = (
        Score(
            "similarity", similarity_confidence(similarity),
            f"matched frames look alike only weakly (structure similarity {similarity:.2f}): different titles, "
            "different cuts, or a very different grade?",
        ),
        Score(
            "distinct", 1.0 if evidence == "cut" else peak_confidence(peak.z),
            f"no distinct best offset (correlation peak {peak.score:.2f}, z = {peak.z:.1f})",
        ),
        Score(
            "coverage", smoothstep(coverage, 0.3, 0.7),
            f"only {100 * coverage:.0f}% of the SDR frames were found in the HDR",
        ),
        # stretches marked uncertain lower the pair's confidence only so far: their clips are checked one by one
        Score("certain", 0.6 + 0.4 * smoothstep(certain_share, 0.3, 0.9), "most SDR frames lie in uncertain stretches"),
    )  # fmt: skip
    notes = []
    if evidence == "cut":
        notes.append(f"offset from {cut.support if cut else 0} hard cut(s) seen in both versions (little texture)")
    if certain_share < 1.0:
        notes.append(
            f"{100 * (1 - certain_share):.0f}% of the matched SDR frames lie in stretches where neighbouring "
            "HDR frames look alike (slow or no motion): marked uncertain"
        )
    changes = sum(1 for a, b in itertools.pairwise(segments) if a.offset_seconds != b.offset_seconds)
    if changes:
        notes.append(f"the offset changes {changes} time(s) (dropped or missing frames)")

    temporal = TemporalAlignment(
        offset_seconds=float(headline),
        ratio=peak.ratio,
        fps_hdr=fps_h,
        fps_sdr=fps_s,
        confidence=0.0,  # filled by assemble
        segments=tuple(segments),
        unmatched=tuple(unmatched),
        hdr_frame_count=hdr_frame_count,
        sdr_frame_count=sdr_frame_count,
        similarity=similarity,
        peak_z=peak.z,
        uncertain=tuple(uncertain),
    )
    matches = FrameMatches(sdr.indices, hdr_index, track.similarity, features.sdr_texture)
    return TemporalMatch(temporal, matches, scores, tuple(notes))
