"""`diffrisk run`: the whole job on a built repository, and the model staleness rule."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from click.testing import CliRunner

from diffrisk.cli import cli
from diffrisk.config import parse_config
from diffrisk.pipeline import model_stale_reason
from modelbuilder import install_model
from repobuilder import RepoBuilder


def _history(b: RepoBuilder) -> None:
    b.commit({"app/core.py": "def f(x):\n    return x\n"}, author="ann", day=0, message="start")
    b.commit(
        {"app/core.py": "def f(x):\n    return x + 1\n"},
        author="ann",
        day=200,
        message="fix crash in f",
    )
    b.commit(
        {"docs/a.md": "a\n", "app/util.py": "u = 1\n"}, author="bob", day=400, message="add util"
    )


def _mine_and_label(b: RepoBuilder, data: Path) -> None:
    for stage in ("mine", "label"):
        res = CliRunner().invoke(cli, [stage, "--repo", str(b.path), "--data-dir", str(data), "-q"])
        assert res.exit_code == 0, res.output


def test_run_scores_the_latest_commit_with_the_bundled_model(
    builder: RepoBuilder, tmp_path: Path
) -> None:
    _history(builder)
    data = tmp_path / "d"
    res = CliRunner().invoke(
        cli, ["run", "--repo", str(builder.path), "--data-dir", str(data), "--json"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["mine"]["commits"] == 3
    assert out["label"]["buggy"] == 1  # "fix crash in f" blames the first commit
    assert out["train"]["status"] == "fallback" and "no model" in out["train_reason"]
    s = out["score"]
    assert s["head"] == builder.head() and s["model_source"] == "bundled"
    assert 0.0 <= s["probability"] <= 1.0 and s["level"] in {"low", "medium", "high"}
    from diffrisk.data.predlog import load_predictions

    assert load_predictions(data)["head_sha"].tolist() == [builder.head()]

    again = CliRunner().invoke(
        cli, ["run", "--repo", str(builder.path), "--data-dir", str(data), "--json"]
    )
    assert json.loads(again.output)["mine"]["new_commits"] == 0


def test_run_on_a_root_commit_mines_and_says_there_is_nothing_to_score(
    builder: RepoBuilder, tmp_path: Path
) -> None:
    builder.commit({"a.py": "a = 1\n"}, day=0)
    data = tmp_path / "d"
    res = CliRunner().invoke(cli, ["run", "--repo", str(builder.path), "--data-dir", str(data)])
    assert res.exit_code == 0, res.output
    assert "HEAD is the root commit" in res.output and "no risk to report" in res.output
    assert "mined 1 commit (1 new)" in res.output
    assert (data / "changes.parquet").exists()
    d = json.loads(
        CliRunner()
        .invoke(cli, ["run", "--repo", str(builder.path), "--data-dir", str(data), "--json"])
        .output
    )
    assert d["score"] is None and d["nothing_to_score"].startswith("HEAD is the root commit")


def test_model_stale_reason(tmp_path: Path) -> None:
    from diffrisk.model.registry import ModelRegistry

    cfg = parse_config({"train": {"max_age_days": 10}})
    assert "no model" in (model_stale_reason(tmp_path, cfg) or "")
    reg = ModelRegistry(tmp_path / "models")
    (tmp_path / "models").mkdir()
    # a registry state that names a version whose metadata is missing: unreadable, so stale
    reg._write_state({"current": "v1", "history": ["v1"]})
    assert "cannot be read" in (model_stale_reason(tmp_path, cfg) or "")
    (tmp_path / "models" / "v1").mkdir()
    created = datetime.now(timezone.utc) - timedelta(days=3)
    (tmp_path / "models" / "v1" / "metadata.json").write_text(
        json.dumps({"created": created.isoformat()})
    )
    # metadata without its model file cannot score either
    assert "cannot be read" in (model_stale_reason(tmp_path, cfg) or "")
    version = install_model(tmp_path, seed=1, n=300, max_ns=5, intercept=-1.0)
    assert reg.current() == version and model_stale_reason(tmp_path, cfg) is None
    later = datetime.now(timezone.utc) + timedelta(days=20)
    assert "days old" in (model_stale_reason(tmp_path, cfg, now=later) or "")
    # a damaged model file: retrained, as a damaged metadata.json is
    model_file = tmp_path / "models" / version / "model.skops"
    model_file.write_bytes(model_file.read_bytes()[:500])
    assert "cannot be read" in (model_stale_reason(tmp_path, cfg) or "")


def test_train_if_stale_skips_a_fresh_model(builder: RepoBuilder, tmp_path: Path) -> None:
    from diffrisk.model.registry import ModelRegistry

    _history(builder)
    data = tmp_path / "d"
    _mine_and_label(builder, data)
    args = ["train", "--repo", str(builder.path), "--data-dir", str(data), "--if-stale", "--json"]
    stale = CliRunner().invoke(cli, args)
    assert (
        stale.exit_code == 0 and json.loads(stale.output)["status"] == "fallback"
    )  # no model: it tried
    install_model(data, seed=2, n=300, max_ns=5, intercept=-1.0)
    assert ModelRegistry(data / "models").current() is not None
    fresh = CliRunner().invoke(cli, args)
    assert fresh.exit_code == 0 and json.loads(fresh.output)["status"] == "fresh"


def test_train_refuses_another_repositorys_data(builder: RepoBuilder, tmp_path: Path) -> None:
    _history(builder)
    other = RepoBuilder(tmp_path / "other")
    other.commit({"x.py": "x = 1\n"}, day=0)
    data = tmp_path / "d"
    _mine_and_label(builder, data)
    for cmd in ("train", "evaluate"):
        res = CliRunner().invoke(cli, [cmd, "--repo", str(other.path), "--data-dir", str(data)])
        assert res.exit_code == 2 and "another repository" in res.output, (cmd, res.output)


def test_run_on_an_empty_commit_has_nothing_to_score(builder: RepoBuilder, tmp_path: Path) -> None:
    _history(builder)
    builder.run(
        "-c", "user.name=ann", "-c", "user.email=ann@example.com",
        "commit", "--allow-empty", "-q", "-m", "trigger CI",
    )  # fmt: skip
    data = tmp_path / "d"
    res = CliRunner().invoke(cli, ["run", "--repo", str(builder.path), "--data-dir", str(data)])
    assert res.exit_code == 0, res.output
    assert "changes no files: nothing to score" in " ".join(res.output.split())
    out = json.loads(
        CliRunner()
        .invoke(cli, ["run", "--repo", str(builder.path), "--data-dir", str(data), "--json"])
        .output
    )
    assert out["score"] is None and "nothing to score" in out["nothing_to_score"]
    assert out["mine"]["commits"] == 4  # the rest of the job ran
    from diffrisk.data.predlog import load_predictions

    assert load_predictions(data).empty  # nothing was predicted


def _young_history(b: RepoBuilder, start: float = 0) -> None:
    """Six features, each fixed the next day, all within two weeks: the fixes label the
    six defect-inducing, and every other change is too young to be called clean."""
    for k in range(1, 7):
        day = start + 2 * k
        body = "".join(f"v{i} = {i}\n" for i in range(5))
        b.commit({f"app/f{k}.py": body}, author="ann", day=day, message=f"add feature {k}")
        fixed = body.replace("v2 = 2", "v2 = 3")
        b.commit({f"app/f{k}.py": fixed}, author="bob", day=day + 1, message=f"fix crash in {k}")
    b.commit({"app/g.py": "g = 1\n"}, author="ann", day=start + 15, message="add g")


def test_a_young_history_falls_back_to_the_bundled_model(
    builder: RepoBuilder, tmp_path: Path
) -> None:
    # every change younger than the verification latency: 6 buggy, 0 clean labelled
    builder.commit({".diffrisk.toml": "[train]\nmin_buggy = 3\n"}, day=0, message="configure")
    _young_history(builder)
    repo, data = str(builder.path), str(tmp_path / "d")
    res = CliRunner().invoke(cli, ["run", "--repo", repo, "--data-dir", data, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert (out["label"]["buggy"], out["label"]["clean"]) == (6, 0)
    assert out["train"]["status"] == "fallback"
    why = "not training: the 6 labelled changes are all defect-inducing, none clean"
    assert out["train"]["message"].startswith(why)
    assert "younger than the verification latency" in out["train"]["message"]
    assert out["score"]["model_source"] == "bundled"
    text = CliRunner().invoke(cli, ["run", "--repo", repo, "--data-dir", data])
    assert text.exit_code == 0, text.output
    (line,) = [ln for ln in text.stderr.splitlines() if ln.startswith("train:")]  # one line
    assert why in line and line.endswith("scoring uses the bundled cross-project model")
    # the action's step, and an explicit train: the same reason, exit 0 (not "blocked")
    for args in (["--if-stale"], []):
        r = CliRunner().invoke(cli, ["train", "--repo", repo, "--data-dir", data, *args])
        assert r.exit_code == 0 and why in r.stderr, r.output
    assert not (tmp_path / "d" / "models").exists()
    # and monitor does not ask for a retrain that would fall back again
    m = CliRunner().invoke(cli, ["monitor", "--repo", repo, "--data-dir", data, "--json"])
    assert m.exit_code == 0, m.output
    assert json.loads(m.stdout)["decision"]["reasons"] == []


def test_too_few_clean_changes_to_evaluate_fall_back_too(
    builder: RepoBuilder, tmp_path: Path
) -> None:
    from diffrisk.config import Config
    from diffrisk.labelling.label import label
    from diffrisk.mining.mine import mine
    from diffrisk.training.train import train

    # two changes old enough to be clean, then the young history: no fold can be tested
    builder.commit({"app/a.py": "a = 1\n"}, day=0)
    builder.commit({"app/b.py": "b = 1\n"}, day=1)
    _young_history(builder, start=200)
    cfg = Config.model_validate({"train": {"min_buggy": 3}})
    mine(builder.path, tmp_path / "d")
    assert label(builder.path, tmp_path / "d", cfg.label).clean == 2
    for model in ("auto", "logistic"):
        res = train(builder.path, tmp_path / "d", cfg, model=model)
        assert res.status == "fallback" and res.version is None
        assert res.message.startswith("not training: no time-ordered fold has enough")
