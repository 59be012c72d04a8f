"""Pictures for people: viewing transforms, contact sheets and simple charts drawn with OpenCV (no matplotlib)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from datakit.color.gamut import convert_gamut
from datakit.color.transfer import srgb_inverse_eotf, st2084_eotf
from datakit.fsutil import atomic_path, write_failure


def hdr_view(rgb_pq: np.ndarray, white_nits: float = 203.0) -> np.ndarray:
    """A viewing rendition of HDR for an SDR screen: PQ BT.2020 R'G'B' (float [0,1] or uint16) -> uint8 sRGB.

    SMPTE ST 2084 EOTF, then the synthesis family's Reinhard curve on BT.2020 luminance with ``white_nits`` (BT.2408
    reference white) as the scale and 10000 cd/m^2 as the white point (reference white lands at half of display
    white), BT.2020 -> BT.709 primaries with clipping, sRGB encoding. For looking at data only.
    """
    from datakit.synth.tonemap import reinhard

    array = np.asarray(rgb_pq)
    rgb = array.astype(np.float32) / 65535.0 if array.dtype == np.uint16 else array.astype(np.float32)
    display = reinhard(st2084_eotf(rgb), key=1.0, log_average_nits=white_nits, white=10000.0 / white_nits)
    rgb709 = np.clip(convert_gamut(display, "bt2020", "bt709"), 0.0, 1.0)
    return np.round(srgb_inverse_eotf(rgb709) * 255).astype(np.uint8)


def fit_width(rgb: np.ndarray, width: int) -> np.ndarray:
    """Resize an (H, W, 3) uint8 picture to ``width`` keeping its aspect ratio (area filter)."""
    h, w = rgb.shape[:2]
    height = max(1, round(h * width / w))
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)


def write_png(path: str | os.PathLike[str], rgb: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 RGB picture as PNG, atomically (encoded in memory, so that a refused write
    names its cause: :class:`datakit.errors.OutputWriteError`)."""
    path = Path(path)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"{path}: OpenCV could not encode a {rgb.shape} picture as PNG")
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(encoded.tobytes())
    except OSError as error:
        raise write_failure(error, path) from None
    return path


def label(rgb: np.ndarray, lines: list[str], height: int = 14) -> np.ndarray:
    """Append text lines under a picture (white on dark grey)."""
    band = np.full((height * len(lines) + 4, rgb.shape[1], 3), 32, np.uint8)
    for i, text in enumerate(lines):
        cv2.putText(band, text, (3, height * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (235, 235, 235), 1, cv2.LINE_AA)
    return np.concatenate([rgb, band], axis=0)


def hstack(pictures: list[np.ndarray], gap: int = 4) -> np.ndarray:
    height = max(p.shape[0] for p in pictures)
    padded = []
    for p in pictures:
        pad = np.full((height, p.shape[1] + gap, 3), 16, np.uint8)
        pad[: p.shape[0], : p.shape[1]] = p
        padded.append(pad)
    return np.concatenate(padded, axis=1)


def vstack(pictures: list[np.ndarray], gap: int = 4) -> np.ndarray:
    width = max(p.shape[1] for p in pictures)
    padded = []
    for p in pictures:
        pad = np.full((p.shape[0] + gap, width, 3), 16, np.uint8)
        pad[: p.shape[0], : p.shape[1]] = p
        padded.append(pad)
    return np.concatenate(padded, axis=0)


def histogram_png(
    path: str | os.PathLike[str],
    counts: np.ndarray,
    edges: np.ndarray,
    *,
    title: str,
    x_label: str,
    marks: dict[str, float] | None = None,
    log_x: bool = True,
    size: tuple[int, int] = (640, 300),
) -> Path:
    """Draw a histogram (bars over ``edges``, optional vertical marks such as 203 nits) as a PNG."""
    width, height = size
    left, right, top, bottom = 50, 12, 26, 36
    canvas = np.full((height, width, 3), 250, np.uint8)
    xs = np.log10(np.maximum(edges, 1e-6)) if log_x else np.asarray(edges, float)
    x0, x1 = xs[0], xs[-1]

    def px(v: float) -> int:
        return int(left + (v - x0) / (x1 - x0) * (width - left - right))

    peak = max(float(counts.max()), 1.0)
    for c, a, b in zip(counts, xs[:-1], xs[1:], strict=True):
        y = int(height - bottom - (c / peak) * (height - top - bottom))
        cv2.rectangle(canvas, (px(a), y), (max(px(b) - 1, px(a)), height - bottom), (70, 110, 200), -1)
    cv2.line(canvas, (left, height - bottom), (width - right, height - bottom), (0, 0, 0), 1)
    ticks = range(int(np.ceil(x0)), int(np.floor(x1)) + 1) if log_x else np.linspace(x0, x1, 5)
    for t in ticks:
        text = f"{10**t:g}" if log_x else f"{t:g}"
        cv2.putText(canvas, text, (px(t) - 10, height - bottom + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
    for name, value in (marks or {}).items():
        v = np.log10(value) if log_x else value
        cv2.line(canvas, (px(v), top), (px(v), height - bottom), (200, 60, 60), 1)
        cv2.putText(canvas, name, (px(v) + 3, top + 10), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (200, 60, 60), 1)
    cv2.putText(canvas, title, (left, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(canvas, x_label, (width // 2 - 40, height - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1)
    return write_png(path, canvas)
