"""The command line on bad input: one ``error:`` line and a ``hint:``, exit 2, data kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from diffrisk.cli import _report_error, cli
from diffrisk.data.store import load_dataset
from diffrisk.errors import DataError
from repobuilder import RepoBuilder


def _cli(*args: str) -> tuple[int, str, BaseException | None]:
    res = CliRunner().invoke(cli, list(args))
    return res.exit_code, res.output, res.exception


def _mined(builder: RepoBuilder, data: Path) -> None:
    builder.commit({"a.py": "x = 1\n"}, day=0)
    builder.commit({"a.py": "x = 2\n"}, day=1)
    code, out, _ = _cli(
        "mine", "--repo", str(builder.path), "--data-dir", str(data), "-q", "--no-code-metrics"
    )
    assert code == 0, out


def test_unwritable_data_dir_is_an_error_line_not_a_traceback(
    builder: RepoBuilder, tmp_path: Path
) -> None:
    builder.commit({"a.py": "x = 1\n"}, day=0)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    code, out, exc = _cli(
        "mine", "--repo", str(builder.path), "--data-dir", str(blocker / "d"), "-q"
    )
    assert code == 2, out
    assert isinstance(exc, SystemExit)  # handled, not an uncaught OSError
    lines = out.strip().splitlines()
    assert lines[0].startswith("error: cannot use ") and str(blocker) in lines[0]
    assert lines[1].startswith("hint: ")


def test_failed_rebuild_keeps_the_stored_dataset(builder: RepoBuilder, tmp_path: Path) -> None:
    data = tmp_path / "d"
    _mined(builder, data)
    before = {p.name: p.read_bytes() for p in data.iterdir()}
    code, out, _ = _cli(
        "mine", "--repo", str(builder.path), "--data-dir", str(data), "--rebuild", "-q",
        "--no-code-metrics", "--rev", "no-such-branch",
    )  # fmt: skip
    assert code == 2 and "no-such-branch" in out
    assert {p.name: p.read_bytes() for p in data.iterdir()} == before
    ds = load_dataset(data)
    assert ds is not None and len(ds.changes) == 2


def test_rebuild_replaces_the_dataset_and_leaves_no_scratch(
    builder: RepoBuilder, tmp_path: Path
) -> None:
    data = tmp_path / "d"
    _mined(builder, data)
    old_gen = load_dataset(data).meta["generation"]  # type: ignore[union-attr]
    builder.commit({"b.py": "y = 1\n"}, day=2)
    code, out, _ = _cli(
        "mine", "--repo", str(builder.path), "--data-dir", str(data), "--rebuild", "-q",
        "--no-code-metrics",
    )  # fmt: skip
    assert code == 0, out
    ds = load_dataset(data)
    assert ds is not None and len(ds.changes) == 3 and ds.meta["generation"] != old_gen
    assert sorted(p.name for p in data.iterdir()) == [
        ".diffrisk.lock",  # one writing run at a time (empty, not data)
        ".gitignore",  # the data stays out of git
        "blob_metrics.parquet",
        "changes.parquet",
        "files.parquet",
        "meta.json",
    ]


def test_error_messages_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    # pyarrow's messages span lines ("Couldn't deserialize thrift: ...\nDeserializing ...")
    _report_error(DataError("x.parquet is corrupt (thrift: Invalid data\nDeserializing\n)", "a\nb"))
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "error: x.parquet is corrupt (thrift: Invalid data Deserializing )",
        "hint: a b",
    ]


def test_main_limits_numeric_threads_unless_the_user_set_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from diffrisk.cli import THREAD_VARS, main

    for var in THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "4")
    monkeypatch.setattr("sys.argv", ["diffrisk", "--version"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0
    assert os.environ["OMP_NUM_THREADS"] == "1" and os.environ["OPENBLAS_NUM_THREADS"] == "1"
    assert os.environ["MKL_NUM_THREADS"] == "4"


def test_a_bare_repository_without_a_config_file_is_bare(
    builder: RepoBuilder, tmp_path: Path
) -> None:
    import subprocess

    from diffrisk.git.repo import open_repo

    builder.commit({"a.py": "x = 1\n"}, day=0, email="alias@example.com")
    builder.commit({".mailmap": "Real <real@example.com> <alias@example.com>\n"}, day=1)
    builder.commit({"a.py": "x = 2\n"}, day=2, email="alias@example.com")
    bare = tmp_path / "mirror" / "repo"
    subprocess.run(["git", "clone", "-q", "--bare", str(builder.path), str(bare)], check=True)
    (bare / "config").unlink()  # as some mirrors come: git still calls it bare
    repo = open_repo(bare)
    assert repo.bare and repo.path == bare.resolve()
    # and reads HEAD:.mailmap as in any bare repository
    assert repo.run("log", "-1", "--format=%aE").strip() == b"real@example.com"
    data = str(tmp_path / "data")
    code, out, _ = _cli("mine", "--repo", str(bare), "--data-dir", data, "-q")
    assert code == 0, out
    code, out, _ = _cli(
        "score", "--repo", str(bare), "--data-dir", data, "--base", "nope", "--head", "HEAD", "-q"
    )
    assert code == 2 and f"does not exist in {bare.resolve()}" in " ".join(out.split()), out


def test_monitor_checks_the_repository_path(tmp_path: Path) -> None:
    code, out, exc = _cli(
        "monitor", "--repo", str(tmp_path / "nowhere"), "--data-dir", str(tmp_path)
    )
    assert code == 2 and "does not exist" in out and isinstance(exc, SystemExit)


def test_a_corrupt_dataset_is_rebuilt_and_says_so(builder: RepoBuilder, tmp_path: Path) -> None:
    data = tmp_path / "data"
    _mined(builder, data)
    (data / "changes.parquet").write_bytes(b"not parquet")
    code, out, _ = _cli("mine", "--repo", str(builder.path), "--data-dir", str(data), "-q")
    assert code == 0, out
    assert "warning:" in out and "unreadable" in out and "rebuilt from git" in out
    assert len(load_dataset(data).changes) == 2


def test_an_unexpected_error_exits_3_not_the_gates_1(tmp_path, monkeypatch):
    """A bug (here: the TOML library failing) is one error line and exit 3; 1 is 'blocked'."""
    import tomllib

    def broken(*args, **kwargs):
        raise RuntimeError("the parser broke")

    (tmp_path / ".diffrisk.toml").write_text("[gate]\n")
    monkeypatch.setattr(tomllib, "loads", broken)
    res = CliRunner().invoke(cli, ["config", "--repo", str(tmp_path)])
    assert res.exit_code == 3, res.output
    assert "error: internal error: RuntimeError: the parser broke" in res.output
    assert "--debug" in res.output and "Traceback" not in res.output
