"""Estimators: one scikit-learn estimator per candidate kind, and how it is fitted.

Every candidate takes rows with the ``changes.parquet`` columns and starts with a
``FunctionTransformer`` applying the field's preprocessing (:mod:`diffrisk.model.transforms`).
The candidates:

``logistic``  logistic regression with balanced class weights on standardised features;
``hgb``       ``HistGradientBoostingClassifier`` (balanced class weights);
``poisson``   ``PoissonRegressor`` on the number of fixes blaming a change; the
              probability of at least one fix is ``1 - exp(-mu)``;
``la``        the lines-added baseline (LApredict, Zeng et al. 2021): logistic
              regression on ``log1p`` of lines added to *source* files;
``anchored``  the baseline plus the other features, shrunk toward it: standardised
              features, the non-``la_source`` ones multiplied by a factor ``s`` before an
              L2 logistic regression (a heavier penalty on them); ``s`` is chosen by a
              nested time-ordered validation inside the training rows, and ``s = 0`` is
              the baseline itself, so the extra features are used only where they helped
              out of time in the training window;
``tokens``    the added-line counts next to the bag of tokens of the added code;
``prior``     the bundled cross-project model's log-odds as an offset, plus weights for
              the bag of tokens of the added code, L2-penalised and centred on the
              training rows (:class:`PriorLogisticRegression`): the bundled model
              re-ranked by the repository's history, as far as that history bears it.

The linear classifiers (but ``prior``, whose offset keeps the bundled model's scale) are
fitted on all their training rows and calibrated by Platt's
sigmoid fitted on out-of-time scores (:class:`TimeCalibratedClassifier`: copies fitted on
the older blocks of a ``TimeSeriesSplit`` score the next block); the boosted trees are
the average of those copies, each calibrated on its next block
(``CalibratedClassifierCV(method="sigmoid", ensemble=True)``). Either way calibration
never scores a change with a model fitted on it or on later changes (see docs/model.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import (  # _SigmoidCalibration: Platt's method, as CalibratedClassifierCV's
    CalibratedClassifierCV,
    _SigmoidCalibration,
)
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, PoissonRegressor
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import TimeSeriesSplit
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer, Normalizer, StandardScaler
from sklearn.utils.validation import check_is_fitted

from diffrisk.config import MODEL_KINDS
from diffrisk.errors import DataError, TooLittleHistoryError
from diffrisk.model.transforms import (
    ANCHORS,
    kamei_transform,
    la_transform,
    lines_transform,
    raw_features,
    shrink_extras,
    token_text,
)

KINDS = MODEL_KINDS

#: Candidate factors for the ``anchored`` model's non-anchor features (0 = the baseline).
ANCHOR_SCALES = (0.0, 0.1, 0.3, 1.0)


def _inner_folds(
    times: np.ndarray, n_folds: int, gap_days: float
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Rolling-origin (train, test) index pairs over time-sorted ``times`` (ns), with a gap."""
    out = []
    cuts = [np.quantile(times, i / (n_folds + 1), method="lower") for i in range(1, n_folds + 2)]
    cuts[-1] = times.max() + 1
    gap = int(gap_days * 86400e9)
    for i in range(n_folds):
        tr = np.flatnonzero(times < cuts[i] - gap)
        te = np.flatnonzero((times >= cuts[i]) & (times < cuts[i + 1]))
        out.append((tr, te))
    return out


def _times_of(X: pd.DataFrame) -> np.ndarray:
    """Author times (ns) of time-sorted rows, or one day apart when they have none."""
    if "author_time" in X.columns:
        return (
            pd.to_datetime(X["author_time"], utc=True)
            .astype("datetime64[ns, UTC]")
            .astype("int64")
            .to_numpy()
        )
    return np.arange(len(X), dtype="int64") * int(86400e9)


def nested_choice(
    build: Callable[[float], Any],
    values: Sequence[float],
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    n_folds: int = 3,
    gap_days: float = 90.0,
) -> tuple[float, dict[float, float]]:
    """The setting among ``values`` (smallest = simplest first) that ranks best out of
    time inside the training rows: rolling-origin folds over the time-sorted rows,
    ``gap_days`` between each inner train and test period, ``build(value)`` fitted on the
    inner train rows and scored by ROC-AUC on the next period. The smallest value within
    one standard error of the best mean wins (Breiman et al.'s one-standard-error rule),
    so a more complex setting must win by more than fold noise. Folds with one class (or
    fewer than 5 defect-inducing training rows) are skipped; with none left, the smallest
    value is returned with no scores."""
    y = np.asarray(y, dtype=int)
    folds = [
        (tr, te)
        for tr, te in _inner_folds(_times_of(X), n_folds, gap_days)
        if len(np.unique(y[tr])) == 2 and len(np.unique(y[te])) == 2 and y[tr].sum() >= 5
    ]
    if not folds:
        return float(min(values)), {}
    scores: dict[float, float] = {}
    errors: dict[float, float] = {}
    for v in values:
        aucs = []
        for tr, te in folds:
            model = build(v).fit(X.iloc[tr], y[tr])
            aucs.append(roc_auc_score(y[te], _ranking_score(model, X.iloc[te])))
        scores[float(v)] = float(np.mean(aucs))
        errors[float(v)] = float(np.std(aucs) / math.sqrt(len(aucs)))
    best = max(scores, key=lambda v: scores[v])
    bar = scores[best] - errors[best]
    return min(v for v, m in scores.items() if m >= bar - 1e-12), scores


def _ranking_score(model: Any, X: pd.DataFrame) -> np.ndarray:
    if hasattr(model, "decision_function"):
        return np.asarray(model.decision_function(X), dtype=float)
    return np.asarray(model.predict_proba(X)[:, 1], dtype=float)


def select_anchor_scale(
    X: pd.DataFrame,
    y: np.ndarray,
    code_metrics: bool = False,
    *,
    pfix: bool = True,
    scales: Sequence[float] = ANCHOR_SCALES,
    n_folds: int = 3,
    gap_days: float = 90.0,
) -> tuple[float, dict[float, float]]:
    """Nested time-ordered choice of the ``anchored`` model's factor on its training rows.

    Rolling-origin folds inside the (time-sorted) training rows, ``gap_days`` between each
    inner train and test period; the factor with the best mean inner ROC-AUC wins, ties
    going to the smaller factor (0 = the baseline) by the one-standard-error rule. Folds
    with one class are skipped (:func:`nested_choice`).
    """
    if not len(scales):
        return 0.0, {}
    return nested_choice(
        lambda s: _anchored_pipeline(s, code_metrics, pfix),
        scales,
        X,
        y,
        n_folds=n_folds,
        gap_days=gap_days,
    )


def _kamei_features(code_metrics: bool, pfix: bool) -> FunctionTransformer:
    """The learned models' preprocessing: :func:`kamei_transform` with the line counts."""
    return FunctionTransformer(
        kamei_transform,
        validate=False,
        kw_args={
            "code_metrics": code_metrics,
            "pfix": pfix,
            "code_lines": True,
            "control_lines": True,
        },
    )


def _anchored_pipeline(scale: float, code_metrics: bool = False, pfix: bool = True) -> Pipeline:
    return Pipeline(
        [
            (
                "features",
                _kamei_features(code_metrics, pfix),
            ),
            (
                "impute",
                SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True),
            ),
            ("scale", StandardScaler()),
            (
                "shrink",
                FunctionTransformer(
                    shrink_extras,
                    kw_args={
                        "scale": float(scale),
                        "anchor": [
                            raw_features("anchored", code_metrics, pfix).index(a) for a in ANCHORS
                        ],
                    },
                ),
            ),
            ("clf", LogisticRegression(class_weight="balanced", max_iter=2000, C=0.1)),
        ]
    )


#: Tokens must occur in at least this many training changes to enter the vocabulary.
TOKEN_MIN_DF = 10
#: At most this many tokens (the most frequent) per model.
TOKEN_VOCABULARY = 5000
#: The ``tokens`` model needs at least this many training rows (its vocabulary needs
#: repeated tokens; small histories are left to the other candidates).
TOKEN_MIN_ROWS = 100


def _tokens_pipeline() -> Pipeline:
    """The added-line counts (standardised) next to the bag of tokens of the added code
    (binary, rows scaled to unit length), in one L2 logistic regression (JITLine's
    recipe, Pornprasit and Tantithamthavorn 2021, with a linear model)."""
    return Pipeline(
        [
            (
                "features",
                FeatureUnion(
                    [
                        (
                            "lines",
                            Pipeline(
                                [
                                    ("features", FunctionTransformer(lines_transform)),
                                    (
                                        "impute",
                                        SimpleImputer(
                                            strategy="constant",
                                            fill_value=0.0,
                                            keep_empty_features=True,
                                        ),
                                    ),
                                    ("scale", StandardScaler()),
                                ]
                            ),
                        ),
                        (
                            "tokens",
                            token_bag(),
                        ),
                    ]
                ),
            ),
            ("clf", LogisticRegression(class_weight="balanced", max_iter=3000, C=0.1)),
        ]
    )


def token_members(estimator: Any) -> list[tuple[Any, Any, np.ndarray, float]] | None:
    """Per calibration member of a ``tokens`` model: (lines pipeline, tokens pipeline,
    coefficients, Platt slope); None for any other model."""
    out = []
    for pipe, slope in calibrated_members(estimator):
        union = getattr(pipe, "named_steps", {}).get("features")
        if not isinstance(union, FeatureUnion):
            return None
        parts = dict(union.transformer_list)
        coef = pipe.named_steps["clf"].coef_[0]
        out.append((parts["lines"], parts["tokens"], coef, slope))
    return out or None


def token_scores(estimator: Any, X: pd.DataFrame) -> np.ndarray | None:
    """The token block's share of the log-odds per row (Platt slope x token weights x
    the row's token vector, averaged over the calibration members), or None for a model
    without one."""
    members = token_members(estimator)
    if members is None:
        return None
    total = np.zeros(len(X))
    for _lines, tokens, coef, slope in members:
        total += slope * np.asarray(tokens.transform(X) @ coef[len(ANCHORS) :], dtype=float).ravel()
    return total / len(members)


def anchor_scale(estimator: Any) -> float | None:
    """The factor an ``anchored`` model was fitted with (None for other kinds)."""
    for pipe, _slope in calibrated_members(estimator):
        steps = getattr(pipe, "named_steps", {})
        if "shrink" in steps:
            return float(steps["shrink"].kw_args["scale"])
    return None


class TimeCalibratedClassifier(ClassifierMixin, BaseEstimator):
    """A classifier fitted on all its time-ordered rows, with a Platt sigmoid fitted on
    out-of-time scores: for each split of ``cv`` (default ``TimeSeriesSplit(3)``) a copy
    fitted on the older rows scores the next block, and one sigmoid is fitted on those
    scores together. A flat or decreasing sigmoid is replaced by a nearly flat
    increasing one (calibration never inverts the order); splits whose older rows hold
    one class are skipped, and ``ValueError`` says when no split is left to calibrate on.

    ``CalibratedClassifierCV(cv=TimeSeriesSplit(...))`` averages the copies instead, so
    the newest block of rows, the most like the changes being scored, never trains the
    ranking; its ``ensemble=False`` needs a partition of the rows, which a time-ordered
    split is not.
    """

    def __init__(self, estimator: Any = None, cv: Any = None) -> None:
        self.estimator = estimator
        self.cv = cv

    def fit(self, X: Any, y: Any) -> TimeCalibratedClassifier:
        y = np.asarray(y)
        if not np.isin(y, (0, 1)).all():
            raise ValueError("TimeCalibratedClassifier takes labels 0 and 1")
        y = y.astype(int)
        cv = self.cv if self.cv is not None else TimeSeriesSplit(n_splits=3)
        scores, targets = [], []
        for tr, te in cv.split(X):
            if len(np.unique(y[tr])) < 2:
                continue  # nothing to learn from these older rows; the later splits may do
            part = clone(self.estimator).fit(_take(X, tr), y[tr])
            scores.append(np.asarray(part.decision_function(_take(X, te)), dtype=float))
            targets.append(y[te])
        truth = np.concatenate(targets) if targets else np.zeros(0, dtype=int)
        if len(np.unique(truth)) < 2:
            raise ValueError(
                "no time-ordered split has both classes before and after it to calibrate on"
            )
        self.estimator_ = clone(self.estimator).fit(X, y)
        self.classes_ = np.array([0, 1])
        self.calibrator_ = _SigmoidCalibration().fit(np.concatenate(scores), truth)
        if self.calibrator_.a_ >= 0:
            # out of time the scores ranked the other way round (or not at all): keep
            # the model's order, with probabilities within a hair of the base rate,
            # rather than invert it (scaled by the final model's spread of scores)
            own = self.decision_function(X)
            rate = float(np.clip(truth.mean(), 1e-3, 1 - 1e-3))
            spread = float(np.std(own))
            self.calibrator_.a_ = -1e-3 / spread if spread > 1e-9 else 0.0
            self.calibrator_.b_ = -math.log(rate / (1 - rate)) - self.calibrator_.a_ * float(
                np.mean(own)
            )
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return np.asarray(self.estimator_.decision_function(X), dtype=float)

    def predict_proba(self, X: Any) -> np.ndarray:
        scores = self.decision_function(X)
        p = self.calibrator_.predict(scores)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def _take(X: Any, idx: np.ndarray) -> Any:
    return X.iloc[idx] if hasattr(X, "iloc") else np.asarray(X)[idx]


def calibrated_members(estimator: Any) -> list[tuple[Any, float]]:
    """(fitted pipeline, Platt slope on its decision values) of a calibrated model: one
    for :class:`TimeCalibratedClassifier`, one per member for a ``CalibratedClassifierCV``
    (models saved before 2026-12-03), a :class:`PriorLogisticRegression` itself with
    slope 1; [] for any other estimator."""
    if isinstance(estimator, TimeCalibratedClassifier) and hasattr(estimator, "estimator_"):
        return [(estimator.estimator_, -float(estimator.calibrator_.a_))]
    if isinstance(estimator, PriorLogisticRegression) and hasattr(estimator, "coef_"):
        return [(estimator, 1.0)]  # its log-odds are its probabilities' (no sigmoid on top)
    members = getattr(estimator, "calibrated_classifiers_", None) or []
    return [(m.estimator, -float(m.calibrators[0].a_)) for m in members]


class PoissonRiskClassifier(ClassifierMixin, BaseEstimator):
    """Poisson regression on a count target (fixes blaming a change) used as a classifier.

    ``fit(X, y)`` takes the counts; ``predict_proba`` gives ``P(N >= 1) = 1 - exp(-mu)``.
    scikit-learn has no standard part that turns a count regressor into a classifier.
    """

    def __init__(self, alpha: float = 1e-2, max_iter: int = 300) -> None:
        self.alpha = alpha
        self.max_iter = max_iter

    def fit(self, X: Any, y: Any) -> PoissonRiskClassifier:
        y = np.asarray(y, dtype=float)
        if np.any(y < 0):
            raise ValueError("counts must be >= 0")
        self.regressor_ = PoissonRegressor(alpha=self.alpha, max_iter=self.max_iter).fit(X, y)
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = self.regressor_.n_features_in_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        mu = self.regressor_.predict(X)
        p = -np.expm1(-mu)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def prior_log_odds(prior: Any, X: Any) -> np.ndarray:
    """The log-odds a fitted ``prior`` model gives each row (its probabilities, clipped
    to [1e-6, 1 - 1e-6])."""
    p = np.asarray(prior.predict_proba(X), dtype=float)
    p = np.clip(p[:, 1] if p.ndim == 2 else p, 1e-6, 1 - 1e-6)
    return np.log(p / (1.0 - p))


class PriorLogisticRegression(ClassifierMixin, BaseEstimator):
    """Logistic regression that starts from another model's log-odds: the fitted
    ``prior``'s log-odds (the bundled cross-project model's) is an offset, and the
    repository's own ``features`` (a transformer, fitted here) add an L2-penalised term:

        log-odds = prior log-odds + intercept + w . features,   penalty |w|^2 / (2 C)

    fitted on the rows (with ``class_weight``, as ``LogisticRegression(C=C,
    class_weight=...)`` would be; ``fit_intercept=False`` fixes the intercept at 0).
    ``C = 0`` or no ``features`` keeps the prior's ranking (only the intercept is
    fitted); the larger ``C``, the more the repository's rows move it. With features
    that include the prior's own, this is the prior's coefficients updated by the
    repository's data (a Gaussian prior centred on them, precision 1 / C).

    ``prior_base_rate``: the intercept serves the fit only; scored, the repository's term
    is centred on the training rows instead (``shift_`` = minus its mean there), so the
    log-odds average the prior's over those rows: the prior's base rate and scale are
    kept, the repository's term only re-ranks. Without features the model is then the
    prior itself.

    ``prior`` is kept as it is (already fitted): cloning this estimator shares it rather
    than returning an unfitted copy.
    """

    def __init__(
        self,
        prior: Any = None,
        features: Any = None,
        C: float = 0.01,
        class_weight: str | None = "balanced",
        fit_intercept: bool = True,
        prior_base_rate: bool = False,
        max_iter: int = 1000,
    ) -> None:
        self.prior = prior
        self.features = features
        self.C = C
        self.class_weight = class_weight
        self.fit_intercept = fit_intercept
        self.prior_base_rate = prior_base_rate
        self.max_iter = max_iter

    def __sklearn_clone__(self) -> PriorLogisticRegression:
        params = self.get_params(deep=False)
        prior = params.pop("prior")
        return type(self)(prior=prior, **{k: clone(v, safe=False) for k, v in params.items()})

    def _design(self, X: Any, fit: bool, y: np.ndarray | None = None) -> Any:
        if self.features is None or self.C <= 0:
            return None
        if fit:
            self.features_ = clone(self.features)
            return self.features_.fit_transform(X, y)
        return self.features_.transform(X)

    def fit(self, X: Any, y: Any) -> PriorLogisticRegression:
        from scipy.optimize import minimize

        if self.prior is None:
            raise ValueError("PriorLogisticRegression needs a fitted prior model")
        y = np.asarray(y)
        if not np.isin(y, (0, 1)).all():
            raise ValueError("PriorLogisticRegression takes labels 0 and 1")
        y = y.astype(float)
        offset = prior_log_odds(self.prior, X)
        Z = self._design(X, True, y.astype(int))
        k = 0 if Z is None else Z.shape[1]
        n_pos = y.sum()
        if self.class_weight == "balanced" and 0 < n_pos < len(y):
            sw = np.where(y == 1, len(y) / (2 * n_pos), len(y) / (2 * (len(y) - n_pos)))
        else:
            sw = np.ones(len(y))
        C = float(self.C)

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            w, b = theta[:k], theta[k] if self.fit_intercept else 0.0
            m = offset + b + (Z @ w if k else 0.0)
            f = float(np.sum(sw * (np.logaddexp(0.0, m) - y * m)))
            r = sw * (1.0 / (1.0 + np.exp(-m)) - y)
            grad = np.empty(k + 1)
            if k:
                grad[:k] = np.asarray(Z.T @ r).ravel() + w / C
                f += float(w @ w) / (2 * C)
            grad[k] = r.sum() if self.fit_intercept else 0.0
            return f, grad

        res = minimize(
            loss, np.zeros(k + 1), jac=True, method="L-BFGS-B", options={"maxiter": self.max_iter}
        )
        self.coef_ = np.asarray(res.x[:k], dtype=float)
        self.intercept_ = float(res.x[k]) if self.fit_intercept else 0.0
        # prior_base_rate: the fitted intercept served the fit only; the repository's
        # term is centred on the training rows, so on average the log-odds stay the prior's
        self.shift_ = (
            -float(np.mean(self.own_log_odds(X))) if self.prior_base_rate else self.intercept_
        )
        self.classes_ = np.array([0, 1])
        return self

    def own_log_odds(self, X: Any) -> np.ndarray:
        """The repository's term, w . features (0 when ``C = 0``)."""
        check_is_fitted(self, "coef_")
        Z = self._design(X, False)
        if Z is None or not len(self.coef_):
            return np.zeros(len(X))
        return np.asarray(Z @ self.coef_, dtype=float).ravel()

    def decision_function(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "coef_")
        return prior_log_odds(self.prior, X) + self.shift_ + self.own_log_odds(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


#: The model kind whose fit starts from the bundled model.
PRIOR_KIND = "prior"
#: The ``prior`` kind's penalty on the repository's token weights (inverse L2 strength,
#: as the ``tokens`` kind's C; the loss sums over the rows, so the fewer the rows, the
#: closer the model stays to the prior).
PRIOR_C = 0.1


def token_bag() -> Pipeline:
    """The ``tokens`` and ``prior`` kinds' token features: the bag of tokens of the added
    lines of code (binary, in at least :data:`TOKEN_MIN_DF` training changes, the :data:`TOKEN_VOCABULARY` most frequent, each change's vector scaled to
    unit length)."""
    return Pipeline(
        [
            ("text", FunctionTransformer(token_text)),
            (
                "bag",
                CountVectorizer(
                    token_pattern=r"\S+",
                    lowercase=False,
                    binary=True,
                    min_df=TOKEN_MIN_DF,
                    max_features=TOKEN_VOCABULARY,
                    dtype=np.float64,
                ),
            ),
            ("norm", Normalizer()),
        ]
    )


#: Loads the ``prior`` kind's default prior, the bundled model's estimator. Set by
#: :mod:`diffrisk.model.registry`, which loads models (and imports this module, so this
#: module cannot import it).
default_prior_loader: Callable[[], Any] | None = None


def default_prior() -> Any:
    """The bundled cross-project model's estimator (the ``prior`` kind's default prior);
    a :class:`DataError` when it cannot be loaded."""
    if default_prior_loader is None:
        raise DataError(
            "the prior model starts from the bundled model, and no model loader is set",
            hint="import diffrisk.model.registry (it loads the bundled model)",
        )
    return default_prior_loader()


def prior_penalty(estimator: Any) -> float | None:
    """The penalty C a ``prior`` model was fitted with (0: the prior and an intercept;
    None for other kinds)."""
    for model, _slope in calibrated_members(estimator):
        if isinstance(model, PriorLogisticRegression):
            return float(model.C) if model.features is not None else 0.0
    return None


def build_estimator(
    kind: str,
    code_metrics: bool = False,
    *,
    random_state: int = 0,
    calibration_splits: int = 3,
    anchor_scale_value: float = 0.0,
    pfix: bool = True,
    prior: Any = None,
    prior_c: float = PRIOR_C,
) -> Any:
    """An unfitted estimator for ``kind`` (rows: ``changes`` columns, time-ordered);
    ``pfix=False`` leaves PFIX out of its features. ``prior`` (a fitted model; default:
    the bundled one) and ``prior_c`` are the ``prior`` kind's (``prior_c = 0``: the prior
    and an intercept, no tokens)."""
    if kind not in KINDS:
        raise DataError(f"unknown model kind {kind!r}", hint=f"use one of {', '.join(KINDS)}")
    cv = TimeSeriesSplit(n_splits=calibration_splits)
    if kind == PRIOR_KIND:
        # not recalibrated, and the bundled model's base rate kept: its log-odds plus the
        # centred token term are the probability (a Platt sigmoid or an intercept refitted
        # per fit moved the scale from fit to fit, docs/model.md)
        return PriorLogisticRegression(
            prior if prior is not None else default_prior(),
            token_bag() if prior_c > 0 else None,
            C=prior_c,
            class_weight=None,
            prior_base_rate=True,
        )
    if kind == "anchored":
        return TimeCalibratedClassifier(
            _anchored_pipeline(anchor_scale_value, code_metrics, pfix), cv=cv
        )
    if kind == "tokens":
        return TimeCalibratedClassifier(_tokens_pipeline(), cv=cv)
    if kind == "la":
        features = FunctionTransformer(la_transform, validate=False)
    else:
        features = _kamei_features(code_metrics, pfix)
    if kind == "hgb":
        trees = HistGradientBoostingClassifier(
            learning_rate=0.05,
            max_iter=200,
            max_leaf_nodes=15,
            min_samples_leaf=40,
            l2_regularization=1.0,
            class_weight="balanced",
            random_state=random_state,
        )
        # boosted trees vary from fit to fit: the average of the copies fitted on older
        # blocks ranked better than one fit on every row (docs/model.md); linear models
        # the other way round
        return CalibratedClassifierCV(
            Pipeline([("features", features), ("clf", trees)]),
            method="sigmoid",
            cv=cv,
            ensemble=True,
        )
    steps: list[tuple[str, Any]] = [
        ("features", features),
        ("impute", SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True)),
        ("scale", StandardScaler()),
    ]
    if kind == "poisson":
        return Pipeline([*steps, ("clf", PoissonRiskClassifier())])
    steps.append(("clf", LogisticRegression(class_weight="balanced", max_iter=2000, C=0.1)))
    return TimeCalibratedClassifier(Pipeline(steps), cv=cv)


def fit_estimator(
    kind: str,
    X: pd.DataFrame,
    y: Sequence[int] | np.ndarray,
    n_fixes: Sequence[int] | np.ndarray | None = None,
    *,
    code_metrics: bool = False,
    random_state: int = 0,
    pfix: bool = True,
    prior: Any = None,
) -> Any:
    """Fit a candidate on time-ordered rows ``X`` (binary ``y``; ``n_fixes`` for ``poisson``;
    ``prior``, a fitted model, for ``prior``: default the bundled model)."""
    y = np.asarray(y, dtype=int)
    if len(np.unique(y)) < 2:
        raise TooLittleHistoryError(
            "the training rows hold only one class", hint="label more history before training"
        )
    # Each calibration split needs both classes; fewer splits on small or skewed data.
    splits = 3
    n_pos = int(y.sum())
    while splits > 1 and (n_pos < 4 * (splits + 1) or len(y) - n_pos < 4 * (splits + 1)):
        splits -= 1
    if kind == "tokens" and len(y) < TOKEN_MIN_ROWS:
        raise DataError(
            f"the tokens model needs at least {TOKEN_MIN_ROWS} labelled changes to train on "
            f"(here {len(y)})",
            hint="with model auto the other candidates still compete; else choose another "
            "kind (train.model, --model)",
        )
    scale = 0.0
    if kind == "anchored":
        scale, _ = select_anchor_scale(X, y, code_metrics, pfix=pfix)
    # the prior kind learns token weights from 100 changes on (as the tokens kind); with
    # fewer it is the prior with this repository's intercept
    prior_c = PRIOR_C if len(y) >= TOKEN_MIN_ROWS else 0.0
    est = build_estimator(
        kind,
        code_metrics,
        random_state=random_state,
        calibration_splits=max(splits, 2),
        anchor_scale_value=scale,
        pfix=pfix,
        prior=prior,
        prior_c=prior_c,
    )
    if kind == "poisson":
        target = np.asarray(n_fixes if n_fixes is not None else y, dtype=float)
        return est.fit(X, target)
    if kind == PRIOR_KIND:
        return est.fit(X, y)
    try:
        return est.fit(X, y)
    except ValueError:
        # A calibration split without both classes: fall back to shuffled-free 2-fold calibration
        # on the newest rows (still time-respecting).
        est.set_params(cv=TimeSeriesSplit(n_splits=2, test_size=max(len(y) // 3, 1)))
        try:
            return est.fit(X, y)
        except ValueError:
            raise TooLittleHistoryError(
                f"too few labelled changes to fit and calibrate a {kind} model "
                f"({n_pos} buggy, {len(y) - n_pos} clean, not spread over time)",
                hint="label more history, or use the bundled model",
            ) from None
