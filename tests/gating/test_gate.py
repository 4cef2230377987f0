"""Gate decisions: every level x fail_on x warn_on x override, and deployment aggregation.

Expected values were worked out by hand from the rules in ``diffrisk.gating.decide``'s docstring.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from diffrisk.gating.decide import (
    LabelEvent,
    Override,
    Review,
    ShippedChange,
    decide,
    decide_deploy,
    find_override,
    stale_approvals,
)
from diffrisk.levels import at_least

# level, fail_on, warn_on -> outcome with no override, with the label, with an approver
CASES = [
    ("low", "high", "high", "pass", "pass", "pass"),
    ("low", "high", "medium", "pass", "pass", "pass"),
    ("low", "high", "never", "pass", "pass", "pass"),
    ("low", "medium", "high", "pass", "pass", "pass"),
    ("low", "medium", "medium", "pass", "pass", "pass"),
    ("low", "medium", "never", "pass", "pass", "pass"),
    ("low", "never", "high", "pass", "pass", "pass"),
    ("low", "never", "medium", "pass", "pass", "pass"),
    ("low", "never", "never", "pass", "pass", "pass"),
    ("medium", "high", "high", "pass", "pass", "pass"),
    ("medium", "high", "medium", "warn", "warn", "warn"),
    ("medium", "high", "never", "pass", "pass", "pass"),
    ("medium", "medium", "high", "fail", "accepted", "accepted"),
    ("medium", "medium", "medium", "fail", "accepted", "accepted"),
    ("medium", "medium", "never", "fail", "accepted", "accepted"),
    ("medium", "never", "high", "pass", "pass", "pass"),
    ("medium", "never", "medium", "warn", "warn", "warn"),
    ("medium", "never", "never", "pass", "pass", "pass"),
    ("high", "high", "high", "fail", "accepted", "accepted"),
    ("high", "high", "medium", "fail", "accepted", "accepted"),
    ("high", "high", "never", "fail", "accepted", "accepted"),
    ("high", "medium", "high", "fail", "accepted", "accepted"),
    ("high", "medium", "medium", "fail", "accepted", "accepted"),
    ("high", "medium", "never", "fail", "accepted", "accepted"),
    ("high", "never", "high", "warn", "warn", "warn"),
    ("high", "never", "medium", "warn", "warn", "warn"),
    ("high", "never", "never", "pass", "pass", "pass"),
]

OVERRIDES = {
    "none": None,
    "label": Override("label", "carol", "diffrisk:accepted"),
    "approver": Override("approval", "dave", "abc123"),
}
EXIT = {"pass": 0, "warn": 0, "accepted": 0, "fail": 1}
CONCLUSION = {"pass": "success", "warn": "neutral", "accepted": "neutral", "fail": "failure"}


def _params():
    for level, fail_on, warn_on, none, label, approver in CASES:
        for kind, expected in (("none", none), ("label", label), ("approver", approver)):
            yield pytest.param(
                level,
                fail_on,
                warn_on,
                kind,
                expected,
                id=f"{level}-fail_{fail_on}-warn_{warn_on}-{kind}",
            )


def test_table_covers_every_combination():
    combos = {(lv, f, w) for lv, f, w, *_ in CASES}
    assert len(combos) == len(CASES) == 3 * 3 * 3


@pytest.mark.parametrize(("level", "fail_on", "warn_on", "override", "expected"), list(_params()))
def test_merge_gate_decision(level, fail_on, warn_on, override, expected):
    ov = OVERRIDES[override]
    d = decide(level, fail_on=fail_on, warn_on=warn_on, override=ov, probability=0.5)
    assert d.outcome == expected
    assert d.exit_code == EXIT[expected]
    assert d.conclusion == CONCLUSION[expected]
    if expected == "accepted":
        assert d.accepted_by == ov
        who = "@carol" if override == "label" else "@dave"
        assert who in d.message
        assert d.blocked
    else:
        assert d.accepted_by is None
    if expected == "fail":
        assert "blocked" in d.message and d.blocked
    assert d.to_dict()["outcome"] == expected


def test_at_least_rejects_unknown_values():
    assert (
        at_least("high", "medium")
        and not at_least("low", "medium")
        and not at_least("high", "never")
    )
    with pytest.raises(ValueError):
        at_least("critical", "high")
    with pytest.raises(ValueError):
        at_least("high", "low-ish")


def _t(day: int) -> datetime:
    return datetime(2024, 1, day, tzinfo=timezone.utc)


def test_override_label_credits_last_person_who_added_it():
    events = [
        LabelEvent("labeled", "diffrisk:accepted", "erin", _t(1)),
        LabelEvent("unlabeled", "diffrisk:accepted", "erin", _t(2)),
        LabelEvent("labeled", "bug", "zed", _t(3)),
        LabelEvent("labeled", "Diffrisk:Accepted", "frank", _t(4)),
    ]
    ov = find_override(
        ["bug", "diffrisk:accepted"],
        [],
        override_label="diffrisk:accepted",
        approvers=[],
        label_events=events,
    )
    assert ov == Override("label", "frank", "diffrisk:accepted")
    assert ov.describe() == "@frank added the label `diffrisk:accepted`"


def test_override_label_absent_means_no_override():
    assert (
        find_override(["bug"], [], override_label="diffrisk:accepted", approvers=["dave"]) is None
    )


def test_approval_counts_only_for_listed_approvers_and_latest_review():
    reviews = [
        Review("Dave", "APPROVED", _t(1), "c1"),
        Review("dave", "CHANGES_REQUESTED", _t(2), "c2"),
        Review("mallory", "APPROVED", _t(3), "c2"),  # not an approver
        Review("gina", "APPROVED", _t(3), "c2"),
        Review("gina", "COMMENTED", _t(4), "c2"),  # a comment does not withdraw it
    ]
    assert find_override([], reviews, override_label="x", approvers=["dave"]) is None
    assert find_override([], reviews, override_label="x", approvers=["@Gina", "dave"]) == Override(
        "approval", "gina", "c2"
    )
    later = [*reviews, Review("dave", "APPROVED", _t(5), "c3")]
    assert find_override([], later, override_label="x", approvers=["dave"]) == Override(
        "approval", "dave", "c3"
    )
    dismissed = [Review("gina", "APPROVED", _t(1)), Review("gina", "DISMISSED", _t(2))]
    assert find_override([], dismissed, override_label="x", approvers=["gina"]) is None
    assert find_override([], reviews, override_label="x", approvers=[]) is None


def _changes(*ps: float) -> list[ShippedChange]:
    return [ShippedChange(f"{i:040x}", f"change {i}", p) for i, p in enumerate(ps, 1)]


@pytest.mark.parametrize(
    ("probs", "max_risk", "max_expected", "outcome", "expected", "riskiest", "n_reasons"),
    [
        ((), 0.8, 3.0, "pass", 0.0, None, 0),
        ((0.2, 0.3, 0.1), 0.8, 3.0, "pass", 0.6, 2, 0),
        ((0.85, 0.1), 0.8, 3.0, "fail", 0.95, 1, 1),  # one very risky change
        ((0.8,), 0.8, 3.0, "fail", 0.8, 1, 1),  # "at or above"
        ((0.79,), 0.8, 3.0, "pass", 0.79, 1, 0),
        ((0.5,) * 6, 0.8, 3.0, "fail", 3.0, 1, 1),  # many moderate changes add up
        ((0.5,) * 5, 0.8, 3.0, "pass", 2.5, 1, 0),
        ((0.9,) * 4, 0.8, 3.0, "fail", 3.6, 1, 2),  # both rules
        ((0.25, 0.25), 1.0, 0.5, "fail", 0.5, 1, 1),
        ((0.1, 0.2), 1.0, 0.3, "fail", 0.3, 2, 1),  # float sum 0.30000000000000004 rounds to 0.3
    ],
)
def test_deploy_aggregation(probs, max_risk, max_expected, outcome, expected, riskiest, n_reasons):
    ch = _changes(*probs)
    d = decide_deploy(ch, max_risk=max_risk, max_expected=max_expected)
    assert d.outcome == outcome
    assert d.exit_code == (1 if outcome == "fail" else 0)
    assert d.expected_defects == pytest.approx(expected)
    assert (d.riskiest is None) if riskiest is None else (d.riskiest == ch[riskiest - 1])
    assert len(d.reasons) == n_reasons
    assert d.to_dict()["outcome"] == outcome


@pytest.mark.parametrize(
    ("probs", "typical", "limit", "outcome"),
    [
        # 120 typical changes at 0.1 each: expected 12 < 2 x 120 x 0.1 = 24 -> ships
        ((0.1,) * 120, 0.1, 24.0, "pass"),
        # the same release, twice as risky per change as the past year: blocked
        ((0.2,) * 120, 0.1, 24.0, "fail"),
        ((0.21,) * 120, 0.1, 24.0, "fail"),
        ((0.19,) * 120, 0.1, 24.0, "pass"),
        # a small release: the limit never drops below 1 (2 x 3 x 0.1 = 0.6)
        ((0.3, 0.3, 0.3), 0.1, 1.0, "pass"),
        ((0.4, 0.3, 0.3), 0.1, 1.0, "fail"),
        # typical risk unknown (no past-year commits): the fixed limit 3
        ((0.5,) * 6, None, 3.0, "fail"),
        ((0.5,) * 5, None, 3.0, "pass"),
    ],
)
def test_deploy_limit_scales_with_the_release(probs, typical, limit, outcome):
    d = decide_deploy(
        _changes(*probs), max_risk=1.0, max_expected=None, typical_probability=typical
    )
    assert d.max_expected == pytest.approx(limit)
    assert d.outcome == outcome
    if outcome == "fail":
        assert "typical" in d.reasons[0] or "default" in d.reasons[0]
    # an explicit limit wins over the typical risk
    fixed = decide_deploy(
        _changes(*probs), max_risk=1.0, max_expected=1000.0, typical_probability=typical
    )
    assert fixed.max_expected == 1000.0 and fixed.outcome == "pass"


def test_deploy_factor_sets_how_much_riskier_a_release_may_be():
    # 120 changes at 0.15 against a typical 0.1: expected 18, limit 2 x 12 = 24 passes,
    # 1.5 x 12 = 18 blocks
    probs = (0.15,) * 120
    lenient = decide_deploy(
        _changes(*probs), max_risk=1.0, max_expected=None, typical_probability=0.1
    )
    strict = decide_deploy(
        _changes(*probs),
        max_risk=1.0,
        max_expected=None,
        typical_probability=0.1,
        expected_factor=1.5,
    )
    assert (lenient.outcome, lenient.max_expected) == ("pass", pytest.approx(24.0))
    assert (strict.outcome, strict.max_expected) == ("fail", pytest.approx(18.0))
    assert "1.5x the 12.00" in strict.reasons[0]


def test_deploy_summary_says_how_many_changes_it_leaves_out():
    from diffrisk.gating.deploy import DEPLOY_ROWS, deploy_summary

    changes = [ShippedChange(f"{i:040x}", f"change {i}", i / 100) for i in range(DEPLOY_ROWS + 5)]
    text = deploy_summary(decide_deploy(changes, max_expected=100.0), "a" * 40, "b" * 40)
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == DEPLOY_ROWS and "| 24% | change 24 |" in rows[0]
    assert "... and 5 less risky change(s) (all in `--json`)" in text
    few = deploy_summary(decide_deploy(changes[:3], max_expected=100.0), "a" * 40, "b" * 40)
    assert "less risky" not in few and "Warning" not in few
    # warnings (a rollback, a diverged base) reach the job summary and the check too
    warned = deploy_summary(decide_deploy([], max_expected=1.0), "v2", "v1", ["rolls back"])
    assert "> **Warning:** rolls back" in warned


def test_deploy_rejects_probability_out_of_range():
    with pytest.raises(ValueError):
        decide_deploy(_changes(1.2))


# --------------------------------------------------------------------------- the CLI, against a
# local HTTP server answering like the GitHub REST API (PyGithub talks to it for real).

import json  # noqa: E402

from click.testing import CliRunner  # noqa: E402
from pytest_httpserver import HTTPServer  # noqa: E402

from diffrisk.cli import cli  # noqa: E402

HEAD = "c" * 40
BASE = "b" * 40


def _score_file(tmp_path, level: str, probability: float, commits=()) -> str:
    """A real ScoreResult (the score stage's contract type), saved as `diffrisk score --json` does."""
    from diffrisk.scoring.result import CommitRisk, ScoreResult

    res = ScoreResult(
        repo="r",
        base=BASE,
        head=HEAD,
        probability=probability,
        level=level,
        percentile=None,
        model_version="m1",
        model_source="bundled",
        model_metrics={},
        features={"la": 10},
        commits=[CommitRisk(sha, subj, pr, "") for sha, subj, pr in commits],
        thresholds={"medium": 0.4, "high": 0.7},
    )
    p = tmp_path / f"score-{level}.json"
    p.write_text(json.dumps(res.to_dict()))
    return str(p)


def _serve_pr(server: HTTPServer, labels=(), reviews=(), events=(), check_status=201):
    api = server.url_for("").rstrip("/")
    server.expect_request("/repos/o/r/pulls/7").respond_with_json(
        {
            "number": 7,
            "url": f"{api}/repos/o/r/pulls/7",
            "issue_url": f"{api}/repos/o/r/issues/7",
            "state": "open",
            "labels": [{"name": n, "color": "ffffff"} for n in labels],
            "head": {"sha": HEAD, "ref": "feature"},
            "base": {"sha": BASE, "ref": "main"},
        }
    )
    server.expect_request("/repos/o/r/pulls/7/reviews").respond_with_json(
        [
            {
                "id": i,
                "user": {"login": rv[0]},
                "state": rv[1],
                "submitted_at": rv[2],
                "commit_id": rv[3] if len(rv) > 3 else HEAD,
            }
            for i, rv in enumerate(reviews, 1)
        ]
    )
    server.expect_request("/repos/o/r/issues/7/events").respond_with_json(
        [
            {
                "id": i,
                "event": e,
                "actor": {"login": a},
                "label": {"name": lb, "color": "fff"},
                "created_at": t,
            }
            for i, (e, lb, a, t) in enumerate(events, 1)
        ]
    )
    # The report step's sticky comment, which the gate edits to add its decision.
    server.expect_request("/user").respond_with_json(
        {"message": "Resource not accessible by integration"}, status=403
    )
    comment = {
        "id": 1,
        "body": '<!-- diffrisk:comment check="diffrisk" -->\nreport',
        "user": {"login": "github-actions[bot]"},
        "url": f"{api}/repos/o/r/issues/comments/1",
        "html_url": "https://github.com/o/r/pull/7#issuecomment-1",
        "created_at": "2024-01-03T00:00:00Z",
    }
    server.expect_request("/repos/o/r/issues/7/comments", method="GET").respond_with_json([comment])
    patch_status = 200 if check_status == 201 else check_status
    server.expect_request("/repos/o/r/issues/comments/1", method="PATCH").respond_with_json(
        comment if patch_status == 200 else {"message": "Resource not accessible by integration"},
        status=patch_status,
    )
    if check_status == 201:
        server.expect_request("/repos/o/r/check-runs", method="POST").respond_with_json(
            {"id": 99, "name": "diffrisk gate", "status": "completed"}, status=201
        )
    else:
        for path in ("/repos/o/r/check-runs", f"/repos/o/r/statuses/{HEAD}"):
            server.expect_request(path, method="POST").respond_with_json(
                {"message": "Resource not accessible by integration"}, status=check_status
            )
    return api


def _run(args, api, tmp_path, event=None, extra_env=None):
    out = tmp_path / "gh_output"
    summary = tmp_path / "gh_summary"
    out.write_text("")
    summary.write_text("")
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_TOKEN": "ghs_testtoken123",
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_API_URL": api,
        "GITHUB_OUTPUT": str(out),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_EVENT_PATH": "",
        **(extra_env or {}),
    }
    if event is not None:
        ev = tmp_path / "event.json"
        ev.write_text(json.dumps(event))
        env["GITHUB_EVENT_PATH"] = str(ev)
    repo = tmp_path / "cfgrepo"
    repo.mkdir(exist_ok=True)
    res = CliRunner().invoke(
        cli, ["gate", "--repo", str(repo), *args], env=env, catch_exceptions=False
    )
    return res, out.read_text(), summary.read_text()


def _comment_edits(server: HTTPServer) -> list[str]:
    return [json.loads(req.get_data())["body"] for req, _ in server.log if req.method == "PATCH"]


def _check_posts(server: HTTPServer) -> list[dict]:
    return [json.loads(req.get_data()) for req, _ in server.log if req.path.endswith("/check-runs")]


PR_EVENT = {
    "action": "synchronize",
    "number": 7,
    "pull_request": {"number": 7, "base": {"sha": BASE}, "head": {"sha": HEAD}},
}


def test_cli_high_risk_blocks_and_posts_failed_check(tmp_path, httpserver):
    api = _serve_pr(httpserver, labels=["bug"])
    res, out, summary = _run(
        ["--score-file", _score_file(tmp_path, "high", 0.83)], api, tmp_path, PR_EVENT
    )
    assert res.exit_code == 1, res.output
    assert "merge blocked" in res.output and "hint:" in res.output
    assert "gate-outcome<<" in out and "\nfail\n" in out
    assert "diffrisk gate: fail" in summary
    posts = _check_posts(httpserver)
    assert len(posts) == 1 and posts[0]["conclusion"] == "failure" and posts[0]["head_sha"] == HEAD
    assert "ghs_testtoken123" not in res.output.replace("::add-mask::ghs_testtoken123", "")


def test_cli_override_label_accepts_and_names_who(tmp_path, httpserver):
    api = _serve_pr(
        httpserver,
        labels=["diffrisk:accepted"],
        events=[("labeled", "diffrisk:accepted", "carol", "2024-01-03T00:00:00Z")],
    )
    res, out, summary = _run(
        ["--score-file", _score_file(tmp_path, "high", 0.9)], api, tmp_path, PR_EVENT
    )
    assert res.exit_code == 0, res.output
    assert "@carol" in summary and "accepted" in summary
    assert "\naccepted\n" in out
    assert _check_posts(httpserver)[0]["conclusion"] == "neutral"
    edits = _comment_edits(httpserver)
    assert len(edits) == 1 and edits[0].startswith('<!-- diffrisk:comment check="diffrisk" -->')
    assert "risk accepted by **@carol**" in edits[0]


def test_cli_approver_review_accepts(tmp_path, httpserver):
    (tmp_path / "cfgrepo").mkdir()
    (tmp_path / "cfgrepo" / ".diffrisk.toml").write_text(
        '[gate]\napprovers = ["dave"]\nfail-on = "medium"\n'
    )
    api = _serve_pr(httpserver, reviews=[("dave", "APPROVED", "2024-01-02T00:00:00Z")])
    res, _, _ = _run(
        ["--score-file", _score_file(tmp_path, "medium", 0.5), "--json"], api, tmp_path, PR_EVENT
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.output[res.output.index("{") :])
    assert data["outcome"] == "accepted" and data["accepted_by"]["by"] == "dave"
    assert data["fail_on"] == "medium"


def test_cli_approval_of_an_older_commit_does_not_accept_later_pushes(tmp_path, httpserver):
    (tmp_path / "cfgrepo").mkdir()
    (tmp_path / "cfgrepo" / ".diffrisk.toml").write_text(
        '[gate]\napprovers = ["dave"]\nfail-on = "medium"\n'
    )
    older = "e" * 40
    api = _serve_pr(httpserver, reviews=[("dave", "APPROVED", "2024-01-02T00:00:00Z", older)])
    res, out, _ = _run(
        ["--score-file", _score_file(tmp_path, "medium", 0.5)], api, tmp_path, PR_EVENT
    )
    assert res.exit_code == 1, res.output
    assert "\nfail\n" in out
    assert f"given on {older[:12]}, not on the head {HEAD[:12]}" in res.output


def test_stale_approvals_are_the_latest_approvals_of_other_commits():
    reviews = [
        Review("dave", "APPROVED", _t(1), "old"),
        Review("gina", "APPROVED", _t(1), "old"),
        Review("gina", "APPROVED", _t(2), "head"),
        Review("ed", "APPROVED", _t(1), "old"),
        Review("ed", "CHANGES_REQUESTED", _t(2), "head"),
    ]
    assert [r.user for r in stale_approvals(reviews, ["dave", "gina", "ed"], "head")] == ["dave"]
    found = find_override([], reviews, override_label="x", approvers=["dave"], head_sha="head")
    assert found is None
    found = find_override([], reviews, override_label="x", approvers=["gina"], head_sha="HEAD")
    assert found == Override("approval", "gina", "head")


def test_cli_github_failure_reading_the_pr_decides_without_override(tmp_path, httpserver):
    api = httpserver.url_for("").rstrip("/")
    httpserver.expect_request("/repos/o/r/pulls/7").respond_with_json(
        {"message": "Server Error"}, status=502
    )
    res, out, _ = _run(
        ["--score-file", _score_file(tmp_path, "high", 0.9), "--no-check"],
        api,
        tmp_path,
        PR_EVENT,
        extra_env={"DIFFRISK_GITHUB_RETRIES": "0"},
    )
    assert res.exit_code == 1, res.output
    assert "no override was read, so none applies" in res.output and "\nfail\n" in out


def test_cli_fork_token_cannot_write_check_still_decides(tmp_path, httpserver):
    api = _serve_pr(httpserver, check_status=403)
    res, out, _ = _run(
        ["--score-file", _score_file(tmp_path, "medium", 0.5)], api, tmp_path, PR_EVENT
    )
    assert res.exit_code == 0, res.output
    assert "checks: write" in res.output and "\nwarn\n" in out


def test_cli_low_risk_passes_without_github(tmp_path):
    res, out, _ = _run(
        ["--score-file", _score_file(tmp_path, "low", 0.1), "--no-check"],
        "http://127.0.0.1:9",
        tmp_path,
        extra_env={"GITHUB_REPOSITORY": ""},
    )
    assert res.exit_code == 0, res.output
    assert "\npass\n" in out


def test_cli_bad_score_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    res, _, _ = _run(["--score-file", str(bad), "--no-check"], "http://127.0.0.1:9", tmp_path)
    assert res.exit_code == 2
    assert "error: cannot read the score result" in res.output and "hint:" in res.output


def test_cli_deploy_aggregates_score_file(tmp_path):
    commits = [("1" * 40, "small fix (#12)", 0.2), ("2" * 40, "big refactor", 0.85)]
    args = [
        "--deploy",
        "--base",
        BASE,
        "--score-file",
        _score_file(tmp_path, "high", 0.9, commits),
        "--no-check",
    ]
    # by default no single change blocks: expected 1.05 < the fixed limit 3 (no typical risk)
    res, _, summary = _run(args, "http://127.0.0.1:9", tmp_path)
    assert res.exit_code == 0, res.output
    assert "deployment allowed" in res.output and "1.05" in res.output
    assert "| `222222222222` | 85% | big refactor |" in summary
    assert "riskiest change >=" not in summary
    # the log gets the Markdown rendered as text, with issue numbers that can be copied;
    # the job summary keeps GitHub from linking them
    assert "###" not in res.output and "small fix (#12)" in res.output
    assert "\u200b" not in res.output and "#\u200b12" in summary
    # with a limit on one change, the 85% change blocks the deployment
    (tmp_path / "cfgrepo").mkdir(exist_ok=True)
    (tmp_path / "cfgrepo" / ".diffrisk.toml").write_text("[gate]\ndeploy-max-risk = 0.8\n")
    res, _, summary = _run(args, "http://127.0.0.1:9", tmp_path)
    assert res.exit_code == 1, res.output
    assert "deployment blocked" in res.output and "deploy_max_risk 0.80" in res.output
    assert "riskiest change >= 0.80" in summary


def test_cli_deploy_without_base_is_a_clear_error(tmp_path):
    res, _, _ = _run(["--deploy", "--no-check"], "http://127.0.0.1:9", tmp_path)
    assert res.exit_code == 2 and "--tag-pattern or --environment" in res.output


def test_last_successful_deployment_from_api(httpserver):
    from diffrisk.gating.deploy import last_successful_deployment
    from diffrisk.gating.publish import client as _client

    api = httpserver.url_for("").rstrip("/")
    deps = [
        {
            "id": 3,
            "sha": "3" * 40,
            "environment": "production",
            "url": f"{api}/repos/o/r/deployments/3",
        },
        {
            "id": 2,
            "sha": "2" * 40,
            "environment": "production",
            "url": f"{api}/repos/o/r/deployments/2",
        },
        {
            "id": 1,
            "sha": "1" * 40,
            "environment": "production",
            "url": f"{api}/repos/o/r/deployments/1",
        },
    ]
    httpserver.expect_request(
        "/repos/o/r/deployments", query_string={"environment": "production", "per_page": "100"}
    ).respond_with_json(deps)
    # newest: in progress; next: failed after an earlier success (latest status counts); oldest: success
    httpserver.expect_request("/repos/o/r/deployments/3/statuses").respond_with_json(
        [{"id": 30, "state": "in_progress"}]
    )
    httpserver.expect_request("/repos/o/r/deployments/2/statuses").respond_with_json(
        [{"id": 21, "state": "failure"}, {"id": 20, "state": "success"}]
    )
    httpserver.expect_request("/repos/o/r/deployments/1/statuses").respond_with_json(
        [{"id": 10, "state": "success"}]
    )
    assert (
        last_successful_deployment(_client("o/r", "t", api, retries=0, backoff=0), "production")
        == "1" * 40
    )


def test_tag_base_is_newest_matching_tag_reachable_from_head(builder):
    from diffrisk.git.revisions import newest_tag as _tag_base

    c1 = builder.commit({"a.py": "a\n"}, day=0)
    builder.run("tag", "deploy-1", c1)
    c2 = builder.commit({"a.py": "b\n"}, day=1)
    builder.run("tag", "-a", "-m", "d2", "deploy-2", c2)
    builder.run("tag", "other-3", c2)
    builder.commit({"a.py": "c\n"}, day=2)
    builder.branch("side", c1)
    builder.checkout("side")
    c4 = builder.commit({"b.py": "x\n"}, day=3)
    builder.run("tag", "deploy-9", c4)  # not reachable from main
    builder.checkout("main")
    assert _tag_base(str(builder.path), "main", "deploy-*") == "deploy-2"
    assert _tag_base(str(builder.path), "main", "nomatch-*") is None


# --------------------------------------------------------------------------- deployment gate,
# scoring for real: a built repository, mined, with a model in its registry.


@pytest.fixture(scope="module")
def deploy_repo(tmp_path_factory):
    import sys as _sys
    from pathlib import Path as _Path

    _sys.path.insert(0, str(_Path(__file__).resolve().parents[2] / "scripts"))
    from diffrisk.config import MineConfig
    from diffrisk.mining.mine import mine
    from repobuilder import RepoBuilder
    from test_actions import _install_model

    root = tmp_path_factory.mktemp("deploy")
    b = RepoBuilder(root / "repo")
    for day in range(8):
        b.commit(
            {f"p{day % 3}/m.py": "".join(f"v{i} = {i}\n" for i in range(10 + day))},
            author="ann",
            day=day,
        )
    b.run("tag", "deploy-1")
    deployed = b.head()
    b.branch("feature", deployed)
    b.checkout("feature")
    b.commit(
        {"p0/m.py": "x = 1\n" * 50, "p1/new.py": "y = 2\n" * 80},
        author="zed",
        day=9,
        message="feature 1",
    )
    b.commit({"p2/m.py": "z = 3\n" * 30}, author="zed", day=10, message="feature 2")
    b.checkout("main")
    b.commit({"p1/m.py": "w = 4\n" * 5}, author="ann", day=11, message="hotfix")
    head = b.merge("feature", day=12)
    data = root / "data"
    mine(b.path, data, rev=head, config=MineConfig(code_metrics=False, workers=1))
    _install_model(data)
    return {"repo": b.path, "data": data, "deployed": deployed, "head": head}


#: Outside GitHub Actions, with no repository and no token.
NO_GITHUB = {
    "GITHUB_ACTIONS": "",
    "GITHUB_REPOSITORY": "",
    "GITHUB_TOKEN": "",
    "GITHUB_EVENT_PATH": "",
    "GITHUB_OUTPUT": "",
    "GITHUB_STEP_SUMMARY": "",
}


def _deploy(world, tmp_path, *args, config=""):
    cfgdir = tmp_path / "cfg.toml"
    cfgdir.write_text(config)
    env = NO_GITHUB
    return CliRunner().invoke(
        cli,
        [
            "gate",
            "--deploy",
            "--repo",
            str(world["repo"]),
            "--data-dir",
            str(world["data"]),
            "--config",
            str(cfgdir),
            "--json",
            *args,
        ],
        env=env,
        catch_exceptions=False,
    )


def test_deploy_gate_scores_every_shipped_change(deploy_repo, tmp_path):
    res = _deploy(
        deploy_repo,
        tmp_path,
        "--base",
        deploy_repo["deployed"],
        "--head",
        deploy_repo["head"],
        config="[gate]\ndeploy-max-risk = 1.0\ndeploy-max-expected = 100\n",
    )
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    # base..head holds three non-merge commits (feature 1, feature 2, hotfix) and one merge.
    assert sorted(c["subject"] for c in d["changes"]) == ["feature 1", "feature 2", "hotfix"]
    probs = [c["probability"] for c in d["changes"]]
    assert d["expected_defects"] == pytest.approx(sum(probs))
    assert d["riskiest"]["probability"] == max(probs)
    assert d["outcome"] == "pass"


def test_deploy_gate_says_what_a_rollback_or_a_diverged_base_drops(deploy_repo, tmp_path):
    cfg = "[gate]\ndeploy-max-risk = 1.0\ndeploy-max-expected = 100\n"
    head, deployed = deploy_repo["head"], deploy_repo["deployed"]
    # shipping the old release over the new one: nothing is scored, three commits go
    res = _deploy(deploy_repo, tmp_path, "--base", head, "--head", deployed, config=cfg)
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["changes"] == [] and d["outcome"] == "pass"
    assert d["warnings"] == [
        f"{deployed} is older than {head}: this deployment rolls back 3 commit(s) and ships "
        "nothing new (a rollback is not scored)"
    ]
    # main (with the hotfix) over the feature branch: the hotfix is scored, the two
    # feature commits that main lacks are dropped
    res = _deploy(deploy_repo, tmp_path, "--base", f"{head}^2", "--head", f"{head}^1", config=cfg)
    d = json.loads(res.output)
    assert [c["subject"] for c in d["changes"]] == ["hotfix"]
    assert d["warnings"] == [
        f"{head}^2 is not an ancestor of {head}^1: besides the changes scored here, this "
        f"deployment drops 2 commit(s) of {head}^2 that {head}^1 lacks (not scored)"
    ]
    # an ordinary release: no warning
    res = _deploy(deploy_repo, tmp_path, "--base", deployed, "--head", head, config=cfg)
    assert json.loads(res.output)["warnings"] == []


def test_deploy_gate_fails_when_the_batch_is_too_risky(deploy_repo, tmp_path):
    # Three changes with positive probabilities: the expected count is > 0 = deploy_max_expected.
    res = _deploy(
        deploy_repo,
        tmp_path,
        "--tag-pattern",
        "deploy-*",
        "--head",
        deploy_repo["head"],
        config="[gate]\ndeploy-max-risk = 1.0\ndeploy-max-expected = 0.0\n",
    )
    assert res.exit_code == 1, res.output
    d = json.loads(res.output[: res.output.rindex("}") + 1])
    assert d["outcome"] == "fail" and len(d["changes"]) == 3
    assert "deployment blocked" in res.output


def test_deploy_gate_base_from_last_successful_deployment(deploy_repo, tmp_path, httpserver):
    api = httpserver.url_for("").rstrip("/")
    httpserver.expect_request(
        "/repos/o/r/deployments", query_string={"environment": "production", "per_page": "100"}
    ).respond_with_json(
        [
            {
                "id": 1,
                "sha": deploy_repo["deployed"],
                "environment": "production",
                "url": f"{api}/repos/o/r/deployments/1",
            }
        ]
    )
    httpserver.expect_request("/repos/o/r/deployments/1/statuses").respond_with_json(
        [{"id": 1, "state": "success"}]
    )
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("[gate]\ndeploy-max-risk = 1.0\ndeploy-max-expected = 100\n")
    env = {
        "GITHUB_ACTIONS": "",
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_TOKEN": "t0ken",
        "GITHUB_API_URL": api,
        "GITHUB_EVENT_PATH": "",
        "GITHUB_OUTPUT": "",
        "GITHUB_STEP_SUMMARY": "",
    }
    res = CliRunner().invoke(
        cli,
        [
            "gate",
            "--deploy",
            "--environment",
            "production",
            "--head",
            deploy_repo["head"],
            "--no-check",
            "--json",
            "--repo",
            str(deploy_repo["repo"]),
            "--data-dir",
            str(deploy_repo["data"]),
            "--config",
            str(cfg),
        ],
        env=env,
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert len(d["changes"]) == 3 and d["outcome"] == "pass"


def test_deploy_summary_cuts_long_subjects_visibly_and_escapes_them() -> None:
    from diffrisk.gating.deploy import deploy_summary

    long = "Fix the parser so it trims leading and trailing whitespace | pipes *bold* (#3056) " * 2
    d = decide_deploy(
        [ShippedChange("a" * 40, long.strip(), 0.3), ShippedChange("b" * 40, "short", 0.1)]
    )
    text = deploy_summary(d, "c" * 40, "d" * 40)
    row = next(line for line in text.splitlines() if line.startswith("| `aaaaaaaaaaaa`"))
    assert row.endswith("… |") and "&#124;" in row and "\\*bold\\*" in row
    assert row.count("|") == 4  # the pipe in the subject does not split the cell
    assert "| `bbbbbbbbbbbb` | 10% | short |" in text


def test_deploy_one_very_risky_change_blocks_only_when_deploy_max_risk_is_set():
    # 200 changes of typical risk 0.1 (expected 20 < limit 40), one of them at 0.99: a
    # large release nearly always holds such a change, so by default it ships
    probs = (0.1,) * 199 + (0.99,)
    d = decide_deploy(_changes(*probs), max_expected=None, typical_probability=0.1)
    assert d.outcome == "pass" and d.max_risk is None
    assert d.riskiest is not None and d.riskiest.probability == 0.99
    strict = decide_deploy(
        _changes(*probs), max_risk=0.9, max_expected=None, typical_probability=0.1
    )
    assert strict.outcome == "fail"
    sha = f"{200:040x}"[:12]
    assert strict.reasons == (f"change {sha} has risk 0.99 >= deploy_max_risk 0.90",)
    from diffrisk.config import Config

    assert Config().gate.deploy_max_risk is None


def test_deploy_gate_passes_an_empty_range(deploy_repo, tmp_path):
    head = deploy_repo["head"]
    res = _deploy(deploy_repo, tmp_path, "--base", head, "--head", head)
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["outcome"] == "pass" and d["changes"] == [] and "nothing to deploy" in d["message"]


def _merge_gate(world, data, *args):
    return CliRunner().invoke(
        cli,
        ["gate", "--repo", str(world["repo"]), "--data-dir", str(data), "--json", *args],
        env=NO_GITHUB,
        catch_exceptions=False,
    )


def test_merge_gate_logs_its_decision_and_passes_nothing_to_score(deploy_repo, tmp_path):
    import shutil

    from diffrisk.data.predlog import load_predictions

    data = tmp_path / "data"
    shutil.copytree(deploy_repo["data"], data)
    head = deploy_repo["head"]
    res = _merge_gate(
        deploy_repo, data, "--base", deploy_repo["deployed"], "--head", head, "--fail-on", "never"
    )
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    log = load_predictions(data)
    assert log["head_sha"].tolist() == [head]
    assert log["decision"].tolist() == [d["outcome"]] and log["source"].tolist() == ["gate"]
    # the same head again, nothing new to score: it passes and says why, logging nothing
    res = _merge_gate(deploy_repo, data, "--base", head, "--head", head)
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["outcome"] == "pass" and any("nothing to score" in w for w in d["warnings"])
    assert len(load_predictions(data)) == 1


def test_merge_gate_says_when_it_cannot_read_the_pull_request(tmp_path):
    res, _out, _ = _run(
        ["--score-file", _score_file(tmp_path, "high", 0.9), "--no-check", "--pr", "3", "--json"],
        "http://127.0.0.1:9",
        tmp_path,
        extra_env={"GITHUB_TOKEN": "", "GITHUB_ACTIONS": ""},
    )
    assert res.exit_code == 1
    d = json.loads(res.output[: res.output.rindex("}") + 1])
    assert d["outcome"] == "fail"
    assert any("no GitHub token" in w for w in d["warnings"])


@pytest.mark.parametrize("fmt", ["terminal", "json"])
def test_a_reader_that_goes_away_ends_the_command_like_a_unix_tool(tmp_path, fmt):
    # `diffrisk report | head`: the pipe's reader is gone before anything is written.
    # Exit status 141 (SIGPIPE's), never 1 (gate's "blocked") and never a traceback.
    score = _score_file(tmp_path, "high", 0.9)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "diffrisk",
                "report",
                "--input",
                score,
                "--no-publish",
                "--repo",
                str(tmp_path),
                "--format",
                fmt,
            ],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "GITHUB_ACTIONS": ""},
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 141, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr


def test_gate_messages_print_probabilities_as_the_report_does():
    # score's title says ">99%" for 0.997: the gate must not say "100%"
    assert decide("high", probability=0.997).message.startswith("high risk (>99%) is at or above")
    d = decide_deploy([ShippedChange("a" * 40, "s", 0.004)], max_expected=5.0)
    assert "riskiest aaaaaaaaaaaa (<1%)" in d.message


@pytest.mark.parametrize(
    ("level", "percentile", "probability", "budget", "min_p", "outcome", "reason"),
    [
        ("medium", 91.0, 0.3, 10.0, None, "fail", "budget"),  # among the riskiest 10 %
        ("medium", 89.0, 0.3, 10.0, None, "warn", None),
        ("low", 50.0, 0.55, None, 0.5, "fail", "probability"),
        ("low", 50.0, 0.45, None, 0.5, "pass", None),
        ("high", 99.0, 0.9, 10.0, 0.5, "fail", "level"),  # the level is named first
        ("medium", None, 0.3, 10.0, None, "warn", None),  # no rank known: no budget block
    ],
)
def test_budget_and_probability_gates(
    level, percentile, probability, budget, min_p, outcome, reason
):
    d = decide(
        level,
        probability=probability,
        percentile=percentile,
        fail_budget=budget,
        fail_probability=min_p,
    )
    assert d.outcome == outcome
    assert d.to_dict()["reason"] == reason
    if reason == "budget":
        assert "fail-budget=10%" in d.message and "riskier than 91%" in d.message
    if reason == "probability":
        assert "fail-probability=50%" in d.message


def test_cli_fail_budget(tmp_path, httpserver):
    from diffrisk.scoring.result import ScoreResult

    api = _serve_pr(httpserver)
    res_file = tmp_path / "s.json"
    r = ScoreResult(
        repo="r", base=BASE, head=HEAD, probability=0.2, level="medium", percentile=93.0,
        model_version="m1", model_source="bundled", model_metrics={}, features={"la": 10},
    )  # fmt: skip
    res_file.write_text(json.dumps(r.to_dict()))
    res, out, _ = _run(["--score-file", str(res_file), "--no-check"], api, tmp_path, PR_EVENT)
    assert res.exit_code == 0 and "\nwarn\n" in out
    res, out, _ = _run(
        ["--score-file", str(res_file), "--no-check", "--fail-budget", "10"],
        api,
        tmp_path,
        PR_EVENT,
    )
    assert res.exit_code == 1 and "\nfail\n" in out
