"""Thin git layer: open and check a repository, run git, read blobs.

Everything that starts a git process lives here. Mining streams one ``git log``;
blobs are read through one long-lived ``git cat-file --batch`` per process.
"""

from __future__ import annotations

import codecs
import dataclasses
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import git

from diffrisk.errors import (
    EmptyRepositoryError,
    GitCommandError,
    NotAGitRepositoryError,
    RepositoryError,
    ShallowCloneError,
)

# git must never prompt, page, or fetch missing objects over the network (partial clones).
GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_PAGER": "cat",
    "GIT_NO_LAZY_FETCH": "1",
    "GIT_OPTIONAL_LOCKS": "0",
    "LC_ALL": "C",
}
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
# -c options for every git process: no quoting of odd paths, no external diff drivers, and
# no work tree. git reads .gitattributes and .mailmap from the work tree, which in CI is the
# pull request's checkout: a PR's `*.py -diff` would turn its own lines into a binary "-"
# and its .mailmap would lend it a veteran's experience. As a bare repository git reads no
# attributes from the tree (attr.tree: git 2.42 and newer read HEAD's otherwise) and the
# mailmap from a blob we name (GitRepo.mailmap_rev; HEAD's by default).
GIT_CONFIG = [
    "-c",
    "core.quotepath=off",
    "-c",
    "diff.external=",
    "-c",
    "log.showSignature=false",
    "-c",
    "core.bare=true",
    "-c",
    f"attr.tree={EMPTY_TREE}",
]
#: Said when a partial clone lacks the .mailmap blob (:attr:`GitRepo.mailmap_missing`).
MAILMAP_MISSING = (
    "the .mailmap of the commit is missing from this partial clone: authors are not mapped "
    "(fetch it, or clone without --filter)"
)
# Variables that would give git a work tree, an index or an attribute source of its own.
_UNSET = ("GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_ATTR_SOURCE", "GIT_DIR")

SHALLOW_HINT = (
    "fetch the full history: `git fetch --unshallow`, or in GitHub Actions set "
    "`fetch-depth: 0` on actions/checkout"
)


@dataclass(frozen=True)
class GitRepo:
    """An opened, checked repository. ``path`` is the work tree (or the git dir when bare)."""

    path: Path
    git_dir: Path
    bare: bool
    mailmap_rev: str | None = None
    """The commit whose .mailmap maps authors (None: HEAD's). In CI, a trusted one."""
    mailmap_missing: bool = False
    """A partial clone without that commit's .mailmap blob: authors are not mapped."""

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _UNSET}
        env.update(GIT_ENV)
        return env

    def argv(self, *args: str) -> list[str]:
        # --bare (and core.bare above): with --git-dir alone, git takes the current
        # directory for a work tree and reads its .gitattributes and .mailmap
        mailmap = ["-c", f"mailmap.blob={self.mailmap_rev}:.mailmap"] if self.mailmap_rev else []
        return ["git", "--bare", "--git-dir", str(self.git_dir), *GIT_CONFIG, *mailmap, *args]

    def with_mailmap(self, rev: str) -> GitRepo:
        """This repository with authors mapped by the .mailmap of ``rev`` (resolved here).

        A partial clone that lacks that .mailmap blob gets no mailmap (the empty tree has
        none) and ``mailmap_missing``: git would stop at every commit, unable to fetch it."""
        sha = self.resolve(rev)
        if self.is_partial_clone():
            oid = self.run("rev-parse", "--verify", "--quiet", f"{sha}:.mailmap", check=False)
            if oid.strip():
                with CatFile(self) as cat:
                    if cat.read(oid.strip().decode()) is None:
                        return dataclasses.replace(
                            self, mailmap_rev=EMPTY_TREE, mailmap_missing=True
                        )
        return dataclasses.replace(self, mailmap_rev=sha)

    def run(self, *args: str, input: bytes | None = None, check: bool = True) -> bytes:
        """Run git and return stdout; a failure raises :class:`GitCommandError`."""
        try:
            proc = subprocess.run(
                self.argv(*args),
                input=input,
                capture_output=True,
                env=self.env(),
                cwd=str(self.path),
                check=False,
            )
        except FileNotFoundError:
            raise GitCommandError(
                "git is not installed or not on PATH", hint="install git"
            ) from None
        if check and proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise GitCommandError(
                f"git {args[0]} failed: {err[-1] if err else 'exit code ' + str(proc.returncode)}"
            )
        return proc.stdout

    def popen(self, *args: str, stdin: int | None = None) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.argv(*args),
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env(),
            cwd=str(self.path),
            bufsize=1 << 20,
        )

    def resolve(self, rev: str) -> str:
        """Full sha of a revision, or a clear error."""
        out = self.run(
            "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}", check=False
        )
        sha = out.decode().strip()
        if not sha:
            raise RepositoryError(
                f"revision {rev!r} does not exist in {self.path}",
                hint="check the branch, tag or sha; in CI, fetch it first (fetch-depth: 0)",
            )
        return sha

    def is_shallow(self) -> bool:
        return (self.git_dir / "shallow").exists()

    def is_partial_clone(self) -> bool:
        out = self.run(
            "config", "--get-regexp", r"remote\..*\.promisor|extensions\.partialclone", check=False
        )
        return b"true" in out.lower() or b"partialclone" in out.lower()


def work_tree_top(path: str | os.PathLike[str]) -> Path | None:
    """The top level of the work tree ``path`` is in (``path`` itself at the top), else
    None (a bare repository, a git directory, no repository, no git). A hook's
    ``GIT_DIR`` / ``GIT_WORK_TREE`` would name another repository: they are ignored."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    try:
        out = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--show-toplevel"],
            capture_output=True,
            check=False,
            env=env,
        ).stdout.strip()
    except OSError:
        return None
    return Path(os.fsdecode(out)) if out else None


def open_repo(path: str | os.PathLike[str], *, allow_shallow: bool = False) -> GitRepo:
    """Open a repository (work tree or bare) and check it can be mined."""
    p = Path(path).expanduser()
    if not p.exists():
        raise NotAGitRepositoryError(
            f"{p} does not exist", hint="pass the path of a git repository with --repo"
        )
    try:
        repo = git.Repo(p, search_parent_directories=False)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        top = work_tree_top(p)
        if top is not None:
            top_s = str(top)
            raise NotAGitRepositoryError(
                f"{p} is a directory inside the repository {top_s}, not its top level",
                hint=f"run from {top_s} or pass --repo {top_s}",
            ) from None
        raise NotAGitRepositoryError(
            f"{p} is not a git repository",
            hint="run inside a git checkout or pass its path with --repo",
        ) from None
    git_dir = Path(repo.git_dir).resolve()
    bare = bool(repo.bare)
    if not bare and git_dir == p.resolve():
        # a git directory without core.bare in its config (some mirrors have no config at
        # all): GitPython takes its parent for the work tree, git itself calls it bare
        out = subprocess.run(
            ["git", "-C", str(git_dir), "rev-parse", "--is-bare-repository"],
            capture_output=True,
            check=False,
        )
        bare = out.stdout.strip() == b"true"
    root = git_dir if bare else Path(repo.working_tree_dir or p).resolve()
    repo.close()
    gr = GitRepo(root, git_dir, bare)
    if not gr.run("rev-parse", "--verify", "--quiet", "HEAD", check=False).strip():
        raise EmptyRepositoryError(
            f"{root} has no commits yet", hint="commit something first, or check the path"
        )
    if gr.is_shallow() and not allow_shallow:
        raise ShallowCloneError(
            f"{root} is a shallow clone: its history is incomplete", hint=SHALLOW_HINT
        )
    return gr


class CatFile:
    """One long-lived ``git cat-file --batch``: read blobs by id without a process each."""

    def __init__(self, repo: GitRepo) -> None:
        self._repo = repo
        self._proc: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = self._repo.popen("cat-file", "--batch", stdin=subprocess.PIPE)
        return self._proc

    def read(self, oid: str) -> bytes | None:
        """The object's content, or None when it is missing from the repository."""
        proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(oid.encode() + b"\n")
        proc.stdin.flush()
        header = proc.stdout.readline()
        if not header:
            # a partial clone's promised object: git stops rather than say "missing" when
            # it cannot fetch it (GIT_NO_LAZY_FETCH); the next read starts a new process
            err = proc.stderr.read() if proc.stderr is not None else b""
            self.close()
            if b"promisor remote" in err:
                return None
            raise GitCommandError(f"git cat-file stopped while reading {oid}")
        parts = header.split()
        if len(parts) < 3 or parts[1] == b"missing":
            return None
        size = int(parts[2])
        data = proc.stdout.read(size)
        proc.stdout.read(1)  # trailing newline
        return data

    def close(self) -> None:
        if self._proc is not None:
            try:
                if self._proc.stdin:
                    self._proc.stdin.close()
                self._proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
            for stream in (self._proc.stdout, self._proc.stderr):
                if stream is not None:
                    stream.close()
            self._proc = None

    def __enter__(self) -> CatFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def count_lines(data: bytes) -> int:
    """Lines as git counts them: newlines, plus one for a non-empty unterminated last line."""
    n = data.count(b"\n")
    if data and not data.endswith(b"\n"):
        n += 1
    return n


def unquote_path(raw: bytes, errors: str = "surrogateescape") -> str:
    """A path as git prints it in diff headers (C-quoted when it has odd characters)."""
    raw = raw.rstrip(b"\t")  # git appends a tab to names containing spaces
    if raw.startswith(b'"') and raw.endswith(b'"'):
        raw = codecs.escape_decode(raw[1:-1])[0]
    return raw.decode("utf-8", errors)
