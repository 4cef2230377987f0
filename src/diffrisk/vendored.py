"""Vendored code: third-party directories copied into a repository, found from its history.

Path rules (``label.exclude_paths``: ``vendor/``, ``third_party/``) miss vendored code kept
under other names, such as ``requests/packages/urllib3``. Its lines are rarely blamed (a
fix to it arrives as the next "Update urllib3 to 1.20", which is no bug fix), so counted as
source they make every sync of it look like the riskiest change in the history.

A directory is vendored when

1. a commit adding lines under it names it in a *sync subject*: an update verb, the
   directory's name and a version ("Update urllib3 to 1.20", "Vendor idna v2.1",
   "updated urllib3 (v1.15.1)", "Upgrade chardet to 3.0.2", "Update urllib3 to 7fcfcd0"); and
2. most of the lines ever added under it (``MIN_SHARE``) come from commits whose subjects
   name it, other than as a scope (``foo:`` or ``fix(foo):``, the way projects name
   their own components).

The project's own package fails the second test (aiohttp: 3% of its lines), and so does
a monorepo package bumped by a release commit. With ``label.detect_vendored`` (default on)
the detected directories join ``label.exclude_paths`` for labelling, training and scoring.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pandas as pd

from diffrisk.config import LabelConfig

#: Share of the lines added under a directory that must come from commits naming it.
MIN_SHARE = 0.5

_VERB = (
    r"(?:re-?)?(?:update[sd]?|updating|upgrade[sd]?|upgrading|bump(?:s|ed)?|"
    r"vendor(?:s|ed|ing)?|sync(?:s|ed|hroni[sz]e[sd]?)?|import(?:s|ed)?|"
    r"refresh(?:es|ed)?|downgrade[sd]?|pull(?:s|ed)?\s+in)"
)
_VERSION = r"(?:v(?:ersion)?\s*)?(?:\d+(?:\.\d+)+\w*|[0-9a-f]{7,40})\b"
_SYNC = re.compile(
    rf"\b{_VERB}\s+(?:the\s+)?(?:vendored\s+|bundled\s+)?(?:to\s+)?([A-Za-z_][\w.-]*?)"
    rf"\s*(?:to\s+|[(@=]+\s*|,?\s+)?{_VERSION}",
    re.IGNORECASE,
)


def sync_names(subject: str | None) -> set[str]:
    """Lower-case names a sync subject updates ("Update urllib3 to 1.20" -> {"urllib3"})."""
    return {m.group(1).lower().rstrip(".-") for m in _SYNC.finditer(subject or "")}


def _is_scope_only(subject: str, name: str) -> bool:
    return not _word(name).search(_SCOPE.sub("", subject))


_SCOPE = re.compile(r"^\s*(?:\w+\s*)?\([^)]*\)\s*!?:|^\s*[\w./-]+\s*:")


def _word(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])", re.IGNORECASE)


def detect_vendored(
    changes: pd.DataFrame, files: pd.DataFrame, min_share: float = MIN_SHARE
) -> list[str]:
    """Vendored directories (outermost only, sorted) in a mined dataset's history."""
    if changes.empty or files.empty or "subject" not in changes.columns:
        return []
    subjects = dict(zip(changes["sha"], changes["subject"].fillna("").astype(str), strict=True))
    synced = {sha: names for sha, s in subjects.items() if (names := sync_names(s))}
    if not synced:
        return []
    paths = files["path"].astype(str)
    added = pd.to_numeric(files["la"], errors="coerce").fillna(0)
    candidates: set[str] = set()
    in_sync = files["sha"].isin(synced.keys())
    for sha, path in zip(files["sha"][in_sync], paths[in_sync], strict=True):
        parts = path.split("/")
        for i in range(len(parts) - 1):
            if parts[i].lower() in synced[sha]:
                candidates.add("/".join(parts[: i + 1]))
    found = []
    for d in sorted(candidates, key=lambda d: (d.count("/"), d)):
        if any(d.startswith(v + "/") for v in found):
            continue
        under = paths.str.startswith(d + "/")
        per_commit = added[under].groupby(files["sha"][under]).sum()
        total = float(per_commit.sum())
        if total <= 0:
            continue
        name = d.rsplit("/", 1)[-1]
        word = _word(name)
        naming = [
            sha
            for sha in per_commit.index
            if word.search(s := subjects.get(sha, "")) and not _is_scope_only(s, name)
        ]
        if float(per_commit[naming].sum()) / total >= min_share:
            found.append(d)
    return sorted(found)


def patterns(dirs: Iterable[str]) -> list[str]:
    """``exclude_paths`` globs for vendored directories."""
    return [f"{d}/*" for d in dirs]


def exclude(cfg: LabelConfig, dirs: Iterable[str]) -> LabelConfig:
    """``cfg`` with ``dirs`` added to ``exclude_paths``."""
    extra = [p for p in patterns(dirs) if p not in cfg.exclude_paths]
    if not extra:
        return cfg
    return cfg.model_copy(update={"exclude_paths": [*cfg.exclude_paths, *extra]})


def resolve(cfg: LabelConfig, changes: pd.DataFrame, files: pd.DataFrame) -> LabelConfig:
    """``cfg`` with the dataset's vendored directories excluded (``label.detect_vendored``)."""
    if not cfg.detect_vendored or not cfg.source_only:
        return cfg
    return exclude(cfg, detect_vendored(changes, files))
