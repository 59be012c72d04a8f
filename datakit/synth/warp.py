"""Random smooth camera motion over a still HDR image: trajectories and border-free rendering.

A synthetic clip is made by moving a virtual camera over one image (the temporal-clues
synthesis of the seeds: HDR image -> random warp -> HDR video). Geometry conventions:

* Normalized output coordinates ``u``: pixel ``(x, y)`` of an ``(h, w)`` tile maps to
  ``u = ((x - (w-1)/2) / L, (y - (h-1)/2) / L)`` with ``L = max(h, w)``, so the tile spans about
  ``[-0.5, 0.5]`` on its long side and the axes are isotropic (rotations stay rotations).
* A trajectory is a stack of 3x3 homographies ``H_t`` mapping normalized output coordinates to
  normalized *source* coordinates ``v = H_t u`` (homogeneous, divide by the third component).
* :func:`render_clip` places the normalized source frame on the image as
  ``p_src = C + k L v`` (``k`` = source pixels per output pixel, ``C`` = a crop centre) with
  ``k`` and ``C`` chosen so that every output pixel of every frame (and every motion-blur
  sub-frame) samples inside the image: no border or black fill can ever appear.

All warping happens in linear light (``rgb_linear`` or ``rgb_nits``), float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from datakit.errors import InputError

__all__ = [
    "RegionMotion",
    "homography_from_params",
    "render_clip",
    "sample_region_motion",
    "sample_trajectory",
    "smooth_curve",
]

# Pixels of safety margin kept inside the image for each interpolation kernel (half support + 0.5).
_MARGINS = {"linear": 1.5, "cubic": 2.5}
_CV_INTERP = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}


def smooth_curve(n_frames: int, rng: np.random.Generator, lo: float, hi: float) -> np.ndarray:
    """A smooth random curve of ``n_frames`` values in ``[lo, hi]`` (float64, shape ``(N,)``).

    The curve is a cubic Bezier whose four control points are uniform in ``[lo, hi]``; it stays
    inside the interval (convex hull property), and its per-frame step is at most
    ``6 (hi - lo) / (N - 1)`` (|B'| <= 3 max|P_{i+1} - P_i|) and its second difference at most
    ``24 (hi - lo) / (N - 1)^2``.
    """
    ctrl = rng.uniform(lo, hi, size=4)
    s = np.linspace(0.0, 1.0, n_frames) if n_frames > 1 else np.zeros(1)
    basis = np.stack([(1 - s) ** 3, 3 * s * (1 - s) ** 2, 3 * s**2 * (1 - s), s**3], axis=1)
    return basis @ ctrl


def homography_from_params(
    tx: float, ty: float, log_zoom: float, rotation_deg: float, px: float = 0.0, py: float = 0.0
) -> np.ndarray:
    """``T(tx, ty) R(rotation) S(exp(log_zoom)) P(px, py)`` as a 3x3 float64 matrix (normalized coords).

    ``P`` is the projective part ``[[1,0,0],[0,1,0],[px,py,1]]``; a zoom > 1 shows a larger part of
    the source (zoom out). Translations are in units of the tile's long side.
    """
    c, s = np.cos(np.deg2rad(rotation_deg)), np.sin(np.deg2rad(rotation_deg))
    z = float(np.exp(log_zoom))
    t = np.array([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]])
    r = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    sc = np.diag([z, z, 1.0])
    p = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [px, py, 1.0]])
    return t @ r @ sc @ p


def sample_trajectory(
    n_frames: int,
    rng: np.random.Generator,
    max_shift: float = 0.15,
    max_zoom: float = 0.15,
    max_rotation_deg: float = 4.0,
    max_perspective: float = 0.05,
) -> np.ndarray:
    """Random smooth camera trajectory: ``(N, 3, 3)`` float64 homographies (normalized coordinates).

    Each motion parameter follows its own :func:`smooth_curve`: translation ``tx, ty`` in
    ``[-max_shift, max_shift]`` (fraction of the tile's long side), zoom factor in
    ``[1/(1+max_zoom), 1+max_zoom]`` (log-uniform control points), rotation in
    ``[-max_rotation_deg, max_rotation_deg]`` and perspective terms in
    ``[-max_perspective, max_perspective]``. ``max_perspective`` must be below 0.5 so that the
    homogeneous scale stays positive over the tile.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    if min(max_shift, max_zoom, max_rotation_deg, max_perspective) < 0:
        raise ValueError("trajectory limits must be non-negative")
    if max_perspective >= 0.5:
        raise ValueError(f"max_perspective must be < 0.5, got {max_perspective}")
    lz = float(np.log1p(max_zoom))
    tx = smooth_curve(n_frames, rng, -max_shift, max_shift)
    ty = smooth_curve(n_frames, rng, -max_shift, max_shift)
    zoom = smooth_curve(n_frames, rng, -lz, lz)
    rot = smooth_curve(n_frames, rng, -max_rotation_deg, max_rotation_deg)
    px = smooth_curve(n_frames, rng, -max_perspective, max_perspective)
    py = smooth_curve(n_frames, rng, -max_perspective, max_perspective)
    return np.stack([homography_from_params(*p) for p in zip(tx, ty, zoom, rot, px, py, strict=True)])


@dataclass(frozen=True)
class RegionMotion:
    """Independent motion of one soft-edged region (an "object") on top of the camera motion.

    ``homographies`` (N, 3, 3) map normalized output coordinates to the region's own coordinates
    ``w = G_t u``; the region's pixels sample the source at ``H_t G_t u`` and its mask is a soft
    disk around ``center`` of radius ``radius`` in ``w`` (so the mask moves with the object).
    ``softness`` is the width of the mask edge; all lengths in units of the tile's long side.
    """

    homographies: np.ndarray
    center: tuple[float, float]
    radius: float
    softness: float = 0.05

    def mask(self, t_h: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Mask in [0, 1] over the normalized grid ``u`` (H, W, 2) for region homography ``t_h``."""
        w = _apply_h(t_h, u)
        d = np.hypot(w[..., 0] - self.center[0], w[..., 1] - self.center[1])
        x = np.clip((self.radius - d) / max(self.softness, 1e-6) + 0.5, 0.0, 1.0)
        return (x * x * (3.0 - 2.0 * x)).astype(np.float32)  # smoothstep edge


def sample_region_motion(
    n_frames: int,
    rng: np.random.Generator,
    max_shift: float = 0.1,
    max_rotation_deg: float = 8.0,
    radius_range: tuple[float, float] = (0.1, 0.25),
    softness: float = 0.05,
) -> RegionMotion:
    """A random :class:`RegionMotion`: a disk somewhere in the tile moving on its own smooth path."""
    g = sample_trajectory(n_frames, rng, max_shift, 0.05, max_rotation_deg, 0.0)
    center = (float(rng.uniform(-0.25, 0.25)), float(rng.uniform(-0.25, 0.25)))
    radius = float(rng.uniform(*radius_range))
    return RegionMotion(homographies=g, center=center, radius=radius, softness=softness)


def _apply_h(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 3x3 homography to points ``(..., 2)``; returns dehomogenized ``(..., 2)``."""
    x = pts[..., 0] * h[0, 0] + pts[..., 1] * h[0, 1] + h[0, 2]
    y = pts[..., 0] * h[1, 0] + pts[..., 1] * h[1, 1] + h[1, 2]
    w = pts[..., 0] * h[2, 0] + pts[..., 1] * h[2, 1] + h[2, 2]
    return np.stack([x / w, y / w], axis=-1)


def _subframe_homographies(hs: np.ndarray, n_samples: int, shutter: float) -> np.ndarray:
    """(N, S, 3, 3): per frame, S homographies spread over ``shutter`` frames centred on the frame.

    Neighbouring (normalized) matrices are interpolated linearly; at the clip ends the motion of
    the nearest frame pair is extrapolated.
    """
    n = hs.shape[0]
    hs = hs / hs[:, 2:3, 2:3]
    if n_samples <= 1 or n == 1:
        return hs[:, None]
    offsets = np.linspace(-shutter / 2.0, shutter / 2.0, n_samples)
    out = np.empty((n, n_samples, 3, 3))
    for t in range(n):
        fwd = hs[t + 1] - hs[t] if t + 1 < n else hs[t] - hs[t - 1]
        bwd = hs[t] - hs[t - 1] if t > 0 else hs[t + 1] - hs[t]
        for i, d in enumerate(offsets):
            out[t, i] = hs[t] + d * (fwd if d >= 0 else bwd)
    return out


def _norm_to_pixel(h: int, w: int) -> tuple[float, np.ndarray]:
    """(L, A) where A maps output pixel coordinates to normalized coordinates."""
    size = float(max(h, w))
    a = np.array([[1.0 / size, 0.0, -(w - 1) / 2.0 / size], [0.0, 1.0 / size, -(h - 1) / 2.0 / size], [0, 0, 1]])
    return size, a


def render_clip(
    rgb_linear_image: np.ndarray,
    homographies: np.ndarray,
    out_size: tuple[int, int],
    motion_blur_samples: int = 1,
    *,
    scale: float = 1.0,
    min_scale: float = 0.5,
    position: tuple[float, float] = (0.5, 0.5),
    interpolation: str = "linear",
    shutter: float = 0.5,
    region: RegionMotion | None = None,
) -> np.ndarray:
    """Render a clip ``(N, h, w, 3)`` float32 by warping one linear-light image along a trajectory.

    ``rgb_linear_image``: ``(H, W, 3)`` linear light (``rgb_linear`` or ``rgb_nits``; the encoding is
    kept). ``homographies``: ``(N, 3, 3)`` from :func:`sample_trajectory`. ``out_size`` = ``(h, w)``.

    The scale ``k`` (source pixels per output pixel) is ``min(scale, k_max)`` where ``k_max`` is the
    largest scale at which every frame, motion-blur sub-frame and region sub-frame maps inside the
    image with the interpolation margin; ``position`` (each in [0, 1]) places the crop centre
    within its feasible interval. For ``k > 1`` the image is first downsized with area averaging
    (anti-aliasing) so the warp never decimates. Motion blur averages ``motion_blur_samples``
    sub-frame warps spread over ``shutter`` frame intervals (0.5 = 180 degree shutter).
    Bilinear or bicubic (``interpolation``) resampling in linear light; the result is clamped to
    be non-negative (bicubic overshoot).

    Raises :class:`InputError` if the image is smaller than the tile, or if the motion would need
    upsampling beyond ``1 / min_scale``.
    """
    img = np.asarray(rgb_linear_image, dtype=np.float32)
    if img.ndim != 3 or img.shape[2] != 3:
        raise InputError(f"render_clip: expected an (H, W, 3) image, got shape {img.shape}")
    hs = np.asarray(homographies, dtype=np.float64)
    if hs.ndim != 3 or hs.shape[1:] != (3, 3):
        raise ValueError(f"homographies must be shaped (N, 3, 3), got {hs.shape}")
    out_h, out_w = (int(out_size[0]), int(out_size[1]))
    src_h, src_w = img.shape[:2]
    if src_h < out_h or src_w < out_w:
        raise InputError(f"image of {src_w}x{src_h} px is smaller than the requested {out_w}x{out_h} tile")
    if interpolation not in _CV_INTERP:
        raise ValueError(f"interpolation must be one of {sorted(_CV_INTERP)}, got {interpolation!r}")
    if region is not None and region.homographies.shape != hs.shape:
        raise ValueError("region homographies must have the same shape as the camera homographies")

    sub = _subframe_homographies(hs, motion_blur_samples, shutter)  # (N, S, 3, 3)
    g_sub = sub_fg = None
    if region is not None:
        g_sub = _subframe_homographies(np.asarray(region.homographies, np.float64), motion_blur_samples, shutter)
        sub_fg = sub @ g_sub
    size, a_dst = _norm_to_pixel(out_h, out_w)
    corners = _apply_h(a_dst, np.array([[0, 0], [out_w - 1, 0], [0, out_h - 1], [out_w - 1, out_h - 1]], float))
    all_h = sub.reshape(-1, 3, 3) if sub_fg is None else np.concatenate([sub, sub_fg]).reshape(-1, 3, 3)
    if np.any(all_h[:, 2:3, :2] @ corners.T + all_h[:, 2:3, 2:3] <= 0):
        raise ValueError("a homography sends part of the tile through infinity")
    pts = np.stack([_apply_h(m, corners) for m in all_h])  # (K, 4, 2)
    lo, hi = pts.reshape(-1, 2).min(axis=0), pts.reshape(-1, 2).max(axis=0)
    extent = np.maximum(hi - lo, 1e-9)
    margin = _MARGINS[interpolation]

    def fit(height: int, width: int) -> float:
        return float(min((width - 1 - 2 * margin) / (size * extent[0]), (height - 1 - 2 * margin) / (size * extent[1])))

    k = min(scale, fit(src_h, src_w))
    if k > 1.0:  # anti-aliased downsizing, then fit again on the smaller image (k becomes ~1)
        new_w, new_h = max(out_w, round(src_w / k)), max(out_h, round(src_h / k))
        img = cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_AREA)
        src_h, src_w = new_h, new_w
        k = min(1.0, fit(src_h, src_w))
    if k < min_scale:
        raise InputError(
            f"image of {src_w}x{src_h} px is too small for a {out_w}x{out_h} tile with this motion "
            f"(would need {1 / max(k, 1e-9):.2f}x upsampling, limit {1 / min_scale:.2f}x)"
        )
    # Crop centre: C + k L lo >= margin and C + k L hi <= size_src - 1 - margin on each axis.
    c_lo = margin - k * size * lo
    c_hi = np.array([src_w - 1 - margin, src_h - 1 - margin]) - k * size * hi
    pos = np.clip(np.asarray(position, dtype=np.float64), 0.0, 1.0)
    centre = c_lo + pos * np.maximum(c_hi - c_lo, 0.0)
    a_src = np.array([[k * size, 0.0, centre[0]], [0.0, k * size, centre[1]], [0.0, 0.0, 1.0]])

    flags = _CV_INTERP[interpolation] | cv2.WARP_INVERSE_MAP

    def warp(m: np.ndarray) -> np.ndarray:
        return cv2.warpPerspective(
            img, a_src @ m @ a_dst, (out_w, out_h), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )

    grid = None
    if region is not None:
        ys, xs = np.mgrid[0:out_h, 0:out_w].astype(np.float64)
        grid = _apply_h(a_dst, np.stack([xs, ys], axis=-1))
    n, n_sub = sub.shape[:2]
    out = np.empty((n, out_h, out_w, 3), dtype=np.float32)
    for t in range(n):
        acc = np.zeros((out_h, out_w, 3), dtype=np.float32)
        for s in range(n_sub):
            frame = warp(sub[t, s])
            if region is not None and g_sub is not None and sub_fg is not None and grid is not None:
                m = region.mask(g_sub[t, s], grid)[..., None]
                frame = frame * (1.0 - m) + warp(sub_fg[t, s]) * m
            acc += frame
        out[t] = acc / np.float32(n_sub)
    np.maximum(out, 0.0, out=out)
    return out
