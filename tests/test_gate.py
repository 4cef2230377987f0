"""Gate decisions: every level x fail_on x warn_on x override, and deployment aggregation.

Expected values were worked out by hand from the rules in ``diffrisk.gate``'s docstring.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from diffrisk.gate import (
    LabelEvent,
    Override,
    Review,
    ShippedChange,
    at_least,
    decide,
    decide_deploy,
    find_override,
)

# level, fail_on, warn_on -> outcome with no override, with the label, with an approver
CASES = [
    ("low", "high", "high", "pass", "pass", "pass"),
    ("low", "high", "medium", "pass", "pass", "pass"),
    ("low", "high", "never", "pass", "pass", "pass"),
    ("low", "medium", "high", "pass", "pass", "pass"),
    ("low", "medium", "medium", "pass", "pass", "pass"),
    ("low", "medium", "never", "pass", "pass", "pass"),
    ("low", "never", "high", "pass", "pass", "pass"),
    ("low", "never", "medium", "pass", "pass", "pass"),
    ("low", "never", "never", "pass", "pass", "pass"),
    ("medium", "high", "high", "pass", "pass", "pass"),
    ("medium", "high", "medium", "warn", "warn", "warn"),
    ("medium", "high", "never", "pass", "pass", "pass"),
    ("medium", "medium", "high", "fail", "accepted", "accepted"),
    ("medium", "medium", "medium", "fail", "accepted", "accepted"),
    ("medium", "medium", "never", "fail", "accepted", "accepted"),
    ("medium", "never", "high", "pass", "pass", "pass"),
    ("medium", "never", "medium", "warn", "warn", "warn"),
    ("medium", "never", "never", "pass", "pass", "pass"),
    ("high", "high", "high", "fail", "accepted", "accepted"),
    ("high", "high", "medium", "fail", "accepted", "accepted"),
    ("high", "high", "never", "fail", "accepted", "accepted"),
    ("high", "medium", "high", "fail", "accepted", "accepted"),
    ("high", "medium", "medium", "fail", "accepted", "accepted"),
    ("high", "medium", "never", "fail", "accepted", "accepted"),
    ("high", "never", "high", "warn", "warn", "warn"),
    ("high", "never", "medium", "warn", "warn", "warn"),
    ("high", "never", "never", "pass", "pass", "pass"),
]

OVERRIDES = {
    "none": None,
    "label": Override("label", "carol", "diffrisk:accepted"),
    "approver": Override("approval", "dave", "abc123"),
}
EXIT = {"pass": 0, "warn": 0, "accepted": 0, "fail": 1}
CONCLUSION = {"pass": "success", "warn": "neutral", "accepted": "neutral", "fail": "failure"}


def _params():
    for level, fail_on, warn_on, none, label, approver in CASES:
        for kind, expected in (("none", none), ("label", label), ("approver", approver)):
            yield pytest.param(
                level,
                fail_on,
                warn_on,
                kind,
                expected,
                id=f"{level}-fail_{fail_on}-warn_{warn_on}-{kind}",
            )


def test_table_covers_every_combination():
    combos = {(lv, f, w) for lv, f, w, *_ in CASES}
    assert len(combos) == len(CASES) == 3 * 3 * 3


@pytest.mark.parametrize(("level", "fail_on", "warn_on", "override", "expected"), list(_params()))
def test_merge_gate_decision(level, fail_on, warn_on, override, expected):
    ov = OVERRIDES[override]
    d = decide(level, fail_on=fail_on, warn_on=warn_on, override=ov, probability=0.5)
    assert d.outcome == expected
    assert d.exit_code == EXIT[expected]
    assert d.conclusion == CONCLUSION[expected]
    if expected == "accepted":
        assert d.accepted_by == ov
        who = "@carol" if override == "label" else "@dave"
        assert who in d.message
        assert d.blocked
    else:
        assert d.accepted_by is None
    if expected == "fail":
        assert "blocked" in d.message and d.blocked
    assert d.to_dict()["outcome"] == expected


def test_at_least_rejects_unknown_values():
    assert (
        at_least("high", "medium")
        and not at_least("low", "medium")
        and not at_least("high", "never")
    )
    with pytest.raises(ValueError):
        at_least("critical", "high")
    with pytest.raises(ValueError):
        at_least("high", "low-ish")


def _t(day: int) -> datetime:
    return datetime(2024, 1, day, tzinfo=timezone.utc)


def test_override_label_credits_last_person_who_added_it():
    events = [
        LabelEvent("labeled", "diffrisk:accepted", "erin", _t(1)),
        LabelEvent("unlabeled", "diffrisk:accepted", "erin", _t(2)),
        LabelEvent("labeled", "bug", "zed", _t(3)),
        LabelEvent("labeled", "Diffrisk:Accepted", "frank", _t(4)),
    ]
    ov = find_override(
        ["bug", "diffrisk:accepted"],
        [],
        override_label="diffrisk:accepted",
        approvers=[],
        label_events=events,
    )
    assert ov == Override("label", "frank", "diffrisk:accepted")
    assert ov.describe() == "@frank added the label `diffrisk:accepted`"


def test_override_label_absent_means_no_override():
    assert (
        find_override(["bug"], [], override_label="diffrisk:accepted", approvers=["dave"]) is None
    )


def test_approval_counts_only_for_listed_approvers_and_latest_review():
    reviews = [
        Review("Dave", "APPROVED", _t(1), "c1"),
        Review("dave", "CHANGES_REQUESTED", _t(2), "c2"),
        Review("mallory", "APPROVED", _t(3), "c2"),  # not an approver
        Review("gina", "APPROVED", _t(3), "c2"),
        Review("gina", "COMMENTED", _t(4), "c2"),  # a comment does not withdraw it
    ]
    assert find_override([], reviews, override_label="x", approvers=["dave"]) is None
    assert find_override([], reviews, override_label="x", approvers=["@Gina", "dave"]) == Override(
        "approval", "gina", "c2"
    )
    later = [*reviews, Review("dave", "APPROVED", _t(5), "c3")]
    assert find_override([], later, override_label="x", approvers=["dave"]) == Override(
        "approval", "dave", "c3"
    )
    dismissed = [Review("gina", "APPROVED", _t(1)), Review("gina", "DISMISSED", _t(2))]
    assert find_override([], dismissed, override_label="x", approvers=["gina"]) is None
    assert find_override([], reviews, override_label="x", approvers=[]) is None


def _changes(*ps: float) -> list[ShippedChange]:
    return [ShippedChange(f"{i:040x}", f"change {i}", p) for i, p in enumerate(ps, 1)]


@pytest.mark.parametrize(
    ("probs", "max_risk", "max_expected", "outcome", "expected", "riskiest", "n_reasons"),
    [
        ((), 0.8, 3.0, "pass", 0.0, None, 0),
        ((0.2, 0.3, 0.1), 0.8, 3.0, "pass", 0.6, 2, 0),
        ((0.85, 0.1), 0.8, 3.0, "fail", 0.95, 1, 1),  # one very risky change
        ((0.8,), 0.8, 3.0, "fail", 0.8, 1, 1),  # "at or above"
        ((0.79,), 0.8, 3.0, "pass", 0.79, 1, 0),
        ((0.5,) * 6, 0.8, 3.0, "fail", 3.0, 1, 1),  # many moderate changes add up
        ((0.5,) * 5, 0.8, 3.0, "pass", 2.5, 1, 0),
        ((0.9,) * 4, 0.8, 3.0, "fail", 3.6, 1, 2),  # both rules
        ((0.25, 0.25), 1.0, 0.5, "fail", 0.5, 1, 1),
        ((0.1, 0.2), 1.0, 0.3, "fail", 0.3, 2, 1),  # float sum 0.30000000000000004 rounds to 0.3
    ],
)
def test_deploy_aggregation(probs, max_risk, max_expected, outcome, expected, riskiest, n_reasons):
    ch = _changes(*probs)
    d = decide_deploy(ch, max_risk=max_risk, max_expected=max_expected)
    assert d.outcome == outcome
    assert d.exit_code == (1 if outcome == "fail" else 0)
    assert d.expected_defects == pytest.approx(expected)
    assert (d.riskiest is None) if riskiest is None else (d.riskiest == ch[riskiest - 1])
    assert len(d.reasons) == n_reasons
    assert d.to_dict()["outcome"] == outcome


def test_deploy_rejects_probability_out_of_range():
    with pytest.raises(ValueError):
        decide_deploy(_changes(1.2))
