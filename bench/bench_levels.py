"""Do levels by rank put the configured share of changes at each level, in time order?

    python bench/bench_levels.py --repo PATH --data-dir DIR [--high-share 0.05]
                                 [--medium-share 0.15] [--window 365] [--json OUT]

DIR holds a mined, labelled dataset and (optionally) a trained model: `diffrisk run` or
`diffrisk mine`, `label`, `train`. Every change is scored by the model the repository
would use (its own, else the bundled one), then walked in time order: each change's level
is its rank among the scores of the changes of the ``--window`` days before it (what
`diffrisk score` does with the past year), skipping changes with fewer than
``score.min_reference`` before them. Printed per calendar year and overall: the share at
each level with a Wilson 95% interval, next to the configured share; and, over labelled
changes, the capture of bug-inducing changes by the high level and by the riskiest 10%,
next to ranking by lines added to source files (the baseline).

The model is the deployed one (fitted on the whole history), so this measures the level
rule and score drift, not the model's accuracy (`diffrisk evaluate` does that out of time).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from diffrisk.config import Config, load_config
from diffrisk.data.datadir import DataDir
from diffrisk.levels import level_by_rank, percentile_of
from diffrisk.model.registry import load_model
from diffrisk.training.evaluate import capture_at, prepare_frame


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (c - h, c + h)


def rolling_levels(
    times: np.ndarray, scores: np.ndarray, window_s: int, min_ref: int, high: float, medium: float
) -> list[str | None]:
    """Each change's level among the changes of the window before it (None: too few)."""
    out: list[str | None] = []
    for i in range(len(times)):
        lo = np.searchsorted(times, times[i] - window_s, side="left")
        hi = np.searchsorted(times, times[i], side="left")  # strictly earlier changes
        ref = scores[lo:hi]
        if len(ref) < min_ref:
            out.append(None)
            continue
        pct = percentile_of(float(scores[i]), ref)
        out.append(None if pct is None else level_by_rank(pct, high, medium))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repo", type=Path, required=True)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--high-share", type=float, default=None)
    ap.add_argument("--medium-share", type=float, default=None)
    ap.add_argument("--window", type=int, default=365)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    cfg: Config = load_config(args.repo, None)
    high = args.high_share if args.high_share is not None else cfg.score.high_share
    medium = args.medium_share if args.medium_share is not None else cfg.score.medium_share
    dd = DataDir(args.data_dir)
    ds = dd.dataset()
    frame = prepare_frame(ds.changes, dd.labels(), ds.files, cfg.label)
    model = load_model(dd.root)
    scores = np.asarray(model.predict_proba(frame), dtype=float).reshape(-1)
    times = pd.to_datetime(frame["author_time"], utc=True).astype("int64").to_numpy() // 10**9
    order = np.argsort(times, kind="stable")
    frame, scores, times = frame.iloc[order].reset_index(drop=True), scores[order], times[order]
    levels = rolling_levels(
        times, scores, args.window * 86400, cfg.score.min_reference, high, medium
    )
    frame["level"] = levels
    frame["score"] = scores
    ranked = frame[frame["level"].notna()]
    out: dict[str, Any] = {
        "repo": str(args.repo),
        "model": str(getattr(model, "version", "")),
        "model_source": str(getattr(model, "source", "")),
        "changes": len(frame),
        "ranked": len(ranked),
        "configured": {"high": high, "medium": medium},
        "years": {},
    }

    def shares(rows: pd.DataFrame) -> dict[str, Any]:
        n = len(rows)
        res: dict[str, Any] = {"n": n}
        for lvl in ("high", "medium"):
            k = int((rows["level"] == lvl).sum())
            lo, hi = wilson(k, n)
            res[lvl] = {"share": k / n if n else math.nan, "ci": [lo, hi]}
        return res

    years = pd.to_datetime(ranked["author_time"], utc=True).dt.year
    for year, rows in ranked.groupby(years):
        out["years"][int(year)] = shares(rows)
    out["overall"] = shares(ranked)
    lab = ranked[ranked["label_state"].isin(["buggy", "clean"]) & (ranked["source_files"] > 0)]
    y = (lab["label_state"] == "buggy").to_numpy().astype(int)
    if len(lab) and y.sum():
        la = pd.to_numeric(lab["la_source"]).to_numpy(dtype=float)
        out["labelled"] = {"n": len(lab), "buggy": int(y.sum())}
        high_mask = (lab["level"] == "high").to_numpy()
        out["capture_high_level"] = float(y[high_mask].sum() / y.sum())
        out["capture_10"] = {
            "model": capture_at(y, lab["score"].to_numpy(), 0.10),
            "lines_added": capture_at(y, la, 0.10),
        }
    print(f"{args.repo}: model {out['model']} ({out['model_source']}), {len(ranked)} of "
          f"{len(frame)} changes ranked (window {args.window} days)")  # fmt: skip
    print(f"{'year':>6} {'n':>6}  high (target {high:.0%})        medium (target {medium:.0%})")
    for year, r in [*out["years"].items(), ("all", out["overall"])]:
        h, m = r["high"], r["medium"]
        print(
            f"{year!s:>6} {r['n']:>6}  {h['share']:6.1%} [{h['ci'][0]:.1%}, {h['ci'][1]:.1%}]"
            f"   {m['share']:6.1%} [{m['ci'][0]:.1%}, {m['ci'][1]:.1%}]"
        )
    if "capture_10" in out:
        c = out["capture_10"]
        print(
            f"labelled {out['labelled']['n']} ({out['labelled']['buggy']} buggy): high level "
            f"captures {out['capture_high_level']:.1%}; riskiest 10%: model {c['model']:.1%} "
            f"vs lines added {c['lines_added']:.1%}"
        )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
