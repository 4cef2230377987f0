"""The ``label`` stage: which changes induced a defect (SZZ), which are clean, which are
too young to tell.

1. Fixes: commits the keyword rule marks as fixes (``changes.fix``), plus, with a GitHub
   token, commits that reference an issue or pull request carrying a bug label.
2. Blame (:mod:`diffrisk.labelling.szz`): for each fix touching at most ``label.max_fix_files``
   files, the source lines it deleted or changed are blamed in its first parent
   (``git blame -w -M``, honouring the parent's ``.git-blame-ignore-revs``); blank,
   comment and docstring lines are left out.
3. Candidates: a blamed commit labels as buggy only when it is a mined (non-merge)
   commit, not younger than the fix, and not younger than the fix's bug report when
   that date is known.
4. Verification latency: a change no fix blames is clean only when it is at least
   ``label.verification_days`` older than the newest mined commit; else unlabelled.

Blame results are cached per fix (``szz_cache.parquet``, keyed by the settings that
change them), so relabelling after new commits blames only the new fixes. The cache is
also the checkpoint of a long run: written every :data:`CHECKPOINT_SECONDS` and when the
run is stopped (SIGINT, SIGTERM), so the next run blames only the fixes left.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from diffrisk.config import LabelConfig
from diffrisk.data import store
from diffrisk.data.schema import arrow_schema
from diffrisk.errors import DataError, GitHubError, Interrupted, signal_number
from diffrisk.features.source import SourceFilter
from diffrisk.features.vendored import detect as detect_vendored
from diffrisk.features.vendored import exclude as exclude_vendored
from diffrisk.features.vendored import patterns as patterns_of
from diffrisk.git.repo import open_repo
from diffrisk.labelling.szz import BlameSettings, FixBlame, FixJob, IgnoreRevs, blame_fixes

Progress = Callable[[str, int, int | None], None]

LABELS_FILE = "labels.parquet"
LINKS_FILE = "szz_links.parquet"
CACHE_FILE = "szz_cache.parquet"
#: How often a long blame writes what it found so far into the cache.
CHECKPOINT_SECONDS = 60.0
#: Bump when the blame procedure changes in a way that changes its results (2: docstrings
#: compared as black compares them in the reformat look-through).
BLAME_VERSION = 2

_CACHE_SCHEMA = pa.schema(
    [
        ("settings", pa.string()),
        ("fix_sha", pa.string()),
        ("inducing_sha", pa.string()),  # null: the per-fix summary row
        ("path", pa.string()),
        ("lines", pa.int32()),  # summary row: lines blamed
        ("cosmetic", pa.int32()),  # summary row: lines left out as cosmetic
        ("sample", pa.list_(pa.string())),
        ("fix_path", pa.string()),  # the blamed file's path in the fix's parent
    ]
)


@dataclass
class LabelResult:
    data_dir: Path
    changes: int
    fixes: int
    """Commits treated as fixes (keyword rule or GitHub)."""
    fixes_blamed: int
    """Fixes that were blamed (non-root, at most max_fix_files files)."""
    fixes_too_large: int
    fixes_blamed_nothing: int
    """Blamed fixes whose blame named no mined commit (only added lines, or only filtered lines)."""
    buggy: int
    clean: int
    unlabelled: int
    links: int
    clean_without_source: int
    """Clean changes that touch no source file (they can never be labelled buggy)."""
    newly_blamed: int
    """Fixes blamed in this run (the others came from the cache)."""
    github_fixes: int = 0
    github_issues: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    vendored: list[str] = field(default_factory=list)
    """Directories treated as vendored third-party code (``label.detect_vendored``)."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["data_dir"] = str(self.data_dir)
        return d


# -- GitHub bug reports -----------------------------------------------------------------


@dataclass
class GitHubBugs:
    """Issues and pull requests carrying a bug label."""

    issues: dict[int, datetime] = field(default_factory=dict)
    """Bug issue number -> when it was opened."""
    pulls: set[int] = field(default_factory=set)
    labels: list[str] = field(default_factory=list)
    """The repository's labels that matched ``label.bug_labels``."""

    @property
    def numbers(self) -> set[int]:
        return set(self.issues) | self.pulls


def fetch_github_bugs(
    repo_name: str, token: str, bug_labels: list[str], base_url: str | None = None
) -> GitHubBugs:
    """Every issue and pull request of ``owner/name`` with one of ``bug_labels`` (any case),
    read through :class:`diffrisk.hosts.github.client.GitHubClient`."""
    from diffrisk.hosts.github.client import GitHubClient

    if repo_name.count("/") != 1:
        raise GitHubError(
            f"--github-repo must be owner/name, got {repo_name!r}",
            hint="e.g. --github-repo pallets/flask",
        )
    url = (base_url or os.environ.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/")
    with GitHubClient(repo_name, token, api_url=url, seconds_between_requests=None) as gh:
        labels, issues, pulls = gh.bug_reports(bug_labels)
    return GitHubBugs(issues=issues, pulls=pulls, labels=labels)


def _pr_number(subject: str) -> int | None:
    """The pull request a squash-merged commit came from: a trailing "(#123)"."""
    s = subject.rstrip()
    if s.endswith(")"):
        start = s.rfind("(#")
        if start >= 0 and s[start + 2 : -1].isdigit():
            return int(s[start + 2 : -1])
    return None


# -- helpers -----------------------------------------------------------------------------


def _seconds(ts: pd.Series) -> np.ndarray:
    return ((ts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(dtype="int64")


def settings_key(cfg: LabelConfig) -> str:
    """Hash of the settings that change what blaming a fix finds."""
    d = {
        "v": BLAME_VERSION,
        "ws": cfg.ignore_whitespace,
        "comments": cfg.ignore_comments,
        "copy": cfg.copy_detection,
        "source_only": cfg.source_only,
        "cosmetic_commits": cfg.skip_cosmetic_commits,
        "annotation_commits": cfg.skip_annotation_commits,
        # the look-throughs parse Python with the running interpreter: newer syntax (PEP
        # 695, 701) parses on newer versions only
        "python": list(sys.version_info[:2])
        if cfg.skip_cosmetic_commits or cfg.skip_annotation_commits
        else None,
        "ext": sorted(cfg.source_extensions) if cfg.source_only else [],
        "exclude": sorted(cfg.exclude_paths) if cfg.source_only else [],
    }
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _blame_settings(cfg: LabelConfig) -> BlameSettings:
    return BlameSettings(
        ignore_whitespace=cfg.ignore_whitespace,
        ignore_comments=cfg.ignore_comments,
        copy_detection=cfg.copy_detection,
        extensions=tuple(cfg.source_extensions) if cfg.source_only else (),
        exclude=tuple(cfg.exclude_paths) if cfg.source_only else (),
        source_only=cfg.source_only,
        skip_cosmetic_commits=cfg.skip_cosmetic_commits,
        skip_annotation_commits=cfg.skip_annotation_commits,
    )


def _read_cache(path: Path, warnings: list[str] | None = None) -> pd.DataFrame:
    empty = _CACHE_SCHEMA.empty_table().to_pandas()
    if not path.exists():
        return empty
    try:
        df = pq.read_table(path).to_pandas()
    except (OSError, pa.ArrowInvalid):
        # a corrupt cache is only a cache: blame again (and say why this run is slow)
        if warnings is not None:
            warnings.append(
                f"the blame cache {path.name} was unreadable: every fix is blamed again"
            )
        return empty
    if list(df.columns) == _CACHE_SCHEMA.names[:-1]:
        df["fix_path"] = None  # written before fix_path: links are judged by path alone
    if list(df.columns) != _CACHE_SCHEMA.names:
        if warnings is not None:
            warnings.append(
                f"the blame cache {path.name} has columns this version does not know: "
                "every fix is blamed again"
            )
        return empty
    return df


def _cache_rows(key: str, results: list[FixBlame]) -> pd.DataFrame:
    rows: list[tuple[Any, ...]] = []
    for r in results:
        rows.append((key, r.sha, None, None, r.considered, r.cosmetic, None, None))
        for (sha, path), n in r.counts.items():
            sample = r.links.get((sha, path), [])
            rows.append((key, r.sha, sha, path, n, 0, sample, r.fix_paths.get((sha, path))))
    return pd.DataFrame(rows, columns=_CACHE_SCHEMA.names)


class _Checkpoint:
    """Writes the blame results found so far into the cache: every
    :data:`CHECKPOINT_SECONDS`, at the end, and when the run is interrupted (so that a
    SIGKILL loses at most that much work, and the next run blames only the rest)."""

    def __init__(
        self,
        path: Path,
        stored: pd.DataFrame,
        key: str,
        mined: set[str],
        results: list[FixBlame],
    ) -> None:
        self.path = path
        # other settings' results stay too (switching a filter back costs nothing)
        self.stored = stored[stored["fix_sha"].isin(mined)]
        self.key = key
        self.results = results
        self.saved = 0
        self.at = time.monotonic()

    def maybe(self) -> None:
        if time.monotonic() - self.at >= CHECKPOINT_SECONDS:
            self.save()

    def save(self) -> None:
        self.at = time.monotonic()
        if len(self.results) == self.saved:
            return
        new = _cache_rows(self.key, self.results[self.saved :])
        stored = pd.concat([self.stored, new], ignore_index=True)
        store.atomic_write_table(
            self.path, pa.Table.from_pandas(stored, schema=_CACHE_SCHEMA, preserve_index=False)
        )
        self.stored, self.saved = stored, len(self.results)

    def interrupted(self, err: KeyboardInterrupt, todo: int) -> Interrupted:
        """Save with SIGINT and SIGTERM held back (GitHub Actions sends SIGTERM a few
        seconds after SIGINT); the error says what was kept."""
        signum = signal_number(err)
        try:
            with _signals_blocked():
                self.save()
        except KeyboardInterrupt as again:  # the held-back signal, raised after the save
            signum = signal_number(again)
        name = signal.Signals(signum).name
        n = len(self.results)
        if n == 0:
            return Interrupted(
                f"interrupted ({name}) before a fix was blamed; labels were not written",
                hint="run `diffrisk label` again",
                signum=signum,
            )
        return Interrupted(
            f"interrupted ({name}): the blame of {n} of {todo} fixes was kept in "
            f"{self.path}; labels were not written",
            hint=f"run `diffrisk label` again: it blames only the {todo - n} fixes left",
            signum=signum,
        )


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    sigs = {signal.SIGINT, signal.SIGTERM}
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - Windows
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def source_file_counts(files: pd.DataFrame, changes: pd.DataFrame, cfg: LabelConfig) -> pd.Series:
    """Per commit: files it adds lines to that SZZ treats as source (blame can only land on those)."""
    f = files[(files["la"] > 0) & ~files["binary"].astype(bool)]
    if cfg.source_only:
        is_src = SourceFilter.of(cfg.source_extensions, cfg.exclude_paths)
        f = f[f["path"].map(is_src).astype(bool)]  # a list would select columns when empty
    counts = f.groupby("sha").size()
    return changes["sha"].map(counts).fillna(0).astype("int32")


# -- the stage ---------------------------------------------------------------------------


def label(
    repo_path: str | Path,
    data_dir: str | Path,
    config: LabelConfig | None = None,
    progress: Progress | None = None,
    github: GitHubBugs | None = None,
) -> LabelResult:
    """Label every mined change; writes labels.parquet, szz_links.parquet and the blame cache."""
    t0 = time.perf_counter()
    cfg = config or LabelConfig()
    data = Path(data_dir)
    ds = store.load_dataset(data)
    assert ds is not None
    repo = open_repo(repo_path)
    store.check_repository(ds.meta, repo, data)
    changes = ds.changes.reset_index(drop=True)
    files = ds.files
    # Vendored directories: blamed with the configured paths (so the blame cache survives
    # a change in what detection finds), their links dropped below, and left out of the
    # source files that make a change labelable.
    vendored = detect_vendored(cfg, changes, files)
    resolved = exclude_vendored(cfg, vendored)
    vendored_globs = patterns_of(vendored)

    def in_vendored(path: str) -> bool:
        return any(fnmatch.fnmatchcase(path, g) for g in vendored_globs)

    times = _seconds(changes["author_time"])
    when = dict(zip(changes["sha"], times.tolist(), strict=True))

    # 1. fixes
    is_fix = changes["fix"].fillna(0).astype(bool).to_numpy().copy()
    github_fixes = 0
    issue_opened: dict[str, int] = {}
    if github is not None:
        bug_numbers = github.numbers
        for i, (subject, refs) in enumerate(
            zip(changes["subject"], changes["issue_refs"], strict=True)
        ):
            nums = {int(n) for n in (refs if refs is not None else [])}
            pr = _pr_number(subject or "")
            if pr is not None:
                nums.add(pr)
            if nums & bug_numbers:
                github_fixes += int(not is_fix[i])
                is_fix[i] = True
            opened = [github.issues[n] for n in nums if n in github.issues]
            if opened and cfg.issue_date_filter:
                issue_opened[changes.at[i, "sha"]] = int(min(opened).timestamp())

    fix_rows = changes[is_fix]
    large = fix_rows["nf"] > cfg.max_fix_files
    blame_shas = [s for s in fix_rows.loc[~large, "sha"]]

    # 2. blame (cached per fix)
    key = settings_key(cfg)
    cache_path = data / CACHE_FILE
    notes: list[str] = []
    stored = _read_cache(cache_path, notes)
    cache = stored[stored["settings"] == key]
    done = set(cache["fix_sha"])
    todo = [s for s in blame_shas if s not in done]
    new_results: list[FixBlame] = []
    if todo:
        checkpoint = _Checkpoint(cache_path, stored, key, set(changes["sha"]), new_results)
        if progress:
            progress("blame", 0, len(todo))
        ignore = IgnoreRevs(repo)
        try:
            revs = ignore.files_for(todo)
            jobs = [FixJob(s, revs.get(s)) for s in todo]
            workers = cfg.workers or os.cpu_count() or 1
            with contextlib.closing(
                blame_fixes(
                    repo,
                    jobs,
                    _blame_settings(cfg),
                    workers=workers,
                    on_done=(lambda n: progress("blame", n, None)) if progress else None,
                )
            ) as blamed:
                for res in blamed:
                    new_results.append(res)
                    checkpoint.maybe()
        except KeyboardInterrupt as err:
            # the workers and their git processes are gone (closing() above)
            raise checkpoint.interrupted(err, len(todo)) from None
        finally:
            ignore.close()
        checkpoint.save()
        cache = checkpoint.stored[checkpoint.stored["settings"] == key]

    # 3. candidates
    wanted = set(blame_shas)
    c = cache[cache["fix_sha"].isin(wanted)]
    links = c[c["inducing_sha"].notna()].copy()
    merges = _merges(repo, ds.meta.get("head")) if len(links) else set()
    dropped: list[str | None] = []
    for fix, ind, path, fix_path in zip(
        links["fix_sha"], links["inducing_sha"], links["path"], links["fix_path"], strict=True
    ):
        t_ind = when.get(ind)
        if t_ind is None:
            dropped.append("merge" if ind in merges else "not_mined")
        elif ind == fix or t_ind > when[fix]:
            dropped.append("after_fix")
        elif fix in issue_opened and t_ind > issue_opened[fix]:
            dropped.append("after_issue")
        elif in_vendored(path) or in_vendored(fix_path or path):
            dropped.append("vendored")
        else:
            dropped.append(None)
    links["dropped"] = pd.Series(dropped, index=links.index, dtype="object")
    if cfg.skip_merges:
        links = links[links["dropped"] != "merge"]
    links = links.sort_values(["fix_sha", "inducing_sha", "path"]).reset_index(drop=True)
    good = links[links["dropped"].isna()]

    # 4. labels
    by_inducing: dict[str, set[str]] = {}
    for fix, ind in zip(good["fix_sha"], good["inducing_sha"], strict=True):
        by_inducing.setdefault(ind, set()).add(fix)
    newest = int(times.max()) if len(times) else 0
    young = times > newest - cfg.verification_days * 86400
    fixed_by, days, n_fixes, state = [], [], [], []
    lab: list[int | None] = []
    for i, sha in enumerate(changes["sha"]):
        fs = by_inducing.get(sha)
        if fs:
            order = sorted(fs, key=lambda s: (when[s], s))
            fixed_by.append(order)
            days.append((when[order[0]] - times[i]) / 86400.0)
            n_fixes.append(len(order))
            lab.append(1)
            state.append("buggy")
        else:
            fixed_by.append([])
            days.append(None)
            n_fixes.append(0)
            if young[i]:
                lab.append(None)
                state.append("unlabelled")
            else:
                lab.append(0)
                state.append("clean")
    src = source_file_counts(files, changes, resolved)
    labels = pd.DataFrame(
        {
            "sha": changes["sha"],
            "label": pd.array(lab, dtype="Int8"),
            "label_state": state,
            "fixed_by": fixed_by,
            "days_to_fix": pd.array(days, dtype="Float64"),
            "n_fixes": np.asarray(n_fixes, dtype="int32"),
            "source_files": src.to_numpy(),
            "is_fix": is_fix.astype("int8"),
        }
    )
    gen = ds.meta.get("generation")
    labels_key = settings_key(resolved)  # labels also depend on the vendored directories
    store.atomic_write_table(
        data / LABELS_FILE, _table("labels", labels, labels_key), generation=gen
    )
    link_df = links.rename(columns={"lines": "lines"})[
        ["fix_sha", "inducing_sha", "path", "lines", "sample", "dropped"]
    ]
    store.atomic_write_table(data / LINKS_FILE, _table("szz_links", link_df, key), generation=gen)

    summary = c[c["inducing_sha"].isna()]
    blamed_any = set(good["fix_sha"])
    result = LabelResult(
        data_dir=data,
        changes=len(changes),
        fixes=int(is_fix.sum()),
        fixes_blamed=len(blame_shas),
        fixes_too_large=int(large.sum()),
        fixes_blamed_nothing=len(set(summary["fix_sha"]) - blamed_any),
        buggy=state.count("buggy"),
        clean=state.count("clean"),
        unlabelled=state.count("unlabelled"),
        links=len(good),
        clean_without_source=int(
            ((labels["label_state"] == "clean") & (labels["source_files"] == 0)).sum()
        ),
        newly_blamed=len(new_results),
        github_fixes=github_fixes,
        github_issues=len(github.issues) if github is not None else 0,
        dropped={k: int(v) for k, v in links["dropped"].value_counts().items()},
        vendored=vendored,
        warnings=notes,
    )
    result.seconds = time.perf_counter() - t0
    return result


def _table(name: str, df: pd.DataFrame, key: str) -> pa.Table:
    t = pa.Table.from_pandas(df, schema=arrow_schema(name), preserve_index=False)
    md = dict(t.schema.metadata or {})
    md[b"diffrisk.label_settings"] = key.encode()
    return t.replace_schema_metadata(md)


def _merges(repo: Any, head: str | None) -> set[str]:
    out = repo.run("rev-list", "--merges", head or "HEAD", check=False)
    return set(out.decode().split())


def _read_labelled(data_dir: Path, name: str, what: str) -> pd.DataFrame:
    path = data_dir / name
    if not path.exists():
        raise DataError(f"no {what} in {data_dir}", hint="run `diffrisk label` first")
    meta = store.read_meta(data_dir)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as err:
        raise DataError(
            f"{path} is corrupt or unreadable ({err})", hint="run `diffrisk label` again"
        ) from None
    gen = (table.schema.metadata or {}).get(b"diffrisk.generation", b"").decode()
    if meta is not None and gen != meta.get("generation"):
        raise DataError(
            f"{path} was computed for an older dataset (mined again since)",
            hint="run `diffrisk label` again",
        )
    return table.to_pandas()


def load_labels(data_dir: str | Path) -> pd.DataFrame:
    """labels.parquet; a :class:`DataError` when missing or older than the mined dataset."""
    return _read_labelled(Path(data_dir), LABELS_FILE, "labels")


def load_links(data_dir: str | Path) -> pd.DataFrame:
    """szz_links.parquet (every fix -> inducing link, with why it was dropped, if it was)."""
    return _read_labelled(Path(data_dir), LINKS_FILE, "SZZ links")


def sample_links(data_dir: str | Path, n: int, seed: int | None = None) -> list[dict[str, Any]]:
    """``n`` random kept links with both subjects and the blamed lines, for a person to judge."""
    data = Path(data_dir)
    links = load_links(data)
    links = links[links["dropped"].isna()]
    if links.empty or n <= 0:
        return []
    pick = links.sample(n=min(n, len(links)), random_state=seed)
    ds = store.load_dataset(data)
    assert ds is not None
    ch = ds.changes.set_index("sha")
    out = []
    for r in pick.itertuples(index=False):
        fix = ch.loc[r.fix_sha]
        ind = ch.loc[r.inducing_sha]
        out.append(
            {
                "fix_sha": r.fix_sha,
                "fix_subject": fix["subject"],
                "fix_time": fix["author_time"].isoformat(),
                "inducing_sha": r.inducing_sha,
                "inducing_subject": ind["subject"],
                "inducing_time": ind["author_time"].isoformat(),
                "path": r.path,
                "lines": int(r.lines),
                "sample": list(r.sample) if r.sample is not None else [],
            }
        )
    return out
