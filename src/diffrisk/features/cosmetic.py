"""Cosmetic changes of source files: what neither SZZ blames nor mining counts as code.

Two questions, both answered from file contents alone (no git process):

* where a Python file's docstrings are (:func:`python_docstring_lines`), for the lines
  SZZ leaves out of a fix's deleted lines (AG-SZZ;
  :func:`diffrisk.features.codelines.cosmetic_lines`, which knows every language's comments);
* whether a change of a Python file was cosmetic (:func:`cosmetic_change`): a reformat
  (the same AST, :func:`same_ast`) or a change of type annotations only
  (:func:`same_without_annotations`), which SZZ looks through and mining marks. Cheap
  necessary conditions come first (:func:`same_words`); ``exact=False`` judges only the
  statements around the changed lines.
"""

from __future__ import annotations

import ast
import collections
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import PurePosixPath

from diffrisk.features.codemetrics import docstring_of

#: Extensions of files whose comments start with ``#``.
HASH_COMMENT_EXTENSIONS = frozenset(
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
#: Extensions of files whose comments are ``//`` and ``/* */`` (C-like languages).
SLASH_COMMENT_EXTENSIONS = frozenset(
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
#: Python sources: docstrings are looked for in them.
PYTHON_EXTENSIONS = frozenset({".py", ".pyi", ".pyx", ".pxd"})


# -- cosmetic lines (AG-SZZ) ------------------------------------------------------------


def python_docstring_lines(text: str) -> set[int]:
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


def maybe_in_triple_quoted(text: str, line_numbers: list[int]) -> bool:
    """Cheap pre-check before parsing: may any of the lines be in a triple-quoted string?"""
    spans, unclosed = _triple_spans(text)
    return unclosed or any(a <= n <= b for n in line_numbers for a, b in spans)


def comment_marker(path: str) -> bytes | None:
    """What starts a line comment in ``path``'s language (``#``, ``//``), if known."""
    ext = PurePosixPath(path).suffix.lower()
    if ext in HASH_COMMENT_EXTENSIONS:
        return b"#"
    if ext in SLASH_COMMENT_EXTENSIONS:
        return b"//"
    return None


def strip_trailing_comment(text: bytes, marker: bytes) -> bytes:
    """``text`` without a trailing comment: from the last ``marker`` that follows
    whitespace and is outside quotes (an even number of each quote before it)."""
    at = text.rfind(marker)
    while at > 0:
        head = text[:at]
        if head[-1:] in (b" ", b"\t") and head.count(b'"') % 2 == 0 and head.count(b"'") % 2 == 0:
            return head.rstrip()
        at = text.rfind(marker, 0, at)
    return text


#: Lines that only wire code together, never the logic a fix corrects: imports, a
#: module's version and export list. Blamed, they name the commit that added an import.
_INCIDENTAL_PYTHON = re.compile(
    rb"^\s*(?:import\s+[\w., ]+$|from\s+[\w.]+\s+import\s+[\w., ()*]+$|from\s+[\w.]+\s+import\s*\($"
    rb"|__(?:version|all|author|docformat)__\s*[+]?[:=])"
)
_INCIDENTAL_OTHER = re.compile(
    rb"^\s*(?:import\s+(?:static\s+)?[\w.*]+\s*;?\s*$"  # Java, Kotlin, Scala, Go (one line)
    rb"|import\s+[^;]*\bfrom\s+['\"][^'\"]+['\"]\s*;?\s*$"  # JavaScript, TypeScript
    rb"|import\s+['\"][^'\"]+['\"]\s*;?\s*$"
    rb"|#\s*include\s*[<\"][^>\"]+[>\"]\s*$"  # C, C++
    rb"|use\s+[\w:{}, *]+;\s*$"  # Rust, PHP
    rb"|package\s+[\w.]+\s*;?\s*$)"
)


def incidental_lines(path: str, line_numbers: list[int], texts: list[bytes]) -> set[int]:
    """The given deleted lines that are imports, ``#include``s, package lines, or (Python)
    ``__version__``/``__all__`` assignments: a fix that changes them corrects no logic
    they hold."""
    ext = PurePosixPath(path).suffix.lower()
    rule = _INCIDENTAL_PYTHON if ext in PYTHON_EXTENSIONS else _INCIDENTAL_OTHER
    return {no for no, t in zip(line_numbers, texts, strict=True) if rule.match(t.rstrip())}


def same_ast(a: bytes, b: bytes) -> bool:
    """Do two versions of a Python file parse to the same AST (bare strings normalised as
    black compares docstrings)? False when either does not parse."""
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
        body: list[ast.stmt] = []
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
NOT_ANNOTATION = re.compile(
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


def differing_lines(a: bytes, b: bytes) -> tuple[bytes, bytes]:
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


#: Spellings of one number or string prefix that formatters rewrite (black: ``0.`` -> ``0.0``,
#: ``.5`` -> ``0.5``, ``0XFF`` -> ``0xFF``, ``1E5`` -> ``1e5``, ``U"x"`` -> ``"x"``).
_BARE_POINT = re.compile(rb"(?<![\w.])(\d+)\.(?![\w.])")
_LEADING_POINT = re.compile(rb"(?<![\w.)\]])\.(\d)")
_STRING_PREFIX = re.compile(rb"(?<![\w])[uU](?=['\"])")


def _without_formatting(text: bytes) -> bytes:
    # lower-cased: the check is a necessary condition only (equal ASTs decide), and a
    # formatter's case changes (hex digits, exponents, prefixes) must not fail it
    text = _STRING_PREFIX.sub(b"", text)
    text = _BARE_POINT.sub(rb"\1.0", text)
    text = _LEADING_POINT.sub(rb"0.\1", text)
    return text.translate(None, _FORMATTING).lower()


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
            same = same_ast(before, after)
        if same:
            return FORMAT
    if not annotations:
        return None
    quick = None if exact else _looks_annotation_only(before, after, hunks)
    if quick is None:
        quick = same_without_annotations(before, after)
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
    imports: list[str] = []
    others: list[str] = []
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


def same_words(da: bytes, db: bytes) -> bool:
    """The lines two versions do not share hold the same operators and keywords (also
    when counted without comments, which neither a reformat nor annotations read)."""
    return _alike(da, db, lambda t: collections.Counter(NOT_ANNOTATION.findall(t)))


def same_without_annotations(a: bytes, b: bytes) -> bool:
    """Do two versions of a Python file differ, but only in what type checkers read?
    (Equal ASTs are a reformat, not an annotation change.)"""
    # the shared lines hold the same tokens: count them in the lines that differ
    if not same_words(*differing_lines(a, b)):
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
    """:func:`same_ast` judged on the statements around the lines that changed (as
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
    """:func:`same_without_annotations` judged on the statements around the lines that
    changed (``hunks`` of ``git diff -U0``; else the one span the versions do not share)
    instead of both whole files: a mined history has thousands of candidates, and
    parsing mypy's files whole took minutes. None when those statements cannot be told
    apart from their context (inside a string, a ``TYPE_CHECKING`` block or an
    ``@overload`` stub, or they do not parse). Only where a typing import changed is the
    new version parsed whole, to ask whether the file still uses its names at run time.
    """
    if not same_words(*differing_lines(a, b)):
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
