"""Reference models: registry, shapes, gradients, parameter counts, building blocks, classical maths."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from datakit.cli import main
from datakit.color.transfer import st2084_eotf
from datakit.errors import ModelError
from datakit.nn import layers
from datakit.nn.models.kpnmfi import MultiFrameInteraction
from datakit.nn.models.pdcg import PDCG, PatchDiscriminator, overexposure_mask
from datakit.nn.registry import MODELS, count_parameters, create_model, model_spec

LEARNED = ["agcm", "dslnet", "hdcfm", "kpnmfi", "resnet"]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _frames_input(name: str, h: int, w: int) -> torch.Tensor:
    spec = model_spec(name)
    shape = (1, spec.frames, 3, h, w) if spec.frames > 1 else (1, 3, h, w)
    return torch.rand(shape)


def _expected_shape(model: torch.nn.Module, h: int, w: int) -> tuple[int, ...]:
    if model.output_frames > 1:
        return (1, model.output_frames, 3, h, w)
    return (1, 3, h, w)


# --------------------------------------------------------------------------- registry


def test_registry_names_and_specs() -> None:
    assert sorted(MODELS) == ["agcm", "classical", "dslnet", "hdcfm", "kpnmfi", "pdcg", "resnet"]
    spec = model_spec("DSLNet")  # case-insensitive lookup
    assert spec.name == "dslnet" and spec.frames == 5 and spec.paper_params == 930_000
    for name, spec in MODELS.items():
        model = create_model(name)
        assert model.frames == spec.frames, name
        assert model.output_frames in (1, model.frames), name


def test_unknown_model_and_bad_arguments() -> None:
    with pytest.raises(ModelError, match="known models: agcm, classical, dslnet"):
        create_model("hdrtvnet")
    with pytest.raises(ModelError, match="bad arguments"):
        create_model("resnet", no_such_option=3)


def test_registry_import_is_light() -> None:
    code = "import sys, datakit.nn.registry; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- parameter counts


@pytest.mark.parametrize("name", ["hdcfm", "dslnet", "kpnmfi", "resnet"])
def test_parameter_counts_within_3_percent(name: str) -> None:
    ours = count_parameters(create_model(name))
    paper = model_spec(name).paper_params
    assert paper is not None
    assert abs(ours - paper) / paper < 0.03, (name, ours, paper)


def test_hdcfm_close_to_public_checkpoint() -> None:
    assert abs(count_parameters(create_model("hdcfm")) - 100_682) / 100_682 < 0.03


def test_exact_counts() -> None:
    assert count_parameters(create_model("agcm")) == 35_251
    assert count_parameters(create_model("resnet")) == 1_369_859  # HDRTVNet LE count
    assert count_parameters(create_model("classical")) == 0


# --------------------------------------------------------------------------- forward / backward


@pytest.mark.parametrize("name", LEARNED)
def test_forward_backward(name: str) -> None:
    model = create_model(name).train()
    h, w = 32, 32
    x = _frames_input(name, h, w).requires_grad_(True)
    y = model(x)
    assert y.shape == _expected_shape(model, h, w)
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", LEARNED)
def test_any_frame_size(name: str) -> None:
    model = create_model(name).eval()
    h, w = 27, 41  # neither divisible by 2 nor 8
    with torch.no_grad():
        y = model(_frames_input(name, h, w))
    assert y.shape == _expected_shape(model, h, w)
    assert torch.isfinite(y).all()


def test_pdcg_forward_backward_and_blend() -> None:
    gen, disc = PDCG(), PatchDiscriminator()
    x_hr = torch.rand(2, 3, 30, 34, requires_grad=True)
    sdr = torch.rand(2, 3, 30, 34)
    mask = overexposure_mask(sdr)
    out = gen(x_hr, mask)
    assert out.shape == x_hr.shape
    # The residual head starts at zero: an untrained generator returns its input.
    assert torch.allclose(out, x_hr)
    logits = disc(out)
    assert logits.shape[:2] == (2, 1)
    (out.mean() + logits.mean()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in gen.parameters())
    other = torch.rand_like(x_hr)
    zeros, ones = torch.zeros_like(mask), torch.ones_like(mask)
    assert torch.equal(PDCG.blend(x_hr, other, zeros), x_hr)
    assert torch.equal(PDCG.blend(x_hr, other, ones), other)
    half = PDCG.blend(torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1), torch.full((1, 1, 1, 1), 0.25))
    assert torch.allclose(half, torch.full((1, 3, 1, 1), 0.25))


def test_overexposure_mask_values() -> None:
    sdr = torch.tensor([[0.5, 0.1, 0.2], [0.96, 0.2, 0.3], [1.0, 1.0, 0.0], [0.9, 0.975, 0.0]])
    mask = overexposure_mask(sdr.T.reshape(1, 3, 4, 1)).flatten()
    assert torch.allclose(mask, torch.tensor([0.0, 0.2, 1.0, 0.5]), atol=1e-6)


def test_kpnmfi_shares_weights_over_frames() -> None:
    model = create_model("kpnmfi").eval()
    frame = torch.rand(1, 1, 3, 24, 24)
    with torch.no_grad():
        y = model(frame.expand(1, 3, 3, 24, 24).contiguous())
    assert torch.allclose(y[:, 0], y[:, 1], atol=1e-6) and torch.allclose(y[:, 1], y[:, 2], atol=1e-6)


def test_dslnet_uses_neighbour_frames() -> None:
    model = create_model("dslnet").eval()
    with torch.no_grad():
        # Give the offsets something to do so that the alignment path is not trivially zero.
        torch.nn.init.normal_(model.dmfa.offset.weight, std=0.01)
        x = torch.rand(1, 5, 3, 32, 32)
        y1 = model(x)
        x2 = x.clone()
        x2[:, 0] = torch.rand(3, 32, 32)
        y2 = model(x2)
    assert not torch.allclose(y1, y2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name", LEARNED)
def test_cuda_matches_cpu(name: str) -> None:
    model = create_model(name).eval()
    x = _frames_input(name, 32, 32)
    with torch.no_grad():
        cpu = model(x)
        gpu = model.cuda()(x.cuda()).cpu()
    assert torch.allclose(cpu, gpu, atol=1e-3)


# --------------------------------------------------------------------------- building blocks


def test_dynamic_filter_matches_unfold_reference() -> None:
    b, c, h, w, k = 2, 3, 6, 5, 3
    x = torch.randn(b, c, h, w)
    spatial = torch.randn(b, k * k, h, w)
    channel = torch.randn(b, c, k * k)
    inputs = [t.requires_grad_(True) for t in (x, spatial, channel)]
    patches = F.unfold(x, k, padding=k // 2).view(b, c, k * k, h, w)
    ref = (patches * spatial[:, None] * channel[..., None, None]).sum(dim=2)
    out = layers.dynamic_filter(x, spatial, channel, k)
    assert torch.allclose(out, ref, atol=1e-5)
    weights = torch.randn_like(ref)
    grads = torch.autograd.grad((out * weights).sum(), inputs)
    ref_grads = torch.autograd.grad((ref * weights).sum(), inputs)
    for g, r in zip(grads, ref_grads, strict=True):
        assert torch.allclose(g, r, atol=1e-4)


def test_pixel_kernels_reference_and_identity() -> None:
    b, c, h, w, k = 1, 3, 5, 7, 5
    img = torch.rand(b, c, h, w)
    kern = torch.randn(b, c * k * k, h, w)
    patches = F.unfold(img, k, padding=k // 2).view(b, c, k * k, h, w)
    ref = (patches * kern.view(b, c, k * k, h, w)).sum(dim=2)
    assert torch.allclose(layers.apply_pixel_kernels(img, kern, k), ref, atol=1e-5)
    ident = torch.zeros(b, c, k * k, h, w)
    ident[:, :, (k * k) // 2] = 1.0
    assert torch.equal(layers.apply_pixel_kernels(img, ident.view(b, -1, h, w), k), img)


def test_dynamic_depthwise_matches_per_sample_conv() -> None:
    layer = layers.DynamicDepthwiseConv(4, 5)
    torch.nn.init.normal_(layer.predict[-1].weight, std=0.5)
    x = torch.randn(3, 4, 9, 8)
    y = layer(x)
    weights = layer.predict(x).view(3, 4, 1, 5, 5)
    for i in range(3):
        ref = F.conv2d(x[i : i + 1], weights[i], layer.bias, padding=2, groups=4)
        assert torch.allclose(y[i : i + 1], ref, atol=1e-5)


def test_mfi_interaction_matches_explicit_correlation() -> None:
    """Eqs. 4-5 computed with the explicit m x m cosine matrix R (then divided by m)."""
    mfi = MultiFrameInteraction(8)
    nb, cur = torch.randn(2, 8, 3, 4), torch.randn(2, 8, 3, 4)
    m = 12
    p = mfi.p(nb).view(2, 8, m)
    q = mfi.q(cur).view(2, 8, m)
    v = mfi.v(cur).view(2, 8, m).transpose(1, 2)  # (B, m, C)
    r = (p / p.norm(dim=1, keepdim=True)).transpose(1, 2) @ (q / q.norm(dim=1, keepdim=True))
    z = (r @ v / m).transpose(1, 2).reshape(2, 8, 3, 4)
    assert torch.allclose(mfi.interact(nb, cur), z, atol=1e-5)


def test_deformable_alignment_with_zero_offsets_is_a_convolution() -> None:
    dmfa = create_model("dslnet").dmfa
    frames = torch.rand(1, 5, 3, 16, 12)
    with torch.no_grad():
        aligned = dmfa(frames)
        ref = F.conv2d(frames.reshape(1, 15, 16, 12), dmfa.weight, dmfa.bias, padding=1)
    assert torch.allclose(aligned, ref, atol=1e-5)


def test_pad_and_crop_round_trip() -> None:
    x = torch.rand(2, 3, 3, 10, 13)
    padded, size = layers.pad_to_multiple(x, 8)
    assert padded.shape[-2:] == (16, 16) and size == (10, 13)
    assert torch.equal(layers.crop_to(padded, size), x)
    # Reflection: the first padded row mirrors row H-2.
    assert torch.equal(padded[..., 10, :13], x[..., 8, :])
    tiny, _ = layers.pad_to_multiple(torch.rand(1, 3, 2, 2), 8)  # too small to reflect
    assert tiny.shape[-2:] == (8, 8)


# --------------------------------------------------------------------------- classical


def _classical(model: torch.nn.Module, rgb: list[list[float]]) -> np.ndarray:
    x = torch.tensor(rgb, dtype=torch.float32).T.reshape(1, 3, len(rgb), 1)
    return model(x).reshape(3, len(rgb)).T.numpy()


def test_classical_white_black_and_reference() -> None:
    model = create_model("classical")
    pq = _classical(model, [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    nits = st2084_eotf(pq)
    np.testing.assert_allclose(nits[0], 203.0, rtol=1e-4)
    assert np.all(nits[1] < 1e-3)
    # Independent reference: colour-science for BT.1886, the BT.709 -> BT.2020 matrix and PQ.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import colour
    rng = np.random.default_rng(1)
    sdr = rng.random((64, 3))
    linear = colour.models.eotf_BT1886(sdr, L_B=0, L_W=1)
    bt2020 = colour.RGB_to_RGB(
        linear, colour.RGB_COLOURSPACES["ITU-R BT.709"], colour.RGB_COLOURSPACES["ITU-R BT.2020"]
    )
    ref = colour.models.eotf_inverse_ST2084(bt2020 * 203.0)
    np.testing.assert_allclose(_classical(model, sdr.tolist()), ref, atol=2e-5)


def test_classical_highlight_expansion() -> None:
    model = create_model("classical", highlight_expansion=True, peak_nits=1000.0, knee_nits=100.0)
    plain = create_model("classical")
    grey = np.linspace(0.0, 1.0, 101)
    rgb = np.stack([grey] * 3, axis=1).tolist()
    expanded = st2084_eotf(_classical(model, rgb))[:, 1]
    base = st2084_eotf(_classical(plain, rgb))[:, 1]
    np.testing.assert_allclose(expanded[-1], 1000.0, rtol=1e-4)  # SDR white -> peak
    below = base < 100.0
    np.testing.assert_allclose(expanded[below], base[below], rtol=1e-4, atol=1e-6)  # untouched under the knee
    assert np.all(np.diff(expanded) > 0)  # monotonic
    # Chromaticity kept: a saturated colour keeps its RGB ratios.
    col = st2084_eotf(_classical(model, [[1.0, 0.5, 0.2]]))[0]
    ref = st2084_eotf(_classical(plain, [[1.0, 0.5, 0.2]]))[0]
    np.testing.assert_allclose(col / col.max(), ref / ref.max(), rtol=1e-3)
    assert col.max() > ref.max()


# --------------------------------------------------------------------------- CLI


def test_cli_models_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(MODELS)
    assert rows["agcm"]["params"] == rows["agcm"]["paper_params"] == 35_251
    assert rows["kpnmfi"]["frames"] == 3 and rows["classical"]["paper_params"] is None
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split()[:4] == ["name", "params", "paper", "frames"]
    assert "35,251" in text
