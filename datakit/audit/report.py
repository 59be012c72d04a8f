"""The audit's part of ``report.html``: findings per verdict and code-value histograms (PNG).

Three histograms of the audited HDR frames: the 16-bit code values, the last 1024 of them (clipped white piles
up at 65535 after a correct conversion, near 65282 after swscale's ``rgb48le``), and where Y' (BT.2020 weights)
falls between two points of the 10-bit limited-range lattice ``round((c - 64) / 876 * 65535)``: a spike at 0 for a
correct conversion, spread for a gain error or another matrix.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from datakit.audit.lattice import FULL, luma_weights, sample_pixels
from datakit.fsutil import atomic_write_text

AUDIT_FILE = "audit.json"


def code_histograms(frames: list[np.ndarray], pictures: Path) -> list[str]:
    """Write the two histogram PNGs for uint16 PQ frames; returns their file names."""
    from datakit.report.images import histogram_png

    if not frames:
        return []
    codes = np.concatenate([f.reshape(-1, 3)[:: max(1, f.size // 3 // 50_000)] for f in frames])
    edges = np.linspace(0, 65536, 257)
    histogram_png(pictures / "audit_codes.png", np.histogram(codes.reshape(-1), edges)[0], edges,
                  title="HDR R'G'B' code values (16-bit)", x_label="code value", log_x=False,
                  marks={"65282": 65282.0})  # fmt: skip
    top = np.concatenate([f.reshape(-1) for f in frames])
    top_edges = np.linspace(64512, 65536, 65)  # 16-code bins over the last 1024 codes: 65282 vs 65535
    histogram_png(pictures / "audit_white.png", np.histogram(top[top >= 64512], top_edges)[0], top_edges,
                  title="HDR code values near white (a gain error piles up below 65535)", x_label="code value",
                  log_x=False, marks={"65282": 65282.0, "65535": 65535.0})  # fmt: skip
    y = sample_pixels(codes) @ luma_weights("bt2020nc")
    position = y / FULL * 876.0
    residual = position - np.round(position)
    redges = np.linspace(-0.5, 0.5, 51)
    histogram_png(pictures / "audit_lattice.png", np.histogram(residual, redges)[0], redges,
                  title="Y' (BT.2020) minus the nearest 10-bit limited-range code", x_label="10-bit codes",
                  log_x=False, marks={"0": 0.0})  # fmt: skip
    return ["audit_codes.png", "audit_white.png", "audit_lattice.png"]


def write_audit(root: Path, result: dict[str, Any], frames: list[np.ndarray]) -> None:
    """Save ``OUT/audit.json`` and the histograms under ``OUT/report/`` (the report page shows them)."""
    pictures = root / "report"
    pictures.mkdir(parents=True, exist_ok=True)
    result = {**result, "histograms": code_histograms(frames, pictures)}
    atomic_write_text(root / AUDIT_FILE, json.dumps(result, indent=2, sort_keys=True))


def audit_section(root: Path) -> str:
    """HTML for the report page ("" when the folder has no audit)."""
    path = root / AUDIT_FILE
    if not path.is_file():
        return ""
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
        summary, images = dict(result.get("summary", {})), list(result.get("histograms", []))
    except (json.JSONDecodeError, AttributeError, TypeError):
        return "<h2>Audit</h2><p>audit.json is unreadable.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(str(kind))}</td><td>{html.escape(str(verdict))}</td><td>{int(n)}</td></tr>"
        for kind, verdicts in summary.items()
        if isinstance(verdicts, dict)
        for verdict, n in verdicts.items()
    )
    pictures = "".join(f'<img src="report/{html.escape(str(name))}">' for name in images)
    return (f"<h2>Audit of the source files</h2><table><tr><th>finding</th><th>verdict</th><th>files</th></tr>"
            f"{rows}</table>{pictures}")  # fmt: skip
