"""Alignment of HDR10/SDR pairs: real encoded demo pairs checked against their truth.json, plus unit tests of
the pieces (rank features, black bars, geometry, global search) on synthetic data with known answers."""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction

import cv2
import numpy as np
import pytest

from datakit.errors import AlignmentError, NotHDR10Error
from datakit.pairs import align as A
from datakit.pairs.align import MIN_CONFIDENCE, Alignment, SpatialAlignment, align_pair, align_thumbnails
from datakit.pairs.analysis import Thumbnails, decode_thumbnails


def expected_hdr_indices(truth: dict) -> list[int]:
    """HDR frame nearest to the scene time each SDR frame shows (the truth, rounded to the HDR grid)."""
    fps = float(Fraction(truth["fps_hdr"]))
    return [int(np.floor(t * fps + 0.5)) for t in truth["sdr_frame_hdr_time"]]


def mapping_accuracy(alignment: Alignment, truth: dict) -> float:
    expected = expected_hdr_indices(truth)
    got = [alignment.temporal.hdr_index_for(i) for i in range(len(expected))]
    return float(np.mean([g == e for g, e in zip(got, expected, strict=True)]))


def check_geometry(alignment: Alignment, truth: dict) -> None:
    assert np.all(np.abs(np.array(alignment.spatial.sdr_picture) - truth["sdr_picture"]) <= 2)
    assert alignment.spatial.scale == pytest.approx(truth["scale"], rel=0.01)
    # the SDR picture corners land on the HDR frame corners (within 2 HDR px)
    x, y, w, h = truth["sdr_picture"]
    corners = alignment.spatial.sdr_to_hdr(np.array([x, x + w]), np.array([y, y + h]))
    assert np.allclose(corners[0], [0, truth["hdr_size"][0]], atol=2)
    assert np.allclose(corners[1], [0, truth["hdr_size"][1]], atol=2)


# ------------------------------------------------------------------------------------------- encoded pairs


def test_demo_pair_offset_geometry_and_mapping(demo_pair):
    truth = demo_pair.truth_data
    alignment = align_pair(demo_pair.hdr, demo_pair.sdr)
    assert alignment.offset_frames == truth["offset_frames"] == 6
    assert alignment.offset_seconds == pytest.approx(truth["offset_seconds"], abs=1e-9)
    assert alignment.temporal.ratio == 1.0
    check_geometry(alignment, truth)
    assert alignment.spatial.refined
    assert alignment.confidence >= MIN_CONFIDENCE
    assert mapping_accuracy(alignment, truth) == 1.0
    assert alignment.temporal.hdr_index_for(truth["frames_sdr"]) is None  # past the SDR end

    data = json.loads(json.dumps(alignment.to_dict()))  # JSON-ready
    for key in ("offset_frames", "offset_seconds", "fps_hdr", "fps_sdr", "sdr_picture", "scale", "confidence"):
        assert key in data
    assert data["fps_hdr"] == 24.0 and data["sdr_picture"] == truth["sdr_picture"]
    again = Alignment.from_dict(data)
    assert [again.temporal.hdr_index_for(i) for i in range(truth["frames_sdr"])] == expected_hdr_indices(truth)
    assert again.spatial.valid_hdr_box() == alignment.spatial.valid_hdr_box() == [0, 0, 512, 288]


def test_regraded_pillarboxed_pair(demo_pair_regraded):
    """A different tone-mapping operator, exposure, saturation and OETF, pillarboxed and larger than the HDR."""
    truth = demo_pair_regraded.truth_data
    alignment = align_pair(demo_pair_regraded.hdr, demo_pair_regraded.sdr)
    assert alignment.offset_frames == truth["offset_frames"] == 9
    check_geometry(alignment, truth)
    assert truth["scale"] < 1.0  # the SDR is the larger one here
    assert mapping_accuracy(alignment, truth) == 1.0
    assert alignment.confidence >= MIN_CONFIDENCE


def test_frame_rate_mismatch(demo_pair_25fps):
    """SDR at 25 fps showing the same scene times as the 24 fps HDR (same speed, not PAL speed-up)."""
    truth = demo_pair_25fps.truth_data
    alignment = align_pair(demo_pair_25fps.hdr, demo_pair_25fps.sdr)
    assert alignment.temporal.fps_sdr == 25 and alignment.temporal.fps_hdr == 24
    assert alignment.temporal.ratio == 1.0
    assert alignment.offset_frames is None  # only meaningful frame for frame
    assert abs(alignment.offset_seconds - truth["offset_seconds"]) < 0.5 / 24
    assert mapping_accuracy(alignment, truth) >= 0.9
    assert alignment.spatial.is_identity()


def test_dropped_sdr_frames(demo_pair_dropped):
    truth = demo_pair_dropped.truth_data
    alignment = align_pair(demo_pair_dropped.hdr, demo_pair_dropped.sdr)
    assert mapping_accuracy(alignment, truth) == 1.0
    # drops before SDR frames 20, 44 (two frames) and 67 (numbers after dropping): three offset changes
    assert [s.first for s in alignment.temporal.segments] == [0, 20, 44, 67]
    assert alignment.temporal.segments[0].offset_seconds == pytest.approx(4 / 24)
    assert alignment.temporal.segments[-1].offset_seconds == pytest.approx(8 / 24)
    check_geometry(alignment, truth)


def test_different_titles_are_refused(demo_pair, demo_pair_other_title):
    """Same scene kinds, cuts and camera paths, other random pictures: not the same title."""
    with pytest.raises(AlignmentError, match="could not be aligned"):
        align_pair(demo_pair.hdr, demo_pair_other_title.sdr)
    alignment = align_pair(demo_pair.hdr, demo_pair_other_title.sdr, min_confidence=None)
    assert alignment.confidence < MIN_CONFIDENCE
    assert alignment.reasons and alignment.to_dict()["reasons"]


def test_swapped_files_and_cli(demo_pair, capsys):
    from datakit.cli import main

    with pytest.raises(NotHDR10Error):
        align_pair(demo_pair.sdr, demo_pair.hdr)
    assert main(["align", str(demo_pair.sdr), str(demo_pair.hdr)]) == 2
    err = capsys.readouterr().err
    assert "not HDR10" in err and len(err.strip().splitlines()) == 1

    assert main(["align", str(demo_pair.hdr), str(demo_pair.sdr), "--json", "--no-refine"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["offset_frames"] == 6 and data["sdr_picture"] == demo_pair.truth_data["sdr_picture"]


def test_sparse_windows_and_precomputed_thumbnails(demo_pair):
    truth = demo_pair.truth_data
    windows = [(0.6, 1.6), (2.6, 3.4)]
    thumbs = decode_thumbnails(demo_pair.sdr, windows=windows, bgr_width=128)
    assert thumbs.windows == tuple(windows)
    assert np.all((thumbs.times >= 0.6 - 1e-6) & (thumbs.times < 3.4))
    assert not np.any((thumbs.times >= 1.6) & (thumbs.times < 2.6))
    assert thumbs.bgr is not None and thumbs.bgr.shape[1:] == (96, 128, 3) and thumbs.bgr.dtype == np.uint8
    full = decode_thumbnails(demo_pair.sdr)
    assert full.count == truth["frames_sdr"] and full.luma.shape[1:] == (48, 64)
    positions = np.searchsorted(full.indices, thumbs.indices)
    assert np.array_equal(full.indices[positions], thumbs.indices)
    assert np.allclose(full.luma[positions], thumbs.luma, atol=1e-6)  # same frames, whichever way decoded
    assert float(full.luma[:, :5].max()) < 0.03  # the letterbox bar rows are black

    alignment = align_pair(demo_pair.hdr, demo_pair.sdr, thumbs_sdr=thumbs, windows=windows, max_offset_seconds=1.0)
    assert alignment.offset_frames == 6
    assert mapping_accuracy(alignment, truth) == 1.0  # frames outside the windows follow the model


# ------------------------------------------------------------------------------------------- unit tests


def test_ranks_average_ties_and_features_ignore_tone_curves():
    ranks = A.rank_rows(np.array([[3.0, 1.0, 1.0, 2.0]], np.float32))
    assert np.allclose(ranks, [[0.875, 0.25, 0.25, 0.625]])  # (average 1-based rank - 0.5) / n

    rng = np.random.default_rng(1)
    images = cv2.GaussianBlur(rng.random((24, 18 * 4, 32)).astype(np.float32), (0, 0), 1.5).reshape(24, 18, 4, 32)
    images = images[:, :, 0]
    feats, valid = A.frame_features(images)
    graded, _ = A.frame_features(np.sqrt(images.astype(np.float64)) * 0.7 + 0.05)  # any increasing tone curve
    assert valid.all() and np.allclose(feats, graded, atol=1e-5)
    assert np.allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
    flat_feats, flat_valid = A.frame_features(np.full((2, 18, 32), 0.3, np.float32))
    assert not flat_valid.any() and not flat_feats.any()


def test_viterbi_matches_brute_force():
    import itertools

    rng = np.random.default_rng(5)
    for _ in range(100):
        m, k = int(rng.integers(1, 6)), int(rng.integers(1, 4))
        score = rng.random((m, k))
        reset = rng.random(m) < 0.3
        reset[0] = True

        def value(path, score=score, reset=reset, m=m):
            changes = sum(path[i] != path[i - 1] and not reset[i] for i in range(1, m))
            return sum(score[i, path[i]] for i in range(m)) - 0.3 * changes

        best = max(value(p) for p in itertools.product(range(k), repeat=m))
        assert value(A.viterbi(score, reset, 0.3)) == pytest.approx(best)


def test_black_bars_survive_dark_scenes():
    rows = np.full((40, 100), 0.0, np.float32)
    rows[:, 12:88] = 0.012  # the picture is near black in most frames (a night scene)...
    rows[30:, 12:88] = 0.4  # ...and bright in a few
    rows[:, 11] = rows[:, 88] = 0.004  # codec ringing next to the picture is still bar
    cols = np.full((40, 160), 0.3, np.float32)  # no pillarbox
    (x, y, w, h), clarity = A.detect_active_area(rows, cols)
    assert (x, y, w, h) == (0, 12, 160, 76) and clarity == 1.0


def test_geometry_maps_and_resamples_consistently():
    spatial = SpatialAlignment(
        sdr_size=(320, 240),
        hdr_size=(640, 360),
        sdr_picture=(0, 30, 320, 180),
        hdr_picture=(0, 0, 640, 360),
        scale_x=2.0,
        scale_y=2.0,
        tx=0.0,
        ty=0.0,
        confidence=1.0,
    )
    xs, ys = np.array([0.0, 160.5, 319.5]), np.array([30.0, 100.5, 209.5])
    hx, hy = spatial.sdr_to_hdr(xs, ys)
    assert np.allclose(hx, [0, 321, 639]) and np.allclose(hy, [0, 141, 359])
    assert np.allclose(spatial.hdr_to_sdr(hx, hy), (xs, ys))
    m = spatial.matrix_sdr_to_hdr()  # pixel centres: centre (i, j) -> edge coords (i + 0.5, j + 0.5)
    assert np.allclose(m @ [10, 40, 1], np.array(spatial.sdr_to_hdr(10.5, 40.5)) - 0.5)
    assert np.allclose(spatial.matrix_hdr_to_sdr() @ np.append(m @ [10, 40, 1], 1), [10, 40])
    assert spatial.valid_hdr_box() == [0, 0, 640, 360] and not spatial.is_identity()

    rng = np.random.default_rng(2)
    hdr = cv2.GaussianBlur(rng.random((360, 640)).astype(np.float32), (0, 0), 6)
    sdr = np.zeros((240, 320), np.float32)
    sdr[30:210] = cv2.resize(hdr, (320, 180), interpolation=cv2.INTER_AREA)
    back = spatial.sdr_to_hdr_grid(sdr)
    assert back.shape == hdr.shape and np.abs(back - hdr)[4:-4, 4:-4].max() < 0.02 * np.ptp(hdr)
    assert (
        spatial.clip_confidence(np.repeat(hdr[None, ..., None], 3, -1), np.repeat(back[None, ..., None], 3, -1)) > 0.9
    )
    shifted = np.roll(back, 24, axis=1)
    assert (
        spatial.clip_confidence(np.repeat(hdr[None, ..., None], 3, -1), np.repeat(shifted[None, ..., None], 3, -1))
        < 0.5
    )


def test_refinement_corrects_a_cropped_sdr():
    """The SDR shows a crop of the HDR picture: black bars alone give the wrong scale; registration fixes it."""
    rng = np.random.default_rng(3)
    hdr = cv2.GaussianBlur(rng.random((216, 384)).astype(np.float32), (0, 0), 3)
    hdr = (hdr - hdr.min()) / np.ptp(hdr)
    crop_x, crop_y, crop_w = 6.0, 3.375, 372.0  # 372 x 209.25: the frame's aspect ratio
    sx = crop_w / 320
    sdr = np.zeros((240, 320), np.float32)
    m = np.array([[sx, 0, crop_x + 0.5 * sx - 0.5], [0, sx, crop_y + 0.5 * sx - 0.5]])  # SDR centre -> HDR centre
    picture = cv2.warpAffine(hdr, m, (320, 180), flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP)
    sdr[30:210] = np.sqrt(picture)  # and a different tone curve
    initial = SpatialAlignment((320, 240), (384, 216), (0, 30, 320, 180), (0, 0, 384, 216), 1.2, 1.2, 0.0, 0.0, 1.0)
    refined = A.refine_spatial(initial, [(hdr, sdr)])
    assert refined.refined and refined.residual > 2
    assert refined.scale == pytest.approx(sx, rel=0.003)
    assert refined.tx == pytest.approx(crop_x, abs=0.3) and refined.ty == pytest.approx(crop_y, abs=0.3)
    assert refined.confidence > 0.9 and refined.reasons  # the disagreement with the bars is reported


def _synthetic_stream(n: int, fps: Fraction, frames: np.ndarray, kind: str) -> Thumbnails:
    width, height = 256, 144
    profiles = np.arange(0, n, 12)
    return Thumbnails(
        indices=np.arange(n),
        times=np.arange(n) / float(fps),
        luma=frames.astype(np.float32),
        bgr=None,
        row_profile=np.full((profiles.size, height), 0.4, np.float32),
        col_profile=np.full((profiles.size, width), 0.4, np.float32),
        profile_rows=profiles,
        fps=fps,
        frame_size=(width, height),
        kind=kind,
    )


def test_pal_speed_up_and_drops_on_long_synthetic_streams():
    """A 25 fps SDR showing every 24 fps HDR frame (4 % faster), with two dropped frames: ratio 25/24."""
    rng = np.random.default_rng(4)
    texture = cv2.GaussianBlur(rng.random((600, 1200)).astype(np.float32), (0, 0), 5)
    n = 1500
    film = np.empty((n, 36, 64), np.float32)
    k = 0
    while k < n:  # shots of 2-6 s, each panning over another part of the texture
        length = int(rng.integers(48, 144))
        x, y = rng.integers(0, 900), rng.integers(0, 400)
        vx, vy = rng.normal(0, 2.5, 2)
        for i in range(min(length, n - k)):
            m = np.array([[4.0, 0, x + vx * i], [0, 4.0, y + vy * i]], np.float32)
            film[k] = cv2.warpAffine(
                texture, m, (64, 36), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT
            )
            k += 1
    offset, dropped = 17, {400, 950}
    shown = [i + offset for i in range(n - 40) if i not in dropped]
    sdr = 0.9 * np.sqrt(film[shown]) + rng.normal(0, 0.002, (len(shown), 36, 64)).astype(np.float32)
    hdr_thumbs = _synthetic_stream(n, Fraction(24), film, "hdr10")
    sdr_thumbs = _synthetic_stream(len(shown), Fraction(25), sdr, "sdr")
    alignment, _ = align_thumbnails(hdr_thumbs, sdr_thumbs, max_offset_seconds=2.0)
    assert alignment.temporal.ratio == pytest.approx(25 / 24)
    assert alignment.temporal.segments[0].offset_seconds == pytest.approx(offset / 24, abs=0.01 / 24)
    assert [s.first for s in alignment.temporal.segments] == [0, 400, 949]
    got = [alignment.temporal.hdr_index_for(i) for i in range(len(shown))]
    assert got == shown


def test_refinement_keeps_the_geometry_of_smooth_pictures(tmp_path):
    """Sky gradients and soft hills (the demo's sunset) locate almost nothing: an affine registration drifted by
    pixels on them while barely raising its correlation. The refinement must keep the true (identity) geometry."""
    from datakit.io.reader import VideoReader
    from datakit.samples import DemoSpec, make_demo_pair

    spec = DemoSpec(
        hdr_size=(1920, 1080), sdr_size=(1920, 1080), scene_frames=(24,), offset_frames=0, sdr_tail_frames=0,
        preset="ultrafast", keyint=24,
    )  # fmt: skip
    pair = make_demo_pair(tmp_path, spec)
    hdr, sdr = VideoReader(pair.hdr), VideoReader(pair.sdr)
    picks = [0, 11, 22]
    pairs = [(h.luma(), s.luma()) for h, s in zip(hdr.read_at(picks), sdr.read_at(picks), strict=True)]
    initial = SpatialAlignment((1920, 1080), (1920, 1080), (0, 0, 1920, 1080), (0, 0, 1920, 1080), 1, 1, 0, 0, 1.0)
    for one in pairs:  # each frame alone, and the three together
        refined = A.refine_spatial(initial, [one])
        assert refined.residual is None or refined.residual <= 1.5, refined
    refined = A.refine_spatial(initial, pairs)
    assert (refined.scale_x, refined.scale_y, refined.tx, refined.ty) == (1, 1, 0, 0), refined


def _panning_film(n: int, seed: int = 7) -> np.ndarray:
    """(n, 36, 64) luma of a slow pan (0.6 px per frame) over blurred noise."""
    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.random((200, 400)).astype(np.float32), (0, 0), 3)
    out = np.empty((n, 36, 64), np.float32)
    for i in range(n):
        m = np.array([[2.0, 0, 40 + 0.6 * i], [0, 2.0, 30.0]], np.float32)
        out[i] = cv2.warpAffine(texture, m, (64, 36), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    return out


def test_clip_timing_moves_a_clip_to_the_frames_it_shows_and_flags_static_ones():
    film = _panning_film(60)
    hdr = _synthetic_stream(60, Fraction(24), film, "hdr10")
    sdr = _synthetic_stream(50, Fraction(24), 0.8 * np.sqrt(film[5:55]), "sdr")  # SDR frame i shows HDR i + 5
    spatial = A.pair_features(hdr, sdr).spatial
    frames = list(range(20, 30))
    right = A.check_clip_timing(hdr, sdr, spatial, frames, [i + 5 for i in frames])
    assert right.shift == 0 and right.clear and right.margin > 4
    moved = A.check_clip_timing(hdr, sdr, spatial, frames, [i + 3 for i in frames])
    assert moved.shift == 2 and moved.clear
    still = np.repeat(film[:1], 60, axis=0)  # no motion: no offset wins
    static = A.check_clip_timing(
        _synthetic_stream(60, Fraction(24), still, "hdr10"), _synthetic_stream(50, Fraction(24), still[:50], "sdr"),
        spatial, frames, [i + 5 for i in frames],
    )  # fmt: skip
    assert not static.clear


def test_assemble_takes_the_weakest_score_and_the_weaker_side():
    """One rule for every matcher: temporal confidence = weakest score (its reason shown below 0.9), overall =
    the weaker of temporal and spatial; the dense and the keyframe matcher both return TemporalMatch."""
    film = _panning_film(80)
    hdr = _synthetic_stream(80, Fraction(24), film, "hdr10")
    sdr = _synthetic_stream(70, Fraction(24), np.sqrt(film[6:76]), "sdr")
    features = A.pair_features(hdr, sdr)
    match = A.DenseMatcher(2.0).match(features)
    assert isinstance(match, A.TemporalMatch) and match.temporal.offset_frames == 6
    weak = dataclasses.replace(match, scores=(*match.scores, A.Score("test", 0.7, "a weak test score")))
    alignment = A.assemble(features.spatial, weak)
    assert alignment.temporal.confidence == pytest.approx(0.7)
    assert "a weak test score" in alignment.reasons
    dim = dataclasses.replace(features.spatial, confidence=0.6)
    assert A.assemble(dim, weak).confidence == pytest.approx(0.6) == A.overall_confidence(0.7, 0.6)
    keys = _synthetic_stream(80, Fraction(24), film, "hdr10").select(np.arange(0, 80, 12))
    keyed = A.KeyframeMatcher(((0, 69),), 2.0).match(A.pair_features(keys, sdr))
    assert isinstance(keyed, A.TemporalMatch) and keyed.temporal.offset_frames == 6
    assert {s.name for s in keyed.scores} == {"similarity", "distinct", "support"}
