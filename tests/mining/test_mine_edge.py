"""Mining on awkward real histories: odd files, missing objects, bad repositories."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from diffrisk.cli import cli
from diffrisk.config import MineConfig
from diffrisk.errors import NotAGitRepositoryError
from diffrisk.git.repo import open_repo
from diffrisk.mining.mine import mine
from repobuilder import RepoBuilder


def changes(data: Path) -> pd.DataFrame:
    return pd.read_parquet(data / "changes.parquet").set_index("sha")


def files(data: Path) -> pd.DataFrame:
    return pd.read_parquet(data / "files.parquet")


def test_mailmap_and_lowercase(builder: RepoBuilder, tmp_path: Path) -> None:
    b = builder
    b.commit({".mailmap": "Ann <ann@example.com> <Ann.Old@Example.COM>\n"}, author="ann", day=0)
    c2 = b.commit({"x.txt": "1\n"}, author="ann", email="Ann.Old@Example.COM", day=1)
    c3 = b.commit({"x.txt": "2\n"}, author="ann", email="ANN@example.com", day=2)
    mine(b.path, tmp_path / "d", config=MineConfig(code_metrics=False))
    df = changes(tmp_path / "d")
    assert df.loc[c2, "author_email"] == "ann@example.com"
    assert df.loc[c3, "exp"] == 2  # all three commits are one developer


def test_odd_files(builder: RepoBuilder, tmp_path: Path) -> None:
    b = builder
    b.commit({"ok.py": "x = 1\n"}, day=0)
    # a non-UTF-8 file name and Latin-1 content, a symlink, an empty commit
    latin = "caf\xe9.txt".encode("latin-1")
    (b.path / os.fsdecode(latin)).write_bytes(b"\xe9t\xe9\nline\n")
    b.repo.git.add("-A")
    c_latin = b.commit(day=1, message="latin")
    os.symlink("ok.py", b.path / "link.py")
    b.repo.git.add("link.py")
    c_link = b.commit(day=2, message="link")
    c_empty = b.commit(day=3, message="nothing", allow_empty=True)
    # a submodule pointer (gitlink) added without a .gitmodules checkout
    b.repo.git.update_index("--add", "--cacheinfo", f"160000,{c_latin},vendor/sub")
    c_sub = b.commit(day=4, message="add submodule")
    # Python 2 source: no metrics, but the commit is mined and counted
    c_py2 = b.commit({"old.py": "print 'hello'\n"}, day=5, message="py2")
    mine(b.path, tmp_path / "d", config=MineConfig(code_metrics=True, workers=1))
    df = changes(tmp_path / "d")
    f = files(tmp_path / "d")
    assert df.loc[c_latin, ["nf", "la"]].tolist() == [1, 2]
    assert f[f.sha == c_latin].path.iloc[0].startswith("caf")
    assert df.loc[c_link, ["nf", "la"]].tolist() == [1, 1]
    assert df.loc[c_empty, ["nf", "la", "ld", "lt", "ns", "nd"]].tolist() == [0, 0, 0, 0, 0, 0]
    assert df.loc[c_empty, "entropy"] == 0.0
    assert df.loc[c_sub, "nf"] == 1 and df.loc[c_sub, "lt"] == 0
    assert df.loc[c_py2, "unparsable_files"] == 1 and df.loc[c_py2, "py_files"] == 1
    row = f[f.sha == c_py2].iloc[0]
    assert bool(row.parse_error) and pd.isna(row.cc_after)


def test_a_python_file_over_the_size_cap_is_reported_as_such(
    builder: RepoBuilder, tmp_path: Path
) -> None:
    from diffrisk.features.codemetrics import MAX_BLOB_BYTES

    b = builder
    b.commit({"ok.py": "x = 1\n"}, day=0)
    line = f"v = '{'a' * 1000}'\n"
    big = line * (MAX_BLOB_BYTES // len(line) + 10)  # valid Python, just over the cap
    c_big = b.commit({"gen/table.py": big}, day=1, message="generated table")
    c_py2 = b.commit({"old.py": "print 'hello'\n"}, day=2, message="py2")
    res = mine(b.path, tmp_path / "d", config=MineConfig(code_metrics=True, workers=1))
    df = changes(tmp_path / "d")
    assert df.loc[c_big, "unparsable_files"] == 1 and df.loc[c_py2, "unparsable_files"] == 1
    said = " ".join(res.warnings)
    assert "1 Python file changes could not be parsed (Python 2 or syntax errors)" in said
    assert (
        "1 source file changes were not measured: a version is over the code metrics' size "
        f"cap of {MAX_BLOB_BYTES:,} bytes"
    ) in said


def test_code_metrics_by_hand(builder: RepoBuilder, tmp_path: Path) -> None:
    b = builder
    v1 = "def f(x):\n    return x\n\n\ndef g(y):\n    if y:\n        return 1\n    return 2\n"
    # f gains two branches (cc 1 -> 3); g untouched (cc 2)
    v2 = "def f(x):\n    if x > 1:\n        return 2\n    elif x:\n        return 1\n    return x\n\n\ndef g(y):\n    if y:\n        return 1\n    return 2\n"
    c1 = b.commit({"m.py": v1, "notes.txt": "n\n"}, day=0)
    c2 = b.commit({"m.py": v2}, day=1)
    mine(b.path, tmp_path / "d", config=MineConfig(code_metrics=True, workers=1))
    df = changes(tmp_path / "d")
    # radon total complexity: module 1 + (f-1) + (g-1): v1 = 1 + 0 + 1 = 2, v2 = 1 + 2 + 1 = 4
    assert df.loc[c1, "cc_delta"] == 2.0
    assert df.loc[c2, "cc_delta"] == 2.0
    assert df.loc[c1, "cc_max_touched"] == 2.0  # both functions are new; g has cc 2
    assert df.loc[c2, "cc_max_touched"] == 3.0  # only f changed
    assert df.loc[c2, "py_files"] == 1 and df.loc[c1, "py_files"] == 1
    assert 0 < df.loc[c2, "mi_after"] <= 100 and df.loc[c2, "mi_before"] == df.loc[c1, "mi_after"]
    assert df.loc[c2, "hv_delta"] > 0


def test_huge_commit_flag(builder: RepoBuilder, tmp_path: Path) -> None:
    b = builder
    small = b.commit({"a.txt": "1\n"}, day=0)
    big = b.commit({f"vendor/f{i}.txt": "x\n" * 5 for i in range(6)}, day=1, message="vendor drop")
    mine(b.path, tmp_path / "d", config=MineConfig(code_metrics=False, huge_commit_files=5))
    df = changes(tmp_path / "d")
    assert bool(df.loc[big, "huge"]) and not bool(df.loc[small, "huge"])


def test_bare_repository_mines_like_work_tree(builder: RepoBuilder, tmp_path: Path) -> None:
    b = builder
    b.commit({"a.py": "a = 1\n"}, day=0)
    b.commit({"a.py": "a = 2\n", "b/c.py": "c = 3\n"}, author="bob", day=1)
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(b.path), str(bare)], check=True)
    mine(b.path, tmp_path / "w", config=MineConfig(code_metrics=False))
    mine(bare, tmp_path / "b", config=MineConfig(code_metrics=False))
    pd.testing.assert_frame_equal(
        changes(tmp_path / "w").sort_index(), changes(tmp_path / "b").sort_index()
    )


def test_missing_objects_are_marked_not_fatal(builder: RepoBuilder, tmp_path: Path) -> None:
    b = builder
    b.commit({"keep.txt": "1\n", "big.txt": "a\n"}, day=0)
    c2 = b.commit({"big.txt": "a\nb\n", "keep.txt": "1\n2\n"}, day=1)
    c3 = b.commit({"big.txt": "a\nb\nc\n"}, day=2)
    c4 = b.commit({"keep.txt": "1\n2\n3\n"}, day=3)
    lost = b.repo.git.rev_parse(f"{c2}:big.txt")
    (b.path / ".git" / "objects" / lost[:2] / lost[2:]).unlink()
    res = mine(b.path, tmp_path / "d", config=MineConfig(code_metrics=False))
    df = changes(tmp_path / "d")
    assert len(df) == 4
    assert df.loc[c2, "unknown_files"] == 1 and df.loc[c2, "la"] == 1  # keep.txt still counted
    assert df.loc[c3, "unknown_files"] == 1 and df.loc[c3, "la"] == 0
    assert df.loc[c4, "unknown_files"] == 0 and df.loc[c4, ["la", "lt"]].tolist() == [1, 2]
    assert res.unknown_files == 2 and any("missing" in w for w in res.warnings)
    # mined again with nothing new: the counts stand, the warning is not repeated
    again = mine(b.path, tmp_path / "d", config=MineConfig(code_metrics=False))
    assert again.unknown_files == 2 and not any("missing" in w for w in again.warnings)


def test_a_partial_clone_whose_remote_is_gone_is_mined_with_unknown_counts(
    builder: RepoBuilder, tmp_path: Path
) -> None:
    b = builder
    b.run("config", "uploadpack.allowFilter", "true")
    lines = "".join(f"{i}\n" for i in range(40))
    mailmap = "Ann <ann@example.com> <ann.old@example.com>\n"
    c1 = b.commit({"a.py": lines, "n.txt": "1\n", ".mailmap": mailmap}, day=0)
    # a rename with an edit: detecting it would read the two blobs the clone lacks
    c2 = b.commit({"b.py": lines + "x\n", "n.txt": "1\n2\n"}, rename={"a.py": "b.py"}, day=1)
    c3 = b.commit({"b.py": lines + "x\ny\n", "n.txt": "1\n2\n3\n", "c.py": "c = 1\n"}, day=2)
    clone, bare = tmp_path / "clone", tmp_path / "bare"
    for args in ([str(clone)], ["--no-checkout", str(bare)]):
        url = f"file://{b.path}"
        subprocess.run(["git", "clone", "-q", "--filter=blob:none", url, *args], check=True)
    # clone's checkout fetched HEAD's blobs, and only those; bare has no blob at all
    b.path.rename(tmp_path / "moved")  # the promisor remote is gone
    code, out = _cli("mine", "--repo", str(clone), "--data-dir", str(tmp_path / "d"), "-q")
    assert code == 0, out
    assert "7 file changes have unknown line counts" in " ".join(out.split())
    df = changes(tmp_path / "d")
    assert df.index.tolist() == [c1, c2, c3]
    # c2 without rename detection: a.py deleted and b.py added, both unknown
    assert df["unknown_files"].tolist() == [2, 3, 2]
    f = files(tmp_path / "d").set_index(["sha", "path"])
    assert f.loc[(c2, "a.py"), "status"] == "D" and f.loc[(c2, "b.py"), "status"] == "A"
    # c.py's blob came with the checkout: counted
    assert not f.loc[(c3, "c.py"), "unknown"] and f.loc[(c3, "c.py"), "la"] == 1
    assert f.loc[(c3, "b.py"), "unknown"] and f.loc[(c3, "n.txt"), "unknown"]
    # scoring needs the diff itself: a clear error, not git's bare one
    code, out = _cli(
        "score", "--repo", str(clone), "--data-dir", str(tmp_path / "d"), "--base", c1, "--head", c3
    )
    assert code == 2 and "this partial clone lacks file contents" in out and "hint:" in out
    # without any blob (not even the .mailmap's) nothing adds a known line, and
    # labelling still runs
    for cmd in ("mine", "label"):
        code, out = _cli(cmd, "--repo", str(bare), "--data-dir", str(tmp_path / "b"), "-q")
        assert code == 0, out
        if cmd == "mine":
            assert "the .mailmap of the commit is missing" in " ".join(out.split())
    assert changes(tmp_path / "b")["unknown_files"].tolist() == [3, 3, 3]


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_clear_errors(tmp_path: Path, builder: RepoBuilder) -> None:
    code, out = _cli("mine", "--repo", str(tmp_path / "nope"), "--quiet")
    assert code == 2 and "does not exist" in out and "Traceback" not in out
    plain = tmp_path / "plain"
    plain.mkdir()
    code, out = _cli("mine", "--repo", str(plain), "--quiet")
    assert code == 2 and "is not a git repository" in out and "hint:" in out
    empty = tmp_path / "empty"
    subprocess.run(["git", "init", "-q", str(empty)], check=True)
    code, out = _cli("mine", "--repo", str(empty), "--quiet")
    assert code == 2 and "no commits yet" in out
    builder.commit({"a": "1\n"}, day=0)
    (builder.path / "sub").mkdir()
    # the library is strict about a directory inside a work tree ...
    with pytest.raises(NotAGitRepositoryError) as err:
        open_repo(builder.path / "sub")
    flat = " ".join(str(err.value).split()) + " " + str(err.value.hint)
    assert "inside the repository" in flat and "not its top level" in flat
    assert f"--repo {builder.path.resolve()}" in flat
    # ... the CLI, like git, takes it for the work tree: data and config at the top level
    code, out = _cli("mine", "--repo", str(builder.path / "sub"), "--quiet")
    assert code == 0, out
    assert (builder.path / ".diffrisk" / "changes.parquet").exists()
    assert not (builder.path / "sub" / ".diffrisk").exists()
    builder.commit({"a": "2\n"}, day=1)
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{builder.path}", str(shallow)], check=True
    )
    code, out = _cli("mine", "--repo", str(shallow), "--quiet")
    assert code == 2 and "shallow clone" in out and "fetch-depth: 0" in out and "--unshallow" in out
    code, out = _cli("mine", "--repo", str(builder.path), "--rev", "no-such-branch", "--quiet")
    assert code == 2 and "no-such-branch" in out


def test_cli_json_and_corrupt_dataset(builder: RepoBuilder, tmp_path: Path) -> None:
    import json

    builder.commit({"a.py": "x = 1\n"}, day=0)
    data = tmp_path / "d"
    code, out = _cli(
        "mine", "--repo", str(builder.path), "--data-dir", str(data), "--json", "--no-code-metrics"
    )
    assert code == 0, out
    assert json.loads(out)["commits"] == 1
    (data / "changes.parquet").write_bytes(b"garbage")
    code, out = _cli(
        "mine", "--repo", str(builder.path), "--data-dir", str(data), "--json", "--no-code-metrics"
    )
    assert code == 0, out
    res = json.loads(out)
    assert res["full_rebuild"] and "corrupt" in res["reason"] and res["new_commits"] == 1


def test_stream_stops_git_when_the_consumer_stops_early(builder: RepoBuilder) -> None:
    import gc
    import threading

    from diffrisk.git.repo import open_repo
    from diffrisk.mining.mine import rev_list, stream_records

    for day in range(30):
        builder.commit({f"f{day % 7}.txt": f"{day}\n" * (day + 1)}, day=day)
    repo = open_repo(builder.path)
    shas = [sha for sha, _ in rev_list(repo, "HEAD")]
    before = threading.active_count()
    stream = stream_records(repo, shas)
    first = next(stream)
    assert first.sha == shas[0]
    stream.close()  # must kill git and join its reader threads, not hang
    gc.collect()
    assert threading.active_count() == before
    assert [r.sha for r in stream_records(repo, shas)] == shas


def test_another_repositorys_data_dir_is_refused(tmp_path: Path) -> None:
    a, b = RepoBuilder(tmp_path / "a"), RepoBuilder(tmp_path / "b")
    a.commit({"a.py": "a = 1\n"}, day=0)
    b.commit({"b.py": "b = 1\n"}, day=0)
    data = tmp_path / "d"
    mine(a.path, data, config=MineConfig(code_metrics=False))
    before = pd.read_parquet(data / "changes.parquet")
    for cfg in (
        MineConfig(code_metrics=False),
        MineConfig(code_metrics=True),
    ):  # same or other settings
        code, out = _cli("mine", "--repo", str(b.path), "--data-dir", str(data), "--quiet",
                         *(["--no-code-metrics"] if not cfg.code_metrics else []))  # fmt: skip
        assert code == 2 and "another repository" in out and "--rebuild" in out
    pd.testing.assert_frame_equal(pd.read_parquet(data / "changes.parquet"), before)
    code, out = _cli("mine", "--repo", str(b.path), "--data-dir", str(data), "--quiet", "--rebuild")
    assert code == 0, out
    assert pd.read_parquet(data / "changes.parquet")["sha"].tolist() == [b.head()]


def test_corrupt_meta_is_rebuilt(builder: RepoBuilder, tmp_path: Path) -> None:
    import json

    builder.commit({"a.py": "x = 1\n"}, day=0)
    data = tmp_path / "d"
    mine(builder.path, data, config=MineConfig(code_metrics=False))
    (data / "meta.json").write_text("{not json")
    code, out = _cli(
        "mine", "--repo", str(builder.path), "--data-dir", str(data), "--json", "--no-code-metrics"
    )
    assert code == 0, out
    assert json.loads(out)["full_rebuild"] is True


def test_two_git_processes_give_the_same_stream(builder: RepoBuilder) -> None:
    from diffrisk.git.repo import open_repo
    from diffrisk.mining.mine import rev_list, stream_records

    for day in range(12):
        builder.commit({f"f{day % 4}.txt": f"{day}\n" * (day + 1), "keep.txt": f"{day}\n"}, day=day)
    repo = open_repo(builder.path)
    shas = [sha for sha, _ in rev_list(repo, "HEAD")]
    one = [
        (r.sha, [(f.path, f.la, f.ld, f.new_blob) for f in r.files])
        for r in stream_records(repo, shas)
    ]
    two = [
        (r.sha, [(f.path, f.la, f.ld, f.new_blob) for f in r.files])
        for r in stream_records(repo, shas, parallel_min=2)
    ]
    assert one == two and [s for s, _ in two] == shas
    # a blob missing in the first half: that commit is rebuilt, both halves still complete
    lost = builder.repo.git.rev_parse(f"{shas[2]}:f2.txt")
    (builder.path / ".git" / "objects" / lost[:2] / lost[2:]).unlink()
    recs = list(stream_records(repo, shas, parallel_min=2))
    assert [r.sha for r in recs] == shas
    assert any(f.unknown for f in recs[2].files) and not any(f.unknown for f in recs[-1].files)
    # stopping early stops both processes
    stream = stream_records(repo, shas, parallel_min=2)
    next(stream)
    stream.close()


def test_code_metrics_are_opt_in(builder: RepoBuilder, tmp_path: Path) -> None:
    c = builder.commit({"m.py": "def f(x):\n    if x:\n        return 1\n    return 2\n"}, day=0)
    code, out = _cli("mine", "--repo", str(builder.path), "--data-dir", str(tmp_path / "a"), "-q")
    assert code == 0, out
    assert pd.isna(changes(tmp_path / "a").loc[c, "cc_delta"])  # off by default: fast
    code, out = _cli(
        "mine",
        "--repo",
        str(builder.path),
        "--data-dir",
        str(tmp_path / "b"),
        "-q",
        "--code-metrics",
    )
    assert code == 0, out
    assert changes(tmp_path / "b").loc[c, "cc_delta"] == 2  # one function, one branch


def test_a_subdirectory_is_its_own_work_tree_even_inside_a_git_hook(
    builder: RepoBuilder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from diffrisk.cli.output import _top_level

    builder.commit({"pkg/a.py": "a = 1\n"}, day=0)
    other = tmp_path / "other"
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    # a hook runs with GIT_DIR set to the repository it fires in
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other))
    top = _top_level(None, None, str(builder.path / "pkg"))  # type: ignore[arg-type]
    assert Path(top).resolve() == builder.path.resolve()
