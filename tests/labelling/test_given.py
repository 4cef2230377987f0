"""The blame step alone (`label --fixes FILE --links-out FILE`), and the SZZ rules it shows:
R-SZZ's most recent candidate, the issue-date filter, Python indentation, incidental lines."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from diffrisk.cli import cli
from diffrisk.config import LabelConfig, MineConfig
from diffrisk.errors import DataError
from diffrisk.features.cosmetic import FORMAT, cosmetic_change
from diffrisk.labelling.label import blame_given, label, load_labels, load_links
from diffrisk.labelling.quality import assess, assess_data_dir, render_markdown, wilson
from diffrisk.labelling.sources import FixEvidence
from diffrisk.mining.mine import mine
from repobuilder import RepoBuilder, ts

BASE = """\
def f(x):
    y = 0
    if x:
        y = 1
    log(y)
    return y


def g(a, b):
    return a + b
"""


def kept(links) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(links.loc[links["dropped"].isna(), "inducing_sha"])


def test_most_recent_candidate_and_issue_date(builder: RepoBuilder) -> None:
    b = builder
    b.commit({"m.py": BASE}, day=0, message="add")
    old = b.commit({"m.py": BASE.replace("y = 1", "y = 2")}, day=10, message="two")
    new = b.commit({"m.py": BASE.replace("y = 1", "y = 2").replace("a + b", "a - b")}, day=20)
    fix = b.commit({"m.py": BASE}, day=300, message="fix")
    links = blame_given(b.path, [FixEvidence(fix, "file")])
    assert kept(links) == [new]
    assert dict(zip(links["inducing_sha"], links["dropped"], strict=True)) == {
        old: "not_recent",
        new: None,
    }
    assert set(links["source"]) == {"szz"} and (links["lines"] == 1).all()
    assert links.loc[links["inducing_sha"] == new, "sample"].iloc[0] == ["    return a - b"]
    every = blame_given(b.path, [FixEvidence(fix, "file")], LabelConfig(select="all"))
    assert kept(every) == sorted([old, new])
    # reported on day 15: the day-20 commit came after the report, the day-10 one is left
    dated = blame_given(b.path, [FixEvidence(fix, "file", issue_date=ts(15))])
    assert kept(dated) == [old]
    assert dict(zip(dated["inducing_sha"], dated["dropped"], strict=True))[new] == "after_issue"


def test_python_indentation_is_a_change(builder: RepoBuilder) -> None:
    b = builder
    b.commit({"m.py": BASE}, day=0, message="add")
    # the bug: log(y) moves into the if block, so it logs only when x
    bug = b.commit({"m.py": BASE.replace("    log(y)", "        log(y)")}, day=10)
    fix = b.commit({"m.py": BASE}, day=300, message="fix logging")
    assert kept(blame_given(b.path, [FixEvidence(fix, "file")])) == [bug]
    # with -w everywhere (the old rule) the fix deletes no line at all
    off = blame_given(b.path, [FixEvidence(fix, "file")], LabelConfig(python_indentation=False))
    assert off.empty


def test_a_reindenting_reformat_is_looked_through(builder: RepoBuilder) -> None:
    b = builder
    b.commit({"m.py": BASE}, day=0, message="add")
    bug = b.commit({"m.py": BASE.replace("a + b", "a - b")}, day=10, message="sub")
    # a reformat: two-space indentation, the same AST
    two = BASE.replace("a + b", "a - b").replace("    ", "  ")
    b.commit({"m.py": two}, day=20, message="reformat")
    fix = b.commit({"m.py": two.replace("a - b", "a + b")}, day=300, message="fix g")
    assert kept(blame_given(b.path, [FixEvidence(fix, "file")])) == [bug]


def test_incidental_lines_are_not_blamed(builder: RepoBuilder) -> None:
    b = builder
    first = b.commit({"m.py": BASE}, day=0, message="add")
    imp = b.commit({"m.py": "import os\n__all__ = ['f']\n" + BASE}, day=5, message="imports")
    bug = b.commit(
        {"m.py": "import os\n__all__ = ['f']\n" + BASE.replace("a + b", "a - b  # fast")},
        day=10,
    )
    pragma = b.commit(
        {"m.py": "import os\n__all__ = ['f']\n" + BASE.replace("a + b", "a - b  # fast")
         .replace("log(y)", "log(y)  # pragma: no cover")},
        day=20,
    )  # fmt: skip
    fix = b.commit({"m.py": "__all__ = ['f', 'g']\n" + BASE}, day=300, message="fix g")
    # the fix drops the import, extends __all__ and the pragma, and repairs g: only the
    # repair is blamed (a line whose only change is its trailing comment is unchanged)
    links = blame_given(b.path, [FixEvidence(fix, "file")], LabelConfig(select="all"))
    assert kept(links) == [bug]
    raw = blame_given(
        b.path, [FixEvidence(fix, "file")], LabelConfig(select="all", skip_incidental=False)
    )
    # the pragma commit changed only a comment, so blame looks through it to the first
    assert kept(raw) == sorted([first, imp, bug]) and pragma not in kept(raw)


def test_black_number_normalisation_is_a_reformat() -> None:
    assert cosmetic_change(b"x=0.\ny=.5\nz=0XFF\n", b"x = 0.0\ny = 0.5\nz = 0xFF\n") == FORMAT
    assert cosmetic_change(b"x=0.\n", b"x = 0.1\n") is None


def test_named_links_in_a_fixes_file_and_unknown_fixes(builder: RepoBuilder) -> None:
    b = builder
    first = b.commit({"m.py": BASE}, day=0, message="add")
    new = b.commit({"m.py": BASE.replace("a + b", "a - b")}, day=10, message="sub")
    fix = b.commit({"m.py": BASE}, day=300, message="fix")
    links = blame_given(b.path, [FixEvidence(fix, "file", inducing=(first[:8],))])
    rows = {(r.source, r.inducing_sha): r.dropped for r in links.itertuples()}
    assert rows == {("file", first): None, ("szz", new): "superseded"}
    with pytest.raises(DataError, match="1 fix\\(es\\) are not commits"):
        blame_given(b.path, [FixEvidence("e" * 40, "file")])


def test_cli_links_out(builder: RepoBuilder, tmp_path: Path) -> None:
    b = builder
    b.commit({"m.py": BASE}, day=0, message="add")
    bug = b.commit({"m.py": BASE.replace("a + b", "a - b")}, day=10, message="sub")
    fix = b.commit({"m.py": BASE}, day=300, message="fix")
    fixes = tmp_path / "fixes.csv"
    fixes.write_text(f"sha,issue_date\n{fix},\n")
    out = tmp_path / "links.csv"
    r = CliRunner().invoke(
        cli, ["label", "--repo", str(b.path), "--fixes", str(fixes), "--links-out", str(out)]
    )
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(out.open()))
    assert [(x["fix_sha"], x["inducing_sha"], x["dropped"]) for x in rows] == [(fix, bug, "")]
    assert json.loads(rows[0]["sample"]) == ["    return a - b"]
    assert not (b.path / ".diffrisk").exists()  # no dataset was needed or written
    r = CliRunner().invoke(
        cli,
        ["label", "--repo", str(b.path), "--fixes", str(fixes), "--links-out", "-", "--json"],
    )
    assert r.exit_code == 0 and r.stdout.startswith("fix_sha,inducing_sha")
    r = CliRunner().invoke(cli, ["label", "--repo", str(b.path), "--links-out", "x.csv"])
    assert r.exit_code == 2 and "--links-out needs --fixes" in r.output


def test_quality_report(builder: RepoBuilder, tmp_path: Path) -> None:
    b = builder
    b.commit({"m.py": BASE}, day=0, message="add")
    culprit = b.commit({"m.py": BASE.replace("a + b", "a - b")}, day=10, message="sub")
    b.commit({"n.py": "z = 1\n"}, day=11, message="add n")
    b.commit(
        {"m.py": BASE},
        day=300,
        message=f"Correct g\n\nRegression introduced in {culprit[:9]}.",
    )
    data = tmp_path / "data"
    mine(b.path, data, config=MineConfig(code_metrics=False))
    label(b.path, data, LabelConfig(verification_days=0))
    q = assess_data_dir(data)
    assert q.fixes == 1 and q.fixes_by_source == {"developer": 1}
    assert q.source_changes == 4 and q.fix_share == 0.25
    a = q.agreement
    assert a is not None and (a.fixes, a.named_links, a.blamed_links, a.common) == (1, 1, 1, 1)
    assert a.precision == 1.0 and a.recall == 1.0
    text = render_markdown(q)
    assert "developer: 1" in text and "precision 1.00" in text
    r = CliRunner().invoke(
        cli, ["label", "--repo", str(b.path), "--data-dir", str(data), "--report", "--json"]
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["quality"]["agreement"]["common"] == 1


def test_quality_warns_on_implausible_fix_share(builder: RepoBuilder, tmp_path: Path) -> None:
    b = builder
    for i in range(60):  # features titled as fixes
        b.commit({f"f{i}.py": f"x = {i}\n"}, day=i, message=f"Fix #{i}: add feature {i}")
    data = tmp_path / "data"
    mine(b.path, data, config=MineConfig(code_metrics=False))
    label(b.path, data, LabelConfig(verification_days=0))
    q = assess_data_dir(data)
    assert q.fix_share == 1.0 and any("too many to be only fixes" in w for w in q.warnings)
    # the same history with fixes that are a plausible share: no warning
    labels = load_labels(data)
    labels.loc[labels.index[6:], "is_fix"] = 0
    assert assess(labels, load_links(data)).warnings == []


def test_wilson_interval() -> None:
    lo, hi = wilson(8, 10) or (0, 0)
    assert round(lo, 3) == 0.490 and round(hi, 3) == 0.943
    assert wilson(0, 0) is None


def test_a_fix_that_only_adds_blames_the_lines_around_it(builder: RepoBuilder) -> None:
    b = builder
    body = "def load(path):\n    data = read(path)\n    return parse(data)\n"
    first = b.commit({"io.py": body}, day=0, message="add load")
    # the bug: parse the raw data without checking it
    bug = b.commit({"io.py": body.replace("parse(data)", "parse(data, strict=True)")}, day=10)
    fixed = body.replace("parse(data)", "parse(data, strict=True)").replace(
        "    return", "    if not data:\n        return None\n    return"
    )
    fix = b.commit({"io.py": fixed}, day=300, message="fix crash on empty files")
    on = LabelConfig(blame_additions=True)
    links = blame_given(b.path, [FixEvidence(fix, "file")], on.model_copy(update={"select": "all"}))
    # inserted between line 2 (first's) and line 3 (bug's): both are candidates
    assert kept(links) == sorted([first, bug])
    assert kept(blame_given(b.path, [FixEvidence(fix, "file")], on)) == [bug]  # the most recent
    off = blame_given(b.path, [FixEvidence(fix, "file")])  # the default: off
    assert off.empty
