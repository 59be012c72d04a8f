"""HDF5 shards: the one writer and the one reader shared by the paired builder and the synthesizer.

A shard file holds samples of one shape ``(T, H, W)``:

- ``sdr``  (N, T, H, W, 3) uint8:  BT.709 R'G'B' full-range code values (``round(rgb_sdr * 255)``)
- ``hdr``  (N, T, H, W, 3) uint16: SMPTE ST 2084 PQ BT.2020 R'G'B' code values (``round(rgb_pq * 65535)``,
  the HDRTV1K convention; ITU-R BT.2100 PQ signal, not 10-bit video codes)
- per-sample metadata: ``sample_id`` and ``source_id`` (strings), ``scene`` int32, ``sdr_frames`` / ``hdr_frames``
  (N, T) int64 frame indices in the source videos (or synthetic frame numbers), ``times`` (N, T) float64 seconds on
  the SDR timeline, ``crop`` (N, 4) int32 ``[x, y, w, h]`` in HDR-frame pixels, ``score`` float32 (alignment or
  quality score in [0, 1]) and ``meta`` (JSON string per sample).
- file attributes: ``schema_version``, ``frames`` / ``height`` / ``width``, ``count``, ``split`` (the folder the
  shard was written to; shards written before it was stored lack it), the encodings, and the producer's own
  (``recipe_hash``).

One HDF5 chunk per sample per array, compressed with Blosc2-LZ4 + byte shuffle (the hdf5plugin filter decodes
it; chunks are compressed by :func:`compress_chunk` and written directly; fast random reads: see
``bench/bench_shards.py``). Files are written under a temporary name and renamed when closed, so a
file named ``*.h5`` in ``shards/`` is always complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from datakit.errors import StoreError
from datakit.fsutil import published_mode, write_failure
from datakit.store.blosc import compress_bytes, frame_template, shuffle_params

SCHEMA_VERSION = 1
DEFAULT_MAX_SHARD_BYTES = 1 << 30  # uncompressed bytes per shard file before a new one is started

ENCODINGS = {
    "sdr": "uint8 BT.709 R'G'B' full range, value = round(signal * 255) (ITU-R BT.709 / BT.1886 display)",
    "hdr": "uint16 SMPTE ST 2084 PQ BT.2020 R'G'B', value = round(pq_code * 65535) (ITU-R BT.2100 PQ, HDRTV1K)",
    "layout": "arrays (N, T, H, W, 3), channels R, G, B",
    "crop": "[x, y, w, h] in HDR-frame pixels",
    "times": "seconds on the SDR timeline",
}

_STRING = None  # set lazily to h5py.string_dtype() so that importing this module stays light


@dataclass
class Sample:
    """One training/test sample: T frames of SDR and HDR, same crop, with where they came from."""

    sample_id: str
    source_id: str
    sdr: np.ndarray  # (T, H, W, 3) uint8 BT.709 R'G'B'
    hdr: np.ndarray  # (T, H, W, 3) uint16 PQ BT.2020 R'G'B' * 65535
    sdr_frames: np.ndarray | list[int]
    hdr_frames: np.ndarray | list[int]
    times: np.ndarray | list[float]
    crop: tuple[int, int, int, int] | list[int]
    scene: int = 0
    score: float = 1.0
    meta: dict[str, Any] = field(default_factory=dict)
    _hash: str | None = field(default=None, repr=False, compare=False)
    chunks: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    """Optional ``{"sdr": bytes, "hdr": bytes}``: the arrays already compressed by :func:`compress_chunk` (a
    producer thread may do it, so that the writer only writes)."""

    def validate(self) -> None:
        if self.sdr.dtype != np.uint8 or self.hdr.dtype != np.uint16:
            raise StoreError(f"sample {self.sample_id}: sdr must be uint8 and hdr uint16")
        if self.sdr.ndim != 4 or self.sdr.shape != self.hdr.shape or self.sdr.shape[-1] != 3:
            raise StoreError(
                f"sample {self.sample_id}: sdr {self.sdr.shape} and hdr {self.hdr.shape} must both be (T, H, W, 3)"
            )
        t = self.sdr.shape[0]
        for name in ("sdr_frames", "hdr_frames", "times"):
            if len(getattr(self, name)) != t:
                raise StoreError(f"sample {self.sample_id}: {name} must have {t} entries")

    def content_hash(self) -> str:
        """:func:`content_hash` of the pixels. Computed once (a producer thread may compute it before handing the
        sample to the writer)."""
        if self._hash is None:
            self._hash = content_hash(self.sdr, self.hdr)
        return self._hash

    def pack(self) -> None:
        """Hash and compress the pixels now (a producer thread: the writer then only writes) and let the arrays go.

        A builder's tiles are views into whole converted regions, which stayed alive until the writer had written
        every sample of the clip (1024 px tiles of 4K frames: about 0.2 GB per clip in flight). Afterwards ``sdr``
        and ``hdr`` are zero-stride placeholders with the same shape and type; the writer reads only their shapes
        and the chunks."""
        self.content_hash()
        self.chunks = {"sdr": compress_chunk(self.sdr), "hdr": compress_chunk(self.hdr)}
        self.sdr, self.hdr = (np.broadcast_to(np.zeros((), a.dtype), a.shape) for a in (self.sdr, self.hdr))


CONTENT_HASH = "xxh3_128"  # the algorithm of new content hashes (the prefix of their value)
_HASH_ALGORITHMS = ("xxh3_128", "sha256")


def content_hash(sdr: np.ndarray, hdr: np.ndarray, algorithm: str = CONTENT_HASH) -> str:
    """``"<algorithm>:<hex digest>"`` of the SDR then the HDR array's bytes in C order: identifies the pixels,
    not the file (compression and layout do not change it).

    XXH3-128 by default: a content hash detects damage and tells two builds apart, for which a non-cryptographic
    128-bit hash is enough, and it runs about 8x faster than sha256 here (the sparse protocols hash gigabytes of
    overlapping tiles). ``algorithm="sha256"`` gives the bare hex digest of manifests written before the
    algorithm was named (they still verify). Arrays that are views into a larger frame are hashed row by row,
    without a copy.
    """
    if algorithm == "sha256":
        digest: Any = hashlib.sha256()
    elif algorithm == "xxh3_128":
        import xxhash

        digest = xxhash.xxh3_128()
    else:
        raise StoreError(f"unknown content hash algorithm {algorithm!r}")
    for array in (sdr, hdr):
        item = array.itemsize
        if array.flags.c_contiguous or array.ndim < 3 or array.strides[-2:] != (array.shape[-1] * item, item):
            digest.update(np.ascontiguousarray(array).data)  # in place when contiguous
            continue
        rows = array.reshape(-1, *array.shape[-3:-1], array.shape[-1])  # (N, H, W, C): a crop of whole frames
        for plane in rows:
            for row in plane:  # (W, C) rows, each contiguous
                digest.update(row)
    return digest.hexdigest() if algorithm == "sha256" else f"{algorithm}:{digest.hexdigest()}"


def hash_matches(sdr: np.ndarray, hdr: np.ndarray, recorded: str) -> bool:
    """Whether the pixels hash to ``recorded``, in the algorithm it names (a bare hex digest is sha256); a
    record naming an unknown algorithm does not match (a damaged manifest is damage to report)."""
    algorithm, _, _ = recorded.rpartition(":")
    if (algorithm or "sha256") not in _HASH_ALGORITHMS:
        return False
    return content_hash(sdr, hdr, algorithm or "sha256") == recorded


_CODEC, _CLEVEL = "lz4", 5  # the shard filter's codec (byte shuffle first), for both writing paths


def shard_compression() -> dict[str, Any]:
    """h5py keyword arguments of the shard filter: Blosc2-LZ4 level 5 with byte shuffle (see bench_shards)."""
    import hdf5plugin

    return dict(hdf5plugin.Blosc2(cname=_CODEC, clevel=_CLEVEL, filters=hdf5plugin.Blosc2.SHUFFLE))


DROP_BEHIND_BYTES = 64 << 20  # a shard's writes are synced and dropped from the page cache this often
_BLOCK_BYTES = 512 << 10  # Blosc2 block target: bands of whole rows of every frame, about 512 kB


def compress_chunk(array: np.ndarray) -> bytes | np.ndarray:
    """One sample's array ``(T, H, W, C)`` compressed as the shard filter stores a chunk, for
    ``write_direct_chunk``.

    The HDF5 Blosc2 filter (id 32026, hdf5plugin) keeps each chunk as a Blosc2 N-dimensional frame (b2nd
    cframe) and decodes any valid one, whatever its block shape. Here (LZ4 level 5, byte shuffle: the parameters
    of :func:`shard_compression`) a block is a band of whole rows of every frame, as many rows as fit in about
    512 kB and divide the height; the bands are laid out in block order with one numpy copy and compressed in
    one Blosc2 call (several times faster than Blosc2's array path or the filter path through h5py), straight
    into the b2nd frame's buffer (:class:`datakit.store.blosc.FrameTemplate`; a uint8 array is returned then,
    bytes otherwise). Heights without such a divisor take Blosc2's array path.
    """
    import blosc2

    data = np.asarray(array)[None]  # may be a view into larger frames: the one copy below lays it out
    frames, height, width, channels = data.shape[1:]
    row_bytes = frames * width * channels * data.itemsize  # one row of every frame
    fit = max(1, _BLOCK_BYTES // row_bytes)
    block_h = max((d for d in range(1, min(height, fit) + 1) if height % d == 0), default=1)
    params = shuffle_params(_CODEC, data.itemsize, _CLEVEL)
    blocks = (1, frames, block_h, width, channels)
    if block_h < min(height, 8):  # no usable divisor (a prime height): let Blosc2 lay the blocks out
        data = np.ascontiguousarray(data)
        return bytes(blosc2.asarray(data, chunks=data.shape, blocks=blocks, cparams=params).to_cframe())
    # block-major order: row band by row band, each band holding that band of every frame (frames are alike,
    # so a block spanning them compresses several times better than one frame's rows)
    bands = np.ascontiguousarray(data.reshape(frames, height // block_h, block_h, width, channels).swapaxes(0, 1))
    params = shuffle_params(_CODEC, data.itemsize, _CLEVEL, blocksize=block_h * row_bytes)
    template = frame_template(data.shape, data.dtype.str, blocks, _CODEC, _CLEVEL, params.blocksize)
    frame_bytes = None if template is None else template.assemble(bands, params)
    if frame_bytes is not None:
        return frame_bytes
    chunk = compress_bytes(bands, params)
    frame = blosc2.empty(data.shape, dtype=data.dtype, chunks=data.shape, blocks=blocks, cparams=params)
    frame.schunk.update_chunk(0, chunk)
    return bytes(frame.to_cframe())


_SHARD_NAME = re.compile(r"(?P<source>.+)-(?P<t>[0-9]+)x(?P<h>[0-9]+)x(?P<w>[0-9]+)-(?P<k>[0-9]{3,})")
_TEMPORARY = re.compile(r"\.(?P<stem>.+)\.[a-z0-9_]+\.part\.h5")  # mkstemp's token: no dot in it


def shard_name(source_id: str, shape: tuple[int, int, int], k: int) -> str:
    """The file name of a source's ``k``-th shard of samples shaped ``(T, H, W)``:
    ``<source>-<T>x<H>x<W>-<k:03d>.h5``."""
    t, h, w = shape
    return f"{source_id}-{t}x{h}x{w}-{k:03d}.h5"


def shard_source(name: str) -> str | None:
    """The source id a shard file name belongs to, for a published shard (:func:`shard_name`) or one being
    written (``.<shard stem>.<token>.part.h5``); ``None`` for any other name.

    The id is what precedes the shape field, so ``sky`` and ``sky-2`` never claim each other's files (the
    name ends with ``-<T>x<H>x<W>-<k>``, which fixes where the id stops).
    """
    temporary = _TEMPORARY.fullmatch(name)
    stem = temporary.group("stem") if temporary else name.removesuffix(".h5") if name.endswith(".h5") else None
    match = _SHARD_NAME.fullmatch(stem) if stem else None
    return match.group("source") if match else None


class _DiskFile(io.RawIOBase):
    """The shard file as HDF5 writes it (h5py's ``fileobj`` driver): a write the disk refuses (full disk,
    read-only folder) is recorded in :attr:`error`, and HDF5 is not told.

    HDF5 cannot recover from a failed write of its own: a file whose flush or close failed cannot be closed
    again, and the library segfaults when it tries (again, or when the object is freed): this is how ``synth``
    crashed when the disk filled. Here HDF5 never sees the failure: what it writes after it is kept in memory
    (read back from there), so that the file still closes; the writer checks :attr:`error` after every call and
    removes the file.

    Written data goes to the disk behind the writer (:meth:`drop_behind`: every :data:`DROP_BEHIND_BYTES`, and
    at close): shards are written once and not read back by the build, so their pages leave the page cache
    instead of pushing out what the user keeps there, and the writes of a build reuse those pages. Copying into
    pages the kernel has not used for a while is what a buffered write costs: 3.6-5.0 CPU s per GB measured once
    on this project's virtual machine, 0.4-0.6 with the pages reused; how much a build gains depends on how long
    the machine's free memory has been free (``bench/bench_shard_writer.py``, ``docs/bench/findings-build.md``).
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        self._pos = 0
        self._size = 0
        self._unsynced = 0  # bytes written since the last drop_behind
        self._unwritten: list[tuple[int, bytes]] = []  # (offset, data) written after the failure
        self.error: OSError | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = len(view)
        data = os.pread(self._fd, n, self._pos)
        view[: len(data)] = data
        view[len(data) :] = bytes(n - len(data))
        for offset, blob in self._unwritten:
            lo, hi = max(offset, self._pos), min(offset + len(blob), self._pos + n)
            if lo < hi:
                view[lo - self._pos : hi - self._pos] = blob[lo - offset : hi - offset]
        self._pos += n
        return n

    def write(self, buffer: Any) -> int:
        data = memoryview(buffer).cast("B")
        if self.error is None:
            try:
                done = 0
                while done < len(data):
                    done += os.pwrite(self._fd, data[done:], self._pos + done)
            except OSError as error:
                self.error = error
        if self.error is not None:
            self._unwritten.append((self._pos, bytes(data)))
        self._pos += len(data)
        self._size = max(self._size, self._pos)
        self._unsynced += len(data)
        if self._unsynced >= DROP_BEHIND_BYTES:
            self.drop_behind()
        return len(data)

    def drop_behind(self) -> None:
        """Write what the file holds to the disk (``fdatasync``), then let its pages go from the page cache
        (``POSIX_FADV_DONTNEED``). A disk that refuses the data is recorded in :attr:`error`, as a write."""
        self._unsynced = 0
        if self.error is not None:
            return
        try:
            os.fdatasync(self._fd)
        except OSError as error:
            self.error = error
            return
        with contextlib.suppress(OSError, AttributeError):  # advice only (and not on every system)
            os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_DONTNEED)

    def truncate(self, size: int | None = None) -> int:
        size = self._pos if size is None else size
        if self.error is None:
            try:
                os.ftruncate(self._fd, size)
            except OSError as error:
                self.error = error
        self._size = size
        return size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


class _OpenShard:
    """One shard file being written (under a temporary name unique to this writer)."""

    def __init__(self, final: Path, shape: tuple[int, int, int], attrs: dict[str, Any]) -> None:
        import h5py

        self.final = final
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=".part.h5", dir=final.parent)
            os.fchmod(fd, published_mode())  # mkstemp makes 0600; a published shard has the umask's mode
            os.close(fd)
        except OSError as error:
            raise write_failure(error, final.parent) from None
        self.tmp = Path(tmp)
        self.count = 0
        self.bytes = 0
        self.rows: list[tuple[Any, ...]] = []
        self.disk: _DiskFile | None = None
        self.file: Any = None
        try:
            self.disk = _DiskFile(self.tmp)
            self.file = h5py.File(self.disk, "w")
            self._create(shape, attrs)
            self._check()
        except BaseException as error:
            self.abort()
            if isinstance(error, OSError):
                raise write_failure(error, self.tmp) from None
            raise

    def _check(self) -> None:
        """Raise the write the disk refused, naming the file and the cause."""
        if self.disk is not None and self.disk.error is not None:
            raise write_failure(self.disk.error, self.tmp)

    def _create(self, shape: tuple[int, int, int], attrs: dict[str, Any]) -> None:
        import h5py

        t, h, w = shape
        comp = shard_compression()
        string = h5py.string_dtype()
        for name, dtype in (("sdr", np.uint8), ("hdr", np.uint16)):
            self.file.create_dataset(
                name, shape=(0, t, h, w, 3), maxshape=(None, t, h, w, 3), dtype=dtype,
                chunks=(1, t, h, w, 3), **comp,
            )  # fmt: skip
        self.file.create_dataset("sample_id", shape=(0,), maxshape=(None,), dtype=string, chunks=(256,))
        self.file.create_dataset("source_id", shape=(0,), maxshape=(None,), dtype=string, chunks=(256,))
        self.file.create_dataset("meta", shape=(0,), maxshape=(None,), dtype=string, chunks=(64,))
        self.file.create_dataset("scene", shape=(0,), maxshape=(None,), dtype=np.int32, chunks=(256,))
        self.file.create_dataset("score", shape=(0,), maxshape=(None,), dtype=np.float32, chunks=(256,))
        for name, dtype in (("sdr_frames", np.int64), ("hdr_frames", np.int64), ("times", np.float64)):
            self.file.create_dataset(name, shape=(0, t), maxshape=(None, t), dtype=dtype, chunks=(256, t))
        self.file.create_dataset("crop", shape=(0, 4), maxshape=(None, 4), dtype=np.int32, chunks=(256, 4))
        self.pixels = {name: self.file[name] for name in ("sdr", "hdr")}
        self.file.attrs["schema_version"] = SCHEMA_VERSION
        self.file.attrs["frames"] = t
        self.file.attrs["height"] = h
        self.file.attrs["width"] = w
        self.file.attrs["split"] = self.final.parent.name  # what verify compares with the manifest and the folder
        for key, value in ENCODINGS.items():
            self.file.attrs[f"encoding_{key}"] = value
        for key, value in attrs.items():
            self.file.attrs[key] = value

    def append(self, sample: Sample) -> int:
        """Write the pixels now (one chunk each); the small per-sample datasets are written at :meth:`close`."""
        index = self.count
        n = index + 1
        for name, array in (("sdr", sample.sdr), ("hdr", sample.hdr)):
            dataset = self.pixels[name]
            dataset.resize(n, axis=0)
            chunk = sample.chunks.get(name) if sample.chunks else None
            if chunk is None:
                chunk = compress_chunk(array)
            dataset.id.write_direct_chunk((index,) + (0,) * array.ndim, chunk)
        self._check()
        self.rows.append(
            (
                sample.sample_id,
                sample.source_id,
                json.dumps(sample.meta, sort_keys=True),
                sample.scene,
                sample.score,
                np.asarray(sample.sdr_frames, dtype=np.int64),
                np.asarray(sample.hdr_frames, dtype=np.int64),
                np.asarray(sample.times, dtype=np.float64),
                np.asarray(sample.crop, dtype=np.int32),
            )
        )
        self.count = n
        self.bytes += sample.sdr.nbytes + sample.hdr.nbytes
        return index

    def _write_rows(self) -> None:
        if not self.rows:
            return
        columns = list(zip(*self.rows, strict=True))
        names = ("sample_id", "source_id", "meta", "scene", "score", "sdr_frames", "hdr_frames", "times", "crop")
        for name, values in zip(names, columns, strict=True):
            dataset = self.file[name]
            dataset.resize(len(values), axis=0)
            dataset[:] = np.stack(values) if isinstance(values[0], np.ndarray) else list(values)

    def close(self) -> None:
        """Finish the file and rename it into place (the caller aborts it if this raises)."""
        from datakit.engine import ensure_parent_alive

        self._write_rows()
        self.file.attrs["count"] = self.count
        file, self.file = self.file, None
        file.close()
        if self.disk is not None:
            self.disk.drop_behind()  # on the disk before it is published under its name
        self._check()
        disk, self.disk = self.disk, None
        if disk is not None:
            disk.close()
        ensure_parent_alive()  # a worker whose run is gone publishes nothing
        try:
            os.replace(self.tmp, self.final)
        except OSError as error:
            raise write_failure(error, self.final) from None

    def abort(self) -> None:
        """Drop the file and remove it. Never raises: the removal does not depend on closing the file (HDF5's
        close cannot fail here, see :class:`_DiskFile`, but the file goes whatever happens)."""
        file, disk, self.file, self.disk = self.file, self.disk, None, None
        try:
            if file is not None:
                with contextlib.suppress(Exception):
                    file.close()
            if disk is not None:
                with contextlib.suppress(Exception):
                    disk.close()
        finally:
            with contextlib.suppress(OSError):
                self.tmp.unlink()


class ShardWriter:
    """Append :class:`Sample` objects to size-bounded HDF5 shards, one file series per sample shape.

    Shards are named ``{root}/{split}/{prefix}-{T}x{H}x{W}-{k:03d}.h5`` (:func:`shard_name`). :meth:`add` returns
    the manifest record of the sample (shard path relative to ``root``, index inside it, content hash). Use as a
    context manager: on an exception the files being written are removed, on success they are renamed into place.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        prefix: str,
        *,
        max_bytes: int = DEFAULT_MAX_SHARD_BYTES,
        attrs: dict[str, Any] | None = None,
    ) -> None:
        self.root = Path(root)
        self.prefix = prefix
        self.max_bytes = max_bytes
        self.attrs = dict(attrs or {})
        self._open: dict[tuple[str, tuple[int, int, int]], _OpenShard] = {}
        self._counters: dict[tuple[str, tuple[int, int, int]], int] = {}

    def add(self, sample: Sample, split: str) -> dict[str, Any]:
        sample.validate()
        t, h, w = sample.sdr.shape[:3]
        key = (split, (t, h, w))
        shard = self._open.get(key)
        if shard is not None and shard.bytes + sample.sdr.nbytes + sample.hdr.nbytes > self.max_bytes:
            del self._open[key]
            try:
                shard.close()
            except BaseException:
                shard.abort()
                raise
            shard = None
        if shard is None:
            k = self._counters.get(key, 0)
            self._counters[key] = k + 1
            final = self.root / split / shard_name(self.prefix, (t, h, w), k)
            shard = self._open[key] = _OpenShard(final, (t, h, w), self.attrs)
        index = shard.append(sample)
        return {
            "sample_id": sample.sample_id,
            "split": split,
            "source_id": sample.source_id,
            "shard": shard.final.relative_to(self.root).as_posix(),
            "index": index,
            "frames": t,
            "height": h,
            "width": w,
            "sdr_frames": [int(v) for v in sample.sdr_frames],
            "hdr_frames": [int(v) for v in sample.hdr_frames],
            "times": [round(float(v), 6) for v in sample.times],
            "crop": [int(v) for v in sample.crop],
            "scene": int(sample.scene),
            "score": round(float(sample.score), 6),
            "content_hash": sample.content_hash(),
            "meta": sample.meta,
        }

    def close(self) -> None:
        """Publish every open shard; if one fails, the ones not yet published are removed."""
        try:
            while self._open:
                key = next(iter(self._open))
                shard = self._open.pop(key)
                try:
                    shard.close()
                except BaseException:
                    shard.abort()
                    raise
        finally:
            self.abort()

    def abort(self) -> None:
        """Remove every shard still being written (never raises)."""
        while self._open:
            self._open.popitem()[1].abort()

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


_PER_SAMPLE = {  # per-sample datasets: name -> (dtype kind, trailing shape given (T, H, W))
    "sample_id": ("O", lambda t: ()),
    "source_id": ("O", lambda t: ()),
    "meta": ("O", lambda t: ()),
    "scene": ("i", lambda t: ()),
    "score": ("f", lambda t: ()),
    "sdr_frames": ("i", lambda t: (t,)),
    "hdr_frames": ("i", lambda t: (t,)),
    "times": ("f", lambda t: (t,)),
    "crop": ("i", lambda t: (4,)),
}


def check_shard_file(file: Any, path: Path) -> None:
    """The one check of a shard file's attributes and datasets, run when :class:`ShardReader` opens it.

    Shards are untrusted input: the schema version; ``sdr`` uint8 and ``hdr`` uint16, both ``(N, T, H, W, 3)``;
    every per-sample dataset present with N rows of the right kind and width; the
    ``frames`` / ``height`` / ``width`` attributes equal to the arrays' shape; and every dataset chunked and
    stored in the file itself (HDF5 external storage and virtual datasets, which make a read return the bytes of
    other files, are refused). Raises :class:`StoreError` naming ``path``.
    """
    import h5py

    version = file.attrs.get("schema_version", -1)
    if not isinstance(version, int | np.integer) or int(version) != SCHEMA_VERSION:
        raise StoreError(f"{path}: shard schema version {version!r}, expected {SCHEMA_VERSION}")
    datasets = {}
    for name in ("sdr", "hdr", *_PER_SAMPLE):
        item = file.get(name)
        if not isinstance(item, h5py.Dataset):
            raise StoreError(f"{path}: not a datakit shard (no dataset {name!r})")
        if item.is_virtual or item.external or item.id.get_create_plist().get_layout() != h5py.h5d.CHUNKED:
            raise StoreError(f"{path}: dataset {name!r} is not chunked inside the file (external or virtual storage)")
        datasets[name] = item
    sdr, hdr = datasets["sdr"], datasets["hdr"]
    if sdr.dtype != np.uint8 or hdr.dtype != np.uint16 or sdr.ndim != 5 or sdr.shape != hdr.shape or sdr.shape[-1] != 3:
        raise StoreError(f"{path}: sdr {sdr.dtype} {sdr.shape} / hdr {hdr.dtype} {hdr.shape}: expected uint8 and "
                         "uint16 arrays (N, T, H, W, 3)")  # fmt: skip
    count, t, h, w = sdr.shape[:4]
    for key, value in (("frames", t), ("height", h), ("width", w)):
        stored = file.attrs.get(key, value)
        if not isinstance(stored, int | np.integer) or int(stored) != value:
            raise StoreError(f"{path}: attribute {key} = {stored!r} but the arrays hold {value}")
    for name, (kind, trailing) in _PER_SAMPLE.items():
        dataset = datasets[name]
        if dataset.shape != (count, *trailing(t)) or dataset.dtype.kind != kind:
            raise StoreError(f"{path}: per-sample dataset {name!r} is {dataset.dtype} {dataset.shape}, expected "
                             f"{count} rows of {trailing(t) or 'one value'}")  # fmt: skip


class ShardReader:
    """Read samples from one shard file; opens the HDF5 file lazily (once per process/DataLoader worker).

    The file is checked when opened (:func:`check_shard_file`); a chunk that fails to decode raises
    :class:`StoreError` naming the shard and the sample, with the advice to run ``datakit verify``.
    """

    advise_verify = True
    """Whether a damaged-chunk error advises ``datakit verify`` (verify itself turns it off)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file = None
        if not self.path.is_file():
            raise StoreError(f"{self.path}: shard file not found")

    @property
    def file(self):  # h5py.File, imported lazily
        if self._file is None:
            import h5py
            import hdf5plugin  # noqa: F401  (registers the Blosc2 filter)

            try:
                handle = h5py.File(self.path, "r")
            except OSError as error:
                raise StoreError(f"{self.path}: not a readable HDF5 shard ({error})") from None
            try:
                check_shard_file(handle, self.path)
            except BaseException:
                handle.close()
                raise
            self._file = handle
        return self._file

    def __len__(self) -> int:
        return int(self.file["sdr"].shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """(T, H, W) of every sample in this shard."""
        return tuple(int(v) for v in self.file["sdr"].shape[1:4])  # type: ignore[return-value]

    def _damaged(self, index: int, error: Exception) -> StoreError:
        try:
            name = f" ({self.file['sample_id'][index].decode()})"
        except Exception:  # the metadata may be damaged too
            name = ""
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if not self.advise_verify:
            return StoreError(f"{self.path}: sample {index}{name} unreadable ({first})")
        root = self.path.parent.parent.parent if self.path.parent.parent.name == "shards" else self.path.parent
        return StoreError(f"{self.path}: sample {index}{name} unreadable ({first}); run `datakit verify {root}`")

    def _check_index(self, index: int) -> int:
        count = len(self)
        if not isinstance(index, int | np.integer) or not 0 <= int(index) < count:
            raise StoreError(f"{self.path}: sample index {index!r} outside the {count} samples of this shard")
        return int(index)

    def window(
        self, index: int, frames: slice = slice(None), rows: slice = slice(None), cols: slice = slice(None)
    ) -> tuple[np.ndarray, np.ndarray]:
        """(sdr uint8, hdr uint16) arrays ``(t, h, w, 3)`` of a window of one sample (reads its whole chunk)."""
        index = self._check_index(index)
        try:
            return self.file["sdr"][index, frames, rows, cols], self.file["hdr"][index, frames, rows, cols]
        except OSError as error:  # h5py: "Can't read data (filter returned failure ...)"
            raise self._damaged(index, error) from None

    def arrays(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(sdr uint8, hdr uint16) arrays (T, H, W, 3) of one sample."""
        return self.window(index)

    def crop(self, index: int, y: int, x: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """A spatial window of one sample (reads the whole chunk, returns the window)."""
        return self.window(index, slice(None), slice(y, y + h), slice(x, x + w))

    def record(self, index: int) -> dict[str, Any]:
        """The per-sample metadata stored with sample ``index`` (what its manifest record must repeat)."""
        index = self._check_index(index)
        return self._records(slice(index, index + 1), index)[0]

    def records(self) -> list[dict[str, Any]]:
        """:meth:`record` of every sample, each per-sample dataset read once."""
        return self._records(slice(None), 0)

    def _records(self, rows: slice, first: int) -> list[dict[str, Any]]:
        f = self.file
        try:
            columns = {name: f[name][rows] for name in _PER_SAMPLE}
            return [
                {
                    "sample_id": columns["sample_id"][k].decode(),
                    "source_id": columns["source_id"][k].decode(),
                    "scene": int(columns["scene"][k]),
                    "score": float(columns["score"][k]),
                    "sdr_frames": columns["sdr_frames"][k].tolist(),
                    "hdr_frames": columns["hdr_frames"][k].tolist(),
                    "times": columns["times"][k].tolist(),
                    "crop": columns["crop"][k].tolist(),
                    "meta": json.loads(columns["meta"][k]),
                }
                for k in range(len(columns["sample_id"]))
            ]
        except (OSError, ValueError, AttributeError) as error:  # a damaged chunk, bytes that are not UTF-8 / JSON
            raise self._damaged(first, error) from None

    def __iter__(self) -> Iterator[tuple[dict[str, Any], np.ndarray, np.ndarray]]:
        for index in range(len(self)):
            yield (self.record(index), *self.arrays(index))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __getstate__(self) -> dict[str, Any]:  # picklable for DataLoader workers: reopen lazily
        return {"path": self.path, "_file": None}


def list_shards(root: str | os.PathLike[str], split: str | None = None) -> list[Path]:
    """All complete shard files under ``root`` (``root/shards/<split>/*.h5`` or ``root/<split>/*.h5``)."""
    root = Path(root)
    base = root / "shards" if (root / "shards").is_dir() else root
    pattern = f"{split}/*.h5" if split else "*/*.h5"
    return sorted(p for p in base.glob(pattern) if not p.name.startswith("."))
