"""The monitor job (``diffrisk monitor``): the report (:func:`diffrisk.monitoring.monitor.monitor`),
a retrain when it recommends one and it was asked for, the plots, the Markdown report (to a
file, the job summary, the pinned GitHub issue) and the step outputs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diffrisk.config import load_config
from diffrisk.errors import ConfigError
from diffrisk.monitoring.monitor import MonitorReport, monitor


@dataclass(frozen=True)
class MonitorOptions:
    """What ``diffrisk monitor`` was asked."""

    repo: str
    data_dir: Path
    config_path: str | None = None
    #: Read the settings as they are in this commit (None: the work tree's).
    config_rev: str | None = None
    recent_days: int | None = None
    markdown_path: str | None = None
    summary: bool = False
    plots_dir: str | None = None
    plot_format: str = "png"
    retrain: bool = False
    #: Create or update the pinned monitor issue in ``github_repo`` (needs a token).
    issue: bool = False
    github_repo: str | None = None
    github_token: str | None = None


@dataclass
class MonitorRun:
    """What the job did: the report (with the retrain result and the plots written) and,
    with ``issue``, what became of the monitor issue."""

    report: MonitorReport
    issue: dict[str, Any] | None = None


def run_monitor(opts: MonitorOptions) -> MonitorRun:
    """Run the monitor job for ``opts.repo`` and its data directory (see the module docstring)."""
    from diffrisk.data.store import atomic_write_bytes
    from diffrisk.git.repo import open_repo
    from diffrisk.hosts.github import actions as ghactions
    from diffrisk.monitoring.plots import write_plots
    from diffrisk.monitoring.render import to_markdown
    from diffrisk.monitoring.retrain import retrain as retrain_model

    open_repo(opts.repo, allow_shallow=True)  # a wrong --repo is an error, as for every command
    cfg = load_config(opts.repo, opts.config_path, rev=opts.config_rev)
    github_repo = opts.github_repo
    if opts.issue:
        github_repo = github_repo or os.environ.get("GITHUB_REPOSITORY")
        if not github_repo or not opts.github_token:
            raise ConfigError(
                "--issue needs a repository and a token",
                hint="pass --github-repo OWNER/NAME and set GITHUB_TOKEN (inside Actions both are set)",
            )
    report = monitor(opts.data_dir, cfg, recent_days=opts.recent_days)
    if opts.retrain and report.decision.retrain:
        report.retrain_result = retrain_model(opts.repo, opts.data_dir, cfg, report)
    if opts.plots_dir:
        write_plots(report, opts.plots_dir, opts.plot_format)
    md = ""
    if opts.markdown_path or opts.summary or opts.issue:
        md = to_markdown(report)
    if opts.markdown_path:
        atomic_write_bytes(Path(opts.markdown_path), md.encode())
    if opts.summary:
        ghactions.append_summary(md)
    issue_info = None
    if opts.issue:
        from diffrisk.monitoring.issue import publish_issue_to

        assert github_repo and opts.github_token  # checked above
        outcome = publish_issue_to(github_repo, opts.github_token, md, cfg.monitor.issue_title)
        issue_info = {
            "action": outcome.action,
            "number": outcome.number,
            "url": outcome.url,
            "pinned": outcome.pinned,
        }
    if ghactions.in_actions():
        ghactions.set_outputs(
            {
                "retrain": str(report.decision.retrain).lower(),
                "drift": report.drift_status,
                "realized-auc": ""
                if report.decision.realized_auc is None
                else f"{report.decision.realized_auc:.4f}",
                "promoted": str(bool((report.retrain_result or {}).get("promoted"))).lower(),
            }
        )
    return MonitorRun(report, issue_info)
