"""The merge gate around :mod:`diffrisk.gating.decide`: who accepted the risk (labels and
reviews read from GitHub), the score to decide on, the decision added to the sticky PR
comment and the prediction log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from diffrisk.errors import ConfigError, DataError, GitHubError
from diffrisk.gating.decide import (
    GateDecision,
    LabelEvent,
    Override,
    Review,
    find_override,
    stale_approvals,
)


def read_acceptance(
    client: Any,
    number: int,
    override_label: str,
    approvers: list[str],
    head_sha: str | None = None,
    warnings: list[str] | None = None,
) -> Override | None:
    """The PR's labels, label events and reviews, turned into an :class:`Override` (or None).

    Only an approval of ``head_sha`` counts; older ones, and a failure to read the PR
    (then nothing is accepted: the gate decides on the risk alone), add to ``warnings``.
    """
    notes = warnings if warnings is not None else []
    try:
        labels, raw_events, raw_reviews = client.pull_acceptance(
            number, override_label, bool(approvers)
        )
    except GitHubError as err:
        notes.append(f"no override was read, so none applies: {err.message}")
        return None
    events = [LabelEvent(*e) for e in raw_events]
    reviews = [Review(*r) for r in raw_reviews]
    found = find_override(
        labels,
        reviews,
        override_label=override_label,
        approvers=approvers,
        label_events=events,
        head_sha=head_sha,
    )
    if found is None and head_sha:
        for rv in stale_approvals(reviews, approvers, head_sha):
            notes.append(
                f"@{rv.user}'s approval was given on {(rv.commit_id or 'an older commit')[:12]}, "
                f"not on the head {head_sha[:12]}: it does not accept the risk of later pushes; "
                "an approval of the head commit does"
            )
    return found


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

    try:
        client.publish_check(head_sha, name, conclusion, title, summary, annotations)
    except PermissionDenied:
        return (
            "could not create the check run or commit status: the token needs `checks: write` "
            "(fork pull requests get a read-only token: use the workflow_run pattern in docs/gating.md)"
        )
    except GitHubError as err:  # the exit code still carries the decision
        return f"the check run was not posted: {err.message}"
    return None


def comment_decision(
    client: Any, number: int, result: dict[str, Any], decision: GateDecision, cfg: Any
) -> str | None:
    """Edit the report's sticky comment so it ends with the gate's decision (who accepted the
    risk, or why the merge is blocked); a warning instead of an error when not allowed."""
    from diffrisk.hosts.github.actions import cut_markdown
    from diffrisk.hosts.github.client import GitHubContext, PermissionDenied, add_reviewer_logins
    from diffrisk.report import render as report

    context = GitHubContext.from_env()
    result = report.result_dict(result)
    add_reviewer_logins(result, client, context.server_url)
    body = report.render_comment(
        result, cfg.report, repo_root=cfg.source, summary_url=context.run_url
    )
    section = "\n\n---\n\n" + merge_summary(decision, None)
    body = cut_markdown(body, report.COMMENT_LIMIT - len(section), "_(cut)_") + section
    try:
        client.upsert_comment(number, body, report.comment_marker(cfg.report.check_name), "update")
    except PermissionDenied:
        return "could not add the gate's decision to the PR comment: the token is read-only here"
    except GitHubError as err:  # the decision must not depend on a comment
        return f"the gate's decision was not added to the PR comment: {err.message}"
    return None


def merge_summary(d: GateDecision, head: str | None) -> str:
    icon = {"pass": "✅", "warn": "⚠️", "accepted": "🟡", "fail": "❌"}[d.outcome]
    lines = [f"### {icon} diffrisk gate: {d.outcome}", "", d.message, ""]
    lines.append(
        f"- risk level: **{d.level}**"
        + (f" ({d.probability:.1%})" if d.probability is not None else "")
    )
    lines.append(f"- fail on: `{d.fail_on}`, warn on: `{d.warn_on}`")
    if d.accepted_by is not None:
        lines.append(
            f"- risk accepted by **@{d.accepted_by.by or 'unknown'}** ({d.accepted_by.kind})"
        )
    if head:
        lines.append(f"- head: `{head[:12]}`")
    return "\n".join(lines) + "\n"


def log_decision(data_dir: Path, result: dict[str, Any], outcome: str, warnings: list[str]) -> None:
    """The merge gate's prediction and decision, in the prediction log (``diffrisk
    monitor`` counts what was flagged and blocked); a failure to log is a warning."""
    from diffrisk.data.predlog import log_result

    err = log_result(data_dir, result, decision=outcome)
    if err is not None:
        warnings.append(f"prediction not logged: {err.message}")


def load_score_file(path: str) -> dict[str, Any]:
    """A result saved by ``diffrisk score --json --output`` (checked by diffrisk.report.render)."""
    from diffrisk.report import render as report

    try:
        d = report.result_dict(report.load_result(path))
    except DataError as err:
        raise DataError(
            err.message, hint=err.hint or "write it with `diffrisk score --json --output FILE`"
        ) from None
    if d.get("level") not in ("low", "medium", "high"):
        raise DataError(
            f"{path} has no risk level low|medium|high",
            hint="write it with `diffrisk score --json --output FILE`",
        )
    return d


def score_now(repo: str, data_dir: Path, base: str | None, head: str, cfg: Any) -> dict[str, Any]:
    """Run the score stage for base...head and return its ``to_dict()``."""
    from diffrisk.scoring.score import score

    if not base:
        raise ConfigError("no base revision to score against", hint="pass --base (or --score-file)")
    return score(repo, base, head, data_dir=data_dir, config=cfg).to_dict()
