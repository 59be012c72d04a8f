"""Scene segmentation: hard cuts found by PySceneDetect detectors fed with frames we already decoded.

PySceneDetect (0.7) is driven directly, without its SceneManager or its video backends: each detector's
``process_frame(FrameTimecode, bgr_uint8)`` is called once per frame in order, and the cuts it returns (frame
timecodes where a new scene starts, possibly emitted a few frames late) are collected, then ``post_process`` is
called once at the end. Frames are small BGR uint8 thumbnails (about 256 px wide, from the decode pass of
:mod:`datakit.pairs.analysis`): detection cost grows with the pixel count, and cuts do not need detail.

Two detectors are offered (the others gave false cuts on synthetic cuts, see FIELD-NOTES):

- ``"content"``: :class:`scenedetect.detectors.ContentDetector`; a cut where the mean HSV difference between
  adjacent frames reaches ``threshold`` (default 27, on a 0-255 scale).
- ``"adaptive"``: :class:`scenedetect.detectors.AdaptiveDetector`; a cut where that difference exceeds
  ``threshold`` (default 3.0) times its average over the two frames on each side, and is at least 15. It
  cannot judge the last two frames of a sequence (it needs frames after the candidate).

Frame numbers are 0-based positions in the sequence given; a scene is a half-open range ``[start, end)``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING

import cv2
import numpy as np

from datakit.errors import InputError, RecipeError

if TYPE_CHECKING:
    from scenedetect import SceneDetector

__all__ = [
    "DEFAULT_THRESHOLDS",
    "DETECTORS",
    "StreamingCuts",
    "detect_cuts",
    "has_cut",
    "make_detector",
    "scenes_from_cuts",
]

DETECTORS = ("content", "adaptive")
"""Names accepted by :func:`make_detector`."""
DEFAULT_THRESHOLDS = {"content": 27.0, "adaptive": 3.0}
"""PySceneDetect's own defaults: mean HSV difference (content), ratio to the local average (adaptive)."""
_ADAPTIVE_WINDOW = 2  # AdaptiveDetector's window_width (its default): frames averaged on each side


def make_detector(detector: str = "content", threshold: float | None = None, min_scene_len: int = 8) -> SceneDetector:
    """A fresh PySceneDetect detector (detectors keep state: use one per sequence).

    ``threshold`` is the detector's own (see the module doc; ``None`` = PySceneDetect's default) and
    ``min_scene_len`` the shortest scene in frames: a cut closer than that to the previous cut (or to the
    first frame) is merged away. Bad names or values raise :class:`RecipeError`.
    """
    from scenedetect.detectors import AdaptiveDetector, ContentDetector

    if detector not in DETECTORS:
        raise RecipeError(f"scene detector {detector!r} is unknown (known: {', '.join(DETECTORS)})")
    if threshold is None:
        threshold = DEFAULT_THRESHOLDS[detector]
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not threshold > 0:
        raise RecipeError(f"scene detector threshold must be a number > 0, got {threshold!r}")
    if isinstance(min_scene_len, bool) or not isinstance(min_scene_len, int) or min_scene_len < 0:
        raise RecipeError(f"min_scene_len must be an integer >= 0 (frames), got {min_scene_len!r}")
    if detector == "content":
        return ContentDetector(threshold=float(threshold), min_scene_len=min_scene_len)
    return AdaptiveDetector(
        adaptive_threshold=float(threshold), min_scene_len=min_scene_len, window_width=_ADAPTIVE_WINDOW
    )


def _check_fps(fps: Fraction | float) -> Fraction:
    rate = Fraction(fps)
    if rate <= 0:
        raise InputError(f"frame rate must be > 0, got {fps!r}")
    return rate


def _as_bgr8(frame: np.ndarray, index: int, max_width: int | None) -> np.ndarray:
    """Validate one BGR uint8 (H, W, 3) frame, shrunk to ``max_width`` when wider (area averaging)."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise InputError(
            f"scene detection needs BGR uint8 frames shaped (H, W, 3); frame {index} is {frame.dtype} {frame.shape}"
        )
    height, width = frame.shape[:2]
    if max_width is not None and width > max_width:
        new_height = max(1, round(height * max_width / width))
        frame = cv2.resize(frame, (max_width, new_height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(frame)


class StreamingCuts:
    """Cut detection fed one frame at a time, as a decode pass produces them (no frame is kept).

    Call the object with each consecutive BGR uint8 frame (``on_bgr(index, time, bgr)`` of
    :func:`datakit.pairs.analysis.decode_thumbnails` fits: the index and time are not used), then
    :meth:`cuts` once at the end.
    """

    def __init__(
        self,
        fps: Fraction | float,
        *,
        detector: str = "content",
        threshold: float | None = None,
        min_scene_len: int = 8,
        max_width: int | None = None,
    ) -> None:
        self.rate = _check_fps(fps)
        self.detector = make_detector(detector, threshold, min_scene_len)
        self.max_width = max_width
        self.count = 0
        self._found: set[int] = set()
        self._shape: tuple[int, ...] | None = None

    def add(self, frame: np.ndarray) -> None:
        from scenedetect import FrameTimecode

        img = _as_bgr8(frame, self.count, self.max_width)
        if self._shape is None:
            self._shape = img.shape
        elif img.shape != self._shape:
            raise InputError(f"scene detection: frame {self.count} is {img.shape}, earlier frames were {self._shape}")
        timecode = FrameTimecode(self.count, self.rate)
        self._found.update(tc.frame_num for tc in self.detector.process_frame(timecode, img))
        self.count += 1

    def __call__(self, index: int, time: float, frame: np.ndarray) -> None:
        self.add(frame)

    def found(self) -> list[int]:
        """Cuts detected so far (sorted), before the end-of-stream processing of :meth:`cuts`."""
        return sorted(c for c in self._found if 0 < c < self.count)

    def cuts(self) -> list[int]:
        """Sorted frame numbers where a new scene starts (0 excluded); ends the detection."""
        from scenedetect import FrameTimecode

        if self.count:
            self._found.update(
                tc.frame_num for tc in self.detector.post_process(FrameTimecode(self.count - 1, self.rate))
            )
        return sorted(c for c in self._found if 0 < c < self.count)


def _run(stream: StreamingCuts, frames: Iterable[np.ndarray]) -> list[int]:
    """Feed every frame to ``stream`` and return its cuts."""
    for frame in frames:
        stream.add(frame)
    return stream.cuts()


def detect_cuts(
    bgr_frames: Iterable[np.ndarray] | np.ndarray,
    fps: Fraction | float,
    *,
    detector: str = "content",
    threshold: float | None = None,
    min_scene_len: int = 8,
    max_width: int | None = None,
) -> list[int]:
    """Frame numbers where a new scene starts (hard cuts), sorted, frame 0 excluded.

    ``bgr_frames``: consecutive frames as BGR uint8 ``(H, W, 3)`` arrays (an iterable, or one
    ``(N, H, W, 3)`` array), e.g. the SDR thumbnails of the decode pass; frames wider than ``max_width`` are
    shrunk first. ``fps`` (exact, e.g. ``Fraction(24000, 1001)``) only labels timecodes. ``detector``,
    ``threshold`` and ``min_scene_len``: see :func:`make_detector`.
    """
    stream = StreamingCuts(
        fps, detector=detector, threshold=threshold, min_scene_len=min_scene_len, max_width=max_width
    )
    return _run(stream, bgr_frames)


def has_cut(
    bgr_frames_window: Sequence[np.ndarray] | np.ndarray,
    fps: Fraction | float,
    *,
    detector: str = "content",
    threshold: float | None = None,
    max_width: int | None = None,
) -> bool:
    """Whether a short run of consecutive frames contains a hard cut between two of its frames.

    For sparse protocols that decode only a few frames around each clip: pass the clip with a few frames of
    context on each side. Same detectors and thresholds as :func:`detect_cuts`, without the minimum scene
    length (any transition above threshold counts). The adaptive detector needs two frames on each side of a
    candidate; the window is padded by repeating its first and last frames (zero-change neighbours), so
    transitions near the window's ends are judged against the frames that exist.
    """
    stream = StreamingCuts(fps, detector=detector, threshold=threshold, min_scene_len=0, max_width=max_width)
    frames = list(bgr_frames_window)
    if len(frames) < 2:
        return False
    if detector == "adaptive":
        frames = [frames[0]] * _ADAPTIVE_WINDOW + frames + [frames[-1]] * _ADAPTIVE_WINDOW
    return bool(_run(stream, frames))


def scenes_from_cuts(cuts: Iterable[int], n_frames: int) -> list[tuple[int, int]]:
    """Half-open scene ranges ``[(0, c1), (c1, c2), ..., (ck, n_frames)]`` covering ``range(n_frames)``.

    ``cuts``: frame numbers where a scene starts; duplicates and 0 are ignored, order does not matter. A cut
    at or beyond ``n_frames`` (or negative) raises :class:`InputError`. ``n_frames == 0`` gives ``[]``.
    """
    if isinstance(n_frames, bool) or not isinstance(n_frames, int | np.integer) or n_frames < 0:
        raise InputError(f"n_frames must be an integer >= 0, got {n_frames!r}")
    n_frames = int(n_frames)
    starts = sorted({int(c) for c in cuts} - {0})
    if starts and (starts[0] < 0 or starts[-1] >= n_frames):
        raise InputError(f"scene cuts must lie within 1..{n_frames - 1}, got {starts[0]}..{starts[-1]}")
    if n_frames == 0:
        return []
    bounds = [0, *starts, n_frames]
    return list(itertools.pairwise(bounds))
