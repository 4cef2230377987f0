"""Where models saved by diffrisk 0.1.0 find diffrisk's own types.

skops records a function or class by the module it was defined in; every model saved
before the stage packages (the bundled one included) names ``diffrisk.train.*``. This
module keeps that import path working; new code imports from :mod:`diffrisk.model`.
"""

from diffrisk.model.estimators import PoissonRiskClassifier, TimeCalibratedClassifier
from diffrisk.model.transforms import (
    kamei_transform,
    la_transform,
    lines_transform,
    shrink_extras,
    token_text,
)

__all__ = [
    "PoissonRiskClassifier",
    "TimeCalibratedClassifier",
    "kamei_transform",
    "la_transform",
    "lines_transform",
    "shrink_extras",
    "token_text",
]
