"""``datakit extract FILE --out DIR``: frames as 16-bit PQ PNGs (HDR10) or 8-bit PNGs (SDR)."""

from __future__ import annotations

import argparse

from datakit.commands import output_folder
from datakit.errors import InputError


def _indices(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated frame indices, got {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected non-negative frame indices, got {text!r}")
    return values


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a time >= 0, got {text!r}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "extract",
        help="write frames as PNG: 16-bit PQ BT.2020 R'G'B' for HDR10, 8-bit BT.709 R'G'B' for SDR",
        description="Frames are named frame_NNNNNN.png after their 0-based index; only kept frames are converted.",
    )
    p.add_argument("file", help="video file (HDR10 or SDR)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--start", type=_seconds, default=0.0, metavar="T", help="skip frames before this time in seconds")
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--every",
        type=_positive,
        metavar="SECONDS",
        help="one frame per SECONDS: the first frame at or after start + k * SECONDS",
    )
    group.add_argument("--frames", type=_indices, metavar="I,J,...", help="comma-separated frame indices, e.g. 0,48,96")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from datakit.io.extract import extract_frames

    output_folder(args.out)
    written = extract_frames(
        args.file, args.out, start=args.start, every=args.every, frames=args.frames, progress=not args.quiet
    )
    if not written:
        raise InputError(f"{args.file}: no frames selected (start {args.start} s is past the end?)")
    print(f"wrote {len(written)} frames to {args.out}")
    return 0
