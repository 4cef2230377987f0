"""The analysis of a change before the model sees it: the history before it replayed as
mining replays it, and the feature rows of the squashed change, its files and its commits
(:func:`analyze`), plus the past year's changes to rank it against (:func:`past_year`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from diffrisk.config import Config, LabelConfig
from diffrisk.data import store
from diffrisk.data.schema import column_names
from diffrisk.errors import (
    DataError,
    NothingToScoreError,
    RepositoryError,
)
from diffrisk.features.codelines import CodeCounts, added_code_lines, diff_code_lines, endings_of
from diffrisk.features.codemetrics import BlobMetrics, compute_blob_metrics, metric_key
from diffrisk.features.fixes import FixRule
from diffrisk.features.history import CommitRecord, FileChange, HistoryState, subsystem
from diffrisk.features.source import SourceFilter, with_source_lines
from diffrisk.features.vendored import resolve as resolve_vendored
from diffrisk.git.repo import CatFile, GitRepo
from diffrisk.mining.mine import (
    CODE_AGG,
    change_row,
    code_line_columns,
    code_metric_columns,
    cosmetic_values,
    diff_record,
    file_rows,
    known_commits,
    new_state,
    rev_list,
    walk_history,
)

SECONDS_PER_DAY = 86400
PERCENTILE_DAYS = 365
REVIEWER_DAYS = 365
MAX_REVIEWERS = 3

# -- the history before the PR ------------------------------------------------------------


@dataclass
class History:
    """A :class:`HistoryState` over the ancestors of ``tips``, plus per-commit facts."""

    state: HistoryState
    shas: list[str]  # by bit
    emails: list[str]  # by bit ("" for merges)
    times: np.ndarray  # by bit (author time, 0 for merges)
    fix: np.ndarray  # by bit: 1 when a bug fix
    buggy: np.ndarray  # by bit: 1 when labelled defect-inducing
    computed: int  # commits the dataset lacked, read from git

    @property
    def count(self) -> int:
        return len(self.shas)


#: The label stage's columns the replayed history reads (``labels.parquet``).
LABEL_COLUMNS = ("sha", "label", "is_fix")


def replay_history(
    repo: GitRepo,
    tips: list[str],
    dataset: store.Dataset,
    rule: FixRule,
    labels: pd.DataFrame | None = None,
    later: Sequence[tuple[str, list[str]]] = (),
) -> History:
    """Replay the mined history of every commit reachable from ``tips`` (as mining does).

    Commits the dataset lacks (mined at an older head) are read from git and added the
    way :func:`diffrisk.mining.mine.mine` adds new commits. ``later`` are the commits the
    caller will process afterwards (their parents' ancestry must be kept).
    """
    graph = rev_list(repo, tips)
    state = new_state(graph, list(later))
    wanted = {sha for sha, parents in graph if len(parents) <= 1}
    known = known_commits(dataset, wanted)
    if not known and len(dataset.changes) and wanted:
        raise DataError(
            "the mined dataset shares no commit with this change's history: it belongs to another repository",
            hint="pass the --data-dir of this repository, or run `diffrisk mine` for it",
        )
    missing = len(wanted) - len(known)
    fix_by_sha: dict[str, int] = {}
    bug_by_sha: dict[str, int] = {}
    if labels is not None:
        lab = labels[labels["sha"].isin(wanted)]
        fix_by_sha = {s: int(v) for s, v in zip(lab["sha"], lab["is_fix"].fillna(0), strict=True)}
        bug_by_sha = {s: int(v) for s, v in zip(lab["sha"], lab["label"].fillna(0), strict=True)}

    n = len(graph) + len(later)
    shas = [sha for sha, _ in graph]
    emails = [""] * len(graph)
    times = np.zeros(n, dtype=np.int64)
    fix = np.zeros(n, dtype=np.int8)
    buggy = np.zeros(n, dtype=np.int8)
    for step in walk_history(repo, graph, known, state, rule):
        if step.known is not None:
            email, t, fx = step.known.email, step.known.time, step.known.fix
        else:
            assert step.record is not None
            rec = step.record
            email, t = rec.author_email, rec.author_time
            fx = int(rule.is_fix(rec.subject, rec.body))
        emails[step.bit] = email
        times[step.bit] = t
        fix[step.bit] = fix_by_sha.get(step.sha, fx)
        buggy[step.bit] = bug_by_sha.get(step.sha, 0)
    return History(state, shas, emails, times, fix, buggy, computed=missing)


# -- the PR's changes --------------------------------------------------------------------


@dataclass
class FileFacts:
    """What the history before the PR says about one touched file."""

    path: str
    change: FileChange
    past_changes: int
    past_fixes: int
    past_bugs: int
    cc_before: float | None
    cc_after: float | None
    bits: np.ndarray  # prior commits that changed it

    @property
    def cc_added(self) -> float | None:
        if self.cc_before is None and self.cc_after is None:
            return None
        return (self.cc_after or 0.0) - (self.cc_before or 0.0)


@dataclass
class Analysis:
    """The features of base..head: squashed, per file and per commit."""

    base: str
    head: str
    merge_base: str
    author: str
    time: int
    record: CommitRecord
    pr_row: pd.DataFrame  # one row, changes.parquet columns
    file_rows: pd.DataFrame  # one row per touched file (that file's change alone), + "path"
    commit_rows: pd.DataFrame  # one row per non-merge commit of the PR
    facts: list[FileFacts]
    history: History
    subsystem_commits: dict[str, int]  # touched subsystem -> bitset of prior commits touching it
    new_subsystems: list[str]  # touched subsystems the author never changed before
    pr_authors: set[str]
    added_ranges: dict[str, tuple[int, int]] = field(default_factory=dict)  # path -> lines
    label_config: LabelConfig = field(default_factory=LabelConfig)
    """The source rule the rows used: ``label`` settings plus the history's vendored directories."""


def _metric_items(
    files: Iterable[tuple[str, str | None, str | None, str | None]],
) -> set[tuple[str, str]]:
    """(blob id, how it is measured) of every (path, old path, blob before, blob after)
    whose language has code metrics (radon for Python, lizard for the others), as mining
    measures them (:func:`~diffrisk.mining.mine.metric_blobs`)."""
    out: set[tuple[str, str]] = set()
    for path, old_path, before, after in files:
        if after:
            key = metric_key(path)
            if key is not None:
                out.add((after, key))
        if before:
            key = metric_key(old_path or path)
            if key is not None:
                out.add((before, key))
    return out


def _blob_metrics(
    repo: GitRepo,
    items: set[tuple[str, str]],
    cache: dict[str, BlobMetrics],
    workers: int | None = None,
) -> dict[str, BlobMetrics]:
    """Code metrics of ``items`` (blob id, measuring key) into ``cache`` (the dataset's),
    computed as mining does."""
    need = sorted((o, k) for o, k in items if o not in cache)
    for oid, m in compute_blob_metrics(str(repo.git_dir), str(repo.path), need, workers):
        if m is not None:
            cache[oid] = m
    return cache


def _source_rule(
    cfg: Config, dataset: store.Dataset, rows: list[dict[str, Any]], files: list[dict[str, Any]]
) -> LabelConfig:
    """The label stage's source rule for this change: ``cfg.label`` plus the vendored
    directories of the history *and* the change's own commits (a PR that vendors a library
    is scored as the label stage will see it once it is mined)."""
    known = set(dataset.changes["sha"])
    new_rows = [r for r in rows if r["sha"] not in known]
    changes, all_files = dataset.changes, dataset.files
    if new_rows:
        changes = pd.concat(
            [changes[["sha", "subject"]], pd.DataFrame(new_rows, columns=["sha", "subject"])],
            ignore_index=True,
        )
        new_files = pd.DataFrame(
            [f for f in files if f["sha"] not in known], columns=["sha", "path", "la"]
        )
        all_files = pd.concat([all_files[["sha", "path", "la"]], new_files], ignore_index=True)
    return resolve_vendored(cfg.label, changes, all_files)


def _add_code_lines(
    rows: list[dict[str, Any]],
    counts: CodeCounts,
    exts: list[str],
    exclude: list[str],
    repo: GitRepo,
) -> None:
    """``la_code``, ``la_control``, ``code_tokens`` and ``cosmetic`` of file rows, as
    mining computes them (files matching ``exclude``, which the models never count, are
    not judged cosmetic)."""
    cols = code_line_columns(pd.DataFrame(rows, columns=["sha", "path", "la"]), counts, exts)
    source = SourceFilter.of(exts, exclude)
    with CatFile(repo) as cat:  # starts git only when a file needs its versions read
        cosmetic = cosmetic_values(rows, counts, cat.read, source=source)
    for r, code, control, tokens, cos in zip(
        rows, cols["la_code"], cols["la_control"], cols["code_tokens"], cosmetic, strict=True
    ):
        r["la_code"], r["la_control"], r["code_tokens"] = float(code), float(control), tokens
        r["cosmetic"] = cos


def _rows_frame(
    rows: list[dict[str, Any]],
    files: list[dict[str, Any]],
    metrics: dict[str, BlobMetrics] | None,
    label_cfg: LabelConfig,
) -> pd.DataFrame:
    """Changes rows with the code-metric aggregates, typed like changes.parquet."""
    df = pd.DataFrame(rows, columns=[c for c in column_names("changes") if c not in CODE_AGG])
    fdf = pd.DataFrame(
        files,
        columns=[
            "sha",
            "path",
            "la",
            "binary",
            "blob_before",
            "blob_after",
            "is_python",
            "la_code",
            "la_control",
            "code_tokens",
            "cosmetic",
        ],
    )
    if metrics is not None and len(df):
        _per_file, agg = code_metric_columns(fdf, metrics)
        df = df.merge(agg, on="sha", how="left")
        df["unparsable_files"] = df["unparsable_files"].fillna(0)
    else:
        for c in CODE_AGG:
            df[c] = np.nan
        df["unparsable_files"] = 0
    return with_source_lines(store.normalize("changes", df), fdf, label_cfg)


def analyze(
    repo: GitRepo,
    base: str,
    head: str,
    dataset: store.Dataset,
    config: Config | None = None,
    *,
    title: str | None = None,
    body: str = "",
    labels: pd.DataFrame | None = None,
) -> Analysis:
    """Features of the change base..head, against the history before it."""
    cfg = config or Config()
    rule = FixRule.from_config(cfg.fixes)
    base_sha, head_sha = repo.resolve(base), repo.resolve(head)
    bases = repo.run("merge-base", "--all", base_sha, head_sha, check=False).decode().split()
    if not bases:
        raise RepositoryError(
            f"{base} and {head} have no common history",
            hint="pass the branch the PR targets as --base",
        )
    pr_graph = rev_list(repo, [head_sha], exclude=[base_sha])
    if not pr_graph:
        raise NothingToScoreError(
            f"{head} has no commits that are not in {base}: nothing to score",
            hint="check --base and --head (the PR's target branch and its head)",
        )
    hist = replay_history(repo, bases, dataset, rule, labels, later=pr_graph)
    state = hist.state
    prior = state.ancestry_of(bases)
    n_prior = hist.count

    out = repo.run("log", "-1", "--no-mailmap", "--format=%aE%x00%at", head_sha).decode(
        "utf-8", "replace"
    )
    email, _, at = out.strip().partition("\x00")
    email, t = email.strip().lower(), int(at or 0)
    if (
        title is None
    ):  # no PR title: the first commit's subject (git's squash message starts with it)
        first = next((s for s, p in pr_graph if len(p) <= 1), head_sha)
        title = repo.run("log", "-1", "--format=%s", first).decode("utf-8", "replace").strip()
    merge_base = bases[0]
    rec = diff_record(repo, merge_base, head_sha, email=email, time=t, subject=title)
    rec.body = body
    if not rec.files:
        raise NothingToScoreError(
            f"{base}...{head} changes no files: nothing to score",
            hint="an empty commit has no risk; score a range that changes files",
        )

    code_metrics = bool(dataset.meta.get("settings", {}).get("code_metrics", True))
    with CatFile(repo) as cat:
        state.set_line_counts(rec.files, cat.read)
    pr = change_row(rec, state, prior, rule, cfg.mine, prior_count=n_prior)
    pr_files = file_rows(rec)
    exts = dataset.meta.get("settings", {}).get("code_line_extensions")
    exts = list(exts) if exts is not None else list(cfg.label.source_extensions)
    # the spellings the change's files use (".C" as well as ".c"): git matches exactly
    pr_endings = endings_of([f.path for f in rec.files], exts)
    pr_code, added_ranges = diff_code_lines(repo, merge_base, head_sha, pr_endings)
    _add_code_lines(
        pr_files,
        {} if pr_code is None else {head_sha: pr_code},
        exts,
        cfg.label.exclude_paths,
        repo,
    )
    pr_blobs = _metric_items((f.path, f.old_path, f.old_blob, f.new_blob) for f in rec.files)
    metrics = _blob_metrics(repo, pr_blobs, dataset.blob_metrics, cfg.mine.workers)

    # each touched file as a change of its own (same author, time and message)
    one_rows, one_files = [], []
    for i, f in enumerate(rec.files):
        one = CommitRecord(f"{i:040d}", [merge_base], email, t, title, body, [f])
        one_rows.append(change_row(one, state, prior, rule, cfg.mine, prior_count=n_prior))
        one_files.extend(file_rows(one))
    _add_code_lines(
        one_files,
        {} if pr_code is None else {r["sha"]: pr_code for r in one_files},
        exts,
        cfg.label.exclude_paths,
        repo,
    )

    # what the history says about each file
    facts = []
    for f in rec.files:
        bits = state.file_history(f.history_path)
        bits = bits[bits < n_prior]
        mb = metrics.get(f.old_blob) if f.is_python and f.old_blob else None
        ma = metrics.get(f.new_blob) if f.is_python and f.new_blob else None
        cc_b = mb.cc if mb is not None and mb.ok else None
        cc_a = ma.cc if ma is not None and ma.ok else None
        if f.is_python and ((mb is not None and not mb.ok) or (ma is not None and not ma.ok)):
            cc_b = cc_a = None
        facts.append(
            FileFacts(
                path=f.path,
                change=f,
                past_changes=len(bits),
                past_fixes=int(hist.fix[bits].sum()) if len(bits) else 0,
                past_bugs=int(hist.buggy[bits].sum()) if len(bits) else 0,
                cc_before=cc_b,
                cc_after=cc_a,
                bits=bits,
            )
        )

    # subsystems: which past commits touched each, and which are new to the author
    touched = {subsystem(f.path) for f in rec.files}
    before_pr = (1 << n_prior) - 1
    sub_commits = {s: state.subsystem_mask(s) & before_pr for s in touched}
    new_subs = sorted(s for s in touched if not state.subsystem_commits(email, s, before_pr))

    # the PR's own commits, each against its own ancestors
    commits = [(sha, parents) for sha, parents in pr_graph]
    c_rows, c_files = [], []
    pr_authors = {email}
    for step in walk_history(repo, commits, {}, state, rule):
        crec = step.record
        assert crec is not None
        c_rows.append(change_row(crec, state, step.prior, rule, cfg.mine, prior_count=step.bit))
        c_files.extend(file_rows(crec))
        pr_authors.add(crec.author_email)
    c_code = added_code_lines(
        repo, [r["sha"] for r in c_rows], endings_of([r["path"] for r in c_files], exts)
    )
    _add_code_lines(c_files, c_code, exts, cfg.label.exclude_paths, repo)
    lcfg = _source_rule(cfg, dataset, c_rows, c_files)
    c_blobs = _metric_items(
        (r["path"], r.get("old_path"), r["blob_before"], r["blob_after"]) for r in c_files
    )
    if code_metrics:
        _blob_metrics(repo, c_blobs, metrics, cfg.mine.workers)

    use = metrics if code_metrics else None
    return Analysis(
        base=base_sha,
        head=head_sha,
        merge_base=merge_base,
        author=email,
        time=t,
        record=rec,
        pr_row=_rows_frame([pr], pr_files, use, lcfg),
        file_rows=_rows_frame(one_rows, one_files, use, lcfg).assign(
            path=[f.path for f in rec.files]
        ),
        commit_rows=_rows_frame(c_rows, c_files, use, lcfg),
        facts=facts,
        history=hist,
        subsystem_commits=sub_commits,
        new_subsystems=new_subs,
        pr_authors=pr_authors,
        added_ranges=added_ranges,
        label_config=lcfg,
    )


# -- the model side -----------------------------------------------------------------------


def past_year(
    analysis: Analysis, dataset: store.Dataset, label_cfg: LabelConfig, days: int = PERCENTILE_DAYS
) -> pd.DataFrame:
    """Mined changes in the change's history (its base's ancestors) of the ``days`` up to
    the change, or up to the newest of them when the base is older (a release diff)."""
    ch = dataset.changes
    hist = analysis.history
    in_history = ch[ch["sha"].isin(set(hist.shas))]
    until = pd.Timestamp(analysis.time, unit="s", tz="UTC")
    if len(in_history):
        until = min(until, in_history["author_time"].max())
    since = until - pd.Timedelta(days=days)
    sel = (in_history["author_time"] >= since) & (in_history["author_time"] <= until)
    rows = in_history[sel].reset_index(drop=True)
    files = dataset.files[dataset.files["sha"].isin(set(rows["sha"]))]
    return with_source_lines(rows, files, label_cfg)
