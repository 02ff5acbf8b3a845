"""The ``mathcorpus`` Typer app and the entry-point wrapper that turns expected errors into one line."""

from __future__ import annotations

import sys
from collections.abc import Callable

import typer
from typer import _click  # typer vendors its own click: its exception classes live here

from corpus.errors import MathcorpusError

app = typer.Typer(
    name="mathcorpus",
    help="Build math pretraining corpora: extract, recall, dedup, decontaminate, mix.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def run_cli(typer_app: typer.Typer, prog: str, argv: list[str] | None = None) -> None:
    """Run a Typer app; :class:`MathcorpusError` and file errors print one line and exit 2."""
    command = typer.main.get_command(typer_app)
    try:
        rv = command.main(args=argv, prog_name=prog, standalone_mode=False)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except _click.exceptions.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except typer.Abort:
        print(f"{prog}: aborted", file=sys.stderr)
        sys.exit(130)
    except (MathcorpusError, FileNotFoundError, IsADirectoryError, PermissionError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
    sys.exit(rv if isinstance(rv, int) else 0)


def entry(typer_app: typer.Typer, prog: str) -> Callable[[], None]:
    return lambda: run_cli(typer_app, prog)
