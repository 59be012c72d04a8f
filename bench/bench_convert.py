"""Benchmark ``datakit convert`` on a generated 1080p SDR clip: model cost, peak memory, end-to-end throughput.

Usage: ``python bench/bench_convert.py [--frames 24] [--models classical,agcm,hdcfm] [--preset medium]
[--crf 18] [--model-frames 3] [--frames-4k 2] [--repeat 3] [--budget 120] [--no-4k] [--no-e2e] [--threads N]
[--scan-mb 256]``.
Short run: ``python bench/bench_convert.py --frames 2 --model-frames 1 --frames-4k 1 --no-e2e``.

Models: ``classical`` and those with a shipped checkpoint (``models/NAME/*.pt``), or, when none is shipped,
``classical``, ``agcm`` and ``hdcfm`` with untrained weights (speed and memory do not depend on the weights); and
``hdcfm:reference`` / ``agcm:reference``, the same checkpoints through the models' whole-frame
``reference_forward`` (the inference path before the banded CPU forward), so that the speed-up is measured in the
same run on the same machine. For each model, in a fresh process each (so that peak figures are that
measurement's own):

- model cost at 1080p: CPU seconds (user + system, all threads) and wall seconds per output frame of
  :class:`datakit.convert.FrameConverter` (tensor copies, model, clipping; no decoding or encoding), the median
  over ``--repeat`` repetitions of ``--model-frames`` calls (fewer when a measurement passes ``--budget``
  seconds: the machine is shared, one repetition can be slowed by the others' work);
- peak memory at 1080p (``datakit convert``'s automatic tiling: whole frames, 512-pixel tiles for KPN-MFI) and at
  3840x2160 with 512-pixel tiles: the process's peak resident set
  (``ru_maxrss``, everything: Python, torch, libraries), the peak of numpy/Python allocations traced by
  ``tracemalloc`` on one more call after the timed ones (tracing every allocation would slow the timed calls,
  the banded path's small band arrays most; torch's CPU allocator is not traced) and
  ``torch.cuda.max_memory_allocated`` on CUDA;
- the ratio of the reference path's per-frame cost to the banded path's (CPU and wall seconds);
- end-to-end: ``convert_video`` on the clip against decode + encode alone (VideoReader -> HDR10Writer with the
  same crf and preset, no model), as seconds and as the ratio of throughputs, with the peak of the temporary disk
  space each run took (the bytes in its own output folder, sampled every 20 ms: the encoder's output, and before
  the spool was removed, the spooled frames) against the size of the output;
- the in-place MaxCLL/MaxFALL rewrite's one sequential read (:func:`datakit.io.light_level_sei.find_all`) on a
  ``--scan-mb`` file (random bytes, in the page cache: the CPU cost of the scan; a cold file reads at disk speed),
  against a plain sequential read of the same file (medians of 3, alternated).

Prints the figures; asserts nothing. Not run by the tests.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import multiprocessing
import os
import resource
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_MODELS = ("classical", "agcm", "hdcfm")
REFERENCE = ":reference"  # suffix: the model's whole-frame reference_forward instead of its default CPU path


def sdr_frame(t: int, width: int, height: int) -> np.ndarray:
    """Moving synthetic BT.709 R'G'B' picture (``rgb_sdr`` float32 [0, 1]): colour ramps, texture, a bright sky."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    texture = rng.random((height // 16 + 1, width // 16 + 1, 3), dtype=np.float32)
    texture = np.repeat(np.repeat(texture, 16, axis=0), 16, axis=1)[:height, :width]
    texture = np.roll(texture, 8 * t, axis=1)
    ramp = np.stack([(xx + 10 * t) % width / width, yy / height, 1.0 - xx / width], axis=-1)
    sky = (yy < height * 0.3)[..., None]
    rgb = np.where(sky, 0.85 + 0.15 * ramp, 0.15 + 0.6 * ramp) + 0.12 * (texture - 0.5)
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def make_clip(path: Path, frames: int, width: int = 1920, height: int = 1080) -> Path:
    from datakit.io.writer import SDRWriter

    with SDRWriter(path, width, height, 24, preset="veryfast", crf=16) as writer:
        for t in range(frames):
            writer.write(sdr_frame(t, width, height))
    return path


def untrained_checkpoint(name: str, folder: Path) -> Path:
    """A datakit-format checkpoint of the untrained model ``name`` (seeded)."""
    import torch

    from datakit.nn.registry import create_model
    from datakit.nn.train import CHECKPOINT_FORMAT

    torch.manual_seed(0)
    model = create_model(name)
    path = folder / f"{name}-untrained.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "model_name": name, "model_args": {}, "model": model.state_dict()}, path)
    return path


def _peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / 1024.0 if sys.platform != "darwin" else rss / 2**20


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure_model(
    name: str,
    checkpoint: str | None,
    width: int,
    height: int,
    frames: int,
    tile: int | None,
    threads: int | None,
    repeat: int = 3,
    budget: float = 120.0,
) -> dict[str, Any]:
    """Child process: per-frame cost (median over repetitions) and peak memory of the converter at one size."""
    import statistics

    import torch

    from datakit.convert import FrameConverter, resolve_model

    if threads:
        torch.set_num_threads(threads)
    reference = name.endswith(REFERENCE)
    module, name, _ = resolve_model(name.removesuffix(REFERENCE), checkpoint, "auto")
    if reference:
        module.forward = module.reference_forward  # bench only: the whole-frame path, for the ratio
    conv = FrameConverter(module, name=name, tile=tile)
    # A few distinct frames, reused: the measurement covers the conversion, not picture generation.
    pool = [sdr_frame(t, width, height) for t in range(conv.frames + 1)]
    conv([[sdr_frame(0, 256, 256)] * conv.frames])  # warm-up (allocator, kernels) on a small window
    cuda = torch.cuda.is_available() and conv.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    cpu_runs, wall_runs = [], []
    started = time.perf_counter()
    for _ in range(max(1, repeat)):
        cpu0, wall0 = _cpu_seconds(), time.perf_counter()
        for t in range(frames):
            window = [pool[(t + k) % len(pool)] for k in range(conv.frames)]
            conv([window])
        if cuda:
            torch.cuda.synchronize()
        outputs = frames * conv.output_frames
        cpu_runs.append((_cpu_seconds() - cpu0) / outputs)
        wall_runs.append((time.perf_counter() - wall0) / outputs)
        if time.perf_counter() - started > budget:
            break
    # numpy/Python peak on one more call, traced apart: tracemalloc hooks every allocation, which slowed the
    # banded path's many small band arrays (10.3 instead of 7.0-7.5 CPU s per 1080p frame) far more than the
    # reference path's few large tensors, and so understated the ratio between them
    tracemalloc.start()
    conv([[pool[k % len(pool)] for k in range(conv.frames)]])
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "cpu_s_per_frame": statistics.median(cpu_runs),
        "wall_s_per_frame": statistics.median(wall_runs),
        "runs": len(cpu_runs),
        "tile": conv.tile_for(height, width),
        "device": str(conv.device),
        "peak_rss_mb": _peak_rss_mb(),
        "tracemalloc_peak_mb": traced_peak / 2**20,
        "cuda_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "torch_threads": torch.get_num_threads(),
    }


class DiskPeak:
    """The largest total size of the files under ``folder``, sampled every ``interval`` seconds in a thread."""

    def __init__(self, folder: Path, interval: float = 0.02) -> None:
        self.folder, self.interval, self.peak = folder, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _size(self) -> int:
        total = 0
        for root, _, files in os.walk(self.folder):
            for name in files:
                with contextlib.suppress(FileNotFoundError):  # renamed or removed while listed
                    total += os.stat(os.path.join(root, name)).st_size
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._size())

    def __enter__(self) -> DiskPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._size())  # the published output, at least


def measure_convert(
    clip: str, out: str, name: str, checkpoint: str | None, crf: float, preset: str, threads: int | None
) -> dict[str, Any]:
    """Child process: the whole ``convert_video`` (decode, model, encode, mux), in ``out``'s own folder."""
    import torch

    from datakit.convert import convert_video

    if threads:
        torch.set_num_threads(threads)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with DiskPeak(Path(out).parent) as disk:
        result = convert_video(clip, out, model=name, checkpoint=checkpoint, crf=crf, preset=preset, overwrite=True)
    return {
        "seconds": time.perf_counter() - t0,
        "frames": result["frames"],
        "peak_rss_mb": _peak_rss_mb(),
        "disk_peak_mb": disk.peak / 2**20,
        "output_mb": os.path.getsize(out) / 2**20,
    }


def measure_baseline(clip: str, out: str, crf: float, preset: str) -> dict[str, Any]:
    """Child process: decode + encode alone, same writer settings (the SDR signal written as if it were PQ)."""
    from datakit.io.metadata import MasteringDisplay
    from datakit.io.reader import VideoReader
    from datakit.io.writer import HDR10Writer

    Path(out).parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with DiskPeak(Path(out).parent) as disk, VideoReader(clip, encoding="sdr") as reader:
        info = reader.info
        with HDR10Writer(
            out, info.width, info.height, info.fps, crf=crf, preset=preset, mastering=MasteringDisplay.p3_d65()
        ) as writer:
            for frame in reader:
                writer.write(frame.rgb("float32"))
    return {
        "seconds": time.perf_counter() - t0,
        "frames": writer.frames_written,
        "peak_rss_mb": _peak_rss_mb(),
        "disk_peak_mb": disk.peak / 2**20,
        "output_mb": os.path.getsize(out) / 2**20,
    }


def measure_scan(folder: Path, megabytes: int) -> dict[str, Any]:
    """Seconds of :func:`datakit.io.light_level_sei.find_all` over a file of random bytes (page cache warm)."""
    from datakit.io import light_level_sei

    path = folder / "scan.bin"
    rng = np.random.default_rng(0)
    with open(path, "wb") as f:
        for _ in range(megabytes):
            f.write(rng.bytes(1 << 20))
    patterns = [old for old, _ in light_level_sei.replacements(light_level_sei.PLACEHOLDER)]
    light_level_sei.find_all(path, patterns)  # warm the page cache
    scans, reads = [], []
    buffer = bytearray(16 << 20)
    for _ in range(3):  # alternated, medians: the machine is shared
        t0 = time.perf_counter()
        light_level_sei.find_all(path, patterns)
        scans.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with open(path, "rb", buffering=0) as f:
            while f.readinto(buffer):
                pass
        reads.append(time.perf_counter() - t0)
    path.unlink()
    seconds, read = float(np.median(scans)), float(np.median(reads))
    return {"seconds": seconds, "mb_per_s": megabytes / seconds, "read_seconds": read}


def in_child(fn: Any, *args: Any) -> dict[str, Any]:
    """Run ``fn(*args)`` in a fresh spawned process (its own peak RSS, no state carried over)."""
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(fn, *args).result()


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} MB"


def _disk(r: dict) -> str:
    """Peak temporary disk space of a run against its output's size."""
    return f"disk peak {r['disk_peak_mb']:,.1f} MB (output {r['output_mb']:,.1f} MB)"


def _model_row(name: str, r: dict) -> str:
    """One line of the model table: CPU and wall seconds per frame, peak RSS, numpy peak (and CUDA peak)."""
    return (
        f"{name:<16} {r['cpu_s_per_frame']:>11.3f} {r['wall_s_per_frame']:>12.3f} "
        f"{_mb(r['peak_rss_mb']):>10} {_mb(r['tracemalloc_peak_mb']):>11}  median of {r['runs']}"
        + (f"  cuda {_mb(r['cuda_peak_mb'])}" if r["cuda_peak_mb"] is not None else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=24, help="frames of the 1080p clip (default 24)")
    parser.add_argument("--models", help="comma-separated model names (default: shipped, else classical,agcm,hdcfm)")
    parser.add_argument("--preset", default="medium", help="libx265 preset for the end-to-end runs (medium)")
    parser.add_argument("--crf", type=float, default=18, help="libx265 crf for the end-to-end runs (18)")
    parser.add_argument("--model-frames", type=int, default=3, help="frames timed per model at 1080p (3)")
    parser.add_argument("--frames-4k", type=int, default=2, help="frames timed per model at 4K (2)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per measurement; the median is shown (3)")
    parser.add_argument("--budget", type=float, default=120.0, help="seconds after which no repetition starts (120)")
    parser.add_argument("--no-reference", action="store_true", help="skip the reference-path rows and ratios")
    parser.add_argument("--no-4k", action="store_true", help="skip the 4K measurements")
    parser.add_argument("--no-e2e", action="store_true", help="skip the end-to-end convert_video runs")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--scan-mb", type=int, default=256, help="MB scanned for the in-place rewrite (0: skip)")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # figures appear as they are measured

    from datakit.convert import models_dir, shipped_checkpoint

    with tempfile.TemporaryDirectory(prefix="bench_convert_") as tmp:
        folder = Path(tmp)
        if args.models:
            names = [n.strip() for n in args.models.split(",") if n.strip()]
        else:
            shipped = sorted(p.name for p in models_dir().iterdir() if p.is_dir() and shipped_checkpoint(p.name))
            names = ["classical", *shipped] if models_dir().is_dir() and shipped else list(DEFAULT_MODELS)
        checkpoints: dict[str, str | None] = {}
        for name in names:
            if name == "classical" or shipped_checkpoint(name):
                checkpoints[name] = None
            else:
                checkpoints[name] = str(untrained_checkpoint(name, folder))
        references = [] if args.no_reference else [n for n in ("agcm", "hdcfm") if n in names]
        for name in references:
            checkpoints[name + REFERENCE] = checkpoints[name]
        t0 = time.perf_counter()
        clip = make_clip(folder / "sdr1080.mp4", args.frames)
        print(f"clip: 1920x1080 SDR H.264, {args.frames} frames ({time.perf_counter() - t0:.1f} s to make)")
        print(f"cores: {os.cpu_count()}; models: {', '.join(names)} (untrained unless shipped)\n")

        header = f"{'model':<16} {'cpu s/frame':>11} {'wall s/frame':>12} {'peak RSS':>10} {'numpy peak':>11}"
        print("model cost and memory at 1920x1080 (convert's automatic tiling: whole frames, KPN-MFI 512 px tiles):")
        print(header)
        rows: dict[str, dict[str, Any]] = {}
        timing = (args.threads, args.repeat, args.budget)
        for name in [*names, *(n + REFERENCE for n in references)]:
            r = in_child(measure_model, name, checkpoints[name], 1920, 1080, args.model_frames, None, *timing)
            rows[name] = r
            print(_model_row(name, r) + f"  [{r['device']}, {r['torch_threads']} threads]")
        for name in references:
            new, old = rows[name], rows[name + REFERENCE]
            print(
                f"{name}: reference / default path = {old['cpu_s_per_frame'] / new['cpu_s_per_frame']:.1f}x CPU "
                f"seconds, {old['wall_s_per_frame'] / new['wall_s_per_frame']:.1f}x wall seconds per 1080p frame"
            )
        if not args.no_4k:
            print("\nat 3840x2160, tiles of 512 px (overlap 32; default paths only):")
            print(header)
            for name in names:
                r = in_child(measure_model, name, checkpoints[name], 3840, 2160, args.frames_4k, 512, *timing)
                print(_model_row(name, r))
        if not args.no_e2e:
            print(f"\nend to end on the clip (libx265 preset {args.preset}, crf {args.crf:g}):")
            base = in_child(measure_baseline, str(clip), str(folder / "base" / "base.mp4"), args.crf, args.preset)
            fps0 = base["frames"] / base["seconds"]
            print(
                f"{'decode+encode':<14} {base['seconds']:7.1f} s  {fps0:6.2f} frames/s  "
                f"peak RSS {_mb(base['peak_rss_mb'])}  {_disk(base)}"
            )
            for name in names:
                out = str(folder / name / f"{name}.mp4")
                r = in_child(
                    measure_convert, str(clip), out, name, checkpoints[name], args.crf, args.preset, args.threads
                )
                fps = r["frames"] / r["seconds"]
                print(
                    f"{'convert ' + name:<14} {r['seconds']:7.1f} s  {fps:6.2f} frames/s  peak RSS "
                    f"{_mb(r['peak_rss_mb'])}  throughput {fps / fps0:.2f} x decode+encode  {_disk(r)}"
                )
        if args.scan_mb > 0:
            r = in_child(measure_scan, folder, args.scan_mb)
            print(
                f"\nin-place MaxCLL/MaxFALL rewrite, the file's one read: {args.scan_mb} MB in {r['seconds']:.2f} s "
                f"({r['mb_per_s']:,.0f} MB/s, page cache warm; {r['seconds'] / r['read_seconds']:.2f} x the time of "
                f"plainly reading it, {r['read_seconds']:.2f} s)"
            )


if __name__ == "__main__":
    main()
