"""The monitor report as Markdown (job summary, the monitor issue's body) and as rich tables."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from diffrisk.monitoring.capture import BASELINE_FEATURES
from diffrisk.monitoring.drift import MIN_INFLUENCE
from diffrisk.monitoring.labelquality import section_markdown, section_rows
from diffrisk.monitoring.monitor import MonitorReport
from diffrisk.report.format import plural as _n

ISSUE_MARKER = "<!-- diffrisk:monitor -->"


_STATUS_MARK = {
    "alert": "🔴 alert",
    "warn": "🟡 warn",
    "ok": "🟢 ok",
    "insufficient": "⚪ too few changes",
}


_IGNORED = " (little weight: ignored)"


def _ignored(f: Mapping[str, Any]) -> bool:
    """An alert on a feature the model gives little weight to (see FeatureDrift.matters)."""
    w = f.get("influence")
    return f.get("status") == "alert" and w is not None and w < MIN_INFLUENCE


def _f(v: Any, nd: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _pct(v: Any) -> str:
    return "–" if v is None else f"{100 * v:.0f}%"


def to_markdown(report: MonitorReport | Mapping[str, Any], *, plots_url: str | None = None) -> str:
    """The report as Markdown (job summary, the monitor issue's body)."""
    d = report.to_dict() if isinstance(report, MonitorReport) else dict(report)
    dec = d["decision"]
    out = [ISSUE_MARKER, "## diffrisk model monitor", ""]
    verdict = "**Retraining recommended**" if dec["retrain"] else "**No retraining needed**"
    model = (
        f"`{d['model_version']}` ({d['model_source']}{', ' + d['model_kind'] if d.get('model_kind') else ''})"
        if d["model_version"]
        else "none"
    )
    out += [
        f"{verdict} · model {model} · generated {d['generated_at']}",
        "",
    ]
    if dec["reasons"]:
        out += [f"- {r}" for r in dec["reasons"]] + [""]
    if dec.get("held_back"):
        out += [f"Not recommended now: {dec['held_back']}.", ""]
    rr = d.get("retrain_result")
    if rr:
        out += ["### Retraining", "", f"{rr.get('summary', '')}", ""]
    ref, rec = d["reference"], d["recent"]
    out += [
        f"### Feature drift: {_STATUS_MARK.get(d['drift_status'], d['drift_status'])}",
        "",
        f"Reference: {ref['changes']} changes {_day(ref['start'])} – {_day(ref['end'])} "
        f"({'training window' if ref['source'] == 'training_window' else 'older history'}); "
        f"recent: {rec['changes']} changes in the last {rec['days']} days up to {_day(rec['end'])}.",
        "",
        "| feature | PSI | KS D | KS p | median (ref → recent) | model weight | status |",
        "| --- | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for f in sorted(d["drift"], key=lambda f: -(f["psi"] or 0)):
        out.append(
            f"| `{f['feature']}` | {_f(f['psi'])} | {_f(f['ks_statistic'])} | {_p(f['ks_pvalue'])} | "
            f"{_f(f['reference_median'], 2)} → {_f(f['recent_median'], 2)} | {_f(f.get('influence'), 2)} | "
            f"{_STATUS_MARK.get(f['status'], f['status'])}{_IGNORED if _ignored(f) else ''} |"
        )
    out += ["", _status_rule(d.get("drift_thresholds"))]
    out += [
        "",
        "Model weight: the feature's mean absolute contribution to the log-odds of the recent "
        f"changes. Drift of a feature weighing less than {MIN_INFLUENCE} cannot move the scores "
        "and does not call for retraining.",
        "",
    ]
    r = d["realized"]
    out += ["### Realized accuracy", ""]
    if r.get("scope") is None:
        out += ["_Not available: needs a model and SZZ labels (`diffrisk label`)._", ""]
    else:
        out += [
            f"Labelled changes {r['scope']}: {r['n']} ({r['n_buggy']} buggy, {r['n_clean']} clean; "
            "changes still inside the verification latency are left out, never counted as clean).",
            "",
            f"- ROC-AUC: **{_f(r['roc_auc'])}** (recorded when trained: {_f(dec['recorded_auc'])})",
            f"- gate at p ≥ {d['threshold']:.2f}: precision {_pct(r['precision'])}, recall {_pct(r['recall'])} "
            f"({r['true_positives']} of {r['n_buggy']} buggy changes, {r['flagged']} flagged)",
            f"- Recall@20%Effort: {_pct(r['recall_at_20_effort'])}",
            "",
        ]
        rows = [p for p in d["periods"] if p["labelled"]][-8:]
        if rows:
            out += [
                "| period | changes | labelled | buggy | ROC-AUC | precision | recall | R@20%E |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            ]
            for p in rows:
                tag = " (training)" if p["in_training"] else ""
                out.append(
                    f"| {p['period']}{tag} | {p['changes']} | {p['labelled']} | {p['n_buggy']} | {_f(p['roc_auc'])} | "
                    f"{_pct(p['precision'])} | {_pct(p['recall'])} | {_pct(p['recall_at_20_effort'])} |"
                )
            out.append("")
    lg, lr = d["log"], d["log_recent"]
    out += ["### Predictions made before merge", ""]
    if not lg["predictions"]:
        out += ["_The prediction log is empty: `diffrisk score` and `diffrisk gate` fill it._", ""]
    else:
        out += [
            "| window | predictions | later buggy | flagged in time | blocked | clean | still unlabelled | not merged |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, s in ((f"last {lr['days']} days", lr), ("all", lg)):
            share = f" ({_pct(s['flagged_share'])})" if s["flagged_share"] is not None else ""
            out.append(
                f"| {name} | {s['predictions']} | {s['buggy']} | {s['buggy_flagged']}{share} | {s['buggy_blocked']} | "
                f"{s['clean']} | {s['unlabelled']} | {s['unmerged']} |"
            )
        out.append("")
    cap = d.get("capture")
    if cap and cap["predictions"]:
        out += [
            "### Capture at a review budget",
            "",
            f"{_capture_intro(cap)} {_capture_counts(cap)}",
            "",
        ]
        rows = _capture_rows(cap)
        if rows:
            out += [
                f"| riskiest | changes | diffrisk | {_baseline_name(cap)} |",
                "| --- | ---: | ---: | ---: |",
            ]
            out += [f"| {' | '.join(r)} |" for r in rows]
            out.append("")
    if d.get("label_quality"):
        out += [section_markdown(d["label_quality"]).rstrip(), ""]
    if d["plots"]:
        out += [
            "Plots: "
            + ", ".join(f"`{Path(p).name}`" for p in d["plots"])
            + (f" ([artifact]({plots_url}))" if plots_url else ""),
            "",
        ]
    for w in d["warnings"]:
        out.append(f"> ⚠️ {w}")
    return "\n".join(out).rstrip() + "\n"


def _baseline_name(cap: Mapping[str, Any]) -> str:
    f = cap.get("baseline_feature")
    return "lines added" + (f" (`{f}`)" if f else "")


def _capture_intro(cap: Mapping[str, Any]) -> str:
    """What the capture figures are (Markdown)."""
    to = " to source files" if cap.get("baseline_feature") == BASELINE_FEATURES[0] else ""
    return (
        "Share of the changes later found buggy that were among the riskiest 5%, 10% and 20% "
        "of the changes scored before merge (the prediction log; ties counted by share), "
        f"next to ranking the same changes by the lines they added{to}."
    )


def _capture_counts(cap: Mapping[str, Any]) -> str:
    """Which logged changes the capture figures count, and what they mean (Markdown)."""
    left = [
        (cap["unlabelled"], "still unlabelled"),
        (cap["too_young"], "younger than the verification latency"),
        (cap["unmerged"], "not merged"),
        (cap["unlabelable"], "that SZZ cannot label (no source file changed)"),
        (cap["superseded"], "superseded by a later prediction of the same pull request"),
    ]
    out = (
        f"{_n(cap['n'], 'logged change')} with a known label "
        f"({cap['n_buggy']} buggy, {cap['n_clean']} clean)"
    )
    gone = [f"{k} {what}" for k, what in left if k]
    out += ("; left out: " + ", ".join(gone) if gone else "") + "."
    if not cap["n"]:
        return out + " No capture to measure yet."
    if not cap["n_buggy"]:
        return out + " None of them was found buggy: no capture to measure yet."
    if cap["too_uncertain"]:
        out += (
            f" **Too uncertain to report a figure:** only {cap['n_buggy']} buggy "
            f"(fewer than {cap['min_buggy']}, `monitor.min_buggy`); the 95% intervals show how "
            "little they tell."
        )
    else:
        out += " In brackets: Wilson 95% intervals."
    if cap.get("baseline_feature") is None:
        out += (
            f" No baseline: {cap['baseline_missing']} of the changes logged no lines-added feature."
        )
    return out


def _capture_cell(cap: Mapping[str, Any], b: Mapping[str, Any], name: str) -> str:
    v, ci = b.get(name), b.get(f"{name}_ci")
    if v is None:
        return "–"
    interval = f"95% CI {_pct(ci[0])}–{_pct(ci[1])}" if ci else ""
    if cap["too_uncertain"]:
        return f"too uncertain ({interval})"
    return f"{_pct(v)} ({interval})"


def _capture_rows(cap: Mapping[str, Any]) -> list[list[str]]:
    """One row per review budget: share, changes, diffrisk's capture, the baseline's."""
    if not cap["n_buggy"]:
        return []
    return [
        [
            _pct(b["share"]),
            str(b["changes"]),
            _capture_cell(cap, b, "model"),
            _capture_cell(cap, b, "baseline"),
        ]
        for b in cap["budgets"]
    ]


def _day(iso: str | None) -> str:
    return iso[:10] if iso else "–"


def _p(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:.2g}" if v >= 1e-4 else "<1e-4"


def _status_rule(th: Mapping[str, Any] | None) -> str:
    """How a feature's drift status is decided (so a high PSI marked ok is not a puzzle)."""
    if not th:
        return "Status: alert or warn when the PSI is high and the KS test confirms it."
    return (
        f"Status: alert when PSI >= {th['psi_alert']:g} and the KS test rejects equal "
        f"distributions (p < {th['ks_alpha']:g}), warn when PSI >= {th['psi_warn']:g} and KS "
        "rejects; a high PSI that KS does not confirm (few or tied values, e.g. mostly zeros) "
        "stays ok."
    )


def render_terminal(report: MonitorReport, console: Any = None) -> None:
    """The report as rich tables."""
    from rich.console import Console
    from rich.table import Table

    con = console or Console()
    d = report.to_dict()
    dec = d["decision"]
    color = "red" if dec["retrain"] else "green"
    con.print(
        f"[bold {color}]{'retraining recommended' if dec['retrain'] else 'no retraining needed'}[/]; "
        + (
            f"model {d['model_version']} ({d['model_source'] or '-'})"
            if d["model_version"]
            else "no usable model (see the warnings below)"
        )
    )
    for r in dec["reasons"]:
        con.print(f"  - {r}")
    if dec.get("held_back"):
        con.print(f"not recommended now: {dec['held_back']}")
    if d.get("retrain_result"):
        con.print(f"[bold]retraining:[/] {d['retrain_result'].get('summary', '')}")
    t = Table(
        title=f"feature drift ({d['reference']['changes']} reference vs {d['recent']['changes']} recent changes)"
    )
    for c in ("feature", "PSI", "KS D", "KS p", "median ref → recent", "weight", "status"):
        t.add_column(c, justify="left" if c in ("feature", "status") else "right")
    style = {"alert": "red", "warn": "yellow", "ok": "green", "insufficient": "dim"}
    for f in sorted(d["drift"], key=lambda f: -(f["psi"] or 0)):
        t.add_row(
            f["feature"],
            _f(f["psi"]),
            _f(f["ks_statistic"]),
            _p(f["ks_pvalue"]),
            f"{_f(f['reference_median'], 2)} → {_f(f['recent_median'], 2)}",
            _f(f.get("influence"), 2),
            f"[{style.get(f['status'], '')}]{f['status']}[/]"
            + (" (little weight)" if _ignored(f) else ""),
        )
    con.print(t)
    con.print(_status_rule(d.get("drift_thresholds")), style="dim")
    r = d["realized"]
    if r.get("scope"):
        con.print(
            f"realized ({r['scope']}): n={r['n']} buggy={r['n_buggy']} ROC-AUC={_f(r['roc_auc'])} "
            f"(recorded {_f(dec['recorded_auc'])}) precision={_pct(r['precision'])} recall={_pct(r['recall'])} "
            f"R@20%E={_pct(r['recall_at_20_effort'])}"
        )
        rows = [p for p in d["periods"] if p["labelled"]][-8:]
        if rows:
            pt = Table(title="realized accuracy per period")
            for c in (
                "period",
                "changes",
                "labelled",
                "buggy",
                "ROC-AUC",
                "precision",
                "recall",
                "R@20%E",
            ):
                pt.add_column(c, justify="left" if c == "period" else "right")
            for p in rows:
                pt.add_row(
                    p["period"] + (" (train)" if p["in_training"] else ""),
                    str(p["changes"]),
                    str(p["labelled"]),
                    str(p["n_buggy"]),
                    _f(p["roc_auc"]),
                    _pct(p["precision"]),
                    _pct(p["recall"]),
                    _pct(p["recall_at_20_effort"]),
                )
            con.print(pt)
    lg = d["log"]
    if lg["predictions"]:
        con.print(
            f"prediction log: {_n(lg['predictions'], 'prediction')}, {lg['buggy']} later buggy, "
            f"{lg['buggy_flagged']} of them flagged in time, {lg['buggy_blocked']} blocked; "
            f"{lg['unlabelled']} still unlabelled, {lg['unmerged']} not merged"
        )
    cap = d.get("capture")
    if cap and cap["predictions"]:
        rows = _capture_rows(cap)
        counts = _capture_counts(cap).replace("**", "").replace("`", "")
        if rows:
            ct = Table(title="capture at a review budget (prediction log)")
            for c in ("riskiest", "changes", "diffrisk", _baseline_name(cap).replace("`", "")):
                ct.add_column(c, justify="right")
            for r in rows:
                ct.add_row(*r)
            con.print(ct)
        con.print(f"capture: {counts}", style="dim", markup=False, highlight=False)
    if d.get("label_quality"):
        qt = Table(title="label quality", show_header=False)
        qt.add_column("", justify="left")
        qt.add_column("", justify="left")
        for k, v in section_rows(d["label_quality"]):
            qt.add_row(k, v)
        con.print(qt)
    for w in d["warnings"]:
        con.print(f"[yellow]warning:[/] {w}")
