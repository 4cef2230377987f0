"""diffrisk score on a built repository whose riskier PR is known by construction.

History (days after 2020-01-01; every file is Python, lines are ``name_i = i``)::

    main:  ann builds core/ and a/..e/ (one directory per commit, so they never change
           together), fixes a/ twice and b/ once; bob works on b/ and c/, carl on a/.
           M = main at day 18.
    other: dave edits a/x.py (day 20)            -- never an ancestor of base
    main:  erin edits c/x.py (day 21) = base      -- after the merge base
    risky: zed, a newcomer, appends a function with three ifs and 22 lines to each of
           a/..e/x.py (day 23), then adds f/new.py (day 24)
    safe:  ann changes one line of core/stable.py (day 23)
    all:   merges everything; the dataset is mined from it, so it holds the PR commits,
           dave's and erin's too, and scoring must leave them out of the PR's history.

The model is a real calibrated logistic regression (diffrisk.training.train) fitted on synthetic
rows where risk grows with size and spread and falls with experience, saved and loaded
through the registry.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from diffrisk.cli import cli
from diffrisk.config import Config, MineConfig
from diffrisk.data.schema import KAMEI
from diffrisk.errors import DataError, GitHubError, RepositoryError
from diffrisk.hosts.github.events import pull_request_from_event
from diffrisk.levels import percentile_of
from diffrisk.mining.mine import mine
from diffrisk.model.registry import load_model
from diffrisk.scoring import explain
from diffrisk.scoring.score import score
from modelbuilder import install_model
from repobuilder import RepoBuilder, ts

DIRS = ["a", "b", "c", "d", "e"]
ZED_FUNC = [
    "def zed_check(x):",
    '    """Check x."""',
    "    # small values first",
    "    if x > 1:",
    "        return 1",
    "    if x > 2:",
    "        return 2",
    "    if x > 3:",
    "        return 3",
    "    return 0",
]
# (day, author, subject, {path: ("add", n) | ("append", n) | ("edit", line_no)})
MAIN = [
    (1, "ann", "add core", {"core/stable.py": ("add", 10)}),
    (2, "ann", "add a", {"a/x.py": ("add", 20)}),
    (3, "ann", "add b", {"b/x.py": ("add", 20)}),
    (4, "ann", "add c", {"c/x.py": ("add", 20)}),
    (5, "ann", "add d", {"d/x.py": ("add", 20)}),
    (6, "ann", "add e", {"e/x.py": ("add", 20)}),
    (7, "ann", "extend a", {"a/x.py": ("append", 5)}),
    (8, "ann", "fix crash in a", {"a/x.py": ("edit", 2)}),
    (9, "ann", "extend b", {"b/x.py": ("append", 5)}),
    (10, "ann", "fix wrong result in b", {"b/x.py": ("edit", 3)}),
    (11, "ann", "fix regression in a", {"a/x.py": ("edit", 4)}),
    (12, "bob", "grow b", {"b/x.py": ("append", 3)}),
    (13, "bob", "grow b more", {"b/x.py": ("append", 3)}),
    (14, "bob", "grow c", {"c/x.py": ("append", 3)}),
    (15, "carl", "grow a", {"a/x.py": ("append", 2)}),
    (16, "ann", "grow d", {"d/x.py": ("append", 4)}),
    (17, "ann", "grow core", {"core/stable.py": ("append", 2)}),
    (18, "ann", "grow e", {"e/x.py": ("append", 4)}),
]
PR_DAY = 24


def _apply(state: dict[str, list[str]], path: str, op: tuple[str, int], tag: str) -> str:
    kind, n = op
    lines = state.setdefault(path, [])
    if kind == "add":
        lines[:] = [f"{tag}_{i} = {i}" for i in range(n)]
    elif kind == "append":
        lines.extend(f"{tag}_{i} = {i}" for i in range(n))
    else:  # edit one line
        lines[n] = f"{tag}_edit = {n}"
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("score")
    b = RepoBuilder(root / "repo")
    state: dict[str, list[str]] = {}
    for day, author, subject, ops in MAIN:
        files = {p: _apply(state, p, op, f"d{day}") for p, op in ops.items()}
        b.commit(files, author=author, day=day, message=subject)
    m = b.head()
    at_m = {p: list(v) for p, v in state.items()}

    b.branch("other", m)
    b.checkout("other")
    dave_a = list(at_m["a/x.py"])
    dave_a[0] = "dave = 1"
    dave = b.commit(
        {"a/x.py": "\n".join(dave_a) + "\n"}, author="dave", day=20, message="dave tweaks a"
    )

    b.checkout("main")
    erin_c = list(at_m["c/x.py"])
    erin_c[0] = "erin = 1"
    erin = b.commit(
        {"c/x.py": "\n".join(erin_c) + "\n"}, author="erin", day=21, message="erin tweaks c"
    )

    b.branch("risky", m)
    b.checkout("risky")
    files = {}
    for d in DIRS:
        lines = at_m[f"{d}/x.py"] + ZED_FUNC + [f"zed_{i} = {i}" for i in range(22)]
        files[f"{d}/x.py"] = "\n".join(lines) + "\n"
    zed1 = b.commit(files, author="zed", day=23, message="rework everything")
    new = "\n".join(f"new_{i} = {i}" for i in range(40)) + "\n"
    zed2 = b.commit({"f/new.py": new}, author="zed", day=PR_DAY, message="add f")

    b.branch("safe", m)
    b.checkout("safe")
    core = list(at_m["core/stable.py"])
    core[3] = "tuned = 3"
    safe = b.commit(
        {"core/stable.py": "\n".join(core) + "\n"}, author="ann", day=23, message="tune constant"
    )

    b.branch("all", zed2)
    b.checkout("all")
    b.merge("other", day=25)
    b.merge("main", day=25)
    b.merge("safe", day=25)
    b.checkout("main")

    data = root / "data"
    mine(b.path, data, rev="all", config=MineConfig(code_metrics=True, workers=1))
    _train_model(data)
    return {
        "repo": b.path,
        "data": data,
        "m": m,
        "base": erin,
        "dave": dave,
        "zed": [zed1, zed2],
        "safe": safe,
        "at_m": at_m,
    }


def _train_model(data: Path) -> None:
    install_model(data, seed=7, n=800, max_ns=5, intercept=-0.5, all_features=True)


@pytest.fixture(scope="module")
def risky(world: dict):
    return score(world["repo"], "main", "risky", world["data"])


@pytest.fixture(scope="module")
def safe(world: dict):
    return score(world["repo"], "main", "safe", world["data"])


# -- features --------------------------------------------------------------------------


def _prior_commits_touching(paths: set[str]) -> list[tuple[int, str]]:
    return [(day, author) for day, author, _s, ops in MAIN if paths & set(ops)]


def test_squashed_pr_features_by_hand(world: dict, risky) -> None:
    f = risky.features
    xs = {f"{d}/x.py" for d in DIRS}
    at_m = world["at_m"]
    assert f["nf"] == 6 and f["ns"] == 6 and f["nd"] == 6
    assert f["la"] == 5 * 32 + 40 and f["ld"] == 0
    assert f["la_code"] == 5 * 30 + 40  # not the docstring and comment lines of ZED_FUNC
    assert f["lt"] == sum(len(at_m[p]) for p in xs) == 27 + 31 + 23 + 24 + 24
    touching = _prior_commits_touching(xs)
    assert f["nuc"] == len(touching) == 16
    assert f["ndev"] == len({a for _d, a in touching}) == 3  # ann, bob, carl: not dave, erin, zed
    last = {p: max(d for d, _a, _s, ops in MAIN if p in ops) for p in xs}
    assert f["age"] == pytest.approx(sum(PR_DAY - last[p] for p in xs) / 6)  # f/new.py: 0
    assert f["exp"] == 0 and f["sexp"] == 0 and f["rexp"] == 0  # the PR's own commits excluded
    assert f["fix"] == 0
    assert f["author_email"] == "zed@example.com"
    assert f["author_time"] == pd.Timestamp(ts(PR_DAY), unit="s", tz="UTC").isoformat()
    vals = [32] * 5 + [40]
    h = -sum(v / sum(vals) * math.log2(v / sum(vals)) for v in vals) / math.log2(6)
    assert f["entropy"] == pytest.approx(h)
    # radon: a module of plain assignments totals 1; with one function of complexity 4
    # (three ifs) it totals 4. So +3 per x.py, and +1 for the new f/new.py.
    assert f["cc_delta"] == pytest.approx(5 * 3 + 1)
    assert f["cc_max_touched"] == pytest.approx(4)
    assert risky.merge_base == world["m"]


def test_safe_pr_features_by_hand(safe) -> None:
    f = safe.features
    assert (f["nf"], f["ns"], f["nd"], f["la"], f["ld"], f["lt"]) == (1, 1, 1, 1, 1, 12)
    assert f["ndev"] == 1 and f["nuc"] == 2
    assert f["age"] == pytest.approx(23 - 17)
    ann = [d for d, a, _s, _o in MAIN if a == "ann"]
    assert f["exp"] == len(ann) == 14
    assert f["sexp"] == 2  # ann's changes to core/


def test_history_excludes_non_ancestors_of_the_merge_base(world: dict) -> None:
    # dave (other branch) and erin (after the merge base) both touched a/ and c/; the PR
    # scored against 'other' as base would see dave's commit as its history.
    res = score(world["repo"], "other", "risky", world["data"])
    assert res.merge_base == world["m"]
    assert res.features["ndev"] == 3
    # a PR whose own history includes dave's change counts him
    on_dave = score(world["repo"], world["m"], "other", world["data"])
    assert on_dave.features["author_email"] == "dave@example.com"
    assert on_dave.features["ndev"] == 2  # ann and carl changed a/x.py before M


def test_pr_commit_rows_equal_the_mined_rows(world: dict, risky) -> None:
    from diffrisk.data.store import load_dataset

    ds = load_dataset(world["data"])
    assert {c.sha for c in risky.commits} == set(world["zed"])
    cols = [*KAMEI, "pfix"]
    mined = ds.changes.set_index("sha").loc[world["zed"], cols]
    # score the commits through analyze() directly: the same rows the model saw
    from diffrisk.git.repo import open_repo
    from diffrisk.scoring.analysis import analyze

    a = analyze(open_repo(world["repo"]), "main", "risky", ds, Config())
    ours = a.commit_rows.set_index("sha").loc[world["zed"], cols]
    pd.testing.assert_frame_equal(ours.astype(float), mined.astype(float))
    assert list(ours["exp"]) == [0, 1]  # zed's second commit sees his first
    from diffrisk.features.source import with_code_lines

    code = with_code_lines(ds.changes, ds.files, Config().label).set_index("sha")["la_code"]
    by_commit = a.commit_rows.set_index("sha")["la_code"]
    assert list(by_commit.loc[world["zed"]]) == list(code.loc[world["zed"]]) == [150, 40]


# -- model, explanation, advice ------------------------------------------------------------


def test_riskier_pr_scores_higher(risky, safe) -> None:
    assert risky.probability > safe.probability
    assert risky.level == "high" and safe.level == "low"
    assert risky.model_source == "repository" and risky.model_metrics == {"auc": 0.8}
    assert risky.thresholds == {"medium": 0.4, "high": 0.7}


def test_factors_come_from_the_model(world: dict, risky) -> None:
    model = load_model(world["data"])
    from diffrisk.data.store import load_dataset
    from diffrisk.git.repo import open_repo
    from diffrisk.scoring.analysis import analyze

    a = analyze(open_repo(world["repo"]), "main", "risky", load_dataset(world["data"]), Config())
    contrib = model.contributions(a.pr_row).iloc[0]
    # the added-line counts are one factor (named la_source), NUC and NDEV another (nuc)
    merged = contrib.drop([*explain.ADDED_LINES, *explain.FILE_HISTORY])
    merged["la_source"] = contrib[list(explain.ADDED_LINES)].sum()
    merged["nuc"] = contrib[list(explain.FILE_HISTORY)].sum()
    up = merged[merged >= explain.MIN_EFFECT]
    top_up = up.sort_values(ascending=False).index[:5].tolist()
    assert [f.feature for f in risky.raised] == top_up
    assert all(
        abs(x.contribution) >= abs(y.contribution)
        for x, y in zip(risky.factors, risky.factors[1:], strict=False)
    )
    texts = {f.feature: f.text for f in risky.factors}
    if "nf" in texts:
        assert texts["nf"] == "touches 6 files in 6 directories"
    if "sexp" in texts:
        assert texts["sexp"].startswith("is the author's first change to a/, b/, c/")
    if "exp" in texts:
        assert texts["exp"] == "is the author's first change to the repository"


def test_factor_texts_use_the_change_values() -> None:
    ctx = explain.Context(
        paths=["src/p/a.py", "src/p/b.py"],
        dirs=["src/p"],
        subsystems=["src"],
        new_subsystems=["src"],
        fix_files=["src/p/a.py"],
        la_in_fix_files=300,
        subject="fix parser",
    )
    assert (
        explain.factor_text("la", 420, ctx)
        == "adds 420 lines, 300 of them to files with a history of fixes"
    )
    assert explain.factor_text("nf", 14, ctx) == "touches 14 files in 1 directory"
    assert explain.factor_text("sexp", 0, ctx) == "is the author's first change to src/"
    assert explain.factor_text("fix", 1, ctx) == 'is a bug fix ("fix parser")'
    assert explain.factor_text("issue_refs", np.array([3, 4]), ctx) == "references 2 issues"
    assert explain.factor_text("mystery", 2.5, ctx) == "mystery = 2.5"


def test_hotspots(world: dict, risky, safe) -> None:
    by_path = {f.path: f for f in risky.files}
    assert set(by_path) == {f"{d}/x.py" for d in DIRS} | {"f/new.py"}
    a = by_path["a/x.py"]
    assert (a.past_changes, a.past_fixes, a.la, a.ld, a.cc_added) == (5, 2, 32, 0, 3.0)
    assert "2 past bug fixes touched it" in a.reasons
    assert "this change adds 3 to its cyclomatic complexity" in a.reasons
    assert by_path["b/x.py"].past_fixes == 1 and by_path["c/x.py"].past_fixes == 0
    assert by_path["f/new.py"].reasons[0] == "new file" and by_path["f/new.py"].cc_added == 1
    assert [f.score for f in risky.files] == sorted((f.score for f in risky.files), reverse=True)
    assert [c.probability for c in risky.commits] == sorted(
        (c.probability for c in risky.commits), reverse=True
    )
    assert len(safe.files) == 1 and safe.files[0].path == "core/stable.py"
    # annotations point at the lines each file adds: ZED_FUNC and the zed_ lines are
    # appended after the file's lines at the merge base; f/new.py is new (40 lines);
    # the safe PR changes line 4 of core/stable.py
    n_a = len(world["at_m"]["a/x.py"])
    assert (a.first_line, a.last_line) == (n_a + 1, n_a + 32)
    assert (by_path["f/new.py"].first_line, by_path["f/new.py"].last_line) == (1, 40)
    assert (safe.files[0].first_line, safe.files[0].last_line) == (4, 4)
    from diffrisk.hosts.github.publish import annotations_for

    ann = {x["path"]: x for x in annotations_for(risky.to_dict())}
    assert (ann["a/x.py"]["start_line"], ann["a/x.py"]["end_line"]) == (n_a + 1, n_a + 32)


def test_advice_names_directories_tests_and_reviewers(risky, safe) -> None:
    split, tests, review = risky.advice
    assert split.startswith("Split this change")
    for d in [*DIRS, "f"]:
        assert f"{d}/ (1 file)" in split
    assert tests.startswith(
        "Add tests beside files with a history of fixes: a/x.py (2 past fixes), b/x.py (1 past fix)"
    )
    assert "(this PR changes no test files)" in tests
    ann = sum(1 for _d, a, _s, ops in MAIN if a == "ann" and any(p.endswith("/x.py") for p in ops))
    assert risky.reviewers == [
        ("ann@example.com", ann),
        ("bob@example.com", 3),
        ("carl@example.com", 1),
    ]
    assert f"ann@example.com ({ann} changes), bob@example.com (3 changes)" in review
    assert safe.advice == [] and safe.reviewers == []  # ann is the only one who knows core/


def test_percentile(world: dict, risky, safe) -> None:
    assert risky.compared_changes == len(MAIN)  # ancestors of M within a year; not dave, erin
    assert 0 <= safe.percentile < risky.percentile <= 100
    ten = np.array([0.1, 0.5, 0.9, 0.2, 0.3, 0.6, 0.7, 0.8, 0.05, 0.95])
    assert percentile_of(0.5, ten) == 45.0  # 4 below, 1 tie
    assert percentile_of(0.99, ten) == 100.0
    # fewer than MIN_COMPARED past changes: no comparison is made
    assert percentile_of(0.5, ten[:9]) is None and percentile_of(0.5, np.array([])) is None


def test_to_dict_is_json(risky) -> None:
    d = json.loads(json.dumps(risky.to_dict()))
    assert d["reviewers"][0] == {"email": "ann@example.com", "changes": risky.reviewers[0][1]}
    assert d["level"] == "high" and d["files"][0]["path"] == risky.files[0].path
    from diffrisk.scoring.result import result_from_dict

    assert result_from_dict(d).reviewers == risky.reviewers


# -- errors and the GitHub event -------------------------------------------------------------


def test_errors(world: dict, tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match="nothing to score"):
        score(world["repo"], "risky", "main~1", world["data"])  # main~1 = M, in risky
    with pytest.raises(RepositoryError, match="does not exist"):
        score(world["repo"], "main", "nope", world["data"])
    with pytest.raises(DataError, match="no mined dataset"):
        score(world["repo"], "main", "risky", tmp_path / "empty")
    other = RepoBuilder(tmp_path / "other")
    other.commit({"x.py": "x = 1\n"}, day=1)
    other.branch("feat")
    other.checkout("feat")
    other.commit({"x.py": "x = 2\n"}, day=2)
    with pytest.raises(DataError, match="another repository"):
        score(other.path, "main", "feat", world["data"])


def _event(tmp_path: Path, payload: dict) -> Path:
    p = tmp_path / "event.json"
    p.write_text(json.dumps(payload))
    return p


def test_pull_request_event_parsing(tmp_path: Path) -> None:
    p = _event(
        tmp_path,
        {
            "action": "synchronize",
            "number": 7,
            "pull_request": {
                "number": 7,
                "title": "Fix the parser",
                "body": None,
                "user": {"login": "zed"},
                "base": {"sha": "a" * 40, "ref": "main"},
                "head": {"sha": "b" * 40, "ref": "risky"},
            },
        },
    )
    pr = pull_request_from_event(p)
    assert (pr.base, pr.head, pr.number, pr.title, pr.body, pr.author) == (
        "a" * 40,
        "b" * 40,
        7,
        "Fix the parser",
        "",
        "zed",
    )
    assert (
        pull_request_from_event(_event(tmp_path, {"ref": "refs/heads/main", "commits": []})) is None
    )
    with pytest.raises(GitHubError, match=r"base\.sha"):
        pull_request_from_event(_event(tmp_path, {"pull_request": {"head": {"sha": "x"}}}))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(GitHubError, match="not JSON"):
        pull_request_from_event(bad)


def test_cli_takes_the_merge_request_from_gitlab_ci(
    world: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GitLab CI has no event file: base, head, title and description come from variables
    repo = world["repo"]
    from diffrisk.git.repo import open_repo

    r = open_repo(repo)
    base, head = r.resolve("main"), r.resolve("risky")
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_EVENT_PATH", raising=False)
    for k, v in {
        "GITLAB_CI": "true",
        "CI_MERGE_REQUEST_IID": "7",
        "CI_MERGE_REQUEST_DIFF_BASE_SHA": base,
        "CI_COMMIT_SHA": head,
        "CI_MERGE_REQUEST_TITLE": "fix crash everywhere",
        "CI_MERGE_REQUEST_DESCRIPTION": "Closes #12",
    }.items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "result.json"
    args = ["score", "--repo", str(repo), "--data-dir", str(world["data"]), "--json"]
    res = CliRunner().invoke(cli, [*args, "--output", str(out)])
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    assert (d["base"], d["head"], d["pull_request"]) == (base, head, 7)
    assert d["features"]["fix"] == 1 and d["features"]["issue_refs"] == [12]
    # another head than the merge request's: its title no longer describes the change
    res = CliRunner().invoke(cli, [*args, "--head", "safe", "--output", str(out)])
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    assert d["pull_request"] is None and 12 not in d["features"]["issue_refs"]


def test_cli_takes_base_and_head_from_the_event(
    world: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = world["repo"]
    from diffrisk.git.repo import open_repo

    r = open_repo(repo)
    base, head = r.resolve("main"), r.resolve("risky")
    p = _event(
        tmp_path,
        {
            "pull_request": {
                "number": 3,
                "title": "fix crash everywhere",
                "body": "fixes #12",
                "base": {"sha": base},
                "head": {"sha": head},
            }
        },
    )
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(p))
    out = tmp_path / "result.json"
    res = CliRunner().invoke(
        cli,
        [
            "score",
            "--repo",
            str(repo),
            "--data-dir",
            str(world["data"]),
            "--json",
            "--output",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    assert (d["base"], d["head"], d["pull_request"]) == (base, head, 3)
    assert d["features"]["fix"] == 1 and d["features"]["issue_refs"] == [
        12
    ]  # from the PR title and body
    md = CliRunner().invoke(
        cli,
        ["score", "--repo", str(repo), "--data-dir", str(world["data"]), "--format", "markdown"],
    )
    assert md.exit_code == 0, md.output
    assert md.output.startswith("<!-- diffrisk:comment") and "a/x.py" in md.output
    monkeypatch.delenv("GITHUB_EVENT_PATH")
    err = CliRunner().invoke(
        cli, ["score", "--repo", str(repo), "--data-dir", str(tmp_path / "none"), "--head", "risky"]
    )
    assert err.exit_code == 2 and "error: no mined dataset" in err.output


def test_a_damaged_prediction_log_is_moved_aside_once(world: dict, tmp_path: Path) -> None:
    import shutil

    from diffrisk.data.predlog import load_predictions

    data = tmp_path / "data"
    shutil.copytree(world["data"], data)
    (data / "predictions.parquet").write_bytes(b"not parquet")
    args = ["score", "--repo", str(world["repo"]), "--data-dir", str(data), "--base", "main"]
    res = CliRunner().invoke(cli, [*args, "--head", "safe", "--json"])
    assert res.exit_code == 0, res.output
    flat = " ".join(res.stderr.split())
    assert flat.count("warning:") == 1 and "could not be read" in flat
    aside = [p for p in data.iterdir() if p.name.startswith("predictions.parquet.damaged-")]
    assert len(aside) == 1 and aside[0].read_bytes() == b"not parquet" and aside[0].name in flat
    assert load_predictions(data)["head_sha"].tolist() == [world["safe"]]  # a new log
    again = CliRunner().invoke(cli, [*args, "--head", "risky", "--json"])
    assert again.exit_code == 0 and again.stderr == ""
    assert len(load_predictions(data)) == 2


@contextlib.contextmanager
def _no_write_access(data: Path) -> Iterator[None]:
    """``data`` and its directories read-only for the block; root writes anyway, so
    root also takes the effective user and group nobody (65534) meanwhile."""
    dirs = [data, *(p for p in data.rglob("*") if p.is_dir())]
    for d in dirs:
        d.chmod(0o555)
    root = os.geteuid() == 0
    try:
        if root:
            os.setegid(65534)
            os.seteuid(65534)
        yield
    finally:
        if root:
            os.seteuid(0)
            os.setegid(0)
        for d in dirs:
            d.chmod(0o755)


def test_score_on_a_read_only_data_directory_warns_and_skips_the_log(
    world: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="diffrisk-ro-"))
    try:
        base.chmod(0o755)  # for nobody too
        repo, data = base / "repo", base / "data"
        shutil.copytree(world["repo"], repo)
        shutil.copytree(world["data"], data)
        (data / "predictions.parquet").unlink(missing_ok=True)
        if os.geteuid() == 0:
            for p in [repo, *repo.rglob("*")]:  # git reads only a repository of its user
                os.chown(p, 65534, 65534, follow_symlinks=False)
        monkeypatch.setenv("HOME", str(base))
        args = ["score", "--repo", str(repo), "--data-dir", str(data), "--base", "main"]
        warm = CliRunner().invoke(cli, [*args, "--head", "risky", "--no-log", "--json"])
        assert warm.exit_code == 0, warm.output  # every module is loaded before
        with _no_write_access(data):
            res = CliRunner().invoke(cli, [*args, "--head", "safe", "--json"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["head"] == world["safe"]
        flat = " ".join(res.stderr.split())
        assert "warning: prediction not logged: cannot update the prediction log" in flat
        assert "--no-log" in flat
        assert not (data / "predictions.parquet").exists()
    finally:
        shutil.rmtree(base)


def test_labels_refine_past_fixes_and_bugs(world: dict, tmp_path: Path) -> None:
    import shutil

    from diffrisk.data.store import load_dataset

    data = tmp_path / "data"
    shutil.copytree(world["data"], data)
    (data / "predictions.parquet").unlink(missing_ok=True)  # other tests' CLI runs log too
    ch = load_dataset(data).changes
    subject = dict(zip(ch["sha"], ch["subject"], strict=True))
    buggy = {"extend a", "extend b"}
    labels = pd.DataFrame(
        {
            "sha": list(subject),
            "label": [1 if s in buggy else 0 for s in subject.values()],
            # "grow c" was fixing an issue labelled as a bug: the label stage says so
            "is_fix": [int(s.startswith("fix") or s == "grow c") for s in subject.values()],
        }
    ).astype({"label": "int8", "is_fix": "int8"})
    labels.to_parquet(data / "labels.parquet")
    res = score(world["repo"], "main", "risky", data)
    by_path = {f.path: f for f in res.files}
    assert (
        by_path["a/x.py"].past_bugs,
        by_path["b/x.py"].past_bugs,
        by_path["c/x.py"].past_bugs,
    ) == (1, 1, 0)
    assert by_path["c/x.py"].past_fixes == 1 and by_path["a/x.py"].past_fixes == 2
    assert "1 earlier change to it later needed a fix" in by_path["a/x.py"].reasons
    # a file outside the source rule is never blamed: its buggy past is not its own
    from diffrisk.config import parse_config

    cfg = parse_config({"label": {"exclude_paths": ["a/*"]}})
    other = {f.path: f for f in score(world["repo"], "main", "risky", data, cfg).files}
    assert other["a/x.py"].past_bugs == 1
    assert not any("later needed a fix" in r for r in other["a/x.py"].reasons)
    assert "1 earlier change to it later needed a fix" in other["b/x.py"].reasons


def test_cli_logs_each_prediction_once(world: dict, tmp_path: Path) -> None:
    import shutil

    from diffrisk.data.predlog import load_predictions

    data = tmp_path / "data"
    shutil.copytree(world["data"], data)
    (data / "predictions.parquet").unlink(missing_ok=True)  # other tests' CLI runs log too
    args = ["score", "--repo", str(world["repo"]), "--data-dir", str(data), "--base", "main"]
    first = CliRunner().invoke(cli, [*args, "--head", "risky", "--no-log", "--json"])
    assert first.exit_code == 0, first.output
    assert load_predictions(data).empty
    for _ in range(2):  # the same head twice: one row
        res = CliRunner().invoke(cli, [*args, "--head", "risky", "--json"])
        assert res.exit_code == 0, res.output
    CliRunner().invoke(cli, [*args, "--head", "safe", "--json"])
    log = load_predictions(data)
    assert sorted(log["head_sha"]) == sorted([world["zed"][1], world["safe"]])
    risky_p = json.loads(res.output)["probability"]
    assert log.set_index("head_sha").loc[world["zed"][1], "probability"] == pytest.approx(risky_p)


def test_every_model_feature_has_words() -> None:
    from diffrisk.model.transforms import KAMEI_FEATURES
    from diffrisk.scoring.explain import Context, factor_text

    ctx = Context(["a/x.py"], ["a"], ["a"], [], fix_files=[], la_in_fix_files=0, subject="s")
    for feature in (*KAMEI_FEATURES, "la_source", "la_code", "la_control", "pfix", "nd", "rexp"):
        text = factor_text(feature, 3, ctx)
        assert not text.startswith(f"{feature} =") and "=" not in text, (feature, text)


def test_huge_change_is_flagged(world: dict) -> None:
    from diffrisk.config import parse_config
    from diffrisk.scoring.score import score

    cfg = parse_config({"mine": {"huge_commit_files": 3}})
    risky = score(world["repo"], "main", "risky", world["data"], cfg)
    assert risky.features["huge"] and any("huge change" in w for w in risky.warnings)
    safe = score(world["repo"], "main", "safe", world["data"], cfg)
    assert not safe.features["huge"] and not any("huge change" in w for w in safe.warnings)


def test_added_lines_and_lines_of_code_are_one_factor() -> None:
    from diffrisk.scoring.explain import Context, factors

    ctx = Context(["a/x.py"], ["a"], ["a"], [], fix_files=[], la_in_fix_files=0, subject="s")
    row = pd.Series({"la_source": 40, "la_code": 25, "nf": 1})
    got = factors(pd.Series({"la_source": 0.5, "la_code": 0.25, "nf": -0.1}), row, ctx, top=3)
    assert [(f.feature, f.contribution) for f in got] == [("la_source", 0.75), ("nf", -0.1)]
    assert got[0].text == "adds 40 lines to source files, 25 of them code"
    with_control = factors(
        pd.Series({"la_source": 0.5, "la_code": 0.25, "la_control": 0.2}),
        pd.Series({"la_source": 40, "la_code": 25, "la_control": 6}),
        ctx,
        top=3,
    )
    assert len(with_control) == 1 and with_control[0].contribution == pytest.approx(0.95)
    assert with_control[0].text == (
        "adds 40 lines to source files, 25 of them code (6 control flow: branches, loops, "
        "returns, raises)"
    )
    # with the change's tokens, the keywords it uses
    named = factors(
        pd.Series({"la_source": 0.5, "la_code": 0.25, "la_control": 0.2}),
        pd.Series(
            {"la_source": 40, "la_code": 25, "la_control": 6, "code_tokens": "( ) : if raise x"}
        ),
        ctx,
        top=3,
    )
    assert named[0].text.endswith("(6 control flow: if, raise)")
    # a reformat or a change of annotations adds lines, none of them new code
    cosmetic = factors(
        pd.Series({"la_source": 0.3, "la_code": -0.6, "la_control": -0.1}),
        pd.Series({"la_source": 12, "la_code": 0, "la_control": 0}),
        ctx,
        top=3,
    )
    assert cosmetic[0].text.startswith("adds 12 lines to source files, none of them new code")
    assert "reformatting, type annotations" in cosmetic[0].text
    empty = pd.Series({"la_source": 0, "la_code": 0, "la_control": 0})
    contrib = pd.Series({"la_source": -0.4, "la_code": -0.6, "la_control": -0.1})
    none = factors(contrib, empty, ctx, top=3)
    assert [f.text for f in none] == [
        "adds no lines to source files (tests, docs or configuration only)"
    ]
    # pulling opposite ways (collinear features): still one fact, with the net effect,
    # never "adds no lines to source files" raising the risk beside "no code" lowering it
    net = factors(pd.Series({"la_source": 0.3, "la_code": -0.2}), row, ctx, top=3)
    assert [(f.feature, f.contribution) for f in net] == [("la_source", pytest.approx(0.1))]
    assert net[0].text == "adds 40 lines to source files, 25 of them code"
    net = factors(
        pd.Series({"la_source": 0.17, "la_code": -1.81, "la_control": 0.01}), empty, ctx, top=3
    )
    assert len(net) == 1 and net[0].contribution == pytest.approx(-1.63)


def test_earlier_commits_and_developers_of_the_files_are_one_factor() -> None:
    from diffrisk.scoring.explain import Context, factors

    ctx = Context(["a/x.py"], ["a"], ["a"], [], fix_files=[], la_in_fix_files=0, subject="s")
    row = pd.Series({"nuc": 1, "ndev": 1, "nf": 1})
    # collinear counts weighed against each other: one fact with the net effect, not
    # "1 developer" raising the risk beside "1 earlier commit" lowering it
    got = factors(pd.Series({"ndev": 0.78, "nuc": -0.75, "nf": -0.1}), row, ctx, top=3)
    assert [(f.feature, f.contribution) for f in got] == [
        ("nf", -0.1),
        ("nuc", pytest.approx(0.03)),
    ]
    assert got[1].text == "touches files changed by 1 earlier commit from 1 developer"
    many = factors(
        pd.Series({"ndev": 0.2, "nuc": 0.3}), pd.Series({"nuc": 16, "ndev": 3}), ctx, top=3
    )
    assert [(f.feature, f.value, f.text) for f in many] == [
        ("nuc", 16, "touches files changed by 16 earlier commits from 3 developers")
    ]
    fresh = factors(
        pd.Series({"ndev": -0.2, "nuc": -0.1}), pd.Series({"nuc": 0, "ndev": 0}), ctx, top=3
    )
    assert [f.text for f in fresh] == ["touches only files with no earlier changes"]


def test_an_old_base_is_compared_with_the_year_before_it(builder, tmp_path: Path) -> None:
    # a release diff whose base is years older than its head: the percentile and the
    # typical risk (the deploy gate's limit) come from the year up to the base
    b = builder
    for day in range(12):
        b.commit({f"m{day}.py": f"x = {day}\n"}, day=day, message=f"main {day}")
    b.branch("release")
    b.checkout("release")
    b.commit({"r.py": "y = 1\n"}, day=900, message="much later")
    b.checkout("main")
    data = tmp_path / "data"
    mine(b.path, data, rev="release", config=MineConfig(code_metrics=False))
    install_model(data, seed=5, n=400, max_ns=4, intercept=-1.0)
    res = score(b.path, "main", "release", data)
    assert res.compared_changes == 12
    assert res.typical_probability is not None and 0 < res.typical_probability < 1
    assert res.percentile is not None


def test_code_lines_of_a_file_with_an_upper_case_ending(builder, tmp_path: Path) -> None:
    b = builder
    b.commit({"x/a.py": "a = 1\n"}, day=0, message="start")
    b.branch("feat")
    b.checkout("feat")
    b.commit(
        {"x/Main.C": "int main() {\n  // hi\n  return 0;\n}\n"}, author="zed", day=2, message="c"
    )
    b.checkout("main")
    data = tmp_path / "data"
    mine(b.path, data, rev="feat", config=MineConfig(code_metrics=False))
    install_model(data, seed=5, n=300, max_ns=3, intercept=-1.0)
    res = score(b.path, "main", "feat", data)
    # git's pathspec is case-sensitive: the diff must ask for ".C", as mining did
    assert (res.features["la_code"], res.features["la_control"]) == (3, 1)
    files = pd.read_parquet(data / "files.parquet")
    assert files.loc[files["path"] == "x/Main.C", "la_code"].tolist() == [3]


def test_reviewers_for_a_release_range_are_recent_and_human(tmp_path: Path) -> None:
    # old wrote core/ years ago and left; new and a bot kept it up in the year before the
    # release's base; the release (head) lies another two years later
    b = RepoBuilder(tmp_path / "repo")
    text = ""
    for i in range(6):
        text += f"old_{i} = {i}\n"
        b.commit({"core/m.py": text}, author="old", day=i, message=f"old {i}")
    for i in range(2):
        text += f"new_{i} = {i}\n"
        b.commit({"core/m.py": text}, author="new", day=1000 + i, message=f"new {i}")
    for i in range(4):
        text += f"bump_{i} = {i}\n"
        b.commit(
            {"core/m.py": text},
            author="dependabot[bot]",
            email="49699333+dependabot[bot]@users.noreply.github.com",
            day=1003 + i,
            message=f"Bump dep {i}",
        )
    base = b.head()
    text += "release = 1\n"
    b.commit({"core/m.py": text}, author="rel", day=1800, message="release work")
    head = b.head()
    mine(b.path, tmp_path / "data", config=MineConfig(code_metrics=False))
    res = score(b.path, base, head, tmp_path / "data")
    # the year before the base, not before the head; no bot; not someone long gone
    assert res.reviewers == [("new@example.com", 2)]
    assert explain.is_bot("49699333+dependabot[bot]@users.noreply.github.com")
    assert explain.is_bot("renovate-bot@example.com") and not explain.is_bot("ann@example.com")


def test_the_token_factor_names_what_weighs_in_its_direction() -> None:
    from diffrisk.scoring.explain import Context, factors

    ctx = Context(["a/x.py"], ["a"], ["a"], [], fix_files=[], la_in_fix_files=0, subject="s")
    ctx.tokens = [("lock", 0.3), ("self", -0.1), ("retry", 0.2), ("await", 0.05), ("x", 0.01)]
    row = pd.Series({"code_tokens": "( ) await lock retry self x"})
    (f,) = factors(pd.Series({"code_tokens": 0.4}), row, ctx, top=3)
    assert f.feature == "code_tokens" and f.value == 7 and f.contribution == 0.4
    assert f.text.endswith("went with past defects here (`lock`, `retry`, `await`)")
    (f,) = factors(pd.Series({"code_tokens": -0.2}), row, ctx, top=3)
    assert f.text.endswith("stayed clean here (`self`)")
    (f,) = factors(pd.Series({"code_tokens": -0.7}), pd.Series({"code_tokens": ""}), ctx, top=3)
    assert f.text.startswith("adds no code")


@pytest.mark.parametrize(
    ("path", "is_test"),
    [
        ("tests/test_app.py", True),
        ("src/pkg/test_util.py", True),
        ("pkg/conftest.py", True),
        ("scrapy/utils/test.py", True),  # a test helper module
        ("packages/runtime-core/__tests__/apiWatch.spec.ts", True),
        ("src/components/Button.test.tsx", True),
        ("server/handler_test.go", True),
        ("spec/models/user_spec.rb", True),
        ("e2e/login.ts", True),
        ("src/pkg/testing_utils.py", False),
        ("src/contest/entry.py", False),
        ("src/specification.py", False),
        ("compiler/rustc_target/src/spec/base.rs", False),  # a nested spec/ is code
        ("lib/latest.js", False),
    ],
)
def test_test_files_by_convention(path: str, is_test: bool) -> None:
    assert explain.is_test_path(path) is is_test


def test_factors_too_small_to_show_are_left_out() -> None:
    from diffrisk.scoring.explain import MIN_EFFECT, Context, factors

    ctx = Context(["a/x.py"], ["a"], ["a"], [], fix_files=[], la_in_fix_files=0, subject="s")
    row = pd.Series({"nf": 1, "ld": 4, "entropy": 0.0})
    got = factors(pd.Series({"nf": 0.2, "ld": MIN_EFFECT / 2, "entropy": -0.001}), row, ctx, 5)
    assert [f.feature for f in got] == ["nf"]  # +0.0025 and -0.001 would read "+0.00"


def test_levels_by_rank_follow_the_printed_percentile(world: dict, risky) -> None:
    from diffrisk.config import ScoreConfig
    from diffrisk.levels import level_by_rank

    # 18 past-year changes: too few for the default reference of 100, so the model's
    # probabilities decide (this test model keeps no reference distribution)
    assert risky.level_rule["basis"] == "probability"
    cfg = Config(score=ScoreConfig(min_reference=10, high_share=0.1, medium_share=0.3))
    r = score(world["repo"], "main", "risky", world["data"], cfg)
    s = score(world["repo"], "main", "safe", world["data"], cfg)
    assert r.level_rule["basis"] == "rank" and r.level_rule["reference"] == "past_year"
    assert r.level_rule["compared"] == len(MAIN) == r.compared_changes
    for res in (r, s):
        assert res.level == level_by_rank(res.percentile, 0.1, 0.3)
        assert (res.level == "high") == (res.probability >= res.thresholds["high"])
        for c in res.commits:
            assert (c.level != "low") == (c.probability >= res.thresholds["medium"])
    assert r.percentile > s.percentile
    text = render_markdown_for(r)
    assert (
        f"riskier than {round(r.percentile)}% of this repository's commits in the past year" in text
    )
    assert (
        "Levels by rank among this repository's commits in the past year: high is the riskiest 10%"
        in text
    )


def render_markdown_for(result) -> str:  # type: ignore[no-untyped-def]
    from diffrisk.report.render import render_comment

    return render_comment(result)


def test_review_order_by_risk_per_changed_line(risky) -> None:
    # three files: the risk order is a, b, c; per changed line c (5 lines) comes first
    items = [("a.py", 0.6, 300), ("b.py", 0.5, 100), ("c.py", 0.2, 5)]
    assert explain.review_order(items) == ["c.py", "b.py", "a.py"]
    assert explain.review_order([("a.py", 0.6, 10), ("b.py", 0.5, 100)]) == []  # same order
    assert explain.review_order([("a.py", 0.6, 10)]) == []
    assert explain.review_order([("a.py", 0.6, 0), ("b.py", 0.7, 100)]) == ["a.py", "b.py"]
    # the risky PR: its order is the files' by score / (la + ld), when that differs
    by_line = sorted(risky.files, key=lambda f: (-f.score / max(f.la + f.ld, 1), f.path))
    expected = [f.path for f in by_line]
    if expected == [f.path for f in sorted(risky.files, key=lambda f: (-f.score, f.path))]:
        expected = []
    assert risky.review_files == expected
    text = render_markdown_for(risky)
    if expected:
        assert "read the files in this order (risk per changed line" in text


JAVA = """class Calc {
    int sign(int x) {
        if (x > 0) {
            return 1;
        }
        return 0;
    }
}
"""


def test_a_java_change_gets_code_metrics_when_scored(tmp_path: Path) -> None:
    b = RepoBuilder(tmp_path / "repo")
    for i in range(3):
        b.commit({f"src/Other{i}.java": f"class Other{i} {{}}\n"}, day=i, message=f"add {i}")
    b.commit({"src/Calc.java": JAVA}, day=5, message="add calc")
    b.branch("feat")
    b.checkout("feat")
    # one more branch: sign() goes from CCN 2 to 3
    b.commit(
        {
            "src/Calc.java": JAVA.replace(
                "        return 0;",
                "        if (x < 0) {\n            return -1;\n        }\n        return 0;",
            )
        },
        day=6,
        message="negative sign",
    )
    b.checkout("main")
    data = tmp_path / "data"
    mine(b.path, data, config=MineConfig(code_metrics=True, workers=1))
    res = score(b.path, "main", "feat", data)
    assert res.features["cc_delta"] == 1
    assert res.features["cc_max_touched"] == 3
