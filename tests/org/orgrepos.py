"""Generated repositories for the organisation tests: realistic enough to mine, label and
train on, built with one ``git fast-import`` each (tens of milliseconds).

Each history mixes features (lines added to ``pkg/*.py``), documentation and fixes; a fix
rewrites lines that an earlier change added, mostly lines of a *risky* change (a large
one, or one by a newcomer), so SZZ labels those buggy and a model has something to learn.
Dates are days after 2020-01-01 (:func:`repobuilder.ts`), deterministic for a seed.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

from repobuilder import RepoBuilder, ts

AUTHORS = ["ann", "bob", "cid", "dan", "eve", "fay"]


def generated_history(path: Path, commits: int, seed: int, *, files: int = 6) -> Path:
    """A bare repository at ``path`` with ``commits`` commits on ``main``."""
    rnd = random.Random(seed)
    texts: dict[str, list[str]] = {}
    origin: dict[str, list[bool]] = {}  # per line: added by a risky change
    out: list[bytes] = []
    seen: set[str] = set()
    for k in range(commits):
        author = rnd.choices(AUTHORS, weights=[30, 20, 10, 5, 3, 2])[0]
        newcomer = author not in seen
        seen.add(author)
        day = k * 2.5 + rnd.random()
        touched: dict[str, str] = {}
        roll = rnd.random()
        if k < files or roll < 0.55 or not texts:
            name = f"pkg/m{k % files if k < files else rnd.randrange(files)}.py"
            n = rnd.choice([2, 3, 5, 8, 12, 20, 40, 60])
            risky = n >= 20 or newcomer or author in ("eve", "fay")
            lines = texts.setdefault(name, [])
            marks = origin.setdefault(name, [])
            at = rnd.randrange(len(lines) + 1)
            new = [f"v{k}_{j} = {j} + {rnd.randrange(100)}\n" for j in range(n)]
            lines[at:at] = new
            marks[at:at] = [risky] * n
            touched[name] = "".join(lines)
            msg = f"add feature {k} to {name}"
        elif roll < 0.80:
            name = rnd.choice(sorted(texts))
            lines, marks = texts[name], origin[name]
            risky_lines = [i for i, r in enumerate(marks) if r]
            pool = risky_lines if risky_lines and rnd.random() < 0.85 else range(len(lines))
            for i in rnd.sample(list(pool), min(2, len(pool))):
                lines[i] = f"fixed_{k}_{i} = {i}\n"
                marks[i] = False
            touched[name] = "".join(lines)
            msg = f"fix bug {k} in {name}"
        else:
            name = f"docs/page{k}.md"
            touched[name] = "text\n" * rnd.randrange(5, 30)
            msg = f"document {k}"
        who = f"{author} <{author}@example.com> {ts(day)} +0000"
        out.append(f"commit refs/heads/main\nauthor {who}\ncommitter {who}\n".encode())
        out.append(f"data {len(msg)}\n{msg}\n".encode())
        for p, content in touched.items():
            data = content.encode()
            out.append(f"M 100644 inline {p}\ndata {len(data)}\n".encode() + data + b"\n")
    out.append(b"done\n")
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    subprocess.run(
        ["git", "--git-dir", str(path), "fast-import", "--quiet", "--done"],
        input=b"".join(out),
        check=True,
    )
    return path


def small_work_tree(path: Path) -> Path:
    """A work tree made with :class:`RepoBuilder` (a few commits, one fix)."""
    b = RepoBuilder(path)
    b.commit({"app/core.py": "def f(x):\n    return x\n"}, author="ann", day=0, message="start")
    b.commit({"app/util.py": "u = 1\n" * 10}, author="bob", day=5, message="add util")
    b.commit({"app/core.py": "def f(x):\n    return x + 1\n"}, author="ann", day=9, message="fix f")
    return path
