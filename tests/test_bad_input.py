"""Bad input as a new user gives it: every case ends with one line on stderr, starting "datakit: ", exit status 2.

The table below is the list of inputs tried (issue 12, item 5): broken pairs files, output paths that are files or
folders where the other is expected, manifests holding the wrong things, bad counts, damaged checkpoints, a
damaged chunk in a shard, libx265 parameters libx265 refuses, non-finite recipe numbers. Each runs through
``datakit.cli.main`` in this process; a few run as subprocesses (DataLoader workers, the installed entry point).
The output folder is a small ``datakit synth`` run (three CC0 images, 3-frame 64 px clips) made once per module.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import h5py
import pytest

from datakit.cli import main
from datakit.recipes import shipped_recipe
from datakit.synth.build import synth_dataset
from tests.checkpoints import inference_checkpoint

HDRI = Path(__file__).parent / "data" / "hdri"
PAIRED = str(shipped_recipe("hdrtvmf1k"))
NOT_UTF8 = b"\x89PNG\r\n\x1a\n\xff\xfe\xc3\x28\xa0\xa1" * 20

SYNTH_RECIPE = """
[recipe]
name = "bad-input"
kind = "synthetic"

[source]
kind = "images"

[clips]
lengths = [3]
per_source = 1
tile = 64

[split]
test_sources = ["night"]

[ranges.codec]
crf = [20, 24]
preset = ["ultrafast"]
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished synth output folder: sunrise and studio in train, night in test."""
    tmp = tmp_path_factory.mktemp("bad_input")
    images = tmp / "images"
    images.mkdir()
    for name in ("sunrise", "night", "studio"):
        shutil.copy(HDRI / f"{name}.exr", images)
    (tmp / "recipe.toml").write_text(SYNTH_RECIPE)
    synth_dataset(tmp / "recipe.toml", tmp / "out", images=str(images), seed=3, report=False)
    return tmp / "out"


class Inputs:
    """Builds one case's broken input under the test's own tmp folder."""

    def __init__(self, tmp: Path, folder: Path) -> None:
        self.tmp, self.folder = tmp, folder
        self.a_file = tmp / "a_file.txt"
        self.a_file.write_text("not a folder")
        self.a_dir = tmp / "a_dir"
        self.a_dir.mkdir()
        self.synth_recipe = self.write("synth.toml", SYNTH_RECIPE)

    def write(self, name: str, data: str | bytes) -> str:
        path = self.tmp / name
        path.write_bytes(data) if isinstance(data, bytes) else path.write_text(data)
        return str(path)

    def new(self, name: str = "out") -> str:
        return str(self.tmp / name)

    def copy(self, manifest: bytes | None = None) -> str:
        """A copy of the output folder, its manifest replaced by ``manifest`` when given."""
        out = self.tmp / "copy"
        shutil.copytree(self.folder, out)
        if manifest is not None:
            (out / "manifest.jsonl").write_bytes(manifest)
        return str(out)

    def record(self, change: Callable[[dict], object]) -> str:
        """A copy whose first manifest record went through ``change``."""
        lines = (self.folder / "manifest.jsonl").read_text().splitlines()
        record = json.loads(lines[0])
        change(record)
        lines[0] = json.dumps(record)
        return self.copy(("\n".join(lines) + "\n").encode())

    def damaged(self) -> str:
        """A copy where the first SDR chunk of every shard has bytes overwritten (HDF5: "filter returned failure")."""
        out = Path(self.copy())
        for shard in sorted(out.glob("shards/*/*.h5")):
            with h5py.File(shard, "r") as f:
                info = f["sdr"].id.get_chunk_info(0)
            with open(shard, "r+b") as fh:
                fh.seek(info.byte_offset + 40)
                fh.write(b"\x00" * 8)
                fh.seek(info.byte_offset + info.size // 2)
                fh.write(b"\xff" * 64)
        return str(out)

    def checkpoint(self, change: Callable[[dict], object], name: str = "ckpt.pt") -> str:
        import torch

        payload = torch.load(inference_checkpoint(self.tmp / "agcm.pt", "agcm"), weights_only=True)
        change(payload)
        torch.save(payload, self.tmp / name)
        return str(self.tmp / name)

    def resume_run(self) -> str:
        """A run folder whose checkpoints/last.pt is a shipped (inference-only) checkpoint: nothing to resume."""
        run = self.tmp / "run"
        (run / "checkpoints").mkdir(parents=True)
        inference_checkpoint(run / "checkpoints" / "last.pt", "agcm")
        return str(run)

    def pairs(self, name: str, text: str | bytes) -> str:
        return self.write(name, text)


def _verify(c: Inputs, folder: str) -> list[str]:
    return ["verify", folder]


def _inspect(c: Inputs, folder: str) -> list[str]:
    return ["inspect", folder]


def _preview(c: Inputs, folder: str) -> list[str]:
    return ["preview", folder, "--png", c.new("sheet.png")]


def _train(c: Inputs, folder: str) -> list[str]:
    return ["train", "--model", "agcm", "--data", folder, "--out", c.new("run"), "--steps", "1", "--crop", "32",
            "--batch", "1", "--workers", "0", "--no-progress"]  # fmt: skip


def _eval(c: Inputs, folder: str) -> list[str]:
    return ["eval", "--data", folder, "--limit", "1", "--json"]


READERS = {"verify": _verify, "inspect": _inspect, "preview": _preview, "train": _train, "eval": _eval}

MANIFESTS: dict[str, tuple[Callable[[Inputs], str], str]] = {
    "random bytes": (lambda c: c.copy(NOT_UTF8), "not UTF-8"),
    "{}": (lambda c: c.copy(b"{}\n"), "record without"),
    "[1, 2]": (lambda c: c.copy(b"[1, 2]\n"), "expected a JSON object, got list"),
    "index abc": (lambda c: c.record(lambda r: r.update(index="abc")), "index 'abc'"),
    "content_hash 5": (lambda c: c.record(lambda r: r.update(content_hash=5)), "content_hash 5"),
}

SHARD_CRASH = "unreadable (Can't"  # the shard, the sample and the advice follow


def bad(label: str, argv: Callable[[Inputs], list[str]], expect: str, kind: str = "bad_input") -> object:
    return pytest.param(argv, expect, id=label, marks=pytest.mark.fault(kind))


CASES = [
    # pairs files (TOML or CSV): one check per entry (datakit.pairs.sources.check_pair_entry)
    bad("pairs csv short row", lambda c: ["build", PAIRED, "--pairs", c.pairs("p.csv", "id,hdr,sdr\nx,a.mp4\n"),
                                          "--out", c.new()], "fewer fields"),
    bad("pairs csv random bytes", lambda c: ["build", PAIRED, "--pairs", c.pairs("p.csv", NOT_UTF8), "--out", c.new()],
        "not a UTF-8 CSV"),
    bad("pairs csv extra field", lambda c: ["manifest", c.pairs("p.csv", "id,hdr,sdr\nx,a.mp4,b.mp4,c\n"),
                                            "--out", c.new("m.toml")], "more fields"),
    bad("pairs csv unknown column", lambda c: ["manifest", c.pairs("p.csv", "id,hdr,sdr,shaa\nx,a.mp4,b.mp4,1\n"),
                                               "--out", c.new("m.toml")], "CSV columns are"),
    bad("pairs csv NUL byte", lambda c: ["manifest", c.pairs("p.csv", b"id,hdr,sdr\nx,a\x00,b\n"),
                                         "--out", c.new("m.toml")], "p.csv"),
    bad("pairs toml pair = [1, 2]", lambda c: ["build", PAIRED, "--pairs", c.pairs("p.toml", "pair = [1, 2]\n"),
                                               "--out", c.new()], "expected a table"),
    bad("pairs toml hdr = 5", lambda c: ["build", PAIRED, "--pairs",
                                         c.pairs("p.toml", '[[pair]]\nid = "a"\nhdr = 5\nsdr = "b.mp4"\n'),
                                         "--out", c.new()], "hdr must be a path"),
    bad("pairs toml hdr table without path", lambda c: ["build", PAIRED, "--pairs",
        c.pairs("p.toml", '[[pair]]\nid = "a"\nhdr = { sha256 = "00" }\nsdr = "b.mp4"\n'),
        "--out", c.new()], "hdr table has no path"),
    bad("pairs toml path = 3", lambda c: ["manifest",
        c.pairs("p.toml", '[[pair]]\nid = "a"\nhdr = { path = 3 }\nsdr = "b.mp4"\n'), "--out", c.new("m.toml")],
        "got int 3"),
    bad("pairs toml sha256 = 5", lambda c: ["manifest",
        c.pairs("p.toml", '[[pair]]\nid = "a"\nhdr = { path = "a.mp4", sha256 = 5 }\nsdr = "b.mp4"\n'),
        "--out", c.new("m.toml")], "sha256 must be 64"),
    bad("pairs toml id = 5", lambda c: ["manifest", c.pairs("p.toml", '[[pair]]\nid = 5\nhdr = "a.mp4"\nsdr = "b"\n'),
                                        "--out", c.new("m.toml")], "pair id 5"),
    bad("pairs toml misspelt key", lambda c: ["manifest",
        c.pairs("p.toml", '[[pair]]\nid = "a"\nhdr = "a.mp4"\nsdr = "b.mp4"\nsplt = "test"\n'),
        "--out", c.new("m.toml")], "unknown key 'splt'"),
    bad("pairs toml random bytes", lambda c: ["manifest", c.pairs("p.toml", NOT_UTF8), "--out", c.new("m.toml")],
        "not a TOML"),
    # output paths that are a file where a folder is expected, or the reverse
    bad("build --out is a file", lambda c: ["build", PAIRED, "--pairs", c.pairs("p.toml", "x"), "--out",
                                            str(c.a_file)], "is not a folder"),
    bad("synth --out is a file", lambda c: ["synth", c.synth_recipe, "--images", str(HDRI), "--out", str(c.a_file)],
        "is not a folder"),
    bad("extract --out is a file", lambda c: ["extract", "missing.mp4", "--out", str(c.a_file)], "is not a folder"),
    bad("extract --out below a file", lambda c: ["extract", "missing.mp4", "--out", str(c.a_file / "frames")],
        "is a file, not a folder"),
    bad("manifest --out is a folder", lambda c: ["manifest", c.pairs("p.toml", "x"), "--out", str(c.a_dir)],
        "is a folder"),
    bad("manifest --out below a file", lambda c: ["manifest", c.pairs("p.toml", "x"), "--out",
                                                  str(c.a_file / "m.toml")], "is a file, not a folder"),
    bad("train --out is a file", lambda c: ["train", "--model", "agcm", "--data", str(c.folder), "--out",
                                            str(c.a_file)], "is not a folder"),
    bad("convert OUT is a folder", lambda c: ["convert", "missing.mp4", str(c.a_dir)], "is a folder"),
    bad("convert OUT below a file", lambda c: ["convert", "missing.mp4", str(c.a_file / "o.mp4")],
        "is a file, not a folder"),
    bad("preview --png is a folder", lambda c: ["preview", str(c.folder), "--png", str(c.a_dir)], "is a folder"),
    bad("preview --png below a file", lambda c: ["preview", str(c.folder), "--png", str(c.a_file / "p.png")],
        "is a file, not a folder"),
    bad("preview --png not .png", lambda c: ["preview", str(c.folder), "--png", c.new("sheet.txt")], ".png"),
    bad("demo --out is a file", lambda c: ["demo", "--out", str(c.a_file)], "is not a folder"),
    # counts
    bad("preview --n 0", lambda c: ["preview", str(c.folder), "--n", "0", "--png", c.new("p.png")], "--n 0"),
    bad("preview --n -3", lambda c: ["preview", str(c.folder), "--n", "-3", "--png", c.new("p.png")], "--n -3"),
    bad("build --workers 0", lambda c: ["build", PAIRED, "--pairs", c.pairs("p.toml", "x"), "--out", c.new(),
                                        "--workers", "0"], "--workers"),
    bad("align --threads abc", lambda c: ["align", "a.mp4", "b.mp4", "--threads", "abc"], "--threads"),
    bad("synth --workers -1", lambda c: ["synth", c.synth_recipe, "--images", str(HDRI), "--out", c.new(),
                                         "--workers", "-1"], "--workers"),
    # manifest.jsonl holding the wrong things, read by every command that reads it
    *(
        bad(f"{command} manifest {label}", lambda c, m=make, r=reader: r(c, m(c)), expect)
        for label, (make, expect) in MANIFESTS.items()
        for command, reader in READERS.items()
    ),
    bad("verify manifest not JSON", lambda c: _verify(c, c.copy(b'{"index": 0\n')), "not a JSON line"),
    bad("verify manifest score NaN", lambda c: _verify(c, c.record(lambda r: r.update(score=float("nan")))),
        "score nan"),
    bad("eval manifest meta is a list", lambda c: _eval(c, c.record(lambda r: r.update(meta=[1]))), "meta"),
    bad("train manifest frames '3'", lambda c: _train(c, c.record(lambda r: r.update(frames="3"))), "frames '3'"),
    bad("preview manifest times too short", lambda c: _preview(c, c.record(lambda r: r.update(times=[0.0]))),
        "times"),
    bad("inspect manifest split 5", lambda c: _inspect(c, c.record(lambda r: r.update(split=5))), "split 5"),
    bad("inspect summary.json random bytes",
        lambda c: _inspect(c, (lambda d: (Path(d, "summary.json").write_bytes(NOT_UTF8), d)[1])(c.copy())),
        "summary.json"),
    # checkpoints whose fields are not what datakit writes (datakit.nn.train.check_checkpoint)
    bad("eval checkpoint model_args list", lambda c: ["eval", "--checkpoint",
        c.checkpoint(lambda p: p.update(model_args=[1, 2])), "--data", str(c.folder)], "model_args"),
    bad("eval checkpoint quantized list", lambda c: ["eval", "--checkpoint",
        c.checkpoint(lambda p: p.update(quantized=[1])), "--data", str(c.folder)], "quantized"),
    bad("eval checkpoint quantized names no weight", lambda c: ["eval", "--checkpoint",
        c.checkpoint(lambda p: p.update(quantized={"nope": __import__("torch").ones(1)})), "--data", str(c.folder)],
        "quantized"),
    bad("eval checkpoint extra list", lambda c: ["eval", "--checkpoint",
        c.checkpoint(lambda p: p.update(extra=[1])), "--data", str(c.folder)], "extra"),
    bad("eval checkpoint step 'x'", lambda c: ["eval", "--checkpoint",
        c.checkpoint(lambda p: p.update(step="x")), "--data", str(c.folder)], "step 'x'"),
    bad("train --resume inference-only checkpoint", lambda c: ["train", "--out", c.resume_run(), "--resume",
                                                               "--no-progress"], "training checkpoint"),
    # a damaged chunk: the shard and the sample are named, and verify is suggested
    bad("eval damaged chunk", lambda c: _eval(c, c.damaged()), SHARD_CRASH),
    bad("preview damaged chunk", lambda c: _preview(c, c.damaged()), SHARD_CRASH),
    bad("train damaged chunk", lambda c: _train(c, c.damaged()), SHARD_CRASH),
    # libx265 parameters, asked of libx265 before anything is encoded
    bad("convert --x265-params junk", lambda c: ["convert", "in.mp4", c.new("o.mp4"), "--x265-params", "junk"],
        "is not name=value"),
    bad("convert --x265-params unknown name", lambda c: ["convert", "in.mp4", c.new("o.mp4"), "--x265-params",
                                                         "crf=20:frobnicate=1"], "no parameter 'frobnicate'"),
    bad("eval --split ../x", lambda c: ["eval", "--data", str(c.folder), "--split", "../test"], "split '../test'"),
    bad("convert --x265-params bad value", lambda c: ["convert", "in.mp4", c.new("o.mp4"), "--x265-params",
                                                      "crf=abc"], "refuses crf=abc"),
    # recipes: numbers must be finite (TOML has inf and nan)
    bad("build recipe max_offset_seconds = inf", lambda c: ["build", c.write("r.toml",
        '[recipe]\nname = "x"\nkind = "paired"\n\n[align]\nmax_offset_seconds = inf\n'),
        "--pairs", c.pairs("p.toml", "x"), "--out", c.new()], "must be finite"),
    bad("synth recipe crf = nan", lambda c: ["synth", c.write("r.toml", SYNTH_RECIPE.replace("[20, 24]", "[20, nan]")),
                                             "--images", str(HDRI), "--out", c.new()], "must be finite"),
]


def run_cli(argv: list[str]) -> int:
    """``datakit.cli.main(argv)``; argparse's usage errors exit through SystemExit."""
    try:
        return main(argv)
    except SystemExit as exit_info:
        return int(exit_info.code or 0)


def one_line(capsys: pytest.CaptureFixture[str], code: int) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("datakit: "), err
    return lines[0]


@pytest.mark.parametrize(("argv", "expect"), CASES)
def test_bad_input_gives_one_line_and_exit_2(argv, expect, folder, tmp_path, capsys):
    line = one_line(capsys, run_cli(argv(Inputs(tmp_path, folder))))
    assert expect in line


@pytest.mark.fault("bad_input")
def test_damaged_chunk_message_names_shard_sample_and_verify(folder, tmp_path, capsys):
    c = Inputs(tmp_path, folder)
    damaged = c.damaged()
    line = one_line(capsys, main(_eval(c, damaged)))
    assert "shards/test/night-" in line and "sample 0 (night-n03-000)" in line
    assert "filter returned failure" in line and f"datakit verify {damaged}" in line
    assert main(["verify", damaged]) == 1  # and verify reports it as damage
    assert capsys.readouterr().out.count("DAMAGED") == 3


@pytest.mark.fault("bad_input")
@pytest.mark.parametrize("command", ["build", "synth"])
def test_workers_0_writes_nothing(command, folder, tmp_path, capsys):
    c = Inputs(tmp_path, folder)
    out = tmp_path / "never"
    if command == "build":  # a valid pairs file (its videos are only opened by the jobs)
        pairs = c.pairs("p.toml", '[[pair]]\nid = "a"\nhdr = "a.mp4"\nsdr = "b.mp4"\n')
        argv = ["build", PAIRED, "--pairs", pairs, "--out", str(out), "--workers", "0"]
    else:
        argv = ["synth", c.synth_recipe, "--images", str(HDRI), "--out", str(out), "--workers", "0"]
    one_line(capsys, run_cli(argv))
    assert not out.exists()


@pytest.mark.fault("bad_input")
def test_nothing_written_for_an_infinite_recipe_number(folder, tmp_path, capsys):
    c = Inputs(tmp_path, folder)
    recipe = c.write("r.toml", '[recipe]\nname = "x"\nkind = "paired"\n\n[align]\nmax_offset_seconds = inf\n')
    pairs = c.pairs("p.toml", f'[[pair]]\nid = "a"\nhdr = "{HDRI}/a.mp4"\nsdr = "{HDRI}/b.mp4"\n')
    one_line(capsys, main(["build", recipe, "--pairs", pairs, "--out", str(tmp_path / "never")]))
    assert not (tmp_path / "never").exists()


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    return subprocess.run([sys.executable, "-m", "datakit", *argv], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)  # fmt: skip


@pytest.mark.fault("bad_input")
def test_damaged_chunk_read_by_dataloader_workers_is_one_line(folder, tmp_path):
    """Through ``datakit train --workers 2`` the error is raised in a DataLoader worker process; torch re-raises it
    with the worker's traceback in its message, and the CLI still prints one line."""
    c = Inputs(tmp_path, folder)
    argv = _train(c, c.damaged())
    argv[argv.index("--workers") + 1] = "2"
    result = _run(argv, tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and lines[0].startswith("datakit: ") and SHARD_CRASH in lines[0], result.stderr


@pytest.mark.fault("bad_input")
@pytest.mark.parametrize(
    "argv",
    [
        ["preview", "{folder}", "--n", "0"],
        ["inspect", "{manifest_bytes}"],
    ],
    ids=["preview --n 0", "inspect random-bytes manifest"],
)
def test_subprocess_bad_input_is_one_line(argv, folder, tmp_path):
    c = Inputs(tmp_path, folder)
    values = {"folder": str(folder), "manifest_bytes": c.copy(NOT_UTF8)}
    result = _run([part.format(**values) for part in argv], tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and lines[0].startswith("datakit: "), result.stderr


def test_x265_params_that_libx265_accepts_pass():
    from datakit.io.x265 import _libx265, check_x265_params

    assert _libx265() is not None  # PyAV's bundled libx265 is found, so the names and values are checked
    assert check_x265_params("lossless=1:no-sao=1:keyint=48") == "lossless=1:no-sao=1:keyint=48"
