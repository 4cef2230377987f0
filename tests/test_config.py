from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from diffrisk.cli import cli
from diffrisk.config import load_config, parse_config
from diffrisk.errors import ConfigError


def test_defaults_and_dash_keys() -> None:
    cfg = parse_config({"gate": {"fail-on": "medium"}, "label": {"verification-days": 30}})
    assert cfg.gate.fail_on == "medium" and cfg.label.verification_days == 30
    assert cfg.score.high == 0.7 and cfg.mine.code_metrics is False


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"gate": {"fail_on": "hgih"}}, ["gate.fail_on", "'high', 'medium' or 'never'", "'hgih'"]),
        ({"gate": {"fial_on": "high"}}, ["gate.fial_on", "unknown key"]),
        (
            {"label": {"verification_days": -1}},
            ["label.verification_days", "greater than or equal to 0"],
        ),
        ({"score": {"medium": 0.9, "high": 0.5}}, ["medium (0.9) must not exceed high (0.5)"]),
        ({"nope": {}}, ["nope", "unknown key"]),
        (
            {"label": {"source_extensions": ["py", ".rs"]}},
            ["label.source_extensions", "start with a dot", "'py'"],
        ),
    ],
)
def test_errors_name_the_key_and_allowed_values(data: dict, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(data, "x.toml")
    for text in expected:
        assert text in err.value.message
    assert "Value error" not in err.value.message  # pydantic's prefix to our own checks
    # the hint works without a source checkout (pip users have no docs/ folder)
    assert err.value.hint and "diffrisk config --markdown" in err.value.hint


def test_lookup_order(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.diffrisk.gate]\nfail_on = "never"\n')
    assert load_config(tmp_path).gate.fail_on == "never"
    (tmp_path / ".diffrisk.toml").write_text('[gate]\nfail_on = "medium"\n')
    assert load_config(tmp_path).gate.fail_on == "medium"
    other = tmp_path / "other.toml"
    other.write_text("[gate]\nwarn_on = 'never'\n")
    assert load_config(tmp_path, other).gate.warn_on == "never"


def test_cli_reports_bad_toml_in_one_line(tmp_path: Path) -> None:
    (tmp_path / ".diffrisk.toml").write_text("[gate\nfail_on = 1\n")
    res = CliRunner().invoke(cli, ["config", "--repo", str(tmp_path)])
    assert (
        res.exit_code == 2 and "is not valid TOML" in res.output and "Traceback" not in res.output
    )
    (tmp_path / ".diffrisk.toml").write_text('[gate]\nfail_on = "always"\n')
    res = CliRunner().invoke(cli, ["config", "--repo", str(tmp_path)])
    assert res.exit_code == 2 and "gate.fail_on" in res.output


def test_every_model_kind_can_be_chosen() -> None:
    from typing import get_args

    from diffrisk.cli.train import model_option
    from diffrisk.config import MODEL_KINDS, Config, TrainConfig
    from diffrisk.model.estimators import KINDS

    assert get_args(TrainConfig.model_fields["model"].annotation) == ("auto", *KINDS)
    assert set(MODEL_KINDS) == set(KINDS) and "tokens" in KINDS
    for kind in KINDS:
        assert Config.model_validate({"train": {"model": kind}}).train.model == kind

    @model_option
    def f(model: str) -> None: ...

    choice = f.__click_params__[0].type
    assert list(choice.choices) == ["auto", *KINDS]
