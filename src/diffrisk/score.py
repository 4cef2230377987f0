"""Scoring a pull request (or any base..head range): one :class:`ScoreResult`.

The result is plain data; :mod:`diffrisk.report` renders it (Markdown, terminal) and
``to_dict()`` is its JSON form.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Factor:
    """One feature's push on the predicted risk (log-odds contribution)."""

    feature: str
    value: float
    contribution: float
    text: str


@dataclass
class FileRisk:
    path: str
    score: float
    reasons: list[str]
    la: int
    ld: int
    past_fixes: int
    cc_added: float | None
    past_changes: int = 0


@dataclass
class CommitRisk:
    sha: str
    subject: str
    probability: float
    level: str


@dataclass
class ScoreResult:
    repo: str
    base: str
    head: str
    probability: float
    level: str  # 'low' | 'medium' | 'high'
    percentile: float | None
    model_version: str
    model_source: str  # 'repository' | 'bundled'
    model_metrics: dict[str, Any]
    features: dict[str, Any]
    factors: list[Factor] = field(default_factory=list)
    files: list[FileRisk] = field(default_factory=list)
    commits: list[CommitRisk] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)
    reviewers: list[tuple[str, int]] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)
    merge_base: str = ""
    author: str = ""
    warnings: list[str] = field(default_factory=list)
    seconds: float | None = None

    @property
    def raised(self) -> list[Factor]:
        """Factors that raised the risk, strongest first."""
        return [f for f in self.factors if f.contribution > 0]

    @property
    def lowered(self) -> list[Factor]:
        """Factors that lowered the risk, strongest first."""
        return [f for f in self.factors if f.contribution < 0]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["reviewers"] = [{"email": e, "changes": n} for e, n in self.reviewers]
        return d
