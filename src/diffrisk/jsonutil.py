"""Turn results into plain JSON values (one rule for every ``to_dict``)."""

from __future__ import annotations

import math
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any


def jsonable(obj: Any) -> Any:
    """Dicts, lists and scalars only: numpy -> Python, NaN/inf -> None, times -> ISO text."""
    # numpy and pandas values exist only once those are imported: reading a result (the
    # gate, the report) never loads them just to check
    np = sys.modules.get("numpy")
    pd = sys.modules.get("pandas")
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [jsonable(v) for v in obj]
    if np is not None:
        if isinstance(obj, np.ndarray):
            return [jsonable(v) for v in obj.tolist()]
        if isinstance(obj, np.generic):
            obj = obj.item()
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if pd is not None:
        if obj is pd.NaT:
            return None
        if isinstance(obj, pd.Timestamp):
            return obj.isoformat()
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    return obj
