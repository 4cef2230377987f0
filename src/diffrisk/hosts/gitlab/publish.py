"""Publishing a score on GitLab: the JSON report, the report in the job log, the sticky
merge request note and the commit status; and what the merge gate needs from GitLab
(:func:`gate_client`, :func:`note_decision`, the warnings)."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from diffrisk.config import Config
from diffrisk.hosts.github.publish import conclusion_for
from diffrisk.hosts.gitlab.client import (
    GitLabClient,
    GitLabError,
    NoteOutcome,
    PermissionDenied,
    StatusOutcome,
)
from diffrisk.hosts.gitlab.events import GitLabContext
from diffrisk.scoring.result import ScoreResult

#: The note is cut here to stay readable, as the GitHub comment is (GitLab takes 1,000,000).
NOTE_LIMIT = 65_536

FORK_WARNING = (
    "diffrisk could not post to this merge request ({what}): it comes from a fork, and the "
    "token of this pipeline may not write to the target project. The decision stands (the "
    "job's exit code) and the report is in the job log. To post on fork merge requests, run "
    "the pipeline in the parent project (Settings > CI/CD > 'Run pipelines in the parent "
    "project'), where the project's GITLAB_TOKEN is available; review the fork's changes "
    "before you run it there."
)
PERMISSION_WARNING = (
    "diffrisk could not post to GitLab: the token may not do this ({what}). The decision "
    "stands (the job's exit code) and the report is in the job log. Use a project access "
    "token with the Developer role and the api scope in a masked CI/CD variable GITLAB_TOKEN."
)


def no_token_warning(ctx: GitLabContext | None = None) -> str:
    """Why nothing was read from or posted to GitLab."""
    ctx = ctx if ctx is not None else GitLabContext.from_env()
    if ctx.token and not ctx.project_id:
        return (
            "no GitLab project (CI_PROJECT_ID): nothing was read from or posted to GitLab; "
            "run inside GitLab CI or set CI_PROJECT_ID"
        )
    job = (
        " CI_JOB_TOKEN is not enough: GitLab does not let it post merge request notes or "
        "commit statuses, nor read approvals."
        if ctx.job_token_only
        else ""
    )
    fork = (
        " This merge request comes from a fork: its pipeline runs in the fork, without the "
        "target project's CI/CD variables."
        if ctx.is_fork
        else ""
    )
    return (
        "no GitLab token (GITLAB_TOKEN or DIFFRISK_GITLAB_TOKEN): the merge request's labels "
        "and approvals were not read and nothing was posted." + job + fork + " Create a "
        "project access token (role Developer, scope api) and store it as a masked CI/CD "
        "variable GITLAB_TOKEN."
    )


def denied_warning(what: str, is_fork: bool) -> str:
    return (FORK_WARNING if is_fork else PERMISSION_WARNING).format(what=what)


def note_pointer(job_url: str | None) -> str:
    where = f"[job log]({job_url})" if job_url else "job log"
    return (
        f"_This note was cut at {NOTE_LIMIT:,} characters to stay readable; the full report "
        f"is in the {where} and its diffrisk-report.json._"
    )


def note_body(
    result: ScoreResult | Mapping[str, Any],
    cfg: Config,
    *,
    repo_root: Any = None,
    job_url: str | None = None,
    section: str = "",
) -> str:
    """The note: the rendered comment (marker first), cut at :data:`NOTE_LIMIT` (the
    ``section``, the gate's decision, is kept whole at the end)."""
    from diffrisk.hosts.github.actions import cut_markdown
    from diffrisk.report import render as report

    body = report.render_comment(
        result, cfg.report, repo_root=repo_root, summary_url=job_url, limit=10**9
    )
    return cut_markdown(body, NOTE_LIMIT - len(section), note_pointer(job_url)) + section


def client_for(ctx: GitLabContext, **options: Any) -> GitLabClient:
    """A client for the context's projects (it must have a token and a project)."""
    assert ctx.token is not None and ctx.project_id is not None
    return GitLabClient(
        ctx.project_id,
        ctx.token,
        url=ctx.url,
        mr_project_id=ctx.mr_project_id,
        pipeline_id=ctx.pipeline_id,
        commit_sha=ctx.commit_sha,
        job_url=ctx.job_url,
        mr_project_url=ctx.mr_project_url,
        is_fork=ctx.is_fork,
        **options,
    )


def gate_client(**options: Any) -> GitLabClient | None:
    """The merge gate's client: None without a token and a project (the gate then decides
    on the risk alone and says why)."""
    ctx = GitLabContext.from_env()
    if not (ctx.token and ctx.project_id):
        return None
    return client_for(ctx, **options)


def note_decision(
    client: GitLabClient,
    iid: int,
    result: ScoreResult,
    section: str,
    cfg: Config,
) -> str | None:
    """Edit the sticky note so it ends with the gate's decision (``section``); a warning,
    never an error, when it cannot be posted: the exit code carries the decision."""
    from diffrisk.report import render as report

    body = note_body(
        report.result_dict(result),
        cfg,
        repo_root=cfg.source,
        job_url=client.job_url,
        section="\n\n---\n\n" + section,
    )
    try:
        client.upsert_note(iid, body, report.comment_marker(cfg.report.check_name), "update")
    except PermissionDenied:
        return denied_warning("the merge request note", client.is_fork)
    except GitLabError as err:
        return f"the gate's decision was not added to the merge request note: {err.message}"
    return None


def status_warning(client: GitLabClient, err: GitLabError) -> str:
    """The warning when the gate's commit status could not be set (short: on a fork's
    merge request the note's warning has already said why)."""
    if isinstance(err, PermissionDenied) and client.is_fork:
        return (
            "the commit status was not set: this merge request comes from a fork and the "
            "token may not write to it (403); the exit code carries the decision"
        )
    hint = f" ({err.hint})" if isinstance(err, PermissionDenied) and err.hint else ""
    return f"the commit status was not set: {err.message}{hint}"


@dataclass
class PublishOutcome:
    report_path: str
    note: NoteOutcome | None = None
    status: StatusOutcome | None = None
    denied: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def lines(self) -> list[str]:
        """What happened, one line each, for the job log."""
        out = [f"JSON report: {self.report_path}"]
        if self.note is not None and self.note.action != "off":
            out.append(f"merge request note {self.note.action}: {self.note.url or self.note.id}")
        if self.status is not None:
            out.append(f"commit status: {self.status.state} ({self.status.url or 'set'})")
        return out


def publish(
    result: ScoreResult | Mapping[str, Any],
    config: Config | None = None,
    *,
    repo_root: Any = None,  # diffrisk.trusted.SettingsSource, or a work tree's path
    context: GitLabContext | None = None,
    token: str | None = None,
    mr_iid: int | None = None,
    head_sha: str | None = None,
    report_path: str | Path | None = None,
    conclusion: str | None = None,
    comment_mode: str | None = None,
    check: bool = True,
    comment_author: str | None = None,
    client_options: Mapping[str, Any] | None = None,
    stream: TextIO | None = None,
) -> PublishOutcome:
    """Everything a GitLab CI job does with a result; returns what happened.

    Always: the JSON report (``report_path``; default the temporary directory) and the
    report in the job log (``stream``). Then, with a token and a project: the sticky
    note on the merge request (``mr_iid``, default ``CI_MERGE_REQUEST_IID``) and a
    commit status on ``head_sha`` (default the merge request's head). A token that may
    not post (a fork's merge request) is a warning, not an error.
    """
    from diffrisk.data.store import atomic_write_bytes
    from diffrisk.report import render as report
    from diffrisk.report.terminal import Console

    cfg = config or Config()
    out = stream if stream is not None else sys.stdout
    d = report.result_dict(result)
    ctx = context or GitLabContext.from_env(token=token)
    if token and ctx.token != token:
        ctx = dataclasses.replace(ctx, token=token)
    if mr_iid is not None:
        ctx = dataclasses.replace(ctx, mr_iid=mr_iid)
    if head_sha:
        ctx = dataclasses.replace(ctx, head_sha=head_sha)

    path = Path(report_path) if report_path else Path(_tmp()) / "diffrisk-report.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(d, indent=2, default=str) + "\n").encode("utf-8"))
    outcome = PublishOutcome(report_path=str(path))
    report.render_terminal(d, Console(file=out, width=120, color_system=None))

    mode = comment_mode or cfg.report.comment_mode
    if ctx.token and ctx.project_id:
        with client_for(ctx, comment_author=comment_author, **dict(client_options or {})) as gl:
            if ctx.mr_iid is not None and mode != "off":
                body = note_body(d, cfg, repo_root=repo_root, job_url=ctx.job_url)
                try:
                    outcome.note = gl.upsert_note(
                        ctx.mr_iid, body, report.comment_marker(cfg.report.check_name), mode
                    )
                except PermissionDenied:
                    outcome.denied.append("the merge request note")
                except GitLabError as err:  # the gate must not depend on a note
                    outcome.warnings.append(f"the merge request note was not posted: {err.message}")
            if check and ctx.head_sha:
                try:
                    outcome.status = gl.set_status(
                        ctx.head_sha,
                        cfg.report.check_name,
                        conclusion or conclusion_for(d["level"], cfg),
                        report.title(d),
                        ctx.job_url,
                    )
                except PermissionDenied:
                    outcome.denied.append("the commit status")
                except GitLabError as err:
                    outcome.warnings.append(f"the commit status was not set: {err.message}")
    else:
        outcome.warnings.append(no_token_warning(ctx) + f" The report is only in {path}.")
    if outcome.denied:
        outcome.warnings.append(denied_warning(" and ".join(outcome.denied), ctx.is_fork))
    for w in outcome.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return outcome


def _tmp() -> str:
    import tempfile

    return tempfile.gettempdir()
