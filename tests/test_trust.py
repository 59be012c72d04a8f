"""Trust boundaries (issue 12, items 7 and 8): what is read back from an output folder, a pairs file or a shard is
checked, and what verify says is true.

- verify compares every manifest record with its shard's own per-sample metadata and its split with the shard's
  folder (and the split the shard records): an edited record is damage (exit 1);
- a crafted shard using HDF5 external storage (or a virtual dataset) pointing at another file is refused, not
  read as pixels;
- manifest shard paths stay inside the folder; ids that become file names are matched whole (no trailing
  newline), including the report's thumbnails;
- ``datakit manifest`` writes TOML with a TOML writer (a quote in a path) and refuses duplicate ids;
- files published through ``atomic_path`` get the umask's usual mode.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tomllib
from pathlib import Path

import h5py
import numpy as np
import pytest

from datakit.cli import main
from datakit.errors import RecipeError, StoreError
from datakit.fsutil import atomic_write_text
from datakit.pairs.sources import read_pairs
from datakit.store import ShardReader
from datakit.store.output import check_source_id
from datakit.synth.build import synth_dataset
from tests.test_bad_input import HDRI, SYNTH_RECIPE, run_cli
from tests.test_bad_input import folder as folder  # the module's synth output folder (fixture)

TRAIN_SHARD = "shards/train/studio-3x64x64-000.h5"
TEST_SHARD = "shards/test/night-3x64x64-000.h5"


def copy_folder(folder: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(folder, out)
    return out


def edit_record(out: Path, sample_prefix: str, change) -> None:
    lines = (out / "manifest.jsonl").read_text().splitlines()
    for k, line in enumerate(lines):
        record = json.loads(line)
        if record["sample_id"].startswith(sample_prefix):
            change(record)
            lines[k] = json.dumps(record, sort_keys=True)
    (out / "manifest.jsonl").write_text("\n".join(lines) + "\n")


def verify_problems(out: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    code = main(["verify", str(out)])
    stdout = capsys.readouterr().out
    problems = [line for line in stdout.splitlines() if line.startswith("DAMAGED")]
    assert (code == 1) == bool(problems), stdout
    return problems


# ------------------------------------------------------------------ item 7: verify checks what the manifest says

EDITS = {
    "split train -> test": (lambda r: r.update(split="test"), "split 'test', but its shard is in the 'train' folder"),
    "crop": (lambda r: r.update(crop=[1, 0, 64, 64]), "crop [1, 0, 64, 64] in the manifest"),
    "sdr_frames": (lambda r: r.update(sdr_frames=[1, 2, 3]), "sdr_frames [1, 2, 3] in the manifest"),
    "hdr_frames": (lambda r: r.update(hdr_frames=[0, 1, 5]), "hdr_frames [0, 1, 5] in the manifest"),
    "source_id": (lambda r: r.update(source_id="sunrise"), 'source_id "sunrise" in the manifest, "studio"'),
    "meta": (lambda r: r["meta"].update(seed=12345), "meta {"),
    "meta key removed": (lambda r: r["meta"].pop("degradation"), "meta {"),
    "scene": (lambda r: r.update(scene=7), "scene 7 in the manifest"),
    "score": (lambda r: r.update(score=0.25), "score 0.25 in the manifest"),
    "times": (lambda r: r.update(times=[0.0, 0.04, 0.5]), "times differ"),
}


@pytest.mark.fault("trust")
@pytest.mark.parametrize("edit", list(EDITS), ids=list(EDITS))
def test_verify_reports_an_edited_record(edit, folder, tmp_path, capsys):
    change, expected = EDITS[edit]
    out = copy_folder(folder, tmp_path)
    assert verify_problems(out, capsys) == []
    edit_record(out, "studio-", change)
    problems = verify_problems(out, capsys)
    assert len(problems) == 1 and problems[0].startswith("DAMAGED studio-n03-000: ") and expected in problems[0]


@pytest.mark.fault("trust")
def test_verify_reports_a_shard_moved_to_the_other_split(folder, tmp_path, capsys):
    """Moving a sample from train to test, file and manifest alike: the shard still says it was written for train."""
    out = copy_folder(folder, tmp_path)
    moved = TRAIN_SHARD.replace("/train/", "/test/")
    (out / TRAIN_SHARD).rename(out / moved)
    edit_record(out, "studio-", lambda r: r.update(split="test", shard=moved))
    problems = verify_problems(out, capsys)
    assert problems == [
        "DAMAGED studio-n03-000: its shard was written for split 'train' and moved to the 'test' folder"
    ]


@pytest.mark.fault("trust")
def test_verify_reports_records_listed_twice(folder, tmp_path, capsys):
    out = copy_folder(folder, tmp_path)
    lines = (out / "manifest.jsonl").read_text().splitlines()
    (out / "manifest.jsonl").write_text("\n".join([*lines, lines[0]]) + "\n")
    problems = verify_problems(out, capsys)
    sample = json.loads(lines[0])["sample_id"]
    assert f"DAMAGED {sample}: listed 2 times in the manifest" in problems
    assert any("listed by 2 manifest records" in p for p in problems)


def test_shards_without_the_split_attribute_still_verify(folder, tmp_path, capsys):
    """Shards written before the split was stored: the folder is checked, the rest as before."""
    out = copy_folder(folder, tmp_path)
    for shard in out.glob("shards/*/*.h5"):
        with h5py.File(shard, "r+") as f:
            assert f.attrs["split"] == shard.parent.name
            del f.attrs["split"]
    assert verify_problems(out, capsys) == []
    edit_record(out, "studio-", lambda r: r.update(split="test"))
    assert len(verify_problems(out, capsys)) == 1


# ------------------------------------------------------------------ item 8: shards stored outside the file


def rewrite_shard(path: Path, sdr_kwargs) -> None:
    """Rewrite shard ``path`` with every dataset and attribute as written, ``sdr`` created with ``sdr_kwargs``."""
    with h5py.File(path, "r") as f:
        arrays = {name: f[name][()] for name in f}
        dtypes = {name: f[name].dtype for name in f}
        attrs = dict(f.attrs)
    path.unlink()
    with h5py.File(path, "w") as f:
        for name, array in arrays.items():
            if name == "sdr":
                f.create_dataset("sdr", shape=array.shape, dtype=array.dtype, **sdr_kwargs(array))
            else:
                f.create_dataset(name, data=array, dtype=dtypes[name], chunks=True)
        f.attrs.update(attrs)


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """Another file on the machine that a crafted shard points at."""
    path = tmp_path / "secret.bin"
    path.write_bytes(bytes(range(256)) * 200)
    return path


@pytest.mark.fault("trust")
def test_shard_with_external_storage_is_refused(folder, tmp_path, secret, capsys):
    out = copy_folder(folder, tmp_path)
    shard = out / TEST_SHARD
    rewrite_shard(shard, lambda a: {"external": [(str(secret), 0, a.nbytes)]})
    with h5py.File(shard, "r") as f:  # the crafted file does read the other file's bytes through h5py
        assert f["sdr"].external and bytes(f["sdr"][0].ravel()[:4]) == b"\x00\x01\x02\x03"
    with pytest.raises(StoreError, match="external or virtual"):
        ShardReader(shard).arrays(0)
    for argv in (["eval", "--data", str(out), "--json"], ["preview", str(out), "--png", str(tmp_path / "p.png")]):
        assert run_cli(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "not chunked inside the file (external or virtual storage)" in err[0]
    assert any("external or virtual" in p for p in verify_problems(out, capsys))


@pytest.mark.fault("trust")
def test_shard_with_a_virtual_dataset_is_refused(folder, tmp_path):
    out = copy_folder(folder, tmp_path)
    shard = out / TEST_SHARD
    other = tmp_path / "other.h5"
    with h5py.File(shard, "r") as f:
        sdr = f["sdr"][()]
    with h5py.File(other, "w") as f:
        f.create_dataset("pixels", data=np.full_like(sdr, 7))

    with h5py.File(shard, "r") as f:
        arrays = {name: (f[name][()], f[name].dtype) for name in f}
        attrs = dict(f.attrs)
    shard.unlink()
    with h5py.File(shard, "w") as f:
        for name, (array, dtype) in arrays.items():
            if name == "sdr":
                layout = h5py.VirtualLayout(shape=array.shape, dtype=array.dtype)
                layout[...] = h5py.VirtualSource(str(other), "pixels", shape=array.shape)
                f.create_virtual_dataset("sdr", layout)
            else:
                f.create_dataset(name, data=array, dtype=dtype, chunks=True)
        f.attrs.update(attrs)
    with h5py.File(shard, "r") as f:
        assert f["sdr"].is_virtual and int(f["sdr"][0].max()) == 7
    with pytest.raises(StoreError, match="external or virtual"):
        ShardReader(shard).arrays(0)


@pytest.mark.fault("trust")
def test_shard_of_the_wrong_shape_or_type_is_refused(folder, tmp_path):
    out = copy_folder(folder, tmp_path)
    shard = out / TEST_SHARD
    rewrite_shard(shard, lambda a: {"chunks": (1, *a.shape[1:])})  # chunked in the file: accepted
    assert ShardReader(shard).arrays(0)[0].shape == (3, 64, 64, 3)
    with h5py.File(shard, "r+") as f:
        del f["crop"]
        f.create_dataset("crop", data=np.zeros((1, 3), np.int32), chunks=True)
    with pytest.raises(StoreError, match="per-sample dataset 'crop'"):
        len(ShardReader(shard))


# ------------------------------------------------------------------ item 8: paths and ids


@pytest.mark.fault("trust")
@pytest.mark.parametrize("shard", ["/etc/passwd", "../copy/" + TEST_SHARD, "shards/../../x.h5", "shards\\test\\x.h5"])
def test_manifest_shard_must_stay_inside_the_folder(shard, folder, tmp_path, capsys):
    out = copy_folder(folder, tmp_path)
    edit_record(out, "night-", lambda r: r.update(shard=shard))
    for argv in (["verify", str(out)], ["eval", "--data", str(out), "--json"]):
        assert run_cli(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and ("expected a path relative" in err[0] or "stay inside the output folder" in err[0])


@pytest.mark.fault("trust")
def test_id_check_refuses_a_trailing_newline(tmp_path):
    assert check_source_id("sky-2") == "sky-2"
    for bad in ("sky\n", "sky\n-2", "-sky", "../sky", "sky/2", ""):
        with pytest.raises(StoreError):
            check_source_id(bad)
    pairs = tmp_path / "pairs.toml"
    pairs.write_text('[[pair]]\nid = "demo\\n"\nhdr = "a.mp4"\nsdr = "b.mp4"\n')
    with pytest.raises(RecipeError, match="pair id"):
        read_pairs(pairs)


@pytest.mark.fault("trust")
def test_tampered_parts_file_and_resume_write_nothing_outside_the_folder(tmp_path, capsys):
    """A parts record whose sample id climbs out of report/: the rerun refuses it, and no PNG lands outside."""
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(HDRI / "night.exr", images)
    (tmp_path / "recipe.toml").write_text(SYNTH_RECIPE)
    out = tmp_path / "nest" / "out"
    argv = ["synth", str(tmp_path / "recipe.toml"), "--images", str(images), "--out", str(out)]
    assert run_cli(argv) == 0
    part = out / "parts" / "night.jsonl"
    record = json.loads(part.read_text())
    record["sample_id"] = "../../../evil"
    part.write_text(json.dumps(record) + "\n")
    capsys.readouterr()
    assert run_cli(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "sample id '../../../evil'" in err.strip().splitlines()[-1]
    assert not list(tmp_path.rglob("evil*"))


@pytest.mark.fault("trust")
@pytest.mark.parametrize("part", ["night.jsonl", "night.json"])
def test_parts_holding_random_bytes_are_refused_on_resume(part, tmp_path, capsys):
    """The parts files a rerun reads are records too: random bytes give one line, and the manifest stays as it was."""
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(HDRI / "night.exr", images)
    (tmp_path / "recipe.toml").write_text(SYNTH_RECIPE)
    out = tmp_path / "out"
    argv = ["synth", str(tmp_path / "recipe.toml"), "--images", str(images), "--out", str(out)]
    assert run_cli(argv) == 0
    manifest = (out / "manifest.jsonl").read_bytes()
    (out / "parts" / part).write_bytes(b"\xff\xfe\x00garbage" * 10)
    capsys.readouterr()
    assert run_cli(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"parts/{part}: not UTF-8" in err.strip().splitlines()[-1]
    assert (out / "manifest.jsonl").read_bytes() == manifest


@pytest.mark.fault("trust")
def test_report_thumbnail_names_go_through_the_id_check(folder, tmp_path, monkeypatch):
    """Even with records that skipped the manifest check, write_report refuses an id that is no file name."""
    import datakit.report.html as report_html

    out = copy_folder(folder, tmp_path / "nest")
    records = report_html.read_manifest(out)
    records[0]["sample_id"] = "../../evil"
    monkeypatch.setattr(report_html, "read_manifest", lambda root: records)
    with pytest.raises(StoreError, match="sample id"):
        report_html.write_report(out, progress=False)
    assert not list(tmp_path.rglob("evil*"))


@pytest.mark.fault("trust")
def test_manifest_writes_valid_toml_for_any_path_and_refuses_duplicate_ids(demo_pair_other_title, tmp_path, capsys):
    media = tmp_path / 'odd "name" \\ folder'
    media.mkdir()
    hdr = shutil.copy(demo_pair_other_title.hdr, media / "t_hdr10.mp4")
    sdr = shutil.copy(demo_pair_other_title.sdr, media / "t_sdr.mp4")
    out = tmp_path / "sources.toml"
    assert run_cli(["manifest", str(media), "--out", str(out), "--split", "test"]) == 0
    data = tomllib.loads(out.read_text())
    assert data["pair"][0]["hdr"]["path"] == f"{media.name}/t_hdr10.mp4"
    (pair,) = read_pairs(out)  # and it reads back as the same files, with their hashes
    assert (pair.pair_id, pair.hdr, pair.sdr, pair.split) == ("t", Path(hdr).resolve(), Path(sdr).resolve(), "test")
    assert pair.hdr_sha256 and pair.sdr_sha256
    capsys.readouterr()
    assert run_cli(["manifest", str(media), str(out), "--out", str(tmp_path / "twice.toml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pair id 't' appears more than once" in err[0]
    assert not (tmp_path / "twice.toml").exists()


# ------------------------------------------------------------------ item 8: published files' mode


@pytest.mark.fault("trust")
@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_published_files_get_the_umasks_mode(umask, tmp_path):
    previous = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        images = tmp_path / "images"
        images.mkdir()
        shutil.copy(HDRI / "night.exr", images)
        (tmp_path / "recipe.toml").write_text(SYNTH_RECIPE)
        synth_dataset(tmp_path / "recipe.toml", tmp_path / "out", images=str(images))
    finally:
        os.umask(previous)
    expected = 0o666 & ~umask
    published = [tmp_path / "a.txt", *(tmp_path / "out" / name for name in ("manifest.jsonl", "summary.json",
                                                                             "report.html", "recipe.json"))]
    published += sorted((tmp_path / "out").glob("report/*.png")) + sorted((tmp_path / "out").glob("shards/*/*.h5"))
    for path in published:
        assert stat.S_IMODE(path.stat().st_mode) == expected, path
