"""Publishing a gate's decision: the check run, the step outputs and job summary, the
annotations, the terminal summary, then the exit code (1: blocked).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from diffrisk.errors import ConfigError, GateFailure
from diffrisk.gating.decide import DeployDecision, GateDecision
from diffrisk.gating.merge import post_check
from diffrisk.report.terminal import Console, print_json

DEFAULT_API = "https://api.github.com"


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
    result: dict[str, Any] | None,
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

            body = (
                summary
                + "\n---\n\n"
                + report.render_check_summary(
                    result,
                    cfg.report if cfg else None,
                    repo_root=cfg.source if cfg else None,
                )
            )
            annotations = annotations_for(result)
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
