"""Synthesis throughput at 10 x 480 x 480 and which step of the chain dominates.

Makes ``--clips`` image-branch samples (warp, absolute scale, degradation chain with a real H.264 pass, PQ target)
from the CC0 HDR images with the shipped synthetic recipe's ranges, under cProfile, and prints clips/s, frames/s
and the share of time in each step (cumulative time of the step's function; what the chain spends outside the
listed steps is white balance, saturation and the Poisson-Gaussian noise draws, which cProfile cannot see). Run:
``python bench/bench_synth.py [--clips 12] [--length 10] [--tile 480]``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from pathlib import Path

from datakit.engine import limit_threads
from datakit.recipe import load_recipe
from datakit.recipes import shipped_recipe
from datakit.synth.build import find_sources, load_hdr_source, make_image_sample
from datakit.synth.schema import SYNTH_SCHEMA

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT.parent / "shared" / "data" / "hdri", ROOT / "tests" / "data" / "hdri"]

STEPS = {  # label -> function name as cProfile reports it (module file, function)
    "warp (render_clip)": ("warp.py", "render_clip"),
    "absolute scale": ("exposure.py", "absolute_scale"),
    "tone mapping (the drawn operator)": (
        "tonemap.py",
        ("reinhard", "hable", "bt2446a", "bt2390_eetf", "camera_scurve"),
    ),
    "gamut mapping": ("gamut_map.py", "gamut_map"),
    "SDR transfer": ("degrade.py", "encode_sdr"),
    "codec pass (H.264 encode + decode)": ("degrade.py", "codec_roundtrip"),
    "chroma only (no codec)": ("degrade.py", "chroma_roundtrip"),
    "PQ target": ("degrade.py", "hdr_target"),
    "optical blur": ("~", "<GaussianBlur>"),
    "whole degradation chain": ("degrade.py", "apply_degradation"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--length", type=int, default=10)
    parser.add_argument("--tile", type=int, default=480)
    args = parser.parse_args()
    limit_threads(1)
    recipe = load_recipe(shipped_recipe("synthetic_hdri"), {"synthetic": SYNTH_SCHEMA})
    recipe["clips"]["tile"] = args.tile
    folder = next(p for p in SOURCES if p.is_dir())
    sources = [s for s in find_sources(folder, "images") if s.source_id != "sunset"]
    images = {s.source_id: load_hdr_source(s, recipe["source"], {"warnings": []}) for s in sources}
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for k in range(args.clips):
        source = sources[k % len(sources)]
        make_image_sample(source, images[source.source_id], recipe, 0, args.length, k)
    profiler.disable()
    seconds = time.perf_counter() - start
    print(f"{args.clips} clips of {args.length} x {args.tile} x {args.tile} from {folder} (1 thread per library)")
    print(f"{args.clips / seconds:.2f} clips/s, {args.clips * args.length / seconds:.1f} frames/s ({seconds:.1f} s)")
    stats = pstats.Stats(profiler).stats  # {(file, line, name): (cc, nc, tt, ct, callers)}
    total = sum(v[2] for v in stats.values())
    print(f"{'step':38s} {'seconds':>8s} {'share':>6s}")
    for label, (file, name) in STEPS.items():
        names = name if isinstance(name, tuple) else (name,)
        ct = sum(v[3] for (f, _, n), v in stats.items() if f.endswith(file) and n in names)
        if ct:
            print(f"{label:38s} {ct:8.2f} {ct / total:6.1%}")


if __name__ == "__main__":
    main()
