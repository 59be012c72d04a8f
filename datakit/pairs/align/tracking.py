"""Local tracking: which HDR frame each SDR frame shows around a global line (Viterbi in evidence units,
sub-frame offsets), and how clearly each stretch is pinned (margins, offset-change positions, uncertainty)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from datakit.pairs.align.confidence import margin_confidence

SWITCH_COST = 12.0  # Viterbi cost of an offset change, in evidence units (see frame_evidence)


EVIDENCE_FLOOR = 0.006  # similarity differences below this are coding noise (one evidence unit at least this)


EVIDENCE_CLIP = 20.0  # one frame's evidence against an HDR frame counts at most this many units


NEIGHBOURS = np.array([-3, -2, -1, 1, 2, 3])  # HDR frames the chosen one is checked against


BOUNDARY_REACH = 4  # SDR frames on either side of an offset change whose mapping the change's position decides


def viterbi(score: np.ndarray, reset: np.ndarray, penalty: float) -> np.ndarray:
    """Best state path maximizing ``sum score[m, k_m] - penalty * [k_m != k_{m-1}]``: any offset change (one
    dropped frame or several) costs the same, so each step is O(S). ``reset[m]``: no transition cost into
    frame m (a gap in the sequence). score (M, S) -> path (M,) int."""
    m_count, s_count = score.shape
    stay_or_jump = np.zeros((m_count, s_count), bool)  # True: came from the best state of the previous frame
    best_prev = np.zeros(m_count, np.int64)
    total = score[0].astype(np.float64)
    for m in range(1, m_count):
        k = int(np.argmax(total))
        best_prev[m] = k
        jump_value = total[k] - (0.0 if reset[m] else penalty)
        jump = total < jump_value
        stay_or_jump[m] = jump
        total = np.where(jump, jump_value, total) + score[m]
    path = np.empty(m_count, np.int64)
    path[-1] = int(np.argmax(total))
    for m in range(m_count - 1, 0, -1):
        path[m - 1] = best_prev[m] if stay_or_jump[m, path[m]] else path[m]
    return path


def absorb_excursions(path: np.ndarray, reset: np.ndarray, shortest: int) -> np.ndarray:
    """Relabel runs of the path shorter than ``shortest`` frames that leave and come back to the same state
    (a frame at a cut whose nearest HDR frame belongs to the next shot, a flash...): one offset, not three."""
    path = path.copy()
    run_id = np.concatenate([[0], np.cumsum(reset[1:] | (np.diff(path) != 0))])
    starts = np.flatnonzero(np.concatenate([[True], run_id[1:] != run_id[:-1]]))
    ends = np.concatenate([starts[1:], [path.size]])
    for k in range(1, len(starts) - 1):
        a, b = starts[k], ends[k]
        if b - a < shortest and not reset[a] and not reset[b] and path[a - 1] == path[b]:
            path[a:b] = path[a - 1]
    return path


def ranges(mask_indices: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive runs of consecutive integers."""
    if mask_indices.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(mask_indices) != 1)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [mask_indices.size - 1]])
    return [(int(mask_indices[s]), int(mask_indices[e])) for s, e in zip(starts, ends, strict=True)]


def sims_at(
    sdr_feats: np.ndarray, hdr_feats: np.ndarray, lut: np.ndarray, hdr_count: int, frames: np.ndarray
) -> np.ndarray:
    """Similarity of every SDR frame (rows of ``sdr_feats``) with the HDR frames ``frames`` (M, C) (frame
    numbers; ``lut`` maps them to rows of ``hdr_feats``, in frame order); NaN where an HDR frame was not
    summarized. The frames asked for lie near a line, so each block of SDR frames is multiplied with the
    band of HDR rows it reaches (one matrix product) instead of gathering a vector per pair."""
    inside = (frames >= 0) & (frames < lut.size - 1) & (frames < hdr_count)
    rows = np.where(inside, lut[np.clip(frames, 0, lut.size - 1)], -1)
    out = np.full(frames.shape, np.nan, np.float32)
    step = 32  # SDR frames per product (the band it reaches stays narrow)
    for s in range(0, frames.shape[0], step):
        r = rows[s : s + step]
        ok = r >= 0
        if not ok.any():
            continue
        lo, hi = int(r[ok].min()), int(r[ok].max()) + 1
        if hi - lo <= 4 * step + 4 * r.shape[1]:  # a band: one product, then pick
            block = sdr_feats[s : s + step] @ hdr_feats[lo:hi].T
            sim = np.take_along_axis(block, np.clip(r - lo, 0, hi - lo - 1), axis=1)
        else:
            sim = np.einsum("nd,nkd->nk", sdr_feats[s : s + step], hdr_feats[np.maximum(r, 0)])
        out[s : s + step] = np.where(ok, sim, np.nan)
    return out


def frame_evidence(score: np.ndarray) -> np.ndarray:
    """Per SDR frame, how much each of K consecutive candidate HDR frames is worse than its best one, in units
    of temporal evidence: (M, K) float32 in ``[-EVIDENCE_CLIP, 0]``. ``score`` (M, K): similarities (-1:
    missing).

    Slow content changes little from frame to frame: its similarities differ by thousandths between
    neighbouring HDR frames, which an absolute offset-change cost would ignore (a stretch between two drops
    then takes the wrong offset at full confidence). One unit is how much the frame's similarity drops one
    HDR frame away from its best match (a parabola's drop two frames away, divided by 4), measured on the
    flatter side so that a cut on one side does not make the other side look sharp, and at least
    :data:`EVIDENCE_FLOOR`; frames whose similarity barely changes within three HDR frames of their best
    (no motion, no texture, no cut) do not vote, so that the grades' small differences cannot walk the path
    away on them.
    """
    m_count, k_count = score.shape
    idx = np.arange(m_count)
    best = np.argmax(score, axis=1)
    left = np.where(best >= 2, score[idx, np.maximum(best - 2, 0)], np.nan)
    right = np.where(best + 2 < k_count, score[idx, np.minimum(best + 2, k_count - 1)], np.nan)
    peak = score[idx, best]
    drops = np.stack([peak - left, peak - right], axis=1) / 4.0
    flat_side = np.nan_to_num(np.nanmin(np.where(np.isfinite(drops), drops, np.inf), axis=1), posinf=0.0)
    units = np.maximum(flat_side, EVIDENCE_FLOOR)
    near = np.abs(np.arange(k_count)[None, :] - best[:, None]) <= 3
    reach = np.max(np.where(near & (score > -1.0), peak[:, None] - score, 0.0), axis=1) / 9.0  # parabola: 9 units
    weight = np.clip((reach - 0.5 * EVIDENCE_FLOOR) / (0.5 * EVIDENCE_FLOOR), 0.0, 1.0)
    evidence = np.clip((score - peak[:, None]) / units[:, None], -EVIDENCE_CLIP, 0.0) * weight[:, None]
    return evidence.astype(np.float32)


@dataclass
class Track:
    hdr_index: np.ndarray  # (M,) int64, -1 = unmatched
    offsets: np.ndarray  # (M,) float64 offset (HDR frames) of each SDR frame's segment, relative to the line
    similarity: np.ndarray  # (M,) similarity with the chosen HDR frame
    segment_id: np.ndarray  # (M,) int
    objective: float  # Viterbi path score, in evidence units, minus the offset-change costs
    gains: np.ndarray  # (M, 6) similarity with the chosen HDR frame minus with the one NEIGHBOURS away
    ambiguous: np.ndarray  # (M,) bool: the segment's sub-frame offset is not pinned (other mappings score alike)


def plateau_offset(
    sims: np.ndarray, base: np.ndarray, start: np.ndarray, centre: float, bounds: tuple[float, float] | None = None
) -> tuple[float, bool]:
    """The offset (HDR frames, multiples of 1/20 within one frame of ``centre``) whose rounded mapping
    ``floor(base + offset + 0.5)`` has the highest summed similarity; the middle of the best plateau (every
    offset there maps the same frames). ``sims`` (n, 5): similarities with HDR frames ``start - 2 .. start + 2``."""
    grid = centre + np.arange(-20, 21) * 0.05
    frames = np.floor(base[:, None] + grid[None, :] + 0.5).astype(np.int64)
    col = np.clip(frames - start[:, None] + 2, 0, 4)
    total = np.nansum(np.take_along_axis(sims, col, axis=1), axis=0)
    best = int(np.argmax(total))
    top = total >= total[best] - 1e-6
    lo = hi = best
    while lo > 0 and top[lo - 1]:
        lo -= 1
    while hi < grid.size - 1 and top[hi + 1]:
        hi += 1
    close = total >= total[best] - EVIDENCE_FLOOR * math.sqrt(max(1, base.size))
    ambiguous = bool(np.any(np.any(frames[:, close] != frames[:, [best]], axis=0)))
    return float(0.5 * (grid[lo] + grid[hi])), ambiguous


def track_path(
    hdr_index: np.ndarray,
    hdr_feats: np.ndarray,
    sdr_index: np.ndarray,
    sdr_feats: np.ndarray,
    sdr_valid: np.ndarray,
    base: np.ndarray,
    hdr_count: int,
    radius: int,
    pin: tuple[int, float, float] | None = None,
) -> Track:
    """Per-SDR-frame HDR frames around the line ``base`` (fractional HDR positions): Viterbi in evidence units
    (:func:`frame_evidence`), then each segment's offset: the path's whole offset when every SDR frame is one
    HDR frame, else the sub-frame offset whose mapping matches best (:func:`plateau_offset`). ``pin``:
    ``(position, low, high)``: the segment holding that SDR position takes an offset (relative to ``base``) in
    ``[low, high)`` (a cut seen in both streams)."""
    m_count = sdr_index.size
    ks = np.arange(-radius, radius + 1)
    lut = np.full(int(hdr_index.max()) + 2, -1, np.int64)
    lut[hdr_index] = np.arange(hdr_index.size)
    cand = np.floor(base[:, None] + ks[None, :] + 0.5).astype(np.int64)
    score = np.nan_to_num(sims_at(sdr_feats, hdr_feats, lut, hdr_count, cand), nan=-1.0)
    evidence = frame_evidence(score)
    reset = np.concatenate([[True], np.diff(sdr_index) != 1])
    path = viterbi(evidence, reset, SWITCH_COST)

    path = absorb_excursions(path, reset, 3)
    changes = int(np.sum((np.diff(path) != 0) & ~reset[1:]))
    objective = float(np.sum(evidence[np.arange(m_count), path])) - SWITCH_COST * changes

    # segments: runs of constant path state (the offset-change cost keeps noise from splitting them)
    segment_id = np.concatenate([[0], np.cumsum(reset[1:] | (np.diff(path) != 0))])
    frame_for_frame = bool(np.all(np.abs(base - np.round(base)) < 1e-4))
    offsets = np.empty(m_count)
    ambiguous = np.zeros(m_count, bool)
    for seg in range(int(segment_id[-1]) + 1):
        members = np.flatnonzero(segment_id == seg)
        whole = float(np.median(cand[members, path[members[0]]] - base[members]))
        usable = members[sdr_valid[members]]
        if frame_for_frame or usable.size == 0:
            offsets[members] = whole
            continue
        bounds = None
        if pin is not None and members[0] <= pin[0] <= members[-1]:
            bounds = (pin[1], pin[2])
            whole = float(np.clip(whole, pin[1], pin[2]))
        start = np.floor(base[usable] + whole + 0.5).astype(np.int64)
        sims = sims_at(sdr_feats[usable], hdr_feats, lut, hdr_count, start[:, None] + np.arange(-2, 3)[None, :])
        offsets[members], ambiguous[members] = plateau_offset(sims, base[usable], start, whole, bounds)
    chosen = np.floor(base + offsets + 0.5).astype(np.int64)
    ok = (chosen >= 0) & (chosen < hdr_count)
    around = sims_at(sdr_feats, hdr_feats, lut, hdr_count, chosen[:, None] + np.concatenate([[0], NEIGHBOURS]))
    sim = around[:, 0].astype(np.float64)
    gains = around[:, :1] - around[:, 1:]
    hdr_chosen = np.where(ok, chosen, -1)
    return Track(hdr_chosen, offsets, sim, segment_id, objective, gains, ambiguous)


def stretch_margin(gains: np.ndarray) -> float | None:
    """How clearly a stretch of SDR frames shows the HDR frames chosen for it rather than neighbouring ones: the
    smallest, over the neighbours, of the summed similarity gain in units of its noise (a z-score: the mean
    gain times sqrt(n) over the robust spread of the gains, at least :data:`EVIDENCE_FLOOR`). ``gains`` (n, 6):
    per frame, similarity with the chosen HDR frame minus with each neighbour (NaN: missing). A cut makes one
    frame's gain large and the spread small: it counts fully. None when nothing can be compared."""
    zs = []
    for d in range(gains.shape[1]):
        g = gains[:, d]
        g = g[np.isfinite(g)].astype(np.float64)
        if g.size < 2:
            continue
        sigma = max(EVIDENCE_FLOOR, 1.4826 * float(np.median(np.abs(g - np.median(g)))))
        zs.append(float(np.mean(g)) * math.sqrt(g.size) / sigma)
    return min(zs) if zs else None


def boundary_doubt(
    runs: Sequence[tuple[np.ndarray, float]],
    line: np.ndarray,
    sims_for: Any,
    indices: np.ndarray,
) -> np.ndarray:
    """SDR positions whose mapping depends on where exactly an offset change lies, when the pictures do not
    say it: (M,) bool.

    ``runs``: consecutive ``(positions, offset)`` of constant offset (HDR frames relative to ``line``, the
    zero-offset HDR positions of the SDR frames); ``sims_for(positions, hdr_frames)``: similarities (NaN:
    missing). For each change between adjacent runs, every switch position within :data:`BOUNDARY_REACH`
    frames is scored (the frames before it mapped with the first offset, those after with the second); the
    frames between the earliest and the latest switch that score within ``2 * EVIDENCE_FLOOR`` of the best
    (and the one chosen) are in doubt.
    """
    doubt = np.zeros(line.size, bool)
    for (first, off_a), (second, off_b) in itertools.pairwise(runs):
        end, start = int(first[-1]), int(second[0])
        if start != end + 1 or indices[start] != indices[end] + 1:
            continue
        lo, hi = max(int(first[0]), end - BOUNDARY_REACH + 1), min(int(second[-1]), start + BOUNDARY_REACH - 1)
        span = np.arange(lo, hi + 1)
        sa = np.nan_to_num(sims_for(span, np.floor(line[span] + off_a + 0.5).astype(np.int64)), nan=-1.0)
        sb = np.nan_to_num(sims_for(span, np.floor(line[span] + off_b + 0.5).astype(np.int64)), nan=-1.0)
        ca, cb = np.concatenate([[0.0], np.cumsum(sa)]), np.concatenate([[0.0], np.cumsum(sb)])
        total = ca + (cb[-1] - cb)  # switch before span[q]
        chosen = int(np.searchsorted(span, start))
        plausible = [*np.flatnonzero(total >= total.max() - 2 * EVIDENCE_FLOOR).tolist(), chosen]
        doubt[span[min(plausible) : max(plausible)]] = True
    return doubt


def certainty_stretches(
    gains: np.ndarray, members: np.ndarray, window: int, doubt: np.ndarray
) -> list[tuple[np.ndarray, float, float | None]]:
    """Split a run of constant offset (``members``: positions) into stretches rated alike: the positions in
    ``doubt`` (confidence 0) and windows of about ``window`` frames between them, each rated by
    :func:`stretch_margin` and :func:`margin_confidence`. Returns ``(positions, confidence, margin)`` in order."""
    out = []
    flags = doubt[members]
    cuts = np.flatnonzero(np.diff(flags.astype(np.int8)) != 0) + 1
    for group in np.split(np.arange(members.size), cuts):
        part = members[group]
        if flags[group[0]]:
            out.append((part, 0.0, stretch_margin(gains[part])))
            continue
        for piece in np.array_split(part, max(1, round(part.size / window))):
            margin = stretch_margin(gains[piece])
            out.append((piece, margin_confidence(margin), margin))
    return out
