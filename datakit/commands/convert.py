"""``datakit convert IN OUT``: an SDR video to a playable HDR10 video (HEVC Main10, ST 2084 PQ, BT.2020).

See :func:`datakit.convert.convert_video` for what happens to the pictures, the timestamps and the audio.
"""

from __future__ import annotations

import argparse
import sys

from datakit.commands import output_file


def _tile(text: str) -> int | None:
    if text.lower() == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a tile size in pixels, 0 or auto, got {text!r}") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="convert an SDR video to HDR10 with a reference model (classical by default)",
        description="Convert an SDR (BT.709) video to HDR10: HEVC Main10 yuv420p10le, BT.2020 primaries, SMPTE "
        "ST 2084 PQ, limited range, ST 2086 mastering display (P3-D65, max = --peak) and MaxCLL/MaxFALL measured on "
        "the output. The output is clipped to --peak cd/m2. Frame timestamps are kept and audio is copied "
        "without re-encoding. Without --model the classical conversion runs (no weights needed).",
    )
    p.add_argument("input", help="SDR video file")
    p.add_argument("output", help="HDR10 output (.mp4, .mov, .mkv or .hevc)")
    p.add_argument(
        "--model",
        metavar="NAME",
        help="registered model (see `datakit models`); default: the checkpoint's model, else classical",
    )
    p.add_argument(
        "--checkpoint",
        metavar="CKPT",
        help="model weights (from datakit train); default: the shipped models/NAME/*.pt",
    )
    p.add_argument(
        "--peak",
        type=float,
        default=1000.0,
        metavar="NITS",
        help="output clip level and mastering display peak in cd/m2 (default 1000)",
    )
    p.add_argument(
        "--tile",
        type=_tile,
        default=None,
        metavar="S",
        help="tile size for tiled inference; 0 = whole frames; default auto (tiles of 512 above 1920x1088)",
    )
    p.add_argument("--overlap", type=int, default=32, metavar="P", help="pixels shared by adjacent tiles (32)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--batch", type=int, default=1, metavar="N", help="frames (windows) per model call (1)")
    p.add_argument("--crf", type=float, default=18, metavar="Q", help="libx265 constant rate factor (18)")
    p.add_argument("--preset", default="medium", metavar="P", help="libx265 preset (medium)")
    p.add_argument("--x265-params", default=None, metavar="K=V:K=V", help="extra libx265 parameters")
    p.add_argument("--force", action="store_true", help="convert HDR or wide-gamut input as if it were SDR")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import json

    from datakit.convert import convert_video
    from datakit.io.x265 import check_x265_params

    output_file(args.output, "OUT")
    x265_params = None if args.x265_params is None else check_x265_params(args.x265_params)
    result = convert_video(
        args.input,
        args.output,
        model=args.model,
        checkpoint=args.checkpoint,
        peak_nits=args.peak,
        tile=args.tile,
        overlap=args.overlap,
        device=args.device,
        batch=args.batch,
        crf=args.crf,
        preset=args.preset,
        force=args.force,
        overwrite=args.overwrite,
        x265_params=x265_params,
        progress=not args.quiet and not args.json,
    )
    for note in result["warnings"]:
        print(f"datakit: note: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    light = result["light_level"]
    info = result["probe"]
    source = f"checkpoint {result['checkpoint']}" if result["checkpoint"] else "no weights"
    print(
        f"wrote {result['output']}: {result['frames']} frames {result['width']}x{result['height']}, "
        f"HEVC Main10 {info['pix_fmt']} BT.2020/PQ, model {result['model']} ({source}) on {result['device']}"
    )
    print(
        f"  output clipped to {result['peak_nits']:g} cd/m2 in PQ ({100 * result['clipped_fraction']:.3f}% of "
        f"pixels were above); MaxCLL {light['max_cll']} cd/m2, MaxFALL {light['max_fall']} cd/m2; "
        f"audio streams copied: {result['audio_streams']}"
    )
    print(f"  {result['seconds']:.1f} s ({result['fps']:.2f} frames/s)")
    return 0
