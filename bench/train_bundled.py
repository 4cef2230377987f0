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

**A corpus mined and labelled with** ``diffrisk org`` (issue 20)::

    python bench/train_bundled.py --corpus bench/corpus.toml --mirrors MIRRORS \
        --org-root ROOT --org-run [--out src/diffrisk/bundled] [--kind logistic]

``bench/corpus.toml`` lists the public repositories (name and language). ``--mirrors``:
the directory holding them (``MIRRORS/<owner>+<name>/repo``); an org manifest of those
local paths is written to ``ROOT/corpus-manifest.toml`` (run-time paths, never committed),
with ``[defaults.config]`` so each is mined and labelled with diffrisk's default settings
(no code metrics). ``--org-run`` runs ``diffrisk org mine`` then ``diffrisk org label`` on
it (an embedded Dask LocalCluster of ``--org-workers`` processes, default 2, under
``nice -n 5``); without it the data directories already under ROOT are used. Projects that
failed or have fewer than ``--min-buggy`` (20) defect-inducing labelable changes are left
out and reported. Then leave-one-project-out over the corpus (``logistic,poisson,la`` by
default): per project ROC-AUC, capture at 10% / 20% of the changes, each kind minus ``la``
and minus the shipped bundled model (on the projects that model was trained on: its recipe
trained on the other projects of its own training set) with paired-bootstrap 95%
intervals, and means over projects with intervals from resampling the projects. The
results go to ``ROOT/results.json``; ``--out`` writes the model fitted on every project,
its card carrying the table.

After the packaged model changed::

    python bench/train_bundled.py --regenerate-golden tests/fixtures/golden/bundled_scores.json
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
    bootstrap_auc,
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


# -- the corpus, mined and labelled by `diffrisk org` ----------------------------------------


def load_corpus(path: Path) -> list[dict[str, str]]:
    """The committed corpus list (``bench/corpus.toml``): ``[{"name", "language"}, ...]``."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef]

    repos = tomllib.loads(path.read_text())["repos"]
    for r in repos:
        if set(r) != {"name", "language"} or r["name"].count("/") != 1:
            raise SystemExit(
                f"{path}: each entry is {{ name = 'owner/name', language = ... }}: {r}"
            )
    return repos


def mirror_of(mirrors: Path, name: str) -> Path | None:
    """``MIRRORS/<owner>+<name>/repo`` (a work tree or a bare repository), or None."""
    d = mirrors / name.replace("/", "+")
    for cand in (d / "repo", d, mirrors / name):
        if (cand / ".git").exists() or (cand / "HEAD").is_file():
            return cand
    return None


def write_manifest(corpus: list[dict[str, str]], mirrors: Path, root: Path) -> Path:
    """An org manifest of local paths (written under the org root at run time, never
    committed). ``[defaults.config]`` is given so every repository is mined and labelled
    with diffrisk's defaults, not with a ``.diffrisk.toml`` of its own."""
    lines = [
        "# written by bench/train_bundled.py from bench/corpus.toml (local paths: not for commit)",
        f"root = {json.dumps(str(root.resolve()))}",
        "",
        "[defaults]",
        'rev = "HEAD"',
        "[defaults.config]",
        "mine.code_metrics = false",
    ]
    missing = []
    for r in corpus:
        path = mirror_of(mirrors, r["name"])
        if path is None:
            missing.append(r["name"])
            continue
        lines += [
            "",
            "[[repo]]",
            f"name = {json.dumps(r['name'])}",
            f"path = {json.dumps(str(path))}",
        ]
    if missing:
        print(f"no mirror for: {', '.join(missing)} (left out)", file=sys.stderr)
    root.mkdir(parents=True, exist_ok=True)
    out = root / "corpus-manifest.toml"
    out.write_text("\n".join(lines) + "\n")
    return out


def run_org(manifest: Path, root: Path, workers: int, nice: int) -> dict[str, Any]:
    """``diffrisk org mine`` then ``diffrisk org label`` on the manifest (an embedded
    LocalCluster of ``workers`` processes, under ``nice``); each stage's JSON result is kept
    in ROOT/org-<stage>.json. Returns the stages' wall times and outcomes."""
    import shutil
    import subprocess

    exe = shutil.which("diffrisk", path=str(Path(sys.executable).parent)) or shutil.which(
        "diffrisk"
    )
    base = [exe] if exe else [sys.executable, "-m", "diffrisk"]
    out: dict[str, Any] = {"workers": workers}
    for stage in ("mine", "label"):
        argv = [
            *(["nice", "-n", str(nice)] if nice else []),
            *base,
            "org",
            stage,
            str(manifest),
            "--root",
            str(root),
            "--workers",
            str(workers),
            "--dashboard",
            ":0",
            "--json",
            "--quiet",
        ]
        t0 = time.perf_counter()
        res = subprocess.run(argv, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        (root / f"org-{stage}.json").write_text(res.stdout)
        (root / f"org-{stage}.err").write_text(res.stderr)
        if res.returncode not in (0, 2):  # 2: some repositories failed, the rest completed
            raise SystemExit(f"diffrisk org {stage} exited {res.returncode}: {res.stderr[-2000:]}")
        out[stage] = {"wall_seconds": round(wall, 1), "exit": res.returncode}
        print(f"org {stage}: {wall:.0f}s, exit {res.returncode}", file=sys.stderr)
    return out


def frame_from_org(name: str, root: Path, cfg: Config) -> pd.DataFrame:
    """A repository's training frame from the data directory ``diffrisk org`` wrote
    (ROOT/<owner>/<name>/data), exactly as :func:`prepare` builds it after mining and
    labelling itself: the vendored directories are the label stage's own detection."""
    from diffrisk.features.vendored import detect as detect_vendored

    data = root / name / "data"
    ds = load_dataset(data)
    if ds is None:
        raise SystemExit(f"{name}: no dataset in the org root (run `diffrisk org mine`)")
    vendored = detect_vendored(cfg.label, ds.changes, ds.files)
    lcfg = exclude_vendored(cfg.label, vendored)
    frame = prepare_frame(ds.changes, load_labels(data), ds.files, lcfg)
    frame["project"] = name
    frame.attrs["vendored"] = list(vendored)
    return frame


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


#: The shipped bundled model's recipe, scored on the projects it was trained on with each
#: one held out (the same kind trained on the other projects of its own training set).
SHIPPED = "shipped"
RECIPE = "shipped recipe"
RESAMPLES = 1000
PROJECT_RESAMPLES = 10000
SEED = 20261207
#: Issue 20's target: the LOPO mean this much above lines added (and above it on every project).
TARGET_MARGIN = 0.04


def _diff(boot: dict[str, np.ndarray], a: str, b: str, full: dict[str, float]) -> dict[str, Any]:
    d = boot[a] - boot[b]
    d = d[~np.isnan(d)]
    lo, hi = np.percentile(d, [2.5, 97.5]) if len(d) else (math.nan, math.nan)
    return {"difference": _r(full[a] - full[b]), "ci_low": _r(lo), "ci_high": _r(hi)}


BALANCED = "-balanced"


def fit_kind(kind: str, rows: pd.DataFrame, code_metrics: bool, pfix: bool) -> Any:
    """Fit ``kind`` on time-ordered ``rows``; ``KIND-balanced``: on the org model's
    ``balanced`` sample instead (each project resampled to the median project's number of
    changes, :func:`diffrisk.org.model.balanced_rows`), so the largest histories do not
    decide alone what "risky" means."""
    if kind.endswith(BALANCED):
        from diffrisk.org.model import balanced_rows

        kind = kind.removesuffix(BALANCED)
        rows = balanced_rows(rows.assign(repository=rows["project"]))
    return fit_estimator(
        kind,
        rows,
        rows["label"].astype(int).to_numpy(),
        rows["n_fixes"].to_numpy(),
        code_metrics=code_metrics,
        pfix=pfix,
    )


def corpus_lopo(
    frames: dict[str, pd.DataFrame],
    kinds: list[str],
    code_metrics: bool,
    pfix: bool,
    languages: dict[str, str],
    shipped: Any,
    shipped_projects: set[str],
    models: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Leave-one-project-out over the corpus: each kind trained on every other project and
    tested on all the labelled, labelable changes of the one held out, next to the
    lines-added baseline (``la``, fitted the same way) and the shipped bundled model
    (``shipped``: on a project it was trained on, an in-sample figure; there its recipe,
    the shipped kind trained on the other projects of its own training set, is the fair
    one). Per project: ROC-AUC, capture of the defect-inducing changes in the riskiest
    10% / 20% of the changes, recall at 20% of the effort (lines added + deleted), and
    each score's ROC-AUC minus la's (and the chosen kinds' minus the shipped model's)
    with a paired bootstrap 95% interval (the project's changes resampled)."""
    out: dict[str, Any] = {}
    rows = {n: _rows(f) for n, f in frames.items()}
    for name in frames:
        t0 = time.perf_counter()
        train = pd.concat([r for n, r in rows.items() if n != name]).sort_values(
            "author_time", kind="stable"
        )
        test = rows[name]
        y = test["label"].astype(int).to_numpy()
        effort = effort_of(test)
        scores: dict[str, np.ndarray] = {}
        for k in kinds:
            est = fit_kind(k, train, code_metrics, pfix)
            if models is not None:
                models.setdefault(name, {})[k] = est
            scores[k] = np.asarray(est.predict_proba(test)[:, 1], dtype=float)
        if shipped is not None:
            scores[SHIPPED] = np.asarray(shipped.predict_proba(test), dtype=float)
        if name in shipped_projects and shipped is not None:
            own = [r for n, r in rows.items() if n in shipped_projects and n != name]
            tr = pd.concat(own).sort_values("author_time", kind="stable")
            est = fit_estimator(
                shipped.kind,
                tr,
                tr["label"].astype(int).to_numpy(),
                tr["n_fixes"].to_numpy(),
                code_metrics=code_metrics,
                pfix=pfix,
            )
            scores[RECIPE] = np.asarray(est.predict_proba(test)[:, 1], dtype=float)
        metrics = {k: all_metrics(y, v, effort) for k, v in scores.items()}
        full = {k: m["roc_auc"] for k, m in metrics.items()}
        boot = bootstrap_auc(y, scores, np.zeros(len(y)), resamples=RESAMPLES, seed=SEED)
        ref = RECIPE if RECIPE in scores else SHIPPED
        res: dict[str, Any] = {
            "language": languages.get(name, "?"),
            "shipped_trained_on_it": name in shipped_projects,
            "changes": len(y),
            "buggy": int(y.sum()),
            "models": {
                k: {
                    key: _r(m[key])
                    for key in (
                        "roc_auc",
                        "pr_auc",
                        "capture_at_10",
                        "capture_at_20",
                        "recall_at_20_effort",
                        "popt",
                    )
                }
                for k, m in metrics.items()
            },
            "vs_la": {k: _diff(boot, k, "la", full) for k in scores if k != "la"},
            "vs_shipped": (
                {k: _diff(boot, k, ref, full) for k in kinds if k != "la"} if ref in scores else {}
            ),
            "shipped_reference": ref if ref in scores else None,
        }
        out[name] = res
        print(
            f"{name}: LOPO {time.perf_counter() - t0:.0f}s "
            + ", ".join(f"{k} {v['roc_auc']}" for k, v in res["models"].items()),
            file=sys.stderr,
        )
    return out


def mean_interval(values: list[float]) -> dict[str, Any]:
    """Mean over projects with a 95% interval from resampling the projects."""
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=float)
    if len(v) == 0:
        return {"mean": None, "ci_low": None, "ci_high": None, "n": 0}
    rng = np.random.default_rng(SEED)
    means = v[rng.integers(0, len(v), size=(PROJECT_RESAMPLES, len(v)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"mean": _r(v.mean()), "ci_low": _r(lo), "ci_high": _r(hi), "n": len(v)}


def corpus_summary(lopo_res: dict[str, Any], kinds: list[str]) -> dict[str, Any]:
    """Means over the projects (all, those the shipped model never saw, those it was
    trained on): each score's ROC-AUC, its difference from la and from the shipped model
    (on the projects it was trained on, its recipe held out), intervals over projects."""
    groups = {
        "all": list(lopo_res),
        "new": [n for n, r in lopo_res.items() if not r["shipped_trained_on_it"]],
        "shipped_training": [n for n, r in lopo_res.items() if r["shipped_trained_on_it"]],
    }
    out: dict[str, Any] = {}
    for g, names in groups.items():
        if not names:
            continue
        scores = sorted({k for n in names for k in lopo_res[n]["models"]})

        def over(section: str, field: str, keys: list[str], names: list[str] = names) -> dict:
            """Mean and interval over the projects of each key's ``section[key][field]``."""
            return {
                k: mean_interval(
                    [lopo_res[n][section][k][field] for n in names if k in lopo_res[n][section]]
                )
                for k in keys
            }

        no_la = [k for k in scores if k != "la"]
        out[g] = {
            "projects": len(names),
            "roc_auc": over("models", "roc_auc", scores),
            "vs_la": over("vs_la", "difference", no_la),
            "vs_shipped": over("vs_shipped", "difference", [k for k in kinds if k != "la"]),
            "capture_at_10": over("models", "capture_at_10", scores),
            "capture_at_20": over("models", "capture_at_20", scores),
            "above_la": {
                k: sum(
                    1
                    for n in names
                    if k in lopo_res[n]["vs_la"]
                    and (lopo_res[n]["vs_la"][k]["difference"] or 0) > 0
                )
                for k in scores
                if k != "la"
            },
            "above_la_beyond_chance": {
                k: sum(
                    1
                    for n in names
                    if k in lopo_res[n]["vs_la"] and (lopo_res[n]["vs_la"][k]["ci_low"] or 0) > 0
                )
                for k in scores
                if k != "la"
            },
        }
    return out


def _ci(d: dict[str, Any] | None, key: str = "difference", signed: bool | None = None) -> str:
    """``+0.012 (-0.003 to +0.027)`` for a difference, ``0.741 (0.731 to 0.752)`` for a mean."""
    if not d or d.get(key) is None:
        return ""
    f = "+.3f" if (key == "difference" if signed is None else signed) else ".3f"
    return f"{d[key]:{f}} ({d['ci_low']:{f}} to {d['ci_high']:{f}})"


def corpus_card(md: dict[str, Any], results: dict[str, Any]) -> str:
    kind = md["kind"]
    lopo_res = results["lopo"]
    summ = results["summary"]
    lines = [model_card(md).split("## Time-ordered evaluation")[0].rstrip(), ""]
    lines += [
        "## Cross-project model",
        "",
        f"Trained on the labelled, labelable changes of {len(lopo_res)} public projects in "
        f"{len({r['language'] for r in lopo_res.values()})} languages (`bench/corpus.toml`), "
        "mined and labelled with `diffrisk org` (default settings, no code metrics); "
        "commit ranges by author date:",
        "",
        "| project | language | first commit | last commit | labelable changes | defect-inducing |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, p in results["per_project"].items():
        lines.append(
            f"| {name} | {lopo_res[name]['language']} | {p['first_sha'][:12]} ({p['first'][:10]}) "
            f"| {p['last_sha'][:12]} ({p['last'][:10]}) | {p['labelable']} | {p['buggy']} |"
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
    if results.get("left_out"):
        lines += [
            "",
            "Left out of the model and of the table below: "
            + "; ".join(f"{n} ({why})" for n, why in results["left_out"].items())
            + ".",
        ]
    shipped = results.get("shipped_version")
    lines += [
        "",
        f"## Leave-one-project-out (chosen kind: `{kind}`"
        + (
            f"; best mean: `{results['best_lopo']}`"
            if results.get("best_lopo", kind) != kind
            else ""
        )
        + ")",
        "",
        f"Each project held out: `{kind}` trained on all the other projects, tested on all the "
        "held-out project's labelled, labelable changes, next to the lines-added baseline "
        "(`la`, fitted the same way). Differences in ROC-AUC with a paired bootstrap 95% "
        f"interval ({RESAMPLES} resamples of the project's changes). "
        f"`{shipped}` is the previous bundled model (trained on "
        f"{len(results.get('shipped_projects', []))} projects, marked *; on those its own recipe "
        "trained on the others of them is shown instead, the shipped model having seen them). "
        "Capture: share of the defect-inducing "
        "changes among the riskiest 10% / 20% of the changes.",
        "",
        f"| project | language | changes | defect-inducing | {kind} | la | {kind} - la (95% CI) "
        f"| previous | {kind} - previous (95% CI) | capture 10% / 20% ({kind}) | capture 10% / 20% (la) |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | --- | --- | --- |",
    ]
    for name, r in lopo_res.items():
        m = r["models"]
        ref = r.get("shipped_reference")
        prev = m[ref]["roc_auc"] if ref else None
        star = " *" if r["shipped_trained_on_it"] else ""
        lines.append(
            f"| {name}{star} | {r['language']} | {r['changes']} | {r['buggy']} "
            f"| {m[kind]['roc_auc']:.3f} | {m['la']['roc_auc']:.3f} | {_ci(r['vs_la'].get(kind))} "
            f"| {'' if prev is None else f'{prev:.3f}'} | {_ci(r['vs_shipped'].get(kind))} "
            f"| {m[kind]['capture_at_10']:.3f} / {m[kind]['capture_at_20']:.3f} "
            f"| {m['la']['capture_at_10']:.3f} / {m['la']['capture_at_20']:.3f} |"
        )
    a = summ["all"]
    lines += [
        "",
        f"Mean over the {a['projects']} projects (95% intervals from resampling the projects): "
        f"`{kind}` {_ci(a['roc_auc'][kind], 'mean')}, `la` {_ci(a['roc_auc']['la'], 'mean')}; "
        f"difference {_ci(a['vs_la'][kind], 'mean', True)}; above `la` on "
        f"{a['above_la'][kind]} of {a['projects']} projects "
        f"({a['above_la_beyond_chance'][kind]} beyond chance).",
    ]
    short = [n for n, r in lopo_res.items() if (r["vs_la"][kind]["difference"] or 0) <= 0]
    met = (a["vs_la"][kind]["mean"] or 0) >= TARGET_MARGIN and not short
    lines.append(
        f"Target (issue 20: mean at least {TARGET_MARGIN} above `la`, and above it on every "
        f"project): **{'met' if met else 'not met'}**"
        + (f"; at or below `la` on {', '.join(short)}" if short else "")
        + "."
    )
    if "new" in summ and SHIPPED in summ["new"]["roc_auc"]:
        nw = summ["new"]
        lines.append(
            f"On the {nw['projects']} projects the previous model never saw: `{kind}` "
            f"{_ci(nw['roc_auc'][kind], 'mean')}, previous {_ci(nw['roc_auc'][SHIPPED], 'mean')}, "
            f"`la` {_ci(nw['roc_auc']['la'], 'mean')}; `{kind}` - previous "
            f"{_ci(nw['vs_shipped'][kind], 'mean', True)}."
        )
    if "shipped_training" in summ:
        old = summ["shipped_training"]
        lines.append(
            f"On the {old['projects']} projects it was trained on (*): `{kind}` "
            f"{_ci(old['roc_auc'][kind], 'mean')}, its recipe held out "
            f"{_ci(old['roc_auc'].get(RECIPE), 'mean')}; `{kind}` - recipe "
            f"{_ci(old['vs_shipped'][kind], 'mean', True)}."
        )
    others = [k for k in results["kinds"] if k not in (kind, "la")]
    if others:
        lines.append(
            "Other kinds, mean ROC-AUC over all projects: "
            + ", ".join(f"`{k}` {_ci(a['roc_auc'][k], 'mean')}" for k in others)
            + "."
        )
    return "\n".join([*lines, *_card_footer(md, results)])


def _card_footer(md: dict[str, Any], results: dict[str, Any]) -> list[str]:
    """The lines every bundled model card ends with: the baseline, the labels, the use."""
    return [
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
    return "\n".join([*lines, *_card_footer(md, results)])


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


def write_model(
    out: Path,
    chosen: str,
    frames: dict[str, pd.DataFrame],
    results: dict[str, Any],
    code_metrics: bool,
    pfix: bool,
    card_of: Any,
) -> None:
    """Fit ``chosen`` on every project and write model.skops, metadata.json (with
    ``score_quantiles``) and MODEL_CARD.md to ``out``."""
    rows = pd.concat([_rows(f) for f in frames.values()]).sort_values("author_time", kind="stable")
    est = fit_kind(chosen, rows, code_metrics, pfix)
    base = chosen.removesuffix(BALANCED)
    data = dumps_model(est)
    created = datetime.now(timezone.utc).replace(microsecond=0)
    quantiles = reference_quantiles(est, frames)
    lopo_chosen = {
        n: r["models"][chosen] if "models" in r else r[chosen] for n, r in results["lopo"].items()
    }
    md = (
        build_metadata(
            base,
            raw_features(base, code_metrics, pfix),
            code_metrics=code_metrics,
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
                "lopo": lopo_chosen,
                "rank_metric": "roc_auc",
                "population": "leave-one-project-out, labelled changes with source files",
            },
            reference=training_medians(base, rows, code_metrics, pfix),
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
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / MODEL_FILE, data)
    atomic_write_bytes(out / METADATA_FILE, json.dumps(_jsonable(md), indent=2).encode())
    atomic_write_bytes(out / CARD_FILE, card_of(md, results).encode())
    print(f"wrote {out} ({len(data)} bytes)", file=sys.stderr)


def regenerate_golden(path: Path) -> None:
    """Score the fixed rows of ``tests/fixtures/golden/bundled_scores.json`` with the
    bundled model now in the package (after it was replaced) and write the new
    probabilities in place (rows and features unchanged; the test compares to 1e-9)."""
    from diffrisk.model.registry import load_bundled

    golden = json.loads(path.read_text())
    model = load_bundled()
    if model.features != golden["features"]:
        raise SystemExit(
            f"the bundled model's features {model.features} are not the fixture's: "
            "new rows are needed, not new probabilities"
        )
    rows = pd.DataFrame(golden["rows"], columns=golden["features"])
    rows["fix"] = rows["fix"].astype(bool)
    golden["probabilities"] = [round(float(v), 12) for v in model.predict_proba(rows)]
    path.write_text(json.dumps(golden, indent=0))
    print(f"regenerated {path} with {model.version}", file=sys.stderr)


def from_corpus(
    args: argparse.Namespace, cfg: Config
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """The corpus's frames from the org root (after writing the manifest and running
    ``diffrisk org mine`` and ``org label`` when asked); projects that failed or have
    fewer than ``--min-buggy`` defect-inducing labelable changes are left out (reported)."""
    from diffrisk.org.tasks import read_status

    corpus = load_corpus(args.corpus)
    root: Path = args.org_root
    info: dict[str, Any] = {"languages": {r["name"]: r["language"] for r in corpus}}
    if args.mirrors is not None:
        manifest = write_manifest(corpus, args.mirrors, root)
        if args.org_run:
            info["org"] = run_org(manifest, root, args.org_workers, args.nice)
    frames: dict[str, pd.DataFrame] = {}
    left_out: dict[str, str] = {}
    for r in corpus:
        name = r["name"]
        status = read_status(root, name)
        bad = [
            f"{st} {o.get('status')}: {o.get('reason', '')}"
            for st, o in status.items()
            if isinstance(o, dict) and o.get("status") not in (None, "ok")
        ]
        if not status or bad:
            left_out[name] = "; ".join(bad) or "not mined and labelled"
            continue
        fr = frame_from_org(name, root, cfg)
        n_buggy = int(fr.loc[eligible_mask(fr), "label"].astype(int).sum())
        if n_buggy < args.min_buggy:
            left_out[name] = f"{n_buggy} defect-inducing labelable changes (< {args.min_buggy})"
            continue
        frames[name] = fr
        print(f"{name}: {len(fr)} changes, {n_buggy} defect-inducing", file=sys.stderr)
    for name, why in left_out.items():
        print(f"left out: {name}: {why}", file=sys.stderr)
    info["left_out"] = left_out
    return frames, info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("repos", nargs="*")
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
    ap.add_argument(
        "--kinds",
        default=None,
        help="default: every kind but tokens and prior; with --corpus: logistic,poisson,la",
    )
    ap.add_argument(
        "--kind",
        default=None,
        help="ship this kind instead of the best mean LOPO ROC-AUC (the tables still compare "
        "every kind; the results record both)",
    )
    ap.add_argument("--skip-per-project", action="store_true")
    ap.add_argument("--results", type=Path, default=None)
    corpus = ap.add_argument_group("a corpus mined and labelled with diffrisk org")
    corpus.add_argument("--corpus", type=Path, default=None, help="the list (bench/corpus.toml)")
    corpus.add_argument("--org-root", type=Path, default=None, help="the org root (results)")
    corpus.add_argument(
        "--mirrors",
        type=Path,
        default=None,
        help="directory of the mirrors (MIRRORS/<owner>+<name>/repo): write ORG_ROOT/corpus-manifest.toml",
    )
    corpus.add_argument(
        "--org-run", action="store_true", help="run `diffrisk org mine` and `org label` first"
    )
    corpus.add_argument("--org-workers", type=int, default=2)
    corpus.add_argument("--nice", type=int, default=5, help="niceness of the org run (0: none)")
    corpus.add_argument(
        "--min-buggy",
        type=int,
        default=20,
        help="leave out projects with fewer defect-inducing labelable changes",
    )
    ap.add_argument(
        "--regenerate-golden",
        type=Path,
        default=None,
        metavar="JSON",
        help="only rescore tests/fixtures/golden/bundled_scores.json with the packaged bundled model",
    )
    args = ap.parse_args(argv)
    if args.regenerate_golden:
        regenerate_golden(args.regenerate_golden)
        return 0
    cfg = Config()
    if args.corpus is not None:
        if args.org_root is None:
            ap.error("--corpus needs --org-root")
        return main_corpus(args, cfg)
    if not args.repos:
        ap.error("give repositories, or --corpus")
    kinds = (args.kinds or ",".join(k for k in KINDS if k not in ("tokens", "prior"))).split(",")
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
        write_model(args.out, chosen, frames, results, args.code_metrics, args.pfix, card)
    res_path = args.results or args.work / "results.json"
    res_path.parent.mkdir(parents=True, exist_ok=True)
    res_path.write_text(json.dumps(_jsonable(results), indent=2, default=str))
    print(json.dumps(_jsonable({k: results[k] for k in ("lopo_mean", "chosen")}), indent=2))
    return 0


def main_corpus(args: argparse.Namespace, cfg: Config) -> int:
    """``--corpus``: the frames from the org root, LOPO over the corpus with intervals and
    the shipped bundled model next to it, the model fitted on all (``--out``)."""
    from diffrisk.model.registry import load_bundled

    t0 = time.perf_counter()
    kinds = (args.kinds or "logistic,poisson,la").split(",")
    if "la" not in kinds:
        kinds.append("la")
    shipped = load_bundled()  # before --out may replace it
    shipped_projects = set(shipped.metadata.get("projects") or {})
    frames, info = from_corpus(args, cfg)
    t1 = time.perf_counter()
    results: dict[str, Any] = {
        "kinds": kinds,
        "code_metrics": args.code_metrics,
        "label": label_settings(cfg),
        "shipped_version": shipped.version,
        "shipped_projects": sorted(shipped_projects),
        **info,
    }
    results["lopo"] = corpus_lopo(
        frames, kinds, args.code_metrics, args.pfix, info["languages"], shipped, shipped_projects
    )
    results["summary"] = corpus_summary(results["lopo"], kinds)
    results["lopo_mean"] = {k: results["summary"]["all"]["roc_auc"][k]["mean"] for k in kinds}
    best = max((k for k in kinds if k != "la"), key=lambda k: results["lopo_mean"][k])
    chosen = args.kind or best
    results["best_lopo"] = best
    results["chosen"] = chosen
    results["per_project"] = {name: _summary(fr) for name, fr in frames.items()}
    results["seconds"] = {"load": round(t1 - t0, 1), "lopo": round(time.perf_counter() - t1, 1)}
    print(
        f"chosen: {chosen} (best mean LOPO ROC-AUC: {best}; {results['lopo_mean']})",
        file=sys.stderr,
    )
    res_path = args.results or args.org_root / "results.json"
    res_path.parent.mkdir(parents=True, exist_ok=True)
    res_path.write_text(json.dumps(_jsonable(results), indent=2, default=str))
    if args.out:
        write_model(args.out, chosen, frames, results, args.code_metrics, args.pfix, corpus_card)
    print(json.dumps(_jsonable({"summary": results["summary"], "chosen": chosen}), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
