"""``datakit demo``: render the built-in demo pairs, probe them, and build a dataset from them."""

from __future__ import annotations

import argparse

from datakit.commands import output_folder


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="render the demo HDR10/SDR pairs, probe them and build a dataset from them")
    p.add_argument("--out", default="demo-out", help="folder for the demo media and dataset (default demo-out)")
    p.add_argument("--recipe", default=None, help="paired recipe (default: the shipped HDRTVMF1K recipe)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:

    from datakit.commands.build import finish
    from datakit.io.probe import probe
    from datakit.pairs.build import build_dataset
    from datakit.pairs.sources import PairSource, write_source_manifest
    from datakit.recipes import shipped_recipe
    from datakit.samples import DEMO_PAIRS, make_demo_pairs

    out = output_folder(args.out)
    media = out / "media"
    rendered = make_demo_pairs(media, {name: spec for name, (spec, _) in DEMO_PAIRS.items()})
    pairs = [
        PairSource(name, rendered[name].hdr.resolve(), rendered[name].sdr.resolve(), split)
        for name, (_, split) in DEMO_PAIRS.items()
    ]
    for path in (pairs[0].hdr, pairs[0].sdr):
        print(probe(path).summary())
    pairs_file = out / "pairs.toml"
    write_source_manifest(pairs, pairs_file)
    print(f"source manifest (sizes, durations, sha256): {pairs_file}")
    summary = build_dataset(args.recipe or shipped_recipe("hdrtvmf1k"), pairs_file, out / "dataset")
    return finish(summary, str(out / "dataset"))
