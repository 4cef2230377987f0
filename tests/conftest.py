from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# as the CLI's main() does: one thread per numeric library, before scikit-learn loads
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).parent))

from repobuilder import RepoBuilder  # noqa: E402


@pytest.fixture
def builder(tmp_path: Path) -> RepoBuilder:
    return RepoBuilder(tmp_path / "repo")
