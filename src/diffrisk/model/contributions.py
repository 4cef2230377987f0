"""Contributions: how much each feature moved one change's log-odds of a defect.

Linear models (:func:`linear_contributions`): Platt slope x coefficient x standardised
value; the ``tokens`` model's bag of tokens as one column, and its strongest tokens
(:func:`top_tokens`). Other models (:func:`replacement_contributions`): the change in
log-odds when one raw feature is replaced by its training median (:func:`model_reference`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion

from diffrisk.model.estimators import (
    PriorLogisticRegression,
    calibrated_members,
    token_members,
    token_scores,
)
from diffrisk.model.transforms import ANCHORS, CODE_TOKENS, LA_SOURCE, raw_features


def top_tokens(estimator: Any, row: pd.DataFrame, n: int = 5) -> list[tuple[str, float]]:
    """The names and keywords of one change that raise (positive) or lower its risk most:
    (token, log-odds contribution), largest magnitude first; [] for a model without
    tokens. Operators and brackets count in the model but name nothing a reader can act
    on, so they are not listed."""
    members = token_members(estimator) or []
    skip = len(ANCHORS)  # the tokens model's coefficients start with the line counts'
    prior = prior_token_member(estimator)
    if prior is not None:
        members, skip = [prior], 0
    weights: dict[str, float] = {}
    for _lines, tokens, coef, slope in members:
        vec = tokens.transform(row.iloc[:1]).tocsr()
        w = coef[skip:]
        names = tokens.named_steps["bag"].get_feature_names_out()
        for j, v in zip(vec.indices, vec.data, strict=True):
            weights[str(names[j])] = weights.get(str(names[j]), 0.0) + slope * w[j] * v / len(
                members
            )
    named = [(t, c) for t, c in weights.items() if c != 0.0 and (t[:1].isalpha() or t[:1] == "_")]
    return sorted(named, key=lambda kv: -abs(kv[1]))[:n]


def prior_token_member(estimator: Any) -> tuple[None, Any, np.ndarray, float] | None:
    """A ``prior`` model's bag of tokens as a :func:`token_members` entry (no line
    counts, slope 1), or None (another model, or a prior model fitted without tokens)."""
    if not isinstance(estimator, PriorLogisticRegression):
        return None
    pipe = getattr(estimator, "features_", None)
    if pipe is None or "bag" not in pipe.named_steps or not len(estimator.coef_):
        return None
    return None, pipe, estimator.coef_, 1.0


def training_medians(
    kind: str, X: pd.DataFrame, code_metrics: bool = False, pfix: bool = True
) -> dict[str, float]:
    """Reference values (training medians of the raw features) for contributions."""
    out = {}
    for col in raw_features(kind, code_metrics, pfix):
        if col == CODE_TOKENS:
            continue  # text: its reference is the mean token score (token_scores)
        src = col if col in X.columns else ("la" if col == LA_SOURCE else col)
        v = pd.to_numeric(X[src], errors="coerce").median() if src in X.columns else np.nan
        out[col] = float(v) if pd.notna(v) else 0.0
    return out


def model_reference(
    kind: str, estimator: Any, X: pd.DataFrame, code_metrics: bool = False
) -> dict[str, float]:
    """:func:`training_medians`, plus for the ``tokens`` and ``prior`` models the mean
    token score of its training rows (its token contribution is shown relative to a
    typical change)."""
    out = training_medians(kind, X, code_metrics)
    scores = token_scores(estimator, X) if kind == "tokens" else None
    if prior_token_member(estimator) is not None:
        scores = estimator.own_log_odds(X)
    if scores is not None and len(scores):
        out[CODE_TOKENS] = float(np.mean(scores))
    return out


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def linear_contributions(est: Any, X: pd.DataFrame) -> pd.DataFrame | None:
    """Per-feature log-odds contributions of a calibrated linear pipeline, or None.

    For each calibration member: Platt slope x coefficient x standardised transformed value
    (the training mean is 0 after ``StandardScaler``), averaged over the members.
    Transformed columns keep their raw feature names.
    """
    members = calibrated_members(est)
    if not members:
        return None
    if isinstance(members[0][0], PriorLogisticRegression):
        return _prior_contributions(members, X)
    if isinstance(members[0][0].named_steps.get("features"), FeatureUnion):
        return _tokens_contributions(est, X)
    total: pd.DataFrame | None = None
    for pipe, slope in members:
        clf = pipe.named_steps.get("clf")
        if not isinstance(clf, LogisticRegression):
            return None
        z = pipe[:-1].transform(X)
        names = list(pipe.named_steps["features"].transform(X.iloc[:1]).columns)
        contrib = slope * np.asarray(z, dtype=float) * clf.coef_[0]
        frame = pd.DataFrame(contrib, columns=names, index=X.index)
        total = frame if total is None else total + frame
    assert total is not None  # members is not empty
    return total / len(members)


def _prior_contributions(
    members: list[tuple[PriorLogisticRegression, float]], X: pd.DataFrame
) -> pd.DataFrame | None:
    """The ``prior`` model: the prior's own per-feature contributions (its log-odds, the
    offset) and the repository's term: one column ``code_tokens`` for a bag of tokens
    (not centred, as for the ``tokens`` model), else coefficient x standardised value per
    raw feature; times the Platt slope. None when the prior is not a linear model."""
    total: pd.DataFrame | None = None
    for model, slope in members:
        prior = linear_contributions(model.prior, X)
        if prior is None:
            return None
        frame = prior.copy()
        pipe = getattr(model, "features_", None)
        if pipe is not None and len(model.coef_):
            if "bag" in pipe.named_steps:
                frame[CODE_TOKENS] = model.own_log_odds(X)
            else:
                z = np.asarray(pipe.transform(X), dtype=float)
                names = list(pipe.named_steps["features"].transform(X.iloc[:1]).columns)
                own = pd.DataFrame(z * model.coef_, columns=names, index=X.index)
                frame = frame.add(own, fill_value=0.0)
        frame = slope * frame
        total = frame if total is None else total.add(frame, fill_value=0.0)
    assert total is not None  # members is not empty
    return total / len(members)


def _tokens_contributions(est: Any, X: pd.DataFrame) -> pd.DataFrame:
    """The ``tokens`` model: each added-line count as for linear models, and the token
    block as one column ``code_tokens`` (not centred; see :func:`token_scores`)."""
    members = token_members(est) or []
    out = pd.DataFrame(0.0, columns=list(ANCHORS), index=X.index)
    for lines, _tokens, coef, slope in members:
        z = np.asarray(lines.transform(X), dtype=float)
        out += slope * z * coef[: z.shape[1]] / len(members)
    scores = token_scores(est, X)
    out[CODE_TOKENS] = scores if scores is not None else 0.0
    return out


def replacement_contributions(
    predict_proba: Any, X: pd.DataFrame, reference: dict[str, float]
) -> pd.DataFrame:
    """Log-odds change when one raw feature at a time is replaced by its training median."""
    base = _logit(predict_proba(X))
    out = {}
    for col, ref in reference.items():
        Xr = X.copy()
        target = col if col in Xr.columns or col != LA_SOURCE else "la"
        Xr[target] = ref
        out[col] = base - _logit(predict_proba(Xr))
    return pd.DataFrame(out, index=X.index)
