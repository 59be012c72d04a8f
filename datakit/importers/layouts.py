"""Where the HDR/SDR pairs of an existing dataset are: ``hdrtv1k``, ``hdrtv4k`` and ``pairs`` layouts.

- ``hdrtv1k`` (HDRTVNet's release as its users arrange it): ``train_hdr`` / ``train_sdr`` and ``test_hdr`` /
  ``test_sdr`` folders anywhere below SRC (usually ``training_set/`` and ``test_set/``); HDR and SDR files share
  their names. Pre-cropped ``*_sub_*`` folders are not read (the recipe crops).
- ``hdrtv4k`` (HDRTVDM): below SRC, a split folder (name with ``train`` or ``test``; SRC itself when none) holds
  one HDR folder (name ``hdr`` or ``gt``, optionally with a prefix or suffix such as ``train_HDR``) and one
  folder per SDR version (any other folder; ``sdr_`` / ``lq_`` prefixes are dropped from the version name). One
  HDR frame pairs with each version's file of the same name; the version is recorded per sample.
- ``pairs``: SRC holds ``hdr/`` and ``sdr/`` folders matched by file name, or SRC is a CSV file with columns
  ``hdr,sdr`` and optionally ``split``, ``hdr_frame``, ``sdr_frame`` (a frame index when the file is a video:
  HDR10 video frames are decoded with the tagged matrix, never swscale). Relative paths are relative to the CSV.

Names are matched by file stem (``0001.png`` pairs with ``0001.jpg``). A file without its partner stops the import
with one line naming it.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from datakit.errors import InputError

LAYOUTS = ("hdrtv1k", "hdrtv4k", "pairs")
HDR_SUFFIXES = {".png", ".tif", ".tiff"}
SDR_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}


@dataclass(frozen=True)
class ImportPair:
    """One HDR/SDR pair to import: files (or video frames), split (``None``: the recipe's default), version."""

    source_id: str
    hdr: Path
    sdr: Path
    split: str | None = None
    version: str | None = None
    hdr_frame: int | None = None
    sdr_frame: int | None = None


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text).lstrip("._-") or "pair"


def _files(folder: Path, suffixes: set[str]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in suffixes:
            if path.stem in files:
                raise InputError(
                    f"{folder}: two files share the name {path.stem!r} ({files[path.stem].name}, {path.name})"
                )
            files[path.stem] = path
    return files


def match(hdr_dir: Path, sdr_dir: Path) -> list[tuple[str, Path, Path]]:
    """``(stem, hdr, sdr)`` for files of the same name; a file without its partner is an error."""
    hdr, sdr = _files(hdr_dir, HDR_SUFFIXES), _files(sdr_dir, SDR_SUFFIXES)
    for stem in sorted(set(hdr) ^ set(sdr)):
        have, missing = (hdr[stem], sdr_dir) if stem in hdr else (sdr[stem], hdr_dir)
        raise InputError(f"{have}: no partner named {stem}.* in {missing}")
    if not hdr:
        raise InputError(f"{hdr_dir}: no HDR images (PNG/TIFF)")
    return [(stem, hdr[stem], sdr[stem]) for stem in sorted(hdr)]


def _split_of(name: str) -> str | None:
    lowered = name.lower()
    return "train" if "train" in lowered else "test" if "test" in lowered else "val" if "val" in lowered else None


def hdrtv1k_pairs(src: Path) -> list[ImportPair]:
    pairs = []
    for split, prefix in (("train", "train"), ("test", "test")):
        hdr_dirs = sorted(p for p in src.rglob(f"{prefix}_hdr") if p.is_dir())
        for hdr_dir in hdr_dirs:
            sdr_dir = hdr_dir.with_name(f"{prefix}_sdr")
            if not sdr_dir.is_dir():
                raise InputError(f"{hdr_dir}: no {prefix}_sdr folder beside it")
            pairs += [ImportPair(_safe(f"{split}-{stem}"), h, s, split) for stem, h, s in match(hdr_dir, sdr_dir)]
    if not pairs:
        raise InputError(f"{src}: no train_hdr/train_sdr or test_hdr/test_sdr folders (HDRTV1K layout)")
    return pairs


def _is_hdr_folder(name: str) -> bool:
    return bool(re.search(r"(^|[_\-. ])(hdr|gt)($|[_\-. ])", name.lower()))


def _version(name: str) -> str:
    return _safe(re.sub(r"^(sdr|lq)[_\-. ]*", "", name, flags=re.IGNORECASE) or name)


def hdrtv4k_pairs(src: Path) -> list[ImportPair]:
    split_dirs = [p for p in sorted(src.iterdir()) if p.is_dir() and _split_of(p.name)] or [src]
    pairs = []
    for split_dir in split_dirs:
        folders = [p for p in sorted(split_dir.iterdir()) if p.is_dir()]
        hdr_dirs = [p for p in folders if _is_hdr_folder(p.name)]
        if len(hdr_dirs) != 1:
            raise InputError(f"{split_dir}: expected one HDR folder (named hdr or gt), found {len(hdr_dirs)}")
        versions = [p for p in folders if p != hdr_dirs[0]]
        if not versions:
            raise InputError(f"{split_dir}: no SDR version folders beside {hdr_dirs[0].name}")
        split = _split_of(split_dir.name) if split_dir != src else None
        for sdr_dir in versions:
            version = _version(sdr_dir.name)
            pairs += [
                ImportPair(_safe(f"{split or 'all'}-{stem}-{version}"), h, s, split, version)
                for stem, h, s in match(hdr_dirs[0], sdr_dir)
            ]
    return pairs


def _frame(value: str | None, where: str) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        frame = int(value)
    except ValueError:
        raise InputError(f"{where}: frame index {value!r} is not an integer") from None
    if frame < 0:
        raise InputError(f"{where}: frame index {frame} is negative")
    return frame


def csv_pairs(path: Path) -> list[ImportPair]:
    try:
        rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
    except (UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"{path}: not a readable CSV file ({error})") from None
    if not rows or not {"hdr", "sdr"} <= set(rows[0]):
        raise InputError(
            f"{path}: needs a header with hdr and sdr columns (and optionally split, hdr_frame, sdr_frame)"
        )
    pairs, seen = [], set()
    for number, row in enumerate(rows, 2):
        where = f"{path}:{number}"
        hdr, sdr = ((path.parent / (row.get(k) or "")).resolve() for k in ("hdr", "sdr"))
        for file in (hdr, sdr):
            if not file.is_file():
                raise InputError(f"{where}: {file} not found")
        split = (row.get("split") or "").strip() or None
        if split not in (None, "train", "test", "val"):
            raise InputError(f"{where}: split {split!r} must be train, test or val")
        hdr_frame, sdr_frame = _frame(row.get("hdr_frame"), where), _frame(row.get("sdr_frame"), where)
        source_id = _safe(hdr.stem + (f"-f{hdr_frame}" if hdr_frame is not None else ""))
        if source_id in seen:
            raise InputError(f"{where}: pair id {source_id} appears twice")
        seen.add(source_id)
        pairs.append(ImportPair(source_id, hdr, sdr, split, None, hdr_frame, sdr_frame))
    return pairs


def find_pairs(layout: str, src: str | Path) -> list[ImportPair]:
    """The pairs of ``src`` in ``layout`` (sorted by source id)."""
    src = Path(src)
    if layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if not src.exists():
        raise InputError(f"{src}: no such file or folder")
    if layout == "pairs" and src.is_file():
        pairs = csv_pairs(src)
    elif not src.is_dir():
        raise InputError(f"{src}: the {layout} layout needs a folder")
    elif layout == "hdrtv1k":
        pairs = hdrtv1k_pairs(src)
    elif layout == "hdrtv4k":
        pairs = hdrtv4k_pairs(src)
    else:
        if not (src / "hdr").is_dir() or not (src / "sdr").is_dir():
            raise InputError(f"{src}: the pairs layout needs hdr/ and sdr/ folders (or a CSV file of pairs)")
        pairs = [ImportPair(_safe(stem), h, s) for stem, h, s in match(src / "hdr", src / "sdr")]
    ids = [p.source_id for p in pairs]
    if len(set(ids)) != len(ids):
        raise InputError(f"{src}: two pairs share the id {sorted(i for i in ids if ids.count(i) > 1)[0]}")
    return sorted(pairs, key=lambda p: p.source_id)
