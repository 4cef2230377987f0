"""The ``jira`` fix source: commits that cite a JIRA issue whose type is a bug.

Many projects (the Apache Software Foundation's among them) title commits after their JIRA
issue ("ZOOKEEPER-4471: Match removed watch ...") and write no fix word: whether the commit
fixes a bug is recorded in the tracker, as the issue's type. This source reads the issue
keys of each commit message (:func:`issue_keys`), learns each issue's type, resolution and
creation date, from a JIRA export file (:func:`read_export`, offline) or from JIRA's REST
API (:func:`fetch_issues`, through the ``jira`` package), and makes every commit citing a
bug issue a fix (:func:`jira_evidence`), with the issue's creation date for the
issue-date filter. :func:`load_jira` does all of it for the ``[label.jira]`` settings and
turns a failing server into a warning, so the label stage goes on with its other sources.

Settings (:class:`diffrisk.config.JiraConfig`): ``url`` (with ``JIRA_TOKEN``, a personal
access token, or ``JIRA_USER`` + ``JIRA_TOKEN``, an e-mail and an API token as Jira Cloud
wants; none: anonymous, which Apache's JIRA allows), ``projects`` (empty: the keys that
recur in the messages, :func:`detect_projects`), ``export``, ``bug_types`` and
``resolutions``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from diffrisk.errors import DataError, DiffriskError
from diffrisk.labelling.sources import FixEvidence

if TYPE_CHECKING:
    from diffrisk.config import JiraConfig

SOURCE = "jira"

FIELDS = ("issuetype", "resolution", "status", "created")
"""The issue fields asked of JIRA's search."""

NOT_PROJECTS = frozenset(
    {
        # encodings, hashes, ciphers and standards that look like keys: UTF-8, SHA-256,
        # ISO-8859, CP-1252, IEEE-754, X-509, PKCS-11
        "UTF", "UCS", "SHA", "MD", "CRC", "AES", "DES", "RSA", "HMAC", "ISO", "IEC",
        "IEEE", "ANSI", "ASCII", "CP", "WINDOWS", "X", "PKCS", "FIPS", "TLS", "SSL",
        "HTTP", "IPV", "UUID", "ES", "ECMA", "POSIX", "BASE", "LATIN", "KOI",
        # other trackers and catalogues: vulnerabilities, RFCs, Python/Java proposals,
        # GitHub issues and pull requests, OpenJDK's bugs
        "CVE", "CWE", "GHSA", "RFC", "PEP", "JSR", "JEP", "JDK", "GH", "PR", "MR",
        "WIP", "TODO", "FIXME", "COVID",
    }
)  # fmt: skip
"""Prefixes never taken for a JIRA project by :func:`detect_projects` (compared without
trailing digits: ``SHA3-256`` is ``SHA``)."""

DETECT_SHARE = 0.01
"""A project is detected when its keys appear in at least this share of the messages..."""
DETECT_MIN_MESSAGES = 5
"""...and in at least this many messages..."""
DETECT_MIN_ISSUES = 3
"""...with at least this many distinct issue numbers (constants such as ``UTF-8`` cite
one or two)."""

_ANY_KEY = re.compile(r"(?<![\w-])([A-Z][A-Z0-9_]+)-([1-9][0-9]*)(?!\w|\.\d)")
_KEY_SHAPE = re.compile(r"^[A-Z][A-Z0-9_]+-[1-9][0-9]*$")
_REVERT = re.compile(r"^\s*revert\b", re.I)


class SourceError(DiffriskError):
    """A fix source failed (a server refused, was unreachable or kept failing); the label
    stage warns and goes on with the other sources. ``source`` names it (``jira``)."""

    def __init__(
        self,
        source: str,
        message: str,
        hint: str | None = None,
        *,
        status: int | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(message, hint)
        self.source = source
        self.status = status
        """The HTTP status that failed, if one did."""
        self.detail = detail
        """What the server said (its error messages; the token redacted)."""


@dataclass(frozen=True)
class JiraIssue:
    """What the label stage needs of one JIRA issue."""

    key: str
    """``ZOOKEEPER-123`` (upper case)."""
    type: str
    """The issue type's name: ``Bug``, ``Improvement``, ``New Feature``, ..."""
    resolution: str | None
    """``Fixed``, ``Won't Fix``, ...; None while unresolved."""
    status: str | None
    """``Resolved``, ``Closed``, ``Open``, ...; None when the export has no status."""
    created: int
    """When the issue was opened (epoch seconds, UTC)."""


# --- keys in messages ----------------------------------------------------------------


@lru_cache(maxsize=64)
def _project_pattern(projects: frozenset[str]) -> re.Pattern[str]:
    names = "|".join(re.escape(p) for p in sorted(projects, key=lambda p: (-len(p), p)))
    return re.compile(rf"(?<![\w-])({names})-([1-9][0-9]*)(?!\w|\.\d)", re.I)


def issue_keys(message: str, projects: Iterable[str] | None = None) -> list[str]:
    """The JIRA issue keys a message cites, in order, each once, upper case.

    With ``projects``, keys of those projects only, in any case ("zookeeper-4471" in a
    branch name); without, every upper-case ``KEY-123`` (``UTF-8`` included: see
    :func:`detect_projects`). A key followed by ``.digit`` is a version ("KAFKA-2.8.0"),
    not an issue."""
    if projects is not None:
        wanted = frozenset(p.upper() for p in projects)
        if not wanted:
            return []
        matches = _project_pattern(wanted).finditer(message)
    else:
        matches = _ANY_KEY.finditer(message)
    out: dict[str, None] = {}
    for m in matches:
        out.setdefault(f"{m.group(1).upper()}-{m.group(2)}", None)
    return list(out)


_LINE_START = (
    r"^[ \t]*(?:[-*+][ \t]+)?(?:[0-9a-f]{7,40}[ \t]+)?(?:\[[^\]\n]*\][ \t]+)?"
    r"\[?[ \t]*(?:https?://\S*?/browse/)?"
)
"""What may come before a key that opens a line: a bullet, a squash list's "<sha> [Author] "
("8c3aa11e [Andor Molnar] ZOOKEEPER-3165: Java 9: ... fails"), a bracket, the issue's
address ("* https://issues.apache.org/jira/browse/ZEPPELIN-4307", as pull request
templates ask)."""


@lru_cache(maxsize=64)
def _line_pattern(projects: frozenset[str]) -> re.Pattern[str]:
    names = "|".join(re.escape(p) for p in sorted(projects, key=lambda p: (-len(p), p)))
    return re.compile(rf"{_LINE_START}({names})-([1-9][0-9]*)(?!\w|\.\d)", re.I | re.M)


def cited_keys(message: str, projects: Iterable[str]) -> list[str]:
    """The issues a commit is for, of ``projects``: the keys in its subject (the first
    paragraph, as git reads it) and those that open a line of its body (the titles of
    squashed commits, one issue a line, the issue's address; see :data:`_LINE_START`);
    when there are none, every key of the message.

    A key in the body's prose ("the regression of ZOOKEEPER-3117", "as MESOS-3030 did")
    usually names an issue the commit does not fix, when its subject names its own."""
    wanted = frozenset(p.upper() for p in projects)
    if not wanted:
        return []
    parts = re.split(r"\n[ \t]*\n", message.strip(), maxsplit=1)
    subject, body = parts[0], parts[1] if len(parts) > 1 else ""
    keys = dict.fromkeys(issue_keys(subject, wanted))
    for m in _line_pattern(wanted).finditer(body):
        keys.setdefault(f"{m.group(1).upper()}-{m.group(2)}", None)
    return list(keys) or issue_keys(message, wanted)


def _fix_keys(message: str, projects: Iterable[str]) -> list[str]:
    """:func:`cited_keys`, none for a revert (it undoes the cited issue's commit)."""
    return [] if _REVERT.match(message) else cited_keys(message, projects)


def _is_constant(project: str) -> bool:
    return project in NOT_PROJECTS or project.rstrip("0123456789") in NOT_PROJECTS


def detect_projects(messages: Iterable[str]) -> list[str]:
    """The JIRA project keys that recur in ``messages``, most cited first.

    A project counts when its keys are in at least :data:`DETECT_SHARE` of the messages
    and :data:`DETECT_MIN_MESSAGES` of them, with :data:`DETECT_MIN_ISSUES` distinct
    numbers, and it is not one of :data:`NOT_PROJECTS` (``UTF-8``, ``SHA-256``, ``CVE-``,
    ``RFC-``, ``PEP-``, ``GH-``, ...)."""
    n = 0
    seen_in: Counter[str] = Counter()
    numbers: defaultdict[str, set[str]] = defaultdict(set)
    for message in messages:
        n += 1
        projects = set()
        for key in issue_keys(message):
            project, _, number = key.rpartition("-")
            projects.add(project)
            numbers[project].add(number)
        seen_in.update(projects)
    need = max(DETECT_MIN_MESSAGES, DETECT_SHARE * n)
    found = [
        p
        for p, c in seen_in.items()
        if c >= need and len(numbers[p]) >= DETECT_MIN_ISSUES and not _is_constant(p)
    ]
    return sorted(found, key=lambda p: (-seen_in[p], p))


# --- dates ---------------------------------------------------------------------------

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
# JIRA's default display format: "12/Mar/21 10:15 AM" (CSV export), "30/Apr/10 15:54"
_JIRA_DATE = re.compile(
    r"^(\d{1,2})/([A-Za-z]{3})/(\d{2}|\d{4})"
    r"(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?)?$"
)


def parse_jira_date(text: str) -> int:
    """Epoch seconds of a JIRA date: its display format ("12/Mar/21 10:15 AM", "30/Apr/10
    15:54"; English month names) or ISO 8601 ("2021-03-12T10:15:00.000+0000", what the
    REST API returns). A time without a zone is taken as UTC (JIRA's exports are in the
    exporting user's zone, which the file does not say). ValueError otherwise."""
    s = text.strip()
    m = _JIRA_DATE.match(s)
    if m:
        day, mon, year, hour, minute, second, half = m.groups()
        month = _MONTHS.get(mon.lower())
        if month is None:
            raise ValueError(f"unknown month {mon!r}")
        y = int(year)
        if len(year) == 2:
            y += 2000 if y < 69 else 1900  # as strptime's %y
        h = int(hour or 0)
        if half:
            if not 1 <= h <= 12:
                raise ValueError(f"hour {h} with {half}")
            h = h % 12 + (12 if half.lower() == "pm" else 0)
        dt = datetime(y, month, int(day), h, int(minute or 0), int(second or 0))
    else:
        iso = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", s.replace("Z", "+00:00"))
        # Python 3.10's fromisoformat wants 3 or 6 fraction digits
        iso = re.sub(
            r"\.(\d+)(?=[+-]\d{2}:\d{2}$|$)", lambda f: "." + f.group(1)[:6].ljust(6, "0"), iso
        )
        dt = datetime.fromisoformat(iso)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp())


# --- export files --------------------------------------------------------------------

_CSV_COLUMNS: dict[str, tuple[str, ...]] = {
    "key": ("issue key", "key", "issue_key", "issuekey"),
    "type": ("issue type", "issuetype", "issue_type", "type"),
    "resolution": ("resolution",),
    "status": ("status",),
    "created": ("created", "created date", "created_at"),
}
_REQUIRED = ("key", "type", "created")
_CSV_NAMES = {"key": "Issue key", "type": "Issue Type", "created": "Created"}
_EXPORT_HINT = (
    "a JIRA export: CSV (JIRA's Export > CSV, with the columns 'Issue key', 'Issue Type', "
    "'Created' and optionally 'Resolution', 'Status'), or JSON (a saved REST /search "
    "response, or a list of issues)"
)


def read_export(path: str | Path) -> dict[str, JiraIssue]:
    """The issues of a JIRA export file, by key.

    CSV: JIRA's own export (columns "Issue key", "Issue Type", "Resolution", "Status",
    "Created"; repeated columns and extra ones are fine; dates as JIRA shows them, "12/Mar/21
    10:15 AM", or ISO 8601), which is also the format of ApacheJIT's yearly exports. JSON: a
    saved REST ``/search`` response (``{"issues": [...]}``), a list of such responses, or a
    list of issues (``{"key", "fields": {"issuetype": {"name"}, ...}}`` or flat ``{"key",
    "type", "resolution", "status", "created"}``). A malformed file raises
    :class:`~diffrisk.errors.DataError` naming its line and column (field)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise DataError(
            f"cannot read the JIRA export {p}: {err.strerror or err}",
            hint="label.jira.export names a file (relative paths: from the repository)",
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        col = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise DataError(
            f"{p}, line {line}, column {col}: not UTF-8 text",
            hint="save the export as UTF-8",
        ) from None
    if p.suffix.lower() == ".json" or text.lstrip()[:1] in ("[", "{"):
        return _read_json(text, p)
    return _read_csv(text, p)


def _widen_csv_fields() -> None:
    # JIRA's "all fields" export holds whole descriptions and comment threads
    limit = min(sys.maxsize, 2**31 - 1)
    if csv.field_size_limit() < limit:
        csv.field_size_limit(limit)


def _read_csv(text: str, p: Path) -> dict[str, JiraIssue]:
    _widen_csv_fields()
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as err:
        raise DataError(
            f"{p}, line {reader.line_num}: not CSV ({err})", hint=_EXPORT_HINT
        ) from None
    if not header:
        raise DataError(f"{p} is empty", hint=_EXPORT_HINT)
    names = [h.strip() for h in header]
    lowered = [h.lower() for h in names]
    col: dict[str, int] = {}
    for what, aliases in _CSV_COLUMNS.items():
        for alias in aliases:
            if alias in lowered:
                col[what] = lowered.index(alias)  # the first of repeated columns
                break
    missing = [_CSV_NAMES[w] for w in _REQUIRED if w not in col]
    if missing:
        raise DataError(
            f"{p}, line 1: no {', '.join(repr(m) for m in missing)} column "
            f"(found: {', '.join(names[:12]) or 'nothing'}{', ...' if len(names) > 12 else ''})",
            hint=_EXPORT_HINT,
        )
    out: dict[str, JiraIssue] = {}
    end = reader.line_num
    while True:
        start = end + 1
        try:
            row = next(reader, None)
        except csv.Error as err:
            raise DataError(
                f"{p}, line {reader.line_num}: not CSV ({err})", hint=_EXPORT_HINT
            ) from None
        if row is None:
            break
        end = reader.line_num
        if not any(c.strip() for c in row):
            continue
        need = max(col.values()) + 1
        if len(row) < need:
            what = max(col, key=lambda w: col[w])
            raise DataError(
                f"{p}, line {start}, column {need} ({names[col[what]]!r}): missing; the row "
                f"has {len(row)} columns, the header {len(names)}",
                hint=_EXPORT_HINT,
            )

        def cell(what: str, row: list[str] = row) -> str:
            return row[col[what]].strip() if what in col else ""

        def bad(what: str, problem: str, hint: str = _EXPORT_HINT, start: int = start) -> DataError:
            return DataError(
                f"{p}, line {start}, column {col[what] + 1} ({names[col[what]]!r}): {problem}",
                hint=hint,
            )

        key = cell("key").upper()
        if not _KEY_SHAPE.match(key):
            raise bad("key", f"{cell('key')[:40]!r} is not an issue key (PROJECT-123)")
        kind = cell("type")
        if not kind:
            raise bad("type", "empty")
        try:
            created = parse_jira_date(cell("created"))
        except ValueError:
            raise bad(
                "created",
                f"{cell('created')[:40]!r} is not a date",
                hint="JIRA's '12/Mar/21 10:15 AM' or ISO 8601 ('2021-03-12T10:15:00+00:00')",
            ) from None
        resolution = cell("resolution")
        out[key] = JiraIssue(
            key,
            kind,
            None if resolution.lower() in ("", "unresolved") else resolution,
            cell("status") or None,
            created,
        )
    return out


def _name(value: Any) -> str | None:
    """A JIRA field's name: ``{"name": "Bug"}`` or a plain string; None for null."""
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("name")
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("not a name")
    return value.strip() or None


def _issue_from_json(item: Any) -> JiraIssue:
    """One issue of a REST response (or a flat record); ValueError("field: problem")."""
    if not isinstance(item, dict):
        raise ValueError("issue: not a JSON object")
    key = item.get("key")
    if not isinstance(key, str) or not _KEY_SHAPE.match(key.strip().upper()):
        raise ValueError(f"key: {str(key)[:40]!r} is not an issue key (PROJECT-123)")
    key = key.strip().upper()
    fields = item.get("fields")
    prefix = "fields."
    if fields is None:  # a flat record
        fields, prefix = item, ""
        names = {"issuetype": "type" if "type" in item else "issuetype"}
    elif not isinstance(fields, dict):
        raise ValueError("fields: not a JSON object")
    else:
        names = {"issuetype": "issuetype"}
    tname = names["issuetype"]
    try:
        kind = _name(fields.get(tname))
    except ValueError:
        kind = None
    if not kind:
        raise ValueError(f"{prefix}{tname}: missing or empty")
    out: dict[str, str | None] = {}
    for f in ("resolution", "status"):
        try:
            out[f] = _name(fields.get(f))
        except ValueError:
            raise ValueError(f"{prefix}{f}: {fields.get(f)!r} is not a name") from None
    created = fields.get("created")
    if not isinstance(created, str):
        raise ValueError(f"{prefix}created: missing or not a date")
    try:
        when = parse_jira_date(created)
    except ValueError:
        raise ValueError(f"{prefix}created: {created[:40]!r} is not a date") from None
    resolution = out["resolution"]
    if resolution is not None and resolution.lower() == "unresolved":
        resolution = None
    return JiraIssue(key, kind, resolution, out["status"], when)


def _line_of(text: str, key: Any) -> tuple[int, int] | None:
    """Line and column of an issue's ``"key": "KEY"`` in the JSON text."""
    if not isinstance(key, str):
        return None
    m = re.search(rf'"key"\s*:\s*"{re.escape(key)}"', text)
    if m is None:
        return None
    line = text.count("\n", 0, m.start()) + 1
    return line, m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1


def _read_json(text: str, p: Path) -> dict[str, JiraIssue]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(
            f"{p}, line {err.lineno}, column {err.colno}: not valid JSON ({err.msg})",
            hint=_EXPORT_HINT,
        ) from None
    pages = data if isinstance(data, list) else [data]
    items: list[Any] = []
    for page in pages:
        if isinstance(page, dict) and "issues" in page:
            if not isinstance(page["issues"], list):
                raise DataError(f"{p}: 'issues' is not a list", hint=_EXPORT_HINT)
            items.extend(page["issues"])
        elif isinstance(page, dict) and isinstance(data, list):
            items.append(page)
        else:
            raise DataError(
                f"{p}: expected a JIRA search response (an object with 'issues') or a list "
                "of issues",
                hint=_EXPORT_HINT,
            )
    out: dict[str, JiraIssue] = {}
    for i, item in enumerate(items):
        try:
            issue = _issue_from_json(item)
        except ValueError as err:
            key = item.get("key") if isinstance(item, dict) else None
            at = _line_of(text, key)
            where = (
                f"line {at[0]}, column {at[1]} (issue {key})"
                if at
                else f"issue {i + 1} of {len(items)}"
            )
            field, _, problem = str(err).partition(": ")
            raise DataError(
                f"{p}, {where}, field {field!r}: {problem}", hint=_EXPORT_HINT
            ) from None
        out[issue.key] = issue
    return out


# --- the REST API --------------------------------------------------------------------

_T = TypeVar("_T")

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


def _safe_url(url: str) -> str:
    """``url`` without a user or password in it (https://user:pw@host -> https://host)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        parts = parts._replace(netloc=host)
    return urlunsplit(parts)


def _retry_after(response: Any) -> float | None:
    """Seconds a 429/503 response asks to wait (``Retry-After``: seconds or an HTTP date)."""
    value = getattr(response, "headers", {}).get("Retry-After") if response is not None else None
    if not value:
        return None
    value = str(value).strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - time.time())


class _Server:
    """One JIRA: the ``jira`` client with our retries and errors (the package's own retry
    waits up to minutes on a refused connection and ignores 500, 502 and 504)."""

    def __init__(
        self,
        url: str,
        token: str | None,
        user: str | None,
        timeout: float,
        retries: int,
        backoff: float,
        max_wait: float,
    ) -> None:
        self.url = url.rstrip("/")
        self.shown = _safe_url(self.url)
        self.token = token
        self.user = user
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait

    def _redact(self, text: str) -> str:
        for secret in (self.token, urlsplit(self.url).password):
            if secret:
                text = text.replace(secret, "***")
        return text

    def error(
        self, message: str, hint: str | None = None, status: int | None = None, detail: str = ""
    ) -> SourceError:
        return SourceError(
            SOURCE,
            self._redact(f"JIRA source: {message}"),
            self._redact(hint) if hint else None,
            status=status,
            detail=self._redact(detail),
        )

    def call(self, what: str, fn: Any) -> Any:
        """``fn()`` with bounded retries on 429 and 5xx (honouring ``Retry-After``) and on
        connection failures; any failure left becomes one :class:`SourceError`."""
        import requests
        from jira import JIRAError

        attempt = 0
        while True:
            try:
                return fn()
            except JIRAError as err:
                if err.status_code in RETRY_STATUS and attempt < self.retries:
                    wait = _retry_after(err.response)
                    if wait is None:
                        wait = self.backoff * 2**attempt
                    elif wait > self.max_wait:
                        raise self._status_error(what, err, attempt + 1, wait) from None
                    time.sleep(wait)
                    attempt += 1
                    continue
                raise self._status_error(what, err, attempt + 1) from None
            except (requests.ConnectionError, requests.Timeout) as err:
                if attempt < self.retries:
                    time.sleep(min(self.max_wait, self.backoff * 2**attempt))
                    attempt += 1
                    continue
                kind = "timed out" if isinstance(err, requests.Timeout) else "unreachable"
                raise self.error(
                    f"JIRA at {self.shown} is {kind} ({type(err).__name__}, "
                    f"{attempt + 1} attempts)",
                    hint="check label.jira.url and the network (a proxy: HTTPS_PROXY); or "
                    "use an export (label.jira.export)",
                ) from None
            except (requests.RequestException, ValueError, KeyError, TypeError) as err:
                if isinstance(err, requests.RequestException) and not isinstance(
                    err, requests.JSONDecodeError
                ):  # an invalid URL, too many redirects
                    raise self.error(
                        f"cannot ask JIRA at {self.shown} ({type(err).__name__}: {err})",
                        hint="label.jira.url is JIRA's address, e.g. "
                        "https://issues.apache.org/jira",
                    ) from None
                # an answer that is not JIRA's JSON: a login page, a proxy's, another site
                raise self.error(
                    f"{self.shown} did not answer {what} like JIRA's REST API",
                    hint="label.jira.url is JIRA's base address, e.g. "
                    "https://issues.apache.org/jira (not a /browse/ or /projects/ page)",
                ) from None

    def _status_error(
        self, what: str, err: Any, attempts: int, asked_wait: float | None = None
    ) -> SourceError:
        """The :class:`SourceError` for a JIRA error answer after ``attempts`` requests."""
        status = err.status_code
        full = (err.text or "").strip()
        detail = full.replace("\n", " ")[:200]
        said = f": {detail}" if detail else ""
        tried = f", {attempts} attempts" if attempts > 1 else ""
        hint: str | None
        if status is None:
            msg, hint = f"JIRA at {self.shown} gave no answer to {what}", None
        elif status == 401:
            msg = f"JIRA at {self.shown} refused the credentials (HTTP 401)"
            if self.token and self.user:
                hint = "JIRA_USER and JIRA_TOKEN are not a valid account e-mail and API token"
            elif self.token:
                hint = (
                    "JIRA_TOKEN is not a valid personal access token here; Jira Cloud wants "
                    "JIRA_USER (the account's e-mail) with an API token in JIRA_TOKEN"
                )
            else:
                hint = (
                    "this JIRA does not answer anonymous requests: set JIRA_TOKEN (and "
                    "JIRA_USER for Jira Cloud)"
                )
        elif status == 403:
            msg = f"JIRA at {self.shown} denied {what} (HTTP 403{said})"
            hint = (
                "the account cannot browse these projects, or JIRA wants a CAPTCHA after "
                "failed logins (log in once in a browser); check JIRA_TOKEN"
            )
        elif status == 404:
            msg = f"no JIRA REST API at {self.shown} (HTTP 404 for {what})"
            hint = (
                "label.jira.url is JIRA's base address, e.g. https://issues.apache.org/jira "
                "(without /browse/...)"
            )
        elif status == 429:
            if asked_wait is not None:
                msg = (
                    f"JIRA at {self.shown} is rate limiting {what} and asks to wait "
                    f"{asked_wait:.0f} s (more than {self.max_wait:.0f}){tried}"
                )
            else:
                msg = f"JIRA at {self.shown} kept rate limiting {what} (HTTP 429{tried})"
            hint = "run again later, or use an export (label.jira.export) offline"
        elif status >= 500:
            msg = f"JIRA at {self.shown} failed {what} (HTTP {status}{tried})"
            hint = (
                "the server is down or overloaded: run again later, or use an export "
                "(label.jira.export)"
            )
        else:
            msg = f"JIRA at {self.shown} refused {what} (HTTP {status}{said})"
            hint = "check label.jira.url and label.jira.projects"
        return self.error(msg, hint, status=status, detail=full)

    def connect(self) -> Any:
        from jira import JIRA

        auth: dict[str, Any] = {}
        if self.token and self.user:
            auth["basic_auth"] = (self.user, self.token)
        elif self.token:
            auth["token_auth"] = self.token
        return self.call(
            "serverInfo",
            lambda: JIRA(
                server=self.url,
                get_server_info=True,
                max_retries=0,
                timeout=self.timeout,
                logging=False,
                **auth,
            ),
        )


def _chunks(items: Sequence[_T], n: int) -> Iterable[Sequence[_T]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _unknown_keys(err: SourceError, batch: Sequence[str]) -> set[str]:
    """Keys of ``batch`` a 400 says do not exist ("An issue with key 'X-1' does not exist
    for field 'key'."; also keys of projects the account cannot see)."""
    if err.status != 400:
        return set()
    named = {k.upper() for k in re.findall(r"'([A-Za-z][A-Za-z0-9_]+-\d+)'", err.detail)}
    return named & set(batch)


def fetch_issues(
    url: str,
    keys: Iterable[str],
    token: str | None = None,
    user: str | None = None,
    *,
    batch_size: int = 100,
    page_size: int = 100,
    timeout: float = 30.0,
    retries: int = 4,
    backoff: float = 2.0,
    max_wait: float = 120.0,
) -> dict[str, JiraIssue]:
    """The issues among ``keys`` that JIRA at ``url`` knows, by key.

    One JQL search ``key in (...)`` per ``batch_size`` keys (fields issuetype, resolution,
    status, created; paged by ``startAt``, or by ``nextPageToken`` on Jira Cloud), with
    the query unvalidated so keys JIRA does not know are skipped, not errors. ``token``
    alone is a personal access token (``Authorization: Bearer``); with ``user``, basic
    auth (Jira Cloud's e-mail + API token); neither: anonymous. Each request gets
    ``timeout`` seconds and up to ``retries`` retries on 429 and 5xx (waiting what
    ``Retry-After`` says, else ``backoff`` * 2**n seconds; a wait above ``max_wait``
    gives up) and on connection failures. Failure raises :class:`SourceError`; the token
    is never in its text."""
    wanted = sorted({k.strip().upper() for k in keys if k and k.strip()})
    server = _Server(url, token, user, timeout, retries, backoff, max_wait)
    if not wanted:
        return {}
    client = server.connect()
    cloud = getattr(client, "deploymentType", None) == "Cloud"
    out: dict[str, JiraIssue] = {}
    try:
        for chunk in _chunks(wanted, batch_size):
            batch = list(chunk)
            while batch:
                try:
                    issues = _search(server, client, batch, page_size, cloud)
                except SourceError as err:
                    unknown = _unknown_keys(err, batch)
                    if not unknown:
                        raise
                    batch = [k for k in batch if k not in unknown]
                    continue
                for item in issues:
                    try:
                        issue = _issue_from_json(item)
                    except ValueError as verr:
                        raise server.error(
                            f"JIRA at {server.shown} answered an issue this source cannot "
                            f"read ({verr})",
                            hint="report it to diffrisk, with the JIRA version",
                        ) from None
                    out[issue.key] = issue
                break
    finally:
        client.close()
    return out


def _search(
    server: _Server, client: Any, batch: list[str], page_size: int, cloud: bool
) -> list[Any]:
    """Every issue of one ``key in (...)`` search, page by page."""
    jql = f"key in ({','.join(batch)}) ORDER BY key ASC"
    found: list[Any] = []

    def page(**kw: Any) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            if cloud:
                res = client.enhanced_search_issues(
                    jql, maxResults=page_size, fields=list(FIELDS), json_result=True, **kw
                )
            else:
                res = client.search_issues(
                    jql,
                    maxResults=page_size,
                    fields=list(FIELDS),
                    validate_query=False,
                    json_result=True,
                    **kw,
                )
            if not isinstance(res, dict) or not isinstance(res.get("issues"), list):
                raise ValueError("not a search response")
            return res

        return server.call("the issue search", run)

    if cloud:
        token: str | None = None
        while True:
            res = page(**({"nextPageToken": token} if token else {}))
            found.extend(res["issues"])
            token = res.get("nextPageToken")
            if res.get("isLast", not token) or not token or not res["issues"]:
                return found
    start = 0
    while True:
        res = page(startAt=start)
        issues = res["issues"]
        found.extend(issues)
        start += len(issues)
        total = res.get("total")
        if not issues or not isinstance(total, int) or start >= total:
            return found


# --- evidence ------------------------------------------------------------------------


def bug_issues(
    issues: Mapping[str, JiraIssue],
    bug_types: Iterable[str] = ("Bug", "Defect"),
    resolutions: Iterable[str] | None = None,
) -> dict[str, JiraIssue]:
    """The issues whose type is one of ``bug_types`` and, when ``resolutions`` is given
    (non-empty), whose resolution is one of them (case-insensitive both)."""
    types = {t.casefold() for t in bug_types}
    res = {r.casefold() for r in resolutions} if resolutions else None
    return {
        k.upper(): i
        for k, i in issues.items()
        if i.type.casefold() in types and (res is None or (i.resolution or "").casefold() in res)
    }


def jira_evidence(
    messages: Mapping[str, str],
    issues: Mapping[str, JiraIssue],
    bug_types: Iterable[str] = ("Bug", "Defect"),
    resolutions: Iterable[str] | None = None,
    projects: Iterable[str] | None = None,
) -> list[FixEvidence]:
    """A :class:`FixEvidence` (source ``jira``) per commit that cites a bug issue of
    ``issues`` (:func:`bug_issues`), in its subject or, when the subject cites no issue,
    in its message (:func:`cited_keys`): ``issue`` is the cited bug keys (", "-joined, in
    the message's order), ``issue_date`` the earliest of their creation dates.

    Keys are looked for in ``projects``' (default: the projects of ``issues``) in any
    case. Reverts ("Revert ...") are not fixes: they undo the cited issue's commit (the
    ``developer`` source links a revert to what it reverts)."""
    bugs = bug_issues(issues, bug_types, resolutions)
    if not bugs:
        return []
    projs = {p.upper() for p in projects} if projects else {k.rpartition("-")[0] for k in issues}
    out: list[FixEvidence] = []
    for sha, message in messages.items():
        cited = [bugs[k] for k in _fix_keys(message, projs) if k in bugs]
        if cited:
            out.append(
                FixEvidence(
                    sha,
                    SOURCE,
                    issue_date=min(i.created for i in cited),
                    issue=", ".join(i.key for i in cited),
                )
            )
    return out


# --- settings ------------------------------------------------------------------------


def _export_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(
            f for f in path.iterdir() if f.is_file() and f.suffix.lower() in (".csv", ".json")
        )
        if not files:
            raise DataError(
                f"the JIRA export directory {path} holds no .csv or .json file",
                hint=_EXPORT_HINT,
            )
        return files
    return [path]


def load_jira(
    cfg: JiraConfig,
    messages: Mapping[str, str],
    token: str | None = None,
    user: str | None = None,
    *,
    base: str | Path | None = None,
    **fetch_options: Any,
) -> tuple[list[FixEvidence], list[str]]:
    """The ``jira`` source for the ``[label.jira]`` settings: (evidence, warnings).

    ``cfg.export`` (a file, or a directory of them; relative to ``base``, the repository)
    wins over ``cfg.url``: issues come from it, offline, and a malformed or missing file
    raises :class:`~diffrisk.errors.DataError` (the settings are wrong). Else, with
    ``cfg.url``, the keys of ``cfg.projects`` (empty: :func:`detect_projects`) cited in
    ``messages`` are fetched (:func:`fetch_issues`, ``fetch_options`` passed on); the
    token is ``token``, else ``$JIRA_TOKEN``, the user ``user``, else ``$JIRA_USER``. A
    failing server is a warning, not an error. Neither set: no evidence, and a warning
    when the messages cite a tracker's keys (fixes are being missed)."""
    warnings: list[str] = []
    projects = [p.upper() for p in cfg.projects]
    if cfg.export:
        path = Path(cfg.export)
        if base is not None and not path.is_absolute():
            path = Path(base) / path
        issues: dict[str, JiraIssue] = {}
        for f in _export_files(path):
            issues.update(read_export(f))
        if not issues:
            warnings.append(f"JIRA source: the export {cfg.export} holds no issues")
            return [], warnings
        evidence = jira_evidence(
            messages, issues, cfg.bug_types, cfg.resolutions or None, projects or None
        )
        if not evidence:
            n = len(bug_issues(issues, cfg.bug_types, cfg.resolutions or None))
            warnings.append(
                f"JIRA source: no commit message cites one of the {n} bug issues of {cfg.export}"
            )
        return evidence, warnings
    if not cfg.url:
        detected = detect_projects(messages.values())
        if detected:
            share = _citing_share(messages, detected[:1])
            warnings.append(
                f"commit messages cite JIRA issues ({detected[0]}-... in {share:.0%} of "
                "them) but label.jira sets no url or export: bug fixes named only by "
                "their issue are missed (set label.jira.url, e.g. "
                "https://issues.apache.org/jira, or label.jira.export)"
            )
        return [], warnings
    if not projects:
        projects = detect_projects(messages.values())
        if not projects:
            warnings.append(
                "JIRA source: no issue keys recur in the commit messages and "
                "label.jira.projects is empty: nothing to look up"
            )
            return [], warnings
    keys = {k for m in messages.values() for k in _fix_keys(m, projects)}
    if not keys:
        warnings.append(f"JIRA source: no commit message cites an issue of {', '.join(projects)}")
        return [], warnings
    if token is None:
        token = os.environ.get("JIRA_TOKEN") or None
    if user is None:
        user = os.environ.get("JIRA_USER") or None
    try:
        issues = fetch_issues(cfg.url, keys, token, user, **fetch_options)
    except SourceError as err:
        warnings.append(str(err))
        return [], warnings
    evidence = jira_evidence(messages, issues, cfg.bug_types, cfg.resolutions or None, projects)
    return evidence, warnings


def _citing_share(messages: Mapping[str, str], projects: Sequence[str]) -> float:
    if not messages:
        return 0.0
    n = sum(1 for m in messages.values() if issue_keys(m, projects))
    return n / len(messages)
