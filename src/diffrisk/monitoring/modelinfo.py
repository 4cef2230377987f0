"""What the monitor reads from a model's metadata: its training window, its age and the
ROC-AUC it recorded when trained, from any of the shapes diffrisk has written."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from diffrisk.model.metadata import ModelMetadata


def training_window(
    metadata: Mapping[str, Any] | None,
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """(start, end) of a model's training window from its metadata; (None, None) if unknown.

    Reads ``{"first_date": ..., "last_date": ...}`` (what ``diffrisk train`` records; also
    ``start``/``end``, ``from``/``to``) or a two-item list, as ISO strings or epoch seconds.
    """
    tw = (metadata or {}).get("training_window")
    if tw is None:
        return None, None
    if isinstance(tw, Mapping):
        start = next(
            (tw[k] for k in ("first_date", "start", "from") if tw.get(k) is not None), None
        )
        end = next((tw[k] for k in ("last_date", "end", "to") if tw.get(k) is not None), None)
    elif isinstance(tw, list | tuple) and len(tw) == 2:
        start, end = tw
    else:
        return None, None
    return _ts(start), _ts(end)


def _ts(v: Any) -> pd.Timestamp | None:
    if v is None:
        return None
    try:
        t = pd.Timestamp(int(v), unit="s") if isinstance(v, int | float) else pd.Timestamp(v)
    except (ValueError, TypeError):
        return None
    if pd.isna(t):
        return None
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def model_age_days(metadata: Mapping[str, Any], now: datetime | None = None) -> float | None:
    """Days since the model was saved (its ``created``, the one time every writer
    records); None if unknown."""
    return ModelMetadata.from_dict(metadata).age_days(now)


def recorded_auc(metadata: Mapping[str, Any], whole_history: bool = False) -> float | None:
    """The ROC-AUC the model was chosen with: its latest time-ordered fold when recorded,
    or with ``whole_history`` (realized accuracy over all labelled changes, as for a copy
    of the bundled model) the mean over the folds."""
    m = metadata.get("metrics") or {}
    if not isinstance(m, Mapping):
        return None
    for sub in ("overall", "latest_fold") if whole_history else ("latest_fold", "overall"):
        v = m.get(sub)
        if (
            isinstance(v, Mapping)
            and isinstance(v.get("roc_auc"), int | float)
            and not math.isnan(v["roc_auc"])
        ):
            return float(v["roc_auc"])
    v = m.get("roc_auc")
    if isinstance(v, int | float) and not math.isnan(v):
        return float(v)
    return None
