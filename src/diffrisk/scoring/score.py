"""Scoring a pull request (or any base..head range, e.g. a release diff): one :class:`ScoreResult`.

The features come from exactly the code path of mining (:func:`diffrisk.mining.mine.change_row`
over a :class:`~diffrisk.features.history.HistoryState`), so a PR is scored on the same scale the
model was trained on:

1. the history before the PR -- every commit reachable from the merge base of base and
   head -- is replayed from the mined dataset into a ``HistoryState`` (commits the
   dataset lacks are read from git like mining does);
2. the PR squashed into one change (merge base..head, author and time of the head
   commit) gets its row against that history; so does each touched file on its own
   (for the hotspots);
3. each commit of the PR then gets its row, in topological order, against its own
   ancestors, as mining would compute it.

The result is plain data; :mod:`diffrisk.report.render` renders it (Markdown, terminal) and
``to_dict()`` is its JSON form.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from diffrisk.config import Config
from diffrisk.data.datadir import DataDir
from diffrisk.data.outcomes import realized_footer
from diffrisk.data.paths import refuse_committed
from diffrisk.errors import (
    ModelError,
)
from diffrisk.git.repo import MAILMAP_MISSING, open_repo
from diffrisk.hosts.github.events import PullRequest
from diffrisk.jsonutil import jsonable
from diffrisk.levels import MIN_COMPARED, percentile_of
from diffrisk.scoring.analysis import LABEL_COLUMNS, analyze, past_year
from diffrisk.scoring.ranking import level_rule
from diffrisk.scoring.result import CommitRisk, ScoreResult

#: "Every mined change in the history": the reference of a repository too quiet to rank
#: by its past year alone.
HISTORY_DAYS = 365 * 200


def _predict(model: Any, df: pd.DataFrame) -> np.ndarray:
    if df.empty:
        return np.zeros(0)
    try:
        return np.asarray(model.predict_proba(df), dtype=float).reshape(-1)
    except (KeyError, ValueError, TypeError) as err:
        raise ModelError(
            f"model {getattr(model, 'version', '?')} cannot score these changes ({err})",
            hint="retrain with `diffrisk train` (the dataset and model features differ)",
        ) from None


def _feature_dict(row: pd.Series) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if k == "code_tokens":
            continue  # up to thousands of words: the factors name the ones that matter
        if k == "author_time":
            out[k] = pd.Timestamp(v).isoformat()
        elif isinstance(v, np.ndarray):
            out[k] = [int(x) for x in v]
        else:
            out[k] = v
    return jsonable(out)


def score(
    repo_path: str | Path,
    base: str,
    head: str,
    data_dir: str | Path | None = None,
    config: Config | None = None,
    *,
    model: Any = None,
    pull_request: PullRequest | None = None,
    progress: Callable[[str], None] | None = None,
) -> ScoreResult:
    """Score the change ``base...head`` of the repository at ``repo_path``.

    ``model`` defaults to :func:`diffrisk.model.registry.load_model` (the repository's current
    model, else the bundled one). ``pull_request`` (from :func:`pull_request_from_event`)
    supplies the PR's title and body for the fix and issue features.
    """
    from diffrisk.scoring import explain

    t0 = time.perf_counter()
    cfg = config or Config()
    scfg = cfg.score
    # authors as the base's .mailmap maps them: a PR's own .mailmap does not count
    repo = open_repo(repo_path).with_mailmap(base)
    data = DataDir.of(repo_path, data_dir)
    refuse_committed(repo, data.root)
    dataset = data.dataset()
    # labels join by sha: those of an older mining still label the commits they name
    labels = data.labels(required=False, columns=LABEL_COLUMNS, stale_ok=True)
    if model is None:
        from diffrisk.model.registry import load_model

        model = load_model(data.root)
    if progress:
        progress("features")
    a = analyze(
        repo,
        base,
        head,
        dataset,
        cfg,
        title=pull_request.title if pull_request and pull_request.title else None,
        body=pull_request.body if pull_request else "",
        labels=labels,
    )
    if progress:
        progress("model")
    p = float(_predict(model, a.pr_row)[0])
    past = past_year(a, dataset, a.label_config)
    past_scores = _predict(model, past)
    meta = getattr(model, "metadata", {}) or {}
    rule = level_rule(
        scfg,
        past_scores,
        lambda: _predict(model, past_year(a, dataset, a.label_config, days=HISTORY_DAYS)),
        meta.get("score_quantiles"),
    )
    level = rule.level(p)
    percentile = rule.percentile(p) if rule.basis == "rank" else percentile_of(p, past_scores)
    file_scores = _predict(model, a.file_rows)
    commit_scores = _predict(model, a.commit_rows)
    try:
        contrib = model.contributions(a.pr_row)
    except (KeyError, ValueError, TypeError) as err:
        raise ModelError(
            f"model {getattr(model, 'version', '?')} cannot explain this change ({err})"
        ) from None

    pr = a.pr_row.iloc[0]
    ctx = explain.Context.of(a)
    if "code_tokens" in contrib.columns:
        from diffrisk.model.contributions import top_tokens

        ctx.tokens = top_tokens(getattr(model, "estimator", None), a.pr_row)
    factors = explain.factors(contrib.iloc[0], pr, ctx, scfg.top_factors)
    files = explain.hotspots(a, file_scores, scfg.top_files)
    for f in files:
        f.first_line, f.last_line = a.added_ranges.get(f.path, (None, None))
    from diffrisk.scoring.lines import add_risky_lines

    risky_basis = add_risky_lines(repo, a, files, getattr(model, "estimator", None))
    commits = [
        CommitRisk(
            str(r.sha),
            str(r.subject),
            float(s),
            rule.level(float(s)),
            author=str(r.author_email),
            time=int(pd.Timestamp(r.author_time).timestamp()),
        )
        for r, s in zip(a.commit_rows.itertuples(index=False), commit_scores, strict=True)
    ]
    commits.sort(key=lambda c: -c.probability)
    commit_lines = {
        str(r.sha): int(r.la) + int(r.ld) for r in a.commit_rows.itertuples(index=False)
    }
    review_files = explain.review_order((f.path, f.score, f.la + f.ld) for f in files)
    review_commits = explain.review_order(
        (c.sha, c.probability, commit_lines.get(c.sha, 0)) for c in commits
    )
    reviewers = explain.reviewers(a)
    reviewer_shas = explain.reviewer_commits(a, [e for e, _n in reviewers])
    advice = explain.advice(a, reviewers, a.label_config) if level == "high" else []

    warnings = []
    if a.history.computed:
        warnings.append(
            f"{a.history.computed} commits before this change are not in the mined dataset; "
            "they were read from git (run `diffrisk mine` to keep the dataset current)"
        )
    if bool(pr.get("huge", False)):
        warnings.append(
            f"a huge change ({int(pr['nf'])} files, {int(pr['la']) + int(pr['ld'])} lines): the model has "
            "seen few changes like it, so treat the score as a rough guide; a change this size is "
            "safer reviewed in parts"
        )
    from diffrisk.config import pull_request_notes

    warnings.extend(pull_request_notes(cfg, a.head))
    if repo.mailmap_missing:
        warnings.append(MAILMAP_MISSING)
    return ScoreResult(
        repo=str(repo_path),
        base=a.base,
        head=a.head,
        probability=p,
        level=level,
        percentile=percentile,
        model_version=str(getattr(model, "version", "")),
        model_source=str(getattr(model, "source", "")),
        model_metrics=jsonable(dict(meta.get("metrics") or {})),
        features=_feature_dict(pr),
        factors=factors,
        files=files,
        commits=commits,
        advice=advice,
        reviewers=reviewers,
        thresholds={"medium": rule.medium, "high": rule.high},
        level_rule=rule.to_dict(),
        merge_base=a.merge_base,
        author=a.author,
        compared_changes=len(past_scores),
        typical_probability=(
            float(np.mean(past_scores)) if len(past_scores) >= MIN_COMPARED else None
        ),
        pull_request=pull_request.number if pull_request else None,
        warnings=warnings,
        seconds=round(time.perf_counter() - t0, 3),
        realized=realized_footer(data.root, cfg),
        reviewer_commits=reviewer_shas,
        review_files=review_files,
        review_commits=review_commits,
        risky_lines_basis=risky_basis,
    )
