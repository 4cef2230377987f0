"""A local stand-in for GitLab's REST API v4: merge request notes, label events, approvals,
versions, commit statuses and deployments, kept in memory, answered in GitLab's shapes
(``Link``/``X-Next-Page`` pagination, ``{"message": ...}`` errors, ``PRIVATE-TOKEN``
authentication), every request recorded so the tests assert on what went over the wire."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from werkzeug import Request, Response

TOKEN = "glpat-SECRETtoken0123456789abcdef"
BOT = "project_42_bot_3f1a"
PROJECT = "42"
FORK = "77"
IID = 7
SHA = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
OLD_SHA = "0badc0de" * 5


@dataclass
class MergeRequest:
    labels: list[str] = field(default_factory=list)
    #: (action add|remove, label, username, created_at)
    label_events: list[tuple[str, str, str, str]] = field(default_factory=list)
    approved_by: list[str] = field(default_factory=list)
    #: (head sha, created_at), oldest first
    versions: list[tuple[str, str]] = field(default_factory=lambda: [(SHA, "2024-05-01T09:00:00Z")])


@dataclass
class FakeGitLab:
    base: str
    users: dict[str, str] = field(default_factory=lambda: {TOKEN: BOT})
    projects: set[str] = field(default_factory=lambda: {PROJECT, FORK})
    mrs: dict[int, MergeRequest] = field(default_factory=lambda: {IID: MergeRequest()})
    #: projects where every write answers 403 (a fork's MR: the token may not post there)
    read_only: set[str] = field(default_factory=set)
    approvals_api: bool = True
    notes: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    failures: list[tuple[str, str, int, dict[str, Any], dict[str, str]]] = field(
        default_factory=list
    )
    per_page_max: int = 100
    _next_id: int = 1000

    def fail(
        self,
        method: str,
        pattern: str,
        status: int,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests matching ``method`` and ``pattern`` with ``status``."""
        for _ in range(times):
            self.failures.append(
                (
                    method,
                    pattern,
                    status,
                    body or {"message": "500 Internal Server Error"},
                    headers or {},
                )
            )

    def add_note(
        self, iid: int, body: str, username: str, *, system: bool = False, created_at: str = ""
    ) -> dict[str, Any]:
        self._next_id += 1
        note = {
            "id": self._next_id,
            "type": None,
            "body": body,
            "author": {"id": len(username), "username": username, "name": username},
            "created_at": created_at or f"2024-05-01T10:{len(self.notes) % 60:02d}:00.000Z",
            "updated_at": "2024-05-01T10:00:00.000Z",
            "system": system,
            "noteable_id": 900 + iid,
            "noteable_type": "MergeRequest",
            "noteable_iid": iid,
            "project_id": int(PROJECT),
        }
        self.notes.append(note)
        return note

    def ours(self) -> list[dict[str, Any]]:
        return [n for n in self.notes if n["author"]["username"] == BOT]

    def of(self, method: str, pattern: str = "") -> list[tuple[str, str, Any]]:
        return [r for r in self.requests if r[0] == method and re.search(pattern, r[1])]

    # ------------------------------------------------------------------ dispatch
    def __call__(self, request: Request) -> Response:
        path = request.path.removeprefix("/api/v4")
        body = request.get_json(silent=True) if request.data else None
        self.requests.append((request.method, path, body))
        for i, (m, pat, status, err, headers) in enumerate(self.failures):
            if m == request.method and re.search(pat, path):
                del self.failures[i]
                return self._json(err, status, headers)
        token = request.headers.get("PRIVATE-TOKEN", "")
        if token not in self.users:
            return self._json({"message": "401 Unauthorized"}, 401)
        me = self.users[token]
        if path == "/user":
            return self._json({"id": 5, "username": me, "name": me, "bot": True})
        m = re.fullmatch(r"/projects/([^/]+)(/.*)?", path)
        if not m or m.group(1) not in self.projects:
            return self._json({"message": "404 Project Not Found"}, 404)
        pid, rest = m.group(1), m.group(2) or ""
        if request.method != "GET" and pid in self.read_only:
            return self._json({"message": "403 Forbidden"}, 403)
        if mm := re.fullmatch(r"/statuses/(\w+)", rest):
            if request.method != "POST":
                return self._json({"message": "405 Method Not Allowed"}, 405)
            if body.get("state") not in (
                "pending",
                "running",
                "success",
                "failed",
                "canceled",
                "skipped",
            ):
                return self._json({"message": "state does not have a valid value"}, 400)
            self._next_id += 1
            self.statuses.append({"project": pid, "sha": mm.group(1), **body})
            return self._json(
                {
                    "id": self._next_id,
                    "sha": mm.group(1),
                    "status": body["state"],
                    "name": body.get("name"),
                },
                201,
            )
        if rest == "/deployments":
            found = [
                d
                for d in self.deployments
                if d["environment"]["name"] == request.args.get("environment")
                and (request.args.get("status") in (None, d["status"]))
            ]
            found.sort(key=lambda d: -d["id"])
            return self._page(request, found)
        mm = re.fullmatch(r"/merge_requests/(\d+)(/.*)?", rest)
        if not mm or int(mm.group(1)) not in self.mrs or pid != PROJECT:
            return self._json({"message": "404 Not found"}, 404)
        iid, sub = int(mm.group(1)), mm.group(2) or ""
        mr = self.mrs[iid]
        if sub == "":
            return self._json(
                {
                    "id": 900 + iid,
                    "iid": iid,
                    "project_id": int(PROJECT),
                    "title": "Rewrite parser",
                    "labels": mr.labels,
                    "sha": mr.versions[-1][0],
                    "source_project_id": int(PROJECT),
                    "target_project_id": int(PROJECT),
                    "web_url": f"https://gitlab.example.com/group/widgets/-/merge_requests/{iid}",
                }
            )
        if sub == "/notes":
            if request.method == "GET":
                items = [n for n in self.notes if n["noteable_iid"] == iid]
                if request.args.get("sort") == "desc":
                    items = items[::-1]
                return self._page(request, items)
            if request.method == "POST":
                return self._json(self.add_note(iid, body["body"], me), 201)
        if nm := re.fullmatch(r"/notes/(\d+)", sub):
            note = next((n for n in self.notes if n["id"] == int(nm.group(1))), None)
            if note is None:
                return self._json({"message": "404 Not found"}, 404)
            if note["author"]["username"] != me:
                return self._json({"message": "403 Forbidden"}, 403)
            if request.method == "PUT":
                note["body"] = body["body"]
                note["updated_at"] = "2024-05-02T10:00:00.000Z"
                return self._json(note)
            if request.method == "DELETE":
                self.notes.remove(note)
                return Response(status=204)
        if sub == "/resource_label_events":
            events = [
                {
                    "id": 3000 + i,
                    "user": {"id": 9, "username": user, "name": user},
                    "created_at": when,
                    "resource_type": "MergeRequest",
                    "resource_id": 900 + iid,
                    "label": {"id": 60 + i, "name": label, "color": "#ff0000"},
                    "action": action,
                }
                for i, (action, label, user, when) in enumerate(mr.label_events)
            ]
            return self._page(request, events)
        if sub == "/approvals":
            if not self.approvals_api:
                return self._json({"message": "404 Not found"}, 404)
            return self._json(
                {
                    "id": 900 + iid,
                    "iid": iid,
                    "project_id": int(PROJECT),
                    "approved": bool(mr.approved_by),
                    "approved_by": [
                        {"user": {"id": 30 + i, "username": u, "name": u}}
                        for i, u in enumerate(mr.approved_by)
                    ],
                }
            )
        if sub == "/versions":
            versions = [
                {
                    "id": 500 + i,
                    "head_commit_sha": head,
                    "base_commit_sha": "b" * 40,
                    "start_commit_sha": "b" * 40,
                    "created_at": when,
                    "merge_request_id": 900 + iid,
                    "state": "collected",
                    "real_size": "1",
                }
                for i, (head, when) in enumerate(mr.versions)
            ][::-1]  # newest first, as GitLab lists them
            return self._page(request, versions)
        return self._json({"message": "404 Not found"}, 404)

    def _page(self, request: Request, items: list[dict[str, Any]]) -> Response:
        per = min(int(request.args.get("per_page", 20)), self.per_page_max)
        page = int(request.args.get("page", 1))
        chunk = items[(page - 1) * per : page * per]
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per),
            "X-Total": str(len(items)),
            "X-Total-Pages": str(max(1, -(-len(items) // per))),
        }
        if page * per < len(items):
            args = {k: v for k, v in request.args.items() if k not in ("page", "per_page")}
            query = "&".join(f"{k}={v}" for k, v in args.items())
            url = f"{self.base}{request.path}?{query}&per_page={per}&page={page + 1}"
            headers["Link"] = f'<{url}>; rel="next"'
            headers["X-Next-Page"] = str(page + 1)
        return self._json(chunk, 200, headers)

    @staticmethod
    def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(
            json.dumps(data), status=status, headers=headers or {}, content_type="application/json"
        )


#: Variables a test must not inherit from the machine (a developer's shell, a CI job).
FAKE_ENV_KEYS = (
    "GITLAB_CI",
    "GITLAB_TOKEN",
    "DIFFRISK_GITLAB_TOKEN",
    "DIFFRISK_GITLAB_RETRIES",
    "CI_JOB_TOKEN",
    "CI_SERVER_URL",
    "CI_API_V4_URL",
    "CI_PROJECT_ID",
    "CI_PROJECT_URL",
    "CI_PIPELINE_ID",
    "CI_JOB_URL",
    "CI_COMMIT_SHA",
    "CI_MERGE_REQUEST_IID",
    "CI_MERGE_REQUEST_PROJECT_ID",
    "CI_MERGE_REQUEST_PROJECT_URL",
    "CI_MERGE_REQUEST_SOURCE_PROJECT_ID",
    "CI_MERGE_REQUEST_DIFF_BASE_SHA",
    "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA",
    "GITHUB_ACTIONS",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "INPUT_TOKEN",
    "GITHUB_REPOSITORY",
    "GITHUB_EVENT_PATH",
    "GITHUB_OUTPUT",
    "GITHUB_STEP_SUMMARY",
)


def ci_env(fake: FakeGitLab, **overrides: str) -> dict[str, str]:
    """The predefined variables of a merge request pipeline's job on ``fake``."""
    env = {
        "GITLAB_CI": "true",
        "CI_SERVER_URL": fake.base,
        "CI_API_V4_URL": f"{fake.base}/api/v4",
        "CI_PROJECT_ID": PROJECT,
        "CI_PROJECT_URL": "https://gitlab.example.com/group/widgets",
        "CI_PIPELINE_ID": "3141",
        "CI_JOB_URL": "https://gitlab.example.com/group/widgets/-/jobs/2718",
        "CI_COMMIT_SHA": SHA,
        "CI_MERGE_REQUEST_IID": str(IID),
        "CI_MERGE_REQUEST_PROJECT_ID": PROJECT,
        "CI_MERGE_REQUEST_PROJECT_URL": "https://gitlab.example.com/group/widgets",
        "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": PROJECT,
        "CI_MERGE_REQUEST_DIFF_BASE_SHA": "0" * 39 + "1",
        "CI_JOB_TOKEN": "glcbt-jobtokenSECRET0123456789",
        "GITLAB_TOKEN": TOKEN,
    }
    env.update(overrides)
    return env
