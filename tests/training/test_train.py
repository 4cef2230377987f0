"""Pipelines, the source lines-added baseline input, and the train stage on a built repository."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from diffrisk.cli import cli
from diffrisk.config import Config, LabelConfig
from diffrisk.errors import DataError
from diffrisk.features.source import source_lines_added
from diffrisk.mining.mine import mine
from diffrisk.model.estimators import (
    KINDS,
    PoissonRiskClassifier,
    TimeCalibratedClassifier,
    anchor_scale,
    build_estimator,
    fit_estimator,
    select_anchor_scale,
)
from diffrisk.model.registry import ModelRegistry, load_bundled, load_model
from diffrisk.model.transforms import kamei_transform, raw_features, shrink_extras
from diffrisk.training.train import bundled_candidates, load_training_frame, train
from modelbuilder import build_history, synthetic_changes, write_labels


def test_kamei_transform_normalises_and_drops_collinear_columns():
    X = pd.DataFrame(
        {"ns": [1, 2], "nd": [9, 9], "nf": [2, 4], "entropy": [0.5, 0.0], "la": [10, 7], "ld": [5, 0],
         "lt": [100, 0], "fix": [1, 0], "ndev": [3, 0], "age": [2.0, 0.0], "nuc": [4, 0], "exp": [9, 0],
         "rexp": [1.5, 0.0], "sexp": [1, 0], "pfix": [6, 0], "la_source": [8, 3], "la_code": [5, np.nan],
         "la_control": [2, np.nan]}
    )  # fmt: skip
    out = kamei_transform(X, pfix=True, code_lines=True, control_lines=True)
    assert "nd" not in out.columns and "rexp" not in out.columns
    assert out.loc[0, "la"] == pytest.approx(np.log1p(10 / 100))  # LA / LT
    assert out.loc[0, "ld"] == pytest.approx(np.log1p(5 / 100))
    assert out.loc[0, "lt"] == pytest.approx(np.log1p(100 / 2))  # LT / NF
    assert out.loc[0, "nuc"] == pytest.approx(np.log1p(4 / 2))  # NUC / NF
    assert out.loc[0, "la_source"] == pytest.approx(np.log1p(8))
    assert out.loc[0, "pfix"] == pytest.approx(np.log1p(6))
    assert "pfix" not in kamei_transform(X).columns  # models saved before PFIX keep their columns
    assert out.loc[0, "la_code"] == pytest.approx(np.log1p(5))
    assert out.loc[1, "la_code"] == pytest.approx(np.log1p(3))  # unknown: all source lines count
    assert "la_code" not in kamei_transform(X, pfix=True).columns
    assert out.loc[0, "la_control"] == pytest.approx(np.log1p(2))
    assert out.loc[1, "la_control"] == pytest.approx(np.log1p(0.22 * 3))  # unknown: a share
    assert "la_control" not in kamei_transform(X, pfix=True, code_lines=True).columns
    assert out.loc[1, "la"] == pytest.approx(np.log1p(7))  # new files: LT = 0 -> divide by 1
    assert list(out.columns) == raw_features("logistic")
    assert np.isfinite(out.to_numpy()).all()
    with_cm = kamei_transform(X.assign(cc_delta=[np.nan, -3.0], cc_max_touched=[np.nan, 2], mi_before=np.nan,
                                       mi_after=np.nan, hv_delta=[np.nan, 10.0]), code_metrics=True, pfix=True)  # fmt: skip
    assert np.isnan(with_cm.loc[0, "cc_delta"]) and with_cm.loc[1, "cc_delta"] == pytest.approx(
        -np.log1p(3)
    )


def test_source_lines_added_counts_only_source_files():
    files = pd.DataFrame(
        {
            "sha": ["a", "a", "a", "a", "a", "b"],
            "path": [
                "src/m.py",
                "tests/test_m.py",
                "docs/index.md",
                "src/logo.png",
                "pkg/tests/x.py",
                "README.rst",
            ],
            "la": [5, 7, 3, 0, 11, 4],
            "binary": [False, False, False, True, False, False],
        }
    )
    s = source_lines_added(files, LabelConfig())
    assert s["a"] == 5 and s["b"] == 0


def test_poisson_probability_is_one_minus_exp_minus_mu():
    X = np.array([[0.0], [1.0], [2.0], [3.0]] * 10)
    counts = np.array([0, 0, 1, 3] * 10)
    clf = PoissonRiskClassifier(alpha=0.0).fit(X, counts)
    mu = clf.regressor_.predict(X[:4])
    np.testing.assert_allclose(clf.predict_proba(X[:4])[:, 1], 1 - np.exp(-mu))
    assert clf.predict_proba(X[:4])[:, 1][3] > clf.predict_proba(X[:4])[:, 1][0]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_fits_and_ranks_large_changes_higher(kind):
    X, y = synthetic_changes()
    est = fit_estimator(kind, X, y, y, code_metrics=kind == "hgb")
    p = est.predict_proba(X)[:, 1]
    assert p.shape == (len(X),) and ((p >= 0) & (p <= 1)).all()
    big = X["la"] > 300
    assert p[big].mean() > p[X["la"] < 30].mean()


def test_calibrated_models_rank_with_every_row_and_calibrate_out_of_time():
    from sklearn.base import clone
    from sklearn.calibration import _SigmoidCalibration
    from sklearn.model_selection import TimeSeriesSplit

    X, y = synthetic_changes(n=800, seed=11)
    est = fit_estimator("logistic", X, y)
    assert isinstance(est, TimeCalibratedClassifier)
    # the ranking is the pipeline fitted on all rows, the newest included
    whole = clone(est.estimator).fit(X, y)
    np.testing.assert_allclose(est.decision_function(X), whole.decision_function(X))
    # the sigmoid: fitted on what copies fitted on older rows said of the next block
    scores, targets = [], []
    for tr, te in TimeSeriesSplit(n_splits=3).split(X):
        scores.append(clone(est.estimator).fit(X.iloc[tr], y[tr]).decision_function(X.iloc[te]))
        targets.append(y[te])
    platt = _SigmoidCalibration().fit(np.concatenate(scores), np.concatenate(targets))
    assert (est.calibrator_.a_, est.calibrator_.b_) == pytest.approx((platt.a_, platt.b_))
    p = est.predict_proba(X)[:, 1]
    # balanced class weights put the raw model's mean near 0.5; calibrated, the mean is
    # near the share of defect-inducing rows
    assert whole.predict_proba(X)[:, 1].mean() > 0.4
    assert abs(p.mean() - y.mean()) < 0.05
    # labels of the newest quarter alone change the ranking (an average of copies fitted
    # on older blocks never sees them)
    y2 = y.copy()
    y2[-200:] = 1 - y2[-200:]
    moved = fit_estimator("logistic", X, y2).decision_function(X)
    assert not np.allclose(moved, est.decision_function(X))


def test_a_model_that_ranked_backwards_out_of_time_keeps_its_order() -> None:
    """Platt's slope fitted on out-of-time scores that ranked the wrong way would invert
    the model; it is kept positive and tiny instead (probabilities at the base rate)."""
    X, _ = synthetic_changes(n=600, seed=13)
    z = np.log1p(X["la_source"].to_numpy(dtype=float))
    z = (z - z.mean()) / z.std()
    # large changes were the risky ones in the first block, the safe ones later
    logit = np.where(np.arange(600) < 200, 2 * z, -2 * z) - 1
    y = (np.random.default_rng(1).random(600) < 1 / (1 + np.exp(-logit))).astype(int)
    est = build_estimator("la", calibration_splits=2).fit(X, y)
    p = est.predict_proba(X)[:, 1]
    assert np.all(np.diff(p[np.argsort(est.decision_function(X))]) >= 0)
    assert p.max() - p.min() < 0.01 and abs(p.mean() - y[200:].mean()) < 0.01


def test_models_saved_with_calibration_members_still_explain(tmp_path: Path) -> None:
    """Models saved before TimeCalibratedClassifier: a CalibratedClassifierCV averaging
    members fitted on older blocks still loads, scores and explains."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import TimeSeriesSplit

    from diffrisk.model.contributions import linear_contributions
    from diffrisk.model.estimators import calibrated_members

    X, y = synthetic_changes(n=600, seed=12)
    pipe = build_estimator("anchored", anchor_scale_value=0.3).estimator
    old = CalibratedClassifierCV(
        pipe, method="sigmoid", cv=TimeSeriesSplit(n_splits=3), ensemble=True
    ).fit(X, y)
    members = calibrated_members(old)
    assert len(members) == 3 and all(slope > 0 for _, slope in members)
    assert anchor_scale(old) == 0.3
    c = linear_contributions(old, X)
    assert c is not None and c["la_source"].corr(np.log1p(X["la_source"])) > 0.99
    reg = ModelRegistry(tmp_path / "models")
    v = reg.save(old, {"kind": "anchored", "features": raw_features("anchored")})
    np.testing.assert_allclose(reg.load(v).predict_proba(X), old.predict_proba(X)[:, 1])
    # a file written by diffrisk before the change (same synthetic rows, seed 4)
    import shutil

    saved = Path(__file__).resolve().parents[1] / "fixtures" / "model-calibration-ensemble"
    version = json.loads((saved / "metadata.json").read_text())["version"]
    shutil.copytree(saved, reg.root / version)
    loaded = reg.load(version)
    assert len(calibrated_members(loaded.estimator)) == 3
    assert anchor_scale(loaded.estimator) in (0.0, 0.1, 0.3, 1.0)
    X4, _ = synthetic_changes(n=600, seed=4)
    p = loaded.predict_proba(X4)
    assert ((p > 0) & (p < 1)).all() and np.corrcoef(p, np.log1p(X4["la_source"]))[0, 1] > 0.5
    contrib = loaded.contributions(X4)
    assert np.isfinite(contrib.to_numpy()).all() and list(contrib.columns) == loaded.features
    assert contrib["la_source"].corr(np.log1p(X4["la_source"])) > 0.99


def test_calibration_stays_increasing_and_finite_on_degenerate_rows() -> None:
    X, y = synthetic_changes(n=600, seed=2)
    # lines added constant in the older blocks: the copies' scores are flat; the final
    # model's probabilities must stay near the base rate, not jump to 0 and 1
    X.loc[:449, "la_source"] = 5
    est = build_estimator("la").fit(X, y)
    p = est.predict_proba(X)[:, 1]
    assert p.max() - p.min() < 0.01 and abs(p.mean() - y[150:].mean()) < 0.01
    assert np.all(np.diff(p[np.argsort(est.decision_function(X))]) >= 0)
    with pytest.raises(ValueError, match="labels 0 and 1"):
        build_estimator("la").fit(X, y + 1)
    # every defect in the oldest rows: nothing later to calibrate on, said plainly
    y_old = np.zeros(len(X), dtype=int)
    y_old[:40] = 1
    with pytest.raises(DataError, match="not spread over time"):
        fit_estimator("logistic", X, y_old)


def test_shrink_extras_scales_every_column_but_the_anchor():
    Z = np.array([[1.0, 2.0, -4.0], [3.0, -1.0, 0.5]])
    out = shrink_extras(Z, scale=0.5, anchor=1)
    np.testing.assert_allclose(out, [[0.5, 2.0, -2.0], [1.5, -1.0, 0.25]])
    np.testing.assert_allclose(Z[0], [1.0, 2.0, -4.0])  # input untouched
    assert (shrink_extras(Z, scale=0.0, anchor=0)[:, 1:] == 0).all()


def test_anchored_selection_keeps_the_baseline_for_noise_and_uses_real_signal():
    X, _ = synthetic_changes(n=1500, seed=3)
    r = np.random.default_rng(7)
    la_only = -2.5 + 0.6 * np.log1p(X["la_source"])
    y_noise = (r.random(len(X)) < 1 / (1 + np.exp(-la_only))).astype(int)
    scale, scores = select_anchor_scale(X, y_noise)
    assert scale == 0.0 and set(scores) == {0.0, 0.1, 0.3, 1.0}
    # defects driven mostly by prior fixes on the touched files: the extras must be used
    with_pfix = la_only - 3.0 + 1.5 * np.log1p(X["pfix"])
    y_pfix = (r.random(len(X)) < 1 / (1 + np.exp(-with_pfix))).astype(int)
    scale, scores = select_anchor_scale(X, y_pfix)
    assert scale > 0.0 and scores[scale] > scores[0.0] + 0.02
    est = fit_estimator("anchored", X, y_pfix)
    assert anchor_scale(est) == scale
    assert anchor_scale(fit_estimator("la", X, y_pfix)) is None


def test_anchored_with_factor_zero_ranks_like_the_baseline():
    from scipy.stats import spearmanr

    X, y = synthetic_changes(n=800, seed=5)
    anchored = build_estimator("anchored", anchor_scale_value=0.0).fit(X, y)
    assert anchor_scale(anchored) == 0.0
    la = build_estimator("la").fit(X, y)
    p = anchored.predict_proba(X)[:, 1]
    assert spearmanr(p, la.predict_proba(X)[:, 1]).statistic == pytest.approx(1.0)
    full = build_estimator("anchored", anchor_scale_value=1.0).fit(X, y).predict_proba(X)[:, 1]
    assert spearmanr(p, full).statistic < 0.999  # with the extras the ranking does change


# -- the stage on a built repository ---------------------------------------------------------


@pytest.fixture
def labelled_repo(builder, tmp_path):
    shas, big = build_history(builder)
    data = tmp_path / "data"
    mine(builder.path, data, config=Config().mine.model_copy(update={"code_metrics": False}))
    write_labels(data, shas, big)
    return builder.path, data


CFG = Config.model_validate({"train": {"min_buggy": 5, "folds": 2, "gap_days": 10}})


def test_train_saves_promotes_and_the_model_scores_big_changes_higher(labelled_repo):
    repo, data = labelled_repo
    res = train(repo, data, CFG)
    assert res.status == "trained" and res.promoted and res.version
    # big changes: i = 0, 3, ..., 87 (30) minus the two docs slots 27 and 60 (i % 11 == 5)
    assert res.n_buggy == 28
    reg = ModelRegistry(data / "models")
    assert reg.current() == res.version
    md = reg.metadata(res.version)
    assert md["kind"] == res.kind and md["features"]
    assert md["training_window"]["first_sha"] and md["training_window"]["last_date"]
    assert set(md["libraries"]) >= {"sklearn", "skops", "numpy", "diffrisk"}
    assert "roc_auc" in md["metrics"]["overall"] and md["repository_head"]
    assert (
        (data / "models" / res.version / "MODEL_CARD.md").read_text().startswith("# diffrisk model")
    )
    model = load_model(data)
    assert model.source == "repository" and model.version == res.version
    rows = pd.DataFrame([{**dict.fromkeys(["ns", "nd", "nf", "ndev", "nuc", "exp", "sexp", "pfix"], 1), "entropy": 0.0,
                          "la": la, "ld": 0, "lt": 100, "fix": 0, "age": 1.0, "rexp": 1.0, "la_source": la}
                         for la in (1, 60)])  # fmt: skip
    p = model.predict_proba(rows)
    assert p[1] > p[0]


def test_second_model_is_champion_challenger_unless_forced(labelled_repo):
    repo, data = labelled_repo
    first = train(repo, data, CFG, model="la")
    # the same history, settings and kind again: nothing new to learn, no new version
    again = train(repo, data, CFG, model="la")
    reg = ModelRegistry(data / "models")
    assert again.status == "unchanged" and again.version == first.version
    assert "no new version saved" in again.message and reg.versions() == [first.version]
    # a setting that does not change the model still makes a new run: the same kind on
    # the same data is equally good, so the challenger (>=) becomes current
    other = CFG.model_copy(update={"train": CFG.train.model_copy(update={"max_age_days": 7})})
    second = train(repo, data, other, model="la")
    assert second.status == "trained" and second.promoted and reg.current() == second.version
    assert "challenger ROC-AUC" in second.promotion
    assert reg.rollback() == first.version and reg.current() == first.version
    forced = train(repo, data, CFG, model="poisson", force=True)
    assert forced.promoted and "forced" in forced.promotion
    anchored = train(repo, data, CFG, model="anchored", force=True)
    assert reg.metadata(anchored.version)["anchor_scale"] in (0.0, 0.1, 0.3, 1.0)
    assert load_model(data).kind == "anchored"


def test_unchanged_history_is_not_retrained_unless_labels_or_the_model_file_changed(
    labelled_repo,
):
    repo, data = labelled_repo
    first = train(repo, data, CFG, model="la")
    assert train(repo, data, CFG, model="la").status == "unchanged"
    # one buggy and one clean label swapped: the same counts, another history
    table = pq.read_table(data / "labels.parquet")  # its metadata names the dataset
    lab = table.to_pandas()
    buggy = lab.index[lab["label_state"] == "buggy"][0]
    clean = lab.index[(lab["label_state"] == "clean") & (lab["source_files"] > 0)][0]
    for col in ("label", "label_state", "fixed_by", "days_to_fix", "n_fixes"):
        lab.loc[[buggy, clean], col] = lab.loc[[clean, buggy], col].to_numpy()
    pq.write_table(
        pa.Table.from_pandas(lab, schema=table.schema, preserve_index=False),
        data / "labels.parquet",
    )
    swapped = train(repo, data, CFG, model="la")
    assert swapped.status == "trained" and swapped.version != first.version
    assert train(repo, data, CFG, model="la").status == "unchanged"
    # a damaged current model file is replaced, not kept
    reg = ModelRegistry(data / "models")
    (data / "models" / reg.current() / "model.skops").write_bytes(b"garbage")
    repaired = train(repo, data, CFG, model="la", force=False)
    assert repaired.status == "trained"
    assert repaired.promoted and load_model(data).version == repaired.version


def test_too_few_buggy_changes_falls_back_to_the_bundled_model(labelled_repo):
    repo, data = labelled_repo
    cfg = Config.model_validate({"train": {"min_buggy": 1000}})
    res = train(repo, data, cfg)
    assert res.status == "fallback" and "bundled" in res.message and res.version is None
    assert not (data / "models").exists()


def test_cli_train_and_evaluate_json(labelled_repo, tmp_path):
    repo, data = labelled_repo
    (Path(repo) / ".diffrisk.toml").write_text("[train]\nmin_buggy = 5\nfolds = 2\ngap_days = 10\n")
    runner = CliRunner()
    r = runner.invoke(cli, ["evaluate", "--repo", str(repo), "--data-dir", str(data), "--json"])
    assert r.exit_code == 0, r.output
    ev = json.loads(r.output)
    # the learned kinds, and the bundled cross-project model as a candidate that is not refitted
    assert set(ev["models"]) == {*KINDS, "bundled"} and len(ev["folds"]) == 2
    # fold bounds in whole seconds, as the author times are
    assert all("." not in f["test_end"] and "." not in f["test_start"] for f in ev["folds"])
    assert not (data / "models").exists()  # evaluate saves nothing
    r = runner.invoke(
        cli,
        ["train", "--repo", str(repo), "--data-dir", str(data), "--model", "logistic", "--json"],
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["status"] == "trained" and out["kind"] == "logistic"
    r = runner.invoke(cli, ["train", "--repo", str(repo), "--data-dir", str(data)])
    assert r.exit_code == 0 and "time-ordered evaluation" in r.output


def test_bundled_model_is_chosen_when_the_history_misleads(builder, tmp_path):
    # In the first third of the history the small tweaks are the buggy ones, later the big
    # features: models fitted on the past learn the wrong direction, the bundled
    # cross-project model (more lines, more risk) does not.
    shas, big = build_history(builder)
    n = len(shas)
    flags = [None if b is None else (b if i >= n // 3 else not b) for i, b in enumerate(big)]
    data = tmp_path / "data"
    mine(builder.path, data, config=Config().mine.model_copy(update={"code_metrics": False}))
    write_labels(data, shas, flags)
    res = train(builder.path, data, CFG)
    ev = res.evaluation
    auc = {k: m["overall"]["roc_auc"] for k, m in ev["models"].items() if m["overall"]}
    assert res.kind == "bundled" and ev["chosen"] == "bundled", auc
    # the prior model starts from it and, finding nothing in this history to trust,
    # keeps its ranking: a tie, which the bundled model (not refitted) wins
    assert auc["bundled"] > max(v for k, v in auc.items() if k not in ("bundled", "prior"))
    assert auc["prior"] <= auc["bundled"]
    assert ev["models"]["prior"]["prior_penalties"] == [0.0] * len(ev["models"]["prior"]["folds"])
    model = load_model(data)
    assert model.source == "bundled-chosen" and model.version == res.version
    md = model.metadata
    assert md["origin"]["bundled"] == load_bundled().version
    assert md["metrics"]["overall"]["roc_auc"] == pytest.approx(auc["bundled"])
    card = (data / "models" / res.version / "MODEL_CARD.md").read_text()
    assert "not trained on this repository" in card and md["origin"]["bundled"] in card
    assert "? ()" not in card  # the bundled model's own training window
    # the copy predicts exactly as the bundled model does
    frame, _ = load_training_frame(data, CFG)
    np.testing.assert_allclose(model.predict_proba(frame), load_bundled().predict_proba(frame))
    assert res.version.endswith("-bundled") and "training_window" not in md
    r = CliRunner().invoke(
        cli, ["models", "list", "--data-dir", str(data), "--repo", str(builder.path), "--json"]
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)[-1]["origin"] == load_bundled().version
    # switched off, a model of this repository is trained instead; champion/challenger
    # compares it with the copy on every test row of the latest fold (the copy never saw
    # this repository's changes)
    off = CFG.model_copy(
        update={"train": CFG.train.model_copy(update={"bundled_candidate": False})}
    )
    res = train(builder.path, data, off)
    assert res.kind != "bundled" and "bundled" not in res.evaluation["models"]
    assert "newest test rows" in res.promotion, res.promotion
    # an explicit kind has no bundled candidate either
    res = train(builder.path, data, CFG, model="la", force=True)
    assert list(res.evaluation["models"]) == ["la"]
    assert load_model(data).source == "repository"


def test_train_the_prior_kind_records_the_bundled_model_it_starts_from(labelled_repo):
    repo, data = labelled_repo
    res = train(repo, data, CFG, model="prior")
    assert res.status == "trained" and res.kind == "prior" and res.promoted
    model = load_model(data)
    md = model.metadata
    bundled = load_bundled()
    # a model of this repository (not a copy of the bundled one), starting from it
    assert model.source == "repository" and "origin" not in md
    assert md["prior"]["bundled"] == bundled.version and md["prior"]["penalty"] == 0.0
    assert md["features"] == [*bundled.features, "code_tokens"]
    assert md["training_window"]["first_sha"]
    card = (data / "models" / res.version / "MODEL_CARD.md").read_text()
    assert f"starts from the bundled cross-project model `{bundled.version}`" in card
    frame, _ = load_training_frame(data, CFG)
    # fewer than 100 labelled changes: no token weights, the bundled model itself
    assert res.n_train < 100
    np.testing.assert_allclose(
        model.predict_proba(frame), bundled.predict_proba(frame), rtol=1e-6, atol=1e-9
    )
    contrib = model.contributions(frame.head(5))
    assert list(contrib.columns) == [f for f in md["features"] if f in contrib.columns]
    assert np.isfinite(contrib.to_numpy()).all()


def test_bundled_candidate_is_left_out_on_its_own_training_projects():
    bundled = load_bundled()
    cfg = Config()
    assert set(bundled_candidates(cfg, pd.DataFrame({"sha": ["0" * 40]}))) == {"bundled"}
    first = next(iter(bundled.metadata["projects"].values()))["first_sha"]
    assert bundled_candidates(cfg, pd.DataFrame({"sha": ["0" * 40, first]})) == {}


@pytest.mark.parametrize("kind", ["poisson", "anchored", "logistic"])
def test_models_without_pfix(kind: str) -> None:
    X, y = synthetic_changes(400)
    assert "pfix" not in raw_features(kind, pfix=False) and "pfix" in raw_features(kind)
    est = fit_estimator(kind, X, y, y, pfix=False)
    p = est.predict_proba(X)[:, 1]
    # PFIX plays no part: any value gives the same predictions
    q = est.predict_proba(X.assign(pfix=X["pfix"] * 100 + 7))[:, 1]
    assert np.allclose(p, q)
    with_pfix = fit_estimator(kind, X, y, y)
    moved = with_pfix.predict_proba(X.assign(pfix=X["pfix"] * 100 + 7))[:, 1]
    assert not np.allclose(moved, with_pfix.predict_proba(X)[:, 1])


def _with_tokens(n: int = 800, seed: int = 5) -> tuple[pd.DataFrame, np.ndarray]:
    """Changes whose added code names `lock` or `retry` are the buggy ones, whatever their
    size; every change also uses common names (`self`, `return`)."""
    X, _ = synthetic_changes(n, seed)
    r = np.random.default_rng(seed)
    risky = r.random(n) < 0.3
    X["la_code"] = X["la"] * 0.8
    X["la_control"] = X["la"] * 0.2
    words = np.where(risky, "lock retry return self", "return self value")
    X["code_tokens"] = [" ".join(sorted(set(w.split()))) for w in words]
    X.loc[X.index[::11], "code_tokens"] = ""  # some changes add no code
    y = (r.random(n) < np.where(risky, 0.7, 0.1)).astype(int)
    return X, y


def test_the_tokens_model_learns_what_the_added_code_names(tmp_path: Path) -> None:
    from diffrisk.model.contributions import linear_contributions, model_reference, top_tokens
    from diffrisk.model.estimators import token_scores

    X, y = _with_tokens()
    est = fit_estimator("tokens", X, y)
    p = est.predict_proba(X)[:, 1]
    risky = X["code_tokens"].str.contains("lock").to_numpy()
    assert p[risky].mean() > p[~risky].mean() + 0.2
    assert raw_features("tokens") == ["la_source", "la_code", "la_control", "code_tokens"]
    # saved and loaded through the registry (skops, trusted types only)
    reg = ModelRegistry(tmp_path / "models")
    md = {
        "kind": "tokens",
        "features": raw_features("tokens"),
        "reference": model_reference("tokens", est, X),
    }
    v = reg.save(est, md)
    m = reg.load(v)
    np.testing.assert_allclose(m.predict_proba(X[:20]), p[:20])
    # contributions: the three line counts and the token block, relative to a typical change
    c = m.contributions(X.iloc[:50])
    assert list(c.columns) == ["la_source", "la_code", "la_control", "code_tokens"]
    raw = linear_contributions(est, X.iloc[:50])["code_tokens"]
    np.testing.assert_allclose(c["code_tokens"], raw - md["reference"]["code_tokens"])
    assert (c.loc[risky[:50], "code_tokens"] > 0).all()
    assert c.loc[~risky[:50], "code_tokens"].mean() < 0
    np.testing.assert_allclose(token_scores(est, X.iloc[:50]), raw)
    # the names that made one risky change risky; operators and brackets are never named
    first = X.index[risky][0]
    named = [t for t, w in top_tokens(est, X.loc[[first]]) if w > 0]
    assert set(named[:2]) == {"lock", "retry"}


def test_the_tokens_model_without_any_tokens_still_fits() -> None:
    X, y = synthetic_changes()
    assert "code_tokens" not in X.columns
    est = fit_estimator("tokens", X, y)
    p = est.predict_proba(X)[:, 1]
    assert p[X["la"] > 300].mean() > p[X["la"] < 30].mean()


def test_a_candidate_that_cannot_fit_every_fold_is_not_chosen() -> None:
    from diffrisk.errors import DataError
    from diffrisk.model.estimators import TOKEN_MIN_ROWS
    from diffrisk.training.evaluate import evaluate, prepare_frame

    X, y = _with_tokens(n=400)
    with pytest.raises(DataError, match="at least"):
        fit_estimator("tokens", X.iloc[: TOKEN_MIN_ROWS - 1], y[: TOKEN_MIN_ROWS - 1])
    # each buggy change is fixed by the next change, a day later
    fixed_by = [[X["sha"].iloc[i + 1]] if b and i + 1 < len(y) else [] for i, b in enumerate(y)]
    labels = pd.DataFrame(
        {
            "sha": X["sha"], "label": y, "label_state": np.where(y == 1, "buggy", "clean"),
            "fixed_by": fixed_by, "days_to_fix": np.where(y == 1, 1.0, np.nan), "n_fixes": y,
            "source_files": 1,
        }
    )  # fmt: skip
    frame = prepare_frame(X, labels)
    ev = evaluate(frame, Config(), kinds=("tokens",))
    folds = ev.models["tokens"]["folds"]
    # the first folds train on fewer than TOKEN_MIN_ROWS changes: left out, so the
    # candidate has fewer folds than the baseline and cannot be chosen
    assert folds[0] is None and any(f is not None for f in folds)
    assert ev.chosen == "la"
    # and the table says so
    from rich.console import Console

    from diffrisk.cli.train import render_evaluation

    con = Console(record=True, width=200)
    render_evaluation(ev.to_dict(), con)
    n, full = ev.models["tokens"]["overall"]["folds"], ev.models["la"]["overall"]["folds"]
    assert n < full and f"tokens ({n} of {full} folds: not compared)" in con.export_text()


def test_evaluation_table_prints_ifa_one_way():
    from diffrisk.cli.train import _f

    # IFA is a count of changes: 1.5 and 12.0 alike, not "1.500" next to "12.0"
    assert [_f(1.5, "ifa"), _f(12.0, "ifa"), _f(3, "ifa")] == ["1.5", "12.0", "3.0"]
    assert [_f(0.7512, "roc_auc"), _f(None, "ifa")] == ["0.751", "-"]


def test_one_promotion_rule_a_tie_promotes() -> None:
    import math

    from diffrisk.training.champion import promotes

    assert promotes(0.7, 0.7) and promotes(0.71, 0.7) and not promotes(0.69, 0.7)
    assert promotes(math.nan, math.nan) and promotes(0.5, math.nan)
    assert not promotes(math.nan, 0.7)
