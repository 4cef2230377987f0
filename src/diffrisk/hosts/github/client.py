"""The GitHub REST client (PyGithub): every call diffrisk makes, with retries, error
translation and token redaction; the sticky comment, the check run (or commit status).
Publishing a whole score is :mod:`diffrisk.hosts.github.publish`.

Context comes from the runner's environment: ``GITHUB_REPOSITORY``, ``GITHUB_API_URL``
(GitHub Enterprise Server works: it is PyGithub's ``base_url``), ``GITHUB_SERVER_URL``,
``GITHUB_RUN_ID`` and the event payload at ``GITHUB_EVENT_PATH``. The token is the one
passed in, else ``$INPUT_TOKEN``, else ``$GITHUB_TOKEN``; it is masked (``::add-mask::``
inside Actions, and every log record that would contain it is redacted) and never printed.

**Sticky comment rule.** A PR comment is ours when its body contains the hidden marker
``<!-- diffrisk:comment check="NAME" -->`` for *this* check name and its author is the
identity we post as. That identity is ``GET /user``'s login for a personal access token;
the ``GITHUB_TOKEN`` of Actions (and any GitHub App installation token) cannot call
``/user`` (403), so we post as ``github-actions[bot]`` — or as the ``comment_author`` you
pass (``<app-slug>[bot]`` for your own App). Logins compare case-insensitively. A comment
carrying the marker but written by someone else (a user quoting it, another bot) is never
touched. ``comment_mode``: ``update`` edits our comment in place (and deletes duplicates
left by a race, keeping the oldest); ``recreate`` deletes ours and posts a new one at the
bottom; ``off`` posts nothing.

**Failures.** Rate limits (primary and secondary) and 5xx answers are retried with backoff
(PyGithub's :class:`~github.GithubRetry`); 404 (e.g. a deleted PR), 422 and exhausted retries
become a :class:`~diffrisk.errors.GitHubError` with a hint. A 403 "Resource not accessible"
(the read-only token of a pull request from a fork) is not an error: ``publish`` keeps
the report in the job summary and in workflow annotations and prints one warning about the
``workflow_run`` pattern. A 403 when creating a check run falls back to a commit status.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar

from diffrisk.errors import ConfigError, GitHubError
from diffrisk.hosts.github import actions as ghactions
from diffrisk.hosts.github.events import pull_request_of

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_SERVER_URL = "https://github.com"
APP_IDENTITY = "github-actions[bot]"
#: The check runs API takes at most this many annotations per request.
ANNOTATION_BATCH = 50

T = TypeVar("T")


# ----------------------------------------------------------------------------- secrets
_SECRETS: set[str] = set()
_factory_installed = False


def _redact_text(text: str) -> str:
    for s in _SECRETS:
        text = text.replace(s, "***")
    return text


def _redact_record(record: logging.LogRecord) -> None:
    if not _SECRETS:
        return
    try:
        msg = record.getMessage()
    except Exception:  # a broken format string is the logger's problem, not ours
        return
    if any(s in msg for s in _SECRETS):
        record.msg = _redact_text(msg)
        record.args = None


def protect_secret(secret: str | None) -> None:
    """Never let ``secret`` reach a log: every log record containing it is redacted.

    Redaction happens when a record is created (a log record factory), so it covers every
    logger and every handler, including ones added later (PyGithub's, urllib3's, pytest's).
    """
    global _factory_installed
    if not secret or len(secret) < 4:
        return
    _SECRETS.add(secret)
    if not _factory_installed:
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _redact_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True


# ----------------------------------------------------------------------------- context
@dataclass(frozen=True)
class GitHubContext:
    """Where we are on GitHub. Built by :meth:`from_env`; every field can be given by hand."""

    repository: str | None = None
    api_url: str = DEFAULT_API_URL
    server_url: str = DEFAULT_SERVER_URL
    event_name: str = ""
    pr_number: int | None = None
    head_sha: str | None = None
    head_ref: str | None = None
    head_owner: str | None = None
    is_fork: bool = False
    run_id: str | None = None
    token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        token: str | None = None,
        event: Mapping[str, Any] | None = None,
    ) -> GitHubContext:
        env = os.environ if env is None else env
        if event is None:
            event = (
                ghactions.read_event(env.get("GITHUB_EVENT_PATH") or None)
                if env.get("GITHUB_EVENT_PATH")
                else {}
            )
        name = env.get("GITHUB_EVENT_NAME", "")
        pr_number: int | None = None
        head_sha = env.get("GITHUB_SHA") or None
        head_ref = head_owner = None
        is_fork = False
        found = pull_request_of(event)
        if found is not None:
            pr_number = found.number
            head_ref, head_owner, is_fork = found.head_ref, found.head_owner, found.is_fork
            if found.kind != "issue":
                head_sha = found.head or head_sha
        return cls(
            repository=env.get("GITHUB_REPOSITORY") or None,
            api_url=(env.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/"),
            server_url=(env.get("GITHUB_SERVER_URL") or DEFAULT_SERVER_URL).rstrip("/"),
            event_name=name,
            pr_number=pr_number,
            head_sha=head_sha,
            head_ref=head_ref,
            head_owner=head_owner,
            is_fork=is_fork,
            run_id=env.get("GITHUB_RUN_ID") or None,
            token=token or env.get("INPUT_TOKEN") or env.get("GITHUB_TOKEN") or None,
        )

    @property
    def run_url(self) -> str | None:
        if not (self.repository and self.run_id):
            return None
        return f"{self.server_url}/{self.repository}/actions/runs/{self.run_id}"


def int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# ----------------------------------------------------------------------------- client
class PermissionDenied(GitHubError):
    """403 "Resource not accessible": the token may not write here (e.g. a fork's PR)."""


class NotFound(GitHubError):
    """404: the PR, comment or repository is gone (or invisible to the token)."""


@dataclass(frozen=True)
class Identity:
    login: str
    app: bool  # True when /user was refused (GITHUB_TOKEN or an App installation token)

    def wrote(self, user: Any) -> bool:
        login = getattr(user, "login", None) or (
            user.get("login") if isinstance(user, Mapping) else None
        )
        return bool(login) and str(login).lower() == self.login.lower()


@dataclass
class CommentOutcome:
    action: str  # created | updated | unchanged | recreated | off
    url: str | None = None
    id: int | None = None
    deleted: int = 0


@dataclass
class CheckOutcome:
    kind: str  # check_run | status
    url: str | None = None
    id: int | None = None
    requests: int = 0


class GitHubClient:
    """PyGithub with our retry policy and error translation.

    ``backoff`` is urllib3's backoff factor (seconds); tests pass 0. ``secondary_rate_wait``
    is how long to wait after a secondary rate limit without ``Retry-After``.
    """

    def __init__(
        self,
        repository: str,
        token: str,
        *,
        api_url: str = DEFAULT_API_URL,
        retries: int | None = None,
        backoff: float | None = None,
        secondary_rate_wait: float = 60.0,
        max_rate_limit_wait: float = 300.0,
        timeout: int = 30,
        seconds_between_requests: float | None = 0.25,
        seconds_between_writes: float | None = 1.0,
        comment_author: str | None = None,
    ) -> None:
        from github import Auth, Github, GithubRetry

        protect_secret(token)
        if retries is None:
            retries = int(_env_number("DIFFRISK_GITHUB_RETRIES", 5))
        if backoff is None:
            backoff = _env_number("DIFFRISK_GITHUB_RETRY_BACKOFF", 1.0)
        self.repository = repository
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self._comment_author = comment_author
        self._identity: Identity | None = None
        retry = GithubRetry(
            total=retries,
            backoff_factor=backoff,
            secondary_rate_wait=secondary_rate_wait,
            max_rate_limit_wait=max_rate_limit_wait,
            # 429 (secondary limit, with Retry-After) and 5xx; GithubRetry adds 403 rate limits.
            status_forcelist=[429, *range(500, 600)],
            raise_on_status=False,  # after the last retry PyGithub raises with GitHub's message
        )
        self.gh = Github(
            auth=Auth.Token(token),
            base_url=self.api_url,
            retry=retry,
            timeout=timeout,
            per_page=100,
            seconds_between_requests=seconds_between_requests,
            seconds_between_writes=seconds_between_writes,
            lazy=True,
        )
        self.repo = self.gh.get_repo(repository)

    def close(self) -> None:
        self.gh.close()

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- error translation
    def _call(self, what: str, fn: Callable[..., T]) -> T:
        import requests
        from github import GithubException, RateLimitExceededException

        try:
            return fn()
        except RateLimitExceededException as err:
            raise GitHubError(
                f"{what}: GitHub's rate limit is exhausted ({_message(err)})",
                hint="wait for the limit to reset, or use a token with a higher limit",
            ) from None
        except GithubException as err:
            status, message = err.status, _message(err)
            if status == 403 and "not accessible" in message.lower():
                raise PermissionDenied(
                    f"{what}: the token may not do this ({message})",
                    hint="give the workflow `permissions: pull-requests: write, checks: write`",
                ) from None
            if status == 401:
                raise GitHubError(
                    f"{what}: bad credentials (401)", hint="check the token"
                ) from None
            if status == 404:
                raise NotFound(
                    f"{what}: not found (404)",
                    hint="the pull request may have been deleted, or the token cannot see "
                    f"{self.repository}",
                ) from None
            if status == 422:
                raise GitHubError(f"{what}: GitHub rejected the request (422): {message}") from None
            if status is not None and status >= 500:
                raise GitHubError(
                    f"{what}: GitHub failed with {status} after retries ({message})",
                    hint="GitHub may be having an outage; rerun the job later",
                ) from None
            raise GitHubError(f"{what}: GitHub answered {status}: {message}") from None
        except requests.RequestException as err:
            if _timed_out(err):
                raise GitHubError(
                    f"{what}: {self.api_url} did not answer in time (read timeout "
                    f"{self.timeout} s, after retries)",
                    hint="GitHub may be slow or having an outage; rerun the job later",
                ) from None
            raise GitHubError(
                f"{what}: cannot reach {self.api_url} ({type(err).__name__})",
                hint="check GITHUB_API_URL and the network",
            ) from None

    # -- identity
    def identity(self) -> Identity:
        """Who our comments are written by (see the module docstring for the rule)."""
        if self._identity is None:
            try:
                login = self._call("GET /user", lambda: self.gh.get_user().login)
                self._identity = Identity(str(login), app=False)
            except PermissionDenied:
                self._identity = Identity(self._comment_author or APP_IDENTITY, app=True)
        return self._identity

    # -- what the gates read
    def pull_acceptance(
        self, number: int, label: str, reviews: bool
    ) -> tuple[
        list[str],
        list[tuple[str, str, str, datetime | None]],
        list[tuple[str, str, datetime | None, str | None]],
    ]:
        """PR ``number``'s labels; its ``labeled``/``unlabeled`` events (event, label,
        actor, when) when it carries ``label``; its reviews (user, state, when, commit)
        when ``reviews``."""

        def read() -> tuple[list[str], list[Any], list[Any]]:
            pull = self.repo.get_pull(number)
            labels = [lb.name for lb in pull.labels]
            events: list[Any] = []
            if label.lower() in {lb.lower() for lb in labels}:
                for ev in pull.get_issue_events():
                    if ev.event in ("labeled", "unlabeled") and ev.label is not None:
                        actor = ev.actor.login if ev.actor is not None else ""
                        events.append((ev.event, ev.label.name, actor, ev.created_at))
            found: list[Any] = []
            if reviews:
                for rv in pull.get_reviews():
                    user = rv.user.login if rv.user is not None else ""
                    found.append((user, rv.state or "", rv.submitted_at, rv.commit_id))
            return labels, events, found

        return self._call(f"read labels and reviews of #{number}", read)

    def last_successful_deployment(self, environment: str) -> str | None:
        """Sha of the newest deployment to ``environment`` whose latest status is ``success``."""

        def find() -> str | None:
            for dep in self.repo.get_deployments(environment=environment):  # newest first
                for status in dep.get_statuses():  # newest first: only the latest counts
                    if status.state == "success":
                        return str(dep.sha)
                    break
            return None

        return self._call(f"list deployments to {environment!r}", find)

    # -- sticky comment
    def upsert_comment(
        self, pr_number: int, body: str, marker: str, mode: str = "update"
    ) -> CommentOutcome:
        """Create, edit or recreate our one comment on PR ``pr_number`` (see module docs)."""
        if mode == "off":
            return CommentOutcome("off")
        if mode not in ("update", "recreate"):
            raise GitHubError(f"unknown comment mode {mode!r}", hint="use update, recreate or off")
        issue = self.repo.get_issue(pr_number)
        me = self.identity()
        comments = self._call(f"list comments of #{pr_number}", lambda: list(issue.get_comments()))
        ours = [c for c in comments if marker in (c.body or "") and me.wrote(c.user)]
        ours.sort(key=lambda c: (c.created_at or datetime.min.replace(tzinfo=timezone.utc), c.id))
        deleted = 0
        if mode == "update" and ours:
            keep, extra = ours[0], ours[1:]
            for c in extra:
                self._call(f"delete duplicate comment {c.id}", c.delete)
                deleted += 1
            if keep.body == body:
                return CommentOutcome("unchanged", keep.html_url, keep.id, deleted)
            try:
                self._call(f"edit comment {keep.id}", lambda: keep.edit(body))
                return CommentOutcome("updated", keep.html_url, keep.id, deleted)
            except NotFound:  # deleted between listing and editing: post a new one
                ours = []
        for c in ours:
            self._call(f"delete comment {c.id}", c.delete)
            deleted += 1
        new = self._call(f"comment on #{pr_number}", lambda: issue.create_comment(body))
        return CommentOutcome("recreated" if ours else "created", new.html_url, new.id, deleted)

    # -- check run / status
    def publish_check(
        self,
        head_sha: str,
        name: str,
        conclusion: str,
        title: str,
        summary: str,
        annotations: list[dict[str, Any]] | None = None,
        details_url: str | None = None,
    ) -> CheckOutcome:
        """A completed check run, annotations sent 50 per request (create, then updates).

        When the token may not create check runs (403), a commit status with the same name
        is set instead (``neutral`` counts as ``success`` there).
        """
        batches = iter_batches(annotations or [], ANNOTATION_BATCH)
        title = title[:255]
        output: dict[str, Any] = {"title": title, "summary": summary}
        if batches:
            output["annotations"] = batches[0]
        kwargs: dict[str, Any] = {
            "name": name,
            "head_sha": head_sha,
            "status": "completed",
            "conclusion": conclusion,
            "completed_at": datetime.now(timezone.utc),
            "output": output,
        }
        if details_url:
            kwargs["details_url"] = details_url
        try:
            run = self._call(
                f"create check run {name!r}", lambda: self.repo.create_check_run(**kwargs)
            )
        except PermissionDenied:
            return self.set_status(head_sha, name, conclusion, title, details_url)
        for batch in batches[1:]:
            self._call(
                f"add annotations to check run {run.id}",
                lambda b=batch: run.edit(
                    output={"title": title, "summary": summary, "annotations": b}
                ),
            )
        return CheckOutcome("check_run", run.html_url, run.id, 1 + max(len(batches) - 1, 0))

    def set_status(
        self,
        sha: str,
        context: str,
        conclusion: str,
        description: str,
        target_url: str | None = None,
    ) -> CheckOutcome:
        """``POST /repos/{owner}/{repo}/statuses/{sha}`` (needs ``statuses: write``)."""
        state = "failure" if conclusion == "failure" else "success"
        data: dict[str, Any] = {
            "state": state,
            "context": context,
            "description": description[:140],
        }
        if target_url:
            data["target_url"] = target_url
        url = f"/repos/{self.repository}/statuses/{sha}"
        self._call(
            f"set commit status {context!r}",
            lambda: self.gh.requester.requestJsonAndCheck("POST", url, input=data),
        )
        return CheckOutcome("status", target_url, None, 1)

    def commit_login(self, sha: str) -> str | None:
        """The GitHub login of a commit's author (None when GitHub cannot match the e-mail)."""
        author = self._call(f"GET commit {sha[:12]}", lambda: self.repo.get_commit(sha).author)
        login = getattr(author, "login", None) if author is not None else None
        return str(login) if login else None

    def find_pr(self, owner: str, branch: str) -> int | None:
        """The open PR whose head is ``owner:branch`` (``workflow_run`` events from forks)."""
        pulls = self._call(
            "find the pull request",
            lambda: list(self.repo.get_pulls(state="open", head=f"{owner}:{branch}")),
        )
        return pulls[0].number if pulls else None

    def bug_reports(
        self, bug_labels: Iterable[str]
    ) -> tuple[list[str], dict[int, datetime], set[int]]:
        """Issues and pull requests carrying one of ``bug_labels`` (any case), for
        ``diffrisk label``: the repository's labels that matched, bug issue number -> when
        it was opened, and the bug pull requests' numbers."""
        from github import GithubException

        wanted = {b.lower() for b in bug_labels}
        issues: dict[int, datetime] = {}
        pulls: set[int] = set()
        try:
            labels = sorted(lb.name for lb in self.repo.get_labels() if lb.name.lower() in wanted)
            for name in labels:
                for issue in self.repo.get_issues(state="all", labels=[name]):
                    # read the listed data: touching an absent attribute (pull_request on a
                    # plain issue) would make PyGithub fetch every issue once more
                    if "pull_request" in (getattr(issue, "_rawData", None) or {}):
                        pulls.add(issue.number)
                    else:
                        created = issue.created_at
                        if created.tzinfo is None:
                            created = created.replace(tzinfo=timezone.utc)
                        issues[issue.number] = created
        except GithubException as err:
            status: Any = getattr(err, "status", None)
            hint = {
                401: "the token is invalid or expired",
                403: "the token lacks access, or the rate limit is exhausted",
                404: "check --github-repo, and that the token can read it",
            }.get(status, "check the token and the repository name")
            raise GitHubError(
                f"GitHub refused listing bug issues of {self.repository} (HTTP {status})",
                hint=hint,
            ) from None
        except OSError as err:
            raise GitHubError(
                f"cannot reach the GitHub API at {self.api_url}: {err}",
                hint="check the network or GITHUB_API_URL",
            ) from None
        return labels, issues, pulls


def add_reviewer_logins(d: dict[str, Any], gh: GitHubClient, server_url: str) -> None:
    """Give each suggested reviewer in the result dict ``d`` the login GitHub shows for one
    of their commits (and a profile link); best effort: a failed lookup leaves the e-mail."""
    shas = d.get("reviewer_commits") or {}
    for rv in d.get("reviewers") or []:
        sha = shas.get(rv.get("email")) if isinstance(rv, dict) else None
        if not sha or rv.get("login"):
            continue
        try:
            login = gh.commit_login(sha)
        except NotFound:  # a commit GitHub does not have (never pushed)
            continue
        except GitHubError:  # failing after retries: do not delay the report more
            return
        if login:
            rv["login"] = login
            rv["url"] = f"{server_url.rstrip('/')}/{login}"


def client_for(
    ctx: GitHubContext, comment_author: str | None, client_options: Mapping[str, Any] | None
) -> GitHubClient:
    """A client for the context's repository (it must have a token and a repository)."""
    assert ctx.token is not None and ctx.repository is not None
    return GitHubClient(
        ctx.repository,
        ctx.token,
        api_url=ctx.api_url,
        comment_author=comment_author,
        **dict(client_options or {}),
    )


def add_reviewer_logins_quietly(
    d: dict[str, Any],
    ctx: GitHubContext,
    comment_author: str | None,
    client_options: Mapping[str, Any] | None,
) -> None:
    try:
        with client_for(ctx, comment_author, client_options) as gh:
            add_reviewer_logins(d, gh, ctx.server_url)
    except GitHubError:
        return


def _env_number(name: str, default: float) -> float:
    """A non-negative number from the environment (``default`` when unset)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0 or value != value:
        raise ConfigError(f"{name} must be a non-negative number", hint=f"unset {name} or fix it")
    return value


def _timed_out(err: BaseException) -> bool:
    """A read timeout, also when urllib3's retries wrapped it in a ConnectionError
    (requests raises ReadTimeout only without retries)."""
    import requests
    from urllib3.exceptions import MaxRetryError, ReadTimeoutError

    if isinstance(err, requests.ReadTimeout):
        return True
    for arg in err.args:
        if isinstance(arg, ReadTimeoutError) or (
            isinstance(arg, MaxRetryError) and isinstance(arg.reason, ReadTimeoutError)
        ):
            return True
    return False


def _message(err: Any) -> str:
    data = getattr(err, "data", None)
    if isinstance(data, Mapping):
        msg = str(data.get("message") or "")
        errors = data.get("errors")
        if errors:
            msg += " " + json.dumps(errors)[:500]
        return msg.strip() or str(getattr(err, "status", ""))
    return str(data or getattr(err, "message", "") or err)


def iter_batches(items: Iterable[T], size: int) -> list[list[T]]:
    """Split ``items`` into lists of at most ``size``."""
    items = list(items)
    return [items[i : i + size] for i in range(0, len(items), size)]
