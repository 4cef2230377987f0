"""The line model (``bench/bench_lines.py``'s): learned from the lines later fixes deleted,
on a built repository.

History (days after 2020-01-01): on day 2k (k = 0..17) ann adds ``src/task_k.py``::

    def task_k(item):                   line 1
        value = item.value + k          line 2
        first = retry(value, 1)         line 3  <- the fix of day 2k+1 changes it
        second = retry(first, 2)        line 4  <- and this
        third = retry(second, 3)        line 5  <- and this
        total = value * 2               line 6
        print(total)                    line 7
        return third                    line 8

and on day 2k+1 bob's "fix retry bug in task_k" replaces ``retry`` by ``backoff`` in lines
3-5. So, by hand: SZZ links each fix to the change of the day before with those three line
texts; each of the 18 changes has 3 buggy lines (3-5) and 5 clean ones; every buggy line
and no clean line names ``retry``. A line model fitted on them weighs ``retry`` toward a
defect, and in a new change ``outcome = retry(item, 5)`` ranks above the line of the same
shape and length that calls ``fetch`` (a name it never saw: no weight), by exactly the
weight of ``retry``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from diffrisk.config import LabelConfig, MineConfig
from diffrisk.data.datadir import DataDir
from diffrisk.features.codelines import _DIFF_FLAGS
from diffrisk.git.repo import open_repo
from diffrisk.labelling.label import label
from diffrisk.mining.mine import mine
from diffrisk.scoring.line_model import (
    FEATURES,
    LineModel,
    change_features,
    fit_from_history,
    label_lines,
    link_table,
    read_change_lines,
)
from diffrisk.scoring.lines import AddedLine, parse_added_lines
from repobuilder import RepoBuilder, ts

N = 18


def task(k: int, call: str = "retry") -> str:
    return (
        f"def task_{k}(item):\n"
        f"    value = item.value + {k}\n"
        f"    first = {call}(value, 1)\n"
        f"    second = {call}(first, 2)\n"
        f"    third = {call}(second, 3)\n"
        "    total = value * 2\n"
        "    print(total)\n"
        "    return third\n"
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("linemodel")
    b = RepoBuilder(root / "repo")
    b.commit({"README.md": "tasks\n"}, day=0, message="start")
    adds, fixes = [], []
    for k in range(N):
        adds.append(b.commit({f"src/task_{k}.py": task(k)}, day=2 * k + 0.5, message=f"task {k}"))
        fixes.append(
            b.commit(
                {f"src/task_{k}.py": task(k, "backoff")},
                author="bob",
                day=2 * k + 1.5,
                message=f"fix retry bug in task_{k}",
            )
        )
    data = root / "data"
    mine(b.path, data, config=MineConfig(code_metrics=False))
    label(b.path, data, LabelConfig())
    frame = DataDir(data).dataset().changes
    frame = frame.assign(author_time=pd.to_datetime(frame["author_time"], utc=True))
    return {
        "repo": b.path,
        "data": data,
        "adds": adds,
        "fixes": fixes,
        "frame": frame,
        "links": DataDir(data).links(),
    }


def _is_py(path: str) -> bool:
    return path.endswith(".py")


def test_szz_links_label_the_fixed_lines_buggy(world: dict) -> None:
    repo = open_repo(world["repo"])
    when = dict(zip(world["frame"]["sha"], world["frame"]["author_time"], strict=True))
    table = link_table(world["links"], when)
    sha = world["adds"][3]
    lines = read_change_lines(repo, sha, _is_py, _DIFF_FLAGS)
    assert lines is not None
    assert [ln.line for ln in lines] == list(range(1, 9))
    ch = label_lines(sha, lines, table[table["inducing_sha"] == sha], None)
    assert ch.y.tolist() == [0, 0, 1, 1, 1, 0, 0, 0]
    # a fix after the cutoff labels nothing: no line is buggy yet
    before = pd.Timestamp(ts(2 * 3 + 1.0), unit="s", tz="UTC")
    early = label_lines(sha, lines, table[table["inducing_sha"] == sha], before)
    assert early.y.tolist() == [0] * 8


def test_the_line_model_learns_the_name_the_fixes_removed(world: dict) -> None:
    repo = open_repo(world["repo"])
    lm = fit_from_history(repo, world["frame"], world["links"], _is_py, _DIFF_FLAGS)
    assert lm is not None
    assert lm.trained_on["changes"] == N
    assert (lm.trained_on["lines"], lm.trained_on["buggy_lines"]) == (8 * N, 3 * N)
    assert lm.token_weights["retry"] > 0
    assert lm.token_weights["retry"] == max(lm.token_weights.values())
    assert "backoff" not in lm.token_weights  # never on an added line of these changes
    # before the 10th fix, 9 changes are known to be defect-inducing: too few to learn from
    cutoff = pd.Timestamp(ts(2 * 9 + 1.0), unit="s", tz="UTC")
    assert (
        fit_from_history(repo, world["frame"], world["links"], _is_py, _DIFF_FLAGS, cutoff) is None
    )
    # stored as JSON and read back, it scores the same
    back = LineModel.from_dict(lm.to_dict())
    lines = read_change_lines(repo, world["adds"][0], _is_py, _DIFF_FLAGS) or []
    assert np.allclose(back.score(lines), lm.score(lines), atol=1e-4)
    assert set(back.weights) == set(FEATURES)


def test_the_retry_line_ranks_above_the_same_line_without_it(world: dict) -> None:
    repo = open_repo(world["repo"])
    lm = fit_from_history(repo, world["frame"], world["links"], _is_py, _DIFF_FLAGS)
    assert lm is not None

    def line(no: int, text: str, tokens: tuple[str, ...]) -> AddedLine:
        return AddedLine("src/new.py", no, text, False, 4, tokens, False, 0, 6)

    same = ("=", "(", "item", ",", ")")
    lines = [
        line(1, "outcome = fetch(item, 5)", ("outcome", *same[:1], "fetch", *same[1:])),
        line(2, "outcome = retry(item, 5)", ("outcome", *same[:1], "retry", *same[1:])),
        line(3, "total = value * 2", ("total", "=", "value", "*")),
        line(4, "print(total)", ("print", "(", "total", ")")),
    ]
    s = lm.score(lines)
    # the same line but for `retry`; and the retry line first of all
    assert s[1] > s[0] and int(np.argmax(s)) == 1
    assert s[1] - s[0] == pytest.approx(lm.token_weights["retry"], abs=1e-9)


def test_the_lines_know_their_file_and_hunk() -> None:
    diff = (
        b"diff --git a/a.py b/a.py\nnew file mode 100644\n--- /dev/null\n+++ b/a.py\n"
        b"@@ -0,0 +1,2 @@\n+def f(x):\n+    return g(x)\n"
        b"diff --git a/b.py b/b.py\n--- a/b.py\n+++ b/b.py\n"
        b"@@ -3 +3 @@\n-y = 1\n+y = compute(2)\n@@ -10,0 +11,2 @@\n+z = y + 1\n+w = z\n"
    )
    got = parse_added_lines(diff)
    assert [(ln.line, ln.new_file, ln.hunk_old, ln.hunk_new) for ln in got["a.py"]] == [
        (1, True, 0, 2),
        (2, True, 0, 2),
    ]
    assert [(ln.line, ln.new_file, ln.hunk_old, ln.hunk_new) for ln in got["b.py"]] == [
        (3, False, 1, 1),
        (11, False, 0, 2),
        (12, False, 0, 2),
    ]
    # by hand: `return g(x)` is a call and an exit, nested one level, in a new file
    x = dict(zip(FEATURES, change_features(got["a.py"])[1], strict=True))
    assert (x["call"], x["exit"], x["nesting"], x["new_file"], x["replaces"]) == (1, 1, 1, 1, 0)
    assert x["definition"] == 0 and x["assignment"] == 0
    y = dict(zip(FEATURES, change_features(got["b.py"])[0], strict=True))
    assert (y["assignment"], y["call"], y["number"], y["replaces"], y["new_file"]) == (
        1,
        1,
        1,
        1,
        0,
    )
