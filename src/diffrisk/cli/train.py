"""``diffrisk train`` and ``diffrisk evaluate``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from diffrisk.cli.output import (
    config_option,
    config_rev_option,
    data_dir_option,
    json_option,
    lock_data_dir,
    progress_bar,
    quiet_option,
    repo_option,
)
from diffrisk.config import MODEL_KINDS, load_config
from diffrisk.data.paths import default_data_dir
from diffrisk.report.terminal import Console, print_json

model_option = click.option(
    "--model",
    type=click.Choice(["auto", *MODEL_KINDS]),
    default=None,
    help="Model kind; auto (default: train.model) picks the best in time-ordered evaluation.",
)

_COLS = (
    ("roc_auc", "ROC-AUC"),
    ("pr_auc", "PR-AUC"),
    ("f1", "F1"),
    ("mcc", "MCC"),
    ("brier", "Brier"),
    ("recall_at_20_effort", "R@20%E"),
    ("effort_at_20_recall", "E@20%R"),
    ("popt", "Popt"),
    ("ifa", "IFA"),
    ("density_recall_at_20_effort", "R@20%E p/eff"),
    ("density_popt", "Popt p/eff"),
)


def _f(v: Any, key: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if key == "ifa" and isinstance(v, int | float):  # a count of changes: one format
        return f"{v:.1f}"
    return (
        f"{v:.1f}"
        if isinstance(v, float) and abs(v) >= 10
        else (f"{v:.3f}" if isinstance(v, float) else str(v))
    )


def render_evaluation(ev: dict[str, Any], console: Console) -> None:
    """Rich tables: per model (mean over folds), then the folds of the chosen model."""
    from diffrisk.training.train import BUNDLED_CANDIDATE

    full = ev["models"][ev["baseline"]]["overall"].get("folds", 0)
    notes = ["* chosen (best mean ROC-AUC)"]
    if BUNDLED_CANDIDATE in ev["models"]:
        notes.append("bundled: the cross-project model shipped with diffrisk, not refitted")
    short = {
        k: m["overall"].get("folds", 0)
        for k, m in ev["models"].items()
        if m["overall"].get("folds", 0) < full
    }
    for k, n in short.items():
        notes.append(f"{k} ({n} of {full} folds: not compared)")
    notes.append("1/(la+ld): the unsupervised ranking, smallest change first")
    t = Table(
        title="time-ordered evaluation (labelable changes; mean over folds)",
        caption="; ".join(notes),
    )
    t.add_column("model", no_wrap=True)
    for _, head in _COLS:
        t.add_column(head, justify="right")
    for kind, m in ev["models"].items():
        o = m["overall"]
        n = o.get("folds", 0)
        name = (
            kind
            + (" (baseline)" if kind == ev["baseline"] else "")
            + (f" {n}/{full}" if n < full else "")
            + (" *" if kind == ev["chosen"] else "")
        )
        t.add_row(name, *[_f(o.get(k), k) for k, _ in _COLS])
    u = ev["unsupervised_effort"]["overall"]
    t.add_row(
        "1/(la+ld)",
        *["-"] * 5,
        *[_f(u.get(k), k) for k in ("recall_at_20_effort", "effort_at_20_recall", "popt", "ifa")],
        "-",
        "-",
    )
    console.print(t)
    chosen = ev["chosen"] or ev["baseline"]
    ft = Table(title=f"folds ({chosen} vs baseline; gap {ev['gap_days']:.0f} days)")
    for c in (
        "fold",
        "train to",
        "test from",
        "test to",
        "train (buggy)",
        "test (buggy)",
        "ROC-AUC",
        "baseline",
        "R@20%E",
        "note",
    ):
        ft.add_column(c)
    for i, f in enumerate(ev["folds"]):
        m = ev["models"][chosen]["folds"][i] or {}
        b = ev["models"][ev["baseline"]]["folds"][i] or {}
        ft.add_row(
            str(f["index"]),
            f["train_end"][:10],
            f["test_start"][:10],
            f["test_end"][:10],
            f"{f['n_train']} ({f['n_train_buggy']})",
            f"{f['n_test']} ({f['n_test_buggy']})",
            _f(m.get("roc_auc")),
            _f(b.get("roc_auc")),
            _f(m.get("recall_at_20_effort")),
            f["skipped"] or "",
        )
    console.print(ft)
    if any("pooled" in m for m in ev["models"].values()):
        console.print(pooled_table(ev))
    style = "green" if ev["beats_baseline"] else "yellow"
    console.print(f"[{style}]{ev['statement']}[/]")


def _signed(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.3f}"


def pooled_table(ev: dict[str, Any]) -> Table:
    """Per model: ROC-AUC as the mean over folds and pooled over the test commits, the
    pooled difference from the baseline with its paired-bootstrap interval, and capture
    (share of the defect-inducing changes among the riskiest 5%, 10%, 20% of changes)."""
    over = ev.get("pooled_over") or {}
    boot = ev.get("bootstrap") or {}
    conf = round(100 * boot.get("confidence", 0.95))
    t = Table(
        title=(
            f"against the lines-added baseline (pooled over {over.get('n', 0):,} test commits, "
            f"{over.get('n_buggy', 0):,} defect-inducing, in {over.get('folds', 0)} folds)"
        ),
        caption=(
            f"difference: pooled ROC-AUC minus the baseline's; {conf}% CI: paired bootstrap, "
            f"{boot.get('resamples', 0)} resamples of the test commits within their folds; "
            "capture: share of the defect-inducing changes among the riskiest 5/10/20% of changes"
        ),
    )
    for c in (
        "model",
        "ROC-AUC mean",
        "ROC-AUC pooled",
        "difference",
        f"{conf}% CI",
        "capture 5%",
        "capture 10%",
        "capture 20%",
    ):
        t.add_column(c, justify="left" if c == "model" else "right", no_wrap=True)
    for kind, m in ev["models"].items():
        pooled = m.get("pooled") or {}
        vs = m.get("vs_baseline")
        if kind == ev["baseline"]:
            diff, ci = "(baseline)", ""
        elif vs:
            diff = _signed(vs.get("difference"))
            ci = f"{_signed(vs.get('ci_low'))} to {_signed(vs.get('ci_high'))}"
            if vs.get("n") != over.get("n"):
                ci += f" ({vs.get('n'):,} commits)"
        else:
            diff, ci = "-", ""
        t.add_row(
            kind + (" *" if kind == ev["chosen"] else ""),
            _f(m["overall"].get("roc_auc")),
            _f(pooled.get("roc_auc")),
            diff,
            ci,
            *[_f(pooled.get(f"capture_at_{b}")) for b in (5, 10, 20)],
        )
    return t


@click.command("train")
@repo_option
@data_dir_option
@model_option
@click.option(
    "--force",
    is_flag=True,
    help="Make the new model current even if it scores below the current one.",
)
@click.option(
    "--if-stale",
    is_flag=True,
    help="Only train when there is no current model or it is older than train.max_age_days.",
)
@config_option
@config_rev_option
@json_option
@quiet_option
def train_cmd(
    repo: str,
    data_dir: str | None,
    model: str | None,
    force: bool,
    if_stale: bool,
    config_path: str | None,
    config_rev: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Train a model for REPO from its mined and labelled history.

    Evaluates the candidates on time-ordered folds, fits the chosen one on all labelled
    history, saves it in DATA_DIR/models/ and makes it current when it is at least as good
    as the current model on the latest fold (champion/challenger) or with --force.
    With too little labelled history (too few defect-inducing changes, no clean one, no
    fold to evaluate on) it does not train, says why and exits 0: the bundled model scores.
    """
    from diffrisk.pipeline import model_stale_reason
    from diffrisk.training.train import train

    cfg = load_config(repo, config_path, rev=config_rev)
    out_dir = Path(data_dir) if data_dir else default_data_dir(repo)
    lock_data_dir(out_dir)
    if if_stale:
        reason = model_stale_reason(out_dir, cfg)
        if reason is None:
            msg = "the current model is fresh: not retraining"
            if as_json:
                print_json({"status": "fresh", "message": msg})
            elif not quiet:
                click.echo(msg)
            return
        if not quiet and not as_json:
            click.echo(f"training: {reason}")
    with progress_bar(quiet or as_json) as prog:
        res = train(repo, out_dir, cfg, model=model, force=force, progress=prog)
    if as_json:
        print_json(res.to_dict())
        return
    console = Console()
    if res.status == "fallback":  # not an error: scoring goes on with another model
        click.secho(res.message, fg="yellow", err=True)  # one line, never wrapped
        return
    if res.status == "unchanged":
        if not quiet:
            console.print(res.message)
        return
    if not quiet and res.evaluation:
        render_evaluation(res.evaluation, console)
    from diffrisk.training.train import BUNDLED_CANDIDATE

    state = "current" if res.promoted else "saved, not current"
    if res.kind == BUNDLED_CANDIDATE:
        console.print(
            f"model {res.version} (the bundled cross-project model: it ranked best on this "
            f"repository's {res.n_train} labelled changes, without being trained on them): {state}"
        )
    else:
        console.print(
            f"model {res.version} ({res.kind}, {res.n_train} changes, {res.n_buggy} defect-inducing): {state}"
        )
    console.print(f"  {res.promotion}")


@click.command("evaluate")
@repo_option
@data_dir_option
@model_option
@click.option(
    "--predictions",
    "predictions_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Write every out-of-time prediction (sha, fold, model, probability, label, effort, "
    "author_time) to this file: Parquet if it ends in .parquet, else CSV.",
)
@config_option
@config_rev_option
@json_option
@quiet_option
def evaluate_cmd(
    repo: str,
    data_dir: str | None,
    model: str | None,
    predictions_path: str | None,
    config_path: str | None,
    config_rev: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Evaluate the candidate models on time-ordered folds (nothing is saved but the
    --predictions file).

    Rolling origin: train on the past, skip a gap (the verification latency), test on the
    next period; training labels only use fixes committed before the test period. Each
    candidate is compared with the lines-added baseline by a paired bootstrap of the
    ROC-AUC pooled over the test commits.
    """
    from diffrisk.model.estimators import KINDS
    from diffrisk.training.evaluate import evaluate, write_predictions
    from diffrisk.training.train import bundled_candidates, load_training_frame, uses_code_metrics

    cfg = load_config(repo, config_path, rev=config_rev)
    out_dir = Path(data_dir) if data_dir else default_data_dir(repo)
    frame, _ = load_training_frame(out_dir, cfg, repo)
    kind = model or cfg.train.model
    kinds = list(KINDS) if kind == "auto" else [kind]
    with progress_bar(quiet or as_json) as prog:
        ev = evaluate(
            frame,
            cfg,
            kinds=kinds,
            code_metrics=uses_code_metrics(cfg, frame),
            progress=prog,
            fixed=bundled_candidates(cfg, frame) if kind == "auto" else None,
        )
    out = ev.to_dict()
    if predictions_path:
        out["predictions_file"] = str(write_predictions(ev, predictions_path))
    if as_json:
        print_json(out)
        return
    render_evaluation(out, Console())
    if predictions_path and not quiet:
        Console().print(f"predictions: {out['predictions_file']}")


COMMANDS = [train_cmd, evaluate_cmd]
