"""Monitoring a deployed model: feature drift, realized accuracy, the retraining decision.

Drift. For every feature the model reads, the changes of the model's training window
(``metadata['training_window']``; without one, every change older than the recent
window) are compared with the changes of the last ``monitor.recent_days`` days (ending at
the newest mined change) by

* the population stability index over 10 bins of equal width on the ``sign(x) log1p|x|``
  scale spanned by the reference (outer bins open-ended), so the bins measure changes of
  magnitude rather than small shifts of a crowded quantile (equal-frequency bins turn
  the slow growth of history counters such as EXP into spurious "drift"); and
* a two-sample Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``).

A feature is in ``alert`` when its PSI reaches ``monitor.psi_alert`` *and* the KS test
rejects equality at ``monitor.ks_alpha``; ``warn`` when the PSI reaches
``monitor.psi_warn`` and the KS test rejects. Requiring both keeps small recent windows
(noise inflates the PSI of a few dozen changes) and very large ones (the KS test rejects
trivial shifts) from raising alarms. Fewer than ``monitor.min_changes`` recent changes:
no verdict.

Realized accuracy. Labels come from SZZ (``labels.parquet``); a change whose label is
still ``unlabelled`` (younger than the verification latency and not blamed by a fix
yet) is never counted as clean. Past changes are scored by the current model; the
headline numbers use the labelled changes authored after the model's training window
(out of sample) and older than the verification latency (``label.verification_days``
before the newest change: younger changes count as unlabelled even when a fix already
blamed them, or the early-found bugs alone would inflate precision), per quarter and
overall: ROC-AUC, precision and recall of the gate at its threshold, and Recall@20%Effort. The prediction log (``predictions.parquet``) says
what was predicted *before* each merge; joined to the labels of the commits it scored
(and to a squash merge's commit by ``(#N)`` in its subject) it gives the share of buggy
changes that were flagged (level at or above ``gate.warn_on``) or blocked in time.

Retraining. Recommended when a feature's drift is in alert, when the realized ROC-AUC is
more than ``monitor.auc_drop`` below the model's recorded one, or when the model is older
than ``monitor.max_model_age_days``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from diffrisk.config import Config
from diffrisk.data import predlog
from diffrisk.data.predlog import commit_key
from diffrisk.data.schema import KAMEI
from diffrisk.errors import DataError, DiffriskError
from diffrisk.jsonutil import jsonable
from diffrisk.report.format import plural as _n

#: Drift features when no model says which it reads (the Kamei et al. change features).
DEFAULT_FEATURES = (*KAMEI, "pfix")
LEVELS = ("low", "medium", "high")
_SQUASH_PR = re.compile(r"\(#(\d+)\)\s*$")


# ------------------------------------------------------------------------------ drift


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


# ----------------------------------------------------------------------------- windows


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


# ------------------------------------------------------------------------------ metrics


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


# ----------------------------------------------------------------------- prediction log


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
    from diffrisk.mining.mine import epoch_seconds

    by_key: dict[str, list[str]] = {}
    if len(changes) and "author_email" in changes:
        times = epoch_seconds(changes["author_time"]).tolist()
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


# ------------------------------------------------------------------------------- inputs


def _with_source_lines(
    data_dir: Path, changes: pd.DataFrame, cfg: Config, warnings: list[str]
) -> pd.DataFrame:
    """``changes`` with the models' size inputs (``la_source``, ``la_code``, ``la_control``)
    computed as training computes them; without files.parquet the models fall back to ``la``."""
    from diffrisk.features.vendored import resolve as resolve_vendored
    from diffrisk.training.train import with_source_lines

    p = Path(data_dir) / "files.parquet"
    try:
        files = pd.read_parquet(p)
    except (OSError, ValueError) as err:
        warnings.append(f"{p} is unreadable ({err}): scores use all lines added")
        return changes
    return with_source_lines(changes, files, resolve_vendored(cfg.label, changes, files))


def load_changes(data_dir: Path) -> pd.DataFrame:
    p = Path(data_dir) / "changes.parquet"
    if not p.exists():
        raise DataError(
            f"no mined dataset in {data_dir}", hint="run `diffrisk mine` first (or pass --data-dir)"
        )
    try:
        df = pd.read_parquet(p)
    except (OSError, ValueError) as err:
        raise DataError(
            f"{p} is corrupt or unreadable ({err})", hint="run `diffrisk mine --rebuild`"
        ) from None
    df["author_time"] = pd.to_datetime(df["author_time"], utc=True)
    return df.sort_values("author_time", kind="stable").reset_index(drop=True)


def load_labels(data_dir: Path) -> pd.DataFrame | None:
    """``labels.parquet`` or None when the history was not labelled yet."""
    p = Path(data_dir) / "labels.parquet"
    if not p.exists():
        return None
    try:
        lab = pd.read_parquet(p)
    except (OSError, ValueError) as err:
        raise DataError(
            f"{p} is corrupt or unreadable ({err})", hint="run `diffrisk label` again"
        ) from None
    need = {"sha", "label", "label_state"}
    if need - set(lab.columns):
        raise DataError(
            f"{p} lacks columns {sorted(need - set(lab.columns))}",
            hint="run `diffrisk label` again",
        )
    return lab


def _with_labels(changes: pd.DataFrame, labels: pd.DataFrame | None) -> pd.DataFrame:
    if labels is None:
        out = changes.copy()
        out["label"] = np.nan
        out["label_state"] = "unlabelled"
        return out
    cols = [
        c
        for c in ("sha", "label", "label_state", "source_files", "fixed_by", "days_to_fix")
        if c in labels
    ]
    out = changes.merge(labels[cols], on="sha", how="left")
    out["label_state"] = out["label_state"].fillna("unlabelled")
    return out


def _load_model(data_dir: Path) -> tuple[Any | None, str | None]:
    """The current model (repository or bundled) or None with the reason."""
    try:
        from diffrisk.model.registry import load_model
    except ImportError:
        return None, "no model registry in this diffrisk build"
    try:
        return load_model(data_dir), None
    except DiffriskError as err:
        return None, err.message


def model_age_days(metadata: Mapping[str, Any], now: datetime | None = None) -> float | None:
    for key in ("trained_at", "created_at", "created", "saved_at"):
        t = _ts(metadata.get(key))
        if t is not None:
            now_ts = pd.Timestamp(now or datetime.now(timezone.utc))
            now_ts = now_ts.tz_localize("UTC") if now_ts.tzinfo is None else now_ts
            return float((now_ts - t).total_seconds() / 86400)
    return None


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


# -------------------------------------------------------------------------------- report


@dataclass
class RetrainDecision:
    retrain: bool
    reasons: list[str]
    drift_status: str
    realized_auc: float | None
    recorded_auc: float | None
    model_age_days: float | None
    held_back: str | None = None
    """Why a recommendation is held back (a recent retrain kept this model, or drift
    while the model has seen nearly every labelled change)."""


@dataclass
class MonitorReport:
    data_dir: str
    generated_at: str
    model_version: str | None
    model_source: str | None
    model_kind: str | None
    threshold: float
    reference: dict[str, Any]
    recent: dict[str, Any]
    drift: list[FeatureDrift]
    drift_status: str
    realized: dict[str, Any]
    periods: list[dict[str, Any]]
    log: dict[str, Any]
    log_recent: dict[str, Any]
    decision: RetrainDecision
    retrain_result: dict[str, Any] | None = None
    plots: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float | None = None
    risk_series: list[dict[str, Any]] = field(default_factory=list, repr=False)
    drift_thresholds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


def _add_influence(
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


RETRAIN_FILE = "retrain.json"


def last_retrain(data_dir: str | Path) -> dict[str, Any] | None:
    """The last ``diffrisk monitor --retrain`` outcome (``models/retrain.json``), or None."""
    from diffrisk.data.paths import models_dir

    path = models_dir(Path(data_dir)) / RETRAIN_FILE
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            return None
        at = pd.Timestamp(data["at"])
        data["at"] = (at.tz_localize("UTC") if at.tzinfo is None else at).isoformat()
        data["labelled"] = int(data.get("labelled") or 0)
        data["reasons"] = [str(r) for r in data.get("reasons") or []]
    except (OSError, ValueError, TypeError, KeyError):
        return None  # none yet, or unreadable: it only holds back a repeated recommendation
    return data


def reason_kind(reason: str) -> str:
    """What a retraining reason is about: drift, realized accuracy, age or the bundled model."""
    for key, kind in (
        ("feature drift", "drift"),
        ("realized ROC-AUC", "accuracy"),
        ("days old", "age"),
        ("bundled model", "bundled"),
    ):
        if key in reason:
            return kind
    return reason


def _record_retrain(data_dir: Path, out: dict[str, Any], labelled: int) -> None:
    from diffrisk.data.paths import models_dir
    from diffrisk.data.store import atomic_write_bytes

    rec = {
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "champion": out.get("version") if out.get("promoted") else out.get("champion"),
        "promoted": bool(out.get("promoted")),
        "summary": out.get("summary", ""),
        "labelled": labelled,
        "reasons": sorted({reason_kind(r) for r in out.get("reasons") or []}),
    }
    folder = models_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / RETRAIN_FILE, json.dumps(rec, indent=2).encode())


def monitor(
    data_dir: str | Path,
    config: Config | None = None,
    *,
    recent_days: int | None = None,
    model: Any | None = None,
    now: datetime | None = None,
) -> MonitorReport:
    """Compute the monitoring report for the dataset, labels, prediction log and model in ``data_dir``.

    ``model`` defaults to :func:`diffrisk.model.registry.load_model`; without one, drift uses
    the Kamei features against the older history and accuracy only the prediction log.
    """
    import time

    t0 = time.perf_counter()
    cfg = config or Config()
    mcfg = cfg.monitor
    data_dir = Path(data_dir)
    days = recent_days or mcfg.recent_days
    warnings: list[str] = []
    changes = load_changes(data_dir)
    if changes.empty:
        raise DataError(
            f"{data_dir}/changes.parquet holds no changes",
            hint="mine a repository with history first",
        )
    changes = _with_source_lines(data_dir, changes, cfg, warnings)
    labels = load_labels(data_dir)
    if labels is None:
        warnings.append("no labels yet: realized accuracy needs `diffrisk label`")
    if model is None:
        model, why = _load_model(data_dir)
        if model is None:
            warnings.append(f"no model: {why}")
    meta: dict[str, Any] = dict(getattr(model, "metadata", None) or {})
    frame = _with_labels(changes, labels)

    # windows
    end = frame["author_time"].max()
    recent_start = end - pd.Timedelta(days=days)
    recent = frame[frame["author_time"] > recent_start]
    # the bundled model's training window is other projects' history: compare with our own
    bundled = getattr(model, "source", None) in ("bundled", "bundled-chosen")
    tw_start, tw_end = (None, None) if bundled else training_window(meta)
    if tw_end is not None:
        lo = tw_start if tw_start is not None else frame["author_time"].min()
        ref = frame[(frame["author_time"] >= lo) & (frame["author_time"] <= tw_end)]
        ref_source = "training_window"
        if len(ref) < mcfg.min_changes:
            warnings.append(
                f"only {len(ref)} mined changes fall in the model's training window; using the older history"
            )
    if tw_end is None or len(ref) < mcfg.min_changes:
        ref = frame[frame["author_time"] <= recent_start]
        ref_source = "history"
    # the last reference_days of it: counters that grow over a project's life (NDEV, EXP,
    # AGE) always drift against a whole history; the question is what changed lately
    if len(ref):
        newest = ref["author_time"].max()
        ref = ref[ref["author_time"] >= newest - pd.Timedelta(days=mcfg.reference_days)]
    # the columns the model reads (the Kamei features without a model)
    wanted = list(meta.get("features") or ()) or list(DEFAULT_FEATURES)
    # numeric columns only: a token model's text input has no distribution to compare
    features = [f for f in wanted if f in frame.columns and f != "code_tokens"]
    drift = feature_drift(ref, recent, features, cfg)
    if model is not None:
        _add_influence(drift, model, recent, warnings)
    dstatus = drift_status(drift)

    # scores of past changes by the current model
    threshold = gate_threshold(cfg, meta)
    periods: list[dict[str, Any]] = []
    realized: dict[str, Any] = {"scope": None}
    risk_series: list[dict[str, Any]] = []
    if model is not None:
        try:
            prob = np.asarray(model.predict_proba(frame), dtype=float)
        except DiffriskError as err:
            prob = None
            warnings.append(f"cannot score the history with the model: {err.message}")
        if prob is not None:
            scored = frame.assign(probability=prob)
            risk_series = _risk_series(scored)
            if labels is not None:
                # Inside the verification latency only the bugs found early are labelled;
                # the clean ones cannot be told yet. Counting the early bugs alone would
                # inflate precision, so every change that young counts as unlabelled.
                mature = end - pd.Timedelta(days=cfg.label.verification_days)
                scored.loc[scored["author_time"] > mature, "label_state"] = "unlabelled"
                periods = windows(
                    scored,
                    threshold,
                    freq=mcfg.period,
                    training_end=tw_end,
                    min_class=mcfg.min_buggy,
                )
                oos = scored if tw_end is None else scored[scored["author_time"] > tw_end]
                lab = oos[eligible(oos)]
                y = pd.to_numeric(lab["label"], errors="coerce").fillna(0).astype(int).to_numpy()
                eff = (
                    pd.to_numeric(lab["la"]).fillna(0) + pd.to_numeric(lab["ld"]).fillna(0)
                ).to_numpy(dtype=float)
                realized = {
                    "scope": "after the training window"
                    if tw_end is not None
                    else "all labelled changes",
                    "since": tw_end.isoformat() if tw_end is not None else None,
                    "until": mature.isoformat(),
                    **accuracy(
                        y, lab["probability"].to_numpy(dtype=float), eff, threshold, mcfg.min_buggy
                    ),
                }

    # prediction log
    preds = predlog.load_predictions(data_dir)
    outcomes = prediction_outcomes(preds, changes, labels if labels is not None else _no_labels())
    now_ts = pd.Timestamp(now or datetime.now(timezone.utc))
    now_ts = now_ts.tz_localize("UTC") if now_ts.tzinfo is None else now_ts
    log_all = log_summary(outcomes, cfg)
    log_recent = log_summary(outcomes, cfg, days=mcfg.footer_days, now=now_ts)

    # decision
    rec_auc = recorded_auc(meta, whole_history=getattr(model, "source", None) == "bundled-chosen")
    age = model_age_days(meta, now_ts.to_pydatetime()) if meta else None
    reasons = []
    alerts = [d.feature for d in drift if d.matters]
    drift_reason = f"feature drift in alert: {', '.join(alerts)}"
    waiting = None
    if alerts:
        # a retrain learns only from labelled changes; when the model has seen all but a
        # few of them, retraining now would refit the same rows (the drifted recent
        # changes are still inside the verification latency)
        newer = None
        if tw_end is not None and labels is not None:
            # as for realized accuracy: younger changes cannot be told clean yet
            mature = end - pd.Timedelta(days=cfg.label.verification_days)
            t = frame["author_time"]
            labelled = eligible(frame) & (frame["label_state"] != "unlabelled")
            newer = int((labelled & (t > tw_end) & (t <= mature)).sum())
        if newer is not None and newer < mcfg.min_changes:
            waiting = (
                f"feature drift in alert ({', '.join(alerts)}), but the model was trained on "
                f"the labelled changes up to {tw_end.date()} and only {newer} have been "
                f"labelled since: a retrain would refit nearly the same rows, so it waits "
                f"until {mcfg.min_changes} are (monitor.min_changes)"
            )
        else:
            reasons.append(drift_reason)
    r_auc = realized.get("roc_auc")
    if r_auc is not None and rec_auc is not None and rec_auc - r_auc > mcfg.auc_drop:
        reasons.append(
            f"realized ROC-AUC {r_auc:.3f} is {rec_auc - r_auc:.3f} below the recorded {rec_auc:.3f} (limit {mcfg.auc_drop})"
        )
    if age is not None and age > mcfg.max_model_age_days:
        reasons.append(f"the model is {age:.0f} days old (limit {mcfg.max_model_age_days})")
    if model is not None and getattr(model, "source", None) == "bundled" and labels is not None:
        n_buggy = int((frame["label_state"] == "buggy").sum())
        # no clean label yet (a young history): training would fall back again
        if n_buggy >= cfg.train.min_buggy and (frame["label_state"] == "clean").any():
            reasons.append(
                f"the bundled model is in use but {n_buggy} buggy changes are labelled (train.min_buggy {cfg.train.min_buggy})"
            )
    if waiting and reasons:  # retraining anyway: the drift is one more reason to list
        reasons.insert(0, drift_reason)
    decision = RetrainDecision(
        bool(reasons), reasons, dstatus, r_auc, rec_auc, age, None if reasons else waiting
    )
    last = last_retrain(data_dir)
    if decision.retrain and last is not None and not last.get("promoted"):
        # a retrain was tried for this model and kept it: say so instead of asking again
        # every run, until the cool-down passes or more changes are labelled
        at = pd.Timestamp(last["at"])
        labelled = int((frame["label_state"] != "unlabelled").sum())
        more = max(labelled - last["labelled"], 0)
        wait = now_ts - at < pd.Timedelta(days=mcfg.retrain_cooldown_days)
        same = {reason_kind(r) for r in reasons} <= set(last["reasons"])
        if (
            last.get("champion") == getattr(model, "version", None)
            and same
            and wait
            and more < mcfg.min_changes
        ):
            decision.retrain = False
            decision.held_back = (
                f"retraining was tried on {at.date()} and kept {last.get('champion')} "
                f"({last.get('summary', '')}); it is recommended again after "
                f"{(at + pd.Timedelta(days=mcfg.retrain_cooldown_days)).date()} or once "
                f"{mcfg.min_changes - more} more changes are labelled"
            )

    return MonitorReport(
        data_dir=str(data_dir),
        generated_at=now_ts.isoformat(timespec="seconds"),
        model_version=getattr(model, "version", None),
        model_source=getattr(model, "source", None),
        model_kind=meta.get("kind"),
        threshold=threshold,
        reference={
            "source": ref_source,
            "start": ref["author_time"].min().isoformat() if len(ref) else None,
            "end": ref["author_time"].max().isoformat() if len(ref) else None,
            "changes": len(ref),
        },
        recent={
            "days": days,
            "start": recent_start.isoformat(),
            "end": end.isoformat(),
            "changes": len(recent),
        },
        drift=drift,
        drift_status=dstatus,
        realized=realized,
        periods=periods,
        log=log_all,
        log_recent=log_recent,
        decision=decision,
        warnings=warnings,
        seconds=time.perf_counter() - t0,
        risk_series=risk_series,
        drift_thresholds={
            "psi_warn": mcfg.psi_warn,
            "psi_alert": mcfg.psi_alert,
            "ks_alpha": mcfg.ks_alpha,
        },
    )


def _no_labels() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sha": pd.Series(dtype=str),
            "label_state": pd.Series(dtype=str),
            "label": pd.Series(dtype=float),
        }
    )


_IGNORED = " (little weight: ignored)"


def _ignored(f: Mapping[str, Any]) -> bool:
    """An alert on a feature the model gives little weight to (see FeatureDrift.matters)."""
    w = f.get("influence")
    return f.get("status") == "alert" and w is not None and w < MIN_INFLUENCE


def _risk_series(scored: pd.DataFrame) -> list[dict[str, Any]]:
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


# -------------------------------------------------------------------------------- footer


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
    data_dir = Path(data_dir)
    try:
        preds = predlog.load_predictions(data_dir)
        if preds.empty:
            return None
        labels = load_labels(data_dir)
        if labels is None:
            return None
        changes = pd.read_parquet(data_dir / "changes.parquet", columns=["sha", "subject"])
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


# ------------------------------------------------------------------------------ rendering

ISSUE_MARKER = "<!-- diffrisk:monitor -->"
_STATUS_MARK = {
    "alert": "🔴 alert",
    "warn": "🟡 warn",
    "ok": "🟢 ok",
    "insufficient": "⚪ too few changes",
}


def _f(v: Any, nd: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _pct(v: Any) -> str:
    return "–" if v is None else f"{100 * v:.0f}%"


def to_markdown(report: MonitorReport | Mapping[str, Any], *, plots_url: str | None = None) -> str:
    """The report as Markdown (job summary, the monitor issue's body)."""
    d = report.to_dict() if isinstance(report, MonitorReport) else dict(report)
    dec = d["decision"]
    out = [ISSUE_MARKER, "## diffrisk model monitor", ""]
    verdict = "**Retraining recommended**" if dec["retrain"] else "**No retraining needed**"
    model = (
        f"`{d['model_version']}` ({d['model_source']}{', ' + d['model_kind'] if d.get('model_kind') else ''})"
        if d["model_version"]
        else "none"
    )
    out += [
        f"{verdict} · model {model} · generated {d['generated_at']}",
        "",
    ]
    if dec["reasons"]:
        out += [f"- {r}" for r in dec["reasons"]] + [""]
    if dec.get("held_back"):
        out += [f"Not recommended now: {dec['held_back']}.", ""]
    rr = d.get("retrain_result")
    if rr:
        out += ["### Retraining", "", f"{rr.get('summary', '')}", ""]
    ref, rec = d["reference"], d["recent"]
    out += [
        f"### Feature drift: {_STATUS_MARK.get(d['drift_status'], d['drift_status'])}",
        "",
        f"Reference: {ref['changes']} changes {_day(ref['start'])} – {_day(ref['end'])} "
        f"({'training window' if ref['source'] == 'training_window' else 'older history'}); "
        f"recent: {rec['changes']} changes in the last {rec['days']} days up to {_day(rec['end'])}.",
        "",
        "| feature | PSI | KS D | KS p | median (ref → recent) | model weight | status |",
        "| --- | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for f in sorted(d["drift"], key=lambda f: -(f["psi"] or 0)):
        out.append(
            f"| `{f['feature']}` | {_f(f['psi'])} | {_f(f['ks_statistic'])} | {_p(f['ks_pvalue'])} | "
            f"{_f(f['reference_median'], 2)} → {_f(f['recent_median'], 2)} | {_f(f.get('influence'), 2)} | "
            f"{_STATUS_MARK.get(f['status'], f['status'])}{_IGNORED if _ignored(f) else ''} |"
        )
    out += ["", _status_rule(d.get("drift_thresholds"))]
    out += [
        "",
        "Model weight: the feature's mean absolute contribution to the log-odds of the recent "
        f"changes. Drift of a feature weighing less than {MIN_INFLUENCE} cannot move the scores "
        "and does not call for retraining.",
        "",
    ]
    r = d["realized"]
    out += ["### Realized accuracy", ""]
    if r.get("scope") is None:
        out += ["_Not available: needs a model and SZZ labels (`diffrisk label`)._", ""]
    else:
        out += [
            f"Labelled changes {r['scope']}: {r['n']} ({r['n_buggy']} buggy, {r['n_clean']} clean; "
            "changes still inside the verification latency are left out, never counted as clean).",
            "",
            f"- ROC-AUC: **{_f(r['roc_auc'])}** (recorded when trained: {_f(dec['recorded_auc'])})",
            f"- gate at p ≥ {d['threshold']:.2f}: precision {_pct(r['precision'])}, recall {_pct(r['recall'])} "
            f"({r['true_positives']} of {r['n_buggy']} buggy changes, {r['flagged']} flagged)",
            f"- Recall@20%Effort: {_pct(r['recall_at_20_effort'])}",
            "",
        ]
        rows = [p for p in d["periods"] if p["labelled"]][-8:]
        if rows:
            out += [
                "| period | changes | labelled | buggy | ROC-AUC | precision | recall | R@20%E |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            ]
            for p in rows:
                tag = " (training)" if p["in_training"] else ""
                out.append(
                    f"| {p['period']}{tag} | {p['changes']} | {p['labelled']} | {p['n_buggy']} | {_f(p['roc_auc'])} | "
                    f"{_pct(p['precision'])} | {_pct(p['recall'])} | {_pct(p['recall_at_20_effort'])} |"
                )
            out.append("")
    lg, lr = d["log"], d["log_recent"]
    out += ["### Predictions made before merge", ""]
    if not lg["predictions"]:
        out += ["_The prediction log is empty: `diffrisk score` and `diffrisk gate` fill it._", ""]
    else:
        out += [
            "| window | predictions | later buggy | flagged in time | blocked | clean | still unlabelled | not merged |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, s in ((f"last {lr['days']} days", lr), ("all", lg)):
            share = f" ({_pct(s['flagged_share'])})" if s["flagged_share"] is not None else ""
            out.append(
                f"| {name} | {s['predictions']} | {s['buggy']} | {s['buggy_flagged']}{share} | {s['buggy_blocked']} | "
                f"{s['clean']} | {s['unlabelled']} | {s['unmerged']} |"
            )
        out.append("")
    if d["plots"]:
        out += [
            "Plots: "
            + ", ".join(f"`{Path(p).name}`" for p in d["plots"])
            + (f" ([artifact]({plots_url}))" if plots_url else ""),
            "",
        ]
    for w in d["warnings"]:
        out.append(f"> ⚠️ {w}")
    return "\n".join(out).rstrip() + "\n"


def _day(iso: str | None) -> str:
    return iso[:10] if iso else "–"


def _p(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:.2g}" if v >= 1e-4 else "<1e-4"


def _status_rule(th: Mapping[str, Any] | None) -> str:
    """How a feature's drift status is decided (so a high PSI marked ok is not a puzzle)."""
    if not th:
        return "Status: alert or warn when the PSI is high and the KS test confirms it."
    return (
        f"Status: alert when PSI >= {th['psi_alert']:g} and the KS test rejects equal "
        f"distributions (p < {th['ks_alpha']:g}), warn when PSI >= {th['psi_warn']:g} and KS "
        "rejects; a high PSI that KS does not confirm (few or tied values, e.g. mostly zeros) "
        "stays ok."
    )


def render_terminal(report: MonitorReport, console: Any = None) -> None:
    """The report as rich tables."""
    from rich.console import Console
    from rich.table import Table

    con = console or Console()
    d = report.to_dict()
    dec = d["decision"]
    color = "red" if dec["retrain"] else "green"
    con.print(
        f"[bold {color}]{'retraining recommended' if dec['retrain'] else 'no retraining needed'}[/]; "
        + (
            f"model {d['model_version']} ({d['model_source'] or '-'})"
            if d["model_version"]
            else "no usable model (see the warnings below)"
        )
    )
    for r in dec["reasons"]:
        con.print(f"  - {r}")
    if dec.get("held_back"):
        con.print(f"not recommended now: {dec['held_back']}")
    if d.get("retrain_result"):
        con.print(f"[bold]retraining:[/] {d['retrain_result'].get('summary', '')}")
    t = Table(
        title=f"feature drift ({d['reference']['changes']} reference vs {d['recent']['changes']} recent changes)"
    )
    for c in ("feature", "PSI", "KS D", "KS p", "median ref → recent", "weight", "status"):
        t.add_column(c, justify="left" if c in ("feature", "status") else "right")
    style = {"alert": "red", "warn": "yellow", "ok": "green", "insufficient": "dim"}
    for f in sorted(d["drift"], key=lambda f: -(f["psi"] or 0)):
        t.add_row(
            f["feature"],
            _f(f["psi"]),
            _f(f["ks_statistic"]),
            _p(f["ks_pvalue"]),
            f"{_f(f['reference_median'], 2)} → {_f(f['recent_median'], 2)}",
            _f(f.get("influence"), 2),
            f"[{style.get(f['status'], '')}]{f['status']}[/]"
            + (" (little weight)" if _ignored(f) else ""),
        )
    con.print(t)
    con.print(_status_rule(d.get("drift_thresholds")), style="dim")
    r = d["realized"]
    if r.get("scope"):
        con.print(
            f"realized ({r['scope']}): n={r['n']} buggy={r['n_buggy']} ROC-AUC={_f(r['roc_auc'])} "
            f"(recorded {_f(dec['recorded_auc'])}) precision={_pct(r['precision'])} recall={_pct(r['recall'])} "
            f"R@20%E={_pct(r['recall_at_20_effort'])}"
        )
        rows = [p for p in d["periods"] if p["labelled"]][-8:]
        if rows:
            pt = Table(title="realized accuracy per period")
            for c in (
                "period",
                "changes",
                "labelled",
                "buggy",
                "ROC-AUC",
                "precision",
                "recall",
                "R@20%E",
            ):
                pt.add_column(c, justify="left" if c == "period" else "right")
            for p in rows:
                pt.add_row(
                    p["period"] + (" (train)" if p["in_training"] else ""),
                    str(p["changes"]),
                    str(p["labelled"]),
                    str(p["n_buggy"]),
                    _f(p["roc_auc"]),
                    _pct(p["precision"]),
                    _pct(p["recall"]),
                    _pct(p["recall_at_20_effort"]),
                )
            con.print(pt)
    lg = d["log"]
    if lg["predictions"]:
        con.print(
            f"prediction log: {_n(lg['predictions'], 'prediction')}, {lg['buggy']} later buggy, "
            f"{lg['buggy_flagged']} of them flagged in time, {lg['buggy_blocked']} blocked; "
            f"{lg['unlabelled']} still unlabelled, {lg['unmerged']} not merged"
        )
    for w in d["warnings"]:
        con.print(f"[yellow]warning:[/] {w}")


# ---------------------------------------------------------------------------------- plots


def write_plots(report: MonitorReport, out_dir: str | Path, fmt: str = "png") -> list[str]:
    """Risk over time, drift per feature, realized precision/recall per period; returns the paths."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from diffrisk.data.store import atomic_write_bytes

    if fmt not in ("png", "svg"):
        raise DataError(f"unknown plot format {fmt!r}", hint="use png or svg")
    out = Path(out_dir)
    paths: list[str] = []

    def save(fig: Any, name: str) -> None:
        import io

        buf = io.BytesIO()
        fig.savefig(
            buf,
            format=fmt,
            dpi=110,
            bbox_inches="tight",
            metadata={"Software": None} if fmt == "png" else {"Date": None},
        )
        plt.close(fig)
        p = out / f"{name}.{fmt}"
        atomic_write_bytes(p, buf.getvalue())
        paths.append(str(p))

    if report.risk_series:
        months = [pd.Period(r["month"]).to_timestamp() for r in report.risk_series]
        fig, ax = plt.subplots(figsize=(9, 3.5))
        ax.plot(months, [r["median"] for r in report.risk_series], label="median")
        ax.plot(months, [r["p90"] for r in report.risk_series], label="90th percentile")
        ax.axhline(
            report.threshold,
            color="red",
            linestyle="--",
            linewidth=1,
            label=f"gate {report.threshold:.2f}",
        )
        ax.set_ylim(0, 1)
        ax.set_ylabel("predicted risk")
        ax.set_title("Risk of the mined changes over time (current model)")
        ax.legend(loc="upper left", fontsize=8)
        save(fig, "risk_over_time")
    feats = [d for d in report.drift if d.psi is not None]
    if feats:
        feats.sort(key=lambda d: d.psi or 0)
        colors = {"alert": "tab:red", "warn": "tab:orange", "ok": "tab:green"}
        fig, ax = plt.subplots(figsize=(7, 0.35 * len(feats) + 1.2))
        ax.barh(
            [d.feature for d in feats],
            [d.psi for d in feats],
            color=[colors.get(d.status, "grey") for d in feats],
        )
        th = report.drift_thresholds or Config().monitor.model_dump()
        ax.axvline(th["psi_warn"], color="tab:orange", linestyle=":", linewidth=1)
        ax.axvline(th["psi_alert"], color="tab:red", linestyle=":", linewidth=1)
        ax.set_xlabel("population stability index (recent vs reference)")
        ax.set_title("Feature drift")
        save(fig, "drift")
    rows = [p for p in report.periods if p["labelled"]]
    if rows:
        x = [pd.Timestamp(p["start"]).tz_localize(None) for p in rows]
        fig, ax = plt.subplots(figsize=(9, 3.5))
        for key, label in (
            ("precision", "precision"),
            ("recall", "recall"),
            ("roc_auc", "ROC-AUC"),
        ):
            ax.plot(
                x,
                [np.nan if p[key] is None else p[key] for p in rows],
                marker="o",
                markersize=3,
                label=label,
            )
        ax.set_ylim(0, 1)
        ax.set_title(f"Realized accuracy per period (gate at p ≥ {report.threshold:.2f})")
        ax.legend(loc="lower left", fontsize=8)
        save(fig, "realized_accuracy")
    report.plots = paths
    return paths


# ----------------------------------------------------------------------------- GitHub issue


@dataclass
class IssueOutcome:
    action: str  # created | updated | unchanged
    number: int
    url: str | None
    pinned: bool | None = None


def publish_issue(client: Any, markdown: str, title: str, *, pin: bool = True) -> IssueOutcome:
    """Create or update in place the one open monitor issue (body carries ``ISSUE_MARKER``).

    ``client`` is a :class:`diffrisk.hosts.github.client.GitHubClient`. Only an open issue with the
    marker written by our identity is edited; a new one is pinned (GraphQL ``pinIssue``;
    refused pins are reported, not raised).
    """
    from github import GithubException

    from diffrisk.errors import GitHubError

    body = markdown if ISSUE_MARKER in markdown else ISSUE_MARKER + "\n" + markdown
    me = client.identity()
    try:
        issues = client.repo.get_issues(state="open", sort="updated", direction="desc")
        for n, issue in enumerate(issues):
            if n >= 300:  # the monitor issue is updated daily: it is among the recent ones
                break
            # only attributes the list answer carries (a missing one costs a request per
            # issue); pull requests are listed too: their html_url says /pull/
            if (
                "/pull/" not in (issue.html_url or "")
                and ISSUE_MARKER in (issue.body or "")
                and me.wrote(issue.user)
            ):
                if issue.body == body and issue.title == title:
                    return IssueOutcome("unchanged", issue.number, issue.html_url)
                issue.edit(title=title, body=body)
                return IssueOutcome("updated", issue.number, issue.html_url)
        issue = client.repo.create_issue(title=title, body=body)
    except GithubException as err:
        msg = (err.data or {}).get("message") if isinstance(err.data, dict) else str(err.data)
        raise GitHubError(
            f"cannot update the monitor issue: GitHub answered {err.status}: {msg}",
            hint="the workflow needs `permissions: issues: write`",
        ) from None
    pinned = None
    if pin:
        try:
            client.gh.requester.graphql_named_mutation(
                "pinIssue", {"issueId": issue.node_id}, "issue { number }"
            )
            pinned = True
        except GithubException:
            pinned = False
    return IssueOutcome("created", issue.number, issue.html_url, pinned)


# ------------------------------------------------------------------------------- retrain


def retrain(
    repo: str | Path | None,
    data_dir: str | Path,
    config: Config | None = None,
    report: MonitorReport | None = None,
) -> dict[str, Any]:
    """Train a challenger on the recent window; promote it only if it beats the champion.

    The outcome is recorded in ``models/retrain.json``: while it kept the current model,
    :func:`monitor` holds back the same recommendation for ``monitor.retrain_cooldown_days``
    or until ``monitor.min_changes`` more changes are labelled.
    """
    out = _retrain(repo, data_dir, config, report)
    labels = load_labels(Path(data_dir))
    labelled = 0 if labels is None else int((labels["label_state"] != "unlabelled").sum())
    _record_retrain(Path(data_dir), out, labelled)
    return out


def _retrain(
    repo: str | Path | None,
    data_dir: str | Path,
    config: Config | None = None,
    report: MonitorReport | None = None,
) -> dict[str, Any]:
    """:func:`retrain` without the record.

    Champion/challenger rule: on the latest time-ordered evaluation fold
    (:func:`diffrisk.training.evaluate.time_folds`), a challenger of the current model's kind is
    fitted on the fold's training rows of the last ``monitor.retrain_days`` days and
    compared by ROC-AUC on the fold's test rows with the current model: the stored model
    itself when its training window ends before the test period (or it is the bundled
    one), else the current model's recipe refitted on the fold's training rows from its
    training-window start. Only a strictly higher ROC-AUC promotes; the promoted
    model is refitted on the last ``monitor.retrain_days`` days of labelled changes and
    its metadata records why. ``repo`` is informational (recorded in the metadata).
    """
    from sklearn.metrics import roc_auc_score

    from diffrisk.data import store
    from diffrisk.data.paths import models_dir
    from diffrisk.features.vendored import resolve as resolve_vendored
    from diffrisk.model.registry import ModelRegistry, load_model
    from diffrisk.training.evaluate import prepare_frame, time_folds
    from diffrisk.training.train import KINDS, fit_estimator, model_reference, raw_features

    cfg = config or Config()
    data_dir = Path(data_dir)
    ds = store.load_dataset(data_dir)
    assert ds is not None
    labels = load_labels(data_dir)
    if labels is None:
        raise DataError("retraining needs labels", hint="run `diffrisk label` first")
    frame = prepare_frame(
        ds.changes, labels, ds.files, resolve_vendored(cfg.label, ds.changes, ds.files)
    )
    champion = load_model(data_dir)
    cm = bool(champion.metadata.get("code_metrics")) or "cc_delta" in champion.features
    # a dataset mined without radon (the default) has no code metrics to refit on
    cm = cm and "cc_delta" in frame.columns and bool(frame["cc_delta"].notna().any())
    kind = (
        champion.kind
        if champion.kind in KINDS
        else ("logistic" if cfg.train.model == "auto" else cfg.train.model)
    )
    gap = cfg.train.gap_days if cfg.train.gap_days is not None else cfg.label.verification_days
    window = pd.Timedelta(days=cfg.monitor.retrain_days)
    out: dict[str, Any] = {
        "kind": kind,
        "champion": champion.version,
        "window_days": cfg.monitor.retrain_days,
        "reasons": list(report.decision.reasons) if report else [],
        "promoted": False,
    }
    folds = [f for f in time_folds(frame, cfg.train.folds, gap) if not f.skipped]
    if not folds:
        out["summary"] = "no challenger: no evaluation fold has enough labelled changes"
        return out
    fold = folds[-1]
    times = frame["author_time"]
    y_final = frame["label"].fillna(0).astype(int).to_numpy()
    test = frame.iloc[fold.test_idx]
    y_test = y_final[fold.test_idx]
    recent = (times.iloc[fold.train_idx] >= pd.Timestamp(fold.train_end) - window).to_numpy()
    ch_y = fold.train_y[recent]
    out["fold"] = {
        "test_start": fold.test_start,
        "test_end": fold.test_end,
        "n_test": fold.n_test,
        "n_test_buggy": fold.n_test_buggy,
    }
    if len(np.unique(y_test)) < 2:
        out["summary"] = "no challenger: the latest fold's test rows hold one class only"
        return out
    need = cfg.monitor.min_buggy
    if ch_y.sum() < need or len(ch_y) - ch_y.sum() < need:
        out["summary"] = (
            f"no challenger: the last {cfg.monitor.retrain_days} days before the latest fold hold "
            f"{int(ch_y.sum())} buggy / {int(len(ch_y) - ch_y.sum())} clean labelled changes "
            f"(monitor.min_buggy: {need} of each)"
        )
        return out
    ch_idx = fold.train_idx[recent]
    try:
        challenger = fit_estimator(
            kind, frame.iloc[ch_idx], ch_y, fold.train_counts[recent], code_metrics=cm
        )
    except DataError as err:
        out["summary"] = f"no challenger: {err.message}"
        return out
    auc_ch = float(roc_auc_score(y_test, challenger.predict_proba(test)[:, 1]))
    _, tw_end = training_window(champion.metadata)
    tw_start, _ = training_window(champion.metadata)
    if champion.source in ("bundled", "bundled-chosen") or (
        tw_end is not None and tw_end < pd.Timestamp(fold.test_start)
    ):
        p_champ = champion.predict_proba(test)
        how = "the current model as stored"
    else:
        keep = np.ones(len(fold.train_idx), dtype=bool)
        if tw_start is not None:
            keep = (times.iloc[fold.train_idx] >= tw_start).to_numpy()
        try:
            refit = fit_estimator(
                kind,
                frame.iloc[fold.train_idx[keep]],
                fold.train_y[keep],
                fold.train_counts[keep],
                code_metrics=cm,
            )
        except DataError as err:
            out["summary"] = (
                f"no comparison: the current model's recipe cannot be refitted on the latest "
                f"fold's training rows ({err.message}); it stays"
            )
            return out
        p_champ = refit.predict_proba(test)[:, 1]
        how = "the current model's recipe refitted on the fold's training rows"
    auc_champ = float(roc_auc_score(y_test, p_champ))
    out.update({"challenger_auc": auc_ch, "champion_auc": auc_champ, "champion_compared_as": how})
    if not auc_ch > auc_champ:
        out["summary"] = (
            f"challenger ({kind}, last {cfg.monitor.retrain_days} days) NOT promoted: ROC-AUC {auc_ch:.3f} vs "
            f"{auc_champ:.3f} for {champion.version} on the latest fold ({fold.test_start[:10]} – {fold.test_end[:10]})"
        )
        return out
    # Promote: refit on the most recent labelled window with final labels.
    elig = (
        (frame["label_state"] != "unlabelled")
        & frame["label"].notna()
        & (frame["source_files"] > 0)
    )
    last = times[elig].max()
    rows = frame[elig & (times >= last - window)]
    y = rows["label"].astype(int).to_numpy()
    try:
        est = fit_estimator(kind, rows, y, rows["n_fixes"].to_numpy(), code_metrics=cm)
    except DataError as err:
        out["summary"] = (
            f"challenger won but cannot be refitted on the recent window: {err.message}"
        )
        return out
    why = (
        f"challenger promoted by diffrisk monitor: ROC-AUC {auc_ch:.3f} vs {auc_champ:.3f} for {champion.version} "
        f"on the latest fold ({fold.test_start[:10]} – {fold.test_end[:10]})"
    )
    md = {
        "kind": kind,
        "features": raw_features(kind, cm),
        "code_metrics": cm,
        "training_window": {  # the keys diffrisk train records
            "first_sha": str(rows["sha"].iloc[0]),
            "first_date": pd.Timestamp(rows["author_time"].iloc[0]).isoformat(),
            "last_sha": str(rows["sha"].iloc[-1]),
            "last_date": pd.Timestamp(rows["author_time"].iloc[-1]).isoformat(),
        },
        "n_train": len(rows),
        "n_buggy": int(y.sum()),
        "metrics": {
            "latest_fold": {"roc_auc": auc_ch, **out["fold"]},
            "rank_metric": "roc_auc",
            "champion_latest_fold": {"roc_auc": auc_champ},
        },
        "reference": model_reference(kind, est, rows, cm),
        "repository": str(repo) if repo is not None else None,
        "promotion": {
            "by": "diffrisk monitor --retrain",
            "why": why,
            "monitor_reasons": out["reasons"],
            "replaced": champion.version,
            "champion_auc": auc_champ,
            "challenger_auc": auc_ch,
            "champion_compared_as": how,
        },
    }
    reg = ModelRegistry(models_dir(data_dir))
    version = reg.save(est, md)
    reg.promote(version)
    out.update({"promoted": True, "version": version, "summary": why + f"; new model {version}"})
    return out
