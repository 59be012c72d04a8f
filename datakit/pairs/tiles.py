"""Tiles: crop boxes applied identically to every frame of a clip and to both sides of a pair.

A box is ``(x, y, w, h)`` in HDR-frame pixels: columns ``x .. x+w-1``, rows ``y .. y+h-1``, always fully
inside the frame. :func:`crop` cuts it out of any channels-last array (one frame ``(H, W, C)`` or a clip
``(T, H, W, C)``; ``rgb_pq``, ``rgb_sdr`` or their uint16/uint8 storage codes alike), so the HDR clip and the
aligned SDR clip get the same pixels.

Strategies:

- :func:`random_tiles`: ``count`` squares at uniformly random positions (deterministic for a seed).
- :func:`grid_tiles`: the sliding-window sub-images used for HDRTV1K training (480 px, step 240, threshold 48),
  following the convention of BasicSR's ``extract_subimages`` script. Along each axis, windows start at 0,
  ``step``, ``2 step``... as long as they fit; if the strip left uncovered after the last window is wider than
  ``remainder_threshold`` pixels, one more window is added flush with the far edge (it overlaps its
  neighbour); a narrower remainder is left out. Rows are outer, columns inner.
- :func:`cover_tiles`: the fewest squares that cover the frame, spread evenly so that neighbours overlap
  equally (``ceil(L / size)`` per axis). KPN-MFI's "1024 x 1024 crops with overlapping": 12 per 3840 x 2160
  frame, where the paper's counts give 13.1 per training sample (42,608 crops of 3,241 samples) and a
  1024/512 grid would give 28.
- :func:`full_tile`: the whole frame.

:func:`plan_tiles` selects one by name with the recipe's ``[tiles.*]`` keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from datakit.errors import InputError, RecipeError

__all__ = [
    "TILE_STRATEGIES",
    "Box",
    "cover_positions",
    "cover_tiles",
    "crop",
    "full_tile",
    "grid_positions",
    "grid_tiles",
    "plan_tiles",
    "random_tiles",
]

Box = tuple[int, int, int, int]
"""``(x, y, w, h)`` in HDR-frame pixels."""


def _int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise RecipeError(f"tiles: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _frame_size(height: Any, width: Any) -> tuple[int, int]:
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise InputError(f"tiles: frame {name} must be an integer >= 1, got {value!r}")
    return int(height), int(width)


def full_tile(height: int, width: int) -> list[Box]:
    """The whole frame as one box."""
    height, width = _frame_size(height, width)
    return [(0, 0, width, height)]


def grid_positions(length: int, size: int, step: int, remainder_threshold: int) -> list[int]:
    """Window starts along one axis of ``length`` pixels (see the module doc for the convention); ``[]`` when
    ``size > length``."""
    length = _int("length", length, 1)
    size = _int("size", size, 1)
    step = _int("step", step, 1)
    remainder_threshold = _int("remainder", remainder_threshold, 0)
    if size > length:
        return []
    starts = list(range(0, length - size + 1, step))
    if length - (starts[-1] + size) > remainder_threshold:
        starts.append(length - size)
    return starts


def grid_tiles(height: int, width: int, size: int, step: int, remainder_threshold: int) -> list[Box]:
    """Sliding-window squares of ``size`` every ``step`` pixels, plus an edge-flush window per axis when the
    uncovered remainder exceeds ``remainder_threshold`` (HDRTV1K: 480, 240, 48). Row-major order. A frame
    smaller than ``size`` gets no tile (``[]``)."""
    height, width = _frame_size(height, width)
    ys = grid_positions(height, size, step, remainder_threshold)
    xs = grid_positions(width, size, step, remainder_threshold)
    return [(x, y, size, size) for y in ys for x in xs]


def cover_positions(length: int, size: int) -> list[int]:
    """Starts of the fewest windows of ``size`` that cover ``length`` pixels, evenly spread (the first flush
    with 0, the last with the far edge, overlaps differing by at most a pixel); ``[]`` when ``size > length``."""
    length = _int("length", length, 1)
    size = _int("size", size, 1)
    if size > length:
        return []
    count = -(-length // size)
    if count == 1:
        return [0]
    return [round(i * (length - size) / (count - 1)) for i in range(count)]


def cover_tiles(height: int, width: int, size: int) -> list[Box]:
    """The fewest squares of ``size`` that cover the frame, overlapping evenly (see the module doc). Row-major
    order. A frame smaller than ``size`` gets no tile (``[]``)."""
    height, width = _frame_size(height, width)
    ys, xs = cover_positions(height, size), cover_positions(width, size)
    return [(x, y, size, size) for y in ys for x in xs]


def random_tiles(
    height: int, width: int, size: int, count: int, rng: np.random.Generator | int | None = None
) -> list[Box]:
    """``count`` squares of ``size`` at positions drawn uniformly (every integer position equally likely,
    repeats allowed) from ``rng`` (a ``numpy.random.Generator``, or an int seed). A frame smaller than
    ``size`` gets no tile (``[]``)."""
    height, width = _frame_size(height, width)
    size = _int("size", size, 1)
    count = _int("count", count, 0)
    if size > height or size > width:
        return []
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    xs = gen.integers(0, width - size, size=count, endpoint=True)
    ys = gen.integers(0, height - size, size=count, endpoint=True)
    return [(int(x), int(y), size, size) for x, y in zip(xs, ys, strict=True)]


def crop(frames: np.ndarray, box: Box) -> np.ndarray:
    """The pixels of ``box`` from a channels-last array ``(..., H, W, C)`` (a view, not a copy)."""
    x, y, w, h = (int(v) for v in box)
    if frames.ndim < 3:
        raise InputError(f"crop needs a channels-last array (..., H, W, C), got shape {frames.shape}")
    height, width = frames.shape[-3], frames.shape[-2]
    if w < 1 or h < 1 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise InputError(f"crop box {box} does not lie inside a {width}x{height} frame")
    return frames[..., y : y + h, x : x + w, :]


# ------------------------------------------------------------------------------------------- registry

TilePlanner = Callable[..., list[Box]]
"""Uniform signature: ``planner(params, *, height, width, rng) -> list[Box]``."""

_DEFAULTS: dict[str, Any] = {"size": 480, "count": 4, "step": 240, "remainder": 48}
_KNOWN = {"strategy", *_DEFAULTS}


def _plan_random(p: Mapping[str, Any], *, height: int, width: int, rng: np.random.Generator) -> list[Box]:
    return random_tiles(height, width, p["size"], p["count"], rng)


def _plan_grid(p: Mapping[str, Any], *, height: int, width: int, rng: np.random.Generator) -> list[Box]:
    return grid_tiles(height, width, p["size"], p["step"], p["remainder"])


def _plan_cover(p: Mapping[str, Any], *, height: int, width: int, rng: np.random.Generator) -> list[Box]:
    return cover_tiles(height, width, p["size"])


def _plan_full(p: Mapping[str, Any], *, height: int, width: int, rng: np.random.Generator) -> list[Box]:
    return full_tile(height, width)


TILE_STRATEGIES: dict[str, TilePlanner] = {
    "random": _plan_random, "grid": _plan_grid, "cover": _plan_cover, "full": _plan_full,
}  # fmt: skip
"""Strategy name -> planner with the uniform signature ``(params, *, height, width, rng)``."""


def plan_tiles(
    strategy: str,
    params: Mapping[str, Any] | None = None,
    *,
    height: int,
    width: int,
    rng: np.random.Generator | int | None = None,
) -> list[Box]:
    """Boxes for one clip by strategy name (``"random"``, ``"grid"``, ``"cover"``, ``"full"``), with the recipe's
    ``[tiles.*]`` keys (``size``, ``count``, ``step``, ``remainder``; a ``strategy`` key is allowed, keys the
    strategy does not use are ignored). ``height``/``width``: the HDR frame (or the part of it to tile). An
    empty list means the frame is smaller than the tile. Bad recipe values raise :class:`RecipeError`."""
    if strategy not in TILE_STRATEGIES:
        raise RecipeError(f"tiles: unknown strategy {strategy!r} (known: {', '.join(TILE_STRATEGIES)})")
    params = dict(params or {})
    unknown = sorted(set(params) - _KNOWN)
    if unknown:
        raise RecipeError(f"tiles: unknown key(s) {', '.join(map(repr, unknown))} (known: {', '.join(sorted(_KNOWN))})")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return TILE_STRATEGIES[strategy]({**_DEFAULTS, **params}, height=height, width=width, rng=gen)
