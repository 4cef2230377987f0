"""``diffrisk models list | show | promote | rollback``."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from diffrisk.cli.output import data_dir_option, json_option, lock_data_dir, repo_option
from diffrisk.data.paths import default_data_dir, models_dir
from diffrisk.report.terminal import Console, print_json


def _registry(repo: str, data_dir: str | None, *, write: bool = False):
    from diffrisk.model.registry import ModelRegistry

    ddir = Path(data_dir) if data_dir else default_data_dir(repo)
    if write:
        lock_data_dir(ddir)
    return ModelRegistry(models_dir(ddir))


@click.group("models")
def models_group() -> None:
    """List, inspect, promote and roll back the repository's trained models."""


@models_group.command("list")
@repo_option
@data_dir_option
@json_option
def list_cmd(repo: str, data_dir: str | None, as_json: bool) -> None:
    """List model versions (oldest first); the current one is marked."""
    reg = _registry(repo, data_dir)
    rows = reg.list()
    if as_json:
        print_json(
            [
                {
                    k: md.get(k)
                    for k in (
                        "version",
                        "created",
                        "kind",
                        "current",
                        "n_train",
                        "n_buggy",
                        "error",
                    )
                }
                | {"roc_auc": ((md.get("metrics") or {}).get("overall") or {}).get("roc_auc")}
                | {"origin": (md.get("origin") or {}).get("bundled") or "repository"}
                for md in rows
            ]
        )
        return
    if not rows:
        Console().print(
            f"no models in {reg.root}: scoring uses the bundled model (run `diffrisk train`)"
        )
        return
    t = Table(title=f"models in {reg.root}")
    for c in ("", "version", "kind", "created", "changes (buggy)", "ROC-AUC", "baseline"):
        t.add_column(c)
    for md in rows:
        m = md.get("metrics") or {}
        auc = (m.get("overall") or {}).get("roc_auc")
        base = (m.get("baseline") or {}).get("roc_auc")
        t.add_row(
            "*" if md.get("current") else "",
            md["version"],
            str(md.get("kind", md.get("error", "")))
            + (" (bundled, not trained here)" if (md.get("origin") or {}).get("bundled") else ""),
            str(md.get("created", ""))[:19],
            f"{md.get('n_train', '')} ({md.get('n_buggy', '')})",
            f"{auc:.3f}" if isinstance(auc, float) else "-",
            f"{base:.3f}" if isinstance(base, float) else "-",
        )
    Console().print(t)


@models_group.command("show")
@click.argument("version", required=False)
@repo_option
@data_dir_option
@json_option
def show_cmd(version: str | None, repo: str, data_dir: str | None, as_json: bool) -> None:
    """Show a version's metadata and model card (default: the current model, else the bundled one)."""
    from diffrisk.model.registry import CARD_FILE, load_bundled

    reg = _registry(repo, data_dir)
    v = version or reg.current()
    if v is None:
        model = load_bundled()
        md, card = model.metadata, "(bundled cross-project model)"
    else:
        md = reg.metadata(v)
        card_path = reg.root / v / CARD_FILE
        card = card_path.read_text() if card_path.exists() else ""
    if as_json:
        print_json(md)
        return
    Console().print(card or json.dumps(md, indent=2))


@models_group.command("promote")
@click.argument("version")
@repo_option
@data_dir_option
@json_option
def promote_cmd(version: str, repo: str, data_dir: str | None, as_json: bool) -> None:
    """Make VERSION the current model (no comparison: you decide)."""
    reg = _registry(repo, data_dir, write=True)
    reg.load(version)  # refuse to promote a model that does not load
    reg.promote(version)
    if as_json:
        print_json({"current": version})
    else:
        Console().print(f"current model: {version}")


@models_group.command("rollback")
@repo_option
@data_dir_option
@json_option
def rollback_cmd(repo: str, data_dir: str | None, as_json: bool) -> None:
    """Make the previously promoted model current again."""
    reg = _registry(repo, data_dir, write=True)
    old = reg.current()
    v = reg.rollback()
    if as_json:
        print_json({"current": v, "previous": old})
    else:
        Console().print(f"current model: {v} (was {old})")


COMMANDS = [models_group]
