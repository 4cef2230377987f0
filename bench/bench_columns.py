"""What the code-metric columns do to the models: time-ordered ROC-AUC with and without.

    python bench/bench_columns.py NAME=DATA_DIR ... [--kinds logistic,hgb] [--json OUT]

Each DATA_DIR must be mined with code metrics (``diffrisk mine --code-metrics``: radon
for Python, lizard for the other languages) and labelled (``diffrisk label``). For each
repository and model kind, :func:`diffrisk.training.evaluate.evaluate` runs twice on the
same rolling-origin folds (realistic labels, labelable changes): ``train.code_metrics``
off, then on. Both runs test the same commits, so their pooled out-of-time predictions
are paired: the on - off difference of the pooled ROC-AUC gets a 95% interval from
the bootstrap ``evaluate`` itself uses (test commits resampled within their folds), as
does each run's difference from the lines-added baseline. Also printed: how many commits
have measured files (``metric_files`` > 0), and the time of each evaluation.
"""

# ruff: noqa: E402  (thread limits must be set before numpy loads)
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from diffrisk.config import Config
from diffrisk.data.store import load_dataset
from diffrisk.training.evaluate import BASELINE, bootstrap_auc, evaluate
from diffrisk.training.train import load_training_frame


def _ci(d: np.ndarray) -> tuple[float, float, float]:
    d = d[~np.isnan(d)]
    return float(np.mean(d)), float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))


def compare(name: str, data_dir: Path, kinds: list[str], cfg: Config) -> dict[str, Any]:
    frame, _ = load_training_frame(data_dir, cfg)
    ch = load_dataset(data_dir).changes
    measured = int((ch["metric_files"].fillna(0) > 0).sum()) if "metric_files" in ch else 0
    out: dict[str, Any] = {
        "repository": name,
        "changes": len(frame),
        "measured_changes": measured,
        "kinds": {},
    }
    runs = {}
    for cm in (False, True):
        t0 = time.perf_counter()
        runs[cm] = evaluate(frame, cfg, kinds=kinds, code_metrics=cm)
        out[f"seconds_{'on' if cm else 'off'}"] = round(time.perf_counter() - t0, 1)
    off, on = runs[False], runs[True]
    pos_b, fold_b, p_b = off.pooled(BASELINE)
    assert off.rows is not None
    y = off.rows["label"].to_numpy(dtype=int)[pos_b]
    out["pooled_over"] = {"commits": len(y), "buggy": int(y.sum())}
    for kind in kinds:
        pos0, _, p0 = off.pooled(kind)
        pos1, _, p1 = on.pooled(kind)
        if not (np.array_equal(pos0, pos_b) and np.array_equal(pos1, pos_b)):
            out["kinds"][kind] = {"note": "not evaluated on the baseline's commits"}
            continue
        b = bootstrap_auc(y, {"off": p0, "on": p1, "la": p_b}, fold_b)
        out["kinds"][kind] = {
            "off": float(roc_auc_score(y, p0)),
            "on": float(roc_auc_score(y, p1)),
            "la": float(roc_auc_score(y, p_b)),
            "on_minus_off": _ci(b["on"] - b["off"]),
            "off_minus_la": _ci(b["off"] - b["la"]),
            "on_minus_la": _ci(b["on"] - b["la"]),
        }
    return out


def _d(t: tuple[float, float, float]) -> str:
    m, lo, hi = t
    return f"{m:+.3f} ({lo:+.3f} to {hi:+.3f})"


def table(results: list[dict[str, Any]]) -> str:
    head = (
        "| repository (commits; pooled test commits, buggy) | model | off | on |"
        " on - off (95% CI) | off - la | on - la |"
    )
    lines = [head, "| --- | --- | ---: | ---: | --- | --- | --- |"]
    for r in results:
        label = (
            f"{r['repository']} ({r['changes']:,}; {r['pooled_over']['commits']:,},"
            f" {r['pooled_over']['buggy']})"
        )
        for kind, k in r["kinds"].items():
            if "note" in k:
                lines.append(f"| {label} | {kind} | {k['note']} | | | | |")
                continue
            lines.append(
                f"| {label} | {kind} | {k['off']:.3f} | {k['on']:.3f} | {_d(k['on_minus_off'])}"
                f" | {_d(k['off_minus_la'])} | {_d(k['on_minus_la'])} |"
            )
        la = next((k["la"] for k in r["kinds"].values() if "la" in k), None)
        if la is not None:
            lines.append(f"| {label} | lines added | {la:.3f} | | | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", nargs="+", help="NAME=DATA_DIR (mined with --code-metrics, labelled)")
    ap.add_argument("--kinds", default="logistic,hgb", help="model kinds (comma-separated)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    cfg = Config()
    results = []
    for arg in args.data:
        name, path = arg.split("=", 1)
        r = compare(name, Path(path), args.kinds.split(","), cfg)
        results.append(r)
        print(
            f"{name}: {r['measured_changes']:,} of {r['changes']:,} changes with measured files;"
            f" evaluate {r['seconds_off']} s off, {r['seconds_on']} s on",
            file=sys.stderr,
        )
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
