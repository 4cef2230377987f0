"""Rendering: golden Markdown files, escaping of repository text, limits, custom templates.

The golden files in tests/fixtures/golden/ were reviewed by eye (and pasted into a GitHub comment
preview). After an intended change of a template, regenerate them with
``DIFFRISK_UPDATE_GOLDEN=1 pytest tests/test_report.py`` and review the diff.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from diffrisk import __version__
from diffrisk.config import ReportConfig
from diffrisk.errors import ConfigError, DataError
from diffrisk.report.render import (
    CHECK_SUMMARY_LIMIT,
    COMMENT_LIMIT,
    code,
    comment_marker,
    md,
    metrics,
    prob,
    render_check_summary,
    render_comment,
    render_summary,
    render_terminal,
    result_dict,
    title,
)
from diffrisk.scoring.result import CommitRisk, Factor, FileRisk, ScoreResult, load_result

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
UPDATE = os.environ.get("DIFFRISK_UPDATE_GOLDEN") == "1"


def high_result() -> ScoreResult:
    """A risky PR whose repository text tries Markdown/HTML injection and pings."""
    return ScoreResult(
        repo="octo/widgets",
        base="0123456789abcdef0123456789abcdef01234567",
        head="fedcba9876543210fedcba9876543210fedcba98",
        probability=0.823,
        level="high",
        percentile=95.4,
        model_version="20240601T120000-3f2a9c1",
        model_source="repository",
        model_metrics={
            "auc": 0.781,
            "brier": 0.142,
            "pr_auc": {"mean": 0.412, "std": 0.051},
            "n_test": 1834,
        },
        features={"la": 1234, "nf": 12},
        factors=[
            Factor("la", 1234.0, 0.91, "1,234 lines added"),
            Factor("exp", 3.0, -0.42, "the author has made 3 changes before"),
            Factor("nf", 12.0, 0.33, "12 files touched"),
            Factor("entropy", 0.734, 0.12, "changes spread evenly over the files"),
            Factor("fix", 1.0, 0.05, "a bug fix"),
        ],
        files=[
            FileRisk(
                "src/widgets/parser.py",
                0.81,
                ["7 past fixes", "complexity +12"],
                320,
                40,
                7,
                12.0,
                31,
            ),
            FileRisk("src/a|b`c<script>.py", 0.52, ["new file"], 88, 0, 0, None),
            FileRisk("docs/**bold**_x_.md", 0.11, [], 5, 1, 0, None, 2),
        ],
        commits=[
            CommitRisk(
                "1111111111aaaaaaaaaa1111111111aaaaaaaaaa",
                "Rewrite the parser | <img src=x onerror=alert(1)>",
                0.77,
                "high",
            ),
            CommitRisk(
                "2222222222bbbbbbbbbb2222222222bbbbbbbbbb",
                "Fix #12 for @alice, see octo/other#3 and `code` [link](http://x)",
                0.41,
                "medium",
            ),
            CommitRisk(
                "3333333333cccccccccc3333333333cccccccccc",
                "Docs " + "very long subject " * 10,
                0.05,
                "low",
            ),
        ],
        advice=[
            "Split this change: 1,234 added lines are hard to review.",
            "src/widgets/parser.py had 7 fixes: add tests.",
        ],
        reviewers=[("alice@example.com", 14), ("bob@example.com", 1)],
        thresholds={"medium": 0.4, "high": 0.7},
        warnings=["2 files could not be parsed"],
    )


def low_result() -> ScoreResult:
    """A small change scored with the bundled model: most sections are absent."""
    return ScoreResult(
        repo="octo/widgets",
        base="0" * 40,
        head="1" * 40,
        probability=0.004,
        level="low",
        percentile=None,
        model_version="bundled-2024.1",
        model_source="bundled",
        model_metrics={},
        features={"la": 3},
        factors=[Factor("la", 3.0, -0.6, "only 3 lines added")],
        thresholds={"medium": 0.4, "high": 0.7},
    )


@pytest.mark.parametrize(
    ("source", "says", "measured_on"),
    [
        ("repository", "trained on this repository", "held-out later changes"),
        (
            "bundled",
            "bundled with diffrisk, not trained on this repository)",
            "projects it was not",
        ),
        (
            "bundled-chosen",
            "not trained on this repository; chosen because it ranked best on this repository's history",
            "held-out later changes",
        ),
    ],
)
def test_model_block_says_where_the_model_comes_from(source, says, measured_on) -> None:
    r = low_result()
    r.model_source = source
    r.model_metrics = {"overall": {"roc_auc": 0.8}, "baseline": {"roc_auc": 0.7}}
    text = render_comment(r)
    assert says in text
    assert f"Measured on {measured_on}" in text


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    text = text.replace(f"diffrisk {__version__} ", "diffrisk VERSION ")  # goldens survive releases
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with DIFFRISK_UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from the golden file"


def details_balanced(text: str) -> bool:
    depth = 0
    for m in re.finditer(r"<(/?)details\b", text):
        depth += -1 if m.group(1) else 1
        if depth < 0:
            return False
    return depth == 0


# ---------------------------------------------------------------------- golden files
@pytest.mark.parametrize(
    ("name", "render"),
    [
        (
            "comment_high.md",
            lambda: render_comment(
                high_result(), summary_url="https://github.com/octo/widgets/actions/runs/42"
            ),
        ),
        (
            "summary_high.md",
            lambda: render_summary(high_result(), report_path="/tmp/diffrisk-report.json"),
        ),
        ("comment_low.md", lambda: render_comment(low_result())),
        ("summary_low.md", lambda: render_summary(low_result())),
    ],
)
def test_golden(name: str, render: object) -> None:
    text = render()  # type: ignore[operator]
    check_golden(name, text)
    assert details_balanced(text)


def test_comment_shape() -> None:
    text = render_comment(high_result())
    head, _, rest = text.partition("<details>")
    assert text.startswith(comment_marker("diffrisk") + "\n### 🔴 diffrisk: high risk (82%)\n")
    # The short part: level, one sentence, the top 3 factors; everything else is folded.
    assert re.findall(r"^\d\. ", head, re.M) == ["1. ", "2. ", "3. "]
    assert (
        "riskier than 95% of this repository's commits in the past year (this change combines 3"
        in head
    )
    assert "parser.py" not in head and "parser.py" in rest
    for section in (
        "All factors (5)",
        "Hotspot files (3)",
        "Commits (3)",
        "Advice",
        "Suggested reviewers",
        "Model and accuracy",
    ):
        assert f"<summary>{section}</summary>" in text
    assert "| ROC AUC | 0.781 |" in text and "| PR AUC | 0.412 ± 0.051 |" in text


def test_repository_text_cannot_inject_markdown_or_html() -> None:
    text = render_comment(high_result())
    assert "<img" not in text and "<script>" not in text
    assert "@alice" not in text and not re.search(r"(?<!&)#\d", text)
    assert "[link](" not in text and "`code`" not in text
    # Every table row keeps its column count despite the | in paths and subjects.
    for table in re.findall(r"(?:^\|.*\|\n)+", text, re.M):
        rows = table.strip().split("\n")
        counts = {len(re.findall(r"(?<!\\)\|", r)) for r in rows}
        assert len(counts) == 1, rows


@given(st.text())
def test_md_escape_neutralises_everything(s: str) -> None:
    out = md(s)
    assert not set(out) & set("<>|`\n\r")
    assert not re.search(r"(?<![\w.+-])@\w", out)
    assert not re.search(r"(?<!&)#\w", out)
    assert not re.search(r"(?<!\\)[*_\[\]~]", out.replace("\\\\", ""))


@given(st.text())
def test_code_span_is_closed_and_inert(s: str) -> None:
    out = code(s)
    inner = out.removeprefix("<code>").removesuffix("</code>")
    assert not set(inner) & set("<>|`*_[]~\\\n")


@pytest.mark.parametrize(
    "name", ["comment_high.md", "summary_high.md", "comment_low.md", "summary_low.md"]
)
def test_goldens_render_as_intended(name: str) -> None:
    """Rendered with a CommonMark + tables parser: repository text produces no markup."""
    from markdown_it import MarkdownIt  # rich's Markdown parser

    source = (GOLDEN / name).read_text()
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(source)
    assert len(re.findall(r"<h\d>", html)) == len(re.findall(r"^#{2,3} ", source, re.M))
    for tag in ("<img", "<script", "<em>", "<h1", "<li><p>"):
        assert tag not in html, tag
    assert html.count("<strong>") == source.count("**Top factors**")
    assert html.count("<a href") == (1 if name == "comment_high.md" else 0)  # the run link
    for table in re.findall(r"<table>.*?</table>", html, re.S):
        widths = {
            len(re.findall(r"<t[hd][ >]", row)) for row in re.findall(r"<tr>.*?</tr>", table, re.S)
        }
        assert len(widths) == 1, table
    assert html.count("<details>") == html.count("</details>")


def test_filters() -> None:
    assert [prob(x) for x in (0.0, 0.004, 0.5, 0.996, 1.0, None)] == [
        "0%",
        "<1%",
        "50%",
        ">99%",
        "100%",
        "n/a",
    ]
    assert metrics({"x": "text", "brier": 0.1, "auc": 0.8, "flag": True}) == [
        ("ROC AUC", "0.800"),
        ("Brier score", "0.100"),
    ]
    assert title(high_result()) == "High risk (82%)"
    assert comment_marker("a b-->c") == '<!-- diffrisk:comment check="a%20b%2D%2D%3Ec" -->'
    assert comment_marker() == '<!-- diffrisk:comment check="diffrisk" -->'


# ---------------------------------------------------------------------- limits
def big_result(n: int) -> ScoreResult:
    r = high_result()
    r.files = [
        FileRisk(f"src/pkg/module_{i:05d}.py", 0.5, ["reason " * 10], 10, 1, 2, None)
        for i in range(n)
    ]
    return r


def test_overlong_comment_is_cut_cleanly() -> None:
    text = render_comment(big_result(3000), summary_url="https://github.com/o/r/actions/runs/1")
    assert len(text) <= COMMENT_LIMIT
    assert text.startswith(comment_marker("diffrisk"))
    assert details_balanced(text)
    assert text.endswith(
        "the full report is in the [job summary](https://github.com/o/r/actions/runs/1)._\n"
    )
    last_row = [line for line in text.splitlines() if line.startswith("| <code>src/pkg/")][-1]
    assert last_row.endswith("|")  # whole lines only
    summary = render_check_summary(big_result(3000))
    assert len(summary) <= CHECK_SUMMARY_LIMIT and details_balanced(summary)
    assert not summary.startswith("<!--")
    assert render_comment(big_result(10)).count("src/pkg/module") == 10  # short ones are untouched


# ---------------------------------------------------------------------- custom templates
def test_custom_template_from_the_repository(tmp_path: Path) -> None:
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "risk.md.j2").write_text(
        "{% import '_macros.j2' as m %}Risk {{ r.probability|prob }} for {{ r.commits[0].subject|md }}\n{{ m.sentence(r) }}\n"
    )
    cfg = ReportConfig(template=".github/risk.md.j2", check_name="nightly")
    text = render_comment(high_result(), cfg, repo_root=tmp_path)
    assert text.splitlines()[0] == comment_marker("nightly")
    assert (
        text.splitlines()[1]
        == "Risk 82% for Rewrite the parser &#124; &lt;img src=x onerror=alert(1)&gt;"
    )
    assert "This change is likely to introduce a defect" in text


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ r.__class__.__mro__ }}", "failed"),
        ("{{ ''.__class__.__subclasses__() }}", "failed"),
        ("{{ r.nope }}", "failed"),
        ("{% if %}", "line 1"),
    ],
)
def test_custom_template_is_sandboxed(tmp_path: Path, source: str, message: str) -> None:
    (tmp_path / "t.j2").write_text(source)
    with pytest.raises(ConfigError, match=message):
        render_comment(high_result(), ReportConfig(template="t.j2"), repo_root=tmp_path)


def test_custom_template_must_exist_inside_the_repository(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "outside.j2").write_text("x")
    with pytest.raises(ConfigError, match="outside the repository"):
        render_comment(
            high_result(), ReportConfig(template="../outside.j2"), repo_root=tmp_path / "repo"
        )
    with pytest.raises(ConfigError, match="does not exist"):
        render_comment(
            high_result(), ReportConfig(template="missing.j2"), repo_root=tmp_path / "repo"
        )


# ---------------------------------------------------------------------- I/O, terminal
def test_json_round_trip(tmp_path: Path) -> None:
    r = high_result()
    path = tmp_path / "r.json"
    path.write_text(json.dumps(r.to_dict()))
    back = load_result(path)
    assert back == r
    assert result_dict(back) == result_dict(r)


def test_load_result_rejects_other_json(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text('{"hello": 1}')
    with pytest.raises(DataError, match="not a diffrisk score result"):
        load_result(path)
    path.write_text("{")
    with pytest.raises(DataError, match="cannot read"):
        load_result(path)


def test_terminal_rendering() -> None:
    r = high_result()
    r.files[0].path = "src/[bold]x[/bold].py"
    buf = io.StringIO()
    render_terminal(r, Console(file=buf, width=200, color_system=None))
    text = buf.getvalue()
    assert (
        text.splitlines()[0]
        == "High risk (82%)  riskier than 95% of this repository's commits in the past year "
        "(this change combines 3 "
        "commits, and larger changes rank higher)"
    )
    assert "src/[bold]x[/bold].py" in text  # rich markup in a path is shown, not applied
    assert "1,234 lines added" in text and "+0.91" in text


def test_registry_metrics_are_shown_not_reported_missing() -> None:
    # The registry stores {"overall": {...}, "baseline": {...}, "folds": [...], ...}; the
    # comment once said "No accuracy measurements are stored" for every trained model.
    nested = {
        "overall": {"roc_auc": 0.8139, "pr_auc": 0.405, "n": 279.2, "density_popt": 0.78},
        "baseline": {"roc_auc": 0.8126},
        "folds": [{"roc_auc": 0.79}],
        "rank_metric": "roc_auc",
    }
    assert metrics(nested) == [("ROC AUC", "0.814 (baseline 0.813)"), ("PR AUC", "0.405")]
    r = high_result()
    r.model_metrics = nested
    text = render_comment(r)
    assert "No accuracy measurements" not in text
    assert "| ROC AUC | 0.814 (baseline 0.813) |" in text
    assert "held-out later changes (baseline: ranking by lines added)" in text


def test_review_order_and_rank_levels_are_said() -> None:
    from diffrisk.report.render import render_comment, render_summary

    r = high_result()
    plain = render_comment(r)
    assert "in this order" not in plain
    r.review_files = [f.path for f in reversed(r.files)]
    r.review_commits = [c.sha for c in reversed(r.commits)]
    r.level_rule = {
        "basis": "rank",
        "reference_text": "this repository's commits in the past year",
        "high_share": 0.05,
        "medium_share": 0.15,
    }
    r.percentile = 97.0
    for text in (render_comment(r), render_summary(r)):
        assert "read the files in this order (risk per changed line" in text
        assert "read the commits in this order" in text
        assert (
            "This change ranks among the riskiest 5%: riskier than 97% of this repository's" in text
        )
        assert (
            "Levels by rank among this repository's commits in the past year: high is the riskiest 5%"
            in text
        )
        assert "likely to introduce a defect" not in text
