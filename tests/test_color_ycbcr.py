"""datakit.color.ycbcr against colour-science, hand-computed siting cases and round trips."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from datakit.color import ycbcr as Y

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour

COLOUR_K = {"bt709": "ITU-R BT.709", "bt2020nc": "ITU-R BT.2020", "bt601": "ITU-R BT.601"}
MATRICES = list(COLOUR_K)


def _samples(n: int = 500, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    edges = np.array(
        [[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1], [0.5, 0.5, 0.5]],
        dtype=np.float64,
    )
    return np.concatenate([edges, rng.random((n, 3))])


@pytest.mark.parametrize("matrix", MATRICES)
def test_coefficients_match_colour(matrix: str) -> None:
    kr, kb = Y.ycbcr_coefficients(matrix)
    np.testing.assert_allclose((kr, kb), colour.WEIGHTS_YCBCR[COLOUR_K[matrix]], atol=0)


def test_aliases_and_unknown_matrix() -> None:
    assert Y.ycbcr_coefficients("bt2020") == Y.MATRIX_COEFFICIENTS["bt2020nc"]
    assert Y.ycbcr_coefficients("smpte170m") == Y.MATRIX_COEFFICIENTS["bt601"]
    with pytest.raises(ValueError, match="bt2020c"):
        Y.ycbcr_coefficients("bt2020c")


@pytest.mark.parametrize("matrix", MATRICES)
def test_float_conversion_matches_colour(matrix: str) -> None:
    rgb = _samples()
    K = colour.WEIGHTS_YCBCR[COLOUR_K[matrix]]
    ours = Y.rgb_to_ycbcr(rgb, matrix)
    ref = colour.RGB_to_YCbCr(rgb, K=K, out_legal=False, out_int=False)
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    np.testing.assert_allclose(Y.ycbcr_to_rgb(ours, matrix), rgb, atol=1e-12)
    assert ours.dtype == np.float64
    assert Y.rgb_to_ycbcr(rgb.astype(np.float32), matrix).dtype == np.float32


def _code_values(rgb: np.ndarray, matrix: str, bits: int, full: bool) -> np.ndarray:
    """Unrounded code values from the BT.2100 Table 9 formulas, written out here."""
    kr, kb = colour.WEIGHTS_YCBCR[COLOUR_K[matrix]]
    y = kr * rgb[:, 0] + (1 - kr - kb) * rgb[:, 1] + kb * rgb[:, 2]
    cb = (rgb[:, 2] - y) / (2 * (1 - kb))
    cr = (rgb[:, 0] - y) / (2 * (1 - kr))
    if full:
        n = 2**bits - 1
        return np.stack([n * y, n * cb + 2 ** (bits - 1), n * cr + 2 ** (bits - 1)], -1)
    s = 2 ** (bits - 8)
    return np.stack([(219 * y + 16) * s, (224 * cb + 128) * s, (224 * cr + 128) * s], -1)


@pytest.mark.parametrize("matrix", MATRICES)
@pytest.mark.parametrize("bits", [8, 10, 12])
@pytest.mark.parametrize("full", [False, True])
def test_codes_match_colour(matrix: str, bits: int, full: bool) -> None:
    rgb = _samples(seed=bits)
    K = colour.WEIGHTS_YCBCR[COLOUR_K[matrix]]
    codes = Y.ycbcr_to_codes(Y.rgb_to_ycbcr(rgb, matrix), bits, full)
    ref = colour.RGB_to_YCbCr(rgb, K=K, out_bits=bits, out_legal=not full, out_int=True)
    # Exact .5 ties (e.g. full-range chroma of saturated colours: 127.5) round either way
    # depending on float noise; elsewhere the codes must be identical.
    values = _code_values(rgb, matrix, bits, full)
    ties = np.abs(values - np.floor(values) - 0.5) < 1e-6
    np.testing.assert_array_equal(codes[~ties], ref[~ties])
    assert np.abs(codes[ties].astype(int) - ref[ties].astype(int)).max(initial=0) <= 1
    assert ties.sum() < 0.02 * ties.size
    assert codes.dtype == (np.uint8 if bits == 8 else np.uint16)
    back = Y.ycbcr_to_rgb(Y.codes_to_ycbcr(codes, bits, full), matrix)
    ref_back = colour.YCbCr_to_RGB(codes, K=K, in_bits=bits, in_legal=not full, in_int=True)
    np.testing.assert_allclose(back, ref_back, atol=1e-9)


def test_limited_range_anchor_codes() -> None:
    # BT.2100 Table 9: 10-bit narrow range black 64, white 940, achromatic chroma 512, chroma extremes 64/960.
    codes = Y.ycbcr_to_codes(np.array([[0.0, 0.0, 0.0], [1.0, 0.5, -0.5]]), 10, False)
    np.testing.assert_array_equal(codes, [[64, 512, 512], [940, 960, 64]])
    full = Y.ycbcr_to_codes(np.array([[1.0, 0.0, 0.5]]), 10, True)
    np.testing.assert_array_equal(full, [[1023, 512, 1024 - 1]])  # 1023*0.5 + 512 = 1023.5 -> clipped to 1023


@pytest.mark.parametrize("matrix", MATRICES)
def test_ycbcr_codes_round_trip_exact(matrix: str) -> None:
    """10-bit Y'CbCr codes -> R'G'B' (float, unclipped) -> codes gives the same codes."""
    rng = np.random.default_rng(3)
    codes = rng.integers(64, 961, (5000, 3)).astype(np.uint16)
    codes[:, 0] = np.minimum(codes[:, 0], 940)
    rgb = Y.ycbcr_to_rgb(Y.codes_to_ycbcr(codes, 10, False), matrix)
    np.testing.assert_array_equal(Y.ycbcr_to_codes(Y.rgb_to_ycbcr(rgb, matrix), 10, False), codes)


@pytest.mark.parametrize("matrix", MATRICES)
def test_rgb_10bit_round_trip(matrix: str) -> None:
    """10-bit R'G'B' -> 10-bit Y'CbCr codes -> R'G'B'.

    Full range comes back within one 10-bit code. Limited range has fewer levels (876 luma, 896
    chroma), so the error is bounded by the matrix applied to half a code step per component,
    about 1.4-1.7 R'G'B' codes, not one.
    """
    rng = np.random.default_rng(4)
    rgb_codes = np.concatenate([rng.integers(0, 1024, (20000, 3)), [[0, 0, 0], [1023, 1023, 1023], [1023, 0, 0]]])
    rgb = rgb_codes / 1023.0
    for full in (True, False):
        codes = Y.ycbcr_to_codes(Y.rgb_to_ycbcr(rgb, matrix), 10, full)
        back = Y.ycbcr_to_rgb(Y.codes_to_ycbcr(codes, 10, full), matrix) * 1023.0
        err = np.abs(back - rgb_codes)
        y_gain, _, c_gain, _ = Y.code_scale(10, full)
        half_steps = 0.5 / np.array([y_gain, c_gain, c_gain])
        bound = (np.abs(Y.ycbcr_to_rgb_matrix(matrix)) @ half_steps) * 1023.0 + 1e-9
        assert (err <= bound).all()
        if full:
            assert np.abs(np.rint(np.clip(back, 0, 1023)) - rgb_codes).max() <= 1
        assert err.mean() < 0.5


# ------------------------------------------------------------------------------------------ chroma siting


def test_downsample_left_hand_computed() -> None:
    # Impulse at an odd column: left siting filters [1,2,1]/4 centred on even columns.
    row = np.array([[0.0, 0.0, 0.0, 4.0, 0.0, 0.0]])
    np.testing.assert_allclose(Y.downsample_chroma(row, "422", "left"), [[0.0, 1.0, 1.0]])
    np.testing.assert_allclose(Y.downsample_chroma(row, "422", "center"), [[0.0, 2.0, 0.0]])
    np.testing.assert_allclose(Y.downsample_chroma(row, "422", "topleft"), [[0.0, 1.0, 1.0]])
    # 4:2:0 left: vertically between rows -> average of each row pair.
    plane = np.array([[0.0, 0.0], [4.0, 4.0], [8.0, 8.0], [8.0, 8.0]])
    np.testing.assert_allclose(Y.downsample_chroma(plane, "420", "left"), [[2.0], [8.0]])
    # topleft is co-sited vertically too: [1,2,1]/4 over rows 2i-1, 2i, 2i+1.
    np.testing.assert_allclose(Y.downsample_chroma(plane, "420", "topleft"), [[1.0], [7.0]])


def test_upsample_left_hand_computed() -> None:
    c = np.array([[0.0, 4.0, 0.0]])
    np.testing.assert_allclose(Y.upsample_chroma(c, "422", "left"), [[0, 2, 4, 2, 0, 0]])
    np.testing.assert_allclose(Y.upsample_chroma(c, "422", "center"), [[0, 1, 3, 3, 1, 0]])
    col = np.array([[0.0], [4.0]])
    up = Y.upsample_chroma(col, "420", "left")  # vertical phase 0.5: rows at -1/4, +1/4 of each sample
    np.testing.assert_allclose(up[:, 0], [0.0, 1.0, 3.0, 4.0])


def test_left_siting_preserves_a_ramp_where_centre_would_shift_it() -> None:
    """A horizontal chroma ramp sampled at even columns must be exactly the left-sited chroma."""
    x = np.arange(32, dtype=np.float64)
    plane = np.tile(x * 0.01, (4, 1))
    left = Y.downsample_chroma(plane, "422", "left")
    np.testing.assert_allclose(left[:, 1:], plane[:, 2::2], atol=1e-12)  # interior: exact
    centre = Y.downsample_chroma(plane, "422", "center")
    assert np.abs(centre[:, 1:] - plane[:, 2::2]).min() > 0.004  # shifted by half a luma sample
    back = Y.upsample_chroma(left, "422", "left")
    np.testing.assert_allclose(back[:, 2:-1], plane[:, 2:-1], atol=1e-12)


@pytest.mark.parametrize("siting", list(Y.CHROMA_SITING_OFFSETS))
def test_linear_ramps_survive_down_then_up(siting: str) -> None:
    yy, xx = np.mgrid[0:20, 0:24].astype(np.float64)
    plane = 0.01 * xx + 0.02 * yy
    back = Y.upsample_chroma(Y.downsample_chroma(plane, "420", siting), "420", siting)
    np.testing.assert_allclose(back[2:-2, 2:-2], plane[2:-2, 2:-2], atol=1e-12)


def _reference_planes_to_rgb(y, u, v, matrix, bits, full, siting, sub):
    """Slow reference: numpy upsampling + float conversion, all in float64."""
    h, w = y.shape
    if sub == "444":
        uu, vv = u.astype(np.float64), v.astype(np.float64)
    else:
        uu = Y.upsample_chroma(u.astype(np.float64), sub, siting, size=(h, w))
        vv = Y.upsample_chroma(v.astype(np.float64), sub, siting, size=(h, w))
    ycc = Y.codes_to_ycbcr(np.stack([y, uu, vv], -1), bits, full)
    return np.clip(Y.ycbcr_to_rgb(ycc, matrix), 0.0, 1.0)


@pytest.mark.parametrize("sub", ["420", "422", "444"])
@pytest.mark.parametrize("siting", list(Y.CHROMA_SITING_OFFSETS))
def test_fast_planes_to_rgb_matches_reference(sub: str, siting: str) -> None:
    rng = np.random.default_rng(7)
    for h, w in [(8, 12), (7, 9), (2, 2), (1, 3)]:
        for bits, dtype in ((8, np.uint8), (10, np.uint16)):
            ch, cw = Y.subsampled_shape(h, w, sub)
            y = rng.integers(0, 2**bits, (h, w + 3)).astype(dtype)[:, :w]  # padded rows, like decoded planes
            u = rng.integers(0, 2**bits, (ch, cw)).astype(dtype)
            v = rng.integers(0, 2**bits, (ch, cw)).astype(dtype)
            for full in (False, True):
                ref = _reference_planes_to_rgb(y, u, v, "bt2020nc", bits, full, siting, sub)
                got = Y.planes_to_rgb(y, u, v, "bt2020nc", bits, full, siting)
                assert got.dtype == np.float32 and got.shape == (h, w, 3)
                np.testing.assert_allclose(got, ref, atol=2e-6)
                q16 = Y.planes_to_rgb(y, u, v, "bt2020nc", bits, full, siting, dtype="uint16")
                assert q16.dtype == np.uint16
                assert np.abs(q16.astype(np.int64) - np.rint(ref * 65535)).max() <= 1
                q8 = Y.planes_to_rgb(y, u, v, "bt2020nc", bits, full, siting, dtype="uint8")
                assert np.abs(q8.astype(np.int64) - np.rint(ref * 255)).max() <= 1


def test_planes_to_rgb_444_matches_colour() -> None:
    rng = np.random.default_rng(8)
    y = rng.integers(64, 941, (6, 5)).astype(np.uint16)
    u = rng.integers(64, 961, (6, 5)).astype(np.uint16)
    v = rng.integers(64, 961, (6, 5)).astype(np.uint16)
    got = Y.planes_to_rgb(y, u, v, "bt2020nc", 10, False)
    ref = colour.YCbCr_to_RGB(
        np.stack([y, u, v], -1), K=colour.WEIGHTS_YCBCR["ITU-R BT.2020"], in_bits=10, in_legal=True, in_int=True
    )
    np.testing.assert_allclose(got, np.clip(ref, 0, 1), atol=2e-6)


def test_rgb_to_planes_then_back() -> None:
    yy, xx = np.mgrid[0:32, 0:48].astype(np.float32)
    rgb = np.stack([0.2 + 0.01 * xx, 0.3 + 0.01 * yy, 0.9 - 0.01 * xx], -1).astype(np.float32)
    y, u, v = Y.rgb_to_planes(rgb, "bt2020nc", 10, False, "420", "left")
    assert y.shape == (32, 48) and u.shape == (16, 24) and v.shape == (16, 24)
    assert y.dtype == np.uint16
    back = Y.planes_to_rgb(y, u, v, "bt2020nc", 10, False, "left")
    # Linear ramps: 4:2:0 with consistent siting costs only code rounding away from the borders
    # (at most ~1.7 10-bit R'G'B' codes: see test_rgb_10bit_round_trip).
    assert np.abs(back - rgb)[1:-1, 2:-1].max() * 1023 < 1.7
    y8, u8, _ = Y.rgb_to_planes(rgb, "bt709", 8, False, "422")
    assert y8.dtype == np.uint8 and u8.shape == (32, 24)


def test_torch_input() -> None:
    torch = pytest.importorskip("torch")
    rgb = _samples(20)
    out = Y.rgb_to_ycbcr(torch.tensor(rgb, dtype=torch.float64), "bt709")
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), Y.rgb_to_ycbcr(rgb, "bt709"), atol=1e-12)
    np.testing.assert_allclose(Y.ycbcr_to_rgb(out, "bt709").numpy(), rgb, atol=1e-12)


def test_converter_shared_by_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(9)
    jobs = []
    for h, w in [(64, 96), (32, 48)] * 4:
        y = rng.integers(64, 941, (h, w)).astype(np.uint16)
        u = rng.integers(64, 961, (h // 2, w // 2)).astype(np.uint16)
        v = rng.integers(64, 961, (h // 2, w // 2)).astype(np.uint16)
        jobs.append((y, u, v))
    conv = Y.PlaneConverter("bt709", 10, False, "left")
    expected = [Y.planes_to_rgb(*job, "bt709", 10, False) for job in jobs]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda job: [conv(*job) for _ in range(20)][-1], jobs))
    for got, want in zip(results, expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_scratch_kept_per_shape_converts_alternating_sizes_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    """A clip stage alternates whole frames and tiles: each shape keeps its scratch buffers (reused, not
    allocated again), results equal a fresh converter's, and a thread's scratch stays within its bound."""
    rng = np.random.default_rng(4)
    jobs = []
    for h, w in [(72, 128), (24, 40), (72, 128), (36, 64), (24, 40)] * 2:
        y = rng.integers(64, 941, (h, w)).astype(np.uint16)
        u, v = (rng.integers(64, 961, (h // 2, w // 2)).astype(np.uint16) for _ in range(2))
        jobs.append((y, u, v))
    conv = Y.PlaneConverter("bt2020nc", 10, False, "left")
    for dtype in ("uint16", "uint8", "float32"):
        for job in jobs:
            fresh = Y.PlaneConverter("bt2020nc", 10, False, "left")(*job, dtype=dtype)
            np.testing.assert_array_equal(conv(*job, dtype=dtype), fresh)
    kept = {id(b) for b in conv._local.bufs.values()}
    conv(*jobs[0], dtype="uint16")
    conv(*jobs[1], dtype="uint16")
    assert {id(b) for b in conv._local.bufs.values()} == kept  # nothing allocated again
    small = Y.PlaneConverter("bt2020nc", 10, False, "left")
    monkeypatch.setattr(Y, "SCRATCH_BYTES", 64 << 10)
    for job in jobs:
        small(*job, dtype="float32")
        sizes = [b.nbytes for b in small._local.bufs.values()]
        assert sum(sizes) <= max(64 << 10, max(sizes))  # one buffer larger than the bound stays alone


@pytest.mark.parametrize("sub", ["420", "422", "444"])
@pytest.mark.parametrize("siting", list(Y.CHROMA_SITING_OFFSETS))
def test_rgb_to_planes_fast_path_matches_numpy_reference(sub: str, siting: str) -> None:
    """float32 input goes through OpenCV filters; float64 through downsample_chroma: same codes (+-1 at ties)."""
    rng = np.random.default_rng(10)
    for h, w in [(8, 12), (7, 9), (1, 1), (2, 3), (33, 50)]:
        rgb = rng.random((h, w, 3))
        fast = Y.rgb_to_planes(rgb.astype(np.float32), "bt2020nc", 10, False, sub, siting)
        ref = Y.rgb_to_planes(rgb.astype(np.float32).astype(np.float64), "bt2020nc", 10, False, sub, siting)
        ycc = Y.rgb_to_ycbcr(rgb.astype(np.float32).astype(np.float64), "bt2020nc")
        manual_cb = Y.downsample_chroma(ycc[..., 1], sub, siting) if sub != "444" else ycc[..., 1]
        np.testing.assert_array_equal(ref[1], Y.ycbcr_to_codes(np.stack([manual_cb] * 3, -1), 10, False)[..., 1])
        for a, b in zip(fast, ref, strict=True):
            assert a.shape == b.shape and a.dtype == b.dtype == np.uint16
            assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


@pytest.mark.parametrize(("matrix", "bits", "full"), [("bt709", 8, False), ("bt2020nc", 10, False), ("bt709", 8, True)])
def test_thumbnail_bgr_is_the_general_conversion_in_opencv_order(matrix, bits, full):
    """The one-matrix thumbnail path gives the general converter's uint8 codes, B'G'R' order (float ties aside)."""
    from datakit.color.ycbcr import PlaneConverter

    rng = np.random.default_rng(4)
    planes = [rng.uniform(-20, 2**bits + 20, (27, 48)).astype(np.float32) for _ in range(3)]
    converter = PlaneConverter(matrix, bits, full)
    general = converter(*planes, dtype="uint8")[..., ::-1]
    fast = converter.thumbnail_bgr(*planes)
    assert fast.dtype == np.uint8 and fast.shape == general.shape
    difference = np.abs(fast.astype(int) - general)
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-3
    assert fast[..., 0].mean() != fast[..., 2].mean()  # channels are not left in R'G'B' order


_INTEGER_CASES = [(10, "uint16", "bt2020nc", False), (8, "uint8", "bt709", False), (10, "uint8", "bt2020nc", False),
                  (8, "uint16", "bt709", True)]  # fmt: skip


@pytest.mark.parametrize(("bits", "dtype", "matrix", "full"), _INTEGER_CASES)
def test_integer_left_sited_420_path_rounds_the_exact_conversion(bits, dtype, matrix, full):
    """Code planes -> uint8/uint16 R'G'B' through the integer 4:2:0 path (left siting, odd sizes) lands within
    rounding of the float64 maths (codes -> Y'CbCr, linear chroma interpolation, BT.709/BT.2020 matrix)."""
    from datakit.color.ycbcr import PlaneConverter, codes_to_ycbcr, upsample_chroma, ycbcr_to_rgb

    rng = np.random.default_rng(bits)
    height, width = 37, 55
    code = np.uint16 if bits > 8 else np.uint8
    y = rng.integers(0, 2**bits, (height, width)).astype(code)
    u, v = (rng.integers(0, 2**bits, ((height + 1) // 2, (width + 1) // 2)).astype(code) for _ in range(2))
    out = PlaneConverter(matrix, bits, full)(y, u, v, dtype=dtype)
    assert out.dtype == np.dtype(dtype) and out.shape == (height, width, 3)
    chroma = [upsample_chroma(c.astype(np.float64), "420", "left", (height, width)) for c in (u, v)]
    ycbcr = codes_to_ycbcr(np.stack([y.astype(np.float64), *chroma], -1), bits, full)
    exact = np.clip(ycbcr_to_rgb(ycbcr, matrix), 0, 1) * (65535 if dtype == "uint16" else 255)
    assert np.abs(out - exact).max() <= 0.51
