"""Training configuration: defaults from the papers, a TOML/JSON file, then command-line overrides.

Precedence (later wins): the field defaults below (HDCFM's recipe: Adam, lr 5e-4 halved every 200k of 1M
iterations, 480 x 480 crops, L1 on PQ), the per-model paper settings of :data:`MODEL_DEFAULTS`, the config file,
the command line. Every key is checked: an unknown key, a wrong type or an impossible value raises
:class:`RecipeError` naming the key.

A config file is flat (TOML top level or a JSON object) with one optional nested table, ``model_args``, passed to
the model factory::

    model = "hdcfm"
    data = ["/data/hdrtv1k-shards"]
    steps = 1000000
    step_every = 200000
    batch = 16
    crop = 480
    [model_args]
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from datakit.errors import RecipeError

__all__ = ["LOSSES", "MODEL_DEFAULTS", "TrainConfig", "build_config", "load_config_file"]

LOSSES = ("auto", "l1", "tanh_l1", "kpnmfi", "pdcg")
"""``auto`` picks the model's paper loss: ``kpnmfi`` for KPN-MFI, ``pdcg`` for PDCG, ``l1`` otherwise."""

MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    # HDCFM (ACM MM 2022, Sec. 4.1): 480 x 480 crops, Adam 5e-4 halved every 200k iterations, 1M iterations.
    "hdcfm": {"crop": 480, "steps": 1_000_000, "step_every": 200_000},
    # PDCG (same paper): L1 + 0.5 perceptual + 0.005 patch-GAN; crop and schedule not given -> 256, HDCFM's schedule.
    "pdcg": {"crop": 256, "loss": "pdcg"},
    # DSLNet (AAAI 2023): L1, lr 5e-4 halved every 50k, every 40k after 150k, 350k iterations. Crop not given.
    "dslnet": {
        "crop": 256,
        "steps": 350_000,
        "lr_milestones": [50_000, 100_000, 150_000, 190_000, 230_000, 270_000, 310_000],
    },
    # KPN-MFI (IJCAI 2022): tanh-L1 content + 0.05 x brightness consistency; its public code trains on 256 crops.
    "kpnmfi": {"crop": 256, "loss": "kpnmfi"},
    # HDRTVNet (ICCV 2021) trains on HDRTV1K 480 x 480 sub-images.
    "agcm": {"crop": 480},
    "resnet": {"crop": 480},
}


@dataclass
class TrainConfig:
    """Every setting of ``datakit train`` (see the module docstring for where values come from)."""

    model: str = ""
    data: list[str] = field(default_factory=list)
    data_weights: list[float] | None = None
    model_args: dict[str, Any] = field(default_factory=dict)
    steps: int = 1_000_000
    batch: int = 16
    crop: int = 480
    frames: int | None = None
    centre: str | int = "random"
    augment: bool = True
    lr: float = 5e-4
    step_every: int = 200_000
    lr_gamma: float = 0.5
    lr_milestones: list[int] | None = None
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    loss: str = "auto"
    consistency_weight: float = 0.05
    l1_weight: float = 1.0
    perceptual_weight: float = 0.5
    gan_weight: float = 0.005
    vgg19_weights: str | None = None
    base_checkpoint: str | None = None
    val_every: int = 5000
    val_samples: int = 64
    val_crop: int | None = None
    checkpoint_every: int = 5000
    log_every: int = 100
    num_workers: int = 2
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    threads: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def milestones(self) -> list[int]:
        """Iterations after which the learning rate is multiplied by ``lr_gamma``."""
        if self.lr_milestones is not None:
            return sorted(self.lr_milestones)
        return list(range(self.step_every, self.steps, self.step_every)) if self.step_every > 0 else []

    def resolved_loss(self) -> str:
        if self.loss != "auto":
            return self.loss
        return {"kpnmfi": "kpnmfi", "pdcg": "pdcg"}.get(self.model, "l1")


_FIELDS = {f.name: f for f in fields(TrainConfig)}
_INT_MIN = {
    "steps": 1, "batch": 1, "crop": 8, "frames": 1, "step_every": 0, "val_every": 0, "val_samples": 1,
    "val_crop": 8, "checkpoint_every": 1, "log_every": 1, "num_workers": 0, "threads": 1, "seed": 0,
}  # fmt: skip
_FLOAT_KEYS = ("lr", "lr_gamma", "consistency_weight", "l1_weight", "perceptual_weight", "gan_weight")


def _type_error(key: str, expected: str, value: Any) -> RecipeError:
    return RecipeError(f"config key {key!r}: expected {expected}, got {value!r}")


def _check_value(key: str, value: Any) -> Any:
    """Validate and normalize one key's value."""
    optional = key in {"data_weights", "frames", "lr_milestones", "vgg19_weights", "base_checkpoint", "val_crop",
                       "threads"}  # fmt: skip
    if value is None:
        if optional:
            return None
        raise _type_error(key, "a value", value)
    if key in _INT_MIN:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(key, "an integer", value)
        if value < _INT_MIN[key]:
            raise RecipeError(f"config key {key!r}: must be >= {_INT_MIN[key]}, got {value}")
        return value
    if key in _FLOAT_KEYS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _type_error(key, "a number", value)
        value = float(value)
        if key == "lr" and not value > 0:
            raise RecipeError(f"config key 'lr': must be > 0, got {value}")
        if key == "lr_gamma" and not 0 < value <= 1:
            raise RecipeError(f"config key 'lr_gamma': must be in (0, 1], got {value}")
        if key != "lr" and value < 0:
            raise RecipeError(f"config key {key!r}: must be >= 0, got {value}")
        return value
    if key in {"augment", "amp"}:
        if not isinstance(value, bool):
            raise _type_error(key, "true or false", value)
        return value
    if key in {"model", "device", "loss", "vgg19_weights", "base_checkpoint"}:
        if not isinstance(value, str) or not value:
            raise _type_error(key, "a non-empty string", value)
        if key == "loss" and value not in LOSSES:
            raise RecipeError(f"config key 'loss': one of {', '.join(LOSSES)}, got {value!r}")
        return value.lower() if key in {"model", "device", "loss"} else value
    if key == "data":
        if isinstance(value, str | os.PathLike):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str | os.PathLike) for v in value):
            raise _type_error(key, "a non-empty list of folders", value)
        return [os.fspath(v) for v in value]
    if key == "data_weights":
        if not isinstance(value, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value
        ):
            raise _type_error(key, "a list of numbers", value)
        if any(v < 0 for v in value) or sum(value) <= 0:
            raise RecipeError("config key 'data_weights': weights must be >= 0 with a positive sum")
        return [float(v) for v in value]
    if key == "lr_milestones":
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                                  for v in value):  # fmt: skip
            raise _type_error(key, "a list of positive integers", value)
        return [int(v) for v in value]
    if key == "adam_betas":
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(isinstance(v, int | float) and 0 <= v < 1 for v in value)
        ):
            raise _type_error(key, "two numbers in [0, 1)", value)
        return [float(v) for v in value]
    if key == "centre":
        if isinstance(value, str) and value.lower() in {"random", "middle"}:
            return value.lower()
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        raise _type_error(key, "'random', 'middle' or a frame index >= 0", value)
    if key == "model_args":
        if not isinstance(value, dict):
            raise _type_error(key, "a table of keyword arguments", value)
        return dict(value)
    raise RecipeError(f"unknown config key {key!r}")  # pragma: no cover - guarded by the caller


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML (``.toml``) or JSON (``.json``) config file into a dict (keys not yet validated)."""
    p = Path(path)
    if not p.is_file():
        raise RecipeError(f"{p}: config file not found")
    try:
        text = p.read_text(encoding="utf-8")
        data = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RecipeError(
            f"{p}: not a valid {'JSON' if p.suffix.lower() == '.json' else 'TOML'} file: {error}"
        ) from None
    if not isinstance(data, dict):
        raise RecipeError(f"{p}: the config must be a table/object of keys")
    return data


def _apply(values: dict[str, Any], source: dict[str, Any], origin: str) -> None:
    for key, value in source.items():
        if key not in _FIELDS:
            known = ", ".join(sorted(_FIELDS))
            raise RecipeError(f"{origin}: unknown config key {key!r} (known: {known})")
        values[key] = _check_value(key, value)


def build_config(
    file: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    base: dict[str, Any] | None = None,
) -> TrainConfig:
    """Resolve a :class:`TrainConfig`: defaults < model defaults < ``base`` < ``file`` < ``overrides``.

    ``overrides`` entries that are ``None`` are ignored (options not given on the command line). ``base`` is a
    previously resolved config (``--resume``), applied before the file.
    """
    layers: list[tuple[str, dict[str, Any]]] = []
    if base:
        layers.append(("checkpoint config", base))
    if file is not None:
        layers.append((os.fspath(file), load_config_file(file)))
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    layers.append(("command line", given))
    model = None
    for _origin, layer in layers:
        if layer.get("model"):
            model = str(layer["model"]).lower()
    if not model:
        raise RecipeError("no model given: pass --model NAME or set 'model' in the config file")
    values: dict[str, Any] = {}
    if not base:
        _apply(values, MODEL_DEFAULTS.get(model, {}), f"defaults of {model}")
    for origin, layer in layers:
        _apply(values, layer, origin)
    config = TrainConfig(**values)
    if not config.data:
        raise RecipeError("no training data given: pass --data DIR or set 'data' in the config file")
    if config.data_weights is not None and len(config.data_weights) != len(config.data):
        raise RecipeError(
            f"config key 'data_weights': {len(config.data_weights)} weights for {len(config.data)} data folders"
        )
    if config.loss == "pdcg" and config.model != "pdcg":
        raise RecipeError("loss 'pdcg' trains the PDCG generator only: use --model pdcg")
    if config.model == "pdcg" and config.resolved_loss() != "pdcg":
        raise RecipeError("model 'pdcg' needs loss 'pdcg' (or 'auto')")
    return config
