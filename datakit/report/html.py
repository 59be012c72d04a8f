"""``report.html``: what a person checks before training on an output folder.

One thumbnail per clip (SDR beside a viewing rendition of the HDR), the per-source status (alignment figures for
paired builds, degradation parameters for synthetic ones), rejections by reason, and the luminance histogram of the
HDR side with BT.2408 reference white and 1000 cd/m^2 marked. Pictures go to ``OUT/report/`` as PNG files.
"""

from __future__ import annotations

import html
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from datakit.audit.report import audit_section
from datakit.color.gamut import luminance_weights
from datakit.color.transfer import st2084_eotf
from datakit.fsutil import atomic_write_text
from datakit.report.images import fit_width, hdr_view, histogram_png, hstack, write_png
from datakit.store.records import check_id, read_manifest, read_summary
from datakit.store.shards import ShardReader

THUMB_WIDTH = 240
HIST_EDGES = np.logspace(-3, 4, 57)  # 0.001 .. 10000 cd/m^2


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_esc(r.get(c, ''))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(root: str | os.PathLike[str], *, max_thumbnails: int = 300, progress: bool = True) -> Path:
    """Write ``OUT/report.html`` (and its PNGs under ``OUT/report/``) from the manifest, summary and shards."""
    root = Path(root)
    records = read_manifest(root)
    summary = read_summary(root)
    pictures = root / "report"
    pictures.mkdir(exist_ok=True)

    # Thumbnails: the first tile of each clip, up to max_thumbnails.
    seen: set[tuple[str, object]] = set()
    chosen = []
    for record in records:
        key = (record["source_id"], str(record["meta"].get("clip", record["sample_id"])))  # tiles of a clip
        if key not in seen:
            seen.add(key)
            chosen.append(record)
    chosen = chosen[:max_thumbnails]
    readers: dict[str, ShardReader] = {}
    counts = np.zeros(len(HIST_EDGES) - 1)
    weights = luminance_weights("bt2020").astype(np.float32)
    cards = []
    for record in tqdm(chosen, desc="report", unit="clip", disable=not progress):
        reader = readers.setdefault(record["shard"], ShardReader(root / record["shard"]))
        sdr, hdr = reader.arrays(record["index"])
        centre = len(record["sdr_frames"]) // 2
        frame_hdr = hdr[centre]
        step = max(1, int(np.sqrt(frame_hdr.shape[0] * frame_hdr.shape[1] / 20000)))
        nits = st2084_eotf(frame_hdr[::step, ::step].astype(np.float32) / 65535.0) @ weights
        counts += np.histogram(np.clip(nits, HIST_EDGES[0], HIST_EDGES[-1]), HIST_EDGES)[0]
        sheet = hstack([fit_width(sdr[centre], THUMB_WIDTH), fit_width(hdr_view(frame_hdr), THUMB_WIDTH)])
        name = f"{check_id(record['sample_id'], 'sample id')}.png"  # a file name: the id check, again here
        write_png(pictures / name, sheet)
        stats = record["meta"].get("hdr_stats")  # free-form: shown only when it holds a number
        peak = stats.get("peak_nits") if isinstance(stats, dict) else None
        caption = (
            f"{record['sample_id']} · {record['split']} · frames {record['sdr_frames'][0]}–{record['sdr_frames'][-1]}"
            f" · score {record['score']:.2f}"
        )
        if isinstance(peak, int | float) and not isinstance(peak, bool):
            caption += f" · peak {peak:.0f} nits"
        cards.append(f'<figure><img src="report/{_esc(name)}"><figcaption>{_esc(caption)}</figcaption></figure>')
    for reader in readers.values():
        reader.close()
    histogram_png(
        pictures / "hdr_luminance_histogram.png", counts, HIST_EDGES,
        title="HDR luminance (BT.2020 Y, cd/m^2) of the thumbnail frames", x_label="cd/m^2 (log)",
        marks={"203": 203.0, "1000": 1000.0},
    )  # fmt: skip

    source_rows = []
    for source_id, status in sorted(summary.get("sources", {}).items()):
        alignment = status.get("alignment") if isinstance(status.get("alignment"), dict) else {}
        rejected = status.get("rejected") if isinstance(status.get("rejected"), dict) else {}
        source_rows.append(
            {
                "source": source_id,
                "state": status.get("state", ""),
                "split": status.get("split", ""),
                "samples": status.get("samples", 0),
                "offset_frames": alignment.get("offset_frames", ""),
                "offset_seconds": alignment.get("offset_seconds", ""),
                "sdr_picture": alignment.get("sdr_picture", ""),
                "scale": alignment.get("scale", ""),
                "confidence": alignment.get("confidence", ""),
                "rejected": ", ".join(f"{k}: {v}" for k, v in rejected.items()),
                "error": status.get("error", ""),
                "verdict": status.get("verdict", ""),
            }
        )
    per_split: dict[str, int] = defaultdict(int)
    for record in records:
        per_split[record["split"]] += 1
    recipe = summary.get("recipe", {})
    recipe_meta = recipe.get("recipe", {}) if isinstance(recipe, dict) else {}
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>datakit report: {_esc(root.name)}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; margin: 8px 0 20px; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; }}
figure {{ display: inline-block; margin: 6px; }} figcaption {{ font-size: 11px; max-width: 490px; }}
</style></head><body>
<h1>{_esc(root.name)}</h1>
<p>Recipe <b>{_esc(recipe_meta.get("name", "?"))}</b> ({_esc(recipe_meta.get("protocol", ""))}),
recipe hash <code>{_esc(str(summary.get("recipe_hash", ""))[:16])}</code>, datakit {
        _esc(summary.get("tool_version", ""))
    }.
{len(records)} samples: {_esc(dict(per_split))}.</p>
<h2>Sources</h2>{_table(source_rows, list(source_rows[0]) if source_rows else ["source"])}
<h2>Rejected clips by reason</h2>{
        _table(
            [{"reason": k, "clips": v} for k, v in summary.get("rejected_by_reason", {}).items()], ["reason", "clips"]
        )
    }
{audit_section(root)}
<h2>HDR luminance</h2><img src="report/hdr_luminance_histogram.png">
<h2>Clips</h2><p>Each: SDR (left) beside a viewing rendition of the HDR (right), centre frame of the clip.</p>
{"".join(cards)}
</body></html>
"""
    atomic_write_text(root / "report.html", page)
    return root / "report.html"
