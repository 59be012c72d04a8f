"""Frame extraction: names, selection (--every, --frames, --start), PNG depth and content, CLI."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from datakit.cli import main
from datakit.errors import UnsupportedFormatError
from datakit.io.extract import extract_frames
from datakit.io.images import read_png8, read_png16_pq
from datakit.io.metadata import ContentLightLevel
from datakit.io.reader import VideoReader
from datakit.io.writer import HDR10Writer, SDRWriter

W, H = 64, 48
N = 20


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """HDR10 and SDR clips at 10 fps whose frame i is a flat grey naming i."""
    folder = tmp_path_factory.mktemp("clips")
    hdr, sdr = folder / "hdr.mp4", folder / "sdr.mkv"
    with HDR10Writer(hdr, W, H, 10, preset="ultrafast", light_level=ContentLightLevel(1000, 100)) as writer:
        for i in range(N):
            writer.write(np.full((H, W, 3), 0.1 + 0.03 * i, np.float32))
    with SDRWriter(sdr, W, H, Fraction(10), preset="ultrafast") as writer:
        for i in range(N):
            writer.write(np.full((H, W, 3), 20 + 10 * i, np.uint8))
    return {"hdr": hdr, "sdr": sdr}


def _index_of(rgb01: np.ndarray, base: float, step: float) -> int:
    return round((float(rgb01.mean()) - base) / step)


def test_every_start_and_content_hdr(clips: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "hdr"
    written = extract_frames(clips["hdr"], out, every=0.5, start=0.25, progress=False)
    # 10 fps: frames at 0.3 (first >= 0.25), 0.8 (>= 0.75), 1.3, 1.8 s
    assert [p.name for p in written] == [f"frame_{i:06d}.png" for i in (3, 8, 13, 18)]
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in written]
    with VideoReader(clips["hdr"]) as reader:
        for path in written:
            index = int(path.stem.split("_")[1])
            png = read_png16_pq(path)
            assert _index_of(png, 0.1, 0.03) == index
            np.testing.assert_array_equal(
                np.rint(png * 65535).astype(np.uint16), reader.read_index(index).rgb("uint16")
            )


def test_frames_and_all_sdr(clips: dict[str, Path], tmp_path: Path) -> None:
    written = extract_frames(clips["sdr"], tmp_path / "a", frames=[7, 2, 7, 19], progress=False)
    assert [p.name for p in written] == ["frame_000002.png", "frame_000007.png", "frame_000019.png"]
    for path in written:
        rgb = read_png8(path)  # raises if the PNG is not 8-bit
        assert rgb.dtype == np.uint8
        assert _index_of(rgb.astype(np.float64), 20, 10) == int(path.stem.split("_")[1])
    everything = extract_frames(clips["sdr"], tmp_path / "b", start=1.55, progress=False)
    assert [p.name for p in everything] == [f"frame_{i:06d}.png" for i in range(16, N)]


def test_every_shorter_than_a_frame_gives_each_frame_once(clips: dict[str, Path], tmp_path: Path) -> None:
    written = extract_frames(clips["sdr"], tmp_path, every=0.04, start=1.5, progress=False)
    assert [int(p.stem.split("_")[1]) for p in written] == list(range(15, N))


def test_cli_extract(clips: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert main(["extract", str(clips["hdr"]), "--out", str(out), "--frames", "0,5", "--quiet"]) == 0
    assert "wrote 2 frames" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["frame_000000.png", "frame_000005.png"]
    with pytest.raises(SystemExit) as usage:  # argparse usage errors exit with status 2
        main(["extract", str(clips["hdr"]), "--out", str(out), "--every", "1", "--frames", "1"])
    assert usage.value.code == 2
    assert main(["extract", str(tmp_path / "missing.mp4"), "--out", str(out)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_refuses_other_kinds(tmp_path: Path) -> None:
    import av

    path = tmp_path / "hlg.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p10le"
        stream.codec_context.color_primaries, stream.codec_context.color_trc = 9, 18
        frame = av.VideoFrame.from_ndarray(np.full((H * 3 // 2, W), 512, np.uint16), format="yuv420p10le")
        frame.pts = 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    with pytest.raises(UnsupportedFormatError, match="HLG"):
        extract_frames(path, tmp_path / "out", progress=False)
