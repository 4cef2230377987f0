"""Capture at a review budget, the paired bootstrap against the baseline, the statement
it allows, and the per-commit predictions file (on a real built repository)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from diffrisk.cli import cli
from diffrisk.config import Config
from diffrisk.data.store import load_dataset
from diffrisk.labelling.label import load_labels
from diffrisk.mining.mine import mine
from diffrisk.model.registry import ModelRegistry
from diffrisk.training.evaluate import (
    PREDICTION_COLUMNS,
    _strata_draws,
    beats,
    bootstrap_auc,
    capture_at,
    capture_metrics,
    evaluate,
    paired_auc_difference,
    prepare_frame,
)
from diffrisk.training.train import train
from modelbuilder import build_history, write_labels

# -- capture at a review budget ------------------------------------------------------------

# 20 changes, scores 20 down to 1; labels in that (riskiest first) order: 4 buggy
RANKED_Y = [1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
RANKED_S = list(range(20, 0, -1))


def test_capture_hand_computed():
    # 5% of 20 = the riskiest 1 change: 1 of the 4 buggy; 10% = 2 changes: still 1;
    # 20% = 4 changes: 2 of 4
    assert capture_at(RANKED_Y, RANKED_S, 0.05) == pytest.approx(1 / 4)
    assert capture_at(RANKED_Y, RANKED_S, 0.10) == pytest.approx(1 / 4)
    assert capture_at(RANKED_Y, RANKED_S, 0.20) == pytest.approx(2 / 4)
    assert capture_metrics(RANKED_Y, RANKED_S) == pytest.approx(
        {"capture_at_5": 0.25, "capture_at_10": 0.25, "capture_at_20": 0.5}
    )
    # the order of the rows does not matter, only the scores
    perm = np.random.default_rng(0).permutation(20)
    y, s = np.array(RANKED_Y)[perm], np.array(RANKED_S)[perm]
    assert capture_at(y, s, 0.20) == pytest.approx(0.5)
    # no buggy change: undefined
    assert math.isnan(capture_at([0] * 20, RANKED_S, 0.05))


def test_capture_counts_a_tie_at_the_cut_by_its_share():
    # budget 10% of 20 = 2 changes: the top one (buggy), then one of three tied at 0.5
    # of which one is buggy: 1 + 1/3 caught of 2 buggy
    y = [1, 0, 1, 0] + [0] * 15 + [1]
    s = [0.9, 0.5, 0.5, 0.5] + [0.1] * 16
    assert capture_at(y, s, 0.10) == pytest.approx((1 + 1 / 3) / 3)
    # the tie moved to the front of the input changes nothing
    order = [2, 1, 3, 0, *range(4, 20)]
    assert capture_at(np.array(y)[order], np.array(s)[order], 0.10) == pytest.approx(
        (1 + 1 / 3) / 3
    )


def test_capture_budget_is_a_whole_number_of_changes():
    # 10% of 30 is 3 changes (not 4, as ceil(0.1 * 30 = 3.0000000000000004) would give)
    y = [0, 0, 0, 1] + [0] * 26
    s = list(range(30, 0, -1))
    assert capture_at(y, s, 0.10) == 0.0
    assert capture_at(y, s, 0.20) == 1.0  # 6 changes


# -- the paired bootstrap --------------------------------------------------------------------


def _binormal(n: int, shift: float, rng: np.random.Generator, y: np.ndarray) -> np.ndarray:
    """Scores with positives shifted by ``shift`` standard deviations: ROC-AUC
    Phi(shift / sqrt(2)) in the population."""
    return rng.normal(0, 1, n) + shift * y


def _folds(n: int, k: int = 4) -> np.ndarray:
    return np.repeat(np.arange(1, k + 1), math.ceil(n / k))[:n]


def test_resamples_keep_every_fold_at_its_size():
    strata = np.array([1] * 7 + [2] * 3 + [3] * 10)
    counts = _strata_draws(strata, 50, np.random.default_rng(1))
    assert counts.shape == (50, 20)
    for g, size in ((1, 7), (2, 3), (3, 10)):
        assert (counts[:, strata == g].sum(axis=1) == size).all()
    assert (counts[:, :7].sum(axis=0) > 0).all()  # every row of a fold can be drawn


def test_bootstrap_auc_is_the_auc_of_the_resampled_rows():
    rng = np.random.default_rng(2)
    y = (rng.random(300) < 0.3).astype(int)
    score = np.round(rng.random(300) + 0.3 * y, 1)  # many ties
    strata = _folds(300, 3)
    boot = bootstrap_auc(y, {"s": score}, strata, resamples=5, seed=7)["s"]
    counts = _strata_draws(strata, 5, np.random.default_rng(7))
    for b in range(5):
        rows = np.repeat(np.arange(300), counts[b])
        assert boot[b] == pytest.approx(roc_auc_score(y[rows], score[rows]), abs=1e-12)


def test_an_obviously_better_model_has_an_interval_above_zero_holding_the_true_difference():
    rng = np.random.default_rng(3)
    n = 2000
    y = (rng.random(n) < 0.2).astype(int)
    good = _binormal(n, 1.5, rng, y)  # population ROC-AUC Phi(1.5 / sqrt 2) = 0.856
    base = _binormal(n, 0.8, rng, y)  # 0.714
    true = norm.cdf(1.5 / math.sqrt(2)) - norm.cdf(0.8 / math.sqrt(2))
    c = paired_auc_difference(y, good, base, _folds(n))
    assert c["ci_low"] < true < c["ci_high"]
    assert c["ci_low"] > 0 and beats(c)
    assert c["difference"] == pytest.approx(roc_auc_score(y, good) - roc_auc_score(y, base))
    assert c["n"] == n and c["folds"] == 4 and c["resamples"] == 1000
    # the same call gives the same interval (fixed seed)
    assert paired_auc_difference(y, good, base, _folds(n)) == c
    # and backwards: the interval lies below 0
    rev = paired_auc_difference(y, base, good, _folds(n))
    assert rev["ci_high"] < 0 and not beats(rev)


def test_identical_and_equally_good_models_have_intervals_holding_zero():
    rng = np.random.default_rng(4)
    n = 1500
    y = (rng.random(n) < 0.2).astype(int)
    a = _binormal(n, 1.0, rng, y)
    same = paired_auc_difference(y, a, a.copy(), _folds(n))
    assert same["difference"] == 0 and same["ci_low"] == 0 and same["ci_high"] == 0
    assert not beats(same)
    # another model as good in the population (independent noise): the interval holds 0
    b = _binormal(n, 1.0, rng, y)
    eq = paired_auc_difference(y, a, b, _folds(n))
    assert eq["ci_low"] < 0 < eq["ci_high"] and not beats(eq)


def test_the_interval_covers_the_true_difference_about_95_percent_of_the_time():
    # 80 histories drawn from the same population, each its own interval
    rng = np.random.default_rng(5)
    true = norm.cdf(1.0 / math.sqrt(2)) - norm.cdf(0.6 / math.sqrt(2))
    n, hits, runs = 600, 0, 80
    for r in range(runs):
        y = (rng.random(n) < 0.25).astype(int)
        c = paired_auc_difference(
            y, _binormal(n, 1.0, rng, y), _binormal(n, 0.6, rng, y), _folds(n), seed=r
        )
        hits += c["ci_low"] <= true <= c["ci_high"]
    # binomial(80, 0.95): fewer than 70 hits has probability < 0.2%; an interval that
    # ignored the pairing or resampled too little would miss far more often
    assert hits >= 70, hits


def test_the_bootstrap_is_vectorised():
    rng = np.random.default_rng(6)
    n = 20_000
    y = (rng.random(n) < 0.2).astype(int)
    a, b = _binormal(n, 1.0, rng, y), _binormal(n, 0.9, rng, y)
    paired_auc_difference(y[:100], a[:100], b[:100], _folds(100))  # warm up
    t0 = time.perf_counter()
    paired_auc_difference(y, a, b, _folds(n, 5))
    # 1000 resamples of 20,000 commits: about 0.4 s here; one roc_auc_score per
    # resample would take ten times that
    assert time.perf_counter() - t0 < 4.0


# -- the statement and the choice ------------------------------------------------------------


def _frame(seed: int, oracle_noise: float | None = None) -> tuple[pd.DataFrame, Config]:
    """Daily changes whose labels have nothing to do with their size (the baseline ranks
    at chance); each buggy one fixed 30 days later."""
    rng = np.random.default_rng(seed)
    n = 600
    t0 = pd.Timestamp("2020-01-01", tz="UTC")
    shas = [f"{i:040x}" for i in range(n)]
    y = (rng.random(n) < 0.3).astype(int)
    y[-40:] = 0
    changes = pd.DataFrame(
        {
            "sha": shas, "author_time": [t0 + pd.Timedelta(days=i) for i in range(n)],
            "ns": 1, "nd": 1, "nf": rng.integers(1, 5, n), "entropy": rng.random(n),
            "la": rng.integers(1, 400, n), "ld": rng.integers(0, 50, n), "lt": rng.integers(0, 2000, n),
            "fix": 0, "ndev": rng.integers(0, 9, n), "age": rng.random(n) * 30, "nuc": rng.integers(0, 20, n),
            "exp": np.arange(n), "rexp": 1.0, "sexp": 1, "pfix": rng.integers(0, 10, n),
        }
    )  # fmt: skip
    labels = pd.DataFrame(
        {
            "sha": shas, "label": pd.array(y, dtype="Int8"),
            "label_state": np.where(y == 1, "buggy", "clean"),
            "fixed_by": [[shas[i + 30]] if b else [] for i, b in enumerate(y)],
            "days_to_fix": [30.0 if b else None for b in y], "n_fixes": y, "source_files": 1,
        }
    )  # fmt: skip
    frame = prepare_frame(changes, labels)
    return frame, Config.model_validate({"train": {"folds": 3, "gap_days": 30}})


class _Scores:
    """A fixed candidate (as the bundled model competes): scores looked up by sha."""

    def __init__(self, by_sha: dict[str, float]) -> None:
        self.by_sha = by_sha

    def predict_proba(self, rows: pd.DataFrame) -> np.ndarray:
        p = rows["sha"].map(self.by_sha).to_numpy(dtype=float)
        return np.column_stack([1 - p, p])


def test_the_statement_claims_to_beat_the_baseline_only_with_the_interval_above_zero():
    frame, cfg = _frame(7)
    rng = np.random.default_rng(8)
    y = frame["label"].astype(int).to_numpy()
    # a candidate that knows the labels through some noise: obviously better
    knows = _Scores(
        dict(
            zip(frame["sha"], 1 / (1 + np.exp(-(2.5 * y + rng.normal(0, 1, len(y))))), strict=True)
        )
    )
    ev = evaluate(frame, cfg, kinds=["la"], fixed={"knows": knows})
    c = ev.models["knows"]["vs_baseline"]
    assert ev.chosen == "knows" and ev.beats_baseline and c["ci_low"] > 0
    assert ev.statement.startswith("knows beats the baseline: knows vs lines added: ROC-AUC +")
    assert f"(95% CI {c['ci_low']:+.3f} to {c['ci_high']:+.3f}), pooled over " in ev.statement
    assert f"pooled over {ev.pooled_over['n']:,} test commits; mean over 3 folds" in ev.statement
    # a candidate that guesses: chosen or not, never said to beat the baseline
    guess = _Scores(dict(zip(frame["sha"], rng.random(len(y)), strict=True)))
    ev = evaluate(frame, cfg, kinds=["la"], fixed={"guess": guess})
    c = ev.models["guess"]["vs_baseline"]
    assert c["ci_low"] < 0 < c["ci_high"]
    assert not ev.beats_baseline and "beats the baseline" not in ev.statement
    if ev.chosen == "guess":
        assert "is not shown to rank better" in ev.statement
        assert "no candidate is better than the baseline beyond chance" in ev.statement
    else:
        assert ev.statement.startswith("no learned model ranks above the lines-added baseline")
        assert "best other: guess vs lines added" in ev.statement


def test_pooled_figures_weigh_every_commit_and_the_mean_every_fold():
    frame, cfg = _frame(9)
    ev = evaluate(frame, cfg, kinds=["la"])
    m = ev.models["la"]
    ys, ps, per_fold = [], [], []
    for f, p in zip(ev.folds, ev.predictions["la"], strict=True):
        y = frame["label"].astype(int).to_numpy()[f.test_idx]
        ys.append(y)
        ps.append(p)
        per_fold.append(roc_auc_score(y, p))
    assert m["overall"]["roc_auc"] == pytest.approx(np.mean(per_fold))
    assert m["pooled"]["roc_auc"] == pytest.approx(
        roc_auc_score(np.concatenate(ys), np.concatenate(ps))
    )
    assert m["pooled"]["capture_at_10"] == pytest.approx(
        capture_at(np.concatenate(ys), np.concatenate(ps), 0.10)
    )
    assert ev.pooled_over == {
        "n": sum(map(len, ys)),
        "n_buggy": int(sum(y.sum() for y in ys)),
        "folds": 3,
    }
    assert m.get("vs_baseline") is None  # the baseline is not compared with itself


# -- on a real repository: the predictions file and the trained model's metrics --------------


@pytest.fixture
def noisy_repo(builder, tmp_path):
    """build_history, with every fourth big change clean and every fifth small one buggy:
    lines added ranks well, not perfectly."""
    shas, big = build_history(builder)
    flags = [
        None if b is None else ((i % 4 != 0) if b else (i % 5 == 0)) for i, b in enumerate(big)
    ]
    data = tmp_path / "data"
    mine(builder.path, data, config=Config().mine.model_copy(update={"code_metrics": False}))
    write_labels(data, shas, flags)
    (builder.path / ".diffrisk.toml").write_text(
        "[train]\nmin_buggy = 5\nfolds = 2\ngap_days = 10\n"
    )
    return builder.path, data


def _evaluate_cli(repo: Path, data: Path, out: Path) -> dict:
    args = ["evaluate", "--repo", str(repo), "--data-dir", str(data), "--json"]
    args += ["--model", "logistic", "--predictions", str(out)]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_the_predictions_file_recomputes_every_figure(noisy_repo, tmp_path):
    repo, data = noisy_repo
    ev = _evaluate_cli(repo, data, tmp_path / "p.parquet")
    assert ev["predictions_file"] == str(tmp_path / "p.parquet")
    pq_df = pd.read_parquet(tmp_path / "p.parquet")
    ev_csv = _evaluate_cli(repo, data, tmp_path / "p.csv")
    csv_df = pd.read_csv(tmp_path / "p.csv", parse_dates=["author_time"])
    assert tuple(pq_df.columns) == PREDICTION_COLUMNS == tuple(csv_df.columns)
    # the same predictions either way, to the last bit
    pd.testing.assert_frame_equal(pq_df, csv_df, check_dtype=False)
    assert (pq_df["probability"].to_numpy() == csv_df["probability"].to_numpy()).all()
    assert ev_csv["models"] == ev["models"]
    assert str(pq_df["author_time"].dt.tz) == "UTC"
    assert set(pq_df["model"]) == {"logistic", "la"}
    # each row is a real change with its final label, effort (la + ld) and author time
    ds = load_dataset(data)
    changes = ds.changes.set_index("sha")
    labels = load_labels(data).set_index("sha")
    rows = pq_df.set_index("sha")
    assert (rows["label"] == labels.loc[rows.index, "label"].astype(int)).all()
    assert (rows["effort"] == changes.loc[rows.index, "la"] + changes.loc[rows.index, "ld"]).all()
    assert (
        rows["author_time"] == pd.to_datetime(changes.loc[rows.index, "author_time"], utc=True)
    ).all()
    # every figure of the JSON, recomputed from the file
    for kind, m in ev["models"].items():
        d = pq_df[pq_df["model"] == kind]
        assert len(d) == ev["pooled_over"]["n"] == m["pooled"]["n"]
        per_fold = [roc_auc_score(g["label"], g["probability"]) for _, g in d.groupby("fold")]
        assert m["overall"]["roc_auc"] == pytest.approx(np.mean(per_fold))
        assert m["pooled"]["roc_auc"] == pytest.approx(roc_auc_score(d["label"], d["probability"]))
        for b in (5, 10, 20):
            assert m["pooled"][f"capture_at_{b}"] == pytest.approx(
                capture_at(d["label"], d["probability"], b / 100)
            )
    cand, base = (pq_df[pq_df["model"] == k] for k in ("logistic", "la"))
    assert (cand["sha"].to_numpy() == base["sha"].to_numpy()).all()
    again = paired_auc_difference(
        cand["label"], cand["probability"], base["probability"], cand["fold"]
    )
    assert json.loads(json.dumps(again)) == ev["models"]["logistic"]["vs_baseline"]
    assert ev["bootstrap"] == {
        "metric": "roc_auc",
        "resamples": 1000,
        "seed": again["seed"],
        "confidence": 0.95,
        "stratified_by": "fold",
    }


def test_evaluate_prints_the_pooled_table(noisy_repo, tmp_path):
    from rich.console import Console

    from diffrisk.cli.train import render_evaluation

    repo, data = noisy_repo
    r = CliRunner().invoke(cli, ["evaluate", "--repo", str(repo), "--data-dir", str(data)])
    assert r.exit_code == 0, r.output
    assert "against the lines-added baseline" in " ".join(r.output.split())
    ev = _evaluate_cli(repo, data, tmp_path / "p.csv")
    con = Console(record=True, width=220)
    render_evaluation(ev, con)
    text = con.export_text()
    c = ev["models"]["logistic"]["vs_baseline"]
    la = ev["models"]["la"]["pooled"]
    n = ev["pooled_over"]["n"]
    assert f"against the lines-added baseline (pooled over {n:,} test commits" in text
    table = text[text.index("against the lines-added baseline") :].splitlines()
    rows = {ln.split()[1]: ln.replace("│", " ").split() for ln in table if ln.startswith("│")}
    assert rows["logistic"][-7:-3] == [
        f"{c['difference']:+.3f}",
        f"{c['ci_low']:+.3f}",
        "to",
        f"{c['ci_high']:+.3f}",
    ]
    assert "(baseline)" in rows["la"]
    assert rows["la"][-3:] == [f"{la[f'capture_at_{b}']:.3f}" for b in (5, 10, 20)]


def test_the_trained_model_records_pooled_capture_and_the_interval(noisy_repo):
    repo, data = noisy_repo
    cfg = Config.model_validate({"train": {"min_buggy": 5, "folds": 2, "gap_days": 10}})
    res = train(repo, data, cfg, model="logistic")
    assert res.status == "trained"
    m = ModelRegistry(data / "models").metadata(res.version)["metrics"]
    ev = res.evaluation
    assert m["pooled"] == ev["models"]["logistic"]["pooled"]
    assert m["baseline_pooled"] == ev["models"]["la"]["pooled"]
    assert {"capture_at_5", "capture_at_10", "capture_at_20"} <= set(m["pooled"])
    assert m["vs_baseline"] == ev["models"]["logistic"]["vs_baseline"]
    assert m["beats_baseline"] is (m["vs_baseline"]["ci_low"] > 0)
    assert m["pooled_over"] == ev["pooled_over"] and m["bootstrap"]["resamples"] == 1000
    # the keys recorded before are still there
    assert {"overall", "folds", "latest_fold", "baseline", "statement"} <= set(m)
