"""The terminal: a rich console that ends quietly when its reader goes away, and JSON."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click
import rich.console


class Console(rich.console.Console):
    """rich's Console, but a reader that goes away (``diffrisk score | head``) ends the
    command with exit status 141 like other Unix tools, not rich's 1 (which ``gate``
    uses for "blocked")."""

    def on_broken_pipe(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
        raise BrokenPipeError


def stderr_console() -> Console:
    return Console(stderr=True)


def print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))
