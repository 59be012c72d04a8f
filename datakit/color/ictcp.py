"""ICtCp (ITU-R BT.2100, PQ method) and the Delta E_ITP colour difference (ITU-R BT.2124).

``rgb_to_ictcp`` follows ITU-R BT.2100 Table 6/7: linear BT.2020 RGB in absolute cd/m^2 -> LMS
(crosstalk matrix / 4096) -> SMPTE ST 2084 inverse EOTF -> ICtCp (matrix / 4096). ``delta_e_itp``
is ITU-R BT.2124: ``720 * sqrt(dI^2 + (0.5 dCt)^2 + dCp^2)`` (T = 0.5 Ct, P = Cp).
numpy (float32 preserved) and torch (dtype, device and gradients preserved) inputs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from datakit.color._backend import (
    Work,
    apply_matrix,
    check_last_axis,
    finish,
    is_tensor,
    ns,
    prepare,
    safe_sqrt,
    to_python_float,
)
from datakit.color.transfer import st2084_eotf, st2084_inverse_eotf
from datakit.errors import InputError

if TYPE_CHECKING:
    from datakit.color._backend import ArrayIn, ArrayOut

__all__ = [
    "ICTCP_TO_LMS_P",
    "LMS_P_TO_ICTCP",
    "LMS_TO_RGB",
    "RGB_TO_LMS",
    "delta_e_itp",
    "delta_e_itp_from_pq",
    "ictcp_to_rgb",
    "rgb_to_ictcp",
]


def _readonly(m: np.ndarray) -> np.ndarray:
    m.setflags(write=False)
    return m


# ITU-R BT.2100, Table 6: linear BT.2020 RGB -> LMS (integer coefficients / 4096).
RGB_TO_LMS: np.ndarray = _readonly(
    np.array([[1688, 2146, 262], [683, 2951, 462], [99, 309, 3688]], dtype=np.float64) / 4096.0
)
# ITU-R BT.2100, Table 7 (PQ): L'M'S' -> ICtCp (integer coefficients / 4096).
LMS_P_TO_ICTCP: np.ndarray = _readonly(
    np.array([[2048, 2048, 0], [6610, -13613, 7003], [17933, -17390, -543]], dtype=np.float64) / 4096.0
)
LMS_TO_RGB: np.ndarray = _readonly(np.linalg.inv(RGB_TO_LMS))
ICTCP_TO_LMS_P: np.ndarray = _readonly(np.linalg.inv(LMS_P_TO_ICTCP))


def rgb_to_ictcp(rgb_nits: ArrayIn) -> ArrayOut:
    """ITU-R BT.2100 ICtCp, PQ method: linear BT.2020 RGB in absolute cd/m^2 -> ICtCp.

    Input: ``rgb_nits`` shape (..., 3), BT.2020 primaries, absolute luminance (0..10000 cd/m^2).
    Output: (I, Ct, Cp) shape (..., 3); I in [0, 1] (PQ-like intensity), Ct/Cp about [-0.5, 0.5].
    LMS components below 0 (RGB outside the BT.2020 gamut) are clipped to 0 by the PQ inverse
    EOTF; NaN propagates.
    """
    x, work = prepare(rgb_nits)
    check_last_axis(x, "rgb_to_ictcp")
    lms_p = st2084_inverse_eotf(apply_matrix(x, RGB_TO_LMS))
    return finish(apply_matrix(lms_p, LMS_P_TO_ICTCP), work)


def ictcp_to_rgb(ictcp: ArrayIn) -> ArrayOut:
    """Inverse of :func:`rgb_to_ictcp` (ITU-R BT.2100 PQ): ICtCp -> linear BT.2020 RGB in cd/m^2.

    Input: (I, Ct, Cp) shape (..., 3). Output: ``rgb_nits`` shape (..., 3). L'M'S' values below 0
    are clipped to 0 (zero light) by the PQ EOTF; NaN propagates.
    """
    x, work = prepare(ictcp)
    check_last_axis(x, "ictcp_to_rgb")
    lms = st2084_eotf(apply_matrix(x, ICTCP_TO_LMS_P))
    return finish(apply_matrix(lms, LMS_TO_RGB), work)


def delta_e_itp(ictcp_a: ArrayIn, ictcp_b: ArrayIn) -> ArrayOut:
    """Per-pixel ITU-R BT.2124 Delta E_ITP between two ICtCp arrays.

    Inputs: (I, Ct, Cp) arrays shaped (..., 3) (broadcastable; a numpy array paired with a tensor
    is moved to the tensor's dtype and device). Output: shape (...), ``720 * sqrt(dI^2 +
    (0.5 dCt)^2 + dCp^2)``; 1.0 is about one just-noticeable difference. The torch gradient is
    finite where the two inputs are equal (0 there).
    """
    if is_tensor(ictcp_a) and not is_tensor(ictcp_b):
        ictcp_b = _as_tensor_like(ictcp_b, ictcp_a)
    elif is_tensor(ictcp_b) and not is_tensor(ictcp_a):
        ictcp_a = _as_tensor_like(ictcp_a, ictcp_b)
    a, work_a = prepare(ictcp_a)
    b, work_b = prepare(ictcp_b)
    check_last_axis(a, "delta_e_itp")
    check_last_axis(b, "delta_e_itp")
    d = a - b
    sq = d[..., 0] ** 2 + (0.5 * d[..., 1]) ** 2 + d[..., 2] ** 2
    out = 720.0 * safe_sqrt(sq)
    if work_a.out_dtype is None:
        return out
    return finish(out, Work(np.promote_types(work_a.out_dtype, work_b.out_dtype)))


def _as_tensor_like(x: ArrayIn, like: ArrayOut) -> ArrayOut:
    torch = ns(like)
    return torch.as_tensor(np.asarray(x), dtype=like.dtype, device=like.device)


def delta_e_itp_from_pq(rgb_pq_a: ArrayIn, rgb_pq_b: ArrayIn) -> float:
    """Mean ITU-R BT.2124 Delta E_ITP of two PQ images, as HDR TV papers report it.

    Inputs: ``rgb_pq`` arrays of the same shape (..., 3): SMPTE ST 2084 BT.2020 R'G'B' code values
    in [0, 1] (e.g. uint16 PNG / 65535). Each is decoded with the PQ EOTF to absolute cd/m^2,
    converted with :func:`rgb_to_ictcp`, compared per pixel with :func:`delta_e_itp`, and the
    mean over all pixels is returned. numpy input is evaluated in float64; torch input in its own
    dtype (mean accumulated in float64). NaN anywhere gives NaN.
    """
    a_shape = tuple(np.shape(rgb_pq_a)) if not is_tensor(rgb_pq_a) else tuple(rgb_pq_a.shape)
    b_shape = tuple(np.shape(rgb_pq_b)) if not is_tensor(rgb_pq_b) else tuple(rgb_pq_b.shape)
    if a_shape != b_shape:
        raise InputError(f"delta_e_itp_from_pq: image shapes differ: {a_shape} vs {b_shape}")
    if is_tensor(rgb_pq_a) or is_tensor(rgb_pq_b):
        a, _ = prepare(rgb_pq_a if is_tensor(rgb_pq_a) else _as_tensor_like(rgb_pq_a, rgb_pq_b))
        b, _ = prepare(rgb_pq_b if is_tensor(rgb_pq_b) else _as_tensor_like(rgb_pq_b, a))
    else:
        a = np.asarray(rgb_pq_a, dtype=np.float64)
        b = np.asarray(rgb_pq_b, dtype=np.float64)
    check_last_axis(a, "delta_e_itp_from_pq")
    if math.prod(a_shape) == 0:
        raise InputError("delta_e_itp_from_pq: empty images")
    de = delta_e_itp(rgb_to_ictcp(st2084_eotf(a)), rgb_to_ictcp(st2084_eotf(b)))
    if is_tensor(de):
        return to_python_float(de.detach().double().mean())
    return float(np.mean(de, dtype=np.float64))
