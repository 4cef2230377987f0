"""Build real git repositories for tests: fixed authors and dates, explicit content.

    b = RepoBuilder(tmp_path / "r")
    c1 = b.commit({"a.py": "x = 1\n"}, author="ann", day=0, message="add a")
    c2 = b.commit({"a.py": None}, author="bob", day=3)          # delete
    c3 = b.commit({}, rename={"b.py": "c.py"}, day=4)            # git mv
    b.branch("feature", c1); b.checkout("feature"); ...; b.merge("main")

Dates are days after 2020-01-01T00:00:00Z (fractions allowed). Author e-mails are
``<name>@example.com``.
"""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import git

EPOCH = 1577836800  # 2020-01-01T00:00:00Z


def ts(day: float) -> int:
    return EPOCH + round(day * 86400)


class RepoBuilder:
    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.repo = git.Repo.init(path, initial_branch="main")
        with self.repo.config_writer() as cw:
            cw.set_value("user", "name", "builder")
            cw.set_value("user", "email", "builder@example.com")
            cw.set_value("commit", "gpgsign", "false")
            cw.set_value("core", "autocrlf", "false")

    def _env(self, author: str, day: float, email: str | None = None) -> dict[str, str]:
        date = f"{ts(day)} +0000"
        mail = email or f"{author}@example.com"
        return {
            "GIT_AUTHOR_NAME": author,
            "GIT_AUTHOR_EMAIL": mail,
            "GIT_AUTHOR_DATE": date,
            "GIT_COMMITTER_NAME": author,
            "GIT_COMMITTER_EMAIL": mail,
            "GIT_COMMITTER_DATE": date,
        }

    def write(self, rel: str, content: str | bytes | None) -> None:
        p = self.path / rel
        if content is None:
            self.repo.git.rm("-q", "--", rel)
            return
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
        self.repo.git.add("--", rel)

    def commit(
        self,
        files: dict[str, str | bytes | None] | None = None,
        *,
        author: str = "ann",
        email: str | None = None,
        day: float = 0,
        message: str = "change",
        rename: dict[str, str] | None = None,
        allow_empty: bool = False,
    ) -> str:
        for old, new in (rename or {}).items():
            (self.path / new).parent.mkdir(parents=True, exist_ok=True)
            self.repo.git.mv(old, new)
        for rel, content in (files or {}).items():
            self.write(rel, content)
        args = ["-q", "-m", message]
        if allow_empty:
            args.append("--allow-empty")
        self.repo.git.commit(*args, env=self._env(author, day, email))
        return self.repo.head.commit.hexsha

    def branch(self, name: str, at: str | None = None) -> None:
        self.repo.git.branch(name, at or "HEAD")

    def checkout(self, name: str) -> None:
        self.repo.git.checkout("-q", name)

    def merge(
        self, other: str, *, author: str = "ann", day: float = 0, message: str | None = None
    ) -> str:
        self.repo.git.merge(
            "--no-ff", "-q", "-m", message or f"Merge {other}", other, env=self._env(author, day)
        )
        return self.repo.head.commit.hexsha

    def head(self) -> str:
        return self.repo.head.commit.hexsha

    def run(self, *args: str) -> str:
        return self.repo.git.execute(["git", *args], env={**os.environ})


def fix_history(path: Path, commits: int, *, files: int = 2, lines: int = 300) -> None:
    """A bare repository of ``commits`` commits, each after the first a fix that changes
    two lines of one of ``files`` Python files: SZZ blames every one of them, each blame
    walking a long history (for runs long enough to interrupt). One ``git fast-import``."""
    rnd = random.Random(1)
    texts = {f"pkg/m{i}.py": [f"v{j} = {j}\n" for j in range(lines)] for i in range(files)}
    out: list[bytes] = []
    for k in range(commits):
        touched = list(texts)
        if k:
            touched = [f"pkg/m{k % files}.py"]
            for j in rnd.sample(range(lines), 2):
                texts[touched[0]][j] = f"v{j} = {k}\n"
        msg = f"fix bug {k}" if k else "start"
        who = f"ann <ann@example.com> {ts(k / 24)} +0000"
        out.append(f"commit refs/heads/main\nauthor {who}\ncommitter {who}\n".encode())
        out.append(f"data {len(msg)}\n{msg}\n".encode())
        for p in touched:
            data = "".join(texts[p]).encode()
            out.append(f"M 100644 inline {p}\ndata {len(data)}\n".encode() + data + b"\n")
    out.append(b"done\n")
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    subprocess.run(
        ["git", "--git-dir", str(path), "fast-import", "--quiet", "--done"],
        input=b"".join(out),
        check=True,
    )
