"""Property test: on generated histories, mined values agree with git and with the definitions."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffrisk.config import MineConfig
from diffrisk.mining.mine import mine
from repobuilder import RepoBuilder

PATHS = ["a.py", "src/b.py", "src/c/d.txt", "docs/e.md", "bin.dat"]
AUTHORS = ["ann", "bob", "cy"]

content = st.one_of(
    st.none(),
    st.lists(st.sampled_from(["x", "y", "z", "1", "2", ""]), min_size=0, max_size=6).map(
        lambda lines: "\n".join(lines) + ("\n" if lines and len(lines) % 2 else "")
    ),
)
step = st.tuples(
    st.sampled_from(AUTHORS),
    st.dictionaries(st.sampled_from(PATHS), content, min_size=1, max_size=3),
)


def _count(text: bytes) -> int:
    return text.count(b"\n") + (1 if text and not text.endswith(b"\n") else 0)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(step, min_size=1, max_size=7))
def test_generated_histories(steps) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        b = RepoBuilder(Path(tmp) / "r")
        present: set[str] = set()
        shas: list[tuple[str, str]] = []
        for day, (author, ops) in enumerate(steps):
            files: dict[str, str | bytes | None] = {}
            for path, text in ops.items():
                if text is None:
                    if path in present:
                        files[path] = None
                        present.discard(path)
                elif path == "bin.dat":
                    files[path] = b"\x00\x01" + text.encode()
                    present.add(path)
                else:
                    files[path] = text
                    present.add(path)
            shas.append((b.commit(files, author=author, day=day * 0.5, allow_empty=True), author))
        mine(b.path, Path(tmp) / "d", config=MineConfig(code_metrics=False))
        df = pd.read_parquet(Path(tmp) / "d" / "changes.parquet").set_index("sha")
        assert len(df) == len(shas)

        # la / ld / nf exactly as git log --numstat reports them
        numstat: dict[str, list[int]] = {}
        cur = ""
        for line in b.run("log", "--numstat", "--format=@%H").splitlines():
            if line.startswith("@"):
                cur = line[1:]
                numstat[cur] = [0, 0, 0]
            elif line.strip():
                a, d, _ = line.split("\t", 2)
                numstat[cur][0] += 0 if a == "-" else int(a)
                numstat[cur][1] += 0 if d == "-" else int(d)
                numstat[cur][2] += 1
        seen_by: dict[str, int] = {}
        authors_before: set[str] = set()
        for i, (sha, author) in enumerate(shas):
            row = df.loc[sha]
            assert [row["la"], row["ld"], row["nf"]] == numstat[sha]
            assert 0.0 <= row["entropy"] <= 1.0 + 1e-9
            # linear history: EXP is the author's count of earlier commits, the rest is bounded
            assert row["exp"] == seen_by.get(author, 0)
            assert 0 <= row["sexp"] <= row["exp"] and 0 <= row["rexp"] <= row["exp"] + 1e-9
            assert (
                0 <= row["nuc"] <= i and 0 <= row["ndev"] <= len(authors_before) and row["age"] >= 0
            )
            # LT: line counts of the modified files in the parent, read from git itself, with
            # git's rename detection (a file renamed into a binary one counts 0, as any binary)
            if i > 0:
                parent = shas[i - 1][0]
                fields = b.run("diff", "--numstat", "-M", "-z", parent, sha).split("\0")
                lt = 0
                while len(fields) > 1:
                    a, _, path = fields.pop(0).split("\t", 2)
                    if not path:  # a rename: the old path, then the new one
                        path = fields.pop(0)
                        fields.pop(0)
                    if a == "-":
                        continue
                    exists = b.run("ls-tree", parent, "--", path).strip()
                    if exists:
                        lt += _count(
                            b.repo.git.show(
                                f"{parent}:{path}",
                                stdout_as_string=False,
                                strip_newline_in_stdout=False,
                            )
                        )
                assert row["lt"] == lt, (sha, row["lt"], lt)
            seen_by[author] = seen_by.get(author, 0) + 1
            authors_before.add(author)
