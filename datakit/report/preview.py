"""``datakit preview``: a PNG sheet of K samples, each LDR frame beside a viewing rendition of its HDR frame."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from datakit.errors import InputError, StoreError
from datakit.report.images import fit_width, hdr_view, hstack, label, vstack, write_png
from datakit.store.records import read_manifest
from datakit.store.shards import ShardReader

FRAME_WIDTH = 160


def describe(meta: dict) -> list[str]:
    """Short text lines of a sample's synthesis or alignment parameters (``meta`` is free-form, read from the
    manifest: parameters of an unexpected shape are shown as JSON)."""
    try:
        return _describe(meta)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        text = json.dumps(meta, sort_keys=True)
        return [text if len(text) <= 100 else text[:97] + "..."]


def _describe(meta: dict) -> list[str]:
    d = meta.get("degradation")
    if d:
        tonemap = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in d["tonemap_params"].items()
        )
        codec = f"{d['codec']} crf {d['crf']}" if d.get("codec") else "no codec"
        ev = d["exposure_ev"]
        m = meta.get("mastering")
        peak = f"peak {m['peak_nits']:g} cd/m2 {m['primaries']}" if m else ""
        master = [f"master {m['grade']} · {peak} · MaxCLL {m['max_cll']} MaxFALL {m['max_fall']}"] if m else []
        return [
            *master,
            f"tonemap {d['tonemap']} ({tonemap})",
            f"gamut {d['gamut']} · transfer {d['transfer']} · sat {d['saturation'][0]:.2f}->{d['saturation'][1]:.2f}"
            f" · EV {ev[0]:+.2f}->{ev[-1]:+.2f}",
            f"noise shot {d['noise_shot']:.4f} read {d['noise_read']:.4f} · blur {d['blur_sigma']:.2f} · {codec}",
        ]
    stats = meta.get("hdr_stats", {})
    return [f"clip {meta.get('clip', '?')} · HDR peak {stats.get('peak_nits', 0):.0f} nits"] if stats else []


def write_preview(root: str | os.PathLike[str], n: int = 8, out: str | os.PathLike[str] | None = None) -> Path:
    """Write ``OUT/preview.png`` (or ``out``) for the first ``n`` samples of the manifest (spread evenly)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError(f"--n {n!r}: the number of samples must be at least 1")
    root = Path(root)
    records = read_manifest(root)
    if not records:
        raise StoreError(f"{root}: the manifest lists no samples")
    picks = [records[i] for i in np.unique(np.linspace(0, len(records) - 1, min(n, len(records))).round().astype(int))]
    rows = []
    for record in picks:
        reader = ShardReader(root / record["shard"])
        sdr, hdr = reader.arrays(record["index"])
        reader.close()
        frames = [
            hstack([fit_width(s, FRAME_WIDTH), fit_width(hdr_view(h), FRAME_WIDTH)], gap=2)
            for s, h in zip(sdr, hdr, strict=True)
        ]
        strip = hstack(frames, gap=8)
        rows.append(
            label(
                strip,
                [f"{record['sample_id']} ({record['split']}): each frame LDR | HDR view", *describe(record["meta"])],
            )
        )
    return write_png(Path(out) if out else root / "preview.png", vstack(rows, gap=10))
