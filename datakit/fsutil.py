"""Atomic file publication: write to a temporary name in the target folder, then rename."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from datakit.errors import OutputWriteError


def _umask() -> int:
    """This process's umask (read from /proc where it can be, without changing it; else set and restored)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def published_mode() -> int:
    """The mode a plainly created file gets: ``0o666 & ~umask`` (``mkstemp`` makes its files 0600)."""
    return 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it to ``final`` only if the block succeeds.

    The temporary name keeps ``final``'s extension (or ``suffix``) so that writers choosing a
    format from the extension (PyAV, OpenCV) still work. On failure the temporary file is removed,
    so a half-written output never appears under the final name. The file gets the umask's usual mode
    (:func:`published_mode`), not ``mkstemp``'s 0600; writers that open the temporary path (PyAV, OpenCV,
    ``torch.save``) truncate it and keep that mode.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    ext = suffix if suffix is not None else "".join(final.suffixes[-1:])
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".part{ext}", dir=final.parent)
    try:
        os.fchmod(fd, published_mode())
    finally:
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
    """Write ``text`` to ``final`` atomically (UTF-8); a refused write raises :class:`OutputWriteError`."""
    try:
        with atomic_path(final) as tmp:
            tmp.write_text(text, encoding="utf-8")
    except OSError as error:
        raise write_failure(error, final) from None


_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]+\.part(\.[A-Za-z0-9]+)?")  # mkstemp's token has no dot


def is_temporary(name: str) -> bool:
    """Whether ``name`` is a temporary file of :func:`atomic_path` (``.<stem>.<token>.part<ext>``), the naming
    the shard writer uses too; a folder's owner removes those a killed run left behind."""
    return _TEMPORARY.fullmatch(name) is not None


_ERRNO_IN_MESSAGE = re.compile(r"errno = (\d+)")  # HDF5 names the system error inside its own message


def write_failure(error: OSError, path: str | os.PathLike[str]) -> OutputWriteError:
    """The one-line error for a write the system refused: ``<path>: cannot write (<cause>)``.

    The cause is the system's (``No space left on device``, ``Read-only file system``...), also when the
    error comes from a library that wraps it in a long message of its own (HDF5).
    """
    code = error.errno
    if code is None or code not in errno.errorcode:
        found = _ERRNO_IN_MESSAGE.search(str(error))
        code = int(found.group(1)) if found else None
    cause = os.strerror(code) if code else (str(error).splitlines() or [type(error).__name__])[0]
    return OutputWriteError(f"{path}: cannot write ({cause})")
