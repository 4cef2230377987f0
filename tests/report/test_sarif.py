"""SARIF 2.1.0 output: valid against the OASIS schema, one result per risky range, stable
fingerprints.

``tests/fixtures/sarif/sarif-schema-2.1.0.json`` is the OASIS SARIF 2.1.0 schema (errata
01, ``https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json``,
as published in github.com/oasis-tcs/sarif-spec, ``sarif-2.1/schema/``), vendored so the
tests need no network. A real repository and model are scored in
``tests/scoring/test_lines.py`` (the CLI, and fingerprints of moved lines).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from diffrisk import __version__
from diffrisk.report.sarif import FINGERPRINT, RULE_ID, fingerprint, to_sarif
from diffrisk.scoring.result import FileRisk, RiskyLines, ScoreResult

SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "sarif" / "sarif-schema-2.1.0.json"


def validate(log: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator(
        schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    ).validate(log)


def _ranges(shift: int = 0) -> list[RiskyLines]:
    return [
        RiskyLines(
            40 + shift,
            41 + shift,
            2.5,
            ["with lock:", "    retry(job)"],
            ["lock", "retry"],
            "adds `lock`, `retry`: names and keywords that went with past defects",
            "tokens",
        ),
        RiskyLines(
            10 + shift, 10 + shift, 0.7, ["retry(job)"], ["retry"], "adds `retry`", "tokens"
        ),
        # the same text twice in one file: two alerts, not one
        RiskyLines(
            70 + shift, 70 + shift, 0.4, ["retry(job)"], ["retry"], "adds `retry`", "tokens"
        ),
    ]


def result(level: str = "high", shift: int = 0) -> ScoreResult:
    return ScoreResult(
        repo="octo/widgets",
        base="0" * 40,
        head="f" * 40,
        probability=0.81,
        level=level,
        percentile=97.0,
        model_version="20261207T000000Z-tokens",
        model_source="repository",
        model_metrics={},
        features={},
        files=[
            FileRisk(
                "src/jobs.py", 0.77, ["3 past fixes"], 30, 2, 3, None, 9, risky_lines=_ranges(shift)
            ),
            FileRisk("docs/a b.md", 0.2, [], 4, 0, 0, None),  # no risky lines: no result
        ],
        risky_lines_basis="tokens",
    )


def test_the_log_is_valid_sarif_2_1_0() -> None:
    log = to_sarif(result())
    validate(log)
    assert log["version"] == "2.1.0" and len(log["runs"]) == 1
    driver = log["runs"][0]["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("diffrisk", __version__)
    assert driver["informationUri"].startswith("https://")
    assert [r["id"] for r in driver["rules"]] == [RULE_ID]
    assert driver["rules"][0]["fullDescription"]["text"]


def test_the_schema_check_can_fail() -> None:
    log = to_sarif(result())
    for breaks in (
        lambda d: d.update(version="2.0.0"),
        lambda d: d["runs"][0]["results"][0].update(level="fatal"),
        lambda d: d["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"].update(
            startLine=0
        ),
        lambda d: d["runs"][0]["tool"]["driver"].pop("name"),
    ):
        bad = copy.deepcopy(log)
        breaks(bad)
        with pytest.raises(jsonschema.ValidationError):
            validate(bad)


def test_one_result_per_risky_range_on_its_lines() -> None:
    results = to_sarif(result())["runs"][0]["results"]
    assert len(results) == 3  # the file without risky lines has none
    first = results[0]  # in line order within a file
    loc = first["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "src/jobs.py", "uriBaseId": "%SRCROOT%"}
    assert (loc["region"]["startLine"], loc["region"]["endLine"]) == (10, 10)
    assert loc["region"]["snippet"]["text"] == "retry(job)"
    by_line = {r["locations"][0]["physicalLocation"]["region"]["startLine"]: r for r in results}
    two = by_line[40]
    assert two["locations"][0]["physicalLocation"]["region"]["endLine"] == 41
    assert two["message"]["text"].startswith("Lines 40-41: adds `lock`, `retry`")
    assert two["message"]["text"].endswith(
        "The change is high risk (81%, riskier than 97% of this repository's changes); "
        "this file's own risk 77%."
    )
    assert two["ruleId"] == RULE_ID and two["ruleIndex"] == 0
    assert two["properties"]["rankInFile"] == 1 and two["properties"]["tokens"] == ["lock", "retry"]


@pytest.mark.parametrize(
    ("level", "sarif"), [("high", "error"), ("medium", "warning"), ("low", "note")]
)
def test_level_follows_the_risk_level(level: str, sarif: str) -> None:
    results = to_sarif(result(level))["runs"][0]["results"]
    assert {r["level"] for r in results} == {sarif}


def test_fingerprints_are_path_and_text_not_line_numbers() -> None:
    def prints(log: dict[str, Any]) -> list[str]:
        return [r["partialFingerprints"][FINGERPRINT] for r in log["runs"][0]["results"]]

    here, moved = prints(to_sarif(result())), prints(to_sarif(result(shift=25)))
    assert here == moved and len(set(here)) == 3  # a repeated text gets its own
    assert fingerprint("src/jobs.py", ["with lock:", "    retry(job)"]) == fingerprint(
        "src/jobs.py", ["with  lock:", "retry(job)"]
    )  # whitespace does not count
    assert fingerprint("src/jobs.py", ["retry(job)"]) != fingerprint("src/other.py", ["retry(job)"])
    assert fingerprint("src/jobs.py", ["retry(job)"]) != fingerprint("src/jobs.py", ["retry(jobs)"])
    # a saved result (its JSON form) gives the same log
    assert to_sarif(json.loads(json.dumps(result().to_dict()))) == to_sarif(result())


def test_a_result_without_risky_lines_is_an_empty_valid_log() -> None:
    r = result()
    for f in r.files:
        f.risky_lines = []
    log = to_sarif(r)
    validate(log)
    assert log["runs"][0]["results"] == []
    assert log["runs"][0]["properties"]["level"] == "high"
