"""The dense build's speed-ups change nothing they should not: the pair-level not_hdr gate on frames the analysis
decodes anyway (dense and sparse), and the shards/manifest a dense build writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from datakit.pairs.build import frame_memory_bytes
from datakit.pairs.schema import PAIRED_SCHEMA
from datakit.recipe import load_recipe
from datakit.recipes import shipped_recipe
from tests.conftest import hable_sdr_chain


def _recipe(name: str) -> dict:
    return load_recipe(shipped_recipe(name), {"paired": PAIRED_SCHEMA}, expected_kind="paired")


def _analyse(recipe: dict, hdr: Path, sdr: Path):
    from datakit.io.reader import VideoReader
    from datakit.pairs.build import SPARSE_STRATEGIES
    from datakit.pairs.dense import analyse_dense
    from datakit.pairs.sparse import analyse_sparse

    analyse = analyse_sparse if recipe["clips"]["strategy"] in SPARSE_STRATEGIES else analyse_dense
    with VideoReader(hdr, encoding="pq", threads=1) as h, VideoReader(sdr, encoding="sdr", threads=1) as s:
        return analyse(recipe, s, h, memory_bytes=frame_memory_bytes())


def _short_gop_spec():
    from datakit.samples import DemoSpec

    return DemoSpec(
        hdr_size=(256, 144),
        sdr_size=(304, 162),
        scene_frames=(30, 36, 28, 40, 32),
        keyint=12,
        offset_frames=9,
        preset="ultrafast",
    )


@pytest.fixture(scope="module")
def short_gop_pair(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(real HDR10, SDR-in-PQ HDR10, SDR) with a keyframe every 12 frames (a sparse pass decodes several):
    the SDR is a Hable grade (not the demo's chain), pillarboxed and larger than the HDR; the SDR-in-PQ file
    holds that grade mapped into PQ by BT.2408 (white at 203 cd/m^2)."""
    from datakit.color.transfer import st2084_inverse_eotf
    from datakit.io.metadata import ContentLightLevel
    from datakit.io.reader import VideoReader
    from datakit.io.writer import HDR10Writer
    from datakit.samples import make_demo_pair
    from datakit.synth.itm import bt2408_display_mapping

    pair = make_demo_pair(tmp_path_factory.mktemp("short_gop"), _short_gop_spec(), sdr_chain=hable_sdr_chain)
    folder = tmp_path_factory.mktemp("sdr_in_pq")
    with VideoReader(pair.hdr, encoding="pq") as reader:
        fps = reader.info.fps
        frames = [hable_sdr_chain(f.rgb("float32")) for f in reader]
    height, width = frames[0].shape[:2]
    fake = folder / "fake_hdr10.mkv"
    with HDR10Writer(
        fake, width, height, fps, preset="ultrafast", light_level=ContentLightLevel(0, 0),
        x265_params={"keyint": 12, "min-keyint": 12},
    ) as writer:  # fmt: skip
        for rgb_sdr in frames:
            writer.write(np.clip(st2084_inverse_eotf(bt2408_display_mapping(rgb_sdr)), 0, 1).astype(np.float32))
    return pair.hdr, fake, pair.sdr


@pytest.mark.parametrize("recipe_name", ["hdrtvmf1k", "kpnmfi"])
def test_not_hdr_gate_on_the_analysis_frames(recipe_name, short_gop_pair):
    """The gate's verdict from the statistics the analysis took (no decode of its own) is right on a real HDR10
    title and on SDR in a PQ container; the dense pass's statistics are those of the gate's own decode."""
    from datakit.audit.hdr_range import TITLE_FRAMES, sdr_in_pq_status, video_hdr_stats
    from datakit.io.probe import probe

    real_hdr, fake_hdr, sdr = short_gop_pair
    recipe = _recipe(recipe_name)
    limits = {k: recipe["gates"][k] for k in ("min_peak_nits", "min_share_above_white")}
    real = _analyse(recipe, real_hdr, sdr)
    fake = _analyse(recipe, fake_hdr, sdr)
    assert real.hdr_stats is not None and fake.hdr_stats is not None
    assert real.hdr_stats[1] == fake.hdr_stats[1] == TITLE_FRAMES
    assert sdr_in_pq_status(real_hdr, probe(real_hdr), limits, real.hdr_stats) == {}
    status = sdr_in_pq_status(fake_hdr, probe(fake_hdr), limits, fake.hdr_stats)
    assert status["verdict"].startswith("looks like SDR in a PQ container: peak")
    assert status["not_hdr_evidence"]["p9999_nits"] < limits["min_peak_nits"] <= real.hdr_stats[0]["p9999_nits"]
    if recipe_name == "hdrtvmf1k":  # the dense pass sees every frame: the same spread frames, the same numbers
        assert real.hdr_stats == video_hdr_stats(real_hdr)
        assert fake.hdr_stats == video_hdr_stats(fake_hdr)


def build_digest(hdr: Path, sdr: Path, out: Path) -> tuple[str, int]:
    """A dense (HDRTVMF1K) build of the pair as a test split (whole frames): sha256 over every record's id,
    frames, crop, score, temporal margin and content hash, after checking that the shard holds arrays of that
    hash; and the number of samples."""
    import hashlib
    import json

    from datakit.pairs.build import build_dataset
    from datakit.store import ShardReader, read_manifest
    from datakit.store.shards import content_hash

    pairs = out.parent / "pairs.toml"
    pairs.write_text(f'[[pair]]\nid = "title"\nsplit = "test"\nhdr = "{hdr}"\nsdr = "{sdr}"\n')
    build_dataset(shipped_recipe("hdrtvmf1k"), pairs, out, report=False)
    digest = hashlib.sha256()
    records = read_manifest(out)
    for record in records:
        sdr_tile, hdr_tile = ShardReader(out / record["shard"]).arrays(record["index"])
        assert content_hash(sdr_tile, hdr_tile) == record["content_hash"]
        keys = ("sample_id", "sdr_frames", "hdr_frames", "crop", "score", "content_hash")
        fields = [record[k] for k in keys] + [record["meta"]["temporal_margin"]]
        digest.update(json.dumps(fields).encode())
    return digest.hexdigest(), len(records)


# build_digest of short_gop_pair computed by the code before the dense speed-ups (commit 71f5e89)
REFERENCE_DIGEST = ("f814b3670969f3008d5f8ce8a26715544270b232dbafcb103a2e76e983864773", 4)


def test_dense_build_outputs_equal_those_before_the_speed_ups(short_gop_pair, tmp_path):
    """The speed-ups of the dense analysis (features, provisional alignment, passes) change no sample: every id,
    frame number, crop, score and array is the one the code before them wrote."""
    real_hdr, _, sdr = short_gop_pair
    digest, count = build_digest(real_hdr, sdr, tmp_path / "out")
    assert count >= 3
    assert (digest, count) == REFERENCE_DIGEST


def test_read_ahead_keeps_order_raises_in_order_and_stops_with_its_consumer():
    """The pass's decoder thread: items in order, the producer's error after the items before it, and a consumer
    that stops early stops the producer within ``depth`` items (no thread left decoding a whole title)."""
    import threading

    from datakit.errors import InputError
    from datakit.pairs.analysis import read_ahead

    def failing():
        yield from range(5)
        raise InputError("decoding failed after frame 4")

    got = []
    with pytest.raises(InputError, match="after frame 4"):
        for item in read_ahead(failing(), depth=2):
            got.append(item)
    assert got == [0, 1, 2, 3, 4]

    produced = []

    def endless():
        for i in range(10**9):
            produced.append(i)
            yield i

    before = threading.active_count()
    for item in read_ahead(endless(), depth=3):
        if item == 10:
            break
    assert threading.active_count() == before  # the producer has finished
    assert 11 <= len(produced) <= 11 + 3 + 2


def test_snapshot_since_is_the_recent_part_of_the_whole(short_gop_pair):
    """A collector's snapshot from a time on (the provisional alignment's window) holds the same frames, lumas
    and profiles as the whole snapshot from the last profiled frame at or before that time."""
    from datakit.io.reader import VideoReader
    from datakit.pairs.analysis import ThumbnailCollector

    with VideoReader(short_gop_pair[0], encoding="pq") as reader:
        collector = ThumbnailCollector(reader, luma_width=32, profile_step=10)
        for frame in reader.frames():
            collector.add(frame)
    whole = collector.snapshot()
    part = collector.snapshot(since=float(whole.times[37]))
    first = 30  # frames 0, 10, 20, 30... are profiled: the part starts at the last one before frame 37
    assert part.indices.tolist() == whole.indices[first:].tolist()
    assert np.array_equal(part.luma, whole.luma[first:])
    assert part.profile_rows.tolist() == (whole.profile_rows[3:] - first).tolist()
    assert np.array_equal(part.row_profile, whole.row_profile[3:])
