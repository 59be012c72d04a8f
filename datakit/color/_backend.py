"""Minimal numpy / torch dispatch shared by the :mod:`datakit.color` functions.

Colour functions are written once against a few operations that numpy and torch spell the
same way (``where``, ``exp``, ``log``, ``expm1``, ``log1p``, arithmetic operators) plus the
helpers below for the few that differ (clamping, matrix application, dtype handling).

Rules:

- numpy inputs: float32 (and float16) are computed and returned as float32; float64, integers,
  lists and scalars are computed and returned as float64. Scalars come back as 0-d arrays.
- torch inputs: computed in the tensor's own floating dtype on its own device (integer tensors are
  promoted to the default float dtype) and returned as tensors, so gradients flow through.
- torch is never imported here: a tensor can only be passed if torch is already imported, so its
  module is taken from ``sys.modules``. Code paths for numpy never pay torch's import time.
- Powers, square roots and logs of values that may be exactly 0 go through "double where" guards
  (:func:`safe_pow`), so a zero input has an exact value and a finite (zero) gradient, and NaN
  inputs still propagate as NaN.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from datakit.errors import InputError

if TYPE_CHECKING:
    import numpy.typing as npt
    import torch

    ArrayIn: TypeAlias = npt.ArrayLike | torch.Tensor
    ArrayOut: TypeAlias = np.ndarray | torch.Tensor
else:
    ArrayIn = Any
    ArrayOut = Any

__all__ = [
    "ArrayIn",
    "ArrayOut",
    "Work",
    "apply_matrix",
    "check_last_axis",
    "clamp",
    "clamp_min",
    "finish",
    "is_tensor",
    "ns",
    "prepare",
    "safe_pow",
    "safe_sqrt",
    "to_python_float",
    "weighted_sum_last",
]


def is_tensor(x: object) -> bool:
    """Whether ``x`` is a torch tensor (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


@dataclass(frozen=True)
class Work:
    """How to turn a working array back into the caller's kind: numpy dtype, or torch (None)."""

    out_dtype: np.dtype[Any] | None


def prepare(x: ArrayIn) -> tuple[Any, Work]:
    """Return ``x`` as a floating working array (numpy or torch) and how to restore its kind."""
    if is_tensor(x):
        if not x.is_floating_point():
            x = x.to(sys.modules["torch"].get_default_dtype())
        return x, Work(None)
    a = np.asarray(x)
    if a.dtype in (np.float32, np.float16):
        return a.astype(np.float32, copy=False), Work(np.dtype(np.float32))
    return a.astype(np.float64, copy=False), Work(np.dtype(np.float64))


def finish(y: Any, work: Work) -> ArrayOut:
    """Cast a working result back to the kind recorded by :func:`prepare`."""
    if work.out_dtype is None:
        return y
    return np.asarray(y).astype(work.out_dtype, copy=False)


def ns(x: Any) -> ModuleType:
    """The array namespace of ``x``: the torch module for tensors, numpy otherwise."""
    return sys.modules["torch"] if is_tensor(x) else np


def clamp_min(x: Any, lo: float) -> Any:
    """``max(x, lo)`` elementwise; NaN propagates (numpy ``maximum`` and torch ``clamp`` both do)."""
    if is_tensor(x):
        return x.clamp(min=lo)
    return np.maximum(x, lo)


def clamp(x: Any, lo: float, hi: float) -> Any:
    """``min(max(x, lo), hi)`` elementwise; NaN propagates."""
    if is_tensor(x):
        return x.clamp(min=lo, max=hi)
    return np.clip(x, lo, hi)


def safe_pow(x: Any, p: float) -> Any:
    """``x ** p`` for ``x >= 0`` (or NaN): exact 0 at 0, and a zero gradient there for torch."""
    if not is_tensor(x):
        return np.power(x, p)
    torch = sys.modules["torch"]
    zero = x == 0
    return torch.where(zero, 0.0, torch.where(zero, 1.0, x) ** p)


def safe_sqrt(x: Any) -> Any:
    """Square root of ``x >= 0`` (or NaN) with a finite gradient at 0 for torch."""
    return safe_pow(x, 0.5)


def check_last_axis(x: Any, fn: str, size: int = 3) -> None:
    """Raise :class:`InputError` unless the last axis of ``x`` has ``size`` entries."""
    shape = tuple(x.shape)
    if len(shape) == 0 or shape[-1] != size:
        raise InputError(f"{fn}: expected an array shaped (..., {size}), got shape {shape}")


def apply_matrix(x: Any, m: np.ndarray) -> Any:
    """Apply the 3x3 matrix ``m`` to vectors on the last axis: ``y[..., i] = sum_j m[i, j] x[..., j]``."""
    if is_tensor(x):
        torch = sys.modules["torch"]
        mt = torch.tensor(np.array(m.T), dtype=x.dtype, device=x.device)  # copy: m may be read-only
        return x @ mt
    if x.dtype in (np.float32, np.float64) and x.size >= 3 * 1024:
        # OpenCV's per-pixel 3x3 transform: SIMD, no BLAS threads, about 20x faster than einsum on frames.
        import cv2

        flat = np.ascontiguousarray(x).reshape(-1, 1, 3)
        return cv2.transform(flat, m.astype(x.dtype, copy=False)).reshape(x.shape)
    # einsum's own loops, not BLAS: a (N, 3) x (3, 3) product through a multi-threaded BLAS can be
    # 10x slower when the cores are shared by other processes (thread spin-waiting).
    return np.einsum("...j,ij->...i", x, m.astype(x.dtype, copy=False))


def weighted_sum_last(x: Any, w: np.ndarray | tuple[float, ...]) -> Any:
    """``sum_j w[j] x[..., j]``: e.g. luminance from linear RGB. Output shape is ``x.shape[:-1]``."""
    w = np.asarray(w, dtype=np.float64)
    if is_tensor(x):
        torch = sys.modules["torch"]
        return x @ torch.tensor(np.array(w), dtype=x.dtype, device=x.device)
    return np.einsum("...j,j->...", x, w.astype(x.dtype, copy=False))


def to_python_float(x: Any) -> float:
    """A 0-d numpy array or tensor as a Python float."""
    if is_tensor(x):
        return float(x.detach().item())
    return float(x)
