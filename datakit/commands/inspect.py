"""``datakit inspect OUT``: summarise an output folder."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="print a summary of an output folder")
    p.add_argument("out", help="output folder of datakit build / synth")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from datakit.store import inspect_output

    summary = inspect_output(args.out)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{summary['folder']}: {summary['samples']} samples from {summary['sources']} sources")
    for key, count in summary["samples_per_split_and_shape"].items():
        print(f"  {key}: {count}")
    print(f"  shards: {summary['shard_bytes'] / 1e6:.1f} MB (compression x{summary['compression_ratio']})")
    for reason, count in summary["rejected_by_reason"].items():
        print(f"  rejected {reason}: {count}")
    for source in summary["failed_sources"]:
        print(f"  FAILED source: {source}")
    return 0
