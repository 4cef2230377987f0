"""The prediction log: every ``diffrisk score`` and ``gate`` run leaves one row.

``DATA_DIR/predictions.parquet`` (columns in :data:`diffrisk.data.schema.PREDICTIONS`) holds,
per pull-request head commit, what diffrisk predicted before the merge: probability,
level, gate decision and the model that said so. ``diffrisk monitor`` later joins it to
the SZZ labels to count how many of the changes found buggy were flagged in time.

Appending reads the old file and writes old + new rows through a temporary file and a
rename (:func:`diffrisk.data.store.atomic_write_table`), under an exclusive lock on
``predictions.parquet.lock``: an interrupted or failing write leaves the previous log
intact, and concurrent runs do not lose each other's rows. Rows are deduplicated by
head sha, the last write winning, except that a run without a gate decision (``score``)
keeps the decision an earlier ``gate`` run recorded for the same head.

A log that cannot be read (damaged, or of another diffrisk version) is renamed to
``predictions.parquet.damaged-<time>`` with a notice, and a new log starts: one warning,
not one on every run. A data directory diffrisk may not write to leaves the prediction
unlogged with a :class:`~diffrisk.errors.DataError` (``score`` warns and goes on).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from diffrisk.data.paths import PREDICTIONS_FILE
from diffrisk.data.schema import arrow_schema, column_names
from diffrisk.data.store import atomic_write_table, set_aside
from diffrisk.errors import DataError, DiffriskError
from diffrisk.levels import LEVELS
from diffrisk.notices import notice

#: Columns a log written by an earlier version may lack (read as nulls).
OPTIONAL = frozenset({"commit_keys"})
_SHA = re.compile(r"^[0-9a-f]{7,64}$")


def commit_key(author_email: str, author_time: int) -> str:
    """How a commit is found again after a rebase (which keeps author and author date)."""
    return f"{author_email.strip().lower()}|{int(author_time)}"


def path_of(data_dir: str | Path) -> Path:
    return Path(data_dir) / PREDICTIONS_FILE


def empty() -> pd.DataFrame:
    """An empty log with the schema's columns and types."""
    return arrow_schema("predictions").empty_table().to_pandas()


def load_predictions(data_dir: str | Path) -> pd.DataFrame:
    """The logged predictions (an empty frame when nothing was logged yet, or when the
    log was damaged: then it is set aside, with a notice)."""
    p = path_of(data_dir)
    if not p.exists():
        return empty()
    try:
        return _read(p).to_pandas()
    except DataError as err:
        damaged = err
    try:
        with _locked(p):
            return _load_or_set_aside(p)
    except OSError:  # cannot take the lock or rename here (read-only): say what is wrong
        raise damaged from None


def _load_or_set_aside(p: Path) -> pd.DataFrame:
    """The log at ``p``; a damaged one is renamed aside (with a notice) and an empty log
    returned. The caller holds the lock, so no other run replaces it meanwhile."""
    if not p.exists():
        return empty()
    try:
        return _read(p).to_pandas()
    except DataError as err:
        aside = set_aside(p)
        notice(
            f"the prediction log {p} could not be read ({err.message}): moved it to "
            f"{aside.name} and started a new log"
        )
        return empty()


def _read(p: Path) -> pa.Table:
    try:
        table = pq.read_table(p)
    except (OSError, pa.ArrowInvalid) as err:
        if isinstance(err, PermissionError):
            raise
        raise DataError(
            f"{p} is corrupt or unreadable ({err})",
            hint=f"move {p} away; the next score or gate run starts a new log",
        ) from None
    missing = set(column_names("predictions")) - set(table.column_names)
    for name in sorted(missing & OPTIONAL):  # logs written before the column existed
        table = table.append_column(
            name, pa.nulls(len(table), arrow_schema("predictions").field(name).type)
        )
    missing -= OPTIONAL
    if missing:
        raise DataError(
            f"{p} lacks columns {sorted(missing)} (written by another diffrisk version?)",
            hint=f"move {p} away; the next score or gate run starts a new log",
        )
    try:
        return table.select(column_names("predictions")).cast(arrow_schema("predictions"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError, ValueError) as err:
        raise DataError(
            f"{p} has columns of other types (written by another diffrisk version?): {err}",
            hint=f"move {p} away; the next score or gate run starts a new log",
        ) from None


@contextlib.contextmanager
def _locked(p: Path) -> Iterator[None]:
    """An exclusive advisory lock around read-modify-write (POSIX; a no-op elsewhere)."""
    p.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(p.with_name(p.name + ".lock"), "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _time(v: Any) -> pd.Timestamp:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return pd.Timestamp(datetime.now(timezone.utc)).floor("s")
    if isinstance(v, int | float):
        t = pd.Timestamp(int(v), unit="s", tz="UTC")
    else:
        t = pd.Timestamp(v)
        t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.floor("s")


def _record(r: Mapping[str, Any]) -> dict[str, Any]:
    """Validate and normalise one record to the schema's Python values."""
    head = str(r.get("head_sha") or "").strip().lower()
    if not _SHA.match(head):
        raise DataError(f"prediction record has no valid head_sha ({r.get('head_sha')!r})")
    try:
        prob = float(r["probability"])
    except (KeyError, TypeError, ValueError):
        raise DataError(f"prediction record for {head[:12]} has no numeric probability") from None
    if not 0.0 <= prob <= 1.0:
        raise DataError(f"prediction record for {head[:12]}: probability {prob} is not in [0, 1]")
    level = r.get("level")
    if level is not None and level not in LEVELS:
        raise DataError(f"prediction record for {head[:12]}: unknown level {level!r}")
    feats = r.get("features")
    if feats is not None and not isinstance(feats, str):
        feats = json.dumps(feats, sort_keys=True, default=_json_default)
    pr = r.get("pr")
    commits = [str(c) for c in (r.get("commits") or [])]
    keys = [str(k) for k in (r.get("commit_keys") or [])]
    return {
        "head_sha": head,
        "base_sha": (str(r["base_sha"]).lower() if r.get("base_sha") else None),
        "pr": int(pr)
        if pr is not None and not (isinstance(pr, float) and math.isnan(pr))
        else None,
        "repo": r.get("repo"),
        "commits": commits,
        "commit_keys": keys,
        "features": feats,
        "probability": prob,
        "level": level,
        "decision": r.get("decision"),
        "model_version": r.get("model_version"),
        "model_source": r.get("model_source"),
        "source": r.get("source") or "score",
        "time": _time(r.get("time")),
    }


def _json_default(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    return str(v)


def append(data_dir: str | Path, records: Iterable[Mapping[str, Any]] | pd.DataFrame) -> int:
    """Add prediction records to the log; returns the number of rows the log now holds.

    Each record is a mapping with the :data:`~diffrisk.data.schema.PREDICTIONS` columns
    (``head_sha`` and ``probability`` required; ``features`` may be a dict, stored as
    JSON; ``time`` defaults to now).
    """
    if isinstance(records, pd.DataFrame):
        records = records.to_dict("records")
    new = [_record(r) for r in records]
    p = path_of(data_dir)
    try:
        with _locked(p):
            old = _load_or_set_aside(p)
            if not new:
                return len(old)
            add = pd.DataFrame(new, columns=column_names("predictions"))
            add["time"] = pd.to_datetime(add["time"], utc=True)
            frame = add if old.empty else pd.concat([old, add], ignore_index=True)
            frame = _dedupe(frame)
            table = pa.Table.from_pandas(
                frame, schema=arrow_schema("predictions"), preserve_index=False
            )
            atomic_write_table(p, table)
    except OSError as err:  # a read-only data directory, a full disk
        raise DataError(
            f"cannot update the prediction log {p}: {err.strerror or err}",
            hint="make the data directory writable (or pass --no-log to `diffrisk score`)",
        ) from None
    return len(frame)


def _dedupe(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per head sha: the last one, keeping an earlier gate decision when it has none."""
    frame = frame.reset_index(drop=True)
    decision = frame.groupby("head_sha", sort=False)["decision"].transform(lambda s: s.ffill())
    frame["decision"] = frame["decision"].where(frame["decision"].notna(), decision)
    frame = frame.drop_duplicates("head_sha", keep="last")
    return frame.sort_values("time", kind="stable").reset_index(drop=True)


def _pr_from_env() -> int | None:
    """The pull request number in GitHub's ``GITHUB_REF``, or GitLab's merge request IID."""
    m = re.match(r"^refs/pull/(\d+)/", os.environ.get("GITHUB_REF", ""))
    if m:
        return int(m.group(1))
    iid = os.environ.get("CI_MERGE_REQUEST_IID", "").strip()
    return int(iid) if os.environ.get("GITLAB_CI") == "true" and iid.isdigit() else None


def append_from_score(
    data_dir: str | Path,
    result: Mapping[str, Any],
    decision: str | None = None,
    *,
    pr: int | None = None,
    source: str | None = None,
) -> int:
    """Log a ``ScoreResult.to_dict()``; returns the number of rows in the log.

    ``decision`` is the gate's outcome ('pass' | 'warn' | 'accepted' | 'fail'), None for a
    plain score. ``pr`` defaults to the result's pull request or, inside GitHub Actions,
    the number in ``GITHUB_REF`` (``refs/pull/N/merge``), in GitLab CI the merge
    request's IID. ``source`` defaults to 'gate' when
    a decision is given, else 'score'.
    """
    if pr is None:
        pr = (
            result.get("pr")
            or result.get("pull_request")  # ScoreResult.to_dict()'s name
            or result.get("pr_number")
            or _pr_from_env()
        )
    raw = result.get("commits") or []
    commits = [c["sha"] if isinstance(c, Mapping) else str(c) for c in raw]
    keys = [
        commit_key(str(c["author"]), int(c["time"]))
        for c in raw
        if isinstance(c, Mapping) and c.get("author") and c.get("time") is not None
    ]
    rec = {
        "head_sha": result.get("head"),
        "base_sha": result.get("base"),
        "pr": pr,
        "repo": result.get("repo"),
        "commits": commits,
        "commit_keys": keys,
        "features": result.get("features"),
        "probability": result.get("probability"),
        "level": result.get("level"),
        "decision": decision,
        "model_version": result.get("model_version"),
        "model_source": result.get("model_source"),
        "source": source or ("gate" if decision is not None else "score"),
    }
    return append(data_dir, [rec])


def log_result(
    data_dir: str | Path, result: Mapping[str, Any], decision: str | None = None
) -> DiffriskError | None:
    """Log a scored change (:func:`append_from_score`) without failing the run that scored
    it: returns None when it was logged, else what kept it from the log, for the caller to
    warn about (``score``, ``run`` and the merge gate go on)."""
    try:
        append_from_score(data_dir, result, decision=decision)
    except DiffriskError as err:
        return err
    return None
