"""``diffrisk monitor``."""

from __future__ import annotations

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
    the gate, Recall@20%Effort per quarter), gives the share of the logged changes later
    found buggy that were among the riskiest 5%, 10% and 20% (next to ranking them by lines
    added) and the quality of the labels, and recommends retraining on drift, a drop of
    the realized ROC-AUC or a stale model. See docs/monitoring.md.
    """
    from diffrisk.monitoring.render import render_terminal
    from diffrisk.monitoring.run import MonitorOptions, run_monitor

    out_dir = Path(data_dir) if data_dir else default_data_dir(repo)
    if retrain:
        lock_data_dir(out_dir)
    done = run_monitor(
        MonitorOptions(
            repo=repo,
            data_dir=out_dir,
            config_path=config_path,
            config_rev=config_rev,
            recent_days=recent_days,
            markdown_path=markdown_path,
            summary=summary,
            plots_dir=plots_dir,
            plot_format=plot_format,
            retrain=retrain,
            issue=issue,
            github_repo=github_repo,
            github_token=github_token,
        )
    )
    report, issue_info = done.report, done.issue
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
