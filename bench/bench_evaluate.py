"""Each model against the lines-added baseline, pooled and per fold, with intervals.

    python bench/bench_evaluate.py REPO_PATH [REPO_PATH ...] [--work DIR] [--folds N]
        [--no-bundled] [--predictions DIR] [--json OUT]

For every repository (a work tree or a bare mirror, given by path): mine
(``--no-code-metrics``), label (SZZ, default settings) into ``--work``/NAME (a temporary
directory by default), then run the time-ordered evaluation of ``diffrisk evaluate``
(:func:`diffrisk.training.evaluate.evaluate`; the bundled model competes unless
``--no-bundled``). Printed per model: ROC-AUC pooled over all test commits and the mean
over folds, the pooled difference from the lines-added baseline with its 95% paired
bootstrap interval (test commits resampled within folds), and capture (share of the
defect-inducing changes among the riskiest 5%, 10%, 20% of changes) next to the
baseline's. The seconds the bootstrap took are printed too. ``--predictions DIR`` writes
each repository's out-of-time predictions (``DIR/NAME.parquet``, the columns of
``diffrisk evaluate --predictions``). Work directories are reused when they already hold
a labelled dataset (mining and labelling are incremental anyway).
"""

# ruff: noqa: E402  (thread limits must be set before numpy loads)
from __future__ import annotations

import os

# The machine is shared: one BLAS/OpenMP thread (set before numpy and scikit-learn load).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from diffrisk.config import Config
from diffrisk.errors import DiffriskError
from diffrisk.labelling.label import label
from diffrisk.mining.mine import mine
from diffrisk.training.evaluate import (
    BASELINE,
    CAPTURE_SHARES,
    bootstrap_auc,
    evaluate,
    write_predictions,
)
from diffrisk.training.train import bundled_candidates, load_training_frame


def _name(path: Path) -> str:
    p = path.resolve()
    return (p.parent.name if p.name in ("repo", ".git") else p.name).removesuffix(".git")


def _f(v: Any, signed: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:+.3f}" if signed else f"{v:.3f}"


def prepare(path: Path, data: Path, cfg: Config) -> None:
    """Mine and label ``path`` into ``data`` (both incremental)."""
    t0 = time.perf_counter()
    mine(
        path,
        data,
        rev="HEAD",
        config=cfg.mine.model_copy(update={"code_metrics": False}),
        fixes=cfg.fixes,
        source_extensions=cfg.label.source_extensions,
        exclude_paths=cfg.label.exclude_paths,
    )
    t1 = time.perf_counter()
    label(path, data, cfg.label)
    print(
        f"{path}: mined {t1 - t0:.0f}s, labelled {time.perf_counter() - t1:.0f}s",
        file=sys.stderr,
    )


def bench(path: Path, data: Path, cfg: Config, bundled: bool) -> tuple[dict[str, Any], Any]:
    """The evaluation of one repository, as a summary and the :class:`Evaluation`."""
    prepare(path, data, cfg)
    frame, _ = load_training_frame(data, cfg, path)
    t0 = time.perf_counter()
    ev = evaluate(frame, cfg, fixed=bundled_candidates(cfg, frame) if bundled else None)
    took = time.perf_counter() - t0
    # the bootstrap alone, timed again on the pooled rows of the baseline and every
    # candidate scored on all its folds (what evaluate did once, inside `took`)
    pos, fold_of, base = ev.pooled(BASELINE)
    scores = {BASELINE: base}
    for k in ev.models:
        p = ev.pooled(k)
        if k != BASELINE and len(p[0]) == len(pos):
            scores[k] = p[2]
    t1 = time.perf_counter()
    y = ev.rows["label"].to_numpy()[pos] if ev.rows is not None else None
    bootstrap_auc(y, scores, fold_of)
    boot_s = time.perf_counter() - t1
    d = ev.to_dict()
    models = {}
    for k, m in d["models"].items():
        pooled = m.get("pooled") or {}
        vs = m.get("vs_baseline") or {}
        models[k] = {
            "pooled_roc_auc": pooled.get("roc_auc"),
            "mean_roc_auc": m["overall"].get("roc_auc"),
            "folds": m["overall"].get("folds", 0),
            "difference": vs.get("difference"),
            "ci_low": vs.get("ci_low"),
            "ci_high": vs.get("ci_high"),
            "compared_commits": vs.get("n"),
            **{
                f"capture_at_{round(100 * s)}": pooled.get(f"capture_at_{round(100 * s)}")
                for s in CAPTURE_SHARES
            },
        }
    summary = {
        "repository": str(path),
        "pooled_over": d["pooled_over"],
        "folds": [f for f in d["folds"]],
        "chosen": d["chosen"],
        "beats_baseline": d["beats_baseline"],
        "statement": d["statement"],
        "models": models,
        "seconds": {"evaluate": round(took, 2), "bootstrap": round(boot_s, 3)},
        "bootstrap_scores": len(scores),
    }
    return summary, ev


def table(s: dict[str, Any]) -> str:
    """One repository's models as a Markdown table."""
    over = s["pooled_over"]
    base = s["models"].get(BASELINE, {})
    lines = [
        f"## {s['repository']}",
        "",
        f"{over.get('n', 0):,} test commits ({over.get('n_buggy', 0):,} defect-inducing) in "
        f"{over.get('folds', 0)} folds; chosen: {s['chosen']}; evaluate "
        f"{s['seconds']['evaluate']:.1f}s, of which the bootstrap of {s['bootstrap_scores']} "
        f"models about {s['seconds']['bootstrap']:.2f}s",
        "",
        "| model | ROC-AUC pooled | mean over folds | vs `la` (95% CI) | capture 5% | 10% | 20% |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for k, m in s["models"].items():
        if k == BASELINE:
            vs = "(baseline)"
        elif m["difference"] is None:
            vs = "-"
        else:
            vs = (
                f"{_f(m['difference'], True)} ({_f(m['ci_low'], True)} to {_f(m['ci_high'], True)})"
            )
            if m["compared_commits"] != over.get("n"):
                vs += f" on {m['compared_commits']:,} commits"
        cap = [
            _f(m[f"capture_at_{b}"])
            + ("" if k == BASELINE else f" / {_f(base.get(f'capture_at_{b}'))}")
            for b in (5, 10, 20)
        ]
        lines.append(
            f"| {k}{' *' if k == s['chosen'] else ''} | {_f(m['pooled_roc_auc'])} | "
            f"{_f(m['mean_roc_auc'])} ({m['folds']}) | {vs} | " + " | ".join(cap) + " |"
        )
    lines += [
        "",
        "capture: model / baseline; * chosen (best mean ROC-AUC)",
        "",
        s["statement"],
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("repos", nargs="+", type=Path, metavar="REPO_PATH")
    ap.add_argument("--work", type=Path, help="where the data directories go (default: temporary)")
    ap.add_argument("--folds", type=int, default=None, help="time-ordered folds (train.folds)")
    ap.add_argument("--no-bundled", action="store_true", help="leave the bundled model out")
    ap.add_argument("--predictions", type=Path, help="write DIR/NAME.parquet per repository")
    ap.add_argument("--json", type=Path, help="also write the summaries as JSON here")
    args = ap.parse_args(argv)
    cfg = Config()
    if args.folds:
        cfg = Config.model_validate({"train": {"folds": args.folds}})
    out = []
    with tempfile.TemporaryDirectory(prefix="bench-evaluate-") as tmp:
        work = args.work or Path(tmp)
        for path in args.repos:
            name = _name(path)
            try:
                s, ev = bench(path, work / name, cfg, not args.no_bundled)
            except DiffriskError as err:
                print(f"{path}: {err.message}", file=sys.stderr)
                continue
            if args.predictions:
                s["predictions_file"] = str(
                    write_predictions(ev, args.predictions / f"{name}.parquet")
                )
            print(table(s))
            out.append(s)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))
    return 0 if out else 1


if __name__ == "__main__":
    sys.exit(main())
