"""The combined dataset: every repository's changes with their labels, one Parquet
partition per repository, under ``ROOT/dataset/``.

Layout (Hive partitioning; the value is the URL-encoded ``owner/name``)::

    ROOT/dataset/repository=pallets%2Fflask/part-0.parquet
    ROOT/dataset/repository=psf%2Frequests/part-0.parquet

Each partition is the repository's ``changes.parquet`` joined with its ``labels.parquet``
(the label columns are null before ``org label``, and for commits mined after the
last labelling), cast to one schema
(:func:`combined_schema`), so that ``pandas.read_parquet(ROOT / "dataset")``,
``pyarrow.dataset.dataset(..., partitioning="hive")`` and
``dask.dataframe.read_parquet(...)`` read all of them as one table with a ``repository``
column. A partition is written to a hidden temporary name and renamed into place by the
task that mined or labelled its repository: a reader sees the old partition or the new
one, never a part of one (hidden names are skipped by all three readers).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, unquote

import pandas as pd
import pyarrow as pa

from diffrisk.data.datadir import DataDir
from diffrisk.data.schema import arrow_schema
from diffrisk.data.store import atomic_write_table

DATASET_DIR = "dataset"
PARTITION = "repository"
PART_FILE = "part-0.parquet"


def dataset_dir(root: str | Path) -> Path:
    return Path(root) / DATASET_DIR


def partition_dir(root: str | Path, name: str) -> Path:
    return dataset_dir(root) / f"{PARTITION}={quote(name, safe='')}"


def partition_name(directory: str | Path) -> str | None:
    """``owner/name`` of a partition directory, or None."""
    d = Path(directory).name
    prefix = f"{PARTITION}="
    return unquote(d[len(prefix) :]) if d.startswith(prefix) else None


def combined_schema() -> pa.Schema:
    """The changes' columns, then the labels' (``sha`` once)."""
    changes = arrow_schema("changes")
    labels = [f for f in arrow_schema("labels") if f.name != "sha"]
    return pa.schema([*changes, *labels])


def combined_table(data_dir: str | Path) -> pa.Table:
    """One repository's changes joined with its labels, in the combined schema. After a
    mining that found new commits and before the next labelling, the labels are the last
    labelling's (joined by sha: the new commits' label columns are null)."""
    dd = DataDir(data_dir)
    changes = dd.dataset().changes
    labels = dd.labels(required=False, stale_ok=True)
    frame = changes if labels is None else changes.merge(labels, on="sha", how="left")
    schema = combined_schema()
    cols = {}
    for f in schema:
        if f.name in frame.columns:
            cols[f.name] = pa.array(_values(frame[f.name]), type=f.type, from_pandas=True)
        else:
            cols[f.name] = pa.nulls(len(frame), type=f.type)
    return pa.table(cols, schema=schema)


def _values(s: pd.Series) -> list[object] | pd.Series:
    if s.dtype == object:
        return [None if _missing(v) else (list(v) if hasattr(v, "tolist") else v) for v in s]
    return s


def _missing(v: object) -> bool:
    if v is None:
        return True
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False  # a list or array is a value


def write_partition(root: str | Path, name: str, data_dir: str | Path) -> int:
    """(Re)write ``name``'s partition from its data directory; returns its rows."""
    table = combined_table(data_dir)
    atomic_write_table(partition_dir(root, name) / PART_FILE, table)
    return table.num_rows


def read_dataset(
    root: str | Path, repositories: list[str] | None = None, columns: list[str] | None = None
) -> pd.DataFrame:
    """The combined dataset (or the named repositories') as one frame, with a
    ``repository`` column."""
    import pyarrow.dataset as pds

    ds = pds.dataset(dataset_dir(root), format="parquet", partitioning="hive")
    flt = None
    if repositories is not None:
        flt = pds.field(PARTITION).isin(repositories)
    return ds.to_table(columns=columns, filter=flt).to_pandas()


def partitions(root: str | Path) -> list[str]:
    """The repositories the combined dataset holds."""
    d = dataset_dir(root)
    if not d.is_dir():
        return []
    return sorted(
        n
        for p in d.iterdir()
        if p.is_dir() and (p / PART_FILE).is_file() and (n := partition_name(p)) is not None
    )
