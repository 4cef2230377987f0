"""Time-ordered evaluation: rolling-origin folds, realistic labels, and the metrics.

Folds (rolling origin, expanding window): the labelled, labelable changes are cut at
the quantiles ``i / (folds + 1)`` of their author times; test fold ``i`` is the period
``[b_i, b_{i+1})`` and its training rows are the changes authored before ``b_i - gap``
(``gap`` >= the verification latency, ``label.verification_days`` by default).

Realistic labels: a training row is buggy only if a fix blaming it was committed before
its test period starts (fix commits' author times, from ``changes.parquet``); changes
whose bug was found later count as clean, as they would have then. Unlabelled rows are
left out of training and out of the negatives. Test rows get their final labels.

Headline metrics are computed on the changes that can be labelled at all
(``source_files > 0``). Effort is ``la + ld`` (lines changed).

Every figure is given two ways: the mean over the folds (each fold weighs the same) and
pooled over all test commits (each commit weighs the same). A candidate is compared with
the lines-added baseline by a paired bootstrap of the pooled ROC-AUC difference, the test
commits resampled within their folds (:func:`paired_auc_difference`); it "beats the
baseline" only when the 95% interval lies above 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    f1_score,
    matthews_corrcoef,
    roc_auc_score,
)

from diffrisk.config import Config, LabelConfig
from diffrisk.data.store import atomic_write_bytes
from diffrisk.errors import DataError, DiffriskError, ModelError, TooLittleHistoryError
from diffrisk.features.source import source_lines_added, with_code_lines
from diffrisk.model.estimators import KINDS, PRIOR_KIND, anchor_scale, fit_estimator, prior_penalty
from diffrisk.model.registry import LoadedModel, load_bundled
from diffrisk.model.transforms import LA_CODE, LA_SOURCE

BASELINE = "la"
#: Metric used to rank the candidates and for champion/challenger.
RANK_METRIC = "roc_auc"
#: Review budgets for capture: the riskiest 5%, 10% and 20% of changes (Meta's Diff Risk
#: Score reports the share of bug-inducing changes it catches at such budgets).
CAPTURE_SHARES = (0.05, 0.10, 0.20)
#: The paired bootstrap of the pooled ROC-AUC difference: resamples, seed, confidence.
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 20261206
CONFIDENCE = 0.95
#: The columns of ``evaluate --predictions``, in order.
PREDICTION_COLUMNS = ("sha", "fold", "model", "probability", "label", "effort", "author_time")

# ---------------------------------------------------------------------------------------
# Metrics. Ranking ties keep the input (time) order; effort is la + ld.


def _ranking(score: np.ndarray) -> np.ndarray:
    return np.argsort(-np.asarray(score, dtype=float), kind="stable")


def _curve(y: np.ndarray, effort: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative effort fraction and cumulative recall along ``order``."""
    e = np.asarray(effort, dtype=float)[order]
    t = np.asarray(y, dtype=float)[order]
    total_e = e.sum()
    total_y = t.sum()
    ce = np.cumsum(e) / total_e if total_e > 0 else np.linspace(1 / len(e), 1, len(e))
    cr = np.cumsum(t) / total_y if total_y > 0 else np.zeros(len(t))
    return ce, cr


def recall_at_effort(
    y: ArrayLike, score: ArrayLike, effort: ArrayLike, budget: float = 0.2
) -> float:
    """Share of buggy changes found inspecting, by descending score, changes up to ``budget`` of total effort."""
    y = np.asarray(y)
    if len(y) == 0 or y.sum() == 0:
        return math.nan
    ce, cr = _curve(y, np.asarray(effort), _ranking(np.asarray(score)))
    within = ce <= budget + 1e-12
    return float(cr[within][-1]) if within.any() else 0.0


def effort_at_recall(
    y: ArrayLike, score: ArrayLike, effort: ArrayLike, target: float = 0.2
) -> float:
    """Share of total effort spent, by descending score, until ``target`` of the buggy changes are found."""
    y = np.asarray(y)
    if len(y) == 0 or y.sum() == 0:
        return math.nan
    ce, cr = _curve(y, np.asarray(effort), _ranking(np.asarray(score)))
    k = int(np.argmax(cr >= target - 1e-12))
    return float(ce[k])


def _area(ce: np.ndarray, cr: np.ndarray) -> float:
    x = np.concatenate([[0.0], ce])
    r = np.concatenate([[0.0], cr])
    return float(np.sum((x[1:] - x[:-1]) * (r[1:] + r[:-1]) / 2))


def popt(y: ArrayLike, score: ArrayLike, effort: ArrayLike) -> float:
    """Normalised area under the effort-recall curve (Mende & Koschke): 1 - (opt - model) / (opt - worst)."""
    y = np.asarray(y, dtype=float)
    effort = np.asarray(effort, dtype=float)
    if len(y) == 0 or y.sum() == 0 or effort.sum() <= 0:
        return math.nan
    density = y / np.maximum(effort, 1e-9)
    opt = _area(*_curve(y, effort, np.lexsort((effort, -density))))
    worst = _area(*_curve(y, effort, np.lexsort((-effort, density))))
    model = _area(*_curve(y, effort, _ranking(np.asarray(score))))
    if opt - worst <= 0:
        return math.nan
    return float(1 - (opt - model) / (opt - worst))


def ifa(y: ArrayLike, score: ArrayLike) -> float:
    """Initial false alarms: clean changes inspected, by descending score, before the first buggy one."""
    t = np.asarray(y)[_ranking(np.asarray(score))]
    if t.sum() == 0:
        return math.nan
    return float(np.argmax(t == 1))


def capture_at(y: ArrayLike, score: ArrayLike, share: float) -> float:
    """Share of the defect-inducing changes among the riskiest ``share`` of the changes.

    The budget is ``ceil(share * n)`` changes, highest score first. Changes tied with the
    last one inside the budget count by the share of the tie that fits (the expected
    capture when ties are broken at random), so the input order never matters."""
    yv = np.asarray(y, dtype=float)
    s = np.asarray(score, dtype=float)
    total = yv.sum()
    if len(yv) == 0 or total == 0:
        return math.nan
    k = max(1, math.ceil(share * len(yv) - 1e-9))  # 0.1 * 30 is 3.0000000000000004
    cut = np.sort(s)[::-1][k - 1]
    above = s > cut
    tied = s == cut
    caught = yv[above].sum() + (k - int(above.sum())) * yv[tied].sum() / int(tied.sum())
    return float(caught / total)


def capture_metrics(y: ArrayLike, score: ArrayLike) -> dict[str, float]:
    """``capture_at_5``, ``capture_at_10``, ``capture_at_20``: :func:`capture_at` at each budget."""
    return {f"capture_at_{round(100 * sh)}": capture_at(y, score, sh) for sh in CAPTURE_SHARES}


def classification_metrics(y: ArrayLike, p: ArrayLike, threshold: float = 0.5) -> dict[str, float]:
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    both = len(np.unique(y)) == 2
    pred = (p >= threshold).astype(int)
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else math.nan,
        "pr_auc": float(average_precision_score(y, p)) if both else math.nan,
        "f1": float(f1_score(y, pred, zero_division=0.0)),
        "mcc": float(matthews_corrcoef(y, pred)) if both else math.nan,  # one class: undefined
        "brier": float(brier_score_loss(y, p, pos_label=1)) if len(y) else math.nan,
    }


def effort_metrics(
    y: ArrayLike, score: ArrayLike, effort: ArrayLike, prefix: str = ""
) -> dict[str, float]:
    return {
        f"{prefix}recall_at_20_effort": recall_at_effort(y, score, effort, 0.2),
        f"{prefix}effort_at_20_recall": effort_at_recall(y, score, effort, 0.2),
        f"{prefix}popt": popt(y, score, effort),
        f"{prefix}ifa": ifa(y, score),
    }


def effort_of(frame: pd.DataFrame) -> np.ndarray:
    return (pd.to_numeric(frame["la"]).fillna(0) + pd.to_numeric(frame["ld"]).fillna(0)).to_numpy(
        dtype=float
    )


def all_metrics(
    y: ArrayLike, p: ArrayLike, effort: ArrayLike, threshold: float = 0.5
) -> dict[str, float]:
    """Classification metrics, effort-aware metrics by probability and by probability / effort."""
    p = np.asarray(p, dtype=float)
    effort = np.asarray(effort, dtype=float)
    out = classification_metrics(y, p, threshold)
    out.update(effort_metrics(y, p, effort))
    out.update(effort_metrics(y, p / np.maximum(effort, 1.0), effort, prefix="density_"))
    out.update(capture_metrics(y, p))
    out["n"] = len(p)
    out["n_buggy"] = int(np.asarray(y).sum())
    return out


# ---------------------------------------------------------------------------------------
# Pooled figures and the paired bootstrap against the baseline.


def _strata_draws(strata: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap counts, ``resamples`` x ``len(strata)``: each row draws, within every
    stratum, as many rows as it holds, with replacement."""
    n = len(strata)
    offsets = (np.arange(resamples, dtype=np.int64) * n)[:, None]
    picks = np.empty((resamples, n), dtype=np.int64)
    at = 0
    for g in np.unique(strata):
        members = np.flatnonzero(strata == g)
        k = len(members)
        picks[:, at : at + k] = members[rng.integers(0, k, size=(resamples, k))]
        at += k
    picks += offsets
    counts = np.bincount(picks.ravel(), minlength=resamples * n).astype(np.int32)
    return counts.reshape(resamples, n)


class _WeightedAuc:
    """ROC-AUC of one score under many weightings of the same rows (bootstrap counts):
    the Mann-Whitney statistic with tied scores counting one half, in exact integers."""

    def __init__(self, y: np.ndarray, score: np.ndarray) -> None:
        self.pos = np.flatnonzero(y == 1)
        neg = np.flatnonzero(y != 1)
        order = np.argsort(score[neg], kind="stable")
        self.neg = neg[order]
        neg_scores = score[self.neg]
        # negatives strictly below and at most each positive's score
        self.lo = np.searchsorted(neg_scores, score[self.pos], side="left")
        self.hi = np.searchsorted(neg_scores, score[self.pos], side="right")

    def __call__(self, counts: np.ndarray) -> np.ndarray:
        # int32 is exact below a few million rows: each product is at most the largest
        # count (a dozen or so) x 2n
        wide = np.int32 if counts.shape[1] < 20_000_000 else np.int64
        wn = counts[:, self.neg].astype(wide, copy=False)
        cum = np.zeros((len(counts), wn.shape[1] + 1), dtype=wide)
        np.cumsum(wn, axis=1, out=cum[:, 1:])
        wp = counts[:, self.pos].astype(wide, copy=False)
        twice = (wp * (cum[:, self.lo] + cum[:, self.hi])).sum(axis=1, dtype=np.int64)
        den = 2.0 * wp.sum(axis=1, dtype=np.int64) * cum[:, -1]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, twice / np.where(den > 0, den, 1.0), np.nan)


def bootstrap_auc(
    y: ArrayLike,
    scores: Mapping[str, ArrayLike],
    strata: ArrayLike,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    chunk: int = 100,
) -> dict[str, np.ndarray]:
    """ROC-AUC of each score in the same ``resamples`` bootstrap resamples of the rows,
    drawn within each stratum (fold): name -> array of ``resamples`` AUCs (NaN for a
    resample holding one class). The same seed gives the same resamples to every score,
    so differences between scores are paired."""
    yv = np.asarray(y, dtype=int)
    st = np.asarray(strata)
    aucs = {k: _WeightedAuc(yv, np.asarray(v, dtype=float)) for k, v in scores.items()}
    rng = np.random.default_rng(seed)
    out: dict[str, list[np.ndarray]] = {k: [] for k in scores}
    done = 0
    while done < resamples:
        b = min(chunk, resamples - done)
        counts = _strata_draws(st, b, rng)
        for k, auc in aucs.items():
            out[k].append(auc(counts))
        done += b
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in out.items()}


def _interval(d: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    d = d[~np.isnan(d)]
    if len(d) == 0:
        return math.nan, math.nan
    tail = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(d, [tail, 100 - tail])
    return float(lo), float(hi)


def paired_auc_difference(
    y: ArrayLike,
    candidate: ArrayLike,
    baseline: ArrayLike,
    strata: ArrayLike,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> dict[str, Any]:
    """Pooled ROC-AUC of ``candidate`` minus that of ``baseline`` on the same rows, with
    a percentile interval from a paired bootstrap that resamples the rows within each
    stratum (fold). Keys: ``difference``, ``ci_low``, ``ci_high``, ``candidate``,
    ``baseline`` (the two pooled AUCs), ``n``, ``n_buggy``, ``folds``, ``resamples``,
    ``seed``, ``confidence``."""
    a = np.asarray(candidate, dtype=float)
    b = np.asarray(baseline, dtype=float)
    boot = bootstrap_auc(y, {"a": a, "b": b}, strata, resamples=resamples, seed=seed)
    diffs = boot["a"] - boot["b"]
    return _difference(
        y, a, b, strata, diffs, resamples=resamples, seed=seed, confidence=confidence
    )


def _difference(
    y: ArrayLike,
    candidate: np.ndarray,
    baseline: np.ndarray,
    strata: ArrayLike,
    diffs: np.ndarray,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> dict[str, Any]:
    """The record of :func:`paired_auc_difference` from the bootstrap differences ``diffs``."""
    yv = np.asarray(y, dtype=int)
    both = len(np.unique(yv)) == 2
    auc_a = float(roc_auc_score(yv, candidate)) if both else math.nan
    auc_b = float(roc_auc_score(yv, baseline)) if both else math.nan
    lo, hi = _interval(diffs, confidence)
    return {
        "metric": RANK_METRIC,
        "candidate": auc_a,
        "baseline": auc_b,
        "difference": auc_a - auc_b,
        "ci_low": lo,
        "ci_high": hi,
        "confidence": confidence,
        "n": len(yv),
        "n_buggy": int(yv.sum()),
        "folds": len(np.unique(np.asarray(strata))),
        "resamples": resamples,
        "seed": seed,
    }


def beats(comparison: Mapping[str, Any] | None) -> bool:
    """Whether a :func:`paired_auc_difference` shows the candidate better than the
    baseline: the interval's lower bound is above 0."""
    low = (comparison or {}).get("ci_low")
    return low is not None and not _isnan(low) and float(low) > 0


# ---------------------------------------------------------------------------------------
# The bundled model on a repository it may have been trained on.


def has_seen(bundled: LoadedModel, shas: Any) -> bool:
    """Whether ``bundled`` was trained on a history holding any of ``shas``: the first or
    last commit of one of its training projects (the project itself, or a fork)."""
    projects = (bundled.info.projects or {}).values()
    seen = {p.get(k) for p in projects for k in ("first_sha", "last_sha")} - {None}
    return bool(seen & set(shas))


def bundled_for(frame: pd.DataFrame | None = None) -> LoadedModel | None:
    """The bundled model, unless it cannot be loaded or (given the repository's ``frame``)
    was trained on this repository: scored on its own training rows, it would look better
    than it is."""
    try:
        bundled = load_bundled()
    except ModelError:
        return None
    if frame is not None and "sha" in frame.columns and has_seen(bundled, frame["sha"]):
        return None
    return bundled


def as_prior(model: Any) -> Any:
    """The fitted estimator of a prior: a :class:`LoadedModel`'s, or ``model`` itself."""
    return model.estimator if isinstance(model, LoadedModel) else model


# ---------------------------------------------------------------------------------------
# The evaluation frame and realistic labels.


def prepare_frame(
    changes: pd.DataFrame,
    labels: pd.DataFrame,
    files: pd.DataFrame | None = None,
    label_cfg: LabelConfig | None = None,
) -> pd.DataFrame:
    """Changes joined with their labels, ``la_source`` and fix times; sorted by author time.

    Adds ``first_fix_time`` and ``_fix_times`` (list of the author times of the fixes
    blaming each change; a fix missing from ``changes`` counts at the first fix's time).
    """
    need = {"sha", "label", "label_state", "fixed_by", "n_fixes", "source_files"}
    missing = need - set(labels.columns)
    if missing:
        raise DataError(f"labels lack columns {sorted(missing)}", hint="run `diffrisk label` again")
    lab = labels[[c for c in labels.columns if c in need | {"days_to_fix", "is_fix"}]]
    frame = changes.merge(lab, on="sha", how="left", validate="one_to_one")
    frame["label_state"] = frame["label_state"].fillna("unlabelled")
    frame["source_files"] = pd.to_numeric(frame["source_files"]).fillna(0).astype(int)
    if files is not None and LA_SOURCE not in frame.columns:
        la_src = source_lines_added(files, label_cfg or LabelConfig())
        frame[LA_SOURCE] = frame["sha"].map(la_src).fillna(0).astype("int64")
    elif LA_SOURCE not in frame.columns:
        frame[LA_SOURCE] = frame["la"]
    if files is not None and LA_CODE not in frame.columns:
        frame = with_code_lines(frame, files, label_cfg or LabelConfig())
    times = pd.to_datetime(frame["author_time"], utc=True).astype("datetime64[ns, UTC]")
    frame["author_time"] = times
    when = dict(zip(frame["sha"], times, strict=True))
    first = (
        times + pd.to_timedelta(pd.to_numeric(frame.get("days_to_fix"), errors="coerce"), unit="D")
        if "days_to_fix" in frame
        else pd.Series(pd.NaT, index=frame.index)
    )
    fix_times = []
    for shas, ff in zip(frame["fixed_by"], first, strict=True):
        ts = []
        for s in (
            list(shas)
            if shas is not None and not (isinstance(shas, float) and math.isnan(shas))
            else []
        ):
            t = when.get(s)
            ts.append(t if t is not None else ff)
        ts = [t for t in ts if t is not None and not pd.isna(t)]
        fix_times.append(sorted(ts))
    frame["_fix_times"] = fix_times
    frame["first_fix_time"] = pd.to_datetime(
        [t[0] if t else pd.NaT for t in fix_times], utc=True
    ).astype("datetime64[ns, UTC]")
    frame["n_fixes"] = pd.to_numeric(frame["n_fixes"]).fillna(0).astype(int)
    frame = frame.sort_values("author_time", kind="stable").reset_index(drop=True)
    return frame


def eligible_mask(frame: pd.DataFrame) -> np.ndarray:
    """Labelled (buggy or clean) changes that can be labelled at all (source_files > 0)."""
    return (
        (frame["label_state"] != "unlabelled")
        & frame["label"].notna()
        & (frame["source_files"] > 0)
    ).to_numpy()


def labels_as_of(frame: pd.DataFrame, when: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
    """Binary labels and fix counts known at ``when`` (fixes committed strictly before it)."""
    counts = np.array([sum(1 for t in ts if t < when) for ts in frame["_fix_times"]], dtype=int)
    return (counts > 0).astype(int), counts


# ---------------------------------------------------------------------------------------
# Folds.


@dataclass
class Fold:
    index: int
    train_end: str
    test_start: str
    test_end: str
    n_train: int
    n_train_buggy: int
    n_test: int
    n_test_buggy: int
    skipped: str | None = None
    train_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int), repr=False)
    test_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int), repr=False)
    train_y: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int), repr=False)
    train_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int), repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("train_idx", "test_idx", "train_y", "train_counts"):
            d.pop(k)
        return d


def time_folds(
    frame: pd.DataFrame, n_folds: int, gap_days: float, *, min_buggy: int = 5
) -> list[Fold]:
    """Rolling-origin folds over the eligible rows of a time-sorted ``frame``."""
    elig = eligible_mask(frame)
    times = pd.to_datetime(frame["author_time"], utc=True).astype("datetime64[ns, UTC]")
    et = times[elig]
    if len(et) < n_folds + 1:
        raise TooLittleHistoryError(
            f"only {len(et)} labelled changes with source files; need at least {n_folds + 1} for {n_folds} folds",
            hint="mine and label more history, or lower train.folds",
        )
    ns = et.astype("int64").to_numpy()
    cuts = [int(np.quantile(ns, i / (n_folds + 1), method="lower")) for i in range(1, n_folds + 1)]
    # one second past the newest (times are whole seconds)
    cuts.append(int(ns.max()) + 1_000_000_000)
    gap = pd.Timedelta(days=gap_days)
    final_y = (frame["label"].fillna(0).astype(int)).to_numpy()
    tn = times.astype("int64").to_numpy()
    folds = []
    for i in range(n_folds):
        start = pd.Timestamp(cuts[i], tz="UTC")
        end = pd.Timestamp(cuts[i + 1], tz="UTC")
        train_end = start - gap
        train_idx = np.flatnonzero(elig & (tn < train_end.value))
        test_idx = np.flatnonzero(elig & (tn >= cuts[i]) & (tn < cuts[i + 1]))
        y_now, counts = labels_as_of(frame.iloc[train_idx], start)
        f = Fold(
            index=i + 1,
            train_end=train_end.isoformat(),
            test_start=start.isoformat(),
            test_end=end.isoformat(),
            n_train=len(train_idx),
            n_train_buggy=int(y_now.sum()),
            n_test=len(test_idx),
            n_test_buggy=int(final_y[test_idx].sum()),
            train_idx=train_idx,
            test_idx=test_idx,
            train_y=y_now,
            train_counts=counts,
        )
        if f.n_train_buggy < min_buggy or f.n_train - f.n_train_buggy < min_buggy:
            f.skipped = f"training rows hold {f.n_train_buggy} buggy / {f.n_train - f.n_train_buggy} clean (need {min_buggy} each)"
        elif f.n_test == 0:
            f.skipped = "no test rows"
        elif f.n_test_buggy < min_buggy or f.n_test - f.n_test_buggy < min_buggy:
            # a ranking metric on a handful of defect-inducing changes is noise (one real
            # history's newest fold held 3: ROC-AUC 0.48, then recorded as the model's)
            f.skipped = f"test rows hold {f.n_test_buggy} buggy / {f.n_test - f.n_test_buggy} clean (need {min_buggy} each)"
        folds.append(f)
    return folds


# ---------------------------------------------------------------------------------------
# Evaluation of the candidates.


@dataclass
class Evaluation:
    gap_days: float
    folds: list[Fold]
    models: dict[str, dict[str, Any]]
    unsupervised: dict[str, Any]
    chosen: str | None
    baseline: str
    beats_baseline: bool | None
    statement: str
    code_metrics: bool
    threshold: float = 0.5
    #: kind -> per fold: test-row probabilities (aligned with ``Fold.test_idx``), or None.
    predictions: dict[str, list[np.ndarray | None]] = field(default_factory=dict, repr=False)
    #: The test commits the pooled figures cover (the baseline's): n, n_buggy, folds.
    pooled_over: dict[str, int] = field(default_factory=dict)
    #: How the intervals were computed: resamples, seed, confidence, stratified_by.
    bootstrap: dict[str, Any] = field(default_factory=dict)
    #: Per row of the evaluated frame: sha, author_time, label (final), effort.
    rows: pd.DataFrame | None = field(default=None, repr=False)

    def latest_fold(self) -> Fold | None:
        """The newest fold that was evaluated (the champion/challenger comparison fold)."""
        for f in reversed(self.folds):
            if not f.skipped:
                return f
        return None

    def latest_fold_metric(self, kind: str, metric: str = RANK_METRIC) -> float:
        for fm in reversed(self.models.get(kind, {}).get("folds", [])):
            if fm is not None and not _isnan(fm.get(metric)):
                return float(fm[metric])
        return math.nan

    def to_dict(self) -> dict[str, Any]:
        return _clean(
            {
                "gap_days": self.gap_days,
                "threshold": self.threshold,
                "code_metrics": self.code_metrics,
                "folds": [f.to_dict() for f in self.folds],
                "models": self.models,
                "unsupervised_effort": self.unsupervised,
                "chosen": self.chosen,
                "baseline": self.baseline,
                "beats_baseline": self.beats_baseline,
                "statement": self.statement,
                "pooled_over": self.pooled_over,
                "bootstrap": self.bootstrap,
            }
        )

    def pooled(self, kind: str, folds: Sequence[int] | None = None) -> tuple[np.ndarray, ...]:
        """``kind``'s out-of-time predictions pooled over its evaluated folds (or the
        fold indices ``folds``), in fold then time order: (row positions, fold index,
        probabilities)."""
        pos, fold_of, prob = [], [], []
        for f, p in zip(self.folds, self.predictions.get(kind, []), strict=False):
            if p is None or (folds is not None and f.index not in folds):
                continue
            pos.append(f.test_idx)
            fold_of.append(np.full(len(p), f.index))
            prob.append(np.asarray(p, dtype=float))
        if not pos:
            return np.zeros(0, dtype=int), np.zeros(0, dtype=int), np.zeros(0)
        return np.concatenate(pos), np.concatenate(fold_of), np.concatenate(prob)

    def predictions_frame(self) -> pd.DataFrame:
        """Every out-of-time prediction, one row per (model, test commit): the columns of
        :data:`PREDICTION_COLUMNS`; models in evaluation order, then fold, then time."""
        if self.rows is None:
            raise ValueError("this evaluation holds no rows (made by evaluate())")
        parts = []
        for kind in self.predictions:
            pos, fold_of, prob = self.pooled(kind)
            rows = self.rows.iloc[pos]
            parts.append(
                pd.DataFrame(
                    {
                        "sha": rows["sha"].astype(str).to_numpy(),
                        "fold": fold_of.astype("int64"),
                        "model": kind,
                        "probability": prob,
                        "label": rows["label"].to_numpy(dtype="int64"),
                        "effort": rows["effort"].to_numpy(dtype="int64"),
                        "author_time": rows["author_time"].to_numpy(),
                    }
                )
            )
        if not parts:
            return pd.DataFrame({c: [] for c in PREDICTION_COLUMNS})
        out = pd.concat(parts, ignore_index=True)
        out["author_time"] = pd.to_datetime(out["author_time"], utc=True)
        return out[list(PREDICTION_COLUMNS)]


def write_predictions(ev: Evaluation, path: str | Path) -> Path:
    """Write :meth:`Evaluation.predictions_frame` to ``path``: Parquet when it ends in
    ``.parquet``, else CSV (author times in ISO 8601, UTC). Written to a temporary name
    and renamed into place."""
    out = Path(path)
    df = ev.predictions_frame()
    if out.suffix.lower() == ".parquet":
        import io

        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        data = buf.getvalue()
    else:
        csv = df.assign(author_time=df["author_time"].map(lambda t: t.isoformat()))
        # 17 significant digits: the probabilities read back bit for bit
        data = csv.to_csv(index=False, lineterminator="\n", float_format="%.17g").encode()
    atomic_write_bytes(out, data)
    return out


def _isnan(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _clean(obj: Any) -> Any:
    """NaN -> None, numpy scalars -> Python (JSON-able)."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def _mean(rows: list[dict[str, float] | None]) -> dict[str, float]:
    present = [r for r in rows if r is not None]
    if not present:
        return {}
    out = {}
    for k in present[0]:
        vals = [r[k] for r in present if not _isnan(r.get(k))]
        out[k] = float(np.mean(vals)) if vals else math.nan
    out["folds"] = len(present)
    return out


def evaluate(
    frame: pd.DataFrame,
    config: Config | None = None,
    *,
    kinds: Sequence[str] = KINDS,
    code_metrics: bool = False,
    threshold: float = 0.5,
    progress: Callable[[str, int, int | None], None] | None = None,
    fixed: Mapping[str, Any] | None = None,
    prior: Any = None,
) -> Evaluation:
    """Evaluate candidate kinds on rolling-origin folds of a :func:`prepare_frame` frame.

    ``fixed``: name -> an already fitted model (``predict_proba(rows)``, e.g. the bundled
    cross-project model) scored on the same test rows without refitting. It competes for
    ``chosen`` like the kinds; it must not have been trained on this frame's changes.

    ``prior``: the fitted model the ``prior`` kind starts from (default: the bundled
    model, unless it was trained on this frame's repository: then the ``prior`` kind is
    left out). It must not have been trained on this frame's changes either.
    """
    cfg = config or Config()
    gap = cfg.train.gap_days if cfg.train.gap_days is not None else cfg.label.verification_days
    folds = time_folds(frame, cfg.train.folds, gap)
    fixed = dict(fixed or {})
    clash = set(fixed) & {*kinds, BASELINE}
    if clash:
        raise ValueError(f"fixed candidates {sorted(clash)} clash with model kinds")
    # a fixed model that cannot score these rows (e.g. a library version it was not
    # saved with) is only a candidate fewer; each is scored once, folds take their rows
    fixed_p: dict[str, np.ndarray] = {}
    for name, model in fixed.items():
        try:
            p = np.asarray(model.predict_proba(frame), dtype=float)
        except (ValueError, KeyError, TypeError, DiffriskError):
            continue
        fixed_p[name] = p[:, 1] if p.ndim == 2 else p
    kinds = [*dict.fromkeys([*kinds, BASELINE]), *fixed_p]
    if PRIOR_KIND in kinds and prior is None:
        prior = bundled_for(frame)
    prior = as_prior(prior) if prior is not None else None
    penalties: list[float | None] = []
    per_kind: dict[str, list[dict[str, float] | None]] = {k: [] for k in kinds}
    preds: dict[str, list[np.ndarray | None]] = {k: [] for k in kinds}
    unsup: list[dict[str, float] | None] = []
    scales: list[float | None] = []
    y_final = frame["label"].fillna(0).astype(int).to_numpy()
    effort_all = effort_of(frame)
    if progress:
        progress("evaluating", 0, len(folds) * len(kinds))
    for f in folds:
        if f.skipped:
            for k in kinds:
                per_kind[k].append(None)
                preds[k].append(None)
            unsup.append(None)
            if progress:
                progress("evaluating", len(kinds), None)
            continue
        Xtr = frame.iloc[f.train_idx]
        Xte = frame.iloc[f.test_idx]
        yte = y_final[f.test_idx]
        eff = effort_all[f.test_idx]
        unsup.append(effort_metrics(yte, 1.0 / np.maximum(eff, 1.0), eff))
        for k in kinds:
            est = None
            if k in fixed_p:
                p = fixed_p[k][f.test_idx]
            else:
                try:
                    if k == PRIOR_KIND and prior is None:
                        raise DataError("no prior model that has not seen this repository")
                    est = fit_estimator(
                        k,
                        Xtr,
                        f.train_y,
                        f.train_counts,
                        code_metrics=code_metrics,
                        prior=prior if k == PRIOR_KIND else None,
                    )
                except DataError:
                    # this candidate cannot be fitted on this fold (too few rows for its
                    # recipe, no prior); it is left out of the choice (below), the others
                    # compete
                    per_kind[k].append(None)
                    preds[k].append(None)
                    if k == "anchored":
                        scales.append(None)
                    if k == PRIOR_KIND:
                        penalties.append(None)
                    if progress:
                        progress("evaluating", 1, None)
                    continue
                p = est.predict_proba(Xte)[:, 1]
            per_kind[k].append(all_metrics(yte, p, eff, threshold))
            preds[k].append(p)
            if k == "anchored":
                scales.append(anchor_scale(est))
            if k == PRIOR_KIND:
                penalties.append(prior_penalty(est))
            if progress:
                progress("evaluating", 1, None)
    models: dict[str, dict[str, Any]] = {
        k: {"folds": per_kind[k], "overall": _mean(per_kind[k])} for k in kinds
    }
    if "anchored" in models:
        # Factor chosen by the nested selection in each evaluated fold (0 = the baseline).
        models["anchored"]["anchor_scales"] = scales
    if PRIOR_KIND in models:
        # Penalty chosen by the nested selection in each evaluated fold (0 = the prior).
        models[PRIOR_KIND]["prior_penalties"] = penalties
    ev = Evaluation(
        gap_days=float(gap),
        folds=folds,
        models=models,
        unsupervised={"folds": unsup, "overall": _mean(unsup)},
        chosen=None,
        baseline=BASELINE,
        beats_baseline=None,
        statement="",
        code_metrics=code_metrics,
        threshold=threshold,
        predictions=preds,
        bootstrap={
            "metric": RANK_METRIC,
            "resamples": BOOTSTRAP_RESAMPLES,
            "seed": BOOTSTRAP_SEED,
            "confidence": CONFIDENCE,
            "stratified_by": "fold",
        },
        rows=pd.DataFrame(
            {
                "sha": frame["sha"].astype(str).to_numpy(),
                "author_time": frame["author_time"].to_numpy(),
                "label": y_final,
                "effort": effort_all.astype("int64"),
            }
        ),
    )
    _add_pooled(ev, y_final, effort_all)
    # only candidates scored on every fold the baseline was scored on compete
    full = models[BASELINE]["overall"].get("folds", 0)
    ranked = sorted(
        (
            k
            for k in kinds
            if not _isnan(models[k]["overall"].get(RANK_METRIC))
            and models[k]["overall"].get("folds", 0) == full
        ),
        # Best mean ROC-AUC first; on a tie the baseline (the simpler model) wins, then a
        # fixed model (the bundled one: a prior model that kept its ranking ties with it)
        key=lambda k: (models[k]["overall"][RANK_METRIC], k == BASELINE, k in fixed_p),
        reverse=True,
    )
    ev.chosen = ranked[0] if ranked else None
    if ev.chosen is not None:
        ev.beats_baseline = ev.chosen != BASELINE and beats(models[ev.chosen].get("vs_baseline"))
    ev.statement = _statement(models, ev.chosen, ranked, ev.pooled_over)
    return ev


def _add_pooled(ev: Evaluation, y: np.ndarray, effort: np.ndarray) -> None:
    """Each model's figures pooled over its test commits (``pooled``), and each
    candidate's paired bootstrap against the baseline on the folds both were scored on
    (``vs_baseline``; None when they share none)."""
    scored = {
        k: tuple(f.index for f, p in zip(ev.folds, ps, strict=True) if p is not None)
        for k, ps in ev.predictions.items()
    }
    for k, m in ev.models.items():
        pos, _, p = ev.pooled(k)
        m["pooled"] = (
            {**all_metrics(y[pos], p, effort[pos], ev.threshold), "folds": len(scored[k])}
            if len(pos)
            else {}
        )
    pos, _, _ = ev.pooled(BASELINE)
    ev.pooled_over = {
        "n": len(pos),
        "n_buggy": int(y[pos].sum()),
        "folds": len(scored.get(BASELINE, ())),
    }
    # candidates sharing the same folds with the baseline share one set of resamples
    groups: dict[tuple[int, ...], list[str]] = {}
    for k in ev.models:
        if k == BASELINE:
            continue
        common = tuple(i for i in scored[k] if i in scored.get(BASELINE, ()))
        ev.models[k]["vs_baseline"] = None
        if common:
            groups.setdefault(common, []).append(k)
    for common, ks in groups.items():
        pos, fold_of, base = ev.pooled(BASELINE, common)
        cands = {k: ev.pooled(k, common)[2] for k in ks}
        boot = bootstrap_auc(y[pos], {BASELINE: base, **cands}, fold_of)
        for k in ks:
            ev.models[k]["vs_baseline"] = _difference(
                y[pos], cands[k], base, fold_of, boot[k] - boot[BASELINE]
            )


def _versus(kind: str, models: Mapping[str, Mapping[str, Any]]) -> str:
    """``kind vs lines added: ROC-AUC +0.026 (95% CI +0.008 to +0.041), pooled over
    1,234 test commits; mean over 3 folds 0.805 vs 0.780``."""
    c = models[kind]["vs_baseline"]
    mean_k = models[kind]["overall"].get(RANK_METRIC, math.nan)
    mean_b = models[BASELINE]["overall"].get(RANK_METRIC, math.nan)
    return (
        f"{kind} vs lines added: ROC-AUC {c['difference']:+.3f} "
        f"({round(100 * c['confidence'])}% CI {c['ci_low']:+.3f} to {c['ci_high']:+.3f}), "
        f"pooled over {c['n']:,} test commits; mean over {c['folds']} folds "
        f"{mean_k:.3f} vs {mean_b:.3f}"
    )


def _statement(
    models: Mapping[str, Mapping[str, Any]],
    chosen: str | None,
    ranked: Sequence[str],
    pooled_over: Mapping[str, int],
) -> str:
    """What the evaluation shows about the chosen model and the baseline. "beats the
    baseline" is said only when the interval of the difference lies above 0."""
    if chosen is None:
        return "no fold could be evaluated (too few labelled changes in the early history)"
    if chosen == BASELINE:
        base = models[BASELINE]
        best_other = next((k for k in ranked if k != BASELINE), None)
        return (
            "no learned model ranks above the lines-added baseline on the mean over folds "
            f"(baseline ROC-AUC {base['overall'].get(RANK_METRIC, math.nan):.3f} mean over "
            f"{base['overall'].get('folds', 0)} folds, "
            f"{base['pooled'].get(RANK_METRIC, math.nan):.3f} pooled over "
            f"{pooled_over.get('n', 0):,} test commits)"
            + (f"; best other: {_versus(best_other, models)}" if best_other else "")
        )
    comparison = models[chosen]["vs_baseline"]
    if beats(comparison):
        return f"{chosen} beats the baseline: {_versus(chosen, models)}"
    where = "lies below 0" if comparison["ci_high"] < 0 else "includes 0"
    out = (
        f"{chosen} (best mean ROC-AUC) is not shown to rank better than the lines-added "
        f"baseline: {_versus(chosen, models)}; the interval {where}"
    )
    others = [
        k for k in ranked if k not in (chosen, BASELINE) and beats(models[k].get("vs_baseline"))
    ]
    if not others:
        return out + "; no candidate is better than the baseline beyond chance"
    return out + "".join(
        f"; {k} is better than the baseline beyond chance but ranks lower on the mean "
        f"over folds ({_versus(k, models)})"
        for k in others
    )
