"""The manifest: validated with pydantic, each error naming its line and key, no secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffrisk.errors import ConfigError
from diffrisk.org.manifest import load_manifest, name_from_path, name_from_url


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "org.toml"
    p.write_text(text)
    return p


def test_a_manifest_resolves_names_paths_and_merged_settings(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        """
root = "out"
[defaults]
rev = "main"
[defaults.config]
mine.code_metrics = false
label.verification_days = 60

[[repo]]
url = "https://github.com/pallets/flask.git"
github_issues = true

[[repo]]
path = "checkouts/click"
name = "pallets/click"
rev = "v8"
[repo.config]
label.verification_days = 120
""",
    )
    m = load_manifest(p)
    assert m.root == tmp_path / "out"
    flask, click = m.repos
    assert (flask.name, flask.url, flask.path, flask.rev) == (
        "pallets/flask",
        flask.url,
        None,
        "main",
    )
    assert flask.github_repo == "pallets/flask" and flask.token_env == "GITHUB_TOKEN"
    assert click.path == str(tmp_path / "checkouts" / "click") and click.rev == "v8"
    assert click.config == {"mine": {"code_metrics": False}, "label": {"verification_days": 120}}
    assert click.github_repo is None
    assert load_manifest(p, root=tmp_path / "elsewhere").root == tmp_path / "elsewhere"
    assert [r.name for r in m.select(["pallets/click"])] == ["pallets/click"]
    with pytest.raises(ConfigError, match="nope/x not in"):
        m.select(["nope/x"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[repo]]\npath = "a"\n\n[[repo]]\npath = "b"\nbogus = 1\n', "line 6, repo 2, key bogus: unknown key"),
        ('[[repo]]\npath = "a"\nurl = "https://h/o/n.git"\n', "line 1, repo 1: give exactly one of url and path"),
        ('[[repo]]\npath = "a"\n[repo.config]\nlabel.verification_days = "x"\n',
         "line 4, repo 1, key config.label.verification_days: Input should be a valid integer"),
        ('[defaults]\nrev = 3\n[[repo]]\npath = "a"\n', "line 2, key defaults.rev: Input should be a valid string"),
        ('[[repo]]\npath = "a"\nname = "no-slash"\n', "line 3, repo 1, key name: 'no-slash' is not owner/name"),
        ('[[repo]]\npath = "a"\n[[repo]]\npath = "a"\n', "line 3, repo 2: local/a is already repo 1"),
        ('[[repo]]\npath = "a"\ngithub_issues = true\n', "github_issues needs github_repo"),
        ("root = 'x'\n", "no [[repo]]"),
        ("[[repo]\n", "is not valid TOML"),
    ],
)  # fmt: skip
def test_errors_name_the_line_and_the_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_manifest(_write(tmp_path, text))
    assert expected in err.value.message


def test_a_token_is_never_read_from_the_manifest_nor_echoed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_manifest(_write(tmp_path, '[[repo]]\nurl = "https://me:ghp_SECRET@github.com/a/b"\n'))
    assert "line 2, repo 1, key url: the URL carries credentials" in err.value.message
    assert "SECRET" not in str(err.value) and "token_env" in err.value.message
    with pytest.raises(ConfigError, match=r"line 3, repo 1, key github_token: a credential"):
        load_manifest(_write(tmp_path, '[[repo]]\npath = "a"\ngithub_token = "ghp_x"\n'))
    with pytest.raises(ConfigError, match="this is a token, not the name of an environment") as err:
        load_manifest(
            _write(tmp_path, 'token_env = "ghp_0123456789abcdefghij"\n[[repo]]\npath = "a"\n')
        )
    assert "0123456789" not in str(err.value)
    # the name of the variable is fine; ssh URLs carry a user name, never a secret
    m = load_manifest(
        _write(tmp_path, 'token_env = "ORG_TOKEN"\n[[repo]]\nurl = "ssh://git@host/o/n.git"\n')
    )
    assert m.repos[0].token_env == "ORG_TOKEN" and m.repos[0].name == "o/n"


def test_names_from_urls_and_paths() -> None:
    assert name_from_url("https://github.com/pallets/flask.git") == "pallets/flask"
    assert name_from_url("git@github.com:psf/requests") == "psf/requests"
    assert name_from_url("file:///srv/git/team/tool.git") == "team/tool"
    assert name_from_path(Path("/m/pallets+flask/repo")) == "pallets/flask"
    assert name_from_path(Path("/m/pallets+flask/repo/.git")) == "pallets/flask"
    assert name_from_path(Path("/src/tool.git")) == "local/tool"
    assert name_from_path(Path("/src/my tool")) == "local/my-tool"
