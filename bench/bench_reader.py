"""Benchmark VideoReader against bare PyAV decoding on a 1080p 10-bit HDR10 clip (HEVC, VP9 profile 2 or AV1).

Usage: ``python bench/bench_reader.py [--codec hevc|vp9|av1] [--clip PATH] [--frames 60] [--threads auto]
[--repeat 2]``. Without ``--clip`` an HDR10 test clip (1920x1080, PQ BT.2020) is encoded once into the temporary
folder and reused: x265 ultrafast for HEVC, then transcoded with SVT-AV1 (PyAV, fastest preset) for AV1 or with
libvpx-vp9 (the ffmpeg of imageio-ffmpeg: PyAV's libvpx has no 10-bit) for VP9. Prints frames/s for:

(a) PyAV decode alone (``thread_type = "AUTO"``),
(b) VideoReader with ``frame.rgb("float32")`` (PQ R'G'B' in [0, 1]) in the decoding thread,
(c) VideoReader with ``frame.rgb("uint16")`` in the decoding thread,
(d) VideoReader with ``frame.luma(width=256)`` (analysis thumbnails),
(e) VideoReader without conversion,
(f) ``VideoReader.rgb_frames("float32")`` (the conversion in a thread beside the decoder),
(g) ``VideoReader.rgb_frames("uint16")``,
(h) ``VideoReader.rgb_frames("uint16", workers=2)``,

the process CPU time per frame, and the ratio of each to (a). Not run by the tests.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np


def make_clip(path: Path, frames: int, width: int = 1920, height: int = 1080) -> Path:
    """Encode a moving synthetic PQ BT.2020 clip with datakit's HDR10Writer (streaming, MaxCLL given)."""
    from datakit.io.metadata import ContentLightLevel
    from datakit.io.writer import HDR10Writer

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    texture = rng.random((height // 8, width // 8, 3), dtype=np.float32)
    texture = np.repeat(np.repeat(texture, 8, axis=0), 8, axis=1)
    with HDR10Writer(
        path, width, height, 24, preset="ultrafast", crf=22, light_level=ContentLightLevel(1000, 300)
    ) as writer:
        for i in range(frames):
            shift = np.roll(texture, 6 * i, axis=1)
            ramp = (0.25 + 0.35 * ((xx + 12 * i) % width) / width + 0.1 * yy / height)[..., None]
            writer.write(np.clip(ramp + 0.2 * (shift - 0.5), 0.0, 1.0))
    return path


def transcode(src: Path, dst: Path, codec: str) -> Path:
    """Re-encode the HEVC clip ``src`` as 10-bit AV1 (PyAV's libsvtav1) or VP9 profile 2 (imageio-ffmpeg's ffmpeg)."""
    import av

    if codec == "vp9":
        import subprocess

        import imageio_ffmpeg

        vp9 = ["-c:v", "libvpx-vp9", "-pix_fmt", "yuv420p10le", "-profile:v", "2", "-deadline", "realtime"]
        vp9 += ["-cpu-used", "8", "-row-mt", "1", "-b:v", "0", "-crf", "30"]
        exe = imageio_ffmpeg.get_ffmpeg_exe()
        subprocess.run([exe, "-v", "error", "-y", "-i", str(src), *vp9, str(dst)], check=True)
        return dst
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        source = inp.streams.video[0]
        stream = out.add_stream("libsvtav1", rate=24)
        stream.width, stream.height, stream.pix_fmt = source.width, source.height, "yuv420p10le"
        cc = stream.codec_context
        cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = 9, 16, 9, 1
        stream.options = {"preset": "12", "crf": "35"}
        for i, frame in enumerate(inp.decode(source)):
            frame.pts, frame.time_base = i, Fraction(1, 24)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return dst


def timed(label: str, fn: Callable[[], int], repeat: int) -> float:
    """Best frames/s of ``repeat`` runs; also prints the process CPU time per frame (all threads), which a machine
    shared with other work disturbs less than the wall time."""
    best, cpu = 0.0, float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        n = fn()
        best = max(best, n / (time.perf_counter() - t0))
        cpu = min(cpu, (time.process_time() - c0) / n)
    print(f"{label:<42s} {best:8.1f} frames/s {1000 * cpu:7.1f} CPU ms/frame")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codec", choices=("hevc", "vp9", "av1"), default="hevc", help="codec of the made clip")
    parser.add_argument("--clip", type=Path, help="existing 10-bit clip (default: make one)")
    parser.add_argument("--frames", type=int, default=60, help="frames in the generated clip (default 60)")
    parser.add_argument("--threads", default="auto", help="decoder threads: auto or a number")
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement; the best is kept")
    args = parser.parse_args()

    import av

    from datakit.io.reader import VideoReader

    clip = args.clip
    if clip is None:
        folder = Path(tempfile.gettempdir()) / "datakit-bench"
        clip = folder / f"hdr10_1080p_{args.frames}.mp4"
        if not clip.exists():
            clip.parent.mkdir(parents=True, exist_ok=True)
            print(f"encoding {args.frames} frames of 1080p HDR10 into {clip} ...")
            make_clip(clip, args.frames)
        if args.codec != "hevc":
            other = folder / f"hdr10_1080p_{args.frames}_{args.codec}.{'webm' if args.codec == 'vp9' else 'mkv'}"
            if not other.exists():
                print(f"transcoding it to {args.codec} into {other} ...")
                transcode(clip, other, args.codec)
            clip = other
    threads = args.threads if args.threads == "auto" else int(args.threads)

    def pyav_decode() -> int:
        with av.open(str(clip)) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_type = "AUTO"
            if threads != "auto":
                stream.codec_context.thread_count = threads
            return sum(1 for _ in container.decode(stream))

    def reader(convert: Callable[[object], object]) -> Callable[[], int]:
        def run() -> int:
            n = 0
            with VideoReader(clip, threads=threads) as r:
                for frame in r:
                    convert(frame)
                    n += 1
            return n

        return run

    def pipelined(dtype: str, workers: int = 1) -> Callable[[], int]:
        def run() -> int:
            with VideoReader(clip, threads=threads) as r:
                return sum(1 for _ in r.rgb_frames(dtype, workers=workers))

        return run

    with VideoReader(clip) as r:
        info = r.info
    print(f"{clip}: {info.width}x{info.height} {info.pix_fmt} {info.codec}, {info.frame_count} frames")
    base = timed("(a) PyAV decode, thread_type AUTO", pyav_decode, args.repeat)
    rows = [
        ("(b) VideoReader rgb('float32')", reader(lambda f: f.rgb("float32"))),
        ("(c) VideoReader rgb('uint16')", reader(lambda f: f.rgb("uint16"))),
        ("(d) VideoReader luma(width=256)", reader(lambda f: f.luma(width=256))),
        ("(e) VideoReader, no conversion", reader(lambda f: None)),
        ("(f) rgb_frames('float32'), 1 thread", pipelined("float32")),
        ("(g) rgb_frames('uint16'), 1 thread", pipelined("uint16")),
        ("(h) rgb_frames('uint16'), 2 threads", pipelined("uint16", workers=2)),
    ]
    for label, fn in rows:
        fps = timed(label, fn, args.repeat)
        print(f"{'':<42s} {fps / base:8.2f} x (a)")


if __name__ == "__main__":
    main()
