"""Y'CbCr <-> R'G'B', integer code values, signal ranges and chroma siting.

Conventions (ITU-R BT.601, BT.709, BT.2020 non-constant luminance, BT.2100):

* ``rgb``: non-linear R'G'B' signal in [0, 1] (any transfer: PQ, BT.709, ...), shape ``(..., 3)``.
* ``ycbcr``: normalized Y' in [0, 1] and Cb/Cr in [-0.5, 0.5] (no range offsets), shape ``(..., 3)``.
* codes: integer code values, ``uint8`` for 8-bit and ``uint16`` for higher bit depths, limited
  ("narrow", BT.2100 Table 9) or full range as tagged.

Chroma siting names follow ffmpeg's ``AVChromaLocation`` / the ``chroma_sample_loc_type`` of
H.264/HEVC VUI (ITU-T H.273): ``left`` (type 0: co-sited with even luma columns, vertically
between two luma rows; MPEG-2 style, the default for BT.709 and BT.2020 video), ``center``
(type 1: MPEG-1/JPEG), ``topleft`` (type 2: co-sited both ways), ``top`` (3), ``bottomleft`` (4)
and ``bottom`` (5).

Functions accept numpy arrays; :func:`rgb_to_ycbcr` and :func:`ycbcr_to_rgb` also accept torch
tensors (computed on the tensor's device and dtype). :func:`upsample_chroma` /
:func:`downsample_chroma` are plain numpy; :class:`PlaneConverter` (behind :func:`planes_to_rgb`
and the video reader) does the same maths with OpenCV primitives for speed and is tested against
the numpy path.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

__all__ = [
    "CHROMA_SITING_OFFSETS",
    "MATRIX_COEFFICIENTS",
    "SUBSAMPLINGS",
    "PlaneConverter",
    "canonical_matrix",
    "code_scale",
    "codes_to_ycbcr",
    "downsample_chroma",
    "planes_to_rgb",
    "rgb_to_planes",
    "rgb_to_ycbcr",
    "rgb_to_ycbcr_matrix",
    "subsampled_shape",
    "upsample_chroma",
    "ycbcr_coefficients",
    "ycbcr_to_codes",
    "ycbcr_to_rgb",
    "ycbcr_to_rgb_matrix",
]

# Luma weights (Kr, Kb) of the non-constant-luminance Y'CbCr matrices.
MATRIX_COEFFICIENTS: dict[str, tuple[float, float]] = {
    "bt709": (0.2126, 0.0722),  # ITU-R BT.709-6 item 3.2
    "bt2020nc": (0.2627, 0.0593),  # ITU-R BT.2020-2 Table 4 / BT.2100-2 Table 6 (NCL)
    "bt601": (0.299, 0.114),  # ITU-R BT.601-7 item 2.5.1
}

# ffmpeg colour-space names that use one of the matrices above.
_MATRIX_ALIASES: dict[str, str] = {
    "bt709": "bt709",
    "bt2020nc": "bt2020nc",
    "bt2020": "bt2020nc",
    "bt601": "bt601",
    "bt470bg": "bt601",
    "smpte170m": "bt601",
}

# Chroma sample position in luma sample units, relative to the even luma sample: (horizontal, vertical).
CHROMA_SITING_OFFSETS: dict[str, tuple[float, float]] = {
    "left": (0.0, 0.5),
    "center": (0.5, 0.5),
    "topleft": (0.0, 0.0),
    "top": (0.5, 0.0),
    "bottomleft": (0.0, 1.0),
    "bottom": (0.5, 1.0),
}

SUBSAMPLINGS = ("420", "422", "444")


def ycbcr_coefficients(matrix: str) -> tuple[float, float]:
    """Return the luma weights ``(Kr, Kb)`` of ``matrix`` (``bt709``, ``bt2020nc``, ``bt601`` or an ffmpeg alias).

    Raises ``ValueError`` for constant-luminance (``bt2020c``) or unknown matrices.
    """
    key = _MATRIX_ALIASES.get(str(matrix).lower())
    if key is None:
        known = ", ".join(sorted(_MATRIX_ALIASES))
        raise ValueError(f"unsupported Y'CbCr matrix {matrix!r} (known: {known})")
    return MATRIX_COEFFICIENTS[key]


def canonical_matrix(matrix: str) -> str:
    """Return the key of :data:`MATRIX_COEFFICIENTS` that ``matrix`` (possibly an ffmpeg alias) names."""
    ycbcr_coefficients(matrix)
    return _MATRIX_ALIASES[str(matrix).lower()]


def rgb_to_ycbcr_matrix(matrix: str) -> np.ndarray:
    """3x3 float64 matrix M with ``ycbcr = M @ rgb`` (BT.709 eq. 3.2-3.4, BT.2020 Table 4 form)."""
    kr, kb = ycbcr_coefficients(matrix)
    kg = 1.0 - kr - kb
    return np.array(
        [
            [kr, kg, kb],
            [-kr / (2.0 * (1.0 - kb)), -kg / (2.0 * (1.0 - kb)), 0.5],
            [0.5, -kg / (2.0 * (1.0 - kr)), -kb / (2.0 * (1.0 - kr))],
        ],
        dtype=np.float64,
    )


def ycbcr_to_rgb_matrix(matrix: str) -> np.ndarray:
    """3x3 float64 matrix with ``rgb = M @ ycbcr`` (closed-form inverse of :func:`rgb_to_ycbcr_matrix`)."""
    kr, kb = ycbcr_coefficients(matrix)
    kg = 1.0 - kr - kb
    return np.array(
        [
            [1.0, 0.0, 2.0 * (1.0 - kr)],
            [1.0, -2.0 * kb * (1.0 - kb) / kg, -2.0 * kr * (1.0 - kr) / kg],
            [1.0, 2.0 * (1.0 - kb), 0.0],
        ],
        dtype=np.float64,
    )


def _is_torch(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _apply_matrix(x: Any, m: np.ndarray) -> Any:
    """``x @ m.T`` over the last axis, for numpy arrays (float32 kept, else float64) or torch tensors."""
    if _is_torch(x):
        import torch

        dtype = x.dtype if x.is_floating_point() else torch.float32
        mt = torch.as_tensor(m.T, dtype=dtype, device=x.device)
        return x.to(dtype) @ mt
    arr = np.asarray(x)
    dtype = np.float32 if arr.dtype == np.float32 else np.float64
    return arr.astype(dtype, copy=False) @ m.T.astype(dtype)


def rgb_to_ycbcr(rgb: Any, matrix: str) -> Any:
    """Non-linear R'G'B' ``(..., 3)`` in [0, 1] -> normalized ``ycbcr`` (Y' [0,1], Cb/Cr [-0.5,0.5]).

    ``matrix``: ``bt709`` (BT.709), ``bt2020nc`` (BT.2020/BT.2100 NCL) or ``bt601``.
    """
    return _apply_matrix(rgb, rgb_to_ycbcr_matrix(matrix))


def ycbcr_to_rgb(ycbcr: Any, matrix: str) -> Any:
    """Normalized ``ycbcr`` ``(..., 3)`` -> non-linear R'G'B' (not clipped), inverse of :func:`rgb_to_ycbcr`."""
    return _apply_matrix(ycbcr, ycbcr_to_rgb_matrix(matrix))


def _code_dtype(bit_depth: int) -> type[np.unsignedinteger]:
    if not 8 <= bit_depth <= 16:
        raise ValueError(f"bit depth must be in 8..16, got {bit_depth}")
    return np.uint8 if bit_depth == 8 else np.uint16


def code_scale(bit_depth: int, full_range: bool) -> tuple[float, float, float, float]:
    """Return ``(y_gain, y_offset, c_gain, c_offset)`` with ``code = gain * E + offset``.

    Limited range (BT.2100 Table 9, BT.709 item 6.10): ``D'Y = (219 E'Y + 16) 2^(n-8)``,
    ``D'C = (224 E'C + 128) 2^(n-8)``. Full range (BT.2100 Table 9): ``D'Y = (2^n - 1) E'Y``,
    ``D'C = (2^n - 1) E'C + 2^(n-1)``.
    """
    _code_dtype(bit_depth)
    if full_range:
        peak = float(2**bit_depth - 1)
        return peak, 0.0, peak, float(2 ** (bit_depth - 1))
    s = float(2 ** (bit_depth - 8))
    return 219.0 * s, 16.0 * s, 224.0 * s, 128.0 * s


def ycbcr_to_codes(ycbcr: np.ndarray, bit_depth: int, full_range: bool) -> np.ndarray:
    """Normalized ``ycbcr`` ``(..., 3)`` -> integer codes (uint8 for 8-bit, else uint16).

    Rounds with BT.2100's ``Round()`` (halves away from zero) and clips to ``[0, 2^n - 1]``
    (super-white / sub-black footroom of the limited range is kept, as in BT.2100 Table 9).
    """
    y_gain, y_off, c_gain, c_off = code_scale(bit_depth, full_range)
    arr = np.asarray(ycbcr, dtype=np.float64)
    gain = np.array([y_gain, c_gain, c_gain])
    off = np.array([y_off, c_off, c_off])
    codes = np.floor(arr * gain + off + 0.5)  # BT.2100 Round(): half away from zero (x >= 0 after clipping)
    return np.clip(codes, 0, 2**bit_depth - 1).astype(_code_dtype(bit_depth))


def codes_to_ycbcr(codes: np.ndarray, bit_depth: int, full_range: bool, dtype: Any = np.float64) -> np.ndarray:
    """Integer Y'CbCr codes ``(..., 3)`` -> normalized ``ycbcr`` (float, not clipped)."""
    y_gain, y_off, c_gain, c_off = code_scale(bit_depth, full_range)
    arr = np.asarray(codes).astype(dtype)
    gain = np.array([1.0 / y_gain, 1.0 / c_gain, 1.0 / c_gain], dtype=dtype)
    off = np.array([y_off, c_off, c_off], dtype=dtype)
    return (arr - off) * gain


# ---------------------------------------------------------------------------------------------
# Chroma resampling (factor 2 per subsampled axis). The chroma sample j of an axis sits at luma
# coordinate 2j + phase, phase in {0, 0.5, 1} (CHROMA_SITING_OFFSETS). Downsampling filters with
# [1,2,1]/4 centred on the chroma position when it is co-sited with a luma sample (phase 0 or 1)
# and averages the two neighbours ([1,1]/2) when it lies between them (phase 0.5). Upsampling is
# linear interpolation at the true sample positions, edges replicated.
# ---------------------------------------------------------------------------------------------


def _siting(siting: str) -> tuple[float, float]:
    try:
        return CHROMA_SITING_OFFSETS[siting]
    except KeyError:
        raise ValueError(f"unknown chroma siting {siting!r} (known: {', '.join(CHROMA_SITING_OFFSETS)})") from None


def _axes(subsampling: str) -> tuple[bool, bool]:
    """(vertical subsampled, horizontal subsampled)."""
    if subsampling == "420":
        return True, True
    if subsampling == "422":
        return False, True
    if subsampling == "444":
        return False, False
    raise ValueError(f"unknown chroma subsampling {subsampling!r} (known: 420, 422, 444)")


def _down_axis(x: np.ndarray, axis: int, phase: float) -> np.ndarray:
    """Halve ``x`` along ``axis`` (0 or 1) for chroma at luma position ``2j + phase``."""
    if x.shape[axis] % 2:
        edge = np.take(x, [-1], axis=axis)
        x = np.concatenate([x, edge], axis=axis)
    xt = np.moveaxis(x, axis, 0)
    even, odd = xt[0::2], xt[1::2]
    if phase == 0.5:
        out = (even + odd) * 0.5
    elif phase == 0.0:
        prev_odd = np.concatenate([even[:1], odd[:-1]], axis=0)  # x[2j-1], replicated at the edge
        out = (prev_odd + 2.0 * even + odd) * 0.25
    else:  # phase 1: centred on odd samples
        next_even = np.concatenate([even[1:], odd[-1:]], axis=0)  # x[2j+2], replicated at the edge
        out = (even + 2.0 * odd + next_even) * 0.25
    return np.moveaxis(out, 0, axis)


def _up_axis(c: np.ndarray, axis: int, phase: float, size: int, out: np.ndarray | None = None) -> np.ndarray:
    """Double ``c`` along ``axis`` (0 or 1) to ``size`` samples by linear interpolation."""
    ct = np.moveaxis(c, axis, 0)
    n = ct.shape[0]
    shape = list(c.shape)
    shape[axis] = 2 * n
    if out is None or out.shape != tuple(shape):
        out = np.empty(shape, dtype=c.dtype)
    ot = np.moveaxis(out, axis, 0)
    even, odd = ot[0::2], ot[1::2]
    if phase == 0.0:  # luma 2j is chroma j; 2j+1 halfway to j+1
        even[...] = ct
        np.add(ct[:-1], ct[1:], out=odd[:-1])
        odd[:-1] *= 0.5
        odd[-1] = ct[-1]
    elif phase == 1.0:  # luma 2j+1 is chroma j; 2j halfway from j-1
        odd[...] = ct
        np.add(ct[:-1], ct[1:], out=even[1:])
        even[1:] *= 0.5
        even[0] = ct[0]
    else:  # phase 0.5: luma 2j at chroma j - 1/4, 2j+1 at j + 1/4
        np.multiply(ct, 0.75, out=even)
        odd[...] = even
        even[1:] += 0.25 * ct[:-1]
        even[0] += 0.25 * ct[0]
        odd[:-1] += 0.25 * ct[1:]
        odd[-1] += 0.25 * ct[-1]
    if size > 2 * n:
        raise ValueError(f"cannot upsample {n} chroma samples to {size}")
    return out[:size] if axis == 0 else out[:, :size]


def downsample_chroma(plane: np.ndarray, subsampling: str = "420", siting: str = "left") -> np.ndarray:
    """Full-resolution chroma plane ``(H, W)`` -> subsampled plane ``(ceil(H/2), ceil(W/2))`` for 4:2:0.

    ``siting`` gives the chroma sample position (see module docstring). For ``left`` (MPEG-2,
    chroma_sample_loc_type 0) the horizontal filter is [1,2,1]/4 centred on even columns and the
    vertical one averages each row pair. Works on float planes; returns float64 unless float32 in.
    """
    plane = np.asarray(plane)
    dtype = np.float32 if plane.dtype == np.float32 else np.float64
    x = plane.astype(dtype, copy=False)
    vert, horiz = _axes(subsampling)
    hphase, vphase = _siting(siting)
    if horiz:
        x = _down_axis(x, 1, hphase)
    if vert:
        x = _down_axis(x, 0, vphase)
    return x


def upsample_chroma(
    plane: np.ndarray,
    subsampling: str = "420",
    siting: str = "left",
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Subsampled chroma plane -> full resolution ``size`` = (H, W) (default: twice each subsampled axis).

    Linear interpolation at the sample positions given by ``siting`` (the counterpart of
    :func:`downsample_chroma`). Returns float32 for float32 or integer input, else float64.
    """
    plane = np.asarray(plane)
    dtype = np.float64 if plane.dtype == np.float64 else np.float32
    x = plane.astype(dtype, copy=False)
    vert, horiz = _axes(subsampling)
    hphase, vphase = _siting(siting)
    h, w = x.shape[:2]
    if size is None:
        size = (2 * h if vert else h, 2 * w if horiz else w)
    if vert:  # vertical first: half the work at chroma width
        x = _up_axis(x, 0, vphase, size[0])
    if horiz:
        x = _up_axis(x, 1, hphase, size[1])
    return x


def subsampled_shape(height: int, width: int, subsampling: str) -> tuple[int, int]:
    """Chroma plane shape for a ``height`` x ``width`` picture."""
    vert, horiz = _axes(subsampling)
    return ((height + 1) // 2 if vert else height, (width + 1) // 2 if horiz else width)


_OUTPUT_SCALES = {"float32": 1.0, "uint16": 65535.0, "uint8": 255.0}
SCRATCH_BYTES = 384 << 20  # scratch buffers a converter keeps per thread: a 4K frame's whole set and many tiles

# 3-tap kernels that turn a nearest-neighbour (sample-doubled) chroma axis into linear
# interpolation at the true chroma positions, for each phase (see _up_axis): out[x] = sum k[t] d[x+t-1].
_DOUBLED_KERNELS = {0.0: (0.0, 0.5, 0.5), 0.5: (0.25, 0.5, 0.25), 1.0: (0.5, 0.5, 0.0)}


class PlaneConverter:
    """Y'CbCr code planes -> R'G'B' (float32 in [0,1], or uint16/uint8 ``round(x * (2^k - 1))``).

    The same maths as :func:`codes_to_ycbcr` + :func:`upsample_chroma` + :func:`ycbcr_to_rgb`,
    arranged for speed: range offsets and matrix are folded into per-channel constants, the chroma
    contribution to each of R', G', B' is computed at chroma resolution, interpolated once as a
    3-channel image (OpenCV), and the luma added with the final scaling/rounding in one pass.
    Scratch buffers are reused between calls (one set per thread, so an instance may be shared
    by threads); returned arrays are always new.
    """

    def __init__(self, matrix: str, bit_depth: int, full_range: bool, siting: str = "left") -> None:
        self.matrix = canonical_matrix(matrix)
        self.bit_depth = bit_depth
        self.full_range = full_range
        self.siting = siting
        self._hphase, self._vphase = _siting(siting)
        y_gain, y_off, c_gain, c_off = code_scale(bit_depth, full_range)
        m = ycbcr_to_rgb_matrix(matrix)
        self._y_gain, self._y_off = y_gain, y_off
        # rgb_i = (Y - y_off)/y_gain + m[i,1] (Cb - c_off)/c_gain + m[i,2] (Cr - c_off)/c_gain
        self._cb = m[:, 1] / c_gain
        self._cr = m[:, 2] / c_gain
        self._const = -y_off / y_gain - (m[:, 1] + m[:, 2]) * c_off / c_gain
        self._local = threading.local()  # scratch buffers, one set per thread

    def _buf(self, name: str, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
        """This thread's scratch buffer ``name`` of this shape and type: kept per shape (a clip's whole centre
        frame and its tiles alternate; one buffer per name would be allocated again, page by page, on every
        call), the least recently used dropped beyond :data:`SCRATCH_BYTES` per thread."""
        scratch: OrderedDict[tuple[str, tuple[int, ...], str], np.ndarray] | None = getattr(self._local, "bufs", None)
        if scratch is None:
            scratch = self._local.bufs = OrderedDict()
        key = (name, tuple(shape), np.dtype(dtype).str)
        buf = scratch.get(key)
        if buf is not None:
            scratch.move_to_end(key)
            return buf
        buf = np.empty(shape, dtype=dtype)
        scratch[key] = buf
        total = sum(b.nbytes for b in scratch.values())
        while total > SCRATCH_BYTES and len(scratch) > 1:
            _, dropped = scratch.popitem(last=False)
            total -= dropped.nbytes
        return buf

    def luma(self, y: np.ndarray) -> np.ndarray:
        """Y' codes (H, W) -> normalized Y' float32 (range offsets removed, clipped to [0, 1])."""
        out = np.multiply(y, np.float32(1.0 / self._y_gain), dtype=np.float32)
        out -= np.float32(self._y_off / self._y_gain)
        return np.clip(out, 0.0, 1.0, out=out)

    def thumbnail_bgr(self, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Same-size Y', Cb, Cr code planes (float32, e.g. area-reduced thumbnails) -> B'G'R' uint8
        ``round(x * 255)`` saturated, in OpenCV's channel order: the maths of :meth:`__call__` as one 3 x 4
        matrix (OpenCV ``transform``), for small pictures where the per-call work of the general path
        dominates. Chroma siting does not apply (the planes are already on one grid)."""
        import cv2

        matrix = np.empty((3, 4), np.float32)
        for row, i in enumerate((2, 1, 0)):  # B', G', R'
            matrix[row] = (255.0 / self._y_gain, 255.0 * self._cb[i], 255.0 * self._cr[i], 255.0 * self._const[i])
        out = cv2.transform(cv2.merge([y, u, v]), matrix)
        np.clip(out, 0.0, 255.0, out=out)
        return np.rint(out, out=out).astype(np.uint8)

    def _chroma_terms(self, u: np.ndarray, v: np.ndarray, scale: float) -> np.ndarray:
        """(ch, cw, 3) float32: the Cb/Cr (+ constant) part of R', G', B' at chroma resolution."""
        shape = u.shape
        planes = []
        for i in range(3):
            p = self._buf(f"c{i}", shape)
            first = True
            for src, k in ((u, self._cb[i]), (v, self._cr[i])):
                if k == 0.0:
                    continue
                if first:
                    np.multiply(src, np.float32(k * scale), out=p, dtype=np.float32)
                    first = False
                else:
                    t = self._buf("ct", shape)
                    np.multiply(src, np.float32(k * scale), out=t, dtype=np.float32)
                    p += t
            p += np.float32(self._const[i] * scale)
            planes.append(p)
        import cv2

        return cv2.merge(planes, dst=self._buf("c3", (*shape, 3)))

    def _upsample3(self, c3: np.ndarray, fy: int, fx: int) -> np.ndarray:
        """Interpolate the 3-channel chroma image by (fy, fx) in {1, 2} at this converter's siting."""
        import cv2

        ch, cw = c3.shape[:2]
        if fx == 2 and self._hphase == 0.0 and (fy == 1 or self._vphase == 0.5):
            # Horizontal co-sited: even columns are the samples, odd columns the mean of two
            # neighbours (last one replicated); interleave by merging into 6 channels.
            avg = self._buf("avg", (ch, cw, 3))
            np.add(c3[:, :-1], c3[:, 1:], out=avg[:, :-1])
            avg[:, :-1] *= np.float32(0.5)
            avg[:, -1] = c3[:, -1]
            c3 = cv2.merge([c3, avg], dst=self._buf("hx", (ch, cw, 6))).reshape(ch, 2 * cw, 3)
            cw, fx = 2 * cw, 1
        if fy == 1 and fx == 1:
            return c3
        size = (cw * fx, ch * fy)
        if (fy == 1 or self._vphase == 0.5) and (fx == 1 or self._hphase == 0.5):
            # OpenCV's bilinear resize samples at (x + 0.5) / 2 - 0.5: phase 0.5, edges clamped.
            return cv2.resize(c3, size, dst=self._buf("up", (size[1], size[0], 3)), interpolation=cv2.INTER_LINEAR)
        near = cv2.resize(c3, size, dst=self._buf("near", (size[1], size[0], 3)), interpolation=cv2.INTER_NEAREST)
        kx = np.float32(_DOUBLED_KERNELS[self._hphase] if fx == 2 else (0.0, 1.0, 0.0))
        ky = np.float32(_DOUBLED_KERNELS[self._vphase] if fy == 2 else (0.0, 1.0, 0.0))
        return cv2.sepFilter2D(near, -1, kx, ky, dst=self._buf("up", near.shape), borderType=cv2.BORDER_REPLICATE)

    def _left_sited_420_codes(self, y: np.ndarray, u: np.ndarray, v: np.ndarray, scale: float) -> np.ndarray:
        """4:2:0 with left siting (H.264/HEVC's default: chroma co-sited with even columns, between rows) to
        uint8/uint16 output, in integers: Cb and Cr as one 2-channel plane times 8, so that the linear
        interpolation (horizontal halves, vertical quarters: weights in eighths) stays exact in uint16; then
        Y', Cb, Cr at full resolution through one 3 x 4 matrix (OpenCV ``transform``, rounded and saturated
        to the output's range). About twice as fast as the float path, the same codes but for float ties."""
        import cv2

        height, width = y.shape
        ch, cw = u.shape
        uv = cv2.merge([u, v], dst=self._buf("uv", (ch, cw, 2), u.dtype))
        uv = np.left_shift(uv, 3, out=self._buf("uv8", (ch, cw, 2), np.uint16), dtype=np.uint16)  # exact below 14 bits
        halves = self._buf("halves", (ch, cw, 2), np.uint16)
        np.add(uv[:, :-1], uv[:, 1:], out=halves[:, :-1])  # midpoints: exact, the sums are even
        np.right_shift(halves[:, :-1], 1, out=halves[:, :-1])
        halves[:, -1] = uv[:, -1]  # the last column: its own sample (edge replicated)
        across = cv2.merge([uv, halves], dst=self._buf("across", (ch, cw, 4), np.uint16)).reshape(ch, 2 * cw, 2)
        up = cv2.resize(across, (2 * cw, 2 * ch), dst=self._buf("up16", (2 * ch, 2 * cw, 2), np.uint16),
                        interpolation=cv2.INTER_LINEAR)  # rows at phase 0.5  # fmt: skip
        if up.shape[:2] != (height, width):
            up = up[:height, :width]
        y16 = y
        if y.dtype != np.uint16:
            y16 = np.add(y, 0, out=self._buf("y16", (height, width), np.uint16), dtype=np.uint16)
        yuv = cv2.merge([y16, up], dst=self._buf("yuv", (height, width, 3), np.uint16))
        matrix = np.empty((3, 4), np.float32)
        for i in range(3):
            matrix[i] = (scale / self._y_gain, scale * self._cb[i] / 8, scale * self._cr[i] / 8, scale * self._const[i])
        out = cv2.transform(yuv, matrix)  # uint16, rounded and saturated
        return out if scale > 255.0 else cv2.convertScaleAbs(out)  # uint8: saturated at 255

    def __call__(self, y: np.ndarray, u: np.ndarray, v: np.ndarray, dtype: str = "float32") -> np.ndarray:
        """Code planes -> R'G'B' ``(H, W, 3)``: ``y`` (H, W); ``u`` = Cb, ``v`` = Cr at full or half resolution.

        ``dtype``: ``float32`` (clipped to [0, 1]), ``uint16`` (``round(x * 65535)``) or ``uint8``
        (``round(x * 255)``), the integer forms saturating at 0 and the maximum.
        """
        import cv2

        if dtype not in _OUTPUT_SCALES:
            raise ValueError(f"dtype must be one of {', '.join(_OUTPUT_SCALES)}, got {dtype!r}")
        scale = _OUTPUT_SCALES[dtype]
        height, width = y.shape
        ch, cw = u.shape
        if v.shape != u.shape:
            raise ValueError(f"Cb and Cr planes differ in shape: {u.shape} vs {v.shape}")
        fy = 1 if ch == height else 2
        fx = 1 if cw == width else 2
        if (ch * fy < height) or (cw * fx < width) or ch * fy > height + 1 or cw * fx > width + 1:
            raise ValueError(f"chroma planes {u.shape} do not fit a {height}x{width} luma plane")
        if (
            dtype != "float32" and (fy, fx) == (2, 2) and (self._hphase, self._vphase) == (0.0, 0.5)
            and y.dtype.kind == "u" and u.dtype == y.dtype and self.bit_depth <= 13 and cw >= 2
        ):  # fmt: skip
            return self._left_sited_420_codes(y, u, v, scale)
        full = self._upsample3(self._chroma_terms(u, v, scale), fy, fx)
        if full.shape[:2] != (height, width):
            full = np.ascontiguousarray(full[:height, :width])
        y3 = cv2.merge([y, y, y])
        depth = {"float32": cv2.CV_32F, "uint16": cv2.CV_16U, "uint8": cv2.CV_8U}[dtype]
        out = cv2.addWeighted(
            full.reshape(height, width * 3),
            1.0,
            y3.reshape(height, width * 3),
            scale / self._y_gain,
            0.0,
            dtype=depth,
        )
        if dtype == "float32":
            cv2.threshold(out, 1.0, 1.0, cv2.THRESH_TRUNC, dst=out)
            cv2.threshold(out, 0.0, 0.0, cv2.THRESH_TOZERO, dst=out)
        return out.reshape(height, width, 3)


def planes_to_rgb(
    y: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    matrix: str,
    bit_depth: int,
    full_range: bool,
    siting: str = "left",
    dtype: str = "float32",
) -> np.ndarray:
    """Y'CbCr code planes -> R'G'B' ``(H, W, 3)``: float32 in [0, 1], or ``uint16``/``uint8`` codes.

    ``y`` is (H, W); ``u`` (Cb) and ``v`` (Cr) are (H, W) for 4:4:4, (H, ceil(W/2)) for 4:2:2 or
    (ceil(H/2), ceil(W/2)) for 4:2:0, upsampled with :func:`upsample_chroma` for ``siting``.
    The R'G'B' keeps the stream's transfer and primaries (PQ BT.2020 for HDR10).
    """
    return PlaneConverter(matrix, bit_depth, full_range, siting)(y, u, v, dtype=dtype)


# 3- or 5-tap kernels for downsampling one axis by 2 with OpenCV (centred at the even sample 2j,
# decimated afterwards): the same filters as _down_axis for each chroma phase.
_DOWN_KERNELS = {
    0.0: (0.25, 0.5, 0.25),  # co-sited with 2j: [1,2,1]/4 on 2j-1, 2j, 2j+1
    0.5: (0.0, 0.5, 0.5),  # between 2j and 2j+1: their mean
    1.0: (0.0, 0.0, 0.25, 0.5, 0.25),  # co-sited with 2j+1: [1,2,1]/4 on 2j, 2j+1, 2j+2
}


def _downsample_fast(plane: np.ndarray, vert: bool, horiz: bool, hphase: float, vphase: float) -> np.ndarray:
    """:func:`downsample_chroma` for float32 planes: one separable OpenCV filter, then decimation."""
    import cv2

    if not (vert or horiz):
        return plane
    kx = np.float32(_DOWN_KERNELS[hphase] if horiz else (1.0,))
    ky = np.float32(_DOWN_KERNELS[vphase] if vert else (1.0,))
    filtered = cv2.sepFilter2D(plane, -1, kx, ky, borderType=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(filtered[:: 2 if vert else 1, :: 2 if horiz else 1])


def rgb_to_planes(
    rgb: np.ndarray,
    matrix: str,
    bit_depth: int,
    full_range: bool,
    subsampling: str = "420",
    siting: str = "left",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R'G'B' ``(H, W, 3)`` in [0, 1] -> code planes ``(y, u, v)`` (uint8 for 8-bit else uint16).

    Chroma is computed at full resolution, then filtered and subsampled as
    :func:`downsample_chroma` does (the order BT.2100 implies: matrix on R'G'B', then subsample
    Cb/Cr). Codes are rounded with BT.2100 ``Round()`` and clipped to ``[0, 2^n - 1]``.
    Computed in float32 (float64 input keeps float64 and the numpy filters).
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) R'G'B' array, got shape {rgb.shape}")
    dtype = np.float64 if rgb.dtype == np.float64 else np.float32
    m = rgb_to_ycbcr_matrix(matrix)
    x = np.ascontiguousarray(rgb, dtype=dtype)
    vert, horiz = _axes(subsampling)
    hphase, vphase = _siting(siting)
    mt = m.astype(dtype)
    y, cb, cr = x @ mt[0], x @ mt[1], x @ mt[2]
    if dtype == np.float32:
        cb = _downsample_fast(cb, vert, horiz, hphase, vphase)
        cr = _downsample_fast(cr, vert, horiz, hphase, vphase)
    else:
        cb = downsample_chroma(cb, subsampling, siting)
        cr = downsample_chroma(cr, subsampling, siting)
    y_gain, y_off, c_gain, c_off = code_scale(bit_depth, full_range)
    top = 2**bit_depth - 1
    code_dtype = _code_dtype(bit_depth)

    def quantize(plane: np.ndarray, gain: float, off: float) -> np.ndarray:
        q = np.multiply(plane, dtype(gain), dtype=dtype)
        q += dtype(off + 0.5)
        np.floor(q, out=q)  # BT.2100 Round() (half away from zero; negatives clip to 0 anyway)
        np.clip(q, 0, top, out=q)
        return q.astype(code_dtype)

    return quantize(y, y_gain, y_off), quantize(cb, c_gain, c_off), quantize(cr, c_gain, c_off)
