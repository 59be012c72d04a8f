"""``datakit import LAYOUT SRC --out OUT``: one HDR/SDR pair per job, audited, tiled, written as shards.

Each pair: read the HDR (16-bit PQ BT.2020 R'G'B' PNG/TIFF, or an HDR10 video frame converted by
:class:`datakit.io.reader.VideoReader` with the tagged matrix) and the SDR (8-bit BT.709 R'G'B' PNG/JPEG, or an
SDR video frame), check them, audit the HDR codes (:mod:`datakit.audit.frames`), undo a detected gain error when
``fix`` is set (recorded in the manifest as ``meta.fix``), gate not-HDR frames when the recipe asks, cut the
recipe's tiles and publish the samples through :class:`datakit.store.output.OutputFolder` (the same shards,
manifest, resume and report as ``build`` and ``synth``). Samples are one frame (``T = 1``).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from datakit import __version__
from datakit.engine import Job, run_jobs
from datakit.errors import DatakitError, InputError
from datakit.importers.layouts import ImportPair, find_pairs
from datakit.importers.schema import IMPORT_SCHEMA
from datakit.io.probe import VIDEO_EXTENSIONS
from datakit.recipe import load_recipe, recipe_hash
from datakit.store.output import OutputFolder
from datakit.store.shards import Sample

HISTOGRAM_FILES = 16  # HDR files re-read for the audit histograms of the report


def import_dataset(
    layout: str,
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    recipe_path: str | os.PathLike[str] | None = None,
    split: str | None = None,
    fix: bool = False,
    workers: int = 1,
    engine: str = "local",
    report: bool = True,
) -> dict[str, Any]:
    """Import (or resume importing) ``src`` into ``out``; returns the summary."""
    from datakit.recipes import shipped_recipe

    recipe = load_recipe(recipe_path or shipped_recipe("import_hdrtv1k"), {"import": IMPORT_SCHEMA}, "import")
    if split not in (None, "train", "test", "val"):
        raise InputError(f"--split {split!r}: choose train, test or val")
    pairs = find_pairs(layout, src)
    folder = OutputFolder(out)
    settings = {**recipe, "import": {"layout": layout, "fix": fix, "split": split}}
    digest = recipe_hash(settings)
    with folder.locked():  # one writer at a time, from the first write to the last
        folder.claim(settings, digest)
        jobs = [
            Job(p.source_id, import_pair, (p, recipe, split, fix, digest, str(folder.root)))
            for p in pairs
            if not folder.is_done(p.source_id)
        ]
        results = run_jobs(jobs, workers=workers, engine=engine, desc="pairs")
        folder.record_failures(results)
        statuses = folder.statuses()
        audit = _audit_summary(statuses)
        summary = folder.finalize(
            {
                "recipe": recipe,
                "recipe_hash": digest,
                "tool_version": __version__,
                "pair_count": len(pairs),
                "import": settings["import"],
                "audit": audit["summary"],
            }
        )
        from datakit.audit.report import write_audit
        from datakit.audit.run import read_codes

        hdr_files = sorted({p.hdr for p in pairs if p.hdr.suffix.lower() not in VIDEO_EXTENSIONS})[:HISTOGRAM_FILES]
        frames = []
        for path in hdr_files:
            try:
                codes = read_codes(path)
            except DatakitError:
                continue
            if codes.dtype == np.uint16:  # a strided subset is enough for a histogram (and keeps 4K frames small)
                step = max(1, int(np.sqrt(codes.shape[0] * codes.shape[1] / 250_000)))
                frames.append(np.ascontiguousarray(codes[::step, ::step]))
        write_audit(folder.root, audit, frames)
        if report:
            from datakit.report.html import write_report

            summary["report"] = str(write_report(folder.root))
    return summary


def _audit_summary(statuses: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from datakit.audit.run import summarise

    files, seen = [], set()
    for source_id, status in sorted(statuses.items()):
        for role in ("hdr", "sdr"):
            path = (status.get("layout_files") or {}).get(role, f"{source_id}:{role}")
            if status.get(f"audit_{role}") and path not in seen:  # an HDRTV4K HDR frame counts once
                seen.add(path)
                files.append({"file": status.get(f"{role}_file", source_id), "role": role,
                              "findings": status[f"audit_{role}"]})  # fmt: skip
    return {"source": "import", "kind": "import", "files": files, "summary": summarise(files)}


def read_hdr(pair: ImportPair) -> np.ndarray:
    """uint16 PQ BT.2020 R'G'B' codes ``(H, W, 3)`` of the pair's HDR side."""
    wrong_depth = "{bits}-bit image where a 16-bit PQ HDR image is needed"
    return _read_side(pair.hdr, pair.hdr_frame, "pq", np.uint16, wrong_depth)


def read_sdr(pair: ImportPair) -> np.ndarray:
    """uint8 BT.709 R'G'B' codes ``(H, W, 3)`` of the pair's SDR side."""
    wrong_depth = "{bits}-bit SDR image; SDR must be 8-bit BT.709 (PNG or JPEG)"
    return _read_side(pair.sdr, pair.sdr_frame, "sdr", np.uint8, wrong_depth)


def _read_side(path: Path, frame: int | None, encoding: str, dtype: type, wrong_depth: str) -> np.ndarray:
    """One side's codes: frame ``frame`` (default 0) of a video decoded with ``encoding``, or an image whose
    dtype must be ``dtype`` (else :class:`InputError` with ``wrong_depth`` naming its bit depth)."""
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        from datakit.io.reader import VideoReader

        with VideoReader(path, encoding=encoding, threads=1) as reader:
            return reader.read_index(frame or 0).rgb(np.dtype(dtype).name)
    from datakit.audit.run import read_codes

    codes = read_codes(path)
    if codes.dtype != dtype:
        raise InputError(f"{path}: " + wrong_depth.format(bits=codes.dtype.itemsize * 8))
    return codes


def import_pair(
    pair: ImportPair, recipe: dict[str, Any], split_override: str | None, fix: bool, digest: str, out_root: str
) -> dict[str, Any]:
    """Read, audit, (fix,) tile and publish one pair; returns its status."""
    folder = OutputFolder(out_root)
    folder.reset_source(pair.source_id)
    started = time.perf_counter()
    split = split_override or pair.split or recipe["split"]["default"]
    try:
        samples, status = _samples(pair, recipe, split, fix)
        records = folder.write_samples(
            pair.source_id, samples, split, digest, max_bytes=recipe["store"]["max_shard_mb"] << 20,
            attrs={"recipe_hash": digest},
        )  # fmt: skip
    except DatakitError as error:
        status = {"state": "failed", "split": split, "error": str(error)}
        folder.publish_failure(pair.source_id, status)
        return {**status, "source_id": pair.source_id}
    status.update(state="done", split=split, seconds=round(time.perf_counter() - started, 2))
    folder.publish_source(pair.source_id, records, status)
    return {**status, "source_id": pair.source_id, "samples": len(records)}


def _samples(pair: ImportPair, recipe: dict[str, Any], split: str, fix: bool) -> tuple[list[Sample], dict[str, Any]]:
    from datakit.audit.frames import audit_hdr, audit_sdr, fix_of
    from datakit.audit.gain import fix_gain
    from datakit.pairs import gates
    from datakit.pairs.tiles import plan_tiles

    hdr, sdr = read_hdr(pair), read_sdr(pair)
    if hdr.shape != sdr.shape:
        raise InputError(
            f"{pair.source_id}: HDR {hdr.shape[1]}x{hdr.shape[0]} and SDR {sdr.shape[1]}x{sdr.shape[0]} differ in size"
        )
    found_hdr, found_sdr = audit_hdr(hdr), audit_sdr(sdr)
    status: dict[str, Any] = {
        "layout_files": {"hdr": str(pair.hdr), "sdr": str(pair.sdr)},
        "hdr_file": pair.hdr.name, "sdr_file": pair.sdr.name, "version": pair.version,
        "audit_hdr": [f.to_dict() for f in found_hdr], "audit_sdr": [f.to_dict() for f in found_sdr],
        "rejected": Counter(), "warnings": [f.message for f in found_hdr + found_sdr if f.problem],
    }  # fmt: skip
    repair = fix_of(found_hdr) if fix else None
    if repair:
        hdr = fix_gain(hdr, repair["gain"], repair["offset"])
        status["fix"] = repair
    stats = gates.hdr_stats(hdr)
    limits = {k: recipe["gates"][k] for k in ("min_peak_nits", "min_share_above_white")}
    if gates.is_not_hdr(stats, **limits):
        from datakit.audit.hdr_range import describe

        status["rejected"][gates.NOT_HDR] += 1
        status["verdict"] = f"looks like SDR in a PQ container: {describe(stats)}"
        return [], status
    tiles = recipe["tiles"]["test" if split == "test" else "train"]
    rng = np.random.default_rng([recipe["store"]["seed"], *pair.source_id.encode()])
    boxes = plan_tiles(tiles["strategy"], tiles, height=hdr.shape[0], width=hdr.shape[1], rng=rng)
    if not boxes:
        status["rejected"]["smaller_than_tile"] += 1
    meta_base = {
        "import": {"hdr_file": pair.hdr.name, "sdr_file": pair.sdr.name, "hdr_frame": pair.hdr_frame,
                   "sdr_frame": pair.sdr_frame},
        "audit": {f.kind: f.verdict for f in found_hdr},
        "hdr_stats": stats,
    }  # fmt: skip
    if pair.version:
        meta_base["version"] = pair.version
    if repair:
        meta_base["fix"] = {**repair, "what": "hdr codes rescaled: round((v - offset) / gain)"}
    samples = [
        Sample(
            sample_id=f"{pair.source_id}-t{k:02d}",
            source_id=pair.source_id,
            sdr=np.ascontiguousarray(sdr[None, y : y + h, x : x + w]),
            hdr=np.ascontiguousarray(hdr[None, y : y + h, x : x + w]),
            sdr_frames=[pair.sdr_frame or 0],
            hdr_frames=[pair.hdr_frame or 0],
            times=[0.0],
            crop=(x, y, w, h),
            meta=dict(meta_base),
        )
        for k, (x, y, w, h) in enumerate(boxes)
    ]
    return samples, status


def ground_truth_warnings(data: list[str | os.PathLike[str]]) -> list[str]:
    """Warnings for scoring on imported folders whose HDR ground truth carries an audited, unfixed error (a gain
    error shifts PSNR: README, "Scoring imported data"); folders that are not imports give none."""
    import json

    warnings = []
    for root in data:
        path = Path(root) / "summary.json"
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
            settings, audit = summary.get("import"), summary.get("audit") or {}
            gain_errors = int((audit.get("gain") or {}).get("gain error", 0))
        except (OSError, ValueError, AttributeError, TypeError):
            continue
        if isinstance(settings, dict) and gain_errors and not settings.get("fix"):
            warnings.append(
                f"{root}: {gain_errors} ground-truth HDR files carry a gain error (not fixed): PSNR against them is "
                "shifted; import again with --fix"
            )
    return warnings
