"""Records read back from an output folder are untrusted: the id check and the one manifest-record validation.

``manifest.jsonl`` (and the ``parts/*.jsonl`` it is concatenated from) may have been edited, truncated or
replaced by anything. :func:`read_manifest` is the one place that reads it, and :func:`check_manifest_record`
the one check of a record's keys and types, so that every reader (verify, inspect, preview, report, the training
dataset) sees either well-typed records or one :class:`~datakit.errors.StoreError` naming the file and line.
Whether a well-typed record is *true* (matches its shard) is :func:`datakit.store.verify.verify_output`'s job.
The folder's other record files are read here too: ``parts/<source>.json`` statuses (:func:`read_status`) and
``summary.json`` (:func:`read_summary`).
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path, PurePosixPath
from typing import Any

from datakit.errors import StoreError

SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
"""Ids that become file names (sources, samples, splits): letters, digits, '.', '_' and '-', matched whole
(``re.fullmatch``: a trailing newline is refused, as ``$`` would accept it)."""


def check_id(value: Any, what: str = "source id") -> str:
    """``value`` if it is a string that may become a file name (see :data:`SAFE_ID`), else :class:`StoreError`."""
    if not isinstance(value, str) or not SAFE_ID.fullmatch(value) or len(value) > 200:
        raise StoreError(f"{what} {value!r}: use letters, digits, '.', '_' and '-' only (at most 200)")
    return value


def check_relative_path(value: Any, what: str = "shard") -> str:
    """A POSIX path relative to the output folder that stays inside it (no absolute path, no ``..``, no
    backslash, no empty part); :class:`StoreError` otherwise."""
    if not isinstance(value, str) or not value or "\\" in value or "\0" in value:
        raise StoreError(f"{what} {value!r}: expected a path relative to the output folder")
    path = PurePosixPath(value)
    if path.is_absolute() or any(part in ("..", "") for part in value.split("/")):
        raise StoreError(f"{what} {value!r}: must stay inside the output folder (no absolute path, no '..')")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))  # ints of any size are finite


def _problem(record: Any) -> str | None:
    """What is wrong with one parsed manifest line, or ``None`` (keys and types of
    :meth:`datakit.store.shards.ShardWriter.add`'s records; extra keys are allowed)."""
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    missing = [key for key in _REQUIRED if key not in record]
    if missing:
        more = f" and {len(missing) - 3} more keys" if len(missing) > 3 else ""
        return f"record without {', '.join(missing[:3])}{more}"
    try:
        check_id(record["sample_id"], "sample id")
        check_id(record["source_id"], "source id")
        check_id(record["split"], "split")
        check_relative_path(record["shard"])
    except StoreError as error:
        return str(error)
    for key in ("index", "frames", "height", "width", "scene"):
        if not _is_int(record[key]) or record[key] < (0 if key in ("index", "scene") else 1):
            return f"{key} {record[key]!r}: expected an integer >= {0 if key in ('index', 'scene') else 1}"
    frames = record["frames"]
    for key, check in (("sdr_frames", _is_int), ("hdr_frames", _is_int), ("times", _is_number)):
        values = record[key]
        if not isinstance(values, list) or len(values) != frames or not all(check(v) for v in values):
            kind = "integers" if check is _is_int else "finite numbers"
            return f"{key}: expected a list of {frames} {kind}"
    crop = record["crop"]
    if not isinstance(crop, list) or len(crop) != 4 or not all(_is_int(v) and v >= 0 for v in crop):
        return f"crop {crop!r}: expected [x, y, w, h] integers >= 0"
    if not _is_number(record["score"]):
        return f"score {record['score']!r}: expected a finite number"
    if not isinstance(record["content_hash"], str):
        return f"content_hash {record['content_hash']!r}: expected a string"
    if not isinstance(record["meta"], dict):
        return f"meta: expected a JSON object, got {type(record['meta']).__name__}"
    if "recipe_hash" in record and not isinstance(record["recipe_hash"], str):
        return f"recipe_hash {record['recipe_hash']!r}: expected a string"
    return None


_REQUIRED = (
    "sample_id", "split", "source_id", "shard", "index", "frames", "height", "width", "sdr_frames", "hdr_frames",
    "times", "crop", "scene", "score", "content_hash", "meta",
)  # fmt: skip


def check_manifest_record(record: Any, where: str) -> dict[str, Any]:
    """``record`` (one parsed manifest line) if its keys and types are those of a datakit manifest record, else
    :class:`StoreError` naming ``where`` (``file:line``)."""
    problem = _problem(record)
    if problem:
        raise StoreError(f"{where}: {problem} (not a datakit manifest record)")
    return record


def parse_manifest_text(text: str, where: str) -> list[dict[str, Any]]:
    """The validated records of a manifest's text (one JSON object per non-blank line)."""
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)  # NaN is accepted in meta; typed fields must be finite
        except ValueError:
            raise StoreError(f"{where}:{number}: not a JSON line") from None
        records.append(check_manifest_record(record, f"{where}:{number}"))
    return records


def read_text(path: Path) -> str:
    """A record file's UTF-8 text; :class:`StoreError` when it is not UTF-8 or cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise StoreError(f"{path}: not UTF-8 text (not a datakit record file)") from None
    except OSError as error:
        raise StoreError(f"{path}: unreadable ({error.strerror or error})") from None


def read_manifest(root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of an output folder's manifest.jsonl, each checked by :func:`check_manifest_record`."""
    path = Path(root) / "manifest.jsonl"
    if not path.is_file():
        raise StoreError(f"{root}: no manifest.jsonl (not a datakit output folder, or the build did not finish)")
    return parse_manifest_text(read_text(path), str(path))


def read_status(path: Path) -> dict[str, Any]:
    """One ``parts/<source>.json`` status: a JSON object whose ``rejected`` counts (when present) are a table of
    whole numbers; :class:`StoreError` otherwise."""
    try:
        status = json.loads(read_text(path))
    except ValueError:
        raise StoreError(f"{path}: not a JSON file (not a datakit source status)") from None
    rejected = status.get("rejected", {}) if isinstance(status, dict) else None
    if not isinstance(rejected, dict) or not all(_is_int(v) for v in rejected.values()):
        raise StoreError(f"{path}: expected a JSON object with whole-number rejection counts (a source status)")
    return status


_SUMMARY_TYPES = {"sources": dict, "rejected_by_reason": dict, "failed_sources": list, "recipe": dict}


def read_summary(root: str | os.PathLike[str]) -> dict[str, Any]:
    """An output folder's summary.json (``{}`` when there is none); :class:`StoreError` when it is not a JSON
    object whose ``sources`` (objects), ``rejected_by_reason``, ``failed_sources`` and ``recipe`` have their
    types."""
    path = Path(root) / "summary.json"
    if not path.is_file():
        return {}
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise StoreError(f"{path}: not a JSON file (not a datakit summary)") from None
    if not isinstance(summary, dict):
        raise StoreError(f"{path}: expected a JSON object (not a datakit summary)")
    for key, kind in _SUMMARY_TYPES.items():
        if key in summary and not isinstance(summary[key], kind):
            raise StoreError(f"{path}: {key} must be a JSON {'object' if kind is dict else 'list'}")
    if not all(isinstance(status, dict) for status in summary.get("sources", {}).values()):
        raise StoreError(f"{path}: each source's status must be a JSON object")
    return summary
