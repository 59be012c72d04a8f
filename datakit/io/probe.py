"""``probe(path) -> VideoInfo``: what a video file is (codec, size, exact frame rate, colour tags, HDR10 metadata).

Colour tags use ffmpeg's names (``bt2020``, ``smpte2084``, ``bt2020nc``...; see
:mod:`datakit.io.metadata`), with the range spelled ``limited`` / ``full`` and ``None`` when a tag
is not signalled. The ST 2086 mastering display and CTA-861.3 content light level are read from
the side data of the first decoded frame, where ffmpeg puts them whether they came from the bitstream (HEVC/H.264
SEI, AV1 metadata OBUs) or from the container (Matroska/WebM Colour element, MP4 ``mdcv``/``clli`` boxes, which
ffmpeg hands to the decoder as stream side data); :mod:`datakit.io.container` reads the container's own copy, so
that :attr:`VideoInfo.hdr_metadata_in` says where the metadata is.

Truncation: the end of the last video packet (:attr:`VideoInfo.data_end_seconds`, found by demuxing the file's
tail, nothing decoded) is compared with the duration the container declares (:attr:`VideoInfo.truncated`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from datakit.errors import InputError, NotHDR10Error, TruncatedError, UnsupportedFormatError
from datakit.io.metadata import (
    MATRIX_NAMES,
    PRIMARIES_NAMES,
    RANGE_NAMES,
    TRANSFER_NAMES,
    ContentLightLevel,
    MasteringDisplay,
)

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".mkv", ".mov", ".m4v", ".ts", ".m2ts", ".webm", ".hevc", ".h265", ".265", ".264", ".h264"}
)
"""File name endings taken for videos where a folder holds videos beside images (pairs folders, synth inputs,
import layouts, audit sources): containers and raw HEVC/H.264 elementary streams."""

# Planar Y'CbCr / gray formats the reader converts (little-endian, 8-16 bit; yuvj = full range).
_SUPPORTED_PIX_FMT = re.compile(r"^(?:yuvj?(?:420|422|444)p|gray)(?:9|10|12|14|16)?(?:le)?$")

# Primaries that SDR (BT.709 R'G'B') input may carry: BT.709 or the close BT.601 sets.
_SDR_PRIMARIES = {None, "bt709", "bt470bg", "smpte170m"}


@dataclass(frozen=True)
class VideoInfo:
    """Facts about a video file's first video stream. Times in seconds; ``fps`` is exact."""

    path: str
    container: str
    codec: str
    width: int
    height: int
    fps: Fraction
    frame_count: int
    frame_count_exact: bool
    duration_seconds: float
    pix_fmt: str
    bit_depth: int
    chroma_subsampling: str  # "420", "422", "444" or "400" (gray)
    color_primaries: str | None
    color_trc: str | None
    color_matrix: str | None
    color_range: str | None  # "limited" or "full"
    chroma_location: str | None  # "left", "center", "topleft"... (None: not signalled)
    mastering_display: MasteringDisplay | None
    content_light_level: ContentLightLevel | None
    has_audio: bool
    profile: str | None = None
    time_base: Fraction = field(default=Fraction(1, 1))
    data_end_seconds: float | None = None  # end of the last whole video packet the file holds (None: not measured)
    ends_inside_packet: bool = False  # the file stops inside its last video packet (a short read: cut off)
    hdr_metadata_in: tuple[str, ...] = ()  # where the HDR10 static metadata is: "container", "bitstream"
    decoder: str = ""  # the ffmpeg decoder PyAV picked (libdav1d for AV1, vp9, hevc, h264...)

    @property
    def truncated(self) -> bool:
        """Whether the container declares more video than the file holds (a cut-off download): the file stops
        inside a video packet, or the declared duration exceeds the end of the last whole video packet by more
        than :data:`TRUNCATION_SLACK_FRAMES` frames and 1 % (the slack covers an audio track that ends a little
        later than the video)."""
        if self.ends_inside_packet:
            return True
        if self.data_end_seconds is None or self.duration_seconds <= 0.0:
            return False
        slack = max(TRUNCATION_SLACK_FRAMES / float(self.fps), 0.01 * self.duration_seconds)
        return self.duration_seconds - self.data_end_seconds > slack

    @property
    def kind(self) -> str:
        """``hdr10`` (PQ + BT.2020 + >= 10 bit), ``hlg``, ``pq-other`` (PQ otherwise) or ``sdr``."""
        if self.color_trc == "smpte2084":
            if self.color_primaries == "bt2020" and self.bit_depth >= 10:
                return "hdr10"
            return "pq-other"
        if self.color_trc == "arib-std-b67":
            return "hlg"
        return "sdr"

    @property
    def pix_fmt_supported(self) -> bool:
        """Whether :class:`datakit.io.reader.VideoReader` can convert this pixel format."""
        return bool(_SUPPORTED_PIX_FMT.match(self.pix_fmt))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; ``fps`` as the exact string ``"num/den"`` plus ``fps_float``."""
        return {
            "path": self.path,
            "container": self.container,
            "codec": self.codec,
            "decoder": self.decoder,
            "profile": self.profile,
            "width": self.width,
            "height": self.height,
            "fps": f"{self.fps.numerator}/{self.fps.denominator}",
            "fps_float": float(self.fps),
            "frame_count": self.frame_count,
            "frame_count_exact": self.frame_count_exact,
            "duration_seconds": self.duration_seconds,
            "pix_fmt": self.pix_fmt,
            "bit_depth": self.bit_depth,
            "chroma_subsampling": self.chroma_subsampling,
            "color_primaries": self.color_primaries,
            "color_trc": self.color_trc,
            "color_matrix": self.color_matrix,
            "color_range": self.color_range,
            "chroma_location": self.chroma_location,
            "mastering_display": self.mastering_display.to_dict() if self.mastering_display else None,
            "content_light_level": self.content_light_level.to_dict() if self.content_light_level else None,
            "has_audio": self.has_audio,
            "kind": self.kind,
            "data_end_seconds": self.data_end_seconds,
            "ends_inside_packet": self.ends_inside_packet,
            "truncated": self.truncated,
            "hdr_metadata_in": list(self.hdr_metadata_in),
        }

    def describe(self) -> str:
        """One phrase naming what the stream is, for error messages (e.g. ``SDR (bt709/bt709, 8-bit)``)."""
        label = {"hdr10": "HDR10", "hlg": "HLG", "pq-other": "PQ (not BT.2020 10-bit)", "sdr": "SDR"}[self.kind]
        tags = f"{self.color_primaries or 'untagged'}/{self.color_trc or 'untagged'}"
        return f"{label} ({tags}, {self.bit_depth}-bit {self.pix_fmt})"

    def summary(self) -> str:
        """A few human-readable lines (``datakit probe`` without ``--json``)."""
        fps = f"{self.fps.numerator}/{self.fps.denominator}" if self.fps.denominator != 1 else str(self.fps.numerator)
        count = f"{self.frame_count} frames" + ("" if self.frame_count_exact else " (estimated)")
        lines = [
            f"{self.path}",
            f"  {self.kind}: {self.codec} {self.profile or ''} ({self.decoder}) in {self.container}, "
            f"{self.width}x{self.height}, "
            f"{fps} fps ({float(self.fps):.3f}), {count}, {self.duration_seconds:.3f} s"
            + (", audio" if self.has_audio else ""),
            f"  {self.pix_fmt} ({self.bit_depth}-bit {self.chroma_subsampling}), primaries {self.color_primaries}, "
            f"transfer {self.color_trc}, matrix {self.color_matrix}, range {self.color_range}, "
            f"chroma location {self.chroma_location}",
        ]
        if self.truncated:
            lines.append(f"  TRUNCATED: {self.truncation_text()}")
        if self.hdr_metadata_in:
            lines.append(f"  HDR10 static metadata in: {', '.join(self.hdr_metadata_in)}")
        if self.mastering_display:
            lines.append(f"  mastering display: {self.mastering_display.describe()}")
        if self.content_light_level:
            cll = self.content_light_level
            lines.append(f"  content light level: MaxCLL {cll.max_cll} cd/m2, MaxFALL {cll.max_fall} cd/m2")
        return "\n".join(lines)


    def truncation_text(self) -> str:
        """The container's declared duration beside what the file holds, in one phrase."""
        held = self.data_end_seconds or 0.0
        inside = ", inside a packet" if self.ends_inside_packet else ""
        return (
            f"the container declares {self.duration_seconds:.3f} s but the video data ends at {held:.3f} s{inside} "
            f"({round(held * float(self.fps))} of {round(self.duration_seconds * float(self.fps))} frames)"
        )


# Frames of slack before a shortfall of video data counts as truncation (see VideoInfo.truncated).
TRUNCATION_SLACK_FRAMES = 3
# Seconds before the declared end where the tail scan starts demuxing (see _data_end).
_TAIL_SECONDS = 3.0


def require_complete(info: VideoInfo, allow_truncated: bool = False) -> list[str]:
    """Raise :class:`TruncatedError` (one line naming the declared duration and what the file holds) when the file
    is cut off, unless ``allow_truncated``; then return it as a warning."""
    if not info.truncated:
        return []
    if allow_truncated:
        return [f"{info.path}: truncated: {info.truncation_text()}"]
    raise TruncatedError(f"{info.path} is truncated: {info.truncation_text()} (--allow-truncated uses what is there)")


def require_complete_files(*paths: str | os.PathLike[str], allow_truncated: bool = False) -> list[str]:
    """:func:`require_complete` for files (probed without counting frames: the tail scan suffices)."""
    warnings: list[str] = []
    for path in paths:
        warnings += require_complete(probe(path, count_frames=False), allow_truncated)
    return warnings


def _tag_duration(text: str | None) -> float | None:
    """Seconds of a ``HH:MM:SS.fraction`` duration tag (ffmpeg's Matroska muxer writes one per track)."""
    found = re.fullmatch(r"\s*(\d+):(\d{1,2}):(\d{1,2}(?:\.\d*)?)\s*", text or "")
    if found is None:
        return None
    hours, minutes, seconds = found.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _error_text(error: BaseException) -> str:
    text = getattr(error, "strerror", None) or str(error)
    return str(text).strip().splitlines()[0] if text else type(error).__name__


def open_input(path: str | os.PathLike[str]) -> Any:
    """Open ``path`` with PyAV for reading; missing, unreadable or non-media files raise :class:`InputError`."""
    import av

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a directory, not a video file")
    try:
        container = av.open(str(p), "r", metadata_errors="ignore")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as error:
        raise InputError(f"{p}: not a readable video file ({_error_text(error)})") from None
    if not container.streams.video:
        has_streams = len(container.streams) > 0
        container.close()
        if not has_streams:
            raise InputError(f"{p}: not a readable video file (no streams found: truncated or damaged?)")
        raise InputError(f"{p}: contains no video stream")
    return container


def _container_name(container: Any, path: Path) -> str:
    names = container.format.name.split(",")
    ext = path.suffix.lower().lstrip(".")
    return ext if ext in names else names[0]


def _subsampling(fmt: Any) -> str:
    if len(fmt.components) == 1:
        return "400"
    sub_x = fmt.chroma_width(1024) < 1024
    sub_y = fmt.chroma_height(1024) < 1024
    return "420" if sub_x and sub_y else "422" if sub_x else "444"


def _scan_packets(container: Any, stream: Any) -> tuple[int, int | None, bool]:
    """From the demuxer's position, nothing decoded: (video packets with data, end timestamp of the last whole one,
    whether the file ends inside the last packet). A demuxer that reads a packet short at the end of the file flags
    it corrupt (MP4 / MOV, whose sample table lists every sample); Matroska drops the incomplete cluster."""
    count, end, cut = 0, None, False
    for packet in container.demux(stream):
        if not packet.size:
            continue
        count += 1
        cut = packet.is_corrupt
        if packet.pts is not None and not cut:
            stop = packet.pts + (packet.duration or 0)
            end = stop if end is None else max(end, stop)
    return count, end, cut


def _data_end(path: Path, declared: float) -> tuple[int | None, bool]:
    """(end timestamp of the last whole video packet, file cut inside a packet): demuxes from
    :data:`_TAIL_SECONDS` before the declared end (a seek through the container's index) or, when that finds
    nothing (no index in a cut-off file), the whole file."""
    import av

    with open_input(path) as container:
        stream = container.streams.video[0]
        start = stream.start_time or 0
        time_base = Fraction(stream.time_base.numerator, stream.time_base.denominator)
        if declared > _TAIL_SECONDS:
            target = start + int(Fraction(declared - _TAIL_SECONDS).limit_denominator(10**6) / time_base)
            try:
                container.seek(target, stream=stream, backward=True, any_frame=True)
                _, end, cut = _scan_packets(container, stream)
            except av.FFmpegError:
                end, cut = None, False
            if end is not None:
                return end, cut
    with open_input(path) as container:
        return _scan_packets(container, container.streams.video[0])[1:]


def probe(path: str | os.PathLike[str], *, count_frames: bool = True) -> VideoInfo:
    """Describe the first video stream of ``path`` (see :class:`VideoInfo`).

    ``frame_count`` comes from the container when it records one (MP4/MOV), else packets are
    counted by demuxing the whole file (MKV, raw streams; no decoding); with
    ``count_frames=False`` it is estimated as ``duration * fps`` and ``frame_count_exact`` is False.
    Raises :class:`InputError` for missing, non-video, truncated or undecodable files.
    """
    import av

    p = Path(path)
    container = open_input(p)
    try:
        stream = container.streams.video[0]
        cc = stream.codec_context
        fps = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not fps:
            raise InputError(f"{p}: video stream has no frame rate")
        fps = Fraction(fps.numerator, fps.denominator)
        time_base = Fraction(stream.time_base.numerator, stream.time_base.denominator)
        # First frame: side data (HDR10 static metadata) and tags missing at stream level.
        first = None
        first_packet: bytes | None = None
        try:
            for packet in container.demux(stream):
                if first_packet is None and packet.size:
                    first_packet = bytes(packet)
                for frame in packet.decode():
                    first = frame
                    break
                if first is not None:
                    break
        except av.FFmpegError as error:
            raise InputError(f"{p}: cannot decode video ({_error_text(error)})") from None
        if first is None:
            raise InputError(f"{p}: no decodable video frame (empty or truncated file)")

        def tag(table: dict[int, str], stream_value: Any, frame_value: Any) -> str | None:
            for value in (stream_value, frame_value):
                name = table.get(int(value)) if value is not None else None
                if name:
                    return name
            return None

        pix_fmt = first.format.name
        color_range = tag(RANGE_NAMES, cc.color_range, first.color_range)
        if color_range is None and pix_fmt.startswith("yuvj"):
            color_range = "full"
        mastering = light = None
        for side in first.side_data:
            kind = getattr(side.type, "name", str(side.type))
            if kind == "MASTERING_DISPLAY_METADATA":
                mastering = MasteringDisplay.from_side_data(bytes(side))
            elif kind == "CONTENT_LIGHT_LEVEL":
                light = ContentLightLevel.from_side_data(bytes(side))

        from datakit.io.bitstream import chroma_location, hdr_metadata_in_bitstream
        from datakit.io.container import container_hdr_metadata

        extradata = bytes(cc.extradata) if cc.extradata else None
        location = chroma_location(cc.name, extradata, first_packet)
        boxed_mastering, boxed_light = container_hdr_metadata(p)
        mastering, light = mastering or boxed_mastering, light or boxed_light
        metadata_in = tuple(
            name
            for name, present in (
                ("container", boxed_mastering is not None or boxed_light is not None),
                ("bitstream", hdr_metadata_in_bitstream(cc.name, extradata, first_packet)),
            )
            if present
        )

        tagged = _tag_duration(stream.metadata.get("DURATION") or stream.metadata.get("duration"))
        if stream.duration:
            duration = float(stream.duration * time_base)
        elif tagged is not None:  # Matroska's per-track DURATION tag (written last: a cut-off file has none)
            duration = tagged
        elif container.duration:
            duration = container.duration / av.time_base
        else:
            duration = 0.0
        frame_count, exact = int(stream.frames or 0), True
        end_pts: int | None = None
        cut = False
        if frame_count <= 0:
            if count_frames:
                with open_input(p) as counter:
                    frame_count, end_pts, cut = _scan_packets(counter, counter.streams.video[0])
            else:
                frame_count, exact = round(duration * fps), False
        if end_pts is None:
            end_pts, cut = _data_end(p, duration)
        start_pts = stream.start_time or 0
        data_end = float((end_pts - start_pts) * time_base) if end_pts is not None else None
        raw_stream = container.format.name in ("hevc", "h264")  # no timestamps: duration is a bitrate guess
        if frame_count and exact and (duration <= 0.0 or raw_stream):
            duration = float(frame_count / fps)
        if raw_stream:
            data_end = None  # no timestamps to compare
        elif data_end is not None and frame_count and (cut or duration - data_end > TRUNCATION_SLACK_FRAMES / fps):
            held = max(1, round(data_end * fps))
            if held < frame_count:  # a count from the container's sample table promises the missing frames too
                frame_count, exact = held, False
        bit_depth = max(c.bits for c in first.format.components)
        return VideoInfo(
            path=str(p),
            container=_container_name(container, p),
            codec=getattr(cc.codec, "canonical_name", cc.name),
            decoder=cc.name,
            width=first.width,
            height=first.height,
            fps=fps,
            frame_count=frame_count,
            frame_count_exact=exact,
            duration_seconds=duration,
            pix_fmt=pix_fmt,
            bit_depth=bit_depth,
            chroma_subsampling=_subsampling(first.format),
            color_primaries=tag(PRIMARIES_NAMES, cc.color_primaries, first.color_primaries),
            color_trc=tag(TRANSFER_NAMES, cc.color_trc, first.color_trc),
            color_matrix=tag(MATRIX_NAMES, cc.colorspace, first.colorspace),
            color_range=color_range,
            chroma_location=location,
            mastering_display=mastering,
            content_light_level=light,
            has_audio=bool(container.streams.audio),
            profile=cc.profile,
            time_base=time_base,
            data_end_seconds=data_end,
            ends_inside_packet=cut and not raw_stream,
            hdr_metadata_in=metadata_in,
        )
    except av.FFmpegError as error:
        raise InputError(f"{p}: cannot read video ({_error_text(error)})") from None
    finally:
        container.close()


def require_hdr10(info: VideoInfo) -> list[str]:
    """Raise :class:`NotHDR10Error` unless ``info`` is HDR10; return warnings (missing static metadata).

    HDR10 = SMPTE ST 2084 PQ transfer, BT.2020 primaries, >= 10 bit (ITU-R BT.2100 PQ system).
    """
    if info.kind == "hlg":
        raise NotHDR10Error(
            f"{info.path} is HLG (arib-std-b67), not HDR10 PQ: convert it to PQ first (HLG is not supported)"
        )
    if info.kind != "hdr10":
        raise NotHDR10Error(f"{info.path} is not HDR10 (PQ, BT.2020, >= 10-bit): it is {info.describe()}")
    if not info.pix_fmt_supported:
        raise UnsupportedFormatError(f"{info.path}: pixel format {info.pix_fmt} is not supported")
    warnings = []
    if info.mastering_display is None:
        warnings.append(f"{info.path}: no ST 2086 mastering display metadata")
    if info.content_light_level is None:
        warnings.append(f"{info.path}: no MaxCLL/MaxFALL content light level")
    return warnings


def require_sdr(info: VideoInfo) -> list[str]:
    """Raise :class:`UnsupportedFormatError` unless ``info`` is SDR BT.709 video; return warnings for untagged input.

    SDR here is a BT.709 (or close BT.601) R'G'B' signal with a non-HDR transfer (BT.709 / BT.1886,
    sRGB, BT.601 or untagged); wide-gamut SDR (BT.2020 primaries) is refused.
    """
    if info.kind != "sdr":
        raise UnsupportedFormatError(f"{info.path} is not SDR: it is {info.describe()}")
    if info.color_primaries not in _SDR_PRIMARIES:
        raise UnsupportedFormatError(
            f"{info.path} is SDR with {info.color_primaries} primaries; only BT.709 SDR is supported"
        )
    if not info.pix_fmt_supported:
        raise UnsupportedFormatError(f"{info.path}: pixel format {info.pix_fmt} is not supported")
    warnings = []
    untagged = [
        name
        for name, value in (
            ("primaries", info.color_primaries),
            ("transfer", info.color_trc),
            ("matrix", info.color_matrix),
            ("range", info.color_range),
        )
        if value is None
    ]
    if untagged:
        matrix = info.color_matrix or default_matrix(info.height)
        warnings.append(
            f"{info.path}: untagged {', '.join(untagged)}; assuming BT.709 SDR, {matrix} matrix, "
            f"{info.color_range or 'limited'} range"
        )
    return warnings


def default_matrix(height: int, primaries: str | None = None) -> str:
    """Y'CbCr matrix assumed for untagged video: BT.2020 NCL for BT.2020 primaries, else BT.709 for
    HD and larger (height >= 720, ITU-R BT.709) and BT.601 below (SD, ITU-R BT.601), as players do."""
    if primaries == "bt2020":
        return "bt2020nc"
    return "bt709" if height >= 720 else "bt601"
