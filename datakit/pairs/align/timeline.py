"""The global temporal search: candidate speed ratios, FFT cross-correlation of the feature sequences over all
offsets, hard cuts matched across the streams, and the time windows sparse analyses decode."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from datakit.errors import AlignmentError
from datakit.pairs.align.results import RATIO_TOLERANCE

GLOBAL_DIMS = 64  # the global offset search correlates random projections of the structure vectors


CLOSE_PEAK = 0.1  # ratios whose correlation peak is within this of the best are all tracked


def ratio_candidates(fps_hdr: Fraction, fps_sdr: Fraction) -> list[float]:
    """Same speed, the frame-rate ratio (PAL speed-up / 1000/1001 re-timing), and 1000/1001 drifts."""
    out: list[float] = []
    for r in (1.0, float(fps_sdr / fps_hdr), 1001 / 1000, 1000 / 1001):
        if all(abs(r - o) > RATIO_TOLERANCE for o in out):
            out.append(r)
    return out


def one_to_one(ratio: float, fps_hdr: Fraction, fps_sdr: Fraction) -> bool:
    """Whether each SDR frame shows one HDR frame (HDR frame steps per SDR frame = 1): same rates at the same
    speed, or a sped-up version (25 fps showing every frame of a 24 fps master)."""
    return abs(ratio * float(fps_hdr) / float(fps_sdr) - 1.0) < 1e-6


def _next_pow2(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


def _resample_to_grid(
    positions: np.ndarray, feats: np.ndarray, valid: np.ndarray, max_gap: float
) -> tuple[int, np.ndarray, np.ndarray]:
    """Linear interpolation of per-frame features at increasing fractional ``positions`` onto the integer grid.

    Returns ``(origin, values (L, D), mask (L,))``: grid point ``origin + k`` holds ``values[k]``; points
    between frames further apart than ``max_gap`` or next to an invalid frame are masked out.
    """
    g0, g1 = math.ceil(positions[0] - 1e-9), math.floor(positions[-1] + 1e-9)
    grid = np.arange(g0, g1 + 1, dtype=np.float64)
    if len(positions) == 1 or grid.size == 0:
        values = np.zeros((max(grid.size, 1), feats.shape[1]), np.float32)
        mask = np.zeros(max(grid.size, 1), np.float32)
        if grid.size:
            values[0], mask[0] = feats[0], float(valid[0])
        return g0, values, mask
    right = np.clip(np.searchsorted(positions, grid - 1e-9, side="left"), 1, len(positions) - 1)
    left = right - 1
    span = positions[right] - positions[left]
    weight = np.clip((grid - positions[left]) / np.maximum(span, 1e-12), 0.0, 1.0).astype(np.float32)
    ok = (span <= max_gap) & valid[left] & valid[right]
    values = (1.0 - weight)[:, None] * feats[left] + weight[:, None] * feats[right]
    values[~ok] = 0.0
    return g0, values.astype(np.float32, copy=False), ok.astype(np.float32)


def _xcorr(a: np.ndarray | _Spectrum, b: np.ndarray, n: int, chunk: int = 64) -> np.ndarray:
    """``c[lag] = sum_g <a[g + lag], b[g]>`` for all lags (circular, length ``n``); a (La, D), b (Lb, D)."""
    spectrum = a if isinstance(a, _Spectrum) else _Spectrum(a)
    acc = np.zeros(n // 2 + 1, np.complex128)
    for d in range(0, b.shape[1], chunk):
        fb = np.fft.rfft(b[:, d : d + chunk], n=n, axis=0)
        acc += np.sum(spectrum.get(n)[:, d : d + chunk] * np.conj(fb), axis=1)
    return np.fft.irfft(acc, n=n)


class _Spectrum:
    """Real FFT of a (L, D) sequence along time, computed once per transform length."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values
        self._cache: dict[int, np.ndarray] = {}

    def get(self, n: int) -> np.ndarray:
        if n not in self._cache:
            self._cache = {n: np.fft.rfft(self.values, n=n, axis=0)}
        return self._cache[n]


def _projection(dims: int, out_dims: int) -> np.ndarray:
    """Fixed random Gaussian projection (dims -> out_dims) that keeps dot products on average
    (Johnson-Lindenstrauss; the global search only needs sums of them over many frames); identity when
    ``dims <= out_dims``."""
    if dims <= out_dims:
        return np.eye(dims, dtype=np.float32)
    rng = np.random.default_rng(20240229)
    return (rng.standard_normal((dims, out_dims)) / math.sqrt(out_dims)).astype(np.float32)


@dataclass
class Peak:
    ratio: float
    offset_frames: float  # HDR frames (fractional)
    score: float
    z: float | None
    rank: int  # position in the candidate list (simplest ratio first)


def global_search(
    hdr_pos: np.ndarray,
    hdr_feats: np.ndarray,
    hdr_valid: np.ndarray,
    sdr_times: np.ndarray,
    sdr_feats: np.ndarray,
    sdr_valid: np.ndarray,
    fps_hdr: float,
    fps_sdr: float,
    ratios: Sequence[float],
    max_offset_frames: float,
) -> list[Peak]:
    """Best offset of each candidate ratio by normalized FFT cross-correlation of the feature sequences on the
    HDR frame grid; best score first."""
    a0 = int(hdr_pos[0])
    la = int(hdr_pos[-1]) - a0 + 1
    project = _projection(hdr_feats.shape[1], GLOBAL_DIMS)
    a = np.zeros((la, project.shape[1]), np.float32)
    ma = np.zeros(la, np.float32)
    a[hdr_pos - a0] = hdr_feats @ project
    ma[hdr_pos - a0] = hdr_valid
    spectra = _Spectrum(a), _Spectrum((a * a).sum(axis=1, keepdims=True)), _Spectrum(ma[:, None])
    peaks: list[Peak] = []
    for rank, ratio in enumerate(ratios):
        u = ratio * sdr_times * fps_hdr
        spacing = ratio * fps_hdr / fps_sdr
        b0, b, mb = _resample_to_grid(u, sdr_feats @ project, sdr_valid, max_gap=1.6 * max(spacing, 1.0))
        nb = float(mb.sum())
        if nb < 4 or ma.sum() < 4:
            continue
        n = _next_pow2(la + b.shape[0] + 1)
        c = _xcorr(spectra[0], b, n)
        energy_a = _xcorr(spectra[1], mb[:, None], n)
        energy_b = _xcorr(spectra[2], (b * b).sum(axis=1, keepdims=True), n)
        overlap = _xcorr(spectra[2], mb[:, None], n)
        # lag L <-> HDR index = SDR grid position + off, off = L + a0 - b0
        lo = math.floor(-max_offset_frames) - 1
        hi = math.ceil(max_offset_frames) + 1
        offs = np.arange(lo, hi + 1)
        lags = (offs - a0 + b0) % n
        with np.errstate(invalid="ignore", divide="ignore"):
            score = c[lags] / np.sqrt(np.maximum(energy_a[lags] * energy_b[lags], 1e-12))
        min_overlap = max(6.0, 0.3 * min(nb, float(ma.sum())))
        score = np.where(overlap[lags] >= min_overlap - 0.5, score, np.nan)
        score = np.where(np.abs(offs) <= max_offset_frames + 0.5, score, np.nan)
        if not np.any(np.isfinite(score)):
            continue
        k = int(np.nanargmax(score))
        peak = float(score[k])
        frac = 0.0
        if 0 < k < len(score) - 1 and np.isfinite(score[k - 1]) and np.isfinite(score[k + 1]):
            den = score[k - 1] - 2 * peak + score[k + 1]
            if den < 0:
                frac = float(np.clip(0.5 * (score[k - 1] - score[k + 1]) / den, -0.5, 0.5))
        far = np.abs(offs - offs[k]) > max(3.0, 0.5 * fps_hdr)
        null = score[far & np.isfinite(score)]
        z = None
        if null.size >= 8:
            med = float(np.median(null))
            mad = float(np.median(np.abs(null - med))) * 1.4826
            z = (peak - med) / max(mad, 0.01)
        peaks.append(Peak(float(ratio), float(offs[k]) + frac, peak, z, rank))
    if not peaks:
        raise AlignmentError("the HDR and SDR streams do not overlap enough to be aligned (too few frames)")
    return sorted(peaks, key=lambda p: -p.score)


@dataclass(frozen=True)
class CutMatch:
    """The offset range (HDR frames, relative to the line ``ratio * t * fps_hdr``) on which the most SDR cuts
    land on HDR cuts: ``low <= offset < high``; ``support``: how many cut pairs agree."""

    low: float
    high: float
    support: int
    position: int = 0  # the first SDR position (into the cut arrays' frames) of a supporting cut

    @property
    def centre(self) -> float:
        return 0.5 * (self.low + self.high)


def match_cuts(
    hdr_cuts: np.ndarray,
    sdr_cut_lines: np.ndarray,
    sdr_prev_lines: np.ndarray,
    max_offset_frames: float,
    sdr_cut_positions: np.ndarray | None = None,
) -> CutMatch | None:
    """The offsets that put SDR cuts onto HDR cuts (every pair within ``max_offset_frames``).

    ``hdr_cuts``: HDR frame numbers that start a shot; ``sdr_cut_lines`` / ``sdr_prev_lines``: line positions
    (HDR frames at zero offset) of each SDR frame that starts a shot and of the frame before it. SDR frame
    ``i`` shows HDR frame ``floor(line_i + offset + 0.5)``: the pair (SDR cut, HDR cut ``h``) holds for
    ``h - 0.5 - line_cut <= offset < h - 0.5 - line_prev`` (the cut frame shows the new shot, the one before
    it the old one). Returns the range covered by the most pairs, or None without any pair.
    """
    if hdr_cuts.size == 0 or sdr_cut_lines.size == 0:
        return None
    low = (hdr_cuts[None, :] - 0.5 - sdr_cut_lines[:, None]).ravel()
    high = (hdr_cuts[None, :] - 0.5 - sdr_prev_lines[:, None]).ravel()
    which = np.repeat(np.arange(sdr_cut_lines.size), hdr_cuts.size)
    keep = (np.abs(0.5 * (low + high)) <= max_offset_frames + 0.5) & (high > low)
    low, high, which = low[keep], high[keep], which[keep]
    if low.size == 0:
        return None
    edges = np.unique(np.concatenate([low, high]))
    best: CutMatch | None = None
    for a, b in itertools.pairwise(edges):
        mid = 0.5 * (a + b)
        covering = (low <= mid) & (mid < high)
        support = int(np.sum(covering))
        if support and (best is None or support > best.support):
            k = int(which[np.flatnonzero(covering)[0]])
            position = int(sdr_cut_positions[k]) if sdr_cut_positions is not None else k
            best = CutMatch(float(a), float(b), support, position)
    return best


def sparse_windows(duration: float, count: int = 3, length: float = 6.0) -> list[tuple[float, float]]:
    """``count`` SDR time windows of ``length`` seconds centred at (k + 0.5) / count of ``duration``."""
    if duration <= count * length:
        return [(0.0, float(duration))]
    out = []
    for k in range(count):
        centre = duration * (k + 0.5) / count
        start = min(max(0.0, centre - length / 2), duration - length)
        out.append((float(start), float(start + length)))
    return out


def hdr_windows_for(
    sdr_windows: Sequence[tuple[float, float]],
    fps_hdr: Fraction,
    fps_sdr: Fraction,
    max_offset_seconds: float,
    hdr_duration: float | None = None,
) -> list[tuple[float, float]]:
    """HDR time windows that contain what the given SDR windows show, for every candidate ratio and any offset
    up to ``max_offset_seconds`` (merged)."""
    from datakit.pairs.analysis import merge_windows

    out = []
    margin = max_offset_seconds + 1.0
    for ratio in ratio_candidates(fps_hdr, fps_sdr):
        for start, end in sdr_windows:
            lo, hi = ratio * start - margin, ratio * end + margin
            if hdr_duration is not None:
                hi = min(hi, hdr_duration + 1.0)
            out.append((max(0.0, lo), hi))
    return merge_windows(out)
