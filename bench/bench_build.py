"""Wall time of `datakit build` on a 1080p demo pair, as a ratio to decoding both streams alone with PyAV.

The baseline: PyAV decodes every frame of the HDR10 and the SDR stream (``thread_type = "AUTO"``, no
conversion) one after the other, the bound any build that looks at every frame must pay. Every build runs
between two such decodes and is compared with their mean; ``--repeats`` rounds (default 3) give a median and a
range per recipe, since one round on a shared machine can be off by a third. Dense recipes (HDRTVMF1K) decode
each stream once and keep the frames their clips need on the way; sparse ones (KPN-MFI, HDRTV1K) align from
short SDR windows and HDR keyframes and seek to the clips, so they can beat the bound. The shipped recipes are
used as they are. Targets (issue): dense <= 1.3, sparse < 1.
Run: ``python bench/bench_build.py [--work DIR] [--seconds 60] [--repeats 3]``. The demo pair (``--seconds``
long, a hard cut every ``--scene-seconds``) is rendered once into ``--work`` and reused. A minute is the
default: the sources of these datasets are minutes to hours long, and on a title shorter than the alignment
search (10 s each way) a sparse build cannot skip anything.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av

from datakit.pairs.build import build_dataset
from datakit.recipes import shipped_recipe
from datakit.samples import DemoSpec, make_demo_pair


def decode_all(path: Path) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (a build may run in workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def cpu_timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds, result)."""
    cpu = cpu_seconds()
    seconds, result = timed(fn, *args, **kwargs)
    return seconds, cpu_seconds() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "datakit-bench-build"))
    parser.add_argument("--seconds", type=int, default=60, help="length of the demo title")
    parser.add_argument("--scene-seconds", type=int, default=4, help="length of each scene")
    parser.add_argument("--recipes", nargs="+", default=["hdrtvmf1k", "kpnmfi", "hdrtv1k"])
    parser.add_argument("--repeats", type=int, default=3, help="rounds of builds (the median ratio is reported)")
    args = parser.parse_args()
    work = Path(args.work)
    scenes = max(1, args.seconds // args.scene_seconds)
    spec = DemoSpec(
        hdr_size=(1920, 1080), sdr_size=(1920, 1080), scene_frames=(args.scene_seconds * 24,) * scenes, keyint=24,
        preset="ultrafast", offset_frames=5,
    )  # fmt: skip
    pair = make_demo_pair(work / f"media-{args.seconds}s-{args.scene_seconds}", spec)

    def decode() -> tuple[int, int]:
        return decode_all(pair.hdr), decode_all(pair.sdr)

    baseline, decode_cpu, counts = cpu_timed(decode)
    print(f"1080p demo pair: HDR {counts[0]} frames, SDR {counts[1]} frames, keyframe every 24 frames")
    print(
        f"PyAV decode of both streams alone: {baseline:.2f} s ({sum(counts) / baseline:.1f} frames/s), "
        f"{decode_cpu:.1f} CPU s"
    )
    print(
        f"Each build runs between two decodes of both streams; its ratio uses their mean (the machine is shared). "
        f"{args.repeats} rounds, recipes in turn; the median and range of each recipe's ratios:"
    )
    ratios: dict[str, list[float]] = {name: [] for name in args.recipes}
    last: dict[str, tuple[float, Any]] = {}
    for _ in range(args.repeats):
        for name in args.recipes:
            recipe = shipped_recipe(name)  # as shipped: the protocols' own clips and tiles
            out = work / f"out-{name}"
            shutil.rmtree(out, ignore_errors=True)
            seconds, cpu, summary = cpu_timed(build_dataset, recipe, pair.hdr.parent, out, report=False)
            after, _ = timed(decode)
            ratios[name].append(seconds / ((baseline + after) / 2))
            last[name] = (seconds, cpu, summary)
            baseline = after
    print(f"{'recipe':12s} {'x decode':>9s} {'range':>11s} {'samples':>8s}   last build")
    for name in args.recipes:
        seconds, cpu, summary = last[name]
        values = sorted(ratios[name])
        timings = next(iter(summary["sources"].values())).get("timings", {})
        phases = ", ".join(f"{k.removesuffix('_seconds')} {v:.1f} s" for k, v in timings.items())
        print(
            f"{name:12s} {statistics.median(values):9.2f} {values[0]:5.2f}-{values[-1]:<5.2f} {summary['samples']:8d}"
            f"   {seconds:.1f} s, {cpu:.1f} CPU s ({phases})"
        )


if __name__ == "__main__":
    main()
