"""The build's fast paths give the same answers as the slow ones: region conversion, kept frames, keyframe alignment."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from datakit.color.ycbcr import PlaneConverter
from datakit.io.reader import Frame, VideoReader
from datakit.pairs.build import build_dataset
from datakit.pairs.retain import FrameStore
from datakit.recipes import shipped_recipe
from datakit.store import read_manifest
from tests.conftest import SMALL


class _Plane(bytes):
    """A code plane as PyAV exposes it: a buffer with height, width and line size."""


def _plane(array: np.ndarray) -> _Plane:
    plane = _Plane(np.ascontiguousarray(array).tobytes())
    plane.height, plane.width = array.shape
    plane.line_size = array.shape[1] * array.itemsize
    return plane


class _AvFrame:
    def __init__(self, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
        self.planes = [_plane(y), _plane(u), _plane(v)]
        self.height, self.width = y.shape
        self.pts = 0


@pytest.mark.parametrize("siting", ["left", "center", "topleft", "top", "bottomleft", "bottom"])
@pytest.mark.parametrize(("bits", "full_range", "chroma"), [(10, False, (2, 2)), (8, False, (2, 2)), (8, True, (1, 2))])
def test_region_conversion_equals_whole_frame_conversion(siting, bits, full_range, chroma):
    rng = np.random.default_rng(bits + len(siting))
    height, width = 70, 94
    dtype = np.uint16 if bits == 10 else np.uint8
    y = rng.integers(0, 1 << bits, (height, width)).astype(dtype)
    u, v = (rng.integers(0, 1 << bits, (height // chroma[0], width // chroma[1])).astype(dtype) for _ in "uv")
    frame = Frame(_AvFrame(y, u, v), 0, 0.0, PlaneConverter("bt2020nc", bits, full_range, siting), gray=False)
    for out in ("uint16", "uint8", "float32"):
        whole = frame.rgb(out)
        for _ in range(40):
            w, h = int(rng.integers(1, width + 1)), int(rng.integers(1, height + 1))
            x, y0 = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            assert np.array_equal(frame.rgb(out, box=(x, y0, w, h)), whole[y0 : y0 + h, x : x + w]), (x, y0, w, h)
    with pytest.raises(ValueError):
        frame.rgb("uint16", box=(90, 0, 10, 10))


@pytest.fixture(scope="module")
def keyint_pair(tmp_path_factory):
    """Small letterboxed pair encoded with a keyframe every 8 frames (the sparse path aligns on keyframes)."""
    from datakit.samples import DemoSpec, make_demo_pair

    spec = DemoSpec(sdr_size=(224, 168), offset_frames=7, keyint=8, **SMALL)
    return make_demo_pair(tmp_path_factory.mktemp("demo_keyint"), spec)


def test_keyframes_decodes_only_keyframes_and_resets(keyint_pair):
    with VideoReader(keyint_pair.hdr) as reader:
        indices = [f.index for f in reader.keyframes(1.0, 3.0)]
        assert indices == [24, 32, 40, 48, 56, 64]
        first = [f.index for f in reader.keyframes()]
        assert first[:3] == [0, 8, 16] and all(i % 8 == 0 for i in first)
        assert [f.index for f in reader.read_at([3, 50])] == [3, 50]  # the reader decodes every frame again


def test_frame_store_keeps_what_is_wanted_and_decodes_the_rest(keyint_pair):
    with VideoReader(keyint_pair.sdr) as reader, VideoReader(keyint_pair.sdr) as fresh:
        first = next(iter(fresh))
        size = sum(p.nbytes for p in first.planes())
        store = FrameStore(reader, ring_bytes=5 * size, keep_bytes=3 * size)
        store.want([2])
        for frame in reader.frames():
            store.offer(frame)
            if frame.index == 30:
                store.want([27, 20, 31])  # 27 is still in the ring, 20 is gone, 31 is ahead
        store.end_pass()
        got = store.get([2, 27, 31, 20])
        assert store.redecoded == 1 and [f.index for f in got] == [2, 27, 31, 20]
        for frame, again in zip(got, fresh.read_at([2, 27, 31, 20]), strict=True):
            for a, b in zip(frame.planes(), again.planes(), strict=True):
                assert np.array_equal(a, b)
        # over budget: a fourth frame is not kept, it is decoded again when asked for
        store.want([40])
        store.get([40])
        assert store.redecoded == 2


def test_dense_build_is_the_same_with_and_without_kept_frames(demo_pair, tmp_path, monkeypatch):
    pairs = tmp_path / "pairs.toml"
    pairs.write_text(f'[[pair]]\nid = "demo"\nsplit = "train"\nhdr = "{demo_pair.hdr}"\nsdr = "{demo_pair.sdr}"\n')
    kept = build_dataset(shipped_recipe("hdrtvmf1k"), pairs, tmp_path / "kept", report=False)
    monkeypatch.setenv("DATAKIT_FRAME_MEMORY_MB", "0")
    again = build_dataset(shipped_recipe("hdrtvmf1k"), pairs, tmp_path / "again", report=False)
    assert kept["sources"]["demo"]["frames_decoded_again"] == {"sdr": 0, "hdr": 0}
    assert again["sources"]["demo"]["frames_decoded_again"]["hdr"] >= 30
    a, b = read_manifest(tmp_path / "kept"), read_manifest(tmp_path / "again")
    assert [r["content_hash"] for r in a] == [r["content_hash"] for r in b] and len(a) == 12


SPARSE = """
[recipe]
name = "sparse-keyframes"
kind = "paired"
[clips]
strategy = "interval"
frames = 3
every_seconds = 0.8
margin = 2
[tiles.train]
strategy = "grid"
size = 96
step = 96
remainder = 16
"""


def _sparse_build(pair, tmp_path: Path) -> tuple[dict, list[dict]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    recipe = tmp_path / "sparse.toml"
    recipe.write_text(SPARSE)
    pairs = tmp_path / "pairs.toml"
    pairs.write_text(f'[[pair]]\nid = "p"\nsplit = "train"\nhdr = "{pair.hdr}"\nsdr = "{pair.sdr}"\n')
    summary = build_dataset(recipe, pairs, tmp_path / "out", report=False)
    return summary["sources"]["p"], read_manifest(tmp_path / "out")


def test_sparse_build_aligns_on_keyframes(keyint_pair, tmp_path):
    status, records = _sparse_build(keyint_pair, tmp_path)
    truth = keyint_pair.truth_data
    alignment = status["alignment"]
    assert alignment["method"] == "sparse (keyframes)"
    assert alignment["offset_frames"] == truth["offset_frames"] == 7
    assert np.allclose(alignment["sdr_picture"], truth["sdr_picture"], atol=2)
    assert alignment["confidence"] >= 0.9
    assert records and all(r["hdr_frames"] == [f + 7 for f in r["sdr_frames"]] for r in records)


def test_sparse_build_at_a_frame_rate_mismatch_uses_dense_windows(tmp_path):
    """Keyframes pin an offset to about a frame when SDR frames fall between HDR frames: windows are decoded."""
    from datakit.samples import DemoSpec, make_demo_pair

    spec = DemoSpec(sdr_size=(256, 144), fps_sdr=Fraction(25), offset_frames=5, keyint=8, **SMALL)
    pair = make_demo_pair(tmp_path / "media", spec)
    status, records = _sparse_build(pair, tmp_path)
    assert status["alignment"]["method"] == "sparse (windows)"
    times = json.loads(pair.truth.read_text())["sdr_frame_hdr_time"]  # HDR time each SDR frame shows
    assert records
    for record in records:
        for s, h in zip(record["sdr_frames"], record["hdr_frames"], strict=True):
            assert abs(h - times[s] * 24) <= 0.75, (s, h, times[s] * 24)


def test_keyframe_times_are_presentation_times(keyint_pair):
    with VideoReader(keyint_pair.hdr) as reader:
        times = reader.keyframe_times()
        decoded = [f.time for f in reader.keyframes()]
    assert np.allclose(times, decoded) and np.allclose(np.diff(times), 8 / 24)


def test_sparse_clips_snap_to_hdr_keyframes_when_asked(keyint_pair, tmp_path):
    _, plain = _sparse_build(keyint_pair, tmp_path / "plain")
    recipe_text = SPARSE.replace("margin = 2\n", "margin = 2\nsnap_to_keyframes = true\n")
    (tmp_path / "snap").mkdir()
    recipe = tmp_path / "snap" / "sparse.toml"
    recipe.write_text(recipe_text)
    pairs = tmp_path / "snap" / "pairs.toml"
    pairs.write_text(f'[[pair]]\nid = "p"\nsplit = "train"\nhdr = "{keyint_pair.hdr}"\nsdr = "{keyint_pair.sdr}"\n')
    status = build_dataset(recipe, pairs, tmp_path / "snap" / "out", report=False)["sources"]["p"]
    assert status["frames_decoded_again"]["sdr"] == 0  # the moved clips' SDR frames were kept from the windows
    snapped = read_manifest(tmp_path / "snap" / "out")
    firsts = {r["hdr_frames"][0] for r in snapped}
    assert firsts and all(h % 8 == 0 for h in firsts)  # every clip starts on a keyframe (one every 8 frames)
    assert all(r["hdr_frames"] == [f + 7 for f in r["sdr_frames"]] for r in snapped)
    plain_firsts = {r["hdr_frames"][0] for r in plain}
    assert abs(len(firsts) - len(plain_firsts)) <= 1 and any(h % 8 for h in plain_firsts)
