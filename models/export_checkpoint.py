"""Turn a training checkpoint into a small shipped one: weights in float16, no optimizer state.

Run from the repository root: ``python models/export_checkpoint.py runs/NAME/checkpoints/last.pt models/NAME/NAME.pt``.
The result keeps the datakit checkpoint format (``format``, ``model_name``, ``model_args``, ``model``, ``step``,
``config``), so ``datakit eval --checkpoint`` and ``datakit convert --model NAME`` load it like any other;
weights are cast back to float32 on load.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from datakit.fsutil import atomic_path

KEEP = ("format", "version", "datakit_version", "model_name", "model_args", "step", "best_val", "config", "extra")


def export(src: Path, dst: Path) -> int:
    checkpoint = torch.load(src, map_location="cpu", weights_only=False)
    small = {key: checkpoint[key] for key in KEEP if key in checkpoint}
    small["model"] = {k: v.half() if v.is_floating_point() else v for k, v in checkpoint["model"].items()}
    small["config"] = {k: v for k, v in small.get("config", {}).items() if k != "data"} | {
        "data": [Path(p).name for p in checkpoint.get("config", {}).get("data", [])]  # no local paths shipped
    }
    with atomic_path(dst) as tmp:
        torch.save(small, tmp)
    return dst.stat().st_size


if __name__ == "__main__":
    size = export(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"{sys.argv[2]}: {size / 1024:.0f} KiB")
