"""Champion/challenger: the one promotion rule, and how ``train`` scores the two models.

Both ``diffrisk train`` and ``diffrisk monitor --retrain`` promote a new model by
:func:`promotes`: its ROC-AUC on the latest time-ordered fold must be at least the
current model's. A tie promotes because the challenger was fitted on newer history
and ranks no worse (models that rank alike, e.g. two ``la`` baselines or two copies of
the bundled model, always tie, and ``>`` would keep the older one forever).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from diffrisk.errors import ModelError
from diffrisk.model.registry import ModelRegistry
from diffrisk.training.evaluate import RANK_METRIC, Evaluation


def promotes(challenger: float, champion: float) -> bool:
    """Whether a challenger with ROC-AUC ``challenger`` replaces a champion with
    ``champion`` (NaN: no comparable score): yes when the champion has none, no when the
    challenger has none, else when it is at least as good."""
    if math.isnan(champion):
        return True
    return not math.isnan(challenger) and challenger >= champion


def champion_score(
    reg: ModelRegistry, version: str, frame: pd.DataFrame, ev: Evaluation, kind: str
) -> tuple[float, float, str]:
    """(challenger, champion) ROC-AUC on the latest fold's test rows the champion never
    saw, and how they were compared."""
    fold = ev.latest_fold()
    challenger = ev.latest_fold_metric(kind)
    try:
        champ = reg.load(version)
    except ModelError as err:
        return challenger, math.nan, f"current model {version} cannot be loaded ({err.message})"
    recorded = champ.info.latest_fold_metric(RANK_METRIC)
    if fold is None:
        return (
            challenger,
            recorded if recorded is not None else math.nan,
            "recorded latest-fold metric",
        )
    last = champ.info.training_end
    test = frame.iloc[fold.test_idx]
    fresh = np.ones(len(test), dtype=bool)
    if last is not None:
        fresh = (test["author_time"] > last).to_numpy()
    y = test["label"].astype(int).to_numpy()[fresh]
    p_new = ev.predictions.get(kind, [None])[fold.index - 1]
    if fresh.sum() >= 20 and len(np.unique(y)) == 2 and p_new is not None:
        p_old = champ.predict_proba(test[fresh])
        how = (
            f"both on the {int(fresh.sum())} newest test rows the current model was not trained on"
        )
        return float(roc_auc_score(y, p_new[fresh])), float(roc_auc_score(y, p_old)), how
    if recorded is None:
        return challenger, math.nan, "the current model records no latest-fold metric"
    return challenger, recorded, "latest-fold ROC-AUC recorded by each model"
