"""Added lines of code: the lines a change adds to source files that SZZ could ever blame.

SZZ (``diffrisk.labelling.szz``) leaves blank lines, comment-only lines and Python
docstrings (:func:`cosmetic_lines`) out when it blames a fix's
deleted lines, so such lines can never make a change defect-inducing. ``la_code`` counts the other added lines of each file: lines added minus
blank, comment-only and docstring lines, and minus lines the same file diff also deletes
(ignoring whitespace): re-indented or moved lines, which ``git blame -w -M`` leaves with
the commit that wrote them. Comments are known by the file's language
(:func:`comment_style`): ``//`` and ``/* */`` (C, C++, Java, JavaScript/TypeScript, Go,
Rust, C#, Swift, Kotlin, Scala, ...), ``#`` (Python, shell, Ruby with ``=begin``/``=end``,
Perl with POD, R, ...), ``--`` (Lua with ``--[[ ]]``, SQL, Haskell), ``<!-- -->`` (HTML,
XML, and the templates of Vue and Svelte files), and more. ``la_control`` counts the
control-flow lines among them, by the keywords of the file's language
(:func:`control_pattern`). The lines are classified one by one as git's
diff shows them (``-U0``, no surrounding file text): a triple-quoted string that starts
a statement counts as a docstring until it closes within the added lines of that hunk.

Only files with a source extension (``label.source_extensions``) are diffed; other files
and files whose diff git cannot produce (missing objects) get no count (null).
:func:`unquote_path` reads a path from a diff header (SZZ's diff parsing uses it too).
"""

from __future__ import annotations

import collections
import functools
import re
import subprocess
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from diffrisk.errors import GitCommandError
from diffrisk.features.cosmetic import (
    HASH_COMMENT_EXTENSIONS,
    PYTHON_EXTENSIONS,
    SLASH_COMMENT_EXTENSIONS,
    maybe_in_triple_quoted,
    python_docstring_lines,
    same_words,
)
from diffrisk.git.repo import GitRepo, unquote_path

#: Tokens of a line of code: names and keywords, and multi-character or single operators.
_TOKEN = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*|==|!=|<=|>=|\*\*|//|->|[-+*/%<>=!&|^~@:.,()\[\]{}]")
#: At most this many distinct tokens are kept per file change (a generated or vendored
#: file adds thousands; the first ones in the diff are kept).
MAX_TOKENS = 1000


class FileCode(tuple):
    """(added lines of code, added control-flow lines) of one file change, with
    ``tokens``: the distinct tokens of those lines, space-separated and sorted; and for a
    Python file, two cheap necessary conditions for SZZ to look through the change
    (:func:`diffrisk.features.cosmetic.cosmetic_change`): ``same_words``, its deleted and added lines
    hold the same operators and keywords (a reformat keeps them, and so does a change of
    annotations); ``typing_syntax``, one of those lines has what an annotation change
    touches (``->``, ``def``, ``name: ...``, ``import``, ``cast``, ...). None for other
    files."""

    tokens: str
    same_words: bool | None
    typing_syntax: bool | None
    hunks: tuple[tuple[int, int, int, int], ...]  # Python: the diff's hunk headers

    def __new__(
        cls,
        code: int,
        control: int,
        tokens: str = "",
        same_words: bool | None = None,
        typing_syntax: bool | None = None,
        hunks: tuple[tuple[int, int, int, int], ...] = (),
    ) -> FileCode:
        obj = super().__new__(cls, (code, control))
        obj.tokens = tokens
        obj.same_words = same_words
        obj.typing_syntax = typing_syntax
        obj.hunks = hunks
        return obj

    def merged(self, other: FileCode) -> FileCode:
        """Both counts summed, the tokens joined (one path shown twice in a diff)."""
        same = typing = None
        if self.same_words is not None:
            same = bool(self.same_words and other.same_words)
            typing = bool(self.typing_syntax or other.typing_syntax)
        return FileCode(
            self[0] + other[0],
            self[1] + other[1],
            join_tokens([self.tokens, other.tokens]),
            same,
            typing,
            self.hunks + other.hunks,
        )


def join_tokens(parts: Iterable[str | None]) -> str:
    """The union of space-separated token sets, sorted."""
    out: set[str] = set()
    for p in parts:
        if p:
            out.update(p.split())
    return " ".join(sorted(out))


#: Per commit and path: (added lines of code, added control-flow lines), with tokens.
CodeCounts = dict[str, dict[str, FileCode]]

#: Commits per ``git log -p`` call.
BATCH = 2000

_TRIPLE = (b'"""', b"'''")
#: The branch, loop, exception and exit keywords of Python and the C, Java, JavaScript,
#: Go, Ruby and Perl family that begin a control-flow line (after closing braces).
CONTROL_KEYWORDS = (
    "if", "elif", "else", "elsif", "unless", "for", "foreach", "while", "until", "do",
    "switch", "try", "except", "catch", "rescue", "finally", "ensure", "with", "return",
    "raise", "throw", "yield", "assert", "break", "continue", "goto", "defer",
)  # fmt: skip
#: Soft keywords: they begin a control-flow line only as a statement header (followed by
#: a space or "(" and ending in ":" or "{"), not as a name (``match = ...``).
SOFT_CONTROL_KEYWORDS = ("match", "case", "select")


def _control(hard: Sequence[str], soft: Sequence[str] = (), more: bytes = b"") -> re.Pattern[bytes]:
    """A line that begins, after closing braces, with one of ``hard`` (a whole word), or
    with one of ``soft`` as a statement header (followed by a space or "(" and ending in
    ":" or "{"), or matches ``more`` there."""
    alts = [rb"(?:" + "|".join(hard).encode() + rb")\b"]
    if soft:
        alts.append(rb"(?:" + "|".join(soft).encode() + rb")[\s(].*[:{]\s*$")
    if more:
        alts.append(more)
    return re.compile(rb"^[}\s]*(?:" + b"|".join(alts) + rb")")


#: The union, for files of no known language.
_CONTROL = _control(CONTROL_KEYWORDS, SOFT_CONTROL_KEYWORDS)
_C_FAMILY = ("if", "else", "for", "while", "do", "switch", "try", "catch", "finally",
             "return", "throw", "break", "continue", "goto")  # fmt: skip
_DEFAULT_LABEL = rb"default\s*:"
#: Per language: the keywords that begin a control-flow line (a name that is only a
#: keyword in other languages, such as ``next``, ``when`` or ``loop``, is not one).
_CONTROL_BY_LANGUAGE: dict[str, re.Pattern[bytes]] = {
    "python": _control(
        (
            "if",
            "elif",
            "else",
            "for",
            "while",
            "try",
            "except",
            "finally",
            "with",
            "return",
            "raise",
            "yield",
            "assert",
            "break",
            "continue",
        ),
        ("match", "case"),
        rb"async\s+(?:for|with)\b",
    ),
    "c": _control(
        (*_C_FAMILY, "yield", "co_return", "co_yield", "co_await"), ("case",), _DEFAULT_LABEL
    ),
    "csharp": _control((*_C_FAMILY, "foreach", "yield"), ("case",), _DEFAULT_LABEL),
    "javascript": _control((*_C_FAMILY, "yield"), ("case",), _DEFAULT_LABEL),
    "go": _control(
        (
            "if",
            "else",
            "for",
            "switch",
            "select",
            "return",
            "break",
            "continue",
            "goto",
            "defer",
            "fallthrough",
        ),
        ("case",),
        _DEFAULT_LABEL,
    ),
    "rust": _control(
        ("if", "else", "for", "while", "loop", "match", "return", "break", "continue")
    ),
    "kotlin": _control((*_C_FAMILY, "when")),
    "swift": _control(
        (
            "if",
            "else",
            "guard",
            "for",
            "while",
            "repeat",
            "switch",
            "do",
            "catch",
            "defer",
            "return",
            "throw",
            "break",
            "continue",
            "fallthrough",
        ),
        ("case",),
        _DEFAULT_LABEL,
    ),
    "scala": _control(
        (
            "if",
            "else",
            "for",
            "while",
            "do",
            "match",
            "try",
            "catch",
            "finally",
            "return",
            "throw",
            "yield",
        ),
        (),
        rb"case\s+(?!class\b|object\b)",
    ),
    "php": _control((*_C_FAMILY, "elseif", "foreach", "yield", "match"), ("case",), _DEFAULT_LABEL),
    "ruby": _control(
        (
            "if",
            "elsif",
            "else",
            "unless",
            "case",
            "when",
            "while",
            "until",
            "for",
            "begin",
            "rescue",
            "ensure",
            "return",
            "raise",
            "yield",
            "break",
            "next",
            "redo",
            "retry",
        ),
    ),
    "perl": _control(
        (
            "if",
            "elsif",
            "else",
            "unless",
            "for",
            "foreach",
            "while",
            "until",
            "return",
            "die",
            "croak",
            "confess",
            "last",
            "next",
            "redo",
            "goto",
        ),
    ),
    "shell": _control(
        (
            "if",
            "elif",
            "else",
            "for",
            "while",
            "until",
            "case",
            "select",
            "return",
            "exit",
            "break",
            "continue",
        ),
    ),
    "lua": _control(
        ("if", "elseif", "else", "for", "while", "repeat", "until", "return", "break", "goto"),
    ),
    "elixir": _control(
        (
            "if",
            "unless",
            "else",
            "case",
            "cond",
            "with",
            "try",
            "rescue",
            "catch",
            "after",
            "raise",
            "throw",
            "receive",
        ),
    ),
}
_CONTROL_LANGUAGE_OF: dict[str, str] = {
    **dict.fromkeys((".py", ".pyi", ".pyx", ".pxd"), "python"),
    **dict.fromkeys(
        (
            ".c",
            ".h",
            ".cc",
            ".cpp",
            ".cxx",
            ".c++",
            ".hh",
            ".hpp",
            ".hxx",
            ".h++",
            ".m",
            ".mm",
            ".java",
            ".dart",
            ".groovy",
            ".y",
            ".yy",
            ".l",
            ".ll",
            ".cu",
            ".cuh",
            ".sol",
        ),
        "c",
    ),
    ".cs": "csharp",
    **dict.fromkeys(
        (".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts", ".vue", ".svelte"),
        "javascript",
    ),
    ".go": "go",
    ".rs": "rust",
    **dict.fromkeys((".kt", ".kts"), "kotlin"),
    ".swift": "swift",
    **dict.fromkeys((".scala", ".sc"), "scala"),
    ".php": "php",
    **dict.fromkeys((".rb", ".rake", ".gemspec"), "ruby"),
    **dict.fromkeys((".pl", ".pm"), "perl"),
    **dict.fromkeys((".sh", ".bash", ".zsh", ".ksh"), "shell"),
    ".lua": "lua",
    **dict.fromkeys((".ex", ".exs"), "elixir"),
}


def control_pattern(path: str) -> re.Pattern[bytes]:
    """What begins a control-flow line in ``path``'s language (by its ending); for a
    language not listed, the keywords of all of them (:data:`CONTROL_KEYWORDS`)."""
    lang = _CONTROL_LANGUAGE_OF.get(PurePosixPath(path).suffix.lower())
    return _CONTROL_BY_LANGUAGE[lang] if lang is not None else _CONTROL


# -- comments by language -----------------------------------------------------------------


@dataclass(frozen=True)
class CommentStyle:
    """How a language writes comments.

    ``line``: markers that start a comment running to the end of the line (``not_line``:
    prefixes that begin with one but are code, as PHP's ``#[`` attributes); ``blocks``:
    (opening, closing) pairs, anywhere on a line; ``star_lines``: a line starting with
    ``* `` continues a ``/* */`` comment whose opening line a hunk does not show;
    ``line_blocks``: (openers, closer) of comment blocks whose markers stand at the start
    of a line (Ruby's ``=begin``/``=end``, Perl's POD ``=pod`` ... ``=cut``)."""

    line: tuple[bytes, ...] = ()
    blocks: tuple[tuple[bytes, bytes], ...] = ()
    star_lines: bool = False
    line_blocks: tuple[tuple[tuple[bytes, ...], bytes], ...] = ()
    not_line: tuple[bytes, ...] = ()


_C_BLOCK = (b"/*", b"*/")
_HTML_BLOCK = (b"<!--", b"-->")
NO_COMMENTS = CommentStyle()
C_STYLE = CommentStyle(line=(b"//",), blocks=(_C_BLOCK,), star_lines=True)
HASH_STYLE = CommentStyle(line=(b"#",))
_STYLES: dict[str, CommentStyle] = {
    **dict.fromkeys(SLASH_COMMENT_EXTENSIONS, C_STYLE),
    **dict.fromkeys(
        (".cu", ".cuh", ".sol", ".proto", ".d", ".sc", ".c++", ".h++", ".scss", ".less"), C_STYLE
    ),
    ".zig": CommentStyle(line=(b"//",)),
    ".css": CommentStyle(blocks=(_C_BLOCK,), star_lines=True),
    ".php": CommentStyle(
        line=(b"//", b"#"), blocks=(_C_BLOCK,), star_lines=True, not_line=(b"#[",)
    ),
    # single-file components: a script (//, /* */) and a template (<!-- -->)
    **dict.fromkeys(
        (".vue", ".svelte", ".astro"),
        CommentStyle(line=(b"//",), blocks=(_C_BLOCK, _HTML_BLOCK), star_lines=True),
    ),
    **dict.fromkeys(
        (".html", ".htm", ".xhtml", ".xml", ".svg", ".jsp", ".erb"),
        CommentStyle(blocks=(_HTML_BLOCK,)),
    ),
    **dict.fromkeys(HASH_COMMENT_EXTENSIONS, HASH_STYLE),
    **dict.fromkeys(
        (
            ".zsh",
            ".ksh",
            ".fish",
            ".tcl",
            ".cr",
            ".coffee",
            ".rake",
            ".gemspec",
            ".awk",
            ".ps1",
            ".psm1",
            ".nix",
            ".bzl",
            ".gd",
        ),
        HASH_STYLE,
    ),
    **dict.fromkeys(
        (".rb", ".rake", ".gemspec"),
        CommentStyle(line=(b"#",), line_blocks=(((b"=begin",), b"=end"),)),
    ),
    **dict.fromkeys(
        (".pl", ".pm", ".t"),
        CommentStyle(
            line=(b"#",),
            line_blocks=(
                (
                    (
                        b"=pod",
                        b"=head",
                        b"=over",
                        b"=item",
                        b"=begin",
                        b"=for",
                        b"=encoding",
                        b"=back",
                    ),
                    b"=cut",
                ),
            ),
        ),
    ),
    ".jl": CommentStyle(line=(b"#",), blocks=((b"#=", b"=#"),)),
    ".nim": CommentStyle(line=(b"#",), blocks=((b"#[", b"]#"),)),
    ".lua": CommentStyle(
        line=(b"--",), blocks=((b"--[[", b"]]"), (b"--[=[", b"]=]"), (b"--[==[", b"]==]"))
    ),
    **dict.fromkeys(
        (".sql", ".pks", ".pkb", ".pls", ".plb", ".pck", ".psql", ".hql"),
        CommentStyle(line=(b"--",), blocks=(_C_BLOCK,), star_lines=True),
    ),
    **dict.fromkeys(
        (".hs", ".elm", ".purs", ".agda", ".idr"),
        CommentStyle(line=(b"--",), blocks=((b"{-", b"-}"),)),
    ),
    **dict.fromkeys((".adb", ".ads", ".vhd", ".vhdl"), CommentStyle(line=(b"--",))),
    **dict.fromkeys((".erl", ".hrl", ".tex", ".sty", ".cls"), CommentStyle(line=(b"%",))),
    **dict.fromkeys(
        (
            ".clj",
            ".cljs",
            ".cljc",
            ".edn",
            ".el",
            ".lisp",
            ".lsp",
            ".scm",
            ".ss",
            ".rkt",
            ".fnl",
            ".asm",
        ),
        CommentStyle(line=(b";",)),
    ),
    **dict.fromkeys((".f", ".for", ".f90", ".f95", ".f03", ".f08"), CommentStyle(line=(b"!",))),
    **dict.fromkeys((".vb", ".bas", ".vbs"), CommentStyle(line=(b"'",))),
    **dict.fromkeys((".ml", ".mli"), CommentStyle(blocks=((b"(*", b"*)"),))),
    ".fs": CommentStyle(line=(b"//",), blocks=((b"(*", b"*)"),)),
}


@functools.cache
def comment_style(path: str) -> CommentStyle:
    """The comment syntax of ``path``'s language, by its ending (any case); none known:
    every non-blank line is code."""
    return _STYLES.get(PurePosixPath(path).suffix.lower(), NO_COMMENTS)


def _outside_quotes(s: bytes, at: int) -> bool:
    """Whether position ``at`` of a line is outside string quotes (an even number of
    each quote before it; escapes and other languages' quotes are not looked into)."""
    head = s[:at]
    return head.count(b'"') % 2 == 0 and head.count(b"'") % 2 == 0


def comment_only_lines(path: str, text: bytes) -> set[int]:
    """The line numbers (from 1) of the whole file ``text`` that hold only comment, by
    ``path``'s language (:func:`comment_style`; Python docstrings are not looked for):
    the rule ``la_code`` counts added lines by, for a whole version of a file (where a
    line starting with ``*`` is a comment only inside a ``/* */`` that opened above)."""
    c = _Counter(path)
    c.whole_file = True
    out = set()
    for no, line in enumerate(text.split(b"\n"), 1):
        s = line.strip()
        if s and c.comment_only(line, s):
            out.add(no)
    return out


def cosmetic_lines(
    path: str, old_text: bytes | None, line_numbers: list[int], texts: list[bytes]
) -> set[int]:
    """The given deleted lines that are blank or only comment, by the comment syntax of
    ``path``'s language (:func:`comment_style`: ``#``, ``//``
    and ``/* */``, ``--``, ``<!-- -->``, Ruby's ``=begin``, ...; Python: also docstrings).
    Block comments are followed through ``old_text``, the whole version the lines were
    deleted from; without it, only line comments are known."""
    pairs = list(zip(line_numbers, texts, strict=True))
    out = {no for no, t in pairs if not t.strip()}
    style = comment_style(path)
    if style.line:
        for no, t in pairs:
            s = t.lstrip()
            if s.startswith(style.line) and not (style.not_line and s.startswith(style.not_line)):
                out.add(no)
    if old_text is None:
        return out
    rest = [no for no in line_numbers if no not in out]
    if not rest:
        return out
    if PurePosixPath(path).suffix.lower() in PYTHON_EXTENSIONS:
        text = old_text.decode("utf-8", "replace")
        if maybe_in_triple_quoted(text, rest):
            doc = python_docstring_lines(text)
            out.update(no for no in rest if no in doc)
    elif style.blocks or style.line_blocks:
        com = comment_only_lines(path, old_text)
        out.update(no for no in rest if no in com)
    return out


_PREFIX = b"rRuUbBfF"
_HUNK = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
#: A line with what a change of type annotations alone touches: a return annotation, an
#: annotated parameter or declaration (``name: T``), type parameters, a typing name
#: (``TYPE_CHECKING``, ``cast``, ``overload``, ...), a type alias, or an import of a
#: typing module or inside a block (``if TYPE_CHECKING:``). A line inside a multi-line
#: annotation is missed: such a change counts as code, as any change did before.
_TYPING_SYNTAX = re.compile(
    rb"->|^[ \t]*(?:async[ \t]+)?def[ \t].*[\w\]][ \t]*:[ \t]*[A-Za-z_\"'\[]"
    rb"|^[ \t]*\**[A-Za-z_][\w.]*[ \t]*:[ \t]*[A-Za-z_\"'\[]"
    rb"|^[ \t]*(?:def|class)[ \t]+\w+\["
    rb"|\b(?:TYPE_CHECKING|cast|overload|TypeAlias|TypeVar|ParamSpec|Generic|Protocol)\b"
    rb"|^[ \t]*type[ \t]+\w|^[ \t]+(?:from|import)[ \t]"
    rb"|\b(?:typing|typing_extensions|collections\.abc|__future__)\b",
    re.M,
)


def _path(raw: bytes) -> str:
    """A diff header path as the files table stores it (``\\xNN`` for non-UTF-8 bytes)."""
    return unquote_path(raw, "backslashreplace")


class _Counter:
    """Counts code lines, and control-flow lines among them, in a file's added lines.

    An added line whose text (ignoring whitespace) the same file diff deletes is a
    re-indented or moved line: ``git blame -w -M`` keeps it on the commit that wrote it,
    so :meth:`totals` does not count it.
    """

    def __init__(self, path: str) -> None:
        ext = PurePosixPath(path).suffix.lower()
        self.style = comment_style(path)
        self.control = control_pattern(path)
        self.python = ext in PYTHON_EXTENSIONS
        self.code: list[tuple[bytes, bool, bytes]] = []  # (no whitespace, control, line)
        self.deleted: collections.Counter[bytes] = collections.Counter()
        # Python: the raw added and deleted lines, for the cosmetic-change tests
        self.raw_added: list[bytes] = []
        self.raw_deleted: list[bytes] = []
        self.hunks: list[tuple[int, int, int, int]] = []
        # a whole file, not a hunk: every block comment's opening line is seen
        self.whole_file = False
        self.hunk()

    def delete(self, line: bytes) -> None:
        self.deleted[b"".join(line.split())] += 1
        if self.python:
            self.raw_deleted.append(line)

    def totals(self) -> FileCode:
        """(code lines, control-flow lines) added, re-indented and moved lines left out;
        the distinct tokens of those lines."""
        left = self.deleted.copy()
        code = control = 0
        tokens: dict[bytes, None] = {}
        for text, is_control, line in self.code:
            if left[text] > 0:
                left[text] -= 1
            else:
                code += 1
                control += is_control
                if len(tokens) < MAX_TOKENS:
                    tokens.update(dict.fromkeys(_TOKEN.findall(line)))
        kept = sorted(list(tokens)[:MAX_TOKENS])  # the first ones in the diff
        if not self.python:
            return FileCode(code, control, b" ".join(kept).decode("ascii"))
        added, deleted = b"\n".join(self.raw_added), b"\n".join(self.raw_deleted)
        # one regex pass over each side (per line it cost mining a quarter more)
        same = same_words(added, deleted)
        typing = same and bool(_TYPING_SYNTAX.search(added) or _TYPING_SYNTAX.search(deleted))
        return FileCode(
            code, control, b" ".join(kept).decode("ascii"), same, typing, tuple(self.hunks)
        )

    def hunk(self, header: bytes = b"") -> None:
        if self.python and header:
            m = _HUNK.match(header)
            if m:
                o, oc, n, nc = m.groups()
                self.hunks.append((int(o), int(oc or 1), int(n), int(nc or 1)))
        self.in_doc: bytes | None = None  # the open docstring's quote
        self.in_str: bytes | None = None  # the open quote of another triple-quoted string
        self.block_end: bytes | None = None  # inside a block comment: what closes it
        self.line_block_end: bytes | None = None  # inside =begin ... =end: what closes it

    def add(self, line: bytes) -> None:
        if self.python:
            self.raw_added.append(line)
        s = line.strip()
        if self.in_doc is not None:
            if s.count(self.in_doc) % 2 == 1:
                self.in_doc = None
            return
        if self.in_str is not None:  # a multi-line string value is code
            if s.count(self.in_str) % 2 == 1:
                self.in_str = None
            self.code.append((b"".join(s.split()), False, s))
            return
        if not s:
            return
        if self.python:
            if s.startswith(b"#"):
                return
            head = s.lstrip(_PREFIX)[:3]
            if head in _TRIPLE and len(s) - len(s.lstrip(_PREFIX)) <= 2:
                if s.count(head) % 2 == 1:
                    self.in_doc = head
                return
        elif self.comment_only(line, s):
            return
        if self.python:
            for q in _TRIPLE:
                if s.count(q) % 2 == 1:
                    self.in_str = q
                    break
        self.code.append((b"".join(s.split()), bool(self.control.match(s)), s))

    def comment_only(self, line: bytes, s: bytes) -> bool:
        """Whether the line (``s``: stripped, not empty) is only comment, by the file's
        :class:`CommentStyle`; tracks block comments across lines. A line starting with
        ``* `` (or a lone ``*``, or ``*/``) continues a ``/* */`` comment whose opening
        line the hunk does not show."""
        st = self.style
        if self.line_block_end is not None:
            if line.startswith(self.line_block_end):
                self.line_block_end = None
            return True
        for openers, closer in st.line_blocks:
            if line.startswith(openers):
                self.line_block_end = closer
                return True
        if (
            st.star_lines
            and not self.whole_file
            and self.block_end is None
            and (s == b"*" or s.startswith((b"* ", b"*/")))
        ):
            return True
        code = False
        while s:
            if self.block_end is not None:
                end = s.find(self.block_end)
                if end < 0:
                    return not code
                s = s[end + len(self.block_end) :].strip()
                self.block_end = None
                continue
            opened = next((b for b in st.blocks if s.startswith(b[0])), None)
            if opened is not None:
                self.block_end = opened[1]
                s = s[len(opened[0]) :]
                continue
            if s.startswith(st.line) and not s.startswith(st.not_line or (b"\0",)):
                break
            code = True
            # a block comment opening after code (not in a string, nor in a trailing
            # line comment) goes on over the next lines
            first = None
            for op, close in st.blocks:
                at = s.find(op, 1)
                while at > 0 and not _outside_quotes(s, at):
                    at = s.find(op, at + 1)
                if at > 0 and (first is None or at < first[0]):
                    first = (at, op, close)
            if first is None:
                break
            at, op, close = first
            if any(0 < s.find(m) < at for m in st.line):
                break
            self.block_end = close
            s = s[at + len(op) :]
        return not code


def classify_added(path: str, lines: Iterable[bytes]) -> FileCode:
    """(code lines, control-flow lines) among ``lines`` (added lines of one hunk of
    ``path``, without the ``+``), with their tokens."""
    c = _Counter(path)
    for line in lines:
        c.add(line)
    return c.totals()


def count_added_code(path: str, lines: Iterable[bytes]) -> int:
    """Code lines among ``lines`` (added lines of one hunk of ``path``, without the ``+``)."""
    return classify_added(path, lines)[0]


def parse_added_code(lines: bytes | Iterable[bytes], marker: bytes = b"\x01") -> CodeCounts:
    """``git log -p -U0 --format=%x01%H`` output (bytes, or an iterable of its lines) ->
    per commit and path, (code lines, control-flow lines) added.

    Every file git shows a ``+++`` header for gets a count (0 when only non-code lines
    were added); deleted files and renames without content changes get none.
    """
    out: CodeCounts = {}
    files: dict[str, FileCode] = {}
    cur: _Counter | None = None
    path = ""

    def close() -> None:
        if cur is not None:
            got = cur.totals()
            files[path] = files[path].merged(got) if path in files else got

    for line in lines.split(b"\n") if isinstance(lines, bytes) else lines:
        line = line.rstrip(b"\n")
        if line.startswith(marker):
            close()
            cur = None
            files = out.setdefault(line[len(marker) :].decode().strip(), {})
            continue
        if line.startswith(b"diff --git "):
            close()
            cur = None
            continue
        if cur is None:
            if line.startswith(b"+++ "):
                name = line[4:]
                if name != b"/dev/null":
                    path = _path(name)[2:]
                    cur = _Counter(path)
            continue
        if line.startswith(b"+"):
            cur.add(line[1:])
        elif line.startswith(b"-"):
            cur.delete(line[1:])
        elif line.startswith(b"@@"):
            cur.hunk(line)
    close()
    return out


def _pathspec(endings: Sequence[str]) -> list[str]:
    # "*" matches "/" too (no glob magic), so "*.py" selects .py files at any depth. The
    # match is case-sensitive: pass each spelling in use (":(icase)" costs git 50% more).
    return ["--", *(f"*{e}" for e in sorted(set(endings)))]


_DIFF_FLAGS = (
    "-p",
    "-U0",
    "-M",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--src-prefix=a/",
    "--dst-prefix=b/",
)


def added_code_lines(
    repo: GitRepo, shas: Sequence[str], extensions: Sequence[str], batch: int = BATCH
) -> CodeCounts:
    """Code lines added per commit and path, for non-merge ``shas`` and the files whose
    names end in one of ``extensions`` (exactly as spelled: ``.py`` does not select ``.PY``).

    One ``git log -p`` per batch. When git fails on a commit (a missing object), the
    commits before it keep their counts, that commit gets no entry (unknown) and git is
    run again from the next one.
    """
    if not extensions:
        return {}
    out: CodeCounts = {}
    argv = ["log", "--no-walk=unsorted", "--stdin", *_DIFF_FLAGS, "--format=%x01%H"]
    argv += _pathspec(extensions)

    def run(part: Sequence[str]) -> None:
        pending = list(part)
        while pending:
            got, ok = _stream(repo, argv, pending)
            if ok:
                out.update(got)
                for sha in pending:  # git prints nothing for a commit without matching files
                    out.setdefault(sha, {})
                return
            # git stopped in the diff of the last commit it printed (or, having printed
            # none, at the first): check that one alone; if it is fine, go on after it
            suspect = list(got)[-1] if got else pending[0]
            at = pending.index(suspect)
            for sha in pending[:at]:
                out[sha] = got.get(sha, {})
            alone, alone_ok = _stream(repo, argv, [suspect])
            if alone_ok:
                out[suspect] = alone.get(suspect, {})
            pending = pending[at + 1 :]

    for i in range(0, len(shas), batch):
        run(shas[i : i + batch])
    return out


def _stream(repo: GitRepo, argv: list[str], shas: Sequence[str]) -> tuple[CodeCounts, bool]:
    """One ``git log -p`` over ``shas``, parsed as it streams (a huge commit's patch is
    never held in memory): the counts (in git's output order) and whether git succeeded."""
    try:
        proc = repo.popen(*argv, stdin=subprocess.PIPE)
    except FileNotFoundError:
        raise GitCommandError("git is not installed or not on PATH", hint="install git") from None
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    # git reads the whole list before it writes; stderr is drained (and dropped) on a thread
    drain = threading.Thread(target=proc.stderr.read, daemon=True)
    drain.start()
    try:
        proc.stdin.write(("\n".join(shas) + "\n").encode())
        proc.stdin.close()
        got = parse_added_code(proc.stdout)
    except BrokenPipeError:
        got = {}
    finally:
        proc.stdout.close()
        code = proc.wait()
        drain.join()
        proc.stderr.close()
    return got, code == 0


def diff_code_lines(
    repo: GitRepo, base: str, head: str, endings: Sequence[str]
) -> tuple[dict[str, FileCode] | None, dict[str, tuple[int, int]]]:
    """One ``git diff`` of base..head: per path with one of ``endings`` (as spelled), the
    (code lines, control-flow lines) it adds (None when git fails); and per path, the
    range of lines an annotation on that file should point at (:func:`_riskiest_added`)."""
    try:
        data = repo.run("diff", *_DIFF_FLAGS, base, head)
    except GitCommandError:
        return None, {}
    want = set(endings)
    counts = parse_added_code(b"\x01-\n" + data).get("-", {})
    return {p: c for p, c in counts.items() if PurePosixPath(p).suffix in want}, _riskiest_added(
        data
    )


_HUNK_NEW = re.compile(rb"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


def _riskiest_added(data: bytes) -> dict[str, tuple[int, int]]:
    """Per path of a ``-U0`` diff, (first, last) line of the added range that adds the most
    control-flow lines, then the most lines of code (what the models weigh); the first
    such range on a tie, and the first added range of a file that adds no code."""
    hunks: dict[str, list[tuple[int, int, list[bytes]]]] = {}
    deleted: dict[str, list[bytes]] = {}
    path: str | None = None
    in_header = False
    added: list[bytes] | None = None
    for line in data.split(b"\n"):
        if line.startswith(b"diff --git "):
            path, in_header, added = None, True, None
        elif in_header and line.startswith(b"+++ "):
            path = None if line[4:] == b"/dev/null" else _path(line[4:])[2:]
            in_header = False
        elif path is not None and line.startswith(b"@@"):
            m = _HUNK_NEW.match(line)
            added = None
            if m:
                start, count = int(m.group(1)), int(m.group(2) or 1)
                if count > 0:
                    added = []
                    hunks.setdefault(path, []).append((start, start + count - 1, added))
        elif added is not None and line.startswith(b"+"):
            added.append(line[1:])
        elif path is not None and not in_header and line.startswith(b"-"):
            deleted.setdefault(path, []).append(line[1:])
    out: dict[str, tuple[int, int]] = {}
    for p, hs in hunks.items():
        # re-indented and moved lines are not new (as the models count them): the lines
        # the file's diff deletes are taken out of every hunk's count
        gone = _Counter(p)
        for d in deleted.get(p, ()):
            gone.delete(d)
        weight = []
        for _, _, lines in hs:
            c = _Counter(p)
            c.deleted = gone.deleted  # totals() reads a copy
            for line in lines:
                c.add(line)
            weight.append(c.totals()[:2])
        best = max(range(len(hs)), key=lambda i: (weight[i][1], weight[i][0], -i))
        out[p] = hs[best][:2]
    return out


def endings_of(paths: Iterable[str], extensions: Iterable[str]) -> list[str]:
    """The endings of ``paths``, as spelled, that are one of ``extensions`` (any case).

    Each pathspec pattern costs git time on every tree entry of every commit, and git
    matches case-sensitively: the diffs ask for exactly the endings in use."""
    want = {e.lower() for e in extensions}
    found = {PurePosixPath(p).suffix for p in paths}
    return sorted(e for e in found if e and e.lower() in want)


def endings_in_tree(repo: GitRepo, rev: str, extensions: Sequence[str]) -> list[str]:
    """:func:`endings_of` the file names in ``rev``'s tree."""
    if not extensions:
        return []
    out = repo.run("ls-tree", "-r", "-z", "--name-only", rev)
    return endings_of((n.decode("utf-8", "replace") for n in out.split(b"\x00") if n), extensions)
