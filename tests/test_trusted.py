"""A pull request's checkout does not decide how it is judged: settings and templates from
the base commit, regular files only, git without the work tree's attributes or .mailmap."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from diffrisk.cli import cli
from diffrisk.config import MineConfig, load_config, pull_request_notes
from diffrisk.errors import ConfigError, DataError
from diffrisk.git.repo import open_repo
from diffrisk.report.render import render_comment
from diffrisk.scoring.result import ScoreResult
from diffrisk.trusted import SettingsSource

RESULT = ScoreResult(
    repo="r",
    base="b" * 40,
    head="c" * 40,
    probability=0.9,
    level="high",
    percentile=None,
    model_version="m1",
    model_source="bundled",
    model_metrics={},
    features={"la": 10},
    thresholds={"medium": 0.4, "high": 0.7},
).to_dict()


def _pr(builder) -> tuple[str, str]:
    """main with settings that block at medium; a PR branch that relaxes them."""
    base = builder.commit(
        {"a.py": "x = 1\n", ".diffrisk.toml": '[gate]\nfail_on = "medium"\n'}, day=0
    )
    builder.branch("pr", base)
    builder.checkout("pr")
    head = builder.commit(
        {"a.py": "x = 2\n", ".diffrisk.toml": '[gate]\nfail_on = "never"\n'}, author="zed", day=1
    )
    return base, head


def test_settings_come_from_the_named_commit_not_the_work_tree(builder):
    base, _head = _pr(builder)
    assert load_config(builder.path).gate.fail_on == "never"  # the PR's checkout
    cfg = load_config(builder.path, rev=base)
    assert cfg.gate.fail_on == "medium"
    assert cfg.source == SettingsSource(builder.path, base)
    # an explicit --config inside the repository is read at the commit too
    cfg = load_config(builder.path, builder.path / ".diffrisk.toml", rev=base)
    assert cfg.gate.fail_on == "medium"
    # ... and one outside it from disk (the workflow's own file)
    outside = builder.path.parent / "ci.toml"
    outside.write_text('[gate]\nfail_on = "high"\n')
    assert load_config(builder.path, outside, rev=base).gate.fail_on == "high"


def test_a_config_file_the_base_lacks_is_a_clear_error(builder):
    base, _ = _pr(builder)
    builder.commit({"ci/diffrisk.toml": "[gate]\n"}, day=2)
    with pytest.raises(ConfigError, match=r"ci/diffrisk.toml at [0-9a-f]{12} does not exist"):
        load_config(builder.path, builder.path / "ci" / "diffrisk.toml", rev=base)


def test_notes_say_what_the_change_alters_of_its_judging(builder):
    base, _ = _pr(builder)
    head = builder.commit(
        {".mailmap": "ann <ann@example.com> <zed@example.com>\n", "sub/.gitattributes": "*\n"},
        day=2,
    )
    notes = pull_request_notes(load_config(builder.path, rev=base), head)
    assert len(notes) == 3
    assert "edits diffrisk's settings" in notes[0]
    assert ".mailmap" in notes[1] and ".gitattributes" in notes[2]
    # the same settings reached by another edit of pyproject.toml: nothing to say
    assert pull_request_notes(load_config(builder.path, rev=head), head) == []
    assert pull_request_notes(load_config(builder.path), head) == []  # work tree: no base


def test_invalid_settings_in_the_pr_are_named_and_the_base_applies(builder):
    base, _ = _pr(builder)
    head = builder.commit({".diffrisk.toml": "[gate]\nfail_on = 3\n"}, day=2)
    notes = pull_request_notes(load_config(builder.path, rev=base), head)
    assert notes and "makes diffrisk's settings invalid" in notes[0]


@pytest.mark.parametrize(
    ("data", "what"),
    [
        ('[gate]\nfail_on = "never"\n'.encode("utf-16"), "is UTF-16 text"),
        ('[gate]\n# café\nfail_on = "never"\n'.encode("latin-1"), "is not UTF-8 text"),
    ],
)
def test_config_in_another_encoding_is_a_clear_error_not_exit_1(builder, data, what):
    builder.commit({"a.py": "x = 1\n"})
    (builder.path / ".diffrisk.toml").write_bytes(data)
    with pytest.raises(ConfigError, match=what):
        load_config(builder.path)
    res = CliRunner().invoke(cli, ["config", "--repo", str(builder.path)])
    assert res.exit_code == 2 and what in res.output and "hint: save it as UTF-8" in res.output


def test_a_utf8_byte_order_mark_is_fine(builder):
    builder.commit({"a.py": "x = 1\n"})
    (builder.path / ".diffrisk.toml").write_bytes(b'\xef\xbb\xbf[gate]\nfail_on = "never"\n')
    assert load_config(builder.path).gate.fail_on == "never"


# --------------------------------------------------------------------------- templates


def _template_repo(builder, secret: Path) -> str:
    secret.write_text("GITHUB_TOKEN=ghs_secret\n")
    (builder.path / "t").mkdir()
    os.symlink(secret, builder.path / "t" / "leak.txt")
    os.symlink(secret, builder.path / "t" / "linked.md.j2")
    builder.repo.git.add("--", "t/leak.txt", "t/linked.md.j2")
    return builder.commit(
        {
            "t/own.md.j2": '{% include "part.md.j2" %} {{ r.level }}\n',
            "t/part.md.j2": "risk:",
            "t/include.md.j2": '{% include "leak.txt" %}\n',
        }
    )


@pytest.mark.parametrize("at_commit", [True, False])
def test_templates_are_regular_files_of_the_repository(builder, tmp_path, at_commit):
    from diffrisk.config import ReportConfig

    sha = _template_repo(builder, tmp_path / "environ")
    src = SettingsSource(builder.path, sha if at_commit else None)
    body = render_comment(RESULT, ReportConfig(template="t/own.md.j2"), repo_root=src)
    assert body.splitlines()[1] == "risk: high"
    for name in ("t/linked.md.j2", "t/include.md.j2"):
        with pytest.raises(ConfigError, match="symbolic link") as err:
            render_comment(RESULT, ReportConfig(template=name), repo_root=src)
        assert "ghs_secret" not in str(err.value)
    with pytest.raises(ConfigError, match="outside the repository"):
        render_comment(RESULT, ReportConfig(template="../environ"), repo_root=src)


def test_a_template_added_by_the_pr_is_not_used(builder, tmp_path):
    base = builder.commit({"a.py": "x = 1\n"})
    builder.commit(
        {"own.md.j2": "PR TEMPLATE\n", ".diffrisk.toml": '[report]\ntemplate = "own.md.j2"\n'},
        day=1,
    )
    cfg = load_config(builder.path, rev=base)
    assert "PR TEMPLATE" not in render_comment(RESULT, cfg.report, repo_root=cfg.source)
    cfg = load_config(builder.path)  # the work tree's (--worktree-config)
    assert "PR TEMPLATE" in render_comment(RESULT, cfg.report, repo_root=cfg.source)


# --------------------------------------------------------------------------- git


def _numstat(repo_path: Path, sha: str) -> str:
    return open_repo(repo_path).run("log", "-1", "--numstat", "--format=", sha).decode()


def test_line_counts_ignore_the_work_trees_and_commits_gitattributes(builder):
    builder.commit({"a.py": "x = 1\n"}, day=0)
    sha = builder.commit({"a.py": "x = 1\ny = 2\nz = 3\n"}, day=1)
    before = _numstat(builder.path, sha)
    assert before.split()[:2] == ["2", "0"]
    (builder.path / ".gitattributes").write_text("*.py -diff\n")  # in the work tree
    assert _numstat(builder.path, sha) == before
    builder.commit({".gitattributes": "* -diff\n"}, day=2)  # committed at HEAD
    assert _numstat(builder.path, sha) == before
    # and a plain `git log` would have said "binary": the test can fail
    plain = builder.run("log", "-1", "--numstat", "--format=", sha)
    assert plain.split()[:2] == ["-", "-"]


def test_mining_maps_authors_by_the_mined_commits_mailmap_only(builder, tmp_path):
    from diffrisk.data.store import load_dataset
    from diffrisk.mining.mine import mine

    builder.commit({"a.py": "x = 1\n"}, author="ann", day=0)
    builder.commit({"a.py": "x = 2\n"}, author="zed", day=1)
    # a .mailmap in the work tree (a PR's checkout) is not read
    (builder.path / ".mailmap").write_text("ann <ann@example.com> <zed@example.com>\n")
    data = tmp_path / "d"
    mine(builder.path, data, config=MineConfig(code_metrics=False, workers=1))
    authors = set(load_dataset(data).changes["author_email"])
    assert authors == {"ann@example.com", "zed@example.com"}
    # committed, it is the project's own: mining its commit maps zed to ann
    builder.commit({}, day=2, allow_empty=True)
    builder.repo.git.add("--", ".mailmap")
    builder.commit({}, author="ann", day=3, message="mailmap")
    mine(builder.path, tmp_path / "d2", config=MineConfig(code_metrics=False, workers=1))
    assert set(load_dataset(tmp_path / "d2").changes["author_email"]) == {"ann@example.com"}


def test_gate_judges_a_pr_by_its_base_settings(builder, tmp_path):
    base, head = _pr(builder)  # the PR sets fail_on = "never"; its base says "medium"
    score = tmp_path / "score.json"
    score.write_text(
        json.dumps({**RESULT, "level": "medium", "probability": 0.5, "base": base, "head": head})
    )
    env = {"GITHUB_TOKEN": "", "GITHUB_REPOSITORY": "", "GITHUB_EVENT_PATH": ""}
    args = ["gate", "--repo", str(builder.path), "--score-file", str(score), "--no-check"]
    res = CliRunner().invoke(cli, args, env=env)
    assert res.exit_code == 1, res.output
    assert "merge blocked" in res.output
    res = CliRunner().invoke(cli, [*args, "--worktree-config"], env=env)
    assert res.exit_code == 0, res.output


def test_labelling_with_every_file_marked_binary_in_the_work_tree(builder, tmp_path):
    from diffrisk.labelling.label import label, load_labels
    from diffrisk.mining.mine import mine

    intro = builder.commit({"a.py": "x = 1\ny = 2\n"}, day=0)
    builder.commit({"a.py": "x = 1\ny = 3\n"}, day=60, message="fix bug in y")
    builder.commit({"b.py": "z = 0\n"}, day=200)
    (builder.path / ".gitattributes").write_text("* -diff\n")  # crashed labelling: KeyError
    data = tmp_path / "d"
    mine(builder.path, data, config=MineConfig(code_metrics=False, workers=1))
    label(builder.path, data)
    labels = load_labels(data).set_index("sha")["label_state"]
    assert labels[intro] == "buggy"


def test_a_config_path_through_a_symlink_is_still_read_from_the_base(builder, tmp_path):
    base, _ = _pr(builder)  # the PR's .diffrisk.toml says never; the base's says medium
    link = tmp_path / "link"
    os.symlink(builder.path, link)
    cfg = load_config(builder.path, link / ".diffrisk.toml", rev=base)
    assert cfg.gate.fail_on == "medium"
    cfg = load_config(link, builder.path / ".diffrisk.toml", rev=base)
    assert cfg.gate.fail_on == "medium"


def test_a_data_directory_committed_to_the_repository_is_refused(builder, tmp_path):
    from diffrisk.scoring.score import score

    base = builder.commit({"a.py": "x = 1\n"}, day=0)
    builder.commit({".diffrisk/meta.json": "{}\n", "a.py": "x = 2\n"}, day=1)
    with pytest.raises(DataError, match=r"committed to the repository"):
        score(builder.path, base, "HEAD", builder.path / ".diffrisk")


def test_run_on_a_pull_request_event_reads_the_base_settings(builder, tmp_path, monkeypatch):
    base, head = _pr(builder)  # the PR relaxes fail_on and also sets an invalid key
    builder.commit({".diffrisk.toml": "[gate]\nno_such_key = 1\n"}, author="zed", day=2)
    head = builder.head()
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps({"pull_request": {"number": 7, "base": {"sha": base}, "head": {"sha": head}}})
    )
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    res = CliRunner().invoke(
        cli, ["run", "--repo", str(builder.path), "--data-dir", str(tmp_path / "d"), "--quiet"]
    )
    # judged by the base's settings: the PR's invalid ones are only named, not applied
    assert res.exit_code == 0, res.output
    assert "makes diffrisk's settings invalid" in res.output


def test_a_template_that_raises_is_a_template_error_not_a_bug(builder):
    from diffrisk.config import ReportConfig

    builder.commit({"t.md.j2": '{{ "{0.__class__}".format_map(r) }}\n'})
    with pytest.raises(ConfigError, match=r"report template t\.md\.j2 failed"):
        render_comment(RESULT, ReportConfig(template="t.md.j2"), repo_root=builder.path)


def test_utf16_without_a_byte_order_mark_is_named(builder):
    builder.commit({"a.py": "x = 1\n"})
    (builder.path / ".diffrisk.toml").write_bytes('[gate]\nfail_on = "never"\n'.encode("utf-16-le"))
    with pytest.raises(ConfigError, match="UTF-16"):
        load_config(builder.path)
