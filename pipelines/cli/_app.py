"""The ``mathcorpus`` Typer app and the entry-point wrapper that turns every failure into one line.

``--debug`` (anywhere on the command line, or ``MATHCORPUS_DEBUG=1``) shows tracebacks; without it every error
is one line and an exit code: 2 for bad input, options and manifests (:class:`MathcorpusError`, file errors,
usage errors, pydantic validation errors rewritten to name the key), 1 for unexpected failures, 130 for Ctrl-C
("interrupted: rerun the same command to resume", nothing else).
"""

from __future__ import annotations

import os
import signal
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

DEBUG_FLAG = "--debug"
INTERRUPTED = "interrupted: rerun the same command to resume"


@app.callback()
def _global_options(
    debug: bool = typer.Option(False, DEBUG_FLAG, help="Show tracebacks (errors are one line without it)."),
) -> None:
    """Build math pretraining corpora: extract, recall, dedup, decontaminate, mix."""


def in_range(*, ge: float | None = None, gt: float | None = None, le: float | None = None,
             lt: float | None = None) -> Callable:
    """A Typer option callback refusing values outside the range (one line naming the option and the range)."""

    def check(ctx: typer.Context, param: typer.CallbackParam, value):  # noqa: ARG001
        from pipelines.validate import OptionError, check_range

        try:
            check_range(param.opts[0] if param.opts else param.name, value, ge=ge, gt=gt, le=le, lt=lt)
        except OptionError as e:
            raise typer.BadParameter(str(e).split(": ", 1)[1], param=param) from None
        return value

    return check


class Interrupted(BaseException):
    """Ctrl-C, raised instead of KeyboardInterrupt so no library turns it into its own message."""


def _on_sigint(signum, frame):  # noqa: ARG001
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C while shutting down changes nothing
    raise Interrupted()


def validation_message(err) -> str:
    """A pydantic ``ValidationError`` as one line naming the key and the problem (no documentation URL)."""
    first = err.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    msg = "unknown key" if first["type"] == "extra_forbidden" else first["msg"].removeprefix("Value error, ")
    more = f" (and {err.error_count() - 1} more problem(s))" if err.error_count() > 1 else ""
    got = f" (got {first['input']!r})" if "input" in first and not isinstance(first["input"], dict | list) else ""
    return f"{err.title}: {loc}: {msg}{got}{more}"


def run_cli(typer_app: typer.Typer, prog: str, argv: list[str] | None = None) -> None:
    """Run a Typer app; expected errors print one line and exit 2, unexpected ones exit 1 (traceback with
    ``--debug``), Ctrl-C exits 130."""
    from pydantic import ValidationError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in args or os.environ.get("MATHCORPUS_DEBUG", "") not in ("", "0")
    args = [a for a in args if a != DEBUG_FLAG]
    command = typer.main.get_command(typer_app)
    try:
        previous = signal.signal(signal.SIGINT, _on_sigint)
    except ValueError:  # not the main thread (embedded use): leave Ctrl-C alone
        previous = None
    try:
        rv = command.main(args=args, prog_name=prog, standalone_mode=False)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (Interrupted, KeyboardInterrupt, typer.Abort):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print(INTERRUPTED, file=sys.stderr)
        sys.exit(130)
    except _click.exceptions.UsageError as e:
        if debug:
            raise
        print(f"{prog}: error: {e.format_message()}", file=sys.stderr)
        sys.exit(e.exit_code)
    except _click.exceptions.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except (MathcorpusError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as e:
        if debug:
            raise
        print(f"{prog}: error: {_one_line(e)}", file=sys.stderr)
        sys.exit(2)
    except ValidationError as e:
        if debug:
            raise
        print(f"{prog}: error: {validation_message(e)}", file=sys.stderr)
        sys.exit(2)
    except Exception as e:
        if debug:
            raise
        print(f"{prog}: error: {type(e).__name__}: {_one_line(e)} (rerun with --debug for the traceback)",
              file=sys.stderr)
        sys.exit(1)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    sys.exit(rv if isinstance(rv, int) else 0)


def _one_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return " ".join(text.split("\n")[0].split()) if "\n" in text else text


def entry(typer_app: typer.Typer, prog: str) -> Callable[[], None]:
    return lambda: run_cli(typer_app, prog)
