"""Check an output folder against its manifest, and summarise it."""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from pathlib import Path, PurePosixPath
from typing import Any

from tqdm import tqdm

from datakit.errors import StoreError
from datakit.store.records import read_manifest, read_summary
from datakit.store.shards import ShardReader, hash_matches, list_shards

_METADATA = ("sample_id", "source_id", "scene", "sdr_frames", "hdr_frames", "crop", "meta")
"""Per-sample metadata a record repeats exactly; ``times`` and ``score`` are compared as the writer rounds them."""


def record_differences(record: dict[str, Any], stored: dict[str, Any], shard_split: str | None) -> list[str]:
    """How a (well-typed) manifest record differs from what its shard stores about that sample: the per-sample
    metadata (:meth:`datakit.store.shards.ShardReader.record`) and the split, which must be the shard's folder
    (and the split the shard itself records, when it does)."""
    out = []
    folder = PurePosixPath(record["shard"]).parent.name
    if record["split"] != folder:
        out.append(f"split {record['split']!r}, but its shard is in the {folder!r} folder")
    elif shard_split is not None and shard_split != folder:
        out.append(f"its shard was written for split {shard_split!r} and moved to the {folder!r} folder")
    for key in _METADATA:
        if record[key] != stored[key]:
            out.append(f"{key} {_short(record[key])} in the manifest, {_short(stored[key])} in the shard")
    if [round(float(v), 6) for v in stored["times"]] != record["times"]:
        out.append("times differ from the shard's")
    if round(float(stored["score"]), 6) != record["score"]:
        out.append(f"score {record['score']} in the manifest, {round(float(stored['score']), 6)} in the shard")
    return out


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def verify_output(root: str | os.PathLike[str], *, progress: bool = True) -> dict[str, Any]:
    """Re-read every shard referenced by the manifest; return ``{"samples", "shards", "problems": [...]}``.

    Checks: the manifest's records are well-typed (:func:`datakit.store.records.read_manifest`; a malformed
    manifest raises :class:`StoreError`, exit 2); each referenced shard exists inside the folder and opens as a
    valid shard (:func:`datakit.store.shards.check_shard_file`); its sample count equals the number of records
    pointing at it, no two records point at the same sample and no sample id appears twice; each record's sample
    id, source id, scene, frame indices, times, crop, score and meta equal the shard's own per-sample metadata,
    its split equals the shard's folder (and the split the shard records), and its shape and content hash
    (:func:`datakit.store.shards.content_hash`, in the algorithm the record names) match the stored pixels; no
    shard on disk is missing from the manifest.
    """
    root = Path(root)
    records = read_manifest(root)
    by_shard: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_shard[record["shard"]].append(record)
    problems: list[str] = []
    ids = Counter(record["sample_id"] for record in records)
    for sample_id in sorted(i for i, n in ids.items() if n > 1):
        problems.append(f"{sample_id}: listed {ids[sample_id]} times in the manifest")
    for shard_name, shard_records in tqdm(sorted(by_shard.items()), desc="verify", unit="shard", disable=not progress):
        path = root / shard_name
        if not path.is_file():
            problems.append(f"{shard_name}: missing ({len(shard_records)} samples)")
            continue
        try:
            reader = ShardReader(path)
            reader.advise_verify = False
            count = len(reader)
            shard_split = reader.file.attrs.get("split")
            stored_records = reader.records()
        except (StoreError, OSError, KeyError) as error:
            problems.append(f"{shard_name}: unreadable ({error})")
            continue
        shard_split = shard_split.decode() if isinstance(shard_split, bytes) else shard_split
        shard_split = shard_split if isinstance(shard_split, str) else None
        if count != len(shard_records):
            problems.append(f"{shard_name}: holds {count} samples, manifest lists {len(shard_records)}")
        indices = Counter(record["index"] for record in shard_records)
        for index in sorted(i for i, n in indices.items() if n > 1):
            problems.append(f"{shard_name}[{index}]: listed by {indices[index]} manifest records")
        for record in shard_records:
            index = record["index"]
            if index >= count:
                problems.append(f"{record['sample_id']}: index {index} beyond the {count} samples of {shard_name}")
                continue
            stored = stored_records[index]
            try:
                sdr, hdr = reader.arrays(index)
            except StoreError as error:
                problems.append(f"{record['sample_id']}: {error}")
                continue
            if stored["sample_id"] != record["sample_id"]:
                problems.append(f"{record['sample_id']}: {shard_name}[{index}] holds {stored['sample_id']}")
            else:
                problems.extend(f"{record['sample_id']}: {d}" for d in record_differences(record, stored, shard_split))
            expected = (record["frames"], record["height"], record["width"], 3)
            if sdr.shape != expected:
                problems.append(f"{record['sample_id']}: shape {sdr.shape}, manifest says {expected}")
            elif not hash_matches(sdr, hdr, record["content_hash"]):
                problems.append(f"{record['sample_id']}: content hash differs from the manifest")
        reader.close()
    on_disk = {p.relative_to(root).as_posix() for p in list_shards(root)}
    for extra in sorted(on_disk - set(by_shard)):
        problems.append(f"{extra}: shard not listed in the manifest")
    return {"samples": len(records), "shards": len(by_shard), "problems": problems}


def inspect_output(root: str | os.PathLike[str]) -> dict[str, Any]:
    """A summary of an output folder: samples per split and shape, sizes, sources, rejections."""
    root = Path(root)
    records = read_manifest(root)
    per_split_shape: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    for record in records:
        per_split_shape[f"{record['split']} {record['frames']}x{record['height']}x{record['width']}"] += 1
        sources[record["source_id"]] += 1
    summary = read_summary(root)
    shard_bytes = sum(p.stat().st_size for p in list_shards(root))
    raw_bytes = sum(r["frames"] * r["height"] * r["width"] * 3 * 3 for r in records)  # uint8 + uint16
    return {
        "folder": str(root),
        "samples": len(records),
        "samples_per_split_and_shape": dict(sorted(per_split_shape.items())),
        "sources": len(sources),
        "shard_bytes": shard_bytes,
        "compression_ratio": round(raw_bytes / shard_bytes, 3) if shard_bytes else None,
        "rejected_by_reason": summary.get("rejected_by_reason", {}),
        "failed_sources": summary.get("failed_sources", []),
        "recipe": summary.get("recipe", {}).get("name") if isinstance(summary.get("recipe"), dict) else None,
    }
