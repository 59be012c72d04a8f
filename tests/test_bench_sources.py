"""The build bench's streaming-like sources are what bench/streaming_sources.py promises: read back by PyAV (not by
the renderer), each stream has its codec, pixel format and colour tags, keyframes no further apart than its GOP and
at the cuts, B-frames, and the SDR shows the HDR frame ``OFFSET_FRAMES`` later."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from datakit.io.probe import probe

BENCH = Path(__file__).resolve().parents[1] / "bench"
SIZE = (256, 144)
SECONDS = 8.0
PICTURE_TYPES = {1: "I", 2: "P", 3: "B"}  # AVPictureType


def _module():
    spec = importlib.util.spec_from_file_location("streaming_sources", BENCH / "streaming_sources.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("streaming_sources", module)
    spec.loader.exec_module(module)
    return module


sources = _module()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    work = tmp_path_factory.mktemp("stream")
    return sources.render_kinds(["hevc-gop2", "av1"], work, SECONDS, size=SIZE, exact=True)


def _read(path: str) -> tuple[av.codec.context.CodecContext, list[int], list[str], list[np.ndarray]]:
    """(codec context, keyframe indices, picture types, luma planes as float) of every frame, in display order."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        keys, types, lumas = [], [], []
        for i, frame in enumerate(container.decode(stream)):
            if frame.key_frame:
                keys.append(i)
            types.append(PICTURE_TYPES.get(int(frame.pict_type), "?"))
            lumas.append(frame.to_ndarray()[: frame.height].astype(np.float32))  # planar: Y' rows first
        return stream.codec_context, keys, types, lumas


def _structure(luma: np.ndarray) -> np.ndarray:
    """Zero-mean unit vector of the luma minus its blur (edges survive tone mapping)."""
    x = luma - cv2.GaussianBlur(luma, (0, 0), 3.0)
    x -= x.mean()
    return (x / max(float(np.linalg.norm(x)), 1e-9)).ravel()


@pytest.mark.parametrize(
    ("kind", "side", "codec", "pix_fmt", "tags"),
    [
        ("hevc-gop2", "hdr", "hevc", "yuv420p10le", ("BT2020", "SMPTE2084", "BT2020_NCL")),
        ("hevc-gop2", "sdr", "h264", "yuv420p", ("BT709", "BT709", "BT709")),
        ("av1", "hdr", "av1", "yuv420p10le", ("BT2020", "SMPTE2084", "BT2020_NCL")),
        ("av1", "sdr", "av1", "yuv420p", ("BT709", "BT709", "BT709")),
    ],
)
def test_stream_is_encoded_as_promised(
    rendered: dict, kind: str, side: str, codec: str, pix_fmt: str, tags: tuple[str, str, str]
) -> None:
    info = rendered[kind]
    cc, keys, types, _ = _read(info[side])
    assert cc.name == ("libdav1d" if codec == "av1" else codec)  # the decoder PyAV picked for the stream
    assert (cc.width, cc.height) == SIZE
    assert cc.format.name == pix_fmt
    got = probe(info[side])
    assert (got.color_primaries, got.color_trc, got.color_matrix, got.color_range) == (
        {"BT2020": "bt2020", "BT709": "bt709"}[tags[0]],
        {"SMPTE2084": "smpte2084", "BT709": "bt709"}[tags[1]],
        {"BT2020_NCL": "bt2020nc", "BT709": "bt709"}[tags[2]],
        "limited",
    )
    if side == "hdr":  # HDR10 static metadata: the mastering display and the light level the renderer wrote
        assert got.mastering_display is not None and round(got.mastering_display.max_luminance) == 1000
        assert got.content_light_level is not None and got.content_light_level.max_cll == 1000
    frames = info[f"{side}_frames"]
    assert len(types) == frames
    keyint = sources.KINDS[kind].keyint
    assert keys[0] == 0 and max(np.diff(keys)) <= keyint, keys
    assert keyint in np.diff(keys).tolist(), keys  # the GOP length itself where no cut shortens it
    if codec != "av1":  # x265 and x264 insert a keyframe at each hard cut (SVT-AV1 at preset 12 does not)
        shift = 0 if side == "hdr" else sources.OFFSET_FRAMES
        assert all(cut - shift in keys for cut in info["cuts_hdr"]), (keys, info["cuts_hdr"])
        assert types.count("B") > frames // 4, types  # B-frames on, both encoders


def test_title_has_cuts_and_both_speeds(rendered: dict) -> None:
    info = rendered["hevc-gop2"]
    shots = info["shots"]
    assert len(shots) >= 2 and len(info["cuts_hdr"]) == len(shots) - 1
    assert all(a["image"] != b["image"] for a, b in itertools.pairwise(shots))
    assert {s["fast"] for s in shots} == {True, False}
    assert all(s["frames"] >= 3 * 24 for s in shots[:-1])


def test_sdr_shows_the_hdr_frame_offset_frames_later(rendered: dict) -> None:
    """SDR frame k matches HDR frame k + OFFSET_FRAMES best among HDR frames k .. k + 2 * OFFSET_FRAMES (in the
    first shot, a fast pan, where neighbouring frames differ)."""
    info = rendered["hevc-gop2"]
    _, _, _, hdr = _read(info["hdr"])
    _, _, _, sdr = _read(info["sdr"])
    offset = sources.OFFSET_FRAMES
    first_cut = info["cuts_hdr"][0]
    for k in range(2, first_cut - 3 * offset, 7):
        s = _structure(sdr[k])
        scores = [float(s @ _structure(hdr[j])) for j in range(k, k + 2 * offset + 1)]
        assert int(np.argmax(scores)) == offset, (k, scores)
