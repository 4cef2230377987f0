"""Per-project time-ordered model benchmark, as Markdown tables (docs/model.md).

    python bench/bench_models.py NAME=DATA_DIR ... [--code-metrics] [--json OUT]
    python bench/bench_models.py --from-results RESULTS.json   # tables from train_bundled.py

Each DATA_DIR must be mined and labelled (``diffrisk mine`` + ``diffrisk label``). For each
project it runs :func:`diffrisk.training.evaluate.evaluate` (rolling origin, realistic labels,
labelable changes) and prints ROC-AUC of every candidate next to the lines-added baseline,
and Recall@20%Effort. ``--code-metrics`` evaluates with and without the radon columns.
"""

# ruff: noqa: E402  (thread limits must be set before numpy loads)
from __future__ import annotations

import os

# The machine is shared: one BLAS/OpenMP thread (set before numpy and scikit-learn load).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from diffrisk.config import Config
from diffrisk.model.estimators import KINDS
from diffrisk.training.evaluate import evaluate
from diffrisk.training.train import load_training_frame


def _f(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}"


def per_project_table(per: dict[str, Any]) -> str:
    """ROC-AUC of every kind, then the chosen model's PR-AUC and effort-aware metrics
    ranking by probability and by probability / effort, next to 1/(la+ld)."""
    kinds = [k for k in KINDS if k != "la"]
    if any("bundled" in p.get("models", {}) for p in per.values()):
        kinds.append("bundled")  # the cross-project model fitted without the project
    head = (
        "| project | labelable (buggy) | "
        + " | ".join("bundled (held out)" if k == "bundled" else k for k in kinds)
        + " | baseline `la` | chosen | beats baseline | PR-AUC | R@20%E (prob)"
        + " | R@20%E (prob/effort) | Popt (prob) | Popt (prob/effort) | 1/(la+ld) R@20%E |"
    )
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for name, p in per.items():
        m = p["models"]
        chosen = p["chosen"] or "la"
        c = m[chosen]
        lines.append(
            f"| {name} | {p['labelable']} ({p['buggy']}) | "
            + " | ".join(_f(m[k]["roc_auc"]) if k in m else "-" for k in kinds)
            + f" | {_f(m['la']['roc_auc'])} | {chosen} | {'yes' if p.get('beats_baseline') else 'no'}"
            + f" | {_f(c['pr_auc'])} | {_f(c['recall_at_20_effort'])}"
            + f" | {_f(c['density_recall_at_20_effort'])} | {_f(c['popt'])} | {_f(c['density_popt'])}"
            + f" | {_f(p['unsupervised'].get('recall_at_20_effort'))} |"
        )
    return "\n".join(lines)


def lopo_table(res: dict[str, Any]) -> str:
    kinds = res["kinds"]
    lines = [
        "| project (held out) | " + " | ".join(kinds) + " |",
        "| --- |" + " --- |" * len(kinds),
    ]
    for name, r in res["lopo"].items():
        lines.append(f"| {name} | " + " | ".join(_f(r[k]["roc_auc"]) for k in kinds) + " |")
    lines.append("| **mean** | " + " | ".join(_f(res["lopo_mean"][k]) for k in kinds) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("data", nargs="*", help="NAME=DATA_DIR")
    ap.add_argument(
        "--code-metrics", action="store_true", help="also evaluate with the radon columns"
    )
    ap.add_argument("--from-results", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.from_results:
        res = json.loads(args.from_results.read_text())
        print("## Per project (time-ordered)\n")
        print(per_project_table(res["per_project"]))
        print("\n## Cross-project (leave one project out)\n")
        print(lopo_table(res))
        return 0
    cfg = Config()
    out: dict[str, Any] = {}
    for arg in args.data:
        name, path = arg.split("=", 1)
        frame, _ = load_training_frame(Path(path), cfg)
        for cm in (False, True) if args.code_metrics else (False,):
            t0 = time.perf_counter()
            ev = evaluate(frame, cfg, code_metrics=cm).to_dict()
            key = f"{name}{' +code metrics' if cm else ''}"
            out[key] = {k: v["overall"] for k, v in ev["models"].items()} | {
                "seconds": time.perf_counter() - t0
            }
            aucs = ", ".join(
                f"{k} {_f(v['overall'].get('roc_auc'))}" for k, v in ev["models"].items()
            )
            print(f"| {key} | {aucs} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
