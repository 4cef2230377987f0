"""Code metrics of Java, JavaScript/TypeScript and Go (lizard), mined from real repositories.

Each expected complexity is worked out by hand from lizard's rule: a function's CCN is 1
plus its ``if``, loops, ``case`` labels, ``catch`` clauses, ``&&``/``||`` and ``?:``; a
file's ``cc`` is the sum over its functions; ``cc_max_touched`` the highest CCN among
the functions a change adds or whose text it changes.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from diffrisk.config import MineConfig
from diffrisk.features.codemetrics import (
    FAILED,
    analyze_lizard,
    measure,
    metric_key,
    metric_language,
)
from diffrisk.mining.mine import mine
from repobuilder import RepoBuilder

CFG = MineConfig(code_metrics=True, workers=1)


def changes(data: Path) -> pd.DataFrame:
    return pd.read_parquet(data / "changes.parquet").set_index("sha")


def files(data: Path) -> pd.DataFrame:
    return pd.read_parquet(data / "files.parquet")


JAVA_V1 = """package a;

/** Arithmetic. */
public class Calc {
    // the sign of x: two ifs, CCN 3
    int sign(int x) {
        if (x > 0) {
            return 1;
        }
        if (x < 0) {
            return -1;
        }
        return 0;
    }

    int twice(int x) {
        return 2 * x;
    }
}
"""
# twice gains a loop, an if and an &&: CCN 1 -> 4; sign is untouched (CCN 3)
JAVA_V2 = JAVA_V1.replace(
    "        return 2 * x;\n",
    "        int n = 0;\n"
    "        for (int i = 0; i < x; i++) {\n"
    "            if (i % 2 == 0 && i > 2) {\n"
    "                n++;\n"
    "            }\n"
    "        }\n"
    "        return 2 * x + n;\n",
)
JAVA_TEST = """package a;

public class CalcTest {
    void testSign() {
        if (new Calc().sign(1) != 1) { throw new AssertionError(); }
        for (int i = 0; i < 3; i++) { if (i > 1 || i < 0) { return; } }
    }
}
"""


def test_java_complexity_by_hand(builder: RepoBuilder, tmp_path: Path) -> None:
    b = builder
    c1 = b.commit({"src/main/java/a/Calc.java": JAVA_V1}, day=0, message="add calc")
    c2 = b.commit(
        {"src/main/java/a/Calc.java": JAVA_V2, "src/test/java/a/CalcTest.java": JAVA_TEST},
        day=1,
        message="count even numbers",
    )
    mine(b.path, tmp_path / "d", config=CFG)
    df, f = changes(tmp_path / "d"), files(tmp_path / "d")
    # c1: a new file, sign 3 + twice 1
    assert df.loc[c1, "cc_delta"] == 4.0
    assert df.loc[c1, "cc_max_touched"] == 3.0  # both functions are new
    # c2: twice 1 -> 4; the test (src/test/..., *Test.java) is not a source file
    assert df.loc[c2, "cc_delta"] == 3.0
    assert df.loc[c2, "cc_max_touched"] == 4.0  # only twice changed
    assert df.loc[c2, "metric_files"] == 1 and df.loc[c2, "unparsable_files"] == 0
    assert df.loc[c2, "py_files"] == 0
    row = f[(f.sha == c2) & f.path.str.endswith("Calc.java")].iloc[0]
    assert (row.cc_before, row.cc_after, row.language) == (4.0, 7.0, "java")
    test_row = f[(f.sha == c2) & f.path.str.endswith("CalcTest.java")].iloc[0]
    assert test_row.language == "java" and pd.isna(test_row.cc_after)
    # the maintainability index and Halstead volume are measured, and the blob is read once
    assert 0 < df.loc[c2, "mi_after"] <= 100
    assert df.loc[c2, "mi_before"] == df.loc[c1, "mi_after"]
    assert df.loc[c2, "hv_delta"] > 0 and df.loc[c1, "hv_delta"] > 0
    assert df.loc[c2, "mi_after"] < df.loc[c2, "mi_before"]  # longer and more complex


TS_PICK = """export function pick(a: number, b: number): number {
  if (a > b) {
    return a;
  }
  return b > 0 ? b : 0;
}
"""  # CCN 1 + if + ?: = 3
JS_WALK = """function walk(items) {
  for (const x of items) {
    if (x) {
      console.log(x);
    }
  }
  while (items.length) items.pop();
}

module.exports = walk;
"""  # CCN 1 + for + if + while = 4
TS_KIND = """export function kind(s: string): number {
  switch (s) {
    case "a":
      return 1;
    case "b":
      return 2;
    default:
      return 0;
  }
}
"""  # CCN 1 + two cases = 3
TS_SPEC = """import { pick } from "../src/index";
test("pick", () => { if (pick(1, 2) !== 2) { throw new Error("x"); } });
"""


def test_javascript_and_typescript_complexity_by_hand(builder: RepoBuilder, tmp_path: Path) -> None:
    b = builder
    c1 = b.commit({"src/index.ts": TS_PICK, "lib/walk.js": JS_WALK}, day=0, message="add")
    c2 = b.commit(
        {"src/index.ts": TS_PICK + "\n" + TS_KIND, "src/index.test.ts": TS_SPEC},
        day=1,
        message="kind",
    )
    c3 = b.commit({"lib/walk.js": None, "src/kind.mts": TS_KIND}, day=2, message="move")
    mine(b.path, tmp_path / "d", config=CFG)
    df, f = changes(tmp_path / "d"), files(tmp_path / "d")
    assert df.loc[c1, "cc_delta"] == 3.0 + 4.0
    assert df.loc[c1, "cc_max_touched"] == 4.0
    assert df.loc[c1, "metric_files"] == 2
    # kind (3) is added to index.ts; pick is untouched; the spec file is a test
    assert df.loc[c2, "cc_delta"] == 3.0 and df.loc[c2, "cc_max_touched"] == 3.0
    assert df.loc[c2, "metric_files"] == 1
    # walk.js deleted (-4), kind.mts added (+3, read as TypeScript)
    assert df.loc[c3, "cc_delta"] == -1.0 and df.loc[c3, "cc_max_touched"] == 3.0
    langs = dict(zip(f[f.sha == c3].path, f[f.sha == c3].language, strict=True))
    assert langs == {"lib/walk.js": "javascript", "src/kind.mts": "typescript"}


GO_V1 = """package main

func classify(n int) string {
	switch {
	case n < 0:
		return "neg"
	case n == 0:
		return "zero"
	}
	for i := 0; i < n; i++ {
		if i > 10 || n > 100 {
			return "big"
		}
	}
	return "pos"
}
"""  # CCN 1 + two cases + for + if + || = 6
GO_V2 = (
    GO_V1
    + """
// Close stops the server once.
func (s *Server) Close() error {
	if s.done {
		return nil
	}
	return s.stop()
}
"""
)  # Close: CCN 2
GO_TEST = """package main

import "testing"

func TestClassify(t *testing.T) {
	if classify(1) != "pos" {
		t.Fatal("x")
	}
}
"""


def test_go_complexity_by_hand(builder: RepoBuilder, tmp_path: Path) -> None:
    b = builder
    c1 = b.commit({"cmd/main.go": GO_V1}, day=0, message="classify")
    c2 = b.commit({"cmd/main.go": GO_V2, "cmd/main_test.go": GO_TEST}, day=1, message="close")
    mine(b.path, tmp_path / "d", config=CFG)
    df = changes(tmp_path / "d")
    assert df.loc[c1, "cc_delta"] == 6.0 and df.loc[c1, "cc_max_touched"] == 6.0
    # Close is new (2); classify untouched; main_test.go is a test
    assert df.loc[c2, "cc_delta"] == 2.0 and df.loc[c2, "cc_max_touched"] == 2.0
    assert df.loc[c2, "metric_files"] == 1


def test_odd_encodings_and_unparsable_files_give_null_metrics(
    builder: RepoBuilder, tmp_path: Path
) -> None:
    b = builder
    latin = JAVA_V1.replace("// the sign of x", "// le signe de x, \xe9t\xe9").encode("latin-1")
    c_latin = b.commit({"src/Latin.java": latin}, day=0, message="latin-1")
    utf16 = JAVA_V1.encode("utf-16")
    c_utf16 = b.commit({"src/Wide.java": utf16}, day=1, message="utf-16")
    garbage = b"}}}} func ( { { [ \xff\xfe if else ))) /* never closed\nreturn ;;; {"
    c_bad = b.commit({"pkg/bad.go": garbage, "pkg/ok.go": GO_V1}, day=2, message="garbage")
    c_bin = b.commit({"web/app.js": b"\x00\x01\x02binary\x00"}, day=3, message="binary js")
    res = mine(b.path, tmp_path / "d", config=CFG)
    df, f = changes(tmp_path / "d"), files(tmp_path / "d")
    # Latin-1 is read as it is: the same counts as the UTF-8 original
    assert df.loc[c_latin, "cc_delta"] == 4.0 and df.loc[c_latin, "unparsable_files"] == 0
    # UTF-16 (NUL bytes) and binary content: unknown, not zero
    for c, path in ((c_utf16, "src/Wide.java"), (c_bin, "web/app.js")):
        assert df.loc[c, "unparsable_files"] == 1 and df.loc[c, "metric_files"] == 0
        row = f[(f.sha == c) & (f.path == path)].iloc[0]
        assert bool(row.parse_error) and pd.isna(row.cc_after) and pd.isna(row.cc_max_touched)
    # lizard reads anything that is text: garbage gets some numbers, never a crash, and
    # the commit's good file is measured as usual
    assert df.loc[c_bad, "metric_files"] == 2 and df.loc[c_bad, "cc_delta"] >= 6.0
    said = " ".join(res.warnings)
    assert "2 file changes in other languages could not be measured" in said


def test_language_of_a_path() -> None:
    assert metric_language("a/B.java") == "java"
    assert metric_language("x.PY") == "python" and metric_key("x.PY") == ".py"
    assert metric_language("x.tsx") == "tsx" and metric_language("x.hxx") == "cpp"
    assert metric_language("README.md") is None and metric_key("Makefile") is None
    assert metric_language("x.pyx") is None  # Cython: neither radon nor lizard reads it


def test_every_lizard_language_has_a_reader() -> None:
    from diffrisk.features.codemetrics import LIZARD_EXTENSIONS

    # a function with one branch, in a syntax most C-like readers accept
    for ext in (".java", ".c", ".cpp", ".cs", ".js", ".ts", ".go", ".rs", ".kt", ".swift"):
        src = b"int f(int x) { if (x) { return 1; } return 0; }\n"
        if ext == ".go":
            src = b"package m\nfunc f(x int) int { if x > 0 { return 1 }; return 0 }\n"
        elif ext == ".rs":
            src = b"fn f(x: i32) -> i32 { if x > 0 { return 1; } 0 }\n"
        elif ext in (".kt", ".swift"):
            src = b"fun f(x: Int): Int { if (x > 0) { return 1 }; return 0 }\n"
            if ext == ".swift":
                src = b"func f(x: Int) -> Int { if x > 0 { return 1 }; return 0 }\n"
        elif ext in (".js", ".ts"):
            src = b"function f(x) { if (x) { return 1; } return 0; }\n"
        m = analyze_lizard(src, ext)
        assert m.ok and m.cc == 2.0 and [c for _, c, _ in m.functions] == [2], ext
    for ext in LIZARD_EXTENSIONS:
        assert analyze_lizard(b"x = 1\n", ext).ok, ext  # a reader exists for every ending
    assert analyze_lizard(b"int f() {}\n", ".unknown") == FAILED


@pytest.mark.parametrize(
    "src",
    [b"", b"\n\n", b"// only a comment\n", "\u00e9\u00e8 // caf\u00e9\n".encode()],
)
def test_trivial_text_is_measured_without_error(src: bytes) -> None:
    m = measure(src, ".java")
    assert m.ok and m.cc == 0.0 and m.functions == ()
    assert m.mi is not None and 0 <= m.mi <= 100
