"""``diffrisk mine``."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from diffrisk.cli.output import (
    config_option,
    config_rev_option,
    data_dir_option,
    json_option,
    lock_data_dir,
    progress_bar,
    quiet_option,
    repo_option,
)
from diffrisk.config import load_config
from diffrisk.data.paths import META_FILE, default_data_dir
from diffrisk.data.store import ignore_in_git
from diffrisk.mining.mine import mine
from diffrisk.report.terminal import Console, print_json, stderr_console


@click.command("mine")
@repo_option
@data_dir_option
@click.option(
    "--rev",
    default="HEAD",
    show_default=True,
    help="Mine the commits reachable from this revision.",
)
@click.option(
    "--code-metrics/--no-code-metrics",
    default=None,
    help="Compute code metrics of source files: radon for Python, lizard for other "
    "languages (minutes on large histories; default: "
    "mine.code_metrics, off).",
)
@click.option(
    "--no-code-lines",
    is_flag=True,
    help="Skip counting added lines of code (la_code); models then use lines added.",
)
@click.option(
    "--rebuild", is_flag=True, help="Ignore the stored dataset and mine everything again."
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes for code metrics (default: all cores).",
)
@config_option
@config_rev_option
@json_option
@quiet_option
def mine_cmd(
    repo: str,
    data_dir: str | None,
    rev: str,
    code_metrics: bool | None,
    no_code_lines: bool,
    rebuild: bool,
    workers: int | None,
    config_path: str | None,
    config_rev: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Mine the history of REPO into change-level features.

    Writes DATA_DIR/changes.parquet (one row per non-merge commit: the Kamei et al.
    features, added lines of code, and with --code-metrics radon metrics) and
    DATA_DIR/files.parquet (one row per commit and file). A second run mines only the
    commits not mined yet.
    """
    cfg = load_config(repo, config_path, rev=config_rev)
    mcfg = cfg.mine
    if code_metrics is not None or no_code_lines or workers:
        mcfg = mcfg.model_copy(
            update={
                "code_metrics": mcfg.code_metrics if code_metrics is None else code_metrics,
                "code_lines": mcfg.code_lines and not no_code_lines,
                "workers": workers or mcfg.workers,
            }
        )
    out_dir = Path(data_dir) if data_dir else default_data_dir(repo)
    lock_data_dir(out_dir, repo=repo)
    t0 = time.perf_counter()
    with progress_bar(quiet or as_json) as prog:
        if rebuild:
            res = _rebuild(
                repo,
                out_dir,
                rev,
                mcfg,
                cfg.fixes,
                prog,
                cfg.label.source_extensions,
                cfg.label.exclude_paths,
            )
        else:
            res = mine(
                repo,
                out_dir,
                rev=rev,
                config=mcfg,
                fixes=cfg.fixes,
                progress=prog,
                source_extensions=cfg.label.source_extensions,
                exclude_paths=cfg.label.exclude_paths,
            )
    elapsed = time.perf_counter() - t0
    if as_json:
        print_json({**res.to_dict(), "seconds": round(elapsed, 3)})
        return
    console = stderr_console()
    for w in res.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    if quiet:
        return
    if res.reason and res.full_rebuild and res.reason != "no dataset yet":
        console.print(f"[yellow]note:[/] mined from scratch: {res.reason}")
    table = Table(title=f"diffrisk mine: {res.data_dir}", show_header=False)
    table.add_row("head", res.head[:12])
    table.add_row("commits (non-merge)", str(res.commits))
    table.add_row("mined in this run", str(res.new_commits))
    table.add_row("huge commits", str(res.huge_commits))
    table.add_row("time", f"{elapsed:.2f} s")
    Console().print(table)
    _print_summary(out_dir)


def _print_summary(out_dir: Path) -> None:
    import pandas as pd

    df = pd.read_parquet(out_dir / "changes.parquet")
    if df.empty:
        return
    t = Table(title="features (median / mean / max)")
    t.add_column("feature")
    for c in ("median", "mean", "max"):
        t.add_column(c, justify="right")
    for col in (
        "la",
        "ld",
        "lt",
        "nf",
        "ns",
        "nd",
        "entropy",
        "ndev",
        "age",
        "nuc",
        "exp",
        "rexp",
        "sexp",
        "fix",
    ):
        s = df[col].astype(float)
        t.add_row(col, f"{s.median():.2f}", f"{s.mean():.2f}", f"{s.max():.2f}")
    Console().print(t)


def _rebuild(
    repo: str,
    out_dir: Path,
    rev: str,
    mcfg: Any,
    fixes: Any,
    prog: Any,
    exts: list[str],
    exclude: list[str] | None = None,
) -> Any:
    """Mine from scratch into a fresh directory beside the data, then swap the tables in
    (meta.json last, so the generation check sees a whole dataset); until then the stored
    dataset stays as it was, also when the run fails or is interrupted."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".rebuild-", dir=out_dir))
    try:
        res = mine(
            repo,
            tmp,
            rev=rev,
            config=mcfg,
            fixes=fixes,
            progress=prog,
            source_extensions=exts,
            exclude_paths=exclude,
        )
        names = sorted(
            p.name for p in tmp.iterdir() if p.is_file() and p.name not in (META_FILE, ".gitignore")
        )
        for name in [*names, META_FILE]:
            os.replace(tmp / name, out_dir / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ignore_in_git(out_dir)  # out_dir's own, never the one written into tmp
    res.data_dir = out_dir
    return res


COMMANDS = [mine_cmd]
