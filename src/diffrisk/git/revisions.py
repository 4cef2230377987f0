"""Questions about revisions: the default base branch, a commit's first parent, the newest
tag matching a pattern, and how two commits stand to each other."""

from __future__ import annotations

import fnmatch
import os

from diffrisk.errors import RepositoryError
from diffrisk.git.repo import open_repo

#: Where a change is based when no --base is given: the first that exists.
DEFAULT_BASES = ("origin/HEAD", "origin/main", "origin/master", "main", "master")


def default_base(repo: str | os.PathLike[str]) -> str:
    """The first of :data:`DEFAULT_BASES` that exists in ``repo``."""
    r = open_repo(repo)
    for rev in DEFAULT_BASES:
        if r.run("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False).strip():
            return rev
    raise RepositoryError(
        "no --base given and no default branch found (" + ", ".join(DEFAULT_BASES) + ")",
        hint="pass the branch or commit the change is based on, e.g. --base main",
    )


def first_parent(repo: str | os.PathLike[str], head: str) -> str | None:
    """The first parent of ``head``; None for a root commit (nothing to compare it with)."""
    r = open_repo(repo)
    sha = r.resolve(head)
    parents = r.run("rev-list", "--parents", "-n", "1", sha).decode().split()[1:]
    return parents[0] if parents else None


def newest_tag(repo: str | os.PathLike[str], head: str, pattern: str) -> str | None:
    """The newest tag matching the glob ``pattern`` that ``head`` contains."""
    gr = open_repo(repo)
    out = gr.run(
        "tag", "--merged", head, "--sort=-creatordate", "--list", pattern, check=False
    ).decode()
    tags = [t for t in out.splitlines() if t and fnmatch.fnmatchcase(t, pattern)]
    return tags[0] if tags else None


def commits_between(repo: str | os.PathLike[str], base: str, head: str) -> tuple[int, int]:
    """(non-merge commits of ``base`` that ``head`` lacks, of ``head`` that ``base`` lacks)."""
    gr = open_repo(repo)
    b, h = gr.resolve(base), gr.resolve(head)

    def count(*args: str) -> int:
        out = gr.run("rev-list", "--count", *args).decode().strip()
        return int(out) if out.isdigit() else 0

    return count("--no-merges", f"{h}..{b}"), count("--no-merges", f"{b}..{h}")
