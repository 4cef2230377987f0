"""``diffrisk run``: the whole job on one change."""

from __future__ import annotations

import json
from pathlib import Path

import click

from diffrisk.cli.output import (
    config_option,
    config_rev_option,
    data_dir_option,
    json_option,
    lock_data_dir,
    log_prediction,
    progress_bar,
    quiet_option,
    repo_option,
)
from diffrisk.report.terminal import Console, stderr_console


@click.command("run")
@repo_option
@data_dir_option
@click.option(
    "--base",
    default=None,
    help="What the change is based on. Default: the pull request's base inside GitHub Actions, "
    "else the first parent of --head (the latest change).",
)
@click.option("--head", default=None, help="The change's tip. Default: the PR's head, else HEAD.")
@config_option
@config_rev_option
@json_option
@quiet_option
def run_cmd(
    repo: str,
    data_dir: str | None,
    base: str | None,
    head: str | None,
    config_path: str | None,
    config_rev: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Mine, label, train when needed, and score one change: the whole job.

    With no options, in any git repository: mines its history (incrementally), labels
    bug-inducing changes with SZZ, trains a model when there is none or it is older than
    train.max_age_days (too little history: the bundled model), and explains the risk of
    the latest commit. No token, no network.
    """
    from diffrisk.config import load_config
    from diffrisk.data.paths import default_data_dir
    from diffrisk.git.revisions import first_parent
    from diffrisk.hosts.job import job_pull_request
    from diffrisk.pipeline import run
    from diffrisk.report.format import plural as _n

    pr = job_pull_request()
    head = head or (pr.head if pr is not None else "HEAD")
    if base is None:
        base = pr.base if pr is not None and head == pr.head else first_parent(repo, head)
    if pr is not None and head != pr.head:
        pr = None
    # a pull request is judged by its base's settings (docs/security.md); locally, and for
    # the latest commit of a branch, the work tree's, or those of --config-rev
    trusted = config_rev or (pr.base if pr is not None else None)
    cfg = load_config(repo, config_path, rev=trusted)
    out_dir = Path(data_dir) if data_dir else default_data_dir(repo)
    lock_data_dir(out_dir, repo=repo)
    con = stderr_console()
    with progress_bar(quiet or as_json) as prog:
        res = run(repo, out_dir, base, head, cfg, pull_request=pr, progress=prog)
    if res.score is not None:
        log_prediction(out_dir, res.score)
    if as_json:
        click.echo(json.dumps(res.to_dict(), indent=2, default=str))
        return
    m, lab = res.mine, res.label
    if not quiet:
        con.print(
            f"mined {_n(m.commits, 'commit')} ({m.new_commits} new) into {out_dir}; "
            f"labelled {lab.buggy} bug-inducing, {lab.clean} clean, {lab.unlabelled} too recent to tell"
        )
        if res.train is not None:  # one line, never wrapped
            click.echo(f"train: {res.train_reason} -> {res.train.message}", err=True)
    for w in [*m.warnings, *lab.warnings]:
        con.print(f"[yellow]warning:[/] {w}")
    if res.score is None:
        con.print(f"{res.nothing}: no risk to report")
        return
    from diffrisk.report.render import render_terminal

    render_terminal(res.score, Console())


COMMANDS = [run_cmd]
