"""Generate a synthetic git history of realistic shape, for the mining benchmark.

    python bench/gen_history.py OUT --commits 100000 [--seed 1]

Creates a bare repository OUT with ``--commits`` commits on ``main`` built with one
``git fast-import`` stream (seconds per 10,000 commits, no work tree). The shape imitates
a Python project: a few dozen directories, a file population that grows to a few
thousand files, 10-50 authors with a skewed share of the commits, each commit touching
1-6 files (sometimes many more), functions added, removed and edited inside files (the
files always stay valid Python, so radon has real parsing to do), occasional file
renames and deletions, fix-like commit messages, and short topic branches merged back
with merge commits (about one commit in twenty is a merge).

The history is deterministic for a given ``--seed`` and ``--commits``.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

WORDS = [
    "node",
    "item",
    "config",
    "path",
    "value",
    "result",
    "cache",
    "session",
    "request",
    "token",
    "parser",
    "plugin",
    "record",
    "entry",
    "report",
    "option",
    "fixture",
    "marker",
    "module",
    "buffer",
    "stream",
    "handler",
    "context",
    "state",
    "index",
    "score",
    "level",
    "count",
    "name",
    "data",
    "error",
    "source",
    "target",
]
VERBS = [
    "get",
    "set",
    "load",
    "parse",
    "build",
    "check",
    "apply",
    "update",
    "make",
    "find",
    "read",
    "write",
    "run",
    "render",
]
SUBJECTS = (
    "add {w} support to {m}",
    "refactor {m}: split {w} handling",
    "update {w} docs",
    "improve {w} performance in {m}",
    "remove unused {w} code",
    "rename {w} helper in {m}",
)
FIX_SUBJECTS = (
    "fix {w} crash in {m}",
    "Fix bug when {w} is empty",
    "fix regression in {m} {w} handling (#{n})",
)
START_TIME = 1_300_000_000  # 2011-03-13


@dataclass
class PyFile:
    """A Python file as a list of top-level function blocks (each valid on its own)."""

    blocks: list[str] = field(default_factory=list)

    def text(self) -> bytes:
        return ("".join(self.blocks)).encode()


class Generator:
    def __init__(self, commits: int, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.commits = commits
        n_authors = self.rnd.randint(10, 50)
        self.authors = [(f"Dev {i}", f"dev{i}@example.org") for i in range(n_authors)]
        # Zipf-like weights: a few authors make most of the commits
        self.author_weights = [1.0 / (i + 1) ** 1.1 for i in range(n_authors)]
        n_dirs = self.rnd.randint(24, 40)
        self.dirs = [
            f"src/pkg/{WORDS[i % len(WORDS)]}{i // len(WORDS) or ''}" for i in range(n_dirs - 4)
        ]
        self.dirs += ["tests", "tests/unit", "docs", "scripts"]
        self.files: dict[str, PyFile] = {}
        self.paths: list[str] = []  # for O(1) random choice
        self.fn_counter = 0
        self.file_counter = 0
        self.mark = 0
        self.time = START_TIME
        self.blob_mark_of: dict[str, int] = {}  # path -> mark of its latest blob

    # -- content ----------------------------------------------------------------------

    def block(self) -> str:
        r = self.rnd
        self.fn_counter += 1
        name = f"{r.choice(VERBS)}_{r.choice(WORDS)}_{self.fn_counter}"
        arg = r.choice(WORDS)
        lines = [f"def {name}({arg}, {r.choice(WORDS)}=None):\n"]
        if r.random() < 0.5:
            lines.append(
                f'    """{r.choice(VERBS).capitalize()} the {r.choice(WORDS)} of {arg}."""\n'
            )
        for _ in range(r.randint(1, 12)):
            kind = r.random()
            if kind < 0.25:
                lines.append(f"    if {arg} is None:\n        {arg} = {r.randint(0, 99)}\n")
            elif kind < 0.35:
                lines.append(
                    f"    for {r.choice(WORDS)}_ in range({r.randint(1, 9)}):\n        {arg} += 1\n"
                )
            elif kind < 0.45:
                lines.append(
                    f"    # {r.choice(VERBS)} {r.choice(WORDS)} before {r.choice(WORDS)}\n"
                )
            else:
                lines.append(f"    {arg} = {arg} + {r.randint(0, 999)}\n")
        lines.append(f"    return {arg}\n\n\n")
        return "".join(lines)

    def new_file(self) -> tuple[str, PyFile]:
        self.file_counter += 1
        d = self.rnd.choice(self.dirs)
        stem = f"{self.rnd.choice(WORDS)}_{self.file_counter}"
        prefix = "test_" if d.startswith("tests") else ""
        path = f"{d}/{prefix}{stem}.py"
        f = PyFile(
            [f'"""{stem} module."""\n\n\n'] + [self.block() for _ in range(self.rnd.randint(2, 12))]
        )
        return path, f

    def edit(self, f: PyFile) -> None:
        r = self.rnd
        n = len(f.blocks)
        op = r.random()
        if op < 0.45 or n < 4:  # add functions
            at = r.randint(1, max(1, n))
            for _ in range(r.randint(1, 3)):
                f.blocks.insert(at, self.block())
        if op >= 0.3 and n > 1:  # edit a function: replace one of its lines
            i = r.randint(1, len(f.blocks) - 1)
            lines = f.blocks[i].split("\n")
            if len(lines) > 4:
                j = r.randint(1, len(lines) - 4)
                indent = lines[j][: len(lines[j]) - len(lines[j].lstrip())] or "    "
                arg = lines[0].split("(")[1].split(",")[0]
                lines[j] = f"{indent}{arg} = {arg} * {r.randint(2, 99)}"
                f.blocks[i] = "\n".join(lines)
        if op >= 0.8 and len(f.blocks) > 6:  # remove a function
            del f.blocks[r.randint(1, len(f.blocks) - 1)]
        if len(f.blocks) > 40:  # keep files from growing forever
            del f.blocks[1 : 1 + r.randint(5, 15)]

    # -- stream -----------------------------------------------------------------------

    def blob(self, out: list[bytes], data: bytes) -> int:
        self.mark += 1
        out.append(b"blob\nmark :%d\ndata %d\n%s\n" % (self.mark, len(data), data))
        return self.mark

    def commit_header(self, out: list[bytes], ref: str, subject: str) -> int:
        self.mark += 1
        name, email = self.rnd.choices(self.authors, self.author_weights)[0]
        self.time += self.rnd.randint(60, 30_000)
        msg = subject.encode() + b"\n"
        out.append(
            b"commit %s\nmark :%d\nauthor %s <%s> %d +0000\ncommitter %s <%s> %d +0000\ndata %d\n%s"
            % (ref.encode(), self.mark, name.encode(), email.encode(), self.time,
               name.encode(), email.encode(), self.time, len(msg), msg)
        )  # fmt: skip
        return self.mark

    def subject(self) -> str:
        r = self.rnd
        tmpl = r.choice(FIX_SUBJECTS) if r.random() < 0.2 else r.choice(SUBJECTS)
        return tmpl.format(
            w=r.choice(WORDS), m=r.choice(self.dirs).rsplit("/", 1)[-1], n=r.randint(1, 9999)
        )

    def pick_paths(self, k: int, exclude_dir: str | None) -> list[str]:
        picked: set[str] = set()
        for _ in range(k * 3):
            if len(picked) >= k or not self.paths:
                break
            p = self.rnd.choice(self.paths)
            if exclude_dir is None or not p.startswith(exclude_dir + "/"):
                picked.add(p)
        return sorted(picked)

    def change(
        self, out: list[bytes], *, topic_dir: str | None, in_topic: bool
    ) -> tuple[list[bytes], list[str]]:
        """Blobs (into ``out``), then the file commands of one ordinary commit and the paths it wrote."""
        r = self.rnd
        cmds: list[bytes] = []
        written: list[str] = []
        if in_topic:
            assert topic_dir is not None
            pool = [p for p in self.pick_paths(40, None) if p.startswith(topic_dir + "/")][:3]
            if not pool or r.random() < 0.2:
                path, f = self.new_file()
                path = f"{topic_dir}/{path.rsplit('/', 1)[1]}"
                self.add_path(path, f)
                pool = [path]
            for p in pool:
                self.edit(self.files[p])
                written.append(p)
        else:
            k = r.choice((1, 1, 1, 2, 2, 3, 4, 6)) if r.random() > 0.01 else r.randint(20, 80)
            picked = self.pick_paths(k, topic_dir)  # before the new file: it is only added
            if r.random() < 0.15 or len(self.paths) < 5:
                path, f = self.new_file()
                while topic_dir and path.startswith(topic_dir + "/"):
                    path, f = self.new_file()
                self.add_path(path, f)
                written.append(path)
            for p in picked:
                roll = r.random()
                if roll < 0.01 and len(self.paths) > 50:  # delete
                    self.remove_path(p)
                    cmds.append(b"D %s\n" % p.encode())
                    continue
                if roll < 0.03:  # rename (git sees it by content), sometimes with an edit
                    new = f"{r.choice(self.dirs)}/{r.choice(WORDS)}_{p.rsplit('_', 1)[-1]}"
                    if new in self.files or (topic_dir and new.startswith(topic_dir + "/")):
                        continue
                    f = self.files[p]
                    self.remove_path(p)
                    self.add_path(new, f)
                    cmds.append(b"R %s %s\n" % (p.encode(), new.encode()))
                    p = new
                    if r.random() < 0.5:
                        continue
                self.edit(self.files[p])
                written.append(p)
        marks = [(p, self.blob(out, self.files[p].text())) for p in dict.fromkeys(written)]
        cmds += [b"M 100644 :%d %s\n" % (m, p.encode()) for p, m in marks]
        self.blob_mark_of.update(marks)
        return cmds, written

    def add_path(self, path: str, f: PyFile) -> None:
        if path not in self.files:
            self.paths.append(path)
        self.files[path] = f

    def remove_path(self, path: str) -> None:
        del self.files[path]
        i = self.paths.index(path)
        self.paths[i] = self.paths[-1]
        self.paths.pop()

    def run(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None
        r = self.rnd
        main_tip = 0
        topic: dict | None = None  # {"dir", "tip", "left", "paths"}
        made = 0
        out: list[bytes] = []
        while made < self.commits:
            if topic is None and main_tip and r.random() < 0.05 and made + 3 < self.commits:
                topic = {
                    "dir": r.choice(self.dirs),
                    "tip": main_tip,
                    "left": r.randint(1, 6),
                    "paths": set(),
                }
            if topic is not None and topic["left"] == 0:  # merge it back
                mark = self.commit_header(out, "refs/heads/main", f"Merge branch 'topic-{made}'")
                out.append(b"from :%d\nmerge :%d\n" % (main_tip, topic["tip"]))
                for p in sorted(topic["paths"]):
                    if p in self.files:
                        out.append(b"M 100644 :%d %s\n" % (self.blob_mark_of[p], p.encode()))
                out.append(b"\n")
                main_tip, topic = mark, None
                made += 1
                continue
            in_topic = topic is not None and r.random() < 0.5
            cmds, written = self.change(
                out, topic_dir=topic["dir"] if topic else None, in_topic=in_topic
            )
            ref = "refs/heads/topic" if in_topic else "refs/heads/main"
            mark = self.commit_header(out, ref, self.subject())
            parent = topic["tip"] if in_topic else main_tip  # type: ignore[index]
            if parent:
                out.append(b"from :%d\n" % parent)
            out.extend(cmds)
            out.append(b"\n")
            if in_topic:
                topic["tip"] = mark  # type: ignore[index]
                topic["left"] -= 1  # type: ignore[index]
                topic["paths"].update(written)  # type: ignore[index]
            else:
                main_tip = mark
            made += 1
            if len(out) > 2000:
                proc.stdin.write(b"".join(out))
                out.clear()
        out.append(b"reset refs/heads/main\nfrom :%d\n\n" % main_tip)
        proc.stdin.write(b"".join(out))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="directory of the new bare repository (must not exist)")
    ap.add_argument(
        "--commits", type=int, default=100_000, help="number of commits (merges included)"
    )
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.out.exists():
        print(f"error: {a.out} exists; give a new directory", file=sys.stderr)
        return 2
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(a.out)], check=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        ["git", "--git-dir", str(a.out), "fast-import", "--quiet", "--done"],
        stdin=subprocess.PIPE,
    )
    gen = Generator(a.commits, a.seed)
    gen.run(proc)
    assert proc.stdin is not None
    proc.stdin.write(b"done\n")
    proc.stdin.close()
    if proc.wait() != 0:
        print("error: git fast-import failed", file=sys.stderr)
        return 1
    subprocess.run(
        ["git", "--git-dir", str(a.out), "symbolic-ref", "HEAD", "refs/heads/main"], check=True
    )
    subprocess.run(
        ["git", "--git-dir", str(a.out), "update-ref", "-d", "refs/heads/topic"], check=False
    )
    n = subprocess.run(
        ["git", "--git-dir", str(a.out), "rev-list", "--count", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(
        f"{a.out}: {n} commits, {len(gen.files)} files in {len(gen.dirs)} directories, "
        f"{len(gen.authors)} authors ({time.perf_counter() - t0:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
