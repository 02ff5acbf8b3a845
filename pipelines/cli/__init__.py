"""Command-line entry points. Every module in this package registers its commands on ``app``.

The entry points sit on top of everything (``pipelines``, ``classifiers``, ``decontam``, ``corpus``). Errors are
one line without ``--debug`` (see :mod:`pipelines.cli._app`).
"""

from __future__ import annotations

import importlib
import pkgutil

from pipelines.cli._app import app, run_cli

for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod.name}")


def main(argv: list[str] | None = None) -> None:
    run_cli(app, "mathcorpus", argv)


__all__ = ["app", "main"]
