"""Interrupting a long ``diffrisk label``: a real process, a real signal.

The run must stop within seconds, keep the fixes it finished blaming (the next run
resumes from them) and leave no worker, ``git blame`` or ``git cat-file`` process behind.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from diffrisk.config import LabelConfig, MineConfig
from diffrisk.git.repo import open_repo
from diffrisk.labelling.label import CACHE_FILE, _blame_settings
from diffrisk.labelling.szz import FixJob, blame_fixes
from diffrisk.mining.mine import mine
from repobuilder import fix_history

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")

FIXES = 250
# label with CHECKPOINT_SECONDS set (argv[1]) so the test knows when a fix is blamed
LABEL = (
    "import sys, diffrisk.labelling.label as m; m.CHECKPOINT_SECONDS = float(sys.argv.pop(1)); "
    "from diffrisk.cli import main; main()"
)


@pytest.fixture(scope="module")
def mined(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A history of FIXES fixes, mined; and a configuration with two blame workers."""
    root = tmp_path_factory.mktemp("fixes")
    repo = root / "repo.git"
    fix_history(repo, FIXES + 1)
    data = root / "mined"
    mine(repo, data, config=MineConfig(code_metrics=False, code_lines=False))
    (root / "cfg.toml").write_text("[label]\nworkers = 2\n")
    return repo, data


def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, process group, start time) of a live process, from /proc."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    f = raw[raw.rindex(")") + 2 :].split()
    return f[0], int(f[1]), int(f[2]), int(f[19])


def _processes() -> dict[int, tuple[str, int, int, int]]:
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (st := _stat(int(name))) is not None:
            out[int(name)] = st
    return out


def _descendants(pid: int) -> dict[int, tuple[str, int, int, int]]:
    procs = _processes()
    found, frontier = {}, {pid}
    while frontier:
        kids = {p: st for p, st in procs.items() if st[1] in frontier and p not in found}
        found.update(kids)
        frontier = set(kids)
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int, start: int) -> bool:
    st = _stat(pid)
    return st is not None and st[3] == start and st[0] not in "ZX"  # a zombie is dead


def _start(repo: Path, data: Path, cfg: Path, checkpoint: float) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-c", LABEL, str(checkpoint), "label", "--repo", str(repo)]
    argv += ["--data-dir", str(data), "--config", str(cfg), "--json"]
    env = {**os.environ, "DIFFRISK_LOCK_WAIT": "0"}
    # its own session (the process group a terminal's Ctrl-C goes to), and SIGINT not
    # ignored (as it is for a background job of a shell)
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _blaming(proc: subprocess.Popen[bytes], data: Path) -> dict[int, tuple[str, int, int, int]]:
    """Wait for the first checkpoint (some fixes blamed); the run's processes then."""
    deadline = time.monotonic() + 60
    while not (data / CACHE_FILE).exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    # two workers, each with its git cat-file: what must not outlive the run
    while True:
        kids = _descendants(proc.pid)
        names = [_cmdline(p) for p in kids]
        if sum("cat-file --batch" in n for n in names) == 2:
            break
        assert time.monotonic() < deadline, names
        time.sleep(0.02)
    assert sum(st[1] == proc.pid for st in kids.values()) == 2, names
    return kids


def _kept(data: Path) -> set[str]:
    cache = pq.read_table(data / CACHE_FILE).to_pandas()
    return set(cache.loc[cache["inducing_sha"].isna(), "fix_sha"])


def _stops_cleanly(
    proc: subprocess.Popen[bytes], kids: dict[int, tuple[str, int, int, int]], sent: float
) -> tuple[int, str, float]:
    _, err = proc.communicate(timeout=30)
    took = time.monotonic() - sent
    groups = {proc.pid} | {st[2] for st in kids.values()}
    deadline = time.monotonic() + 2  # killed processes are reaped by their new parent
    while True:
        left = [p for p, st in kids.items() if _alive(p, st[3])]
        left += [p for p, st in _processes().items() if st[2] in groups and st[0] not in "ZX"]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, [_cmdline(p) for p in left]
    return proc.returncode, err.decode(), took


def _message(err: str) -> tuple[int, int]:
    m = re.search(r"the blame of (\d+) of (\d+) fixes was kept in", err)
    assert m, err
    return int(m[1]), int(m[2])


def test_ctrl_c_stops_label_at_once_keeps_the_blame_and_leaves_no_process(
    mined: tuple[Path, Path], tmp_path: Path
) -> None:
    repo, mined_data = mined
    data = tmp_path / "data"
    shutil.copytree(mined_data, data)
    proc = _start(repo, data, mined_data.parent / "cfg.toml", 0.3)
    kids = _blaming(proc, data)
    sent = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
    code, err, took = _stops_cleanly(proc, kids, sent)
    assert code == 130, err
    assert took < 5, took
    kept, todo = _message(err)
    assert "error: interrupted (SIGINT)" in err and "Traceback" not in err
    assert f"it blames only the {todo - kept} fixes left" in err
    assert todo == FIXES and 0 < kept < FIXES
    assert len(_kept(data)) == kept
    assert not list(data.glob(".*.tmp")) and not (data / "labels.parquet").exists()


def test_sigterm_stops_label_and_keeps_exactly_what_was_blamed(
    mined: tuple[Path, Path], tmp_path: Path
) -> None:
    repo, mined_data = mined
    data = tmp_path / "data"
    shutil.copytree(mined_data, data)
    proc = _start(repo, data, mined_data.parent / "cfg.toml", 0.3)
    kids = _blaming(proc, data)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)  # as `kill` and a cancelled CI job: the process alone
    code, err, took = _stops_cleanly(proc, kids, sent)
    assert code == 143, err
    assert took < 5, took
    kept, todo = _message(err)
    assert "error: interrupted (SIGTERM)" in err and 0 < kept < todo == FIXES
    # what was kept is each fix's whole blame, as blaming it alone finds (nothing from
    # the chunks the killed workers had not finished)
    cache = pq.read_table(data / CACHE_FILE).to_pandas()
    assert cache["fix_sha"].nunique() == kept
    jobs = [FixJob(sha) for sha in sorted(set(cache["fix_sha"]))]
    alone = list(blame_fixes(open_repo(repo), jobs, _blame_settings(LabelConfig())))
    assert len(alone) == kept and all(r.counts for r in alone)
    for r in alone:
        rows = cache[cache["fix_sha"] == r.sha]
        summary = rows[rows["inducing_sha"].isna()]
        assert summary[["lines", "cosmetic"]].values.tolist() == [[r.considered, r.cosmetic]]
        links = rows[rows["inducing_sha"].notna()]
        found = zip(links["inducing_sha"], links["path"], links["lines"], strict=True)
        assert {(sha, path): n for sha, path, n in found} == r.counts


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
def test_sigkill_loses_at_most_the_last_checkpoint_and_the_workers_die_too(
    mined: tuple[Path, Path], tmp_path: Path
) -> None:
    repo, mined_data = mined
    data = tmp_path / "data"
    shutil.copytree(mined_data, data)
    proc = _start(repo, data, mined_data.parent / "cfg.toml", 0.3)
    kids = _blaming(proc, data)
    time.sleep(0.5)
    proc.kill()  # nothing can run in the killed process: its workers stop themselves
    _stops_cleanly(proc, kids, time.monotonic())
    assert 0 < len(_kept(data)) < FIXES  # a whole checkpoint, readable
