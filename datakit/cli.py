"""The ``datakit`` command: parse arguments, run one subcommand, catch :class:`DatakitError` once.

Each subcommand lives in its own module under :mod:`datakit.commands` and defines
``register(subparsers)`` which adds its parser and sets ``handler`` (a function taking the
parsed arguments and returning an exit status). The CLI stays thin: every handler calls a
library function that is usable from Python under the same name.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import datakit.commands
from datakit import __version__
from datakit.errors import DatakitError


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line with exit status 2 (its default status)."""

    def error(self, message: str) -> None:  # pragma: no cover - exercised through main()
        self.exit(2, f"datakit: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="datakit", description="Reproducible, colour-correct SDR/HDR10 datasets.")
    parser.add_argument("--version", action="version", version=f"hdrtv-datakit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for info in sorted(pkgutil.iter_modules(datakit.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"datakit.commands.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except DatakitError as error:
        print(f"datakit: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("datakit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
