"""The data directory object (``diffrisk.data.datadir.DataDir``) on real data directories:
a built repository, mined and labelled."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from diffrisk.config import LabelConfig, MineConfig
from diffrisk.data import outcomes, predlog, store
from diffrisk.data.datadir import DataDir
from diffrisk.data.paths import default_data_dir
from diffrisk.errors import DataError
from diffrisk.labelling.label import label, load_labels, load_links
from diffrisk.mining.mine import mine
from repobuilder import RepoBuilder

MINE = MineConfig(code_metrics=False, workers=1)


def _history(b: RepoBuilder, n: int, start_day: float = 0) -> None:
    """n (change, fix) pairs on separate files: SZZ labels each change buggy."""
    for i in range(n):
        k = int(start_day) + i
        b.commit({f"src/m{k}.py": f"v = {k}\n"}, day=start_day + 2 * i, message=f"add m{k}")
        b.commit(
            {f"src/m{k}.py": f"v = {k + 100}\n"}, day=start_day + 2 * i + 1, message=f"fix m{k}"
        )


@pytest.fixture
def labelled(builder: RepoBuilder, tmp_path: Path) -> DataDir:
    """A data directory with a mined dataset and its labels."""
    _history(builder, 4)
    data = tmp_path / "data"
    mine(builder.path, data, config=MINE)
    label(builder.path, data, LabelConfig(workers=1))
    return DataDir(data)


def _error(call) -> DataError:
    with pytest.raises(DataError) as info:
        call()
    return info.value


def test_paths_name_the_files_of_one_directory(tmp_path: Path) -> None:
    d = DataDir(str(tmp_path))
    assert d.root == tmp_path and d == DataDir(tmp_path) and len({d, DataDir(tmp_path)}) == 1
    assert {
        "meta": d.meta_path,
        "changes": d.changes_path,
        "files": d.files_path,
        "blob_metrics": d.blob_metrics_path,
        "labels": d.labels_path,
        "links": d.links_path,
        "cache": d.szz_cache_path,
        "predictions": d.predictions_path,
        "models": d.models_path,
    } == {
        "meta": tmp_path / "meta.json",
        "changes": tmp_path / "changes.parquet",
        "files": tmp_path / "files.parquet",
        "blob_metrics": tmp_path / "blob_metrics.parquet",
        "labels": tmp_path / "labels.parquet",
        "links": tmp_path / "szz_links.parquet",
        "cache": tmp_path / "szz_cache.parquet",
        "predictions": tmp_path / "predictions.parquet",
        "models": tmp_path / "models",
    }
    repo = tmp_path / "repo"
    assert DataDir.of(repo).root == default_data_dir(repo)
    assert DataDir.of(repo, tmp_path / "elsewhere").root == tmp_path / "elsewhere"


def test_the_readers_read_what_mining_and_labelling_wrote(labelled: DataDir) -> None:
    d = labelled
    for name in ("meta.json", "changes.parquet", "labels.parquet", "szz_links.parquet"):
        assert (d.root / name).exists()
    assert d.meta() == store.read_meta(d.root)
    ds, again = d.dataset(), store.load_dataset(d.root)
    assert again is not None and ds.meta == again.meta
    pd.testing.assert_frame_equal(ds.changes, again.changes)
    assert len(ds.changes) == 8
    labels = d.labels()
    assert labels is not None and labels["label_state"].value_counts().to_dict()["buggy"] == 4
    # the label stage's own readers read the same tables (they delegate here in the end)
    pd.testing.assert_frame_equal(labels, load_labels(d.root))
    pd.testing.assert_frame_equal(d.links(), load_links(d.root))
    assert d.predictions().empty and list(d.predictions().columns) == list(predlog.empty().columns)


def test_labels_read_only_the_columns_asked_for(labelled: DataDir) -> None:
    cols = ("sha", "label", "is_fix")
    part = labelled.labels(columns=cols)
    assert list(part.columns) == list(cols)
    pd.testing.assert_frame_equal(part, pd.read_parquet(labelled.labels_path, columns=list(cols)))
    full = labelled.labels(need=("sha", "label_state"))
    assert {"fixed_by", "label_state", "source_files"} <= set(full.columns)


def test_missing_labels_are_an_error_or_none(builder: RepoBuilder, tmp_path: Path) -> None:
    _history(builder, 1)
    data = tmp_path / "data"
    mine(builder.path, data, config=MINE)
    d = DataDir(data)
    err = _error(d.labels)
    assert (err.message, err.hint) == (f"no labels in {data}", "run `diffrisk label` first")
    assert d.labels(required=False) is None and d.links(required=False) is None
    assert _error(d.links).message == f"no SZZ links in {data}"
    # the label stage's readers say the same
    assert _error(lambda: load_labels(data)).message == err.message
    assert outcomes.load_labels(data) is None


def test_labels_of_an_older_dataset(builder: RepoBuilder, labelled: DataDir) -> None:
    before = labelled.labels()
    _history(builder, 1, start_day=50)
    mine(builder.path, labelled.root, config=MINE)  # a new generation: the labels are stale
    err = _error(labelled.labels)
    assert (
        err.message
        == f"{labelled.labels_path} was computed for an older dataset (mined again since)"
    )
    assert err.hint == "run `diffrisk label` again"
    assert _error(labelled.links).message.startswith(f"{labelled.links_path} was computed")
    theirs = _error(lambda: load_labels(labelled.root))
    assert (theirs.message, theirs.hint) == (err.message, err.hint)
    # readers that join labels to commits by sha read them all the same
    pd.testing.assert_frame_equal(labelled.labels(stale_ok=True), before)
    stale = outcomes.load_labels(labelled.root)
    assert stale is not None and len(stale) == len(before)
    label(builder.path, labelled.root, LabelConfig(workers=1))
    assert len(labelled.labels()) == len(before) + 2


@pytest.mark.parametrize("stale_ok", [False, True])
def test_a_corrupt_labels_file_says_to_label_again(labelled: DataDir, stale_ok: bool) -> None:
    labelled.labels_path.write_bytes(b"PAR1 not a parquet file")
    err = _error(lambda: labelled.labels(stale_ok=stale_ok))
    assert err.message.startswith(f"{labelled.labels_path} is corrupt or unreadable (")
    assert err.hint == "run `diffrisk label` again"
    theirs = _error(lambda: load_labels(labelled.root))
    assert (theirs.message, theirs.hint) == (err.message, err.hint)
    assert _error(lambda: outcomes.load_labels(labelled.root)).message == err.message


def test_a_labels_file_without_the_columns_a_reader_needs(labelled: DataDir) -> None:
    pd.DataFrame({"sha": ["a" * 40], "label": [1]}).to_parquet(labelled.labels_path)
    err = _error(
        lambda: labelled.labels(required=False, need=("sha", "label_state"), stale_ok=True)
    )
    assert err.message == f"{labelled.labels_path} lacks columns ['label_state']"
    assert err.hint == "run `diffrisk label` again"
    err = _error(lambda: labelled.labels(columns=("sha", "label", "is_fix"), stale_ok=True))
    assert err.message == f"{labelled.labels_path} lacks columns ['is_fix']"
    assert _error(lambda: outcomes.load_labels(labelled.root)).message.endswith(
        "lacks columns ['label_state']"
    )


def test_no_dataset_and_a_corrupt_meta_are_errors(tmp_path: Path) -> None:
    d = DataDir(tmp_path / "none")
    assert d.meta() is None
    err = _error(d.dataset)
    assert err.message == f"no mined dataset in {d.root}" and "diffrisk mine" in (err.hint or "")
    d.root.mkdir()
    d.meta_path.write_text("{not json")
    assert "is corrupt" in _error(d.meta).message
    assert _error(d.dataset).hint == "run `diffrisk mine --rebuild`"


def test_predictions_are_the_log(labelled: DataDir) -> None:
    predlog.append(labelled.root, [{"head_sha": "a" * 40, "probability": 0.4, "level": "medium"}])
    log = labelled.predictions()
    assert log["head_sha"].tolist() == ["a" * 40]
    pd.testing.assert_frame_equal(log, predlog.load_predictions(labelled.root))
