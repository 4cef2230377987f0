"""The GitLab CI job, read once from its predefined variables: which merge request, which
base and head, where to post, and the token.

GitLab CI has no event file: everything comes from the job's environment.

=====================================  =================================================
variable                               used as
=====================================  =================================================
``GITLAB_CI``                          ``true`` inside a GitLab CI job (``--host auto``)
``CI_SERVER_URL`` / ``CI_API_V4_URL``  the instance (``CI_API_V4_URL`` wins: it keeps a
                                       relative URL root such as ``/gitlab``)
``CI_PROJECT_ID``                      the project the pipeline runs in: commit statuses
``CI_MERGE_REQUEST_PROJECT_ID``        the merge request's (target) project: the note,
                                       labels and approvals
``CI_MERGE_REQUEST_SOURCE_PROJECT_ID`` another project than the target: a fork's MR
``CI_MERGE_REQUEST_IID``               the merge request
``CI_MERGE_REQUEST_DIFF_BASE_SHA``     the base: the merge base with the target branch,
                                       whose settings judge the change
``CI_MERGE_REQUEST_SOURCE_BRANCH_SHA`` the head in a merged results pipeline
``CI_COMMIT_SHA``                      the head otherwise; the pipeline's commit
``CI_PIPELINE_ID``, ``CI_JOB_URL``     the status's pipeline and link
``CI_MERGE_REQUEST_PROJECT_URL``       links to the note
``CI_MERGE_REQUEST_TITLE``,            the title and description scoring reads (as a
``CI_MERGE_REQUEST_DESCRIPTION``       GitHub pull request's title and body)
=====================================  =================================================

The token is ``$DIFFRISK_GITLAB_TOKEN``, else ``$GITLAB_TOKEN``: a project access token
(role Developer, scope ``api``) or a personal one, kept in a masked CI/CD variable.
``CI_JOB_TOKEN`` is never used: GitLab does not let it post merge request notes or
commit statuses, nor read approvals.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from diffrisk.errors import ConfigError

if TYPE_CHECKING:
    from diffrisk.hosts.github.events import PullRequest

DEFAULT_URL = "https://gitlab.com"
#: Where the token is read from, first found wins.
TOKEN_VARIABLES = ("DIFFRISK_GITLAB_TOKEN", "GITLAB_TOKEN")
HOSTS = ("auto", "github", "gitlab")


def in_gitlab_ci(env: Mapping[str, str] | None = None) -> bool:
    """True inside a GitLab CI job."""
    env = os.environ if env is None else env
    return env.get("GITLAB_CI") == "true"


def detect_host(choice: str = "auto", env: Mapping[str, str] | None = None) -> str:
    """``github`` or ``gitlab``: ``choice`` unless it is ``auto``, then ``gitlab`` inside
    GitLab CI (``GITLAB_CI=true`` and not GitHub Actions), else ``github``."""
    env = os.environ if env is None else env
    if choice not in HOSTS:
        raise ConfigError(f"unknown host {choice!r}", hint="use auto, github or gitlab")
    if choice != "auto":
        return choice
    if in_gitlab_ci(env) and env.get("GITHUB_ACTIONS") != "true":
        return "gitlab"
    return "github"


def _sha(value: str | None) -> str | None:
    """A commit sha from a variable; None when unset (GitLab sets some to an empty value
    or to 40 zeros when it has none)."""
    v = (value or "").strip()
    if not v or set(v) == {"0"}:
        return None
    if not re.fullmatch(r"[0-9a-fA-F]{7,64}", v):
        raise ConfigError(
            f"a CI variable holds {v[:20]!r} where a commit sha was expected",
            hint="GitLab sets CI_COMMIT_SHA and CI_MERGE_REQUEST_*_SHA; pass --base/--head",
        )
    return v.lower()


def _iid(value: str | None) -> int | None:
    v = (value or "").strip()
    return int(v) if v.isdigit() and int(v) > 0 else None


@dataclass(frozen=True)
class GitLabContext:
    """Where we are on GitLab. Built by :meth:`from_env`; every field can be given by hand."""

    url: str = DEFAULT_URL
    #: The project the pipeline runs in (commit statuses go there).
    project_id: str | None = None
    #: The merge request's project (its target): the note, labels and approvals.
    mr_project_id: str | None = None
    source_project_id: str | None = None
    mr_iid: int | None = None
    base_sha: str | None = None
    head_sha: str | None = None
    #: The commit the pipeline runs on (a merged results pipeline's merge commit).
    commit_sha: str | None = None
    pipeline_id: int | None = None
    job_url: str | None = None
    #: The merge request's project page (links to the note).
    mr_project_url: str | None = None
    in_ci: bool = False
    #: ``CI_JOB_TOKEN`` is there but no token that may post (said in the warning).
    job_token_only: bool = False
    token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, token: str | None = None
    ) -> GitLabContext:
        env = os.environ if env is None else env
        api = (env.get("CI_API_V4_URL") or "").rstrip("/")
        url = api.removesuffix("/api/v4") if api.endswith("/api/v4") else ""
        url = url or (env.get("CI_SERVER_URL") or DEFAULT_URL).rstrip("/")
        project = (env.get("CI_PROJECT_ID") or "").strip() or None
        commit = _sha(env.get("CI_COMMIT_SHA"))
        found = token or next((env[k] for k in TOKEN_VARIABLES if env.get(k)), None)
        return cls(
            url=url,
            project_id=project,
            mr_project_id=(env.get("CI_MERGE_REQUEST_PROJECT_ID") or "").strip() or project,
            source_project_id=(env.get("CI_MERGE_REQUEST_SOURCE_PROJECT_ID") or "").strip() or None,
            mr_iid=_iid(env.get("CI_MERGE_REQUEST_IID")),
            base_sha=_sha(env.get("CI_MERGE_REQUEST_DIFF_BASE_SHA")),
            head_sha=_sha(env.get("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA")) or commit,
            commit_sha=commit,
            pipeline_id=_iid(env.get("CI_PIPELINE_ID")),
            job_url=(env.get("CI_JOB_URL") or "").strip() or None,
            mr_project_url=(
                env.get("CI_MERGE_REQUEST_PROJECT_URL") or env.get("CI_PROJECT_URL") or ""
            ).strip()
            or None,
            in_ci=in_gitlab_ci(env),
            job_token_only=found is None and bool(env.get("CI_JOB_TOKEN")),
            token=found,
        )

    @property
    def is_fork(self) -> bool:
        """The merge request comes from another project than its target (a fork)."""
        return bool(
            self.source_project_id
            and self.mr_project_id
            and self.source_project_id != self.mr_project_id
        )

    def merge_request(self) -> tuple[int | None, str | None, str | None]:
        """(iid, base sha, head sha) of the job's merge request; Nones outside one."""
        if self.mr_iid is None:
            return None, None, None
        return self.mr_iid, self.base_sha, self.head_sha


def merge_request_from_env(
    env: Mapping[str, str] | None = None,
) -> tuple[int | None, str | None, str | None]:
    """(iid, base sha, head sha) of the merge request a GitLab CI job runs for."""
    return GitLabContext.from_env(env).merge_request()


def pull_request_from_env(env: Mapping[str, str] | None = None) -> PullRequest | None:
    """The job's merge request as scoring reads a pull request: base, head and IID, with
    the title and description (``CI_MERGE_REQUEST_TITLE``, ``CI_MERGE_REQUEST_DESCRIPTION``;
    GitLab cuts a long description short). None outside a merge request pipeline, or when
    GitLab gave no base."""
    from diffrisk.hosts.github.events import PullRequest

    env = os.environ if env is None else env
    iid, base, head = GitLabContext.from_env(env).merge_request()
    if iid is None or not base or not head:
        return None
    return PullRequest(
        base=base,
        head=head,
        number=iid,
        title=env.get("CI_MERGE_REQUEST_TITLE") or "",
        body=env.get("CI_MERGE_REQUEST_DESCRIPTION") or "",
        author="",
    )
