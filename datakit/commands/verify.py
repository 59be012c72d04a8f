"""``datakit verify OUT``: re-read every shard against the manifest."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="re-read every shard of an output folder against its manifest")
    p.add_argument("out", help="output folder of datakit build / synth")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from datakit.store import verify_output

    report = verify_output(args.out)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for problem in report["problems"]:
            print(f"DAMAGED {problem}")
        state = "OK" if not report["problems"] else f"{len(report['problems'])} problem(s)"
        print(f"{args.out}: {report['samples']} samples in {report['shards']} shards: {state}")
    return 1 if report["problems"] else 0
