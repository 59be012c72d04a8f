"""Synthesis throughput at 10 x 480 x 480 and which step of the chain dominates.

Makes ``--clips`` image-branch samples (warp, absolute scale, mastering grade, degradation chain with its drawn
operator and codec pass, PQ target) from the CC0 HDR images with the shipped synthetic recipe's ranges, under
cProfile, and prints clips/s, frames/s, the share of time in each step (cumulative time of the step's function;
what the chain spends outside the listed steps is white balance, saturation and the Poisson-Gaussian noise draws,
which cProfile cannot see) and, per tone-mapping operator and per codec, the seconds per clip of that step.
``--operators`` / ``--codecs`` cycle through every member (one per clip, instead of the recipe's draw) so that each
is timed. Run: ``python bench/bench_synth.py [--clips 12] [--length 10] [--tile 480] [--cycle] [--images DIR]``.
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
from datakit.synth.params import CODECS
from datakit.synth.schema import SYNTH_SCHEMA
from datakit.synth.tonemap import TONEMAP_OPERATORS

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT.parent / "shared" / "data" / "hdri", ROOT / "tests" / "data" / "hdri"]

OPERATOR_FUNCTIONS = tuple(f.__name__ for f in TONEMAP_OPERATORS.values())
STEPS = {  # label -> function name as cProfile reports it (module file, function)
    "warp (render_clip)": ("warp.py", "render_clip"),
    "absolute scale": ("exposure.py", "absolute_scale"),
    "mastering grade (EETF or ACES 2.0)": ("mastering.py", "apply_mastering"),
    "tone mapping (the drawn operator)": ("tonemap.py", OPERATOR_FUNCTIONS),
    "gamut mapping": ("gamut_map.py", "gamut_map"),
    "SDR transfer": ("degrade.py", "encode_sdr"),
    "codec pass (encode + decode)": ("degrade.py", "codec_roundtrip"),
    "chroma only (no codec)": ("degrade.py", "chroma_roundtrip"),
    "PQ target": ("degrade.py", "hdr_target"),
    "optical blur": ("~", "<GaussianBlur>"),
    "whole degradation chain": ("degrade.py", "apply_degradation"),
}
MEMBER_STEPS = {
    "tonemap": "tone mapping (the drawn operator)",
    "codec": "codec pass (encode + decode)",
    "grade": "mastering grade (EETF or ACES 2.0)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--length", type=int, default=10)
    parser.add_argument("--tile", type=int, default=480)
    parser.add_argument("--images", type=Path, default=None, help="folder of HDR images (default: ../shared/data/hdri)")
    parser.add_argument("--cycle", action="store_true", help="one operator and one codec after the other, in turn")
    args = parser.parse_args()
    limit_threads(1)
    recipe = load_recipe(shipped_recipe("synthetic_hdri"), {"synthetic": SYNTH_SCHEMA})
    recipe["clips"]["tile"] = args.tile
    folder = args.images or next(p for p in SOURCES if p.is_dir())
    sources = [s for s in find_sources(folder, "images") if s.source_id != "sunset"]
    images = {s.source_id: load_hdr_source(s, recipe["source"], {"warnings": []}) for s in sources}
    operators, codecs = list(TONEMAP_OPERATORS), list(CODECS)
    per_member: dict[str, list[float]] = {}
    profiler = cProfile.Profile()
    seconds, before = 0.0, {"tonemap": 0.0, "codec": 0.0, "grade": 0.0}
    for k in range(args.clips):
        source = sources[k % len(sources)]
        if args.cycle:  # the k-th operator and codec; everything else as the recipe draws it
            ranges = recipe["ranges"]
            ranges.setdefault("tonemap", {})["weights"] = [operators[k % len(operators)]]
            ranges.setdefault("codec", {})["codec"] = [codecs[k % len(codecs)]]
        start = time.perf_counter()
        profiler.enable()
        sample = make_image_sample(source, images[source.source_id], recipe, 0, args.length, k)
        profiler.disable()
        seconds += time.perf_counter() - start
        stats = pstats.Stats(profiler).stats
        now = {key: _cumulative(stats, *STEPS[label]) for key, label in MEMBER_STEPS.items()}
        d = sample.meta["degradation"]
        for key, member in (
            ("tonemap", d["tonemap"]),
            ("codec", d["codec"]),
            ("grade", sample.meta["mastering"]["grade"]),
        ):
            per_member.setdefault(f"{key} {member}", []).append(now[key] - before[key])
        before = now
    print(f"{args.clips} clips of {args.length} x {args.tile} x {args.tile} from {folder} (1 thread per library)")
    print(f"{args.clips / seconds:.2f} clips/s, {args.clips * args.length / seconds:.1f} frames/s ({seconds:.1f} s)")
    stats = pstats.Stats(profiler).stats  # {(file, line, name): (cc, nc, tt, ct, callers)}
    total = sum(v[2] for v in stats.values())
    print(f"{'step':38s} {'seconds':>8s} {'share':>6s}")
    for label, (file, name) in STEPS.items():
        ct = _cumulative(stats, file, name)
        if ct:
            print(f"{label:38s} {ct:8.2f} {ct / total:6.1%}")
    print(f"{'the step, per member drawn':38s} {'clips':>8s} {'s/clip':>6s}")
    for label, times in sorted(per_member.items()):
        print(f"{label:38s} {len(times):8d} {sum(times) / len(times):6.3f}")


def _cumulative(stats: dict, file: str, name: str | tuple[str, ...]) -> float:
    """Cumulative seconds of the functions ``name`` of ``file`` in cProfile's ``stats``."""
    names = name if isinstance(name, tuple) else (name,)
    return sum(v[3] for (f, _, n), v in stats.items() if f.endswith(file) and n in names)


if __name__ == "__main__":
    main()
