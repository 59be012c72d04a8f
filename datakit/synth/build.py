"""``datakit synth``: synthetic LDR/HDR clip pairs, one source (image or SDR video) per job.

Images branch (the temporal-clues recipe, ../shared/seeds/003): relative linear HDR image -> BT.2020 -> absolute
scale (randomized rule) -> random smooth camera motion rendered in linear light -> scene clip (``rgb_nits``) ->
mastering grade onto a drawn display (:mod:`datakit.synth.mastering`) -> HDR target (PQ) and, through the randomized
degradation chain, the LDR clip (:func:`datakit.synth.degrade.grade_and_degrade`).
SDR-video branch: high-quality SDR clip -> classical inverse tone mapping (BT.2446 method C or BT.2408) -> HDR clip
-> the same grade and degradation chain.

Every random draw of a sample comes from its own generator seeded with (recipe seed, source id, clip length,
clip number), so a sample is reproducible from its manifest line alone (:func:`regenerate_sample`) and the same
seed gives byte-identical shards whatever the number of workers.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datakit import __version__
from datakit.engine import Job, run_jobs
from datakit.errors import DatakitError, InputError
from datakit.io.probe import VIDEO_EXTENSIONS
from datakit.recipe import load_recipe, recipe_hash
from datakit.store.output import OutputFolder
from datakit.store.shards import Sample
from datakit.synth.schema import SYNTH_SCHEMA

IMAGE_EXTENSIONS = {".exr", ".hdr", ".pic", ".png"}


@dataclass(frozen=True)
class SynthSource:
    """One synthesis source: an HDR image, one frame of an HDR10 video (``frame_time``), or an SDR video."""

    source_id: str
    path: Path
    kind: str  # "images" or "sdr_video"
    frame_time: float | None = None  # seconds: this source is that frame of an HDR10 video


def _source_id(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", path.stem).lstrip("._-") or "source"


def find_sources(pattern: str | os.PathLike[str], kind: str, *, every_seconds: float = 2.0) -> list[SynthSource]:
    """Files of a folder, or matching a glob pattern, usable by ``kind``.

    ``images``: OpenEXR / Radiance images (relative linear light), 16-bit PQ PNG, and HDR10 videos, of which one
    frame every ``every_seconds`` becomes a source of its own (``<video>-f<frame time in ms>``).
    ``sdr_video``: SDR videos.
    """
    extensions = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS if kind == "images" else VIDEO_EXTENSIONS
    path = Path(pattern)
    files = sorted(path.iterdir()) if path.is_dir() else sorted(Path(p) for p in glob.glob(str(pattern)))
    files = [f for f in files if f.is_file() and f.suffix.lower() in extensions]
    sources: list[SynthSource] = []
    for f in files:
        if kind == "images" and f.suffix.lower() in VIDEO_EXTENSIONS:
            sources.extend(_video_frame_sources(f, every_seconds))
        else:
            sources.append(SynthSource(_source_id(f), f.resolve(), kind))
    if not sources:
        raise InputError(f"{pattern}: no {'HDR images or HDR10 videos' if kind == 'images' else 'SDR videos'} found")
    ids = [s.source_id for s in sources]
    if len(set(ids)) != len(ids):
        raise InputError(f"{pattern}: two sources share a name ({sorted(i for i in ids if ids.count(i) > 1)[0]})")
    return sources


def _video_frame_sources(path: Path, every_seconds: float) -> list[SynthSource]:
    """One source per frame every ``every_seconds`` of an HDR10 video (refused when the video is not HDR10)."""
    from datakit.io.probe import probe, require_hdr10

    info = probe(path)
    require_hdr10(info)
    times = np.arange(every_seconds / 2, max(info.duration_seconds, every_seconds / 2 + 1e-3), every_seconds)
    return [
        SynthSource(f"{_source_id(path)}-f{round(t * 1000):07d}", path.resolve(), "images", float(t)) for t in times
    ]


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def sample_rng(seed: int, source_id: str, length: int, number: int) -> np.random.Generator:
    """The generator of one sample: depends only on these four values."""
    return np.random.default_rng([seed, _stable_int(source_id), length, number])


def split_of(source_id: str, split_cfg: dict[str, Any]) -> str:
    if source_id in split_cfg["test_sources"]:
        return "test"
    return "test" if (_stable_int(source_id) % 10000) / 10000 < split_cfg["test_fraction"] else "train"


def synth_dataset(
    recipe_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    images: str | None = None,
    videos: str | None = None,
    seed: int = 0,
    workers: int = 1,
    engine: str = "local",
    report: bool = True,
) -> dict[str, Any]:
    """Synthesize (or resume) a dataset into ``out``; returns the summary."""
    recipe = load_recipe(recipe_path, {"synthetic": SYNTH_SCHEMA}, expected_kind="synthetic")
    kind = recipe["source"]["kind"]
    given = images if kind == "images" else videos
    if not given:
        flag = "--images" if kind == "images" else "--videos"
        raise InputError(f"{recipe_path}: this recipe takes {kind.replace('_', ' ')} sources: give {flag}")
    sources = find_sources(given, kind, every_seconds=recipe["source"]["every_seconds"])
    folder = OutputFolder(out)
    digest = recipe_hash({**recipe, "seed": seed})
    with folder.locked():  # one writer at a time, from the first write to the last
        folder.claim({**recipe, "seed": seed}, digest)
        jobs = [
            Job(s.source_id, synth_source, (s, recipe, seed, digest, str(folder.root)))
            for s in sources
            if not folder.is_done(s.source_id)
        ]
        results = run_jobs(jobs, workers=workers, engine=engine, desc="sources")
        folder.record_failures(results)
        summary = folder.finalize(
            {
                "recipe": recipe,
                "recipe_hash": digest,
                "seed": seed,
                "tool_version": __version__,
                "source_count": len(sources),
            }
        )
        if report:
            from datakit.report.html import write_report

            summary["report"] = str(write_report(folder.root))
    return summary


def synth_source(source: SynthSource, recipe: dict[str, Any], seed: int, digest: str, out_root: str) -> dict:
    """Make every sample of one source and publish them; returns the source's status."""
    folder = OutputFolder(out_root)
    folder.reset_source(source.source_id)
    started = time.perf_counter()
    split = split_of(source.source_id, recipe["split"])
    try:
        samples, status = _samples_of(source, recipe, seed)
        records = folder.write_samples(
            source.source_id, samples, split, digest, max_bytes=recipe["store"]["max_shard_mb"] << 20
        )
    except DatakitError as error:
        status = {"state": "failed", "split": split, "error": str(error)}
        folder.publish_failure(source.source_id, status)
        return {**status, "source_id": source.source_id}
    status.update(state="done", split=split, seconds=round(time.perf_counter() - started, 2))
    folder.publish_source(source.source_id, records, status)
    return {**status, "source_id": source.source_id, "samples": len(records)}


def _samples_of(source: SynthSource, recipe: dict[str, Any], seed: int):
    """A generator of the source's samples (made one at a time) and its status dict (filled as it runs)."""
    status: dict[str, Any] = {"kind": source.kind, "path": source.path.name, "rejected": Counter(), "warnings": []}
    if source.kind == "images":
        rgb_linear = load_hdr_source(source, recipe["source"], status)
        absolute = status["absolute"]
        generator = (
            make_image_sample(source, rgb_linear, recipe, seed, length, number, absolute=absolute)
            for length in recipe["clips"]["lengths"]
            for number in range(recipe["clips"]["per_source"])
        )
    else:
        generator = video_samples(source, recipe, seed, status)
    return generator, status


def load_hdr_source(source: SynthSource, source_cfg: dict[str, Any], status: dict[str, Any]) -> np.ndarray:
    """Linear BT.2020 RGB of an image source; refuse (or flag) images without HDR range.

    OpenEXR / Radiance images give relative linear light (``status["absolute"] = False``: the sample gets a
    random absolute scale); 16-bit PQ PNG and HDR10 video frames give absolute cd/m^2 through the SMPTE ST 2084
    EOTF (``status["absolute"] = True``: no rescaling).
    """
    from datakit.color.gamut import convert_gamut, luminance_weights
    from datakit.color.transfer import st2084_eotf
    from datakit.io.images import read_hdr_image, read_png16_pq

    path = source.path
    if source.frame_time is not None:
        from datakit.io.reader import VideoReader

        with VideoReader(path, encoding="pq") as reader:
            (frame,) = reader.read_at([source.frame_time])
            rgb = np.asarray(st2084_eotf(frame.rgb("float32")), np.float32)
        status["absolute"] = True
    elif path.suffix.lower() == ".png":
        rgb = np.asarray(st2084_eotf(read_png16_pq(path)), np.float32)
        status["absolute"] = True
    else:
        image = read_hdr_image(path)
        rgb = np.maximum(convert_gamut(image.rgb_linear, image.primaries, "bt2020"), 0.0).astype(np.float32)
        status["absolute"] = False
    lum = rgb @ luminance_weights("bt2020").astype(np.float32)
    peak = float(lum.max())
    if status["absolute"]:  # diffuse white is known: BT.2408 reference white
        status["peak_nits"] = round(peak, 1)
        hdr = peak >= source_cfg["min_peak_nits"]
        why = f"peak {peak:.0f} cd/m^2, below the recipe's min_peak_nits {source_cfg['min_peak_nits']}"
    else:  # relative: diffuse white estimated by the 90th luminance percentile
        diffuse = float(np.percentile(lum, 90))
        dynamic_range = peak / diffuse if diffuse > 0 else 0.0
        status["dynamic_range"] = round(dynamic_range, 2)
        hdr = dynamic_range >= source_cfg["min_dynamic_range"]
        why = f"peak / diffuse white = {dynamic_range:.1f}, below the recipe's {source_cfg['min_dynamic_range']}"
    if not hdr:
        message = f"{path.name}: looks like an LDR image ({why}): nothing above diffuse white to learn from"
        if source_cfg["ldr_policy"] == "refuse":
            raise InputError(message)
        status["warnings"].append(message)
    return rgb


def make_image_sample(
    source: SynthSource,
    rgb_linear: np.ndarray,
    recipe: dict[str, Any],
    seed: int,
    length: int,
    number: int,
    *,
    absolute: bool = False,
) -> Sample:
    """One synthetic clip pair from an HDR image (linear BT.2020: relative, or cd/m^2 when ``absolute``);
    fully determined by its arguments."""
    from datakit.synth.degrade import grade_and_degrade
    from datakit.synth.exposure import absolute_scale
    from datakit.synth.params import resolve_ranges
    from datakit.synth.warp import render_clip, sample_region_motion, sample_trajectory

    ranges = resolve_ranges(recipe["ranges"])
    rng = sample_rng(seed, source.source_id, length, number)
    tile = recipe["clips"]["tile"]
    if absolute:
        scale, scale_info = 1.0, {"method": "absolute", "scale": 1.0}
    else:
        scale, scale_info = absolute_scale(rgb_linear, rng, ranges["absolute_scale"])
    trajectory_cfg = ranges["trajectory"]
    homographies = sample_trajectory(
        length, rng, trajectory_cfg["max_shift"], trajectory_cfg["max_zoom"],
        trajectory_cfg["max_rotation_deg"], trajectory_cfg["max_perspective"],
    )  # fmt: skip
    blur_lo, blur_hi = trajectory_cfg["motion_blur_samples"]
    blur_samples = int(rng.integers(blur_lo, blur_hi + 1))
    region = sample_region_motion(length, rng) if rng.random() < trajectory_cfg["region_motion_p"] else None
    zoom = float(np.exp(rng.uniform(np.log(0.6), np.log(2.0))))  # source pixels per output pixel (capped)
    position = (float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.1, 0.9)))
    clip_nits = render_clip(
        rgb_linear * np.float32(scale), homographies, (tile, tile), blur_samples,
        scale=zoom, position=position, region=region,
    )  # fmt: skip
    sdr, hdr, params, mastering = grade_and_degrade(clip_nits, rng, recipe["ranges"], fps=recipe["clips"]["fps"])
    frames = list(range(length))
    return Sample(
        sample_id=f"{source.source_id}-n{length:02d}-{number:03d}",
        source_id=source.source_id,
        sdr=sdr,
        hdr=hdr,
        sdr_frames=frames,
        hdr_frames=frames,
        times=[i / recipe["clips"]["fps"] for i in frames],
        crop=(0, 0, tile, tile),
        scene=0,
        score=1.0,
        meta={
            "synthetic": "image",
            "source_file": source.path.name,
            "frame_time": source.frame_time,
            "seed": seed,
            "length": length,
            "number": number,
            "absolute_scale": scale_info,
            "trajectory": np.round(homographies, 6).tolist(),
            "motion_blur_samples": blur_samples,
            "region_motion": region is not None,
            "zoom": zoom,
            "position": position,
            "degradation": params.to_dict(),
            "mastering": mastering,
            "peak_nits": float(clip_nits.max()),
        },
    )


def video_samples(source: SynthSource, recipe: dict[str, Any], seed: int, status: dict[str, Any]):
    """Samples of the SDR-video branch: SDR clip -> inverse tone mapping -> HDR clip -> degradation chain."""
    from datakit.io.probe import probe, require_sdr
    from datakit.io.reader import VideoReader

    info = probe(source.path)
    status["warnings"].extend(require_sdr(info) or [])
    cfg = recipe["source"]
    every = max(1, round(cfg["every_seconds"] * float(info.fps)))
    with VideoReader(source.path, encoding="sdr") as reader:
        for length in recipe["clips"]["lengths"]:
            starts = list(range(0, max(0, info.frame_count - length + 1), every))[: cfg["max_clips_per_video"]]
            if not starts:
                status["rejected"]["video_too_short"] += 1
            for number, start in enumerate(starts):
                frames = reader.read_at(list(range(start, start + length)))
                rgb_sdr = np.stack([f.rgb("float32") for f in frames])
                yield make_video_sample(source, rgb_sdr, [f.time for f in frames], start, recipe, seed, number)


def make_video_sample(
    source: SynthSource,
    rgb_sdr: np.ndarray,
    times: list[float],
    start: int,
    recipe: dict[str, Any],
    seed: int,
    number: int,
) -> Sample:
    """One pair from a high-quality SDR clip (float32 BT.709 R'G'B', (T, H, W, 3))."""
    from datakit.synth.degrade import grade_and_degrade
    from datakit.synth.itm import ITM_OPERATORS

    length, height, width = rgb_sdr.shape[:3]
    tile = recipe["clips"]["tile"]
    if min(height, width) < tile:
        raise InputError(f"{source.path.name}: frames {width}x{height} are smaller than the {tile}px tile")
    rng = sample_rng(seed, source.source_id, length, number)
    y = int(rng.integers(0, height - tile + 1))
    x = int(rng.integers(0, width - tile + 1))
    operator = recipe["source"]["itm"]
    clip_nits = ITM_OPERATORS[operator](rgb_sdr[:, y : y + tile, x : x + tile])
    sdr, hdr, params, mastering = grade_and_degrade(clip_nits, rng, recipe["ranges"], fps=recipe["clips"]["fps"])
    frames = list(range(start, start + length))
    return Sample(
        sample_id=f"{source.source_id}-n{length:02d}-{number:03d}",
        source_id=source.source_id,
        sdr=sdr,
        hdr=hdr,
        sdr_frames=frames,
        hdr_frames=frames,
        times=times,
        crop=(x, y, tile, tile),
        scene=0,
        score=1.0,
        meta={
            "synthetic": "sdr_video",
            "source_file": source.path.name,
            "seed": seed,
            "length": length,
            "number": number,
            "itm": operator,
            "degradation": params.to_dict(),
            "mastering": mastering,
        },
    )


def regenerate_sample(record: dict[str, Any], recipe: dict[str, Any], source_path: str | os.PathLike[str]) -> Sample:
    """Rebuild one image-branch sample from its manifest line, the recipe and its source file."""
    meta = record["meta"]
    source = SynthSource(record["source_id"], Path(source_path), "images", meta.get("frame_time"))
    status: dict[str, Any] = {"warnings": []}
    rgb = load_hdr_source(source, recipe["source"], status)
    return make_image_sample(
        source, rgb, recipe, meta["seed"], meta["length"], meta["number"], absolute=status["absolute"]
    )
