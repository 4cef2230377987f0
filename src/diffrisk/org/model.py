"""The org model: one model trained on the pooled repositories of a manifest.

Candidates are model kinds (``logistic``, ``hgb``, ...) times a *weighting* of the
repositories:

* ``pooled``: every labelled change counts once (a large repository weighs the most);
* ``balanced``: per-repository normalisation of the training sample: each repository
  contributes the same number of changes (the median repository's; larger ones are
  sampled without replacement, smaller ones repeated), so one large history does not
  decide what "risky" means for the rest.

Each candidate is evaluated two ways, each fit a Dask task when an engine is given:

* **leave one repository out** (LORO): trained on the other repositories, tested on the
  held-out one's labelled changes (with more than :data:`MAX_LORO` repositories, they
  are held out in :data:`LORO_GROUPS` groups);
* **in time order**: rolling-origin folds over the pooled history
  (:func:`diffrisk.training.evaluate.time_folds`: the same gap, and labels as known at
  each fold's start), scored per repository on the test changes.

The candidate with the best mean LORO ROC-AUC (over the repositories whose held-out
changes hold both classes) is fitted on every labelled change and saved in
``ROOT/models`` (:class:`diffrisk.model.registry.ModelRegistry`) with ``source = "org"``;
:func:`install` copies it into a repository's data directory, where ``diffrisk score``
uses it as that repository's model.

Per-repository normalisation of the *features* is left out on purpose: ``score`` judges
a change by its own features, with no per-repository statistics at hand. What it does
normalise per repository is the level: by rank among the repository's own past-year
changes (``score.levels = "rank"``), so the same share of changes is high risk in every
repository whatever the org model's calibration there.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from diffrisk.config import Config
from diffrisk.errors import DataError, DiffriskError, TooLittleHistoryError
from diffrisk.org.manifest import RepoSpec
from diffrisk.org.tasks import RepoLayout, repo_config, repo_path

DEFAULT_KINDS = ("logistic", "hgb")
WEIGHTINGS = ("pooled", "balanced")
BASELINE = ("la", "pooled")
MODELS_DIR = "models"
#: Up to this many repositories, each is held out on its own; more, in groups.
MAX_LORO = 20
LORO_GROUPS = 10
#: A repository's held-out figures need this many of each class.
MIN_CLASS = 5
SEED = 0
PFIX = False  # across projects PFIX's weight came out negative (bench/train_bundled.py)


def models_root(root: str | Path) -> Path:
    return Path(root) / MODELS_DIR


def candidate_name(kind: str, weighting: str) -> str:
    return f"{kind}/{weighting}"


# -- the pooled frame ----------------------------------------------------------------------


def load_pooled(
    specs: Sequence[RepoSpec], root: Path
) -> tuple[pd.DataFrame, dict[str, str], dict[str, str]]:
    """Every repository's labelled training frame with a ``repository`` column, pooled
    and sorted by author time; the repositories left out, with why; and each used one's
    training fingerprint."""
    from diffrisk.training.evaluate import eligible_mask
    from diffrisk.training.train import load_training_frame, training_fingerprint

    frames, skipped, prints = [], {}, {}
    for spec in specs:
        lay = RepoLayout(root, spec.name)
        try:
            try:
                cfg = repo_config(spec, repo_path(spec, root))
            except DiffriskError:
                cfg = Config()  # the repository is gone: its stored data still counts
            frame, meta = load_training_frame(lay.data, cfg)
        except DiffriskError as err:
            skipped[spec.name] = err.message
            continue
        elig = eligible_mask(frame)
        if not elig.any():
            skipped[spec.name] = "no labelled change to source files yet"
            continue
        frame = frame.assign(repository=spec.name)
        prints[spec.name] = training_fingerprint(meta, cfg, "org", frame.loc[elig])
        frames.append(frame)
    if not frames:
        raise TooLittleHistoryError(
            "no repository has labelled changes to train on",
            hint="run `diffrisk org mine` and `diffrisk org label` first",
        )
    pooled = pd.concat(frames, ignore_index=True)
    pooled = pooled.sort_values("author_time", kind="stable").reset_index(drop=True)
    return pooled, skipped, prints


def balanced_rows(rows: pd.DataFrame, seed: int = SEED) -> pd.DataFrame:
    """Each repository's rows resampled to the median repository's count (see module)."""
    counts = rows["repository"].value_counts()
    if len(counts) <= 1:
        return rows
    target = max(int(np.median(counts.to_numpy())), 1)
    rng = np.random.default_rng(seed)
    parts = []
    for name in sorted(counts.index):
        idx = np.flatnonzero((rows["repository"] == name).to_numpy())
        if len(idx) >= target:
            pick = rng.choice(idx, size=target, replace=False)
        else:
            pick = np.concatenate([idx, rng.choice(idx, size=target - len(idx), replace=True)])
        parts.append(pick)
    out = rows.iloc[np.sort(np.concatenate(parts))]
    return out.sort_values("author_time", kind="stable")


def fit_candidate(kind: str, weighting: str, rows: pd.DataFrame, code_metrics: bool) -> Any:
    """Fit ``kind`` on ``rows`` (their ``label`` and ``n_fixes``) weighted as asked."""
    from diffrisk.model.estimators import fit_estimator

    if weighting == "balanced":
        rows = balanced_rows(rows)
    rows = rows.sort_values("author_time", kind="stable")
    return fit_estimator(
        kind,
        rows,
        rows["label"].astype(int).to_numpy(),
        rows["n_fixes"].to_numpy(),
        code_metrics=code_metrics,
        pfix=PFIX,
    )


def fit_predict(
    pooled: pd.DataFrame,
    train_idx: np.ndarray,
    train_y: np.ndarray,
    train_counts: np.ndarray,
    test_idx: np.ndarray,
    kind: str,
    weighting: str,
    code_metrics: bool,
) -> np.ndarray | str:
    """One fold (a Dask task): fit on ``train_idx`` with labels ``train_y``, return the
    probabilities of ``test_idx`` (or why the candidate cannot be fitted there)."""
    rows = pooled.iloc[train_idx].assign(label=train_y, n_fixes=train_counts)
    try:
        est = fit_candidate(kind, weighting, rows, code_metrics)
    except DiffriskError as err:
        return err.message
    return np.asarray(est.predict_proba(pooled.iloc[test_idx])[:, 1], dtype=float)


# -- evaluation ----------------------------------------------------------------------------


@dataclass
class Fold:
    what: str  # loro | time
    index: int
    train_idx: np.ndarray
    train_y: np.ndarray
    train_counts: np.ndarray
    test_idx: np.ndarray
    held_out: list[str] = field(default_factory=list)
    window: dict[str, Any] = field(default_factory=dict)


def loro_folds(pooled: pd.DataFrame) -> list[Fold]:
    """Leave-one-repository-out (or leave-a-group-out) folds over the labelled changes."""
    from diffrisk.training.evaluate import eligible_mask

    elig = eligible_mask(pooled)
    names = sorted(pooled.loc[elig, "repository"].unique())
    if len(names) < 2:
        return []
    if len(names) <= MAX_LORO:
        groups = [[n] for n in names]
    else:  # by a hash of the name: stable as repositories come and go
        by: dict[int, list[str]] = {}
        for n in names:
            by.setdefault(int(hashlib.sha256(n.encode()).hexdigest(), 16) % LORO_GROUPS, []).append(
                n
            )
        groups = [by[k] for k in sorted(by)]
    y = pooled["label"].fillna(0).astype(int).to_numpy()
    counts = pooled["n_fixes"].to_numpy()
    repo = pooled["repository"].to_numpy()
    folds = []
    for i, g in enumerate(groups):
        held = np.isin(repo, g)
        tr = np.flatnonzero(elig & ~held)
        te = np.flatnonzero(elig & held)
        folds.append(Fold("loro", i + 1, tr, y[tr], counts[tr], te, held_out=list(g)))
    return folds


def time_order_folds(pooled: pd.DataFrame, cfg: Config) -> list[Fold]:
    """The rolling-origin folds ``diffrisk train`` uses, over the pooled history."""
    from diffrisk.training.evaluate import time_folds

    gap = cfg.train.gap_days if cfg.train.gap_days is not None else cfg.label.verification_days
    try:
        folds = time_folds(pooled, cfg.train.folds, gap)
    except TooLittleHistoryError:
        return []
    return [
        Fold(
            "time",
            f.index,
            f.train_idx,
            f.train_y,
            f.train_counts,
            f.test_idx,
            window={"train_end": f.train_end, "test_start": f.test_start, "test_end": f.test_end},
        )
        for f in folds
        if not f.skipped
    ]


def _metrics(y: np.ndarray, p: np.ndarray, effort: np.ndarray) -> dict[str, Any] | None:
    from diffrisk.training.evaluate import all_metrics

    n_buggy = int(y.sum())
    if n_buggy < MIN_CLASS or len(y) - n_buggy < MIN_CLASS:
        return None
    m = all_metrics(y, p, effort)
    keep = ("roc_auc", "pr_auc", "recall_at_20_effort", "popt", "brier", "capture_at_10", "n")
    return {k: _r(m.get(k)) for k in keep} | {"n_buggy": n_buggy}


def _r(v: Any) -> Any:
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else round(v, 4)


@dataclass
class Scored:
    """One candidate's out-of-sample predictions over a set of folds."""

    pos: list[np.ndarray] = field(default_factory=list)
    prob: list[np.ndarray] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def per_repository(self, pooled: pd.DataFrame, effort: np.ndarray) -> dict[str, Any]:
        if not self.pos:
            return {}
        pos = np.concatenate(self.pos)
        prob = np.concatenate(self.prob)
        y = pooled["label"].fillna(0).astype(int).to_numpy()[pos]
        repo = pooled["repository"].to_numpy()[pos]
        out = {}
        for name in sorted(set(repo)):
            m = repo == name
            out[name] = _metrics(y[m], prob[m], effort[pos][m])
        out["(all)"] = _metrics(y, prob, effort[pos])
        return out


def _mean_auc(per_repo: dict[str, Any]) -> float | None:
    vals = [
        m["roc_auc"]
        for n, m in per_repo.items()
        if n != "(all)" and m is not None and m.get("roc_auc") is not None
    ]
    return round(float(np.mean(vals)), 4) if vals else None


def evaluate_candidates(
    pooled: pd.DataFrame,
    candidates: Sequence[tuple[str, str]],
    folds: Sequence[Fold],
    code_metrics: bool,
    client: Any = None,
) -> dict[str, Scored]:
    """Every candidate on every fold; the fits are Dask tasks when ``client`` is given
    (the pooled frame is sent to each worker once)."""
    jobs = [(c, f) for c in candidates for f in folds]
    if client is not None:
        data = client.scatter(pooled, broadcast=True)
        futs = [
            client.submit(
                fit_predict,
                data,
                f.train_idx,
                f.train_y,
                f.train_counts,
                f.test_idx,
                kind,
                weighting,
                code_metrics,
                pure=False,
                key=f"org-fit-{f.what}{f.index}-{kind}-{weighting}-{time.time_ns()}",
            )
            for (kind, weighting), f in jobs
        ]
        results = client.gather(futs)
    else:
        results = [
            fit_predict(
                pooled, f.train_idx, f.train_y, f.train_counts, f.test_idx, k, w, code_metrics
            )
            for (k, w), f in jobs
        ]
    out: dict[str, Scored] = {candidate_name(*c): Scored() for c in candidates}
    for ((kind, weighting), f), res in zip(jobs, results, strict=True):
        s = out[candidate_name(kind, weighting)]
        if isinstance(res, str):
            s.errors.append(f"{f.what} fold {f.index}: {res}")
            continue
        s.pos.append(f.test_idx)
        s.prob.append(res)
    return out


# -- training ------------------------------------------------------------------------------


@dataclass
class OrgTrainResult:
    status: str  # trained | unchanged
    message: str
    version: str | None
    kind: str | None
    weighting: str | None
    repositories: list[str]
    skipped: dict[str, str]
    n_train: int = 0
    n_buggy: int = 0
    loro: dict[str, Any] = field(default_factory=dict)
    loro_mean: dict[str, float | None] = field(default_factory=dict)
    time_order: dict[str, Any] = field(default_factory=dict)
    time_order_mean: dict[str, float | None] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_org_model(
    specs: Sequence[RepoSpec],
    root: str | Path,
    *,
    kinds: Sequence[str] = DEFAULT_KINDS,
    weightings: Sequence[str] = WEIGHTINGS,
    config: Config | None = None,
    client: Any = None,
    force: bool = False,
) -> OrgTrainResult:
    """Evaluate the candidates (LORO and in time order), fit the best on every labelled
    change of every repository, and save it as the current org model."""
    from diffrisk.data.store import atomic_write_bytes
    from diffrisk.model.estimators import KINDS
    from diffrisk.model.registry import ModelRegistry
    from diffrisk.training.evaluate import effort_of, eligible_mask

    t0 = time.perf_counter()
    cfg = config or Config()
    unknown = [k for k in kinds if k not in KINDS or k == "la"]
    if unknown or not kinds:
        raise DataError(
            f"unknown model kinds {unknown}" if unknown else "no model kind to train",
            hint=f"choose among {', '.join(k for k in KINDS if k != 'la')}",
        )
    bad = [w for w in weightings if w not in WEIGHTINGS]
    if bad or not weightings:
        raise DataError(f"unknown weightings {bad}", hint=f"choose among {', '.join(WEIGHTINGS)}")
    root = Path(root)
    pooled, skipped, prints = load_pooled(specs, root)
    names = sorted(prints)
    cm = False  # the code metrics are off by default when mining; one rule for all
    fingerprint = hashlib.sha256(
        json.dumps(
            {
                "repos": prints,
                "kinds": list(kinds),
                "weightings": list(weightings),
                "train": cfg.train.model_dump(),
            },
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()[:16]
    reg = ModelRegistry(models_root(root))
    same = None if force else _current_with(reg, fingerprint)
    if same is not None:
        return OrgTrainResult(
            "unchanged",
            f"org model {same} was trained on these same repositories and labels "
            "(--force trains anyway)",
            same,
            None,
            None,
            names,
            skipped,
            seconds=time.perf_counter() - t0,
        )
    candidates = [(k, w) for k in kinds for w in weightings] + [BASELINE]
    effort = effort_of(pooled)
    loro = evaluate_candidates(pooled, candidates, loro_folds(pooled), cm, client)
    loro_repo = {c: s.per_repository(pooled, effort) for c, s in loro.items()}
    loro_mean = {c: _mean_auc(v) for c, v in loro_repo.items()}
    ranked = sorted(
        (c for c in candidates if c != BASELINE and loro_mean[candidate_name(*c)] is not None),
        key=lambda c: loro_mean[candidate_name(*c)] or 0.0,
        reverse=True,
    )
    if ranked:
        kind, weighting = ranked[0]
    else:  # fewer than two repositories, or none with both classes held out
        kind, weighting = kinds[0], "pooled"
    chosen = candidate_name(kind, weighting)
    tfolds = time_order_folds(pooled, cfg)
    timed = evaluate_candidates(pooled, [(kind, weighting), BASELINE], tfolds, cm, client)
    time_repo = {c: s.per_repository(pooled, effort) for c, s in timed.items()}
    elig = eligible_mask(pooled)
    rows = pooled.loc[elig]
    est = fit_candidate(kind, weighting, rows, cm)
    md = _metadata(
        kind,
        weighting,
        est,
        rows,
        pooled,
        cfg,
        loro_repo,
        loro_mean,
        time_repo,
        tfolds,
        loro,
        fingerprint,
        skipped,
    )
    version = reg.save(est, md)
    reg.promote(version)
    base = candidate_name(*BASELINE)
    msg = (
        f"org model {version}: {chosen} on {len(names)} repositories "
        f"({len(rows)} labelled changes); mean ROC-AUC leaving one repository out "
        f"{_fmt(loro_mean.get(chosen))} vs lines added {_fmt(loro_mean.get(base))}"
    )
    res = OrgTrainResult(
        "trained",
        msg,
        version,
        kind,
        weighting,
        names,
        skipped,
        n_train=len(rows),
        n_buggy=int(rows["label"].astype(int).sum()),
        loro=loro_repo,
        loro_mean=loro_mean,
        time_order=time_repo,
        time_order_mean={c: _mean_auc(v) for c, v in time_repo.items()},
        seconds=time.perf_counter() - t0,
    )
    atomic_write_bytes(
        models_root(root) / version / "evaluation.json",
        json.dumps(res.to_dict(), indent=2, default=str).encode(),
    )
    return res


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def _current_with(reg: Any, fingerprint: str) -> str | None:
    try:
        cur = reg.current()
        if cur is None or reg.metadata(cur).get("training_fingerprint") != fingerprint:
            return None
        reg.load(cur)
        return str(cur)
    except DiffriskError:
        return None


def _metadata(
    kind: str,
    weighting: str,
    est: Any,
    rows: pd.DataFrame,
    pooled: pd.DataFrame,
    cfg: Config,
    loro_repo: dict[str, Any],
    loro_mean: dict[str, Any],
    time_repo: dict[str, Any],
    tfolds: Sequence[Fold],
    loro: dict[str, Scored],
    fingerprint: str,
    skipped: dict[str, str],
) -> dict[str, Any]:
    from diffrisk.model.contributions import model_reference
    from diffrisk.model.metadata import build_metadata, training_window
    from diffrisk.model.transforms import raw_features

    chosen = candidate_name(kind, weighting)
    base = candidate_name(*BASELINE)
    projects = {}
    for name, g in rows.groupby("repository", sort=True):
        projects[str(name)] = {
            "first_sha": str(g["sha"].iloc[0]),
            "last_sha": str(g["sha"].iloc[-1]),
            "first": pd.Timestamp(g["author_time"].iloc[0]).isoformat(),
            "last": pd.Timestamp(g["author_time"].iloc[-1]).isoformat(),
            "labelable": len(g),
            "buggy": int(g["label"].astype(int).sum()),
        }
    md = build_metadata(
        kind,
        raw_features(kind, False, PFIX),
        code_metrics=False,
        source="org",
        projects=projects,
        training_window=training_window(rows),
        n_train=len(rows),
        n_buggy=int(rows["label"].astype(int).sum()),
        metrics={
            "overall": {"roc_auc": loro_mean.get(chosen)},
            "baseline": {"roc_auc": loro_mean.get(base)},
            "loro": loro_repo.get(chosen, {}),
            "loro_baseline": loro_repo.get(base, {}),
            "loro_mean": loro_mean,
            "time_order": time_repo.get(chosen, {}),
            "time_order_baseline": time_repo.get(base, {}),
            "time_folds": [f.window for f in tfolds],
            "weighting": weighting,
            "rank_metric": "roc_auc",
            "population": "leave-one-repository-out, labelled changes with source files",
            "errors": {c: s.errors for c, s in loro.items() if s.errors},
            "skipped_repositories": skipped,
        },
        reference=model_reference(kind, est, rows, False),
        label_settings=cfg.label.model_dump(),
        vendored=[],
        training_fingerprint=fingerprint,
    ).to_dict()
    md["score_quantiles"] = reference_quantiles(est, pooled)  # kept as an extra key
    md["weighting"] = weighting
    return md


def reference_quantiles(est: Any, pooled: pd.DataFrame) -> list[float]:
    """The org model's reference distribution (``score_quantiles``, what levels by rank
    fall back on in a repository too young to rank by itself): each repository's last
    year scored, their quantiles averaged (each repository weighs the same)."""
    from diffrisk.scoring.ranking import score_quantiles

    per = []
    for _, g in pooled.groupby("repository", sort=True):
        t = pd.to_datetime(g["author_time"], utc=True)
        last = g[t >= t.max() - pd.Timedelta(days=365)]
        if len(last):
            per.append(score_quantiles(np.asarray(est.predict_proba(last)[:, 1], dtype=float)))
    return [round(float(v), 6) for v in np.mean(np.asarray(per), axis=0)] if per else []


# -- using it in a repository ------------------------------------------------------------------


@dataclass
class Installed:
    data_dir: str
    version: str
    promoted: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def install(root: str | Path, data_dir: str | Path, *, force: bool = False) -> Installed:
    """Copy the current org model into ``data_dir``'s registry (``source = "org"``,
    ``origin.org`` naming its version) and make it current there unless the repository
    has a model of its own (``force``: anyway). ``diffrisk score`` then uses it."""
    from diffrisk.data.lock import data_dir_lock
    from diffrisk.data.paths import models_dir
    from diffrisk.model.metadata import ModelMetadata
    from diffrisk.model.registry import ModelRegistry

    org = ModelRegistry(models_root(root))
    if org.current() is None:
        raise DataError(
            f"no org model in {models_root(root)}", hint="run `diffrisk org train` first"
        )
    model = org.load()
    md = {k: v for k, v in model.metadata.items() if k not in _SAVED_KEYS}
    md["source"] = "org"
    md["origin"] = {"org": model.version, "root": str(Path(root).resolve())}
    with data_dir_lock(data_dir, command="diffrisk org install-model", create=True):
        reg = ModelRegistry(models_dir(data_dir))
        cur = reg.current()
        if cur is not None:
            cur_md = ModelMetadata.from_dict(reg.metadata(cur))
            if (cur_md.origin or {}).get("org") == model.version:
                return Installed(
                    str(data_dir),
                    cur,
                    False,
                    f"org model {model.version} is already current ({cur})",
                )
            own = cur_md.source != "org"
        else:
            own = False
        version = reg.save(model.estimator, md)
        promote = cur is None or not own or force
        if promote:
            reg.promote(version)
            msg = f"installed org model {model.version} as {version} (current)"
        else:
            msg = (
                f"saved org model {model.version} as {version}; kept the repository's own "
                f"model {cur} current (--force, or `diffrisk models promote {version}`)"
            )
    return Installed(str(data_dir), version, promote, msg)


_SAVED_KEYS = ("version", "created", "model_file", "sha256", "libraries")
