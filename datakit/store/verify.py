"""Check an output folder against its manifest, and summarise it."""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

from datakit.errors import StoreError
from datakit.store.output import read_manifest
from datakit.store.shards import ShardReader, hash_matches, list_shards


def verify_output(root: str | os.PathLike[str], *, progress: bool = True) -> dict[str, Any]:
    """Re-read every shard referenced by the manifest; return ``{"samples", "shards", "problems": [...]}``.

    Checks: each referenced shard exists and opens; its sample count equals the number of records pointing at it;
    each record's sample id, shape and content hash (:func:`datakit.store.shards.content_hash`, in the
    algorithm the record names) match the stored sample;
    no shard on disk is missing from the manifest.
    """
    root = Path(root)
    records = read_manifest(root)
    by_shard: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_shard[record["shard"]].append(record)
    problems: list[str] = []
    for shard_name, shard_records in tqdm(sorted(by_shard.items()), desc="verify", unit="shard", disable=not progress):
        path = root / shard_name
        if not path.is_file():
            problems.append(f"{shard_name}: missing ({len(shard_records)} samples)")
            continue
        try:
            reader = ShardReader(path)
            count = len(reader)
        except (StoreError, OSError, KeyError) as error:
            problems.append(f"{shard_name}: unreadable ({error})")
            continue
        if count != len(shard_records):
            problems.append(f"{shard_name}: holds {count} samples, manifest lists {len(shard_records)}")
        for record in shard_records:
            index = record["index"]
            if index >= count:
                problems.append(f"{record['sample_id']}: index {index} beyond the {count} samples of {shard_name}")
                continue
            try:
                sdr, hdr = reader.arrays(index)
                stored_id = reader.file["sample_id"][index].decode()
            except (OSError, ValueError) as error:
                problems.append(f"{record['sample_id']}: unreadable in {shard_name} ({error})")
                continue
            if stored_id != record["sample_id"]:
                problems.append(f"{record['sample_id']}: {shard_name}[{index}] holds {stored_id}")
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
    summary_path = root / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
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
