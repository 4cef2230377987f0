"""``diffrisk gate``: the merge gate (one pull request) and the deployment gate (``--deploy``).

The decisions are :mod:`diffrisk.gating.decide`'s; this module gathers their inputs (the score, the
PR's labels and reviews, the last deployment) and publishes the result (exit code, check
run, step outputs, job summary).
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
    load_judging_config,
    lock_data_dir,
    quiet_option,
    repo_option,
    worktree_config_option,
)
from diffrisk.data.paths import default_data_dir
from diffrisk.errors import (
    ConfigError,
    GitHubError,
    NothingToScoreError,
    RepositoryError,
)
from diffrisk.gating import deploy as deploy_gate
from diffrisk.gating import merge, publish
from diffrisk.gating.decide import (
    ShippedChange,
    decide,
    decide_deploy,
)
from diffrisk.git.revisions import newest_tag

THRESHOLDS = click.Choice(["high", "medium", "never"])
DEFAULT_API = "https://api.github.com"


# --------------------------------------------------------------------------- GitHub


# --------------------------------------------------------------------------- inputs


def _event() -> dict[str, Any]:
    from diffrisk.hosts.github.actions import read_event

    return read_event()


def pr_from_event(event: dict[str, Any]) -> tuple[int | None, str | None, str | None]:
    """(number, base sha, head sha) of the pull request in a pull_request(_target/_review) or
    workflow_run payload; Nones when there is none."""
    from diffrisk.hosts.github.events import pull_request_of

    pr = pull_request_of(event)
    if pr is None or pr.kind == "issue" or (pr.kind == "workflow_run" and pr.number is None):
        return None, None, None
    return pr.number, pr.base, pr.head


# --------------------------------------------------------------------------- publishing


# --------------------------------------------------------------------------- command


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
    "--override-label",
    default=None,
    help="PR label that accepts the risk. Default: config gate.override_label.",
)
@click.option(
    "--pr",
    "pr_number",
    type=int,
    default=None,
    help="Pull request number. Default: from $GITHUB_EVENT_PATH.",
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
    override_label: str | None,
    pr_number: int | None,
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
    checks: write for the check run).

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
    token = os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN")
    if token:
        from diffrisk.hosts.github.actions import add_mask, in_actions

        if in_actions():
            add_mask(token)
    gh = (
        publish.client(repository, token, api_url, write_interval)
        if (repository and token)
        else None
    )
    event = _event()
    ev_number, ev_base, ev_head = pr_from_event(event)

    if deploy:
        head = head or "HEAD"
        if base is None:
            if tag_pattern:
                base = newest_tag(repo, head, tag_pattern)
                if base is None:
                    raise RepositoryError(
                        f"no tag matching {tag_pattern!r} is reachable from {head}",
                        hint="pass --base, or tag the last deployment",
                    )
            elif environment:
                if gh is None:
                    raise ConfigError(
                        "--environment needs the repository on GitHub and a token",
                        hint="set GITHUB_REPOSITORY (or --repository) and GITHUB_TOKEN",
                    )
                base = deploy_gate.last_successful_deployment(gh, environment)
                if base is None:
                    raise GitHubError(
                        f"no successful deployment to {environment!r} was found",
                        hint="pass --base for the first deployment",
                    )
            else:
                raise ConfigError(
                    "--deploy needs --base, --tag-pattern or --environment",
                    hint="pass the last deployed ref with --base",
                )
        cfg = load_judging_config(repo, config_path, base, worktree_config)
        gcfg = cfg.gate
        try:
            scored = (
                merge.load_score_file(score_file)
                if score_file
                else merge.score_now(repo, ddir, base, head, cfg)
            )
        except NothingToScoreError:  # nothing new since the last deployment: it passes
            scored = {"commits": [], "base": base, "head": head}
        deploy_warnings = [] if score_file else deploy_gate.ancestry_warnings(repo, base, head)
        commits = scored.get("commits") or []
        changes = [
            ShippedChange(
                c["sha"], c.get("subject", ""), float(c["probability"]), c.get("level", "")
            )
            for c in commits
        ]
        typical = scored.get("typical_probability")
        dd = decide_deploy(
            changes,
            max_risk=gcfg.deploy_max_risk,
            max_expected=gcfg.deploy_max_expected,
            typical_probability=None if typical is None else float(typical),
            expected_factor=gcfg.deploy_expected_factor,
        )
        summary = deploy_gate.deploy_summary(
            dd, str(scored.get("base") or base), str(scored.get("head") or head), deploy_warnings
        )
        publish.finish(
            dd,
            summary,
            scored.get("head"),
            gh,
            check,
            check_name or f"{cfg.report.check_name} deploy",
            None,
            as_json,
            quiet,
            warnings=deploy_warnings,
        )
        return

    base = base or ev_base
    head = head or ev_head or "HEAD"
    warnings: list[str] = []
    res: dict[str, Any] | None = merge.load_score_file(score_file) if score_file else None
    # the settings that judge the PR are its base's, never its own checkout's
    trusted = base or (res or {}).get("base") or None
    cfg = load_judging_config(repo, config_path, trusted, worktree_config)
    gcfg = cfg.gate
    if res is None:
        try:
            res = merge.score_now(repo, ddir, base, head, cfg)
        except NothingToScoreError as err:  # e.g. only empty commits: no risk to gate on
            warnings.append(err.message)
    label = override_label if override_label is not None else gcfg.override_label
    number = pr_number or ev_number
    override = None
    if res is not None and number is not None and gh is not None:
        override = merge.read_acceptance(
            gh,
            int(number),
            label,
            list(gcfg.approvers),
            head_sha=str(res.get("head") or ev_head or "") or None,
            warnings=warnings,
        )
    decision = decide(
        res["level"] if res is not None else "low",
        fail_on=fail_on or gcfg.fail_on,
        warn_on=warn_on or gcfg.warn_on,
        override=override,
        probability=res.get("probability") if res is not None else None,
    )
    head_sha = str((res or {}).get("head") or ev_head or head)
    if res is not None:
        merge.log_decision(ddir, res, decision.outcome, warnings)
    if (
        res is not None
        and number is not None
        and gh is not None
        and (comment_mode or cfg.report.comment_mode) != "off"
    ):
        w = merge.comment_decision(gh, int(number), res, decision, cfg)
        if w:
            warnings.append(w)
    if gh is None and number is not None:
        warnings.append(
            "no GitHub token (or repository): the pull request's labels and reviews were not "
            "read and nothing was posted; set GITHUB_TOKEN and GITHUB_REPOSITORY"
        )
    publish.finish(
        decision,
        merge.merge_summary(decision, head_sha),
        head_sha,
        gh,
        check,
        check_name or cfg.report.check_name,
        res,
        as_json,
        quiet,
        cfg,
        warnings,
    )


COMMANDS = [gate_cmd]
