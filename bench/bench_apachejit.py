"""How many of ApacheJIT's bug-fixing commits the JIRA fix source finds (not a test: real data).

    python bench/bench_apachejit.py --repo PATH --apachejit PATH [--project ZOOKEEPER] [--json]

ApacheJIT (Keshavarz & Nagappan, MSR 2022; github.com/hosseinkshvrz/apachejit) took the
fixed bugs of 15 Apache projects from their JIRA (``data/2010.csv`` ... ``data/2019.csv``:
JIRA's CSV export of every Bug resolved Fixed, by creation year), found each bug's fixing
commits on GitHub (``data/<PROJECT>.csv``: ``issue_key, commit_id``) and blamed them
(``data/commit_links_<PROJECT>.csv``: ``fix_hash, fix_date, bug_hash, bug_date, project``).

``--repo`` is a clone of the project (apache/zookeeper for ZOOKEEPER; a bare one is fine),
``--apachejit`` a clone of the ApacheJIT repository (its ``data/`` is read from the work
tree, or with ``git show HEAD:data/...`` when the clone is bare). The script

1. reads ApacheJIT's fixing commits of the project (``data/<PROJECT>.csv``; those that are
   not commits of ``--repo`` are counted and left out);
2. builds the issue map from the yearly exports with :func:`read_export`;
3. reads every message reachable from HEAD (:func:`read_messages`) and runs
   :func:`jira_evidence` (default settings: types Bug and Defect, any resolution, the
   export's projects);
4. prints the **fix recall** (share of ApacheJIT's fixing commits found, Wilson 95 %
   interval), the same for diffrisk's keyword rule alone (``FixRule.is_fix`` on the
   subject), and the Jaccard overlap of each set with ApacheJIT's, within the time span of
   ApacheJIT's fixing commits (outside it ApacheJIT has no data).

Link agreement (ApacheJIT's fix -> bug-inducing pairs against the label stage's SZZ links)
is :func:`link_agreement`; running the label stage is left to ``--links`` (a
``szz_links.parquet`` or CSV with ``fix_sha`` and ``inducing_sha``) until it is wired.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from diffrisk.features.fixes import FixRule
from diffrisk.git.repo import open_repo
from diffrisk.labelling.sources.jira import (
    JiraIssue,
    cited_keys,
    issue_keys,
    jira_evidence,
    read_export,
)
from diffrisk.labelling.sources.words import read_messages

_REVERT = re.compile(r"^\s*revert\b", re.I)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of the proportion k/n (95 % by default)."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


class ApacheJIT:
    """Files of ApacheJIT's ``data/`` directory, from a work tree or a bare clone."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bare = not (root / "data").is_dir()
        self._tmp = tempfile.TemporaryDirectory(prefix="apachejit-")

    def names(self) -> list[str]:
        if not self.bare:
            return sorted(p.name for p in (self.root / "data").iterdir())
        out = subprocess.run(
            ["git", "--git-dir", str(self.root), "ls-tree", "--name-only", "HEAD", "data/"],
            capture_output=True,
            check=True,
            text=True,
        ).stdout
        return sorted(line.rsplit("/", 1)[-1] for line in out.splitlines())

    def path(self, name: str) -> Path:
        if not self.bare:
            return self.root / "data" / name
        dest = Path(self._tmp.name) / name
        if not dest.exists():
            data = subprocess.run(
                ["git", "--git-dir", str(self.root), "show", f"HEAD:data/{name}"],
                capture_output=True,
                check=True,
            ).stdout
            dest.write_bytes(data)
        return dest

    def rows(self, name: str) -> list[dict[str, str]]:
        text = self.path(name).read_text(encoding="utf-8")
        return list(csv.DictReader(io.StringIO(text)))

    def fixing_commits(self, project: str) -> dict[str, list[str]]:
        """ApacheJIT's fixing commits of ``project``: sha -> the issue keys it fixes."""
        out: dict[str, list[str]] = {}
        for r in self.rows(f"{project}.csv"):
            out.setdefault(r["commit_id"].strip().lower(), []).append(r["issue_key"].strip())
        return out

    def links(self, project: str) -> set[tuple[str, str]]:
        """ApacheJIT's (fix, bug-inducing) pairs of ``project`` (before their filtering)."""
        return {
            (r["fix_hash"].strip().lower(), r["bug_hash"].strip().lower())
            for r in self.rows(f"commit_links_{project}.csv")
        }

    def issues(self) -> dict[str, JiraIssue]:
        """Every issue of the yearly JIRA exports (``data/20xx.csv``), read by read_export."""
        out: dict[str, JiraIssue] = {}
        for name in self.names():
            stem = name.removesuffix(".csv")
            if stem.isdigit() and len(stem) == 4:
                out.update(read_export(self.path(name)))
        return out


def link_agreement(
    ours: Iterable[tuple[str, str]], theirs: Iterable[tuple[str, str]], fixes: set[str]
) -> dict[str, float | int]:
    """Agreement of (fix, inducing) pairs on the fixes both sides know (``fixes``): pairs
    in common, each side's count, the share of theirs we have (recall), of ours they have
    (precision) and the Jaccard index. For the label stage's ``szz_links`` against
    ApacheJIT's ``commit_links``."""
    a = {(f.lower(), b.lower()) for f, b in ours if f.lower() in fixes}
    t = {(f.lower(), b.lower()) for f, b in theirs if f.lower() in fixes}
    both = len(a & t)
    return {
        "ours": len(a),
        "theirs": len(t),
        "both": both,
        "recall": both / len(t) if t else float("nan"),
        "precision": both / len(a) if a else float("nan"),
        "jaccard": jaccard({f"{x} {y}" for x, y in a}, {f"{x} {y}" for x, y in t}),
    }


def _read_links(path: Path) -> set[tuple[str, str]]:
    if path.suffix == ".parquet":
        import pandas as pd

        df = pd.read_parquet(path, columns=["fix_sha", "inducing_sha", "dropped"])
        df = df[df["dropped"].isna()]
        return set(zip(df["fix_sha"], df["inducing_sha"], strict=True))
    rows = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))
    return {(r["fix_sha"], r["inducing_sha"]) for r in rows}


def _commit_times(repo_path: Path, shas: Iterable[str]) -> dict[str, int]:
    repo = open_repo(repo_path, allow_shallow=True)
    out = repo.run(
        "log", "--no-walk=unsorted", "--stdin", "--format=%H %ct", input="\n".join(shas).encode()
    )
    times: dict[str, int] = {}
    for line in out.decode().splitlines():
        sha, _, t = line.partition(" ")
        times[sha] = int(t)
    return times


def measure(repo_path: Path, apachejit: Path, project: str) -> dict[str, object]:
    data = ApacheJIT(apachejit)
    t0 = time.perf_counter()
    truth_all = data.fixing_commits(project)
    issues = data.issues()
    t_export = time.perf_counter() - t0

    repo = open_repo(repo_path, allow_shallow=True)
    t0 = time.perf_counter()
    messages = read_messages(repo)
    t_messages = time.perf_counter() - t0
    truth = {s for s in truth_all if s in messages}

    t0 = time.perf_counter()
    evidence = jira_evidence(messages, issues)
    t_evidence = time.perf_counter() - t0
    found = {e.sha for e in evidence}

    rule = FixRule.from_config()
    keyword = {s for s, m in messages.items() if rule.is_fix(m.split("\n", 1)[0].strip())}

    times = _commit_times(repo_path, messages)
    span = (min(times[s] for s in truth), max(times[s] for s in truth)) if truth else (0, 0)
    window = {s for s, t in times.items() if span[0] <= t <= span[1]}

    def share(found_set: set[str]) -> dict[str, object]:
        k = len(found_set & truth)
        lo, hi = wilson(k, len(truth))
        inside = found_set & window
        return {
            "found": k,
            "of": len(truth),
            "recall": k / len(truth) if truth else float("nan"),
            "wilson95": [lo, hi],
            "in_window": len(inside),
            "also_theirs": len(inside & truth),
            "jaccard": jaccard(inside, truth),
        }

    missed = sorted(truth - found)
    missed_why: dict[str, int] = {}
    for s in missed:
        keys = {k.upper() for k in truth_all[s]}
        cited = set(issue_keys(messages[s], {k.rpartition("-")[0] for k in keys}))
        if _REVERT.match(messages[s]):
            why = "a revert"
        elif not keys & cited:
            why = "its issue's key is not in the message"
        elif not keys & set(issues):
            why = "its issue is not in the exports"
        elif not keys & set(cited_keys(messages[s], {project})):
            why = "its issue is cited only in the body's prose"
        else:
            why = "its issue is not a bug of the exports"
        missed_why[why] = missed_why.get(why, 0) + 1
    bug_keys = {k for k, i in issues.items() if i.type.lower() in ("bug", "defect")}
    return {
        "project": project,
        "commits": len(messages),
        "apachejit_fixing_commits": len(truth_all),
        "not_in_repo": len(truth_all) - len(truth),
        "export_issues": len(issues),
        "export_bugs_of_project": sum(1 for k in bug_keys if k.startswith(project + "-")),
        "window": [time.strftime("%Y-%m-%d", time.gmtime(t)) for t in span],
        "commits_in_window": len(window),
        "jira": share(found),
        "keyword": share(keyword),
        "jira_or_keyword": share(found | keyword),
        "missed": missed_why,
        "missed_sample": [(s[:10], messages[s].split("\n", 1)[0][:80]) for s in missed[:10]],
        "seconds": {
            "read_exports": round(t_export, 2),
            "read_messages": round(t_messages, 2),
            "jira_evidence": round(t_evidence, 2),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repo", required=True, type=Path, help="a clone of the Apache project")
    ap.add_argument("--apachejit", required=True, type=Path, help="a clone of ApacheJIT")
    ap.add_argument("--project", default="ZOOKEEPER", help="JIRA project key (ZOOKEEPER)")
    ap.add_argument("--links", type=Path, help="szz_links.parquet (or CSV) to compare links")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    project = args.project.upper()
    res = measure(args.repo, args.apachejit, project)
    if args.links:
        data = ApacheJIT(args.apachejit)
        res["links"] = link_agreement(
            _read_links(args.links), data.links(project), set(data.fixing_commits(project))
        )
    if args.json:
        json.dump(res, sys.stdout, indent=2)
        print()
        return
    print(
        f"{project}: {res['commits']} commits (HEAD); ApacheJIT: "
        f"{res['apachejit_fixing_commits']} fixing commits ({res['not_in_repo']} not in the "
        f"repository), {res['export_issues']} issues in the exports "
        f"({res['export_bugs_of_project']} bugs of {project}); window {res['window'][0]} .. "
        f"{res['window'][1]} ({res['commits_in_window']} commits)"
    )
    print()
    print(
        "| fix source | found | recall (Wilson 95 %) | found in window | of them ApacheJIT's | Jaccard |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name, key in (
        ("jira", "jira"),
        ("keyword rule (subject)", "keyword"),
        ("jira or keyword", "jira_or_keyword"),
    ):
        r = res[key]
        assert isinstance(r, dict)
        lo, hi = r["wilson95"]
        print(
            f"| {name} | {r['found']} / {r['of']} | {r['recall']:.1%} ({lo:.1%} - {hi:.1%}) | "
            f"{r['in_window']} | {r['also_theirs']} | {r['jaccard']:.3f} |"
        )
    print()
    print(f"missed by jira: {res['missed']}")
    for sha, subject in res["missed_sample"]:  # type: ignore[attr-defined]
        print(f"  {sha} {subject}")
    print(f"seconds: {res['seconds']}")
    if "links" in res:
        print(f"links: {res['links']}")


if __name__ == "__main__":
    main()
