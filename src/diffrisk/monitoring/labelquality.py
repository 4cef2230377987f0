"""The label-quality section of the monitor report.

:func:`diffrisk.labelling.quality.assess_data_dir` says how far the labels can be trusted
(fixes by source, implausible fix or buggy shares, fixes that label nothing, SZZ against
the developers' own links); realized accuracy and capture stand on those labels, so the
monitor reports it next to them and lists its warnings among its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from diffrisk.errors import DiffriskError
from diffrisk.labelling.quality import Agreement, LabelQuality, assess_data_dir, render_markdown

#: Put before the label report's warnings among the monitor's.
WARNING_PREFIX = "label quality: "


def label_quality(data_dir: Path, warnings: list[str]) -> dict[str, Any] | None:
    """The label report of ``data_dir`` as a dict (``LabelQuality.to_dict()``), its
    warnings appended to ``warnings``; None (and a warning) when it cannot be made.

    Call it only when the history is labelled: without labels there is nothing to say."""
    try:
        q = assess_data_dir(data_dir)
    except DiffriskError as err:
        warnings.append(f"{WARNING_PREFIX}not assessed: {err}")
        return None
    except KeyError as err:  # a labels file lacking a column the report reads
        warnings.append(f"{WARNING_PREFIX}not assessed: the labels lack the column {err}")
        return None
    warnings.extend(WARNING_PREFIX + w for w in q.warnings)
    return q.to_dict()


def of_dict(d: Mapping[str, Any]) -> LabelQuality:
    """A :class:`LabelQuality` again from its ``to_dict()`` (or JSON) form."""
    a = d.get("agreement")
    return LabelQuality(**{**d, "agreement": Agreement(**a) if a else None})


def section_markdown(d: Mapping[str, Any]) -> str:
    """The label report as Markdown (``render_markdown``) without its warnings: the
    monitor lists them once, among its own."""
    return render_markdown(replace(of_dict(d), warnings=[]))


def section_rows(d: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The rows of :func:`section_markdown`'s table, for the terminal."""
    rows = []
    for line in section_markdown(d).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("| ") and len(cells) == 2 and cells[0] and cells[0] != "---":
            rows.append((cells[0], cells[1]))
    return rows
