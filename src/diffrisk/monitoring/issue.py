"""The pinned monitor issue on GitHub, found by its marker and edited in place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from diffrisk.monitoring.render import ISSUE_MARKER


@dataclass
class IssueOutcome:
    """What :func:`publish_issue` did to the monitor issue."""

    action: str  # created | updated | unchanged
    number: int
    url: str | None
    pinned: bool | None = None


def publish_issue(client: Any, markdown: str, title: str, *, pin: bool = True) -> IssueOutcome:
    """Create or update in place the one open monitor issue (body carries ``ISSUE_MARKER``).

    ``client`` is a :class:`diffrisk.hosts.github.client.GitHubClient`. Only an open issue with the
    marker written by our identity is edited; a new one is pinned (GraphQL ``pinIssue``;
    refused pins are reported, not raised).
    """
    from github import GithubException

    from diffrisk.errors import GitHubError

    body = markdown if ISSUE_MARKER in markdown else ISSUE_MARKER + "\n" + markdown
    me = client.identity()
    try:
        issues = client.repo.get_issues(state="open", sort="updated", direction="desc")
        for n, issue in enumerate(issues):
            if n >= 300:  # the monitor issue is updated daily: it is among the recent ones
                break
            # only attributes the list answer carries (a missing one costs a request per
            # issue); pull requests are listed too: their html_url says /pull/
            if (
                "/pull/" not in (issue.html_url or "")
                and ISSUE_MARKER in (issue.body or "")
                and me.wrote(issue.user)
            ):
                if issue.body == body and issue.title == title:
                    return IssueOutcome("unchanged", issue.number, issue.html_url)
                issue.edit(title=title, body=body)
                return IssueOutcome("updated", issue.number, issue.html_url)
        issue = client.repo.create_issue(title=title, body=body)
    except GithubException as err:
        msg = (err.data or {}).get("message") if isinstance(err.data, dict) else str(err.data)
        raise GitHubError(
            f"cannot update the monitor issue: GitHub answered {err.status}: {msg}",
            hint="the workflow needs `permissions: issues: write`",
        ) from None
    pinned = None
    if pin:
        try:
            client.gh.requester.graphql_named_mutation(
                "pinIssue", {"issueId": issue.node_id}, "issue { number }"
            )
            pinned = True
        except GithubException:
            pinned = False
    return IssueOutcome("created", issue.number, issue.html_url, pinned)


def publish_issue_to(
    repository: str, token: str, markdown: str, title: str, *, api_url: str | None = None
) -> IssueOutcome:
    """:func:`publish_issue` in ``owner/name`` on GitHub (``api_url`` defaults to
    ``$GITHUB_API_URL``, else github.com's)."""
    import os

    from diffrisk.hosts.github.client import GitHubClient

    url = api_url or os.environ.get("GITHUB_API_URL") or "https://api.github.com"
    with GitHubClient(repository, token, api_url=url) as client:
        return publish_issue(client, markdown, title)
