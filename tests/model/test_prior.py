"""The ``prior`` kind: the bundled (or any fitted) model's log-odds as an offset, this
repository's intercept and token weights on top; saved with skops, loaded back, explained."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from diffrisk.model.contributions import linear_contributions, model_reference, top_tokens
from diffrisk.model.estimators import (
    PRIOR_KIND,
    TOKEN_MIN_ROWS,
    PriorLogisticRegression,
    fit_estimator,
    prior_log_odds,
    prior_penalty,
    token_bag,
)
from diffrisk.model.registry import ModelRegistry, load_bundled, trusted_types
from diffrisk.model.transforms import raw_features
from modelbuilder import synthetic_changes


def _with_tokens(
    X: pd.DataFrame, seed: int, risky: str = "retry"
) -> tuple[pd.DataFrame, np.ndarray]:
    """``code_tokens`` for each row (common words, and ``risky`` in a third of them) and
    labels driven by lines added *and* by the risky token: what a model of sizes alone
    cannot see."""
    r = np.random.default_rng(seed)
    words = np.array(["self", "return", "if", "for", "value", "name", "data", "items"])
    has = r.random(len(X)) < 0.33
    X = X.copy()
    X["code_tokens"] = [
        " ".join(r.choice(words, 4, replace=False)) + (f" {risky}" if h else "") for h in has
    ]
    X["la_code"] = X["la_source"]
    X["la_control"] = (0.2 * X["la_source"]).round()
    logit = -3.2 + 0.5 * np.log1p(X["la_source"]) + 2.0 * has
    y = (r.random(len(X)) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def _size_prior(seed: int = 21) -> object:
    """A real fitted model of another history: more lines, more risk (no tokens)."""
    X, y = synthetic_changes(n=800, seed=seed)
    return fit_estimator("la", X, y)


def test_the_prior_is_kept_without_tokens_and_updated_by_them():
    prior = _size_prior()
    X, y = _with_tokens(synthetic_changes(n=1600, seed=5)[0], seed=6)
    train, test = slice(0, 1100), slice(1100, None)
    kept = PriorLogisticRegression(prior, None, class_weight=None).fit(X[train], y[train])
    # no features: the prior's log-odds and an intercept, its ranking exactly
    shift = kept.decision_function(X) - prior_log_odds(prior, X)
    assert np.ptp(shift) < 1e-9 and len(kept.coef_) == 0
    # the intercept is the repository's base rate: the mean probability follows it
    assert abs(kept.predict_proba(X[train])[:, 1].mean() - y[train].mean()) < 0.01
    assert abs(prior.predict_proba(X[train])[:, 1].mean() - y[train].mean()) > 0.05
    # ... unless the prior's base rate is kept: then it is the prior itself
    same = PriorLogisticRegression(prior, None, prior_base_rate=True).fit(X[train], y[train])
    np.testing.assert_allclose(same.decision_function(X), prior_log_odds(prior, X))
    moved = PriorLogisticRegression(prior, token_bag(), C=0.1, class_weight=None)
    moved.fit(X[train], y[train])
    # the prior's base rate kept: the same ranking, the token term centred on the
    # training rows (on average the prior's log-odds there)
    centred = clone(moved).set_params(prior_base_rate=True).fit(X[train], y[train])
    np.testing.assert_allclose(
        centred.decision_function(X) - moved.decision_function(X),
        centred.shift_ - moved.intercept_,
    )
    gap = centred.decision_function(X[train]) - prior_log_odds(prior, X[train])
    assert abs(gap.mean()) < 1e-9 and gap.std() > 0.1
    auc_prior = roc_auc_score(y[test], prior_log_odds(prior, X[test]))
    auc_moved = roc_auc_score(y[test], moved.decision_function(X[test]))
    assert auc_moved > auc_prior + 0.05, (auc_prior, auc_moved)
    names = moved.features_.named_steps["bag"].get_feature_names_out()
    assert names[np.argmax(moved.coef_)] == "retry"
    # the stronger the penalty (the smaller C), the closer to the prior's ranking
    rho = [
        spearmanr(
            PriorLogisticRegression(prior, token_bag(), C=c, class_weight=None)
            .fit(X[train], y[train])
            .decision_function(X),
            prior_log_odds(prior, X),
        ).statistic
        for c in (0.001, 0.01, 0.1, 1.0)
    ]
    assert rho == sorted(rho, reverse=True) and rho[0] > 0.99 and rho[-1] < 0.95, rho


def test_the_penalty_weighs_less_the_more_rows_there_are():
    """The loss sums over the rows: the same C moves the prior further on a longer history."""
    prior = _size_prior()
    X, y = _with_tokens(synthetic_changes(n=3000, seed=14)[0], seed=15)

    def weight(n: int) -> float:
        m = PriorLogisticRegression(prior, token_bag(), C=0.1, class_weight=None)
        m.fit(X.iloc[:n], y[:n])
        return float(m.coef_[m.features_.named_steps["bag"].vocabulary_["retry"]])

    assert 0 < weight(200) < weight(800) < weight(3000)


def test_it_is_a_plain_logistic_regression_when_the_prior_says_nothing():
    """A prior giving every row the same log-odds adds a constant: the fit is sklearn's
    L2 logistic regression on the same features."""
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    X, y = _with_tokens(synthetic_changes(n=900, seed=8)[0], seed=9)
    flat = DummyClassifier(strategy="prior").fit(X[["la"]], y)
    ours = PriorLogisticRegression(flat, token_bag(), C=0.5, class_weight=None).fit(X, y)
    Z = token_bag().fit_transform(X, y)
    plain = LogisticRegression(C=0.5, max_iter=5000, tol=1e-10).fit(Z, y)
    np.testing.assert_allclose(ours.coef_, plain.coef_[0], rtol=1e-3, atol=1e-4)
    balanced = PriorLogisticRegression(flat, token_bag(), C=0.5).fit(X, y)
    plain_b = LogisticRegression(C=0.5, class_weight="balanced", max_iter=5000, tol=1e-10)
    np.testing.assert_allclose(balanced.coef_, plain_b.fit(Z, y).coef_[0], rtol=1e-3, atol=1e-4)


def test_a_clone_shares_the_fitted_prior_and_fitting_leaves_it_alone():
    prior = _size_prior()
    X, y = _with_tokens(synthetic_changes(n=600, seed=2)[0], seed=3)
    before = prior.predict_proba(X)[:, 1]
    model = PriorLogisticRegression(prior, token_bag(), C=0.1)
    twin = clone(model)
    assert twin.prior is prior and twin.features is not model.features
    twin.fit(X, y)
    np.testing.assert_allclose(prior.predict_proba(X)[:, 1], before)
    with pytest.raises(ValueError, match="needs a fitted prior"):
        PriorLogisticRegression(None, token_bag()).fit(X, y)
    with pytest.raises(ValueError, match="labels 0 and 1"):
        PriorLogisticRegression(prior, token_bag()).fit(X, y + 1)


def test_the_prior_kind_starts_from_the_bundled_model_saves_loads_and_explains(tmp_path):
    X, y = _with_tokens(synthetic_changes(n=1200, seed=12)[0], seed=13)
    est = fit_estimator(PRIOR_KIND, X, y)  # no prior given: the bundled model's
    assert isinstance(est, PriorLogisticRegression) and prior_penalty(est) == 0.1
    assert est.prior_base_rate and est.class_weight is None
    np.testing.assert_allclose(
        prior_log_odds(est.prior, X), prior_log_odds(load_bundled().estimator, X)
    )
    # a short history: no token weights, the bundled model itself
    few = fit_estimator(PRIOR_KIND, X.iloc[: TOKEN_MIN_ROWS - 1], y[: TOKEN_MIN_ROWS - 1])
    assert prior_penalty(few) == 0.0 and len(few.coef_) == 0
    np.testing.assert_allclose(
        few.predict_proba(X)[:, 1], load_bundled().predict_proba(X), rtol=1e-6, atol=1e-9
    )
    # saved with skops (never pickle) and read back through the registry's allow-list
    assert "diffrisk.model.estimators.PriorLogisticRegression" in trusted_types()
    reg = ModelRegistry(tmp_path / "models")
    md = {
        "kind": PRIOR_KIND,
        "features": raw_features(PRIOR_KIND),
        "reference": model_reference(PRIOR_KIND, est, X),
    }
    v = reg.save(est, md)
    loaded = reg.load(v)
    p = est.predict_proba(X)[:, 1]
    np.testing.assert_allclose(loaded.predict_proba(X), p)
    # contributions add up to the log-odds up to one constant: the bundled model's
    # features, and the token block as one factor, relative to a typical training change
    c = loaded.contributions(X)
    assert list(c.columns) == raw_features(PRIOR_KIND)
    gap = np.log(p / (1 - p)) - c.sum(axis=1).to_numpy()
    assert np.ptp(gap) < 1e-6
    assert abs(c["code_tokens"].mean()) < 1e-9
    risky = c["code_tokens"][X["code_tokens"].str.contains("retry")]
    assert risky.mean() > c["code_tokens"].mean() + 0.1
    assert linear_contributions(loaded.estimator, X) is not None
    # the explanation names the tokens that weigh most
    row = X[X["code_tokens"].str.contains("retry")].iloc[:1]
    assert top_tokens(loaded.estimator, row)[0][0] == "retry"
    # the loaded copy still shares nothing with the bundled model it was fitted from
    assert loaded.estimator.prior is not load_bundled().estimator
