"""Video writers: HDR10 (HEVC Main10, PQ, BT.2020) and SDR (H.264, BT.709), with our own Y'CbCr conversion.

Both convert R'G'B' to limited-range Y'CbCr 4:2:0 with :func:`datakit.color.ycbcr.rgb_to_planes`
(chroma co-sited left, chroma_sample_loc_type 0) and hand code planes to the encoder, so no swscale
conversion is involved. Colour tags are set on the codec context *and* in the encoder's own
parameters (tags set on frames only are lost on encode). Output goes to a temporary name beside
the target and is renamed when :meth:`close` succeeds; an exception inside the ``with`` block
leaves no output file. Frames are encoded as they come: no writer spools frames to disk.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from datakit.color.ycbcr import rgb_to_planes
from datakit.errors import UnsupportedFormatError
from datakit.fsutil import atomic_path
from datakit.io import light_level_sei
from datakit.io.metadata import (
    ContentLightLevel,
    MasteringDisplay,
    matrix_code,
    primaries_code,
    range_code,
    transfer_code,
)

# Output extension -> ffmpeg muxer.
CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".hevc": "hevc", ".h265": "hevc", ".264": "h264"}


X265_HEAP_BUG_WIDTHS = frozenset({40, 48})
"""Picture widths on which PyAV 18.1's bundled libx265 corrupts the heap (glibc ``free(): invalid next size``, the
process aborts later, in other code): seen here for 40 and 48, not for 16-32, 56, 64-128. The writers refuse
them; the synthetic codec pass pads every x265 picture to 64 pixels instead (``datakit.synth.degrade``)."""


def refuse_x265_heap_bug(path: str | os.PathLike[str], codec: str, width: int) -> None:
    """:class:`UnsupportedFormatError` naming ``path`` when ``codec`` is libx265 and ``width`` one of
    :data:`X265_HEAP_BUG_WIDTHS`."""
    if codec == "libx265" and width in X265_HEAP_BUG_WIDTHS:
        raise UnsupportedFormatError(
            f"{path}: libx265 (PyAV's bundled build) corrupts memory on {width}-pixel-wide pictures; "
            f"crop or pad the video to another width"
        )


def _fps(fps: Fraction | float | int | str) -> Fraction:
    value = Fraction(fps).limit_denominator(1001 * 1000) if not isinstance(fps, Fraction) else fps
    if value <= 0:
        raise ValueError(f"frame rate must be positive, got {fps}")
    return value


def _params(base: dict[str, str], extra: dict[str, Any] | str | None) -> str:
    """Join ``key=value`` encoder parameters with ':'; ``extra`` (dict or 'k=v:k=v' string) overrides."""
    merged = dict(base)
    if isinstance(extra, str):
        for item in filter(None, extra.split(":")):
            key, _, value = item.partition("=")
            merged[key] = value
    elif extra:
        merged.update({k: str(v) for k, v in extra.items()})
    return ":".join(f"{k}={v}" if v != "" else k for k, v in merged.items())


def frame_from_planes(width: int, height: int, pix_fmt: str, planes: tuple[np.ndarray, ...]) -> Any:
    """A PyAV frame holding Y'CbCr code planes (``pix_fmt`` as the encoder takes them), written into its padded
    planes in place. The row padding is uninitialized memory that encoders' SIMD code reads (x264's lookahead
    did, and its output then changed from run to run): the edge column is replicated into it, so that encodes
    are reproducible."""
    import av

    frame = av.VideoFrame(width, height, pix_fmt)
    for plane, data in zip(frame.planes, planes, strict=True):
        view = np.frombuffer(plane, dtype=data.dtype).reshape(plane.height, plane.line_size // data.dtype.itemsize)
        view[:, : plane.width] = data
        view[:, plane.width :] = data[:, -1:]
    return frame


class X265DecodeTimes:
    """Decode timestamps for PyAV's bundled libx265, whose packets carry a garbage ``dts`` (a different,
    usually huge negative base in every run, advancing by one frame per packet in decode order), while their
    ``pts`` are right. The MP4/MOV muxer stores ``dts`` relative to the first one, so long streams came out
    right, but on one- and two-frame streams it refused now and then ("Not yet implemented in FFmpeg, patches
    welcome"). Here ``dts_k = pts_0 - D + (dts_k - dts_0)``: the garbage base is dropped and the reorder delay
    ``D`` is the smallest that keeps every ``dts <= pts``, found on the first :data:`HOLD` packets (held back
    until then; B-frame reordering shows within the first few)."""

    HOLD = 16

    def __init__(self, mux: Callable[[Any], None]) -> None:
        self._mux = mux
        self._held: list[Any] = []
        self._first: tuple[int, int] | None = None  # (dts_0, pts_0) as the encoder gave them
        self._delay: int | None = None

    def add(self, packet: Any) -> None:
        if packet.pts is None or packet.dts is None:
            self._mux(packet)
            return
        if self._first is None:
            self._first = (int(packet.dts), int(packet.pts))
        if self._delay is not None:
            self._send(packet)
            return
        self._held.append(packet)
        if len(self._held) >= self.HOLD:
            self.flush()

    def flush(self) -> None:
        if self._delay is None and self._held:
            d0, p0 = self._first  # type: ignore[misc]
            self._delay = max(0, max((int(p.dts) - d0) - (int(p.pts) - p0) for p in self._held))
        held, self._held = self._held, []
        for packet in held:
            self._send(packet)

    def _send(self, packet: Any) -> None:
        d0, p0 = self._first  # type: ignore[misc]
        packet.dts = p0 - int(self._delay or 0) + (int(packet.dts) - d0)
        self._mux(packet)


class _Encoder:
    """A PyAV output container with one video stream fed with Y'CbCr code planes."""

    def __init__(
        self,
        path: Path,
        container_format: str,
        codec: str,
        width: int,
        height: int,
        fps: Fraction,
        pix_fmt: str,
        options: dict[str, str],
        tags: dict[str, str],
        time_base: Fraction | None = None,
        threads: int | None = None,
        count: light_level_sei.PlaceholderCount | None = None,
    ) -> None:
        import av

        self.container = av.open(str(path), "w", format=container_format)
        try:
            stream = self.container.add_stream(codec, rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            self.time_base = Fraction(1) / fps if time_base is None else Fraction(time_base)
            stream.time_base = self.time_base
            cc = stream.codec_context
            if threads is not None:
                cc.thread_count = threads  # 1 gives reproducible bytes (see SDRWriter)
            if time_base is not None:
                cc.time_base = self.time_base  # frames are rebased to the codec time base before encoding
            cc.color_primaries = primaries_code(tags["primaries"])
            cc.color_trc = transfer_code(tags["transfer"])
            cc.colorspace = matrix_code(tags["matrix"])
            cc.color_range = range_code(tags["range"])
            if codec == "libx265" and container_format in ("mp4", "mov"):
                cc.codec_tag = "hvc1"  # parameter sets in the sample entry (Apple players need hvc1)
            stream.options = options
            self.stream = stream
            self._times = X265DecodeTimes(self.container.mux) if codec == "libx265" else None
            self.pix_fmt = pix_fmt
            self.count = 0
            self._count = count  # counts the placeholder content light level in what the encoder hands out
        except BaseException:
            self.container.close()
            raise

    def encode(self, y: np.ndarray, u: np.ndarray, v: np.ndarray, pts: int | None = None) -> None:
        frame = frame_from_planes(self.stream.width, self.stream.height, self.pix_fmt, (y, u, v))
        frame.pts = self.count if pts is None else int(pts)
        frame.time_base = self.time_base  # the muxer may change the stream's time base (MKV: 1/1000)
        for packet in self.stream.encode(frame):
            self._mux(packet)
        self.count += 1

    def _mux(self, packet: Any) -> None:
        if self._count is not None and packet.size:
            self._count.add_packet(bytes(packet))
        if self._times is None:
            self.container.mux(packet)
        else:
            self._times.add(packet)

    def finish(self) -> None:
        for packet in self.stream.encode(None):
            self._mux(packet)
        if self._times is not None:
            self._times.flush()
        if self._count is not None:
            self._count.add_extradata(bytes(self.stream.codec_context.extradata or b""))
        self.container.close()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.container.close()


class _Writer:
    """Shared lifecycle: temporary output, context manager, abort on exception."""

    _codec: str
    _pix_fmt: str
    _bit_depth: int
    _matrix: str

    def __init__(
        self, path: str | os.PathLike[str], width: int, height: int, fps: Fraction | float | int | str
    ) -> None:
        self.path = Path(path)
        ext = self.path.suffix.lower()
        if ext not in CONTAINERS:
            raise UnsupportedFormatError(
                f"{self.path}: unsupported output extension {ext or '(none)'} (use {', '.join(CONTAINERS)})"
            )
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ValueError(f"4:2:0 video needs positive even width and height, got {width}x{height}")
        self.width, self.height, self.fps = int(width), int(height), _fps(fps)
        self.container_format = CONTAINERS[ext]
        self.frames_written = 0
        self._stack = contextlib.ExitStack()
        self._tmp: Path = self._stack.enter_context(atomic_path(self.path))
        self._closed = False

    def __enter__(self) -> _Writer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort(exc_type, exc, tb)

    def _check_rgb(self, rgb: np.ndarray, name: str) -> np.ndarray:
        """(H, W, 3) float32 in [0, 1] from uint8 / uint16 codes or float input."""
        if self._closed:
            raise ValueError(f"{self.path}: writer is closed")
        arr = np.asarray(rgb)
        if arr.shape != (self.height, self.width, 3):
            raise ValueError(f"{name} must be shaped ({self.height}, {self.width}, 3), got {arr.shape}")
        if arr.dtype == np.uint16:
            return arr.astype(np.float32) * np.float32(1.0 / 65535.0)
        if arr.dtype == np.uint8:
            return arr.astype(np.float32) * np.float32(1.0 / 255.0)
        if not np.issubdtype(arr.dtype, np.floating):
            raise ValueError(f"{name} must be float in [0, 1], uint16 or uint8, got {arr.dtype}")
        out = arr.astype(np.float32)
        if not np.isfinite(out).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        return np.clip(out, 0.0, 1.0, out=out)

    def _planes(self, rgb01: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return rgb_to_planes(rgb01, self._matrix, self._bit_depth, full_range=False, subsampling="420", siting="left")

    def abort(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        """Stop without publishing: temporary files are removed and no output appears."""
        if self._closed:
            return
        self._closed = True
        self._abort_encoder()
        error = exc or RuntimeError("writer aborted")
        self._stack.__exit__(type(error), error, tb)

    def _abort_encoder(self) -> None:  # pragma: no cover - overridden
        pass

    def _publish(self) -> None:
        self._closed = True
        self._stack.close()  # renames the temporary file to self.path


class HDR10Writer(_Writer):
    """Write PQ BT.2020 R'G'B' frames as HDR10: HEVC Main10 (libx265), yuv420p10le, limited range.

    VUI: colour primaries BT.2020, transfer SMPTE ST 2084, matrix BT.2020 NCL, limited range, chroma
    location 0; SEI: ST 2086 mastering display (default P3-D65, 0.0001-1000 cd/m^2) and CTA-861.3
    MaxCLL/MaxFALL. Frames are encoded as they come; nothing is spooled. Unless ``light_level`` is given,
    MaxCLL/MaxFALL are measured on the frames written: libx265 writes its content light level SEI (headers and
    every IRAP picture) from the first frame on, so it is started with a placeholder and :meth:`close` rewrites
    every copy in place in the closed file (:mod:`datakit.io.light_level_sei`: a fixed-size message, one
    sequential read of the compressed file, 4 bytes written per copy) before publishing it. This was chosen over
    the alternatives: a spool of the converted planes (3 bytes per pixel per frame, about 1 TB for two hours of
    1080p), a second pass (the model run twice), or the container's own fields (``clli`` box, Matroska
    ``MaxCLL``: not written by ffmpeg for libx265, and players read the SEI). MaxCLL values whose message would
    need an emulation prevention byte (MaxCLL 0, or a multiple of 256 with MaxFALL <= 3) are written 1 cd/m^2
    higher (:func:`~datakit.io.light_level_sei.writable`); :meth:`close` returns what was written.

    ``x265_params`` (dict or ``"k=v:k=v"``) are appended to ours and override them.

    Timestamps: by default frame ``k`` is presented at ``k / fps``. To keep a source's own timing
    (variable frame rate), pass ``time_base`` (seconds per tick) and give each :meth:`write` its
    ``pts`` in those ticks, strictly increasing; ``fps`` then only guides rate control.
    """

    _codec = "libx265"
    _pix_fmt = "yuv420p10le"
    _bit_depth = 10
    _matrix = "bt2020nc"

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int,
        height: int,
        fps: Fraction | float | int | str,
        *,
        crf: float = 18,
        preset: str = "medium",
        mastering: MasteringDisplay | None = None,
        light_level: ContentLightLevel | None = None,
        x265_params: dict[str, Any] | str | None = None,
        time_base: Fraction | None = None,
    ) -> None:
        super().__init__(path, width, height, fps)
        try:
            refuse_x265_heap_bug(self.path, self._codec, self.width)
        except UnsupportedFormatError:
            self.abort()
            raise
        if "max-cll" in {item.partition("=")[0] for item in _params({}, x265_params).split(":")}:
            self.abort()
            raise ValueError(f"{self.path}: give MaxCLL/MaxFALL as light_level, not in x265_params (max-cll)")
        self.crf, self.preset, self.x265_params = crf, preset, x265_params
        self.time_base = None if time_base is None else Fraction(time_base)
        self.mastering = mastering or MasteringDisplay.p3_d65()
        self.light_level: ContentLightLevel | None = light_level
        self._given_light_level = light_level is not None
        self._max_pq = 0.0  # max over pixels of max(R', G', B') (PQ code value)
        self._max_fall = 0.0  # max over frames of the mean of max(R,G,B) in cd/m^2
        self._lut: np.ndarray | None = None
        self._encoder: _Encoder | None = None
        self._placeholders = None if self._given_light_level else light_level_sei.PlaceholderCount()
        try:
            self._encoder = self._open_encoder(light_level or light_level_sei.PLACEHOLDER)
        except BaseException as error:
            self.abort(type(error), error, None)
            raise

    def __enter__(self) -> HDR10Writer:
        return self

    def _open_encoder(self, light_level: ContentLightLevel) -> _Encoder:
        base = {
            "colorprim": "bt2020",
            "transfer": "smpte2084",
            "colormatrix": "bt2020nc",
            "range": "limited",
            "chromaloc": "0",
            "hdr10": "1",
            "master-display": self.mastering.to_x265(),
            "max-cll": light_level.to_x265(),
            "log-level": "error",
        }
        options = {"crf": str(self.crf), "preset": self.preset, "x265-params": _params(base, self.x265_params)}
        tags = {"primaries": "bt2020", "transfer": "smpte2084", "matrix": "bt2020nc", "range": "limited"}
        return _Encoder(
            self._tmp,
            self.container_format,
            self._codec,
            self.width,
            self.height,
            self.fps,
            self._pix_fmt,
            options,
            tags,
            self.time_base,
            count=self._placeholders,
        )

    def _measure(self, rgb_pq: np.ndarray) -> None:
        """Update MaxCLL / MaxFALL (CTA-861.3) from one frame of PQ R'G'B' in [0, 1]."""
        from datakit.color.transfer import st2084_eotf

        if self._lut is None:
            self._lut = np.asarray(st2084_eotf(np.arange(65536, dtype=np.float64) / 65535.0), dtype=np.float64)
        peak = np.maximum(np.maximum(rgb_pq[..., 0], rgb_pq[..., 1]), rgb_pq[..., 2])
        self._max_pq = max(self._max_pq, float(peak.max()))
        # Frame average of max(R,G,B) in cd/m^2 through a 16-bit PQ table (error << 1 cd/m^2).
        codes = np.rint(peak * np.float32(65535.0)).astype(np.uint16)
        hist = np.bincount(codes.ravel(), minlength=65536)
        self._max_fall = max(self._max_fall, float(hist @ self._lut) / codes.size)

    def measured_light_level(self) -> ContentLightLevel:
        """MaxCLL / MaxFALL of the frames written so far, rounded to integer cd/m^2."""
        from datakit.color.transfer import st2084_eotf

        max_cll = float(st2084_eotf(np.float64(self._max_pq))) if self.frames_written else 0.0
        return ContentLightLevel(math.floor(max_cll + 0.5), math.floor(self._max_fall + 0.5))

    def write(self, rgb_pq: np.ndarray, pts: int | None = None) -> None:
        """Append one frame: ``rgb_pq`` (H, W, 3) PQ BT.2020 R'G'B', float in [0, 1] or uint16 (value / 65535).

        ``pts``: presentation time in ``time_base`` ticks (see the class doc); ``None``: the frame's index.
        """
        rgb = self._check_rgb(rgb_pq, "rgb_pq")
        self._measure(rgb)
        assert self._encoder is not None
        self._encoder.encode(*self._planes(rgb), pts)
        self.frames_written += 1

    def close(self) -> ContentLightLevel:
        """Finish encoding, write the measured MaxCLL/MaxFALL, publish the file and return the content light level
        written."""
        if self._closed:
            if self.light_level is None:
                raise ValueError(f"{self.path}: writer was aborted")
            return self.light_level
        if self.frames_written == 0:
            self.abort()
            raise ValueError(f"{self.path}: no frames were written")
        assert self._encoder is not None
        try:
            self._encoder.finish()
            if self._placeholders is not None:
                level = light_level_sei.writable(self.measured_light_level())
                light_level_sei.rewrite_light_level(self._tmp, level, self._placeholders)
                self.light_level = level
        except BaseException as error:
            self.abort(type(error), error, error.__traceback__)
            raise
        self._publish()
        assert self.light_level is not None
        return self.light_level

    def _abort_encoder(self) -> None:
        encoder = getattr(self, "_encoder", None)
        if encoder is not None:
            encoder.abort()


class SDRWriter(_Writer):
    """Write BT.709 R'G'B' frames as SDR: H.264 (libx264, or libx265) yuv420p, limited range, BT.709 tags.

    The R'G'B' -> Y'CbCr conversion uses the BT.709 matrix (ITU-R BT.709-6) with 8-bit limited-range
    codes; VUI colour primaries, transfer and matrix are BT.709 and chroma location 0.
    ``codec_params`` (dict or ``"k=v:k=v"``) are appended to the x264/x265 parameters and override them.
    ``threads``: encoder threads (default: ffmpeg's choice). Use 1 for byte-reproducible output: with
    several threads, x264's output was seen to change from run to run in a process that had run libx265.
    """

    _pix_fmt = "yuv420p"
    _bit_depth = 8
    _matrix = "bt709"

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int,
        height: int,
        fps: Fraction | float | int | str,
        *,
        crf: float = 18,
        preset: str = "medium",
        codec: str = "libx264",
        codec_params: dict[str, Any] | str | None = None,
        threads: int | None = None,
    ) -> None:
        super().__init__(path, width, height, fps)
        if codec not in ("libx264", "libx265"):
            self.abort()
            raise ValueError(f"SDR codec must be libx264 or libx265, got {codec!r}")
        self._codec = codec
        try:
            refuse_x265_heap_bug(self.path, codec, self.width)
        except UnsupportedFormatError:
            self.abort()
            raise
        if codec == "libx264":
            params = {"colorprim": "bt709", "transfer": "bt709", "colormatrix": "bt709", "range": "tv"}
            params["chromaloc"] = "0"
            options = {"crf": str(crf), "preset": preset, "x264-params": _params(params, codec_params)}
        else:
            params = {"colorprim": "bt709", "transfer": "bt709", "colormatrix": "bt709", "range": "limited"}
            params.update({"chromaloc": "0", "log-level": "error"})
            options = {"crf": str(crf), "preset": preset, "x265-params": _params(params, codec_params)}
        tags = {"primaries": "bt709", "transfer": "bt709", "matrix": "bt709", "range": "limited"}
        try:
            self._encoder = _Encoder(
                self._tmp,
                self.container_format,
                codec,
                self.width,
                self.height,
                self.fps,
                self._pix_fmt,
                options,
                tags,
                threads=threads,
            )
        except BaseException as error:
            self.abort(type(error), error, None)
            raise

    def __enter__(self) -> SDRWriter:
        return self

    def write(self, rgb_sdr: np.ndarray) -> None:
        """Append one frame: ``rgb_sdr`` (H, W, 3) BT.709 R'G'B', uint8 codes or float in [0, 1]."""
        y, u, v = self._planes(self._check_rgb(rgb_sdr, "rgb_sdr"))
        self._encoder.encode(y, u, v)
        self.frames_written += 1

    def close(self) -> None:
        """Finish encoding and publish the file."""
        if self._closed:
            return
        if self.frames_written == 0:
            self.abort()
            raise ValueError(f"{self.path}: no frames were written")
        try:
            self._encoder.finish()
        except BaseException as error:
            self.abort(type(error), error, error.__traceback__)
            raise
        self._publish()

    def _abort_encoder(self) -> None:
        encoder = getattr(self, "_encoder", None)
        if encoder is not None:
            encoder.abort()
