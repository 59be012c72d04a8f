"""The C allocator's policy for long builds: keep freed memory for reuse instead of handing it back page by page.

A paired build allocates and frees the same large arrays again and again (converted frames and tiles, chunk
buffers, a few MB to tens of MB each). glibc's defaults give blocks above a moving threshold (128 kB, rising to
at most 32 MB) their own ``mmap`` and return the free top of the heap past twice that threshold, so the next
array of the same size faults every page in again and the kernel zeroes it: perf saw a quarter of a 1080p
KPN-MFI build's CPU in the kernel, mostly ``clear_page``. :func:`keep_freed_memory` sets the three thresholds once
per process (glibc ``mallopt``: ``M_MMAP_THRESHOLD`` at its maximum, ``M_TRIM_THRESHOLD`` and ``M_TOP_PAD`` large),
so freed blocks stay in the heap and are reused; the cost is that the process's resident size stays near its peak
(the frame store's budget bounds that peak; measured in ``bench/bench_build.py``). Other C libraries: nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import threading

__all__ = ["MMAP_THRESHOLD_BYTES", "TOP_PAD_BYTES", "TRIM_THRESHOLD_BYTES", "keep_freed_memory"]

# glibc malloc.h
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's largest (HEAP_MAX_SIZE / 2 on 64-bit): blocks below come from the heap
TRIM_THRESHOLD_BYTES = 1 << 30  # free heap top kept before any is returned
TOP_PAD_BYTES = 64 << 20  # extra asked of the kernel each time the heap grows

_lock = threading.Lock()
_done: bool | None = None


def keep_freed_memory() -> bool:
    """Set the policy (see the module doc) once for this process; True when glibc took all three settings."""
    global _done
    with _lock:
        if _done is None:
            _done = _set_glibc_thresholds()
        return _done


def _set_glibc_thresholds() -> bool:
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
                (_M_TOP_PAD, TOP_PAD_BYTES))  # fmt: skip
    return all(mallopt(option, value) == 1 for option, value in settings)
