"""Colour description tags and HDR10 static metadata (SMPTE ST 2086, CTA-861.3).

Tag names are ffmpeg's (``av_color_primaries_name`` etc., the ITU-T H.273 code points), except the
signal range which is spelled ``limited`` / ``full`` (ffmpeg's ``tv`` / ``pc``). ``None`` means
"not signalled" (ffmpeg's ``unknown`` / ``unspecified``).
"""

from __future__ import annotations

import struct
from dataclasses import asdict, dataclass
from typing import Any

# ITU-T H.273 ColourPrimaries -> ffmpeg name.
PRIMARIES_NAMES: dict[int, str] = {
    1: "bt709",
    4: "bt470m",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "film",
    9: "bt2020",
    10: "smpte428",
    11: "smpte431",
    12: "smpte432",
    22: "ebu3213",
}
# ITU-T H.273 TransferCharacteristics -> ffmpeg name.
TRANSFER_NAMES: dict[int, str] = {
    1: "bt709",
    4: "gamma22",
    5: "gamma28",
    6: "smpte170m",
    7: "smpte240m",
    8: "linear",
    9: "log100",
    10: "log316",
    11: "iec61966-2-4",
    12: "bt1361e",
    13: "iec61966-2-1",
    14: "bt2020-10",
    15: "bt2020-12",
    16: "smpte2084",
    17: "smpte428",
    18: "arib-std-b67",
}
# ITU-T H.273 MatrixCoefficients -> ffmpeg name.
MATRIX_NAMES: dict[int, str] = {
    0: "gbr",
    1: "bt709",
    4: "fcc",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "ycgco",
    9: "bt2020nc",
    10: "bt2020c",
    11: "smpte2085",
    12: "chroma-derived-nc",
    13: "chroma-derived-c",
    14: "ictcp",
}
# AVColorRange -> our names.
RANGE_NAMES: dict[int, str] = {1: "limited", 2: "full"}
# H.264/HEVC chroma_sample_loc_type -> ffmpeg AVChromaLocation name (= datakit.color.ycbcr sitings).
CHROMA_LOCATION_NAMES: dict[int, str] = {
    0: "left",
    1: "center",
    2: "topleft",
    3: "top",
    4: "bottomleft",
    5: "bottom",
}


def _code(table: dict[int, str], name: str, kind: str) -> int:
    for code, value in table.items():
        if value == name:
            return code
    raise ValueError(f"unknown {kind} name {name!r}")


def primaries_code(name: str) -> int:
    """H.273 ColourPrimaries code of an ffmpeg name (``bt2020`` -> 9)."""
    return _code(PRIMARIES_NAMES, name, "colour primaries")


def transfer_code(name: str) -> int:
    """H.273 TransferCharacteristics code of an ffmpeg name (``smpte2084`` -> 16)."""
    return _code(TRANSFER_NAMES, name, "transfer characteristics")


def matrix_code(name: str) -> int:
    """H.273 MatrixCoefficients code of an ffmpeg name (``bt2020nc`` -> 9)."""
    return _code(MATRIX_NAMES, name, "matrix coefficients")


def range_code(name: str) -> int:
    """AVColorRange code: ``limited`` -> 1 (MPEG/tv), ``full`` -> 2 (JPEG/pc)."""
    return _code(RANGE_NAMES, name, "signal range")


XY = tuple[float, float]


@dataclass(frozen=True)
class MasteringDisplay:
    """SMPTE ST 2086 mastering display colour volume: CIE 1931 xy primaries and white, luminance in cd/m^2."""

    red: XY
    green: XY
    blue: XY
    white_point: XY
    min_luminance: float
    max_luminance: float

    @classmethod
    def p3_d65(cls, max_luminance: float = 1000.0, min_luminance: float = 0.0001) -> MasteringDisplay:
        """P3-D65 primaries (SMPTE EG 432-1) with the given luminance range: the usual HDR10 grading display."""
        return cls((0.680, 0.320), (0.265, 0.690), (0.150, 0.060), (0.3127, 0.3290), min_luminance, max_luminance)

    @classmethod
    def bt2020(cls, max_luminance: float = 1000.0, min_luminance: float = 0.0001) -> MasteringDisplay:
        """BT.2020 primaries with D65 white (ITU-R BT.2020 Table 3)."""
        return cls((0.708, 0.292), (0.170, 0.797), (0.131, 0.046), (0.3127, 0.3290), min_luminance, max_luminance)

    def to_x265(self) -> str:
        """x265 ``master-display`` string: G, B, R, WP in 0.00002 units, L(max,min) in 0.0001 cd/m^2."""

        def xy(p: XY) -> str:
            return f"({round(p[0] / 0.00002)},{round(p[1] / 0.00002)})"

        lum = f"L({round(self.max_luminance / 0.0001)},{round(self.min_luminance / 0.0001)})"
        return f"G{xy(self.green)}B{xy(self.blue)}R{xy(self.red)}WP{xy(self.white_point)}{lum}"

    @classmethod
    def from_side_data(cls, raw: bytes) -> MasteringDisplay | None:
        """Parse ffmpeg's ``AVMasteringDisplayMetadata`` (frame side data ``MASTERING_DISPLAY_METADATA``).

        Layout: ``AVRational display_primaries[3][2]`` (R, G, B; x, y), ``white_point[2]``,
        ``min_luminance``, ``max_luminance`` (rationals: int32 num, int32 den), then ``int
        has_primaries, has_luminance``. Returns ``None`` when neither part is flagged present.
        """
        if len(raw) < 88:
            return None
        vals = struct.unpack_from("<20i2i", raw)
        rationals = [vals[2 * i] / vals[2 * i + 1] if vals[2 * i + 1] else 0.0 for i in range(10)]
        has_primaries, has_luminance = vals[20], vals[21]
        if not (has_primaries or has_luminance):
            return None
        r = (rationals[0], rationals[1])
        g = (rationals[2], rationals[3])
        b = (rationals[4], rationals[5])
        w = (rationals[6], rationals[7])
        return cls(r, g, b, w, rationals[8], rationals[9])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def describe(self) -> str:
        """Short human description, naming known primary sets."""
        names = {
            "P3-D65": MasteringDisplay.p3_d65(),
            "BT.2020": MasteringDisplay.bt2020(),
        }
        label = "custom primaries"
        for name, ref in names.items():
            pairs = zip(
                (self.red, self.green, self.blue, self.white_point),
                (ref.red, ref.green, ref.blue, ref.white_point),
                strict=True,
            )
            if all(abs(a[0] - b[0]) < 5e-4 and abs(a[1] - b[1]) < 5e-4 for a, b in pairs):
                label = name
        return f"{label}, {self.min_luminance:g}-{self.max_luminance:g} cd/m2"


@dataclass(frozen=True)
class ContentLightLevel:
    """CTA-861.3 content light level: MaxCLL and MaxFALL in cd/m^2 (integers)."""

    max_cll: int
    max_fall: int

    @classmethod
    def from_side_data(cls, raw: bytes) -> ContentLightLevel | None:
        """Parse ffmpeg's ``AVContentLightMetadata`` (two unsigned ints: MaxCLL, MaxFALL)."""
        if len(raw) < 8:
            return None
        max_cll, max_fall = struct.unpack_from("<2I", raw)
        return cls(int(max_cll), int(max_fall))

    def to_x265(self) -> str:
        """x265 ``max-cll`` value ``"MaxCLL,MaxFALL"``."""
        return f"{self.max_cll},{self.max_fall}"

    def to_dict(self) -> dict[str, int]:
        return asdict(self)
