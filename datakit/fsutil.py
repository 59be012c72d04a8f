"""Atomic file publication: write to a temporary name in the target folder, then rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it to ``final`` only if the block succeeds.

    The temporary name keeps ``final``'s extension (or ``suffix``) so that writers choosing a
    format from the extension (PyAV, OpenCV) still work. On failure the temporary file is removed,
    so a half-written output never appears under the final name.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    ext = suffix if suffix is not None else "".join(final.suffixes[-1:])
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".part{ext}", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_text(final: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``final`` atomically (UTF-8)."""
    with atomic_path(final) as tmp:
        tmp.write_text(text, encoding="utf-8")
