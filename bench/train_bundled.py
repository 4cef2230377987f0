"""Train the bundled cross-project model and measure it (per project and leave-one-project-out).

    python bench/train_bundled.py OWNER+NAME=PATH ... [--work DIR] [--out src/diffrisk/bundled]

Each argument is a repository path (a bare mirror or a work tree), optionally prefixed by
its public name (``pallets/flask=/path/to/repo``; otherwise the name is guessed from the
path, ``.../pallets+flask/repo`` -> ``pallets/flask``). For every repository: mine
(``--no-code-metrics`` unless ``--code-metrics``), label (SZZ), then

* the per-project time-ordered evaluation (:func:`diffrisk.training.evaluate.evaluate`);
* leave-one-project-out: each candidate kind trained on the other projects, tested on
  this one (all its labelled, labelable changes), next to the lines-added baseline.

The kind with the best mean LOPO ROC-AUC (or ``--kind``) is fitted on all projects and written to
``--out`` (model.skops, metadata.json, MODEL_CARD.md). A JSON summary goes to stdout and
``--results`` (default WORK/results.json). Only the model and scores are written into
the package: never the repositories or their code.
"""

# ruff: noqa: E402  (thread limits must be set before numpy loads)
from __future__ import annotations

import os

# The machine is shared: one BLAS/OpenMP thread (set before numpy and scikit-learn load).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import math
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from diffrisk.config import Config
from diffrisk.data.store import atomic_write_bytes, load_dataset
from diffrisk.features.fixes import RULE_VERSION
from diffrisk.features.vendored import exclude as exclude_vendored
from diffrisk.labelling.label import BLAME_VERSION, label, load_labels
from diffrisk.mining.mine import mine
from diffrisk.model.contributions import training_medians
from diffrisk.model.estimators import KINDS, fit_estimator
from diffrisk.model.metadata import build_metadata, training_window
from diffrisk.model.registry import (
    CARD_FILE,
    METADATA_FILE,
    MODEL_FILE,
    _jsonable,
    dumps_model,
    library_versions,
    model_card,
    sha256_bytes,
)
from diffrisk.model.transforms import raw_features
from diffrisk.scoring.ranking import score_quantiles
from diffrisk.training.evaluate import (
    all_metrics,
    effort_of,
    eligible_mask,
    evaluate,
    prepare_frame,
)

KEYS = (
    "roc_auc",
    "pr_auc",
    "recall_at_20_effort",
    "popt",
    "density_recall_at_20_effort",
    "density_popt",
    "brier",
    "f1",
    "mcc",
)


def _name(arg: str) -> tuple[str, Path]:
    if "=" in arg:
        name, path = arg.split("=", 1)
        return name, Path(path)
    p = Path(arg)
    part = p.parent.name if p.name in ("repo", ".git") else p.name
    return part.replace("+", "/"), p


def prepare(
    name: str, path: Path, work: Path, cfg: Config, code_metrics: bool, reuse: bool = False
) -> pd.DataFrame:
    data = work / name.replace("/", "+")
    t0 = time.perf_counter()
    mcfg = cfg.mine.model_copy(update={"code_metrics": code_metrics})
    if not (reuse and (data / "changes.parquet").exists() and (data / "labels.parquet").exists()):
        mine(
            path,
            data,
            rev="HEAD",
            config=mcfg,
            fixes=cfg.fixes,
            progress=None,
            source_extensions=cfg.label.source_extensions,
            exclude_paths=cfg.label.exclude_paths,
        )
    t1 = time.perf_counter()
    res = label(path, data, cfg.label)  # incremental: only new fixes are blamed
    t2 = time.perf_counter()
    ds = load_dataset(data)
    # the directories the label stage just left out, not a second detection
    lcfg = exclude_vendored(cfg.label, res.vendored)
    frame = prepare_frame(ds.changes, load_labels(data), ds.files, lcfg)
    frame["project"] = name
    frame.attrs["vendored"] = list(res.vendored)
    print(
        f"{name}: {len(frame)} changes, mined {t1 - t0:.0f}s, labelled {t2 - t1:.0f}s, "
        f"vendored: {', '.join(res.vendored) or 'none'}",
        file=sys.stderr,
    )
    return frame


def reference_quantiles(est: Any, frames: dict[str, pd.DataFrame]) -> list[float]:
    """The bundled model's reference distribution (``score_quantiles``, what levels by rank
    fall back on for a repository too young to rank by its own past year): each training
    project's last year of changes scored, their 101 quantiles averaged over the projects
    (each project weighs the same)."""
    per_project = []
    for fr in frames.values():
        t = pd.to_datetime(fr["author_time"], utc=True)
        last = fr[t >= t.max() - pd.Timedelta(days=365)]
        scores = np.asarray(est.predict_proba(last)[:, 1], dtype=float)
        per_project.append(score_quantiles(scores))
    return [round(float(v), 6) for v in np.mean(np.asarray(per_project), axis=0)]


def _r(v: Any) -> Any:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 4)


def _summary(fr: pd.DataFrame) -> dict[str, Any]:
    """A project's size and commit range (for the results and the model card)."""
    elig = eligible_mask(fr)
    return {
        "commits": len(fr),
        "labelable": int(elig.sum()),
        "buggy": int(fr.loc[elig, "label"].astype(int).sum()),
        "first": fr["author_time"].iloc[0].isoformat(),
        "last": fr["author_time"].iloc[-1].isoformat(),
        "first_sha": fr["sha"].iloc[0],
        "last_sha": fr["sha"].iloc[-1],
        "vendored": list(fr.attrs.get("vendored", [])),
    }


def per_project(
    frames: dict[str, pd.DataFrame],
    cfg: Config,
    code_metrics: bool,
    held_out: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The time-ordered evaluation of each project, as ``diffrisk train`` runs it; its
    ``bundled`` candidate is ``held_out[name]``, the cross-project model fitted without
    this project (the shipped one has seen it)."""
    out = {}
    for name, fr in frames.items():
        t0 = time.perf_counter()
        fixed = {"bundled": held_out[name]} if held_out and name in held_out else None
        ev = evaluate(fr, cfg, code_metrics=code_metrics, fixed=fixed).to_dict()
        out[name] = {
            **_summary(fr),
            "chosen": ev["chosen"],
            "beats_baseline": ev["beats_baseline"],
            "statement": ev["statement"],
            "models": {
                k: {m: _r(v["overall"].get(m)) for m in KEYS} for k, v in ev["models"].items()
            },
            "unsupervised": {m: _r(v) for m, v in ev["unsupervised_effort"]["overall"].items()},
            "folds": [f for f in ev["folds"]],
        }
        print(
            f"{name}: per-project {time.perf_counter() - t0:.0f}s {ev['statement']}",
            file=sys.stderr,
        )
    return out


def _rows(fr: pd.DataFrame) -> pd.DataFrame:
    return fr[eligible_mask(fr)]


def lopo(
    frames: dict[str, pd.DataFrame],
    kinds: list[str],
    code_metrics: bool,
    pfix: bool = False,
    models: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Leave-one-project-out scores; ``models[name][kind]`` receives each fitted model."""
    out: dict[str, Any] = {}
    for name in frames:
        train = pd.concat([_rows(f) for n, f in frames.items() if n != name]).sort_values(
            "author_time", kind="stable"
        )
        test = _rows(frames[name])
        y = test["label"].astype(int).to_numpy()
        res = {}
        for k in kinds:
            est = fit_estimator(
                k,
                train,
                train["label"].astype(int).to_numpy(),
                train["n_fixes"].to_numpy(),
                code_metrics=code_metrics,
                pfix=pfix,
            )
            if models is not None:
                models.setdefault(name, {})[k] = est
            p = est.predict_proba(test)[:, 1]
            m = all_metrics(y, p, effort_of(test))
            res[k] = {key: _r(m[key]) for key in KEYS}
        res["la_source (unfitted)"] = {"roc_auc": _r(roc_auc_score(y, test["la_source"]))}
        code = test["la_code"].fillna(test["la_source"])
        res["la_code (unfitted)"] = {"roc_auc": _r(roc_auc_score(y, code))}
        out[name] = res
        print(
            f"{name}: LOPO " + ", ".join(f"{k} {v['roc_auc']}" for k, v in res.items()),
            file=sys.stderr,
        )
    return out


def card(md: dict[str, Any], results: dict[str, Any]) -> str:
    lines = [model_card(md).split("## Time-ordered evaluation")[0].rstrip(), ""]
    lines += [
        "## Cross-project model",
        "",
        "Trained on the labelled, labelable changes of these public projects (commit ranges by author date):",
        "",
        "| project | first commit | last commit | labelable changes | defect-inducing |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, p in results["per_project"].items():
        lines.append(
            f"| {name} | {p['first_sha'][:12]} ({p['first'][:10]}) | {p['last_sha'][:12]} ({p['last'][:10]}) | {p['labelable']} | {p['buggy']} |"
        )
    vendored = [
        f"{name}: {', '.join(p['vendored'])}"
        for name, p in results["per_project"].items()
        if p.get("vendored")
    ]
    if vendored:
        lines += [
            "",
            "Vendored directories left out (`label.detect_vendored`): " + "; ".join(vendored) + ".",
        ]
    kind = md["kind"]
    lines += [
        "",
        f"## Leave-one-project-out ROC-AUC (trained on the other projects; chosen kind: `{kind}`"
        + (
            f"; best mean: `{results['best_lopo']}`)"
            if results.get("best_lopo", kind) != kind
            else ")"
        ),
        "",
        "| project | " + " | ".join(results["kinds"]) + " |",
        "| --- | " + " | ".join("---" for _ in results["kinds"]) + " |",
    ]
    for name, r in results["lopo"].items():
        lines.append(
            f"| {name} | " + " | ".join(str(r[k]["roc_auc"]) for k in results["kinds"]) + " |"
        )
    mean = results["lopo_mean"]
    lines.append("| **mean** | " + " | ".join(str(mean[k]) for k in results["kinds"]) + " |")
    lines += [
        "",
        "`la` is the lines-added baseline (logistic regression on log1p of lines added to source files).",
        f"Labels come from SZZ with the default settings and fix rule version {md.get('fix_rule_version')}",
        "(`diffrisk.features.fixes.RULE_VERSION`; "
        + _label_note(results.get("label", {}))
        + "); they are noisy.",
        "Once a repository has enough labelled history `diffrisk train` fits its own models,",
        "and this one stays a candidate (`train.bundled_candidate`), kept only where it ranks",
        "best on that history.",
        "",
    ]
    return "\n".join(lines)


def label_settings(cfg: Config) -> dict[str, Any]:
    """The label settings the training labels came from (for the results and the card)."""
    lc = cfg.label
    return {
        "blame_version": BLAME_VERSION,
        "select": lc.select,
        "python_indentation": lc.python_indentation,
        "skip_incidental": lc.skip_incidental,
        "judge_fix_changes": lc.judge_fix_changes,
        "sources": list(lc.sources),
    }


def _label_note(s: dict[str, Any]) -> str:
    if not s:
        return "label settings not recorded"
    # label() is called without a GitHub client, JIRA settings or a fixes file
    ran = [x for x in s["sources"] if x in ("message", "developer")]
    return (
        f'`label.select = "{s["select"]}"`, fixes from the {" and ".join(ran)} sources,'
        f" blame version {s['blame_version']}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("repos", nargs="+")
    ap.add_argument("--work", type=Path, default=Path("/tmp/diffrisk-bundled"))
    ap.add_argument(
        "--out", type=Path, default=None, help="write the model here (e.g. src/diffrisk/bundled)"
    )
    ap.add_argument("--code-metrics", action="store_true")
    ap.add_argument(
        "--pfix",
        action="store_true",
        help="give the cross-project models PFIX (off: across projects its weight comes out "
        "negative and it does not change the held-out ROC-AUC; docs/model.md)",
    )
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="use the dataset mined in WORK/<owner+name> as it is (labels are still brought up "
        "to date, incrementally)",
    )
    # the bundled model serves repositories in any language: no vocabulary of one
    # language's tokens (the tokens kind is still evaluated per project)
    # (nor the prior kind: it starts from the bundled model itself)
    ap.add_argument("--kinds", default=",".join(k for k in KINDS if k not in ("tokens", "prior")))
    ap.add_argument(
        "--kind",
        default=None,
        help="ship this kind instead of the best mean LOPO ROC-AUC (the tables still compare "
        "every kind; the results record both)",
    )
    ap.add_argument("--skip-per-project", action="store_true")
    ap.add_argument("--results", type=Path, default=None)
    args = ap.parse_args(argv)
    cfg = Config()
    kinds = args.kinds.split(",")
    frames = {}
    for arg in args.repos:
        name, path = _name(arg)
        frames[name] = prepare(name, path, args.work, cfg, args.code_metrics, args.reuse)
    results: dict[str, Any] = {
        "kinds": kinds,
        "code_metrics": args.code_metrics,
        "label": label_settings(cfg),
    }
    held_out: dict[str, dict[str, Any]] = {}
    results["lopo"] = lopo(frames, kinds, args.code_metrics, args.pfix, held_out)
    results["lopo_mean"] = {
        k: _r(np.mean([r[k]["roc_auc"] for r in results["lopo"].values()])) for k in kinds
    }
    best = max(kinds, key=lambda k: results["lopo_mean"][k])
    chosen = args.kind or best
    if chosen not in kinds:
        ap.error(f"--kind {chosen} is not among --kinds {args.kinds}")
    results["best_lopo"] = best
    results["chosen"] = chosen
    print(
        f"chosen: {chosen} (best mean LOPO ROC-AUC: {best}; {results['lopo_mean']})",
        file=sys.stderr,
    )
    results["per_project"] = (
        {}
        if args.skip_per_project
        else per_project(
            frames, cfg, args.code_metrics, {n: m[chosen] for n, m in held_out.items()}
        )
    )
    if not results["per_project"]:
        results["per_project"] = {name: _summary(fr) for name, fr in frames.items()}
    if args.out:
        rows = pd.concat([_rows(f) for f in frames.values()]).sort_values(
            "author_time", kind="stable"
        )
        est = fit_estimator(
            chosen,
            rows,
            rows["label"].astype(int).to_numpy(),
            rows["n_fixes"].to_numpy(),
            code_metrics=args.code_metrics,
            pfix=args.pfix,
        )
        data = dumps_model(est)
        created = datetime.now(timezone.utc).replace(microsecond=0)
        quantiles = reference_quantiles(est, frames)
        md = (
            build_metadata(
                chosen,
                raw_features(chosen, args.code_metrics, args.pfix),
                code_metrics=args.code_metrics,
                fix_rule_version=RULE_VERSION,
                source="bundled",
                projects={
                    n: {
                        k: p[k]
                        for k in (
                            "first_sha",
                            "last_sha",
                            "first",
                            "last",
                            "labelable",
                            "buggy",
                            "vendored",
                        )
                    }
                    for n, p in results["per_project"].items()
                },
                training_window=training_window(rows),
                repository_head=None,
                n_train=len(rows),
                n_buggy=int(rows["label"].astype(int).sum()),
                metrics={
                    "overall": {"roc_auc": results["lopo_mean"][chosen]},
                    "baseline": {"roc_auc": results["lopo_mean"].get("la")},
                    "lopo": {n: r[chosen] for n, r in results["lopo"].items()},
                    "rank_metric": "roc_auc",
                    "population": "leave-one-project-out, labelled changes with source files",
                },
                reference=training_medians(chosen, rows, args.code_metrics, args.pfix),
            )
            .saved(
                version=f"bundled-{created:%Y%m%d%H%M}-{chosen}",
                created=created,
                model_file=MODEL_FILE,
                sha256=sha256_bytes(data),
                libraries=library_versions(),
            )
            .to_dict()
        )
        md["score_quantiles"] = quantiles  # kept by ModelMetadata as an extra key
        args.out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(args.out / MODEL_FILE, data)
        atomic_write_bytes(args.out / METADATA_FILE, json.dumps(_jsonable(md), indent=2).encode())
        atomic_write_bytes(args.out / CARD_FILE, card(md, results).encode())
        print(f"wrote {args.out} ({len(data)} bytes)", file=sys.stderr)
    res_path = args.results or args.work / "results.json"
    res_path.parent.mkdir(parents=True, exist_ok=True)
    res_path.write_text(json.dumps(_jsonable(results), indent=2, default=str))
    print(json.dumps(_jsonable({k: results[k] for k in ("lopo_mean", "chosen")}), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
