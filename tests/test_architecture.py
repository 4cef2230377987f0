"""The layout holds: no import cycle between diffrisk's modules, every stage imports only
stages below it, and the light modules stay light (docs/architecture.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

#: Lowest first. A module may import from its own layer or any layer before it.
LAYERS = [
    {"errors", "jsonutil", "notices", "levels", "__init__"},
    {"config", "trusted", "git", "hosts"},  # hosts: the GitHub/GitLab clients and event parsing
    {"data"},
    {"features"},
    {"mining", "labelling"},
    {"model"},
    {"training"},
    {"scoring", "report", "hosts.github.publish", "hosts.gitlab.publish"},
    {"gating", "monitoring"},
    {"pipeline", "train"},  # train: the compat module for models saved by 0.1.0
    {"org"},  # the pipeline over many repositories, on Dask
    {"cli", "__main__"},
]


def _modules() -> dict[str, set[str]]:
    """Every module's imports of other diffrisk modules, wherever in the file they are."""
    graph: dict[str, set[str]] = {}
    for f in (SRC / "diffrisk").rglob("*.py"):
        mod = ".".join(f.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        deps = set()
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == "diffrisk":
                    deps |= {f"diffrisk.{a.name}" for a in node.names}
                elif node.module.startswith("diffrisk."):
                    deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("diffrisk.")}
        graph[mod] = deps
    for mod, deps in graph.items():  # `from diffrisk.x import y` may name module x.y
        graph[mod] = {d for d in deps if d in graph} | {
            d.rsplit(".", 1)[0] for d in deps if d not in graph and d.rsplit(".", 1)[0] in graph
        }
    return graph


def _layer(mod: str) -> int:
    """The layer of the longest listed name that ``mod`` (without ``diffrisk.``) starts with."""
    name = mod.removeprefix("diffrisk").lstrip(".") or "__init__"
    best = max(
        (n for names in LAYERS for n in names if name == n or name.startswith(n + ".")),
        key=len,
    )
    return next(i for i, names in enumerate(LAYERS) if best in names)


def test_there_is_no_import_cycle():
    graph = _modules()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for d in sorted(graph[m]):
            if d == m or d.startswith(m + "."):
                continue  # a package importing its own modules
            if state.get(d) == 1:
                cycle = [*path[path.index(d) :], d]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if d not in state:
                visit(d)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert len(graph) > 40


def test_each_stage_imports_only_downward():
    graph = _modules()
    upward = [
        f"{m} -> {d}"
        for m, deps in sorted(graph.items())
        for d in sorted(deps)
        if d != "diffrisk" and _layer(d) > _layer(m)
    ]
    assert upward == []


def test_reading_results_loads_neither_scikit_learn_nor_the_miner():
    code = (
        "import sys, diffrisk.report.render, diffrisk.gating.merge, diffrisk.gating.publish, "
        "diffrisk.gating.deploy, "
        "diffrisk.scoring.result, diffrisk.hosts.github.client, diffrisk.hosts.gitlab.client; "
        "print(sorted(m for m in ('sklearn', 'diffrisk.mining.mine', 'diffrisk.training.train', "
        "'pandas', 'numpy', 'gitlab') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # not even pandas or numpy: `diffrisk gate --score-file` starts in a quarter second
    assert out.stdout.strip() == "[]"


def test_the_commands_talk_to_neither_git_nor_github_themselves():
    """cli/ parses options and calls a stage: no repository opened, no git process run, no
    GitHub client made there (git.revisions answers, the event parsers and the publisher
    are the stages' functions)."""
    found = []
    for f in sorted((SRC / "diffrisk" / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module in (
                "diffrisk.git.repo",
                "diffrisk.hosts.github.client",
                "diffrisk.hosts.gitlab.client",
            ):
                found += [
                    f"{f.name}: {a.name}"
                    for a in node.names
                    if a.name in ("open_repo", "GitRepo", "CatFile", "GitHubClient", "GitLabClient")
                ]
            elif isinstance(node, ast.Attribute) and node.attr == "run":
                found.append(f"{f.name}:{node.lineno}: .run")
    assert found == []
