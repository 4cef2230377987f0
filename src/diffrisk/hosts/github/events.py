"""The triggering event of a GitHub Actions run, parsed once: which pull request, which
base and head, who opened it.

Every part of diffrisk that reads ``$GITHUB_EVENT_PATH`` goes through
:func:`read_event` and :func:`pull_request_of`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diffrisk.errors import GitHubError
from diffrisk.hosts.github.actions import read_event

__all__ = [
    "EventPullRequest",
    "PullRequest",
    "pull_request_from_event",
    "pull_request_of",
    "read_event",
]


def _int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.isdigit():
        return int(v)
    return None


@dataclass(frozen=True)
class EventPullRequest:
    """What an event says about its pull request; None fields are not in the event.

    ``kind`` is the payload it came from: ``pull_request`` (pull_request,
    pull_request_target, pull_request_review), ``issue`` (a comment on a PR) or
    ``workflow_run`` (the run of another workflow, e.g. a fork's analysis)."""

    kind: str
    number: int | None = None
    base: str | None = None
    head: str | None = None
    head_ref: str | None = None
    head_owner: str | None = None
    is_fork: bool = False


def pull_request_of(event: Mapping[str, Any]) -> EventPullRequest | None:
    """The pull request of a webhook payload, or None when it is about none."""
    pr = event.get("pull_request")
    if isinstance(pr, Mapping):
        head = pr.get("head") or {}
        base = pr.get("base") or {}
        head_repo = (head.get("repo") or {}).get("full_name")
        base_repo = (base.get("repo") or {}).get("full_name")
        return EventPullRequest(
            kind="pull_request",
            number=_int(pr.get("number") or event.get("number")),
            base=base.get("sha"),
            head=head.get("sha"),
            head_ref=head.get("ref"),
            # a deleted fork has head.repo null: it was a fork all the same
            is_fork=head_repo != base_repo,
        )
    issue = event.get("issue")
    if isinstance(issue, Mapping) and issue.get("pull_request"):
        return EventPullRequest(kind="issue", number=_int(issue.get("number")))
    run = event.get("workflow_run")
    if isinstance(run, Mapping):
        prs = run.get("pull_requests") or []
        first = prs[0] if prs and isinstance(prs[0], Mapping) else {}
        return EventPullRequest(
            kind="workflow_run",
            number=_int(first.get("number")),
            base=(first.get("base") or {}).get("sha"),
            # the commit the other run analysed (the PR may have moved on since)
            head=run.get("head_sha") or (first.get("head") or {}).get("sha"),
            head_ref=run.get("head_branch"),
            head_owner=((run.get("head_repository") or {}).get("owner") or {}).get("login"),
        )
    return None


@dataclass
class PullRequest:
    """What scoring needs from a GitHub ``pull_request`` event."""

    base: str
    head: str
    number: int | None = None
    title: str = ""
    body: str = ""
    author: str = ""  # GitHub login


def pull_request_from_event(path: str | Path | None = None) -> PullRequest | None:
    """The pull request a ``pull_request`` event (not ``workflow_run``) is about, with the
    title, body and author that scoring reads; None when there is no event file or the
    event is not about a pull request. ``path`` defaults to ``$GITHUB_EVENT_PATH``."""
    data = read_event(path)
    found = pull_request_of(data)
    if found is None or found.kind != "pull_request":
        return None
    if not found.base or not found.head:
        raise GitHubError(
            f"the pull_request in {path or 'the event payload'} has no base.sha/head.sha",
            hint="pass --base and --head explicitly",
        )
    pr = data["pull_request"]
    user = pr.get("user") if isinstance(pr.get("user"), Mapping) else {}
    return PullRequest(
        base=str(found.base),
        head=str(found.head),
        number=found.number,
        title=str(pr.get("title") or ""),
        body=str(pr.get("body") or ""),
        author=str(user.get("login") or ""),
    )
