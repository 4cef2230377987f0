"""The ``file`` fix source, and labels a team keeps itself.

A **fixes file** (``diffrisk label --fixes FILE``) lists bug-fixing commits, one a row, CSV
with a header (or JSON Lines / a JSON list of objects):

====================  =========================================================
``sha``               the fix (required; an abbreviation of 7+ hex digits is fine)
``issue_date``        when the bug was reported: ISO 8601 or epoch seconds (optional)
``issue``             the bug report's name, e.g. ``PROJ-12`` or ``#34`` (optional)
``inducing``          commits known to have introduced the bug, space-separated
                      (optional; trusted above SZZ's blame)
====================  =========================================================

A **labels file** (``--labels FILE`` of ``label``, ``train`` and ``evaluate``) gives the
truth per commit: columns ``sha`` and ``label`` (``1``/``buggy``/``true`` or
``0``/``clean``/``false``; empty: unlabelled). Every malformed row is reported with its
line and column.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from diffrisk.errors import DataError
from diffrisk.labelling.sources import FixEvidence

_HEX = re.compile(r"^[0-9a-fA-F]{7,64}$")
_TRUE = {"1", "buggy", "true", "yes", "bug", "defect"}
_FALSE = {"0", "clean", "false", "no"}

FIXES_COLUMNS = ("sha", "issue_date", "issue", "inducing")
LABELS_COLUMNS = ("sha", "label")


def _rows(path: Path, allowed: tuple[str, ...], what: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) of a CSV, JSON Lines or JSON-list file, checking its columns."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read the {what} file {path}: {err.strerror or err}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(
            f"{path}, line {line}: not UTF-8 text", hint="save the file as UTF-8"
        ) from None
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}, line {err.lineno}: not valid JSON ({err.msg})") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise DataError(f"{path}: a JSON {what} file is a list of objects")
        rows: list[tuple[int, dict[str, Any]]] = [(i + 1, r) for i, r in enumerate(data)]
        where = "item"
    elif stripped.startswith("{"):
        rows = []
        for n, jline in enumerate(text.splitlines(), 1):
            if not jline.strip():
                continue
            try:
                obj = json.loads(jline)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}, line {n}: not valid JSON ({err.msg})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}, line {n}: expected a JSON object")
            rows.append((n, obj))
        where = "line"
    else:
        reader = csv.DictReader(io.StringIO(text))
        header = [h.strip() for h in reader.fieldnames or []]
        if "sha" not in header:
            raise DataError(
                f"{path}, line 1: no 'sha' column (found: {', '.join(header) or 'nothing'})",
                hint=f"the first line names the columns: {', '.join(allowed)}",
            )
        reader.fieldnames = header
        rows = []
        for rec in reader:
            if None in rec:
                raise DataError(
                    f"{path}, line {reader.line_num}: more fields than the header's "
                    f"{len(header)} columns"
                )
            rows.append((reader.line_num, {k: (v or "").strip() for k, v in rec.items()}))
        where = "line"
    for n, rec in rows:
        unknown = sorted(set(rec) - set(allowed))
        if unknown:
            raise DataError(
                f"{path}, {where} {n}: unknown column {unknown[0]!r}",
                hint=f"the columns are: {', '.join(allowed)}",
            )
        sha = str(rec.get("sha") or "").strip()
        if not _HEX.match(sha):
            raise DataError(
                f"{path}, {where} {n}, column 'sha': {sha[:60]!r} is not a commit id",
                hint="a full or abbreviated (7+ hex digits) commit id",
            )
        yield n, {**rec, "sha": sha.lower()}


def parse_date(value: Any) -> int | None:
    """Epoch seconds from ISO 8601 (a date alone is midnight UTC) or epoch seconds; None
    for empty; ValueError otherwise."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    text = str(value).strip()
    if re.fullmatch(r"\d{9,11}", text):
        return int(text)
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp())


def read_fixes(path: str | Path) -> list[FixEvidence]:
    """A fixes file -> one :class:`FixEvidence` (source ``file``) per row."""
    p = Path(path)
    out: list[FixEvidence] = []
    where = "item" if p.read_bytes()[:64].lstrip().startswith(b"[") else "line"
    for n, rec in _rows(p, FIXES_COLUMNS, "fixes"):
        try:
            when = parse_date(rec.get("issue_date"))
        except ValueError:
            raise DataError(
                f"{p}, {where} {n}, column 'issue_date': {str(rec.get('issue_date'))[:40]!r} "
                "is not a date",
                hint="ISO 8601 (2021-03-04 or 2021-03-04T10:15:00Z) or epoch seconds",
            ) from None
        inducing = rec.get("inducing") or ""
        if isinstance(inducing, list):
            named = [str(x).strip().lower() for x in inducing]
        else:
            named = str(inducing).split()
        bad = [s for s in named if not _HEX.match(s)]
        if bad:
            raise DataError(
                f"{p}, {where} {n}, column 'inducing': {bad[0][:60]!r} is not a commit id",
                hint="space-separated commit ids",
            )
        issue = str(rec.get("issue") or "").strip() or None
        out.append(
            FixEvidence(
                rec["sha"], "file", when, issue, tuple(s.lower() for s in dict.fromkeys(named))
            )
        )
    return out


def read_labels(path: str | Path) -> pd.DataFrame:
    """A labels file -> columns ``sha`` (as written) and ``label`` (Int8: 1, 0 or <NA>)."""
    p = Path(path)
    shas: list[str] = []
    labels: list[int | None] = []
    where = "item" if p.read_bytes()[:64].lstrip().startswith(b"[") else "line"
    seen: dict[str, int] = {}
    for n, rec in _rows(p, LABELS_COLUMNS, "labels"):
        raw = rec.get("label")
        v = "" if raw is None else str(raw).strip().lower()
        if v in _TRUE:
            lab: int | None = 1
        elif v in _FALSE:
            lab = 0
        elif v in ("", "none", "null", "unlabelled", "unknown"):
            lab = None
        else:
            raise DataError(
                f"{p}, {where} {n}, column 'label': {str(raw)[:40]!r} is not a label",
                hint="1/buggy/true, 0/clean/false, or empty for unlabelled",
            )
        if rec["sha"] in seen:
            raise DataError(
                f"{p}, {where} {n}, column 'sha': {rec['sha']} is labelled again "
                f"(first on {where} {seen[rec['sha']]})"
            )
        seen[rec["sha"]] = n
        shas.append(rec["sha"])
        labels.append(lab)
    if not shas:
        raise DataError(f"{p} holds no labels", hint="columns: sha,label")
    return pd.DataFrame({"sha": shas, "label": pd.array(labels, dtype="Int8")})
