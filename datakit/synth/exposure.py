"""Exposure: slowly varying camera exposure over a clip, and absolute scaling of relative images.

Real cameras change exposure slowly and smoothly (auto exposure avoids flicker), so content that
is clipped in one frame is often well exposed a few frames away (the "temporal clues" of the
seeds). :func:`sample_exposure_curve` draws such a curve in EV (stops, gain ``2**ev``).

HDR image collections hold *relative* radiance (EXR / Radiance files have no absolute scale).
:func:`absolute_scale` turns one into ``rgb_nits`` with a documented, randomized rule and reports
what it did, so the manifest can record it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from datakit.color.gamut import luminance_weights
from datakit.errors import InputError, RecipeError
from datakit.synth.warp import smooth_curve

__all__ = ["ABSOLUTE_SCALE_METHODS", "DEFAULT_SCALE_RULE", "absolute_scale", "sample_exposure_curve"]


def sample_exposure_curve(
    n_frames: int, rng: np.random.Generator, ev_range: tuple[float, float] = (-1.0, 1.0), max_ev_step: float = 0.1
) -> np.ndarray:
    """Smooth random exposure offsets in EV, ``(N,)`` float32 (apply as gain ``2**ev``).

    A cubic Bezier with control points uniform in ``ev_range`` (so every value lies in the range);
    if its largest frame-to-frame step exceeds ``max_ev_step`` the curve is shrunk around its first
    value (which stays in range) until it does not. ``max_ev_step = 0`` gives a constant exposure.
    """
    lo, hi = float(ev_range[0]), float(ev_range[1])
    if lo > hi or max_ev_step < 0:
        raise RecipeError(f"exposure: need ev_range min <= max and max_ev_step >= 0, got {ev_range}, {max_ev_step}")
    ev = smooth_curve(n_frames, rng, lo, hi)
    if n_frames > 1:
        step = float(np.abs(np.diff(ev)).max())
        if step > max_ev_step:
            ev = ev[0] + (ev - ev[0]) * (max_ev_step / step)
    return ev.astype(np.float32)


ABSOLUTE_SCALE_METHODS = ("key", "diffuse_white", "fixed")

DEFAULT_SCALE_RULE: dict[str, Any] = {"method": "key", "key_nits": [10.0, 40.0]}
"""Default rule: the image's log-average luminance lands uniformly (in log) in 10..40 cd/m^2."""


def _log_uniform(spec: Any, rng: np.random.Generator, name: str) -> float:
    if isinstance(spec, (int, float)):
        lo = hi = float(spec)
    else:
        try:
            lo, hi = (float(v) for v in spec)
        except (TypeError, ValueError):
            raise RecipeError(f"absolute_scale: {name} must be a number or [min, max], got {spec!r}") from None
    if not 0 < lo <= hi:
        raise RecipeError(f"absolute_scale: {name} must satisfy 0 < min <= max, got [{lo}, {hi}]")
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def absolute_scale(
    rgb_linear: np.ndarray,
    rng: np.random.Generator,
    rule: Mapping[str, Any] | None = None,
    primaries: str = "bt2020",
) -> tuple[float, dict[str, Any]]:
    """Randomized factor that turns a relative linear image into ``rgb_nits``: ``nits = scale * rgb``.

    ``rgb_linear``: relative linear light ``(..., 3)`` in ``primaries``. ``rule`` (default
    :data:`DEFAULT_SCALE_RULE`) is one of:

    * ``{"method": "key", "key_nits": [lo, hi]}``: the log-average (geometric mean) luminance
      ``exp(mean(log(Y + eps)))`` is mapped to a target drawn log-uniformly in [lo, hi] cd/m^2;
    * ``{"method": "diffuse_white", "percentile": p, "white_nits": [lo, hi]}``: the ``p``-th
      luminance percentile (default 90, an estimate of diffuse white that ignores the small
      specular / light-source areas) is mapped to a log-uniform target (e.g. 100-300 cd/m^2);
    * ``{"method": "fixed", "scale": s}``: a fixed factor.

    Returns ``(scale, info)`` with ``info`` = JSON-ready description (method, measured statistic,
    target, scale). Raises :class:`InputError` for an all-black image and :class:`RecipeError`
    for a malformed rule.
    """
    rule = dict(DEFAULT_SCALE_RULE if rule is None else rule)
    method = rule.pop("method", "key")
    rgb = np.maximum(np.asarray(rgb_linear, dtype=np.float32), 0.0)
    lum = (rgb @ luminance_weights(primaries).astype(np.float32)).astype(np.float64).ravel()
    if not lum.size or float(lum.max()) <= 0.0:
        raise InputError("absolute_scale: the image is black (no luminance to scale)")
    info: dict[str, Any] = {"method": method}
    if method == "fixed":
        if set(rule) - {"scale"} or not isinstance(rule.get("scale"), (int, float)) or rule["scale"] <= 0:
            raise RecipeError(f"absolute_scale: 'fixed' needs only a positive 'scale', got {rule!r}")
        scale = float(rule["scale"])
    elif method == "key":
        if set(rule) - {"key_nits"}:
            raise RecipeError(f"absolute_scale: unknown keys for 'key': {sorted(set(rule) - {'key_nits'})}")
        stat = float(np.exp(np.mean(np.log(lum + 1e-6))))
        target = _log_uniform(rule.get("key_nits", DEFAULT_SCALE_RULE["key_nits"]), rng, "key_nits")
        info.update(image_log_average=stat, target_nits=target)
        scale = target / stat if stat > 1e-6 else 0.0
    elif method == "diffuse_white":
        if set(rule) - {"percentile", "white_nits"}:
            raise RecipeError(f"absolute_scale: unknown keys for 'diffuse_white': {sorted(rule)}")
        pct = float(rule.get("percentile", 90.0))
        if not 0.0 < pct <= 100.0:
            raise RecipeError(f"absolute_scale: percentile must be in (0, 100], got {pct}")
        stat = float(np.percentile(lum, pct))
        target = _log_uniform(rule.get("white_nits", [100.0, 300.0]), rng, "white_nits")
        info.update(percentile=pct, image_white=stat, target_nits=target)
        scale = target / stat if stat > 0 else 0.0
    else:
        raise RecipeError(f"absolute_scale: unknown method {method!r} (known: {', '.join(ABSOLUTE_SCALE_METHODS)})")
    if not np.isfinite(scale) or scale <= 0:
        raise InputError("absolute_scale: the image is black (no luminance to scale)")
    info["scale"] = scale
    return scale, info
