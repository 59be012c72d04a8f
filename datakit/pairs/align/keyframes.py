"""The keyframe temporal matcher of sparse analyses: HDR keyframes (decoded alone) against dense SDR windows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from datakit.pairs.align.confidence import peak_confidence, similarity_confidence, smoothstep
from datakit.pairs.align.features import PairFeatures
from datakit.pairs.align.results import FrameMatches, Score, Segment, TemporalAlignment, TemporalMatch
from datakit.pairs.align.timeline import one_to_one, ratio_candidates

MIN_KEYFRAMES = 3  # keyframes that must land inside the windows at the chosen offset (all windows together)


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


@dataclass(frozen=True)
class KeyframeMatcher:
    """The temporal matcher of HDR keyframes against dense SDR windows (sparse analyses): every HDR keyframe is
    a picture of the title at a known HDR frame number. For each candidate ratio and offset (whole frames, or
    quarter frames when the rates differ), a window scores the mean structure similarity of its keyframes with
    the SDR picture that offset says shows them; each window takes its best offset, the ratio with the best
    total wins (the simplest one unless another is clearly better), and windows that disagree become segments.
    Scores: ``similarity``, ``distinct`` (every window's peak against the other offsets), ``support`` (how many
    keyframes fell inside the windows).

    ``sdr_windows``: ``(first, last)`` SDR frame numbers of each window (the SDR features follow them in
    order). ``match`` returns None when fewer than :data:`MIN_KEYFRAMES` keyframes can be matched."""

    sdr_windows: tuple[tuple[int, int], ...]
    max_offset_seconds: float

    def match(self, features: PairFeatures) -> TemporalMatch | None:
        return _match_keyframes(features, self.sdr_windows, self.max_offset_seconds)


def _match_keyframes(
    features: PairFeatures, sdr_windows: Sequence[tuple[int, int]], max_offset_seconds: float
) -> TemporalMatch | None:
    hdr, sdr = features.hdr, features.sdr
    feat_h, valid_h, feat_s, valid_s, texture = hdr.vectors, hdr.valid, sdr.vectors, sdr.valid, features.sdr_texture
    fps_h, fps_s = float(hdr.fps), float(sdr.fps)
    sim = feat_h @ feat_s.T
    sim[~valid_h] = 0.0
    sim[:, ~valid_s] = 0.0
    hdr_idx = hdr.indices
    reach = max_offset_seconds * fps_h
    best: tuple[float, int, float, list[_WindowMatch]] | None = None
    for rank, ratio in enumerate(ratio_candidates(hdr.fps, sdr.fps)):
        matches: list[_WindowMatch] = []
        for first, last in sdr_windows:
            cols = np.flatnonzero((sdr.indices >= first) & (sdr.indices <= last))
            if cols.size < 2:
                continue
            sdr_idx = sdr.indices[cols]
            feats = feat_s[cols]
            next_sim = np.append(np.einsum("nd,nd->n", feats[:-1], feats[1:]), 1.0)
            next_sim[np.append(np.diff(sdr_idx) != 1, True)] = 1.0  # no neighbour: no blend used
            scale = ratio * fps_h / fps_s  # HDR frames per SDR frame
            step = 1.0 if one_to_one(ratio, hdr.fps, sdr.fps) else 0.25
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
    support = sum(m.support for m in matches)
    scores = (
        Score(
            "similarity", similarity_confidence(total),
            f"keyframes match their SDR frames only weakly (structure similarity {total:.2f})",
        ),
        Score(
            "distinct", peak_confidence(min(zs)) if zs else 0.5,
            f"no distinct best offset in every window (z = {min(zs) if zs else float('nan'):.1f})",
        ),
        Score("support", smoothstep(support, 2.0, 6.0), f"only {support} keyframes fell inside the SDR windows"),
    )  # fmt: skip
    notes = (f"the windows disagree by {spread:.0f} HDR frames (dropped or missing frames)",) if spread > 0 else ()
    temporal = TemporalAlignment(
        offset_seconds=max(matches, key=lambda m: m.support).offset_frames / fps_h,
        ratio=ratio,
        fps_hdr=hdr.fps,
        fps_sdr=sdr.fps,
        confidence=0.0,  # filled by assemble
        segments=tuple(segments),
        hdr_frame_count=hdr.frame_count,
        sdr_frame_count=sdr.frame_count,
        similarity=total,
        peak_z=min(zs) if zs else None,
    )
    # matched pairs (SDR frame, HDR keyframe) for the geometry refinement
    hdr_for = [temporal.hdr_index_for(int(i)) for i in sdr.indices]
    by_hdr = {h: k for k, h in enumerate(hdr_idx.tolist())}
    pairs = [(j, by_hdr[h]) for j, h in enumerate(hdr_for) if h is not None and h in by_hdr]
    cols = np.array([j for j, _ in pairs], np.int64)
    rows = np.array([k for _, k in pairs], np.int64)
    frame_matches = FrameMatches(
        sdr.indices[cols], hdr_idx[rows], sim[rows, cols] if pairs else np.zeros(0), texture[cols]
    )
    return TemporalMatch(temporal, frame_matches, scores, notes)
