"""``diffrisk gate``: the merge gate (one pull request) and the deployment gate (``--deploy``).

The command parses its options and calls :func:`diffrisk.gating.merge.gate_merge` or
:func:`diffrisk.gating.deploy.gate_deploy`, which gather the inputs (the score, the PR's
labels and reviews, the last deployment), decide (:mod:`diffrisk.gating.decide`) and
publish the result (exit code, check run, step outputs, job summary).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from diffrisk.cli.output import (
    config_option,
    data_dir_option,
    json_option,
    lock_data_dir,
    quiet_option,
    repo_option,
    worktree_config_option,
)
from diffrisk.data.paths import default_data_dir
from diffrisk.gating.deploy import DeployOptions, gate_deploy
from diffrisk.gating.merge import MergeOptions, gate_merge
from diffrisk.gating.publish import DEFAULT_API
from diffrisk.hosts.gitlab.events import detect_host

THRESHOLDS = click.Choice(["high", "medium", "never"])


@click.command("gate")
@repo_option
@data_dir_option
@config_option
@worktree_config_option
@click.option(
    "--score-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="JSON written by `diffrisk score --json`. Default: score --base..--head now.",
)
@click.option(
    "--base",
    default=None,
    help="Base revision (PR target, or the last deployed ref with --deploy). Default: from the event.",
)
@click.option("--head", default=None, help="Head revision. Default: from the event, else HEAD.")
@click.option(
    "--fail-on",
    type=THRESHOLDS,
    default=None,
    help="Block at or above this level. Default: config gate.fail_on (high).",
)
@click.option(
    "--warn-on",
    type=THRESHOLDS,
    default=None,
    help="Warn at or above this level. Default: config gate.warn_on (medium).",
)
@click.option(
    "--fail-budget",
    type=click.FloatRange(min=0, max=100, min_open=True, max_open=True),
    default=None,
    metavar="PERCENT",
    help="Also block a change among the riskiest PERCENT of the repository's changes. "
    "Default: config gate.fail_budget (unset).",
)
@click.option(
    "--fail-probability",
    type=click.FloatRange(min=0, max=1, min_open=True),
    default=None,
    help="Also block at or above this estimated probability. Default: config "
    "gate.fail_probability (unset).",
)
@click.option(
    "--override-label",
    default=None,
    help="PR label that accepts the risk. Default: config gate.override_label.",
)
@click.option(
    "--pr",
    "pr_number",
    type=int,
    default=None,
    help="Pull request number (GitLab: merge request IID). Default: from $GITHUB_EVENT_PATH "
    "($CI_MERGE_REQUEST_IID).",
)
@click.option(
    "--host",
    type=click.Choice(["auto", "github", "gitlab"]),
    default="auto",
    show_default=True,
    help="Where the change is reviewed: GitHub, or GitLab (the merge request, project and "
    "token from GitLab CI's variables and $GITLAB_TOKEN). auto: gitlab inside GitLab CI.",
)
@click.option(
    "--repository",
    default=None,
    envvar="GITHUB_REPOSITORY",
    help="owner/name on GitHub. Default: $GITHUB_REPOSITORY.",
)
@click.option(
    "--api-url",
    default=DEFAULT_API,
    envvar="GITHUB_API_URL",
    show_default=True,
    help="GitHub REST API ($GITHUB_API_URL).",
)
@click.option(
    "--check/--no-check",
    "check",
    default=None,
    help="Create a check run with the decision. Default: on when a token and repository are known.",
)
@click.option(
    "--check-name",
    default=None,
    help="Check run name. Default: config report.check_name (one check: the report with the gate's conclusion); NAME deploy with --deploy.",
)
@click.option(
    "--comment-mode",
    type=click.Choice(["update", "recreate", "off"]),
    default=None,
    help="Add the decision to the report's sticky PR comment unless 'off'. Default: config report.comment_mode.",
)
@click.option(
    "--write-interval",
    type=click.FloatRange(0),
    default=1.0,
    show_default=True,
    help="Seconds between write requests to GitHub (GitHub asks for at least 1).",
)
@click.option(
    "--deploy",
    is_flag=True,
    help="Deployment gate: score every change in base..head and aggregate.",
)
@click.option(
    "--environment",
    default=None,
    help="With --deploy and no --base: the last successful deployment to this environment.",
)
@click.option(
    "--tag-pattern",
    default=None,
    help="With --deploy and no --base: the newest tag matching this glob (e.g. 'deploy-*').",
)
@json_option
@quiet_option
def gate_cmd(
    repo: str,
    data_dir: str | None,
    config_path: str | None,
    worktree_config: bool,
    score_file: str | None,
    base: str | None,
    head: str | None,
    fail_on: str | None,
    warn_on: str | None,
    fail_budget: float | None,
    fail_probability: float | None,
    override_label: str | None,
    pr_number: int | None,
    host: str,
    repository: str | None,
    api_url: str,
    check: bool | None,
    check_name: str | None,
    comment_mode: str | None,
    write_interval: float,
    deploy: bool,
    environment: str | None,
    tag_pattern: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Decide whether a pull request may merge, or a deployment may ship.

    \b
    Merge gate: exit 1 when the PR's risk level is at or above --fail-on, unless the PR
    has the override label or an approving review by one of gate.approvers (then it
    passes and the report names who accepted the risk). At or above --warn-on it passes
    with a warning. The token comes from $GITHUB_TOKEN (needs pull-requests: read;
    checks: write for the check run). With --host gitlab (auto inside GitLab CI): the
    merge request of the job, its label and approvals, a note and a commit status; the
    token from $GITLAB_TOKEN (docs/gitlab.md).

    \b
    Deployment gate (--deploy): scores each non-merge commit in BASE..HEAD and exits 1
    when the sum of the probabilities (the expected number of defect-inducing changes) is
    >= gate.deploy_max_expected (unset: twice that of as many typical commits), or, when
    gate.deploy_max_risk is set, the riskiest change is >= it. Without
    --base, BASE is the newest tag matching --tag-pattern or the last successful
    deployment to --environment.
    """
    ddir = Path(data_dir) if data_dir else default_data_dir(repo)
    if not deploy:  # the merge gate logs its decision
        lock_data_dir(ddir)
    common: dict[str, Any] = dict(
        repo=repo,
        data_dir=ddir,
        config_path=config_path,
        worktree_config=worktree_config,
        score_file=score_file,
        base=base,
        head=head,
        check=check,
        check_name=check_name,
        repository=repository,
        token=os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN"),
        api_url=api_url,
        write_interval=write_interval,
        as_json=as_json,
        quiet=quiet,
        host=detect_host(host),
    )
    if deploy:
        gate_deploy(DeployOptions(**common, environment=environment, tag_pattern=tag_pattern))
        return
    gate_merge(
        MergeOptions(
            **common,
            fail_on=fail_on,
            warn_on=warn_on,
            fail_budget=fail_budget,
            fail_probability=fail_probability,
            override_label=override_label,
            pr_number=pr_number,
            comment_mode=comment_mode,
        )
    )


COMMANDS = [gate_cmd]
