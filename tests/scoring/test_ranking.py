"""Levels by rank: the rule, its cut-offs, and the reference it falls back on."""

from __future__ import annotations

import numpy as np
import pytest

from diffrisk.config import ScoreConfig
from diffrisk.levels import level_by_rank, percentile_of, rank_cutoffs
from diffrisk.scoring.ranking import level_rule, score_quantiles

# 100 scores 0.00, 0.01, ..., 0.99: the percentile of 0.95 is 95.5 (95 below, one tie)
HUNDRED = np.arange(100) / 100


def test_level_by_rank_shares() -> None:
    assert level_by_rank(95.0, 0.05, 0.15) == "high"
    assert level_by_rank(94.9, 0.05, 0.15) == "medium"
    assert level_by_rank(80.0, 0.05, 0.15) == "medium"
    assert level_by_rank(79.9, 0.05, 0.15) == "low"


def test_cutoffs_are_the_lowest_probability_of_each_level() -> None:
    medium, high = rank_cutoffs(HUNDRED, 0.05, 0.15)
    # 0.95 ranks at 95.5 (high); 0.94 at 94.5 (not); 0.80 at 80.5 (medium); 0.79 at 79.5
    assert (medium, high) == (0.80, 0.95)
    for p in HUNDRED:
        lvl = level_by_rank(percentile_of(p, HUNDRED), 0.05, 0.15)
        assert (lvl == "high") == (p >= high) and (lvl != "low") == (p >= medium)
    # every change the same: the tie ranks at 50 for all of them, so none is high
    same = np.full(50, 0.3)
    assert rank_cutoffs(same, 0.05, 0.15) == (0.3, 0.3)
    assert level_by_rank(percentile_of(0.3, same), 0.05, 0.15) == "low"


def test_the_share_at_each_level_matches_the_budget() -> None:
    rng = np.random.default_rng(3)
    ref = rng.beta(1, 8, 2000)  # a skewed score distribution, as real models give
    rule = level_rule(ScoreConfig(), ref)
    levels = [rule.level(float(p)) for p in ref]
    assert abs(levels.count("high") / len(ref) - 0.05) < 0.002
    assert abs(levels.count("medium") / len(ref) - 0.15) < 0.002


def test_reference_fallbacks() -> None:
    cfg = ScoreConfig()
    few = HUNDRED[:50]
    assert level_rule(cfg, HUNDRED).reference == "past_year"
    hist = level_rule(cfg, few, lambda: HUNDRED)
    assert hist.reference == "history" and hist.compared == 100
    assert hist.reference_text == "this repository's 100 mined commits"
    q = score_quantiles(np.linspace(0, 1, 1001))
    assert len(q) == 101 and q[50] == 0.5
    model = level_rule(cfg, few, lambda: few, q)
    assert model.reference == "model" and model.basis == "rank"
    assert model.high == pytest.approx(0.95) and model.medium == pytest.approx(0.80)
    assert model.level(0.97) == "high" and model.level(0.9) == "medium"
    assert model.level(0.5) == "low" and model.percentile(0.5) == pytest.approx(50.0)
    none = level_rule(cfg, few, lambda: few, None)
    assert none.basis == "probability" and (none.medium, none.high) == (0.4, 0.7)
    assert none.level(0.5) == "medium" and none.percentile(0.5) is None
    prob = level_rule(ScoreConfig(levels="probability"), HUNDRED)
    assert prob.basis == "probability" and prob.level(0.75) == "high"


def test_shares_must_leave_room_for_low() -> None:
    with pytest.raises(ValueError, match="some changes must be low risk"):
        ScoreConfig(high_share=0.5, medium_share=0.5)
