"""A line-level model learned from the repository's own history: which added lines later
fixes deleted (the SZZ lines).

SZZ's links name, per fix, the inducing change, the file and the text of the lines the fix
deleted or changed (``szz_links.parquet``'s ``sample``, up to 8 per link). So the added
lines of every past defect-inducing change are labelled data: an added line of code whose
text (whitespace removed, as ``git blame -w`` compares) a link names is *buggy*, every other
added line of that change *clean* (a link naming more lines than its sample holds leaves
the unnamed lines of its file unlabelled: they are left out). Only links whose fix came
before ``cutoff`` count: in a time-ordered evaluation a line is labelled by the fixes
known then, never by later ones.

The model learns to order the lines *within* a change (pairwise, the default): an L2
logistic regression without intercept on the difference between a buggy and a clean line
of the same change, over the lines' distinct tokens (binary, as the ``tokens`` model's bag
splits them; tokens on fewer than :data:`MIN_DF` training lines left out) and a few line
features (:data:`FEATURES`): its size, its kind (definition, call, assignment, condition,
exit), its nesting, whether its file is new and whether its hunk replaces old lines. The
number of tokens is penalised less (:data:`ANCHOR`), so with little to learn from the model
stays close to the longest-lines-first order. Fitted, it is a plain table of weights
(:class:`LineModel`, JSON-able); a line's score is its linear sum.

Measured out of time on the eight training projects (``bench/bench_lines.py``,
docs/scoring.md "Risky lines") it ranks the SZZ lines no better, beyond chance, than the
orders scoring uses (the ``tokens`` model's positive weights, the tokens-per-line
fallback), so scoring does not use it: it is kept for the bench.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from diffrisk.scoring.lines import AddedLine, parse_added_lines

#: Dense line features, in this order.
FEATURES = (
    "tokens",  # log(1 + distinct tokens)
    "chars",  # log(1 + characters, stripped)
    "control",  # a control-flow line (codelines' rule)
    "nesting",  # indentation levels (4 columns), at most 10
    "definition",  # def, class, function, func, fn
    "decorator",  # begins with @
    "call",  # a call (a name followed by "("), not a definition
    "assignment",  # name = ..., name += ...
    "condition",  # if, elif, else, while, for, case, match, switch, assert
    "exit",  # return, raise, throw, yield, break, continue
    "string",  # holds a string literal
    "number",  # holds a number literal
    "new_file",  # the change adds the whole file
    "replaces",  # its hunk deletes old lines (a modification, not an addition)
    "hunk_lines",  # log(1 + lines its hunk adds)
    "file_lines",  # log(1 + ranked lines of its file in the change)
)
#: A token counts when at least this many training lines hold it.
MIN_DF = 3
#: Inverse L2 strength of the logistic regression.
C = 0.01
#: How much less the number of a line's tokens is penalised than the other features
#: (as a scale: the penalty is divided by its square).
ANCHOR = 10.0
#: Pairs (a buggy and a clean line of one change) drawn per change at most.
MAX_PAIRS = 100
#: Fewest buggy (and clean) training lines to fit a line model.
MIN_LINES = 30
#: Fewest defect-inducing training changes with a buggy line.
MIN_CHANGES = 10

_WS = re.compile(r"\s+")
_DEF = re.compile(r"^(?:async\s+)?(?:def|class|function|func|fn|fun|sub|procedure)\b")
_CALL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\s*\(")
_ASSIGN = re.compile(r"^[A-Za-z_][\w.\[\]'\", ]*\s*(?:[-+*/%|&^]|//|\*\*|<<|>>)?=(?!=)")
_CONDITION = re.compile(
    r"^(?:\}\s*)?(?:if|elif|else|elsif|unless|while|for|foreach|case|match|switch|when|assert)\b"
)
_EXIT = re.compile(r"^(?:return|raise|throw|yield|break|continue|panic)\b")
_STRING = re.compile(r"[\"'`]")
_NUMBER = re.compile(r"(?<![A-Za-z_])\d")


def norm(text: str) -> str:
    """A line's text as SZZ's samples are compared: whitespace removed."""
    return _WS.sub("", text)


def dense_features(line: AddedLine, file_lines: int) -> list[float]:
    """:data:`FEATURES` of one added line, whose file adds ``file_lines`` ranked lines."""
    t = line.text
    definition = bool(_DEF.match(t))
    return [
        math.log1p(len(line.tokens)),
        math.log1p(len(t)),
        float(line.control),
        min(line.indent / 4.0, 10.0),
        float(definition),
        float(t.startswith("@")),
        float(not definition and bool(_CALL.search(t))),
        float(bool(_ASSIGN.match(t))),
        float(bool(_CONDITION.match(t))),
        float(bool(_EXIT.match(t))),
        float(bool(_STRING.search(t))),
        float(bool(_NUMBER.search(t))),
        float(line.new_file),
        float(line.hunk_old > 0),
        math.log1p(line.hunk_new),
        math.log1p(file_lines),
    ]


def change_features(lines: Sequence[AddedLine]) -> np.ndarray:
    """The dense features of a change's ranked lines (rows in ``lines`` order)."""
    per_file = Counter(ln.path for ln in lines)
    if not lines:
        return np.zeros((0, len(FEATURES)))
    return np.array([dense_features(ln, per_file[ln.path]) for ln in lines], dtype=float)


@dataclass
class LineModel:
    """A fitted line model: a line's score is ``intercept`` + its dense features x
    ``weights`` + the sum of its distinct tokens' ``token_weights``."""

    intercept: float
    weights: dict[str, float]
    token_weights: dict[str, float]
    trained_on: dict[str, Any] = field(default_factory=dict)

    def score(self, lines: Sequence[AddedLine]) -> np.ndarray:
        """Log-odds of each line being buggy (rows in ``lines`` order)."""
        if not lines:
            return np.zeros(0)
        w = np.array([self.weights.get(f, 0.0) for f in FEATURES])
        base = change_features(lines) @ w + self.intercept
        tw = self.token_weights
        return base + np.array([sum(tw.get(t, 0.0) for t in ln.tokens) for ln in lines])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (weights to 6 decimals; tokens weighing less left out)."""
        return {
            "intercept": round(self.intercept, 6),
            "weights": {k: round(v, 6) for k, v in self.weights.items()},
            "token_weights": {
                k: round(v, 6) for k, v in self.token_weights.items() if abs(v) >= 5e-7
            },
            "trained_on": self.trained_on,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LineModel:
        """The model :meth:`to_dict` wrote; a :class:`ValueError` (or ``KeyError``,
        ``TypeError``) when ``d`` is not one."""
        return cls(
            float(d["intercept"]),
            {str(k): float(v) for k, v in d["weights"].items() if k in FEATURES},
            {str(k): float(v) for k, v in d["token_weights"].items()},
            dict(d.get("trained_on", {})),
        )


# -- training data ---------------------------------------------------------------------------


@dataclass
class LabelledChange:
    """The ranked added lines of one defect-inducing change and which of them are buggy
    (1), clean (0) or unlabelled (-1), by the links known then."""

    sha: str
    lines: list[AddedLine]
    y: np.ndarray


def link_table(links: pd.DataFrame, fix_time: Mapping[str, pd.Timestamp]) -> pd.DataFrame:
    """The SZZ links that label lines (kept, with a sample), with their fix's time (links
    whose fix time is unknown are left out)."""
    keep = links["dropped"].isna() & (links["source"] == "szz")
    out = links.loc[keep, ["fix_sha", "inducing_sha", "path", "lines", "sample"]].copy()
    out["fix_time"] = out["fix_sha"].map(fix_time)
    return out[out["fix_time"].notna()].reset_index(drop=True)


def label_lines(
    sha: str, lines: Sequence[AddedLine], links: pd.DataFrame, cutoff: pd.Timestamp | None
) -> LabelledChange:
    """Label a change's lines by its ``links`` (rows of :func:`link_table` for ``sha``)
    whose fix came before ``cutoff`` (all of them when None)."""
    texts: dict[str, set[str]] = {}
    partial: set[str] = set()
    for r in links.itertuples(index=False):
        if cutoff is not None and not r.fix_time < cutoff:
            continue
        sample = [norm(str(t)) for t in (r.sample if r.sample is not None else [])]
        texts.setdefault(r.path, set()).update(t for t in sample if t)
        if int(r.lines) > len(sample):
            partial.add(r.path)
    y = np.zeros(len(lines), dtype=int)
    for i, ln in enumerate(lines):
        if norm(ln.text) in texts.get(ln.path, ()):
            y[i] = 1
        elif ln.path in partial:
            y[i] = -1
    return LabelledChange(sha, list(lines), y)


def read_change_lines(
    repo: Any, sha: str, is_source: Callable[[str], bool], diff_flags: Sequence[str]
) -> list[AddedLine] | None:
    """A commit's ranked added lines (None when git cannot diff it against its parent)."""
    try:
        diff = repo.run("diff", *diff_flags, f"{sha}^", sha)
    except Exception:
        return None
    return [ln for ls in parse_added_lines(diff, is_source).values() for ln in ls]


# -- fitting ---------------------------------------------------------------------------------


def fit_line_model(
    changes: Iterable[LabelledChange],
    *,
    c: float = C,
    min_df: int = MIN_DF,
    tokens: bool = True,
    features: bool = True,
    pairwise: bool = True,
    max_pairs: int = MAX_PAIRS,
    seed: int = 0,
    anchor: float = ANCHOR,
) -> LineModel | None:
    """Fit the line model on labelled changes (only those with a buggy line; unlabelled
    lines left out); None when there are too few buggy or clean lines.

    ``pairwise`` (the default): the model learns to order the lines *within* a change, as
    it is used: a logistic regression without intercept on the differences between a
    buggy and a clean line of the same change (both ways round; up to ``max_pairs`` pairs
    per change, drawn at random, each change weighing the same). What sets whole changes
    apart (a small change has a larger share of buggy lines) cannot enter it. Else
    (pointwise) a plain logistic regression on the lines, each change weighing the same."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    kept_changes: list[tuple[list[AddedLine], np.ndarray, np.ndarray]] = []
    n_lines = n_buggy = 0
    for ch in changes:
        keep = ch.y >= 0
        if not (ch.y == 1).any() or not (ch.y[keep] == 0).any():
            continue
        feats = change_features(ch.lines)
        kept = [ln for ln, k in zip(ch.lines, keep, strict=True) if k]
        kept_changes.append((kept, feats[keep], ch.y[keep]))
        n_lines += len(kept)
        n_buggy += int(ch.y[keep].sum())
    if len(kept_changes) < MIN_CHANGES or n_buggy < MIN_LINES or (n_lines - n_buggy) < MIN_LINES:
        return None
    rows = [ln for kept, _f, _y in kept_changes for ln in kept]
    X_dense = np.vstack([f for _k, f, _y in kept_changes])
    y = np.concatenate([yy for _k, _f, yy in kept_changes])
    mean, std = X_dense.mean(axis=0), X_dense.std(axis=0)
    std[std == 0] = 1.0
    # the number of tokens (the heuristic order) is penalised ``anchor``^2 times less than
    # the rest: with little to learn from, the model stays close to that order
    scale = np.ones(len(FEATURES))
    scale[FEATURES.index("tokens")] = anchor
    std = std / scale
    blocks = []
    if features:
        blocks.append(sparse.csr_matrix((X_dense - mean) / std))
    vocab: list[str] = []
    if tokens:
        df = Counter(t for ln in rows for t in ln.tokens)
        vocab = sorted(t for t, n in df.items() if n >= min_df)
        index = {t: i for i, t in enumerate(vocab)}
        indptr: list[int] = [0]
        indices: list[int] = []
        for ln in rows:
            indices.extend(index[t] for t in ln.tokens if t in index)
            indptr.append(len(indices))
        blocks.append(
            sparse.csr_matrix(
                (np.ones(len(indices)), np.asarray(indices, dtype=np.int64), np.asarray(indptr)),
                shape=(len(rows), len(vocab)),
            )
        )
    X = sparse.hstack(blocks).tocsr()
    if pairwise:
        rng = np.random.default_rng(seed)
        first: list[int] = []
        second: list[int] = []
        wts: list[float] = []
        at = 0
        for kept, _f, yy in kept_changes:
            bug = np.flatnonzero(yy == 1) + at
            clean = np.flatnonzero(yy == 0) + at
            at += len(kept)
            pairs = [(int(b), int(c_)) for b in bug for c_ in clean]
            if len(pairs) > max_pairs:
                pick = rng.choice(len(pairs), size=max_pairs, replace=False)
                pairs = [pairs[i] for i in pick]
            first.extend(p[0] for p in pairs)
            second.extend(p[1] for p in pairs)
            wts.extend([1.0 / len(pairs)] * len(pairs))
        D = X[np.asarray(first)] - X[np.asarray(second)]
        Xf = sparse.vstack([D, -D]).tocsr()
        yf = np.concatenate([np.ones(D.shape[0], dtype=int), np.zeros(D.shape[0], dtype=int)])
        w = np.concatenate([wts, wts])
        lr = LogisticRegression(C=c, solver="liblinear", fit_intercept=False, max_iter=1000)
    else:
        Xf, yf = X, y
        w = np.concatenate([np.full(len(k), 1.0 / len(k)) for k, _f, _y in kept_changes])
        lr = LogisticRegression(C=c, solver="liblinear", max_iter=1000)
    w = np.asarray(w, dtype=float)
    lr.fit(Xf, yf, sample_weight=w * len(w) / w.sum())
    coef = lr.coef_[0]
    intercept = float(lr.intercept_[0]) if not pairwise else 0.0
    weights: dict[str, float] = {}
    k = 0
    if features:
        scaled = coef[: len(FEATURES)] / std
        weights = {f: float(v) for f, v in zip(FEATURES, scaled, strict=True)}
        intercept -= float((scaled * mean).sum())
        k = len(FEATURES)
    token_weights = {t: float(v) for t, v in zip(vocab, coef[k:], strict=True) if v != 0.0}
    if pairwise:
        # a line's score is then relative to the other lines of its change; the intercept
        # puts the average training line at the buggy lines' share of the training lines
        # (its score a log-odds only roughly: the ranking is what was learned)
        share = n_buggy / n_lines
        avg = float(X_dense.mean(axis=0) @ np.array([weights.get(f, 0.0) for f in FEATURES]))
        avg += float(np.mean([sum(token_weights.get(t, 0.0) for t in ln.tokens) for ln in rows]))
        intercept = math.log(share / (1 - share)) - avg
    return LineModel(
        intercept,
        weights,
        token_weights,
        {
            "changes": len(kept_changes),
            "lines": n_lines,
            "buggy_lines": n_buggy,
            "tokens": len(vocab),
            "c": c,
            "objective": "pairwise" if pairwise else "pointwise",
        },
    )


def fit_from_history(
    repo: Any,
    frame: pd.DataFrame,
    links: pd.DataFrame,
    is_source: Callable[[str], bool],
    diff_flags: Sequence[str],
    cutoff: pd.Timestamp | None = None,
) -> LineModel | None:
    """The line model of a repository's history: the added lines of every change ``links``
    blames (``szz_links.parquet``), labelled by the links whose fix (found in ``frame``,
    by its author time) came before ``cutoff`` (all of them when None); None when too few
    lines are labelled. Reads one ``git diff`` per such change."""
    when = dict(zip(frame["sha"], frame["author_time"], strict=True))
    table = link_table(links, when)
    labelled = []
    for sha, g in table.groupby("inducing_sha", sort=False):
        t = when.get(sha)
        if t is None or (
            cutoff is not None and not (t < cutoff and (g["fix_time"] < cutoff).any())
        ):
            continue
        lines = read_change_lines(repo, str(sha), is_source, diff_flags)
        if lines:
            labelled.append(label_lines(str(sha), lines, g, cutoff))
    return fit_line_model(labelled)
