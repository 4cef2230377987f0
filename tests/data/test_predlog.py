"""The prediction log: append, dedupe by head sha, survive failing and killed writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from diffrisk.data import predlog
from diffrisk.data.schema import column_names
from diffrisk.errors import DataError
from diffrisk.scoring.result import CommitRisk, ScoreResult


def sha(i: int) -> str:
    return f"{i:040x}"


def rec(i: int, **kw: object) -> dict:
    r = {
        "head_sha": sha(i),
        "base_sha": sha(1000 + i),
        "pr": i,
        "commits": [sha(i)],
        "features": {"la": i, "nf": 1},
        "probability": 0.5,
        "level": "medium",
        "model_version": "v1",
        "time": 1_700_000_000 + i,
    }
    r.update(kw)
    return r


def test_append_and_load_round_trip(tmp_path: Path) -> None:
    assert predlog.load_predictions(tmp_path).empty
    n = predlog.append(tmp_path, [rec(1), rec(2, probability=0.9, level="high", decision="fail")])
    assert n == 2
    df = predlog.load_predictions(tmp_path)
    assert list(df.columns) == column_names("predictions")
    assert df["head_sha"].tolist() == [sha(1), sha(2)]
    assert df["probability"].tolist() == [0.5, 0.9]
    assert df["decision"].tolist()[1] == "fail" and df["decision"].isna().tolist()[0]
    assert json.loads(df["features"][0]) == {"la": 1, "nf": 1}
    assert list(df["commits"][1]) == [sha(2)]
    assert df["time"][0] == pd.Timestamp(1_700_000_001, unit="s", tz="UTC")
    assert df["source"].tolist() == ["score", "score"]


def test_repeated_runs_keep_one_row_per_head_last_wins(tmp_path: Path) -> None:
    predlog.append(tmp_path, [rec(1), rec(2)])
    predlog.append(tmp_path, [rec(1), rec(2)])
    assert len(predlog.load_predictions(tmp_path)) == 2
    # a gate run decides, a later plain score run on the same head keeps that decision
    predlog.append(
        tmp_path,
        [rec(1, probability=0.8, level="high", decision="fail", source="gate", time=1_700_000_100)],
    )
    n = predlog.append(tmp_path, [rec(1, probability=0.75, level="high", time=1_700_000_200)])
    df = predlog.load_predictions(tmp_path).set_index("head_sha")
    assert n == 2
    assert df.loc[sha(1), "probability"] == 0.75
    assert df.loc[sha(1), "decision"] == "fail"
    # a later gate run with another decision replaces it
    predlog.append(
        tmp_path, [rec(1, probability=0.3, level="low", decision="pass", time=1_700_000_300)]
    )
    df = predlog.load_predictions(tmp_path).set_index("head_sha")
    assert df.loc[sha(1), "decision"] == "pass" and df.loc[sha(1), "level"] == "low"


def test_duplicates_within_one_call_last_wins(tmp_path: Path) -> None:
    predlog.append(
        tmp_path, [rec(3, probability=0.1, level="low"), rec(3, probability=0.2, level="low")]
    )
    df = predlog.load_predictions(tmp_path)
    assert df["probability"].tolist() == [0.2]


def test_bad_records_raise_and_leave_log_untouched(tmp_path: Path) -> None:
    predlog.append(tmp_path, [rec(1)])
    before = predlog.path_of(tmp_path).read_bytes()
    with pytest.raises(DataError, match="head_sha"):
        predlog.append(tmp_path, [rec(2), {"probability": 0.3}])
    with pytest.raises(DataError, match="probability"):
        predlog.append(tmp_path, [rec(2, probability=1.5)])
    with pytest.raises(DataError, match="level"):
        predlog.append(tmp_path, [rec(2, level="severe")])
    assert predlog.path_of(tmp_path).read_bytes() == before


def test_records_that_fail_mid_iteration_leave_log_intact(tmp_path: Path) -> None:
    predlog.append(tmp_path, [rec(1), rec(2)])

    def gen():  # a run interrupted while producing its records
        yield rec(3)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        predlog.append(tmp_path, gen())
    assert predlog.load_predictions(tmp_path)["head_sha"].tolist() == [sha(1), sha(2)]


def test_write_failing_midway_keeps_previous_file(tmp_path: Path) -> None:
    """A real mid-write failure: the file-size limit (RLIMIT_FSIZE) stops the writer."""
    predlog.append(tmp_path, [rec(i) for i in range(5)])
    p = predlog.path_of(tmp_path)
    before = p.read_bytes()
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        from diffrisk.data import predlog
        from diffrisk.errors import DataError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({len(before) + 64}, {len(before) + 64}))
        recs = [dict(head_sha=f"{{i:040x}}", probability=0.5, level="low",
                     features={{"blob": "x" * 5000 + str(i)}}) for i in range(100, 200)]
        try:
            predlog.append({str(tmp_path)!r}, recs)
        except DataError as err:  # the OSError, with the way out
            print("failed:", err.message)
            sys.exit(3)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert p.read_bytes() == before
    assert len(predlog.load_predictions(tmp_path)) == 5
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_killed_writers_never_leave_a_broken_log(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        from diffrisk.data import predlog
        for i in range(10_000):
            predlog.append({str(tmp_path)!r}, [dict(head_sha=f"{{i:040x}}", probability=0.5, level="low",
                                                  features={{"pad": "y" * 20000}})])
        """
    )
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", script])
        deadline = time.monotonic() + 20
        while not predlog.path_of(tmp_path).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.4)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        df = predlog.load_predictions(tmp_path)  # readable after every kill
        assert len(df) >= 1
        assert df["head_sha"].is_unique
        # rows are exactly the prefix 0..n-1 the writer got through (the next run re-logs the same heads)
        assert sorted(int(h, 16) for h in df["head_sha"]) == list(range(len(df)))


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        from diffrisk.data import predlog
        k = int(sys.argv[1])
        for i in range(8):
            predlog.append(sys.argv[2], [dict(head_sha=f"{k * 1000 + i:040x}", probability=0.1, level="low")])
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(k), str(tmp_path)]) for k in (1, 2, 3)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert len(predlog.load_predictions(tmp_path)) == 24


def test_a_damaged_log_is_moved_aside_and_a_new_one_started(tmp_path: Path) -> None:
    from diffrisk.notices import DiffriskWarning

    p = predlog.path_of(tmp_path)
    p.write_bytes(b"not parquet at all")
    with pytest.warns(DiffriskWarning, match="could not be read .* moved it to") as said:
        assert predlog.load_predictions(tmp_path).empty
    (aside,) = [f for f in tmp_path.iterdir() if f.name.startswith(f"{p.name}.damaged-")]
    assert aside.read_bytes() == b"not parquet at all" and aside.name in str(said[0].message)
    assert not p.exists()
    # a log of other column types (another diffrisk version): set aside by the writer
    pd.DataFrame({c: ["x"] for c in column_names("predictions")}).to_parquet(p)
    with pytest.warns(DiffriskWarning, match="other types"):
        assert predlog.append(tmp_path, [rec(1)]) == 1
    assert predlog.load_predictions(tmp_path)["head_sha"].tolist() == [sha(1)]
    assert len([f for f in tmp_path.iterdir() if ".damaged-" in f.name]) == 2


def test_append_from_score_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_REF", "refs/pull/42/merge")
    result = ScoreResult(
        repo="octo/demo",
        base=sha(7),
        head=sha(8),
        probability=0.83,
        level="high",
        percentile=97.0,
        model_version="20240101-abc",
        model_source="repository",
        model_metrics={"roc_auc": 0.7},
        features={"la": 120, "nf": 4, "entropy": 0.5},
        commits=[
            CommitRisk(sha(5), "first", 0.4, "medium"),
            CommitRisk(sha(8), "second", 0.8, "high"),
        ],
    )
    assert predlog.append_from_score(tmp_path, result.to_dict()) == 1
    assert predlog.append_from_score(tmp_path, result.to_dict(), decision="fail") == 1
    row = predlog.load_predictions(tmp_path).iloc[0]
    assert row["pr"] == 42 and row["head_sha"] == sha(8) and row["base_sha"] == sha(7)
    assert list(row["commits"]) == [sha(5), sha(8)]
    assert row["decision"] == "fail" and row["source"] == "gate"
    assert row["model_version"] == "20240101-abc" and row["model_source"] == "repository"
    assert json.loads(row["features"]) == {"entropy": 0.5, "la": 120, "nf": 4}
    # an explicit pr wins over the environment
    predlog.append_from_score(tmp_path, {**result.to_dict(), "head": sha(9)}, pr=7)
    assert predlog.load_predictions(tmp_path).set_index("head_sha").loc[sha(9), "pr"] == 7


def test_log_result_returns_what_kept_a_result_from_the_log(tmp_path: Path) -> None:
    good = {"head": sha(3), "base": sha(4), "probability": 0.2, "level": "low"}
    assert predlog.log_result(tmp_path, good) is None
    assert predlog.log_result(tmp_path, good, decision="pass") is None
    row = predlog.load_predictions(tmp_path).iloc[0]
    assert (row["head_sha"], row["decision"], row["source"]) == (sha(3), "pass", "gate")
    err = predlog.log_result(tmp_path, {**good, "probability": 2.0})
    assert isinstance(err, DataError) and "is not in [0, 1]" in err.message
    assert len(predlog.load_predictions(tmp_path)) == 1
