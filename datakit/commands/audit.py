"""``datakit audit SRC``: what the code values of frames say about how they were made (see :mod:`datakit.audit`)."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "audit",
        help="find encoding errors in frames: gain, Y'CbCr matrix, 8-bit sources, clipping, levels, not-HDR",
        description="Audit a folder of 16-bit PQ / 8-bit SDR frames, an output folder or a video. Each finding "
        "comes with its evidence and a confidence. Repair a gain error with `datakit import ... --fix`.",
    )
    p.add_argument("src", help="frames folder, image, output folder of build/synth/import, or video file")
    p.add_argument("--max-samples", type=int, default=64, help="output folders: samples audited (default 64)")
    p.add_argument("--json", action="store_true", help="print the audit as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from datakit.audit.run import audit_path, format_audit
    from datakit.errors import InputError

    if args.max_samples < 1:
        raise InputError("--max-samples must be at least 1")
    result = audit_path(args.src, max_samples=args.max_samples, progress=not args.json)
    print(json.dumps(result, indent=2) if args.json else format_audit(result))
    return 0
