"""Vendored code: third-party directories copied into a repository, found from its history.

Path rules (``label.exclude_paths``: ``vendor/``, ``_vendor/``, ``third_party/``) miss
vendored code kept under other names, such as ``requests/packages/urllib3``. Its lines are
rarely blamed (a fix to it arrives as the next "Update urllib3 to 1.20", which is no bug
fix), so counted as source they make every sync of it look like the riskiest change.

A directory is vendored when

1. a commit adding lines under it names it in a *sync subject*: an update verb, the
   directory's name and a version ("Update urllib3 to 1.20", "Vendor idna v2.1",
   "updated urllib3 (v1.15.1)", "Upgrade chardet from 3.0.1 to 3.0.2"), or a subject
   that is only a sync or vendor verb and the name ("Sync typeshed (#21852)"); and
2. most of the commits adding lines under it, and most of those lines (``MIN_SHARE``),
   name it in their subjects other than as a scope (``foo:``, ``fix(foo):``, ``[foo]``,
   ``GH-12: [foo]``, the way projects name their own components); and
3. it holds at most ``MAX_REPO_SHARE`` of all the lines the history added.

The project's own packages fail the second or third test (aiohttp: 3% of the lines under
``aiohttp/`` come from commits naming it). ``label.not_vendored`` keeps a directory in the
project's code; ``label.detect_vendored = false`` switches detection off.
"""

from __future__ import annotations

import fnmatch
import glob
import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from diffrisk.config import LabelConfig

#: Share of the commits adding lines under a directory, and of those lines, that must name it.
MIN_SHARE = 0.5
#: A directory holding more than this share of all lines ever added is the project's own.
MAX_REPO_SHARE = 0.5

_VERB = (
    r"(?:re-?)?(?:update[sd]?|updating|upgrade[sd]?|upgrading|bump(?:s|ed)?|"
    r"vendor(?:s|ed|ing)?|sync(?:s|ed|hroni[sz]e[sd]?)?|import(?:s|ed)?|"
    r"refresh(?:es|ed)?|downgrade[sd]?|pull(?:s|ed)?\s+in)"
)
_VERSION = r"(?:v(?:ersion)?\s*)?(?:\d+(?:\.\d+)+\w*|[0-9a-f]{7,40})\b"
_SYNC = re.compile(
    rf"\b{_VERB}\s+(?:the\s+)?(?:vendored\s+|bundled\s+)?(?:to\s+)?([A-Za-z_][\w.-]*?)"
    rf"\s*(?:to\s+|from\s+|[(@=]+\s*|,?\s+)?{_VERSION}",
    re.IGNORECASE,
)
#: A subject that is only "Sync typeshed" (a pull request number or "from upstream" may
#: follow): a sync or vendor verb needs no version when it is all the subject says.
_SYNC_BARE = re.compile(
    r"^\s*(?:re-?)?(?:sync(?:s|ed|hroni[sz]e[sd]?)?|vendor(?:s|ed)?)\s+(?:the\s+)?"
    r"(?:vendored\s+|bundled\s+)?([A-Za-z_][\w.-]*?)"
    r"(?:\s+(?:from|with)\s+upstream)?\s*(?:\(#\d+\))?\s*$",
    re.IGNORECASE,
)
#: Words a sync subject can put where a name goes, and languages, runtimes and tools,
#: whose versions projects update without vendoring them.
_NOT_NAMES = frozenset(
    [
        "to",
        "the",
        "a",
        "an",
        "for",
        "from",
        "of",
        "in",
        "v",
        "version",
        "versions",
        "release",
        "dependency",
        "dependencies",
        "deps",
        "requirements",
        "docs",
        "doc",
        "documentation",
        "tests",
        "test",
        "changelog",
        "lockfile",
        "lock",
        "python",
        "py",
        "python3",
        "cpython",
        "pypy",
        "go",
        "golang",
        "node",
        "nodejs",
        "npm",
        "yarn",
        "rust",
        "cargo",
        "ruby",
        "java",
        "jdk",
        "kotlin",
        "scala",
        "php",
        "perl",
        "lua",
        "swift",
        "dotnet",
        "gcc",
        "clang",
        "llvm",
        "cmake",
        "pip",
        "setuptools",
        "wheel",
        "tox",
        "nox",
        "docker",
        "image",
        "ci",
        "actions",
        "github",
        "copyright",
        "year",
    ]
)
_QUOTES = re.compile(r"[`'\"]")
# Leading scopes: "foo:", "foo, bar:", "fix(foo)!:", "[foo]", "[SPARK-1][PYTHON]", "GH-12:".
_SCOPE = re.compile(
    r"^\s*(?:(?:\[[^\]]*\]|[A-Z][A-Z0-9]*-\d+\s*:|\w+\s*\([^)]*\)\s*!?:|[\w./-]+(?:\s*,\s*[\w./-]+)*\s*:)\s*)+"
)


def _norm(name: str) -> str:
    return name.lower().replace("-", "_")


def sync_names(subject: str | None) -> set[str]:
    """Names a sync subject updates, lower-case, ``-`` as ``_`` ("Update urllib3 to 1.20"
    -> {"urllib3"})."""
    text = _QUOTES.sub("", subject or "")
    names = {_norm(m.group(1).rstrip(".-")) for m in _SYNC.finditer(text)}
    if bare := _SYNC_BARE.match(text):
        names.add(_norm(bare.group(1).rstrip(".-")))
    return {n for n in names if n not in _NOT_NAMES}


def names_in_prose(subject: str, name: str) -> bool:
    """Whether ``subject`` names ``name`` other than as a leading scope."""
    text = _QUOTES.sub("", _SCOPE.sub("", subject))
    n = re.escape(name).replace("_", "[_-]")
    return re.search(rf"(?<![\w-]){n}(?![\w-])", text, re.IGNORECASE) is not None


def detect_vendored(
    changes: pd.DataFrame,
    files: pd.DataFrame,
    *,
    excluded: Iterable[str] = (),
    keep: Iterable[str] = (),
) -> list[str]:
    """Vendored directories (outermost only, sorted) in a mined history. Directories the
    ``excluded`` globs already cover, and those ``keep`` (globs) names, are left out."""
    excluded, keep = tuple(excluded), tuple(keep)
    if changes.empty or files.empty or "subject" not in changes.columns:
        return []
    subjects = dict(zip(changes["sha"], changes["subject"].fillna("").astype(str), strict=True))
    synced = {sha: names for sha, s in subjects.items() if (names := sync_names(s))}
    if not synced:
        return []
    f = files[["sha", "path", "la"]]
    f = f.assign(la=pd.to_numeric(f["la"], errors="coerce").fillna(0))
    f = f[f["la"] > 0]
    candidates: set[str] = set()
    in_sync = f["sha"].isin(synced.keys())
    for sha, path in zip(f["sha"][in_sync], f["path"][in_sync].astype(str), strict=True):
        parts = path.split("/")
        for i in range(len(parts) - 1):
            if _norm(parts[i]) in synced[sha]:
                candidates.add("/".join(parts[: i + 1]))
    if not candidates:
        return []
    # rows per unique path, so each candidate scans the distinct paths, not every row
    codes, uniques = pd.factorize(f["path"].astype(str))
    uniques = np.asarray(uniques, dtype=object)
    repo_total = float(f["la"].sum())
    found: list[str] = []
    for d in sorted(candidates, key=lambda d: (d.count("/"), d)):
        if any(d.startswith(v + "/") for v in found):
            continue
        probe = f"{d}/x"
        if any(fnmatch.fnmatchcase(probe, p) for p in excluded) or any(
            fnmatch.fnmatchcase(d, p) or fnmatch.fnmatchcase(probe, p) for p in keep
        ):
            continue
        inside = np.fromiter((u.startswith(d + "/") for u in uniques), bool, len(uniques))
        rows = f[inside[codes]]
        per_commit = rows.groupby("sha")["la"].sum()
        total = float(per_commit.sum())
        if total <= 0 or total > MAX_REPO_SHARE * repo_total:
            continue
        name = d.rsplit("/", 1)[-1]
        naming = np.array([names_in_prose(subjects.get(s, ""), name) for s in per_commit.index])
        if naming.mean() >= MIN_SHARE and float(per_commit[naming].sum()) / total >= MIN_SHARE:
            found.append(d)
    return sorted(found)


def patterns(dirs: Iterable[str]) -> list[str]:
    """``exclude_paths`` globs for vendored directories (glob characters in names escaped)."""
    return [f"{glob.escape(d)}/*" for d in dirs]


def exclude(cfg: LabelConfig, dirs: Iterable[str]) -> LabelConfig:
    """``cfg`` with ``dirs`` added to ``exclude_paths``."""
    extra = [p for p in patterns(dirs) if p not in cfg.exclude_paths]
    if not extra:
        return cfg
    return cfg.model_copy(update={"exclude_paths": [*cfg.exclude_paths, *extra]})


def detect(cfg: LabelConfig, changes: pd.DataFrame, files: pd.DataFrame) -> list[str]:
    """The vendored directories ``cfg`` asks for (none with ``detect_vendored`` off)."""
    if not cfg.detect_vendored or not cfg.source_only:
        return []
    return detect_vendored(changes, files, excluded=cfg.exclude_paths, keep=cfg.not_vendored)


def resolve(cfg: LabelConfig, changes: pd.DataFrame, files: pd.DataFrame) -> LabelConfig:
    """``cfg`` with the history's vendored directories excluded (``label.detect_vendored``)."""
    return exclude(cfg, detect(cfg, changes, files))
