"""The monitor report: drift, realized accuracy and the retraining decision, computed together.

:func:`monitor` reads the mined dataset, the SZZ labels, the prediction log and the
current model of a data directory and returns a :class:`MonitorReport`: feature drift
against the model's training window (:mod:`~diffrisk.monitoring.drift`), realized accuracy
of the history scored by the model (:mod:`~diffrisk.monitoring.accuracy`), what became of
the logged predictions (:mod:`diffrisk.data.outcomes`), their capture at a review budget
(:mod:`~diffrisk.monitoring.capture`), the quality of the labels
(:mod:`~diffrisk.monitoring.labelquality`) and whether to retrain.
Retraining is recommended when a feature the model weighs drifts into alert, when the
realized ROC-AUC is more than ``monitor.auc_drop`` below the model's recorded one, when
the model is older than ``monitor.max_model_age_days``, or when the bundled model is in
use although the history could train one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from diffrisk.config import Config
from diffrisk.data import predlog
from diffrisk.data.outcomes import load_labels, log_summary, no_labels, prediction_outcomes
from diffrisk.errors import DataError, DiffriskError
from diffrisk.jsonutil import jsonable
from diffrisk.monitoring.accuracy import accuracy, eligible, gate_threshold, monthly_risk, windows
from diffrisk.monitoring.capture import realized_capture
from diffrisk.monitoring.drift import (
    DEFAULT_FEATURES,
    FeatureDrift,
    add_influence,
    drift_status,
    feature_drift,
)
from diffrisk.monitoring.labelquality import label_quality
from diffrisk.monitoring.modelinfo import model_age_days, recorded_auc, training_window
from diffrisk.monitoring.retrain_record import last_retrain, reason_kind


def _with_source_lines(
    data_dir: Path, changes: pd.DataFrame, cfg: Config, warnings: list[str]
) -> pd.DataFrame:
    """``changes`` with the models' size inputs (``la_source``, ``la_code``, ``la_control``)
    computed as training computes them; without files.parquet the models fall back to ``la``."""
    from diffrisk.features.source import with_source_lines
    from diffrisk.features.vendored import resolve as resolve_vendored

    p = Path(data_dir) / "files.parquet"
    try:
        files = pd.read_parquet(p)
    except (OSError, ValueError) as err:
        warnings.append(f"{p} is unreadable ({err}): scores use all lines added")
        return changes
    return with_source_lines(changes, files, resolve_vendored(cfg.label, changes, files))


def load_changes(data_dir: Path) -> pd.DataFrame:
    """``changes.parquet`` in author-time order; a missing or unreadable file is a DataError."""
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


@dataclass
class RetrainDecision:
    """Whether to retrain, why, and the numbers the decision read."""

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
    """The monitor's result: drift, realized accuracy, prediction-log counts, decision."""

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
    capture: dict[str, Any] | None = None
    """Capture at the review budgets of the logged predictions whose label is known
    (:func:`~diffrisk.monitoring.capture.realized_capture`); None without labels."""
    label_quality: dict[str, Any] | None = None
    """``LabelQuality.to_dict()`` of the labels; None without labels (or when the
    report cannot be made: a warning says why)."""

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


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
        add_influence(drift, model, recent, warnings)
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
            risk_series = monthly_risk(scored)
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
    outcomes = prediction_outcomes(preds, changes, labels if labels is not None else no_labels())
    now_ts = pd.Timestamp(now or datetime.now(timezone.utc))
    now_ts = now_ts.tz_localize("UTC") if now_ts.tzinfo is None else now_ts
    log_all = log_summary(outcomes, cfg)
    log_recent = log_summary(outcomes, cfg, days=mcfg.footer_days, now=now_ts)
    capture = None
    quality = None
    if labels is not None:
        # as for realized accuracy: younger changes cannot be told clean yet
        capture = realized_capture(
            outcomes,
            frame,
            mature=end - pd.Timedelta(days=cfg.label.verification_days),
            min_buggy=mcfg.min_buggy,
        )
        quality = label_quality(data_dir, warnings)

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
            assert tw_end is not None  # newer is counted only after tw_end
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
        capture=capture,
        label_quality=quality,
    )
