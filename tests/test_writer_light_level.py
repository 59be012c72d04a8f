"""HDR10Writer without a spool: the measured MaxCLL/MaxFALL rewritten in place in every container it writes.

The frames are panned across a CC0 HDR photograph (``/work/shared/data/hdri``); the reference for the rewritten
file is libx265 itself, given the same values up front (its own SEI writer), and colour-science's ST 2084 EOTF for
the values.
"""

from __future__ import annotations

import struct
import warnings
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from datakit.color.gamut import convert_gamut
from datakit.color.transfer import st2084_inverse_eotf
from datakit.convert import convert_video
from datakit.errors import DatakitError, UnsupportedFormatError
from datakit.io import light_level_sei
from datakit.io.images import read_hdr_image
from datakit.io.metadata import ContentLightLevel
from datakit.io.probe import probe
from datakit.io.writer import HDR10Writer, SDRWriter

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour

HDRI = Path("/work/shared/data/hdri")
W, H, N = 256, 144, 24
pytestmark = pytest.mark.skipif(not HDRI.is_dir(), reason="needs the CC0 HDR images in /work/shared/data/hdri")


@pytest.fixture(scope="module")
def pq_frames() -> list[np.ndarray]:
    """``rgb_pq`` frames (PQ BT.2020 R'G'B' float32): a 256x144 window panned 12 px a frame across sunset.exr (the sun
    in view), relative 1.0 shown at 80 cd/m^2 and clipped at 4000 cd/m^2."""
    image = read_hdr_image(HDRI / "sunset.exr")
    nits = np.clip(convert_gamut(image.rgb_linear, image.primaries, "bt2020"), 0.0, None) * 80.0
    frames = []
    for t in range(N):
        window = nits[180 : 180 + H, 400 + 12 * t : 400 + 12 * t + W]
        frames.append(np.asarray(st2084_inverse_eotf(np.minimum(window, 4000.0)), dtype=np.float32))
    return frames


def _expected(frames: list[np.ndarray]) -> tuple[float, float]:
    """MaxCLL / MaxFALL (CTA-861.3) with colour-science's ST 2084 EOTF."""
    peaks = [colour.models.eotf_ST2084(f.astype(np.float64).max(axis=2)) for f in frames]
    return max(float(p.max()) for p in peaks), max(float(p.mean()) for p in peaks)


def _write(path: Path, frames: list[np.ndarray], **kwargs: object) -> ContentLightLevel:
    with HDR10Writer(path, W, H, Fraction(24000, 1001), preset="ultrafast", **kwargs) as writer:  # type: ignore[arg-type]
        for frame in frames:
            writer.write(frame)
    return writer.close()


def _stream(path: Path) -> tuple[bytes, list[bytes]]:
    """(extradata, packet payloads) of the file's video stream, as a demuxer reads them."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = [bytes(p) for p in container.demux(stream) if p.size]
        return bytes(stream.codec_context.extradata or b""), packets


@pytest.mark.parametrize("ext", [".mp4", ".mov", ".mkv", ".hevc"])
def test_rewritten_file_is_what_x265_writes_given_the_values(
    tmp_path: Path, pq_frames: list[np.ndarray], ext: str
) -> None:
    """Measured and rewritten in place == the same frames encoded with the values given up front (x265's own SEI),
    packet for packet and in the decoder configuration; every IRAP picture carries them (keyint 8: three), the
    ST 2086 mastering display stays, and no copy of the placeholder is left."""
    params = "keyint=8:min-keyint=8:scenecut=0:info=0:frame-threads=1"  # no info SEI: its text is padded
    measured = _write(tmp_path / f"measured{ext}", pq_frames, x265_params=params)
    max_cll, max_fall = _expected(pq_frames)
    assert measured.max_cll == round(max_cll) and abs(measured.max_fall - max_fall) <= 0.51
    assert measured.max_cll > 1000  # the sun: far from the placeholder and from an untouched default
    given = _write(tmp_path / f"given{ext}", pq_frames, x265_params=params, light_level=measured)
    assert given == measured
    assert _stream(tmp_path / f"measured{ext}") == _stream(tmp_path / f"given{ext}")

    data = (tmp_path / f"measured{ext}").read_bytes()
    assert light_level_sei.sei_message(light_level_sei.PLACEHOLDER) not in data
    with av.open(str(tmp_path / f"measured{ext}")) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == N
    levels = {}
    for k, frame in enumerate(frames):
        sides = {getattr(sd.type, "name", str(sd.type)): bytes(sd) for sd in frame.side_data}
        assert "MASTERING_DISPLAY_METADATA" in sides
        if "CONTENT_LIGHT_LEVEL" in sides:
            levels[k] = struct.unpack_from("<2I", sides["CONTENT_LIGHT_LEVEL"])
    assert {0, 8, 16} <= set(levels) and set(levels.values()) == {(measured.max_cll, measured.max_fall)}
    info = probe(tmp_path / f"measured{ext}")
    assert info.content_light_level == measured and info.kind == "hdr10"
    assert info.mastering_display is not None and info.mastering_display.max_luminance == pytest.approx(1000.0)


def test_encoder_information_text_gets_the_measured_values(tmp_path: Path, pq_frames: list[np.ndarray]) -> None:
    """libx265's information SEI (its options as text) names the written values, not the placeholder."""
    level = _write(tmp_path / "info.mkv", pq_frames[:3])
    data = (tmp_path / "info.mkv").read_bytes()
    text = f" cll={level.max_cll},{level.max_fall} ".encode()
    assert data.count(text) >= 1 and b"cll=50133,47017" not in data
    assert probe(tmp_path / "info.mkv").content_light_level == level


def test_writer_keeps_no_spool(tmp_path: Path, pq_frames: list[np.ndarray]) -> None:
    """While frames are written, the folder holds only the encoder's output under its temporary name, far smaller
    than the 3 bytes per pixel per frame a spool of the 10-bit planes took."""
    out = tmp_path / "film.mkv"
    sizes = []
    with HDR10Writer(out, W, H, 24, preset="ultrafast") as writer:
        for k, frame in enumerate(pq_frames * 2, start=1):
            writer.write(frame)
            files = list(tmp_path.iterdir())
            assert len(files) == 1 and files[0].name.endswith(".part.mkv"), files
            sizes.append(files[0].stat().st_size)
            assert sizes[-1] < k * W * H * 3 / 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["film.mkv"]


def test_conversion_uses_no_spool(tmp_path: Path, pq_frames: list[np.ndarray]) -> None:
    """``convert_video``: after every frame its work folder holds only the encoder's output (bounded by the
    compressed size), and probe reads the measured light level from the published file."""
    from datakit.color.transfer import st2084_eotf

    src = tmp_path / "sdr.mp4"
    with SDRWriter(src, W, H, 24, preset="ultrafast") as writer:  # a plain clip of the same pan, gamma 2.4
        for frame in pq_frames:
            nits = np.asarray(st2084_eotf(frame.astype(np.float64)))
            writer.write(np.clip(nits / 200.0, 0.0, 1.0) ** (1 / 2.4))
    out = tmp_path / "hdr.mkv"
    work = tmp_path / ".hdr.mkv.partial"
    seen: list[tuple[int, int]] = []

    def inspect(done: int) -> None:
        files = [p for p in work.rglob("*") if p.is_file()]
        assert len(files) == 1 and files[0].name.endswith(".part.mkv"), files
        seen.append((done, files[0].stat().st_size))

    result = convert_video(src, out, preset="ultrafast", device="cpu", callback=inspect)
    assert [d for d, _ in seen] == list(range(1, N + 1))
    assert all(size < done * W * H * 3 / 4 for done, size in seen)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hdr.mkv", "sdr.mp4"]
    level = ContentLightLevel(**result["light_level"])
    assert probe(out).content_light_level == level and result["probe"]["content_light_level"] == result["light_level"]


def _with_emulation_prevention(rbsp: bytes) -> bytes:
    """H.265 7.4.2: 0x03 after every ``00 00`` followed by a byte <= 3 (independent of the module's check)."""
    out, zeros = bytearray(), 0
    for b in rbsp:
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def test_written_values_never_need_an_emulation_prevention_byte() -> None:
    """Every level :func:`writable` returns has an SEI NAL of the placeholder's size (so it fits in place); it
    differs from the measured one only where the size would change, by MaxCLL + 1."""
    rng = np.random.default_rng(0)
    cases = [(c, f) for c in range(0, 10001, 256) for f in range(0, 6)]
    cases += [(int(c), int(f)) for c, f in rng.integers(0, 10001, (2000, 2))] + [(0, 0), (1, 0), (1000, 400)]
    size = len(_with_emulation_prevention(b"\x4e\x01" + light_level_sei.sei_message(light_level_sei.PLACEHOLDER)))
    for c, f in cases:
        level = ContentLightLevel(c, f)
        nal = b"\x4e\x01" + light_level_sei.sei_message(level) + b"\x80"
        fits = len(_with_emulation_prevention(nal)) == len(nal)
        written = light_level_sei.writable(level)
        assert written == level if fits else written == ContentLightLevel(c + 1, f)
        nal = b"\x4e\x01" + light_level_sei.sei_message(written)
        assert len(_with_emulation_prevention(nal + b"\x80")) == size + 1 == len(nal) + 1
    assert light_level_sei.writable(ContentLightLevel(0, 0)) == ContentLightLevel(1, 0)
    assert light_level_sei.writable(ContentLightLevel(512, 3)) == ContentLightLevel(513, 3)
    assert light_level_sei.writable(ContentLightLevel(512, 4)) == ContentLightLevel(512, 4)


def test_black_video_gets_maxcll_one(tmp_path: Path) -> None:
    """All-black frames measure MaxCLL 0 (its message would need an emulation prevention byte): the file says 1,
    the writer says what the file says."""
    out = tmp_path / "black.mp4"
    level = _write(out, [np.zeros((H, W, 3), np.float32)] * 2)
    assert level == ContentLightLevel(1, 0)
    assert probe(out).content_light_level == level


def test_unexpected_copies_change_nothing(tmp_path: Path) -> None:
    """A file holding more copies of the placeholder than the encoder handed out is refused and left as it was."""
    placeholder = light_level_sei.sei_message(light_level_sei.PLACEHOLDER)
    path = tmp_path / "stream.bin"
    body = bytes(range(4, 250)) * 100000  # 24.6 MB: a copy straddles the 16 MiB read boundary
    split = (16 << 20) - 3
    path.write_bytes(body[:split] + placeholder + body[split:] + placeholder)
    count = light_level_sei.PlaceholderCount()
    count.add_packet(placeholder)
    before = path.read_bytes()
    with pytest.raises(DatakitError, match="2 copies of the placeholder"):
        light_level_sei.rewrite_light_level(path, ContentLightLevel(1000, 400), count)
    assert path.read_bytes() == before
    count.add_extradata(placeholder)
    assert light_level_sei.rewrite_light_level(path, ContentLightLevel(1000, 400), count) == 2
    after = path.read_bytes()
    new = light_level_sei.sei_message(ContentLightLevel(1000, 400))
    assert after == body[:split] + new + body[split:] + new


def test_light_level_in_x265_params_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="light_level"):
        HDR10Writer(tmp_path / "x.mp4", W, H, 24, x265_params="max-cll=1000,400")
    assert list(tmp_path.iterdir()) == []


def test_failed_rewrite_publishes_nothing(
    tmp_path: Path, pq_frames: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the file holds more copies than the encoder handed out (here its packets' copies go uncounted), close()
    raises and neither the output nor its temporary file is left."""
    monkeypatch.setattr(light_level_sei.PlaceholderCount, "add_packet", lambda self, data: None)
    with pytest.raises(DatakitError, match="copies of the placeholder"), HDR10Writer(
        tmp_path / "out.mp4", W, H, 24, preset="ultrafast"
    ) as writer:
        for frame in pq_frames[:3]:
            writer.write(frame)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("width", [40, 48])
def test_x265_heap_bug_widths_are_refused(tmp_path: Path, width: int) -> None:
    """PyAV's bundled libx265 corrupts the heap on 40- and 48-pixel-wide pictures (the process aborts later): the
    writers refuse them with one line instead, leaving nothing."""
    with pytest.raises(UnsupportedFormatError, match=f"{width}-pixel-wide"):
        HDR10Writer(tmp_path / "narrow.mkv", width, 64, 24)
    with pytest.raises(UnsupportedFormatError, match=f"{width}-pixel-wide"):
        SDRWriter(tmp_path / "narrow.mp4", width, 64, 24, codec="libx265")
    with SDRWriter(tmp_path / "narrow.mp4", width, 64, 24, preset="ultrafast") as writer:  # x264 is fine
        writer.write(np.zeros((64, width, 3), np.uint8))
    with pytest.raises(UnsupportedFormatError, match=rf"out\.mkv: libx265 .* {width}-pixel-wide"):
        convert_video(tmp_path / "narrow.mp4", tmp_path / "out.mkv", device="cpu")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["narrow.mp4"]
