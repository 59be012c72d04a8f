"""``datakit train``: train a reference SDR-to-HDR model on shards (see :mod:`datakit.nn.train`)."""

from __future__ import annotations

import argparse
import json

from datakit.commands import output_folder


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a registered SDR-to-HDR model on datakit shards (resumable; torchrun for DDP)",
        description="Train a registered model on the train split of one or more datakit output folders. "
        "Defaults follow HDCFM (Adam lr 5e-4 halved every 200k of 1M iterations, L1 on PQ) unless the model's "
        "paper says otherwise; every setting can come from --config (TOML or JSON). Run the same command under "
        "'torchrun --nproc_per_node N' for DistributedDataParallel.",
    )
    p.add_argument("--model", help="registered model name (hdcfm, pdcg, dslnet, kpnmfi, agcm, resnet)")
    p.add_argument("--data", nargs="+", metavar="DIR", help="output folder(s) of datakit build / synth")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder: checkpoints, metrics.jsonl, curve.png")
    p.add_argument("--config", metavar="FILE", help="TOML or JSON config (keys of datakit.nn.config.TrainConfig)")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN from checkpoints/last.pt")
    p.add_argument("--steps", type=int, help="total iterations")
    p.add_argument("--batch", type=int, help="global batch size (split across DDP processes)")
    p.add_argument("--crop", type=int, help="square training crop size in pixels")
    p.add_argument("--lr", type=float, help="initial learning rate")
    p.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--workers", type=int, dest="num_workers", help="DataLoader worker processes per rank")
    p.add_argument("--threads", type=int, help="torch threads per process (default: cores / local processes)")
    p.add_argument("--json", action="store_true", help="print the final summary as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from datakit.nn.train import resolve_config, train

    output_folder(args.out)
    overrides = {
        key: getattr(args, key)
        for key in ("model", "data", "steps", "batch", "crop", "lr", "device", "seed", "num_workers", "threads")
    }
    config = resolve_config(args.out, args.config, overrides, resume=args.resume)
    summary = train(config, args.out, resume=args.resume, progress=not args.no_progress)
    import os

    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        val = (
            ""
            if summary["val_l1"] is None
            else f", val L1 {summary['val_l1']:.5f}, val PSNR {summary['val_psnr']:.2f} dB"
        )
        print(
            f"{summary['model']}: {summary['steps']} steps, loss {summary['loss']:.5f}{val} -> {summary['checkpoint']}"
        )
    return 0
