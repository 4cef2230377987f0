"""``diffrisk score``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import click

from diffrisk.cli.output import (
    config_option,
    data_dir_option,
    json_option,
    lock_data_dir,
    log_prediction,
    quiet_option,
    repo_option,
    worktree_config_option,
)
from diffrisk.config import load_judging_config
from diffrisk.git.revisions import DEFAULT_BASES, default_base
from diffrisk.report.terminal import Console, stderr_console


@click.command("score")
@repo_option
@data_dir_option
@click.option(
    "--base",
    default=None,
    help="What the change is based on (the PR's target). Default: the pull request's base.sha inside "
    "GitHub Actions, else the first of " + ", ".join(DEFAULT_BASES) + " that exists.",
)
@click.option(
    "--head",
    default=None,
    help="The change's tip. Default: the pull request's head.sha inside GitHub Actions, else HEAD.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["terminal", "markdown", "json", "sarif"]),
    default=None,
    help="Output format. Default: terminal (json with --json). sarif: SARIF 2.1.0, one result per "
    "risky range of lines, for GitHub code scanning (docs/reporting.md).",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the output to this file (atomically) instead of stdout.",
)
@click.option(
    "--no-log",
    is_flag=True,
    help="Do not append this prediction to DATA_DIR/predictions.parquet (the log `diffrisk monitor` "
    "joins to later fixes).",
)
@config_option
@worktree_config_option
@json_option
@quiet_option
def score_cmd(
    repo: str,
    data_dir: str | None,
    base: str | None,
    head: str | None,
    fmt: str | None,
    output: str | None,
    no_log: bool,
    config_path: str | None,
    worktree_config: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Score the risk that the change BASE...HEAD (a pull request, or a release diff) introduces
    a defect.

    The PR is scored as one squashed change (merge base of BASE and HEAD to HEAD, by the
    head commit's author), and each of its commits on its own, with the same features as
    mining, against the history before the PR. Prints the probability, the level
    (config score.medium/score.high), how it ranks among the past year's changes, the
    factors that raised and lowered it, the riskiest files and commits, and, for high
    risk, advice. Needs a mined dataset (`diffrisk mine`) and a model (`diffrisk train`;
    the bundled model otherwise).

    The configuration and report templates are read as they are in BASE (a pull request
    does not choose the settings it is judged by); --worktree-config reads the work tree's.
    """
    from diffrisk.data.paths import default_data_dir
    from diffrisk.hosts.job import job_pull_request
    from diffrisk.scoring.score import score

    pr = job_pull_request()
    if base is None:
        base = pr.base if pr is not None else default_base(repo)
    cfg = load_judging_config(repo, config_path, base, worktree_config)
    if head is None:
        head = pr.head if pr is not None else "HEAD"
    if pr is not None and head != pr.head:
        pr = None  # the event's title and body describe its own head only
    out_dir = Path(data_dir) if data_dir else default_data_dir(repo)
    if not no_log:
        lock_data_dir(out_dir)
    result = score(repo, base, head, out_dir, cfg, pull_request=pr)
    if not no_log:
        log_prediction(out_dir, result)
    fmt = fmt or ("json" if as_json else "terminal")
    if fmt == "json":
        text = json.dumps(result.to_dict(), indent=2) + "\n"
    elif fmt == "sarif":
        from diffrisk.report.sarif import to_sarif

        text = json.dumps(to_sarif(result), indent=2) + "\n"
    elif fmt == "markdown":
        from diffrisk.report.render import render_comment

        text = render_comment(result, cfg.report, repo_root=cfg.source)
        if not text.endswith("\n"):
            text += "\n"
    else:
        from diffrisk.report.render import render_terminal

        if output is None:
            render_terminal(result, Console())
            _footer(result, quiet)
            return
        buf = io.StringIO()
        render_terminal(result, Console(file=buf, width=120, color_system=None))
        text = buf.getvalue()
    if output:
        from diffrisk.data.store import atomic_write_bytes

        atomic_write_bytes(Path(output), text.encode("utf-8"))
        if not quiet and not as_json:
            stderr_console().print(f"wrote {output}")
    else:
        click.echo(text, nl=False)


def _footer(result: object, quiet: bool) -> None:
    """What the shared terminal report leaves out: commits and reviewers."""
    if quiet:
        return
    from rich.markup import escape
    from rich.table import Table

    con = Console()
    commits = getattr(result, "commits", [])
    if len(commits) > 1:
        t = Table(title="Riskiest commits", title_justify="left")
        for col in ("Commit", "Risk", "Subject"):
            t.add_column(col)
        for c in commits[:5]:
            t.add_row(c.sha[:10], f"{c.probability:.0%} {c.level}", escape(c.subject))
        con.print(t)
    reviewers = getattr(result, "reviewers", [])
    if reviewers:
        con.print("reviewers: " + ", ".join(f"{escape(e)} ({n})" for e, n in reviewers))
    seconds = getattr(result, "seconds", None)
    if seconds is not None:
        con.print(f"[dim]scored in {seconds:.2f} s[/]")


COMMANDS = [score_cmd]
