"""What both gates share: their options (:class:`GateOptions`), the GitHub connection, the
score to decide on (a saved result or base...head scored now), and publishing a decision:
the check run, the step outputs and job summary, the annotations, the terminal summary,
then the exit code (1: blocked).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from diffrisk.errors import ConfigError, DataError, GateFailure
from diffrisk.gating.decide import DeployDecision, GateDecision
from diffrisk.report.terminal import Console, print_json
from diffrisk.scoring.result import ScoreResult, load_result

DEFAULT_API = "https://api.github.com"


@dataclass(frozen=True)
class GateOptions:
    """What ``diffrisk gate`` was asked, common to the merge and the deployment gate."""

    repo: str
    data_dir: Path
    config_path: str | None = None
    worktree_config: bool = False
    #: A saved ``diffrisk score --json`` result; None: score base...head now.
    score_file: str | None = None
    base: str | None = None
    head: str | None = None
    #: Post a check run (None: when GitHub, a token and the head are known).
    check: bool | None = None
    check_name: str | None = None
    #: ``owner/name`` on GitHub and a token: without both nothing is read from or posted to GitHub.
    repository: str | None = None
    token: str | None = None
    api_url: str | None = DEFAULT_API
    write_interval: float = 1.0
    as_json: bool = False
    quiet: bool = False
    #: Where the change is reviewed: ``github`` (Actions) or ``gitlab`` (GitLab CI: the
    #: project, merge request and token come from the job's variables, see
    #: :mod:`diffrisk.hosts.gitlab.events`).
    host: str = "github"


def client(
    repository: str, token: str, api_url: str | None, write_interval: float = 1.0, **options: Any
) -> Any:
    """diffrisk.hosts.github.client's client: retries, error translation, token redaction."""
    from diffrisk.hosts.github.client import GitHubClient

    return GitHubClient(
        repository,
        token,
        api_url=(api_url or DEFAULT_API).rstrip("/"),
        seconds_between_writes=write_interval,
        **options,
    )


def connect(opts: GateOptions) -> Any:
    """The GitHub client of the gate's repository, or None without a repository and a
    token; inside Actions the token is masked in the log first. On GitLab, the GitLab
    client of the job's project, or None without a token."""
    if opts.host == "gitlab":
        from diffrisk.hosts.gitlab.publish import gate_client

        return gate_client()
    if opts.token:
        from diffrisk.hosts.github.actions import add_mask, in_actions

        if in_actions():
            add_mask(opts.token)
    if opts.repository and opts.token:
        return client(opts.repository, opts.token, opts.api_url, opts.write_interval)
    return None


def load_score_file(path: str) -> ScoreResult:
    """A result saved by ``diffrisk score --json --output``, with a risk level to decide on."""
    try:
        result = load_result(path)
    except DataError as err:
        raise DataError(
            err.message, hint=err.hint or "write it with `diffrisk score --json --output FILE`"
        ) from None
    if result.level not in ("low", "medium", "high"):
        raise DataError(
            f"{path} has no risk level low|medium|high",
            hint="write it with `diffrisk score --json --output FILE`",
        )
    return result


def score_now(
    repo: str,
    data_dir: Path,
    base: str | None,
    head: str,
    cfg: Any,
    pull_request: Any = None,
) -> ScoreResult:
    """Run the score stage for base...head (with the title and body of ``pull_request``,
    the job's :class:`~diffrisk.hosts.github.events.PullRequest`, when it is that change)."""
    from diffrisk.scoring.score import score

    if not base:
        raise ConfigError("no base revision to score against", hint="pass --base (or --score-file)")
    if pull_request is not None and pull_request.head != head:
        pull_request = None  # its title and body describe its own head only
    return score(repo, base, head, data_dir=data_dir, config=cfg, pull_request=pull_request)


def post_check(
    client: Any,
    head_sha: str,
    name: str,
    conclusion: str,
    title: str,
    summary: str,
    annotations: list[dict[str, Any]],
) -> str | None:
    """A completed check run (a commit status when check runs are refused); a warning
    instead of an error when the token may write neither (a fork's pull request)."""
    from diffrisk.errors import GitHubError
    from diffrisk.hosts.github.client import PermissionDenied
    from diffrisk.hosts.gitlab.client import GitLabError

    try:
        client.publish_check(head_sha, name, conclusion, title, summary, annotations)
    except GitLabError as err:  # GitLab: a commit status; the exit code carries the decision
        from diffrisk.hosts.gitlab.publish import status_warning

        return status_warning(client, err)
    except PermissionDenied:
        return (
            "could not create the check run or commit status: the token needs `checks: write` "
            "(fork pull requests get a read-only token: use the workflow_run pattern in docs/gating.md)"
        )
    except GitHubError as err:  # the exit code still carries the decision
        return f"the check run was not posted: {err.message}"
    return None


def set_outputs_and_summary(decision: GateDecision | DeployDecision, summary_md: str) -> None:
    from diffrisk.hosts.github.actions import annotate, append_summary, in_actions, set_outputs

    set_outputs({"gate-outcome": decision.outcome, "gate-conclusion": decision.conclusion})
    if in_actions():
        append_summary(summary_md)
        if decision.outcome == "fail":
            annotate("error", decision.message, title="diffrisk gate")
        elif decision.outcome in ("warn", "accepted"):
            annotate("warning", decision.message, title="diffrisk gate")


def finish(
    decision: GateDecision | DeployDecision,
    summary: str,
    head_sha: str | None,
    gh: Any,
    check: bool | None,
    check_name: str,
    result: ScoreResult | None,
    as_json: bool,
    quiet: bool,
    cfg: Any = None,
    warnings: list[str] | None = None,
) -> None:
    """Check run, annotations, outputs, summary, then the exit code."""
    from diffrisk.hosts.github.actions import annotate, in_actions

    warnings = list(warnings or [])
    want_check = check if check is not None else bool(gh is not None and head_sha)
    if want_check:
        if gh is None or not head_sha:
            raise ConfigError(
                "--check needs the repository on GitHub, a token and the head commit",
                hint="set GITHUB_REPOSITORY and GITHUB_TOKEN, or pass --no-check",
            )
        title = decision.message if len(decision.message) < 200 else decision.message[:197] + "..."
        body, annotations = summary, []
        if result is not None:  # the merge gate's check carries the full report under the decision
            from diffrisk.hosts.github.publish import annotations_for
            from diffrisk.report import render as report

            scored = report.result_dict(result)
            body = (
                summary
                + "\n---\n\n"
                + report.render_check_summary(
                    scored,
                    cfg.report if cfg else None,
                    repo_root=cfg.source if cfg else None,
                )
            )
            annotations = annotations_for(scored)
        w = post_check(gh, head_sha, check_name, decision.conclusion, title, body, annotations)
        if w:
            warnings.append(w)
    for w in warnings:
        if in_actions():
            annotate("warning", w, title="diffrisk gate")
    set_outputs_and_summary(decision, summary)
    if as_json:
        print_json({**decision.to_dict(), "warnings": warnings})
    elif not quiet:
        for w in warnings:
            click.echo(f"warning: {w}", err=True)
        # rendered for people and logs alike (plain text without a terminal); the zero-width
        # spaces that keep GitHub from linking "#123" would break a copied issue number
        from rich.markdown import Markdown

        from diffrisk.report.render import ZWSP

        tty = sys.stdout.isatty()
        Console(width=None if tty else 120).print(Markdown(summary.replace(ZWSP, "")))
    if decision.exit_code:
        raise GateFailure(decision.message, hint=fail_hint(decision))


def fail_hint(d: GateDecision | DeployDecision) -> str:
    if isinstance(d, DeployDecision):
        return "review the riskiest changes listed above; ship fewer changes at once, or raise gate.deploy_expected_factor / deploy_max_expected (deploy_max_risk when it is what failed)"
    return "to merge anyway, add the override label to the pull request or get an approval from one of gate.approvers"
