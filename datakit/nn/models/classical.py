"""Classical (non-learned) SDR-to-HDR10 conversion, as an ``nn.Module`` so that eval/convert treat it
like the learned models. It has no trainable parameters.

Input ``rgb_sdr`` (BT.709 R'G'B' signal, [0, 1]) ``(B, 3, H, W)``; output ``rgb_pq`` (SMPTE ST 2084
PQ BT.2020 R'G'B' code values) ``(B, 3, H, W)``.

Default ("display-light" mapping of ITU-R BT.2408):

1. decode the SDR signal with the ITU-R BT.1886 EOTF (gamma 2.4, zero black level) to relative
   linear light, 1.0 at SDR white;
2. convert BT.709 primaries to BT.2020 primaries (ITU-R BT.2087 matrix, linear light);
3. scale so that SDR reference white is ``reference_white_nits`` = 203 cd/m^2 (BT.2408 HDR
   reference white);
4. encode with the ST 2084 inverse EOTF.

SDR white (1, 1, 1) becomes 203 cd/m^2 (PQ ~0.58), black 0 cd/m^2 (PQ ~7e-7): the picture looks
as it did on an SDR display, and nothing exceeds 203 cd/m^2.

``highlight_expansion=True`` adds a simple inverse tone mapping (our own, not a standard): light
below ``knee_nits`` is kept, and above it the max-RGB component ``m`` is remapped with
``f(m) = m + a (m - knee)^2``, ``a = (peak - white) / (white - knee)^2``. ``f`` is continuous with
slope 1 at the knee (no visible kink), increasing, and sends SDR white to ``peak_nits``. The RGB
triplet is scaled by ``f(m) / m``, which keeps chromaticity (and hue) and never lifts a component
above ``peak_nits``.
"""

from __future__ import annotations

import torch
from torch import nn

from datakit.color.gamut import convert_gamut
from datakit.color.transfer import SDR_REFERENCE_WHITE_NITS, bt1886_eotf, st2084_inverse_eotf
from datakit.nn.registry import register_model

__all__ = ["Classical", "ResidualBase", "zero_init_"]


@register_model(
    "classical",
    paper_params=None,
    frames=1,
    description="BT.1886 decode, BT.709->BT.2020, SDR white at 203 nits (BT.2408), PQ; optional expansion",
)
class Classical(nn.Module):
    """Fixed SDR-to-HDR10 conversion: ``rgb_sdr (B,3,H,W) -> rgb_pq (B,3,H,W)``."""

    frames = 1
    output_frames = 1

    def __init__(
        self,
        highlight_expansion: bool = False,
        *,
        reference_white_nits: float = SDR_REFERENCE_WHITE_NITS,
        peak_nits: float = 1000.0,
        knee_nits: float = 100.0,
    ) -> None:
        super().__init__()
        if not reference_white_nits > 0:
            raise ValueError("reference_white_nits must be > 0")
        if highlight_expansion and not 0 < knee_nits < reference_white_nits < peak_nits <= 10000:
            raise ValueError("need 0 < knee_nits < reference_white_nits < peak_nits <= 10000")
        self.highlight_expansion = highlight_expansion
        self.reference_white_nits = float(reference_white_nits)
        self.peak_nits = float(peak_nits)
        self.knee_nits = float(knee_nits)

    def extra_repr(self) -> str:
        s = f"reference_white_nits={self.reference_white_nits}"
        if self.highlight_expansion:
            s += f", highlight_expansion=True, knee_nits={self.knee_nits}, peak_nits={self.peak_nits}"
        return s

    def expand(self, rgb_nits: torch.Tensor) -> torch.Tensor:
        """Highlight expansion of ``rgb_nits`` (BT.2020, channels last, ``(..., 3)``), see module doc."""
        knee, white, peak = self.knee_nits, self.reference_white_nits, self.peak_nits
        a = (peak - white) / (white - knee) ** 2
        m = rgb_nits.amax(dim=-1, keepdim=True)
        over = (m - knee).clamp(min=0.0)
        gain = torch.where(m > knee, (m + a * over * over) / m.clamp(min=knee), torch.ones_like(m))
        return rgb_nits * gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W), got {tuple(x.shape)}")
        rgb = x.permute(0, 2, 3, 1)  # channels last for datakit.color
        rgb_linear = bt1886_eotf(rgb, white_nits=1.0)  # relative, 1.0 = SDR white, BT.709
        rgb_nits = convert_gamut(rgb_linear, "bt709", "bt2020") * self.reference_white_nits
        if self.highlight_expansion:
            rgb_nits = self.expand(rgb_nits)
        return st2084_inverse_eotf(rgb_nits).permute(0, 3, 1, 2).contiguous()


def zero_init_(*modules: nn.Module) -> None:
    """Set every parameter of ``modules`` to zero (the last layers of a residual correction: :class:`ResidualBase`)."""
    for module in modules:
        for param in module.parameters():
            nn.init.zeros_(param)


class ResidualBase(nn.Module):
    """The classical mapping as the base of a learned model: ``forward(x, correction) = Classical()(x) + correction``.

    Our addition to the papers' architectures (option ``residual`` of ``agcm``, ``hdcfm``, ``kpnmfi``): the network
    predicts a correction in PQ code values on top of the BT.2408 display-light mapping, its last layer initialised at
    zero (:func:`zero_init_`), so an untrained model equals ``--model classical`` exactly and training only has to
    learn how the SDR operator departs from that mapping. No parameters (the checkpoint format is unchanged).
    ``x`` is ``rgb_sdr`` ``(B, 3, H, W)`` or ``(B, T, 3, H, W)``; ``correction`` has the output's shape.
    """

    def __init__(self) -> None:
        super().__init__()
        self.classical = Classical()

    def forward(self, x: torch.Tensor, correction: torch.Tensor) -> torch.Tensor:
        if x.dim() == 5:
            base = self.classical(x.flatten(0, 1)).view_as(x)
            if correction.dim() == 4:  # one output frame: the centre one
                base = base[:, x.shape[1] // 2]
        else:
            base = self.classical(x)
        return base + correction
