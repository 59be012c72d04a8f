"""`datakit synth` end to end on the committed 256x128 copies of the CC0 HDR images (tests/data/hdri)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from datakit.cli import main
from datakit.color.transfer import st2084_eotf
from datakit.errors import RecipeError
from datakit.recipe import load_recipe
from datakit.store import ShardReader, read_manifest, verify_output
from datakit.synth.build import regenerate_sample, synth_dataset
from datakit.synth.schema import SYNTH_SCHEMA

HDRI = Path(__file__).parent / "data" / "hdri"

RECIPE = """
[recipe]
name = "unit"
kind = "synthetic"

[source]
kind = "{kind}"
ldr_policy = "{policy}"

[clips]
lengths = [3]
per_source = 1
tile = {tile}

[split]
test_sources = ["night"]

[ranges.codec]
crf = [20, 24]
preset = ["ultrafast"]
"""


def recipe(tmp_path: Path, *, kind: str = "images", policy: str = "refuse", tile: int = 64, extra: str = "") -> Path:
    path = tmp_path / f"recipe-{kind}-{policy}-{tile}.toml"
    path.write_text(RECIPE.format(kind=kind, policy=policy, tile=tile) + extra)
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    for name in ("sunrise", "night", "studio"):
        shutil.copy(HDRI / f"{name}.exr", folder)
    return folder


@pytest.fixture(scope="module")
def built(images, tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("synth")
    out = tmp / "out"
    synth_dataset(recipe(tmp), out, images=str(images), seed=7, report=False)
    return out, tmp


def test_output_is_valid_pq_with_highlights(built):
    out, _ = built
    records = read_manifest(out)
    assert len(records) == 3
    assert {r["split"] for r in records} == {"train", "test"}
    assert verify_output(out, progress=False)["problems"] == []
    peaks = {}
    for record in records:
        reader = ShardReader(out / record["shard"])
        sdr, hdr = reader.arrays(record["index"])
        assert sdr.shape == hdr.shape == (3, 64, 64, 3)
        nits = st2084_eotf(hdr.astype(np.float32) / 65535)
        assert nits.min() >= 0 and nits.max() <= 10000.0
        peaks[record["source_id"]] = float(nits.max())
        meta = record["meta"]
        assert meta["degradation"]["tonemap"] and len(meta["trajectory"]) == 3
    # every synthetic clip is above SDR reference white somewhere: real HDR content survived warping and scaling
    assert max(peaks.values()) > 203.0


def test_targets_within_their_drawn_mastering_peaks(built, tmp_path, images):
    """The manifest records peak, grade, ST 2086, MaxCLL/MaxFALL, operator and codec; no pixel above the peak."""
    from datakit.synth.params import CODECS
    from datakit.synth.tonemap import TONEMAP_OPERATORS

    out, _ = built
    for record in read_manifest(out):
        grade, degradation = record["meta"]["mastering"], record["meta"]["degradation"]
        assert grade["grade"] in ("bt2390_eetf", "aces2") and grade["peak_nits"] in (1000.0, 2000.0, 4000.0)
        assert grade["st2086"]["max_luminance"] == grade["peak_nits"]
        assert degradation["tonemap"] in TONEMAP_OPERATORS and degradation["codec"] in CODECS
        _sdr, hdr = ShardReader(out / record["shard"]).arrays(record["index"])
        nits = st2084_eotf(hdr.astype(np.float64) / 65535)
        assert nits.max() <= grade["peak_nits"]
        assert grade["max_cll"] == round(float(nits.max())) and grade["max_fall"] <= grade["max_cll"]
    # Scene-light targets stay available as an explicit choice.
    scene = recipe(tmp_path, extra='\n[ranges.mastering]\nweights = ["scene"]\n')
    synth_dataset(scene, tmp_path / "scene", images=str(images), seed=7, report=False)
    records = read_manifest(tmp_path / "scene")
    assert {r["meta"]["mastering"]["grade"] for r in records} == {"scene"}
    hdrs = [ShardReader(tmp_path / "scene" / r["shard"]).arrays(r["index"])[1] for r in records]
    peaks = [float(st2084_eotf(h.astype(np.float64) / 65535).max()) for h in hdrs]
    assert max(peaks) > 4000.0  # the sun of sunrise.exr, beyond any mastering display


def test_same_seed_same_bytes_other_seed_differs(built, images):
    out, tmp = built
    again = tmp / "again"
    synth_dataset(recipe(tmp), again, images=str(images), seed=7, workers=2, report=False)
    first = {r["sample_id"]: r["content_hash"] for r in read_manifest(out)}
    second = {r["sample_id"]: r["content_hash"] for r in read_manifest(again)}
    assert first == second
    other = tmp / "other"
    synth_dataset(recipe(tmp), other, images=str(images), seed=8, report=False)
    third = {r["sample_id"]: r["content_hash"] for r in read_manifest(other)}
    assert set(third) == set(first) and all(third[k] != first[k] for k in first)


def test_sample_regenerates_from_its_manifest_line(built, images):
    out, tmp = built
    record = read_manifest(out)[0]
    validated = load_recipe(recipe(tmp), {"synthetic": SYNTH_SCHEMA})
    sample = regenerate_sample(record, validated, images / record["meta"]["source_file"])
    reader = ShardReader(out / record["shard"])
    sdr, hdr = reader.arrays(record["index"])
    np.testing.assert_array_equal(sample.sdr, sdr)
    np.testing.assert_array_equal(sample.hdr, hdr)


def test_resume_redoes_only_unfinished_sources(built, images):
    out, tmp = built
    copy = tmp / "resume"
    shutil.copytree(out, copy)
    (copy / "parts" / "studio.json").unlink()  # as if interrupted before studio was published
    before = {p.name: p.stat().st_mtime_ns for p in (copy / "shards").rglob("*.h5")}
    synth_dataset(recipe(tmp), copy, images=str(images), seed=7, report=False)
    after = {p.name: p.stat().st_mtime_ns for p in (copy / "shards").rglob("*.h5")}
    assert (copy / "manifest.jsonl").read_text() == (out / "manifest.jsonl").read_text()
    changed = {name for name in after if before.get(name) != after[name]}
    assert changed and all(name.startswith("studio-") for name in changed)


def test_other_recipe_in_same_folder_is_refused(built, images, capsys):
    out, tmp = built
    code = main(["synth", str(recipe(tmp, tile=32)), "--images", str(images), "--out", str(out), "--seed", "7"])
    assert code == 2
    assert "another recipe" in capsys.readouterr().err


def test_ldr_image_refused_or_warned(tmp_path, images):
    ldr_dir = tmp_path / "ldr"
    ldr_dir.mkdir()
    from tests.data.make_fixtures import write_exr

    rng = np.random.default_rng(0)
    write_exr(ldr_dir / "flat.exr", np.clip(rng.random((128, 256, 3)) * 0.8, 0, 1).astype(np.float32))
    summary = synth_dataset(recipe(tmp_path), tmp_path / "refuse", images=str(ldr_dir), report=False)
    assert summary["failed_sources"] == ["flat"] and "LDR" in summary["sources"]["flat"]["error"]
    summary = synth_dataset(recipe(tmp_path, policy="warn"), tmp_path / "warn", images=str(ldr_dir), report=False)
    assert summary["samples"] == 1 and "LDR" in summary["sources"]["flat"]["warnings"][0]


def test_image_smaller_than_tile_fails_that_source_only(tmp_path, images):
    summary = synth_dataset(recipe(tmp_path, tile=200), tmp_path / "big", images=str(images), report=False)
    assert set(summary["failed_sources"]) == {"sunrise", "night", "studio"}
    assert "smaller" in summary["sources"]["night"]["error"] or "tile" in summary["sources"]["night"]["error"]


def test_invalid_recipe_ranges(tmp_path, images, capsys):
    bad = recipe(tmp_path, extra="\n[ranges.exposure]\nev_range = [2.0, -2.0]\n")
    with pytest.raises(RecipeError, match="ev_range"):
        load_recipe(bad, {"synthetic": SYNTH_SCHEMA})
    assert main(["synth", str(bad), "--images", str(images), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ev_range" in err[0]
    unknown = recipe(tmp_path, extra="\n[clips2]\nx = 1\n")
    with pytest.raises(RecipeError, match="unknown section"):
        load_recipe(unknown, {"synthetic": SYNTH_SCHEMA})


def test_sdr_video_branch(tmp_path):
    from datakit.io.writer import SDRWriter

    video = tmp_path / "videos" / "clip.mp4"
    video.parent.mkdir()
    rng = np.random.default_rng(1)
    base = (rng.random((96, 160, 3)) * 200 + 20).astype(np.uint8)
    base[:, ::8] = 255  # SDR peak white columns: every tile holds some
    with SDRWriter(video, 160, 96, 25, crf=18, preset="ultrafast") as writer:
        for i in range(30):
            writer.write(np.roll(base, i, axis=1))
    summary = synth_dataset(
        recipe(tmp_path, kind="sdr_video", extra=""), tmp_path / "out", videos=str(video.parent), report=False
    )
    assert summary["samples"] >= 1 and not summary["failed_sources"]
    record = read_manifest(tmp_path / "out")[0]
    assert record["meta"]["itm"] == "bt2446c"
    assert record["meta"]["mastering"]["grade"] in ("bt2390_eetf", "aces2")
    reader = ShardReader(tmp_path / "out" / record["shard"])
    _sdr, hdr = reader.arrays(record["index"])
    nits = st2084_eotf(hdr.astype(np.float32) / 65535)
    assert nits.max() > 203.0  # BT.2446-C lifts SDR white (100 nits) well above reference white


def test_preview_sheet_is_a_png(built):
    out, _ = built
    assert main(["preview", str(out), "--n", "2"]) == 0
    data = (out / "preview.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "summary.json").read_text())["samples"] == 3
    from datakit.report.preview import describe

    meta = read_manifest(out)[0]["meta"]
    lines = describe(meta)  # the sheet's text: the mastering peak and the operator of each sample
    assert f"peak {meta['mastering']['peak_nits']:g} cd/m2" in lines[0]
    assert lines[1].startswith(f"tonemap {meta['degradation']['tonemap']} ")


def test_pq_png_and_hdr10_video_frames_are_absolute_sources(tmp_path, demo_pair):
    """16-bit PQ PNG and HDR10 video frames carry absolute cd/m^2: no random rescaling, highlights kept."""
    from datakit.color.transfer import st2084_inverse_eotf
    from datakit.io.images import read_hdr_image, write_png16_pq

    folder = tmp_path / "sources"
    folder.mkdir()
    rgb = read_hdr_image(HDRI / "sunrise.exr").rgb_linear
    nits = rgb * np.float32(100.0 / np.median(rgb))
    write_png16_pq(folder / "sunrise_pq.png", st2084_inverse_eotf(np.minimum(nits, 10000.0)))
    shutil.copy(demo_pair.hdr, folder / "movie.mp4")
    out = tmp_path / "out"
    summary = synth_dataset(recipe(tmp_path), out, images=str(folder), report=False)
    assert not summary["failed_sources"]
    records = read_manifest(out)
    ids = {r["source_id"] for r in records}
    assert "sunrise_pq" in ids and {"movie-f0001000", "movie-f0003000"} <= ids  # one frame every 2 s
    for record in records:
        assert record["meta"]["absolute_scale"]["method"] == "absolute"
    video = next(r for r in records if r["source_id"] == "movie-f0001000")
    assert video["meta"]["frame_time"] == 1.0
    assert summary["sources"]["movie-f0001000"]["peak_nits"] > 3000.0  # the demo's 4000 cd/m^2 sun at 1.0 s
    reader = ShardReader(out / video["shard"])
    _, hdr = reader.arrays(video["index"])
    assert st2084_eotf(hdr.astype(np.float32) / 65535).max() <= 10000.0


def test_shipped_recipes_grade_and_draw_the_whole_family():
    from datakit.recipes import shipped_recipe
    from datakit.synth.params import CODECS, resolve_ranges
    from datakit.synth.tonemap import TONEMAP_OPERATORS

    for name in ("synthetic_hdri", "synthetic_sdr_video"):
        ranges = resolve_ranges(load_recipe(shipped_recipe(name), {"synthetic": SYNTH_SCHEMA})["ranges"])
        weights = ranges["mastering"]["weights"]
        assert weights["scene"] == 0 and weights["bt2390_eetf"] > 0 and weights["aces2"] > 0, name
        assert all(ranges["tonemap"]["weights"][op] > 0 for op in TONEMAP_OPERATORS), name
        assert ranges["codec"]["codec"] == list(CODECS) and ranges["codec"]["p"] == 1.0, name
    scene = resolve_ranges(load_recipe(shipped_recipe("synthetic_hdri_scene"), {"synthetic": SYNTH_SCHEMA})["ranges"])
    assert scene["mastering"]["weights"]["scene"] == 1.0 and scene["codec"]["codec"] == ["libx264"]
