"""``diffrisk schema``."""

from __future__ import annotations

import click

from diffrisk.data.schema import TABLES, to_markdown


@click.command("schema")
@click.option("--markdown", is_flag=True, help="Print docs/schema.md (the default).")
@click.option(
    "--table",
    type=click.Choice(sorted(TABLES)),
    default=None,
    help="Only list this table's columns.",
)
def schema_cmd(markdown: bool, table: str | None) -> None:
    """Print the dataset schema: every stored column, its type and meaning."""
    if table:
        for c in TABLES[table]:
            click.echo(f"{c.name}\t{c.type}\t{c.doc}")
        return
    click.echo(to_markdown())


COMMANDS = [schema_cmd]
