"""Do the risky lines find the lines later fixes changed? Line-level ranking, out of time.

    python bench/bench_lines.py --repo PATH --data-dir DIR [--resamples 2000] [--json OUT]
        [--pool EARLIER.json]

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

And line models learned from the SZZ lines themselves (``diffrisk.scoring.line_model``):
per fold, the added lines of every change before the test period that a link blames,
labelled by the links whose fix came before the test period (a later fix labels nothing;
a line whose text a link names is buggy, the others clean), fitted to order the lines
within a change (pairwise logistic regression on tokens and line features; variants: only
features, only tokens, pointwise, other penalties), and the line model's and the tokens
model's orders combined (sum of ranks). A fold with too few labelled lines ranks by
tokens per line instead (what scoring would fall back on). The time spent reading the
training changes' diffs and fitting is printed (``cost``). Leakage check: the share of
test changes with a buggy line whose text was a buggy training line of the fold.

Per change, with ties broken at random (expected values, exact; so is the random order):
- Top-5 accuracy: at least one of the 5 first lines is buggy;
- Recall@20%: the share of its buggy lines among the first ceil(20%) of its lines;
- IFA: clean lines read before the first buggy one.
Means over the changes with 95% bootstrap intervals (changes resampled, ``--resamples``;
pooled over projects, the changes of all of them), and each method's paired difference
from the random order (and the line models' from the tokens model's and the tokens per
line orders); for all the changes, and apart for those with more than 10 ranked
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
from scipy.stats import rankdata

from diffrisk.config import Config
from diffrisk.data.datadir import DataDir
from diffrisk.features.codelines import _DIFF_FLAGS
from diffrisk.features.source import is_source_path
from diffrisk.features.vendored import exclude
from diffrisk.git.repo import open_repo
from diffrisk.model.estimators import fit_estimator
from diffrisk.scoring.line_model import (
    LabelledChange,
    fit_line_model,
    label_lines,
    link_table,
    read_change_lines,
)
from diffrisk.scoring.lines import AddedLine, line_score, token_weights
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
LINE = "line model: tokens + line features"
LINE_FEATURES = "line model: line features only"
LINE_TOKENS = "line model: tokens only"
LINE_POINTWISE = "line model, pointwise: tokens + features"
#: The line models fitted per fold: name -> fit_line_model's keyword arguments.
LINE_MODELS: dict[str, dict[str, Any]] = {
    LINE: {},
    LINE_FEATURES: {"tokens": False},
    LINE_TOKENS: {"features": False},
    LINE_POINTWISE: {"pairwise": False, "anchor": 1.0},
    "line model, not anchored": {"anchor": 1.0},
    "line model, C=0.1": {"c": 0.1},
    "line model, C=1": {"c": 1.0},
}
#: Two orders combined: the sum of a line's ranks in both (ties: average ranks).
COMBINED = {
    "line model + tokens model (ranks)": (LINE, TOKENS),
    "tokens per line + tokens model (ranks)": (SIZE, TOKENS),
}
#: Orders by the file's history: its past fixes (commits the label stage took for fixes
#: that touched the path before the change).
FILE_FIXES = "file's past fixes, then tokens per line"
FILE_FIXES_RANKS = "file's past fixes + tokens per line (ranks)"
LINE_FILE_RANKS = "line model + file's past fixes (ranks)"
FILE_ORDERS = (FILE_FIXES, FILE_FIXES_RANKS, LINE_FILE_RANKS)


def file_fixes(files: pd.DataFrame, frame: pd.DataFrame) -> Callable[[str, int], int]:
    """(path, time in ns) -> fixes that touched the path strictly before that time."""
    import bisect

    when = dict(zip(frame["sha"], frame["author_time"].astype("int64"), strict=True))
    fix = {
        str(s_)
        for s_, f_ in zip(frame["sha"], frame["is_fix"].fillna(0), strict=True)
        if int(f_) == 1
    }
    by_path: dict[str, list[int]] = {}
    for sha, path in zip(files["sha"], files["path"], strict=True):
        if sha in fix and sha in when:
            by_path.setdefault(str(path), []).append(int(when[sha]))
    for v in by_path.values():
        v.sort()
    return lambda path, t: bisect.bisect_left(by_path.get(path, []), t)


#: Paired differences reported: method -> the orders it is compared with.
REFERENCES = ("random", TOKENS, SIZE)


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
    all_links = DataDir(data_dir).links()
    links = all_links[all_links["dropped"].isna() & (all_links["source"] == "szz")]
    truth, complete = buggy_texts(links)
    when = dict(zip(frame["sha"], frame["author_time"], strict=True))
    ltab = link_table(all_links, when)
    by_sha = {sha: g for sha, g in ltab.groupby("inducing_sha", sort=False)}
    gap = cfg.train.gap_days if cfg.train.gap_days is not None else cfg.label.verification_days
    folds = time_folds(frame, cfg.train.folds, gap)
    final = frame["label"].fillna(0).astype(int).to_numpy()
    past_fixes = file_fixes(DataDir(data_dir).dataset().files, frame)
    methods = [*LINE_MODELS, *COMBINED, *FILE_ORDERS, TOKENS, JITLINE, *heuristics(), "random"]
    rows: list[dict[str, Any]] = []
    counts = {"buggy_test_changes": 0, "no_link_lines": 0, "no_buggy_line_found": 0, "root": 0}
    cache: dict[str, list[AddedLine] | None] = {}
    cost = {"diffs": 0, "diff_seconds": 0.0, "fit_seconds": 0.0}

    def lines_of(sha: str) -> list[AddedLine] | None:
        if sha not in cache:
            t = time.perf_counter()
            cache[sha] = read_change_lines(
                repo, sha, lambda p: is_source_path(p, lcfg), _DIFF_FLAGS
            )
            cost["diffs"] += 1
            cost["diff_seconds"] += time.perf_counter() - t
        return cache[sha]

    line_folds: list[dict[str, Any]] = []
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
        # the line models: the changes before the test period, labelled by the fixes
        # known before it (a link's fix after the cutoff labels nothing)
        start = pd.Timestamp(f.test_start)
        labelled: list[LabelledChange] = []
        for sha, g in by_sha.items():
            t = when.get(sha)
            if t is None or not t < start or not (g["fix_time"] < start).any():
                continue
            ls = lines_of(sha)
            if ls:
                labelled.append(label_lines(sha, ls, g, start))
        t = time.perf_counter()
        line_models = {name: fit_line_model(labelled, **kw) for name, kw in LINE_MODELS.items()}
        cost["fit_seconds"] += time.perf_counter() - t
        seen = {
            norm(ln.text)
            for ch in labelled
            for ln, yy in zip(ch.lines, ch.y, strict=True)
            if yy == 1
        }
        lm = line_models[LINE]
        line_folds.append(
            {
                "fold": f.index,
                "trained_on": lm.trained_on if lm else None,
                "fallback": lm is None,
            }
        )
        test = [i for i in f.test_idx if final[i] == 1]
        log(
            f"fold {f.index}: {len(train)} training rows, {len(test)} defect-inducing test "
            f"changes; line model on {lm.trained_on if lm else 'too few lines: fallback'}"
        )
        for i in test:
            sha = str(frame.at[i, "sha"])
            counts["buggy_test_changes"] += 1
            if sha not in truth:
                counts["no_link_lines"] += 1
                continue
            maybe = lines_of(sha)
            if maybe is None:
                counts["root"] += 1
                continue
            lines = maybe
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
                "seen_buggy_text": any(
                    norm(ln.text) in seen for ln, yy in zip(lines, y, strict=True) if yy
                ),
            }
            size = np.array([line_score(ln, None) for ln in lines], dtype=float)
            scores = {
                **{
                    name: (m.score(lines) if m is not None else size)
                    for name, m in line_models.items()
                },
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
            t_change = when[sha].value
            fixes = np.array([past_fixes(ln.path, t_change) for ln in lines], dtype=float)
            scores[FILE_FIXES] = fixes * 1000.0 + size
            scores[FILE_FIXES_RANKS] = rankdata(fixes) + rankdata(size)
            scores[LINE_FILE_RANKS] = rankdata(fixes) + rankdata(scores[LINE])
            for name, (a, b) in COMBINED.items():
                scores[name] = rankdata(scores[a]) + rankdata(scores[b])
            for name in methods:
                for k, v in expected_metrics(scores[name], y).items():
                    row[f"{name}|{k}"] = v
            rows.append(row)
    return {
        "repo": repo_path.name if repo_path.name != "repo" else repo_path.parent.name,
        "rows": rows,
        "counts": counts,
        "links": {"szz": len(links), "incomplete_sample": int((links["lines"] > 8).sum())},
        "line_folds": line_folds,
        "cost": {k: round(v, 2) for k, v in cost.items()},
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
    # leakage check: a buggy line whose text was a buggy training line of the fold (moved
    # or re-added code): the share of such changes
    out["seen_buggy_text"] = float(df["seen_buggy_text"].mean())
    for metric in ("top5", "recall20", "ifa"):
        values = {m: df[f"{m}|{metric}"].to_numpy(dtype=float) for m in methods}
        ci = bootstrap(values, resamples)
        out[metric] = {m: {"mean": float(values[m].mean()), "ci": ci[m]} for m in methods}
        for ref in REFERENCES:
            if ref not in values:
                continue
            others = [
                m
                for m in methods
                if m != ref
                and (ref == "random" or m in LINE_MODELS or m in COMBINED or m in FILE_ORDERS)
            ]
            diffs = {m: values[m] - values[ref] for m in others}
            dci = bootstrap(diffs, resamples)
            for m in others:
                out[metric][m][f"vs_{ref}"] = float(diffs[m].mean())
                out[metric][m][f"vs_{ref}_ci"] = dci[m]
    return out


def _diff(v: dict[str, Any], ref: str, pct: bool) -> str:
    d = v[f"vs_{ref}_ci"]
    g = (lambda x: f"{100 * x:+.1f}") if pct else (lambda x: f"{x:+.2f}")
    return f"[{g(v[f'vs_{ref}'])}: {g(d[0])} to {g(d[1])}]"


def _fmt(s: dict[str, Any], metric: str, m: str, pct: bool) -> str:
    v = s[metric][m]
    f = (lambda x: f"{100 * x:.1f}%") if pct else (lambda x: f"{x:.2f}")
    text = f"{f(v['mean'])} ({f(v['ci'][0])}-{f(v['ci'][1])})"
    if "vs_random" in v:
        text += " " + _diff(v, "random", pct)
    return text


def report(name: str, s: dict[str, Any], methods: Sequence[str]) -> str:
    if not s.get("changes"):
        return f"{name}: no change to evaluate"
    out = [
        f"{name}: {s['changes']} defect-inducing changes (median {s['lines_median']:.0f} added "
        f"lines, {s['buggy_lines_median']:.0f} buggy; {100 * s['seen_buggy_text']:.1f}% with a "
        "buggy line's text buggy in the fold's training changes)",
        f"  {'method':42} {'Top-5 accuracy':38} {'Recall@20%':38} IFA",
    ]
    for m in methods:
        out.append(
            f"  {m:42} {_fmt(s, 'top5', m, True):38} {_fmt(s, 'recall20', m, True):38} "
            f"{_fmt(s, 'ifa', m, False)}"
        )
    for m in methods:
        for ref in REFERENCES[1:]:
            if f"vs_{ref}" in s["top5"][m]:
                out.append(
                    f"  {m} - {ref}: Top-5 {_diff(s['top5'][m], ref, True)}, Recall@20% "
                    f"{_diff(s['recall20'][m], ref, True)}, IFA {_diff(s['ifa'][m], ref, False)}"
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
    ap.add_argument("--repo", type=Path, action="append", default=[])
    ap.add_argument("--data-dir", type=Path, action="append", default=[])
    ap.add_argument(
        "--pool",
        type=Path,
        action="append",
        default=[],
        help="also pool the projects of an earlier --json output (measured with these methods)",
    )
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
        print(f"  {res['counts']}; links {res['links']}; cost {res['cost']}; {res['seconds']} s\n")
        pooled.extend(res["rows"])
        results.append(res)
    for earlier in args.pool:
        for res in json.loads(earlier.read_text())["projects"]:
            if res["methods"] != methods and methods:
                ap.error(f"{earlier} measured other methods")
            methods = res["methods"]
            print(f"{res['repo']}: {len(res['rows'])} changes from {earlier}")
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
