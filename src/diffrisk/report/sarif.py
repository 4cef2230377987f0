"""A score as SARIF 2.1.0: one result per risky range of lines, for GitHub code scanning.

``diffrisk score --format sarif`` writes it; ``github/codeql-action/upload-sarif`` uploads
it (``docs/examples/code-scanning.yml``). Each hotspot file's risky lines
(:mod:`diffrisk.scoring.lines`) become one result: the file and the range of lines in the
head version, a message naming why (the names and keywords, or the line-size heuristic,
and the file's own risk), and a level from the change's risk level (high -> ``error``,
medium -> ``warning``, low -> ``note``). One rule, :data:`RULE_ID`.

``partialFingerprints`` keep an alert the same alert when the lines move: a hash of the
path and the range's line texts with whitespace collapsed (not of line numbers), plus an
occurrence count when one file has two ranges with the same text. Plain data only: no
scikit-learn, no git.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from diffrisk import __version__
from diffrisk.scoring.result import ScoreResult

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
INFORMATION_URI = "https://github.com/diffrisk/diffrisk"
RULE_ID = "diffrisk/risky-change"
#: The ``partialFingerprints`` key (versioned: a new recipe needs a new name).
FINGERPRINT = "diffriskRegion/v1"
#: SARIF level of each risk level.
LEVELS = {"high": "error", "medium": "warning", "low": "note"}

_RULE_TEXT = (
    "Lines that drive a change's risk of introducing a defect. With the tokens model they are "
    "the added lines whose names and keywords weigh most toward a defect in a model trained "
    "on the repository's history (each line scores the sum of its tokens' weights toward a "
    "defect, after JITLine, Pornprasit and Tantithamthavorn 2021). With other models, which "
    "weigh whole changes, they are the longest added lines of code (the most names, keywords "
    "and operators): a heuristic. Only the hotspot files (the files the model rates riskiest) "
    "are read."
)
_HELP = (
    "Review these lines first: they are where a change like this one most often went wrong "
    "in this repository's past. Adding a test that exercises them, or splitting the change, "
    "lowers the risk. The level follows the whole change's risk level (diffrisk score)."
)


def _normalised(lines: list[Any]) -> str:
    return "\n".join(" ".join(str(t).split()) for t in lines)


def fingerprint(path: str, lines: list[Any], occurrence: int = 0) -> str:
    """The stable identity of a risky range: sha256 of the path, the range's line texts
    (whitespace collapsed) and, for a repeated text in one file, its occurrence (0-based)."""
    key = f"{path}\0{_normalised(lines)}\0{occurrence}"
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _rule() -> dict[str, Any]:
    return {
        "id": RULE_ID,
        "name": "RiskyChange",
        "shortDescription": {"text": "Added lines that drive the change's defect risk"},
        "fullDescription": {"text": _RULE_TEXT},
        "help": {"text": _HELP, "markdown": _HELP},
        "helpUri": INFORMATION_URI,
        "defaultConfiguration": {"level": "warning"},
        "properties": {"tags": ["defect-prediction", "maintainability"], "precision": "low"},
    }


def _message(d: Mapping[str, Any], f: Mapping[str, Any], r: Mapping[str, Any]) -> str:
    first, last = int(r.get("first_line") or 1), int(r.get("last_line") or 0)
    where = f"Line {first}" if last <= first else f"Lines {first}-{last}"
    reason = str(r.get("reason") or "among the riskiest lines of this change")
    change = (
        f"The change is {d.get('level') or 'unknown'} risk ({float(d.get('probability') or 0):.0%}"
    )
    pct = d.get("percentile")
    if pct is not None:
        ref = str((d.get("level_rule") or {}).get("reference_text") or "this repository's changes")
        change += f", riskier than {float(pct):.0f}% of {ref}"
    return f"{where}: {reason}. {change}); this file's own risk {float(f.get('score') or 0):.0%}."


def to_sarif(result: ScoreResult | Mapping[str, Any]) -> dict[str, Any]:
    """The SARIF 2.1.0 log of a result (its ``to_dict()`` form or the object)."""
    d = result.to_dict() if isinstance(result, ScoreResult) else dict(result)
    level = LEVELS.get(str(d.get("level")), "note")
    results = []
    for f in d.get("files") or []:
        path = str(f.get("path") or "")
        seen: dict[str, int] = {}
        ranges = sorted(
            (r for r in f.get("risky_lines") or [] if isinstance(r, Mapping)),
            key=lambda r: int(r.get("first_line") or 1),
        )  # occurrences count in line order: a range moved down keeps its number
        by_rank = {id(r): i for i, r in enumerate(f.get("risky_lines") or [])}
        for r in ranges:
            lines = list(r.get("lines") or [])
            text = _normalised(lines)
            occurrence = seen.get(text, 0)
            seen[text] = occurrence + 1
            first = int(r.get("first_line") or 1)
            last = max(int(r.get("last_line") or first), first)
            region: dict[str, Any] = {"startLine": first, "endLine": last}
            if lines:
                region["snippet"] = {"text": "\n".join(str(t) for t in lines)}
            results.append(
                {
                    "ruleId": RULE_ID,
                    "ruleIndex": 0,
                    "level": level,
                    "message": {"text": _message(d, f, r)},
                    "locations": [
                        {
                            "physicalLocation": {
                                "artifactLocation": {"uri": path, "uriBaseId": "%SRCROOT%"},
                                "region": region,
                            }
                        }
                    ],
                    "partialFingerprints": {FINGERPRINT: fingerprint(path, lines, occurrence)},
                    "rank": round(min(max(float(f.get("score") or 0), 0.0), 1.0) * 100, 1),
                    "properties": {
                        "fileRisk": float(f.get("score") or 0),
                        "lineScore": float(r.get("score") or 0),
                        "rankInFile": by_rank.get(id(r), 0) + 1,
                        "basis": str(r.get("basis") or d.get("risky_lines_basis") or ""),
                        "tokens": [str(t) for t in r.get("tokens") or []],
                    },
                }
            )
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "diffrisk",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": INFORMATION_URI,
                "rules": [_rule()],
            }
        },
        "automationDetails": {"id": "diffrisk/"},
        "columnKind": "unicodeCodePoints",
        "results": results,
        "properties": {
            "probability": float(d.get("probability") or 0),
            "level": str(d.get("level") or ""),
            "percentile": d.get("percentile"),
            "base": str(d.get("base") or ""),
            "head": str(d.get("head") or ""),
            "modelVersion": str(d.get("model_version") or ""),
            "riskyLinesBasis": str(d.get("risky_lines_basis") or ""),
        },
    }
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}
