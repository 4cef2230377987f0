"""Risk levels, defined once: their names, their order, and how a probability maps to one."""

from __future__ import annotations

from typing import Literal

Level = Literal["low", "medium", "high"]
Threshold = Literal["high", "medium", "never"]
"""What a gate blocks or warns at: ``gate.fail_on`` and ``gate.warn_on``."""

#: The levels, lowest first.
LEVELS: tuple[Level, ...] = ("low", "medium", "high")


def level_of(probability: float, medium: float, high: float) -> Level:
    """The level of ``probability`` with the ``score.medium`` / ``score.high`` cut-offs."""
    if probability >= high:
        return "high"
    if probability >= medium:
        return "medium"
    return "low"


def at_least(level: str, threshold: str) -> bool:
    """True when ``level`` (low|medium|high) reaches ``threshold`` (low|medium|high|never)."""
    if level not in LEVELS:
        raise ValueError(f"unknown risk level {level!r}")
    if threshold == "never":
        return False
    if threshold not in LEVELS:
        raise ValueError(f"unknown gate threshold {threshold!r}")
    return LEVELS.index(level) >= LEVELS.index(threshold)
