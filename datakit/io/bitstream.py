"""Read ``chroma_sample_loc_type`` from H.264 / HEVC sequence parameter sets (AV1: ``chroma_sample_position`` from
its configuration record), and find HDR10 static metadata in the bitstream (SEI messages, AV1 metadata OBUs).

PyAV does not expose ffmpeg's ``chroma_sample_location``, so :func:`chroma_location` parses the
SPS (ITU-T H.264 section 7.3.2.1 / ITU-T H.265 section 7.3.2.2) up to the VUI
``chroma_loc_info`` (Annex E). The SPS comes from the container's decoder configuration record
(``avcC`` / ``hvcC`` extradata) or from the first packet of an Annex B stream.
"""

from __future__ import annotations

from collections.abc import Iterator

from datakit.io.metadata import CHROMA_LOCATION_NAMES


class _Bits:
    """MSB-first bit reader with Exp-Golomb codes over an RBSP (emulation prevention removed)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def u(self, n: int) -> int:
        value = 0
        for _ in range(n):
            byte = self.data[self.pos >> 3]  # IndexError past the end: caught by the caller
            value = (value << 1) | ((byte >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def flag(self) -> bool:
        return bool(self.u(1))

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad Exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


def _rbsp(nal: bytes) -> bytes:
    """Remove emulation prevention bytes (0x000003 -> 0x0000)."""
    out = bytearray()
    zeros = 0
    for b in nal:
        if zeros >= 2 and b == 3:
            zeros = 0
            continue
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def _annexb_nals(data: bytes) -> Iterator[bytes]:
    """NAL units of an Annex B byte stream (start codes 0x000001 / 0x00000001)."""
    starts = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        starts.append(i + 3)
        i = data.find(b"\x00\x00\x01", i + 3)
    for k, s in enumerate(starts):
        end = starts[k + 1] - 3 if k + 1 < len(starts) else len(data)
        yield data[s:end].rstrip(b"\x00")


def _length_prefixed_nals(data: bytes, size: int = 4) -> Iterator[bytes]:
    pos = 0
    while pos + size <= len(data):
        n = int.from_bytes(data[pos : pos + size], "big")
        pos += size
        yield data[pos : pos + n]
        pos += n


def _hevc_sps_nals(
    extradata: bytes | None, packet: bytes | None, types: frozenset[int] = frozenset({33})
) -> Iterator[bytes]:
    if extradata and len(extradata) > 23 and extradata[0] == 1:  # hvcC (ISO/IEC 14496-15 8.3.3)
        pos, num_arrays = 23, extradata[22]
        for _ in range(num_arrays):
            nal_type = extradata[pos] & 0x3F
            count = int.from_bytes(extradata[pos + 1 : pos + 3], "big")
            pos += 3
            for _ in range(count):
                n = int.from_bytes(extradata[pos : pos + 2], "big")
                if nal_type in types:
                    yield extradata[pos + 2 : pos + 2 + n]
                pos += 2 + n
    for data in (extradata, packet):
        if data and (data.startswith(b"\x00\x00\x01") or data.startswith(b"\x00\x00\x00\x01")):
            for nal in _annexb_nals(data):
                if nal and (nal[0] >> 1) & 0x3F in types:
                    yield nal
    if packet and not packet.startswith(b"\x00\x00\x01") and not packet.startswith(b"\x00\x00\x00\x01"):
        for nal in _length_prefixed_nals(packet):
            if nal and (nal[0] >> 1) & 0x3F in types:
                yield nal


def _h264_sps_nals(
    extradata: bytes | None, packet: bytes | None, types: frozenset[int] = frozenset({7})
) -> Iterator[bytes]:
    if extradata and len(extradata) > 7 and extradata[0] == 1:  # avcC (ISO/IEC 14496-15 5.3.3)
        count, pos = extradata[5] & 0x1F, 6
        for _ in range(count):
            n = int.from_bytes(extradata[pos : pos + 2], "big")
            if 7 in types:
                yield extradata[pos + 2 : pos + 2 + n]
            pos += 2 + n
    for data in (extradata, packet):
        if data and (data.startswith(b"\x00\x00\x01") or data.startswith(b"\x00\x00\x00\x01")):
            for nal in _annexb_nals(data):
                if nal and nal[0] & 0x1F in types:
                    yield nal
    if packet and not packet.startswith(b"\x00\x00\x01") and not packet.startswith(b"\x00\x00\x00\x01"):
        for nal in _length_prefixed_nals(packet):
            if nal and nal[0] & 0x1F in types:
                yield nal


def _vui_chroma_loc(r: _Bits) -> int | None:
    """Common start of the H.264 / HEVC VUI up to chroma_loc_info; returns the top-field type."""
    if r.flag() and r.u(8) == 255:  # aspect_ratio_info_present_flag, aspect_ratio_idc == Extended_SAR
        r.u(32)
    if r.flag():  # overscan_info_present_flag
        r.u(1)
    if r.flag():  # video_signal_type_present_flag
        r.u(4)  # video_format, video_full_range_flag
        if r.flag():  # colour_description_present_flag
            r.u(24)
    if r.flag():  # chroma_loc_info_present_flag
        top = r.ue()
        r.ue()
        return top
    return None


def _hevc_profile_tier_level(r: _Bits, max_sub_layers_minus1: int) -> None:
    r.u(96)  # general profile/tier/level: 2+1+5+32+4+43+1+8 bits
    flags = [(r.flag(), r.flag()) for _ in range(max_sub_layers_minus1)]
    if max_sub_layers_minus1 > 0:
        r.u(2 * (8 - max_sub_layers_minus1))
    for profile_present, level_present in flags:
        if profile_present:
            r.u(88)
        if level_present:
            r.u(8)


def _hevc_chroma_loc(nal: bytes) -> int | None:
    r = _Bits(_rbsp(nal[2:]))
    r.u(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = r.u(3)
    r.u(1)
    _hevc_profile_tier_level(r, max_sub_layers_minus1)
    r.ue()  # sps_seq_parameter_set_id
    if r.ue() == 3:  # chroma_format_idc
        r.u(1)
    r.ue()
    r.ue()  # pic width / height
    if r.flag():  # conformance_window_flag
        for _ in range(4):
            r.ue()
    r.ue()
    r.ue()  # bit depths
    log2_max_poc_lsb = r.ue() + 4
    ordering_all = r.flag()
    for _ in range(0 if ordering_all else max_sub_layers_minus1, max_sub_layers_minus1 + 1):
        r.ue()
        r.ue()
        r.ue()
    for _ in range(6):  # coding / transform block sizes, hierarchy depths
        r.ue()
    if r.flag() and r.flag():  # scaling_list_enabled_flag, sps_scaling_list_data_present_flag
        for size_id in range(4):
            for _ in range(0, 6, 3 if size_id == 3 else 1):
                if not r.flag():  # scaling_list_pred_mode_flag
                    r.ue()
                else:
                    coef_num = min(64, 1 << (4 + (size_id << 1)))
                    if size_id > 1:
                        r.se()
                    for _ in range(coef_num):
                        r.se()
    r.u(2)  # amp, sample_adaptive_offset
    if r.flag():  # pcm_enabled_flag
        r.u(8)
        r.ue()
        r.ue()
        r.u(1)
    num_sets = r.ue()
    num_delta_pocs: list[int] = []
    for idx in range(num_sets):  # st_ref_pic_set(idx), H.265 7.3.7
        if idx != 0 and r.flag():  # inter_ref_pic_set_prediction_flag
            r.u(1)
            r.ue()  # delta_rps_sign, abs_delta_rps_minus1
            count = 0
            for _ in range(num_delta_pocs[idx - 1] + 1):
                used = r.flag()
                use_delta = True if used else r.flag()
                count += used or use_delta
            num_delta_pocs.append(count)
        else:
            negative, positive = r.ue(), r.ue()
            for _ in range(negative + positive):
                r.ue()
                r.u(1)
            num_delta_pocs.append(negative + positive)
    if r.flag():  # long_term_ref_pics_present_flag
        for _ in range(r.ue()):
            r.u(log2_max_poc_lsb)
            r.u(1)
    r.u(2)  # sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag
    if not r.flag():  # vui_parameters_present_flag
        return None
    return _vui_chroma_loc(r)


_H264_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


def _h264_chroma_loc(nal: bytes) -> int | None:
    r = _Bits(_rbsp(nal[1:]))
    profile_idc = r.u(8)
    r.u(16)  # constraint flags, level_idc
    r.ue()  # seq_parameter_set_id
    if profile_idc in _H264_HIGH_PROFILES:
        chroma_format_idc = r.ue()
        if chroma_format_idc == 3:
            r.u(1)
        r.ue()
        r.ue()
        r.u(1)
        if r.flag():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if r.flag():
                    last, nxt = 8, 8
                    for _ in range(16 if i < 6 else 64):
                        if nxt != 0:
                            nxt = (last + r.se() + 256) % 256
                        last = nxt if nxt != 0 else last
    r.ue()  # log2_max_frame_num_minus4
    poc_type = r.ue()
    if poc_type == 0:
        r.ue()
    elif poc_type == 1:
        r.u(1)
        r.se()
        r.se()
        for _ in range(r.ue()):
            r.se()
    r.ue()
    r.u(1)
    r.ue()
    r.ue()
    if not r.flag():  # frame_mbs_only_flag
        r.u(1)
    r.u(1)
    if r.flag():  # frame_cropping_flag
        for _ in range(4):
            r.ue()
    if not r.flag():  # vui_parameters_present_flag
        return None
    return _vui_chroma_loc(r)


_AV1_DECODERS = ("libdav1d", "av1", "libaom-av1")
# AV1 chroma_sample_position (AV1 specification 6.4.2) -> ffmpeg AVChromaLocation name; 0 (unknown) is None.
_AV1_CHROMA_POSITIONS = {1: "left", 2: "topleft"}  # CSP_VERTICAL, CSP_COLOCATED


def _av1_chroma_location(extradata: bytes | None) -> str | None:
    """chroma_sample_position from the AV1CodecConfigurationRecord (``av1C``, MP4 and Matroska's CodecPrivate):
    marker and version 1 in the first byte, the sequence header's colour fields in the third."""
    if not extradata or len(extradata) < 4 or extradata[0] != 0x81:
        return None
    return _AV1_CHROMA_POSITIONS.get(extradata[2] & 0x3)


def chroma_location(codec: str, extradata: bytes | None, packet: bytes | None = None) -> str | None:
    """Signalled chroma sample location (``left``, ``center``, ``topleft``...) or ``None``.

    ``codec`` is ffmpeg's decoder name (``hevc``, ``h264``, or an AV1 decoder; others give ``None``). ``None``
    also means "not signalled" (H.264/HEVC then infer type 0, ``left``) or an SPS that failed to parse.
    """
    if codec in _AV1_DECODERS:
        return _av1_chroma_location(extradata)
    if codec == "hevc":
        nals, parse = _hevc_sps_nals(extradata, packet), _hevc_chroma_loc
    elif codec == "h264":
        nals, parse = _h264_sps_nals(extradata, packet), _h264_chroma_loc
    else:
        return None
    try:
        for nal in nals:
            loc = parse(nal)
            return CHROMA_LOCATION_NAMES.get(loc) if loc is not None else None
    except (IndexError, ValueError):
        return None
    return None


# SEI payloadType of SMPTE ST 2086 mastering display colour volume and CTA-861.3 content light level
# (ITU-T H.265 / H.264 Annex D: mastering_display_colour_volume 137, content_light_level_info 144).
_SEI_HDR_PAYLOADS = frozenset({137, 144})
# AV1 metadata_type of the same (AV1 bitstream specification 6.7.1: METADATA_TYPE_HDR_CLL 1, HDR_MDCV 2).
_AV1_HDR_METADATA = frozenset({1, 2})


def _sei_payload_types(rbsp: bytes) -> Iterator[int]:
    pos = 0
    while pos + 2 <= len(rbsp) and rbsp[pos] != 0x80:  # rbsp_trailing_bits
        kind = 0
        while rbsp[pos] == 0xFF:
            kind += 255
            pos += 1
        kind += rbsp[pos]
        pos += 1
        size = 0
        while rbsp[pos] == 0xFF:
            size += 255
            pos += 1
        size += rbsp[pos]
        pos += 1 + size
        yield kind


def _leb128(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for i in range(8):
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos + i + 1
    raise ValueError("bad leb128")


def _av1_metadata_types(data: bytes) -> Iterator[int]:
    """metadata_type of each metadata OBU (obu_type 5) in a low-overhead AV1 bitstream (sized OBUs)."""
    pos = 0
    while pos < len(data):
        header = data[pos]
        obu_type, has_extension, has_size = (header >> 3) & 0xF, header & 4, header & 2
        pos += 2 if has_extension else 1
        if not has_size:
            size = len(data) - pos
        else:
            size, pos = _leb128(data, pos)
        if obu_type == 5:
            yield _leb128(data, pos)[0]
        pos += size


def hdr_metadata_in_bitstream(codec: str, extradata: bytes | None, packet: bytes | None) -> bool:
    """Whether the decoder configuration or first packet carries HDR10 static metadata in the bitstream itself:
    an ST 2086 / CTA-861.3 SEI message (HEVC prefix SEI NAL 39, H.264 SEI NAL 6) or AV1 metadata OBU. VP9 has no
    such syntax (its container carries the metadata). ``codec`` is ffmpeg's decoder name."""
    try:
        if codec == "hevc":
            nals = _hevc_sps_nals(extradata, packet, frozenset({39}))
            return any(_SEI_HDR_PAYLOADS.intersection(_sei_payload_types(_rbsp(nal[2:]))) for nal in nals)
        if codec == "h264":
            nals = _h264_sps_nals(extradata, packet, frozenset({6}))
            return any(_SEI_HDR_PAYLOADS.intersection(_sei_payload_types(_rbsp(nal[1:]))) for nal in nals)
        if codec in _AV1_DECODERS:
            config_obus = extradata[4:] if extradata and len(extradata) > 4 and extradata[0] & 0x80 else b""
            return any(
                _AV1_HDR_METADATA.intersection(_av1_metadata_types(data)) for data in (config_obus, packet) if data
            )
    except (IndexError, ValueError):
        return False
    return False
