"""One module per ``datakit`` subcommand; each defines ``register(subparsers)``.

Modules here must import their heavy dependencies (torch, h5py, av...) inside the handler,
so that ``datakit --help`` and unrelated commands start fast. This package's own functions validate arguments
shared by several commands (output paths, counts) before a handler writes anything.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from datakit.errors import InputError


def positive_int(text: str) -> int:
    """argparse type of counts that must be at least 1 (``--workers``): refused while parsing, before anything is
    written."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def threads(text: str) -> str | int:
    """argparse type of decoder thread counts: ``auto`` or a whole number >= 1."""
    return text if text == "auto" else positive_int(text)


def _file_above(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` when it is not a folder (so nothing can be created below it)."""
    for parent in path.absolute().parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def output_folder(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """``path`` as a folder to write into: :class:`InputError` when it is an existing file or lies below one."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} {path}: exists and is not a folder")
    blocker = _file_above(path)
    if blocker is not None:
        raise InputError(f"{option} {path}: {blocker} is a file, not a folder")
    return path


def output_file(path: str | os.PathLike[str], option: str = "--out", suffixes: tuple[str, ...] = ()) -> Path:
    """``path`` as a file to write: :class:`InputError` when it is a folder, lies below a file, or lacks one of
    ``suffixes``."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{option} {path}: is a folder; give a file name")
    blocker = _file_above(path)
    if blocker is not None:
        raise InputError(f"{option} {path}: {blocker} is a file, not a folder")
    if suffixes and path.suffix.lower() not in suffixes:
        raise InputError(f"{option} {path}: expected a {' or '.join(suffixes)} file name")
    return path
