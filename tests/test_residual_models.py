"""``residual=True`` of AGCM and HDCFM (our addition): the untrained model is exactly the classical BT.2408 mapping on
both forward paths, the checkpoint format is unchanged, and training moves it away from classical towards a target."""

from __future__ import annotations

import pytest
import torch

from datakit.nn.registry import count_parameters, create_model


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("name", ["agcm", "hdcfm"])
def test_untrained_residual_model_is_the_classical_mapping(name: str) -> None:
    model = create_model(name, residual=True)
    classical = create_model("classical")
    x = torch.rand(2, 3, 34, 41)
    with torch.no_grad():
        expected = classical(x)
        assert torch.equal(model.eval()(x), expected)  # banded CPU inference path
    assert torch.equal(model.train()(x), expected)  # whole-frame path with gradients
    # no parameters or buffers added: same count, same state-dict keys as the paper's network
    paper = create_model(name)
    assert count_parameters(model) == count_parameters(paper)
    assert model.state_dict().keys() == paper.state_dict().keys()
    with torch.no_grad():  # and the paper's network is not the classical mapping
        assert (paper.eval()(x) - expected).abs().max() > 0.01


@pytest.mark.parametrize("name", ["agcm"])  # HDCFM's backward costs minutes on a loaded 2-core machine
def test_residual_model_learns_a_correction(name: str) -> None:
    """A few Adam steps towards ``classical + 0.05`` (a brighter grade) lower the loss and reach the first layer."""
    model = create_model(name, residual=True).train()
    x = torch.rand(1, 3, 36, 36)
    with torch.no_grad():
        target = create_model("classical")(x) + 0.05
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(8):
        optimizer.zero_grad()
        loss = (model(x) - target).abs().mean()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[0] == pytest.approx(0.05, abs=1e-6)
    assert losses[-1] < 0.6 * losses[0]
    first = model.condition.features[0] if name == "agcm" else model.hme.trunk[0]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in first.parameters())
