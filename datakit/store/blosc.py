"""Blosc2 chunk compression that lets other threads run.

python-blosc2's ``compress2`` keeps the GIL while it compresses, so the builder's render threads, its decoding
loop and its writer take turns with it. The same C library ships inside the python-blosc2 wheel
(``blosc2/lib/libblosc2.so``); called through ctypes, which releases the GIL for the call, it compresses while
Python threads go on. Calls go through the library's global context, one at a time (its own mutex, and ours
around the settings). When the library cannot be loaded (or for other codecs), :func:`compress_bytes` calls
``compress2``; the two produce chunks of the same size that decode to the same bytes (tested).
"""

from __future__ import annotations

import ctypes
import threading
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


def compress_bytes(data: np.ndarray, cparams: Any) -> bytes:
    """One Blosc2 chunk of ``data`` (made C-contiguous) with ``cparams`` (a ``blosc2.CParams``), as
    ``blosc2.compress2`` makes it. LZ4 with byte shuffle alone (the shards' codec) takes the GIL-free path."""
    import blosc2

    data = np.ascontiguousarray(data)
    lib = _load()
    filters = [f for f in cparams.filters if f != blosc2.Filter.NOFILTER]
    if lib is None or cparams.codec != blosc2.Codec.LZ4 or filters != [blosc2.Filter.SHUFFLE]:
        return bytes(blosc2.compress2(data, cparams=cparams))
    dest = np.empty(data.nbytes + _MAX_OVERHEAD, np.uint8)
    with _lock:  # the settings are the library's globals
        lib.blosc1_set_blocksize(cparams.blocksize)
        size = lib.blosc2_compress(cparams.clevel, _BLOSC_SHUFFLE, cparams.typesize, data.ctypes.data, data.nbytes,
                                   dest.ctypes.data, dest.nbytes)  # fmt: skip
    if size <= 0:
        raise RuntimeError(f"Blosc2 compression failed ({size})")
    return dest[:size].tobytes()
