"""Code metrics of source blobs, computed once per blob and cached by blob id.

Python (``.py``, ``.pyi``) is measured with radon, every other language lizard reads
(Java, C/C++, C#, JavaScript/TypeScript, Go, Rust, Ruby, PHP, Swift, Kotlin, Scala, Lua,
...: :data:`LIZARD_EXTENSIONS`) with lizard; :func:`metric_language` says which a path
gets. The measures mean the same in both (see :func:`analyze_lizard` for lizard's):

A Python blob is parsed once with :func:`ast.parse`; radon's visitors then run on that tree:

- ``cc``: total cyclomatic complexity (``ComplexityVisitor.total_complexity``),
- ``hv``: Halstead volume (``h_visit_ast(...).total.volume``),
- ``mi``: maintainability index with radon's ``mi_compute`` formula, its inputs taken from
  the same parse (logical lines = statements in the tree; comment share = ``#`` comment
  lines and docstring lines over non-blank lines) instead of radon's tokenizer pass,
  which costs more than everything else together,
- ``functions``: (qualified name, complexity, hash of the source text) per function and
  method, so a change can tell which functions it added or modified without a diff.

Source that does not parse as Python 3 (Python 2, syntax errors, NUL bytes) gets
``ok = False`` and no metrics; the commit is still mined.

Radon stays for Python rather than lizard for every language: the models trained with
``train.code_metrics`` (and scoring, which measures a change's own Python files) read
radon's values, radon's complexity counts what lizard's Python reader does not
(comprehensions, boolean operators in every position: the two differ on 27 of the 867
functions of this package), and its maintainability index and Halstead volume come from
the syntax tree, where lizard has only tokens; lizard is no faster on Python (0.93 s
against radon's 1.20 s for this package's 0.86 MB, one core).
"""

from __future__ import annotations

import ast
import functools
import gc
import math
import multiprocessing
import os
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import PurePosixPath
from typing import Any

from radon.metrics import h_visit_ast, mi_compute
from radon.visitors import ComplexityVisitor

from diffrisk.data.schema import BlobMetrics

MAX_BLOB_BYTES = 2_000_000  # larger "source" is generated or vendored; not worth parsing

#: File endings measured with radon.
PYTHON_METRIC_EXTENSIONS = frozenset({".py", ".pyi"})
PYTHON = "python"

#: Languages measured with lizard: name -> (file endings, the ending lizard picks its
#: reader by). Every language lizard 1.17+ reads except Python (radon's) and two of
#: little use here (TTCN-3, Structured Text).
LIZARD_LANGUAGES: dict[str, tuple[tuple[str, ...], str]] = {
    "c": ((".c", ".h"), "c"),
    "cpp": ((".cc", ".cpp", ".cxx", ".c++", ".hh", ".hpp", ".hxx", ".h++"), "cpp"),
    "objectivec": ((".m", ".mm"), "m"),
    "java": ((".java",), "java"),
    "csharp": ((".cs",), "cs"),
    "javascript": ((".js", ".cjs", ".mjs"), "js"),
    "jsx": ((".jsx",), "jsx"),
    "typescript": ((".ts", ".mts", ".cts"), "ts"),
    "tsx": ((".tsx",), "tsx"),
    "vue": ((".vue",), "vue"),
    "go": ((".go",), "go"),
    "rust": ((".rs",), "rs"),
    "ruby": ((".rb",), "rb"),
    "php": ((".php",), "php"),
    "swift": ((".swift",), "swift"),
    "kotlin": ((".kt", ".kts"), "kt"),
    "scala": ((".scala",), "scala"),
    "lua": ((".lua",), "lua"),
    "perl": ((".pl", ".pm"), "pl"),
    "r": ((".r",), "r"),
    "erlang": ((".erl", ".hrl"), "erl"),
    "fortran": ((".f", ".for", ".f90", ".f95", ".f03", ".f08"), "f90"),
    "solidity": ((".sol",), "sol"),
    "zig": ((".zig",), "zig"),
    "gdscript": ((".gd",), "gd"),
    "plsql": ((".sql", ".pks", ".pkb", ".pls", ".plb", ".pck"), "sql"),
}
#: File ending (lower case) -> (language, the ending lizard reads it by).
LIZARD_EXTENSIONS: dict[str, tuple[str, str]] = {
    ext: (lang, reader) for lang, (exts, reader) in LIZARD_LANGUAGES.items() for ext in exts
}


def metric_language(path: str) -> str | None:
    """The language whose code metrics ``path`` gets (``python``: radon; the others:
    lizard), by its ending in any case; None when it gets none."""
    ext = PurePosixPath(path).suffix.lower()
    if ext in PYTHON_METRIC_EXTENSIONS:
        return PYTHON
    got = LIZARD_EXTENSIONS.get(ext)
    return got[0] if got is not None else None


def metric_key(path: str) -> str | None:
    """How a blob of ``path`` is measured (the lower-case ending of a measured file, the
    second half of a :func:`compute_blob_metrics` item), or None."""
    ext = PurePosixPath(path).suffix.lower()
    return ext if ext in PYTHON_METRIC_EXTENSIONS or ext in LIZARD_EXTENSIONS else None


FAILED = BlobMetrics(ok=False)


_DOC_OWNERS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


_BODIES = ("body", "orelse", "finalbody", "handlers", "cases")


def docstring_of(node: ast.AST) -> ast.Expr | None:
    """The docstring statement of a module, class or function node, else None."""
    if not isinstance(node, _DOC_OWNERS) or not node.body:
        return None
    first = node.body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return first
    return None


def _statements_and_docstring_lines(tree: ast.AST) -> tuple[int, int]:
    """Logical lines (statements) and docstring lines.

    Statements only live in statement lists (bodies, else/finally blocks, except
    handlers, match cases), so only those are walked, never the expressions."""
    stmts = doc = 0
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.stmt):
            stmts += 1
        first = docstring_of(node)
        if first is not None:
            doc += (first.end_lineno or first.lineno) - first.lineno + 1
        for name in _BODIES:
            sub = getattr(node, name, None)
            if sub:
                stack.extend(sub)
    return stmts, doc


def analyze_source(src: bytes) -> BlobMetrics:
    """Metrics of one Python source blob (bytes: the coding cookie is honoured)."""
    if len(src) > MAX_BLOB_BYTES or b"\0" in src:
        return FAILED
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(src)
        cv = ComplexityVisitor.from_ast(tree)
        hv = float(h_visit_ast(tree).total.volume)
    except (SyntaxError, ValueError, RecursionError, MemoryError, TypeError, AttributeError):
        return FAILED
    try:
        text = src.decode("utf-8")
    except UnicodeDecodeError:
        text = src.decode("latin-1")
    lines = text.splitlines()
    nonblank = [ln.strip() for ln in lines if ln.strip()]
    lloc, doc_lines = _statements_and_docstring_lines(tree)
    comments = sum(1 for ln in nonblank if ln.startswith("#")) + doc_lines
    pct = 100.0 * comments / len(nonblank) if nonblank else 0.0
    cc = float(cv.total_complexity)
    mi = float(mi_compute(hv, cc, lloc, pct)) if lloc else 100.0
    funcs = []
    for block in cv.blocks:
        if not hasattr(block, "is_method"):
            continue  # a class block; its methods are listed on their own
        name = block.fullname
        body = "\n".join(lines[block.lineno - 1 : block.endline])
        funcs.append((name, int(block.complexity), zlib.crc32(body.encode("utf-8", "replace"))))
    return BlobMetrics(ok=True, cc=cc, mi=mi, hv=hv, functions=tuple(funcs))


# -- lizard: every other language ---------------------------------------------------------


@functools.cache
def lizard_version() -> str:
    """The installed lizard's version (mining records it: its counts may change with it)."""
    from importlib.metadata import version

    return version("lizard")


@functools.cache
def _lizard() -> tuple[Any, ...]:
    """lizard's pieces, imported once, on first use (the label stage and the reports
    import this module and need none of them); from the top-level module, which has
    named them since 1.17 (newer releases define them in ``lizard_core``)."""
    import lizard  # type: ignore[import-untyped]

    processors = (
        lizard.comment_counter,
        lizard.line_counter,
        lizard.token_counter,
        lizard.condition_counter,
    )
    return lizard.FileInfoBuilder, lizard.get_reader_for, processors, lizard.preprocessing


class _Vocabulary:
    """A lizard token processor that runs after comments and blank space are dropped:
    the distinct code tokens (Halstead's vocabulary, every token an operator or an
    operand; lizard's ``token_count`` is the length)."""

    __slots__ = ("tokens",)

    def __init__(self) -> None:
        self.tokens: set[str] = set()

    def __call__(self, tokens: Iterable[str], reader: Any) -> Iterator[str]:
        add = self.tokens.add
        for tok in tokens:
            add(tok)
            yield tok


def _decode(src: bytes) -> str:
    """Source text: UTF-8 (a byte-order mark dropped), else Latin-1, which reads any
    8-bit legacy encoding's ASCII code as it is (only its strings and comments differ)."""
    if src.startswith(b"\xef\xbb\xbf"):
        src = src[3:]
    try:
        return src.decode("utf-8")
    except UnicodeDecodeError:
        return src.decode("latin-1")


def analyze_lizard(src: bytes, ext: str) -> BlobMetrics:
    """Metrics of one blob in a language lizard reads (``ext``: its ending, as in
    :data:`LIZARD_EXTENSIONS`), meant as radon's are for Python:

    - ``cc``: the sum of lizard's cyclomatic complexity (CCN: 1 + branches, loops,
      ``case`` labels, ``catch`` clauses, ``&&``/``||`` and ``?:``) over the functions
      and methods, plus the branches of code outside any function;
    - ``hv``: Halstead volume ``N log2 n`` with every code token an operator or operand
      (N tokens, n distinct ones; comments and whitespace are not tokens);
    - ``mi``: radon's ``mi_compute`` of that volume, ``cc``, lizard's lines of code and
      the share of the other non-blank lines (comment-only) among the non-blank ones;
    - ``functions``: (name with parameters, CCN, hash of the source lines) per function.

    Text with NUL bytes (UTF-16 or -32, binary), over :data:`MAX_BLOB_BYTES`, or that
    lizard fails on gets ``ok = False``; text that is not UTF-8 is read as Latin-1.
    """
    got = LIZARD_EXTENSIONS.get(ext)
    if got is None or len(src) > MAX_BLOB_BYTES or b"\0" in src:
        return FAILED
    text = _decode(src)
    builder, reader_for, processors, preprocessing = _lizard()
    name = "blob." + got[1]
    try:
        reader_class = reader_for(name)
        if reader_class is None:  # an older lizard without this language
            return FAILED
        context = builder(name)
        reader = reader_class(context)
        vocabulary = _Vocabulary()
        tokens: Iterable[str] = preprocessing(reader.generate_tokens(text), reader)
        for step in processors:
            tokens = step(tokens, reader)
        for _ in reader(vocabulary(tokens, reader), reader):
            pass
        info = context.fileinfo
        outside = context.global_pseudo_function.cyclomatic_complexity - 1
    except Exception:  # any failure of a third-party parser (RecursionError too): not measured
        return FAILED
    lines = text.split("\n")
    funcs = []
    cc = max(outside, 0)
    for f in info.function_list:
        ccn = int(f.cyclomatic_complexity)
        cc += ccn
        body = "\n".join(lines[max(f.start_line - 1, 0) : f.end_line])
        funcs.append(
            (" ".join(str(f.long_name).split()), ccn, zlib.crc32(body.encode("utf-8", "replace")))
        )
    n = len(vocabulary.tokens)
    hv = int(info.token_count) * math.log2(n) if n > 1 else 0.0
    # lines of code are lizard's; the other non-blank lines hold only comments
    lloc = int(info.nloc)
    nonblank = sum(1 for ln in lines if ln.strip())
    pct = 100.0 * max(nonblank - lloc, 0) / nonblank if nonblank else 0.0
    mi = float(mi_compute(hv, cc, lloc, pct)) if lloc else 100.0
    return BlobMetrics(ok=True, cc=float(cc), mi=mi, hv=float(hv), functions=tuple(funcs))


def measure(src: bytes, key: str | None = None) -> BlobMetrics:
    """Metrics of one blob: ``key`` a measured file ending (:func:`metric_key`); None or
    a Python ending: radon."""
    if key is None or key in PYTHON_METRIC_EXTENSIONS:
        return analyze_source(src)
    return analyze_lizard(src, key)


def touched_max_cc(before: BlobMetrics | None, after: BlobMetrics | None) -> float:
    """Highest complexity among functions the change added or modified (0 if none)."""
    if after is None or not after.ok:
        return 0.0
    old = {(n, h) for n, _, h in before.functions} if before is not None and before.ok else set()
    best = 0
    for name, cc, h in after.functions:
        if (name, h) not in old and cc > best:
            best = cc
    return float(best)


# -- parallel computation ---------------------------------------------------------------

_worker_cat = None


def _init_worker(git_dir: str, root: str) -> None:
    from pathlib import Path

    from diffrisk.git.repo import CatFile, GitRepo

    global _worker_cat
    _worker_cat = CatFile(GitRepo(Path(root), Path(git_dir), bare=False))


#: A blob to measure: its id (Python), or (id, :func:`metric_key` of its path).
BlobItem = str | tuple[str, str]


def _work(items: list[BlobItem]) -> list[tuple[str, BlobMetrics | None]]:
    assert _worker_cat is not None
    out: list[tuple[str, BlobMetrics | None]] = []
    # ASTs are many small objects freed all at once: the cyclic collector only costs time
    thresholds = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        for item in items:
            oid, key = (item, None) if isinstance(item, str) else item
            data = _worker_cat.read(oid)
            out.append((oid, None if data is None else measure(data, key)))
    finally:
        gc.set_threshold(*thresholds)
    return out


def compute_blob_metrics(
    git_dir: str,
    root: str,
    oids: Iterable[BlobItem],
    workers: int | None = None,
    on_done: Callable[[int], None] | None = None,
) -> Iterator[tuple[str, BlobMetrics | None]]:
    """Yield (blob id, metrics) for each blob; None when the blob is missing. A blob is
    named by its id (measured as Python, with radon) or by (id, the lower-case ending of
    its path, :func:`metric_key`), which picks radon or lizard's reader.

    Work is spread over ``workers`` processes (default: all cores), each reading blobs
    through its own ``git cat-file --batch``.
    """
    todo = list(oids)
    if not todo:
        return
    workers = workers or os.cpu_count() or 1
    chunk = 64
    batches = [todo[i : i + chunk] for i in range(0, len(todo), chunk)]
    if workers == 1 or len(todo) < 2 * chunk:
        _init_worker(git_dir, root)
        try:
            for b in batches:
                res = _work(b)
                if on_done:
                    on_done(len(res))
                yield from res
        finally:
            global _worker_cat
            if _worker_cat is not None:
                _worker_cat.close()
                _worker_cat = None
        return
    # fork, as mining and labelling do: a spawned worker would start a new interpreter
    # that imports from the working directory (a pull request's checkout)
    ctx = multiprocessing.get_context("fork") if os.name == "posix" else None
    with ProcessPoolExecutor(
        max_workers=workers, initializer=_init_worker, initargs=(git_dir, root), mp_context=ctx
    ) as pool:
        for res in pool.map(_work, batches):
            if on_done:
                on_done(len(res))
            yield from res
