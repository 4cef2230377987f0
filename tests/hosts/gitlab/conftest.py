from __future__ import annotations

import re
from typing import Any

import pytest
from fake_gitlab import FAKE_ENV_KEYS, FakeGitLab


@pytest.fixture
def fake(httpserver: Any) -> FakeGitLab:
    gl = FakeGitLab(base=httpserver.url_for("").rstrip("/"))
    httpserver.expect_request(re.compile(".*")).respond_with_handler(gl)
    return gl


@pytest.fixture(autouse=True)
def no_ci_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither the machine's GitLab CI nor GitHub Actions variables leak into a test."""
    for key in FAKE_ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
