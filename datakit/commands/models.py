"""``datakit models [--json]``: list the reference models with their parameter counts."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list the reference SDR-to-HDR models",
        description="List the registered models: name, our parameter count, the paper's count, "
        "input frames and a one-line description.",
    )
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(handler=run)


def list_models() -> list[dict[str, Any]]:
    """One dict per registered model (builds each model once on CPU to count its parameters)."""
    from datakit.nn.registry import MODELS, count_parameters, create_model

    rows = []
    for name, spec in MODELS.items():
        params = count_parameters(create_model(name))
        rows.append(
            {
                "name": name,
                "params": params,
                "paper_params": spec.paper_params,
                "frames": spec.frames,
                "description": spec.description,
            }
        )
    return rows


def _count(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def run(args: argparse.Namespace) -> int:
    rows = list_models()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = ("name", "params", "paper", "frames", "description")
    table = [
        (r["name"], _count(r["params"]), _count(r["paper_params"]), str(r["frames"]), r["description"]) for r in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(header[:-1])]
    align = ("<", ">", ">", ">")
    for row in [header, *table]:
        cells = [f"{cell:{a}{w}}" for cell, a, w in zip(row[:-1], align, widths, strict=True)]
        print("  ".join([*cells, row[-1]]))
    return 0
