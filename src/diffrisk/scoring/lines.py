"""The risky lines: which added lines of a change drive its risk (line-level ranking).

With the ``tokens`` model (and the ``prior`` model, whose own weights are token weights)
the ranking follows JITLine (Pornprasit and Tantithamthavorn, MSR 2021): the model's
weight of each token (Platt slope x coefficient, averaged over the calibration members)
mapped back to the added lines. A line scores the sum of the
*positive* weights of its distinct tokens (the bag is binary, so a token counts once per
line): what its names, keywords and operators add toward a defect. JITLine sums every
weight; on the eight training projects, out of time, the positive sum found a buggy line
in the first five more often than that full sum (+3.0 points pooled, +0.9 to +4.9;
``bench/bench_lines.py``, docs/scoring.md). A line model learned from the lines later
fixes deleted (:mod:`diffrisk.scoring.line_model`) ranked no better beyond chance, so it
is not used here. The change's vector is
scaled to unit length before the model sees it; that scale is the same for every line of
a change, so it changes no ranking and is left out: a line's score is relative.

Other model kinds weigh whole changes (lines added, files touched, history), never the
words of a line, so no model says which line is risky. Their fallback is a heuristic and
says so (:data:`BASIS_SIZE`): the lines that do the most first (the most distinct names,
keywords and operators; the line-level analogue of ranking changes by lines added), which
ranked best of the model-free orders measured (control-flow lines, indentation: no better
than random).

Lines ranked are the added lines the models count (``la_code``, classified by
:mod:`diffrisk.features.codelines`): not blank, comment or docstring lines, not lines the
same file diff also deletes (re-indented or moved), and not the lines SZZ never blames
(imports, ``__version__``, ``__all__``: :func:`diffrisk.features.cosmetic.incidental_lines`).
Only source files (the label stage's rule) are read.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from diffrisk.errors import GitCommandError
from diffrisk.features.codelines import _DIFF_FLAGS, _TOKEN, _Counter
from diffrisk.features.cosmetic import incidental_lines
from diffrisk.git.repo import GitRepo, unquote_path
from diffrisk.scoring.result import FileRisk, RiskyLines

if TYPE_CHECKING:
    from diffrisk.scoring.analysis import Analysis

#: The model's own token weights (the ``tokens`` model).
BASIS_TOKENS = "tokens"
#: No model weighs lines: the lines with the most distinct tokens first (a heuristic).
BASIS_SIZE = "line-size"

#: Lines picked per file (JITLine's top-5), then joined into ranges of adjacent lines.
TOP_LINES = 5
#: Ranges kept per file.
MAX_RANGES = 3
#: Two picked lines at most this far apart (in the head version) join one range.
JOIN_GAP = 2
#: Longest line text kept in a result (characters).
MAX_TEXT = 200
#: Names shown per range.
MAX_NAMED = 3

_HUNK_NEW = re.compile(rb"^@@ -\d+(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_INDENT = re.compile(rb"^[ \t]*")


@dataclass(frozen=True)
class AddedLine:
    """One added line of code: where it is in the head version, and what it holds."""

    path: str
    line: int  # 1-based, in the head version of ``path``
    text: str  # stripped
    control: bool  # a control-flow line (codelines' rule)
    indent: int  # leading whitespace in columns (a tab counts 4)
    tokens: tuple[str, ...]  # distinct tokens, as the model's bag splits them
    new_file: bool = False  # the diff adds the whole file
    hunk_old: int = 0  # lines its hunk deletes (0: a hunk of added lines only)
    hunk_new: int = 1  # lines its hunk adds


def _indent(raw: bytes) -> int:
    lead = _INDENT.match(raw)
    s = lead.group() if lead else b""
    return s.count(b" ") + 4 * s.count(b"\t")


class _File:
    """One file of the diff: its added lines fed through codelines' classifier."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.counter = _Counter(path)
        # per code line of counter.code: (line, raw, its hunk's (deleted, added) lines)
        self.at: list[tuple[int, bytes, tuple[int, int]]] = []
        self.line = 0
        self.new_file = False
        self.span = (0, 1)

    def hunk(self, header: bytes) -> None:
        m = _HUNK_NEW.match(header)
        self.line = int(m.group(2)) if m else 0
        self.span = (int(m.group(1) or 1), int(m.group(3) or 1)) if m else (0, 1)
        self.counter.hunk(header)

    def add(self, raw: bytes) -> None:
        before = len(self.counter.code)
        self.counter.add(raw)
        if len(self.counter.code) > before:
            self.at.append((self.line, raw, self.span))
        self.line += 1

    def lines(self) -> list[AddedLine]:
        """The added lines of code, as ``la_code`` counts them (moved and re-indented lines
        left out, the same way :meth:`_Counter.totals` leaves them out) and without the
        lines SZZ never blames."""
        left = self.counter.deleted.copy()
        kept: list[tuple[int, bytes, bool, bytes, tuple[int, int]]] = []
        for (text, control, stripped), (no, raw, span) in zip(
            self.counter.code, self.at, strict=True
        ):
            if left[text] > 0:
                left[text] -= 1
                continue
            kept.append((no, stripped, control, raw, span))
        if not kept:
            return []
        skip = incidental_lines(self.path, [k[0] for k in kept], [k[1] for k in kept])
        out = []
        for no, stripped, control, raw, span in kept:
            if no in skip:
                continue
            toks = tuple(dict.fromkeys(t.decode("ascii") for t in _TOKEN.findall(stripped)))
            out.append(
                AddedLine(
                    self.path,
                    no,
                    stripped.decode("utf-8", "replace"),
                    bool(control),
                    _indent(raw),
                    toks,
                    self.new_file,
                    span[0],
                    span[1],
                )
            )
        return out


def parse_added_lines(
    diff: bytes, is_source: Callable[[str], bool] | None = None
) -> dict[str, list[AddedLine]]:
    """Per path of a ``git diff -p -U0`` (or one commit's ``git show``), its added lines
    of code with their line numbers in the new version; only paths ``is_source`` accepts."""
    files: dict[str, _File] = {}
    cur: _File | None = None
    in_header = new_file = False
    for line in diff.split(b"\n"):
        if line.startswith(b"diff --git "):
            cur, in_header = None, True
            continue
        if in_header:
            if line.startswith(b"--- "):
                new_file = line == b"--- /dev/null"
            elif line.startswith(b"+++ "):
                in_header = False
                name = line[4:]
                if name == b"/dev/null":
                    continue
                path = unquote_path(name, "backslashreplace")[2:]
                if is_source is None or is_source(path):
                    cur = files.setdefault(path, _File(path))
                    cur.new_file = new_file
            continue
        if cur is None:
            continue
        if line.startswith(b"@@"):
            cur.hunk(line)
        elif line.startswith(b"+"):
            cur.add(line[1:])
        elif line.startswith(b"-"):
            cur.counter.delete(line[1:])
    return {p: f.lines() for p, f in files.items()}


def diff_added_lines(
    repo: GitRepo, base: str, head: str, is_source: Callable[[str], bool] | None = None
) -> dict[str, list[AddedLine]]:
    """:func:`parse_added_lines` of ``git diff base head`` with the flags the features use
    (the whole diff: limited to some paths, git would miss their renames); {} when git
    fails."""
    try:
        data = repo.run("diff", *_DIFF_FLAGS, base, head)
    except GitCommandError:
        return {}
    return parse_added_lines(data, is_source)


# -- scores --------------------------------------------------------------------------------


def token_weights(estimator: Any) -> dict[str, float] | None:
    """A model's weight of each token of its vocabulary: for the ``tokens`` model, Platt
    slope x coefficient, averaged over the calibration members (a token a member lacks
    counts 0 there); for the ``prior`` model, its own token coefficients (not
    recalibrated); None for a model without a bag of tokens (or a ``prior`` model fitted
    on too short a history to have one)."""
    from diffrisk.model.contributions import prior_token_member
    from diffrisk.model.estimators import token_members
    from diffrisk.model.transforms import ANCHORS

    members = token_members(estimator) or []
    skip = len(ANCHORS)  # the tokens model's coefficients start with the line counts'
    prior = prior_token_member(estimator)
    if prior is not None:
        members, skip = [prior], 0
    if not members:
        return None
    out: dict[str, float] = collections.defaultdict(float)
    for _lines, tokens, coef, slope in members:
        names = tokens.named_steps["bag"].get_feature_names_out()
        for name, c in zip(names, coef[skip:], strict=True):
            out[str(name)] += float(slope) * float(c) / len(members)
    return dict(out)


def line_score(line: AddedLine, weights: Mapping[str, float] | None) -> float:
    """A line's risk score: with token weights, the sum of its distinct tokens' positive
    weights; without, the heuristic: its number of distinct tokens."""
    if weights is not None:
        return float(sum(w for t in line.tokens if (w := weights.get(t, 0.0)) > 0))
    return float(len(line.tokens))


def rank_lines(
    lines: Iterable[AddedLine], weights: Mapping[str, float] | None
) -> list[tuple[AddedLine, float]]:
    """Lines with their scores, highest first (ties: path, then line order)."""
    scored = [(ln, line_score(ln, weights)) for ln in lines]
    scored.sort(key=lambda s: (-s[1], s[0].path, s[0].line))
    return scored


def _is_name(token: str) -> bool:
    return token[:1].isalpha() or token[:1] == "_"


def _reason(
    picked: Sequence[tuple[AddedLine, float]], weights: Mapping[str, float] | None
) -> tuple[str, list[str]]:
    if weights is None:
        text = (
            "among the longest added lines of code (the most names, keywords and operators): "
            "this model weighs whole changes, not lines, and such lines were the likeliest to "
            "need a later fix"
        )
        return text, []
    totals: dict[str, float] = collections.defaultdict(float)
    for ln, _s in picked:
        for t in ln.tokens:
            w = weights.get(t, 0.0)
            if w > 0 and _is_name(t):
                totals[t] = max(totals[t], w)
    named = [t for t, _w in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))][:MAX_NAMED]
    if named:
        text = (
            f"adds {', '.join(f'`{t}`' for t in named)}: names and keywords that went with "
            "past defects in this repository (the model's token weights)"
        )
    else:
        text = "its operators and brackets went with past defects in this repository (the model's token weights)"
    return text, named


def risky_ranges(
    lines: Sequence[AddedLine],
    weights: Mapping[str, float] | None,
    *,
    top: int = TOP_LINES,
    max_ranges: int = MAX_RANGES,
    basis: str | None = None,
) -> list[RiskyLines]:
    """The riskiest lines of one file's added lines, as ranges of the head version: the
    ``top`` lines with a positive score, lines at most :data:`JOIN_GAP` apart joined into
    one range, the ``max_ranges`` ranges with the highest best line kept (best first)."""
    scored = rank_lines(lines, weights)
    ranked = [(ln, s) for ln, s in scored if s > 0][:top]
    if not ranked or (weights is None and len(ranked) == len(scored)):
        return []  # the heuristic picks every line of a small file: that says nothing
    basis = basis or basis_of(weights)
    by_line = sorted(ranked, key=lambda s: s[0].line)
    groups: list[list[tuple[AddedLine, float]]] = []
    for item in by_line:
        if groups and item[0].line - groups[-1][-1][0].line <= JOIN_GAP:
            groups[-1].append(item)
        else:
            groups.append([item])
    groups.sort(key=lambda g: (-max(s for _ln, s in g), g[0][0].line))
    out = []
    for g in groups[:max_ranges]:
        reason, named = _reason(g, weights)
        out.append(
            RiskyLines(
                first_line=g[0][0].line,
                last_line=g[-1][0].line,
                score=round(max(s for _ln, s in g), 6),
                lines=[ln.text[:MAX_TEXT] for ln, _s in g],
                tokens=named,
                reason=reason,
                basis=basis,
            )
        )
    return out


def basis_of(weights: Mapping[str, float] | None) -> str:
    return BASIS_TOKENS if weights is not None else BASIS_SIZE


def add_risky_lines(repo: GitRepo, a: Analysis, files: list[FileRisk], estimator: Any) -> str:
    """Fill ``risky_lines`` of the hotspot ``files`` of the analysed change; returns the
    basis (:data:`BASIS_TOKENS` or :data:`BASIS_SIZE`), or "" when no file has any."""
    from diffrisk.features.source import is_source_path

    wanted = {f.path for f in files if is_source_path(f.path, a.label_config)}
    if not wanted:
        return ""
    added = diff_added_lines(repo, a.merge_base, a.head, wanted.__contains__)
    weights = token_weights(estimator)
    found = False
    for f in files:
        f.risky_lines = risky_ranges(added.get(f.path, []), weights)
        found = found or bool(f.risky_lines)
    return basis_of(weights) if found else ""
