"""Still images: HDR sources (OpenEXR, Radiance .hdr) and the HDRTV1K-style PNG storage.

- :func:`read_hdr_image` -> :class:`HDRImage` with ``rgb_linear`` (relative linear light) and its
  primaries, named as in :mod:`datakit.color.gamut`.
- 16-bit PNG of PQ BT.2020 R'G'B' (``rgb_pq``): stored value ``round(x * 65535)``.
- 8-bit PNG of BT.709 R'G'B' (``rgb_sdr``): stored value ``round(x * 255)``.

PNG channels are in R, G, B order on disk; OpenCV's BGR order is handled here. Unreadable files
raise :class:`datakit.errors.InputError`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datakit.errors import DatakitError, InputError, UnsupportedFormatError
from datakit.fsutil import atomic_path


@dataclass(frozen=True)
class HDRImage:
    """A linear-light HDR picture: ``rgb_linear`` float32 (H, W, 3), relative scale (as stored)."""

    rgb_linear: np.ndarray
    primaries: str  # a datakit.color.gamut name: bt709, bt2020, p3d65, p3dci
    source: str  # the file it was read from
    assumptions: tuple[str, ...] = field(default=())


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not an image")


def _name_primaries(
    path: Path, rgb_linear: np.ndarray, chroma: tuple[float, ...] | None, default_note: str
) -> tuple[np.ndarray, str, list[str]]:
    """Map file chromaticities (rx, ry, gx, gy, bx, by, wx, wy) to a known primaries name.

    A set that equals a known one after Bradford adaptation of its white point (e.g. BT.709
    described relative to D50, as Photoshop writes it) takes that name; anything else is
    converted to BT.2020 (linear, no clipping).
    """
    from datakit.color.gamut import PRIMARIES, Primaries, rgb_to_rgb_matrix

    if chroma is None:
        return rgb_linear, "bt709", [default_note]
    c = [float(v) for v in chroma]
    try:
        src = Primaries((c[0], c[1]), (c[2], c[3]), (c[4], c[5]), (c[6], c[7]), "file")
    except DatakitError as error:  # e.g. ACES AP0/AP1 primaries lie outside the spectral locus
        raise UnsupportedFormatError(f"{path}: unsupported chromaticities ({error})") from None
    for name in ("bt709", "bt2020", "p3d65"):
        if np.abs(rgb_to_rgb_matrix(src, name) - np.eye(3)).max() < 2e-3:
            notes = []
            if max(abs(c[6] - PRIMARIES[name].white[0]), abs(c[7] - PRIMARIES[name].white[1])) > 1e-3:
                notes.append(f"chromaticities are {name} adapted to white ({c[6]:.4f}, {c[7]:.4f}); read as {name}")
            return rgb_linear, name, notes
    m = rgb_to_rgb_matrix(src, "bt2020").astype(np.float32)
    out = np.ascontiguousarray(rgb_linear @ m.T, dtype=np.float32)
    return out, "bt2020", [f"custom chromaticities {tuple(round(v, 4) for v in c)}: converted to bt2020"]


def _finite(rgb: np.ndarray, notes: list[str]) -> np.ndarray:
    bad = ~np.isfinite(rgb)
    if bad.any():
        notes.append(f"{int(bad.sum())} non-finite values set to 0")
        rgb = np.where(bad, np.float32(0.0), rgb)
    return rgb


def _read_exr(path: Path) -> HDRImage:
    import OpenEXR

    try:
        with OpenEXR.File(str(path)) as exr:
            chroma = exr.header().get("chromaticities")  # read inside: closing clears the header
            channels = {name: np.asarray(ch.pixels) for name, ch in exr.channels().items()}
    except Exception as error:  # the bindings raise plain Exception subclasses
        raise InputError(f"{path}: not a readable OpenEXR file ({str(error).splitlines()[0]})") from None
    if "RGB" in channels or "RGBA" in channels:
        rgb = channels.get("RGB", channels.get("RGBA"))[..., :3]
    elif all(k in channels for k in "RGB"):
        rgb = np.stack([channels["R"], channels["G"], channels["B"]], axis=-1)
    elif "Y" in channels:
        rgb = np.repeat(channels["Y"][..., None], 3, axis=-1)
    else:
        raise UnsupportedFormatError(f"{path}: no R, G, B (or Y) channels (found {', '.join(sorted(channels))})")
    rgb = np.ascontiguousarray(rgb, dtype=np.float32)
    notes: list[str] = []
    rgb = _finite(rgb, notes)
    rgb, primaries, more = _name_primaries(
        path,
        rgb,
        tuple(chroma) if chroma is not None else None,
        "no chromaticities attribute: BT.709 (OpenEXR default)",
    )
    return HDRImage(rgb, primaries, str(path), tuple(notes + more))


def _radiance_header(path: Path) -> dict[str, str]:
    fields: dict[str, str] = {}
    with open(path, "rb") as f:
        for _ in range(64):
            line = f.readline(4096)
            if not line or line.strip() == b"":
                break
            text = line.decode("ascii", "replace").strip()
            if "=" in text:
                key, _, value = text.partition("=")
                fields[key.strip().upper()] = value.strip()
    return fields


def _read_radiance(path: Path) -> HDRImage:
    import cv2

    header = _radiance_header(path)
    if "xyze" in header.get("FORMAT", "").lower():
        raise UnsupportedFormatError(f"{path}: Radiance XYZE pixels are not supported (only RGBE)")
    bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if bgr is None or bgr.ndim != 3 or bgr.dtype != np.float32:
        raise InputError(f"{path}: not a readable Radiance .hdr file")
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    notes: list[str] = []
    rgb = _finite(rgb, notes)
    chroma = None
    if "PRIMARIES" in header:
        values = re.findall(r"[-+0-9.eE]+", header["PRIMARIES"])
        if len(values) == 8:
            chroma = tuple(float(v) for v in values)
    rgb, primaries, more = _name_primaries(path, rgb, chroma, "no PRIMARIES line: BT.709 assumed")
    return HDRImage(rgb, primaries, str(path), tuple(notes + more))


def read_hdr_image(path: str | os.PathLike[str]) -> HDRImage:
    """Read an OpenEXR (``.exr``) or Radiance (``.hdr``, ``.pic``) image as linear RGB float32 (H, W, 3).

    Primaries come from the EXR ``chromaticities`` attribute / Radiance ``PRIMARIES`` line, BT.709
    when absent (recorded in :attr:`HDRImage.assumptions`).
    """
    p = Path(path)
    _check_file(p)
    with open(p, "rb") as f:
        magic = f.read(10)
    if magic[:4] == b"\x76\x2f\x31\x01":
        return _read_exr(p)
    if magic.startswith(b"#?"):
        return _read_radiance(p)
    raise InputError(f"{p}: not an OpenEXR or Radiance HDR image")


def _imread(path: str | os.PathLike[str]) -> np.ndarray:
    import cv2

    p = Path(path)
    _check_file(p)
    data = np.fromfile(p, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise InputError(f"{p}: not a readable image")
    if img.ndim == 2:
        raise UnsupportedFormatError(f"{p}: single-channel image, expected RGB")
    return np.ascontiguousarray(img[..., 2::-1])  # BGR(A) -> RGB, alpha dropped


def read_png16_pq(path: str | os.PathLike[str]) -> np.ndarray:
    """16-bit RGB PNG -> ``rgb_pq`` float32 (H, W, 3) = stored value / 65535."""
    rgb = _imread(path)
    if rgb.dtype != np.uint16:
        raise UnsupportedFormatError(f"{path}: {rgb.dtype.itemsize * 8}-bit image, expected 16-bit PQ PNG")
    return rgb.astype(np.float32) * np.float32(1.0 / 65535.0)


def read_png8(path: str | os.PathLike[str]) -> np.ndarray:
    """8-bit RGB PNG -> ``rgb_sdr`` uint8 (H, W, 3) codes."""
    rgb = _imread(path)
    if rgb.dtype != np.uint8:
        raise UnsupportedFormatError(f"{path}: {rgb.dtype.itemsize * 8}-bit image, expected 8-bit PNG")
    return rgb


def _imwrite_png(path: str | os.PathLike[str], rgb: np.ndarray, compression: int) -> None:
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, compression])
    if not ok:
        raise InputError(f"{path}: PNG encoding failed")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())


def _check_rgb(rgb: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"{name} must be shaped (H, W, 3), got {arr.shape}")
    return arr


def write_png16_pq(path: str | os.PathLike[str], rgb_pq: np.ndarray, compression: int = 3) -> None:
    """Write ``rgb_pq`` (float in [0, 1], clipped, or uint16 codes) as a 16-bit RGB PNG: ``round(x * 65535)``."""
    arr = _check_rgb(rgb_pq, "rgb_pq")
    if arr.dtype != np.uint16:
        arr = np.rint(np.clip(arr.astype(np.float64), 0.0, 1.0) * 65535.0).astype(np.uint16)
    _imwrite_png(path, arr, compression)


def write_png8(path: str | os.PathLike[str], rgb_uint8: np.ndarray, compression: int = 3) -> None:
    """Write ``rgb_sdr`` uint8 codes (H, W, 3) as an 8-bit RGB PNG."""
    arr = _check_rgb(rgb_uint8, "rgb_uint8")
    if arr.dtype != np.uint8:
        raise ValueError(f"rgb_uint8 must be uint8, got {arr.dtype}")
    _imwrite_png(path, arr, compression)
