"""What became of the logged predictions: the prediction log joined to the SZZ labels.

A logged prediction is ``buggy`` when any commit it scored (or the squash commit of its
pull request, found by ``(#N)`` at the end of its subject, or the commits a rebase
replayed, found by author e-mail and author time) was later labelled buggy; counts over
those outcomes say how many buggy changes were flagged or blocked in time. Both
``diffrisk monitor`` and the PR comment footer of ``diffrisk score`` read them here, so
this module depends on nothing above the data layer.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from diffrisk.config import Config
from diffrisk.data.datadir import DataDir
from diffrisk.data.predlog import commit_key
from diffrisk.errors import DiffriskError
from diffrisk.levels import LEVELS

_SQUASH_PR = re.compile(r"\(#(\d+)\)\s*$")


def _epoch_seconds(times: pd.Series) -> pd.Series:
    """UTC timestamps as integer seconds since the epoch.

    The same as :func:`diffrisk.mining.mine.epoch_seconds`, which this layer may not import.
    """
    if not len(times):
        return pd.Series([], dtype="int64")
    return pd.to_datetime(times, utc=True).dt.as_unit("s").astype("int64")


#: The label stage's columns the outcomes read (``labels.parquet``).
LABEL_COLUMNS = ("sha", "label", "label_state")


def load_labels(data_dir: Path) -> pd.DataFrame | None:
    """``labels.parquet`` or None when the history was not labelled yet (labels of an
    older mining count: they are joined by sha)."""
    return DataDir(data_dir).labels(required=False, need=LABEL_COLUMNS, stale_ok=True)


def no_labels() -> pd.DataFrame:
    """An empty labels table (a history not labelled yet)."""
    return pd.DataFrame(
        {
            "sha": pd.Series(dtype=str),
            "label_state": pd.Series(dtype=str),
            "label": pd.Series(dtype=float),
        }
    )


def prediction_outcomes(
    predictions: pd.DataFrame, changes: pd.DataFrame, labels: pd.DataFrame
) -> pd.DataFrame:
    """Each logged prediction with what became of it.

    ``outcome``: 'buggy' when any commit it scored (or the squash commit of its PR) was
    later labelled buggy; 'unlabelled' when some are still too young to tell; 'clean'
    when all are labelled clean; 'unmerged' when none of them is in the mined history.
    Adds ``matched`` (the commits found) and ``fixed_by``.
    """
    preds = predictions.reset_index(drop=True).copy()
    if preds.empty:
        preds["outcome"] = pd.Series(dtype=str)
        preds["matched"] = pd.Series(dtype=object)
        preds["fixed_by"] = pd.Series(dtype=object)
        return preds
    state = dict(zip(labels["sha"], labels["label_state"], strict=True)) if len(labels) else {}
    fixes = (
        dict(zip(labels["sha"], labels["fixed_by"], strict=True))
        if "fixed_by" in labels and len(labels)
        else {}
    )
    known = set(changes["sha"]) if len(changes) else set()
    by_pr: dict[int, list[str]] = {}
    if "subject" in changes and len(changes):
        for s, subj in zip(changes["sha"], changes["subject"], strict=True):
            m = _SQUASH_PR.search(subj or "")
            if m:
                by_pr.setdefault(int(m.group(1)), []).append(s)
    by_key: dict[str, list[str]] = {}
    if len(changes) and "author_email" in changes:
        times = _epoch_seconds(changes["author_time"]).tolist()
        for s, email, t in zip(changes["sha"], changes["author_email"], times, strict=True):
            by_key.setdefault(commit_key(str(email), int(t)), []).append(s)
    keys_col = preds["commit_keys"] if "commit_keys" in preds else [None] * len(preds)
    outcomes, matched, fixed_by = [], [], []
    for head, commits, pr, keys in zip(
        preds["head_sha"], preds["commits"], preds["pr"], keys_col, strict=True
    ):
        shas = list(dict.fromkeys([*(list(commits) if commits is not None else []), head]))
        if pr is not None and not pd.isna(pr):
            shas += by_pr.get(int(pr), [])
        # a rebase merge rewrote the shas but kept each commit's author and author date
        for k in list(keys) if keys is not None and not isinstance(keys, float) else []:
            shas += by_key.get(str(k), [])
        found = [s for s in dict.fromkeys(shas) if s in known or s in state]
        states = [state.get(s, "unlabelled") for s in found]
        if not found:
            o = "unmerged"
        elif "buggy" in states:
            o = "buggy"
        elif "unlabelled" in states:
            o = "unlabelled"
        else:
            o = "clean"
        outcomes.append(o)
        matched.append(found)
        fb: list[str] = []
        for s in found:
            v = fixes.get(s)
            if v is not None and not (isinstance(v, float) and math.isnan(v)):
                fb += [x for x in list(v) if x not in fb]
        fixed_by.append(fb)
    preds["outcome"] = outcomes
    preds["matched"] = matched
    preds["fixed_by"] = fixed_by
    return preds


def flagged_mask(preds: pd.DataFrame, config: Config) -> np.ndarray:
    """A logged prediction was flagged when its level reached ``gate.warn_on`` (or
    ``fail_on`` when warnings are off), or the gate's decision was warn/fail/accepted."""
    th = config.gate.warn_on if config.gate.warn_on != "never" else config.gate.fail_on
    by_level = (
        np.zeros(len(preds), dtype=bool)
        if th == "never"
        else preds["level"].isin(LEVELS[LEVELS.index(th) :]).to_numpy()
    )
    by_decision = preds["decision"].isin(["warn", "fail", "accepted"]).to_numpy()
    return by_level | by_decision


def log_summary(
    outcomes: pd.DataFrame,
    config: Config,
    *,
    days: int | None = None,
    now: pd.Timestamp | None = None,
) -> dict[str, Any]:
    """Counts over the logged predictions (optionally those of the last ``days`` days)."""
    o = outcomes
    if days is not None and len(o):
        now = now or pd.Timestamp.now(tz="UTC")
        o = o[pd.to_datetime(o["time"], utc=True) > now - pd.Timedelta(days=days)]
    flagged = flagged_mask(o, config) if len(o) else np.zeros(0, dtype=bool)
    blocked = (o["decision"] == "fail").to_numpy() if len(o) else np.zeros(0, dtype=bool)
    buggy = (o["outcome"] == "buggy").to_numpy() if len(o) else np.zeros(0, dtype=bool)
    clean = (o["outcome"] == "clean").to_numpy() if len(o) else np.zeros(0, dtype=bool)
    n_buggy = int(buggy.sum())
    return {
        "days": days,
        "predictions": len(o),
        "buggy": n_buggy,
        "clean": int(clean.sum()),
        "unlabelled": int((o["outcome"] == "unlabelled").sum()) if len(o) else 0,
        "unmerged": int((o["outcome"] == "unmerged").sum()) if len(o) else 0,
        "flagged": int(flagged.sum()),
        "buggy_flagged": int((buggy & flagged).sum()),
        "buggy_blocked": int((buggy & blocked).sum()),
        "clean_flagged": int((clean & flagged).sum()),
        "flagged_share": (int((buggy & flagged).sum()) / n_buggy) if n_buggy else None,
    }


def realized_footer(
    data_dir: str | Path, config: Config | None = None, *, now: datetime | None = None
) -> str | None:
    """One sentence for the PR comment footer, or None when too little is known yet.

    "diffrisk flagged 7 of the 10 changes later found buggy in the last 90 days" - from
    the prediction log joined to the SZZ labels (``monitor.footer_days``; needs at least
    ``monitor.footer_min_buggy`` buggy outcomes). Never raises for missing or unreadable
    data: the footer is optional.
    """
    cfg = config or Config()
    data = DataDir(data_dir)
    try:
        preds = data.predictions()
        if preds.empty:
            return None
        labels = load_labels(data.root)
        if labels is None:
            return None
        changes = pd.read_parquet(data.changes_path, columns=["sha", "subject"])
    except (DiffriskError, OSError, ValueError):
        return None
    outcomes = prediction_outcomes(preds, changes, labels)
    now_ts = pd.Timestamp(now or datetime.now(timezone.utc))
    now_ts = now_ts.tz_localize("UTC") if now_ts.tzinfo is None else now_ts
    s = log_summary(outcomes, cfg, days=cfg.monitor.footer_days, now=now_ts)
    if s["buggy"] < cfg.monitor.footer_min_buggy:
        return None
    return (
        f"diffrisk flagged {s['buggy_flagged']} of the {s['buggy']} changes later found buggy "
        f"in the last {cfg.monitor.footer_days} days"
    )
