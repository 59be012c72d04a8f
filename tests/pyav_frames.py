"""Test fixtures' own way into PyAV: a frame filled from code planes with PyAV alone, not with datakit's writers
(the tests that use it check datakit's readers and probes against files PyAV encodes independently)."""

from __future__ import annotations

import av
import numpy as np


def video_frame(planes: tuple[np.ndarray, ...] | list[np.ndarray], pix_fmt: str) -> av.VideoFrame:
    """A PyAV frame of ``pix_fmt`` holding these Y'CbCr code planes (luma first; the size is the luma plane's), its
    row padding zeroed."""
    height, width = planes[0].shape
    frame = av.VideoFrame(width, height, pix_fmt)
    for plane, data in zip(frame.planes, planes, strict=True):
        buf = np.zeros((plane.height, plane.line_size // data.dtype.itemsize), data.dtype)
        buf[:, : plane.width] = data
        plane.update(buf)
    return frame
