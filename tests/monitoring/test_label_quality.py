"""diffrisk monitor: the label-quality section, from labels the real label stage made
(numbers worked out by hand), and its warnings among the monitor's."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from diffrisk.cli import cli
from diffrisk.config import LabelConfig, MineConfig, parse_config
from diffrisk.labelling.label import label
from diffrisk.mining.mine import mine
from diffrisk.monitoring import monitor as mon
from diffrisk.monitoring import render
from repobuilder import RepoBuilder

BASE = """\
def f(x):
    y = 0
    if x:
        y = 1
    return y


def g(a, b):
    return a + b
"""


def test_label_quality_section(builder: RepoBuilder, tmp_path: Path) -> None:
    b = builder
    b.commit({"m.py": BASE}, day=0, message="add")
    culprit = b.commit({"m.py": BASE.replace("a + b", "a - b")}, day=10, message="sub")
    b.commit({"n.py": "z = 1\n"}, day=11, message="add n")
    b.commit({"README.md": "read me\n"}, day=12, message="readme")
    b.commit(
        {"m.py": BASE}, day=300, message=f"Correct g\n\nRegression introduced in {culprit[:9]}."
    )
    data = tmp_path / "data"
    mine(b.path, data, config=MineConfig(code_metrics=False))
    label(b.path, data, LabelConfig(verification_days=0))
    r = mon.monitor(data, parse_config({"label": {"verification_days": 0}}))
    q = r.label_quality
    assert q is not None
    # four of the five change a source file; one fix (named by its developer) of them; the
    # commit it names (and SZZ blames) is the one buggy change of the four labelled
    assert (q["changes"], q["source_changes"], q["fixes"], q["fix_share"]) == (5, 4, 1, 0.25)
    assert q["fixes_by_source"] == {"developer": 1}
    assert (q["labelled"], q["buggy"], q["buggy_share"]) == (4, 1, 0.25)
    assert q["agreement"]["common"] == 1 and q["warnings"] == []
    md = render.to_markdown(r)
    assert md.count("### Label quality") == 1
    assert "| fixes | 1 (25% of 4 source-changing commits) |" in md
    assert "| buggy | 1 (25% of 4 labelled source changes) |" in md
    # Wilson of 1 of 1: (1 + 1.92) / 4.84 ± 1.96 · 0.98 / 4.84 -> 0.21 to 1
    assert (
        "| SZZ vs developers' links | 1 fixes: precision 1.00 (95% CI 0.21–1.00), "
        "recall 1.00 (95% CI 0.21–1.00) |" in md
    )
    assert not any(w.startswith("label quality") for w in r.warnings)
    # labels without the SZZ links the label stage wrote with them: said once, no section
    (data / "szz_links.parquet").unlink()
    r = mon.monitor(data, parse_config({"label": {"verification_days": 0}}))
    assert r.label_quality is None
    assert [w for w in r.warnings if w.startswith("label quality")] == [
        f"label quality: not assessed: no SZZ links in {data} (hint: run `diffrisk label` first)"
    ]
    assert "### Label quality" not in render.to_markdown(r)
    # no labels at all: the section is left out quietly
    (data / "labels.parquet").unlink()
    r = mon.monitor(data, parse_config({"label": {"verification_days": 0}}))
    assert r.label_quality is None
    assert not any(w.startswith("label quality") for w in r.warnings)
    assert "Label quality" not in render.to_markdown(r)


def test_label_quality_warnings_are_the_monitors(builder: RepoBuilder, tmp_path: Path) -> None:
    b = builder
    for i in range(60):  # features titled as fixes; each adds a new file, so blames nothing
        b.commit({f"f{i}.py": f"x = {i}\n"}, day=i, message=f"Fix #{i}: add feature {i}")
    data = tmp_path / "data"
    mine(b.path, data, config=MineConfig(code_metrics=False))
    label(b.path, data, LabelConfig(verification_days=0))
    (data / "cfg.toml").write_text("[label]\nverification_days = 0\n")
    args = ["monitor", "--repo", str(b.path), "--data-dir", str(data)]
    args += ["--config", str(data / "cfg.toml")]
    res = CliRunner().invoke(cli, [*args, "--json", "--markdown", str(tmp_path / "r.md")])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    q = d["label_quality"]
    assert (q["fixes"], q["source_changes"], q["fix_share"]) == (60, 60, 1.0)
    assert (q["fixes_labelling_nothing"], q["buggy"]) == (60, 0)
    ours = [w for w in d["warnings"] if w.startswith("label quality: ")]
    assert len(ours) == 2 and ours == ["label quality: " + w for w in q["warnings"]]
    assert ours[0].startswith("label quality: 100% of the commits that change source files")
    assert ours[1].startswith("label quality: 60 of 60 fixes label no commit")
    md = (tmp_path / "r.md").read_text()
    assert "| fixes | 60 (100% of 60 source-changing commits) |" in md
    # each warning once, among the monitor's
    assert "**Warning:**" not in md
    assert md.count("too many to be only fixes") == 1 and f"> ⚠️ {ours[0]}" in md
    res = CliRunner().invoke(cli, args, env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "label quality" in res.stdout
    assert "60 (100% of 60 source-changing commits)" in res.stdout
    assert res.stdout.count("too many to be only fixes") == 1
