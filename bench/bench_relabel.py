"""Relabel one repository with the old and the new label defaults, and say what changed.

    python bench/bench_relabel.py REPO_PATH [--name OWNER/NAME] [--work DIR]
                                  [--old-src DIR] [--sample N] [--seed S] [--json OUT]
    python bench/bench_relabel.py --tables [--work DIR]   # Markdown tables of every run
    python bench/bench_relabel.py --cross KINDS [--work DIR]   # trained on either labels

1. mines REPO_PATH once (``--no-code-metrics``, new defaults) into WORK/<owner+name>/mined
   (kept: a second run reuses it);
2. labels two copies of that dataset: ``before`` with a configuration emulating the label
   defaults before the label stage's rework (:data:`BEFORE_TOML`: every candidate labels,
   indentation is whitespace, imports are blamed, any keyword "fix" is a fix, only the
   keyword rule and GitHub as sources, the old ``exclude_paths`` of commit 6696460), and
   ``after`` with today's defaults;
3. attributes the flips: labels once more per rule, with that one rule switched back to
   its old value in ``after``'s configuration (WORK/<owner+name>/variant, one blame cache
   shared by all); a flipped change is *restored* by a rule when switching that rule
   back alone gives it its old label again. Flips no single rule restores are labelled
   again with two rules switched back (R-SZZ or the sources with each other rule: the
   pairs whose blame is already cached); what is left comes from more rules acting
   together, or from what no setting switches back (the blame code itself: numbers and
   string prefixes normalised in the reformat look-through, BLAME_VERSION 3);
   ``--old-src`` (the ``src`` directory of diffrisk as of 6696460, e.g.
   ``git archive 6696460 src | tar -x -C DIR``) labels a third copy with that old code
   itself, to measure what the emulation misses;
4. prints, per labelling: fixes, fixes by source, keyword fixes rejected, links named by
   developers (by kind: revert, ``Fixes:`` trailer, prose), buggy / clean / unlabelled
   (all changes and labelable ones: ``source_files > 0``), the label-quality report
   (:func:`diffrisk.labelling.quality.assess`: fix share, buggy share, fixes labelling
   nothing, agreement of SZZ with the developers' links with Wilson 95% intervals); then
   the flips (buggy -> clean, clean -> buggy, to or from unlabelled) with the rules that
   restore them, what ``after``'s links say about each (kept and named by developers,
   dropped as not the most recent or superseded, or no link left), and ``--sample`` N
   flips of each kind with the fix and the change subjects, to read by hand.

``--tables`` prints the Markdown tables of docs/labels.md from every WORK/*/report.json
and flips.csv (flips counted over the changes labelable after: ``source_files > 0``, the
models' training and test rows).

``--cross`` separates what the labels did to the cross-project models from what they did
to the measurement: leave-one-project-out over every run under WORK, each kind trained on
the other projects' ``before`` or ``after`` labels and scored against the held-out
project's ``before`` and ``after`` labels (on its changes labelable and labelled under
both; features as ``after`` computes them), with the paired bootstrap interval of the
ROC-AUC difference between the two trainings, and against the lines-added baseline
(:func:`diffrisk.training.evaluate.paired_auc_difference`, 1,000 resamples).

No GitHub token is used: the ``github`` source runs in neither labelling (the emulation
keeps it listed, as the old default did). Work directories stay under WORK (default
/work/bench-data/relabel); never commit them. ``--json`` writes everything printed.
"""

# ruff: noqa: E402  (thread limits must be set before numpy loads)
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from diffrisk.config import Config, LabelConfig, load_config
from diffrisk.data import paths
from diffrisk.data.store import load_dataset
from diffrisk.git.repo import open_repo
from diffrisk.labelling.label import LabelResult, label, load_labels, load_links
from diffrisk.labelling.quality import assess, wilson
from diffrisk.labelling.sources.words import named_commits, read_messages
from diffrisk.mining.mine import mine

#: ``exclude_paths`` as it was before the label stage's rework (``git show
#: 6696460:src/diffrisk/config.py``): without ``testsuite/``, ``typing_tests/``,
#: ``*_tests.py`` and the test-file names of Java, Kotlin, C++, Swift, PHP and Ruby.
OLD_EXCLUDE_PATHS = [
    "docs/*",
    "doc/*",
    "*/docs/*",
    "test/*",
    "tests/*",
    "testing/*",
    "*/tests/*",
    "*/test/*",
    "test_*.py",
    "*/test_*.py",
    "*_test.py",
    "*_test.go",
    "__tests__/*",
    "*/__tests__/*",
    "*.test.*",
    "*.spec.*",
    "e2e/*",
    "*/e2e/*",
    "spec/*",
    "*_spec.rb",
    "conftest.py",
    "*/conftest.py",
    "vendor/*",
    "*/vendor/*",
    "_vendor/*",
    "*/_vendor/*",
    "third_party/*",
    "*/third_party/*",
    "third-party/*",
    "*/third-party/*",
    "3rdparty/*",
    "*/3rdparty/*",
    "node_modules/*",
    "*/node_modules/*",
    "*.min.js",
    "*_pb2.py",
]

#: The old label defaults, as a user would write them in .diffrisk.toml.
BEFORE_TOML = (
    "[label]\n"
    'select = "all"\n'
    "python_indentation = false\n"
    "skip_incidental = false\n"
    "judge_fix_changes = false\n"
    'sources = ["message", "github"]\n'
    "exclude_paths = [\n" + "".join(f'    "{p}",\n' for p in OLD_EXCLUDE_PATHS) + "]\n"
)

#: The rules that changed, each switched back alone to attribute the flips.
RULES = (
    "select",
    "python_indentation",
    "skip_incidental",
    "judge_fix_changes",
    "sources",
    "exclude_paths",
)

STATES = ("buggy", "clean", "unlabelled")
_DATA_FILES = (paths.META_FILE, paths.CHANGES_FILE, paths.FILES_FILE, paths.BLOB_METRICS_FILE)


def _name(repo: Path, name: str | None) -> str:
    if name:
        return name
    part = repo.parent.name if repo.name in ("repo", ".git") else repo.name
    return part.replace("+", "/")


def _copy_dataset(src: Path, dst: Path) -> None:
    """The mined tables (not labels, links or blame cache) into ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in _DATA_FILES:
        if (src / f).exists():
            shutil.copy2(src / f, dst / f)


def _merge_caches(dst: Path, *srcs: Path) -> None:
    """One blame cache holding every settings' results of ``srcs`` (so the variants
    blame only what no labelling has blamed yet); a (settings, fix) pair already taken
    from one cache is not taken again from the next."""
    files = [s / paths.SZZ_CACHE_FILE for s in (dst, *srcs)]
    tables = [pq.read_table(f) for f in files if f.exists()]
    if not tables:
        return
    parts, seen = [], set()
    for t in tables:
        d = t.to_pandas()
        pairs = list(zip(d["settings"], d["fix_sha"], strict=True))
        part = d[[p not in seen for p in pairs]]
        parts.append(part)
        seen |= set(zip(part["settings"], part["fix_sha"], strict=True))
    df = pd.concat(parts, ignore_index=True)
    table = pa.Table.from_pandas(df, schema=tables[0].schema, preserve_index=False)
    pq.write_table(table, dst / paths.SZZ_CACHE_FILE)


def _run_label(repo: Path, data: Path, cfg: LabelConfig) -> tuple[LabelResult, float]:
    t0 = time.perf_counter()
    res = label(repo, data, cfg)
    return res, time.perf_counter() - t0


def _old_code_label(
    repo: Path, data: Path, old_src: Path, toml: Path
) -> tuple[dict[str, Any], float]:
    """``diffrisk label`` of the code in ``old_src`` (no token, no repository settings)."""
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "GITHUB_REPOSITORY")}
    env["PYTHONPATH"] = str(old_src)
    t0 = time.perf_counter()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "diffrisk",
            "label",
            "--repo",
            str(repo),
            "--data-dir",
            str(data),
            "--config",
            str(toml),
            "--json",
            "--quiet",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout), time.perf_counter() - t0


def _states(labels: pd.DataFrame) -> pd.DataFrame:
    return labels.set_index("sha")[["label_state", "source_files", "fixed_by"]]


def _counts(labels: pd.DataFrame) -> dict[str, Any]:
    src = labels["source_files"] > 0
    st = labels["label_state"]
    return {
        "changes": len(labels),
        **{s: int((st == s).sum()) for s in STATES},
        "labelable": int((src & st.isin(["buggy", "clean"])).sum()),
        "labelable_buggy": int((src & (st == "buggy")).sum()),
        "labelable_clean": int((src & (st == "clean")).sum()),
    }


def _quality(labels: pd.DataFrame, links: pd.DataFrame) -> dict[str, Any]:
    q = assess(labels, links)
    a = q.agreement
    return {
        "fixes": q.fixes,
        "fixes_by_source": q.fixes_by_source,
        "fix_share": q.fix_share,
        "fix_share_ci": wilson(round(q.fix_share * q.source_changes), q.source_changes)
        if q.fix_share is not None
        else None,
        "source_changes": q.source_changes,
        "buggy_share": q.buggy_share,
        "buggy_share_ci": wilson(q.buggy, q.labelled),
        "labelled": q.labelled,
        "fixes_labelling_nothing": q.fixes_labelling_nothing,
        "dropped": q.dropped,
        "agreement": None
        if a is None
        else {
            "fixes": a.fixes,
            "named_links": a.named_links,
            "blamed_links": a.blamed_links,
            "common": a.common,
            "precision": a.precision,
            "precision_ci": a.precision_ci,
            "recall": a.recall,
            "recall_ci": a.recall_ci,
        },
        "warnings": q.warnings,
    }


def _named_kinds(repo: Path, links: pd.DataFrame, subjects: dict[str, str]) -> dict[str, int]:
    """Kept links named by developers, by how they named them (revert, trailer, prose;
    ``pr`` for "bug from #123")."""
    named = links[(links["source"] == "developer") & links["dropped"].isna()]
    if named.empty:
        return {}
    msgs = read_messages(open_repo(repo), sorted(set(named["fix_sha"])))
    out: dict[str, int] = {}
    for fix, ind in zip(named["fix_sha"], named["inducing_sha"], strict=True):
        kinds = []
        for kind, ref in named_commits(msgs.get(fix, "")):
            if ref.startswith("#"):
                if subjects.get(ind, "").rstrip().endswith(f"({ref})"):
                    kinds.append(f"{kind} (#PR)")
            elif ind.startswith(ref.lower()):
                kinds.append(kind)
        k = kinds[0] if kinds else "?"
        out[k] = out.get(k, 0) + 1
    return dict(sorted(out.items()))


def _summary(res: LabelResult | dict[str, Any], seconds: float) -> dict[str, Any]:
    d = res.to_dict() if isinstance(res, LabelResult) else res
    keep = (
        "fixes",
        "fixes_blamed",
        "fixes_too_large",
        "fixes_blamed_nothing",
        "fixes_by_source",
        "fixes_rejected",
        "explicit_links",
        "links",
        "dropped",
        "newly_blamed",
        "vendored",
    )
    return {k: d[k] for k in keep if k in d} | {"seconds": round(seconds, 1)}


def _link_reason(sha: str, links: pd.DataFrame) -> str:
    """What ``after``'s links say about a change that is no longer buggy (or now is)."""
    mine = links[links["inducing_sha"] == sha]
    if mine.empty:
        return "no link"
    kept = mine[mine["dropped"].isna()]
    if len(kept):
        return "named by developers" if (kept["source"] != "szz").any() else "blamed"
    reasons = sorted(set(mine["dropped"]))
    return "dropped: " + "/".join(reasons)


def attribute(
    before: pd.DataFrame,
    after: pd.DataFrame,
    variants: dict[str, pd.DataFrame],
    after_links: pd.DataFrame,
    pairs: dict[str, pd.DataFrame] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One row per flipped change: its states, the rules whose switching back alone
    restores its old state (else the pairs of rules that do, from ``pairs``), and what
    ``after``'s links say; with the counts."""
    b, a = _states(before), _states(after)
    both = b.add_suffix("_before").join(a.add_suffix("_after"), how="inner")
    flipped = both[both["label_state_before"] != both["label_state_after"]].copy()
    restores = []
    for sha, old in zip(flipped.index, flipped["label_state_before"], strict=True):
        restores.append([r for r, v in variants.items() if v.at[sha, "label_state"] == old])
    flipped["restored_by"] = restores
    together = []
    for sha, old, rs in zip(flipped.index, flipped["label_state_before"], restores, strict=True):
        hit = [] if rs else [p for p, v in (pairs or {}).items() if v.at[sha, "label_state"] == old]
        together.append(hit)
    flipped["restored_by_pair"] = together
    flipped["links_after"] = [_link_reason(s, after_links) for s in flipped.index]
    flipped["labelable_after"] = flipped["source_files_after"] > 0
    flipped["labelable_before"] = flipped["source_files_before"] > 0
    flipped["flip"] = flipped["label_state_before"] + " -> " + flipped["label_state_after"]
    counts: dict[str, Any] = {}
    for flip, g in flipped.groupby("flip"):
        by_rule: dict[str, int] = {}
        for rs, ps in zip(g["restored_by"], g["restored_by_pair"], strict=True):
            if len(rs) == 1:
                key = rs[0]
            elif rs:
                key = "several: " + "+".join(rs)
            elif ps:
                key = "pair: " + " or ".join(ps)
            else:
                key = "none alone or in pairs"
            by_rule[key] = by_rule.get(key, 0) + 1
        counts[flip] = {
            "n": len(g),
            "labelable_both": int((g["labelable_before"] & g["labelable_after"]).sum()),
            "restored_by": dict(sorted(by_rule.items(), key=lambda kv: -kv[1])),
            "each_rule_restores": {
                r: int(g["restored_by"].map(lambda rs, r=r: r in rs).sum()) for r in variants
            },
            "links_after": g["links_after"].value_counts().to_dict(),
        }
    # every rule's own effect: changes whose state switching it back alone changes
    effect = {}
    for r, v in variants.items():
        j = a.add_suffix("_after").join(v.add_suffix("_rule"), how="inner")
        d = j[j["label_state_after"] != j["label_state_rule"]]
        effect[r] = (
            (d["label_state_rule"] + " -> " + d["label_state_after"]).value_counts().to_dict()
        )
    return flipped, {"flips": counts, "rule_effect": effect}


def _blamed_lines(links: pd.DataFrame, fix: str, sha: str) -> list[str]:
    rows = links[(links["fix_sha"] == fix) & (links["inducing_sha"] == sha)]
    out: list[str] = []
    for path, sample in zip(rows["path"], rows["sample"], strict=True):
        out += [
            f"{path}: {str(line).strip()[:90]}"
            for line in list(sample if sample is not None else [])[:2]
        ]
    return out[:3]


def _samples(
    flipped: pd.DataFrame,
    subjects: dict[str, str],
    n: int,
    seed: int,
    links: dict[str, pd.DataFrame],
) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    if n <= 0 or flipped.empty:
        return out
    flipped = flipped.assign(
        cause=[
            "+".join(rs) if rs else ("pair " + " or ".join(ps) if ps else "none")
            for rs, ps in zip(flipped["restored_by"], flipped["restored_by_pair"], strict=True)
        ]
    )
    for (flip, cause), g in flipped.groupby(["flip", "cause"]):
        pick = g.sample(n=min(n, len(g)), random_state=seed)
        rows = []
        for sha, r in pick.iterrows():
            fixes = (
                r["fixed_by_before"] if r["label_state_before"] == "buggy" else r["fixed_by_after"]
            )
            side = links["before"] if r["label_state_before"] == "buggy" else links["after"]
            rows.append(
                {
                    "sha": sha,
                    "subject": subjects.get(sha, ""),
                    "links_after": r["links_after"],
                    "fixes": [
                        {
                            "sha": f,
                            "subject": subjects.get(f, ""),
                            "lines": _blamed_lines(side, f, sha),
                        }
                        for f in list(fixes)[:3]
                    ],
                }
            )
        out[f"{flip} [{cause}]"] = rows
    return out


def _fmt_share(x: float | None, ci: Any) -> str:
    if x is None:
        return "n/a"
    return f"{x:.3f}" + (f" ({ci[0]:.3f}-{ci[1]:.3f})" if ci else "")


def _print(rep: dict[str, Any]) -> None:
    print(f"# {rep['name']}  ({rep['changes']} changes mined in {rep['mine_seconds']} s)")
    for key in ("before", "after", *(["old_code"] if "old_code" in rep else [])):
        r = rep[key]
        s, c, q = r["summary"], r["counts"], r["quality"]
        print(f"\n## {key}  ({s['seconds']} s, {s.get('newly_blamed', '?')} fixes blamed)")
        print(
            f"fixes {s['fixes']}  by source {s.get('fixes_by_source', {})}  keyword fixes rejected {s.get('fixes_rejected', 0)}"
        )
        print(
            f"  blamed {s['fixes_blamed']}, too large {s['fixes_too_large']}, blamed nothing {s['fixes_blamed_nothing']}; kept links {s['links']} (named by developers {s.get('explicit_links', 0)}); dropped {s.get('dropped', {})}"
        )
        if r.get("named_kinds"):
            print(f"  developers' links by kind: {r['named_kinds']}")
        print(
            f"labels: buggy {c['buggy']}, clean {c['clean']}, unlabelled {c['unlabelled']}; labelable {c['labelable']}: buggy {c['labelable_buggy']}, clean {c['labelable_clean']}"
        )
        print(
            f"quality: fix share {_fmt_share(q['fix_share'], q['fix_share_ci'])} of {q['source_changes']} source changes; "
            f"buggy share {_fmt_share(q['buggy_share'], q['buggy_share_ci'])} of {q['labelled']}; fixes labelling nothing {q['fixes_labelling_nothing']}"
        )
        a = q["agreement"]
        if a:
            p = _fmt_share(a["precision"], a["precision_ci"])
            rc = _fmt_share(a["recall"], a["recall_ci"])
            print(
                f"  SZZ vs developers' links: {a['fixes']} fixes, {a['named_links']} named / {a['blamed_links']} blamed links, {a['common']} in common: precision {p}, recall {rc}"
            )
        for w in q["warnings"]:
            print(f"  warning: {w}")
    print("\n## flips (before -> after); rules whose switching back alone restores the old label")
    for flip, f in rep["attribution"]["flips"].items():
        print(f"{flip}: {f['n']} ({f['labelable_both']} labelable both times)")
        print(f"   restored by: {f['restored_by']}")
        print(f"   each rule alone restores: {f['each_rule_restores']}")
        print(f"   after's links: {f['links_after']}")
    print("\n## each rule's own effect (its old value -> new, other rules new)")
    for r, e in rep["attribution"]["rule_effect"].items():
        print(f"{r}: {e}")
    if "old_code_vs_emulation" in rep:
        print(f"\n## the old code against the emulation: {rep['old_code_vs_emulation']}")
    for k, rows in rep.get("samples", {}).items():
        print(f"\n### {k}")
        for r in rows:
            print(f"  {r['sha'][:10]} {r['subject'][:80]!r}  ({r['links_after']})")
            for f in r["fixes"]:
                print(f"      fix {f['sha'][:10]} {f['subject'][:80]!r}")
                for line in f["lines"]:
                    print(f"          {line}")


_CAUSES = {
    "select": "R-SZZ",
    "skip_incidental": "incidental",
    "python_indentation": "indentation",
    "exclude_paths": "test paths",
    "sources": "developers",
    "judge_fix_changes": "judged fixes",
}


def _cause(restored: str, pair: str) -> str:
    rs = [r for r in str(restored).split("+") if r and r != "nan"]
    if len(rs) == 1:
        return _CAUSES[rs[0]]
    if rs:
        return "either of two"
    return "two together" if isinstance(pair, str) and pair else "none"


def _ci(x: float | None, ci: Any, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    return f"{x:.{digits}f} ({ci[0]:.{digits}f}-{ci[1]:.{digits}f})" if ci else f"{x:.{digits}f}"


#: The eight projects in the order of docs/model.md's tables.
EIGHT = (
    "psf/requests",
    "pallets/flask",
    "pallets/click",
    "encode/httpx",
    "pytest-dev/pytest",
    "aio-libs/aiohttp",
    "scrapy/scrapy",
    "sphinx-doc/sphinx",
)


def _order(name: str) -> tuple[int, str]:
    return (EIGHT.index(name) if name in EIGHT else len(EIGHT), name)


def _all_candidates(rep: dict[str, Any]) -> str:
    q = rep.get("variant_quality", {}).get("select")
    ag = (q or {}).get("agreement")
    if not ag:
        return "n/a"
    return (
        f"{_ci(ag['precision'], ag['precision_ci'], 2)} ({ag['common']} of {ag['blamed_links']})"
        f" / {_ci(ag['recall'], ag['recall_ci'], 2)}"
    )


def tables(work: Path) -> str:
    """The Markdown tables of docs/labels.md, from every run under ``work``."""
    runs = []
    for rep_path in sorted(p.parent / "report.json" for p in work.glob("*/flips.csv")):
        rep = json.loads(rep_path.read_text())
        flips = pd.read_csv(rep_path.parent / "flips.csv", dtype={"restored_by": str})
        runs.append((rep, flips))
    runs.sort(key=lambda r: _order(r[0]["name"]))
    out = [
        "| project | fixes before -> after (keyword fixes rejected; by developers) | labelable changes | labelable buggy before -> after | buggy share before -> after (95% CI) | fixes labelling nothing |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for rep, _ in runs:
        b, a = rep["before"], rep["after"]
        by = a["summary"].get("fixes_by_source", {})
        out.append(
            f"| {rep['name']} | {b['summary']['fixes']:,} -> {a['summary']['fixes']:,} "
            f"(-{a['summary']['fixes_rejected']:,}; +{by.get('developer', 0)} developer, "
            f"{by.get('message', 0):,} keyword) "
            f"| {b['counts']['labelable']:,} -> {a['counts']['labelable']:,} "
            f"| {b['counts']['labelable_buggy']:,} -> {a['counts']['labelable_buggy']:,} "
            f"| {_ci(b['quality']['buggy_share'], b['quality']['buggy_share_ci'])} -> "
            f"{_ci(a['quality']['buggy_share'], a['quality']['buggy_share_ci'])} "
            f"| {b['quality']['fixes_labelling_nothing']:,} -> {a['quality']['fixes_labelling_nothing']:,} |"
        )
    causes_bc = ["R-SZZ", "incidental", "indentation", "test paths", "judged fixes"]
    causes_bc += ["either of two", "two together", "none"]
    causes_cb = ["developers", "indentation", "incidental", "either of two", "two together"]
    causes_cb += ["none"]
    out += [
        "",
        "| project | buggy -> clean | "
        + " | ".join(causes_bc)
        + " | clean -> buggy | "
        + " | ".join(causes_cb)
        + " | flipped and no longer labelable |",
        "|" + " --- |" * (len(causes_bc) + len(causes_cb) + 4),
    ]
    for rep, f in runs:
        lab = f[(f["source_files_after"] > 0)]
        lab = lab[
            lab["label_state_before"].isin(["buggy", "clean"])
            & lab["label_state_after"].isin(["buggy", "clean"])
        ]
        cause = [
            _cause(r, p) for r, p in zip(lab["restored_by"], lab["restored_by_pair"], strict=True)
        ]
        lab = lab.assign(cause=cause)
        bc = lab[lab["flip"] == "buggy -> clean"]["cause"].value_counts()
        cb = lab[lab["flip"] == "clean -> buggy"]["cause"].value_counts()
        left = int(((f["source_files_before"] > 0) & (f["source_files_after"] == 0)).sum())
        out.append(
            f"| {rep['name']} | **{int(bc.sum())}** | "
            + " | ".join(str(int(bc.get(c, 0))) for c in causes_bc)
            + f" | **{int(cb.sum())}** | "
            + " | ".join(str(int(cb.get(c, 0))) for c in causes_cb)
            + f" | {left} |"
        )
    out += [
        "",
        '| project | links named by developers (revert / trailer / prose) | SZZ vs developers: fixes | precision (95% CI) | recall (95% CI) | with `select = "all"`: precision / recall | old code vs emulation: labels differing |',
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for rep, _ in runs:
        a = rep["after"]
        k = a.get("named_kinds", {})
        prose = sum(v for kk, v in k.items() if kk.startswith("prose"))
        ag = a["quality"]["agreement"] or {}
        old = rep.get("old_code_vs_emulation", {})
        out.append(
            f"| {rep['name']} | {a['summary'].get('explicit_links', 0)} ({k.get('revert', 0)} / "
            f"{k.get('trailer', 0)} / {prose}) | {ag.get('fixes', 0)} "
            f"| {_ci(ag.get('precision'), ag.get('precision_ci'), 2)} ({ag.get('common', 0)} of {ag.get('blamed_links', 0)}) "
            f"| {_ci(ag.get('recall'), ag.get('recall_ci'), 2)} ({ag.get('common', 0)} of {ag.get('named_links', 0)}) "
            f"| {_all_candidates(rep)} | {old.get('differ', 'n/a')} |"
        )
    return "\n".join(out)


def _frame(data: Path, name: str, cfg: LabelConfig, labels_dir: Path) -> pd.DataFrame:
    """``data``'s changes with ``labels_dir``'s labels, features computed with ``cfg``
    (and the vendored directories the label stage finds with it)."""
    from diffrisk.features.vendored import detect
    from diffrisk.features.vendored import exclude as exclude_vendored
    from diffrisk.training.evaluate import prepare_frame

    ds = load_dataset(data)
    assert ds is not None
    lcfg = exclude_vendored(cfg, detect(cfg, ds.changes, ds.files))
    frame = prepare_frame(ds.changes, load_labels(labels_dir), ds.files, lcfg)
    frame["project"] = name
    return frame


def _diff(d: dict[str, Any]) -> str:
    return f"{d['difference']:+.3f} ({d['ci_low']:+.3f} to {d['ci_high']:+.3f})"


def cross(work: Path, kinds: list[str]) -> str:
    """Leave-one-project-out ROC-AUC of each kind trained on the ``before`` or the
    ``after`` labels, scored against either labels of the held-out project."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from diffrisk.model.estimators import fit_estimator
    from diffrisk.training.evaluate import eligible_mask, paired_auc_difference

    after_cfg = Config().label
    frames: dict[str, dict[str, pd.DataFrame]] = {}
    reps = [(json.loads(p.read_text())["name"], p.parent) for p in work.glob("*/report.json")]
    for name, root in sorted(reps, key=lambda r: _order(r[0])):
        frames[name] = {
            side: _frame(root / "after", name, after_cfg, root / side)
            for side in ("before", "after")
        }

    def rows(fr: pd.DataFrame) -> pd.DataFrame:
        return fr[eligible_mask(fr)]

    out = [
        "| held out | kind | test changes (buggy before / after) | trained on before: AUC vs before / after labels | trained on after: AUC vs before / after labels | after - before training, vs after labels (95% CI) | trained on after, vs `la` (95% CI) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    means: dict[tuple[str, str, str], list[float]] = {}
    for name in frames:
        test_b, test_a = rows(frames[name]["before"]), rows(frames[name]["after"])
        common = sorted(set(test_b["sha"]) & set(test_a["sha"]))
        tb = test_b.set_index("sha").loc[common]
        ta = test_a.set_index("sha").loc[common]
        y = {
            "before": tb["label"].astype(int).to_numpy(),
            "after": ta["label"].astype(int).to_numpy(),
        }
        la_after = None
        for kind in sorted(kinds, key=lambda k: k != "la"):
            probs = {}
            for side in ("before", "after"):
                train = pd.concat(
                    [rows(f[side]) for n, f in frames.items() if n != name]
                ).sort_values("author_time", kind="stable")
                # the bundled recipe (bench/train_bundled.py): no PFIX across projects
                est = fit_estimator(
                    kind,
                    train,
                    train["label"].astype(int).to_numpy(),
                    train["n_fixes"].to_numpy(),
                    pfix=False,
                )
                probs[side] = est.predict_proba(ta.reset_index())[:, 1]
            auc = {
                (tr, te): roc_auc_score(y[te], probs[tr])
                for tr in ("before", "after")
                for te in ("before", "after")
            }
            for k, v in auc.items():
                means.setdefault((kind, *k), []).append(v)
            ya = y["after"]
            zeros = np.zeros(len(ya), dtype=int)
            d = paired_auc_difference(ya, probs["after"], probs["before"], zeros)
            vs_la = (
                paired_auc_difference(ya, probs["after"], la_after, zeros)
                if kind != "la" and la_after is not None
                else None
            )
            if kind == "la":
                la_after = probs["after"]
            out.append(
                f"| {name} | {kind} | {len(common):,} ({int(y['before'].sum())} / {int(ya.sum())}) "
                f"| {auc[('before', 'before')]:.3f} / {auc[('before', 'after')]:.3f} "
                f"| {auc[('after', 'before')]:.3f} / {auc[('after', 'after')]:.3f} "
                f"| {_diff(d)} | {_diff(vs_la) if vs_la else ''} |"
            )
    for kind in kinds:
        m = {k[1:]: float(np.mean(v)) for k, v in means.items() if k[0] == kind}
        out.append(
            f"| **mean** | {kind} | "
            f"| {m[('before', 'before')]:.3f} / {m[('before', 'after')]:.3f} "
            f"| {m[('after', 'before')]:.3f} / {m[('after', 'after')]:.3f} "
            f"| {m[('after', 'after')] - m[('before', 'after')]:+.3f} | |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("repo", type=Path, nargs="?")
    ap.add_argument("--tables", action="store_true", help="print the Markdown tables of WORK")
    ap.add_argument(
        "--cross",
        default=None,
        metavar="KINDS",
        help="leave-one-project-out with either labels for these kinds (e.g. logistic,poisson,la)",
    )
    ap.add_argument(
        "--name", default=None, help="OWNER/NAME (default: from the path, owner+name/repo)"
    )
    ap.add_argument("--work", type=Path, default=Path("/work/bench-data/relabel"))
    ap.add_argument(
        "--old-src",
        type=Path,
        default=None,
        help="src/ of an older diffrisk to label a third copy with",
    )
    ap.add_argument("--sample", type=int, default=3, help="flips to print per kind and cause")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--json", type=Path, default=None, help="default: WORK/<owner+name>/report.json"
    )
    args = ap.parse_args(argv)
    if args.tables:
        print(tables(args.work))
        return 0
    if args.cross:
        print(cross(args.work, args.cross.split(",")))
        return 0
    if args.repo is None:
        ap.error("REPO_PATH is required (or --tables)")
    name = _name(args.repo, args.name)
    root = args.work / name.replace("/", "+")
    mined = root / "mined"
    rep: dict[str, Any] = {"name": name, "repo": str(args.repo)}

    after_cfg = Config().label
    root.mkdir(parents=True, exist_ok=True)
    toml = root / "before.toml"
    toml.write_text(BEFORE_TOML)
    before_cfg = load_config(None, toml).label
    assert before_cfg.exclude_paths == OLD_EXCLUDE_PATHS and before_cfg.select == "all"

    t0 = time.perf_counter()
    if not (mined / paths.CHANGES_FILE).exists():
        mine(
            args.repo,
            mined,
            rev="HEAD",
            config=Config().mine.model_copy(update={"code_metrics": False}),
            fixes=Config().fixes,
            progress=None,
            source_extensions=after_cfg.source_extensions,
            exclude_paths=after_cfg.exclude_paths,
        )
    rep["mine_seconds"] = round(time.perf_counter() - t0, 1)
    ds = load_dataset(mined)
    assert ds is not None
    subjects = dict(zip(ds.changes["sha"], ds.changes["subject"], strict=True))
    rep["changes"] = len(ds.changes)
    rep["head"] = ds.meta.get("head")

    frames: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}
    for key, cfg in (("before", before_cfg), ("after", after_cfg)):
        d = root / key
        _copy_dataset(mined, d)
        res, sec = _run_label(args.repo, d, cfg)
        labels, links = load_labels(d), load_links(d)
        frames[key] = (labels, links)
        rep[key] = {
            "summary": _summary(res, sec),
            "counts": _counts(labels),
            "quality": _quality(labels, links),
            "named_kinds": _named_kinds(args.repo, links, subjects),
        }
        print(f"{name}: {key} labelled in {sec:.0f} s", file=sys.stderr, flush=True)

    # one rule switched back at a time (one data directory, one growing blame cache)
    var = root / "variant"
    _copy_dataset(mined, var)
    _merge_caches(var, root / "before", root / "after")
    variants: dict[str, pd.DataFrame] = {}
    rep["variant_seconds"] = {}
    for rule in RULES:
        cfg = after_cfg.model_copy(update={rule: getattr(before_cfg, rule)})
        res, sec = _run_label(args.repo, var, cfg)
        variants[rule] = _states(load_labels(var))
        rep.setdefault("variant_quality", {})[rule] = _quality(load_labels(var), load_links(var))
        rep["variant_seconds"][rule] = round(sec, 1)
        print(f"{name}: {rule} switched back, labelled in {sec:.0f} s", file=sys.stderr, flush=True)

    # flips no single rule restores: two rules switched back together (only pairs whose
    # blame settings are already cached: select or sources with any other rule)
    pairs: dict[str, pd.DataFrame] = {}
    for first in ("select", "sources"):
        for second in RULES:
            if second == first or (first, second) == ("sources", "select"):
                continue
            update = {r: getattr(before_cfg, r) for r in (first, second)}
            res, sec = _run_label(args.repo, var, after_cfg.model_copy(update=update))
            pairs[f"{first}+{second}"] = _states(load_labels(var))
            rep["variant_seconds"][f"{first}+{second}"] = round(sec, 1)
    flipped, rep["attribution"] = attribute(
        frames["before"][0], frames["after"][0], variants, frames["after"][1], pairs
    )
    flips_csv = flipped.assign(
        restored_by=flipped["restored_by"].map("+".join),
        restored_by_pair=flipped["restored_by_pair"].map(" or ".join),
        fixed_by_before=flipped["fixed_by_before"].map(lambda f: " ".join(f)),
        fixed_by_after=flipped["fixed_by_after"].map(lambda f: " ".join(f)),
        subject=[subjects.get(s, "") for s in flipped.index],
    )
    flips_csv.to_csv(root / "flips.csv", index_label="sha")
    rep["samples"] = _samples(
        flipped, subjects, args.sample, args.seed, {k: v[1] for k, v in frames.items()}
    )

    if args.old_src:
        d = root / "old_code"
        _copy_dataset(mined, d)
        empty = root / "empty.toml"
        empty.write_text("")
        out, sec = _old_code_label(args.repo, d, args.old_src, empty)
        labels, links = load_labels(d), load_links(d)
        rep["old_code"] = {
            "summary": _summary(out, sec),
            "counts": _counts(labels),
            "quality": _quality(labels, links),
        }
        b, o = _states(frames["before"][0]), _states(labels)
        j = b.add_suffix("_emulated").join(o.add_suffix("_old"), how="inner")
        d2 = j[j["label_state_emulated"] != j["label_state_old"]]
        rep["old_code_vs_emulation"] = {
            "differ": len(d2),
            "flips": (d2["label_state_old"] + " -> " + d2["label_state_emulated"])
            .value_counts()
            .to_dict(),
            "source_files_differ": int((j["source_files_emulated"] != j["source_files_old"]).sum()),
            "examples": [
                {
                    "sha": s,
                    "subject": subjects.get(s, ""),
                    "old": r["label_state_old"],
                    "emulated": r["label_state_emulated"],
                }
                for s, r in d2.head(10).iterrows()
            ],
        }

    _print(rep)
    out = args.json or root / "report.json"
    out.write_text(
        json.dumps(rep, indent=1, default=lambda o: list(o) if hasattr(o, "__iter__") else str(o))
    )
    print(f"\nwrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
