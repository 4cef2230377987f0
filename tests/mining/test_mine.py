"""Mining on real repositories whose features were worked out by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from diffrisk.cli import cli
from diffrisk.config import MineConfig
from diffrisk.mining.mine import mine
from repobuilder import RepoBuilder

YEAR_DAYS = 365.25


def rows(data: Path) -> dict[str, dict]:
    df = pd.read_parquet(data / "changes.parquet")
    return {r["sha"]: r for r in df.to_dict("records")}


@pytest.fixture
def history(builder: RepoBuilder) -> tuple[RepoBuilder, dict[str, str]]:
    """Seven non-merge commits and one merge; see the expectations in test_features_by_hand."""
    b = builder
    c = {}
    c["c1"] = b.commit(
        {"a.py": "1\n2\n3\n", "src/b.py": "x\n"}, author="ann", day=0, message="initial"
    )
    c["c2"] = b.commit(
        {"a.py": "1\nX\n3\n4\n", "docs/readme.md": "d\ne\n"},
        author="bob",
        day=1,
        message="Fix crash in parser",
    )
    c["c3"] = b.commit(
        {"src/b.py": "x\ny\n"},
        rename={"a.py": "src/a2.py"},
        author="ann",
        day=3,
        message="refactor",
    )
    c["c4"] = b.commit(
        {"src/a2.py": "1\nX\n3\n4\n5\n", "img.png": b"\x89PNG\x00\x01\x02"},
        author="carol",
        day=10,
        message="add image",
    )
    b.branch("feat")
    c["c5"] = b.commit(
        {"src/a2.py": "0\nX\n3\n4\n5\n"}, author="bob", day=12, message="Fixed wrong value"
    )
    b.checkout("feat")
    c["c6"] = b.commit(
        {"src/a2.py": "1\nX\n3\n4\n5\n6\n"}, author="dave", day=11, message="append six"
    )
    b.checkout("main")
    c["m"] = b.merge("feat", author="ann", day=13)
    c["c7"] = b.commit(
        {"src/a2.py": "0\nX\nthree\n4\n5\n6\n"}, author="ann", day=14, message="spell three"
    )
    return b, c


def test_features_by_hand(history, tmp_path: Path) -> None:
    b, c = history
    mine(b.path, tmp_path / "d", config=MineConfig(code_metrics=False))
    r = rows(tmp_path / "d")
    assert set(r) == {
        c[k] for k in ("c1", "c2", "c3", "c4", "c5", "c6", "c7")
    }  # the merge has no row

    def check(key: str, **expected: float) -> None:
        row = r[c[key]]
        for col, want in expected.items():
            got = row[col]
            if isinstance(want, float):
                assert got == pytest.approx(want, abs=1e-6), (key, col, got, want)
            else:
                assert got == want, (key, col, got, want)

    h = lambda *p: -sum(x * math.log2(x) for x in p)  # noqa: E731
    check(
        "c1",
        ns=2,
        nd=2,
        nf=2,
        la=4,
        ld=0,
        lt=0,
        entropy=h(0.75, 0.25),
        fix=0,
        ndev=0,
        age=0.0,
        nuc=0,
        exp=0,
        rexp=0.0,
        sexp=0,
        pfix=0,
        author_email="ann@example.com",
    )
    check(
        "c2",
        ns=2,
        nd=2,
        nf=2,
        la=4,
        ld=1,
        lt=3,
        entropy=h(0.6, 0.4),
        fix=1,
        ndev=1,
        age=0.5,
        nuc=1,
        exp=0,
        rexp=0.0,
        sexp=0,
        pfix=0,
    )
    check(
        "c3",
        ns=1,
        nd=1,
        nf=2,
        la=1,
        ld=0,
        lt=5,
        entropy=0.0,
        fix=0,
        ndev=2,
        age=2.5,
        nuc=2,
        exp=1,
        rexp=1 / (1 + 3 / YEAR_DAYS),
        sexp=1,
        pfix=1,
    )
    check(
        "c4",
        ns=2,
        nd=2,
        nf=2,
        la=1,
        ld=0,
        lt=4,
        entropy=0.0,
        fix=0,
        binary_files=1,
        ndev=2,
        age=3.5,
        nuc=3,
        exp=0,
        rexp=0.0,
        sexp=0,
        pfix=1,
    )
    # c5 and c6 are on parallel branches: neither is a prior commit of the other
    check(
        "c5",
        nf=1,
        la=1,
        ld=1,
        lt=5,
        fix=1,
        ndev=3,
        age=2.0,
        nuc=4,
        exp=1,
        rexp=1 / (1 + 11 / YEAR_DAYS),
        sexp=0,
        pfix=1,
    )
    check(
        "c6", nf=1, la=1, ld=0, lt=5, fix=0, ndev=3, age=1.0, nuc=4, exp=0, rexp=0.0, sexp=0, pfix=1
    )
    # c7 edits the blob the merge created (never seen in a diff): LT reads it, 6 lines
    check(
        "c7",
        nf=1,
        la=1,
        ld=1,
        lt=6,
        ndev=4,
        age=2.0,
        nuc=6,
        exp=2,
        rexp=1 / (1 + 14 / YEAR_DAYS) + 1 / (1 + 11 / YEAR_DAYS),
        sexp=2,
        pfix=2,
    )
    assert r[c["c1"]]["author_time"] == pd.Timestamp("2020-01-01", tz="UTC")

    files = pd.read_parquet(tmp_path / "d" / "files.parquet")
    ren = files[(files.sha == c["c3"]) & (files.path == "src/a2.py")].iloc[0]
    assert (ren.status, ren.old_path, ren.la, ren.ld, ren.lines_before, ren.lines_after) == (
        "R",
        "a.py",
        0,
        0,
        4,
        4,
    )
    png = files[files.path == "img.png"].iloc[0]
    assert bool(png.binary) and png.la == 0 and png.lines_after == 0


def test_numstat_agrees_with_git(history, tmp_path: Path) -> None:
    b, _ = history
    mine(b.path, tmp_path / "d", config=MineConfig(code_metrics=False))
    r = rows(tmp_path / "d")
    out = b.run("log", "--no-merges", "--numstat", "--format=@%H")
    expect: dict[str, list[int]] = {}
    cur = ""
    for line in out.splitlines():
        if line.startswith("@"):
            cur = line[1:]
            expect[cur] = [0, 0, 0]
        elif line.strip():
            a, d, _ = line.split("\t", 2)
            expect[cur][0] += 0 if a == "-" else int(a)
            expect[cur][1] += 0 if d == "-" else int(d)
            expect[cur][2] += 1
    assert {s: [v["la"], v["ld"], v["nf"]] for s, v in r.items()} == expect


def test_incremental_equals_scratch(history, tmp_path: Path) -> None:
    b, _ = history
    cfg = MineConfig(code_metrics=True, workers=1)
    first = mine(b.path, tmp_path / "inc", config=cfg)
    assert first.new_commits == 7
    again = mine(b.path, tmp_path / "inc", config=cfg)
    assert again.new_commits == 0
    b.commit(
        {"src/new.py": "def f(x):\n    if x:\n        return 1\n    return 2\n"},
        author="erin",
        day=20,
        message="add f",
    )
    b.commit({"src/a2.py": None}, author="bob", day=21, message="drop a2")
    third = mine(b.path, tmp_path / "inc", config=cfg)
    assert third.new_commits == 2 and third.commits == 9
    mine(b.path, tmp_path / "scratch", config=cfg)
    inc = (
        pd.read_parquet(tmp_path / "inc" / "changes.parquet")
        .sort_values("sha")
        .reset_index(drop=True)
    )
    scratch = (
        pd.read_parquet(tmp_path / "scratch" / "changes.parquet")
        .sort_values("sha")
        .reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(inc, scratch)
    fi = (
        pd.read_parquet(tmp_path / "inc" / "files.parquet")
        .sort_values(["sha", "path"])
        .reset_index(drop=True)
    )
    fs = (
        pd.read_parquet(tmp_path / "scratch" / "files.parquet")
        .sort_values(["sha", "path"])
        .reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(fi, fs)


def test_interrupted_write_keeps_previous_dataset(history, tmp_path: Path, monkeypatch) -> None:
    import pyarrow.parquet as pq

    b, _ = history
    data = tmp_path / "d"
    mine(b.path, data, config=MineConfig(code_metrics=False))
    before = pd.read_parquet(data / "changes.parquet")
    b.commit({"src/b.py": "changed\n"}, author="ann", day=30, message="more")

    real = pq.write_table
    calls = {"n": 0}

    def crash_on_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(pq, "write_table", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        mine(b.path, data, config=MineConfig(code_metrics=False))
    monkeypatch.setattr(pq, "write_table", real)
    assert sorted(p.name for p in data.iterdir()) == [
        ".gitignore",  # the data stays out of git
        "blob_metrics.parquet",
        "changes.parquet",
        "files.parquet",
        "meta.json",
    ]
    pd.testing.assert_frame_equal(pd.read_parquet(data / "changes.parquet"), before)
    res = mine(b.path, data, config=MineConfig(code_metrics=False))
    assert res.new_commits == 1 and res.commits == 8


def test_the_data_directory_inside_a_work_tree_stays_out_of_git(builder: RepoBuilder) -> None:
    builder.commit({"a.py": "a = 1\n"}, day=0)
    builder.commit({"a.py": "a = 2\n"}, day=1)
    res = CliRunner().invoke(cli, ["mine", "--repo", str(builder.path), "-q"])
    assert res.exit_code == 0, res.output
    assert (builder.path / ".diffrisk" / "changes.parquet").exists()
    assert builder.run("status", "--porcelain", "--untracked-files=all") == ""


def test_the_ignore_file_only_goes_into_a_directory_of_diffrisks_own(
    builder: RepoBuilder, tmp_path: Path
) -> None:
    builder.commit({"a.py": "a = 1\n"}, day=0)
    repo = str(builder.path)
    # the work tree's root as the data directory: no `*` that would hide the repository
    res = CliRunner().invoke(cli, ["mine", "--repo", repo, "--data-dir", repo, "-q"])
    assert res.exit_code == 0, res.output
    assert (builder.path / "changes.parquet").exists()
    assert not (builder.path / ".gitignore").exists()
    # nor does a rebuild swap its own in over the repository's
    builder.commit({".gitignore": "*.log\n"}, day=1)
    res = CliRunner().invoke(cli, ["mine", "--repo", repo, "--data-dir", repo, "--rebuild", "-q"])
    assert res.exit_code == 0, res.output
    assert (builder.path / ".gitignore").read_text() == "*.log\n"
    assert builder.run("status", "--porcelain", "--", ".gitignore", "a.py") == ""
    # a folder that already holds other files: left as it is
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("x\n")
    res = CliRunner().invoke(cli, ["mine", "--repo", repo, "--data-dir", str(notes), "-q"])
    assert res.exit_code == 0, res.output
    assert (notes / "meta.json").exists() and not (notes / ".gitignore").exists()
    # a new directory, or an empty one: diffrisk's alone, so ignored (also when rebuilt)
    for d in (tmp_path / "new" / "data", tmp_path / "empty"):
        if d.name == "empty":
            d.mkdir()
        res = CliRunner().invoke(cli, ["mine", "--repo", repo, "--data-dir", str(d), "-q"])
        assert res.exit_code == 0, res.output
        assert (d / ".gitignore").read_text().splitlines()[-1] == "*"
    rebuilt = tmp_path / "rebuilt"
    res = CliRunner().invoke(cli, ["mine", "--repo", repo, "--data-dir", str(rebuilt), "--rebuild"])
    assert res.exit_code == 0, res.output
    assert (rebuilt / ".gitignore").read_text().splitlines()[-1] == "*"
