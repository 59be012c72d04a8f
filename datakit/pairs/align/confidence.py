"""Confidence policy of the aligner: every score in [0, 1] is made here, and :func:`assemble` combines them
by one rule (the weakest one wins) into an :class:`~datakit.pairs.align.results.Alignment`."""

from __future__ import annotations

import dataclasses

from datakit.pairs.align.results import Alignment, SpatialAlignment, TemporalMatch

MIN_CONFIDENCE = 0.5
"""Below this overall confidence :func:`align_pair` raises :class:`AlignmentError` (by default)."""


def smoothstep(x: float, lo: float, hi: float) -> float:
    """0 below ``lo``, 1 above ``hi``, a smooth cubic ramp in between."""
    t = min(max((x - lo) / (hi - lo), 0.0), 1.0)
    return float(t * t * (3.0 - 2.0 * t))


def similarity_confidence(similarity: float) -> float:
    """Map a median structure similarity to [0, 1]: same pictures score about 0.7-0.95 whatever the grade,
    different pictures about 0-0.25."""
    return smoothstep(similarity, 0.3, 0.55)


def peak_confidence(z: float | None) -> float:
    """Map the robust z-score of a correlation peak against the other offsets to [0, 1] (``None``: nothing to
    compare with, 1): below 3 the best offset is not distinct, above 6 it is."""
    return 1.0 if z is None else smoothstep(z, 3.0, 6.0)


def margin_confidence(z: float | None) -> float:
    """Map a stretch's temporal margin (:func:`stretch_margin`, a z-score against neighbouring offsets) to
    [0, 1]: below 2 neighbouring offsets are not told apart, above 4 they are (None: nothing to compare, 0)."""
    return 0.0 if z is None else smoothstep(z, 2.0, 4.0)


REPORT_BELOW = 0.9  # a score below this adds its reason to the alignment


def overall_confidence(temporal: float, spatial: float) -> float:
    """The one rule combining the temporal and the spatial confidence of an alignment: the weaker one."""
    return min(temporal, spatial)


def assemble(spatial: SpatialAlignment, match: TemporalMatch) -> Alignment:
    """The alignment of a temporal match and a geometry: the temporal confidence is the weakest of the match's
    scores, each score below :data:`REPORT_BELOW` adds its reason, the notes follow, and the overall
    confidence is :func:`overall_confidence` of the two."""
    confidence = min((s.value for s in match.scores), default=0.0)
    reasons = tuple(s.reason for s in match.scores if s.value < REPORT_BELOW) + tuple(match.notes)
    temporal = dataclasses.replace(match.temporal, confidence=confidence, reasons=reasons)
    overall = overall_confidence(confidence, spatial.confidence)
    return Alignment(temporal, spatial, overall, reasons + spatial.reasons)
