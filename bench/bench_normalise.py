"""Per-project normalisation of the features for the cross-project model (issue 20).

    python bench/bench_normalise.py --corpus bench/corpus.toml --org-root ROOT \
        [--normalise rank,robust] [--train-reference full|past] [--results OUT]

The classic cross-project remedy (Zhang et al.'s context-aware rank transformation, 2014
and 2016; Nam et al.'s TCA-like per-project standardisation): every feature transformed
within its own project, so that "large" means large for that project. On the corpus that
``bench/train_bundled.py --corpus`` reads (the same frames, the same labelled, labelable
changes), leave one project out:

* ``logistic``: the current recipe (:func:`train_bundled.fit_kind`, Kamei features,
  standardised over the pooled rows, logistic regression, time-calibrated);
* ``la``: the lines-added baseline, fitted the same way;
* ``rank``: each Kamei feature (after :func:`diffrisk.model.transforms.kamei_transform`)
  replaced by its mid-percentile within the project, ``fix`` kept as 0/1;
* ``robust``: each Kamei feature (already ``log1p``) centred on the project's median and
  divided by its interquartile range (1.349 standard deviations where the IQR is 0, else
  1), ``fix`` kept;

the normalised kinds: logistic regression (class-balanced, C = 0.1, standardised over the
pooled rows, as ``logistic``; not calibrated, which never changes a ranking) on the pooled
transformed rows of the other projects, each transformed by its own distribution (all its
rows; ``--train-reference past``: as the held-out project's past-only rows below).

The held-out project is transformed three ways, each scored on its own rows with
``logistic`` and ``la`` on the same rows:

* ``full``: by the distribution of all its labelled, labelable changes (looks at the
  future: what the literature measures);
* ``half``: by its first half in time only, tested on the second half;
* ``past``: each change by the project's changes before it (references refreshed every
  ``--block`` changes, 50), tested on the changes after the first ``--min-past`` (100).

Per project and scheme: ROC-AUC, each score minus ``la`` and minus ``logistic`` with a
paired-bootstrap 95% interval (1,000 resamples of the rows); over projects: means with
95% intervals from resampling the projects, and how many projects each score is above
``la`` (and beyond chance). JSON to ``--results`` (default ROOT/normalise.json), a
Markdown summary to stdout.
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
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_bundled import (  # noqa: I001  (the bench script next to this one)
    RESAMPLES,
    SEED,
    TARGET_MARGIN,
    _diff,
    _r,
    _rows,
    fit_kind,
    from_corpus,
    mean_interval,
)

from diffrisk.config import Config
from diffrisk.model.transforms import kamei_transform
from diffrisk.training.evaluate import bootstrap_auc

NORMALISERS = ("rank", "robust")
SCHEMES = ("full", "half", "past")
#: Kept as 0/1 (a percentile or z-score of a binary column only shifts it by the fix rate).
RAW = ("fix",)


def kamei(rows: pd.DataFrame) -> pd.DataFrame:
    """The Kamei features the ``logistic`` recipe reads (no PFIX, no code metrics)."""
    return kamei_transform(
        rows, code_metrics=False, pfix=False, code_lines=True, control_lines=True
    )


def _normalise(ref: np.ndarray, x: np.ndarray, how: str) -> np.ndarray:
    """Columns of ``x`` transformed by the distribution of the same columns of ``ref``."""
    out = np.empty_like(x, dtype=float)
    for j in range(x.shape[1]):
        r = ref[:, j]
        r = np.sort(r[~np.isnan(r)])
        v = x[:, j]
        if len(r) == 0:
            out[:, j] = 0.5 if how == "rank" else 0.0
            continue
        if how == "rank":
            lo = np.searchsorted(r, v, "left")
            hi = np.searchsorted(r, v, "right")
            col = (lo + hi) / (2.0 * len(r))
            out[:, j] = np.where(np.isnan(v), 0.5, col)
        else:
            q1, med, q3 = np.percentile(r, [25, 50, 75])
            scale = q3 - q1
            if scale <= 0:
                scale = 1.349 * float(np.std(r))
            if scale <= 0:
                scale = 1.0
            out[:, j] = np.where(np.isnan(v), 0.0, (v - med) / scale)
    return out


def transform(
    feats: pd.DataFrame, how: str, scheme: str, block: int, min_past: int
) -> tuple[np.ndarray, np.ndarray]:
    """A project's time-ordered feature rows transformed within the project: (the rows
    kept, their transformed matrix). ``full``: by all its rows; ``half``: the second half
    by the first; ``past``: each block of ``block`` rows by the rows before it, from row
    ``min_past`` on."""
    cols = [c for c in feats.columns if c not in RAW]
    x = feats[cols].to_numpy(dtype=float)
    n = len(x)
    if scheme == "full":
        keep = np.arange(n)
        z = _normalise(x, x, how)
    elif scheme == "half":
        keep = np.arange(n // 2, n)
        z = _normalise(x[: n // 2], x[n // 2 :], how)
    else:
        keep = np.arange(min(min_past, n), n)
        parts = [
            _normalise(x[:s], x[s : min(s + block, n)], how) for s in range(min_past, n, block)
        ]
        z = np.vstack(parts) if parts else np.zeros((0, len(cols)))
    raw = feats[list(RAW)].to_numpy(dtype=float)[keep]
    return keep, np.hstack([z, raw])


def normalised_model() -> Pipeline:
    return Pipeline(
        [
            (
                "impute",
                SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True),
            ),
            ("scale", StandardScaler()),
            ("clf", LogisticRegression(class_weight="balanced", max_iter=2000, C=0.1)),
        ]
    )


def run(
    frames: dict[str, pd.DataFrame],
    normalisers: list[str],
    train_reference: str,
    block: int,
    min_past: int,
    languages: dict[str, str],
) -> dict[str, Any]:
    rows = {
        n: _rows(f).sort_values("author_time", kind="stable").reset_index(drop=True)
        for n, f in frames.items()
    }
    feats = {n: kamei(r) for n, r in rows.items()}
    # each project's training rows, transformed by its own distribution (once)
    train_scheme = "full" if train_reference == "full" else "past"
    train_z: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {
        how: {n: transform(feats[n], how, train_scheme, block, min_past) for n in rows}
        for how in normalisers
    }
    out: dict[str, Any] = {}
    for name in rows:
        t0 = time.perf_counter()
        train = pd.concat([r for n, r in rows.items() if n != name]).sort_values(
            "author_time", kind="stable"
        )
        test = rows[name]
        y_all = test["label"].astype(int).to_numpy()
        plain = {
            k: np.asarray(fit_kind(k, train, False, False).predict_proba(test)[:, 1], dtype=float)
            for k in ("logistic", "la")
        }
        models = {}
        for how in normalisers:
            xs, ys = [], []
            for n in rows:
                if n == name:
                    continue
                keep, z = train_z[how][n]
                xs.append(z)
                ys.append(rows[n]["label"].astype(int).to_numpy()[keep])
            models[how] = normalised_model().fit(np.vstack(xs), np.concatenate(ys))
        res: dict[str, Any] = {"language": languages.get(name, "?")}
        for scheme in SCHEMES:
            scores: dict[str, np.ndarray] = {}
            keep = None
            for how in normalisers:
                keep, z = transform(feats[name], how, scheme, block, min_past)
                scores[how] = models[how].decision_function(z)
            if keep is None:
                keep = np.arange(len(test))
            y = y_all[keep]
            if len(np.unique(y)) < 2:
                res[scheme] = None
                continue
            scores = {k: v[keep] for k, v in plain.items()} | scores
            full = {k: float(roc_auc_score(y, v)) for k, v in scores.items()}
            boot = bootstrap_auc(y, scores, np.zeros(len(y)), resamples=RESAMPLES, seed=SEED)
            res[scheme] = {
                "changes": len(y),
                "buggy": int(y.sum()),
                "roc_auc": {k: _r(v) for k, v in full.items()},
                "vs_la": {k: _diff(boot, k, "la", full) for k in scores if k != "la"},
                "vs_logistic": {
                    k: _diff(boot, k, "logistic", full)
                    for k in scores
                    if k not in ("la", "logistic")
                },
            }
        out[name] = res
        print(
            f"{name}: {time.perf_counter() - t0:.1f}s "
            + "; ".join(
                f"{s} " + ", ".join(f"{k} {v}" for k, v in res[s]["roc_auc"].items())
                for s in SCHEMES
                if res[s]
            ),
            file=sys.stderr,
        )
    return out


def summary(res: dict[str, Any], normalisers: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for scheme in SCHEMES:
        per = {n: r[scheme] for n, r in res.items() if r.get(scheme)}
        ks = ["logistic", *normalisers]
        out[scheme] = {
            "projects": len(per),
            "roc_auc": {
                k: mean_interval([p["roc_auc"][k] for p in per.values()]) for k in [*ks, "la"]
            },
            "vs_la": {
                k: mean_interval([p["vs_la"][k]["difference"] for p in per.values()]) for k in ks
            },
            "vs_logistic": {
                k: mean_interval([p["vs_logistic"][k]["difference"] for p in per.values()])
                for k in normalisers
            },
            "above_la": {k: sum(p["vs_la"][k]["difference"] > 0 for p in per.values()) for k in ks},
            "above_la_beyond_chance": {
                k: sum(p["vs_la"][k]["ci_low"] > 0 for p in per.values()) for k in ks
            },
            "at_or_below_la": {
                k: [n for n, p in per.items() if p["vs_la"][k]["difference"] <= 0] for k in ks
            },
            "above_logistic": {
                k: sum(p["vs_logistic"][k]["difference"] > 0 for p in per.values())
                for k in normalisers
            },
            "vs_logistic_beyond_chance": {
                k: {
                    "better": sum(p["vs_logistic"][k]["ci_low"] > 0 for p in per.values()),
                    "worse": sum(p["vs_logistic"][k]["ci_high"] < 0 for p in per.values()),
                }
                for k in normalisers
            },
        }
        for k in ks:
            m = out[scheme]["vs_la"][k]["mean"] or 0
            out[scheme].setdefault("target_met", {})[k] = bool(
                m >= TARGET_MARGIN and not out[scheme]["at_or_below_la"][k]
            )
    return out


def _ci(d: dict[str, Any], sign: bool = False) -> str:
    f = "+.3f" if sign else ".3f"
    return f"{d['mean']:{f}} ({d['ci_low']:{f}} to {d['ci_high']:{f}})"


def markdown(summ: dict[str, Any], normalisers: list[str]) -> str:
    lines = [
        "| reference | projects | score | mean ROC-AUC | - `la` | above `la` (beyond chance) "
        "| - `logistic` | above `logistic` (beyond chance better / worse) |",
        "| --- | ---: | --- | --- | --- | --- | --- | --- |",
    ]
    for scheme, s in summ.items():
        for k in ["la", "logistic", *normalisers]:
            if k == "la":
                lines.append(
                    f"| {scheme} | {s['projects']} | `la` | {_ci(s['roc_auc']['la'])} | | | | |"
                )
                continue
            vl = s["vs_logistic"].get(k)
            bc = s["vs_logistic_beyond_chance"].get(k)
            above = (
                "" if bc is None else f"{s['above_logistic'][k]} ({bc['better']} / {bc['worse']})"
            )
            lines.append(
                f"| {scheme} | {s['projects']} | `{k}` | {_ci(s['roc_auc'][k])} "
                f"| {_ci(s['vs_la'][k], True)} | {s['above_la'][k]} "
                f"({s['above_la_beyond_chance'][k]}) "
                f"| {_ci(vl, True) if vl else ''} "
                f"| {above} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--corpus", type=Path, required=True, help="bench/corpus.toml")
    ap.add_argument("--org-root", type=Path, required=True)
    ap.add_argument("--normalise", default="rank,robust", help="rank, robust or both")
    ap.add_argument(
        "--train-reference",
        choices=("full", "past"),
        default="full",
        help="how the training projects are transformed (full: by all their rows)",
    )
    ap.add_argument("--block", type=int, default=50)
    ap.add_argument("--min-past", type=int, default=100)
    ap.add_argument("--min-buggy", type=int, default=20)
    ap.add_argument("--results", type=Path, default=None)
    args = ap.parse_args(argv)
    normalisers = args.normalise.split(",")
    if not set(normalisers) <= set(NORMALISERS):
        ap.error(f"--normalise: {', '.join(NORMALISERS)}")
    args.mirrors, args.org_run = None, False
    t0 = time.perf_counter()
    frames, info = from_corpus(args, Config())
    t1 = time.perf_counter()
    res = run(
        frames, normalisers, args.train_reference, args.block, args.min_past, info["languages"]
    )
    summ = summary(res, normalisers)
    results = {
        "normalise": normalisers,
        "train_reference": args.train_reference,
        "block": args.block,
        "min_past": args.min_past,
        "left_out": info["left_out"],
        "lopo": res,
        "summary": summ,
        "seconds": {"load": round(t1 - t0, 1), "lopo": round(time.perf_counter() - t1, 1)},
    }
    path = args.results or args.org_root / "normalise.json"
    path.write_text(json.dumps(results, indent=2))
    print(markdown(summ, normalisers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
