"""``datakit eval``: run a model on the test split at full resolution and score it as the papers do.

Data: output folders of ``datakit build`` / ``datakit synth`` (their ``split``), or plain HDF5 pair files
(:class:`PairFile`: ``sdr`` and ``hdr`` arrays in the shards' layout, every sample scored). Each test sample
(``T`` frames, full stored resolution) is converted in overlapping tiles (:func:`datakit.nn.tiling.tiled_apply`),
its frames fed to the model as ``datakit convert`` feeds a video (:func:`convert_clip`). Outputs are clipped to
[0, 1] and scored against the ground truth with :mod:`datakit.metrics` (uint16 round trip, as if written to 16-bit
PNG): PSNR, SSIM, SR-SIM and mean Delta E_ITP per frame, averaged over all frames of all samples; temporal
consistency per clip (``T >= 2``), averaged over clips.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from datakit.errors import DatakitError, InputError
from datakit.metrics import IMAGE_METRICS, frame_brightness, image_metrics, temporal_consistency_from_tracks
from datakit.nn.dataset import ShardDataset
from datakit.nn.device import configure_threads, select_device
from datakit.nn.registry import count_parameters, model_spec
from datakit.nn.tiling import tiled_apply
from datakit.nn.train import load_model

__all__ = [
    "PAIR_FILE_SUFFIXES",
    "PairFile",
    "convert_clip",
    "evaluate",
    "format_table",
    "iter_convert_clip",
    "jsonable",
    "load_model",
]

PAIR_FILE_SUFFIXES = (".h5", ".hdf5")
"""A ``--data`` path with one of these suffixes is read as a :class:`PairFile`, anything else as an output folder."""
_PAIR_LAYOUT = "sdr (N, T, H, W, 3) or (N, H, W, 3) uint8 BT.709 R'G'B', hdr the same shape uint16 PQ code x 65535"


class PairFile:
    """A plain HDF5 file of SDR/HDR pairs, in the layout of this project's shards (:mod:`datakit.store.shards`):

    - ``sdr``: ``(N, T, H, W, 3)`` or ``(N, H, W, 3)`` uint8, BT.709 R'G'B' full-range codes (``round(signal * 255)``);
    - ``hdr``: the same shape, uint16 SMPTE ST 2084 PQ BT.2020 R'G'B' codes (``round(pq * 65535)``, HDRTV1K).

    Every sample is scored (a pair file has no splits). Other datasets in the file are ignored; chunked and
    compressed arrays are fine (hdf5plugin's filters, Blosc2 included, are loaded). The file is untrusted: a
    missing array, a wrong dtype, rank or channel count, or SDR and HDR of different shapes raise
    :class:`InputError` here, before any model runs.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import h5py
        import hdf5plugin  # noqa: F401 - registers the compression filters shards use

        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such file")
        try:
            self.file = h5py.File(self.path, "r")
        except OSError:
            raise InputError(f"{self.path}: not a readable HDF5 file") from None
        try:
            self.sdr, self.hdr = self._validate()
        except DatakitError:
            self.file.close()
            raise

    def _validate(self) -> tuple[Any, Any]:
        import h5py

        arrays = []
        for name, dtype in (("sdr", np.uint8), ("hdr", np.uint16)):
            item = self.file.get(name)
            if not isinstance(item, h5py.Dataset):
                raise InputError(f"{self.path}: no '{name}' array (expected {_PAIR_LAYOUT})")
            if item.dtype != dtype:
                raise InputError(f"{self.path}: '{name}' is {item.dtype}, expected {np.dtype(dtype)} ({_PAIR_LAYOUT})")
            if item.ndim not in (4, 5) or item.shape[-1] != 3 or min(item.shape[:-1], default=0) < 1:
                raise InputError(f"{self.path}: '{name}' has shape {item.shape}, expected {_PAIR_LAYOUT}")
            arrays.append(item)
        sdr, hdr = arrays
        if sdr.shape != hdr.shape:
            raise InputError(f"{self.path}: 'sdr' {sdr.shape} and 'hdr' {hdr.shape} differ in shape")
        return sdr, hdr

    def __len__(self) -> int:
        return int(self.sdr.shape[0])

    def sample(self, index: int) -> tuple[str, np.ndarray, np.ndarray]:
        """``(sample_id, sdr (T, H, W, 3) uint8, hdr (T, H, W, 3) uint16)`` of sample ``index``."""
        sdr, hdr = np.asarray(self.sdr[index]), np.asarray(self.hdr[index])
        if sdr.ndim == 3:
            sdr, hdr = sdr[None], hdr[None]
        return f"{self.path.name}#{index}", sdr, hdr

    def close(self) -> None:
        self.file.close()


def _samples(
    data: Sequence[str | os.PathLike[str]], split: str, limit: int | None
) -> tuple[int, Iterator[tuple[str, np.ndarray, np.ndarray]]]:
    """How many samples will be scored, and the samples ``(sample_id, sdr codes, hdr codes)``: the ``split`` of
    the output folders, then every sample of the pair files, in the order given; at most ``limit``."""
    files = [PairFile(d) for d in data if Path(d).suffix.lower() in PAIR_FILE_SUFFIXES]
    folders = [d for d in data if Path(d).suffix.lower() not in PAIR_FILE_SUFFIXES]
    dataset = ShardDataset(folders, split, frames=None, crop=None, augment=False) if folders else None
    sizes = [len(dataset.items) if dataset else 0, *map(len, files)]
    count = sum(sizes) if limit is None else min(limit, sum(sizes))

    def generate() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        done = 0
        try:
            if dataset is not None:
                for ref in dataset.items[:count]:
                    sdr, hdr = dataset.reader(ref.shard).arrays(ref.index)  # (T, H, W, 3) uint8 / uint16
                    done += 1
                    yield ref.sample_id, sdr, hdr
            for pair_file in files:
                for index in range(min(len(pair_file), count - done)):
                    done += 1
                    yield pair_file.sample(index)
        finally:
            if dataset is not None:
                dataset.close()
            for pair_file in files:
                pair_file.close()

    return count, generate()


_HEADERS = {"psnr": "PSNR↑", "ssim": "SSIM↑", "sr_sim": "SR-SIM↑", "delta_e_itp": "ΔE_ITP↓", "temporal": "TC↓"}


def _frames(sdr: torch.Tensor | np.ndarray, index: list[int]) -> torch.Tensor:
    """Float ``rgb_sdr`` frames ``(len(index), 3, H, W)`` from a float tensor or a uint8 ``(T, H, W, 3)`` array."""
    if isinstance(sdr, np.ndarray):
        if sdr.dtype != np.uint8 or sdr.ndim != 4 or sdr.shape[-1] != 3:
            raise InputError(f"SDR clip array must be uint8 (T, H, W, 3), got {sdr.dtype} {sdr.shape}")
        return torch.from_numpy(np.ascontiguousarray(sdr[index])).permute(0, 3, 1, 2).float() / 255.0
    return sdr[index].float()


@torch.no_grad()
def iter_convert_clip(
    model: nn.Module,
    sdr: torch.Tensor | np.ndarray,
    *,
    tile: int | None = 512,
    overlap: int = 32,
    device: torch.device | str = "cpu",
) -> Iterator[torch.Tensor]:
    """Output frames of :func:`convert_clip` one by one, in order (``rgb_pq`` ``(3, H, W)``, CPU float32)."""
    from datakit.convert import reflect_index

    frames = int(getattr(model, "frames", 1))
    every = frames > 1 and int(getattr(model, "output_frames", 1)) == frames
    count = sdr.shape[0]

    def fn(tile_in: torch.Tensor) -> torch.Tensor:
        out = model(tile_in)
        return out[:, frames // 2] if out.dim() == 5 and not every else out

    t = 0
    while t < count:
        if frames == 1:
            x = _frames(sdr, [t]).to(device)
        else:
            first = t if every else t - frames // 2
            x = _frames(sdr, [reflect_index(first + k, count) for k in range(frames)]).unsqueeze(0).to(device)
        y = tiled_apply(fn, x, tile, overlap).clamp(0.0, 1.0).cpu()[0]
        if every:
            keep = min(frames, count - t)
            yield from y[:keep]
            t += keep
        else:
            yield y
            t += 1


def convert_clip(
    model: nn.Module,
    sdr: torch.Tensor | np.ndarray,
    *,
    tile: int | None = 512,
    overlap: int = 32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Convert an SDR clip to ``rgb_pq`` ``(T, 3, H, W)`` in [0, 1] (CPU float32).

    ``sdr``: ``rgb_sdr`` float ``(T, 3, H, W)`` in [0, 1], or the stored uint8 ``(T, H, W, 3)`` codes. Frames are
    fed as ``datakit convert`` feeds a video (:mod:`datakit.convert`): single-frame models one frame at a time;
    models with ``F = model.frames > 1`` returning the centre frame get the window ``t - F//2 .. t + F//2`` for
    output frame ``t``, and models returning all ``F`` frames run on consecutive groups of ``F``; past the clip's
    ends frames are mirrored without repeating the edge (:func:`datakit.convert.reflect_index`).
    """
    return torch.stack(list(iter_convert_clip(model, sdr, tile=tile, overlap=overlap, device=device)))


def evaluate(
    model_name: str | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    data: Sequence[str | os.PathLike[str]] = (),
    *,
    split: str = "test",
    tile: int | None = 512,
    overlap: int = 32,
    device: str = "auto",
    limit: int | None = None,
    threads: int | None = None,
    progress: bool = False,
    untrained: bool = False,
) -> dict[str, Any]:
    """Score a model (``classical`` when neither a name nor a checkpoint is given) on ``split`` of ``data``.

    The model is found as ``datakit convert`` finds it (:func:`datakit.convert.resolve_model`): a learned model
    named without ``checkpoint`` loads its shipped ``models/NAME/*.pt``. ``data``: output folders and
    :class:`PairFile` paths (``.h5`` / ``.hdf5``), in any mix.

    Returns ``{"model", "checkpoint", "params", "paper_params", "split", "samples", "frames", "tile", "overlap",
    "metrics": {psnr, ssim, sr_sim, delta_e_itp, temporal}, "per_sample": [...], "warnings": [...]}``
    (``warnings``: imported ground truth with an unfixed gain error); ``temporal`` is ``None`` when
    no sample has two frames or more. ``threads``: torch threads (default: all cores). Samples are read as stored
    (uint8 / uint16) and scored frame by frame, so a 10-frame 4K clip needs little more memory than its codes.
    """
    from tqdm import tqdm

    from datakit.convert import resolve_model

    configure_threads(threads)
    dev = select_device(device)
    if untrained:
        model, name, info = load_model(model_name, checkpoint, device=dev, untrained=True)
    else:  # the checkpoint lookup of datakit convert: --model NAME alone loads the shipped models/NAME/*.pt
        model, name, info = resolve_model(model_name, checkpoint, dev)
    count, samples = _samples(data, split, limit)
    per_sample: list[dict[str, Any]] = []
    frame_scores: dict[str, list[float]] = {k: [] for k in IMAGE_METRICS}
    temporal: list[float] = []
    for sample_id, sdr, hdr in tqdm(samples, total=count, desc=f"eval {name}", unit="sample", disable=not progress):
        scores, track_pred, track_true = [], [], []
        frames = iter_convert_clip(model, sdr, tile=tile, overlap=overlap, device=dev)
        for out, truth in zip(frames, hdr, strict=True):
            pred = out.permute(1, 2, 0).numpy()  # (H, W, 3) rgb_pq
            scores.append(image_metrics(pred, truth))
            track_pred.append(frame_brightness(pred))
            track_true.append(frame_brightness(truth))
        row: dict[str, Any] = {"sample_id": sample_id, "frames": len(scores)}
        for key in IMAGE_METRICS:
            values = [s[key] for s in scores]
            frame_scores[key].extend(values)
            row[key] = float(np.mean(values))
        row["temporal"] = temporal_consistency_from_tracks(track_pred, track_true) if len(scores) > 1 else None
        if row["temporal"] is not None:
            temporal.append(row["temporal"])
        per_sample.append(row)
    metrics: dict[str, float | None] = {k: float(np.mean(v)) for k, v in frame_scores.items()}
    metrics["temporal"] = float(np.mean(temporal)) if temporal else None
    spec = model_spec(name)
    from datakit.importers.build import ground_truth_warnings

    return {
        "warnings": ground_truth_warnings(list(data)),
        "model": name,
        "checkpoint": info.get("checkpoint"),
        "step": info.get("step"),
        "params": count_parameters(model),
        "paper_params": spec.paper_params,
        "split": split,
        "data": [os.fspath(d) for d in data],
        "samples": count,
        "frames": len(frame_scores["psnr"]),
        "tile": tile,
        "overlap": overlap,
        "device": str(dev),
        "metrics": metrics,
        "per_sample": per_sample,
    }


def jsonable(value: Any) -> Any:
    """``value`` with non-finite floats (an infinite PSNR of identical images) replaced by ``None`` for JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _params(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1_000_000 else f"{n / 1e3:.2f}K"


def _fmt(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf"
    return {"psnr": f"{value:.2f}", "delta_e_itp": f"{value:.2f}", "temporal": f"{value:.5f}"}.get(key, f"{value:.4f}")


def _source_text(result: dict[str, Any]) -> str:
    """What was scored: the split of the output folders and/or the pair files (which have no splits)."""
    files = [d for d in result.get("data", []) if Path(d).suffix.lower() in PAIR_FILE_SUFFIXES]
    parts = [f"split '{result['split']}'"] if len(files) < len(result.get("data", [])) or not files else []
    if files:
        parts.append(f"{len(files)} pair file{'s' if len(files) > 1 else ''}")
    return " and ".join(parts)


def format_table(result: dict[str, Any]) -> str:
    """A papers-style table: method, parameters, PSNR, SSIM, SR-SIM, Delta E_ITP, temporal consistency."""
    keys = [*IMAGE_METRICS, "temporal"]
    header = ["Method", "Params", *(_HEADERS[k] for k in keys)]
    row = [result["model"], _params(result["params"]), *(_fmt(k, result["metrics"][k]) for k in keys)]
    widths = [max(len(h), len(v)) + 2 for h, v in zip(header, row, strict=True)]
    lines = ["".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip(),
             "".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()]  # fmt: skip
    tiles = "whole frames" if not result["tile"] else f"tiles {result['tile']} px, overlap {result['overlap']} px"
    lines.append(
        f"{result['samples']} samples ({result['frames']} frames) of {_source_text(result)} at full resolution, "
        f"{tiles}; PQ codes, uint16 round trip; SSIM data range 1.0; TC in PQ code units"
    )
    lines.extend(f"warning: {w}" for w in result.get("warnings", []))
    return "\n".join(lines)
