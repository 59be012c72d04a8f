"""The randomized, seeded degradation chain HDR clip -> LDR clip, and the HDR target encoding.

:func:`sample_degradation` draws one :class:`DegradationParams` from recipe ranges
(:mod:`datakit.synth.params`); :func:`apply_degradation` is then a pure function of the clip and
the parameters (the noise generator is seeded from ``params.seed``), so the same parameters give
identical bytes. Steps, in order (``T`` frames):

1. exposure: gain ``2**exposure_ev[t]`` on ``rgb_nits`` (BT.2020), a slow camera exposure drift;
2. tone mapping (:mod:`datakit.synth.tonemap`) -> SDR display light, BT.2020, 1.0 = SDR peak;
3. gamut mapping BT.2020 -> BT.709 (:mod:`datakit.synth.gamut_map`, ``clip`` or ``soft``);
4. white-balance and saturation drift (linear BT.709, interpolated from start to end of clip);
5. optical blur (Gaussian, linear light);
6. signal-dependent sensor noise, Poisson-Gaussian: ``shot * Poisson(x / shot) + N(0, read^2)``;
7. clip to [0, 1] and SDR encoding: inverse BT.1886 EOTF (with a display black level), pure
   gamma 2.4 or 2.2, the BT.709 camera OETF or the sRGB inverse EOTF;
8. 8-bit quantization of R'G'B' (``round(255 v)``);
9. chroma subsampling: BT.709 Y'CbCr, limited range, 4:2:0 and back (:mod:`datakit.color.ycbcr`);
10. a real codec pass (H.264, HEVC, VP9 or AV1: libx264, libx265, libvpx-vp9, libsvtav1 at a CRF
    drawn per codec, through PyAV), which also carries the 4:2:0 conversion of step 9 when both are
    enabled (one subsampling, as in a real encode).

The result is ``rgb_sdr`` as uint8 codes ``(T, H, W, 3)`` (BT.709 primaries; the transfer is
the sampled one). :func:`grade_and_degrade` makes a whole pair: it grades the scene clip into its HDR
master (:mod:`datakit.synth.mastering`, the target) and runs this chain on the master; :func:`hdr_target`
is the plain PQ encoding of scene light.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

from datakit.color.gamut import apply_rgb_matrix, luminance_weights
from datakit.color.transfer import (
    PQ_PEAK_NITS,
    bt709_oetf,
    bt1886_inverse_eotf,
    gamma_inverse_eotf,
    srgb_inverse_eotf,
    st2084_inverse_eotf,
)
from datakit.color.ycbcr import planes_to_rgb, rgb_to_planes
from datakit.errors import InputError
from datakit.io.writer import X265DecodeTimes
from datakit.synth.exposure import sample_exposure_curve
from datakit.synth.gamut_map import gamut_map
from datakit.synth.params import normalized_weights, resolve_ranges
from datakit.synth.tonemap import TONEMAP_OPERATORS, sample_tonemap_params

__all__ = [
    "DegradationParams",
    "apply_degradation",
    "chroma_roundtrip",
    "codec_roundtrip",
    "encode_sdr",
    "encoder_options",
    "grade_and_degrade",
    "hdr_target",
    "sample_degradation",
]

_FPS = 25
_SUBSAMPLING = {"yuv420p": "420", "yuv444p": "444"}


@dataclass
class DegradationParams:
    """Every random choice of one degradation; JSON-serialisable with :meth:`to_dict`.

    ``exposure_ev`` has one value per frame (or one for all). ``saturation`` and the log2
    white-balance gains ``wb_red`` / ``wb_blue`` are ``(start, end)`` pairs interpolated over the
    clip. ``noise_shot`` / ``noise_read`` / ``blur_sigma`` of 0 disable those steps; ``codec``
    ``None`` disables the codec pass. ``seed`` seeds the noise.
    """

    seed: int
    exposure_ev: list[float]
    tonemap: str
    tonemap_params: dict[str, Any] = field(default_factory=dict)
    gamut: str = "clip"
    gamut_threshold: float = 0.8
    transfer: str = "bt1886"
    bt1886_black: float = 0.0
    saturation: tuple[float, float] = (1.0, 1.0)
    wb_red: tuple[float, float] = (0.0, 0.0)
    wb_blue: tuple[float, float] = (0.0, 0.0)
    noise_shot: float = 0.0
    noise_read: float = 0.0
    blur_sigma: float = 0.0
    chroma_subsampling: bool = True
    codec: str | None = "libx264"
    crf: int = 23
    preset: str = "veryfast"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists)."""
        d = asdict(self)
        for key in ("saturation", "wb_red", "wb_blue"):
            d[key] = list(d[key])
        d["exposure_ev"] = [float(v) for v in d["exposure_ev"]]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DegradationParams:
        """Inverse of :meth:`to_dict`."""
        kw = dict(d)
        for key in ("saturation", "wb_red", "wb_blue"):
            if key in kw:
                kw[key] = tuple(kw[key])
        return cls(**kw)


def _choose(weights: Mapping[str, float], rng: np.random.Generator, where: str) -> str:
    probs = normalized_weights(weights, list(weights), where)
    names = list(probs)
    return names[int(rng.choice(len(names), p=np.array([probs[n] for n in names])))]


def sample_degradation(
    rng: np.random.Generator, ranges: Mapping[str, Any] | None = None, n_frames: int = 1
) -> DegradationParams:
    """Draw a :class:`DegradationParams` within ``ranges`` (defaults merged in, validated).

    ``n_frames`` sets the length of the exposure curve (:func:`sample_exposure_curve`). Draws
    happen in a fixed order, so the result depends only on the generator state and ``ranges``.
    Raises :class:`~datakit.errors.RecipeError` for invalid ranges.
    """
    r = resolve_ranges(ranges)

    def uni(spec: list[float]) -> float:
        return float(rng.uniform(spec[0], spec[1]))

    def happens(p: float) -> bool:
        return bool(rng.random() < p)

    seed = int(rng.integers(0, 2**31 - 1))
    ev = sample_exposure_curve(n_frames, rng, tuple(r["exposure"]["ev_range"]), r["exposure"]["max_ev_step"])
    op = _choose(r["tonemap"]["weights"], rng, "tonemap.weights")
    op_params = sample_tonemap_params(op, rng, r["tonemap"].get(op, {}))
    gamut = _choose(r["gamut"]["weights"], rng, "gamut.weights")
    threshold = uni(r["gamut"]["threshold"])
    transfer = _choose(r["transfer"]["weights"], rng, "transfer.weights")
    black = uni(r["transfer"]["bt1886_black"]) if transfer == "bt1886" else 0.0
    sat0 = uni(r["saturation"]["start"])
    sat1 = sat0 + uni(r["saturation"]["drift"])
    wb_r0, wb_b0 = uni(r["white_balance"]["start"]), uni(r["white_balance"]["start"])
    wb_r1, wb_b1 = wb_r0 + uni(r["white_balance"]["drift"]), wb_b0 + uni(r["white_balance"]["drift"])
    noisy = happens(r["noise"]["p"])
    shot, read = uni(r["noise"]["shot"]), uni(r["noise"]["read"])
    blurred = happens(r["blur"]["p"])
    sigma = uni(r["blur"]["sigma"])
    chroma = happens(r["chroma"]["p"])
    coded = happens(r["codec"]["p"])
    crf_spec, codecs = r["codec"]["crf"], r["codec"]["codec"]
    if isinstance(crf_spec, Mapping):  # a CRF range per codec: the codec first
        codec = codecs[int(rng.integers(len(codecs)))]
        crf = int(rng.integers(crf_spec[codec][0], crf_spec[codec][1] + 1))
    else:  # one range for every codec: the order of draws of the recipes written before per-codec ranges
        crf = int(rng.integers(crf_spec[0], crf_spec[1] + 1))
        codec = codecs[int(rng.integers(len(codecs)))]
    preset = r["codec"]["preset"][int(rng.integers(len(r["codec"]["preset"])))]
    return DegradationParams(
        seed=seed,
        exposure_ev=[float(v) for v in ev],
        tonemap=op,
        tonemap_params=op_params,
        gamut=gamut,
        gamut_threshold=threshold,
        transfer=transfer,
        bt1886_black=black,
        saturation=(sat0, max(sat1, 0.0)),
        wb_red=(wb_r0, wb_r1),
        wb_blue=(wb_b0, wb_b1),
        noise_shot=shot if noisy else 0.0,
        noise_read=read if noisy else 0.0,
        blur_sigma=sigma if blurred else 0.0,
        chroma_subsampling=chroma,
        codec=codec if coded else None,
        crf=crf,
        preset=preset,
    )


def encode_sdr(rgb_display_709: np.ndarray, transfer: str, black: float = 0.0) -> np.ndarray:
    """Linear SDR display light (BT.709, [0, 1]) -> non-linear ``rgb_sdr`` signal with ``transfer``.

    ``bt1886``: inverse ITU-R BT.1886 EOTF for a display with white 1 and black ``black`` (light at
    or below black -> 0); ``gamma24`` / ``gamma22``: pure power laws; ``bt709``: the ITU-R BT.709
    camera OETF; ``srgb``: the IEC 61966-2-1 inverse EOTF. Output clipped to [0, 1], float32.
    """
    x = np.clip(np.asarray(rgb_display_709, dtype=np.float32), 0.0, 1.0)
    if transfer == "bt1886":
        v = bt1886_inverse_eotf(np.maximum(x, np.float32(black)), white_nits=1.0, black_nits=black)
    elif transfer == "gamma24":
        v = gamma_inverse_eotf(x, 2.4)
    elif transfer == "gamma22":
        v = gamma_inverse_eotf(x, 2.2)
    elif transfer == "bt709":
        v = bt709_oetf(x)
    elif transfer == "srgb":
        v = srgb_inverse_eotf(x)
    else:
        raise ValueError(f"unknown SDR transfer {transfer!r}")
    return np.clip(np.asarray(v, dtype=np.float32), 0.0, 1.0)


def _even_pad(clip: np.ndarray, multiple: int = 2) -> np.ndarray:
    """Pad H and W up to multiples of ``multiple`` (even: 4:2:0 and the encoders need it) by edge replication."""
    h, w = clip.shape[1:3]
    return np.pad(clip, ((0, 0), (0, -h % multiple), (0, -w % multiple), (0, 0)), mode="edge")


_PAD_MULTIPLE = {"libx265": 64}
"""Encoders fed pictures padded to a multiple of this size: PyAV 18.1's bundled x265 corrupted the heap (glibc
``malloc assertion``, later aborts) on 40- and 48-pixel-wide pictures here, never on widths padded to its 64-pixel
CTU; the padding is edge replication, cropped after decoding, as encoders pad internally."""


def chroma_roundtrip(clip_uint8: np.ndarray, subsampling: str = "420") -> np.ndarray:
    """``rgb_sdr`` uint8 ``(T, H, W, 3)`` -> BT.709 Y'CbCr limited-range 8-bit codes, chroma
    subsampled (``420``/``422``, left siting), and back to uint8 R'G'B' (BT.709 matrix)."""
    clip = np.asarray(clip_uint8)
    out = np.empty_like(clip)
    for t, frame in enumerate(clip):
        y, u, v = rgb_to_planes(frame.astype(np.float32) / 255.0, "bt709", 8, False, subsampling, "left")
        rgb = planes_to_rgb(y, u, v, "bt709", 8, False, "left")
        out[t] = np.rint(rgb * 255.0).astype(np.uint8)
    return out


def encoder_options(codec: str, crf: int, preset: str, threads: int = 1) -> dict[str, str]:
    """PyAV options of ``codec`` at constant rate factor ``crf``, with x264's ``preset`` name mapped to the speed
    settings of the other encoders (libvpx-vp9 ``cpu-used`` 8 (ultrafast) .. 0 (veryslow), ``deadline=good``,
    constant quality; SVT-AV1 ``preset`` 12 .. 4) and every encoder held to ``threads`` threads."""
    from datakit.synth.params import CODEC_MAX_CRF, CODECS, PRESETS

    if codec not in CODECS:
        raise InputError(f"codec_roundtrip: unknown codec {codec!r} (known: {', '.join(CODECS)})")
    if not 0 <= int(crf) <= CODEC_MAX_CRF[codec]:
        raise InputError(f"codec_roundtrip: {codec} CRF must be in 0..{CODEC_MAX_CRF[codec]}, got {crf}")
    speed = PRESETS.index(preset) if preset in PRESETS else PRESETS.index("veryfast")
    opts = {"crf": str(int(crf))}
    if codec in ("libx264", "libx265"):
        opts["preset"] = preset
    if codec == "libx265":
        opts["x265-params"] = f"log-level=error:pools={threads}:frame-threads={threads}"
    elif codec == "libvpx-vp9":
        opts.update({"deadline": "good", "cpu-used": str(8 - speed), "row-mt": "0", "b": "0"})
    elif codec == "libsvtav1":
        opts.update({"preset": str(12 - speed), "svtav1-params": f"lp={threads}"})
    return opts


def codec_roundtrip(
    clip_uint8: np.ndarray,
    crf: int,
    codec: str = "libx264",
    *,
    preset: str = "veryfast",
    subsampling: str = "420",
    threads: int = 1,
    fps: int = _FPS,
) -> np.ndarray:
    """Encode ``rgb_sdr`` uint8 ``(T, H, W, 3)`` with a real encoder in memory and decode it back.

    R'G'B' is converted to BT.709 Y'CbCr limited-range 8-bit planes by :mod:`datakit.color.ycbcr` (4:2:0
    left-sited, or 4:4:4 with ``subsampling="444"``; SVT-AV1 takes 4:2:0 only), encoded by PyAV (``libx264``,
    ``libx265``, ``libvpx-vp9`` or ``libsvtav1``: H.264, HEVC, VP9, AV1, at constant rate factor ``crf``, options
    from :func:`encoder_options`) into an in-memory MP4, decoded (AV1 by libdav1d), and converted back with the
    same matrix. Odd sizes are edge-padded for the encoder and cropped. ``fps`` is the frame rate written in the
    stream (rate control depends on it a little). Single-threaded by default, so the output bytes are
    reproducible: x264's output depends on its thread count (measured: up to 5.6 code values mean difference
    between 1 and 4 threads), which is why this does not go through :class:`datakit.io.writer.SDRWriter`
    (encoder threads left to ffmpeg's automatic choice). All four encoders gave the same bytes run after run
    here with one thread (PyAV 18.1's bundled builds).
    """
    import av

    clip = np.asarray(clip_uint8)
    if clip.dtype != np.uint8 or clip.ndim != 4 or clip.shape[-1] != 3:
        raise InputError(f"codec_roundtrip: expected uint8 (T, H, W, 3), got {clip.dtype} {clip.shape}")
    opts = encoder_options(codec, crf, preset, threads)
    if codec == "libsvtav1":
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole configuration at info level otherwise
    n, h, w = clip.shape[:3]
    padded = _even_pad(clip, _PAD_MULTIPLE.get(codec, 2))
    ph, pw = padded.shape[1:3]
    # SVT-AV1 encodes 4:2:0 only (its main profile): a 4:4:4 request is subsampled like the others' 4:2:0.
    pix_fmt = "yuv420p" if codec == "libsvtav1" else {"420": "yuv420p", "444": "yuv444p"}[subsampling]
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=int(fps))
        stream.width, stream.height, stream.pix_fmt = pw, ph, pix_fmt
        cc = stream.codec_context
        cc.color_range, cc.colorspace = 1, 1  # MPEG (limited) range, BT.709 matrix
        cc.color_primaries, cc.color_trc = 1, 1
        cc.thread_count = threads
        cc.options = opts
        # libx265's packets carry a garbage dts, which the MP4 muxer refuses now and then on short clips
        times = X265DecodeTimes(container.mux) if codec == "libx265" else None
        mux = container.mux if times is None else times.add
        for frame in padded:
            planes = rgb_to_planes(frame.astype(np.float32) / 255.0, "bt709", 8, False, _SUBSAMPLING[pix_fmt], "left")
            vf = av.VideoFrame(pw, ph, pix_fmt)
            for plane, data in zip(vf.planes, planes, strict=True):
                rows = np.frombuffer(plane, dtype=np.uint8).reshape(-1, plane.line_size)
                rows[: data.shape[0], : data.shape[1]] = data
            for packet in stream.encode(vf):
                mux(packet)
        for packet in stream.encode(None):
            mux(packet)
        if times is not None:
            times.flush()
    buf.seek(0)
    out = np.empty((n, h, w, 3), dtype=np.uint8)
    count = 0
    with av.open(buf, mode="r") as container:
        container.streams.video[0].codec_context.thread_count = threads
        for frame in container.decode(video=0):
            if count >= n:
                break
            y, u, v = (
                np.frombuffer(plane, dtype=np.uint8).reshape(-1, plane.line_size)[: plane.height, : plane.width]
                for plane in frame.planes
            )
            rgb = planes_to_rgb(y, u, v, "bt709", 8, False, "left")
            out[count] = np.rint(rgb[:h, :w] * 255.0).astype(np.uint8)
            count += 1
    if count != n:
        raise InputError(f"codec_roundtrip: decoded {count} frames, expected {n}")
    return out


def apply_degradation(rgb_nits_clip: np.ndarray, params: DegradationParams, *, fps: int = _FPS) -> np.ndarray:
    """Degrade an HDR clip into an SDR clip: ``rgb_nits`` (BT.2020, cd/m^2) -> ``rgb_sdr`` uint8.

    Input ``(T, H, W, 3)`` (or one ``(H, W, 3)`` frame, returned as such); output uint8 codes of
    the same shape, BT.709 primaries, transfer ``params.transfer``. Deterministic for a given
    ``params`` (see the module docstring for the steps). ``fps``: frame rate of the codec pass.
    """
    x = np.asarray(rgb_nits_clip, dtype=np.float32)
    single = x.ndim == 3
    if single:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3:
        raise InputError(f"apply_degradation: expected (T, H, W, 3) rgb_nits, got shape {x.shape}")
    n = x.shape[0]
    ev = np.asarray(params.exposure_ev, dtype=np.float32)
    if ev.size == 1:
        ev = np.full(n, ev.item(), dtype=np.float32)
    if ev.shape != (n,):
        raise ValueError(f"exposure_ev has {ev.size} values for a clip of {n} frames")
    # 1-3: exposure, tone mapping (BT.2020 display light), gamut mapping to BT.709.
    x = x * np.exp2(ev)[:, None, None, None]
    disp = TONEMAP_OPERATORS[params.tonemap](x, **params.tonemap_params)
    lin = gamut_map(disp, params.gamut, params.gamut_threshold)
    # 4: white balance (luminance-preserving R/B gains) and saturation around luminance.
    w709 = luminance_weights("bt709").astype(np.float32)
    f = np.linspace(0.0, 1.0, n, dtype=np.float32) if n > 1 else np.zeros(1, np.float32)
    gains = np.stack(
        [
            np.exp2(params.wb_red[0] + (params.wb_red[1] - params.wb_red[0]) * f),
            np.ones(n, np.float32),
            np.exp2(params.wb_blue[0] + (params.wb_blue[1] - params.wb_blue[0]) * f),
        ],
        axis=1,
    ).astype(np.float32)
    gains /= (gains @ w709)[:, None]
    sat = (params.saturation[0] + (params.saturation[1] - params.saturation[0]) * f).astype(np.float32)
    # Per frame one 3x3 matrix: saturation around BT.709 luminance, S = s I + (1 - s) 1 w^T, after the gains G.
    ones_w = np.outer(np.ones(3), w709.astype(np.float64))
    lin = np.stack(
        [
            apply_rgb_matrix(frame, (s * np.eye(3) + (1.0 - s) * ones_w) @ np.diag(g))
            for frame, s, g in zip(lin, sat.astype(np.float64), gains.astype(np.float64), strict=True)
        ]
    )
    np.maximum(lin, 0.0, out=lin)
    # 5: optical blur.
    if params.blur_sigma > 0:
        lin = np.stack([cv2.GaussianBlur(fr, (0, 0), params.blur_sigma, borderType=cv2.BORDER_REFLECT) for fr in lin])
    # 6: Poisson-Gaussian sensor noise, seeded.
    rng = np.random.default_rng(params.seed)
    if params.noise_shot > 1e-9:
        lam = np.clip(lin, 0.0, None) / params.noise_shot
        lin = (rng.poisson(lam).astype(np.float32) * np.float32(params.noise_shot)).astype(np.float32)
    if params.noise_read > 0:
        lin = lin + rng.normal(0.0, params.noise_read, size=lin.shape).astype(np.float32)
    # 7-8: SDR encoding and 8-bit quantization.
    sig = encode_sdr(lin, params.transfer, params.bt1886_black)
    codes = np.rint(sig * 255.0).astype(np.uint8)
    # 9-10: chroma subsampling and codec.
    if params.codec is not None:
        sub = "420" if params.chroma_subsampling else "444"
        codes = codec_roundtrip(codes, params.crf, params.codec, preset=params.preset, subsampling=sub, fps=fps)
    elif params.chroma_subsampling:
        codes = chroma_roundtrip(codes, "420")
    return codes[0] if single else codes


def grade_and_degrade(
    rgb_nits_scene: np.ndarray, rng: np.random.Generator, ranges: Mapping[str, Any] | None, *, fps: int = _FPS
) -> tuple[np.ndarray, np.ndarray, DegradationParams, dict[str, Any]]:
    """One pair from a scene clip ``rgb_nits`` (BT.2020, ``(T, H, W, 3)``): ``(sdr, hdr, params, mastering)``.

    Draws the mastering grade (:func:`datakit.synth.mastering.sample_mastering`) and then the degradation, grades
    the clip into its HDR master (the target: uint16 PQ codes, never above the drawn peak) and degrades the
    master into the SDR clip (uint8), as HDR-to-SDR conversions of a master do; the tone-mapping operator's
    input-peak parameter is set to the mastering peak (:func:`datakit.synth.tonemap.bind_master_peak`), except
    for scene-light targets (grade ``scene``), where the operator keeps its drawn parameters.
    ``mastering`` records the grade, what it did, the sample's SMPTE ST 2086 values and its MaxCLL / MaxFALL.
    """
    from datakit.synth.mastering import apply_mastering, content_light_level, master_codes, sample_mastering
    from datakit.synth.tonemap import bind_master_peak

    resolved = resolve_ranges(ranges)
    grade = sample_mastering(rng, resolved)
    params = sample_degradation(rng, resolved, n_frames=len(rgb_nits_scene))
    master, info = apply_mastering(rgb_nits_scene, grade)
    if grade.grade != "scene":
        bound = bind_master_peak(params.tonemap, params.tonemap_params, grade.peak_nits, grade.primaries)
        params = DegradationParams(**{**params.to_dict(), "tonemap_params": bound})
    hdr = master_codes(master, grade.peak_nits)
    sdr = apply_degradation(master, params, fps=fps)
    light = content_light_level(hdr)
    record = {
        **grade.to_dict(),
        **info,
        "st2086": grade.display().to_dict(),
        "max_cll": light.max_cll,
        "max_fall": light.max_fall,
    }
    return sdr, hdr, params, record


def hdr_target(rgb_nits_clip: np.ndarray) -> np.ndarray:
    """HDR training target: ``rgb_nits`` (BT.2020) -> ``rgb_pq`` float32 (SMPTE ST 2084 code values).

    Light is clipped to [0, 10000] cd/m^2 first, so the codes lie in [PQ(0), 1].
    """
    x = np.clip(np.asarray(rgb_nits_clip, dtype=np.float32), 0.0, PQ_PEAK_NITS)
    return np.asarray(st2084_inverse_eotf(x), dtype=np.float32)
