"""``datakit build RECIPE --pairs PAIRS --out OUT``: the paired-video dataset.

Exit status of ``build``, ``synth`` and ``demo`` (:func:`finish`, the one place that decides it): 0 when every
source of the folder is done, 1 when some failed (they are listed, and the last line on stderr says how many),
2 when the run as a whole could not go on (bad invocation, bad recipe or pairs file, a folder another run is
writing or that cannot be written: one line on stderr, from :mod:`datakit.cli`).
"""

from __future__ import annotations

import argparse
import sys

from datakit.commands import output_folder, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="build a paired HDR10/SDR dataset from a recipe (resumable)")
    p.add_argument("recipe", help="paired recipe (TOML), e.g. recipes/hdrtvmf1k.toml")
    p.add_argument("--pairs", required=True, help="pairs file (TOML or CSV) or a folder of <id>_hdr10/<id>_sdr files")
    p.add_argument("--out", required=True, help="output folder (a rerun resumes it)")
    p.add_argument("--workers", type=positive_int, default=1, help="pairs processed in parallel (default 1)")
    p.add_argument("--engine", choices=("local", "ray"), default="local", help="local processes or a Ray cluster")
    p.add_argument("--allow-truncated", action="store_true", help="build from cut-off sources instead of failing them")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from datakit.pairs.build import build_dataset

    output_folder(args.out)
    summary = build_dataset(
        args.recipe,
        args.pairs,
        args.out,
        workers=args.workers,
        engine=args.engine,
        allow_truncated=args.allow_truncated,
    )
    return finish(summary, args.out)


def finish(summary: dict, out: str) -> int:
    """Print the summary of a finished run and return its exit status: 0 when every source is done, else 1,
    with ``N of M sources failed`` as the last line on stderr."""
    print_summary(summary, out)
    failed, total = len(summary["failed_sources"]), len(summary["sources"])
    if failed:
        print(f"datakit: {failed} of {total} sources failed", file=sys.stderr)
        return 1
    return 0


def print_summary(summary: dict, out: str) -> None:
    splits = ", ".join(f"{k} {v}" for k, v in summary["samples_per_split"].items()) or "none"
    print(f"{summary['samples']} samples ({splits}) in {out}")
    for reason, count in summary["rejected_by_reason"].items():
        print(f"  rejected {reason}: {count}")
    for source in summary["failed_sources"]:
        print(f"  FAILED {source}: {summary['sources'][source].get('error', '')}")
    print(f"report: {summary.get('report', '')}")
