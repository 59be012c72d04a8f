"""Inference-only checkpoints for tests, in the format ``models/export_checkpoint.py`` ships (the repository ships
none that clears the held-out bar, so tests make their own)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def inference_checkpoint(path: Path, name: str, *, perturb: float = 0.0, seed: int = 0, **args: Any) -> Path:
    """A datakit-format checkpoint (name, constructor arguments, weights) of model ``name`` at its seeded
    initialization, its weights moved by ``perturb`` x N(0, 1) when given (so it differs from the untrained one)."""
    import torch

    from datakit.nn.registry import create_model
    from datakit.nn.train import CHECKPOINT_FORMAT

    torch.manual_seed(seed)
    model = create_model(name, **args)
    if perturb:
        with torch.no_grad():
            for p in model.parameters():
                p.add_(perturb * torch.randn_like(p))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": CHECKPOINT_FORMAT, "model_name": name, "model_args": args, "model": model.state_dict()}, path)
    return path
