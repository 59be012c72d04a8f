"""``datakit convert``: real SDR files in, HDR10 files out, checked by reading them back with PyAV and colour-science.

Sources are short clips written here (SDRWriter, or raw PyAV for untagged 4:4:4 variable-frame-rate video and
for an AAC audio track). References are independent of the code under test: colour-science for the classical
conversion and the PQ EOTF, colour-science's Y'CbCr decoding of the raw 10-bit planes for the light levels,
PyAV for tags, side data, timestamps and audio packets.
"""

from __future__ import annotations

import os
import struct
import warnings
import weakref
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch

from datakit.cli import main
from datakit.convert import convert_frames, convert_video, reflect_index, temporal_windows
from datakit.errors import DatakitError, InputError, ModelError, OutputExistsError, UnsupportedFormatError
from datakit.io.probe import probe
from datakit.io.reader import VideoReader
from datakit.io.writer import HDR10Writer, SDRWriter
from datakit.nn.registry import create_model
from tests.checkpoints import inference_checkpoint

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour

W, H, N = 96, 64, 12
FAST = {"preset": "ultrafast", "crf": 10, "device": "cpu"}


# --------------------------------------------------------------------------- sources


def _sdr_frame(t: int, h: int = H, w: int = W) -> np.ndarray:
    """BT.709 R'G'B' test picture: colour gradients, a soft saturated blob moving right, and a flat SDR-white
    patch framed in neutral grey (so that 4:2:0 chroma cannot overshoot there: it holds the brightest pixels)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([xx / w, yy / h, 0.5 + 0.4 * np.sin(xx / 8 + t / 2)], axis=-1)
    blob = np.exp(-((xx - 10 - 4 * t) ** 2 + (yy - 46) ** 2) / (2 * 6.0**2))[..., None]
    rgb = rgb * (1 - blob) + np.array([0.9, 0.2, 0.1], np.float32) * blob
    rgb[4:28, 60:92] = 0.5
    rgb[8:24, 64:88] = 1.0  # SDR white: 203 cd/m2 after the classical conversion
    return rgb.astype(np.float32)


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Any:
    """One torch thread: the machine's cores are shared, and oversubscribed threads make small convs slow."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("convert")


@pytest.fixture(scope="module")
def sdr_clip(folder: Path) -> Path:
    path = folder / "sdr.mp4"
    with SDRWriter(path, W, H, 24, preset="ultrafast", crf=0) as writer:  # x264 lossless
        for t in range(N):
            writer.write(_sdr_frame(t))
    return path


@pytest.fixture(scope="module")
def sdr_audio_clip(folder: Path, sdr_clip: Path) -> Path:
    """``sdr_clip``'s video packets plus a 48 kHz stereo AAC tone (PyAV)."""
    path = folder / "sdr_audio.mp4"
    with av.open(str(sdr_clip)) as src, av.open(str(path), "w") as out:
        v_out = out.add_stream_from_template(src.streams.video[0])
        a_out = out.add_stream("aac", rate=48000)
        a_out.layout = "stereo"
        for packet in src.demux(src.streams.video[0]):
            if packet.size:
                packet.stream = v_out
                out.mux(packet)
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(48000 // 2) / 48000)).astype(np.float32)
        for k in range(0, len(tone) - 1023, 1024):
            frame = av.AudioFrame.from_ndarray(np.stack([tone[k : k + 1024]] * 2), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = 48000, k
            for packet in a_out.encode(frame):
                out.mux(packet)
        for packet in a_out.encode(None):
            out.mux(packet)
    return path


VFR_TIMES_MS = [0, 40, 90, 100, 200, 350, 360, 500, 540]


@pytest.fixture(scope="module")
def vfr_clip(folder: Path) -> Path:
    """Untagged yuv444p H.264 in MKV, odd size 97x65, variable frame rate (PyAV, no colour tags)."""
    path = folder / "vfr.mkv"
    tb = Fraction(1, 1000)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 97, 65, "yuv444p"
        stream.time_base = tb
        stream.codec_context.time_base = tb
        stream.options = {"preset": "ultrafast"}
        for i, ms in enumerate(VFR_TIMES_MS):
            frame = av.VideoFrame(97, 65, "yuv444p")
            for plane, value in zip(frame.planes, (60 + 15 * i, 100, 150), strict=True):
                np.frombuffer(plane, np.uint8)[:] = value
            frame.pts, frame.time_base = ms, tb
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def hdr_clip(folder: Path) -> Path:
    path = folder / "hdr.mp4"
    with HDR10Writer(path, W, H, 24, preset="ultrafast") as writer:
        for t in range(4):
            writer.write(np.full((H, W, 3), 0.3 + 0.05 * t, np.float32))
    return path


@pytest.fixture(scope="module")
def converted(folder: Path, sdr_clip: Path) -> dict[str, Any]:
    """The default (classical) conversion of ``sdr_clip``."""
    return convert_video(sdr_clip, folder / "hdr10.mp4", **FAST)


@pytest.fixture(scope="module")
def converted_lossless(folder: Path, sdr_clip: Path) -> dict[str, Any]:
    """``sdr_clip`` converted with lossless HEVC: the decoded pictures are the written 4:2:0 planes."""
    return convert_video(sdr_clip, folder / "lossless.mkv", x265_params="lossless=1", **FAST)


def _checkpoint(path: Path, name: str, **args: Any) -> Path:
    """A datakit-format checkpoint of an untrained model (seeded)."""
    return inference_checkpoint(path, name, **args)


# --------------------------------------------------------------------------- independent decoding


def _decode_planes(path: Path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Raw yuv420p10le code planes of every frame (PyAV, no conversion)."""
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            assert frame.format.name == "yuv420p10le"
            planes = []
            for plane in frame.planes:
                a = np.frombuffer(plane, np.uint16).reshape(plane.height, plane.line_size // 2)
                planes.append(a[:, : plane.width].copy())
            out.append(tuple(planes))
    return out


def _pq_from_planes(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """BT.2020 NCL limited-range 10-bit Y'CbCr -> R'G'B' (colour-science), chroma repeated to full size."""
    up = np.stack([y, np.repeat(np.repeat(u, 2, 0), 2, 1), np.repeat(np.repeat(v, 2, 0), 2, 1)], axis=-1)
    rgb = colour.YCbCr_to_RGB(
        up, K=colour.WEIGHTS_YCBCR["ITU-R BT.2020"], in_bits=10, in_legal=True, in_int=True, out_legal=False
    )
    return np.clip(rgb, 0.0, 1.0)


def _times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        return [float(f.time) for f in container.decode(video=0)]


def _classical_reference(rgb_sdr: np.ndarray) -> np.ndarray:
    """BT.1886 (gamma 2.4, zero black) -> BT.709 to BT.2020 -> 203 cd/m2 white -> ST 2084, with colour-science."""
    linear = colour.models.eotf_BT1886(rgb_sdr.astype(np.float64), L_B=0, L_W=1)
    bt2020 = colour.RGB_to_RGB(
        linear, colour.RGB_COLOURSPACES["ITU-R BT.709"], colour.RGB_COLOURSPACES["ITU-R BT.2020"]
    )
    return colour.models.eotf_inverse_ST2084(np.clip(bt2020, 0, None) * 203.0)


# --------------------------------------------------------------------------- windows and tiling (arrays)


def test_reflect_index_and_windows() -> None:
    assert [reflect_index(j, 4) for j in range(-3, 7)] == [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]
    assert [reflect_index(j, 1) for j in (-2, 0, 3)] == [0, 0, 0]
    centre = list(temporal_windows(range(4), 5))
    assert [w for _, w in centre] == [[2, 1, 0, 1, 2], [1, 0, 1, 2, 3], [0, 1, 2, 3, 2], [1, 2, 3, 2, 1]]
    assert all(p == [2] for p, _ in centre)
    assert [w for _, w in temporal_windows([7], 5)] == [[7] * 5]
    chunks = list(temporal_windows(range(4), 3, centre=False))
    assert chunks == [([0, 1, 2], [0, 1, 2]), ([0], [3, 2, 1])]
    pulled = []

    def source() -> Any:
        for i in range(50):
            pulled.append(i)
            yield i

    windows = temporal_windows(source(), 5)
    _, first = next(windows)
    assert first == [2, 1, 0, 1, 2] and pulled == [0, 1, 2]  # reads only what the window needs
    assert len(list(windows)) == 49 and pulled == list(range(50))  # each item read once


class _Item:
    """A frame stand-in that can be tracked with a weak reference."""

    def __init__(self, index: int) -> None:
        self.index = index


@pytest.mark.parametrize(("size", "centre", "held"), [(5, True, 5), (3, False, 5), (1, True, 1)])
def test_windows_hold_a_bounded_buffer(size: int, centre: bool, held: int) -> None:
    alive: weakref.WeakSet[_Item] = weakref.WeakSet()

    def source() -> Any:
        for i in range(40):
            item = _Item(i)
            alive.add(item)
            yield item
            del item

    seen = []
    for positions, window in temporal_windows(source(), size, centre=centre):
        seen += [window[p].index for p in positions]
        del window
        assert len(alive) <= held
    assert seen == list(range(40))


def test_multiframe_window_uses_reflected_neighbours() -> None:
    torch.manual_seed(0)
    model = create_model("dslnet", nf=4, head=4).eval()
    frames = [_sdr_frame(t)[:32, :48] for t in range(4)]
    out = list(convert_frames(frames, model, tile=0, peak_nits=10000))
    assert len(out) == 4
    x = torch.from_numpy(np.stack([frames[i] for i in (2, 1, 0, 1, 2)])).permute(0, 3, 1, 2)[None]
    with torch.inference_mode():
        ref = model(x).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(out[0], ref, atol=1e-6)
    # KPN-MFI returns all three frames: groups (0, 1, 2), (3, 4, 5), then (6, 5, 4) mirrored past the end.
    kpn = create_model("kpnmfi", widths=(16, 16, 16, 16)).eval()
    frames = [_sdr_frame(t)[:32, :48] for t in range(7)]
    out = list(convert_frames(frames, kpn, tile=0, batch=2, peak_nits=10000))
    assert len(out) == 7
    for group, index, position in (((3, 4, 5), 4, 1), ((6, 5, 4), 6, 0)):
        x = torch.from_numpy(np.stack([frames[i] for i in group])).permute(0, 3, 1, 2)[None]
        with torch.inference_mode():
            ref = kpn(x).clamp(0, 1)[0, position].permute(1, 2, 0).numpy()
        np.testing.assert_allclose(out[index], ref, atol=1e-6)


def test_tiled_equals_untiled() -> None:
    frames = [_sdr_frame(t) for t in range(3)]
    classical = create_model("classical")
    whole = np.stack(list(convert_frames(frames, classical, tile=0)))
    tiled = np.stack(list(convert_frames(frames, classical, tile=32, overlap=8, batch=2)))
    np.testing.assert_allclose(tiled, whole, atol=1e-6)  # pointwise: tiling is exact
    expected = _classical_reference(np.stack(frames))
    np.testing.assert_allclose(whole, expected, atol=2e-5)
    torch.manual_seed(0)
    agcm = create_model("agcm").eval()
    big = [_sdr_frame(t, 128, 192) for t in range(2)]
    whole = np.stack(list(convert_frames(big, agcm, tile=0)))
    tiled = np.stack(list(convert_frames(big, agcm, tile=128, overlap=32)))
    # AGCM's condition network pools over its whole input, so each tile gets its own global condition:
    # close to the whole-frame result, not equal (measured: mean 0.006, max 0.015 in PQ).
    assert np.abs(tiled - whole).mean() < 0.01 and np.abs(tiled - whole).max() < 0.03
    same = np.stack(list(convert_frames(big, agcm, tile=192)))  # one tile covers the frame
    np.testing.assert_allclose(same, whole, atol=1e-6)
    resnet = create_model("resnet", nf=16, blocks=2).eval()  # local convolutions only
    whole = np.stack(list(convert_frames(big, resnet, tile=0)))
    tiled = np.stack(list(convert_frames(big, resnet, tile=64, overlap=32)))
    # Only pixels whose receptive field crosses a tile edge differ (measured: mean 1.2e-4, max 0.006).
    assert np.abs(tiled - whole).mean() < 1e-3 and np.abs(tiled - whole).max() < 0.02


def test_output_clipped_to_peak() -> None:
    model = create_model("classical", highlight_expansion=True, peak_nits=4000.0)  # highlight expansion to 4000 cd/m2
    out = next(convert_frames([np.ones((8, 8, 3), np.float32)], model, peak_nits=1000.0))
    assert np.allclose(out, colour.models.eotf_inverse_ST2084(1000.0), atol=1e-6)


# --------------------------------------------------------------------------- files


def test_output_is_hdr10(converted: dict[str, Any]) -> None:
    path = Path(converted["output"])
    info = probe(path)
    assert (info.codec, info.pix_fmt, info.kind) == ("hevc", "yuv420p10le", "hdr10")
    assert (info.color_primaries, info.color_trc, info.color_matrix, info.color_range) == (
        "bt2020",
        "smpte2084",
        "bt2020nc",
        "limited",
    )
    assert info.mastering_display is not None and info.mastering_display.max_luminance == pytest.approx(1000)
    assert info.mastering_display.describe().startswith("P3-D65")
    assert converted["probe"]["kind"] == "hdr10" and converted["frames"] == N
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        cc = stream.codec_context
        assert (cc.name, cc.profile, cc.codec_tag) == ("hevc", "Main 10", "hvc1")
        frame = next(container.decode(stream))
        assert (frame.format.name, frame.color_primaries, frame.color_trc, frame.colorspace) == (
            "yuv420p10le",
            9,
            16,
            9,
        )
        assert frame.color_range == 1  # MPEG (limited)
        sides = {getattr(s.type, "name", str(s.type)): bytes(s) for s in frame.side_data}
    assert "MASTERING_DISPLAY_METADATA" in sides
    rationals = struct.unpack_from("<20i", sides["MASTERING_DISPLAY_METADATA"])
    assert rationals[18] / rationals[19] == pytest.approx(1000.0)  # max luminance
    assert rationals[0] / rationals[1] == pytest.approx(0.680, abs=1e-4)  # P3 red x
    max_cll, max_fall = struct.unpack_from("<2I", sides["CONTENT_LIGHT_LEVEL"])
    assert (max_cll, max_fall) == (converted["light_level"]["max_cll"], converted["light_level"]["max_fall"])


def test_light_level_matches_decoded_output(converted_lossless: dict[str, Any]) -> None:
    """MaxCLL / MaxFALL (CTA-861.3) against the decoded output: max(R,G,B) in cd/m^2 via colour-science's PQ EOTF.

    The writer measures the frames it is given. Lossy coding adds noise and ringing above that (measured on this
    clip: decoded peak +7% at crf 0, +15% at crf 10, +30% at crf 18 with preset ultrafast), and 4:2:0 chroma
    overshoots at saturated edges, so this check uses lossless HEVC and keeps the brightest patch on neutral grey.
    """
    result = converted_lossless
    max_cll, max_fall = result["light_level"]["max_cll"], result["light_level"]["max_fall"]
    peak, fall = 0.0, 0.0
    with VideoReader(result["output"], encoding="pq") as reader:
        for frame in reader:
            brightest = colour.models.eotf_ST2084(frame.rgb("float32").astype(np.float64)).max(axis=-1)
            peak, fall = max(peak, float(brightest.max())), max(fall, float(brightest.mean()))
    assert max_cll == pytest.approx(peak, rel=0.02)
    assert max_fall == pytest.approx(fall, rel=0.02)
    assert max_cll == pytest.approx(203, abs=2)  # SDR white at BT.2408 reference white
    # The same patch decoded from the raw 10-bit planes by colour-science (flat: chroma siting does not matter).
    y, u, v = _decode_planes(Path(result["output"]))[0]
    patch = colour.models.eotf_ST2084(_pq_from_planes(y, u, v)[10:22, 66:86])
    assert patch.max() == pytest.approx(max_cll, rel=0.02)


def test_classical_output_matches_reference(
    converted: dict[str, Any], converted_lossless: dict[str, Any], sdr_clip: Path
) -> None:
    """The decoded HDR10 output equals colour-science's classical conversion of the decoded SDR input."""
    with VideoReader(sdr_clip, encoding="sdr") as reader:
        expected = np.stack([_classical_reference(f.rgb("float32")) for f in reader])
    # Lossless HEVC leaves the 4:2:0 chroma error only (largest at saturated edges); crf 10 adds coding noise.
    for result, mean, p99 in ((converted_lossless, 0.0015, 0.015), (converted, 0.005, 0.03)):
        with VideoReader(result["output"], encoding="pq") as reader:
            got = np.stack([f.rgb("float32") for f in reader])
        assert got.shape == expected.shape == (N, H, W, 3)
        error = np.abs(got - expected)
        assert error.mean() < mean and np.percentile(error, 99) < p99, (error.mean(), np.percentile(error, 99))


def test_frames_and_timestamps_preserved(converted: dict[str, Any], sdr_clip: Path) -> None:
    assert _times(Path(converted["output"])) == pytest.approx(_times(sdr_clip), abs=1e-3)
    assert len(_times(Path(converted["output"]))) == N


def test_vfr_untagged_444_odd_size(folder: Path, vfr_clip: Path) -> None:
    result = convert_video(vfr_clip, folder / "vfr_hdr.mkv", **FAST)
    assert result["frames"] == len(VFR_TIMES_MS) and (result["width"], result["height"]) == (96, 64)
    times = np.array(_times(folder / "vfr_hdr.mkv"))
    np.testing.assert_allclose(times - times[0], np.array(VFR_TIMES_MS) / 1000, atol=1e-3)
    notes = " ".join(result["warnings"])
    assert "assuming BT.709 SDR" in notes and "cropped to 96x64" in notes
    assert result["probe"]["kind"] == "hdr10" and result["probe"]["width"] == 96


def test_audio_copied(folder: Path, sdr_audio_clip: Path) -> None:
    out = folder / "with_audio.mkv"
    result = convert_video(sdr_audio_clip, out, **FAST)
    assert result["audio_streams"] == 1 and result["probe"]["has_audio"]

    def audio(path: Path) -> tuple[str, list[bytes], float]:
        with av.open(str(path)) as c:
            stream = c.streams.audio[0]
            packets = [p for p in c.demux(stream) if p.size]
            first_audio = float(packets[0].pts * packets[0].time_base)
            name = stream.codec_context.name
            data = [bytes(p) for p in packets]
        return name, data, first_audio - _times(path)[0]

    src_codec, src_packets, src_offset = audio(sdr_audio_clip)
    out_codec, out_packets, out_offset = audio(out)
    assert out_codec == src_codec == "aac"
    assert out_packets == src_packets  # stream copy: the same bytes
    assert out_offset == pytest.approx(src_offset, abs=2e-3)  # audio/video sync kept
    assert len(_times(out)) == N


def test_multiframe_model_file(folder: Path, sdr_clip: Path) -> None:
    ckpt = _checkpoint(folder / "dsl.pt", "dslnet", nf=4, head=4)
    result = convert_video(sdr_clip, folder / "dsl.mp4", checkpoint=ckpt, batch=2, **FAST)
    assert result["model"] == "dslnet" and result["frames"] == N
    assert len(_times(folder / "dsl.mp4")) == N


def test_tiled_file_conversion_equals_untiled(folder: Path, sdr_clip: Path, converted: dict[str, Any]) -> None:
    result = convert_video(sdr_clip, folder / "tiled.mp4", tile=32, overlap=8, **FAST)
    assert result["tile"] == 32
    a = _decode_planes(folder / "tiled.mp4")
    b = _decode_planes(Path(converted["output"]))
    assert all(np.array_equal(p, q) for fa, fb in zip(a, b, strict=True) for p, q in zip(fa, fb, strict=True))


# --------------------------------------------------------------------------- bad input and checkpoints


def test_not_a_video(folder: Path) -> None:
    bogus = folder / "notes.mp4"
    bogus.write_text("not a video\n")
    with pytest.raises(InputError):
        convert_video(bogus, folder / "x.mp4")
    with pytest.raises(InputError, match="no such file"):
        convert_video(folder / "missing.mp4", folder / "x.mp4")


def test_hdr_input_refused_unless_forced(folder: Path, hdr_clip: Path) -> None:
    with pytest.raises(UnsupportedFormatError, match=r"already HDR.*--force"):
        convert_video(hdr_clip, folder / "again.mp4")
    assert not (folder / "again.mp4").exists()
    result = convert_video(hdr_clip, folder / "again.mp4", force=True, **FAST)
    assert result["frames"] == 4 and any("--force" in n for n in result["warnings"])


def test_checkpoints(folder: Path, sdr_clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    agcm = _checkpoint(folder / "agcm.pt", "agcm")
    with pytest.raises(ModelError, match="checkpoint of model 'agcm', not 'hdcfm'"):
        convert_video(sdr_clip, folder / "c.mp4", model="hdcfm", checkpoint=agcm)
    shipped = folder / "shipped"
    monkeypatch.setenv("DATAKIT_MODELS", str(shipped))
    with pytest.raises(ModelError, match=r"no \*\.pt checkpoint: pass --checkpoint"):
        convert_video(sdr_clip, folder / "c.mp4", model="hdcfm")
    (shipped / "agcm").mkdir(parents=True)
    os.replace(agcm, shipped / "agcm" / "agcm.pt")
    result = convert_video(sdr_clip, folder / "c.mp4", model="agcm", **FAST)
    assert result["model"] == "agcm" and result["checkpoint"] == str(shipped / "agcm" / "agcm.pt")


def test_output_exists_and_overwrite(folder: Path, sdr_clip: Path, converted: dict[str, Any]) -> None:
    out = Path(converted["output"])
    before = out.stat().st_mtime_ns
    with pytest.raises(OutputExistsError, match="--overwrite"):
        convert_video(sdr_clip, out)
    assert out.stat().st_mtime_ns == before
    with pytest.raises(InputError, match="replace the input"):
        convert_video(sdr_clip, sdr_clip, overwrite=True)


def test_interrupted_conversion_leaves_nothing(folder: Path, sdr_audio_clip: Path) -> None:
    work = folder / "interrupt"
    work.mkdir()

    def stop(done: int) -> None:
        if done == 5:
            raise KeyboardInterrupt

    for name in ("broken.mp4", "broken.mkv"):
        with pytest.raises(KeyboardInterrupt):
            convert_video(sdr_audio_clip, work / name, callback=stop, **FAST)
    assert list(work.iterdir()) == []  # no output, no temporary or spool file


def test_bad_options(folder: Path, sdr_clip: Path) -> None:
    with pytest.raises(DatakitError, match="--peak"):
        convert_video(sdr_clip, folder / "o.mp4", peak_nits=50)
    with pytest.raises(DatakitError, match="--preset"):
        convert_video(sdr_clip, folder / "o.mp4", preset="turbo")
    with pytest.raises(DatakitError, match="--overlap"):
        convert_video(sdr_clip, folder / "o.mp4", tile=32, overlap=32)
    with pytest.raises(UnsupportedFormatError, match="output must be"):
        convert_video(sdr_clip, folder / "o.avi")
    assert not (folder / "o.mp4").exists()


# --------------------------------------------------------------------------- CLI


def test_cli(folder: Path, sdr_clip: Path, hdr_clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = folder / "cli.mkv"
    args = ["convert", str(sdr_clip), str(out), "--preset", "ultrafast", "--device", "cpu", "--quiet"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "clipped to 1000 cd/m2" in text and "MaxCLL 203" in text
    assert probe(out).kind == "hdr10"
    assert main(args) == 2  # exists
    assert "exists" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--peak", "600", "--tile", "48"]) == 0
    assert probe(out).mastering_display.max_luminance == pytest.approx(600)
    capsys.readouterr()
    for bad in (
        ["convert", str(hdr_clip), str(folder / "h.mp4")],
        ["convert", str(folder / "missing.mp4"), str(folder / "h.mp4")],
        ["convert", str(sdr_clip), str(folder / "h.mp4"), "--model", "nosuchmodel"],
        ["convert", str(sdr_clip), str(folder / "h.mp4"), "--batch", "0"],
    ):
        assert main(bad) == 2, bad
        err = capsys.readouterr().err
        assert err.startswith("datakit: ") and err.count("\n") == 1, err
    assert not (folder / "h.mp4").exists()
