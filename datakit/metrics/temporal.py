"""Temporal consistency of converted clips: how well the output follows the ground truth's brightness changes.

For a clip of ``T >= 2`` frames (``rgb_pq`` ``(T, H, W, 3)``, SMPTE ST 2084 BT.2020 R'G'B', uint16 / 65535 or
float in [0, 1] with the uint16 round trip), each frame is reduced to its mean PQ luma
``Y' = 0.2627 R' + 0.6780 G' + 0.0593 B'`` (the ITU-R BT.2020 / BT.2100 non-constant-luminance weights applied to
the PQ signal). The frame-to-frame changes ``b[t+1] - b[t]`` of that brightness are computed for the output and for
the ground truth, and the score is the mean absolute difference of the two change sequences, in PQ code units
(0 = the output flickers exactly as much as the ground truth moves; lower is better). It is close in spirit to the
MABD measure reported by KPN-MFI, taken on the global mean instead of per pixel, so that it is insensitive to
object motion and sensitive to flicker of the overall brightness, the typical failure of frame-by-frame conversion.
"""

from __future__ import annotations

import numpy as np

from datakit.color.ycbcr import ycbcr_coefficients
from datakit.errors import InputError
from datakit.metrics.psnr import as_pq_image

__all__ = ["brightness_track", "frame_brightness", "temporal_consistency", "temporal_consistency_from_tracks"]


def _weights() -> np.ndarray:
    kr, kb = ycbcr_coefficients("bt2020nc")
    return np.array([kr, 1.0 - kr - kb, kb])


def frame_brightness(frame_pq: np.ndarray) -> float:
    """Mean PQ luma of one ``rgb_pq`` frame ``(H, W, 3)`` (after the uint16 round trip)."""
    return float(np.mean(as_pq_image(frame_pq) @ _weights()))


def brightness_track(clip_pq: np.ndarray) -> np.ndarray:
    """Per-frame mean PQ luma ``(T,)`` (float64) of an ``rgb_pq`` clip ``(T, H, W, 3)``."""
    clip = np.asarray(clip_pq)
    if clip.ndim != 4 or clip.shape[-1] != 3:
        raise InputError(f"temporal_consistency: expected a (T, H, W, 3) clip, got {clip.shape}")
    return np.array([frame_brightness(frame) for frame in clip])


def temporal_consistency_from_tracks(pred_track: np.ndarray, target_track: np.ndarray) -> float:
    """:func:`temporal_consistency` from per-frame brightness tracks ``(T,)`` (:func:`frame_brightness`)."""
    a, b = np.asarray(pred_track, dtype=np.float64), np.asarray(target_track, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise InputError(f"temporal_consistency: brightness tracks differ: {a.shape} vs {b.shape}")
    if len(a) < 2:
        raise InputError("temporal_consistency: needs clips of at least 2 frames")
    return float(np.mean(np.abs(np.diff(a) - np.diff(b))))


def temporal_consistency(pred_clip: np.ndarray, target_clip: np.ndarray) -> float:
    """Mean |change of output brightness - change of ground-truth brightness| between consecutive frames."""
    if np.shape(pred_clip) != np.shape(target_clip):
        raise InputError(f"temporal_consistency: clip shapes differ: {np.shape(pred_clip)} vs {np.shape(target_clip)}")
    if np.shape(pred_clip)[0] < 2:
        raise InputError("temporal_consistency: needs clips of at least 2 frames")
    return temporal_consistency_from_tracks(brightness_track(pred_clip), brightness_track(target_clip))
