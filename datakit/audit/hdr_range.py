"""HDR that is not really HDR: SDR placed in a PQ container (for example mapped with BT.2408 at 203 cd/m^2).

The statistics and the gate are :func:`datakit.pairs.gates.hdr_stats` and :func:`datakit.pairs.gates.is_not_hdr`;
this module words their verdict with the evidence, for a frame (``datakit audit``), for an HDR10 video
(``datakit probe`` / ``audit``) and for a pair whose clips the build rejected (:func:`sdr_in_pq_status`).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
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


TITLE_FRAMES = 8  # frames spread evenly through an HDR10 title that its not-HDR statistics are taken on
MIN_TITLE_FRAMES = 4  # fewer frames than this (a sparse pass's keyframes of a short title) do not judge a title
STATS_WIDTH = 480  # ... each area-reduced to at most this many pixels wide (PQ uint16)


def title_frame_count(info: Any) -> int:
    """The frame count the spread frames of a title are placed by: the probed count, else duration x rate."""
    return int(info.frame_count or max(1, int(info.duration_seconds * float(info.fps))))


def spread_indices(count: int, frames: int = TITLE_FRAMES) -> list[int]:
    """Up to ``frames`` distinct positions spread evenly over ``range(count)``, first and last included."""
    return sorted({int(i) for i in np.linspace(0, max(count, 1) - 1, frames).round()})


def stats_picture(frame: Any) -> np.ndarray:
    """The picture the title statistics see of a decoded HDR10 frame (:class:`datakit.io.reader.Frame`): PQ
    BT.2020 R'G'B' uint16 codes (ITU-R BT.2100), area-reduced to at most :data:`STATS_WIDTH` pixels wide."""
    return frame.rgb("uint16", width=min(frame.width, STATS_WIDTH))


def title_hdr_stats(frames: Sequence[Any]) -> tuple[dict[str, Any], int] | None:
    """:func:`gates.hdr_stats` over decoded HDR10 frames spread through a title (:data:`TITLE_FRAMES` of them
    picked evenly, by position), and how many; None for fewer than :data:`MIN_TITLE_FRAMES` (too few to judge a
    title by: the gate then decodes its own)."""
    if len(frames) < MIN_TITLE_FRAMES:
        return None
    picked = [frames[p] for p in spread_indices(len(frames))]
    return gates.hdr_stats(np.stack([stats_picture(f) for f in picked])), len(picked)


class TitleSampler:
    """The frames of a title's not-HDR statistics, taken from a pass that decodes every frame in order (the
    dense HDR pass): :meth:`offer` each decoded frame; those at :func:`spread_indices` of ``frame_count`` are
    converted (:func:`stats_picture`) and kept, so that :meth:`stats` equals :func:`video_hdr_stats` without
    decoding anything again."""

    def __init__(self, frame_count: int, frames: int = TITLE_FRAMES) -> None:
        self.targets = frozenset(spread_indices(frame_count, frames))
        self.pictures: dict[int, np.ndarray] = {}

    def offer(self, frame: Any) -> None:
        if frame.index in self.targets and frame.index not in self.pictures:
            self.pictures[frame.index] = stats_picture(frame)

    def stats(self) -> tuple[dict[str, Any], int] | None:
        """The statistics and how many frames they cover; None unless every spread frame was seen (a frame
        count that overstates the stream: the gate then decodes its own frames)."""
        if not self.pictures or len(self.pictures) < len(self.targets):
            return None
        return gates.hdr_stats(np.stack([self.pictures[i] for i in sorted(self.pictures)])), len(self.pictures)


def video_hdr_stats(path: str | os.PathLike[str], frames: int = TITLE_FRAMES) -> tuple[dict[str, Any], int]:
    """:func:`gates.hdr_stats` over ``frames`` frames spread evenly through an HDR10 video (decoded here)."""
    from datakit.io.reader import VideoReader

    with VideoReader(path, encoding="pq", threads=1) as reader:
        decoded = reader.read_at(spread_indices(title_frame_count(reader.info), frames))
        pq = np.stack([stats_picture(f) for f in decoded])
    return gates.hdr_stats(pq), len(decoded)


def video_not_hdr(
    path: str | os.PathLike[str],
    max_cll: int | None = None,
    limits: dict[str, float] | None = None,
    stats: tuple[dict[str, Any], int] | None = None,
) -> Finding:
    """The not-HDR finding of an HDR10 video, with its MaxCLL tag in the evidence. ``stats``: the title's
    statistics and frame count already taken by a pass over the video (:class:`TitleSampler`); ``None``:
    decoded here (:func:`video_hdr_stats`)."""
    values, count = stats if stats is not None else video_hdr_stats(path)
    finding = not_hdr_finding(values, limits)
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


def sdr_in_pq_status(
    hdr_path: str | os.PathLike[str],
    info_hdr: Any,
    limits: dict[str, float],
    stats: tuple[dict[str, Any], int] | None = None,
) -> dict[str, Any]:
    """Pair-level not_hdr gate of ``datakit build``: when the HDR stream looks like SDR in a PQ container
    (statistics over frames spread through it, against the recipe's ``limits``), the pair's status says so
    with the evidence and the build keeps none of its clips; ``{}`` for real HDR or a disabled gate.
    ``stats``: the statistics the pair's analysis took on frames it decoded anyway
    (:attr:`datakit.pairs.analysis.PairAnalysis.hdr_stats`); ``None``: decoded here from ``hdr_path``.

    The gate judges the title, not each clip: a dark scene of a real HDR title has no highlights either."""
    if not any(limits.values()):
        return {}
    light = getattr(info_hdr, "content_light_level", None)
    finding = video_not_hdr(hdr_path, getattr(light, "max_cll", None), limits, stats)
    if not finding.problem:
        return {}
    return {"verdict": f"{SDR_IN_PQ}: {describe(finding.evidence)}", "not_hdr_evidence": finding.evidence}
