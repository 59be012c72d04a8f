"""HDR that is not really HDR: SDR placed in a PQ container (for example mapped with BT.2408 at 203 cd/m^2).

The statistics and the gate are :func:`datakit.pairs.gates.hdr_stats` and :func:`datakit.pairs.gates.is_not_hdr`;
this module words their verdict with the evidence, for a frame (``datakit audit``), for an HDR10 video
(``datakit probe`` / ``audit``) and for a pair whose clips the build rejected (:func:`sdr_in_pq_status`).
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import numpy as np

from datakit.audit.findings import SDR_IN_PQ, Finding
from datakit.pairs import gates

# The audit's not-HDR limits: the gate's own defaults (gates.is_not_hdr), which the shipped paired recipes also
# set in their [gates]: the robust peak (99.99th percentile of max(R,G,B)) must reach 600 cd/m^2, about three
# times the BT.2408 reference white, and 0.05 % of the pixels must be brighter than that white.
NOT_HDR_LIMITS = {
    name: p.default
    for name, p in inspect.signature(gates.is_not_hdr).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY
}


def describe(stats: dict[str, Any]) -> str:
    """The evidence in words: peak, p99.99, p99.9, share above 203 cd/m^2, share outside BT.709."""
    return (
        f"peak {stats['peak_nits']:.0f} cd/m^2, p99.99 {stats['p9999_nits']:.0f} cd/m^2, "
        f"p99.9 {stats['p999_nits']:.0f} cd/m^2, "
        f"{stats['share_above_white']:.2%} above 203 cd/m^2, {stats['share_outside_bt709']:.2%} outside BT.709"
    )


def not_hdr_finding(stats: dict[str, Any], limits: dict[str, float] | None = None) -> Finding:
    limits = {**NOT_HDR_LIMITS, **(limits or {})}
    evidence = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in stats.items()} | {"limits": limits}
    if gates.is_not_hdr(stats, **limits):
        margin = max(0.0, 1.0 - stats["p9999_nits"] / max(limits["min_peak_nits"], 1.0))
        return Finding("not_hdr", SDR_IN_PQ, f"{SDR_IN_PQ}: {describe(stats)}", 0.5 + 0.5 * margin, evidence,
                       problem=True)  # fmt: skip
    return Finding("not_hdr", "HDR range", f"HDR range: {describe(stats)}", 0.9, evidence)


def video_hdr_stats(path: str | os.PathLike[str], frames: int = 8) -> tuple[dict[str, Any], int]:
    """:func:`gates.hdr_stats` over ``frames`` frames spread evenly through an HDR10 video (decoded here)."""
    from datakit.io.reader import VideoReader

    with VideoReader(path, encoding="pq", threads=1) as reader:
        info = reader.info
        count = info.frame_count or max(1, int(info.duration_seconds * float(info.fps)))
        indices = sorted({int(i) for i in np.linspace(0, count - 1, frames).round()})  # frames spread evenly
        decoded = reader.read_at(indices)
        pq = np.stack([f.rgb("uint16", width=min(f.width, 480)) for f in decoded])
    return gates.hdr_stats(pq), len(decoded)


def video_not_hdr(
    path: str | os.PathLike[str], max_cll: int | None = None, limits: dict[str, float] | None = None
) -> Finding:
    """The not-HDR finding of an HDR10 video, with its MaxCLL tag in the evidence."""
    stats, count = video_hdr_stats(path)
    finding = not_hdr_finding(stats, limits)
    finding.evidence.update(frames=count, tagged_max_cll=max_cll)
    if max_cll is not None:
        finding.message += f" (tagged MaxCLL {max_cll})"
    return finding


def probe_note(path: str | os.PathLike[str], info: Any) -> str | None:
    """One line for ``datakit probe`` when an HDR10 video looks like SDR in a PQ container, else ``None``."""
    if getattr(info, "kind", None) != "hdr10":
        return None
    light = getattr(info, "content_light_level", None)
    finding = video_not_hdr(path, getattr(light, "max_cll", None))
    return finding.message if finding.problem else None


def sdr_in_pq_status(hdr_path: str | os.PathLike[str], info_hdr: Any, limits: dict[str, float]) -> dict[str, Any]:
    """Pair-level not_hdr gate of ``datakit build``: when the HDR stream looks like SDR in a PQ container
    (statistics over frames spread through it, against the recipe's ``limits``), the pair's status says so
    with the evidence and the build keeps none of its clips; ``{}`` for real HDR or a disabled gate.

    The gate judges the title, not each clip: a dark scene of a real HDR title has no highlights either."""
    if not any(limits.values()):
        return {}
    light = getattr(info_hdr, "content_light_level", None)
    finding = video_not_hdr(hdr_path, getattr(light, "max_cll", None), limits)
    if not finding.problem:
        return {}
    return {"verdict": f"{SDR_IN_PQ}: {describe(finding.evidence)}", "not_hdr_evidence": finding.evidence}
