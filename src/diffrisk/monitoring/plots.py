"""The monitor's plots (matplotlib, Agg backend): risk over time, drift per feature,
realized accuracy per period; PNG or SVG, written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from diffrisk.config import Config
from diffrisk.errors import DataError
from diffrisk.monitoring.monitor import MonitorReport


def write_plots(report: MonitorReport, out_dir: str | Path, fmt: str = "png") -> list[str]:
    """Risk over time, drift per feature, realized precision/recall per period; returns the paths."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from diffrisk.data.store import atomic_write_bytes

    if fmt not in ("png", "svg"):
        raise DataError(f"unknown plot format {fmt!r}", hint="use png or svg")
    out = Path(out_dir)
    paths: list[str] = []

    def save(fig: Any, name: str) -> None:
        import io

        buf = io.BytesIO()
        fig.savefig(
            buf,
            format=fmt,
            dpi=110,
            bbox_inches="tight",
            metadata={"Software": None} if fmt == "png" else {"Date": None},
        )
        plt.close(fig)
        p = out / f"{name}.{fmt}"
        atomic_write_bytes(p, buf.getvalue())
        paths.append(str(p))

    if report.risk_series:
        months = [pd.Period(r["month"]).to_timestamp() for r in report.risk_series]
        fig, ax = plt.subplots(figsize=(9, 3.5))
        ax.plot(months, [r["median"] for r in report.risk_series], label="median")
        ax.plot(months, [r["p90"] for r in report.risk_series], label="90th percentile")
        ax.axhline(
            report.threshold,
            color="red",
            linestyle="--",
            linewidth=1,
            label=f"gate {report.threshold:.2f}",
        )
        ax.set_ylim(0, 1)
        ax.set_ylabel("predicted risk")
        ax.set_title("Risk of the mined changes over time (current model)")
        ax.legend(loc="upper left", fontsize=8)
        save(fig, "risk_over_time")
    feats = [d for d in report.drift if d.psi is not None]
    if feats:
        feats.sort(key=lambda d: d.psi or 0)
        colors = {"alert": "tab:red", "warn": "tab:orange", "ok": "tab:green"}
        fig, ax = plt.subplots(figsize=(7, 0.35 * len(feats) + 1.2))
        ax.barh(
            [d.feature for d in feats],
            cast("list[float]", [d.psi for d in feats]),  # feats: psi is not None
            color=[colors.get(d.status, "grey") for d in feats],
        )
        th = report.drift_thresholds or Config().monitor.model_dump()
        ax.axvline(th["psi_warn"], color="tab:orange", linestyle=":", linewidth=1)
        ax.axvline(th["psi_alert"], color="tab:red", linestyle=":", linewidth=1)
        ax.set_xlabel("population stability index (recent vs reference)")
        ax.set_title("Feature drift")
        save(fig, "drift")
    rows = [p for p in report.periods if p["labelled"]]
    if rows:
        x = [pd.Timestamp(p["start"]).tz_localize(None) for p in rows]
        fig, ax = plt.subplots(figsize=(9, 3.5))
        for key, label in (
            ("precision", "precision"),
            ("recall", "recall"),
            ("roc_auc", "ROC-AUC"),
        ):
            ax.plot(
                x,
                [np.nan if p[key] is None else p[key] for p in rows],
                marker="o",
                markersize=3,
                label=label,
            )
        ax.set_ylim(0, 1)
        ax.set_title(f"Realized accuracy per period (gate at p ≥ {report.threshold:.2f})")
        ax.legend(loc="lower left", fontsize=8)
        save(fig, "realized_accuracy")
    report.plots = paths
    return paths
