"""`datakit build` end to end on encoded demo pairs: alignment, scenes, clips, tiles, shards, resume, bad pairs."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from datakit.cli import main
from datakit.pairs.build import build_dataset
from datakit.recipes import shipped_recipe
from datakit.samples import demo_sdr_chain
from datakit.store import ShardReader, read_manifest, verify_output


def pairs_file(folder: Path, rows: list[tuple[str, Path, Path, str]], hashes: dict | None = None) -> Path:
    lines = []
    for pair_id, hdr, sdr, split in rows:
        lines += ["[[pair]]", f'id = "{pair_id}"', f'split = "{split}"']
        extra = hashes.get(pair_id, "") if hashes else ""
        lines += [f'hdr = {{ path = "{hdr}"{extra} }}', f'sdr = "{sdr}"', ""]
    path = folder / "pairs.toml"
    path.write_text("\n".join(lines))
    return path


@pytest.fixture(scope="module")
def demo_build(demo_pair, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("build") / "out"
    pairs = pairs_file(out.parent, [("demo", demo_pair.hdr, demo_pair.sdr, "train")])
    build_dataset(shipped_recipe("hdrtvmf1k"), pairs, out)
    return out


def test_clips_never_cross_a_cut_and_follow_the_recipe(demo_build, demo_pair):
    truth = demo_pair.truth_data
    records = read_manifest(demo_build)
    assert len(records) == 3 * 4  # three scenes, one 10-frame clip each, four random 256 tiles
    summary = json.loads((demo_build / "summary.json").read_text())
    assert summary["sources"]["demo"]["cuts"] == truth["cuts_sdr"]
    bounds = [0, *truth["cuts_sdr"], truth["frames_sdr"]]
    for record in records:
        frames = record["sdr_frames"]
        assert len(frames) == 10 and frames == list(range(frames[0], frames[0] + 10))
        scene = [a <= frames[0] and frames[-1] < b for a, b in itertools.pairwise(bounds)]
        assert sum(scene) == 1, f"clip {frames} crosses a cut {truth['cuts_sdr']}"
        assert record["hdr_frames"] == [f + truth["offset_frames"] for f in frames]
        assert (record["frames"], record["height"], record["width"]) == (10, 256, 256)
    assert verify_output(demo_build, progress=False)["problems"] == []
    assert (demo_build / "report.html").is_file() and (demo_build / "report" / "hdr_luminance_histogram.png").is_file()


def test_sdr_and_hdr_tiles_show_the_same_picture(demo_build):
    """Tone-map each HDR tile with the demo's own SDR chain: it must match the SDR tile the builder aligned."""
    for record in read_manifest(demo_build)[::4]:
        reader = ShardReader(demo_build / record["shard"])
        sdr, hdr = reader.arrays(record["index"])
        expected = demo_sdr_chain(hdr.astype(np.float32) / 65535.0)
        got = sdr.astype(np.float32) / 255.0
        error = np.abs(expected - got)
        # SDR went through 0.875x scaling, H.264 and back to the HDR grid: small blur, no misregistration
        assert float(np.mean(error)) < 0.02, record["sample_id"]
        assert np.corrcoef(expected.ravel(), got.ravel())[0, 1] > 0.98
        shifted = np.abs(np.roll(expected, 3, axis=2) - got)
        assert float(np.mean(shifted)) > 1.5 * float(np.mean(error))  # a 3 px shift would be visible


def test_resume_gives_the_same_manifest(demo_build, demo_pair, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(demo_build, copy)
    (copy / "parts" / "demo.json").unlink()  # interrupted before the pair was published
    (copy / "manifest.jsonl").unlink()
    pairs = pairs_file(tmp_path, [("demo", demo_pair.hdr, demo_pair.sdr, "train")])
    build_dataset(shipped_recipe("hdrtvmf1k"), pairs, copy, report=False)
    assert (copy / "manifest.jsonl").read_text() == (demo_build / "manifest.jsonl").read_text()
    # a finished build reruns without redoing anything
    stamp = (copy / "parts" / "demo.json").stat().st_mtime_ns
    build_dataset(shipped_recipe("hdrtvmf1k"), pairs, copy, report=False)
    assert (copy / "parts" / "demo.json").stat().st_mtime_ns == stamp


def test_bad_pairs_are_reported_and_never_stop_the_others(demo_pair, demo_pair_other_title, tmp_path):
    from tests.test_io_writer_probe import _encode, _yuv420_10

    hlg = tmp_path / "hlg.mp4"
    _encode(
        hlg, "libx265", "yuv420p10le", [_yuv420_10()] * 3, color_primaries=9, color_trc=18, colorspace=9,
        color_range=1,
        options={"preset": "ultrafast", "x265-params": "colorprim=bt2020:transfer=arib-std-b67:log-level=error"},
    )  # fmt: skip
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(demo_pair.hdr.read_bytes()[:20000])
    other = demo_pair_other_title
    rows = [
        ("good", demo_pair.hdr, demo_pair.sdr, "test"),
        ("swapped", demo_pair.sdr, demo_pair.hdr, "train"),
        ("hlg", hlg, demo_pair.sdr, "train"),
        ("truncated", truncated, demo_pair.sdr, "train"),
        ("other_title", other.hdr, demo_pair.sdr, "train"),
        ("tampered", demo_pair.hdr, demo_pair.sdr, "train"),
    ]
    pairs = pairs_file(tmp_path, rows, hashes={"tampered": ', sha256 = "' + "0" * 64 + '"'})
    summary = build_dataset(shipped_recipe("hdrtvmf1k"), pairs, tmp_path / "out", report=False)
    assert summary["failed_sources"] == ["hlg", "other_title", "swapped", "tampered", "truncated"]
    errors = {k: summary["sources"][k]["error"] for k in summary["failed_sources"]}
    assert "HLG" in errors["hlg"]
    assert "confidence" in errors["other_title"]
    assert "SDR" in errors["swapped"] or "HDR10" in errors["swapped"]
    assert "sha256" in errors["tampered"]
    assert "truncated" in errors["truncated"] or "damaged" in errors["truncated"] or "not" in errors["truncated"]
    # the good pair went on, at full resolution as the recipe says for test pairs
    records = read_manifest(tmp_path / "out")
    assert {r["source_id"] for r in records} == {"good"}
    assert all(r["split"] == "test" and (r["height"], r["width"]) == (288, 512) for r in records)


def test_cli_refuses_bad_recipe_and_missing_pairs(tmp_path, capsys, demo_pair):
    bad = tmp_path / "bad.toml"
    bad.write_text('[recipe]\nname = "x"\nkind = "paired"\n[clips]\nframes = "ten"\n')
    assert main(["build", str(bad), "--pairs", str(demo_pair.hdr.parent), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "clips" in err[0] and "frames" in err[0]
    bad.write_text("this is [not toml")
    assert main(["build", str(bad), "--pairs", "x", "--out", str(tmp_path / "o")]) == 2
    assert "TOML" in capsys.readouterr().err
    recipe = str(shipped_recipe("hdrtvmf1k"))
    assert main(["build", recipe, "--pairs", str(tmp_path / "none.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err


def test_source_manifest_round_trip(demo_pair, tmp_path):
    out = tmp_path / "sources.toml"
    assert main(["manifest", str(demo_pair.hdr.parent), "--out", str(out), "--split", "train"]) == 0
    text = out.read_text()
    assert "sha256" in text and "duration" in text
    from datakit.pairs.sources import check_hashes, read_pairs, sha256_file

    (pair,) = read_pairs(out)
    assert pair.pair_id == "demo" and pair.split == "train"
    assert pair.hdr_sha256 == sha256_file(demo_pair.hdr)
    check_hashes(pair)


SPARSE = """
[recipe]
name = "sparse-unit"
kind = "paired"
[clips]
strategy = "{strategy}"
frames = {frames}
every_seconds = 0.8
margin = 2
[tiles.train]
strategy = "grid"
size = 128
step = 128
remainder = 16
"""


@pytest.mark.parametrize(("strategy", "frames"), [("interval", 3), ("single", 1)])
def test_sparse_strategies_check_cuts_locally(strategy, frames, demo_pair, tmp_path):
    recipe = tmp_path / "sparse.toml"
    recipe.write_text(SPARSE.format(strategy=strategy, frames=frames))
    pairs = pairs_file(tmp_path, [("demo", demo_pair.hdr, demo_pair.sdr, "train")])
    summary = build_dataset(recipe, pairs, tmp_path / "out", report=False)
    status = summary["sources"]["demo"]
    truth = demo_pair.truth_data
    assert status["alignment"]["offset_frames"] == truth["offset_frames"]
    records = read_manifest(tmp_path / "out")
    kept = {tuple(r["sdr_frames"]) for r in records}
    assert kept and status["clips_kept"] == len(kept)
    assert status["clips_planned"] == len(kept) + sum(status["rejected"].values())
    for frames_ in kept:
        assert all(not (frames_[0] - 3 < cut <= frames_[-1] + 3) for cut in truth["cuts_sdr"]), frames_
    if strategy == "interval":
        assert status["rejected"].get("crosses_cut", 0) >= 1
    # 512x288 HDR frames in 128-px grid tiles with step 128: 4 x 2 tiles (remainder 32 > 16 adds a row)
    assert len(records) == len(kept) * 4 * 3


def test_cli_refuses_a_bad_frame_memory_setting(tmp_path, capsys, demo_pair, monkeypatch):
    monkeypatch.setenv("DATAKIT_FRAME_MEMORY_MB", "lots")
    recipe = str(shipped_recipe("hdrtvmf1k"))
    assert main(["build", recipe, "--pairs", str(demo_pair.hdr.parent), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "DATAKIT_FRAME_MEMORY_MB" in err[0]
    assert not (tmp_path / "o").exists()
