"""Clip strategies: which SDR frame numbers become training/test samples.

A :class:`Clip` is a run of consecutive frames (``frames``) inside one scene, optionally with extra reference
frames (``refs``) from the same scene. Frame numbers are 0-based SDR frame numbers; the builder maps them to
HDR frames through the alignment. Scenes are half-open ranges ``[start, end)`` (:func:`scenes_from_cuts`), cuts
are frame numbers where a scene starts.

Strategies, after the published protocols:

- :func:`consecutive`: N consecutive frames per scene, away from its cuts (HDRTVMF1K / DSLNet: 10 per scene).
- :func:`interval`: N consecutive frames every T seconds, dropping clips at cuts (KPN-MFI: 3 frames every 2 s).
- :func:`single`: one frame every T seconds (HDRTV1K: one frame every 2 s).
- :func:`global_local`: N consecutive frames plus R references across the scene at a large stride
  ("global sampling, local propagation" of the temporal-clues video ITM work).

:func:`plan_clips` selects one by name with the recipe's ``[clips]`` keys, so the builder stays generic.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from datakit.errors import RecipeError
from datakit.pairs.scenes import scenes_from_cuts

__all__ = [
    "CLIP_STRATEGIES",
    "Clip",
    "consecutive",
    "frames_needed",
    "global_local",
    "interval",
    "plan_clips",
    "single",
]

Scene = tuple[int, int]


@dataclass(slots=True)
class Clip:
    """One sample: ``frames`` (consecutive SDR frame numbers), ``refs`` (extra reference frames of the same
    scene, sorted, ``[]`` unless the strategy is ``global_local``), ``scene`` (index of the scene in the
    source) and ``centre`` (``frames[len(frames) // 2]``, the key frame)."""

    scene: int
    frames: list[int]
    refs: list[int] = field(default_factory=list)
    centre: int = -1

    def __post_init__(self) -> None:
        if self.centre < 0 and self.frames:
            self.centre = self.frames[len(self.frames) // 2]

    @property
    def ref_offsets(self) -> list[int]:
        """Reference frames relative to the centre frame (negative = earlier)."""
        return [r - self.centre for r in self.refs]

    @property
    def all_frames(self) -> list[int]:
        """Every frame the clip needs (frames and refs), sorted."""
        return sorted({*self.frames, *self.refs})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description for the manifest."""
        return {
            "scene": self.scene,
            "frames": list(self.frames),
            "refs": list(self.refs),
            "ref_offsets": self.ref_offsets,
            "centre": self.centre,
        }


# ------------------------------------------------------------------------------------------- validation


def _int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise RecipeError(f"clips: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Fraction) or not value > 0:
        raise RecipeError(f"clips: {name} must be a number > 0, got {value!r}")
    return value


def _check_scenes(scenes: Iterable[Sequence[int]]) -> list[Scene]:
    out = [(int(s), int(e)) for s, e in scenes]
    for (s0, e0), (s1, _) in itertools.pairwise(out):
        if e0 > s1:
            raise RecipeError(f"clips: scenes overlap or are unsorted: ({s0}, {e0}) then starts at {s1}")
    if any(s < 0 or e < s for s, e in out):
        raise RecipeError("clips: a scene must be a range (start, end) with 0 <= start <= end")
    return out


# ------------------------------------------------------------------------------------------- scene-based


def _starts_in(lo: int, hi: int, n: int, count: int | None, stride: int | None) -> list[int]:
    """Start frames of up to ``count`` runs of ``n`` frames inside ``[lo, hi)``.

    Without a stride the runs do not overlap and the free frames are shared equally before, between and
    after them (one run is centred). With a stride, runs start ``stride`` apart and the group is centred.
    """
    room = hi - lo
    if room < n:
        return []
    if stride is None:
        k = room // n if count is None else min(count, room // n)
        free = room - k * n
        return [lo + i * n + (i + 1) * free // (k + 1) for i in range(k)]
    k = (room - n) // stride + 1
    k = k if count is None else min(count, k)
    span = (k - 1) * stride + n
    first = lo + (room - span) // 2
    return [first + i * stride for i in range(k)]


def consecutive(
    scenes: Iterable[Sequence[int]],
    n: int,
    *,
    margin: int = 2,
    min_scene_len: int | None = None,
    max_clips_per_scene: int | None = 1,
    stride: int | None = None,
) -> list[Clip]:
    """``n`` consecutive frames per scene, kept ``margin`` frames away from the scene's boundaries.

    A scene ``[start, end)`` offers frames ``[start + margin, end - margin)``; scenes shorter than
    ``min_scene_len`` (default: no extra limit) or with fewer than ``n`` usable frames give no clip. Up to
    ``max_clips_per_scene`` clips (``None`` = as many as fit) are spread evenly without overlap, or placed
    ``stride`` frames apart (overlap allowed when ``stride < n``); a single clip is centred.
    """
    n = _int("frames", n, 1)
    margin = _int("margin", margin, 0)
    limit = None if min_scene_len is None else _int("min_scene_len", min_scene_len, 0)
    count = None if max_clips_per_scene is None else _int("max_per_scene", max_clips_per_scene, 1)
    step = None if stride is None else _int("stride", stride, 1)
    clips = []
    for index, (start, end) in enumerate(_check_scenes(scenes)):
        if limit is not None and end - start < limit:
            continue
        for first in _starts_in(start + margin, end - margin, n, count, step):
            clips.append(Clip(index, list(range(first, first + n))))
    return clips


def _ref_frames(lo: int, hi: int, local: Sequence[int], centre: int, count: int, stride: int) -> list[int] | None:
    """``count`` frames at ``centre +- k * stride`` (nearest first, earlier before later at equal distance)
    inside ``[lo, hi)`` and outside ``local``; ``None`` when fewer exist."""
    taken = set(local)
    refs: list[int] = []
    reach = max(centre - lo, hi - 1 - centre) // stride
    for k in range(1, reach + 1):
        for candidate in (centre - k * stride, centre + k * stride):
            if lo <= candidate < hi and candidate not in taken and len(refs) < count:
                refs.append(candidate)
        if len(refs) == count:
            return sorted(refs)
    return None if count else []


def global_local(
    scenes: Iterable[Sequence[int]],
    n: int,
    refs: int,
    ref_stride: int,
    *,
    margin: int = 2,
    min_scene_len: int | None = None,
    max_clips_per_scene: int | None = 1,
) -> list[Clip]:
    """Local clips of :func:`consecutive` plus ``refs`` reference frames sampled across the whole scene.

    References sit at ``centre +- k * ref_stride`` (k = 1, 2, ...; nearest first), inside the scene's usable
    range ``[start + margin, end - margin)`` and outside the local frames, so a model sees the same scene
    under the slowly varying exposure of distant frames. A clip whose scene cannot hold ``refs`` references
    at that stride is dropped (every sample keeps the same shape). :attr:`Clip.ref_offsets` gives the offsets.
    """
    refs = _int("refs", refs, 0)
    ref_stride = _int("ref_stride", ref_stride, 1)
    margin = _int("margin", margin, 0)
    scene_list = _check_scenes(scenes)
    out = []
    for clip in consecutive(
        scene_list, n, margin=margin, min_scene_len=min_scene_len, max_clips_per_scene=max_clips_per_scene
    ):
        start, end = scene_list[clip.scene]
        chosen = _ref_frames(start + margin, end - margin, clip.frames, clip.centre, refs, ref_stride)
        if chosen is not None:
            clip.refs = chosen
            out.append(clip)
    return out


# ------------------------------------------------------------------------------------------- time-based


def _anchor_frames(n_frames: int, fps: Fraction, every_seconds: float, offset_seconds: float | None) -> list[int]:
    """Frame numbers showing times ``offset + k * every`` (offset defaults to ``every / 2``)."""
    every = Fraction(every_seconds).limit_denominator(1_000_000)
    offset = every / 2 if offset_seconds is None else Fraction(offset_seconds).limit_denominator(1_000_000)
    if offset < 0:
        raise RecipeError(f"clips: offset_seconds must be >= 0, got {offset_seconds!r}")
    duration = n_frames / fps
    count = math.ceil((duration - offset) / every) if duration > offset else 0
    return [math.floor((offset + k * every) * fps) for k in range(count)]


def _clear_of_cuts(first: int, last: int, bounds: Sequence[int], margin: int) -> bool:
    """True when no boundary ``c`` lies in ``(first, last]`` and none is within ``margin`` frames:
    the frames ``[c - margin, c + margin)`` around each scene start ``c`` are excluded."""
    i = bisect.bisect_right(bounds, first)
    if i < len(bounds) and bounds[i] <= last + margin:  # a boundary inside the clip, or just after it
        return False
    return not (i > 0 and first < bounds[i - 1] + margin)  # the boundary before the clip is too close


def interval(
    n_frames_total: int,
    fps: Fraction | float,
    n: int,
    every_seconds: float,
    cuts: Iterable[int] = (),
    margin: int = 0,
    *,
    offset_seconds: float | None = None,
) -> list[Clip]:
    """``n`` consecutive frames every ``every_seconds``; clips crossing a cut or near one are dropped.

    Anchors are the frames shown at ``offset + k * every_seconds`` (offset defaults to half an interval, so
    the first sample does not sit on frame 0); the clip's centre frame (``frames[n // 2]``) is the anchor.
    Clips leaving ``[0, n_frames_total)``, containing a cut, or with a frame within ``margin`` frames of a
    scene boundary (cuts, and the start and end of the video) are dropped.
    """
    total = _int("n_frames_total", n_frames_total, 0)
    rate = Fraction(_positive("fps", fps))
    n = _int("frames", n, 1)
    every = _positive("every_seconds", every_seconds)
    margin = _int("margin", margin, 0)
    scenes = scenes_from_cuts(cuts, total)
    bounds = [s for s, _ in scenes] + ([total] if total else [])
    clips = []
    for anchor in _anchor_frames(total, rate, every, offset_seconds):
        first = anchor - n // 2
        last = first + n - 1
        if first < 0 or last >= total:
            continue
        if _clear_of_cuts(first, last, bounds, margin):
            clips.append(Clip(bisect.bisect_right(bounds, first) - 1, list(range(first, last + 1))))
    return clips


def single(
    n_frames_total: int,
    fps: Fraction | float,
    every_seconds: float,
    cuts: Iterable[int] | None = None,
    margin: int = 0,
    *,
    offset_seconds: float | None = None,
) -> list[Clip]:
    """One frame every ``every_seconds`` (HDRTV1K protocol): :func:`interval` with ``n = 1``."""
    return interval(n_frames_total, fps, 1, every_seconds, cuts or (), margin, offset_seconds=offset_seconds)


# ------------------------------------------------------------------------------------------- registry

ClipPlanner = Callable[..., list[Clip]]
"""Uniform signature: ``planner(params, *, n_frames, fps, cuts) -> list[Clip]``."""

_DEFAULTS: dict[str, Any] = {
    "frames": 10,
    "margin": 2,
    "max_per_scene": 1,
    "every_seconds": 2.0,
    "refs": 0,
    "ref_stride": 8,
    "stride": None,
    "min_scene_len": None,
    "offset_seconds": None,
    "snap_to_keyframes": False,  # applied by the sparse builder, which knows the keyframes and the alignment
}
_KNOWN = {"strategy", *_DEFAULTS}


def _plan_consecutive(p: Mapping[str, Any], *, n_frames: int, fps: Fraction, cuts: Sequence[int]) -> list[Clip]:
    return consecutive(
        scenes_from_cuts(cuts, n_frames),
        p["frames"],
        margin=p["margin"],
        min_scene_len=p["min_scene_len"],
        max_clips_per_scene=p["max_per_scene"],
        stride=p["stride"],
    )


def _plan_interval(p: Mapping[str, Any], *, n_frames: int, fps: Fraction, cuts: Sequence[int]) -> list[Clip]:
    return interval(
        n_frames, fps, p["frames"], p["every_seconds"], cuts, p["margin"], offset_seconds=p["offset_seconds"]
    )


def _plan_single(p: Mapping[str, Any], *, n_frames: int, fps: Fraction, cuts: Sequence[int]) -> list[Clip]:
    return single(n_frames, fps, p["every_seconds"], cuts, p["margin"], offset_seconds=p["offset_seconds"])


def _plan_global_local(p: Mapping[str, Any], *, n_frames: int, fps: Fraction, cuts: Sequence[int]) -> list[Clip]:
    return global_local(
        scenes_from_cuts(cuts, n_frames),
        p["frames"],
        p["refs"],
        p["ref_stride"],
        margin=p["margin"],
        min_scene_len=p["min_scene_len"],
        max_clips_per_scene=p["max_per_scene"],
    )


CLIP_STRATEGIES: dict[str, ClipPlanner] = {
    "consecutive": _plan_consecutive,
    "interval": _plan_interval,
    "single": _plan_single,
    "global_local": _plan_global_local,
}
"""Strategy name -> planner with the uniform signature ``(params, *, n_frames, fps, cuts)``."""


def plan_clips(
    strategy: str,
    params: Mapping[str, Any] | None = None,
    *,
    n_frames: int,
    fps: Fraction | float,
    cuts: Iterable[int] = (),
) -> list[Clip]:
    """Clips of one source by strategy name, with the recipe's ``[clips]`` keys as ``params``.

    Keys: ``frames`` (N), ``margin``, ``max_per_scene``, ``every_seconds``, ``refs``, ``ref_stride`` and the
    optional ``stride``, ``min_scene_len``, ``offset_seconds``; keys a strategy does not use are ignored, a
    ``strategy`` key is allowed. ``n_frames`` and ``cuts`` are in SDR frames. Unknown strategies, unknown keys
    and bad values raise :class:`RecipeError`.
    """
    if strategy not in CLIP_STRATEGIES:
        raise RecipeError(f"clips: unknown strategy {strategy!r} (known: {', '.join(CLIP_STRATEGIES)})")
    params = dict(params or {})
    unknown = sorted(set(params) - _KNOWN)
    if unknown:
        raise RecipeError(f"clips: unknown key(s) {', '.join(map(repr, unknown))} (known: {', '.join(sorted(_KNOWN))})")
    merged = {**_DEFAULTS, **params}
    rate = Fraction(_positive("fps", fps))
    return CLIP_STRATEGIES[strategy](merged, n_frames=n_frames, fps=rate, cuts=sorted(set(cuts)))


def frames_needed(clips: Iterable[Clip]) -> list[int]:
    """Sorted SDR frame numbers that the clips use (frames and references): what a sparse decode must read."""
    needed: set[int] = set()
    for clip in clips:
        needed.update(clip.frames)
        needed.update(clip.refs)
    return sorted(needed)
