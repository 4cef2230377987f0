"""``diffrisk org``: the pipeline over a manifest of repositories, on Dask (docs/scale.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from rich.table import Table

from diffrisk.cli.output import json_option, progress_bar, quiet_option
from diffrisk.report.terminal import Console, print_json, stderr_console


def _common(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The manifest and where to run, for every ``org`` command."""
    for deco in reversed(
        [
            click.argument("manifest", type=click.Path(dir_okay=False)),
            click.option(
                "--root",
                type=click.Path(file_okay=False),
                default=None,
                help="Where the results go (ROOT/OWNER/NAME/...). Default: the manifest's "
                "root, else diffrisk-org beside the manifest.",
            ),
            click.option(
                "--repo",
                "only",
                multiple=True,
                metavar="OWNER/NAME",
                help="Only this repository of the manifest (repeatable).",
            ),
        ]
    ):
        fn = deco(fn)
    return fn


def _cluster(fn: Callable[..., Any]) -> Callable[..., Any]:
    for deco in reversed(
        [
            click.option(
                "--workers",
                type=click.IntRange(min=1),
                default=None,
                help="Worker processes of the embedded Dask cluster (default 2).",
            ),
            click.option(
                "--scheduler",
                default=None,
                metavar="tcp://HOST:8786",
                help="Use this running Dask scheduler instead of an embedded cluster (its "
                "workers need diffrisk and the root at the same path).",
            ),
            click.option(
                "--retries",
                type=click.IntRange(min=0),
                default=2,
                show_default=True,
                help="Times a task runs again after an unexpected error or a worker's death.",
            ),
            click.option(
                "--dashboard",
                "dashboard_address",
                default=":8787",
                show_default=True,
                metavar="[HOST]:PORT",
                help="Where the embedded cluster serves its dashboard (:0 picks a free port).",
            ),
        ]
    ):
        fn = deco(fn)
    return fn


def _options(
    manifest: str,
    root: str | None,
    only: tuple[str, ...],
    prog: Any,
    quiet: bool,
    workers: int | None = None,
    scheduler: str | None = None,
    retries: int = 2,
    dashboard_address: str | None = None,
) -> Any:
    from diffrisk.org.jobs import OrgOptions

    con = stderr_console()
    return OrgOptions(
        manifest,
        root,
        workers=workers,
        scheduler=scheduler,
        retries=retries,
        only=only,
        dashboard_address=dashboard_address,
        progress=prog,
        tell=None
        if quiet
        else (lambda line: con.print(line, markup=False, highlight=False, soft_wrap=True)),
    )


def _summary(res: Any) -> None:
    t = Table(title=f"diffrisk org: {res.root}")
    t.add_column("repository")
    for s in res.stages:
        t.add_column(s)
    t.add_column("commits (new)", justify="right")
    t.add_column("labelled buggy / clean", justify="right")
    by: dict[str, dict[str, Any]] = {}
    for o in res.outcomes:
        by.setdefault(o.name, {})[o.stage] = o
    marks = {"ok": "[green]ok[/]", "failed": "[red]failed[/]", "skipped": "[yellow]skipped[/]"}
    for name in sorted(by):
        row = by[name]
        cells = [
            f"{marks[o.status]} {o.seconds:.1f}s" if (o := row.get(s)) is not None else "–"
            for s in res.stages
        ]
        m = row.get("mine")
        lab = row.get("label")
        mined = (
            f"{m.details.get('commits')} ({m.details.get('new_commits')})"
            if m is not None and m.status == "ok"
            else ""
        )
        labelled = (
            f"{lab.details.get('buggy')} / {lab.details.get('clean')}"
            if lab is not None and lab.status == "ok"
            else ""
        )
        t.add_row(name, *cells, mined, labelled)
    Console().print(t)
    stderr_console().print(
        f"{len(res.repositories)} repositories in {res.seconds:.1f} s", highlight=False
    )


@click.group("org")
def org_group() -> None:
    """The pipeline over many repositories at once, on Dask (docs/scale.md).

    \b
    MANIFEST is a TOML file listing the repositories ([[repo]] with url or path).
    Results: ROOT/OWNER/NAME/data (each repository's data directory),
    ROOT/dataset (every repository's changes and labels, Parquet partitioned by
    repository), ROOT/models (the org model), ROOT/report.html.
    Needs the org extra: pip install 'diffrisk[org]'.
    """


def _stages_command(name: str, stages: list[str], doc: str) -> click.Command:
    @_common
    @_cluster
    @json_option
    @quiet_option
    def cmd(
        manifest: str,
        root: str | None,
        only: tuple[str, ...],
        workers: int | None,
        scheduler: str | None,
        retries: int,
        dashboard_address: str,
        as_json: bool,
        quiet: bool,
    ) -> None:
        from diffrisk.org.jobs import org_stages, raise_if_failed

        with progress_bar(quiet or as_json) as prog:
            opts = _options(
                manifest,
                root,
                only,
                prog,
                quiet or as_json,
                workers,
                scheduler,
                retries,
                dashboard_address,
            )
            res = org_stages(opts, stages)
        if as_json:
            print_json(res.to_dict())
        elif not quiet:
            _summary(res)
        raise_if_failed(res)

    cmd.__doc__ = doc
    return click.command(name)(cmd)


org_mine = _stages_command(
    "mine",
    ["fetch", "mine"],
    """Clone or fetch, then mine every repository of MANIFEST (one task each).

    Incremental: a second run fetches and mines only what is new. A repository that
    fails is reported with its reason (exit 2 once the others are done).
    """,
)
org_label = _stages_command(
    "label",
    ["label"],
    """Label the bug-inducing changes of every mined repository of MANIFEST (SZZ).""",
)


@org_group.command("train")
@_common
@_cluster
@click.option(
    "--kinds",
    default="logistic,hgb",
    show_default=True,
    help="Model kinds that compete (comma-separated).",
)
@click.option(
    "--weighting",
    default="pooled,balanced",
    show_default=True,
    help="pooled (every change once) and/or balanced (each repository the same weight).",
)
@click.option("--force", is_flag=True, help="Train even when nothing changed.")
@json_option
@quiet_option
def org_train_cmd(
    manifest: str,
    root: str | None,
    only: tuple[str, ...],
    workers: int | None,
    scheduler: str | None,
    retries: int,
    dashboard_address: str,
    kinds: str,
    weighting: str,
    force: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Train the org model on the pooled labelled repositories of MANIFEST.

    Candidates are evaluated leaving one repository out and in time order (each fit a
    Dask task); the best is saved in ROOT/models. `diffrisk org install-model` puts it
    into the repositories' data directories, where `diffrisk score` uses it.
    """
    from diffrisk.org.jobs import org_train

    with progress_bar(quiet or as_json) as prog:
        opts = _options(
            manifest,
            root,
            only,
            prog,
            quiet or as_json,
            workers,
            scheduler,
            retries,
            dashboard_address,
        )
        res = org_train(
            opts,
            kinds=_split(kinds),
            weightings=_split(weighting),
            force=force,
        )
    if as_json:
        print_json(res.to_dict())
        return
    if not quiet:
        stderr_console().print(res.message, markup=False, highlight=False)
        for name, why in sorted(res.skipped.items()):
            stderr_console().print(f"  left out {name}: {why}", markup=False, highlight=False)


def _split(v: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in v.split(",") if x.strip())


@org_group.command("report")
@_common
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="The HTML file to write (default ROOT/report.html).",
)
@quiet_option
def org_report_cmd(
    manifest: str, root: str | None, only: tuple[str, ...], output: str | None, quiet: bool
) -> None:
    """Write one static HTML report on every repository of MANIFEST (no server)."""
    from diffrisk.org.jobs import org_report

    out = org_report(_options(manifest, root, only, None, quiet), output)
    if not quiet:
        click.echo(f"wrote {out}")


@org_group.command("run")
@_common
@_cluster
@click.option(
    "--kinds",
    default="logistic,hgb",
    show_default=True,
    help="Model kinds that compete for the org model.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="The HTML report (default ROOT/report.html).",
)
@json_option
@quiet_option
def org_run_cmd(
    manifest: str,
    root: str | None,
    only: tuple[str, ...],
    workers: int | None,
    scheduler: str | None,
    retries: int,
    dashboard_address: str,
    kinds: str,
    output: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Fetch, mine and label every repository of MANIFEST, train the org model and write
    the report: the whole job, on one cluster."""
    from diffrisk.org.jobs import org_pipeline, raise_if_failed

    with progress_bar(quiet or as_json) as prog:
        opts = _options(
            manifest,
            root,
            only,
            prog,
            quiet or as_json,
            workers,
            scheduler,
            retries,
            dashboard_address,
        )
        res = org_pipeline(opts, kinds=_split(kinds), report=output)
    if as_json:
        print_json(res.to_dict())
    elif not quiet:
        _summary(res)
        con = stderr_console()
        if res.train is not None:
            con.print(res.train.message, markup=False, highlight=False)
        con.print(f"report: {res.report}", markup=False, highlight=False)
    raise_if_failed(res)


@org_group.command("install-model")
@_common
@click.option(
    "--data-dir",
    "data_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Install into this data directory (repeatable; e.g. a checkout's .diffrisk). "
    "Default: every manifest repository's ROOT/OWNER/NAME/data.",
)
@click.option(
    "--force", is_flag=True, help="Make it current even where a repository has its own model."
)
@json_option
def org_install_cmd(
    manifest: str,
    root: str | None,
    only: tuple[str, ...],
    data_dirs: tuple[str, ...],
    force: bool,
    as_json: bool,
) -> None:
    """Copy the org model into repositories' model registries (source = "org").

    It becomes current where the repository has no model of its own (or an older org
    model); `diffrisk score --data-dir DIR` then scores with it.
    """
    from diffrisk.org.jobs import org_install

    res = org_install(_options(manifest, root, only, None, True), data_dirs, force=force)
    if as_json:
        print_json([r.to_dict() for r in res])
        return
    for r in res:
        click.echo(f"{r.data_dir}: {r.message}")


org_group.add_command(org_mine)
org_group.add_command(org_label)

COMMANDS = [org_group]
