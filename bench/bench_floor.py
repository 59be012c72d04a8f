"""The least a recipe's output costs on this machine: a build of the same samples that does nothing else.

``bench_build.py`` compares each build with decoding both streams alone. This bench says how close to that a
build could come here. For each source kind and recipe it takes the samples a real build wrote (the records in
its output folder: each clip's SDR and HDR frames and each tile's crop) and makes them again with nothing but
the work they cannot do without:

- decoding: dense recipes (HDRTVMF1K) every picture of both streams, each summarized by the build's own per-frame
  summary (:class:`datakit.pairs.analysis.ThumbnailCollector`: their scene cuts and frame-exact alignment need
  every frame); sparse ones (KPN-MFI, HDRTV1K) only the clips' frames, reached by the reader's own seek and
  non-reference skip (:meth:`datakit.io.reader.VideoReader.read_at`), none of the windows the alignment and the
  clip timing checks decode;
- converting each tile region to R'G'B' (:meth:`datakit.io.reader.Frame.rgb`, as the build converts it),
  hashing and compressing each sample (:meth:`datakit.store.shards.Sample.pack`, two render threads) and writing
  the shards in order (:meth:`datakit.store.output.OutputFolder.writer`).

Both streams are decoded at once and conversion runs beside decoding, as in the build. No scene detection,
alignment, refinement, gate or timing check runs, so the figure is a lower bound on any build of these samples
on these cores with these decoders: a target below it cannot be met by making the build faster, only by a
recipe that writes less or a machine with more cores than the decoders use. The samples must come out with the
build's own content hashes (printed: identical of all), which shows the floor did the same conversion.

For the sparse recipes a second floor, "with the checks", also decodes the pictures issue 13's checks of each
clip must look at, and nothing else of theirs: the SDR frames ``margin + 1`` either side of the clip (its local
cut check) and the HDR frames :data:`~datakit.pairs.align.CLIP_REACH` either side of those predicted for the
frames its timing is checked on. The alignment's own windows and keyframes are still left out. The table's
verdict compares the target with this floor where there is one.

Run: ``python bench/bench_floor.py [--work /tmp/stream_work] [--kinds hevc-gop2 demo] [--recipes ...]
[--repeats 3] [--reuse-builds]``: the build each floor is taken from runs here in the same round (unless
``--reuse-builds`` finds it in ``--work``), so the build's ratio, the floors and the issue's target are printed
side by side. Each run is a child
process; ratios are to the mean of the decodes before and after it.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bench_build
import streaming_sources

TARGETS = {"hdrtvmf1k": 1.2, "kpnmfi": 0.9, "hdrtv1k": 0.8}  # issue 17, 1080p streaming-like kinds
DEMO_TARGETS = {"hdrtvmf1k": 1.3, "kpnmfi": 1.0, "hdrtv1k": 1.0}  # issue 13, the demo kind
RENDER_THREADS = 2  # as the build's clip stage


@dataclass
class _Clip:
    """The frames one clip of the build used and the samples (crops) it wrote."""

    sdr_frames: list[int]
    hdr_frames: list[int]
    records: list[dict[str, Any]] = field(default_factory=list)


def _built_clips(built: Path) -> tuple[str, list[_Clip]]:
    """The source and its clips, in the order the build wrote them, from the build's records."""
    records = [json.loads(line) for part in sorted((built / "parts").glob("*.jsonl")) for line in part.open()]
    if not records:
        raise SystemExit(f"{built}: the build kept no samples")
    clips: dict[tuple[tuple[int, ...], tuple[int, ...]], _Clip] = {}
    for record in records:
        key = (tuple(record["sdr_frames"]), tuple(record["hdr_frames"]))
        clips.setdefault(key, _Clip(list(key[0]), list(key[1]))).records.append(record)
    return records[0]["source_id"], list(clips.values())


def _check_window(clip: _Clip, side: str, margin: int, frame_count: int) -> list[int]:
    """The frames of one stream a sparse build's checks of this clip read: SDR, the clip with ``margin`` frames on
    either side (the local cut check); HDR, :data:`~datakit.pairs.align.CLIP_REACH` frames either side of those
    predicted for the frames its timing is checked on (:func:`~datakit.pairs.align.frames_to_check`)."""
    from datakit.pairs.align import CLIP_REACH, frames_to_check

    if side == "sdr":
        first, last = clip.sdr_frames[0] - margin, clip.sdr_frames[-1] + margin
    else:  # (the stream's own frame count bounds the widening: the two differ by the offset at most)
        shift = clip.hdr_frames[0] - clip.sdr_frames[0]
        checked = [f + shift for f in frames_to_check(clip.sdr_frames, frame_count)]
        first, last = min(checked) - CLIP_REACH, max(checked) + CLIP_REACH
    return list(range(max(0, first), min(frame_count - 1, last) + 1))


def _sparse_frames(reader: Any, clips: list[_Clip], side: str, margin: int | None = None) -> Iterator[list[Any]]:
    """Each clip's frames of one stream, sought clip after clip (the reader moves forward); with ``margin``, every
    frame of the clip's check window is decoded too (:func:`_check_window`)."""
    for clip in clips:
        frames = clip.sdr_frames if side == "sdr" else clip.hdr_frames
        if margin is None:
            yield reader.read_at(frames)
            continue
        window = _check_window(clip, side, margin, reader.info.frame_count)
        decoded = {f.index: f for f in reader.read_at(sorted(set(window) | set(frames)))}
        yield [decoded[f] for f in frames]


def _dense_frames(reader: Any, clips: list[_Clip], side: str, recipe: dict[str, Any]) -> Iterator[list[Any]]:
    """Each clip's frames of one stream from one pass over every frame, each summarized on the way."""
    from datakit.pairs import analysis

    info = reader.info
    bgr_width = analysis.whole_factor_width(info.width, recipe["scenes"]["thumb_width"]) if side == "sdr" else None
    collector = analysis.ThumbnailCollector(
        reader, luma_width=recipe["align"]["thumb_width"], bgr_width=bgr_width, keep_bgr=False,
        profile_step=analysis.profile_step(info.fps, info.frame_count),
    )  # fmt: skip
    wanted = [clip.sdr_frames if side == "sdr" else clip.hdr_frames for clip in clips]
    needed = {f for frames in wanted for f in frames}
    kept: dict[int, Any] = {}
    next_clip = 0
    for frame in analysis.read_ahead(reader.frames()):
        collector.add(frame)
        if frame.index in needed:
            kept[frame.index] = frame
        while next_clip < len(wanted) and max(wanted[next_clip]) <= frame.index:
            yield [kept[f] for f in wanted[next_clip]]
            next_clip += 1


def _render(clip: _Clip, sdr: list[Any], hdr: list[Any]) -> list[Any]:
    """The clip's samples: each tile region converted (HDR PQ R'G'B' uint16, SDR BT.709 R'G'B' uint8), packed."""
    import numpy as np

    from datakit.pairs.build import conversion_regions
    from datakit.store.shards import Sample

    boxes = [tuple(r["crop"]) for r in clip.records]
    tiles: dict[int, tuple[Any, Any]] = {}
    for region, members in conversion_regions(boxes):
        rx, ry = region[:2]
        sdr_region = np.stack([f.rgb("uint8", box=region) for f in sdr])
        hdr_region = np.stack([f.rgb("uint16", box=region) for f in hdr])
        for k in members:
            x, y, w, h = boxes[k]
            cut = (slice(None), slice(y - ry, y - ry + h), slice(x - rx, x - rx + w))
            tiles[k] = (sdr_region[cut], hdr_region[cut])
    samples = []
    for k, record in enumerate(clip.records):
        sample = Sample(
            sample_id=record["sample_id"], source_id=record["source_id"], sdr=tiles[k][0], hdr=tiles[k][1],
            sdr_frames=record["sdr_frames"], hdr_frames=record["hdr_frames"], times=record["times"],
            crop=record["crop"], scene=record["scene"], score=record["score"], meta=record["meta"],
        )  # fmt: skip
        sample.pack()
        samples.append(sample)
    return samples


def child_floor(recipe_name: str, pairs: str, built: str, out: str, result: str, checks: str = "") -> None:
    """Run in the child: the floor of one build (see the module doc), its seconds and hashes to ``result``."""
    import shutil

    import cv2
    from threadpoolctl import threadpool_limits

    from datakit.allocator import keep_freed_memory
    from datakit.engine import worker_threads
    from datakit.io.reader import VideoReader
    from datakit.pairs.analysis import read_ahead
    from datakit.pairs.build import SPARSE_STRATEGIES
    from datakit.pairs.schema import PAIRED_SCHEMA
    from datakit.pairs.sources import read_pairs
    from datakit.recipe import load_recipe
    from datakit.recipes import shipped_recipe
    from datakit.store.output import OutputFolder

    recipe = load_recipe(shipped_recipe(recipe_name), {"paired": PAIRED_SCHEMA}, expected_kind="paired")
    source_id, clips = _built_clips(Path(built))
    pair = next(p for p in read_pairs(pairs) if p.pair_id == source_id)
    shutil.rmtree(out, ignore_errors=True)
    folder = OutputFolder(out)
    folder.prepare()
    cv2.setNumThreads(1)
    keep_freed_memory()
    sparse = recipe["clips"]["strategy"] in SPARSE_STRATEGIES
    made: list[str] = []  # content hashes of the floor's samples, in the order written
    cpu, start = bench_build.cpu_seconds(), time.perf_counter()
    with (
        threadpool_limits(limits=1, user_api="blas"),
        VideoReader(pair.hdr, encoding="pq", threads=worker_threads()) as hdr_reader,
        VideoReader(pair.sdr, encoding="sdr", threads=worker_threads()) as sdr_reader,
        folder.writer(source_id, max_bytes=recipe["store"]["max_shard_mb"] << 20) as writer,
        ThreadPoolExecutor(max_workers=RENDER_THREADS, thread_name_prefix="floor-render") as pool,
    ):
        if sparse:
            margin = recipe["clips"]["margin"] + 1 if checks else None
            sdr_clips = _sparse_frames(sdr_reader, clips, "sdr", margin)
            hdr_clips = _sparse_frames(hdr_reader, clips, "hdr", margin)
        else:
            sdr_clips = _dense_frames(sdr_reader, clips, "sdr", recipe)
            hdr_clips = _dense_frames(hdr_reader, clips, "hdr", recipe)
        pending: queue.Queue[Future[list[Any]] | None] = queue.Queue(maxsize=4)

        def write_in_order() -> None:
            while (future := pending.get()) is not None:
                for sample in future.result():
                    made.append(writer.add(sample, "train")["content_hash"])

        writer_thread = threading.Thread(target=write_in_order, daemon=True)
        writer_thread.start()
        for clip, sdr, hdr in zip(clips, read_ahead(sdr_clips, 2), read_ahead(hdr_clips, 2), strict=True):
            pending.put(pool.submit(_render, clip, sdr, hdr))
        pending.put(None)
        writer_thread.join()
        pictures = {"hdr": hdr_reader.pictures_decoded, "sdr": sdr_reader.pictures_decoded}
    seconds, cpu = time.perf_counter() - start, bench_build.cpu_seconds() - cpu
    built_hashes = [r["content_hash"] for clip in clips for r in clip.records]
    Path(result).write_text(json.dumps({
        "seconds": seconds, "cpu": cpu, "samples": len(built_hashes), "pictures": pictures,
        "identical": sum(a == b for a, b in zip(made, built_hashes, strict=False)),
    }))  # fmt: skip


def _pictures(summary: dict[str, Any]) -> str:
    """The pictures the build's decoders returned (from the pair's status in the build's summary)."""
    decoding = next(iter(summary["sources"].values()))["decoding"]
    return f"{decoding['hdr']['pictures']} HDR + {decoding['sdr']['pictures']} SDR"


def run_floor(recipe: str, pairs: Path, built: Path, out: Path, checks: bool = False) -> dict[str, Any]:
    """One floor run in a child process (its own interpreter, as bench_build's builds), with its peak memory."""
    result = out.with_name(out.name + ".result.json")
    result.unlink(missing_ok=True)
    code = "import sys, bench_floor; bench_floor.child_floor(*sys.argv[1:])"
    paths = [str(Path(__file__).resolve().parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    mode = "checks" if checks else ""
    argv = [sys.executable, "-c", code, recipe, str(pairs), str(built), str(out), str(result), mode]
    proc = subprocess.Popen(argv, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0 or not result.exists():
        raise SystemExit(f"the {recipe} floor on {pairs} failed")
    return {**json.loads(result.read_text()), "peak_mb": usage.ru_maxrss / 1024.0}


@dataclass
class _DecodeClock:
    """Ratios to decoding both streams alone: each run against the mean of the decodes before and after it."""

    hdr: Path
    sdr: Path
    before: float

    def ratio(self, seconds: float) -> float:
        after, _, _ = bench_build.decode_pair(self.hdr, self.sdr)
        ratio = seconds / ((self.before + after) / 2)
        self.before = after
        return ratio


def _median(values: list[float]) -> str:
    values = sorted(values)
    return f"{values[len(values) // 2]:.2f}x ({values[0]:.2f}-{values[-1]:.2f})" if values else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="/tmp/stream_work")
    parser.add_argument("--kinds", nargs="+", default=["hevc-gop2", "demo"], choices=streaming_sources.KIND_NAMES)
    parser.add_argument("--recipes", nargs="+", default=list(bench_build.RECIPES), choices=bench_build.RECIPES)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the 1080p titles (4k: 10 s)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reuse-builds", action="store_true", help="take the floors from builds already in --work")
    args = parser.parse_args()
    work = Path(args.work)
    rows = []
    for kind in args.kinds:
        info = streaming_sources.render_kind(kind, work, args.seconds, exact=False)
        hdr, sdr = Path(info["hdr"]), Path(info["sdr"])
        before, decode_cpu, _ = bench_build.decode_pair(hdr, sdr)
        print(f"\n== {kind}: decode both streams alone {before:.2f} s, {decode_cpu:.1f} CPU s", flush=True)

        clock = _DecodeClock(hdr, sdr, before)
        for recipe in args.recipes:
            ratios: dict[str, list[float]] = {"build": [], "floor": [], "checks": []}
            for _ in range(args.repeats):
                built = work / f"floor-{kind}-{recipe}-build"
                line = f"   {recipe}:"
                if not (args.reuse_builds and (built / "parts").is_dir()):
                    run = bench_build.run_build(recipe, hdr.parent, built)
                    ratios["build"].append(clock.ratio(run.seconds))
                    line += (
                        f" build {run.seconds:.1f} s, {run.cpu:.1f} CPU s ({ratios['build'][-1]:.2f}x), pictures "
                        f"{_pictures(run.summary)};"
                    )
                sparse = recipe != "hdrtvmf1k"
                for name in ("floor", "checks") if sparse else ("floor",):
                    floor = run_floor(
                        recipe, hdr.parent, built, work / f"floor-{kind}-{recipe}-{name}", name == "checks"
                    )
                    ratios[name].append(clock.ratio(floor["seconds"]))
                    line += (
                        f" {'floor' if name == 'floor' else 'with the checks'} {floor['seconds']:.1f} s, "
                        f"{floor['cpu']:.1f} CPU s, peak {floor['peak_mb']:.0f} MB ({ratios[name][-1]:.2f}x), "
                        f"pictures {floor['pictures']['hdr']} HDR + {floor['pictures']['sdr']} SDR, "
                        f"{floor['identical']} of {floor['samples']} samples identical;"
                    )
                print(line.rstrip(";"), flush=True)
            target = (DEMO_TARGETS if kind == "demo" else TARGETS)[recipe]
            rows.append((kind, recipe, ratios, target))
    print("\nkind        recipe     build               floor               with the checks     target")
    for kind, recipe, ratios, target in rows:
        floor = sorted(ratios["checks"] or ratios["floor"])
        verdict = "below the floor" if target < floor[len(floor) // 2] else "above the floor"
        print(
            f"{kind:<11} {recipe:<10} {_median(ratios['build']):<19} {_median(ratios['floor']):<19} "
            f"{_median(ratios['checks']):<19} {target:.1f}x: {verdict}"
        )


if __name__ == "__main__":
    main()
