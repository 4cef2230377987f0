"""How far the labels can be trusted, measured on the repository itself.

:func:`assess` reads ``labels.parquet`` and ``szz_links.parquet`` and reports

* fixes by source, and the share of source-changing commits that are fixes and that are
  labelled buggy, with a warning when either is implausibly high (a project titling
  features "Fix #N: Add ..." gets half its changes labelled buggy);
* fixes whose blame names nothing (they only add lines, or only change what SZZ leaves
  out), which label nothing;
* **agreement of SZZ with the developers**: for every fix whose developers named the
  commit that introduced the bug (:mod:`diffrisk.labelling.sources.words`, a fixes file),
  the commits SZZ would have labelled against the named ones. Precision and recall over
  those links are an in-repository estimate of SZZ's own (the developer-informed oracle
  of Rosa et al., ICSE 2021, measures SZZ the same way), with a Wilson 95% interval.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

#: A fix share above this (of source-changing commits) is implausible for bug fixes.
FIX_SHARE_WARN = 0.40
#: A buggy share above this (of labelled source-changing commits) is implausible.
BUGGY_SHARE_WARN = 0.50
#: Fewer named fixes than this make the agreement figure too noisy to warn on.
AGREEMENT_MIN_FIXES = 10
#: SZZ precision against the developers' links below this is worth a warning.
AGREEMENT_WARN = 0.5


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """Wilson score interval of a proportion k/n (None when n is 0)."""
    if n <= 0:
        return None
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


@dataclass
class Agreement:
    """SZZ's links against the developers' own, over the fixes that have both."""

    fixes: int
    named_links: int
    blamed_links: int
    common: int
    precision: float | None
    recall: float | None
    precision_ci: tuple[float, float] | None
    recall_ci: tuple[float, float] | None


@dataclass
class LabelQuality:
    changes: int
    source_changes: int
    """Commits that add lines to a source file (only those can be labelled buggy)."""
    fixes: int
    fixes_by_source: dict[str, int]
    fix_share: float | None
    """Fixes among source-changing commits."""
    labelled: int
    buggy: int
    buggy_share: float | None
    """Buggy among labelled source-changing commits."""
    fixes_labelling_nothing: int
    """Fixes no kept link comes from (only added lines, only filtered lines, too large)."""
    dropped: dict[str, int]
    by_label_source: dict[str, int]
    agreement: Agreement | None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def assess(labels: pd.DataFrame, links: pd.DataFrame) -> LabelQuality:
    """The label report of one labelled dataset (the frames of ``labels.parquet`` and
    ``szz_links.parquet``)."""
    src = labels["source_files"] > 0
    is_fix = labels["is_fix"].astype(bool)
    by_source: dict[str, int] = {}
    if "fix_sources" in labels:
        for srcs in labels.loc[is_fix, "fix_sources"]:
            for s in srcs if srcs is not None else []:
                by_source[s] = by_source.get(s, 0) + 1
    labelled_mask = labels["label_state"].isin(["buggy", "clean"]) & src
    buggy = int((labels["label_state"].eq("buggy") & src).sum())
    labelled = int(labelled_mask.sum())
    n_src = int(src.sum())
    fixes = int(is_fix.sum())
    fix_share = float((is_fix & src).sum()) / n_src if n_src else None
    buggy_share = buggy / labelled if labelled else None
    kept = links[links["dropped"].isna()]
    with_links = set(kept["fix_sha"])
    nothing = int((is_fix & ~labels["sha"].isin(with_links)).sum())
    source_col = links["source"] if "source" in links else pd.Series("szz", index=links.index)
    agreement = _agreement(links.assign(source=source_col))
    q = LabelQuality(
        changes=len(labels),
        source_changes=n_src,
        fixes=fixes,
        fixes_by_source=dict(sorted(by_source.items())),
        fix_share=fix_share,
        labelled=labelled,
        buggy=buggy,
        buggy_share=buggy_share,
        fixes_labelling_nothing=nothing,
        dropped={str(k): int(v) for k, v in links["dropped"].value_counts().items()},
        by_label_source=(
            {str(k): int(v) for k, v in labels["label_source"].value_counts().items()}
            if "label_source" in labels
            else {"szz": len(labels)}
        ),
        agreement=agreement,
    )
    q.warnings = _warnings(q)
    return q


def _agreement(links: pd.DataFrame) -> Agreement | None:
    named = links[(links["source"] != "szz") & links["dropped"].isna()]
    fixes = set(named["fix_sha"])
    if not fixes:
        return None
    blamed = links[
        (links["source"] == "szz")
        & links["fix_sha"].isin(fixes)
        & links["dropped"].isin(["superseded"])
    ]
    named_pairs = set(zip(named["fix_sha"], named["inducing_sha"], strict=True))
    blamed_pairs = set(zip(blamed["fix_sha"], blamed["inducing_sha"], strict=True))
    common = len(named_pairs & blamed_pairs)
    return Agreement(
        fixes=len(fixes),
        named_links=len(named_pairs),
        blamed_links=len(blamed_pairs),
        common=common,
        precision=common / len(blamed_pairs) if blamed_pairs else None,
        recall=common / len(named_pairs),
        precision_ci=wilson(common, len(blamed_pairs)),
        recall_ci=wilson(common, len(named_pairs)),
    )


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _warnings(q: LabelQuality) -> list[str]:
    out = []
    if q.fix_share is not None and q.source_changes >= 50 and q.fix_share > FIX_SHARE_WARN:
        out.append(
            f"{_pct(q.fix_share)} of the commits that change source files are taken as bug "
            "fixes: too many to be only fixes (features titled 'Fix #N: Add ...'?). Check "
            "`diffrisk label --sample 20`; narrow fixes.keywords, or use an issue tracker "
            "(--github-repo, label.jira) or a fixes file"
        )
    if q.buggy_share is not None and q.labelled >= 50 and q.buggy_share > BUGGY_SHARE_WARN:
        out.append(
            f"{_pct(q.buggy_share)} of the labelled source changes are labelled buggy: "
            "implausibly many; the fixes are probably not all bug fixes"
        )
    if q.fixes >= 20 and q.fixes_labelling_nothing > 0.6 * q.fixes:
        out.append(
            f"{q.fixes_labelling_nothing} of {q.fixes} fixes label no commit (they only add "
            "lines, or change only tests, comments and imports): few labels to learn from"
        )
    a = q.agreement
    if (
        a is not None
        and a.fixes >= AGREEMENT_MIN_FIXES
        and a.precision is not None
        and a.precision < AGREEMENT_WARN
    ):
        out.append(
            f"SZZ agreed with the developers' own links on only {_pct(a.precision)} of its "
            f"links ({a.common} of {a.blamed_links}, over {a.fixes} fixes): expect many "
            "wrongly blamed commits"
        )
    return out


def render_markdown(q: LabelQuality) -> str:
    """The label report as Markdown (``diffrisk label --report``, the monitor's report)."""

    def share(x: float | None) -> str:
        return "n/a" if x is None else _pct(x)

    lines = [
        "### Label quality",
        "",
        "| | |",
        "| --- | --- |",
        f"| fixes | {q.fixes} ({share(q.fix_share)} of {q.source_changes} source-changing commits) |",
        "| fixes by source | "
        + (", ".join(f"{k}: {v}" for k, v in q.fixes_by_source.items()) or "none")
        + " |",
        f"| fixes that label nothing | {q.fixes_labelling_nothing} |",
        f"| buggy | {q.buggy} ({share(q.buggy_share)} of {q.labelled} labelled source changes) |",
    ]
    if q.dropped:
        lines.append(
            "| links not used | "
            + ", ".join(f"{k}: {v}" for k, v in sorted(q.dropped.items()))
            + " |"
        )
    if q.by_label_source.get("file"):
        lines.append(f"| labels from a labels file | {q.by_label_source['file']} |")
    a = q.agreement
    if a is None:
        lines.append("| SZZ vs developers' links | no fix names its bug-introducing commit |")
    else:
        p = "n/a" if a.precision is None else f"{a.precision:.2f}"
        if a.precision_ci:
            p += f" (95% CI {a.precision_ci[0]:.2f}–{a.precision_ci[1]:.2f})"
        r = "n/a" if a.recall is None else f"{a.recall:.2f}"
        if a.recall_ci:
            r += f" (95% CI {a.recall_ci[0]:.2f}–{a.recall_ci[1]:.2f})"
        lines.append(f"| SZZ vs developers' links | {a.fixes} fixes: precision {p}, recall {r} |")
    for w in q.warnings:
        lines += ["", f"> **Warning:** {w}"]
    return "\n".join(lines) + "\n"


def assess_data_dir(data_dir: str | Path) -> LabelQuality:
    """:func:`assess` of the labels in ``data_dir`` (a DataError when there are none)."""
    from diffrisk.labelling.label import load_labels, load_links

    return assess(load_labels(data_dir), load_links(data_dir))
