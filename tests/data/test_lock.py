"""One writing run at a time per data directory (``diffrisk.data.lock``): real processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from diffrisk.cli import cli
from diffrisk.config import Config, MineConfig
from diffrisk.data.lock import LOCK_FILE, OWNER_FILE, data_dir_lock, owner, wait_seconds
from diffrisk.errors import ConfigError
from diffrisk.mining.mine import mine
from modelbuilder import build_history, write_labels
from repobuilder import RepoBuilder, fix_history

FIXES = 250


def _diffrisk(*args: str, wait: float) -> subprocess.Popen[str]:
    env = {**os.environ, "DIFFRISK_LOCK_WAIT": str(wait)}
    return subprocess.Popen(
        [sys.executable, "-m", "diffrisk", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _holding(proc: subprocess.Popen[str], data: Path) -> None:
    """Wait until ``proc`` holds the data directory's lock."""
    deadline = time.monotonic() + 60
    while (owner(data) or {}).get("pid") != proc.pid:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_a_second_run_waits_or_gives_up_clearly_and_resumes_the_first_runs_work(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo.git"
    fix_history(repo, FIXES + 1)
    data = tmp_path / "data"
    mine(repo, data, config=MineConfig(code_metrics=False, code_lines=False))
    where = ["--repo", str(repo), "--data-dir", str(data)]
    (tmp_path / "serial.toml").write_text("[label]\nworkers = 1\n")  # slower: time to wait
    first = _diffrisk("label", *where, "--config", str(tmp_path / "serial.toml"), wait=0)
    _holding(first, data)
    # at once: a run that may wait half a second, and one that may wait long enough
    impatient = _diffrisk("train", *where, wait=0.5)
    second = _diffrisk("label", *where, "--json", wait=60)
    _, err0 = impatient.communicate(timeout=30)
    # the first gives up, naming the run that holds the lock
    assert impatient.returncode == 2, err0
    err = err0.splitlines()
    since = (owner(data) or {})["since"]
    assert err[-2].startswith(f"error: another diffrisk run (pid {first.pid}, `")
    assert err[-2].endswith(f" label`, since {since}) is using {data}; gave up after waiting 0.5 s")
    assert err[-1].startswith(f"hint: wait for it to finish (or stop it: kill {first.pid})")
    # the second waits, and goes on once the first run stops
    assert second.stderr is not None
    line = second.stderr.readline()
    assert line.startswith(f"waiting for another diffrisk run on {data} (pid {first.pid}, `")
    assert first.poll() is None  # still blaming
    first.send_signal(signal.SIGINT)
    _, err1 = first.communicate(timeout=30)
    assert first.returncode == 130, err1
    kept = int(err1.split("the blame of ")[1].split()[0])
    out, err2 = second.communicate(timeout=120)
    assert second.returncode == 0, err2
    assert "the other run is done: going on after" in err2
    res = json.loads(out)
    # the second run blamed only what the first did not keep
    assert 0 < kept < FIXES and (res["fixes_blamed"], res["newly_blamed"]) == (FIXES, FIXES - kept)
    assert sorted(p.name for p in data.glob(".diffrisk.lock*")) == [LOCK_FILE]


def test_two_train_runs_at_once_take_turns_and_both_models_are_kept(
    builder: RepoBuilder, tmp_path: Path
) -> None:
    shas, big = build_history(builder, n=45)
    data = tmp_path / "data"
    mine(builder.path, data, config=Config().mine.model_copy(update={"code_metrics": False}))
    write_labels(data, shas, big)
    (builder.path / ".diffrisk.toml").write_text(
        "[train]\nmin_buggy = 5\nfolds = 2\ngap_days = 10\n"
    )
    where = ["--repo", str(builder.path), "--data-dir", str(data)]
    runs = [_diffrisk("train", *where, "--model", "logistic", "--force", "--json", wait=120)]
    runs.append(_diffrisk("train", *where, "--model", "logistic", "--force", "--json", wait=120))
    outs = [p.communicate(timeout=180) for p in runs]
    assert [p.returncode for p in runs] == [0, 0], [e for _, e in outs]
    assert sum("waiting for another diffrisk run" in e for _, e in outs) == 1
    versions = [json.loads(o)["version"] for o, _ in outs]
    r = CliRunner().invoke(cli, ["models", "list", *where, "--json"])
    assert r.exit_code == 0, r.output
    listed = json.loads(r.output)
    assert sorted(m["version"] for m in listed) == sorted(versions) and len(set(versions)) == 2
    assert not any(m.get("error") for m in listed), listed
    st = json.loads((data / "models" / "registry.json").read_text())
    assert sorted(st["history"]) == sorted(versions) and st["current"] == st["history"][-1]


def test_nested_use_holds_one_lock_and_says_who_holds_it(tmp_path: Path) -> None:
    with data_dir_lock(tmp_path, command="diffrisk test") as held:
        assert held
        with data_dir_lock(tmp_path) as again:  # the same process: no deadlock
            assert again
        info = owner(tmp_path)
        assert info is not None
        assert (info["pid"], info["command"]) == (os.getpid(), "diffrisk test")
        # another process cannot take it
        code = (
            "import sys; from diffrisk.data.lock import data_dir_lock\n"
            "with data_dir_lock(sys.argv[1], wait=0): pass"
        )
        r = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True
        )
        assert r.returncode == 1 and "DataDirLockedError" in r.stderr
        assert f"pid {os.getpid()}, `diffrisk test`" in r.stderr
    assert not (tmp_path / OWNER_FILE).exists()
    with data_dir_lock(tmp_path, wait=0) as held:  # released
        assert held


def test_on_a_read_only_data_dir_a_run_goes_on_unlocked(tmp_path: Path) -> None:
    base = Path(tempfile.mkdtemp(prefix="diffrisk-ro-"))  # not under root's 0700 pytest dir
    base.chmod(0o755)
    data = base / "data"
    data.mkdir()
    data.chmod(0o555)
    root = os.geteuid() == 0
    try:
        if root:  # root writes anywhere: the user nobody meanwhile
            os.setegid(65534)
            os.seteuid(65534)
        with data_dir_lock(data, wait=0) as held:
            assert not held
    finally:
        if root:
            os.seteuid(0)
            os.setegid(0)
        data.chmod(0o755)
    assert list(data.iterdir()) == []
    shutil.rmtree(base)
    # with no data directory there is nothing to lock, and nothing is made
    with data_dir_lock(tmp_path / "missing") as held:
        assert not held
    assert not (tmp_path / "missing").exists()


def test_a_missing_data_dir_is_made_only_for_a_repository(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    r = CliRunner().invoke(cli, ["mine", "--repo", str(tmp_path / "plain")])
    assert r.exit_code == 2 and "not a git repository" in r.output
    assert not (tmp_path / "plain" / ".diffrisk").exists()


def test_the_lock_files_are_not_data(builder: RepoBuilder) -> None:
    builder.commit({"a.py": "x = 1\n"}, day=0)
    r = CliRunner().invoke(cli, ["mine", "--repo", str(builder.path), "--quiet"])
    assert r.exit_code == 0, r.output
    data = builder.path / ".diffrisk"
    assert (data / LOCK_FILE).read_bytes() == b"" and not (data / OWNER_FILE).exists()
    assert builder.run("status", "--porcelain") == ""  # ignored in the work tree
    r = CliRunner().invoke(cli, ["models", "list", "--repo", str(builder.path), "--json"])
    assert r.exit_code == 0 and json.loads(r.output) == []


def test_lock_wait_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIFFRISK_LOCK_WAIT", raising=False)
    assert wait_seconds() == 60
    monkeypatch.setenv("DIFFRISK_LOCK_WAIT", "2.5")
    assert wait_seconds() == 2.5
    for bad in ("soon", "-1", "nan"):
        monkeypatch.setenv("DIFFRISK_LOCK_WAIT", bad)
        with pytest.raises(ConfigError, match="DIFFRISK_LOCK_WAIT"):
            wait_seconds()
