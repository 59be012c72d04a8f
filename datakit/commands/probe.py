"""``datakit probe FILE [--json] [--strict]``: print what a video file is (tags, HDR10 metadata, frame rate, frame
count); ``--strict`` exits with status 2 when the file is cut off (unless ``--allow-truncated``)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "probe", help="describe a video file: codec, size, exact frame rate, colour tags, HDR10 metadata"
    )
    p.add_argument("file", help="video file")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument(
        "--no-count",
        action="store_true",
        help="do not demux the file to count frames when the container lacks a count (MKV); estimate instead",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 2 when the container declares more video than the file holds (a cut-off download)",
    )
    p.add_argument("--allow-truncated", action="store_true", help="with --strict: accept a truncated file")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from datakit.audit.hdr_range import probe_note
    from datakit.io.probe import probe, require_complete

    info = probe(args.file, count_frames=not args.no_count)
    note = probe_note(args.file, info)  # HDR10 only: "looks like SDR in a PQ container" with the evidence, or None
    if args.strict:
        for warning in require_complete(info, allow_truncated=args.allow_truncated):
            print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps({**info.to_dict(), "not_hdr": note}, indent=2))
    else:
        print(info.summary() + (f"\n  warning: {note}" if note else ""))
    return 0
