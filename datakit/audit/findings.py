"""One audit finding: what the code values say, the evidence, and how sure the audit is.

Every finding module of :mod:`datakit.audit` returns :class:`Finding` objects; the runner collects them per file
and summarises them per kind. ``kind`` names the question (``gain``, ``matrix``, ``bit_depth``, ``levels``,
``clipping``, ``not_hdr``, ``sdr_range``, ``sdr_matrix``), ``verdict`` a short answer, ``message`` one line a
person reads, ``evidence`` the figures behind it and ``confidence`` a number in [0, 1].
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

CORRECT_BT2100 = "consistent with a correct BT.2100 conversion"
SDR_IN_PQ = "looks like SDR in a PQ container"


@dataclass
class Finding:
    kind: str
    verdict: str
    message: str
    confidence: float
    evidence: dict[str, Any] = field(default_factory=dict)
    problem: bool = False  # True when the finding is an error in the data (not a neutral observation)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["confidence"] = round(float(self.confidence), 3)
        return out
