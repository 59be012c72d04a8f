"""Mastering grade, the new SDR family members and the delivery codecs, against independent references.

References: OpenColorIO's own processors fed through another path (ACES2065-1 input made by colour-science, the
display signal decoded by colour-science), the BT.2446-1 method C equations evaluated here step by step, and the
CC0 HDR photographs in /work/shared/data/hdri (or the committed 256 px copies).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from datakit.color.transfer import st2084_eotf
from datakit.errors import InputError, RecipeError
from datakit.synth import aces, degrade, exposure, mastering, params, tonemap, warp

SHARED = Path("/work/shared/data/hdri")
HDRI = SHARED if SHARED.is_dir() else Path(__file__).parent / "data" / "hdri"
NAMES = sorted(p.stem for p in HDRI.glob("*.exr"))

ocio = pytest.importorskip("PyOpenColorIO")


def scene_nits(name: str, width: int = 192, key: float = 18.0) -> np.ndarray:
    """A real HDR photograph as scene ``rgb_nits`` (BT.2020), its log-average at ``key`` cd/m^2."""
    import cv2

    from datakit.color.gamut import convert_gamut
    from datakit.io.images import read_hdr_image

    image = read_hdr_image(HDRI / f"{name}.exr")
    rgb = np.maximum(np.asarray(image.rgb_linear, np.float32), 0.0)
    rgb = cv2.resize(rgb, (width, round(rgb.shape[0] * width / rgb.shape[1])), interpolation=cv2.INTER_AREA)
    rgb = np.maximum(np.asarray(convert_gamut(rgb, image.primaries, "bt2020"), np.float32), 0.0)
    scale, _ = exposure.absolute_scale(rgb, np.random.default_rng(0), {"method": "key", "key_nits": [key, key]})
    return rgb * np.float32(scale)


def _ocio_reference(scene: np.ndarray, display: str, view: str) -> np.ndarray:
    """OCIO's processor from ACES2065-1 (made by colour-science: BT.2020 -> AP0, Bradford) to a display signal."""
    import colour

    ap0 = colour.RGB_to_RGB(
        scene.reshape(-1, 3).astype(np.float64) / aces.ACES_SCENE_UNIT_NITS,
        "ITU-R BT.2020",
        "ACES2065-1",
        chromatic_adaptation_transform="Bradford",
    ).astype(np.float32)
    config = ocio.Config.CreateFromFile("ocio://studio-config-latest")
    transform = ocio.DisplayViewTransform(src="ACES2065-1", display=display, view=view)
    config.getProcessor(transform).getDefaultCPUProcessor().applyRGB(ap0)
    return ap0.reshape(scene.shape)


# --------------------------------------------------------------------------- ACES 2.0 through OCIO


def test_aces_views_exist_in_the_builtin_config() -> None:
    config = ocio.Config.CreateFromFile(aces.ACES_CONFIG)
    hdr_views = set(config.getViews(aces.HDR_DISPLAY))
    for peak, primaries in itertools.product(aces.ACES_HDR_PEAKS, aces.ACES_PRIMARIES):
        assert aces.hdr_view(peak, primaries) in hdr_views
    assert aces.SDR_VIEW in set(config.getViews(aces.SDR_DISPLAY))
    with pytest.raises(ValueError):
        aces.hdr_view(1500)


def test_aces_hdr_master_matches_ocio_processor() -> None:
    import colour

    scene = scene_nits("sunrise")
    grade = mastering.MasteringGrade("aces2", 1000.0, 0.0001, "bt2020")
    master, info = mastering.apply_mastering(scene, grade)
    assert info["view"] == "ACES 2.0 - HDR 1000 nits (Rec.2020)"
    ref = colour.models.eotf_ST2084(_ocio_reference(scene, "Rec.2100-PQ - Display", info["view"]).astype(np.float64))
    np.testing.assert_allclose(master, np.minimum(ref, 1000.0), rtol=2e-3, atol=2e-3)
    assert master.max() <= 1000.0 and master.max() > 900.0  # the sun rolls off onto the peak
    # ACES 2.0 HDR renders mid grey (0.18 scene-linear) near 15 cd/m^2: our scene unit puts 18 cd/m^2 there.
    grey = mastering.apply_mastering(np.full((1, 3), 18.0, np.float32), grade)[0]
    assert 10.0 < float(grey[0, 0]) < 20.0


def test_aces_sdr_matches_ocio_processor_and_pairs_with_the_hdr_master() -> None:
    import colour

    scene = scene_nits("courtyard")
    sdr = tonemap.aces2_sdr_output(scene)  # scene light in
    signal = _ocio_reference(scene, "Rec.1886 Rec.709 - Display", "ACES 2.0 - SDR 100 nits (Rec.709)")
    ref = colour.RGB_to_RGB(np.clip(signal, 0, 1).astype(np.float64) ** 2.4, "ITU-R BT.709", "ITU-R BT.2020")
    np.testing.assert_allclose(sdr, ref, atol=2e-3)
    # The production pair: SDR made from the ACES HDR master (through the inverse of its view) is the SDR view
    # of the same scene, wherever the scene is inside the views' gamut.
    for primaries in ("bt2020", "p3_d65"):
        master, _ = mastering.apply_mastering(scene, mastering.MasteringGrade("aces2", 2000.0, 0.0001, primaries))
        from_master = tonemap.aces2_sdr_output(master, hdr_peak_nits=2000.0, hdr_primaries=primaries)
        assert np.median(np.abs(from_master - sdr)) < 0.01, primaries
    # ... while an EETF master taken through the same ACES conversion gives another SDR.
    eetf, _ = mastering.apply_mastering(scene, mastering.MasteringGrade("bt2390_eetf", 2000.0, 0.0001, "bt2020"))
    assert np.abs(tonemap.aces2_sdr_output(eetf, hdr_peak_nits=2000.0) - sdr).mean() > 0.01


# --------------------------------------------------------------------------- BT.2446 method C forward


def _bt2446c_by_hand(rgb: np.ndarray, alpha: float) -> np.ndarray:
    """Report ITU-R BT.2446-1 method C, sections 6.1.2-6.1.5, step by step (XYZ / xyY through colour-science)."""
    import colour

    k1, k3, y_sdr_ip = 0.83802, 0.74204, 58.5  # section 6.1.4
    y_hdr_ip = y_sdr_ip / k1
    k2 = k1 * (1 - k3) * y_hdr_ip
    k4 = k1 * y_hdr_ip - k2 * np.log(1 - k3)
    m = np.array([[1 - 2 * alpha, alpha, alpha], [alpha, 1 - 2 * alpha, alpha], [alpha, alpha, 1 - 2 * alpha]])
    space = colour.RGB_COLOURSPACES["ITU-R BT.2020"]
    out = []
    for pixel in rgb.astype(np.float64):
        xyz = space.matrix_RGB_to_XYZ @ (m @ pixel)
        x_, y_, big_y = colour.XYZ_to_xyY(xyz)
        y_sdr = k1 * big_y if big_y < y_hdr_ip else k2 * np.log(big_y / y_hdr_ip - k3) + k4
        back = space.matrix_XYZ_to_RGB @ colour.xyY_to_XYZ(np.array([x_, y_, y_sdr]))
        out.append(np.linalg.inv(m) @ back / 100.0)
    return np.array(out)


def test_bt2446c_forward_against_the_report_equations() -> None:
    grey = np.repeat(np.array([[0.0], [50.0], [69.0], [203.0], [1000.0]], np.float32), 3, axis=1)
    out = tonemap.bt2446c_forward(grey, alpha=0.0, gamut_mapping="clip")[:, 0]
    # By hand: linear segment 0.83802 Y / 100 below the inflection point (69.807 cd/m^2); log segment above:
    # Y = 1000 -> 15.0905 ln(1000 / 69.807 - 0.74204) + 78.947 = 118.33 cd/m^2.
    np.testing.assert_allclose(out[:3], [0.0, 0.41901, 0.57823], atol=2e-5)
    assert out[4] == pytest.approx(1.1833, abs=2e-3)
    pixels = np.array([[40.0, 20.0, 10.0], [600.0, 80.0, 30.0], [30.0, 400.0, 900.0]], np.float32)
    for alpha in (0.0, 0.05):
        ours = tonemap.bt2446c_forward(pixels, alpha=alpha, gamut_mapping="clip")
        np.testing.assert_allclose(ours, np.maximum(_bt2446c_by_hand(pixels, alpha), 0), rtol=1e-4, atol=1e-5)
    soft = tonemap.bt2446c_forward(pixels, alpha=0.05, gamut_mapping="soft")
    from datakit.color.gamut import convert_gamut

    assert np.asarray(convert_gamut(soft, "bt2020", "bt709")).min() > -1e-5  # gamut-mapped into BT.709
    from datakit.synth.itm import bt2446c_inverse_curve

    np.testing.assert_allclose(  # the project's inverse undoes the forward curve on neutral light
        bt2446c_inverse_curve(tonemap.bt2446c_forward(grey[:4], alpha=0.0)[:, 0] * 100.0), grey[:4, 0], rtol=1e-4
    )


# --------------------------------------------------------------------------- the other new members


def test_display_mapping_keeps_hue_and_desaturates_highlights() -> None:
    rgb = np.array([[400.0, 120.0, 60.0], [4000.0, 1500.0, 500.0], [30.0, 10.0, 5.0]], np.float32)
    out = tonemap.hue_preserving_display_mapping(rgb, source_peak=4000.0, desaturation=0.0, knee=0.99)
    assert out.max() <= 1.0 + 1e-6
    ratios_in, ratios_out = rgb / rgb.sum(1, keepdims=True), out / out.sum(1, keepdims=True)
    np.testing.assert_allclose(ratios_out[2], ratios_in[2], atol=1e-5)  # a dark colour keeps its chromaticity

    # hue angle in the opponent plane is kept for every pixel, even the ones desaturated to fit the display
    def hue(c: np.ndarray) -> np.ndarray:
        return np.arctan2(np.sqrt(3) * (c[:, 1] - c[:, 2]), 2 * c[:, 0] - c[:, 1] - c[:, 2])

    np.testing.assert_allclose(hue(out), hue(rgb), atol=1e-4)
    strong = tonemap.hue_preserving_display_mapping(rgb, source_peak=4000.0, desaturation=1.0, knee=0.3)
    spread = lambda c: (c.max(1) - c.min(1)) / np.maximum(c.max(1), 1e-6)  # noqa: E731
    assert spread(strong)[1] < spread(out)[1]  # the highlight is desaturated more


def test_film_look_shifts_hue_and_clip_clips() -> None:
    orange = np.array([[2000.0, 600.0, 100.0], [20.0, 20.0, 20.0]], np.float32)
    film = tonemap.film_print_look(orange)
    assert film[1] == pytest.approx(np.full(3, 0.15), abs=1e-4)  # grey_nits -> grey_display
    before, after = orange[0] / orange[0].max(), film[0] / film[0].max()
    assert after[1] > before[1] + 0.2  # per-channel shoulder: a bright orange turns yellow
    warm = tonemap.film_print_look(orange, warmth=0.15)
    assert warm[1, 0] > warm[1, 1] > warm[1, 2]  # print balance warms grey
    clipped = tonemap.hard_clip(np.array([[50.0, 150.0, 400.0]], np.float32), exposure_stops=1.0, white_nits=200.0)
    np.testing.assert_allclose(clipped, [[0.5, 1.0, 1.0]])


# --------------------------------------------------------------------------- the mastering grade


@pytest.mark.parametrize("grade", ["bt2390_eetf", "aces2"])
def test_mastering_peaks_respected_on_real_photographs(grade: str) -> None:
    from datakit.color.gamut import convert_gamut

    bright = 0
    for name, peak, primaries in zip(
        NAMES, itertools.cycle((1000.0, 2000.0, 4000.0)), itertools.cycle(("p3_d65", "bt2020", "bt2020")), strict=False
    ):
        scene = scene_nits(name, width=160)
        g = mastering.MasteringGrade(grade, peak, 0.005, primaries)
        master, _ = mastering.apply_mastering(scene, g)
        codes = mastering.master_codes(master, peak)
        nits = st2084_eotf(codes.astype(np.float64) / 65535)
        assert nits.max() <= peak, (name, grade)  # no stored pixel above the drawn peak
        light = mastering.content_light_level(codes)
        assert light.max_cll <= peak and light.max_fall <= light.max_cll
        assert light.max_cll == round(float(nits.max()))
        if np.mean(scene.max(-1) > 1500.0) > 1e-3:  # the source has real highlights ...
            bright += 1
            assert nits.max() > 600.0, (name, grade)  # ... and so has the master
            assert np.mean(nits.max(-1) > 600.0) > 2e-4, (name, grade)
        if primaries == "p3_d65":  # limited to the mastering display's primaries
            p3 = np.asarray(convert_gamut(master, "bt2020", "p3d65"))
            assert p3.min() > -2e-3 * max(float(p3.max()), 1.0), (name, grade)
        display = g.display().to_dict()
        assert display["max_luminance"] == peak and display["min_luminance"] == 0.005
    assert bright >= 3  # the photographs did exercise the roll-off


def test_eetf_grade_is_identity_below_the_knee_and_scene_keeps_scene_light() -> None:
    scene = scene_nits("forest")
    master, info = mastering.apply_mastering(scene, mastering.MasteringGrade("bt2390_eetf", 4000.0, 0.0001))
    low = scene.max(-1) < 100.0
    np.testing.assert_allclose(master[low], scene[low], rtol=1e-3, atol=1e-3)
    assert info["eetf_source_max_nits"] == pytest.approx(min(float(scene.max()), 10000.0), rel=1e-3)
    assert float(master.max()) == pytest.approx(4000.0, rel=1e-3)  # BT.2390: P(1) = maxLum, the peak onto the peak
    order = np.argsort(scene.max(-1).ravel())  # monotonic: a brighter scene pixel is never darker in the master
    assert np.all(np.diff(master.max(-1).ravel()[order]) >= -1e-3)
    raw, _ = mastering.apply_mastering(scene, mastering.MasteringGrade("scene"))
    np.testing.assert_array_equal(raw, scene)
    assert mastering.master_codes(raw).max() == 65535  # scene light is limited by PQ only


def test_sample_mastering_and_its_ranges() -> None:
    rng = np.random.default_rng(3)
    ranges = params.resolve_ranges({})
    grades = [mastering.sample_mastering(rng, ranges) for _ in range(40)]
    assert {g.grade for g in grades} == {"bt2390_eetf", "aces2"}  # scene light only when a recipe asks for it
    assert {g.peak_nits for g in grades} == {1000.0, 2000.0, 4000.0}
    assert {g.primaries for g in grades} == {"p3_d65", "bt2020"}
    scene_only = params.resolve_ranges({"mastering": {"weights": ["scene"]}})
    assert mastering.sample_mastering(rng, scene_only).peak_nits == 10000.0
    for bad in (
        {"mastering": {"peak_nits": [1500.0]}},  # no ACES 2.0 view for 1500 cd/m^2
        {"mastering": {"weights": {"dolby": 1.0}}},
        {"mastering": {"primaries": ["p3_dci"]}},
        {"mastering": {"peak_nits": [50.0]}},
        {"codec": {"crf": {"libsvtav1": [10, 70]}}},
        {"codec": {"codec": ["libaom-av1"]}},
    ):
        with pytest.raises(RecipeError):
            params.resolve_ranges(bad)
    params.resolve_ranges({"mastering": {"weights": ["bt2390_eetf"], "peak_nits": [1500.0]}})


# --------------------------------------------------------------------------- delivery codecs


@pytest.fixture(scope="module")
def sdr_clip() -> np.ndarray:
    scene = scene_nits("city", width=256)
    hs = warp.sample_trajectory(6, np.random.default_rng(2), 0.05, 0.05, 2.0, 0.02)
    clip = warp.render_clip(scene, hs, (72, 128))
    p = degrade.DegradationParams(seed=0, exposure_ev=[0.0], tonemap="hable", codec=None, chroma_subsampling=False)
    return degrade.apply_degradation(clip, p)


@pytest.mark.parametrize("codec", params.CODECS)
def test_each_codec_changes_pixels_and_repeats_its_bytes(sdr_clip: np.ndarray, codec: str) -> None:
    lo, hi = params.DEFAULT_RANGES["codec"]["crf"][codec]
    crf = (lo + hi) // 2
    coded = degrade.codec_roundtrip(sdr_clip, crf, codec, preset="ultrafast")
    err = np.abs(coded.astype(np.float64) - sdr_clip)
    assert err.mean() > 0.5, codec  # the encoder really changed the pixels ...
    assert 10 * np.log10(255.0**2 / np.mean(err**2)) > 24, codec  # ... and still decodes the same picture
    again = degrade.codec_roundtrip(sdr_clip, crf, codec, preset="ultrafast")
    assert coded.tobytes() == again.tobytes(), codec  # same input and options -> same bytes
    worse = degrade.codec_roundtrip(sdr_clip, min(hi + 10, params.CODEC_MAX_CRF[codec]), codec, preset="ultrafast")
    assert np.abs(worse.astype(np.float64) - sdr_clip).mean() > err.mean(), codec  # the CRF is honoured
    with pytest.raises(InputError):
        degrade.codec_roundtrip(sdr_clip, params.CODEC_MAX_CRF[codec] + 1, codec)


def test_codecs_are_drawn_with_their_own_crf_ranges() -> None:
    rng = np.random.default_rng(5)
    drawn = [degrade.sample_degradation(rng, {}, n_frames=3) for _ in range(60)]
    assert {p.codec for p in drawn} == set(params.CODECS)
    for p in drawn:
        lo, hi = params.DEFAULT_RANGES["codec"]["crf"][p.codec]
        assert lo <= p.crf <= hi
    assert {p.tonemap for p in drawn} >= {"aces2_sdr", "bt2446c", "display_mapping", "film_look", "clip"}


def test_graded_pair_records_mastering_and_binds_the_peak() -> None:
    scene = scene_nits("sunrise", width=128)[None, :64, :64]
    ranges = {"tonemap": {"weights": ["bt2446a"]}, "codec": {"codec": ["libsvtav1"]}}
    sdr, hdr, p, record = degrade.grade_and_degrade(scene, np.random.default_rng(1), ranges)
    assert sdr.dtype == np.uint8 and hdr.dtype == np.uint16 and sdr.shape == hdr.shape == scene.shape
    assert p.tonemap_params["l_hdr"] == record["peak_nits"]  # the converter reads the master's ST 2086 peak
    assert record["st2086"]["max_luminance"] == record["peak_nits"]
    assert st2084_eotf(hdr.astype(np.float64) / 65535).max() <= record["peak_nits"]
    assert 0 < record["max_fall"] <= record["max_cll"] <= record["peak_nits"]
    assert p.codec == "libsvtav1"
    again = degrade.grade_and_degrade(scene, np.random.default_rng(1), ranges)
    assert again[0].tobytes() == sdr.tobytes() and again[1].tobytes() == hdr.tobytes() and again[3] == record


def test_narrow_pictures_survive_x265(tmp_path: Path) -> None:
    """PyAV's bundled x265 corrupted the heap on 40-48 px wide pictures (the process aborted later, in other
    code): run many such round trips in a child process, which must exit cleanly, with the right shapes."""
    import subprocess
    import sys

    script = (
        "import numpy as np\n"
        "from datakit.synth import degrade\n"
        "rng = np.random.default_rng(0)\n"
        "for w in (48,) * 30 + (40,) * 30:\n"
        "    clip = (rng.random((3, 64, w, 3)) * 255).astype(np.uint8)\n"
        "    assert degrade.codec_roundtrip(clip, 30, 'libx265', preset='ultrafast').shape == clip.shape\n"
        "    junk = [np.zeros(1000 * (j + 1)) for j in range(200)]\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-500:]
