"""What the ``diffrisk org`` commands call: one function each.

:func:`org_stages` (``org mine``: fetch and mine; ``org label``) runs the tasks on the
cluster and records each repository's outcome in ``ROOT/<owner>/<name>/status.json``
and the run in ``ROOT/runs/``; :func:`org_train` trains the org model;
:func:`org_report` writes the HTML report; :func:`org_pipeline` (``org run``) does all
of it; :func:`org_install` puts the org model into repositories' data directories.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from diffrisk.errors import DiffriskError
from diffrisk.org.engine import ClusterInfo, Engine
from diffrisk.org.manifest import OrgManifest, RepoSpec, load_manifest
from diffrisk.org.tasks import RepoLayout, StageOutcome, read_status, repo_path

RUNS_DIR = "runs"

Progress = Callable[[str, int, "int | None"], None]


@dataclass
class OrgOptions:
    """What every ``diffrisk org`` command is given."""

    manifest: str | Path
    root: str | Path | None = None
    workers: int | None = None
    scheduler: str | None = None
    retries: int = 2
    only: tuple[str, ...] = ()
    dashboard_address: str | None = ":8787"
    #: progress(stage, advance, total), as the single-repository commands report it
    progress: Progress | None = None
    #: a line worth telling (the dashboard's address, a repository that failed)
    tell: Callable[[str], None] | None = None

    def engine(self) -> Engine:
        return Engine(
            self.workers,
            self.scheduler,
            retries=self.retries,
            dashboard_address=self.dashboard_address,
        )


@dataclass
class OrgRunResult:
    root: Path
    stages: list[str]
    outcomes: list[StageOutcome]
    cluster: ClusterInfo | None
    seconds: float
    train: Any = None
    report: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> dict[str, StageOutcome]:
        """Per repository that failed, its first failed stage."""
        out: dict[str, StageOutcome] = {}
        for o in self.outcomes:
            if o.status == "failed" and o.name not in out:
                out[o.name] = o
        return out

    @property
    def repositories(self) -> list[str]:
        return sorted({o.name for o in self.outcomes})

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "stages": self.stages,
            "seconds": round(self.seconds, 3),
            "cluster": self.cluster.to_dict() if self.cluster else None,
            "repositories": len(self.repositories),
            "failed": {
                n: {"stage": o.stage, "reason": o.reason, "hint": o.hint}
                for n, o in self.failed.items()
            },
            "outcomes": [o.to_dict() for o in self.outcomes],
            "train": self.train.to_dict() if self.train is not None else None,
            "report": self.report,
            **self.extra,
        }


def _tell(opts: OrgOptions, line: str) -> None:
    if opts.tell is not None:
        opts.tell(line)


#: Seconds per commit a first run guesses for mining and labelling a repository it has
#: no earlier cost of (the cost model of docs/scale.md: 2.8 ms to mine, 1.2 to label).
_GUESS_PER_COMMIT = 0.004


def _previous_cost(root: Path, specs: list[RepoSpec]) -> dict[str, float]:
    """Seconds each repository's stages took last time: the longest start first, so that
    no long repository is left running alone at the end. A repository without an earlier
    run is guessed by its commits, when they can be counted without the network (a local
    path, or an earlier clone); else it starts last."""
    out = {}
    for s in specs:
        st = read_status(root, s.name)
        cost = float(sum(v.get("seconds", 0.0) for v in st.values() if isinstance(v, dict)))
        if cost <= 0:
            cost = _GUESS_PER_COMMIT * _commits(repo_path(s, root), s.rev)
        out[s.name] = cost
    return out


def _commits(path: Path, rev: str) -> int:
    """Non-merge commits of ``rev`` in the repository at ``path``; 0 when there is none."""
    if not path.exists():
        return 0
    try:
        out = subprocess.run(
            ["git", "-C", str(path), "rev-list", "--count", "--no-merges", rev, "--"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return 0
    text = out.stdout.strip()
    return int(text) if out.returncode == 0 and text.isdigit() else 0


def _record(root: Path, outcomes: list[StageOutcome], result: OrgRunResult) -> None:
    """Each repository's status.json (the newest outcome of each stage) and the run."""
    from diffrisk.data.store import atomic_write_bytes

    by: dict[str, dict[str, Any]] = {}
    for o in outcomes:
        by.setdefault(o.name, read_status(root, o.name))[o.stage] = o.to_dict()
    for name, st in by.items():
        atomic_write_bytes(RepoLayout(root, name).status, json.dumps(st, indent=2).encode())
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    atomic_write_bytes(
        root / RUNS_DIR / f"{stamp}-{'-'.join(result.stages)}.json",
        json.dumps(result.to_dict(), indent=2, default=str).encode(),
    )


def org_stages(
    opts: OrgOptions,
    stages: list[str],
    *,
    manifest: OrgManifest | None = None,
    engine: Engine | None = None,
) -> OrgRunResult:
    """Run ``stages`` (of fetch, mine, label) for the manifest's repositories."""
    m = manifest or load_manifest(opts.manifest, opts.root)
    specs = m.select(opts.only)
    m.root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    own = engine is None
    eng = engine or opts.engine()
    if own:
        eng.__enter__()
    try:
        info = eng.info
        if own and info is not None:
            _tell(opts, _cluster_line(info))
        totals = {s: len(specs) for s in stages}
        if opts.progress:
            for s in stages:
                opts.progress(s, 0, totals[s])

        def done(o: StageOutcome) -> None:
            if opts.progress:
                opts.progress(o.stage, 1, None)
            if o.status == "failed":
                _tell(opts, f"{o.name}: {o.stage} failed: {o.reason}")

        outcomes = eng.run_chains(
            specs, stages, m.root, on_done=done, priority=_previous_cost(m.root, specs)
        )
    finally:
        if own:
            eng.__exit__(None, None, None)
    res = OrgRunResult(m.root, list(stages), outcomes, info, time.perf_counter() - t0)
    _record(m.root, outcomes, res)
    return res


def _cluster_line(info: ClusterInfo) -> str:
    where = (
        f"local cluster of {info.workers} worker processes"
        if info.kind == "local"
        else f"cluster at {info.scheduler} ({info.workers} workers)"
    )
    dash = f"; dashboard: {info.dashboard}" if info.dashboard else "; no dashboard (bokeh?)"
    return f"dask: {where}{dash}"


def org_train(
    opts: OrgOptions,
    *,
    kinds: tuple[str, ...] | None = None,
    weightings: tuple[str, ...] | None = None,
    force: bool = False,
    manifest: OrgManifest | None = None,
    engine: Engine | None = None,
) -> Any:
    """Train the org model on the manifest's repositories (fits as Dask tasks)."""
    from diffrisk.config import Config, parse_config
    from diffrisk.org import model

    m = manifest or load_manifest(opts.manifest, opts.root)
    specs = m.select(opts.only)
    cfg = (
        parse_config(m.defaults_config, f"{m.path} [defaults.config]")
        if m.defaults_config is not None
        else Config()
    )
    own = engine is None
    eng = engine or opts.engine()
    if own:
        eng.__enter__()
        if eng.info is not None:
            _tell(opts, _cluster_line(eng.info))
    try:
        if opts.progress:
            opts.progress("train", 0, 1)
        res = model.train_org_model(
            specs,
            m.root,
            kinds=kinds or model.DEFAULT_KINDS,
            weightings=weightings or model.WEIGHTINGS,
            config=cfg,
            client=eng.client,
            force=force,
        )
        if opts.progress:
            opts.progress("train", 1, None)
    finally:
        if own:
            eng.__exit__(None, None, None)
    return res


def org_report(
    opts: OrgOptions, output: str | Path | None = None, *, manifest: OrgManifest | None = None
) -> Path:
    """Write the static HTML report (default ``ROOT/report.html``)."""
    from diffrisk.org.report import write_report

    m = manifest or load_manifest(opts.manifest, opts.root)
    out = Path(output) if output is not None else m.root / "report.html"
    return write_report(m.root, m.select(opts.only), out)


def org_pipeline(
    opts: OrgOptions,
    *,
    kinds: tuple[str, ...] | None = None,
    report: str | Path | None = None,
) -> OrgRunResult:
    """``org run``: fetch, mine and label every repository, train the org model on those
    that have labels, write the report; one cluster for all of it."""
    from diffrisk.errors import TooLittleHistoryError

    t0 = time.perf_counter()
    m = load_manifest(opts.manifest, opts.root)
    with opts.engine() as eng:
        if eng.info is not None:
            _tell(opts, _cluster_line(eng.info))
        res = org_stages(opts, ["fetch", "mine", "label"], manifest=m, engine=eng)
        try:
            res.train = org_train(opts, kinds=kinds, manifest=m, engine=eng)
        except TooLittleHistoryError as err:
            res.extra["train_skipped"] = err.message
            _tell(opts, f"train: {err.message}")
    res.report = str(org_report(opts, report, manifest=m))
    res.seconds = time.perf_counter() - t0
    return res


def org_install(
    opts: OrgOptions, data_dirs: tuple[str, ...] = (), *, force: bool = False
) -> list[Any]:
    """Install the org model into ``data_dirs``, or every manifest repository's."""
    from diffrisk.org.model import install

    m = load_manifest(opts.manifest, opts.root)
    targets = list(data_dirs) or [str(RepoLayout(m.root, s.name).data) for s in m.select(opts.only)]
    out = []
    for d in targets:
        out.append(install(m.root, d, force=force))
    return out


def raise_if_failed(res: OrgRunResult) -> None:
    """Exit 2 once the rest is done when a repository failed (said for each)."""
    failed = res.failed
    if not failed:
        return
    names = ", ".join(f"{n} ({o.stage}: {o.reason})" for n, o in sorted(failed.items()))
    raise DiffriskError(
        f"{len(failed)} of {len(res.repositories)} repositories failed: {names}",
        hint=f"the others completed; each repository's status is in {res.root}/OWNER/NAME/status.json",
    )
