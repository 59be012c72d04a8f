"""Find the recipes shipped in the repository's top-level ``recipes/`` folder."""

from __future__ import annotations

from pathlib import Path

from datakit.errors import RecipeError

RECIPES_DIR = Path(__file__).resolve().parent.parent / "recipes"


def shipped_recipe(name: str) -> Path:
    """Path of ``recipes/<name>.toml`` (works from a source checkout or an editable install)."""
    path = RECIPES_DIR / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in RECIPES_DIR.glob("*.toml"))) or "none found"
        raise RecipeError(f"no shipped recipe {name!r} in {RECIPES_DIR} (known: {known})")
    return path
