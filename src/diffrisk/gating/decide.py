"""Merge and deployment gates: pure decisions, no I/O.

Merge gate (one pull request):

* ``fail``     the risk level is at or above ``gate.fail_on`` and nobody accepted the risk;
* ``accepted`` it would fail, but the PR carries the override label or an approving review
  by one of ``gate.approvers`` (the decision says who);
* ``warn``     the level is at or above ``gate.warn_on`` (and below ``fail_on``);
* ``pass``     otherwise.

``never`` as ``fail_on``/``warn_on`` switches that step off. Only ``fail`` exits non-zero.
Check-run conclusions: pass -> success, warn/accepted -> neutral (both satisfy a required
check on GitHub), fail -> failure.

Deployment gate (every change in ``base..head``): it fails when the expected number of
defect-inducing changes (the sum of the probabilities, each change being a Bernoulli trial)
is at or above ``gate.deploy_max_expected``; unset, that limit is twice the expected count
of as many typical commits of the past year (their mean probability x the number of
changes, at least 1), so a large but ordinary release ships and a release that is riskier
per change than usual does not. With ``gate.deploy_max_risk`` set (off by default) it also
fails when the riskiest change's probability is at or above that.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Literal

from diffrisk.levels import at_least

Outcome = Literal["pass", "warn", "accepted", "fail"]

CONCLUSIONS: dict[str, str] = {
    "pass": "success",
    "warn": "neutral",
    "accepted": "neutral",
    "fail": "failure",
}


@dataclass(frozen=True)
class Override:
    """Someone accepted the risk: ``kind`` is 'label' or 'approval', ``by`` a GitHub login."""

    kind: Literal["label", "approval"]
    by: str
    detail: str = ""

    def describe(self) -> str:
        if self.kind == "label":
            return (
                f"@{self.by} added the label `{self.detail}`"
                if self.by
                else f"the label `{self.detail}` is set"
            )
        return f"@{self.by} approved the pull request"


@dataclass(frozen=True)
class Review:
    """A pull-request review as the gate needs it."""

    user: str
    state: str  # APPROVED | CHANGES_REQUESTED | COMMENTED | DISMISSED | PENDING
    submitted_at: datetime | None = None
    commit_id: str | None = None


@dataclass(frozen=True)
class LabelEvent:
    """An ``labeled``/``unlabeled`` issue event (who touched which label)."""

    event: Literal["labeled", "unlabeled"]
    label: str
    actor: str
    created_at: datetime | None = None


def find_override(
    labels: Iterable[str],
    reviews: Sequence[Review],
    *,
    override_label: str,
    approvers: Iterable[str],
    label_events: Sequence[LabelEvent] = (),
    head_sha: str | None = None,
) -> Override | None:
    """Who accepted the risk, if anyone.

    The override label wins (credited to whoever added it last, from ``label_events``);
    otherwise an approver whose *latest* deciding review (APPROVED, CHANGES_REQUESTED or
    DISMISSED; comments do not count) is an approval of ``head_sha`` itself: an approval
    of an older commit does not accept what was pushed after it (see
    :func:`stale_approvals`). Logins compare case-insensitively.
    """
    names = {lb.lower() for lb in labels}
    if override_label and override_label.lower() in names:
        by = ""
        for ev in label_events:  # in API order (oldest first): keep the last adder
            if ev.event == "labeled" and ev.label.lower() == override_label.lower():
                by = ev.actor
        return Override("label", by, override_label)
    allowed = {a.lower().lstrip("@") for a in approvers}
    if not allowed:
        return None
    for login, rv in _latest_deciding(reviews).items():
        if login in allowed and rv.state.upper() == "APPROVED" and _of(rv, head_sha):
            return Override("approval", rv.user, rv.commit_id or "")
    return None


def _latest_deciding(reviews: Sequence[Review]) -> dict[str, Review]:
    """Each reviewer's (lower-cased login) latest APPROVED, CHANGES_REQUESTED or DISMISSED
    review, in time order (comments do not count)."""
    latest: dict[str, Review] = {}
    order = sorted(
        enumerate(reviews),
        key=lambda iv: (iv[1].submitted_at is None, iv[1].submitted_at or datetime.min, iv[0]),
    )
    for _, rv in order:
        if rv.state.upper() in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            latest[rv.user.lower()] = rv
    return latest


def _of(review: Review, head_sha: str | None) -> bool:
    return head_sha is None or (review.commit_id or "").lower() == head_sha.lower()


def stale_approvals(
    reviews: Sequence[Review], approvers: Iterable[str], head_sha: str
) -> list[Review]:
    """Approvals by ``approvers`` that are their latest deciding review but were given on
    another commit than ``head_sha``: they do not accept the risk of the newer pushes."""
    allowed = {a.lower().lstrip("@") for a in approvers}
    latest = _latest_deciding(reviews)
    return [
        rv
        for login, rv in latest.items()
        if login in allowed and rv.state.upper() == "APPROVED" and not _of(rv, head_sha)
    ]


@dataclass(frozen=True)
class GateDecision:
    outcome: Outcome
    level: str
    fail_on: str
    warn_on: str
    probability: float | None = None
    accepted_by: Override | None = None
    percentile: float | None = None
    fail_budget: float | None = None
    fail_probability: float | None = None
    reason: str = "level"
    """What blocks (or would): ``level`` (fail_on), ``budget`` or ``probability``."""

    @property
    def blocked(self) -> bool:
        """The level reached ``fail_on`` (whether or not someone accepted it)."""
        return self.outcome in ("fail", "accepted")

    @property
    def conclusion(self) -> str:
        return CONCLUSIONS[self.outcome]

    @property
    def exit_code(self) -> int:
        return 1 if self.outcome == "fail" else 0

    @property
    def message(self) -> str:
        risk = f"{self.level} risk" + (
            f" ({_prob(self.probability)})" if self.probability is not None else ""
        )
        if self.outcome == "fail":
            return f"{risk} {self._why()}: merge blocked"
        if self.outcome == "accepted":
            assert self.accepted_by is not None
            return f"{risk} would block the merge; risk accepted: {self.accepted_by.describe()}"
        if self.outcome == "warn":
            return f"{risk} is at or above warn-on={self.warn_on}: passing with a warning"
        return f"{risk}: passing"

    def _why(self) -> str:
        if self.reason == "budget" and self.percentile is not None:
            return (
                f"ranks above {100 - (self.fail_budget or 0):g}% of the reference changes "
                f"(riskier than {self.percentile:.0f}%; fail-budget={self.fail_budget:g}%)"
            )
        if self.reason == "probability":
            return f"is at or above fail-probability={_prob(self.fail_probability or 0)}"
        return f"is at or above fail-on={self.fail_on}"

    def to_dict(self) -> dict[str, object]:
        return {
            "mode": "merge",
            "outcome": self.outcome,
            "conclusion": self.conclusion,
            "exit_code": self.exit_code,
            "level": self.level,
            "probability": self.probability,
            "fail_on": self.fail_on,
            "warn_on": self.warn_on,
            "fail_budget": self.fail_budget,
            "fail_probability": self.fail_probability,
            "percentile": self.percentile,
            "reason": self.reason if self.blocked else None,
            "accepted_by": asdict(self.accepted_by) if self.accepted_by else None,
            "message": self.message,
        }


def _prob(p: float) -> str:
    from diffrisk.report.render import prob  # one way to print a probability (">99%")

    return prob(p)


def decide(
    level: str,
    *,
    fail_on: str = "high",
    warn_on: str = "medium",
    override: Override | None = None,
    probability: float | None = None,
    percentile: float | None = None,
    fail_budget: float | None = None,
    fail_probability: float | None = None,
) -> GateDecision:
    """The merge-gate decision for one pull request (see the module docstring): blocked
    when the level reaches ``fail_on``, or (when set) the change ranks among the riskiest
    ``fail_budget`` percent, or its probability reaches ``fail_probability``."""
    reason = None
    if at_least(level, fail_on):
        reason = "level"
    elif fail_budget is not None and percentile is not None and percentile >= 100 - fail_budget:
        reason = "budget"
    elif (
        fail_probability is not None and probability is not None and probability >= fail_probability
    ):
        reason = "probability"
    if reason is not None:
        outcome: Outcome = "accepted" if override is not None else "fail"
    else:
        outcome = "warn" if at_least(level, warn_on) else "pass"
    return GateDecision(
        outcome,
        level,
        fail_on,
        warn_on,
        probability,
        override if reason is not None else None,
        percentile=percentile,
        fail_budget=fail_budget,
        fail_probability=fail_probability,
        reason=reason or "level",
    )


@dataclass(frozen=True)
class ShippedChange:
    sha: str
    subject: str
    probability: float
    level: str = ""


@dataclass(frozen=True)
class DeployDecision:
    outcome: Literal["pass", "fail"]
    changes: tuple[ShippedChange, ...]
    expected_defects: float
    riskiest: ShippedChange | None
    max_risk: float | None
    max_expected: float
    reasons: tuple[str, ...] = field(default_factory=tuple)
    expected_rule: str = "deploy_max_expected"  # where ``max_expected`` comes from

    @property
    def conclusion(self) -> str:
        return CONCLUSIONS[self.outcome]

    @property
    def exit_code(self) -> int:
        return 1 if self.outcome == "fail" else 0

    @property
    def message(self) -> str:
        if not self.changes:
            return "nothing to deploy: no non-merge commits between base and head"
        head = (
            f"{len(self.changes)} change(s), expected defect-inducing changes "
            f"{self.expected_defects:.2f}, riskiest {self.riskiest.sha[:12]} "  # type: ignore[union-attr]
            f"({_prob(self.riskiest.probability)})"  # type: ignore[union-attr]
        )
        if self.outcome == "fail":
            return f"deployment blocked: {head}; " + "; ".join(self.reasons)
        return f"deployment allowed: {head}"

    def to_dict(self) -> dict[str, object]:
        return {
            "mode": "deploy",
            "outcome": self.outcome,
            "conclusion": self.conclusion,
            "exit_code": self.exit_code,
            "changes": [asdict(c) for c in self.changes],
            "expected_defects": self.expected_defects,
            "riskiest": asdict(self.riskiest) if self.riskiest else None,
            "max_risk": self.max_risk,
            "max_expected": self.max_expected,
            "expected_rule": self.expected_rule,
            "reasons": list(self.reasons),
            "message": self.message,
        }


#: Without ``gate.deploy_max_expected``: this many times the typical expected count
#: (``gate.deploy_expected_factor``).
TYPICAL_FACTOR = 2.0
#: ... and never below this; the fixed limit when the typical risk is unknown.
MIN_EXPECTED = 1.0
FALLBACK_EXPECTED = 3.0


def expected_limit(
    n: int, max_expected: float | None, typical: float | None, factor: float = TYPICAL_FACTOR
) -> tuple[float, str]:
    """The limit on the expected number of defect-inducing changes, and where it comes from."""
    if max_expected is not None:
        return float(max_expected), "deploy_max_expected"
    if typical is None or not 0.0 <= typical <= 1.0:
        return FALLBACK_EXPECTED, "the default limit (the typical risk is unknown)"
    limit = max(MIN_EXPECTED, round(factor * n * typical, 12))
    return limit, (
        f"{factor:g}x the {n * typical:.2f} that {n} typical commit{'' if n == 1 else 's'} "
        f"of the past year {'carries' if n == 1 else 'carry'}"
        + (f" (at least {MIN_EXPECTED:g})" if limit == MIN_EXPECTED else "")
    )


def decide_deploy(
    changes: Iterable[ShippedChange],
    *,
    max_risk: float | None = None,
    max_expected: float | None = FALLBACK_EXPECTED,
    typical_probability: float | None = None,
    expected_factor: float = TYPICAL_FACTOR,
) -> DeployDecision:
    """Aggregate the changes being shipped and decide (see the module docstring).

    ``max_expected=None``: the limit scales with the release, :func:`expected_limit`.
    """
    items = tuple(changes)
    for c in items:
        if not 0.0 <= c.probability <= 1.0:
            raise ValueError(f"probability of {c.sha} is {c.probability}, not in [0, 1]")
    expected = round(float(sum(c.probability for c in items)), 12)  # 0.1 + 0.2 == 0.3 here
    riskiest = max(items, key=lambda c: c.probability) if items else None
    reasons = []
    if riskiest is not None and max_risk is not None and riskiest.probability >= max_risk:
        reasons.append(
            f"change {riskiest.sha[:12]} has risk {riskiest.probability:.2f} >= deploy_max_risk {max_risk:.2f}"
        )
    limit, source = expected_limit(len(items), max_expected, typical_probability, expected_factor)
    if items and expected >= limit:
        reasons.append(f"expected defect-inducing changes {expected:.2f} >= {limit:.2f} ({source})")
    return DeployDecision(
        "fail" if reasons else "pass",
        items,
        expected,
        riskiest,
        max_risk,
        limit,
        tuple(reasons),
        source,
    )
