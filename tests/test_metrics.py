"""Metrics on PQ code values: hand-computed values, an independent SSIM reference and colour-science for ΔE_ITP."""

from __future__ import annotations

import itertools
import math
import warnings

import cv2
import numpy as np
import pytest

from datakit.errors import InputError
from datakit.metrics import (
    as_pq_image,
    brightness_track,
    delta_e_itp,
    image_metrics,
    mean_psnr,
    psnr,
    sr_sim,
    ssim,
    temporal_consistency,
)
from datakit.metrics.srsim import gradient_magnitude, spectral_residual_saliency
from datakit.metrics.ssim import gaussian_window, ssim_map


def smooth_image(seed: int, h: int = 48, w: int = 64) -> np.ndarray:
    """A textured float PQ image in [0.1, 0.9] (smoothed noise), shape (h, w, 3)."""
    rng = np.random.default_rng(seed)
    x = cv2.GaussianBlur(rng.random((h, w, 3)), (0, 0), 2.0)
    x = (x - x.min()) / (x.max() - x.min())
    return 0.1 + 0.8 * x


# ----------------------------------------------------------------------------------------------- PSNR


def test_psnr_hand_computed_uint16_offset():
    target = np.full((8, 10, 3), 30000, np.uint16)
    pred = target + np.uint16(655)
    assert psnr(pred, target) == pytest.approx(20 * math.log10(65535 / 655), abs=1e-9)
    # Only half of the pixels wrong: MSE halves, PSNR rises by 10 log10(2).
    half = target.copy()
    half[:4] += 655
    assert psnr(half, target) == pytest.approx(20 * math.log10(65535 / 655) + 10 * math.log10(2), abs=1e-9)


def test_psnr_uint16_round_trip_and_float_equivalence():
    codes = np.random.default_rng(0).integers(0, 65536, (6, 7, 3)).astype(np.uint16)
    floats = codes / 65535.0
    jitter = floats + 0.3 / 65535.0  # below half a code: the round trip removes it
    assert psnr(jitter, codes) == math.inf
    assert psnr(floats.astype(np.float32), codes) == math.inf
    np.testing.assert_array_equal(as_pq_image(np.array([[[-0.2, 1.5, 0.5]]])), [[[0.0, 1.0, 32768 / 65535]]])
    with pytest.raises(InputError):
        as_pq_image(np.zeros((2, 2, 3), np.uint8))


def test_mean_psnr_is_mean_of_per_image_values():
    target = np.zeros((4, 4, 3), np.uint16)
    a, b = target + np.uint16(65), target + np.uint16(6553)
    expected = (20 * math.log10(65535 / 65) + 20 * math.log10(65535 / 6553)) / 2
    assert mean_psnr([(a, target), (b, target)]) == pytest.approx(expected, abs=1e-9)


def test_shape_mismatch_is_input_error():
    with pytest.raises(InputError, match="shapes differ"):
        psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))
    with pytest.raises(InputError, match="channels-last"):
        ssim(np.zeros((3, 16, 16)), np.zeros((3, 16, 16)))


# ----------------------------------------------------------------------------------------------- SSIM


def test_ssim_constant_images_hand_computed():
    a, b = 20000 / 65535, 40000 / 65535
    x = np.full((20, 24, 3), a)
    y = np.full((20, 24, 3), b)
    c1 = (0.01 * 1.0) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)  # structure/contrast term is C2 / C2 = 1
    assert ssim(x, y) == pytest.approx(expected, abs=1e-9)
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-12)


def test_ssim_matches_explicit_window_reference():
    x = as_pq_image(smooth_image(1, 24, 26))
    y = as_pq_image(np.clip(x + np.random.default_rng(2).normal(0, 0.05, x.shape), 0, 1))
    g = gaussian_window()
    w = np.outer(g, g)
    c1, c2 = 0.01**2, 0.03**2
    per_channel = []
    for c in range(3):
        wx = np.lib.stride_tricks.sliding_window_view(x[..., c], (11, 11))
        wy = np.lib.stride_tricks.sliding_window_view(y[..., c], (11, 11))
        mx = np.einsum("ijkl,kl->ij", wx, w)
        my = np.einsum("ijkl,kl->ij", wy, w)
        vx = np.einsum("ijkl,kl->ij", (wx - mx[..., None, None]) ** 2, w)
        vy = np.einsum("ijkl,kl->ij", (wy - my[..., None, None]) ** 2, w)
        cov = np.einsum("ijkl,kl->ij", (wx - mx[..., None, None]) * (wy - my[..., None, None]), w)
        s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        assert ssim_map(x[..., c], y[..., c]).shape == s.shape == (14, 16)
        per_channel.append(s.mean())
    assert ssim(x, y) == pytest.approx(float(np.mean(per_channel)), abs=1e-10)
    assert 0.2 < ssim(x, y) < 0.99


def test_ssim_too_small_is_input_error():
    with pytest.raises(InputError, match="at least 11x11"):
        ssim(np.zeros((8, 20, 3)), np.zeros((8, 20, 3)))


# ----------------------------------------------------------------------------------------------- SR-SIM


def test_sr_sim_identity_symmetry_and_monotonic_with_noise():
    x = smooth_image(3, 96, 128)
    assert sr_sim(x, x) == 1.0
    rng = np.random.default_rng(4)
    noise = rng.normal(0, 1, x.shape)
    scores = [sr_sim(np.clip(x + s * noise, 0, 1), x) for s in (0.005, 0.02, 0.08, 0.3)]
    assert all(a > b for a, b in itertools.pairwise(scores)), scores
    assert 0.0 < scores[-1] < scores[0] < 1.0
    y = np.clip(x + 0.05 * noise, 0, 1)
    assert sr_sim(x, y) == pytest.approx(sr_sim(y, x), abs=1e-12)
    flat = np.full((40, 40, 3), 0.3)
    assert sr_sim(flat, flat) == 1.0


def test_sr_sim_gradient_of_a_ramp_is_hand_computed():
    k = 3.0
    ramp = np.tile(np.arange(20, dtype=np.float64) * k, (12, 1))
    g = gradient_magnitude(ramp)
    # Scharr / 16 of Y = k x: (3 + 10 + 3) / 16 * (Y(x+1) - Y(x-1)) = 2 k in the interior.
    np.testing.assert_allclose(g[1:-1, 1:-1], 2 * k, atol=1e-12)


def test_sr_sim_saliency_range_and_shape():
    y = smooth_image(5, 64, 80)[..., 0] * 255
    s = spectral_residual_saliency(y)
    assert s.shape == y.shape
    assert s.max() > 0.5 and s.min() > -0.1 and s.max() < 1.1  # bicubic enlargement may overshoot slightly


def test_sr_sim_downsamples_large_images():
    # min(H, W) = 600 -> F = 2; the score is still 1 for identical images and < 1 for a shifted copy.
    x = smooth_image(6, 600, 640)
    assert sr_sim(x, x) == 1.0
    assert sr_sim(np.roll(x, 3, axis=1), x) < 0.99


# ----------------------------------------------------------------------------------------------- ΔE_ITP


def test_delta_e_itp_matches_colour_science():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import colour
    a = smooth_image(7, 16, 20)
    b = np.clip(a + np.random.default_rng(8).normal(0, 0.02, a.shape), 0, 1)
    qa, qb = as_pq_image(a), as_pq_image(b)
    nits_a = colour.models.eotf_ST2084(qa)
    nits_b = colour.models.eotf_ST2084(qb)
    ictcp_a = colour.RGB_to_ICtCp(nits_a, method="ITU-R BT.2100-2 PQ")
    ictcp_b = colour.RGB_to_ICtCp(nits_b, method="ITU-R BT.2100-2 PQ")
    expected = float(np.mean(colour.delta_E(ictcp_a, ictcp_b, method="ITP")))
    assert expected > 1.0
    assert delta_e_itp(a, b) == pytest.approx(expected, rel=1e-6)
    assert delta_e_itp(a, a) == 0.0


# ----------------------------------------------------------------------------------------------- temporal


def test_temporal_consistency_hand_computed():
    levels = np.array([0.2, 0.3, 0.25, 0.4])
    truth = np.ones((4, 6, 5, 3)) * levels[:, None, None, None]
    assert temporal_consistency(truth, truth) == 0.0
    # A constant brightness offset does not change the frame-to-frame changes.
    assert temporal_consistency(np.clip(truth + 0.1, 0, 1), truth) < 2 / 65535  # up to rounding to codes
    flicker = truth.copy()
    flicker[2] += 0.05  # changes: +0.05 on 1->2, -0.05 on 2->3
    q = as_pq_image(flicker[2]).mean() - as_pq_image(truth[2]).mean()
    assert temporal_consistency(flicker, truth) == pytest.approx(2 * q / 3, abs=1e-12)
    np.testing.assert_allclose(brightness_track(truth), np.round(levels * 65535) / 65535, atol=1e-12)
    with pytest.raises(InputError):
        temporal_consistency(truth[:1], truth[:1])


def test_image_metrics_returns_the_four_metrics():
    a = smooth_image(9, 32, 32)
    m = image_metrics(a, a)
    assert m == {"psnr": math.inf, "ssim": pytest.approx(1.0), "sr_sim": 1.0, "delta_e_itp": 0.0}
