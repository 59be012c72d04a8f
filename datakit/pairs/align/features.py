"""Per-frame features every temporal match compares: tone-curve-invariant structure vectors of luma thumbnails
(ranks, band-passed), shot changes, and the :class:`PairFeatures` value a matcher receives."""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from datakit.pairs.align.results import SpatialAlignment
    from datakit.pairs.analysis import Thumbnails

GRID_WIDTH = 64  # feature grid width (height from the HDR picture aspect ratio)


HIGHPASS_SIGMA = 1.5  # Gaussian removed from the rank image, in grid pixels


MIN_CONTRAST = 0.004  # a frame whose thumbnail Y' standard deviation is below this carries no structure


CUT_MIN_CHANGE = 0.02  # 1 - rank correlation of consecutive thumbnails above which a frame may start a shot


CUT_GRID_WIDTH = 32  # shot changes are found on thumbnails reduced to this width
CUT_CONTRAST = 20.0  # ... and this many times the median change of the frames around it


def area_matrix(src_len: int, start: float, length: float, dst_len: int) -> np.ndarray:
    """(dst_len, src_len) float32 weights averaging source pixels over ``[start, start + length)`` into
    ``dst_len`` equal bins (pixel-edge coordinates; an area / box resampling, like ``cv2.INTER_AREA``)."""
    edges = start + length * np.arange(dst_len + 1, dtype=np.float64) / dst_len
    lo, hi = edges[:-1, None], edges[1:, None]
    pix = np.arange(src_len, dtype=np.float64)[None, :]
    overlap = np.clip(np.minimum(hi, pix + 1.0) - np.maximum(lo, pix), 0.0, None)
    return (overlap / np.maximum(overlap.sum(axis=1, keepdims=True), 1e-12)).astype(np.float32)


def blur_stack(images: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of every image of a float32 stack (N, h, w), edges renormalized (normalized convolution:
    pixels outside the image do not count). Two OpenCV separable passes over the whole stack laid out so that
    no pass crosses from one image into the next."""
    import cv2

    n, h, w = images.shape
    radius = max(1, math.ceil(3 * sigma))
    kernel = cv2.getGaussianKernel(2 * radius + 1, sigma).astype(np.float32)
    one = np.ones((1, 1), np.float32)
    border = cv2.BORDER_CONSTANT

    def passes(stack: np.ndarray) -> np.ndarray:
        m = stack.shape[0]
        rows = cv2.sepFilter2D(stack.reshape(m * h, w), -1, kernel, one, borderType=border)  # along x
        cols = np.ascontiguousarray(rows.reshape(m, h, w).transpose(1, 0, 2)).reshape(h, m * w)
        cols = cv2.sepFilter2D(cols, -1, one, kernel, borderType=border)  # along y, image by image
        return cols.reshape(h, m, w).transpose(1, 0, 2)

    weight = passes(np.ones((1, h, w), np.float32))[0]
    out = np.empty_like(images, dtype=np.float32)
    for start in range(0, n, 8192):  # bounded temporary memory
        out[start : start + 8192] = passes(np.ascontiguousarray(images[start : start + 8192], np.float32))
    return out / weight


def separable(images: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``rows @ image @ cols.T`` for every image of a stack (N, h, w) -> (N, rows.shape[0], cols.shape[0]),
    as two large matrix products (a batched matmul of small matrices is much slower)."""
    n, h, w = images.shape
    out = (images.reshape(n * h, w) @ cols.T).reshape(n, h, cols.shape[0])
    out = (out.transpose(0, 2, 1).reshape(-1, h) @ rows.T).reshape(n, cols.shape[0], rows.shape[0])
    return np.ascontiguousarray(out.transpose(0, 2, 1))


def rank_rows(x: np.ndarray) -> np.ndarray:
    """Row-wise ranks of ``x`` (N, D) scaled to (0, 1), ties sharing their average rank; float32.

    One argsort; the rank of each sorted position is ``(pos + 0.5) / D`` except in runs of equal values,
    which take their run's ``((first + last) / 2 + 0.5) / D`` (found on the tied positions only: luma
    thumbnails have few ties)."""
    n, d = x.shape
    order = np.argsort(x, axis=1)  # any order: tied values get their average rank below
    s = np.take_along_axis(x, order, axis=1)
    pos = np.arange(d, dtype=np.float64)
    single = (((pos + pos) * 0.5 + 0.5) / d).astype(np.float32)  # first = last = pos: a run of one
    same = s[:, 1:] == s[:, :-1]  # (N, D - 1): position p + 1 repeats position p
    if not same.any():
        values = np.broadcast_to(single, (n, d))
    else:
        values = np.tile(single, (n, 1))
        in_run = np.zeros((n, d), bool)
        in_run[:, 1:] |= same
        in_run[:, :-1] |= same
        rows, cols = np.nonzero(in_run)  # row-major: each run is a stretch of consecutive entries
        starts = np.ones(rows.size, bool)
        starts[1:] = (rows[1:] != rows[:-1]) | ~same[rows[1:], np.maximum(cols[1:] - 1, 0)]
        run = np.cumsum(starts) - 1
        first = cols[starts][run]
        last = cols[np.append(np.flatnonzero(starts)[1:], rows.size) - 1][run]
        values[rows, cols] = ((first + last) * 0.5 + 0.5) / d
    ranks = np.empty((n, d), np.float32)
    np.put_along_axis(ranks, order, values, axis=1)
    return ranks


def frame_features(grid: np.ndarray, sigma: float = HIGHPASS_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """Tone-curve-invariant structure vectors of small luma images.

    ``grid``: (N, h, w) float32 Y' (any monotonic encoding: PQ, BT.709, linear...). Each image is rank
    transformed, its Gaussian blur (``sigma`` pixels) is subtracted, and the result is scaled to zero mean
    and unit norm. Returns ``(features (N, h*w) float32, valid (N,) bool)``; images without structure (flat:
    Y' standard deviation below ``MIN_CONTRAST``) get a zero vector and ``valid = False``. The dot product
    of two features is a similarity in [-1, 1].
    """
    n, h, w = grid.shape
    flat = grid.reshape(n, h * w).astype(np.float32, copy=False)
    valid = flat.std(axis=1) >= MIN_CONTRAST
    ranks = rank_rows(flat).reshape(n, h, w)
    band = (ranks - blur_stack(ranks, sigma)).reshape(n, h * w)
    band -= band.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(band, axis=1)
    valid &= norm > 1e-6
    band /= np.where(valid, norm, 1.0)[:, None]
    band[~valid] = 0.0
    return band.astype(np.float32, copy=False), valid


def luma_of(rgb: np.ndarray, primaries: str) -> np.ndarray:
    """Y' (non-constant luminance, weights of ``primaries``) of R'G'B' ``(..., 3)`` as float32 in [0, 1]."""
    from datakit.color.gamut import luminance_weights

    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(rgb.dtype, 1.0)
    weights = (luminance_weights(primaries) / scale).astype(np.float32)
    return rgb.astype(np.float32, copy=False) @ weights


def pair_similarity(a: np.ndarray, b: np.ndarray, width: int) -> np.ndarray:
    """Per-frame structure similarity of two aligned luma stacks ``(T, H, W)`` compared at ``width`` pixels."""
    _, h, w = a.shape
    gw = max(8, min(width, w))
    gh = max(4, round(h * gw / w))
    ry, rx = area_matrix(h, 0.0, h, gh), area_matrix(w, 0.0, w, gw)
    fa, va = frame_features(separable(a.astype(np.float32), ry, rx))
    fb, vb = frame_features(separable(b.astype(np.float32), ry, rx))
    return np.where(va & vb, np.sum(fa * fb, axis=1), 0.0)


def thumb_grid(thumbs: Thumbnails, area: tuple[int, int, int, int], gw: int, gh: int) -> np.ndarray:
    """Crop the full-resolution ``area`` out of the luma thumbnails and area-resample it to (N, gh, gw)."""
    tw, th = thumbs.thumb_size
    fw, fh = thumbs.frame_size
    x, y, w, h = area
    ry = area_matrix(th, y * th / fh, h * th / fh, gh)
    rx = area_matrix(tw, x * tw / fw, w * tw / fw, gw)
    out = np.empty((thumbs.count, gh, gw), np.float32)
    for start in range(0, thumbs.count, 4096):
        out[start : start + 4096] = separable(thumbs.luma[start : start + 4096], ry, rx)
    return out


def grid_size(hdr_area: tuple[int, int, int, int], thumbs: Sequence[tuple[Thumbnails, tuple]]) -> tuple[int, int]:
    """Feature grid (width, height): at most GRID_WIDTH wide, no finer than any thumbnail's picture area."""
    widths = [GRID_WIDTH]
    for t, area in thumbs:
        widths.append(int(area[2] * t.thumb_size[0] / t.frame_size[0]))
        heights = area[3] * t.thumb_size[1] / t.frame_size[1]
        widths.append(int(heights * hdr_area[2] / max(hdr_area[3], 1)))
    gw = max(8, min(widths))
    gh = max(4, round(gw * hdr_area[3] / max(hdr_area[2], 1)))
    return gw, gh


def shot_changes(thumbs: Thumbnails) -> np.ndarray:
    """Positions (into the summarized frames) of the frames that start a new shot (hard cuts).

    A frame starts a shot when its luma thumbnail's ranks (reduced to :data:`CUT_GRID_WIDTH` pixels wide)
    correlate with the previous frame's much less than neighbouring frames do with theirs: ``1 - corr`` at
    least :data:`CUT_MIN_CHANGE` and :data:`CUT_CONTRAST` times the median over the 8 frames on either side.
    Ranks do not change under increasing tone curves, so the same cut is found in the HDR (PQ Y') and the SDR
    (BT.709 Y') version even when both shots have little texture. Only consecutive frame numbers are compared.
    """
    n = thumbs.count
    if n < 3:
        return np.zeros(0, np.int64)
    tw, th = thumbs.thumb_size
    gw = min(tw, CUT_GRID_WIDTH)
    gh = max(4, round(th * gw / tw))
    small = np.empty((n, gh, gw), np.float32)
    ry, rx = area_matrix(th, 0.0, th, gh), area_matrix(tw, 0.0, tw, gw)
    for start in range(0, n, 4096):
        small[start : start + 4096] = separable(thumbs.luma[start : start + 4096], ry, rx)
    ranks = rank_rows(small.reshape(n, -1))
    ranks -= ranks.mean(axis=1, keepdims=True)
    ranks /= np.maximum(np.linalg.norm(ranks, axis=1, keepdims=True), 1e-9)
    change = np.full(n, np.nan)
    change[1:] = 1.0 - np.einsum("nd,nd->n", ranks[1:], ranks[:-1])
    change[1:][np.diff(thumbs.indices) != 1] = np.nan
    out = []
    for p in np.flatnonzero(np.nan_to_num(change, nan=0.0) >= CUT_MIN_CHANGE):
        around = np.concatenate([change[max(1, p - 8) : p], change[p + 1 : p + 9]])
        around = around[np.isfinite(around)]
        if around.size >= 4 and change[p] >= CUT_CONTRAST * max(float(np.median(around)), 1e-5):
            out.append(p)
    return np.asarray(out, np.int64)


@dataclass(frozen=True)
class StreamFeatures:
    """One stream's side of :class:`PairFeatures`: per summarized frame its number (``indices``, increasing),
    presentation time in seconds (``times``), structure vector (``vectors`` (N, D) float32, unit norm or zero)
    and whether it has structure (``valid``); the positions of the frames that start a shot (``cuts``), the
    stream's rate and frame count (``None``: unknown, a windowed summary)."""

    indices: np.ndarray
    times: np.ndarray
    vectors: np.ndarray
    valid: np.ndarray
    cuts: np.ndarray
    fps: Fraction
    frame_count: int | None

    @property
    def count(self) -> int:
        return int(self.indices.size)


@dataclass(frozen=True)
class PairFeatures:
    """What every temporal matcher compares (the contract between the features and the matchers): the
    black-bar geometry of the pair (``spatial``), both streams' features on a common grid of their active
    pictures, and the SDR texture per frame (high-pass Y' standard deviation on that grid: frames to register
    are picked by it)."""

    spatial: SpatialAlignment
    hdr: StreamFeatures
    sdr: StreamFeatures
    sdr_texture: np.ndarray


def pair_features(
    thumbs_hdr: Thumbnails,
    thumbs_sdr: Thumbnails,
    *,
    hdr_frame_count: int | None = None,
    sdr_frame_count: int | None = None,
) -> PairFeatures:
    """:class:`PairFeatures` of two analysis-pass summaries (no decoding). Frame counts default to the last
    summarized frame when a whole stream was summarized (``windows`` None), else stay unknown."""
    from datakit.pairs.align.geometry import initial_spatial, picture_areas

    if hdr_frame_count is None and thumbs_hdr.windows is None:
        hdr_frame_count = int(thumbs_hdr.indices[-1]) + 1
    if sdr_frame_count is None and thumbs_sdr.windows is None:
        sdr_frame_count = int(thumbs_sdr.indices[-1]) + 1
    hdr_area, sdr_area, clarity = picture_areas(thumbs_hdr, thumbs_sdr)
    spatial = initial_spatial(thumbs_hdr, thumbs_sdr, hdr_area, sdr_area, clarity)
    gw, gh = grid_size(hdr_area, [(thumbs_hdr, hdr_area), (thumbs_sdr, sdr_area)])

    def side(thumbs: Thumbnails, grid: np.ndarray, count: int | None) -> StreamFeatures:
        vectors, valid = frame_features(grid)
        return StreamFeatures(thumbs.indices, thumbs.times, vectors, valid, shot_changes(thumbs), thumbs.fps, count)

    # the two streams' features in two threads (numpy's sorts and OpenCV's filters release the GIL)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="datakit-features") as pool:
        hdr = pool.submit(side, thumbs_hdr, thumb_grid(thumbs_hdr, hdr_area, gw, gh), hdr_frame_count)
        grid_s = thumb_grid(thumbs_sdr, sdr_area, gw, gh)
        sdr = side(thumbs_sdr, grid_s, sdr_frame_count)
        texture_s = (grid_s - blur_stack(grid_s, HIGHPASS_SIGMA)).reshape(grid_s.shape[0], -1).std(axis=1)
        return PairFeatures(spatial, hdr.result(), sdr, texture_s)
