"""The JIRA fix source: keys in messages, export files, and the real ``jira`` client against a
local server answering like JIRA's REST API.

``FakeJira`` serves ``serverInfo``, ``field`` and ``search`` (``startAt``/``total`` paging,
capped page sizes; on Jira Cloud ``search/jql`` with ``nextPageToken``), JIRA's error bodies
(401, 404, 400 for unknown keys in a validated query), and failures queued by a test (429
with ``Retry-After``, 500). It records every request with the account it authenticated,
never the credential itself, so no assertion can print a token.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from werkzeug import Request, Response

from diffrisk.config import JiraConfig, parse_config
from diffrisk.errors import ConfigError, DataError, DiffriskError
from diffrisk.labelling.sources import FixEvidence, combine
from diffrisk.labelling.sources.jira import (
    JiraIssue,
    SourceError,
    cited_keys,
    detect_projects,
    fetch_issues,
    issue_keys,
    jira_evidence,
    load_jira,
    parse_jira_date,
    read_export,
)

PAT = "pat-SECRET-0123456789abcdefABCDEF"
API_TOKEN = "atl-SECRET-api-token-9876543210"
EMAIL = "bob@example.com"
FAST = {"backoff": 0.0}


def rest_issue(key: str, kind: str, created: str, resolution: str | None = "Fixed") -> dict:
    return {
        "id": str(abs(hash(key)) % 100000),
        "key": key,
        "self": f"https://jira.example/rest/api/2/issue/{key}",
        "fields": {
            "issuetype": {"name": kind, "subtask": False},
            "resolution": None if resolution is None else {"name": resolution},
            "status": {"name": "Resolved" if resolution else "Open"},
            "created": created,
        },
    }


ISSUES = {
    "ZOOKEEPER-1": rest_issue("ZOOKEEPER-1", "Bug", "2019-03-01T10:00:00.000+0000"),
    "ZOOKEEPER-2": rest_issue("ZOOKEEPER-2", "Improvement", "2019-03-02T10:00:00.000+0000"),
    "ZOOKEEPER-3": rest_issue("ZOOKEEPER-3", "Bug", "2019-03-03T10:00:00.000+0000", None),
    "ZOOKEEPER-4": rest_issue("ZOOKEEPER-4", "Bug", "2019-03-04T10:00:00.000+0100"),
    "ZOOKEEPER-5": rest_issue("ZOOKEEPER-5", "New Feature", "2019-03-05T10:00:00.000+0000"),
    "ZOOKEEPER-6": rest_issue("ZOOKEEPER-6", "Bug", "2019-03-06T10:00:00.000+0000", "Won't Fix"),
    "ZOOKEEPER-7": rest_issue("ZOOKEEPER-7", "Bug", "2019-03-07T10:00:00.000+0000"),
}


@dataclass
class FakeJira:
    """A slice of JIRA's REST API v2 (Server/Data Center, or Cloud with ``cloud``)."""

    issues: dict[str, dict] = field(default_factory=lambda: dict(ISSUES))
    tokens: dict[str, str] = field(default_factory=lambda: {PAT: "alice"})
    basic: dict[tuple[str, str], str] = field(default_factory=lambda: {(EMAIL, API_TOKEN): "bob"})
    anonymous: bool = True
    cloud: bool = False
    page_cap: int = 1000  # JIRA caps maxResults (Apache's: 1000; Cloud: 100)
    failures: list[tuple[str, int, dict[str, str], str]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    context: str = "/jira"

    def fail(
        self, path: str, status: int, headers: dict[str, str] | None = None, body: str = ""
    ) -> None:
        """The next request to a path ending in ``path`` answers ``status``."""
        self.failures.append((path, status, headers or {}, body))

    def _who(self, request: Request) -> tuple[str, str | None] | None:
        header = request.headers.get("Authorization")
        if header is None:
            return ("anonymous", None) if self.anonymous else None
        kind, _, cred = header.partition(" ")
        if kind == "Bearer" and cred in self.tokens:
            return ("bearer", self.tokens[cred])
        if kind == "Basic":
            user, _, pw = base64.b64decode(cred).decode().partition(":")
            if (user, pw) in self.basic:
                return ("basic", self.basic[(user, pw)])
        return None

    def __call__(self, request: Request) -> Response:
        path = request.path
        who = self._who(request)
        self.requests.append(
            {
                "method": request.method,
                "path": path,
                "args": {k: request.args.getlist(k) for k in request.args},
                "auth": who,
                "sent_auth": "Authorization" in request.headers,
            }
        )
        for i, (suffix, status, headers, body) in enumerate(self.failures):
            if path.endswith(suffix):
                del self.failures[i]
                return Response(body, status=status, headers=headers)
        if who is None:
            return self._json(
                {"errorMessages": ["You are not authenticated. Authentication required."]}, 401
            )
        api = f"{self.context}/rest/api/2/"
        if not path.startswith(api):
            return Response("<html>Not Found</html>", status=404, content_type="text/html")
        endpoint = path[len(api) :]
        if endpoint == "serverInfo":
            return self._json(
                {
                    "baseUrl": "https://jira.example",
                    "version": "9.12.2",
                    "versionNumbers": [9, 12, 2],
                    "deploymentType": "Cloud" if self.cloud else "Server",
                    "serverTitle": "Fake JIRA",
                }
            )
        if endpoint == "field":
            return self._json(
                [
                    {"id": "issuetype", "name": "Issue Type", "clauseNames": ["issuetype", "type"]},
                    {"id": "resolution", "name": "Resolution", "clauseNames": ["resolution"]},
                    {"id": "status", "name": "Status", "clauseNames": ["status"]},
                    {"id": "created", "name": "Created", "clauseNames": ["created", "createdDate"]},
                ]
            )
        if endpoint == "search" and not self.cloud:
            return self._search(request, paged_by_token=False)
        if endpoint == "search/jql" and self.cloud:
            return self._search(request, paged_by_token=True)
        return self._json({"errorMessages": ["Not found"]}, 404)

    def _search(self, request: Request, paged_by_token: bool) -> Response:
        jql = request.args.get("jql", "")
        m = re.fullmatch(r"key in \(([^)]*)\)(?: ORDER BY key ASC)?", jql)
        if m is None:
            return self._json({"errorMessages": [f"Error in the JQL Query: {jql!r}"]}, 400)
        keys = [k.strip() for k in m.group(1).split(",")]
        validate = request.args.get("validateQuery", "true").lower() not in (
            "false",
            "none",
            "warn",
        )
        unknown = [k for k in keys if k not in self.issues]
        if unknown and (validate or paged_by_token):
            return self._json(
                {
                    "errorMessages": [
                        f"An issue with key '{k}' does not exist for field 'key'." for k in unknown
                    ],
                    "errors": {},
                },
                400,
            )
        hits = [self.issues[k] for k in sorted(keys) if k in self.issues]
        size = min(int(request.args.get("maxResults", 50)), self.page_cap)
        if paged_by_token:
            start = int(request.args.get("nextPageToken") or 0)
            page = hits[start : start + size]
            nxt = start + len(page)
            body: dict[str, Any] = {"issues": page, "isLast": nxt >= len(hits)}
            if nxt < len(hits):
                body["nextPageToken"] = str(nxt)
            return self._json(body)
        start = int(request.args.get("startAt", 0))
        page = hits[start : start + size]
        return self._json(
            {"startAt": start, "maxResults": size, "total": len(hits), "issues": page}
        )

    @staticmethod
    def _json(obj: Any, status: int = 200) -> Response:
        return Response(json.dumps(obj), status=status, content_type="application/json")

    def searches(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith(("/search", "/search/jql"))]


@pytest.fixture
def jira(httpserver: Any) -> tuple[FakeJira, str]:
    fake = FakeJira()
    httpserver.expect_request(re.compile(".*")).respond_with_handler(fake)
    return fake, httpserver.url_for("/jira")


def batch_keys(req: dict[str, Any]) -> list[str]:
    (jql,) = req["args"]["jql"]
    return re.findall(r"[A-Z]+-\d+", jql)


# --- the REST API --------------------------------------------------------------------


def test_fetch_batches_keys_pages_results_and_sends_the_token(jira: tuple[FakeJira, str]) -> None:
    fake, url = jira
    fake.page_cap = 2
    keys = [f"ZOOKEEPER-{i}" for i in range(1, 8)]
    got = fetch_issues(url, reversed(keys), token=PAT, batch_size=3, page_size=50, **FAST)
    assert sorted(got) == keys
    assert got["ZOOKEEPER-2"] == JiraIssue(
        "ZOOKEEPER-2", "Improvement", "Fixed", "Resolved", 1551520800
    )
    assert got["ZOOKEEPER-3"].resolution is None and got["ZOOKEEPER-3"].status == "Open"
    assert got["ZOOKEEPER-4"].created == 1551693600 - 3600  # +0100
    searches = fake.searches()
    # 7 keys in batches of 3: 3 + 3 + 1 keys; the first two need two pages of at most 2
    assert [batch_keys(r) for r in searches] == [
        keys[0:3],
        keys[0:3],
        keys[3:6],
        keys[3:6],
        keys[6:7],
    ]
    assert [r["args"]["startAt"] for r in searches] == [["0"], ["2"], ["0"], ["2"], ["0"]]
    for r in searches:
        assert {f for v in r["args"]["fields"] for f in v.split(",")} == {
            "issuetype", "resolution", "status", "created"
        }  # fmt: skip
        assert r["args"]["validateQuery"][0].lower() == "false"
    # every request (serverInfo, field, search) authenticated with the token, as alice
    assert fake.requests and all(r["auth"] == ("bearer", "alice") for r in fake.requests)
    assert fake.requests[0]["path"] == "/jira/rest/api/2/serverInfo"


def test_user_and_api_token_use_basic_auth(jira: tuple[FakeJira, str]) -> None:
    fake, url = jira
    got = fetch_issues(url, ["ZOOKEEPER-1"], token=API_TOKEN, user=EMAIL, **FAST)
    assert list(got) == ["ZOOKEEPER-1"]
    assert {tuple(r["auth"]) for r in fake.requests} == {("basic", "bob")}


def test_no_token_asks_anonymously(jira: tuple[FakeJira, str]) -> None:
    fake, url = jira
    assert list(fetch_issues(url, ["ZOOKEEPER-7"], **FAST)) == ["ZOOKEEPER-7"]
    assert not any(r["sent_auth"] for r in fake.requests)


def test_keys_jira_does_not_know_are_skipped(jira: tuple[FakeJira, str]) -> None:
    fake, url = jira
    got = fetch_issues(url, ["ZOOKEEPER-1", "ZOOKEEPER-999", "NOPE-1"], token=PAT, **FAST)
    assert list(got) == ["ZOOKEEPER-1"]
    assert len(fake.searches()) == 1  # not validated: no 400 to recover from


def test_jira_cloud_pages_by_token_and_drops_unknown_keys(jira: tuple[FakeJira, str]) -> None:
    fake, url = jira
    fake.cloud = True
    fake.page_cap = 2
    keys = ["ZOOKEEPER-1", "ZOOKEEPER-2", "ZOOKEEPER-3", "ZOOKEEPER-404"]
    got = fetch_issues(url, keys, token=API_TOKEN, user=EMAIL, **FAST)
    assert sorted(got) == keys[:3]
    searches = fake.searches()
    assert all(r["path"] == "/jira/rest/api/2/search/jql" for r in searches)
    # the 400 naming ZOOKEEPER-404, then the batch without it in two pages
    assert [batch_keys(r) for r in searches] == [keys, keys[:3], keys[:3]]
    assert [r["args"].get("nextPageToken") for r in searches] == [None, None, ["2"]]


def test_bad_token_is_one_source_error_without_the_token(
    jira: tuple[FakeJira, str], caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = jira
    fake.anonymous = False
    bad = "pat-SECRET-wrong-token-000000000000"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SourceError) as err:
        fetch_issues(url, ["ZOOKEEPER-1"], token=bad, **FAST)
    e = err.value
    assert isinstance(e, DiffriskError) and e.source == "jira" and e.status == 401
    assert "401" in e.message and "JIRA_TOKEN" in (e.hint or "")
    assert fake.requests[-1]["sent_auth"] and fake.requests[-1]["auth"] is None
    assert len(fake.requests) == 1  # a refusal is not retried
    out = capsys.readouterr()
    for text in (str(e), repr(e.args), e.detail, caplog.text, out.out, out.err):
        assert bad not in text


def test_a_server_echoing_the_token_is_redacted(jira: tuple[FakeJira, str]) -> None:
    fake, url = jira
    echo = json.dumps({"errorMessages": [f"Bad request with Authorization: Bearer {PAT}"]})
    fake.fail("/search", 400, {"Content-Type": "application/json"}, echo)
    with pytest.raises(SourceError) as err:
        fetch_issues(url, ["ZOOKEEPER-1"], token=PAT, **FAST)
    assert err.value.status == 400 and "Bearer ***" in err.value.message
    assert PAT not in str(err.value) and PAT not in err.value.detail


def test_no_token_on_a_private_jira_says_to_set_one(jira: tuple[FakeJira, str]) -> None:
    fake, url = jira
    fake.anonymous = False
    with pytest.raises(SourceError, match="refused the credentials") as err:
        fetch_issues(url, ["ZOOKEEPER-1"], **FAST)
    assert "set JIRA_TOKEN" in (err.value.hint or "")


def test_forbidden_project(jira: tuple[FakeJira, str]) -> None:
    fake, url = jira
    fake.fail("/search", 403, {"Content-Type": "application/json"}, '{"errorMessages": ["no"]}')
    with pytest.raises(SourceError) as err:
        fetch_issues(url, ["ZOOKEEPER-1"], token=PAT, **FAST)
    assert err.value.status == 403 and "denied" in err.value.message


def test_wrong_url_is_a_404_naming_the_base_address(jira: tuple[FakeJira, str]) -> None:
    fake, url = jira
    wrong = url.replace("/jira", "/browse")
    with pytest.raises(SourceError) as err:
        fetch_issues(wrong, ["ZOOKEEPER-1"], token=PAT, **FAST)
    assert err.value.status == 404
    assert "no JIRA REST API at" in err.value.message and wrong in err.value.message
    assert "base address" in (err.value.hint or "")
    assert fake.requests[0]["path"] == "/browse/rest/api/2/serverInfo"


def test_rate_limit_honours_retry_after_then_succeeds(jira: tuple[FakeJira, str]) -> None:
    fake, url = jira
    fake.fail("/search", 429, {"Retry-After": "1"}, '{"errorMessages": ["Rate limit exceeded"]}')
    t0 = time.monotonic()
    got = fetch_issues(url, ["ZOOKEEPER-1"], token=PAT, **FAST)
    assert time.monotonic() - t0 >= 1.0  # waited what Retry-After said, not backoff (0)
    assert list(got) == ["ZOOKEEPER-1"]
    assert len(fake.searches()) == 2


def test_rate_limit_asking_too_long_a_wait_gives_up_at_once(jira: tuple[FakeJira, str]) -> None:
    fake, url = jira
    fake.fail("/search", 429, {"Retry-After": "3600"})
    t0 = time.monotonic()
    with pytest.raises(SourceError, match="asks to wait 3600 s") as err:
        fetch_issues(url, ["ZOOKEEPER-1"], token=PAT, max_wait=30, **FAST)
    assert time.monotonic() - t0 < 5 and err.value.status == 429
    assert "export" in (err.value.hint or "")


def test_rate_limit_exhausted_after_bounded_retries(jira: tuple[FakeJira, str]) -> None:
    fake, url = jira
    for _ in range(5):
        fake.fail("/search", 429)
    with pytest.raises(SourceError, match="kept rate limiting") as err:
        fetch_issues(url, ["ZOOKEEPER-1"], token=PAT, retries=2, **FAST)
    assert err.value.status == 429 and "3 attempts" in err.value.message
    assert len(fake.searches()) == 3
    assert len(fake.failures) == 2  # nothing asked after giving up


def test_server_error_is_retried_then_succeeds(jira: tuple[FakeJira, str]) -> None:
    fake, url = jira
    fake.fail("/serverInfo", 503)
    fake.fail("/search", 500, {}, "<html>Internal Server Error</html>")
    got = fetch_issues(url, ["ZOOKEEPER-1"], token=PAT, **FAST)
    assert list(got) == ["ZOOKEEPER-1"]
    assert [r["path"].rsplit("/", 1)[-1] for r in fake.requests].count("serverInfo") == 2


def test_server_error_that_persists(jira: tuple[FakeJira, str]) -> None:
    fake, url = jira
    for _ in range(3):
        fake.fail("/search", 500)
    with pytest.raises(SourceError) as err:
        fetch_issues(url, ["ZOOKEEPER-1"], token=PAT, retries=2, **FAST)
    assert err.value.status == 500 and "HTTP 500" in err.value.message


def test_unreachable_server(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(SourceError, match="unreachable") as err:
        fetch_issues(f"http://127.0.0.1:{port}/jira", ["ZOOKEEPER-1"], token=PAT, retries=1, **FAST)
    assert time.monotonic() - t0 < 10 and "2 attempts" in err.value.message


def test_a_page_that_is_not_jira(httpserver: Any) -> None:
    httpserver.expect_request(re.compile(".*")).respond_with_data(
        "<html><body>Log in</body></html>", content_type="text/html"
    )
    with pytest.raises(SourceError, match="like JIRA's REST API"):
        fetch_issues(httpserver.url_for("/"), ["ZOOKEEPER-1"], **FAST)


def test_credentials_in_the_url_are_not_shown(httpserver: Any) -> None:
    httpserver.expect_request(re.compile(".*")).respond_with_data("nope", status=404)
    url = httpserver.url_for("/jira").replace("http://", "http://carol:pw-SECRET-42@")
    with pytest.raises(SourceError) as err:
        fetch_issues(url, ["ZOOKEEPER-1"], **FAST)
    assert "pw-SECRET-42" not in str(err.value) and "carol" not in str(err.value)


def test_no_keys_asks_nothing(jira: tuple[FakeJira, str]) -> None:
    fake, url = jira
    assert fetch_issues(url, [], token=PAT) == {}
    assert fake.requests == []


# --- load_jira: the settings ---------------------------------------------------------

MESSAGES = {
    "a" * 40: "ZOOKEEPER-1: NPE in the leader\n\nBody.",
    "b" * 40: "ZOOKEEPER-2. Faster snapshots",
    "c" * 40: "ZOOKEEPER-4: race in the follower (and ZOOKEEPER-2)",
    "d" * 40: "ZOOKEEPER-3 flaky connection",
    "e" * 40: "Update README",
    "f" * 40: 'Revert "ZOOKEEPER-7: wrong session timeout"',
    "0" * 40: "ZOOKEEPER-6: Won't fix, but a commit",
    "1" * 40: "ZOOKEEPER-5: new feature",
}


def test_load_jira_from_the_rest_api_with_detected_projects(
    jira: tuple[FakeJira, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = jira
    fake.anonymous = False
    monkeypatch.setenv("JIRA_TOKEN", PAT)
    monkeypatch.delenv("JIRA_USER", raising=False)
    ev, warnings = load_jira(JiraConfig(url=url, resolutions=["Fixed"]), MESSAGES, **FAST)
    assert warnings == []
    assert sorted((e.sha[0], e.issue) for e in ev) == [("a", "ZOOKEEPER-1"), ("c", "ZOOKEEPER-4")]
    assert all(e.source == "jira" for e in ev)
    # one search, for the keys the messages cite (not the revert's)
    (search,) = fake.searches()
    assert sorted(batch_keys(search)) == [f"ZOOKEEPER-{i}" for i in range(1, 7)]
    assert {r["auth"] for r in fake.requests} == {("bearer", "alice")}


def test_load_jira_turns_a_failing_server_into_a_warning(
    jira: tuple[FakeJira, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = jira
    fake.anonymous = False
    monkeypatch.setenv("JIRA_TOKEN", "pat-SECRET-revoked-111111111111")
    ev, warnings = load_jira(JiraConfig(url=url, projects=["zookeeper"]), MESSAGES, **FAST)
    assert ev == []
    (w,) = warnings
    assert w.startswith("JIRA source:") and "401" in w and "SECRET" not in w


def test_load_jira_without_settings_warns_when_messages_cite_a_tracker() -> None:
    ev, warnings = load_jira(JiraConfig(), MESSAGES)
    assert ev == []
    (w,) = warnings
    assert "ZOOKEEPER" in w and "label.jira.url" in w
    assert load_jira(JiraConfig(), {"a" * 40: "Fix crash", "b" * 40: "Add docs"}) == ([], [])


def test_load_jira_reads_an_export_relative_to_the_repository(tmp_path: Path) -> None:
    (tmp_path / "jira").mkdir()
    (tmp_path / "jira" / "bugs.csv").write_text(
        "Issue key,Issue Type,Status,Resolution,Created\n"
        "ZOOKEEPER-1,Bug,Closed,Fixed,01/Mar/19 10:00 AM\n"
        "ZOOKEEPER-2,Improvement,Closed,Fixed,02/Mar/19 10:00 AM\n",
        encoding="utf-8",
    )
    (tmp_path / "jira" / "more.json").write_text(
        json.dumps({"issues": [ISSUES["ZOOKEEPER-4"]]}), encoding="utf-8"
    )
    ev, warnings = load_jira(JiraConfig(export="jira"), MESSAGES, base=tmp_path)
    assert warnings == []
    assert sorted((e.sha[0], e.issue, e.issue_date) for e in ev) == [
        ("a", "ZOOKEEPER-1", 1551434400),
        ("c", "ZOOKEEPER-4", 1551693600 - 3600),
    ]
    with pytest.raises(DataError, match="cannot read the JIRA export"):
        load_jira(JiraConfig(export="missing.csv"), MESSAGES, base=tmp_path)


def test_jira_config_section() -> None:
    cfg = parse_config(
        {"label": {"jira": {"url": "https://issues.apache.org/jira", "projects": ["zookeeper"]}}}
    )
    assert cfg.label.jira.projects == ["ZOOKEEPER"]
    assert cfg.label.jira.bug_types == ["Bug", "Defect"] and cfg.label.jira.resolutions == []
    assert parse_config({}).label.jira.url is None
    for bad in ({"url": "issues.apache.org"}, {"projects": ["ZOO KEEPER"]}, {"token": "x"}):
        with pytest.raises(ConfigError, match=r"label\.jira\."):
            parse_config({"label": {"jira": bad}})


# --- keys in messages ----------------------------------------------------------------


def test_issue_keys() -> None:
    msg = (
        "ZOOKEEPER-12. Fix the leader (zookeeper-13); UTF-8 names, see HADOOP-HDFS-5,\n"
        "https://issues.apache.org/jira/browse/ZOOKEEPER-14 [ZOOKEEPER-12] KAFKA-2.8.0 X-0"
    )
    assert issue_keys(msg) == ["ZOOKEEPER-12", "UTF-8", "ZOOKEEPER-14"]
    assert issue_keys(msg, {"zookeeper"}) == ["ZOOKEEPER-12", "ZOOKEEPER-13", "ZOOKEEPER-14"]
    assert issue_keys(msg, {"HDFS", "KAFKA"}) == []
    assert issue_keys(msg, set()) == []


def test_cited_keys_prefer_the_subject_and_line_opening_keys() -> None:
    p = {"ZOOKEEPER", "MESOS"}
    prose = "ZOOKEEPER-4830. Replace zk_followers\n\nIt was removed in ZOOKEEPER-3117, as MESOS-3030 did."
    assert cited_keys(prose, p) == ["ZOOKEEPER-4830"]
    svn = (
        "ZOOKEEPER-1191. Wait not in guarded block\nZOOKEEPER-1192. Leader checks\n\ngit-svn-id: x"
    )
    assert cited_keys(svn, p) == ["ZOOKEEPER-1191", "ZOOKEEPER-1192"]
    squash = (
        "ZOOKEEPER-236: SSL for atomic broadcast\n\nCloses #655 from a/ZOOKEEPER-236_master\n\n"
        "8c3aa11e [Andor Molnar] ZOOKEEPER-3165: Java 9: test fails\n"
        "- ZOOKEEPER-3166 also\n"
        "see ZOOKEEPER-9 for more\n"
        "e0e0e0e [Bo] [ZOOKEEPER-3167][server] bracketed\n"
    )
    assert cited_keys(squash, p) == [
        "ZOOKEEPER-236", "ZOOKEEPER-3165", "ZOOKEEPER-3166", "ZOOKEEPER-3167"
    ]  # fmt: skip
    template = (
        "[ZOOKEEPER-4298] Fix broken link\n\n### What is the Jira issue?\n"
        "* https://issues.apache.org/jira/browse/ZOOKEEPER-4307\n"
        "[ZOOKEEPER-4308](https://issues.apache.org/jira/browse/ZOOKEEPER-4308)\n"
        "Related to https://issues.apache.org/jira/browse/ZOOKEEPER-10\n"
    )
    assert cited_keys(template, p) == ["ZOOKEEPER-4298", "ZOOKEEPER-4307", "ZOOKEEPER-4308"]
    body_only = "Leader fix\n\nThis fixes ZOOKEEPER-77 (see also MESOS-1)."
    assert cited_keys(body_only, p) == ["ZOOKEEPER-77", "MESOS-1"]


def test_detect_projects() -> None:
    msgs = [f"ZOOKEEPER-{i}: change {i}" for i in range(60)]
    # constants and other catalogues, with enough distinct numbers to pass for projects
    sha = ("SHA-1", "SHA-224", "SHA-256", "SHA-384", "SHA-512")
    msgs += [f"Read UTF-8 and {sha[i % 5]} files, fix CVE-{2015 + i % 6}-{i}" for i in range(30)]
    msgs += [f"HADOOP-{i} backport" for i in range(1, 6)]  # 5 messages, 5 numbers: enough
    msgs += ["ZK-1 old style", "ZK-2 old style", "ZK-3 old", "ZK-4", "DEV-1"]  # < 5 messages
    msgs += [f"Bump ABC-{i % 2}" for i in range(10)]  # 2 distinct numbers: a constant
    msgs += ["plain message"] * 300
    assert detect_projects(msgs) == ["ZOOKEEPER", "HADOOP"]
    # 1 % of the messages: 5 of 1,000 is not enough
    assert detect_projects(msgs + ["other"] * 600) == ["ZOOKEEPER"]
    assert detect_projects([]) == []


def test_jira_evidence() -> None:
    issues = {
        "ZOOKEEPER-1": JiraIssue("ZOOKEEPER-1", "Bug", "Fixed", "Closed", 300),
        "ZOOKEEPER-2": JiraIssue("ZOOKEEPER-2", "bug", None, "Open", 100),
        "ZOOKEEPER-3": JiraIssue("ZOOKEEPER-3", "Improvement", "Fixed", "Closed", 50),
        "ZOOKEEPER-4": JiraIssue("ZOOKEEPER-4", "Defect", "Fixed", "Closed", 200),
    }
    msgs = {
        "s1": "ZOOKEEPER-1, ZOOKEEPER-2: two bugs",
        "s2": "ZOOKEEPER-3: an improvement",
        "s3": "zookeeper-4 in a branch name",
        "s4": "Revert ZOOKEEPER-1.",
        "s5": "no key",
        "s6": "ZOOKEEPER-3: improvement\n\nthe crash of ZOOKEEPER-1 showed it",
    }
    ev = jira_evidence(msgs, issues)
    assert ev == [
        FixEvidence("s1", "jira", issue_date=100, issue="ZOOKEEPER-1, ZOOKEEPER-2"),
        FixEvidence("s3", "jira", issue_date=200, issue="ZOOKEEPER-4"),
    ]
    fixed = jira_evidence(msgs, issues, bug_types=["Bug"], resolutions=["fixed"])
    assert [(e.sha, e.issue, e.issue_date) for e in fixed] == [("s1", "ZOOKEEPER-1", 300)]
    assert combine(ev)["s1"].sources == ["jira"]
    assert jira_evidence(msgs, {}) == []


# --- export files --------------------------------------------------------------------


def test_jira_csv_export(tmp_path: Path) -> None:
    p = tmp_path / "Jira.csv"
    p.write_text(
        "\ufeffSummary,Issue key,Issue id,Issue Type,Status,Resolution,Created,Sprint,Sprint\n"
        '"NPE, with ""quotes""\nand a second line",ZOOKEEPER-10,1,Bug,Closed,Fixed,12/Mar/21 10:15 AM,S1,S2\n'
        "Feature,ZOOKEEPER-11,2,New Feature,Open,,12/Mar/21 12:05 PM,,\n"
        "\n"
        ",,,,,,,,\n"
        "Old,ZOOKEEPER-12,3,Bug,Resolved,Unresolved,2021-03-12T00:30:00.000+0100,,\n",
        encoding="utf-8",
    )
    got = read_export(p)
    assert got == {
        "ZOOKEEPER-10": JiraIssue("ZOOKEEPER-10", "Bug", "Fixed", "Closed", 1615544100),
        "ZOOKEEPER-11": JiraIssue("ZOOKEEPER-11", "New Feature", None, "Open", 1615550700),
        "ZOOKEEPER-12": JiraIssue("ZOOKEEPER-12", "Bug", None, "Resolved", 1615505400),
    }


APACHEJIT_2010 = (
    "Issue Type,Custom field (Patch Info),Issue key,Issue id,Parent id,Summary,Assignee,"
    "Reporter,Priority,Status,Resolution,Created,Updated,Due Date\n"
    "Bug,,CAMEL-2687,12487331,12487337.0,exec component fails after receiving empty output,"
    "davsclaus,chuck,Major,Closed,Fixed,30/Apr/10 15:54,24/Apr/11 10:00,\n"
    'Bug,Patch Available,ZOOKEEPER-758,12463432,,"zkpython segfaults on invalid acl, with '
    'missing key",henryr,kapilt,Major,Closed,Fixed,28/Apr/10 01:37,23/Nov/11 19:22,\n'
)
APACHEJIT_2019 = (
    "Issue Type,Issue key,Issue id,Summary,Assignee,Reporter,Priority,Status,Resolution,"
    "Created,Updated,Due Date,Custom field (Patch Info)\n"
    "Bug,ZOOKEEPER-3590,13262410,Zookeeper is unable to set the zookeeper.sasl.client.canonicalize"
    ".hostname,aristotelhs,aristotelhs,Minor,Resolved,Fixed,31/Aug/19 19:34,20/Jan/20 09:00,,\n"
)


def test_apachejit_yearly_exports(tmp_path: Path) -> None:
    (tmp_path / "2010.csv").write_text(APACHEJIT_2010, encoding="utf-8")
    (tmp_path / "2019.csv").write_text(APACHEJIT_2019, encoding="utf-8")
    a, b = read_export(tmp_path / "2010.csv"), read_export(tmp_path / "2019.csv")
    assert a["ZOOKEEPER-758"] == JiraIssue("ZOOKEEPER-758", "Bug", "Fixed", "Closed", 1272418620)
    assert a["CAMEL-2687"].created == 1272642840
    assert b == {
        "ZOOKEEPER-3590": JiraIssue("ZOOKEEPER-3590", "Bug", "Fixed", "Resolved", 1567280040)
    }


def test_json_exports(tmp_path: Path) -> None:
    search = {
        "startAt": 0,
        "maxResults": 50,
        "total": 2,
        "issues": [ISSUES["ZOOKEEPER-1"], ISSUES["ZOOKEEPER-3"]],
    }
    (tmp_path / "search.json").write_text(json.dumps(search, indent=2), encoding="utf-8")
    assert sorted(read_export(tmp_path / "search.json")) == ["ZOOKEEPER-1", "ZOOKEEPER-3"]
    pages = [search, {"issues": [ISSUES["ZOOKEEPER-5"]]}]
    (tmp_path / "pages.json").write_text(json.dumps(pages), encoding="utf-8")
    assert sorted(read_export(tmp_path / "pages.json")) == [
        "ZOOKEEPER-1",
        "ZOOKEEPER-3",
        "ZOOKEEPER-5",
    ]
    flat = [
        {
            "key": "abc-7",
            "type": "Bug",
            "resolution": "Fixed",
            "status": "Closed",
            "created": "2021-03-12",
        }
    ]
    (tmp_path / "list.txt").write_text(json.dumps(flat), encoding="utf-8")  # sniffed as JSON
    assert read_export(tmp_path / "list.txt") == {
        "ABC-7": JiraIssue("ABC-7", "Bug", "Fixed", "Closed", 1615507200)
    }


@pytest.mark.parametrize(
    ("text", "where"),
    [
        # the bad date is on line 4: line 2's record spans two lines
        (
            "Summary,Issue key,Issue Type,Created\n"
            '"two\nlines",ZOOKEEPER-1,Bug,12/Mar/21 10:15 AM\n'
            "x,ZOOKEEPER-2,Bug,31/Foo/21 10:15 AM\n",
            "line 4, column 4 ('Created'): '31/Foo/21 10:15 AM' is not a date",
        ),
        (
            "Issue key,Issue Type,Created\nZOOKEEPER-1,Bug,2021-03-12\nnot a key,Bug,2021-03-12\n",
            "line 3, column 1 ('Issue key'): 'not a key' is not an issue key",
        ),
        (
            "Issue key,Issue Type,Created\nZOOKEEPER-1,,2021-03-12\n",
            "line 2, column 2 ('Issue Type'): empty",
        ),
        (
            "Issue key,Issue Type,Status,Created\nZOOKEEPER-1,Bug\n",
            "line 2, column 4 ('Created'): missing; the row has 2 columns",
        ),
        ("Key,Status\nZOOKEEPER-1,Open\n", "line 1: no 'Issue Type', 'Created' column"),
        ("Issue key,Issue Type,Created\nZOOKEEPER-1,Bug,13/Mar/21 13:00 PM\n", "line 2, column 3"),
    ],
)
def test_malformed_csv_names_line_and_column(tmp_path: Path, text: str, where: str) -> None:
    p = tmp_path / "export.csv"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_export(p)
    assert err.value.message.startswith(f"{p}, ")
    assert where in err.value.message
    assert err.value.hint


def test_malformed_json_names_line_and_column(tmp_path: Path) -> None:
    p = tmp_path / "export.json"
    p.write_text('{"issues": [\n  {"key": "ZOOKEEPER-1",\n   "fields": }\n]}', encoding="utf-8")
    with pytest.raises(DataError, match=r"line 3, column 14: not valid JSON"):
        read_export(p)
    broken = json.loads(json.dumps(ISSUES["ZOOKEEPER-2"]))
    broken["fields"]["created"] = "yesterday"
    p.write_text(
        json.dumps({"issues": [ISSUES["ZOOKEEPER-1"], broken]}, indent=1), encoding="utf-8"
    )
    line = next(n for n, t in enumerate(p.read_text().splitlines(), 1) if '"ZOOKEEPER-2"' in t)
    with pytest.raises(DataError) as err:
        read_export(p)
    assert f"line {line}, column " in err.value.message
    assert (
        "(issue ZOOKEEPER-2), field 'fields.created': 'yesterday' is not a date"
        in err.value.message
    )
    p.write_text(json.dumps({"total": 0}), encoding="utf-8")
    with pytest.raises(DataError, match="expected a JIRA search response"):
        read_export(p)


def test_export_that_is_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "export.csv"
    p.write_bytes(b"Issue key,Issue Type,Created\nZOOKEEPER-1,Bug\xe9,2021-03-12\n")
    with pytest.raises(DataError, match=r"line 2, column 16: not UTF-8"):
        read_export(p)


def test_jira_dates() -> None:
    assert parse_jira_date("12/Mar/21 10:15 AM") == 1615544100
    assert parse_jira_date("12/mar/2021 12:15 am") == 1615508100
    assert parse_jira_date("30/Apr/10 15:54") == 1272642840
    assert parse_jira_date("2021-03-12T10:15:00.000+0000") == 1615544100
    assert parse_jira_date("2021-03-12T11:15:00+01:00") == 1615544100
    assert parse_jira_date("2021-03-12T10:15:00Z") == 1615544100
    for bad in ("", "yesterday", "12/Foo/21 10:15", "12/Mar/21 13:15 PM", "2021-13-01"):
        with pytest.raises(ValueError):
            parse_jira_date(bad)
