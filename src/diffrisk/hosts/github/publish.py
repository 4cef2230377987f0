"""Publishing a score on GitHub: the JSON report, the job summary and step outputs, the
sticky PR comment, the check run (or commit status), and annotations."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from diffrisk.config import Config
from diffrisk.errors import GitHubError
from diffrisk.hosts.github import actions as ghactions
from diffrisk.hosts.github.client import (
    CheckOutcome,
    CommentOutcome,
    GitHubContext,
    PermissionDenied,
    add_reviewer_logins_quietly,
    client_for,
    int_or_none,
    protect_secret,
)
from diffrisk.levels import LEVELS, at_least
from diffrisk.scoring.result import ScoreResult


def conclusion_for(level: str, config: Config) -> str:
    """success / neutral / failure from the risk level and the gate thresholds."""

    def reaches(threshold: str) -> bool:
        return level in LEVELS and at_least(level, threshold)

    if reaches(config.gate.fail_on):
        return "failure"
    if reaches(config.gate.warn_on):
        return "neutral"
    return "success"


def annotations_for(result: Mapping[str, Any], limit: int | None = None) -> list[dict[str, Any]]:
    """Check-run annotations for the hotspot files, riskiest file first: one on each of
    the file's risky line ranges (``risky_lines``, best first, saying why), then one for
    the file on the range of lines it adds with the most control-flow lines (line 1 when
    it adds none: a deleted file, a rename), saying why the file is risky. At most
    ``limit`` annotations."""
    high = float((result.get("thresholds") or {}).get("high", 0.7))
    out: list[dict[str, Any]] = []
    for f in result.get("files") or []:
        reasons = "; ".join(str(r) for r in f.get("reasons") or [])
        score = float(f.get("score") or 0)
        level = "warning" if score >= high else "notice"
        for r in f.get("risky_lines") or []:
            if not isinstance(r, Mapping):
                continue
            first = int(r.get("first_line") or 1)
            out.append(
                {
                    "path": str(f["path"]),
                    "start_line": first,
                    "end_line": max(int(r.get("last_line") or first), first),
                    "annotation_level": level,
                    "title": f"diffrisk: risky lines (file risk {score:.2f})",
                    "message": str(r.get("reason") or "among the riskiest lines of this change"),
                }
            )
        out.append(
            {
                "path": str(f["path"]),
                "start_line": int(f.get("first_line") or 1),
                "end_line": int(f.get("last_line") or f.get("first_line") or 1),
                "annotation_level": level,
                "title": f"diffrisk hotspot (risk {score:.2f})",
                "message": reasons or "one of the riskiest files of this change",
            }
        )
    return out[:limit]


@dataclass
class PublishOutcome:
    report_path: str
    outputs_written: bool = False
    summary_written: bool = False
    comment: CommentOutcome | None = None
    check: CheckOutcome | None = None
    denied: list[str] = field(default_factory=list)
    workflow_annotations: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


FORK_WARNING = (
    "diffrisk could not post to this pull request: the token is read-only here ({what}), "
    "as it always is for pull requests from forks. The report is in the job summary and the "
    "annotations. To comment on fork PRs, record the PR number in an artifact and run "
    "diffrisk from a second workflow triggered by `workflow_run`, which gets a write token "
    "(docs/gating.md, the workflow_run pair; never run the fork's code there)."
)
PERMISSION_WARNING = (
    "diffrisk could not post to GitHub: the token may not do this ({what}). The report is in "
    "the job summary. Give the job `permissions: pull-requests: write` and `checks: write` "
    "(or `statuses: write`)."
)


def publish(
    result: ScoreResult | Mapping[str, Any],
    config: Config | None = None,
    *,
    repo_root: Any = None,  # diffrisk.trusted.SettingsSource, or a work tree's path
    context: GitHubContext | None = None,
    token: str | None = None,
    report_path: str | Path | None = None,
    conclusion: str | None = None,
    comment_mode: str | None = None,
    check: bool = True,
    comment_author: str | None = None,
    client_options: Mapping[str, Any] | None = None,
    stream: TextIO | None = None,
) -> PublishOutcome:
    """Everything a CI step does with a result; returns what happened.

    Always: the JSON report (``report_path``; default ``$RUNNER_TEMP``/the temp dir), the
    job summary and the step outputs ``risk-score``, ``risk-level``, ``model-version``,
    ``report-path`` (when the runner provides the files). Then, with a token and a
    repository: the sticky comment (on a PR) and the check run. A read-only token is not an
    error (see the module docs). ``conclusion`` defaults to :func:`conclusion_for`.
    """
    from diffrisk.data.store import atomic_write_bytes
    from diffrisk.report import render as report

    cfg = config or Config()
    out = stream if stream is not None else sys.stdout
    d = report.result_dict(result)
    ctx = context or GitHubContext.from_env(token=token)
    if token and ctx.token != token:
        ctx = dataclasses.replace(ctx, token=token)
    if ctx.token:
        protect_secret(ctx.token)
        if ghactions.in_actions():
            ghactions.add_mask(ctx.token, out)

    # before the report file is written: the gate step re-renders the comment from it
    if ctx.token and ctx.repository and d.get("reviewers") and d.get("reviewer_commits"):
        add_reviewer_logins_quietly(d, ctx, comment_author, client_options)
    path = (
        Path(report_path)
        if report_path
        else Path(os.environ.get("RUNNER_TEMP") or _tmp()) / "diffrisk-report.json"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(d, indent=2, default=str) + "\n").encode("utf-8"))
    outcome = PublishOutcome(report_path=str(path))

    summary_md = report.render_summary(d, cfg.report, repo_root=repo_root, report_path=str(path))
    outcome.summary_written = ghactions.append_summary(summary_md)
    outcome.outputs_written = ghactions.set_outputs(
        {
            "risk-score": f"{float(d['probability']):.4f}",
            "risk-level": d["level"],
            "model-version": d.get("model_version") or "",
            "report-path": str(path),
        }
    )

    mode = comment_mode or cfg.report.comment_mode
    posted_check = False
    if ctx.token and ctx.repository:
        with client_for(ctx, comment_author, client_options) as gh:
            pr_number = ctx.pr_number
            if ctx.event_name == "workflow_run":
                # The result file came from another (possibly a fork's) workflow: trust the
                # event, not the file, for where to post.
                if pr_number is None and ctx.head_owner and ctx.head_ref:
                    pr_number = gh.find_pr(ctx.head_owner, ctx.head_ref)
            elif pr_number is None:
                pr_number = int_or_none(d.get("pull_request"))
            if pr_number is not None and mode != "off":
                body = report.render_comment(
                    d, cfg.report, repo_root=repo_root, summary_url=ctx.run_url
                )
                try:
                    outcome.comment = gh.upsert_comment(
                        pr_number, body, report.comment_marker(cfg.report.check_name), mode
                    )
                except PermissionDenied:
                    outcome.denied.append("comment")
                except GitHubError as err:  # the gate must not depend on a comment
                    outcome.warnings.append(f"the PR comment was not posted: {err.message}")
            if check and ctx.head_sha:
                try:
                    outcome.check = gh.publish_check(
                        ctx.head_sha,
                        cfg.report.check_name,
                        conclusion or conclusion_for(d["level"], cfg),
                        report.title(d),
                        report.render_check_summary(
                            d, cfg.report, repo_root=repo_root, summary_url=ctx.run_url
                        ),
                        annotations_for(d),
                        details_url=ctx.run_url,
                    )
                    posted_check = outcome.check.kind == "check_run"
                except PermissionDenied:
                    outcome.denied.append("check run and commit status")
                except GitHubError as err:
                    outcome.warnings.append(f"the check run was not posted: {err.message}")
    else:
        missing = "token (GITHUB_TOKEN)" if not ctx.token else "repository (GITHUB_REPOSITORY)"
        where = "the job summary and " if outcome.summary_written else ""
        outcome.warnings.append(
            f"no GitHub {missing}: nothing was posted to GitHub; the report is only in "
            f"{where}{path}"
        )

    if ghactions.in_actions() and not posted_check:
        # Workflow-command annotations need no permission; the runner shows 10 per step.
        for a in annotations_for(d, limit=10):
            ghactions.annotate(
                "warning" if a["annotation_level"] == "warning" else "notice",
                a["message"],
                file=a["path"],
                line=a["start_line"],
                title=a["title"],
                stream=out,
            )
            outcome.workflow_annotations += 1
    if outcome.denied:
        what = " and ".join(outcome.denied)
        text = (FORK_WARNING if ctx.is_fork else PERMISSION_WARNING).format(what=what)
        outcome.warnings.append(text)
    for w in outcome.warnings:
        if ghactions.in_actions():
            ghactions.annotate("warning", w, title="diffrisk", stream=out)
        else:
            print(f"warning: {w}", file=sys.stderr)
    return outcome


def _tmp() -> str:
    import tempfile

    return tempfile.gettempdir()
