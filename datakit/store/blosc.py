"""Blosc2 chunk compression that lets other threads run, and one-chunk frames assembled without copies.

python-blosc2's ``compress2`` keeps the GIL while it compresses, so the builder's render threads, its decoding
loop and its writer take turns with it. The same C library ships inside the python-blosc2 wheel
(``blosc2/lib/libblosc2.so``); called through ctypes, which releases the GIL for the call, it compresses while
Python threads go on. Calls go through the library's global context, one at a time (its own mutex, and ours
around the settings). When the library cannot be loaded (or for other codecs), :func:`compress_bytes` calls
``compress2``; the two produce chunks of the same size that decode to the same bytes (tested).

The HDF5 filter stores each chunk as a Blosc2 N-dimensional contiguous frame. python-blosc2's ``to_cframe``
copies the compressed bytes several times and holds the GIL while it does (a quarter of the compression time);
:class:`FrameTemplate` compresses straight into the frame's buffer and fills in the two sizes that change,
learnt from frames python-blosc2 makes (tests compare the bytes with ``to_cframe``'s).
"""

from __future__ import annotations

import ctypes
import functools
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

_BLOSC_SHUFFLE = 1  # blosc2.h: byte shuffle
_MAX_OVERHEAD = 32  # blosc2.h: BLOSC2_MAX_OVERHEAD (extended header)
_lock = threading.Lock()
_library: Any = None
_loaded = False


def _load() -> Any:
    """The C library with LZ4, one internal thread and python-blosc2's default split mode set, or ``None``."""
    global _library, _loaded
    with _lock:
        if _loaded:
            return _library
        _loaded = True
        try:
            import blosc2

            lib = ctypes.CDLL(str(Path(blosc2.__file__).parent / "lib" / "libblosc2.so"))
            lib.blosc2_init()
            lib.blosc1_set_compressor.argtypes = [ctypes.c_char_p]
            lib.blosc2_set_nthreads.argtypes = [ctypes.c_int16]
            lib.blosc1_set_splitmode.argtypes = [ctypes.c_int]
            lib.blosc1_set_blocksize.argtypes = [ctypes.c_size_t]
            lib.blosc2_compress.argtypes = [
                ctypes.c_int, ctypes.c_int, ctypes.c_int32, ctypes.c_void_p, ctypes.c_int32, ctypes.c_void_p,
                ctypes.c_int32,
            ]  # fmt: skip
            if lib.blosc1_set_compressor(b"lz4") < 0:
                return None
            lib.blosc2_set_nthreads(1)
            lib.blosc1_set_splitmode(blosc2.CParams().splitmode.value)
            _library = lib
        except (OSError, AttributeError, ImportError):
            _library = None
        return _library


def compress_into(data: np.ndarray, cparams: Any, dest: np.ndarray) -> int:
    """Compress ``data`` (made C-contiguous) into ``dest`` (uint8, at least ``data.nbytes`` + 32 bytes) as one
    Blosc2 chunk with ``cparams`` (a ``blosc2.CParams``), as ``blosc2.compress2`` makes it; returns its size.
    LZ4 with byte shuffle alone (the shards' codec) takes the GIL-free path."""
    import blosc2

    data = np.ascontiguousarray(data)
    if dest.dtype != np.uint8 or not dest.flags.c_contiguous or dest.nbytes < data.nbytes + _MAX_OVERHEAD:
        raise ValueError("dest must be a contiguous uint8 buffer of at least data.nbytes + 32 bytes")
    lib = _load()
    filters = [f for f in cparams.filters if f != blosc2.Filter.NOFILTER]
    if lib is None or cparams.codec != blosc2.Codec.LZ4 or filters != [blosc2.Filter.SHUFFLE]:
        chunk = blosc2.compress2(data, cparams=cparams)
        dest[: len(chunk)] = np.frombuffer(chunk, np.uint8)
        return len(chunk)
    with _lock:  # the settings are the library's globals
        lib.blosc1_set_blocksize(cparams.blocksize)
        size = lib.blosc2_compress(cparams.clevel, _BLOSC_SHUFFLE, cparams.typesize, data.ctypes.data, data.nbytes,
                                   dest.ctypes.data, dest.nbytes)  # fmt: skip
    if size <= 0:
        raise RuntimeError(f"Blosc2 compression failed ({size})")
    return int(size)


def compress_bytes(data: np.ndarray, cparams: Any) -> bytes:
    """One Blosc2 chunk of ``data`` with ``cparams``, as bytes (see :func:`compress_into`)."""
    dest = np.empty(np.asarray(data).nbytes + _MAX_OVERHEAD, np.uint8)
    return dest[: compress_into(data, cparams, dest)].tobytes()


# A Blosc2 contiguous frame (cframe, c-blosc2 README_CFRAME_FORMAT) is a msgpack header, the chunks, an index
# of chunk offsets and a trailer. With one chunk its offset is 0, so a frame of one shape, type, block shape
# and codec differs from another only in the chunk and two header fields: the frame's length and the chunk's
# compressed size, both big-endian 64-bit integers after their msgpack markers.
TEMPLATE_MAX_BYTES = 64 << 20  # larger chunks (whole-frame test clips) take to_cframe: learning costs a few copies
_FRAME_LENGTH = (15, 0xCF)  # offset of the msgpack marker, the marker (uint64)
_COMPRESSED_SIZE = (38, 0xD3)  # (int64)


@dataclass(frozen=True)
class FrameTemplate:
    """The parts of a one-chunk b2nd cframe that do not depend on the chunk (see :func:`frame_template`)."""

    header: bytes
    tail: bytes

    def assemble(self, data: np.ndarray, cparams: Any) -> np.ndarray | None:
        """The cframe of ``data`` (laid out in block order) as a uint8 array: compressed in place after the
        header, then the header's two size fields patched. No copy of the compressed bytes. ``None`` for a
        chunk Blosc2 stores as a special value (all zeros: a 32-byte chunk the frame keeps in its index)."""
        data = np.asarray(data)
        head, tail = len(self.header), len(self.tail)
        out = np.empty(head + data.nbytes + _MAX_OVERHEAD + tail, np.uint8)
        size = compress_into(data, cparams, out[head : head + data.nbytes + _MAX_OVERHEAD])
        if size <= _MAX_OVERHEAD:
            return None
        out[:head] = np.frombuffer(self.header, np.uint8)
        out[head + size : head + size + tail] = np.frombuffer(self.tail, np.uint8)
        total = head + size + tail
        for (at, _), value in ((_FRAME_LENGTH, total), (_COMPRESSED_SIZE, size)):
            out[at + 1 : at + 9] = np.frombuffer(value.to_bytes(8, "big"), np.uint8)
        # give the unused tail back (realloc shrinks in place, no copy): a view out[:total] would keep the whole
        # uncompressed-size buffer alive as long as the chunk waits for the writer
        out.resize((total,), refcheck=False)
        return out


@functools.lru_cache(maxsize=32)
def frame_template(
    shape: tuple[int, ...], dtype: str, blocks: tuple[int, ...], codec: str, clevel: int, blocksize: int
) -> FrameTemplate | None:
    """The header and tail that python-blosc2 writes around one shuffled ``codec`` chunk of an N-dimensional array
    (``chunks`` = ``shape``), learnt from two frames it makes of different data; ``None`` when the two do not
    differ only where :class:`FrameTemplate` patches them (another frame layout: callers use ``to_cframe``)."""
    import blosc2

    params = shuffle_params(codec, np.dtype(dtype).itemsize, clevel, blocksize)
    count = int(np.prod(shape))
    if count * np.dtype(dtype).itemsize > TEMPLATE_MAX_BYTES:
        return None
    frames = []
    noise = np.random.default_rng(0).integers(0, 256, count * np.dtype(dtype).itemsize, np.uint8).view(dtype)
    for probe in (np.resize(np.arange(1, 252).astype(dtype), count), noise):
        chunk = compress_bytes(probe, params)
        array = blosc2.empty(shape, dtype=dtype, chunks=shape, blocks=blocks, cparams=params)
        array.schunk.update_chunk(0, chunk)
        frames.append((chunk, bytes(array.to_cframe())))
    parts = []
    for chunk, frame in frames:
        at = frame.find(chunk)
        if at <= _COMPRESSED_SIZE[0] + 8:
            return None
        header, tail = bytearray(frame[:at]), frame[at + len(chunk) :]
        for (mark, code), value in ((_FRAME_LENGTH, len(frame)), (_COMPRESSED_SIZE, len(chunk))):
            if header[mark] != code or int.from_bytes(header[mark + 1 : mark + 9], "big") != value:
                return None
            header[mark + 1 : mark + 9] = bytes(8)
        parts.append((bytes(header), tail))
    if parts[0] != parts[1] or len(frames[0][0]) == len(frames[1][0]):
        return None
    return FrameTemplate(*parts[0])


def shuffle_params(codec: str, typesize: int, clevel: int, blocksize: int = 0) -> Any:
    """``blosc2.CParams`` of the shards' chunks: ``codec`` (``"lz4"``...) after a byte shuffle, one thread;
    ``blocksize=0`` lets Blosc2 choose."""
    import blosc2

    return blosc2.CParams(
        codec=blosc2.Codec[codec.upper()], clevel=clevel, typesize=typesize, nthreads=1, blocksize=blocksize,
        filters=[blosc2.Filter.SHUFFLE], filters_meta=[0],
    )  # fmt: skip
