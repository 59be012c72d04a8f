"""Where a paired build's time goes: py-spy samples of one build (Python and native frames, every thread), grouped.

Runs ``py-spy record --native --threads --idle`` on a child that builds one recipe on one pairs folder (as
``bench_build.py`` does), keeps the raw samples and a speedscope file beside them, and prints per group the
seconds (samples / rate) and the share of the CPU samples: a sample is one thread seen at one instant, on CPU or
not (``--idle``: waiting threads are sampled too and grouped as ``waiting``). Each sample goes to the first group
(in :data:`GROUPS` order) that one of its frames matches, looked for from the innermost frame out, so a decoder
called by the alignment counts as decoding.

Run: ``python bench/profile_build.py RECIPE PAIRS_FOLDER --out DIR [--rate 50]`` (py-spy must be installed and
allowed to trace its children). ``--from-raw FILE`` groups an earlier recording again.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
from pathlib import Path

# (group, pattern on one frame "function (file:line)"); the first group whose pattern one frame matches wins,
# frames are tried from the innermost out.
GROUPS: tuple[tuple[str, str], ...] = (
    (
        "waiting",
        r"^(pthread_cond_wait|pthread_cond_timedwait|__futex|futex_wait|sem_wait|do_futex|__lll_lock|"
        r"epoll_wait|select|poll|nanosleep|clock_nanosleep)|\bwait \(threading\.py|acquire|_wait_for_tstate",
    ),
    (
        "decode: HEVC/H.264/AV1/VP9 (libavcodec, dav1d)",
        r"^(ff_|hevc_|h264_|dav1d_|vp9_|decode_|avcodec_|av_read_frame|av_seek|ff_hevc|put_hevc|ff_h264|"
        r"hls_|cabac|dav1d|frame_worker)|libavcodec|libdav1d",
    ),
    ("reader: Y'CbCr -> R'G'B' / frame conversion", r"datakit/io/reader\.py|datakit/color/"),
    ("thumbnails (analysis pass)", r"datakit/pairs/analysis\.py"),
    ("alignment: clip timing checks", r"datakit/pairs/align/clipcheck\.py"),
    ("alignment: features, matching, registration", r"datakit/pairs/align/"),
    ("scene cuts (PySceneDetect)", r"datakit/pairs/scenes\.py|scenedetect/"),
    ("gates (black, static, not_hdr)", r"datakit/pairs/gates\.py"),
    ("compression (Blosc2), hashing, HDF5", r"datakit/store/|blosc|xxh|H5|h5py"),
    ("tiles and clip conversion", r"datakit/pairs/(tiles|build|retain|clips)\.py"),
    ("dense / sparse analysis (other)", r"datakit/pairs/(dense|sparse)\.py"),
    ("PyAV (other)", r"av/|libav"),
)


def classify(stack: list[str]) -> str:
    for frame in reversed(stack):  # innermost first
        for name, pattern in GROUPS:
            if re.search(pattern, frame):
                return name
    return "other"


def caller(stack: list[str]) -> str:
    """The innermost datakit function outside the reader: who asked for the decoding or conversion."""
    for frame in reversed(stack):
        match = re.match(r"(\S+) \((?:.*/)?(datakit/[\w/]+)\.py:\d+\)", frame)
        if match and match[2] != "datakit/io/reader" and not match[2].startswith("datakit/color"):
            return f"{match[2].removeprefix('datakit/')}.{match[1]}"
    return "?"


def group_raw(path: Path, rate: float) -> None:
    counts: collections.Counter[str] = collections.Counter()
    callers: collections.Counter[tuple[str, str]] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    for line in path.read_text().splitlines():
        stack_text, _, count = line.rpartition(" ")
        if not stack_text:
            continue
        frames = stack_text.split(";")
        n = int(count)
        group = classify(frames[1:])
        counts[group] += n
        if group.startswith(("decode", "reader")):
            callers[group.split(":")[0], caller(frames[1:])] += n
        threads[re.sub(r"\s*\(\d+\)|0x[0-9a-f]+", "", frames[0])] += n
    total = sum(counts.values())
    busy = total - counts.get("waiting", 0)
    print(f"{path}: {total} samples at {rate:g} Hz ({total / rate:.1f} thread-seconds, {busy / rate:.1f} not waiting)")
    for name, n in counts.most_common():
        share = "" if name == "waiting" else f"{100 * n / max(busy, 1):5.1f}% of the busy samples"
        print(f"  {name:48s} {n / rate:7.1f} s  {share}")
    for (group, who), n in callers.most_common(12):
        print(f"    {group} for {who}: {n / rate:.1f} s")
    print("threads (thread-seconds):", ", ".join(f"{t} {n / rate:.1f}" for t, n in threads.most_common(8)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", nargs="?")
    parser.add_argument("pairs", nargs="?")
    parser.add_argument("--out", default="profile-build")
    parser.add_argument("--rate", type=int, default=50, help="samples per second and thread")
    parser.add_argument("--from-raw", help="group this raw py-spy recording instead of recording")
    args = parser.parse_args()
    if args.from_raw:
        group_raw(Path(args.from_raw), args.rate)
        return
    if not (args.recipe and args.pairs):
        parser.error("RECIPE and PAIRS are needed to record")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    raw = out / f"{args.recipe}.raw.txt"
    bench = Path(__file__).resolve().parent
    child = "import sys, bench_build; bench_build.child_build(*sys.argv[1:])"
    result = out / f"{args.recipe}.result.json"
    build = [sys.executable, "-c", child, args.recipe, args.pairs, str(out / f"out-{args.recipe}"), str(result)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(bench), *filter(None, [os.environ.get("PYTHONPATH")])])}
    spy = ["py-spy", "record", "--native", "--threads", "--idle", "--rate", str(args.rate), "--format", "raw"]
    done = subprocess.run([*spy, "--output", str(raw), "--", *build], env=env)
    if done.returncode != 0 or not raw.exists():
        raise SystemExit(f"py-spy or the build failed (exit status {done.returncode})")
    group_raw(raw, args.rate)


if __name__ == "__main__":
    main()
