"""Generated reference docs stay in step with the code that generates them."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from diffrisk.cli import cli

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_configuration_reference_is_generated() -> None:
    # it was committed empty once; regenerate with `diffrisk config --markdown`
    res = CliRunner().invoke(cli, ["config", "--markdown"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("# Configuration")
    assert (DOCS / "configuration.md").read_text(encoding="utf-8") == res.output
