"""Time ``diffrisk score`` end to end on a real repository with its dataset already mined.

    python bench/bench_score.py REPO_PATH DATA_DIR [--files 20] [--repeat 5]
                                [--base REV --head REV] [--fit-model]

Picks a pull request from the history whose diff touches about ``--files`` files: the
most recent merge commit on the first-parent line whose second parent changed
``--files`` files (+-2) since the merge base (else the closest one). Then times:

* in process: ``diffrisk.scoring.score.score`` (replaying the history, features, model, percentile,
  explanation) plus rendering the Markdown comment and the terminal report;
* the CLI: ``diffrisk score --format markdown`` as a subprocess (adds interpreter start
  and imports).

The model is the repository's current one, else the bundled one. ``--fit-model`` first
fits a logistic model on DATA_DIR's labels (``diffrisk label`` must have run) and
promotes it in DATA_DIR/models, for a data directory that has no model yet.

Example: pallets/flask, mined and labelled, 2 cores: see the numbers printed.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def pick_pair(repo: str, want: int, limit: int = 400) -> tuple[str, str, int]:
    """(base, head, files changed) of a merged PR with about ``want`` files."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", repo, *args], capture_output=True, text=True, check=True
        ).stdout

    best: tuple[int, str, str, int] | None = None
    merges = git("log", "--first-parent", "--merges", f"-n{limit}", "--format=%H %P").splitlines()
    for line in merges:
        parts = line.split()
        if len(parts) < 3:
            continue
        _m, p1, p2 = parts[:3]
        mb = git("merge-base", p1, p2).strip()
        if not mb or mb == p2:
            continue
        n = len(git("diff", "--name-only", "--no-renames", mb, p2).splitlines())
        gap = abs(n - want)
        if best is None or gap < best[0]:
            best = (gap, p1, p2, n)
        if gap <= 2:
            return p1, p2, n
    if best is None:
        raise SystemExit(
            "no merged pull request found on the first-parent history; pass --base and --head"
        )
    return best[1], best[2], best[3]


def fit_model(data_dir: Path) -> str:
    """Fit a calibrated logistic model on the labelled dataset and promote it."""
    import pandas as pd

    from diffrisk.data.paths import models_dir
    from diffrisk.data.store import load_dataset
    from diffrisk.model.estimators import fit_estimator
    from diffrisk.model.registry import ModelRegistry
    from diffrisk.model.transforms import raw_features

    ds = load_dataset(data_dir)
    labels = pd.read_parquet(data_dir / "labels.parquet", columns=["sha", "label"])
    df = ds.changes.merge(labels, on="sha").dropna(subset=["label"]).sort_values("author_time")
    est = fit_estimator("logistic", df, df["label"].astype(int).to_numpy())
    reg = ModelRegistry(models_dir(data_dir))
    version = reg.save(
        est, {"kind": "logistic", "features": raw_features("logistic"), "metrics": {}}
    )
    reg.promote(version)
    return version


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("repo")
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--base")
    ap.add_argument("--head")
    ap.add_argument("--fit-model", action="store_true")
    args = ap.parse_args()

    if args.fit_model:
        print(f"fitted and promoted model {fit_model(args.data_dir)}")
    if args.base and args.head:
        base, head = args.base, args.head
        nfiles = None
    else:
        base, head, nfiles = pick_pair(args.repo, args.files)
    print(f"pair: base {base[:12]} head {head[:12]} ({nfiles} files changed)")

    from rich.console import Console

    from diffrisk.config import load_config
    from diffrisk.report.render import render_comment, render_terminal
    from diffrisk.scoring.score import score

    cfg = load_config(args.repo)
    times, cpus = [], []
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), _cpu()
        res = score(args.repo, base, head, args.data_dir, cfg)
        render_comment(res, cfg.report)
        render_terminal(res, Console(file=io.StringIO(), width=120))
        times.append(time.perf_counter() - t0)
        cpus.append(_cpu() - c0)
    print(
        f"in process: median {statistics.median(times):.2f} s wall, {statistics.median(cpus):.2f} s CPU "
        f"(with git), min {min(times):.2f} s "
        f"(score() alone last run {res.seconds:.2f} s); nf={res.features['nf']}, "
        f"{len(res.commits)} commits, p={res.probability:.3f} {res.level}, model {res.model_version} "
        f"({res.model_source}), percentile {res.percentile}"
    )
    cli, cli_cpu = [], []
    out = Path(tempfile.mkdtemp()) / "comment.md"
    for _ in range(max(1, args.repeat // 2)):
        t0, c0 = time.perf_counter(), _cpu()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "diffrisk",
                "score",
                "--repo",
                args.repo,
                "--data-dir",
                str(args.data_dir),
                "--base",
                base,
                "--head",
                head,
                "--format",
                "markdown",
                "--output",
                str(out),
                "-q",
            ],
            check=True,
        )
        cli.append(time.perf_counter() - t0)
        cli_cpu.append(_cpu() - c0)
    print(
        f"CLI subprocess: median {statistics.median(cli):.2f} s wall, {statistics.median(cli_cpu):.2f} s CPU, "
        f"min {min(cli):.2f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )


def _cpu() -> float:
    """CPU seconds of this process and its finished children (git, the CLI)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


if __name__ == "__main__":
    main()
