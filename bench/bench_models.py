"""Training speed of every registered model on CPU against the shard loader's speed (is the loader the bottleneck?).

For each model: training iterations/s of the real training step of ``datakit train`` (forward, the model's paper
loss, backward, Adam; PDCG also its discriminator step) at batch 4 on the CPU, and the samples/s that a
:class:`~datakit.nn.dataset.ShardDataset` DataLoader with 2 worker processes delivers for the same crops and
frames. The ratio ``loader samples/s / (iterations/s x batch)`` must stay well above 1.

Crop size: the papers train at 480 px (HDCFM, HDRTVNet) or 256 px (KPN-MFI, DSLNet); on a 2-core CPU that takes
seconds per iteration, so the default here is ``--crop 128`` (stated in the output); ``--crop paper`` uses each
model's paper crop (:data:`datakit.nn.config.MODEL_DEFAULTS`). Shards are made once in a temporary folder from the
CC0 HDR images in ``/work/shared/data/hdri`` (or smooth noise when they are absent): 24 train samples of
(5, 288, 288) frames. ``classical`` has nothing to train and is listed for its conversion speed only.

Run: ``python bench/bench_models.py [--crop 128|paper] [--steps 5] [--models hdcfm agcm ...] [--data DIR]``.
Not run by the tests.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HDRI = Path(os.environ.get("DATAKIT_BENCH_HDRI", "/work/shared/data/hdri"))


def make_data(root: Path, samples: int = 24, frames: int = 5, size: int = 288) -> Path:
    """A small output folder of moving crops (train split) and 4 test samples."""
    import cv2

    from datakit.color.gamut import convert_gamut
    from datakit.color.transfer import st2084_inverse_eotf
    from datakit.store import OutputFolder, Sample

    rng = np.random.default_rng(0)
    images = []
    for path in sorted(HDRI.glob("*.exr"))[:4] if HDRI.is_dir() else []:
        import OpenEXR

        with OpenEXR.File(str(path)) as f:
            images.append(np.asarray(f.channels()["RGB"].pixels, dtype=np.float32))
    if not images:
        images = [cv2.GaussianBlur(rng.random((512, 1024, 3)).astype(np.float32), (0, 0), 6) * 4 for _ in range(2)]
    out = OutputFolder(root)
    out.prepare()
    records = []
    with out.writer("bench") as writer:
        for k in range(samples + 4):
            img = images[k % len(images)]
            y = int(rng.integers(0, img.shape[0] - size))
            x = int(rng.integers(0, img.shape[1] - size - 3 * frames))
            clip = np.stack([img[y : y + size, x + 3 * t : x + 3 * t + size] for t in range(frames)])
            nits = np.clip(clip / max(float(np.median(clip)), 1e-6) * 40.0, 0, 10000)
            hdr = np.round(st2084_inverse_eotf(convert_gamut(nits, "bt709", "bt2020")) * 65535).astype(np.uint16)
            rel = nits / 100.0
            sdr = np.round(np.clip(rel / (1 + rel) * 1.6, 0, 1) ** (1 / 2.4) * 255).astype(np.uint8)
            sample = Sample(f"bench-{k}", "bench", sdr, hdr, list(range(frames)), list(range(frames)),
                            [t / 24 for t in range(frames)], (x, y, size, size))  # fmt: skip
            records.append(writer.add(sample, "test" if k >= samples else "train"))
    out.publish_source("bench", records, {"state": "done"})
    out.finalize({})
    return root


def train_rate(name: str, data: Path, crop: int, batch: int, steps: int, run_dir: Path) -> tuple[float, int]:
    """Iterations/s of the trainer's own step (after one warm-up step) and the model's frame count."""
    from datakit.nn.device import DistContext
    from datakit.nn.train import _Run, resolve_config

    config = resolve_config(
        run_dir, None, {"model": name, "data": [str(data)], "crop": crop, "batch": batch, "steps": steps + 1,
                        "num_workers": 0, "val_every": 0, "device": "cpu", "amp": False},
    )  # fmt: skip
    run = _Run(config, run_dir, DistContext(), torch.device("cpu"), resume=False)
    batches = iter(run.train_loader)
    prepared = [next(batches) for _ in range(steps + 1)]
    run.model.train()
    run.train_step(prepared[0])
    start = time.perf_counter()
    for b in prepared[1:]:
        run.train_step(b)
    return steps / (time.perf_counter() - start), run.frames


def loader_rate(data: Path, frames: int, crop: int, batch: int, workers: int, batches: int) -> float:
    """Samples/s delivered by a DataLoader over ShardDataset with ``workers`` processes (after start-up)."""
    from torch.utils.data import DataLoader

    from datakit.nn.dataset import ShardDataset, ShardSampler, collate, worker_init_fn

    ds = ShardDataset([data], "train", frames=frames, centre="random", crop=crop, augment=True)
    loader = DataLoader(ds, batch_size=batch, sampler=ShardSampler(ds, seed=1), num_workers=workers,
                        collate_fn=collate, worker_init_fn=worker_init_fn, prefetch_factor=4,
                        multiprocessing_context="spawn")  # fmt: skip
    it = iter(loader)
    for _ in range(workers * 2):  # start-up and first prefetch
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch / (time.perf_counter() - start)


def convert_rate(crop: int, batch: int) -> float:
    from datakit.nn.registry import create_model

    model = create_model("classical").eval()
    x = torch.rand(batch, 3, crop, crop)
    with torch.no_grad():
        model(x)
        start = time.perf_counter()
        for _ in range(5):
            model(x)
    return 5 / (time.perf_counter() - start)


def main() -> None:
    from datakit.nn.config import MODEL_DEFAULTS
    from datakit.nn.registry import model_names

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crop", default="128", help="crop size in pixels, or 'paper' for each paper's crop")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5, help="timed training iterations per model")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--loader-batches", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--data", type=Path, help="existing output folder (train split, >= 5 frames, >= crop px)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.models or model_names()
    with tempfile.TemporaryDirectory(prefix="bench_models_") as tmp:
        data = args.data or make_data(Path(tmp) / "data")
        print(f"CPU, {torch.get_num_threads()} torch threads, batch {args.batch}, loader {args.workers} workers; "
              f"crop {'per paper' if args.crop == 'paper' else args.crop + ' px (papers: 256-480 px)'}")  # fmt: skip
        print(f"{'model':10} {'crop':>5} {'frames':>6} {'train it/s':>11} {'train smp/s':>12} {'loader smp/s':>13} "
              f"{'loader/train':>13}")  # fmt: skip
        for name in names:
            crop = int(MODEL_DEFAULTS.get(name, {}).get("crop", 256)) if args.crop == "paper" else int(args.crop)
            if name == "classical":
                rate = convert_rate(crop, args.batch)
                print(f"{name:10} {crop:5d} {1:6d} {'(no training) ' + f'{rate * args.batch:.1f} conv smp/s':>40}")
                continue
            it_s, frames = train_rate(name, data, crop, args.batch, args.steps, Path(tmp) / f"run-{name}")
            smp = loader_rate(data, frames, crop, args.batch, args.workers, args.loader_batches)
            need = it_s * args.batch
            print(f"{name:10} {crop:5d} {frames:6d} {it_s:11.3f} {need:12.2f} {smp:13.1f} {smp / need:12.1f}x")


if __name__ == "__main__":
    main()
