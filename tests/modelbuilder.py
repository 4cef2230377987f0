"""A real model for tests: diffrisk.training.train's calibrated logistic regression, fitted on
synthetic rows where big, spread-out changes by newcomers are the risky ones, then saved
and promoted through the registry (no fakes of our own code)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def install_model(
    data: Path,
    *,
    seed: int,
    n: int,
    max_ns: int,
    intercept: float,
    with_la_source: bool = False,
    all_features: bool = False,
) -> str:
    from diffrisk.data.paths import models_dir
    from diffrisk.model.estimators import fit_estimator
    from diffrisk.model.registry import ModelRegistry
    from diffrisk.model.transforms import raw_features

    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "la": rng.lognormal(3.0, 1.5, n).round(),
            "ld": rng.lognormal(2.0, 1.2, n).round(),
            "lt": rng.lognormal(5.0, 1.0, n).round(),
            "nf": rng.integers(1, 12, n),
            "ns": rng.integers(1, max_ns, n),
            "entropy": rng.random(n),
            "fix": rng.integers(0, 2, n),
            "ndev": rng.integers(0, 10, n),
            "age": rng.exponential(60, n),
            "nuc": rng.integers(0, 50, n),
            "exp": rng.integers(0, 300, n),
            "sexp": rng.integers(0, 100, n),
        }
    )
    if with_la_source:
        X["la_source"] = X["la"]
    z = 1.2 * np.log1p(X["la"] / X["lt"].clip(lower=1)) + 0.8 * np.log1p(X["nf"]) + 0.6 * X["ns"]
    z = z - 0.5 * np.log1p(X["exp"]) - 0.3 * np.log1p(X["sexp"]) + intercept
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    features = raw_features("logistic")
    if not all_features:
        features = [c for c in features if c in X]
    reg = ModelRegistry(models_dir(data))
    version = reg.save(
        fit_estimator("logistic", X, y),
        {"kind": "logistic", "features": features, "metrics": {"auc": 0.8}},
    )
    reg.promote(version)
    return version
