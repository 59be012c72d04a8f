"""Keep full-resolution frames from a decoding pass, so that the clip stage does not decode them again.

A dense build decodes every frame of both streams once for analysis; the frames its clips need are known only
later (an SDR clip once its scene has ended, the matching HDR frames once the alignment is known). A
:class:`FrameStore` sees every decoded frame (:meth:`FrameStore.offer`): frames already asked for are kept,
the others wait in a ring of recent frames bounded in bytes, in case they are asked for soon
(:meth:`FrameStore.want`). :meth:`FrameStore.get` returns kept frames and decodes the rest again by seeking
(counted in :attr:`FrameStore.redecoded`), so a wrong or late guess costs time, never correctness.

Frames are the decoder's own pictures (:class:`datakit.io.reader.Frame`, Y'CbCr code planes, not converted):
1.5 (8-bit) or 3 (10-bit) bytes per pixel for 4:2:0.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["FrameStore"]


def frame_bytes(frame: Any) -> int:
    """Bytes held by a decoded frame's code planes."""
    return int(sum(p.nbytes for p in frame.planes() if p is not None))


class FrameStore:
    """Frames of one stream kept from a pass for later use (see the module doc).

    ``reader``: the :class:`datakit.io.reader.VideoReader` used to decode missing frames again.
    ``ring_bytes``: memory for recent frames nobody asked for yet (until the first :meth:`want`, the ring may
    also use half of ``keep_bytes``). ``keep_bytes``: memory for kept frames; beyond it, frames asked for are
    left to be decoded again.
    """

    def __init__(self, reader: Any, *, ring_bytes: int, keep_bytes: int) -> None:
        self.reader = reader
        self.ring_bytes = max(0, int(ring_bytes))
        self.keep_bytes = max(0, int(keep_bytes))
        self._ring: OrderedDict[int, Any] = OrderedDict()
        self._kept: dict[int, Any] = {}
        self._wanted: set[int] = set()
        self._frame_bytes = 0
        self.redecoded = 0
        self.kept_total = 0
        self._asked = False  # until something is asked for, the ring may also use half the keep budget

    @property
    def kept_bytes(self) -> int:
        return len(self._kept) * self._frame_bytes

    def _keep(self, index: int, frame: Any) -> None:
        if self.kept_bytes + self._frame_bytes <= self.keep_bytes:
            self._kept[index] = frame
            self.kept_total += 1

    def offer(self, frame: Any) -> None:
        """A frame the pass has just decoded."""
        if not self._frame_bytes:
            self._frame_bytes = max(1, frame_bytes(frame))
        if frame.index in self._wanted:
            self._wanted.discard(frame.index)
            self._keep(frame.index, frame)
            return
        self._ring[frame.index] = frame
        limit = self.ring_bytes if self._asked else self.ring_bytes + self.keep_bytes // 2
        while self._ring and len(self._ring) * self._frame_bytes > limit:
            self._ring.popitem(last=False)

    def want(self, indices: Iterable[int]) -> None:
        """Ask for frames: taken from the ring if still there, else kept when the pass reaches them."""
        self._asked = True
        for index in indices:
            index = int(index)
            if index in self._kept:
                continue
            frame = self._ring.pop(index, None)
            if frame is not None:
                self._keep(index, frame)
            else:
                self._wanted.add(index)

    def end_pass(self) -> None:
        """The pass is over: forget the ring and what was asked for but never seen."""
        self._ring.clear()
        self._wanted.clear()

    def get(self, indices: Sequence[int]) -> list[Any]:
        """The frames with these indices, in this order: kept ones, the others decoded again (seeking)."""
        missing = sorted({int(i) for i in indices} - self._kept.keys())
        again = dict(zip(missing, self.reader.read_at(missing), strict=True)) if missing else {}
        self.redecoded += len(missing)
        return [self._kept[int(i)] if int(i) in self._kept else again[int(i)] for i in indices]

    def release(self, indices: Iterable[int]) -> None:
        """Drop kept frames that are no longer needed (frees their memory)."""
        for index in indices:
            self._kept.pop(int(index), None)
