"""Posting to GitLab: the real python-gitlab client against a local server answering like
GitLab's REST API v4 (``fake_gitlab.FakeGitLab``), through the library and the CLI."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fake_gitlab import BOT, FORK, IID, OLD_SHA, PROJECT, SHA, TOKEN, FakeGitLab, ci_env

from diffrisk.cli import cli
from diffrisk.config import Config
from diffrisk.errors import ConfigError
from diffrisk.hosts.gitlab.client import GitLabClient, GitLabError, NotFound, PermissionDenied
from diffrisk.hosts.gitlab.events import GitLabContext, detect_host
from diffrisk.hosts.gitlab.publish import NOTE_LIMIT, note_body, publish
from diffrisk.report.render import comment_marker
from diffrisk.scoring.result import Factor, FileRisk, ScoreResult

MARKER = comment_marker("diffrisk")


def client(fake: FakeGitLab, token: str = TOKEN, **kw: Any) -> GitLabClient:
    kw.setdefault("retries", 2)
    kw.setdefault("pipeline_id", 3141)
    kw.setdefault("commit_sha", SHA)
    kw.setdefault("job_url", "https://gitlab.example.com/group/widgets/-/jobs/2718")
    kw.setdefault("mr_project_url", "https://gitlab.example.com/group/widgets")
    return GitLabClient(PROJECT, token, url=fake.base, **kw)


def result(
    probability: float = 0.82, level: str = "high", files: int = 2, reason: str = "2 past fixes"
) -> ScoreResult:
    return ScoreResult(
        repo="group/widgets",
        base="0" * 39 + "1",
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
            FileRisk(f"src/mod{i}.py", 0.9 - i * 1e-6, [reason], 10, 2, i, None)
            for i in range(files)
        ],
        thresholds={"medium": 0.4, "high": 0.7},
        advice=["Rewrite parser"],
    )


def run_cli(args: list[str], env: dict[str, str]) -> Any:
    return CliRunner().invoke(cli, args, env=env)


def write_result(tmp_path: Path, r: ScoreResult) -> Path:
    path = tmp_path / "score.json"
    path.write_text(json.dumps(r.to_dict()))
    return path


def gate_args(tmp_path: Path, score: Path, *extra: str) -> list[str]:
    return [
        "gate",
        "--host",
        "gitlab",
        "--repo",
        str(tmp_path),
        "--data-dir",
        str(tmp_path / "data"),
        "--score-file",
        str(score),
        *extra,
    ]


# ---------------------------------------------------------------------- where we are
def test_context_from_a_merge_request_pipeline(fake: FakeGitLab) -> None:
    env = ci_env(fake, CI_MERGE_REQUEST_SOURCE_BRANCH_SHA="")
    ctx = GitLabContext.from_env(env)
    assert (ctx.project_id, ctx.mr_project_id, ctx.mr_iid) == (PROJECT, PROJECT, IID)
    assert (ctx.base_sha, ctx.head_sha, ctx.commit_sha) == ("0" * 39 + "1", SHA, SHA)
    assert ctx.url == fake.base and ctx.pipeline_id == 3141 and not ctx.is_fork
    assert ctx.token == TOKEN and TOKEN not in repr(ctx)
    assert ctx.merge_request() == (IID, "0" * 39 + "1", SHA)
    # a merged results pipeline runs on a merge commit: the head is the source branch's
    merged = GitLabContext.from_env({**env, "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA": OLD_SHA})
    assert (merged.head_sha, merged.commit_sha) == (OLD_SHA, SHA)
    fork = GitLabContext.from_env({**env, "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": FORK})
    assert fork.is_fork
    # DIFFRISK_GITLAB_TOKEN wins; CI_JOB_TOKEN is never taken for a token
    assert GitLabContext.from_env({**env, "DIFFRISK_GITLAB_TOKEN": "other"}).token == "other"
    job_only = GitLabContext.from_env({k: v for k, v in env.items() if k != "GITLAB_TOKEN"})
    assert job_only.token is None and job_only.job_token_only
    # a relative URL root survives in CI_API_V4_URL
    rel = GitLabContext.from_env({**env, "CI_API_V4_URL": "https://h.example/gitlab/api/v4"})
    assert rel.url == "https://h.example/gitlab"


def test_the_host_is_detected_from_gitlab_ci() -> None:
    assert detect_host("auto", {"GITLAB_CI": "true"}) == "gitlab"
    assert detect_host("auto", {}) == "github"
    assert detect_host("auto", {"GITLAB_CI": "true", "GITHUB_ACTIONS": "true"}) == "github"
    assert detect_host("github", {"GITLAB_CI": "true"}) == "github"
    with pytest.raises(ConfigError):
        detect_host("bitbucket", {})


# ---------------------------------------------------------------------- sticky note
def test_note_is_created_then_edited_not_duplicated(fake: FakeGitLab) -> None:
    fake.add_note(IID, MARKER + "\nquoted by a person", "maria")  # someone else's: left alone
    with client(fake) as gl:
        first = gl.upsert_note(IID, MARKER + "\nrun 1", MARKER)
        second = gl.upsert_note(IID, MARKER + "\nrun 2", MARKER)
        third = gl.upsert_note(IID, MARKER + "\nrun 2", MARKER)
    assert first.action == "created"
    assert second.action == "updated" and second.id == first.id
    assert third.action == "unchanged" and third.id == first.id
    assert (
        first.url
        == f"https://gitlab.example.com/group/widgets/-/merge_requests/{IID}#note_{first.id}"
    )
    assert len(fake.of("POST", r"/notes$")) == 1
    assert len(fake.of("PUT", rf"/notes/{first.id}$")) == 1
    assert [n["body"] for n in fake.ours()] == [MARKER + "\nrun 2"]
    assert fake.notes[0]["body"] == MARKER + "\nquoted by a person"


def test_another_check_name_keeps_its_own_note_and_recreate_posts_anew(fake: FakeGitLab) -> None:
    other = comment_marker("nightly")
    with client(fake) as gl:
        gl.upsert_note(IID, other + "\nnightly", other)
        first = gl.upsert_note(IID, MARKER + "\nrun 1", MARKER)
        again = gl.upsert_note(IID, MARKER + "\nrun 2", MARKER, "recreate")
        off = gl.upsert_note(IID, MARKER + "\nrun 3", MARKER, "off")
    assert again.action == "recreated" and again.id != first.id and again.deleted == 1
    assert off.action == "off"
    assert sorted(n["body"] for n in fake.ours()) == [MARKER + "\nrun 2", other + "\nnightly"]


def test_duplicates_left_by_a_race_are_removed_keeping_the_oldest(fake: FakeGitLab) -> None:
    old = fake.add_note(IID, MARKER + "\nA", BOT, created_at="2024-05-01T08:00:00.000Z")
    fake.add_note(IID, MARKER + "\nB", BOT, created_at="2024-05-01T09:00:00.000Z")
    with client(fake) as gl:
        out = gl.upsert_note(IID, MARKER + "\nC", MARKER)
    assert out.action == "updated" and out.id == old["id"] and out.deleted == 1
    assert [n["body"] for n in fake.ours()] == [MARKER + "\nC"]


def test_our_note_is_found_on_a_later_page(fake: FakeGitLab) -> None:
    fake.per_page_max = 5
    for i in range(12):
        fake.add_note(IID, f"chatter {i}", "maria")
    ours = fake.add_note(IID, MARKER + "\nold", BOT)
    with client(fake) as gl:
        out = gl.upsert_note(IID, MARKER + "\nnew", MARKER)
    assert out.action == "updated" and out.id == ours["id"]
    assert len(fake.of("GET", r"/notes$")) == 3  # three pages of five


def test_over_long_note_is_cut_readably(fake: FakeGitLab) -> None:
    big = result(files=1500, reason="x" * 60)
    body = note_body(big, Config(), job_url="https://gitlab.example.com/g/w/-/jobs/1")
    assert len(body) <= NOTE_LIMIT
    assert body.startswith(MARKER + "\n")
    assert body.count("<details") == body.count("</details>")
    assert body.rstrip().endswith(
        "the full report is in the [job log](https://gitlab.example.com/g/w/-/jobs/1) and its "
        "diffrisk-report.json._"
    )
    # the gate's decision is kept whole at the end
    section = "\n\n---\n\n### ❌ diffrisk gate: fail\n"
    with_decision = note_body(big, Config(), section=section)
    assert len(with_decision) <= NOTE_LIMIT and with_decision.endswith(section)
    with client(fake) as gl:
        gl.upsert_note(IID, body, MARKER)
    assert fake.ours()[0]["body"] == body


# ---------------------------------------------------------------------- commit status
def test_status_is_posted_on_the_pipeline(fake: FakeGitLab) -> None:
    with client(fake) as gl:
        out = gl.set_status(SHA, "diffrisk", "failure", "High risk (82%)")
        gl.publish_check(SHA, "diffrisk", "neutral", "Medium risk (50%)", "summary", [])
        gl.set_status(OLD_SHA, "diffrisk", "success", "Low risk (5%)")
    assert out.state == "failed" and out.kind == "status"
    assert fake.statuses[0] == {
        "project": PROJECT,
        "sha": SHA,
        "state": "failed",
        "name": "diffrisk",
        "description": "High risk (82%)",
        "target_url": "https://gitlab.example.com/group/widgets/-/jobs/2718",
        "pipeline_id": 3141,
    }
    assert fake.statuses[1]["state"] == "success"  # a warning does not fail the pipeline
    # another commit than the pipeline's: not attached to this pipeline
    assert fake.statuses[2]["sha"] == OLD_SHA and "pipeline_id" not in fake.statuses[2]


# ---------------------------------------------------------------------- failures
def test_429_with_retry_after_is_waited_for_then_succeeds(fake: FakeGitLab) -> None:
    fake.fail("POST", r"/statuses/", 429, {"message": "Retry later"}, {"Retry-After": "1"})
    start = time.monotonic()
    with client(fake) as gl:
        out = gl.set_status(SHA, "diffrisk", "success", "Low risk (5%)")
    assert time.monotonic() - start >= 0.9  # GitLab's Retry-After was honoured
    assert out.state == "success" and len(fake.statuses) == 1
    assert len(fake.of("POST", r"/statuses/")) == 2


def test_5xx_is_retried_then_a_clear_error(fake: FakeGitLab) -> None:
    fake.fail("GET", r"/notes$", 502, {"message": "502 Bad Gateway"})
    with client(fake) as gl:
        assert gl.upsert_note(IID, MARKER + "\nx", MARKER).action == "created"
    fake.fail("POST", r"/notes$", 503, {"message": "503 Service Unavailable"}, times=3)
    with client(fake) as gl, pytest.raises(GitLabError) as err:
        gl.upsert_note(IID, MARKER + "\ny", MARKER, "recreate")
    assert err.value.message == (
        f"post a note on !{IID}: GitLab failed with 503 after 2 retries (503 Service Unavailable)"
    )
    assert "outage" in (err.value.hint or "")
    assert len(fake.of("POST", r"/notes$")) == 4  # 1 + the 3 failed attempts (2 retries)


def test_unknown_project_is_a_clear_error(fake: FakeGitLab) -> None:
    with GitLabClient("999", TOKEN, url=fake.base, retries=0) as gl, pytest.raises(NotFound) as err:
        gl.upsert_note(IID, MARKER + "\nx", MARKER)
    assert err.value.message == f"list the notes of !{IID}: not found (404: 404 Project Not Found)"
    assert "CI_PROJECT_ID (999)" in (err.value.hint or "")


def test_bad_token_is_a_clear_error(fake: FakeGitLab) -> None:
    with client(fake, token="glpat-wrong0123456789") as gl, pytest.raises(GitLabError) as err:
        gl.upsert_note(IID, MARKER + "\nx", MARKER)
    assert err.value.message == "GET /user: bad credentials (401)"
    assert not isinstance(err.value, PermissionDenied)


def test_read_only_project_is_permission_denied(fake: FakeGitLab) -> None:
    fake.read_only.add(PROJECT)
    with client(fake) as gl, pytest.raises(PermissionDenied) as err:
        gl.upsert_note(IID, MARKER + "\nx", MARKER)
    assert "403" in err.value.message and "Developer role" in (err.value.hint or "")


# ---------------------------------------------------------------------- report
def test_report_publishes_note_status_and_json(
    fake: FakeGitLab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in ci_env(fake).items():
        monkeypatch.setenv(k, v)
    path = tmp_path / "out" / "report.json"
    out = publish(result(), Config(), report_path=path, client_options={"retries": 0})
    assert out.note is not None and out.note.action == "created"
    assert out.status is not None and fake.statuses[0]["state"] == "failed"
    assert fake.ours()[0]["body"].startswith(MARKER)
    assert json.loads(path.read_text())["probability"] == 0.82
    out = publish(result(0.5, "medium"), Config(), report_path=path, client_options={"retries": 0})
    assert out.note is not None and out.note.action == "updated"
    assert len(fake.ours()) == 1 and "medium risk" in fake.ours()[0]["body"]
    assert [s["state"] for s in fake.statuses] == ["failed", "success"]
    assert out.warnings == []


def test_cli_report_on_gitlab_then_again(fake: FakeGitLab, tmp_path: Path) -> None:
    score = write_result(tmp_path, result())
    args = ["report", "--input", str(score), "--repo", str(tmp_path)]
    args += ["--report-path", str(tmp_path / "r.json")]
    env = ci_env(fake)
    res = run_cli(args, env)  # --host auto and --publish by default inside GitLab CI
    assert res.exit_code == 0, res.output
    assert "merge request note created" in res.output and "commit status: failed" in res.output
    res = run_cli([*args, "--no-check"], env)
    assert res.exit_code == 0, res.output
    assert "merge request note unchanged" in res.output
    assert len(fake.ours()) == 1 and len(fake.statuses) == 1
    assert TOKEN not in res.output


def test_cli_report_on_a_fork_mr_exits_0_with_one_warning(fake: FakeGitLab, tmp_path: Path) -> None:
    fake.read_only.add(PROJECT)
    score = write_result(tmp_path, result())
    env = ci_env(fake, CI_MERGE_REQUEST_SOURCE_PROJECT_ID=FORK)
    args = ["report", "--host", "gitlab", "--input", str(score), "--repo", str(tmp_path)]
    res = run_cli([*args, "--report-path", str(tmp_path / "r.json")], env)
    assert res.exit_code == 0, res.output
    warnings = [line for line in res.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert "comes from a fork" in warnings[0]
    assert "the merge request note and the commit status" in warnings[0]
    assert not fake.ours() and not fake.statuses


def test_cli_report_on_an_unknown_project_warns_and_exits_0(
    fake: FakeGitLab, tmp_path: Path
) -> None:
    score = write_result(tmp_path, result())
    env = ci_env(fake, CI_PROJECT_ID="999", CI_MERGE_REQUEST_PROJECT_ID="999")
    args = ["report", "--input", str(score), "--repo", str(tmp_path), "--retries", "0"]
    res = run_cli([*args, "--report-path", str(tmp_path / "r.json")], env)
    assert res.exit_code == 0, res.output
    assert "warning: the merge request note was not posted: list the notes of !7: not found " in (
        res.output
    )
    assert "404 Project Not Found" in res.output
    assert json.loads((tmp_path / "r.json").read_text())["level"] == "high"


def test_report_without_a_token_says_ci_job_token_cannot_post(
    fake: FakeGitLab, tmp_path: Path
) -> None:
    score = write_result(tmp_path, result())
    env = ci_env(fake, GITLAB_TOKEN="")
    args = ["report", "--input", str(score), "--repo", str(tmp_path)]
    res = run_cli([*args, "--report-path", str(tmp_path / "r.json")], env)
    assert res.exit_code == 0, res.output
    assert "CI_JOB_TOKEN is not enough" in res.output and "GITLAB_TOKEN" in res.output
    assert fake.requests == []


# ---------------------------------------------------------------------- gate
def test_gate_blocks_high_risk_with_note_status_and_exit_1(
    fake: FakeGitLab, tmp_path: Path
) -> None:
    score = write_result(tmp_path, result())
    res = run_cli(gate_args(tmp_path, score), ci_env(fake))
    assert res.exit_code == 1, res.output
    assert "merge blocked" in res.output
    (note,) = fake.ours()
    assert note["body"].startswith(MARKER) and "diffrisk gate: fail" in note["body"]
    assert [(s["state"], s["name"], s["sha"]) for s in fake.statuses] == [
        ("failed", "diffrisk", SHA)
    ]
    assert fake.statuses[0]["pipeline_id"] == 3141
    # the labels were read from the merge request's project
    assert fake.of("GET", rf"^/projects/{PROJECT}/merge_requests/{IID}$")


def test_gate_override_label_accepts_and_names_who(fake: FakeGitLab, tmp_path: Path) -> None:
    mr = fake.mrs[IID]
    mr.labels = ["backend", "diffrisk:accepted"]
    mr.label_events = [
        ("add", "diffrisk:accepted", "ivan", "2024-05-01T10:00:00.000Z"),
        ("remove", "diffrisk:accepted", "ivan", "2024-05-01T11:00:00.000Z"),
        ("add", "diffrisk:accepted", "maria", "2024-05-01T12:00:00.000Z"),
    ]
    score = write_result(tmp_path, result())
    res = run_cli(gate_args(tmp_path, score), ci_env(fake))
    assert res.exit_code == 0, res.output
    assert "risk accepted by @maria (label)" in res.output
    assert "risk accepted by **@maria** (label)" in fake.ours()[0]["body"]
    assert fake.statuses[0]["state"] == "success"


def test_gate_approval_counts_only_for_the_head_it_was_given_on(
    fake: FakeGitLab, tmp_path: Path
) -> None:
    (tmp_path / ".diffrisk.toml").write_text('[gate]\napprovers = ["Lead"]\n')
    mr = fake.mrs[IID]
    mr.approved_by = ["lead"]
    mr.versions = [(OLD_SHA, "2024-05-01T09:00:00Z"), (SHA, "2024-05-01T12:00:00Z")]
    fake.add_note(IID, "approved this merge request", "lead", system=True,
                  created_at="2024-05-01T10:00:00.000Z")  # fmt: skip
    score = write_result(tmp_path, result())
    res = run_cli(gate_args(tmp_path, score), ci_env(fake))
    assert res.exit_code == 1, res.output  # approved before the last push
    assert f"@lead's approval was given on {OLD_SHA[:12]}" in res.output
    fake.add_note(IID, "approved this merge request", "lead", system=True,
                  created_at="2024-05-01T12:30:00.000Z")  # fmt: skip
    res = run_cli(gate_args(tmp_path, score), ci_env(fake))
    assert res.exit_code == 0, res.output
    assert "risk accepted by @lead (approval)" in res.output


def test_gate_without_the_approvals_api_still_applies_the_label(
    fake: FakeGitLab, tmp_path: Path
) -> None:
    (tmp_path / ".diffrisk.toml").write_text('[gate]\napprovers = ["lead"]\n')
    fake.approvals_api = False
    score = write_result(tmp_path, result())
    res = run_cli(gate_args(tmp_path, score), ci_env(fake))
    assert res.exit_code == 1, res.output
    assert "approvals were not read, so none accepts the risk" in res.output
    fake.mrs[IID].labels = ["diffrisk:accepted"]
    res = run_cli(gate_args(tmp_path, score), ci_env(fake))
    assert res.exit_code == 0, res.output


def test_gate_on_a_fork_mr_warns_and_still_decides(fake: FakeGitLab, tmp_path: Path) -> None:
    fake.read_only.add(PROJECT)
    env = ci_env(fake, CI_MERGE_REQUEST_SOURCE_PROJECT_ID=FORK)
    res = run_cli(gate_args(tmp_path, write_result(tmp_path, result())), env)
    assert res.exit_code == 1, res.output
    assert "merge blocked" in res.output
    warnings = [line for line in res.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2  # the note (why, and what to do), the status (short)
    assert "comes from a fork" in warnings[0] and "Run pipelines in the parent" in warnings[0]
    assert warnings[1] == (
        "warning: the commit status was not set: this merge request comes from a fork and "
        "the token may not write to it (403); the exit code carries the decision"
    )
    assert not fake.ours() and not fake.statuses
    low = write_result(tmp_path, result(0.05, "low"))
    res = run_cli(gate_args(tmp_path, low), env)
    assert res.exit_code == 0, res.output


def test_gate_with_only_ci_job_token_decides_and_says_why_nothing_was_posted(
    fake: FakeGitLab, tmp_path: Path
) -> None:
    env = ci_env(fake, GITLAB_TOKEN="")
    res = run_cli(gate_args(tmp_path, write_result(tmp_path, result())), env)
    assert res.exit_code == 1, res.output
    assert "CI_JOB_TOKEN is not enough" in res.output
    assert fake.requests == []


def test_gate_judges_the_mr_by_its_base_settings(
    builder: Any, tmp_path: Path, fake: FakeGitLab
) -> None:
    base = builder.commit(
        {"a.py": "x = 1\n", ".diffrisk.toml": '[gate]\nfail_on = "medium"\n'}, day=0
    )
    builder.branch("mr", base)
    builder.checkout("mr")
    head = builder.commit(
        {"a.py": "x = 2\n", ".diffrisk.toml": '[gate]\nfail_on = "never"\n'}, author="zed", day=1
    )
    r = result(0.5, "medium")
    r.base, r.head = base, head
    score = write_result(tmp_path, r)
    env = ci_env(fake, CI_COMMIT_SHA=head, CI_MERGE_REQUEST_DIFF_BASE_SHA=base)
    args = ["gate", "--repo", str(builder.path), "--data-dir", str(tmp_path / "d")]
    res = run_cli([*args, "--score-file", str(score)], env)  # --host auto: GitLab CI
    assert res.exit_code == 1, res.output
    assert "merge blocked" in res.output
    assert fake.statuses[0]["sha"] == head and fake.statuses[0]["state"] == "failed"


def test_deploy_gate_finds_the_last_successful_deployment(fake: FakeGitLab) -> None:
    fake.deployments = [
        {"id": 1, "sha": OLD_SHA, "status": "success", "environment": {"name": "production"}},
        {"id": 2, "sha": SHA, "status": "failed", "environment": {"name": "production"}},
        {"id": 3, "sha": "c" * 40, "status": "success", "environment": {"name": "staging"}},
    ]
    with client(fake) as gl:
        assert gl.last_successful_deployment("production") == OLD_SHA
        assert gl.last_successful_deployment("qa") is None


# ---------------------------------------------------------------------- secrets
def test_token_never_appears_in_output_or_logs(
    fake: FakeGitLab, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.fail("POST", r"/notes$", 500, {"message": f"echo {TOKEN}"}, times=5)
    score = write_result(tmp_path, result())
    res = run_cli(gate_args(tmp_path, score), ci_env(fake, DIFFRISK_GITLAB_RETRIES="0"))
    assert res.exit_code == 1, res.output
    assert "warning: the gate's decision was not added to the merge request note" in res.output
    logging.getLogger("elsewhere").warning("the token is %s", TOKEN)
    assert TOKEN not in res.output
    assert TOKEN not in caplog.text
    assert "***" in res.output  # GitLab echoed it back: redacted


def test_gate_scoring_the_mr_reads_its_title_and_description(
    builder: Any, tmp_path: Path, fake: FakeGitLab
) -> None:
    # no --score-file: the gate scores base...head itself, with the merge request's
    # title and description as a GitHub pull request's (fix keywords, issue references)
    base = builder.commit({"a.py": "x = 1\n"}, day=0)
    builder.branch("mr", base)
    builder.checkout("mr")
    head = builder.commit({"a.py": "x = 2\n"}, author="zed", day=1, message="tweak a")
    data = tmp_path / "d"
    mined = run_cli(["mine", "--repo", str(builder.path), "--data-dir", str(data), "--quiet"], {})
    assert mined.exit_code == 0, mined.output
    args = ["gate", "--repo", str(builder.path), "--data-dir", str(data), "--fail-on", "never"]
    env = ci_env(fake, CI_COMMIT_SHA=head, CI_MERGE_REQUEST_DIFF_BASE_SHA=base)

    def logged_features() -> dict[str, Any]:  # the gate logs what it scored
        import pandas as pd

        log = pd.read_parquet(data / "predictions.parquet")
        row = log[log["head_sha"] == head].iloc[-1]
        assert row["pr"] == IID  # the merge request it scored, by its IID
        return json.loads(row["features"])

    plain = run_cli(args, env)
    assert plain.exit_code == 0, plain.output
    assert logged_features()["fix"] == 0 and logged_features()["issue_refs"] == []
    env["CI_MERGE_REQUEST_TITLE"] = "Fix the crash on empty input"
    env["CI_MERGE_REQUEST_DESCRIPTION"] = "Closes #12"
    titled = run_cli(args, env)
    assert titled.exit_code == 0, titled.output
    assert logged_features()["fix"] == 1 and logged_features()["issue_refs"] == [12]
