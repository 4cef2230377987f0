"""Run a composite action's ``run:`` steps the way the GitHub runner does, locally.

Used by tests/test_actions.py (end-to-end) and bench/bench_action.py. For each step of
``runs.steps``: evaluate ``if:`` (a small subset of the expression language: ``always()``,
``success()``, ``==``, ``!=``, ``&&``, ``||``, ``!``), build the step's ``env:`` with
``${{ inputs.* }}``, ``${{ github.* }}``, ``${{ runner.* }}`` and ``${{ steps.<id>.outputs.* }}``
substituted, run the script with ``bash --noprofile --norc -eo pipefail`` and a fresh
``$GITHUB_OUTPUT`` file, and parse what the step wrote there (``k=v`` and ``k<<DELIM``).
``uses:`` steps are skipped (their outcome is ``skipped`` and they have no outputs): set
``DIFFRISK_PYTHON`` so the install step uses an interpreter that already has diffrisk.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def load_action(path: str | Path) -> dict[str, Any]:
    return YAML(typ="safe").load(Path(path).read_text(encoding="utf-8"))


def parse_output_file(text: str) -> dict[str, str]:
    """``name=value`` lines and ``name<<DELIM`` heredocs, as the runner reads them."""
    out: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            buf = []
            while i < len(lines) and lines[i] != delim:
                buf.append(lines[i])
                i += 1
            i += 1
            out[name] = "\n".join(buf)
        elif "=" in line:
            name, value = line.split("=", 1)
            out[name] = value
    return out


@dataclass
class StepRun:
    id: str | None
    name: str
    outcome: str  # success | failure | skipped
    outputs: dict[str, str] = field(default_factory=dict)
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0


@dataclass
class ActionRun:
    steps: list[StepRun]
    outputs: dict[str, str]
    summary: str

    @property
    def failed(self) -> bool:
        return any(s.outcome == "failure" for s in self.steps)

    @property
    def log(self) -> str:
        return "\n".join(f"--- {s.name} [{s.outcome}]\n{s.stdout}{s.stderr}" for s in self.steps)

    def step(self, ident: str) -> StepRun:
        return next(s for s in self.steps if s.id == ident)


class Context:
    def __init__(
        self, inputs: dict[str, str], github: dict[str, Any], runner: dict[str, str]
    ) -> None:
        self.inputs = inputs
        self.github = github
        self.runner = runner
        self.steps: dict[str, StepRun] = {}
        self.failed = False

    def lookup(self, path: str) -> Any:
        parts = path.split(".")
        root = parts[0]
        if root == "inputs":
            return self.inputs.get(".".join(parts[1:]), "")
        if root == "runner":
            return self.runner.get(parts[1], "")
        if root == "steps":
            st = self.steps.get(parts[1])
            if st is None:
                return ""
            if parts[2] == "outputs":
                return st.outputs.get(parts[3], "")
            if parts[2] in ("outcome", "conclusion"):
                return st.outcome
            return ""
        if root == "github":
            cur: Any = self.github
            for p in parts[1:]:
                cur = cur.get(p) if isinstance(cur, dict) else None
                if cur is None:
                    return ""
            return cur
        raise ValueError(f"unsupported context in expression: {path}")

    def value(self, expr: str) -> Any:
        expr = expr.strip()
        if expr.startswith("!"):
            return not self.truthy(self.value(expr[1:]))
        if expr.startswith("'") and expr.endswith("'"):
            return expr[1:-1].replace("''", "'")
        if expr in ("always()", "success()", "failure()", "cancelled()"):
            return {
                "always()": True,
                "success()": not self.failed,
                "failure()": self.failed,
                "cancelled()": False,
            }[expr]
        if expr in ("true", "false"):
            return expr == "true"
        return self.lookup(expr)

    @staticmethod
    def truthy(v: Any) -> bool:
        return bool(v) and v != "false" if not isinstance(v, bool) else v

    def evaluate(self, expr: str) -> Any:
        expr = EXPR.sub(lambda m: m.group(1), expr).strip()
        if "||" in expr:
            return any(self.truthy(self.evaluate(e)) for e in expr.split("||"))
        if "&&" in expr:
            return all(self.truthy(self.evaluate(e)) for e in expr.split("&&"))
        for op in ("!=", "=="):
            if op in expr:
                a, b = expr.split(op, 1)
                eq = str(self.value(a)).lower() == str(self.value(b)).lower()
                return eq if op == "==" else not eq
        return self.value(expr)

    def substitute(self, text: str) -> str:
        return EXPR.sub(lambda m: str(self.evaluate(m.group(1))), str(text))

    def condition(self, cond: str | None) -> bool:
        if cond is None:
            return not self.failed
        text = EXPR.sub(lambda m: m.group(1), str(cond))
        uses_status = any(f in text for f in ("always()", "success()", "failure()", "cancelled()"))
        ok = self.truthy(self.evaluate(text))
        return ok if uses_status else ok and not self.failed


def run_action(
    action_path: str | Path,
    *,
    inputs: dict[str, str],
    github: dict[str, Any],
    workspace: str | Path,
    env: dict[str, str],
    runner_temp: str | Path | None = None,
    stop_after: str | None = None,
) -> ActionRun:
    """Run ``action_path``'s composite steps. ``github`` is the github context (with
    ``event``, ``repository``, ``token``, ``action_path``...); ``env`` the job's environment.
    ``stop_after`` ends the run after the step with that id."""
    action = load_action(action_path)
    temp = Path(runner_temp or tempfile.mkdtemp(prefix="runner-temp-"))
    temp.mkdir(parents=True, exist_ok=True)
    defaults = {
        name: spec.get("default", "") for name, spec in (action.get("inputs") or {}).items()
    }
    ctx = Context({}, github, {"os": "Linux", "temp": str(temp), "arch": "X64"})
    resolved = {k: ctx.substitute(v) for k, v in defaults.items()}
    unknown = set(inputs) - set(defaults)
    if unknown:
        raise ValueError(f"unknown inputs: {sorted(unknown)}")
    resolved.update(inputs)
    ctx.inputs = resolved
    summary_file = temp / "step_summary.md"
    summary_file.write_text("")
    runs: list[StepRun] = []
    for i, step in enumerate(action["runs"]["steps"]):
        sid = step.get("id")
        name = step.get("name") or step.get("uses") or f"step {i}"
        if "uses" in step or not ctx.condition(step.get("if")):
            st = StepRun(sid, name, "skipped")
        else:
            out_file = temp / f"output_{i}"
            out_file.write_text("")
            step_env = {
                **env,
                "GITHUB_OUTPUT": str(out_file),
                "GITHUB_STEP_SUMMARY": str(summary_file),
                "RUNNER_TEMP": str(temp),
                "GITHUB_ACTION_PATH": str(github.get("action_path", "")),
            }
            step_env.update({k: ctx.substitute(v) for k, v in (step.get("env") or {}).items()})
            script = temp / f"step_{i}.sh"
            script.write_text(step["run"])
            t0 = time.perf_counter()
            proc = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                cwd=str(workspace),
                env=step_env,
                capture_output=True,
                text=True,
                check=False,
            )
            st = StepRun(
                sid,
                name,
                "success" if proc.returncode == 0 else "failure",
                parse_output_file(out_file.read_text()),
                proc.returncode,
                proc.stdout,
                proc.stderr,
                time.perf_counter() - t0,
            )
            if proc.returncode != 0:
                ctx.failed = True
        runs.append(st)
        if sid:
            ctx.steps[sid] = st
        if stop_after is not None and sid == stop_after:
            break
    outputs = {
        name: ctx.substitute(spec.get("value", ""))
        for name, spec in (action.get("outputs") or {}).items()
    }
    return ActionRun(runs, outputs, summary_file.read_text())


def base_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A job environment: PATH/HOME/LANG from this process plus the runner's variables."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER")
    }
    return {"CI": "true", "GITHUB_ACTIONS": "true", **keep, **(extra or {})}
