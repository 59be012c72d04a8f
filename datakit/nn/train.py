"""``datakit train``: train a registered SDR-to-HDR model on datakit shards, resumably, on one or several processes.

What a run does (defaults from :mod:`datakit.nn.config`, i.e. HDCFM's recipe unless the model's paper says
otherwise):

- data: :class:`~datakit.nn.dataset.ShardDataset` over the ``train`` split of every ``--data`` folder (random
  square crops, flips and 90-degree rotations, ``model.frames`` consecutive frames), drawn by a deterministic
  :class:`~datakit.nn.dataset.ShardSampler`; validation on centre crops of the ``test`` split every ``val_every``
  steps (L1 and PSNR on PQ codes);
- optimization: Adam (lr 5e-4), learning rate multiplied by ``lr_gamma`` (0.5) every ``step_every`` iterations or
  at ``lr_milestones``; loss L1 on PQ codes, KPN-MFI's tanh-L1 + brightness consistency for ``kpnmfi``, and
  ``L1 + 0.5 perceptual + 0.005 patch-GAN`` for ``pdcg`` (see :mod:`datakit.nn.losses`);
- outputs in ``RUN``: ``checkpoints/last.pt`` (every ``checkpoint_every`` steps and at the end) and
  ``checkpoints/best.pt`` (lowest validation L1), ``metrics.jsonl`` (one JSON object per log/validation event),
  ``curve.png`` (training and validation loss, drawn with OpenCV), ``config.json``;
- ``--resume`` continues from ``checkpoints/last.pt`` exactly: model, optimizer, scheduler, AMP scaler, step,
  every RNG state and the sampler position are restored, so N steps in one go and N/2 + N/2 give the same weights
  (with the same number of processes; Ctrl-C finishes the current step and writes ``last.pt`` first);
- CUDA with automatic mixed precision when available (``amp``); under ``torchrun --nproc_per_node N`` the same
  command trains with DistributedDataParallel (``nccl`` on CUDA, ``gloo`` on CPU), each rank drawing its own share
  of every batch (``batch`` is the global batch size) and rank 0 writing the outputs.

PDCG (HDCFM stage 2) refines a first-stage HDR frame: its input ``x_hr`` comes from the frozen model of
``base_checkpoint`` (an HDCFM checkpoint of this tool), or from the ``classical`` conversion when none is given.
The first stage is stored inside the PDCG checkpoint, so evaluation and conversion need only that file.

Checkpoints are dicts saved with :func:`torch.save` under a temporary name and renamed (:func:`atomic_path`), read
with ``weights_only=True``.
"""

from __future__ import annotations

import collections
import json
import math
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from datakit import __version__
from datakit.errors import InputError, ModelError, OutputExistsError, RecipeError, StoreError
from datakit.fsutil import atomic_path, atomic_write_text
from datakit.nn.config import TrainConfig, build_config
from datakit.nn.dataset import ShardDataset, ShardSampler, collate, iterate, worker_init_fn
from datakit.nn.device import DistContext, cleanup_distributed, configure_threads, init_distributed
from datakit.nn.losses import (
    KPNMFILoss,
    discriminator_gan_loss,
    generator_gan_loss,
    l1_loss,
    perceptual_loss,
    tanh_l1_loss,
)
from datakit.nn.registry import count_parameters, create_model, model_spec

__all__ = [
    "CHECKPOINT_FORMAT",
    "RESUME_OVERRIDABLE",
    "PDCGPipeline",
    "check_checkpoint",
    "draw_curve",
    "load_model",
    "model_batch",
    "read_checkpoint",
    "resolve_config",
    "train",
]

CHECKPOINT_FORMAT = "datakit-checkpoint"
CHECKPOINT_VERSION = 1
RESUME_OVERRIDABLE = frozenset(
    {"steps", "device", "num_workers", "val_every", "val_samples", "checkpoint_every", "log_every", "threads"}
)
"""Settings that may change when a run is resumed (the rest would break exact continuation)."""


# ----------------------------------------------------------------------------------------------- checkpoints


def read_checkpoint(path: str | os.PathLike[str], *, training: bool = False) -> Any:
    """Load a checkpoint file on the CPU (``weights_only``); :class:`ModelError` if missing or unreadable, or if it
    is a datakit checkpoint whose fields fail :func:`check_checkpoint` (``training``: one ``--resume`` reads)."""
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"{p}: checkpoint not found")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as error:  # any unreadable or unsafe file is a bad user input
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(f"{p}: not a readable PyTorch checkpoint ({first})") from None
    return check_checkpoint(obj, str(p), training=training)


def _is_state(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())


def _entry_problem(entry: Any) -> str | None:
    """What is wrong with a model entry (``model_name``, ``model``, ``model_args``, ``quantized``), or ``None``."""
    if not isinstance(entry, dict):
        return f"expected a table, got {type(entry).__name__}"
    if not isinstance(entry.get("model_name"), str):
        return "no model name"
    if not _is_state(entry.get("model")):
        return "model weights must be a dict of named tensors"
    args = entry.get("model_args")
    if args is not None and not (isinstance(args, dict) and all(isinstance(k, str) for k in args)):
        return f"model_args must be a dict of keyword arguments, got {type(args).__name__}"
    scales = entry.get("quantized")
    if scales is not None and not (_is_state(scales) and set(scales) <= set(entry["model"])):
        return "quantized must map weight names of the model to scale tensors"
    return None


_TRAINING_FIELDS = {"optimizer": dict, "scheduler": dict, "scaler": dict, "rng": list, "config": dict, "step": int}


def check_checkpoint(obj: Any, origin: str, *, training: bool = False) -> Any:
    """The one check of what a checkpoint file holds, run where it is read (:func:`read_checkpoint`).

    A datakit checkpoint (``format`` = :data:`CHECKPOINT_FORMAT`) must hold a valid model entry (a model name,
    weights as named tensors, ``model_args`` a dict, ``quantized`` scales of existing weights), ``step`` a whole
    number >= 0, ``config`` and ``extra`` dicts, and ``extra.base`` (PDCG's first stage) a valid entry when
    present; ``training`` (a ``--resume``) also needs the optimizer, scheduler, scaler, RNG states and config.
    Anything else (a bare state dict) is returned as is for :func:`load_model` to judge. :class:`ModelError`.
    """
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        if training:
            raise ModelError(f"{origin}: not a datakit training checkpoint")
        return obj
    problem = _entry_problem(obj)
    step = obj.get("step")
    if problem is None and step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        problem = f"step {step!r} is not a whole number >= 0"
    for key in ("config", "extra"):
        if problem is None and obj.get(key) is not None and not isinstance(obj[key], dict):
            problem = f"{key} must be a dict, got {type(obj[key]).__name__}"
    base = obj["extra"].get("base") if isinstance(obj.get("extra"), dict) else None
    if problem is None and base is not None and _entry_problem(base):
        problem = f"first-stage model: {_entry_problem(base)}"
    if problem is None and training:
        for key, kind in _TRAINING_FIELDS.items():
            if not isinstance(obj.get(key), kind) or isinstance(obj.get(key), bool):
                problem = f"{key} must be a {kind.__name__} in a training checkpoint"
                break
        else:
            if not all(isinstance(r, dict) and {"python", "numpy", "torch"} <= set(r) for r in obj["rng"]):
                problem = "rng must hold one state per process"
    if problem:
        raise ModelError(f"{origin}: damaged datakit checkpoint ({problem})")
    return obj


def _bare_state(obj: Any) -> dict[str, torch.Tensor] | None:
    """A plain ``state_dict`` (possibly under ``state_dict`` / ``params`` / ``model``) or ``None``."""
    if isinstance(obj, dict):
        for key in ("state_dict", "params", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
        if obj and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
            return obj
    return None


def _load_state(model: nn.Module, state: dict[str, torch.Tensor], name: str, origin: str) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise ModelError(f"{origin}: weights do not fit model {name!r} ({first})") from None


class PDCGPipeline(nn.Module):
    """HDCFM's two stages as one SDR-to-HDR model: ``rgb_sdr (B,3,H,W) -> rgb_pq (B,3,H,W)``.

    ``x_hr = base(sdr)``, ``M = overexposure_mask(sdr)``, output ``PDCG(x_hr, M) * M + x_hr * (1 - M)`` (Eq. 3).
    """

    frames = 1
    output_frames = 1

    def __init__(self, base: nn.Module, pdcg: nn.Module) -> None:
        super().__init__()
        self.base = base
        self.pdcg = pdcg

    def forward(self, sdr: torch.Tensor) -> torch.Tensor:
        from datakit.nn.models.pdcg import overexposure_mask

        with torch.no_grad():
            x_hr = self.base(sdr).clamp(0.0, 1.0)
        mask = overexposure_mask(sdr)
        return self.pdcg.blend(x_hr, self.pdcg(x_hr, mask), mask)


def _model_from_entry(entry: dict[str, Any], origin: str) -> nn.Module:
    name = entry.get("model_name")
    if not isinstance(name, str) or not isinstance(entry.get("model"), dict):
        raise ModelError(f"{origin}: not a datakit checkpoint (no model name or weights)")
    args = dict(entry.get("model_args") or {})
    try:
        model = create_model(name, **args)
    except (TypeError, ValueError, RuntimeError) as error:  # values the factory cannot build (names are checked)
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(f"{origin}: model_args {args} do not build model {name!r} ({first})") from None
    try:
        state = dequantize_state(entry["model"], entry.get("quantized") or {})
    except RuntimeError as error:  # a scale that does not broadcast over its weight
        raise ModelError(f"{origin}: quantized scales do not fit the weights ({error})") from None
    _load_state(model, state, name, origin)
    return model


def dequantize_state(state: dict[str, torch.Tensor], scales: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Undo the int8 weight storage of small shipped checkpoints: ``weight = int8 * scale`` (scale per output
    channel, broadcast over the other axes); tensors without a scale are returned as stored."""
    out = dict(state)
    for key, scale in scales.items():
        q = state[key]
        out[key] = q.float() * scale.float().reshape(-1, *([1] * (q.dim() - 1)))
    return out


def load_model(
    name: str | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    *,
    device: torch.device | str = "cpu",
    untrained: bool = False,
) -> tuple[nn.Module, str, dict[str, Any]]:
    """A ready-to-run SDR-to-HDR model in eval mode: ``(module, model name, info)``.

    With a datakit checkpoint the name is read from it (a different ``name`` raises :class:`ModelError`); a bare
    ``state_dict`` (e.g. converted public weights) needs ``name``. Without a checkpoint only models without trainable
    parameters (``classical``) are accepted. A PDCG checkpoint comes back as a :class:`PDCGPipeline` with its first
    stage. ``info`` holds the checkpoint's step and config when known. ``untrained=True`` (no checkpoint) gives the
    architecture at its initialization under ``torch.manual_seed(0)``: the "untrained" row of a comparison.
    """
    info: dict[str, Any] = {"checkpoint": None if checkpoint is None else os.fspath(checkpoint)}
    if untrained:
        if checkpoint is not None:
            raise ModelError("--untrained scores the architecture at its initialization: give no checkpoint")
        if not name:
            raise ModelError("--untrained needs --model NAME")
        torch.manual_seed(0)
        info["untrained"] = True
        return create_model(name).to(device).eval(), model_spec(name).name, info
    if checkpoint is None:
        name = name or "classical"
        model = create_model(name)
        if count_parameters(model, trainable_only=True) > 0:
            raise ModelError(f"model {name!r} has trainable weights: pass --checkpoint (from datakit train)")
        return model.to(device).eval(), model_spec(name).name, info
    origin = os.fspath(checkpoint)
    obj = read_checkpoint(checkpoint)
    if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT:
        saved = str(obj.get("model_name"))
        if name is not None and model_spec(name).name != saved:
            raise ModelError(f"{origin}: checkpoint of model {saved!r}, not {name!r}")
        model = _model_from_entry(obj, origin)
        name = saved
        info.update(step=obj.get("step"), config=obj.get("config"))
        if name == "pdcg":
            base_entry = (obj.get("extra") or {}).get("base")
            if not isinstance(base_entry, dict):
                raise ModelError(f"{origin}: PDCG checkpoint without its first-stage model")
            model = PDCGPipeline(_model_from_entry(base_entry, origin), model)
            info["base_model"] = base_entry.get("model_name")
    else:
        state = _bare_state(obj)
        if state is None:
            raise ModelError(f"{origin}: not a datakit checkpoint and not a state dict")
        if name is None:
            raise ModelError(f"{origin}: a bare state dict: pass --model NAME")
        name = model_spec(name).name
        model = create_model(name)
        _load_state(model, state, name, origin)
    return model.to(device).eval(), name, info


def _scheduler_state(scheduler: torch.optim.lr_scheduler.LRScheduler) -> dict[str, Any]:
    state = scheduler.state_dict()
    if isinstance(state.get("milestones"), collections.Counter):
        state["milestones"] = dict(state["milestones"])  # plain dict: loadable with weights_only
    return state


def _load_scheduler(scheduler: torch.optim.lr_scheduler.LRScheduler, state: dict[str, Any]) -> None:
    state = dict(state)
    if isinstance(state.get("milestones"), dict):
        state["milestones"] = collections.Counter(state["milestones"])
    scheduler.load_state_dict(state)


def _capture_rng() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _restore_rng(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _save(path: Path, payload: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


# ----------------------------------------------------------------------------------------------- config


def resolve_config(
    out: str | os.PathLike[str],
    config_file: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    resume: bool = False,
) -> TrainConfig:
    """The config of a new run, or of a resumed one (the run's own config; only :data:`RESUME_OVERRIDABLE` keys may
    change). :class:`OutputExistsError` when starting over a run that has a checkpoint."""
    last = Path(out) / "checkpoints" / "last.pt"
    if not resume:
        config = _absolute_paths(build_config(config_file, overrides))
        if last.exists():
            raise OutputExistsError(f"{out}: holds a training run already; pass --resume or choose another --out")
        return config
    if not last.is_file():
        raise InputError(f"{out}: nothing to resume (no checkpoints/last.pt)")
    ckpt = read_checkpoint(last, training=True)
    base = dict(ckpt["config"])
    config = _absolute_paths(build_config(config_file, overrides, base=base))
    for key, value in config.to_dict().items():
        if key not in RESUME_OVERRIDABLE and value != base.get(key):
            raise RecipeError(f"--resume continues the run as configured: {key!r} cannot change ({base.get(key)!r})")
    return config


def _absolute_paths(config: TrainConfig) -> TrainConfig:
    """Paths in the config made absolute, so that a run can be resumed from another working directory."""
    config.data = [os.path.abspath(d) for d in config.data]
    for key in ("vgg19_weights", "base_checkpoint"):
        if getattr(config, key):
            setattr(config, key, os.path.abspath(getattr(config, key)))
    return config


# ----------------------------------------------------------------------------------------------- batches


def model_batch(model: nn.Module, batch: dict[str, Any], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(input, target) of a collated batch for ``model``.

    Single-frame models: ``sdr[:, 0]`` ``(B, 3, H, W)`` -> ``hdr[:, 0]``. Multi-frame models with one output
    frame (DSLNet): all frames -> the centre frame of ``hdr``. Models returning every frame (KPN-MFI): all frames.
    """
    sdr = batch["sdr"].to(device, non_blocking=True)
    hdr = batch["hdr"].to(device, non_blocking=True)
    frames = int(getattr(model, "frames", 1))
    if frames == 1:
        return sdr[:, 0], hdr[:, 0]
    if int(getattr(model, "output_frames", 1)) == 1:
        return sdr, hdr[:, frames // 2]
    return sdr, hdr


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


# ----------------------------------------------------------------------------------------------- curve


def draw_curve(records: list[dict[str, Any]], path: str | os.PathLike[str], title: str = "") -> None:
    """Training (blue) and validation (red) loss against step, log scale, as a PNG drawn with OpenCV."""
    import cv2

    train_pts = [(r["step"], r["loss"]) for r in records if r.get("kind") == "train" and r.get("loss", 0) > 0]
    val_pts = [(r["step"], r["val_l1"]) for r in records if r.get("kind") == "val" and r.get("val_l1", 0) > 0]
    width, height, left, right, top, bottom = 900, 520, 80, 20, 40, 50
    img = np.full((height, width, 3), 255, np.uint8)
    pts = train_pts + val_pts
    if pts:
        x_max = max(max(s for s, _ in pts), 1)
        logs = [math.log10(v) for _, v in pts]
        y_lo, y_hi = math.floor(min(logs) * 2) / 2, math.ceil(max(logs) * 2) / 2
        y_hi = max(y_hi, y_lo + 0.5)

        def to_px(step: float, value: float) -> tuple[int, int]:
            x = left + (width - left - right) * step / x_max
            y = top + (height - top - bottom) * (y_hi - math.log10(value)) / (y_hi - y_lo)
            return round(x), round(y)

        grid = y_lo
        while grid <= y_hi + 1e-9:
            _, y = to_px(0, 10**grid)
            cv2.line(img, (left, y), (width - right, y), (225, 225, 225), 1)
            cv2.putText(img, f"{10**grid:.3g}", (5, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (80, 80, 80), 1)
            grid += 0.5
        for series, colour in ((train_pts, (200, 90, 30)), (val_pts, (40, 40, 220))):
            if len(series) == 1:
                cv2.circle(img, to_px(*series[0]), 3, colour, -1)
            elif series:
                poly = np.array([to_px(s, v) for s, v in series], np.int32)
                cv2.polylines(img, [poly], False, colour, 2, cv2.LINE_AA)
        cv2.putText(img, f"{x_max}", (width - right - 60, height - 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    cv2.rectangle(img, (left, top), (width - right, height - bottom), (0, 0, 0), 1)
    cv2.putText(img, "0", (left - 4, height - 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    cv2.putText(img, "step", (width // 2, height - 15), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    label = f"{title}  train loss (blue), validation L1 (red), log scale"
    cv2.putText(img, label, (left, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    with atomic_path(path, suffix=".png") as tmp:
        if not cv2.imwrite(str(tmp), img):
            raise InputError(f"{path}: could not write the PNG")


# ----------------------------------------------------------------------------------------------- the run


class _Run:
    """State of one training process (model, optimizers, loaders, outputs)."""

    def __init__(self, config: TrainConfig, out: Path, ctx: DistContext, device: torch.device, resume: bool) -> None:
        self.cfg, self.out, self.ctx, self.device = config, out, ctx, device
        cfg = config
        random.seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        torch.manual_seed(cfg.seed)
        model = create_model(cfg.model, **cfg.model_args)
        self.trainable = count_parameters(model, trainable_only=True)
        if self.trainable == 0:
            raise ModelError(f"model {cfg.model!r} has no trainable parameters: nothing to train")
        frames = int(getattr(model, "frames", 1))
        if cfg.frames is not None and cfg.frames != frames:
            raise RecipeError(f"config key 'frames': model {cfg.model!r} takes {frames} frames, not {cfg.frames}")
        self.frames = frames
        if cfg.batch % ctx.world_size:
            raise RecipeError(f"batch {cfg.batch} does not divide across {ctx.world_size} processes")
        self.rank_batch = cfg.batch // ctx.world_size
        self.is_pdcg = cfg.resolved_loss() == "pdcg"
        self.model = model.to(device)
        self.optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=tuple(cfg.adam_betas))
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, cfg.milestones(), gamma=cfg.lr_gamma)
        self.use_amp = cfg.amp and device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        loss_name = cfg.resolved_loss()
        self.loss_fn: nn.Module | Any = {
            "l1": l1_loss,
            "tanh_l1": tanh_l1_loss,
            "kpnmfi": KPNMFILoss(alpha=cfg.consistency_weight),
        }.get(loss_name, l1_loss)
        self.disc = None
        ckpt = read_checkpoint(out / "checkpoints" / "last.pt", training=True) if resume else None
        if self.is_pdcg:
            self._setup_pdcg(ckpt)
        self.best_val = math.inf
        self.step = 0
        if ckpt is not None:
            self._load(ckpt)
        if ctx.distributed:
            ids = [device.index] if device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
            if self.disc is not None:
                self.disc = nn.parallel.DistributedDataParallel(self.disc, device_ids=ids)
        torch.manual_seed(cfg.seed + 1000 * ctx.rank)  # per-rank randomness (dropout) after identical init
        if ckpt is not None:
            rng = ckpt["rng"]
            if len(rng) == ctx.world_size:
                try:
                    _restore_rng(rng[ctx.rank])
                except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as error:
                    raise ModelError(f"{out / 'checkpoints' / 'last.pt'}: damaged RNG state ({error})") from None
        self._datasets()

    # ------------------------------------------------------------------ setup

    def _setup_pdcg(self, ckpt: dict[str, Any] | None) -> None:
        """First stage (frozen), discriminator, its optimizer and the perceptual loss of a PDCG run."""
        from datakit.nn.models.pdcg import PatchDiscriminator

        cfg = self.cfg
        if min(cfg.crop, cfg.val_crop or cfg.crop) < 32:
            raise RecipeError("pdcg: crops must be >= 32 px for its patch discriminator")
        saved = ((ckpt or {}).get("extra") or {}).get("base")
        if isinstance(saved, dict):  # resuming: the first stage stored in the checkpoint
            base, base_name = _model_from_entry(saved, "checkpoints/last.pt").to(self.device), saved["model_name"]
        elif cfg.base_checkpoint:
            base, base_name, _ = load_model(None, cfg.base_checkpoint, device=self.device)
            if isinstance(base, PDCGPipeline) or int(getattr(base, "frames", 1)) != 1:
                raise RecipeError(f"base_checkpoint: {base_name!r} cannot be PDCG's first stage (single-frame models)")
        else:
            base, base_name = create_model("classical").to(self.device), "classical"
        for p in base.parameters():
            p.requires_grad_(False)
        self.base, self.base_name = base.eval(), base_name
        if isinstance(saved, dict):
            self.base_args = dict(saved.get("model_args") or {})
        else:
            self.base_args = {} if base_name == "classical" else _base_args(cfg.base_checkpoint)
        self.disc = PatchDiscriminator().to(self.device)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=cfg.lr, betas=tuple(cfg.adam_betas))
        self.sched_d = torch.optim.lr_scheduler.MultiStepLR(self.opt_d, cfg.milestones(), gamma=cfg.lr_gamma)
        self.scaler_d = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.perceptual = perceptual_loss(cfg.vgg19_weights).to(self.device)

    def _datasets(self) -> None:
        cfg, ctx = self.cfg, self.ctx
        self.train_ds = ShardDataset(
            cfg.data, "train", frames=self.frames, centre=cfg.centre, crop=cfg.crop, crop_mode="random",
            augment=cfg.augment, weights=cfg.data_weights, seed=cfg.seed,
        )  # fmt: skip
        self.val_ds = None
        if cfg.val_every > 0:
            try:
                self.val_ds = ShardDataset(
                    cfg.data, "test", frames=self.frames, centre="middle", crop=cfg.val_crop or cfg.crop,
                    crop_mode="centre", augment=False, seed=cfg.seed,
                )  # fmt: skip
            except StoreError as error:
                self.note(f"validation disabled: {error}")
        sampler = ShardSampler(
            self.train_ds, rank=ctx.rank, world_size=ctx.world_size, seed=cfg.seed, start=self.step * self.rank_batch
        )
        self.train_loader = self._loader(self.train_ds, sampler, drop_last=True)

    def _loader(self, ds: ShardDataset, sampler: ShardSampler, *, drop_last: bool) -> DataLoader:
        workers = self.cfg.num_workers
        return DataLoader(
            ds, batch_size=self.rank_batch, sampler=sampler, num_workers=workers, collate_fn=collate,
            worker_init_fn=worker_init_fn if workers else None, drop_last=drop_last,
            pin_memory=self.device.type == "cuda", generator=torch.Generator(),  # never touches the global RNG
            prefetch_factor=4 if workers else None, persistent_workers=False,
            # spawn, not fork: forking a process that already runs torch/OpenCV/x265 threads can deadlock
            multiprocessing_context="spawn" if workers else None,
        )  # fmt: skip

    def note(self, text: str) -> None:
        if self.ctx.is_main:
            print(f"datakit train: {text}", flush=True)

    # ------------------------------------------------------------------ checkpoints

    def _load(self, ckpt: dict[str, Any]) -> None:
        if ckpt.get("model_name") != self.cfg.model:
            raise ModelError(f"checkpoint of model {ckpt.get('model_name')!r}, not {self.cfg.model!r}")
        _load_state(self.model, ckpt["model"], self.cfg.model, "checkpoints/last.pt")
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
            _load_scheduler(self.scheduler, ckpt["scheduler"])
            self.scaler.load_state_dict(ckpt["scaler"])
            self.step = int(ckpt["step"])
            self.best_val = float(ckpt.get("best_val", math.inf))
            extra = ckpt.get("extra") or {}
            if self.disc is not None:
                self.disc.load_state_dict(extra["discriminator"])
                self.opt_d.load_state_dict(extra["disc_optimizer"])
                _load_scheduler(self.sched_d, extra["disc_scheduler"])
                self.scaler_d.load_state_dict(extra["disc_scaler"])
        except (KeyError, TypeError, ValueError, RuntimeError) as error:  # states that do not fit this run
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ModelError(f"{self.out / 'checkpoints' / 'last.pt'}: cannot resume from it ({first})") from None

    def checkpoint(self, names: tuple[str, ...] = ("last.pt",)) -> None:
        """Gather every rank's RNG state and write the checkpoint(s) from rank 0 (collective under DDP)."""
        rng = _capture_rng()
        if self.ctx.distributed:
            import torch.distributed as dist

            gathered: list[Any] = [None] * self.ctx.world_size
            dist.all_gather_object(gathered, rng)
        else:
            gathered = [rng]
        if not self.ctx.is_main:
            return
        model = _unwrap(self.model)
        payload: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "datakit_version": __version__,
            "model_name": self.cfg.model,
            "model_args": dict(self.cfg.model_args),
            "model": model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": _scheduler_state(self.scheduler),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "best_val": self.best_val,
            "rng": gathered,
            "world_size": self.ctx.world_size,
            "config": self.cfg.to_dict(),
            "extra": {},
        }
        if self.disc is not None:
            payload["extra"] = {
                "discriminator": _unwrap(self.disc).state_dict(),
                "disc_optimizer": self.opt_d.state_dict(),
                "disc_scheduler": _scheduler_state(self.sched_d),
                "disc_scaler": self.scaler_d.state_dict(),
                "base": {"model_name": self.base_name, "model_args": self.base_args, "model": self.base.state_dict()},
            }
        for name in names:
            _save(self.out / "checkpoints" / name, payload)

    # ------------------------------------------------------------------ steps

    def _autocast(self) -> Any:
        return torch.autocast("cuda", dtype=torch.float16) if self.use_amp else nullcontext()

    def train_step(self, batch: dict[str, Any]) -> dict[str, float]:
        x, target = model_batch(_unwrap(self.model), batch, self.device)
        if self.is_pdcg:
            return self._pdcg_step(x, target)
        try:
            with self._autocast():
                out = self.model(x)
        except ValueError as error:  # shape constraints of a model, e.g. a crop too small for its pooling
            raise ModelError(f"model {self.cfg.model!r} on {tuple(x.shape)} inputs: {error}") from None
        loss = self.loss_fn(out.float(), target)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return {"loss": float(loss.detach())}

    def _pdcg_inputs(self, sdr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from datakit.nn.models.pdcg import overexposure_mask

        with torch.no_grad():
            x_hr = self.base(sdr).clamp(0.0, 1.0)
        return x_hr, overexposure_mask(sdr)

    def _pdcg_step(self, sdr: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        from datakit.nn.models.pdcg import PDCG

        cfg = self.cfg
        x_hr, mask = self._pdcg_inputs(sdr)
        with self._autocast():
            out = PDCG.blend(x_hr, self.model(x_hr, mask), mask)
        # discriminator: real and generated frames in one pass (one DDP forward per backward)
        assert self.disc is not None
        with self._autocast():
            logits = self.disc(torch.cat([target, out.detach().to(target.dtype)]))
        loss_d = discriminator_gan_loss(*logits.float().chunk(2))
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler_d.scale(loss_d).backward()
        self.scaler_d.step(self.opt_d)
        self.scaler_d.update()
        self.sched_d.step()
        # generator: L1 + perceptual + adversarial (discriminator frozen for this pass)
        disc = _unwrap(self.disc)
        for p in disc.parameters():
            p.requires_grad_(False)
        out32 = out.float()
        l1 = l1_loss(out32, target)
        lp = self.perceptual(out32, target)
        with self._autocast():
            fake_logits = disc(out)
        lg = generator_gan_loss(fake_logits.float())
        loss = cfg.l1_weight * l1 + cfg.perceptual_weight * lp + cfg.gan_weight * lg
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        for p in disc.parameters():
            p.requires_grad_(True)
        return {"loss": float(loss.detach()), "l1": float(l1.detach()), "perceptual": float(lp.detach()),
                "gan_g": float(lg.detach()), "gan_d": float(loss_d.detach())}  # fmt: skip

    @torch.no_grad()
    def validate(self) -> dict[str, float] | None:
        """Mean L1 and PSNR (PQ codes, peak 1) of the model on the validation crops, over all ranks."""
        if self.val_ds is None:
            return None
        ctx = self.ctx
        sampler = ShardSampler(
            self.val_ds, rank=ctx.rank, world_size=ctx.world_size, shuffle=False, infinite=False,
            limit=max(self.cfg.val_samples, ctx.world_size),
        )  # fmt: skip
        model = _unwrap(self.model)
        model.eval()
        sums = torch.zeros(3, dtype=torch.float64)
        for batch in iterate(self._loader(self.val_ds, sampler, drop_last=False)):
            x, target = model_batch(model, batch, self.device)
            with self._autocast():
                if self.is_pdcg:
                    x_hr, mask = self._pdcg_inputs(x)
                    out = model.blend(x_hr, model(x_hr, mask), mask)
                else:
                    out = model(x)
            out = out.float().clamp(0.0, 1.0)
            err = (out - target).flatten(1)
            mse = err.square().mean(dim=1).clamp(min=1e-10)
            sums += torch.tensor(
                [float(err.abs().mean(dim=1).sum()), float((-10.0 * torch.log10(mse)).sum()), len(mse)],
                dtype=torch.float64,
            )
        model.train()
        if ctx.distributed:
            import torch.distributed as dist

            dist.all_reduce(sums)
        count = max(float(sums[2]), 1.0)
        return {"val_l1": float(sums[0]) / count, "val_psnr": float(sums[1]) / count, "val_samples": int(sums[2])}

    def _mean_across_ranks(self, values: dict[str, float]) -> dict[str, float]:
        if not self.ctx.distributed:
            return values
        import torch.distributed as dist

        keys = sorted(values)
        t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
        dist.all_reduce(t)
        return {k: float(v) / self.ctx.world_size for k, v in zip(keys, t.tolist(), strict=True)}

    # ------------------------------------------------------------------ loop

    def _batches(self) -> Iterator[dict[str, Any]]:
        yield from iterate(self.train_loader)

    def run(self, progress: bool) -> dict[str, Any]:
        from tqdm import tqdm

        cfg, ctx, out = self.cfg, self.ctx, self.out
        log_path = out / "metrics.jsonl"
        records: list[dict[str, Any]] = []
        if ctx.is_main:
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out / "config.json", json.dumps(cfg.to_dict(), indent=2, sort_keys=True))
            if log_path.is_file():  # keep what the resumed checkpoint had seen, drop what came after it
                for line in log_path.read_text(encoding="utf-8").splitlines():
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:  # a line cut short by a crash
                        continue
                    if record.get("step", 0) <= self.step:
                        records.append(record)
            atomic_write_text(log_path, "".join(json.dumps(r) + "\n" for r in records))
        self.model.train()
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not (progress and ctx.is_main), desc=cfg.model,
                   unit="it", dynamic_ncols=True)  # fmt: skip
        sums: dict[str, float] = collections.defaultdict(float)
        count, t_log = 0, time.perf_counter()
        last_train: dict[str, float] = {}
        log = open(log_path, "a", encoding="utf-8") if ctx.is_main else None  # noqa: SIM115 - closed below
        batches = self._batches()
        # Ctrl-C (single process): finish the current step, write a checkpoint, then stop; a second Ctrl-C stops now.
        interrupted = {"flag": False}

        def on_sigint(signum: int, frame: Any) -> None:
            if interrupted["flag"]:
                raise KeyboardInterrupt
            interrupted["flag"] = True

        previous_handler = None
        if not ctx.distributed and threading.current_thread() is threading.main_thread():
            previous_handler = signal.signal(signal.SIGINT, on_sigint)
        try:
            while self.step < cfg.steps:
                values = self.train_step(next(batches))
                self.step += 1
                count += 1
                for k, v in values.items():
                    sums[k] += v
                bar.update(1)
                events: list[dict[str, Any]] = []
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    now = time.perf_counter()
                    mean = self._mean_across_ranks({k: v / count for k, v in sums.items()})
                    last_train = mean
                    events.append({"kind": "train", "step": self.step, **mean,
                                   "lr": self.optimizer.param_groups[0]["lr"],
                                   "samples_per_s": count * cfg.batch / max(now - t_log, 1e-9)})  # fmt: skip
                    bar.set_postfix(loss=f"{mean['loss']:.4g}")
                    sums.clear()
                    count, t_log = 0, now
                names: tuple[str, ...] = ()
                if cfg.val_every and (self.step % cfg.val_every == 0 or self.step == cfg.steps):
                    val = self.validate()
                    if val is not None:
                        events.append({"kind": "val", "step": self.step, **val})
                        if val["val_l1"] < self.best_val:
                            self.best_val = val["val_l1"]
                            names += ("best.pt",)
                if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                    names += ("last.pt",)
                if names:
                    self.checkpoint(names)
                if log is not None and events:
                    for event in events:
                        log.write(json.dumps(event) + "\n")
                    log.flush()
                    records.extend(events)
                    if names:
                        draw_curve(records, out / "curve.png", cfg.model)
                if interrupted["flag"]:
                    self.checkpoint(("last.pt",))
                    self.note(f"interrupted: checkpoint at step {self.step} (continue with --resume)")
                    raise KeyboardInterrupt
        finally:
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
            bar.close()
            if log is not None:
                log.close()
        if ctx.is_main:
            draw_curve(records, out / "curve.png", cfg.model)
        vals = [r for r in records if r.get("kind") == "val"]
        return {
            "model": cfg.model,
            "steps": self.step,
            "world_size": ctx.world_size,
            "trainable_parameters": self.trainable,
            "train_samples": len(self.train_ds),
            "loss": last_train.get("loss"),
            "val_l1": vals[-1]["val_l1"] if vals else None,
            "val_psnr": vals[-1]["val_psnr"] if vals else None,
            "best_val_l1": None if math.isinf(self.best_val) else self.best_val,
            "checkpoint": str(out / "checkpoints" / "last.pt"),
        }


def _base_args(checkpoint: str | None) -> dict[str, Any]:
    if not checkpoint:
        return {}
    obj = read_checkpoint(checkpoint)
    return dict(obj.get("model_args") or {}) if isinstance(obj, dict) else {}


def train(
    config: TrainConfig,
    out: str | os.PathLike[str],
    *,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``config.model`` into the run folder ``out`` (see the module docstring); returns a summary dict.

    Use :func:`resolve_config` to build ``config`` (it also applies the ``--resume`` rules). Under torchrun every
    process calls this; rank 0 writes the outputs.
    """
    ctx, device = init_distributed(config.device)
    try:
        configure_threads(config.threads)
        os.environ["BLOSC_NTHREADS"] = "1"
        run = _Run(config, Path(out), ctx, device, resume)
        return run.run(progress)
    finally:
        cleanup_distributed()
