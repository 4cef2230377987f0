"""``diffrisk org report``: one static HTML file about every repository of a manifest.

Nothing is served: the plots (matplotlib, Agg) are PNG images inside the file, the
styles inline, no script. Sections:

* **repositories**: each one's stages (ok, failed with the reason, skipped), size, labels
  and the org model's figures on it, one row each;
* **risk**: the org model's probabilities of each repository's changes of its last year
  (the distribution), and its *gate rate*: the share at or above the org-wide high
  cut-off (the riskiest ``score.high_share`` of all repositories' last-year changes
  together), next to the share a repository's own gate failed where it logged gate
  decisions (``predictions.parquet``);
* **labels**: fixes by source and the buggy and fix shares per repository
  (:func:`diffrisk.labelling.quality.assess`), with SZZ's agreement with the developers'
  own links where there are some;
* **model quality**: the org model's ROC-AUC on each repository held out (LORO) and in
  time order, next to the lines-added baseline's;
* **drift**: per repository and feature, the population stability index of its recent
  changes (``monitor.recent_days``) against the year before
  (:func:`diffrisk.monitoring.drift.feature_drift`).

All text from the repositories (names, reasons) is escaped (Jinja2 autoescaping).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from diffrisk.config import Config
from diffrisk.errors import DiffriskError
from diffrisk.org.manifest import RepoSpec
from diffrisk.org.tasks import STAGES, RepoLayout, read_status

#: Plots show at most this many repositories (the largest); the table lists all.
MAX_PLOTTED = 40
DRIFT_FEATURES = ("la", "ld", "nf", "entropy", "ndev", "age", "exp", "la_source")


@dataclass
class RepoRow:
    name: str
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    commits: int | None = None
    first: str | None = None
    last: str | None = None
    labelled: int | None = None
    buggy: int | None = None
    buggy_share: float | None = None
    fixes: int | None = None
    fix_share: float | None = None
    fixes_by_source: dict[str, int] = field(default_factory=dict)
    agreement: float | None = None
    label_warnings: list[str] = field(default_factory=list)
    loro_auc: float | None = None
    loro_baseline: float | None = None
    time_auc: float | None = None
    time_baseline: float | None = None
    scores: np.ndarray | None = None
    gate_rate: float | None = None
    realized_fail_rate: float | None = None
    realized_n: int = 0
    drift: dict[str, float | None] = field(default_factory=dict)
    drift_status: str | None = None
    problem: str | None = None

    @property
    def seconds(self) -> float:
        return float(sum(v.get("seconds") or 0.0 for v in self.stages.values()))

    @property
    def state(self) -> str:
        for s in STAGES:
            st = self.stages.get(s, {}).get("status")
            if st == "failed":
                return "failed"
        if any(v.get("status") == "skipped" for v in self.stages.values()):
            return "skipped"
        return "ok" if self.stages else "not run"


@dataclass
class ReportData:
    root: Path
    generated: str
    rows: list[RepoRow]
    model: dict[str, Any] | None
    cutoff: float | None
    config: Config
    notes: list[str] = field(default_factory=list)


def collect(root: Path, specs: Sequence[RepoSpec], config: Config | None = None) -> ReportData:
    """Everything the report shows, read from the root (nothing is computed again but
    the org model's scores and the drift)."""
    cfg = config or Config()
    model = _org_model(root)
    rows = []
    notes: list[str] = []
    for spec in specs:
        r = RepoRow(spec.name, stages=read_status(root, spec.name))
        try:
            _fill(r, RepoLayout(root, spec.name).data, model, cfg)
        except (DiffriskError, OSError, ValueError, KeyError) as err:
            r.problem = getattr(err, "message", str(err))
        rows.append(r)
    all_scores = [r.scores for r in rows if r.scores is not None and len(r.scores)]
    cutoff = None
    if all_scores:
        pooled = np.concatenate(all_scores)
        cutoff = float(np.quantile(pooled, 1 - cfg.score.high_share))
        for r in rows:
            if r.scores is not None and len(r.scores):
                r.gate_rate = float(np.mean(r.scores >= cutoff))
    if model is None:
        notes.append("no org model yet (`diffrisk org train`): no risk or model figures")
    info = None
    if model is not None:
        info = {
            "version": model.version,
            "kind": model.kind,
            "weighting": model.metadata.get("weighting"),
            "n_train": model.metadata.get("n_train"),
            "n_buggy": model.metadata.get("n_buggy"),
            "loro_mean": (model.metadata.get("metrics") or {}).get("loro_mean", {}),
            "repositories": len(model.metadata.get("projects") or {}),
        }
    return ReportData(
        root,
        datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        rows,
        info,
        cutoff,
        cfg,
        notes,
    )


def _org_model(root: Path) -> Any:
    from diffrisk.model.registry import ModelRegistry
    from diffrisk.org.model import models_root

    reg = ModelRegistry(models_root(root))
    try:
        return reg.load() if reg.current() is not None else None
    except DiffriskError:
        return None


def _fill(r: RepoRow, data: Path, model: Any, cfg: Config) -> None:
    from diffrisk.data.datadir import DataDir
    from diffrisk.labelling.quality import assess
    from diffrisk.monitoring.drift import drift_status, feature_drift

    dd = DataDir(data)
    if dd.meta() is None:
        return
    changes = dd.dataset().changes
    r.commits = len(changes)
    if len(changes):
        t = pd.to_datetime(changes["author_time"], utc=True)
        r.first, r.last = str(t.min().date()), str(t.max().date())
    labels = dd.labels(required=False, stale_ok=True)
    links = dd.links(required=False)
    if labels is not None and links is not None:
        q = assess(labels, links)
        r.labelled, r.buggy, r.buggy_share = q.labelled, q.buggy, q.buggy_share
        r.fixes, r.fix_share = q.fixes, q.fix_share
        r.fixes_by_source = dict(q.fixes_by_source) or ({"keyword": q.fixes} if q.fixes else {})
        r.agreement = q.agreement.precision if q.agreement is not None else None
        r.label_warnings = list(q.warnings)
    if model is not None:
        m = model.metadata.get("metrics") or {}
        r.loro_auc = _auc(m.get("loro"), r.name)
        r.loro_baseline = _auc(m.get("loro_baseline"), r.name)
        r.time_auc = _auc(m.get("time_order"), r.name)
        r.time_baseline = _auc(m.get("time_order_baseline"), r.name)
        if len(changes):
            t = pd.to_datetime(changes["author_time"], utc=True)
            last = changes[t >= t.max() - pd.Timedelta(days=365)]
            frame = _with_source_lines(dd, last)
            r.scores = model.predict_proba(frame)
    preds = dd.predictions()
    if len(preds) and "decision" in preds:
        gated = preds[preds["decision"].notna()]
        if len(gated):
            r.realized_n = len(gated)
            r.realized_fail_rate = float((gated["decision"] == "fail").mean())
    if len(changes) >= 2 * cfg.monitor.min_changes:
        t = pd.to_datetime(changes["author_time"], utc=True)
        end = t.max()
        start = end - pd.Timedelta(days=cfg.monitor.recent_days)
        recent = changes[t > start]
        ref = changes[(t <= start) & (t > start - pd.Timedelta(days=cfg.monitor.reference_days))]
        feats = [f for f in DRIFT_FEATURES if f in changes.columns]
        drift = feature_drift(ref, recent, feats, cfg)
        r.drift = {d.feature: d.psi for d in drift}
        r.drift_status = drift_status(drift)


def _with_source_lines(dd: Any, rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with ``la_source`` (and the code-line columns), as training saw them."""
    from diffrisk.training.evaluate import prepare_frame

    labels = dd.labels(required=False, stale_ok=True)
    if labels is None:
        labels = pd.DataFrame(
            {
                "sha": rows["sha"],
                "label": None,
                "label_state": "unlabelled",
                "fixed_by": [[] for _ in range(len(rows))],
                "n_fixes": 0,
                "source_files": 0,
            }
        )
    files = dd.dataset().files
    lab = labels[labels["sha"].isin(set(rows["sha"]))]
    return prepare_frame(rows, lab, files[files["sha"].isin(set(rows["sha"]))])


def _auc(per_repo: Any, name: str) -> float | None:
    if not isinstance(per_repo, dict):
        return None
    m = per_repo.get(name)
    return m.get("roc_auc") if isinstance(m, dict) else None


# -- plots ----------------------------------------------------------------------------------


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _plotted(rows: list[RepoRow]) -> list[RepoRow]:
    """The largest :data:`MAX_PLOTTED` repositories with data, by name."""
    have = [r for r in rows if r.commits]
    have = sorted(have, key=lambda r: -(r.commits or 0))[:MAX_PLOTTED]
    return sorted(have, key=lambda r: r.name, reverse=True)  # top to bottom: a to z


def plots(data: ReportData) -> dict[str, str]:
    """name -> base64 PNG."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    rows = _plotted(data.rows)
    out: dict[str, str] = {}
    if not rows:
        return out
    h = 0.32 * len(rows) + 1.3
    names = [r.name for r in rows]
    y = np.arange(len(rows))

    scored = [r for r in rows if r.scores is not None and len(r.scores)]
    if scored:
        fig, (ax, bx) = plt.subplots(
            1, 2, figsize=(11, 0.32 * len(scored) + 1.3), sharey=True, width_ratios=[3, 1.3]
        )
        box = {"tick_labels": [r.name for r in scored], "showfliers": False, "widths": 0.6}
        try:
            ax.boxplot([r.scores for r in scored], orientation="horizontal", **box)
        except TypeError:  # matplotlib before 3.10
            ax.boxplot([r.scores for r in scored], vert=False, **box)
        if data.cutoff is not None:
            ax.axvline(data.cutoff, color="tab:red", linestyle="--", linewidth=1)
            ax.text(data.cutoff, 0.3, " org-wide high", color="tab:red", fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_xlabel("org model probability (changes of the last year)")
        ax.set_title("Risk distribution per repository")
        rates = [100 * (r.gate_rate or 0.0) for r in scored]
        bx.barh(np.arange(1, len(scored) + 1), rates, color="tab:red", alpha=0.7)
        for i, r in enumerate(scored):
            if r.realized_fail_rate is not None:
                bx.plot(100 * r.realized_fail_rate, i + 1, "kD", markersize=4)
        bx.axvline(100 * data.config.score.high_share, color="grey", linestyle=":", linewidth=1)
        bx.set_xlabel("gate rate, % (◆ realized)")
        bx.set_title("Gate rate")
        out["risk"] = _png(fig)

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, h), sharey=True)
    sources = sorted({s for r in rows for s in r.fixes_by_source})
    left = np.zeros(len(rows))
    palette = [plt.get_cmap("tab10")(i) for i in range(10)]
    for s, color in zip(sources, palette, strict=False):
        vals = np.array([r.fixes_by_source.get(s, 0) for r in rows], dtype=float)
        ax.barh(y, vals, left=left, label=s, color=color)
        left += vals
    ax.set_yticks(y, names)
    ax.set_xlabel("fixes")
    ax.set_title("Label sources (fixes by source)")
    if sources:
        ax.legend(fontsize=8, loc="lower right")
    bx.barh(y - 0.2, [100 * (r.buggy_share or 0) for r in rows], 0.4, label="buggy share")
    bx.barh(y + 0.2, [100 * (r.fix_share or 0) for r in rows], 0.4, label="fix share")
    for i, r in enumerate(rows):
        if r.agreement is not None:
            bx.plot(100 * r.agreement, i, "k|", markersize=10)
    bx.set_xlabel("% (| SZZ precision vs developers' links)")
    bx.set_title("Label quality")
    bx.legend(fontsize=8, loc="lower right")
    out["labels"] = _png(fig)

    if data.model is not None:
        fig, ax = plt.subplots(figsize=(8, h))
        for attr, marker, label in (
            ("loro_auc", "o", "org model, repository held out"),
            ("loro_baseline", "x", "lines added, held out"),
            ("time_auc", "s", "org model, in time order"),
        ):
            auc = [getattr(r, attr) for r in rows]
            ax.plot([np.nan if v is None else v for v in auc], y, marker, label=label)
        ax.axvline(0.5, color="grey", linestyle=":", linewidth=1)
        ax.set_yticks(y, names)
        ax.set_xlim(0.3, 1.0)
        ax.set_xlabel("ROC-AUC")
        ax.set_title("Model quality per repository")
        ax.legend(fontsize=8, loc="lower left")
        out["model"] = _png(fig)

    drifted = [r for r in rows if r.drift]
    if drifted:
        feats = [f for f in DRIFT_FEATURES if any(f in r.drift for r in drifted)]
        mat = np.array(
            [[np.nan if r.drift.get(f) is None else r.drift[f] for f in feats] for r in drifted]
        )
        fig, ax = plt.subplots(figsize=(1.0 * len(feats) + 3, 0.32 * len(drifted) + 1.5))
        im = ax.imshow(np.nan_to_num(mat, nan=0.0), cmap="Reds", vmin=0, vmax=0.5, aspect="auto")
        ax.set_xticks(range(len(feats)), feats, rotation=45, ha="right")
        ax.set_yticks(range(len(drifted)), [r.name for r in drifted])
        for i in range(mat.shape[0]):
            for j in range(mat.shape[1]):
                v = mat[i, j]
                dark = not math.isnan(v) and v > 0.3
                ax.text(
                    j,
                    i,
                    "–" if math.isnan(v) else f"{v:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if dark else "black",
                )
        fig.colorbar(im, ax=ax, label="PSI, recent vs the year before")
        ax.set_title("Feature drift per repository")
        out["drift"] = _png(fig)
    return out


# -- HTML ----------------------------------------------------------------------------------

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>diffrisk org report</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1f2328;max-width:1280px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.sub{color:#57606a;font-size:13px} table{border-collapse:collapse;font-size:12.5px;width:100%}
th,td{border-bottom:1px solid #eaeef2;padding:4px 6px;text-align:right;white-space:nowrap}
th{background:#f6f8fa;position:sticky;top:0} td.l,th.l{text-align:left}
.ok{color:#1a7f37}.failed{color:#cf222e;font-weight:600}.skipped{color:#9a6700}
.reason{color:#cf222e;white-space:normal;text-align:left;min-width:200px;max-width:320px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.card{border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;min-width:120px}
.card b{display:block;font-size:20px} img{max-width:100%} .note{color:#57606a;font-size:12.5px}
</style></head><body>
<h1>diffrisk: organisation report</h1>
<div class="sub">{{ root }} · generated {{ generated }}{% if model %} · org model {{ model.version }} ({{ model.kind }}, {{ model.weighting }}){% endif %}</div>
<div class="cards">
<div class="card"><b>{{ rows|length }}</b>repositories</div>
<div class="card"><b>{{ n_ok }}</b>complete</div>
<div class="card"><b class="{{ 'failed' if n_failed else 'ok' }}">{{ n_failed }}</b>failed</div>
<div class="card"><b>{{ commits }}</b>changes mined</div>
<div class="card"><b>{{ buggy }}</b>labelled defect-inducing</div>
{% if model %}<div class="card"><b>{{ fmt(model.loro_auc) }}</b>org model ROC-AUC, repository held out (lines added: {{ fmt(model.loro_base) }})</div>{% endif %}
</div>
{% for n in notes %}<p class="note">{{ n }}</p>{% endfor %}
<h2>Repositories</h2>
<div style="overflow-x:auto"><table><thead><tr><th class="l">repository</th><th class="l">stages</th>
<th>changes</th><th>history</th><th>labelled</th><th>buggy</th><th>fixes</th><th>ROC-AUC held out</th><th>lines added</th><th>in time order</th><th>gate rate</th><th>drift</th><th class="l">problem</th></tr></thead><tbody>
{% for r in rows %}<tr><td class="l">{{ r.name }}</td><td class="l">
{%- for s in stages %}{% set st = r.stages.get(s, {}) %}<span class="{{ st.get('status', '') }}" title="{{ s }}: {{ st.get('status', 'not run') }} {{ st.get('reason', '') }}">{{ mark(st.get('status')) }}</span>{% endfor %}
{%- if r.seconds %} <span class="note">{{ '%.1f' % r.seconds }}s</span>{% endif %}</td>
<td>{{ r.commits if r.commits is not none else '–' }}</td><td>{{ r.first or '' }}{% if r.first %} – {% endif %}{{ r.last or '' }}</td>
<td>{{ r.labelled if r.labelled is not none else '–' }}</td><td>{{ pct(r.buggy_share) }}</td><td>{{ r.fixes if r.fixes is not none else '–' }}</td>
<td>{{ fmt(r.loro_auc) }}</td><td>{{ fmt(r.loro_baseline) }}</td><td>{{ fmt(r.time_auc) }}</td><td>{{ pct(r.gate_rate) }}</td><td>{{ r.drift_status or '–' }}</td>
<td class="reason">{{ reason(r) }}</td></tr>
{% endfor %}</tbody></table></div>
<p class="note">stages: fetch, mine, label (● done, ✕ failed, ○ skipped, · not run), with their time.</p>
{% if plots.risk %}<h2>Risk and gate rate</h2>
<p class="note">The org model's probabilities of each repository's changes of its last year. Gate rate: the share at or above the org-wide high cut-off ({{ fmt(cutoff) }}: the riskiest {{ pct(high_share) }} of all repositories' last-year changes together); ◆ the share of logged gate decisions that failed, where a repository gates with diffrisk.</p>
<img alt="risk distribution and gate rate per repository" src="data:image/png;base64,{{ plots.risk }}">{% endif %}
{% if plots.labels %}<h2>Labels</h2>
<p class="note">Fixes by source; the share of labelled source changes labelled buggy and of source changes that are fixes; SZZ's precision against the developers' own links where fixes name their bug-introducing commit.</p>
<img alt="label sources and label quality per repository" src="data:image/png;base64,{{ plots.labels }}">
{% for r in rows if r.label_warnings %}<p class="note"><b>{{ r.name }}</b>: {{ r.label_warnings|join('; ') }}</p>{% endfor %}{% endif %}
{% if plots.model %}<h2>Model quality</h2>
<p class="note">ROC-AUC of the org model on each repository when it was left out of training, next to the lines-added baseline trained the same way, and on its changes in time-ordered folds of the pooled history.</p>
<img alt="model quality per repository" src="data:image/png;base64,{{ plots.model }}">{% endif %}
{% if plots.drift %}<h2>Drift</h2>
<p class="note">Population stability index of each feature over a repository's last {{ recent_days }} days against the {{ reference_days }} days before (0.1: moderate, 0.25: major shift).</p>
<img alt="feature drift per repository" src="data:image/png;base64,{{ plots.drift }}">{% endif %}
</body></html>
"""


def render_html(data: ReportData) -> str:
    from jinja2 import Environment

    env = Environment(autoescape=True)
    env.globals.update(fmt=_fmt, pct=_pct, reason=_reason, mark=_mark)
    pics = plots(data)
    rows = sorted(data.rows, key=lambda r: (r.state != "failed", r.name))
    model = None
    if data.model is not None:
        lm = data.model.get("loro_mean") or {}
        chosen = f"{data.model['kind']}/{data.model.get('weighting') or 'pooled'}"
        model = {**data.model, "loro_auc": lm.get(chosen), "loro_base": lm.get("la/pooled")}
    return env.from_string(_TEMPLATE).render(
        root=data.root.name,  # the report sits in the root: its name is enough
        generated=data.generated,
        model=model,
        rows=rows,
        stages=STAGES,
        n_ok=sum(r.state == "ok" for r in rows),
        n_failed=sum(r.state == "failed" for r in rows),
        commits=sum(r.commits or 0 for r in rows),
        buggy=sum(r.buggy or 0 for r in rows),
        notes=data.notes,
        plots=pics,
        cutoff=data.cutoff,
        high_share=data.config.score.high_share,
        recent_days=data.config.monitor.recent_days,
        reference_days=data.config.monitor.reference_days,
    )


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.3f}"


def _pct(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{100 * v:.1f}%"


def _mark(status: str | None) -> str:
    return {"ok": "●", "failed": "✕", "skipped": "○"}.get(status or "", "·")


def _reason(r: RepoRow) -> str:
    for s in STAGES:
        st = r.stages.get(s, {})
        if st.get("status") == "failed":
            return f"{s}: {st.get('reason', '')}"
    return r.problem or ""


def write_report(root: Path, specs: Sequence[RepoSpec], out: Path) -> Path:
    from diffrisk.data.store import atomic_write_bytes

    html = render_html(collect(root, specs))
    atomic_write_bytes(out, html.encode())
    return out
