"""The command line: parsing and presentation only; the work happens in the stage modules.

Every command is a click command in its own module here. Errors of the
:class:`~diffrisk.errors.DiffriskError` hierarchy become one ``error:`` line with a
``hint:`` (and a GitHub ``::error::`` annotation inside Actions); tracebacks only
with ``--debug``.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from typing import Any

import click

from diffrisk import __version__
from diffrisk.errors import DiffriskError, Interrupted, signal_number

# command -> the module that defines it; a module is imported only when its command runs
# (or when --help lists them all), so `diffrisk mine` never pays for scikit-learn.
_COMMANDS = {
    "mine": "mine",
    "label": "label",
    "train": "train",
    "evaluate": "train",
    "models": "models",
    "score": "score",
    "report": "report",
    "gate": "gate",
    "monitor": "monitor",
    "run": "run",
    "config": "config",
    "schema": "schema",
    "org": "org",
}


#: Exit status of an unexpected error (a bug). 1 is the gate's "blocked" and nothing else.
INTERNAL_ERROR = 3


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = _COMMANDS.get(cmd_name)
        if module is None:
            return None
        import importlib

        mod = importlib.import_module(f"diffrisk.cli.{module}")
        return next(c for c in mod.COMMANDS if c.name == cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DiffriskError as err:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            _report_error(err)
            ctx.exit(err.exit_code)
        except BrokenPipeError:
            ctx.exit(141)  # the reader went away (`diffrisk ... | head`): not an error to report
        except OSError as err:
            # A file we cannot read or write (read-only data dir, a missing parent,
            # a full disk): one line, not a traceback.
            if ctx.obj and ctx.obj.get("debug"):
                raise
            _report_error(_os_error(err))
            ctx.exit(2)
        except KeyboardInterrupt as err:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            _report_interrupt(err)
            ctx.exit(128 + signal_number(err))
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as err:
            # A bug: exit 3, never Python's 1, which means "blocked" (docs/security.md).
            if ctx.obj and ctx.obj.get("debug"):
                raise
            _report_error(
                DiffriskError(
                    f"internal error: {type(err).__name__}: {err}",
                    hint="this is a bug in diffrisk: run again with --debug for the "
                    "traceback, and report it",
                )
            )
            ctx.exit(INTERNAL_ERROR)


def _report_interrupt(err: KeyboardInterrupt) -> None:
    """SIGINT exits 130, SIGTERM 143; a stage that kept work says what (``Interrupted``)."""
    what = "terminated (SIGTERM)" if signal_number(err) == signal.SIGTERM else "interrupted"
    message = getattr(err, "message", "")
    if not message:
        message = f"{what}; the stored data was left as it was before this run"
    _report_error(DiffriskError(message, getattr(err, "hint", None)))


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM as an exception, as Ctrl-C is: temporary files are removed, worker and
    git processes stopped, and a stage keeps the work it can (``diffrisk label``)."""
    raise Interrupted(signum=signum)


def _os_error(err: OSError) -> DiffriskError:
    what = err.strerror or str(err)
    path = err.filename
    if path is None:
        return DiffriskError(
            f"file system error: {what}", hint="check free disk space and permissions"
        )
    if isinstance(err, PermissionError):
        hint = "make it writable, or pass another --data-dir / --output"
    elif isinstance(err, (FileNotFoundError, NotADirectoryError)):
        hint = "check that the path and its parent directories exist"
    else:
        hint = "check free disk space and permissions"
    return DiffriskError(f"cannot use {path}: {what}", hint=hint)


def _one_line(text: str) -> str:
    """Messages that embed library errors (pyarrow, json) can span lines: one line it is."""
    return " ".join(text.split())


def _report_error(err: DiffriskError) -> None:
    click.echo(f"error: {_one_line(err.message)}", err=True)
    if err.hint:
        click.echo(f"hint: {_one_line(err.hint)}", err=True)
    if os.environ.get("GITHUB_ACTIONS") == "true" and err.exit_code != 1:
        msg = err.message + (f" ({err.hint})" if err.hint else "")
        msg = msg.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        click.echo(f"::error title=diffrisk::{msg}")


@click.group(
    cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(__version__, prog_name="diffrisk")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """diffrisk: predict which changes introduce defects, and act on it in CI/CD.

    \b
    Pipeline:  mine -> label -> train -> score -> report/gate -> monitor
    Quick start (in a git repository):  diffrisk run
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    from diffrisk.notices import printing

    # what the library repaired on its own: one warning line each, as it happens
    ctx.with_resource(printing(lambda m: click.echo(f"warning: {_one_line(m)}", err=True)))


#: Thread pools of the numeric libraries. diffrisk's models are small: one thread is as
#: fast on an idle machine, and on a busy CI runner the default (a thread per core for
#: OpenMP) made training 30-60x slower. A value the user set is kept.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def main() -> None:
    """Console-script entry point."""
    for var in THREAD_VARS:  # before numpy and scikit-learn load (commands import lazily)
        os.environ.setdefault(var, "1")
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)
    if not sys.stdout.isatty() and "COLUMNS" not in os.environ:
        os.environ["COLUMNS"] = "120"  # rich tables in CI logs and pipes: not cut at 80
    try:
        code: int = cli.main(standalone_mode=True)
    except DiffriskError as err:  # --debug: the traceback, and the same exit code
        traceback.print_exc()
        code = err.exit_code
    except Exception:  # --debug let a bug through: still 3, never the gate's 1
        traceback.print_exc()
        code = INTERNAL_ERROR
    sys.exit(code)
