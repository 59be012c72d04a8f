"""Frame-exact alignment or an honest flag, on pairs the project did not design (:mod:`tests.truth_pairs`):
slow pans over the CC0 HDR images, SDR from the synthesis tone mappers at half and quarter resolution, shifted,
with dropped frames, repeated frames (24 -> 30 fps), 25 -> 24 fps by dropping, 24000/1001 vs 24 fps, and
low-texture shots with one hard cut. The truth is the HDR frame each SDR frame shows."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction

import pytest

from tests.truth_pairs import HDRI, PairSpec, TruthPair, make_pair, pairs_file, resampled, segment_accuracy, shifted

N = 96  # HDR frames (4 s at 24 fps)

SPECS = [
    # Found 1: Reinhard at half resolution, shifted 3 frames, two SDR frames dropped 20 frames in, slow pan
    PairSpec("drop2", (("forest.exr", 0.04, 0.0),), N, shifted(N, 3, dropped=(23, 24))),
    # repeats: 24 -> 30 fps (one HDR frame in four shown twice), Hable, quarter resolution
    PairSpec(
        "pulldown",
        (("courtyard.exr", 0.05, 0.0),),
        N,
        resampled(N, 4, 24 / 30),
        fps_sdr=Fraction(30),
        operator="hable",
        sdr_size=(64, 36),
    ),
    # 25 -> 24 fps by dropping one frame in 25, BT.2446 A, half resolution
    PairSpec(
        "drop25",
        (("city.exr", 0.05, 0.0),),
        100,
        resampled(100, 2, 25 / 24),
        fps_hdr=Fraction(25),
        operator="bt2446a",
    ),
    # the same frames at 24000/1001 fps against 24 fps (the timing drifts by a frame every 1001)
    PairSpec("drift", (("studio.exr", 0.05, 0.0),), N, shifted(N, 5), fps_sdr=Fraction(24000, 1001)),
    # a few irregular drops, quarter resolution, Hable
    PairSpec(
        "irregular",
        (("interior.exr", 0.04, 0.0),),
        N,
        shifted(N, 2, dropped=(15, 38, 39, 71)),
        operator="hable",
        sdr_size=(64, 36),
    ),
    # Found 4: slow pans over low-texture pictures with one hard cut, SDR shifted 4 frames ...
    PairSpec("cut", (("sunset.exr", 0.02, 6.0), ("sunrise.exr", 0.02, 6.0)), N, shifted(N, 4)),
    # ... and repeated up to 30 fps
    PairSpec(
        "cut30",
        (("sunset.exr", 0.02, 6.0), ("sunrise.exr", 0.02, 6.0)),
        N,
        resampled(N, 4, 24 / 30),
        fps_sdr=Fraction(30),
    ),
]


@pytest.fixture(scope="module")
def truth_pairs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TruthPair]:
    if not all((HDRI / image).is_file() for spec in SPECS for image, _, _ in spec.shots):
        pytest.skip(f"the CC0 HDR images are missing from {HDRI}")
    folder = tmp_path_factory.mktemp("truth_pairs")
    return {spec.name: make_pair(folder, spec) for spec in SPECS}


def _align_json(pair: TruthPair) -> tuple[int, dict | None, str]:
    run = subprocess.run(
        [sys.executable, "-m", "datakit", "align", str(pair.hdr), str(pair.sdr), "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return run.returncode, (json.loads(run.stdout) if run.returncode == 0 else None), run.stderr


@pytest.mark.parametrize("name", [spec.name for spec in SPECS])
def test_align_maps_every_frame_right_or_flags_it(truth_pairs, name):
    pair = truth_pairs[name]
    code, data, stderr = _align_json(pair)
    assert code == 0, stderr
    right_or_flagged, right = segment_accuracy(data, pair.truth)
    assert right_or_flagged >= 0.99, (right, data["segments"], data.get("segment_evidence"), data["reasons"])
    assert len(data["segments"]) == len(data["segment_evidence"])
    for (first, last, _), detail in zip(data["segments"], data["segment_evidence"], strict=True):
        assert 0.0 <= detail["confidence"] <= 1.0
        assert all(first <= a <= b <= last for a, b in detail["uncertain"])
        if detail["uncertain"]:  # a segment's confidence is that of its weakest stretch
            assert detail["confidence"] < 0.5


def test_hard_cut_fixes_the_offset_of_low_texture_pans(truth_pairs):
    """Found 4: the cut alone fixes the offset to the frame, and the result says the cut was used. Repeated up to
    30 fps, the cut pins the offset at the cut; which low-texture frames are the repeats the pictures do not say,
    so those stretches are marked uncertain instead of being refused or guessed."""
    for name in ("cut", "cut30"):
        code, data, stderr = _align_json(truth_pairs[name])
        assert code == 0, stderr
        assert "cut" in {d["evidence"] for d in data["segment_evidence"]}
        right_or_flagged, right = segment_accuracy(data, truth_pairs[name].truth)
        assert right_or_flagged >= 0.99
        if name == "cut":
            assert right >= 0.99, (name, data["segments"], data["reasons"])
            assert not data["uncertain"]


def test_hdrtvmf1k_build_keeps_only_true_frames(truth_pairs, tmp_path):
    from datakit.pairs.build import build_dataset
    from datakit.recipes import shipped_recipe

    pairs = pairs_file(tmp_path, list(truth_pairs.values()))
    summary = build_dataset(shipped_recipe("hdrtvmf1k"), pairs, tmp_path / "out", report=False)
    records = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    kept = {}
    for record in records:
        kept.setdefault(record["source_id"], set()).add((tuple(record["sdr_frames"]), tuple(record["hdr_frames"])))
    assert len(kept) >= len(truth_pairs) - 2, summary  # most pairs keep clips ...
    for source, clips in kept.items():  # ... and every kept clip has its true frames
        truth = truth_pairs[source].truth
        for sdr_frames, hdr_frames in clips:
            assert list(hdr_frames) == [truth[i] for i in sdr_frames], (source, sdr_frames, hdr_frames)
    # the clip's temporal margin (its HDR frames against their neighbours on the thumbnails) is recorded
    assert all(isinstance(r["meta"]["temporal_margin"], float) for r in records)
    assert sum(s.get("rejected", {}).get("ambiguous_time", 0) for s in summary["sources"].values()) >= 1


@pytest.mark.parametrize("recipe", ["hdrtv1k", "kpnmfi"])
def test_sparse_build_keeps_only_true_frames(truth_pairs, tmp_path, recipe):
    """Sparse builds (one frame / three frames every 2 s, HDR frames sought) check each clip in time too: the HDR
    frames within 3 of the predicted ones are decoded and compared on thumbnails, as in a dense build."""
    from datakit.pairs.build import build_dataset
    from datakit.recipes import shipped_recipe

    names = ("drop2", "pulldown", "drop25", "drift", "irregular")  # slow pans with drops, repeats and drift
    pairs = pairs_file(tmp_path, [truth_pairs[n] for n in names])
    summary = build_dataset(shipped_recipe(recipe), pairs, tmp_path / "out", report=False)
    records = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert records, summary
    for record in records:
        truth = truth_pairs[record["source_id"]].truth
        assert record["hdr_frames"] == [truth[i] for i in record["sdr_frames"]], (record["source_id"], record)
        assert isinstance(record["meta"]["temporal_margin"], float), record["meta"]
