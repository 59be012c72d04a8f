"""datakit.color.transfer against colour-science, hand values from the standards, and round trips."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from datakit.color import transfer as T
from datakit.errors import DatakitError, InputError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour
    from colour import models as cm
    from colour.models.rgb.transfer_functions.itur_bt_2100 import gamma_function_BT2100_HLG

# colour-science warns about its own log/power of 0 at edge inputs; ours must stay silent (no filter).
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning:colour.*")

RNG = np.random.default_rng(20240611)


def _codes(n: int = 4000) -> np.ndarray:
    """Signal values in [0, 1] with the ends and tiny values included.

    The seams of the piecewise curves are tested by hand below (colour-science places the sRGB
    seam at 0.0404499 rather than IEC's 0.04045, and float32 rounding moves a value onto either
    side of a seam), so the random samples stay a little away from them.
    """
    edges = np.array([0.0, 1.0, 1e-7, 1e-4, 0.01, 0.03, 0.07, 0.2, 0.5, 0.75, 0.999])
    x = np.concatenate([edges, RNG.random(n)])
    seams = np.array([0.018, 0.081, 0.08125, 0.04045, 0.0031308, 1 / 12, 0.5])
    near = (np.abs(x[:, None] - seams[None, :]) < 1e-5).any(axis=1) & (x != 0.5)
    return x[~near]


def _nits(n: int = 4000, peak: float = 10000.0) -> np.ndarray:
    """Luminance log-uniform over 1e-4..peak cd/m^2 plus 0 and the peak."""
    return np.concatenate([[0.0, peak, 1e-4, 100.0, 203.0], 10.0 ** RNG.uniform(-4, math.log10(peak), n)])


@dataclass(frozen=True)
class Case:
    """One scalar transfer function, its colour-science reference and a domain sampler."""

    name: str
    ours: Callable[[object], object]
    ref: Callable[[np.ndarray], np.ndarray]
    sample: Callable[[], np.ndarray]
    rtol32: float = 1e-5  # float32 relative tolerance
    atol: float = 0.0  # absolute floor (in output units) for float32 comparisons


CASES = [
    Case("st2084_eotf", T.st2084_eotf, lambda x: cm.eotf_ST2084(x), _codes, 1e-5, 1e-6),
    Case("st2084_inverse_eotf", T.st2084_inverse_eotf, lambda x: cm.eotf_inverse_ST2084(x), _nits, 1e-5, 1e-7),
    Case("hlg_oetf", T.hlg_oetf, lambda x: cm.oetf_BT2100_HLG(x), _codes, 1e-6, 1e-7),
    Case("hlg_inverse_oetf", T.hlg_inverse_oetf, lambda x: cm.oetf_inverse_BT2100_HLG(x), _codes, 1e-6, 1e-8),
    Case("bt1886_eotf", T.bt1886_eotf, lambda x: cm.eotf_BT1886(x, L_B=0, L_W=100), _codes, 1e-6, 1e-6),
    Case(
        "bt1886_inverse_eotf",
        T.bt1886_inverse_eotf,
        lambda x: cm.eotf_inverse_BT1886(x, L_B=0, L_W=100),
        lambda: _nits(peak=100.0),
        1e-6,
        1e-7,
    ),
    Case(
        "bt1886_eotf_black",
        lambda v: T.bt1886_eotf(v, white_nits=150.0, black_nits=0.1),
        lambda x: cm.eotf_BT1886(x, L_B=0.1, L_W=150),
        _codes,
        1e-6,
        1e-6,
    ),
    Case(
        "bt1886_inverse_eotf_black",
        lambda v: T.bt1886_inverse_eotf(v, white_nits=150.0, black_nits=0.1),
        lambda x: cm.eotf_inverse_BT1886(x, L_B=0.1, L_W=150),
        lambda: _nits(peak=150.0),
        1e-6,
        1e-7,
    ),
    Case("bt709_oetf", T.bt709_oetf, lambda x: cm.oetf_BT709(x), _codes, 1e-6, 1e-7),
    Case("bt709_inverse_oetf", T.bt709_inverse_oetf, lambda x: cm.oetf_inverse_BT709(x), _codes, 1e-6, 1e-8),
    Case("srgb_eotf", T.srgb_eotf, lambda x: cm.eotf_sRGB(x), _codes, 1e-6, 1e-8),
    Case("srgb_inverse_eotf", T.srgb_inverse_eotf, lambda x: cm.eotf_inverse_sRGB(x), _codes, 1e-6, 1e-7),
    Case("gamma_eotf", lambda v: T.gamma_eotf(v, 2.2), lambda x: colour.gamma_function(x, 2.2), _codes, 1e-6, 1e-8),
    Case(
        "gamma_inverse_eotf",
        lambda v: T.gamma_inverse_eotf(v, 2.6),
        lambda x: colour.gamma_function(x, 1 / 2.6),
        _codes,
        1e-6,
        1e-7,
    ),
]
IDS = [c.name for c in CASES]


def _assert_close32(got: np.ndarray, want: np.ndarray, case: Case) -> None:
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=case.rtol32, atol=case.atol, err_msg=case.name)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float64_matches_colour(case: Case) -> None:
    x = case.sample()
    got = case.ours(x)
    assert isinstance(got, np.ndarray) and got.dtype == np.float64 and got.shape == x.shape
    np.testing.assert_allclose(got, case.ref(x), rtol=1e-10, atol=1e-12, err_msg=case.name)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32_in_float32_out(case: Case) -> None:
    x32 = case.sample().astype(np.float32).reshape(-1, 1)  # also checks that shapes are kept
    got = case.ours(x32)
    assert got.dtype == np.float32 and got.shape == x32.shape
    _assert_close32(got, case.ref(x32.astype(np.float64)), case)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_torch_matches_colour_and_keeps_dtype(case: Case) -> None:
    x = case.sample()
    for dtype in (torch.float64, torch.float32):
        t = torch.as_tensor(x, dtype=dtype)
        got = case.ours(t)
        assert isinstance(got, torch.Tensor) and got.dtype == dtype and got.device == t.device
        want = case.ref(t.double().numpy())
        if dtype == torch.float64:
            np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12, err_msg=case.name)
        else:
            _assert_close32(got.numpy(), want, case)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_negative_clips_to_zero_and_nan_propagates(case: Case) -> None:
    x = np.array([-0.5, -1e-3, 0.0, np.nan])
    got = case.ours(x)
    zero = case.ours(np.array(0.0))
    np.testing.assert_array_equal(got[:3], np.full(3, zero))
    assert np.isnan(got[3])
    tg = case.ours(torch.tensor([-0.5, float("nan")], dtype=torch.float64))
    assert tg[0].item() == pytest.approx(float(zero), abs=1e-15) and math.isnan(tg[1].item())


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_torch_gradient_is_correct_and_finite_at_zero(case: Case) -> None:
    # Interior points (away from the piecewise seams): analytic vs numerical gradient.
    x = torch.tensor([0.2, 0.45, 0.63, 0.9], dtype=torch.float64, requires_grad=True)
    if "inverse" in case.name and ("st2084" in case.name or "bt1886" in case.name):
        x = (x.detach() * 90.0 + 0.5).requires_grad_(True)  # nits domains
    assert torch.autograd.gradcheck(case.ours, (x,), eps=1e-7, atol=1e-5, rtol=1e-4)
    # At 0 (and for clipped negatives) the gradient exists and is finite.
    z = torch.tensor([0.0, -0.1], dtype=torch.float32, requires_grad=True)
    case.ours(z).sum().backward()
    assert torch.isfinite(z.grad).all()


ROUND_TRIPS = [
    # Codes below c1^m2 ~ 7.3e-7 all decode to 0 cd/m^2, so the PQ code round trip starts above.
    ("pq", T.st2084_eotf, T.st2084_inverse_eotf, lambda: np.maximum(_codes(), 1e-5)),
    ("hlg_oetf", T.hlg_inverse_oetf, T.hlg_oetf, _codes),
    ("bt1886", T.bt1886_eotf, T.bt1886_inverse_eotf, _codes),
    (
        "bt1886_black",
        lambda v: T.bt1886_eotf(v, 300.0, 0.05),
        lambda v: T.bt1886_inverse_eotf(v, 300.0, 0.05),
        _codes,
    ),
    ("bt709", T.bt709_inverse_oetf, T.bt709_oetf, _codes),
    ("srgb", T.srgb_eotf, T.srgb_inverse_eotf, _codes),
    ("gamma", lambda v: T.gamma_eotf(v, 2.4), lambda v: T.gamma_inverse_eotf(v, 2.4), _codes),
]


@pytest.mark.parametrize(("name", "f", "f_inv", "sample"), ROUND_TRIPS, ids=[r[0] for r in ROUND_TRIPS])
def test_round_trips(name: str, f: Callable, f_inv: Callable, sample: Callable) -> None:
    v = sample()
    np.testing.assert_allclose(f_inv(f(v)), v, rtol=1e-9, atol=1e-12, err_msg=name)
    v32 = v.astype(np.float32)
    np.testing.assert_allclose(f_inv(f(v32)), v32, rtol=2e-5, atol=2e-6, err_msg=name)
    vt = torch.as_tensor(v32)
    np.testing.assert_allclose(f_inv(f(vt)).numpy(), v32, rtol=2e-5, atol=2e-6, err_msg=name)


def test_pq_round_trip_in_nits_and_16bit_codes() -> None:
    nits = _nits()
    np.testing.assert_allclose(T.st2084_eotf(T.st2084_inverse_eotf(nits)), nits, rtol=1e-9, atol=1e-9)
    codes = np.arange(0, 65536, 7, dtype=np.uint16)
    back = np.round(T.st2084_inverse_eotf(T.st2084_eotf(codes.astype(np.float32) / 65535)) * 65535)
    np.testing.assert_array_equal(back.astype(np.uint16), codes)


def test_constants_and_hand_values_from_the_standards() -> None:
    assert T.PQ_PEAK_NITS == 10000.0
    assert T.SDR_REFERENCE_WHITE_NITS == 203.0
    assert T.SDR_PEAK_NITS == 100.0
    assert float(T.st2084_eotf(1.0)) == pytest.approx(10000.0, rel=1e-12)
    assert float(T.st2084_inverse_eotf(10000.0)) == pytest.approx(1.0, rel=1e-12)
    # Codes above 1 clip to the peak (the formula has a pole near code 2); light above it extrapolates.
    np.testing.assert_allclose(T.st2084_eotf(np.array([1.5, 2.5, 100.0])), 10000.0, rtol=1e-12)
    assert float(T.st2084_inverse_eotf(12000.0)) > 1.0
    # ST 2084 of 0 cd/m^2 is c1^m2, not 0.
    assert float(T.st2084_inverse_eotf(0.0)) == pytest.approx((3424 / 4096) ** 78.84375, rel=1e-12)
    # BT.2408: 203 cd/m^2 reference white is ~58 % PQ and 75 % HLG on a 1000 cd/m^2 display.
    assert float(T.st2084_inverse_eotf(203.0)) == pytest.approx(0.5807, abs=5e-4)
    assert float(T.st2084_inverse_eotf(100.0)) == pytest.approx(0.5081, abs=5e-4)
    assert float(T.hlg_eotf(np.full(3, 0.75))[0]) == pytest.approx(203.0, abs=1.0)
    # HLG: E = 1/12 <-> E' = 0.5 and E = 1 <-> E' = 1.
    assert float(T.hlg_oetf(1 / 12)) == pytest.approx(0.5, abs=1e-12)
    assert float(T.hlg_oetf(1.0)) == pytest.approx(1.0, abs=1e-7)
    assert float(T.bt709_oetf(1.0)) == pytest.approx(1.0, abs=1e-12)
    assert float(T.srgb_inverse_eotf(1.0)) == pytest.approx(1.0, abs=1e-12)
    assert float(T.bt1886_eotf(1.0)) == pytest.approx(100.0, rel=1e-12)
    assert float(T.bt1886_eotf(0.0, 120.0, 0.2)) == pytest.approx(0.2, rel=1e-9)
    assert float(T.bt1886_eotf(0.5)) == pytest.approx(100 * 0.5**2.4, rel=1e-12)


def test_piecewise_seams_follow_the_standards() -> None:
    # IEC 61966-2-1: linear segment up to and including V = 0.04045 / L = 0.0031308.
    assert float(T.srgb_eotf(0.04045)) == pytest.approx(0.04045 / 12.92, rel=1e-12)
    assert float(T.srgb_inverse_eotf(0.0031308)) == pytest.approx(0.0031308 * 12.92, rel=1e-12)
    assert float(T.srgb_eotf(0.0405)) == pytest.approx(((0.0405 + 0.055) / 1.055) ** 2.4, rel=1e-12)
    # BT.709: power segment from L = 0.018 on; the inverse switches where that segment starts.
    knee = 1.099 * 0.018**0.45 - 0.099
    assert float(T.bt709_oetf(0.018)) == pytest.approx(knee, rel=1e-12)
    assert float(T.bt709_oetf(0.0179)) == pytest.approx(4.5 * 0.0179, rel=1e-12)
    assert float(T.bt709_inverse_oetf(knee)) == pytest.approx(0.018, rel=1e-12)
    assert float(T.bt709_inverse_oetf(0.081)) == pytest.approx(0.018, rel=1e-12)
    # HLG segments meet at E = 1/12 <-> E' = 1/2 (b and c from their defining formulas).
    lo, hi = np.nextafter(1 / 12, 0), np.nextafter(1 / 12, 1)
    assert abs(float(T.hlg_oetf(hi)) - float(T.hlg_oetf(lo))) < 1e-12
    assert float(T.hlg_inverse_oetf(np.nextafter(0.5, 1))) == pytest.approx(1 / 12, rel=1e-12)


def test_hlg_system_gamma() -> None:
    assert T.hlg_system_gamma() == pytest.approx(1.2, abs=1e-15)
    for peak in (400.0, 600.0, 1500.0, 2000.0):
        assert T.hlg_system_gamma(peak) == pytest.approx(gamma_function_BT2100_HLG(peak), abs=1e-12)
    # Extended formula outside 400..2000 cd/m^2.
    assert T.hlg_system_gamma(4000.0) == pytest.approx(1.2 * 1.111**2, rel=1e-12)
    assert T.hlg_system_gamma(250.0) == pytest.approx(1.2 * 1.111**-2, rel=1e-12)
    for bad in (0.0, -5.0, float("nan")):
        with pytest.raises(InputError):
            T.hlg_system_gamma(bad)


def _rgb(n: int = 3000) -> np.ndarray:
    x = RNG.random((n, 3))
    x[:5] = [[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 0.3, 0], [0.02, 0.01, 0.6]]
    return x


@pytest.mark.parametrize(
    ("peak", "black", "gamma"),
    [(1000.0, 0.0, None), (1000.0, 0.005, None), (2000.0, 0.0, None), (600.0, 0.05, None), (1000.0, 0.0, 1.3)],
)
def test_hlg_eotf_and_inverse_match_colour(peak: float, black: float, gamma: float | None) -> None:
    sig = _rgb()
    kw = {"L_B": black, "L_W": peak, "gamma": gamma, "method": "ITU-R BT.2100-2"}
    want = cm.eotf_BT2100_HLG(sig, **kw)
    got = T.hlg_eotf(sig, peak, black, gamma=gamma)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    got32 = T.hlg_eotf(sig.astype(np.float32), peak, black, gamma=gamma)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(
        got32, cm.eotf_BT2100_HLG(sig.astype(np.float32).astype(np.float64), **kw), rtol=2e-6, atol=1e-5
    )
    gt = T.hlg_eotf(torch.as_tensor(sig), peak, black, gamma=gamma)
    np.testing.assert_allclose(gt.numpy(), want, rtol=1e-10, atol=1e-10)

    nits = want
    want_inv = cm.eotf_inverse_BT2100_HLG(nits, **kw)
    np.testing.assert_allclose(T.hlg_inverse_eotf(nits, peak, black, gamma=gamma), want_inv, rtol=1e-9, atol=1e-10)
    # Round trip signal -> nits -> signal.
    np.testing.assert_allclose(T.hlg_inverse_eotf(got, peak, black, gamma=gamma), sig, rtol=1e-9, atol=1e-9)


def test_hlg_extended_gamma_is_used_outside_400_2000() -> None:
    sig = _rgb(500)
    g = T.hlg_system_gamma(4000.0)
    want = cm.eotf_BT2100_HLG(sig, L_B=0, L_W=4000, gamma=g)
    np.testing.assert_allclose(T.hlg_eotf(sig, 4000.0), want, rtol=1e-10, atol=1e-10)
    # A dim display has gamma < 1: black must stay 0 (no 0 * inf) and the inverse must hold.
    out = T.hlg_eotf(sig, 200.0)
    assert np.isfinite(out).all() and (out[0] == 0).all()
    np.testing.assert_allclose(T.hlg_inverse_eotf(out, 200.0), sig, rtol=1e-9, atol=1e-9)


def test_hlg_rgb_negative_nan_and_grad() -> None:
    x = np.array([[-0.2, 0.5, 0.5], [np.nan, 0.5, 0.5]])
    out = T.hlg_eotf(x)
    np.testing.assert_allclose(out[0], T.hlg_eotf(np.array([0.0, 0.5, 0.5])))
    assert np.isnan(out[1]).any()
    t = torch.tensor([[0.0, 0.0, 0.0], [0.3, 0.6, 0.9]], dtype=torch.float64, requires_grad=True)
    T.hlg_eotf(t).sum().backward()
    assert torch.isfinite(t.grad).all()
    u = torch.tensor([[0.3, 0.6, 0.9], [0.7, 0.2, 0.4]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: T.hlg_eotf(v, 1000.0, 0.01), (u,))
    assert torch.autograd.gradcheck(lambda v: T.hlg_inverse_eotf(v * 500.0 + 1.0), (u,))


def test_bad_arguments_raise_datakit_errors() -> None:
    with pytest.raises(InputError):
        T.hlg_eotf(np.zeros((4, 2)))
    with pytest.raises(InputError):
        T.hlg_eotf(np.zeros(3), peak_nits=1000.0, black_nits=1000.0)
    with pytest.raises(DatakitError):
        T.bt1886_eotf(0.5, white_nits=10.0, black_nits=20.0)
    with pytest.raises(DatakitError):
        T.gamma_eotf(0.5, 0.0)
    with pytest.raises(DatakitError):
        T.gamma_inverse_eotf(0.5, float("inf"))


def test_integer_and_list_inputs_become_float64() -> None:
    out = T.srgb_eotf([0, 1])
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, [0.0, 1.0])
    assert T.st2084_eotf(np.uint16(0)).dtype == np.float64
    assert T.st2084_eotf(torch.tensor([0, 1])).dtype == torch.get_default_dtype()


def test_package_reexports_every_module() -> None:
    import datakit.color as dc

    missing = [name for name in dc.__all__ if not hasattr(dc, name)]
    assert missing == []
    assert dc.st2084_eotf is T.st2084_eotf
    for module in (dc.transfer, dc.gamut, dc.ictcp):
        for name in module.__all__:
            assert getattr(dc, name) is getattr(module, name)
