"""What scoring produces: :class:`ScoreResult` and its parts, and their JSON form.

Plain data with no heavy imports: the report, the gates and the GitHub publisher read
results through this module without loading scikit-learn or the miner.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from diffrisk.errors import DataError
from diffrisk.jsonutil import jsonable


@dataclass
class Factor:
    """One feature's push on the predicted risk (its contribution to the log-odds)."""

    feature: str
    value: float
    contribution: float
    text: str


@dataclass
class RiskyLines:
    """A range of added lines (head version) that drive a file's risk
    (:mod:`diffrisk.scoring.lines`): ``score`` is its best line's score, ``lines`` the
    picked lines' text (stripped), ``tokens`` the names that weigh most, ``reason`` why in
    words; ``basis`` says what ranked them (``tokens``: the model's token weights;
    ``control-flow``: a heuristic, for models that do not weigh lines)."""

    first_line: int
    last_line: int
    score: float
    lines: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    reason: str = ""
    basis: str = ""


@dataclass
class FileRisk:
    """A touched file: ``score`` is the model's probability for this file's change alone."""

    path: str
    score: float
    reasons: list[str]
    la: int
    ld: int
    past_fixes: int
    cc_added: float | None
    past_changes: int = 0
    past_bugs: int = 0
    first_line: int | None = None  # lines an annotation points at (the riskiest added range)
    last_line: int | None = None
    #: The riskiest added lines of this file, best first (empty: none, or not a source file).
    risky_lines: list[RiskyLines] = field(default_factory=list)


@dataclass
class CommitRisk:
    sha: str
    subject: str
    probability: float
    level: str
    author: str = ""
    time: int | None = None  # author time, epoch seconds


@dataclass
class ScoreResult:
    repo: str
    base: str
    head: str
    probability: float
    level: str  # 'low' | 'medium' | 'high'
    percentile: float | None
    model_version: str
    model_source: str  # 'repository' | 'bundled' | 'bundled-chosen'
    model_metrics: dict[str, Any]
    features: dict[str, Any]
    factors: list[Factor] = field(default_factory=list)
    files: list[FileRisk] = field(default_factory=list)
    commits: list[CommitRisk] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)
    reviewers: list[tuple[str, int]] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)
    #: How ``level`` was decided (:class:`diffrisk.scoring.ranking.LevelRule`): ``basis``
    #: (rank or probability), the reference and its shares.
    level_rule: dict[str, Any] = field(default_factory=dict)
    merge_base: str = ""
    author: str = ""
    compared_changes: int = 0  # past-year changes behind ``percentile``
    typical_probability: float | None = None  # mean probability of those changes
    pull_request: int | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float | None = None
    realized: str | None = None  # the model's realized accuracy, once later fixes reveal it
    reviewer_commits: dict[str, str] = field(default_factory=dict)  # email -> a commit of theirs
    #: Hotspot files and commits by risk per changed line (empty when that is the risk
    #: order): what to read first with little time (:func:`~diffrisk.scoring.explain.review_order`).
    review_files: list[str] = field(default_factory=list)
    review_commits: list[str] = field(default_factory=list)
    #: What ranked the files' ``risky_lines``: "tokens" (the model's token weights),
    #: "control-flow" (a heuristic), or "" (no file has any).
    risky_lines_basis: str = ""

    @property
    def raised(self) -> list[Factor]:
        """Factors that raised the risk, strongest first."""
        return [f for f in self.factors if f.contribution > 0]

    @property
    def lowered(self) -> list[Factor]:
        """Factors that lowered the risk, strongest first."""
        return [f for f in self.factors if f.contribution < 0]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; reviewers become ``{"email", "changes"}`` objects."""
        d = jsonable(asdict(self))
        d["reviewers"] = [{"email": e, "changes": int(n)} for e, n in self.reviewers]
        return d


def _build(cls: type, data: Mapping[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def _file_risk(data: Mapping[str, Any]) -> FileRisk:
    f = _build(FileRisk, data)
    f.risky_lines = [
        r if isinstance(r, RiskyLines) else _build(RiskyLines, r) for r in f.risky_lines or []
    ]
    return f


def result_from_dict(data: Mapping[str, Any]) -> ScoreResult:
    """Rebuild a :class:`ScoreResult` from its ``to_dict()`` form (unknown keys ignored)."""
    try:
        d = dict(data)
        d["factors"] = [_build(Factor, f) for f in d.get("factors") or []]
        d["files"] = [_file_risk(f) for f in d.get("files") or []]
        d["commits"] = [_build(CommitRisk, c) for c in d.get("commits") or []]
        d["reviewers"] = [
            (rv["email"], int(rv["changes"])) if isinstance(rv, Mapping) else (rv[0], int(rv[1]))
            for rv in d.get("reviewers") or []
        ]
        return _build(ScoreResult, d)
    except (TypeError, KeyError, ValueError, IndexError) as err:
        raise DataError(
            f"not a diffrisk score result: {err}",
            hint="pass the file written by `diffrisk score --json --output FILE`",
        ) from None


def load_result(path: str | Path) -> ScoreResult:
    """Read a result saved by ``diffrisk score --json --output``."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            f"{p} does not exist", hint="run `diffrisk score --json --output FILE` first"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise DataError(f"cannot read the score result {p}: {err}") from None
    if not isinstance(data, dict) or "probability" not in data or "level" not in data:
        raise DataError(
            f"{p} is not a diffrisk score result",
            hint="pass the file written by `diffrisk score --json --output FILE`",
        )
    return result_from_dict(data)
