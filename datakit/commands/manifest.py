"""``datakit manifest SOURCES... --out FILE``: a pairs file with sizes, durations and sha256 of every source."""

from __future__ import annotations

import argparse

from datakit.commands import output_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("manifest", help="write a source manifest (pairs file with sizes, durations, sha256)")
    p.add_argument("sources", nargs="+", help="pairs files or folders (<id>_hdr10.* + <id>_sdr.*, or hdr/ + sdr/)")
    p.add_argument("--out", required=True, help="TOML pairs file to write")
    p.add_argument("--split", choices=("train", "test", "val"), help="split for pairs that name none")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from datakit.pairs.sources import read_pairs, write_source_manifest

    output_file(args.out, suffixes=(".toml",))
    pairs = [pair for source in args.sources for pair in read_pairs(source)]
    write_source_manifest(pairs, args.out, default_split=args.split)
    print(f"{len(pairs)} pairs -> {args.out}")
    return 0
