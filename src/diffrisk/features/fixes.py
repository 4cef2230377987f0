"""Bug-fix classification from commit messages (the FIX feature, and SZZ's starting points).

The rule, applied to the subject line by default (``fixes.scope``):

1. A commit is a fix candidate when a word of its subject is one of ``fixes.keywords``
   (case-insensitive, whole words: "Fix", "fixed", "bugfix", "regression", ...), or the
   subject says it fixes an issue ("fixes #12", "fixed org/repo#3"; "closes #3" alone
   does not count, it closes feature requests too).
2. It is *not* a fix when the keyword is about tooling or prose: an ``fixes.exclude``
   word ("typo", "docs", "lint", "mypy", "ci", "tests", ...) among the five words after
   the keyword ("Fix typo", "fix the CI", "fix some mypy warnings") or the word just
   before it in the same clause ("Docs fixes", "Minor typo fix", "Flake8 fixes"; "add
   tests and fix the parser" and "Update tests, fix crash" are still fixes), or a
   conventional-commit prefix of a non-code type ("docs:", "ci:", "test:", "style:",
   "chore:", "build:").
3. Two things outweigh an exclusion word: a conventional-commit ``fix`` type ("fix:",
   "fix(parser):" -- the author's own classification; "fix(compiler-sfc): fix style
   injection" is a fix) unless its scope is a non-code one ("fix(docs):", "fix(ci):",
   "fix(deps):"; the scope as a whole: "fix(runtime-dom/style):" is a component) or its
   description starts with a prose or tooling word (``NONCODE_FIRST``; "fix: typo in
   README", "fix: Fix typo in ..."); and a word that names a failure (``STRONG``:
   "crash", "regression", "hotfix", "defect", "fault"; "Fix mypy crash on protocols" is a
   fix, "Add regression test for #5621" is not).
4. Text in backticks is code, not prose: "Add a flag to `cargo fix`" names a command
   (a path in backticks is read: "Fix broken references in `docs/api.rst`").
5. Reverts are not fixes (the reverted commit is found by other means).

The body is not read unless ``scope = "message"``: squash-merge bodies list intermediate
titles ("fix typo", "auto fixes"), and a "Fixes #12" line in a body closes feature
requests as often as bugs (on pytest, body-only "fixes #N" commits were 22% of the fixes
and mostly features, in a hand-checked sample). Issue numbers are still recorded
(``issue_refs``), and the GitHub source of ``diffrisk label`` reads the issues' labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from diffrisk.config import FixesConfig

_WORD = re.compile(r"[a-z0-9][a-z0-9'_-]*")
_CLOSES = re.compile(
    r"\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s*:?\s+(?:[\w.-]+/[\w.-]+)?#(\d+)", re.I
)
# "closes #3" also closes feature requests; only "fixes #3" marks a fix by itself.
_FIXES_ISSUE = re.compile(r"\bfix(?:e[sd])?\s*:?\s+(?:[\w.-]+/[\w.-]+)?#\d+", re.I)
_NONCODE_PREFIX = re.compile(
    r"^\s*(docs?|ci|test|tests|style|chore|build|release)(\([^)]*\))?!?:", re.I
)
_REVERT = re.compile(r"^\s*revert\b", re.I)
_CONVENTIONAL_FIX = re.compile(r"^\s*(?:bug|hot)?fix(?:\(([^)]*)\))?!?:\s*(.*)$", re.I | re.S)
_CODE_SPAN = re.compile(r"`([^`]*)`")


def _code_as_blank(text: str) -> str:
    """Blank out code spans, except file paths ("`docs/api.rst`": the words say where)."""
    return _CODE_SPAN.sub(lambda m: f" {m.group(1)} " if "/" in m.group(1) else " ", text)


NONCODE_SCOPES = frozenset(
    {"deps", "deps-dev", "dependencies", "dependency", "release", "changelog", "readme"}
)
"""Conventional-commit scopes that are not code, besides ``fixes.exclude`` ("fix(deps):"
is how dependency bots title an update)."""
NONCODE_FIRST = frozenset(
    {
        "typo", "typos", "docs", "doc", "documentation", "docstring", "docstrings", "comment",
        "comments", "readme", "changelog", "lint", "linter", "linting", "flake8", "ruff",
        "pylint", "mypy", "pyright", "typing", "ci", "test", "tests", "spelling", "grammar",
        "formatting", "whitespace",
    }
)  # fmt: skip
"""Exclusion words that make a conventional ``fix:`` a non-fix as the description's first
word ("fix: typo in README"); words such as "style", "merge" or "build" open real fixes
there ("fix(compiler-sfc): fix style injection")."""
STRONG = frozenset(
    {"crash", "crashes", "regression", "regressions", "hotfix", "defect", "defects", "fault"}
)
"""Keywords that name a failure: an exclusion word near them does not cancel them."""

RULE_VERSION = 4
"""Bumped whenever the rule's code changes, so mined datasets are re-classified."""
EXCLUDE_WINDOW = 5
"""Words after a fix keyword searched for an exclusion ("fix some mypy warnings")."""
EXCLUDE_BEFORE = 1
"""Words before a fix keyword searched for an exclusion ("Minor docs fixes", "typo fix"):
one, since two also caught component names ("Docstring parser crash")."""
_CLAUSE = frozenset({"and", "plus", "also", "then", "while"})
"""Words that start a new clause: an exclusion before one does not qualify the keyword."""
_BREAK = re.compile(r"[,;:.!?](?=\s|$)")
"""Punctuation that ends a clause ("Update tests, fix crash on empty input")."""


@dataclass(frozen=True)
class FixRule:
    """Compiled form of :class:`FixesConfig`; cheap to call once per commit."""

    keywords: frozenset[str]
    exclude: frozenset[str]
    scope: str = "subject"

    @classmethod
    def from_config(cls, cfg: FixesConfig | None = None) -> FixRule:
        cfg = cfg or FixesConfig()
        return cls(
            frozenset(k.lower() for k in cfg.keywords),
            frozenset(e.lower() for e in cfg.exclude),
            cfg.scope,
        )

    def _keyword_hit(self, text: str) -> bool:
        text = _code_as_blank(text)
        words: list[str] = []
        clause: list[int] = []  # each word's clause; a conjunction belongs to none (-1)
        for n, part in enumerate(_BREAK.split(text.lower())):
            for w in _WORD.findall(part):
                words.append(w)
                clause.append(-1 if w in _CLAUSE else n)
        for i, w in enumerate(words):
            if w in self.keywords:
                after = words[i + 1 : i + 1 + EXCLUDE_WINDOW]
                before = []  # the words just before it, within its clause
                for j in range(i - 1, max(i - EXCLUDE_BEFORE, 0) - 1, -1):
                    if clause[j] != clause[i]:
                        break
                    before.append(words[j])
                # a failure word modifying an excluded noun is not one ("regression test")
                strong = w in STRONG and not (after and after[0] in self.exclude)
                if strong or not any(a in self.exclude for a in (*before, *after)):
                    return True
        return False

    def is_fix(self, subject: str, body: str = "") -> bool:
        """True when the commit with this subject (and body) is classified as a bug fix."""
        if _REVERT.match(subject) or _NONCODE_PREFIX.match(subject):
            return False
        conventional = _CONVENTIONAL_FIX.match(subject)
        if conventional:
            # the scope as a whole ("runtime-dom/style" is a component, "docs" is not code)
            scope = (conventional.group(1) or "").strip().lower()
            words = _WORD.findall(_code_as_blank(conventional.group(2)).lower())
            while words and words[0] in self.keywords:  # "fix: Fix typo in ..."
                words = words[1:]
            first = words[0] if words else ""
            return not (
                scope in self.exclude | NONCODE_SCOPES
                or (first in self.exclude and first in NONCODE_FIRST)
            )
        if self._keyword_hit(subject):
            return True
        if self.scope == "message" and body and self._keyword_hit(body):
            return True
        if _FIXES_ISSUE.search(subject):
            return True
        return self.scope == "message" and bool(body and _FIXES_ISSUE.search(body))


def linked_issues(message: str) -> list[int]:
    """Issue numbers a message closes ("fixes #12", "closes #3")."""
    return sorted({int(m) for m in _CLOSES.findall(message)})
