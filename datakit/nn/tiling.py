"""Full-resolution inference in overlapping tiles, blended with linear ramps (used by eval and convert).

A 4K frame through a convolutional model can need more memory than a GPU (or a laptop) has. :func:`tiled_apply`
cuts the frame into ``tile x tile`` windows that overlap by ``overlap`` pixels, runs the model on each, and blends
the outputs: inside an overlap each tile's weight ramps linearly from its own edge towards its interior, so seams
fade out instead of showing. Image borders get full weight (no neighbour to blend with).

Models whose output depends on the whole frame (global conditions such as AGCM's condition network, or
self-attention) see only a tile at a time: results then differ slightly from a single full-frame pass; pass
``tile=None`` (or a tile larger than the frame) for an exact whole-frame run.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from datakit.errors import InputError

__all__ = ["tile_starts", "tiled_apply"]


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)`` with at least ``overlap`` shared pixels."""
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def _ramp(size: int, overlap: int, taper_start: bool, taper_end: bool, like: torch.Tensor) -> torch.Tensor:
    """1-D blending weights of one tile: ramps of ``overlap`` pixels on the sides that have a neighbour."""
    w = torch.ones(size, dtype=torch.float32, device=like.device)
    if overlap > 0:
        r = (torch.arange(size, dtype=torch.float32, device=like.device) + 0.5) / overlap
        if taper_start:
            w = torch.minimum(w, r)
        if taper_end:
            w = torch.minimum(w, r.flip(0))
    return w


def tiled_apply(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tile: int | None = 512,
    overlap: int = 32,
) -> torch.Tensor:
    """Apply ``fn`` to ``x`` tile by tile and blend the results.

    ``x``: ``(B, C, H, W)`` or ``(B, T, C, H, W)`` (any leading dims; tiles are cut on the last two).
    ``fn``: maps a tile ``(..., h, w)`` to an output ``(*lead, h, w)`` of the same spatial size (leading dims may
    differ from the input's, e.g. a multi-frame model returning the centre frame ``(B, 3, h, w)``).
    Returns ``(*lead, H, W)`` in float32 on ``x``'s device. ``tile=None`` (or a frame that fits in one tile) runs
    ``fn`` once on the whole input.
    """
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if tile is None or (h <= tile and w <= tile):
        return fn(x).float()
    if tile < 8 or not 0 <= overlap < tile:
        raise InputError(f"tiling: need tile >= 8 and 0 <= overlap < tile, got tile {tile}, overlap {overlap}")
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    out: torch.Tensor | None = None
    weight_sum = torch.zeros((h, w), dtype=torch.float32, device=x.device)
    for i, y0 in enumerate(ys):
        th = min(tile, h)
        wy = _ramp(th, overlap, i > 0, i < len(ys) - 1, x)
        for j, x0 in enumerate(xs):
            tw = min(tile, w)
            wx = _ramp(tw, overlap, j > 0, j < len(xs) - 1, x)
            y = fn(x[..., y0 : y0 + th, x0 : x0 + tw]).float()
            if y.shape[-2:] != (th, tw):
                raise InputError(f"tiling: the model changed the tile size {(th, tw)} to {tuple(y.shape[-2:])}")
            if out is None:
                out = torch.zeros((*y.shape[:-2], h, w), dtype=torch.float32, device=x.device)
            wt = wy[:, None] * wx[None, :]
            out[..., y0 : y0 + th, x0 : x0 + tw] += y * wt
            weight_sum[y0 : y0 + th, x0 : x0 + tw] += wt
    assert out is not None
    return out / weight_sum
