"""``datakit import LAYOUT SRC --out OUT``: an existing frame dataset into shards (see :mod:`datakit.importers`)."""

from __future__ import annotations

import argparse

from datakit.commands import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import",
        help="import HDRTV1K, HDRTV4K or HDR/SDR frame pairs into shards (audited; resumable)",
        description="Read an existing dataset's HDR (16-bit PQ PNG/TIFF or HDR10 video frames) and SDR (8-bit "
        "PNG/JPEG) pairs, audit the HDR codes, tile them as the recipe says and write the output folder of "
        "`datakit build` (shards, manifest, summary, report).",
    )
    p.add_argument("layout", choices=("hdrtv1k", "hdrtv4k", "pairs"), help="how SRC is laid out")
    p.add_argument("src", help="dataset folder (or, for the pairs layout, a CSV file with hdr,sdr columns)")
    p.add_argument("--out", required=True, help="output folder (a rerun resumes it)")
    p.add_argument("--recipe", help="import recipe (default: recipes/import_hdrtv1k.toml)")
    p.add_argument("--split", choices=("train", "test", "val"), help="put every pair in this split")
    p.add_argument("--fix", action="store_true", help="undo a detected gain error (recorded in the manifest)")
    p.add_argument("--workers", type=positive_int, default=1, help="pairs processed in parallel (default 1)")
    p.add_argument("--engine", choices=("local", "ray"), default="local", help="local processes or a Ray cluster")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from datakit.commands import output_folder
    from datakit.commands.build import finish
    from datakit.importers.build import import_dataset

    output_folder(args.out)
    summary = import_dataset(
        args.layout, args.src, args.out, recipe_path=args.recipe, split=args.split, fix=args.fix,
        workers=args.workers, engine=args.engine,
    )  # fmt: skip
    status = finish(summary, args.out)  # the summary, and exit 1 with "N of M sources failed" when some failed
    for kind, verdicts in summary.get("audit", {}).items():
        print(f"  audit {kind}: " + ", ".join(f"{v} x{n}" for v, n in verdicts.items()))
    return status
