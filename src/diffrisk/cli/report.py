"""``diffrisk report``: render or post a saved score result (a separate CI step)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from diffrisk.cli.output import (
    config_option,
    json_option,
    repo_option,
    worktree_config_option,
)
from diffrisk.config import load_judging_config
from diffrisk.report.terminal import Console, print_json

if TYPE_CHECKING:
    from diffrisk.config import Config
    from diffrisk.scoring.result import ScoreResult


@click.command("report")
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Score result written by `diffrisk score --json --output FILE`.",
)
@repo_option
@config_option
@worktree_config_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["terminal", "comment", "summary", "json"]),
    default="terminal",
    show_default=True,
    help="What to render when not publishing.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the rendering to this file instead of stdout.",
)
@click.option(
    "--publish/--no-publish",
    default=None,
    help="Post to GitHub and write the job summary and step outputs. Default: on inside GitHub Actions "
    "(and GitLab CI with --host gitlab).",
)
@click.option(
    "--host",
    type=click.Choice(["auto", "github", "gitlab"]),
    default="auto",
    show_default=True,
    help="Where to publish: GitHub, or GitLab (a merge request note and a commit status; the "
    "token from $GITLAB_TOKEN). auto: gitlab inside GitLab CI ($GITLAB_CI=true).",
)
@click.option(
    "--pr",
    "pr_number",
    type=int,
    default=None,
    help="Pull request number (GitLab: merge request IID). Default: from the event "
    "($CI_MERGE_REQUEST_IID).",
)
@click.option(
    "--sha", default=None, help="Commit for the check run. Default: the PR head from the event."
)
@click.option(
    "--comment-mode",
    type=click.Choice(["update", "recreate", "off"]),
    default=None,
    help="Sticky comment: edit in place, delete and post anew, or none. Default: config report.comment_mode.",
)
@click.option(
    "--check/--no-check",
    default=True,
    show_default=True,
    help="Create a check run (or commit status).",
)
@click.option(
    "--comment-author",
    default=None,
    envvar="DIFFRISK_COMMENT_AUTHOR",
    help="Login our comments are written by when the token cannot call GET /user "
    "(a GitHub App: '<slug>[bot]'). Default: github-actions[bot].",
)
@click.option(
    "--report-path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to write the JSON report. Default: $RUNNER_TEMP/diffrisk-report.json.",
)
@click.option(
    "--retries",
    type=click.IntRange(0, 20),
    default=5,
    show_default=True,
    envvar="DIFFRISK_GITHUB_RETRIES",
    show_envvar=True,
    help="Retries for 5xx and rate limits.",
)
@click.option(
    "--retry-backoff",
    type=click.FloatRange(0),
    default=1.0,
    show_default=True,
    envvar="DIFFRISK_GITHUB_RETRY_BACKOFF",
    show_envvar=True,
    help="Backoff factor in seconds between retries (doubles each time).",
)
@click.option(
    "--write-interval",
    type=click.FloatRange(0),
    default=1.0,
    show_default=True,
    help="Seconds between write requests (GitHub asks for at least 1).",
)
@json_option
def report(
    input_path: str,
    repo: str,
    config_path: str | None,
    worktree_config: bool,
    fmt: str,
    output: str | None,
    publish: bool | None,
    host: str,
    pr_number: int | None,
    sha: str | None,
    comment_mode: str | None,
    check: bool,
    comment_author: str | None,
    report_path: str | None,
    retries: int,
    retry_backoff: float,
    write_interval: float,
    as_json: bool,
) -> None:
    """Render a saved score result, or post it to GitHub.

    Outside GitHub Actions this prints the result (--format terminal, or the Markdown of the
    PR comment / job summary, or JSON). Inside Actions (or with --publish) it writes the job
    summary, the step outputs (risk-score, risk-level, model-version, report-path) and the
    JSON report, then updates the one sticky PR comment and creates a check run. The token
    comes from $INPUT_TOKEN (the action's input) or $GITHUB_TOKEN; it needs pull-requests: write and
    checks: write. A read-only token (pull requests from forks) is not an error: the
    report stays in the job summary and one warning explains the workflow_run pattern.
    """
    import dataclasses

    from diffrisk.hosts.github import actions as ghactions
    from diffrisk.hosts.github.client import GitHubContext
    from diffrisk.hosts.github.publish import publish as do_publish
    from diffrisk.hosts.gitlab.events import detect_host, in_gitlab_ci
    from diffrisk.report import render as rpt

    result = rpt.load_result(input_path)
    # settings and templates as they are in the scored change's base, not the PR's checkout
    cfg = load_judging_config(repo, config_path, result.base, worktree_config)
    host = detect_host(host)
    if publish is None:
        publish = in_gitlab_ci() if host == "gitlab" else ghactions.in_actions()
    if not publish:
        if fmt == "terminal" and output is None:
            rpt.render_terminal(result, Console())
            return
        text = {
            "terminal": lambda: _terminal_text(result),
            "comment": lambda: rpt.render_comment(result, cfg.report, repo_root=cfg.source),
            "summary": lambda: rpt.render_summary(result, cfg.report, repo_root=cfg.source),
            "json": lambda: _json_text(result),
        }[fmt]()
        if output:
            from diffrisk.data.store import atomic_write_bytes

            atomic_write_bytes(Path(output), text.encode("utf-8"))
        else:
            click.echo(text, nl=not text.endswith("\n"))
        return
    if host == "gitlab":
        _publish_gitlab(
            result, cfg, pr_number, sha, report_path, comment_mode, check, comment_author, as_json
        )
        return
    ctx = GitHubContext.from_env()
    if pr_number is not None:
        ctx = dataclasses.replace(ctx, pr_number=pr_number)
    if sha:
        ctx = dataclasses.replace(ctx, head_sha=sha)
    outcome = do_publish(
        result,
        cfg,
        repo_root=cfg.source,
        context=ctx,
        report_path=report_path,
        comment_mode=comment_mode,
        check=check,
        comment_author=comment_author,
        client_options={
            "retries": retries,
            "backoff": retry_backoff,
            "seconds_between_writes": write_interval,
            "seconds_between_requests": min(write_interval, 0.25),
        },
    )
    if as_json:
        print_json(outcome.to_dict())
        return
    click.echo(f"{rpt.title(result)}; JSON report: {outcome.report_path}", err=True)
    if outcome.comment is not None and outcome.comment.url:
        click.echo(f"comment {outcome.comment.action}: {outcome.comment.url}", err=True)
    if outcome.check is not None:
        kind = "check run" if outcome.check.kind == "check_run" else "commit status"
        click.echo(f"{kind}: {outcome.check.url or 'set'}", err=True)


def _publish_gitlab(
    result: ScoreResult,
    cfg: Config,
    mr_iid: int | None,
    sha: str | None,
    report_path: str | None,
    comment_mode: str | None,
    check: bool,
    comment_author: str | None,
    as_json: bool,
) -> None:
    """--host gitlab: the note and commit status of the GitLab CI job's merge request
    (--pr: its IID; --sha: the commit; --retries when given, else $DIFFRISK_GITLAB_RETRIES)."""
    from click.core import ParameterSource

    from diffrisk.hosts.gitlab.publish import publish as gitlab_publish

    ctx = click.get_current_context()
    given = ctx.get_parameter_source("retries") == ParameterSource.COMMANDLINE
    outcome = gitlab_publish(
        result,
        cfg,
        repo_root=cfg.source,
        mr_iid=mr_iid,
        head_sha=sha,
        report_path=report_path,
        comment_mode=comment_mode,
        check=check,
        comment_author=comment_author,
        client_options={"retries": ctx.params["retries"]} if given else {},
        stream=sys.stderr if as_json else None,
    )
    if as_json:
        print_json(outcome.to_dict())
        return
    for line in outcome.lines():
        click.echo(line, err=True)


def _terminal_text(result: object) -> str:
    import io

    from diffrisk.report.render import render_terminal

    buf = io.StringIO()
    render_terminal(result, Console(file=buf, width=120, color_system=None))  # type: ignore[arg-type]
    return buf.getvalue()


def _json_text(result: object) -> str:
    import json

    from diffrisk.report.render import result_dict

    return json.dumps(result_dict(result), indent=2, default=str) + "\n"  # type: ignore[arg-type]


COMMANDS = [report]
