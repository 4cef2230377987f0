"""Metrics against hand-computed values; folds respect time, the gap and realistic labels."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from diffrisk.config import Config
from diffrisk.errors import DataError
from diffrisk.model.estimators import fit_estimator
from diffrisk.model.registry import LoadedModel, load_bundled
from diffrisk.training.evaluate import (
    classification_metrics,
    effort_at_recall,
    eligible_mask,
    evaluate,
    ifa,
    labels_as_of,
    popt,
    prepare_frame,
    recall_at_effort,
    time_folds,
)

# y, score (no ties), effort: total effort 100; ranking order is 0, 1, 2, 3.
Y = [1, 0, 1, 0]
S = [0.9, 0.8, 0.7, 0.1]
E = [10, 30, 20, 40]


def test_recall_at_20_percent_effort():
    # cumulative effort 0.1, 0.4, ...: only the first change fits in 20%: 1 of 2 buggy.
    assert recall_at_effort(Y, S, E, 0.2) == pytest.approx(0.5)
    # 60% of the effort reaches both buggy changes.
    assert recall_at_effort(Y, S, E, 0.6) == pytest.approx(1.0)
    assert recall_at_effort(Y, S, E, 0.05) == 0.0


def test_effort_at_20_percent_recall():
    assert effort_at_recall(Y, S, E, 0.2) == pytest.approx(0.1)
    # 100% recall needs changes 0..2: 60 of 100 lines.
    assert effort_at_recall(Y, S, E, 1.0) == pytest.approx(0.6)


def test_popt_hand_computed():
    # model curve (0,0) (.1,.5) (.4,.5) (.6,1) (1,1): area .725
    # optimal: by density 0 (1/10), 2 (1/20), clean: (.1,.5) (.3,1) ...: area .875
    # worst: clean largest first 3, 1, then 2, 0: (.4,0) (.7,0) (.9,.5) (1,1): area .125
    assert popt(Y, S, E) == pytest.approx(1 - (0.875 - 0.725) / (0.875 - 0.125))
    # the optimal order itself scores 1, the worst 0
    assert popt(Y, [4, 1, 3, 2], E) == pytest.approx(1.0)
    assert popt(Y, [1, 3, 2, 4], E) == pytest.approx(0.0)


def test_ifa():
    assert ifa([0, 0, 1, 0], S) == 2
    assert ifa([1, 0, 0, 0], S) == 0
    assert math.isnan(ifa([0, 0, 0, 0], S))


def test_classification_metrics_hand_computed():
    m = classification_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert m["roc_auc"] == pytest.approx(0.75)  # 3 of 4 pairs ordered
    # threshold 0.5: tp=1 fp=0 fn=1 tn=2
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["mcc"] == pytest.approx(2 / math.sqrt(12))
    assert m["brier"] == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    # AP: ranks .8 (tp) .4 (fp) .35 (tp): (1 + 2/3) / 2
    assert m["pr_auc"] == pytest.approx((1 + 2 / 3) / 2)
    one = classification_metrics([0, 0], [0.2, 0.3])
    assert math.isnan(one["roc_auc"]) and math.isnan(one["mcc"])


def _frame(n: int = 400, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Daily changes; every 4th is buggy, fixed 30 days later by a change of the history."""
    r = np.random.default_rng(seed)
    t0 = pd.Timestamp("2020-01-01", tz="UTC")
    shas = [f"{i:040x}" for i in range(n)]
    la = r.integers(1, 400, n)
    changes = pd.DataFrame(
        {
            "sha": shas,
            "author_time": [t0 + pd.Timedelta(days=i) for i in range(n)],
            "ns": 1, "nd": 1, "nf": r.integers(1, 5, n), "entropy": r.random(n), "la": la,
            "ld": r.integers(0, 50, n), "lt": r.integers(0, 2000, n), "fix": 0, "ndev": r.integers(0, 9, n),
            "age": r.random(n) * 30, "nuc": r.integers(0, 20, n), "exp": np.arange(n), "rexp": 1.0, "sexp": 1, "pfix": r.integers(0, 10, n),
        }
    )  # fmt: skip
    buggy = (np.arange(n) % 4 == 0) & (np.arange(n) < n - 40)
    fixed_by = [[shas[i + 30]] if b else [] for i, b in enumerate(buggy)]
    state = np.where(buggy, "buggy", "clean").astype(object)
    state[-20:] = "unlabelled"  # the newest changes are too young
    source = np.ones(n, dtype=int)
    source[1::7] = 0  # docs-only changes: never labelable
    labels = pd.DataFrame(
        {
            "sha": shas,
            "label": pd.array(
                [None if s == "unlabelled" else int(s == "buggy") for s in state], dtype="Int8"
            ),
            "label_state": state,
            "fixed_by": fixed_by,
            "days_to_fix": [30.0 if b else None for b in buggy],
            "n_fixes": buggy.astype(int),
            "source_files": source,
            "is_fix": 0,
        }
    )
    return changes, labels


def test_folds_never_train_on_rows_newer_than_test_minus_gap():
    changes, labels = _frame()
    frame = prepare_frame(changes, labels)
    gap = 45
    folds = time_folds(frame, 4, gap, min_buggy=2)
    assert len(folds) == 4
    times = frame["author_time"]
    elig = eligible_mask(frame)
    for f in folds:
        assert len(f.train_idx) and len(f.test_idx)
        assert times.iloc[f.train_idx].max() + pd.Timedelta(days=gap) < times.iloc[f.test_idx].min()
        # only labelled rows with source files, in both sets
        assert elig[f.train_idx].all() and elig[f.test_idx].all()
    # test periods follow each other without overlap
    for a, b in itertools.pairwise(folds):
        assert times.iloc[a.test_idx].max() < times.iloc[b.test_idx].min()
    excluded = frame.index[(frame["label_state"] == "unlabelled") | (frame["source_files"] == 0)]
    used = np.concatenate([np.concatenate([f.train_idx, f.test_idx]) for f in folds])
    assert not set(excluded) & set(used)


def test_training_labels_only_know_fixes_committed_before_the_test_period():
    changes, labels = _frame()
    frame = prepare_frame(changes, labels)
    day = frame["author_time"].iloc[0]
    # change 0 is buggy, fixed by change 30 (day 30)
    y, counts = labels_as_of(frame.iloc[[0]], day + pd.Timedelta(days=30))
    assert y[0] == 0 and counts[0] == 0  # the fix is not strictly before day 30
    y, counts = labels_as_of(frame.iloc[[0]], day + pd.Timedelta(days=31))
    assert y[0] == 1 and counts[0] == 1
    folds = time_folds(frame, 4, 10, min_buggy=2)
    for f in folds:
        test_start = pd.Timestamp(f.test_start)
        fix_time = frame["first_fix_time"].iloc[f.train_idx]
        known = fix_time.notna() & (fix_time < test_start)
        assert (f.train_y == known.astype(int).to_numpy()).all()
        # some training rows are buggy in the end but not yet known to be
        final = frame["label"].iloc[f.train_idx].astype(int).to_numpy()
        assert (f.train_y <= final).all()
    assert any(
        (frame["label"].iloc[f.train_idx].astype(int).to_numpy() > f.train_y).any() for f in folds
    )


def test_a_fold_whose_test_rows_hold_too_few_bugs_is_skipped():
    changes, labels = _frame()
    # the newest labelled changes: only two of them stay buggy
    late = labels.index[(labels["label_state"] == "buggy") & (labels.index >= 300)]
    labels.loc[late[2:], ["label", "label_state", "n_fixes"]] = [0, "clean", 0]
    frame = prepare_frame(changes, labels)
    folds = time_folds(frame, 4, 10, min_buggy=5)
    last = folds[-1]
    assert last.n_test_buggy < 5 and last.skipped and "need 5 each" in last.skipped
    assert all(f.skipped is None for f in folds[:-1])


def test_too_few_rows_is_a_data_error():
    changes, labels = _frame(n=30)
    frame = prepare_frame(changes, labels)
    frame["label_state"] = "unlabelled"
    with pytest.raises(DataError, match="labelled changes"):
        time_folds(frame, 5, 0)


def _size_predictive() -> tuple[pd.DataFrame, Config]:
    """A prepared frame where the buggy changes are the large ones, and 3 folds."""
    changes, labels = _frame(n=500, seed=3)
    buggy = labels["label_state"].eq("buggy")
    changes.loc[buggy, "la"] = changes.loc[buggy, "la"] + 300
    return prepare_frame(changes, labels), Config.model_validate(
        {"train": {"folds": 3, "gap_days": 30}}
    )


def test_evaluate_reports_every_metric_and_the_baseline():
    frame, cfg = _size_predictive()
    ev = evaluate(frame, cfg, kinds=["logistic", "la"])
    d = json.loads(json.dumps(ev.to_dict()))
    assert d["baseline"] == "la" and d["chosen"] in {"logistic", "la"}
    for kind in ("logistic", "la"):
        o = d["models"][kind]["overall"]
        for key in ("roc_auc", "pr_auc", "f1", "mcc", "brier", "recall_at_20_effort", "effort_at_20_recall",
                    "popt", "ifa", "density_recall_at_20_effort", "density_popt"):  # fmt: skip
            assert key in o
        assert o["roc_auc"] > 0.8  # size separates the classes
    assert "recall_at_20_effort" in d["unsupervised_effort"]["overall"]
    # the claim is made only when the paired interval lies above 0
    claims = "beats the baseline" in d["statement"]
    assert claims == bool(d["beats_baseline"])
    if d["chosen"] == "logistic":
        assert claims == (d["models"]["logistic"]["vs_baseline"]["ci_low"] > 0)
    assert "95% CI" in d["statement"] and "pooled over" in d["statement"]
    assert len(d["folds"]) == 3


def test_fixed_candidates_are_scored_without_refitting():
    frame, cfg = _size_predictive()
    # a real model fitted on another history, where small changes were the buggy ones
    other_changes, other_labels = _frame(n=300, seed=9)
    other = prepare_frame(other_changes, other_labels)
    flipped = (other["la"] < other["la"].median()).astype(int).to_numpy()
    wrong = fit_estimator("la", other, flipped)
    ev = evaluate(frame, cfg, kinds=["la"], fixed={"elsewhere": wrong})
    assert list(ev.models) == ["la", "elsewhere"]
    for f, p in zip(ev.folds, ev.predictions["elsewhere"], strict=True):
        if f.skipped:
            continue
        test = frame.iloc[f.test_idx]
        np.testing.assert_allclose(p, wrong.predict_proba(test)[:, 1])  # not refitted
        y = test["label"].astype(int).to_numpy()
        fm = ev.models["elsewhere"]["folds"][f.index - 1]
        assert fm["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert ev.models["elsewhere"]["overall"]["roc_auc"] < 0.2  # it ranks backwards
    assert ev.chosen == "la"
    # a fixed model that cannot score the rows is only a candidate fewer
    good = load_bundled()
    broken = LoadedModel(
        good.version, {**good.metadata, "features": ["no_such_column"]}, good.estimator
    )
    ev = evaluate(frame, cfg, kinds=["la"], fixed={"broken": broken})
    assert list(ev.models) == ["la"]
    with pytest.raises(ValueError, match="clash"):
        evaluate(frame, cfg, kinds=["la"], fixed={"la": wrong})


def test_the_prior_kind_starts_from_the_given_model_and_never_from_one_that_saw_the_repository():
    frame, cfg = _size_predictive()
    # a real model of another history where small changes were the buggy ones: the prior
    # kind starts from it (C = 0 would keep its backward ranking) and this history's
    # tokens cannot turn it round, so it ranks below the baseline
    other_changes, other_labels = _frame(n=300, seed=9)
    other = prepare_frame(other_changes, other_labels)
    wrong = fit_estimator("la", other, (other["la"] < other["la"].median()).astype(int))
    ev = evaluate(frame, cfg, kinds=["prior", "la"], prior=wrong)
    scored = [p for p in ev.predictions["prior"] if p is not None]
    assert scored and ev.models["prior"]["overall"]["roc_auc"] < 0.3
    # token weights from 100 training changes on; before, the prior and an intercept
    assert ev.models["prior"]["prior_penalties"] == [
        0.1 if f.n_train >= 100 else 0.0 for f in ev.folds if not f.skipped
    ]
    assert 0.0 in ev.models["prior"]["prior_penalties"]
    for f, p in zip(ev.folds, ev.predictions["prior"], strict=True):
        if p is not None:  # fitted on the fold's rows: a prior model, not the prior itself
            assert not np.allclose(p, wrong.predict_proba(frame.iloc[f.test_idx])[:, 1])
    # by default the bundled model, unless the history holds one of its training
    # projects' commits: then the prior kind is left out, the others compete
    ev = evaluate(frame, cfg, kinds=["prior", "la"])
    assert ev.models["prior"]["overall"]["folds"] == len(scored)
    seen = next(iter(load_bundled().metadata["projects"].values()))["first_sha"]
    own = frame.assign(sha=frame["sha"].where(frame.index != 0, seen))
    ev = evaluate(own, cfg, kinds=["prior", "la"])
    assert all(p is None for p in ev.predictions["prior"]) and ev.chosen == "la"
    assert ev.models["prior"]["prior_penalties"] == [None] * len(scored)
