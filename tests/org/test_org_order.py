"""A first ``org`` run starts the longest repositories first, guessed by their commits;
later runs go by what each repository cost last time (docs/scale.md)."""

from __future__ import annotations

import json
from pathlib import Path

from orgrepos import generated_history

from diffrisk.org.jobs import _previous_cost
from diffrisk.org.manifest import RepoSpec
from diffrisk.org.tasks import RepoLayout


def _spec(name: str, path: Path | None, url: str | None = None) -> RepoSpec:
    return RepoSpec(name, url, str(path) if path else None, "main", None, None, "GITHUB_TOKEN")


def test_first_run_starts_the_longest_history_first(tmp_path: Path) -> None:
    small = generated_history(tmp_path / "small.git", 5, seed=1)
    big = generated_history(tmp_path / "big.git", 40, seed=2)
    root = tmp_path / "root"
    specs = [
        _spec("t/small", small),
        _spec("t/big", big),
        _spec("t/notgit", tmp_path),  # not a repository: nothing to count
        _spec("t/remote", None, url="https://example.invalid/t/remote.git"),  # not cloned yet
    ]
    cost = _previous_cost(root, specs)
    assert cost["t/big"] > cost["t/small"] > 0
    assert cost["t/notgit"] == 0 and cost["t/remote"] == 0
    # once a repository ran, its measured seconds decide, not the guess
    lay = RepoLayout(root, "t/small")
    lay.dir.mkdir(parents=True)
    lay.status.write_text(json.dumps({"mine": {"seconds": 30.0}, "label": {"seconds": 12.5}}))
    assert _previous_cost(root, specs)["t/small"] == 42.5
    assert sorted(specs, key=lambda s: -_previous_cost(root, specs)[s.name])[0].name == "t/small"
