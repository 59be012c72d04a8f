"""Built-in demo media: a deterministic HDR10 master and its SDR version, with the answers in ``truth.json``.

The scenes are rendered procedurally in linear light (absolute cd/m^2, BT.2020 primaries) as functions of
continuous time, so the SDR version can be rendered at its own frame rate, start time and with dropped frames
while still showing exactly known pictures. Each scene has real HDR content: highlights well above 1000 cd/m^2,
deep shadows below 0.1 cd/m^2 and saturated colours outside the BT.709 gamut; the camera moves in every scene and
scenes are separated by hard cuts.

- HDR master: SMPTE ST 2084 PQ, BT.2020, HEVC Main10 through :class:`datakit.io.writer.HDR10Writer`.
- SDR version: :func:`demo_sdr_chain` (exposure, global luminance tone curve, BT.2020 -> BT.709 gamut clip,
  BT.1886 inverse EOTF) then scaled, letterboxed into a 4:3 frame and written as BT.709 H.264 through
  :class:`datakit.io.writer.SDRWriter`, starting ``offset_frames`` HDR frames later.

``truth.json`` holds the offset, frame rates, SDR picture area, scale and cut positions: later pipelines are
tested against it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from datakit.color.gamut import convert_gamut, luminance_weights
from datakit.color.transfer import bt1886_inverse_eotf, st2084_eotf, st2084_inverse_eotf
from datakit.fsutil import atomic_write_text

SdrChain = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class DemoSpec:
    """What to render. Sizes are (width, height); times in seconds; frame numbers are 0-based."""

    hdr_size: tuple[int, int] = (512, 288)
    sdr_size: tuple[int, int] = (448, 336)  # 4:3 frame: the 16:9 picture is letterboxed inside it
    fps_hdr: Fraction = Fraction(24)
    fps_sdr: Fraction = Fraction(24)
    scene_frames: tuple[int, ...] = (32, 40, 32)  # HDR frames per scene; cuts between them
    offset_frames: int = 6  # SDR frame 0 shows HDR frame `offset_frames`
    sdr_tail_frames: int = 4  # the SDR stops this many HDR frames before the master ends
    dropped_sdr_frames: tuple[int, ...] = ()  # SDR frame numbers (before dropping) that are missing
    seed: int = 0
    hdr_crf: int = 14
    sdr_crf: int = 14
    preset: str = "faster"
    keyint: int | None = None  # keyframe interval of both encodes (None: the encoders' default, 250)


@dataclass
class DemoPair:
    hdr: Path
    sdr: Path
    truth: Path
    truth_data: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------- scene rendering


def _noise(rng: np.random.Generator, height: int, width: int, octaves: int = 5, base: int = 4) -> np.ndarray:
    """Smooth multi-octave value noise in [0, 1], float32 (height, width)."""
    total = np.zeros((height, width), np.float32)
    weight_sum = 0.0
    for octave in range(octaves):
        cells = base * 2**octave
        grid = rng.random((cells * height // width + 2, cells + 2)).astype(np.float32)
        layer = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        weight = 0.55**octave
        total += weight * layer
        weight_sum += weight
    total /= weight_sum
    lo, hi = np.percentile(total, [1, 99])
    return np.clip((total - lo) / (hi - lo + 1e-6), 0.0, 1.0)


def _disc(height: int, width: int, cx: float, cy: float, radius: float, soft: float) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    distance = np.hypot(xx - cx, yy - cy)
    return np.clip((radius + soft - distance) / max(soft, 1e-3), 0.0, 1.0)


def _rect(height: int, width: int, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    return ((xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1)).astype(np.float32)


class _Scene:
    """A canvas in linear BT.2020 cd/m^2 plus a camera path; ``render(t)`` returns one frame."""

    def __init__(self, canvas: np.ndarray, path: Callable[[float], tuple[float, float, float, float]]) -> None:
        self.canvas = canvas  # (Hc, Wc, 3) float32 rgb_nits, BT.2020
        self.path = path  # t in [0, 1] -> (centre x, centre y, zoom, rotation degrees) in canvas pixels

    def render(self, u: float, size: tuple[int, int]) -> np.ndarray:
        """Frame at normalized scene time ``u`` in [0, 1): (H, W, 3) float32 rgb_nits (BT.2020)."""
        width, height = size
        cx, cy, zoom, angle = self.path(u)
        scale = zoom * width / (self.canvas.shape[1] * 0.6)
        m = cv2.getRotationMatrix2D((cx, cy), angle, scale)
        m[0, 2] += width / 2 - cx
        m[1, 2] += height / 2 - cy
        frame = cv2.warpAffine(self.canvas, m, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        return np.maximum(frame, 0.0)


def _scene_sunset(rng: np.random.Generator) -> _Scene:
    h, w = 540, 960
    sky_t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    sky = (1 - sky_t) * np.array([60, 90, 260], np.float32) + sky_t * np.array([420, 220, 90], np.float32)
    canvas = np.broadcast_to(sky, (h, w, 3)).copy()
    clouds = _noise(rng, h, w, base=3)[..., None]
    canvas *= 0.6 + 0.8 * clouds
    sun = _disc(h, w, 600, 250, 26, 4)[..., None]
    glow = np.exp(-(((np.mgrid[0:h, 0:w][1] - 600) ** 2 + (np.mgrid[0:h, 0:w][0] - 250) ** 2) / (2 * 70.0**2)))
    canvas += glow[..., None].astype(np.float32) * np.array([900, 600, 250], np.float32)
    canvas = canvas * (1 - sun) + sun * np.array([4000, 3600, 2600], np.float32)
    hills = _noise(rng, h, w, base=6)
    ridge = (330 + 80 * _noise(rng, 1, w, octaves=3, base=3)[0])[None, :]
    ground = (np.arange(h)[:, None] > ridge).astype(np.float32)[..., None]
    dark = (0.02 + 6.0 * hills**3)[..., None] * np.array([0.8, 1.0, 0.7], np.float32)
    canvas = canvas * (1 - ground) + ground * dark
    return _Scene(canvas.astype(np.float32), lambda u: (330 + 300 * u, 300 + 20 * u, 1.0, 0.0))


def _scene_neon(rng: np.random.Generator) -> _Scene:
    h, w = 540, 960
    wall = _noise(rng, h, w, base=8)
    canvas = ((0.01 + 3.0 * wall**2)[..., None] * np.array([0.9, 0.8, 1.0], np.float32)).astype(np.float32)
    signs = [  # BT.2020 primaries at high luminance: far outside BT.709
        ((140, 120, 300, 180), (900.0, 0.0, 0.0)),
        ((560, 90, 800, 150), (0.0, 700.0, 0.0)),
        ((300, 330, 420, 470), (0.0, 60.0, 1200.0)),
        ((620, 300, 860, 340), (800.0, 0.0, 600.0)),
    ]
    for (x0, y0, x1, y1), colour in signs:
        mask = cv2.GaussianBlur(_rect(h, w, x0, y0, x1, y1), (0, 0), 2.0)[..., None]
        canvas = canvas * (1 - mask) + mask * np.array(colour, np.float32)
    lamp = _disc(h, w, 480, 240, 14, 3)[..., None]
    canvas = canvas * (1 - lamp) + lamp * np.array([2500, 2300, 1900], np.float32)
    return _Scene(canvas, lambda u: (480, 270, 1.0 + 0.35 * u, 0.0))


def _scene_garden(rng: np.random.Generator) -> _Scene:
    h, w = 540, 960
    hue = _noise(rng, h, w, base=5)
    texture = _noise(rng, h, w, base=16)
    primaries = np.array([[1.0, 0.05, 0.0], [0.05, 1.0, 0.05], [0.1, 0.0, 1.0], [0.9, 0.8, 0.0]], np.float32)
    index = np.clip((hue * 4).astype(int), 0, 3)
    colour = primaries[index]
    canvas = (colour * (20 + 500 * texture[..., None])).astype(np.float32)
    spec = _disc(h, w, 470, 280, 10, 6)[..., None]
    canvas = canvas * (1 - spec) + spec * np.array([1500, 1500, 1500], np.float32)
    return _Scene(canvas, lambda u: (400 + 160 * u, 230 + 90 * u, 1.05, 6.0 * u))


_SCENES = (_scene_sunset, _scene_neon, _scene_garden)


class DemoMovie:
    """The demo title as a function of time: ``frame_at(t, size)`` in rgb_nits (BT.2020, cd/m^2)."""

    def __init__(self, spec: DemoSpec) -> None:
        self.spec = spec
        rng = np.random.default_rng(spec.seed)
        self.scenes = [_SCENES[i % len(_SCENES)](rng) for i in range(len(spec.scene_frames))]
        starts = np.cumsum((0, *spec.scene_frames))
        self.scene_starts = [Fraction(int(s)) / spec.fps_hdr for s in starts]  # seconds

    @property
    def duration(self) -> Fraction:
        return self.scene_starts[-1]

    def frame_at(self, t: Fraction, size: tuple[int, int]) -> np.ndarray:
        index = max(i for i, start in enumerate(self.scene_starts[:-1]) if start <= t)
        start, end = self.scene_starts[index], self.scene_starts[index + 1]
        return self.scenes[index].render(float((t - start) / (end - start)), size)


DEMO_PAIRS: dict[str, tuple[DemoSpec, str]] = {
    "demo": (DemoSpec(), "train"),
    "demo-holdout": (DemoSpec(seed=1, offset_frames=4, scene_frames=(28, 36, 30)), "test"),
}
"""The pairs ``datakit demo`` renders: name -> (spec, split). The held-out pair has other content and timing."""


# --------------------------------------------------------------------------------------------- SDR chain


def demo_sdr_chain(rgb_pq: np.ndarray, exposure: float = 1.0 / 100.0, white: float = 8.0) -> np.ndarray:
    """The demo's SDR grade: PQ BT.2020 R'G'B' code values -> BT.709 R'G'B' signal in [0, 1] (float32).

    Steps: SMPTE ST 2084 EOTF to cd/m^2; exposure (1.0 = 100 cd/m^2); extended Reinhard curve on BT.2020
    luminance with white point ``white`` (colour ratios kept); BT.2020 -> BT.709 primaries (linear, then clip:
    the simplest gamut mapping); ITU-R BT.1886 inverse EOTF (gamma 2.4, 100 cd/m^2 white, zero black).
    """
    rgb = st2084_eotf(np.asarray(rgb_pq, np.float32)) * np.float32(exposure)
    weights = luminance_weights("bt2020").astype(np.float32)
    lum = rgb @ weights
    mapped = lum * (1 + lum / np.float32(white * white)) / (1 + lum)
    ratio = np.where(lum > 1e-8, mapped / np.maximum(lum, 1e-8), 1.0).astype(np.float32)
    display = np.clip(convert_gamut(rgb * ratio[..., None], "bt2020", "bt709"), 0.0, 1.0)
    return np.clip(bt1886_inverse_eotf(display * np.float32(100.0), white_nits=100.0), 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------------------------- writing


def sdr_picture_area(spec: DemoSpec) -> tuple[int, int, int, int]:
    """[x, y, w, h] of the active picture inside the SDR frame: the HDR aspect ratio fitted (letterbox/pillarbox)."""
    (hw, hh), (sw, sh) = spec.hdr_size, spec.sdr_size
    if sw / sh < hw / hh:  # narrower frame: letterbox
        pw, ph = sw, round(sw * hh / hw / 2) * 2
    else:
        pw, ph = round(sh * hw / hh / 2) * 2, sh
    return ((sw - pw) // 2, (sh - ph) // 2, pw, ph)


def sdr_frame_times(spec: DemoSpec, duration: Fraction) -> list[Fraction]:
    """Scene time shown by each SDR frame, after the offset, the tail cut and dropped frames."""
    start = Fraction(spec.offset_frames) / spec.fps_hdr
    end = duration - Fraction(spec.sdr_tail_frames) / spec.fps_hdr
    times = []
    k = 0
    while start + k / spec.fps_sdr < end - Fraction(1, 10**6):
        if k not in spec.dropped_sdr_frames:
            times.append(start + k / spec.fps_sdr)
        k += 1
    return times


def make_demo_pair(
    out_dir: str | os.PathLike[str],
    spec: DemoSpec | None = None,
    *,
    sdr_chain: SdrChain = demo_sdr_chain,
    name: str = "demo",
) -> DemoPair:
    """Render and encode one demo pair into ``out_dir`` (see :func:`make_demo_pairs`)."""
    return make_demo_pairs(out_dir, {name: spec or DemoSpec()}, sdr_chain=sdr_chain)[name]


def make_demo_pairs(
    out_dir: str | os.PathLike[str], specs: dict[str, DemoSpec], *, sdr_chain: SdrChain = demo_sdr_chain
) -> dict[str, DemoPair]:
    """Render and encode demo pairs into ``out_dir``; returns the paths by name. Deterministic for given specs.

    Files per name: ``{name}_hdr10.mp4`` (HEVC Main10, PQ/BT.2020), ``{name}_sdr.mp4`` (H.264, BT.709) and
    ``{name}_truth.json``. Existing complete pairs are reused (the truth file is written last). Every SDR file
    is encoded before any HDR file: in a process that has already run libx265, libx264's output was seen to
    change from run to run, and the demo's bytes are meant to be reproducible (its source manifest records them).
    """
    from datakit.io.writer import HDR10Writer, SDRWriter

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    done: dict[str, DemoPair] = {}
    todo: dict[str, tuple[DemoSpec, DemoMovie, dict | None]] = {}
    for name, spec in specs.items():
        hdr_path, sdr_path, truth_path = out / f"{name}_hdr10.mp4", out / f"{name}_sdr.mp4", out / f"{name}_truth.json"
        if hdr_path.is_file() and sdr_path.is_file() and truth_path.is_file():
            done[name] = DemoPair(hdr_path, sdr_path, truth_path, json.loads(truth_path.read_text()))
        else:
            gop = {"keyint": spec.keyint, "min-keyint": spec.keyint} if spec.keyint else None
            todo[name] = (spec, DemoMovie(spec), gop)

    for name, (spec, movie, gop) in todo.items():
        px, py, pw, ph = sdr_picture_area(spec)
        frames = []
        for t in sdr_frame_times(spec, movie.duration):
            rgb_pq = st2084_inverse_eotf(np.minimum(movie.frame_at(t, spec.hdr_size), 10000.0))
            picture = cv2.resize(sdr_chain(rgb_pq), (pw, ph), interpolation=cv2.INTER_AREA)
            frame = np.zeros((spec.sdr_size[1], spec.sdr_size[0], 3), np.uint8)
            frame[py : py + ph, px : px + pw] = np.round(np.clip(picture, 0, 1) * 255).astype(np.uint8)
            frames.append(frame)
        with SDRWriter(
            out / f"{name}_sdr.mp4", *spec.sdr_size, spec.fps_sdr, crf=spec.sdr_crf, preset=spec.preset,
            codec_params=gop, threads=1,
        ) as writer:  # fmt: skip
            for frame in frames:
                writer.write(frame)

    for name, (spec, movie, gop) in todo.items():
        hdr_path = out / f"{name}_hdr10.mp4"
        with HDR10Writer(
            hdr_path, *spec.hdr_size, spec.fps_hdr, crf=spec.hdr_crf, preset=spec.preset, x265_params=gop
        ) as writer:
            for i in range(sum(spec.scene_frames)):
                rgb_nits = movie.frame_at(Fraction(i) / spec.fps_hdr, spec.hdr_size)
                writer.write(st2084_inverse_eotf(np.minimum(rgb_nits, 10000.0)))
        truth_path = out / f"{name}_truth.json"
        truth = _truth(spec, movie, hdr_path, out / f"{name}_sdr.mp4", writer.light_level)
        atomic_write_text(truth_path, json.dumps(truth, indent=2))
        done[name] = DemoPair(hdr_path, out / f"{name}_sdr.mp4", truth_path, truth)
    return {name: done[name] for name in specs}


def _truth(spec: DemoSpec, movie: DemoMovie, hdr_path: Path, sdr_path: Path, light_level: Any) -> dict[str, Any]:
    """The answers later pipelines are tested against."""
    px, py, pw, ph = sdr_picture_area(spec)
    times = sdr_frame_times(spec, movie.duration)
    cut_times = movie.scene_starts[1:-1]
    return {
        "hdr": hdr_path.name,
        "sdr": sdr_path.name,
        "fps_hdr": str(spec.fps_hdr),
        "fps_sdr": str(spec.fps_sdr),
        "offset_frames": spec.offset_frames if spec.fps_hdr == spec.fps_sdr else None,
        "offset_seconds": float(Fraction(spec.offset_frames) / spec.fps_hdr),
        "hdr_size": list(spec.hdr_size),
        "sdr_size": list(spec.sdr_size),
        "sdr_picture": [px, py, pw, ph],
        "scale": spec.hdr_size[0] / pw,
        "frames_hdr": sum(spec.scene_frames),
        "frames_sdr": len(times),
        "cuts_hdr": [int(c * spec.fps_hdr) for c in cut_times],
        "cuts_sdr": [next(j for j, t in enumerate(times) if t >= c) for c in cut_times],
        "cut_seconds": [float(c) for c in cut_times],
        "sdr_frame_hdr_time": [float(t) for t in times],
        "dropped_sdr_frames": list(spec.dropped_sdr_frames),
        "max_cll": light_level.max_cll,
        "max_fall": light_level.max_fall,
        "spec": {k: str(v) if isinstance(v, Fraction) else v for k, v in asdict(spec).items()},
    }
