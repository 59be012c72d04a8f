"""Declarative TOML recipes: a small schema, validated with one clear error per problem.

A recipe is a TOML file with a ``[recipe]`` table (``name``, ``kind`` = ``"paired"``, ``"synthetic"`` or ``"import"``,
``protocol`` and ``departures`` prose) and the sections that its kind's schema declares. Every key has a type,
a default and a check; unknown keys, wrong types and impossible values raise :class:`RecipeError` naming the file,
the section and the key. The validated recipe is a plain nested dict with every default filled in, and its
:func:`recipe_hash` (sha256 of its canonical JSON) goes into every manifest line.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datakit.errors import RecipeError

Check = Callable[[Any], str | None]  # returns a problem description, or None when the value is fine


@dataclass(frozen=True)
class Key:
    """One recipe key: accepted type(s), default (``REQUIRED`` for none) and an optional value check."""

    types: type | tuple[type, ...]
    default: Any
    check: Check | None = None
    doc: str = ""


REQUIRED = object()


def one_of(*choices: str) -> Check:
    return lambda v: None if v in choices else f"must be one of {', '.join(map(repr, choices))}"


def at_least(low: float) -> Check:
    return lambda v: None if v >= low else f"must be >= {low}"


def in_range(low: float, high: float) -> Check:
    return lambda v: None if low <= v <= high else f"must be within [{low}, {high}]"


def pair_range(low: float, high: float) -> Check:
    """A [min, max] list inside [low, high] with min <= max."""

    def check(v: Any) -> str | None:
        if len(v) != 2 or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in v):
            return "must be a [min, max] pair of numbers"
        if v[0] > v[1]:
            return f"min {v[0]} is greater than max {v[1]}"
        if v[0] < low or v[1] > high:
            return f"must lie within [{low}, {high}]"
        return None

    return check


NUMBER = (int, float)
Schema = dict[str, "dict[str, Key] | Key"]  # a section is a table of keys, or one free-form table

RECIPE_SECTION = {
    "name": Key(str, REQUIRED),
    "kind": Key(str, REQUIRED, one_of("paired", "synthetic", "import")),
    "protocol": Key(str, ""),
    "departures": Key(list, []),
}


def _type_name(types: type | tuple[type, ...]) -> str:
    types = types if isinstance(types, tuple) else (types,)
    names = {int: "integer", float: "number", str: "string", bool: "boolean", list: "list", dict: "table"}
    return " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in types))


def _validate_section(where: str, given: Any, keys: dict[str, Key]) -> dict[str, Any]:
    if not isinstance(given, dict):
        raise RecipeError(f"{where}: must be a table")
    unknown = sorted(set(given) - set(keys))
    if unknown:
        raise RecipeError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(keys))})")
    out: dict[str, Any] = {}
    for name, key in keys.items():
        if name not in given:
            if key.default is REQUIRED:
                raise RecipeError(f"{where}: missing required key {name!r}")
            out[name] = key.default
            continue
        value = given[name]
        types = key.types if isinstance(key.types, tuple) else (key.types,)
        bad_bool = isinstance(value, bool) and bool not in types
        if bad_bool or not isinstance(value, types):
            raise RecipeError(f"{where}.{name}: expected {_type_name(key.types)}, got {value!r}")
        if key.check is not None:
            problem = key.check(value)
            if problem:
                raise RecipeError(f"{where}.{name} = {value!r}: {problem}")
        out[name] = value
    return out


def _non_finite(value: Any, where: str) -> str | None:
    """The ``section.key`` path of the first infinite or NaN number in ``value`` (TOML allows ``inf`` and ``nan``),
    or ``None``."""
    if isinstance(value, float) and not math.isfinite(value):
        return where
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _non_finite(item, f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}" if where else key)
        if found:
            return found
    return None


def validate(data: dict[str, Any], schema: Schema, source: str = "recipe") -> dict[str, Any]:
    """Validate a parsed recipe against ``schema`` (section -> keys); returns it with defaults filled in.

    A section name may contain one dot (``tiles.train``) to address a sub-table. Every number anywhere in the
    recipe must be finite (``inf`` and ``nan`` are refused before any key's own check).
    """
    where = _non_finite(data, "")
    if where:
        raise RecipeError(f"{source}: {where}: numbers must be finite (inf and nan are not accepted)")
    known = {"recipe", *(s.split(".")[0] for s in schema)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RecipeError(f"{source}: unknown section [{unknown[0]}] (known: {', '.join(sorted(known))})")
    out: dict[str, Any] = {"recipe": _validate_section(f"{source}: [recipe]", data.get("recipe", {}), RECIPE_SECTION)}
    for section, keys in schema.items():
        if isinstance(keys, Key):  # a free-form table checked as a whole
            value = data.get(section, keys.default)
            if not isinstance(value, dict):
                raise RecipeError(f"{source}: [{section}] must be a table")
            problem = keys.check(value) if keys.check else None
            if problem:
                raise RecipeError(f"{source}: [{section}]: {problem}")
            out[section] = value
            continue
        head, _, sub = section.partition(".")
        given = data.get(head, {})
        if sub:
            if not isinstance(given, dict):
                raise RecipeError(f"{source}: [{head}] must be a table")
            extra = sorted(set(given) - {s.partition(".")[2] for s in schema if s.startswith(head + ".")})
            if extra:
                raise RecipeError(f"{source}: unknown section [{head}.{extra[0]}]")
            out.setdefault(head, {})[sub] = _validate_section(f"{source}: [{section}]", given.get(sub, {}), keys)
        else:
            out[head] = _validate_section(f"{source}: [{section}]", given, keys)
    return out


def load_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: recipe file not found")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise RecipeError(f"{path}: not valid TOML ({error})") from None


def load_recipe(path: str | os.PathLike[str], schemas: dict[str, Schema], expected_kind: str | None = None) -> dict:
    """Read and validate a recipe file; ``schemas`` maps a recipe kind to its schema."""
    data = load_toml(path)
    kind = data.get("recipe", {}).get("kind") if isinstance(data.get("recipe"), dict) else None
    if kind not in schemas:
        raise RecipeError(f"{path}: [recipe] kind must be one of {', '.join(map(repr, schemas))}, got {kind!r}")
    if expected_kind and kind != expected_kind:
        raise RecipeError(f"{path}: this command needs a {expected_kind!r} recipe, the file is {kind!r}")
    return validate(data, schemas[kind], source=str(path))


def recipe_hash(recipe: dict[str, Any]) -> str:
    """sha256 of the validated recipe's canonical JSON (sorted keys): the same recipe always hashes the same."""
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
