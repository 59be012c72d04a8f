"""``VideoReader``: PyAV decoding with our own Y'CbCr -> R'G'B' conversion.

Frames are decoded by PyAV (frame threading on) and converted by
:class:`datakit.color.ycbcr.PlaneConverter` with the stream's tagged matrix, range and chroma
location, never by swscale (its RGB output of limited-range 10-bit BT.2020 video is scaled by
0.9961 and it treats untagged SDR as BT.601). Conversion is lazy: iteration yields :class:`Frame`
objects holding the decoded picture, and a frame is converted only when :meth:`Frame.rgb` or
:meth:`Frame.luma` is called.

Untagged streams: the matrix is BT.2020 NCL for BT.2020 primaries, else BT.709 for height >= 720
and BT.601 below; the range is limited (``yuvj`` formats: full); the chroma location is ``left``
(the H.264/HEVC inference when not signalled). Each assumption is recorded in
:attr:`VideoReader.assumptions`.

HLG input is refused for ``encoding="pq"`` (no HLG -> PQ conversion here); with ``encoding="auto"``
any supported stream is read and frames keep its own transfer and primaries.
"""

from __future__ import annotations

import bisect
import contextlib
import os
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from datakit.color.ycbcr import PlaneConverter, canonical_matrix
from datakit.errors import InputError, UnsupportedFormatError
from datakit.io.probe import VideoInfo, default_matrix, open_input, probe, require_hdr10, require_sdr

_ENCODINGS = ("auto", "pq", "sdr")

# Decoders (ffmpeg names, as PyAV picks them) whose ``skip_frame`` is proven to work the way the fast paths use it;
# tests/test_formats.py checks each against a sequential decode. ffmpeg's own H.264 and HEVC decoders read
# ``skip_frame`` for every packet (frame threads copy it when the packet is submitted), so NONREF can be switched on
# and off around a seek target. libdav1d reads it once, when the decoder opens (Dav1dSettings.decode_frame_type):
# NONREF set for the first packet would drop non-reference pictures for the decoder's whole life (frame 11 of an
# SVT-AV1 stream went missing that way), so only NONKEY, set before anything is decoded, is used there. ffmpeg's VP9
# decoder ignores ``skip_frame`` altogether: nothing is skipped and keyframes are reached by seeking.
NONREF_SKIP_DECODERS = frozenset({"h264", "hevc"})
NONKEY_SKIP_DECODERS = frozenset({"h264", "hevc", "libdav1d"})

# The seek-or-decode-forward cost model (VideoReader._should_seek): a forward read seeks when the keyframe before
# its target lies at least this many frames past the position. Below it, decoding forward (non-reference pictures
# skipped, NONREF_SKIP_DECODERS) costs less than restarting the decoder. Measured on 1080p HEVC and H.264 with
# 2 s GOPs and B-frames (2 cores): 13 frames forward cost about one seek; with 19 the seek was 1.5x faster.
SEEK_MIN_FRAMES = 8


def _plane_view(plane: Any, dtype: type[np.unsignedinteger]) -> np.ndarray:
    """Zero-copy (height, width) view of a PyAV plane, skipping the line-size padding."""
    item = np.dtype(dtype).itemsize
    flat = np.frombuffer(plane, dtype=dtype, count=plane.height * (plane.line_size // item))
    return flat.reshape(plane.height, plane.line_size // item)[:, : plane.width]


def area_reduce(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-downscale a plane (any dtype OpenCV resizes) to ``size`` = (w, h), halving first while it can.

    OpenCV's 2x area reduction is vectorized: three halvings of a 1080p plane take about a seventh of one
    direct 8x area reduction. Integer planes round at each halving (at most a code in all).
    """
    import cv2

    width, height = size
    while plane.shape[1] >= 2 * width and plane.shape[0] >= 2 * height:
        plane = cv2.resize(plane, (plane.shape[1] // 2, plane.shape[0] // 2), interpolation=cv2.INTER_AREA)
    if (plane.shape[1], plane.shape[0]) == (width, height):
        return plane
    return cv2.resize(plane, (width, height), interpolation=cv2.INTER_AREA)


def _area_codes(plane: np.ndarray, size: tuple[int, int], bit_depth: int) -> np.ndarray:
    """Area-downscale an integer code plane to ``size`` = (w, h); float32 codes (fractions kept).

    The codes are shifted to 16 bits first, so that the halvings of :func:`area_reduce` (OpenCV's integer
    area averages) keep ``16 - bit_depth`` fractional bits: exact for the first three halvings of 10-bit
    codes (four of 8-bit), and cheaper than converting the full plane to float.
    """
    shift = 16 - bit_depth
    src = plane if shift == 0 else np.left_shift(plane, shift, dtype=np.uint16)
    return area_reduce(src, size).astype(np.float32) * np.float32(1.0 / (1 << shift))


def area_size(width: int, height: int, target_width: int) -> tuple[int, int]:
    """(w, h) of an area reduction of a ``width`` x ``height`` frame to ``target_width`` columns (aspect kept)."""
    target_width = max(1, min(int(target_width), width))
    return target_width, max(1, round(height * target_width / width))


class Frame:
    """One decoded picture; converts on request.

    ``index`` is the 0-based position in presentation order (after a seek, derived from the
    timestamp: exact for constant frame rate), ``time`` the presentation time in seconds relative
    to the stream start, ``pts`` the raw timestamp in the stream's time base.
    """

    __slots__ = ("_frame", "_reader_converter", "gray", "index", "pts", "time")

    def __init__(self, frame: Any, index: int, time: float, converter: PlaneConverter, gray: bool) -> None:
        self._frame = frame
        self._reader_converter = converter
        self.index = index
        self.time = time
        self.pts: int | None = frame.pts
        self.gray = gray

    def __repr__(self) -> str:
        return f"Frame(index={self.index}, time={self.time:.6f}, pts={self.pts})"

    @property
    def width(self) -> int:
        return int(self._frame.width)

    @property
    def key(self) -> bool:
        """Whether the decoder marked this picture a keyframe (an IDR/CRA, VP9 or AV1 key frame)."""
        return bool(self._frame.key_frame)

    @property
    def height(self) -> int:
        return int(self._frame.height)

    def planes(self) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Zero-copy code planes ``(y, u, v)`` (uint8 or uint16 views into the decoded frame; u, v None for gray)."""
        dtype = np.uint8 if self._reader_converter.bit_depth == 8 else np.uint16
        planes = self._frame.planes
        y = _plane_view(planes[0], dtype)
        if self.gray:
            return y, None, None
        return y, _plane_view(planes[1], dtype), _plane_view(planes[2], dtype)

    def rgb(
        self, dtype: str = "float32", width: int | None = None, box: tuple[int, int, int, int] | None = None
    ) -> np.ndarray:
        """R'G'B' ``(H, W, 3)`` in the stream's own transfer and primaries (PQ BT.2020 for HDR10, BT.709 for SDR).

        ``dtype``: ``float32`` in [0, 1], ``uint16`` = ``round(x * 65535)``, ``uint8`` = ``round(x * 255)``.
        ``width``: downscale (area) to this width first, for analysis; the planes are reduced
        before conversion, so chroma siting is ignored at that scale. ``box``: ``(x, y, w, h)`` convert
        only this region (full resolution): the same pixels as converting the whole frame and cropping.
        """
        if box is not None:
            if width is not None:
                raise ValueError("rgb(): give width or box, not both")
            return self._rgb_box(dtype, box)
        y, u, v = self.planes()
        conv = self._reader_converter
        if u is None or v is None:  # gray: Y' in all three channels
            luma = conv.luma(y)
            if width is not None:
                import cv2

                luma = cv2.resize(luma, area_size(self.width, self.height, width), interpolation=cv2.INTER_AREA)
            out = np.repeat(luma[..., None], 3, axis=2)
            if dtype == "float32":
                return out
            scale = {"uint16": 65535.0, "uint8": 255.0}.get(dtype)
            if scale is None:
                raise ValueError(f"dtype must be float32, uint16 or uint8, got {dtype!r}")
            return np.rint(out * np.float32(scale)).astype(np.uint16 if dtype == "uint16" else np.uint8)
        if width is not None and width < self.width:
            size = area_size(self.width, self.height, width)
            y, u, v = (_area_codes(p, size, conv.bit_depth) for p in (y, u, v))
        return conv(y, u, v, dtype=dtype)

    def _rgb_box(self, dtype: str, box: tuple[int, int, int, int]) -> np.ndarray:
        """Convert a region: the planes are cut with a margin of two chroma samples (the reach of the chroma
        interpolation) on sides inside the frame, so every pixel of the box sees what it sees in the whole
        frame; the margin is then cut off."""
        x, y0, w, h = (int(v) for v in box)
        if w <= 0 or h <= 0 or x < 0 or y0 < 0 or x + w > self.width or y0 + h > self.height:
            raise ValueError(f"box {box} is not inside the {self.width}x{self.height} frame")
        yp, up, vp = self.planes()
        if up is None or vp is None:
            return self.rgb(dtype)[y0 : y0 + h, x : x + w]
        return np.ascontiguousarray(self._convert_region(yp, up, vp, x, y0, w, h, dtype))

    def _convert_region(
        self, yp: np.ndarray, up: np.ndarray, vp: np.ndarray, x: int, y0: int, w: int, h: int, dtype: str
    ) -> np.ndarray:
        """R'G'B' of the region ``(x, y0, w, h)``, converted from planes cut with the chroma margin (a view)."""
        fx = 1 if up.shape[1] == yp.shape[1] else 2  # chroma subsampling, as the converter reads it
        fy = 1 if up.shape[0] == yp.shape[0] else 2
        margin = 4  # luma pixels: two chroma samples at 2x subsampling
        left = max(0, (x - margin) // fx * fx)
        top = max(0, (y0 - margin) // fy * fy)
        right = min(self.width, x + w + margin)
        bottom = min(self.height, y0 + h + margin)
        if right < self.width:
            right = min(self.width, -(-right // fx) * fx)
        if bottom < self.height:
            bottom = min(self.height, -(-bottom // fy) * fy)
        c_left, c_top = left // fx, top // fy
        c_right, c_bottom = -(-right // fx), -(-bottom // fy)
        out = self._reader_converter(
            yp[top:bottom, left:right],
            up[c_top:c_bottom, c_left:c_right],
            vp[c_top:c_bottom, c_left:c_right],
            dtype=dtype,
        )
        return out[y0 - top : y0 - top + h, x - left : x - left + w]

    def luma(self, width: int | None = None) -> np.ndarray:
        """Normalized Y' (H, W) float32 in [0, 1] (range offsets removed), optionally area-downscaled to ``width``."""
        y = self.planes()[0]
        conv = self._reader_converter
        if width is None or width >= self.width:
            return conv.luma(y)
        small = _area_codes(y, area_size(self.width, self.height, width), conv.bit_depth)
        return conv.luma(small)


class VideoReader:
    """Decode a video file into :class:`Frame` objects.

    ``encoding``: ``"pq"`` requires HDR10 (:func:`datakit.io.probe.require_hdr10`), ``"sdr"``
    requires BT.709 SDR (:func:`datakit.io.probe.require_sdr`), ``"auto"`` accepts either (and
    other transfers, whose R'G'B' is returned as coded). ``matrix`` (``bt709``, ``bt2020nc``,
    ``bt601``) and ``range`` (``limited``/``full``) override the stream's tags. ``threads``:
    ``"auto"`` lets ffmpeg choose, an int sets the decoder thread count.

    Use as a context manager or call :meth:`close`. Iterating yields all frames from the start.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        encoding: str = "auto",
        matrix: str | None = None,
        range: str | None = None,
        threads: int | str = "auto",
    ) -> None:
        if encoding not in _ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(_ENCODINGS)}, got {encoding!r}")
        if range not in (None, "limited", "full"):
            raise ValueError(f"range must be 'limited' or 'full', got {range!r}")
        self.path = Path(path)
        self.info: VideoInfo = probe(self.path, count_frames=False)
        self.warnings: list[str] = []
        if encoding == "pq":
            self.warnings += require_hdr10(self.info)
        elif encoding == "sdr":
            self.warnings += require_sdr(self.info)
        info = self.info
        if not info.pix_fmt_supported:
            raise UnsupportedFormatError(
                f"{self.path}: pixel format {info.pix_fmt} is not supported (planar Y'CbCr 4:2:0/4:2:2/4:4:4 or gray)"
            )
        self.encoding = encoding
        self.assumptions: list[str] = []
        self.matrix = self._matrix(matrix)
        self.full_range = self._range(range) == "full"
        self.siting = self._siting()
        self.threads = threads
        self._converter = PlaneConverter(self.matrix, info.bit_depth, self.full_range, self.siting)
        self._gray = info.chroma_subsampling == "400"
        self._container: Any = None
        self._stream: Any = None
        self._decoded: Iterator[Any] | None = None
        self._skip_before: float | None = None  # see _packet_frames
        self._renumber = False  # a picture was skipped since the last seek: frame numbers come from timestamps
        self.pictures_decoded = 0  # pictures the decoder returned, including those passed over to reach a target
        self.seeks = 0  # demuxer seeks made by forward reads (read_from) that chose to seek (_should_seek)
        self._pending: Frame | None = None
        self._next_index = 0
        self._start_pts = 0
        self._keyframe_times: list[float] | None = None
        self._open()

    # ----------------------------------------------------------------------------- setup
    def _matrix(self, override: str | None) -> str:
        if override is not None:
            return canonical_matrix(override)
        tagged = self.info.color_matrix
        if tagged is None:
            chosen = default_matrix(self.info.height, self.info.color_primaries)
            self.assumptions.append(f"untagged matrix: assumed {chosen} ({self.info.height} lines)")
            return chosen
        try:
            return canonical_matrix(tagged)
        except ValueError:
            raise UnsupportedFormatError(f"{self.path}: Y'CbCr matrix {tagged} is not supported") from None

    def _range(self, override: str | None) -> str:
        if override is not None:
            return override
        if self.info.color_range is None:
            self.assumptions.append("untagged range: assumed limited")
            return "limited"
        return self.info.color_range

    def _siting(self) -> str:
        if self.info.chroma_subsampling in ("444", "400"):
            return "left"
        if self.info.chroma_location is None:
            self.assumptions.append("chroma location not signalled: left (type 0, the H.264/HEVC default)")
            return "left"
        return self.info.chroma_location

    def _open(self) -> None:
        import av

        self.close()
        self._container = open_input(self.path)
        stream = self._container.streams.video[0]
        cc = stream.codec_context
        cc.thread_type = "AUTO"
        if self.threads != "auto":
            cc.thread_count = int(self.threads)
        self._stream = stream
        self._skip_nonref = cc.name in NONREF_SKIP_DECODERS
        self._time_base = Fraction(stream.time_base.numerator, stream.time_base.denominator)
        self._start_pts = stream.start_time if stream.start_time is not None else 0
        self._decoded = self._packet_frames()
        self._renumber = False
        self._pending = None
        self._next_index = 0
        self._av_error = av.FFmpegError

    def close(self) -> None:
        """Release the decoder and file."""
        if self._container is not None:
            self._container.close()
            self._container = None
            self._decoded = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ----------------------------------------------------------------------------- decoding
    @property
    def converter(self) -> PlaneConverter:
        """The Y'CbCr -> R'G'B' converter of this stream (tagged or assumed matrix, range and siting)."""
        return self._converter

    @property
    def fps(self) -> Fraction:
        return self.info.fps

    def _time(self, av_frame: Any, fallback_index: int) -> float:
        if av_frame.pts is None:
            return float(fallback_index / self.info.fps)
        # integer true division rounds correctly: the float of the Fraction, without building one per frame
        return (av_frame.pts - self._start_pts) * self._time_base.numerator / self._time_base.denominator

    def _packet_frames(self) -> Iterator[Any]:
        """Decoded pictures of the stream from the demuxer's position, packet by packet.

        While the reader moves towards a target (:meth:`read_from` sets ``_skip_before``, in seconds), packets
        that present before it are decoded with ``skip_frame = NONREF``: the decoder drops the pictures no
        other picture predicts from (non-reference B pictures: about half of an x265 stream) and still decodes
        those the target needs. The setting is made per packet, before it is sent (frame threads copy it when
        the packet is submitted), so which pictures are dropped does not depend on timing. The target and
        every picture after it decode as usual; dropped pictures are never returned. Only decoders in
        :data:`NONREF_SKIP_DECODERS` skip; the others decode every picture on the way.
        """
        context = self._stream.codec_context
        skipping = False
        for packet in self._container.demux(self._stream):
            skip = (
                self._skip_nonref
                and self._skip_before is not None
                and packet.pts is not None
                and float((packet.pts - self._start_pts) * self._time_base) < self._skip_before
            )
            if skip != skipping:
                context.skip_frame = "NONREF" if skip else "DEFAULT"
                skipping = skip
            if skip:
                self._renumber = True
            yield from context.decode(packet)

    def _decode_next(self, index_from_time: bool) -> Frame | None:
        if self._decoded is None:
            self._open()
        try:
            av_frame = next(self._decoded)  # type: ignore[arg-type]
        except StopIteration:
            return None
        except self._av_error as error:
            if self.info.truncated:  # a cut-off file (allowed, or it would not be read): its end is the stream's
                self.warnings.append(f"{self.path}: decoding stopped after frame {self._next_index - 1} ({error})")
                self._decoded = iter(())
                return None
            raise InputError(
                f"{self.path}: decoding failed after frame {self._next_index - 1} ({error}); file damaged or truncated"
            ) from None
        self.pictures_decoded += 1
        time = self._time(av_frame, self._next_index)
        from_time = index_from_time or (self._renumber and av_frame.pts is not None)
        index = max(0, round(time * self.info.fps)) if from_time else self._next_index
        self._next_index = index + 1
        return Frame(av_frame, index, time, self._converter, self._gray)

    def read(self) -> Frame | None:
        """The next frame from the current position, or ``None`` at the end."""
        if self._pending is not None:
            frame, self._pending = self._pending, None
            self._next_index = frame.index + 1
            return frame
        return self._decode_next(index_from_time=False)

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def _tolerance(self) -> float:
        """Timestamp slack: container time bases round times (MKV: to 1 ms)."""
        return min(1e-3, 0.25 / float(self.info.fps))

    def frames(self, start: float = 0.0, end: float | None = None) -> Iterator[Frame]:
        """Frames with ``start <= time < end`` (seconds; ``end=None``: to the end of the stream)."""
        self.seek(start)
        tol = self._tolerance()
        while True:
            frame = self.read()
            if frame is None or (end is not None and frame.time >= end - tol):
                return
            yield frame

    def rgb_frames(
        self,
        dtype: str = "float32",
        *,
        width: int | None = None,
        start: float = 0.0,
        end: float | None = None,
        workers: int = 1,
    ) -> Iterator[tuple[Frame, np.ndarray]]:
        """``(frame, frame.rgb(dtype, width))`` for the frames of :meth:`frames` ``(start, end)``, in order, each
        converted in one of ``workers`` threads beside the decoder: while pictures are converted (OpenCV and NumPy
        release the GIL) the decoder is handed the next packets, so its threads do not wait for the conversion.
        At most ``workers + 1`` pictures are in flight. The arrays are :meth:`Frame.rgb`'s, bit for bit. One worker
        by default: on two cores a second one competed with the decoder's threads (bench/bench_reader.py)."""
        from collections import deque
        from concurrent.futures import Future, ThreadPoolExecutor

        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        pending: deque[tuple[Frame, Future[np.ndarray]]] = deque()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="datakit-rgb") as pool:
            try:
                for frame in self.frames(start, end):
                    pending.append((frame, pool.submit(frame.rgb, dtype, width)))
                    if len(pending) > workers:
                        done, future = pending.popleft()
                        yield done, future.result()
                while pending:
                    done, future = pending.popleft()
                    yield done, future.result()
            finally:
                for _, future in pending:
                    future.cancel()

    def keyframes(self, start: float = 0.0, end: float | None = None) -> Iterator[Frame]:
        """Only the keyframes with ``start <= time < end``. Decoders in :data:`NONKEY_SKIP_DECODERS` skip every
        other picture (a keyframe costs a few ordinary frames, a GOP of 24-250 frames costs one); for the others
        the reader seeks to each keyframe of :meth:`keyframe_times` and decodes it. The reader is reset afterwards."""
        if self._stream.codec_context.name not in NONKEY_SKIP_DECODERS:
            yield from self._keyframes_by_seeking(start, end)
            return
        tol = self._tolerance()
        self._open()
        self._stream.codec_context.skip_frame = "NONKEY"  # before anything is decoded (frame threads run ahead)
        if start > tol:
            pts = self._pts_of(start)
            with contextlib.suppress(self._av_error):  # if the demuxer cannot seek, decode from the start
                self._container.seek(pts, stream=self._stream, backward=True, any_frame=False)
            self._decoded = self._packet_frames()
        try:
            while True:
                frame = self._decode_next(index_from_time=True)
                if frame is None or (end is not None and frame.time >= end - tol):
                    return
                if frame.time >= start - tol and frame.key:
                    yield frame
        finally:
            self._open()  # a fresh decoder: every picture again, from the start

    def _keyframes_by_seeking(self, start: float, end: float | None) -> Iterator[Frame]:
        tol = self._tolerance()
        try:
            for time in self.keyframe_times():
                if time < start - tol:
                    continue
                if end is not None and time >= end - tol:
                    return
                frame = self.read_from(time)
                if frame is None:
                    return
                if frame.key:
                    yield frame
        finally:
            self._open()

    def _position(self) -> float:
        """Time of the next frame :meth:`read` would return (approximate)."""
        if self._pending is not None:
            return self._pending.time
        return float(self._next_index / self.info.fps)

    def keyframe_times(self) -> list[float]:
        """Presentation times (seconds from the stream start) of every keyframe, sorted, read from the packets
        (demuxing only, nothing is decoded; once per reader). The container index is not used: it holds decode
        times, which differ from presentation times by the reordering delay (and not by a constant with open
        GOPs): with B-frames, the index put an MP4 keyframe two frames early, and a read just before it sought
        back to the previous keyframe (decoding its group of pictures again)."""
        if self._keyframe_times is None:
            times: list[float] = []
            with open_input(self.path) as container:
                stream = container.streams.video[0]
                for packet in container.demux(stream):
                    if packet.is_keyframe and packet.pts is not None:
                        times.append(float((packet.pts - self._start_pts) * self._time_base))
            self._keyframe_times = sorted(times)
        return list(self._keyframe_times)

    def _pts_of(self, seconds: float) -> int:
        """Stream timestamp of a time in seconds from the stream start."""
        return self._start_pts + int(Fraction(seconds).limit_denominator(10**6) / self._time_base)

    def _should_seek(self, target: float) -> bool:
        """Seek (rather than decode forward) when going back, or when the keyframe a seek lands on lies at least
        :data:`SEEK_MIN_FRAMES` frames past the position (the cost model, in one place: a seek restarts the
        decoder's pipeline, forward decoding pays for every reference picture of the gap). Keyframes are
        presentation times (:meth:`keyframe_times`); without any, seek over gaps longer than 2 s."""
        position = self._position()
        if target < position - self._tolerance():
            return True
        keys = self._keyframe_times if self._keyframe_times is not None else self.keyframe_times()
        if not keys:
            return target - position > 2.0
        k = bisect.bisect_right(keys, target + self._tolerance()) - 1
        return k >= 0 and keys[k] > position + max(SEEK_MIN_FRAMES - 0.5, 0.5) / float(self.info.fps)

    def _demuxer_seek(self, seconds: float) -> None:
        """Seek the demuxer to a keyframe at or before ``seconds``; backs off (or restarts) if it overshoots."""
        tol = self._tolerance()
        backoff = 0.0
        while True:
            target = seconds - backoff
            if target <= tol:
                self._open()
                return
            pts = self._pts_of(target)
            self._pending = None
            try:
                self._container.seek(pts, stream=self._stream, backward=True, any_frame=False)
            except self._av_error:
                self._open()
                return
            self._renumber = False
            self._decoded = self._packet_frames()
            first = self._decode_next(index_from_time=True)
            if first is None or first.time <= seconds + tol:
                self._pending = first
                return
            backoff = max(1.0, 2.0 * backoff)

    def read_from(self, seconds: float) -> Frame | None:
        """The first frame with ``time >= seconds`` (``None`` past the end), seeking when that is faster.

        Frame-accurate: the demuxer seeks to a keyframe at or before ``seconds`` and decoding
        continues forward from there.
        """
        seconds = max(0.0, float(seconds))
        tol = self._tolerance()
        if seconds <= tol:
            if self._pending is not None:
                at_start = self._pending.index == 0
            else:
                at_start = self._next_index == 0 and self._decoded is not None
            if not at_start:
                self._open()
        self._skip_before = seconds - tol  # pictures before the target: only those it needs (_packet_frames)
        try:
            if seconds > tol and self._should_seek(seconds):
                self.seeks += 1
                self._demuxer_seek(seconds)
            while True:
                frame = self.read()
                if frame is None or frame.time >= seconds - tol:
                    return frame
        finally:
            self._skip_before = None

    def seek(self, seconds: float) -> None:
        """Position so that :meth:`read` returns the first frame with ``time >= seconds`` (frame-accurate)."""
        self._pending = self.read_from(seconds)
        if self._pending is None:
            self._next_index = max(self._next_index, round(float(seconds) * self.info.fps))

    def read_index(self, index: int) -> Frame:
        """The frame with this index (``index / fps`` seconds); :class:`InputError` past the end or if missing."""
        index = int(index)
        if index < 0:
            raise ValueError(f"frame index must be >= 0, got {index}")
        frame = self.read_from(float(Fraction(index) / self.info.fps))
        while frame is not None and frame.index < index:
            frame = self.read()
        if frame is None:
            raise InputError(f"{self.path}: frame {index} is past the end of the video")
        if frame.index != index:
            self._pending = frame
            raise InputError(f"{self.path}: frame {index} is missing (variable frame rate?)")
        return frame

    def read_at(self, targets: Sequence[int] | Sequence[float]) -> list[Frame]:
        """Frames at the given indices (all ints) or times in seconds (floats: first frame at or after).

        Returns them in the requested order (duplicates allowed). Targets are visited in
        increasing order, seeking over long gaps. Raises :class:`InputError` for an index or
        time past the end of the stream. Holds all returned frames in memory: for long lists,
        call :meth:`read_index` / :meth:`read_from` in a loop instead.
        """
        items = list(targets)
        by_index = all(isinstance(t, (int, np.integer)) for t in items)
        found: dict[Any, Frame] = {}
        for target in sorted(set(items)):
            if by_index:
                frame = self.read_index(int(target))
            else:
                frame = self.read_from(float(target))
                if frame is None:
                    raise InputError(f"{self.path}: time {target} s is past the end of the video")
            found[target] = frame
            self._pending = frame  # the same frame may serve the next target
        self._pending = None
        return [found[t] for t in items]
