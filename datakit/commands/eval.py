"""``datakit eval``: score a model on the test split at full resolution (see :mod:`datakit.nn.evaluate`)."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="score a model on the test split: PSNR, SSIM, SR-SIM, ΔE_ITP, temporal consistency",
        description="Run a model on every test sample at full resolution (overlapping tiles, blended) and print "
        "the papers' metrics on PQ code values (JSON: an infinite PSNR is written as null). "
        "Without --model and --checkpoint the classical conversion is scored; --model NAME alone scores the shipped "
        "checkpoint models/NAME/*.pt, as datakit convert uses it. --data takes output folders of build / synth "
        "and plain HDF5 pair files (.h5/.hdf5): sdr (N, T, H, W, 3) or (N, H, W, 3) uint8 BT.709 R'G'B', "
        "hdr the same shape uint16 PQ code x 65535; every sample of a pair file is scored.",
    )
    p.add_argument("--model", help="registered model name (default: from the checkpoint, else classical)")
    p.add_argument(
        "--checkpoint",
        metavar="CKPT",
        help="checkpoint from datakit train (or a bare state dict); default: the shipped models/NAME/*.pt",
    )
    p.add_argument(
        "--data", nargs="+", required=True, metavar="PATH", help="output folder(s) of build / synth, or HDF5 pair files"
    )
    p.add_argument("--split", default="test", help="split to score (default: test)")
    p.add_argument("--tile", type=int, default=512, help="tile size in pixels; 0 = whole frames (default 512)")
    p.add_argument("--overlap", type=int, default=32, help="tile overlap in pixels (default 32)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--limit", type=int, help="score only the first N samples")
    p.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    p.add_argument("--json", action="store_true", help="print the result as JSON (with per-sample scores)")
    p.add_argument("--untrained", action="store_true", help="score the architecture at its seeded initialization")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from datakit.errors import InputError
    from datakit.nn.evaluate import evaluate, format_table, jsonable

    if args.tile < 0 or args.overlap < 0 or any(v is not None and v < 1 for v in (args.limit, args.threads)):
        raise InputError("--tile and --overlap must be >= 0, --limit and --threads >= 1")
    result = evaluate(
        args.model, args.checkpoint, args.data, split=args.split, tile=args.tile or None, overlap=args.overlap,
        device=args.device, limit=args.limit, threads=args.threads, progress=not args.json,
        untrained=args.untrained,
    )  # fmt: skip
    print(json.dumps(jsonable(result), indent=2) if args.json else format_table(result))
    return 0
