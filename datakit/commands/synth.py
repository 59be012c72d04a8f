"""``datakit synth RECIPE --images DIR_OR_GLOB --out OUT``: synthetic LDR/HDR clip pairs."""

from __future__ import annotations

import argparse

from datakit.commands import output_folder, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="synthesize LDR/HDR clip pairs from HDR images or SDR videos (resumable)")
    p.add_argument("recipe", help="synthetic recipe (TOML), e.g. recipes/synthetic_hdri.toml")
    p.add_argument("--images", help="folder or glob of HDR images (OpenEXR, Radiance .hdr, 16-bit PQ PNG)")
    p.add_argument("--videos", help="folder or glob of SDR videos (the recipe's sdr_video branch)")
    p.add_argument("--out", required=True, help="output folder (a rerun resumes it)")
    p.add_argument("--seed", type=int, default=0, help="recipe seed (default 0): same seed, same bytes")
    p.add_argument("--workers", type=positive_int, default=1, help="sources processed in parallel (default 1)")
    p.add_argument("--engine", choices=("local", "ray"), default="local", help="local processes or a Ray cluster")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from datakit.commands.build import finish
    from datakit.synth.build import synth_dataset

    output_folder(args.out)
    summary = synth_dataset(
        args.recipe, args.out, images=args.images, videos=args.videos, seed=args.seed,
        workers=args.workers, engine=args.engine,
    )  # fmt: skip
    return finish(summary, args.out)
