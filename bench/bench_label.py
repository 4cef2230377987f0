"""Benchmark the SZZ label stage on a real repository (not a test: minutes, real history).

    python bench/bench_label.py REPO_PATH [--data-dir DIR] [--workers N] [--filters]

1. mines REPO_PATH (without code metrics) unless DIR already holds a dataset;
2. labels it from scratch (blame cache removed) and prints wall and CPU seconds
   (CPU includes the worker processes and every git they ran);
3. "one new fix": mines a copy of the dataset up to the parent of the newest fix, labels
   it (reusing the blame cache of step 2 minus that fix), then mines up to HEAD and
   labels again: only the new fix is blamed; prints that relabelling time;
4. with --filters: labels once per SZZ filter switched off and prints the buggy count
   with and without it (docs/labels.md reports these numbers).
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from diffrisk.config import LabelConfig, MineConfig
from diffrisk.git.repo import open_repo
from diffrisk.labelling.label import CACHE_FILE, label
from diffrisk.mining.mine import mine


def cpu_seconds() -> float:
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def timed(fn, *args, **kw):
    w0, c0 = time.perf_counter(), cpu_seconds()
    out = fn(*args, **kw)
    return out, time.perf_counter() - w0, cpu_seconds() - c0


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("repo")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--filters", action="store_true", help="measure the effect of each SZZ filter")
    ap.add_argument(
        "--skip-full", action="store_true", help="reuse the blame cache (for --filters only)"
    )
    args = ap.parse_args()

    repo = Path(args.repo)
    name = repo.resolve().parent.name if repo.name == "repo" else repo.name
    data = Path(args.data_dir or Path(tempfile.gettempdir()) / "diffrisk-bench-label" / name)
    mcfg = MineConfig(code_metrics=False)
    cfg = LabelConfig(workers=args.workers)
    report: dict[str, object] = {"repo": name}

    _, w, c = timed(mine, repo, data, config=mcfg)
    report["mine_seconds"] = round(w, 1)

    if not args.skip_full:
        (data / CACHE_FILE).unlink(missing_ok=True)
        res, w, c = timed(label, repo, data, cfg)
        report["full"] = {"wall_s": round(w, 1), "cpu_s": round(c, 1), **_counts(res)}
        print(json.dumps(report["full"]), flush=True)

        # one new fix
        changes = pd.read_parquet(data / "changes.parquet")
        git = open_repo(repo)
        order = git.run("rev-list", "--topo-order", "--no-merges", "HEAD").decode().split()
        fixes = set(changes.loc[changes["fix"] == 1, "sha"])
        newest = next(s for s in order if s in fixes)
        with tempfile.TemporaryDirectory() as tmp:
            d2 = Path(tmp) / "data"
            mine(repo, d2, rev=f"{newest}^", config=mcfg)
            cache = pq.read_table(data / CACHE_FILE)
            keep = pc.not_equal(cache["fix_sha"], newest)
            pq.write_table(cache.filter(keep), d2 / CACHE_FILE)
            label(repo, d2, cfg)
            _, mw, _ = timed(mine, repo, d2, config=mcfg)
            res2, w, c = timed(label, repo, d2, cfg)
            report["one_new_fix"] = {
                "fix": newest[:12],
                "mine_wall_s": round(mw, 2),
                "label_wall_s": round(w, 2),
                "label_cpu_s": round(c, 2),
                "newly_blamed": res2.newly_blamed,
            }
            print(json.dumps(report["one_new_fix"]), flush=True)

    if args.filters:
        base = label(repo, data, cfg)
        effects = {"all filters on": _counts(base)}
        for off in (
            {"ignore_whitespace": False},
            {"ignore_comments": False},
            {"source_only": False},
            {"max_fix_files": 100_000},
            {"copy_detection": True},
            {"skip_cosmetic_commits": False},
            {
                "ignore_whitespace": False,
                "ignore_comments": False,
                "source_only": False,
                "max_fix_files": 100_000,
                "skip_cosmetic_commits": False,
            },
        ):
            res = label(repo, data, cfg.model_copy(update=off))
            effects[json.dumps(off)] = _counts(res)
            print(json.dumps({"variant": off, **_counts(res)}), flush=True)
        label(repo, data, cfg)  # leave the default labels in place
        report["filters"] = effects
    print(json.dumps(report, indent=2))


def _counts(res) -> dict[str, int]:
    return {
        "fixes": res.fixes,
        "fixes_blamed": res.fixes_blamed,
        "blamed_nothing": res.fixes_blamed_nothing,
        "links": res.links,
        "buggy": res.buggy,
        "clean": res.clean,
        "unlabelled": res.unlabelled,
    }


if __name__ == "__main__":
    main()
