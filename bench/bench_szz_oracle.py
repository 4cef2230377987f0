"""SZZ label quality against a developer-informed oracle (precision and recall of the links).

    python bench/bench_szz_oracle.py --oracle PATH/dev.csv --repos PATH/oracle-repos.json \\
        [--variants bench/szz_variants] [--only-dated] [--bootstrap 2000] [--seed 0] \\
        [--jobs 1] [--verbose] [--links-dir DIR] [--out results.json]

ORACLE is a CSV with the columns ``repo`` (owner/name), ``fix_sha``, ``bug_shas``
(space-separated) and ``issue_date`` (ISO, UTC, empty when unknown): the fixes and the
commits their developers named as having introduced the bug. REPOS is a JSON map
``{"owner/name": "/path/to/git/dir"}`` of local clones (bare or not, full history).

For every variant (a TOML configuration file with a ``[label]`` table; all ``*.toml`` in
``--variants``) and every repository, the repository's fixes are written to a temporary
``sha,issue_date`` CSV and this runs, in a child process, with a temporary data dir:

    diffrisk label --repo GITDIR --fixes FIXES.csv --links-out LINKS.csv --config VARIANT.toml

A fix's blamed set is the ``inducing_sha`` of its rows in LINKS.csv whose ``dropped`` is
empty. Scored as Rosa et al. (ICSE 2021) do: per fix, the blamed set against the oracle's;
precision and recall pooled over links (TP = sum of |tool & oracle|). Each figure has a 95%
percentile interval from a bootstrap over repositories (repositories resampled with
replacement, pooled figures recomputed; the same seeded resamples for every variant, so a
variant's difference from the first one, ``default`` when present, also gets a paired
interval). Figures are printed for all fixes and for the fixes whose issue date is known.

A variant whose configuration the installed diffrisk rejects (``diffrisk config`` fails) is
reported as skipped with the error's first line. ``--verbose`` prints, per variant, every
fix with a miss or an extra (and, for a miss, why the tool dropped that candidate if it
found it). ``--out`` saves everything as JSON (no local paths).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUBSETS = ("all", "dated")

# ----------------------------------------------------------------------------- oracle


@dataclass(frozen=True)
class OracleFix:
    repo: str
    fix: str
    bugs: frozenset[str]
    issue_date: str  # as in the oracle; "" when unknown


def read_oracle(path: Path) -> list[OracleFix]:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    need = {"repo", "fix_sha", "bug_shas", "issue_date"}
    if rows and not need <= rows[0].keys():
        sys.exit(f"{path}: needs the columns {sorted(need)}, has {sorted(rows[0])}")
    fixes = [
        OracleFix(
            r["repo"].strip(),
            r["fix_sha"].strip().lower(),
            frozenset(s.lower() for s in r["bug_shas"].split()),
            (r.get("issue_date") or "").strip(),
        )
        for r in rows
    ]
    seen = Counter((f.repo, f.fix) for f in fixes)
    dup = [k for k, n in seen.items() if n > 1]
    if dup:
        sys.exit(f"{path}: fixes listed twice: {dup[:5]}")
    return fixes


def iso_utc(date: str) -> str:
    """The oracle's UTC date as ISO 8601 with an explicit offset ("" stays "")."""
    if not date:
        return ""
    if date.endswith("Z"):
        return date[:-1] + "+00:00"
    tail = date[10:]  # after YYYY-MM-DD
    if "+" in tail or "-" in tail:
        return date
    if "T" not in date and " " not in date:
        return date  # a bare date: left as it is
    return date + "+00:00"


# ----------------------------------------------------------------------------- running


@dataclass
class Run:
    """One ``diffrisk label`` run: a variant on a repository."""

    variant: str
    repo: str
    returncode: int | None = None
    wall_s: float = 0.0
    cpu_s: float = 0.0
    error: str = ""
    rows: list[dict[str, str]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)


def diffrisk_cmd(arg: str | None) -> list[str]:
    if arg:
        cmd = arg.split()
        # the runs go in temporary directories: a relative program or script path is made absolute
        return [str(Path(c).absolute()) if "/" in c and Path(c).exists() else c for c in cmd]
    exe = Path(sys.executable).with_name("diffrisk")
    return [str(exe)] if exe.exists() else ["diffrisk"]


def first_error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith("error:"):
            return ln
    return lines[-1] if lines else ""


def run_child(cmd: list[str], cwd: Path, log: Path) -> tuple[int, float, float, str]:
    """Run cmd with stdout/stderr to log; (returncode, wall s, CPU s of it and its children, stderr)."""
    t0 = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        # wait4: this child's own rusage (its waited-for descendants included), which
        # stays right when several runs go in parallel threads
        _, status, ru = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    text = log.read_text(encoding="utf-8", errors="replace")
    return proc.returncode, wall, ru.ru_utime + ru.ru_stime, text


def run_label(
    cmd0: list[str],
    variant: str,
    config: Path,
    repo: str,
    gitdir: str,
    fixes: list[OracleFix],
    tmp: Path,
    links_dir: Path | None,
) -> Run:
    run = Run(variant, repo)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=tmp))
    try:
        fixes_csv = work / "fixes.csv"
        with fixes_csv.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["sha", "issue_date"])
            for f in fixes:
                w.writerow([f.fix, iso_utc(f.issue_date)])
        links = work / "links.csv"
        cmd = [
            *cmd0,
            "label",
            "--repo",
            gitdir,
            "--data-dir",
            str(work / "data"),
            "--fixes",
            str(fixes_csv),
            "--links-out",
            str(links),
            "--config",
            str(config),
            "--quiet",
        ]
        rc, run.wall_s, run.cpu_s, text = run_child(cmd, work, work / "log.txt")
        run.returncode = rc
        if rc != 0:
            err = first_error_line(text) or f"exit {rc}"
            # no local paths in the report
            for path, shown in ((str(work), "TMP"), (gitdir, "GITDIR"), (str(config), config.name)):
                err = err.replace(path, shown)
            run.error = err
            return run
        if not links.exists():
            run.error = "no links file written"
            return run
        with links.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            run.columns = list(reader.fieldnames or [])
            run.rows = list(reader)
        missing = {"fix_sha", "inducing_sha", "dropped"} - set(run.columns)
        if missing:
            run.error = f"links file lacks the columns {sorted(missing)}"
        if links_dir is not None:
            dest = links_dir / variant
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(links, dest / (repo.replace("/", "+") + ".csv"))
        return run
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check_variant(cmd0: list[str], config: Path, gitdir: str) -> str:
    """ "" when the installed diffrisk accepts the configuration, else its first error line."""
    proc = subprocess.run(
        [*cmd0, "config", "--repo", gitdir, "--config", str(config)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode == 0:
        return ""
    return (
        first_error_line(proc.stderr) or first_error_line(proc.stdout) or f"exit {proc.returncode}"
    )


def label_help(cmd0: list[str]) -> str:
    proc = subprocess.run([*cmd0, "label", "--help"], capture_output=True, text=True)
    return proc.stdout + proc.stderr


# ----------------------------------------------------------------------------- scoring


@dataclass
class FixResult:
    repo: str
    fix: str
    dated: bool
    oracle: frozenset[str]
    tool: frozenset[str]
    dropped: dict[str, list[str]]  # candidate sha -> reasons the tool dropped it for
    found: bool  # the fix has at least one row in LINKS.csv

    @property
    def tp(self) -> int:
        return len(self.oracle & self.tool)

    def as_json(self) -> dict[str, object]:
        return {
            "repo": self.repo,
            "fix": self.fix,
            "dated": self.dated,
            "oracle": sorted(self.oracle),
            "tool": sorted(self.tool),
            "tp": self.tp,
            "misses": sorted(self.oracle - self.tool),
            "extras": sorted(self.tool - self.oracle),
            "miss_reasons": {
                s: sorted(set(self.dropped.get(s, []))) or ["not blamed"]
                for s in sorted(self.oracle - self.tool)
            },
            "dropped": {k: sorted(set(v)) for k, v in sorted(self.dropped.items())},
            "in_links": self.found,
        }


def fix_results(fixes: list[OracleFix], runs: dict[str, Run]) -> list[FixResult]:
    by_fix: dict[tuple[str, str], tuple[set[str], dict[str, list[str]], bool]] = {}
    for f in fixes:
        by_fix[(f.repo, f.fix)] = (set(), defaultdict(list), False)
    for repo, run in runs.items():
        for row in run.rows:
            fix = (row.get("fix_sha") or "").strip().lower()
            sha = (row.get("inducing_sha") or "").strip().lower()
            key = _match(by_fix, repo, fix)
            if key is None or not sha:
                continue
            kept, dropped, _ = by_fix[key]
            reason = (row.get("dropped") or "").strip()
            if reason:
                dropped[sha].append(reason)
            else:
                kept.add(sha)
            by_fix[key] = (kept, dropped, True)
    out = []
    for f in fixes:
        kept, dropped, found = by_fix[(f.repo, f.fix)]
        out.append(
            FixResult(
                f.repo, f.fix, bool(f.issue_date), f.bugs, frozenset(kept), dict(dropped), found
            )
        )
    return out


def _match(by_fix: dict, repo: str, fix: str) -> tuple[str, str] | None:
    if (repo, fix) in by_fix:
        return (repo, fix)
    if len(fix) >= 7:  # an abbreviated sha in the links file
        hits = [k for k in by_fix if k[0] == repo and k[1].startswith(fix)]
        if len(hits) == 1:
            return hits[0]
    return None


def _div(a: float, b: float) -> float:
    return a / b if b else math.nan


def pooled(tp: float, tool: float, oracle: float) -> tuple[float, float, float]:
    p, r = _div(tp, tool), _div(tp, oracle)
    f1 = 2 * p * r / (p + r) if not (math.isnan(p) or math.isnan(r)) and p + r else math.nan
    if not math.isnan(p) and not math.isnan(r) and p + r == 0:
        f1 = 0.0
    return p, r, f1


def per_repo(results: list[FixResult]) -> dict[str, tuple[int, int, int, int]]:
    """repo -> (fixes, TP, tool links, oracle links)."""
    agg: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for r in results:
        a = agg[r.repo]
        a[0] += 1
        a[1] += r.tp
        a[2] += len(r.tool)
        a[3] += len(r.oracle)
    return {k: (v[0], v[1], v[2], v[3]) for k, v in agg.items()}


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(x for x in xs if not math.isnan(x))
    if not xs:
        return math.nan
    k = (len(xs) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def resamples(repos: list[str], n: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    return [[rng.choice(repos) for _ in repos] for _ in range(n)]


def summarise(results: list[FixResult], samples: list[list[str]]) -> dict[str, object]:
    agg = per_repo(results)
    fixes = sum(v[0] for v in agg.values())
    tp = sum(v[1] for v in agg.values())
    tool = sum(v[2] for v in agg.values())
    oracle = sum(v[3] for v in agg.values())
    p, r, f1 = pooled(tp, tool, oracle)
    boots: dict[str, list[float]] = {"precision": [], "recall": [], "f1": []}
    for s in samples:
        t = [agg[x] for x in s if x in agg]
        bp, br, bf = pooled(sum(v[1] for v in t), sum(v[2] for v in t), sum(v[3] for v in t))
        boots["precision"].append(bp)
        boots["recall"].append(br)
        boots["f1"].append(bf)
    out: dict[str, object] = {
        "fixes": fixes,
        "repos": len(agg),
        "oracle_links": oracle,
        "tool_links": tool,
        "tp": tp,
        "misses": oracle - tp,
        "extras": tool - tp,
        "fixes_blaming_nothing": sum(1 for x in results if not x.tool),
        "fixes_exact": sum(1 for x in results if x.tool == x.oracle),
    }
    for name, val in (("precision", p), ("recall", r), ("f1", f1)):
        out[name] = _num(val)
        out[name + "_ci"] = [
            _num(percentile(boots[name], 0.025)),
            _num(percentile(boots[name], 0.975)),
        ]
    out["_boot"] = boots  # removed before saving; for paired differences
    return out


def paired_delta(a: dict, b: dict) -> dict[str, object]:
    """b minus a, with the interval over the shared resamples."""
    out: dict[str, object] = {}
    for name in ("precision", "recall", "f1"):
        xa, xb = a["_boot"][name], b["_boot"][name]
        d = [y - x for x, y in zip(xa, xb, strict=True) if not (math.isnan(x) or math.isnan(y))]
        va, vb = a[name], b[name]
        out[name] = _num(vb - va) if va is not None and vb is not None else None
        out[name + "_ci"] = [_num(percentile(d, 0.025)), _num(percentile(d, 0.975))]
    return out


def _num(x: float) -> float | None:
    return None if x is None or math.isnan(x) else round(x, 4)


# ----------------------------------------------------------------------------- printing


def fmt(x: float | None, ci: list | None = None) -> str:
    if x is None:
        return "n/a"
    s = f"{x:.2f}"
    if ci and ci[0] is not None:
        s += f" [{ci[0]:.2f}, {ci[1]:.2f}]"
    return s


def print_tables(report: dict, subsets: tuple[str, ...], baseline: str | None) -> None:
    for subset in subsets:
        title = "all fixes" if subset == "all" else "fixes whose issue date is known"
        print(f"\n### {title}\n")
        print(
            "| variant | fixes | oracle links | tool links | TP | precision | recall | F1 "
            "| failed repos | time (s) |"
        )
        print("| --- | ---: | ---: | ---: | ---: | --- | --- | --- | ---: | ---: |")
        for name, v in report["variants"].items():
            if v.get("skipped"):
                print(f"| {name} | skipped: {v['skipped']} | | | | | | | | |")
                continue
            s = v["summary"][subset]
            print(
                f"| {name} | {s['fixes']} | {s['oracle_links']} | {s['tool_links']} | {s['tp']} "
                f"| {fmt(s['precision'], s['precision_ci'])} | {fmt(s['recall'], s['recall_ci'])} "
                f"| {fmt(s['f1'], s['f1_ci'])} | {len(v['failed'])} | {v['wall_s']:.0f} |"
            )
        if baseline:
            rows = [
                (n, v["delta"][subset])
                for n, v in report["variants"].items()
                if not v.get("skipped") and v.get("delta")
            ]
            if rows:
                print(f"\nPaired difference from `{baseline}` (same resamples):\n")
                print("| variant | Δ precision | Δ recall | Δ F1 |")
                print("| --- | --- | --- | --- |")
                for n, d in rows:
                    print(
                        f"| {n} | {fmt(d['precision'], d['precision_ci'])} "
                        f"| {fmt(d['recall'], d['recall_ci'])} | {fmt(d['f1'], d['f1_ci'])} |"
                    )


def short(shas) -> str:
    return "{" + ",".join(s[:8] for s in sorted(shas)) + "}"


def print_verbose(name: str, results: list[FixResult]) -> None:
    bad = [r for r in results if r.tool != r.oracle]
    print(f"\n#### {name}: {len(bad)} fixes with a miss or an extra\n")
    for r in sorted(bad, key=lambda x: (x.repo, x.fix)):
        misses = r.oracle - r.tool
        why = []
        for s in sorted(misses):
            reasons = sorted(set(r.dropped.get(s, []))) or ["not blamed"]
            why.append(f"{s[:8]}:{'/'.join(reasons)}")
        extra = r.tool - r.oracle
        others = Counter(
            reason
            for sha, reasons in r.dropped.items()
            if sha not in r.oracle
            for reason in set(reasons)
        )
        print(
            f"  {r.fix[:10]} {r.repo:<40} oracle={short(r.oracle)} tool={short(r.tool)}"
            + (f" miss[{' '.join(why)}]" if misses else "")
            + (f" extra={short(extra)}" if extra else "")
            + (
                " also-dropped[" + " ".join(f"{k}:{n}" for k, n in sorted(others.items())) + "]"
                if others
                else ""
            )
            + ("" if r.found else " (fix not in links)")
        )


# ----------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--oracle", type=Path, required=True, help="the oracle CSV (dev.csv)")
    ap.add_argument("--repos", type=Path, required=True, help='JSON {"owner/name": gitdir}')
    ap.add_argument("--variants", type=Path, default=HERE / "szz_variants")
    ap.add_argument("--variant", action="append", default=[], help="only these (file stems)")
    ap.add_argument("--only-dated", action="store_true", help="only fixes with an issue date")
    ap.add_argument("--only-repo", action="append", default=[], help="only these repositories")
    ap.add_argument("--bootstrap", type=int, default=2000, help="resamples (0: no intervals)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1, help="diffrisk runs at the same time")
    ap.add_argument(
        "--diffrisk",
        default=None,
        help="command to run (default: the venv's diffrisk); e.g. 'python -m diffrisk' with "
        "PYTHONPATH set to a `git archive` snapshot of src/ to pin the code under test",
    )
    ap.add_argument("--links-dir", type=Path, default=None, help="keep every LINKS.csv here")
    ap.add_argument("--verbose", "-v", action="store_true", help="print misses and extras")
    ap.add_argument("--out", type=Path, default=None, help="save the results as JSON")
    args = ap.parse_args()

    fixes = read_oracle(args.oracle)
    repo_dirs: dict[str, str] = json.loads(args.repos.read_text(encoding="utf-8"))
    if args.only_dated:
        fixes = [f for f in fixes if f.issue_date]
    if args.only_repo:
        fixes = [f for f in fixes if f.repo in set(args.only_repo)]
    absent = sorted({f.repo for f in fixes} - repo_dirs.keys())
    if absent:
        sys.exit(f"{args.repos}: no directory for {len(absent)} repositories: {absent[:5]}")
    by_repo: dict[str, list[OracleFix]] = defaultdict(list)
    for f in fixes:
        by_repo[f.repo].append(f)
    repos = sorted(by_repo)

    variants = sorted(args.variants.glob("*.toml"))
    if args.variant:
        variants = [v for v in variants if v.stem in set(args.variant)]
    if not variants:
        sys.exit(f"no variants (*.toml) in {args.variants}")
    # default first: the baseline of the paired differences
    variants.sort(key=lambda p: (p.stem != "default", p.stem))

    cmd0 = diffrisk_cmd(args.diffrisk)
    helptext = label_help(cmd0)
    if "--fixes" not in helptext or "--links-out" not in helptext:
        sys.exit(f"{' '.join(cmd0)} label has no --fixes/--links-out: not installed yet?")
    version = subprocess.run([*cmd0, "--version"], capture_output=True, text=True).stdout.strip()
    git_version = subprocess.run(
        ["git", "--version"], capture_output=True, text=True
    ).stdout.strip()

    subsets = ("dated",) if args.only_dated else SUBSETS
    samples = resamples(repos, args.bootstrap, args.seed)
    # the same resamples restricted to dated repositories: resampling is over all repos,
    # repos without a dated fix contribute nothing (still one draw each)
    report: dict = {
        "oracle": args.oracle.name,
        "fixes": len(fixes),
        "repos": len(repos),
        "oracle_links": sum(len(f.bugs) for f in fixes),
        "dated_fixes": sum(1 for f in fixes if f.issue_date),
        "bootstrap": args.bootstrap,
        "seed": args.seed,
        "only_dated": args.only_dated,
        "diffrisk": version,
        "git": git_version,
        "cpus": os.cpu_count(),
        "jobs": args.jobs,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "variants": {},
    }
    print(
        f"{len(fixes)} fixes ({report['dated_fixes']} dated), {report['oracle_links']} links, "
        f"{len(repos)} repositories; {version}; {len(variants)} variants",
        file=sys.stderr,
    )

    tmp = Path(tempfile.mkdtemp(prefix="szz-oracle-"))
    lock = threading.Lock()
    baseline: str | None = None
    try:
        for vpath in variants:
            name = vpath.stem
            entry: dict = {"config": vpath.read_text(encoding="utf-8")}
            report["variants"][name] = entry
            err = check_variant(cmd0, vpath, repo_dirs[repos[0]]).replace(str(vpath), vpath.name)
            if err:
                entry["skipped"] = err
                print(f"[{name}] skipped: {err}", file=sys.stderr)
                continue
            done = [0]

            def one(repo: str, name: str = name, vpath: Path = vpath, done: list = done) -> Run:
                run = run_label(
                    cmd0, name, vpath, repo, repo_dirs[repo], by_repo[repo], tmp, args.links_dir
                )
                with lock:
                    done[0] += 1
                    status = f"error: {run.error}" if run.error else f"{len(run.rows)} rows"
                    print(
                        f"[{name}] {done[0]}/{len(repos)} {repo}: {status} "
                        f"({run.wall_s:.1f}s wall, {run.cpu_s:.1f}s cpu)",
                        file=sys.stderr,
                        flush=True,
                    )
                return run

            t0 = time.perf_counter()
            with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
                runs = dict(zip(repos, pool.map(one, repos), strict=True))
            entry["wall_s"] = round(time.perf_counter() - t0, 1)
            entry["cpu_s"] = round(sum(r.cpu_s for r in runs.values()), 1)
            entry["runs"] = {
                r: {
                    "wall_s": round(x.wall_s, 2),
                    "cpu_s": round(x.cpu_s, 2),
                    "returncode": x.returncode,
                    "rows": len(x.rows),
                    "error": x.error,
                }
                for r, x in runs.items()
            }
            entry["failed"] = {r: x.error for r, x in runs.items() if x.error}
            errors = set(entry["failed"].values())
            if len(entry["failed"]) == len(repos) and len(errors) == 1:
                # every repository failed the same way: most likely the variant itself
                entry["skipped"] = errors.pop()
                print(f"[{name}] skipped: {entry['skipped']}", file=sys.stderr)
                continue
            good = {r: x for r, x in runs.items() if not x.error}
            results = fix_results(fixes, good)
            reasons = Counter(
                (row.get("dropped") or "").strip() or "(kept)"
                for x in good.values()
                for row in x.rows
            )
            entry["link_rows_by_dropped"] = dict(reasons.most_common())
            entry["summary"] = {}
            for subset in subsets:
                sel = [r for r in results if subset == "all" or r.dated]
                entry["summary"][subset] = summarise(sel, samples)
            entry["fixes"] = [r.as_json() for r in results]
            if baseline is None:
                baseline = name
            else:
                base = report["variants"][baseline]["summary"]
                entry["delta"] = {s: paired_delta(base[s], entry["summary"][s]) for s in subsets}
            if entry["failed"]:
                print(
                    f"[{name}] WARNING: {len(entry['failed'])} repositories failed; their fixes "
                    "count as blaming nothing",
                    file=sys.stderr,
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    report["baseline"] = baseline
    print_tables(report, subsets, baseline)
    if args.verbose:
        for name, v in report["variants"].items():
            if not v.get("skipped"):
                print_verbose(name, [_from_json(x) for x in v["fixes"]])
    for v in report["variants"].values():
        for s in v.get("summary", {}).values():
            s.pop("_boot", None)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        print(f"\nsaved {args.out}", file=sys.stderr)


def _from_json(x: dict) -> FixResult:
    return FixResult(
        x["repo"],
        x["fix"],
        x["dated"],
        frozenset(x["oracle"]),
        frozenset(x["tool"]),
        {k: list(v) for k, v in x["dropped"].items()},
        x["in_links"],
    )


if __name__ == "__main__":
    main()
