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
      .datakit.lock                                 the writer's lock (``flock``), with the holder's pid

The unit of work is one source (a video pair or an image). A source is done when ``parts/<source>.json`` exists;
a rerun skips it. An unfinished source's leftovers (shards, records) are removed before it is redone, so the
final manifest equals that of an uninterrupted run.

One writer at a time: ``build`` and ``synth`` hold an exclusive lock on the folder (:meth:`OutputFolder.locked`)
from before their first write until the end; a second run into the same folder is refused. Under the lock,
the temporary files of a run that was killed are leftovers, and :meth:`OutputFolder.claim` removes them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from datakit.errors import StoreError
from datakit.fsutil import atomic_write_text, is_temporary, write_failure
from datakit.store.records import check_id, parse_manifest_text, read_manifest, read_status, read_text
from datakit.store.shards import ShardWriter, shard_source

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
        self.lock = self.root / ".datakit.lock"

    def prepare(self) -> None:
        try:
            self.shards.mkdir(parents=True, exist_ok=True)
            self.parts.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise write_failure(error, self.root) from None

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder's exclusive writer lock for the block (``flock`` on ``.datakit.lock``).

        Taken by the process that schedules the jobs, before anything is written; the kernel releases it when
        that process ends, however it ends. A folder another run holds is refused with its pid; a folder that
        cannot be written raises :class:`datakit.errors.OutputWriteError`.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise write_failure(error, self.root) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                raise StoreError(
                    f"{self.root}: another datakit run (pid {holder}) is writing this folder; "
                    "wait for it to end or use another --out"
                ) from None
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            except OSError as error:
                raise write_failure(error, self.lock) from None
            yield
        finally:
            os.close(fd)  # releases the lock

    def claim(self, recipe: dict[str, Any], digest: str) -> None:
        """Prepare the folder for a recipe; refuse to resume a folder that was started with another recipe.

        Call it holding :meth:`locked`: the check and the write of ``recipe.json`` are then one step, and the
        temporary files found are a killed run's leftovers, removed here.
        """
        self.prepare()
        self._remove_temporaries()
        path = self.root / "recipe.json"
        if path.is_file():
            previous = json.loads(path.read_text(encoding="utf-8")).get("recipe_hash")
            if previous != digest:
                raise StoreError(
                    f"{self.root}: was built with another recipe (hash {str(previous)[:12]}); use a new --out folder"
                )
            return
        atomic_write_text(path, json.dumps({"recipe_hash": digest, "recipe": recipe}, indent=2, sort_keys=True))

    def _remove_temporaries(self) -> None:
        """Remove the temporary files (:func:`datakit.fsutil.is_temporary`) of runs that were killed; called
        under the lock only, when no live run owns one."""
        splits = [p for p in self.shards.iterdir() if p.is_dir()] if self.shards.is_dir() else []
        for folder in (self.root, self.parts, self.root / "report", *splits):
            for path in folder.iterdir() if folder.is_dir() else ():
                if is_temporary(path.name) and path.is_file():
                    path.unlink(missing_ok=True)

    def is_done(self, source_id: str) -> bool:
        return (self.parts / f"{source_id}.json").is_file()

    def reset_source(self, source_id: str) -> None:
        """Remove whatever an interrupted run of this source left behind: its shards (published or being
        written: the names :func:`datakit.store.shards.shard_source` attributes to it, and no other source's)
        and its parts."""
        check_source_id(source_id)
        for split in self.shards.iterdir() if self.shards.is_dir() else ():
            for path in split.iterdir() if split.is_dir() else ():
                if shard_source(path.name) == source_id:
                    path.unlink(missing_ok=True)
        for suffix in (".jsonl", ".json", ".failed.json"):
            (self.parts / f"{source_id}{suffix}").unlink(missing_ok=True)

    def writer(self, source_id: str, **kwargs: Any) -> ShardWriter:
        return ShardWriter(self.shards, check_source_id(source_id), **kwargs)

    def write_samples(
        self, source_id: str, samples: Iterable[Any], split: str, digest: str, **kwargs: Any
    ) -> list[dict[str, Any]]:
        """Write one source's samples (:class:`datakit.store.shards.Sample`) through one shard writer
        (``kwargs`` go to :class:`ShardWriter`); returns their manifest records, each with the recipe hash."""
        records = []
        with self.writer(source_id, **kwargs) as writer:
            for sample in samples:
                record = writer.add(sample, split)
                record["recipe_hash"] = digest
                records.append(record)
        return records

    def publish_source(self, source_id: str, records: list[dict[str, Any]], status: dict[str, Any]) -> None:
        """Write a finished source's records, then its status (the done marker), each atomically."""
        from datakit.engine import ensure_parent_alive

        ensure_parent_alive()  # a worker whose run is gone publishes nothing
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
        from datakit.engine import ensure_parent_alive

        ensure_parent_alive()
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
            if path.name.startswith("."):  # a temporary file, not a status
                continue
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

