"""The GitLab REST client (python-gitlab, API v4): every call diffrisk makes, with retries,
error translation and token redaction; the sticky merge request note and the commit
status. Publishing a whole score is :mod:`diffrisk.hosts.gitlab.publish`.

**Sticky note rule** (as for the GitHub comment). A merge request note is ours when its
body contains the hidden marker ``<!-- diffrisk:comment check="NAME" -->`` for *this*
check name and its author is the user we post as (``GET /user``: the token's user, the
bot user of a project access token). A note carrying the marker written by anyone else is
never touched. ``update`` edits ours in place (and deletes duplicates a race left,
keeping the oldest); ``recreate`` deletes ours and posts a new one; ``off`` posts nothing.

**Failures.** python-gitlab retries 429 (waiting ``Retry-After``, else until
``RateLimit-Reset``), 5xx and timeouts, ``retries`` times (``$DIFFRISK_GITLAB_RETRIES``,
default 10; 5xx and timeouts back off 0.1 s, doubling); then, and for 401, 403, 404 and
the rest, a :class:`GitLabError` says what failed, with GitLab's message and a hint. 403
is :class:`PermissionDenied` (a token that may not post here: a fork's merge request,
too low a role); 404 is :class:`NotFound`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

from diffrisk.errors import ConfigError, DiffriskError
from diffrisk.hosts.github.client import protect_secret
from diffrisk.hosts.gitlab.events import DEFAULT_URL

T = TypeVar("T")

#: What GitLab accepts in a note (characters).
NOTE_HARD_LIMIT = 1_000_000
#: What a commit status's description may hold.
DESCRIPTION_LIMIT = 255
DEFAULT_RETRIES = 10
#: A note GitLab writes on a merge request when someone approves it.
APPROVED_NOTE = "approved this merge request"

ROLE_HINT = (
    "use a project access token with the Developer role and the api scope, in a masked "
    "CI/CD variable GITLAB_TOKEN (CI_JOB_TOKEN may not post notes or commit statuses)"
)


class GitLabError(DiffriskError):
    """The GitLab API refused or failed a request."""


class PermissionDenied(GitLabError):
    """403: the token may not do this here (a fork's merge request, too low a role)."""


class NotFound(GitLabError):
    """404: the project, merge request or note is gone, or the token cannot see it."""


@dataclass
class NoteOutcome:
    action: str  # created | updated | unchanged | recreated | off
    url: str | None = None
    id: int | None = None
    deleted: int = 0


@dataclass
class StatusOutcome:
    kind: str  # status
    url: str | None = None
    id: int | None = None
    requests: int = 0
    state: str | None = None


def _env_retries() -> int:
    raw = os.environ.get("DIFFRISK_GITLAB_RETRIES", "").strip()
    if not raw:
        return DEFAULT_RETRIES
    if not raw.isdigit():
        raise ConfigError(
            "DIFFRISK_GITLAB_RETRIES must be a whole number of retries",
            hint="unset DIFFRISK_GITLAB_RETRIES or fix it",
        )
    return int(raw)


def _when(value: Any) -> datetime | None:
    """GitLab's ISO 8601 times (``2024-05-01T10:00:00.000Z``) as aware datetimes."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _username(user: Any) -> str:
    if isinstance(user, Mapping):
        return str(user.get("username") or "")
    return str(getattr(user, "username", "") or "")


class GitLabClient:
    """python-gitlab with our retry count and error translation.

    ``project_id`` is the project the pipeline runs in (commit statuses);
    ``mr_project_id`` the merge request's (notes, labels, approvals; default the same).
    """

    def __init__(
        self,
        project_id: str,
        token: str,
        *,
        url: str = DEFAULT_URL,
        mr_project_id: str | None = None,
        pipeline_id: int | None = None,
        commit_sha: str | None = None,
        job_url: str | None = None,
        mr_project_url: str | None = None,
        is_fork: bool = False,
        retries: int | None = None,
        timeout: float = 30,
        comment_author: str | None = None,
    ) -> None:
        import gitlab

        from diffrisk import __version__

        protect_secret(token)
        self._token = token
        self.url = url.rstrip("/")
        self.project_id = str(project_id)
        self.mr_project_id = str(mr_project_id or project_id)
        self.pipeline_id = pipeline_id
        self.commit_sha = commit_sha
        self.job_url = job_url
        self.mr_project_url = (mr_project_url or "").rstrip("/") or None
        self.is_fork = is_fork
        self.timeout = timeout
        self.retries = _env_retries() if retries is None else retries
        self._comment_author = comment_author
        self._identity: str | None = None
        #: What reading the merge request's overrides could not do (said by the gate).
        self.acceptance_notes: list[str] = []
        self.gl = gitlab.Gitlab(
            url=self.url,
            private_token=token,
            timeout=timeout,
            retry_transient_errors=True,
            per_page=100,
            keep_base_url=True,  # pagination links of a proxied instance stay on our URL
            user_agent=f"diffrisk/{__version__}",
        )

    def close(self) -> None:
        self.gl.session.close()

    def __enter__(self) -> GitLabClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing
    @property
    def _rq(self) -> dict[str, Any]:
        """Per-request options: python-gitlab's retry count (it defaults to 10)."""
        return {"max_retries": self.retries}

    def _project(self, pid: str) -> Any:
        return self.gl.projects.get(pid, lazy=True)

    def _mr(self, iid: int) -> Any:
        return self._project(self.mr_project_id).mergerequests.get(iid, lazy=True)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        import requests
        from gitlab.exceptions import GitlabAuthenticationError, GitlabError

        try:
            return fn()
        except GitlabAuthenticationError:
            raise GitLabError(
                f"{what}: bad credentials (401)",
                hint="the token is invalid, expired or revoked; " + ROLE_HINT,
            ) from None
        except GitlabError as err:
            status = err.response_code
            message = _message(err).replace(self._token, "***")  # GitLab may echo what it got
            if status == 403:
                raise PermissionDenied(
                    f"{what}: the token may not do this (403: {message})", hint=ROLE_HINT
                ) from None
            if status == 404:
                raise NotFound(
                    f"{what}: not found (404: {message})",
                    hint=f"check CI_PROJECT_ID ({self.project_id}) and CI_MERGE_REQUEST_IID, "
                    "and that the token's user can see the project (a project access token "
                    "sees only its own project)",
                ) from None
            if status == 429:
                raise GitLabError(
                    f"{what}: GitLab's rate limit held after {self.retries} retries ({message})",
                    hint="rerun the job later, or raise DIFFRISK_GITLAB_RETRIES",
                ) from None
            if status is not None and status >= 500:
                raise GitLabError(
                    f"{what}: GitLab failed with {status} after {self.retries} retries ({message})",
                    hint="GitLab may be having an outage; rerun the job later",
                ) from None
            if status is None:
                raise GitLabError(
                    f"{what}: GitLab's answer was not understood ({message})"
                ) from None
            raise GitLabError(f"{what}: GitLab answered {status}: {message}") from None
        except requests.Timeout:
            raise GitLabError(
                f"{what}: {self.url} did not answer in time (timeout {self.timeout:g} s, "
                f"after {self.retries} retries)",
                hint="GitLab may be slow or having an outage; rerun the job later",
            ) from None
        except requests.RequestException as err:
            raise GitLabError(
                f"{what}: cannot reach {self.url} ({type(err).__name__})",
                hint="check CI_SERVER_URL and the network",
            ) from None

    # -- identity
    def identity(self) -> str:
        """The username our notes are written by (``GET /user``); ``comment_author`` when
        the token may not read its own user."""
        if self._identity is None:
            try:
                me = self._call("GET /user", lambda: self.gl.http_get("/user", **self._rq))
                self._identity = _username(me)
            except PermissionDenied:
                if not self._comment_author:
                    raise
                self._identity = self._comment_author
            if not self._identity:
                raise GitLabError("GET /user: GitLab named no user for the token", hint=ROLE_HINT)
        return self._identity

    # -- sticky note
    def upsert_note(self, iid: int, body: str, marker: str, mode: str = "update") -> NoteOutcome:
        """Create, edit or recreate our one note on merge request ``iid`` (module docs)."""
        if mode == "off":
            return NoteOutcome("off")
        if mode not in ("update", "recreate"):
            raise ConfigError(f"unknown comment mode {mode!r}", hint="use update, recreate or off")
        if len(body) > NOTE_HARD_LIMIT:
            raise GitLabError(
                f"the note has {len(body):,} characters, more than GitLab's {NOTE_HARD_LIMIT:,}"
            )
        me = self.identity().lower()
        mr = self._mr(iid)
        notes = self._call(
            f"list the notes of !{iid}",
            lambda: list(
                mr.notes.list(iterator=True, sort="asc", order_by="created_at", **self._rq)
            ),
        )
        ours = [
            n
            for n in notes
            if marker in (getattr(n, "body", "") or "")
            and not getattr(n, "system", False)
            and _username(getattr(n, "author", None)).lower() == me
        ]
        ours.sort(key=lambda n: (str(getattr(n, "created_at", "")), int(n.id)))
        deleted = 0
        if mode == "update" and ours:
            keep, extra = ours[0], ours[1:]
            for n in extra:
                self._delete(f"delete duplicate note {n.id}", n)
                deleted += 1
            if keep.body == body:
                return NoteOutcome("unchanged", self._note_url(iid, keep.id), keep.id, deleted)
            keep.body = body
            try:
                self._call(f"edit note {keep.id}", lambda: keep.save(**self._rq))
                return NoteOutcome("updated", self._note_url(iid, keep.id), keep.id, deleted)
            except NotFound:  # deleted between listing and editing: post a new one
                ours = []
        for n in ours:
            self._delete(f"delete note {n.id}", n)
            deleted += 1
        new = self._call(
            f"post a note on !{iid}", lambda: mr.notes.create({"body": body}, **self._rq)
        )
        action = "recreated" if ours else "created"
        return NoteOutcome(action, self._note_url(iid, new.id), int(new.id), deleted)

    def _delete(self, what: str, note: Any) -> None:
        self._call(what, lambda: note.delete(**self._rq))

    def _note_url(self, iid: int, note_id: Any) -> str | None:
        if not self.mr_project_url:
            return None
        return f"{self.mr_project_url}/-/merge_requests/{iid}#note_{note_id}"

    # -- commit status
    def set_status(
        self,
        sha: str,
        name: str,
        conclusion: str,
        description: str,
        target_url: str | None = None,
    ) -> StatusOutcome:
        """``POST /projects/:id/statuses/:sha``: ``failed`` for a failure, else ``success``
        (a warning or an accepted risk must not fail the pipeline). Attached to the running
        pipeline when ``sha`` is its commit."""
        state = "failed" if conclusion == "failure" else "success"
        data: dict[str, Any] = {
            "state": state,
            "name": name,
            "description": description[:DESCRIPTION_LIMIT],
        }
        target = target_url or self.job_url
        if target:
            data["target_url"] = target
        if self.pipeline_id is not None and self.commit_sha and sha.lower() == self.commit_sha:
            data["pipeline_id"] = self.pipeline_id
        commit = self._project(self.project_id).commits.get(sha, lazy=True)
        made = self._call(
            f"set commit status {name!r} on {sha[:12]}",
            lambda: commit.statuses.create(data, **self._rq),
        )
        return StatusOutcome("status", target, getattr(made, "id", None), 1, state)

    def publish_check(
        self,
        head_sha: str,
        name: str,
        conclusion: str,
        title: str,
        summary: str = "",
        annotations: list[dict[str, Any]] | None = None,
        details_url: str | None = None,
    ) -> StatusOutcome:
        """What the gates post on GitHub as a check run: on GitLab a commit status (GitLab
        has no check runs; the report itself is in the note and the job log)."""
        return self.set_status(head_sha, name, conclusion, title, details_url)

    # -- what the gates read
    def pull_acceptance(
        self, iid: int, label: str, reviews: bool
    ) -> tuple[
        list[str],
        list[tuple[str, str, str, datetime | None]],
        list[tuple[str, str, datetime | None, str | None]],
    ]:
        """Merge request ``iid``'s labels; its label events (``labeled``/``unlabeled``,
        label, username, when) when it carries ``label``; its current approvals as reviews
        (username, ``APPROVED``, when, the head they approved) when ``reviews``.

        Shaped like the GitHub client's, for :func:`diffrisk.gating.merge.read_acceptance`.
        An approval counts for the head it was given on: the head of the merge request's
        newest version pushed before the approval's system note. The approvals API is
        read when available; when GitLab refuses it (403/404), no approval is counted and
        :attr:`acceptance_notes` says so.
        """
        self.acceptance_notes = []
        mr = self._call(
            f"read merge request !{iid}",
            lambda: self._project(self.mr_project_id).mergerequests.get(iid, **self._rq),
        )
        labels = [str(x) for x in (getattr(mr, "labels", None) or [])]
        events: list[tuple[str, str, str, datetime | None]] = []
        if label.lower() in {x.lower() for x in labels}:
            raw = self._call(
                f"read the label events of !{iid}",
                lambda: list(mr.resourcelabelevents.list(iterator=True, **self._rq)),
            )
            for ev in sorted(raw, key=lambda e: (str(getattr(e, "created_at", "")), int(e.id))):
                name = (getattr(ev, "label", None) or {}).get("name")
                action = getattr(ev, "action", "")
                if name and action in ("add", "remove"):
                    events.append(
                        (
                            "labeled" if action == "add" else "unlabeled",
                            str(name),
                            _username(getattr(ev, "user", None)),
                            _when(getattr(ev, "created_at", None)),
                        )
                    )
        found: list[tuple[str, str, datetime | None, str | None]] = []
        if reviews:
            found = self._approvals(mr, iid)
        return labels, events, found

    def _approvals(self, mr: Any, iid: int) -> list[tuple[str, str, datetime | None, str | None]]:
        try:
            state = self._call(
                f"read the approvals of !{iid}", lambda: mr.approvals.get(**self._rq)
            )
        except (PermissionDenied, NotFound) as err:
            self.acceptance_notes.append(
                f"approvals were not read, so none accepts the risk: {err.message}"
            )
            return []
        approvers = [
            _username(a.get("user")) for a in getattr(state, "approved_by", None) or [] if a
        ]
        approvers = [a for a in approvers if a]
        if not approvers:
            return []
        versions = self._call(
            f"read the versions of !{iid}",
            lambda: list(mr.diffs.list(iterator=True, **self._rq)),
        )
        pushed = sorted(
            (w, str(v.head_commit_sha))
            for v in versions
            if (w := _when(getattr(v, "created_at", None))) and getattr(v, "head_commit_sha", None)
        )
        notes = self._call(
            f"list the notes of !{iid}",
            lambda: list(
                mr.notes.list(iterator=True, sort="asc", order_by="created_at", **self._rq)
            ),
        )
        approved_at: dict[str, datetime] = {}
        for n in notes:
            body = str(getattr(n, "body", "") or "").strip().lower()
            when = _when(getattr(n, "created_at", None))
            if getattr(n, "system", False) and body.startswith(APPROVED_NOTE) and when:
                approved_at[_username(getattr(n, "author", None)).lower()] = when  # latest wins
        out: list[tuple[str, str, datetime | None, str | None]] = []
        for user in approvers:
            when = approved_at.get(user.lower())
            head = None
            if when is not None:
                before = [sha for at, sha in pushed if at <= when]
                head = before[-1] if before else None
            out.append((user, "APPROVED", when, head))
        return out

    def last_successful_deployment(self, environment: str) -> str | None:
        """Sha of the newest successful deployment to ``environment``."""
        project = self._project(self.project_id)
        found = self._call(
            f"list deployments to {environment!r}",
            lambda: project.deployments.list(
                environment=environment,
                status="success",
                order_by="id",
                sort="desc",
                per_page=1,
                get_all=False,
                **self._rq,
            ),
        )
        return str(found[0].sha) if found else None


def _message(err: Any) -> str:
    msg = getattr(err, "error_message", "") or ""
    if isinstance(msg, Mapping):  # GitLab's validation errors: {"field": ["reason"]}
        msg = "; ".join(f"{k}: {v}" for k, v in msg.items())
    return str(msg)[:500] or str(getattr(err, "response_code", ""))
