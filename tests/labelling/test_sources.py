"""Fix sources: developers' words, fixes and labels files, and how they combine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diffrisk.config import LabelConfig, MineConfig
from diffrisk.errors import DataError
from diffrisk.git.repo import open_repo
from diffrisk.labelling.label import label, load_labels, load_links
from diffrisk.labelling.sources import FixEvidence, combine
from diffrisk.labelling.sources.external import parse_date, read_fixes, read_labels
from diffrisk.labelling.sources.words import (
    ShaIndex,
    developer_evidence,
    named_commits,
    read_messages,
)
from diffrisk.mining.mine import mine
from repobuilder import RepoBuilder

A = "a" * 40
B = "b" * 12 + "1" * 28
C = "c0ffee" + "2" * 34


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (f'Revert "x"\n\nThis reverts commit {A}.', [("revert", A)]),
        ('net: fix leak\n\nFixes: bbbbbbbbbbbb ("net: add cache")', [("trailer", "bbbbbbbbbbbb")]),
        ("Fix regression introduced in c0ffee2", [("prose", "c0ffee2")]),
        ("Fix crash caused by commit c0ffee2222", [("prose", "c0ffee2222")]),
        ("Fix bug from #123", [("prose", "#123")]),
        ("Fix parser (#12)", []),  # a squash-merge title names no culprit
        ("broken since abc12", []),  # too short to be a commit id
    ],
)
def test_named_commits(message: str, expected: list[tuple[str, str]]) -> None:
    assert named_commits(message) == expected


def test_sha_index_resolves_unique_abbreviations_only() -> None:
    idx = ShaIndex([A, B, "b" * 12 + "2" * 28])
    assert idx.resolve("aaaaaaa") == A
    assert idx.resolve("bbbbbbb") is None  # two commits start so
    assert idx.resolve("b" * 12 + "1") == B
    assert idx.resolve("aaaaaa") is None  # shorter than 7
    assert idx.resolve("ddddddd") is None


def test_developer_evidence_resolves_shas_and_pull_requests() -> None:
    fix1, fix2, fix3 = "1" * 40, "2" * 40, "3" * 40
    messages = {
        fix1: "Fix the parser\n\nRegression introduced in aaaaaaaa.",
        fix2: "Fix the lexer\n\nThe bug was introduced by #7.",
        fix3: "Fix the docs, added in 1234567 lines",  # a number, not a commit
    }
    subjects = {C: "Rewrite the lexer (#7)", A: "Add parser", fix1: "", fix2: "", fix3: ""}
    evs = developer_evidence(messages, [A, C, fix1, fix2, fix3], subjects)
    assert {e.sha: e.inducing for e in evs} == {fix1: (A,), fix2: (C,)}
    assert all(e.source == "developer" for e in evs)


def test_combine_keeps_every_source_and_the_earliest_date() -> None:
    fixes = combine(
        [
            FixEvidence(A, "file", 200, "P-1"),
            FixEvidence(A, "message"),
            FixEvidence(A, "developer", inducing=(B,)),
            FixEvidence(A, "github", 100, "#3"),
        ]
    )
    f = fixes[A]
    assert f.sources == ["message", "developer", "github", "file"]
    assert f.issue_date == 100 and f.issues == ["P-1", "#3"]
    assert f.inducing == [B] and f.named_by == {B: "developer"}


def test_read_fixes_csv_json_and_jsonl(tmp_path: Path) -> None:
    csv = tmp_path / "f.csv"
    csv.write_text(f"sha,issue_date,issue,inducing\n{A},2021-03-04,P-1,{B} c0ffee2\n{C},,,\n")
    evs = read_fixes(csv)
    assert evs[0] == FixEvidence(A, "file", 1614816000, "P-1", (B, "c0ffee2"))
    assert evs[1] == FixEvidence(C, "file", None, None, ())
    js = tmp_path / "f.json"
    js.write_text(json.dumps([{"sha": A, "issue_date": 1614816000, "inducing": [B]}]))
    assert read_fixes(js) == [FixEvidence(A, "file", 1614816000, None, (B,))]
    jl = tmp_path / "f.jsonl"
    jl.write_text(json.dumps({"sha": A}) + "\n\n" + json.dumps({"sha": C.upper()}) + "\n")
    assert [e.sha for e in read_fixes(jl)] == [A, C]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (f"sha,issue_date\n{A},2021-03-04\n{C},yesterday\n", "line 3, column 'issue_date'"),
        (f"sha\n{A}\nnot-a-sha\n", "line 3, column 'sha'"),
        ("commit\nabc\n", "line 1: no 'sha' column"),
        (f"sha,when\n{A},1\n", "line 2: unknown column 'when'"),
        (f"sha,inducing\n{A},zzz\n", "line 2, column 'inducing'"),
        (f"sha\n{A},extra\n", "line 2: more fields"),
    ],
)
def test_a_malformed_fixes_file_names_line_and_column(
    tmp_path: Path, text: str, where: str
) -> None:
    p = tmp_path / "f.csv"
    p.write_text(text)
    with pytest.raises(DataError) as err:
        read_fixes(p)
    assert where in str(err.value)


def test_read_labels(tmp_path: Path) -> None:
    p = tmp_path / "l.csv"
    p.write_text(f"sha,label\n{A},buggy\n{B},0\n{C},\n")
    df = read_labels(p)
    assert list(df["sha"]) == [A, B, C]
    assert df["label"].tolist()[:2] == [1, 0] and df["label"].isna().tolist() == [
        False,
        False,
        True,
    ]
    p.write_text(f"sha,label\n{A},1\n{A},0\n")
    with pytest.raises(DataError, match=r"line 3, column 'sha'.*labelled again"):
        read_labels(p)
    p.write_text(f"sha,label\n{A},maybe\n")
    with pytest.raises(DataError, match="line 2, column 'label'"):
        read_labels(p)


def test_parse_date() -> None:
    assert parse_date("2021-03-04T00:00:00Z") == 1614816000
    assert parse_date("2021-03-04T01:00:00+01:00") == 1614816000
    assert parse_date("1614816000") == 1614816000
    assert parse_date("") is None
    with pytest.raises(ValueError):
        parse_date("March")


LIB = "def area(w, h):\n    return w * h\n\n\ndef perimeter(w, h):\n    return 2 * (w + h)\n"


def test_developer_links_are_trusted_above_blame(builder: RepoBuilder, tmp_path: Path) -> None:
    b = builder
    b.commit({"lib.py": LIB}, day=0, message="Add lib")
    culprit = b.commit({"cfg.py": "LIMIT = 10\n"}, day=5, message="Add a limit")
    touched = b.commit({"lib.py": LIB.replace("w * h", "h * w")}, day=6, message="Reorder")
    fix = b.commit(
        {"lib.py": LIB.replace("w * h", "w * h * 1")},
        day=200,
        message=f"Correct area\n\nThe bug was introduced in {culprit[:10]}.",
    )
    plain = b.commit({"lib.py": LIB.replace("2 * (w + h)", "2 * w + 2 * h")}, day=210,
                     message="Fix perimeter")  # fmt: skip
    data = tmp_path / "data"
    mine(b.path, data, config=MineConfig(code_metrics=False))
    res = label(b.path, data, LabelConfig(verification_days=0))
    lab = load_labels(data).set_index("sha")
    assert lab.loc[fix, "fix_sources"].tolist() == ["developer"]
    assert lab.loc[plain, "fix_sources"].tolist() == ["message"]
    assert lab.loc[culprit, "label_state"] == "buggy"  # named, though blame cannot see it
    assert lab.loc[touched, "label_state"] == "clean"  # blame's pick for fix is superseded
    links = load_links(data)
    named = links[links["source"] == "developer"]
    assert named[["fix_sha", "inducing_sha"]].values.tolist() == [[fix, culprit]]
    blamed = links[(links["fix_sha"] == fix) & (links["source"] == "szz")]
    assert blamed["dropped"].tolist() == ["superseded"]
    assert res.explicit_links == 1 and res.fixes_by_source == {"developer": 1, "message": 1}


def test_fixes_file_and_labels_file_through_the_label_stage(
    builder: RepoBuilder, tmp_path: Path
) -> None:
    b = builder
    add = b.commit({"lib.py": LIB}, day=0, message="Add lib")
    bug = b.commit({"lib.py": LIB.replace("w * h", "w * h + 1")}, day=5, message="Tweak area")
    fix = b.commit({"lib.py": LIB}, day=200, message="ZOOK-12: area")  # no keyword
    other = b.commit({"x.py": "x = 1\n"}, day=201, message="Add x")
    data = tmp_path / "data"
    mine(b.path, data, config=MineConfig(code_metrics=False))
    fixes = tmp_path / "fixes.csv"
    fixes.write_text(f"sha,issue_date\n{fix[:9]},1970-01-01\n{'d' * 40},\n")
    # the issue was reported before the bug was committed: the date filter drops the link
    res = label(b.path, data, LabelConfig(verification_days=0), evidence=read_fixes(fixes))
    lab = load_labels(data).set_index("sha")
    assert lab.loc[fix, "fix_sources"].tolist() == ["file"] and res.fixes == 1
    assert lab.loc[bug, "label_state"] == "clean"
    assert load_links(data)["dropped"].tolist() == ["after_issue"]
    assert any("1 fix(es) from the file source" in w for w in res.warnings)
    fixes.write_text(f"sha\n{fix}\n")
    label(b.path, data, LabelConfig(verification_days=0), evidence=read_fixes(fixes))
    assert load_labels(data).set_index("sha").loc[bug, "label_state"] == "buggy"
    labels_file = tmp_path / "labels.csv"
    labels_file.write_text(f"sha,label\n{bug},0\n{other[:8]},buggy\n{add},\n")
    label(b.path, data, LabelConfig(verification_days=0), overrides=read_labels(labels_file))
    lab = load_labels(data).set_index("sha")
    assert lab.loc[bug, "label_state"] == "clean" and lab.loc[bug, "label_source"] == "file"
    assert lab.loc[other, "label_state"] == "buggy" and lab.loc[other, "label"] == 1
    assert lab.loc[add, "label_state"] == "unlabelled"
    assert lab.loc[fix, "label_source"] == "szz"


def test_a_keyword_fix_that_changes_no_source_is_not_a_fix(
    builder: RepoBuilder, tmp_path: Path
) -> None:
    b = builder
    b.commit({"lib.py": LIB, "tests/test_lib.py": "def test():\n    assert 1\n"}, day=0)
    stub = b.commit({"lib.pyi": "def area(w: int, h: int) -> int: ...\n"}, day=1, message="Add")
    t = b.commit(
        {"tests/test_lib.py": "def test():\n    assert 2\n"}, day=2, message="Fix wrong value"
    )
    s = b.commit({"lib.pyi": "def area(w: float, h: float) -> float: ...\n"}, day=3,
                 message="Fix stub types")  # fmt: skip
    data = tmp_path / "data"
    mine(b.path, data, config=MineConfig(code_metrics=False))
    res = label(b.path, data, LabelConfig(verification_days=0))
    lab = load_labels(data).set_index("sha")
    assert res.fixes_rejected == 2 and lab.loc[t, "is_fix"] == 0 and lab.loc[s, "is_fix"] == 0
    assert lab.loc[stub, "label_state"] == "clean"
    res = label(b.path, data, LabelConfig(verification_days=0, judge_fix_changes=False))
    assert res.fixes_rejected == 0 and res.fixes == 2


def test_read_messages_gives_full_bodies(builder: RepoBuilder) -> None:
    a = builder.commit({"a.py": "x = 1\n"}, day=0, message="Subject\n\nBody line\nFixes: abc")
    msgs = read_messages(open_repo(builder.path), [a])
    assert msgs[a].startswith("Subject\n\nBody line\nFixes: abc")
    assert read_messages(open_repo(builder.path))[a] == msgs[a]


EXPORT = (
    "Issue key,Issue Type,Status,Resolution,Created\n"
    "ZK-1,Bug,Closed,Fixed,01/Mar/20 10:00 AM\n"
    "ZK-2,Improvement,Closed,Fixed,02/Mar/19 10:00 AM\n"
)


def _jira_history(b: RepoBuilder) -> dict[str, str]:
    c = {"add": b.commit({"lib.py": LIB}, day=0, message="ZK-0. Add lib")}
    c["bug"] = b.commit({"lib.py": LIB.replace("w * h", "w * h + 1")}, day=5, message="ZK-3: tweak")
    c["fix"] = b.commit({"lib.py": LIB}, day=200, message="ZK-1. Memory leak in area")
    c["feature"] = b.commit({"x.py": "x = 1\n"}, day=201, message="ZK-2. Add x")
    return c


def test_jira_export_through_the_cli(builder: RepoBuilder, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from diffrisk.cli import cli

    c = _jira_history(builder)
    export = tmp_path / "bugs.csv"
    export.write_text(EXPORT)
    data = tmp_path / "data"
    mine(builder.path, data, config=MineConfig(code_metrics=False))
    args = ["label", "--repo", str(builder.path), "--data-dir", str(data), "--json"]
    r = CliRunner().invoke(cli, [*args, "--jira-export", str(export)])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["fixes_by_source"] == {"jira": 1}
    lab = load_labels(data).set_index("sha")
    assert lab.loc[c["fix"], "fix_sources"].tolist() == ["jira"]
    assert lab.loc[c["feature"], "is_fix"] == 0
    # ZK-1 was reported on 2020-03-01, after the bug's commit (2020-01-06): the link stands
    assert lab.loc[c["bug"], "label_state"] == "buggy"
    early = tmp_path / "early.csv"  # reported before it: the issue-date filter drops it
    early.write_text(EXPORT.replace("01/Mar/20", "03/Jan/20"))
    r = CliRunner().invoke(cli, [*args, "--jira-export", str(early)])
    assert load_labels(data).set_index("sha").loc[c["bug"], "label_state"] == "clean"
    assert load_links(data)["dropped"].tolist() == ["after_issue"]
    # without the JIRA source the subject names no fix at all
    r = CliRunner().invoke(cli, args)
    assert json.loads(r.stdout)["fixes"] == 0


def test_a_jira_export_in_the_repository_is_read_from_the_trusted_commit(
    builder: RepoBuilder, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from diffrisk.cli import cli

    c = _jira_history(builder)
    builder.commit(
        {".diffrisk.toml": '[label.jira]\nexport = "bugs.csv"\n', "bugs.csv": EXPORT},
        day=202,
        message="Configure JIRA",
    )
    base = builder.head()
    # the work tree (a pull request's checkout) says ZK-2 was a bug too
    (builder.path / "bugs.csv").write_text(EXPORT.replace("ZK-2,Improvement", "ZK-2,Bug"))
    data = tmp_path / "data"
    mine(builder.path, data, config=MineConfig(code_metrics=False))
    args = ["label", "--repo", str(builder.path), "--data-dir", str(data), "--json"]
    r = CliRunner().invoke(cli, [*args, "--config-rev", base])
    assert r.exit_code == 0, r.output
    lab = load_labels(data).set_index("sha")
    assert lab.loc[c["feature"], "is_fix"] == 0 and lab.loc[c["fix"], "is_fix"] == 1
    r = CliRunner().invoke(cli, args)  # the work tree's, as a local run reads it
    assert load_labels(data).set_index("sha").loc[c["feature"], "is_fix"] == 1
