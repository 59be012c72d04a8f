"""``datakit probe FILE [--json]``: print what a video file is (tags, HDR10 metadata, frame rate, frame count)."""

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
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import json

    from datakit.audit.hdr_range import probe_note
    from datakit.io.probe import probe

    info = probe(args.file, count_frames=not args.no_count)
    note = probe_note(args.file, info)  # HDR10 only: "looks like SDR in a PQ container" with the evidence, or None
    if args.json:
        print(json.dumps({**info.to_dict(), "not_hdr": note}, indent=2))
    else:
        print(info.summary() + (f"\n  warning: {note}" if note else ""))
    return 0
