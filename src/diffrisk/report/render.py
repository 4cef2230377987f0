"""Rendering a :class:`~diffrisk.scoring.result.ScoreResult`: PR comment, job summary, terminal.

Templates are Jinja2 files shipped in ``diffrisk/templates`` (``comment.md.j2``,
``summary.md.j2`` and the shared ``_macros.j2``); ``report.template`` and
``report.summary_template`` in the configuration point to your own, relative to the
repository. They are rendered in Jinja2's *sandboxed* environment: a template taken from a
pull request cannot call Python code or read files outside its own directory, and it sees
nothing but the result.

Template context: ``r`` (the result as a dict: exactly ``ScoreResult.to_dict()``, which is
also the JSON report), ``version`` (diffrisk's), ``check_name``, ``summary_url`` (the run's
page, or None) and ``report_path`` (or None). Autoescaping is off (this is Markdown), so
strings from the repository must go through a filter:

* ``|md`` — Markdown text: HTML special characters, ``|``, backticks, emphasis and link
  brackets are escaped, and ``@user`` / ``#123`` get a zero-width space so a commit subject
  cannot ping people or link issues;
* ``|code`` — inline code (``<code>`` with entities; safe inside table cells);
* ``|prob`` (0.823 -> ``82%``), ``|pct`` (a percentile), ``|num``, ``|signed``, ``|emoji``
  (level -> coloured circle), ``|arrow`` (sign of a contribution), ``|metrics`` (model
  metrics dict -> list of (name, formatted value)).

The hidden marker that makes the PR comment sticky is added in front of whatever a
template renders, so a custom template cannot break the one-comment-per-PR rule.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from diffrisk import __version__
from diffrisk.config import Config, ReportConfig
from diffrisk.errors import ConfigError
from diffrisk.hosts.github.actions import cut_markdown
from diffrisk.scoring.result import (  # noqa: F401  (load_result: callers' import path)
    CommitRisk,
    Factor,
    FileRisk,
    ScoreResult,
    load_result,
    result_from_dict,
)

if TYPE_CHECKING:
    from diffrisk.trusted import SettingsSource

#: GitHub's limits: issue comment body, and check run output summary/text (characters).
COMMENT_LIMIT = 65_536
CHECK_SUMMARY_LIMIT = 65_535

_TEMPLATES = Path(__file__).parent / "templates"

_EMOJI = {"high": "🔴", "medium": "🟠", "low": "🟢"}


# ----------------------------------------------------------------------------- filters
_MD_ESCAPES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    "|": "&#124;",
    "`": "&#96;",
    "\\": "\\\\",
    "*": "\\*",
    "_": "\\_",
    "[": "\\[",
    "]": "\\]",
    "~": "\\~",
}
_MD_RE = re.compile("[" + re.escape("".join(_MD_ESCAPES)) + "]")
ZWSP = "\u200b"
"""Zero-width space: keeps GitHub from turning repository text into @mentions and #links."""
_CODE_RE = re.compile(r"[|`*_\[\]~\\]")


def md(value: Any) -> str:
    """Escape ``value`` for use as Markdown text (one line; also safe in a table cell)."""
    if value is None:
        return ""
    text = " ".join(str(value).split())  # newlines would end table rows and list items
    # No @mentions, no #123 / owner/repo#123 issue links from repository text.
    text = re.sub(r"(?<![\w.+-])@(?=\w)", "@" + ZWSP, text)
    text = re.sub(r"#(?=\w)", "#" + ZWSP, text)
    return _MD_RE.sub(lambda m: _MD_ESCAPES[m.group()], text)


def code(value: Any) -> str:
    """Inline code that survives any content: ``<code>`` with HTML entities."""
    if value is None:
        return ""
    # Markdown is still parsed between inline HTML tags: entities for everything it acts on.
    text = html.escape(" ".join(str(value).split()), quote=True)
    return "<code>" + _CODE_RE.sub(lambda m: f"&#{ord(m.group())};", text) + "</code>"


def prob(value: Any) -> str:
    """A probability as a whole percentage (``<1%`` / ``>99%`` at the ends)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    p = float(value) * 100
    if 0 < p < 1:
        return "<1%"
    if 99 < p < 100:
        return ">99%"
    return f"{p:.0f}%"


def pct(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.0f}%"


def num(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.2f}"
    return md(value)


def signed(value: Any) -> str:
    return "—" if value is None else f"{float(value):+.2f}"


def emoji(level: Any) -> str:
    return _EMOJI.get(str(level), "⚪")


def arrow(contribution: Any) -> str:
    c = float(contribution or 0)
    return "↑" if c > 0 else "↓" if c < 0 else "·"


_METRIC_NAMES = {
    "auc": "ROC AUC",
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC",
    "average_precision": "Average precision",
    "brier": "Brier score",
    "mcc": "MCC",
    "f1": "F1",
    "precision": "Precision",
    "recall": "Recall",
    "popt": "Popt",
    "recall_at_20": "Recall at 20% effort",
    "recall_20": "Recall at 20% effort",
    "recall_at_20_effort": "Recall at 20% effort",
    "effort_at_20_recall": "Effort at 20% recall",
    "ifa": "Initial false alarms",
}
# What a reviewer is shown of the registry's nested metrics, in this order.
_HEADLINE = ("roc_auc", "pr_auc", "recall_at_20_effort", "effort_at_20_recall", "brier")


def metrics(values: Any, limit: int = 10) -> list[tuple[str, str]]:
    """Scalar model metrics (and ``{"mean":, "std":}`` pairs) as display rows, known ones first."""
    if not isinstance(values, Mapping):
        return []
    overall = values.get("overall")
    if isinstance(overall, Mapping):
        return _nested_metrics(overall, values.get("baseline"), limit)
    rows: list[tuple[int, str, str]] = []
    order = list(_METRIC_NAMES)
    for key, v in values.items():
        if isinstance(v, Mapping) and isinstance(v.get("mean"), (int, float)):
            std = v.get("std")
            shown = f"{v['mean']:.3f}" + (f" ± {std:.3f}" if isinstance(std, (int, float)) else "")
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            if isinstance(v, float) and math.isnan(v):
                continue
            shown = f"{v:,}" if isinstance(v, int) else f"{v:.3f}"
        else:
            continue
        rank = order.index(key) if key in order else len(order)
        rows.append((rank, _METRIC_NAMES.get(key, str(key)), shown))
    rows.sort(key=lambda t: t[0])  # stable: unknown keys keep their order
    return [(name, shown) for _, name, shown in rows[:limit]]


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)


def _nested_metrics(overall: Mapping, baseline: Any, limit: int) -> list[tuple[str, str]]:
    """The registry's form (``{"overall": {...}, "baseline": {...}, ...}``): the headline
    metrics of the model, each next to the lines-added baseline's when there is one."""
    base = baseline if isinstance(baseline, Mapping) else {}
    rows = []
    for key in _HEADLINE:
        v = overall.get(key)
        if not _number(v):
            continue
        shown = f"{v:.3f}"
        if _number(base.get(key)):
            shown += f" (baseline {base[key]:.3f})"
        rows.append((_METRIC_NAMES[key], shown))
    return rows[:limit]


_FILTERS = {
    "md": md,
    "code": code,
    "prob": prob,
    "pct": pct,
    "num": num,
    "signed": signed,
    "emoji": emoji,
    "arrow": arrow,
    "metrics": metrics,
}


# ----------------------------------------------------------------------------- result I/O
def result_dict(result: ScoreResult | Mapping[str, Any]) -> dict[str, Any]:
    """The JSON form of a result (``to_dict()``), with thresholds always present."""
    d = (
        result.to_dict()
        if isinstance(result, ScoreResult)
        else json.loads(json.dumps(dict(result)))
    )
    th = dict(d.get("thresholds") or {})
    defaults = Config().score
    th.setdefault("medium", defaults.medium)
    th.setdefault("high", defaults.high)
    d["thresholds"] = th
    for key in (
        "factors",
        "files",
        "commits",
        "advice",
        "reviewers",
        "warnings",
        "review_files",
        "review_commits",
    ):
        d[key] = list(d.get(key) or [])
    d.setdefault("percentile", None)
    d.setdefault("model_metrics", {})
    # a result saved before levels by rank: probability cut-offs, past-year percentile
    lr = dict(d.get("level_rule") or {})
    lr.setdefault("basis", "probability")
    lr.setdefault("reference_text", "this repository's commits in the past year")
    d["level_rule"] = lr
    return d


# ----------------------------------------------------------------------------- templates
def comment_marker(check_name: str = "diffrisk") -> str:
    """The hidden first line that identifies our sticky comment for one check name."""
    name = quote(check_name, safe="").replace("-", "%2D")  # no "--" or "-->" inside a comment
    return f'<!-- diffrisk:comment check="{name}" -->'


class _SourceLoader(jinja2.BaseLoader):
    """Templates from one directory of a :class:`~diffrisk.trusted.SettingsSource`: the
    trusted commit's files (or the work tree's), regular files only, never a symbolic
    link (which could name ``/proc/self/environ`` and print the token)."""

    def __init__(self, source: SettingsSource, directory: str) -> None:
        self.source = source
        self.directory = directory

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Any]:
        pieces = jinja2.loaders.split_template_path(template)  # refuses ".."
        rel = "/".join([*([self.directory] if self.directory else []), *pieces])
        data = self.source.read(rel)
        if data is None:
            raise jinja2.TemplateNotFound(template)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(
                f"report template {self.source.describe(rel)} is not UTF-8 text",
                hint="save it as UTF-8",
            ) from None
        return text, None, lambda: True


def _environment(user: _SourceLoader | None = None) -> SandboxedEnvironment:
    loaders: list[jinja2.BaseLoader] = []
    if user is not None:
        loaders.append(user)
    loaders.append(jinja2.FileSystemLoader(str(_TEMPLATES)))
    env = SandboxedEnvironment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=False,
        lstrip_blocks=False,
    )
    env.filters.update(_FILTERS)
    return env


def _template(
    name: str, custom: str | None, source: SettingsSource | str | Path | None
) -> jinja2.Template:
    if not custom:
        return _environment().get_template(name)
    from diffrisk.trusted import SettingsSource

    src = source if isinstance(source, SettingsSource) else SettingsSource(Path(source or "."))
    parts = Path(custom).as_posix().split("/")
    if Path(custom).is_absolute() or ".." in parts:
        raise ConfigError(
            f"report template {custom} is outside the repository",
            hint="give a path relative to the repository root",
        )
    directory, _, base = Path(custom).as_posix().rpartition("/")
    if src.read(custom) is None:
        raise ConfigError(
            f"report template {src.describe(custom)} does not exist",
            hint="fix report.template in the configuration, or remove it to use the built-in one",
        )
    try:
        return _environment(_SourceLoader(src, directory)).get_template(base)
    except jinja2.TemplateSyntaxError as err:
        raise ConfigError(
            f"report template {custom}, line {err.lineno}: {err.message}",
            hint="fix the Jinja2 syntax",
        ) from None


def _render(template: jinja2.Template, source: str, context: dict[str, Any]) -> str:
    try:
        return template.render(**context)
    except (jinja2.TemplateError, Exception) as err:  # a template's own error is not our bug
        raise ConfigError(
            f"report template {source} failed: {err}",
            hint="templates see `r` (the result dict), `version`, `check_name`, `summary_url` and `report_path`",
        ) from None


def _context(result: ScoreResult | Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    return {"r": result_dict(result), "version": __version__, **extra}


def render_comment(
    result: ScoreResult | Mapping[str, Any],
    config: ReportConfig | None = None,
    *,
    repo_root: SettingsSource | str | Path | None = None,
    summary_url: str | None = None,
    limit: int = COMMENT_LIMIT,
) -> str:
    """The PR comment (marker first), cut to ``limit`` characters when longer."""
    cfg = config or ReportConfig()
    tpl = _template("comment.md.j2", cfg.template, repo_root)
    body = _render(
        tpl,
        cfg.template or "comment.md.j2",
        _context(result, check_name=cfg.check_name, summary_url=summary_url, report_path=None),
    )
    body = comment_marker(cfg.check_name) + "\n" + body.lstrip("\n")
    return cut_markdown(body, limit, _pointer("comment", limit, summary_url))


def render_summary(
    result: ScoreResult | Mapping[str, Any],
    config: ReportConfig | None = None,
    *,
    repo_root: SettingsSource | str | Path | None = None,
    report_path: str | None = None,
) -> str:
    """The job summary (everything expanded); the 1 MiB cut happens when it is written."""
    cfg = config or ReportConfig()
    tpl = _template("summary.md.j2", cfg.summary_template, repo_root)
    return _render(
        tpl,
        cfg.summary_template or "summary.md.j2",
        _context(result, check_name=cfg.check_name, summary_url=None, report_path=report_path),
    )


def render_check_summary(
    result: ScoreResult | Mapping[str, Any],
    config: ReportConfig | None = None,
    *,
    repo_root: SettingsSource | str | Path | None = None,
    summary_url: str | None = None,
) -> str:
    """The check run's output summary: the comment without its marker, cut to 65,535."""
    body = render_comment(result, config, repo_root=repo_root, summary_url=summary_url, limit=10**9)
    body = body.split("\n", 1)[1] if body.startswith("<!--") else body
    return cut_markdown(
        body, CHECK_SUMMARY_LIMIT, _pointer("check summary", CHECK_SUMMARY_LIMIT, summary_url)
    )


def _pointer(what: str, limit: int, summary_url: str | None) -> str:
    where = f"[job summary]({summary_url})" if summary_url else "job summary"
    return f"_This {what} was cut at GitHub's {limit:,}-character limit; the full report is in the {where}._"


def title(result: ScoreResult | Mapping[str, Any]) -> str:
    """One line, e.g. ``High risk (82%)``."""
    d = result_dict(result)
    return f"{str(d['level']).capitalize()} risk ({prob(d['probability'])})"


# ----------------------------------------------------------------------------- terminal
def render_terminal(result: ScoreResult | Mapping[str, Any], console: Any = None) -> None:
    """Print the result for a person at a terminal (rich tables; plain text when piped)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    d = result_dict(result)
    con = console or Console()
    colour = {"high": "red", "medium": "yellow", "low": "green"}.get(d["level"], "white")
    line = f"[bold {colour}]{escape(title(d))}[/]"
    if d.get("percentile") is not None:
        line += f"  riskier than {pct(d['percentile'])} of {d['level_rule']['reference_text']}"
        if len(d["commits"]) > 1:
            line += f" (this change combines {len(d['commits'])} commits, and larger changes rank higher)"
    con.print(line)
    con.print(f"model {escape(str(d.get('model_version')))} ({escape(str(d.get('model_source')))})")
    if d["factors"]:
        t = Table(title="Factors", title_justify="left")
        t.add_column("")
        t.add_column("Factor")
        t.add_column("Value", justify="right")
        t.add_column("Effect", justify="right")
        for f in d["factors"]:
            t.add_row(
                arrow(f["contribution"]),
                escape(str(f["text"])),
                num(f["value"]),
                signed(f["contribution"]),
            )
        con.print(t)
    if d["files"]:
        t = Table(title="Hotspot files", title_justify="left")
        for col, just in (
            ("File", "left"),
            ("Risk", "right"),
            ("+/-", "right"),
            ("Past fixes", "right"),
            ("Why", "left"),
        ):
            t.add_column(col, justify=just)  # type: ignore[arg-type]
        for f in d["files"]:
            t.add_row(
                escape(str(f["path"])),
                prob(f["score"]),
                f"+{f['la']}/-{f['ld']}",
                str(f["past_fixes"]),
                escape("; ".join(map(str, f.get("reasons") or []))),
            )
        con.print(t)
    if d["advice"]:
        con.print("[bold]Advice[/]")
    for a in d["advice"]:
        con.print(f"- {escape(str(a))}")
    for w in d["warnings"]:
        con.print(f"[yellow]warning:[/] {escape(str(w))}")
