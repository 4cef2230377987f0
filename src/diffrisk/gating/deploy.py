"""The deployment gate around :mod:`diffrisk.gating.decide`: what was deployed last (a
tag or a GitHub deployment), what a deployment drops besides what it ships, and its summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from diffrisk.errors import DiffriskError
from diffrisk.gating.decide import DeployDecision
from diffrisk.git.revisions import commits_between


def last_successful_deployment(client: Any, environment: str) -> str | None:
    """Sha of the newest deployment to ``environment`` whose latest status is ``success``."""
    return client.last_successful_deployment(environment)


def ancestry_warnings(repo: str, base: str | None, head: str) -> list[str]:
    """What a deployment of ``head`` over ``base`` does besides shipping base..head: a
    rollback (head is older than base) or a diverged base (commits of base that head lacks)."""

    if not base:
        return []
    try:
        dropped, new = commits_between(repo, base, head)
    except DiffriskError:
        return []  # scoring has said what is wrong with them
    if not dropped:
        return []
    if not new:
        return [
            f"{head} is older than {base}: this deployment rolls back {dropped} commit(s) "
            "and ships nothing new (a rollback is not scored)"
        ]
    return [
        f"{base} is not an ancestor of {head}: besides the changes scored here, this "
        f"deployment drops {dropped} commit(s) of {base} that {head} lacks (not scored)"
    ]


#: The deployment summary lists this many of the riskiest changes.
DEPLOY_ROWS = 20


def deploy_summary(d: DeployDecision, base: str, head: str, warnings: Sequence[str] = ()) -> str:
    icon = "✅" if d.outcome == "pass" else "❌"
    lines = [f"### {icon} diffrisk deployment gate: {d.outcome}", "", d.message, ""]
    lines += [f"> **Warning:** {w}" for w in warnings]
    if warnings:
        lines.append("")
    lines.append(f"- shipping `{base[:12]}..{head[:12]}`: {len(d.changes)} change(s)")
    one = "" if d.max_risk is None else f"the riskiest change >= {d.max_risk:.2f} or "
    lines.append(
        f"- rule: fail when {one}the expected number of "
        f"defect-inducing changes (sum of probabilities) >= {d.max_expected:.2f} "
        f"({d.expected_rule})"
    )
    if d.changes:
        lines += ["", "| commit | risk | subject |", "| --- | ---: | --- |"]
        for c in sorted(d.changes, key=lambda c: -c.probability)[:DEPLOY_ROWS]:
            from diffrisk.report.render import md, prob

            subject = c.subject if len(c.subject) <= 80 else c.subject[:79].rstrip() + "…"
            lines.append(f"| `{c.sha[:12]}` | {prob(c.probability)} | {md(subject)} |")
        if len(d.changes) > DEPLOY_ROWS:
            lines += [
                "",
                f"... and {len(d.changes) - DEPLOY_ROWS} less risky change(s) (all in `--json`)",
            ]
    return "\n".join(lines) + "\n"
