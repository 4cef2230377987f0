"""Words for a score: factors, hotspots, reviewers and advice.

Nothing here decides what matters. The model's per-feature contributions pick the
factors; the texts only phrase each feature with the change's actual values. Hotspots
are ranked by the model's probability for each file's change alone; their reasons,
the reviewers and the advice are facts read from the mined history.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from diffrisk.config import LabelConfig
from diffrisk.features.codelines import CONTROL_KEYWORDS, SOFT_CONTROL_KEYWORDS
from diffrisk.features.history import subsystem
from diffrisk.report.format import number, plural
from diffrisk.scoring.result import Factor, FileRisk

if TYPE_CHECKING:
    from diffrisk.scoring.analysis import Analysis

SECONDS_PER_DAY = 86400
REVIEWER_DAYS = 365
MAX_REVIEWERS = 3
MAX_NAMED = 3
COUPLED = 0.2
"""Two top-level directories belong in one PR when at least this share of the past
changes of the less-changed one also changed the other."""


# -- helpers ---------------------------------------------------------------------------


_n = plural
_num = number


def subsystem_name(s: str) -> str:
    return f"{s}/" if s else "the repository root"


def _names(items: list[str], limit: int = MAX_NAMED) -> str:
    shown = items[:limit]
    more = len(items) - len(shown)
    text = ", ".join(shown)
    return f"{text} and {more} more" if more > 0 else text


def is_test_path(path: str) -> bool:
    """A test file by the usual conventions: test/, tests/, __tests__/, spec/, e2e/
    directories, test_*.py, *_test.py, *_test.go, *_spec.rb, *.test.ts, *.spec.js, ..."""
    parts = path.lower().split("/")
    name = parts[-1]
    if any(p in ("test", "tests", "testing", "__tests__", "e2e") for p in parts[:-1]):
        return True
    if parts[0] == "spec" and len(parts) > 1:  # RSpec's top-level folder; a nested spec/ is
        return True  # often code (compiler/rustc_target/src/spec/)
    return (
        name.startswith("test_")
        or name.endswith(("_test.py", "_tests.py", "_test.go", "_spec.rb"))
        or ".test." in name
        or ".spec." in name
        or name in ("conftest.py", "test.py", "tests.py")
    )


@dataclass
class Context:
    """The change's facts the texts refer to."""

    paths: list[str]
    dirs: list[str]
    subsystems: list[str]
    new_subsystems: list[str]
    fix_files: list[str]  # touched files with past fixes, most fixes first
    la_in_fix_files: int
    subject: str
    tokens: list[tuple[str, float]] = field(default_factory=list)
    """A token model's most telling names and keywords in the change: (token, effect)."""

    @classmethod
    def of(cls, a: Analysis) -> Context:
        files = a.record.files
        fixy = sorted((f for f in a.facts if f.past_fixes > 0), key=lambda f: -f.past_fixes)
        return cls(
            paths=[f.path for f in files],
            dirs=sorted({posixpath.dirname(f.path) for f in files}),
            subsystems=sorted({subsystem(f.path) for f in files}),
            new_subsystems=list(a.new_subsystems),
            fix_files=[f.path for f in fixy],
            la_in_fix_files=sum(
                f.change.la for f in fixy if not f.change.binary and not f.change.unknown
            ),
            subject=a.record.subject,
        )


# -- factors ---------------------------------------------------------------------------


def factor_text(feature: str, value: Any, ctx: Context) -> str:
    """One feature of the change, in a reviewer's words, with the change's value."""
    v = _value(value)
    if v is None:
        return f"{feature} is unknown for this change"
    if feature == "nf":
        if v == 1:
            return (
                f"touches a single file ({ctx.paths[0]})" if ctx.paths else "touches a single file"
            )
        return f"touches {_n(v, 'file')} in {_n(len(ctx.dirs), 'directory', 'directories')}"
    if feature == "nd":
        if v <= 1:
            d = ctx.dirs[0] if ctx.dirs and ctx.dirs[0] else "the repository root"
            return f"stays within one directory ({d})"
        return f"spreads over {_n(v, 'directory', 'directories')} ({_names([d or '(root)' for d in ctx.dirs])})"
    if feature == "ns":
        names = [subsystem_name(s) for s in ctx.subsystems]
        if v <= 1:
            return f"stays within one top-level directory ({names[0] if names else 'the root'})"
        return f"spans {_n(v, 'top-level directory', 'top-level directories')} ({_names(names)})"
    if feature == "entropy":
        if v >= 0.5:
            return f"spreads its edits evenly over its files (entropy {v:.2f})"
        return f"concentrates its edits in few of its files (entropy {v:.2f})"
    if feature == "la":
        text = f"adds {_n(v, 'line')}"
        if ctx.fix_files and ctx.la_in_fix_files:
            if ctx.la_in_fix_files >= v:
                return text + " to files with a history of fixes"
            return text + f", {ctx.la_in_fix_files} of them to files with a history of fixes"
        return text
    if feature == "la_source":
        if v == 0:
            return "adds no lines to source files (tests, docs or configuration only)"
        return f"adds {_n(v, 'line')} to source files"
    if feature == "la_code":
        if v == 0:
            return (
                "adds no lines of code to source files (only comments, docstrings or blank lines)"
            )
        return (
            f"adds {_n(v, 'line')} of code to source files (not counting comments and docstrings)"
        )
    if feature == "la_control":
        if v == 0:
            return "adds no control-flow lines (no new if, for, while, try, return or raise)"
        return f"adds {_n(v, 'control-flow line')} (if, for, while, try, return, raise, ...)"
    if feature == "pfix":
        if v == 0:
            return "touches files no earlier bug fix changed"
        return f"touches files that {_n(v, 'earlier bug fix', 'earlier bug fixes')} changed"
    if feature == "ld":
        return f"deletes {_n(v, 'line')}"
    if feature == "lt":
        if v == 0:
            return "only adds new files"
        return f"modifies files that had {_n(v, 'line')} before the change"
    if feature == "fix":
        return f'is a bug fix ("{ctx.subject}")' if v else "is not a bug fix"
    if feature == "ndev":
        if v == 0:
            return "touches only files without earlier history"
        return f"touches files that {_n(v, 'developer')} changed before"
    if feature == "age":
        if v < 1:
            return "touches files changed less than a day earlier"
        return f"touches files last changed {_num(round(v, 1))} days earlier on average"
    if feature == "nuc":
        if v == 0:
            return "touches files with no earlier changes"
        return f"touches files changed by {_n(v, 'earlier commit')}"
    if feature == "exp":
        if v == 0:
            return "is the author's first change to the repository"
        return f"comes from an author with {_n(v, 'earlier change')}"
    if feature == "rexp":
        return f"comes from an author with {v:.1f} recent changes (weighted by recency)"
    if feature == "sexp":
        if v == 0:
            where = _names([subsystem_name(s) for s in ctx.new_subsystems or ctx.subsystems])
            return f"is the author's first change to {where}"
        where = _names([subsystem_name(s) for s in ctx.subsystems])
        return f"comes from an author with {_n(v, 'earlier change')} to {where}"
    if feature == "issue_refs":
        return "references no issue" if v == 0 else f"references {_n(v, 'issue')}"
    if feature == "huge":
        return "is a huge change (thousands of files or lines)" if v else "is not a huge change"
    if feature == "binary_files":
        return "changes no binary files" if v == 0 else f"changes {_n(v, 'binary file')}"
    if feature == "unknown_files":
        return f"has {_n(v, 'file')} whose line counts are unknown"
    if feature == "py_files":
        return "changes no Python files" if v == 0 else f"changes {_n(v, 'Python file')}"
    if feature == "cc_delta":
        if v > 0:
            return f"adds {_num(v)} to the cyclomatic complexity of its Python files"
        if v < 0:
            return f"lowers the cyclomatic complexity of its Python files by {_num(-v)}"
        return "leaves the cyclomatic complexity of its Python files unchanged"
    if feature == "cc_max_touched":
        if v == 0:
            return "adds or modifies no branching function"
        return f"adds or modifies a function of cyclomatic complexity {_num(v)}"
    if feature == "mi_before":
        return f"touches Python files with a maintainability index of {v:.0f}/100"
    if feature == "mi_after":
        return f"leaves its Python files with a maintainability index of {v:.0f}/100"
    if feature == "hv_delta":
        return f"changes the Halstead volume of its Python files by {v:+.0f}"
    if feature == "unparsable_files":
        return f"has {_n(v, 'Python file')} that do not parse"
    return f"{feature} = {_num(v)}"


def _value(value: Any) -> float | None:
    if isinstance(value, (list, tuple, np.ndarray)):
        return float(len(value))
    if value is None or isinstance(value, str):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def factors(contrib: pd.Series, row: pd.Series, ctx: Context, top: int) -> list[Factor]:
    """The ``top`` features that raised and the ``top`` that lowered the risk most."""

    items = []
    contrib = contrib.copy()
    merged = _added_lines_factor(contrib, row)
    if merged is not None:
        items.append(merged)
        contrib = contrib.drop([k for k in ADDED_LINES if k in contrib.index])
    history = _history_factor(contrib, row)
    if history is not None:
        items.append(history)
        contrib = contrib.drop(list(FILE_HISTORY))
    for feature, c in contrib.items():
        c = float(c)
        if math.isnan(c) or c == 0.0:
            continue
        if feature == "code_tokens":
            items.append(_tokens_factor(c, row, ctx))
            continue
        raw = row.get(feature) if feature in row.index else None
        v = _value(raw)
        items.append(
            Factor(
                str(feature), math.nan if v is None else v, c, factor_text(str(feature), raw, ctx)
            )
        )
    # an effect that rounds to +0.00 in the report says nothing
    up = sorted((f for f in items if f.contribution >= MIN_EFFECT), key=lambda f: -f.contribution)
    down = sorted((f for f in items if f.contribution <= -MIN_EFFECT), key=lambda f: f.contribution)
    up, down = up[:top], down[:top]
    return sorted(up + down, key=lambda f: -abs(f.contribution))


ADDED_LINES = ("la_source", "la_code", "la_control")
MIN_EFFECT = 0.005
"""Factors whose contribution to the log-odds is smaller than this are not listed."""
FILE_HISTORY = ("nuc", "ndev")


def _history_factor(contrib: pd.Series, row: pd.Series) -> Factor | None:
    """NUC and NDEV as one factor with their summed contribution: how many earlier commits,
    by how many people, changed the touched files. NDEV never exceeds NUC and the two rise
    together, so a model may weigh one against the other; shown apart, "touches files
    that 1 developer changed before" raised the risk by as much as "touches files changed
    by 1 earlier commit" lowered it."""

    if not all(k in contrib.index and k in row.index for k in FILE_HISTORY):
        return None
    c = float(contrib["nuc"]) + float(contrib["ndev"])
    nuc, ndev = _value(row.get("nuc")), _value(row.get("ndev"))
    if math.isnan(c) or c == 0.0 or nuc is None or ndev is None:
        return None
    if nuc == 0:
        text = "touches only files with no earlier changes"
    else:
        text = f"touches files changed by {_n(nuc, 'earlier commit')} from {_n(ndev, 'developer')}"
    return Factor("nuc", nuc, c, text)


def _tokens_factor(c: float, row: pd.Series, ctx: Context) -> Factor:
    """The token model's verdict on what the added code is made of, naming the names and
    keywords that weigh most in the direction of the verdict."""

    text = row.get("code_tokens") if "code_tokens" in row.index else ""
    n = len(str(text).split()) if isinstance(text, str) else 0
    same = [t for t, w in ctx.tokens if (w > 0) == (c > 0)][:MAX_NAMED]
    named = f" ({', '.join(f'`{t}`' for t in same)})" if same else ""
    if n == 0:
        words = "adds no code, so none of the names and keywords that went with past defects here"
    elif c > 0:
        words = "the names and keywords of the code it adds went with past defects here"
    else:
        words = (
            "the names and keywords of the code it adds went with changes that stayed clean here"
        )
    return Factor("code_tokens", float(n), c, words + named)


def _added_lines_factor(contrib: pd.Series, row: pd.Series) -> Factor | None:
    """``la_source``, ``la_code`` and ``la_control`` as one factor with their summed
    contribution: one fact (how many lines the change adds to source files, and what
    kind). The three are collinear, so a model may weigh one against another; shown
    apart, "adds no lines to source files" raised the risk next to "adds no lines of
    code" lowering it."""

    keys = [k for k in ADDED_LINES if k in contrib.index]
    if "la_source" not in keys or len(keys) < 2:
        return None
    cs = [float(contrib[k]) for k in keys]
    if any(math.isnan(c) for c in cs):
        return None
    n = _value(row.get("la_source"))
    if n is None:
        return None
    m = _value(row.get("la_code")) if "la_code" in keys else None
    k = _value(row.get("la_control")) if "la_control" in keys else None
    if n == 0:
        text = "adds no lines to source files (tests, docs or configuration only)"
    elif m is None:  # unknown (the diff could not be read): say only what is known
        text = f"adds {_n(n, 'line')} to source files"
    elif (m := min(m, n)) == 0:
        text = (
            f"adds {_n(n, 'line')} to source files, none of them new code (comments, docstrings, "
            "blank or moved lines, reformatting, type annotations)"
        )
    else:
        text = (
            f"adds {_n(n, 'line')} of code to source files"
            if m == n
            else (f"adds {_n(n, 'line')} to source files, {_num(m)} of them code")
        )
        if k is not None and min(k, m) > 0:
            words = _control_words(row.get("code_tokens"))
            text += f" ({_num(min(k, m))} control flow: {', '.join(words) if words else 'branches, loops, returns, raises'})"
        elif k is not None:
            text += " (no control flow)"
    return Factor("la_source", n, sum(cs), text)


def _control_words(tokens: Any) -> list[str]:
    """The control-flow keywords among a change's code tokens (what its lines use)."""
    have = set(tokens.split()) if isinstance(tokens, str) else set()
    return [w for w in (*CONTROL_KEYWORDS, *SOFT_CONTROL_KEYWORDS) if w in have]


# -- hotspots --------------------------------------------------------------------------


def file_reasons(f: Any, source: bool = True) -> list[str]:
    """Why a touched file is risky, from its history and this change (a FileFacts).

    ``source=False`` (not a source file by the label stage's rule): no line of it is ever
    blamed, so the changes to it that later needed a fix were found buggy elsewhere and
    are not named as its history."""
    ch = f.change
    out = []
    if ch.status == "A":
        out.append("new file")
    elif f.past_changes:
        out.append(f"changed in {_n(f.past_changes, 'earlier commit')}")
    if f.past_fixes:
        out.append(f"{_n(f.past_fixes, 'past bug fix', 'past bug fixes')} touched it")
    if f.past_bugs and source:
        out.append(f"{_n(f.past_bugs, 'earlier change')} to it later needed a fix")
    cc = f.cc_added
    if cc is not None and cc > 0:
        out.append(f"this change adds {_num(cc)} to its cyclomatic complexity")
    elif cc is not None and cc < 0:
        out.append(f"this change lowers its cyclomatic complexity by {_num(-cc)}")
    if ch.binary:
        out.append("binary")
    elif ch.la or ch.ld:
        out.append(f"+{ch.la}/-{ch.ld} lines")
    if ch.status == "D":
        out.append("deleted")
    elif ch.status == "R":
        out.append(f"renamed from {ch.old_path}")
    return out


def hotspots(a: Analysis, scores: np.ndarray, top: int) -> list[FileRisk]:
    """The ``top`` touched files by the model's probability for each file's change alone."""
    from diffrisk.features.source import is_source_path

    out = []
    for f, s in zip(a.facts, scores, strict=True):
        ch = f.change
        out.append(
            FileRisk(
                path=f.path,
                score=float(s),
                reasons=file_reasons(f, is_source_path(f.path, a.label_config)),
                la=0 if ch.binary or ch.unknown else ch.la,
                ld=0 if ch.binary or ch.unknown else ch.ld,
                past_fixes=f.past_fixes,
                cc_added=f.cc_added,
                past_changes=f.past_changes,
                past_bugs=f.past_bugs,
            )
        )
    out.sort(key=lambda r: (-r.score, -r.past_fixes, -(r.la + r.ld), r.path))
    return out[:top]


def review_order(items: Iterable[tuple[str, float, int]]) -> list[str]:
    """Keys of ``(key, probability, changed lines)`` items in the order a reviewer with
    limited time should read them: by risk per changed line, highest first (effort-aware
    ranking: the same minutes of review find more defects in small risky changes than in
    large ones). Empty when that order is the plain risk order, or there is one item: then
    it says nothing the tables do not."""
    rows = list(items)
    if len(rows) < 2:
        return []
    by_risk = [k for k, _p, _n in sorted(rows, key=lambda r: (-r[1], r[0]))]
    by_density = [k for k, _p, _n in sorted(rows, key=lambda r: (-r[1] / max(r[2], 1), r[0]))]
    return [] if by_density == by_risk else by_density


# -- reviewers and advice -------------------------------------------------------------------


def reviewer_commits(a: Analysis, emails: Iterable[str]) -> dict[str, str]:
    """Each e-mail's newest commit in the change's history (GitHub maps it to a login)."""
    want = set(emails)
    hist = a.history
    out: dict[str, tuple[int, str]] = {}
    for b, e in enumerate(hist.emails):
        if e in want and (e not in out or int(hist.times[b]) >= out[e][0]):
            out[e] = (int(hist.times[b]), hist.shas[b])
    return {e: sha for e, (_t, sha) in out.items()}


_BOT = re.compile(
    r"\[bot\]|^(?:\d+\+)?(?:dependabot|renovate|github-actions|pre-commit-ci|greenkeeper"
    r"|snyk-bot|codecov|allcontributors|web-flow|mergify|imgbot|pyup-bot|deepsource)\b",
    re.IGNORECASE,
)


def is_bot(email: str) -> bool:
    """A bot's author e-mail ("49699333+dependabot[bot]@users.noreply.github.com", ...)."""
    return bool(_BOT.search(email))


def reviewers(
    a: Analysis, limit: int = MAX_REVIEWERS, days: int = REVIEWER_DAYS
) -> list[tuple[str, int]]:
    """Who changed the touched files most in the ``days`` before the change's history ends
    (its merge base: a release range's head can lie years later), excluding the change's
    own authors and bots: (email, changes to these files). When nobody did, the all-time
    counts, among people who committed anything in the last ``days`` (someone who left
    the project long ago cannot review)."""
    hist = a.history
    bits = np.unique(np.concatenate([f.bits for f in a.facts] + [np.zeros(0, dtype=np.int64)]))
    if not len(bits):
        return []
    past = hist.times[: len(hist.emails)]  # the history's commits (the PR's come after)
    end = min(int(a.time), int(past.max())) if len(past) else int(a.time)
    since = end - days * SECONDS_PER_DAY
    active = {e for e, t in zip(hist.emails, past.tolist(), strict=True) if t >= since}
    recent = bits[hist.times[bits] >= since]
    for chosen in (recent, bits):
        counts: Counter[str] = Counter()
        last: dict[str, int] = {}
        for b in chosen.tolist():
            e = hist.emails[b]
            if e and e not in a.pr_authors and e in active and not is_bot(e):
                counts[e] += 1
                last[e] = max(last.get(e, 0), int(hist.times[b]))
        if counts:
            ranked = sorted(counts, key=lambda e: (-counts[e], -last[e], e))
            return [(e, counts[e]) for e in ranked[:limit]]
    return []


def independent_groups(a: Analysis, coupled: float = COUPLED) -> list[list[str]]:
    """Touched top-level directories grouped by how often they changed together before.

    Two directories are joined when the past changes touching both are at least
    ``coupled`` of the past changes of the less-changed one; a directory with no past
    changes stands alone.
    """
    subs = sorted(a.subsystem_commits)
    parent = {s: s for s in subs}

    def find(s: str) -> str:
        while parent[s] != s:
            parent[s] = parent[parent[s]]
            s = parent[s]
        return s

    for i, s1 in enumerate(subs):
        c1 = a.subsystem_commits[s1]
        for s2 in subs[i + 1 :]:
            c2 = a.subsystem_commits[s2]
            small = min(c1.bit_count(), c2.bit_count())
            if small and (c1 & c2).bit_count() >= coupled * small:
                parent[find(s1)] = find(s2)
    groups: dict[str, list[str]] = {}
    for s in subs:
        groups.setdefault(find(s), []).append(s)
    return sorted(groups.values(), key=lambda g: (-len(g), g))


def advice(
    a: Analysis, people: list[tuple[str, int]], label_cfg: LabelConfig | None = None
) -> list[str]:
    """What to do about a risky change, from the data (score() gives it for high risk).

    Split along independent top-level directories; add tests beside the touched source
    files (the label stage's source rule) with a history of fixes; ask the people who
    changed the touched files most.
    """
    from diffrisk.features.source import is_source_path

    lcfg = label_cfg or LabelConfig()
    out = []
    paths = [f.path for f in a.record.files]
    groups = independent_groups(a)
    if len(groups) >= 2:
        parts = []
        for g in groups:
            n = sum(1 for p in paths if subsystem(p) in g)
            parts.append(f"{' + '.join(subsystem_name(s) for s in g)} ({_n(n, 'file')})")
        out.append(
            "Split this change: these parts have rarely changed together before and can be reviewed "
            "and merged separately: " + "; ".join(parts) + "."
        )
    fixy = [
        f
        for f in sorted(a.facts, key=lambda f: (-f.past_fixes, f.path))
        if f.past_fixes
        and f.change.status != "D"
        and is_source_path(f.path, lcfg)
        and not is_test_path(f.path)
    ]
    if fixy:
        named = _names([f"{f.path} ({_n(f.past_fixes, 'past fix', 'past fixes')})" for f in fixy])
        touches_tests = any(is_test_path(p) for p in paths)
        lead = "Add tests beside files with a history of fixes: "
        tail = "" if touches_tests else " (this PR changes no test files)"
        out.append(lead + named + tail + ".")
    if people:
        names = ", ".join(f"{e} ({_n(n, 'change')})" for e, n in people)
        out.append(f"Ask for review from the people who know these files best: {names}.")
    return out
