"""VideoReader: decoded R'G'B' against an independent conversion, navigation, formats, assumptions."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from datakit.errors import InputError
from datakit.io.reader import Frame, VideoReader
from tests.pyav_frames import video_frame

W, H = 128, 96
KR, KB = 0.2627, 0.0593  # ITU-R BT.2020 Table 4 (NCL)


def _encode(
    path: Path,
    codec: str,
    pix_fmt: str,
    frames: list[list[np.ndarray]],
    *,
    rate: Fraction | int = 24,
    tags: tuple[int, int, int, int] | None = (9, 16, 9, 1),
    options: dict[str, str] | None = None,
) -> None:
    """Encode code planes with PyAV directly (independent of datakit's writers)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = frames[0][0].shape[1], frames[0][0].shape[0], pix_fmt
        if tags is not None:
            cc = stream.codec_context
            cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = tags
        stream.options = options or {}
        for i, planes in enumerate(frames):
            frame = video_frame(planes, pix_fmt)
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def _random_planes(rng: np.random.Generator, sub: str, bits: int = 10, h: int = H, w: int = W) -> list[np.ndarray]:
    """Smooth-ish limited-range code planes: a gradient plus noise."""
    dtype = np.uint16 if bits > 8 else np.uint8
    s = 2 ** (bits - 8)
    yy, xx = np.mgrid[0:h, 0:w]
    y = (16 + 200 * (xx + yy) / (h + w) + rng.integers(0, 16, (h, w))) * s
    ch, cw = (h // 2 if sub == "420" else h), (w // 2 if sub in ("420", "422") else w)
    u = rng.integers(40 * s, 216 * s, (ch, cw))
    v = rng.integers(40 * s, 216 * s, (ch, cw))
    return [y.astype(dtype), u.astype(dtype), v.astype(dtype)]


def _interp_axis(c: np.ndarray, axis: int, n: int, phase: float) -> np.ndarray:
    """Linear interpolation of chroma samples located at luma positions 2k + phase onto 0..n-1."""
    pos = 2.0 * np.arange(c.shape[axis]) + phase
    out = np.apply_along_axis(lambda line: np.interp(np.arange(n), pos, line), axis, c.astype(np.float64))
    return out


def _independent_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray, bits: int = 10) -> np.ndarray:
    """BT.2020 NCL limited range -> R'G'B', chroma 'left' sited (H: co-sited, V: between rows)."""
    h, w = y.shape
    if u.shape[1] != w:
        u, v = _interp_axis(u, 1, w, 0.0), _interp_axis(v, 1, w, 0.0)
    if u.shape[0] != h:
        u, v = _interp_axis(u, 0, h, 0.5), _interp_axis(v, 0, h, 0.5)
    s = 2.0 ** (bits - 8)
    yn = (y / s - 16.0) / 219.0
    cb = (u / s - 128.0) / 224.0
    cr = (v / s - 128.0) / 224.0
    r = yn + 2.0 * (1.0 - KR) * cr
    b = yn + 2.0 * (1.0 - KB) * cb
    g = (yn - KR * r - KB * b) / (1.0 - KR - KB)
    return np.clip(np.stack([r, g, b], -1), 0.0, 1.0)


def _decoded_planes(path: Path) -> list[list[np.ndarray]]:
    """Raw PyAV planes, through to_ndarray's (H*3/2, W) layout for yuv420p10le (see FIELD-NOTES)."""
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            a = frame.to_ndarray()
            h, w = frame.height, frame.width
            out.append([a[:h], a[h : h * 5 // 4].reshape(h // 2, w // 2), a[h * 5 // 4 :].reshape(h // 2, w // 2)])
    return out


def test_hdr10_decode_matches_independent_conversion(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = [_random_planes(rng, "420") for _ in range(3)]
    path = tmp_path / "pq.mp4"
    params = (
        "lossless=1:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:range=limited:chromaloc=0:log-level=error"
    )
    _encode(path, "libx265", "yuv420p10le", frames, options={"preset": "ultrafast", "x265-params": params})
    decoded = _decoded_planes(path)
    for got, sent in zip(decoded, frames, strict=True):  # lossless: the planes survive
        for a, b in zip(got, sent, strict=True):
            np.testing.assert_array_equal(a, b)
    with VideoReader(path, encoding="pq") as reader:
        assert reader.assumptions == [] and reader.siting == "left" and reader.matrix == "bt2020nc"
        out = list(reader)
    assert [f.index for f in out] == [0, 1, 2]
    for frame, planes in zip(out, decoded, strict=True):
        ref = _independent_rgb(*planes)
        rgb = frame.rgb()
        assert rgb.dtype == np.float32 and rgb.shape == (H, W, 3)
        assert np.abs(rgb - ref).max() < 1.0 / 1023  # within one 10-bit code (in fact ~1e-6)
        assert np.abs(rgb - ref).max() < 1e-5
        u16 = frame.rgb("uint16")
        assert u16.dtype == np.uint16 and np.abs(u16.astype(int) - np.rint(ref * 65535)).max() <= 1
        u8 = frame.rgb("uint8")
        assert u8.dtype == np.uint8 and np.abs(u8.astype(int) - np.rint(ref * 255)).max() <= 1
        luma = frame.luma()
        np.testing.assert_allclose(luma, np.clip((planes[0] / 4.0 - 16) / 219, 0, 1), atol=1e-6)
        small = frame.luma(width=32)
        assert small.shape == (24, 32)
        np.testing.assert_allclose(small, luma.reshape(24, 4, 32, 4).mean(axis=(1, 3)), atol=1e-5)
        assert frame.rgb(width=64).shape == (48, 64, 3)


@pytest.mark.parametrize(
    ("pix_fmt", "sub", "bits"),
    [("yuv422p10le", "422", 10), ("yuv444p10le", "444", 10), ("yuv420p", "420", 8), ("yuv444p", "444", 8)],
)
def test_other_pixel_formats(tmp_path: Path, pix_fmt: str, sub: str, bits: int) -> None:
    rng = np.random.default_rng(1)
    planes = _random_planes(rng, sub, bits)
    path = tmp_path / "clip.mkv"
    _encode(path, "ffv1", pix_fmt, [planes])
    with VideoReader(path) as reader:
        frame = next(iter(reader))
        got = frame.rgb()
    np.testing.assert_allclose(got, _independent_rgb(*planes, bits=bits), atol=1e-5)


def test_gray(tmp_path: Path) -> None:
    y = np.random.default_rng(2).integers(64, 941, (H, W)).astype(np.uint16)
    path = tmp_path / "gray.mkv"
    _encode(path, "ffv1", "gray10le", [[y]], tags=(9, 16, 9, 1))
    with VideoReader(path) as reader:
        rgb = next(iter(reader)).rgb()
    expected = np.clip((y / 4.0 - 16) / 219, 0, 1)
    for c in range(3):
        np.testing.assert_allclose(rgb[..., c], expected, atol=1e-6)


def _counter_clip(path: Path, n: int, rate: Fraction | int, keyint: int = 6) -> None:
    """Frame i has luma code 64 + 25 i (lossless HEVC), so the content names the frame."""
    frames = []
    for i in range(n):
        y = np.full((H, W), 64 + 25 * i, np.uint16)
        c = np.full((H // 2, W // 2), 512, np.uint16)
        frames.append([y, c, c])
    params = f"lossless=1:keyint={keyint}:min-keyint={keyint}:bframes=2:log-level=error"
    _encode(path, "libx265", "yuv420p10le", frames, rate=rate, options={"preset": "ultrafast", "x265-params": params})


def _content_index(frame: Frame) -> int:
    code = float(frame.luma().mean()) * 876 + 64
    return round((code - 64) / 25)


@pytest.mark.parametrize(("ext", "rate"), [(".mp4", Fraction(24)), (".mkv", Fraction(24000, 1001))])
def test_navigation(tmp_path: Path, ext: str, rate: Fraction) -> None:
    path = tmp_path / f"count{ext}"
    n = 30
    _counter_clip(path, n, rate)
    with VideoReader(path, threads=1) as reader:
        frames = list(reader)
        assert [f.index for f in frames] == list(range(n))
        assert [_content_index(f) for f in frames] == list(range(n))
        for f in frames:
            assert f.time == pytest.approx(f.index / float(rate), abs=1e-3)
            assert f.pts is not None
        order = [17, 3, 29, 3, 0, 12, 11]
        got = reader.read_at(order)
        assert [f.index for f in got] == order
        assert [_content_index(f) for f in got] == order
        times = [1.0, 0.0, 0.5]
        by_time = reader.read_at(times)
        expected = [int(np.ceil(t * float(rate) - 1e-9)) for t in times]
        assert [_content_index(f) for f in by_time] == expected
        reader.seek(0.9)
        f = reader.read()
        assert f is not None and _content_index(f) == int(np.ceil(0.9 * float(rate)))
        assert f.index == _content_index(f)
        window = [f.index for f in reader.frames(0.3, 0.6)]
        assert window == [i for i in range(n) if 0.3 <= i / float(rate) < 0.6]
        assert [_content_index(f) for f in reader.frames(1.0)] == [i for i in range(n) if i / float(rate) >= 1.0]
        with pytest.raises(InputError, match="past the end"):
            reader.read_index(n)
        assert reader.read_from(100.0) is None
        assert _content_index(reader.read_index(5)) == 5  # usable again after running off the end


@pytest.mark.parametrize("threads", [1, "auto"])
def test_reaching_a_frame_skips_the_pictures_nothing_needs(tmp_path: Path, threads: int | str) -> None:
    """On the way to a target the decoder drops non-reference B pictures (x265, 3 B frames); every frame
    returned is still the right one, numbered from its timestamp, and the frames after a target all come."""
    path = tmp_path / "bframes.mp4"
    n = 36
    frames = [[np.full((H, W), 64 + 25 * i, np.uint16), *[np.full((H // 2, W // 2), 512, np.uint16)] * 2]
              for i in range(n)]  # fmt: skip
    params = "lossless=1:keyint=36:min-keyint=36:bframes=3:b-adapt=0:log-level=error"
    _encode(path, "libx265", "yuv420p10le", frames, options={"preset": "ultrafast", "x265-params": params})
    with VideoReader(path, threads=threads) as reader:
        target = reader.read_index(25)
        assert (target.index, _content_index(target)) == (25, 25)
        assert reader.pictures_decoded < 26 - 8  # 6 groups of 1 P + 3 B: most of the 18 non-reference B skipped
        after = [reader.read() for _ in range(6)]
        assert [(f.index, _content_index(f)) for f in after] == [(i, i) for i in range(26, 32)]
        assert [(f.index, _content_index(f)) for f in reader.read_at([3, 34, 12])] == [(3, 3), (34, 34), (12, 12)]
    with VideoReader(path, threads=threads) as reader:
        assert [_content_index(f) for f in reader] == list(range(n))  # a plain pass skips nothing
        assert reader.pictures_decoded == n


@pytest.mark.parametrize("threads", [1, "auto"])
def test_reaching_a_frame_in_h264_with_b_frames(tmp_path: Path, threads: int | str) -> None:
    """The same on H.264 with 3 B frames (nal_ref_idc 0 pictures dropped on the way to a target). x264 makes no B
    frames when lossless; flat frames at CRF 10 decode to their exact codes."""
    path = tmp_path / "bframes264.mp4"
    n = 36
    frames = [[np.full((H, W), 16 + 6 * i, np.uint8), *[np.full((H // 2, W // 2), 128, np.uint8)] * 2]
              for i in range(n)]  # fmt: skip
    params = "keyint=36:min-keyint=36:bframes=3:b-adapt=0:b-pyramid=none"
    options = {"preset": "ultrafast", "crf": "10", "x264-params": params}
    _encode(path, "libx264", "yuv420p", frames, tags=(1, 1, 1, 1), options=options)

    def content(frame: Frame) -> int:
        return round(float(frame.luma().mean()) * 219 / 6)

    with VideoReader(path, threads=threads) as reader:
        target = reader.read_index(25)
        assert (target.index, content(target)) == (25, 25)
        assert reader.pictures_decoded < 26 - 8
        assert [(f.index, content(f)) for f in reader.read_at([26, 3, 34])] == [(26, 26), (3, 3), (34, 34)]


def test_untagged_assumptions_and_overrides(tmp_path: Path) -> None:
    sd = tmp_path / "sd.mp4"
    hd = tmp_path / "hd.mp4"
    opts = {"preset": "ultrafast"}
    for path, (h, w) in ((sd, (96, 128)), (hd, (720, 1280))):
        planes = [np.full((h, w), 120, np.uint8), np.full((h // 2, w // 2), 128, np.uint8)]
        _encode(path, "libx264", "yuv420p", [[planes[0], planes[1], planes[1]]], tags=None, options=opts)
    with VideoReader(sd) as reader:
        assert reader.matrix == "bt601" and not reader.full_range
        assert any("bt601" in a for a in reader.assumptions)
        assert any("range" in a for a in reader.assumptions)
    with VideoReader(hd, encoding="sdr") as reader:
        assert reader.matrix == "bt709"
        assert any("bt709" in a for a in reader.assumptions)
        assert reader.warnings and "untagged" in reader.warnings[0]
    with VideoReader(sd, matrix="bt709", range="full") as reader:
        assert reader.matrix == "bt709" and reader.full_range
        assert not any("matrix" in a or "range" in a for a in reader.assumptions)
        rgb = next(iter(reader)).rgb()
        np.testing.assert_allclose(rgb, 120 / 255, atol=1e-5)  # full range gray: Y / 255


def test_rgb_frames_beside_the_decoder_match_frame_rgb(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    frames = [_random_planes(rng, "420", h=192, w=256) for _ in range(12)]
    path = tmp_path / "clip.mkv"
    params = "keyint=4:min-keyint=4:bframes=2:log-level=error"
    _encode(path, "libx265", "yuv420p10le", frames, options={"preset": "ultrafast", "x265-params": params})
    with VideoReader(path) as reader:
        expected = {f.index: (f.rgb("float32"), f.rgb("uint16", width=128)) for f in reader}
        got = list(reader.rgb_frames("float32", workers=2))  # two in flight: still in order
        assert [f.index for f, _ in got] == list(range(12))
        for frame, rgb in got:
            np.testing.assert_array_equal(rgb, expected[frame.index][0])
        window = list(reader.rgb_frames("uint16", width=128, start=5 / 24, end=9 / 24, workers=1))
        assert [f.index for f, _ in window] == [5, 6, 7, 8]
        for frame, rgb in window:
            np.testing.assert_array_equal(rgb, expected[frame.index][1])
        stream = reader.rgb_frames("float32")
        next(stream)
        stream.close()  # stopping early leaves nothing running
        with pytest.raises(ValueError, match="workers"):
            next(reader.rgb_frames(workers=0))
