"""Blank, comment and control-flow lines by language: the lines of code ``la_code`` and
``la_control`` count, worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from diffrisk.config import MineConfig
from diffrisk.features.codelines import (
    classify_added,
    comment_only_lines,
    comment_style,
    count_added_code,
)
from diffrisk.mining.mine import mine
from repobuilder import RepoBuilder


@pytest.mark.parametrize(
    ("path", "lines", "code"),
    [
        # C-like: // and /* */, also after code and across lines; "#" is code (a directive)
        ("a.c", [b"#include <x.h>", b"// c", b"/* a", b"b */ int x;"], 2),
        ("A.java", [b"/**", b" * Javadoc.", b" */", b"@Override", b"int f() {"], 2),
        ("A.java", [b"int x = 1; /* starts", b"still comment", b"ends */"], 1),
        ("A.java", [b'String s = "/* not a comment";', b"int y = 2;"], 2),
        ("a.go", [b"// Package x does y.", b"package x", b"", b"//go:build linux"], 1),
        ("a.rs", [b"/// Doc comment.", b"//! Crate doc.", b"fn f() {}"], 1),
        ("a.ts", [b"/* eslint-disable */", b"const a = 1; // trailing: code"], 1),
        # PHP: "#" comments, but "#[" is an attribute
        ("a.php", [b"# a comment", b"#[Route('/x')]", b"// another", b"$x = 1;"], 2),
        # Python, shell, Ruby: "#"; Ruby's =begin/=end at the start of a line
        ("a.sh", [b"#!/bin/sh", b"# comment", b"echo hi"], 1),
        ("a.rb", [b"=begin", b"x = 1", b"=end", b"y = 2", b"# z"], 1),
        ("a.pl", [b"=pod", b"text", b"=cut", b"my $x = 1;"], 1),
        # Lua: "--" and --[[ ]] (also --[==[ ]==])
        ("a.lua", [b"-- comment", b"--[[ long", b"comment ]]", b"local x = 1"], 1),
        ("a.lua", [b"--[==[", b"x = 1", b"]==]", b"x = 2 -- trailing"], 1),
        # SQL: "--" and /* */
        ("a.sql", [b"-- a comment", b"/* block */", b"SELECT 1;"], 1),
        # HTML-ish: <!-- --> in templates of single-file components and markup
        ("a.vue", [b"<!-- note -->", b"<template>", b"<!--", b"<div/>", b"-->"], 1),
        ("a.html", [b"<p>x</p> <!-- trailing -->", b"<!-- only -->"], 1),
        # Haskell, Erlang, Lisp, Fortran
        ("a.hs", [b"-- c", b"{- block", b"-}", b"main = pure ()"], 1),
        ("a.erl", [b"% c", b"-module(a)."], 1),
        ("a.clj", [b"; c", b"(defn f [] 1)"], 1),
        ("a.f90", [b"! c", b"x = 1"], 1),
        # no known comment syntax: every non-blank line is code
        ("a.md", [b"# title", b"", b"text"], 2),
    ],
)
def test_comments_by_language(path: str, lines: list[bytes], code: int) -> None:
    assert count_added_code(path, lines) == code


def test_a_hunk_does_not_carry_a_block_into_the_next() -> None:
    # each classify_added call is one hunk; an unclosed block ends with it
    assert classify_added("a.lua", [b"--[[ open"])[0] == 0
    assert classify_added("a.lua", [b"x = 1"])[0] == 1


def test_comment_only_lines_of_a_whole_file() -> None:
    text = b"/* a\n * b\n */\nint x; // y\n\n// z\nint w; /* v\n u */\n"
    assert comment_only_lines("A.java", text) == {1, 2, 3, 6, 8}
    assert comment_only_lines("a.rb", b"=begin\nx\n=end\ny = 1 # c\n# d\n") == {1, 2, 3, 5}
    assert comment_only_lines("x.md", b"# a\n") == set()
    assert comment_style("A.JAVA") == comment_style("b.java")


JAVA_V1 = """package a;

public class Calc {
    int sign(int x) {
        return 0;
    }
}
"""
JAVA_V2 = """package a;

/**
 * Arithmetic.
 */
public class Calc {
    // the sign of x
    int sign(int x) {
        if (x > 0) { // positive
            return 1;
        } else if (x < 0) {
            return -1;
        }
        /* zero */
        return 0;
    }
}
"""
# against V1: added "/**", " * Arithmetic.", " */" (comments), "// the sign of x" (comment),
# "if (x > 0) { // positive" (code, control), "return 1;" (code, control),
# "} else if (x < 0) {" (code, control), "return -1;" (code, control), "}" (code),
# "/* zero */" (comment); "return 0;" is unchanged -> 5 code lines, 4 of them control flow
TS_V1 = "export const a = 1;\n"
TS_V2 = """export const a = 1;
// helper
export function f(x: number): number {
  /* clamp */
  switch (x) {
    case 0:
      return 0;
    default:
      return x;
  }
}
"""  # added: function, switch, case, return, default, return, "}", "}" -> 8 code, 5 control
GO_V1 = "package m\n"
GO_V2 = """package m

// F does things.
func F(ch chan int) {
	defer close(ch)
	select {
	case v := <-ch:
		_ = v
	}
}
"""  # added: func, defer, select, case, "_ = v", "}", "}" -> 7 code, 3 control (defer, select, case)


def test_la_code_of_java_typescript_and_go_changes(builder: RepoBuilder, tmp_path: Path) -> None:
    b = builder
    b.commit({"src/Calc.java": JAVA_V1, "web/a.ts": TS_V1, "m/m.go": GO_V1}, day=0)
    c = b.commit({"src/Calc.java": JAVA_V2, "web/a.ts": TS_V2, "m/m.go": GO_V2}, day=1)
    mine(b.path, tmp_path / "d", config=MineConfig(code_metrics=False))
    f = pd.read_parquet(tmp_path / "d" / "files.parquet")
    got = {r.path: (r.la_code, r.la_control) for r in f[f.sha == c].itertuples()}
    assert got == {"src/Calc.java": (5, 4), "web/a.ts": (8, 5), "m/m.go": (7, 3)}
