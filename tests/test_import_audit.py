"""datakit import / audit on fixtures made here: HDR10 frames encoded from the CC0 EXR images, extracted the
correct way (``datakit extract``), through swscale's ``rgb48le`` (PyAV), with a wrong matrix and from an 8-bit
source, laid out like HDRTV1K and HDRTV4K; and an SDR stream mapped into a PQ container (BT.2408 at 203 cd/m^2,
tagged HDR10 with MaxCLL 0) built with the shipped HDRTVMF1K recipe."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import hable_sdr_chain

HDRI = Path("/work/shared/data/hdri")
IMAGES = ("courtyard", "city", "forest")
SIZE = (256, 144)
pytestmark = pytest.mark.skipif(not HDRI.is_dir(), reason="needs the CC0 HDR images in /work/shared/data/hdri")


def datakit(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run([sys.executable, "-m", "datakit", *args], capture_output=True, text=True, env=env)
    if check and done.returncode != 0:
        raise AssertionError(f"datakit {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return done


def _scene_pq(name: str) -> np.ndarray:
    """The EXR at 256x144, BT.2020, median luminance 30 cd/m^2, highlights up to 4000: PQ R'G'B' float32."""
    import cv2

    from datakit.color.gamut import convert_gamut, luminance_weights
    from datakit.color.transfer import st2084_inverse_eotf
    from datakit.io.images import read_hdr_image

    image = read_hdr_image(HDRI / f"{name}.exr")
    rgb = np.maximum(convert_gamut(image.rgb_linear, image.primaries, "bt2020"), 0.0).astype(np.float32)
    rgb = cv2.resize(rgb, SIZE, interpolation=cv2.INTER_AREA)
    lum = rgb @ luminance_weights("bt2020").astype(np.float32)
    rgb = np.minimum(rgb * np.float32(30.0 / max(float(np.median(lum)), 1e-6)), 4000.0)
    return np.clip(st2084_inverse_eotf(rgb), 0.0, 1.0).astype(np.float32)


class Fixtures:
    def __init__(self, root: Path) -> None:
        import av

        from datakit.io.images import write_png8, write_png16_pq
        from datakit.io.reader import VideoReader
        from datakit.io.writer import HDR10Writer

        self.root = root
        self.variants = {v: root / v for v in ("extract", "swscale", "wrong_matrix", "eight_bit")}
        for folder in self.variants.values():
            folder.mkdir()
        sdr_dir = root / "sdr"
        sdr_dir.mkdir()
        for name in IMAGES:
            pq = _scene_pq(name)
            video = root / f"{name}.mkv"
            with HDR10Writer(video, *SIZE, 24, preset="ultrafast", crf=8) as writer:
                writer.write(pq)
                writer.write(pq)  # two frames: x265 with one frame sometimes leaves an unmuxable packet
            datakit("extract", str(video), "--out", str(root / f"x_{name}"))
            shutil.move(root / f"x_{name}" / "frame_000000.png", self.variants["extract"] / f"{name}.png")
            with av.open(str(video)) as container:  # swscale's rgb48le, as ffmpeg one-liners and PyAV users get it
                frame = next(container.decode(video=0))
                write_png16_pq(self.variants["swscale"] / f"{name}.png", frame.to_ndarray(format="rgb48le"))
            with VideoReader(video, encoding="pq", matrix="bt709") as reader:  # BT.709 instead of the tagged BT.2020
                write_png16_pq(self.variants["wrong_matrix"] / f"{name}.png", reader.read().rgb("uint16"))
            correct = self.codes("extract", name)
            eight = (np.rint(correct / 257.0) * 257).astype(np.uint16)  # an 8-bit PNG written as 16-bit
            write_png16_pq(self.variants["eight_bit"] / f"{name}.png", eight)
            write_png8(sdr_dir / f"{name}.png", np.rint(hable_sdr_chain(pq) * 255).astype(np.uint8))

    def codes(self, variant: str, name: str) -> np.ndarray:
        from datakit.audit.run import read_codes

        return read_codes(self.variants[variant] / f"{name}.png")

    def hdrtv1k(self, variant: str, dest: Path) -> Path:
        """HDRTV1K's layout: two images for training, one for testing."""
        for split, names in (("training_set/train", IMAGES[:2]), ("test_set/test", IMAGES[2:])):
            for side, source in (("hdr", self.variants[variant]), ("sdr", self.root / "sdr")):
                folder = dest / "dataset" / f"{split}_{side}"
                folder.mkdir(parents=True)
                for name in names:
                    shutil.copy(source / f"{name}.png", folder / f"{name}.png")
        return dest


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    return Fixtures(tmp_path_factory.mktemp("import_audit"))


def _verdicts(result: dict) -> list[dict[str, str]]:
    return [{f["kind"]: f["verdict"] for f in entry["findings"]} for entry in result["files"]]


def _finding(entry: dict, kind: str) -> dict:
    return next(f for f in entry["findings"] if f["kind"] == kind)


def test_audit_tells_each_fixture_apart(fixtures: Fixtures) -> None:
    from datakit.audit import CORRECT_BT2100
    from datakit.audit.run import audit_path

    results = {v: audit_path(folder, progress=False) for v, folder in fixtures.variants.items()}
    for entry in results["extract"]["files"]:
        conversion = _finding(entry, "conversion")
        assert conversion["verdict"] == "correct" and CORRECT_BT2100 in conversion["message"], entry
        assert _finding(entry, "matrix")["verdict"] == "bt2020nc"
        assert abs(_finding(entry, "gain")["evidence"]["gain"] - 1.0) < 1e-4
    for entry in results["swscale"]["files"]:
        gain = _finding(entry, "gain")
        assert gain["verdict"] == "gain error" and "swscale" in gain["message"], entry
        assert abs(gain["evidence"]["gain"] - 0.99614) < 2e-4
        assert _finding(entry, "conversion")["verdict"] == "faulty"
    for entry in results["wrong_matrix"]["files"]:
        assert _finding(entry, "matrix")["verdict"] == "bt709", entry
        assert _finding(entry, "gain")["verdict"] == "no gain error"
        assert _finding(entry, "conversion")["verdict"] == "faulty"
    for entry in results["eight_bit"]["files"]:
        assert _finding(entry, "bit_depth")["verdict"] == "8-bit source upconverted", entry
        assert _finding(entry, "conversion")["verdict"] == "faulty"
    assert all(v.get("not_hdr") == "HDR range" for r in results.values() for v in _verdicts(r))
    from datakit.audit.frames import audit_hdr
    from datakit.io.reader import VideoReader

    with VideoReader(fixtures.root / "city.mkv", encoding="pq", range="full") as reader:  # limited codes as full
        found = {f.kind: f for f in audit_hdr(reader.read().rgb("uint16"))}
    assert found["bit_depth"].verdict == "10-bit codes read as full range"
    assert found["legal_range"].verdict == "limited-range leftovers" and found["conversion"].problem
    done = datakit("audit", str(fixtures.variants["swscale"]), "--json")
    assert json.loads(done.stdout)["summary"]["gain"] == {"gain error": len(IMAGES)}


def test_audit_names_the_matrix_an_sdr_frame_was_decoded_with(fixtures: Fixtures, tmp_path: Path) -> None:
    from datakit.audit.frames import audit_sdr
    from datakit.io.images import read_png8
    from datakit.io.reader import VideoReader
    from datakit.io.writer import SDRWriter

    video = tmp_path / "sdr.mp4"
    with SDRWriter(video, *SIZE, 24, preset="ultrafast", crf=12) as writer:  # H.264, tagged BT.709
        for _ in range(2):
            writer.write(read_png8(fixtures.root / "sdr" / "courtyard.png"))
    for matrix, expected in ((None, "bt709"), ("bt601", "bt601")):  # as tagged, and swscale's untagged default
        with VideoReader(video, encoding="sdr", matrix=matrix) as reader:
            found = {f.kind: f for f in audit_sdr(reader.read().rgb("uint8"))}
        assert found["sdr_matrix"].verdict == expected and found["sdr_matrix"].problem == (expected != "bt709")
        assert found["sdr_range"].verdict == "full range"


def _flat_chroma_mask(video: Path) -> np.ndarray:
    """Pixels whose 3x3 neighbourhood of chroma samples is constant: swscale's chroma interpolation and ours
    agree there, so a gain fix alone must restore them."""
    from scipy.ndimage import maximum_filter, minimum_filter

    from datakit.io.reader import VideoReader

    with VideoReader(video, encoding="pq") as reader:
        _, u, v = reader.read().planes()
        flat = np.ones(u.shape, bool)
        for plane in (np.array(u), np.array(v)):
            flat &= maximum_filter(plane, 3) == minimum_filter(plane, 3)
    return np.repeat(np.repeat(flat, 2, axis=0), 2, axis=1)


def test_fix_brings_swscale_frames_within_one_code(fixtures: Fixtures, tmp_path: Path) -> None:
    from datakit.audit.frames import audit_hdr, fix_of
    from datakit.audit.gain import fix_gain
    from datakit.store.output import read_manifest
    from datakit.store.shards import ShardReader

    out = tmp_path / "out"
    datakit("import", "hdrtv1k", str(fixtures.hdrtv1k("swscale", tmp_path / "src")), "--out", str(out), "--fix",
            "--split", "test")  # fmt: skip
    records = {r["source_id"].removeprefix("test-").removeprefix("train-"): r for r in read_manifest(out)}
    flat_pixels = 0
    for name in IMAGES:
        correct = fixtures.codes("extract", name).astype(np.int64)
        swscale = fixtures.codes("swscale", name)
        repair = fix_of(audit_hdr(swscale))
        assert repair is not None
        fixed = fix_gain(swscale, repair["gain"], repair["offset"]).astype(np.int64)
        record = records[name]
        assert record["meta"]["fix"]["gain"] == repair["gain"]
        _, imported = ShardReader(out / record["shard"]).arrays(record["index"])
        np.testing.assert_array_equal(imported[0], fixed)
        unclipped = (correct.max(axis=-1) < 64000) & (correct.min(axis=-1) > 0) & (fixed.max(axis=-1) < 65535)
        weights = np.array([0.2627, 0.6780, 0.0593])  # BT.2020 luma: Y' does not depend on chroma interpolation
        luma_error = np.abs((fixed - correct) @ weights)[unclipped]  # both sides rounded per channel: up to 1.5
        assert luma_error.max() <= 1.5 and luma_error.mean() < 0.4
        assert np.abs((swscale.astype(np.int64) - correct) @ weights)[unclipped].max() > 100  # what the fix removed
        flat = _flat_chroma_mask(fixtures.root / f"{name}.mkv") & unclipped
        flat_pixels += int(flat.sum())
        if flat.any():  # where the chroma planes are flat, every channel agrees too
            assert np.abs(fixed - correct)[flat].max() <= 1
    assert flat_pixels > 100


@pytest.mark.slow
def test_import_hdrtv1k_then_train_eval_verify(fixtures: Fixtures, tmp_path: Path) -> None:
    src = fixtures.hdrtv1k("extract", tmp_path / "src")
    recipe = tmp_path / "recipe.toml"
    shipped = (Path(__file__).resolve().parent.parent / "recipes" / "import_hdrtv1k.toml").read_text()
    recipe.write_text(shipped.replace("size = 480", "size = 96").replace("step = 240", "step = 48")
                      .replace("remainder = 48", "remainder = 16"))  # fmt: skip
    out = tmp_path / "out"
    done = datakit("import", "hdrtv1k", str(src), "--out", str(out), "--recipe", str(recipe))
    assert "audit conversion: correct x3" in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    # 256x144 on a 96/48/16 grid: 4 columns (0, 48, 96, 144; 16 left over: not more than 16) x 2 rows
    assert summary["samples_per_split"] == {"test": 1, "train": 2 * 8}
    assert (out / "report" / "audit_lattice.png").is_file() and "Audit of the source files" in (
        out / "report.html"
    ).read_text()
    datakit("verify", str(out))
    again = datakit("import", "hdrtv1k", str(src), "--out", str(out), "--recipe", str(recipe))
    assert again.returncode == 0 and json.loads((out / "summary.json").read_text())["samples"] == 17
    run = tmp_path / "run"
    datakit("train", "--model", "agcm", "--data", str(out), "--out", str(run), "--steps", "2", "--batch", "2",
            "--crop", "64", "--no-progress")  # fmt: skip
    assert (run / "checkpoints" / "last.pt").is_file()
    scores = json.loads(datakit("eval", "--model", "classical", "--data", str(out), "--json").stdout)
    assert scores["samples"] == 1 and 10 < scores["metrics"]["psnr"] < 60
    assert scores["warnings"] == []  # correct ground truth: nothing to warn about


def test_eval_warns_about_an_unfixed_gain_error(tmp_path: Path) -> None:
    from datakit.importers.build import ground_truth_warnings

    for name, fix in (("unfixed", False), ("fixed", True)):
        (tmp_path / name).mkdir()
        summary = {"import": {"layout": "hdrtv1k", "fix": fix}, "audit": {"gain": {"gain error": 3}}}
        (tmp_path / name / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "built").mkdir()
    (tmp_path / "built" / "summary.json").write_text(json.dumps({"audit": {"gain": {"gain error": 3}}}))
    warnings = ground_truth_warnings([tmp_path / n for n in ("unfixed", "fixed", "built", "missing")])
    assert len(warnings) == 1 and "unfixed: 3 ground-truth HDR files carry a gain error" in warnings[0]


def test_hdrtv4k_records_the_version(fixtures: Fixtures, tmp_path: Path) -> None:
    from datakit.store.output import read_manifest

    src = tmp_path / "hdrtv4k"
    for version in ("SDR_hable", "SDR_darker"):
        (src / "test" / version).mkdir(parents=True)
    shutil.copytree(fixtures.variants["extract"], src / "test" / "HDR")
    for name in IMAGES:
        shutil.copy(fixtures.root / "sdr" / f"{name}.png", src / "test" / "SDR_hable" / f"{name}.png")
        from datakit.io.images import read_png8, write_png8

        darker = (read_png8(fixtures.root / "sdr" / f"{name}.png") // 2).astype(np.uint8)
        write_png8(src / "test" / "SDR_darker" / f"{name}.png", darker)
    out = tmp_path / "out"
    datakit("import", "hdrtv4k", str(src), "--out", str(out))
    records = read_manifest(out)
    assert sorted({r["meta"]["version"] for r in records}) == ["darker", "hable"]
    assert len(records) == 2 * len(IMAGES) and {r["split"] for r in records} == {"test"}
    audit = json.loads((out / "summary.json").read_text())["audit"]
    assert audit["conversion"] == {"correct": len(IMAGES)}  # each HDR frame audited once, not once per version
    assert audit["sdr_range"] == {"full range": 2 * len(IMAGES)}


def test_pairs_csv_with_hdr10_video_frames(fixtures: Fixtures, tmp_path: Path) -> None:
    from datakit.store.output import read_manifest

    table = tmp_path / "pairs.csv"
    rows = [f"{fixtures.root / f'{n}.mkv'},{fixtures.root / 'sdr' / f'{n}.png'},test,1," for n in IMAGES[:2]]
    table.write_text("hdr,sdr,split,hdr_frame,sdr_frame\n" + "\n".join(rows) + "\n")
    out = tmp_path / "out"
    datakit("import", "pairs", str(table), "--out", str(out))
    records = read_manifest(out)
    assert [r["source_id"] for r in records] == ["city-f1", "courtyard-f1"]
    assert all(r["hdr_frames"] == [1] and r["meta"]["audit"]["conversion"] == "correct" for r in records)


def test_import_errors_are_one_line(fixtures: Fixtures, tmp_path: Path) -> None:
    import cv2

    src = tmp_path / "pairs"
    (src / "hdr").mkdir(parents=True)
    (src / "sdr").mkdir()
    correct = fixtures.codes("extract", "city")
    sdr = cv2.imread(str(fixtures.root / "sdr" / "city.png"))
    cv2.imwrite(str(src / "hdr" / "lonely.png"), correct)
    done = datakit("import", "pairs", str(src), "--out", str(tmp_path / "o1"), check=False)
    assert done.returncode == 2 and "lonely.png: no partner" in done.stderr and len(done.stderr.splitlines()) == 1
    (src / "hdr" / "lonely.png").unlink()
    cv2.imwrite(str(src / "hdr" / "small.png"), correct[:, :128])  # size mismatch
    cv2.imwrite(str(src / "sdr" / "small.png"), sdr)
    cv2.imwrite(str(src / "hdr" / "eight.png"), (correct // 257).astype(np.uint8))  # 8-bit where 16-bit is needed
    cv2.imwrite(str(src / "sdr" / "eight.png"), sdr)
    cv2.imwrite(str(src / "hdr" / "deep.png"), correct)
    cv2.imwrite(str(src / "sdr" / "deep.png"), sdr.astype(np.uint16) * 257)  # 16-bit SDR
    (src / "hdr" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")  # corrupt
    cv2.imwrite(str(src / "sdr" / "broken.png"), sdr)
    cv2.imwrite(str(src / "hdr" / "good.png"), correct)
    cv2.imwrite(str(src / "sdr" / "good.png"), sdr)
    out = tmp_path / "o2"
    done = datakit("import", "pairs", str(src), "--out", str(out), check=False)
    assert done.returncode == 1 and done.stderr.splitlines()[-1] == "datakit: 4 of 5 sources failed"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failed_sources"] == ["broken", "deep", "eight", "small"]
    errors = {s: summary["sources"][s]["error"] for s in summary["failed_sources"]}
    assert "not a readable image" in errors["broken"]
    assert "16-bit SDR" in errors["deep"]
    assert "8-bit image where a 16-bit PQ HDR image is needed" in errors["eight"]
    assert "differ in size" in errors["small"]
    assert summary["sources"]["good"]["state"] == "done" and "Traceback" not in done.stderr
    from datakit.store.output import OutputFolder

    with OutputFolder(out).locked():  # one writer at a time: an import into a folder another run holds is refused
        busy = datakit("import", "pairs", str(src), "--out", str(out), check=False)
    assert busy.returncode == 2 and "another datakit run" in busy.stderr and len(busy.stderr.splitlines()) == 1


@pytest.mark.slow
def test_sdr_in_a_pq_container_keeps_no_clips(demo_pair_regraded, tmp_path: Path) -> None:
    from datakit.color.transfer import st2084_inverse_eotf
    from datakit.io.metadata import ContentLightLevel
    from datakit.io.reader import VideoReader
    from datakit.io.writer import HDR10Writer
    from datakit.synth.itm import bt2408_display_mapping

    pairs = tmp_path / "pairs"
    pairs.mkdir()
    shutil.copy(demo_pair_regraded.sdr, pairs / f"fake_sdr{demo_pair_regraded.sdr.suffix}")
    with VideoReader(demo_pair_regraded.hdr, encoding="pq") as reader:  # an SDR grade of the master (Hable)
        fps = reader.info.fps
        frames = [hable_sdr_chain(f.rgb("float32")) for f in reader]
    height, width = frames[0].shape[:2]
    with HDR10Writer(pairs / "fake_hdr10.mkv", width, height, fps, preset="ultrafast",
                     light_level=ContentLightLevel(0, 0)) as writer:  # fmt: skip
        for rgb_sdr in frames:
            writer.write(np.clip(st2084_inverse_eotf(bt2408_display_mapping(rgb_sdr)), 0, 1).astype(np.float32))
    probe = datakit("probe", str(pairs / "fake_hdr10.mkv"))
    assert "looks like SDR in a PQ container" in probe.stdout and "MaxCLL 0" in probe.stdout
    out = tmp_path / "out"
    recipe = Path(__file__).resolve().parent.parent / "recipes" / "hdrtvmf1k.toml"
    datakit("build", str(recipe), "--pairs", str(pairs), "--out", str(out))
    summary = json.loads((out / "summary.json").read_text())
    status = summary["sources"]["fake"]
    assert summary["samples"] == 0 and status["clips_kept"] == 0
    assert summary["rejected_by_reason"].get("not_hdr", 0) >= 1
    assert status["verdict"].startswith("looks like SDR in a PQ container: peak")
    assert status["not_hdr_evidence"]["p999_nits"] < 400 and status["not_hdr_evidence"]["peak_nits"] < 1000
    assert "looks like SDR in a PQ container" in (out / "report.html").read_text()
