"""The build's allocator policy (datakit.allocator): glibc takes every setting, once per process."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the policy is glibc's mallopt")
def test_glibc_takes_the_thresholds_and_large_blocks_come_from_the_heap() -> None:
    # in a child: the policy is process-wide. A 16 MB block freed and asked for again is served from the heap
    # (glibc's default would have given it its own mmap: the arena's in-use bytes would not count it).
    code = """
import ctypes, numpy as np
from datakit.allocator import keep_freed_memory
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
assert keep_freed_memory() and keep_freed_memory()
mapped = libc.mallinfo2().hblkhd
block = libc.malloc(16 << 20)
print(libc.mallinfo2().hblkhd - mapped)
libc.free(block)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert int(out) == 0  # not mmapped on its own
