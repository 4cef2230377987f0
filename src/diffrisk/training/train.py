"""Model pipelines and fitting: one scikit-learn estimator per candidate kind.

Every candidate takes rows with the ``changes.parquet`` columns and starts with a
``FunctionTransformer`` that applies the field's preprocessing (Kamei et al. 2013):

* LA and LD are divided by LT (lines of the touched files before the change), LT and
  NUC by NF, so that size is relative to the code touched;
* ND and REXP are dropped: ND is near-collinear with NS and NF, REXP with EXP (Kamei
  et al. dropped the same two);
* every count and ratio goes through ``log1p`` (the features are heavily skewed);
* with code metrics, the radon columns are added (signed ``log1p`` of the deltas); they
  are NaN for changes without Python files, which the linear models impute as 0 (no
  change) and the gradient-boosted trees treat as missing.

The candidates:

``logistic``  logistic regression with balanced class weights on standardised features;
``hgb``       ``HistGradientBoostingClassifier`` (balanced class weights);
``poisson``   ``PoissonRegressor`` on the number of fixes blaming a change; the
              probability of at least one fix is ``1 - exp(-mu)``;
``la``        the lines-added baseline (LApredict, Zeng et al. 2021): logistic
              regression on ``log1p`` of lines added to *source* files;
``anchored``  the baseline plus the other features, shrunk toward it: standardised
              features, the non-``la_source`` ones multiplied by a factor ``s`` before an
              L2 logistic regression (a heavier penalty on them); ``s`` is chosen by a
              nested time-ordered validation inside the training rows, and ``s = 0`` is
              the baseline itself, so the extra features are used only where they helped
              out of time in the training window.

The linear classifiers are fitted on all their training rows and calibrated by Platt's
sigmoid fitted on out-of-time scores (:class:`TimeCalibratedClassifier`: copies fitted on
the older blocks of a ``TimeSeriesSplit`` score the next block); the boosted trees are
the average of those copies, each calibrated on its next block
(``CalibratedClassifierCV(method="sigmoid", ensemble=True)``). Either way calibration
never scores a change with a model fitted on it or on later changes (see docs/model.md).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import posixpath
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import (  # _SigmoidCalibration: Platt's method, as CalibratedClassifierCV's
    CalibratedClassifierCV,
    _SigmoidCalibration,
)
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, PoissonRegressor
from sklearn.model_selection import TimeSeriesSplit
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer, Normalizer, StandardScaler
from sklearn.utils.validation import check_is_fitted

from diffrisk.config import MODEL_KINDS, Config, LabelConfig
from diffrisk.errors import DataError, DiffriskError, TooLittleHistoryError
from diffrisk.labelling.szz import ANNOTATIONS, FORMAT

KINDS = MODEL_KINDS

#: Kamei et al.'s change features minus ND and REXP (collinear with NS/NF and EXP); the
#: learned models also get ``la_source`` and PFIX (prior fixes on the touched files).
KAMEI_FEATURES = (
    "ns",
    "nf",
    "entropy",
    "la",
    "ld",
    "lt",
    "fix",
    "ndev",
    "age",
    "nuc",
    "exp",
    "sexp",
)
PFIX = "pfix"
#: Radon columns; NaN when a change touches no (parsable) Python file.
CODE_FEATURES = ("cc_delta", "cc_max_touched", "mi_before", "mi_after", "hv_delta")
#: The baseline's single input: lines added to source files (see :func:`source_lines_added`).
LA_SOURCE = "la_source"
#: Added lines of code in source files (no blank, comment or docstring lines): the added
#: lines SZZ could ever blame (:func:`source_code_lines_added`, :mod:`diffrisk.features.codelines`).
LA_CODE = "la_code"
#: Of those, control-flow lines (branches, loops, exception handling, returns).
LA_CONTROL = "la_control"
#: ``la_control`` of a change whose diff could not be read: this share of its lines of
#: code (control-flow lines were 15-27% of the added code lines of the eight bundled
#: projects).
CONTROL_SHARE = 0.22
#: The columns the ``anchored`` model never shrinks: how much blameable code a change adds.
ANCHORS = (LA_SOURCE, LA_CODE, LA_CONTROL)
#: The distinct tokens of a change's added lines of code (the ``tokens`` model's text input).
CODE_TOKENS = "code_tokens"


def raw_features(kind: str, code_metrics: bool = False, pfix: bool = True) -> list[str]:
    """The ``changes`` columns a candidate reads (its feature schema)."""
    if kind == "la":
        return [LA_SOURCE]
    if kind == "tokens":
        return [*ANCHORS, CODE_TOKENS]
    return [*KAMEI_FEATURES, LA_SOURCE, LA_CODE, LA_CONTROL, *([PFIX] if pfix else [])] + (
        list(CODE_FEATURES) if code_metrics else []
    )


def _num(X: pd.DataFrame, col: str) -> np.ndarray:
    return pd.to_numeric(X[col], errors="coerce").to_numpy(dtype=float)


def _slog1p(v: np.ndarray) -> np.ndarray:
    return np.sign(v) * np.log1p(np.abs(v))


def kamei_transform(
    X: pd.DataFrame,
    code_metrics: bool = False,
    pfix: bool = False,
    code_lines: bool = False,
    control_lines: bool = False,
) -> pd.DataFrame:
    """Kamei preprocessing; output columns keep the raw feature names (transformed values).

    ``pfix``, ``code_lines`` and ``control_lines`` False leave PFIX, LA_CODE and LA_CONTROL
    out: models saved before those were mined store no such argument and must keep their
    columns; new pipelines pass ``True``.
    """
    X = pd.DataFrame(X)
    nf = np.maximum(_num(X, "nf"), 1.0)
    lt = _num(X, "lt")
    lt1 = np.maximum(lt, 1.0)
    out = {
        "ns": np.log1p(_num(X, "ns")),
        "nf": np.log1p(_num(X, "nf")),
        "entropy": _num(X, "entropy"),
        "la": np.log1p(_num(X, "la") / lt1),
        "ld": np.log1p(_num(X, "ld") / lt1),
        "lt": np.log1p(lt / nf),
        "fix": _num(X, "fix"),
        "ndev": np.log1p(_num(X, "ndev")),
        "age": np.log1p(np.maximum(_num(X, "age"), 0.0)),
        "nuc": np.log1p(_num(X, "nuc") / nf),
        "exp": np.log1p(_num(X, "exp")),
        "sexp": np.log1p(_num(X, "sexp")),
        # Absolute size of the source change (LApredict's signal), next to Kamei's relative churn.
        LA_SOURCE: np.log1p(np.maximum(_la_source(X), 0.0)),
    }
    if code_lines:
        code, ctl = _code_counts(X)
        out[LA_CODE] = np.log1p(np.maximum(code, 0.0))
        if control_lines:
            out[LA_CONTROL] = np.log1p(np.maximum(ctl, 0.0))
    if pfix:
        # Rows without the column (mined before schema 2) count as no prior fixes.
        v = _num(X, PFIX) if PFIX in X.columns else np.zeros(len(X))
        out[PFIX] = np.log1p(np.maximum(v, 0.0))
    if code_metrics:
        out["cc_delta"] = _slog1p(_num(X, "cc_delta"))
        out["cc_max_touched"] = np.log1p(np.maximum(_num(X, "cc_max_touched"), 0.0))
        out["mi_before"] = _num(X, "mi_before") / 100.0
        out["mi_after"] = _num(X, "mi_after") / 100.0
        out["hv_delta"] = _slog1p(_num(X, "hv_delta"))
    df = pd.DataFrame(out, index=X.index)
    # No feature may be infinite; NaN only where a value is genuinely missing.
    return df.replace([np.inf, -np.inf], np.nan)


def _la_source(X: pd.DataFrame) -> np.ndarray:
    return _num(X, LA_SOURCE if LA_SOURCE in X.columns else "la")


def _code_counts(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(``la_code``, ``la_control``); unknown counts (mined before schema 3, or git could
    not diff the commit): all source lines count as code, :data:`CONTROL_SHARE` of them
    as control flow."""
    code = _num(X, LA_CODE) if LA_CODE in X.columns else np.full(len(X), np.nan)
    code = np.where(np.isnan(code), _la_source(X), code)
    ctl = _num(X, LA_CONTROL) if LA_CONTROL in X.columns else np.full(len(X), np.nan)
    ctl = np.where(np.isnan(ctl), CONTROL_SHARE * code, ctl)
    return code, ctl


def lines_transform(X: pd.DataFrame) -> pd.DataFrame:
    """``log1p`` of the added-line counts (``la_source``, ``la_code``, ``la_control``),
    as :func:`kamei_transform` computes them: the ``tokens`` model's numeric inputs."""
    X = pd.DataFrame(X)
    code, ctl = _code_counts(X)
    return pd.DataFrame(
        {
            LA_SOURCE: np.log1p(np.maximum(_la_source(X), 0.0)),
            LA_CODE: np.log1p(np.maximum(code, 0.0)),
            LA_CONTROL: np.log1p(np.maximum(ctl, 0.0)),
        },
        index=X.index,
    )


#: The token of a change that adds no code (so the vocabulary is never empty).
NO_TOKENS = "<none>"


def token_text(X: pd.DataFrame) -> np.ndarray:
    """The ``code_tokens`` of each row as text for a bag of words (:data:`NO_TOKENS` when
    there are none)."""
    X = pd.DataFrame(X)
    if CODE_TOKENS not in X.columns:
        return np.full(len(X), NO_TOKENS, dtype=object)
    text = X[CODE_TOKENS].fillna("").astype(str)
    return text.where(text.str.strip() != "", NO_TOKENS).to_numpy(dtype=object)


def la_transform(X: pd.DataFrame) -> pd.DataFrame:
    """``log1p`` of lines added to source files (falls back to all lines added when absent)."""
    X = pd.DataFrame(X)
    col = LA_SOURCE if LA_SOURCE in X.columns else "la"
    return pd.DataFrame({LA_SOURCE: np.log1p(np.maximum(_num(X, col), 0.0))}, index=X.index)


def is_source_path(path: str, cfg: LabelConfig) -> bool:
    """The label stage's source rule: a source extension, and no excluded path pattern."""
    if not path:
        return False
    if not getattr(cfg, "source_only", True):
        return True
    ext = posixpath.splitext(path)[1].lower()
    if ext not in {e.lower() for e in cfg.source_extensions}:
        return False
    # fnmatch's "*" crosses "/", as in diffrisk.labelling.szz.SourceFilter.
    return not any(fnmatch.fnmatchcase(path, pat) for pat in cfg.exclude_paths)


def source_file_mask(files: pd.DataFrame, cfg: LabelConfig) -> pd.Series:
    """File rows the label stage's source rule counts: a source path, not binary."""
    paths = files["path"].astype(str)
    src = {p: is_source_path(p, cfg) for p in pd.unique(paths)}
    mask = paths.map(src).astype(bool)
    if "binary" in files.columns:
        mask &= ~files["binary"].fillna(False).astype(bool)
    return mask


def looked_through(files: pd.DataFrame, cfg: LabelConfig) -> pd.Series:
    """File rows whose change the label stage looks through (``cosmetic``: a reformat with
    ``skip_cosmetic_commits``, an annotation-only change with ``skip_annotation_commits``):
    their added lines can never be blamed, so they count as no lines of code."""
    if "cosmetic" not in files.columns:
        return pd.Series(False, index=files.index)
    kinds = {FORMAT} if cfg.skip_cosmetic_commits else set()
    if cfg.skip_annotation_commits:
        kinds.add(ANNOTATIONS)
    return files["cosmetic"].isin(kinds)


def source_lines_added(files: pd.DataFrame, cfg: LabelConfig) -> pd.Series:
    """Lines added to source files per commit (index: sha), the LApredict baseline's input."""
    if files.empty:
        return pd.Series(dtype="int64", name=LA_SOURCE)
    mask = source_file_mask(files, cfg)
    la = pd.to_numeric(files["la"], errors="coerce").fillna(0).where(mask, 0)
    return la.groupby(files["sha"]).sum().astype("int64").rename(LA_SOURCE)


def source_code_lines_added(
    files: pd.DataFrame, cfg: LabelConfig, column: str = LA_CODE
) -> pd.Series:
    """Added lines of code (or ``column``, e.g. ``la_control``) in source files per commit
    (index: sha); NaN when unknown (no such column, or git could not diff the commit)."""
    if files.empty or column not in files.columns:
        return pd.Series(dtype="float64", name=column)
    mask = source_file_mask(files, cfg)
    # a file change SZZ looks through adds no line it could blame
    code = pd.to_numeric(files.loc[mask, column], errors="coerce").where(
        ~looked_through(files, cfg)[mask], 0.0
    )
    # commits without source files are absent; NaN when none of its source files has a count
    return code.groupby(files.loc[mask, "sha"]).sum(min_count=1).astype("float64").rename(column)


def source_code_tokens(files: pd.DataFrame, cfg: LabelConfig) -> pd.Series:
    """The distinct tokens of the added lines of code in source files per commit (index:
    sha; space-separated, sorted; the label stage's source rule, as ``la_code``)."""
    from diffrisk.features.codelines import join_tokens

    if files.empty or CODE_TOKENS not in files.columns:
        return pd.Series(dtype=object, name=CODE_TOKENS)
    mask = source_file_mask(files, cfg) & files[CODE_TOKENS].notna() & ~looked_through(files, cfg)
    sub = files.loc[mask, ["sha", CODE_TOKENS]]
    return sub.groupby("sha")[CODE_TOKENS].agg(join_tokens).rename(CODE_TOKENS)


def with_code_lines(frame: pd.DataFrame, files: pd.DataFrame, cfg: LabelConfig) -> pd.DataFrame:
    """Add ``la_code`` and ``la_control`` to changes rows: 0 without source files, NaN
    when unknown; and ``code_tokens`` ("" without source files or when unknown)."""
    out = frame.copy()
    for column in (LA_CODE, LA_CONTROL):
        if column not in files.columns:
            out[column] = np.nan
            continue
        per = source_code_lines_added(files, cfg, column)
        has_src = out["sha"].isin(set(per.index))
        out[column] = out["sha"].map(per).where(has_src, 0.0).astype("float64")
    tokens = source_code_tokens(files, cfg)
    out[CODE_TOKENS] = out["sha"].map(tokens).astype(object).fillna("")
    return out


def with_source_lines(changes: pd.DataFrame, files: pd.DataFrame, cfg: LabelConfig) -> pd.DataFrame:
    """Add ``la_source`` (lines added to source files) and ``la_code`` (of them, lines of code)."""
    la = source_lines_added(files, cfg)
    out = changes.copy()
    out[LA_SOURCE] = out["sha"].map(la).fillna(0).astype("int64")
    return with_code_lines(out, files, cfg)


#: Candidate factors for the ``anchored`` model's non-anchor features (0 = the baseline).
ANCHOR_SCALES = (0.0, 0.1, 0.3, 1.0)


def shrink_extras(Z: Any, scale: float = 1.0, anchor: int | Sequence[int] = 0) -> np.ndarray:
    """Multiply every standardised column but the ``anchor`` ones by ``scale`` (heavier L2)."""
    Z = np.array(Z, dtype=float, copy=True)
    anchor = [anchor] if isinstance(anchor, int) else list(anchor)
    keep = Z[:, anchor].copy()
    Z *= scale
    Z[:, anchor] = keep
    return Z


def _inner_folds(
    times: np.ndarray, n_folds: int, gap_days: float
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Rolling-origin (train, test) index pairs over time-sorted ``times`` (ns), with a gap."""
    out = []
    cuts = [np.quantile(times, i / (n_folds + 1), method="lower") for i in range(1, n_folds + 2)]
    cuts[-1] = times.max() + 1
    gap = int(gap_days * 86400e9)
    for i in range(n_folds):
        tr = np.flatnonzero(times < cuts[i] - gap)
        te = np.flatnonzero((times >= cuts[i]) & (times < cuts[i + 1]))
        out.append((tr, te))
    return out


def select_anchor_scale(
    X: pd.DataFrame,
    y: np.ndarray,
    code_metrics: bool = False,
    *,
    pfix: bool = True,
    scales: Sequence[float] = ANCHOR_SCALES,
    n_folds: int = 3,
    gap_days: float = 90.0,
) -> tuple[float, dict[float, float]]:
    """Nested time-ordered choice of the ``anchored`` model's factor on its training rows.

    Rolling-origin folds inside the (time-sorted) training rows, ``gap_days`` between each
    inner train and test period; the factor with the best mean inner ROC-AUC wins, ties
    going to the smaller factor (0 = the baseline) by the one-standard-error rule. Folds
    with one class are skipped.
    """
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y, dtype=int)
    if "author_time" in X.columns:
        times = (
            pd.to_datetime(X["author_time"], utc=True)
            .astype("datetime64[ns, UTC]")
            .astype("int64")
            .to_numpy()
        )
    else:
        times = np.arange(len(X), dtype="int64") * int(86400e9)
    folds = [
        (tr, te)
        for tr, te in _inner_folds(times, n_folds, gap_days)
        if len(np.unique(y[tr])) == 2 and len(np.unique(y[te])) == 2 and y[tr].sum() >= 5
    ]
    if not folds:
        return 0.0, {}
    scores: dict[float, float] = {}
    errors: dict[float, float] = {}
    for s in scales:
        aucs = []
        for tr, te in folds:
            pipe = _anchored_pipeline(s, code_metrics, pfix).fit(X.iloc[tr], y[tr])
            aucs.append(roc_auc_score(y[te], pipe.predict_proba(X.iloc[te])[:, 1]))
        scores[float(s)] = float(np.mean(aucs))
        errors[float(s)] = float(np.std(aucs) / math.sqrt(len(aucs)))
    # One-standard-error rule (Breiman et al.): the smallest factor within one standard
    # error of the best mean, so the extra features must win by more than fold noise.
    best = max(scores, key=lambda s: scores[s])
    bar = scores[best] - errors[best]
    return min(s for s, v in scores.items() if v >= bar - 1e-12), scores


def _kamei_features(code_metrics: bool, pfix: bool) -> FunctionTransformer:
    """The learned models' preprocessing: :func:`kamei_transform` with the line counts."""
    return FunctionTransformer(
        kamei_transform,
        validate=False,
        kw_args={
            "code_metrics": code_metrics,
            "pfix": pfix,
            "code_lines": True,
            "control_lines": True,
        },
    )


def _anchored_pipeline(scale: float, code_metrics: bool = False, pfix: bool = True) -> Pipeline:
    return Pipeline(
        [
            (
                "features",
                _kamei_features(code_metrics, pfix),
            ),
            (
                "impute",
                SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True),
            ),
            ("scale", StandardScaler()),
            (
                "shrink",
                FunctionTransformer(
                    shrink_extras,
                    kw_args={
                        "scale": float(scale),
                        "anchor": [
                            raw_features("anchored", code_metrics, pfix).index(a) for a in ANCHORS
                        ],
                    },
                ),
            ),
            ("clf", LogisticRegression(class_weight="balanced", max_iter=2000, C=0.1)),
        ]
    )


#: Tokens must occur in at least this many training changes to enter the vocabulary.
TOKEN_MIN_DF = 10
#: At most this many tokens (the most frequent) per model.
TOKEN_VOCABULARY = 5000
#: The ``tokens`` model needs at least this many training rows (its vocabulary needs
#: repeated tokens; small histories are left to the other candidates).
TOKEN_MIN_ROWS = 100


def _tokens_pipeline() -> Pipeline:
    """The added-line counts (standardised) next to the bag of tokens of the added code
    (binary, rows scaled to unit length), in one L2 logistic regression (JITLine's
    recipe, Pornprasit and Tantithamthavorn 2021, with a linear model)."""
    return Pipeline(
        [
            (
                "features",
                FeatureUnion(
                    [
                        (
                            "lines",
                            Pipeline(
                                [
                                    ("features", FunctionTransformer(lines_transform)),
                                    (
                                        "impute",
                                        SimpleImputer(
                                            strategy="constant",
                                            fill_value=0.0,
                                            keep_empty_features=True,
                                        ),
                                    ),
                                    ("scale", StandardScaler()),
                                ]
                            ),
                        ),
                        (
                            "tokens",
                            Pipeline(
                                [
                                    ("text", FunctionTransformer(token_text)),
                                    (
                                        "bag",
                                        CountVectorizer(
                                            token_pattern=r"\S+",
                                            lowercase=False,
                                            binary=True,
                                            min_df=TOKEN_MIN_DF,
                                            max_features=TOKEN_VOCABULARY,
                                            dtype=np.float64,
                                        ),
                                    ),
                                    ("norm", Normalizer()),
                                ]
                            ),
                        ),
                    ]
                ),
            ),
            ("clf", LogisticRegression(class_weight="balanced", max_iter=3000, C=0.1)),
        ]
    )


def _token_members(estimator: Any) -> list[tuple[Any, Any, np.ndarray, float]] | None:
    """Per calibration member of a ``tokens`` model: (lines pipeline, tokens pipeline,
    coefficients, Platt slope); None for any other model."""
    out = []
    for pipe, slope in calibrated_members(estimator):
        union = getattr(pipe, "named_steps", {}).get("features")
        if not isinstance(union, FeatureUnion):
            return None
        parts = dict(union.transformer_list)
        coef = pipe.named_steps["clf"].coef_[0]
        out.append((parts["lines"], parts["tokens"], coef, slope))
    return out or None


def token_scores(estimator: Any, X: pd.DataFrame) -> np.ndarray | None:
    """The token block's share of the log-odds per row (Platt slope x token weights x
    the row's token vector, averaged over the calibration members), or None for a model
    without one."""
    members = _token_members(estimator)
    if members is None:
        return None
    total = np.zeros(len(X))
    for _lines, tokens, coef, slope in members:
        total += slope * np.asarray(tokens.transform(X) @ coef[len(ANCHORS) :], dtype=float).ravel()
    return total / len(members)


def top_tokens(estimator: Any, row: pd.DataFrame, n: int = 5) -> list[tuple[str, float]]:
    """The names and keywords of one change that raise (positive) or lower its risk most:
    (token, log-odds contribution), largest magnitude first; [] for a model without
    tokens. Operators and brackets count in the model but name nothing a reader can act
    on, so they are not listed."""
    members = _token_members(estimator) or []
    weights: dict[str, float] = {}
    for _lines, tokens, coef, slope in members:
        vec = tokens.transform(row.iloc[:1]).tocsr()
        w = coef[len(ANCHORS) :]
        names = tokens.named_steps["bag"].get_feature_names_out()
        for j, v in zip(vec.indices, vec.data, strict=True):
            weights[str(names[j])] = weights.get(str(names[j]), 0.0) + slope * w[j] * v / len(
                members
            )
    named = [(t, c) for t, c in weights.items() if c != 0.0 and (t[:1].isalpha() or t[:1] == "_")]
    return sorted(named, key=lambda kv: -abs(kv[1]))[:n]


def anchor_scale(estimator: Any) -> float | None:
    """The factor an ``anchored`` model was fitted with (None for other kinds)."""
    for pipe, _slope in calibrated_members(estimator):
        steps = getattr(pipe, "named_steps", {})
        if "shrink" in steps:
            return float(steps["shrink"].kw_args["scale"])
    return None


class TimeCalibratedClassifier(ClassifierMixin, BaseEstimator):
    """A classifier fitted on all its time-ordered rows, with a Platt sigmoid fitted on
    out-of-time scores: for each split of ``cv`` (default ``TimeSeriesSplit(3)``) a copy
    fitted on the older rows scores the next block, and one sigmoid is fitted on those
    scores together. A flat or decreasing sigmoid is replaced by a nearly flat
    increasing one (calibration never inverts the order); splits whose older rows hold
    one class are skipped, and ``ValueError`` says when no split is left to calibrate on.

    ``CalibratedClassifierCV(cv=TimeSeriesSplit(...))`` averages the copies instead, so
    the newest block of rows, the most like the changes being scored, never trains the
    ranking; its ``ensemble=False`` needs a partition of the rows, which a time-ordered
    split is not.
    """

    def __init__(self, estimator: Any = None, cv: Any = None) -> None:
        self.estimator = estimator
        self.cv = cv

    def fit(self, X: Any, y: Any) -> TimeCalibratedClassifier:
        y = np.asarray(y)
        if not np.isin(y, (0, 1)).all():
            raise ValueError("TimeCalibratedClassifier takes labels 0 and 1")
        y = y.astype(int)
        cv = self.cv if self.cv is not None else TimeSeriesSplit(n_splits=3)
        scores, targets = [], []
        for tr, te in cv.split(X):
            if len(np.unique(y[tr])) < 2:
                continue  # nothing to learn from these older rows; the later splits may do
            part = clone(self.estimator).fit(_take(X, tr), y[tr])
            scores.append(np.asarray(part.decision_function(_take(X, te)), dtype=float))
            targets.append(y[te])
        truth = np.concatenate(targets) if targets else np.zeros(0, dtype=int)
        if len(np.unique(truth)) < 2:
            raise ValueError(
                "no time-ordered split has both classes before and after it to calibrate on"
            )
        self.estimator_ = clone(self.estimator).fit(X, y)
        self.classes_ = np.array([0, 1])
        self.calibrator_ = _SigmoidCalibration().fit(np.concatenate(scores), truth)
        if self.calibrator_.a_ >= 0:
            # out of time the scores ranked the other way round (or not at all): keep
            # the model's order, with probabilities within a hair of the base rate,
            # rather than invert it (scaled by the final model's spread of scores)
            own = self.decision_function(X)
            rate = float(np.clip(truth.mean(), 1e-3, 1 - 1e-3))
            spread = float(np.std(own))
            self.calibrator_.a_ = -1e-3 / spread if spread > 1e-9 else 0.0
            self.calibrator_.b_ = -math.log(rate / (1 - rate)) - self.calibrator_.a_ * float(
                np.mean(own)
            )
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return np.asarray(self.estimator_.decision_function(X), dtype=float)

    def predict_proba(self, X: Any) -> np.ndarray:
        scores = self.decision_function(X)
        p = self.calibrator_.predict(scores)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def _take(X: Any, idx: np.ndarray) -> Any:
    return X.iloc[idx] if hasattr(X, "iloc") else np.asarray(X)[idx]


def calibrated_members(estimator: Any) -> list[tuple[Any, float]]:
    """(fitted pipeline, Platt slope on its decision values) of a calibrated model: one
    for :class:`TimeCalibratedClassifier`, one per member for a ``CalibratedClassifierCV``
    (models saved before 2026-12-03); [] for any other estimator."""
    if isinstance(estimator, TimeCalibratedClassifier) and hasattr(estimator, "estimator_"):
        return [(estimator.estimator_, -float(estimator.calibrator_.a_))]
    members = getattr(estimator, "calibrated_classifiers_", None) or []
    return [(m.estimator, -float(m.calibrators[0].a_)) for m in members]


class PoissonRiskClassifier(ClassifierMixin, BaseEstimator):
    """Poisson regression on a count target (fixes blaming a change) used as a classifier.

    ``fit(X, y)`` takes the counts; ``predict_proba`` gives ``P(N >= 1) = 1 - exp(-mu)``.
    scikit-learn has no standard part that turns a count regressor into a classifier.
    """

    def __init__(self, alpha: float = 1e-2, max_iter: int = 300) -> None:
        self.alpha = alpha
        self.max_iter = max_iter

    def fit(self, X: Any, y: Any) -> PoissonRiskClassifier:
        y = np.asarray(y, dtype=float)
        if np.any(y < 0):
            raise ValueError("counts must be >= 0")
        self.regressor_ = PoissonRegressor(alpha=self.alpha, max_iter=self.max_iter).fit(X, y)
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = self.regressor_.n_features_in_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        mu = self.regressor_.predict(X)
        p = -np.expm1(-mu)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def build_estimator(
    kind: str,
    code_metrics: bool = False,
    *,
    random_state: int = 0,
    calibration_splits: int = 3,
    anchor_scale_value: float = 0.0,
    pfix: bool = True,
) -> Any:
    """An unfitted estimator for ``kind`` (rows: ``changes`` columns, time-ordered);
    ``pfix=False`` leaves PFIX out of its features."""
    if kind not in KINDS:
        raise DataError(f"unknown model kind {kind!r}", hint=f"use one of {', '.join(KINDS)}")
    cv = TimeSeriesSplit(n_splits=calibration_splits)
    if kind == "anchored":
        return TimeCalibratedClassifier(
            _anchored_pipeline(anchor_scale_value, code_metrics, pfix), cv=cv
        )
    if kind == "tokens":
        return TimeCalibratedClassifier(_tokens_pipeline(), cv=cv)
    if kind == "la":
        features = FunctionTransformer(la_transform, validate=False)
    else:
        features = _kamei_features(code_metrics, pfix)
    if kind == "hgb":
        trees = HistGradientBoostingClassifier(
            learning_rate=0.05,
            max_iter=200,
            max_leaf_nodes=15,
            min_samples_leaf=40,
            l2_regularization=1.0,
            class_weight="balanced",
            random_state=random_state,
        )
        # boosted trees vary from fit to fit: the average of the copies fitted on older
        # blocks ranked better than one fit on every row (docs/model.md); linear models
        # the other way round
        return CalibratedClassifierCV(
            Pipeline([("features", features), ("clf", trees)]),
            method="sigmoid",
            cv=cv,
            ensemble=True,
        )
    steps: list[tuple[str, Any]] = [
        ("features", features),
        ("impute", SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True)),
        ("scale", StandardScaler()),
    ]
    if kind == "poisson":
        return Pipeline([*steps, ("clf", PoissonRiskClassifier())])
    steps.append(("clf", LogisticRegression(class_weight="balanced", max_iter=2000, C=0.1)))
    return TimeCalibratedClassifier(Pipeline(steps), cv=cv)


def fit_estimator(
    kind: str,
    X: pd.DataFrame,
    y: Sequence[int] | np.ndarray,
    n_fixes: Sequence[int] | np.ndarray | None = None,
    *,
    code_metrics: bool = False,
    random_state: int = 0,
    pfix: bool = True,
) -> Any:
    """Fit a candidate on time-ordered rows ``X`` (binary ``y``; ``n_fixes`` for ``poisson``)."""
    y = np.asarray(y, dtype=int)
    if len(np.unique(y)) < 2:
        raise TooLittleHistoryError(
            "the training rows hold only one class", hint="label more history before training"
        )
    # Each calibration split needs both classes; fewer splits on small or skewed data.
    splits = 3
    n_pos = int(y.sum())
    while splits > 1 and (n_pos < 4 * (splits + 1) or len(y) - n_pos < 4 * (splits + 1)):
        splits -= 1
    if kind == "tokens" and len(y) < TOKEN_MIN_ROWS:
        raise DataError(
            f"the tokens model needs at least {TOKEN_MIN_ROWS} labelled changes to train on "
            f"(here {len(y)})",
            hint="with model auto the other candidates still compete; else choose another "
            "kind (train.model, --model)",
        )
    scale = 0.0
    if kind == "anchored":
        scale, _ = select_anchor_scale(X, y, code_metrics, pfix=pfix)
    est = build_estimator(
        kind,
        code_metrics,
        random_state=random_state,
        calibration_splits=max(splits, 2),
        anchor_scale_value=scale,
        pfix=pfix,
    )
    if kind == "poisson":
        target = np.asarray(n_fixes if n_fixes is not None else y, dtype=float)
        return est.fit(X, target)
    try:
        return est.fit(X, y)
    except ValueError:
        # A calibration split without both classes: fall back to shuffled-free 2-fold calibration
        # on the newest rows (still time-respecting).
        est.set_params(cv=TimeSeriesSplit(n_splits=2, test_size=max(len(y) // 3, 1)))
        try:
            return est.fit(X, y)
        except ValueError:
            raise TooLittleHistoryError(
                f"too few labelled changes to fit and calibrate a {kind} model "
                f"({n_pos} buggy, {len(y) - n_pos} clean, not spread over time)",
                hint="label more history, or use the bundled model",
            ) from None


def training_medians(
    kind: str, X: pd.DataFrame, code_metrics: bool = False, pfix: bool = True
) -> dict[str, float]:
    """Reference values (training medians of the raw features) for contributions."""
    out = {}
    for col in raw_features(kind, code_metrics, pfix):
        if col == CODE_TOKENS:
            continue  # text: its reference is the mean token score (token_scores)
        src = col if col in X.columns else ("la" if col == LA_SOURCE else col)
        v = pd.to_numeric(X[src], errors="coerce").median() if src in X.columns else np.nan
        out[col] = float(v) if pd.notna(v) else 0.0
    return out


def model_reference(
    kind: str, estimator: Any, X: pd.DataFrame, code_metrics: bool = False
) -> dict[str, float]:
    """:func:`training_medians`, plus for the ``tokens`` model the mean token score of its
    training rows (its token contribution is shown relative to a typical change)."""
    out = training_medians(kind, X, code_metrics)
    scores = token_scores(estimator, X) if kind == "tokens" else None
    if scores is not None and len(scores):
        out[CODE_TOKENS] = float(np.mean(scores))
    return out


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def linear_contributions(est: Any, X: pd.DataFrame) -> pd.DataFrame | None:
    """Per-feature log-odds contributions of a calibrated linear pipeline, or None.

    For each calibration member: Platt slope x coefficient x standardised transformed value
    (the training mean is 0 after ``StandardScaler``), averaged over the members.
    Transformed columns keep their raw feature names.
    """
    members = calibrated_members(est)
    if not members:
        return None
    if isinstance(members[0][0].named_steps.get("features"), FeatureUnion):
        return _tokens_contributions(est, X)
    total = None
    for pipe, slope in members:
        clf = pipe.named_steps.get("clf")
        if not isinstance(clf, LogisticRegression):
            return None
        z = pipe[:-1].transform(X)
        names = list(pipe.named_steps["features"].transform(X.iloc[:1]).columns)
        contrib = slope * np.asarray(z, dtype=float) * clf.coef_[0]
        frame = pd.DataFrame(contrib, columns=names, index=X.index)
        total = frame if total is None else total + frame
    return total / len(members)


def _tokens_contributions(est: Any, X: pd.DataFrame) -> pd.DataFrame:
    """The ``tokens`` model: each added-line count as for linear models, and the token
    block as one column ``code_tokens`` (not centred; see :func:`token_scores`)."""
    members = _token_members(est) or []
    out = pd.DataFrame(0.0, columns=list(ANCHORS), index=X.index)
    for lines, _tokens, coef, slope in members:
        z = np.asarray(lines.transform(X), dtype=float)
        out += slope * z * coef[: z.shape[1]] / len(members)
    scores = token_scores(est, X)
    out[CODE_TOKENS] = scores if scores is not None else 0.0
    return out


def replacement_contributions(
    predict_proba: Any, X: pd.DataFrame, reference: dict[str, float]
) -> pd.DataFrame:
    """Log-odds change when one raw feature at a time is replaced by its training median."""
    base = _logit(predict_proba(X))
    out = {}
    for col, ref in reference.items():
        Xr = X.copy()
        target = col if col in Xr.columns or col != LA_SOURCE else "la"
        Xr[target] = ref
        out[col] = base - _logit(predict_proba(Xr))
    return pd.DataFrame(out, index=X.index)


# ---------------------------------------------------------------------------------------
# The ``train`` stage: evaluate, fit the chosen kind on all labelled history, save, promote.


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
    from diffrisk.data.store import check_repository, load_dataset
    from diffrisk.features.vendored import detect, exclude
    from diffrisk.git.repo import open_repo
    from diffrisk.labelling.label import load_labels
    from diffrisk.training.evaluate import prepare_frame

    ds = load_dataset(Path(data_dir))
    if ds is None:  # pragma: no cover - load_dataset raises without settings
        raise DataError(f"no mined dataset in {data_dir}", hint="run `diffrisk mine` first")
    if repo_path is not None:
        check_repository(ds.meta, open_repo(repo_path), Path(data_dir))
    labels = load_labels(data_dir)
    vendored = detect(config.label, ds.changes, ds.files)
    frame = prepare_frame(ds.changes, labels, ds.files, exclude(config.label, vendored))
    frame.attrs["vendored"] = vendored
    return frame, ds.meta


def _uses_code_metrics(config: Config, frame: pd.DataFrame) -> bool:
    if not config.train.code_metrics:
        return False
    return "cc_delta" in frame.columns and bool(frame["cc_delta"].notna().any())


def fit_final(kind: str, frame: pd.DataFrame, code_metrics: bool) -> tuple[Any, pd.DataFrame]:
    """Fit ``kind`` on every labelled, labelable change (final labels), oldest first."""
    from diffrisk.training.evaluate import eligible_mask

    rows = frame[eligible_mask(frame)].sort_values("author_time", kind="stable")
    y = rows["label"].astype(int).to_numpy()
    est = fit_estimator(kind, rows, y, rows["n_fixes"].to_numpy(), code_metrics=code_metrics)
    return est, rows


def _champion_score(
    reg: Any, version: str, frame: pd.DataFrame, ev: Any, kind: str
) -> tuple[float, float, str]:
    """(challenger, champion) ROC-AUC on the latest fold's test rows the champion never saw."""
    from diffrisk.model.registry import ModelError
    from diffrisk.training.evaluate import RANK_METRIC

    fold = ev.latest_fold()
    challenger = ev.latest_fold_metric(kind)
    try:
        champ = reg.load(version)
    except ModelError as err:
        return challenger, math.nan, f"current model {version} cannot be loaded ({err.message})"
    recorded = ((champ.metadata.get("metrics") or {}).get("latest_fold") or {}).get(RANK_METRIC)
    if fold is None:
        return (
            challenger,
            float(recorded) if recorded is not None else math.nan,
            "recorded latest-fold metric",
        )
    last = (champ.metadata.get("training_window") or {}).get("last_date")
    test = frame.iloc[fold.test_idx]
    fresh = np.ones(len(test), dtype=bool)
    if last:
        fresh = (test["author_time"] > pd.Timestamp(last)).to_numpy()
    y = test["label"].astype(int).to_numpy()[fresh]
    p_new = ev.predictions.get(kind, [None])[fold.index - 1]
    if fresh.sum() >= 20 and len(np.unique(y)) == 2 and p_new is not None:
        from sklearn.metrics import roc_auc_score

        p_old = champ.predict_proba(test[fresh])
        how = (
            f"both on the {int(fresh.sum())} newest test rows the current model was not trained on"
        )
        return float(roc_auc_score(y, p_new[fresh])), float(roc_auc_score(y, p_old)), how
    if recorded is None:
        return challenger, math.nan, "the current model records no latest-fold metric"
    return challenger, float(recorded), "latest-fold ROC-AUC recorded by each model"


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
    from diffrisk.training.evaluate import eligible_mask

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
    from diffrisk.training.evaluate import eligible_mask

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
    from diffrisk.data.paths import models_dir
    from diffrisk.model.registry import ModelRegistry

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
    from diffrisk.training.evaluate import eligible_mask, evaluate

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
    cm = _uses_code_metrics(cfg, frame)
    kinds = list(KINDS) if kind_opt == "auto" else [kind_opt]
    fixed = bundled_candidates(cfg, frame) if kind_opt == "auto" else {}
    ev = evaluate(frame, cfg, kinds=kinds, code_metrics=cm, progress=progress, fixed=fixed)
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
        metadata["training_fingerprint"] = fingerprint
        return _register(data_dir, est, metadata, frame, ev, kind, force, len(frame[elig]), n_buggy)
    est, rows = fit_final(kind, frame, cm)
    first, last = rows.iloc[0], rows.iloc[-1]
    metrics = _evaluation_metrics(ev, kind)
    metadata = {
        "kind": kind,
        "features": raw_features(kind, cm),
        "code_metrics": cm,
        "training_window": {
            "first_sha": str(first["sha"]),
            "first_date": pd.Timestamp(first["author_time"]).isoformat(),
            "last_sha": str(last["sha"]),
            "last_date": pd.Timestamp(last["author_time"]).isoformat(),
        },
        "repository_head": meta.get("head"),
        "repository": Path(repo_path).resolve().name if repo_path else None,
        "n_train": len(rows),
        "n_buggy": int(rows["label"].astype(int).sum()),
        "metrics": metrics,
        "reference": model_reference(kind, est, rows, cm),
        "evaluation": {
            "folds": cfg.train.folds,
            "gap_days": ev.gap_days,
            "fold_windows": ev.to_dict()["folds"],
        },
        "label_settings": cfg.label.model_dump(),
        "vendored": list(frame.attrs.get("vendored", [])),
        "training_fingerprint": fingerprint,
    }
    if kind == "anchored":
        # Weight of the non-baseline features chosen by the nested selection (0 = baseline).
        metadata["anchor_scale"] = anchor_scale(est)
    return _register(
        data_dir, est, metadata, frame, ev, kind, force, len(rows), metadata["n_buggy"]
    )


def training_fingerprint(meta: dict[str, Any], cfg: Config, kind: str, rows: pd.DataFrame) -> str:
    """What a training run depends on: the mined history (its HEAD and the labelled
    ``rows``: each change's sha, label and fix times), the settings, the model kind asked
    for, the dataset schema, the fix rule and blame versions, diffrisk's version and the
    bundled model competing. Equal fingerprints train the same model."""
    from diffrisk import __version__
    from diffrisk.data.schema import SCHEMA_VERSION
    from diffrisk.features.fixes import RULE_VERSION
    from diffrisk.labelling.label import _BLAME_VERSION
    from diffrisk.model.registry import _bundled_files

    try:
        bundled = _bundled_files()[1].get("version")
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
        "blame": _BLAME_VERSION,
        "diffrisk": __version__,
        "bundled": bundled,
    }
    blob = json.dumps(d, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _trained_on(data_dir: str | Path, fingerprint: str) -> str | None:
    """The current model's version when it was trained with this fingerprint, else None."""
    from diffrisk.data.paths import models_dir
    from diffrisk.model.registry import ModelRegistry

    reg = ModelRegistry(models_dir(data_dir))
    try:
        cur = reg.current()
        if cur is None:
            return None
        if reg.metadata(cur).get("training_fingerprint") != fingerprint:
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
    from diffrisk.model.registry import ModelError, load_bundled

    if not cfg.train.bundled_candidate:
        return {}
    try:
        bundled = load_bundled()
    except ModelError:
        return {}  # an unusable bundled model is only a candidate fewer
    if frame is not None and "sha" in frame.columns:
        projects = (bundled.metadata.get("projects") or {}).values()
        seen = {p.get(k) for p in projects for k in ("first_sha", "last_sha")} - {None}
        if seen & set(frame["sha"]):
            return {}
    return {BUNDLED_CANDIDATE: bundled}


def _evaluation_metrics(ev: Any, kind: str) -> dict[str, Any]:
    from diffrisk.training.evaluate import RANK_METRIC

    evd = ev.to_dict()
    return {
        "overall": evd["models"][kind]["overall"],
        "folds": evd["models"][kind]["folds"],
        "latest_fold": next((m for m in reversed(evd["models"][kind]["folds"]) if m), None),
        "baseline": evd["models"][ev.baseline]["overall"],
        "unsupervised_effort": evd["unsupervised_effort"]["overall"],
        "beats_baseline": (evd["models"][kind]["overall"].get(RANK_METRIC) or 0)
        > (evd["models"][ev.baseline]["overall"].get(RANK_METRIC) or 0),
        "statement": ev.statement,
        "rank_metric": RANK_METRIC,
        "population": "labelled changes with source files (source_files > 0)",
    }


def _bundled_copy(
    bundled: Any,
    ev: Any,
    meta: dict[str, Any],
    cfg: Config,
    repo_path: str | Path | None,
    frame_vendored: Sequence[str] = (),
) -> tuple[Any, dict[str, Any]]:
    """The bundled model as this repository's model: its estimator and recipe, with the
    repository's evaluation as its metrics and ``origin`` naming the bundled version."""
    bm = bundled.metadata
    keep = ("kind", "features", "code_metrics", "n_train", "n_buggy")
    metadata = {k: bm[k] for k in keep if k in bm}
    # no training_window: none of this repository's changes trained it, so champion and
    # challenger comparisons may use every test row
    metadata["bundled_training_window"] = bm.get("training_window")
    metadata.update(
        {
            "origin": {"bundled": bundled.version, "projects": sorted(bm.get("projects") or {})},
            "reference": bm.get("reference") or {},
            "fix_rule_version": bm.get("fix_rule_version"),
            "repository_head": meta.get("head"),
            "repository": Path(repo_path).resolve().name if repo_path else None,
            "metrics": _evaluation_metrics(ev, BUNDLED_CANDIDATE),
            "evaluation": {
                "folds": cfg.train.folds,
                "gap_days": ev.gap_days,
                "fold_windows": ev.to_dict()["folds"],
            },
            "label_settings": cfg.label.model_dump(),
            "vendored": list(frame_vendored),
        }
    )
    return bundled.estimator, metadata


def _register(
    data_dir: str | Path,
    est: Any,
    metadata: dict[str, Any],
    frame: pd.DataFrame,
    ev: Any,
    kind: str,
    force: bool,
    n_train: int,
    n_buggy: int,
) -> TrainResult:
    """Save a new version with its card; promote it by champion/challenger (or ``force``)."""
    from diffrisk.data.paths import models_dir
    from diffrisk.model.registry import ModelRegistry, model_card

    reg = ModelRegistry(models_dir(data_dir))
    version = reg.save(est, metadata, None)
    card = model_card(reg.metadata(version))
    from diffrisk.data.store import atomic_write_bytes

    atomic_write_bytes(reg.root / version / "MODEL_CARD.md", card.encode())
    current = reg.current()
    if current is None or force:
        reg.promote(version)
        why = "forced (--force)" if current is not None else "first model of this repository"
        promoted = True
    else:
        new, old, how = _champion_score(reg, current, frame, ev, kind)
        promoted = math.isnan(old) or (not math.isnan(new) and new >= old)
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
