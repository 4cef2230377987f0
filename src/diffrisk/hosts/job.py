"""The pull request (GitHub) or merge request (GitLab) a CI job runs for, whichever host
it runs on: what ``score``, ``run`` and the gate read its base, head, title and body from."""

from __future__ import annotations

from collections.abc import Mapping

from diffrisk.hosts.github.events import PullRequest


def job_pull_request(
    host: str = "auto", env: Mapping[str, str] | None = None
) -> PullRequest | None:
    """The job's pull request: from ``$GITHUB_EVENT_PATH`` on GitHub, from the merge
    request's predefined variables in GitLab CI (``host`` ``auto`` tells them apart); None
    when the job is not about one."""
    from diffrisk.hosts.gitlab.events import detect_host, pull_request_from_env

    if detect_host(host, env) == "gitlab":
        return pull_request_from_env(env)
    from diffrisk.hosts.github.events import pull_request_from_event

    return pull_request_from_event()
