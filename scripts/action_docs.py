"""Generate the inputs/outputs tables of an action.yml as Markdown, and keep README in sync.

    python scripts/action_docs.py            # rewrite the tables in README.md
    python scripts/action_docs.py --check    # exit 1 when README.md is out of date

The tables live between ``<!-- action-docs:start -->`` and ``<!-- action-docs:end -->``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
START = "<!-- action-docs:start (generated from action.yml by scripts/action_docs.py) -->"
END = "<!-- action-docs:end -->"


def load_action(path: Path) -> dict[str, Any]:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def tables(action: dict[str, Any]) -> str:
    lines = ["### Inputs", "", "| input | default | description |", "| --- | --- | --- |"]
    for name, spec in (action.get("inputs") or {}).items():
        default = spec.get("default", "")
        shown = f"`{_cell(default)}`" if default != "" else "(empty)"
        lines.append(f"| `{name}` | {shown} | {_cell(spec.get('description', ''))} |")
    lines += ["", "### Outputs", "", "| output | description |", "| --- | --- |"]
    for name, spec in (action.get("outputs") or {}).items():
        lines.append(f"| `{name}` | {_cell(spec.get('description', ''))} |")
    return "\n".join(lines) + "\n"


def render_section(action_path: Path) -> str:
    return f"{START}\n\n{tables(load_action(action_path))}\n{END}"


def sync(readme: Path, action_path: Path) -> tuple[str, str]:
    """(current README text, README text with fresh tables)."""
    text = readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{readme} has no {START} ... {END} block")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return text, head + render_section(action_path) + tail


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check; exit 1 when out of date")
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md")
    ap.add_argument("--action", type=Path, default=ROOT / "action.yml")
    args = ap.parse_args(argv)
    old, new = sync(args.readme, args.action)
    if old == new:
        return 0
    if args.check:
        print(f"{args.readme} is out of date: run python scripts/action_docs.py", file=sys.stderr)
        return 1
    args.readme.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
