"""Vendored third-party directories, found from history, on real repositories."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from diffrisk.config import Config, LabelConfig, MineConfig
from diffrisk.data.store import load_dataset
from diffrisk.features.source import is_source_path
from diffrisk.features.vendored import detect_vendored, resolve, sync_names
from diffrisk.git.repo import open_repo
from diffrisk.labelling.label import label, load_labels, load_links
from diffrisk.mining.mine import mine
from diffrisk.scoring.analysis import analyze
from diffrisk.training.train import load_training_frame
from repobuilder import RepoBuilder


@pytest.mark.parametrize(
    ("subject", "names"),
    [
        ("Update urllib3 to 1.20.0", {"urllib3"}),
        ("Vendor idna v2.1", {"idna"}),
        ("updated urllib3 (v1.15.1)", {"urllib3"}),
        ("Upgrade urllib3 to 7fcfcd08a6a2150f93144d111904d1e4fb65c909", {"urllib3"}),
        ("Update to urllib3 1.14", {"urllib3"}),
        ("Synchronize urllib3 to 1.10.4", {"urllib3"}),
        ("Update the vendored pluggy to 0.3.1", {"pluggy"}),
        ("Re-vendor six 1.16.0", {"six"}),
        ("Update compat for Python 3.12", set()),  # a version, but not of "compat"
        ("Bump black from 22.1 to 23.1", {"black"}),  # only a directory named black counts
        ("Update urllib3 from 1.25 to 1.26", {"urllib3"}),
        ("Update `typing-extensions` to 4.0.1", {"typing_extensions"}),
        ("Update Python to 3.12", set()),  # a runtime, not a directory of vendored code
        ("Update to 1.2.3", set()),
        ("Updated to v2.0", set()),
        ("Update for 1.2 release", set()),
        ("Fix crash in urllib3 1.20 handling", set()),  # no update verb
        ("Update docs", set()),
        # a subject that is only "sync NAME" needs no version
        ("Sync typeshed (#21852)", {"typeshed"}),
        ("Sync typeshed", {"typeshed"}),
        ("Vendor the bundled pep517 from upstream", {"pep517"}),
        ("Sync typeshed and fix the stubs test", set()),  # more than a sync
        ("Update typeshed (#12)", set()),  # "update" without a version: too common
        ("Sync docs", set()),
        ("", set()),
    ],
)
def test_sync_names(subject: str, names: set[str]) -> None:
    assert sync_names(subject) == names


def _lib(version: int, n: int = 30) -> str:
    """A vendored module: ``n`` functions, each returning the version."""
    return "".join(f"def f{i}(x):\n    return x + {version}\n\n\n" for i in range(n))


CORE = """\
from pkg.packages import libx


def run(x):
    y = libx.f0(x)
    return y + 1
"""


def _history(b: RepoBuilder) -> dict[str, str]:
    c = {}
    # the project's own code outweighs the vendored library (vendored.MAX_REPO_SHARE)
    own = "".join(f"def g{i}(x):\n    return x * {i}\n\n\n" for i in range(80))
    c["core"] = b.commit(
        {"pkg/__init__.py": "", "pkg/core.py": CORE, "pkg/more.py": own}, day=0, message="Add core"
    )
    c["import"] = b.commit({"pkg/packages/libx/a.py": _lib(1)}, day=1, message="Import libx")
    c["own"] = b.commit(
        {"pkg/core.py": CORE.replace("y + 1", "y + 2")}, author="bob", day=10, message="Tune run"
    )
    c["sync"] = b.commit(
        {"pkg/packages/libx/a.py": _lib(2)}, day=20, message="Update libx to 1.2.0"
    )
    # a fix that changes the project's line and a vendored line: the vendored line is
    # third-party code, whose fixes arrive with the next sync
    c["fix"] = b.commit(
        {
            "pkg/core.py": CORE.replace("y + 1", "y + 3"),
            "pkg/packages/libx/a.py": _lib(2).replace("x + 2\n", "x - 2\n", 1),
        },
        author="cy",
        day=300,
        message="Fix crash in run",
    )
    return c


def test_vendored_directory_is_found_and_not_blamed(builder: RepoBuilder, tmp_path: Path) -> None:
    c = _history(builder)
    data = tmp_path / "data"
    mine(builder.path, data, config=MineConfig(code_metrics=False))
    ds = load_dataset(data)
    assert detect_vendored(ds.changes, ds.files) == ["pkg/packages/libx"]

    res = label(builder.path, data, LabelConfig())
    assert res.vendored == ["pkg/packages/libx"]
    lab = load_labels(data).set_index("sha")
    assert lab.loc[c["own"], "label"] == 1
    assert lab.loc[c["sync"], "label"] == 0
    assert lab.loc[c["sync"], "source_files"] == 0  # only vendored files: clean by construction
    links = load_links(data).set_index("path")
    assert pd.isna(links.loc["pkg/core.py", "dropped"])
    assert links.loc["pkg/packages/libx/a.py", "dropped"] == "vendored"
    assert links.loc["pkg/packages/libx/a.py", "inducing_sha"] == c["sync"]

    # the size features the models train on leave vendored lines out as well
    frame = load_training_frame(data, Config(), builder.path)[0]
    assert frame.attrs["vendored"] == ["pkg/packages/libx"]
    frame = frame.set_index("sha")
    assert frame.loc[c["sync"], "la_source"] == 0
    assert frame.loc[c["own"], "la_source"] == 1

    # switched off, the sync is blamed for the vendored line the fix changed
    res = label(builder.path, data, LabelConfig(detect_vendored=False))
    assert res.vendored == []
    assert res.newly_blamed == 0  # the blame cache does not depend on what detection finds
    lab = load_labels(data).set_index("sha")
    assert lab.loc[c["sync"], "label"] == 1
    assert lab.loc[c["sync"], "source_files"] == 1


def test_scoring_leaves_vendored_lines_out(builder: RepoBuilder, tmp_path: Path) -> None:
    _history(builder)
    data = tmp_path / "data"
    mine(builder.path, data, config=MineConfig(code_metrics=False))
    builder.branch("sync")
    builder.checkout("sync")
    builder.commit(
        {"pkg/packages/libx/a.py": _lib(3, 40), "pkg/core.py": CORE + "\n\nZ = 1\n"},
        day=310,
        message="Update libx to 1.3.0",
    )
    a = analyze(open_repo(builder.path), "main", "sync", load_dataset(data), Config())
    assert a.label_config.exclude_paths[-1] == "pkg/packages/libx/*"
    pr = a.pr_row.iloc[0]
    # 70 vendored lines (30 changed, 40 new) are in LA, not in the source lines the model
    # reads: core.py's changed return line, two blank lines and "Z = 1"
    assert pr["la"] == 74
    assert pr["la_source"] == 4
    rows = a.file_rows.set_index("path")
    assert rows.loc["pkg/packages/libx/a.py", "la_source"] == 0

    # a PR that vendors a new library: its own commits say so, and it is scored the way
    # the label stage will see it once mined
    builder.commit({"pkg/packages/libz/z.py": _lib(1, 20)}, day=320, message="Vendor libz 1.0.0")
    a = analyze(open_repo(builder.path), "main", "sync", load_dataset(data), Config())
    assert "pkg/packages/libz/*" in a.label_config.exclude_paths
    assert a.pr_row.iloc[0]["la_source"] == 4


def test_own_package_and_scoped_components_are_not_vendored(
    builder: RepoBuilder, tmp_path: Path
) -> None:
    # the project's own package, bumped by a release commit that names it with a version
    for i in range(6):
        builder.commit({"pkg/core.py": _lib(i, 3 + i)}, day=i, message=f"Add feature {i}")
    builder.commit(
        {"pkg/__init__.py": '__version__ = "2.0.0"\n'}, day=7, message="Bump pkg to 2.0.0"
    )
    # a monorepo component whose commits name it only as a scope
    for i in range(4):
        builder.commit(
            {"packages/foo/index.js": f"export const v = {i};\n" * (5 + i)},
            day=10 + i,
            message=f"feat(foo): step {i}" if i % 2 else f"foo: step {i}",
        )
    builder.commit(
        {"packages/foo/index.js": "export const v = 9;\n" * 3},
        day=20,
        message="chore: bump foo to 1.2.3",
    )
    data = tmp_path / "data"
    mine(builder.path, data, config=MineConfig(code_metrics=False))
    ds = load_dataset(data)
    assert detect_vendored(ds.changes, ds.files) == []
    assert resolve(LabelConfig(), ds.changes, ds.files) == LabelConfig()


def test_detection_on_frames_without_subjects() -> None:
    changes = pd.DataFrame({"sha": ["a"], "subject": [None]})
    files = pd.DataFrame({"sha": ["a"], "path": ["x/y.py"], "la": [3]})
    assert detect_vendored(changes, files) == []
    assert detect_vendored(changes.iloc[:0], files) == []


def test_directories_already_excluded_are_not_reported() -> None:
    changes = pd.DataFrame(
        {
            "sha": ["a", "b", "c"],
            "subject": ["Update urllib3 to 1.26.5", "Update idna to 3.4", "Add x"],
        }
    )
    files = pd.DataFrame(
        {
            "sha": ["a", "b", "c"],
            "path": ["src/pip/_vendor/urllib3/util.py", "pkg/packages/idna/core.py", "pkg/x.py"],
            "la": [40, 30, 100],
        }
    )
    assert detect_vendored(changes, files) == ["pkg/packages/idna", "src/pip/_vendor/urllib3"]
    excluded = LabelConfig().exclude_paths  # covers */_vendor/*
    assert detect_vendored(changes, files, excluded=excluded) == ["pkg/packages/idna"]
    assert resolve(LabelConfig(), changes, files).exclude_paths[-1] == "pkg/packages/idna/*"


def _frames(rows: list[tuple[str, str, str, int]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(sha, subject, path, lines added) rows as mined changes and files frames."""
    changes = pd.DataFrame(
        [(sha, subject) for sha, subject, _, _ in rows], columns=["sha", "subject"]
    ).drop_duplicates("sha")
    files = pd.DataFrame([(sha, p, la) for sha, _, p, la in rows], columns=["sha", "path", "la"])
    return changes, files


@pytest.mark.parametrize(
    "history",
    [
        # bracket and ticket scopes name components, not vendored code
        [
            ("a", "[Python] Add reader", "python/pyarrow/io.py", 300),
            ("b", "GH-12: [Python] Fix reader", "python/pyarrow/io.py", 20),
            ("c", "Update Python to 3.12 wheels", "python/setup.py", 5),
            ("d", "[C++] Add kernel", "cpp/src/k.cc", 900),
        ],
        # conventional-commit scopes, and a release commit naming the package
        [
            ("a", "feat(parser): tokens", "src/app/parser/t.py", 200),
            ("b", "parser: fix spans", "src/app/parser/t.py", 30),
            ("c", "fix(parser)!: keep spans", "src/app/parser/t.py", 10),
            ("d", "Bump parser to 2.0.0", "src/app/parser/__init__.py", 1),
            ("e", "Add app", "src/app/main.py", 900),
        ],
        # the main package, named in prose and in a sync-like subject, holds most lines
        [
            ("a", "Initial version of foo", "foo/core.py", 500),
            ("b", "Bump foo to 0.2.0", "foo/__init__.py", 1),
            ("c", "Add docs", "docs/index.md", 50),
        ],
    ],
)
def test_own_components_are_not_vendored(history: list[tuple[str, str, str, int]]) -> None:
    changes, files = _frames(history)
    assert detect_vendored(changes, files) == []


def test_glob_characters_in_directory_names_are_escaped() -> None:
    changes, files = _frames(
        [
            ("a", "Vendor libz 1.0.0", "app/[lang]/libz/z.py", 100),
            ("b", "Add app", "app/main.py", 400),
        ]
    )
    assert detect_vendored(changes, files) == ["app/[lang]/libz"]
    cfg = resolve(LabelConfig(), changes, files)
    assert not is_source_path("app/[lang]/libz/z.py", cfg)
    assert is_source_path("app/l/libz/z.py", cfg)  # "[lang]" is not a character class


def test_not_vendored_keeps_a_directory() -> None:
    changes, files = _frames(
        [("a", "Vendor libz 1.0.0", "pkg/libz/z.py", 100), ("b", "Add app", "pkg/app.py", 400)]
    )
    assert resolve(LabelConfig(), changes, files).exclude_paths[-1] == "pkg/libz/*"
    assert resolve(LabelConfig(not_vendored=["pkg/libz"]), changes, files) == LabelConfig(
        not_vendored=["pkg/libz"]
    )


def test_vendored_file_renamed_from_elsewhere_is_still_left_out(
    builder: RepoBuilder, tmp_path: Path
) -> None:
    # blame names the inducing commit's path (libx2/), the fix changed libx/: the link is
    # judged by both paths, so the rename does not let vendored code label a commit
    own = "".join(f"def g{i}(x):\n    return x * {i}\n\n\n" for i in range(80))
    builder.commit({"pkg/core.py": CORE, "pkg/more.py": own}, day=0, message="Add core")
    helper = builder.commit({"pkg/packages/libx2/a.py": _lib(1)}, day=1, message="Add helpers")
    builder.commit({}, rename={"pkg/packages/libx2/a.py": "pkg/packages/libx/a.py"}, day=2)
    builder.commit({"pkg/packages/libx/b.py": _lib(2)}, day=3, message="Update libx to 1.2.0")
    builder.commit(
        {"pkg/packages/libx/a.py": _lib(1).replace("x + 1\n", "x - 1\n", 1)},
        day=200,
        message="Fix crash in libx use",
    )
    data = tmp_path / "data"
    mine(builder.path, data, config=MineConfig(code_metrics=False))
    # by default the fix is no fix at all: it changes only vendored code
    res = label(builder.path, data, LabelConfig())
    assert res.fixes_rejected == 1 and res.fixes == 0
    res = label(builder.path, data, LabelConfig(judge_fix_changes=False))
    assert res.vendored == ["pkg/packages/libx"]
    links = load_links(data)
    assert list(links["path"]) == ["pkg/packages/libx2/a.py"]
    assert list(links["dropped"]) == ["vendored"]
    assert load_labels(data).set_index("sha").loc[helper, "label"] == 0
