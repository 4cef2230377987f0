"""Feature preprocessing a saved model applies: the functions its ``FunctionTransformer``
steps call, and the feature names they read.

The learned models get Kamei et al.'s (2013) preprocessing (:func:`kamei_transform`):

* LA and LD are divided by LT (lines of the touched files before the change), LT and
  NUC by NF, so that size is relative to the code touched;
* ND and REXP are dropped: ND is near-collinear with NS and NF, REXP with EXP (Kamei
  et al. dropped the same two);
* every count and ratio goes through ``log1p`` (the features are heavily skewed);
* with code metrics, the radon columns are added (signed ``log1p`` of the deltas); they
  are NaN for changes without Python files, which the linear models impute as 0 (no
  change) and the gradient-boosted trees treat as missing.

The baseline reads :func:`la_transform`, the ``tokens`` model :func:`lines_transform` and
:func:`token_text`, the ``anchored`` model also :func:`shrink_extras`. skops records these
functions by module and name (see :data:`diffrisk.model.registry.OWN_TYPES`): renaming one
breaks every model that uses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from diffrisk.data.schema import CODE_TOKENS, LA_CODE, LA_CONTROL, LA_SOURCE

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
#: The baseline's single input: lines added to source files
#: (:func:`diffrisk.features.source.source_lines_added`).
#: Added lines of code in source files (no blank, comment or docstring lines): the added
#: lines SZZ could ever blame (:mod:`diffrisk.features.source`, :mod:`diffrisk.features.codelines`).
#: Of those, control-flow lines (branches, loops, exception handling, returns).
#: ``la_control`` of a change whose diff could not be read: this share of its lines of
#: code (control-flow lines were 15-27% of the added code lines of the eight bundled
#: projects).
CONTROL_SHARE = 0.22
#: The columns the ``anchored`` model never shrinks: how much blameable code a change adds.
ANCHORS = (LA_SOURCE, LA_CODE, LA_CONTROL)
#: The distinct tokens of a change's added lines of code (the ``tokens`` model's text input).


def raw_features(kind: str, code_metrics: bool = False, pfix: bool = True) -> list[str]:
    """The ``changes`` columns a candidate reads (its feature schema)."""
    if kind == "la":
        return [LA_SOURCE]
    if kind == "tokens":
        return [*ANCHORS, CODE_TOKENS]
    if kind == "prior":
        # the bundled model's features (its recipe has no PFIX) and the token bag; a
        # trained prior model records the bundled model's own list
        return [*KAMEI_FEATURES, LA_SOURCE, LA_CODE, LA_CONTROL, CODE_TOKENS]
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


def shrink_extras(Z: Any, scale: float = 1.0, anchor: int | Sequence[int] = 0) -> np.ndarray:
    """Multiply every standardised column but the ``anchor`` ones by ``scale`` (heavier L2)."""
    Z = np.array(Z, dtype=float, copy=True)
    anchor = [anchor] if isinstance(anchor, int) else list(anchor)
    keep = Z[:, anchor].copy()
    Z *= scale
    Z[:, anchor] = keep
    return Z
