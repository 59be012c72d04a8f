"""``datakit demo``: render the built-in demo pair, probe it, and build a dataset from it."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="render the demo HDR10/SDR pair, probe it and build a dataset from it")
    p.add_argument("--out", default="demo-out", help="folder for the demo media and dataset (default demo-out)")
    p.add_argument("--recipe", default=None, help="paired recipe (default: the shipped HDRTVMF1K recipe)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from datakit.commands.build import print_summary
    from datakit.io.probe import probe
    from datakit.pairs.build import build_dataset
    from datakit.recipes import shipped_recipe
    from datakit.samples import make_demo_pair

    out = Path(args.out)
    pair = make_demo_pair(out / "media")
    for path in (pair.hdr, pair.sdr):
        print(probe(path).summary())
    recipe = args.recipe or shipped_recipe("hdrtvmf1k")
    summary = build_dataset(recipe, out / "media", out / "dataset")
    print_summary(summary, str(out / "dataset"))
    return 0
