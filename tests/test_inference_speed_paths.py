"""The fast inference paths give the reference paths' values: HDCFM's banded CPU forward against its whole-frame
reference (random weights and the shipped checkpoint, random and photographic input, odd sizes, batches, band
edges, tile borders) and each band-level building block against the PyTorch operation it replaces."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from datakit.nn import layers
from datakit.nn.models.hdcfm import HDCFM
from datakit.nn.tiling import tiled_apply

ROOT = Path(__file__).resolve().parent.parent
# The CC0 images beside the repository (``../shared``; a worktree one level deeper finds them too).
HDRI = next(
    (
        p / "shared" / "data" / "hdri"
        for p in (ROOT.parent, ROOT.parent.parent)
        if (p / "shared" / "data" / "hdri").is_dir()
    ),
    ROOT.parent / "shared" / "data" / "hdri",
)
PQ_TOLERANCE = 1e-3  # the contract: the fast path changes no output by more than 1e-3 PQ


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _random_hdcfm() -> HDCFM:
    """HDCFM with every weight random (not the near-identity initialisation), so that each path is exercised."""
    model = HDCFM()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def _shipped_hdcfm() -> HDCFM:
    from datakit.convert import shipped_checkpoint
    from datakit.nn.train import load_model

    path = shipped_checkpoint("hdcfm")
    if path is None:
        pytest.skip("no shipped HDCFM checkpoint")
    model, _, _ = load_model("hdcfm", path)
    return model


def _photo_sdr(name: str, height: int, width: int) -> torch.Tensor:
    """A CC0 HDR photograph as ``rgb_sdr`` ``(1, 3, H, W)``: resized, exposed at 4x its mean, BT.709 OETF."""
    import cv2

    from datakit.color.gamut import convert_gamut
    from datakit.color.transfer import bt709_oetf
    from datakit.io.images import read_hdr_image

    path = HDRI / name
    if not path.is_file():
        pytest.skip("../shared/data/hdri is not beside the repository")
    image = read_hdr_image(path)
    rgb = cv2.resize(image.rgb_linear, (width, height), interpolation=cv2.INTER_AREA)
    rgb = np.clip(convert_gamut(rgb, image.primaries, "bt709") / (4.0 * rgb.mean()), 0.0, 1.0)
    return torch.from_numpy(np.ascontiguousarray(bt709_oetf(rgb), dtype=np.float32)).permute(2, 0, 1)[None]


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


@pytest.mark.parametrize(
    ("shape", "rows", "workers"),
    [((1, 3, 37, 53), 4, 1), ((2, 3, 40, 33), 3, 2), ((1, 3, 35, 64), 1, 2), ((1, 3, 33, 41), 64, 1)],
)
def test_banded_hdcfm_matches_reference_on_random_input(shape, rows, workers) -> None:
    model = _random_hdcfm()
    x = torch.rand(shape)
    with torch.inference_mode():
        ref = model.reference_forward(x)
        out = model.banded_forward(x, rows=rows, workers=workers)
        exact = copy.deepcopy(model).double().reference_forward(x.double())
    assert out.shape == ref.shape
    assert float(ref.std()) > 1e-3  # a real signal, not a constant both paths would agree on
    assert _max_diff(out, ref) < PQ_TOLERANCE
    # float32 rounding only: a wrong band edge or fold is far larger. Measured against the float64 reference, since
    # the float32 reference's own rounding is up to 6e-6 here (both paths round, in different orders).
    assert _max_diff(out.double(), exact) < 1e-5
    assert _max_diff(out.double(), exact) <= 2.0 * _max_diff(ref.double(), exact) + 1e-6  # no worse than the ref


def test_banded_hdcfm_is_used_for_cpu_inference_only() -> None:
    model = _random_hdcfm()
    x = torch.rand(1, 3, 36, 44, requires_grad=True)
    with torch.no_grad():
        fast = model(x)
    slow = model(x)  # gradients wanted: the reference path, differentiable
    slow.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert _max_diff(fast, slow.detach()) < 1e-5
    threads = torch.get_num_threads()
    with torch.inference_mode():
        model.banded_forward(x.detach(), workers=2)
    assert torch.get_num_threads() == threads  # the band threads give torch its threads back


def test_shipped_hdcfm_banded_matches_reference_on_photographs() -> None:
    model = _shipped_hdcfm()
    for name, (h, w) in (("courtyard.exr", (97, 171)), ("night.exr", (66, 130))):
        x = _photo_sdr(name, h, w)
        with torch.inference_mode():
            ref = model.reference_forward(x)
            out = model(x)
        assert _max_diff(out, ref) < PQ_TOLERANCE, name
        assert float(ref.std()) > 0.01, name


def test_shipped_hdcfm_banded_matches_reference_across_tile_borders() -> None:
    """Tiled inference (as eval and convert run it) with either path: same tiles, same blend, same values."""
    model = _shipped_hdcfm()
    x = torch.cat([_photo_sdr("city.exr", 52, 90), torch.rand(1, 3, 52, 90)])
    with torch.inference_mode():
        ref = tiled_apply(model.reference_forward, x, tile=40, overlap=10)
        out = tiled_apply(model, x, tile=40, overlap=10)
    assert _max_diff(out, ref) < PQ_TOLERANCE


# --------------------------------------------------------------------------- band-level building blocks


def test_rows_with_halo_and_bands_cover_the_frame() -> None:
    x = torch.rand(1, 2, 9, 5)
    assert layers.row_bands(9, 4) == [(0, 4), (4, 8), (8, 9)]
    top = layers.rows_with_halo(x, 0, 4, 2)
    assert top.shape[2] == 8 and torch.equal(top[:, :, :2], torch.zeros(1, 2, 2, 5))
    assert torch.equal(top[:, :, 2:], x[:, :, :6])
    inner = layers.rows_with_halo(x, 4, 6, 1)
    assert torch.equal(inner, x[:, :, 3:7]) and inner.data_ptr() == x[:, :, 3:].data_ptr()  # a view


def _random_ddf(channels: int) -> layers.DecoupledDynamicFilter:
    ddf = layers.DecoupledDynamicFilter(channels).eval()
    with torch.no_grad():
        for p in ddf.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return ddf


@pytest.mark.parametrize(("shape", "rows"), [((2, 4, 11, 9), 3), ((1, 40, 13, 37), 4), ((1, 6, 5, 3), 1)])
def test_ddf_bands_match_the_whole_frame_filter(shape, rows) -> None:
    """The compiled band loops (spatial kernel, taps, sums) against the module's own whole-frame forward."""
    ddf = _random_ddf(shape[1])
    x = torch.randn(shape)
    out = torch.full_like(x, float("nan"))  # every row must be written
    bands = layers.row_bands(shape[2], rows)
    with torch.inference_mode():
        ref = ddf(x)
        kernel = ddf.channel_kernel(x.mean(dim=(2, 3)))
        sums = [ddf.forward_band(x, r0, r1, kernel, out) for r0, r1 in bands]
        spatial_ref = ddf.spatial_norm(ddf.skp(x), tap_dim=1)
        spatial = torch.cat([ddf.spatial_rows(layers.rows_with_halo(x, r0, r1, 1)) for r0, r1 in bands], 2)
    assert float(ref.std()) > 0.1
    assert torch.allclose(out, ref, atol=1e-5)
    assert torch.allclose(spatial, spatial_ref, atol=1e-5)
    assert torch.allclose(sum(sums).float(), ref.sum(dim=(2, 3)), rtol=1e-5, atol=1e-3)


def test_matmul_band_and_pointwise_match_conv2d() -> None:
    x = torch.randn(2, 6, 10, 13)
    conv1 = torch.nn.Conv2d(6, 7, 1)
    with torch.no_grad():
        assert torch.allclose(layers.pointwise(x, conv1.weight, conv1.bias), conv1(x), atol=1e-5)
        per_sample = torch.randn(2, 7)
        expected = F.conv2d(x, conv1.weight) + per_sample[:, :, None, None]
        assert torch.allclose(layers.pointwise(x[:, :, 2:6], conv1.weight, per_sample), expected[:, :, 2:6], atol=1e-5)
        band = layers.matmul_band(conv1.weight[:, :, 0, 0], x[:, :, 3:7])
        assert band.is_contiguous() and torch.allclose(band, F.conv2d(x, conv1.weight)[:, :, 3:7], atol=1e-5)


@pytest.mark.parametrize(("low", "size"), [((3, 5), (97, 171)), ((34, 60), (1080, 1920)), ((2, 2), (7, 3))])
def test_modulate_band_upsamples_as_interpolate(low, size) -> None:
    """``ReLU((z + bias) * scale + shift)`` with scale and shift upsampled in the loop, against F.interpolate."""
    from datakit.nn import band_kernels

    scale_low, shift_low = torch.randn(1, 3, *low), torch.randn(1, 3, *low)
    z, bias = torch.randn(1, 3, *size), torch.randn(1, 3)
    # float64 reference: F.interpolate's float32 source coordinates are off by up to 4e-6 pixel at 1080 rows
    up = [F.interpolate(t.double(), size=size, mode="bilinear", align_corners=False) for t in (scale_low, shift_low)]
    ref = ((z.double() + bias.double()[:, :, None, None]) * up[0] + up[1]).clamp_min(0.0)
    scale_rows, col0, col1, frac = layers.bilinear_rows(scale_low, size)
    shift_rows = layers.bilinear_rows(shift_low, size)[0]
    cols = (col0.numpy(), col1.numpy(), frac.numpy())
    out = torch.full_like(z, float("nan"))
    sums = 0.0
    for r0, r1 in layers.row_bands(size[0], 4):
        band = z[:, :, r0:r1].contiguous().numpy()
        sums = sums + band_kernels.modulate_band(
            band, bias.numpy(), scale_rows.numpy(), shift_rows.numpy(), *cols, r0, out.numpy()
        )
    assert float(ref.std()) > 0.1
    assert torch.allclose(out.double(), ref, atol=1e-5)
    assert np.allclose(sums, ref.sum(dim=(2, 3)).numpy(), rtol=1e-5, atol=1e-3)


def test_projected_rows_is_the_projection_of_the_ddf() -> None:
    ddf = _random_ddf(8)
    proj = torch.nn.Conv2d(8, 2, 1)
    x = torch.randn(2, 8, 12, 10)
    with torch.no_grad():
        ref = proj(ddf(x))
        kernel = ddf.channel_kernel(x.mean(dim=(2, 3)))
        out = torch.cat(
            [ddf.projected_rows(layers.rows_with_halo(x, r0, r1, 1), kernel, proj.weight, proj.bias)
             for r0, r1 in layers.row_bands(12, 5)],
            dim=2,
        )  # fmt: skip
    assert torch.allclose(out, ref, atol=1e-5)


def test_context_band_is_a_share_of_the_softmax() -> None:
    """The bands' maxima, exponential sums and weighted sums recombine into softmax(logits)-weighted features."""
    from datakit.nn import band_kernels

    y, logits = torch.randn(2, 5, 9, 7), 4.0 * torch.randn(2, 9, 7)
    weights = logits.flatten(1).softmax(dim=1)
    ref = torch.einsum("bcp,bp->bc", y.flatten(2), weights).double()
    parts = [band_kernels.context_band(logits[:, r0:r1].contiguous().numpy(), y.numpy(), r0)
             for r0, r1 in layers.row_bands(9, 4)]  # fmt: skip
    top = np.max([p[0] for p in parts], axis=0)
    scale = [np.exp(p[0] - top) for p in parts]
    total = sum(p[1] * s for p, s in zip(parts, scale, strict=True))
    context = sum(p[2] * s[:, None] for p, s in zip(parts, scale, strict=True)) / total[:, None]
    assert np.allclose(context, ref.numpy(), atol=1e-5)


def test_pooled_first_colour_block_is_the_same_function() -> None:
    block = layers.ColorBlock(3, 16).eval()
    x = torch.rand(2, 3, 23, 30)
    with torch.no_grad():
        assert torch.allclose(block.pooled_first(x), block(x), atol=1e-5)


def test_map_bands_keeps_order_and_inference_mode() -> None:
    bands = layers.row_bands(23, 2)
    with torch.inference_mode():
        out = layers.map_bands(lambda r0, r1: (r0, r1, torch.is_inference_mode_enabled()), bands, workers=3)
    assert [o[:2] for o in out] == bands and all(o[2] for o in out)


@pytest.mark.parametrize("shipped", [False, True])
def test_banded_agcm_matches_reference(shipped) -> None:
    from datakit.nn.models.agcm import AGCM

    if shipped:
        from datakit.convert import shipped_checkpoint
        from datakit.nn.train import load_model

        path = shipped_checkpoint("agcm")
        if path is None:
            pytest.skip("no shipped AGCM checkpoint")
        model = load_model("agcm", path)[0]
        x = torch.cat([_photo_sdr("forest.exr", 45, 77), torch.rand(1, 3, 45, 77)])
    else:
        model = AGCM().eval()
        x = torch.rand(2, 3, 35, 53)
    with torch.inference_mode():
        ref = model.reference_forward(x)
        out = model(x)
        odd_bands = model.banded_forward(x, rows=3, workers=2)
    assert float(ref.std()) > 1e-3
    assert _max_diff(out, ref) < 1e-5 and _max_diff(odd_bands, ref) < 1e-5
