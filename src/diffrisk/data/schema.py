"""The dataset schema, written down once.

Every table diffrisk stores is described here: column name, Arrow type and meaning.
Readers and writers go through :func:`arrow_schema`; the docs (docs/schema.md) are
generated from this module by ``diffrisk schema --markdown`` and a test keeps them equal.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

SCHEMA_VERSION = 11

TS = pa.timestamp("s", tz="UTC")


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    doc: str
    kamei: str = ""


CHANGES: tuple[Column, ...] = (
    Column("sha", pa.string(), "full 40-hex commit id"),
    Column("author_email", pa.string(), "author e-mail after .mailmap, lower-cased"),
    Column("author_time", TS, "author timestamp, UTC"),
    Column("subject", pa.string(), "first line of the commit message"),
    Column(
        "ns",
        pa.int32(),
        "distinct top-level directories of the modified files (root files count as one)",
        "NS",
    ),
    Column(
        "nd",
        pa.int32(),
        "distinct parent directories of the modified files (the root counts as one)",
        "ND",
    ),
    Column(
        "nf",
        pa.int32(),
        "modified files (added, deleted, modified, renamed; binary included)",
        "NF",
    ),
    Column(
        "entropy",
        pa.float64(),
        "normalised Shannon entropy of the change over files with added/deleted lines",
        "Entropy",
    ),
    Column("la", pa.int64(), "lines added (git numstat; binary files count 0)", "LA"),
    Column("ld", pa.int64(), "lines deleted (likewise)", "LD"),
    Column(
        "lt",
        pa.int64(),
        "lines of the modified files in the first parent (0 for added and binary files)",
        "LT",
    ),
    Column(
        "fix",
        pa.int8(),
        "1 when the commit is classified as a bug fix (diffrisk.features.fixes), else 0",
        "FIX",
    ),
    Column(
        "ndev",
        pa.int32(),
        "distinct authors who changed any modified file in prior (ancestor) commits",
        "NDEV",
    ),
    Column(
        "age",
        pa.float64(),
        "mean days since each modified file was last changed by a prior commit (0 if never)",
        "AGE",
    ),
    Column(
        "nuc", pa.int32(), "distinct prior commits that changed any of the modified files", "NUC"
    ),
    Column("exp", pa.int32(), "prior commits by the same author", "EXP"),
    Column(
        "rexp",
        pa.float64(),
        "sum over the author's prior commits of 1/(1+y), y = that commit's age in years",
        "REXP",
    ),
    Column(
        "sexp",
        pa.int32(),
        "prior commits by the same author touching any of this commit's subsystems",
        "SEXP",
    ),
    Column(
        "pfix",
        pa.int32(),
        "prior (ancestor) commits classified as bug fixes that changed any of the modified files",
    ),
    Column(
        "issue_refs",
        pa.list_(pa.int64()),
        "issue numbers the message closes (fixes/closes/resolves #N)",
    ),
    Column(
        "huge",
        pa.bool_(),
        "touches >= mine.huge_commit_files files or >= mine.huge_commit_lines lines (vendor drop, mass rename)",
    ),
    Column("binary_files", pa.int32(), "modified files git treats as binary"),
    Column(
        "unknown_files",
        pa.int32(),
        "modified files whose line counts are unknown (objects missing from the repository)",
    ),
    Column("py_files", pa.int32(), "modified Python files (.py, .pyi)"),
    Column(
        "cc_delta",
        pa.float64(),
        "change in total cyclomatic complexity of the modified source files with code metrics "
        "(Python: radon; Java, C/C++, C#, JavaScript/TypeScript, Go, Rust, Ruby, PHP, Swift, Kotlin, "
        "Scala, Lua, ...: lizard; tests, docs and other label.exclude_paths are left out); "
        "null without code metrics or without such files",
    ),
    Column(
        "cc_max_touched",
        pa.float64(),
        "highest cyclomatic complexity of a function or method the change adds or modifies (0 if none)",
    ),
    Column(
        "mi_before",
        pa.float64(),
        "mean maintainability index (radon formula, 0-100) of those files before the change",
    ),
    Column("mi_after", pa.float64(), "likewise after the change"),
    Column("hv_delta", pa.float64(), "change in total Halstead volume of those files"),
    Column(
        "unparsable_files",
        pa.int32(),
        "modified files with code metrics that do not parse (Python 3), cannot be read as text "
        "(NUL bytes: UTF-16, binary) or are over the 2 MB size cap (either side); their metrics "
        "are left out",
    ),
    Column(
        "metric_files",
        pa.int32(),
        "modified source files measured by the code metrics (both versions measured); "
        "null without code metrics",
    ),
)

FILES: tuple[Column, ...] = (
    Column("sha", pa.string(), "commit id"),
    Column("path", pa.string(), "path after the change (deleted files: the deleted path)"),
    Column("old_path", pa.string(), "path before a rename, else null"),
    Column("status", pa.string(), "A added, M modified, D deleted, R renamed, T type change"),
    Column("la", pa.int64(), "lines added (0 when binary or unknown)"),
    Column("ld", pa.int64(), "lines deleted (0 when binary or unknown)"),
    Column("lines_before", pa.int64(), "line count in the first parent (0 when added or binary)"),
    Column("lines_after", pa.int64(), "line count after the change (0 when deleted or binary)"),
    Column("binary", pa.bool_(), "git treats the file as binary"),
    Column("unknown", pa.bool_(), "counts unknown: a blob is missing from the repository"),
    Column("blob_before", pa.string(), "blob id in the first parent, null when added"),
    Column("blob_after", pa.string(), "blob id after the change, null when deleted"),
    Column("is_python", pa.bool_(), "a Python source file (.py, .pyi)"),
    Column(
        "la_code",
        pa.int64(),
        "added lines of code: lines added minus blank, comment-only and docstring lines, "
        "and minus re-indented or moved lines (text the same file diff deletes) "
        "(null: not a source extension, or git could not diff the commit)",
    ),
    Column(
        "la_control",
        pa.int64(),
        "added control-flow lines: lines of code (as la_code) that begin with a branch, loop, "
        "exception or exit keyword (if, else, for, while, try, except, return, raise, ...)",
    ),
    Column(
        "code_tokens",
        pa.string(),
        "distinct tokens (names, keywords, operators) of the lines la_code counts, "
        "space-separated and sorted, at most 1,000 per file (null where la_code is)",
    ),
    Column(
        "cosmetic",
        pa.string(),
        "a modified Python file whose change SZZ looks through: 'format' (same AST, "
        "docstrings compared as black compares them: a reformat, or comments only) or 'annotations' (only type annotations changed); null otherwise. "
        "The commit's la_code, la_control and code_tokens leave such a file out",
    ),
    Column(
        "cc_before",
        pa.float64(),
        "total cyclomatic complexity before (null: no code metrics for the file, absent or unparsable)",
    ),
    Column("cc_after", pa.float64(), "total cyclomatic complexity after"),
    Column(
        "cc_max_touched",
        pa.float64(),
        "highest complexity of a function this change adds or modifies in the file",
    ),
    Column("mi_before", pa.float64(), "maintainability index before"),
    Column("mi_after", pa.float64(), "maintainability index after"),
    Column("hv_before", pa.float64(), "Halstead volume before"),
    Column("hv_after", pa.float64(), "Halstead volume after"),
    Column(
        "parse_error", pa.bool_(), "a side of this file did not parse (or is over the 2 MB cap)"
    ),
    Column(
        "language",
        pa.string(),
        "the language whose code metrics the file gets, by its ending: 'python' (radon) or a "
        "lizard language ('java', 'javascript', 'typescript', 'go', 'cpp', ...); null for others",
    ),
)

BLOB_METRICS: tuple[Column, ...] = (
    Column("blob", pa.string(), "blob id"),
    Column("ok", pa.bool_(), "the blob was measured (Python: it parsed as Python 3)"),
    Column(
        "cc",
        pa.float64(),
        "total cyclomatic complexity (sum over functions, methods and module-level code; radon "
        "for Python, lizard's CCN for the other languages)",
    ),
    Column("mi", pa.float64(), "maintainability index"),
    Column(
        "hv",
        pa.float64(),
        "Halstead volume (Python: radon's; lizard languages: N log2 n over the code tokens)",
    ),
    Column(
        "functions",
        pa.list_(pa.struct([("name", pa.string()), ("cc", pa.int32()), ("h", pa.int64())])),
        "functions and methods: qualified name, complexity, hash of their source text",
    ),
)

LABELS: tuple[Column, ...] = (
    Column("sha", pa.string(), "commit id; one row per row of changes.parquet"),
    Column(
        "label",
        pa.int8(),
        "1 defect-inducing (a fix blames it), 0 clean, null unlabelled (too young to tell)",
    ),
    Column("label_state", pa.string(), "'buggy', 'clean' or 'unlabelled'"),
    Column(
        "fixed_by", pa.list_(pa.string()), "fixes whose SZZ blame names this commit, oldest first"
    ),
    Column(
        "days_to_fix",
        pa.float64(),
        "days from this commit to the first fix blaming it (null when none)",
    ),
    Column("n_fixes", pa.int32(), "distinct fixes blaming this commit"),
    Column(
        "source_files",
        pa.int32(),
        "files this commit adds lines to that SZZ treats as source; 0 = can never be labelled buggy",
    ),
    Column(
        "is_fix",
        pa.int8(),
        "1 when the labeller treated the commit as a bug fix (any fix source)",
    ),
    Column(
        "fix_sources",
        pa.list_(pa.string()),
        "the sources that named it a fix: 'message', 'developer', 'github', 'jira', 'file'",
    ),
    Column(
        "label_source",
        pa.string(),
        "'szz' (fix sources and blame) or 'file' (a labels file gave this commit's label)",
    ),
)

SZZ_LINKS: tuple[Column, ...] = (
    Column("fix_sha", pa.string(), "the fix"),
    Column(
        "inducing_sha", pa.string(), "a commit git blame names for lines the fix deleted or changed"
    ),
    Column("path", pa.string(), "the blamed file, as named in the inducing commit"),
    Column(
        "lines",
        pa.int32(),
        "lines of that file the fix changed that blame attributes to the inducing commit",
    ),
    Column("sample", pa.list_(pa.string()), "up to 8 of those lines' text, for the quality report"),
    Column(
        "source",
        pa.string(),
        "'szz' (blame), or the source that named the link itself: 'developer', 'file', 'jira'",
    ),
    Column(
        "dropped",
        pa.string(),
        "null when the link labels the inducing commit; else why not: 'merge', 'not_mined', "
        "'after_fix', 'after_issue', 'vendored', 'not_recent' (an older candidate, R-SZZ)",
    ),
)

PREDICTIONS: tuple[Column, ...] = (
    Column(
        "head_sha",
        pa.string(),
        "head commit of the scored pull request or range; one row per head (the last run wins)",
    ),
    Column("base_sha", pa.string(), "base commit it was compared with"),
    Column("pr", pa.int64(), "pull-request number, null outside a pull request"),
    Column("repo", pa.string(), "repository as the score run named it"),
    Column("commits", pa.list_(pa.string()), "commits of the pull request (base..head), as scored"),
    Column(
        "commit_keys",
        pa.list_(pa.string()),
        "'author-email|author-time' of each scored commit: finds them again after a rebase "
        "merge gave them new shas (null in logs written before this column existed)",
    ),
    Column("features", pa.string(), "the squashed change's features, a JSON object"),
    Column("probability", pa.float64(), "predicted probability that the change is defect-inducing"),
    Column("level", pa.string(), "'low', 'medium' or 'high'"),
    Column(
        "decision",
        pa.string(),
        "gate outcome ('pass', 'warn', 'accepted', 'fail'); null for a plain score run",
    ),
    Column("model_version", pa.string(), "version of the model that scored it"),
    Column(
        "model_source",
        pa.string(),
        "'repository', 'bundled', or 'bundled-chosen' (the bundled model, chosen by the repository's evaluation)",
    ),
    Column("source", pa.string(), "the command that logged it: 'score' or 'gate'"),
    Column("time", TS, "when the prediction was made, UTC"),
)

KAMEI = tuple(c.name for c in CHANGES if c.kamei)
CODE_METRICS = (
    "py_files",
    "cc_delta",
    "cc_max_touched",
    "mi_before",
    "mi_after",
    "hv_delta",
    "unparsable_files",
    "metric_files",
)

TABLES: dict[str, tuple[Column, ...]] = {
    "changes": CHANGES,
    "files": FILES,
    "blob_metrics": BLOB_METRICS,
    "labels": LABELS,
    "szz_links": SZZ_LINKS,
    "predictions": PREDICTIONS,
}


def arrow_schema(table: str) -> pa.Schema:
    return pa.schema([pa.field(c.name, c.type) for c in TABLES[table]])


def column_names(table: str) -> list[str]:
    return [c.name for c in TABLES[table]]


def to_markdown() -> str:
    """The schema as Markdown (docs/schema.md is this text)."""
    out = [
        "# Dataset schema",
        "",
        f"Generated by `diffrisk schema --markdown` from `src/diffrisk/schema.py` (schema version {SCHEMA_VERSION}).",
        "Raw values are stored; normalisation (LA/LT, log1p, ...) belongs to the model pipeline.",
        "",
    ]
    for name, cols in TABLES.items():
        out += [
            f"## `{name}.parquet`",
            "",
            "| column | type | Kamei | meaning |",
            "| --- | --- | --- | --- |",
        ]
        out += [f"| `{c.name}` | {c.type} | {c.kamei} | {c.doc} |" for c in cols]
        out.append("")
    return "\n".join(out)


@dataclass(frozen=True, slots=True)
class BlobMetrics:
    """Code metrics of one blob (radon's or lizard's), as ``blob_metrics.parquet`` stores them (``ok`` False:
    not measured)."""

    ok: bool
    cc: float | None = None
    mi: float | None = None
    hv: float | None = None
    functions: tuple[tuple[str, int, int], ...] = ()


#: Columns the source-line features add to the changes rows (not stored in changes.parquet).
LA_SOURCE = "la_source"
LA_CODE = "la_code"
LA_CONTROL = "la_control"
CODE_TOKENS = "code_tokens"
