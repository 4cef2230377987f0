"""``diffrisk config``."""

from __future__ import annotations

import json

import click

from diffrisk.cli.output import config_option, config_rev_option, repo_option


@click.command("config")
@repo_option
@config_option
@config_rev_option
@click.option(
    "--markdown", is_flag=True, help="Print the configuration reference (docs/configuration.md)."
)
def config_cmd(repo: str, config_path: str | None, config_rev: str | None, markdown: bool) -> None:
    """Check and print the configuration diffrisk will use for REPO (defaults filled in).

    An invalid file is reported with the key, the allowed values and the value found.
    """
    from diffrisk.config import load_config, to_markdown

    if markdown:
        click.echo(to_markdown())
        return
    cfg = load_config(repo, config_path, rev=config_rev)
    click.echo(json.dumps(cfg.model_dump(), indent=2))


COMMANDS = [config_cmd]
