"""``datakit audit SRC``: audit a folder of frames, an output folder (its shards) or a video.

Frames folders: every PNG/TIFF/JPEG below SRC; 16-bit files are audited as HDR (PQ BT.2020 R'G'B'), 8-bit files
as SDR (BT.709 R'G'B'). Output folders: the HDR and SDR side of up to ``max_samples`` samples. Videos: the probe's
tags and the not-HDR statistics of frames spread through the stream. The result is a dict (``--json`` prints
it): ``files`` (per file: role and findings) and ``summary`` (per finding kind: how many files got each verdict).
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from datakit.audit.findings import Finding
from datakit.audit.frames import audit_hdr, audit_sdr
from datakit.errors import InputError

IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg"}


def read_codes(path: str | os.PathLike[str]) -> np.ndarray:
    """An image's R'G'B' codes as stored: uint16 or uint8 ``(H, W, 3)`` (one clear error when unreadable)."""
    from datakit.io.images import _imread

    return _imread(path)


def summarise(files: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for entry in files:
        for finding in entry["findings"]:
            counts[finding["kind"]][finding["verdict"]] += 1
    return {kind: dict(sorted(c.items())) for kind, c in sorted(counts.items())}


def audit_codes(codes: np.ndarray, name: str) -> dict[str, Any]:
    if codes.dtype == np.uint16:
        role, found = "hdr", audit_hdr(codes)
    elif codes.dtype == np.uint8:
        role, found = "sdr", audit_sdr(codes)
    else:
        raise InputError(f"{name}: {codes.dtype} pixels, expected 16-bit HDR or 8-bit SDR")
    return {"file": name, "role": role, "findings": [f.to_dict() for f in found]}


def audit_path(src: str | os.PathLike[str], *, max_samples: int = 64, progress: bool = True) -> dict[str, Any]:
    """Audit ``src`` (a frames folder, an output folder, an image or a video); see the module docstring."""
    src = Path(src)
    if not src.exists():
        raise InputError(f"{src}: no such file or folder")
    if src.is_dir() and (src / "manifest.jsonl").is_file():
        kind, files = "output", _audit_output(src, max_samples, progress)
    elif src.is_dir():
        paths = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise InputError(f"{src}: no PNG, TIFF or JPEG files to audit")
        kind = "frames"
        files = [audit_codes(read_codes(p), str(p.relative_to(src)))
                 for p in tqdm(paths, desc="audit", unit="file", disable=not progress)]  # fmt: skip
    elif src.suffix.lower() in IMAGE_SUFFIXES:
        kind, files = "frames", [audit_codes(read_codes(src), src.name)]
    else:
        kind, files = "video", [_audit_video(src)]
    return {"source": str(src), "kind": kind, "files": files, "summary": summarise(files)}


def _audit_output(root: Path, max_samples: int, progress: bool) -> list[dict[str, Any]]:
    from datakit.store.output import read_manifest
    from datakit.store.shards import ShardReader

    records = read_manifest(root)
    step = max(1, len(records) // max(1, max_samples))
    readers: dict[str, ShardReader] = {}
    files = []
    for record in tqdm(records[::step], desc="audit", unit="sample", disable=not progress):
        reader = readers.setdefault(record["shard"], ShardReader(root / record["shard"]))
        sdr, hdr = reader.arrays(record["index"])
        centre = len(sdr) // 2
        for codes, role in ((hdr[centre], "hdr"), (sdr[centre], "sdr")):
            files.append(audit_codes(codes, f"{record['sample_id']} ({role})"))
    for reader in readers.values():
        reader.close()
    return files


def _audit_video(path: Path) -> dict[str, Any]:
    from datakit.audit.hdr_range import video_not_hdr
    from datakit.io.probe import probe

    info = probe(path)
    found: list[Finding] = [Finding("tags", info.kind, info.describe().splitlines()[0], 1.0, {"probe": info.to_dict()})]
    if info.kind == "hdr10":
        light = info.content_light_level
        found.append(video_not_hdr(path, light.max_cll if light else None))
    return {"file": path.name, "role": "video", "findings": [f.to_dict() for f in found]}


def format_audit(result: dict[str, Any]) -> str:
    """The audit as text: one line per finding that matters per file, then the summary."""
    lines = [f"audit of {result['source']} ({result['kind']}, {len(result['files'])} files)"]
    for entry in result["files"]:
        lines.append(f"{entry['file']} [{entry['role']}]")
        for f in entry["findings"]:
            if f["kind"] in ("clipping",) and not f["problem"]:
                continue
            lines.append(f"  {f['kind']}: {f['message']} (confidence {f['confidence']:.2f})")
    lines.append("summary:")
    for kind, verdicts in result["summary"].items():
        lines.append(f"  {kind}: " + ", ".join(f"{v} x{n}" for v, n in verdicts.items()))
    return "\n".join(lines)
