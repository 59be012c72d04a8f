"""The mastering grade of HDR targets: a drawn mastering display and the roll-off of highlights to its peak.

Real HDR10 masters are graded on 1,000-4,000 cd/m^2 mastering displays (SMPTE ST 2086 describes the display) with
highlights rolled off toward its peak; scene light clipped only by PQ at 10,000 cd/m^2 is not what an HDR10
delivery contains. :func:`sample_mastering` draws a :class:`MasteringGrade` from the recipe's ``ranges.mastering``
and :func:`apply_mastering` is a pure function of the scene clip and the grade:

* ``bt2390_eetf``: the ITU-R BT.2390-4 section 5.4 EETF (:func:`datakit.synth.tonemap.bt2390_eetf_pq`, Hermite knee
  in PQ) from the clip's own peak (its largest ``max(R, G, B)``, as a display reads MaxCLL; light is first limited
  to PQ's 10,000 cd/m^2) to the mastering peak,
  on ``max(R, G, B)`` with the pixel scaled by the ratio (hue kept); then the colours are limited to the mastering
  primaries (P3-D65: negative P3 components clipped, back in the BT.2020 container);
* ``aces2``: OpenColorIO's ACES 2.0 HDR output transform for that peak and primaries (:mod:`datakit.synth.aces`);
* ``scene``: no grade (scene-light targets, only PQ's 10,000 cd/m^2 limit): an explicit recipe choice.

Encodings: input scene ``rgb_nits`` (BT.2020), output master ``rgb_nits`` (BT.2020 container, every component <= the
peak; the ``scene`` grade returns the scene light as it is); :func:`master_codes` stores it as uint16 PQ code
values that never decode above the peak, and :func:`content_light_level` measures its CTA-861.3 MaxCLL / MaxFALL.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from datakit.color.gamut import convert_gamut
from datakit.color.transfer import PQ_PEAK_NITS, st2084_eotf, st2084_inverse_eotf
from datakit.io.metadata import ContentLightLevel, MasteringDisplay

__all__ = [
    "GRADES",
    "MASTERING_PRIMARIES",
    "MasteringGrade",
    "apply_mastering",
    "content_light_level",
    "master_codes",
    "sample_mastering",
]

GRADES = ("bt2390_eetf", "aces2", "scene")
MASTERING_PRIMARIES = ("p3_d65", "bt2020")


@dataclass(frozen=True)
class MasteringGrade:
    """One drawn mastering grade: method, mastering display peak / black (cd/m^2) and primaries."""

    grade: str
    peak_nits: float = PQ_PEAK_NITS
    min_nits: float = 0.0001
    primaries: str = "bt2020"

    def display(self) -> MasteringDisplay:
        """The SMPTE ST 2086 mastering display colour volume of this grade."""
        make = MasteringDisplay.p3_d65 if self.primaries == "p3_d65" else MasteringDisplay.bt2020
        return make(max_luminance=float(self.peak_nits), min_luminance=float(self.min_nits))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sample_mastering(rng: np.random.Generator, ranges: Mapping[str, Any]) -> MasteringGrade:
    """Draw a :class:`MasteringGrade` from validated ``ranges["mastering"]`` (a fixed order of draws).

    ``weights`` choose the grade; ``peak_nits`` (a list of peaks), ``min_nits`` (a list of black levels) and
    ``primaries`` are drawn uniformly. The ``scene`` grade records a 10,000 cd/m^2 BT.2020 display (PQ's range);
    when it is the only grade with weight nothing is drawn, so such a recipe's samples are those it made before
    the grade existed.
    """
    from datakit.synth.params import normalized_weights

    cfg = ranges["mastering"]
    probs = normalized_weights(cfg["weights"], GRADES, "mastering.weights")
    if probs.get("scene", 0.0) == 1.0:  # nothing to draw: scene-only recipes keep their samples of before the grade
        return MasteringGrade("scene", PQ_PEAK_NITS, float(cfg["min_nits"][0]), "bt2020")
    names = list(probs)
    grade = names[int(rng.choice(len(names), p=np.array([probs[n] for n in names])))]
    peaks, blacks, prims = cfg["peak_nits"], cfg["min_nits"], cfg["primaries"]
    peak = float(peaks[int(rng.integers(len(peaks)))])
    black = float(blacks[int(rng.integers(len(blacks)))])
    primaries = str(prims[int(rng.integers(len(prims)))])
    if grade == "scene":
        return MasteringGrade("scene", PQ_PEAK_NITS, black, "bt2020")
    return MasteringGrade(grade, peak, black, primaries)


def _limit_primaries(rgb_nits: np.ndarray, primaries: str) -> np.ndarray:
    """BT.2020 light limited to the mastering primaries (components outside clipped to 0), in BT.2020."""
    if primaries == "bt2020":
        return np.maximum(rgb_nits, 0.0)
    inside = np.maximum(np.asarray(convert_gamut(rgb_nits, "bt2020", primaries), np.float32), 0.0)
    return np.maximum(np.asarray(convert_gamut(inside, primaries, "bt2020"), np.float32), 0.0)


def apply_mastering(rgb_nits_scene: np.ndarray, grade: MasteringGrade) -> tuple[np.ndarray, dict[str, Any]]:
    """Grade a scene clip ``rgb_nits`` (BT.2020, ``(..., 3)``) into a master; returns ``(rgb_nits, info)``.

    ``info`` records what the grade did: ``source_peak_nits`` (the scene's largest component), for the EETF its
    knee input range, for ACES the OCIO view. Every output component is <= ``grade.peak_nits`` (except for the
    ``scene`` grade, which returns the scene light unchanged: :func:`master_codes` limits it to PQ's range).
    """
    from datakit.synth.tonemap import bt2390_eetf_pq

    x = np.maximum(np.asarray(rgb_nits_scene, np.float32), 0.0)
    m = x.max(axis=-1)
    source_peak = float(m.max()) if m.size else 0.0
    info: dict[str, Any] = {"source_peak_nits": round(source_peak, 3)}
    peak = float(grade.peak_nits)
    if grade.grade == "scene":  # unchanged: the SDR side sees the scene light, the PQ target clips it
        return x, info
    if grade.grade == "aces2":
        from datakit.synth.aces import ACES_CONFIG, aces2_hdr_master, hdr_view

        info.update(config=ACES_CONFIG, view=hdr_view(peak, grade.primaries))
        return aces2_hdr_master(x, peak, grade.primaries), info
    if grade.grade != "bt2390_eetf":
        raise ValueError(f"unknown mastering grade {grade.grade!r} (known: {', '.join(GRADES)})")
    x = _limit_primaries(np.minimum(x, np.float32(PQ_PEAK_NITS)), grade.primaries)
    m = x.max(axis=-1)
    source_max = max(float(m.max()) if m.size else 0.0, peak)
    info["eetf_source_max_nits"] = round(source_max, 3)
    if source_max > peak:
        pq = np.asarray(st2084_inverse_eotf(m), np.float32)
        mapped = np.asarray(
            st2084_eotf(bt2390_eetf_pq(pq, source_min=0.0, source_max=source_max, target_max=peak)), np.float32
        )
        ratio = np.where(m > 1e-6, mapped / np.maximum(m, 1e-6), 0.0).astype(np.float32)
        x = x * ratio[..., None]
    return np.minimum(x, np.float32(peak)), info


def master_codes(rgb_nits_master: np.ndarray, peak_nits: float = PQ_PEAK_NITS) -> np.ndarray:
    """Master ``rgb_nits`` -> uint16 SMPTE ST 2084 code values ``round(pq * 65535)``, none decoding above the peak.

    The code of the peak is rounded down (``floor(PQ(peak) * 65535)``) so that quantization never lifts a pixel
    over the mastering display's peak.
    """
    x = np.clip(np.asarray(rgb_nits_master, np.float32), 0.0, np.float32(min(peak_nits, PQ_PEAK_NITS)))
    top = math.floor(float(st2084_inverse_eotf(np.float64(min(peak_nits, PQ_PEAK_NITS)))) * 65535.0)
    codes = np.rint(np.asarray(st2084_inverse_eotf(x), np.float32) * np.float32(65535.0))
    return np.minimum(codes, top).astype(np.uint16)


def content_light_level(hdr_codes: np.ndarray) -> ContentLightLevel:
    """CTA-861.3 MaxCLL / MaxFALL (cd/m^2, rounded) of a clip of uint16 PQ codes ``(T, H, W, 3)``.

    MaxCLL: the largest ``max(R, G, B)`` of any pixel; MaxFALL: the largest frame average of ``max(R, G, B)``,
    both decoded by the SMPTE ST 2084 EOTF (the stored codes: what a player of the delivered file would measure).
    """
    codes = np.asarray(hdr_codes)
    if codes.ndim == 3:
        codes = codes[None]
    nits = np.asarray(st2084_eotf(codes.max(axis=-1).astype(np.float64) / 65535.0), np.float64)
    max_cll = float(nits.max()) if nits.size else 0.0
    max_fall = float(nits.reshape(nits.shape[0], -1).mean(axis=1).max()) if nits.size else 0.0
    return ContentLightLevel(math.floor(max_cll + 0.5), math.floor(max_fall + 0.5))
