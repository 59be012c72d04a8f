"""Turn a training checkpoint into a small shipped one: no optimizer state, weights in float16, or in int8 with a
per-output-channel scale when float16 would not fit under the repository's 5 MB file limit.

Run from the repository root:
``python models/export_checkpoint.py runs/NAME/checkpoints/last.pt models/NAME/NAME.pt [--int8]``.
The result keeps the datakit checkpoint format (``format``, ``model_name``, ``model_args``, ``model``, ``step``,
``config``; plus ``quantized`` = the scales of int8 tensors), so ``datakit eval --checkpoint`` and
``datakit convert --model NAME`` load it like any other (``datakit.nn.train.dequantize_state``); weights come back
as float32. The model card's figures are measured on the shipped (rounded) weights.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from datakit.fsutil import atomic_path

KEEP = ("format", "version", "datakit_version", "model_name", "model_args", "step", "best_val", "config", "extra")


def quantize(tensor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 with one scale per output channel (first axis)."""
    flat = tensor.float().reshape(tensor.shape[0], -1)
    scale = (flat.abs().amax(dim=1) / 127.0).clamp_min(1e-12)
    q = torch.round(flat / scale[:, None]).clamp(-127, 127).to(torch.int8).reshape(tensor.shape)
    return q, scale.half()


def export(src: Path, dst: Path, int8: bool = False) -> int:
    checkpoint = torch.load(src, map_location="cpu", weights_only=False)
    small = {key: checkpoint[key] for key in KEEP if key in checkpoint}
    small["model"], small["quantized"] = {}, {}
    for key, value in checkpoint["model"].items():
        if int8 and value.is_floating_point() and value.dim() >= 2 and value.numel() >= 1024:
            small["model"][key], small["quantized"][key] = quantize(value)
        else:
            small["model"][key] = value.half() if value.is_floating_point() else value
    small["config"] = {k: v for k, v in small.get("config", {}).items() if k != "data"} | {
        "data": [Path(p).name for p in checkpoint.get("config", {}).get("data", [])]  # no local paths shipped
    }
    with atomic_path(dst) as tmp:
        torch.save(small, tmp)
    return dst.stat().st_size


if __name__ == "__main__":
    size = export(Path(sys.argv[1]), Path(sys.argv[2]), int8="--int8" in sys.argv[3:])
    print(f"{sys.argv[2]}: {size / 1024:.0f} KiB")
