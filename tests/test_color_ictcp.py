"""datakit.color.ictcp against colour-science (ITU-R BT.2100 PQ ICtCp, BT.2124 Delta E_ITP)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from datakit.color import ictcp as C
from datakit.color.transfer import st2084_inverse_eotf
from datakit.errors import InputError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour
    from colour import models as cm

METHOD = "ITU-R BT.2100-2 PQ"
# colour-science warns about its own log/power of 0 at edge inputs; ours must stay silent (no filter).
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning:colour.*")

RNG = np.random.default_rng(11)


def _rgb_nits(shape: tuple[int, ...] = (60, 50)) -> np.ndarray:
    """Linear BT.2020 RGB in cd/m^2, log-uniform 1e-3..10000, with black, white and primaries."""
    x = 10.0 ** RNG.uniform(-3, 4, (*shape, 3))
    flat = x.reshape(-1, 3)
    flat[:6] = [[0, 0, 0], [1e4, 1e4, 1e4], [100, 100, 100], [1000, 0, 0], [0, 1000, 0], [0, 0, 1000]]
    return x


def _ref_ictcp(rgb_nits: np.ndarray) -> np.ndarray:
    return colour.RGB_to_ICtCp(np.array(rgb_nits, dtype=np.float64), method=METHOD)


def _ref_delta_e(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # colour's delta_E_ITP scales Ct in place on the split views: give it copies.
    return colour.delta_E(np.array(a, dtype=np.float64), np.array(b, dtype=np.float64), method="ITP")


def test_rgb_to_ictcp_matches_colour_float64_float32_torch() -> None:
    rgb = _rgb_nits()
    want = _ref_ictcp(rgb)
    got = C.rgb_to_ictcp(rgb)
    assert got.shape == rgb.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    got32 = C.rgb_to_ictcp(rgb.astype(np.float32))
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, _ref_ictcp(rgb.astype(np.float32)), rtol=0, atol=2e-6)
    for dtype, atol in ((torch.float64, 1e-12), (torch.float32, 2e-6)):
        t = torch.as_tensor(rgb, dtype=dtype)
        gt = C.rgb_to_ictcp(t)
        assert isinstance(gt, torch.Tensor) and gt.dtype == dtype
        np.testing.assert_allclose(gt.numpy(), _ref_ictcp(t.double().numpy()), rtol=0, atol=atol)


def _close_rel_to_pixel(got: np.ndarray, want: np.ndarray, scale: np.ndarray, tol: float) -> None:
    err = np.abs(got - want) / scale
    assert float(err.max()) <= tol, f"max error {float(err.max()):.3g} x pixel scale"


def test_ictcp_to_rgb_matches_colour_and_round_trips() -> None:
    rgb = _rgb_nits()
    ictcp = _ref_ictcp(rgb)
    got = C.ictcp_to_rgb(ictcp)
    # LMS -> RGB cancels: a dim channel next to bright ones is only accurate relative to the pixel.
    scale = np.abs(rgb).max(axis=-1, keepdims=True) + 1.0
    _close_rel_to_pixel(got, colour.ICtCp_to_RGB(ictcp, method=METHOD), scale, 1e-11)
    _close_rel_to_pixel(got, rgb, scale, 1e-11)
    t = torch.as_tensor(ictcp, dtype=torch.float64)
    _close_rel_to_pixel(C.ictcp_to_rgb(t).numpy(), rgb, scale, 1e-11)
    rgb32 = rgb.astype(np.float32)
    back32 = C.ictcp_to_rgb(C.rgb_to_ictcp(rgb32))
    assert back32.dtype == np.float32
    _close_rel_to_pixel(back32.astype(np.float64), rgb, scale, 2e-5)


def test_hand_values_from_bt2100() -> None:
    # Achromatic light: LMS = RGB (rows of the LMS matrix sum to 4096), so I = PQ(Y), Ct = Cp = 0.
    for y in (0.0, 0.1, 100.0, 203.0, 10000.0):
        i, ct, cp = C.rgb_to_ictcp(np.full(3, y))
        assert i == pytest.approx(float(st2084_inverse_eotf(y)), abs=1e-12)
        assert ct == pytest.approx(0.0, abs=1e-12) and cp == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(C.rgb_to_ictcp(np.full(3, 10000.0)), [1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(C.RGB_TO_LMS.sum(axis=1), np.ones(3), atol=1e-15)
    np.testing.assert_allclose(C.RGB_TO_LMS[0] * 4096, [1688, 2146, 262])
    np.testing.assert_allclose(C.LMS_P_TO_ICTCP[2] * 4096, [17933, -17390, -543])


def test_out_of_gamut_and_nan_inputs() -> None:
    rgb = np.array([[500.0, -50.0, -50.0], [np.nan, 1.0, 1.0], [-1.0, -1.0, -1.0]])
    out = C.rgb_to_ictcp(rgb)
    assert np.isfinite(out[0]).all()
    assert np.isnan(out[1]).any()
    np.testing.assert_allclose(out[2], C.rgb_to_ictcp(np.zeros(3)), atol=1e-15)  # negative LMS -> 0 light
    with pytest.raises(InputError):
        C.rgb_to_ictcp(np.zeros((4, 4)))
    with pytest.raises(InputError):
        C.ictcp_to_rgb(np.zeros(2))


def test_delta_e_itp_matches_colour_and_formula() -> None:
    a = _ref_ictcp(_rgb_nits())
    b = _ref_ictcp(_rgb_nits())
    want = _ref_delta_e(a, b)
    got = C.delta_e_itp(a, b)
    assert got.shape == a.shape[:-1] and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    got32 = C.delta_e_itp(a.astype(np.float32), b.astype(np.float32))
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, want, rtol=1e-5, atol=1e-3)
    # Weights by hand: dI counts 720x, dCt 360x (T = Ct / 2), dCp 720x.
    z = np.zeros(3)
    assert float(C.delta_e_itp(z, [0.01, 0.0, 0.0])) == pytest.approx(7.2, rel=1e-12)
    assert float(C.delta_e_itp(z, [0.0, 0.01, 0.0])) == pytest.approx(3.6, rel=1e-12)
    assert float(C.delta_e_itp(z, [0.0, 0.0, 0.01])) == pytest.approx(7.2, rel=1e-12)
    # Broadcasting one reference colour against an image.
    assert C.delta_e_itp(a, a[0, 0]).shape == a.shape[:-1]
    with pytest.raises(InputError):
        C.delta_e_itp(np.zeros((3, 2)), np.zeros((3, 2)))


def test_delta_e_itp_torch_values_and_gradients() -> None:
    a = _ref_ictcp(_rgb_nits((8, 8)))
    b = _ref_ictcp(_rgb_nits((8, 8)))
    ta = torch.tensor(a, requires_grad=True)
    tb = torch.tensor(b)
    d = C.delta_e_itp(ta, tb)
    assert isinstance(d, torch.Tensor) and d.dtype == torch.float64
    np.testing.assert_allclose(d.detach().numpy(), _ref_delta_e(a, b), rtol=1e-12)
    # Mixed numpy/torch operands follow the tensor.
    np.testing.assert_allclose(C.delta_e_itp(a, tb).numpy(), _ref_delta_e(a, b), rtol=1e-12)
    # Gradient is finite (zero) where the inputs are equal, and correct elsewhere.
    same = torch.tensor(a, requires_grad=True)
    C.delta_e_itp(same, torch.tensor(a)).sum().backward()
    assert torch.isfinite(same.grad).all() and float(same.grad.abs().max()) == 0.0
    assert torch.autograd.gradcheck(lambda x: C.delta_e_itp(x, tb[:2, :2]), (ta[:2, :2].detach().requires_grad_(),))


def test_ictcp_torch_gradient_through_the_whole_chain() -> None:
    rgb = torch.tensor(_rgb_nits((3, 3)) * 0.05 + 0.5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(C.rgb_to_ictcp, (rgb,), eps=1e-6, atol=1e-6, rtol=1e-4)
    black = torch.zeros(2, 3, requires_grad=True)
    C.rgb_to_ictcp(black).sum().backward()
    assert torch.isfinite(black.grad).all()


def _paper_style_reference(pq_a: np.ndarray, pq_b: np.ndarray) -> float:
    """The recipe of FIELD-NOTES: PQ EOTF -> ICtCp (BT.2100 PQ) -> delta_E ITP -> mean, all colour."""
    ia = colour.RGB_to_ICtCp(cm.eotf_ST2084(pq_a), method=METHOD)
    ib = colour.RGB_to_ICtCp(cm.eotf_ST2084(pq_b), method=METHOD)
    return float(np.mean(_ref_delta_e(ia, ib)))


def test_delta_e_itp_from_pq_matches_the_paper_recipe() -> None:
    codes_a = RNG.integers(0, 65536, (24, 32, 3), dtype=np.uint16)
    noise = RNG.integers(-600, 600, codes_a.shape)
    codes_b = np.clip(codes_a.astype(np.int64) + noise, 0, 65535).astype(np.uint16)
    pq_a = codes_a.astype(np.float32) / 65535
    pq_b = codes_b.astype(np.float32) / 65535
    want = _paper_style_reference(pq_a.astype(np.float64), pq_b.astype(np.float64))
    got = C.delta_e_itp_from_pq(pq_a, pq_b)
    assert isinstance(got, float) and got > 1.0
    assert got == pytest.approx(want, rel=1e-9)
    assert C.delta_e_itp_from_pq(pq_a, pq_a) == 0.0
    # Symmetric, and torch float32 agrees closely.
    assert C.delta_e_itp_from_pq(pq_b, pq_a) == pytest.approx(got, rel=1e-12)
    got_t = C.delta_e_itp_from_pq(torch.from_numpy(pq_a), torch.from_numpy(pq_b))
    assert isinstance(got_t, float) and got_t == pytest.approx(want, rel=1e-4)


def test_delta_e_itp_from_pq_errors_and_nan() -> None:
    with pytest.raises(InputError, match="shapes differ"):
        C.delta_e_itp_from_pq(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))
    with pytest.raises(InputError):
        C.delta_e_itp_from_pq(np.zeros((4, 4)), np.zeros((4, 4)))
    with pytest.raises(InputError):
        C.delta_e_itp_from_pq(np.zeros((0, 3)), np.zeros((0, 3)))
    a = np.full((2, 2, 3), 0.5)
    b = a.copy()
    b[0, 0, 0] = np.nan
    assert np.isnan(C.delta_e_itp_from_pq(a, b))
