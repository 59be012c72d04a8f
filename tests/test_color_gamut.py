"""datakit.color.gamut against colour-science and the matrices published in ITU-R BT.2087."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch

from datakit.color import gamut as G
from datakit.errors import DatakitError, InputError, UnsupportedFormatError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour

COLOUR_NAMES = {"bt709": "ITU-R BT.709", "bt2020": "ITU-R BT.2020", "p3d65": "P3-D65", "p3dci": "DCI-P3"}
# colour-science warns about its own log/power of 0 at edge inputs; ours must stay silent (no filter).
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning:colour.*")

RNG = np.random.default_rng(7)


def _cs(name: str) -> colour.RGB_Colourspace:
    return colour.RGB_COLOURSPACES[COLOUR_NAMES[name]]


@pytest.mark.parametrize("name", sorted(COLOUR_NAMES))
def test_primaries_and_matrices_match_colour(name: str) -> None:
    p = G.PRIMARIES[name]
    cs = _cs(name)
    np.testing.assert_array_equal(np.array([p.red, p.green, p.blue]), cs.primaries)
    np.testing.assert_array_equal(np.array(p.white), cs.whitepoint)
    m = G.rgb_to_xyz_matrix(name)
    assert m.shape == (3, 3) and m.dtype == np.float64
    np.testing.assert_allclose(m, cs.matrix_RGB_to_XYZ, rtol=0, atol=1e-12)
    np.testing.assert_allclose(G.xyz_to_rgb_matrix(name), cs.matrix_XYZ_to_RGB, rtol=0, atol=1e-11)
    # RP 177: white (1, 1, 1) -> white point XYZ with Y = 1.
    x, y = p.white
    np.testing.assert_allclose(m @ np.ones(3), [x / y, 1.0, (1 - x - y) / y], atol=1e-14)
    np.testing.assert_allclose(G.luminance_weights(name), cs.matrix_RGB_to_XYZ[1], atol=1e-14)


@pytest.mark.parametrize("src", sorted(COLOUR_NAMES))
@pytest.mark.parametrize("dst", sorted(COLOUR_NAMES))
def test_rgb_to_rgb_matrix_matches_colour(src: str, dst: str) -> None:
    same_white = G.PRIMARIES[src].white == G.PRIMARIES[dst].white
    want = colour.matrix_RGB_to_RGB(_cs(src), _cs(dst), None if same_white else "Bradford")
    np.testing.assert_allclose(G.rgb_to_rgb_matrix(src, dst), want, rtol=0, atol=1e-12)
    # White maps to white in every case (Bradford adapts the white points).
    np.testing.assert_allclose(G.rgb_to_rgb_matrix(src, dst) @ np.ones(3), np.ones(3), atol=1e-12)


def test_published_bt2087_matrices_and_luminance_weights() -> None:
    # ITU-R BT.2087-0, equation (4) and its inverse as usually tabulated (4 decimals).
    bt2087 = np.array([[0.6274, 0.3293, 0.0433], [0.0691, 0.9195, 0.0114], [0.0164, 0.0880, 0.8956]])
    np.testing.assert_allclose(G.BT709_TO_BT2020, bt2087, atol=6e-5)
    inv = np.array([[1.6605, -0.5876, -0.0728], [-0.1246, 1.1329, -0.0083], [-0.0182, -0.1006, 1.1187]])
    np.testing.assert_allclose(G.BT2020_TO_BT709, inv, atol=6e-5)
    np.testing.assert_allclose(G.BT709_TO_BT2020 @ G.BT2020_TO_BT709, np.eye(3), atol=1e-14)
    assert G.BT709_TO_BT2020.dtype == np.float64 and G.BT709_TO_BT2020.shape == (3, 3)
    with pytest.raises(ValueError):
        G.BT709_TO_BT2020[0, 0] = 1.0  # shared constant is read-only
    np.testing.assert_allclose(G.luminance_weights("bt709"), [0.2126, 0.7152, 0.0722], atol=5e-5)
    np.testing.assert_allclose(G.luminance_weights("bt2020"), [0.2627, 0.6780, 0.0593], atol=5e-5)
    assert G.luminance_weights("bt2020").sum() == pytest.approx(1.0, abs=1e-14)


def test_returned_matrices_are_fresh_copies() -> None:
    m = G.rgb_to_xyz_matrix("bt709")
    m[:] = 0
    assert G.rgb_to_xyz_matrix("bt709")[0, 0] == pytest.approx(0.4123908, abs=1e-7)
    w = G.luminance_weights("bt2020")
    w[:] = 0
    assert G.luminance_weights("bt2020")[1] == pytest.approx(0.678, abs=1e-4)


def test_get_primaries_names_aliases_and_errors() -> None:
    assert G.get_primaries("bt2020") is G.PRIMARIES["bt2020"]
    assert G.get_primaries("BT.2020") is G.PRIMARIES["bt2020"]
    assert G.get_primaries("ITU-R BT.709") is G.PRIMARIES["bt709"]
    assert G.get_primaries("rec2020") is G.PRIMARIES["bt2020"]
    assert G.get_primaries("P3-D65") is G.PRIMARIES["p3d65"]
    custom = G.Primaries((0.7, 0.3), (0.2, 0.7), (0.15, 0.05), (0.3127, 0.329), "mine")
    assert G.get_primaries(custom) is custom
    for bad in ("bt601x", "", "aces"):
        with pytest.raises(UnsupportedFormatError, match="unknown colour primaries"):
            G.get_primaries(bad)
    with pytest.raises(DatakitError):
        G.rgb_to_xyz_matrix("nope")
    with pytest.raises(dataclasses.FrozenInstanceError):
        custom.name = "other"  # type: ignore[misc]
    with pytest.raises(InputError):
        G.Primaries((0.7, 0.3), (0.2, 0.0), (0.15, 0.05), (0.3127, 0.329))
    collinear = G.Primaries((0.1, 0.1), (0.2, 0.2), (0.3, 0.3), (0.3127, 0.329), "line")
    with pytest.raises(InputError):
        G.rgb_to_xyz_matrix(collinear)


def test_custom_primaries_match_colour() -> None:
    custom = G.Primaries((0.7, 0.29), (0.18, 0.78), (0.13, 0.05), (0.32, 0.335), "mine")
    want = colour.normalised_primary_matrix(np.array([custom.red, custom.green, custom.blue]), custom.white)
    np.testing.assert_allclose(G.rgb_to_xyz_matrix(custom), want, atol=1e-12)


def test_convert_gamut_numpy_and_torch() -> None:
    rgb = RNG.random((40, 30, 3)) * 4.0  # linear light, may exceed 1
    want = colour.RGB_to_RGB(rgb, _cs("bt709"), _cs("bt2020"), chromatic_adaptation_transform=None)
    got = G.convert_gamut(rgb, "bt709", "bt2020")
    assert got.shape == rgb.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, want, atol=1e-12)
    got32 = G.convert_gamut(rgb.astype(np.float32), "bt709", G.PRIMARIES["bt2020"])
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, want, rtol=1e-6, atol=1e-6)
    t = torch.tensor(rgb, dtype=torch.float32, requires_grad=True)
    gt = G.convert_gamut(t, "bt709", "bt2020")
    assert isinstance(gt, torch.Tensor) and gt.dtype == torch.float32
    np.testing.assert_allclose(gt.detach().numpy(), want, rtol=1e-6, atol=1e-6)
    gt.sum().backward()  # d(sum)/d(rgb) = column sums of the matrix
    np.testing.assert_allclose(t.grad[0, 0].numpy(), G.BT709_TO_BT2020.sum(axis=0), rtol=1e-6)
    # Round trip and NaN propagation.
    np.testing.assert_allclose(G.convert_gamut(got, "bt2020", "bt709"), rgb, atol=1e-12)
    nan = G.convert_gamut(np.array([np.nan, 0.1, 0.2]), "bt2020", "bt709")
    assert np.isnan(nan).all()
    with pytest.raises(InputError):
        G.convert_gamut(np.zeros((5, 4)), "bt709", "bt2020")


def test_fraction_outside_gamut_definition() -> None:
    inside = G.convert_gamut(RNG.random((500, 3)) * 0.9 + 0.05, "bt709", "bt2020")
    assert G.fraction_outside_gamut(inside, "bt709") == 0.0
    # BT.709 primaries lie exactly on the boundary: rounding noise must not count.
    assert G.fraction_outside_gamut(G.convert_gamut(np.eye(3), "bt709", "bt2020")) == 0.0
    # Pure BT.2020 primaries are all outside BT.709 (and outside P3).
    assert G.fraction_outside_gamut(np.eye(3), "bt709") == 1.0
    assert G.fraction_outside_gamut(np.eye(3), "p3d65") == 1.0
    # Mixture: 1 of 4 counted pixels outside; near-black and NaN pixels are not counted at all.
    img = np.concatenate(
        [
            inside[:3],
            [[0.0, 0.8, 0.0]],  # saturated BT.2020 green
            [[0.0, 1e-5, 0.0]],  # outside but below min_luminance
            [[np.nan, 0.5, 0.5]],
        ]
    ).reshape(2, 3, 3)
    assert G.fraction_outside_gamut(img) == pytest.approx(0.25)
    assert G.fraction_outside_gamut(img, min_luminance=0.0) == pytest.approx(2 / 5)
    # Scale invariant in the component test (nits work with a matching min_luminance).
    assert G.fraction_outside_gamut(img * 1000.0, min_luminance=1.0) == pytest.approx(0.25)
    # Tolerance is relative to the pixel luminance: -0.5 % of Y is inside at tol 1e-2, outside at 1e-4.
    y = G.luminance_weights("bt2020")
    slightly = G.convert_gamut(np.array([0.5, 0.5, -0.0025]), "bt709", "bt2020")
    assert float(slightly @ y) == pytest.approx(0.5 * 0.9278, abs=1e-3)
    assert G.fraction_outside_gamut(slightly[None], tolerance=1e-2) == 0.0
    assert G.fraction_outside_gamut(slightly[None], tolerance=1e-4) == 1.0
    # torch input gives the same float.
    assert G.fraction_outside_gamut(torch.as_tensor(img, dtype=torch.float32)) == pytest.approx(0.25)
    assert G.fraction_outside_gamut(np.zeros((4, 3))) == 0.0
    with pytest.raises(InputError):
        G.fraction_outside_gamut(np.zeros((4, 3)), tolerance=-1.0)
