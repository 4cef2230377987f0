"""The merge gate (:func:`gate_merge`) around :mod:`diffrisk.gating.decide`: the score to
decide on, who accepted the risk (labels and reviews read from GitHub), the decision added
to the sticky PR comment and the prediction log, then published (:mod:`diffrisk.gating.publish`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diffrisk.config import load_judging_config
from diffrisk.errors import DiffriskError, GitHubError, NothingToScoreError
from diffrisk.gating import publish
from diffrisk.gating.decide import (
    GateDecision,
    LabelEvent,
    Override,
    Review,
    decide,
    find_override,
    stale_approvals,
)
from diffrisk.scoring.result import ScoreResult


@dataclass(frozen=True)
class MergeOptions(publish.GateOptions):
    """The merge gate's options (None: from the configuration, or the event)."""

    fail_on: str | None = None
    warn_on: str | None = None
    fail_budget: float | None = None
    fail_probability: float | None = None
    override_label: str | None = None
    pr_number: int | None = None
    comment_mode: str | None = None


def gate_merge(opts: MergeOptions) -> None:
    """Decide whether the pull request may merge and publish the decision; raises
    :class:`~diffrisk.errors.GateFailure` when it is blocked.

    The change is ``opts.score_file``'s, or base...head scored now (base and head default
    to the event's pull request); the settings are those of its base. With GitHub, the
    PR's override label and approvals can accept the risk, and the decision is added to
    the report's sticky comment and posted as a check run.
    """
    gh = publish.connect(opts)
    ev_number, ev_base, ev_head = (
        _gitlab_merge_request() if opts.host == "gitlab" else pr_from_event(_event())
    )
    base = opts.base or ev_base
    head = opts.head or ev_head or "HEAD"
    warnings: list[str] = []
    res = publish.load_score_file(opts.score_file) if opts.score_file else None
    # the settings that judge the PR are its base's, never its own checkout's
    trusted = base or (res.base if res is not None else None) or None
    cfg = load_judging_config(opts.repo, opts.config_path, trusted, opts.worktree_config)
    gcfg = cfg.gate
    if res is None:
        try:
            res = publish.score_now(
                opts.repo, opts.data_dir, base, head, cfg, _job_pull_request(opts.host)
            )
        except NothingToScoreError as err:  # e.g. only empty commits: no risk to gate on
            warnings.append(err.message)
    label = opts.override_label if opts.override_label is not None else gcfg.override_label
    number = opts.pr_number or ev_number
    override = None
    if res is not None and number is not None and gh is not None:
        override = read_acceptance(
            gh,
            int(number),
            label,
            list(gcfg.approvers),
            head_sha=str(res.head or ev_head or "") or None,
            warnings=warnings,
        )
    decision = decide(
        res.level if res is not None else "low",
        fail_on=opts.fail_on or gcfg.fail_on,
        warn_on=opts.warn_on or gcfg.warn_on,
        override=override,
        probability=res.probability if res is not None else None,
        percentile=res.percentile if res is not None else None,
        fail_budget=opts.fail_budget if opts.fail_budget is not None else gcfg.fail_budget,
        fail_probability=(
            opts.fail_probability if opts.fail_probability is not None else gcfg.fail_probability
        ),
    )
    head_sha = str((res.head if res is not None else None) or ev_head or head)
    if res is not None:
        log_decision(opts.data_dir, res, decision.outcome, warnings)
    if (
        res is not None
        and number is not None
        and gh is not None
        and (opts.comment_mode or cfg.report.comment_mode) != "off"
    ):
        w = comment_decision(gh, int(number), res, decision, cfg, opts.host)
        if w:
            warnings.append(w)
    if gh is None and number is not None and opts.host == "gitlab":
        from diffrisk.hosts.gitlab.publish import no_token_warning

        warnings.append(no_token_warning())
    elif gh is None and number is not None:
        warnings.append(
            "no GitHub token (or repository): the pull request's labels and reviews were not "
            "read and nothing was posted; set GITHUB_TOKEN and GITHUB_REPOSITORY"
        )
    publish.finish(
        decision,
        merge_summary(decision, head_sha),
        head_sha,
        gh,
        opts.check,
        opts.check_name or cfg.report.check_name,
        res,
        opts.as_json,
        opts.quiet,
        cfg,
        warnings,
    )


def _event() -> dict[str, Any]:
    from diffrisk.hosts.github.actions import read_event

    return read_event()


def _job_pull_request(host: str) -> Any:
    """The job's pull or merge request (its title and body describe the change); None
    when the job has none or its event cannot be read (the change is scored without)."""
    from diffrisk.hosts.job import job_pull_request

    try:
        return job_pull_request(host)
    except DiffriskError:
        return None


def _gitlab_merge_request() -> tuple[int | None, str | None, str | None]:
    from diffrisk.hosts.gitlab.events import merge_request_from_env

    return merge_request_from_env()


def pr_from_event(event: dict[str, Any]) -> tuple[int | None, str | None, str | None]:
    """(number, base sha, head sha) of the pull request in a pull_request(_target/_review) or
    workflow_run payload; Nones when there is none."""
    from diffrisk.hosts.github.events import pull_request_of

    pr = pull_request_of(event)
    if pr is None or pr.kind == "issue" or (pr.kind == "workflow_run" and pr.number is None):
        return None, None, None
    return pr.number, pr.base, pr.head


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
    from diffrisk.hosts.gitlab.client import GitLabError

    notes = warnings if warnings is not None else []
    try:
        labels, raw_events, raw_reviews = client.pull_acceptance(
            number, override_label, bool(approvers)
        )
    except (GitHubError, GitLabError) as err:
        notes.append(f"no override was read, so none applies: {err.message}")
        return None
    notes.extend(getattr(client, "acceptance_notes", None) or [])  # GitLab: approvals unread
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


def comment_decision(
    client: Any,
    number: int,
    result: ScoreResult,
    decision: GateDecision,
    cfg: Any,
    host: str = "github",
) -> str | None:
    """Edit the report's sticky comment (on GitLab, the merge request note) so it ends with
    the gate's decision (who accepted the risk, or why the merge is blocked); a warning
    instead of an error when not allowed."""
    if host == "gitlab":
        from diffrisk.hosts.gitlab.publish import note_decision

        return note_decision(client, number, result, merge_summary(decision, None), cfg)
    from diffrisk.hosts.github.actions import cut_markdown
    from diffrisk.hosts.github.client import GitHubContext, PermissionDenied, add_reviewer_logins
    from diffrisk.report import render as report

    context = GitHubContext.from_env()
    scored = report.result_dict(result)
    add_reviewer_logins(scored, client, context.server_url)
    body = report.render_comment(
        scored, cfg.report, repo_root=cfg.source, summary_url=context.run_url
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


def log_decision(data_dir: Path, result: ScoreResult, outcome: str, warnings: list[str]) -> None:
    """The merge gate's prediction and decision, in the prediction log (``diffrisk
    monitor`` counts what was flagged and blocked); a failure to log is a warning."""
    from diffrisk.data.predlog import log_result

    err = log_result(data_dir, result.to_dict(), decision=outcome)
    if err is not None:
        warnings.append(f"prediction not logged: {err.message}")
