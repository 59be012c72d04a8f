"""ACES 2.0 output transforms through OpenColorIO's built-in studio config (a studio's own HDR10 and SDR renderings).

The ``opencolorio`` wheel ships the ACES studio config (``ocio://studio-config-latest``: studio-config v5, ACES 2.1,
OCIO 2.6). Its ``Rec.2100-PQ - Display`` offers the views ``ACES 2.0 - HDR {500, 1000, 2000, 4000} nits (Rec.2020 |
P3 D65)`` and its ``Rec.1886 Rec.709 - Display`` the view ``ACES 2.0 - SDR 100 nits (Rec.709)``: the same
scene-linear image rendered as an HDR10 master and as SDR, the way productions make their pairs. Nothing here
re-implements ACES: every value comes from OCIO's CPU processor.

Encodings at this boundary:

* scene side: ``rgb_nits`` of the synthesis (absolute scale, BT.2020) divided by :data:`ACES_SCENE_UNIT_NITS`, i.e.
  OCIO's ``Linear Rec.2020`` scene-referred colour space with 1.0 = 100 cd/m^2 of the absolute scale (a log-average
  of 18 cd/m^2 is ACES mid grey 0.18);
* HDR side: ``rgb_nits`` display light, BT.2020 container (the display's PQ signal decoded by SMPTE ST 2084);
* SDR side: linear SDR display light, BT.709, 1.0 = 100 cd/m^2 (the display's R'G'B' decoded by the ITU-R BT.1886
  EOTF with black 0, the pure 2.4 power law the display colour space encodes with).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from datakit.color.transfer import bt1886_eotf, st2084_eotf, st2084_inverse_eotf

__all__ = [
    "ACES_CONFIG",
    "ACES_HDR_PEAKS",
    "ACES_PRIMARIES",
    "ACES_SCENE_UNIT_NITS",
    "HDR_DISPLAY",
    "SCENE_SPACE",
    "SDR_DISPLAY",
    "SDR_VIEW",
    "aces2_hdr_master",
    "aces2_hdr_to_scene",
    "aces2_sdr_display",
    "hdr_view",
]

ACES_CONFIG = "ocio://studio-config-latest"
SCENE_SPACE = "Linear Rec.2020"
HDR_DISPLAY = "Rec.2100-PQ - Display"
SDR_DISPLAY = "Rec.1886 Rec.709 - Display"
SDR_VIEW = "ACES 2.0 - SDR 100 nits (Rec.709)"
ACES_HDR_PEAKS = (500, 1000, 2000, 4000)
"""Peaks (cd/m^2) with an ACES 2.0 HDR view on the Rec.2100-PQ display of the built-in studio config."""
ACES_PRIMARIES = {"bt2020": "Rec.2020", "p3_d65": "P3 D65"}
"""Mastering primaries -> the limiting primaries named in the view."""
ACES_SCENE_UNIT_NITS = 100.0
"""cd/m^2 of the synthesis' absolute scale that make 1.0 of ACES scene-linear light."""


def hdr_view(peak_nits: float, primaries: str = "bt2020") -> str:
    """The name of the ACES 2.0 HDR view for ``peak_nits`` and mastering ``primaries`` (ValueError if none)."""
    peak = round(float(peak_nits))
    if peak not in ACES_HDR_PEAKS or primaries not in ACES_PRIMARIES:
        raise ValueError(
            f"no ACES 2.0 HDR view for {peak_nits} cd/m^2 {primaries} (peaks {ACES_HDR_PEAKS}, "
            f"primaries {sorted(ACES_PRIMARIES)})"
        )
    return f"ACES 2.0 - HDR {peak} nits ({ACES_PRIMARIES[primaries]})"


@functools.cache
def _processor(display: str, view: str, inverse: bool) -> Any:
    import PyOpenColorIO

    config = PyOpenColorIO.Config.CreateFromFile(ACES_CONFIG)
    direction = PyOpenColorIO.TRANSFORM_DIR_INVERSE if inverse else PyOpenColorIO.TRANSFORM_DIR_FORWARD
    transform = PyOpenColorIO.DisplayViewTransform(src=SCENE_SPACE, display=display, view=view, direction=direction)
    return config.getProcessor(transform).getDefaultCPUProcessor()


def _apply(rgb: np.ndarray, display: str, view: str, inverse: bool = False) -> np.ndarray:
    x = np.ascontiguousarray(np.asarray(rgb, dtype=np.float32).reshape(-1, 3)).copy()
    _processor(display, view, inverse).applyRGB(x)
    return x.reshape(np.shape(rgb))


def aces2_hdr_master(rgb_nits: np.ndarray, peak_nits: float = 1000.0, primaries: str = "bt2020") -> np.ndarray:
    """Scene ``rgb_nits`` (BT.2020) -> the ACES 2.0 HDR master ``rgb_nits`` (BT.2020 container, <= ``peak_nits``).

    OCIO's view ``ACES 2.0 - HDR <peak> nits (<primaries>)`` on the ``Rec.2100-PQ - Display`` of the built-in
    studio config; its PQ signal decoded by the SMPTE ST 2084 EOTF. float32, same shape.
    """
    scene = np.maximum(np.asarray(rgb_nits, np.float32), 0.0) / np.float32(ACES_SCENE_UNIT_NITS)
    pq = np.clip(_apply(scene, HDR_DISPLAY, hdr_view(peak_nits, primaries)), 0.0, 1.0)
    return np.minimum(np.asarray(st2084_eotf(pq), np.float32), np.float32(peak_nits))


def aces2_hdr_to_scene(rgb_nits: np.ndarray, peak_nits: float = 1000.0, primaries: str = "bt2020") -> np.ndarray:
    """Inverse of :func:`aces2_hdr_master`: an HDR master ``rgb_nits`` -> scene ``rgb_nits`` (BT.2020).

    OCIO's inverse of the same view (ACES 2.0 output transforms are invertible within their gamut; light above the
    view's peak inverts like the peak). float32, non-negative.
    """
    pq = np.asarray(st2084_inverse_eotf(np.clip(np.asarray(rgb_nits, np.float32), 0.0, peak_nits)), np.float32)
    scene = _apply(pq, HDR_DISPLAY, hdr_view(peak_nits, primaries), inverse=True)
    return np.maximum(scene, 0.0) * np.float32(ACES_SCENE_UNIT_NITS)


def aces2_sdr_display(rgb_nits: np.ndarray) -> np.ndarray:
    """Scene ``rgb_nits`` (BT.2020) -> linear SDR display light (BT.709, 1.0 = 100 cd/m^2) by the ACES 2.0 SDR view.

    OCIO's ``ACES 2.0 - SDR 100 nits (Rec.709)`` on the ``Rec.1886 Rec.709 - Display``; its R'G'B' decoded by the
    ITU-R BT.1886 EOTF (white 1, black 0). float32 in [0, 1].
    """
    scene = np.maximum(np.asarray(rgb_nits, np.float32), 0.0) / np.float32(ACES_SCENE_UNIT_NITS)
    signal = np.clip(_apply(scene, SDR_DISPLAY, SDR_VIEW), 0.0, 1.0)
    return np.asarray(bt1886_eotf(signal, white_nits=1.0), np.float32)
