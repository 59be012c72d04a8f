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
from typing import Any

from datakit.errors import InputError, RecipeError, StoreError
from datakit.fsutil import atomic_write_text
from datakit.io.probe import VIDEO_EXTENSIONS
from datakit.store.output import check_source_id
from datakit.store.records import check_id

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


_PAIR_KEYS = {"id", "hdr", "sdr", "split"}
_SIDE_KEYS = {"path", "sha256", "size", "duration"}
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
CSV_COLUMNS = ("id", "hdr", "sdr", "split", "hdr_sha256", "sdr_sha256")


def check_pair_entry(entry: Any, base: Path, where: str) -> PairSource:
    """The one check of a pairs-file entry (a TOML ``[[pair]]`` table, or a CSV row in the same shape): a table
    of ``id`` (a file-name-safe string), ``hdr`` and ``sdr`` (a path string, or a table with a ``path`` string
    and optionally ``sha256`` (64 hex digits), ``size`` and ``duration``) and an optional ``split``. Unknown keys
    are refused (a misspelt ``sha256`` would silently skip the check). :class:`RecipeError` naming ``where``."""
    if not isinstance(entry, dict):
        raise RecipeError(f"{where}: expected a table with id, hdr and sdr, got {_describe(entry)}")
    missing = sorted(k for k in ("id", "hdr", "sdr") if entry.get(k) in (None, ""))
    if missing:
        raise RecipeError(f"{where}: missing {', '.join(missing)}")
    unknown = sorted(set(entry) - _PAIR_KEYS)
    if unknown:
        raise RecipeError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_PAIR_KEYS))})")
    pair_id, split = entry["id"], entry.get("split")
    try:
        check_id(pair_id, "pair id")
    except StoreError:
        raise RecipeError(f"{where}: pair id {pair_id!r} must be a string of letters, digits, '.', '_', '-'") from None
    if split is not None and split not in SPLITS:
        raise RecipeError(f"{where}: split {split!r} must be one of {', '.join(SPLITS)}")
    sides: dict[str, tuple[Path, str | None]] = {}
    for side in ("hdr", "sdr"):
        value = entry[side]
        table = value if isinstance(value, dict) else {"path": value}
        unknown = sorted(set(table) - _SIDE_KEYS)
        if unknown:
            raise RecipeError(f"{where}: {side}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_SIDE_KEYS))})")
        path, sha = table.get("path"), table.get("sha256")
        if isinstance(value, dict) and path is None:
            raise RecipeError(f"{where}: the {side} table has no path")
        if not isinstance(path, str) or not path or "\0" in path:
            raise RecipeError(f"{where}: {side} must be a path string or a table with a path, got {_describe(path)}")
        if sha is not None and (not isinstance(sha, str) or not _SHA256.fullmatch(sha)):
            raise RecipeError(f"{where}: {side}.sha256 must be 64 hexadecimal digits, got {_describe(sha)}")
        for key in ("size", "duration"):
            if key in table and (isinstance(table[key], bool) or not isinstance(table[key], int | float)):
                raise RecipeError(f"{where}: {side}.{key} must be a number, got {_describe(table[key])}")
        sides[side] = ((base / path).resolve(), sha or None)
    return PairSource(pair_id, sides["hdr"][0], sides["sdr"][0], split or None, sides["hdr"][1], sides["sdr"][1])


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _csv_entries(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(where, entry) of each row of a CSV pairs file, in the shape of a TOML ``[[pair]]`` table."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            columns = reader.fieldnames or []
            missing = {"id", "hdr", "sdr"} - set(columns)
            if missing:
                raise RecipeError(f"{path}: CSV header must have id, hdr, sdr (missing {', '.join(sorted(missing))})")
            unknown = [c for c in columns if c not in CSV_COLUMNS]
            if unknown or len(set(columns)) != len(columns):
                raise RecipeError(f"{path}: CSV columns are {', '.join(CSV_COLUMNS)} (got {', '.join(columns)})")
            entries = []
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if None in row:
                    raise RecipeError(f"{where}: more fields than the header's {len(columns)}")
                if any(row[c] is None for c in ("id", "hdr", "sdr")):
                    raise RecipeError(f"{where}: fewer fields than the header's {len(columns)}")
                entry: dict[str, Any] = {"id": row["id"], "split": row.get("split") or None}
                for side in ("hdr", "sdr"):
                    entry[side] = {"path": row[side], "sha256": row.get(f"{side}_sha256") or None}
                entries.append((where, {k: v for k, v in entry.items() if v is not None}))
            return entries
    except UnicodeDecodeError:
        raise RecipeError(f"{path}: not a UTF-8 CSV pairs file") from None
    except csv.Error as error:
        raise RecipeError(f"{path}: not a CSV pairs file ({error})") from None


def read_pairs(path: str | os.PathLike[str]) -> list[PairSource]:
    """Read a pairs file (TOML or CSV) or a folder following the naming convention; each entry is checked by
    :func:`check_pair_entry`, and an id listed twice is refused."""
    path = Path(path)
    if path.is_dir():
        return pairs_from_folder(path)
    if not path.is_file():
        raise InputError(f"{path}: pairs file not found")
    if path.suffix.lower() == ".csv":
        entries = _csv_entries(path)
    else:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise RecipeError(f"{path}: not a TOML or CSV pairs file ({error})") from None
        tables = data.get("pair")
        if not isinstance(tables, list) or not tables:
            raise RecipeError(f"{path}: expected [[pair]] tables with id, hdr and sdr")
        entries = [(f"{path}: pair {k}", entry) for k, entry in enumerate(tables, 1)]
    pairs = [check_pair_entry(entry, path.parent, where) for where, entry in entries]
    check_unique_ids(pairs, str(path))
    return pairs


def check_unique_ids(pairs: list[PairSource], where: str) -> None:
    """Refuse pairs that share an id (each id names a source's files in the output folder)."""
    ids = [p.pair_id for p in pairs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise RecipeError(f"{where}: pair id {duplicates[0]!r} appears more than once")


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
    """Write a TOML pairs file with each source's size, duration and sha256 (with ``tomli_w``, so that any path
    is quoted correctly); returns the text written. Pairs that share an id are refused."""
    import tomli_w

    from datakit.io.probe import probe

    check_unique_ids(pairs, "datakit manifest")
    out = Path(out).resolve()
    tables = []
    for pair in pairs:
        table: dict[str, Any] = {"id": pair.pair_id}
        split = pair.split or default_split
        if split:
            table["split"] = split
        for side, path in (("hdr", pair.hdr), ("sdr", pair.sdr)):
            info = probe(path)
            table[side] = {
                "path": Path(os.path.relpath(path, out.parent)).as_posix(),
                "size": path.stat().st_size,
                "duration": round(info.duration_seconds, 3),
                "sha256": sha256_file(path),
            }
        tables.append(table)
    header = "# Source manifest written by `datakit manifest`: rebuilds check these hashes before they start.\n\n"
    text = header + tomli_w.dumps({"pair": tables})
    atomic_write_text(out, text)
    return text
