"""Faults injected into the real commands, run as subprocesses: the output folder's guarantees hold.

Each case runs ``python -m datakit ...`` and checks the promise of the folder: every published shard complete,
every manifest line true, a rerun that resumes to the same bytes (``manifest.jsonl`` compared with an
uninterrupted run's), ``datakit verify`` exit 0, and one clear line with the right exit status when a run cannot
go on. Faults: ``kill -9`` at several points of a serial and a ``--workers 2`` build and of a synth run (the
kill points are files appearing in the output folder, polled), two builds into one folder, a read-only folder,
a full filesystem (small tmpfs mounts; skipped with the reason where this machine cannot mount one), a killed
convert. Inputs: small demo pairs (256x144, ultrafast) and the committed 256x128 copies of the CC0 HDR images.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from datakit.io.reader import VideoReader
from datakit.io.writer import SDRWriter
from datakit.samples import DemoSpec, make_demo_pairs

HDRI = Path(__file__).parent / "data" / "hdri"
SMALL = {"hdr_size": (256, 144), "sdr_size": (224, 168), "preset": "ultrafast"}

PAIRED_RECIPE = """
[recipe]
name = "faults"
kind = "paired"
[split]
default = "train"
[clips]
strategy = "consecutive"
frames = 10
margin = 2
max_per_scene = 1
[tiles.train]
strategy = "random"
size = 64
count = 4
[tiles.test]
strategy = "full"
"""

SYNTH_RECIPE = """
[recipe]
name = "faults"
kind = "synthetic"
[source]
kind = "images"
ldr_policy = "warn"
[clips]
lengths = [3]
per_source = 2
tile = 128
[ranges.codec]
crf = [20, 24]
preset = ["ultrafast"]
"""

SYNTH_IMAGES = ("city", "forest", "night", "studio")


# --------------------------------------------------------------------------------------------- helpers


def datakit(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "datakit", *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


def start(*args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "datakit", *map(str, args)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def error_lines(stderr: str) -> list[str]:
    """stderr without the progress bars (tqdm redraws with carriage returns)."""
    lines = [line.rsplit("\r", 1)[-1].strip() for line in stderr.splitlines()]
    return [line for line in lines if line and not line.startswith(("pairs:", "sources:", "report:", "verify:"))]


def verify(out: Path) -> int:
    """``datakit verify OUT``'s exit status (in this process: it only reads)."""
    from datakit.cli import main

    return main(["verify", str(out)])


def one_clear_line(result: subprocess.CompletedProcess[str], status: int, *words: str) -> str:
    """The run ended with ``status`` and exactly one ``datakit:`` line on stderr holding ``words``."""
    lines = error_lines(result.stderr)
    assert result.returncode == status, (result.returncode, result.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("datakit: "), lines
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def wait_for(proc: subprocess.Popen[str], folder: Path, pattern: str, timeout: float = 60) -> Path:
    """Poll until a file matching ``pattern`` (a glob under ``folder``) exists: the kill point."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(folder.glob(pattern)) if folder.is_dir() else []
        if found:
            return found[0]
        if proc.poll() is not None:
            pytest.fail(f"the run ended (status {proc.returncode}) before {pattern} appeared: {proc.stderr.read()}")
        time.sleep(0.002)
    proc.kill()
    pytest.fail(f"{pattern} did not appear within {timeout} s")


def kill9(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()


def pool_workers(parent: int) -> list[int]:
    """Process-pool workers (multiprocessing spawn children) of ``parent``."""
    workers = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            status = (entry / "status").read_text()
            ppid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
            if ppid == parent and b"spawn_main" in (entry / "cmdline").read_bytes():
                workers.append(int(entry.name))
    return workers


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status and "\nState:\tX" not in status


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def leftovers(folder: Path) -> list[str]:
    """Temporary files under an output folder (none may remain after a finished run)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*") if p.name != ".datakit.lock")


def assert_resumes_to(out: Path, rerun: list[str | Path], reference: Path) -> None:
    """Rerun to completion: exit 0, the reference's manifest byte for byte, verify exit 0, no temporaries."""
    result = datakit(*rerun)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "manifest.jsonl").read_bytes() == (reference / "manifest.jsonl").read_bytes()
    assert verify(out) == 0
    assert leftovers(out) == []


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``folder`` (root and mount(8) needed: skipped otherwise)."""
    folder.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("a small filesystem needs root and mount(8) here (tmpfs)")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if made.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def remount(folder: Path, options: str) -> None:
    done = subprocess.run(["mount", "-o", f"remount,{options}", str(folder)], capture_output=True)
    assert done.returncode == 0, done.stderr


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Recipes, a pairs file listing ``demo-holdout`` before ``demo`` (an id that is the other's prefix plus
    ``-holdout``), and a folder of HDR images with ``sky`` and ``sky-2``."""
    root = tmp_path_factory.mktemp("fault_inputs")
    pairs = make_demo_pairs(
        root / "media",
        {
            "demo-holdout": DemoSpec(seed=1, offset_frames=4, scene_frames=(28, 36, 30), **SMALL),
            "demo": DemoSpec(**SMALL),
        },
    )
    lines = []
    for name, split in (("demo-holdout", "test"), ("demo", "train")):
        lines += ["[[pair]]", f'id = "{name}"', f'split = "{split}"']
        lines += [f'hdr = "{pairs[name].hdr}"', f'sdr = "{pairs[name].sdr}"', ""]
    (root / "pairs.toml").write_text("\n".join(lines))
    (root / "paired.toml").write_text(PAIRED_RECIPE)
    (root / "synth.toml").write_text(SYNTH_RECIPE)
    images = root / "images"
    images.mkdir()
    for name in SYNTH_IMAGES:
        shutil.copy(HDRI / f"{name}.exr", images)
    shutil.copy(HDRI / "sunrise.exr", images / "sky.exr")
    shutil.copy(HDRI / "sunrise.exr", images / "sky-2.exr")
    clip = root / "clip.mp4"  # a short SDR video for convert: the first 16 frames of the demo's SDR
    with (
        VideoReader(pairs["demo"].sdr, encoding="sdr") as reader,
        SDRWriter(clip, 224, 168, 24, preset="ultrafast", threads=1) as writer,
    ):
        for _, frame in zip(range(16), reader, strict=False):
            writer.write(frame.rgb("float32"))
    return {"root": root, "pairs": root / "pairs.toml", "paired": root / "paired.toml",
            "synth": root / "synth.toml", "images": images, "clip": clip}  # fmt: skip


def build_args(inputs: dict[str, Path], out: Path, *extra: str) -> list[str | Path]:
    return ["build", inputs["paired"], "--pairs", inputs["pairs"], "--out", out, *extra]


def synth_args(inputs: dict[str, Path], out: Path, *extra: str) -> list[str | Path]:
    return ["synth", inputs["synth"], "--images", inputs["images"], "--out", out, "--seed", "3", *extra]


@pytest.fixture(scope="module")
def clean_build(inputs: dict[str, Path]) -> Path:
    """An uninterrupted serial build: the reference."""
    out = inputs["root"] / "clean_build"
    result = datakit(*build_args(inputs, out))
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def clean_synth(inputs: dict[str, Path]) -> Path:
    out = inputs["root"] / "clean_synth"
    result = datakit(*synth_args(inputs, out))
    assert result.returncode == 0, result.stderr[-3000:]
    return out


# --------------------------------------------------------------------------------------------- a source's files


@pytest.mark.fault("bad_input")
def test_a_source_whose_id_prefixes_another_keeps_its_shards(clean_build: Path, clean_synth: Path, inputs) -> None:
    """``demo`` (reset after ``demo-holdout`` was published) and ``sky`` (after ``sky-2``) remove only their own
    files: the same names with a longer id belong to another source."""
    records = [json.loads(line) for line in (clean_build / "manifest.jsonl").read_text().splitlines()]
    assert {r["source_id"] for r in records} == {"demo", "demo-holdout"}
    assert sum(r["split"] == "test" for r in records) == 3  # the held-out pair: 3 clips kept whole
    assert verify(clean_build) == 0
    synth = [json.loads(line) for line in (clean_synth / "manifest.jsonl").read_text().splitlines()]
    assert {r["source_id"] for r in synth} == {*SYNTH_IMAGES, "sky", "sky-2"}
    assert verify(clean_synth) == 0
    # a rerun of a finished folder works and changes nothing
    before = (clean_build / "manifest.jsonl").read_bytes()
    assert_resumes_to(clean_build, build_args(inputs, clean_build), clean_build)
    assert (clean_build / "manifest.jsonl").read_bytes() == before


def test_shard_names_parse_back_to_their_source() -> None:
    from datakit.store.shards import shard_name, shard_source

    for source in ("sky", "sky-2", "demo-holdout", "a.b-3x4x5-006", "x_1"):
        name = shard_name(source, (10, 64, 64), 7)
        assert shard_source(name) == source
        assert shard_source(f".{name.removesuffix('.h5')}.k2j_9x0a.part.h5") == source
    assert shard_source("sky-2-10x64x64-000.h5") == "sky-2" != "sky"
    assert shard_source("notes.txt") is None and shard_source("sky.h5") is None


# --------------------------------------------------------------------------------------------- kill -9

KILLS = {
    "serial, writing the first shard": ([], "shards/*/.*.part.h5"),
    "serial, first pair published": ([], "parts/demo-holdout.json"),
    "serial, writing the manifest": ([], "manifest.jsonl"),
    "2 workers, writing shards": (["--workers", "2"], "shards/*/.*.part.h5"),
    "2 workers, a pair published": (["--workers", "2"], "parts/demo*.json"),
}


@pytest.mark.fault("kill")
@pytest.mark.parametrize("case", list(KILLS))
def test_killed_build_resumes_to_the_same_manifest(case: str, inputs, clean_build: Path, tmp_path: Path) -> None:
    extra, kill_point = KILLS[case]
    out = tmp_path / "out"
    proc = start(*build_args(inputs, out, *extra))
    wait_for(proc, out, kill_point)
    workers = pool_workers(proc.pid) if extra else []
    kill9(proc)
    if extra:
        assert workers, "the pool's workers were not found"
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not any(alive(pid) for pid in workers), "workers outlived their parent"
        before = snapshot(out)
        time.sleep(0.5)
        assert snapshot(out) == before, "something still writes into the folder"
    assert_resumes_to(out, build_args(inputs, out, *extra), clean_build)


@pytest.mark.fault("kill")
@pytest.mark.parametrize("kill_point", ["shards/*/.*.part.h5", "parts/night.json"])
def test_killed_synth_resumes_to_the_same_manifest(kill_point: str, inputs, clean_synth: Path, tmp_path) -> None:
    out = tmp_path / "out"
    proc = start(*synth_args(inputs, out))
    wait_for(proc, out, kill_point)
    kill9(proc)
    assert_resumes_to(out, synth_args(inputs, out), clean_synth)


# --------------------------------------------------------------------------------------------- two writers


@pytest.mark.fault("concurrency")
def test_a_second_build_into_the_same_folder_is_refused(inputs, clean_build: Path, tmp_path: Path) -> None:
    """The first build is stopped (SIGSTOP) while it holds the folder, so the second surely meets it."""
    out = tmp_path / "out"
    first = start(*build_args(inputs, out))
    wait_for(first, out, "shards/*/.*.part.h5")
    first.send_signal(signal.SIGSTOP)
    try:
        second = datakit(*build_args(inputs, out))
        synth = datakit(*synth_args(inputs, out))
    finally:
        first.send_signal(signal.SIGCONT)
    one_clear_line(second, 2, str(out), f"pid {first.pid}")
    one_clear_line(synth, 2, str(out), f"pid {first.pid}")
    assert first.wait(timeout=120) == 0, first.stderr.read()
    first.stderr.close()
    assert (out / "manifest.jsonl").read_bytes() == (clean_build / "manifest.jsonl").read_bytes()
    assert verify(out) == 0
    assert leftovers(out) == []


# --------------------------------------------------------------------------------------------- exit statuses


@pytest.mark.fault("bad_input")
def test_failed_sources_give_exit_status_1_and_a_count(inputs, tmp_path: Path) -> None:
    media = inputs["root"] / "media"
    hdr, sdr = media / "demo_hdr10.mp4", media / "demo_sdr.mp4"
    pairs = tmp_path / "pairs.toml"
    pairs.write_text(
        f'[[pair]]\nid = "demo"\nhdr = "{hdr}"\nsdr = "{sdr}"\n\n'
        f'[[pair]]\nid = "swapped"\nhdr = "{sdr}"\nsdr = "{hdr}"\n\n'
        '[[pair]]\nid = "missing"\nhdr = "/nonexistent/a.mp4"\nsdr = "/nonexistent/b.mp4"\n'
    )
    out = tmp_path / "out"
    result = datakit("build", inputs["paired"], "--pairs", pairs, "--out", out)
    assert result.returncode == 1, result.stderr[-2000:]
    assert error_lines(result.stderr)[-1] == "datakit: 2 of 3 sources failed"
    assert "FAILED missing" in result.stdout and "FAILED swapped" in result.stdout
    assert verify(out) == 0  # what was built is sound
    # every source failed: still 1 (the run itself went through), never 0
    only_bad = tmp_path / "bad.toml"
    only_bad.write_text('[[pair]]\nid = "missing"\nhdr = "/nonexistent/a.mp4"\nsdr = "/nonexistent/b.mp4"\n')
    result = datakit("build", inputs["paired"], "--pairs", only_bad, "--out", tmp_path / "out2")
    assert result.returncode == 1 and error_lines(result.stderr)[-1] == "datakit: 1 of 1 sources failed"
    # a bad invocation as a whole: 2
    result = datakit("synth", inputs["synth"], "--images", tmp_path / "no-such-folder", "--out", tmp_path / "o3")
    one_clear_line(result, 2, "no-such-folder")


# --------------------------------------------------------------------------------------------- a read-only folder


@pytest.mark.fault("disk")
def test_a_read_only_folder_gives_one_line_and_loses_nothing(inputs, clean_build: Path, tmp_path: Path) -> None:
    mnt = tmp_path / "ro"
    with tmpfs(mnt, "16m"):
        out = mnt / "built"
        shutil.copytree(clean_build, out)
        (out / "parts" / "demo.json").unlink()  # unfinished: a rerun would write
        before = snapshot(out)
        (mnt / "clip").mkdir()
        sdr = inputs["clip"]
        remount(mnt, "ro")
        one_clear_line(datakit(*build_args(inputs, out)), 2, str(out), "Read-only file system")
        one_clear_line(datakit(*build_args(inputs, mnt / "new")), 2, "Read-only file system")
        one_clear_line(datakit(*synth_args(inputs, mnt / "new")), 2, "Read-only file system")
        result = datakit("convert", sdr, mnt / "clip" / "out.mkv", "--preset", "ultrafast", "--quiet")
        one_clear_line(result, 2, "out.mkv", "Read-only file system")
        assert snapshot(out) == before


# --------------------------------------------------------------------------------------------- a full disk


@pytest.mark.fault("disk")
@pytest.mark.parametrize("command", ["synth", "build"])
def test_a_full_disk_fails_cleanly_and_a_rerun_gives_the_clean_manifest(
    command: str, inputs, clean_build: Path, clean_synth: Path, tmp_path: Path
) -> None:
    """A small tmpfs fills during the run: no crash (synth used to segfault in HDF5), no traceback, no
    temporary file left; once space is freed the rerun gives the clean run's manifest."""
    mnt = tmp_path / "full"
    # build: the held-out pair's 7 MB shard does not fit in 5 MB; removed, it leaves room for the other pair
    args, reference, size, last_line = {
        "synth": (synth_args, clean_synth, "2400k", None),
        "build": (build_args, clean_build, "5m", "datakit: 1 of 2 sources failed"),
    }[command]
    with tmpfs(mnt, size):
        out = mnt / "out"
        result = datakit(*args(inputs, out))
        lines = error_lines(result.stderr)
        assert result.returncode in (1, 2), (result.returncode, result.stderr[-3000:])
        assert "Traceback" not in result.stderr and lines, result.stderr[-3000:]
        if result.returncode == 1:  # some sources failed for lack of space, the rest went through
            assert lines[-1].endswith("sources failed") and "No space left on device" in result.stdout
            assert last_line in (None, lines[-1]), lines
        else:  # the run could not write its manifest, summary or report
            assert len(lines) == 1 and "No space left on device" in lines[0], lines
        assert not [p for p in out.rglob("*.part*")], "a temporary file was left on the full disk"
        remount(mnt, "size=64m")
        assert_resumes_to(out, args(inputs, out), reference)


@pytest.mark.fault("disk")
def test_shard_writer_on_a_full_disk_removes_its_file(tmp_path: Path) -> None:
    """The writer fails with one line naming the file and the cause, and removes the file, although the disk
    stays full; run in a subprocess, since HDF5 used to segfault there."""
    mnt = tmp_path / "full"
    script = f"""
import numpy as np
from datakit.errors import OutputWriteError
from datakit.store.shards import Sample, ShardWriter
rng = np.random.default_rng(0)
try:
    with ShardWriter({str(mnt)!r}, "src") as writer:
        for i in range(100):
            sdr = rng.integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)
            hdr = rng.integers(0, 65535, (3, 64, 64, 3), dtype=np.uint16)
            sample = Sample(f"s{{i}}", "src", sdr, hdr, [0, 1, 2], [0, 1, 2], [0.0, 0.1, 0.2], (0, 0, 64, 64))
            writer.add(sample, "train")
except OutputWriteError as error:
    print("ERROR", error)
"""
    with tmpfs(mnt, "200k"):
        filler = mnt / "filler"
        filler.write_bytes(b"\0" * 60_000)
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.startswith("ERROR ") and "No space left on device" in done.stdout, done.stdout
        assert ".part.h5" in done.stdout and len(done.stdout.strip().splitlines()) == 1
        assert sorted(p.name for p in mnt.rglob("*") if p.is_file()) == ["filler"]


@pytest.mark.fault("disk")
def test_convert_on_a_full_disk(inputs, tmp_path: Path) -> None:
    mnt = tmp_path / "full"
    sdr = inputs["clip"]
    with tmpfs(mnt, "8k"):  # smaller than the compressed output (the writer keeps no spool)
        result = datakit("convert", sdr, mnt / "out.mkv", "--preset", "ultrafast", "--quiet")
        one_clear_line(result, 2, "out.mkv", "No space left on device")
        assert list(mnt.iterdir()) == []


# --------------------------------------------------------------------------------------------- a killed convert


@pytest.mark.fault("kill")
def test_a_killed_convert_leaves_what_the_next_one_removes(inputs, tmp_path: Path) -> None:
    sdr = inputs["clip"]
    folder = tmp_path / "videos"
    folder.mkdir()
    out = folder / "out.mkv"
    args = ["convert", sdr, out, "--preset", "ultrafast", "--quiet"]
    proc = start(*args)
    wait_for(proc, folder, ".*/*")  # the conversion's first temporary file
    kill9(proc)
    assert not out.exists() and any(p.name.startswith(".") for p in folder.iterdir())
    result = datakit(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert [p.name for p in folder.iterdir()] == ["out.mkv"]
    # killed while replacing it (--overwrite): the old output stays whole, the next --overwrite cleans up
    before = out.read_bytes()
    proc = start(*args, "--overwrite")
    wait_for(proc, folder, ".*/*")
    kill9(proc)
    assert out.read_bytes() == before
    assert datakit(*args, "--overwrite").returncode == 0
    assert [p.name for p in folder.iterdir()] == ["out.mkv"]
