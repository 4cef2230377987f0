"""Do the risky lines find the lines later fixes changed? Line-level ranking, out of time.

    python bench/bench_lines.py --repo PATH --data-dir DIR [--resamples 2000] [--json OUT]

DIR holds a mined, labelled dataset (`diffrisk run` or `diffrisk mine`, `label`). The
ground truth is SZZ's: the lines a later fix deleted or changed, blamed on the change that
added them. ``szz_links.parquet`` keeps up to 8 blamed line texts per (fix, inducing
commit, file) (``sample``); an added line of the inducing commit is *buggy* when its text
(whitespace removed, as ``git blame -w`` compares) is one of them in that file. A link
with more than 8 blamed lines is incomplete; the share of such links is printed.

The evaluation is time-ordered like `diffrisk evaluate`: the rolling-origin folds of
``train.folds`` (90-day gap, realistic labels: a training change counts as buggy only if
its fix came before the test period). For each fold a ``tokens`` model is fitted on the
training rows (``diffrisk.model.estimators.fit_estimator``) and ranks the added lines of
every defect-inducing test change with a blamed line among them, exactly as `diffrisk
score` ranks them (``diffrisk.scoring.lines``: added lines of code, moved and re-indented
lines and imports left out; a line scores the sum of its tokens' positive weights). Next
to it: JITLine's sum of all the weights, the fallback of other model kinds (tokens per
line, the line-level analogue of ranking changes by lines added), other orders that need
no model (control-flow lines; indentation), and a random order.

Per change, with ties broken at random (expected values, exact; so is the random order):
- Top-5 accuracy: at least one of the 5 first lines is buggy;
- Recall@20%: the share of its buggy lines among the first ceil(20%) of its lines;
- IFA: clean lines read before the first buggy one.
Means over the changes with 95% bootstrap intervals (changes resampled, ``--resamples``;
pooled over projects, the changes of all of them), and each method's paired difference
from the random order; for all the changes, and apart for those with more than 10 ranked
lines (on a change of 5 lines or fewer every order finds a buggy line in its first 5).
Several ``--repo``/``--data-dir`` pairs are evaluated one after the other and pooled.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from diffrisk.config import Config
from diffrisk.data.datadir import DataDir
from diffrisk.features.codelines import _DIFF_FLAGS
from diffrisk.features.source import is_source_path
from diffrisk.features.vendored import exclude
from diffrisk.git.repo import open_repo
from diffrisk.model.estimators import fit_estimator
from diffrisk.scoring.lines import AddedLine, line_score, parse_added_lines, token_weights
from diffrisk.training.evaluate import time_folds
from diffrisk.training.train import load_training_frame

TOP = 5
SHARE = 0.2
SEED = 20261207
_WS = re.compile(r"\s+")


def norm(text: str) -> str:
    return _WS.sub("", text)


# -- ranking metrics with ties broken at random (exact expectations) ------------------------


def _groups(scores: np.ndarray, y: np.ndarray) -> list[tuple[int, int]]:
    """(lines, buggy lines) per distinct score, highest score first."""
    order = np.argsort(-scores, kind="stable")
    s, yy = scores[order], y[order]
    out = []
    i = 0
    while i < len(s):
        j = i
        while j < len(s) and s[j] == s[i]:
            j += 1
        out.append((j - i, int(yy[i:j].sum())))
        i = j
    return out


def expected_metrics(scores: np.ndarray, y: np.ndarray, top: int = TOP) -> dict[str, float]:
    """Top-``top`` hit, Recall@20% and IFA of one change's lines, ties at random."""
    n, b = len(y), int(y.sum())
    groups = _groups(np.asarray(scores, dtype=float), np.asarray(y, dtype=int))

    def within(k: int) -> tuple[float, float]:
        """(P(at least one buggy in the first k), expected buggy in the first k)."""
        left, found, miss = k, 0.0, 1.0
        for g, gb in groups:
            if left <= 0:
                break
            m = min(left, g)
            found += m * gb / g
            # P(no buggy among m drawn from the group without replacement)
            miss *= math.comb(g - gb, m) / math.comb(g, m)
            left -= m
        return 1.0 - miss, found

    hit, _ = within(min(top, n))
    _, found = within(math.ceil(SHARE * n))
    ifa, clean_above = 0.0, 0
    for g, gb in groups:
        if gb:
            ifa = clean_above + (g - gb) / (gb + 1)
            break
        clean_above += g
    return {"top5": hit, "recall20": found / b, "ifa": ifa}


# -- ground truth ------------------------------------------------------------------------------


def buggy_texts(links: pd.DataFrame) -> tuple[dict[str, dict[str, set[str]]], dict[str, bool]]:
    """Per inducing commit and path, the blamed line texts (normalised); and per commit,
    whether every link's sample holds all its blamed lines."""
    out: dict[str, dict[str, set[str]]] = {}
    complete: dict[str, bool] = {}
    for r in links.itertuples(index=False):
        texts = [norm(str(t)) for t in (r.sample if r.sample is not None else [])]
        out.setdefault(r.inducing_sha, {}).setdefault(r.path, set()).update(t for t in texts if t)
        complete[r.inducing_sha] = complete.get(r.inducing_sha, True) and int(r.lines) <= len(texts)
    return out, complete


# -- methods -------------------------------------------------------------------------------


#: The orders measured: diffrisk's two, JITLine's full sum, heuristics, random.
TOKENS = "tokens model: positive weights (diffrisk)"
JITLINE = "tokens model: all weights (JITLine)"
SIZE = "tokens per line (diffrisk's fallback)"


def heuristics() -> dict[str, Callable[[AddedLine], float]]:
    """Orders that need no model (the fallback first)."""
    return {
        SIZE: lambda ln: line_score(ln, None),
        "control-flow, then indentation": lambda ln: (
            (1.0 + min(ln.indent, 99) / 100.0) if ln.control else 0.0
        ),
        "control-flow only": lambda ln: 1.0 if ln.control else 0.0,
        "control-flow, then tokens per line": lambda ln: (
            (1000.0 if ln.control else 0.0) + len(ln.tokens)
        ),
        "indentation only": lambda ln: float(ln.indent),
    }


def bootstrap(
    values: dict[str, np.ndarray], resamples: int, seed: int = SEED
) -> dict[str, tuple[float, float]]:
    n = len(next(iter(values.values())))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))
    out = {}
    for k, v in values.items():
        means = v[idx].mean(axis=1)
        out[k] = (float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))
    return out


def evaluate_repo(
    repo_path: Path, data_dir: Path, cfg: Config, log: Callable[[str], None]
) -> dict[str, Any]:
    t0 = time.perf_counter()
    repo = open_repo(repo_path)
    frame, _meta = load_training_frame(data_dir, cfg)
    lcfg = exclude(cfg.label, frame.attrs.get("vendored", []))
    links = DataDir(data_dir).links()
    links = links[links["dropped"].isna() & (links["source"] == "szz")]
    truth, complete = buggy_texts(links)
    gap = cfg.train.gap_days if cfg.train.gap_days is not None else cfg.label.verification_days
    folds = time_folds(frame, cfg.train.folds, gap)
    final = frame["label"].fillna(0).astype(int).to_numpy()
    methods = [TOKENS, JITLINE, *heuristics(), "random"]
    rows: list[dict[str, Any]] = []
    counts = {"buggy_test_changes": 0, "no_link_lines": 0, "no_buggy_line_found": 0, "root": 0}
    for f in folds:
        if f.skipped:
            log(f"fold {f.index}: skipped ({f.skipped})")
            continue
        train = frame.iloc[f.train_idx]
        try:
            est = fit_estimator("tokens", train, f.train_y)
        except Exception as err:  # a fold too small for the tokens model
            log(f"fold {f.index}: no tokens model ({err})")
            continue
        weights = token_weights(est) or {}
        test = [i for i in f.test_idx if final[i] == 1]
        log(f"fold {f.index}: {len(train)} training rows, {len(test)} defect-inducing test changes")
        for i in test:
            sha = str(frame.at[i, "sha"])
            counts["buggy_test_changes"] += 1
            if sha not in truth:
                counts["no_link_lines"] += 1
                continue
            try:
                diff = repo.run("diff", *_DIFF_FLAGS, f"{sha}^", sha)
            except Exception:
                counts["root"] += 1
                continue
            added = parse_added_lines(diff, lambda p: is_source_path(p, lcfg))
            lines = [ln for ls in added.values() for ln in ls]
            y = np.array([norm(ln.text) in truth[sha].get(ln.path, ()) for ln in lines], dtype=int)
            if not y.sum():
                counts["no_buggy_line_found"] += 1
                continue
            row: dict[str, Any] = {
                "sha": sha,
                "fold": f.index,
                "lines": len(lines),
                "buggy": int(y.sum()),
                "complete": bool(complete.get(sha, True)),
            }
            scores = {
                TOKENS: np.array([line_score(ln, weights) for ln in lines], dtype=float),
                JITLINE: np.array(
                    [sum(weights.get(t, 0.0) for t in ln.tokens) for ln in lines], dtype=float
                ),
                **{
                    name: np.array([fn(ln) for ln in lines], dtype=float)
                    for name, fn in heuristics().items()
                },
                "random": np.zeros(len(lines)),
            }
            for name in methods:
                for k, v in expected_metrics(scores[name], y).items():
                    row[f"{name}|{k}"] = v
            rows.append(row)
    return {
        "repo": repo_path.name if repo_path.name != "repo" else repo_path.parent.name,
        "rows": rows,
        "counts": counts,
        "links": {"szz": len(links), "incomplete_sample": int((links["lines"] > 8).sum())},
        "methods": methods,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def summarise(rows: list[dict[str, Any]], methods: Sequence[str], resamples: int) -> dict[str, Any]:
    out: dict[str, Any] = {"changes": len(rows)}
    if not rows:
        return out
    df = pd.DataFrame(rows)
    out["lines_median"] = float(df["lines"].median())
    out["buggy_lines_median"] = float(df["buggy"].median())
    for metric in ("top5", "recall20", "ifa"):
        values = {m: df[f"{m}|{metric}"].to_numpy(dtype=float) for m in methods}
        diffs = {m: values[m] - values["random"] for m in methods if m != "random"}
        ci = bootstrap(values, resamples)
        dci = bootstrap(diffs, resamples)
        out[metric] = {
            m: {
                "mean": float(values[m].mean()),
                "ci": ci[m],
                **(
                    {"vs_random": float(diffs[m].mean()), "vs_random_ci": dci[m]}
                    if m in diffs
                    else {}
                ),
            }
            for m in methods
        }
    return out


def _fmt(s: dict[str, Any], metric: str, m: str, pct: bool) -> str:
    v = s[metric][m]
    f = (lambda x: f"{100 * x:.1f}%") if pct else (lambda x: f"{x:.2f}")
    text = f"{f(v['mean'])} ({f(v['ci'][0])}-{f(v['ci'][1])})"
    if "vs_random" in v:
        d = v["vs_random_ci"]
        g = (lambda x: f"{100 * x:+.1f}") if pct else (lambda x: f"{x:+.2f}")
        text += f" [{g(v['vs_random'])}: {g(d[0])} to {g(d[1])}]"
    return text


def report(name: str, s: dict[str, Any], methods: Sequence[str]) -> str:
    if not s.get("changes"):
        return f"{name}: no change to evaluate"
    out = [
        f"{name}: {s['changes']} defect-inducing changes (median {s['lines_median']:.0f} added "
        f"lines, {s['buggy_lines_median']:.0f} buggy)",
        f"  {'method':42} {'Top-5 accuracy':38} {'Recall@20%':38} IFA",
    ]
    for m in methods:
        out.append(
            f"  {m:42} {_fmt(s, 'top5', m, True):38} {_fmt(s, 'recall20', m, True):38} "
            f"{_fmt(s, 'ifa', m, False)}"
        )
    return "\n".join(out)


#: Changes with more ranked lines than this are reported apart: with 10 lines or fewer,
#: the first 5 are half of them or more, and Top-5 says little (a random order scores 1
#: on every change of 5 lines or fewer).
BIG = 10


def blocks(rows: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    return [
        ("all", rows),
        (f"more than {BIG} ranked lines", [r for r in rows if r["lines"] > BIG]),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repo", type=Path, action="append", required=True)
    ap.add_argument("--data-dir", type=Path, action="append", required=True)
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if len(args.repo) != len(args.data_dir):
        ap.error("give one --data-dir per --repo")
    cfg = Config()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    results, pooled = [], []
    methods: list[str] = []
    for repo, data in zip(args.repo, args.data_dir, strict=True):
        res = evaluate_repo(repo, data, cfg, log)
        methods = res["methods"]
        res["summary"] = {}
        for name, rows in blocks(res["rows"]):
            res["summary"][name] = summarise(rows, methods, args.resamples)
            print(report(f"{res['repo']}, {name}", res["summary"][name], methods))
        print(f"  {res['counts']}; links {res['links']}; {res['seconds']} s\n")
        pooled.extend(res["rows"])
        results.append(res)
    pooled_summary = {}
    if len(results) > 1:
        for name, rows in blocks(pooled):
            pooled_summary[name] = summarise(rows, methods, args.resamples)
            print(report(f"pooled, {name}", pooled_summary[name], methods))
    out = {
        "date": datetime.now(timezone.utc).date().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "resamples": args.resamples,
        "projects": results,  # with every change's rows: other paired differences
        "pooled": pooled_summary,
    }
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
