"""The git side of SZZ: which lines a fix deleted or changed, and who wrote them.

For a batch of fixes one ``git log -p -U0`` process gives every hunk
(:func:`parse_patches`); for each file a fix changed, one ``git blame --porcelain -L a,b
-L c,d ... <parent> -- <path>`` (:func:`blame_argv`, :func:`parse_porcelain`) names the
commits that last touched the changed lines in the fix's first parent. :func:`blame_fixes`
runs that in a pool of worker processes that an interruption stops at once, with their
git children. :class:`IgnoreRevs` materialises the parents' ``.git-blame-ignore-revs``.

Which lines and commits are cosmetic (blank, comment and docstring lines; reformatting
and annotation-only commits, which blame looks through) is decided by
:mod:`diffrisk.features.cosmetic`; the filters on the candidates (dataset membership,
dates, merges) are in :mod:`diffrisk.labelling.label`.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import signal
import sys
import tempfile
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from diffrisk.errors import GitCommandError
from diffrisk.features.codelines import cosmetic_lines
from diffrisk.features.cosmetic import (
    comment_marker,
    cosmetic_change,
    incidental_lines,
    is_python_path,
    strip_trailing_comment,
)
from diffrisk.features.source import SourceFilter
from diffrisk.git.repo import CatFile, GitRepo, unquote_path

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

# How many blamed line texts a link keeps for the quality report.
SAMPLE_LINES = 8

_HUNK = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")


@dataclass
class FileDiff:
    """One file of a fix: its path in the parent and the line numbers the fix removed."""

    old_path: str
    new_path: str
    old_blob: str | None
    deleted: list[int] = field(default_factory=list)
    texts: list[bytes] = field(default_factory=list)
    adjacent: list[int] = field(default_factory=list)
    """Lines of the parent around each place the fix only inserted lines (the line
    before and the line after)."""


# -- diffs ------------------------------------------------------------------------------


def log_patch_argv(ignore_whitespace: bool) -> list[str]:
    argv = [
        "log",
        "--no-walk=unsorted",
        "--stdin",
        "-p",
        "-U0",
        "-M",
        "--full-index",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "--src-prefix=a/",
        "--dst-prefix=b/",
        "--format=%x01%H",
    ]
    if ignore_whitespace:
        argv.insert(4, "-w")
    return argv


def parse_patches(
    data: bytes, same_line: Callable[[str], Callable[[bytes], bytes] | None] | None = None
) -> dict[str, list[FileDiff]]:
    """``git log -p -U0 --format=%x01%H`` output -> per commit, the files with deleted lines.

    ``same_line(path)``, when given, returns the key under which a deleted line of ``path``
    and an added line of the same hunk are the same line (a whitespace-only or
    comment-only edit): such deleted lines are left out (:func:`line_key`)."""
    out: dict[str, list[FileDiff]] = {}
    files: list[FileDiff] = []
    cur: FileDiff | None = None
    key: Callable[[bytes], bytes] | None = None
    old_path = new_path = blob = None
    line_no = 0
    hunk_start = 0  # index in cur.deleted where the current hunk's deleted lines begin
    added: list[bytes] = []

    def close_hunk() -> None:
        if cur is None or key is None or not added or hunk_start == len(cur.deleted):
            added.clear()
            return
        left = collections.Counter(key(t) for t in added)
        keep_no, keep_text = cur.deleted[:hunk_start], cur.texts[:hunk_start]
        for no, text in zip(cur.deleted[hunk_start:], cur.texts[hunk_start:], strict=True):
            k = key(text)
            if left[k] > 0:
                left[k] -= 1
                continue
            keep_no.append(no)
            keep_text.append(text)
        cur.deleted[:], cur.texts[:] = keep_no, keep_text
        added.clear()

    for line in data.split(b"\n"):
        if line.startswith(b"\x01"):
            close_hunk()
            files = out.setdefault(line[1:].decode(), [])
            cur = None
            continue
        if line.startswith(b"diff --git "):
            close_hunk()
            cur = None
            old_path = new_path = blob = None
            continue
        if cur is None:
            if line.startswith(b"index "):
                ids = line.split()[1].split(b"..")
                blob = ids[0].decode() if ids and set(ids[0]) != {ord("0")} else None
            elif line.startswith(b"rename from "):
                old_path = unquote_path(line[12:])
            elif line.startswith(b"rename to "):
                new_path = unquote_path(line[10:])
            elif line.startswith(b"--- "):
                name = line[4:]
                old_path = None if name == b"/dev/null" else unquote_path(name)[2:]
            elif line.startswith(b"+++ "):
                name = line[4:]
                new_path = None if name == b"/dev/null" else unquote_path(name)[2:]
                if old_path is not None:
                    cur = FileDiff(old_path, new_path or old_path, blob)
                    files.append(cur)
                    key = same_line(old_path) if same_line else None
                    hunk_start = 0
            continue
        if line.startswith(b"@@"):
            close_hunk()
            hunk_start = len(cur.deleted)
            m = _HUNK.match(line)
            if m:
                line_no = int(m.group(1))
                if m.group(2) == b"0":  # only insertions: after old line line_no
                    cur.adjacent += [n for n in (line_no, line_no + 1) if n >= 1]
            continue
        if line.startswith(b"-"):
            cur.deleted.append(line_no)
            cur.texts.append(line[1:])
            line_no += 1
        elif line.startswith(b"+") and key is not None:
            added.append(line[1:])
    close_hunk()
    for fs in out.values():
        fs[:] = [f for f in fs if f.deleted or f.adjacent]
    return out


_WS = re.compile(rb"\s+")
_LEADING = re.compile(rb"^[ \t]*")


def line_key(
    path: str, *, whitespace: bool, python_indentation: bool, comments: bool
) -> Callable[[bytes], bytes] | None:
    """How a deleted and an added line of ``path`` compare as "the same line", or None
    when every deleted line counts: with ``whitespace``, whitespace is ignored (as
    ``git diff -w``) except, with ``python_indentation``, a Python line's indentation,
    which decides what block it runs in; with ``comments``, a trailing comment is ignored
    (a ``# pragma: no cover`` or ``// NOLINT`` added to a line does not change it)."""
    if not (whitespace or comments):
        return None
    python = is_python_path(path)
    marker = comment_marker(path) if comments else None

    def key(text: bytes) -> bytes:
        if marker is not None:
            text = strip_trailing_comment(text, marker)
        if not whitespace:
            return text.rstrip()
        core = _WS.sub(b"", text)
        if python and python_indentation:
            m = _LEADING.match(text)
            indent = m.group(0).expandtabs(8) if m else b""
            return b"%d:" % len(indent) + core
        return core

    return key


# -- blame ------------------------------------------------------------------------------


def ranges(lines: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted line numbers -> inclusive (start, end) runs."""
    out: list[tuple[int, int]] = []
    for n in sorted(set(lines)):
        if out and n == out[-1][1] + 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def blame_argv(
    parent: str,
    path: str,
    line_ranges: list[tuple[int, int]],
    *,
    ignore_whitespace: bool,
    copy_detection: bool,
    ignore_revs_file: str | None,
    ignore_revs: Iterable[str] = (),
) -> list[str]:
    argv = ["-c", "blame.ignoreRevsFile=", "blame", "--porcelain", "-M"]
    if ignore_whitespace:
        argv.append("-w")
    if copy_detection:
        argv.append("-C")
    if ignore_revs_file:
        argv += ["--ignore-revs-file", ignore_revs_file]
    for rev in ignore_revs:
        argv += ["--ignore-rev", rev]
    for a, b in line_ranges:
        argv += ["-L", f"{a},{b}"]
    return [*argv, parent, "--", path]


def parse_porcelain(data: bytes) -> list[tuple[str, str, int, bytes]]:
    """``git blame --porcelain`` -> (commit, path in that commit, final line, text) per line."""
    out = []
    names: dict[str, str] = {}
    sha = ""
    final = 0
    for line in data.split(b"\n"):
        if line.startswith(b"\t"):
            out.append((sha, names.get(sha, ""), final, line[1:]))
            continue
        parts = line.split(b" ")
        if len(parts) >= 3 and len(parts[0]) in (40, 64) and parts[1].isdigit():
            sha = parts[0].decode()
            final = int(parts[2])
        elif line.startswith(b"filename "):
            names[sha] = unquote_path(line[9:])
    return out


@dataclass(frozen=True)
class BlameSettings:
    ignore_whitespace: bool = True
    ignore_comments: bool = True
    copy_detection: bool = False
    extensions: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    source_only: bool = True
    skip_cosmetic_commits: bool = True
    skip_annotation_commits: bool = True
    python_indentation: bool = True
    """A Python line whose indentation changed is a changed line (with ``ignore_whitespace``)."""
    skip_incidental: bool = True
    """Imports, version strings, ``__all__`` and trailing-comment edits are not blamed."""
    blame_additions: bool = False
    """A fix that deletes no line to blame has the lines around its insertions blamed."""


@dataclass(frozen=True)
class FixJob:
    sha: str
    ignore_revs_file: str | None = None


@dataclass
class FixBlame:
    """What blaming one fix found: per (inducing commit, path) the blamed line count and texts."""

    sha: str
    considered: int = 0
    """Deleted or changed source lines blamed (after the cosmetic filter)."""
    cosmetic: int = 0
    """Deleted source lines left out as blank, comment or docstring."""
    links: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    fix_paths: dict[tuple[str, str], str] = field(default_factory=dict)
    """Per (inducing commit, path): the fix's file whose lines were blamed (its path in the
    fix's parent; ``path`` is the file's name in the inducing commit)."""


def _decode(b: bytes) -> str:
    return b.decode("utf-8", "replace")


class Blamer:
    """Blames fixes in one process: a ``git log -p`` per batch, a ``git blame`` per file."""

    def __init__(self, repo: GitRepo, settings: BlameSettings) -> None:
        self.repo = repo
        self.settings = settings
        self.is_source = SourceFilter.of(settings.extensions, settings.exclude)
        self.cat = CatFile(repo)
        self._ast_cache: dict[tuple[str, str], bool] = {}

    def close(self) -> None:
        self.cat.close()

    def patches(self, shas: list[str]) -> dict[str, list[FileDiff]]:
        """Diff hunks of ``shas``; one git process, or one per fix when that fails (a
        fix whose objects are missing from the repository then has no hunks)."""
        st = self.settings
        # -w hides a Python line's new indentation: then whitespace is compared per line
        argv = log_patch_argv(st.ignore_whitespace and not st.python_indentation)

        def same_line(path: str) -> Callable[[bytes], bytes] | None:
            return line_key(
                path,
                whitespace=st.ignore_whitespace,
                python_indentation=st.python_indentation,
                comments=st.skip_incidental,
            )

        try:
            return parse_patches(
                self.repo.run(*argv, input=("\n".join(shas) + "\n").encode()), same_line
            )
        except GitCommandError:
            if len(shas) == 1:
                return {}
        out: dict[str, list[FileDiff]] = {}
        for sha in shas:
            out.update(self.patches([sha]))
        return out

    def blame_fix(self, job: FixJob, files: list[FileDiff]) -> FixBlame:
        res = FixBlame(job.sha)
        sources = [f for f in files if not self.settings.source_only or self.is_source(f.old_path)]
        for f in sources:
            if f.deleted:
                self._blame_lines(job, f, f.deleted, f.texts, res)
        if res.considered == 0 and self.settings.blame_additions:
            # a fix that only adds (a missing check, a forgotten call): the code around
            # the insertion is what it corrects (the lines just before and after it)
            for f in sources:
                if f.adjacent:
                    old = self.cat.read(f.old_blob) if f.old_blob else None
                    lines = old.split(b"\n") if old is not None else []
                    nos = sorted(
                        {n for n in f.adjacent if n <= len(lines) and lines[n - 1].strip()}
                    )
                    self._blame_lines(job, f, nos, [lines[n - 1] for n in nos], res)
        return res

    def _blame_lines(
        self, job: FixJob, f: FileDiff, nos: list[int], texts: list[bytes], res: FixBlame
    ) -> None:
        """Blame lines ``nos`` (with their ``texts``) of ``f`` in the fix's parent, less the
        cosmetic and incidental ones, into ``res``."""
        lines = nos
        if self.settings.ignore_comments:
            old = self.cat.read(f.old_blob) if f.old_blob else None
            drop = cosmetic_lines(f.old_path, old, nos, texts)
            res.cosmetic += len(drop)
            lines = [n for n in nos if n not in drop]
        if self.settings.skip_incidental and lines:
            by_no = dict(zip(nos, texts, strict=True))
            incidental = incidental_lines(f.old_path, lines, [by_no[n] for n in lines])
            res.cosmetic += len(incidental)
            lines = [n for n in lines if n not in incidental]
        if not lines:
            return
        res.considered += len(lines)
        blamed = self._blame(job, f.old_path, lines)
        if blamed is None:
            return
        for sha, path, _final, text in blamed:
            key = (sha, path or f.old_path)
            res.counts[key] = res.counts.get(key, 0) + 1
            res.fix_paths.setdefault(key, f.old_path)
            sample = res.links.setdefault(key, [])
            if len(sample) < SAMPLE_LINES:
                sample.append(_decode(text))

    def _blame(
        self, job: FixJob, path: str, lines: list[int]
    ) -> list[tuple[str, str, int, bytes]] | None:
        """Blame ``lines`` of ``path`` in the fix's parent; with ``skip_cosmetic_commits``
        (``skip_annotation_commits``), commits that left a Python file's AST unchanged (that
        changed only its type annotations) are looked through (``--ignore-rev``)."""
        wanted = set(lines)
        skip: list[str] = []
        # a Python line's indentation is code: blame names who indented it (a commit that
        # only re-indented, the same AST, is looked through below)
        ws = self.settings.ignore_whitespace and not (
            self.settings.python_indentation and is_python_path(path)
        )
        for _ in range(4):
            argv = blame_argv(
                f"{job.sha}^",
                path,
                ranges(lines),
                ignore_whitespace=ws,
                copy_detection=self.settings.copy_detection,
                ignore_revs_file=job.ignore_revs_file,
                ignore_revs=skip,
            )
            try:
                out = self.repo.run(*argv)
            except GitCommandError:
                # e.g. a path git cannot blame (submodule, missing objects): skip the file
                return None
            blamed = [b for b in parse_porcelain(out) if b[2] in wanted]
            if not (self.settings.skip_cosmetic_commits or self.settings.skip_annotation_commits):
                return blamed
            more = [
                sha
                for sha, p in dict.fromkeys((b[0], b[1] or path) for b in blamed)
                if sha not in skip and self._look_through(sha, p)
            ]
            if not more:
                return blamed
            skip += more
        return blamed

    def _look_through(self, sha: str, path: str) -> bool:
        """Did commit ``sha`` only reformat Python file ``path`` (same AST), or only change
        its type annotations? Each check runs only when its setting is on."""
        key = (sha, path)
        hit = self._ast_cache.get(key)
        if hit is not None:
            return hit
        same = False
        if is_python_path(path):
            after = self.cat.read(f"{sha}:{path}")
            before = self.cat.read(f"{sha}^:{path}")
            if after is not None and before is not None:
                same = (
                    cosmetic_change(
                        before,
                        after,
                        reformat=self.settings.skip_cosmetic_commits,
                        annotations=self.settings.skip_annotation_commits,
                        comments=self.settings.ignore_comments,
                    )
                    is not None
                )
        self._ast_cache[key] = same
        return same

    def run(self, jobs: list[FixJob]) -> list[FixBlame]:
        patches = self.patches([j.sha for j in jobs])
        return [self.blame_fix(j, patches.get(j.sha, [])) for j in jobs]


# -- worker processes --------------------------------------------------------------------
#
# Each worker leads its own process group, which its git children join: stopping a
# worker kills the group (os.killpg), so no git blame or cat-file outlives it. A
# terminal's Ctrl-C reaches the main process only; the main process decides when the
# workers stop (at once on an interruption: their unfinished chunks are blamed again
# by the next run). On Linux a worker also stops when the main process dies, even
# by SIGKILL (PR_SET_PDEATHSIG).


def _kill_own_group(signum: int, frame: object) -> None:
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _die_with_parent(parent: int) -> None:
    if sys.platform != "linux":
        return
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl
        os.killpg(os.getpgrp(), signal.SIGKILL)


def _worker_main(
    conn: Connection, parent: int, path: str, git_dir: str, bare: bool, settings: BlameSettings
) -> None:
    """Blame the chunks the main process sends until it sends None (or goes away)."""
    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)
        signal.signal(signal.SIGTERM, _kill_own_group)
        _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    blamer = Blamer(GitRepo(Path(path), Path(git_dir), bare), settings)
    try:
        while True:
            try:
                jobs = conn.recv()
            except EOFError:
                return
            if jobs is None:
                return
            try:
                reply: tuple[str, object] = ("ok", blamer.run(jobs))
            except Exception as err:
                reply = ("error", err)
            try:
                conn.send(reply)
            except Exception as err:  # an exception that does not pickle
                conn.send(("error", GitCommandError(f"blame worker failed: {err!r}")))
    finally:
        blamer.close()


class _Workers:
    """``n`` blame worker processes fed one chunk at a time over a pipe each."""

    def __init__(self, repo: GitRepo, settings: BlameSettings, n: int) -> None:
        import multiprocessing

        # fork: workers start at once, without importing diffrisk again
        ctx = multiprocessing.get_context("fork" if hasattr(os, "fork") else None)
        self.procs: list[BaseProcess] = []
        self.conns: list[Connection] = []
        try:
            for _ in range(n):
                here, there = ctx.Pipe()
                proc = ctx.Process(
                    target=_worker_main,
                    args=(
                        there,
                        os.getpid(),
                        str(repo.path),
                        str(repo.git_dir),
                        repo.bare,
                        settings,
                    ),
                    daemon=True,
                )
                proc.start()
                there.close()
                if hasattr(os, "setpgid"):  # also here: killpg must find the group at once
                    assert proc.pid is not None  # started
                    with contextlib.suppress(OSError):
                        os.setpgid(proc.pid, proc.pid)
                self.procs.append(proc)
                self.conns.append(here)
        except BaseException:
            self.kill()
            raise

    def run(self, chunks: list[list[FixJob]]) -> Iterator[list[FixBlame]]:
        """Results chunk by chunk, in the order they finish."""
        from multiprocessing.connection import wait

        todo = collections.deque(chunks)
        busy: dict[Connection, int] = {}  # pipe -> worker, while it blames a chunk

        def feed(i: int) -> None:
            if todo:
                try:
                    self.conns[i].send(todo.popleft())
                except OSError:
                    self._died(i)
                busy[self.conns[i]] = i

        for i in range(len(self.conns)):
            feed(i)
        while busy:
            sentinels = {self.procs[i].sentinel: i for i in busy.values()}
            for ready in wait([*busy, *sentinels]):
                if ready in sentinels:
                    i = sentinels[ready]
                    if self.conns[i] in busy and not self.conns[i].poll():
                        self._died(i)
                    continue  # its last reply is read first
                if ready not in busy:
                    continue
                i = busy.pop(ready)
                try:
                    status, value = ready.recv()
                except EOFError:
                    self._died(i)
                if status == "error":
                    raise value
                feed(i)
                yield value

    def _died(self, i: int) -> NoReturn:
        proc = self.procs[i]
        proc.join(1)
        raise GitCommandError(
            f"a blame worker process died (exit code {proc.exitcode})",
            hint="run `diffrisk label` again: the fixes blamed so far are kept",
        )

    def stop(self) -> None:
        """Let idle workers finish (close their cat-file) and exit."""
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send(None)
        for proc in self.procs:
            proc.join(10)
        self.kill()

    def kill(self) -> None:
        """Kill every worker with its git children (immediately; idempotent)."""
        for proc in self.procs:
            if proc.pid is None or proc.exitcode == 0:  # never started, or stopped cleanly
                continue
            try:  # also when it died: git children it left keep its group
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            except (OSError, AttributeError):  # not a group leader yet, or Windows
                if proc.exitcode is None:
                    proc.kill()
        for proc in self.procs:
            if proc.pid is not None:
                proc.join()
        for conn in self.conns:
            conn.close()
        self.conns = []
        self.procs = []


def blame_fixes(
    repo: GitRepo,
    jobs: list[FixJob],
    settings: BlameSettings,
    workers: int = 1,
    chunk: int = 16,
    on_done: Callable[[int], None] | None = None,
) -> Generator[FixBlame, None, None]:
    """Blame every job, in ``workers`` processes; yields results as chunks finish.

    Closing the generator early (an interruption, an error) stops the workers and their
    git processes at once; use it with ``contextlib.closing``.
    """
    chunks = [jobs[i : i + chunk] for i in range(0, len(jobs), chunk)]
    if workers <= 1 or len(chunks) <= 1:
        b = Blamer(repo, settings)
        try:
            for c in chunks:
                yield from b.run(c)
                if on_done:
                    on_done(len(c))
        finally:
            b.close()
        return
    pool = _Workers(repo, settings, min(workers, len(chunks)))
    finished = False
    try:
        for results in pool.run(chunks):
            yield from results
            if on_done:
                on_done(len(results))
        finished = True
    finally:
        if finished:
            pool.stop()
        else:
            pool.kill()


# -- .git-blame-ignore-revs ------------------------------------------------------------

_HEX = re.compile(r"^[0-9a-fA-F]{7,64}$")


class IgnoreRevs:
    """Materialises the ``.git-blame-ignore-revs`` of fix parents as temporary files.

    One file per distinct blob; entries that are not commits of this repository are
    dropped (git blame refuses an unknown revision).
    """

    NAME = ".git-blame-ignore-revs"

    def __init__(self, repo: GitRepo) -> None:
        self.repo = repo
        self._tmp = tempfile.TemporaryDirectory(prefix="diffrisk-ignore-revs-")
        self._by_blob: dict[str, str | None] = {}

    def close(self) -> None:
        self._tmp.cleanup()

    def files_for(self, shas: list[str]) -> dict[str, str | None]:
        """fix sha -> path of its parent's ignore-revs file (None when it has none)."""
        if not shas:
            return {}
        query = "".join(f"{s}^:{self.NAME}\n" for s in shas).encode()
        out = self.repo.run(
            "cat-file", "--batch-check=%(objectname) %(objecttype)", input=query, check=False
        )
        lines = out.decode("utf-8", "replace").splitlines()
        res: dict[str, str | None] = {}
        blobs = []
        for sha, line in zip(shas, lines, strict=False):
            parts = line.split()
            if len(parts) == 2 and parts[1] == "blob":
                res[sha] = parts[0]
                blobs.append(parts[0])
            else:
                res[sha] = None
        for blob in dict.fromkeys(blobs):
            if blob not in self._by_blob:
                self._by_blob[blob] = self._materialize(blob)
        return {sha: (self._by_blob[b] if b else None) for sha, b in res.items()}

    def _materialize(self, blob: str) -> str | None:
        text = self.repo.run("cat-file", "blob", blob).decode("utf-8", "replace")
        revs = []
        for line in text.splitlines():
            word = line.split("#", 1)[0].strip()
            if _HEX.match(word):
                revs.append(word)
        if not revs:
            return None
        query = "".join(f"{r}^{{commit}}\n" for r in revs).encode()
        out = self.repo.run(
            "cat-file", "--batch-check=%(objectname) %(objecttype)", input=query, check=False
        )
        ok = [p.split()[0] for p in out.decode().splitlines() if p.endswith(" commit")]
        if not ok:
            return None
        path = Path(self._tmp.name) / f"{blob}.txt"
        path.write_text("\n".join(ok) + "\n")
        return str(path)
