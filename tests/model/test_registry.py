"""Model registry: skops round trip, tamper/corruption/version checks, promotion, contributions."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from diffrisk.cli import cli
from diffrisk.errors import ModelError
from diffrisk.model.contributions import training_medians
from diffrisk.model.estimators import fit_estimator
from diffrisk.model.registry import ModelRegistry, load_bundled, load_model
from diffrisk.model.transforms import raw_features
from modelbuilder import synthetic_changes


def _save(reg: ModelRegistry, kind: str = "logistic") -> str:
    X, y = synthetic_changes()
    est = fit_estimator(kind, X, y, y)
    md = {
        "kind": kind,
        "features": raw_features(kind),
        "metrics": {"overall": {"roc_auc": 0.7}, "latest_fold": {"roc_auc": 0.7}},
        "training_window": {"first_sha": X["sha"].iloc[0], "last_sha": X["sha"].iloc[-1],
                            "first_date": "2020-01-01T00:00:00+00:00", "last_date": "2021-08-23T00:00:00+00:00"},
        "reference": training_medians(kind, X),
    }  # fmt: skip
    return reg.save(est, md)


@pytest.fixture
def reg(tmp_path):
    return ModelRegistry(tmp_path / "models")


def test_round_trip_predicts_the_same(reg):
    v = _save(reg)
    reg.promote(v)
    X, _ = synthetic_changes(50, seed=7)
    m = reg.load()
    assert m.version == v and m.kind == "logistic" and m.source == "repository"
    md = json.loads((reg.root / v / "metadata.json").read_text())
    assert len(md["sha256"]) == 64 and md["libraries"]["skops"]
    p = m.predict_proba(X)
    assert p.shape == (50,) and ((p > 0) & (p < 1)).all()
    np.testing.assert_allclose(reg.load(v).predict_proba(X), p)


def test_flipped_byte_is_a_sha_mismatch(reg):
    v = _save(reg)
    path = reg.root / v / "model.skops"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256") as err:
        reg.load(v)
    assert str(path) in err.value.message and "diffrisk train" in err.value.hint


def test_truncated_file_is_a_clear_error_even_with_a_matching_hash(reg):
    v = _save(reg)
    path = reg.root / v / "model.skops"
    data = path.read_bytes()[:500]
    path.write_bytes(data)
    with pytest.raises(ModelError, match="sha256"):
        reg.load(v)
    # someone also rewrote the hash: skops cannot read it, still a ModelError naming the file
    import hashlib

    md_path = reg.root / v / "metadata.json"
    md = json.loads(md_path.read_text())
    md["sha256"] = hashlib.sha256(data).hexdigest()
    md_path.write_text(json.dumps(md))
    with pytest.raises(ModelError, match="not a readable skops file") as err:
        reg.load(v)
    assert str(path) in err.value.message


def test_missing_model_file_and_corrupt_metadata(reg):
    v = _save(reg)
    (reg.root / v / "model.skops").unlink()
    with pytest.raises(ModelError, match="missing"):
        reg.load(v)
    (reg.root / v / "metadata.json").write_text("{not json")
    with pytest.raises(ModelError, match="corrupt"):
        reg.load(v)
    with pytest.raises(ModelError, match="no model version"):
        reg.load("nope")


def test_other_sklearn_version_warns(reg):
    v = _save(reg)
    md_path = reg.root / v / "metadata.json"
    md = json.loads(md_path.read_text())
    md["libraries"]["sklearn"] = "0.24.2"
    md_path.write_text(json.dumps(md))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = reg.load(v)
    assert any("scikit-learn 0.24.2" in str(w.message) for w in caught)
    assert m.warnings and "retrain" in m.warnings[0]


def _custom(X):
    return X


def test_untrusted_types_are_refused(reg):
    est = Pipeline([("f", FunctionTransformer(_custom))]).fit(np.zeros((3, 1)))
    v = reg.save(est, {"kind": "logistic", "features": []})
    with pytest.raises(ModelError, match=r"does not trust.*_custom"):
        reg.load(v)


def test_promote_and_rollback(reg):
    a, b = _save(reg), _save(reg)
    assert a != b
    reg.promote(a)
    reg.promote(b)
    assert reg.current() == b
    assert [m["current"] for m in reg.list()] == [False, True]
    assert reg.rollback() == a and reg.current() == a
    with pytest.raises(ModelError, match="no earlier"):
        reg.rollback()


def test_linear_contributions_relative_to_training_mean(reg):
    v = _save(reg, "la")
    m = reg.load(v)
    X, _ = synthetic_changes(200, seed=2)
    c = m.contributions(X)
    assert list(c.columns) == ["la_source"]
    z = np.log1p(X["la_source"].to_numpy(dtype=float))
    # contribution grows with la_source and changes sign around the training mean of log1p(la)
    order = np.argsort(z)
    assert np.all(np.diff(c["la_source"].to_numpy()[order]) >= -1e-12)
    assert c["la_source"].min() < 0 < c["la_source"].max()


@pytest.mark.parametrize("kind", ["logistic", "anchored"])
def test_linear_contributions_add_up_to_the_log_odds(reg, kind):
    m = reg.load(_save(reg, kind))
    X, _ = synthetic_changes(100, seed=3)
    p = m.predict_proba(X)
    total = m.contributions(X).sum(axis=1).to_numpy()
    # one pipeline, one sigmoid: the features' parts differ from log-odds by one constant
    rest = np.log(p / (1 - p)) - total
    np.testing.assert_allclose(rest, rest[0], atol=1e-9)
    assert np.ptp(total) > 1.0


def test_tree_contributions_are_zero_at_the_reference(reg):
    v = _save(reg, "hgb")
    m = reg.load(v)
    ref = m.metadata["reference"]
    X, _ = synthetic_changes(3, seed=4)
    at_ref = X.copy()
    for col, val in ref.items():
        at_ref[col] = val
    c = m.contributions(at_ref)
    assert list(c.columns) == m.features
    np.testing.assert_allclose(c.to_numpy(), 0.0, atol=1e-9)
    # one feature away from the reference: only that feature contributes
    moved = at_ref.copy()
    moved["la_source"] = 5000
    c2 = m.contributions(moved)
    others = [f for f in m.features if f != "la_source"]
    np.testing.assert_allclose(c2[others].to_numpy(), 0.0, atol=1e-9)


def test_load_model_prefers_the_repository_model_else_bundled(tmp_path):
    data = tmp_path / "data"
    bundled = load_model(data)
    assert bundled.source == "bundled" and bundled.version.startswith("bundled")
    X, _ = synthetic_changes(20, seed=5)
    assert bundled.predict_proba(X).shape == (20,)
    assert load_bundled().metadata["sha256"] == bundled.metadata["sha256"]
    reg = ModelRegistry(data / "models")
    reg.promote(_save(reg))
    own = load_model(data)
    assert own.source == "repository"


def test_models_cli_list_promote_rollback_and_tampered_error(tmp_path):
    data = tmp_path / "data"
    reg = ModelRegistry(data / "models")
    a, b = _save(reg), _save(reg)
    runner = CliRunner()
    base = ["--data-dir", str(data)]
    r = runner.invoke(cli, ["models", "promote", a, *base])
    assert r.exit_code == 0 and reg.current() == a
    r = runner.invoke(cli, ["models", "promote", b, *base, "--json"])
    assert json.loads(r.output) == {"current": b}
    r = runner.invoke(cli, ["models", "list", *base, "--json"])
    listed = json.loads(r.output)
    assert [x["version"] for x in listed] == [a, b] and listed[1]["current"]
    r = runner.invoke(cli, ["models", "show", a, *base, "--json"])
    assert json.loads(r.output)["version"] == a
    r = runner.invoke(cli, ["models", "rollback", *base])
    assert r.exit_code == 0 and reg.current() == a
    path = reg.root / b / "model.skops"
    path.write_bytes(path.read_bytes()[:-10])
    r = runner.invoke(cli, ["models", "promote", b, *base])
    assert r.exit_code == 2 and "error:" in r.output and "sha256" in r.output
    assert "Traceback" not in r.output and reg.current() == a


def test_a_damaged_registry_is_moved_aside_and_rebuilt_from_the_versions_that_load(
    tmp_path,
) -> None:
    from diffrisk.model.registry import STATE_FILE

    data = tmp_path / "data"
    reg = ModelRegistry(data / "models")
    a, b, c = _save(reg), _save(reg), _save(reg)
    reg.promote(a)
    (reg.root / c / "model.skops").write_bytes(b"garbage")  # c does not verify
    (reg.root / STATE_FILE).write_text("{oops")
    r = CliRunner().invoke(cli, ["models", "list", "--data-dir", str(data), "--json"])
    assert r.exit_code == 0, r.output
    said = " ".join(r.stderr.split())
    assert said.startswith("warning:") and f"{STATE_FILE} was damaged" in said
    assert f"rebuilt it from the 2 model versions that load; current: {b}" in said
    aside = [p for p in reg.root.iterdir() if p.name.startswith(f"{STATE_FILE}.damaged-")]
    assert len(aside) == 1 and aside[0].read_text() == "{oops" and aside[0].name in said
    assert json.loads((reg.root / STATE_FILE).read_text()) == {"current": b, "history": [a, b]}
    assert load_model(data).version == b
    # repaired once: the next run says nothing
    r = CliRunner().invoke(cli, ["models", "list", "--data-dir", str(data), "--json"])
    assert r.exit_code == 0 and r.stderr == ""
    # valid JSON of the wrong shape is damage too
    (reg.root / STATE_FILE).write_text('{"current": 5}')
    with pytest.warns(UserWarning, match="was damaged"):
        assert reg.current() == b


def test_a_deleted_registry_is_rebuilt_and_said_so(tmp_path) -> None:
    from diffrisk.model.registry import STATE_FILE
    from diffrisk.notices import DiffriskWarning

    data = tmp_path / "data"
    reg = ModelRegistry(data / "models")
    a, b = _save(reg), _save(reg)
    reg.promote(a)
    (reg.root / STATE_FILE).unlink()
    # before, the bundled model scored without a word
    with pytest.warns(DiffriskWarning, match=f"{STATE_FILE} was missing: rebuilt it"):
        model = load_model(data)
    assert model.source == "repository" and model.version == b
    assert json.loads((reg.root / STATE_FILE).read_text())["history"] == [a, b]
    # a new registry is written before its first version: no false alarm while training
    fresh = ModelRegistry(tmp_path / "fresh" / "models")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v = _save(fresh)
        assert fresh.current() is None and fresh.versions() == [v]


def test_version_names_from_files_must_be_plain_names_inside_models(tmp_path) -> None:
    from diffrisk.model.registry import STATE_FILE

    data = tmp_path / "data"
    reg = ModelRegistry(data / "models")
    mine = _save(reg)
    reg.promote(mine)
    elsewhere = ModelRegistry(tmp_path / "elsewhere")
    outside = _save(elsewhere)  # a model that loads, outside the data directory
    for bad in (f"../../elsewhere/{outside}", str(elsewhere.root / outside)):
        (reg.root / STATE_FILE).write_text(json.dumps({"current": bad, "history": [mine]}))
        with pytest.raises(ModelError, match="not a plain version name") as err:
            load_model(data)
        assert "delete" in (err.value.hint or "")
        r = CliRunner().invoke(cli, ["models", "show", "--data-dir", str(data)])
        assert r.exit_code == 2 and "not a plain version name" in r.output
    reg._write_state({"current": mine, "history": [mine]})
    # a version directory that is a symbolic link out of models/: not a version
    (reg.root / "linked").symlink_to(elsewhere.root / outside)
    assert reg.versions() == [mine]
    with pytest.raises(ModelError, match="not a model version name"):
        reg.load("linked")
    r = CliRunner().invoke(cli, ["models", "promote", "../x", "--data-dir", str(data)])
    assert r.exit_code == 2 and "not a model version name" in r.output
    # metadata.json names the model file: a plain name in the version's directory too
    md_path = reg.root / mine / "metadata.json"
    md = json.loads(md_path.read_text())
    md_path.write_text(
        json.dumps({**md, "model_file": f"../../../elsewhere/{outside}/model.skops"})
    )
    with pytest.raises(ModelError, match="not a plain file name"):
        load_model(data)


def test_a_damaged_current_model_hint_names_ways_out_that_work(tmp_path) -> None:
    import shutil

    from diffrisk.model.registry import load_model

    data = tmp_path / "data"
    reg = ModelRegistry(data / "models")
    a, b = _save(reg), _save(reg)
    reg.promote(a)
    reg.promote(b)
    path = reg.root / b / "model.skops"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ModelError) as err:
        load_model(data)
    hint = err.value.hint or ""
    assert "diffrisk train --force" in hint and "diffrisk models rollback" in hint
    assert str(reg.root) in hint
    # the model file deleted: the same hint, not "delete the file" again
    path.unlink()
    with pytest.raises(ModelError) as err:
        load_model(data)
    assert err.value.hint == hint
    # the whole version directory deleted: still the way out, not "known versions: none"
    shutil.rmtree(reg.root / b)
    with pytest.raises(ModelError) as err:
        load_model(data)
    assert err.value.hint == hint
    # way 2: roll back to the earlier model
    assert reg.rollback() == a and load_model(data).version == a
    # with no earlier model to go back to, the hint does not offer it
    path = reg.root / a / "model.skops"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ModelError) as err:
        load_model(data)
    assert "rollback" not in (err.value.hint or "") and "train --force" in (err.value.hint or "")
    # way 3: delete the models directory, and the bundled model scores
    shutil.rmtree(reg.root)
    assert load_model(data).source == "bundled"


def test_the_bundled_model_scores_as_it_did_before_the_stage_packages():
    """40 fixed rows, scored by diffrisk 0.1.0 (every type under ``diffrisk.train``) and
    saved in tests/fixtures/golden: the model file and its loading path are unchanged."""
    from pathlib import Path

    import pandas as pd

    from diffrisk.model.registry import load_bundled

    golden = json.loads(
        (
            Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "bundled_scores.json"
        ).read_text()
    )
    model = load_bundled()
    assert model.features == golden["features"]
    rows = pd.DataFrame(golden["rows"], columns=golden["features"])
    rows["fix"] = rows["fix"].astype(bool)
    got = model.predict_proba(rows)
    np.testing.assert_allclose(got, golden["probabilities"], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "path",
    [
        "src/diffrisk/bundled/metadata.json",
        "tests/fixtures/model-calibration-ensemble/metadata.json",
    ],
)
def test_every_metadata_json_written_so_far_reads_and_writes_back_unchanged(path):
    from pathlib import Path

    from diffrisk.model.metadata import ModelMetadata

    raw = json.loads((Path(__file__).resolve().parents[2] / path).read_text())
    md = ModelMetadata.from_dict(raw)
    assert md.kind and md.features and md.sha256 and md.created_at is not None
    assert md.to_dict() == raw and list(md.to_dict()) == list(raw)


def test_saved_metadata_holds_the_builders_keys_then_the_registrys(reg):
    from diffrisk.model.metadata import build_metadata

    X, y = synthetic_changes(300)
    est = fit_estimator("la", X, y)
    md = build_metadata("la", raw_features("la"), code_metrics=False, repository=None)
    v = reg.save(est, md)
    assert list(reg.metadata(v)) == [
        *("kind", "features", "code_metrics", "repository"),
        *("version", "created", "model_file", "sha256", "libraries"),
    ]
    assert reg.load(v).info.age_days() < 1
