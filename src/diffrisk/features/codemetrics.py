"""Code metrics of Python blobs with radon, computed once per blob and cached by blob id.

Each blob is parsed once with :func:`ast.parse`; radon's visitors then run on that tree:

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
"""

from __future__ import annotations

import ast
import gc
import multiprocessing
import os
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor

from radon.metrics import h_visit_ast, mi_compute
from radon.visitors import ComplexityVisitor

from diffrisk.data.schema import BlobMetrics

MAX_BLOB_BYTES = 2_000_000  # larger "source" is generated or vendored; not worth parsing


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


def _work(oids: list[str]) -> list[tuple[str, BlobMetrics | None]]:
    assert _worker_cat is not None
    out: list[tuple[str, BlobMetrics | None]] = []
    # ASTs are many small objects freed all at once: the cyclic collector only costs time
    thresholds = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        for oid in oids:
            data = _worker_cat.read(oid)
            out.append((oid, None if data is None else analyze_source(data)))
    finally:
        gc.set_threshold(*thresholds)
    return out


def compute_blob_metrics(
    git_dir: str,
    root: str,
    oids: Iterable[str],
    workers: int | None = None,
    on_done: Callable[[int], None] | None = None,
) -> Iterator[tuple[str, BlobMetrics | None]]:
    """Yield (blob id, metrics) for each blob; None when the blob is missing.

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
