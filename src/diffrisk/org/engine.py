"""The Dask side: a cluster to run on, and one chain of coarse tasks per repository.

:class:`Engine` starts an embedded :class:`distributed.LocalCluster` (``workers``
processes of one thread each; a worker may start git processes, and its tasks run
diffrisk's stages with one process each) or connects to a running scheduler
(``scheduler="tcp://host:8786"``: every worker must have diffrisk installed and see the
root directory at the same path, e.g. on a shared file system).

:meth:`Engine.run_chains` submits, per repository, the stages asked for as a chain of
tasks (each waits for the one before; a failed one skips the rest of its chain, never
another repository's) and collects a :class:`~diffrisk.org.tasks.StageOutcome` for each
as they finish. ``retries``: how often a task that raised an unexpected error runs
again, and (for the embedded cluster) how many worker deaths a task may see
(``distributed.scheduler.allowed-failures``) before it is given up as failed.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffrisk.errors import DiffriskError
from diffrisk.org.manifest import RepoSpec
from diffrisk.org.tasks import StageOutcome, run_stage

INSTALL_HINT = "install the org extra: pip install 'diffrisk[org]'"


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise DiffriskError(
            "diffrisk org needs Dask (the distributed package), which is not installed",
            hint=INSTALL_HINT,
        ) from None
    return distributed


@dataclass
class ClusterInfo:
    kind: str  # local | remote
    scheduler: str
    dashboard: str | None
    workers: int
    start_seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "scheduler": self.scheduler,
            "dashboard": self.dashboard,
            "workers": self.workers,
            "start_seconds": round(self.start_seconds, 3),
            **self.extra,
        }


class Engine:
    """A Dask client on an embedded or existing cluster (a context manager)."""

    def __init__(
        self,
        workers: int | None = None,
        scheduler: str | None = None,
        *,
        retries: int = 2,
        dashboard_address: str | None = ":8787",
        memory_limit: str | float | None = "auto",
    ) -> None:
        if workers is not None and scheduler is not None:
            raise DiffriskError(
                "--workers starts a cluster here, --scheduler uses an existing one: not both",
                hint="drop one of them",
            )
        if retries < 0:
            raise DiffriskError(f"retries must be 0 or more, got {retries}")
        self.workers = workers
        self.scheduler = scheduler
        self.retries = retries
        self.dashboard_address = dashboard_address
        self.memory_limit = memory_limit
        self.client: Any = None
        self.cluster: Any = None
        self.info: ClusterInfo | None = None

    def __enter__(self) -> Engine:
        distributed = _distributed()
        import dask

        t0 = time.perf_counter()
        if self.scheduler is not None:
            try:
                self.client = distributed.Client(self.scheduler, timeout="20s")
            except (OSError, TimeoutError) as err:
                raise DiffriskError(
                    f"cannot reach the Dask scheduler at {self.scheduler}: {err}",
                    hint="check the address (tcp://host:8786) and that the scheduler runs",
                ) from None
            kind = "remote"
        else:
            n = self.workers or 2
            with dask.config.set(
                {
                    # a task may see this many worker deaths before it is given up
                    "distributed.scheduler.allowed-failures": self.retries,
                    # diffrisk's stages may start processes of their own
                    "distributed.worker.daemon": False,
                }
            ):
                self.cluster = distributed.LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=self.dashboard_address,
                    silence_logs=logging.ERROR,
                    memory_limit=self.memory_limit,
                )
                self.client = distributed.Client(self.cluster)
            kind = "local"
        start = time.perf_counter() - t0
        t1 = time.perf_counter()
        self.client.run(warm_up)  # every worker at once, before any task is timed
        warm = time.perf_counter() - t1
        try:
            nworkers = len(self.client.scheduler_info(n_workers=-1)["workers"])
        except TypeError:  # older distributed: no n_workers argument
            nworkers = len(self.client.scheduler_info()["workers"])
        self.info = ClusterInfo(
            kind,
            str(self.client.scheduler.address),
            self.dashboard_link,
            nworkers,
            start,
            {"warm_up_seconds": round(warm, 3)},
        )
        return self

    @property
    def dashboard_link(self) -> str | None:
        try:
            link = self.client.dashboard_link
        except (AttributeError, KeyError):
            return None
        return str(link) if link else None

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def run_chains(
        self,
        specs: Sequence[RepoSpec],
        stages: Sequence[str],
        root: Path,
        *,
        on_done: Callable[[StageOutcome], None] | None = None,
        priority: dict[str, float] | None = None,
    ) -> list[StageOutcome]:
        """Per repository, ``stages`` as a chain of tasks; every outcome (failures included)
        as they finish. ``priority``: a higher value starts sooner (e.g. the repository's
        earlier cost: the longest first)."""
        distributed = _distributed()
        run = uuid.uuid4().hex[:8]
        which: dict[str, tuple[str, str]] = {}
        chains: dict[str, list[tuple[str, Any]]] = {}
        futures = []
        for spec in specs:
            prev = None
            for stage in stages:
                key = f"org-{stage}-{spec.name}-{run}"
                fut = self.client.submit(
                    run_stage,
                    spec,
                    stage,
                    str(root),
                    prev,
                    key=key,
                    retries=self.retries,
                    pure=False,
                    priority=(priority or {}).get(spec.name, 0.0),
                )
                which[fut.key] = (spec.name, stage)
                chains.setdefault(spec.name, []).append((stage, fut))
                futures.append(fut)
                prev = fut
        outcomes = []
        for fut in distributed.as_completed(futures):
            name, stage = which[fut.key]
            try:
                out = fut.result()
            except Exception as err:
                chain = chains[name]
                at = next(i for i, (_, f) in enumerate(chain) if f is fut)
                earlier = next((st for st, f in chain[:at] if f.status == "error"), None)
                out = _lost(name, stage, err, earlier)
            outcomes.append(out)
            if on_done is not None:
                on_done(out)
        return outcomes


def warm_up() -> None:
    """Import what the tasks use (seconds on a loaded machine), on a worker."""
    import diffrisk.labelling.label
    import diffrisk.mining.mine
    import diffrisk.org.dataset  # noqa: F401


def _lost(name: str, stage: str, err: BaseException, earlier: str | None) -> StageOutcome:
    """The outcome of a task that raised (after its retries) or whose workers kept dying;
    the tasks after it in the chain raise the same error (``earlier``: the stage that
    did), and are reported as skipped."""
    kind = type(err).__name__
    if earlier is not None:
        return StageOutcome(name, stage, "skipped", reason=f"{earlier} failed: {kind}: {err}")
    if kind == "KilledWorker":
        reason = "the workers running it died, too many times (KilledWorker)"
        hint = "see the workers' logs (memory limit?); raise --retries to allow more deaths"
    else:
        reason = f"{kind}: {err}"
        hint = "an unexpected error, after the retries: run with --debug, and report it"
    return StageOutcome(name, stage, "failed", reason=reason, hint=hint)
