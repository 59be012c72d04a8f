"""Video and image I/O: probe, reader, writers, still images, frame extraction.

Names below are imported lazily (the submodules import PyAV / OpenCV): ``from datakit.io import
VideoReader`` works. The probe *function* is ``datakit.io.probe.probe`` (``datakit.io.probe`` is
the submodule).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "VideoInfo": "datakit.io.probe",
    "require_hdr10": "datakit.io.probe",
    "require_sdr": "datakit.io.probe",
    "require_complete": "datakit.io.probe",
    "container_hdr_metadata": "datakit.io.container",
    "MasteringDisplay": "datakit.io.metadata",
    "ContentLightLevel": "datakit.io.metadata",
    "VideoReader": "datakit.io.reader",
    "Frame": "datakit.io.reader",
    "HDR10Writer": "datakit.io.writer",
    "SDRWriter": "datakit.io.writer",
    "HDRImage": "datakit.io.images",
    "read_hdr_image": "datakit.io.images",
    "read_png16_pq": "datakit.io.images",
    "write_png16_pq": "datakit.io.images",
    "read_png8": "datakit.io.images",
    "write_png8": "datakit.io.images",
    "extract_frames": "datakit.io.extract",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'datakit.io' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
