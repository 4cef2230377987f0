"""The risky lines: which added lines of a change drive its risk, on a built repository.

History (days after 2020-01-01): ann writes ``src/app.py`` and ``src/util.py`` and grows
them for 12 days; the dataset is mined from it. The model is a real ``tokens`` model
(JITLine's recipe) fitted on synthetic rows where changes whose added code names ``lock``
and ``retry`` are mostly buggy and every other token goes with clean changes, saved and
loaded through the registry; a second data directory has a logistic model, which weighs
no tokens (the line-size fallback).

The pull request (branch ``pr``, day 14) appends to ``src/app.py``::

    def handler(item):                      line 13
        value = item.value                  line 14
        # take the lock before retrying     line 15 (a comment: never ranked)
        lock.retry(lock, retry)             line 16 <- every name a buggy change used
        total = value + 1                   line 17
        return total                        line 18
    ...
        retry(3)                            line 24 <- one such name

so by hand: line 16 ranks first, line 24 second; no other line holds a token that weighs
toward a defect (a line scores the sum of its tokens' positive weights). Moving the
function down by two lines (branch ``pr-moved``) moves the ranges by two and keeps every
SARIF fingerprint.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from click.testing import CliRunner

from diffrisk.cli import cli
from diffrisk.hosts.github.publish import annotations_for
from diffrisk.mining.mine import mine
from diffrisk.report.render import render_comment, render_summary
from diffrisk.scoring.lines import (
    BASIS_SIZE,
    BASIS_TOKENS,
    parse_added_lines,
    rank_lines,
    risky_ranges,
    token_weights,
)
from diffrisk.scoring.result import load_result
from diffrisk.scoring.score import score
from modelbuilder import install_model, synthetic_changes
from repobuilder import RepoBuilder

BASE_APP = [f"setting_{i} = {i}" for i in range(12)]
PR_APP = [
    "def handler(item):",
    "    value = item.value",
    "    # take the lock before retrying",
    "    lock.retry(lock, retry)",
    "    total = value + 1",
    "    return total",
    "",
    "",
    "def report(item):",
    "    if item:",
    "        print(item)",
    "    retry(3)",
]


def install_tokens_model(data: Path, seed: int = 5, n: int = 800) -> None:
    """A ``tokens`` model: changes naming ``lock`` or ``retry`` are mostly buggy."""
    from diffrisk.data.paths import models_dir
    from diffrisk.model.contributions import model_reference
    from diffrisk.model.estimators import fit_estimator
    from diffrisk.model.registry import ModelRegistry
    from diffrisk.model.transforms import raw_features

    X, _ = synthetic_changes(n, seed)
    r = np.random.default_rng(seed)
    risky = r.random(n) < 0.3
    X["la_code"] = X["la"] * 0.8
    X["la_control"] = X["la"] * 0.2
    words = np.where(risky, "lock retry", "value item total return print load stats if ( ) , . = +")
    X["code_tokens"] = [" ".join(sorted(set(w.split()))) for w in words]
    y = (r.random(n) < np.where(risky, 0.8, 0.1)).astype(int)
    est = fit_estimator("tokens", X, y)
    reg = ModelRegistry(models_dir(data))
    version = reg.save(
        est,
        {
            "kind": "tokens",
            "features": raw_features("tokens"),
            "reference": model_reference("tokens", est, X),
            "metrics": {"auc": 0.8},
        },
    )
    reg.promote(version)


def _text(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("lines")
    b = RepoBuilder(root / "repo")
    util = [f"helper_{i} = {i}" for i in range(5)]
    b.commit({"src/app.py": _text(BASE_APP[:6]), "src/util.py": _text(util)}, message="start")
    for day in range(1, 13):
        if day % 2:
            util.append(f"more_{day} = {day}")
            b.commit({"src/util.py": _text(util)}, author="bob", day=day, message=f"util {day}")
        else:  # app.py grows to BASE_APP by day 12
            b.commit({"src/app.py": _text(BASE_APP[: 6 + day // 2])}, day=day, message=f"app {day}")
    base = b.head()
    b.branch("pr", base)
    b.checkout("pr")
    pr = b.commit({"src/app.py": _text(BASE_APP + PR_APP)}, author="zed", day=14, message="handler")
    b.branch("pr-moved", base)
    b.checkout("pr-moved")
    moved = b.commit(
        {"src/app.py": _text([*BASE_APP, "", "", *PR_APP])},
        author="zed",
        day=14,
        message="handler, two lines lower",
    )
    b.checkout("main")
    data = root / "data"
    mine(b.path, data, rev="main")
    install_tokens_model(data)
    logistic = root / "data-logistic"
    mine(b.path, logistic, rev="main")
    install_model(logistic, seed=7, n=800, max_ns=5, intercept=-0.5, all_features=True)
    return {"repo": b.path, "data": data, "logistic": logistic, "pr": pr, "moved": moved}


@pytest.fixture(scope="module")
def scored(world: dict):
    return score(world["repo"], "main", "pr", world["data"])


# -- the lines ------------------------------------------------------------------------------


def test_added_lines_are_the_lines_of_code_with_head_line_numbers() -> None:
    diff = (
        b"diff --git a/src/m.py b/src/m.py\n--- a/src/m.py\n+++ b/src/m.py\n"
        b"@@ -2,0 +3,4 @@\n+# note\n+if ready:\n+    go()\n+\n"
        b"@@ -9 +12,2 @@\n-    old_call(a)\n+        old_call(a)\n+import os\n"
        b"diff --git a/README.md b/README.md\n--- a/README.md\n+++ b/README.md\n"
        b"@@ -0,0 +1 @@\n+text\n"
    )
    got = parse_added_lines(diff, lambda p: p.endswith(".py"))
    assert list(got) == ["src/m.py"]
    lines = got["src/m.py"]
    # the comment, the blank line, the re-indented line and the import are not ranked
    assert [(ln.line, ln.text, ln.control, ln.indent) for ln in lines] == [
        (4, "if ready:", True, 0),
        (5, "go()", False, 4),
    ]
    assert lines[0].tokens == ("if", "ready", ":")


def test_a_line_full_of_high_weight_tokens_ranks_first(world: dict, scored) -> None:
    from diffrisk.model.registry import load_model

    weights = token_weights(load_model(world["data"]).estimator)
    assert weights is not None
    assert weights["lock"] > 0 and weights["retry"] > 0 and weights["print"] < 0
    (f,) = [f for f in scored.files if f.path == "src/app.py"]
    assert scored.risky_lines_basis == BASIS_TOKENS
    first = f.risky_lines[0]
    assert (first.first_line, first.last_line) == (16, 16)
    assert first.lines == ["lock.retry(lock, retry)"]
    assert set(first.tokens) == {"lock", "retry"} and first.basis == BASIS_TOKENS
    assert "`lock`" in first.reason and "`retry`" in first.reason
    assert first.score == pytest.approx(weights["lock"] + weights["retry"], abs=1e-6)
    # the line with one risky name comes next: `(` and `)` weigh toward clean changes and
    # count nothing; no other line holds a name that weighs toward a defect
    assert [(r.first_line, r.last_line) for r in f.risky_lines] == [(16, 16), (24, 24)]
    assert weights["("] < 0 and weights[")"] < 0
    assert f.risky_lines[1].score == pytest.approx(weights["retry"], abs=1e-6)
    # the comment line (15) is never ranked
    assert all(not (r.first_line <= 15 <= r.last_line) for r in f.risky_lines)


def test_a_line_scores_the_positive_weights_of_its_tokens() -> None:
    from diffrisk.scoring.lines import AddedLine

    def line(no: int, *tokens: str) -> AddedLine:
        return AddedLine("a.py", no, " ".join(tokens), False, 0, tokens)

    weights = {"lock": 2.0, "retry": 1.0, "self": -0.5, "(": 0.1}
    lines = [
        line(1, "self", "("),
        line(2, "retry", "("),
        line(3, "lock", "retry"),
        line(4, "lock", "self"),  # `self` weighs toward clean changes: it cancels nothing
        line(9, "x"),
    ]
    assert [(ln.line, s) for ln, s in rank_lines(lines, weights)] == [
        (3, 3.0),
        (4, 2.0),
        (2, 1.1),
        (1, 0.1),
        (9, 0.0),
    ]
    # the two best lines are adjacent: one range, named by its risky names
    (r,) = risky_ranges(lines, weights, top=2)
    assert (r.first_line, r.last_line, r.score, r.tokens) == (3, 4, 3.0, ["lock", "retry"])
    # lines that score 0 are never risky; lines up to 2 apart join
    assert [(r.first_line, r.last_line) for r in risky_ranges(lines, weights)] == [(1, 4)]
    assert risky_ranges([line(1, "x")], weights) == []


def test_the_prior_model_ranks_lines_by_its_own_token_weights() -> None:
    from diffrisk.model.estimators import PriorLogisticRegression, fit_estimator, token_bag

    X, _ = synthetic_changes(600, 3)
    prior = fit_estimator("la", X, (X["la"] > 250).to_numpy().astype(int))
    r = np.random.default_rng(3)
    risky = r.random(len(X)) < 0.3
    X["code_tokens"] = np.where(risky, "retry self", "self value")
    y = (r.random(len(X)) < np.where(risky, 0.8, 0.1)).astype(int)
    est = PriorLogisticRegression(prior, token_bag(), C=0.1, class_weight=None).fit(X, y)
    weights = token_weights(est)
    assert weights is not None
    names = est.features_.named_steps["bag"].get_feature_names_out()
    assert weights == pytest.approx(dict(zip(names, est.coef_, strict=True)))
    assert weights["retry"] > 0 > weights["value"]
    # fitted without tokens (a short history): no weights, the line-size fallback
    assert token_weights(PriorLogisticRegression(prior, None).fit(X, y)) is None


def test_without_token_weights_the_longest_lines_rank_first() -> None:
    from diffrisk.scoring.lines import AddedLine

    def line(no: int, n: int) -> AddedLine:
        toks = tuple(f"t{i}" for i in range(n))
        return AddedLine("a.py", no, " ".join(toks), False, 0, toks)

    lines = [line(1, 2), line(2, 7), line(3, 1), line(20, 5), line(40, 3), line(60, 3)]
    got = risky_ranges(lines, None)
    # the 5 longest: 2 (7 tokens), 20 (5), 40 and 60 (3), 1 (2); lines 1 and 2 join; the
    # 3 best ranges are kept
    assert [(r.first_line, r.last_line, r.score) for r in got] == [
        (1, 2, 7.0),
        (20, 20, 5.0),
        (40, 40, 3.0),
    ]
    assert all(r.basis == BASIS_SIZE and r.tokens == [] for r in got)
    # a file of 5 lines or fewer: the heuristic would pick every line, which says nothing
    assert risky_ranges(lines[:5], None) == []


def test_other_models_fall_back_on_line_size_and_say_so(world: dict) -> None:
    res = score(world["repo"], "main", "pr", world["logistic"])
    (f,) = [f for f in res.files if f.path == "src/app.py"]
    assert res.risky_lines_basis == BASIS_SIZE
    # distinct tokens per line: 13 `def handler(item):` 6, 16 `lock.retry(lock, retry)` 6,
    # 21 `def report(item):` 6, then 14, 17 and 23 with 4 (line order breaks the tie):
    # 13, 14, 16 and 17 join (at most 2 apart), 21 stands alone
    assert [(r.first_line, r.last_line) for r in f.risky_lines] == [(13, 17), (21, 21)]
    assert f.risky_lines[0].lines == [PR_APP[i].strip() for i in (0, 1, 3, 4)]
    assert all(r.basis == BASIS_SIZE for r in f.risky_lines)
    assert "not lines" in f.risky_lines[0].reason


# -- where they are shown ----------------------------------------------------------------


def test_annotations_point_at_the_risky_lines(scored) -> None:
    d = scored.to_dict()
    ann = [a for a in annotations_for(d) if a["path"] == "src/app.py"]
    assert [(a["start_line"], a["end_line"]) for a in ann][:2] == [(16, 16), (24, 24)]
    assert "`lock`" in ann[0]["message"] and ann[0]["title"].startswith("diffrisk: risky lines")
    assert annotations_for(d, limit=1) == annotations_for(d)[:1]
    # without risky lines: one annotation per hotspot file, as before
    for f in d["files"]:
        f["risky_lines"] = []
    plain = annotations_for(d)
    assert len(plain) == len(d["files"]) and plain[0]["title"].startswith("diffrisk hotspot")


def test_comment_and_summary_name_the_risky_lines(scored) -> None:
    d = scored.to_dict()
    for text in (render_comment(d), render_summary(d)):
        assert "| Risky lines |" in text
        assert "L16 (<code>lock</code>, <code>retry</code>); L24 (<code>retry</code>)" in text
        assert "the sum of its tokens' weights" in text
    for f in d["files"]:
        f["risky_lines"] = []
    assert "Risky lines" not in render_comment(d)  # absent without any (the golden files)


def test_json_round_trip_keeps_the_ranges(scored, tmp_path: Path) -> None:
    p = tmp_path / "r.json"
    p.write_text(json.dumps(scored.to_dict()))
    back = load_result(p)
    assert back.files[0].risky_lines == scored.files[0].risky_lines
    assert back.risky_lines_basis == BASIS_TOKENS


def test_cli_sarif_output(world: dict, tmp_path: Path) -> None:
    out = tmp_path / "r.sarif"
    res = CliRunner().invoke(
        cli,
        [
            "score",
            "--repo",
            str(world["repo"]),
            "--data-dir",
            str(world["data"]),
            "--base",
            "main",
            "--head",
            "pr",
            "--no-log",
            "--format",
            "sarif",
            "--output",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    log = json.loads(out.read_text())
    schema = Path(__file__).resolve().parents[1] / "fixtures" / "sarif" / "sarif-schema-2.1.0.json"
    jsonschema.Draft4Validator(json.loads(schema.read_text(encoding="utf-8"))).validate(log)
    regions = [
        r["locations"][0]["physicalLocation"]["region"]["startLine"]
        for r in log["runs"][0]["results"]
    ]
    assert 16 in regions


def test_fingerprints_stay_when_lines_move(world: dict) -> None:
    from diffrisk.report.sarif import to_sarif

    a = to_sarif(score(world["repo"], "main", "pr", world["data"]))
    b = to_sarif(score(world["repo"], "main", "pr-moved", world["data"]))

    def regions(log: dict) -> dict[str, tuple[int, int]]:
        out = {}
        for r in log["runs"][0]["results"]:
            reg = r["locations"][0]["physicalLocation"]["region"]
            out[r["partialFingerprints"]["diffriskRegion/v1"]] = (reg["startLine"], reg["endLine"])
        return out

    ra, rb = regions(a), regions(b)
    assert ra and set(ra) == set(rb)
    assert all(rb[k] == (s + 2, e + 2) for k, (s, e) in ra.items())
