"""diffrisk monitor: capture at a review budget of the prediction log, counted by hand."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from click.testing import CliRunner

from diffrisk.cli import cli
from diffrisk.config import MineConfig, parse_config
from diffrisk.data import predlog
from diffrisk.data.store import atomic_write_table, read_meta
from diffrisk.mining.mine import mine
from diffrisk.monitoring import capture, render
from diffrisk.monitoring import monitor as mon
from repobuilder import RepoBuilder

# ---------------------------------------------------------------------------------------
# A history of 48 changes, change i on day 2i adding src/m{i}.py (change 39 is the squash
# commit of pull request 7), then a docs-only change on day 96.
N = 48
SQUASH = 39
DOCS = N
#: With a 10-day verification latency changes after day 86 (44 and later) are too young.
CFG = parse_config({"label": {"verification_days": 10}})
NOW = pd.Timestamp("2020-04-15T00:00:00Z")


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    root = tmp_path_factory.mktemp("capture")
    b = RepoBuilder(root / "repo")
    shas = []
    for i in range(N):
        body = "".join(f"v{i}_{k} = {k}\n" for k in range(i % 7 + 1))
        msg = "Add thing (#7)" if i == SQUASH else f"change {i}"
        shas.append(b.commit({f"src/m{i}.py": body}, author="ann", day=2 * i, message=msg))
    shas.append(b.commit({"docs/notes.md": "notes\n"}, author="ann", day=2 * N, message="docs"))
    mine(b.path, root / "data", config=MineConfig(code_metrics=False))
    return b.path, root / "data", shas


def _data(history: tuple[Path, Path, list[str]], tmp_path: Path) -> Path:
    dst = tmp_path / "data"
    shutil.copytree(history[1], dst)
    return dst


def _write_labels(data: Path, shas: list[str], states: dict[int, str]) -> None:
    """labels.parquet per the label contract (of this dataset's generation); the docs
    change changes no source file."""
    rows = []
    for i, sha in enumerate(shas):
        st = states.get(i, "unlabelled")
        rows.append(
            {
                "sha": sha,
                "label": None if st == "unlabelled" else int(st == "buggy"),
                "label_state": st,
                "fixed_by": ["f" * 40] if st == "buggy" else [],
                "days_to_fix": 3.0 if st == "buggy" else None,
                "n_fixes": int(st == "buggy"),
                "source_files": 0 if i == DOCS else 1,
                "is_fix": 0,
            }
        )
    table = pa.Table.from_pandas(pd.DataFrame(rows), preserve_index=False).cast(
        pa.schema(
            [
                ("sha", pa.string()),
                ("label", pa.int8()),
                ("label_state", pa.string()),
                ("fixed_by", pa.list_(pa.string())),
                ("days_to_fix", pa.float64()),
                ("n_fixes", pa.int32()),
                ("source_files", pa.int32()),
                ("is_fix", pa.int8()),
            ]
        )
    )
    atomic_write_table(data / "labels.parquet", table, generation=read_meta(data)["generation"])


def _ranked(items: list[int], first: list[int]) -> dict[int, int]:
    """Rank (1 = riskiest) of each of ``items``: the buggy ones (``first``'s ranks, in
    order) and the others taking the remaining ranks in order."""
    buggy = [i for i in items if i in BUGGY]
    rest = [r for r in range(1, len(items) + 1) if r not in first]
    clean = [i for i in items if i not in BUGGY]
    return {**dict(zip(buggy, first, strict=True)), **dict(zip(clean, rest, strict=True))}


BUGGY = {3, 7, 11, 15, 19, 23, 27, 31, 35, SQUASH}


def _full_log(data: Path, shas: list[str]) -> None:
    """40 changes whose label is final, 10 of them buggy, and 6 predictions that do not count."""
    _write_labels(
        data,
        shas,
        {
            **{i: "buggy" if i in BUGGY else "clean" for i in range(44)},
            44: "clean",  # labelled clean, but younger than the monitor's latency
            45: "buggy",  # a bug found early: as young
            DOCS: "clean",  # changes no source file: SZZ cannot label it
        },
    )
    counted = list(range(40))
    # diffrisk ranks the buggy changes 1, 3, 4, 6, 9, 12, 20, 25, 30 and 38th of 40
    model = _ranked(counted, [1, 3, 4, 6, 9, 12, 20, 25, 30, 38])
    # lines added to source files rank them 2, 5, 7, 8, 11, 15, 22, 27, 33, 40th; the 8th
    # (buggy) and the 9th (clean) added as many lines: a tie straddling the 20% budget
    base = _ranked(counted, [2, 5, 7, 8, 11, 15, 22, 27, 33, 40])
    t = NOW - pd.Timedelta(days=30)

    def feats(i: int) -> dict[str, Any]:
        b = base[i]
        # all lines added (tests, docs too) rank them the other way round
        return {"la_source": 1000 - 10 * (8 if b == 9 else b), "la": 10 * b}

    recs: list[dict[str, Any]] = [
        dict(
            head_sha=shas[i],
            commits=[shas[i]],
            probability=1 - model[i] / 100,
            level="low",
            features=feats(i),
            time=t,
        )
        for i in range(SQUASH)
    ]
    # pull request 7, scored on two pushes and squash-merged as change 39: the last counts
    recs += [
        dict(
            head_sha="a" * 40,
            commits=["a" * 40],
            pr=7,
            probability=0.999,
            level="high",
            features={"la_source": 5000, "la": 5000},
            time=t - pd.Timedelta(hours=1),
        ),
        dict(
            head_sha="b" * 40,
            commits=["a" * 40, "b" * 40],
            pr=7,
            probability=1 - model[SQUASH] / 100,
            level="low",
            features=feats(SQUASH),
            time=t,
        ),
    ]
    # never merged; too young (44 clean, 45 buggy); unlabelled (46); the docs change
    for head, commits in (("c" * 40, ["c" * 40]), *((shas[i], [shas[i]]) for i in (44, 45, 46))):
        recs.append(dict(head_sha=head, commits=commits, probability=0.95, level="high", time=t))
    recs.append(dict(head_sha=shas[DOCS], commits=[shas[DOCS]], probability=0.97, time=t))
    predlog.append(data, recs)


def test_capture_at_a_review_budget_by_hand(
    history: tuple[Path, Path, list[str]], tmp_path: Path
) -> None:
    data = _data(history, tmp_path)
    _full_log(data, history[2])
    c = mon.monitor(data, CFG, now=NOW).capture
    assert c is not None
    assert (c["predictions"], c["superseded"], c["unmerged"], c["unlabelled"]) == (46, 1, 1, 1)
    assert (c["too_young"], c["unlabelable"]) == (2, 1)
    assert (c["n"], c["n_buggy"], c["n_clean"]) == (40, 10, 30)
    assert not c["too_uncertain"] and c["baseline_feature"] == "la_source"
    b5, b10, b20 = c["budgets"]
    # budgets of 40 changes: 2, 4 and 8
    assert [b["changes"] for b in c["budgets"]] == [2, 4, 8]
    # diffrisk: ranks 1 | 1, 3, 4 | 1, 3, 4, 6 of the buggy fall inside: 1, 3, 4 of 10
    assert [b["model"] for b in c["budgets"]] == pytest.approx([0.1, 0.3, 0.4])
    assert [b["model_caught"] for b in c["budgets"]] == pytest.approx([1, 3, 4])
    # lines added: rank 2 | 2 | 2, 5, 7 and half of the 8th/9th tie for the last place: 3.5
    assert [b["baseline"] for b in c["budgets"]] == pytest.approx([0.1, 0.1, 0.35])
    # Wilson 95%: (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n), z = 1.96, n = 10
    assert b5["model_ci"] == pytest.approx((0.0179, 0.4042), abs=1e-4)  # 1 of 10
    assert b10["model_ci"] == pytest.approx((0.1078, 0.6032), abs=1e-4)  # 3 of 10
    assert b20["model_ci"] == pytest.approx((0.1682, 0.6873), abs=1e-4)  # 4 of 10
    assert b20["baseline_ci"] == pytest.approx((0.1369, 0.6463), abs=1e-4)  # 3.5 of 10
    assert b10["baseline_ci"] == b5["model_ci"]

    md = render.to_markdown(mon.monitor(data, CFG, now=NOW))
    assert "### Capture at a review budget" in md
    assert "| riskiest | changes | diffrisk | lines added (`la_source`) |" in md
    assert "| 5% | 2 | 10% (95% CI 2%–40%) | 10% (95% CI 2%–40%) |" in md
    assert "| 10% | 4 | 30% (95% CI 11%–60%) | 10% (95% CI 2%–40%) |" in md
    assert "| 20% | 8 | 40% (95% CI 17%–69%) | 35% (95% CI 14%–65%) |" in md
    assert (
        "40 logged changes with a known label (10 buggy, 30 clean); left out: 1 still "
        "unlabelled, 2 younger than the verification latency, 1 not merged, 1 that SZZ cannot "
        "label (no source file changed), 1 superseded by a later prediction of the same pull "
        "request." in md
    )
    assert "Too uncertain" not in md


def test_capture_with_few_buggy_changes_is_too_uncertain(
    history: tuple[Path, Path, list[str]], tmp_path: Path
) -> None:
    data = _data(history, tmp_path)
    shas = history[2]
    # 12 changes labelled, 4 of them buggy (3, 7, 11 and 0)
    _write_labels(data, shas, {i: "buggy" if i in (0, 3, 7, 11) else "clean" for i in range(12)})
    model = {0: 1, 3: 2, 7: 5, 11: 9}  # the buggy ones' ranks; the clean ones after them
    rest = iter(r for r in range(1, 13) if r not in model.values())
    recs = []
    for i in range(12):
        rank = model[i] if i in model else next(rest)
        feats: dict[str, Any] = {"la": 10 * i + 1, "la_source": 1000 - i}
        if i == 5:  # logged before la_source existed: the baseline ranks every change by la
            del feats["la_source"]
        recs.append(
            dict(head_sha=shas[i], commits=[shas[i]], probability=1 - rank / 100, features=feats)
        )
    predlog.append(data, recs)
    r = mon.monitor(data, CFG, now=NOW)
    c = r.capture
    assert c is not None and (c["n"], c["n_buggy"]) == (12, 4)
    assert c["too_uncertain"] and c["min_buggy"] == 10
    assert [b["changes"] for b in c["budgets"]] == [1, 2, 3]  # ceil of 0.6, 1.2, 2.4
    # ranks 1 | 1, 2 | 1, 2 of the 4 buggy; by la the newest changes first: 11 | 11 | 11
    assert [b["model"] for b in c["budgets"]] == pytest.approx([0.25, 0.5, 0.5])
    assert c["baseline_feature"] == "la"
    assert [b["baseline"] for b in c["budgets"]] == pytest.approx([0.25, 0.25, 0.25])
    assert c["budgets"][0]["model_ci"] == pytest.approx((0.0456, 0.6994), abs=1e-4)  # 1 of 4
    assert c["budgets"][1]["model_ci"] == pytest.approx((0.1500, 0.8500), abs=1e-4)  # 2 of 4
    md = render.to_markdown(r)
    assert "**Too uncertain to report a figure:** only 4 buggy (fewer than 10" in md
    assert "| riskiest | changes | diffrisk | lines added (`la`) |" in md
    assert "| 5% | 1 | too uncertain (95% CI 5%–70%) | too uncertain (95% CI 5%–70%) |" in md
    assert "| 10% | 2 | too uncertain (95% CI 15%–85%) | too uncertain (95% CI 5%–70%) |" in md
    assert "25% (" not in md and "50% (" not in md  # no figure printed alone
    # monitor.min_buggy sets how many buggy changes a figure needs
    c4 = mon.monitor(
        data,
        parse_config({"monitor": {"min_buggy": 4}, "label": {"verification_days": 10}}),
        now=NOW,
    )
    assert c4.capture is not None and not c4.capture["too_uncertain"]
    assert "| 10% | 2 | 50% (95% CI 15%–85%) | 25% (95% CI 5%–70%) |" in render.to_markdown(c4)


def test_no_labels_no_capture(history: tuple[Path, Path, list[str]], tmp_path: Path) -> None:
    data = _data(history, tmp_path)
    _full_log(data, history[2])
    (data / "labels.parquet").unlink()
    r = mon.monitor(data, CFG, now=NOW)
    assert r.capture is None
    md = render.to_markdown(r)
    assert "Capture at a review budget" not in md
    assert "The prediction log is empty" not in md and "| all | 46 |" in md


def test_cli_json_and_terminal_show_capture(
    history: tuple[Path, Path, list[str]], tmp_path: Path
) -> None:
    data = _data(history, tmp_path)
    _full_log(data, history[2])
    (data / "cfg.toml").write_text("[label]\nverification_days = 10\n")
    args = ["monitor", "--repo", str(history[0]), "--data-dir", str(data)]
    args += ["--config", str(data / "cfg.toml")]
    res = CliRunner().invoke(cli, [*args, "--json"])
    assert res.exit_code == 0, res.output
    c = json.loads(res.stdout)["capture"]
    assert (c["n"], c["n_buggy"], c["baseline_feature"]) == (40, 10, "la_source")
    assert [b["model"] for b in c["budgets"]] == pytest.approx([0.1, 0.3, 0.4])
    assert c["budgets"][2]["baseline_ci"] == pytest.approx([0.1369, 0.6463], abs=1e-4)
    res = CliRunner().invoke(cli, args, env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "capture at a review budget" in res.stdout
    assert "40% (95% CI 17%–69%)" in res.stdout and "35% (95% CI 14%–65%)" in res.stdout


def test_wilson_with_a_fractional_count() -> None:
    from diffrisk.labelling.quality import wilson as whole

    assert capture.wilson(8, 10) == whole(8, 10)
    lo, hi = capture.wilson(3.5, 10) or (0, 0)
    assert (round(lo, 4), round(hi, 4)) == (0.1369, 0.6463)
    assert capture.wilson(0, 0) is None
