"""datakit.pairs.tiles (grid convention, random boxes, crop semantics) and datakit.pairs.gates (black, static,
near-duplicate, really-HDR) on real pictures from /work/shared/data/hdri and hand-computed values."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from datakit.errors import InputError, RecipeError
from datakit.pairs import gates as G
from datakit.pairs import tiles as T

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour

HDRI = Path("/work/shared/data/hdri")
BT709 = "ITU-R BT.709"
BT2020 = "ITU-R BT.2020"


def _load_exr(name: str) -> np.ndarray:
    import OpenEXR

    path = HDRI / f"{name}.exr"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    with OpenEXR.File(str(path)) as f:
        return np.asarray(f.channels()["RGB"].pixels, np.float32)


# ------------------------------------------------------------------------------------------- tiles


def test_grid_hdrtv1k_convention_1080p():
    boxes = T.grid_tiles(1080, 1920, 480, 240, 48)
    xs = sorted({b[0] for b in boxes})
    ys = sorted({b[1] for b in boxes})
    # Columns: 0..1440 every 240 end exactly at 1920 (no remainder). Rows: 0, 240, 480 end at 960, leaving
    # 120 > 48 rows: one more row flush with the bottom edge at 1080 - 480 = 600.
    assert xs == [0, 240, 480, 720, 960, 1200, 1440]
    assert ys == [0, 240, 480, 600]
    assert len(boxes) == 28 and all(b[2:] == (480, 480) for b in boxes)
    assert boxes[:2] == [(0, 0, 480, 480), (240, 0, 480, 480)]  # row-major: columns vary fastest
    assert T.grid_tiles(2160, 3840, 480, 240, 48)[-1] == (3360, 1680, 480, 480)
    assert len(T.grid_tiles(2160, 3840, 480, 240, 48)) == 8 * 15


def test_grid_remainder_threshold_is_strict():
    assert T.grid_positions(1008, 480, 240, 48) == [0, 240, 480]  # remainder 48: not more than 48
    assert T.grid_positions(1009, 480, 240, 48) == [0, 240, 480, 529]
    assert T.grid_positions(480, 480, 240, 48) == [0]
    assert T.grid_positions(500, 480, 240, 0) == [0, 20]
    assert T.grid_positions(479, 480, 240, 48) == []  # smaller than a tile: no tile
    assert T.grid_tiles(1080, 400, 480, 240, 48) == []
    with pytest.raises(RecipeError):
        T.grid_tiles(1080, 1920, 480, 0, 48)


def test_grid_covers_the_frame_except_small_remainders():
    height, width = 700, 1000
    boxes = T.grid_tiles(height, width, 256, 200, 30)
    covered = np.zeros((height, width), bool)
    for x, y, w, h in boxes:
        assert x >= 0 and y >= 0 and x + w <= width and y + h <= height
        covered[y : y + h, x : x + w] = True
    # Rows: 0, 200, 400 (ends 656, remainder 44 > 30 -> 444). Columns: 0..600 (ends 856, 144 > 30 -> 744).
    assert covered.all()
    assert sorted({b[1] for b in boxes}) == [0, 200, 400, 444]


def test_cover_tiles_are_the_fewest_that_cover_the_frame():
    """KPN-MFI's overlapping 1024 crops: 4 x 3 on a 4K frame, 2 x 2 on 1080p; every pixel covered, neighbours
    overlapping equally, one fewer per axis would leave a gap."""
    assert T.cover_positions(3840, 1024) == [0, 939, 1877, 2816]
    assert T.cover_positions(2160, 1024) == [0, 568, 1136]
    assert T.cover_tiles(1080, 1920, 1024) == [(0, 0, 1024, 1024), (896, 0, 1024, 1024), (0, 56, 1024, 1024),
                                               (896, 56, 1024, 1024)]  # fmt: skip
    assert T.cover_positions(1024, 1024) == [0] and T.cover_positions(1000, 1024) == []
    for length, size in [(700, 256), (1000, 333), (2048, 1024), (2049, 1024)]:
        starts = T.cover_positions(length, size)
        covered = np.zeros(length, bool)
        for s in starts:
            covered[s : s + size] = True
        assert covered.all() and starts[-1] + size == length and (len(starts) - 1) * size < length
        assert np.ptp(np.diff(starts)) <= 1 if len(starts) > 2 else True
    assert T.plan_tiles("cover", {"size": 256}, height=700, width=1000) == T.cover_tiles(700, 1000, 256)


def test_random_tiles_inside_bounds_and_deterministic():
    boxes = T.random_tiles(270, 480, 256, 200, np.random.default_rng(7))
    assert len(boxes) == 200
    assert all(0 <= x <= 480 - 256 and 0 <= y <= 270 - 256 and (w, h) == (256, 256) for x, y, w, h in boxes)
    assert boxes == T.random_tiles(270, 480, 256, 200, np.random.default_rng(7))
    assert boxes == T.random_tiles(270, 480, 256, 200, 7)
    assert boxes != T.random_tiles(270, 480, 256, 200, 8)
    # Both extreme positions are reachable (inclusive upper bound).
    tight = T.random_tiles(10, 11, 10, 200, 0)
    assert {b[0] for b in tight} == {0, 1} and {b[1] for b in tight} == {0}
    assert T.random_tiles(10, 10, 4, 0, 0) == []
    assert T.random_tiles(100, 100, 101, 1, 0) == []


def test_crop_same_pixels_for_every_frame_and_both_sides():
    height, width = 36, 64
    index = np.arange(height * width).reshape(height, width)
    hdr = np.stack([np.stack([index, index + t, -index], -1) for t in range(4)]).astype(np.float32)
    sdr = np.broadcast_to(index[None, :, :, None], (4, height, width, 3)).astype(np.int64)
    for x, y, w, h in [*T.random_tiles(height, width, 16, 5, 3), *T.full_tile(height, width)]:
        a, b = T.crop(hdr, (x, y, w, h)), T.crop(sdr, (x, y, w, h))
        assert a.shape == (4, h, w, 3) and b.shape == (4, h, w, 3)
        assert a[0, 0, 0, 0] == y * width + x and a[3, h - 1, w - 1, 0] == (y + h - 1) * width + x + w - 1
        np.testing.assert_array_equal(a[..., 0], b[..., 0])
        np.testing.assert_array_equal(T.crop(hdr[2], (x, y, w, h)), a[2])  # one frame == that frame of the clip
    with pytest.raises(InputError):
        T.crop(hdr, (60, 0, 8, 8))
    with pytest.raises(InputError):
        T.crop(hdr[0, ..., 0], (0, 0, 8, 8))


def test_plan_tiles_registry_and_errors():
    assert T.plan_tiles("full", {}, height=1080, width=1920) == [(0, 0, 1920, 1080)]
    grid = {"strategy": "grid", "size": 480, "step": 240, "remainder": 48, "count": 4}
    assert T.plan_tiles("grid", grid, height=1080, width=1920) == T.grid_tiles(1080, 1920, 480, 240, 48)
    assert T.plan_tiles("random", {"size": 64, "count": 3}, height=200, width=300, rng=5) == T.random_tiles(
        200, 300, 64, 3, 5
    )
    assert set(T.TILE_STRATEGIES) == {"random", "grid", "cover", "full"}
    for strategy, params in (("mosaic", {}), ("grid", {"sizes": 3}), ("grid", {"size": 0}), ("random", {"count": -1})):
        with pytest.raises(RecipeError):
            T.plan_tiles(strategy, params, height=200, width=300, rng=0)
    with pytest.raises(InputError):
        T.full_tile(0, 10)


# ------------------------------------------------------------------------------------------- black, static


def _sdr_luma(rgb_linear: np.ndarray, gain: float = 1.0) -> np.ndarray:
    """Crude SDR grade of a linear picture and its BT.709 luma Y' in [0, 1] (float32)."""
    x = np.clip(rgb_linear * (0.18 * gain / float(np.median(rgb_linear))), 0.0, 1.0) ** (1 / 2.4)
    y = x @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    return cv2.resize(y.astype(np.float32), (256, 128), interpolation=cv2.INTER_AREA)


def _pan(rgb_linear: np.ndarray, n: int, speed: int = 3) -> np.ndarray:
    return np.stack([_sdr_luma(rgb_linear[:, 8 * speed * i : 8 * speed * i + 512]) for i in range(n)])


def test_is_black():
    clip = _pan(_load_exr("forest"), 4)
    assert G.is_black(clip) is None
    assert G.is_black(np.zeros((3, 8, 8), np.float32)) == "black"
    assert G.is_black(np.full((8, 8), 16, np.uint8), max_mean=0.03) is None  # 16/255 = 0.063
    assert G.is_black(np.full((8, 8), 7, np.uint8), max_mean=0.03) == "black"
    # A fade to black: the last frame is black, so the clip is.
    fade = np.concatenate([clip[:3], clip[3:] * 0.02])
    assert G.is_black(fade) == "black"
    # A dark frame with a bright detail (1.5 % of pixels): black by its mean, kept by its 99th percentile.
    night = np.full((1, 100, 100), 0.01, np.float32)
    night[0, :15, :10] = 0.9
    assert float(night.mean()) < 0.03
    assert G.is_black(night) == "black"
    assert G.is_black(night, max_p99=0.2) is None


def test_motion_score_and_is_static():
    ramp = np.stack([np.full((4, 4), 0.1 + 0.01 * t, np.float32) for t in range(5)])
    assert G.motion_score(ramp) == pytest.approx(0.01, rel=1e-5)
    assert G.motion_score(ramp[:1]) == 0.0
    picture = _load_exr("courtyard")
    still = np.repeat(_sdr_luma(picture[:, :512])[None], 6, axis=0)
    noisy = np.clip(still + np.random.default_rng(0).normal(0, 0.0005, still.shape).astype(np.float32), 0, 1)
    assert G.is_static(still) == "static"
    assert G.is_static(noisy, min_motion=0.002) == "static"
    assert G.is_static(_pan(picture, 6), min_motion=0.002) is None
    assert G.is_static(still[:1]) is None
    u16 = np.round(still * 65535).astype(np.uint16)
    assert G.is_static(u16) == "static"


def test_near_duplicates_keep_the_first():
    forest, night, studio = (_load_exr(n) for n in ("forest", "night", "studio"))
    clips = [
        _pan(forest, 3, 1),
        _pan(night, 3, 1),
        _pan(forest, 3, 1) * np.float32(1.01),  # the same shot again, 1 % brighter
        _pan(studio, 3, 1),
        _pan(night, 3, 1)[:, :, ::-1].copy(),  # mirrored: different framing
    ]
    signatures = [G.clip_signature(c) for c in clips]
    assert signatures[0].shape == (256,)
    assert G.near_duplicates(signatures, 0.02) == [None, None, "near_duplicate", None, None]
    assert G.near_duplicates(signatures, 0.0) == [None] * 5
    assert G.near_duplicates(signatures, 10.0) == [None] + ["near_duplicate"] * 4
    assert G.near_duplicates([], 0.1) == []


# ------------------------------------------------------------------------------------------- really HDR


def _pq_from_nits_2020(rgb_nits: np.ndarray, bits: int = 10) -> np.ndarray:
    """Reference path (colour-science): ST 2084 inverse EOTF, quantized to ``bits`` full-range codes."""
    code = colour.models.eotf_inverse_ST2084(np.clip(rgb_nits, 0.0, 10000.0))
    scale = 2**bits - 1
    return (np.round(code * scale) / scale).astype(np.float32)


def _hdr_grade(rgb_linear_709: np.ndarray) -> np.ndarray:
    """A plain HDR grade: median at 15 cd/m^2, clipped at 4000, BT.709 scene -> BT.2020, PQ 10-bit."""
    lin = rgb_linear_709.astype(np.float64)
    nits = np.clip(lin * (15.0 / np.median(lin.mean(-1))), 0, 4000)
    cs = colour.RGB_COLOURSPACES
    return _pq_from_nits_2020(colour.RGB_to_RGB(nits, cs[BT709], cs[BT2020]))


def _sdr_upconverted(rgb_linear_709: np.ndarray) -> np.ndarray:
    """SDR grade (8-bit BT.709, BT.1886) placed in PQ with BT.2408 white at 203 cd/m^2 and BT.709 colours."""
    lin = rgb_linear_709.astype(np.float64)
    sdr = np.round(np.clip(lin * (0.18 / np.median(lin.mean(-1))), 0, 1) ** (1 / 2.4) * 255) / 255
    cs = colour.RGB_COLOURSPACES
    return _pq_from_nits_2020(colour.RGB_to_RGB(sdr**2.4 * 203.0, cs[BT709], cs[BT2020]))


@pytest.mark.parametrize("name", ["night", "forest", "studio"])
def test_sdr_in_pq_is_not_hdr_real_hdr_is(name):
    picture = _load_exr(name)[::2, ::2]
    up = G.hdr_stats(_sdr_upconverted(picture))
    assert up["peak_nits"] == pytest.approx(203.0, rel=0.01)
    assert up["share_above_white"] == 0.0 and up["share_outside_bt709"] == 0.0
    assert G.is_not_hdr(up) == "not_hdr"
    real = G.hdr_stats(_hdr_grade(picture))
    assert real["peak_nits"] > 3900 and real["p999_nits"] > 1000 and real["share_above_white"] > 0.05
    assert G.is_not_hdr(real) is None
    # Each requirement alone can fail a clip; a requirement of 0 is disabled.
    assert G.is_not_hdr(real, min_peak_nits=0, min_share_above_white=0.9) == "not_hdr"
    assert G.is_not_hdr(real, min_share_outside_bt709=0.01) == "not_hdr"
    assert G.is_not_hdr(up, min_peak_nits=0, min_share_above_white=0) is None


def test_hdr_stats_hand_values_and_colour_science():
    # 100 pixels: 1 at 1000 cd/m^2 white, 4 at 400 cd/m^2 white, 95 at 100 cd/m^2 white (BT.2020, uint16 codes).
    nits = np.concatenate([np.full((1, 3), 1000.0), np.full((4, 3), 400.0), np.full((95, 3), 100.0)])
    codes = np.round(colour.models.eotf_inverse_ST2084(nits) * 65535).astype(np.uint16).reshape(10, 10, 3)
    s = G.hdr_stats(codes)
    assert s["peak_nits"] == pytest.approx(1000.0, rel=2e-4)
    assert s["share_above_white"] == pytest.approx(0.05)
    assert s["mean_nits"] == pytest.approx((1000 + 4 * 400 + 95 * 100) / 100, rel=2e-4)
    # 99.9th percentile of 100 sorted values (linear interpolation): 400 + 0.901 * (1000 - 400).
    assert s["p999_nits"] == pytest.approx(400 + 0.901 * 600, rel=2e-4)
    assert s["pixels"] == 100
    # float input gives the same answer as its uint16 storage.
    assert G.hdr_stats(codes.astype(np.float32) / 65535)["peak_nits"] == pytest.approx(s["peak_nits"], rel=1e-6)

    # White coded one 10-bit PQ step above 203 cd/m^2 (204.8) is still white; 210 cd/m^2 is a highlight.
    step_up = np.ceil(colour.models.eotf_inverse_ST2084(203.0) * 1023) / 1023
    assert 204 < colour.models.eotf_ST2084(step_up) < 205
    white = np.full((2, 50, 3), step_up, np.float32)
    white[1, :5] = colour.models.eotf_inverse_ST2084(210.0)
    assert G.hdr_stats(white)["share_above_white"] == pytest.approx(0.05)

    # Out-of-gamut share against colour-science: random BT.2020 colours, some beyond BT.709.
    rng = np.random.default_rng(3)
    rgb = rng.uniform(0, 1, (64, 64, 3)) ** 3 * 600.0
    codes = (colour.models.eotf_inverse_ST2084(rgb)).astype(np.float32)
    decoded = colour.models.eotf_ST2084(codes.astype(np.float64))
    in709 = colour.RGB_to_RGB(decoded, colour.RGB_COLOURSPACES[BT2020], colour.RGB_COLOURSPACES[BT709])
    y = decoded @ colour.RGB_COLOURSPACES[BT2020].matrix_RGB_to_XYZ[1]
    counted = y >= 1.0
    outside = counted & (in709.min(-1) < -0.01 * y)
    expected = outside.sum() / counted.sum()
    assert 0.2 < expected < 0.9
    assert G.hdr_stats(codes)["share_outside_bt709"] == pytest.approx(expected, abs=2e-3)


def test_hdr_stats_subsampling_and_errors():
    codes = np.random.default_rng(1).uniform(0.2, 0.6, (300, 400, 3)).astype(np.float32)
    codes[123, 321] = 0.9
    s = G.hdr_stats(codes, max_pixels=10_000)
    assert s["pixels"] <= 10_000
    assert s["peak_nits"] == pytest.approx(float(colour.models.eotf_ST2084(0.9)), rel=1e-4)  # peak sees all
    with pytest.raises(InputError):
        G.hdr_stats(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(InputError):
        G.hdr_stats(np.zeros((4, 4), np.float32))
