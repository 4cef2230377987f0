"""A real model for tests: diffrisk.training.train's calibrated logistic regression, fitted on
synthetic rows where big, spread-out changes by newcomers are the risky ones, then saved
and promoted through the registry (no fakes of our own code)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from diffrisk.data.store import atomic_write_table, read_meta


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


def synthetic_changes(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Time-ordered rows with the changes columns; defects driven by lines added and FIX."""
    r = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "sha": [f"{i:040x}" for i in range(n)],
            "author_time": pd.date_range("2020-01-01", periods=n, freq="D", tz="UTC"),
            "ns": r.integers(1, 4, n), "nd": r.integers(1, 5, n), "nf": r.integers(1, 10, n),
            "entropy": r.random(n), "la": r.integers(0, 500, n), "ld": r.integers(0, 200, n),
            "lt": r.integers(0, 3000, n), "fix": r.integers(0, 2, n), "ndev": r.integers(0, 20, n),
            "age": r.random(n) * 100, "nuc": r.integers(0, 50, n), "exp": r.integers(0, 300, n),
            "rexp": r.random(n) * 10, "sexp": r.integers(0, 100, n), "pfix": r.integers(0, 30, n),
            "cc_delta": np.where(r.random(n) < 0.3, np.nan, r.normal(0, 5, n)),
            "cc_max_touched": r.integers(0, 20, n).astype(float), "mi_before": r.random(n) * 100,
            "mi_after": r.random(n) * 100, "hv_delta": r.normal(0, 50, n),
        }
    )  # fmt: skip
    df["la_source"] = df["la"]
    logit = -3 + 1.2 * np.log1p(df["la"]) / 2 + 0.8 * df["fix"]
    y = (r.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df, y


def build_history(builder, n: int = 90):
    """Every 3rd change adds 60 lines to a source file and is blamed by the change two later."""
    shas, big = [], []
    for i in range(n):
        if i % 11 == 5:
            sha = builder.commit(
                {f"docs/page{i}.md": "text\n" * 40}, author="doc", day=i * 4, message=f"docs {i}"
            )
            big.append(None)
        elif i % 3 == 0:
            body = "".join(f"v{i}_{k} = {k}\n" for k in range(60))
            sha = builder.commit(
                {f"src/m{i % 5}.py": body},
                author=["ann", "bob"][i % 2],
                day=i * 4,
                message=f"feature {i}",
            )
            big.append(True)
        else:
            sha = builder.commit(
                {f"src/m{i % 5}.py": f"small_{i} = {i}\n"},
                author="cid",
                day=i * 4,
                message=f"tweak {i}",
            )
            big.append(False)
        shas.append(sha)
    return shas, big


def write_labels(data: Path, shas: list[str], big: list[bool | None]) -> None:
    """labels.parquet per the label contract: the big changes are fixed by the change 2 later."""
    n = len(shas)
    rows = []
    for i, (sha, b) in enumerate(zip(shas, big, strict=True)):
        young = i >= n - 3
        buggy = bool(b) and i + 2 < n
        state = "unlabelled" if young and not buggy else ("buggy" if buggy else "clean")
        rows.append(
            {
                "sha": sha,
                "label": None if state == "unlabelled" else int(buggy),
                "label_state": state,
                "fixed_by": [shas[i + 2]] if buggy else [],
                "days_to_fix": 8.0 if buggy else None,
                "n_fixes": int(buggy),
                "source_files": 0 if b is None else 1,
                "is_fix": 0,
            }
        )
    df = pd.DataFrame(rows)
    table = pa.Table.from_pandas(df, preserve_index=False).cast(
        pa.schema(
            [
                ("sha", pa.string()),
                ("label", pa.int8()),
                ("label_state", pa.string()),
                ("fixed_by", pa.list_(pa.string())),
                ("days_to_fix", pa.float64()),
                ("n_fixes", pa.int32()),
                ("source_files", pa.int32()),
                ("is_fix", pa.int8()),
            ]
        )
    )
    atomic_write_table(data / "labels.parquet", table, generation=read_meta(data)["generation"])
