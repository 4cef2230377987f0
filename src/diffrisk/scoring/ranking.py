"""Which risk level a probability is, on this repository: by rank, or by probability.

With ``score.levels = "rank"`` (the default) a level says where a change ranks among a
reference set of changes scored by the same model: high for the riskiest
``score.high_share`` (5 %), medium for the next ``score.medium_share`` (15 %). So a gate at
"high" blocks about the same share of changes on every repository, whatever its base rate
of defects, and the level never contradicts the percentile the report prints (one number
decides both). The reference, in order of preference:

1. the past year's changes in the change's history (at least ``score.min_reference``);
2. every mined change in its history (a quiet repository);
3. the model's own reference distribution (``score_quantiles`` in its metadata: the bundled
   model's, over the projects it was trained on), for a repository too young to rank by;
4. none: the probability cut-offs ``score.medium`` / ``score.high`` decide, and the result
   says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from diffrisk.config import ScoreConfig
from diffrisk.levels import Level, level_by_rank, level_of, percentile_of, rank_cutoffs

#: How the report names each reference.
REFERENCE_TEXT = {
    "past_year": "this repository's commits in the past year",
    "history": "this repository's commits",
    "model": "the commits of the projects the model was trained on",
    "none": "",
}


@dataclass
class LevelRule:
    """The rule that turns a probability into a level, and its reference."""

    basis: str
    """``rank`` or ``probability``."""
    medium: float
    """The lowest probability that is medium risk (rank: on this reference)."""
    high: float
    reference: str = "none"
    """``past_year``, ``history``, ``model`` or ``none`` (see the module)."""
    compared: int = 0
    high_share: float | None = None
    medium_share: float | None = None
    _scores: np.ndarray | None = field(default=None, repr=False)
    _quantiles: np.ndarray | None = field(default=None, repr=False)

    def percentile(self, p: float) -> float | None:
        """Share (0-100) of the reference below ``p`` (ties half); None without one."""
        if self._scores is not None:
            return percentile_of(p, self._scores)
        if self._quantiles is not None:
            q = self._quantiles
            grid = np.linspace(0.0, 100.0, len(q))
            first = int(np.searchsorted(q, p, side="left"))
            last = int(np.searchsorted(q, p, side="right"))
            if last > first:  # p is a quantile: a stretch of ties counts half, as above
                return float((grid[first] + grid[last - 1]) / 2)
            return float(np.interp(p, q, grid, left=0.0, right=100.0))
        return None

    def level(self, p: float) -> Level:
        pct = self.percentile(p) if self.basis == "rank" else None
        if pct is None or self.high_share is None or self.medium_share is None:
            return level_of(p, self.medium, self.high)
        return level_by_rank(pct, self.high_share, self.medium_share)

    @property
    def reference_text(self) -> str:
        if self.reference == "history":
            return f"this repository's {self.compared} mined commits"
        return REFERENCE_TEXT.get(self.reference, "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "basis": self.basis,
            "medium": self.medium,
            "high": self.high,
            "reference": self.reference,
            "reference_text": self.reference_text,
            "compared": self.compared,
            "high_share": self.high_share,
            "medium_share": self.medium_share,
        }


def _from_scores(cfg: ScoreConfig, scores: np.ndarray, reference: str) -> LevelRule:
    medium, high = rank_cutoffs(scores, cfg.high_share, cfg.medium_share)
    return LevelRule(
        "rank",
        medium,
        high,
        reference,
        len(scores),
        cfg.high_share,
        cfg.medium_share,
        _scores=np.asarray(scores, dtype=float),
    )


def level_rule(
    cfg: ScoreConfig,
    past_scores: np.ndarray,
    history_scores: Callable[[], np.ndarray] | None = None,
    model_quantiles: Sequence[float] | None = None,
) -> LevelRule:
    """The rule for ``cfg``: by rank on the first reference that is large enough (the
    module's list), else by probability."""
    if cfg.levels == "probability":
        return LevelRule("probability", cfg.medium, cfg.high)
    if len(past_scores) >= cfg.min_reference:
        return _from_scores(cfg, past_scores, "past_year")
    if history_scores is not None:
        hist = history_scores()
        if len(hist) >= cfg.min_reference:
            return _from_scores(cfg, hist, "history")
    q = np.asarray(model_quantiles if model_quantiles is not None else [], dtype=float)
    if len(q) >= 11 and np.all(np.isfinite(q)) and np.all(np.diff(q) >= 0):
        grid = np.linspace(0.0, 100.0, len(q))
        medium = float(np.interp(100.0 * (1 - cfg.high_share - cfg.medium_share), grid, q))
        high = float(np.interp(100.0 * (1 - cfg.high_share), grid, q))
        return LevelRule(
            "rank",
            medium,
            high,
            "model",
            0,
            cfg.high_share,
            cfg.medium_share,
            _quantiles=q,
        )
    return LevelRule("probability", cfg.medium, cfg.high)


def score_quantiles(scores: Sequence[float] | np.ndarray, n: int = 101) -> list[float]:
    """``n`` evenly spaced quantiles of a model's scores (its reference distribution, kept
    in its metadata as ``score_quantiles``)."""
    s = np.asarray(scores, dtype=float)
    return [round(float(v), 6) for v in np.quantile(s, np.linspace(0, 1, n))]
