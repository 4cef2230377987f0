"""Mining: a repository's history into change-level features (``changes.parquet``,
``files.parquet``), incrementally.

One ``git log --raw --numstat`` process streams every commit still to mine; the
history features come from :class:`~diffrisk.features.history.HistoryState` in the same pass;
code metrics (radon for Python, lizard for the other languages) are computed once per
distinct blob of a source file, in parallel, and cached.

A second run on the same data directory replays the stored rows into the history
state (no git work) and mines only commits it has not seen. A commit's features depend
only on its ancestors, so the result equals mining from scratch.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import queue
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from diffrisk.config import FixesConfig, LabelConfig, MineConfig
from diffrisk.data import store
from diffrisk.data.schema import column_names
from diffrisk.errors import DataError, GitCommandError, RepositoryError
from diffrisk.features.codelines import (
    CodeCounts,
    FileCode,
    added_code_lines,
    endings_in_tree,
    endings_of,
)
from diffrisk.features.codemetrics import (
    MAX_BLOB_BYTES,
    PYTHON,
    BlobMetrics,
    compute_blob_metrics,
    lizard_version,
    metric_key,
    metric_language,
    touched_max_cc,
)
from diffrisk.features.cosmetic import cosmetic_change, is_python_path
from diffrisk.features.fixes import RULE_VERSION, FixRule, linked_issues
from diffrisk.features.history import (
    GITLINK,
    LOG_FORMAT,
    CommitRecord,
    FileChange,
    HistoryState,
    change_entropy,
    iter_records,
    parse_changes,
    subsystem,
)
from diffrisk.features.source import SourceFilter
from diffrisk.git.repo import MAILMAP_MISSING, CatFile, GitRepo, count_lines, open_repo

Progress = Callable[[str, int, int | None], None]
"""progress(stage, advance, total): ``total`` given once per stage, then advances."""


@dataclass
class MineResult:
    data_dir: Path
    head: str
    commits: int
    new_commits: int
    unknown_files: int = 0
    unparsable_files: int = 0
    huge_commits: int = 0
    full_rebuild: bool = False
    reason: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "data_dir": str(self.data_dir),
            "head": self.head,
            "commits": self.commits,
            "new_commits": self.new_commits,
            "unknown_files": self.unknown_files,
            "unparsable_files": self.unparsable_files,
            "huge_commits": self.huge_commits,
            "full_rebuild": self.full_rebuild,
            "reason": self.reason,
            "warnings": self.warnings,
        }


# -- the commit graph -----------------------------------------------------------------


def rev_list(
    repo: GitRepo, rev: str | list[str], exclude: list[str] | None = None
) -> list[tuple[str, list[str]]]:
    """All commits reachable from ``rev`` (one or several, minus ``exclude``), parents first."""
    revs = [rev] if isinstance(rev, str) else list(rev)
    args = ["rev-list", "--topo-order", "--reverse", "--parents", *revs]
    args += [f"^{e}" for e in exclude or []]
    out = repo.run(*args)
    res = []
    for line in out.decode().splitlines():
        parts = line.split()
        if parts:
            res.append((parts[0], parts[1:]))
    return res


# -- the change stream ------------------------------------------------------------------

_MISSING_MARKERS = (
    b"unable to read",
    b"bad object",
    b"missing blob",
    b"did not receive expected object",
    # a partial clone whose promisor remote cannot be reached (GIT_NO_LAZY_FETCH, or
    # the remote is gone)
    b"from promisor remote",
)


def _log_argv() -> list[str]:
    return [
        "log",
        "-z",
        "--no-walk=unsorted",
        "--stdin",
        "--raw",
        "--numstat",
        "-M",
        "--no-abbrev",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "--no-mailmap",
        LOG_FORMAT.replace("%aE", "%aE"),
    ]


PARALLEL_MIN = 2000
"""From this many commits, two ``git log`` processes diff the two halves at once."""


class _LogRun:
    """One ``git log`` over a list of commits, started at once; its output is moved by a
    thread into a bounded queue, so git runs ahead of the parser (stderr is drained too)."""

    def __init__(self, repo: GitRepo, shas: list[str]) -> None:
        self.shas = shas
        self.proc = repo.popen(*_log_argv(), stdin=subprocess.PIPE)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:  # git reads the whole list before it writes anything
            self.proc.stdin.write(("\n".join(shas) + "\n").encode())
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self.chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=256)
        self.err_parts: list[bytes] = []
        self.readers = [
            threading.Thread(target=_pump, args=(self.proc.stdout, self.chunks), daemon=True),
            threading.Thread(target=_drain, args=(self.proc.stderr, self.err_parts), daemon=True),
        ]
        for t in self.readers:
            t.start()

    def stop(self) -> None:
        """Stop git (if it still runs) and unblock and join the reader threads."""
        if self.proc.poll() is None:
            self.proc.kill()
        while self.readers[0].is_alive():
            with contextlib.suppress(queue.Empty):
                self.chunks.get(timeout=0.1)
        for t in self.readers:
            t.join()
        self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def stream_records(
    repo: GitRepo, shas: list[str], parallel_min: int = PARALLEL_MIN
) -> Iterator[CommitRecord]:
    """Records for ``shas`` in order; a commit git cannot diff (missing objects) is
    rebuilt blob by blob and marked, and the stream resumes after it.

    A long list is split in two halves diffed by two ``git log`` processes at once (the
    second one's output waits in its queue), so git's work uses both cores."""
    half = len(shas) // 2
    parts = [shas] if len(shas) < parallel_min else [shas[:half], shas[half:]]
    runs = [_LogRun(repo, part) for part in parts if part]
    try:
        for run in runs:
            yield from _records(repo, run)
    finally:
        for run in runs:
            run.stop()


def _records(repo: GitRepo, run: _LogRun) -> Iterator[CommitRecord]:
    shas = run.shas
    start = 0
    while True:
        done = 0
        pending: CommitRecord | None = None
        finished = False
        try:
            for rec in iter_records(iter(run.chunks.get, None)):
                if pending is not None:
                    yield pending
                    done += 1
                pending = rec
            finished = True
        finally:
            if not finished:  # the consumer stopped early
                run.stop()
        for t in run.readers:
            t.join()
        stderr = b"".join(run.err_parts)
        rc = run.proc.wait()
        if rc == 0:
            if pending is not None:
                yield pending
                done += 1
            if start + done != len(shas):
                raise GitCommandError(
                    f"git log returned {done} of {len(shas) - start} commits",
                    hint="the repository may be corrupt; run `git fsck`",
                )
            return
        if not any(m in stderr for m in _MISSING_MARKERS):
            msg = stderr.decode("utf-8", "replace").strip().splitlines()
            raise GitCommandError(f"git log failed: {msg[-1] if msg else rc}")
        # The last record is the incomplete one; rebuild that commit by hand.
        bad = shas[start + done]
        yield _record_with_missing_objects(repo, bad)
        start += done + 1
        if start >= len(shas):
            return
        run = _LogRun(repo, shas[start:])  # the rest of this part


def _pump(stream: Any, out: queue.Queue[bytes | None]) -> None:
    for chunk in iter(functools.partial(stream.read, 1 << 20), b""):
        out.put(chunk)
    out.put(None)


def _drain(stream: Any, sink: list[bytes]) -> None:
    sink.append(stream.read())


def _record_with_missing_objects(repo: GitRepo, sha: str) -> CommitRecord:
    args = ("-z", "--raw", "--no-abbrev", "--no-mailmap", LOG_FORMAT, sha)
    try:
        out = repo.run("log", "-1", "-M", *args)
    except GitCommandError:
        # rename detection reads blobs; without them a rename is a deletion and an addition
        out = repo.run("log", "-1", "--no-renames", *args)
    rec = next(iter_records([out]))
    with CatFile(repo) as cat:
        for f in rec.files:
            old = cat.read(f.old_blob) if f.old_blob else b""
            new = cat.read(f.new_blob) if f.new_blob else b""
            if old is None or new is None:
                f.unknown = True
                continue
            if b"\0" in old[:8000] or b"\0" in new[:8000]:
                f.binary = True
                continue
            if f.old_blob and f.new_blob:
                ns = repo.run("diff", "--numstat", "-z", f.old_blob, f.new_blob).split(b"\t")
                f.la, f.ld = (int(ns[0]), int(ns[1])) if len(ns) >= 2 and ns[0] != b"-" else (0, 0)
            elif f.new_blob:
                f.la = count_lines(new)
            else:
                f.ld = count_lines(old)
    return rec


def diff_record(
    repo: GitRepo, base: str, head: str, *, email: str, time: int, subject: str = ""
) -> CommitRecord:
    """The change base..head as one record (a pull request squashed into one change)."""
    try:
        out = repo.run(
            "diff",
            "-z",
            "--raw",
            "--numstat",
            "-M",
            "--no-abbrev",
            "--no-ext-diff",
            "--no-textconv",
            base,
            head,
        )
    except GitCommandError as err:
        if "promisor remote" not in err.message:
            raise
        raise RepositoryError(
            f"cannot diff {base[:12]}..{head[:12]}: this partial clone lacks file contents its "
            f"promisor remote cannot supply ({err.message})",
            hint="make the remote reachable and run `git fetch`, or clone without --filter",
        ) from None
    tokens = out.split(b"\x00")
    if tokens and tokens[-1] == b"":
        tokens.pop()
    return CommitRecord(
        sha=head,
        parents=[base],
        author_email=email.lower(),
        author_time=time,
        subject=subject,
        body="",
        files=parse_changes(tokens),
    )


# -- walking history --------------------------------------------------------------------


@dataclass(slots=True)
class KnownCommit:
    """What the stored dataset already knows about a commit (enough to replay it)."""

    email: str
    time: int
    fix: int
    files: list[FileChange]


def epoch_seconds(times: pd.Series) -> pd.Series:
    """UTC timestamps as integer seconds since the epoch, whatever their stored unit."""
    if not len(times):
        return pd.Series([], dtype="int64")
    return pd.to_datetime(times, utc=True).dt.as_unit("s").astype("int64")


def known_commits(dataset: store.Dataset, wanted: set[str]) -> dict[str, KnownCommit]:
    """The dataset's commits among ``wanted``, ready to replay into a HistoryState."""
    ch = dataset.changes[dataset.changes["sha"].isin(wanted)]
    files = files_by_sha(dataset.files[dataset.files["sha"].isin(wanted)])
    times = epoch_seconds(ch["author_time"]).tolist()
    return {
        sha: KnownCommit(email, int(t), int(fx), files.get(sha, []))
        for sha, email, t, fx in zip(
            ch["sha"].tolist(), ch["author_email"].tolist(), times, ch["fix"].tolist(), strict=True
        )
    }


@dataclass(slots=True)
class Step:
    """One non-merge commit of a history walk; ``record`` is None when it was replayed."""

    sha: str
    bit: int
    prior: int
    record: CommitRecord | None
    known: KnownCommit | None


def walk_history(
    repo: GitRepo,
    graph: list[tuple[str, list[str]]],
    known: dict[str, KnownCommit],
    state: HistoryState,
    rule: FixRule,
) -> Iterator[Step]:
    """Walk ``graph`` (parents first) through ``state``: replay known commits, stream the rest.

    Yields every non-merge commit. A new commit is yielded after its line counts are set
    and *before* it enters the history, so the consumer computes its features against its
    ancestors only; it is recorded when the consumer asks for the next step.
    """
    todo = [sha for sha, parents in graph if len(parents) <= 1 and sha not in known]
    stream = stream_records(repo, todo) if todo else iter(())
    with CatFile(repo) as cat:
        for sha, parents in graph:
            bit, prior = state.begin(sha, parents)
            if len(parents) > 1:
                continue
            k = known.get(sha)
            if k is not None:
                for f in k.files:  # blob line counts, as when it was mined
                    if f.new_blob is not None:
                        state.blob_lines[f.new_blob] = f.lines_after
                state.record(bit, k.files, k.email, k.time, k.fix)
                yield Step(sha, bit, prior, None, k)
                continue
            rec = next(stream)
            if rec.sha != sha:
                raise GitCommandError(f"git log returned {rec.sha} where {sha} was expected")
            state.set_line_counts(rec.files, cat.read)
            yield Step(sha, bit, prior, rec, None)
            state.record(
                bit,
                rec.files,
                rec.author_email,
                rec.author_time,
                int(rule.is_fix(rec.subject, rec.body)),
            )


def new_state(
    graph: list[tuple[str, list[str]]], later: list[tuple[str, list[str]]] | None = None
) -> HistoryState:
    """A HistoryState sized for ``graph`` that drops ancestry bitsets no later commit needs.

    ``later`` are commits the caller will add after ``graph`` (a PR's commits)."""
    later = later or []
    state = HistoryState(capacity=len(graph) + len(later) + 1)
    children: dict[str, int] = {}
    for _sha, parents in [*graph, *later]:
        for p in parents:
            children[p] = children.get(p, 0) + 1
    state.set_children_counts({sha: children.get(sha, 0) for sha, _ in graph})
    return state


# -- features -------------------------------------------------------------------------


def change_row(
    rec: CommitRecord,
    state: HistoryState,
    prior: int,
    fix_rule: FixRule,
    cfg: MineConfig,
    prior_count: int | None = None,
) -> dict[str, Any]:
    """The Kamei row of one change; history features against ancestors ``prior``."""
    files = rec.files
    la = sum(f.la for f in files if not f.binary and not f.unknown)
    ld = sum(f.ld for f in files if not f.binary and not f.unknown)
    h = state.features(files, rec.author_email, rec.author_time, prior, prior_count)
    dirs = {p.rpartition("/")[0] for p in (f.path for f in files)}
    return {
        "sha": rec.sha,
        "author_email": rec.author_email,
        "author_time": rec.author_time,
        "subject": rec.subject,
        "ns": len({subsystem(f.path) for f in files}),
        "nd": len(dirs),
        "nf": len(files),
        "entropy": change_entropy(f.la + f.ld for f in files if not f.binary and not f.unknown),
        "la": la,
        "ld": ld,
        "lt": sum(f.lines_before for f in files),
        "fix": int(fix_rule.is_fix(rec.subject, rec.body)),
        "ndev": h.ndev,
        "age": h.age,
        "nuc": h.nuc,
        "exp": h.exp,
        "rexp": h.rexp,
        "sexp": h.sexp,
        "pfix": h.pfix,
        "issue_refs": linked_issues(rec.subject + "\n" + rec.body),
        "huge": len(files) >= cfg.huge_commit_files or la + ld >= cfg.huge_commit_lines,
        "binary_files": sum(1 for f in files if f.binary),
        "unknown_files": sum(1 for f in files if f.unknown),
        "py_files": sum(1 for f in files if f.is_python),
    }


def file_rows(rec: CommitRecord) -> list[dict[str, Any]]:
    return [
        {
            "sha": rec.sha,
            "path": f.path,
            "old_path": f.old_path,
            "status": f.status,
            "la": 0 if f.binary or f.unknown else f.la,
            "ld": 0 if f.binary or f.unknown else f.ld,
            "lines_before": f.lines_before,
            "lines_after": f.lines_after,
            "binary": f.binary,
            "unknown": f.unknown,
            "blob_before": f.old_blob,
            "blob_after": f.new_blob,
            "is_python": f.is_python,
            "language": file_language(f),
        }
        for f in rec.files
    ]


SYMLINK = "120000"


def file_language(f: FileChange) -> str | None:
    """The language whose code metrics a file change gets (:func:`metric_language`);
    None for a submodule or a symbolic link on either side (no code)."""
    if {f.old_mode, f.new_mode} & {GITLINK, SYMLINK}:
        return None
    return metric_language(f.path)


def files_from_rows(df: pd.DataFrame) -> list[FileChange]:
    """FileChange objects from files.parquet rows (column lists: no per-row pandas work)."""

    def opt(values: list[Any]) -> list[str | None]:
        return [v if isinstance(v, str) else None for v in values]

    cols = zip(
        df["path"].tolist(),
        opt(df["old_path"].tolist()),
        df["status"].tolist(),
        opt(df["blob_before"].tolist()),
        opt(df["blob_after"].tolist()),
        df["la"].tolist(),
        df["ld"].tolist(),
        df["binary"].tolist(),
        df["unknown"].tolist(),
        df["lines_before"].tolist(),
        df["lines_after"].tolist(),
        strict=True,
    )
    return [
        FileChange(
            path,
            old_path,
            status,
            ob,
            nb,
            "",
            "",
            int(la),
            int(ld),
            bool(bi),
            bool(un),
            int(lb),
            int(lf),
        )
        for path, old_path, status, ob, nb, la, ld, bi, un, lb, lf in cols
    ]


def files_by_sha(df: pd.DataFrame) -> dict[str, list[FileChange]]:
    """files.parquet rows grouped by commit, in stored order."""
    out: dict[str, list[FileChange]] = {}
    for sha, f in zip(df["sha"].tolist(), files_from_rows(df), strict=True):
        out.setdefault(sha, []).append(f)
    return out


@functools.cache
def _default_source() -> SourceFilter:
    return SourceFilter.of_config(LabelConfig())


def metric_rows(files_df: pd.DataFrame, source: Callable[[str], bool] | None = None) -> pd.Series:
    """The file rows that get code metrics: a language with metrics (the ``language``
    column, else the path's ending) and a source file by ``source`` (default: the
    ``label`` settings' :class:`~diffrisk.features.source.SourceFilter`, the rule SZZ
    blames by: tests, docs and vendored paths are not measured)."""
    if files_df.empty:
        return pd.Series(False, index=files_df.index, dtype=bool)
    rule = source if source is not None else _default_source()
    paths = files_df["path"].astype(str)
    has = "language" in files_df.columns
    lang = files_df["language"] if has else paths.map(metric_language)
    ok = {p: bool(rule(p)) for p in pd.unique(paths)}
    return lang.notna() & paths.map(ok).astype(bool)


def metric_blobs(
    files_df: pd.DataFrame, source: Callable[[str], bool] | None = None
) -> dict[str, str]:
    """The blobs the code metrics read, by id, with how each is measured (the
    :func:`~diffrisk.features.codemetrics.metric_key` of its path: the version before
    a rename is read as its old path says) for the rows :func:`metric_rows` selects."""
    rows = files_df[metric_rows(files_df, source)]
    out: dict[str, str] = {}
    old_paths = rows["old_path"] if "old_path" in rows.columns else rows["path"]
    for path, old, before, after in zip(
        rows["path"].astype(str), old_paths, rows["blob_before"], rows["blob_after"], strict=True
    ):
        if isinstance(after, str):
            key = metric_key(path)
            if key is not None:
                out.setdefault(after, key)
        if isinstance(before, str):
            key = metric_key(old if isinstance(old, str) else path)
            if key is not None:
                out.setdefault(before, key)
    return out


def code_metric_columns(
    files_df: pd.DataFrame,
    metrics: dict[str, BlobMetrics],
    source: Callable[[str], bool] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-file code metric columns and their per-commit aggregates, over the rows
    :func:`metric_rows` selects. A row one of whose blobs has no entry in ``metrics``
    (missing from the repository, or not measured) is unknown and left out."""
    sel = files_df[metric_rows(files_df, source)]
    rows = []
    for sha, path, bb, ba in zip(
        sel["sha"], sel["path"], sel["blob_before"], sel["blob_after"], strict=True
    ):
        b = metrics.get(bb) if isinstance(bb, str) else None
        a = metrics.get(ba) if isinstance(ba, str) else None
        if (isinstance(bb, str) and b is None) or (isinstance(ba, str) and a is None):
            continue  # not measured: unknown
        parse_error = (b is not None and not b.ok) or (a is not None and not a.ok)
        rows.append(
            {
                "sha": sha,
                "path": path,
                "cc_before": b.cc if b is not None and b.ok else None,
                "cc_after": a.cc if a is not None and a.ok else None,
                "cc_max_touched": touched_max_cc(b, a) if not parse_error else None,
                "mi_before": b.mi if b is not None and b.ok else None,
                "mi_after": a.mi if a is not None and a.ok else None,
                "hv_before": b.hv if b is not None and b.ok else None,
                "hv_after": a.hv if a is not None and a.ok else None,
                "parse_error": parse_error,
            }
        )
    cols = [
        "cc_before",
        "cc_after",
        "cc_max_touched",
        "mi_before",
        "mi_after",
        "hv_before",
        "hv_after",
    ]
    per_file = pd.DataFrame(rows, columns=["sha", "path", *cols, "parse_error"])
    for c in cols:
        per_file[c] = per_file[c].astype("float64")
    per_file["parse_error"] = per_file["parse_error"].astype(bool)
    if per_file.empty:
        agg = pd.DataFrame(columns=["sha", *CODE_AGG])
        return per_file, agg
    ok = ~per_file["parse_error"]
    d = per_file[ok]
    ccd = d["cc_after"].fillna(0) - d["cc_before"].fillna(0)
    hvd = d["hv_after"].fillna(0) - d["hv_before"].fillna(0)
    g = pd.DataFrame(
        {
            "sha": d["sha"],
            "ccd": ccd,
            "hvd": hvd,
            "ccm": d["cc_max_touched"],
            "mib": d["mi_before"],
            "mia": d["mi_after"],
        }
    ).groupby("sha")
    agg = pd.DataFrame(
        {
            "cc_delta": g["ccd"].sum(),
            "cc_max_touched": g["ccm"].max(),
            "mi_before": g["mib"].mean(),
            "mi_after": g["mia"].mean(),
            "hv_delta": g["hvd"].sum(),
            "metric_files": g["ccd"].size(),
        }
    )
    bad = per_file.groupby("sha")["parse_error"].sum().rename("unparsable_files")
    agg = agg.join(bad, how="outer").reset_index().rename(columns={"index": "sha"})
    agg["unparsable_files"] = agg["unparsable_files"].fillna(0).astype("int32")
    agg["metric_files"] = agg["metric_files"].fillna(0).astype("int32")
    # commits whose measured files all failed still get a cc_delta of 0
    for c in ("cc_delta", "hv_delta", "cc_max_touched"):
        agg[c] = agg[c].fillna(0.0)
    return per_file, agg


CODE_AGG = [
    "cc_delta",
    "cc_max_touched",
    "mi_before",
    "mi_after",
    "hv_delta",
    "unparsable_files",
    "metric_files",
]


# -- the stage ------------------------------------------------------------------------


def mine(
    repo_path: str | Path,
    data_dir: str | Path,
    rev: str = "HEAD",
    config: MineConfig | None = None,
    fixes: FixesConfig | None = None,
    progress: Progress | None = None,
    source_extensions: Sequence[str] | None = None,
    exclude_paths: Sequence[str] | None = None,
) -> MineResult:
    """Mine every non-merge commit reachable from ``rev`` into ``data_dir``.

    ``source_extensions`` (default ``label.source_extensions``) selects the files whose
    added lines of code (``la_code``, :mod:`diffrisk.features.codelines`) are counted; files
    matching ``exclude_paths`` (default ``label.exclude_paths``: tests, docs, ...), which
    the models never count, are not judged for cosmetic changes (``cosmetic`` is null).
    """
    cfg = config or MineConfig()
    src_exts = sorted(
        {
            e.lower()
            for e in (
                source_extensions
                if source_extensions is not None
                else LabelConfig().source_extensions
            )
        }
    )
    exts = src_exts if cfg.code_lines else []
    excluded = list(exclude_paths if exclude_paths is not None else LabelConfig().exclude_paths)
    source = SourceFilter.of(src_exts, excluded)
    rule = FixRule.from_config(fixes)
    repo = open_repo(repo_path)
    head = repo.resolve(rev)
    repo = repo.with_mailmap(head)  # authors as the mined commit's .mailmap maps them
    data = Path(data_dir)
    settings = {
        "code_metrics": cfg.code_metrics,
        "huge_commit_files": cfg.huge_commit_files,
        "huge_commit_lines": cfg.huge_commit_lines,
        "code_line_extensions": exts,
        "fix_rule": [RULE_VERSION, *sorted(rule.keywords), "|", *sorted(rule.exclude), rule.scope],
    }
    if cfg.code_metrics:
        # what the stored metrics were measured on and with (another lizard may count
        # otherwise; the blob cache would mix both)
        settings["code_metrics_source"] = [*src_exts, "|", *excluded]
        settings["code_metrics_tools"] = [f"lizard {lizard_version()}"]
    try:
        previous = store.read_meta(data)
    except DataError:
        previous = None  # a corrupt meta.json: the dataset is rebuilt from git below
    if previous is not None:
        store.check_repository(previous, repo, data)
    old = store.load_dataset(data, settings)
    graph = rev_list(repo, head)
    known: set[str] = set(old.changes["sha"]) if old is not None else set()
    todo = [sha for sha, parents in graph if len(parents) <= 1 and sha not in known]
    wanted = {sha for sha, parents in graph if len(parents) <= 1}
    result = MineResult(
        data_dir=data,
        head=head,
        commits=len(wanted),
        new_commits=len(todo),
        full_rebuild=old is None,
        reason=store.last_reason(),
    )
    if old is None and result.reason.endswith("rebuilt from git"):
        # a damaged dataset is never reused; say so even with --quiet (the labels and
        # models stay; labelling runs again on the new dataset)
        result.warnings.append(f"the stored dataset was unreadable ({result.reason})")
    if old is not None and not todo and known == wanted and old.meta.get("head") == head:
        _fill_counts(result, old.changes, set())
        return result
    if old is not None and not todo and known == wanted:
        store.write_meta(data, head=head, settings=settings)
        _fill_counts(result, old.changes, set())
        return result

    if repo.mailmap_missing:
        result.warnings.append(MAILMAP_MISSING)
    state = new_state(graph)
    known_rows = known_commits(old, wanted) if old is not None and known else {}
    if progress:
        progress("mine", 0, len(todo))
    new_rows: list[dict[str, Any]] = []
    new_files: list[dict[str, Any]] = []
    # the diffs for la_code come from their own git process, read while the walk runs
    endings = endings_in_tree(repo, head, exts)
    code_job = _Background(added_code_lines, repo, todo, endings)
    for step in walk_history(repo, graph, known_rows, state, rule):
        rec = step.record
        if rec is None:
            continue
        new_rows.append(change_row(rec, state, step.prior, rule, cfg, prior_count=step.bit))
        new_files.extend(file_rows(rec))
        if progress:
            progress("mine", 1, None)

    changes = pd.DataFrame(
        new_rows, columns=[c for c in column_names("changes") if c not in CODE_AGG]
    )
    files_df = pd.DataFrame(
        new_files,
        columns=[
            "sha",
            "path",
            "old_path",
            "status",
            "la",
            "ld",
            "lines_before",
            "lines_after",
            "binary",
            "unknown",
            "blob_before",
            "blob_after",
            "is_python",
            "language",
        ],
    )
    counts = _all_code_lines(repo, files_df, code_job.result(), endings, exts)
    cols = code_line_columns(files_df, counts, exts)
    files_df["la_code"], files_df["la_control"] = cols["la_code"], cols["la_control"]
    files_df["code_tokens"] = cols["code_tokens"]
    with CatFile(repo) as cat:
        keys = ["sha", "path", "status", "blob_before", "blob_after"]
        files_df["cosmetic"] = cosmetic_values(
            files_df[keys].to_dict("records"),
            counts,
            cat.read,
            cfg.workers,
            source=SourceFilter.of(exts, excluded),
        )

    blob_cache = old.blob_metrics if old is not None else {}
    failures = MetricFailures()
    if cfg.code_metrics:
        wanted_blobs = metric_blobs(files_df, source)
        need = sorted((oid, key) for oid, key in wanted_blobs.items() if oid not in blob_cache)
        if progress:
            progress("metrics", 0, len(need))
        for oid, m in compute_blob_metrics(
            str(repo.git_dir),
            str(repo.path),
            need,
            cfg.workers,
            on_done=(lambda k: progress("metrics", k, None)) if progress else None,
        ):
            if m is not None:
                blob_cache[oid] = m
        per_file, agg = code_metric_columns(files_df, blob_cache, source)
        files_df = files_df.merge(per_file, on=["sha", "path"], how="left")
        changes = changes.merge(agg, on="sha", how="left")
        changes["metric_files"] = changes["metric_files"].fillna(0)
        failures = metric_failures(repo, files_df, blob_cache)
    else:
        for c in CODE_AGG:
            changes[c] = np.nan
        changes["unparsable_files"] = 0
    if "unparsable_files" in changes:
        changes["unparsable_files"] = changes["unparsable_files"].fillna(0)
    if known_rows:
        assert old is not None
        old_changes = old.changes[old.changes["sha"].isin(wanted)]
        changes = pd.concat([old_changes, store.normalize("changes", changes)], ignore_index=True)
        files_df = pd.concat(
            [old.files[old.files["sha"].isin(wanted)], store.normalize("files", files_df)],
            ignore_index=True,
        )
    store.save_dataset(data, changes, files_df, blob_cache, head=head, settings=settings)
    _fill_counts(result, changes, set(todo), failures)
    return result


@dataclass(frozen=True)
class MetricFailures:
    """File changes whose code metrics failed, by why: Python that does not parse, text
    in another language lizard could not read (NUL bytes: UTF-16, binary), and either
    over :data:`~diffrisk.features.codemetrics.MAX_BLOB_BYTES` (not read at all)."""

    python: int = 0
    other: int = 0
    oversized: int = 0


def metric_failures(
    repo: GitRepo, files: pd.DataFrame, metrics: dict[str, BlobMetrics]
) -> MetricFailures:
    """:class:`MetricFailures` of file rows with code metrics (``parse_error`` set); the
    sizes come from ``git cat-file --batch-check``."""
    if "parse_error" not in files.columns:
        return MetricFailures()
    bad = files[files["parse_error"].fillna(False).astype(bool)]
    if bad.empty:
        return MetricFailures()
    failed = {
        oid
        for col in ("blob_before", "blob_after")
        for oid in bad[col].dropna()
        if (m := metrics.get(oid)) is not None and not m.ok
    }
    big = set()
    if failed:
        out = repo.run(
            "cat-file", "--batch-check", input="".join(f"{o}\n" for o in failed).encode()
        )
        for line in out.decode().splitlines():
            oid, _, size = [*line.split(), "", "", ""][:3]
            if size.isdigit() and int(size) > MAX_BLOB_BYTES:
                big.add(oid)
    python = other = oversized = 0
    for b, a, lang in zip(bad["blob_before"], bad["blob_after"], bad["language"], strict=True):
        if {b, a} & big:
            oversized += 1
        elif lang == PYTHON:
            python += 1
        else:
            other += 1
    return MetricFailures(python, other, oversized)


def _all_code_lines(
    repo: GitRepo,
    files: pd.DataFrame,
    counts: CodeCounts,
    done: Sequence[str],
    exts: Sequence[str],
) -> CodeCounts:
    """``counts`` (the background pass over the endings ``done``), plus a pass over the
    commits with source files whose ending the head tree did not have (files since
    deleted or renamed)."""
    if not exts or files.empty:
        return counts
    ending = files["path"].astype(str).map(lambda p: PurePosixPath(p).suffix)
    missing = set(endings_of(pd.unique(files["path"].astype(str)), exts)) - set(done)
    wanted = ending.isin(missing)
    if wanted.any():
        more = added_code_lines(repo, list(pd.unique(files.loc[wanted, "sha"])), sorted(missing))
        for sha, per in more.items():
            if sha in counts:  # a commit the first pass could not diff stays unknown
                counts[sha].update(per)
    return counts


class _Background:
    """``fn(*args)`` on a daemon thread (an interrupted run exits without waiting for it)."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self._out: list[Any] = []
        self._err: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(fn, args), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            self._out.append(fn(*args))
        except BaseException as err:  # re-raised in result()
            self._err.append(err)

    def result(self) -> Any:
        self._thread.join()
        if self._err:
            raise self._err[0]
        return self._out[0]


def code_line_values(
    pairs: Iterable[tuple[str, str]], counts: CodeCounts, extensions: Sequence[str]
) -> list[tuple[float, float, str | None]]:
    """(``la_code``, ``la_control``, ``code_tokens``) for (sha, path) file rows: counted
    for source-ending files of commits git could diff (0 and "" for a deletion, a pure
    rename or a binary file), NaN and None otherwise."""
    exts = tuple(e.lower() for e in extensions)
    values: list[tuple[float, float, str | None]] = []
    for sha, path in pairs:
        per = counts.get(sha)
        if per is None or not exts or not str(path).lower().endswith(exts):
            values.append((np.nan, np.nan, None))
        else:
            got = per.get(path, FileCode(0, 0))
            values.append((float(got[0]), float(got[1]), got.tokens))
    return values


def code_line_columns(
    files: pd.DataFrame, counts: CodeCounts, extensions: Sequence[str]
) -> pd.DataFrame:
    """:func:`code_line_values` of a files frame (columns ``sha``, ``path``, ``la``):
    columns ``la_code``, ``la_control`` and ``code_tokens``, capped by lines added."""
    values = code_line_values(zip(files["sha"], files["path"], strict=True), counts, extensions)
    out = pd.DataFrame(
        [v[:2] for v in values],
        index=files.index,
        columns=["la_code", "la_control"],
        dtype="float64",
    )
    out["code_tokens"] = pd.Series([v[2] for v in values], index=files.index, dtype=object)
    return cap_code_lines(out, files["la"])


def cosmetic_values(
    rows: Sequence[dict[str, Any]],
    counts: CodeCounts,
    read: Callable[[str], bytes | None],
    workers: int | None = 1,
    source: Callable[[str], bool] | None = None,
) -> list[str | None]:
    """Per file row (``sha``, ``path``, ``status``, ``blob_before``, ``blob_after``): what
    :func:`diffrisk.labelling.szz.cosmetic_change` says of a modified Python file (a reformat, or
    a change of type annotations only, which SZZ looks through), else None. Only files
    that add lines of code and whose diff holds the same operators and keywords on both
    sides (``same_words``, seen in ``counts``) are read and parsed; None for the others
    (a file that adds no line of code has nothing to leave out), and for the paths
    ``source`` rejects. Many files are judged in ``workers`` processes (None: all
    cores)."""
    out: list[str | None] = [None] * len(rows)
    todo: list[tuple[int, FileCode]] = []
    for i, r in enumerate(rows):
        got = counts.get(r["sha"], {}).get(r["path"])
        before, after = r.get("blob_before"), r.get("blob_after")
        if not (
            got is None
            or got[0] == 0  # no line of code added: nothing to leave out
            or not got.same_words
            or r.get("status") != "M"
            or not is_python_path(r["path"])
            or not isinstance(before, str)
            or not isinstance(after, str)
            or before == after
            or (source is not None and not source(r["path"]))
        ):
            todo.append((i, got))
    n = workers or os.cpu_count() or 1
    pool = None
    if n > 1 and len(todo) >= COSMETIC_POOL_MIN:
        ctx = multiprocessing.get_context("fork") if hasattr(os, "fork") else None
        pool = ProcessPoolExecutor(max_workers=n, mp_context=ctx)
    try:
        for k in range(0, len(todo), COSMETIC_BATCH):  # a batch of versions in memory at once
            jobs, where = [], []
            for i, got in todo[k : k + COSMETIC_BATCH]:
                old, new = read(rows[i]["blob_before"]), read(rows[i]["blob_after"])
                if old is not None and new is not None:
                    jobs.append((old, new, bool(got.typing_syntax), got.hunks))
                    where.append(i)
            done = pool.map(_cosmetic_job, jobs, chunksize=8) if pool else map(_cosmetic_job, jobs)
            for i, kind in zip(where, done, strict=True):
                out[i] = kind
    finally:
        if pool is not None:
            pool.shutdown()
    return out


#: Judging cosmetic changes in processes pays once there are this many files.
COSMETIC_POOL_MIN = 200
#: Files whose two versions are held in memory at once.
COSMETIC_BATCH = 512


def _cosmetic_job(
    job: tuple[bytes, bytes, bool, tuple[tuple[int, int, int, int], ...]],
) -> str | None:
    old, new, typing, hunks = job
    # annotations are judged where they can differ, on the statements around the hunks
    return cosmetic_change(old, new, annotations=typing, exact=False, hunks=hunks)


def cap_code_lines(counts: pd.DataFrame, la: Any) -> pd.DataFrame:
    """No more lines of code than lines added: the source-only diff misses a rename whose
    old name has no source ending (``tool`` -> ``tool.sh``) and shows the whole file as
    added, while the history (all paths) sees the rename (then it adds no tokens either)."""
    la = pd.to_numeric(pd.Series(la, index=counts.index), errors="coerce")
    code = counts["la_code"].where(counts["la_code"].isna(), np.minimum(counts["la_code"], la))
    control = counts["la_control"].where(
        counts["la_control"].isna(), np.minimum(counts["la_control"], code)
    )
    out = pd.DataFrame({"la_code": code, "la_control": control}, index=counts.index)
    if "code_tokens" in counts.columns:
        tokens = counts["code_tokens"].astype(object)
        out["code_tokens"] = tokens.where(~(code == 0) | tokens.isna(), "")
    return out


def _fill_counts(
    result: MineResult,
    changes: pd.DataFrame,
    new: set[str] | None = None,
    failures: MetricFailures | None = None,
) -> None:
    """Counts over the whole dataset; warnings only for the commits mined in this run
    (``new``; None: all of them), so a known gap is not reported again on every run.
    ``failures``: why their file changes with code metrics failed."""
    result.unknown_files = int(changes["unknown_files"].sum())
    result.unparsable_files = int(changes["unparsable_files"].fillna(0).sum())
    result.huge_commits = int(changes["huge"].sum())
    fresh = changes if new is None else changes[changes["sha"].isin(new)]
    unknown = int(fresh["unknown_files"].sum())
    failed = failures or MetricFailures()
    if unknown:
        result.warnings.append(
            f"{unknown} file changes have unknown line counts: their objects are missing "
            "from the repository (a partial clone or an incomplete mirror)"
        )
    if failed.python:
        result.warnings.append(
            f"{failed.python} Python file changes could not be parsed (Python 2 or "
            "syntax errors); their code metrics are left out"
        )
    if failed.other:
        result.warnings.append(
            f"{failed.other} file changes in other languages could not be measured (text "
            "with NUL bytes: UTF-16 or binary, or lizard failed); their code metrics are left out"
        )
    if failed.oversized:
        result.warnings.append(
            f"{failed.oversized} source file changes were not measured: a version is over the "
            f"code metrics' size cap of {MAX_BLOB_BYTES:,} bytes (generated or vendored code, "
            "not parsed); their code metrics are left out"
        )
