"""Colour maths named after its standards, for numpy arrays and torch tensors.

- :mod:`datakit.color.transfer`: SMPTE ST 2084 (PQ), BT.2100 HLG, BT.1886, BT.709, sRGB, gamma.
- :mod:`datakit.color.gamut`: primaries, RGB <-> XYZ (SMPTE RP 177), BT.709 <-> BT.2020 <-> P3.
- :mod:`datakit.color.ycbcr`: Y'CbCr <-> R'G'B', code values, ranges, chroma siting.
- :mod:`datakit.color.ictcp`: ICtCp (BT.2100 PQ) and Delta E_ITP (BT.2124).

Every public function of the four modules is re-exported here.
"""

from __future__ import annotations

import types

from datakit.color import gamut, ictcp, transfer, ycbcr
from datakit.color.gamut import (
    BT709_TO_BT2020,
    BT2020_TO_BT709,
    PRIMARIES,
    Primaries,
    apply_rgb_matrix,
    bradford_adaptation_matrix,
    convert_gamut,
    fraction_outside_gamut,
    get_primaries,
    luminance_weights,
    rgb_to_rgb_matrix,
    rgb_to_xyz_matrix,
    xyz_to_rgb_matrix,
)
from datakit.color.ictcp import (
    ICTCP_TO_LMS_P,
    LMS_P_TO_ICTCP,
    LMS_TO_RGB,
    RGB_TO_LMS,
    delta_e_itp,
    delta_e_itp_from_pq,
    ictcp_to_rgb,
    rgb_to_ictcp,
)
from datakit.color.transfer import (
    HLG_REFERENCE_PEAK_NITS,
    PQ_PEAK_NITS,
    SDR_PEAK_NITS,
    SDR_REFERENCE_WHITE_NITS,
    bt709_inverse_oetf,
    bt709_oetf,
    bt1886_eotf,
    bt1886_inverse_eotf,
    gamma_eotf,
    gamma_inverse_eotf,
    hlg_eotf,
    hlg_inverse_eotf,
    hlg_inverse_oetf,
    hlg_oetf,
    hlg_system_gamma,
    srgb_eotf,
    srgb_inverse_eotf,
    st2084_eotf,
    st2084_inverse_eotf,
)


def _public_names(module: types.ModuleType) -> list[str]:
    """``module.__all__`` if it has one, else the public names it defines itself (not imports)."""
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    own = []
    for name, value in vars(module).items():
        if name.startswith("_") or isinstance(value, types.ModuleType):
            continue
        if getattr(value, "__module__", module.__name__) == module.__name__:
            own.append(name)
    return own


# ycbcr.py is maintained separately; its public API is re-exported as it defines it.
_YCBCR_NAMES = _public_names(ycbcr)
globals().update({name: getattr(ycbcr, name) for name in _YCBCR_NAMES})

__all__ = [
    "BT709_TO_BT2020",
    "BT2020_TO_BT709",
    "HLG_REFERENCE_PEAK_NITS",
    "ICTCP_TO_LMS_P",
    "LMS_P_TO_ICTCP",
    "LMS_TO_RGB",
    "PQ_PEAK_NITS",
    "PRIMARIES",
    "RGB_TO_LMS",
    "SDR_PEAK_NITS",
    "SDR_REFERENCE_WHITE_NITS",
    "Primaries",
    "apply_rgb_matrix",
    "bradford_adaptation_matrix",
    "bt709_inverse_oetf",
    "bt709_oetf",
    "bt1886_eotf",
    "bt1886_inverse_eotf",
    "convert_gamut",
    "delta_e_itp",
    "delta_e_itp_from_pq",
    "fraction_outside_gamut",
    "gamma_eotf",
    "gamma_inverse_eotf",
    "gamut",
    "get_primaries",
    "hlg_eotf",
    "hlg_inverse_eotf",
    "hlg_inverse_oetf",
    "hlg_oetf",
    "hlg_system_gamma",
    "ictcp",
    "ictcp_to_rgb",
    "luminance_weights",
    "rgb_to_ictcp",
    "rgb_to_rgb_matrix",
    "rgb_to_xyz_matrix",
    "srgb_eotf",
    "srgb_inverse_eotf",
    "st2084_eotf",
    "st2084_inverse_eotf",
    "transfer",
    "xyz_to_rgb_matrix",
    "ycbcr",
]
__all__ += _YCBCR_NAMES
