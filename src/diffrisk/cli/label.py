"""``diffrisk label``."""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.markdown import Markdown
from rich.table import Table

from diffrisk.cli.output import (
    config_option,
    config_rev_option,
    data_dir_option,
    github_token_option,
    json_option,
    lock_data_dir,
    progress_bar,
    quiet_option,
    repo_option,
)
from diffrisk.config import Config, load_config
from diffrisk.data.paths import default_data_dir
from diffrisk.labelling.label import (
    GitHubBugs,
    blame_given,
    github_source,
    label,
    sample_links,
    write_links,
)
from diffrisk.labelling.quality import assess_data_dir, render_markdown
from diffrisk.labelling.sources import FixEvidence
from diffrisk.labelling.sources.external import read_fixes, read_labels
from diffrisk.report.terminal import Console, print_json, stderr_console


@click.command("label")
@repo_option
@data_dir_option
@click.option(
    "--sample",
    type=click.IntRange(min=0),
    default=0,
    help="Also print N random fix -> inducing links (both subjects and the blamed lines) to judge by hand.",
)
@click.option("--seed", type=int, default=None, help="Random seed for --sample.")
@click.option(
    "--github-repo",
    default=None,
    metavar="OWNER/NAME",
    help="Also treat commits referencing issues/PRs with a bug label as fixes (default: $GITHUB_REPOSITORY).",
)
@github_token_option("for --github-repo; without one the GitHub source is skipped")
@click.option(
    "--fixes",
    "fixes_file",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="A file of bug-fixing commits (CSV/JSON: sha, and optionally issue_date, issue, "
    "inducing): one more fix source. With --links-out, only these fixes are blamed.",
)
@click.option(
    "--links-out",
    default=None,
    metavar="FILE",
    help="Blame only the --fixes commits (no mined dataset needed) and write every link "
    "with the blamed lines to FILE (.csv, .jsonl, .json; '-' prints CSV).",
)
@click.option(
    "--labels",
    "labels_file",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="A file of per-commit labels (sha,label) that replace SZZ's for those commits.",
)
@click.option(
    "--jira-url",
    default=None,
    metavar="URL",
    help="JIRA to read bug issues from (label.jira.url; token in $JIRA_TOKEN, with "
    "$JIRA_USER for Jira Cloud).",
)
@click.option(
    "--jira-export",
    type=click.Path(exists=True),
    default=None,
    help="A JIRA export (CSV or JSON, or a directory of them) to read bug issues from "
    "offline (label.jira.export).",
)
@click.option(
    "--report",
    is_flag=True,
    help="Also print the label-quality report (fixes by source, implausible shares, "
    "agreement of SZZ with the developers' own links).",
)
@config_option
@config_rev_option
@json_option
@quiet_option
def label_cmd(
    repo: str,
    data_dir: str | None,
    sample: int,
    seed: int | None,
    github_repo: str | None,
    github_token: str | None,
    fixes_file: str | None,
    links_out: str | None,
    labels_file: str | None,
    jira_url: str | None,
    jira_export: str | None,
    report: bool,
    config_path: str | None,
    config_rev: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Label mined changes as defect-inducing, clean or unlabelled (SZZ).

    Bug fixes are found by the keyword rule (and, with a token, by GitHub bug labels);
    the lines each fix deleted or changed are blamed in its parent. A change no fix
    blames is clean once it is older than label.verification_days, else unlabelled.
    Writes DATA_DIR/labels.parquet and DATA_DIR/szz_links.parquet; a second run blames
    only new fixes. See docs/labels.md.

    `--fixes FILE --links-out OUT` blames just the fixes in FILE and writes the links
    (the blame step alone, e.g. to check it against known bug-introducing commits).
    """
    cfg = load_config(repo, config_path, rev=config_rev)
    if jira_url or jira_export:
        # given on the command line by whoever runs it: trusted as given
        jira = cfg.label.jira.model_copy(
            update={
                k: v
                for k, v in {
                    "url": jira_url,
                    "export": str(Path(jira_export).resolve()) if jira_export else None,
                }.items()
                if v is not None
            }
        )
        cfg = cfg.model_copy(update={"label": cfg.label.model_copy(update={"jira": jira})})
    evidence = read_fixes(fixes_file) if fixes_file else []
    if links_out is not None:
        if not fixes_file:
            raise click.UsageError("--links-out needs --fixes FILE (the fixes to blame)")
        _links_only(repo, evidence, cfg, links_out, as_json, quiet)
        return
    overrides = read_labels(labels_file) if labels_file else None
    out_dir = Path(data_dir) if data_dir else default_data_dir(repo)
    lock_data_dir(out_dir)
    github_repo = github_repo or os.environ.get("GITHUB_REPOSITORY") or None
    console = stderr_console()
    bugs: GitHubBugs | None = None
    source_warnings: list[str] = []
    if github_token and github_repo:
        bugs, source_warnings = github_source(github_repo, github_token, cfg.label.bug_labels)
    elif github_repo and not github_token and not quiet:
        console.print(
            "[yellow]note:[/] no GitHub token: bug labels are not used (keyword rule only)"
        )
    with progress_bar(quiet or as_json) as prog:
        res = label(
            repo,
            out_dir,
            cfg.label,
            progress=prog,
            github=bugs,
            evidence=evidence,
            overrides=overrides,
            settings_rev=None if jira_export else config_rev,
        )
    res.warnings[:0] = source_warnings
    links = sample_links(out_dir, sample, seed) if sample else []
    quality = assess_data_dir(out_dir) if report else None
    if as_json:
        d = res.to_dict()
        d["seconds"] = round(res.seconds, 3)
        if sample:
            d["sample"] = links
        if quality is not None:
            d["quality"] = quality.to_dict()
        print_json(d)
        return
    for w in res.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    if quiet and not sample:
        return
    out = Console()
    if not quiet:
        t = Table(title=f"diffrisk label: {res.data_dir}", show_header=False)
        t.add_row("changes", str(res.changes))
        fixes = f"{res.fixes}" + (
            f" ({res.github_fixes} from GitHub bug labels)" if bugs is not None else ""
        )
        t.add_row("fixes", fixes)
        if res.fixes_by_source:
            t.add_row(
                "fixes by source",
                ", ".join(f"{k}: {v}" for k, v in res.fixes_by_source.items()),
            )
        if res.fixes_rejected:
            t.add_row("keyword fixes rejected", f"{res.fixes_rejected} (change no source file)")
        if res.explicit_links:
            t.add_row("links named by developers/files", str(res.explicit_links))
        t.add_row("fixes blamed", f"{res.fixes_blamed} ({res.newly_blamed} in this run)")
        t.add_row("fixes too large", f"{res.fixes_too_large} (> {cfg.label.max_fix_files} files)")
        t.add_row("fixes that blamed nothing", str(res.fixes_blamed_nothing))
        t.add_row("fix -> inducing links", str(res.links))
        if res.dropped:
            t.add_row(
                "links dropped", ", ".join(f"{k}: {v}" for k, v in sorted(res.dropped.items()))
            )
        t.add_row("buggy", str(res.buggy))
        t.add_row("clean", f"{res.clean} ({res.clean_without_source} touch no source file)")
        t.add_row(
            "unlabelled", f"{res.unlabelled} (younger than {cfg.label.verification_days} days)"
        )
        if res.vendored:
            t.add_row(
                "vendored (not blamed)",
                ", ".join(res.vendored) + " (label.detect_vendored = false counts them)",
            )
        t.add_row("time", f"{res.seconds:.2f} s")
        out.print(t)
    for i, link in enumerate(links, 1):
        out.print()
        out.print(
            f"[bold]{i}. fix[/] {link['fix_sha'][:12]} {link['fix_time'][:10]}  {link['fix_subject']}",
            highlight=False,
        )
        out.print(
            f"   [bold]blames[/] {link['inducing_sha'][:12]} {link['inducing_time'][:10]}  {link['inducing_subject']}",
            highlight=False,
        )
        out.print(f"   {link['path']}: {link['lines']} line(s)", highlight=False)
        for text in link["sample"]:
            click.echo(f"   - {text}")
    if sample and not links:
        out.print("no fix -> inducing links to sample")
    if quality is not None:
        out.print()
        out.print(Markdown(render_markdown(quality)))


def _links_only(
    repo: str,
    evidence: list[FixEvidence],
    cfg: Config,
    links_out: str,
    as_json: bool,
    quiet: bool,
) -> None:
    with progress_bar(quiet or as_json or links_out == "-") as prog:
        links = blame_given(repo, evidence, cfg.label, progress=prog)
    text = write_links(links, links_out)
    if text is not None:
        click.echo(text, nl=False)
    kept = links[links["dropped"].isna()]
    dropped_counts = {str(k): int(v) for k, v in links["dropped"].value_counts().items()}
    summary: dict[str, object] = {
        "fixes": len({e.sha for e in evidence}),
        "links": len(links),
        "kept": len(kept),
        "fixes_with_links": int(kept["fix_sha"].nunique()),
        "dropped": dropped_counts,
        "links_out": links_out,
    }
    if as_json:
        if text is None:
            print_json(summary)
        return
    if quiet or text is not None:
        return
    dropped = ", ".join(f"{k}: {v}" for k, v in sorted(dropped_counts.items())) or "none"
    stderr_console().print(
        f"blamed {summary['fixes']} fixes: {summary['kept']} links kept "
        f"({summary['fixes_with_links']} fixes), not used: {dropped}; written to {links_out}",
        highlight=False,
    )


COMMANDS = [label_cmd]
