"""Organisation-scale benchmark: ``diffrisk org`` on a Dask LocalCluster against the same
work done in sequence, on real repositories; and a cost model for 1,000 repositories.

    python bench/bench_org.py NAME=PATH ... [--work DIR] [--workers 2] [--json OUT]
    python bench/bench_org.py --repos-json repos.json --min-commits 150 --max-commits 1200 \\
        --count 18 [--train] [--report] [--screenshot docs/images/org-report.png]

Repositories are given as ``owner/name=PATH`` (a bare mirror or a work tree) or as a JSON
object ``{"owner/name": "PATH", ...}`` filtered by their number of non-merge commits
(the first ``--count`` by name within the range). For each, the same task function the
cluster runs (:func:`diffrisk.org.tasks.run_stage`: check, mine, label, each with one
process) is timed:

1. **in sequence**, in this process, into ``WORK/seq`` (fresh);
2. **on Dask**: an embedded LocalCluster of ``--workers`` processes (one thread each)
   into ``WORK/dask`` (fresh): cluster start, worker warm-up (imports), and the run.

Printed and written (``--json``): both wall times and the speed-up; the cluster's share
of the run's wall time that no worker spent in a task (between a worker's tasks:
dispatch; before its first and after its last: start-up and load imbalance); the peak
memory of each worker process (``ru_maxrss``) and of its git children; per repository
commits, fixes, and seconds per stage. Then a cost model fitted on the sequential
per-repository costs (seconds against commits and fixes, least squares), applied to
1,000 repositories drawn like these on N workers. ``--train`` also trains the org model
on the Dask results (and reports its leave-one-repository-out figures), ``--report``
writes the HTML report, ``--screenshot`` renders it with headless Chromium.

Nothing from the repositories is written outside WORK.
"""

# ruff: noqa: E402  (thread limits must be set before numpy loads)
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import itertools
import json
import platform
import resource
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from diffrisk.org.engine import Engine
from diffrisk.org.manifest import RepoSpec
from diffrisk.org.tasks import StageOutcome, run_stage

STAGES = ["fetch", "mine", "label"]


def commit_count(path: str) -> int:
    out = subprocess.run(
        ["git", "-C", path, "rev-list", "--count", "--no-merges", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return int(out.stdout.strip() or 0) if out.returncode == 0 else 0


def pick(args: argparse.Namespace) -> dict[str, str]:
    repos: dict[str, str] = {}
    for a in args.repos:
        name, path = a.split("=", 1)
        repos[name] = path
    if args.repos_json:
        listed = json.loads(Path(args.repos_json).read_text())
        chosen = 0
        for name in sorted(listed):
            if chosen >= args.count:
                break
            n = commit_count(listed[name])
            if args.min_commits <= n <= args.max_commits:
                repos[name] = listed[name]
                chosen += 1
    return repos


def specs_of(repos: dict[str, str]) -> list[RepoSpec]:
    return [
        RepoSpec(n, None, str(Path(p).resolve()), "HEAD", None, None, "GITHUB_TOKEN")
        for n, p in repos.items()
    ]


def sequential(specs: list[RepoSpec], root: Path) -> tuple[float, list[StageOutcome]]:
    t0 = time.perf_counter()
    out = []
    for s in specs:
        prev = None
        for st in STAGES:
            prev = run_stage(s, st, str(root), prev)
            out.append(prev)
            print(f"  seq {s.name} {st} {prev.status} {prev.seconds:.1f}s", file=sys.stderr)
    return time.perf_counter() - t0, out


def manifest_of(repos: dict[str, str], path: Path) -> Path:
    path.write_text(
        "".join(
            f'[[repo]]\nname = "{n}"\npath = "{Path(p).resolve()}"\n\n' for n, p in repos.items()
        )
    )
    return path


def on_dask(manifest: Path, root: Path, workers: int) -> dict[str, Any]:
    """``diffrisk org``'s own path (:func:`diffrisk.org.jobs.org_stages`) on a cluster
    started here, so that its start is timed apart from the run."""
    from diffrisk.org.jobs import OrgOptions, org_stages
    from diffrisk.org.manifest import load_manifest

    t0 = time.perf_counter()
    with Engine(workers, dashboard_address=":0", retries=2) as eng:
        info = eng.info
        assert info is not None
        t1 = time.perf_counter()
        res = org_stages(
            OrgOptions(manifest, root, tell=lambda line: print(line, file=sys.stderr)),
            STAGES,
            manifest=load_manifest(manifest, root),
            engine=eng,
        )
        outs = res.outcomes
        t2 = time.perf_counter()
        rss = eng.client.run(_rss)
    return {
        "start_seconds": info.start_seconds,
        "warm_up_seconds": info.extra.get("warm_up_seconds"),
        "run_seconds": t2 - t1,
        "end_to_end_seconds": time.perf_counter() - t0,
        "run_started_epoch": time.time() - (time.perf_counter() - t1),
        "outcomes": outs,
        "worker_rss_end_mb": {k: round(v, 1) for k, v in rss.items()},
    }


def _rss() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss / 2**20)


def overhead(
    outs: list[StageOutcome], run_seconds: float, started: float, workers: int
) -> dict[str, Any]:
    """Where the workers' time went during the run: in tasks, between tasks (dispatch),
    before the first and after the last (start-up, load imbalance)."""
    by: dict[int, list[StageOutcome]] = {}
    for o in outs:
        by.setdefault(o.pid, []).append(o)
    busy = sum(o.ended - o.started for o in outs)
    gaps = 0.0
    edges = 0.0
    for tasks in by.values():
        tasks.sort(key=lambda o: o.started)
        gaps += sum(max(0.0, b.started - a.ended) for a, b in itertools.pairwise(tasks))
        edges += max(0.0, tasks[0].started - started) + max(
            0.0, started + run_seconds - tasks[-1].ended
        )
    capacity = workers * run_seconds
    n = len(outs)
    return {
        "tasks": n,
        "worker_processes_seen": len(by),
        "busy_share": round(busy / capacity, 4),
        "dispatch_share": round(gaps / capacity, 4),
        "edges_share": round(edges / capacity, 4),
        "idle_share": round(1 - busy / capacity, 4),
        "dispatch_ms_per_task": round(1000 * gaps / max(n - len(by), 1), 1),
    }


def fit_costs(rows: list[dict[str, Any]], suffix: str = "_cpu") -> dict[str, Any]:
    """seconds = a + b * commits (+ c * fixes for label), least squares, per stage
    (``suffix``: ``_cpu`` for CPU seconds, ``""`` for wall seconds)."""
    out: dict[str, Any] = {}
    for stage, cols in (("mine", ["commits"]), ("label", ["commits", "fixes"])):
        X = np.array([[1.0, *(r[c] for c in cols)] for r in rows])
        y = np.array([r[stage + suffix] for r in rows])
        coef, *_ = np.linalg.lstsq(X, y, rcond=None)
        pred = X @ coef
        ss = float(np.sum((y - y.mean()) ** 2)) or 1.0
        out[stage] = {
            "coef": dict(
                zip(["intercept", *cols], (round(float(c), 6) for c in coef), strict=True)
            ),
            "r2": round(1 - float(np.sum((y - pred) ** 2)) / ss, 3),
        }
    return out


def project(
    rows: list[dict[str, Any]],
    costs: dict[str, Any],
    eff: float,
    start: float,
    peak_mb: float,
    n_repos: int = 1000,
    workers: tuple[int, ...] = (2, 8, 32, 128),
) -> list[dict[str, Any]]:
    """Wall time for ``n_repos`` repositories drawn like ``rows`` (their commits and fixes
    resampled, seed 0) on N workers: the total predicted cost over N, divided by the
    measured efficiency (busy share), plus cluster start; never below the largest single
    repository (one task cannot be split)."""
    rng = np.random.default_rng(0)
    draw = [rows[i] for i in rng.integers(0, len(rows), n_repos)]

    def cost(r: dict[str, Any]) -> float:
        m = costs["mine"]["coef"]
        lab = costs["label"]["coef"]
        return max(0.0, m["intercept"] + m["commits"] * r["commits"]) + max(
            0.0, lab["intercept"] + lab["commits"] * r["commits"] + lab["fixes"] * r["fixes"]
        )

    each = [cost(r) for r in draw]
    total = float(sum(each))
    out = []
    for n in workers:
        wall = max(total / n / max(eff, 1e-6), max(each)) + start
        out.append(
            {
                "workers": n,
                "cpu_hours": round(total / 3600, 2),
                "wall_hours": round(wall / 3600, 2),
                "memory_gb": round(n * peak_mb / 1024, 1),
            }
        )
    return out


def screenshot(html: Path, png: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("no chromium: apt-get install -y chromium", file=sys.stderr)
        return
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,2600",
            f"--screenshot={png}",
            html.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("repos", nargs="*", help="owner/name=PATH")
    ap.add_argument("--repos-json", default=None)
    ap.add_argument("--min-commits", type=int, default=150)
    ap.add_argument("--max-commits", type=int, default=1200)
    ap.add_argument("--count", type=int, default=18)
    ap.add_argument("--work", type=Path, default=Path("/tmp/diffrisk-bench-org"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--train", action="store_true")
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--screenshot", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    repos = pick(args)
    if len(repos) < 2:
        ap.error("give at least two repositories")
    specs = specs_of(repos)
    print(f"{len(specs)} repositories: {', '.join(repos)}", file=sys.stderr)
    for sub in ("seq", "dask"):
        shutil.rmtree(args.work / sub, ignore_errors=True)
        (args.work / sub).mkdir(parents=True)

    seq_wall, seq_out = sequential(specs, args.work / "seq")
    man = manifest_of(repos, args.work / "org.toml")
    d = on_dask(man, args.work / "dask", args.workers)
    outs: list[StageOutcome] = d["outcomes"]
    ov = overhead(outs, d["run_seconds"], d["run_started_epoch"], args.workers)
    per: dict[str, dict[str, Any]] = {}
    for o in seq_out:
        r = per.setdefault(o.name, {"name": o.name})
        r[o.stage] = round(o.seconds, 3)
        r[o.stage + "_cpu"] = round(o.cpu_seconds, 3)
        if o.stage == "mine" and o.status == "ok":
            r["commits"] = o.details.get("commits", 0)
        if o.stage == "label" and o.status == "ok":
            r["fixes"] = o.details.get("fixes", 0)
            r["buggy"] = o.details.get("buggy", 0)
    rows = [r for r in per.values() if "commits" in r and "fixes" in r]
    costs = fit_costs(rows)
    wall_costs = fit_costs(rows, "")
    peaks: dict[int, dict[str, float]] = {}
    for o in outs:
        p = peaks.setdefault(o.pid, {"worker_mb": 0.0, "git_children_mb": 0.0})
        p["worker_mb"] = max(p["worker_mb"], o.peak_rss_mb)
        p["git_children_mb"] = max(p["git_children_mb"], o.children_peak_rss_mb)
    peak_mb = max(p["worker_mb"] for p in peaks.values())
    failures = [f"{o.name} {o.stage}: {o.reason}" for o in outs if o.status != "ok"]
    result: dict[str, Any] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_end": [round(x, 1) for x in os.getloadavg()],
            "note": "shared with other jobs: the load average says how busy",
        },
        "repositories": len(specs),
        "commits": int(sum(r["commits"] for r in rows)),
        "workers": args.workers,
        "sequential_seconds": round(seq_wall, 2),
        "dask_run_seconds": round(d["run_seconds"], 2),
        "dask_cluster_start_seconds": round(d["start_seconds"], 2),
        "dask_warm_up_seconds": d["warm_up_seconds"],
        "dask_end_to_end_seconds": round(d["end_to_end_seconds"], 2),
        "speed_up_run": round(seq_wall / d["run_seconds"], 2),
        "speed_up_end_to_end": round(seq_wall / d["end_to_end_seconds"], 2),
        "overhead": ov,
        "peak_memory_per_worker": {
            str(k): {kk: round(v, 1) for kk, v in p.items()} for k, p in peaks.items()
        },
        "worker_rss_end_mb": d["worker_rss_end_mb"],
        "client_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "per_repository": rows,
        "cost_model_cpu": costs,
        "cost_model_wall": wall_costs,
        "sequential_cpu_seconds": round(sum(o.cpu_seconds for o in seq_out), 2),
        "dask_task_cpu_seconds": round(sum(o.cpu_seconds for o in outs), 2),
        "dask_task_wall_seconds": round(sum(o.seconds for o in outs), 2),
        "projection_1000": project(
            rows, costs, ov["busy_share"], d["start_seconds"] + (d["warm_up_seconds"] or 0), peak_mb
        ),
        "failures": failures,
    }
    if args.train or args.report:
        from diffrisk.org import model
        from diffrisk.org.report import write_report

        if args.train:
            t = time.perf_counter()
            with Engine(args.workers, dashboard_address=":0") as eng:
                res = model.train_org_model(
                    specs, args.work / "dask", client=eng.client, force=True
                )
            result["train"] = {
                "seconds": round(time.perf_counter() - t, 1),
                "message": res.message,
                "loro_mean": res.loro_mean,
                "time_order_mean": res.time_order_mean,
                "chosen": f"{res.kind}/{res.weighting}",
                "n_train": res.n_train,
                "n_buggy": res.n_buggy,
            }
        if args.report:
            html = write_report(args.work / "dask", specs, args.work / "dask" / "report.html")
            result["report"] = str(html)
            if args.screenshot:
                screenshot(html, args.screenshot)
    text = json.dumps(result, indent=2, default=str)
    if args.json:
        args.json.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
