"""Where the files that decide how a change is judged are read from.

A pull request's checkout is the PR author's: its ``.diffrisk.toml``, ``pyproject.toml``
and report templates must not decide its own verdict. A :class:`SettingsSource` reads
them from one commit (the PR's base, which is trusted) or, without one, from the work
tree; either way only regular files inside the repository, never a symbolic link.
:func:`diffrisk.config.pull_request_notes` says what a change would alter of those files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from diffrisk.errors import ConfigError
from diffrisk.git.repo import GitRepo, open_repo


def _relative(rel: str | os.PathLike[str]) -> str:
    parts = PurePosixPath(Path(rel).as_posix()).parts
    if not parts or any(p in ("..", "") for p in parts) or PurePosixPath(*parts).is_absolute():
        raise ConfigError(
            f"{rel} is not a path inside the repository",
            hint="give a path relative to the repository root, without '..'",
        )
    return "/".join(p for p in parts if p != ".")


@dataclass(frozen=True)
class SettingsSource:
    """The repository at ``root`` as of commit ``rev`` (a full sha), or its work tree
    when ``rev`` is None."""

    root: Path
    rev: str | None = None
    repo: GitRepo | None = field(default=None, compare=False, repr=False)  # opened once

    @classmethod
    def of(cls, repo: str | os.PathLike[str], rev: str | None = None) -> SettingsSource:
        """``rev`` resolved to a sha (a clear error when it does not exist)."""
        root = Path(repo)
        if rev is None:
            return cls(root, None)
        opened = open_repo(root, allow_shallow=True)
        return cls(root, opened.resolve(rev), opened)

    def describe(self, rel: str) -> str:
        return f"{rel} at {self.rev[:12]}" if self.rev else str(self.root / rel)

    def inside(self, path: str | os.PathLike[str]) -> str | None:
        """``path`` (absolute, or relative to the current directory) relative to the
        repository root, or None when it lies outside."""
        # resolved, both: a path spelled through a symbolic link (macOS's /tmp, a
        # runner's workspace link) is still inside, and read from the trusted commit
        try:
            rel = Path(path).resolve().relative_to(self.root.resolve())
        except ValueError:
            return None
        return rel.as_posix()

    def read(self, rel: str | os.PathLike[str]) -> bytes | None:
        """The file's bytes, or None when it does not exist. A symbolic link, a submodule
        or a directory is an error: settings are regular files of the repository."""
        name = _relative(rel)
        return self._read_rev(name) if self.rev else self._read_work_tree(name)

    def _read_work_tree(self, name: str) -> bytes | None:
        root = self.root.resolve()
        path = root / name
        if not os.path.lexists(path):
            return None
        if path.resolve() != path or not path.is_file():
            raise ConfigError(
                f"{self.root / name} is a symbolic link or not a regular file",
                hint="diffrisk reads its settings and templates only from regular files "
                "inside the repository",
            )
        return path.read_bytes()

    def _read_rev(self, name: str) -> bytes | None:
        repo = self.repo or open_repo(self.root, allow_shallow=True)
        out = repo.run("ls-tree", "-z", "--full-tree", str(self.rev), "--", name)
        entry = next((e for e in out.split(b"\0") if e), None)
        if entry is None:
            return None
        meta, _tab, found = entry.partition(b"\t")
        mode, kind, oid = meta.decode().split()
        if found.decode("utf-8", "surrogateescape") != name:
            return None
        if kind != "blob" or mode not in ("100644", "100755"):
            raise ConfigError(
                f"{self.describe(name)} is a symbolic link or not a regular file",
                hint="diffrisk reads its settings and templates only from regular files "
                "inside the repository",
            )
        return repo.run("cat-file", "blob", oid)


def changed_paths(repo: str | os.PathLike[str], base: str, head: str) -> set[str]:
    """Paths the change ``base...head`` (since the merge base) adds, modifies or deletes."""
    r = open_repo(repo, allow_shallow=True)
    out = r.run("diff", "--name-only", "-z", "--no-renames", f"{base}...{head}", check=False)
    return {p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p}
