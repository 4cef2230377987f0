"""diffrisk monitor: drift on real histories, realized-accuracy joins counted by hand,
the footer, the report formats, the GitHub issue and champion/challenger retraining."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from werkzeug import Request, Response

from diffrisk.cli import cli
from diffrisk.config import Config, MineConfig, parse_config
from diffrisk.data import outcomes, predlog
from diffrisk.mining.mine import mine
from diffrisk.monitoring import accuracy, drift, issue, modelinfo, render, retrain, retrain_record
from diffrisk.monitoring import monitor as mon
from repobuilder import RepoBuilder, ts

# ---------------------------------------------------------------------------------------
# Built histories. Days 0-180: two core authors and three modules at a time, both rotating
# every 30 days (people and code come and go at a steady rate, so no feature trends).
# Then 90 more days on three branches:
#   stable     the same process goes on                  -> no drift anywhere
#   newteam    every commit by a newcomer (1-2 commits each), same code and sizes
#              -> EXP / REXP / SEXP (experience) and NDEV drift; size and diffusion do not
#   subsystem  the same core authors build a new subsystem: 4 new files in new
#              directories per commit -> ND, NF, entropy, LT, AGE, NUC drift; EXP does not
STEP = 2.0
BASE_END = 180
END = 270
SIZES = (3, 12, 6, 30, 8)


def _lines(n: int, tag: str) -> str:
    return "".join(f"{tag}_{j} = {j}\n" for j in range(n))


def _steady(
    b: RepoBuilder, day: float, i: int, content: dict[str, str], author: str | None = None
) -> None:
    k = int(day // 30)
    path = f"pkg/mod{k - (i % 3)}.py"
    content[path] = content.get(path, "") + _lines(SIZES[i % 5], f"v{i}")
    b.commit(
        {path: content[path]}, author=author or f"dev{k - (i % 2)}", day=day, message=f"work {i}"
    )


@pytest.fixture(scope="module")
def histories(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("monitor")
    b = RepoBuilder(root / "repo")
    content: dict[str, str] = {}
    i, day = 0, 0.0
    while day < BASE_END:
        _steady(b, day, i, content)
        i, day = i + 1, day + STEP
    b.repo.git.branch("base")
    out = {}
    for kind in ("stable", "newteam", "subsystem"):
        b.repo.git.checkout("-q", "-B", kind, "base")
        c, j, d = dict(content), i, day
        while d < END:
            if kind == "stable":
                _steady(b, d, j, c)
            elif kind == "newteam":
                _steady(b, d, j, c, author=f"new{j // 2}")
            else:
                k = int(d // 30)
                files = {
                    f"sub{j}/part{n}/f{n}.py": _lines(SIZES[(j + n) % 5], f"s{j}") for n in range(4)
                }
                b.commit(files, author=f"dev{k - (j % 2)}", day=d, message=f"work {j}")
            j, d = j + 1, d + STEP
        mine(root / "repo", root / kind, rev=kind, config=MineConfig(code_metrics=False))
        out[kind] = root / kind
    out["repo"] = root / "repo"
    return out


def _status(report: mon.MonitorReport) -> dict[str, str]:
    return {d.feature: d.status for d in report.drift}


def test_stable_history_does_not_alert(histories: dict[str, Path]) -> None:
    r = mon.monitor(histories["stable"], Config())
    assert r.reference["source"] == "history"
    assert r.recent["changes"] == 45 and r.reference["changes"] == 90
    st = _status(r)
    # the features the model (here the bundled one) reads, and no others
    from diffrisk.model.registry import load_bundled

    assert r.model_source == "bundled"
    assert set(st) == set(load_bundled().features)
    assert {"la_source", "la_code", "la_control"} <= set(st) and not {"nd", "rexp"} & set(st)
    assert [f for f, s in st.items() if s != "ok"] == []
    assert r.drift_status == "ok"
    assert not r.decision.retrain and r.decision.reasons == []


def test_new_team_drifts_in_experience_only(histories: dict[str, Path]) -> None:
    r = mon.monitor(histories["newteam"], Config())
    st = _status(r)
    for f in ("exp", "sexp", "ndev"):
        assert st[f] == "alert", (f, st)
    for f in ("ns", "nf", "entropy", "la", "ld", "lt", "age", "fix"):
        assert st[f] == "ok", (f, st)
    exp = next(d for d in r.drift if d.feature == "exp")
    assert exp.recent_median is not None and exp.reference_median is not None
    assert exp.recent_median < 1 <= exp.reference_median
    # only the drift of features the model gives weight calls for retraining: the bundled
    # model weighs NDEV clearly, EXP and SEXP little (how little depends on its version)
    weight = {d.feature: d.influence for d in r.drift}
    assert weight["ndev"] > drift.MIN_INFLUENCE
    assert max(weight["exp"], weight["sexp"]) < 2 * drift.MIN_INFLUENCE < weight["ndev"]
    weighty = [  # in the order of the model's features
        d.feature
        for d in r.drift
        if d.feature in ("exp", "ndev", "sexp") and weight[d.feature] >= drift.MIN_INFLUENCE
    ]
    assert r.decision.retrain
    assert r.decision.reasons == [f"feature drift in alert: {', '.join(weighty)}"]


def test_new_subsystem_drifts_in_structure_not_experience(histories: dict[str, Path]) -> None:
    r = mon.monitor(histories["subsystem"], Config())
    st = _status(r)
    for f in ("nf", "entropy", "lt", "age", "nuc"):
        assert st[f] == "alert", (f, st)
    for f in ("exp", "ns", "fix", "ld"):
        assert st[f] == "ok", (f, st)
    assert r.drift_status == "alert"


def test_thresholds_come_from_config(histories: dict[str, Path]) -> None:
    lax = parse_config({"monitor": {"psi_alert": 100.0, "psi_warn": 50.0}})
    r = mon.monitor(histories["newteam"], lax)
    assert r.drift_status == "ok" and not r.decision.retrain
    # the report says by which rule a feature is ok, warn or alert
    assert (
        "Status: alert when PSI >= 100 and the KS test rejects equal distributions (p < 0.01), "
        "warn when PSI >= 50 and KS rejects" in render.to_markdown(r)
    )
    few = parse_config({"monitor": {"min_changes": 60}})  # recent window holds 45 changes
    r = mon.monitor(histories["newteam"], few)
    assert r.drift_status == "insufficient"
    # the reference is the last reference_days of the older history (90 changes, 180 days)
    short = parse_config({"monitor": {"reference_days": 30}})
    r = mon.monitor(histories["stable"], short)
    start, end = pd.Timestamp(r.reference["start"]), pd.Timestamp(r.reference["end"])
    assert end - start <= pd.Timedelta(days=30) and r.reference["changes"] == 16


def test_psi_by_hand() -> None:
    assert drift.psi([1, 2, 3, 4] * 25, [1, 2, 3, 4] * 10) == pytest.approx(0.0)
    # reference: 0 and 1 half each (two bins on the log1p scale); current all 1s:
    # (1 - .5) ln(1/.5) + (1e-4 - .5) ln(1e-4/.5)
    want = 0.5 * math.log(2) + (1e-4 - 0.5) * math.log(1e-4 / 0.5)
    assert drift.psi([0, 1] * 50, [1] * 40, bins=2) == pytest.approx(want)
    assert math.isnan(drift.psi([], [1, 2]))


# ---------------------------------------------------------------------------------------
# Realized accuracy, counted by hand.


def test_accuracy_by_hand() -> None:
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.3, 0.75, 0.2, 0.1, 0.6, 0.05])
    effort = np.array([10, 10, 100, 10, 50, 50, 50, 20])
    m = accuracy.accuracy(y, p, effort, threshold=0.7)
    # flagged at 0.7: 0.9 (buggy), 0.8 (buggy), 0.75 (clean)
    assert (m["flagged"], m["true_positives"]) == (3, 2)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    # buggy-over-clean pairs: 0.9 and 0.8 beat all 5 clean, 0.3 beats 0.2, 0.1, 0.05 -> 13 of 15
    assert m["roc_auc"] == pytest.approx(13 / 15)
    # effort 300, 20% = 60: 0.9 (10), 0.8 (20), 0.75 (30) fit, 0.6 (80) does not -> 2 of 3 buggy
    assert m["recall_at_20_effort"] == pytest.approx(2 / 3)
    assert accuracy.accuracy(y, p, effort, threshold=0.7, min_class=4)["roc_auc"] is None


def _scored(rows: list[tuple[str, float, str, int]]) -> pd.DataFrame:
    """(author_time, probability, label_state, la) rows; ld 0, one source file each."""
    df = pd.DataFrame(rows, columns=["author_time", "probability", "label_state", "la"])
    df["author_time"] = pd.to_datetime(df["author_time"], utc=True)
    df["label"] = df["label_state"].map({"buggy": 1, "clean": 0})
    df["ld"] = 0
    df["source_files"] = 1
    return df


def test_windows_never_count_unlabelled_as_clean() -> None:
    q1 = [
        ("2021-01-10", pr, st, la)
        for pr, st, la in zip(
            [0.9, 0.8, 0.3, 0.75, 0.2, 0.1, 0.6, 0.05],
            ["buggy", "buggy", "buggy", "clean", "clean", "clean", "clean", "clean"],
            [10, 10, 100, 10, 50, 50, 50, 20],
            strict=True,
        )
    ]
    q1 += [("2021-02-01", 0.95, "unlabelled", 10), ("2021-03-01", 0.99, "unlabelled", 10)]
    q2 = [
        ("2021-04-02", 0.2, "buggy", 5),
        ("2021-05-02", 0.9, "clean", 5),
        ("2021-06-02", 0.97, "unlabelled", 5),
    ]
    # a change SZZ can never label (no source file) is left out too
    q2 += [("2021-06-03", 0.99, "clean", 5)]
    df = _scored(q1 + q2)
    df.loc[len(df) - 1, "source_files"] = 0
    w = accuracy.windows(
        df, 0.7, training_end=pd.Timestamp("2021-03-31T23:59:59.999999999Z"), min_class=1
    )
    assert [x["period"] for x in w] == ["2021Q1", "2021Q2"]
    a, b = w
    assert (a["changes"], a["labelled"], a["unlabelled"]) == (10, 8, 2)
    assert a["precision"] == pytest.approx(2 / 3) and a["recall"] == pytest.approx(2 / 3)
    assert a["roc_auc"] == pytest.approx(13 / 15) and a["in_training"]
    assert (b["changes"], b["labelled"], b["n_buggy"], b["flagged"]) == (4, 2, 1, 1)
    assert b["precision"] == 0.0 and b["recall"] == 0.0 and b["roc_auc"] == 0.0
    assert not b["in_training"]


def _log_fixture(tmp_path: Path, now: pd.Timestamp) -> None:
    """changes + labels + a prediction log whose outcomes are worked out in the test."""
    sha = {
        k: f"{n:040x}"
        for n, k in enumerate(
            ["a1", "a2", "a3", "a4", "a5", "a6", "s12", "h1", "h3", "h4", "h5", "x1"], 1
        )
    }
    changes = pd.DataFrame(
        {
            "sha": [sha[k] for k in ("a1", "a2", "a3", "a4", "a5", "a6", "s12")],
            "subject": ["one", "two", "three", "four", "five", "six", "Add feature (#12)"],
        }
    )
    changes.to_parquet(tmp_path / "changes.parquet")
    states = {
        "a1": "buggy",
        "a2": "clean",
        "a3": "unlabelled",
        "a4": "clean",
        "a5": "clean",
        "a6": "buggy",
        "s12": "buggy",
    }
    pd.DataFrame(
        {
            "sha": [sha[k] for k in states],
            "label": [1 if s == "buggy" else 0 if s == "clean" else None for s in states.values()],
            "label_state": list(states.values()),
            "fixed_by": [["f" * 40] if s == "buggy" else [] for s in states.values()],
        }
    ).to_parquet(tmp_path / "labels.parquet")
    t = now - pd.Timedelta(days=10)
    old = now - pd.Timedelta(days=200)
    recs = [
        dict(
            head_sha=sha["h1"],
            commits=[sha["a1"], sha["a2"]],
            probability=0.9,
            level="high",
            decision="fail",
            time=t,
        ),
        dict(head_sha=sha["a4"], commits=[sha["a4"]], probability=0.5, level="medium", time=t),
        dict(
            head_sha=sha["h3"],
            commits=[sha["a5"], sha["a3"]],
            probability=0.95,
            level="high",
            time=t,
        ),
        dict(
            head_sha=sha["h4"], commits=[sha["x1"]], pr=12, probability=0.1, level="low", time=old
        ),
        dict(head_sha=sha["h5"], commits=["e" * 40], pr=99, probability=0.8, level="high", time=t),
        dict(
            head_sha=sha["a6"],
            commits=[],
            probability=0.45,
            level="medium",
            decision="warn",
            time=t,
        ),
    ]
    predlog.append(tmp_path, recs)


NOW = pd.Timestamp("2024-06-01T00:00:00Z")


def test_prediction_outcomes_by_hand(tmp_path: Path) -> None:
    _log_fixture(tmp_path, NOW)
    preds = predlog.load_predictions(tmp_path)
    out = outcomes.prediction_outcomes(
        preds,
        pd.read_parquet(tmp_path / "changes.parquet"),
        pd.read_parquet(tmp_path / "labels.parquet"),
    )
    by = dict(zip(out["head_sha"].str[-2:], out["outcome"], strict=True))
    # h1: a1 buggy; a4: clean; h3: a3 still unlabelled (never clean); h4: squash (#12) buggy;
    # h5: none of its commits merged; a6: its own head is buggy
    assert by == {
        "08": "buggy",
        "04": "clean",
        "09": "unlabelled",
        "0a": "buggy",
        "0b": "unmerged",
        "06": "buggy",
    }
    s = outcomes.log_summary(out, Config())
    assert (s["predictions"], s["buggy"], s["clean"], s["unlabelled"], s["unmerged"]) == (
        6,
        3,
        1,
        1,
        1,
    )
    # flagged (level >= medium, the default gate.warn_on): h1 and a6 of the buggy; a4 of the clean
    assert (s["buggy_flagged"], s["buggy_blocked"], s["clean_flagged"]) == (2, 1, 1)
    assert s["flagged_share"] == pytest.approx(2 / 3)
    assert "precision" not in s  # young clean changes are unlabelled: it would be inflated
    # warn_on high: a4 (medium, no decision) is no longer flagged; a6 still is (gate said warn)
    s = outcomes.log_summary(out, parse_config({"gate": {"warn_on": "high"}}))
    assert (s["buggy_flagged"], s["clean_flagged"]) == (2, 0)
    # last 90 days: h4 (200 days old) drops out
    s = outcomes.log_summary(out, Config(), days=90, now=NOW)
    assert (s["predictions"], s["buggy"], s["buggy_flagged"]) == (5, 2, 2)


def test_realized_footer(tmp_path: Path) -> None:
    assert outcomes.realized_footer(tmp_path) is None  # nothing at all
    _log_fixture(tmp_path, NOW)
    cfg = parse_config({"monitor": {"footer_min_buggy": 2, "footer_days": 365}})
    assert outcomes.realized_footer(tmp_path, cfg, now=NOW) == (
        "diffrisk flagged 2 of the 3 changes later found buggy in the last 365 days"
    )
    cfg = parse_config({"monitor": {"footer_min_buggy": 3, "footer_days": 90}})
    assert outcomes.realized_footer(tmp_path, cfg, now=NOW) is None  # only 2 buggy in 90 days
    (tmp_path / "labels.parquet").write_bytes(b"garbage")
    assert outcomes.realized_footer(tmp_path, cfg, now=NOW) is None


# ---------------------------------------------------------------------------------------
# With a model: realized accuracy of the history, reports, CLI.


def _labels_for(data_dir: Path, rule: Any = None, young_days: float = 20) -> pd.DataFrame:
    """Hand-made SZZ-style labels: ``rule(day, la) -> bool`` says buggy (default: la >= 30);
    the changes of the last ``young_days`` days are unlabelled."""
    rule = rule or (lambda day, la: la >= 30)
    ch = pd.read_parquet(data_dir / "changes.parquet")
    t = pd.to_datetime(ch["author_time"], utc=True)
    day = ((t - pd.Timestamp("2020-01-01T00:00:00Z")) / pd.Timedelta(days=1)).to_numpy()
    young = (t > t.max() - pd.Timedelta(days=young_days)).to_numpy()
    buggy = np.array([bool(rule(d, la)) for d, la in zip(day, ch["la"], strict=True)]) & ~young
    lab = pd.DataFrame(
        {
            "sha": ch["sha"],
            "label": pd.array(
                [None if yg else int(b) for yg, b in zip(young, buggy, strict=True)], dtype="Int8"
            ),
            "label_state": np.where(young, "unlabelled", np.where(buggy, "buggy", "clean")),
            # each bug is found by a fix (not mined here) five days later
            "fixed_by": [["f" * 40] if b else [] for b in buggy],
            "days_to_fix": np.where(buggy, 5.0, np.nan),
            "n_fixes": buggy.astype("int32"),
            "source_files": np.int32(1),
            "is_fix": np.int8(0),
        }
    )
    lab.to_parquet(data_dir / "labels.parquet")
    return lab


def _copy(src: Path, tmp_path: Path) -> Path:
    import shutil

    dst = tmp_path / "data"
    shutil.copytree(src, dst)
    return dst


def _save_model(
    data_dir: Path, *, train_end: str, recorded_auc: float, created: str | None = None
) -> str:
    """A real logistic model on one feature, stored and promoted through the registry."""
    from diffrisk.data.paths import models_dir
    from diffrisk.model.estimators import fit_estimator
    from diffrisk.model.registry import ModelRegistry
    from diffrisk.model.transforms import raw_features

    ch = pd.read_parquet(data_dir / "changes.parquet")
    lab = pd.read_parquet(data_dir / "labels.parquet")
    frame = ch.merge(lab, on="sha")
    tr = frame[
        (pd.to_datetime(frame["author_time"], utc=True) <= pd.Timestamp(train_end))
        & (frame["label_state"] != "unlabelled")
    ]
    y = tr["label"].astype(int).to_numpy()
    est = fit_estimator("logistic", tr, y, y)
    reg = ModelRegistry(models_dir(data_dir))
    md: dict[str, Any] = {
        "kind": "logistic",
        "features": raw_features("logistic"),
        "training_window": {"first_date": str(tr["author_time"].min()), "last_date": train_end},
        "metrics": {"latest_fold": {"roc_auc": recorded_auc}},
    }
    v = reg.save(est, md)
    if created:  # backdate (the registry stamps the current time)
        p = models_dir(data_dir) / v / "metadata.json"
        d = json.loads(p.read_text())
        d["created"] = created
        p.write_text(json.dumps(d))
    reg.promote(v)
    return v


def test_realized_accuracy_with_a_model(histories: dict[str, Path], tmp_path: Path) -> None:
    data = _copy(histories["stable"], tmp_path)
    lab = _labels_for(data)
    v = _save_model(data, train_end="2020-06-29T00:00:00Z", recorded_auc=0.95)
    # days 180-250 hold 35 labelled changes, 7 of them buggy
    r = mon.monitor(
        data, parse_config({"monitor": {"min_buggy": 5}, "label": {"verification_days": 20}})
    )
    assert r.model_version == v and r.model_source == "repository"
    assert r.reference["source"] == "training_window"
    # out of sample: labelled changes after the training window
    ch = pd.read_parquet(data / "changes.parquet").merge(lab, on="sha")
    after = ch[
        (pd.to_datetime(ch["author_time"], utc=True) > pd.Timestamp("2020-06-29T00:00:00Z"))
        & (ch["label_state"] != "unlabelled")
    ]
    assert r.realized["n"] == len(after) and r.realized["n_buggy"] == int(
        (after["label_state"] == "buggy").sum()
    )
    assert r.realized["roc_auc"] is not None and r.realized["roc_auc"] > 0.9
    assert not r.decision.retrain, r.decision.reasons
    assert [p["period"] for p in r.periods] == ["2020Q1", "2020Q2", "2020Q3"]  # days 0-268
    assert r.periods[0]["in_training"] and not r.periods[-1]["in_training"]
    assert sum(p["unlabelled"] for p in r.periods) == int(
        (lab["label_state"] == "unlabelled").sum()
    )
    # with a 90-day verification latency every change after the training window is too
    # young: the bugs found early must not be counted alone
    r = mon.monitor(data, parse_config({"monitor": {"min_buggy": 5}}))
    assert (
        r.realized["n"] == 0 and r.realized["roc_auc"] is None and r.realized["precision"] is None
    )
    t = pd.to_datetime(ch["author_time"], utc=True)
    assert sum(p["unlabelled"] for p in r.periods) == int(
        (t > t.max() - pd.Timedelta(days=90)).sum()
    )


def test_auc_drop_and_age_recommend_retraining(histories: dict[str, Path], tmp_path: Path) -> None:
    data = _copy(histories["stable"], tmp_path)
    # before day 180 big changes are buggy, after it small ones: the model trained on the
    # first regime ranks the second one backwards
    _labels_for(data, lambda day, la: la >= 30 if day < 180 else la <= 3)
    _save_model(
        data,
        train_end="2020-06-29T00:00:00Z",
        recorded_auc=0.95,
        created="2019-01-01T00:00:00+00:00",
    )
    r = mon.monitor(
        data, parse_config({"monitor": {"min_buggy": 5}, "label": {"verification_days": 20}})
    )
    assert r.decision.realized_auc is not None and r.decision.realized_auc < 0.5
    assert r.decision.recorded_auc == 0.95
    assert r.decision.retrain
    assert any("realized ROC-AUC" in x for x in r.decision.reasons)
    assert any("days old" in x for x in r.decision.reasons)
    assert r.drift_status == "ok"  # the features did not move; the relationship did


def test_a_retrain_that_kept_the_model_holds_back_the_recommendation(
    histories: dict[str, Path], tmp_path: Path
) -> None:
    data = _copy(histories["stable"], tmp_path)
    # big changes are buggy before day 180, nothing after it: the latest fold's test rows
    # are all clean, no challenger can be compared, and the current model stays
    _labels_for(data, lambda day, la: la >= 30 and day < 180)
    _save_model(
        data,
        train_end="2020-06-29T00:00:00Z",
        recorded_auc=0.95,
        created="2019-01-01T00:00:00+00:00",
    )
    cfg = parse_config({"monitor": {"min_buggy": 5}, "label": {"verification_days": 20}})
    first = mon.monitor(data, cfg)
    assert first.decision.retrain and any("days old" in x for x in first.decision.reasons)
    res = retrain.retrain(None, data, cfg, first)
    assert not res["promoted"], res
    rec = json.loads((data / "models" / retrain_record.RETRAIN_FILE).read_text())
    assert rec["promoted"] is False and rec["champion"] == first.model_version
    again = mon.monitor(data, cfg)
    assert not again.decision.retrain and again.decision.reasons == first.decision.reasons
    assert again.decision.held_back and "kept" in again.decision.held_back
    assert "Not recommended now" in render.to_markdown(again)
    assert rec["reasons"] == sorted({retrain_record.reason_kind(x) for x in first.decision.reasons})
    # a reason of another kind than the ones the retrain answered is not held back
    path = data / "models" / retrain_record.RETRAIN_FILE
    path.write_text(json.dumps({**rec, "reasons": ["drift"]}))
    assert mon.monitor(data, cfg).decision.retrain
    # an unreadable record holds nothing back, and breaks nothing
    for bad in ({**rec, "at": "not a date"}, {**rec, "labelled": None}, [1, 2]):
        path.write_text(json.dumps(bad))
        assert mon.monitor(data, cfg).decision.retrain
    path.write_text(json.dumps(rec))
    # without a cool-down the recommendation stands
    cfg0 = parse_config(
        {
            "monitor": {"min_buggy": 5, "retrain_cooldown_days": 0},
            "label": {"verification_days": 20},
        }
    )
    assert mon.monitor(data, cfg0).decision.retrain


def test_promotes_a_better_challenger(histories: dict[str, Path], tmp_path: Path) -> None:
    from diffrisk.model.registry import ModelRegistry, load_model

    data = _copy(histories["stable"], tmp_path)
    _labels_for(data, lambda day, la: la <= 3 if day < 120 else la >= 30)
    old = _save_model(data, train_end="2020-04-20T00:00:00Z", recorded_auc=0.9)
    cfg = parse_config({"train": {"gap_days": 0}, "monitor": {"retrain_days": 100, "min_buggy": 5}})
    r = mon.monitor(data, cfg)
    res = retrain.retrain(histories["repo"], data, cfg, r)
    assert res["champion_compared_as"] == "the current model as stored"
    assert res["challenger_auc"] > res["champion_auc"]
    assert res["promoted"] and res["version"] != old
    reg = ModelRegistry(data / "models")
    assert reg.current() == res["version"]
    md = load_model(data).metadata
    assert md["promotion"]["replaced"] == old and "ROC-AUC" in md["promotion"]["why"]
    assert md["metrics"]["latest_fold"]["roc_auc"] == pytest.approx(res["challenger_auc"])
    assert pd.Timestamp(md["training_window"]["first_date"]) >= pd.Timestamp("2020-05-01T00:00:00Z")


def test_refuses_a_worse_challenger(histories: dict[str, Path], tmp_path: Path) -> None:
    from diffrisk.model.registry import ModelRegistry

    data = _copy(histories["stable"], tmp_path)
    # the challenger's recent window (days 130-230) is labelled backwards; the test fold is not
    _labels_for(data, lambda day, la: la <= 3 if 130 <= day < 225 else la >= 30)
    old = _save_model(data, train_end="2020-04-20T00:00:00Z", recorded_auc=0.9)
    cfg = parse_config({"train": {"gap_days": 0}, "monitor": {"retrain_days": 100, "min_buggy": 5}})
    res = retrain.retrain(None, data, cfg, mon.monitor(data, cfg))
    assert not res["promoted"]
    assert res["challenger_auc"] < res["champion_auc"]
    assert "NOT promoted" in res["summary"]
    assert ModelRegistry(data / "models").current() == old
    assert len(ModelRegistry(data / "models").versions()) == 1


def test_cli_json_markdown_plots(histories: dict[str, Path], tmp_path: Path) -> None:
    data = _copy(histories["newteam"], tmp_path)
    md_path, plots = tmp_path / "report.md", tmp_path / "plots"
    res = CliRunner().invoke(
        cli,
        [
            "monitor",
            "--repo",
            str(histories["repo"]),
            "--data-dir",
            str(data),
            "--json",
            "--markdown",
            str(md_path),
            "--plots",
            str(plots),
            "--plot-format",
            "svg",
        ],
    )
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["decision"]["retrain"] is True and d["drift_status"] == "alert"
    assert {f["feature"] for f in d["drift"] if f["status"] == "alert"} >= {"exp", "sexp"}
    md = md_path.read_text()
    assert md.startswith(render.ISSUE_MARKER) and "Retraining recommended" in md and "`exp`" in md
    # the bundled model scores the history (risk plot); no labels yet: no accuracy plot
    assert sorted(p.name for p in plots.iterdir()) == ["drift.svg", "risk_over_time.svg"]
    assert (plots / "drift.svg").read_text().lstrip().startswith("<?xml")


def test_cli_plots_with_model(histories: dict[str, Path], tmp_path: Path) -> None:
    data = _copy(histories["stable"], tmp_path)
    _labels_for(data)
    _save_model(data, train_end="2020-06-29T00:00:00Z", recorded_auc=0.95)
    res = CliRunner().invoke(
        cli,
        [
            "monitor",
            "--repo",
            str(histories["repo"]),
            "--data-dir",
            str(data),
            "--plots",
            str(tmp_path / "p"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "no retraining needed; model " in res.output  # not "needed model X"
    names = sorted(p.name for p in (tmp_path / "p").iterdir())
    assert names == ["drift.png", "realized_accuracy.png", "risk_over_time.png"]
    assert all((tmp_path / "p" / n).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for n in names)


def test_cli_missing_data_is_a_clear_error(histories: dict[str, Path], tmp_path: Path) -> None:
    res = CliRunner().invoke(
        cli, ["monitor", "--repo", str(histories["repo"]), "--data-dir", str(tmp_path / "none")]
    )
    assert res.exit_code == 2
    assert "error: no mined dataset" in res.output and "hint:" in res.output


# ---------------------------------------------------------------------------------------
# The monitor issue, through PyGithub against a local server answering like the REST API.

TOKEN = "ghp_MONITORtoken0123456789abcdefABCDEF01"


class IssueAPI:
    """Open issues of one repository, ``GET /user``, issue create/edit and the pin mutation."""

    def __init__(
        self, base: str, issues: list[dict[str, Any]] | None = None, pin_ok: bool = True
    ) -> None:
        self.base = base.rstrip("/")
        self.issues = issues or []
        self.pin_ok = pin_ok
        self.calls: list[tuple[str, str]] = []

    def issue(
        self, number: int, body: str, login: str, title: str = "diffrisk model monitor"
    ) -> dict[str, Any]:
        return {
            "id": 100 + number,
            "node_id": f"I_{number}",
            "number": number,
            "title": title,
            "body": body,
            "state": "open",
            "user": {"login": login, "id": 1, "type": "User"},
            "url": f"{self.base}/repos/octo/demo/issues/{number}",
            "html_url": f"https://github.com/octo/demo/issues/{number}",
        }

    def __call__(self, req: Request) -> Response:
        self.calls.append((req.method, req.path))
        if req.headers.get("Authorization") != f"token {TOKEN}":
            return Response(
                json.dumps({"message": "Bad credentials"}), 401, content_type="application/json"
            )
        if req.method == "GET" and req.path == "/user":
            return _json({"login": "monitor-bot", "id": 9, "type": "User"})
        if req.method == "GET" and req.path == "/repos/octo/demo/issues":
            assert req.args.get("state") == "open"
            return _json(self.issues)
        if req.method == "POST" and req.path == "/repos/octo/demo/issues":
            data = req.get_json()
            new = self.issue(len(self.issues) + 1, data["body"], "monitor-bot", data["title"])
            self.issues.append(new)
            return _json(new, 201)
        m = req.path.rsplit("/", 1)
        if req.method == "PATCH" and m[0] == "/repos/octo/demo/issues":
            it = next(i for i in self.issues if i["number"] == int(m[1]))
            it.update(req.get_json())
            return _json(it)
        if req.method == "POST" and req.path == "/graphql":
            q = req.get_json()
            assert "pinIssue" in q["query"]
            if not self.pin_ok:
                return _json({"message": "Resource not accessible by integration"}, 403)
            return _json({"data": {"pinIssue": {"issue": {"number": 1}}}})
        return _json({"message": "Not Found"}, 404)


def _json(obj: Any, status: int = 200) -> Response:
    return Response(json.dumps(obj), status, content_type="application/json")


def _client(base: str) -> Any:
    from diffrisk.hosts.github.client import GitHubClient

    return GitHubClient(
        "octo/demo",
        TOKEN,
        api_url=base,
        backoff=0,
        retries=0,
        secondary_rate_wait=0,
        seconds_between_requests=0,
        seconds_between_writes=0,
    )


def test_issue_created_pinned_then_updated_in_place(httpserver: Any) -> None:
    api = IssueAPI(httpserver.url_for("/"))
    # someone quoting our marker in their own issue is never edited
    api.issues.append(api.issue(1, render.ISSUE_MARKER + " quoted by a user", "alice"))
    httpserver.expect_request("").respond_with_handler(api)
    base = httpserver.url_for("/").rstrip("/")
    with _client(base) as c:
        first = issue.publish_issue(c, "## report one\n", "diffrisk model monitor")
    assert (first.action, first.number, first.pinned) == ("created", 2, True)
    assert (
        api.issues[1]["body"].startswith(render.ISSUE_MARKER)
        and "report one" in api.issues[1]["body"]
    )
    with _client(base) as c:
        second = issue.publish_issue(c, "## report two\n", "diffrisk model monitor")
        third = issue.publish_issue(c, "## report two\n", "diffrisk model monitor")
    assert (second.action, second.number) == ("updated", 2)
    assert third.action == "unchanged"
    assert "report two" in api.issues[1]["body"] and api.issues[0]["body"].endswith(
        "quoted by a user"
    )
    assert len(api.issues) == 2
    assert [c for c in api.calls if c[0] == "PATCH"] == [("PATCH", "/repos/octo/demo/issues/2")]


def test_issue_from_cli_with_refused_pin(
    httpserver: Any, histories: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = IssueAPI(httpserver.url_for("/"), pin_ok=False)
    httpserver.expect_request("").respond_with_handler(api)
    monkeypatch.setenv("GITHUB_API_URL", httpserver.url_for("/").rstrip("/"))
    monkeypatch.setenv("GITHUB_REPOSITORY", "octo/demo")
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    data = _copy(histories["stable"], tmp_path)
    res = CliRunner().invoke(
        cli,
        ["monitor", "--repo", str(histories["repo"]), "--data-dir", str(data), "--issue", "--json"],
    )
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)  # (stderr may carry PyGithub's log line about the refused pin)
    assert d["issue"] == {
        "action": "created",
        "number": 1,
        "url": "https://github.com/octo/demo/issues/1",
        "pinned": False,
    }
    assert "No retraining needed" in api.issues[0]["body"]
    assert TOKEN not in res.output


def test_issue_needs_token(histories: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    res = CliRunner().invoke(
        cli,
        [
            "monitor",
            "--repo",
            str(histories["repo"]),
            "--data-dir",
            str(histories["stable"]),
            "--issue",
        ],
    )
    assert res.exit_code == 2 and "needs a repository and a token" in res.output


def test_a_rebase_merged_pull_request_is_found_by_author_and_time(
    builder: RepoBuilder, tmp_path: Path
) -> None:
    from diffrisk.scoring.score import score
    from modelbuilder import install_model

    b = builder
    for day in range(4):
        b.commit({f"m{day}.py": f"x = {day}\n"}, day=day, message=f"main {day}")
    b.branch("feat")
    b.checkout("feat")
    f1 = b.commit({"f.py": "y = 1\n"}, author="zed", day=5, message="feature part 1")
    f2 = b.commit({"f.py": "y = 2\n"}, author="zed", day=6, message="feature part 2")
    b.checkout("main")
    b.commit({"m9.py": "z = 9\n"}, day=7, message="main moves on")
    data = tmp_path / "data"
    mine(b.path, data, rev="feat", config=MineConfig(code_metrics=False))
    install_model(data, seed=3, n=300, max_ns=3, intercept=-1.0)
    res = score(b.path, "main", "feat", data)
    predlog.append_from_score(data, res.to_dict())
    logged = predlog.load_predictions(data)
    assert sorted(logged["commit_keys"][0]) == sorted(
        [predlog.commit_key("zed@example.com", ts(5)), predlog.commit_key("zed@example.com", ts(6))]
    )
    # "Rebase and merge": the commits are replayed onto main with new shas (the author and
    # author date stay), and the branch is deleted
    env = {**os.environ, "GIT_COMMITTER_NAME": "gh", "GIT_COMMITTER_EMAIL": "gh@example.com"}
    b.repo.git.execute(["git", "cherry-pick", f1, f2], env=env)
    b.run("branch", "-D", "feat")
    rebased = b.run("rev-list", "-2", "main").split()
    assert f1 not in rebased and f2 not in rebased
    mined = tmp_path / "main"
    mine(b.path, mined, rev="main", config=MineConfig(code_metrics=False))
    changes = pd.read_parquet(mined / "changes.parquet")
    labels = pd.DataFrame(
        {
            "sha": list(changes["sha"]),
            "label_state": ["buggy" if s == rebased[1] else "clean" for s in changes["sha"]],
            "fixed_by": [["f" * 40] if s == rebased[1] else [] for s in changes["sha"]],
        }
    )
    out = outcomes.prediction_outcomes(logged, changes, labels)
    assert out["outcome"][0] == "buggy"  # the first rebased commit was later found buggy
    assert sorted(out["matched"][0]) == sorted(rebased)
    # a log written before commit_keys existed is still read (the column comes back null)
    old = pq.read_table(predlog.path_of(data)).drop(["commit_keys"])
    pq.write_table(old, predlog.path_of(data))
    again = predlog.load_predictions(data)
    assert again["commit_keys"].isna().all() or again["commit_keys"][0] is None
    assert outcomes.prediction_outcomes(again, changes, labels)["outcome"][0] == "unmerged"


def test_recorded_auc_matches_the_population_realized_accuracy_covers() -> None:
    md = {"metrics": {"latest_fold": {"roc_auc": 0.9}, "overall": {"roc_auc": 0.8}}}
    assert modelinfo.recorded_auc(md) == 0.9  # realized after the training window: the newest fold
    assert modelinfo.recorded_auc(md, whole_history=True) == 0.8  # all labelled history
    assert modelinfo.recorded_auc({"metrics": {"overall": {"roc_auc": 0.7}}}) == 0.7
    assert modelinfo.recorded_auc({}) is None


def test_drift_waits_while_the_model_has_seen_every_labelled_change(
    histories: dict[str, Path], tmp_path: Path
) -> None:
    # the newcomers' changes of days 180-270 drift in NDEV/EXP; with a 90-day latency none
    # of them is labelled, and a model trained up to day 180 has seen every labelled change
    data = _copy(histories["newteam"], tmp_path)
    _labels_for(data)
    _save_model(data, train_end="2020-06-29T00:00:00Z", recorded_auc=0.8)
    r = mon.monitor(data, Config())
    alerts = [d.feature for d in r.drift if d.matters]
    assert alerts, [(d.feature, d.status, d.influence) for d in r.drift]
    assert not r.decision.retrain and r.decision.reasons == []
    held = r.decision.held_back or ""
    assert "feature drift in alert" in held and "only 0 have been labelled since" in held
    assert "Not recommended now" in render.to_markdown(r)
    # with a 20-day latency days 180-250 are labelled: retraining would learn from them
    r = mon.monitor(data, parse_config({"label": {"verification_days": 20}}))
    assert r.decision.retrain and r.decision.held_back is None
    assert r.decision.reasons == [f"feature drift in alert: {', '.join(alerts)}"]
    # retraining for another reason (age): the drift is listed too, not held back
    old = _copy(histories["newteam"], tmp_path / "old")
    _labels_for(old)
    _save_model(
        old, train_end="2020-06-29T00:00:00Z", recorded_auc=0.8, created="2019-01-01T00:00:00Z"
    )
    r = mon.monitor(old, Config())
    assert r.decision.retrain and r.decision.held_back is None
    assert r.decision.reasons[0] == f"feature drift in alert: {', '.join(alerts)}"
    assert "days old" in r.decision.reasons[1]


def _diffrisk_imports(path: Path) -> set[str]:
    """The diffrisk modules a source file imports (at the top or inside functions)."""
    import ast

    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("diffrisk"):
            out.add(node.module or "")
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("diffrisk")}
    return out


def test_stages_below_monitoring_do_not_import_it() -> None:
    src = Path(__file__).resolve().parents[2] / "src" / "diffrisk"
    for stage in ("scoring", "training", "labelling", "mining", "data"):
        for f in (src / stage).rglob("*.py"):
            assert not any(m.startswith("diffrisk.monitoring") for m in _diffrisk_imports(f)), f
    # the outcomes of the prediction log sit in the data layer: scoring reads them too
    allowed = ("diffrisk.data", "diffrisk.config", "diffrisk.errors", "diffrisk.notices")
    allowed += ("diffrisk.jsonutil", "diffrisk.levels")
    for m in _diffrisk_imports(src / "data" / "outcomes.py"):
        assert m.startswith(allowed), m
