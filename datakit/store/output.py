"""The output folder of ``datakit build`` and ``datakit synth``, with per-source resume.

Layout::

    OUT/
      shards/<split>/<source>-<T>x<H>x<W>-<k>.h5   sample arrays (see datakit.store.shards)
      parts/<source>.jsonl                          manifest records of one finished source
      parts/<source>.json                           status of one finished source (written last: the done marker)
      parts/<source>.failed.json                    status of a source that failed (retried by a rerun)
      recipe.json                                   the validated recipe and its hash (a rerun must match it)
      manifest.jsonl                                all records, sources in sorted order (rebuilt from parts/)
      summary.json                                  counts per split, rejections by reason, per-source status
      report.html                                   the human report (datakit.report)

The unit of work is one source (a video pair or an image). A source is done when ``parts/<source>.json`` exists;
a rerun skips it. An unfinished source's leftovers (shards, records) are removed before it is redone, so the
final manifest equals that of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from datakit.errors import StoreError
from datakit.fsutil import atomic_write_text
from datakit.store.records import check_id, parse_manifest_text, read_manifest, read_status, read_text
from datakit.store.shards import ShardWriter

__all__ = ["OutputFolder", "check_source_id", "read_manifest"]


def check_source_id(source_id: str) -> str:
    """Source ids become file names: letters, digits, '.', '_' and '-' only (:func:`datakit.store.records.check_id`)."""
    return check_id(source_id, "source id")


class OutputFolder:
    """Paths and publication rules of one output folder."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.shards = self.root / "shards"
        self.parts = self.root / "parts"
        self.manifest = self.root / "manifest.jsonl"
        self.summary = self.root / "summary.json"
        self.report = self.root / "report.html"

    def prepare(self) -> None:
        self.shards.mkdir(parents=True, exist_ok=True)
        self.parts.mkdir(parents=True, exist_ok=True)

    def claim(self, recipe: dict[str, Any], digest: str) -> None:
        """Prepare the folder for a recipe; refuse to resume a folder that was started with another recipe."""
        self.prepare()
        path = self.root / "recipe.json"
        if path.is_file():
            previous = json.loads(path.read_text(encoding="utf-8")).get("recipe_hash")
            if previous != digest:
                raise StoreError(
                    f"{self.root}: was built with another recipe (hash {str(previous)[:12]}); use a new --out folder"
                )
            return
        atomic_write_text(path, json.dumps({"recipe_hash": digest, "recipe": recipe}, indent=2, sort_keys=True))

    def is_done(self, source_id: str) -> bool:
        return (self.parts / f"{source_id}.json").is_file()

    def reset_source(self, source_id: str) -> None:
        """Remove whatever an interrupted run of this source left behind."""
        check_source_id(source_id)
        for path in self.shards.glob(f"*/{source_id}-*.h5"):
            path.unlink()
        for path in self.shards.glob(f"*/.{source_id}-*.part.h5"):
            path.unlink()
        for suffix in (".jsonl", ".json", ".failed.json"):
            (self.parts / f"{source_id}{suffix}").unlink(missing_ok=True)

    def writer(self, source_id: str, **kwargs: Any) -> ShardWriter:
        return ShardWriter(self.shards, check_source_id(source_id), **kwargs)

    def publish_source(self, source_id: str, records: list[dict[str, Any]], status: dict[str, Any]) -> None:
        """Write a finished source's records, then its status (the done marker), each atomically."""
        lines = []
        for record in records:
            record = dict(record)
            if not record["shard"].startswith("shards/"):
                record["shard"] = f"shards/{record['shard']}"
            lines.append(json.dumps(record, sort_keys=True))
        atomic_write_text(self.parts / f"{source_id}.jsonl", "".join(line + "\n" for line in lines))
        status = {**status, "source_id": source_id, "samples": len(records)}
        atomic_write_text(self.parts / f"{source_id}.json", json.dumps(status, indent=2, sort_keys=True))

    def publish_failure(self, source_id: str, status: dict[str, Any]) -> None:
        """Record a failed source (not a done marker: a rerun tries it again)."""
        status = {**status, "source_id": source_id, "state": "failed", "samples": 0}
        atomic_write_text(self.parts / f"{source_id}.failed.json", json.dumps(status, indent=2, sort_keys=True))

    def record_failures(self, results: list[dict[str, Any]]) -> None:
        """Publish the failures that a job could not record itself (crashes caught by the engine)."""
        for result in results:
            if result.get("state") == "failed" and not (self.parts / f"{result['source_id']}.failed.json").is_file():
                self.publish_failure(result["source_id"], result)

    def statuses(self) -> dict[str, dict[str, Any]]:
        """Status of every finished or failed source, by source id."""
        out = {}
        for path in sorted(self.parts.glob("*.json")):
            source_id = path.name.removesuffix(".failed.json").removesuffix(".json")
            out[source_id] = read_status(path)
        return out

    def finalize(self, extra_summary: dict[str, Any]) -> dict[str, Any]:
        """Concatenate the parts into manifest.jsonl and write summary.json (both atomically)."""
        statuses = self.statuses()
        lines: list[str] = []
        per_split: Counter[str] = Counter()
        rejected: Counter[str] = Counter()
        for source_id in sorted(statuses):
            part = self.parts / f"{source_id}.jsonl"
            text = read_text(part) if part.is_file() else ""
            per_split.update(record["split"] for record in parse_manifest_text(text, str(part)))  # records checked
            lines.extend(line for line in text.splitlines() if line.strip())
            for reason, count in statuses[source_id].get("rejected", {}).items():
                rejected[reason] += int(count)
        atomic_write_text(self.manifest, "".join(line + "\n" for line in lines))
        summary = {
            "samples": len(lines),
            "samples_per_split": dict(sorted(per_split.items())),
            "rejected_by_reason": dict(sorted(rejected.items())),
            "sources": statuses,
            "failed_sources": sorted(s for s, st in statuses.items() if st.get("state") == "failed"),
            **extra_summary,
        }
        atomic_write_text(self.summary, json.dumps(summary, indent=2, sort_keys=True))
        return summary

