"""The ``--retrain`` path: champion/challenger on the latest time-ordered fold.

A challenger of the current model's kind is fitted on the recent window and promoted when
its ROC-AUC on the same test rows is at least the current model's
(:func:`diffrisk.training.champion.promotes`); every outcome is recorded (:mod:`diffrisk.monitoring.retrain_record`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from diffrisk.config import Config
from diffrisk.data.outcomes import load_labels
from diffrisk.errors import DataError
from diffrisk.model.metadata import build_metadata
from diffrisk.model.metadata import training_window as rows_window
from diffrisk.monitoring.modelinfo import training_window
from diffrisk.monitoring.monitor import MonitorReport
from diffrisk.monitoring.retrain_record import record_retrain


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
    record_retrain(Path(data_dir), out, labelled)
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
    training-window start. :func:`~diffrisk.training.champion.promotes` decides; the promoted
    model is refitted on the last ``monitor.retrain_days`` days of labelled changes and
    its metadata records why. ``repo`` is informational (recorded in the metadata).
    """
    from sklearn.metrics import roc_auc_score

    from diffrisk.data import store
    from diffrisk.data.paths import models_dir
    from diffrisk.features.vendored import resolve as resolve_vendored
    from diffrisk.model.contributions import model_reference
    from diffrisk.model.estimators import KINDS, fit_estimator
    from diffrisk.model.registry import ModelRegistry, load_model
    from diffrisk.model.transforms import raw_features
    from diffrisk.training.champion import promotes
    from diffrisk.training.evaluate import prepare_frame, time_folds

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
    if not promotes(auc_ch, auc_champ):
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
    md = build_metadata(
        kind,
        raw_features(kind, cm),
        code_metrics=cm,
        training_window=rows_window(rows),  # the keys diffrisk train records
        n_train=len(rows),
        n_buggy=int(y.sum()),
        metrics={
            "latest_fold": {"roc_auc": auc_ch, **out["fold"]},
            "rank_metric": "roc_auc",
            "champion_latest_fold": {"roc_auc": auc_champ},
        },
        reference=model_reference(kind, est, rows, cm),
        repository=str(repo) if repo is not None else None,
        promotion={
            "by": "diffrisk monitor --retrain",
            "why": why,
            "monitor_reasons": out["reasons"],
            "replaced": champion.version,
            "champion_auc": auc_champ,
            "challenger_auc": auc_ch,
            "champion_compared_as": how,
        },
    )
    reg = ModelRegistry(models_dir(data_dir))
    version = reg.save(est, md)
    reg.promote(version)
    out.update({"promoted": True, "version": version, "summary": why + f"; new model {version}"})
    return out
