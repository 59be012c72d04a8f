"""Pairs files and source manifests: which HDR10/SDR files form a pair, and proof that they are the same bytes.

A pairs file is TOML (``[[pair]]`` tables) or CSV (header ``id,hdr,sdr[,split][,hdr_sha256,sdr_sha256]``); paths
are relative to the pairs file. ``datakit manifest`` writes the TOML form with each file's size, duration and
sha256, so a rebuild elsewhere can check its inputs before it starts. A folder can stand for a pairs file by
convention: ``<id>_hdr10.<ext>`` (or ``<id>_hdr.<ext>``) beside ``<id>_sdr.<ext>``, or ``hdr/<id>.<ext>`` beside
``sdr/<id>.<ext>``.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from datakit.errors import InputError, RecipeError
from datakit.fsutil import atomic_write_text
from datakit.store.output import check_source_id

VIDEO_EXTENSIONS = {".mp4", ".mkv", ".mov", ".m4v", ".ts", ".m2ts", ".webm", ".hevc", ".h265", ".264", ".h264"}
SPLITS = ("train", "test", "val")


@dataclass(frozen=True)
class PairSource:
    """One pair of videos of the same title."""

    pair_id: str
    hdr: Path
    sdr: Path
    split: str | None = None
    hdr_sha256: str | None = None
    sdr_sha256: str | None = None


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _make(
    pair_id: str, hdr: str, sdr: str, split: str | None, base: Path, where: str, **hashes: str | None
) -> PairSource:
    try:
        check_source_id(pair_id)
    except Exception:
        raise RecipeError(f"{where}: pair id {pair_id!r} must use letters, digits, '.', '_' and '-' only") from None
    if split is not None and split not in SPLITS:
        raise RecipeError(f"{where}: split {split!r} must be one of {', '.join(SPLITS)}")
    return PairSource(pair_id, (base / hdr).resolve(), (base / sdr).resolve(), split or None, **hashes)


def read_pairs(path: str | os.PathLike[str]) -> list[PairSource]:
    """Read a pairs file (TOML or CSV) or a folder following the naming convention."""
    path = Path(path)
    if path.is_dir():
        return pairs_from_folder(path)
    if not path.is_file():
        raise InputError(f"{path}: pairs file not found")
    base = path.parent
    pairs: list[PairSource] = []
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = {"id", "hdr", "sdr"} - set(reader.fieldnames or [])
            if missing:
                raise RecipeError(f"{path}: CSV header must have id, hdr, sdr (missing {', '.join(sorted(missing))})")
            for line, row in enumerate(reader, 2):
                pairs.append(
                    _make(
                        row["id"], row["hdr"], row["sdr"], row.get("split") or None, base, f"{path}:{line}",
                        hdr_sha256=row.get("hdr_sha256") or None, sdr_sha256=row.get("sdr_sha256") or None,
                    )
                )  # fmt: skip
    else:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise RecipeError(f"{path}: not a TOML or CSV pairs file ({error})") from None
        entries = data.get("pair")
        if not isinstance(entries, list) or not entries:
            raise RecipeError(f"{path}: expected [[pair]] tables with id, hdr and sdr")
        for k, entry in enumerate(entries, 1):
            where = f"{path}: pair {k}"
            missing = {"id", "hdr", "sdr"} - set(entry)
            if missing:
                raise RecipeError(f"{where}: missing {', '.join(sorted(missing))}")
            hdr, sdr = entry["hdr"], entry["sdr"]
            hdr_path = hdr["path"] if isinstance(hdr, dict) else hdr
            sdr_path = sdr["path"] if isinstance(sdr, dict) else sdr
            pairs.append(
                _make(
                    str(entry["id"]), hdr_path, sdr_path, entry.get("split"), base, where,
                    hdr_sha256=hdr.get("sha256") if isinstance(hdr, dict) else None,
                    sdr_sha256=sdr.get("sha256") if isinstance(sdr, dict) else None,
                )
            )  # fmt: skip
    ids = [p.pair_id for p in pairs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise RecipeError(f"{path}: pair id {duplicates[0]!r} appears more than once")
    return pairs


_SUFFIX = re.compile(r"^(?P<id>.+?)_(?P<side>hdr10|hdr|sdr)$", re.IGNORECASE)


def pairs_from_folder(folder: Path) -> list[PairSource]:
    """Pairs by naming convention inside ``folder`` (see the module docstring)."""
    found: dict[str, dict[str, Path]] = {}
    for sub in ("hdr", "sdr"):
        for file in sorted((folder / sub).glob("*")) if (folder / sub).is_dir() else []:
            if file.suffix.lower() in VIDEO_EXTENSIONS:
                found.setdefault(file.stem, {})[sub] = file
    for file in sorted(folder.glob("*")):
        match = _SUFFIX.match(file.stem)
        if match and file.suffix.lower() in VIDEO_EXTENSIONS:
            side = "sdr" if match["side"].lower() == "sdr" else "hdr"
            found.setdefault(match["id"], {})[side] = file
    pairs = [PairSource(pid, files["hdr"], files["sdr"]) for pid, files in sorted(found.items()) if len(files) == 2]
    if not pairs:
        raise InputError(f"{folder}: no pairs found (expected <id>_hdr10.mp4 + <id>_sdr.mp4, or hdr/ and sdr/ folders)")
    for pair in pairs:
        check_source_id(pair.pair_id)
    return pairs


def check_hashes(pair: PairSource) -> None:
    """Refuse a pair whose files differ from the hashes its pairs file records."""
    for side, path, expected in (("hdr", pair.hdr, pair.hdr_sha256), ("sdr", pair.sdr, pair.sdr_sha256)):
        if not path.is_file():
            raise InputError(f"{pair.pair_id}: {side} file {path} not found")
        if expected and sha256_file(path) != expected.lower():
            raise InputError(f"{pair.pair_id}: {path.name} differs from the pairs file (sha256 mismatch)")


def write_source_manifest(
    pairs: list[PairSource], out: str | os.PathLike[str], *, default_split: str | None = None
) -> str:
    """Write a TOML pairs file with each source's size, duration and sha256; returns the text written."""
    from datakit.io.probe import probe

    out = Path(out).resolve()
    lines = [
        "# Source manifest written by `datakit manifest`: rebuilds check these hashes before they start.",
        "",
    ]
    for pair in pairs:
        lines.append("[[pair]]")
        lines.append(f'id = "{pair.pair_id}"')
        split = pair.split or default_split
        if split:
            lines.append(f'split = "{split}"')
        for side, path in (("hdr", pair.hdr), ("sdr", pair.sdr)):
            info = probe(path)
            rel = os.path.relpath(path, out.parent)
            lines.append(
                f'{side} = {{ path = "{Path(rel).as_posix()}", size = {path.stat().st_size}, '
                f'duration = {info.duration_seconds:.3f}, sha256 = "{sha256_file(path)}" }}'
            )
        lines.append("")
    text = "\n".join(lines)
    atomic_write_text(out, text)
    return text
