"""Registry of the reference SDR-to-HDR models: names, paper parameter counts, factories.

Importing this module is light (no torch): the model modules in :mod:`datakit.nn.models` are
imported the first time the registry is read (:data:`MODELS`, :func:`create_model`,
:func:`model_spec`, :func:`model_names`).

Model I/O convention (all registered models): input SDR BT.709 R'G'B' (``rgb_sdr``) float32 in
[0, 1]; output SMPTE ST 2084 PQ BT.2020 R'G'B' code values (``rgb_pq``, nominally [0, 1]).
Single-frame models map ``(B, 3, H, W) -> (B, 3, H, W)``; multi-frame models take
``(B, T, 3, H, W)`` (``T = model.frames``) and return ``(B, 3, H, W)`` when
``model.output_frames == 1`` (the centre frame) or ``(B, T, 3, H, W)`` otherwise. ``pdcg`` is the
exception: it refines an HDR frame, ``forward(x_hr, mask)`` (see :mod:`datakit.nn.models.pdcg`).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from datakit.errors import ModelError

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "MODELS",
    "ModelSpec",
    "count_parameters",
    "create_model",
    "model_names",
    "model_spec",
    "register_model",
]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ModelSpec:
    """One registered model.

    ``paper_params`` is the parameter count the source paper (or its public checkpoint) reports,
    ``None`` when there is none; ``frames`` is the number of input frames; ``factory`` builds the
    ``torch.nn.Module`` (a class or a function taking keyword arguments).
    """

    name: str
    paper_params: int | None
    frames: int
    description: str
    factory: Callable[..., Any]


_SPECS: dict[str, ModelSpec] = {}
_loaded = False


def register_model(name: str, *, paper_params: int | None, frames: int, description: str) -> Callable[[F], F]:
    """Class or factory decorator adding a model to the registry under the lower-case ``name``."""
    if name != name.lower() or not name.isidentifier():
        raise ValueError(f"model names are lower-case identifiers, got {name!r}")

    def decorate(factory: F) -> F:
        if name in _SPECS and _SPECS[name].factory is not factory:
            raise ValueError(f"model {name!r} is registered twice")
        _SPECS[name] = ModelSpec(name, paper_params, frames, description, factory)
        return factory

    return decorate


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        importlib.import_module("datakit.nn.models")
        _loaded = True


class _LazyModels(Mapping[str, ModelSpec]):
    """Read-only mapping name -> :class:`ModelSpec` that imports the model modules on first use."""

    def __getitem__(self, name: str) -> ModelSpec:
        _ensure_loaded()
        return _SPECS[name]

    def __iter__(self) -> Iterator[str]:
        _ensure_loaded()
        return iter(sorted(_SPECS))

    def __len__(self) -> int:
        _ensure_loaded()
        return len(_SPECS)

    def __repr__(self) -> str:
        return f"MODELS({', '.join(self)})"


MODELS: Mapping[str, ModelSpec] = _LazyModels()


def model_names() -> list[str]:
    """Sorted names of the registered models."""
    return list(MODELS)


def model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``; :class:`ModelError` naming the known models otherwise."""
    _ensure_loaded()
    key = name.lower() if isinstance(name, str) else name
    if key not in _SPECS:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(sorted(_SPECS))}")
    return _SPECS[key]


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build model ``name`` with keyword arguments passed to its factory.

    Raises :class:`ModelError` for an unknown name or arguments the factory does not accept.
    """
    spec = model_spec(name)
    try:
        inspect.signature(spec.factory).bind(**kwargs)
    except TypeError as error:
        raise ModelError(f"model {spec.name!r}: bad arguments {sorted(kwargs)}: {error}") from error
    return spec.factory(**kwargs)


def count_parameters(module: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters of ``module`` (all of them, as papers count, unless ``trainable_only``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
