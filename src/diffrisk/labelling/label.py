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
import tempfile
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from diffrisk.config import LabelConfig
from diffrisk.data import paths, store
from diffrisk.data.datadir import DataDir
from diffrisk.data.schema import arrow_schema
from diffrisk.errors import DataError, GitHubError, Interrupted, signal_number
from diffrisk.features.source import SourceFilter
from diffrisk.features.vendored import detect as detect_vendored
from diffrisk.features.vendored import exclude as exclude_vendored
from diffrisk.features.vendored import patterns as patterns_of
from diffrisk.git.repo import GitRepo, open_repo
from diffrisk.labelling.sources import Fix, FixEvidence, combine
from diffrisk.labelling.sources.jira import load_jira
from diffrisk.labelling.sources.words import ShaIndex, developer_evidence, read_messages
from diffrisk.labelling.szz import BlameSettings, FixBlame, FixJob, IgnoreRevs, blame_fixes
from diffrisk.trusted import SettingsSource

Progress = Callable[[str, int, int | None], None]

LABELS_FILE = paths.LABELS_FILE
LINKS_FILE = paths.LINKS_FILE
CACHE_FILE = paths.SZZ_CACHE_FILE
#: How often a long blame writes what it found so far into the cache.
CHECKPOINT_SECONDS = 60.0
#: Bump when the blame procedure changes in a way that changes its results (2: docstrings
#: compared as black compares them in the reformat look-through; 3: numbers and string
#: prefixes normalised in the reformat pre-check; 4: comment-only lines known by every
#: language's comment syntax).
BLAME_VERSION = 4

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
    """Fixes only GitHub's bug labels named."""
    github_issues: int = 0
    fixes_by_source: dict[str, int] = field(default_factory=dict)
    """Fixes each source named (a fix several sources name counts for each)."""
    fixes_rejected: int = 0
    """Commits the keyword rule named that change no source file (not bug fixes)."""
    explicit_links: int = 0
    """Kept links that a source named itself (developers' words, a fixes file), not blame."""
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


def github_source(
    repo_name: str, token: str, bug_labels: list[str], base_url: str | None = None
) -> tuple[GitHubBugs | None, list[str]]:
    """:func:`fetch_github_bugs`, or None and a warning naming the source when GitHub
    refuses or fails (401, 404, rate limit, unreachable): the other sources go on. A
    malformed ``owner/name`` is the caller's error and raises."""
    if repo_name.count("/") != 1:
        return fetch_github_bugs(repo_name, token, bug_labels, base_url), []  # raises
    try:
        return fetch_github_bugs(repo_name, token, bug_labels, base_url), []
    except GitHubError as err:
        hint = f" ({err.hint})" if getattr(err, "hint", None) else ""
        return None, [f"GitHub source skipped: {err.message}{hint}"]


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
        "indent": cfg.python_indentation and cfg.ignore_whitespace,
        "incidental": cfg.skip_incidental,
        "additions": cfg.blame_additions,
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
        python_indentation=cfg.python_indentation,
        skip_incidental=cfg.skip_incidental,
        blame_additions=cfg.blame_additions,
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


# -- fixes -----------------------------------------------------------------------------


def _changes_source(files: pd.DataFrame, cfg: LabelConfig) -> set[str]:
    """Commits that add or delete lines of a source file that is not a type stub."""
    f = files[((files["la"] > 0) | (files["ld"] > 0)) & ~files["binary"].astype(bool)]
    f = f[~f["path"].str.lower().str.endswith(".pyi")]
    is_src = SourceFilter.of(cfg.source_extensions, cfg.exclude_paths)
    f = f[f["path"].map(is_src).astype(bool)]
    return set(f["sha"])


def _github_evidence(changes: pd.DataFrame, github: GitHubBugs) -> list[FixEvidence]:
    out: list[FixEvidence] = []
    bug_numbers = github.numbers
    for sha, subject, refs in zip(
        changes["sha"], changes["subject"], changes["issue_refs"], strict=True
    ):
        nums = {int(n) for n in (refs if refs is not None else [])}
        pr = _pr_number(subject or "")
        if pr is not None:
            nums.add(pr)
        hit = sorted(nums & bug_numbers)
        if not hit:
            continue
        opened = [github.issues[n] for n in hit if n in github.issues]
        date = int(min(opened).timestamp()) if opened else None
        out.append(FixEvidence(sha, "github", date, f"#{hit[0]}"))
    return out


def collect_fixes(
    repo: GitRepo,
    changes: pd.DataFrame,
    files: pd.DataFrame,
    cfg: LabelConfig,
    github: GitHubBugs | None = None,
    evidence: Iterable[FixEvidence] = (),
    settings_rev: str | None = None,
) -> tuple[dict[str, Fix], int, list[str]]:
    """Every source's fixes among the mined ``changes``, combined; also how many keyword
    fixes were rejected for changing no source file, and notes for the user. A JIRA
    export inside the repository is read as it is in ``settings_rev`` when given (in CI
    the base commit: a pull request must not bring its own issue data)."""
    notes: list[str] = []
    found: list[FixEvidence] = []
    rejected = 0
    if "message" in cfg.sources:
        keyword = changes.loc[changes["fix"].fillna(0).astype(bool), "sha"]
        if cfg.judge_fix_changes and len(keyword):
            code = _changes_source(files, cfg)
            rejected = int((~keyword.isin(code)).sum())
            keyword = keyword[keyword.isin(code)]
        found += [FixEvidence(sha, "message") for sha in keyword]
    jira = "jira" in cfg.sources
    messages = (
        read_messages(repo, changes["sha"].tolist())
        if len(changes) and ("developer" in cfg.sources or jira)
        else {}
    )
    if "developer" in cfg.sources and messages:
        subjects = dict(zip(changes["sha"], changes["subject"], strict=True))
        found += developer_evidence(messages, changes["sha"], subjects)
    if "github" in cfg.sources and github is not None:
        found += _github_evidence(changes, github)
    if jira and messages:
        with _trusted_file(repo, cfg.jira.export, settings_rev) as export:
            jira_cfg = cfg.jira.model_copy(update={"export": export})
            evs, warns = load_jira(jira_cfg, messages, base=repo.path)
        found += evs
        notes += warns
    outside = [ev for ev in evidence if ev.source in cfg.sources]
    if outside:
        index = ShaIndex(changes["sha"])
        missing: dict[str, int] = {}
        for ev in outside:
            sha = index.resolve(ev.sha)
            if sha is None:
                missing[ev.source] = missing.get(ev.source, 0) + 1
                continue
            named = tuple(index.resolve(s) or s for s in ev.inducing)
            found.append(FixEvidence(sha, ev.source, ev.issue_date, ev.issue, named))
        for src, n in sorted(missing.items()):
            notes.append(
                f"{n} fix(es) from the {src} source are not among the mined commits "
                "(outside the mined history, merges, or not in this repository): left out"
            )
    return combine(found), rejected, notes


@contextlib.contextmanager
def _trusted_file(repo: GitRepo, path: str | None, rev: str | None) -> Iterator[str | None]:
    """``path`` as it is in commit ``rev`` (a temporary copy) when it lies inside the
    repository and ``rev`` is given; else ``path`` itself."""
    if path is None or rev is None:
        yield path
        return
    p = Path(path)
    src = SettingsSource.of(repo.path, rev)
    rel = src.inside(p if p.is_absolute() else repo.path / p)
    if rel is None:
        yield path
        return
    data = src.read(rel)
    if data is None:
        raise DataError(
            f"label.jira.export: {src.describe(rel)} does not exist",
            hint="commit the export to the repository, or give a path outside it",
        )
    with tempfile.TemporaryDirectory(prefix="diffrisk-jira-") as tmp:
        copy = Path(tmp) / p.name
        copy.write_bytes(data)
        yield str(copy)


def _by_source(fixes: dict[str, Fix]) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in fixes.values():
        for src in f.sources:
            out[src] = out.get(src, 0) + 1
    return out


def _explicit_rows(explicit: dict[str, list[str]], fixes: dict[str, Fix]) -> pd.DataFrame:
    """Links that a source named itself, as rows beside the blame cache's."""
    rows: list[tuple[Any, ...]] = [
        (fix, ind, "", 0, [], None, fixes[fix].named_by.get(ind, "developer"))
        for fix, named in explicit.items()
        for ind in named
    ]
    return pd.DataFrame(
        rows,
        columns=["fix_sha", "inducing_sha", "path", "lines", "sample", "fix_path", "source"],
    )


def judge_links(
    links: pd.DataFrame,
    when: Mapping[str, int],
    issue_dates: Mapping[str, int | None],
    *,
    select: str = "recent",
    merges: set[str] | frozenset[str] = frozenset(),
    in_vendored: Callable[[str], bool] | None = None,
    superseded: Iterable[str] = (),
) -> list[str | None]:
    """Per link (columns fix_sha, inducing_sha, path, fix_path, source): None when it
    labels the inducing commit, else why not: ``merge``/``not_mined`` (no time in
    ``when``), ``after_fix``, ``after_issue`` (committed after the bug was reported),
    ``vendored``, ``not_recent`` (``select="recent"``: an older candidate of a fix whose
    blame named a newer one; R-SZZ), ``superseded`` (a blamed link that would be kept, of
    a fix in ``superseded``: one whose inducing commits a source named). Named links
    (source other than ``szz``) are trusted: only ``after_fix`` and a missing commit drop
    them."""
    out: list[str | None] = []
    fix_paths = links["fix_path"] if "fix_path" in links else links["path"]
    for fix, ind, path, fix_path, source in zip(
        links["fix_sha"],
        links["inducing_sha"],
        links["path"],
        fix_paths,
        links["source"],
        strict=True,
    ):
        t_ind = when.get(ind)
        issued = issue_dates.get(fix)
        if t_ind is None:
            out.append("merge" if ind in merges else "not_mined")
        elif ind == fix or t_ind > when.get(fix, t_ind):
            out.append("after_fix")
        elif source != "szz":
            out.append(None)
        elif issued is not None and t_ind > issued:
            out.append("after_issue")
        elif in_vendored is not None and (
            in_vendored(path) or in_vendored(fix_path if isinstance(fix_path, str) else path)
        ):
            out.append("vendored")
        else:
            out.append(None)
    if select == "recent":
        newest: dict[str, int] = {}
        for fix, ind, source, drop in zip(
            links["fix_sha"], links["inducing_sha"], links["source"], out, strict=True
        ):
            if drop is None and source == "szz":
                newest[fix] = max(newest.get(fix, when[ind]), when[ind])
        for i, (fix, ind, source) in enumerate(
            zip(links["fix_sha"], links["inducing_sha"], links["source"], strict=True)
        ):
            if out[i] is None and source == "szz" and when[ind] < newest[fix]:
                out[i] = "not_recent"
    named = set(superseded)
    if named:
        for i, (fix, source) in enumerate(zip(links["fix_sha"], links["source"], strict=True)):
            if out[i] is None and source == "szz" and fix in named:
                out[i] = "superseded"
    return out


def _apply_overrides(
    overrides: pd.DataFrame,
    shas: pd.Series,
    lab: list[int | None],
    state: list[str],
    label_source: list[str],
) -> list[str]:
    """Replace labels in place by a labels file's; notes about rows that matched nothing."""
    index = ShaIndex(shas)
    pos = {sha: i for i, sha in enumerate(shas)}
    missing = 0
    for sha, value in zip(overrides["sha"], overrides["label"], strict=True):
        full = index.resolve(sha)
        if full is None:
            missing += 1
            continue
        i = pos[full]
        if pd.isna(value):
            lab[i], state[i] = None, "unlabelled"
        else:
            lab[i], state[i] = int(value), ("buggy" if int(value) else "clean")
        label_source[i] = "file"
    if missing:
        return [f"{missing} row(s) of the labels file name no mined commit: left out"]
    return []


def _usable(explicit: Mapping[str, list[str]], when: Mapping[str, int]) -> set[str]:
    """Fixes whose named links label something (a named commit that is known and older
    than the fix): their blamed links are superseded; the others keep SZZ's."""
    return {
        fix
        for fix, named in explicit.items()
        if fix in when and any(s in when and s != fix and when[s] <= when[fix] for s in named)
    }


def _blame(
    repo: GitRepo,
    shas: list[str],
    cfg: LabelConfig,
    progress: Progress | None,
    results: list[FixBlame],
    on_result: Callable[[], None] | None = None,
) -> Generator[FixBlame, None, None]:
    """Blame ``shas`` (appending to ``results``); close it to stop the workers at once."""
    ignore = IgnoreRevs(repo)
    try:
        revs = ignore.files_for(shas)
        jobs = [FixJob(s, revs.get(s)) for s in shas]
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
                results.append(res)
                if on_result is not None:
                    on_result()
                yield res
    finally:
        ignore.close()


# -- the stage ---------------------------------------------------------------------------


def label(
    repo_path: str | Path,
    data_dir: str | Path,
    config: LabelConfig | None = None,
    progress: Progress | None = None,
    github: GitHubBugs | None = None,
    evidence: Iterable[FixEvidence] = (),
    overrides: pd.DataFrame | None = None,
    settings_rev: str | None = None,
) -> LabelResult:
    """Label every mined change; writes labels.parquet, szz_links.parquet and the blame cache.

    Fixes come from the sources ``config.sources`` names: the keyword rule and developers'
    words always, GitHub with ``github``, JIRA and files through ``evidence``.
    ``overrides`` (:func:`diffrisk.labelling.sources.external.read_labels`) replaces the
    labels of the commits it lists."""
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
    notes: list[str] = []

    # 1. fixes, from every source
    fixes, rejected, source_notes = collect_fixes(
        repo, changes, files, resolved, github, evidence, settings_rev
    )
    notes += source_notes
    is_fix = changes["sha"].isin(set(fixes)).to_numpy()
    explicit = {sha: f.inducing for sha, f in fixes.items() if f.inducing}
    fix_rows = changes[is_fix]
    large = fix_rows["nf"] > cfg.max_fix_files
    # fixes with named links are blamed too: how often blame agrees with the developers
    # is the label report's estimate of SZZ's precision on this repository
    blame_shas = list(fix_rows.loc[~large, "sha"])

    # 2. blame (cached per fix)
    key = settings_key(cfg)
    cache_path = data / CACHE_FILE
    stored = _read_cache(cache_path, notes)
    cache = stored[stored["settings"] == key]
    done = set(cache["fix_sha"])
    todo = [s for s in blame_shas if s not in done]
    new_results: list[FixBlame] = []
    if todo:
        checkpoint = _Checkpoint(cache_path, stored, key, set(changes["sha"]), new_results)
        if progress:
            progress("blame", 0, len(todo))
        try:
            with contextlib.closing(
                _blame(repo, todo, cfg, progress, new_results, checkpoint.maybe)
            ) as running:
                for _ in running:
                    pass
        except KeyboardInterrupt as err:
            # the workers and their git processes are gone (closing() above)
            raise checkpoint.interrupted(err, len(todo)) from None
        checkpoint.save()
        cache = checkpoint.stored[checkpoint.stored["settings"] == key]

    # 3. candidates
    wanted = set(blame_shas)
    c = cache[cache["fix_sha"].isin(wanted)]
    links = c[c["inducing_sha"].notna()].copy()
    links["source"] = "szz"
    links = pd.concat([links, _explicit_rows(explicit, fixes)], ignore_index=True)
    merges = _merges(repo, ds.meta.get("head")) if len(links) else set()
    links["dropped"] = pd.Series(
        judge_links(
            links,
            when,
            {s: f.issue_date for s, f in fixes.items()} if cfg.issue_date_filter else {},
            select=cfg.select,
            merges=merges,
            in_vendored=in_vendored,
            superseded=_usable(explicit, when),
        ),
        index=links.index,
        dtype="object",
    )
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
    label_source = ["szz"] * len(lab)
    if overrides is not None:
        notes += _apply_overrides(overrides, changes["sha"], lab, state, label_source)
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
            "fix_sources": [fixes[sha].sources if sha in fixes else [] for sha in changes["sha"]],
            "label_source": label_source,
        }
    )
    gen = ds.meta.get("generation")
    labels_key = settings_key(resolved)  # labels also depend on the vendored directories
    store.atomic_write_table(
        data / LABELS_FILE, _table("labels", labels, labels_key), generation=gen
    )
    link_df = links[["fix_sha", "inducing_sha", "path", "lines", "sample", "source", "dropped"]]
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
        fixes_by_source=_by_source(fixes),
        fixes_rejected=rejected,
        explicit_links=int((good["source"] != "szz").sum()),
        buggy=state.count("buggy"),
        clean=state.count("clean"),
        unlabelled=state.count("unlabelled"),
        links=len(good),
        clean_without_source=int(
            ((labels["label_state"] == "clean") & (labels["source_files"] == 0)).sum()
        ),
        newly_blamed=len(new_results),
        github_fixes=sum(1 for f in fixes.values() if f.sources == ["github"]),
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


def load_labels(data_dir: str | Path) -> pd.DataFrame:
    """labels.parquet; a :class:`DataError` when missing or older than the mined dataset."""
    return DataDir(data_dir).labels()


def load_links(data_dir: str | Path) -> pd.DataFrame:
    """szz_links.parquet (every fix -> inducing link, with why it was dropped, if it was)."""
    return DataDir(data_dir).links()


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


# -- blame given fixes (no mined dataset) -------------------------------------------------

GIVEN_COLUMNS = [
    "fix_sha",
    "inducing_sha",
    "path",
    "lines",
    "source",
    "dropped",
    "fix_time",
    "inducing_time",
    "sample",
]


def _resolve_commits(repo: GitRepo, refs: list[str]) -> dict[str, str]:
    """ref -> full commit id, for the refs that name a commit of ``repo``."""
    if not refs:
        return {}
    query = "".join(f"{r}^{{commit}}\n" for r in refs).encode()
    out = repo.run(
        "cat-file", "--batch-check=%(objectname) %(objecttype)", input=query, check=False
    )
    res: dict[str, str] = {}
    for ref, line in zip(refs, out.decode().splitlines(), strict=False):
        parts = line.split()
        if len(parts) == 2 and parts[1] == "commit":
            res[ref] = parts[0]
    return res


def _author_times(repo: GitRepo, shas: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(shas))
    if not wanted:
        return {}
    out = repo.run(
        "log",
        "--no-walk=unsorted",
        "--stdin",
        "--format=%H %at",
        input=("\n".join(wanted) + "\n").encode(),
        check=False,
    )
    res: dict[str, int] = {}
    for line in out.decode().splitlines():
        sha, _, t = line.partition(" ")
        if t.strip().lstrip("-").isdigit():
            res[sha] = int(t)
    return res


def blame_given(
    repo_path: str | Path,
    evidence: Iterable[FixEvidence],
    config: LabelConfig | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Blame the given fixes with the label stage's rules, without a mined dataset: every
    link, kept (``dropped`` null) or not, with the blamed lines' text (``sample``).

    The candidates' filters are the label stage's (after the fix, after the bug report
    when a date is given, ``label.select``); commits need not be mined, so a link is only
    dropped as ``not_mined`` when its commit is missing from the repository."""
    cfg = config or LabelConfig()
    repo = open_repo(repo_path)
    evs = list(evidence)
    refs = list(dict.fromkeys([e.sha for e in evs] + [s for e in evs for s in e.inducing]))
    full = _resolve_commits(repo, refs)
    unknown = [e.sha for e in evs if e.sha not in full]
    if unknown:
        raise DataError(
            f"{len(unknown)} fix(es) are not commits of {repo.path}: "
            + ", ".join(u[:12] for u in unknown[:5])
            + (" ..." if len(unknown) > 5 else ""),
            hint="check the repository (--repo) and that its history is complete (not shallow)",
        )
    fixes = combine(
        FixEvidence(
            full[e.sha], e.source, e.issue_date, e.issue, tuple(full.get(s, s) for s in e.inducing)
        )
        for e in evs
    )
    explicit = {sha: f.inducing for sha, f in fixes.items() if f.inducing}
    todo = list(fixes)
    results: list[FixBlame] = []
    if todo and progress:
        progress("blame", 0, len(todo))
    with contextlib.closing(_blame(repo, todo, cfg, progress, results)) as running:
        for _ in running:
            pass
    rows = _cache_rows("", results)
    links = rows[rows["inducing_sha"].notna()].drop(columns=["settings", "cosmetic"])
    links["source"] = "szz"
    links = pd.concat([links, _explicit_rows(explicit, fixes)], ignore_index=True)
    when = _author_times(repo, set(links["inducing_sha"]) | set(fixes))
    links["dropped"] = judge_links(
        links,
        when,
        {s: f.issue_date for s, f in fixes.items()} if cfg.issue_date_filter else {},
        select=cfg.select,
        superseded=_usable(explicit, when),
    )

    def iso(sha: str) -> str | None:
        t = when.get(sha)
        return None if t is None else datetime.fromtimestamp(t, tz=timezone.utc).isoformat()

    links["dropped"] = links["dropped"].astype(object).where(links["dropped"].notna(), None)
    links["fix_time"] = links["fix_sha"].map(iso)
    links["inducing_time"] = links["inducing_sha"].map(iso)
    links["lines"] = links["lines"].astype("int64")
    links["sample"] = links["sample"].map(lambda v: list(v) if v is not None else [])
    order = {sha: i for i, sha in enumerate(fixes)}
    links = links.sort_values(
        ["fix_sha", "inducing_time", "path"],
        key=lambda c: c.map(order) if c.name == "fix_sha" else c,
    )
    return links[GIVEN_COLUMNS].reset_index(drop=True)


def write_links(links: pd.DataFrame, out: str | Path | None) -> str | None:
    """Write :func:`blame_given`'s links: CSV (``sample`` as a JSON list), ``.jsonl`` or
    ``.json`` by the name's ending; ``-`` or None returns the CSV text instead."""
    if out is not None and str(out) != "-":
        p = Path(out)
        if p.suffix == ".jsonl":
            text = "".join(
                json.dumps(r, ensure_ascii=False) + "\n" for r in links.to_dict(orient="records")
            )
        elif p.suffix == ".json":
            text = json.dumps(links.to_dict(orient="records"), ensure_ascii=False, indent=1) + "\n"
        else:
            text = _links_csv(links)
        store.atomic_write_bytes(p, text.encode())
        return None
    return _links_csv(links)


def _links_csv(links: pd.DataFrame) -> str:
    flat = links.copy()
    flat["sample"] = flat["sample"].map(lambda v: json.dumps(list(v), ensure_ascii=False))
    return flat.to_csv(index=False)
