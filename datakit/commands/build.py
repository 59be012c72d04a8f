"""``datakit build RECIPE --pairs PAIRS --out OUT``: the paired-video dataset."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="build a paired HDR10/SDR dataset from a recipe (resumable)")
    p.add_argument("recipe", help="paired recipe (TOML), e.g. recipes/hdrtvmf1k.toml")
    p.add_argument("--pairs", required=True, help="pairs file (TOML or CSV) or a folder of <id>_hdr10/<id>_sdr files")
    p.add_argument("--out", required=True, help="output folder (a rerun resumes it)")
    p.add_argument("--workers", type=int, default=1, help="pairs processed in parallel (default 1)")
    p.add_argument("--engine", choices=("local", "ray"), default="local", help="local processes or a Ray cluster")
    p.add_argument("--allow-truncated", action="store_true", help="build from cut-off sources instead of failing them")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from datakit.pairs.build import build_dataset

    summary = build_dataset(
        args.recipe,
        args.pairs,
        args.out,
        workers=args.workers,
        engine=args.engine,
        allow_truncated=args.allow_truncated,
    )
    print_summary(summary, args.out)
    return 0


def print_summary(summary: dict, out: str) -> None:
    splits = ", ".join(f"{k} {v}" for k, v in summary["samples_per_split"].items()) or "none"
    print(f"{summary['samples']} samples ({splits}) in {out}")
    for reason, count in summary["rejected_by_reason"].items():
        print(f"  rejected {reason}: {count}")
    for source in summary["failed_sources"]:
        print(f"  FAILED {source}: {summary['sources'][source].get('error', '')}")
    print(f"report: {summary.get('report', '')}")
