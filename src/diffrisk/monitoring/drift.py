"""Feature drift: the recent changes compared with a reference sample, feature by feature.

For every feature the model reads, the population stability index over 10 bins of equal
width on the ``sign(x) log1p|x|`` scale spanned by the reference (outer bins
open-ended), so the bins measure changes of magnitude rather than small shifts of a
crowded quantile; and a two-sample Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``).
A feature is in ``alert`` when its PSI reaches ``monitor.psi_alert`` *and* the KS test
rejects equality at ``monitor.ks_alpha``; ``warn`` when the PSI reaches
``monitor.psi_warn`` and the KS test rejects. Requiring both keeps small samples (noise
inflates the PSI of a few dozen changes) and very large ones (the KS test rejects trivial
shifts) from raising alarms. Fewer than ``monitor.min_changes`` changes: no verdict.
An alert matters only on a feature the model gives weight to (:data:`MIN_INFLUENCE`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from diffrisk.config import Config
from diffrisk.data.schema import KAMEI
from diffrisk.errors import DiffriskError

#: Drift features when no model says which it reads (the Kamei et al. change features).
DEFAULT_FEATURES = (*KAMEI, "pfix")


def psi(
    reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray, bins: int = 10
) -> float:
    """Population stability index of ``current`` against ``reference``.

    Bins: ``bins`` equal-width bins on the ``sign(x) log1p|x|`` scale between the
    reference's minimum and maximum, the outer two open-ended; empty bins count as
    1e-4 of the mass. 0 = identical; 0.1 is commonly read as a moderate, 0.25 as a
    major shift.
    """
    a = _slog(np.asarray(reference, dtype=float))
    b = _slog(np.asarray(current, dtype=float))
    a = a[~np.isnan(a)]
    b = b[~np.isnan(b)]
    if len(a) == 0 or len(b) == 0:
        return math.nan
    lo, hi = float(a.min()), float(a.max())
    edges = np.array([lo + 1e-12]) if hi <= lo else np.linspace(lo, hi, bins + 1)[1:-1]
    k = len(edges) + 1
    pa = np.bincount(np.searchsorted(edges, a, side="right"), minlength=k) / len(a)
    pb = np.bincount(np.searchsorted(edges, b, side="right"), minlength=k) / len(b)
    pa = np.clip(pa, 1e-4, None)
    pb = np.clip(pb, 1e-4, None)
    return float(np.sum((pb - pa) * np.log(pb / pa)))


def _slog(v: np.ndarray) -> np.ndarray:
    return np.sign(v) * np.log1p(np.abs(v))


@dataclass
class FeatureDrift:
    """The drift of one feature: PSI, KS test, sample sizes and medians, status."""

    feature: str
    psi: float | None
    ks_statistic: float | None
    ks_pvalue: float | None
    reference_n: int
    recent_n: int
    reference_median: float | None
    recent_median: float | None
    status: str  # ok | warn | alert | insufficient
    influence: float | None = None
    """Mean |contribution| to the model's log-odds over the recent changes (None: no model)."""

    @property
    def matters(self) -> bool:
        """An alert recommends retraining only on a feature the model gives weight to."""
        return self.status == "alert" and (
            self.influence is None or self.influence >= MIN_INFLUENCE
        )


#: Mean |log-odds contribution| below which a drifting feature cannot move the model's
#: scores enough to matter (a factor of 1.05 on the odds).
MIN_INFLUENCE = 0.05


def feature_drift(
    reference: pd.DataFrame,
    recent: pd.DataFrame,
    features: Sequence[str],
    config: Config | None = None,
) -> list[FeatureDrift]:
    """PSI and KS per feature, with a status from ``config.monitor``'s thresholds."""
    from scipy.stats import ks_2samp

    mcfg = (config or Config()).monitor
    out = []
    for f in features:
        a = (
            pd.to_numeric(reference[f], errors="coerce").dropna().to_numpy(dtype=float)
            if f in reference
            else np.zeros(0)
        )
        b = (
            pd.to_numeric(recent[f], errors="coerce").dropna().to_numpy(dtype=float)
            if f in recent
            else np.zeros(0)
        )
        if len(b) < mcfg.min_changes or len(a) < mcfg.min_changes:
            out.append(
                FeatureDrift(f, None, None, None, len(a), len(b), _med(a), _med(b), "insufficient")
            )
            continue
        p = psi(a, b)
        ks = ks_2samp(a, b)
        stat, pval = float(ks.statistic), float(ks.pvalue)
        rejects = pval < mcfg.ks_alpha
        status = (
            "alert"
            if rejects and p >= mcfg.psi_alert
            else "warn"
            if rejects and p >= mcfg.psi_warn
            else "ok"
        )
        out.append(FeatureDrift(f, p, stat, pval, len(a), len(b), _med(a), _med(b), status))
    return out


def _med(v: np.ndarray) -> float | None:
    return float(np.median(v)) if len(v) else None


def drift_status(drift: Sequence[FeatureDrift]) -> str:
    """The worst feature status: alert > warn > ok; 'insufficient' when no verdict at all."""
    states = {d.status for d in drift}
    for s in ("alert", "warn", "ok"):
        if s in states:
            return s
    return "insufficient"


def add_influence(
    drift: list[FeatureDrift], model: Any, recent: pd.DataFrame, warnings: list[str]
) -> None:
    """Each feature's mean |contribution| to the log-odds over the recent changes."""
    if recent.empty or not hasattr(model, "contributions"):
        return
    rows = recent.tail(2000)
    try:
        contrib = model.contributions(rows)
    except (DiffriskError, ValueError, KeyError, TypeError) as err:
        warnings.append(f"cannot weigh drift by the model's use of each feature: {err}")
        return
    for d in drift:
        if d.feature in contrib.columns:
            w = np.abs(contrib[d.feature].to_numpy(dtype=float))
            w = w[np.isfinite(w)]
            # unknown weight (None) keeps an alert: only a known small weight discards it
            d.influence = float(w.mean()) if len(w) else None
