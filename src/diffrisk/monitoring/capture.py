"""Realized capture at a review budget, from the prediction log.

Meta reports its Diff Risk Score as the share of the bug-inducing changes that were among
the riskiest 5%, 10% and 20% of the changes it scored. :func:`realized_capture` gives the
same figure for the predictions diffrisk made before merge (``predictions.parquet``),
joined to the labels later fixes revealed (:func:`diffrisk.data.outcomes.prediction_outcomes`),
next to the lines-added baseline's: the same changes ranked by the lines they added to
source files (``la_source`` from the logged features; ``la`` when a logged change lacks it).
The figure is :func:`diffrisk.training.evaluate.capture_at` (ties counted by share), with a
Wilson 95% interval over the buggy changes.

Which logged predictions count:

* one per pull request, its last (the one standing when it was merged): a pull request
  scored on every push is one change, not one per push;
* only those whose label is final: a ``buggy`` or ``clean`` outcome whose merged commits
  are all older than the verification latency (as for realized accuracy: inside it only
  the bugs found early are known, and counting them alone would inflate the figure), and
  which SZZ can label at all (some commit changes a source file);
* unlabelled, unmerged and too young predictions are counted apart, never as clean.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

#: The features the baseline ranks by, in order of preference: lines added to source
#: files, else all lines added. One of them ranks every counted change.
BASELINE_FEATURES = ("la_source", "la")


def wilson(k: float, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """Wilson score interval of k of n (None when n is 0).

    The formula of :func:`diffrisk.labelling.quality.wilson`, for a ``k`` that may be
    fractional: the expected count when tied changes straddle the budget."""
    if n <= 0:
        return None
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(max(p * (1 - p), 0.0) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def budget_size(share: float, n: int) -> int:
    """How many changes the riskiest ``share`` of ``n`` is (the rule of ``capture_at``)."""
    return max(1, math.ceil(share * n - 1e-9)) if n else 0


def _features(v: Any) -> Mapping[str, Any]:
    if isinstance(v, Mapping):
        return v
    if not isinstance(v, str):
        return {}
    try:
        d = json.loads(v)
    except ValueError:
        return {}
    return d if isinstance(d, Mapping) else {}


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def baseline_scores(features: Sequence[Any]) -> tuple[str | None, np.ndarray | None, int]:
    """The feature the baseline ranks by and its values for each logged change.

    ``la_source`` when every change logged it, else ``la`` when every change did; else
    no baseline (None, None, how many changes logged neither)."""
    feats = [_features(f) for f in features]
    for name in BASELINE_FEATURES:
        vals = [_number(f.get(name)) for f in feats]
        if all(v is not None for v in vals):
            return name, np.asarray(vals, dtype=float), 0
    missing = sum(all(_number(f.get(n)) is None for n in BASELINE_FEATURES) for f in feats)
    return None, None, missing


def _none(v: float) -> float | None:
    return None if math.isnan(v) else float(v)


def realized_capture(
    outcomes: pd.DataFrame,
    frame: pd.DataFrame,
    *,
    mature: pd.Timestamp | None,
    min_buggy: int,
) -> dict[str, Any]:
    """Capture at the review budgets of the logged predictions whose label is known.

    ``outcomes``: :func:`~diffrisk.data.outcomes.prediction_outcomes` of the log.
    ``frame``: the mined changes (``sha``, ``author_time``) with the labels'
    ``source_files`` when known. ``mature``: changes authored after it are younger than
    the verification latency. With fewer than ``min_buggy`` buggy changes the figures
    are ``too_uncertain``.
    """
    # scikit-learn loads with the evaluation module: only when the figures are computed
    from diffrisk.training.evaluate import CAPTURE_SHARES, capture_at

    total = len(outcomes)
    o = outcomes
    superseded = 0
    if total:
        o = o.sort_values("time", kind="stable")
        again = o["pr"].notna() & o.duplicated("pr", keep="last")
        superseded = int(again.sum())
        o = o[~again]
    times = dict(zip(frame["sha"], pd.to_datetime(frame["author_time"], utc=True), strict=True))
    labelable: dict[str, bool] = {}
    if "source_files" in frame:
        n_src = pd.to_numeric(frame["source_files"], errors="coerce").fillna(0)
        labelable = dict(zip(frame["sha"], n_src > 0, strict=True))
    left = {"unlabelled": 0, "too_young": 0, "unmerged": 0, "unlabelable": 0}

    def why_not(outcome: str, shas: list[str]) -> str | None:
        """Why a logged change does not count (None: it counts)."""
        if outcome not in ("buggy", "clean"):
            return outcome if outcome in left else "unlabelled"
        if labelable and not any(labelable.get(s, True) for s in shas):
            return "unlabelable"  # no commit of it changes a source file
        if mature is not None and any(times[s] > mature for s in shas if s in times):
            return "too_young"
        return None

    keep = []
    for outcome, matched in zip(o["outcome"], o["matched"], strict=True):
        reason = why_not(str(outcome), list(matched) if matched is not None else [])
        if reason is not None:
            left[reason] += 1
        keep.append(reason is None)
    counted = o[np.asarray(keep, dtype=bool)] if len(o) else o
    y = (counted["outcome"] == "buggy").to_numpy(dtype=int) if len(counted) else np.zeros(0, int)
    p = counted["probability"].to_numpy(dtype=float) if len(counted) else np.zeros(0)
    feature, base, missing = baseline_scores(list(counted["features"]) if len(counted) else [])
    n, n_buggy = len(y), int(y.sum())
    budgets = []
    for share in CAPTURE_SHARES if n else ():
        row: dict[str, Any] = {"share": share, "changes": budget_size(share, n)}
        for name, score in (("model", p), ("baseline", base)):
            c = _none(capture_at(y, score, share)) if score is not None else None
            row[name] = c
            row[f"{name}_caught"] = None if c is None else c * n_buggy
            row[f"{name}_ci"] = None if c is None else wilson(c * n_buggy, n_buggy)
        budgets.append(row)
    return {
        "predictions": total,
        "superseded": superseded,
        **left,
        "n": n,
        "n_buggy": n_buggy,
        "n_clean": n - n_buggy,
        "until": mature.isoformat() if mature is not None else None,
        "min_buggy": min_buggy,
        "too_uncertain": n_buggy < min_buggy,
        "baseline_feature": feature,
        "baseline_missing": missing,
        "budgets": budgets,
    }
