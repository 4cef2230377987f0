"""The ``train`` stage: evaluate the candidates in time order, fit the chosen kind on all
labelled history, save it in the registry and promote it by champion/challenger
(:mod:`diffrisk.training.champion`); without enough history, say why and keep what scores.

The estimators are in :mod:`diffrisk.model.estimators`, their preprocessing in
:mod:`diffrisk.model.transforms`, the source-line features in :mod:`diffrisk.features.source`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from diffrisk import __version__
from diffrisk.config import Config
from diffrisk.data.paths import models_dir, refuse_committed
from diffrisk.data.schema import SCHEMA_VERSION
from diffrisk.data.store import atomic_write_bytes, check_repository, load_dataset
from diffrisk.errors import DataError, DiffriskError, TooLittleHistoryError
from diffrisk.features.fixes import RULE_VERSION
from diffrisk.features.vendored import detect, exclude
from diffrisk.git.repo import open_repo
from diffrisk.labelling.label import BLAME_VERSION, load_labels
from diffrisk.model.contributions import model_reference
from diffrisk.model.estimators import KINDS, PRIOR_KIND, anchor_scale, fit_estimator, prior_penalty
from diffrisk.model.metadata import ModelMetadata, build_metadata, training_window
from diffrisk.model.registry import (
    LoadedModel,
    ModelRegistry,
    bundled_files,
    model_card,
)
from diffrisk.model.transforms import CODE_TOKENS, raw_features
from diffrisk.training.champion import champion_score, promotes
from diffrisk.training.evaluate import (
    RANK_METRIC,
    Evaluation,
    as_prior,
    beats,
    bundled_for,
    eligible_mask,
    evaluate,
    prepare_frame,
)


@dataclass
class TrainResult:
    status: str  # 'trained' | 'fallback' | 'unchanged' (the current model saw this history)
    message: str
    kind: str | None = None
    version: str | None = None
    promoted: bool = False
    promotion: str = ""
    n_train: int = 0
    n_buggy: int = 0
    evaluation: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_training_frame(
    data_dir: str | Path, config: Config, repo_path: str | Path | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The mined dataset joined with labels (see :func:`diffrisk.training.evaluate.prepare_frame`), and meta.

    The frame's ``attrs["vendored"]`` lists the vendored directories its source rule
    leaves out. With ``repo_path``, a dataset mined from another repository is refused."""
    ds = load_dataset(Path(data_dir))
    if ds is None:  # pragma: no cover - load_dataset raises without settings
        raise DataError(f"no mined dataset in {data_dir}", hint="run `diffrisk mine` first")
    if repo_path is not None:
        repo = open_repo(repo_path)
        refuse_committed(repo, data_dir)
        check_repository(ds.meta, repo, Path(data_dir))
    labels = load_labels(data_dir)
    vendored = detect(config.label, ds.changes, ds.files)
    frame = prepare_frame(ds.changes, labels, ds.files, exclude(config.label, vendored))
    frame.attrs["vendored"] = vendored
    return frame, ds.meta


def uses_code_metrics(config: Config, frame: pd.DataFrame) -> bool:
    if not config.train.code_metrics:
        return False
    return "cc_delta" in frame.columns and bool(frame["cc_delta"].notna().any())


def fit_final(
    kind: str, frame: pd.DataFrame, code_metrics: bool, prior: Any = None
) -> tuple[Any, pd.DataFrame]:
    """Fit ``kind`` on every labelled, labelable change (final labels), oldest first
    (``prior``: the ``prior`` kind's starting model)."""
    rows = frame[eligible_mask(frame)].sort_values("author_time", kind="stable")
    y = rows["label"].astype(int).to_numpy()
    est = fit_estimator(
        kind,
        rows,
        y,
        rows["n_fixes"].to_numpy(),
        code_metrics=code_metrics,
        prior=as_prior(prior) if kind == PRIOR_KIND else None,
    )
    return est, rows


def train(
    repo_path: str | Path,
    data_dir: str | Path,
    config: Config | None = None,
    *,
    model: str | None = None,
    force: bool = False,
    progress: Any = None,
) -> TrainResult:
    """Evaluate candidates in time order, fit the chosen one, save it and promote it if it is
    at least as good as the current model on the latest fold (or ``force``)."""
    cfg = config or Config()
    kind_opt = model or cfg.train.model
    if kind_opt != "auto" and kind_opt not in KINDS:
        raise DataError(
            f"unknown model kind {kind_opt!r}", hint=f"use auto or one of {', '.join(KINDS)}"
        )
    frame, meta = load_training_frame(data_dir, cfg, repo_path)
    elig = eligible_mask(frame)
    n_buggy = int(frame.loc[elig, "label"].astype(int).sum())
    why = too_little_history(frame, cfg)
    if why is not None:
        return _fallback(data_dir, why, int(elig.sum()), n_buggy)
    try:
        return _train(repo_path, data_dir, cfg, frame, meta, kind_opt, force, progress)
    except TooLittleHistoryError as err:  # e.g. too few changes of one class to calibrate
        return _fallback(data_dir, err.message, int(elig.sum()), n_buggy)


def too_little_history(frame: pd.DataFrame, cfg: Config) -> str | None:
    """Why the labelled changes of ``frame`` cannot train a model yet, else None: fewer
    than ``train.min_buggy`` defect-inducing ones, or no clean one (in a young history
    every change is younger than the verification latency, and only the defect-inducing
    ones, blamed by fixes, have labels)."""
    elig = eligible_mask(frame)
    y = frame.loc[elig, "label"].astype(int)
    n_buggy, n_clean = int(y.sum()), int((y == 0).sum())
    waiting = int(((frame["label_state"] == "unlabelled") & (frame["source_files"] > 0)).sum())
    later = (
        f"; {waiting} more changes to source files are younger than the verification latency "
        f"(label.verification_days = {cfg.label.verification_days}) and not labelled yet"
        if waiting
        else ""
    )
    if n_buggy < cfg.train.min_buggy:
        return (
            f"only {n_buggy} defect-inducing labelled changes "
            f"(train.min_buggy = {cfg.train.min_buggy}){later}"
        )
    if n_clean == 0:
        return f"the {n_buggy} labelled changes are all defect-inducing, none clean{later}"
    return None


def _fallback(data_dir: str | Path, why: str, n_train: int, n_buggy: int) -> TrainResult:
    """No new model: says why, and what scores meanwhile."""
    try:
        current = ModelRegistry(models_dir(data_dir)).current()
    except DiffriskError:
        current = None
    uses = (
        f"scoring keeps model {current}"
        if current
        else "scoring uses the bundled cross-project model"
    )
    return TrainResult(
        status="fallback",
        message=f"not training: {why}; {uses}",
        n_train=n_train,
        n_buggy=n_buggy,
    )


def _train(
    repo_path: str | Path,
    data_dir: str | Path,
    cfg: Config,
    frame: pd.DataFrame,
    meta: dict[str, Any],
    kind_opt: str,
    force: bool,
    progress: Any,
) -> TrainResult:
    """:func:`train` once the history is known to be enough to try."""
    elig = eligible_mask(frame)
    n_buggy = int(frame.loc[elig, "label"].astype(int).sum())
    fingerprint = training_fingerprint(meta, cfg, kind_opt, frame.loc[elig])
    same = None if force else _trained_on(data_dir, fingerprint)
    if same is not None:
        return TrainResult(
            status="unchanged",
            message=(
                f"model {same} was trained on this same history and settings "
                f"({int(elig.sum())} labelled changes, {n_buggy} defect-inducing): nothing new "
                "to learn, no new version saved (--force trains anyway)"
            ),
            version=same,
            n_train=int(elig.sum()),
            n_buggy=n_buggy,
        )
    cm = uses_code_metrics(cfg, frame)
    kinds = list(KINDS) if kind_opt == "auto" else [kind_opt]
    fixed = bundled_candidates(cfg, frame) if kind_opt == "auto" else {}
    prior = bundled_for(frame) if PRIOR_KIND in kinds else None
    if kind_opt == PRIOR_KIND and prior is None:
        raise DataError(
            "the prior model starts from the bundled model, which cannot be used here (it "
            "does not load, or it was trained on this repository's history)",
            hint="choose another kind (train.model, --model), or auto",
        )
    ev = evaluate(
        frame, cfg, kinds=kinds, code_metrics=cm, progress=progress, fixed=fixed, prior=prior
    )
    if ev.chosen is None:
        # a model no fold could test is no better known than the bundled one
        raise TooLittleHistoryError(
            "no time-ordered fold has enough labelled changes to evaluate a model (each needs "
            "5 defect-inducing and 5 clean changes to train on and to test on)"
        )
    kind = ev.chosen if kind_opt == "auto" else kind_opt
    if kind == BUNDLED_CANDIDATE:
        est, metadata = _bundled_copy(
            fixed[BUNDLED_CANDIDATE], ev, meta, cfg, repo_path, frame.attrs.get("vendored", [])
        )
        metadata = metadata.with_fields(training_fingerprint=fingerprint)
        return _register(data_dir, est, metadata, frame, ev, kind, force, len(frame[elig]), n_buggy)
    est, rows = fit_final(kind, frame, cm, prior)
    features = raw_features(kind, cm)
    if kind == PRIOR_KIND and prior is not None:
        # what the bundled model reads, and the token bag
        features = list(dict.fromkeys([*prior.features, CODE_TOKENS]))
    metadata = build_metadata(
        kind,
        features,
        code_metrics=cm,
        training_window=training_window(rows),
        repository_head=meta.get("head"),
        repository=Path(repo_path).resolve().name if repo_path else None,
        n_train=len(rows),
        n_buggy=int(rows["label"].astype(int).sum()),
        metrics=_evaluation_metrics(ev, kind),
        reference=model_reference(kind, est, rows, cm),
        evaluation=_evaluation_record(ev, cfg),
        label_settings=cfg.label.model_dump(),
        vendored=list(frame.attrs.get("vendored", [])),
        training_fingerprint=fingerprint,
    )
    if kind == "anchored":
        # Weight of the non-baseline features chosen by the nested selection (0 = baseline).
        metadata = metadata.with_fields(anchor_scale=anchor_scale(est))
    if kind == PRIOR_KIND and prior is not None:
        # The model it starts from, and how far this repository's rows moved it (C = 0:
        # the bundled model's ranking).
        metadata = metadata.with_fields(
            prior={"bundled": prior.version, "penalty": prior_penalty(est)}
        )
    return _register(
        data_dir, est, metadata, frame, ev, kind, force, len(rows), int(metadata.n_buggy or 0)
    )


def _evaluation_record(ev: Evaluation, cfg: Config) -> dict[str, Any]:
    """How the model was evaluated: folds, gap and each fold's window."""
    return {
        "folds": cfg.train.folds,
        "gap_days": ev.gap_days,
        "fold_windows": ev.to_dict()["folds"],
    }


def training_fingerprint(meta: dict[str, Any], cfg: Config, kind: str, rows: pd.DataFrame) -> str:
    """What a training run depends on: the mined history (its HEAD and the labelled
    ``rows``: each change's sha, label and fix times), the settings, the model kind asked
    for, the dataset schema, the fix rule and blame versions, diffrisk's version and the
    bundled model competing. Equal fingerprints train the same model."""
    try:
        bundled = bundled_files()[1].get("version")
    except DiffriskError:
        bundled = None
    d = {
        "head": meta.get("head"),
        "rows": hashlib.sha256(
            "\n".join(
                f"{sha} {int(lab)} {' '.join(map(str, ts))}"
                for sha, lab, ts in zip(rows["sha"], rows["label"], rows["_fix_times"], strict=True)
            ).encode()
        ).hexdigest(),
        "kind": kind,
        "train": cfg.train.model_dump(),
        "label": cfg.label.model_dump(),
        "fixes": cfg.fixes.model_dump(),
        "mine": cfg.mine.model_dump(),
        "schema": SCHEMA_VERSION,
        "fix_rule": RULE_VERSION,
        "blame": BLAME_VERSION,
        "diffrisk": __version__,
        "bundled": bundled,
    }
    blob = json.dumps(d, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _trained_on(data_dir: str | Path, fingerprint: str) -> str | None:
    """The current model's version when it was trained with this fingerprint, else None."""
    reg = ModelRegistry(models_dir(data_dir))
    try:
        cur = reg.current()
        if cur is None:
            return None
        if ModelMetadata.from_dict(reg.metadata(cur)).training_fingerprint != fingerprint:
            return None
        reg.load(cur)  # a damaged or tampered model file is replaced, not kept
        return cur
    except DiffriskError:
        return None  # an unreadable registry: training says what is wrong with it


#: The name under which the bundled cross-project model competes in ``train``'s evaluation.
BUNDLED_CANDIDATE = "bundled"


def bundled_candidates(cfg: Config, frame: pd.DataFrame | None = None) -> dict[str, Any]:
    """``{"bundled": model}`` when ``train.bundled_candidate`` and the bundled model loads,
    and (given the repository's ``frame``) it was not trained on this repository: a
    repository holding a training project's first or last commit would score it on its
    own training rows."""
    if not cfg.train.bundled_candidate:
        return {}
    # an unusable bundled model is only a candidate fewer
    bundled = bundled_for(frame)
    return {BUNDLED_CANDIDATE: bundled} if bundled is not None else {}


def _evaluation_metrics(ev: Evaluation, kind: str) -> dict[str, Any]:
    """The ``metrics`` a model records: its evaluation next to the baseline's."""
    evd = ev.to_dict()
    vs = evd["models"][kind].get("vs_baseline")
    return {
        "overall": evd["models"][kind]["overall"],
        "folds": evd["models"][kind]["folds"],
        "latest_fold": next((m for m in reversed(evd["models"][kind]["folds"]) if m), None),
        "baseline": evd["models"][ev.baseline]["overall"],
        "unsupervised_effort": evd["unsupervised_effort"]["overall"],
        # the paired bootstrap's interval of the pooled ROC-AUC difference lies above 0
        "beats_baseline": kind != ev.baseline and beats(vs),
        "statement": ev.statement,
        "rank_metric": RANK_METRIC,
        "population": "labelled changes with source files (source_files > 0)",
        # pooled over the test commits (capture_at_5/10/20 among them), next to the baseline's
        "pooled": evd["models"][kind].get("pooled"),
        "baseline_pooled": evd["models"][ev.baseline].get("pooled"),
        "vs_baseline": vs,
        "pooled_over": evd["pooled_over"],
        "bootstrap": evd["bootstrap"],
    }


def _bundled_copy(
    bundled: LoadedModel,
    ev: Evaluation,
    meta: dict[str, Any],
    cfg: Config,
    repo_path: str | Path | None,
    frame_vendored: Sequence[str] = (),
) -> tuple[Any, ModelMetadata]:
    """The bundled model as this repository's model: its estimator and recipe, with the
    repository's evaluation as its metrics and ``origin`` naming the bundled version."""
    bm = bundled.info
    sizes = {k: getattr(bm, k) for k in ("code_metrics", "n_train", "n_buggy") if k in bm.keys}
    metadata = build_metadata(
        bm.kind,
        bm.features,
        **sizes,
        # no training_window: none of this repository's changes trained it, so champion
        # and challenger comparisons may use every test row
        bundled_training_window=bm.training_window,
        origin={"bundled": bundled.version, "projects": sorted(bm.projects or {})},
        reference=bm.reference or {},
        fix_rule_version=bm.fix_rule_version,
        repository_head=meta.get("head"),
        repository=Path(repo_path).resolve().name if repo_path else None,
        metrics=_evaluation_metrics(ev, BUNDLED_CANDIDATE),
        evaluation=_evaluation_record(ev, cfg),
        label_settings=cfg.label.model_dump(),
        vendored=list(frame_vendored),
    )
    return bundled.estimator, metadata


def _register(
    data_dir: str | Path,
    est: Any,
    metadata: ModelMetadata,
    frame: pd.DataFrame,
    ev: Evaluation,
    kind: str,
    force: bool,
    n_train: int,
    n_buggy: int,
) -> TrainResult:
    """Save a new version with its card; promote it by champion/challenger (or ``force``)."""
    reg = ModelRegistry(models_dir(data_dir))
    version = reg.save(est, metadata, None)
    card = model_card(reg.metadata(version))
    atomic_write_bytes(reg.root / version / "MODEL_CARD.md", card.encode())
    current = reg.current()
    if current is None or force:
        reg.promote(version)
        why = "forced (--force)" if current is not None else "first model of this repository"
        promoted = True
    else:
        new, old, how = champion_score(reg, current, frame, ev, kind)
        promoted = promotes(new, old)
        why = (
            f"challenger ROC-AUC {new:.3f} vs current {current} {old:.3f} ({how})"
            if not math.isnan(old)
            else f"current model has no comparable score ({how})"
        )
        if promoted:
            reg.promote(version)
        else:
            why += f"; kept {current} (use --force to promote anyway)"
    return TrainResult(
        status="trained",
        message=ev.statement,
        kind=kind,
        version=version,
        promoted=promoted,
        promotion=why,
        n_train=n_train,
        n_buggy=n_buggy,
        evaluation=ev.to_dict(),
    )
