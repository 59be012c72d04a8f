"""How much of the held-out error a global colour mapping could remove: the classical BT.2408 mapping against
mappings fitted with knowledge a model does not have.

For every sample (centre frame) of a data folder's split it maps the SDR with the classical mapping (PQ code values
``p``) and scores, as PSNR on PQ code values against the HDR10 target:

- ``classical``: ``p`` itself;
- ``fixed curve``: one piecewise-linear curve ``f(p)`` (25 knots on [0, 0.6]) least-squares fitted on the training
  split (the best global mapping that ignores the picture);
- ``oracle gain``: ``p`` with its linear light scaled by the best of 29 gains in [1/16, 8] for that very sample
  (the target's exposure known);
- ``oracle curve``: the curve least-squares fitted on that very sample (its operator and grade known).

An image-adaptive global model (AGCM, HDCFM's global modulation) sits between ``fixed curve`` and ``oracle curve``:
the gap is what its condition network must infer from the SDR picture. Run from the repository root:
``python models/mapping_headroom.py data/synth-train data/synth-loo`` (the first folder's train split fits the
fixed curve).
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from datakit.color.transfer import st2084_eotf, st2084_inverse_eotf
from datakit.nn.dataset import ShardDataset
from datakit.nn.registry import create_model

KNOTS = np.linspace(0.0, 0.6, 25)
GAINS = 2.0 ** np.linspace(-4.0, 3.0, 29)


def centre_frames(root: str, split: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(classical PQ, target PQ)`` of each sample's centre frame, ``(3, H, W)`` float32 each."""
    classical = create_model("classical")
    ds = ShardDataset([root], split, frames=None, crop=None, augment=False)
    out = []
    for i in range(len(ds.items)):
        sample = ds[i]
        sdr, hdr = np.asarray(sample["sdr"]), np.asarray(sample["hdr"])
        t = sdr.shape[0] // 2
        with torch.no_grad():
            p = classical(torch.from_numpy(sdr[t : t + 1])).numpy()[0]
        out.append((p, hdr[t]))
    return out


def hat_basis(p: np.ndarray) -> np.ndarray:
    """Piecewise-linear interpolation weights of every value of ``p`` on :data:`KNOTS`, ``(N, len(KNOTS))``."""
    v = p.reshape(-1)
    return np.stack([np.interp(v, KNOTS, np.eye(len(KNOTS))[k]) for k in range(len(KNOTS))], axis=1)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(-10.0 * np.log10(max(np.mean((np.clip(a, 0.0, 1.0) - b) ** 2), 1e-10)))


def main(folders: list[str]) -> None:
    train = centre_frames(folders[0], "train")
    a = np.concatenate([hat_basis(p)[::7] for p, _ in train])
    b = np.concatenate([y.reshape(-1)[::7] for _, y in train])
    curve = np.linalg.lstsq(a, b, rcond=None)[0]
    print("| data (test split) | samples | classical | fixed curve | oracle gain | oracle curve |")
    print("|---|---|---|---|---|---|")
    for root in folders:
        rows = []
        for p, y in centre_frames(root, "test"):
            basis = hat_basis(p)
            own = np.linalg.lstsq(basis, y.reshape(-1), rcond=None)[0]
            nits = st2084_eotf(p)
            rows.append((
                psnr(p, y),
                psnr((basis @ curve).reshape(p.shape), y),
                max(psnr(st2084_inverse_eotf(nits * g), y) for g in GAINS),
                psnr((basis @ own).reshape(p.shape), y),
            ))  # fmt: skip
        m = np.mean(rows, axis=0)
        print(f"| {root} | {len(rows)} | {m[0]:.2f} | {m[1]:.2f} | {m[2]:.2f} | {m[3]:.2f} |")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1:] or ["data/synth-train", "data/synth-loo"])
