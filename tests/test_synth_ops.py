"""Tests of the synthesis building blocks on real CC0 HDR images (datakit.synth)."""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest

from datakit.color.gamut import convert_gamut
from datakit.color.transfer import st2084_eotf
from datakit.errors import InputError, RecipeError
from datakit.synth import degrade, exposure, gamut_map, itm, params, tonemap, warp

HDRI = Path("/work/shared/data/hdri")

pytestmark = pytest.mark.skipif(not HDRI.is_dir(), reason="real HDR test images not available")


def load_hdri(name: str, width: int = 256) -> np.ndarray:
    """A real HDR image as relative linear BT.2020 RGB, downsized (area) to ``width`` px."""
    from datakit.io.images import read_hdr_image

    image = read_hdr_image(HDRI / f"{name}.exr")
    rgb = np.maximum(np.asarray(image.rgb_linear, dtype=np.float32), 0.0)
    h = round(rgb.shape[0] * width / rgb.shape[1])
    rgb = cv2.resize(rgb, (width, h), interpolation=cv2.INTER_AREA)
    return np.maximum(np.asarray(convert_gamut(rgb, image.primaries, "bt2020")), 0.0)


@pytest.fixture(scope="module")
def sunrise_nits() -> tuple[np.ndarray, dict]:
    img = load_hdri("sunrise")
    scale, info = exposure.absolute_scale(img, np.random.default_rng(0), {"method": "key", "key_nits": [15, 25]})
    return img * np.float32(scale), info


@pytest.fixture(scope="module")
def city_clip() -> np.ndarray:
    img = load_hdri("city")
    scale, _ = exposure.absolute_scale(img, np.random.default_rng(1))
    hs = warp.sample_trajectory(4, np.random.default_rng(2), 0.05, 0.05, 2.0, 0.02)
    return warp.render_clip(img * np.float32(scale), hs, (64, 96))


# --------------------------------------------------------------------------- warp


def test_trajectory_is_smooth_and_bounded() -> None:
    n, shift, zoom, rot = 16, 0.1, 0.2, 5.0
    hs = warp.sample_trajectory(n, np.random.default_rng(3), shift, zoom, rot, 0.0)
    assert hs.shape == (n, 3, 3)
    tx, ty = hs[:, 0, 2], hs[:, 1, 2]  # the tile centre maps to (tx, ty)
    z = np.sqrt(np.linalg.det(hs[:, :2, :2]))
    angle = np.degrees(np.arctan2(hs[:, 1, 0], hs[:, 0, 0]))
    assert np.abs(tx).max() <= shift and np.abs(ty).max() <= shift
    assert z.min() >= 1 / (1 + zoom) - 1e-9 and z.max() <= 1 + zoom + 1e-9
    assert np.abs(angle).max() <= rot + 1e-9
    # Per-frame steps bounded by the cubic Bezier derivative bound 6 * range / (N - 1).
    for curve, half in ((tx, shift), (ty, shift), (np.log(z), np.log1p(zoom)), (angle, rot)):
        assert np.abs(np.diff(curve)).max() <= 6 * 2 * half / (n - 1) + 1e-9
        assert np.abs(np.diff(curve, 2)).max() <= 24 * 2 * half / (n - 1) ** 2 + 1e-9


def test_render_clip_geometry_on_a_coordinate_ramp() -> None:
    """Bilinear resampling reproduces a linear ramp exactly, so the output reveals where it sampled."""
    h_src, w_src = 200, 300
    ys, xs = np.mgrid[0:h_src, 0:w_src].astype(np.float32)
    ramp = np.stack([xs, ys, np.ones_like(xs)], axis=-1)
    moves = np.stack([warp.homography_from_params(0, 0, 0, 0), warp.homography_from_params(0.1, -0.05, 0, 0)])
    out = warp.render_clip(ramp, moves, (60, 80), scale=1.5)
    # Scale 1.5 > 1: the source was area-downsized first, then warped at ~1 px per px; the
    # sampled source coordinates still advance by 1.5 original px per output px (up to the resize).
    gx = np.diff(out[0, :, :, 0], axis=1).mean()
    assert gx == pytest.approx(1.5, rel=0.02)
    # Translating by 0.1 of the long side (80 px) moves the sampled window by 0.1 * 80 * 1.5 px.
    shift = (out[1, ..., :2] - out[0, ..., :2]).reshape(-1, 2).mean(axis=0)
    np.testing.assert_allclose(shift, [0.1 * 80 * 1.5, -0.05 * 80 * 1.5], rtol=0.03)
    assert out[..., 0].min() >= 0 and out[..., 0].max() <= w_src - 1
    assert out[..., 1].min() >= 0 and out[..., 1].max() <= h_src - 1


@pytest.mark.parametrize("interpolation", ["linear", "cubic"])
def test_rendered_clip_has_no_border(interpolation: str) -> None:
    # Real texture squeezed into [1, 1.01]: any black border fill (even one bicubic tap) would pull a
    # pixel well below 1, while bicubic overshoot of the texture itself stays tiny.
    forest = load_hdri("forest")
    img = np.float32(1.0) + np.float32(0.01) * forest / forest.max()
    rng = np.random.default_rng(4)
    hs = warp.sample_trajectory(8, rng, 0.2, 0.2, 8.0, 0.08)
    region = warp.sample_region_motion(8, rng, max_shift=0.15)
    for position in ((0.0, 0.0), (1.0, 1.0), (0.5, 0.3)):
        clip = warp.render_clip(
            img, hs, (96, 96), motion_blur_samples=3, position=position, interpolation=interpolation, region=region
        )
        assert clip.shape == (8, 96, 96, 3) and clip.dtype == np.float32
        assert clip.min() >= 1.0 - 1e-3
    assert np.abs(np.diff(clip, axis=0)).mean() > 1e-6  # the camera really moves


def test_image_smaller_than_tile_raises_input_error() -> None:
    img = load_hdri("studio", width=64)
    hs = warp.sample_trajectory(3, np.random.default_rng(0))
    with pytest.raises(InputError):
        warp.render_clip(img, hs, (128, 128))
    with pytest.raises(InputError):  # fits without motion, but not with this much motion
        big = warp.sample_trajectory(3, np.random.default_rng(0), max_shift=0.9, max_zoom=0.0)
        warp.render_clip(img, big, (30, 60), min_scale=0.9)


# --------------------------------------------------------------------------- exposure and target


def test_exposure_curve_smooth_within_range() -> None:
    ev = exposure.sample_exposure_curve(30, np.random.default_rng(5), (-2.0, 1.0), 0.05)
    assert ev.shape == (30,) and ev.min() >= -2.0 and ev.max() <= 1.0
    assert np.abs(np.diff(ev)).max() <= 0.05 + 1e-6
    with pytest.raises(RecipeError):
        exposure.sample_exposure_curve(5, np.random.default_rng(0), (1.0, -1.0), 0.1)


def test_absolute_scale_rules() -> None:
    img = load_hdri("courtyard")
    rng = np.random.default_rng(6)
    scale, info = exposure.absolute_scale(img, rng, {"method": "diffuse_white", "percentile": 90, "white_nits": 200})
    lum = (img * scale) @ np.array([0.2627, 0.6780, 0.0593], np.float32)
    assert np.percentile(lum, 90) == pytest.approx(200.0, rel=1e-3)
    assert info["method"] == "diffuse_white" and info["scale"] == scale
    with pytest.raises(RecipeError):
        exposure.absolute_scale(img, rng, {"method": "median"})
    with pytest.raises(InputError):
        exposure.absolute_scale(np.zeros((4, 4, 3), np.float32), rng)


def test_pq_target_keeps_the_sun(sunrise_nits: tuple[np.ndarray, dict]) -> None:
    import colour

    nits, info = sunrise_nits
    assert 15 <= info["target_nits"] <= 25
    pq = degrade.hdr_target(nits)
    assert pq.dtype == np.float32 and pq.min() >= 0.0 and pq.max() <= 1.0
    assert float(np.max(st2084_eotf(pq))) > 1000.0  # the sun survives as a real highlight
    assert pq.max() == pytest.approx(1.0, abs=1e-5)  # ... and is clipped at 10000 cd/m^2
    ref = colour.models.eotf_inverse_ST2084(np.clip(nits[::7, ::7].astype(np.float64), 0, 10000))
    np.testing.assert_allclose(pq[::7, ::7], ref, atol=2e-5)


# --------------------------------------------------------------------------- tone mapping


def test_operators_differ_on_a_real_image(sunrise_nits: tuple[np.ndarray, dict]) -> None:
    nits = sunrise_nits[0]
    outs = {}
    for name, op in tonemap.TONEMAP_OPERATORS.items():
        disp = op(nits)
        assert disp.shape == nits.shape and disp.dtype == np.float32 and np.isfinite(disp).all()
        assert disp.min() >= 0.0
        outs[name] = np.clip(disp, 0, 1) ** (1 / 2.4)  # compare as SDR signals
    for a, b in itertools.combinations(outs, 2):
        assert np.abs(outs[a] - outs[b]).mean() > 0.02, (a, b)


@pytest.mark.parametrize("grade", ["bt2390_eetf", "aces2"])
def test_operators_differ_on_graded_masters(sunrise_nits: tuple[np.ndarray, dict], grade: str) -> None:
    """The family as the chain runs it: on an HDR master, each operator's input peak set to the mastering peak."""
    from datakit.synth.mastering import MasteringGrade, apply_mastering

    master, _ = apply_mastering(sunrise_nits[0], MasteringGrade(grade, 2000.0, 0.0001, "p3_d65"))
    outs = {}
    for name, op in tonemap.TONEMAP_OPERATORS.items():
        kw = tonemap.bind_master_peak(name, {}, 2000.0, "p3_d65")
        outs[name] = np.clip(gamut_map.gamut_clip(op(master, **kw)), 0, 1) ** (1 / 2.4)  # BT.709 SDR signals
        assert np.isfinite(outs[name]).all() and outs[name].std() > 0.05, name
    # On the ACES master the older Reinhard and BT.2390 EETF (default parameters) come within 0.01 of each other:
    # there only the pairs with a new member are required to differ.
    new = {"aces2_sdr", "bt2446c", "display_mapping", "film_look", "clip"}
    for a, b in itertools.combinations(outs, 2):
        if grade == "bt2390_eetf" or {a, b} & new:
            assert np.abs(outs[a] - outs[b]).mean() > 0.02, (a, b)
    # ... and their statistics differ: mean level, highlight share and chroma of each rendition
    stats = {n: (o.mean(), np.mean(o.max(-1) > 0.95), np.mean(o.max(-1) - o.min(-1))) for n, o in outs.items()}
    for a, b in itertools.combinations(stats, 2):
        assert max(abs(x - y) for x, y in zip(stats[a], stats[b], strict=True)) > 0.005, (a, b)


def test_bt2446a_spot_values() -> None:
    nits = np.linspace(0, 1000, 501, dtype=np.float32)
    grey = np.repeat(nits[:, None], 3, axis=1)
    out = tonemap.bt2446a(grey)[:, 0]
    assert out[0] == 0.0 and out[-1] == pytest.approx(1.0, abs=1e-5)
    assert np.all(np.diff(out) > 0)
    # HDR reference white (BT.2408: 203 cd/m^2), hand-computed from the BT.2446-1 method A
    # equations: Y' = 0.203^(1/2.4) = 0.51458, rho_HDR = 13.2598, Y'p = 0.76954 (knee segment 2),
    # Y'c = 0.82836, rho_SDR = 5.69696, Y'sdr = 0.68686 -> display light 0.68686^2.4 = 0.40595.
    ref_white = tonemap.bt2446a(np.full((1, 3), 203.0, np.float32))[0]
    np.testing.assert_allclose(ref_white, 0.40595, atol=5e-4)
    assert float(tonemap.bt2446a_luma_curve(np.float32(0.51458))) == pytest.approx(0.68686, abs=2e-4)
    # Colour correction: a saturated red keeps its hue order and stays finite.
    red = tonemap.bt2446a(np.array([[600.0, 50.0, 20.0]], np.float32))[0]
    assert red[0] > red[1] > red[2] >= 0


def test_bt2390_eetf_spot_values() -> None:
    grey = np.repeat(np.array([0, 1, 10, 100, 203, 500, 1000, 4000], np.float32)[:, None], 3, axis=1)
    out = tonemap.bt2390_eetf(grey, source_max=1000.0)[:, 0] * 100.0  # back to cd/m^2 on the SDR display
    assert out[0] == pytest.approx(0.0, abs=1e-4)
    np.testing.assert_allclose(out[1:3], [1.0, 10.0], rtol=2e-3)  # below the knee KS: identity (BT.2390)
    assert out[6] == pytest.approx(100.0, rel=1e-3)  # source peak -> target peak (P(1) = maxLum)
    assert out[7] == pytest.approx(100.0, rel=1e-3)  # above the mastering peak: clipped
    assert np.all(np.diff(out[:7]) > 0) and out[4] < 100
    pq = np.linspace(0, 1, 1001, dtype=np.float32)
    mapped = tonemap.bt2390_eetf_pq(pq, source_max=4000.0, target_max=100.0)
    assert np.all(np.diff(mapped) >= -1e-6)


def test_sample_tonemap_params_within_ranges() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        p = tonemap.sample_tonemap_params("bt2390_eetf", rng, {"source_max": [1000, 2000], "mode": ["rgb", "maxrgb"]})
        assert 1000 <= p["source_max"] <= 2000 and p["mode"] in ("rgb", "maxrgb")
    with pytest.raises(RecipeError):
        tonemap.sample_tonemap_params("aces", rng, {})
    with pytest.raises(RecipeError):
        tonemap.sample_tonemap_params("hable", rng, {"key": [0.1, 0.2]})


# --------------------------------------------------------------------------- gamut mapping


def test_gamut_clip_and_soft(city_clip: np.ndarray) -> None:
    import colour

    rgb = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.4, 0.35, 0.3], [0.2, 0.6, 0.1]], np.float32)
    ref = colour.RGB_to_RGB(rgb.astype(np.float64), "ITU-R BT.2020", "ITU-R BT.709")
    np.testing.assert_allclose(gamut_map.gamut_clip(rgb), np.maximum(ref, 0), atol=1e-5)
    soft = gamut_map.gamut_compress(rgb, threshold=0.8)
    assert soft.min() >= 0.0
    np.testing.assert_allclose(soft[3], ref[3], atol=1e-5)  # a neutral-ish colour is untouched
    np.testing.assert_allclose(soft.max(axis=1), ref.max(axis=1), rtol=1e-5)  # max(R,G,B) kept
    assert (soft[:3] > 0).sum() > (np.maximum(ref[:3], 0) > 0).sum()  # primaries compressed, not clipped
    # The whole BT.2020 boundary maps into BT.709 without clipping (limits land on d = 1).
    corners = np.array([c for c in itertools.product((0, 1), repeat=3)][1:], np.float32)
    out = gamut_map.gamut_compress(corners)
    assert out.min() >= -1e-6
    # Real pixels made wide-gamut (saturation x2 around luminance in BT.2020): only the saturated
    # part changes, and every output is non-negative with max(R, G, B) kept.
    disp = np.clip(tonemap.hable(city_clip), 0, 1)
    lum = disp @ np.array([0.2627, 0.6780, 0.0593], np.float32)
    wide = np.maximum(lum[..., None] + 2.0 * (disp - lum[..., None]), 0)
    a, b = gamut_map.gamut_map(wide, "clip"), gamut_map.gamut_map(wide, "soft", 0.8)
    changed = np.mean(np.any(np.abs(a - b) > 1e-4, axis=-1))
    assert 0.001 < changed < 0.8
    np.testing.assert_allclose(a.max(axis=-1), b.max(axis=-1), rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- degradation chain


def _forced_ranges() -> dict:
    return {"noise": {"p": 1.0}, "codec": {"p": 1.0, "crf": [24, 30]}, "blur": {"p": 1.0}, "chroma": {"p": 1.0}}


def test_degradation_is_deterministic(city_clip: np.ndarray) -> None:
    p1 = degrade.sample_degradation(np.random.default_rng(11), _forced_ranges(), n_frames=len(city_clip))
    p2 = degrade.sample_degradation(np.random.default_rng(11), _forced_ranges(), n_frames=len(city_clip))
    assert p1.to_dict() == p2.to_dict()
    assert degrade.DegradationParams.from_dict(p1.to_dict()) == p1
    import json

    json.dumps(p1.to_dict())
    a = degrade.apply_degradation(city_clip, p1)
    b = degrade.apply_degradation(city_clip, degrade.DegradationParams.from_dict(p1.to_dict()))
    assert a.dtype == np.uint8 and a.shape == city_clip.shape
    assert a.tobytes() == b.tobytes()
    p3 = degrade.sample_degradation(np.random.default_rng(12), _forced_ranges(), n_frames=len(city_clip))
    assert degrade.apply_degradation(city_clip, p3).tobytes() != a.tobytes()


def test_every_operator_and_transfer_runs(city_clip: np.ndarray) -> None:
    base = degrade.DegradationParams(seed=1, exposure_ev=[0.0], tonemap="hable", codec=None, chroma_subsampling=False)
    results = {}
    for op in tonemap.TONEMAP_OPERATORS:
        for transfer in params.TRANSFERS:
            p = degrade.DegradationParams(**{**base.to_dict(), "tonemap": op, "transfer": transfer})
            out = degrade.apply_degradation(city_clip[:1], p)
            assert out.dtype == np.uint8 and out.std() > 5  # real picture content, not flat
            results[op, transfer] = out
    assert not np.array_equal(results["hable", "srgb"], results["hable", "gamma22"])


def test_codec_roundtrip_changes_pixels(city_clip: np.ndarray) -> None:
    p = degrade.DegradationParams(seed=0, exposure_ev=[0.0], tonemap="bt2446a", codec=None, chroma_subsampling=False)
    sdr = degrade.apply_degradation(city_clip, p)
    coded = degrade.codec_roundtrip(sdr, crf=32)
    assert coded.shape == sdr.shape and coded.dtype == np.uint8
    err = np.abs(coded.astype(np.float64) - sdr)
    assert err.mean() > 0.5  # the codec really changed the pixels ...
    psnr = 10 * np.log10(255.0**2 / np.mean(err**2))
    assert psnr > 24  # ... but still decodes the same picture
    odd = degrade.codec_roundtrip(sdr[:2, :63, :95], crf=20)  # odd sizes are padded and cropped
    assert odd.shape == (2, 63, 95, 3)
    chroma = degrade.chroma_roundtrip(sdr)
    assert 0 < np.abs(chroma.astype(int) - sdr).mean() < np.abs(coded.astype(int) - sdr).mean()


def test_impossible_ranges_raise_recipe_error() -> None:
    bad = [
        {"codec": {"crf": [-3, 20]}},
        {"codec": {"crf": [30, 20]}},
        {"noise": {"shot": [0.01, 0.001]}},
        {"tonemap": {"weights": {"aces": 1.0}}},
        {"tonemap": {"aces": {"x": [0, 1]}}},
        {"tonemap": {"hable": {"exposure_bias": [3.0, 1.0]}}},
        {"gamut": {"weights": {"clip": 0.0, "soft": 0.0}}},
        {"gamut": {"threshold": [0.5, 1.5]}},
        {"transfer": {"weights": ["gamma3"]}},
        {"blur": {"p": 1.5}},
        {"exposure": {"ev_range": [2.0, -2.0]}},
        {"colour_grade": {}},
        {"noise": {"amount": [0, 1]}},
    ]
    for override in bad:
        with pytest.raises(RecipeError):
            params.resolve_ranges(override)
        with pytest.raises(RecipeError):
            degrade.sample_degradation(np.random.default_rng(0), override)
    ok = params.resolve_ranges({"tonemap": {"weights": ["hable"]}, "codec": {"crf": 20}})
    p = degrade.sample_degradation(np.random.default_rng(0), ok)
    assert p.tonemap == "hable" and p.crf == 20


# --------------------------------------------------------------------------- inverse tone mapping


def test_bt2446c_inverse_curve() -> None:
    y_ip, k2, k4 = itm.bt2446c_curve_constants()
    assert y_ip == pytest.approx(58.5 / 0.83802)
    assert k2 == pytest.approx(15.09968, rel=5e-3) and k4 == pytest.approx(78.99439, rel=5e-3)  # report's values
    y = np.linspace(0, 120, 241)
    hdr = itm.bt2446c_inverse_curve(y)
    assert hdr[0] == 0 and np.all(np.diff(hdr) > 0)
    np.testing.assert_allclose(itm.bt2446c_curve(hdr), y, atol=1e-9)  # inverse of the forward curve
    assert float(itm.bt2446c_inverse_curve(58.5)) == pytest.approx(y_ip)


def test_itm_outputs(city_clip: np.ndarray) -> None:
    import colour

    white = np.ones((1, 3), np.float32)
    np.testing.assert_allclose(itm.bt2408_display_mapping(white), 203.0, rtol=1e-5)  # BT.2408: SDR white -> 203
    np.testing.assert_allclose(itm.bt2446c_inverse(white), float(itm.bt2446c_inverse_curve(100.0)), rtol=1e-4)
    red = np.array([[0.8, 0.1, 0.05]], np.float32)
    ref = colour.RGB_to_RGB((red.astype(np.float64) ** 2.4) * 203, "ITU-R BT.709", "ITU-R BT.2020")
    np.testing.assert_allclose(itm.bt2408_display_mapping(red), ref, rtol=1e-4)
    p = degrade.DegradationParams(seed=0, exposure_ev=[0.0], tonemap="camera_scurve", codec=None)
    sdr = degrade.apply_degradation(city_clip, p).astype(np.float32) / 255
    for name, fn in itm.ITM_OPERATORS.items():
        hdr = fn(sdr)
        assert hdr.shape == sdr.shape and hdr.dtype == np.float32 and hdr.min() >= 0, name
    assert itm.bt2446c_inverse(sdr).max() > itm.bt2408_display_mapping(sdr).max()  # highlights expanded


def test_hevc_codec_pass_on_one_and_two_frame_clips() -> None:
    """libx265's packets carry a garbage dts; the codec pass's MP4 muxer refused about half of the one- and
    two-frame HEVC clips before their decode times were rebuilt (io.writer.X265DecodeTimes)."""
    from datakit.synth.degrade import codec_roundtrip

    rng = np.random.default_rng(1)
    for k in range(20):
        ramp = np.linspace(0, 1, 128)[None, None, :, None] * np.array([200, 120, 60])[None, None, None, :]
        clip = np.clip(ramp + rng.normal(0, 4, (1 + k % 2, 64, 128, 3)) + 20 * k % 30, 0, 255).astype(np.uint8)
        out = codec_roundtrip(clip, 20, "libx265", preset="ultrafast")
        assert out.shape == clip.shape and np.abs(out.astype(int) - clip).mean() < 8
