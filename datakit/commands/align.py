"""``datakit align HDR SDR``: temporal offset, frame mapping and picture geometry of an HDR10/SDR pair."""

from __future__ import annotations

import argparse
import json

from datakit.commands import threads


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "align",
        help="align an HDR10 video with its SDR version (offset, frame rates, picture area, scale)",
        description="Find which HDR frame each SDR frame shows and where the SDR picture lies on the HDR frame. "
        "Exits with status 2 when the files are swapped or not HDR10/SDR, or when the confidence is too low.",
    )
    p.add_argument("hdr", help="HDR10 video (PQ, BT.2020, >= 10 bit)")
    p.add_argument("sdr", help="SDR version of the same title (BT.709)")
    p.add_argument("--json", action="store_true", help="print the full alignment as JSON")
    p.add_argument("--max-offset", type=float, default=10.0, metavar="SECONDS", help="largest offset searched")
    p.add_argument("--sparse", action="store_true", help="decode three short windows instead of whole streams (faster)")
    p.add_argument("--no-refine", action="store_true", help="skip the full-resolution check of the geometry")
    p.add_argument(
        "--min-confidence",
        type=float,
        default=None,
        metavar="C",
        help="fail below this confidence (default: datakit.pairs.align.MIN_CONFIDENCE); 0 never fails",
    )
    p.add_argument("--threads", type=threads, default="auto", help="decoder threads (default: auto)")
    p.add_argument("--allow-truncated", action="store_true", help="align a cut-off file from what it holds")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from datakit.io.probe import require_complete_files
    from datakit.pairs.align import MIN_CONFIDENCE, align_pair

    for warning in require_complete_files(args.hdr, args.sdr, allow_truncated=args.allow_truncated):
        print(f"warning: {warning}", file=sys.stderr)

    alignment = align_pair(
        args.hdr,
        args.sdr,
        max_offset_seconds=args.max_offset,
        sparse=args.sparse,
        refine=not args.no_refine,
        min_confidence=MIN_CONFIDENCE if args.min_confidence is None else args.min_confidence,
        threads=args.threads,
    )
    data = alignment.to_dict()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    frames = "" if data["offset_frames"] is None else f" ({data['offset_frames']} frames)"
    print(f"offset: SDR time t shows HDR time {data['ratio']:.6g} * t + {data['offset_seconds']:.4f} s{frames}")
    print(f"frame rates: HDR {data['fps_hdr']:.3f} fps, SDR {data['fps_sdr']:.3f} fps")
    print(f"SDR picture [x, y, w, h]: {data['sdr_picture']} of {data['sdr_size'][0]}x{data['sdr_size'][1]}")
    print(f"scale: {data['scale']:.5f} HDR px per SDR px, translation {data['translation']}")
    print(
        f"confidence: {data['confidence']:.2f} (temporal {data['temporal_confidence']:.2f}, "
        f"spatial {data['spatial_confidence']:.2f})"
    )
    if len(data["segments"]) > 1:
        print(f"offset changes: {len(data['segments']) - 1}; unmatched SDR frame ranges: {data['unmatched']}")
    if data["uncertain"]:
        print(f"uncertain SDR frame ranges (neighbouring HDR frames not told apart): {data['uncertain']}")
    if any(d["evidence"] == "cut" for d in data["segment_evidence"]):
        print("evidence: hard cuts seen in both versions pin the offset")
    for reason in data["reasons"]:
        print(f"  note: {reason}")
    return 0
