"""Where bug fixes come from, each recorded as the fix's provenance.

A source turns what it knows (commit messages, an issue tracker, a file a team keeps)
into :class:`FixEvidence` rows; :func:`combine` merges them per commit. The label stage
(:mod:`diffrisk.labelling.label`) blames the fixes, or, where a source names the commit
that introduced the bug itself (:attr:`FixEvidence.inducing`), trusts that link instead.

Sources, by :data:`SOURCES` name:

* ``message``: the keyword rule of :mod:`diffrisk.features.fixes` (subject line), judged
  also by what the commit changes (a "fix" of tests, docs or stubs only is not a bug fix);
* ``developer``: the developers' own words in full messages: "introduced in <sha>",
  ``Fixes: <sha> ("subject")`` trailers, reverts (:mod:`.words`);
* ``github``: issues and pull requests with a bug label (a token; :mod:`.github`);
* ``jira``: JIRA issue keys in messages whose issue type is a bug (:mod:`.jira`);
* ``file``: a file of fix commits a team keeps (:mod:`.external`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

SOURCES = ("message", "developer", "github", "jira", "file")
"""Every fix source, in the order their provenance is listed."""


@dataclass(frozen=True)
class FixEvidence:
    """One source's word that commit ``sha`` fixes a bug."""

    sha: str
    source: str
    """One of :data:`SOURCES`."""
    issue_date: int | None = None
    """When the bug was reported (epoch seconds), if the source knows: candidates
    committed after it cannot have induced the bug (the issue-date filter)."""
    issue: str | None = None
    """The bug report it came from ("#12", "ZOOKEEPER-123"), for the label report."""
    inducing: tuple[str, ...] = ()
    """Commits the source itself names as having introduced the bug (developers' words,
    a file): trusted above SZZ's blame."""


@dataclass
class Fix:
    """Every source's evidence for one fix commit, combined."""

    sha: str
    sources: list[str] = field(default_factory=list)
    issue_date: int | None = None
    """The earliest bug-report date any source gave."""
    issues: list[str] = field(default_factory=list)
    inducing: list[str] = field(default_factory=list)
    """Explicitly named bug-introducing commits (first named first)."""
    named_by: dict[str, str] = field(default_factory=dict)
    """Each of ``inducing`` -> the source that named it."""


def combine(evidence: Iterable[FixEvidence]) -> dict[str, Fix]:
    """Evidence per commit -> one :class:`Fix` each (sources in :data:`SOURCES` order, the
    earliest issue date, every named inducing commit once)."""
    out: dict[str, Fix] = {}
    for ev in evidence:
        fix = out.get(ev.sha)
        if fix is None:
            fix = out[ev.sha] = Fix(ev.sha)
        if ev.source not in fix.sources:
            fix.sources.append(ev.source)
        if ev.issue_date is not None and (fix.issue_date is None or ev.issue_date < fix.issue_date):
            fix.issue_date = ev.issue_date
        if ev.issue and ev.issue not in fix.issues:
            fix.issues.append(ev.issue)
        for sha in ev.inducing:
            if sha not in fix.inducing:
                fix.inducing.append(sha)
                fix.named_by[sha] = ev.source
    order = {s: i for i, s in enumerate(SOURCES)}
    for fix in out.values():
        fix.sources.sort(key=lambda s: order.get(s, len(order)))
    return out
