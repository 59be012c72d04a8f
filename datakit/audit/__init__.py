"""Audit frames for the encoding errors they carry: gain, Y'CbCr matrix, bit depth, levels, clipping, HDR range.

One small module per question (:mod:`.gain`, :mod:`.matrix`, :mod:`.bitdepth`, :mod:`.clipping`,
:mod:`.hdr_range`, :mod:`.sdr`), all reading the code-value lattice fit of :mod:`.lattice`; :mod:`.frames`
asks them about one picture, :mod:`.run` about a folder, output folder or video, :mod:`.report` draws the page.
"""

from datakit.audit.findings import CORRECT_BT2100, SDR_IN_PQ, Finding

__all__ = ["CORRECT_BT2100", "SDR_IN_PQ", "Finding"]
