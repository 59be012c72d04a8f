"""Wall time of `datakit build` as a ratio to decoding both streams alone with PyAV, per source kind and recipe.

The baseline: PyAV decodes every frame of the HDR10 and the SDR stream (``thread_type = "AUTO"``, no
conversion) one after the other, the bound any build that looks at every frame must pay. Every build runs
between two such decodes of its pair and is compared with their mean; ``--repeats`` rounds (default 3) give a
median and a range per kind and recipe, since one round on a shared machine can be off by a third. Dense
recipes (HDRTVMF1K) decode each stream once and keep the frames their clips need on the way; sparse ones (KPN-MFI,
HDRTV1K) align from short SDR windows and HDR keyframes and seek to the clips, so they can beat the bound. The
shipped recipes are used as they are.

Sources (``--kinds``, rendered once by ``bench/streaming_sources.py`` into ``--work`` and reused): ``hevc-gop2``,
``hevc-gop5`` and ``av1`` are 1080p titles (``--seconds``, 60 by default) rendered from the CC0 photographs,
3-8 s shots with hard cuts and slow and fast motion, encoded like delivery files (HDR10 HEVC Main10 with 2 s or
5 s GOPs and B-frames beside SDR H.264 with the same GOPs; 10-bit and 8-bit AV1); ``4k`` is a 10 s 3840x2160
hevc-gop2 title; ``demo`` is the project's demo pair this bench measured before (keyframe every 24 frames, 4 s
scenes). Each build runs in a child process (its own interpreter, the same environment), which reports the
build's wall and CPU seconds (its own and its threads'); the parent reads the child's peak resident memory
from ``wait4``, so no round's peak hides another's. The frame store's budget in effect
(``DATAKIT_FRAME_MEMORY_MB``, default 3072) is printed beside the peak.

Targets: issue 17, on the 1080p streaming-like pairs (median of three rounds): HDRTVMF1K <= 1.2x, KPN-MFI <= 0.9x,
HDRTV1K <= 0.8x of decoding both streams alone, and at 4K within 10% of those ratios with the peak memory bounded
by the budget; issue 13, on the demo kind: dense <= 1.3x, sparse < 1x.

Run: ``python bench/bench_build.py [--work DIR] [--kinds hevc-gop2 ...] [--recipes kpnmfi ...] [--seconds 60]
[--repeats 3]``; ``--quick`` is a smoke run (every kind 10 s long, into ``--work``/quick, one round).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

sys.path.insert(0, str(Path(__file__).resolve().parent))
import streaming_sources  # the bench folder is not a package

RECIPES = ("hdrtvmf1k", "kpnmfi", "hdrtv1k")
QUICK_SECONDS = 10.0  # KPN-MFI's 1024 px tiles need 1080p frames: a smoke run only shortens the titles


def decode_all(path: Path) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads) and its waited-for children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def decode_pair(hdr: Path, sdr: Path) -> tuple[float, float, tuple[int, int]]:
    """(wall seconds, CPU seconds, frame counts) of decoding both streams, one after the other."""
    cpu, start = cpu_seconds(), time.perf_counter()
    counts = decode_all(hdr), decode_all(sdr)
    return time.perf_counter() - start, cpu_seconds() - cpu, counts


def child_build(recipe: str, pairs: str, out: str, result: str) -> None:
    """Run in the child: one build, its wall and CPU seconds and summary written to ``result`` (JSON)."""
    import shutil

    from datakit.pairs.build import build_dataset
    from datakit.recipes import shipped_recipe

    shutil.rmtree(out, ignore_errors=True)
    cpu, start = cpu_seconds(), time.perf_counter()
    summary = build_dataset(shipped_recipe(recipe), pairs, out, report=False)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    Path(result).write_text(json.dumps({"seconds": seconds, "cpu": cpu, "summary": summary}, default=str))


@dataclass
class BuildRun:
    seconds: float
    cpu: float
    peak_mb: float
    summary: dict[str, Any]


def run_build(recipe: str, pairs: Path, out: Path, prelude: str = "") -> BuildRun:
    """One build in a child process; its peak resident memory from ``wait4`` (that child alone). ``prelude``:
    Python statements the child runs first (a bench's setting)."""
    result = out.with_name(out.name + ".result.json")
    result.unlink(missing_ok=True)
    code = "; ".join(filter(None, ["import sys, bench_build", prelude, "bench_build.child_build(*sys.argv[1:])"]))
    paths = [str(Path(__file__).resolve().parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    proc = subprocess.Popen([sys.executable, "-c", code, recipe, str(pairs), str(out), str(result)], env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or not result.exists():
        raise SystemExit(f"the {recipe} build on {pairs} failed (exit status {proc.returncode})")
    data = json.loads(result.read_text())
    return BuildRun(data["seconds"], data["cpu"], usage.ru_maxrss / 1024.0, data["summary"])  # ru_maxrss: KiB


@dataclass
class Cell:
    """The rounds of one kind and recipe."""

    ratios: list[float] = field(default_factory=list)
    runs: list[BuildRun] = field(default_factory=list)


def _spread(values: list[float], fmt: str) -> str:
    ordered = sorted(values)
    return f"{statistics.median(ordered):{fmt}} ({ordered[0]:{fmt}}-{ordered[-1]:{fmt}})"


def _gop(path: Path) -> str:
    """The keyframe spacing of a stream, from its packets (nothing decoded)."""
    with av.open(str(path)) as container:
        keys = [i for i, p in enumerate(p for p in container.demux(video=0) if p.size) if p.is_keyframe]
    gaps = [b - a for a, b in itertools.pairwise(keys)]
    return f"{len(keys)} keyframes, spacing {min(gaps)}-{max(gaps)}" if gaps else f"{len(keys)} keyframe"


def bench_kind(name: str, args: argparse.Namespace, work: Path) -> dict[str, Cell]:
    info = streaming_sources.render_kind(name, work, args.seconds, exact=args.quick)
    hdr, sdr = Path(info["hdr"]), Path(info["sdr"])
    pairs = hdr.parent
    baseline, decode_cpu, counts = decode_pair(hdr, sdr)
    with av.open(str(hdr)) as container:
        stream = container.streams.video[0]
        shape = f"{stream.codec_context.width}x{stream.codec_context.height} {stream.codec_context.name}"
    print(
        f"\n== {name}: {shape}, HDR {counts[0]} frames ({_gop(hdr)}), SDR {counts[1]} ({_gop(sdr)}); "
        f"rendered in {info['render_seconds']} s\n"
        f"   PyAV decode of both streams alone: {baseline:.2f} s ({sum(counts) / baseline:.1f} frames/s), "
        f"{decode_cpu:.1f} CPU s",
        flush=True,
    )
    cells = {recipe: Cell() for recipe in args.recipes}
    decodes = [(baseline, decode_cpu)]
    for _ in range(args.repeats):
        for recipe in args.recipes:
            run = run_build(recipe, pairs, work / f"out-{name}-{recipe}")
            after, after_cpu, _ = decode_pair(hdr, sdr)
            cells[recipe].ratios.append(run.seconds / ((baseline + after) / 2))
            cells[recipe].runs.append(run)
            decodes.append((after, after_cpu))
            baseline = after
            print(
                f"   {recipe}: {run.seconds:.1f} s, {run.cpu:.1f} CPU s, peak {run.peak_mb:.0f} MB, "
                f"{cells[recipe].ratios[-1]:.2f}x the decode (then decode alone {after:.1f} s, {after_cpu:.1f} CPU s)",
                flush=True,
            )
    decode_cpus = [cpu for _, cpu in decodes]
    print(f"   decode alone over the run: {_spread([s for s, _ in decodes], '.1f')} s, "
          f"{_spread(decode_cpus, '.1f')} CPU s")  # fmt: skip
    return cells


def report(results: dict[str, dict[str, Cell]], budget_mb: float) -> None:
    print(
        f"\nmedian (range) over rounds; CPU s of the build (the decode alone: above); peak RSS of the build's "
        f"process, frame store budget DATAKIT_FRAME_MEMORY_MB = {budget_mb:.0f} MB"
    )
    print(f"{'kind':10s} {'recipe':10s} {'x decode':>17s} {'build s':>19s} {'CPU s':>19s} {'peak MB':>19s} samples")
    for kind, cells in results.items():
        for recipe, cell in cells.items():
            runs = cell.runs
            print(
                f"{kind:10s} {recipe:10s} {_spread(cell.ratios, '.2f'):>17s} "
                f"{_spread([r.seconds for r in runs], '.1f'):>19s} {_spread([r.cpu for r in runs], '.1f'):>19s} "
                f"{_spread([r.peak_mb for r in runs], '.0f'):>19s} {runs[-1].summary['samples']:7d}"
            )
    print("\nlast build's phases:")
    for kind, cells in results.items():
        for recipe, cell in cells.items():
            timings = next(iter(cell.runs[-1].summary["sources"].values())).get("timings", {})
            phases = ", ".join(f"{k.removesuffix('_seconds')} {v:.1f} s" for k, v in timings.items())
            print(f"{kind:10s} {recipe:10s} {phases}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "datakit-bench-build"))
    parser.add_argument("--kinds", nargs="+", default=["hevc-gop2", "hevc-gop5", "av1", "4k", "demo"],
                        choices=streaming_sources.KIND_NAMES)  # fmt: skip
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=RECIPES)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the 1080p titles (4k: 10 s)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of builds (the median ratio is reported)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 10 s titles, one round")
    args = parser.parse_args()
    work = Path(args.work)
    if args.quick:
        args.seconds, args.repeats, work = QUICK_SECONDS, 1, work / "quick"
    from datakit.pairs.build import frame_memory_bytes

    budget_mb = frame_memory_bytes() / 2**20
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {args.repeats} round(s), recipes in turn")
    results = {name: bench_kind(name, args, work) for name in args.kinds}
    report(results, budget_mb)


if __name__ == "__main__":
    main()
