"""HDR10 static metadata as the container stores it, read from the file's own structures.

ffmpeg hands the container's copy to the decoder as stream side data and then attaches it to every decoded frame,
where it looks the same as the bitstream's (HEVC/H.264 SEI, AV1 metadata OBUs); PyAV 18 exposes no stream side
data. :func:`container_hdr_metadata` reads the container's copy itself, so that probe can say where the metadata
is (VP9 has no place for it in its bitstream: WebM's Colour element is the only carrier).

- Matroska / WebM (Matroska specification, Colour element of the video track): ``MaxCLL``, ``MaxFALL`` and
  ``MasteringMetadata`` (chromaticities as floats, luminance in cd/m^2).
- ISO BMFF (MP4, MOV): the sample entry's ``mdcv`` box (SMPTE ST 2086 in the SEI's units: primaries in G, B, R
  order in 0.00002, luminance in 0.0001 cd/m^2) and ``clli`` box (MaxCLL, MaxFALL as 16-bit integers); ffmpeg
  writes these for VP9 in MP4 too (the older ``SmDm``/``CoLL`` boxes of the VP codec binding are not read).

Only the headers are read (the Matroska Tracks element, the MP4 ``moov`` box); malformed structures give ``None``.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import BinaryIO

from datakit.io.metadata import ContentLightLevel, MasteringDisplay

_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_SEGMENT, _TRACKS, _TRACK_ENTRY, _TRACK_TYPE, _VIDEO, _COLOUR = 0x18538067, 0x1654AE6B, 0xAE, 0x83, 0xE0, 0x55B0
_CLUSTER = 0x1F43B675
_MAX_CLL, _MAX_FALL, _MASTERING = 0x55BC, 0x55BD, 0x55D0
# MasteringMetadata children: R x, R y, G x, G y, B x, B y, white x, white y, luminance max, luminance min.
_MASTERING_IDS = tuple(range(0x55D1, 0x55DB))
_MAX_HEADER_BYTES = 64 << 20  # the Tracks element / moov box read at most

Metadata = tuple[MasteringDisplay | None, ContentLightLevel | None]


def container_hdr_metadata(path: str | os.PathLike[str]) -> Metadata:
    """``(mastering display, content light level)`` stored by the container of ``path`` for its first video track
    (each ``None`` when absent); ``(None, None)`` for other containers."""
    with open(path, "rb") as f:
        head = f.read(12)
        f.seek(0)
        try:
            if head.startswith(_EBML_MAGIC):
                return _matroska(f)
            if head[4:8] in (b"ftyp", b"moov", b"wide", b"mdat", b"free", b"skip"):
                return _isobmff(f)
        except (ValueError, struct.error, IndexError):
            return None, None
    return None, None


# ----------------------------------------------------------------------------------------------- Matroska / WebM
def _vint(data: bytes, pos: int, keep_marker: bool) -> tuple[int, int]:
    """An EBML variable-length integer at ``pos``: (value, next position); IDs keep their marker bit."""
    first = data[pos]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8:
        raise ValueError("bad EBML length")
    value = first if keep_marker else first & (0xFF >> length)
    for b in data[pos + 1 : pos + length]:
        value = (value << 8) | b
    if len(data) < pos + length:
        raise ValueError("EBML element cut off")
    unknown = not keep_marker and value == (1 << (7 * length)) - 1
    return (-1 if unknown else value), pos + length


def _elements(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int, int]]:
    """(id, payload start, payload end) of the EBML elements in ``data[start:end]``."""
    end = len(data) if end is None else end
    pos = start
    while pos < end:
        element, pos = _vint(data, pos, keep_marker=True)
        size, pos = _vint(data, pos, keep_marker=False)
        stop = end if size < 0 else min(end, pos + size)
        yield element, pos, stop
        pos = stop


def _read_element_header(f: BinaryIO) -> tuple[int, int] | None:
    """(id, size) of the element at the file position (size -1: unknown), the position left at its payload."""
    head = f.read(12)
    if len(head) < 2:
        return None
    element, pos = _vint(head, 0, keep_marker=True)
    size, pos = _vint(head, pos, keep_marker=False)
    f.seek(pos - len(head), os.SEEK_CUR)
    return element, size


def _matroska(f: BinaryIO) -> Metadata:
    header = _read_element_header(f)  # EBML header
    if header is None:
        return None, None
    f.seek(header[1], os.SEEK_CUR)
    segment = _read_element_header(f)
    if segment is None or segment[0] != _SEGMENT:
        return None, None
    while True:  # the Segment's top-level children, up to Tracks (written before the first Cluster)
        child = _read_element_header(f)
        if child is None or child[0] == _CLUSTER or child[1] < 0:
            return None, None
        if child[0] == _TRACKS:
            tracks = f.read(min(child[1], _MAX_HEADER_BYTES))
            break
        f.seek(child[1], os.SEEK_CUR)
    for element, start, stop in _elements(tracks):
        if element != _TRACK_ENTRY:
            continue
        children = {e: (s, t) for e, s, t in _elements(tracks, start, stop)}
        kind = children.get(_TRACK_TYPE)
        if kind is None or int.from_bytes(tracks[kind[0] : kind[1]], "big") != 1 or _VIDEO not in children:
            continue
        video = {e: (s, t) for e, s, t in _elements(tracks, *children[_VIDEO])}
        if _COLOUR not in video:
            return None, None
        return _matroska_colour(tracks, *video[_COLOUR])
    return None, None


def _ebml_float(data: bytes) -> float:
    return struct.unpack(">f" if len(data) == 4 else ">d", data)[0] if data else 0.0


def _matroska_colour(data: bytes, start: int, stop: int) -> Metadata:
    colour = {e: data[s:t] for e, s, t in _elements(data, start, stop)}
    light = None
    if _MAX_CLL in colour or _MAX_FALL in colour:
        light = ContentLightLevel(
            int.from_bytes(colour.get(_MAX_CLL, b""), "big"), int.from_bytes(colour.get(_MAX_FALL, b""), "big")
        )
    mastering = None
    if _MASTERING in colour:
        block = colour[_MASTERING]
        values = {e: _ebml_float(block[s:t]) for e, s, t in _elements(block)}
        v = [values.get(i, 0.0) for i in _MASTERING_IDS]
        mastering = MasteringDisplay((v[0], v[1]), (v[2], v[3]), (v[4], v[5]), (v[6], v[7]), v[9], v[8])
    return mastering, light


# ----------------------------------------------------------------------------------------------- ISO BMFF
_CONTAINER_BOXES = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}
_VISUAL_SAMPLE_ENTRY_BYTES = 78  # after the box header: ISO/IEC 14496-12 VisualSampleEntry fields


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the boxes in ``data[start:end]``."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        head = 8
        if size == 1:
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            head = 16
        elif size == 0:
            size = end - pos
        if size < head:
            raise ValueError("bad box size")
        yield kind, pos + head, min(end, pos + size)
        pos += size


def _isobmff(f: BinaryIO) -> Metadata:
    while True:  # top-level boxes up to moov (skipping mdat without reading it)
        head = f.read(16)
        if len(head) < 8:
            return None, None
        size, kind = struct.unpack_from(">I4s", head)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", head, 8)[0], 16
        if kind == b"moov":
            f.seek(header - len(head), os.SEEK_CUR)
            body = f.read(min(size - header, _MAX_HEADER_BYTES)) if size else f.read(_MAX_HEADER_BYTES)
            return _moov(body)
        if size < header:
            return None, None
        f.seek(size - len(head), os.SEEK_CUR)


def _moov(data: bytes) -> Metadata:
    for trak, start, stop in _boxes(data, 0, len(data)):
        if trak != b"trak":
            continue
        found = _find_stsd(data, start, stop)
        if found is None:
            continue
        is_video, result = found
        if is_video:
            return result
    return None, None


def _find_stsd(data: bytes, start: int, stop: int) -> tuple[bool, Metadata] | None:
    handler = None
    stsd = None

    def walk(a: int, b: int) -> None:
        nonlocal handler, stsd
        for kind, s, t in _boxes(data, a, b):
            if kind == b"hdlr" and handler is None:  # the media handler (MOV's minf has a data handler too)
                handler = data[s + 8 : s + 12]
            elif kind == b"stsd":
                stsd = (s, t)
            elif kind in _CONTAINER_BOXES:
                walk(s, t)

    walk(start, stop)
    if stsd is None:
        return None
    s, t = stsd
    entries = list(_boxes(data, s + 8, t))  # FullBox header + entry_count
    if not entries:
        return None
    _, es, et = entries[0]
    metadata = _sample_entry_boxes(data, es + _VISUAL_SAMPLE_ENTRY_BYTES, et)
    return handler == b"vide", metadata


def _sample_entry_boxes(data: bytes, start: int, stop: int) -> Metadata:
    mastering: MasteringDisplay | None = None
    light: ContentLightLevel | None = None
    for kind, s, t in _boxes(data, start, stop):
        body = data[s:t]
        if kind == b"mdcv" and len(body) >= 24:
            gx, gy, bx, by, rx, ry, wx, wy, lmax, lmin = struct.unpack_from(">8H2I", body)
            c = 0.00002
            mastering = MasteringDisplay(
                (rx * c, ry * c), (gx * c, gy * c), (bx * c, by * c), (wx * c, wy * c), lmin * 1e-4, lmax * 1e-4
            )
        elif kind == b"clli" and len(body) >= 4:
            light = ContentLightLevel(*struct.unpack_from(">2H", body))
    return mastering, light
