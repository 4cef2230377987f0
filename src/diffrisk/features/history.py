"""Parsing git's change stream and the incremental history state behind the Kamei features.

A :class:`CommitRecord` is one commit's change against its first parent, parsed from
``git log -z --raw --numstat`` (or ``git diff`` for a PR). :class:`HistoryState` holds
what is known about all commits processed so far and computes a change's features
against its *ancestors* only, in one pass, never re-walking history.

Ancestry is exact: each commit gets a bit (its index in topological order) and the set of
its ancestors is a Python int used as a bitset; only the bitsets of commits that still
have unprocessed children are kept, so memory stays proportional to the open branches.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

SECONDS_PER_DAY = 86400.0
SECONDS_PER_YEAR = 365.25 * SECONDS_PER_DAY
NULL_OID = "0" * 40
GITLINK = "160000"


@dataclass(slots=True)
class FileChange:
    """One modified file of a change (PyDriller's ModifiedFile, as plain data)."""

    path: str
    old_path: str | None
    status: str  # A, M, D, R, T
    old_blob: str | None
    new_blob: str | None
    old_mode: str
    new_mode: str
    la: int = 0
    ld: int = 0
    binary: bool = False
    unknown: bool = False
    lines_before: int = 0
    lines_after: int = 0

    @property
    def history_path(self) -> str:
        """The path whose history this file continues (the old path of a rename)."""
        return self.old_path or self.path

    @property
    def is_python(self) -> bool:
        return self.path.endswith((".py", ".pyi")) and self.new_mode != GITLINK


@dataclass(slots=True)
class CommitRecord:
    sha: str
    parents: list[str]
    author_email: str
    author_time: int
    subject: str
    body: str
    files: list[FileChange] = field(default_factory=list)


def _dec(b: bytes) -> str:
    """Paths as text: non-UTF-8 bytes become ``\\xNN`` escapes (stable, storable)."""
    return b.decode("utf-8", "backslashreplace")


def parse_changes(tokens: list[bytes]) -> list[FileChange]:
    """Parse the NUL-separated ``--raw`` then ``--numstat`` tokens of one change."""
    files: list[FileChange] = []
    i, n = 0, len(tokens)
    while i < n and tokens[i][:1] == b":":
        meta = tokens[i][1:].split(b" ")
        old_mode, new_mode = meta[0].decode(), meta[1].decode()
        old_oid, new_oid = meta[2].decode(), meta[3].decode()
        status = meta[4][:1].decode()
        if status in ("R", "C"):
            old_path, path = _dec(tokens[i + 1]), _dec(tokens[i + 2])
            i += 3
        else:
            old_path, path = None, _dec(tokens[i + 1])
            i += 2
        if status == "C":  # copies are only reported with -C; treat as an add
            status, old_path, old_oid, old_mode = "A", None, NULL_OID, "000000"
        files.append(
            FileChange(
                path=path,
                old_path=old_path if status == "R" else None,
                status=status,
                old_blob=None if old_oid == NULL_OID else old_oid,
                new_blob=None if new_oid == NULL_OID else new_oid,
                old_mode=old_mode,
                new_mode=new_mode,
            )
        )
    stats: dict[str, tuple[int, int, bool]] = {}
    while i < n:
        tok = tokens[i]
        if not tok:
            i += 1
            continue
        a, d, p = tok.split(b"\t", 2)
        if p:
            path = _dec(p)
            i += 1
        else:  # rename: old and new path follow as tokens
            path = _dec(tokens[i + 2])
            i += 3
        if a == b"-":
            stats[path] = (0, 0, True)
        else:
            stats[path] = (int(a), int(d), False)
    for f in files:
        s = stats.get(f.path)
        if s is not None:
            f.la, f.ld, f.binary = s
        if GITLINK in (f.old_mode, f.new_mode):
            f.binary = f.binary or False
    return files


HEADER_END = b"\x00\x02\x00"
RECORD_SEP = b"\x01\x02"
LOG_FORMAT = "--format=%x01%x02%H%x00%P%x00%aE%x00%at%x00%s%x00%b%x00%x02"


def parse_record(rec: bytes) -> CommitRecord:
    end = rec.find(HEADER_END)
    header = rec[:end].split(b"\x00", 5)
    rest = rec[end + len(HEADER_END) :].lstrip(b"\n")
    tokens = rest.split(b"\x00") if rest else []
    if tokens and tokens[-1] == b"":
        tokens.pop()
    sha, parents, email, at, subject, body = header
    return CommitRecord(
        sha=sha.decode(),
        parents=parents.decode().split(),
        author_email=email.decode("utf-8", "replace").strip().lower(),
        author_time=int(at or 0),
        subject=subject.decode("utf-8", "replace"),
        body=body.decode("utf-8", "replace"),
        files=parse_changes(tokens),
    )


def iter_records(chunks: Iterable[bytes]) -> Iterator[CommitRecord]:
    buf = b""
    for chunk in chunks:
        buf += chunk
        if RECORD_SEP not in buf:
            continue
        parts = buf.split(RECORD_SEP)
        buf = parts.pop()
        for p in parts:
            if p.strip(b"\x00\n"):
                yield parse_record(p)
    if buf.strip(b"\x00\n"):
        yield parse_record(buf)


def subsystem(path: str) -> str:
    """Top-level directory of a path; files at the root form the subsystem ''."""
    head, sep, _ = path.partition("/")
    return head if sep else ""


def change_entropy(changes: Iterable[int]) -> float:
    """Normalised entropy over files with added+deleted lines > 0."""
    vals = [c for c in changes if c > 0]
    n = len(vals)
    if n <= 1:
        return 0.0
    total = float(sum(vals))
    h = -sum((c / total) * math.log2(c / total) for c in vals)
    return h / math.log2(n)


@dataclass(slots=True)
class HistoryFeatures:
    ndev: int
    age: float
    nuc: int
    exp: int
    rexp: float
    sexp: int
    pfix: int = 0


_EMPTY = np.zeros(0, dtype=np.int64)


class _Grow:
    """An append-only int64 array (capacity doubling): commit bits in ascending order."""

    __slots__ = ("a", "n")

    def __init__(self) -> None:
        self.a = np.empty(4, dtype=np.int64)
        self.n = 0

    @classmethod
    def of(cls, values: np.ndarray) -> _Grow:
        g = cls()
        g.a = np.array(values, dtype=np.int64)
        g.n = len(values)
        if not g.n:
            g.a = np.empty(4, dtype=np.int64)
        return g

    def append(self, v: int) -> None:
        if self.n == len(self.a):
            bigger = np.empty(2 * len(self.a), dtype=np.int64)
            bigger[: self.n] = self.a
            self.a = bigger
        self.a[self.n] = v
        self.n += 1

    def view(self) -> np.ndarray:
        return self.a[: self.n]


class HistoryState:
    """Incremental state over the commits processed so far (in topological order).

    Call :meth:`begin` for every commit (merges too) in topological order, then
    :meth:`features` to compute a non-merge commit's history features and
    :meth:`record` to add it to the history. A change that is not a commit (a PR
    squashed into one change) is computed with :meth:`features` over an explicit
    ancestry bitset from :meth:`ancestry_of`.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._n = 0  # commits seen (bits assigned)
        self._index: dict[str, int] = {}
        self._anc: dict[int, int] = {}  # bit -> bitset of self and ancestors
        self._pending_children: dict[int, int] = {}
        self._nonmerge_count = 0
        self._time = np.zeros(capacity, dtype=np.int64)
        self._author = np.full(capacity, -1, dtype=np.int32)
        self._fix = np.zeros(capacity, dtype=np.int8)
        self._authors: dict[str, int] = {}
        self.file_commits: dict[str, _Grow] = {}
        self.author_commits: dict[int, _Grow] = {}
        self.author_subsys: dict[tuple[int, str], int] = {}  # bitsets of commits
        self.blob_lines: dict[str, int] = {}

    # -- graph -------------------------------------------------------------------------
    def _grow(self, n: int) -> None:
        if n <= len(self._time):
            return
        cap = max(n, 2 * len(self._time))
        t = np.zeros(cap, dtype=np.int64)
        a = np.full(cap, -1, dtype=np.int32)
        fx = np.zeros(cap, dtype=np.int8)
        t[: len(self._time)] = self._time
        a[: len(self._author)] = self._author
        fx[: len(self._fix)] = self._fix
        self._time, self._author, self._fix = t, a, fx

    def set_children_counts(self, counts: dict[str, int]) -> None:
        """How many children each commit has among those that will be processed.

        Lets the state drop a commit's ancestry bitset once its last child is done.
        """
        self._children_by_sha = counts

    def index(self, sha: str) -> int | None:
        return self._index.get(sha)

    def ancestry_of(self, parents: Iterable[str]) -> int:
        """Bitset of all known ancestors reachable from ``parents`` (inclusive)."""
        bits = 0
        for p in parents:
            i = self._index.get(p)
            if i is not None:
                bits |= self._anc[i]
        return bits

    def begin(self, sha: str, parents: list[str]) -> tuple[int, int]:
        """Assign ``sha`` its bit; returns (bit, bitset of its strict ancestors)."""
        i = self._n
        self._n += 1
        self._grow(self._n)
        self._index[sha] = i
        prior = 0
        for p in parents:
            j = self._index.get(p)
            if j is None:
                continue
            prior |= self._anc[j]
            left = self._pending_children.get(j)
            if left is not None:
                if left <= 1:
                    del self._pending_children[j]
                    del self._anc[j]
                else:
                    self._pending_children[j] = left - 1
        self._anc[i] = prior | (1 << i)
        kids = getattr(self, "_children_by_sha", {}).get(sha)
        if kids is not None:
            if kids == 0:
                # no child will come; keep the bitset for later scoring against this tip
                self._pending_children[i] = 1 << 62
            else:
                self._pending_children[i] = kids
        return i, prior

    # -- features ---------------------------------------------------------------------
    def _author_id(self, email: str) -> int:
        aid = self._authors.get(email)
        if aid is None:
            aid = self._authors[email] = len(self._authors)
        return aid

    def file_history(self, path: str) -> np.ndarray:
        """Bits of the non-merge commits that changed ``path`` (renames followed), ascending."""
        g = self.file_commits.get(path)
        return g.view() if g is not None else _EMPTY

    def subsystem_commits(self, author_email: str, subsys: str, prior: int) -> int:
        """Commits among ``prior`` by this author that touched ``subsys``."""
        aid = self._authors.get(author_email)
        if aid is None:
            return 0
        return (self.author_subsys.get((aid, subsys), 0) & prior).bit_count()

    def subsystem_mask(self, subsys: str) -> int:
        """Bitset of the commits (by any author) that touched ``subsys``."""
        mask = 0
        for (_aid, s), bits in self.author_subsys.items():
            if s == subsys:
                mask |= bits
        return mask

    def features(
        self,
        files: list[FileChange],
        author_email: str,
        author_time: int,
        prior: int,
        prior_count: int | None = None,
    ) -> HistoryFeatures:
        """History features of a change whose ancestors are the bitset ``prior``.

        ``prior_count`` is the number of commits processed so far; when every one of
        them is an ancestor (a linear history) the ancestry filter is skipped.
        """
        processed = self._n if prior_count is None else prior_count
        all_prior = prior.bit_count() == processed
        anc_arr: np.ndarray | None = None

        def filt(arr: np.ndarray) -> np.ndarray:
            nonlocal anc_arr
            if all_prior or not len(arr):
                return arr
            if anc_arr is None:
                nbytes = (self._n + 8) // 8
                anc_arr = np.unpackbits(
                    np.frombuffer(prior.to_bytes(nbytes, "little"), dtype=np.uint8),
                    bitorder="little",
                ).astype(bool)
            return arr[anc_arr[arr]]

        t = author_time
        per_file: list[np.ndarray] = []
        ages: list[float] = []
        for f in files:
            h = filt(self.file_history(f.history_path))
            if not len(h):
                ages.append(0.0)
                continue
            per_file.append(h)
            last = int(self._time[h].max())
            ages.append(max(0.0, (t - last) / SECONDS_PER_DAY))
        if per_file:
            # each history is sorted and unique; only several need a union
            touched = per_file[0] if len(per_file) == 1 else np.unique(np.concatenate(per_file))
            nuc = len(touched)
            ndev = len(np.unique(self._author[touched]))
            pfix = int(self._fix[touched].sum())
        else:
            nuc = ndev = pfix = 0
        age = float(sum(ages) / len(ages)) if ages else 0.0

        aid = self._authors.get(author_email)
        exp, rexp, sexp = 0, 0.0, 0
        if aid is not None:
            mine = filt(self.author_commits[aid].view())
            exp = len(mine)
            if exp:
                years = np.maximum(0.0, (t - self._time[mine]) / SECONDS_PER_YEAR)
                rexp = float(np.sum(1.0 / (1.0 + years)))
            mask = 0
            for s in {subsystem(f.path) for f in files}:
                mask |= self.author_subsys.get((aid, s), 0)
            sexp = (mask & prior).bit_count()
        return HistoryFeatures(
            ndev=ndev, age=age, nuc=nuc, exp=exp, rexp=rexp, sexp=sexp, pfix=pfix
        )

    def record(
        self, bit: int, files: list[FileChange], author_email: str, author_time: int, fix: int = 0
    ) -> None:
        """Add a processed non-merge commit (``fix``: classified as a bug fix) to the history."""
        aid = self._author_id(author_email)
        self._time[bit] = author_time
        self._author[bit] = aid
        self._fix[bit] = fix
        self._nonmerge_count += 1
        fc = self.file_commits
        for f in files:
            if f.old_path is not None and f.old_path != f.path:
                old = fc.get(f.old_path)
                if old is not None and old.n:
                    cur = fc.get(f.path)
                    merged = np.union1d(old.view(), cur.view()) if cur is not None else old.view()
                    fc[f.path] = _Grow.of(merged)
                fc.setdefault(f.old_path, _Grow()).append(bit)
            g = fc.get(f.path)
            if g is None:
                g = fc[f.path] = _Grow()
            if not g.n or g.a[g.n - 1] != bit:
                g.append(bit)
        ac = self.author_commits.get(aid)
        if ac is None:
            ac = self.author_commits[aid] = _Grow()
        ac.append(bit)
        one = 1 << bit
        subs = self.author_subsys
        for s in {subsystem(f.path) for f in files}:
            subs[(aid, s)] = subs.get((aid, s), 0) | one

    # -- line counts ------------------------------------------------------------------
    def set_line_counts(self, files: list[FileChange], read_blob) -> None:
        """Fill lines_before/lines_after from known blob counts plus numstat.

        ``read_blob(oid) -> bytes | None`` is called only for a blob never seen in a
        processed diff (e.g. created by a merge resolution); None means missing.
        """
        bl = self.blob_lines
        for f in files:
            gitlink = GITLINK in (f.old_mode, f.new_mode)
            before = 0
            if f.old_blob is not None and not gitlink:
                known = bl.get(f.old_blob)
                if known is None:
                    data = read_blob(f.old_blob)
                    if data is None:
                        f.unknown = True
                        known = 0
                    elif b"\0" in data[:8000]:
                        known = 0
                    else:
                        from diffrisk.git.repo import count_lines

                        known = count_lines(data)
                    if not f.unknown:
                        bl[f.old_blob] = known
                before = known
            if f.binary:
                before = 0
            f.lines_before = 0 if f.status == "A" else before
            if f.new_blob is None or gitlink:
                f.lines_after = 0
            elif f.binary:
                f.lines_after = 0
                bl[f.new_blob] = 0
            elif f.unknown:
                f.lines_after = 0
            else:
                f.lines_after = max(0, before + f.la - f.ld)
                bl[f.new_blob] = f.lines_after
