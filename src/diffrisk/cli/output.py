"""Shared CLI helpers: JSON output, quiet mode, rich progress bars."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from diffrisk.report.terminal import Console as Console  # re-exported for the commands
from diffrisk.report.terminal import print_json as print_json
from diffrisk.report.terminal import stderr_console

if TYPE_CHECKING:
    from diffrisk.scoring.result import ScoreResult

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the result as JSON on stdout."
)
quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary.")


def _top_level(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A directory inside a work tree stands for the work tree, as in git (its data,
    configuration and history are the whole repository's)."""
    from diffrisk.git.repo import work_tree_top

    p = Path(value).expanduser()
    if not p.is_dir() or (p / ".git").exists():
        return value
    top = work_tree_top(p)  # None: not a work tree; open_repo says what it is
    return value if top is None or top.resolve() == p.resolve() else str(top)


repo_option = click.option(
    "--repo",
    "repo",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    callback=_top_level,
    help="Path of the git repository (a work tree or a bare repository; a directory "
    "inside a work tree stands for its top level).",
)
data_dir_option = click.option(
    "--data-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Where the dataset and models live. Default: REPO/.diffrisk (REPO/diffrisk for a bare repository).",
)


def github_token_option(purpose: str):
    """``--github-token`` (default ``$GITHUB_TOKEN``), the same in every command."""
    return click.option(
        "--github-token",
        default=None,
        envvar="GITHUB_TOKEN",
        show_envvar=True,
        help=f"GitHub token {purpose} (never printed).",
    )


config_option = click.option(
    "--config",
    "config_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Configuration file (.diffrisk.toml or a pyproject.toml). Default: found in REPO.",
)
config_rev_option = click.option(
    "--config-rev",
    default=None,
    metavar="REV",
    help="Read the configuration (and report templates) as they are in this commit, not in "
    "the work tree. In CI for a pull request, pass its base: a PR must not choose its own "
    "settings.",
)
worktree_config_option = click.option(
    "--worktree-config",
    is_flag=True,
    help="Read the configuration from the work tree instead of the base commit (to try "
    "settings locally; never for a pull request in CI, whose checkout is its author's).",
)


@contextmanager
def progress_bar(quiet: bool) -> Iterator[Any]:
    """Yields a ``progress(stage, advance, total)`` callback, or None when quiet.

    The bar is drawn on stderr and only when stderr is a terminal.
    """
    console = stderr_console()
    if quiet or not console.is_terminal or not sys.stderr.isatty():
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as prog:
        tasks: dict[str, Any] = {}

        def cb(stage: str, advance: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = prog.add_task(stage, total=total)
            elif total is not None:
                prog.update(tasks[stage], total=total)
            if advance:
                prog.advance(tasks[stage], advance)

        yield cb


def lock_data_dir(data_dir: Path, *, repo: str | None = None) -> None:
    """Hold the data directory's lock until this command ends (:mod:`diffrisk.data.lock`):
    for commands that write into it. With ``repo`` (``mine``, ``run``) a missing data
    directory is made, once ``repo`` opens as a repository (else its error, and nothing
    made)."""
    from diffrisk.data.lock import data_dir_lock

    ctx = click.get_current_context()
    ctx.with_resource(
        data_dir_lock(
            data_dir,
            command=ctx.command_path,
            create=repo is not None,
            repo=repo,
            on_wait=lambda msg: click.echo(msg, err=True),
        )
    )


def log_prediction(data_dir: Path, result: ScoreResult) -> None:
    """Append a :class:`~diffrisk.scoring.result.ScoreResult` to the prediction log
    (:func:`diffrisk.data.predlog.log_result`); a failure to log is a warning, never a
    failure of the command that scored."""
    from rich.markup import escape

    from diffrisk.data.predlog import log_result

    err = log_result(data_dir, result.to_dict())
    if err is not None:
        hint = f" (hint: {err.hint})" if err.hint else ""
        stderr_console().print(
            "[yellow]warning:[/] prediction not logged: " + escape(err.message + hint)
        )
