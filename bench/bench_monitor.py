"""Benchmark: ``diffrisk monitor`` on a mined and labelled history (target: < 30 s).

    python bench/bench_monitor.py DATA_DIR [--repeat 3] [--predictions 2000]

DATA_DIR must hold changes.parquet and labels.parquet (``diffrisk mine`` + ``diffrisk
label``), e.g. of pytest-dev/pytest (~13k non-merge commits). The data directory is
copied to a temporary directory and never modified. In the copy:

* when it has no current model, a logistic model is fitted on the labelled changes up to
  a year plus the verification latency before the newest change and promoted (so the run
  scores the history and measures a year of out-of-sample realized accuracy);
* a prediction log of ``--predictions`` records is made from real changes (PR-like: one
  to three consecutive commits each, spread over the last two years).

Then ``diffrisk monitor --json --markdown --plots`` runs ``--repeat`` times as a
subprocess (the wall time includes interpreter start-up and imports); the median is
reported and compared with the 30 s target.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

TARGET_SECONDS = 30.0


def _ensure_model(data: Path) -> str:
    from diffrisk.config import Config
    from diffrisk.data.paths import models_dir
    from diffrisk.model.contributions import training_medians
    from diffrisk.model.estimators import fit_estimator
    from diffrisk.model.registry import ModelRegistry
    from diffrisk.model.transforms import raw_features

    reg = ModelRegistry(models_dir(data))
    if reg.current() is not None:
        return f"existing model {reg.current()}"
    ch = pd.read_parquet(data / "changes.parquet")
    lab = pd.read_parquet(data / "labels.parquet")
    frame = ch.merge(lab[["sha", "label", "label_state"]], on="sha").sort_values("author_time")
    # trained as of a year ago, so that the last year's mature changes are out of sample
    end = pd.to_datetime(frame["author_time"], utc=True).max() - pd.Timedelta(
        days=365 + Config().label.verification_days
    )
    tr = frame[
        (pd.to_datetime(frame["author_time"], utc=True) <= end)
        & (frame["label_state"] != "unlabelled")
    ]
    y = tr["label"].astype(int).to_numpy()
    t0 = time.perf_counter()
    est = fit_estimator("logistic", tr, y, y)
    md = {
        "kind": "logistic",
        "features": raw_features("logistic"),
        "training_window": {
            "first_date": str(tr["author_time"].min()),
            "last_date": str(tr["author_time"].max()),
        },
        "metrics": {},
        "reference": training_medians("logistic", tr),
    }
    v = reg.save(est, md)
    reg.promote(v)
    return f"fitted logistic model {v} on {len(tr)} labelled changes in {time.perf_counter() - t0:.1f} s"


def _make_log(data: Path, n: int, seed: int = 0) -> None:
    from diffrisk.data import predlog

    ch = pd.read_parquet(data / "changes.parquet", columns=["sha", "author_time"]).sort_values(
        "author_time"
    )
    ch = ch.reset_index(drop=True)
    recent = ch[
        pd.to_datetime(ch["author_time"], utc=True)
        > pd.to_datetime(ch["author_time"], utc=True).max() - pd.Timedelta(days=730)
    ]
    rng = np.random.default_rng(seed)
    starts = rng.choice(recent.index.to_numpy(), size=min(n, len(recent)), replace=False)
    recs = []
    for i in starts:
        k = int(rng.integers(1, 4))
        commits = ch["sha"].iloc[i : i + k].tolist()
        p = float(rng.beta(2, 5))
        recs.append(
            {
                "head_sha": commits[-1],
                "commits": commits,
                "probability": p,
                "level": "high" if p >= 0.7 else "medium" if p >= 0.4 else "low",
                "decision": "fail" if p >= 0.7 else None,
                "model_version": "bench",
                "time": pd.Timestamp(ch["author_time"].iloc[i]),
                "pr": int(i),
            }
        )
    predlog.append(data, recs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--predictions", type=int, default=2000)
    args = ap.parse_args()
    src = args.data_dir
    for name in ("changes.parquet", "labels.parquet"):
        if not (src / name).exists():
            print(
                f"error: {src / name} is missing (run diffrisk mine and diffrisk label first)",
                file=sys.stderr,
            )
            return 2
    with tempfile.TemporaryDirectory(prefix="bench-monitor-") as tmp:
        data = Path(tmp) / "data"
        shutil.copytree(src, data, ignore=shutil.ignore_patterns("blame-cache*", "*.lock"))
        print(_ensure_model(data))
        _make_log(data, args.predictions)
        n_changes = len(pd.read_parquet(data / "changes.parquet", columns=["sha"]))
        times = []
        out = None
        for _ in range(args.repeat):
            cmd = [
                sys.executable,
                "-m",
                "diffrisk",
                "monitor",
                "--data-dir",
                str(data),
                "--json",
                "--markdown",
                str(Path(tmp) / "report.md"),
                "--plots",
                str(Path(tmp) / "plots"),
            ]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            times.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                print(proc.stdout, proc.stderr, file=sys.stderr)
                return 1
            out = json.loads(proc.stdout)
        med = statistics.median(times)
        assert out is not None
        print(
            json.dumps(
                {
                    "changes": n_changes,
                    "predictions": out["log"]["predictions"],
                    "model": out["model_version"],
                    "drift_status": out["drift_status"],
                    "realized_auc": out["realized"].get("roc_auc"),
                    "retrain": out["decision"]["retrain"],
                    "seconds_in_process": round(out["seconds"], 2),
                    "wall_seconds": [round(t, 2) for t in times],
                    "median_wall_seconds": round(med, 2),
                    "target_seconds": TARGET_SECONDS,
                },
                indent=2,
            )
        )
        return 0 if med < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
