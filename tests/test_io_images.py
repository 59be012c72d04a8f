"""EXR / Radiance readers on real files, PQ 16-bit and 8-bit PNG round trips (checked with imageio)."""

from __future__ import annotations

import glob
import struct
import zlib
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from datakit.errors import InputError, UnsupportedFormatError
from datakit.io.images import (
    read_hdr_image,
    read_png8,
    read_png16_pq,
    write_png8,
    write_png16_pq,
)

HDRI = sorted(glob.glob("/work/shared/data/hdri/*.exr"))


@pytest.mark.skipif(not HDRI, reason="shared HDRI files not available")
def test_real_exr_files() -> None:
    import OpenEXR

    for path in HDRI:
        image = read_hdr_image(path)
        rgb = image.rgb_linear
        assert rgb.dtype == np.float32 and rgb.ndim == 3 and rgb.shape[2] == 3
        assert image.source == path and image.primaries == "bt709"
        assert np.isfinite(rgb).all()
        # Same pixels as the OpenEXR bindings give directly (no conversion for BT.709 files).
        with OpenEXR.File(path) as exr:
            raw = np.asarray(exr.channels()["RGB"].pixels, dtype=np.float32)
            has_chroma = "chromaticities" in exr.header()
        np.testing.assert_array_equal(rgb, raw)
        assert rgb.max() / max(float(np.median(rgb)), 1e-6) > 100  # real HDR range
        if has_chroma:  # city.exr: BT.709 described relative to D50 (Photoshop style)
            assert any("adapted" in note for note in image.assumptions)
        else:
            assert any("BT.709" in note for note in image.assumptions)


def test_exr_with_other_chromaticities(tmp_path: Path) -> None:
    import OpenEXR

    rgb = np.random.default_rng(0).random((6, 8, 3)).astype(np.float32) * 10
    for name, chroma in [
        ("p3", (0.680, 0.320, 0.265, 0.690, 0.150, 0.060, 0.3127, 0.3290)),
        ("adobe", (0.64, 0.33, 0.21, 0.71, 0.15, 0.06, 0.3127, 0.3290)),  # Adobe RGB (1998)
        ("aces", (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767)),  # AP0: imaginary primaries
    ]:
        path = tmp_path / f"{name}.exr"
        header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage, "chromaticities": chroma}
        with OpenEXR.File(header, {"RGB": rgb}) as exr:
            exr.write(str(path))
        if name == "aces":
            with pytest.raises(UnsupportedFormatError, match="chromaticities"):
                read_hdr_image(path)
            continue
        image = read_hdr_image(path)
        if name == "p3":
            assert image.primaries == "p3d65"
            np.testing.assert_array_equal(image.rgb_linear, rgb)
        else:  # Adobe RGB is not a named set: converted to BT.2020, white stays white
            assert image.primaries == "bt2020" and "converted" in image.assumptions[0]
            grey = read_hdr_image(_write_grey(tmp_path, chroma))
            np.testing.assert_allclose(grey.rgb_linear, 2.0, rtol=1e-4)


def _write_grey(tmp_path: Path, chroma: tuple[float, ...]) -> Path:
    import OpenEXR

    path = tmp_path / "grey.exr"
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage, "chromaticities": chroma}
    with OpenEXR.File(header, {"RGB": np.full((2, 2, 3), 2.0, np.float32)}) as exr:
        exr.write(str(path))
    return path


def test_radiance_hdr(tmp_path: Path) -> None:
    rgb = np.zeros((4, 5, 3), np.float32)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 8.0, 0.5, 0.125  # exactly representable in RGBE
    path = tmp_path / "test.hdr"
    iio.imwrite(path, rgb, extension=".hdr")
    image = read_hdr_image(path)
    assert image.primaries == "bt709"
    np.testing.assert_allclose(image.rgb_linear, rgb, rtol=1e-2)
    assert image.rgb_linear[0, 0, 0] > image.rgb_linear[0, 0, 2]  # channel order is R, G, B


def _decode_png(path: Path) -> tuple[np.ndarray, int, int]:
    """Minimal independent PNG decoder (non-interlaced): returns (pixels, bit depth, colour type)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, ihdr = 8, b"", b""
    while pos < len(data):
        n = struct.unpack(">I", data[pos : pos + 4])[0]
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            ihdr = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    assert interlace == 0
    channels = {0: 1, 2: 3, 6: 4}[ctype]
    bpp = channels * depth // 8
    stride = width * bpp
    raw = zlib.decompress(idat)
    rows, prev = [], bytearray(stride)
    for r in range(height):
        ftype, line = raw[r * (stride + 1)], bytearray(raw[r * (stride + 1) + 1 : (r + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    dtype = ">u2" if depth == 16 else np.uint8
    pixels = np.frombuffer(b"".join(rows), dtype=dtype).reshape(height, width, channels)
    return pixels.astype(np.uint16 if depth == 16 else np.uint8), depth, ctype


def test_png16_pq_round_trip_and_channel_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rgb_pq = rng.random((7, 9, 3)).astype(np.float32)
    rgb_pq[0, 0] = (1.0, 0.0, 0.5)
    path = tmp_path / "f.png"
    write_png16_pq(path, rgb_pq)
    on_disk, depth, ctype = _decode_png(path)  # independent reader: RGB order, 16 bit
    assert (depth, ctype) == (16, 2)
    np.testing.assert_array_equal(on_disk, np.floor(rgb_pq.astype(np.float64) * 65535 + 0.5).astype(np.uint16))
    assert tuple(on_disk[0, 0]) == (65535, 0, 32768)
    back = read_png16_pq(path)
    assert back.dtype == np.float32
    assert np.abs(back - rgb_pq).max() <= 0.5 / 65535 + 1e-7
    write_png16_pq(tmp_path / "g.png", on_disk)  # uint16 input is stored as is
    np.testing.assert_array_equal(_decode_png(tmp_path / "g.png")[0], on_disk)


def test_png8_round_trip(tmp_path: Path) -> None:
    rgb = np.random.default_rng(2).integers(0, 256, (5, 6, 3)).astype(np.uint8)
    rgb[0, 0] = (255, 0, 10)
    path = tmp_path / "s.png"
    write_png8(path, rgb)
    np.testing.assert_array_equal(iio.imread(path), rgb)
    assert _decode_png(path)[1:] == (8, 2)
    np.testing.assert_array_equal(read_png8(path), rgb)
    with pytest.raises(UnsupportedFormatError, match="16-bit"):
        read_png8(_png16(tmp_path))
    with pytest.raises(UnsupportedFormatError, match="8-bit"):
        read_png16_pq(path)
    with pytest.raises(ValueError, match="uint8"):
        write_png8(tmp_path / "x.png", rgb.astype(np.uint16))


def _png16(tmp_path: Path) -> Path:
    path = tmp_path / "sixteen.png"
    write_png16_pq(path, np.zeros((2, 2, 3), np.float32))
    return path


def test_unreadable_images(tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    for reader in (read_png16_pq, read_png8, read_hdr_image):
        with pytest.raises(InputError):
            reader(text)
        with pytest.raises(InputError, match="no such file"):
            reader(tmp_path / "missing.png")
    truncated = tmp_path / "cut.exr"
    truncated.write_bytes(Path(HDRI[0]).read_bytes()[:2000] if HDRI else b"\x76\x2f\x31\x01" + b"\0" * 100)
    with pytest.raises(InputError, match="OpenEXR"):
        read_hdr_image(truncated)
