"""The CTA-861.3 content light level SEI of a finished HEVC file, rewritten in place.

:class:`~datakit.io.writer.HDR10Writer` measures MaxCLL / MaxFALL on the frames it encodes, so it knows them only
after the last frame, while libx265 writes its ``content_light_level_info`` SEI message (ITU-T H.265 D.2.35,
payloadType 144: two 16-bit fields, ``max_content_light_level`` and ``max_pic_average_light_level``) into the
stream headers and into every IRAP access unit from the first frame on. So the encoder is started with
:data:`PLACEHOLDER` and, once the file is closed, :func:`rewrite_light_level` overwrites every copy of the
placeholder message with the measured values.

The message has a fixed size: the rewrite replaces 4 bytes per copy and moves nothing, so no container offset,
NAL unit length or box size changes (the MP4/MOV ``hvcC`` record and samples, the Matroska ``CodecPrivate`` and
blocks, a raw Annex B stream alike). Two conditions keep it exact:

- the placeholder holds no byte 0x00..0x03, so no emulation prevention byte (H.265 7.4.2) lies in or next to it
  and the message is stored verbatim in the file;
- the measured values must need no emulation prevention byte either (``00 00`` followed by a byte <= 3 inside the
  message). That happens only for MaxCLL 0 (with MaxFALL below 1024) and for MaxCLL a multiple of 256 with
  MaxFALL <= 3; :func:`writable` raises MaxCLL of those by 1 cd/m^2 (still an upper bound of every pixel).

Finding the copies: the finished file is read once, sequentially; every occurrence of the placeholder message
(payloadType, payloadSize, the placeholder's 4 bytes) is one, and so is each ``cll=`` field of libx265's encoder
information SEI (its options as text, rewritten with the measured values padded with spaces). This works for
every container without parsing its sample tables, and costs one read of the compressed output, a small
fraction of the encode (figures in docs/ARCHITECTURE.md). The writer counts the copies in the packets it muxed
and in the encoder's extradata (:class:`PlaceholderCount`); the file must hold at least the packets' count and
at most that plus the extradata's (muxers store the extradata in a header, or not at all), else nothing is
rewritten and :class:`~datakit.errors.DatakitError` is raised (the writer then publishes nothing).
"""

from __future__ import annotations

import mmap
import os
import struct

from datakit.errors import DatakitError
from datakit.io.metadata import ContentLightLevel

SEI_CONTENT_LIGHT_LEVEL = 144
"""payloadType of content_light_level_info (ITU-T H.265 / H.264 Annex D)."""
PLACEHOLDER = ContentLightLevel(0xC3D5, 0xB7A9)
"""What the encoder is given until the measured values are known: no byte is 0x00..0x03 (see the module doc)."""
_CHUNK = 16 << 20  # bytes searched at a time


def sei_message(level: ContentLightLevel) -> bytes:
    """The SEI message as it appears in the RBSP: payloadType, payloadSize (4), MaxCLL, MaxFALL (big-endian)."""
    return struct.pack(">BBHH", SEI_CONTENT_LIGHT_LEVEL, 4, level.max_cll, level.max_fall)


def needs_emulation_prevention(level: ContentLightLevel) -> bool:
    """Whether the message's bytes contain ``00 00 0x`` (x <= 3), with the byte after it (0x80, rbsp_trailing_bits,
    or the next message's payloadType, never <= 3) included."""
    data = sei_message(level)[1:] + b"\x80"
    return any(data[i] == 0 and data[i + 1] == 0 and data[i + 2] <= 3 for i in range(len(data) - 2))


def writable(level: ContentLightLevel) -> ContentLightLevel:
    """``level``, with MaxCLL raised by 1 cd/m^2 where its message would need an emulation prevention byte."""
    if not (0 <= level.max_cll <= 0xFFF0 and 0 <= level.max_fall <= 0xFFFF):
        raise ValueError(f"content light level out of range: {level}")
    while needs_emulation_prevention(level):
        level = ContentLightLevel(level.max_cll + 1, level.max_fall)
    return level


def info_text(level: ContentLightLevel) -> bytes:
    """The ``cll=MaxCLL,MaxFALL`` field of libx265's encoder information SEI (user_data_unregistered: its
    version and options as text), padded with spaces to the placeholder's width."""
    return f" cll={level.max_cll},{level.max_fall}".ljust(len(" cll=65535,65535")).encode("ascii")


def replacements(measured: ContentLightLevel) -> list[tuple[bytes, bytes]]:
    """(placeholder bytes, measured bytes) of the same length: the SEI message, the encoder information text."""
    return [(sei_message(PLACEHOLDER), sei_message(measured)), (info_text(PLACEHOLDER), info_text(measured))]


class PlaceholderCount:
    """Copies of the placeholder (SEI message, information text) the encoder handed out: in its packets and in
    its extradata (which a muxer stores in a header, or not at all)."""

    def __init__(self) -> None:
        patterns = [old for old, _ in replacements(PLACEHOLDER)]
        self._patterns = patterns
        self.packets = [0] * len(patterns)
        self.extradata = [0] * len(patterns)

    def add_packet(self, data: bytes) -> None:
        for k, pattern in enumerate(self._patterns):
            self.packets[k] += data.count(pattern)

    def add_extradata(self, data: bytes) -> None:
        for k, pattern in enumerate(self._patterns):
            self.extradata[k] += data.count(pattern)


def find_all(path: str | os.PathLike[str], patterns: list[bytes]) -> list[list[int]]:
    """File offsets of every copy of each of ``patterns`` in ``path``: one sequential pass over the file, mapped
    (no copies), window by window, every pattern searched in a window while it is in the cache."""
    found: list[list[int]] = [[] for _ in patterns]
    size = os.path.getsize(path)
    if size == 0:
        return found
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        if hasattr(mapped, "madvise"):
            mapped.madvise(mmap.MADV_SEQUENTIAL)
        for start in range(0, size, _CHUNK):
            for hits, pattern in zip(found, patterns, strict=True):
                end = min(size, start + _CHUNK + len(pattern) - 1)  # copies starting in this window
                i = mapped.find(pattern, start, end)
                while i >= 0:
                    hits.append(i)
                    i = mapped.find(pattern, i + 1, end)
    return found


def rewrite_light_level(path: str | os.PathLike[str], measured: ContentLightLevel, count: PlaceholderCount) -> int:
    """Overwrite every copy of the :data:`PLACEHOLDER` in ``path`` with ``measured`` (see :func:`writable`);
    returns the number of copies. Raises :class:`DatakitError`, changing nothing, unless the file holds, of each
    kind, at least as many copies as ``count``'s packets and at most that plus ``count``'s extradata."""
    if needs_emulation_prevention(measured):
        raise ValueError(f"{measured} needs an emulation prevention byte: pass it through writable() first")
    pairs = replacements(measured)
    offsets = find_all(path, [old for old, _ in pairs])
    for hits, low, extra in zip(offsets, count.packets, count.extradata, strict=True):
        if not low <= len(hits) <= low + extra:
            raise DatakitError(
                f"{path}: {len(hits)} copies of the placeholder content light level in the file, expected "
                f"{low}..{low + extra}; MaxCLL/MaxFALL not written (pass light_level to the writer)"
            )
    with open(path, "r+b") as f:
        for hits, (_, new) in zip(offsets, pairs, strict=True):
            for offset in hits:
                f.seek(offset)
                f.write(new)
    return sum(len(hits) for hits in offsets)
