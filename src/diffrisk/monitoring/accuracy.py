"""Realized accuracy of the current model on the labelled history.

Labels come from SZZ (``labels.parquet``); a change whose label is still ``unlabelled``
is never counted as clean, and changes SZZ can never label (``source_files == 0``) are
left out. Per calendar period and overall: ROC-AUC, precision and recall of the gate at
its threshold, and Recall@20%Effort. The monthly quantiles of the predicted risk (the
risk-over-time plot) are computed here too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from diffrisk.config import Config


def gate_threshold(config: Config, metadata: Mapping[str, Any] | None = None) -> float:
    """The probability at which the merge gate blocks (``gate.fail_on``; ``warn_on`` if never)."""
    th = dict(_thresholds(config, metadata))
    level = config.gate.fail_on if config.gate.fail_on != "never" else config.gate.warn_on
    return th.get(level, th["high"])


def _thresholds(config: Config, metadata: Mapping[str, Any] | None) -> dict[str, float]:
    th = {"medium": config.score.medium, "high": config.score.high}
    md = (metadata or {}).get("thresholds")
    if isinstance(md, Mapping):
        th.update({k: float(v) for k, v in md.items() if k in th and v is not None})
    return th


def eligible(frame: pd.DataFrame) -> pd.Series:
    """Labelled changes (buggy or clean) that SZZ could label at all; unlabelled never count."""
    ok = frame["label_state"].isin(["buggy", "clean"])
    if "source_files" in frame:
        ok &= pd.to_numeric(frame["source_files"], errors="coerce").fillna(0) > 0
    return ok


def accuracy(
    y: np.ndarray, p: np.ndarray, effort: np.ndarray, threshold: float, min_class: int = 1
) -> dict[str, Any]:
    """Realized metrics of scores ``p`` against labels ``y`` (only labelled rows!)."""
    from sklearn.metrics import roc_auc_score

    from diffrisk.training.evaluate import recall_at_effort

    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    n_buggy = int(y.sum())
    n_clean = int(len(y) - n_buggy)
    flagged = p >= threshold
    tp = int((flagged & (y == 1)).sum())
    enough = n_buggy >= min_class and n_clean >= min_class
    return {
        "n": len(y),
        "n_buggy": n_buggy,
        "n_clean": n_clean,
        "flagged": int(flagged.sum()),
        "true_positives": tp,
        "precision": tp / int(flagged.sum()) if flagged.any() else None,
        "recall": tp / n_buggy if n_buggy else None,
        "roc_auc": float(roc_auc_score(y, p)) if enough else None,
        "recall_at_20_effort": _none(recall_at_effort(y, p, effort, 0.2)) if n_buggy else None,
    }


def _none(v: float) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def windows(
    scored: pd.DataFrame,
    threshold: float,
    *,
    freq: str = "Q",
    training_end: pd.Timestamp | None = None,
    min_class: int = 5,
) -> list[dict[str, Any]]:
    """Realized metrics per calendar period of author time (labelled rows only).

    ``scored`` needs ``author_time``, ``probability``, ``label``, ``label_state``, ``la``,
    ``ld`` (and ``source_files``). A period whose changes were all authored before
    ``training_end`` is marked ``in_training`` (in-sample: optimistic).
    """
    if scored.empty:
        return []
    t = pd.to_datetime(scored["author_time"], utc=True)
    period = t.dt.tz_localize(None).dt.to_period(freq)
    ok = eligible(scored).to_numpy()
    y = pd.to_numeric(scored["label"], errors="coerce").fillna(0).astype(int).to_numpy()
    p = scored["probability"].to_numpy(dtype=float)
    effort = (
        pd.to_numeric(scored["la"]).fillna(0) + pd.to_numeric(scored["ld"]).fillna(0)
    ).to_numpy(dtype=float)
    out = []
    for per, idx in scored.groupby(period.to_numpy(), sort=True).indices.items():
        lab = idx[ok[idx]]
        m = accuracy(y[lab], p[lab], effort[lab], threshold, min_class)
        start = per.start_time.tz_localize("UTC")
        end = per.end_time.tz_localize("UTC")
        out.append(
            {
                "period": str(per),
                "start": start.isoformat(),
                "end": end.isoformat(),
                "changes": len(idx),
                "labelled": len(lab),
                "unlabelled": int((scored["label_state"].to_numpy()[idx] == "unlabelled").sum()),
                "mean_probability": float(p[idx].mean()),
                "p90_probability": float(np.quantile(p[idx], 0.9)),
                "in_training": bool(training_end is not None and end <= training_end),
                **m,
            }
        )
    return out


def monthly_risk(scored: pd.DataFrame) -> list[dict[str, Any]]:
    """Monthly quantiles of the predicted risk (the plot's data)."""
    t = scored["author_time"].dt.tz_localize(None).dt.to_period("M")
    g = scored.groupby(t.to_numpy())["probability"]
    q = g.quantile([0.5, 0.9]).unstack()
    n = g.size()
    return [
        {
            "month": str(per),
            "changes": int(n[per]),
            "median": float(q.loc[per, 0.5]),
            "p90": float(q.loc[per, 0.9]),
        }
        for per in q.index
    ]
