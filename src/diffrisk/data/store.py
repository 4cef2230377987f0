"""The data directory: parquet tables written atomically, and their metadata.

Layout of ``DATA_DIR`` (see docs/schema.md for the columns)::

    meta.json               schema version, generation id, mined head, settings
    changes.parquet         one row per non-merge commit
    files.parquet           one row per commit x file
    blob_metrics.parquet    radon metrics cache, by blob id

Every table is written to a temporary file and renamed into place; ``meta.json`` is
written last and names the generation every table must carry, so an interrupted
write is detected as such and the previous dataset is never half-replaced.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from diffrisk import __version__
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
)
from diffrisk.data.schema import SCHEMA_VERSION, BlobMetrics, arrow_schema, column_names
from diffrisk.errors import DataError, RepositoryError

_last_reason = ""


def last_reason() -> str:
    """Why the last :func:`load_dataset` returned None (empty when it did not)."""
    return _last_reason


@dataclass
class Dataset:
    changes: pd.DataFrame
    files: pd.DataFrame
    blob_metrics: dict[str, BlobMetrics]
    meta: dict[str, Any]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_beside(path: Path) -> str:
    """A temporary file next to ``path`` with the permissions a plain open() would give."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    return tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def set_aside(path: Path) -> Path:
    """Rename a damaged ``path`` to ``NAME.damaged-<UTC time>`` beside it, where nothing
    reads it again but a person can; returns the new path."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    aside, n = path.with_name(f"{path.name}.damaged-{stamp}"), 2
    while aside.exists():
        aside, n = path.with_name(f"{path.name}.damaged-{stamp}-{n}"), n + 1
    os.rename(path, aside)
    return aside


def atomic_write_table(path: Path, table: pa.Table, generation: str | None = None) -> None:
    """Write a parquet file via a temporary file and a rename."""
    if generation is not None:
        md = dict(table.schema.metadata or {})
        md[b"diffrisk.generation"] = generation.encode()
        table = table.replace_schema_metadata(md)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(path)
    try:
        pq.write_table(table, tmp, compression="zstd", write_page_checksum=True)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def normalize(table: str, df: pd.DataFrame) -> pd.DataFrame:
    """Columns in schema order with schema types (via Arrow)."""
    return to_arrow(table, df).to_pandas()


def to_arrow(table: str, df: pd.DataFrame) -> pa.Table:
    schema = arrow_schema(table)
    df = df.copy()
    for name in column_names(table):
        if name not in df.columns:
            df[name] = None
    if (
        table == "changes"
        and len(df)
        and not pd.api.types.is_datetime64_any_dtype(df["author_time"])
    ):
        df["author_time"] = pd.to_datetime(df["author_time"].astype("int64"), unit="s", utc=True)
    return pa.Table.from_pandas(df[column_names(table)], schema=schema, preserve_index=False)


def _blob_table(metrics: dict[str, BlobMetrics]) -> pa.Table:
    oids = list(metrics)
    ms = [metrics[o] for o in oids]
    return pa.Table.from_pydict(
        {
            "blob": oids,
            "ok": [m.ok for m in ms],
            "cc": [m.cc for m in ms],
            "mi": [m.mi for m in ms],
            "hv": [m.hv for m in ms],
            "functions": [[{"name": n, "cc": c, "h": h} for n, c, h in m.functions] for m in ms],
        },
        schema=arrow_schema("blob_metrics"),
    )


def _blob_dict(table: pa.Table) -> dict[str, BlobMetrics]:
    d = table.to_pydict()
    out = {}
    for oid, ok, cc, mi, hv, funcs in zip(
        d["blob"], d["ok"], d["cc"], d["mi"], d["hv"], d["functions"], strict=True
    ):
        out[oid] = BlobMetrics(
            ok=ok,
            cc=cc,
            mi=mi,
            hv=hv,
            functions=tuple((f["name"], f["cc"], f["h"]) for f in funcs or ()),
        )
    return out


def read_meta(data_dir: Path) -> dict[str, Any] | None:
    p = data_dir / META_FILE
    if not p.exists():
        return None
    try:
        meta = json.loads(p.read_text())
        if not isinstance(meta, dict):
            raise ValueError("not an object")
        return meta
    except (ValueError, OSError) as err:
        raise DataError(f"{p} is corrupt ({err})", hint="run `diffrisk mine --rebuild`") from None


def _read_table(path: Path, generation: str) -> pa.Table:
    try:
        table = pq.read_table(path, page_checksum_verification=True)
    except (OSError, pa.ArrowInvalid) as err:
        raise DataError(
            f"{path} is corrupt or unreadable ({err})", hint="run `diffrisk mine --rebuild`"
        ) from None
    gen = (table.schema.metadata or {}).get(b"diffrisk.generation", b"").decode()
    if gen != generation:
        raise DataError(
            f"{path} does not belong to this dataset (an interrupted write?)",
            hint="run `diffrisk mine --rebuild`",
        )
    return table


def check_repository(
    meta: dict[str, Any], repo: Any, data_dir: Path, *, shared: bool = False
) -> None:
    """Refuse a dataset mined from another repository (its head is not in ``repo``).

    ``shared``: the caller knows the dataset shares commits with ``repo`` (a rewritten
    branch whose old head is gone), which is not another repository.
    """
    head = meta.get("head")
    if not head or shared:
        return
    if not repo.run("rev-parse", "--verify", "--quiet", f"{head}^{{commit}}", check=False).strip():
        raise RepositoryError(
            f"{data_dir} was mined from another repository (its head {head[:12]} is not in {repo.path})",
            hint="pass the repository the dataset was mined from, or use another --data-dir "
            "(`diffrisk mine --rebuild` replaces it)",
        )


def load_dataset(data_dir: Path, settings: dict[str, Any] | None = None) -> Dataset | None:
    """The stored dataset, or None when there is none or it cannot be reused.

    ``settings`` are the mining settings the caller will use; a dataset mined with other
    settings or another schema version is not reused (:func:`last_reason` says why).
    A corrupt dataset raises :class:`DataError` unless ``settings`` is given (mining
    rebuilds it from git instead).
    """
    global _last_reason
    _last_reason = ""
    try:
        meta = read_meta(data_dir)
        if meta is None:
            _last_reason = "no dataset yet"
            if settings is None:
                raise DataError(
                    f"no mined dataset in {data_dir}",
                    hint="run `diffrisk mine` first (or pass --data-dir)",
                )
            return None
        if meta.get("schema_version") != SCHEMA_VERSION:
            _last_reason = (
                f"dataset schema version {meta.get('schema_version')} != {SCHEMA_VERSION}"
            )
            if settings is None:
                raise DataError(f"{data_dir}: {_last_reason}", hint="run `diffrisk mine --rebuild`")
            return None
        if settings is not None and meta.get("settings") != settings:
            _last_reason = "mining settings changed since the dataset was mined"
            return None
        gen = meta["generation"]
        changes = _read_table(data_dir / CHANGES_FILE, gen).to_pandas()
        files = _read_table(data_dir / FILES_FILE, gen).to_pandas()
        bm_path = data_dir / BLOB_METRICS_FILE
        blobs = _blob_dict(_read_table(bm_path, gen)) if bm_path.exists() else {}
    except DataError as err:
        if settings is None:
            raise
        _last_reason = f"{err.message}; rebuilt from git"
        return None
    return Dataset(changes, files, blobs, meta)


def write_meta(
    data_dir: Path, *, head: str, settings: dict[str, Any], generation: str | None = None
) -> None:
    try:
        old = read_meta(data_dir) or {}
    except DataError:
        old = {}  # replacing a corrupt meta.json
    meta = {
        "schema_version": SCHEMA_VERSION,
        "diffrisk_version": __version__,
        "generation": generation or old.get("generation"),
        "head": head,
        "settings": settings,
        "mined_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_bytes(data_dir / META_FILE, json.dumps(meta, indent=2).encode())


def save_dataset(
    data_dir: Path,
    changes: pd.DataFrame,
    files: pd.DataFrame,
    blob_metrics: dict[str, BlobMetrics],
    *,
    head: str,
    settings: dict[str, Any],
) -> None:
    """Write all tables to temporary files, then swap them in with signals blocked."""
    gen = uuid.uuid4().hex
    tables = {
        CHANGES_FILE: to_arrow("changes", changes),
        FILES_FILE: to_arrow("files", files),
        BLOB_METRICS_FILE: _blob_table(blob_metrics),
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    tmps: dict[str, str] = {}
    try:
        for name, table in tables.items():
            md = dict(table.schema.metadata or {})
            md[b"diffrisk.generation"] = gen.encode()
            tmp = _temp_beside(data_dir / name)
            tmps[name] = tmp
            pq.write_table(
                table.replace_schema_metadata(md), tmp, compression="zstd", write_page_checksum=True
            )
        with _signals_blocked():
            for name, tmp in tmps.items():
                os.replace(tmp, data_dir / name)
            tmps.clear()
            write_meta(data_dir, head=head, settings=settings, generation=gen)
    finally:
        for tmp in tmps.values():
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    ignore_in_git(data_dir)


#: What diffrisk keeps in a data directory: a name that is one of these or starts with
#: one (``predictions.parquet.lock``, ``registry.json.damaged-...``), its temporary files
#: (``.NAME.*.tmp``) and ``mine --rebuild``'s ``.rebuild-*`` directory.
OWN_NAMES = (
    META_FILE,
    CHANGES_FILE,
    FILES_FILE,
    BLOB_METRICS_FILE,
    LABELS_FILE,
    LINKS_FILE,
    SZZ_CACHE_FILE,
    PREDICTIONS_FILE,
    MODELS_DIR,
    ".diffrisk.lock",
    ".rebuild-",
    ".gitignore",
)


def ignore_in_git(data_dir: Path) -> None:
    """Write ``DATA_DIR/.gitignore`` (``*``: inside a work tree, ``git add -A`` must not
    pick the data up) when there is none and the directory holds diffrisk's files alone:
    never into a work tree's root or a folder that holds anything else."""
    ignore = data_dir / ".gitignore"
    try:
        if ignore.exists() or not all(
            p.name.startswith(OWN_NAMES) or (p.name.startswith(".") and p.name.endswith(".tmp"))
            for p in data_dir.iterdir()
        ):
            return
        atomic_write_bytes(ignore, b"# diffrisk's data: not part of the repository\n*\n")
    except OSError:
        pass  # only a convenience


@contextlib.contextmanager
def _signals_blocked():
    """Keep Ctrl-C and kill (TERM) from landing between the renames of one dataset."""
    sigs = {signal.SIGINT, signal.SIGTERM}
    if hasattr(signal, "pthread_sigmask"):
        old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
    else:  # pragma: no cover
        yield
