"""The bundled cross-project model combined with a repository's own history: designs
compared in time order, on the bundled model's training projects (leave one project
out) and on repositories outside them.

    python bench/bench_prior.py --work DIR --train OWNER/NAME=PATH ... --outside PATH ... \\
        [--designs a,b,...] [--only NAME,...] [--outside-prior shipped|lopo-all] \\
        [--evaluate] [--json OUT]

Every repository (a bare mirror or a work tree) is mined (``--no-code-metrics``) and
labelled (SZZ, default settings) into ``--work``/OWNER+NAME, both incremental. The prior
each repository gets is a cross-project model that has not seen it:

* for a ``--train`` project, the bundled recipe (``logistic`` without PFIX, final
  labels, ``bench/train_bundled.py``) fitted on the *other* ``--train`` projects;
* for an ``--outside`` repository, the shipped bundled model (``--outside-prior
  lopo-all`` fits the recipe on every ``--train`` project instead).

Then the time-ordered evaluation of ``diffrisk evaluate`` (5 rolling-origin folds, 90-day
gap, realistic training labels; :func:`diffrisk.training.evaluate.time_folds`) scores each
design on each fold's test commits, fitted on that fold's training rows only. Printed per
repository and design: ROC-AUC pooled over the test commits and the mean over folds, the
pooled difference from the lines-added baseline with its 95% paired-bootstrap interval
(commits resampled within folds, the same 1,000 resamples for every design), capture at
10% (and 5%, 20%) of changes next to the baseline's.

Designs (``--designs``; default: the list below):

``la``, ``bundled``, ``anchored``, ``tokens``   as ``diffrisk train`` has them (``bundled`` =
    the prior, never refitted)
``prior``        the candidate kind ``prior`` (:func:`diffrisk.model.estimators.fit_estimator`):
    the prior's log-odds as an offset plus the bag of tokens of the added code, C = 0.1,
    no class weights, not recalibrated, the token term centred on the training rows
    (``prior-bag-C0.1-raw-centre``)
``prior-C<c>[-raw]``  the offset plus the Kamei and added-line features (standardised),
    C = c, balanced class weights and a Platt sigmoid (:class:`TimeCalibratedClassifier`),
    or with ``-raw`` no class weights and no sigmoid; ``prior-C0-raw`` is the prior with
    this repository's intercept
``prior-kamei``  as ``prior-C<c>``, C chosen in {0, 0.001, ..., 0.1} by the nested
    time-ordered validation (one-standard-error rule toward 0)
``prior-tokens[-C<c>][-raw]``, ``prior-bag[-C<c>][-raw]``, ``prior-kb-C<c>[-raw]``  the offset
    plus the ``tokens`` model's inputs (line counts and bag) / the bag alone / the Kamei
    features and the bag; C = 0.1 unless given
``...-centre``   fitted with an intercept, scored with the repository's term centred on
    its training rows (the prior's base rate kept); ``...-noint``: fitted without one
``stacked``      logistic regression (C = 0.1, balanced) on the standardised prior log-odds
    next to the Kamei and added-line features: the prior's weight is learned, not fixed
``blend``        the prior's and the ``tokens`` model's standardised log-odds averaged, the
    weight of ``tokens`` in {0, 0.25, 0.5, 0.75, 1} chosen by the nested validation
``pooled-w<w>``  the bundled recipe fitted on the other projects' rows (final labels)
    together with the repository's training rows weighted ``w`` (needs ``--train``
    projects; not something ``diffrisk train`` can do, it has no other projects' rows)

A design that cannot be fitted on a fold (``tokens`` below 100 training changes) is
pooled, and compared with ``la``, on the folds it was fitted on.

``--evaluate`` also runs :func:`diffrisk.training.evaluate.evaluate` itself (every kind,
the prior competing as ``bundled``) and reports what ``diffrisk train`` would choose.
"""

# ruff: noqa: E402  (thread limits must be set before numpy loads)
from __future__ import annotations

import os

# The machine is shared: one BLAS/OpenMP thread (set before numpy and scikit-learn load).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import TimeSeriesSplit
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from diffrisk.config import Config
from diffrisk.errors import DataError, DiffriskError
from diffrisk.labelling.label import label
from diffrisk.mining.mine import mine
from diffrisk.model import estimators as E
from diffrisk.model.registry import load_bundled
from diffrisk.training.evaluate import (
    BASELINE,
    bootstrap_auc,
    capture_at,
    eligible_mask,
    evaluate,
    time_folds,
)
from diffrisk.training.evaluate import _difference as difference_record
from diffrisk.training.train import load_training_frame

DEFAULT_DESIGNS = (
    "la",
    "bundled",
    "anchored",
    "tokens",
    "prior",
    "prior-bag-C0.1-raw",
    "prior-C0-raw",
    "prior-tokens-raw",
    "prior-kamei",
    "stacked",
    "blend",
    "pooled-w1",
    "pooled-w10",
)
#: ``prior-kamei``'s penalties, chosen by the nested validation (0 = the prior).
KAMEI_CS = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1)


def _name(arg: str) -> tuple[str, Path]:
    """``owner/name=PATH`` or a path like ``.../owner+name/repo``."""
    if "=" in arg:
        name, path = arg.split("=", 1)
        return name, Path(path)
    p = Path(arg)
    part = p.parent.name if p.name in ("repo", ".git") else p.name
    return part.removesuffix(".git").replace("+", "/"), p


def prepare(name: str, path: Path, work: Path, cfg: Config) -> pd.DataFrame:
    """Mine and label ``path`` into ``work``/OWNER+NAME (incremental); the training frame."""
    data = work / name.replace("/", "+")
    t0 = time.perf_counter()
    if not ((data / "changes.parquet").exists() and (data / "labels.parquet").exists()):
        mine(
            path,
            data,
            rev="HEAD",
            config=cfg.mine.model_copy(update={"code_metrics": False}),
            fixes=cfg.fixes,
            source_extensions=cfg.label.source_extensions,
            exclude_paths=cfg.label.exclude_paths,
        )
        label(path, data, cfg.label)
    frame, _ = load_training_frame(data, cfg, path)
    frame["project"] = name
    elig = eligible_mask(frame)
    print(
        f"{name}: {len(frame)} changes, {int(elig.sum())} labelable, "
        f"{int(frame.loc[elig, 'label'].sum())} defect-inducing ({time.perf_counter() - t0:.0f}s)",
        file=sys.stderr,
    )
    return frame


def _rows(fr: pd.DataFrame) -> pd.DataFrame:
    return fr[eligible_mask(fr)]


def cross_project(frames: dict[str, pd.DataFrame], leave_out: str | None) -> Any:
    """The bundled recipe (``logistic`` without PFIX) on every frame but ``leave_out``."""
    rows = pd.concat([_rows(f) for n, f in frames.items() if n != leave_out]).sort_values(
        "author_time", kind="stable"
    )
    return E.fit_estimator(
        "logistic",
        rows,
        rows["label"].astype(int).to_numpy(),
        rows["n_fixes"].to_numpy(),
        pfix=False,
    )


# ---------------------------------------------------------------------------------------
# Designs. Each: (training rows, realistic labels, fix counts, prior, others' rows) -> a
# fitted model with predict_proba.


def _calibrated(pipe: Any, X: pd.DataFrame, y: np.ndarray) -> Any:
    """``pipe`` in a :class:`TimeCalibratedClassifier`, splits as ``fit_estimator`` picks."""
    splits, n_pos = 3, int(y.sum())
    while splits > 1 and (n_pos < 4 * (splits + 1) or len(y) - n_pos < 4 * (splits + 1)):
        splits -= 1
    est = E.TimeCalibratedClassifier(pipe, cv=TimeSeriesSplit(n_splits=max(splits, 2)))
    try:
        return est.fit(X, y)
    except ValueError:
        est.set_params(cv=TimeSeriesSplit(n_splits=2, test_size=max(len(y) // 3, 1)))
        return est.fit(X, y)


def _own_features(pfix: bool = True) -> Pipeline:
    """Kamei and added-line features, imputed and standardised (the learned models')."""
    return Pipeline(
        [
            ("features", E._kamei_features(False, pfix)),
            ("impute", SimpleImputer(strategy="constant", fill_value=0.0)),
            ("scale", StandardScaler()),
        ]
    )


def _with_prior_column(X: pd.DataFrame, prior: Any = None) -> pd.DataFrame:
    Z = E.kamei_transform(X, pfix=True, code_lines=True, control_lines=True)
    Z["prior"] = E.prior_log_odds(prior, X)
    return Z


class _Blend(ClassifierMixin, BaseEstimator):
    """(1 - a) x the prior's standardised log-odds + a x the tokens model's (both
    standardised on the training rows)."""

    def __init__(self, prior: Any = None, weight: float = 0.5) -> None:
        self.prior = prior
        self.weight = weight

    def __sklearn_clone__(self) -> _Blend:
        return _Blend(self.prior, self.weight)

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> _Blend:
        self.tokens_ = E.fit_estimator("tokens", X, y) if self.weight > 0 else None
        o = E.prior_log_odds(self.prior, X)
        self.o_ = (float(o.mean()), float(o.std()) or 1.0)
        if self.tokens_ is not None:
            t = self.tokens_.decision_function(X)
            self.t_ = (float(t.mean()), float(t.std()) or 1.0)
        self.classes_ = np.array([0, 1])
        return self

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        o = (E.prior_log_odds(self.prior, X) - self.o_[0]) / self.o_[1]
        if self.tokens_ is None:
            return o
        t = (self.tokens_.decision_function(X) - self.t_[0]) / self.t_[1]
        return (1 - self.weight) * o + self.weight * t

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = 1 / (1 + np.exp(-self.decision_function(X)))
        return np.column_stack([1 - p, p])


BLEND_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _blend_weight(X: pd.DataFrame, y: np.ndarray, prior: Any) -> float:
    """:func:`nested_choice` for :class:`_Blend`'s weight, the ``tokens`` model fitted
    once per inner fold (the one-standard-error rule toward the prior)."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y, dtype=int)
    folds = [
        (tr, te)
        for tr, te in E._inner_folds(E._times_of(X), 3, 90.0)
        if len(np.unique(y[tr])) == 2 and len(np.unique(y[te])) == 2 and y[tr].sum() >= 5
    ]
    aucs: dict[float, list[float]] = {w: [] for w in BLEND_WEIGHTS}
    for tr, te in folds:
        try:
            model = _Blend(prior, 1.0).fit(X.iloc[tr], y[tr])
        except DataError:
            continue
        assert model.tokens_ is not None  # weight 1 fits the tokens model
        o = (E.prior_log_odds(prior, X.iloc[te]) - model.o_[0]) / model.o_[1]
        t = (model.tokens_.decision_function(X.iloc[te]) - model.t_[0]) / model.t_[1]
        for w in BLEND_WEIGHTS:
            aucs[w].append(roc_auc_score(y[te], (1 - w) * o + w * t))
    if not aucs[0.0]:
        return 0.0
    mean = {w: float(np.mean(a)) for w, a in aucs.items()}
    se = {w: float(np.std(a) / math.sqrt(len(a))) for w, a in aucs.items()}
    best = max(mean, key=lambda w: mean[w])
    return min(w for w in BLEND_WEIGHTS if mean[w] >= mean[best] - se[best] - 1e-12)


Design = Callable[[pd.DataFrame, np.ndarray, np.ndarray, Any, pd.DataFrame | None], Any]


def design(name: str) -> Design:
    if name in ("la", "anchored", "tokens", "logistic", "poisson", "hgb"):
        return lambda X, y, c, prior, others: E.fit_estimator(name, X, y, c)
    if name == "prior":
        return lambda X, y, c, prior, others: E.fit_estimator(name, X, y, c, prior=prior)
    # -noint: the prior's intercept kept (no intercept fitted); -raw: no class weights and
    # no Platt sigmoid, the fitted log-odds are the probabilities
    # -centre: fitted with an intercept, scored with the repository's term centred on the
    # training rows (the prior's base rate kept)
    centre = name.endswith("-centre")
    name = name.removesuffix("-centre")
    noint = name.endswith("-noint")
    name = name.removesuffix("-noint")
    raw = name.endswith("-raw")
    name = name.removesuffix("-raw")

    def fit(model: Any, X: pd.DataFrame, y: np.ndarray) -> Any:
        model.set_params(fit_intercept=not noint, prior_base_rate=centre)
        if raw:
            return model.set_params(class_weight=None).fit(X, y)
        return _calibrated(model, X, y)

    if name == "prior-kamei":

        def prior_kamei(X, y, c, prior, others):
            C, _ = E.nested_choice(
                lambda v: E.PriorLogisticRegression(prior, _own_features(), C=v), KAMEI_CS, X, y
            )
            return _calibrated(E.PriorLogisticRegression(prior, _own_features(), C=C), X, y)

        return prior_kamei
    if name.startswith("prior-C"):
        C = float(name.removeprefix("prior-C"))
        return lambda X, y, c, prior, others: fit(
            E.PriorLogisticRegression(prior, _own_features(), C=C), X, y
        )
    if name.startswith(("prior-tokens", "prior-bag", "prior-kb")):
        # prior-tokens[-C<c>]: the line counts and the bag of tokens; prior-bag: the bag alone
        C = float(name.split("-C")[1]) if "-C" in name else 0.1
        bag_only = name.startswith("prior-bag")

        def prior_tokens(X, y, c, prior, others):
            if len(y) < E.TOKEN_MIN_ROWS:
                raise DataError(f"fewer than {E.TOKEN_MIN_ROWS} training rows")
            union = E._tokens_pipeline().steps[0][1]
            own = union.transformer_list[1][1] if bag_only else union
            if name.startswith("prior-kb"):  # Kamei and line features next to the bag
                own = FeatureUnion(
                    [("kamei", _own_features()), ("bag", union.transformer_list[1][1])]
                )
            return fit(E.PriorLogisticRegression(prior, own, C=C), X, y)

        return prior_tokens
    if name == "stacked":

        def stacked(X, y, c, prior, others):
            pipe = Pipeline(
                [
                    (
                        "features",
                        FunctionTransformer(
                            _with_prior_column, kw_args={"prior": FrozenEstimator(prior)}
                        ),
                    ),
                    ("impute", SimpleImputer(strategy="constant", fill_value=0.0)),
                    ("scale", StandardScaler()),
                    ("clf", LogisticRegression(class_weight="balanced", max_iter=2000, C=0.1)),
                ]
            )
            return _calibrated(pipe, X, y)

        return stacked
    if name == "blend":

        def blend(X, y, c, prior, others):
            return _calibrated(_Blend(prior, _blend_weight(X, y, prior)), X, y)

        return blend
    if name.startswith("pooled-w"):
        w = float(name.removeprefix("pooled-w"))

        def pooled(X, y, c, prior, others):
            if others is None:
                raise DataError("pooled training needs the other projects' rows")
            rows = pd.concat([others.assign(_w=1.0), X.assign(label=y, _w=w)]).sort_values(
                "author_time", kind="stable"
            )
            yy = rows["label"].astype(int).to_numpy()
            pipe = E.build_estimator("logistic", pfix=False).estimator
            fitted = pipe.fit(rows, yy, clf__sample_weight=rows["_w"].to_numpy())
            # calibrated on the repository's own rows only (ranking is the pooled model's)
            return _Frozen(fitted).calibrate(X, y)

        return pooled
    raise SystemExit(f"unknown design {name!r}")


class _Frozen:
    """A fitted pipeline with a Platt sigmoid fitted on its scores of ``X`` (ranking kept)."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe

    def calibrate(self, X: pd.DataFrame, y: np.ndarray) -> _Frozen:
        from sklearn.calibration import _SigmoidCalibration

        self.cal = _SigmoidCalibration().fit(self.pipe.decision_function(X), y)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = self.cal.predict(self.pipe.decision_function(X))
        return np.column_stack([1 - p, p])


# ---------------------------------------------------------------------------------------


def run_designs(
    frame: pd.DataFrame,
    prior: Any,
    designs: list[str],
    cfg: Config,
    others: pd.DataFrame | None,
) -> dict[str, Any]:
    """Every design on every evaluable fold; pooled figures and intervals against ``la``."""
    gap = cfg.train.gap_days if cfg.train.gap_days is not None else cfg.label.verification_days
    folds = [f for f in time_folds(frame, cfg.train.folds, gap) if not f.skipped]
    y_final = frame["label"].fillna(0).astype(int).to_numpy()
    probs: dict[str, list[np.ndarray | None]] = {d: [] for d in designs}
    seconds: dict[str, float] = dict.fromkeys(designs, 0.0)
    for f in folds:
        Xtr, Xte = frame.iloc[f.train_idx], frame.iloc[f.test_idx]
        for d in designs:
            t0 = time.perf_counter()
            if d == "bundled":
                p = E.prior_log_odds(prior, Xte)
                p = 1 / (1 + np.exp(-p))
            else:
                try:
                    est = design(d)(Xtr, f.train_y, f.train_counts, prior, others)
                except (DataError, ValueError) as err:
                    why = err.message if isinstance(err, DataError) else str(err)
                    print(f"  fold {f.index} {d}: {why}", file=sys.stderr)
                    probs[d].append(None)
                    continue
                p = est.predict_proba(Xte)[:, 1]
            probs[d].append(np.asarray(p, dtype=float))
            seconds[d] += time.perf_counter() - t0
    out: dict[str, Any] = {
        "n": int(sum(len(f.test_idx) for f in folds)),
        "n_buggy": int(sum(f.n_test_buggy for f in folds)),
        "folds": [(int(f.n_test), int(f.n_test_buggy)) for f in folds],
        "designs": {},
    }
    from sklearn.metrics import roc_auc_score

    for d in designs:
        # a design not fitted on every fold is pooled, and compared with la, on its own folds
        mine = [i for i, p in enumerate(probs[d]) if p is not None]
        if not mine:
            continue
        pos = np.concatenate([folds[i].test_idx for i in mine])
        fold_of = np.concatenate([np.full(len(folds[i].test_idx), i) for i in mine])
        y = y_final[pos]
        p = np.concatenate([probs[d][i] for i in mine])
        per_fold = [roc_auc_score(y_final[folds[i].test_idx], probs[d][i]) for i in mine]
        rec: dict[str, Any] = {
            "pooled": float(roc_auc_score(y, p)),
            "mean": float(np.mean(per_fold)),
            "folds": len(mine),
            "per_fold": [round(float(a), 4) for a in per_fold],
            **{f"capture_at_{b}": capture_at(y, p, b / 100) for b in (5, 10, 20)},
            "seconds": round(seconds[d], 1),
        }
        if d != BASELINE and BASELINE in probs:
            base = np.concatenate([probs[BASELINE][i] for i in mine])
            boot = bootstrap_auc(y, {"d": p, "la": base}, fold_of)
            vs = difference_record(y, p, base, fold_of, boot["d"] - boot["la"])
            rec.update(
                difference=vs["difference"],
                ci_low=vs["ci_low"],
                ci_high=vs["ci_high"],
                la_capture_at_10=capture_at(y, base, 0.10),
            )
        out["designs"][d] = rec
    return out


def _f(v: Any, signed: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:+.3f}" if signed else f"{v:.3f}"


def table(name: str, r: dict[str, Any]) -> str:
    base = r["designs"].get(BASELINE, {})
    lines = [
        f"## {name}: {r['n']:,} test commits ({r['n_buggy']:,} defect-inducing), folds "
        + ", ".join(f"{n} ({b})" for n, b in r["folds"]),
        "",
        "| design | pooled | mean | vs la (95% CI) | capture 5 / 10 / 20% (la) | s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for d, m in r["designs"].items():
        vs = (
            "(baseline)"
            if d == BASELINE
            else f"{_f(m.get('difference'), True)} ({_f(m.get('ci_low'), True)} to "
            f"{_f(m.get('ci_high'), True)})"
        )
        cap = " / ".join(_f(m[f"capture_at_{b}"]) for b in (5, 10, 20))
        capb = " / ".join(_f(base.get(f"capture_at_{b}")) for b in (5, 10, 20))
        if m["folds"] != len(r["folds"]):
            vs += f" on {m['folds']} folds (la capture at 10%: {_f(m.get('la_capture_at_10'))})"
        lines.append(
            f"| {d} | {_f(m['pooled'])} | {_f(m['mean'])} | {vs} | {cap} ({capb}) | "
            f"{m['seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def chosen_by_train(frame: pd.DataFrame, prior: Any, cfg: Config) -> dict[str, Any]:
    """What ``diffrisk train`` would do: :func:`evaluate` over every kind, the prior
    competing as ``bundled`` and feeding the ``prior`` kind."""
    ev = evaluate(frame, cfg, fixed={"bundled": _Proba(prior)}, prior=prior)
    d = ev.to_dict()
    ch = d["chosen"]
    m = d["models"][ch]
    base = d["models"][BASELINE]
    vs = m.get("vs_baseline") or {}
    return {
        "chosen": ch,
        "statement": d["statement"],
        "mean": {k: v["overall"].get("roc_auc") for k, v in d["models"].items()},
        "pooled": (m.get("pooled") or {}).get("roc_auc"),
        "la_pooled": (base.get("pooled") or {}).get("roc_auc"),
        "difference": vs.get("difference"),
        "ci_low": vs.get("ci_low"),
        "ci_high": vs.get("ci_high"),
        "capture_at_10": (m.get("pooled") or {}).get("capture_at_10"),
        "la_capture_at_10": (base.get("pooled") or {}).get("capture_at_10"),
        "n": d["pooled_over"].get("n"),
        "n_buggy": d["pooled_over"].get("n_buggy"),
    }


class _Proba:
    """A fitted estimator as a fixed candidate: ``predict_proba(rows)`` -> probabilities."""

    def __init__(self, est: Any) -> None:
        self.est = est

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.est.predict_proba(X)[:, 1], dtype=float)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--train", nargs="*", default=[], help="the bundled model's projects")
    ap.add_argument("--outside", nargs="*", default=[], help="repositories outside them")
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--designs", default=",".join(DEFAULT_DESIGNS))
    ap.add_argument("--only", default="", help="evaluate only these names (comma-separated)")
    ap.add_argument(
        "--outside-prior",
        choices=("shipped", "lopo-all"),
        default="shipped",
        help="prior of an outside repository: the shipped bundled model, or the recipe "
        "fitted on every --train project",
    )
    ap.add_argument("--evaluate", action="store_true", help="also what `diffrisk train` chooses")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    cfg = Config()
    designs = [d for d in args.designs.split(",") if d]
    train = dict(_name(a) for a in args.train)
    outside = dict(_name(a) for a in args.outside)
    frames = {n: prepare(n, p, args.work, cfg) for n, p in {**train, **outside}.items()}
    train_frames = {n: frames[n] for n in train}
    only = {s for s in args.only.split(",") if s}
    results: dict[str, Any] = {}
    for name in frames:
        if only and name not in only:
            continue
        t0 = time.perf_counter()
        if name in train:
            prior = cross_project(train_frames, name)
        elif args.outside_prior == "lopo-all" and train_frames:
            prior = cross_project(train_frames, None)
        else:
            prior = load_bundled().estimator
        others = (
            pd.concat([_rows(f) for n, f in train_frames.items() if n != name])
            if train_frames
            else None
        )
        try:
            r = run_designs(frames[name], prior, designs, cfg, others)
            if args.evaluate:
                r["train"] = chosen_by_train(frames[name], prior, cfg)
        except DiffriskError as err:
            print(f"{name}: {err.message}", file=sys.stderr)
            continue
        r["held_out"] = name in train
        r["seconds"] = round(time.perf_counter() - t0, 1)
        results[name] = r
        print(table(name, r), flush=True)
        if "train" in r:
            print(f"train chooses {r['train']['chosen']}: {r['train']['statement']}\n", flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
