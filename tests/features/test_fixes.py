from __future__ import annotations

import pytest

from diffrisk.config import FixesConfig
from diffrisk.features.fixes import FixRule, linked_issues

RULE = FixRule.from_config()


@pytest.mark.parametrize(
    ("subject", "body", "expected"),
    [
        ("Fix crash when the config file is empty", "", True),
        ("Fixed off-by-one in pager", "", True),
        ("bugfix: wrong encoding for headers", "", True),
        ("Handle regression in 3.2 parser", "", True),
        ("Restore defaults, fixes #7", "", True),
        ("Fix typo in README", "", False),
        ("fix the CI", "", False),
        ("Fix some check_untyped_defs mypy warnings", "", False),
        ("docs: fix broken link", "", False),
        ("ci: fix cache key", "", False),
        ('Revert "Fix crash in parser"', "", False),
        ("Add streaming support", "Fixes #12", False),  # body: often a feature request
        ("Add streaming support", "", False),
        ("Prefix handling for paths", "", False),  # "prefix" is not the word "fix"
        ("Update deps (#40)", "* fix typo\n* auto fixes", False),
        # an exclusion word just before the keyword, in the same clause
        ("Minor docs fixes", "", False),
        ("Flake8 fixes.", "", False),
        ("More doc typo fixes", "", False),
        ("Add tests and fix the parser crash", "", True),  # "and" starts a new clause
        ("Update tests, fix crash on empty input", "", True),  # so does ", "
        ("Docstring parser crash", "", True),  # two words before: a component's name
        ("Rework docs generation; the loader fix for #12", "", True),
        # rule 4: a conventional-commit fix type is the author's classification
        ("fix(compiler-sfc): fix style injection when using normal script", "", True),
        ("fix(config): Don't merge unmergable config", "", True),
        ("fix: show build script didn't rerun", "", True),
        ("fix!: handle empty headers", "", True),
        ("fix(docs): broken link to the API", "", False),
        ("fix(ci): pin the runner image", "", False),
        ("fix(deps): update dependency rollup to v4", "", False),
        ("fix: typo in README", "", False),
        ("fix: Fix typo in add_directive docstring", "", False),  # a repeated keyword
        ("fix(hydration): fix class and style mismatch", "", True),
        ("fix(runtime-dom/style): fix patchStyle on falsy next value", "", True),
        ("fix(parser): `lint` option ignored", "", True),  # code spans are not words
        # ... and so is a word that names a failure
        ("Fixes mypy crash on protocol members", "", True),
        ("Fix crash when constructor annotation is too short", "", True),
        ("Fix regression in test collection", "", True),
        ("Add regression test for #5621", "", False),  # "regression" names the test
        ("Add regression tests and fix docs", "", False),
        ("Fix some mypy warnings", "", False),
        # code in backticks is not prose
        ("Add a `--edition-idioms` flag to `cargo fix`", "", False),
        ("Document `fix_path` behaviour", "", False),
        ("Fix `Config.merge` dropping keys", "", True),
        ("Fix broken references in `docs/web_reference.rst`", "", False),  # a path is read
    ],
)
def test_rule(subject: str, body: str, expected: bool) -> None:
    assert RULE.is_fix(subject, body) is expected


def test_message_scope_reads_the_body() -> None:
    rule = FixRule.from_config(FixesConfig(scope="message"))
    assert rule.is_fix("Add streaming support", "Fixes #12")
    assert rule.is_fix("Refactor pager", "This fixes a crash on resize.")


def test_linked_issues() -> None:
    assert linked_issues("Closes #3, fixes org/repo#14 and resolves #3") == [3, 14]
    assert linked_issues("see #5") == []
