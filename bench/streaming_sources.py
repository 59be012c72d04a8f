"""HDR10/SDR pairs that look like users' sources: real photographs, 3-8 s shots with hard cuts, delivery-style GOPs.

Each title is a sequence of shots, each a camera pan over one of the CC0 HDR images in ``/work/shared/data/hdri``
(read with :func:`datakit.io.images.read_hdr_image`, BT.709 -> BT.2020 linear light scaled to absolute cd/m^2,
median luminance 10-30 cd/m^2, at most 4,000), graded once per shot by the synthesizer's mastering grade (the
ITU-R BT.2390 EETF onto a 1,000 cd/m^2 P3-D65 mastering display, :func:`datakit.synth.mastering.apply_mastering`),
converted to both signals and moved along a straight pan (:func:`datakit.synth.warp.homography_from_params`, one
frame at a time), slowly (about 0.01-0.04 frame widths per second) or fast (0.15-0.35). Consecutive shots show
different images: every shot change is a hard cut. Both sides get the same film grain field on Y'.

- HDR: SMPTE ST 2084 PQ, BT.2020, 10-bit, limited range: HEVC Main10 by libx265 (``ultrafast`` with x265's default
  scene-cut detection, 4 adaptive B-frames and open GOPs turned back on; VUI tags, ST 2086 of the mastering display,
  MaxCLL the display's peak and MaxFALL estimated from the graded images) or 10-bit AV1 by SVT-AV1 (preset 12).
- SDR: the Hable filmic operator (:func:`datakit.synth.tonemap.hable`, not the demo's chain) on the same master,
  BT.2020 -> BT.709 clipped, the inverse BT.1886 EOTF (100 cd/m^2), 8-bit BT.709: H.264 by libx264 (``veryfast``:
  B-frames and scene cuts on) or 8-bit AV1 by SVT-AV1 (the same codec as the HDR side). The SDR starts
  :data:`OFFSET_FRAMES` frames later (SDR frame ``k`` shows HDR frame ``k + OFFSET_FRAMES``), 24 fps both.
- GOPs: a keyframe at least every ``gop_seconds`` (2 s or 5 s: ``keyint``), more at cuts where the encoder puts
  them (x265 and x264 do; SVT-AV1 at preset 12 did not here). Y'CbCr comes from
  :func:`datakit.color.ycbcr.rgb_to_planes` (the matrix is ours, never swscale's).

Kinds (:data:`KINDS`): ``hevc-gop2``, ``hevc-gop5``, ``av1`` (1080p, ``--seconds`` long, 60 by default), ``4k``
(3840x2160 hevc-gop2, 10 s: a 4K frame took about 8 s to render on this shared machine) and ``demo`` (the
project's demo renderer as ``bench_build.py`` always used it, so issue 13's figures stay comparable). Frames are
rendered and encoded one at a time (a 4K float frame is 100 MB).

Run: ``python bench/streaming_sources.py --work DIR [--kinds hevc-gop2 ...] [--seconds 60]``. Each kind goes to
``DIR/<kind>/`` (``title_hdr10.mkv`` + ``title_sdr.mp4`` or ``.mkv``, the build's pairs folder) with
``source.json`` (what was rendered, the shots, the render time) and ``pairs.txt`` (the two paths), written last:
a complete folder is reused as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

HDRI = Path(os.environ.get("DATAKIT_TEST_HDRI", "/work/shared/data/hdri"))
FPS = Fraction(24)
OFFSET_FRAMES = 3  # SDR frame k shows HDR frame k + 3
MASTERING_PEAK_NITS = 1000.0
SDR_WHITE_NITS = 100.0
GRAIN = 0.02  # standard deviation of the multiplicative film grain
SLOW_SPEED, FAST_SPEED = (0.01, 0.04), (0.15, 0.35)  # frame widths per second
SLOW_SECONDS, FAST_SECONDS = (4.0, 8.0), (3.0, 5.0)  # shot lengths: 3-8 s
MAX_TRAVEL = 1.0  # frame widths a shot moves at most (bounds the image the pan needs)


@dataclass(frozen=True)
class SourceKind:
    """How one kind of title is rendered and encoded."""

    name: str
    codec: str  # "hevc": HDR libx265 Main10 + SDR libx264; "av1": SVT-AV1 10-bit + 8-bit
    gop_seconds: float
    size: tuple[int, int]  # (width, height)
    seconds: float | None = None  # None: --seconds
    x265_preset: str = "ultrafast"
    x264_preset: str = "veryfast"
    svtav1_preset: int = 12
    crf_hdr: int = 20
    crf_sdr: int = 20
    seed: int = 17

    @property
    def keyint(self) -> int:
        return round(self.gop_seconds * FPS)


KINDS: dict[str, SourceKind] = {
    "hevc-gop2": SourceKind("hevc-gop2", "hevc", 2.0, (1920, 1080)),
    "hevc-gop5": SourceKind("hevc-gop5", "hevc", 5.0, (1920, 1080)),
    "av1": SourceKind("av1", "av1", 2.0, (1920, 1080), crf_hdr=32, crf_sdr=32),
    "4k": SourceKind("4k", "hevc", 2.0, (3840, 2160), seconds=10.0),
}
KIND_NAMES = (*KINDS, "demo")


@dataclass(frozen=True)
class Shot:
    """One shot: an image panned in a straight line (constant framing), ``speed`` frame widths per second."""

    image: str
    frames: int
    speed: float
    angle_deg: float
    log_zoom: float
    median_nits: float
    fast: bool


def plan_shots(total_frames: int, rng: np.random.Generator) -> list[Shot]:
    """Shots of 3-8 s alternating slow and fast motion (which comes first is drawn), each a different image from
    the one before; the last shot takes what is left (it is merged into the previous one when under 3 s)."""
    images = sorted(p.name for p in HDRI.glob("*.exr"))
    if len(images) < 2:
        raise SystemExit(f"{HDRI}: need at least two .exr images")
    shots: list[Shot] = []
    fast = bool(rng.integers(2))
    left, last_image = total_frames, ""
    while left > 0:
        lo, hi = FAST_SECONDS if fast else SLOW_SECONDS
        frames = min(left, round(float(rng.uniform(lo, hi)) * float(FPS)))
        if left - frames < round(SLOW_SECONDS[0] * float(FPS) * 0.75):
            frames = left
        image = str(rng.choice([name for name in images if name != last_image]))
        speed = float(rng.uniform(*(FAST_SPEED if fast else SLOW_SPEED)))
        speed = min(speed, MAX_TRAVEL * float(FPS) / frames)
        angle = float(rng.uniform(-20.0, 20.0)) + (180.0 if rng.integers(2) else 0.0)
        shots.append(Shot(image, frames, speed, angle, float(rng.uniform(-0.1, 0.1)), float(rng.uniform(10, 30)), fast))
        left, last_image, fast = left - frames, image, not fast
    return shots


def graded_image(shot: Shot) -> np.ndarray:
    """The shot's image as a master: BT.2020 ``rgb_nits`` graded onto the mastering display (<= its peak)."""
    from datakit.color.gamut import convert_gamut, luminance_weights
    from datakit.io.images import read_hdr_image
    from datakit.synth.mastering import apply_mastering

    image = read_hdr_image(HDRI / shot.image)
    rgb = np.maximum(np.asarray(convert_gamut(image.rgb_linear, image.primaries, "bt2020"), np.float32), 0.0)
    lum = rgb @ luminance_weights("bt2020").astype(np.float32)
    rgb = np.minimum(rgb * np.float32(shot.median_nits / max(float(np.median(lum)), 1e-6)), 4000.0)
    master, _ = apply_mastering(rgb, mastering_grade())
    return master


def mastering_grade() -> Any:
    """The title's grade: ITU-R BT.2390 EETF onto a 1,000 cd/m^2 P3-D65 mastering display (SMPTE ST 2086)."""
    from datakit.synth.mastering import MasteringGrade

    return MasteringGrade("bt2390_eetf", MASTERING_PEAK_NITS, 0.0001, "p3_d65")


def pq_signal(rgb_nits: np.ndarray) -> np.ndarray:
    """Master ``rgb_nits`` -> ``rgb_pq`` (SMPTE ST 2084 code values in [0, 1], BT.2020 R'G'B')."""
    from datakit.color.transfer import st2084_inverse_eotf

    return np.clip(np.asarray(st2084_inverse_eotf(rgb_nits), np.float32), 0.0, 1.0)


def sdr_signal(rgb_nits: np.ndarray) -> np.ndarray:
    """Master ``rgb_nits`` (BT.2020) -> ``rgb_sdr`` BT.709 R'G'B' in [0, 1]: Hable (display light, 1.0 = the
    100 cd/m^2 peak), BT.2020 -> BT.709 with negative components clipped, the inverse BT.1886 EOTF."""
    from datakit.color.gamut import convert_gamut
    from datakit.color.transfer import bt1886_inverse_eotf
    from datakit.synth.tonemap import hable

    display = np.clip(np.asarray(convert_gamut(hable(rgb_nits), "bt2020", "bt709"), np.float32), 0.0, 1.0)
    return np.clip(np.asarray(bt1886_inverse_eotf(display, white_nits=1.0), np.float32), 0.0, 1.0)


def _trajectory(shot: Shot) -> np.ndarray:
    """(N, 3, 3) homographies of a straight pan (normalized coordinates, see :mod:`datakit.synth.warp`)."""
    from datakit.synth.warp import homography_from_params

    travel = shot.speed * np.arange(shot.frames) / float(FPS)
    a = np.deg2rad(shot.angle_deg)
    dx, dy = np.cos(a) * travel, np.sin(a) * travel * 0.25  # mostly horizontal: the images are 2:1
    return np.stack([homography_from_params(x, y, shot.log_zoom, 0.0) for x, y in zip(dx, dy, strict=True)])


def _pan_extent(hs: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest normalized source coordinates the frame's corners reach along a straight pan (its
    first and last frames bound it)."""
    w, h = size
    corners = np.array([[x, y * h / w, 1.0] for x in (-0.5, 0.5) for y in (-0.5, 0.5)])
    pts = np.einsum("nij,kj->nki", hs[[0, -1]], corners)
    pts = (pts[..., :2] / pts[..., 2:]).reshape(-1, 2)
    return pts.min(axis=0), pts.max(axis=0)


def _enlarged(master: np.ndarray, hs: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The graded image enlarged (bicubic, clamped to the grade's range) so that the pan fits with at most 1.5x
    more upsampling in the warp (the CC0 images are 1024x512)."""
    w, h = size
    lo, hi = _pan_extent(hs, size)
    src_h, src_w = master.shape[:2]
    need_w, need_h = (hi - lo) * w + 2 * (MARGIN + 1)
    factor = max(need_w / src_w / 1.5, need_h / src_h / 1.5, (w + 8) / src_w, (h + 8) / src_h, 1.0)
    big = cv2.resize(master, (round(src_w * factor), round(src_h * factor)), interpolation=cv2.INTER_CUBIC)
    return np.clip(big, 0.0, MASTERING_PEAK_NITS)


MARGIN = 1.5  # source pixels kept inside the image for bilinear sampling (half support + 0.5)


def pixel_maps(hs: np.ndarray, size: tuple[int, int], source_shape: tuple[int, ...]) -> np.ndarray:
    """(N, 3, 3) output-pixel -> source-pixel maps of a pan, with the conventions of :mod:`datakit.synth.warp`
    (normalized output coordinates, ``p_src = C + k L v``): the largest scale ``k <= 1`` and the centred crop ``C``
    that keep every frame inside the image (no border can appear), as :func:`render_clip` fits them; fitted once
    per shot, so the frames can be warped one at a time."""
    w, h = size
    size_l = float(max(w, h))
    a_dst = np.array([[1 / size_l, 0.0, -(w - 1) / 2 / size_l], [0.0, 1 / size_l, -(h - 1) / 2 / size_l], [0, 0, 1.0]])
    lo, hi = _pan_extent(hs, size)
    src_h, src_w = source_shape[:2]
    extent = np.maximum(hi - lo, 1e-9)
    k = min(1.0, (src_w - 1 - 2 * MARGIN) / (size_l * extent[0]), (src_h - 1 - 2 * MARGIN) / (size_l * extent[1]))
    if k < 0.5:
        raise ValueError(f"the pan needs {1 / k:.2f}x upsampling of a {src_w}x{src_h} image")
    c_lo = MARGIN - k * size_l * lo
    c_hi = np.array([src_w - 1 - MARGIN, src_h - 1 - MARGIN]) - k * size_l * hi
    centre = (c_lo + c_hi) / 2
    a_src = np.array([[k * size_l, 0.0, centre[0]], [0.0, k * size_l, centre[1]], [0.0, 0.0, 1.0]])
    return a_src @ hs @ a_dst


def shot_frames(shot: Shot, size: tuple[int, int]) -> Any:
    """Yield the shot's frames as ``(rgb_pq, rgb_sdr)``, each (h, w, 3) float32 in [0, 1], one at a time.

    The graded image is converted once per shot (PQ BT.2020 and the SDR signal of :func:`sdr_signal`) and each
    signal is moved by a bilinear warp (``cv2.warpPerspective``) along :func:`pixel_maps`: the warp interpolates
    signal values, as a player's scaler does, not light (it keeps the render near a frame per second on this
    shared machine; the pairs need real structure and motion, not exact light between pixels)."""
    hs = _trajectory(shot)
    big = _enlarged(graded_image(shot), hs, size)
    sources = (pq_signal(big), sdr_signal(big))
    del big
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    for m in pixel_maps(hs, size, sources[0].shape):
        # bilinear samples of signals in [0, 1] stay in [0, 1]
        yield tuple(cv2.warpPerspective(src, m, size, flags=flags, borderMode=cv2.BORDER_REPLICATE) for src in sources)


def grain_bank(size: tuple[int, int], rng: np.random.Generator, count: int = 8) -> np.ndarray:
    """``count`` fields of film grain (h, w) float32, unit variance, blurred a little (grain is not white)."""
    w, h = size
    fields = rng.standard_normal((count, h, w), dtype=np.float32)
    for field in fields:
        cv2.GaussianBlur(field, (0, 0), 0.7, dst=field)
        field /= np.float32(max(float(field.std()), 1e-6))
    return fields


def estimated_light_level(shots: list[Shot]) -> Any:
    """CTA-861.3 values for the HDR stream, known before the first frame (x265 writes them in its first SEI):
    MaxCLL the mastering peak (no pixel of the grade is brighter), MaxFALL the largest mean max(R,G,B) of the
    graded images (the frames show crops of them)."""
    from datakit.io.metadata import ContentLightLevel

    fall = max(float(graded_image(s).max(axis=-1).mean()) for s in {s.image: s for s in shots}.values())
    return ContentLightLevel(int(MASTERING_PEAK_NITS), max(1, round(fall)))


@dataclass(frozen=True)
class Side:
    """One stream's encoding: codec, code planes and tags."""

    codec: str
    pix_fmt: str
    bit_depth: int
    tags: tuple[str, str, str]  # primaries, transfer, matrix (all limited range)
    grain_codes: float  # standard deviation of the grain added to Y' (code values)


HDR_TAGS, SDR_TAGS = ("bt2020", "smpte2084", "bt2020nc"), ("bt709", "bt709", "bt709")


class StreamEncoder:
    """One video stream encoded by PyAV: R'G'B' in [0, 1] -> Y'CbCr code planes by
    :func:`datakit.color.ycbcr.rgb_to_planes` (limited range, 4:2:0, chroma left-sited: the matrix is ours, never
    swscale's) -> film grain on Y' -> the encoder, tagged in the stream (and in x265's VUI / SVT-AV1's
    sequence header). libx265's packets get their decode times from :class:`datakit.io.writer.X265DecodeTimes`.
    Written under a temporary name and renamed when complete."""

    def __init__(self, path: Path, side: Side, size: tuple[int, int], options: dict[str, str]) -> None:
        import av

        from datakit.io.metadata import matrix_code, primaries_code, range_code, transfer_code
        from datakit.io.writer import X265DecodeTimes

        self.path, self.side = path, side
        self.tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
        self.container = av.open(str(self.tmp), "w")
        stream = self.container.add_stream(side.codec, rate=FPS)
        stream.width, stream.height = size
        stream.pix_fmt = side.pix_fmt
        cc = stream.codec_context
        cc.color_primaries, cc.color_trc = primaries_code(side.tags[0]), transfer_code(side.tags[1])
        cc.colorspace, cc.color_range = matrix_code(side.tags[2]), range_code("limited")
        stream.options = options
        self.stream, self.count = stream, 0
        self._times = X265DecodeTimes(self.container.mux) if side.codec == "libx265" else None
        self._mux = self.container.mux if self._times is None else self._times.add
        self._y_range = (16 << (side.bit_depth - 8), 235 << (side.bit_depth - 8))  # limited-range Y' (BT.2100)
        self._grain: np.ndarray | None = None

    def planes(self, rgb: np.ndarray, bank: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Code planes of R'G'B' in [0, 1], field ``k`` of the grain ``bank`` (unit variance) added to Y' (in
        whole code values: the bank is scaled and rounded once per encoder)."""
        from datakit.color.ycbcr import rgb_to_planes

        if self._grain is None:
            self._grain = np.rint(bank * np.float32(self.side.grain_codes)).astype(np.int16)
        y, u, v = rgb_to_planes(rgb, self.side.tags[2], self.side.bit_depth, False)
        noisy = y.astype(np.int16)
        noisy += self._grain[k]
        np.clip(noisy, *self._y_range, out=noisy)
        return noisy.astype(y.dtype), u, v

    def encode(self, planes: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        from datakit.io.writer import frame_from_planes

        frame = frame_from_planes(self.stream.width, self.stream.height, self.side.pix_fmt, planes)
        frame.pts = self.count
        for packet in self.stream.encode(frame):
            self._mux(packet)
        self.count += 1

    def close(self) -> None:
        for packet in self.stream.encode(None):
            self._mux(packet)
        if self._times is not None:
            self._times.flush()
        self.container.close()
        os.replace(self.tmp, self.path)


def _encoders(kind: SourceKind, folder: Path, light: Any) -> tuple[StreamEncoder, StreamEncoder]:
    """The HDR and SDR encoders of ``kind`` (the options of the module docstring)."""
    display = mastering_grade().display()
    if kind.codec == "av1":
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its configuration otherwise
        m = display
        hdr10 = (
            f":enable-hdr=1:mastering-display=G({m.green[0]},{m.green[1]})B({m.blue[0]},{m.blue[1]})"
            f"R({m.red[0]},{m.red[1]})WP({m.white_point[0]},{m.white_point[1]})"
            f"L({m.max_luminance},{m.min_luminance}):content-light={light.max_cll},{light.max_fall}"
        )

        def svt(crf: int, extra: str = "") -> dict[str, str]:
            params = f"keyint={kind.keyint}:scd=1{extra}"
            return {"preset": str(kind.svtav1_preset), "crf": str(crf), "svtav1-params": params}

        hdr = Side("libsvtav1", "yuv420p10le", 10, HDR_TAGS, 4.0)
        sdr = Side("libsvtav1", "yuv420p", 8, SDR_TAGS, 1.0)
        return (
            StreamEncoder(folder / "title_hdr10.mkv", hdr, kind.size, svt(kind.crf_hdr, hdr10)),
            StreamEncoder(folder / "title_sdr.mkv", sdr, kind.size, svt(kind.crf_sdr)),
        )
    x265 = {
        "colorprim": "bt2020", "transfer": "smpte2084", "colormatrix": "bt2020nc", "range": "limited",
        "chromaloc": "0", "hdr10": "1", "master-display": display.to_x265(), "max-cll": light.to_x265(),
        "keyint": str(kind.keyint), "scenecut": "40", "bframes": "4", "b-adapt": "1", "open-gop": "1",
        "rc-lookahead": "20", "log-level": "error",
    }  # fmt: skip
    x264 = {
        "colorprim": "bt709", "transfer": "bt709", "colormatrix": "bt709", "range": "tv", "chromaloc": "0",
        "keyint": str(kind.keyint),
    }  # fmt: skip

    def joined(params: dict[str, str]) -> str:
        return ":".join(f"{k}={v}" for k, v in params.items())

    hdr_opts = {"preset": kind.x265_preset, "crf": str(kind.crf_hdr), "x265-params": joined(x265)}
    sdr_opts = {"preset": kind.x264_preset, "crf": str(kind.crf_sdr), "x264-params": joined(x264)}
    return (
        StreamEncoder(folder / "title_hdr10.mkv", Side("libx265", "yuv420p10le", 10, HDR_TAGS, 4.0), kind.size,
                      hdr_opts),
        StreamEncoder(folder / "title_sdr.mp4", Side("libx264", "yuv420p", 8, SDR_TAGS, 1.0), kind.size, sdr_opts),
    )  # fmt: skip


def _wanted(kind: SourceKind, seconds: float) -> dict[str, Any]:
    return json.loads(
        json.dumps({"kind": asdict(kind), "seconds": seconds, "fps": str(FPS), "offset_frames": OFFSET_FRAMES})
    )


def _done(kind: SourceKind, folder: Path, seconds: float) -> dict[str, Any] | None:
    """The folder's ``source.json`` when it records this kind and length (a complete render), else None."""
    marker = folder / "source.json"
    if not marker.exists():
        return None
    done = json.loads(marker.read_text())
    wanted = _wanted(kind, seconds)
    return done if {k: done.get(k) for k in wanted} == wanted else None


def render_titles(kinds: list[SourceKind], work: Path, seconds: float, progress: bool = True) -> None:
    """Render one title and encode it as each of ``kinds`` (same size and seed: the same pictures) into
    ``work/<kind>``; kinds whose folder is complete are left as they are. The pictures and their code planes are
    made once for all encoders."""
    from tqdm import tqdm

    todo = [k for k in kinds if _done(k, work / k.name, seconds) is None]
    if not todo:
        return
    if len({(k.size, k.seed) for k in todo}) != 1:
        raise ValueError("kinds rendered together must share their frame size and seed")
    kind = todo[0]
    for k in todo:
        (work / k.name).mkdir(parents=True, exist_ok=True)
        (work / k.name / "source.json").unlink(missing_ok=True)
    rng = np.random.default_rng(kind.seed)
    total = round(seconds * float(FPS)) + OFFSET_FRAMES
    shots = plan_shots(total, rng)
    light = estimated_light_level(shots)
    grains = grain_bank(kind.size, rng)
    start = time.perf_counter()
    encoders = [_encoders(k, work / k.name, light) for k in todo]
    index = 0
    names = "+".join(k.name for k in todo)
    with tqdm(total=total, desc=f"render {names}", unit="frame", disable=not progress) as bar:
        for shot in shots:
            for rgb_pq, rgb_sdr in shot_frames(shot, kind.size):
                k = int(rng.integers(len(grains)))
                planes: dict[Side, tuple[np.ndarray, ...]] = {}
                for hdr, sdr in encoders:
                    sides = [(hdr, rgb_pq)] + ([(sdr, rgb_sdr)] if index >= OFFSET_FRAMES else [])
                    for encoder, rgb in sides:
                        if encoder.side not in planes:
                            planes[encoder.side] = encoder.planes(rgb, grains, k)
                        encoder.encode(planes[encoder.side])
                index += 1
                bar.update()
    render_seconds = time.perf_counter() - start
    for k, (hdr, sdr) in zip(todo, encoders, strict=True):
        hdr.close()
        sdr.close()
        info = {
            **_wanted(k, seconds),
            "hdr": str(hdr.path),
            "sdr": str(sdr.path),
            "hdr_frames": total,
            "sdr_frames": total - OFFSET_FRAMES,
            "cuts_hdr": np.cumsum([s.frames for s in shots])[:-1].tolist(),
            "shots": [asdict(s) for s in shots],
            "light_level": [light.max_cll, light.max_fall],
            "render_seconds": round(render_seconds, 1),
            "rendered_with": [t.name for t in todo],
        }
        (work / k.name / "pairs.txt").write_text(f"{hdr.path}\n{sdr.path}\n")
        (work / k.name / "source.json").write_text(json.dumps(info, indent=1))


def render_demo(folder: Path, seconds: float, scene_seconds: int = 4) -> dict[str, Any]:
    """The demo pair ``bench_build.py`` measured before this module (1080p, keyframe every 24 frames, 4 s scenes,
    SDR 5 frames late), kept so issue 13's figures stay comparable."""
    from datakit.samples import DemoSpec, make_demo_pair

    scenes = max(1, int(seconds) // scene_seconds)
    spec = DemoSpec(
        hdr_size=(1920, 1080), sdr_size=(1920, 1080), scene_frames=(scene_seconds * 24,) * scenes, keyint=24,
        preset="ultrafast", offset_frames=5,
    )  # fmt: skip
    start, reused = time.perf_counter(), (folder / "demo_truth.json").exists()
    pair = make_demo_pair(folder, spec)
    (folder / "pairs.txt").write_text(f"{pair.hdr}\n{pair.sdr}\n")
    render = "(reused)" if reused else round(time.perf_counter() - start, 1)
    return {"kind": {"name": "demo"}, "hdr": str(pair.hdr), "sdr": str(pair.sdr), "seconds": seconds,
            "render_seconds": render}  # fmt: skip


def _kind(name: str, size: tuple[int, int] | None, exact: bool) -> SourceKind:
    kind = KINDS[name]
    if size is not None:
        kind = replace(kind, size=size)
    return replace(kind, seconds=None) if exact else kind


def render_kinds(
    names: list[str], work: Path, seconds: float, size: tuple[int, int] | None = None, exact: bool = False
) -> dict[str, dict[str, Any]]:
    """Render (or reuse) the kinds ``names`` into ``work/<name>``, ``seconds`` long unless the kind fixes its
    length (4k: 10 s) and ``exact`` is false; ``size`` overrides the frame size (tests). Kinds of one size and
    length are rendered together (one picture pass, several encoders). Returns each kind's ``source.json``."""
    groups: dict[tuple[Any, ...], list[SourceKind]] = {}
    for name in names:
        if name != "demo":
            kind = _kind(name, size, exact)
            groups.setdefault((kind.size, kind.seed, kind.seconds or seconds), []).append(kind)
    for (_, _, length), kinds in groups.items():
        render_titles(kinds, work, length)
    out = {}
    for name in names:
        if name == "demo":
            out[name] = render_demo(work / name, seconds)
        else:
            kind = _kind(name, size, exact)
            done = _done(kind, work / name, kind.seconds or seconds)
            assert done is not None
            out[name] = done
    return out


def render_kind(
    name: str, work: Path, seconds: float, size: tuple[int, int] | None = None, exact: bool = False
) -> dict[str, Any]:
    """:func:`render_kinds` of one kind."""
    return render_kinds([name], work, seconds, size, exact)[name]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="folder of the rendered kinds (reused)")
    parser.add_argument("--kinds", nargs="+", default=["hevc-gop2"], choices=KIND_NAMES)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the 1080p titles (4k: 10 s)")
    args = parser.parse_args(argv)
    for name, info in render_kinds(args.kinds, Path(args.work), args.seconds).items():
        print(f"{name}: {info['hdr']} + {info['sdr']}, rendered in {info['render_seconds']} s", file=sys.stderr)


if __name__ == "__main__":
    main()
