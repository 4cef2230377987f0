"""``models/retrain.json``: what the last ``diffrisk monitor --retrain`` did.

:mod:`diffrisk.monitoring.retrain` writes it; :func:`diffrisk.monitoring.monitor.monitor`
reads it to hold back a recommendation a retrain already answered by keeping the model.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

RETRAIN_FILE = "retrain.json"


def last_retrain(data_dir: str | Path) -> dict[str, Any] | None:
    """The last ``diffrisk monitor --retrain`` outcome (``models/retrain.json``), or None."""
    from diffrisk.data.paths import models_dir

    path = models_dir(Path(data_dir)) / RETRAIN_FILE
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            return None
        at = pd.Timestamp(data["at"])
        data["at"] = (at.tz_localize("UTC") if at.tzinfo is None else at).isoformat()
        data["labelled"] = int(data.get("labelled") or 0)
        data["reasons"] = [str(r) for r in data.get("reasons") or []]
    except (OSError, ValueError, TypeError, KeyError):
        return None  # none yet, or unreadable: it only holds back a repeated recommendation
    return data


def reason_kind(reason: str) -> str:
    """What a retraining reason is about: drift, realized accuracy, age or the bundled model."""
    for key, kind in (
        ("feature drift", "drift"),
        ("realized ROC-AUC", "accuracy"),
        ("days old", "age"),
        ("bundled model", "bundled"),
    ):
        if key in reason:
            return kind
    return reason


def record_retrain(data_dir: Path, out: dict[str, Any], labelled: int) -> None:
    """Write ``models/retrain.json`` for a :func:`~diffrisk.monitoring.retrain.retrain` outcome."""
    from diffrisk.data.paths import models_dir
    from diffrisk.data.store import atomic_write_bytes

    rec = {
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "champion": out.get("version") if out.get("promoted") else out.get("champion"),
        "promoted": bool(out.get("promoted")),
        "summary": out.get("summary", ""),
        "labelled": labelled,
        "reasons": sorted({reason_kind(r) for r in out.get("reasons") or []}),
    }
    folder = models_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / RETRAIN_FILE, json.dumps(rec, indent=2).encode())
