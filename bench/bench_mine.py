"""Mining benchmark: diffrisk against ``git log`` (the floor) and PyDriller, on one repository.

    python bench/bench_mine.py REPO [--pydriller-limit N] [--skip-pydriller] [--json]

Everything is measured in the same run on the same repository and revision, each
measurement in its own child process (so its peak memory is its own):

- floor: ``git log --no-merges --numstat REV`` to /dev/null (best of ``--repeat``),
- diffrisk ``mine --no-code-metrics --no-code-lines`` (the 14 Kamei features) into a
  fresh data dir, then the same command again (incremental re-run, no new commits),
- diffrisk ``mine --no-code-metrics`` (the Kamei features plus ``la_code``, the added
  lines of code, which needs the source files' diffs), and its re-run,
- diffrisk ``mine`` with code metrics (radon for Python, lizard for the other languages)
  into another fresh data dir, and its re-run,
- PyDriller: for each non-merge commit, each modified file's ``added_lines`` and
  ``deleted_lines``; then a second traversal that also reads ``complexity`` (lizard on
  the version after the change, every modified file in a language lizard reads); then a
  third that computes what diffrisk's code metrics hold, for the files diffrisk measures
  (source files by the default ``label`` settings, in a language with code metrics):
  ``complexity`` after, ``methods_before`` (lizard on the version before) and
  ``changed_methods`` (the functions the diff touches, for ``cc_max_touched``).

PyDriller needs a work tree, so it runs on a ``git clone --shared --no-checkout`` of
REPO in a temporary directory (objects are borrowed from REPO; nothing is checked out).
With ``--pydriller-limit N`` it does its per-commit work on N commits spread evenly over
the history and the traversal time is extrapolated linearly to all commits (the output
says so); the iteration over the other commits is still done and counted.

Wall time is what the targets are about; CPU time (user + system of the process and
everything it waited for) is shown too because it is less sensitive to other load on
the machine. Peak memory is the largest resident set of any one process of the run
(``ru_maxrss`` from ``wait4``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class Run:
    """One measured child process."""

    wall: float
    cpu: float
    maxrss_mib: float
    extrapolated: bool = False
    note: str = ""


def measure(argv: list[str], *, capture: bool = False) -> tuple[Run, bytes]:
    """Run ``argv``; its wall time, CPU time and peak RSS (children included), and its
    stdout if ``capture``."""
    with tempfile.TemporaryFile() as out_file:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdout=out_file if capture else subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        assert proc.stderr is not None
        err = proc.stderr.read()
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            sys.stderr.write(err.decode("utf-8", "replace"))
            raise SystemExit(
                f"error: {' '.join(argv[:6])} ... failed with exit code {proc.returncode}"
            )
        out_file.seek(0)
        data = out_file.read()
    return Run(wall=wall, cpu=ru.ru_utime + ru.ru_stime, maxrss_mib=ru.ru_maxrss / 1024), data


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout


def git_dir_of(path: Path) -> Path:
    out = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "--absolute-git-dir"], capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"error: {path} is not a git repository")
    return Path(out.stdout.strip())


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    mem_gib = 0.0
    try:
        with open("/proc/meminfo") as f:
            mem_gib = int(f.readline().split()[1]) / 1024 / 1024
    except OSError:
        pass
    import importlib.metadata as md

    def version(dist: str) -> str:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return "not installed"

    import diffrisk

    src = subprocess.run(
        ["git", "-C", str(Path(diffrisk.__file__).parent), "describe", "--always", "--dirty"],
        capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "ram_gib": round(mem_gib, 1),
        "git": subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip(),
        "python": platform.python_version(),
        "diffrisk": version("diffrisk") + (f" ({src})" if src else ""),
        "pydriller": version("pydriller"),
        "lizard": version("lizard"),
        "radon": version("radon"),
        "load_average_at_start": os.getloadavg(),
    }


# -- PyDriller worker (runs in a child process) -----------------------------------------


def pydriller_worker(clone: str, sha: str, mode: str, sample_every: int) -> None:
    """Traverse like the benchmark says; print JSON with the times on stdout."""
    from pydriller import Repository

    measured = None
    if mode == "metrics":
        from diffrisk.config import LabelConfig
        from diffrisk.features.codemetrics import metric_language
        from diffrisk.features.source import SourceFilter

        source = SourceFilter.of_config(LabelConfig())

        def measured(path: str | None) -> bool:
            return bool(path) and metric_language(path) is not None and source(path)

    t0 = time.perf_counter()
    work = work_cpu = 0.0
    commits = done = files = total = 0
    for i, commit in enumerate(
        Repository(clone, only_no_merge=True, to_commit=sha).traverse_commits()
    ):
        commits += 1
        if i % sample_every:
            continue
        t, c = time.perf_counter(), time.process_time()
        for m in commit.modified_files:
            total += m.added_lines + m.deleted_lines
            if mode == "complexity":
                m.complexity  # noqa: B018 - runs lizard
            elif measured is not None and measured(m.new_path or m.old_path):
                # diffrisk's cc_after, cc_before and cc_max_touched
                after = m.complexity
                before = sum(x.complexity for x in m.methods_before)
                touched = max((x.complexity for x in m.changed_methods), default=0)
                total += (after or 0) + before + touched
            files += 1
        work += time.perf_counter() - t
        work_cpu += time.process_time() - c
        done += 1
    elapsed = time.perf_counter() - t0
    print(json.dumps({"commits": commits, "sampled": done, "files": files, "lines": total,
                      "elapsed": elapsed, "work": work, "work_cpu": work_cpu}))  # fmt: skip


def run_pydriller(
    repo: Path, sha: str, mode: str, limit: int | None, n_commits: int, tmp: Path
) -> Run:
    clone = tmp / "pydriller-clone"
    if not clone.exists():
        subprocess.run(
            ["git", "clone", "--quiet", "--shared", "--no-checkout", str(repo), str(clone)],
            check=True,
        )
    every = max(1, n_commits // limit) if limit else 1
    argv = [sys.executable, __file__, "--pydriller-worker", str(clone), sha, mode, str(every)]
    run, out = measure(argv, capture=True)
    r = json.loads(out)
    if r["commits"] != n_commits:
        run.note = f"PyDriller saw {r['commits']} non-merge commits, git {n_commits}"
    if every > 1:
        # the per-commit work on the sample, scaled to all commits; the rest as measured
        # (wall time by the sample's wall time, CPU time by its CPU time: under load the
        # two differ, and scaling CPU by wall time overstated PyDriller's CPU)
        scale = r["commits"] / max(1, r["sampled"])
        run.wall += r["work"] * (scale - 1)
        run.cpu += r.get("work_cpu", r["work"]) * (scale - 1)
        run.extrapolated = True
        run.note = (run.note + "; " if run.note else "") + (
            f"per-commit work measured on {r['sampled']} of {r['commits']} commits (every {every}th), "
            f"extrapolated x{scale:.1f}"
        )
    return run


# -- the benchmark --------------------------------------------------------------------


def diffrisk_argv(
    repo: Path,
    data: Path,
    rev: str,
    code_metrics: bool,
    workers: int | None,
    code_lines: bool = True,
) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "diffrisk",
        "mine",
        "--repo",
        str(repo),
        "--data-dir",
        str(data),
        "--rev",
        rev,
    ]
    argv += ["-q", "--json"]
    # code metrics are off by default (mine.code_metrics): ask for them either way
    argv.append("--code-metrics" if code_metrics else "--no-code-metrics")
    if not code_lines:
        argv.append("--no-code-lines")
    if workers:
        argv += ["--workers", str(workers)]
    return argv


def bench(a: argparse.Namespace) -> dict[str, Any]:
    repo = git_dir_of(a.repo)
    sha = git(repo, "rev-parse", "--verify", f"{a.rev}^{{commit}}").strip()
    n_commits = int(git(repo, "rev-list", "--count", "--no-merges", sha))
    n_merges = int(git(repo, "rev-list", "--count", "--merges", sha))
    res: dict[str, Any] = {
        "repository": a.name or a.repo.name,
        "rev": sha,
        "commits": n_commits,
        "merges": n_merges,
        "machine": machine(),
        "runs": {},
    }
    runs: dict[str, Run] = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench-mine-", dir=a.tmp))
    say = (lambda *x: None) if a.json else (lambda msg: print(msg, file=sys.stderr, flush=True))
    try:
        say(f"{res['repository']} @ {sha[:12]}: {n_commits} non-merge commits, {n_merges} merges")
        floor = [measure(["git", "--git-dir", str(repo), "log", "--no-merges", "--numstat", sha])[0]
                 for _ in range(a.repeat)]  # fmt: skip
        runs["floor"] = min(floor, key=lambda r: r.wall)
        say(f"  floor (git log --numstat): {runs['floor'].wall:.2f} s")
        modes = [("kamei", False, False), ("kamei_code", False, True)]
        modes += [] if a.skip_code_metrics else [("metrics", True, True)]
        for mode, cm, cl in modes:
            data = tmp / f"data-{mode}"
            argv = diffrisk_argv(repo, data, sha, cm, a.workers, code_lines=cl)
            runs[f"diffrisk_{mode}"], out = measure(argv, capture=True)
            mined = json.loads(out)
            if mined.get("commits") != n_commits:
                runs[f"diffrisk_{mode}"].note = f"mined {mined.get('commits')} commits"
            say(f"  diffrisk mine ({mode}): {runs[f'diffrisk_{mode}'].wall:.2f} s")
            runs[f"diffrisk_{mode}_rerun"], _ = measure(argv, capture=True)
            say(f"  diffrisk mine ({mode}, re-run): {runs[f'diffrisk_{mode}_rerun'].wall:.2f} s")
            shutil.rmtree(data, ignore_errors=True)
        if not a.skip_pydriller:
            for mode in ("lines", "complexity", "metrics"):
                if mode != "lines" and a.skip_code_metrics:
                    continue
                limit = (
                    a.pydriller_limit
                    if mode == "lines"
                    else (a.pydriller_complexity_limit or a.pydriller_limit)
                )
                runs[f"pydriller_{mode}"] = run_pydriller(repo, sha, mode, limit, n_commits, tmp)
                r = runs[f"pydriller_{mode}"]
                say(
                    f"  PyDriller ({mode}): {r.wall:.2f} s{' (extrapolated)' if r.extrapolated else ''}"
                )
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    res["runs"] = {k: asdict(v) for k, v in runs.items()}
    res["ratios"] = ratios(runs)
    res["per_commit_ms"] = {
        k: round(1000 * runs[k].wall / max(1, n_commits), 3) for k in ("floor", "diffrisk_kamei", "diffrisk_kamei_code", "diffrisk_metrics")
        if k in runs
    }  # fmt: skip
    return res


def ratios(runs: dict[str, Run]) -> dict[str, float]:
    out = {}

    def put(name: str, num: str, den: str) -> None:
        if num in runs and den in runs and runs[den].wall > 0 and runs[den].cpu > 0:
            out[name] = round(runs[num].wall / runs[den].wall, 2)
            out[name + "_cpu"] = round(runs[num].cpu / runs[den].cpu, 2)

    put("kamei_over_floor", "diffrisk_kamei", "floor")
    put("kamei_code_over_floor", "diffrisk_kamei_code", "floor")
    put("metrics_over_floor", "diffrisk_metrics", "floor")
    put("pydriller_lines_over_kamei", "pydriller_lines", "diffrisk_kamei")
    put("pydriller_lines_over_kamei_code", "pydriller_lines", "diffrisk_kamei_code")
    put("pydriller_complexity_over_metrics", "pydriller_complexity", "diffrisk_metrics")
    put("pydriller_metrics_over_metrics", "pydriller_metrics", "diffrisk_metrics")
    return out


LABELS = {
    "floor": "floor: git log --no-merges --numstat",
    "diffrisk_kamei": "diffrisk mine --no-code-metrics --no-code-lines (Kamei features)",
    "diffrisk_kamei_rerun": "  re-run, no new commits",
    "diffrisk_kamei_code": "diffrisk mine --no-code-metrics (Kamei + la_code)",
    "diffrisk_kamei_code_rerun": "  re-run, no new commits",
    "diffrisk_metrics": "diffrisk mine (code metrics: radon for Python, lizard for the rest)",
    "diffrisk_metrics_rerun": "  re-run, no new commits",
    "pydriller_lines": "PyDriller added/deleted lines",
    "pydriller_complexity": "PyDriller + complexity (lizard, after the change, every file)",
    "pydriller_metrics": "PyDriller + lizard before and after, changed methods (diffrisk's files)",
}


def render(res: dict[str, Any]) -> str:
    lines = [
        f"## {res['repository']} @ {res['rev'][:12]}: {res['commits']} non-merge commits, {res['merges']} merges",
        "",
        "| run | wall s | CPU s | peak RSS MiB | ms/commit (wall) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    notes = []
    for key, r in res["runs"].items():
        label = LABELS.get(key, key) + (" *(extrapolated)*" if r["extrapolated"] else "")
        per = 1000 * r["wall"] / max(1, res["commits"])
        lines.append(
            f"| {label} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['maxrss_mib']:.0f} | {per:.3f} |"
        )
        if r["note"]:
            notes.append(f"- {LABELS.get(key, key).strip()}: {r['note']}")
    lines.append("")
    names = {
        "kamei_over_floor": "diffrisk (Kamei) / floor",
        "kamei_code_over_floor": "diffrisk (Kamei + la_code) / floor",
        "metrics_over_floor": "diffrisk (code metrics) / floor",
        "pydriller_lines_over_kamei": "PyDriller lines / diffrisk (Kamei)",
        "pydriller_lines_over_kamei_code": "PyDriller lines / diffrisk (Kamei + la_code)",
        "pydriller_complexity_over_metrics": "PyDriller complexity / diffrisk (code metrics)",
        "pydriller_metrics_over_metrics": "PyDriller before+after+changed methods / diffrisk (code metrics)",
    }
    r = res["ratios"]
    lines += [f"- {names[k]}: **{r[k]}x** wall, {r[k + '_cpu']}x CPU" for k in names if k in r]
    lines += notes
    m = res["machine"]
    lines += [
        "",
        f"diffrisk {m['diffrisk']}, PyDriller {m['pydriller']}. "
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram_gib']} GiB RAM, {m['git']}, Python {m['python']}, "
        f"load average at start {', '.join(f'{x:.2f}' for x in m['load_average_at_start'])}.",
    ]
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--pydriller-worker":
        clone, sha, mode, every = sys.argv[2:6]
        pydriller_worker(clone, sha, mode, int(every))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("repo", type=Path, help="repository to mine (work tree or bare)")
    ap.add_argument("--rev", default="HEAD", help="revision whose history is mined (default HEAD)")
    ap.add_argument("--name", help="name to print for the repository (e.g. pytest-dev/pytest)")
    ap.add_argument("--skip-pydriller", action="store_true", help="do not run PyDriller")
    ap.add_argument("--pydriller-limit", type=int, metavar="N",
                    help="PyDriller does its per-commit work on N evenly spread commits; extrapolate")  # fmt: skip
    ap.add_argument("--pydriller-complexity-limit", type=int, metavar="N",
                    help="the same, for the complexity traversal only (default: --pydriller-limit)")  # fmt: skip
    ap.add_argument(
        "--skip-code-metrics",
        action="store_true",
        help="do not measure code metrics (diffrisk's, or PyDriller's lizard traversals)",
    )
    ap.add_argument(
        "--workers", type=int, help="diffrisk --workers for code metrics (default: all cores)"
    )
    ap.add_argument(
        "--repeat", type=int, default=2, help="floor runs; the fastest counts (default 2)"
    )
    ap.add_argument("--tmp", type=Path, help="where the temporary data dirs and clone go")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    a = ap.parse_args()
    res = bench(a)
    print(json.dumps(res, indent=2) if a.json else render(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
