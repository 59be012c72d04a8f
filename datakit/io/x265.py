"""Checks of user-given libx265 parameters (``--x265-params k=v:k=v``) before an encode starts.

FFmpeg's libx265 wrapper splits the string into ``key=value`` pairs and hands each to ``x265_param_parse``; an
unknown name or a bad value only logs a warning and the encode goes on without it, and a string that does not
split fails deep inside ``avcodec_open2``. :func:`check_x265_params` asks the same libx265 that PyAV bundles
(``x265_param_parse`` on a default parameter set, through ctypes) and refuses what it would reject.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
import re

from datakit.errors import InputError

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_BAD_NAME, _BAD_VALUE = -1, -2  # x265.h: X265_PARAM_BAD_NAME, X265_PARAM_BAD_VALUE


@functools.cache
def _libx265() -> ctypes.CDLL | None:
    """PyAV's bundled libx265 (``av.libs/libx265-*.so*``), or ``None`` where it cannot be found."""
    import av

    folder = os.path.join(os.path.dirname(os.path.dirname(av.__file__)), "av.libs")
    for path in sorted(glob.glob(os.path.join(folder, "libx265*.so*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        lib.x265_param_alloc.restype = ctypes.c_void_p
        lib.x265_param_default.argtypes = [ctypes.c_void_p]
        lib.x265_param_free.argtypes = [ctypes.c_void_p]
        lib.x265_param_parse.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
        lib.x265_param_parse.restype = ctypes.c_int
        return lib
    return None


def split_x265_params(text: str) -> list[tuple[str, str]]:
    """``"k=v:k=v"`` as ``[(k, v), ...]``; :class:`InputError` for an item that is not ``name=value``."""
    pairs = []
    for item in text.split(":"):
        key, sep, value = item.partition("=")
        if not sep or not _KEY.fullmatch(key) or not value or any(c.isspace() for c in value):
            raise InputError(f"--x265-params {text!r}: {item!r} is not name=value (items are separated by ':')")
        pairs.append((key, value))
    return pairs


def check_x265_params(text: str) -> str:
    """``text`` if libx265 accepts every ``name=value`` in it, else :class:`InputError` naming the first it
    refuses (where the library cannot be loaded, only the syntax is checked)."""
    pairs = split_x265_params(text)
    lib = _libx265()
    if lib is None:
        return text
    param = lib.x265_param_alloc()
    if not param:
        return text
    try:
        lib.x265_param_default(param)
        for key, value in pairs:
            status = lib.x265_param_parse(param, key.encode(), value.encode())
            if status == _BAD_NAME:
                raise InputError(f"--x265-params: libx265 has no parameter {key!r}")
            if status != 0:
                raise InputError(f"--x265-params: libx265 refuses {key}={value}")
    finally:
        lib.x265_param_free(param)
    return text
