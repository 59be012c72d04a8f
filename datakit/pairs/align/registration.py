"""Sub-pixel registration: the black-bar geometry checked and refined on full-resolution frame pairs."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from datakit.pairs.align.confidence import overall_confidence, smoothstep
from datakit.pairs.align.features import MIN_CONTRAST, rank_rows
from datakit.pairs.align.results import Alignment, FrameMatches, SpatialAlignment


def _rank_image(img: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Global rank transform of an image (within ``mask``), float32 in (0, 1); outside the mask 0.5."""
    out = np.full(img.shape, 0.5, np.float32)
    values = img[mask] if mask is not None else img.ravel()
    if values.size == 0:
        return out
    ranks = rank_rows(values[None, :].astype(np.float32))[0]
    if mask is not None:
        out[mask] = ranks
    else:
        out = ranks.reshape(img.shape)
    return out


def _band(rank: np.ndarray, mask: np.ndarray, *, fine: bool = False) -> np.ndarray:
    """Band-pass of a rank image for registration: light smoothing minus a blur (texture, not shading); zero
    outside ``mask``. The wide band (blur of about a tenth of the width) measures similarity; the ``fine`` one
    (blur sigma 8 px) keeps the edges that locate a picture to a fraction of a pixel."""
    import cv2

    sigma = 8.0 if fine else max(2.0, rank.shape[1] / 96) * 4
    out = cv2.GaussianBlur(rank, (0, 0), 1.0) - cv2.GaussianBlur(rank, (0, 0), sigma)
    out[~mask] = 0.0
    return out.astype(np.float32)


_PATCH_RESPONSE = 0.3  # phase-correlation peak below which a patch's shift is not trusted (flat or ambiguous)


def _patch_shifts(template: np.ndarray, moving: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Local shifts of ``moving`` against ``template`` on a 5 x 3 grid of overlapping patches (phase
    correlation with a Hann window, refined by ECC): rows ``(x, y, dx, dy)`` (patch centre, pixel-centre
    coords; ``moving(x + dx, y + dy)`` shows ``template(x, y)``) for the patches inside ``mask`` whose
    correlation peak is distinct."""
    import cv2

    height, width = template.shape
    size = max(16, min(width // 4, height // 2) // 2 * 2)
    window = cv2.createHanningWindow((size, size), cv2.CV_32F)
    rows = []
    for y0 in np.linspace(0, height - size, 3).round().astype(int):
        for x0 in np.linspace(0, width - size, 5).round().astype(int):
            if mask[y0 : y0 + size, x0 : x0 + size].mean() < 0.9:
                continue
            (dx, dy), response = cv2.phaseCorrelate(
                template[y0 : y0 + size, x0 : x0 + size], moving[y0 : y0 + size, x0 : x0 + size], window
            )
            if response < _PATCH_RESPONSE or max(abs(dx), abs(dy)) >= size / 4:
                continue
            # phase correlation is biased towards whole pixels: refine the shift by ECC (translation only,
            # well conditioned on a distinct patch), and drop the patch if the two disagree by a pixel
            warp = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]], np.float32)
            try:
                _, warp = cv2.findTransformECC(
                    template[y0 : y0 + size, x0 : x0 + size], moving[y0 : y0 + size, x0 : x0 + size], warp,
                    cv2.MOTION_TRANSLATION, (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-4), None, 1,
                )  # fmt: skip
            except cv2.error:
                continue
            ex, ey = float(warp[0, 2]), float(warp[1, 2])
            if max(abs(ex - dx), abs(ey - dy)) < 1.0:
                rows.append((x0 + (size - 1) / 2, y0 + (size - 1) / 2, ex, ey))
    return np.array(rows, np.float64).reshape(-1, 4)


def _fit_axis(position: np.ndarray, shift: np.ndarray, extent: float) -> tuple[float, float] | None:
    """``shift = a * position + b`` by least squares with one pass of outlier rejection (0.5 px); the slope is
    left at 0 when the positions span less than a third of ``extent`` (a scale would be a guess)."""
    keep = np.ones(position.size, bool)
    for _ in range(2):
        if keep.sum() < 2:
            return None
        if np.ptp(position[keep]) < extent / 3:
            a, b = 0.0, float(np.median(shift[keep]))
        else:
            a, b = (float(v) for v in np.polyfit(position[keep], shift[keep], 1))
        keep = np.abs(shift - (a * position + b)) <= 0.5
    if keep.sum() < 2:
        return None
    return a, b


def _register_patches(template: np.ndarray, moving: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    """Scale and shift per axis taking ``template`` onto ``moving`` (3x3, pixel-centre coords, template ->
    moving), from local phase-correlation shifts, in two rounds (the second on ``moving`` brought back by the
    first). ``None`` when fewer than four patches are distinct (smooth pictures locate nothing).

    Local shifts of distinct patches, fitted robustly, replace an affine ECC: on smooth pictures (skies,
    gradients) ECC converges to pixel-sized errors with almost no gain in correlation, while flat patches here
    simply do not vote.
    """
    import cv2

    height, width = template.shape
    total = np.eye(3)
    for round_ in range(2):
        current = moving
        if round_:
            current = cv2.warpAffine(
                moving, total[:2].astype(np.float32), (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
            )
        rows = _patch_shifts(template, current, mask)
        if len(rows) < 4:
            return None
        fx = _fit_axis(rows[:, 0], rows[:, 2], width)
        fy = _fit_axis(rows[:, 1], rows[:, 3], height)
        if fx is None or fy is None:
            return None
        step = np.array([[1.0 + fx[0], 0.0, fx[1]], [0.0, 1.0 + fy[0], fy[1]], [0.0, 0.0, 1.0]])
        total = total @ step
    return total


def refine_spatial(
    initial: SpatialAlignment,
    frame_pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    work_width: int = 960,
) -> SpatialAlignment:
    """Check and refine the black-bar geometry on full-resolution frame pairs of the same pictures.

    ``frame_pairs``: ``(hdr_luma (H, W), sdr_luma (Hs, Ws))`` float32 Y' (PQ BT.2020 Y' and BT.709 Y', any
    monotonic encoding works). The HDR active picture (reduced to at most ``work_width`` px) is registered
    against the SDR frame warped by the current geometry, by the local shifts of distinct patches of band-passed
    rank images (:func:`_register_patches`; the reported correlation is the ECC coefficient of Evangelidis &
    Psarakis 2008 after registration); pairs that disagree with the others are dropped and the rest combined by their
    median. When the registration agrees with the black-bar geometry at the picture corners within 0.75 work-grid
    pixels (at least 0.75 HDR px), the exact black-bar geometry is kept; otherwise the registered scale and
    shift are used and a reason is recorded when the two differ by more than two work-grid pixels.
    """
    import cv2

    hx, hy, hw, hh = initial.hdr_picture
    f = min(1.0, work_width / hw)
    ww, wh = max(16, round(hw * f)), max(16, round(hh * f))
    # edge-coordinate maps: work grid -> HDR frame, HDR frame -> SDR frame (initial geometry)
    work_to_hdr = np.array([[hw / ww, 0, hx], [0, hh / wh, hy], [0, 0, 1.0]])
    px, py = initial.sdr_picture[:2]
    hdr_to_sdr = np.array(
        [
            [1 / initial.scale_x, 0, px - initial.tx / initial.scale_x],
            [0, 1 / initial.scale_y, py - initial.ty / initial.scale_y],
            [0, 0, 1.0],
        ]
    )
    centre = np.array([[1.0, 0, 0.5], [0, 1.0, 0.5], [0, 0, 1.0]])  # centre coords -> edge coords

    def register(pair: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, float] | None:
        """Residual affine of one frame pair on the work grid, as an HDR -> SDR matrix, or None."""
        hdr_luma, sdr_luma = pair
        template = cv2.resize(
            np.ascontiguousarray(hdr_luma[hy : hy + hh, hx : hx + hw], np.float32),
            (ww, wh),
            interpolation=cv2.INTER_AREA,
        )
        sdr = np.asarray(sdr_luma, np.float32)
        pre = np.eye(3)
        shrink = min(1.0, initial.scale_x * f, initial.scale_y * f)
        if shrink < 0.999:  # area pre-filter before warping a larger SDR frame onto the work grid
            size = (max(1, round(sdr.shape[1] * shrink)), max(1, round(sdr.shape[0] * shrink)))
            sdr = cv2.resize(sdr, size, interpolation=cv2.INTER_AREA)
            pre = np.diag([size[0] / sdr_luma.shape[1], size[1] / sdr_luma.shape[0], 1.0])
        # work centre coords -> SDR (resized) centre coords
        m = np.linalg.inv(centre) @ pre @ hdr_to_sdr @ work_to_hdr @ centre
        warped = cv2.warpAffine(sdr, m[:2], (ww, wh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        ones = cv2.warpAffine(
            np.ones(sdr.shape, np.uint8), m[:2], (ww, wh), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
        )
        # compare only where the SDR is neither clipped nor crushed: clipping draws edges the HDR does not have
        usable = (ones > 0) & (warped > 0.02) & (warped < 0.97)
        mask = cv2.erode(usable.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
        if mask.sum() < 0.2 * mask.size or template.std() < MIN_CONTRAST or warped[mask].std() < MIN_CONTRAST:
            return None
        t_rank = _rank_image(template)
        w_rank = _rank_image(warped, mask)
        residual = _register_patches(_band(t_rank, mask, fine=True), _band(w_rank, mask, fine=True), mask)
        if residual is None:
            return None
        # the correlation after registration, on the wide band (the scale the confidence mapping expects)
        t_wide, w_wide = _band(t_rank, mask), _band(w_rank, mask)
        moved = cv2.warpAffine(
            w_wide, residual[:2].astype(np.float32), (ww, wh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        )
        cc = cv2.computeECC(t_wide, moved, mask.astype(np.uint8))
        # true HDR -> SDR (edge coords) = initial HDR->SDR after the residual warp found on the work grid
        residual = centre @ residual @ np.linalg.inv(centre)
        hdr_to_work = np.linalg.inv(work_to_hdr)
        return hdr_to_sdr @ work_to_hdr @ residual @ hdr_to_work, float(cc)

    # the pairs are independent and OpenCV / numpy release the GIL: two at a time
    with ThreadPoolExecutor(max_workers=2) as pool:
        registered = [r for r in pool.map(register, frame_pairs) if r is not None]
    results = [m for m, _ in registered]
    correlations = [c for _, c in registered]
    if not results:
        reasons = (*initial.reasons, "registration of full-resolution frames failed: geometry from black bars only")
        return SpatialAlignment(**{**initial.__dict__, "confidence": min(initial.confidence, 0.4), "reasons": reasons})

    # corners of the SDR picture (edge coords) mapped to HDR px by each registration; robust consensus
    px, py, pw, ph = initial.sdr_picture
    sdr_corners = np.array([[px, py, 1.0], [px + pw, py, 1.0], [px, py + ph, 1.0], [px + pw, py + ph, 1.0]]).T
    per_pair = np.stack([(np.linalg.inv(r) @ sdr_corners)[:2] for r in results])  # (P, 2, 4)
    consensus = np.median(per_pair, axis=0)
    deviation = np.max(np.abs(per_pair - consensus), axis=(1, 2))
    tolerance = max(1.0, 1.0 / f)  # one work-grid pixel, in HDR px
    inliers = deviation <= 2.0 * tolerance
    if inliers.sum() < max(1, (len(results) + 1) // 2):
        inliers = deviation <= np.median(deviation)
    spread = float(np.max(deviation[inliers]))
    h2s = np.median(np.stack([r for r, k in zip(results, inliers, strict=True) if k]), axis=0)
    s2h = np.linalg.inv(h2s)
    init_s2h = np.linalg.inv(hdr_to_sdr)
    disagreement = float(np.max(np.abs((s2h @ sdr_corners) - (init_s2h @ sdr_corners))[:2]))
    correlations = [c for c, k in zip(correlations, inliers, strict=True) if k]
    cc = float(np.median(correlations))
    reasons = list(initial.reasons)
    shear = abs(s2h[0, 1]) + abs(s2h[1, 0])
    confidence = smoothstep(cc, 0.4, 0.7)
    if spread > 2.0 * tolerance or inliers.sum() < 2 <= len(results):
        confidence = min(confidence, 0.4)
        reasons.append(f"registrations of different frames disagree by {float(np.max(deviation)):.1f} HDR px")
    if cc < 0.6:
        reasons.append(f"full-resolution frames correlate weakly after registration ({cc:.2f})")
    if disagreement <= 0.75 * tolerance:  # the exact black-bar geometry is confirmed
        return SpatialAlignment(
            **{
                **initial.__dict__,
                "confidence": confidence,
                "refined": True,
                "residual": disagreement,
                "correlation": cc,
                "reasons": tuple(reasons),
            }
        )
    if disagreement > 2.0 * tolerance:
        reasons.append(
            f"the black-bar picture area and the registered geometry differ by {disagreement:.1f} HDR px; "
            "using the registered geometry"
        )
    if shear > 0.01:
        reasons.append(f"the registered geometry is rotated or sheared ({shear:.3f}); only scale and shift are used")
    sx, sy = float(s2h[0, 0]), float(s2h[1, 1])
    return SpatialAlignment(
        sdr_size=initial.sdr_size,
        hdr_size=initial.hdr_size,
        sdr_picture=initial.sdr_picture,
        hdr_picture=initial.hdr_picture,
        scale_x=sx,
        scale_y=sy,
        tx=float(s2h[0, 2] + sx * px),
        ty=float(s2h[1, 2] + sy * py),
        confidence=confidence,
        refined=True,
        residual=disagreement,
        correlation=cc,
        reasons=tuple(reasons),
    )


def refine(
    alignment: Alignment,
    matches: FrameMatches,
    read_lumas: Any,
    *,
    count: int = 3,
    allowed_sdr: Any = None,
) -> Alignment:
    """The one refinement: :func:`refine_spatial` on ``count`` well matched frame pairs; returns the alignment
    with the refined geometry, its confidence combined by :func:`~datakit.pairs.align.confidence.
    overall_confidence` (the rule :func:`~datakit.pairs.align.confidence.assemble` uses).

    ``read_lumas(picks)``: for ``[(sdr_index, hdr_index), ...]`` returns ``[(hdr_luma, sdr_luma), ...]``
    full-resolution Y' (from a decoder, or from frames a pass kept). ``allowed_sdr``: only pick among these
    SDR frames (``None``: any matched frame).
    """
    picks = pick_refinement_frames(matches, count, allowed_sdr)
    if not picks:
        return alignment
    spatial = refine_spatial(alignment.spatial, read_lumas(picks))
    reasons = alignment.temporal.reasons + spatial.reasons
    return Alignment(
        alignment.temporal, spatial, overall_confidence(alignment.temporal.confidence, spatial.confidence), reasons
    )


refine_alignment = refine  # the name earlier versions used


def pick_refinement_frames(matches: FrameMatches, count: int, allowed_sdr: Any = None) -> list[tuple[int, int]]:
    """Up to ``count`` matched (sdr, hdr) frame pairs, one per equal part of the sequence: the most textured
    among the well matched ones (texture conditions the registration)."""
    usable = (matches.hdr_index >= 0) & np.isfinite(matches.similarity)
    if allowed_sdr is not None:
        usable &= np.isin(matches.sdr_index, np.fromiter(allowed_sdr, np.int64))
    good = np.flatnonzero(usable)
    if good.size == 0:
        return []
    sims = matches.similarity[good]
    good = good[sims >= np.quantile(sims, 0.5)]
    picks = []
    for part in np.array_split(good, min(count, good.size)):
        if part.size:
            k = part[int(np.argmax(matches.texture[part]))]
            picks.append((int(matches.sdr_index[k]), int(matches.hdr_index[k])))
    return picks
