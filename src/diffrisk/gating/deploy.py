"""The deployment gate (:func:`gate_deploy`) around :mod:`diffrisk.gating.decide`: what was
deployed last (a tag or a GitHub deployment), the changes shipped since, what a deployment
drops besides what it ships, and its summary, published by :mod:`diffrisk.gating.publish`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from diffrisk.config import load_judging_config
from diffrisk.errors import (
    ConfigError,
    DiffriskError,
    GitHubError,
    NothingToScoreError,
    RepositoryError,
)
from diffrisk.gating import publish
from diffrisk.gating.decide import DeployDecision, ShippedChange, decide_deploy
from diffrisk.git.revisions import commits_between, newest_tag
from diffrisk.scoring.result import ScoreResult


@dataclass(frozen=True)
class DeployOptions(publish.GateOptions):
    """The deployment gate's options: without ``base``, the last deployment is the newest
    tag matching ``tag_pattern``, or the last successful deployment to ``environment``."""

    environment: str | None = None
    tag_pattern: str | None = None


def gate_deploy(opts: DeployOptions) -> None:
    """Decide whether base..head may ship (every non-merge change in it scored, the
    expected number of defect-inducing changes against the limit) and publish the
    decision; raises :class:`~diffrisk.errors.GateFailure` when it is blocked."""
    gh = publish.connect(opts)
    head = opts.head or "HEAD"
    base = opts.base if opts.base is not None else last_deployed(opts, head, gh)
    cfg = load_judging_config(opts.repo, opts.config_path, base, opts.worktree_config)
    gcfg = cfg.gate
    scored: ScoreResult | None
    try:
        scored = (
            publish.load_score_file(opts.score_file)
            if opts.score_file
            else publish.score_now(opts.repo, opts.data_dir, base, head, cfg)
        )
    except NothingToScoreError:  # nothing new since the last deployment: it passes
        scored = None
    deploy_warnings = [] if opts.score_file else ancestry_warnings(opts.repo, base, head)
    typical = scored.typical_probability if scored is not None else None
    dd = decide_deploy(
        shipped_changes(scored),
        max_risk=gcfg.deploy_max_risk,
        max_expected=gcfg.deploy_max_expected,
        typical_probability=None if typical is None else float(typical),
        expected_factor=gcfg.deploy_expected_factor,
    )
    summary = deploy_summary(
        dd,
        str((scored.base if scored is not None else None) or base),
        str((scored.head if scored is not None else None) or head),
        deploy_warnings,
    )
    publish.finish(
        dd,
        summary,
        scored.head if scored is not None else head,
        gh,
        opts.check,
        opts.check_name or f"{cfg.report.check_name} deploy",
        None,
        opts.as_json,
        opts.quiet,
        warnings=deploy_warnings,
    )


def last_deployed(opts: DeployOptions, head: str, gh: Any) -> str:
    """The base of a deployment without ``--base``: the newest tag matching
    ``tag_pattern`` reachable from ``head``, else the last successful deployment to
    ``environment`` (read from GitHub or GitLab)."""
    if opts.tag_pattern:
        base = newest_tag(opts.repo, head, opts.tag_pattern)
        if base is None:
            raise RepositoryError(
                f"no tag matching {opts.tag_pattern!r} is reachable from {head}",
                hint="pass --base, or tag the last deployment",
            )
        return base
    if opts.environment:
        if gh is None:
            if opts.host == "gitlab":
                raise ConfigError(
                    "--environment needs the project on GitLab and a token",
                    hint="run inside GitLab CI (CI_PROJECT_ID, CI_API_V4_URL) with GITLAB_TOKEN"
                    " (or DIFFRISK_GITLAB_TOKEN) set, or pass --base",
                )
            raise ConfigError(
                "--environment needs the repository on GitHub and a token",
                hint="set GITHUB_REPOSITORY (or --repository) and GITHUB_TOKEN, or pass --base",
            )
        base = last_successful_deployment(gh, opts.environment)
        if base is None:
            raise GitHubError(
                f"no successful deployment to {opts.environment!r} was found",
                hint="pass --base for the first deployment",
            )
        return base
    raise ConfigError(
        "--deploy needs --base, --tag-pattern or --environment",
        hint="pass the last deployed ref with --base",
    )


def shipped_changes(result: ScoreResult | None) -> list[ShippedChange]:
    """The scored commits of a deployment (none when it ships nothing new)."""
    if result is None:
        return []
    return [ShippedChange(c.sha, c.subject, float(c.probability), c.level) for c in result.commits]


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
