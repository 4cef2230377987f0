"""``diffrisk gate``: the merge gate (one pull request) and the deployment gate (``--deploy``).

The decisions are :mod:`diffrisk.gating.decide`'s; this module gathers their inputs (the score, the
PR's labels and reviews, the last deployment) and publishes the result (exit code, check
run, step outputs, job summary).
"""

from __future__ import annotations

import fnmatch
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from diffrisk.cli.output import (
    Console,
    config_option,
    data_dir_option,
    json_option,
    load_judging_config,
    lock_data_dir,
    print_json,
    quiet_option,
    repo_option,
    worktree_config_option,
)
from diffrisk.data.paths import default_data_dir
from diffrisk.errors import (
    ConfigError,
    DataError,
    GateFailure,
    GitHubError,
    NothingToScoreError,
    RepositoryError,
)
from diffrisk.gating.decide import (
    DeployDecision,
    GateDecision,
    LabelEvent,
    Override,
    Review,
    ShippedChange,
    decide,
    decide_deploy,
    find_override,
    stale_approvals,
)

THRESHOLDS = click.Choice(["high", "medium", "never"])
DEFAULT_API = "https://api.github.com"


# --------------------------------------------------------------------------- GitHub


def _client(
    repository: str, token: str, api_url: str | None, write_interval: float = 1.0, **options: Any
) -> Any:
    """diffrisk.hosts.github.client's client: retries, error translation, token redaction."""
    from diffrisk.hosts.github.client import GitHubClient

    return GitHubClient(
        repository,
        token,
        api_url=(api_url or DEFAULT_API).rstrip("/"),
        seconds_between_writes=write_interval,
        **options,
    )


def read_acceptance(
    client: Any,
    number: int,
    override_label: str,
    approvers: list[str],
    head_sha: str | None = None,
    warnings: list[str] | None = None,
) -> Override | None:
    """The PR's labels, label events and reviews, turned into an :class:`Override` (or None).

    Only an approval of ``head_sha`` counts; older ones, and a failure to read the PR
    (then nothing is accepted: the gate decides on the risk alone), add to ``warnings``.
    """
    from diffrisk.errors import GitHubError

    def read() -> tuple[list[str], list[LabelEvent], list[Review]]:
        pull = client.repo.get_pull(number)
        labels = [lb.name for lb in pull.labels]
        events: list[LabelEvent] = []
        if override_label.lower() in {lb.lower() for lb in labels}:
            for ev in pull.get_issue_events():
                if ev.event in ("labeled", "unlabeled") and ev.label is not None:
                    actor = ev.actor.login if ev.actor is not None else ""
                    events.append(LabelEvent(ev.event, ev.label.name, actor, ev.created_at))
        reviews: list[Review] = []
        if approvers:
            for rv in pull.get_reviews():
                user = rv.user.login if rv.user is not None else ""
                reviews.append(Review(user, rv.state or "", rv.submitted_at, rv.commit_id))
        return labels, events, reviews

    notes = warnings if warnings is not None else []
    try:
        labels, events, reviews = client._call(f"read labels and reviews of #{number}", read)
    except GitHubError as err:
        notes.append(f"no override was read, so none applies: {err.message}")
        return None
    found = find_override(
        labels,
        reviews,
        override_label=override_label,
        approvers=approvers,
        label_events=events,
        head_sha=head_sha,
    )
    if found is None and head_sha:
        for rv in stale_approvals(reviews, approvers, head_sha):
            notes.append(
                f"@{rv.user}'s approval was given on {(rv.commit_id or 'an older commit')[:12]}, "
                f"not on the head {head_sha[:12]}: it does not accept the risk of later pushes; "
                "an approval of the head commit does"
            )
    return found


def post_check(
    client: Any,
    head_sha: str,
    name: str,
    conclusion: str,
    title: str,
    summary: str,
    annotations: list[dict[str, Any]],
) -> str | None:
    """A completed check run (a commit status when check runs are refused); a warning
    instead of an error when the token may write neither (a fork's pull request)."""
    from diffrisk.errors import GitHubError
    from diffrisk.hosts.github.client import PermissionDenied

    try:
        client.publish_check(head_sha, name, conclusion, title, summary, annotations)
    except PermissionDenied:
        return (
            "could not create the check run or commit status: the token needs `checks: write` "
            "(fork pull requests get a read-only token: use the workflow_run pattern in docs/gating.md)"
        )
    except GitHubError as err:  # the exit code still carries the decision
        return f"the check run was not posted: {err.message}"
    return None


def comment_decision(
    client: Any, number: int, result: dict[str, Any], decision: GateDecision, cfg: Any
) -> str | None:
    """Edit the report's sticky comment so it ends with the gate's decision (who accepted the
    risk, or why the merge is blocked); a warning instead of an error when not allowed."""
    from diffrisk.hosts.github.actions import cut_markdown
    from diffrisk.hosts.github.client import GitHubContext, PermissionDenied, add_reviewer_logins
    from diffrisk.report import render as report

    context = GitHubContext.from_env()
    result = report.result_dict(result)
    add_reviewer_logins(result, client, context.server_url)
    body = report.render_comment(
        result, cfg.report, repo_root=cfg.source, summary_url=context.run_url
    )
    section = "\n\n---\n\n" + merge_summary(decision, None)
    body = cut_markdown(body, report.COMMENT_LIMIT - len(section), "_(cut)_") + section
    try:
        client.upsert_comment(number, body, report.comment_marker(cfg.report.check_name), "update")
    except PermissionDenied:
        return "could not add the gate's decision to the PR comment: the token is read-only here"
    except GitHubError as err:  # the decision must not depend on a comment
        return f"the gate's decision was not added to the PR comment: {err.message}"
    return None


def last_successful_deployment(client: Any, environment: str) -> str | None:
    """Sha of the newest deployment to ``environment`` whose latest status is ``success``."""

    def find() -> str | None:
        for dep in client.repo.get_deployments(environment=environment):  # newest first
            for status in dep.get_statuses():  # newest first: only the latest counts
                if status.state == "success":
                    return dep.sha
                break
        return None

    return client._call(f"list deployments to {environment!r}", find)


# --------------------------------------------------------------------------- inputs


def _event() -> dict[str, Any]:
    from diffrisk.hosts.github.actions import read_event

    return read_event()


def pr_from_event(event: dict[str, Any]) -> tuple[int | None, str | None, str | None]:
    """(number, base sha, head sha) of the pull request in a pull_request(_target/_review) or
    workflow_run payload; Nones when there is none."""
    from diffrisk.hosts.github.events import pull_request_of

    pr = pull_request_of(event)
    if pr is None or pr.kind == "issue" or (pr.kind == "workflow_run" and pr.number is None):
        return None, None, None
    return pr.number, pr.base, pr.head


def _load_score_file(path: str) -> dict[str, Any]:
    """A result saved by ``diffrisk score --json --output`` (checked by diffrisk.report.render)."""
    from diffrisk.report import render as report

    try:
        d = report.result_dict(report.load_result(path))
    except DataError as err:
        raise DataError(
            err.message, hint=err.hint or "write it with `diffrisk score --json --output FILE`"
        ) from None
    if d.get("level") not in ("low", "medium", "high"):
        raise DataError(
            f"{path} has no risk level low|medium|high",
            hint="write it with `diffrisk score --json --output FILE`",
        )
    return d


def _score_now(repo: str, data_dir: Path, base: str | None, head: str, cfg: Any) -> dict[str, Any]:
    """Run the score stage for base...head and return its ``to_dict()``."""
    from diffrisk.scoring.score import score

    if not base:
        raise ConfigError("no base revision to score against", hint="pass --base (or --score-file)")
    return score(repo, base, head, data_dir=data_dir, config=cfg).to_dict()


def _ancestry_warnings(repo: str, base: str | None, head: str) -> list[str]:
    """What a deployment of ``head`` over ``base`` does besides shipping base..head: a
    rollback (head is older than base) or a diverged base (commits of base that head lacks)."""
    from diffrisk.errors import DiffriskError
    from diffrisk.git.repo import open_repo

    if not base:
        return []
    try:
        gr = open_repo(repo)
        b, h = gr.resolve(base), gr.resolve(head)

        def count(*args: str) -> int:
            out = gr.run("rev-list", "--count", *args).decode().strip()
            return int(out) if out.isdigit() else 0

        dropped, new = count("--no-merges", f"{h}..{b}"), count("--no-merges", f"{b}..{h}")
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


def _tag_base(repo: str, head: str, pattern: str) -> str | None:
    from diffrisk.git.repo import open_repo

    gr = open_repo(repo)
    out = gr.run(
        "tag", "--merged", head, "--sort=-creatordate", "--list", pattern, check=False
    ).decode()
    tags = [t for t in out.splitlines() if t and fnmatch.fnmatchcase(t, pattern)]
    return tags[0] if tags else None


# --------------------------------------------------------------------------- publishing


def _publish(decision: GateDecision | DeployDecision, summary_md: str) -> None:
    from diffrisk.hosts.github.actions import annotate, append_summary, in_actions, set_outputs

    set_outputs({"gate-outcome": decision.outcome, "gate-conclusion": decision.conclusion})
    if in_actions():
        append_summary(summary_md)
        if decision.outcome == "fail":
            annotate("error", decision.message, title="diffrisk gate")
        elif decision.outcome in ("warn", "accepted"):
            annotate("warning", decision.message, title="diffrisk gate")


def merge_summary(d: GateDecision, head: str | None) -> str:
    icon = {"pass": "✅", "warn": "⚠️", "accepted": "🟡", "fail": "❌"}[d.outcome]
    lines = [f"### {icon} diffrisk gate: {d.outcome}", "", d.message, ""]
    lines.append(
        f"- risk level: **{d.level}**"
        + (f" ({d.probability:.1%})" if d.probability is not None else "")
    )
    lines.append(f"- fail on: `{d.fail_on}`, warn on: `{d.warn_on}`")
    if d.accepted_by is not None:
        lines.append(
            f"- risk accepted by **@{d.accepted_by.by or 'unknown'}** ({d.accepted_by.kind})"
        )
    if head:
        lines.append(f"- head: `{head[:12]}`")
    return "\n".join(lines) + "\n"


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


# --------------------------------------------------------------------------- command


@click.command("gate")
@repo_option
@data_dir_option
@config_option
@worktree_config_option
@click.option(
    "--score-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="JSON written by `diffrisk score --json`. Default: score --base..--head now.",
)
@click.option(
    "--base",
    default=None,
    help="Base revision (PR target, or the last deployed ref with --deploy). Default: from the event.",
)
@click.option("--head", default=None, help="Head revision. Default: from the event, else HEAD.")
@click.option(
    "--fail-on",
    type=THRESHOLDS,
    default=None,
    help="Block at or above this level. Default: config gate.fail_on (high).",
)
@click.option(
    "--warn-on",
    type=THRESHOLDS,
    default=None,
    help="Warn at or above this level. Default: config gate.warn_on (medium).",
)
@click.option(
    "--override-label",
    default=None,
    help="PR label that accepts the risk. Default: config gate.override_label.",
)
@click.option(
    "--pr",
    "pr_number",
    type=int,
    default=None,
    help="Pull request number. Default: from $GITHUB_EVENT_PATH.",
)
@click.option(
    "--repository",
    default=None,
    envvar="GITHUB_REPOSITORY",
    help="owner/name on GitHub. Default: $GITHUB_REPOSITORY.",
)
@click.option(
    "--api-url",
    default=DEFAULT_API,
    envvar="GITHUB_API_URL",
    show_default=True,
    help="GitHub REST API ($GITHUB_API_URL).",
)
@click.option(
    "--check/--no-check",
    "check",
    default=None,
    help="Create a check run with the decision. Default: on when a token and repository are known.",
)
@click.option(
    "--check-name",
    default=None,
    help="Check run name. Default: config report.check_name (one check: the report with the gate's conclusion); NAME deploy with --deploy.",
)
@click.option(
    "--comment-mode",
    type=click.Choice(["update", "recreate", "off"]),
    default=None,
    help="Add the decision to the report's sticky PR comment unless 'off'. Default: config report.comment_mode.",
)
@click.option(
    "--write-interval",
    type=click.FloatRange(0),
    default=1.0,
    show_default=True,
    help="Seconds between write requests to GitHub (GitHub asks for at least 1).",
)
@click.option(
    "--deploy",
    is_flag=True,
    help="Deployment gate: score every change in base..head and aggregate.",
)
@click.option(
    "--environment",
    default=None,
    help="With --deploy and no --base: the last successful deployment to this environment.",
)
@click.option(
    "--tag-pattern",
    default=None,
    help="With --deploy and no --base: the newest tag matching this glob (e.g. 'deploy-*').",
)
@json_option
@quiet_option
def gate_cmd(
    repo: str,
    data_dir: str | None,
    config_path: str | None,
    worktree_config: bool,
    score_file: str | None,
    base: str | None,
    head: str | None,
    fail_on: str | None,
    warn_on: str | None,
    override_label: str | None,
    pr_number: int | None,
    repository: str | None,
    api_url: str,
    check: bool | None,
    check_name: str | None,
    comment_mode: str | None,
    write_interval: float,
    deploy: bool,
    environment: str | None,
    tag_pattern: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Decide whether a pull request may merge, or a deployment may ship.

    \b
    Merge gate: exit 1 when the PR's risk level is at or above --fail-on, unless the PR
    has the override label or an approving review by one of gate.approvers (then it
    passes and the report names who accepted the risk). At or above --warn-on it passes
    with a warning. The token comes from $GITHUB_TOKEN (needs pull-requests: read;
    checks: write for the check run).

    \b
    Deployment gate (--deploy): scores each non-merge commit in BASE..HEAD and exits 1
    when the sum of the probabilities (the expected number of defect-inducing changes) is
    >= gate.deploy_max_expected (unset: twice that of as many typical commits), or, when
    gate.deploy_max_risk is set, the riskiest change is >= it. Without
    --base, BASE is the newest tag matching --tag-pattern or the last successful
    deployment to --environment.
    """
    ddir = Path(data_dir) if data_dir else default_data_dir(repo)
    if not deploy:  # the merge gate logs its decision
        lock_data_dir(ddir)
    token = os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN")
    if token:
        from diffrisk.hosts.github.actions import add_mask, in_actions

        if in_actions():
            add_mask(token)
    gh = _client(repository, token, api_url, write_interval) if (repository and token) else None
    event = _event()
    ev_number, ev_base, ev_head = pr_from_event(event)

    if deploy:
        head = head or "HEAD"
        if base is None:
            if tag_pattern:
                base = _tag_base(repo, head, tag_pattern)
                if base is None:
                    raise RepositoryError(
                        f"no tag matching {tag_pattern!r} is reachable from {head}",
                        hint="pass --base, or tag the last deployment",
                    )
            elif environment:
                if gh is None:
                    raise ConfigError(
                        "--environment needs the repository on GitHub and a token",
                        hint="set GITHUB_REPOSITORY (or --repository) and GITHUB_TOKEN",
                    )
                base = last_successful_deployment(gh, environment)
                if base is None:
                    raise GitHubError(
                        f"no successful deployment to {environment!r} was found",
                        hint="pass --base for the first deployment",
                    )
            else:
                raise ConfigError(
                    "--deploy needs --base, --tag-pattern or --environment",
                    hint="pass the last deployed ref with --base",
                )
        cfg = load_judging_config(repo, config_path, base, worktree_config)
        gcfg = cfg.gate
        try:
            res = (
                _load_score_file(score_file)
                if score_file
                else _score_now(repo, ddir, base, head, cfg)
            )
        except NothingToScoreError:  # nothing new since the last deployment: it passes
            res = {"commits": [], "base": base, "head": head}
        deploy_warnings = [] if score_file else _ancestry_warnings(repo, base, head)
        commits = res.get("commits") or []
        changes = [
            ShippedChange(
                c["sha"], c.get("subject", ""), float(c["probability"]), c.get("level", "")
            )
            for c in commits
        ]
        typical = res.get("typical_probability")
        dd = decide_deploy(
            changes,
            max_risk=gcfg.deploy_max_risk,
            max_expected=gcfg.deploy_max_expected,
            typical_probability=None if typical is None else float(typical),
            expected_factor=gcfg.deploy_expected_factor,
        )
        summary = deploy_summary(
            dd, str(res.get("base") or base), str(res.get("head") or head), deploy_warnings
        )
        _finish(
            dd,
            summary,
            res.get("head"),
            gh,
            check,
            check_name or f"{cfg.report.check_name} deploy",
            None,
            as_json,
            quiet,
            warnings=deploy_warnings,
        )
        return

    base = base or ev_base
    head = head or ev_head or "HEAD"
    warnings: list[str] = []
    res: dict[str, Any] | None = _load_score_file(score_file) if score_file else None
    # the settings that judge the PR are its base's, never its own checkout's
    trusted = base or (res or {}).get("base") or None
    cfg = load_judging_config(repo, config_path, trusted, worktree_config)
    gcfg = cfg.gate
    if res is None:
        try:
            res = _score_now(repo, ddir, base, head, cfg)
        except NothingToScoreError as err:  # e.g. only empty commits: no risk to gate on
            warnings.append(err.message)
    label = override_label if override_label is not None else gcfg.override_label
    number = pr_number or ev_number
    override = None
    if res is not None and number is not None and gh is not None:
        override = read_acceptance(
            gh,
            int(number),
            label,
            list(gcfg.approvers),
            head_sha=str(res.get("head") or ev_head or "") or None,
            warnings=warnings,
        )
    decision = decide(
        res["level"] if res is not None else "low",
        fail_on=fail_on or gcfg.fail_on,
        warn_on=warn_on or gcfg.warn_on,
        override=override,
        probability=res.get("probability") if res is not None else None,
    )
    head_sha = str((res or {}).get("head") or ev_head or head)
    if res is not None:
        _log_decision(ddir, res, decision.outcome, warnings)
    if (
        res is not None
        and number is not None
        and gh is not None
        and (comment_mode or cfg.report.comment_mode) != "off"
    ):
        w = comment_decision(gh, int(number), res, decision, cfg)
        if w:
            warnings.append(w)
    if gh is None and number is not None:
        warnings.append(
            "no GitHub token (or repository): the pull request's labels and reviews were not "
            "read and nothing was posted; set GITHUB_TOKEN and GITHUB_REPOSITORY"
        )
    _finish(
        decision,
        merge_summary(decision, head_sha),
        head_sha,
        gh,
        check,
        check_name or cfg.report.check_name,
        res,
        as_json,
        quiet,
        cfg,
        warnings,
    )


def _log_decision(
    data_dir: Path, result: dict[str, Any], outcome: str, warnings: list[str]
) -> None:
    """The merge gate's prediction and decision, in the prediction log (``diffrisk
    monitor`` counts what was flagged and blocked); a failure to log is a warning."""
    from diffrisk.data import predlog
    from diffrisk.errors import DiffriskError

    try:
        predlog.append_from_score(data_dir, result, decision=outcome)
    except DiffriskError as err:
        warnings.append(f"prediction not logged: {err.message}")


def _finish(
    decision: GateDecision | DeployDecision,
    summary: str,
    head_sha: str | None,
    gh: Any,
    check: bool | None,
    check_name: str,
    result: dict[str, Any] | None,
    as_json: bool,
    quiet: bool,
    cfg: Any = None,
    warnings: list[str] | None = None,
) -> None:
    """Check run, annotations, outputs, summary, then the exit code."""
    from diffrisk.hosts.github.actions import annotate, in_actions

    warnings = list(warnings or [])
    want_check = check if check is not None else bool(gh is not None and head_sha)
    if want_check:
        if gh is None or not head_sha:
            raise ConfigError(
                "--check needs the repository on GitHub, a token and the head commit",
                hint="set GITHUB_REPOSITORY and GITHUB_TOKEN, or pass --no-check",
            )
        title = decision.message if len(decision.message) < 200 else decision.message[:197] + "..."
        body, annotations = summary, []
        if result is not None:  # the merge gate's check carries the full report under the decision
            from diffrisk.hosts.github.client import annotations_for
            from diffrisk.report import render as report

            body = (
                summary
                + "\n---\n\n"
                + report.render_check_summary(
                    result,
                    cfg.report if cfg else None,
                    repo_root=cfg.source if cfg else None,
                )
            )
            annotations = annotations_for(result)
        w = post_check(gh, head_sha, check_name, decision.conclusion, title, body, annotations)
        if w:
            warnings.append(w)
    for w in warnings:
        if in_actions():
            annotate("warning", w, title="diffrisk gate")
    _publish(decision, summary)
    if as_json:
        print_json({**decision.to_dict(), "warnings": warnings})
    elif not quiet:
        for w in warnings:
            click.echo(f"warning: {w}", err=True)
        # rendered for people and logs alike (plain text without a terminal); the zero-width
        # spaces that keep GitHub from linking "#123" would break a copied issue number
        from rich.markdown import Markdown

        from diffrisk.report.render import ZWSP

        tty = sys.stdout.isatty()
        Console(width=None if tty else 120).print(Markdown(summary.replace(ZWSP, "")))
    if decision.exit_code:
        raise GateFailure(decision.message, hint=_fail_hint(decision))


def _fail_hint(d: GateDecision | DeployDecision) -> str:
    if isinstance(d, DeployDecision):
        return "review the riskiest changes listed above; ship fewer changes at once, or raise gate.deploy_expected_factor / deploy_max_expected (deploy_max_risk when it is what failed)"
    return "to merge anyway, add the override label to the pull request or get an approval from one of gate.approvers"


COMMANDS = [gate_cmd]
