"""docs/examples/gitlab-ci.yml: it parses, matches GitLab CI's schema (check-jsonschema's
vendored copy, offline), and runs diffrisk the safe way in a merge request pipeline."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "docs" / "examples" / "gitlab-ci.yml"


def _job() -> dict[str, Any]:
    data = YAML(typ="safe").load(EXAMPLE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data["diffrisk"]


def test_the_example_parses_and_runs_in_merge_request_pipelines() -> None:
    job = _job()
    assert job["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert str(job["variables"]["GIT_DEPTH"]) == "0"  # the full history
    steps = "\n".join(job["before_script"] + job["script"])
    assert "pip install" in steps
    for command in ("mine", "label", "train", "gate --host gitlab"):
        assert f"$DIFFRISK {command}" in steps
    # isolated mode: the checkout's own venv/, pip/ or diffrisk/ is never imported
    assert "python -I -m venv" in steps and '/bin/python" -I -m pip install' in steps
    assert 'DIFFRISK="$DIFFRISK_VENV/bin/python -I -m diffrisk"' in job["script"]
    # settings from the base, never the merge request's checkout
    assert steps.count('--config-rev "$BASE"') == 3
    assert "GITLAB_TOKEN" not in str(job.get("variables"))  # a masked CI/CD variable, not here


def test_the_example_matches_the_gitlab_ci_schema() -> None:
    tool = Path(sys.executable).parent / "check-jsonschema"
    found = str(tool) if tool.exists() else shutil.which("check-jsonschema")
    if not found:
        pytest.fail("check-jsonschema is not installed: pip install -e '.[lint]'")
    proc = subprocess.run(
        [found, "--builtin-schema", "vendor.gitlab-ci", str(EXAMPLE)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
