"""Shard write size and random-read rate per HDF5 filter, against reading the same tiles from PNG files.

Samples are (T=10, 256, 256, 3) clips cut from the real CC0 HDR images (PQ uint16 HDR, a tone-mapped uint8 SDR),
the shape of an HDRTVMF1K training sample. Reads are in random order, from the page cache (files were just
written), one sample = the SDR and HDR arrays of all T frames. Prints samples/s, the ratio to the PNG baseline
and the size on disk. Run: ``python bench/bench_shards.py [--samples 120]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("BLOSC_NTHREADS", "1")

import cv2
import h5py
import hdf5plugin
import numpy as np

from datakit.color.transfer import st2084_inverse_eotf
from datakit.io.images import read_hdr_image
from datakit.report.images import hdr_view
from datakit.store.shards import compress_chunk, shard_compression

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT.parent / "shared" / "data" / "hdri", ROOT / "tests" / "data" / "hdri"]
T, S = 10, 256


def make_samples(n: int, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    folder = next(p for p in SOURCES if p.is_dir())
    images = []
    for path in sorted(folder.glob("*.exr")):
        rgb = read_hdr_image(path).rgb_linear
        if rgb.shape[0] < S + T * 4:
            rgb = cv2.resize(rgb, (rgb.shape[1] * 3, rgb.shape[0] * 3), interpolation=cv2.INTER_CUBIC)
        images.append(rgb * (40.0 / max(float(np.median(rgb)), 1e-6)))
    samples = []
    for i in range(n):
        img = images[i % len(images)]
        y = int(rng.integers(0, img.shape[0] - S - T * 2))
        x = int(rng.integers(0, img.shape[1] - S - T * 2))
        clip = np.stack([img[y + 2 * t : y + 2 * t + S, x + 2 * t : x + 2 * t + S] for t in range(T)])
        pq = st2084_inverse_eotf(np.clip(clip, 0, 10000))
        hdr = np.round(pq * 65535).astype(np.uint16)
        sdr = np.stack([hdr_view(f) for f in hdr])
        samples.append((sdr, hdr))
    return samples


def write_h5(path: Path, samples, compression: dict | None) -> None:
    """``compression=None``: the shard writer's way, chunks compressed by ``compress_chunk`` and written directly."""
    with h5py.File(path, "w") as f:
        shape = (len(samples), T, S, S, 3)
        kwargs = shard_compression() if compression is None else compression
        sdr = f.create_dataset("sdr", shape, np.uint8, chunks=(1, T, S, S, 3), **kwargs)
        hdr = f.create_dataset("hdr", shape, np.uint16, chunks=(1, T, S, S, 3), **kwargs)
        for i, (s, h) in enumerate(samples):
            if compression is None:
                sdr.id.write_direct_chunk((i, 0, 0, 0, 0), compress_chunk(s))
                hdr.id.write_direct_chunk((i, 0, 0, 0, 0), compress_chunk(h))
            else:
                sdr[i], hdr[i] = s, h


def read_h5(path: Path, order: np.ndarray) -> float:
    with h5py.File(path, "r") as f:
        sdr, hdr = f["sdr"], f["hdr"]
        start = time.perf_counter()
        for i in order:
            sdr[i], hdr[i]
        return len(order) / (time.perf_counter() - start)


def write_png(folder: Path, samples) -> None:
    folder.mkdir()
    for i, (s, h) in enumerate(samples):
        for t in range(T):
            cv2.imwrite(str(folder / f"{i:05d}_{t}_sdr.png"), cv2.cvtColor(s[t], cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(folder / f"{i:05d}_{t}_hdr.png"), cv2.cvtColor(h[t], cv2.COLOR_RGB2BGR))


def read_png(folder: Path, order: np.ndarray) -> float:
    start = time.perf_counter()
    for i in order:
        for t in range(T):
            cv2.imread(str(folder / f"{i:05d}_{t}_sdr.png"), cv2.IMREAD_UNCHANGED)
            cv2.imread(str(folder / f"{i:05d}_{t}_hdr.png"), cv2.IMREAD_UNCHANGED)
    return len(order) / (time.perf_counter() - start)


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*")) if path.is_dir() else path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=120)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    samples = make_samples(args.samples, rng)
    order = rng.permutation(len(samples))
    shuffle = hdf5plugin.Blosc2.SHUFFLE
    filters = {
        "none": {},
        "datakit shards (compress_chunk)": None,
        "blosc2-lz4+shuffle": dict(hdf5plugin.Blosc2(cname="lz4", clevel=5, filters=shuffle)),
        "blosc2-zstd3+shuffle": dict(hdf5plugin.Blosc2(cname="zstd", clevel=3, filters=shuffle)),
        "blosc-lz4+shuffle": dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE)),
        "blosc-lz4+bitshuffle": dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.BITSHUFFLE)),
        "gzip-1": {"compression": "gzip", "compression_opts": 1},
        "lzf": {"compression": "lzf"},
    }
    raw = sum(s.nbytes + h.nbytes for s, h in samples)
    with tempfile.TemporaryDirectory() as tmp:
        png_dir = Path(tmp) / "png"
        write_png(png_dir, samples)
        read_png(png_dir, order[:10])  # warm the page cache
        png_rate = read_png(png_dir, order)
        print(f"{len(samples)} samples of ({T}, {S}, {S}, 3), raw {raw / 1e6:.0f} MB, random order, page cache")
        print(f"{'format':32s} {'samples/s':>10s} {'x PNG':>7s} {'MB':>8s} {'x raw':>6s} {'write MB/s':>10s}")
        print(f"{'16-bit + 8-bit PNG files':32s} {png_rate:10.1f} {1.0:7.2f} {size_of(png_dir) / 1e6:8.1f} "
              f"{raw / size_of(png_dir):6.2f}")  # fmt: skip
        for name, compression in filters.items():
            path = Path(tmp) / f"{name.split()[0]}.h5"
            start = time.perf_counter()
            write_h5(path, samples, compression)
            write_rate = raw / 1e6 / (time.perf_counter() - start)
            read_h5(path, order[:10])
            rate = read_h5(path, order)
            print(
                f"{name:32s} {rate:10.1f} {rate / png_rate:7.2f} {size_of(path) / 1e6:8.1f} {raw / size_of(path):6.2f}"
                f" {write_rate:10.0f}"
            )


if __name__ == "__main__":
    main()
