"""Sparse builds give the same shards whichever way the frames are reached: a seek to the keyframe before every
target, one forward pass that skips non-reference pictures, or the cost model between them; the SDR stage of the
clip loop ahead in its own thread or in step with the HDR stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from datakit.io import reader as reader_module
from datakit.pairs import build as build_module
from datakit.pairs.build import build_dataset
from datakit.store import read_manifest
from datakit.store.shards import ShardReader

# Clips every 0.5 s on 0.5 s GOPs with B-frames (veryfast: x264 3, x265 4 B-frames): the ratio of streaming
# titles' clips every 2 s on 2 s GOPs, small and short enough for a test.
RECIPE = """
[recipe]
name = "sparse-speedups"
kind = "paired"
[clips]
strategy = "{strategy}"
frames = {frames}
every_seconds = 0.5
margin = 2
[tiles.train]
strategy = "grid"
size = 96
step = 80
remainder = 16
"""

PATHS = {  # (SEEK_MIN_FRAMES, _SDR_AHEAD)
    "seek": (1, 0),  # seek whenever a keyframe lies between the position and the target, stages in step
    "forward": (10**6, 2),  # never seek forward: decode on, skipping non-reference pictures before targets
    "default": (reader_module.SEEK_MIN_FRAMES, build_module._SDR_AHEAD),
}


@pytest.fixture(scope="module")
def gop_pair(tmp_path_factory):
    from datakit.samples import DemoSpec, make_demo_pair

    spec = DemoSpec(
        hdr_size=(256, 144), sdr_size=(256, 144), scene_frames=(44, 60, 52), keyint=12, preset="veryfast",
        offset_frames=5,
    )  # fmt: skip
    return make_demo_pair(tmp_path_factory.mktemp("gop_pair"), spec)


def _build(pair, folder: Path, strategy: str, frames: int, path: str, monkeypatch) -> tuple[dict, list[dict]]:
    seek_min, ahead = PATHS[path]
    monkeypatch.setattr(reader_module, "SEEK_MIN_FRAMES", seek_min)
    monkeypatch.setattr(build_module, "_SDR_AHEAD", ahead)
    folder.mkdir(parents=True)
    recipe = folder / "recipe.toml"
    recipe.write_text(RECIPE.format(strategy=strategy, frames=frames))
    pairs = folder / "pairs.toml"
    pairs.write_text(f'[[pair]]\nid = "p"\nsplit = "train"\nhdr = "{pair.hdr}"\nsdr = "{pair.sdr}"\n')
    summary = build_dataset(recipe, pairs, folder / "out", report=False)
    return summary["sources"]["p"], read_manifest(folder / "out")


def _arrays(folder: Path, records: list[dict]) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for record in records:
        shard = ShardReader(folder / "out" / record["shard"])
        try:
            out.append(shard.arrays(record["index"]))
        finally:
            shard.close()
    return out


@pytest.mark.parametrize(("strategy", "frames", "paths"), [("interval", 3, ("seek", "forward", "default")),
                                                           ("single", 1, ("seek", "default"))])  # fmt: skip
def test_sparse_build_is_the_same_on_every_decoding_path(gop_pair, tmp_path, monkeypatch, strategy, frames, paths):
    built = {path: _build(gop_pair, tmp_path / path, strategy, frames, path, monkeypatch) for path in paths}
    status, records = built["seek"]
    assert len(records) >= 40 and status["clips_kept"] >= 8  # enough clips for a wrong frame to show
    reference = _arrays(tmp_path / "seek", records)
    for path in paths[1:]:
        other_status, other_records = built[path]
        assert other_records == records, path  # ids, frames, crops, hashes, scores, margins: every field
        for (sdr, hdr), (sdr2, hdr2) in zip(reference, _arrays(tmp_path / path, other_records), strict=True):
            assert np.array_equal(sdr, sdr2) and np.array_equal(hdr, hdr2), path
        for key in ("rejected", "clips_kept", "clips_moved_in_time", "alignment", "frames_decoded_again"):
            assert other_status[key] == status[key], (path, key)
    if "forward" in built:  # the paths really differ: the forward pass does not seek to the clips
        clip_seeks = built["seek"][0]["decoding"]["hdr"]["seeks"]
        assert built["forward"][0]["decoding"]["hdr"]["seeks"] < clip_seeks
        assert built["forward"][0]["decoding"]["hdr"]["pictures"] > built["seek"][0]["decoding"]["hdr"]["pictures"]
