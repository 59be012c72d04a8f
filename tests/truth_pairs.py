"""HDR10/SDR pairs with a known frame mapping, rendered from the CC0 HDR images in ``/work/shared/data/hdri``.

Material the project did not design: each HDR frame is a slow camera pan over a real EXR image
(:func:`datakit.synth.warp.render_clip`, linear light), scaled to absolute light and encoded as HDR10 (SMPTE
ST 2084 PQ, BT.2020, libx265). The SDR is made by the synthesis operators (:mod:`datakit.synth.tonemap`:
Reinhard, Hable, ITU-R BT.2446 method A; not the demo's chain), gamut-clipped to BT.709, encoded with the
BT.709 OETF at half or quarter resolution (libx264), shifted in time and with dropped or repeated frames.
``PairSpec.sdr_shows`` is the truth: the HDR frame each SDR frame shows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

HDRI = Path(os.environ.get("DATAKIT_TEST_HDRI", "/work/shared/data/hdri"))
HDR_SIZE = (256, 144)


@dataclass(frozen=True)
class PairSpec:
    """One pair: HDR shots (image, pan speed in tile widths per second, blur), frame rates, the SDR mapping."""

    name: str
    shots: tuple[tuple[str, float, float], ...]  # (image file, pan speed, Gaussian blur sigma in HDR px)
    hdr_frames: int
    sdr_shows: tuple[int, ...]  # HDR frame shown by each SDR frame
    fps_hdr: Fraction = Fraction(24)
    fps_sdr: Fraction = Fraction(24)
    operator: str = "reinhard"
    sdr_size: tuple[int, int] = (128, 72)
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TruthPair:
    spec: PairSpec
    hdr: Path
    sdr: Path

    @property
    def truth(self) -> list[int]:
        return list(self.spec.sdr_shows)


def shifted(hdr_frames: int, offset: int, dropped: tuple[int, ...] = ()) -> tuple[int, ...]:
    """SDR frames showing HDR frames ``offset, offset + 1, ...`` without the HDR frames in ``dropped``."""
    return tuple(j for j in range(offset, hdr_frames) if j not in dropped)


def resampled(hdr_frames: int, offset: int, step: float) -> tuple[int, ...]:
    """SDR frame ``k`` shows the latest HDR frame at its time: ``offset + floor(k * step)`` (``step`` HDR frames
    per SDR frame: < 1 repeats frames, 24 -> 30 fps in a 4:5 cadence; > 1 drops them, 25 -> 24 fps)."""
    out = []
    k = 0
    while (j := offset + int(np.floor(k * step + 1e-9))) < hdr_frames:
        out.append(j)
        k += 1
    return tuple(out)


def _tonemap(operator: str) -> Callable[[np.ndarray], np.ndarray]:
    from datakit.synth import tonemap

    return {
        "reinhard": lambda x: tonemap.reinhard(x, log_average_nits=20.0),
        "hable": tonemap.hable,
        "bt2446a": lambda x: tonemap.bt2446a(x, l_hdr=1000.0),
    }[operator]


def _image_nits(name: str, blur: float) -> np.ndarray:
    """An EXR image as BT.2020 linear light in cd/m^2, its median luminance at 15 cd/m^2, peak 4000."""
    from datakit.color.gamut import convert_gamut, luminance_weights
    from datakit.io.images import read_hdr_image

    image = read_hdr_image(HDRI / name)
    rgb = np.maximum(convert_gamut(image.rgb_linear, image.primaries, "bt2020"), 0.0).astype(np.float32)
    if blur > 0:
        rgb = cv2.GaussianBlur(rgb, (0, 0), blur * rgb.shape[1] / HDR_SIZE[0])
    lum = rgb @ luminance_weights("bt2020").astype(np.float32)
    return np.minimum(rgb * np.float32(15.0 / max(float(np.median(lum)), 1e-6)), 4000.0)


def _render_shot(image: str, speed: float, blur: float, frames: int, fps: Fraction) -> np.ndarray:
    """(N, 144, 256, 3) BT.2020 cd/m^2: a horizontal pan (``speed`` tile widths per second) with a slight drift."""
    from datakit.synth.warp import homography_from_params, render_clip

    t = np.arange(frames) / float(fps)
    hs = np.stack([homography_from_params(speed * s, 0.01 * s, 0.0, 0.0) for s in t])
    w, h = HDR_SIZE
    return render_clip(_image_nits(image, blur), hs, (h, w), scale=2.0)


def make_pair(folder: Path, spec: PairSpec) -> TruthPair:
    """Render and encode one pair into ``folder`` (``NAME_hdr10.mkv``, ``NAME_sdr.mp4``, ``NAME_truth.json``)."""
    from datakit.color.gamut import convert_gamut
    from datakit.color.transfer import bt709_oetf, st2084_inverse_eotf
    from datakit.io.writer import HDR10Writer, SDRWriter

    per_shot = [spec.hdr_frames // len(spec.shots)] * len(spec.shots)
    per_shot[-1] += spec.hdr_frames - sum(per_shot)
    shots = zip(spec.shots, per_shot, strict=True)
    nits = np.concatenate([_render_shot(img, speed, blur, n, spec.fps_hdr) for (img, speed, blur), n in shots])
    hdr_path, sdr_path = folder / f"{spec.name}_hdr10.mkv", folder / f"{spec.name}_sdr.mp4"
    w, h = HDR_SIZE
    with HDR10Writer(hdr_path, w, h, spec.fps_hdr, crf=16, preset="ultrafast") as writer:
        for frame in nits:
            writer.write(np.clip(st2084_inverse_eotf(frame), 0.0, 1.0))
    tonemap = _tonemap(spec.operator)
    sw, sh = spec.sdr_size
    with SDRWriter(sdr_path, sw, sh, spec.fps_sdr, crf=16, preset="ultrafast", threads=1) as writer:
        for j in spec.sdr_shows:
            display = np.clip(convert_gamut(tonemap(nits[j]), "bt2020", "bt709"), 0.0, 1.0)
            small = cv2.resize(display.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA)
            writer.write(np.clip(bt709_oetf(small), 0.0, 1.0))
    truth = {"sdr_shows": list(spec.sdr_shows), "cuts_hdr": list(np.cumsum(per_shot)[:-1].tolist())}
    (folder / f"{spec.name}_truth.json").write_text(json.dumps(truth))
    return TruthPair(spec, hdr_path, sdr_path)


def pairs_file(folder: Path, pairs: list[TruthPair]) -> Path:
    """A pairs file of these pairs, all in the test split (whole frames: the pairs are smaller than a tile)."""
    lines = []
    for pair in pairs:
        lines += ["[[pair]]", f'id = "{pair.spec.name}"', f'hdr = "{pair.hdr}"', f'sdr = "{pair.sdr}"']
        lines += ['split = "test"', ""]
    path = folder / "pairs.toml"
    path.write_text("\n".join(lines))
    return path


def segment_accuracy(data: dict, truth: list[int]) -> tuple[float, float]:
    """From ``datakit align --json`` output: (share of SDR frames mapped to their true HDR frame or marked
    uncertain, share mapped right). The mapping is rebuilt with :meth:`Alignment.from_dict`."""
    from datakit.pairs.align import Alignment

    alignment = Alignment.from_dict(data)
    uncertain = np.zeros(len(truth), bool)
    for detail in data.get("segment_evidence", []):
        for first, last in detail["uncertain"]:
            uncertain[first : last + 1] = True
    got = [alignment.temporal.hdr_index_for(i) for i in range(len(truth))]
    right = np.array([g == t for g, t in zip(got, truth, strict=True)])
    return float(np.mean(right | uncertain)), float(np.mean(right))
