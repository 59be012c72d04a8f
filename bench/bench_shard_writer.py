"""CPU and wall seconds per GB of shards written by :class:`datakit.store.shards.ShardWriter`, with the writer's
drop-behind (synced and dropped from the page cache every ``DROP_BEHIND_BYTES``) against plain buffered writes.

Samples are packed first (hashed and compressed, as the build's render threads do), so only the writer is timed:
HDF5's chunk writes, the copy into the page cache and, with drop-behind, the syncs. The pixels are random (they
do not compress), so the bytes written are the raw sample size. The two ways alternate for ``--rounds`` rounds
in one run, each into a new folder under ``--dir`` (a real disk: on tmpfs both are the same), all kept until the
end as a build's shards are; the ratio is of the medians. Memory freed shortly before (a removed folder, a
process that ended) is cheap to write into and memory free for long is not (on this project's virtual machine
the first GB of a fresh write cost 0.5 CPU s and the next ones 5 each): ``--warm-up`` buffered writes (not
timed) use up the first kind, so that both ways then write as a long build does.
Run: ``python bench/bench_shard_writer.py [--samples 600] [--rounds 3] [--warm-up 2] [--dir /tmp]``. With
``--build PAIRS`` (a pairs folder, such as ``/tmp/stream_work/hevc-gop2`` of ``bench/streaming_sources.py``) it
alternates whole child builds of ``--recipe`` (KPN-MFI) with drop-behind and without instead, ``--rounds`` times.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from datakit.store import shards


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def packed_samples(n: int) -> list[shards.Sample]:
    """``n`` HDRTV1K-sized samples (one 480 x 480 frame), packed."""
    rng = np.random.default_rng(0)
    hdr = (rng.integers(0, 1024, (1, 480, 480, 3)) << 6).astype(np.uint16)
    sdr = rng.integers(0, 256, (1, 480, 480, 3)).astype(np.uint8)
    samples = []
    for k in range(n):
        sample = shards.Sample(f"bench-{k:05d}", "bench", sdr, hdr, [k], [k], [k / 24], (0, 0, 480, 480))
        sample.pack()
        samples.append(sample)
    return samples


def write_all(samples: list[shards.Sample], folder: Path) -> tuple[float, float]:
    cpu, start = cpu_seconds(), time.perf_counter()
    with shards.ShardWriter(folder, "bench") as writer:
        for sample in samples:
            writer.add(sample, "train")
    return time.perf_counter() - start, cpu_seconds() - cpu


def alternate_builds(pairs: Path, recipe: str, rounds: int, work: Path) -> None:
    """``recipe`` built from the pairs folder ``pairs``, in child processes, with drop-behind and without, in turn:
    wall and CPU seconds of each build (bench_build's child build, its output into ``work``)."""
    import bench_build

    runs: dict[str, list[tuple[float, float]]] = {"drop-behind": [], "buffered": []}
    for _ in range(rounds):
        for name, every in (("drop-behind", shards.DROP_BEHIND_BYTES), ("buffered", 1 << 62)):
            prelude = f"from datakit.store import shards; shards.DROP_BEHIND_BYTES = {every}"
            run = bench_build.run_build(recipe, pairs, work / f"shard-writer-{recipe}-{name}", prelude)
            runs[name].append((run.seconds, run.cpu))
            print(f"  {recipe} {name:<12} {run.seconds:.1f} s, {run.cpu:.1f} CPU s", flush=True)
    for name, values in runs.items():
        walls, cpus = [w for w, _ in values], [c for _, c in values]
        print(f"  {name:<12} {min(walls):.1f}-{max(walls):.1f} s, {min(cpus):.1f}-{max(cpus):.1f} CPU s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument("--warm-up", type=int, default=2, help="untimed buffered writes of the samples first")
    parser.add_argument("--build", metavar="PAIRS", help="instead: alternate whole builds of this pairs folder")
    parser.add_argument("--recipe", default="kpnmfi", help="the shipped recipe of --build")
    args = parser.parse_args()
    if args.build:
        alternate_builds(Path(args.build), args.recipe, args.rounds, Path(tempfile.gettempdir()))
        return
    samples = packed_samples(args.samples)
    gigabytes = sum(len(s.chunks["sdr"]) + len(s.chunks["hdr"]) for s in samples) / 1e9
    default = shards.DROP_BEHIND_BYTES
    results: dict[str, list[tuple[float, float]]] = {"drop-behind": [], "buffered": []}
    work = Path(tempfile.mkdtemp(prefix="bench-shard-writer-", dir=args.dir))
    try:  # every round's files stay until the end, as a build's do: no write reuses the pages of a removed file
        shards.DROP_BEHIND_BYTES = 1 << 62
        for k in range(args.warm_up):  # takes the pages freed just before the run (not timed)
            write_all(samples, work / f"warm-up-{k}")
        for k in range(args.rounds):
            for name, every in (("drop-behind", default), ("buffered", 1 << 62)):
                shards.DROP_BEHIND_BYTES = every
                results[name].append(write_all(samples, work / f"{name}-{k}"))
    finally:
        shards.DROP_BEHIND_BYTES = default
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.samples} samples, {gigabytes:.2f} GB, {args.rounds} rounds (median per GB):")
    medians = {}
    for name, runs in results.items():
        wall = statistics.median(w for w, _ in runs) / gigabytes
        cpu = statistics.median(c for _, c in runs) / gigabytes
        medians[name] = (wall, cpu)
        print(f"  {name:<12} {wall:.2f} s/GB wall, {cpu:.2f} CPU s/GB")
    (wall_d, cpu_d), (wall_b, cpu_b) = medians["drop-behind"], medians["buffered"]
    print(f"  drop-behind / buffered: {wall_d / wall_b:.2f}x wall, {cpu_d / cpu_b:.2f}x CPU")


if __name__ == "__main__":
    main()
