"""``convert_video`` with the spooling HDR10Writer of an older checkout against this one, alternated.

Usage: ``python bench/bench_writer_spool.py --base DIR [--frames 12] [--reps 2] [--models classical,agcm]``,
where ``DIR`` holds an older tree, e.g. ``mkdir /tmp/base && git archive 71f5e89 | tar -x -C /tmp/base`` (the
last commit whose writer spooled frames). Each conversion of a generated 1080p clip (``bench_convert.make_clip``,
libx265 preset medium, crf 18) runs in a fresh process; printed per run: wall and CPU seconds (user + system of
the child), its peak RSS and the MaxCLL/MaxFALL it wrote. Runs alternate between the two trees, so that a shared
machine's load falls on both. Asserts nothing; not run by the tests.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(root: Path, clip: Path, out: Path, model: str) -> tuple[float, float, float, str]:
    """(wall s, CPU s, peak RSS MB, light level) of one conversion with the tree ``root``."""
    code = (
        f"from datakit.convert import convert_video; r = convert_video({str(clip)!r}, {str(out)!r}, model={model!r}, "
        f"preset='medium', crf=18, overwrite=True, device='cpu'); print(r['light_level'])"
    )
    env = {**os.environ, "PYTHONPATH": str(root)}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
    _, _, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    level = proc.stdout.read().strip() if proc.stdout else ""
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, level


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, required=True, help="the older tree (spooling writer)")
    parser.add_argument("--frames", type=int, default=12, help="frames of the 1080p clip (12)")
    parser.add_argument("--reps", type=int, default=2, help="rounds (2)")
    parser.add_argument("--models", default="classical,agcm", help="comma-separated models (classical,agcm)")
    args = parser.parse_args()
    sys.path[:0] = [str(HERE), str(HERE.parent)]
    import bench_convert

    roots = {"spool": args.base.resolve(), "stream": HERE.parent}
    with tempfile.TemporaryDirectory(prefix="bench_writer_spool_") as tmp:
        folder = Path(tmp)
        clip = bench_convert.make_clip(folder / "clip.mp4", args.frames)
        for rep in range(args.reps):
            for model in [m.strip() for m in args.models.split(",") if m.strip()]:
                for tag, root in roots.items():
                    wall, cpu, rss, level = run(root, clip, folder / f"{tag}.mp4", model)
                    print(
                        f"{rep} {model:<9} {tag:<6} wall {wall:6.1f} s  cpu {cpu:6.1f} s  peak RSS {rss:6.0f} MB  "
                        f"{level}  load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
