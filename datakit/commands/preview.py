"""``datakit preview OUT [--n K]``: a PNG sheet of samples with their parameters."""

from __future__ import annotations

import argparse

from datakit.commands import output_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("preview", help="write a PNG sheet: LDR frames beside HDR views, with their parameters")
    p.add_argument("out", help="output folder of datakit build / synth")
    p.add_argument("--n", type=int, default=8, help="number of samples (default 8)")
    p.add_argument("--png", help="where to write the sheet (default OUT/preview.png)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from datakit.report.preview import write_preview

    if args.png is not None:
        output_file(args.png, "--png", (".png",))
    print(write_preview(args.out, n=args.n, out=args.png))
    return 0
