"""Default random ranges of the synthesis (warp, exposure, degradation) and their validation.

A recipe overrides any part of :data:`DEFAULT_RANGES` (:func:`resolve_ranges` deep-merges the
override and validates the result; dicts merge key by key, anything else replaces). Value forms:

* ``[min, max]`` - a uniform range (a single number means a fixed value);
* ``p`` - a probability in [0, 1] that an optional step is applied;
* ``weights`` - ``{name: weight}`` (relative, >= 0, not all 0) or a list of names (equal weights);
* choice lists - a list of names drawn uniformly.

Every impossible or unknown value raises :class:`~datakit.errors.RecipeError` with the dotted
path of the offending key.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

from datakit.errors import RecipeError
from datakit.synth.exposure import ABSOLUTE_SCALE_METHODS
from datakit.synth.gamut_map import GAMUT_METHODS
from datakit.synth.mastering import GRADES, MASTERING_PRIMARIES
from datakit.synth.tonemap import TONEMAP_OPERATORS, operator_parameters

__all__ = [
    "CODECS",
    "CODEC_MAX_CRF",
    "DEFAULT_RANGES",
    "PRESETS",
    "TRANSFERS",
    "deep_merge",
    "normalized_weights",
    "resolve_ranges",
    "validate_ranges",
]

TRANSFERS = ("bt1886", "gamma24", "bt709", "srgb", "gamma22")
"""SDR encodings: inverse BT.1886 EOTF (with a display black level), pure gamma 2.4, the BT.709
camera OETF, the sRGB inverse EOTF (IEC 61966-2-1) and pure gamma 2.2."""
CODECS = ("libx264", "libx265", "libvpx-vp9", "libsvtav1")
"""Delivery encoders of the codec pass (PyAV's bundled libx264, libx265, libvpx-vp9 and libsvtav1): H.264, HEVC,
VP9 and AV1."""
CODEC_MAX_CRF = {"libx264": 51, "libx265": 51, "libvpx-vp9": 63, "libsvtav1": 63}
"""Largest constant rate factor of each encoder (x264/x265: 0-51; libvpx and SVT-AV1: 0-63)."""
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")

DEFAULT_RANGES: dict[str, Any] = {
    "trajectory": {
        "max_shift": 0.15,  # fraction of the tile's long side
        "max_zoom": 0.15,  # zoom factor within [1/(1+z), 1+z]
        "max_rotation_deg": 4.0,
        "max_perspective": 0.05,
        "motion_blur_samples": [1, 4],  # integer range
        "region_motion_p": 0.3,
    },
    "absolute_scale": {"method": "key", "key_nits": [10.0, 40.0]},
    "exposure": {"ev_range": [-1.0, 1.0], "max_ev_step": 0.1},
    "tonemap": {  # on graded targets the input-peak parameters (tonemap.MASTER_PEAK_PARAMETERS) take the master's peak
        "weights": dict.fromkeys(TONEMAP_OPERATORS, 1.0),
        "reinhard": {"key": [0.10, 0.30], "white": [2.0, 16.0]},
        "hable": {"exposure_bias": [1.2, 3.0], "white_point": [6.0, 16.0]},
        "bt2446a": {"l_hdr": [600.0, 2000.0]},
        "bt2390_eetf": {"source_max": [1000.0, 4000.0], "target_min": [0.0, 0.05], "mode": ["maxrgb", "rgb"]},
        "camera_scurve": {"clip_nits": [120.0, 500.0], "contrast": [1.0, 1.8]},
        "aces2_sdr": {},
        "bt2446c": {"alpha": [0.0, 0.1], "sdr_white_nits": [100.0, 118.0], "gamut_mapping": ["soft", "clip"]},
        "display_mapping": {
            "source_peak": [1000.0, 4000.0],
            "sdr_white_nits": [100.0, 203.0],
            "desaturation": [0.4, 1.0],
            "knee": [0.4, 0.8],
        },
        "film_look": {
            "exposure_stops": [-0.5, 0.5],
            "contrast": [1.3, 2.2],
            "grey_display": [0.12, 0.2],
            "warmth": [-0.15, 0.15],
        },
        "clip": {"exposure_stops": [-0.5, 0.5], "white_nits": [100.0, 203.0]},
    },
    "mastering": {
        "weights": {"bt2390_eetf": 1.0, "aces2": 1.0, "scene": 0.0},
        "peak_nits": [1000.0, 2000.0, 4000.0],  # mastering display peaks, drawn uniformly
        "min_nits": [0.0001, 0.005],  # mastering display black levels (ST 2086 min luminance)
        "primaries": ["p3_d65", "bt2020"],
    },
    "gamut": {"weights": {"clip": 1.0, "soft": 1.0}, "threshold": [0.7, 0.9]},
    "transfer": {
        "weights": {"bt1886": 2.0, "gamma24": 1.0, "bt709": 1.0, "srgb": 1.0, "gamma22": 1.0},
        "bt1886_black": [0.0, 0.001],  # display black relative to white (0.1 cd/m^2 on 100)
    },
    "saturation": {"start": [0.85, 1.15], "drift": [-0.05, 0.05]},
    "white_balance": {"start": [-0.05, 0.05], "drift": [-0.02, 0.02]},  # log2 gains of R and B
    "noise": {"p": 0.7, "shot": [0.0, 0.002], "read": [0.0, 0.003]},
    "blur": {"p": 0.3, "sigma": [0.3, 1.2]},
    "chroma": {"p": 1.0},
    "codec": {
        "p": 1.0,
        "codec": list(CODECS),
        "crf": {"libx264": [18, 32], "libx265": [20, 34], "libvpx-vp9": [28, 48], "libsvtav1": [28, 50]},
        "preset": ["veryfast"],
    },
}
"""Default ranges; see the module docstring for the value forms."""

_INF = math.inf
# Schema: section -> key -> (kind, lo, hi) or (kind, choices).
_SCHEMA: dict[str, dict[str, tuple[Any, ...]]] = {
    "trajectory": {
        "max_shift": ("number", 0.0, 1.0),
        "max_zoom": ("number", 0.0, 2.0),
        "max_rotation_deg": ("number", 0.0, 90.0),
        "max_perspective": ("number", 0.0, 0.49),
        "motion_blur_samples": ("int_range", 1, 64),
        "region_motion_p": ("prob",),
    },
    "exposure": {"ev_range": ("range", -16.0, 16.0), "max_ev_step": ("number", 0.0, 16.0)},
    "gamut": {"weights": ("weights", GAMUT_METHODS), "threshold": ("range", 0.01, 0.99)},
    "transfer": {"weights": ("weights", TRANSFERS), "bt1886_black": ("range", 0.0, 0.1)},
    "saturation": {"start": ("range", 0.0, 4.0), "drift": ("range", -4.0, 4.0)},
    "white_balance": {"start": ("range", -2.0, 2.0), "drift": ("range", -2.0, 2.0)},
    "noise": {"p": ("prob",), "shot": ("range", 0.0, 1.0), "read": ("range", 0.0, 1.0)},
    "blur": {"p": ("prob",), "sigma": ("range", 0.0, 10.0)},
    "chroma": {"p": ("prob",)},
    "mastering": {
        "weights": ("weights", GRADES),
        "peak_nits": ("numbers", 100.0, 10000.0),
        "min_nits": ("numbers", 0.0, 10.0),
        "primaries": ("choices", MASTERING_PRIMARIES),
    },
    "codec": {
        "p": ("prob",),
        "crf": ("crf",),
        "codec": ("choices", CODECS),
        "preset": ("choices", PRESETS),
    },
}


# Sanity bounds of tone-mapping parameters (numbers: (lo, hi); names: the allowed choices).
_TONEMAP_BOUNDS: dict[str, tuple[Any, ...]] = {
    "key": (1e-4, 10.0),
    "white": (1e-3, 1e6),
    "log_average_nits": (1e-6, 1e6),
    "exposure_bias": (1e-3, 100.0),
    "white_point": (1e-3, 1e4),
    "shoulder_strength": (1e-4, 10.0),
    "linear_strength": (1e-4, 10.0),
    "linear_angle": (1e-4, 10.0),
    "toe_strength": (1e-4, 10.0),
    "toe_numerator": (1e-4, 10.0),
    "toe_denominator": (1e-4, 10.0),
    "l_hdr": (1.0, 10000.0),
    "l_sdr": (1.0, 10000.0),
    "source_min": (0.0, 10.0),
    "source_max": (1.0, 10000.0),
    "target_min": (0.0, 10.0),
    "target_max": (1.0, 10000.0),
    "mode": ("rgb", "maxrgb", "luminance"),
    "clip_nits": (1.0, 10000.0),
    "contrast": (0.1, 10.0),
    "gamma": (0.5, 5.0),
    "hdr_peak_nits": (0.0, 10000.0),
    "hdr_primaries": MASTERING_PRIMARIES,
    "k1": (0.01, 10.0),
    "k3": (0.0, 0.99),
    "y_sdr_ip": (1.0, 1000.0),
    "alpha": (0.0, 0.33),
    "sdr_white_nits": (1.0, 10000.0),
    "gamut_mapping": ("soft", "clip"),
    "source_peak": (1.0, 10000.0),
    "desaturation": (0.0, 1.0),
    "knee": (0.0, 0.99),
    "exposure_stops": (-8.0, 8.0),
    "grey_nits": (0.01, 1000.0),
    "grey_display": (0.01, 0.9),
    "warmth": (-2.0, 2.0),
    "white_nits": (1.0, 10000.0),
}


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any] | None) -> dict[str, Any]:
    """Copy of ``base`` with ``override`` merged in: dicts merge recursively, other values replace."""
    out = copy.deepcopy(dict(base))
    for key, value in (override or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_range(v: Any, lo: float, hi: float, where: str, integer: bool = False) -> list[float]:
    vals = [v, v] if _is_num(v) else v
    if not (isinstance(vals, (list, tuple)) and len(vals) == 2 and all(_is_num(x) for x in vals)):
        raise RecipeError(f"{where}: expected a number or [min, max], got {v!r}")
    a, b = vals
    if integer and not all(float(x).is_integer() for x in vals):
        raise RecipeError(f"{where}: expected whole numbers, got {v!r}")
    if a > b:
        raise RecipeError(f"{where}: min {a} > max {b}")
    if a < lo or b > hi:
        raise RecipeError(f"{where}: [{a}, {b}] is outside the allowed [{lo}, {hi}]")
    return [int(a), int(b)] if integer else [float(a), float(b)]


def normalized_weights(spec: Any, known: tuple[str, ...] | list[str], where: str) -> dict[str, float]:
    """``{name: weight}`` or a list of names -> ``{name: probability}`` (RecipeError if invalid)."""
    if isinstance(spec, (list, tuple)):
        spec = dict.fromkeys(spec, 1.0)
    if not isinstance(spec, Mapping) or not spec:
        raise RecipeError(f"{where}: expected {{name: weight}} or a list of names, got {spec!r}")
    for name, w in spec.items():
        if name not in known:
            raise RecipeError(f"{where}: unknown name {name!r} (known: {', '.join(known)})")
        if not _is_num(w) or w < 0:
            raise RecipeError(f"{where}.{name}: weight must be a number >= 0, got {w!r}")
    total = float(sum(spec.values()))
    if total <= 0:
        raise RecipeError(f"{where}: all weights are 0")
    return {name: float(w) / total for name, w in spec.items()}


def _check_value(kind: tuple[Any, ...], v: Any, where: str) -> Any:
    tag = kind[0]
    if tag == "number":
        if not _is_num(v) or not kind[1] <= v <= kind[2]:
            raise RecipeError(f"{where}: expected a number in [{kind[1]}, {kind[2]}], got {v!r}")
        return float(v)
    if tag == "prob":
        if not _is_num(v) or not 0.0 <= v <= 1.0:
            raise RecipeError(f"{where}: expected a probability in [0, 1], got {v!r}")
        return float(v)
    if tag in ("range", "int_range"):
        return _check_range(v, kind[1], kind[2], where, integer=tag == "int_range")
    if tag == "weights":
        normalized_weights(v, kind[1], where)
        if isinstance(v, (list, tuple)):  # exactly these names: the others get weight 0 (idempotent re-merge)
            return {k: (1.0 if k in v else 0.0) for k in kind[1]}
        return {k: float(w) for k, w in v.items()}
    if tag == "numbers":
        values = [v] if _is_num(v) else v
        if not isinstance(values, (list, tuple)) or not values or not all(_is_num(x) for x in values):
            raise RecipeError(f"{where}: expected a list of numbers, got {v!r}")
        if any(not kind[1] <= x <= kind[2] for x in values):
            raise RecipeError(f"{where}: {v!r} has values outside [{kind[1]}, {kind[2]}]")
        return [float(x) for x in values]
    if tag == "crf":
        if isinstance(v, Mapping):
            out = {}
            for codec, spec in v.items():
                if codec not in CODECS:
                    raise RecipeError(f"{where}: unknown codec {codec!r} (known: {', '.join(CODECS)})")
                out[codec] = _check_range(spec, 0, CODEC_MAX_CRF[codec], f"{where}.{codec}", integer=True)
            return out
        return _check_range(v, 0, 51, where, integer=True)
    if tag == "choices":
        names = [v] if isinstance(v, str) else v
        if not isinstance(names, (list, tuple)) or not names or any(n not in kind[1] for n in names):
            raise RecipeError(f"{where}: expected names from {', '.join(kind[1])}, got {v!r}")
        return list(names)
    raise AssertionError(tag)  # pragma: no cover


def _check_tonemap(section: Any) -> dict[str, Any]:
    if not isinstance(section, Mapping):
        raise RecipeError(f"tonemap: expected a mapping, got {section!r}")
    out: dict[str, Any] = {}
    for key, value in section.items():
        where = f"tonemap.{key}"
        if key == "weights":
            out[key] = _check_value(("weights", tuple(TONEMAP_OPERATORS)), value, where)
            continue
        allowed = operator_parameters(key)  # RecipeError for unknown operator names
        if not isinstance(value, Mapping):
            raise RecipeError(f"{where}: expected {{parameter: range}}, got {value!r}")
        params: dict[str, Any] = {}
        for pname, spec in value.items():
            if pname not in allowed:
                raise RecipeError(f"{where}: unknown parameter {pname!r} (has: {', '.join(allowed)})")
            bounds = _TONEMAP_BOUNDS.get(pname, (-_INF, _INF))
            if isinstance(bounds[0], str):
                params[pname] = _check_value(("choices", bounds), spec, f"{where}.{pname}")
            else:
                params[pname] = _check_range(spec, bounds[0], bounds[1], f"{where}.{pname}")
        out[key] = params
    return out


def _check_scale_rule(rule: Any) -> dict[str, Any]:
    if not isinstance(rule, Mapping) or rule.get("method", "key") not in ABSOLUTE_SCALE_METHODS:
        raise RecipeError(f"absolute_scale: method must be one of {', '.join(ABSOLUTE_SCALE_METHODS)}, got {rule!r}")
    out = dict(rule)
    for key in ("key_nits", "white_nits"):
        if key in out:
            out[key] = _check_range(out[key], 1e-6, 1e6, f"absolute_scale.{key}")
    if "percentile" in out:
        out["percentile"] = _check_value(("number", 0.001, 100.0), out["percentile"], "absolute_scale.percentile")
    if "scale" in out:
        out["scale"] = _check_value(("number", 1e-12, 1e12), out["scale"], "absolute_scale.scale")
    return out


def validate_ranges(ranges: Mapping[str, Any]) -> dict[str, Any]:
    """Check a complete ranges dict; return a normalized copy (lists, floats). Raises RecipeError."""
    if not isinstance(ranges, Mapping):
        raise RecipeError(f"synthesis ranges must be a mapping, got {type(ranges).__name__}")
    out: dict[str, Any] = {}
    for section, value in ranges.items():
        if section == "tonemap":
            out[section] = _check_tonemap(value)
        elif section == "absolute_scale":
            out[section] = _check_scale_rule(value)
        elif section in _SCHEMA:
            if not isinstance(value, Mapping):
                raise RecipeError(f"{section}: expected a mapping, got {value!r}")
            schema = _SCHEMA[section]
            sec: dict[str, Any] = {}
            for key, v in value.items():
                if key not in schema:
                    raise RecipeError(f"{section}: unknown key {key!r} (known: {', '.join(schema)})")
                sec[key] = _check_value(schema[key], v, f"{section}.{key}")
            out[section] = sec
        else:
            known = ", ".join([*_SCHEMA, "tonemap", "absolute_scale"])
            raise RecipeError(f"unknown synthesis section {section!r} (known: {known})")
    _check_consistency(out)
    return out


def _check_consistency(ranges: Mapping[str, Any]) -> None:
    """Checks across keys: a CRF range for every drawn codec, an ACES view for every peak the ACES grade draws."""
    codec = ranges.get("codec", {})
    if isinstance(codec.get("crf"), Mapping):
        missing = [c for c in codec.get("codec", []) if c not in codec["crf"]]
        if missing:
            raise RecipeError(f"codec.crf: no CRF range for {', '.join(missing)}")
    mastering = ranges.get("mastering", {})
    if mastering.get("weights", {}).get("aces2", 0.0) > 0:
        from datakit.synth.aces import ACES_HDR_PEAKS

        odd = [p for p in mastering.get("peak_nits", []) if round(p) not in ACES_HDR_PEAKS]
        if odd:
            raise RecipeError(
                f"mastering.peak_nits: the aces2 grade has views for {ACES_HDR_PEAKS} cd/m^2 only, not {odd}"
            )


def resolve_ranges(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """:data:`DEFAULT_RANGES` deep-merged with ``overrides`` and validated (RecipeError if invalid)."""
    if overrides is not None and not isinstance(overrides, Mapping):
        raise RecipeError(f"synthesis ranges must be a mapping, got {type(overrides).__name__}")
    return validate_ranges(deep_merge(DEFAULT_RANGES, overrides))
