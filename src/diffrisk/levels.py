"""Risk levels, defined once: their names, their order, and how a probability maps to one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import numpy as np

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


#: Fewer reference scores than this give no percentile and no rank ("riskier than 100 %
#: of the past year's commits" said of one commit is no comparison).
MIN_COMPARED = 10


def percentile_of(p: float, scores: Sequence[float] | np.ndarray) -> float | None:
    """Share (0-100) of ``scores`` below ``p``, ties counted half; None for fewer than
    :data:`MIN_COMPARED` scores."""
    import numpy as np  # here: reading a level (the gate) needs no numpy

    s = np.asarray(scores, dtype=float)
    if len(s) < MIN_COMPARED:
        return None
    below = float(np.sum(s < p))
    ties = float(np.sum(s == p))
    return 100.0 * (below + 0.5 * ties) / len(s)


def level_by_rank(percentile: float, high_share: float, medium_share: float) -> Level:
    """The level of a change ranked at ``percentile`` (0-100) among the reference changes:
    high for the riskiest ``high_share`` of them, medium for the next ``medium_share``.
    The same percentile the report prints decides it, so the two never disagree."""
    # a hair of tolerance: 95.0 computed as 94.99999999 is still the riskiest 5 %
    if percentile >= 100.0 * (1.0 - high_share) - 1e-9:
        return "high"
    if percentile >= 100.0 * (1.0 - high_share - medium_share) - 1e-9:
        return "medium"
    return "low"


def rank_cutoffs(
    scores: Sequence[float] | np.ndarray, high_share: float, medium_share: float
) -> tuple[float, float]:
    """(medium, high): the lowest probability that reaches each level among ``scores``
    under :func:`level_by_rank` (for display: "high from 23 %")."""
    import numpy as np

    s = np.sort(np.asarray(scores, dtype=float))
    if not len(s):
        return (float("nan"), float("nan"))

    u = np.unique(s)
    below = np.searchsorted(s, u, side="left")
    ties = np.searchsorted(s, u, side="right") - below
    pct = 100.0 * (below + 0.5 * ties) / len(s)

    def lowest(share: float) -> float:
        hit = np.nonzero(pct >= 100.0 * (1.0 - share) - 1e-9)[0]
        return float(u[hit[0]]) if len(hit) else float(u[-1])

    return lowest(high_share + medium_share), lowest(high_share)
