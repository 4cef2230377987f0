"""How numbers are said in every output: counts with their noun, probabilities, percents.

One definition each, used by the report templates' filters, the explanations, the
monitor and the CLI.
"""

from __future__ import annotations


def plural(count: float, word: str, many: str | None = None) -> str:
    """``1 commit``, ``3 commits`` (``many`` for irregular plurals)."""
    c = int(count)
    return f"{c} {word if c == 1 else (many or word + 's')}"


def number(x: float) -> str:
    """A whole number as such, anything else to one decimal."""
    return f"{int(x)}" if float(x).is_integer() else f"{x:.1f}"
