"""SZZ labelling on real repositories whose defect-inducing commits are known by construction."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer

from diffrisk.cli import cli
from diffrisk.config import LabelConfig, MineConfig
from diffrisk.errors import DataError, GitHubError
from diffrisk.features.codelines import cosmetic_lines
from diffrisk.labelling.label import fetch_github_bugs, label, load_labels, load_links, sample_links
from diffrisk.labelling.szz import parse_patches, ranges
from diffrisk.mining.mine import mine
from repobuilder import RepoBuilder, ts

MOD = """\
def f(x):
    \"\"\"Add one.\"\"\"
    return x + 1


def g(y):
    return y * 2
"""


def run(b: RepoBuilder, data: Path, **cfg: object) -> tuple[object, pd.DataFrame]:
    mine(b.path, data, config=MineConfig(code_metrics=False))
    res = label(b.path, data, LabelConfig(**cfg))
    return res, load_labels(data).set_index("sha")


def state(labels: pd.DataFrame, sha: str) -> str:
    return labels.loc[sha, "label_state"]


@pytest.fixture
def history(builder: RepoBuilder) -> dict[str, str]:
    """c_bug writes the faulty line; whitespace and comment-only commits follow; the fix
    repairs it, deletes the comment, and touches docs and tests written by c_base."""
    b = builder
    c = {}
    c["base"] = b.commit(
        {
            "pkg/mod.py": MOD,
            "README.md": "hello\nworld\n",
            "tests/test_mod.py": "def test():\n    assert 1\n",
        },
        day=0,
        message="add mod",
    )
    c["bug"] = b.commit(
        {"pkg/mod.py": MOD.replace("y * 2", "y * 3")}, author="bob", day=10, message="change g"
    )
    c["ws"] = b.commit(
        {"pkg/mod.py": MOD.replace("y * 2", "y  *  3")}, day=20, message="reformat g"
    )
    with_comment = MOD.replace("y * 2", "y  *  3").replace(
        "def g(y):\n", "def g(y):\n    # triples y\n"
    )
    with_comment = with_comment.replace('"""Add one."""', '"""Add one to x."""')
    c["comment"] = b.commit({"pkg/mod.py": with_comment}, author="cid", day=30, message="explain g")
    fixed = MOD.replace('"""Add one."""', '"""Add 1."""')
    c["fix"] = b.commit(
        {
            "pkg/mod.py": fixed,
            "README.md": "hello\nthere\n",
            "tests/test_mod.py": "def test():\n    assert 2\n",
        },
        day=200,
        message="Fix g returning the wrong value",
    )
    c["young"] = b.commit({"pkg/other.py": "z = 1\n"}, day=250, message="add other")
    return c


def test_szz_blames_exactly_the_inducing_commit(
    history: dict[str, str], builder: RepoBuilder, tmp_path: Path
) -> None:
    c = history
    res, lab = run(builder, tmp_path / "data")
    assert state(lab, c["bug"]) == "buggy"
    assert list(lab.loc[c["bug"], "fixed_by"]) == [c["fix"]]
    assert lab.loc[c["bug"], "n_fixes"] == 1
    assert lab.loc[c["bug"], "days_to_fix"] == pytest.approx(190.0)
    # whitespace-only and comment/docstring-only commits are not blamed; nor is the base
    # commit for the README and test lines the fix changed
    for k in ("base", "ws", "comment"):
        assert state(lab, c[k]) == "clean", k
    # the newest commit is day 250: days 200 and 250 are within 90 days -> unlabelled
    assert state(lab, c["young"]) == "unlabelled" and state(lab, c["fix"]) == "unlabelled"
    assert pd.isna(lab.loc[c["young"], "label"])
    assert lab.loc[c["bug"], "label"] == 1 and lab.loc[c["base"], "label"] == 0
    assert lab.loc[c["fix"], "is_fix"] == 1 and lab.loc[c["bug"], "is_fix"] == 0
    assert lab.loc[c["base"], "source_files"] == 1  # pkg/mod.py; README and tests are not source
    assert res.buggy == 1 and res.fixes == 1 and res.links == 1
    links = load_links(tmp_path / "data")
    assert links[["fix_sha", "inducing_sha", "path", "lines"]].values.tolist() == [
        [c["fix"], c["bug"], "pkg/mod.py", 1]
    ]
    assert list(links.loc[0, "sample"]) == ["    return y  *  3"]


def test_filters_switched_off_blame_the_cosmetic_commits(
    history: dict[str, str], builder: RepoBuilder, tmp_path: Path
) -> None:
    c = history
    _, lab = run(
        builder,
        tmp_path / "data",
        ignore_whitespace=False,
        ignore_comments=False,
        source_only=False,
        skip_cosmetic_commits=False,
        skip_incidental=False,
        select="all",
        verification_days=0,
    )
    assert state(lab, c["ws"]) == "buggy"  # blamed without -w
    assert state(lab, c["comment"]) == "buggy"  # the deleted comment and docstring lines
    assert state(lab, c["base"]) == "buggy"  # README and test lines
    assert state(lab, c["bug"]) == "clean"  # its line was rewritten by the whitespace commit
    assert state(lab, c["young"]) == "clean"  # verification_days=0


def test_max_fix_files(history: dict[str, str], builder: RepoBuilder, tmp_path: Path) -> None:
    res, lab = run(builder, tmp_path / "data", max_fix_files=2)
    assert res.fixes_too_large == 1 and res.fixes_blamed == 0
    assert state(lab, history["bug"]) == "clean"


def _refactored(b: RepoBuilder, refactor_to: str, ignore: bool) -> tuple[str, str, str]:
    b.commit({"a.py": 'name = "x"\nvalue = 1\nother = 0\n'}, day=0, message="add a")
    bug = b.commit({"a.py": 'name = "x"\nvalue = 2\nother = 0\n'}, day=5, message="set value")
    refactor = b.commit({"a.py": refactor_to}, day=6, message="refactor")
    if ignore:
        b.commit(
            {".git-blame-ignore-revs": f"# style\n{refactor}\n{'f' * 40}\n"},
            day=7,
            message="ignore",
        )
    fix = b.commit({"a.py": refactor_to.replace("2", "1")}, day=300, message="fix value")
    return bug, refactor, fix


RENAMED = 'name = "x"\nresult = 2\nother = 0\n'
REFORMATTED = "name = 'x'\nvalue = (2)\nother = 0\n"


def test_blame_ignore_revs_skips_listed_refactoring(builder: RepoBuilder, tmp_path: Path) -> None:
    bug, refactor, fix = _refactored(builder, RENAMED, ignore=True)
    _, lab = run(builder, tmp_path / "data")
    assert state(lab, bug) == "buggy"
    assert list(lab.loc[bug, "fixed_by"]) == [fix]
    assert state(lab, refactor) == "clean"


def test_without_ignore_revs_the_refactoring_is_blamed(
    builder: RepoBuilder, tmp_path: Path
) -> None:
    bug, refactor, _ = _refactored(builder, RENAMED, ignore=False)
    _, lab = run(builder, tmp_path / "data")
    assert state(lab, refactor) == "buggy" and state(lab, bug) == "clean"


def test_reformatting_commits_are_looked_through(builder: RepoBuilder, tmp_path: Path) -> None:
    bug, refactor, fix = _refactored(builder, REFORMATTED, ignore=False)
    _, lab = run(builder, tmp_path / "data")
    assert state(lab, bug) == "buggy" and state(lab, refactor) == "clean"
    assert list(lab.loc[bug, "fixed_by"]) == [fix]
    _, lab = run(builder, tmp_path / "data", skip_cosmetic_commits=False)
    assert state(lab, refactor) == "buggy" and state(lab, bug) == "clean"


def test_black_docstring_changes_are_looked_through(builder: RepoBuilder, tmp_path: Path) -> None:
    """black re-indents docstrings and strips their trailing spaces: still a reformat."""
    doc = 'def f():\n    """Value.   \n\n       Always the same.\n        """\n'
    builder.commit({"d.py": doc + "    return 'x0'\n"}, day=0, message="add d")
    bug = builder.commit({"d.py": doc + "    return 'x2'\n"}, day=5, message="set value")
    black_doc = 'def f():\n    """Value.\n\n    Always the same.\n    """\n'
    black = builder.commit({"d.py": black_doc + '    return "x2"\n'}, day=6, message="black")
    fix = builder.commit({"d.py": black_doc + '    return "x1"\n'}, day=300, message="fix value")
    _, lab = run(builder, tmp_path / "data")
    assert state(lab, bug) == "buggy" and state(lab, black) == "clean"
    assert list(lab.loc[bug, "fixed_by"]) == [fix]


TYPED = """\
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, cast

if TYPE_CHECKING:
    from pkg.other import Thing


def f(x: Optional[int] = None) -> int:
    value: int = 2
    return cast(int, x) + value
"""
UNTYPED = "def f(x=None):\n    value = 2\n    return x + value\n"


def _typed(b: RepoBuilder, typed: str) -> tuple[str, str, str]:
    b.commit({"t.py": "def f(x=None):\n    value = 1\n    return x + value\n"}, day=0)
    bug = b.commit({"t.py": UNTYPED}, day=5, message="set value")
    typing = b.commit({"t.py": typed}, day=6, message="Full typing for t")
    fix = b.commit({"t.py": typed.replace("= 2", "= 1")}, day=300, message="fix value")
    return bug, typing, fix


def test_annotation_only_commits_are_looked_through(builder: RepoBuilder, tmp_path: Path) -> None:
    bug, typing, fix = _typed(builder, TYPED)
    _, lab = run(builder, tmp_path / "data")
    # the typing commit rewrote the blamed line ("value: int = 2") but only its annotation
    assert state(lab, bug) == "buggy" and state(lab, typing) == "clean"
    assert list(lab.loc[bug, "fixed_by"]) == [fix]
    _, lab = run(builder, tmp_path / "data", skip_annotation_commits=False)
    assert state(lab, typing) == "buggy" and state(lab, bug) == "clean"


def test_a_typing_commit_that_also_changes_code_is_blamed(
    builder: RepoBuilder, tmp_path: Path
) -> None:
    # besides the annotations it changes what f returns: no longer annotation-only
    bug, typing, _ = _typed(builder, TYPED.replace("+ value", "- value"))
    _, lab = run(builder, tmp_path / "data")
    assert state(lab, typing) == "buggy" and state(lab, bug) == "clean"


def test_merge_commits_are_never_blamed(builder: RepoBuilder, tmp_path: Path) -> None:
    b = builder
    base = b.commit({"m.py": "a = 1\nb = 1\n"}, day=0, message="add m")
    b.branch("feature")
    b.checkout("feature")
    feat = b.commit({"m.py": "a = 2\nb = 1\n"}, day=1, message="feature a")
    b.checkout("main")
    b.run("merge", "--no-ff", "--no-commit", "feature")
    merge = b.commit({"m.py": "a = 2\nb = 3\n"}, day=2, message="Merge feature")  # an evil merge
    assert len(b.repo.head.commit.parents) == 2
    fix = b.commit({"m.py": "a = 1\nb = 1\n"}, day=300, message="fix a and b")
    res, lab = run(b, tmp_path / "data")
    assert merge not in lab.index
    assert state(lab, feat) == "buggy" and state(lab, base) == "clean"
    assert res.links == 1
    assert "merge" not in set(load_links(tmp_path / "data")["dropped"].dropna())
    _, lab2 = run(b, tmp_path / "data", skip_merges=False)
    links = load_links(tmp_path / "data")
    assert links.loc[links["inducing_sha"] == merge, "dropped"].tolist() == ["merge"]
    assert links.loc[links["inducing_sha"] == merge, "fix_sha"].tolist() == [fix]
    assert (lab2["label_state"] == lab["label_state"]).all()


def _fix_chain(b: RepoBuilder, n: int, start_day: float) -> list[tuple[str, str]]:
    """n (inducing, fix) pairs on separate files."""
    out = []
    for i in range(n):
        ind = b.commit({f"src/m{i}.py": f"v = {i}\n"}, day=start_day + 2 * i, message=f"add m{i}")
        fix = b.commit(
            {f"src/m{i}.py": f"v = {i + 100}\n"}, day=start_day + 2 * i + 1, message=f"fix m{i}"
        )
        out.append((ind, fix))
    return out


def test_incremental_relabel_equals_full_relabel(builder: RepoBuilder, tmp_path: Path) -> None:
    b = builder
    pairs = _fix_chain(b, 20, 0)
    data = tmp_path / "data"
    res1, _ = run(b, data, workers=2)
    assert res1.newly_blamed == 20 and res1.buggy == 20
    ind, fix = _fix_chain(b, 1, 400)[0]
    res2, inc = run(b, data, workers=2)
    assert res2.newly_blamed == 1 and res2.buggy == 21
    assert state(inc, ind) == "buggy" and list(inc.loc[ind, "fixed_by"]) == [fix]
    # the old pairs are now old enough: clean fixes, buggy inducers
    assert all(state(inc, i) == "buggy" for i, _ in pairs)
    fresh = tmp_path / "fresh"
    _, full = run(b, fresh, workers=1)
    assert inc.sort_index().equals(full.sort_index())
    pd.testing.assert_frame_equal(
        load_links(data).reset_index(drop=True), load_links(fresh).reset_index(drop=True)
    )


def test_a_corrupt_blame_cache_is_rebuilt_and_said(builder: RepoBuilder, tmp_path: Path) -> None:
    from diffrisk.labelling.label import CACHE_FILE

    _fix_chain(builder, 3, 0)
    data = tmp_path / "data"
    first, before = run(builder, data)
    assert first.warnings == [] and first.newly_blamed == 3
    (data / CACHE_FILE).write_bytes(b"PAR1 not a parquet file")
    again, after = run(builder, data)
    assert again.newly_blamed == 3 and len(again.warnings) == 1
    assert "szz_cache.parquet was unreadable" in again.warnings[0]
    assert after.sort_index().equals(before.sort_index())
    third, _ = run(builder, data)  # the rewritten cache is read again
    assert third.newly_blamed == 0 and third.warnings == []


def test_labels_older_than_dataset_are_refused(builder: RepoBuilder, tmp_path: Path) -> None:
    _fix_chain(builder, 1, 0)
    data = tmp_path / "data"
    run(builder, data)
    builder.commit({"x.py": "x = 1\n"}, day=50)
    mine(builder.path, data, config=MineConfig(code_metrics=False))
    with pytest.raises(DataError, match="older dataset"):
        load_labels(data)


def test_label_without_dataset_is_a_clear_error(builder: RepoBuilder, tmp_path: Path) -> None:
    builder.commit({"x.py": "x = 1\n"})
    with pytest.raises(DataError, match="no mined dataset"):
        label(builder.path, tmp_path / "none")
    r = CliRunner().invoke(
        cli, ["label", "--repo", str(builder.path), "--data-dir", str(tmp_path / "none")]
    )
    assert (
        r.exit_code == 2 and "error: no mined dataset" in r.output and "Traceback" not in r.output
    )
    # a dataset mined from another repository
    other = RepoBuilder(tmp_path / "other")
    other.commit({"y.py": "y = 1\n"}, day=3)
    mine(other.path, tmp_path / "data", config=MineConfig(code_metrics=False))
    r = CliRunner().invoke(
        cli, ["label", "--repo", str(builder.path), "--data-dir", str(tmp_path / "data")]
    )
    assert r.exit_code == 2 and "mined from another repository" in r.output, r.output


# -- pieces ---------------------------------------------------------------------------------


def test_cosmetic_lines_by_language() -> None:
    py = b'import os\n\n# note\ndef f():\n    """Doc\n    more."""\n    return 1  # inline\n'
    lines = py.splitlines()
    nos = list(range(1, 8))
    assert cosmetic_lines("a.py", py, nos, lines) == {2, 3, 5, 6}
    c = b"int x; /* a\n b */\n// c\ny = 1; // d\n  * not a comment\n"
    cl = c.splitlines()
    assert cosmetic_lines("a.c", c, list(range(1, 6)), cl) == {2, 3}
    # '#' is a comment in Python but not in C
    assert cosmetic_lines("a.c", b"#include <x>\n", [1], [b"#include <x>"]) == set()


def test_cosmetic_lines_follow_each_languages_comments() -> None:
    def cos(path: str, text: bytes) -> set[int]:
        lines = text.splitlines()
        return cosmetic_lines(path, text, list(range(1, len(lines) + 1)), lines)

    # Ruby: '#' and =begin/=end (the old rule knew only '#')
    assert cos("a.rb", b"x = 1\n=begin\ndoc\n=end\n# c\ny = 2\n") == {2, 3, 4, 5}
    # Lua: '--' and --[[ ]] blocks
    assert cos("a.lua", b"local x = 1\n--[[ a\nb ]]\n-- c\nreturn x\n") == {2, 3, 4}
    # Go: a block comment's inner lines; a continued expression starting with '*' is code
    go = b"/*\nPackage x\n*/\npackage x\nvar y = a\n  * b\n"
    assert cos("x.go", go) == {1, 2, 3}
    # HTML templates: <!-- -->
    assert cos("t.html", b"<p>\n<!--\nold\n-->\n</p>\n") == {2, 3, 4}
    # without the whole file, line comments are still known
    assert cosmetic_lines("a.lua", None, [1, 2], [b"-- c", b"x = 1"]) == {1}
    # a language with no known comment syntax: only blank lines
    assert cos("a.unknown", b"# x\n\ny\n") == {2}


def test_analysed_source_raises_no_warnings_of_its_own() -> None:
    # an invalid escape in the analysed code is its business: Python 3.12 prints a
    # SyntaxWarning for it on every parse, which would flood the user's terminal
    import warnings

    py = b'def f():\n    """Doc \\d."""\n    return "\\ "\n'
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert cosmetic_lines("a.py", py, [2], [py.splitlines()[1]]) == {2}
    assert not seen


def test_parse_patches_renames_and_quoting() -> None:
    data = (
        b"\x01" + b"a" * 40 + b"\n\n"
        b"diff --git a/old name.py b/new.py\nsimilarity index 90%\nrename from old name.py\nrename to new.py\n"
        b"index 1111111111111111111111111111111111111111..2222222222222222222222222222222222222222 100644\n"
        b"--- a/old name.py\t\n+++ b/new.py\n@@ -3,2 +3 @@ def f():\n-x\n-y\n+z\n@@ -10 +9,0 @@\n-w\n"
        b'diff --git "a/\\303\\251.py" "b/\\303\\251.py"\nindex 3333333..4444444 100644\n'
        b'--- "a/\\303\\251.py"\n+++ "b/\\303\\251.py"\n@@ -0,0 +1 @@\n+new\n'
    )
    files = parse_patches(data)["a" * 40]
    assert len(files) == 2
    # a file the fix only inserts into keeps where: around old line 0, so line 1
    assert (files[1].old_path, files[1].deleted, files[1].adjacent) == ("é.py", [], [1])
    f = files[0]
    assert (f.old_path, f.new_path, f.deleted) == ("old name.py", "new.py", [3, 4, 10])
    assert f.old_blob == "1" * 40
    assert ranges([10, 3, 4]) == [(3, 4), (10, 10)]


# -- GitHub --------------------------------------------------------------------------------


def _issue(number: int, day: float, pr: bool = False) -> dict[str, object]:
    from datetime import datetime, timezone

    d = {
        "number": number,
        "title": f"issue {number}",
        "state": "closed",
        "created_at": datetime.fromtimestamp(ts(day), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "url": f"http://127.0.0.1:1/repos/o/n/issues/{number}",
        "labels": [{"name": "Bug"}],
    }
    if pr:
        d["pull_request"] = {"url": f"http://127.0.0.1:1/repos/o/n/pulls/{number}"}
    return d


def _serve_repo(httpserver: HTTPServer) -> None:
    base = httpserver.url_for("/").rstrip("/")
    httpserver.expect_request("/repos/o/n").respond_with_json(
        {"id": 1, "name": "n", "full_name": "o/n", "url": f"{base}/repos/o/n"}
    )


def _serve_github(httpserver: HTTPServer) -> None:
    _serve_repo(httpserver)
    httpserver.expect_request("/repos/o/n/labels").respond_with_json(
        [{"name": "Bug", "color": "f00"}, {"name": "enhancement", "color": "0f0"}]
    )
    httpserver.expect_request(
        "/repos/o/n/issues", query_string={"state": "all", "labels": "Bug", "per_page": "100"}
    ).respond_with_json([_issue(7, 50), _issue(12, 120, pr=True)])


def test_github_bug_labels_and_issue_date_filter(
    builder: RepoBuilder, tmp_path: Path, httpserver: HTTPServer
) -> None:
    _serve_github(httpserver)
    b = builder
    b.commit({"a.py": "a = 1\nb = 1\nc = 1\n"}, day=0, message="add a")
    early = b.commit({"a.py": "a = 2\nb = 1\nc = 1\n"}, day=10, message="change a")
    late = b.commit(
        {"a.py": "a = 2\nb = 2\nc = 1\n"}, day=60, message="change b"
    )  # after issue #7 opened
    fix = b.commit({"a.py": "a = 1\nb = 1\nc = 1\n"}, day=100, message="Restore defaults, fixes #7")
    c_bug = b.commit({"a.py": "a = 1\nb = 1\nc = 3\n"}, day=110, message="tune c")
    pr_fix = b.commit(
        {"a.py": "a = 1\nb = 1\nc = 1\n"}, day=130, message="Handle empty input (#12)"
    )
    b.commit({"z.md": "x\n"}, day=400, message="docs")
    data = tmp_path / "data"
    mine(b.path, data, config=MineConfig(code_metrics=False))

    bugs = fetch_github_bugs("o/n", "t0ken", ["bug"], base_url=httpserver.url_for("/").rstrip("/"))
    assert bugs.labels == ["Bug"] and set(bugs.issues) == {7} and bugs.pulls == {12}
    assert bugs.issues[7].timestamp() == ts(50)
    # the listings only: no request per issue
    assert {r.path for r, _ in httpserver.log} <= {
        "/repos/o/n",
        "/repos/o/n/labels",
        "/repos/o/n/issues",
    }

    res = label(b.path, data, LabelConfig(), github=bugs)
    lab = load_labels(data).set_index("sha")
    assert state(lab, early) == "buggy"
    assert state(lab, late) == "clean"  # committed after the bug report: dropped
    assert res.dropped == {"after_issue": 1}
    assert lab.loc[pr_fix, "is_fix"] == 1 and res.github_fixes == 1  # only GitHub knows it
    assert state(lab, c_bug) == "buggy" and list(lab.loc[c_bug, "fixed_by"]) == [pr_fix]

    label(b.path, data, LabelConfig(issue_date_filter=False), github=bugs)
    assert state(load_labels(data).set_index("sha"), late) == "buggy"

    # no GitHub source: the PR fix is not a fix, its inducing commit not buggy
    label(b.path, data, LabelConfig())
    lab = load_labels(data).set_index("sha")
    assert lab.loc[pr_fix, "is_fix"] == 0 and state(lab, c_bug) == "clean"
    assert lab.loc[fix, "is_fix"] == 1


def test_github_errors_are_clear(httpserver: HTTPServer) -> None:
    _serve_repo(httpserver)
    httpserver.expect_request("/repos/o/n/labels").respond_with_json(
        {"message": "Bad credentials"}, status=401
    )
    with pytest.raises(GitHubError, match="HTTP 401") as info:
        fetch_github_bugs("o/n", "bad", ["bug"], base_url=httpserver.url_for("/").rstrip("/"))
    assert "bad" not in str(info.value)
    with pytest.raises(GitHubError, match="owner/name"):
        fetch_github_bugs("noslash", "t", ["bug"], base_url=httpserver.url_for("/").rstrip("/"))


# -- CLI ---------------------------------------------------------------------------------------


def test_cli_summary_json_and_sample(
    history: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = history
    repo = tmp_path / "repo"
    data = tmp_path / "data"
    mine(repo, data, config=MineConfig(code_metrics=False))
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    runner = CliRunner()
    r = runner.invoke(
        cli, ["label", "--repo", str(repo), "--data-dir", str(data), "--json", "--sample", "3"]
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert (d["fixes"], d["buggy"], d["unlabelled"], d["fixes_blamed_nothing"]) == (1, 1, 2, 0)
    assert d["clean"] == d["changes"] - 3
    assert [(s["fix_sha"], s["inducing_sha"]) for s in d["sample"]] == [(c["fix"], c["bug"])]
    assert d["sample"][0]["inducing_subject"] == "change g"
    r = runner.invoke(cli, ["label", "--repo", str(repo), "--data-dir", str(data), "--sample", "1"])
    assert r.exit_code == 0, r.output
    assert (
        "fixes that blamed nothing" in r.output
        and "change g" in r.output
        and "return y  *  3" in r.output
    )
    assert sample_links(data, 5, seed=1)[0]["lines"] == 1


def test_cli_github_repo_without_token_is_skipped(
    history: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    repo = tmp_path / "repo"
    data = tmp_path / "data"
    mine(repo, data, config=MineConfig(code_metrics=False))
    r = CliRunner().invoke(
        cli,
        ["label", "--repo", str(repo), "--data-dir", str(data), "--github-repo", "o/n", "--json"],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["github_fixes"] == 0
    assert "no GitHub token" in r.stderr
    shutil.rmtree(data)


def test_blame_cache_written_before_fix_path_is_kept(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from diffrisk.labelling.label import _CACHE_SCHEMA, _read_cache

    old = pa.schema([f for f in _CACHE_SCHEMA if f.name != "fix_path"])
    rows = {
        "settings": ["k"], "fix_sha": ["f" * 40], "inducing_sha": ["a" * 40], "path": ["m.py"],
        "lines": [2], "cosmetic": [0], "sample": [["x = 1"]],
    }  # fmt: skip
    pq.write_table(pa.Table.from_pydict(rows, schema=old), tmp_path / "cache.parquet")
    notes: list[str] = []
    df = _read_cache(tmp_path / "cache.parquet", notes)
    assert list(df.columns) == _CACHE_SCHEMA.names and len(df) == 1  # no re-blame on upgrade
    assert df.loc[0, "fix_path"] is None and df.loc[0, "path"] == "m.py" and notes == []
    # columns no version wrote: blamed again, and said
    pq.write_table(pa.table({"other": [1]}), tmp_path / "odd.parquet")
    assert _read_cache(tmp_path / "odd.parquet", notes).empty
    assert len(notes) == 1 and "columns this version does not know" in notes[0]


_BASE = "import os\n\n\ndef f(x=None):\n    value = 1\n    return x + value\n"


@pytest.mark.parametrize(
    ("before", "after", "typing_only"),
    [
        # annotations, typing imports, TYPE_CHECKING, cast, overload stubs: typing only
        (_BASE, TYPED.replace("= 2", "= 1"), False),  # and a value changed
        (UNTYPED, TYPED, True),
        (
            "def f(a, b):\n    return a\n",
            "from typing import overload\n\n@overload\ndef f(a: int, b: int) -> int: ...\n"
            "def f(a, b):\n    return a\n",
            True,
        ),
        (
            "x = load()\n",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from a import B\nelse:\n"
            "    B = None\nx = load()\n",
            False,  # the else branch runs
        ),
        # calls named cast that are not typing.cast
        ("y = tf.cast(x, f)\n", "y = tf.cast(z, f)\n", False),
        (
            "from sqlalchemy import cast\ny = cast(a, S)\n",
            "from sqlalchemy import cast\ny = cast(b, S)\n",
            False,
        ),
        ("import typing as t\ny = t.cast(int, x)\n", "import typing as t\ny = x\n", True),
        # a typing name still used at run time keeps its import
        (
            "class P(NamedTuple):\n    a = 1\n",
            "from typing import NamedTuple\nclass P(NamedTuple):\n    a = 1\n",
            False,
        ),
        (
            "from collections.abc import Mapping as M\nok = isinstance(d, M)\n",
            "from collections.abc import MutableMapping as M\nok = isinstance(d, M)\n",
            False,
        ),
        # __future__: only annotations is typing
        ("x = 1 / 2\n", "from __future__ import annotations\nx = 1 / 2\n", True),
        ("x = 1 / 2\n", "from __future__ import division\nx = 1 / 2\n", False),
        # annotations read at run time: class fields, decorated functions
        ("class C:\n    a: int = 0\n", "class C:\n    a: str = 0\n", False),
        (
            "@fmt.register\ndef _(x: int):\n    return x\n",
            "@fmt.register\ndef _(x: str):\n    return x\n",
            False,
        ),
        (
            "class C:\n    @property\n    def a(self):\n        return 1\n",
            "class C:\n    @property\n    def a(self) -> int:\n        return 1\n",
            True,
        ),
        # passes the operator/keyword pre-check, but a value changed
        (
            "def f(x):\n    y = 1\n    return y\n",
            "def f(x: int):\n    y = 2\n    return y\n",
            False,
        ),
        # equal ASTs are a reformat, not a typing change
        ("x = ( 1 )\n", "x = 1\n", False),
    ],
)
def test_typing_only_changes(before: str, after: str, typing_only: bool) -> None:
    from diffrisk.features.cosmetic import same_without_annotations

    assert same_without_annotations(before.encode(), after.encode()) is typing_only


def test_typing_check_is_quiet_about_invalid_escapes() -> None:
    import warnings

    from diffrisk.features.cosmetic import same_without_annotations

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert same_without_annotations(
            b'p = "\\d"\ndef f(a):\n    return a\n', b'p = "\\d"\ndef f(a: int):\n    return a\n'
        )


def test_differing_lines_leave_out_only_whole_shared_lines() -> None:
    """The typing check counts tokens in the lines two versions do not share; the
    answer must be the one the whole files give."""
    import collections
    import random

    from diffrisk.features.cosmetic import NOT_ANNOTATION, differing_lines

    def count(text: bytes) -> collections.Counter[bytes]:
        return collections.Counter(NOT_ANNOTATION.findall(text))

    words = [b"x = 1", b"return x", b"def f(a: int) -> int:", b"", b"    y = a + 1", b"# c"]
    r = random.Random(7)
    for _ in range(400):
        lines = [r.choice(words) for _ in range(r.randint(0, 12))]
        a = b"\n".join(lines) + (b"\n" if r.random() < 0.5 else b"")
        edited = list(lines)
        for _ in range(r.randint(0, 3)):
            i = r.randint(0, len(edited))
            op = r.random()
            if op < 0.4:
                edited.insert(i, r.choice(words))
            elif edited and op < 0.7:
                del edited[min(i, len(edited) - 1)]
            elif edited:
                j = min(i, len(edited) - 1)
                edited[j] = edited[j].replace(b"1", b"2").replace(b"int", b"str")
        b = b"\n".join(edited) + (b"\n" if r.random() < 0.5 else b"")
        da, db = differing_lines(a, b)
        # a = shared lines + da + shared lines, and b the same with db
        assert len(a) - len(da) == len(b) - len(db)
        splits = [
            k
            for k in range(len(a) - len(da) + 1)
            if a[:k] == b[:k]
            and a[k : k + len(da)] == da
            and b[k : k + len(db)] == db
            and a[k + len(da) :] == b[k + len(db) :]
            and (k == 0 or a[k - 1 : k] == b"\n")
            and a[k + len(da) : k + len(da) + 1] in (b"", b"\n")
        ]
        assert splits, (a, b, da, db)
        assert (count(a) == count(b)) == (count(da) == count(db)), (a, b, da, db)
        assert (da or db) if a != b else True


def test_cli_a_refusing_github_is_a_warning_and_the_other_sources_go_on(
    history: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, httpserver: HTTPServer
) -> None:
    _serve_repo(httpserver)
    httpserver.expect_request("/repos/o/n/labels").respond_with_json(
        {"message": "Bad credentials"}, status=401
    )
    monkeypatch.setenv("GITHUB_API_URL", httpserver.url_for("/").rstrip("/"))
    repo = tmp_path / "repo"
    data = tmp_path / "data"
    mine(repo, data, config=MineConfig(code_metrics=False))
    r = CliRunner().invoke(
        cli,
        ["label", "--repo", str(repo), "--data-dir", str(data), "--github-repo", "o/n",
         "--github-token", "s3cret", "--json"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["fixes"] == 1 and d["buggy"] == 1  # the keyword rule still labels
    assert any(w.startswith("GitHub source skipped:") and "401" in w for w in d["warnings"])
    assert "s3cret" not in r.output
