"""Added lines of code (``la_code``): counted by hand on a real repository."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from diffrisk.config import LabelConfig, MineConfig
from diffrisk.features.codelines import (
    FileCode,
    classify_added,
    count_added_code,
    diff_code_lines,
    endings_in_tree,
    parse_added_code,
)
from diffrisk.features.source import with_code_lines
from diffrisk.git.repo import open_repo
from diffrisk.mining.mine import mine
from repobuilder import RepoBuilder

MOD = '''"""Module docstring."""
# a comment

import os


def f(x):
    """Docstring
    spanning lines.
    """
    return x + 1  # a trailing comment: code
'''  # code lines: import, def, return -> 3

C_FILE = """/* header
 * comment */
int add(int a, int b) {
    // add
    return a + b; /* sum */
}
"""  # code lines: int add, return, } -> 3

MOD2 = MOD.replace("    return x + 1", "    # why\n    y = 2\n\n    return x + y")
# against MOD: adds "# why", "y = 2", "", "return x + y" (the old return is replaced) -> 2


@pytest.fixture
def repo(builder: RepoBuilder) -> tuple[RepoBuilder, dict[str, str]]:
    b = builder
    c = {}
    c["add"] = b.commit(
        {
            "pkg/mod.py": MOD,
            "src/util.c": C_FILE,
            "README.md": "one\ntwo\n",
            "tests/test_mod.py": "def test():\n    assert True\n",
            "pkg/café data.py": "X = 1\n# c\n",
        },
        day=0,
        message="initial",
    )
    c["edit"] = b.commit({"pkg/mod.py": MOD2}, day=1, message="edit")
    c["delete"] = b.commit({"src/util.c": None}, day=2, message="drop the C file")
    c["rename"] = b.commit({}, rename={"pkg/mod.py": "pkg/mod3.py"}, day=3, message="rename")
    c["docs"] = b.commit({"README.md": "one\ntwo\nthree\n"}, day=4, message="docs only")
    return b, c


def test_mined_la_code_by_hand(repo, tmp_path: Path) -> None:
    b, c = repo
    data = tmp_path / "d"
    mine(b.path, data, config=MineConfig(code_metrics=False))
    files = pd.read_parquet(data / "files.parquet")
    got = {(r.sha, r.path): r.la_code for r in files.itertuples()}
    assert got[(c["add"], "pkg/mod.py")] == 3
    control = {(r.sha, r.path): r.la_control for r in files.itertuples()}
    assert control[(c["add"], "pkg/mod.py")] == 1  # return
    assert control[(c["add"], "src/util.c")] == 1  # return, not the closing brace
    assert control[(c["add"], "tests/test_mod.py")] == 1  # assert
    assert control[(c["add"], "pkg/café data.py")] == 0
    assert control[(c["edit"], "pkg/mod.py")] == 1
    assert math.isnan(control[(c["add"], "README.md")])
    assert got[(c["add"], "src/util.c")] == 3
    assert got[(c["add"], "tests/test_mod.py")] == 2
    assert got[(c["add"], "pkg/café data.py")] == 1  # quoted path with a space: same key
    assert math.isnan(got[(c["add"], "README.md")])  # not a source extension
    assert got[(c["edit"], "pkg/mod.py")] == 2
    assert got[(c["delete"], "src/util.c")] == 0
    assert got[(c["rename"], "pkg/mod3.py")] == 0
    assert math.isnan(got[(c["docs"], "README.md")])

    changes = pd.read_parquet(data / "changes.parquet")
    per = with_code_lines(changes, files, LabelConfig()).set_index("sha")["la_code"]
    assert per[c["add"]] == 3 + 3 + 1  # tests/ is not source for the label stage
    assert per[c["edit"]] == 2
    assert per[c["docs"]] == 0  # no source file: no code added
    ctl = with_code_lines(changes, files, LabelConfig()).set_index("sha")["la_control"]
    assert ctl[c["add"]] == 2 and ctl[c["edit"]] == 1 and ctl[c["docs"]] == 0


def test_a_commit_git_cannot_diff_gets_no_count(repo, tmp_path: Path) -> None:
    b, c = repo
    # drop the blob the "edit" commit adds, as in an incomplete mirror
    blob = b.run("rev-parse", f"{c['edit']}:pkg/mod.py")
    obj = Path(b.path) / ".git" / "objects" / blob[:2] / blob[2:]
    obj.unlink()
    data = tmp_path / "d"
    mine(b.path, data, config=MineConfig(code_metrics=False))
    files = pd.read_parquet(data / "files.parquet")
    got = {(r.sha, r.path): r.la_code for r in files.itertuples()}
    assert math.isnan(got[(c["edit"], "pkg/mod.py")])
    assert got[(c["add"], "src/util.c")] == 3  # the other commits are still counted
    changes = pd.read_parquet(data / "changes.parquet")
    per = with_code_lines(changes, files, LabelConfig()).set_index("sha")["la_code"]
    assert math.isnan(per[c["edit"]])


def test_diff_of_a_range(repo) -> None:
    b, c = repo
    counts, ranges = diff_code_lines(open_repo(b.path), c["add"], c["rename"], [".py", ".c"])
    assert counts == {"pkg/mod3.py": (2, 1)}  # y = 2; return x + y (control flow)
    assert ranges == {"pkg/mod3.py": (11, 14)}  # line 11 becomes "# why", "y = 2", "", return
    # README.md (not a source ending) gets a range for annotations, but no count
    counts, ranges = diff_code_lines(open_repo(b.path), c["rename"], c["docs"], [".py", ".c"])
    assert (counts, ranges) == ({}, {"README.md": (3, 3)})
    assert diff_code_lines(open_repo(b.path), c["add"], "no-such-rev", [".py"]) == (None, {})


def test_line_classification() -> None:
    assert count_added_code("a.py", [b"", b"   ", b"# c", b"x = 1", b"  #: doc comment"]) == 1
    # a docstring opened and closed on the added lines; r-prefixed; one-line
    assert count_added_code("a.py", [b'r"""', b"text", b'"""', b"y = 2", b"'''one'''"]) == 1
    # a string assigned to a name is code, also its continuation lines
    assert count_added_code("a.py", [b'x = """', b"text", b'"""']) == 3
    # "#" is not a comment in C; "//" is not one in Python
    assert count_added_code("a.c", [b"#include <x.h>", b"// c", b"/* a", b"b */ int x;"]) == 2
    assert count_added_code("a.py", [b"// not a comment"]) == 1
    assert count_added_code("a.md", [b"# title", b"text"]) == 2  # no comment syntax known
    # the middle of a Javadoc block whose opening line the hunk does not show
    assert count_added_code("A.java", [b" * @param x the x", b" *", b" */", b"*p = 1;"]) == 1


@pytest.mark.parametrize(
    ("path", "line", "control"),
    [
        ("a.py", b"if x:", True),
        ("a.py", b"elif x > 1:", True),
        ("a.c", b"} else if (x) {", True),
        ("a.c", b"for (i = 0; i < n; i++) {", True),
        ("a.py", b"return", True),
        ("a.py", b"raise ValueError(x)", True),
        ("a.py", b"with open(f) as fh:", True),
        ("a.py", b"async with lock:", True),
        ("a.py", b"except KeyError:", True),
        ("a.py", b"match command:", True),
        ("a.py", b"match = re.match(p, s)", False),  # a name, not the keyword
        ("a.py", b"case.value = 1", False),
        ("a.py", b"returned = 1", False),
        ("a.py", b"if_x = 2", False),
        ("a.py", b'print("if")', False),
        ("a.c", b"}", False),
        ("a.py", b"else: x = 1", True),
        ("a.py", b"finally: y = 2", True),
        ("a.py", b"match(p, s)", False),
        ("a.py", b"match: re.Match = m", False),
        ("a.py", b"case 1:", True),
        ("a.go", b"select {", True),
        ("a.go", b"defer f.Close()", True),
        ("a.go", b"default:", True),
        ("a.py", b"next(it)", False),  # a Ruby and Perl keyword, a Python builtin
        ("a.rb", b"next if x.nil?", True),
        ("a.rb", b"when :a then 1", True),
        ("a.rb", b"rescue StandardError => e", True),
        ("a.py", b"switch(x)", False),  # no switch in Python
        ("A.java", b"switch (x) {", True),
        ("A.java", b"case FOO:", True),
        ("A.java", b"} catch (IOException e) {", True),
        ("A.java", b"with(x);", False),  # not a Java keyword
        ("a.ts", b"default:", True),
        ("a.ts", b"yield* inner();", True),
        ("a.rs", b"loop {", True),
        ("a.rs", b"match x {", True),
        ("a.kt", b"when (x) {", True),
        ("a.swift", b"guard let y = x else { return }", True),
        ("a.scala", b"case Some(x) => x", True),
        ("a.scala", b"case class Point(x: Int)", False),  # a declaration
        ("a.lua", b"elseif x then", True),
        ("a.lua", b"repeat", True),
        ("a.sh", b"exit 1", True),
        ("a.php", b"} elseif ($x) {", True),
        ("a.php", b"foreach ($xs as $x) {", True),
    ],
)
def test_control_flow_lines(path: str, line: bytes, control: bool) -> None:
    assert classify_added(path, [line]) == (1, int(control))


def test_reindented_and_moved_lines_are_not_counted() -> None:
    sha = "b" * 40
    data = (
        b"\x01" + sha.encode() + b"\n\ndiff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n"
        # two lines wrapped in a new "if": only the "if" line is new to blame -w
        b"@@ -3,2 +3,3 @@\n-x = f(a)\n-return x\n+if a:\n+    x = f(a)\n+    return x\n"
        # a line moved up from further down the file (-M keeps its old commit)
        b"@@ -1,0 +2,1 @@\n+y = g(b)\n"
        b"@@ -9,1 +10,0 @@\n-y = g(b)\n"
        # a deleted line matches only once: the second copy is new
        b"@@ -20,0 +21,2 @@\n+z = 1\n+z = 1\n@@ -30,1 +31,0 @@\n-z = 1\n"
    )
    assert parse_added_code(data) == {sha: {"m.py": (2, 1)}}  # "if a:" and one "z = 1"


def test_parse_resets_docstring_state_per_hunk() -> None:
    data = (
        b"\x01" + b"a" * 40 + b"\n\ndiff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n"
        b'@@ -1,0 +2,1 @@\n+    """Opens a docstring whose end is not shown\n'
        b"@@ -9,0 +11,2 @@\n+    x = 1\n+    return x\n"
    )
    assert parse_added_code(data) == {"a" * 40: {"m.py": (2, 1)}}


def test_code_lines_can_be_switched_off(repo, tmp_path: Path) -> None:
    b, c = repo
    data = tmp_path / "d"
    mine(b.path, data, config=MineConfig(code_metrics=False, code_lines=False))
    files = pd.read_parquet(data / "files.parquet")
    assert files["la_code"].isna().all()
    changes = pd.read_parquet(data / "changes.parquet")
    per = with_code_lines(changes, files, LabelConfig()).set_index("sha")["la_code"]
    assert math.isnan(per[c["add"]]) and per[c["docs"]] == 0


def test_endings_the_tree_uses(repo) -> None:
    b, c = repo
    r = open_repo(b.path)
    assert endings_in_tree(r, c["add"], [".py", ".C", ".rb"]) == [".c", ".py"]
    assert endings_in_tree(r, c["rename"], [".py", ".c"]) == [".py"]  # util.c is gone


def test_a_rename_from_a_non_source_name_is_not_all_new_code(
    builder: RepoBuilder, tmp_path: Path
) -> None:
    # the source-only diff cannot see the old name "tool" and shows tool.sh as added;
    # the history sees a rename that adds nothing
    b = builder
    b.commit({"tool": "".join(f"echo {i}\n" for i in range(30))}, day=0, message="add tool")
    renamed = b.commit({}, rename={"tool": "tool.sh"}, day=1, message="rename")
    data = tmp_path / "d"
    mine(b.path, data, config=MineConfig(code_metrics=False))
    files = pd.read_parquet(data / "files.parquet")
    row = files[(files["sha"] == renamed) & (files["path"] == "tool.sh")].iloc[0]
    assert (row["status"], row["la"], row["la_code"], row["la_control"]) == ("R", 0, 0, 0)


def test_first_added_ranges_ignore_content_that_looks_like_a_header(builder: RepoBuilder) -> None:
    b = builder
    base = b.commit({"a.py": "".join(f"a{i} = {i}\n" for i in range(9)), "z.py": "z = 0\n"}, day=0)
    lines = [f"a{i} = {i}\n" for i in range(9)]
    lines.insert(4, "++ not a header\n")  # new line 5: the patch shows "+++ not a header"
    lines.insert(8, "b = 2\n")
    head = b.commit({"a.py": "".join(lines), "z.py": "z = 0\nz = 1\n"}, day=1)
    ranges = diff_code_lines(open_repo(b.path), base, head, [".py"])[1]
    assert ranges == {"a.py": (5, 5), "z.py": (2, 2)}


def test_tokens_come_from_the_counted_lines_of_code() -> None:
    sha = "c" * 40
    data = (
        b"\x01" + sha.encode() + b"\n\ndiff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n"
        # a comment, a docstring and a moved line add no tokens; the new lines do
        b"@@ -3,1 +3,4 @@\n-old_call(a)\n+# lock the door\n+'''Docstring words.'''\n"
        b"+if retry_count >= limit:\n+    old_call(a)\n"
        b"@@ -9,0 +12,1 @@\n+    raise Busy(self.name)\n"
    )
    got = parse_added_code(data)[sha]["m.py"]
    assert got == (2, 2)  # the "if" and the "raise"; the moved call is not new
    assert got.tokens.split() == sorted(
        ["if", "retry_count", ">=", "limit", ":", "raise", "Busy", "(", "self", ".", "name", ")"]
    )


def test_mined_tokens_per_file_and_per_change(builder: RepoBuilder, tmp_path: Path) -> None:
    from diffrisk.features.source import with_code_lines

    b = builder
    sha = b.commit(
        {
            "pkg/a.py": "def f(x):\n    return x.lock()\n",
            "pkg/b.py": "y = retry(3)\n",
            "docs/c.py": "z = ignored\n",  # not source: docs/ is excluded
            "README.md": "lock retry words\n",
        },
        day=0,
    )
    data = tmp_path / "d"
    mine(b.path, data, config=MineConfig(code_metrics=False))
    files = pd.read_parquet(data / "files.parquet").set_index("path")
    assert files.loc["pkg/a.py", "code_tokens"] == "( ) . : def f lock return x"
    assert pd.isna(files.loc["README.md", "code_tokens"])  # not a source ending
    changes = pd.read_parquet(data / "changes.parquet")
    row = with_code_lines(changes, files.reset_index(), LabelConfig()).set_index("sha").loc[sha]
    assert row["code_tokens"].split() == sorted(
        {"(", ")", ".", ":", "def", "f", "lock", "return", "x", "=", "retry", "y"}
    )


def test_a_file_keeps_its_first_thousand_tokens() -> None:
    from diffrisk.features.codelines import MAX_TOKENS

    got = classify_added("a.py", [f"name_{i} = {i}".encode() for i in range(1500)])
    kept = got.tokens.split()
    assert len(kept) == MAX_TOKENS and kept == sorted(kept)
    # the first names of the diff, not the alphabetically first ("name_1499" < "name_999")
    assert "name_0" in kept and "name_998" in kept and "name_1499" not in kept


def test_annotations_point_at_the_range_adding_the_most_control_flow(
    builder: RepoBuilder,
) -> None:
    b = builder
    old = [f"v{i} = {i}\n" for i in range(30)]
    base = b.commit({"m.py": "".join(old), "doc.py": "x = 1\n"}, day=0)
    new = list(old)
    new.insert(25, "if v1:\n    raise ValueError(v2)\nfor k in v3:\n    pass\n")  # lines 32-35
    new.insert(10, "w = 1\nw2 = 2\nw3 = 3\nw4 = 4\nw5 = 5\n")  # 5 lines of code, no control
    new.insert(2, "# a comment\n")  # line 3: no code
    head = b.commit({"m.py": "".join(new), "doc.py": "x = 1\n# note\n"}, day=1)
    ranges = diff_code_lines(open_repo(b.path), base, head, [".py"])[1]
    # the if/raise/for block, not the first range; a file adding no code: its first range
    assert ranges == {"m.py": (32, 35), "doc.py": (2, 2)}


def test_annotations_skip_re_indented_control_flow(builder: RepoBuilder) -> None:
    b = builder
    body = (
        "def f(x):\n    if x:\n        for i in x:\n            if i:\n                return i\n"
    )
    base = b.commit({"m.py": body + "\n\ndef g(y):\n    return y\n"}, day=0)
    wrapped = (  # the same if/for/if/return, indented under a try: moved, not new
        "def f(x):\n    try:\n        if x:\n            for i in x:\n                if i:\n"
        "                    return i\n    except TypeError:\n        return None\n"
    )
    new_g = (  # four new control-flow lines; f's hunk has three new ones (try, except, return)
        "\n\ndef g(y):\n    if y is None:\n        raise ValueError(y)\n    if y < 0:\n"
        "        return -y\n    return y\n"
    )
    head = b.commit({"m.py": wrapped + new_g}, day=1)
    ranges = diff_code_lines(open_repo(b.path), base, head, [".py"])[1]
    # the new lines of g (12-15); counted with f's re-indented if/for/if/return, f's hunk
    # would hold seven
    assert ranges == {"m.py": (12, 15)}


SERVICE = """import os


class Service:
    def fetch(self, key, default=None):
        value = os.environ.get(key)
        if value is None:
            return default
        return value


def build(name):
    return Service()
"""
# a formatter's change: line breaks and brackets move, the AST stays
SERVICE_FORMATTED = SERVICE.replace(
    "        value = os.environ.get(key)\n",
    "        value = os.environ.get(\n            key\n        )\n",
)
# only what type checkers read: annotations and the typing import they need
SERVICE_TYPED = (
    SERVICE_FORMATTED.replace("import os\n", "import os\nfrom typing import Optional\n")
    .replace(
        "def fetch(self, key, default=None):",
        "def fetch(self, key: str, default: Optional[str] = None) -> Optional[str]:",
    )
    .replace("        value = os.environ.get(", "        value: Optional[str] = os.environ.get(")
    .replace("def build(name):", 'def build(name: str) -> "Service":')
)
# a change of behaviour
SERVICE_CHANGED = SERVICE_TYPED.replace("if value is None:", "if not value:")


def test_cosmetic_changes_are_recognised() -> None:
    from diffrisk.features.cosmetic import ANNOTATIONS, FORMAT, cosmetic_change

    old, fmt, typed, changed = (
        s.encode() for s in (SERVICE, SERVICE_FORMATTED, SERVICE_TYPED, SERVICE_CHANGED)
    )
    assert cosmetic_change(old, fmt) == FORMAT
    assert cosmetic_change(fmt, typed) == ANNOTATIONS
    assert cosmetic_change(typed, changed) is None
    assert cosmetic_change(old, old) is None
    # each check only when asked for (the label settings)
    assert cosmetic_change(old, fmt, reformat=False) is None
    assert cosmetic_change(fmt, typed, annotations=False) is None


DOCUMENTED = (
    "def fetch(key, default=None):\n"
    '    """Read ``key`` from the environment.   \n'
    "\n"
    "       Falls back to ``default``.\n"
    '        """\n'
    "    return default if key is None else key\n"
    "\n"
    "\n"
    "PLAIN = 'text  '\n"
)


@pytest.mark.parametrize("exact", [True, False])
def test_black_docstring_normalisation_is_a_reformat(exact: bool) -> None:
    """black strips a docstring's trailing spaces and re-indents it (its own AST check
    calls that equivalent); the exact and the cheap check both see a reformat."""
    from diffrisk.features.cosmetic import FORMAT, cosmetic_change

    black = (
        DOCUMENTED.replace("environment.   \n", "environment.\n")
        .replace("       Falls back", "    Falls back")
        .replace('        """\n', '    """\n')
        .replace("'text  '", '"text  "')
    )
    assert cosmetic_change(DOCUMENTED.encode(), black.encode(), exact=exact) == FORMAT
    # the words of a docstring, or the spaces inside any other string, are a change
    reworded = black.replace("Falls back", "Defaults")
    assert cosmetic_change(DOCUMENTED.encode(), reworded.encode(), exact=exact) is None
    stripped = black.replace('"text  "', '"text"')
    assert cosmetic_change(DOCUMENTED.encode(), stripped.encode(), exact=exact) is None
    # a bare string further down a body (no docstring, nothing at run time) is compared
    # the same way, whether a piece of the file or the whole is parsed
    inner = "def g():\n    x = 1\n    '''Note.   \n       More.'''\n    return x\n"
    inner_black = 'def g():\n    x = 1\n    """Note.\n    More."""\n    return x\n'
    assert cosmetic_change(inner.encode(), inner_black.encode(), exact=exact) == FORMAT


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        # an import inside "if TYPE_CHECKING:" serves type checkers alone
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from a import B\n"
            "def f(x):\n    return x\n",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from a import B, C\n"
            "def f(x):\n    return x\n",
            "annotations",
        ),
        # a class field's annotation is read at run time (dataclasses, pydantic)
        (
            "class A:\n    x: int = 1\n\n    def f(self):\n        return self.x\n",
            "class A:\n    x: str = 1\n\n    def f(self):\n        return self.x\n",
            None,
        ),
        # an @overload stub goes entirely, body and all
        (
            "from typing import overload\nclass A:\n    @overload\n    def f(self, x: int) -> int:\n"
            "        return x\n    def f(self, x):\n        return x\n",
            "from typing import overload\nclass A:\n    @overload\n    def f(self, x: int) -> int:\n"
            "        return None\n    def f(self, x):\n        return x\n",
            "annotations",
        ),
        # a method after an overloaded sibling is not a stub: renaming it is a change
        (
            "from typing import overload\nclass A:\n    @overload\n    def f(self, x: int) -> int: ...\n"
            "    def f(self, x):\n        return x\n\n    def g(self, y: int) -> int:\n        return y\n",
            "from typing import overload\nclass A:\n    @overload\n    def f(self, x: int) -> int: ...\n"
            "    def f(self, x):\n        return x\n\n    def h(self, y: int) -> int:\n        return y\n",
            None,
        ),
        # a local variable's annotation inside a method
        (
            "class A:\n    def f(self):\n        y = 2\n        return y\n",
            "class A:\n    def f(self):\n        y: int = 2\n        return y\n",
            "annotations",
        ),
        # a parameter of a signature black split over lines
        (
            "class A:\n    def f(\n        self,\n        x,\n    ):\n        return x\n",
            "class A:\n    def f(\n        self,\n        x: int,\n    ) -> int:\n        return x\n",
            "annotations",
        ),
        # a docstring line that reads like a declaration is text
        (
            'def f(x):\n    """Sum.\n\n    Note: slow\n    """\n    return x\n',
            'def f(x):\n    """Sum.\n\n    Note: fast\n    """\n    return x\n',
            None,
        ),
        # typing.cast added, imported in brackets over several lines
        (
            "from typing import (\n    Any,\n    cast,\n)\nclass A:\n    def f(self, d):\n"
            "        x = d.get(1)\n        return x\n",
            "from typing import (\n    Any,\n    cast,\n)\nclass A:\n    def f(self, d):\n"
            "        x = cast(int, d.get(1))\n        return x\n",
            "annotations",
        ),
        # a string annotation unquoted: no letter changes, yet not a reformat
        (
            'class B:\n    pass\ndef f(x: "B") -> "B":\n    return x\n',
            "class B:\n    pass\ndef f(x: B) -> B:\n    return x\n",
            "annotations",
        ),
        # a changed name in a method is a change
        (
            "class A:\n    def f(self):\n        y = 2\n        return y\n",
            "class A:\n    def f(self):\n        z = 2\n        return z\n",
            None,
        ),
    ],
)
@pytest.mark.parametrize("exact", [True, False])
def test_annotation_checks_see_the_enclosing_blocks(
    before: str, after: str, expected: str | None, exact: bool
) -> None:
    # exact: both files parsed (the label stage); else the statements around the change
    from diffrisk.features.cosmetic import cosmetic_change, same_ast

    got = cosmetic_change(before.encode(), after.encode(), reformat=False, exact=exact)
    assert got == expected
    assert not same_ast(before.encode(), after.encode())


IMPORTS = "import os\nimport re\nimport sys\nimport json\n\n"
IMPORTS_BEFORE = IMPORTS + "from a import B\n\nX = 1\n\n\ndef f(x: B):\n    return x\n"


@pytest.mark.parametrize(
    ("after", "hunks", "expected"),
    [
        # lines inserted just before a statement belong to the region starting there:
        # the non-typing import inserted before "from a import B" is a change
        (
            IMPORTS.replace("os\n", "os\nfrom typing import Any\n")
            + "from c import D\nfrom a import B\n\nX = 1\n\n\ndef f(x: Any):\n    return x\n",
            [(1, 0, 2, 1), (5, 0, 7, 1), (11, 1, 13, 1)],
            None,
        ),
        # the same without the new import: typing alone
        (
            IMPORTS.replace("os\n", "os\nfrom typing import Any\n")
            + "from a import B\n\nX = 1\n\n\ndef f(x: Any):\n    return x\n",
            [(1, 0, 2, 1), (11, 1, 12, 1)],
            "annotations",
        ),
        # a __future__ import other than annotations changes how the file runs
        (
            "from __future__ import division\n" + IMPORTS_BEFORE.replace("x: B", "x: int"),
            [(0, 0, 1, 1), (11, 1, 12, 1)],
            None,
        ),
        (
            "from __future__ import annotations\n" + IMPORTS_BEFORE.replace("x: B", "x: int"),
            [(0, 0, 1, 1), (11, 1, 12, 1)],
            "annotations",
        ),
        # lines added at the end of the file belong to the last region
        (
            IMPORTS_BEFORE.replace("x: B", "x: int") + "\n\nimport gc\n",
            [(11, 1, 11, 1), (12, 0, 13, 3)],
            None,
        ),
    ],
)
@pytest.mark.parametrize("exact", [True, False])
def test_annotation_checks_follow_the_hunks(
    after: str, hunks: list[tuple[int, int, int, int]], expected: str | None, exact: bool
) -> None:
    # hunks as ``git diff -U0`` heads them (mining passes them); worked out by hand
    from diffrisk.features.cosmetic import cosmetic_change

    got = cosmetic_change(
        IMPORTS_BEFORE.encode(), after.encode(), reformat=False, exact=exact, hunks=hunks
    )
    assert got == expected


def test_cosmetic_file_changes_add_no_lines_of_code(builder: RepoBuilder, tmp_path: Path) -> None:
    from diffrisk.data.store import load_dataset
    from diffrisk.scoring.analysis import analyze

    b = builder
    c = {
        "add": b.commit({"pkg/service.py": SERVICE, "pkg/other.py": "X = 1\n"}, day=0),
        "format": b.commit({"pkg/service.py": SERVICE_FORMATTED}, day=1, message="black"),
        "typed": b.commit({"pkg/service.py": SERVICE_TYPED}, day=2, message="add types"),
        # the same commit also changes another file for real
        "mixed": b.commit(
            {"pkg/service.py": SERVICE_CHANGED, "pkg/other.py": "X = 1\nY = X + 1\n"},
            day=3,
            message="empty values",
        ),
    }
    data = tmp_path / "d"
    mine(b.path, data, config=MineConfig(code_metrics=False))
    files = pd.read_parquet(data / "files.parquet")
    cos = {(r.sha, r.path): r.cosmetic for r in files.itertuples()}
    assert cos[(c["format"], "pkg/service.py")] == "format"
    assert cos[(c["typed"], "pkg/service.py")] == "annotations"
    assert pd.isna(cos[(c["mixed"], "pkg/service.py")])
    assert pd.isna(cos[(c["add"], "pkg/service.py")])
    # the file rows keep what the diff added; the change's counts leave them out
    f = files.set_index(["sha", "path"])
    assert f.loc[(c["format"], "pkg/service.py"), "la_code"] == 3
    changes = pd.read_parquet(data / "changes.parquet")
    rows = with_code_lines(changes, files, LabelConfig()).set_index("sha")
    assert rows.loc[c["format"], ["la_code", "la_control"]].tolist() == [0, 0]
    assert rows.loc[c["typed"], "la_code"] == 0 and rows.loc[c["typed"], "code_tokens"] == ""
    # "if not value:" in service.py and "Y = X + 1" in other.py
    assert rows.loc[c["mixed"], ["la_code", "la_control"]].tolist() == [2, 1]
    assert "not" in rows.loc[c["mixed"], "code_tokens"].split()
    # with the label stage blaming such commits, their lines count again
    blamed = with_code_lines(
        changes,
        files,
        LabelConfig(skip_cosmetic_commits=False, skip_annotation_commits=False),
    ).set_index("sha")
    assert blamed.loc[c["format"], "la_code"] == 3
    assert blamed.loc[c["typed"], "la_code"] == f.loc[(c["typed"], "pkg/service.py"), "la_code"]
    # scoring a reformat the same way: its lines are added, none of them code
    a = analyze(open_repo(b.path), c["add"], c["format"], load_dataset(data))
    assert a.pr_row["la_source"].iloc[0] == 3 and a.pr_row["la_code"].iloc[0] == 0
    a = analyze(open_repo(b.path), c["typed"], c["mixed"], load_dataset(data))
    assert a.pr_row["la_code"].iloc[0] == 2


NOQA = (
    "import os\n\n\n"
    "def read(key):\n"
    "    # for a key in the environment, or else the default\n"
    "    value = os.environ.get(\n"
    "        key, 'https://example.org/#default'\n"
    "    )  # pragma: no cover\n"
    "    return value\n"
)
# a longer line limit: the call joins one line, its trailing comment and a comment line go
NOQA_FORMATTED = (
    "import os\n\n\n"
    "def read(key):\n"
    "    value = os.environ.get(key, 'https://example.org/#default')\n"
    "    return value\n"
)


def test_a_reformat_that_drops_comments_is_a_reformat(builder: RepoBuilder, tmp_path: Path) -> None:
    from diffrisk.features.cosmetic import FORMAT, cosmetic_change

    for exact in (True, False):
        assert cosmetic_change(NOQA.encode(), NOQA_FORMATTED.encode(), exact=exact) == FORMAT
        changed = NOQA_FORMATTED.replace("#default", "#other")
        assert cosmetic_change(NOQA.encode(), changed.encode(), exact=exact) is None
        # with comment lines blamed (label.ignore_comments off) a comment edit is a change
        assert (
            cosmetic_change(NOQA.encode(), NOQA_FORMATTED.encode(), exact=exact, comments=False)
            is None
        )
    # mining marks it too (its diff loses the words "for", "in", "or" and "else")
    b = builder
    b.commit({"pkg/read.py": NOQA}, day=0)
    fmt = b.commit({"pkg/read.py": NOQA_FORMATTED}, day=1, message="line length 120")
    data = tmp_path / "d"
    mine(b.path, data, config=MineConfig(code_metrics=False))
    files = pd.read_parquet(data / "files.parquet").set_index(["sha", "path"])
    assert files.loc[(fmt, "pkg/read.py"), "cosmetic"] == "format"


def test_cosmetic_values_in_processes_agree_with_one(tmp_path: Path) -> None:
    # real `git diff -U0` output of a reformat and of an annotation-only change, parsed
    # as mining parses it, alternating over enough file changes that the work goes to a
    # pool of processes: each answer must land on its own row
    from diffrisk.mining.mine import COSMETIC_POOL_MIN, cosmetic_values

    versions = {"v0": SERVICE, "v1": SERVICE_FORMATTED, "v2": SERVICE_TYPED}
    for name, text in versions.items():
        (tmp_path / f"{name}.py").write_text(text)

    def counted(old: str, new: str) -> FileCode:
        diff = subprocess.run(
            ["git", "diff", "--no-index", "-U0", f"{old}.py", f"{new}.py"],
            cwd=tmp_path,
            capture_output=True,
            check=False,
        ).stdout
        return next(iter(parse_added_code(b"\x01-\n" + diff)["-"].values()))

    steps = [("v0", "v1", "format"), ("v1", "v2", "annotations")]
    n = COSMETIC_POOL_MIN + 5
    counts, rows, expected = {}, [], []
    for i in range(n):
        old, new, kind = steps[i % 2]
        sha, path = f"{i:040x}", ("tests/test_s.py" if i == 0 else "pkg/s.py")
        counts[sha] = {path: counted(old, new)}
        rows.append(
            {"sha": sha, "path": path, "status": "M", "blob_before": old, "blob_after": new}
        )
        expected.append(kind)
    blobs = {k: v.encode() for k, v in versions.items()}
    alone = cosmetic_values(rows, counts, blobs.get, workers=1)
    pooled = cosmetic_values(rows, counts, blobs.get, workers=2, source=lambda p: "tests" not in p)
    assert alone == expected
    assert pooled == [None, *expected[1:]]  # the test file is not source: not judged


@pytest.mark.parametrize("exact", [True, False])
def test_reindenting_a_multi_line_string_is_a_change(exact: bool) -> None:
    # 2 -> 4 spaces re-indents the string's second line too: its value changes
    from diffrisk.features.cosmetic import cosmetic_change

    q = '"' * 3
    two = f"def f():\n  x = 1\n  y = {q}a\n  b{q}\n  return x, y\n"
    four = f"def f():\n    x = 1\n    y = {q}a\n    b{q}\n    return x, y\n"
    assert cosmetic_change(two.encode(), four.encode(), exact=exact) is None
    # without the string, the same re-indenting is a reformat
    plain = two.replace(f"{q}a\n  b{q}", "'ab'"), four.replace(f"{q}a\n    b{q}", "'ab'")
    assert cosmetic_change(plain[0].encode(), plain[1].encode(), exact=exact) == "format"
