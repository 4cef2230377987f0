"""``diffrisk org`` on a real Dask cluster of two worker processes and generated
repositories: the same datasets as single-repository runs, a worker killed mid-task, a
repository that is not one, incremental runs, the combined dataset, the org model, the
report rendered by headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from orgrepos import generated_history, small_work_tree

from diffrisk.cli import cli
from diffrisk.org.jobs import OrgOptions, org_install, org_report, org_stages, org_train
from diffrisk.org.tasks import RepoLayout
from repobuilder import RepoBuilder

TABLES = ("changes.parquet", "files.parquet", "labels.parquet", "szz_links.parquet")


def _manifest(path: Path, entries: list[str]) -> Path:
    path.write_text("\n".join(entries))
    return path


def _repo(name: str, *, path: Path | None = None, url: str | None = None) -> str:
    where = f'path = "{path}"' if path is not None else f'url = "{url}"'
    return f'[[repo]]\nname = "{name}"\n{where}\n'


def _table(path: Path) -> pd.DataFrame:
    df = pq.read_table(path).to_pandas()
    for c in df.columns:
        if df[c].dtype == object:
            df[c] = df[c].map(
                lambda v: tuple(v) if hasattr(v, "__len__") and not isinstance(v, str) else v
            )
    keys = [c for c in ("sha", "fix_sha", "inducing_sha", "path") if c in df.columns]
    return df.sort_values(keys, kind="stable").reset_index(drop=True)


def _by(res: object) -> dict[tuple[str, str], object]:
    return {(o.name, o.stage): o for o in res.outcomes}  # type: ignore[attr-defined]


def test_org_mine_and_label_match_single_runs_survive_a_killed_worker_and_report_failures(
    tmp_path: Path, cluster: str
) -> None:
    src = tmp_path / "src"
    repos = {
        "gen/a": generated_history(src / "a.git", 100, seed=1),
        "gen/big": generated_history(src / "big.git", 800, seed=4, files=10),
    }
    tree = small_work_tree(src / "tree")
    (src / "notgit").mkdir()
    (src / "notgit" / "README").write_text("not a repository\n")
    man = _manifest(
        tmp_path / "org.toml",
        [_repo(n, path=p) for n, p in repos.items()]
        + [_repo("gen/tree", url=f"file://{tree}"), _repo("local/notgit", path=src / "notgit")],
    )
    root = tmp_path / "diffrisk-org"
    big = RepoLayout(root, "gen/big").data

    killed: dict[str, int] = {}

    def kill_the_labelling_worker() -> None:
        owner = big / ".diffrisk.lock.owner"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                info = json.loads(owner.read_text())
            except (OSError, ValueError):
                info = {}
            if "org label" in str(info.get("command", "")):
                time.sleep(0.3)  # in the middle of blaming its fixes
                killed["pid"] = int(info["pid"])
                os.kill(killed["pid"], signal.SIGKILL)
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_the_labelling_worker, daemon=True)
    killer.start()
    res = org_stages(OrgOptions(man, scheduler=cluster, retries=2), ["fetch", "mine", "label"])
    killer.join(timeout=10)
    out = _by(res)

    # the killed task ran again, on another worker process, and completed
    assert killed and killed["pid"] != os.getpid()
    assert out["gen/big", "label"].status == "ok"  # type: ignore[attr-defined]
    assert out["gen/big", "label"].pid != killed["pid"]  # type: ignore[attr-defined]

    # the repository that is not one is reported with its reason; the others complete
    bad = out["local/notgit", "fetch"]
    assert bad.status == "failed" and "is not a git repository" in bad.reason  # type: ignore[attr-defined]
    assert out["local/notgit", "mine"].status == "skipped"  # type: ignore[attr-defined]
    assert set(res.failed) == {"local/notgit"}
    for name in [*repos, "gen/tree"]:
        assert {out[name, s].status for s in ("fetch", "mine", "label")} == {"ok"}  # type: ignore[attr-defined]
    assert out["gen/tree", "fetch"].details["action"] == "cloned"  # type: ignore[attr-defined]
    status = json.loads(RepoLayout(root, "local/notgit").status.read_text())
    assert status["fetch"]["status"] == "failed" and status["mine"]["status"] == "skipped"
    assert list((root / "runs").glob("*-fetch-mine-label.json"))

    # nothing half-written: no temporary file left, every table whole
    for name in [*repos, "gen/tree"]:
        data = RepoLayout(root, name).data
        assert not [p.name for p in data.rglob("*.tmp")], name

    # the same datasets as single-repository runs, one after the other
    runner = CliRunner()
    for name, path in [*repos.items(), ("gen/tree", tree)]:
        seq = tmp_path / "seq" / name
        for stage in ("mine", "label"):
            r = runner.invoke(cli, [stage, "--repo", str(path), "--data-dir", str(seq), "-q"])
            assert r.exit_code == 0, r.output
        for t in TABLES:
            pd.testing.assert_frame_equal(
                _table(RepoLayout(root, name).data / t), _table(seq / t), obj=f"{name} {t}"
            )


def test_a_second_org_mine_mines_only_what_is_new_and_the_dataset_reads_everywhere(
    tmp_path: Path, cluster: str
) -> None:
    builders = {}
    for i, name in enumerate(("team/one", "team/two")):
        b = RepoBuilder(tmp_path / "src" / name.split("/")[1])
        for k in range(6):
            b.commit({f"m{k % 2}.py": f"v = {k}\n" * (k + 1)}, day=k + 10 * i, message=f"c{k}")
        builders[name] = b
    man = _manifest(tmp_path / "org.toml", [_repo(n, path=b.path) for n, b in builders.items()])

    # the whole job on the embedded cluster, from the command line: the dashboard's
    # address is printed; too little history for a model is said, and the rest done
    r = CliRunner().invoke(cli, ["org", "run", str(man), "--workers", "2", "--dashboard", ":0"])
    assert r.exit_code == 0, r.output
    assert "dashboard: http://" in r.output and "team/one" in r.output
    assert "train: no repository has labelled changes" in r.output
    assert (tmp_path / "diffrisk-org" / "report.html").is_file()

    builders["team/one"].commit({"m9.py": "new = 1\n"}, day=40, message="one more")
    builders["team/one"].commit({"m9.py": "new = 2\n"}, day=41, message="and another")
    res = org_stages(OrgOptions(man, scheduler=cluster), ["fetch", "mine"])
    out = _by(res)
    assert not res.failed, res.failed
    assert out["team/one", "mine"].details["new_commits"] == 2  # type: ignore[attr-defined]
    assert out["team/one", "mine"].details["commits"] == 8  # type: ignore[attr-defined]
    assert out["team/two", "mine"].details["new_commits"] == 0  # type: ignore[attr-defined]

    # the combined dataset: one partition per repository, read by pandas, pyarrow, dask
    import dask.dataframe as dd
    import pyarrow.dataset as pds

    ds_dir = res.root / "dataset"
    by_pandas = pd.read_parquet(ds_dir)
    by_arrow = pds.dataset(ds_dir, format="parquet", partitioning="hive").to_table().to_pandas()
    by_dask = dd.read_parquet(ds_dir).compute()
    for df in (by_pandas, by_arrow, by_dask):
        counts = df["repository"].astype(str).value_counts().to_dict()
        assert counts == {"team/one": 8, "team/two": 6}
    assert {"sha", "la", "label_state", "author_time"} <= set(by_pandas.columns)


def test_the_org_model_trains_on_the_pool_scores_a_repository_and_the_report_renders(
    tmp_path: Path, cluster: str
) -> None:
    src = tmp_path / "src"
    repos = {
        f"gen/r{i}": generated_history(src / f"r{i}.git", n, seed=10 + i)
        for i, n in enumerate((160, 200, 240))
    }
    man = _manifest(tmp_path / "org.toml", [_repo(n, path=p) for n, p in repos.items()])
    opts = OrgOptions(man, scheduler=cluster)
    res = org_stages(opts, ["fetch", "mine", "label"])
    assert not res.failed

    trained = org_train(opts, kinds=("logistic",), weightings=("pooled", "balanced"))
    assert trained.status == "trained" and trained.kind == "logistic"
    assert set(trained.repositories) == set(repos)
    for cand in ("logistic/pooled", "logistic/balanced", "la/pooled"):
        assert set(trained.loro[cand]) == {*repos, "(all)"}
        assert trained.loro_mean[cand] is not None
    assert trained.time_order  # in time order too
    again = org_train(opts, kinds=("logistic",), weightings=("pooled", "balanced"))
    assert again.status == "unchanged" and again.version == trained.version

    installed = org_install(opts)
    assert all(i.promoted for i in installed)
    data = RepoLayout(res.root, "gen/r0").data
    md = json.loads((data / "models" / installed[0].version / "metadata.json").read_text())
    assert md["source"] == "org" and md["origin"]["org"] == trained.version
    assert set(md["metrics"]["loro"]) == {*repos, "(all)"} and md["score_quantiles"]

    # a repository's score uses it
    r = CliRunner().invoke(
        cli,
        [
            "score",
            "--repo",
            str(repos["gen/r0"]),
            "--data-dir",
            str(data),
            "--base",
            "HEAD~1",
            "--head",
            "HEAD",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    scored = json.loads(r.output[r.output.index("{") :])
    assert scored["model_version"] == installed[0].version

    html = org_report(opts)
    text = html.read_text()
    for section in ("Risk and gate rate", "Labels", "Model quality", "Drift", "gen/r2"):
        assert section in text
    _screenshot(html, tmp_path / "report.png")


def _screenshot(html: Path, png: Path) -> None:
    """Headless Chromium renders the report (no server: a file URL) into a PNG."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        how = "install Debian's chromium: apt-get install -y chromium (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(f"headless Chromium is missing: {how}")
        pytest.skip(f"headless Chromium is missing: {how}")
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,1600",
            f"--screenshot={png}",
            html.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
