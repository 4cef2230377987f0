"""Posting to GitHub: the real PyGithub client against a local server answering like the REST API.

``FakeGitHub`` keeps comments, check runs and statuses in memory, answers with the REST API's
shapes (absolute ``url`` fields, ``Link`` pagination, GitHub's error bodies) and records every
request, so the tests assert on what went over the wire.
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from werkzeug import Request, Response

from diffrisk.cli import cli
from diffrisk.config import Config, parse_config
from diffrisk.errors import GitHubError
from diffrisk.hosts.github.actions import (
    SUMMARY_LIMIT,
    add_mask,
    annotate,
    append_summary,
    cut_markdown,
    format_output,
    read_event,
    set_outputs,
)
from diffrisk.hosts.github.client import GitHubClient, GitHubContext
from diffrisk.hosts.github.publish import publish
from diffrisk.report.render import comment_marker
from diffrisk.scoring.result import Factor, FileRisk, ScoreResult

REPO = "octo/widgets"
PAT = "ghp_SECRETpat0123456789abcdefABCDEF0123"
APP_TOKEN = "ghs_SECRETinstallation0123456789abcdef"
SHA = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
FAST = {
    "backoff": 0,
    "secondary_rate_wait": 0,
    "seconds_between_requests": 0,
    "seconds_between_writes": 0,
}

NOT_ACCESSIBLE = {
    "message": "Resource not accessible by integration",
    "documentation_url": "https://docs.github.com/rest",
    "status": "403",
}


@dataclass
class FakeGitHub:
    """An in-memory slice of the GitHub REST API: issue comments, check runs, statuses."""

    base: str
    prefix: str = ""
    users: dict[str, str] = field(default_factory=lambda: {PAT: "alice"})
    read_only: bool = False  # every write answers 403 (a fork's GITHUB_TOKEN)
    checks_forbidden: bool = False  # POST check-runs answers 403 (no checks: write)
    prs: set[int] = field(default_factory=lambda: {7})
    comments: list[dict[str, Any]] = field(default_factory=list)
    check_runs: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    failures: list[tuple[str, str, int, dict[str, Any], dict[str, str]]] = field(
        default_factory=list
    )
    per_page_max: int = 100
    commit_authors: dict[str, str | None] = field(default_factory=dict)  # sha -> login
    _next_id: int = 1000

    def fail(
        self,
        method: str,
        pattern: str,
        status: int,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next request matching ``method`` and ``pattern`` with ``status``."""
        self.failures.append(
            (method, pattern, status, body or {"message": "Server Error"}, headers or {})
        )

    def add_comment(self, pr: int, body: str, login: str, kind: str = "User") -> dict[str, Any]:
        self._next_id += 1
        cid = self._next_id
        c = {
            "id": cid,
            "node_id": f"IC_{cid}",
            "url": f"{self.base}/repos/{REPO}/issues/comments/{cid}",
            "html_url": f"https://github.com/{REPO}/pull/{pr}#issuecomment-{cid}",
            "issue_url": f"{self.base}/repos/{REPO}/issues/{pr}",
            "body": body,
            "user": {"login": login, "id": len(login), "type": kind},
            "created_at": f"2024-05-01T10:{len(self.comments) % 60:02d}:00Z",
            "updated_at": "2024-05-01T10:00:00Z",
            "_pr": pr,
        }
        self.comments.append(c)
        return c

    def of(self, method: str, pattern: str = "") -> list[tuple[str, str, Any]]:
        return [r for r in self.requests if r[0] == method and re.search(pattern, r[1])]

    # ------------------------------------------------------------------ dispatch
    def __call__(self, request: Request) -> Response:
        path = request.path
        if self.prefix and path.startswith(self.prefix):
            path = path[len(self.prefix) :]
        body = request.get_json(silent=True) if request.data else None
        self.requests.append((request.method, path, body))
        for i, (m, pat, status, err, headers) in enumerate(self.failures):
            if m == request.method and re.search(pat, path):
                del self.failures[i]
                return self._json(err, status, headers)
        token = (
            (request.headers.get("Authorization") or "")
            .removeprefix("token ")
            .removeprefix("Bearer ")
        )
        if token not in (PAT, APP_TOKEN):
            return self._json({"message": "Bad credentials"}, 401)
        if request.method != "GET" and self.read_only:
            return self._json(NOT_ACCESSIBLE, 403)
        if path == "/user":
            if token == APP_TOKEN:
                return self._json(NOT_ACCESSIBLE, 403)
            login = self.users[token]
            return self._json({"login": login, "id": 1, "type": "User"})
        me = self.users.get(token, "github-actions[bot]")
        kind = "User" if token in self.users else "Bot"
        if m := re.fullmatch(rf"/repos/{REPO}/issues/(\d+)/comments", path):
            pr = int(m.group(1))
            if pr not in self.prs:
                return self._json({"message": "Not Found"}, 404)
            if request.method == "GET":
                return self._page(request, [c for c in self.comments if c["_pr"] == pr])
            c = self.add_comment(pr, body["body"], me, kind)
            return self._json(self._public(c), 201)
        if m := re.fullmatch(rf"/repos/{REPO}/issues/comments/(\d+)", path):
            c = next((c for c in self.comments if c["id"] == int(m.group(1))), None)
            if c is None:
                return self._json({"message": "Not Found"}, 404)
            if c["user"]["login"] != me:  # GitHub: only the author (or an admin) may edit
                return self._json({"message": "Must have admin rights to Repository."}, 403)
            if request.method == "PATCH":
                c["body"] = body["body"]
                c["updated_at"] = "2024-05-02T10:00:00Z"
                return self._json(self._public(c))
            if request.method == "DELETE":
                self.comments.remove(c)
                return Response(status=204)
        if path == f"/repos/{REPO}/check-runs" and request.method == "POST":
            if self.checks_forbidden:
                return self._json(NOT_ACCESSIBLE, 403)
            if len(body.get("output", {}).get("annotations", [])) > 50:
                return self._json(
                    {"message": "Invalid request.\n\nOnly 50 annotations per request"}, 422
                )
            self._next_id += 1
            run = {
                "id": self._next_id,
                "url": f"{self.base}/repos/{REPO}/check-runs/{self._next_id}",
                "html_url": f"https://github.com/{REPO}/runs/{self._next_id}",
                "name": body["name"],
                "head_sha": body["head_sha"],
                "status": body.get("status"),
                "conclusion": body.get("conclusion"),
                "output": {"title": body["output"]["title"], "summary": body["output"]["summary"]},
                "_annotations": list(body["output"].get("annotations", [])),
            }
            self.check_runs.append(run)
            return self._json(self._public(run), 201)
        if m := re.fullmatch(rf"/repos/{REPO}/check-runs/(\d+)", path):
            run = next(r for r in self.check_runs if r["id"] == int(m.group(1)))
            anns = body.get("output", {}).get("annotations", [])
            if len(anns) > 50:
                return self._json({"message": "Only 50 annotations per request"}, 422)
            run["_annotations"] += anns
            return self._json(self._public(run))
        if m := re.fullmatch(rf"/repos/{REPO}/statuses/(\w+)", path):
            self.statuses.append({"sha": m.group(1), **body})
            return self._json({"id": 1, "state": body["state"], "context": body["context"]}, 201)
        if (m := re.fullmatch(rf"/repos/{REPO}/commits/(\w+)", path)) and m.group(1) in (
            self.commit_authors
        ):
            login = self.commit_authors[m.group(1)]
            author = {"login": login, "id": 9, "type": "User"} if login else None
            return self._json(
                {
                    "sha": m.group(1),
                    "url": f"{self.base}/repos/{REPO}/commits/{m.group(1)}",
                    "commit": {"message": "x", "author": {"name": "n", "email": "e"}},
                    "author": author,
                    "files": [],
                }
            )
        if path == f"/repos/{REPO}/pulls":
            found = (
                request.args.get("head") == "mallory:feature"
                and request.args.get("state") == "open"
            )
            return self._json(
                [{"number": 7, "url": f"{self.base}/repos/{REPO}/pulls/7"}] if found else []
            )
        return self._json({"message": "Not Found"}, 404)

    @staticmethod
    def _public(obj: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in obj.items() if not k.startswith("_")}

    def _page(self, request: Request, items: list[dict[str, Any]]) -> Response:
        per = min(int(request.args.get("per_page", 30)), self.per_page_max)
        page = int(request.args.get("page", 1))
        chunk = items[(page - 1) * per : page * per]
        headers = {}
        if page * per < len(items):
            url = f"{self.base}{request.path.removeprefix(self.prefix)}?per_page={per}&page={page + 1}"
            headers["Link"] = f'<{url}>; rel="next"'
        return self._json([self._public(c) for c in chunk], 200, headers)

    @staticmethod
    def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(
            json.dumps(data), status=status, headers=headers or {}, content_type="application/json"
        )


@pytest.fixture
def fake(httpserver: Any) -> FakeGitHub:
    base = httpserver.url_for("").rstrip("/")
    gh = FakeGitHub(base=base)
    httpserver.expect_request(re.compile(".*")).respond_with_handler(gh)
    return gh


def client(fake: FakeGitHub, token: str = PAT, **kw: Any) -> GitHubClient:
    return GitHubClient(REPO, token, api_url=fake.base, retries=kw.pop("retries", 3), **FAST, **kw)


def result(
    probability: float = 0.82, level: str = "high", files: int = 2, subject: str = "Rewrite parser"
) -> ScoreResult:
    return ScoreResult(
        repo=REPO,
        base="0" * 40,
        head=SHA,
        probability=probability,
        level=level,
        percentile=90.0,
        model_version="m1",
        model_source="repository",
        model_metrics={"auc": 0.75},
        features={"la": 300},
        factors=[Factor("la", 300.0, 0.8, "300 lines added")],
        files=[
            FileRisk(f"src/mod{i}.py", 0.9 - i * 0.001, [f"{i} past fixes"], 10, 2, i, None)
            for i in range(files)
        ],
        thresholds={"medium": 0.4, "high": 0.7},
        advice=[subject],
    )


def ctx(fake: FakeGitHub, token: str = PAT, **kw: Any) -> GitHubContext:
    return GitHubContext(
        repository=REPO, api_url=fake.base, pr_number=7, head_sha=SHA, token=token, **kw
    )


@pytest.fixture
def actions_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    out, summary = tmp_path / "output.txt", tmp_path / "summary.md"
    out.touch()
    summary.touch()
    for k in ("GITHUB_TOKEN", "INPUT_TOKEN", "GITHUB_EVENT_PATH", "GITHUB_REPOSITORY"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("RUNNER_TEMP", str(tmp_path))
    return {"output": out, "summary": summary, "dir": tmp_path}


def parse_outputs(text: str) -> dict[str, str]:
    """Read $GITHUB_OUTPUT the way the runner does (heredoc form only)."""
    values: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        if not lines[i]:
            i += 1
            continue
        name, delim = lines[i].split("<<", 1)
        j = lines.index(delim, i + 1)
        values[name] = "\n".join(lines[i + 1 : j])
        i = j + 1
    return values


# ---------------------------------------------------------------------- sticky comment
def test_first_run_creates_one_comment_second_run_edits_it(fake: FakeGitHub) -> None:
    marker = comment_marker("diffrisk")
    with client(fake) as gh:
        first = gh.upsert_comment(7, marker + "\nrun 1", marker)
        second = gh.upsert_comment(7, marker + "\nrun 2", marker)
        third = gh.upsert_comment(7, marker + "\nrun 2", marker)
    assert first.action == "created"
    assert second.action == "updated" and second.id == first.id
    assert third.action == "unchanged" and third.id == first.id
    assert len(fake.of("POST", "/comments$")) == 1
    assert [r[1] for r in fake.of("PATCH")] == [f"/repos/{REPO}/issues/comments/{first.id}"]
    assert [c["body"] for c in fake.comments] == [marker + "\nrun 2"]
    assert len(fake.of("GET", "^/user$")) == 1  # identity asked once per client


def test_other_identity_and_other_check_name_are_left_alone(fake: FakeGitHub) -> None:
    marker = comment_marker("diffrisk")
    quoted = fake.add_comment(7, marker + "\nquoted by a human", "mallory")
    other = fake.add_comment(7, comment_marker("diffrisk-nightly") + "\nother config", "alice")
    with client(fake) as gh:
        out = gh.upsert_comment(7, marker + "\nours", marker)
    assert out.action == "created"
    assert {c["id"] for c in fake.comments} == {quoted["id"], other["id"], out.id}
    assert quoted["body"].endswith("quoted by a human") and other["body"].endswith("other config")
    assert not fake.of("PATCH") and not fake.of("DELETE")


def test_github_token_identity_is_the_actions_bot(fake: FakeGitHub) -> None:
    marker = comment_marker("diffrisk")
    ours = fake.add_comment(7, marker + "\nold", "github-actions[bot]", "Bot")
    alice = fake.add_comment(7, marker + "\nby a PAT user", "alice")
    with client(fake, token=APP_TOKEN) as gh:
        out = gh.upsert_comment(7, marker + "\nnew", marker)
    assert (out.action, out.id) == ("updated", ours["id"])
    assert alice["body"].endswith("by a PAT user")


def test_duplicates_are_removed_and_recreate_posts_anew(fake: FakeGitHub) -> None:
    marker = comment_marker("diffrisk")
    a = fake.add_comment(7, marker + "\na", "alice")
    fake.add_comment(7, marker + "\nb", "alice")
    with client(fake) as gh:
        out = gh.upsert_comment(7, marker + "\nc", marker)
        assert (out.action, out.id, out.deleted) == ("updated", a["id"], 1)
        again = gh.upsert_comment(7, marker + "\nd", marker, mode="recreate")
        off = gh.upsert_comment(7, marker + "\ne", marker, mode="off")
    assert again.action == "recreated" and again.id != a["id"]
    assert off.action == "off"
    assert [c["body"] for c in fake.comments] == [marker + "\nd"]


def test_comment_deleted_while_we_edit_is_posted_anew(fake: FakeGitHub) -> None:
    marker = comment_marker("diffrisk")
    old = fake.add_comment(7, marker + "\nold", "alice")
    fake.fail("PATCH", "/issues/comments/", 404, {"message": "Not Found"})
    with client(fake) as gh:
        out = gh.upsert_comment(7, marker + "\nnew", marker)
    assert out.action == "created" and out.id != old["id"]
    assert len(fake.of("POST", "/comments$")) == 1


def test_our_comment_is_found_on_a_later_page(fake: FakeGitHub) -> None:
    marker = comment_marker("diffrisk")
    for i in range(150):
        fake.add_comment(7, f"chatter {i}", "bob")
    ours = fake.add_comment(7, marker + "\nold", "alice")
    with client(fake) as gh:
        out = gh.upsert_comment(7, marker + "\nnew", marker)
    assert out.id == ours["id"]
    assert len(fake.of("GET", "/comments$")) == 2


def test_deleted_pr_is_a_clear_error(fake: FakeGitHub) -> None:
    with client(fake) as gh, pytest.raises(GitHubError, match=r"#99: not found \(404\)") as err:
        gh.upsert_comment(99, "x", "x")
    assert "deleted" in (err.value.hint or "")


# ---------------------------------------------------------------------- retries
def test_502_is_retried(fake: FakeGitHub) -> None:
    fake.fail("POST", "/comments$", 502, {"message": "Bad Gateway"})
    with client(fake) as gh:
        out = gh.upsert_comment(7, "<!-- m -->", "<!-- m -->")
    assert out.action == "created"
    assert len(fake.of("POST", "/comments$")) == 2
    assert len(fake.comments) == 1


def test_persistent_5xx_becomes_github_error(fake: FakeGitHub) -> None:
    for _ in range(3):
        fake.fail("GET", "/comments$", 503, {"message": "Service Unavailable"})
    with client(fake, retries=2) as gh, pytest.raises(GitHubError, match="503 after retries"):
        gh.upsert_comment(7, "x", "x")
    assert len(fake.of("GET", "/comments$")) == 3


def test_secondary_rate_limit_is_retried(fake: FakeGitHub) -> None:
    fake.fail(
        "POST",
        "/comments$",
        403,
        {
            "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
        },
    )
    with client(fake) as gh:
        out = gh.upsert_comment(7, "<!-- m -->", "<!-- m -->")
    assert out.action == "created" and len(fake.of("POST", "/comments$")) == 2


def test_429_and_primary_rate_limit_are_retried(fake: FakeGitHub) -> None:
    fake.fail("GET", "/comments$", 429, {"message": "Too many requests"}, {"Retry-After": "0"})
    fake.fail(
        "GET",
        "/comments$",
        403,
        {"message": "API rate limit exceeded for installation ID 1."},
        {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"},  # long past: no wait
    )
    with client(fake) as gh:
        out = gh.upsert_comment(7, "<!-- m -->", "<!-- m -->")
    assert out.action == "created" and len(fake.of("GET", "/comments$")) == 3


def test_rate_limit_longer_than_we_wait_is_a_clear_error(fake: FakeGitHub) -> None:
    import time

    reset = str(int(time.time()) + 3600)
    fake.fail(
        "GET",
        "/comments$",
        403,
        {"message": "API rate limit exceeded for user."},
        {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
    )
    with client(fake) as gh, pytest.raises(GitHubError, match="rate limit"):
        gh.upsert_comment(7, "x", "x")


def test_validation_error_422_is_reported_with_githubs_message(fake: FakeGitHub) -> None:
    fake.fail(
        "POST",
        "/check-runs$",
        422,
        {"message": "Validation Failed", "errors": [{"field": "head_sha"}]},
    )
    with client(fake) as gh, pytest.raises(GitHubError, match=r"422.*Validation Failed.*head_sha"):
        gh.publish_check(SHA, "diffrisk", "success", "t", "s")


# ---------------------------------------------------------------------- check runs
def test_120_annotations_arrive_in_three_batches(fake: FakeGitHub) -> None:
    anns = [
        {
            "path": f"f{i}.py",
            "start_line": 1,
            "end_line": 1,
            "annotation_level": "notice",
            "message": str(i),
        }
        for i in range(120)
    ]
    with client(fake) as gh:
        out = gh.publish_check(SHA, "diffrisk", "failure", "High risk", "summary", anns)
    assert out.kind == "check_run" and out.requests == 3
    sizes = [
        len(r[2]["output"]["annotations"])
        for r in fake.of("POST", "check-runs") + fake.of("PATCH", "check-runs")
    ]
    assert sizes == [50, 50, 20]
    assert [a["message"] for a in fake.check_runs[0]["_annotations"]] == [
        str(i) for i in range(120)
    ]
    assert fake.check_runs[0]["conclusion"] == "failure"


def test_check_run_403_falls_back_to_commit_status(fake: FakeGitHub) -> None:
    fake.checks_forbidden = True
    with client(fake) as gh:
        out = gh.publish_check(
            SHA, "diffrisk", "neutral", "Medium risk (55%)", "s", details_url="https://x/run/1"
        )
    assert out.kind == "status"
    assert fake.statuses == [
        {
            "sha": SHA,
            "state": "success",
            "context": "diffrisk",
            "description": "Medium risk (55%)",
            "target_url": "https://x/run/1",
        }
    ]


def test_enterprise_server_base_url(httpserver: Any) -> None:
    base = httpserver.url_for("/api/v3")
    fake = FakeGitHub(base=base, prefix="/api/v3")
    httpserver.expect_request(re.compile(".*")).respond_with_handler(fake)
    with GitHubClient(REPO, PAT, api_url=base, **FAST) as gh:
        gh.upsert_comment(7, "<!-- m -->\nx", "<!-- m -->")
    paths = [r.path for r, _ in httpserver.log]
    assert paths and all(p.startswith("/api/v3/") for p in paths)


# ---------------------------------------------------------------------- publish
def test_publish_posts_comment_check_outputs_and_summary(
    fake: FakeGitHub, actions_env: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = publish(result(), Config(), context=ctx(fake), client_options=FAST)
    assert out.comment is not None and out.comment.action == "created"
    assert out.check is not None and out.check.kind == "check_run"
    assert fake.check_runs[0]["conclusion"] == "failure"  # high >= gate.fail_on (high)
    assert len(fake.check_runs[0]["_annotations"]) == 2
    assert fake.comments[0]["body"].startswith(comment_marker("diffrisk"))
    outputs = parse_outputs(actions_env["output"].read_text())
    assert outputs == {
        "risk-score": "0.8200",
        "risk-level": "high",
        "model-version": "m1",
        "report-path": str(actions_env["dir"] / "diffrisk-report.json"),
    }
    saved = json.loads(Path(outputs["report-path"]).read_text())
    assert saved["probability"] == 0.82 and saved["files"][0]["path"] == "src/mod0.py"
    assert "## 🔴 diffrisk: high risk (82%)" in actions_env["summary"].read_text()
    # A second run edits the same comment.
    publish(result(0.5, "medium"), Config(), context=ctx(fake), client_options=FAST)
    assert len(fake.comments) == 1 and "medium risk" in fake.comments[0]["body"]
    assert fake.check_runs[1]["conclusion"] == "neutral"
    assert "::warning" not in capsys.readouterr().out


def test_publish_without_token_says_nothing_was_posted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # outside Actions, asked to publish with no token: a warning, not a silent success
    for var in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT", "GITHUB_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    context = GitHubContext.from_env({"GITHUB_REPOSITORY": REPO})
    report_path = tmp_path / "r.json"
    out = publish(result(), Config(), context=context, report_path=report_path)
    assert out.comment is None and out.check is None
    assert out.warnings == [
        f"no GitHub token (GITHUB_TOKEN): nothing was posted to GitHub; the report is only in {report_path}"
    ]
    assert "warning: no GitHub token" in capsys.readouterr().err
    assert json.loads(report_path.read_text())["probability"] == 0.82


def test_publish_comment_mode_off_and_custom_check_name(
    fake: FakeGitHub, actions_env: dict[str, Path]
) -> None:
    cfg = parse_config({"report": {"comment_mode": "off", "check_name": "risk, nightly"}})
    out = publish(result(0.1, "low"), cfg, context=ctx(fake), client_options=FAST)
    assert out.comment is None and not fake.comments
    assert (
        fake.check_runs[0]["name"] == "risk, nightly"
        and fake.check_runs[0]["conclusion"] == "success"
    )


def test_fork_pr_read_only_token_falls_back_to_summary(
    fake: FakeGitHub, actions_env: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    fake.read_only = True
    out = publish(
        result(files=3),
        Config(),
        context=ctx(fake, token=APP_TOKEN, is_fork=True),
        client_options=FAST,
    )
    stdout = capsys.readouterr().out
    assert out.denied == ["comment", "check run and commit status"]
    assert not fake.comments and not fake.check_runs and not fake.statuses
    warnings = [
        line for line in stdout.splitlines() if line.startswith("::warning title=diffrisk::")
    ]
    assert len(warnings) == 1 and "workflow_run" in warnings[0]
    file_notes = [line for line in stdout.splitlines() if "file=src/mod" in line]
    assert len(file_notes) == 3 and file_notes[0].startswith("::warning file=src/mod0.py,line=1,")
    assert "high risk" in actions_env["summary"].read_text()
    assert parse_outputs(actions_env["output"].read_text())["risk-level"] == "high"


def test_cli_report_on_fork_pr_exits_0(
    fake: FakeGitHub, actions_env: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.read_only = True
    event = {
        "number": 7,
        "pull_request": {
            "number": 7,
            "head": {"sha": SHA, "ref": "feature", "repo": {"full_name": "mallory/widgets"}},
            "base": {"sha": "0" * 40, "ref": "main", "repo": {"full_name": REPO}},
        },
    }
    (tmp_path / "event.json").write_text(json.dumps(event))
    (tmp_path / "result.json").write_text(json.dumps(result().to_dict()))
    env = {
        "GITHUB_EVENT_PATH": str(tmp_path / "event.json"),
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_API_URL": fake.base,
        "GITHUB_TOKEN": APP_TOKEN,
        "GITHUB_RUN_ID": "42",
    }
    args = [
        "report",
        "--input",
        str(tmp_path / "result.json"),
        "--repo",
        str(tmp_path),
        "--retry-backoff",
        "0",
        "--write-interval",
        "0",
    ]
    res = CliRunner().invoke(cli, args, env=env)
    assert res.exit_code == 0, res.output
    assert sum("workflow_run" in line for line in res.output.splitlines()) == 1
    assert APP_TOKEN not in res.output.replace(f"::add-mask::{APP_TOKEN}", "")
    assert [r[0] for r in fake.requests].count(
        "POST"
    ) == 3  # comment, check run, status: all refused


def test_workflow_run_finds_the_fork_pr_from_the_event_not_the_file(
    fake: FakeGitHub, actions_env: dict[str, Path]
) -> None:
    event = {
        "workflow_run": {
            "head_sha": SHA,
            "head_branch": "feature",
            "head_repository": {"owner": {"login": "mallory"}},
            "pull_requests": [],  # always empty for forks
        }
    }
    c = GitHubContext.from_env(
        {
            "GITHUB_REPOSITORY": REPO,
            "GITHUB_EVENT_NAME": "workflow_run",
            "GITHUB_API_URL": fake.base,
        },
        token=PAT,
        event=event,
    )
    assert (c.pr_number, c.head_sha, c.head_owner, c.head_ref) == (None, SHA, "mallory", "feature")
    r = result()
    r.pull_request = 99  # written by the untrusted workflow: ignored here
    out = publish(r, Config(), context=c, client_options=FAST)
    assert out.comment is not None and out.comment.action == "created"
    assert fake.comments[0]["_pr"] == 7
    assert fake.check_runs[0]["head_sha"] == SHA


def test_result_pull_request_is_used_in_the_same_workflow(
    fake: FakeGitHub, actions_env: dict[str, Path]
) -> None:
    r = result()
    r.pull_request = 7
    c = GitHubContext(
        repository=REPO, api_url=fake.base, head_sha=SHA, token=PAT, event_name="push"
    )
    publish(r, Config(), context=c, client_options=FAST)
    assert [c["_pr"] for c in fake.comments] == [7]


def test_context_from_pull_request_event(tmp_path: Path) -> None:
    event = {
        "number": 12,
        "pull_request": {
            "number": 12,
            "head": {"sha": SHA, "ref": "f", "repo": None},
            "base": {"sha": "0" * 40, "ref": "main", "repo": {"full_name": REPO}},
        },
    }
    path = tmp_path / "e.json"
    path.write_text(json.dumps(event))
    env = {
        "GITHUB_EVENT_PATH": str(path),
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_SHA": "f" * 40,  # the merge commit; the check belongs on the PR head
        "GITHUB_API_URL": "https://ghe.example.com/api/v3/",
        "GITHUB_SERVER_URL": "https://ghe.example.com",
        "GITHUB_RUN_ID": "5",
        "GITHUB_TOKEN": "from-env-token",
    }
    c = GitHubContext.from_env(env)
    assert (c.pr_number, c.head_sha, c.is_fork) == (12, SHA, True)
    assert c.api_url == "https://ghe.example.com/api/v3"
    assert c.run_url == f"https://ghe.example.com/{REPO}/actions/runs/5"
    assert c.token == "from-env-token" and "from-env-token" not in repr(c)
    assert GitHubContext.from_env(env, token="explicit").token == "explicit"


# ---------------------------------------------------------------------- secrets
def test_token_never_appears_in_output_or_logs(
    fake: FakeGitHub,
    actions_env: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.fail("POST", "/comments$", 502, {"message": "Bad Gateway"})
    publish(result(), Config(), context=ctx(fake), client_options=FAST)
    logging.getLogger("somewhere.else").warning("oops the token is %s", PAT)
    captured = capsys.readouterr()
    stdout = captured.out.replace(f"::add-mask::{PAT}", "")
    assert f"::add-mask::{PAT}" in captured.out  # the runner consumes and hides this line
    assert PAT not in stdout and PAT not in captured.err
    assert caplog.records, "PyGithub/urllib3 should have logged the retried request"
    assert all(PAT not in r.getMessage() for r in caplog.records)
    assert "oops the token is ***" in caplog.text
    for p in actions_env["dir"].iterdir():
        assert PAT not in p.read_text(errors="replace")


# ---------------------------------------------------------------------- runner files
def test_outputs_use_random_heredoc_delimiters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out"
    tricky = "line one\nghadelimiter_x\nrisk-level<<EOF\nhigh\nEOF"
    assert set_outputs({"risk-level": "low", "multi": tricky}, path)
    text = path.read_text()
    assert parse_outputs(text) == {"risk-level": "low", "multi": tricky}
    delims = re.findall(r"<<(ghadelimiter_[0-9a-f-]{36})\n", text)
    assert len(set(delims)) == 2
    assert format_output("a", "x") != format_output("a", "x")
    with pytest.raises(ValueError):
        format_output("bad name", "x")
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    assert set_outputs({"a": 1}) is False  # outside Actions: nothing to write


def test_step_summary_respects_the_1_mib_limit(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    path.write_text("x" * 1000 + "\n")  # an earlier command of the step wrote this
    body = "<details><summary>big</summary>\n\n" + "".join(
        f"| row {i} | {'é' * 50} |\n" for i in range(20000)
    )
    assert append_summary(body, path)
    data = path.read_bytes()
    assert len(data) <= SUMMARY_LIMIT
    text = data.decode("utf-8")
    assert text.count("<details>") == text.count("</details>") == 1
    assert text.rstrip().endswith("the JSON report has everything._")
    assert "\n| row " in text and re.search(r"\| row \d+ \| é+ \|\n\n</details>", text)


def test_cut_markdown_keeps_fences_and_details_balanced() -> None:
    text = (
        "intro\n<details><summary>a</summary>\n\n```\n<details>\n"
        + "code\n" * 100
        + "```\n</details>\n"
        + "tail\n" * 100
    )
    cut = cut_markdown(text, 200, "_cut_")
    assert len(cut) <= 200 and cut.endswith("_cut_\n")
    assert cut.count("</details>") == 1  # the one in the code fence is not counted as open
    assert cut_markdown("short\n", 200, "_cut_") == "short\n"


def test_workflow_commands_escape_data_and_properties() -> None:
    buf = io.StringIO()
    annotate("warning", "50% done\nnext", file="a,b:c.py", line=3, title="t", stream=buf)
    add_mask("s3cret", buf)
    assert (
        buf.getvalue()
        == "::warning file=a%2Cb%3Ac.py,line=3,title=t::50%25 done%0Anext\n::add-mask::s3cret\n"
    )


def test_read_event_errors(tmp_path: Path) -> None:
    bad = tmp_path / "e.json"
    bad.write_text("[1]")
    with pytest.raises(GitHubError, match="not a JSON object"):
        read_event(bad)
    with pytest.raises(GitHubError, match="does not exist"):
        read_event(tmp_path / "missing.json")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_suggested_reviewers_get_their_github_login(
    fake: FakeGitHub, actions_env: dict[str, Path]
) -> None:
    r = result()
    r.reviewers = [("bob@example.com", 3), ("carol@example.com", 1), ("dan@example.com", 2)]
    r.reviewer_commits = {
        "bob@example.com": "b" * 40,
        "carol@example.com": "c" * 40,
        "dan@example.com": "d" * 40,
    }
    fake.commit_authors = {"b" * 40: "bob-gh", "c" * 40: None}  # carol: e-mail not on GitHub
    fake.fail("GET", "/commits/" + "d" * 40, 502)  # dan: GitHub fails, retried, then gives up
    fake.fail("GET", "/commits/" + "d" * 40, 502)
    fake.fail("GET", "/commits/" + "d" * 40, 502)
    fake.fail("GET", "/commits/" + "d" * 40, 502)
    out = publish(r, Config(), context=ctx(fake), client_options=FAST)
    assert out.comment is not None
    body = fake.comments[0]["body"]
    # a link, not an @-mention: suggesting a reviewer must not notify them
    assert "- [bob-gh](https://github.com/bob-gh) · bob@example.com (3 changes" in body
    assert "@bob-gh" not in body
    assert "- carol@example.com (1 change to these files)" in body
    assert "- dan@example.com (2 changes" in body
    assert "[bob-gh](https://github.com/bob-gh)" in actions_env["summary"].read_text()
    # without a token nothing is looked up and the e-mails stay
    fake.requests.clear()
    publish(r, Config(), context=ctx(fake, token=""), client_options=FAST)
    assert not fake.of("GET", "/commits/")
