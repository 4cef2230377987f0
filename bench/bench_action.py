"""Time the root action's own steps on a real repository, with the cache restored.

    python bench/bench_action.py PATH/TO/REPO [--name owner/name] [--pr-commits 3] [--behind 20]

What runs (scripts/action_runner.py executes action.yml's ``run:`` steps as the runner does;
``uses:`` steps — setup-python and the cache — are skipped, and DIFFRISK_PYTHON points the
install step at this interpreter, so "Python and the package are installed"):

1. a work tree is cloned from PATH (``git clone --shared``: no copies of objects);
2. warm-up (the nightly run that fills the cache): the action on base = ``HEAD~(behind +
   pr-commits)`` mines, labels and — when the repository has no model — a logistic
   model is fitted on the labelled changes (diffrisk.training.train) and promoted;
3. timed (a pull request, cache restored): the data directory from 2 is copied (what
   ``actions/cache/restore`` does), and the action runs on base = ``HEAD~pr-commits``,
   head = ``HEAD``: it mines the ``behind`` new commits, relabels, finds the model fresh,
   scores, reports (comment) and gates against a local server answering like the GitHub API.

Prints a Markdown table of step times; the figure in docs/benchmarks.md is the total of
the timed run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from action_runner import ActionRun, base_env, run_action  # noqa: E402
from github_api_server import GitHubApiRoutes  # noqa: E402


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def _fit_model(data: Path) -> str:
    """A real model on the repository's own labelled changes (used when none exists)."""
    import pandas as pd

    from diffrisk.config import LabelConfig
    from diffrisk.data.paths import models_dir
    from diffrisk.features.vendored import resolve as resolve_vendored
    from diffrisk.labelling.label import load_labels
    from diffrisk.model.estimators import fit_estimator
    from diffrisk.model.registry import ModelRegistry
    from diffrisk.model.transforms import raw_features
    from diffrisk.scoring.score import with_source_lines

    ch, fi = pd.read_parquet(data / "changes.parquet"), pd.read_parquet(data / "files.parquet")
    changes = with_source_lines(ch, fi, resolve_vendored(LabelConfig(), ch, fi))
    labels = load_labels(data)
    df = changes.merge(labels[["sha", "label"]], on="sha")
    df = df[df["label"].notna()].sort_values("author_time")
    feats = raw_features("logistic")
    est = fit_estimator("logistic", df[feats], df["label"].astype(int).to_numpy())
    reg = ModelRegistry(models_dir(data))
    version = reg.save(est, {"kind": "logistic", "features": feats, "metrics": {}})
    reg.promote(version)
    return version


def _run(repo: Path, data: Path, base: str, head: str, temp: Path, code_metrics: bool) -> ActionRun:
    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    try:
        routes = GitHubApiRoutes(server, 7, head, base)
        event = {
            "action": "synchronize",
            "number": 7,
            "pull_request": {
                "number": 7,
                "title": "bench",
                "body": "",
                "head": {"sha": head, "ref": "feature", "repo": {"full_name": "o/r"}},
                "base": {"sha": base, "ref": "main", "repo": {"full_name": "o/r"}},
                "labels": [],
            },
        }
        temp.mkdir(parents=True, exist_ok=True)
        (temp / "event.json").write_text(json.dumps(event))
        env = base_env(
            {
                "GITHUB_REPOSITORY": "o/r",
                "GITHUB_API_URL": routes.api,
                "GITHUB_EVENT_PATH": str(temp / "event.json"),
                "GITHUB_EVENT_NAME": "pull_request",
                "GITHUB_RUN_ID": "1",
                "GITHUB_SHA": head,
                "DIFFRISK_PYTHON": sys.executable,
            }
        )
        github = {
            "event": event,
            "repository": "o/r",
            "token": "bench-token",
            "action_path": str(ROOT),
        }
        inputs = {"data-dir": str(data), "code-metrics": "true" if code_metrics else "false"}
        return run_action(
            ROOT / "action.yml",
            inputs=inputs,
            github=github,
            workspace=repo,
            env=env,
            runner_temp=temp,
        )
    finally:
        server.clear()
        if server.is_running():
            server.stop()


def _table(run: ActionRun) -> str:
    lines = ["| step | outcome | seconds |", "| --- | --- | ---: |"]
    for st in run.steps:
        lines.append(f"| {st.name} | {st.outcome} | {st.seconds:.2f} |")
    total = sum(st.seconds for st in run.steps)
    lines.append(f"| **total (run: steps)** | | **{total:.2f}** |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("repo", type=Path)
    ap.add_argument("--name", default=None, help="public name for the report (owner/name)")
    ap.add_argument("--pr-commits", type=int, default=3)
    ap.add_argument(
        "--behind", type=int, default=20, help="commits mined by the PR run on top of the cache"
    )
    ap.add_argument("--no-code-metrics", action="store_true")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-action-") as tmp:
        t = Path(tmp)
        work = t / "work"
        subprocess.run(
            ["git", "clone", "-q", "--shared", "--no-checkout", str(args.repo), str(work)],
            check=True,
        )
        head = _git(work, "rev-parse", "HEAD")
        _git(work, "checkout", "-q", "--detach", head)
        pr_base = _git(work, "rev-parse", f"HEAD~{args.pr_commits}")
        warm_base = _git(work, "rev-parse", f"HEAD~{args.pr_commits + args.behind}")
        n_commits = _git(work, "rev-list", "--count", "--no-merges", "HEAD")
        cache = t / "cache"

        t0 = time.perf_counter()
        warm = _run(work, cache, warm_base, pr_base, t / "warm", not args.no_code_metrics)
        warm_s = time.perf_counter() - t0
        from diffrisk.data.paths import models_dir
        from diffrisk.model.registry import ModelRegistry

        if ModelRegistry(models_dir(cache)).current() is None:
            print(f"no model after the warm-up: fitted {_fit_model(cache)}", file=sys.stderr)

        data = t / "data"
        shutil.copytree(cache, data)  # actions/cache/restore
        timed = _run(work, data, pr_base, head, t / "pr", not args.no_code_metrics)
        name = args.name or args.repo.name
        print(
            f"## {name}: {n_commits} non-merge commits, PR of {args.pr_commits} commits, {args.behind} new commits to mine\n"
        )
        print(f"warm-up (fills the cache): {warm_s:.1f} s wall\n")
        print(_table(warm) + "\n")
        print("timed (cache restored):\n")
        print(_table(timed))
        failed = [s.name for s in timed.steps if s.outcome == "failure"]
        if failed:
            print(f"\nfailed steps: {failed}\n{timed.log[-3000:]}", file=sys.stderr)
            return 1
        print(
            f"\noutputs: {json.dumps({k: v for k, v in timed.outputs.items() if k != 'report-path'})}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
