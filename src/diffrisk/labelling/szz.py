"""The git side of SZZ: which lines a fix deleted or changed, and who wrote them.

For a batch of fixes one ``git log -p -U0`` process gives every hunk; for each file a
fix changed, one ``git blame --porcelain -L a,b -L c,d ... <parent> -- <path>`` names
the commits that last touched the changed lines in the fix's first parent. Blank and
comment-only lines (and Python docstrings) can be left out before blaming (AG-SZZ).

This module only starts git processes and parses their output; the filters on the
candidates (dataset membership, dates, merges) are in :mod:`diffrisk.labelling.label`.
"""

from __future__ import annotations

import ast
import codecs
import collections
import contextlib
import fnmatch
import os
import re
import signal
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, NoReturn

from diffrisk.errors import GitCommandError
from diffrisk.features.codemetrics import docstring_of
from diffrisk.git.repo import CatFile, GitRepo

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

# How many blamed line texts a link keeps for the quality report.
SAMPLE_LINES = 8

_HUNK = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")
_HASH_COMMENT = frozenset(
    {
        ".py",
        ".pyx",
        ".pxd",
        ".pyi",
        ".sh",
        ".bash",
        ".pl",
        ".pm",
        ".rb",
        ".r",
        ".jl",
        ".ex",
        ".exs",
        ".toml",
        ".yaml",
        ".yml",
        ".cfg",
        ".ini",
        ".cmake",
        ".mk",
    }
)
_SLASH_COMMENT = frozenset(
    {
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".hpp",
        ".cxx",
        ".hh",
        ".go",
        ".rs",
        ".java",
        ".kt",
        ".kts",
        ".scala",
        ".js",
        ".jsx",
        ".ts",
        ".tsx",
        ".mjs",
        ".cjs",
        ".cs",
        ".swift",
        ".m",
        ".mm",
        ".php",
        ".dart",
        ".groovy",
        ".zig",
        ".y",
        ".yy",
        ".l",
        ".ll",
        ".hxx",
        ".mts",
        ".cts",
        ".vue",
        ".svelte",
    }
)
_PY = frozenset({".py", ".pyi", ".pyx", ".pxd"})


@dataclass(frozen=True)
class SourceFilter:
    """Which paths SZZ treats as source code (``label.source_extensions`` / ``exclude_paths``)."""

    extensions: frozenset[str]
    exclude: tuple[str, ...]

    @classmethod
    def of(cls, extensions: Iterable[str], exclude: Iterable[str]) -> SourceFilter:
        return cls(frozenset(e.lower() for e in extensions), tuple(exclude))

    def __call__(self, path: str) -> bool:
        p = PurePosixPath(path)
        if p.suffix.lower() not in self.extensions:
            return False
        # fnmatch's "*" crosses "/", so "tests/*" matches at any depth below tests/.
        return not any(fnmatch.fnmatchcase(path, pat) for pat in self.exclude)


@dataclass
class FileDiff:
    """One file of a fix: its path in the parent and the line numbers the fix removed."""

    old_path: str
    new_path: str
    old_blob: str | None
    deleted: list[int] = field(default_factory=list)
    texts: list[bytes] = field(default_factory=list)


# -- diffs ------------------------------------------------------------------------------


def _unquote(raw: bytes, errors: str = "surrogateescape") -> str:
    """A path as git prints it in diff headers (C-quoted when it has odd characters)."""
    raw = raw.rstrip(b"\t")  # git appends a tab to names containing spaces
    if raw.startswith(b'"') and raw.endswith(b'"'):
        raw = codecs.escape_decode(raw[1:-1])[0]
    return raw.decode("utf-8", errors)


def log_patch_argv(ignore_whitespace: bool) -> list[str]:
    argv = [
        "log",
        "--no-walk=unsorted",
        "--stdin",
        "-p",
        "-U0",
        "-M",
        "--full-index",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "--src-prefix=a/",
        "--dst-prefix=b/",
        "--format=%x01%H",
    ]
    if ignore_whitespace:
        argv.insert(4, "-w")
    return argv


def parse_patches(data: bytes) -> dict[str, list[FileDiff]]:
    """``git log -p -U0 --format=%x01%H`` output -> per commit, the files with deleted lines."""
    out: dict[str, list[FileDiff]] = {}
    files: list[FileDiff] = []
    cur: FileDiff | None = None
    old_path = new_path = blob = None
    line_no = 0
    for line in data.split(b"\n"):
        if line.startswith(b"\x01"):
            files = out.setdefault(line[1:].decode(), [])
            cur = None
            continue
        if line.startswith(b"diff --git "):
            cur = None
            old_path = new_path = blob = None
            continue
        if cur is None:
            if line.startswith(b"index "):
                ids = line.split()[1].split(b"..")
                blob = ids[0].decode() if ids and set(ids[0]) != {ord("0")} else None
            elif line.startswith(b"rename from "):
                old_path = _unquote(line[12:])
            elif line.startswith(b"rename to "):
                new_path = _unquote(line[10:])
            elif line.startswith(b"--- "):
                name = line[4:]
                old_path = None if name == b"/dev/null" else _unquote(name)[2:]
            elif line.startswith(b"+++ "):
                name = line[4:]
                new_path = None if name == b"/dev/null" else _unquote(name)[2:]
                if old_path is not None:
                    cur = FileDiff(old_path, new_path or old_path, blob)
                    files.append(cur)
            continue
        if line.startswith(b"@@"):
            m = _HUNK.match(line)
            if m:
                line_no = int(m.group(1))
            continue
        if line.startswith(b"-"):
            cur.deleted.append(line_no)
            cur.texts.append(line[1:])
            line_no += 1
    for fs in out.values():
        fs[:] = [f for f in fs if f.deleted]
    return out


# -- cosmetic lines (AG-SZZ) ------------------------------------------------------------


def _python_docstring_lines(text: str) -> set[int]:
    """Lines of docstrings; for code that does not parse (Python 2, a syntax error the fix
    repairs), lines of triple-quoted strings that start a statement."""
    try:
        tree = _parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        lines = text.splitlines()
        out: set[int] = set()
        for a, b in _triple_spans(text)[0]:
            head = lines[a - 1].lstrip() if a - 1 < len(lines) else ""
            if _STATEMENT_STRING.match(head):
                out.update(range(a, b + 1))
        return out
    out = set()
    for node in ast.walk(tree):
        doc = docstring_of(node)
        if doc is not None:
            out.update(range(doc.lineno, (doc.end_lineno or doc.lineno) + 1))
    return out


_TRIPLE = re.compile(r'"""|\'\'\'')
_STATEMENT_STRING = re.compile(r'^[rRuUbB]{0,2}("""|\'\'\')')


def _triple_spans(text: str) -> tuple[list[tuple[int, int]], bool]:
    """(first line, last line) of triple-quoted strings, and whether one is left open.

    Pairs triple quotes in order of appearance; quotes inside other strings can
    mis-pair them, so this is a heuristic (a pre-check, and the fallback without a parse).
    """
    spans = []
    pos = 0
    line = 1
    open_at = None
    quote = ""
    for m in _TRIPLE.finditer(text):
        line += text.count("\n", pos, m.start())
        pos = m.start()
        if open_at is None:
            open_at, quote = line, m.group()
        elif m.group() == quote:
            spans.append((open_at, line))
            open_at = None
    return spans, open_at is not None


def _maybe_in_triple_quoted(text: str, line_numbers: list[int]) -> bool:
    """Cheap pre-check before parsing: may any of the lines be in a triple-quoted string?"""
    spans, unclosed = _triple_spans(text)
    return unclosed or any(a <= n <= b for n in line_numbers for a, b in spans)


def _slash_comment_lines(text: str) -> set[int]:
    """Lines made only of ``//`` or ``/* */`` comments (strings are not looked into)."""
    lines: set[int] = set()
    in_block = False
    for no, raw in enumerate(text.splitlines(), 1):
        s = raw.strip()
        code = False
        while s:
            if in_block:
                end = s.find("*/")
                if end < 0:
                    s = ""
                else:
                    in_block = False
                    s = s[end + 2 :].strip()
            elif s.startswith("//"):
                s = ""
            elif s.startswith("/*"):
                in_block = True
                s = s[2:]
            else:
                code = True
                start = s.find("/*")
                if start >= 0 and "//" not in s[:start]:
                    in_block = True
                    s = s[start + 2 :]
                else:
                    s = ""
        if not code and raw.strip():
            lines.add(no)
    return lines


def cosmetic_lines(
    path: str, old_text: bytes | None, line_numbers: list[int], texts: list[bytes]
) -> set[int]:
    """The given deleted lines that are blank or only comment (Python: also docstrings)."""
    ext = PurePosixPath(path).suffix.lower()
    out = {no for no, t in zip(line_numbers, texts, strict=True) if not t.strip()}
    if ext in _HASH_COMMENT:
        out.update(
            no for no, t in zip(line_numbers, texts, strict=True) if t.lstrip().startswith(b"#")
        )
    if old_text is None:
        return out
    rest = [no for no in line_numbers if no not in out]
    if not rest:
        return out
    text = old_text.decode("utf-8", "replace")
    if ext in _PY and _maybe_in_triple_quoted(text, rest):
        doc = _python_docstring_lines(text)
        out.update(no for no in rest if no in doc)
    elif ext in _SLASH_COMMENT:
        com = _slash_comment_lines(text)
        out.update(no for no in rest if no in com)
    return out


def _same_ast(a: bytes, b: bytes) -> bool:
    try:
        return ast.dump(_parse(a)) == ast.dump(_parse(b))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False


#: Modules whose imports only serve type hints (``__future__``: only ``annotations``).
_TYPING_MODULES = frozenset({"typing", "typing_extensions", "collections.abc"})
#: Decorators that leave a function's annotations unread (any other decorator may read
#: them: ``functools.singledispatch``'s ``register``, FastAPI routes, typer commands).
_PLAIN_DECORATORS = frozenset({"overload", "staticmethod", "classmethod", "property", "override"})


def _named(node: ast.expr, name: str) -> bool:
    """``name`` or ``anything.name`` (``overload``, ``typing.overload``)."""
    return (isinstance(node, ast.Name) and node.id == name) or (
        isinstance(node, ast.Attribute) and node.attr == name
    )


def _decorator_name(node: ast.expr) -> str:
    node = node.func if isinstance(node, ast.Call) else node
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


class _StripAnnotations(ast.NodeTransformer):
    """Removes what only type checkers read: annotations (not of class fields, nor of
    functions with a decorator that may read them), ``if TYPE_CHECKING:`` blocks,
    ``@overload`` stubs, ``typing.cast`` and ``type`` aliases; then the imports from
    typing modules (and ``from __future__ import annotations``) that nothing left uses."""

    def __init__(self) -> None:
        self.casts: set[str] = set()  # local names of typing.cast
        self.typing_modules: set[str] = set()  # local names of the typing modules

    def strip(self, tree: ast.Module) -> ast.Module:
        used = self.used_names(tree)  # (strips the tree in place)
        return _UnusedTypingImports(used).visit(tree)

    def used_names(self, tree: ast.Module) -> set[str]:
        """The names ``tree`` uses once stripped (it is stripped in place)."""
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in _TYPING_MODULES:
                self.casts.update(a.asname or a.name for a in node.names if a.name == "cast")
            elif isinstance(node, ast.Import):
                self.typing_modules.update(
                    a.asname or a.name for a in node.names if a.name in _TYPING_MODULES
                )
        tree = self.visit(tree)
        return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST | None:
        names = {_decorator_name(d) for d in node.decorator_list}
        if "overload" in names:
            return None
        if names <= _PLAIN_DECORATORS:
            a = node.args
            for arg in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg):
                if arg is not None:
                    arg.annotation = None
                    arg.type_comment = None
            node.returns = None
            node.type_comment = None
            if hasattr(node, "type_params"):
                node.type_params = []
        self.generic_visit(node)
        return node

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        # a class body's annotated names are fields that dataclasses, pydantic, attrs and
        # NamedTuple read at run time: their annotations stay
        body = []
        for stmt in node.body:
            if isinstance(stmt, ast.AnnAssign):
                if stmt.value is not None:
                    stmt.value = self.visit(stmt.value)
                body.append(stmt)
            else:
                new = self.visit(stmt)
                body.extend(new if isinstance(new, list) else [new] if new is not None else [])
        node.body = body
        node.bases = [self.visit(b) for b in node.bases]
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        if hasattr(node, "type_params"):
            node.type_params = []
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        self.generic_visit(node)
        if node.value is None:
            # a bare declaration ("x: int") stays a statement: adding one is a change
            return ast.Expr(value=node.target)
        return ast.Assign(targets=[node.target], value=node.value)

    def visit_If(self, node: ast.If) -> ast.AST | list[ast.stmt] | None:
        if _named(node.test, "TYPE_CHECKING"):
            return [self.visit(n) for n in node.orelse] or None
        self.generic_visit(node)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        f = node.func
        is_cast = (isinstance(f, ast.Name) and f.id in self.casts) or (
            isinstance(f, ast.Attribute)
            and f.attr == "cast"
            and isinstance(f.value, ast.Name)
            and f.value.id in self.typing_modules
        )
        if is_cast and len(node.args) == 2 and not node.keywords:
            return node.args[1]
        return node

    def visit_TypeAlias(self, node: ast.AST) -> None:  # "type X = ..." (Python 3.12)
        return None


class _UnusedTypingImports(ast.NodeTransformer):
    """Drops names imported from typing modules that the stripped tree no longer uses
    (a name still used at run time, ``NamedTuple`` or an alias, stays and is compared)."""

    def __init__(self, used: set[str]) -> None:
        self.used = used

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST | None:
        if node.module == "__future__":
            node.names = [a for a in node.names if a.name != "annotations"]
        elif node.module in _TYPING_MODULES:
            node.names = [a for a in node.names if (a.asname or a.name) in self.used]
        return node if node.names else None

    def visit_Import(self, node: ast.Import) -> ast.AST | None:
        node.names = [
            a
            for a in node.names
            if a.name not in _TYPING_MODULES or (a.asname or a.name) in self.used
        ]
        return node if node.names else None


#: Operators and keywords a change of annotations alone never adds or removes: equal
#: counts are a cheap necessary condition checked before parsing.
_NOT_ANNOTATION = re.compile(
    rb"[=+*%<!&^~{}]|\b(?:return|for|while|lambda|yield|raise|try|except|with|not|and|or"
    rb"|in|is|del|assert|await|global|nonlocal|pass|break|continue|elif)\b"
)


def _parse(text: str | bytes) -> ast.Module:
    """``ast.parse``, quietly, with docstrings (and other bare strings) as black compares
    them, each line stripped, then the whole: black re-indents docstrings and strips their
    trailing spaces, and judges the result equivalent; docstring lines are never blamed
    either."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SyntaxWarning: invalid escape sequence, ...
        tree = ast.parse(text)
    _normalize_string_statements(tree.body)
    return tree


#: Statement fields that hold statements (the bodies a docstring's owner can sit in).
_BODIES = ("body", "orelse", "finalbody", "handlers", "cases")


def _normalize_string_statements(body: list[ast.stmt]) -> None:
    """Normalise, in place, every statement of ``body`` (and of the bodies inside it) that
    is a bare string, docstrings included: each line stripped, then the whole. Bare
    strings do nothing at run time; all of them, not only the first of a body, so that a
    piece of a file parses to what the whole file does (mining compares pieces)."""
    for node in body:
        if isinstance(node, ast.Expr):
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                v = node.value.value
                node.value.value = "\n".join(line.strip() for line in v.splitlines()).strip()
            continue
        for name in _BODIES:
            inner = getattr(node, name, None) or []
            if name in ("handlers", "cases"):  # except handlers, match cases: their bodies
                for item in inner:
                    _normalize_string_statements(item.body)
            else:
                _normalize_string_statements(inner)


def _shared(a: bytes, b: bytes, most: int, *, at_end: bool = False) -> int:
    """How many bytes (at most ``most``) ``a`` and ``b`` share at the start (or the end):
    a bisection of C-speed slice compares."""
    lo, hi = 0, most
    while lo < hi:
        mid = (lo + hi + 1) // 2
        same = a[len(a) - mid :] == b[len(b) - mid :] if at_end else a[:mid] == b[:mid]
        lo, hi = (mid, hi) if same else (lo, mid - 1)
    return lo


def _differing_span(a: bytes, b: bytes) -> tuple[int, int, int]:
    """(start, end in ``a``, end in ``b``): the byte range of the whole lines ``a`` and
    ``b`` do not share at the start and at the end (the start is the same in both)."""
    n = min(len(a), len(b))
    start = a.rfind(b"\n", 0, _shared(a, b, n)) + 1  # same offset in b
    tail = _shared(a, b, n - start, at_end=True)  # not reaching into the shared start
    end_a = a.find(b"\n", len(a) - tail)  # the end of the line the shared end starts in
    end_a = len(a) if end_a < 0 else end_a
    return start, end_a, end_a + len(b) - len(a)


def _differing_lines(a: bytes, b: bytes) -> tuple[bytes, bytes]:
    """``a`` and ``b`` without the whole lines they share at the start and at the end."""
    start, end_a, end_b = _differing_span(a, b)
    return a[start:end_a], b[start:end_b]


#: :func:`cosmetic_change`'s answers: the change left the file's AST as it was (a
#: reformat), or changed only what type checkers read.
FORMAT = "format"
ANNOTATIONS = "annotations"
#: What formatters change: whitespace, quotes, brackets, commas, line continuations.
_FORMATTING = b" \t\r\n'\"(),\\"
#: From ``#`` to the end of the line: a comment, or the rest of a string holding ``#``.
_HASH_TO_EOL = re.compile(rb"#[^\n]*")


def _alike(a: bytes, b: bytes, key: Callable[[bytes], object], comments: bool = True) -> bool:
    """``key(a) == key(b)``, or (``comments``) the same once everything from ``#`` to the
    end of a line is cut from both. That cut can also take the end of a string holding
    ``#``, so it is only ever a second try: a test that must hold for equal ASTs stays
    one."""
    if key(a) == key(b):
        return True
    if not comments or (b"#" not in a and b"#" not in b):
        return False
    return key(_HASH_TO_EOL.sub(b"", a)) == key(_HASH_TO_EOL.sub(b"", b))


def _without_formatting(text: bytes) -> bytes:
    return text.translate(None, _FORMATTING)


def _may_be_reformat(a: bytes, b: bytes, comments: bool = True) -> bool:
    """A necessary condition for equal ASTs: equal once what formatters change is removed,
    or also comments (a formatter dropping ``# noqa`` that a longer line limit made
    unneeded); ``comments=False``: comments count (``label.ignore_comments`` off)."""
    return _alike(a, b, _without_formatting, comments)


def is_python_path(path: str) -> bool:
    """A path whose changes :func:`cosmetic_change` can judge (``.py``, ``.pyi``)."""
    return PurePosixPath(path).suffix.lower() in (".py", ".pyi")


def cosmetic_change(
    before: bytes,
    after: bytes,
    *,
    reformat: bool = True,
    annotations: bool = True,
    exact: bool = True,
    hunks: Sequence[Hunk] | None = None,
    comments: bool = True,
) -> str | None:
    """:data:`FORMAT` when two versions of a Python file have the same AST (checked when
    ``reformat``), :data:`ANNOTATIONS` when they differ only in type annotations (checked
    when ``annotations``), else None. SZZ looks through such a change of a file
    (``label.skip_cosmetic_commits``, ``label.skip_annotation_commits``): it can never
    be blamed for the file's lines. ``exact=False`` judges annotations on the statements
    around the change (its ``hunks``, when known) where it can
    (:func:`_looks_annotation_only`): what mining uses for every commit of a history,
    while the label stage checks the few it blames exactly. ``comments=False``: a change of
    comments is not a reformat (``label.ignore_comments`` off: comment lines are blamed)."""
    if before == after:
        return None
    # cheap necessary condition first: equal once what formatters change is removed
    if reformat and _may_be_reformat(before, after, comments):
        same = None if exact else _looks_same_ast(before, after, hunks)
        if same is None:
            same = _same_ast(before, after)
        if same:
            return FORMAT
    if not annotations:
        return None
    quick = None if exact else _looks_annotation_only(before, after, hunks)
    if quick is None:
        quick = _same_without_annotations(before, after)
    return ANNOTATIONS if quick else None


#: Clauses that continue a compound statement (they belong to the statement above).
_CONTINUES = (b"else", b"elif", b"except", b"finally", b"case")
#: An enclosing line that makes type checkers the only readers of a block.
_ENCLOSING_TYPING = re.compile(
    rb"^\s*(?:if\s+(?:\w+\.)?TYPE_CHECKING\s*:|@\s*(?:\w+\.)*overload\s*$)"
)


def _indent(line: bytes) -> int | None:
    """Leading spaces and tabs of a line that holds a statement; None for a blank or
    comment line, or one that closes a bracket (it belongs to the line above)."""
    body = line.lstrip(b" \t")
    if body[:1] in (b"", b"\r", b"\n", b"#", b")", b"]", b"}"):
        return None
    return len(line) - len(body)


def _level(lines: list[bytes]) -> int:
    return min((i for i in map(_indent, lines) if i is not None), default=0)


def _statement_bounds(lines: list[bytes], first: int, last: int, widen: int = 0) -> tuple[int, int]:
    """[s, e): the whole statements holding ``lines[first : last + 1]``, found by
    indentation: up to a line as little indented as any of them that begins a statement
    (decorators included; a line after one ending in an open bracket, a comma or a
    backslash continues it), down to the next such line; ``widen`` blocks further out."""
    if not lines:
        return 0, 0
    first = min(first, len(lines) - 1)  # an insertion at the end: the last statement
    last = min(max(last, first), len(lines) - 1)
    level = _level(lines[first : last + 1])

    def opens(k: int) -> bool:
        i = _indent(lines[k])
        if i is None or i > level or lines[k][i:].startswith(_CONTINUES):
            return False
        j = k - 1
        while j >= 0 and _indent(lines[j]) is None:
            j -= 1
        return j < 0 or not lines[j].rstrip().endswith((b"(", b"[", b"{", b",", b"\\"))

    s, e = first, last + 1
    while True:
        while s > 0 and not opens(s):
            s -= 1
        while s > 0 and lines[s - 1].lstrip(b" \t").startswith(b"@"):
            s -= 1
        inner = _level(lines[s:e])
        if inner < level:
            level = inner  # the statement began further out: widen to it
        elif widen > 0 and level > 0:
            widen -= 1
            level -= 1  # the block around: the next line out that begins a statement
        else:
            break
    while e < len(lines) and not opens(e):
        e += 1
    return s, e


def _context(lines: list[bytes], s: int) -> bytes | None:
    """The header of the block line ``s`` is in (b"" at the top level), or None inside
    ``if TYPE_CHECKING:`` or an ``@overload`` stub, which type checkers alone read."""
    level = (_indent(lines[s]) or 0) if s < len(lines) else 0
    outer, header = level, None
    attached = False  # the lines just above the last header found: its decorators
    for k in range(s - 1, -1, -1):
        i = _indent(lines[k])
        if i is None or i > outer:
            continue
        decorator = lines[k][i:].startswith(b"@")
        if i == outer:
            if decorator and attached:
                if _ENCLOSING_TYPING.search(lines[k]):
                    return None
                continue
            attached = False  # a statement before: earlier decorators are a sibling's
            if outer == 0:
                break  # a statement before the enclosing one at the top
            continue
        if decorator:
            continue
        if _ENCLOSING_TYPING.search(lines[k]):
            return None
        outer, attached = i, True  # the enclosing header
        header = lines[k][i:] if header is None else header
    return header or b""


def _first_indent(lines: list[bytes]) -> int:
    """The indentation of the first statement among ``lines``."""
    return next((i for i in map(_indent, lines) if i is not None), 0)


def _dedented(lines: list[bytes], class_body: bool) -> bytes:
    cut = _first_indent(lines)
    body = [x[cut:] if x[:cut].strip() == b"" else x for x in lines]
    if class_body:  # annotated names of a class body are fields: keep that reading
        return b"class _:\n" + b"".join(b"    " + x if x.strip() else x for x in body)
    return b"".join(body)


#: A diff hunk as ``git diff -U0`` heads it: (old start, old count, new start, new count).
Hunk = tuple[int, int, int, int]


def _hunk_lines(h: Hunk) -> tuple[int, int, int, int]:
    """0-based (first, last) line indexes of a hunk in the old and the new version
    (last = first - 1 for none: an insertion or deletion before line ``first``)."""
    os_, oc, ns, nc = h
    fa = os_ - 1 if oc else os_
    fb = ns - 1 if nc else ns
    return fa, fa + oc - 1, fb, fb + nc - 1


def _mapped(k: int, spans: list[tuple[int, int, int, int]], end: bool = False) -> int:
    """Line index ``k`` of the old version in the new one (through ``spans``, the hunks as
    :func:`_hunk_lines` gives them, in order): a shared line moves by the lines the
    hunks before it added or removed; the first line of a hunk (or the line lines were
    inserted before) goes to the hunk's start, so a range from it holds the hunk and a
    range ending before it does not; a line further inside a hunk goes to the hunk's
    start (its end, for the exclusive ``end`` of a range)."""
    shift = 0
    for fa, ta, fb, tb in spans:
        if k < fa:
            break
        if k == fa:
            return fb
        if k <= ta:
            return tb + 1 if end else fb
        shift = tb - ta
    return k + shift


def _regions(
    la: list[bytes], lb: list[bytes], hunks: Sequence[Hunk], widen: int
) -> list[tuple[int, int, int, int]]:
    """Per group of nearby hunks, [sa, ea) of ``la`` and the matching [sb, eb) of ``lb``:
    the whole statements around them on either side (:func:`_statement_bounds`); groups
    whose statements overlap or meet are merged."""
    spans = sorted(_hunk_lines(h) for h in hunks)
    back = [(fb, tb, fa, ta) for fa, ta, fb, tb in spans]  # new -> old
    groups = [(fa, max(ta, fa), fb, max(tb, fb)) for fa, ta, fb, tb in spans]
    while True:
        out = []
        for fa, ta, fb, tb in groups:
            sa, ea = _statement_bounds(la, fa, ta, widen)
            sb, eb = _statement_bounds(lb, fb, tb, widen)
            # the statements either version needs, in the old version's lines
            out.append((min(sa, _mapped(sb, back)), max(ea, _mapped(eb, back, end=True))))
        merged: list[list[int]] = []
        for s_, e_ in sorted(out):
            if merged and s_ <= merged[-1][1]:  # adjacent too: a hunk at the seam
                merged[-1][1] = max(merged[-1][1], e_)
            else:
                merged.append([s_, e_])
        regions = [
            (
                max(s_, 0),
                min(e_, len(la)),
                max(_mapped(s_, spans), 0),
                len(lb) if e_ >= len(la) else min(_mapped(e_, spans, end=True), len(lb)),
            )
            for s_, e_ in merged
        ]
        if len(regions) == len(groups):
            return regions
        # merged groups: the statements around each again
        groups = [(sa, max(ea - 1, sa), sb, max(eb - 1, sb)) for sa, ea, sb, eb in regions]


def _statements_around(
    a: bytes, b: bytes, hunks: Sequence[Hunk], widen: int = 0
) -> tuple[list[tuple[bytes, bytes]], bool] | None:
    """The whole statements of ``a`` and of ``b`` around each group of hunks (``widen``
    blocks further out), but those inside ``if TYPE_CHECKING:`` or an ``@overload`` stub
    (the stripping removes them whole: the flag says some were left out); None where
    that guess cannot be trusted (see :func:`_looks_annotation_only`)."""
    la, lb = a.splitlines(keepends=True), b.splitlines(keepends=True)
    out, skipped = [], False
    for sa, ea, sb, eb in _regions(la, lb, hunks, widen):
        head = b"".join(la[:sa])
        if head.count(b'"""') % 2 or head.count(b"'''") % 2:
            return None  # inside a triple-quoted string
        ctx = _context(la, sa)
        if ctx is None:
            skipped = True  # in a block the stripping removes whole: it changes nothing
            continue
        in_class = ctx.startswith(b"class")
        pa, pb = la[sa:ea], lb[sb:eb]
        if _first_indent(pa) != _first_indent(pb) and any(
            b'"""' in x or b"'''" in x for x in (*pa, *pb)
        ):
            return None  # dedenting by different amounts would change a multi-line string
        out.append((_dedented(pa, in_class), _dedented(pb, in_class)))
    return out, skipped


def _hunks_of(a: bytes, b: bytes) -> list[Hunk]:
    """One hunk: the lines two versions do not share at the start and at the end."""
    start, end_a, end_b = _differing_span(a, b)
    first = a.count(b"\n", 0, start)
    oc = a.count(b"\n", start, end_a) + 1 if end_a > start else 0
    nc = b.count(b"\n", start, end_b) + 1 if end_b > start else 0
    return [(first + 1 if oc else first, oc, first + 1 if nc else first, nc)]


#: How a file can name ``typing.cast``: ``from typing import cast [as c]`` (on one line
#: or in brackets over several), ``import typing [as t]`` (then ``t.cast``).
_CAST_IMPORT = re.compile(
    rb"^[ \t]*from[ \t]+(?:typing|typing_extensions)[ \t]+import[ \t]*"
    rb"(?:\([^)]*?|[^\n(]*?)\bcast\b(?:[ \t]+as[ \t]+(\w+))?",
    re.M,
)
_TYPING_IMPORT = re.compile(rb"^\s*import\s+(?:typing|typing_extensions)(?:\s+as\s+(\w+))?", re.M)


def _stripper(whole: bytes) -> _StripAnnotations:
    """A :class:`_StripAnnotations` that knows the file's names of ``typing.cast`` (read
    from its import lines)."""
    st = _StripAnnotations()
    for m in _CAST_IMPORT.finditer(whole):
        st.casts.add((m.group(1) or b"cast").decode())
    for m in _TYPING_IMPORT.finditer(whole):
        st.typing_modules.add((m.group(1) or b"typing").decode())
    st.typing_modules.update(("typing", "typing_extensions"))
    return st


def _stripped_statements(
    text: bytes, whole: bytes, used: set[str] | None = None
) -> tuple[list[str], list[str]]:
    """The statements of ``text`` (a part of ``whole``) as :class:`_StripAnnotations`
    leaves them: (imports, the others). Which typing imports stay depends on the whole
    file: with the names it ``used`` once stripped, the others go."""
    imports, others = [], []
    stripper = _stripper(whole) if b"cast" in text else _StripAnnotations()
    tree = stripper.visit(_parse(text))
    if used is not None:
        tree = _UnusedTypingImports(used).visit(tree)
    for node in tree.body:
        (imports if isinstance(node, ast.Import | ast.ImportFrom) else others).append(
            ast.dump(node)
        )
    return imports, others


def _typing_import(dumped: str) -> bool:
    """Is this (dumped) import statement one from a typing module, or ``from __future__
    import annotations``?"""
    if dumped.startswith("ImportFrom("):
        if "module='__future__'" in dumped:  # only "annotations" is for type checkers
            return set(re.findall(r"alias\(name='([^']*)'", dumped)) == {"annotations"}
        return any(f"module='{m}'" in dumped for m in _TYPING_MODULES)
    return all(name in _TYPING_MODULES for name in re.findall(r"alias\(name='([^']*)'", dumped))


def _raw_statements(text: bytes) -> list[str]:
    return [ast.dump(node) for node in _parse(text).body]


def _same_words(da: bytes, db: bytes) -> bool:
    """The lines two versions do not share hold the same operators and keywords (also
    when counted without comments, which neither a reformat nor annotations read)."""
    return _alike(da, db, lambda t: collections.Counter(_NOT_ANNOTATION.findall(t)))


def _same_without_annotations(a: bytes, b: bytes) -> bool:
    """Do two versions of a Python file differ, but only in what type checkers read?
    (Equal ASTs are a reformat, not an annotation change.)"""
    # the shared lines hold the same tokens: count them in the lines that differ
    if not _same_words(*_differing_lines(a, b)):
        return False
    try:
        sa = _StripAnnotations().strip(_parse(a))
        sb = _StripAnnotations().strip(_parse(b))
        if len(sa.body) != len(sb.body) or any(
            ast.dump(x) != ast.dump(y) for x, y in zip(sa.body, sb.body, strict=True)
        ):
            return False  # (the usual answer: stops at the first statement that differs)
        return ast.dump(_parse(a)) != ast.dump(_parse(b))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False


def _looks_same_ast(a: bytes, b: bytes, hunks: Sequence[Hunk] | None = None) -> bool | None:
    """:func:`_same_ast` judged on the statements around the lines that changed (as
    :func:`_looks_annotation_only`); None when they cannot be told apart."""
    hunks = list(hunks) if hunks else _hunks_of(a, b)
    for widen in range(4):
        got = _statements_around(a, b, hunks, widen)
        if got is None or got[1]:
            return None
        try:
            return all(_raw_statements(pa) == _raw_statements(pb) for pa, pb in got[0])
        except SyntaxError:
            continue
        except (ValueError, RecursionError, MemoryError):
            return None
    return None


def _looks_annotation_only(a: bytes, b: bytes, hunks: Sequence[Hunk] | None = None) -> bool | None:
    """:func:`_same_without_annotations` judged on the statements around the lines that
    changed (``hunks`` of ``git diff -U0``; else the one span the versions do not share)
    instead of both whole files: a mined history has thousands of candidates, and
    parsing mypy's files whole took minutes. None when those statements cannot be told
    apart from their context (inside a string, a ``TYPE_CHECKING`` block or an
    ``@overload`` stub, or they do not parse). Only where a typing import changed is the
    new version parsed whole, to ask whether the file still uses its names at run time.
    """
    if not _same_words(*_differing_lines(a, b)):
        return False
    hunks = list(hunks) if hunks else _hunks_of(a, b)
    for widen in range(4):  # the innermost statements, else the blocks around them
        got = _statements_around(a, b, hunks, widen)
        if got is None:
            return None
        around, changed = got
        try:
            parts = [
                (_stripped_statements(pa, a), _stripped_statements(pb, b)) for pa, pb in around
            ]
            break
        except SyntaxError:  # a guessed boundary cut a statement
            continue
        except (ValueError, RecursionError, MemoryError):
            return None
    else:
        return None
    typing_changed = []
    for k, (((imports_a, rest_a), (imports_b, rest_b)), (pa, pb)) in enumerate(
        zip(parts, around, strict=True)
    ):
        if rest_a != rest_b:
            return False
        # other imports stay whatever the annotations: a change of them is a change
        if [d for d in imports_a if not _typing_import(d)] != [
            d for d in imports_b if not _typing_import(d)
        ]:
            return False
        if imports_a != imports_b:
            typing_changed.append(k)
        try:
            changed = changed or _raw_statements(pa) != _raw_statements(pb)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
    if typing_changed:
        # a changed typing import stays if the file uses its names at run time
        # (``NamedTuple``, a base class, an alias): asked of the whole new version once
        # (the old one uses the same names: the statements around the hunks are equal
        # once stripped, and the rest of the file is the same text)
        try:
            used = _stripper(b).used_names(_parse(b))
            for k in typing_changed:
                pa, pb = around[k]
                if _stripped_statements(pa, a, used)[0] != _stripped_statements(pb, b, used)[0]:
                    return False
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
    return changed


# -- blame ------------------------------------------------------------------------------


def ranges(lines: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted line numbers -> inclusive (start, end) runs."""
    out: list[tuple[int, int]] = []
    for n in sorted(set(lines)):
        if out and n == out[-1][1] + 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def blame_argv(
    parent: str,
    path: str,
    line_ranges: list[tuple[int, int]],
    *,
    ignore_whitespace: bool,
    copy_detection: bool,
    ignore_revs_file: str | None,
    ignore_revs: Iterable[str] = (),
) -> list[str]:
    argv = ["-c", "blame.ignoreRevsFile=", "blame", "--porcelain", "-M"]
    if ignore_whitespace:
        argv.append("-w")
    if copy_detection:
        argv.append("-C")
    if ignore_revs_file:
        argv += ["--ignore-revs-file", ignore_revs_file]
    for rev in ignore_revs:
        argv += ["--ignore-rev", rev]
    for a, b in line_ranges:
        argv += ["-L", f"{a},{b}"]
    return [*argv, parent, "--", path]


def parse_porcelain(data: bytes) -> list[tuple[str, str, int, bytes]]:
    """``git blame --porcelain`` -> (commit, path in that commit, final line, text) per line."""
    out = []
    names: dict[str, str] = {}
    sha = ""
    final = 0
    for line in data.split(b"\n"):
        if line.startswith(b"\t"):
            out.append((sha, names.get(sha, ""), final, line[1:]))
            continue
        parts = line.split(b" ")
        if len(parts) >= 3 and len(parts[0]) in (40, 64) and parts[1].isdigit():
            sha = parts[0].decode()
            final = int(parts[2])
        elif line.startswith(b"filename "):
            names[sha] = _unquote(line[9:])
    return out


@dataclass(frozen=True)
class BlameSettings:
    ignore_whitespace: bool = True
    ignore_comments: bool = True
    copy_detection: bool = False
    extensions: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    source_only: bool = True
    skip_cosmetic_commits: bool = True
    skip_annotation_commits: bool = True


@dataclass(frozen=True)
class FixJob:
    sha: str
    ignore_revs_file: str | None = None


@dataclass
class FixBlame:
    """What blaming one fix found: per (inducing commit, path) the blamed line count and texts."""

    sha: str
    considered: int = 0
    """Deleted or changed source lines blamed (after the cosmetic filter)."""
    cosmetic: int = 0
    """Deleted source lines left out as blank, comment or docstring."""
    links: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    fix_paths: dict[tuple[str, str], str] = field(default_factory=dict)
    """Per (inducing commit, path): the fix's file whose lines were blamed (its path in the
    fix's parent; ``path`` is the file's name in the inducing commit)."""


def _decode(b: bytes) -> str:
    return b.decode("utf-8", "replace")


class Blamer:
    """Blames fixes in one process: a ``git log -p`` per batch, a ``git blame`` per file."""

    def __init__(self, repo: GitRepo, settings: BlameSettings) -> None:
        self.repo = repo
        self.settings = settings
        self.is_source = SourceFilter.of(settings.extensions, settings.exclude)
        self.cat = CatFile(repo)
        self._ast_cache: dict[tuple[str, str], bool] = {}

    def close(self) -> None:
        self.cat.close()

    def patches(self, shas: list[str]) -> dict[str, list[FileDiff]]:
        """Diff hunks of ``shas``; one git process, or one per fix when that fails (a
        fix whose objects are missing from the repository then has no hunks)."""
        argv = log_patch_argv(self.settings.ignore_whitespace)
        try:
            return parse_patches(self.repo.run(*argv, input=("\n".join(shas) + "\n").encode()))
        except GitCommandError:
            if len(shas) == 1:
                return {}
        out: dict[str, list[FileDiff]] = {}
        for sha in shas:
            out.update(self.patches([sha]))
        return out

    def blame_fix(self, job: FixJob, files: list[FileDiff]) -> FixBlame:
        res = FixBlame(job.sha)
        for f in files:
            if self.settings.source_only and not self.is_source(f.old_path):
                continue
            lines = f.deleted
            if self.settings.ignore_comments:
                old = self.cat.read(f.old_blob) if f.old_blob else None
                drop = cosmetic_lines(f.old_path, old, f.deleted, f.texts)
                res.cosmetic += len(drop)
                lines = [n for n in f.deleted if n not in drop]
            if not lines:
                continue
            res.considered += len(lines)
            blamed = self._blame(job, f.old_path, lines)
            if blamed is None:
                continue
            for sha, path, _final, text in blamed:
                key = (sha, path or f.old_path)
                res.counts[key] = res.counts.get(key, 0) + 1
                res.fix_paths.setdefault(key, f.old_path)
                sample = res.links.setdefault(key, [])
                if len(sample) < SAMPLE_LINES:
                    sample.append(_decode(text))
        return res

    def _blame(
        self, job: FixJob, path: str, lines: list[int]
    ) -> list[tuple[str, str, int, bytes]] | None:
        """Blame ``lines`` of ``path`` in the fix's parent; with ``skip_cosmetic_commits``
        (``skip_annotation_commits``), commits that left a Python file's AST unchanged (that
        changed only its type annotations) are looked through (``--ignore-rev``)."""
        wanted = set(lines)
        skip: list[str] = []
        for _ in range(4):
            argv = blame_argv(
                f"{job.sha}^",
                path,
                ranges(lines),
                ignore_whitespace=self.settings.ignore_whitespace,
                copy_detection=self.settings.copy_detection,
                ignore_revs_file=job.ignore_revs_file,
                ignore_revs=skip,
            )
            try:
                out = self.repo.run(*argv)
            except GitCommandError:
                # e.g. a path git cannot blame (submodule, missing objects): skip the file
                return None
            blamed = [b for b in parse_porcelain(out) if b[2] in wanted]
            if not (self.settings.skip_cosmetic_commits or self.settings.skip_annotation_commits):
                return blamed
            more = [
                sha
                for sha, p in dict.fromkeys((b[0], b[1] or path) for b in blamed)
                if sha not in skip and self._look_through(sha, p)
            ]
            if not more:
                return blamed
            skip += more
        return blamed

    def _look_through(self, sha: str, path: str) -> bool:
        """Did commit ``sha`` only reformat Python file ``path`` (same AST), or only change
        its type annotations? Each check runs only when its setting is on."""
        key = (sha, path)
        hit = self._ast_cache.get(key)
        if hit is not None:
            return hit
        same = False
        if is_python_path(path):
            after = self.cat.read(f"{sha}:{path}")
            before = self.cat.read(f"{sha}^:{path}")
            if after is not None and before is not None:
                same = (
                    cosmetic_change(
                        before,
                        after,
                        reformat=self.settings.skip_cosmetic_commits,
                        annotations=self.settings.skip_annotation_commits,
                        comments=self.settings.ignore_comments,
                    )
                    is not None
                )
        self._ast_cache[key] = same
        return same

    def run(self, jobs: list[FixJob]) -> list[FixBlame]:
        patches = self.patches([j.sha for j in jobs])
        return [self.blame_fix(j, patches.get(j.sha, [])) for j in jobs]


# -- worker processes --------------------------------------------------------------------
#
# Each worker leads its own process group, which its git children join: stopping a
# worker kills the group (os.killpg), so no git blame or cat-file outlives it. A
# terminal's Ctrl-C reaches the main process only; the main process decides when the
# workers stop (at once on an interruption: their unfinished chunks are blamed again
# by the next run). On Linux a worker also stops when the main process dies, even
# by SIGKILL (PR_SET_PDEATHSIG).


def _kill_own_group(signum: int, frame: object) -> None:
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _die_with_parent(parent: int) -> None:
    if sys.platform != "linux":
        return
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl
        os.killpg(os.getpgrp(), signal.SIGKILL)


def _worker_main(
    conn: Connection, parent: int, path: str, git_dir: str, bare: bool, settings: BlameSettings
) -> None:
    """Blame the chunks the main process sends until it sends None (or goes away)."""
    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)
        signal.signal(signal.SIGTERM, _kill_own_group)
        _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    blamer = Blamer(GitRepo(Path(path), Path(git_dir), bare), settings)
    try:
        while True:
            try:
                jobs = conn.recv()
            except EOFError:
                return
            if jobs is None:
                return
            try:
                reply: tuple[str, object] = ("ok", blamer.run(jobs))
            except Exception as err:
                reply = ("error", err)
            try:
                conn.send(reply)
            except Exception as err:  # an exception that does not pickle
                conn.send(("error", GitCommandError(f"blame worker failed: {err!r}")))
    finally:
        blamer.close()


class _Workers:
    """``n`` blame worker processes fed one chunk at a time over a pipe each."""

    def __init__(self, repo: GitRepo, settings: BlameSettings, n: int) -> None:
        import multiprocessing

        # fork: workers start at once, without importing diffrisk again
        ctx = multiprocessing.get_context("fork" if hasattr(os, "fork") else None)
        self.procs: list[BaseProcess] = []
        self.conns: list[Connection] = []
        try:
            for _ in range(n):
                here, there = ctx.Pipe()
                proc = ctx.Process(
                    target=_worker_main,
                    args=(
                        there,
                        os.getpid(),
                        str(repo.path),
                        str(repo.git_dir),
                        repo.bare,
                        settings,
                    ),
                    daemon=True,
                )
                proc.start()
                there.close()
                if hasattr(os, "setpgid"):  # also here: killpg must find the group at once
                    with contextlib.suppress(OSError):
                        os.setpgid(proc.pid, proc.pid)
                self.procs.append(proc)
                self.conns.append(here)
        except BaseException:
            self.kill()
            raise

    def run(self, chunks: list[list[FixJob]]) -> Iterator[list[FixBlame]]:
        """Results chunk by chunk, in the order they finish."""
        from multiprocessing.connection import wait

        todo = collections.deque(chunks)
        busy: dict[Connection, int] = {}  # pipe -> worker, while it blames a chunk

        def feed(i: int) -> None:
            if todo:
                try:
                    self.conns[i].send(todo.popleft())
                except OSError:
                    self._died(i)
                busy[self.conns[i]] = i

        for i in range(len(self.conns)):
            feed(i)
        while busy:
            sentinels = {self.procs[i].sentinel: i for i in busy.values()}
            for ready in wait([*busy, *sentinels]):
                if ready in sentinels:
                    i = sentinels[ready]
                    if self.conns[i] in busy and not self.conns[i].poll():
                        self._died(i)
                    continue  # its last reply is read first
                if ready not in busy:
                    continue
                i = busy.pop(ready)  # type: ignore[call-overload]
                try:
                    status, value = ready.recv()  # type: ignore[union-attr]
                except EOFError:
                    self._died(i)
                if status == "error":
                    raise value
                feed(i)
                yield value

    def _died(self, i: int) -> NoReturn:
        proc = self.procs[i]
        proc.join(1)
        raise GitCommandError(
            f"a blame worker process died (exit code {proc.exitcode})",
            hint="run `diffrisk label` again: the fixes blamed so far are kept",
        )

    def stop(self) -> None:
        """Let idle workers finish (close their cat-file) and exit."""
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send(None)
        for proc in self.procs:
            proc.join(10)
        self.kill()

    def kill(self) -> None:
        """Kill every worker with its git children (immediately; idempotent)."""
        for proc in self.procs:
            if proc.pid is None or proc.exitcode == 0:  # never started, or stopped cleanly
                continue
            try:  # also when it died: git children it left keep its group
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            except (OSError, AttributeError):  # not a group leader yet, or Windows
                if proc.exitcode is None:
                    proc.kill()
        for proc in self.procs:
            if proc.pid is not None:
                proc.join()
        for conn in self.conns:
            conn.close()
        self.conns = []
        self.procs = []


def blame_fixes(
    repo: GitRepo,
    jobs: list[FixJob],
    settings: BlameSettings,
    workers: int = 1,
    chunk: int = 16,
    on_done: Callable[[int], None] | None = None,
) -> Iterator[FixBlame]:
    """Blame every job, in ``workers`` processes; yields results as chunks finish.

    Closing the generator early (an interruption, an error) stops the workers and their
    git processes at once; use it with ``contextlib.closing``.
    """
    chunks = [jobs[i : i + chunk] for i in range(0, len(jobs), chunk)]
    if workers <= 1 or len(chunks) <= 1:
        b = Blamer(repo, settings)
        try:
            for c in chunks:
                yield from b.run(c)
                if on_done:
                    on_done(len(c))
        finally:
            b.close()
        return
    pool = _Workers(repo, settings, min(workers, len(chunks)))
    finished = False
    try:
        for results in pool.run(chunks):
            yield from results
            if on_done:
                on_done(len(results))
        finished = True
    finally:
        if finished:
            pool.stop()
        else:
            pool.kill()


# -- .git-blame-ignore-revs ------------------------------------------------------------

_HEX = re.compile(r"^[0-9a-fA-F]{7,64}$")


class IgnoreRevs:
    """Materialises the ``.git-blame-ignore-revs`` of fix parents as temporary files.

    One file per distinct blob; entries that are not commits of this repository are
    dropped (git blame refuses an unknown revision).
    """

    NAME = ".git-blame-ignore-revs"

    def __init__(self, repo: GitRepo) -> None:
        self.repo = repo
        self._tmp = tempfile.TemporaryDirectory(prefix="diffrisk-ignore-revs-")
        self._by_blob: dict[str, str | None] = {}

    def close(self) -> None:
        self._tmp.cleanup()

    def files_for(self, shas: list[str]) -> dict[str, str | None]:
        """fix sha -> path of its parent's ignore-revs file (None when it has none)."""
        if not shas:
            return {}
        query = "".join(f"{s}^:{self.NAME}\n" for s in shas).encode()
        out = self.repo.run(
            "cat-file", "--batch-check=%(objectname) %(objecttype)", input=query, check=False
        )
        lines = out.decode("utf-8", "replace").splitlines()
        res: dict[str, str | None] = {}
        blobs = []
        for sha, line in zip(shas, lines, strict=False):
            parts = line.split()
            if len(parts) == 2 and parts[1] == "blob":
                res[sha] = parts[0]
                blobs.append(parts[0])
            else:
                res[sha] = None
        for blob in dict.fromkeys(blobs):
            if blob not in self._by_blob:
                self._by_blob[blob] = self._materialize(blob)
        return {sha: (self._by_blob[b] if b else None) for sha, b in res.items()}

    def _materialize(self, blob: str) -> str | None:
        text = self.repo.run("cat-file", "blob", blob).decode("utf-8", "replace")
        revs = []
        for line in text.splitlines():
            word = line.split("#", 1)[0].strip()
            if _HEX.match(word):
                revs.append(word)
        if not revs:
            return None
        query = "".join(f"{r}^{{commit}}\n" for r in revs).encode()
        out = self.repo.run(
            "cat-file", "--batch-check=%(objectname) %(objecttype)", input=query, check=False
        )
        ok = [p.split()[0] for p in out.decode().splitlines() if p.endswith(" commit")]
        if not ok:
            return None
        path = Path(self._tmp.name) / f"{blob}.txt"
        path.write_text("\n".join(ok) + "\n")
        return str(path)
