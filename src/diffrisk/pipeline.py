"""The whole job in one call: mine, label, train when needed, score a change.

``diffrisk run`` and the root GitHub Action follow these steps; each stage stays a
command of its own (``diffrisk mine``, ``label``, ``train``, ``score``) for users who
compose their own pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from diffrisk.config import Config
from diffrisk.data.paths import models_dir
from diffrisk.errors import ModelError, NothingToScoreError


def model_stale_reason(
    data_dir: str | Path, config: Config | None = None, *, now: datetime | None = None
) -> str | None:
    """Why the repository's model should be (re)trained, or None when it is fresh.

    Stale: there is no current model, it cannot be read (metadata or model file missing,
    damaged or tampered with), or it is older than ``train.max_age_days``.
    """
    from diffrisk.model.metadata import ModelMetadata
    from diffrisk.model.registry import ModelRegistry

    cfg = config or Config()
    reg = ModelRegistry(models_dir(data_dir))
    try:
        cur = reg.current()
        if cur is None:
            return "no model trained on this repository yet"
        meta = ModelMetadata.from_dict(reg.metadata(cur))
        created = meta.created_at
        if created is None:
            raise ValueError(f"its metadata records no time it was made: created={meta.created!r}")
        reg.load(cur)  # checks the model file (sha256, trusted types) as scoring will
    except (ModelError, ValueError) as err:
        return f"the current model cannot be read ({err})"
    age = ((now or datetime.now(timezone.utc)) - created).days
    if age > cfg.train.max_age_days:
        return f"model {cur} is {age} days old (train.max_age_days = {cfg.train.max_age_days})"
    return None


@dataclass
class RunResult:
    mine: Any
    label: Any
    train: Any  # None when the model was fresh
    train_reason: str | None
    score: Any  # None when the change holds nothing to score (``nothing`` says why)
    nothing: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "mine": self.mine.to_dict(),
            "label": self.label.to_dict() if hasattr(self.label, "to_dict") else vars(self.label),
            "train": None if self.train is None else self.train.to_dict(),
            "train_reason": self.train_reason,
            "score": None if self.score is None else self.score.to_dict(),
            "nothing_to_score": self.nothing,
        }


def run(
    repo: str | Path,
    data_dir: str | Path,
    base: str | None,
    head: str,
    config: Config | None = None,
    *,
    pull_request: Any = None,
    progress: Any = None,
) -> RunResult:
    """Mine (incrementally), label, train if the model is stale, and score ``base...head``
    (``base`` None: ``head`` is a root commit, with nothing before it to compare it with)."""
    from diffrisk.labelling.label import label
    from diffrisk.mining.mine import mine
    from diffrisk.scoring.score import score
    from diffrisk.training.train import train

    cfg = config or Config()
    mined = mine(
        repo,
        data_dir,
        config=cfg.mine,
        fixes=cfg.fixes,
        progress=progress,
        source_extensions=cfg.label.source_extensions,
        exclude_paths=cfg.label.exclude_paths,
    )
    labelled = label(repo, data_dir, cfg.label, progress=progress)
    reason = model_stale_reason(data_dir, cfg)
    trained = train(repo, data_dir, cfg) if reason else None
    if base is None:
        return RunResult(
            mined,
            labelled,
            trained,
            reason,
            None,
            f"{head} is the root commit, with no earlier state to compare it with "
            "(the next commits will be scored)",
        )
    try:
        result = score(repo, base, head, data_dir, cfg, pull_request=pull_request)
    except NothingToScoreError as err:  # an empty commit: the rest of the job still ran
        return RunResult(mined, labelled, trained, reason, None, err.message)
    return RunResult(mined, labelled, trained, reason, result)
