"""``diffrisk monitor``."""

from __future__ import annotations

import os
from pathlib import Path

import click

from diffrisk.cli.output import (
    config_option,
    config_rev_option,
    data_dir_option,
    github_token_option,
    json_option,
    lock_data_dir,
    quiet_option,
    repo_option,
)
from diffrisk.config import load_config
from diffrisk.data.paths import default_data_dir
from diffrisk.report.terminal import Console, print_json, stderr_console


@click.command("monitor")
@repo_option
@data_dir_option
@config_option
@config_rev_option
@click.option(
    "--recent-days",
    type=click.IntRange(min=1),
    default=None,
    help="Recent window compared with the training window (default: monitor.recent_days).",
)
@click.option(
    "--markdown",
    "markdown_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the report as Markdown to this file.",
)
@click.option(
    "--summary",
    is_flag=True,
    help="Append the Markdown report to the job summary ($GITHUB_STEP_SUMMARY).",
)
@click.option(
    "--plots",
    "plots_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Save plots (risk over time, drift, realized accuracy) in this directory.",
)
@click.option(
    "--plot-format",
    type=click.Choice(["png", "svg"]),
    default="png",
    show_default=True,
    help="Image format of the plots.",
)
@click.option(
    "--retrain",
    is_flag=True,
    help="When retraining is recommended, train a challenger on the recent history and "
    "promote it only if it beats the current model on the latest time-ordered fold.",
)
@click.option(
    "--issue",
    is_flag=True,
    help="Create or update in place the pinned monitor issue on GitHub (needs a token).",
)
@click.option(
    "--github-repo",
    default=None,
    help="OWNER/NAME for --issue (default: $GITHUB_REPOSITORY).",
)
@github_token_option("for --issue")
@json_option
@quiet_option
def monitor_cmd(
    repo: str,
    data_dir: str | None,
    config_path: str | None,
    config_rev: str | None,
    recent_days: int | None,
    markdown_path: str | None,
    summary: bool,
    plots_dir: str | None,
    plot_format: str,
    retrain: bool,
    issue: bool,
    github_repo: str | None,
    github_token: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Watch the model: feature drift, realized accuracy, and whether to retrain.

    Compares the features of the recent changes with the model's training window (PSI
    and a Kolmogorov-Smirnov test per feature), joins the SZZ labels to the prediction
    log and to the history scored by the current model (ROC-AUC, precision and recall of
    the gate, Recall@20%Effort per quarter), and recommends retraining on drift, a drop
    of the realized ROC-AUC or a stale model. See docs/monitoring.md.
    """
    from diffrisk.data.store import atomic_write_bytes
    from diffrisk.errors import ConfigError
    from diffrisk.git.repo import open_repo
    from diffrisk.hosts.github import actions as ghactions
    from diffrisk.monitoring.issue import publish_issue
    from diffrisk.monitoring.monitor import monitor
    from diffrisk.monitoring.plots import write_plots
    from diffrisk.monitoring.render import render_terminal, to_markdown
    from diffrisk.monitoring.retrain import retrain as retrain_model

    open_repo(repo, allow_shallow=True)  # a wrong --repo is an error, as for every command
    cfg = load_config(repo, config_path, rev=config_rev)
    out_dir = Path(data_dir) if data_dir else default_data_dir(repo)
    if retrain:
        lock_data_dir(out_dir)
    if issue:
        github_repo = github_repo or os.environ.get("GITHUB_REPOSITORY")
        if not github_repo or not github_token:
            raise ConfigError(
                "--issue needs a repository and a token",
                hint="pass --github-repo OWNER/NAME and set GITHUB_TOKEN (inside Actions both are set)",
            )
    report = monitor(out_dir, cfg, recent_days=recent_days)
    if retrain and report.decision.retrain:
        report.retrain_result = retrain_model(repo, out_dir, cfg, report)
    if plots_dir:
        write_plots(report, plots_dir, plot_format)
    md = ""
    if markdown_path or summary or issue:
        md = to_markdown(report)
    if markdown_path:
        atomic_write_bytes(Path(markdown_path), md.encode())
    if summary:
        ghactions.append_summary(md)
    if issue:
        from diffrisk.hosts.github.client import GitHubClient

        assert github_repo and github_token  # checked above
        api_url = os.environ.get("GITHUB_API_URL") or "https://api.github.com"
        with GitHubClient(github_repo, github_token, api_url=api_url) as client:
            outcome = publish_issue(client, md, cfg.monitor.issue_title)
        issue_info = {
            "action": outcome.action,
            "number": outcome.number,
            "url": outcome.url,
            "pinned": outcome.pinned,
        }
    else:
        issue_info = None
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
    if as_json:
        d = report.to_dict()
        d.pop("risk_series", None)
        d["issue"] = issue_info
        print_json(d)
        return
    if quiet:
        return

    render_terminal(report, Console())
    if issue_info:
        stderr_console().print(
            f"monitor issue #{issue_info['number']} {issue_info['action']}: {issue_info['url']}"
        )
    for p in report.plots:
        stderr_console().print(f"wrote {p}")


COMMANDS = [monitor_cmd]
