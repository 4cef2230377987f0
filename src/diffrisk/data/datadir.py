"""The data directory as one object, :class:`DataDir`: where each of its files lives, and
the one reader of each.

``DATA_DIR`` (default ``REPO/.diffrisk``) holds what every stage writes: the mined dataset
(``meta.json``, ``changes.parquet``, ``files.parquet``, ``blob_metrics.parquet``; written
by :mod:`diffrisk.data.store`), the SZZ labels (``labels.parquet``, ``szz_links.parquet``,
``szz_cache.parquet``), the prediction log (``predictions.parquet``,
:mod:`diffrisk.data.predlog`) and the models (``models/``). The stages read these files
through a :class:`DataDir`, so what makes a file unusable (corrupt, or computed for an
older dataset) and what to do about it is said in one place.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, Literal, overload

import pandas as pd
import pyarrow.parquet as pq

from diffrisk.data import predlog, store
from diffrisk.data.paths import (
    BLOB_METRICS_FILE,
    CHANGES_FILE,
    FILES_FILE,
    LABELS_FILE,
    LINKS_FILE,
    META_FILE,
    MODELS_DIR,
    PREDICTIONS_FILE,
    SZZ_CACHE_FILE,
    default_data_dir,
)
from diffrisk.errors import DataError

_LABEL_AGAIN = "run `diffrisk label` again"


class DataDir:
    """One data directory: its files' paths and their readers.

    ``DataDir(path)`` names the directory as given (messages say it that way); nothing is
    read or made until a reader is called.
    """

    __slots__ = ("root",)

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @classmethod
    def of(cls, repo: str | Path, data_dir: str | Path | None = None) -> DataDir:
        """``data_dir``, or the repository's default one (:func:`default_data_dir`)."""
        return cls(data_dir if data_dir is not None else default_data_dir(repo))

    def __repr__(self) -> str:
        return f"DataDir({str(self.root)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DataDir) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    # -- paths ----------------------------------------------------------------------------

    @property
    def meta_path(self) -> Path:
        return self.root / META_FILE

    @property
    def changes_path(self) -> Path:
        return self.root / CHANGES_FILE

    @property
    def files_path(self) -> Path:
        return self.root / FILES_FILE

    @property
    def blob_metrics_path(self) -> Path:
        return self.root / BLOB_METRICS_FILE

    @property
    def labels_path(self) -> Path:
        return self.root / LABELS_FILE

    @property
    def links_path(self) -> Path:
        return self.root / LINKS_FILE

    @property
    def szz_cache_path(self) -> Path:
        return self.root / SZZ_CACHE_FILE

    @property
    def predictions_path(self) -> Path:
        return self.root / PREDICTIONS_FILE

    @property
    def models_path(self) -> Path:
        return self.root / MODELS_DIR

    # -- readers --------------------------------------------------------------------------

    def meta(self) -> dict[str, Any] | None:
        """``meta.json`` (None before the first ``diffrisk mine``); a corrupt one is a
        :class:`DataError`."""
        return store.read_meta(self.root)

    def dataset(self) -> store.Dataset:
        """The mined dataset; a :class:`DataError` when there is none, or it is corrupt or
        of another schema version (:func:`diffrisk.data.store.load_dataset`)."""
        ds = store.load_dataset(self.root)
        assert ds is not None  # without settings, load_dataset raises instead
        return ds

    @overload
    def labels(
        self,
        required: Literal[True] = ...,
        *,
        columns: Sequence[str] | None = ...,
        need: Collection[str] = ...,
        stale_ok: bool = ...,
    ) -> pd.DataFrame: ...

    @overload
    def labels(
        self,
        required: bool,
        *,
        columns: Sequence[str] | None = ...,
        need: Collection[str] = ...,
        stale_ok: bool = ...,
    ) -> pd.DataFrame | None: ...

    def labels(
        self,
        required: bool = True,
        *,
        columns: Sequence[str] | None = None,
        need: Collection[str] = (),
        stale_ok: bool = False,
    ) -> pd.DataFrame | None:
        """``labels.parquet``: what the label stage found for each mined change.

        ``required``: a missing file is a :class:`DataError` ("run `diffrisk label`
        first"); else it reads as None (the history was not labelled yet). ``columns``:
        read only these; ``need``: columns the file must have (a file lacking one of
        either is a DataError). A labels file computed for an older dataset (mined again
        since) is a DataError unless ``stale_ok``: readers that join the labels to commits
        by sha (scoring, the monitor) may use the labels of an older mining, training
        may not.
        """
        return self._labelled(
            LABELS_FILE, "labels", required, columns=columns, need=need, stale_ok=stale_ok
        )

    @overload
    def links(self, required: Literal[True] = ...) -> pd.DataFrame: ...

    @overload
    def links(self, required: bool) -> pd.DataFrame | None: ...

    def links(self, required: bool = True) -> pd.DataFrame | None:
        """``szz_links.parquet``: every fix -> inducing link the label stage found, with why
        it was dropped, if it was; of this dataset (as :meth:`labels`)."""
        return self._labelled(LINKS_FILE, "SZZ links", required)

    def predictions(self) -> pd.DataFrame:
        """The prediction log (:func:`diffrisk.data.predlog.load_predictions`: empty when
        nothing was logged yet; a damaged log is set aside with a notice)."""
        return predlog.load_predictions(self.root)

    def _labelled(
        self,
        name: str,
        what: str,
        required: bool,
        *,
        columns: Sequence[str] | None = None,
        need: Collection[str] = (),
        stale_ok: bool = False,
    ) -> pd.DataFrame | None:
        """A table the label stage wrote for one generation of the dataset."""
        path = self.root / name
        if not path.exists():
            if required:
                raise DataError(f"no {what} in {self.root}", hint="run `diffrisk label` first")
            return None
        meta = None if stale_ok else self.meta()
        try:
            table = pq.read_table(
                path,
                columns=list(columns) if columns is not None else None,
                use_pandas_metadata=True,
            )
        except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
            lacking = self._lacking(path, [*(columns or ()), *need])
            if lacking:
                raise DataError(f"{path} lacks columns {lacking}", hint=_LABEL_AGAIN) from None
            raise _unreadable(path, err) from None
        lacking = sorted(set(need) - set(table.column_names))
        if lacking:
            raise DataError(f"{path} lacks columns {lacking}", hint=_LABEL_AGAIN)
        gen = (table.schema.metadata or {}).get(b"diffrisk.generation", b"").decode()
        if meta is not None and gen != meta.get("generation"):
            raise DataError(
                f"{path} was computed for an older dataset (mined again since)", hint=_LABEL_AGAIN
            )
        try:
            return table.to_pandas()
        except (ValueError, TypeError, KeyError) as err:
            raise _unreadable(path, err) from None

    @staticmethod
    def _lacking(path: Path, names: Sequence[str]) -> list[str]:
        """Which of ``names`` a readable parquet file lacks (none when it is unreadable)."""
        if not names:
            return []
        try:
            have = set(pq.read_schema(path).names)
        except (OSError, ValueError):
            return []
        return sorted(set(names) - have)


def _unreadable(path: Path, err: Exception) -> DataError:
    return DataError(f"{path} is corrupt or unreadable ({err})", hint=_LABEL_AGAIN)
